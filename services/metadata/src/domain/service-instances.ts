/**
 * Service discovery records (FindServiceInstances, Kafka's FindCoordinator): every role other than
 * the broker registers `<prefix>service-instances/<role>/<instanceId>` with a ServiceInstanceRecord,
 * attached to the instance's session lease, so the key disappears when the instance stops
 * heartbeating. A role is stored by its stable proto enum name without the prefix
 * ("group-coordinator"), so adding roles never renumbers keys.
 *
 * Pure: validation returns the problem; the runtime (runtime/service-instances.ts) does the I/O.
 */

import { ServiceRole, type ServiceInstance } from '@skein/proto/skein/metadata/v1/metadata.js';

export interface ServiceInstanceRecord {
  v: 1;
  /** Key segment of the role (roleKey). */
  role: string;
  instanceId: string;
  host: string;
  port: number;
  registeredAtMs: number;
}

/** The roles that may register, by key segment. UNSPECIFIED and unknown enum values are not roles. */
const ROLE_KEYS = new Map<ServiceRole, string>([
  [ServiceRole.SERVICE_ROLE_GROUP_COORDINATOR, 'group-coordinator'],
  [ServiceRole.SERVICE_ROLE_SCHEMA_REGISTRY, 'schema-registry'],
  [ServiceRole.SERVICE_ROLE_CONNECT, 'connect'],
]);
const ROLES_BY_KEY = new Map([...ROLE_KEYS].map(([role, k]) => [k, role]));

export const SERVICE_INSTANCE_LIMITS = Object.freeze({
  instanceIdChars: 253,
  hostChars: 255,
  minSessionTtlMs: 1000,
  maxSessionTtlMs: 300_000,
});

/** The key segment of a registrable role, or undefined for UNSPECIFIED and values this version does not know. */
export function roleKey(role: ServiceRole): string | undefined {
  return ROLE_KEYS.get(role);
}

export function serviceInstancesPrefix(prefix: string, role?: ServiceRole): string {
  const k = role === undefined ? undefined : roleKey(role);
  return k === undefined ? `${prefix}service-instances/` : `${prefix}service-instances/${k}/`;
}

export function serviceInstanceKey(prefix: string, role: ServiceRole, instanceId: string): string {
  return `${serviceInstancesPrefix(prefix, role)}${instanceId}`;
}

export interface RegistrationInput {
  role: ServiceRole;
  instanceId: string;
  host: string;
  port: number;
  sessionTtlMs: number;
}

/** What is wrong with a registration (INVALID_REQUEST), or undefined. */
export function registrationProblem(req: RegistrationInput): string | undefined {
  if (roleKey(req.role) === undefined) return `role must be a registrable service role, got ${String(req.role)}`;
  const idProblem = instanceIdProblem(req.instanceId);
  if (idProblem) return idProblem;
  if (req.host.trim() === '') return 'endpoint.host is required';
  if (req.host.length > SERVICE_INSTANCE_LIMITS.hostChars) return `endpoint.host is ${req.host.length} characters; the limit is ${SERVICE_INSTANCE_LIMITS.hostChars}`;
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) return `endpoint.port must be 1-65535, got ${req.port}`;
  if (req.sessionTtlMs !== 0 && (req.sessionTtlMs < SERVICE_INSTANCE_LIMITS.minSessionTtlMs || req.sessionTtlMs > SERVICE_INSTANCE_LIMITS.maxSessionTtlMs)) {
    return `session_ttl_ms must be 0 or between ${SERVICE_INSTANCE_LIMITS.minSessionTtlMs} and ${SERVICE_INSTANCE_LIMITS.maxSessionTtlMs}, got ${req.sessionTtlMs}`;
  }
  return undefined;
}

/** Instance ids become key segments: a bounded, slash-free alphabet (pod and host names fit). */
export function instanceIdProblem(instanceId: string): string | undefined {
  if (instanceId.length === 0) return 'instance_id is required';
  if (instanceId.length > SERVICE_INSTANCE_LIMITS.instanceIdChars) return `instance_id is ${instanceId.length} characters; the limit is ${SERVICE_INSTANCE_LIMITS.instanceIdChars}`;
  if (!/^[A-Za-z0-9._:-]+$/.test(instanceId)) return `instance_id may contain only [A-Za-z0-9._:-], got ${JSON.stringify(instanceId.slice(0, 64))}`;
  return undefined;
}

export function encodeServiceInstance(record: ServiceInstanceRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

/** The instance a stored record describes; undefined for a version or role this build does not know (skipped, not guessed). */
export function decodeServiceInstance(bytes: Buffer): ServiceInstance | undefined {
  const r = JSON.parse(bytes.toString('utf8')) as ServiceInstanceRecord;
  const role = r.v === 1 ? ROLES_BY_KEY.get(r.role) : undefined;
  if (role === undefined) return undefined;
  return { role, instanceId: r.instanceId, endpoint: { host: r.host, port: r.port } };
}

/** Ordered by role, then instance id, as the contract promises. */
export function sortInstances(instances: ServiceInstance[]): ServiceInstance[] {
  return instances.sort((a, b) => a.role - b.role || (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
}
