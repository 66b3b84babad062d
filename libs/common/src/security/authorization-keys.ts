/**
 * The shell's configuration keys for bearer tokens and authorization, spread into
 * commonServerConfigSchema (config.ts) so every service has them. No imports: config.ts needs it.
 * authorization-config.ts validates them and builds what they configure.
 */
export const DEFAULT_BROKER_PRINCIPAL_PATTERN = '^(?:skein-)?broker-(\\d+)(?:\\..*)?$';

export const authorizationConfigSchema = {
  authorizerEnabled: {
    type: 'bool',
    default: false,
    doc: 'Enforce ACLs on every RPC (no matching ACL = PERMISSION_DENIED; super-users and internal principals always allowed)',
  },
  allowEveryoneIfNoAclFound: {
    type: 'bool',
    default: false,
    doc: 'Allow a request on a resource no ACL names at all (Kafka: allow.everyone.if.no.acl.found); off = deny',
  },
  brokerPrincipalPattern: {
    type: 'string',
    default: DEFAULT_BROKER_PRINCIPAL_PATTERN,
    doc: "Regular expression on an internal principal's name whose first group is the broker id it may act as (register, replica fetch)",
  },
  jwtJwksFile: { type: 'string', default: '', doc: "JWKS file with the token issuer's public keys; enables Authorization: Bearer <JWT> (re-read on change)" },
  jwtJwksUrl: { type: 'string', default: '', doc: 'JWKS URL of the token issuer (instead of --jwt-jwks-file)' },
  jwtIssuer: { type: 'string', default: '', doc: 'Required iss of bearer tokens (empty: not checked)' },
  jwtAudience: { type: 'string', default: '', doc: 'Required aud of bearer tokens (empty: not checked)' },
  jwtPrincipalClaim: { type: 'string', default: 'sub', doc: 'Token claim that names the principal (User:<claim>)' },
  jwtClockToleranceMs: { type: 'int', default: 30_000, min: 0, max: 600_000, doc: 'Clock skew allowed on token exp/nbf' },
} as const;
