/**
 * Who is calling: the shell's `Authenticator` turns a call's transport identity into an
 * `Identity` (a principal, how it was established, and whether it is a service of the cluster or
 * a super-user), the one place authorization, quotas and audit read it from.
 *
 * Today the only mechanism is mTLS: the peer certificate of a connection the TLS layer verified
 * against the configured CA (grpc-js exposes it through `call.getAuthContext()` only when the
 * connection is authorized), mapped by the principal mapping rules (principal.ts). A call with no
 * verified certificate, or one no rule maps, is ANONYMOUS. Bearer tokens (JWT in `authorization`
 * metadata) plug in as a second mechanism in `identify`: it already receives the call's metadata.
 *
 * With `--authentication-required` the shell's interceptor answers an unauthenticated call with
 * UNAUTHENTICATED / AUTHENTICATION_REQUIRED before any handler runs; grpc.health.v1 stays open
 * (probes and load balancers check health without credentials).
 */

import type * as grpc from '@grpc/grpc-js';
import { SkeinError } from '../errors.js';
import { tokenPrincipal } from './enforcement.js';
import { ConfigError } from '../config.js';
import {
  ANONYMOUS,
  type MappingRule,
  parseMappingRules,
  parsePrincipalList,
  type Principal,
  principalFromCertificate,
  principalMatches,
  principalToString,
} from './principal.js';

/** How a principal was established. */
export type AuthenticationMechanism = 'mtls' | 'jwt' | 'none';

export interface Identity {
  readonly principal: Principal;
  /** False for ANONYMOUS: no verified certificate (or token), or a certificate no rule maps. */
  readonly authenticated: boolean;
  readonly mechanism: AuthenticationMechanism;
  /** One of the cluster's own services (--internal-principals): may call internal RPCs. */
  readonly internal: boolean;
  /** --super-users: every operation allowed (Kafka's super.users). Services are not super-users unless listed. */
  readonly superUser: boolean;
  /** Why the call is unauthenticated, for the UNAUTHENTICATED message (empty when authenticated). */
  readonly problem: string;
}

/** grpc-js's AuthContext (not exported by name): transportSecurityType and the verified sslPeerCertificate. */
export type AuthContext = ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>;

/** What identify() reads of a call: any grpc-js server call, or an interceptor's. */
export interface CallCredentialsView {
  getAuthContext(): AuthContext | null;
  readonly metadata?: grpc.Metadata;
}

export interface AuthenticatorOptions {
  rules?: readonly MappingRule[];
  superUsers?: readonly Principal[];
  internalPrincipals?: readonly Principal[];
  /** Refuse unauthenticated calls (UNAUTHENTICATED / AUTHENTICATION_REQUIRED). */
  required?: boolean;
}

/** Services whose calls never need authentication. */
const OPEN_SERVICES = new Set(['grpc.health.v1.Health']);

/** Distinct certificates remembered (by SHA-256 fingerprint); past it the cache starts over. */
const CACHE_LIMIT = 10_000;

export class Authenticator {
  readonly required: boolean;
  private readonly rules: readonly MappingRule[];
  private readonly superUsers: readonly Principal[];
  private readonly internalPrincipals: readonly Principal[];
  private readonly byFingerprint = new Map<string, Identity>();

  constructor(options: AuthenticatorOptions = {}) {
    this.rules = options.rules ?? [];
    this.superUsers = options.superUsers ?? [];
    this.internalPrincipals = options.internalPrincipals ?? [];
    this.required = options.required ?? false;
  }

  /** The identity of a call (cached per certificate: mapping runs once per client certificate). */
  identify(call: CallCredentialsView): Identity {
    // A bearer token the token interceptor verified (enforcement.ts) names the caller, before any certificate.
    const fromToken = tokenPrincipal(call.metadata);
    if (fromToken) return this.identityOf(fromToken, 'jwt');
    const cert = call.getAuthContext()?.sslPeerCertificate;
    if (!cert?.raw) return this.anonymous('no verified client certificate (connect with TLS and a certificate signed by the cluster CA)');
    const key = cert.fingerprint256;
    const known = this.byFingerprint.get(key);
    if (known) return known;
    const principal = principalFromCertificate(cert.raw, this.rules);
    const identity = principal
      ? this.identityOf(principal, 'mtls')
      : this.anonymous(
          `no principal mapping rule matches the client certificate (subject ${cert.subject?.CN ? `CN=${String(cert.subject.CN)}` : 'without CN'})`,
        );
    if (this.byFingerprint.size >= CACHE_LIMIT) this.byFingerprint.clear();
    this.byFingerprint.set(key, identity);
    return identity;
  }

  /** The principal of a call: `User:<mapped name>` or ANONYMOUS. */
  principalOf(call: CallCredentialsView): Principal {
    return this.identify(call).principal;
  }

  isSuperUser(p: Principal): boolean {
    return principalMatches(p, this.superUsers);
  }

  isInternal(p: Principal): boolean {
    return principalMatches(p, this.internalPrincipals);
  }

  /**
   * The error to answer a call to `service` with when authentication is required and the call
   * has none; undefined when it may proceed.
   */
  check(service: string, identity: Identity): SkeinError | undefined {
    if (!this.required || identity.authenticated || OPEN_SERVICES.has(service)) return undefined;
    return new SkeinError('AUTHENTICATION_REQUIRED', `authentication required: ${identity.problem}`, { metadata: { service } });
  }

  private identityOf(principal: Principal, mechanism: AuthenticationMechanism): Identity {
    return Object.freeze({
      principal,
      authenticated: true,
      mechanism,
      internal: this.isInternal(principal),
      superUser: this.isSuperUser(principal),
      problem: '',
    });
  }

  private anonymous(problem: string): Identity {
    return Object.freeze({ principal: ANONYMOUS, authenticated: false, mechanism: 'none', internal: false, superUser: false, problem });
  }
}

/** The shell's keys (commonServerConfigSchema) that configure authentication. */
export interface AuthenticationKeys {
  readonly sslPrincipalMappingRules: string;
  readonly superUsers: string;
  readonly internalPrincipals: string;
  readonly authenticationRequired: boolean;
}

/** An Authenticator from the shell's keys; invalid rules or principals stop start-up naming the key. */
export function authenticatorFromConfig(config: AuthenticationKeys): Authenticator {
  const parse = <T>(flag: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new ConfigError(`invalid --${flag}: ${(err as Error).message}`);
    }
  };
  return new Authenticator({
    rules: parse('ssl-principal-mapping-rules', () => parseMappingRules(config.sslPrincipalMappingRules)),
    superUsers: parse('super-users', () => parsePrincipalList(config.superUsers)),
    internalPrincipals: parse('internal-principals', () => parsePrincipalList(config.internalPrincipals)),
    required: config.authenticationRequired,
  });
}

export { principalToString };
