import { describe, expect, it } from 'vitest';
import { effectiveConfigs, topicNameProblem, validateTopicConfigs } from './topic-config.js';

describe('topicNameProblem', () => {
  it.each(['a', 'orders.v1', 'A-b_c.9', 'x'.repeat(249)])('accepts %s', (name) => {
    expect(topicNameProblem(name)).toBeUndefined();
  });
  it.each(['', '.', '..', 'x'.repeat(250), 'a/b', 'a b', 'ä', 'a\u0000'])('refuses %j', (name) => {
    expect(topicNameProblem(name)).toBeTypeOf('string');
  });
});

describe('validateTopicConfigs', () => {
  it('normalises valid values', () => {
    const r = validateTopicConfigs({ 'retention.ms': ' 1000 ', 'cleanup.policy': 'delete,compact', 'unclean.leader.election.enable': 'TRUE' }, { replicationFactor: 3 });
    expect(r.problems).toEqual([]);
    expect(r.configs).toEqual({ 'retention.ms': '1000', 'cleanup.policy': 'compact,delete', 'unclean.leader.election.enable': 'true' });
  });
  it('reports every problem, each naming its key', () => {
    const r = validateTopicConfigs({ 'retention.ms': 'soon', 'no.such.key': '1', 'segment.bytes': '10', 'min.insync.replicas': '3' }, { replicationFactor: 2 });
    expect(r.problems.map((p) => p.key).sort()).toEqual(['min.insync.replicas', 'no.such.key', 'retention.ms', 'segment.bytes']);
  });
  it('fills every key with its effective value', () => {
    const eff = effectiveConfigs({ 'retention.ms': '5' }, { 'segment.bytes': '2048' });
    expect(eff.find((e) => e.name === 'retention.ms')).toEqual({ name: 'retention.ms', value: '5', isDefault: false });
    expect(eff.find((e) => e.name === 'segment.bytes')).toEqual({ name: 'segment.bytes', value: '2048', isDefault: true });
    expect(eff.find((e) => e.name === 'cleanup.policy')).toEqual({ name: 'cleanup.policy', value: 'delete', isDefault: true });
  });
});
