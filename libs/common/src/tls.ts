/**
 * TLS for both ends of every Skein connection, from PEM files that are re-read when they change
 * (certificate rotation without a restart).
 *
 * - `FileCertificateProvider` implements grpc-js's CertificateProvider over a CA file and/or a
 *   certificate and key: it reads them at construction (a bad file stops start-up), then checks
 *   them every `refreshIntervalMs` and publishes a new set only when the content changed and the
 *   key matches the certificate, so a rotation caught half-written keeps the previous pair (logged)
 *   instead of breaking new connections. Listeners are grpc-js's own credentials objects.
 * - Server side, `serverCredentials(tls)` gives grpc-js certificate-provider credentials: grpc-js
 *   calls `setSecureContext` on its HTTP/2 server on each update, so connections accepted after a
 *   rotation present the new certificate (and verify clients with the new CA); open connections
 *   keep the context they were established with.
 * - Client side, `channelCredentials(cfg)` gives credentials whose secure context is built per new
 *   connection from the latest files: a channel that reconnects, and every new channel, uses the
 *   rotated certificate. The server-name override replaces the host name checked against the
 *   server certificate (connecting by IP to a certificate issued for a DNS name).
 *
 * Providers are shared per set of files in a process, so a service's server and all its clients
 * poll each file once.
 */

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, createSecureContext, rootCertificates, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ConfigError, type ConfigOf, type commonServerConfigSchema } from './config.js';

type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;

export const DEFAULT_TLS_REFRESH_INTERVAL_MS = 10_000;

/** What a client needs to dial TLS: the CA to verify servers, optionally its own certificate for mTLS. */
export interface ClientTlsConfig {
  /** CA bundle (PEM) that signed the servers' certificates; absent: Node's bundled public roots. */
  caFile?: string;
  /** Client certificate (PEM) for mTLS; with keyFile. */
  certFile?: string;
  keyFile?: string;
  /** Host name to verify the server certificate against instead of the dialled host. */
  serverName?: string;
  /** How often the files are checked for changes (default 10 s). */
  refreshIntervalMs?: number;
}

/** What a server needs to serve TLS. */
export interface ServerTlsConfig {
  certFile: string;
  keyFile: string;
  /** CA bundle (PEM) that signed client certificates; with it, clients are asked for one. */
  caFile?: string;
  /** Refuse a connection whose client certificate is missing or not signed by caFile (mTLS). */
  requireClientCert?: boolean;
  refreshIntervalMs?: number;
}

function readIdentity(certFile: string, keyFile: string): { certificate: Buffer; privateKey: Buffer } {
  const certificate = readFileSync(certFile);
  const privateKey = readFileSync(keyFile);
  // Throws on unreadable PEM, and on a key that is not the certificate's (a rotation half done).
  if (!new X509Certificate(certificate).checkPrivateKey(createPrivateKey(privateKey))) {
    throw new Error(`the private key in ${keyFile} does not belong to the certificate in ${certFile}`);
  }
  createSecureContext({ cert: certificate, key: privateKey });
  return { certificate, privateKey };
}

function readCa(caFile: string): Buffer {
  const ca = readFileSync(caFile);
  createSecureContext({ ca });
  return ca;
}

/**
 * CA and identity from files, checked every refreshIntervalMs while anything listens (the timer
 * never keeps a process alive). Implements grpc-js's experimental CertificateProvider.
 */
