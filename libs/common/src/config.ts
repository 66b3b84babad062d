/**
 * Validated configuration. Each key has an environment variable `SKEIN_<UPPER_SNAKE>` and a flag
 * `--kebab-case`; flags override the environment, which overrides defaults. Parsed once at start,
 * returned frozen and typed; an invalid value or an unknown flag stops start-up with a message
 * naming the key.
 */

import { parseArgs } from 'node:util';
import { authorizationConfigSchema } from './security/authorization-keys.js';

type Spec =
  | { type: 'string'; default: string; doc: string }
  | { type: 'int'; default: number; min?: number; max?: number; doc: string }
  | { type: 'bool'; default: boolean; doc: string }
  | { type: 'enum'; values: readonly string[]; default: string; doc: string }
  | { type: 'list'; default: readonly string[]; doc: string };

export type ConfigSchema = Record<string, Spec>;

type ValueOf<S extends Spec> = S extends { type: 'int' } ? number : S extends { type: 'bool' } ? boolean : S extends { type: 'list' } ? string[] : string;
export type ConfigOf<T extends ConfigSchema> = { readonly [K in keyof T]: ValueOf<T[K]> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const envName = (key: string) => `SKEIN_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

function parseValue(key: string, spec: Spec, raw: string, source: string): unknown {
  const where = `${source} (--${flagName(key)} / ${envName(key)})`;
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`invalid ${where}: "${raw}" is not an integer`);
      const n = Number(raw.trim());
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`invalid ${where}: ${n} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError(`invalid ${where}: ${n} is above the maximum ${spec.max}`);
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', ''].includes(v)) return true;
      if (['false', '0', 'no'].includes(v)) return false;
      throw new ConfigError(`invalid ${where}: "${raw}" is not true or false`);
    }
    case 'enum':
      if (!spec.values.includes(raw)) throw new ConfigError(`invalid ${where}: "${raw}" is not one of ${spec.values.join(', ')}`);
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

export function loadConfig<T extends ConfigSchema>(schema: T, options: { argv?: string[]; env?: NodeJS.ProcessEnv } = {}): ConfigOf<T> {
  const argv = options.argv ?? process.argv.slice(2);
  const env = options.env ?? process.env;
  const parseOptions: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [key, spec] of Object.entries(schema)) parseOptions[flagName(key)] = { type: spec.type === 'bool' ? 'boolean' : 'string' };
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const flag = flags[flagName(key)];
    const fromEnv = env[envName(key)];
    if (flag !== undefined) out[key] = typeof flag === 'boolean' ? flag : parseValue(key, spec, flag, 'flag');
    else if (fromEnv !== undefined) out[key] = parseValue(key, spec, fromEnv, 'environment variable');
    else out[key] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  }
  return Object.freeze(out) as ConfigOf<T>;
}

export function configHelp(schema: ConfigSchema): string {
  return Object.entries(schema)
    .map(([key, spec]) => `  --${flagName(key).padEnd(30)} ${envName(key).padEnd(38)} ${spec.doc} (default: ${JSON.stringify(spec.default)})`)
    .join('\n');
}

/** Keys every service shares. */
export const commonServerConfigSchema = {
  host: { type: 'string', default: '127.0.0.1', doc: 'Address to bind the gRPC server to' },
  advertisedHost: { type: 'string', default: '', doc: 'Host clients use to reach this process (default: host)' },
  metricsPort: { type: 'int', default: -1, min: -1, max: 65535, doc: 'Port for GET /metrics; -1 disables, 0 picks a free port' },
  // Kubelet's gRPC probes cannot speak TLS: a separate plaintext port that serves grpc.health.v1
  // and nothing else keeps readiness meaningful when the service port requires TLS.
  healthPort: { type: 'int', default: -1, min: -1, max: 65535, doc: 'Plaintext port serving only grpc.health.v1 (for probes that cannot speak TLS); -1 disables, 0 picks a free port' },
  logLevel: { type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', doc: 'Log level' },
  tlsCertFile: { type: 'string', default: '', doc: 'Server certificate (PEM); enables TLS' },
  tlsKeyFile: { type: 'string', default: '', doc: 'Server private key (PEM)' },
  tlsCaFile: { type: 'string', default: '', doc: 'CA bundle (PEM) to verify client certificates' },
  tlsRequireClientCert: { type: 'bool', default: false, doc: 'Require client certificates (mTLS)' },
  // The service's own clients (tls.ts clientTlsFromConfig): a service serving TLS dials TLS, with
  // its server certificate as client certificate unless these say otherwise.
  tlsClientCaFile: { type: 'string', default: '', doc: 'CA bundle (PEM) to verify the services this one dials (default: --tls-ca-file)' },
  tlsClientCertFile: { type: 'string', default: '', doc: 'Certificate (PEM) this service presents when it dials another (default: --tls-cert-file)' },
  tlsClientKeyFile: { type: 'string', default: '', doc: 'Key (PEM) of --tls-client-cert-file (default: --tls-key-file)' },
  tlsServerName: { type: 'string', default: '', doc: 'Host name to verify the certificates of dialled services against instead of the dialled host' },
  tlsRefreshIntervalMs: { type: 'int', default: 10_000, min: 100, max: 86_400_000, doc: 'How often TLS files are checked for changes (rotation without restart)' },
  // Authentication (security/authentication.ts).
  sslPrincipalMappingRules: { type: 'string', default: 'DEFAULT', doc: 'How a client certificate names its principal: Kafka ssl.principal.mapping.rules (RULE:pattern/replacement/[LU], DEFAULT) plus SAN:<DNS|URI|EMAIL|IP>:pattern/replacement/' },
  superUsers: { type: 'string', default: '', doc: 'Principals allowed everything, separated by semicolons (User:admin;User:ops-*)' },
  internalPrincipals: { type: 'string', default: '', doc: "The cluster's own services' principals, separated by semicolons; a trailing * matches a prefix (User:broker-*)" },
  authenticationRequired: { type: 'bool', default: false, doc: 'Answer calls without an authenticated principal with UNAUTHENTICATED (health checks stay open)' },
  shutdownGraceMs: { type: 'int', default: 10_000, min: 0, max: 600_000, doc: 'Time in-flight calls get to finish on SIGTERM' },
  // Bearer tokens and ACLs (security/authorization-config.ts).
  ...authorizationConfigSchema,
} as const satisfies ConfigSchema;
