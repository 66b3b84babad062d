import { describe, expect, it } from 'vitest';
import { type AclBinding, aclMatchesFilter, aclProblem, ANY_RESOURCE, Authorizer, CLUSTER_RESOURCE_NAME } from './authorizer.js';

const alice = { type: 'User', name: 'alice' };
const bob = { type: 'User', name: 'bob' };
const acl = (over: Partial<AclBinding>): AclBinding => ({
  principal: 'User:alice', resourceType: 'topic', resourceName: 'orders', patternType: 'literal', operation: 'write', permission: 'allow', ...over,
});
const topic = (resourceName: string, operation: AclBinding['operation'] = 'write') => ({ resourceType: 'topic' as const, resourceName, operation });

describe('Authorizer', () => {
  it('no matching ACL is a denial', () => {
    const d = new Authorizer([]).authorize(alice, topic('orders'));
    expect(d).toEqual({ allowed: false, basis: 'no_matching_acl' });
  });

  it('a literal allow matches its principal, resource and operation only', () => {
    const a = new Authorizer([acl({})]);
    expect(a.authorize(alice, topic('orders')).allowed).toBe(true);
    expect(a.authorize(bob, topic('orders')).allowed).toBe(false);
    expect(a.authorize(alice, topic('orders2')).allowed).toBe(false);
    expect(a.authorize(alice, topic('orders', 'read')).allowed).toBe(false);
    expect(a.authorize(alice, { resourceType: 'group', resourceName: 'orders', operation: 'write' }).allowed).toBe(false);
  });

  it('a prefixed allow covers every name with the prefix, including ones created later', () => {
    const a = new Authorizer([acl({ patternType: 'prefixed', resourceName: 'orders.' })]);
    expect(a.authorize(alice, topic('orders.eu')).allowed).toBe(true);
    expect(a.authorize(alice, topic('orders.new-one')).allowed).toBe(true);
    expect(a.authorize(alice, topic('orders')).allowed).toBe(false);
  });

  it('a deny wins over any allow, including all and wildcards', () => {
    const a = new Authorizer([
      acl({ operation: 'all', patternType: 'prefixed', resourceName: 'ord' }),
      acl({ principal: 'User:*', resourceName: '*' }),
      acl({ permission: 'deny', resourceName: 'orders' }),
    ]);
    const d = a.authorize(alice, topic('orders'));
    expect(d.allowed).toBe(false);
    expect(d.basis).toBe('deny_acl');
    expect(a.authorize(alice, topic('ordinary')).allowed).toBe(true);
  });

  it('deny all denies every operation; deny read does not deny the describe it would imply', () => {
    const a = new Authorizer([acl({ operation: 'all' }), acl({ operation: 'read', permission: 'deny' })]);
    expect(a.authorize(alice, topic('orders', 'read')).allowed).toBe(false);
    expect(a.authorize(alice, topic('orders', 'describe')).allowed).toBe(true);
    const b = new Authorizer([acl({ operation: 'all' }), acl({ operation: 'all', permission: 'deny' })]);
    expect(b.authorize(alice, topic('orders', 'describe')).allowed).toBe(false);
  });

  it('read, write, delete and alter imply describe; alter_configs implies describe_configs; nothing else is implied', () => {
    for (const op of ['read', 'write', 'delete', 'alter'] as const) {
      expect(new Authorizer([acl({ operation: op })]).authorize(alice, topic('orders', 'describe')).allowed).toBe(true);
    }
    expect(new Authorizer([acl({ operation: 'alter_configs' })]).authorize(alice, topic('orders', 'describe_configs')).allowed).toBe(true);
    expect(new Authorizer([acl({ operation: 'create' })]).authorize(alice, topic('orders', 'describe')).allowed).toBe(false);
    expect(new Authorizer([acl({ operation: 'describe' })]).authorize(alice, topic('orders', 'read')).allowed).toBe(false);
    expect(new Authorizer([acl({ operation: 'alter_configs' })]).authorize(alice, topic('orders', 'describe')).allowed).toBe(false);
  });

  it('literal * matches every resource of its type; User:* matches every principal', () => {
    const a = new Authorizer([acl({ resourceName: '*', principal: 'User:*', operation: 'read' })]);
    expect(a.authorize(bob, topic('anything', 'read')).allowed).toBe(true);
    expect(a.authorize({ type: 'User', name: 'ANONYMOUS' }, topic('x', 'read')).allowed).toBe(true);
    expect(a.authorize(bob, { resourceType: 'group', resourceName: 'g', operation: 'read' }).allowed).toBe(false);
  });

  it('super-users and internal principals are allowed without ACLs, even past a deny', () => {
    const a = new Authorizer([acl({ principal: 'User:*', operation: 'all', permission: 'deny', resourceName: '*' })], { superUsers: ['User:admin'] });
    expect(a.authorize({ type: 'User', name: 'admin' }, topic('orders')).basis).toBe('super_user');
    expect(a.authorize({ type: 'User', name: 'broker-1', internal: true }, { resourceType: 'cluster', resourceName: CLUSTER_RESOURCE_NAME, operation: 'cluster_action' }).basis).toBe('internal');
    expect(a.authorize(alice, topic('orders')).allowed).toBe(false);
  });

  it('allowEveryoneIfNoAclFound allows only resources no ACL names', () => {
    const a = new Authorizer([acl({ principal: 'User:bob' })], { allowEveryoneIfNoAclFound: true });
    expect(a.authorize(alice, topic('free')).allowed).toBe(true);
    expect(a.authorize(alice, topic('orders')).allowed).toBe(false);
  });
});

