/**
 * The I/O shell around the pure group state machine: read the group's state from the store, run
 * the decision, write it back with a compare-and-set on the revision it read (retrying on a lost
 * race), then answer. Any number of coordinator instances can serve the same group at once.
 *
 * Keys: <prefix>groups/<groupId> holds the GroupState (JSON, v 1);
 *       <prefix>offsets/<groupId>/<topic>/<partition> holds a committed offset.
 */
import { randomUUID } from 'node:crypto';
import { SkeinError } from '@skein/common/errors.js';
import { unary } from '@skein/common/grpc-server.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { GroupCoordinatorServiceService, ResetSpec, type GroupCoordinatorServiceServer, type TopicPartitions } from '@skein/proto/skein/group/v1/group.js';
import type { Logger } from 'pino';
import { emptyGroup, heartbeat, type GroupState } from '../domain/group.js';
import { ASSIGNORS, topicOf, tp, type TopicPartition } from '../domain/assignors.js';

export { GroupCoordinatorServiceService };
export const GROUP_SERVICE_NAME = 'skein.group.v1.GroupCoordinatorService';

export interface GroupServiceDeps {
  store: MetadataStore;
  prefix: string;
  logger: Logger;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Topic name → partition count, from the metadata service. */
  topics: () => Promise<Map<string, number>>;
  /** Asks the partition's leader for an offset: the log start, the log end, or the first at a time. */
  listOffset: (topic: string, partition: number, spec: 'earliest' | 'latest' | 'timestamp', timestampMs?: bigint) => Promise<bigint>;
  nowMs?: () => number;
}

const GROUP_ID = /^[a-zA-Z0-9._-]{1,255}$/;

function toTps(list: readonly TopicPartitions[]): TopicPartition[] {
  return list.flatMap((t) => t.partitions.map((p) => tp(t.topic, p)));
}

function fromTps(list: readonly TopicPartition[]): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const p of list) {
    const topic = topicOf(p);
    if (!byTopic.has(topic)) byTopic.set(topic, []);
    byTopic.get(topic)!.push(Number(p.slice(topic.length + 1)));
  }
  return [...byTopic.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
}

