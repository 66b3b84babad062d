/**
 * The shell's keys for bearer tokens and authorization (every service spreads them through
 * commonServerConfigSchema), and what the shell builds from them for a service: the JWT verifier,
 * the ACL cache the service keeps fed, and the audit logger.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import { AclCache } from './acl-cache.js';
import { authorizationConfigSchema } from './authorization-keys.js';
import { JwtVerifier } from './jwt.js';

export { authorizationConfigSchema };

export interface AuthorizationKeys {
  readonly authorizerEnabled: boolean;
  readonly allowEveryoneIfNoAclFound: boolean;
  readonly brokerPrincipalPattern: string;
  readonly jwtJwksFile: string;
  readonly jwtJwksUrl: string;
  readonly jwtIssuer: string;
  readonly jwtAudience: string;
  readonly jwtPrincipalClaim: string;
  readonly jwtClockToleranceMs: number;
}

/** What a service gets from the shell for authorization. */
export interface ServiceAuthorization {
  /** --authorizer-enabled: the shell enforces every registration's rules. */
  readonly enabled: boolean;
  /** The ACLs the authorizer reads; the service keeps it fed (metadata: from the store; others: WatchAcls). */
  readonly acls: AclCache;
  /** `component: audit`: denials, refused tokens, ACL changes (docs/security.md). */
  readonly audit: Logger;
  readonly brokerPrincipalPattern: RegExp;
  /** Bearer-token verifier when --jwt-jwks-file/url is set. */
  readonly jwt: JwtVerifier | undefined;
}

/** Validates the keys (ConfigError naming the key) and builds the service's authorization. */
export function authorizationFromConfig(config: AuthorizationKeys, logger: Logger): ServiceAuthorization {
  let brokerPrincipalPattern: RegExp;
  try {
    brokerPrincipalPattern = new RegExp(config.brokerPrincipalPattern);
  } catch (err) {
    throw new ConfigError(`invalid --broker-principal-pattern: ${(err as Error).message}`);
  }
  if (config.jwtJwksFile && config.jwtJwksUrl) throw new ConfigError('--jwt-jwks-file and --jwt-jwks-url are exclusive');
  if (config.jwtJwksUrl && !/^https?:\/\//.test(config.jwtJwksUrl))
    throw new ConfigError(`invalid --jwt-jwks-url: "${config.jwtJwksUrl}" is not an http(s) URL`);
  let jwt: JwtVerifier | undefined;
  if (config.jwtJwksFile || config.jwtJwksUrl) {
    try {
      jwt = new JwtVerifier({
        jwksFile: config.jwtJwksFile || undefined,
        jwksUrl: config.jwtJwksUrl || undefined,
        issuer: config.jwtIssuer || undefined,
        audience: config.jwtAudience || undefined,
        principalClaim: config.jwtPrincipalClaim,
        clockToleranceSec: config.jwtClockToleranceMs / 1000,
      });
    } catch (err) {
      throw new ConfigError(`invalid --jwt-jwks-file: ${(err as Error).message}`);
    }
  }
  return {
    enabled: config.authorizerEnabled,
    acls: new AclCache({ allowEveryoneIfNoAclFound: config.allowEveryoneIfNoAclFound }),
    audit: logger.child({ component: 'audit' }),
    brokerPrincipalPattern,
    jwt,
  };
}
