/**
 * The I/O shell around the pure group state machine: read the group's state from the store, run
 * the decision, write it back with a compare-and-set on the revision it read (retrying on a lost
 * race), then answer. Any number of coordinator instances can serve the same group at once.
 *
 * The keys are GroupStore's (store/group-store.ts).
 */
import { randomUUID } from 'node:crypto';
import { SkeinError } from '@skein/common/errors.js';
import { bidiStreaming, unary } from '@skein/common/grpc-server.js';
import type { MetadataStore } from '@skein/common/store/types.js';
import { GroupStore, type CommittedOffset } from '../store/group-store.js';
import { GroupCommitter } from '../store/group-committer.js';
import type { TxnLimits } from '../store/commit-batch.js';
import { GroupCoordinatorServiceService, ResetSpec, type CommitOffsetsRequest, type GroupCoordinatorServiceServer, type HeartbeatRequest, type HeartbeatResponse, type SessionRequest, type TopicPartitions } from '@skein/proto/skein/group/v1/group.js';
import type { Logger } from 'pino';
import { emptyGroup, expireMembers, heartbeat, offsetsExpired, STREAMS_ASSIGNOR, type StreamsMemberRequest, trackEmptiness } from '../domain/group.js';
import { ASSIGNORS, topicOf, tp, type TopicPartition } from '../domain/assignors.js';
import type { GroupEvent } from '../runtime/coordinator-metrics.js';
import { commitStreamHandler } from './commit-stream.js';
import { requestAuth } from '@skein/common/security/enforcement.js';
import { commitProblem, compileTopicRegex, fetchOffsetsProblem, groupIdProblem, heartbeatProblem, isLimitProblem, type LimitProblem, resetOffsetsProblem, type TopicRegex, TopicRegexCache } from '../domain/request-limits.js';

export { GroupCoordinatorServiceService };
export const GROUP_SERVICE_NAME = 'skein.group.v1.GroupCoordinatorService';

export interface GroupServiceDeps {
  store: MetadataStore;
  prefix: string;
  logger: Logger;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** How long an empty group's committed offsets are kept (Kafka: offsets.retention.minutes). */
  offsetsRetentionMs: number;
  /** How long a member whose session stream broke keeps its partitions, waiting for it to come back. */
  sessionBreakGraceMs: number;
  /** Open session and commit streams; `closing` is set on shutdown so that closing them marks no member. */
  sessions?: SessionRegistry;
  /** Topic name → partition count, from the metadata service. */
  topics: () => Promise<Map<string, number>>;
  /** Asks the partition's leader for an offset: the log start, the log end, or the first at a time. */
  listOffset: (topic: string, partition: number, spec: 'earliest' | 'latest' | 'timestamp', timestampMs?: bigint) => Promise<bigint>;
  nowMs?: () => number;
  /** Largest commit metadata string, in UTF-8 bytes (Kafka: offset.metadata.max.bytes, 4096). */
  offsetMetadataMaxBytes?: number;
  /** Store transaction limits for group commit (etcd --max-txn-ops and a bound below --max-request-bytes). */
  commitTxnLimits?: TxnLimits;
  /** Told what happened, for metrics; must not throw. */
  onEvent?: (e: GroupEvent) => void;
}

/** Request bounds are checked before any work; a request over one is INVALID_ARGUMENT. */
function refuse(problem: LimitProblem | undefined): void {
  if (problem) throw new SkeinError(problem.reason, problem.message);
}

/** Open session and commit streams of this instance, so that shutdown can end them (clients move at once). */
export class SessionRegistry extends Set<{ emit(event: string, ...args: unknown[]): boolean }> {
  closing = false;

  /** Ends every open session with UNAVAILABLE: members reconnect to another instance. */
  closeAll(): void {
    this.closing = true;
    for (const call of this) call.emit('error', Object.assign(new Error('group coordinator shutting down'), { code: 14, details: 'group coordinator shutting down' }));
    this.clear();
  }
}

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

const MAX_CAS_ATTEMPTS = 10;
/** etcd's defaults: --max-txn-ops 128; --max-request-bytes 1.5 MiB, of which offsets take at most 1 MiB. */
export const DEFAULT_TXN_LIMITS: TxnLimits = Object.freeze({ maxTxnOps: 128, maxTxnBytes: 1024 * 1024 });