export function groupServiceHandlers(deps: GroupServiceDeps): GroupCoordinatorServiceServer {
  const now = deps.nowMs ?? Date.now;
  const groupKey = (id: string) => `${deps.prefix}groups/${id}`;
  const offsetPrefix = (id: string) => `${deps.prefix}offsets/${id}/`;
  const checkGroupId = (id: string) => {
    if (!GROUP_ID.test(id)) throw new SkeinError('INVALID_GROUP_ID', `group id must be 1-255 characters of [a-zA-Z0-9._-], got "${id.slice(0, 300)}"`);
  };
  async function load(id: string): Promise<{ group: GroupState | undefined; modRevision: bigint }> {
    const kv = await deps.store.get(groupKey(id));
    if (!kv) return { group: undefined, modRevision: 0n };
    return { group: JSON.parse(kv.value.toString('utf8')) as GroupState, modRevision: kv.modRevision };
  }

  return {
    heartbeat: unary(async (req) => {
      checkGroupId(req.groupId);
      let regex: RegExp | undefined;
      if (req.subscribedTopicRegex !== '') {
        try {
          regex = new RegExp(`^(?:${req.subscribedTopicRegex})$`);
        } catch (err) {
          throw new SkeinError('INVALID_SUBSCRIPTION', `subscribed_topic_regex is not a valid regular expression: ${(err as Error).message}`);
        }
      }
      if (req.memberEpoch !== -1 && !regex && req.subscribedTopics.length === 0) throw new SkeinError('INVALID_SUBSCRIPTION', 'subscribe to at least one topic or a regex');
      if (req.serverAssignor !== '' && !ASSIGNORS[req.serverAssignor]) throw new SkeinError('UNKNOWN_ASSIGNOR', `unknown assignor ${req.serverAssignor}; use range, roundrobin or uniform`);
      const counts = await deps.topics();
      const topics = regex ? [...counts.keys()].filter((t) => regex!.test(t)) : req.subscribedTopics;
      for (let attempt = 0; attempt < 10; attempt++) {
        const { group, modRevision } = await load(req.groupId);
        const current = group ?? emptyGroup(req.groupId, req.serverAssignor || 'uniform');
        const result = heartbeat(current, { memberId: req.memberId, memberEpoch: req.memberEpoch, clientId: req.clientId, topics, ownedPartitions: toTps(req.ownedPartitions) }, {
          nowMs: now(), sessionTimeoutMs: deps.sessionTimeoutMs, partitionCounts: counts, newMemberId: () => randomUUID(),
        });
        if ('problem' in result) throw new SkeinError(result.problem.reason, result.problem.message, { metadata: { group_id: req.groupId } });
        const txn = await deps.store.txn({
          compare: [{ key: groupKey(req.groupId), target: 'modRevision', op: '=', value: modRevision }],
          success: [{ type: 'put', key: groupKey(req.groupId), value: Buffer.from(JSON.stringify(result.group)) }],
        });
        if (!txn.succeeded) continue; // another instance changed the group: decide again on its state
        if (result.group.groupEpoch !== current.groupEpoch) deps.logger.info({ group: req.groupId, groupEpoch: result.group.groupEpoch, members: Object.keys(result.group.members).length }, 'group epoch changed');
        return { memberId: result.response.memberId, memberEpoch: result.response.memberEpoch, heartbeatIntervalMs: deps.heartbeatIntervalMs, assignment: fromTps(result.response.assignment) };
      }
      throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} kept changing; retry`);
    }),

    commitOffsets: unary(async (req) => {
      checkGroupId(req.groupId);
      const { group, modRevision } = await load(req.groupId);
      const counts = await deps.topics();
      const members = group ? Object.values(group.members) : [];
      const member = group?.members[req.memberId];
      if (req.memberEpoch === -1) {
        if (members.length > 0) throw new SkeinError('GROUP_NOT_EMPTY', `group ${req.groupId} has members; commit as a member`);
      } else {
        if (!member) throw new SkeinError('UNKNOWN_MEMBER', `member ${req.memberId} is not in group ${req.groupId}`);
        if (member.memberEpoch !== req.memberEpoch) throw new SkeinError('STALE_MEMBER_EPOCH', `member epoch ${req.memberEpoch} is not the current ${member.memberEpoch}`);
      }
      for (const o of req.offsets) {
        const n = counts.get(o.topic);
        if (n === undefined) throw new SkeinError('UNKNOWN_TOPIC', `topic ${o.topic} does not exist`, { metadata: { topic: o.topic } });
        if (o.partition < 0 || o.partition >= n) throw new SkeinError('UNKNOWN_PARTITION', `partition ${o.partition} of ${o.topic} does not exist`);
        if (o.offset < 0n) throw new SkeinError('OFFSET_OUT_OF_RANGE', `offset must not be negative, got ${o.offset}`);
        if (member && !member.owned.includes(tp(o.topic, o.partition))) {
          throw new SkeinError('STALE_MEMBER_EPOCH', `member ${req.memberId} does not own ${o.topic}-${o.partition}`, { metadata: { topic: o.topic, partition: String(o.partition) } });
        }
      }
      // Guarded by the group's revision: a commit decided on a stale view of ownership fails.
      const txn = await deps.store.txn({
        compare: [{ key: groupKey(req.groupId), target: 'modRevision', op: '=', value: modRevision }],
        success: req.offsets.map((o) => ({ type: 'put' as const, key: `${offsetPrefix(req.groupId)}${o.topic}/${o.partition}`, value: Buffer.from(JSON.stringify({ v: 1, offset: o.offset.toString(), metadata: o.metadata, committedAtMs: now() })) })),
      });
      if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} changed during the commit; retry`);
      return {};
    }),

    fetchOffsets: unary(async (req) => {
      checkGroupId(req.groupId);
      const { kvs } = await deps.store.range(offsetPrefix(req.groupId));
      const wanted = new Set(toTps(req.partitions));
      const offsets = kvs.map((kv) => {
        const [topic, partition] = kv.key.slice(offsetPrefix(req.groupId).length).split('/') as [string, string];
        const value = JSON.parse(kv.value.toString('utf8')) as { offset: string; metadata: string };
        return { topic, partition: Number(partition), offset: BigInt(value.offset), metadata: value.metadata };
      }).filter((o) => wanted.size === 0 || wanted.has(tp(o.topic, o.partition)));
      return { offsets };
    }),

    listGroups: unary(async () => {
      const { kvs } = await deps.store.range(`${deps.prefix}groups/`);
      return {
        groups: kvs.map((kv) => {
          const g = JSON.parse(kv.value.toString('utf8')) as GroupState;
          return { groupId: g.groupId, memberCount: Object.keys(g.members).length, groupEpoch: g.groupEpoch };
        }),
      };
    }),

    describeGroup: unary(async (req) => {
      checkGroupId(req.groupId);
      const loaded = (await load(req.groupId)).group;
      const { kvs } = await deps.store.range(offsetPrefix(req.groupId));
      // A group that only has committed offsets (no member ever joined, or all left) is an empty group.
      if (!loaded && kvs.length === 0) throw new SkeinError('UNKNOWN_GROUP', `group ${req.groupId} does not exist`, { metadata: { group_id: req.groupId } });
      const group = loaded ?? emptyGroup(req.groupId);
      const committed = new Map(kvs.map((kv) => {
        const [topic, partition] = kv.key.slice(offsetPrefix(req.groupId).length).split('/') as [string, string];
        return [tp(topic, Number(partition)), BigInt((JSON.parse(kv.value.toString('utf8')) as { offset: string }).offset)];
      }));
      const counts = await deps.topics();
      const topics = new Set([...Object.values(group.members).flatMap((m) => m.topics), ...[...committed.keys()].map(topicOf)]);
      const lags = [];
      for (const topic of [...topics].sort()) {
        const n = counts.get(topic) ?? 0;
        for (let partition = 0; partition < n; partition++) {
          const c = committed.get(tp(topic, partition));
          const [end, start] = await Promise.all([
            deps.listOffset(topic, partition, 'latest').catch(() => -1n),
            c === undefined ? deps.listOffset(topic, partition, 'earliest').catch(() => -1n) : Promise.resolve(c),
          ]);
          lags.push({ topic, partition, committedOffset: c ?? -1n, logEndOffset: end, lag: end < 0n || start < 0n ? -1n : end - start });
        }
      }
      return {
        lags,
        groupId: group.groupId,
        groupEpoch: group.groupEpoch,
        assignor: group.assignor,
        members: Object.values(group.members).map((m) => ({ memberId: m.memberId, clientId: m.clientId, memberEpoch: m.memberEpoch, subscribedTopics: m.topics, assignment: fromTps(m.owned) })),
        offsets: kvs.map((kv) => {
          const [topic, partition] = kv.key.slice(offsetPrefix(req.groupId).length).split('/') as [string, string];
          const value = JSON.parse(kv.value.toString('utf8')) as { offset: string; metadata: string };
          return { topic, partition: Number(partition), offset: BigInt(value.offset), metadata: value.metadata };
        }),
      };
    }),

    resetOffsets: unary(async (req) => {
      checkGroupId(req.groupId);
      const { group, modRevision } = await load(req.groupId);
      if (group && Object.keys(group.members).length > 0) throw new SkeinError('GROUP_NOT_EMPTY', `group ${req.groupId} has members; offsets can be reset only while it is empty`, { metadata: { group_id: req.groupId } });
      const n = (await deps.topics()).get(req.topic);
      if (n === undefined) throw new SkeinError('UNKNOWN_TOPIC', `topic ${req.topic} does not exist`, { metadata: { topic: req.topic } });
      const partitions = req.partitions.length > 0 ? req.partitions : Array.from({ length: n }, (_, i) => i);
      const bad = partitions.find((p) => p < 0 || p >= n);
      if (bad !== undefined) throw new SkeinError('UNKNOWN_PARTITION', `partition ${bad} of ${req.topic} does not exist`);
      if (req.spec === ResetSpec.RESET_SPEC_UNSPECIFIED || !(req.spec in ResetSpec)) throw new SkeinError('INVALID_REQUEST', 'spec is required: earliest, latest, timestamp, to-offset or shift-by');
      const offsets = [];
      for (const partition of partitions) {
        const [earliest, latest] = await Promise.all([deps.listOffset(req.topic, partition, 'earliest'), deps.listOffset(req.topic, partition, 'latest')]);
        const clamp = (o: bigint) => (o < earliest ? earliest : o > latest ? latest : o);
        let offset: bigint;
        switch (req.spec) {
          case ResetSpec.RESET_SPEC_EARLIEST: offset = earliest; break;
          case ResetSpec.RESET_SPEC_LATEST: offset = latest; break;
          case ResetSpec.RESET_SPEC_TIMESTAMP: offset = await deps.listOffset(req.topic, partition, 'timestamp', req.value).catch(() => latest); break;
          case ResetSpec.RESET_SPEC_TO_OFFSET: offset = clamp(req.value); break;
          default: {
            const kv = await deps.store.get(`${offsetPrefix(req.groupId)}${req.topic}/${partition}`);
            const current = kv ? BigInt((JSON.parse(kv.value.toString('utf8')) as { offset: string }).offset) : earliest;
            offset = clamp(current + req.value);
          }
        }
        offsets.push({ topic: req.topic, partition, offset: offset < 0n ? latest : offset, metadata: '' });
      }
      if (!req.dryRun) {
        // Guarded by the group key: a member joining meanwhile makes the reset fail rather than race it.
        const txn = await deps.store.txn({
          compare: [{ key: groupKey(req.groupId), target: 'modRevision', op: '=', value: modRevision }],
          success: offsets.map((o) => ({ type: 'put' as const, key: `${offsetPrefix(req.groupId)}${o.topic}/${o.partition}`, value: Buffer.from(JSON.stringify({ v: 1, offset: o.offset.toString(), metadata: '', committedAtMs: now() })) })),
        });
        if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} changed during the reset; retry`);
      }
      return { offsets };
    }),

    deleteGroup: unary(async (req) => {
      checkGroupId(req.groupId);
      const { group, modRevision } = await load(req.groupId);
      if (!group) throw new SkeinError('UNKNOWN_GROUP', `group ${req.groupId} does not exist`, { metadata: { group_id: req.groupId } });
      if (Object.keys(group.members).length > 0) throw new SkeinError('GROUP_NOT_EMPTY', `group ${req.groupId} has members`);
      const txn = await deps.store.txn({
        compare: [{ key: groupKey(req.groupId), target: 'modRevision', op: '=', value: modRevision }],
        success: [{ type: 'delete', key: groupKey(req.groupId) }, { type: 'deletePrefix', prefix: offsetPrefix(req.groupId) }],
      });
      if (!txn.succeeded) throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} changed; retry`);
      return {};
    }),
  };
}
