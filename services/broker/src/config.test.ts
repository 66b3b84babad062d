import { describe, expect, it } from 'vitest';
import { ConfigError, loadBrokerConfig } from './config.js';

describe('loadBrokerConfig', () => {
  it('applies defaults and parses addresses', () => {
    const c = loadBrokerConfig({ SKEIN_BROKER_ID: '2', SKEIN_DATA_DIR: '/d', SKEIN_METADATA_ADDRESSES: 'a:1, b:2' });
    expect(loadBrokerConfig({}, ['--broker-id', '3', '--data-dir', '/x']).brokerId).toBe(3);
    expect(c).toMatchObject({ brokerId: 2, dataDir: '/d', host: '127.0.0.1', port: 9092, metadataAddresses: ['a:1', 'b:2'] });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('serves ReadReplicaLog only when asked: off by default, on with the flag or SKEIN_REPLICA_LOG_READ_ENABLED', () => {
    const base = { SKEIN_BROKER_ID: '1', SKEIN_DATA_DIR: '/d' };
    expect(loadBrokerConfig(base).replicaLogReadEnabled).toBe(false);
    expect(loadBrokerConfig(base, ['--replica-log-read-enabled']).replicaLogReadEnabled).toBe(true);
    expect(loadBrokerConfig({ ...base, SKEIN_REPLICA_LOG_READ_ENABLED: 'true' }).replicaLogReadEnabled).toBe(true);
  });

  it('names the key of an invalid value', () => {
    expect(() => loadBrokerConfig({ SKEIN_DATA_DIR: '/d' })).toThrow(/SKEIN_BROKER_ID/);
    expect(() => loadBrokerConfig({ SKEIN_BROKER_ID: '-1', SKEIN_DATA_DIR: '/d' })).toThrow(ConfigError);
    expect(() => loadBrokerConfig({ SKEIN_BROKER_ID: '1', SKEIN_DATA_DIR: '/d', SKEIN_METADATA_ADDRESSES: 'nohost' })).toThrow(/SKEIN_METADATA_ADDRESSES/);
  });

  it('has the request limits of docs/limits.md, bounded so responses fit the gRPC send limit', () => {
    const base = { SKEIN_BROKER_ID: '1', SKEIN_DATA_DIR: '/d' };
    expect(loadBrokerConfig(base)).toMatchObject({ fetchMaxBytes: 50 << 20, subscribeMaxBytes: 8 << 20, maxPartitionsPerRequest: 10_000 });
    expect(loadBrokerConfig({ ...base, SKEIN_MAX_PARTITIONS_PER_REQUEST: '500' }).maxPartitionsPerRequest).toBe(500);
    expect(() => loadBrokerConfig({ ...base, SKEIN_FETCH_MAX_BYTES: String(64 << 20) })).toThrow(/SKEIN_FETCH_MAX_BYTES/);
    expect(() => loadBrokerConfig({ ...base, SKEIN_SUBSCRIBE_MAX_BYTES: String(64 << 20) })).toThrow(/SKEIN_SUBSCRIBE_MAX_BYTES/);
    expect(() => loadBrokerConfig({ ...base, SKEIN_MAX_PARTITIONS_PER_REQUEST: '0' })).toThrow(/SKEIN_MAX_PARTITIONS_PER_REQUEST/);
  });
});
