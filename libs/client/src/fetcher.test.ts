import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { ManualTimers } from '@skein/common/timers.js';
import type { FetchRequest, FetchResponse } from '@skein/proto/skein/broker/v1/broker.js';
import { describe, expect, it } from 'vitest';
import type { SkeinClient } from './client.js';
import { buildFetchRequest, type FetchedChunk, Fetcher, groupByLeader } from './fetcher.js';

/** A broker call the test answers by hand. */
interface Call {
  address: string;
  request: FetchRequest;
  resolve: (res: FetchResponse) => void;
  aborted: () => boolean;
}

/** The few SkeinClient members the fetcher uses, over a leader table the test edits. */
function fakeClient(leaders: Map<string, number>) {
  const calls: Call[] = [];
  let refreshes = 0;
  const client = {
    timeoutMs: 1000,
    stats: { retries: 0 },
    cachedLeaderId: (t: string, p: number) => leaders.get(`${t}-${p}`),
    cachedLeader: (t: string, p: number) => {
      const id = leaders.get(`${t}-${p}`);
      return id === undefined ? undefined : { brokerId: id, address: `broker-${id}` };
    },
    refreshMetadata: async () => {
      refreshes++;
    },
    fetchFrom: (address: string, request: FetchRequest, _timeoutMs: number, signal?: AbortSignal) =>
      new Promise<FetchResponse>((resolve) => calls.push({ address, request, resolve, aborted: () => signal?.aborted ?? false })),
  };
  return { client: client as unknown as SkeinClient, calls, refreshes: () => refreshes };
}

const partitionsOf = (c: Call) => c.request.topics.flatMap((t) => t.partitions.map((p) => `${t.topic}-${p.partition}@${p.fetchOffset}`));

/** An answer with one record at `offset` for each listed partition, nothing for the others. */
function answer(c: Call, withData: Record<string, bigint> = {}, errors: Record<string, string> = {}): FetchResponse {
  return {
    topics: c.request.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => {
        const k = `${t.topic}-${p.partition}`;
        const at = withData[k];
        const reason = errors[k];
        return {
          partition: p.partition,
          error: reason ? { code: 9, reason, message: reason, retriable: true } : undefined,
          highWatermark: (at ?? 0n) + 1n,
          logStartOffset: 0n,
          batches: at === undefined ? [] : [{ baseOffset: at, leaderEpoch: 0, batch: buildRecordBatch([{ value: `${k}@${at}`, timestampMs: 0n }]) }],
        };
      }),
    })),
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('grouping partitions by leader', () => {
  it('puts each partition under its leader, keeps order, and sets the leaderless apart', () => {
    const parts = [0, 1, 2, 3, 4].map((partition) => ({ topic: 't', partition }));
    const { byLeader, leaderless } = groupByLeader(parts, (_t, p) => (p === 4 ? undefined : `b${p % 2}`));
    expect([...byLeader.entries()].map(([b, ps]) => [b, ps.map((p) => p.partition)])).toEqual([
      ['b0', [0, 2]],
      ['b1', [1, 3]],
    ]);
    expect(leaderless).toEqual([{ topic: 't', partition: 4 }]);
  });

  it('builds one request with every partition, by topic', () => {
    const req = buildFetchRequest(
      [
        { topic: 'a', partition: 1, offset: 5n },
        { topic: 'b', partition: 0, offset: 0n },
        { topic: 'a', partition: 0, offset: 7n },
      ],
      { maxWaitMs: 500, minBytes: 1, maxBytes: 100, maxBytesPerPartition: 10 },
    );
    expect(req).toMatchObject({ maxWaitMs: 500, minBytes: 1, maxBytes: 100 });
    expect(req.topics.map((t) => [t.topic, t.partitions.map((p) => [p.partition, p.fetchOffset, p.partitionMaxBytes])])).toEqual([
      [
        'a',
        [
          [1, 5n, 10],
          [0, 7n, 10],
        ],
      ],
      ['b', [[0, 0n, 10]]],
    ]);
  });
});

