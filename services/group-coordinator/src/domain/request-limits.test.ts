import { describe, expect, it } from 'vitest';
import { commitProblem, compileTopicRegex, isLimitProblem, streamsProblem, type StreamsShape, type TopicRegex, TopicRegexCache } from './request-limits.js';

function regex(pattern: string): TopicRegex {
  const r = compileTopicRegex(pattern);
  if (isLimitProblem(r)) throw new Error(r.message);
  return r;
}

describe('subscription regexes', () => {
  it('match whole topic names, as ^(?:pattern)$ did', () => {
    expect(regex('ord').matches('orders')).toBe(false);
    expect(regex('ord.*').matches('orders')).toBe(true);
    expect(regex('a|orders').matches('orders')).toBe(true);
    expect(regex('logs-[0-9]+').matches('logs-12x')).toBe(false);
  });

  it('are resolved once per topic snapshot and pattern', () => {
    const cache = new TopicRegexCache();
    const base = regex('t.*');
    let calls = 0;
    const counting: TopicRegex = { pattern: base.pattern, matches: (t) => { calls++; return base.matches(t); } };
    const snapshot = new Map([['t1', 1], ['x', 1], ['t2', 1]]);
    expect(cache.resolve(counting, snapshot)).toEqual(['t1', 't2']);
    expect(cache.resolve(counting, snapshot)).toEqual(['t1', 't2']);
    expect(calls).toBe(3);
    // A refreshed snapshot (new topics) is matched again.
    expect(cache.resolve(counting, new Map([...snapshot, ['t3', 1]]))).toEqual(['t1', 't2', 't3']);
    expect(calls).toBe(7);
  });
});

describe('commit metadata bound', () => {
  it('counts UTF-8 bytes: exactly the limit passes, one multi-byte character over is refused', () => {
    const at = { groupId: 'g', memberId: '', offsets: [{ topic: 't', metadata: 'x'.repeat(4094) + 'é' }] };
    expect(commitProblem(at, 4096)).toBeUndefined();
    const over = { groupId: 'g', memberId: '', offsets: [{ topic: 't', metadata: 'x'.repeat(4095) + 'é' }] };
    expect(commitProblem(over, 4096)?.message).toBe('offset metadata for t is 4097 bytes; the limit is 4096 (offset.metadata.max.bytes)');
  });
});

describe('streams member bounds', () => {
  const ok: StreamsShape = { topology: [{ subtopologyId: '0', sourceTopics: ['in'], changelogTopics: ['app-s-changelog'] }], numStandbyReplicas: 1, taskOffsets: [{ taskId: '0_3', offsetSum: 12n }] };
  it('accepts a well-formed member and refuses each malformed or oversized field with a reason', () => {
    expect(streamsProblem(ok)).toBeUndefined();
    const refused = (s: Partial<StreamsShape>) => streamsProblem({ ...ok, ...s })?.message;
    expect(refused({ topology: [] })).toMatch(/needs 1 to 1000/);
    expect(refused({ topology: Array.from({ length: 1001 }, (_, i) => ({ subtopologyId: String(i), sourceTopics: ['t'], changelogTopics: [] })) })).toMatch(/1001 subtopologies/);
    expect(refused({ topology: [ok.topology[0]!, ok.topology[0]!] })).toMatch(/appears twice/);
    expect(refused({ topology: [{ subtopologyId: 'a b', sourceTopics: ['t'], changelogTopics: [] }] })).toMatch(/subtopology id/);
    expect(refused({ topology: [{ subtopologyId: '0', sourceTopics: [], changelogTopics: [] }] })).toMatch(/no source topics/);
    expect(refused({ numStandbyReplicas: -1 })).toMatch(/0 to 16/);
    expect(refused({ numStandbyReplicas: 17 })).toMatch(/0 to 16/);
    expect(refused({ taskOffsets: [{ taskId: '0-3', offsetSum: 1n }] })).toMatch(/task id/);
    expect(refused({ taskOffsets: [{ taskId: '0_3', offsetSum: -1n }] })).toMatch(/offset_sum/);
    expect(refused({ taskOffsets: Array.from({ length: 10_001 }, () => ({ taskId: '0_1', offsetSum: 0n })) })).toMatch(/10001 entries/);
  });
});
