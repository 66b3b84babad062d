import { describe, expect, it } from 'vitest';
import { validateConnectorConfig } from './connector-config.js';

const defs = [{ name: 'file', type: 'string' as const, doc: 'path' }];

describe('connector config validation', () => {
  it('accepts a complete sink config with defaults', () => {
    expect(validateConnectorConfig('sink', defs, { 'connector.class': 'FileSink', file: '/tmp/x', topics: 'a' }).errorCount).toBe(0);
  });

  it('lists every problem by key', () => {
    const r = validateConnectorConfig('sink', defs, {
      'tasks.max': 'many',
      'value.converter': 'xml',
      'errors.tolerance': 'some',
      transforms: 'x',
      'transforms.x.type': 'Nope',
    });
    const byKey = Object.fromEntries(r.keys.filter((k) => k.errors.length > 0).map((k) => [k.def.name, k.errors[0]]));
    expect(Object.keys(byKey).sort()).toEqual(['connector.class', 'errors.tolerance', 'file', 'tasks.max', 'topics', 'transforms', 'value.converter']);
    expect(byKey['tasks.max']).toMatch(/integer/);
    expect(byKey.transforms).toMatch(/Nope/);
    expect(r.errorCount).toBe(7);
  });

  it('a sink cannot send its dead letters to a topic it reads', () => {
    const r = validateConnectorConfig('sink', defs, { 'connector.class': 'FileSink', file: 'f', topics: 'a,b', 'errors.deadletterqueue.topic.name': 'b' });
    expect(r.errorCount).toBe(1);
  });
});
