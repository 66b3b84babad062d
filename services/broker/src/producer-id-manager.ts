/**
 * Hands out producer ids for InitProducerId from blocks the metadata service allocates
 * (AllocateProducerIds), so ids are unique across brokers and restarts. Fetches the next block in
 * the background when the current one runs low. Id 0 is never handed out (batches with producer id
 * 0 are refused, so a client that forgot to set the fields is not silently deduplicated).
 */
export interface ProducerIdSource {
  allocateProducerIds(count: number): Promise<{ firstProducerId: bigint; count: number }>;
}

export class ProducerIdManager {
  private next = 0n;
  private end = 0n;
  private pending: Promise<void> | undefined;
  private nextBlock: { first: bigint; end: bigint } | undefined;

  constructor(private readonly source: ProducerIdSource, private readonly blockSize = 1000) {}

  async generate(): Promise<bigint> {
    for (;;) {
      if (this.next === 0n && this.next < this.end) this.next = 1n;
      if (this.next < this.end) {
        const id = this.next++;
        if (this.end - this.next < BigInt(Math.ceil(this.blockSize / 10)) && !this.nextBlock) void this.prefetch().catch(() => undefined);
        return id;
      }
      if (this.nextBlock) {
        ({ first: this.next, end: this.end } = this.nextBlock);
        this.nextBlock = undefined;
        continue;
      }
      await this.prefetch();
    }
  }

  private prefetch(): Promise<void> {
    this.pending ??= this.source
      .allocateProducerIds(this.blockSize)
      .then((b) => {
        this.nextBlock = { first: b.firstProducerId, end: b.firstProducerId + BigInt(b.count) };
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}
