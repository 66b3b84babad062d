/**
 * Kafka-style authorization (KIP-11; the rules of Kafka's StandardAuthorizer), as a pure module:
 * no I/O, no clock, no logging. The shell feeds it the ACLs the metadata store holds (acl-cache.ts)
 * and asks it, for each action of each RPC, whether the caller's principal may do it.
 *
 * An ACL binds a principal (`User:alice`, or `User:*` for every principal) to a resource pattern
 * (a type, a name, and `literal` or `prefixed`; the literal name `*` matches every resource of the
 * type), an operation and a permission (allow or deny). The decision for (principal, resource,
 * operation), in this order:
 * 1. super-users and internal principals (the services' own) are always allowed;
 * 2. a matching DENY for the operation or for `all` refuses: deny wins over any allow;
 * 3. a matching ALLOW for the operation, for `all`, or for an operation that implies it allows:
 *    read, write, delete and alter imply describe; alter_configs implies describe_configs
 *    (an implied operation is only ever allowed this way, never denied: a deny of read does not
 *    deny describe, as in Kafka);
 * 4. nothing matches: refused (Kafka's allow.everyone.if.no.acl.found=false), unless the
 *    authorizer is built with allowEveryoneIfNoAclFound and no ACL at all names the resource.
 *
 * Resource types are strings so roles added later (schema subjects, connectors) need no change here.
 */

export const RESOURCE_TYPES = ['cluster', 'topic', 'group', 'transactional_id', 'subject', 'connector'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export const PATTERN_TYPES = ['literal', 'prefixed'] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];

export const OPERATIONS = [
  'all', 'read', 'write', 'create', 'delete', 'alter', 'describe', 'describe_configs', 'alter_configs', 'cluster_action', 'idempotent_write',
] as const;
export type Operation = (typeof OPERATIONS)[number];

