import type { Action, AclBinding, AuthzPrincipal } from '@skein/common/security/authorizer.js';
import { Authorizer } from '@skein/common/security/authorizer.js';
import type { Requirement } from '@skein/common/security/enforcement.js';
import { ConnectServiceService } from '@skein/proto/skein/connect/v1/connect.js';
import { describe, expect, it } from 'vitest';
import { connectAuthorizeMap } from './connect-authz.js';

const alice: AuthzPrincipal = { type: 'User', name: 'alice' };
const allow = (
  operation: AclBinding['operation'],
  resourceName: string,
  patternType: AclBinding['patternType'] = 'literal',
  resourceType: AclBinding['resourceType'] = 'connector',
): AclBinding => ({
  principal: 'User:alice',
  resourceType,
  resourceName,
  patternType,
  operation,
  permission: 'allow',
});

/** What the shell's interceptor decides: every requirement needs one of its options allowed. */
function permitted(acls: AclBinding[], rpc: string, req: unknown): boolean {
  const rule = connectAuthorizeMap[rpc];
  if (rule === undefined) throw new Error(`no rule for ${rpc}`);
  if (rule === 'any') return true;
  const authorizer = new Authorizer(acls);
  const reqs = (rule as (r: unknown, p: AuthzPrincipal) => readonly Requirement[])(req, alice);
  return reqs.every((r) => (Array.isArray(r) ? (r as readonly Action[]) : [r as Action]).some((a) => authorizer.authorize(alice, a).allowed));
}

const byName = { name: 'orders-sink' };
const MUTATING = ['updateConnector', 'pauseConnector', 'resumeConnector', 'restartConnector', 'restartTask'];
const READING = ['getConnector', 'getConnectorStatus'];

describe('connector ACL rules', () => {
  it('declares a rule for every ConnectService RPC (none falls back to internal-only)', () => {
    expect(Object.keys(connectAuthorizeMap).sort()).toEqual(Object.keys(ConnectServiceService).sort());
  });

  it('refuses every named RPC without an ACL', () => {
    for (const rpc of ['createConnector', 'deleteConnector', ...MUTATING, ...READING, 'validateConfig']) expect(permitted([], rpc, byName), rpc).toBe(false);
  });

  it('alter on the connector allows update, pause, resume and restarts, and implies describe; not create or delete', () => {
    const acls = [allow('alter', 'orders-sink')];
    for (const rpc of [...MUTATING, ...READING]) expect(permitted(acls, rpc, byName), rpc).toBe(true);
    expect(permitted(acls, 'createConnector', byName)).toBe(false);
    expect(permitted(acls, 'deleteConnector', byName)).toBe(false);
    // Another connector's name is not covered.
    for (const rpc of [...MUTATING, ...READING]) expect(permitted(acls, rpc, { name: 'billing-sink' }), rpc).toBe(false);
  });

  it('describe allows status and validate but no change', () => {
    const acls = [allow('describe', 'orders-', 'prefixed')];
    for (const rpc of READING) expect(permitted(acls, rpc, byName), rpc).toBe(true);
    expect(permitted(acls, 'validateConfig', { config: {} })).toBe(true);
    for (const rpc of ['createConnector', 'deleteConnector', ...MUTATING]) expect(permitted(acls, rpc, byName), rpc).toBe(false);
  });

  it('create needs create on the connector or on the cluster; delete needs delete', () => {
    expect(permitted([allow('create', 'orders-sink')], 'createConnector', byName)).toBe(true);
    expect(permitted([allow('create', 'skein-cluster', 'literal', 'cluster')], 'createConnector', byName)).toBe(true);
    expect(permitted([allow('delete', 'orders-sink')], 'deleteConnector', byName)).toBe(true);
    expect(permitted([allow('delete', 'orders-sink')], 'pauseConnector', byName)).toBe(false);
  });

  it('leaves listing connectors (filtered by the handler) and plugins to every caller', () => {
    expect(connectAuthorizeMap.listConnectors).toBe('any');
    expect(connectAuthorizeMap.listPlugins).toBe('any');
  });
});
