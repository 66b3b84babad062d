/**
 * Broker data directories (cf. Kafka KIP-858): each broker's data directory carries a random id,
 * created when the directory is first used. The same id at the next registration means the same
 * disk; another id means an empty or replaced disk, whose broker holds none of the records the
 * ISRs it belonged to promised. Electing it from such an ISR would make every follower truncate
 * to nothing, so before such a broker may register, the controller removes it from every ISR;
 * it then rejoins ISRs only by catching up as a follower.
 *
 * The protocol, over one durable record per broker (`broker-directories/<id>`, no lease):
 *   1. registration with a new id writes `pendingDirectoryId` (CAS) and waits; the broker key
 *      (its liveness) is not written yet, so the broker cannot be elected meanwhile;
 *   2. the controller treats a broker with a pending id as fenced (partition-state.ts
 *      reconcilePartition): it leaves every ISR, and a leader moves to another ISR member; it
 *      commits those partition states (CAS on each partition and the controller epoch);
 *   3. once no partition lists the broker in its ISR or as leader, the controller makes the pending
 *      id the recorded one (CAS on the directory record); the registration then completes.
 * A broker registering for the first time (no record) has nothing in any ISR to fence: its id is
 * recorded at once. A broker that sends no id (older brokers) is not checked.
 *
 * Pure: decisions from records and partition states; the admin and the controller persist them.
 */

import type { PartitionRecord } from './partition-state.js';
import type { BrokerDirectoryRecord } from './records.js';

/** Longest directory id accepted (a UUID is 36 characters). */
export const MAX_DIRECTORY_ID_LENGTH = 64;

export type RegistrationDirectoryDecision =
  /** The broker sent no id: nothing to check or record. */
  | { kind: 'unchecked' }
  /** Same directory as last accepted: register now. */
  | { kind: 'recognized' }
  /** No directory known for the broker: record this one (create-only) and register. */
  | { kind: 'first'; record: BrokerDirectoryRecord }
  /** A new directory: write the record with the pending id, then wait for the controller. */
  | { kind: 'replaced'; record: BrokerDirectoryRecord; previousDirectoryId: string }
  /** Already pending with this id (a retried registration): wait for the controller. */
  | { kind: 'pending' };

/** Returns a problem with a broker-supplied directory id, or undefined if it is acceptable. */
export function directoryIdProblem(directoryId: string): string | undefined {
  if (directoryId.length > MAX_DIRECTORY_ID_LENGTH) return `directory_id is longer than ${MAX_DIRECTORY_ID_LENGTH} characters`;
  if (!/^[A-Za-z0-9._-]*$/.test(directoryId)) return 'directory_id may contain only letters, digits, ".", "_" and "-"';
  return undefined;
}

/** What a registration carrying `directoryId` must do with the broker's directory record. */
export function decideRegistrationDirectory(
  recorded: BrokerDirectoryRecord | undefined,
  registration: { brokerId: number; directoryId: string },
  nowMs: number,
): RegistrationDirectoryDecision {
  const { brokerId, directoryId } = registration;
  if (directoryId === '') return { kind: 'unchecked' };
  if (!recorded) return { kind: 'first', record: { v: 1, brokerId, directoryId, updatedAtMs: nowMs } };
  if (recorded.directoryId === directoryId) {
    // The old disk is back while a change to another one is pending: the controller may already
    // have fenced the broker, so finish the change back to this id the same way (safe, not slower).
    return recorded.pendingDirectoryId === undefined ? { kind: 'recognized' } : replaced(recorded, directoryId, nowMs);
  }
  if (recorded.pendingDirectoryId === directoryId) return { kind: 'pending' };
  return replaced(recorded, directoryId, nowMs);
}

function replaced(recorded: BrokerDirectoryRecord, directoryId: string, nowMs: number): RegistrationDirectoryDecision {
  return {
    kind: 'replaced',
    record: { ...recorded, pendingDirectoryId: directoryId, updatedAtMs: nowMs },
    previousDirectoryId: recorded.directoryId,
  };
}

/** Brokers whose replicas the controller must fence: a registration reported a new directory. */
export function fencedBrokers(directories: Iterable<BrokerDirectoryRecord>): Set<number> {
  const fenced = new Set<number>();
  for (const d of directories) if (d.pendingDirectoryId !== undefined) fenced.add(d.brokerId);
  return fenced;
}

/**
 * Pending directory changes whose fencing is complete (no partition lists the broker in its ISR or
 * as leader), with the record that accepts the new directory. The caller writes each with a CAS on
 * the record it was computed from.
 */
export function completedDirectoryChanges(
  directories: Iterable<BrokerDirectoryRecord>,
  partitions: Iterable<PartitionRecord>,
  nowMs: number,
): BrokerDirectoryRecord[] {
  const fenced = fencedBrokers(directories);
  if (fenced.size === 0) return [];
  const stillHeld = new Set<number>();
  for (const p of partitions) {
    if (fenced.has(p.leaderId)) stillHeld.add(p.leaderId);
    for (const id of p.isr) if (fenced.has(id)) stillHeld.add(id);
  }
  const completed: BrokerDirectoryRecord[] = [];
  for (const d of directories) {
    if (d.pendingDirectoryId === undefined || stillHeld.has(d.brokerId)) continue;
    const { pendingDirectoryId, ...rest } = d;
    completed.push({ ...rest, directoryId: pendingDirectoryId, updatedAtMs: nowMs });
  }
  return completed;
}
