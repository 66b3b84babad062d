/**
 * The one way a Skein service process starts: every role's `main.ts` is a call to `runService`.
 * The shell owns what every role shares, so each capability is added once, here:
 * - configuration: `--help`, flags and `SKEIN_*` environment through one schema, validated once;
 *   an invalid value stops start-up (exit 2) naming the key; `SKEIN_*` variables no service
 *   knows are reported at start-up;
 * - the gRPC server (grpc-server.ts): TLS/mTLS from the common keys (files re-read when they
 *   change), connection and message limits, health, reflection, per-RPC metrics, malformed-request
 *   and error mapping; with `--health-port`, a second plaintext port serving grpc.health.v1 and
 *   nothing else (kubelet gRPC probes cannot speak TLS);
 * - security: the Authenticator (principals from client certificates; UNAUTHENTICATED with
 *   --authentication-required) and the client TLS every internal client dials with
 *   (`clientCredentials`), so no service builds its own;
 * - `/metrics` (prom-client) when `--metrics-port` is set, with the URL in the log;
 * - graceful shutdown on SIGTERM/SIGINT (shutdown.ts), and one place for failures no code caught:
 *   an unhandled rejection is logged and the process keeps serving; an uncaught exception is fatal.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type ConfigOf, ConfigError, configHelp, envName, loadConfig, type ConfigSchema, commonServerConfigSchema } from './config.js';
import { type GrpcServerHandle, type GrpcServerLimits, grpcServerLimitsConfigSchema, limitsFromConfig, type ServiceRegistration, serverCredentials, startGrpcServer, type TlsOptions } from './grpc-server.js';
import { createLogger } from './logger.js';
import { MetricsRegistry, startMetricsServer } from './metrics.js';
import { onShutdownSignal } from './shutdown.js';
import { authorizationFromConfig, type AuthorizationKeys, type ServiceAuthorization } from './security/authorization-config.js';
import { type Authenticator, authenticatorFromConfig } from './security/authentication.js';
import { channelCredentials, type ClientTlsConfig, clientTlsFromConfig } from './tls.js';

/** The keys the shell itself honours; every service schema spreads them. */
export const serviceShellConfigSchema = {
  ...commonServerConfigSchema,
  ...grpcServerLimitsConfigSchema,
} as const satisfies ConfigSchema;

type ShellConfig = ConfigOf<typeof serviceShellConfigSchema> & { readonly port: number };

export interface ServeOptions {
  services: ServiceRegistration[];
  /** Overrides of the configured limits (e.g. the broker's larger messages). */
  limits?: Partial<GrpcServerLimits>;
  /** Initial health per service name ('' = the whole server); default SERVING for each service. */
  health?: Record<string, 'SERVING' | 'NOT_SERVING'>;
}

export interface ServiceContext<C> {
  config: C;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Who calls: principalOf(call) / identify(call) in handlers; the server's interceptor uses the same one. */
  authenticator: Authenticator;
  /** TLS for this service's own clients (undefined: plaintext), from the --tls-client-* keys. */
  clientTls: ClientTlsConfig | undefined;
  /** Credentials every internal client (metadata, brokers, coordinators) dials with: channelCredentials(clientTls). */
  clientCredentials: grpc.ChannelCredentials;
  /**
   * Bearer tokens and ACLs (--authorizer-enabled, --jwt-*): the shell enforces the registrations'
   * `authorize` rules; the service keeps `authorization.acls` fed (followAclsFromMetadata, or the
   * metadata service's own store watch) and writes ACL changes to `authorization.audit`.
   */
  authorization: ServiceAuthorization;
  /** Starts the service's gRPC server with the configured TLS, limits, health, reflection and metrics. */
  serve(options: ServeOptions): Promise<GrpcServerHandle>;
}

export interface ServiceDefinition<S extends ConfigSchema> {
  /** Role name: the logger's `service`, the metrics label, and `skein-<name>` in messages. */
  name: string;
  description: string;
  schema: S;
  /** Extra checks after parsing; throw ConfigError naming the key. */
  validate?(config: ConfigOf<S>): void;
  start(ctx: ServiceContext<ConfigOf<S>>): Promise<{ stop(): Promise<void> }>;
}

/** TLS settings from the common keys, or undefined; inconsistent combinations are refused. */
export function tlsFromConfig(config: ConfigOf<typeof commonServerConfigSchema>): TlsOptions | undefined {
  const { tlsCertFile, tlsKeyFile, tlsCaFile, tlsRequireClientCert, tlsRefreshIntervalMs } = config;
  if (tlsCertFile === '') {
    if (tlsKeyFile !== '' || tlsCaFile !== '' || tlsRequireClientCert) {
      throw new ConfigError('--tls-key-file, --tls-ca-file and --tls-require-client-cert need --tls-cert-file / SKEIN_TLS_CERT_FILE');
    }
    return undefined;
  }
  if (tlsKeyFile === '') throw new ConfigError('--tls-cert-file needs --tls-key-file / SKEIN_TLS_KEY_FILE');
  if (tlsRequireClientCert && tlsCaFile === '') throw new ConfigError('--tls-require-client-cert needs --tls-ca-file / SKEIN_TLS_CA_FILE to verify client certificates');
  return { certFile: tlsCertFile, keyFile: tlsKeyFile, caFile: tlsCaFile || undefined, requireClientCert: tlsRequireClientCert, refreshIntervalMs: tlsRefreshIntervalMs };
}

