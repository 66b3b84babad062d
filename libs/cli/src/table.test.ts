import { describe, expect, it } from 'vitest';
import { formatTable, headerOf } from './table.js';

describe('formatTable', () => {
  it('prints aligned columns under an upper-case header: no (index) column, no quotes, no borders', () => {
    const out = formatTable(['topic', 'partition', 'committedOffset', 'logEndOffset', 'lag'], [
      { topic: 'orders', partition: 0, committedOffset: 5n, logEndOffset: 20n, lag: 15n },
      { topic: 'orders-eu', partition: 11, committedOffset: 1234567n, logEndOffset: 1234567n, lag: 0n },
    ]);
    expect(out).toBe([
      'TOPIC      PARTITION  COMMITTED-OFFSET  LOG-END-OFFSET  LAG',
      'orders             0                 5              20   15',
      'orders-eu         11           1234567         1234567    0',
      '',
    ].join('\n'));
    expect(out).not.toContain('(index)');
    expect(out).not.toMatch(/['"│┌─]/);
  });

  it('awk can count on it: an empty cell is a dash, a line break inside a cell never splits its row', () => {
    const out = formatTable(['broker', 'host', 'rack'], [
      { broker: 1, host: 'b1.local', rack: undefined },
      { broker: 2, host: 'b2.local', rack: 'zone a\nb' },
    ]);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]!.trim().split(/\s+/)).toEqual(['1', 'b1.local', '-']);
    expect(lines[2]).toBe('     2  b2.local  zone a b');
  });

  it('prints the header alone for no rows, and keeps only the columns asked for, in their order', () => {
    expect(formatTable(['group', 'members'], [])).toBe('GROUP  MEMBERS\n');
    expect(formatTable(['b', 'a'], [{ a: 'x', b: 'y', c: 'z' }])).toBe('B  A\ny  x\n');
  });

  it('names columns in Kafka tools style', () => {
    expect(headerOf('logEndOffset')).toBe('LOG-END-OFFSET');
    expect(headerOf('replicationFactor')).toBe('REPLICATION-FACTOR');
    expect(headerOf('isr')).toBe('ISR');
  });
});
