/**
 * Bearer tokens and authorization of every call, as two server interceptors the shell installs on
 * every service (grpc-server.ts), around the shell's own interceptor:
 *
 * - `tokenInterceptor` (first: before the shell's authentication check) verifies an
 *   `authorization: Bearer <JWT>` (jwt.ts) before any message reaches a handler, and records the
 *   principal against the call's metadata, where the Authenticator's identify() finds it
 *   (`tokenPrincipal`): a token principal takes the place of a certificate's. A token that does
 *   not verify ends the call with UNAUTHENTICATED / AUTHENTICATION_FAILED and the reason; it never
 *   falls back to the certificate or to anonymous.
 * - `authorizationInterceptor` (last: after the limits and the malformed-request check), with the
 *   authorizer enabled, runs the RPC's rule (ServiceRegistration.authorize) on every request
 *   message (a unary request and each message of a stream) and asks the authorizer about each
 *   action it names; one refused action ends the call with PERMISSION_DENIED and the reason of the
 *   resource type (TOPIC_AUTHORIZATION_FAILED...), naming the principal, resource and operation,
 *   and writes an audit record. An RPC without a rule needs cluster_action (internal only), so a
 *   new RPC stays closed until its service declares what it needs.
 *
 * Handlers read the outcome with `requestAuth(call)`: the principal, and `allowed(action)` for
 * filtering lists (ListTopics shows only topics the caller may describe).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SkeinError, toServiceError } from '../errors.js';
import type { AclCache } from './acl-cache.js';
import { type Action, type AuthzPrincipal, CLUSTER_RESOURCE_NAME, type Decision, denialReason, principalString } from './authorizer.js';
import { bearerToken, type JwtVerifier } from './jwt.js';

export type { AuthzPrincipal };

/**
 * What one RPC needs: the actions a request asks for (given the caller, so a rule can also check
 * identity, e.g. a replica fetch only under the caller's own broker id, by throwing a SkeinError),
 * or 'any': every caller, and the handler filters what it answers.
 */
export type AuthorizeRule = ((request: never, principal: AuthzPrincipal) => readonly Requirement[]) | 'any';
/** An action, or a group of which any one suffices (Kafka: create on the cluster or on the topic). */
export type Requirement = Action | readonly Action[];
/** Rules by method name as in the generated service definition (camelCase: `produce`). */
export type AuthorizeMap = Readonly<Record<string, AuthorizeRule>>;

