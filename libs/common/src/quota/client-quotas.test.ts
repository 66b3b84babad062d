import { describe, expect, it } from 'vitest';
import { applyAlterations, DEFAULT_ENTITY as D, QuotaIndex } from './client-quotas.js';

describe('client quotas', () => {
  it("resolve in Kafka's order, each kind on its own, with the budget named after the caller", () => {
    const index = new QuotaIndex([
      { entity: { user: 'alice', clientId: 'etl' }, producerByteRate: 1 },
      { entity: { user: 'alice' }, producerByteRate: 2, consumerByteRate: 20 },
      { entity: { user: D }, producerByteRate: 3 },
      { entity: { clientId: 'etl' }, producerByteRate: 4, consumerByteRate: 40 },
      { entity: { clientId: D }, consumerByteRate: 50 },
    ]);
    expect(index.resolve('producer_byte_rate', 'alice', 'etl')).toEqual({ bytesPerSecond: 1, entityKey: 'u=alice;c=etl' });
    // All of alice's other clients share her user budget.
    expect(index.resolve('producer_byte_rate', 'alice', 'web')).toEqual({ bytesPerSecond: 2, entityKey: 'u=alice' });
    expect(index.resolve('consumer_byte_rate', 'alice', 'etl')).toEqual({ bytesPerSecond: 20, entityKey: 'u=alice' });
    // The default user: each user gets a budget of its own.
    expect(index.resolve('producer_byte_rate', 'bob', 'etl')).toEqual({ bytesPerSecond: 3, entityKey: 'u=bob' });
    // Users before client ids; a kind no user entity sets falls through to the client ids.
    expect(index.resolve('consumer_byte_rate', 'bob', 'etl')).toEqual({ bytesPerSecond: 40, entityKey: 'c=etl' });
    expect(index.resolve('consumer_byte_rate', 'bob', 'other')).toEqual({ bytesPerSecond: 50, entityKey: 'c=other' });
    expect(new QuotaIndex().resolve('producer_byte_rate', 'bob', 'x')).toBeUndefined();
  });

  it('alterations set, remove, and drop an entity left empty; invalid ones are refused', () => {
    let qs = applyAlterations([], [{ entity: { user: 'alice' }, producerByteRate: 100, consumerByteRate: 200 }]);
    expect(qs).toEqual([{ entity: { user: 'alice' }, producerByteRate: 100, consumerByteRate: 200 }]);
    qs = applyAlterations(qs, [{ entity: { user: 'alice' }, removeProducerByteRate: true }]);
    expect(qs).toEqual([{ entity: { user: 'alice' }, consumerByteRate: 200 }]);
    expect(applyAlterations(qs, [{ entity: { user: 'alice' }, removeConsumerByteRate: true }])).toEqual([]);
    expect(() => applyAlterations([], [{ entity: {}, producerByteRate: 1 }])).toThrow(/names a user, a client id, or both/);
    expect(() => applyAlterations([], [{ entity: { user: '' }, producerByteRate: 1 }])).toThrow(/must not be empty/);
    expect(() => applyAlterations([], [{ entity: { user: 'a' }, producerByteRate: 0 }])).toThrow(/producer_byte_rate must be/);
    expect(() => applyAlterations([], [{ entity: { user: 'a' }, consumerByteRate: 1.5 }])).toThrow(/consumer_byte_rate must be/);
  });
});
