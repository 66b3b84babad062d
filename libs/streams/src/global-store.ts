/**
 * A global table's store: every partition of its topic, held in memory by every instance. Start
 * reads each partition to its end (the bootstrap; processing waits for it, so a join never sees a
 * half-loaded table), then a Fetcher keeps it current. The topic is the store's changelog, so
 * there is nothing to write back; a restart bootstraps again.
 */
import { Fetcher, OffsetSpec, type SkeinClient } from '@skein/client';
import type { ConsumedRecord } from '@skein/common/records/record-batch.js';
import type { GlobalTableDef, ReadonlyKeyValueStore } from './topology.js';

export class GlobalStore implements ReadonlyKeyValueStore {
  private readonly data = new Map<string, Buffer>();
  private fetcher: Fetcher | undefined;
  private loop: Promise<void> | undefined;
  records = 0;

  constructor(
    private readonly client: SkeinClient,
    readonly def: GlobalTableDef,
  ) {}

  get(key: Buffer): Buffer | undefined {
    return this.data.get(key.toString('latin1'));
  }

  get size(): number {
    return this.data.size;
  }

  private apply(r: ConsumedRecord): void {
    this.records++;
    if (r.key.length === 0) return;
    if (r.value === null) this.data.delete(r.key.toString('latin1'));
    else this.data.set(r.key.toString('latin1'), r.value);
  }

  /** Reads every partition to the end it had when called, then follows it in the background. */
  async start(isolationLevel: 'read_uncommitted' | 'read_committed'): Promise<void> {
    const t = await this.client.topic(this.def.topic, true);
    const ends: bigint[] = [];
    for (const p of t.partitions) {
      const end = await this.client.listOffset(this.def.topic, p.partition, OffsetSpec.OFFSET_SPEC_LATEST, 0n, isolationLevel);
      let at = await this.client.listOffset(this.def.topic, p.partition, OffsetSpec.OFFSET_SPEC_EARLIEST);
      while (at < end) {
        const res = await this.client.fetch(this.def.topic, p.partition, at, { isolationLevel });
        for (const r of res.records) this.apply(r);
        const next = res.nextOffset ?? (res.records.length ? res.records[res.records.length - 1]!.offset + 1n : at);
        if (next <= at) break; // nothing more below the end the broker will give (e.g. an open transaction)
        at = next;
      }
      ends[p.partition] = at;
    }
    const fetcher = new Fetcher(this.client, { maxWaitMs: 500, isolationLevel });
    this.fetcher = fetcher;
    for (const p of t.partitions) fetcher.assign(this.def.topic, p.partition, ends[p.partition]!);
    this.loop = (async () => {
      for (;;) {
        const chunk = await fetcher.next();
        if (!chunk) return;
        if (chunk.kind === 'records') for (const r of chunk.records) this.apply(r);
        // Errors: the fetcher retries with backoff by itself; the table stays as it is meanwhile.
        else fetcher.backOff(chunk.topic, chunk.partition, 500);
      }
    })();
  }

  async close(): Promise<void> {
    this.fetcher?.close();
    await this.loop;
  }
}