function offsetsToWire(list: readonly CommittedOffset[]) {
  return list.map(({ topic, partition, offset, metadata }) => ({ topic, partition, offset, metadata }));
}

export function groupServiceHandlers(deps: GroupServiceDeps): GroupCoordinatorServiceServer {
  const now = deps.nowMs ?? Date.now;
  const groups = new GroupStore(deps.store, deps.prefix);
  const checkGroupId = (id: string) => refuse(groupIdProblem(id));
  const offsetMetadataMaxBytes = deps.offsetMetadataMaxBytes ?? 4096;
  const regexes = new TopicRegexCache();
  const committer = new GroupCommitter(groups, { limits: deps.commitTxnLimits ?? DEFAULT_TXN_LIMITS, nowMs: now });
  /**
   * Loads a group with members past their session removed and written back, so admin operations
   * that need an empty group see what describe shows, and an expired member cannot come back
   * between the check and the write.
   */
  async function loadWithoutExpired(groupId: string) {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await groups.load(groupId);
      if (!loaded.group) return loaded;
      const swept = trackEmptiness(expireMembers(loaded.group, now(), deps.sessionTimeoutMs), now());
      if (swept === loaded.group) return loaded;
      if (await groups.save(groupId, loaded, swept)) deps.onEvent?.({ type: 'group-saved', before: loaded.group, after: swept, nowMs: now() });
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `group ${groupId} kept changing; retry`);
  }

  async function handleHeartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    refuse(heartbeatProblem(req));
    let regex: TopicRegex | undefined;
    if (req.subscribedTopicRegex !== '') {
      // RE2, not RegExp: a client's pattern must not be able to block the event loop by backtracking.
      const compiled = compileTopicRegex(req.subscribedTopicRegex);
      if (isLimitProblem(compiled)) throw new SkeinError(compiled.reason, compiled.message);
      regex = compiled;
    }
    // A streams member's subscription is its topology's source topics.
    if (req.memberEpoch !== -1 && !regex && req.subscribedTopics.length === 0 && !req.streams) throw new SkeinError('INVALID_SUBSCRIPTION', 'subscribe to at least one topic or a regex');
    if (req.serverAssignor !== '' && req.serverAssignor !== STREAMS_ASSIGNOR && !ASSIGNORS[req.serverAssignor]) throw new SkeinError('UNKNOWN_ASSIGNOR', `unknown assignor ${req.serverAssignor}; use range, roundrobin, uniform or streams`);
    const streams: StreamsMemberRequest | undefined = req.streams && {
      subtopologies: req.streams.topology.map((s) => ({ subtopologyId: s.subtopologyId, sourceTopics: s.sourceTopics, changelogTopics: s.changelogTopics })),
      numStandbyReplicas: req.streams.numStandbyReplicas,
      taskOffsets: Object.fromEntries(req.streams.taskOffsets.map((o) => [o.taskId, Number(o.offsetSum)])),
    };
    const counts = await deps.topics();
    const topics = regex ? regexes.resolve(regex, counts) : req.subscribedTopics;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await groups.load(req.groupId);
      const current = loaded.group ?? emptyGroup(req.groupId, req.serverAssignor || 'uniform');
      const result = heartbeat(current, { memberId: req.memberId, memberEpoch: req.memberEpoch, clientId: req.clientId, topics, ownedPartitions: toTps(req.ownedPartitions), serverAssignor: req.serverAssignor, streams }, {
        nowMs: now(), sessionTimeoutMs: deps.sessionTimeoutMs, partitionCounts: counts, newMemberId: () => randomUUID(),
      });
      if ('problem' in result) throw new SkeinError(result.problem.reason, result.problem.message, { metadata: { group_id: req.groupId } });
      const next = trackEmptiness(result.group, now());
      if (!(await groups.save(req.groupId, loaded, next))) continue; // another instance changed the group: decide again on its state
      deps.onEvent?.({ type: 'group-saved', before: loaded.group, after: next, nowMs: now() });
      if (next.groupEpoch !== current.groupEpoch) deps.logger.info({ group: req.groupId, groupEpoch: next.groupEpoch, members: Object.keys(next.members).length }, 'group epoch changed');
      return { memberId: result.response.memberId, memberEpoch: result.response.memberEpoch, heartbeatIntervalMs: deps.heartbeatIntervalMs, assignment: fromTps(result.response.assignment), standbyTasks: result.response.standbyTasks };
    }
    throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} kept changing; retry`);
  }

  /**
   * A session stream broke without a leave: unless the member has been heard from since (over
   * another stream or unary), its session now ends after the grace instead of the full timeout.
   * Compare-and-set on the group and liveness keys, so a heartbeat landing meanwhile wins.
   */
  async function shortenSession(groupId: string, memberId: string, lastSeenMs: number): Promise<void> {
    const loaded = await groups.load(groupId);
    const member = loaded.group?.members[memberId];
    if (!member || member.lastHeartbeatMs > lastSeenMs) return;
    // A member that is alive reconnects at its next heartbeat: the grace covers at least two intervals.
    const graceMs = Math.max(deps.sessionBreakGraceMs, 2 * deps.heartbeatIntervalMs);
    const endsAtMs = now() - deps.sessionTimeoutMs + graceMs;
    if (endsAtMs >= member.lastHeartbeatMs) return; // the session ends sooner anyway
    if (await groups.markSessionBroken(groupId, memberId, endsAtMs, loaded)) {
      deps.logger.info({ group: groupId, member: memberId, graceMs }, 'session stream broke; member expires after the grace unless it comes back');
    }
  }

  /** Reports each CommitOffsets outcome (committed, or the error's reason) for metrics. */
  const countCommits = <Req, Res>(fn: (req: Req) => Promise<Res>) => async (req: Req): Promise<Res> => {
    try {
      const res = await fn(req);
      deps.onEvent?.({ type: 'commit' });
      return res;
    } catch (err) {
      deps.onEvent?.({ type: 'commit', reason: (err as { reason?: string }).reason ?? 'INTERNAL' });
      throw err;
    }
  };

  /** One commit, unary or on a stream: checked, then group-committed; resolves once durable. */
  const commit = countCommits(async (req: CommitOffsetsRequest): Promise<void> => {
    refuse(commitProblem(req, offsetMetadataMaxBytes));
    const counts = await deps.topics();
    for (const o of req.offsets) {
      const n = counts.get(o.topic);
      if (n === undefined) throw new SkeinError('UNKNOWN_TOPIC', `topic ${o.topic} does not exist`, { metadata: { topic: o.topic } });
      if (o.partition < 0 || o.partition >= n) throw new SkeinError('UNKNOWN_PARTITION', `partition ${o.partition} of ${o.topic} does not exist`, { metadata: { topic: o.topic, partition: String(o.partition) } });
      if (o.offset < 0n) throw new SkeinError('OFFSET_OUT_OF_RANGE', `offset must not be negative, got ${o.offset}`, { metadata: { topic: o.topic, partition: String(o.partition) } });
    }
    // Group commit: validated against the group's state and written guarded by its revision,
    // in one transaction with other commits that arrived meanwhile (store/group-committer.ts).
    const at = now();
    await committer.commit({ groupId: req.groupId, memberId: req.memberId, memberEpoch: req.memberEpoch, offsets: req.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata, committedAtMs: at })) });
  });

  return {
    heartbeat: unary((req) => handleHeartbeat(req)),

    session: bidiStreaming(async (call) => {
      let member: { groupId: string; memberId: string; lastSeenMs: number } | undefined;
      let ended = false;
      deps.sessions?.add(call);
      call.on('cancelled', () => {
        // The member's connection broke (a clean leave or a server-side error ends the stream first).
        if (!ended && member && !deps.sessions?.closing) void shortenSession(member.groupId, member.memberId, member.lastSeenMs).catch((err: unknown) => deps.logger.warn({ err }, 'could not shorten a broken session'));
      });
      try {
        // Messages are handled one at a time, in order; the stream ends when the member half-closes.
        await new Promise<void>((resolve, reject) => {
          let chain = Promise.resolve();
          let failed = false;
          call.on('data', (message: SessionRequest) => {
            chain = chain.then(async () => {
              if (failed) return; // the stream is ending with the first error; later messages are moot
              const req = message.heartbeat;
              if (!req) throw new SkeinError('INVALID_REQUEST', 'a session message carries a heartbeat');
              const res = await handleHeartbeat(req);
              member = req.memberEpoch === -1 ? undefined : { groupId: req.groupId, memberId: res.memberId, lastSeenMs: now() };
              call.write({ heartbeat: res });
            }).catch((err: unknown) => {
              failed = true;
              reject(err);
            });
          });
          call.on('end', () => void chain.then(() => resolve()));
          call.on('cancelled', () => resolve());
          call.on('error', () => resolve());
        });
      } finally {
        ended = !call.cancelled;
        deps.sessions?.delete(call);
      }
    }),

    commitOffsets: unary(async (req) => {
      await commit(req);
      return {};
    }),

    // The same commits, pipelined on one stream (grpc/commit-stream.ts).
    commitStream: commitStreamHandler({ commit, logger: deps.logger, streams: deps.sessions }),

    fetchOffsets: unary(async (req) => {
      refuse(fetchOffsetsProblem(req));
      const wanted = new Set(toTps(req.partitions));
      const offsets = (await groups.fetchOffsets(req.groupId)).filter((o) => wanted.size === 0 || wanted.has(tp(o.topic, o.partition)));
      return { offsets: offsetsToWire(offsets) };
    }),

    listGroups: unary(async (_req, call) => {
      // Only the groups the caller may describe (every group with the authorizer off).
      const auth = requestAuth(call);
      return {
        groups: (await groups.listGroups())
          .filter((g) => auth.allowed({ resourceType: 'group', resourceName: g.groupId, operation: 'describe' }))
          .map((g) => ({ groupId: g.groupId, memberCount: Object.keys(g.members).length, groupEpoch: g.groupEpoch })),
      };
    }),

    describeGroup: unary(async (req) => {
      checkGroupId(req.groupId);
      const [loaded, stored] = await Promise.all([loadWithoutExpired(req.groupId), groups.fetchOffsets(req.groupId)]);
      if (!loaded.group && stored.length === 0) throw new SkeinError('UNKNOWN_GROUP', `group ${req.groupId} does not exist`, { metadata: { group_id: req.groupId } });
      const group = loaded.group ?? emptyGroup(req.groupId);
      const committed = new Map(stored.map((o) => [tp(o.topic, o.partition), o.offset]));
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
        members: Object.values(group.members).map((m) => ({ memberId: m.memberId, clientId: m.clientId, memberEpoch: m.memberEpoch, subscribedTopics: m.topics, assignment: fromTps(m.owned), activeTasks: group.streams?.tasks[m.memberId]?.active ?? [], standbyTasks: group.streams?.tasks[m.memberId]?.standby ?? [] })),
        offsets: offsetsToWire(stored),
      };
    }),

    resetOffsets: unary(async (req) => {
      refuse(resetOffsetsProblem(req));
      const loaded = await loadWithoutExpired(req.groupId);
      if (loaded.group && Object.keys(loaded.group.members).length > 0) {
        throw new SkeinError('GROUP_NOT_EMPTY', `group ${req.groupId} has members; offsets can be reset only while it is empty`, { metadata: { group_id: req.groupId } });
      }
      const n = (await deps.topics()).get(req.topic);
      if (n === undefined) throw new SkeinError('UNKNOWN_TOPIC', `topic ${req.topic} does not exist`, { metadata: { topic: req.topic } });
      const partitions = req.partitions.length > 0 ? req.partitions : Array.from({ length: n }, (_, i) => i);
      const bad = partitions.find((p) => p < 0 || p >= n);
      if (bad !== undefined) throw new SkeinError('UNKNOWN_PARTITION', `partition ${bad} of ${req.topic} does not exist`);
      if (req.spec === ResetSpec.RESET_SPEC_UNSPECIFIED || !(req.spec in ResetSpec)) throw new SkeinError('INVALID_REQUEST', 'spec is required: earliest, latest, timestamp, to-offset or shift-by');
      const current = new Map((await groups.fetchOffsets(req.groupId)).map((o) => [tp(o.topic, o.partition), o.offset]));
      const at = now();
      const offsets: CommittedOffset[] = [];
      for (const partition of partitions) {
        const [earliest, latest] = await Promise.all([deps.listOffset(req.topic, partition, 'earliest'), deps.listOffset(req.topic, partition, 'latest')]);
        const clamp = (o: bigint) => (o < earliest ? earliest : o > latest ? latest : o);
        let offset: bigint;
        switch (req.spec) {
          case ResetSpec.RESET_SPEC_EARLIEST: offset = earliest; break;
          case ResetSpec.RESET_SPEC_LATEST: offset = latest; break;
          case ResetSpec.RESET_SPEC_TIMESTAMP: offset = await deps.listOffset(req.topic, partition, 'timestamp', req.value).catch(() => latest); break;
          case ResetSpec.RESET_SPEC_TO_OFFSET: offset = clamp(req.value); break;
          default: offset = clamp((current.get(tp(req.topic, partition)) ?? earliest) + req.value);
        }
        offsets.push({ topic: req.topic, partition, offset: offset < 0n ? latest : offset, metadata: '', committedAtMs: at });
      }
      // An admin commit (epoch -1): refused if a member joined meanwhile; split over transactions when the topic is large.
      if (!req.dryRun) await committer.commit({ groupId: req.groupId, memberId: '', memberEpoch: -1, offsets });
      return { offsets: offsetsToWire(offsets) };
    }),

    deleteGroup: unary(async (req) => {
      checkGroupId(req.groupId);
      const loaded = await loadWithoutExpired(req.groupId);
      if (!loaded.group) throw new SkeinError('UNKNOWN_GROUP', `group ${req.groupId} does not exist`, { metadata: { group_id: req.groupId } });
      if (Object.keys(loaded.group.members).length > 0) throw new SkeinError('GROUP_NOT_EMPTY', `group ${req.groupId} has members`, { metadata: { group_id: req.groupId } });
      if (!(await groups.deleteGroup(req.groupId, loaded.revision))) throw new SkeinError('CONCURRENT_MODIFICATION', `group ${req.groupId} changed; retry`);
      return {};
    }),
  };
}

/**
 * One pass of the background sweep every coordinator instance runs (idempotent, CAS-guarded, so
 * instances need no coordination): removes members whose session expired even if nobody in their
 * group heartbeats any more (so the group becomes empty and its retention clock starts), and
 * deletes empty groups whose offsets outlived the retention.
 */
export async function sweepGroups(deps: Pick<GroupServiceDeps, 'store' | 'prefix' | 'logger' | 'sessionTimeoutMs' | 'offsetsRetentionMs' | 'nowMs' | 'onEvent'>): Promise<{ expiredMembers: number; deletedGroups: number }> {
  const now = deps.nowMs ?? Date.now;
  const groups = new GroupStore(deps.store, deps.prefix);
  let expiredMembers = 0;
  let deletedGroups = 0;
  for (const { groupId } of await groups.listGroups()) {
    const loaded = await groups.load(groupId);
    if (!loaded.group) continue;
    const expired = trackEmptiness(expireMembers(loaded.group, now(), deps.sessionTimeoutMs), now());
    if (expired !== loaded.group) {
      const gone = Object.keys(loaded.group.members).length - Object.keys(expired.members).length;
      if (await groups.save(groupId, loaded, expired)) {
        deps.onEvent?.({ type: 'group-saved', before: loaded.group, after: expired, nowMs: now() });
        expiredMembers += gone;
        if (gone > 0) deps.logger.info({ group: groupId, expired: gone, groupEpoch: expired.groupEpoch }, 'members expired');
      }
      continue; // retention is judged on the next pass, from the state just written
    }
    const offsets = await groups.fetchOffsets(groupId);
    const lastCommitMs = offsets.reduce((m, o) => Math.max(m, o.committedAtMs), 0);
    if (offsetsExpired(loaded.group, lastCommitMs, now(), deps.offsetsRetentionMs) && (await groups.deleteGroup(groupId, loaded.revision))) {
      deletedGroups++;
      deps.logger.info({ group: groupId, offsets: offsets.length }, 'empty group expired: offsets retention passed');
    }
  }
  return { expiredMembers, deletedGroups };
}
