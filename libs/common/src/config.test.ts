import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const schema = {
  port: { type: 'int', default: 9090, min: 0, max: 65535, doc: 'port' },
  etcdEndpoints: { type: 'list', default: [], doc: 'endpoints' },
  logLevel: { type: 'enum', values: ['info', 'debug'], default: 'info', doc: 'level' },
  tlsRequireClientCert: { type: 'bool', default: false, doc: 'mtls' },
} as const;

describe('loadConfig', () => {
  it('takes flags over environment over defaults, and freezes the result', () => {
    const c = loadConfig(schema, { argv: ['--port', '1234'], env: { SKEIN_PORT: '5', SKEIN_ETCD_ENDPOINTS: 'a:1, b:2', SKEIN_TLS_REQUIRE_CLIENT_CERT: 'true' } });
    expect(c).toEqual({ port: 1234, etcdEndpoints: ['a:1', 'b:2'], logLevel: 'info', tlsRequireClientCert: true });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ argv: ['--port', 'abc'], env: {} }, /--port \/ SKEIN_PORT.*not an integer/],
    [{ argv: [], env: { SKEIN_PORT: '70000' } }, /SKEIN_PORT.*above the maximum/],
    [{ argv: ['--log-level', 'loud'], env: {} }, /--log-level \/ SKEIN_LOG_LEVEL.*not one of/],
    [{ argv: ['--no-such-flag', 'x'], env: {} }, /no-such-flag/],
  ])('refuses %j naming the key', (input, message) => {
    expect(() => loadConfig(schema, input)).toThrow(ConfigError);
    expect(() => loadConfig(schema, input)).toThrow(message);
  });
});
