/**
 * What each GroupCoordinatorService and TransactionCoordinatorService RPC needs from the
 * authorizer (enforced by the shell: libs/common security/enforcement.ts), after Kafka: joining,
 * heartbeating and committing need read on the group (committing also read on each topic);
 * fetching offsets describe on the group; describe and delete the matching group operations;
 * resetting offsets read on the group and the topic; ListGroups answers only the groups the caller
 * may describe. Transactions: write on the transactional id (and on each topic added), as Kafka.
 */
import type { Action } from '@skein/common/security/authorizer.js';
import type { AuthorizeMap, Requirement } from '@skein/common/security/enforcement.js';

const group = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'group', resourceName, operation });
const topic = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'topic', resourceName, operation });
const txnId = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'transactional_id', resourceName, operation });
const topics = (names: Iterable<string>, operation: Action['operation']): Requirement[] => [...new Set(names)].map((n) => topic(n, operation));

/** What a commit needs: read on the group and on each topic (CommitOffsets, and each CommitStream request). */
export const commitRequirements = (req: { groupId: string; offsets?: Array<{ topic: string }> }): Requirement[] => [
  group(req.groupId, 'read'),
  ...topics(
    (req.offsets ?? []).map((o) => o.topic),
    'read',
  ),
];

export const groupAuthorizeMap: AuthorizeMap = {
  heartbeat: (req: { groupId: string }) => [group(req.groupId, 'read')],
  // Every message of a session carries a heartbeat: each is checked (an ACL removed mid-session ends it).
  session: (req: { heartbeat?: { groupId: string } }) => [group(req.heartbeat?.groupId ?? '', 'read')],
  commitOffsets: commitRequirements,
  // Each request names its own group: the handler checks commitRequirements per request and
  // answers a refusal to that request alone, so one denied group does not end other groups' commits.
  commitStream: 'any',
  fetchOffsets: (req: { groupId: string; partitions?: Array<{ topic: string }> }) => [
    group(req.groupId, 'describe'),
    ...topics(
      (req.partitions ?? []).map((p) => p.topic),
      'describe',
    ),
  ],
  listGroups: 'any',
  describeGroup: (req: { groupId: string }) => [group(req.groupId, 'describe')],
  deleteGroup: (req: { groupId: string }) => [group(req.groupId, 'delete')],
  resetOffsets: (req: { groupId: string; topic: string }) => [group(req.groupId, 'read'), topic(req.topic, 'read')],
};

/** Kafka's rules for the transaction coordinator's RPCs. */
export const txnAuthorizeMap: AuthorizeMap = {
  initProducerId: (req: { transactionalId: string }) => [txnId(req.transactionalId, 'write')],
  addPartitionsToTxn: (req: { transactionalId: string; partitions?: Array<{ topic: string }> }) => [
    txnId(req.transactionalId, 'write'),
    ...topics(
      (req.partitions ?? []).map((p) => p.topic),
      'write',
    ),
  ],
  txnOffsetCommit: (req: { transactionalId: string; groupId: string; offsets?: Array<{ topic: string }> }) => [
    txnId(req.transactionalId, 'write'),
    group(req.groupId, 'read'),
    ...topics(
      (req.offsets ?? []).map((o) => o.topic),
      'read',
    ),
  ],
  endTxn: (req: { transactionalId: string }) => [txnId(req.transactionalId, 'write')],
  // Answers only the transactions the caller may describe (the handler filters) — until it does, operators only.
  listTransactions: () => [{ resourceType: 'cluster', resourceName: 'skein-cluster', operation: 'describe' }],
  describeTransactions: (req: { transactionalIds?: string[] }) => [...new Set(req.transactionalIds ?? [])].map((id) => txnId(id, 'describe')),
  // An operator forcing an abort (Kafka's kafka-transactions abort): write on the id.
  abortTransaction: (req: { transactionalId: string }) => [txnId(req.transactionalId, 'write')],
};
