/**
 * Registered service instances (RegisterServiceInstance ... FindServiceInstances): the store I/O
 * around domain/service-instances.ts. Each registration is one put under a fresh lease, so the
 * entry disappears with its session; a heartbeat renews the lease only while the entry still
 * names it (a replaced or expired session gets SESSION_EXPIRED and registers again). Lookups read
 * the store at the time of the call: discovery is rare (a client's start, a coordinator failure)
 * and must not list an instance whose session the store has already ended.
 */

import { SkeinError } from '@skein/common/errors.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { ServiceRole, type ServiceInstance } from '@skein/proto/skein/metadata/v1/metadata.js';
import type { Logger } from 'pino';
import {
  decodeServiceInstance, encodeServiceInstance, instanceIdProblem, registrationProblem, roleKey, serviceInstanceKey,
  serviceInstancesPrefix, sortInstances, type RegistrationInput,
} from '../domain/service-instances.js';

export class ServiceInstances {
  constructor(
    private readonly store: MetadataStore,
    private readonly prefix: string,
    private readonly defaultSessionTtlMs: number,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  async register(req: RegistrationInput): Promise<{ sessionId: bigint; sessionTtlMs: number }> {
    const problem = registrationProblem(req);
    if (problem) throw new SkeinError('INVALID_REQUEST', problem);
    const lease = await this.store.grantLease(req.sessionTtlMs === 0 ? this.defaultSessionTtlMs : req.sessionTtlMs);
    const key = serviceInstanceKey(this.prefix, req.role, req.instanceId);
    // An existing entry for the same name is replaced: these roles are stateless, and a restarted
    // instance (same pod name) must be findable at once, not after its old session expires.
    await this.store.txn({
      compare: [],
      success: [{ type: 'put', key, value: encodeServiceInstance({ v: 1, role: roleKey(req.role)!, instanceId: req.instanceId, host: req.host, port: req.port, registeredAtMs: this.nowMs() }), lease: lease.leaseId }],
    });
    this.logger.info({ role: roleKey(req.role), instanceId: req.instanceId, host: req.host, port: req.port }, 'service instance registered');
    return { sessionId: lease.leaseId, sessionTtlMs: lease.ttlMs };
  }

  private async requireSession(role: ServiceRole, instanceId: string, sessionId: bigint): Promise<void> {
    const problem = roleKey(role) === undefined ? `role must be a registrable service role, got ${String(role)}` : instanceIdProblem(instanceId);
    if (problem) throw new SkeinError('INVALID_REQUEST', problem);
    const kv = await this.store.get(serviceInstanceKey(this.prefix, role, instanceId));
    if (!kv || kv.lease !== sessionId) {
      throw new SkeinError('SESSION_EXPIRED', `${roleKey(role)} ${instanceId} has no session ${sessionId}; register again`, { metadata: { instance_id: instanceId } });
    }
  }

  async heartbeat(role: ServiceRole, instanceId: string, sessionId: bigint): Promise<number> {
    await this.requireSession(role, instanceId, sessionId);
    const ttl = await this.store.keepAliveOnce(sessionId);
    if (ttl === undefined) throw new SkeinError('SESSION_EXPIRED', `session ${sessionId} of ${roleKey(role)} ${instanceId} has expired; register again`, { metadata: { instance_id: instanceId } });
    return ttl;
  }

  async unregister(role: ServiceRole, instanceId: string, sessionId: bigint): Promise<void> {
    await this.requireSession(role, instanceId, sessionId);
    await this.store.revokeLease(sessionId);
    this.logger.info({ role: roleKey(role), instanceId }, 'service instance unregistered');
  }

  /** Live instances of `role`, or of every role for UNSPECIFIED; none for a role this build does not know. */
  async find(role: ServiceRole): Promise<ServiceInstance[]> {
    if (role !== ServiceRole.SERVICE_ROLE_UNSPECIFIED && roleKey(role) === undefined) return [];
    const { kvs } = await this.store.range(serviceInstancesPrefix(this.prefix, role));
    const out: ServiceInstance[] = [];
    for (const kv of kvs) {
      try {
        const instance = decodeServiceInstance(kv.value);
        if (instance) out.push(instance);
      } catch (err) {
        this.logger.warn({ err, key: kv.key }, 'unreadable service instance record skipped');
      }
    }
    return sortInstances(out);
  }
}