describe('Fetcher', () => {
  it('sends one request per broker for all its partitions, and the next once the answer is taken (prefetch), with no timer', async () => {
    const leaders = new Map(Array.from({ length: 50 }, (_, p) => [`t-${p}`, p % 3] as [string, number]));
    const { client, calls } = fakeClient(leaders);
    const timers = new ManualTimers(1000);
    const fetcher = new Fetcher(client, { clock: timers, timers });
    for (let p = 0; p < 50; p++) fetcher.assign('t', p, 0n);
    await flush();
    expect(calls.map((c) => [c.address, c.request.topics[0]!.partitions.length])).toEqual([
      ['broker-0', 17],
      ['broker-1', 17],
      ['broker-2', 16],
    ]);
    // Broker 1 answers with records for two partitions; no new request until both are taken.
    calls[1]!.resolve(answer(calls[1]!, { 't-1': 0n, 't-4': 0n }));
    await flush();
    expect(calls).toHaveLength(3);
    const first = (await fetcher.next()) as Extract<FetchedChunk, { kind: 'records' }>;
    expect([first.partition, first.records.map((r) => r.value!.toString())]).toEqual([1, ['t-1@0']]);
    await flush();
    expect(calls).toHaveLength(3);
    await fetcher.next();
    await flush();
    // Taken: the next request to broker 1 goes out at once, from the offsets after the records.
    expect(calls).toHaveLength(4);
    expect(calls[3]!.address).toBe('broker-1');
    expect(partitionsOf(calls[3]!)).toContain('t-1@1');
    expect(partitionsOf(calls[3]!)).toContain('t-7@0');
    expect(timers.pendingDelaysMs).toEqual([]);
    fetcher.close();
    expect(await fetcher.next()).toBeUndefined();
  });

  it('drops what a seek, pause or removal made stale, and cancels the long-poll holding the partition', async () => {
    const { client, calls } = fakeClient(
      new Map([
        ['t-0', 1],
        ['t-1', 1],
      ]),
    );
    const fetcher = new Fetcher(client, { timers: new ManualTimers() });
    fetcher.assign('t', 0, 0n);
    fetcher.assign('t', 1, 0n);
    await flush();
    expect(calls).toHaveLength(1);
    const g0 = fetcher.generation('t', 0);
    fetcher.assign('t', 0, 40n); // a seek while the request is out
    expect(calls[0]!.aborted()).toBe(true);
    expect(fetcher.generation('t', 0)).not.toBe(g0);
    await flush();
    expect(calls).toHaveLength(2);
    expect(partitionsOf(calls[1]!).sort()).toEqual(['t-0@40', 't-1@0']);
    // The cancelled request's late answer is ignored.
    calls[0]!.resolve(answer(calls[0]!, { 't-0': 0n }));
    calls[1]!.resolve(answer(calls[1]!, { 't-0': 40n, 't-1': 0n }));
    await flush();
    const chunk = (await fetcher.next()) as Extract<FetchedChunk, { kind: 'records' }>;
    expect(chunk.records[0]!.offset).toBe(40n);
    // Paused with a chunk waiting: the chunk is dropped; resumed, it is fetched again from there.
    fetcher.pause('t', 1);
    fetcher.resume('t', 1, 0n);
    await flush();
    expect(partitionsOf(calls.at(-1)!).sort()).toEqual(['t-0@41', 't-1@0']);
    fetcher.remove('t', 0);
    fetcher.remove('t', 1);
    fetcher.close();
    expect(await fetcher.next()).toBeUndefined();
  });

  it('retries NOT_LEADER under the new leader after a metadata refresh and a backoff, then hands errors it cannot retry to the owner, holding the partition', async () => {
    const leaders = new Map([['t-0', 1]]);
    const { client, calls, refreshes } = fakeClient(leaders);
    const timers = new ManualTimers(0);
    const fetcher = new Fetcher(client, { clock: timers, timers });
    fetcher.assign('t', 0, 0n);
    await flush();
    leaders.set('t-0', 2);
    calls[0]!.resolve(answer(calls[0]!, {}, { 't-0': 'NOT_LEADER_OR_FOLLOWER' }));
    await flush();
    expect(refreshes()).toBe(1);
    expect(calls).toHaveLength(1);
    expect(timers.pendingDelaysMs).toHaveLength(1); // the backoff, the only timer
    timers.advance(timers.pendingDelaysMs[0]!);
    await flush();
    expect(calls[1]!.address).toBe('broker-2');
    // Not retriable: an error chunk; the partition is held until the owner decides.
    calls[1]!.resolve({
      topics: [
        {
          topic: 't',
          partitions: [
            {
              partition: 0,
              error: { code: 11, reason: 'OFFSET_OUT_OF_RANGE', message: 'gone', retriable: false },
              highWatermark: 0n,
              logStartOffset: 5n,
              batches: [],
            },
          ],
        },
      ],
    });
    const chunk = await fetcher.next();
    expect(chunk).toMatchObject({ kind: 'error', partition: 0, fetchOffset: 0n, error: { reason: 'OFFSET_OUT_OF_RANGE' } });
    await flush();
    expect(calls).toHaveLength(2);
    fetcher.backOff('t', 0, 100);
    expect(fetcher.failures('t', 0)).toBe(1);
    timers.advance(100);
    await flush();
    expect(calls).toHaveLength(3);
    fetcher.close();
  });
});
