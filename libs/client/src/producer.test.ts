import { ManualTimers } from '@skein/common/timers.js';
import { describe, expect, it } from 'vitest';
import type { SkeinClient } from './client.js';
import { Producer, type ProducerRecord } from './producer.js';

interface Sent {
  partition: number;
  values: string[];
  baseSequence?: number;
  answer: (baseOffset: bigint) => void;
}

/** The SkeinClient members the producer uses: 6 partitions, even ones led by broker 1, odd by 2; produce answered by hand. */
function fakeClient() {
  const sent: Sent[] = [];
  const client = {
    topic: async () => ({ partitions: Array.from({ length: 6 }, (_, partition) => ({ partition })) }),
    cachedLeaderId: (_t: string, p: number) => (p % 2 === 0 ? 1 : 2),
    initProducerId: async () => 7n,
    produceBatch: (_t: string, partition: number, records: ProducerRecord[], options: { baseSequence?: number }) =>
      new Promise<bigint>((answer) => sent.push({ partition, values: records.map((r) => String(r.value)), baseSequence: options.baseSequence, answer })),
  };
  return { client: client as unknown as SkeinClient, sent };
}

const settle = () => new Promise((r) => setImmediate(r));
const toPartition = (key: Buffer | undefined) => Number(key!.toString());

describe('Producer sending', () => {
  it('a record that names its partition goes there, whatever its key; one outside the topic fails its send', async () => {
    const { client, sent } = fakeClient();
    const producer = new Producer(client, { lingerMs: 0, timers: new ManualTimers() });
    void producer.send('t', [
      { key: 'any', value: 'a', partition: 4 },
      { key: 'any', value: 'b', partition: 1 },
    ]);
    await settle();
    expect(sent.map((s) => [s.partition, s.values]).sort()).toEqual([
      [1, ['b']],
      [4, ['a']],
    ]);
    await expect(producer.send('t', [{ value: 'c', partition: 6 }])).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
  });

  it('with lingerMs 0 sends a batch when its send() returns, with no timer', async () => {
    const { client, sent } = fakeClient();
    const timers = new ManualTimers();
    const producer = new Producer(client, { lingerMs: 0, partitioner: toPartition, timers });
    void producer.send('t', [
      { key: '0', value: 'a' },
      { key: '0', value: 'b' },
    ]);
    await settle();
    expect(sent.map((s) => [s.partition, s.values])).toEqual([[0, ['a', 'b']]]);
    expect(timers.pendingDelaysMs).toEqual([]);
    sent[0]!.answer(0n);
  });

  it('keeps one batch per partition in flight (idempotent sequences), many per broker, and batches what arrives meanwhile', async () => {
    const { client, sent } = fakeClient();
    const producer = new Producer(client, { lingerMs: 0, partitioner: toPartition, timers: new ManualTimers() });
    const results = [producer.send('t', [{ key: '0', value: 'a' }])];
    await settle();
    // Partition 0 has a batch in flight: these wait, and go out together.
    results.push(producer.send('t', [{ key: '0', value: 'b' }]), producer.send('t', [{ key: '0', value: 'c' }]));
    // Other partitions of the same broker (1: partitions 0, 2, 4) go out at once.
    results.push(producer.send('t', [{ key: '2', value: 'x' }]), producer.send('t', [{ key: '4', value: 'y' }]));
    await settle();
    expect(sent.map((s) => [s.partition, s.values])).toEqual([
      [0, ['a']],
      [2, ['x']],
      [4, ['y']],
    ]);
    sent[0]!.answer(10n);
    await settle();
    expect(sent.map((s) => [s.partition, s.values, s.baseSequence]).slice(3)).toEqual([[0, ['b', 'c'], 1]]);
    sent[1]!.answer(0n);
    sent[2]!.answer(0n);
    sent[3]!.answer(11n);
    const offsets = (await Promise.all(results)).map((r) => r[0]!.offset);
    expect(offsets).toEqual([10n, 11n, 12n, 0n, 0n]);
  });

  it('with lingerMs waits for the linger timer', async () => {
    const { client, sent } = fakeClient();
    const timers = new ManualTimers();
    const producer = new Producer(client, { lingerMs: 5, partitioner: toPartition, timers });
    void producer.send('t', [{ key: '1', value: 'a' }]);
    await settle();
    expect(sent).toEqual([]);
    timers.advance(5);
    await settle();
    expect(sent.map((s) => s.values)).toEqual([['a']]);
  });

  it('with lingerMs, one send over several partitions has every batch sent when the linger ends', async () => {
    const { client, sent } = fakeClient();
    const timers = new ManualTimers();
    const producer = new Producer(client, { lingerMs: 5, partitioner: toPartition, timers });
    void producer.send('t', [
      { key: '1', value: 'a' },
      { key: '2', value: 'b' },
      { key: '1', value: 'c' },
    ]);
    await settle();
    timers.advance(5);
    await settle();
    expect(sent.map((s) => [s.partition, s.values]).sort()).toEqual([
      [1, ['a', 'c']],
      [2, ['b']],
    ]);
  });
});