/** The part of the shell's Authenticator (authentication.ts) these interceptors use. */
export interface CallIdentifier {
  identify(call: { getAuthContext(): ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']> | null; readonly metadata?: grpc.Metadata }): {
    readonly principal: { readonly type: string; readonly name: string };
    readonly internal: boolean;
    readonly superUser: boolean;
  };
}

export interface AuthorizationSettings {
  readonly authenticator: CallIdentifier;
  readonly acls: AclCache;
  /** The `audit` child logger: one record per denial and per ACL change. */
  readonly audit: Logger;
}

export interface RequestAuth {
  readonly principal: AuthzPrincipal;
  /** Whether the caller may perform the action (always true with the authorizer off). */
  allowed(action: Action): boolean;
  /**
   * Throws the denial the interceptor would answer with (audited the same way) unless the caller
   * meets every requirement `rule` names for `request`; with the authorizer off the rule is not
   * even run. For streams that carry many requests and answer a refusal per request instead of
   * ending (their own rule is 'any': the handler checks each request).
   */
  check<R>(rule: (request: R) => readonly Requirement[], request: R, rpc: string): void;
}

export const clusterAction = (operation: Action['operation']): Action => ({ resourceType: 'cluster', resourceName: CLUSTER_RESOURCE_NAME, operation });
const INTERNAL_ONLY = (): Requirement[] => [clusterAction('cluster_action')];

/** Outcomes keyed by the call's metadata object (the one handlers see), so no header can forge them. */
const tokenPrincipals = new WeakMap<grpc.Metadata, { type: 'User'; name: string }>();
const requestAuths = new WeakMap<grpc.Metadata, RequestAuth>();
const OPEN: RequestAuth = Object.freeze({ principal: Object.freeze({ type: 'User', name: 'ANONYMOUS' }), allowed: () => true, check: () => undefined });

/** The principal a verified bearer token gave this call, if any (the Authenticator consults it first). */
export function tokenPrincipal(metadata: grpc.Metadata | undefined): { type: 'User'; name: string } | undefined {
  return metadata ? tokenPrincipals.get(metadata) : undefined;
}

/** The caller of a call, as the authorization interceptor saw it (allow-all where it did not run: the authorizer off, in-process tests). */
export function requestAuth(call: { metadata: grpc.Metadata }): RequestAuth {
  return requestAuths.get(call.metadata) ?? OPEN;
}

/** The error a refused action answers with: the reason of its resource type, naming what was refused. */
export function denialError(principal: AuthzPrincipal, action: Action, decision?: Decision): SkeinError {
  const why = decision?.basis === 'deny_acl' ? 'an ACL denies it' : 'no ACL allows it';
  return new SkeinError(
    denialReason(action.resourceType),
    `${principalString(principal)} may not ${action.operation} ${action.resourceType} ${action.resourceName} (${why})`,
    {
      metadata: { principal: principalString(principal), resource_type: action.resourceType, resource_name: action.resourceName, operation: action.operation },
    },
  );
}

/**
 * Verifies bearer tokens. Without a verifier (no --jwt-jwks-file/url) a presented token is refused
 * rather than ignored: the caller meant to authenticate and would otherwise run as anonymous.
 */
export function tokenInterceptor(jwt: JwtVerifier | undefined, audit: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    let verifying: Promise<boolean> = Promise.resolve(true);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata: grpc.Metadata, forward: (m: grpc.Metadata) => void) => {
            const header = metadata.get('authorization')[0];
            if (header === undefined) {
              forward(metadata);
              return;
            }
            const refuse = (message: string) => {
              audit.info(
                {
                  event: 'authentication_failed',
                  mechanism: 'jwt',
                  rpc: method.path.slice(1),
                  client: call.getConnectionInfo().remoteAddress ?? '',
                  reason: message,
                },
                'authentication failed',
              );
              call.sendStatus(toServiceError(new SkeinError('AUTHENTICATION_FAILED', message, { metadata: { mechanism: 'jwt' } })));
              return false;
            };
            const token = bearerToken(typeof header === 'string' ? header : header.toString('utf8'));
            if (!token) {
              verifying = Promise.resolve(refuse('authorization metadata must be "Bearer <token>"'));
              return;
            }
            if (!jwt) {
              verifying = Promise.resolve(refuse('this service accepts no bearer tokens (no --jwt-jwks-file or --jwt-jwks-url)'));
              return;
            }
            verifying = jwt.verify(token).then(
              (p) => {
                tokenPrincipals.set(metadata, { type: 'User', name: p.name });
                forward(metadata);
                return true;
              },
              (err: unknown) => refuse((err as Error).message),
            );
          },
          onReceiveMessage: (message: unknown, forward: (m: unknown) => void) => {
            void verifying.then((ok) => ok && forward(message));
          },
          onReceiveHalfClose: (forward: () => void) => {
            void verifying.then((ok) => ok && forward());
          },
        }),
    });
  };
}

export interface ServiceRules {
  definition: grpc.ServiceDefinition;
  authorize?: AuthorizeMap;
}

/** Throws the denial of the first requirement none of whose options is allowed, after auditing it. */
function authorizeAll(settings: AuthorizationSettings, principal: AuthzPrincipal, requirements: readonly Requirement[], rpc: string, client: string): void {
  const authorizer = settings.acls.current;
  for (const requirement of requirements) {
    const options = Array.isArray(requirement) ? (requirement as readonly Action[]) : [requirement as Action];
    const decisions = options.map((a) => authorizer.authorize(principal, a));
    if (!decisions.some((d) => d.allowed)) {
      // The last option is the most specific one (e.g. the topic after the cluster): named in the answer.
      const action = options[options.length - 1]!;
      const decision = decisions[decisions.length - 1]!;
      settings.audit.info(
        {
          event: 'denied',
          principal: principalString(principal),
          operation: action.operation,
          resourceType: action.resourceType,
          resourceName: action.resourceName,
          rpc,
          client,
          basis: decision.basis,
          ...(decision.acl ? { acl: decision.acl } : {}),
        },
        'authorization denied',
      );
      throw denialError(principal, action, decision);
    }
  }
}