export class FileCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: Buffer | undefined;
  private identity: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;
  private lastCheckMs = Date.now();
  private lastError = '';
  /** Called after each published change (tests and logs); errors of a refresh go to onError. */
  onChange: (() => void) | undefined;
  onError: ((err: Error) => void) | undefined;

  constructor(
    readonly files: { caFile?: string; certFile?: string; keyFile?: string },
    private readonly refreshIntervalMs = DEFAULT_TLS_REFRESH_INTERVAL_MS,
  ) {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) throw new Error('a TLS certificate needs its key, and a key its certificate');
    // The first read throws: a missing or broken file stops start-up with the file named.
    this.ca = files.caFile ? readCa(files.caFile) : undefined;
    this.identity = files.certFile && files.keyFile ? readIdentity(files.certFile, files.keyFile) : undefined;
  }

  /** Re-reads the files; publishes what changed and is valid. Returns whether anything changed. */
  refresh(): boolean {
    this.lastCheckMs = Date.now();
    let changed = false;
    try {
      if (this.files.caFile) {
        const ca = readCa(this.files.caFile);
        if (!this.ca?.equals(ca)) {
          this.ca = ca;
          changed = true;
          for (const l of this.caListeners) l({ caCertificate: ca });
        }
      }
      if (this.files.certFile && this.files.keyFile) {
        const identity = readIdentity(this.files.certFile, this.files.keyFile);
        if (!this.identity?.certificate.equals(identity.certificate) || !this.identity.privateKey.equals(identity.privateKey)) {
          this.identity = identity;
          changed = true;
          for (const l of this.identityListeners) l(identity);
        }
      }
      this.lastError = '';
    } catch (err) {
      // Kept: the previous files stay in use. Reported once per distinct problem.
      const message = (err as Error).message;
      if (message !== this.lastError) {
        this.lastError = message;
        this.onError?.(err as Error);
      }
    }
    if (changed) this.onChange?.();
    return changed;
  }

  /** The certificate currently served or presented (undefined without one). */
  get certificate(): Buffer | undefined {
    return this.identity?.certificate;
  }

  private watch(): void {
    if (this.timer || this.caListeners.size + this.identityListeners.size === 0) return;
    // Unwatched for longer than an interval (a client whose last channel closed): check now, so a
    // new connection never starts from files older than one interval.
    if (Date.now() - this.lastCheckMs > this.refreshIntervalMs) this.refresh();
    this.timer = setInterval(() => this.refresh(), this.refreshIntervalMs);
    this.timer.unref();
  }

  private unwatch(): void {
    if (this.caListeners.size + this.identityListeners.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.watch();
    const ca = this.ca;
    if (ca) process.nextTick(listener, { caCertificate: ca });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
    this.unwatch();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.watch();
    const identity = this.identity;
    if (identity) process.nextTick(listener, identity);
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
    this.unwatch();
  }
}

/** Node's bundled public roots, for a client given no CA file (grpc-js's provider credentials need a CA). */
class StaticCaProvider implements grpc.experimental.CertificateProvider {
  private readonly ca = Buffer.from(rootCertificates.join('\n'));
  addCaCertificateListener(listener: CaListener): void {
    process.nextTick(listener, { caCertificate: this.ca });
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(): void {}
  removeIdentityCertificateListener(): void {}
}

const providers = new Map<string, FileCertificateProvider>();

/**
 * The process's provider for these files (one per distinct set; the first caller's interval wins).
 * Shared because grpc-js treats channel credentials with the same providers as equal, so clients
 * to the same address share connections.
 */
export function certificateProvider(files: { caFile?: string; certFile?: string; keyFile?: string }, refreshIntervalMs?: number): FileCertificateProvider {
  const key = JSON.stringify([files.caFile ?? '', files.certFile ?? '', files.keyFile ?? '']);
  let p = providers.get(key);
  if (!p) providers.set(key, (p = new FileCertificateProvider(files, refreshIntervalMs)));
  return p;
}

const credentialsCache = new Map<string, grpc.ChannelCredentials>();
const systemRoots = new StaticCaProvider();

/**
 * Channel credentials for `cfg`: plaintext when `cfg` is undefined, TLS otherwise (mTLS with a
 * certificate), re-reading rotated files for each new connection. The same config gives the same
 * credentials object, so grpc-js can share subchannels between clients.
 */
export function channelCredentials(cfg: ClientTlsConfig | undefined): grpc.ChannelCredentials {
  if (!cfg) return grpc.credentials.createInsecure();
  const key = JSON.stringify([cfg.caFile ?? '', cfg.certFile ?? '', cfg.keyFile ?? '', cfg.serverName ?? '']);
  let creds = credentialsCache.get(key);
  if (creds) return creds;
  const ca = cfg.caFile ? certificateProvider({ caFile: cfg.caFile }, cfg.refreshIntervalMs) : systemRoots;
  const identity = cfg.certFile && cfg.keyFile ? certificateProvider({ certFile: cfg.certFile, keyFile: cfg.keyFile }, cfg.refreshIntervalMs) : null;
  const serverName = cfg.serverName;
  const verify: grpc.VerifyOptions = serverName ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert) } : {};
  creds = grpc.experimental.createCertificateProviderChannelCredentials(ca, identity, verify);
  credentialsCache.set(key, creds);
  return creds;
}

