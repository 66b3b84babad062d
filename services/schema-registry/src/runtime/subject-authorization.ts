/**
 * Authorization of the registry's operations with the cluster's ACLs (--authorizer-enabled), for
 * both front doors. The Registry names the actions each operation needs (resource type `subject`:
 * read, write, delete, describe, describe_configs, alter_configs; the global config and mode on the
 * cluster resource) and asks `aclSubjectAuthorizer`, which decides with the shell's Authorizer over
 * the ACL cache (fed from the metadata service's WatchAcls): super-users and internal principals
 * are allowed, a deny wins, implied operations as in Kafka (read/write/delete imply describe,
 * alter_configs implies describe_configs), nothing matching refuses. A refusal is the shell's
 * denial error (AUTHORIZATION_FAILED for a subject, CLUSTER_AUTHORIZATION_FAILED for the cluster:
 * gRPC PERMISSION_DENIED; REST 403 with Confluent's 40301) and an audit record, as on every other
 * service; a filter (listing subjects) refuses quietly.
 *
 * Who the caller is comes from the front door: gRPC from the shell's interceptor (requestAuth:
 * certificate or bearer token); REST from `restCaller` below.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { SkeinError } from '@skein/common/errors.js';
import type { AclCache } from '@skein/common/security/acl-cache.js';
import type { Authenticator } from '@skein/common/security/authentication.js';
import { type AuthzPrincipal, principalString } from '@skein/common/security/authorizer.js';
import { bearerToken, type JwtVerifier } from '@skein/common/security/jwt.js';
import { denialError } from '@skein/common/security/enforcement.js';
import type { Caller, SubjectAuthorizer } from './registry.js';

const ANONYMOUS: AuthzPrincipal = Object.freeze({ type: 'User', name: 'ANONYMOUS' });

export function aclSubjectAuthorizer(acls: AclCache, audit: Logger): SubjectAuthorizer {
  return (caller, actions, options) => {
    const principal = caller.identity ?? ANONYMOUS;
    const authorizer = acls.current;
    for (const action of actions) {
      const decision = authorizer.authorize(principal, action);
      if (decision.allowed) continue;
      if (!options?.quiet) {
        audit.info(
          {
            event: 'denied',
            principal: principalString(principal),
            operation: action.operation,
            resourceType: action.resourceType,
            resourceName: action.resourceName,
            rpc: caller.rpc ?? '',
            client: caller.client ?? '',
            basis: decision.basis,
            ...(decision.acl ? { acl: decision.acl } : {}),
          },
          'authorization denied',
        );
      }
      throw denialError(principal, action, decision);
    }
  };
}

export interface RestAuthentication {
  authenticator: Authenticator;
  /** Bearer tokens (--jwt-jwks-file/url); without it a presented token is refused, as on gRPC. */
  jwt: JwtVerifier | undefined;
  audit: Logger;
  /** Refuse anonymous requests (--authentication-required, on a listener that can authenticate: TLS or tokens). */
  required: boolean;
}

/**
 * The caller of a REST request: a bearer token (`Authorization: Bearer <JWT>`, verified by the
 * service's verifier) names it first; else a client certificate the TLS listener verified against
 * the CA (mapped by --ssl-principal-mapping-rules); else anonymous. A token that does not verify
 * is refused (AUTHENTICATION_FAILED: 401/40101), never downgraded to anonymous; with `required`
 * an anonymous request is refused too (AUTHENTICATION_REQUIRED: 401/40101).
 */
export async function restCaller(req: IncomingMessage, auth: RestAuthentication, route: string): Promise<Caller> {
  const client = req.socket.remoteAddress ?? '';
  const header = req.headers.authorization;
  const refuse = (reason: string): never => {
    auth.audit.info({ event: 'authentication_failed', mechanism: 'jwt', rpc: route, client, reason }, 'authentication failed');
    throw new SkeinError('AUTHENTICATION_FAILED', reason, { metadata: { mechanism: 'jwt' } });
  };
  if (header !== undefined) {
    const token = bearerToken(header);
    if (!token) refuse('authorization header must be "Bearer <token>"');
    if (!auth.jwt) refuse('this service accepts no bearer tokens (no --jwt-jwks-file or --jwt-jwks-url)');
    let name = '';
    try {
      name = (await auth.jwt!.verify(token!)).name;
    } catch (err) {
      refuse((err as Error).message);
    }
    const principal = { type: 'User', name };
    return caller(principal, auth.authenticator, route, client);
  }
  const socket = req.socket as Partial<TLSSocket>;
  const identity = auth.authenticator.identify({
    getAuthContext: () => {
      if (!socket.encrypted || !socket.authorized || !socket.getPeerCertificate) return { transportSecurityType: socket.encrypted ? 'ssl' : undefined };
      const cert = socket.getPeerCertificate();
      return { transportSecurityType: 'ssl', sslPeerCertificate: cert?.raw ? cert : undefined };
    },
  });
  if (auth.required && !identity.authenticated) {
    throw new SkeinError('AUTHENTICATION_REQUIRED', `authentication required: ${identity.problem} or send a bearer token`, { metadata: { service: 'rest' } });
  }
  if (!identity.authenticated) return { principal: principalString(identity.principal), rpc: route, client };
  return caller(identity.principal, auth.authenticator, route, client);
}

function caller(principal: { type: string; name: string }, authenticator: Authenticator, rpc: string, client: string): Caller {
  return {
    principal: principalString(principal),
    identity: { type: principal.type, name: principal.name, internal: authenticator.isInternal(principal), superUser: authenticator.isSuperUser(principal) },
    rpc,
    client,
  };
}
