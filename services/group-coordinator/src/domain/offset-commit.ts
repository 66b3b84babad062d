/**
 * Who may commit offsets to a group, decided on the group's state alone (no I/O). The shell
 * validates a commit against a state it read at some revision of the group key and writes it only
 * if the group key is still at that revision, so a decision here is never applied to a newer state.
 *
 * - memberEpoch -1: an admin commit (tools, a consumer outside the group protocol): only while the
 *   group has no members, so it cannot move a live member's position (Kafka: a "simple" commit to a
 *   group with members fails with UNKNOWN_MEMBER_ID; we say GROUP_NOT_EMPTY).
 * - otherwise the member must be in the group, at its current epoch, and own every partition it
 *   commits (KIP-848: a commit for a partition the member no longer owns is STALE_MEMBER_EPOCH).
 */
import { tp } from './assignors.js';
import type { GroupState } from './group.js';

export interface CommitIdentity {
  groupId: string;
  memberId: string;
  memberEpoch: number;
  offsets: ReadonlyArray<{ topic: string; partition: number }>;
}

export interface CommitProblem {
  reason: 'GROUP_NOT_EMPTY' | 'UNKNOWN_MEMBER' | 'STALE_MEMBER_EPOCH';
  message: string;
  metadata: Record<string, string>;
}

/** Why `commit` may not be applied to `group` (undefined: it may). `group` undefined: no such group yet. */
export function commitFencingProblem(group: GroupState | undefined, commit: CommitIdentity): CommitProblem | undefined {
  const groupMeta = { group_id: commit.groupId };
  if (commit.memberEpoch === -1) {
    if (group && Object.keys(group.members).length > 0) return { reason: 'GROUP_NOT_EMPTY', message: `group ${commit.groupId} has members; commit as a member`, metadata: groupMeta };
    return undefined;
  }
  const member = group?.members[commit.memberId];
  if (!member) return { reason: 'UNKNOWN_MEMBER', message: `member ${commit.memberId} is not in group ${commit.groupId}`, metadata: groupMeta };
  if (member.memberEpoch !== commit.memberEpoch) return { reason: 'STALE_MEMBER_EPOCH', message: `member epoch ${commit.memberEpoch} is not the current ${member.memberEpoch}`, metadata: groupMeta };
  const owned = new Set(member.owned);
  const notOwned = commit.offsets.find((o) => !owned.has(tp(o.topic, o.partition)));
  if (notOwned) {
    return { reason: 'STALE_MEMBER_EPOCH', message: `member ${commit.memberId} does not own ${notOwned.topic}-${notOwned.partition}`, metadata: { ...groupMeta, topic: notOwned.topic, partition: String(notOwned.partition) } };
  }
  return undefined;
}