/** Server credentials: plaintext without `tls`; otherwise TLS (mTLS per requireClientCert) from files re-read on change. */
export function serverCredentials(tls: ServerTlsConfig | undefined, logger?: Logger): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const identity = certificateProvider({ certFile: tls.certFile, keyFile: tls.keyFile }, tls.refreshIntervalMs);
  const ca = tls.caFile ? certificateProvider({ caFile: tls.caFile }, tls.refreshIntervalMs) : null;
  if (logger) {
    for (const p of [identity, ca]) {
      if (!p || p.onChange) continue;
      p.onChange = () => logger.info({ files: p.files }, 'TLS files changed: new connections use them');
      p.onError = (err) => logger.warn({ err, files: p.files }, 'TLS files changed but cannot be used; keeping the previous ones');
    }
  }
  // grpc-js 1.14 names this function's parameters (caCertificateProvider, identityCertificateProvider)
  // but hands them to a constructor taking (identity, ca): the identity goes first, the CA second.
  return grpc.experimental.createCertificateProviderServerCredentials(identity, ca, tls.requireClientCert ?? false);
}

/** The keys of commonServerConfigSchema clientTlsFromConfig reads. */
type ClientKeys = Pick<
  ConfigOf<typeof commonServerConfigSchema>,
  'tlsCaFile' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsClientCaFile' | 'tlsClientCertFile' | 'tlsClientKeyFile' | 'tlsServerName' | 'tlsRefreshIntervalMs'
>;

/**
 * The client TLS config of a service (the --tls-client-* keys): undefined (plaintext) unless it
 * serves TLS or is given a client CA or certificate. A service that serves TLS dials TLS and
 * presents its server certificate unless told otherwise: one certificate, issued for server and
 * client auth, is the service's identity in both directions (as a Kafka broker's one keystore).
 * Refuses a client certificate without its key.
 */
export function clientTlsFromConfig(config: ClientKeys): ClientTlsConfig | undefined {
  const caFile = config.tlsClientCaFile || config.tlsCaFile;
  const certFile = config.tlsClientCertFile || config.tlsCertFile;
  const keyFile = config.tlsClientKeyFile || config.tlsKeyFile;
  if (config.tlsClientCertFile !== '' && config.tlsClientKeyFile === '')
    throw new ConfigError('--tls-client-cert-file needs --tls-client-key-file / SKEIN_TLS_CLIENT_KEY_FILE');
  if (config.tlsClientKeyFile !== '' && config.tlsClientCertFile === '')
    throw new ConfigError('--tls-client-key-file needs --tls-client-cert-file / SKEIN_TLS_CLIENT_CERT_FILE');
  if (config.tlsCertFile === '' && config.tlsClientCaFile === '' && config.tlsClientCertFile === '') return undefined;
  return {
    caFile: caFile || undefined,
    certFile: certFile || undefined,
    keyFile: certFile ? keyFile : undefined,
    serverName: config.tlsServerName || undefined,
    refreshIntervalMs: config.tlsRefreshIntervalMs,
  };
}

/**
 * Client TLS from the environment the client library and the CLI read: SKEIN_TLS_CA_FILE,
 * SKEIN_TLS_CERT_FILE, SKEIN_TLS_KEY_FILE, SKEIN_TLS_SERVER_NAME; SKEIN_TLS=true alone dials TLS
 * verified against Node's public roots. Undefined (plaintext) when none is set.
 */
export function clientTlsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientTlsConfig | undefined {
  const caFile = env.SKEIN_TLS_CA_FILE || undefined;
  const certFile = env.SKEIN_TLS_CERT_FILE || undefined;
  const keyFile = env.SKEIN_TLS_KEY_FILE || undefined;
  const serverName = env.SKEIN_TLS_SERVER_NAME || undefined;
  const on = ['1', 'true', 'yes'].includes((env.SKEIN_TLS ?? '').toLowerCase());
  if (!on && !caFile && !certFile && !keyFile && !serverName) return undefined;
  return { caFile, certFile, keyFile, serverName };
}