export const PERMISSIONS = ['allow', 'deny'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** The one resource of type cluster has this name (as in Kafka: kafka-cluster). */
export const CLUSTER_RESOURCE_NAME = 'skein-cluster';
/** A literal resource name that matches every resource of its type. */
export const WILDCARD_RESOURCE = '*';
/**
 * As an action's resource name: "some resource of this type" (Kafka's authorizeByResourceType,
 * KIP-679: an idempotent producer needs write on any topic). No real name can equal it.
 */
export const ANY_RESOURCE = '\u0000any';
/** A principal in an ACL that matches every principal. */
export const WILDCARD_PRINCIPAL = 'User:*';

export interface AclBinding {
  /** `Type:name`, e.g. `User:alice`; `User:*` matches every principal. */
  principal: string;
  resourceType: ResourceType;
  resourceName: string;
  patternType: PatternType;
  operation: Operation;
  permission: Permission;
}

/** Who is asking. `Type:name` is what ACLs name; `internal` marks the services' own principals. */
export interface AuthzPrincipal {
  type: string;
  name: string;
  /** A Skein service's own identity (broker, controller, coordinator; --internal-principals): allowed everything. */
  internal?: boolean;
  /** A super-user (--super-users, matched by the authenticator): allowed everything. */
  superUser?: boolean;
}

export interface Action {
  resourceType: ResourceType;
  resourceName: string;
  operation: Operation;
}

export type DecisionBasis = 'super_user' | 'internal' | 'allow_acl' | 'deny_acl' | 'no_matching_acl';

export interface Decision {
  allowed: boolean;
  basis: DecisionBasis;
  /** The ACL that decided (the deny that refused or the allow that allowed). */
  acl?: AclBinding;
}

export interface AuthorizerOptions {
  /** Principals (`User:admin`) allowed everything (Kafka: super.users). */
  superUsers?: readonly string[];
  /** Kafka's allow.everyone.if.no.acl.found; off: no matching ACL means deny. */
  allowEveryoneIfNoAclFound?: boolean;
}

export const principalString = (p: Pick<AuthzPrincipal, 'type' | 'name'>): string => `${p.type}:${p.name}`;

/** Operations an ALLOW of each key also allows (Kafka's implied operations). */
const IMPLIED_BY: Partial<Record<Operation, readonly Operation[]>> = {
  describe: ['read', 'write', 'delete', 'alter'],
  describe_configs: ['alter_configs'],
};

/**
 * An immutable snapshot of the ACLs with the lookups a decision needs. Building one is O(ACLs);
 * a decision scans only the ACLs of the action's resource type: literal ones by name (a map) and
 * prefixed ones (a list; clusters keep few).
 */
export class Authorizer {
  private readonly literal = new Map<string, AclBinding[]>();
  private readonly prefixed = new Map<string, AclBinding[]>();
  private readonly superUsers: ReadonlySet<string>;

  constructor(readonly acls: readonly AclBinding[], private readonly options: AuthorizerOptions = {}) {
    this.superUsers = new Set(options.superUsers ?? []);
    for (const acl of acls) {
      const map = acl.patternType === 'literal' ? this.literal : this.prefixed;
      const key = acl.patternType === 'literal' ? `${acl.resourceType}\u0000${acl.resourceName}` : acl.resourceType;
      let list = map.get(key);
      if (!list) map.set(key, (list = []));
      list.push(acl);
    }
  }

  /** The same ACLs under other options (super-users come from the process, ACLs from the store). */
  withOptions(options: AuthorizerOptions): Authorizer {
    return new Authorizer(this.acls, options);
  }

  isSuperUser(principal: Pick<AuthzPrincipal, 'type' | 'name'>): boolean {
    return this.superUsers.has(principalString(principal));
  }

  /** ACLs whose resource pattern matches the resource (any principal, operation, permission). */
  private matching(resourceType: string, resourceName: string): AclBinding[] {
    const out = [
      ...(this.literal.get(`${resourceType}\u0000${resourceName}`) ?? []),
      ...(resourceName !== WILDCARD_RESOURCE ? (this.literal.get(`${resourceType}\u0000${WILDCARD_RESOURCE}`) ?? []) : []),
    ];
    for (const acl of this.prefixed.get(resourceType) ?? []) if (resourceName.startsWith(acl.resourceName)) out.push(acl);
    return out;
  }

  authorize(principal: AuthzPrincipal, action: Action): Decision {
    if (principal.internal) return { allowed: true, basis: 'internal' };
    const who = principalString(principal);
    if (principal.superUser || this.superUsers.has(who)) return { allowed: true, basis: 'super_user' };
    if (action.resourceName === ANY_RESOURCE) return this.authorizeByResourceType(who, action);
    const acls = this.matching(action.resourceType, action.resourceName);
    const mine = acls.filter((a) => a.principal === who || a.principal === WILDCARD_PRINCIPAL);
    const deny = mine.find((a) => a.permission === 'deny' && (a.operation === action.operation || a.operation === 'all'));
    if (deny) return { allowed: false, basis: 'deny_acl', acl: deny };
    const implying = IMPLIED_BY[action.operation] ?? [];
    const allow = mine.find((a) => a.permission === 'allow' && (a.operation === action.operation || a.operation === 'all' || implying.includes(a.operation)));
    if (allow) return { allowed: true, basis: 'allow_acl', acl: allow };
    if (this.options.allowEveryoneIfNoAclFound && acls.length === 0) return { allowed: true, basis: 'no_matching_acl' };
    return { allowed: false, basis: 'no_matching_acl' };
  }

  /**
   * Allowed when some allow ACL (the operation or all) names a resource of the type that no deny
   * of the principal (the operation or all) covers: a deny on the same literal name, on literal
   * `*`, or on a prefix of the allowed name. Implied operations are not considered (as in Kafka).
   */
  private authorizeByResourceType(who: string, action: Action): Decision {
    const mine = this.acls.filter((a) => a.resourceType === action.resourceType && (a.principal === who || a.principal === WILDCARD_PRINCIPAL)
      && (a.operation === action.operation || a.operation === 'all'));
    const denies = mine.filter((a) => a.permission === 'deny');
    const covers = (deny: AclBinding, allow: AclBinding) =>
      (deny.patternType === 'literal' && (deny.resourceName === WILDCARD_RESOURCE || (allow.patternType === 'literal' && deny.resourceName === allow.resourceName)))
      || (deny.patternType === 'prefixed' && allow.resourceName.startsWith(deny.resourceName));
    const allow = mine.find((a) => a.permission === 'allow' && !denies.some((d) => covers(d, a)));
    if (allow) return { allowed: true, basis: 'allow_acl', acl: allow };
    const deny = denies[0];
    return deny ? { allowed: false, basis: 'deny_acl', acl: deny } : { allowed: false, basis: 'no_matching_acl' };
  }
}

/** What DescribeAcls and DeleteAcls select: every field optional; patternType `match` as in Kafka. */
export interface AclFilter {
  principal?: string;
  resourceType?: ResourceType;
  resourceName?: string;
  /** literal/prefixed: exactly that pattern; `match`: every ACL that would apply to the literal resourceName; absent: any. */
  patternType?: PatternType | 'match';
  operation?: Operation;
  permission?: Permission;
}

export function aclMatchesFilter(acl: AclBinding, f: AclFilter): boolean {
  if (f.principal !== undefined && acl.principal !== f.principal) return false;
  if (f.resourceType !== undefined && acl.resourceType !== f.resourceType) return false;
  if (f.operation !== undefined && acl.operation !== f.operation) return false;
  if (f.permission !== undefined && acl.permission !== f.permission) return false;
  if (f.patternType === 'match') {
    if (f.resourceName === undefined) return true;
    if (acl.patternType === 'literal') return acl.resourceName === f.resourceName || acl.resourceName === WILDCARD_RESOURCE;
    return f.resourceName.startsWith(acl.resourceName);
  }
  if (f.patternType !== undefined && acl.patternType !== f.patternType) return false;
  if (f.resourceName !== undefined && acl.resourceName !== f.resourceName) return false;
  return true;
}

/** A stable identity of an ACL (for de-duplication and store keys). */
export const aclKey = (a: AclBinding): string =>
  [a.resourceType, a.patternType, a.resourceName, a.principal, a.operation, a.permission].map((s) => encodeURIComponent(s)).join('/');

const PRINCIPAL_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}:[^\s]{1,255}$/;