/**
 * `SKEIN_*` variables in `env` that are neither keys of `schema` nor client-side or test settings:
 * most likely typos, which would otherwise be silently ignored.
 */
export function unknownEnvKeys(schema: ConfigSchema, env: NodeJS.ProcessEnv): string[] {
  const known = new Set(Object.keys(schema).map(envName));
  // Read by the CLI, the client library, the test harness and the failpoints, not by servers.
  const elsewhere = /^SKEIN_(METADATA|COORDINATOR|BOOTSTRAP|TLS_|FAILPOINTS$|SIM_|TEST_|BENCH_|CLI_|OUTPUT$)/;
  return Object.keys(env).filter((k) => k.startsWith('SKEIN_') && !known.has(k) && !elsewhere.test(k)).sort();
}

/** Parses the configuration (exit 2 on a bad value), starts the service, and stops it on a signal. */
export async function runService<S extends ConfigSchema>(def: ServiceDefinition<S>, argv = process.argv.slice(2), env = process.env): Promise<void> {
  const binary = `skein-${def.name}`;
  if (argv.includes('--help')) {
    console.log(`${binary}: ${def.description}\n\nOptions (flag, environment variable):\n${configHelp(def.schema)}`);
    process.exit(0);
  }
  let config: ConfigOf<S>;
  let tls: TlsOptions | undefined;
  let clientTls: ClientTlsConfig | undefined;
  let authenticator: Authenticator;
  try {
    config = loadConfig(def.schema, { argv, env });
    tls = tlsFromConfig(config as unknown as ShellConfig);
    clientTls = clientTlsFromConfig(config as unknown as ShellConfig);
    authenticator = authenticatorFromConfig(config as unknown as ShellConfig);
    // The files are read now, so a missing or mismatched certificate stops start-up naming it.
    try {
      if (tls) serverCredentials(tls);
      if (clientTls) channelCredentials(clientTls);
    } catch (err) {
      throw new ConfigError(`TLS files: ${(err as Error).message}`);
    }
    def.validate?.(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${binary}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const shell = config as unknown as ShellConfig;
  const logger = createLogger({ service: def.name, level: shell.logLevel });
  const unknown = unknownEnvKeys(def.schema, env);
  if (unknown.length > 0) logger.warn({ variables: unknown }, `environment variables ${binary} does not know are ignored (see --help)`);
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection (a bug: reported, the process keeps serving)'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception: exiting');
    process.exit(1);
  });
  let authorization: ServiceAuthorization;
  try {
    authorization = authorizationFromConfig(config as unknown as AuthorizationKeys, logger);
  } catch (err) {
    console.error(`${binary}: ${(err as Error).message}`);
    process.exit(2);
  }
  // Tokens are verified whenever any security is on (a token sent to a service that cannot verify
  // it is refused, not ignored); plain `npm start` installs neither interceptor.
  const security = authorization.enabled || authorization.jwt
    ? { tokens: { jwt: authorization.jwt, audit: authorization.audit }, authorization: authorization.enabled ? { authenticator, acls: authorization.acls, audit: authorization.audit } : undefined }
    : undefined;
  if (authorization.enabled) logger.info({ jwt: authorization.jwt !== undefined }, 'authorizer enabled: every RPC is checked against the ACLs');
  const metrics = new MetricsRegistry({ service: def.name });
  let server: GrpcServerHandle | undefined;
  try {
    const service = await def.start({
      config,
      logger,
      metrics,
      authorization,
      authenticator,
      clientTls,
      clientCredentials: channelCredentials(clientTls),
      serve: async (options) => {
        if (server) throw new Error('serve() called twice');
        server = await startGrpcServer({
          host: shell.host,
          port: shell.port,
          services: options.services,
          tls,
          logger,
          metrics,
          limits: { ...limitsFromConfig(shell), ...options.limits },
          health: options.health,
          security,
          authenticator,
          healthPort: shell.healthPort,
        });
        if (server.healthPort !== undefined) logger.info({ port: server.healthPort }, 'plaintext health-only port (grpc.health.v1 and nothing else)');
        return server;
      },
    });
    const metricsServer = shell.metricsPort >= 0 ? await startMetricsServer({ host: shell.host, port: shell.metricsPort, metrics }) : undefined;
    if (metricsServer) logger.info({ port: metricsServer.port, url: `http://${shell.host}:${metricsServer.port}/metrics` }, 'metrics on /metrics');
    onShutdownSignal(logger, async () => {
      await service.stop();
      await metricsServer?.close();
    });
  } catch (err) {
    logger.fatal({ err }, `${binary} failed to start`);
    process.exit(1);
  }
}
