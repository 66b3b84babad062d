import { describe, expect, it } from 'vitest';
import { checkClientId, checkPartition, checkPartitionEntries, checkTopicList, checkTopicName, MAX_TOPIC_NAME_LENGTH, PRODUCE_TIMEOUT_CAP_MS, produceTimeoutMs, quoteName } from './request-limits.js';

const entries = (n: number, topic = 't') => [{ topic, partitions: Array.from({ length: n }, (_, i) => ({ partition: i })) }];

describe('request limits', () => {
  it('counts partition entries across topics, a topic without partitions as one', () => {
    expect(checkPartitionEntries(entries(10), 10)).toBeUndefined();
    expect(checkPartitionEntries(entries(11), 10)).toMatch(/11 partition entries; the limit is 10 per request/);
    const empties = Array.from({ length: 11 }, (_, i) => ({ topic: `t${i}`, partitions: [] }));
    expect(checkPartitionEntries(empties, 10)).toMatch(/11 partition entries/);
    expect(checkPartitionEntries([...entries(5, 'a'), ...entries(5, 'b')], 10)).toBeUndefined();
    expect(checkPartitionEntries([...entries(5, 'a'), ...entries(6, 'b')], 10)).toMatch(/limit is 10/);
  });

  it('refuses negative partitions and over-long topic names without echoing them whole', () => {
    expect(checkPartition('X', -1)).toMatch(/must not be negative, got -1 for topic "X"/);
    expect(checkPartition('X', 0)).toBeUndefined();
    expect(checkPartitionEntries([{ topic: 'X', partitions: [{ partition: 0 }, { partition: -1 }] }], 10)).toMatch(/got -1/);
    expect(checkTopicName('a'.repeat(MAX_TOPIC_NAME_LENGTH))).toBeUndefined();
    const long = 'b'.repeat(100_000);
    const msg = checkPartitionEntries(entries(1, long), 10)!;
    expect(msg).toMatch(/100000 characters exceeds the limit of 249/);
    expect(msg.length).toBeLessThan(300);
    expect(quoteName('x'.repeat(65))).toMatch(/… \(65 characters\)$/);
  });

  it('clamps the produce timeout and bounds client ids and topic lists', () => {
    expect(produceTimeoutMs(0)).toBe(0);
    expect(produceTimeoutMs(1000)).toBe(1000);
    expect(produceTimeoutMs(0x7fffffff)).toBe(PRODUCE_TIMEOUT_CAP_MS);
    expect(checkClientId('c'.repeat(255))).toBeUndefined();
    expect(checkClientId('c'.repeat(1 << 20))).toMatch(/client_id of 1048576 characters exceeds the limit of 255/);
    expect(checkTopicList(['a', 'b'], 2)).toBeUndefined();
    expect(checkTopicList(['a', 'b', 'c'], 2)).toMatch(/3 topics; the limit is 2/);
    expect(checkTopicList(['a', 'x'.repeat(250)], 2)).toMatch(/250 characters exceeds the limit of 249/);
  });
});