/** Why an ACL is not well-formed, or undefined. Names are bounded like topic names (docs/limits.md). */
export function aclProblem(a: AclBinding): string | undefined {
  if (!PRINCIPAL_RE.test(a.principal)) return `principal "${a.principal.slice(0, 100)}" is not Type:name (e.g. User:alice, User:*)`;
  if (!(RESOURCE_TYPES as readonly string[]).includes(a.resourceType)) return `unknown resource type "${a.resourceType}" (one of ${RESOURCE_TYPES.join(', ')})`;
  if (!(PATTERN_TYPES as readonly string[]).includes(a.patternType)) return `unknown pattern type "${a.patternType}" (literal or prefixed)`;
  if (!(OPERATIONS as readonly string[]).includes(a.operation)) return `unknown operation "${a.operation}" (one of ${OPERATIONS.join(', ')})`;
  if (!(PERMISSIONS as readonly string[]).includes(a.permission)) return `unknown permission "${a.permission}" (allow or deny)`;
  if (a.resourceName === '' || a.resourceName.length > 1024) return 'resource name must be 1 to 1024 characters';
  if (a.patternType === 'prefixed' && a.resourceName === WILDCARD_RESOURCE) return 'a prefixed pattern cannot be "*" (use a literal "*")';
  if (a.resourceType === 'cluster' && a.resourceName !== CLUSTER_RESOURCE_NAME && a.resourceName !== WILDCARD_RESOURCE) return `the cluster resource is named "${CLUSTER_RESOURCE_NAME}"`;
  return undefined;
}

/** The reason a denial of an action carries (errors.ts REASONS). */
export function denialReason(resourceType: ResourceType):
  'TOPIC_AUTHORIZATION_FAILED' | 'GROUP_AUTHORIZATION_FAILED' | 'CLUSTER_AUTHORIZATION_FAILED' | 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED' | 'AUTHORIZATION_FAILED' {
  switch (resourceType) {
    case 'topic': return 'TOPIC_AUTHORIZATION_FAILED';
    case 'group': return 'GROUP_AUTHORIZATION_FAILED';
    case 'cluster': return 'CLUSTER_AUTHORIZATION_FAILED';
    case 'transactional_id': return 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED';
    default: return 'AUTHORIZATION_FAILED';
  }
}