describe('ACL filters and validation', () => {
  it('match selects every ACL that applies to a name; an exact filter only that pattern', () => {
    const acls = [acl({}), acl({ resourceName: '*' }), acl({ patternType: 'prefixed', resourceName: 'ord' }), acl({ resourceName: 'other' })];
    expect(acls.filter((a) => aclMatchesFilter(a, { resourceName: 'orders', patternType: 'match' }))).toHaveLength(3);
    expect(acls.filter((a) => aclMatchesFilter(a, { resourceName: 'orders', patternType: 'literal' }))).toHaveLength(1);
    expect(acls.filter((a) => aclMatchesFilter(a, {}))).toHaveLength(4);
  });

  it('refuses malformed bindings with a reason', () => {
    expect(aclProblem(acl({}))).toBeUndefined();
    expect(aclProblem(acl({ principal: 'alice' }))).toMatch(/Type:name/);
    expect(aclProblem(acl({ operation: 'eat' as never }))).toMatch(/unknown operation/);
    expect(aclProblem(acl({ patternType: 'prefixed', resourceName: '*' }))).toMatch(/prefixed/);
    expect(aclProblem(acl({ resourceType: 'cluster', resourceName: 'x' }))).toMatch(/cluster/);
  });
});

describe('any resource of a type (KIP-679: idempotent producers need write on some topic)', () => {
  const any = { resourceType: 'topic' as const, resourceName: ANY_RESOURCE, operation: 'write' as const };
  it('is allowed by an allow on any topic not covered by a deny', () => {
    expect(new Authorizer([]).authorize(alice, any).allowed).toBe(false);
    expect(new Authorizer([acl({ patternType: 'prefixed', resourceName: 'o' })]).authorize(alice, any).allowed).toBe(true);
    expect(new Authorizer([acl({}), acl({ permission: 'deny', resourceName: '*' })]).authorize(alice, any).allowed).toBe(false);
    expect(new Authorizer([acl({}), acl({ permission: 'deny', patternType: 'prefixed', resourceName: 'or' })]).authorize(alice, any).allowed).toBe(false);
    expect(new Authorizer([acl({}), acl({ resourceName: 'b' }), acl({ permission: 'deny', resourceName: 'orders' })]).authorize(alice, any).allowed).toBe(true);
    expect(new Authorizer([acl({ operation: 'read' })]).authorize(alice, any).allowed).toBe(false);
  });
});