/** Enforces the services' rules with the authorizer over the cached ACLs (see the file comment). */
export function authorizationInterceptor(settings: AuthorizationSettings, services: readonly ServiceRules[], logger: Logger): grpc.ServerInterceptor {
  const rules = new Map<string, AuthorizeRule>();
  for (const s of services) {
    for (const [method, def] of Object.entries(s.definition)) rules.set(def.path, s.authorize?.[method] ?? INTERNAL_ONLY);
  }
  return (method, call) => {
    const rule = rules.get(method.path);
    const rpc = method.path.slice(1);
    let principal: AuthzPrincipal | undefined;
    let rejected = false;
    const client = () => call.getConnectionInfo().remoteAddress ?? '';
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata: grpc.Metadata, forward: (m: grpc.Metadata) => void) => {
            const identity = settings.authenticator.identify({ getAuthContext: () => call.getAuthContext(), metadata });
            const p: AuthzPrincipal = {
              type: identity.principal.type,
              name: identity.principal.name,
              internal: identity.internal,
              superUser: identity.superUser,
            };
            principal = p;
            requestAuths.set(metadata, {
              principal: p,
              allowed: (action) => settings.acls.current.authorize(p, action).allowed,
              check: (rule, request, name) => authorizeAll(settings, p, rule(request), name, client()),
            });
            forward(metadata);
          },
          onReceiveMessage: (message: unknown, forward: (m: unknown) => void) => {
            if (rejected) return;
            // Health and reflection (not ours) pass; 'any' rules leave it to the handler.
            if (!rule || rule === 'any' || !principal) {
              forward(message);
              return;
            }
            try {
              authorizeAll(settings, principal, (rule as (r: unknown, p: AuthzPrincipal) => readonly Requirement[])(message, principal), rpc, client());
            } catch (err) {
              // A rule's own refusal (an identity check) is audited like an ACL's.
              const e = err as SkeinError;
              if (e.code === grpc.status.PERMISSION_DENIED && e.metadata?.broker_id !== undefined) {
                settings.audit.info(
                  { event: 'denied', principal: principalString(principal), rpc, client: client(), basis: 'identity', reason: e.message },
                  'authorization denied',
                );
              }
              rejected = true;
              call.sendStatus(toServiceError(err, (u) => logger.error({ err: u, rpc }, 'unexpected error authorizing a call')));
              return;
            }
            forward(message);
          },
          onReceiveHalfClose: (forward: () => void) => {
            if (!rejected) forward();
          },
        }),
    });
  };
}

/** Default rule mapping a principal name to a broker id: broker-0, skein-broker-0, skein-broker-0.skein-broker.ns.svc. */
export { DEFAULT_BROKER_PRINCIPAL_PATTERN } from './authorization-keys.js';

/** The broker id a principal stands for under `pattern` (its first group, on the principal's name), if any. */
export function brokerIdOf(principal: Pick<AuthzPrincipal, 'name'>, pattern: RegExp): number | undefined {
  const m = pattern.exec(principal.name);
  if (!m?.[1]) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * The requirement of an RPC a broker makes about itself (register, heartbeat, AlterPartition,
 * producer id blocks, replica fetch): only an internal principal whose name maps to that very
 * broker id (`pattern`); a broker's certificate cannot act as another broker, and a super-user is
 * not a broker. Throws CLUSTER_AUTHORIZATION_FAILED otherwise.
 */
export function requireBrokerIdentity(principal: AuthzPrincipal, brokerId: number, pattern: RegExp): Requirement[] {
  const own = brokerIdOf(principal, pattern);
  if (!principal.internal || own !== brokerId) {
    throw new SkeinError(
      'CLUSTER_AUTHORIZATION_FAILED',
      `${principalString(principal)} may not act as broker ${brokerId}${own !== undefined ? ` (it is broker ${own})` : principal.internal ? ' (it is no broker)' : ' (not an internal principal)'}`,
      {
        metadata: {
          principal: principalString(principal),
          resource_type: 'cluster',
          resource_name: CLUSTER_RESOURCE_NAME,
          operation: 'cluster_action',
          broker_id: String(brokerId),
        },
      },
    );
  }
  return [clusterAction('cluster_action')];
}
