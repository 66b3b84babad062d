/**
 * Bounds on what a client may make the coordinator store, echo or compute, checked before any
 * work (no store read, no regex run). Each bound is listed in docs/limits.md. Everything a member
 * sends is stored in the group's state in the metadata store and read back on every heartbeat of
 * every member, so an unbounded client id or subscription would grow every group read.
 *
 * Subscription regexes run on RE2 (re2js: a linear-time engine with no backtracking), never on
 * V8's backtracking engine: `(a+)+$` against a 40-character topic name took V8 hours. Linear time
 * still scales with the compiled program, so the pattern and its program size are bounded too.
 *
 * Pure: returns the problem (reason and message) or the compiled regex; the gRPC shell throws.
 */
import { RE2JS } from 're2js';

export const GROUP_LIMITS = Object.freeze({
  /** Group ids: 1-255 characters of [a-zA-Z0-9._-] (they are part of store keys). */
  groupIdChars: 255,
  /** Member ids are the coordinator's UUIDs (36 characters); a client-chosen one may be at most this. */
  memberIdChars: 64,
  clientIdChars: 255,
  /** Kafka's topic name limit. */
  topicNameChars: 249,
  /** Topics named in one subscription. */
  subscribedTopics: 10_000,
  /** Characters of a subscription regex. */
  topicRegexChars: 255,
  /** Instructions of the compiled regex: bounds the work per topic name (about 0.1 ms per 50-character name at the limit). */
  topicRegexProgramSize: 500,
  serverAssignorChars: 64,
  /** Partition entries in one request: owned partitions, commits, fetches, resets. */
  partitionsPerRequest: 10_000,
  /** Streams members: subtopologies in a topology (each is stored in the group's state). */
  subtopologies: 1000,
  subtopologyIdChars: 64,
  /** Streams members: source and changelog topics named by a topology, all subtopologies together. */
  topologyTopics: 10_000,
  /** Streams members: task offsets in one heartbeat. */
  taskOffsets: 10_000,
  /** A subtopology id, '_', a partition number. */
  taskIdChars: 80,
  /** Standby copies per task: each costs every member a changelog reader per copy. */
  numStandbyReplicas: 16,
});

export type LimitProblem = { reason: 'INVALID_GROUP_ID' | 'INVALID_SUBSCRIPTION' | 'INVALID_TOPIC_NAME' | 'INVALID_REQUEST'; message: string };

const GROUP_ID = /^[a-zA-Z0-9._-]{1,255}$/;

/** A short quote of client input for a message (error messages are bounded anyway; this keeps them readable). */
function quote(s: string): string {
  return s.length <= 64 ? `"${s}"` : `"${s.slice(0, 64)}…" (${s.length} characters)`;
}

export function groupIdProblem(groupId: string): LimitProblem | undefined {
  if (GROUP_ID.test(groupId)) return undefined;
  return { reason: 'INVALID_GROUP_ID', message: `group id must be 1-${GROUP_LIMITS.groupIdChars} characters of [a-zA-Z0-9._-], got ${quote(groupId)}` };
}

function tooLong(what: string, value: string, limit: number, reason: LimitProblem['reason'] = 'INVALID_REQUEST'): LimitProblem | undefined {
  return value.length > limit ? { reason, message: `${what} is ${value.length} characters; the limit is ${limit}` } : undefined;
}

function topicProblem(topic: string): LimitProblem | undefined {
  return tooLong(`topic name ${quote(topic)}`, topic, GROUP_LIMITS.topicNameChars, 'INVALID_TOPIC_NAME');
}

/** Topic-partition lists (owned, fetch): entry count and topic names. */
function partitionListProblem(what: string, list: ReadonlyArray<{ topic: string; partitions: readonly number[] }>): LimitProblem | undefined {
  let count = 0;
  for (const t of list) {
    const p = topicProblem(t.topic);
    if (p) return p;
    count += Math.max(1, t.partitions.length);
    if (count > GROUP_LIMITS.partitionsPerRequest) return { reason: 'INVALID_REQUEST', message: `${what} has more than ${GROUP_LIMITS.partitionsPerRequest} partition entries` };
  }
  return undefined;
}

export interface HeartbeatShape {
  groupId: string;
  memberId: string;
  clientId: string;
  subscribedTopics: readonly string[];
  subscribedTopicRegex: string;
  serverAssignor: string;
  ownedPartitions: ReadonlyArray<{ topic: string; partitions: readonly number[] }>;
  streams?: StreamsShape | undefined;
}

export interface StreamsShape {
  topology: ReadonlyArray<{ subtopologyId: string; sourceTopics: readonly string[]; changelogTopics: readonly string[] }>;
  numStandbyReplicas: number;
  taskOffsets: ReadonlyArray<{ taskId: string; offsetSum: bigint }>;
}

const SUBTOPOLOGY_ID = /^[a-zA-Z0-9._-]{1,64}$/;
const TASK_ID = /^[a-zA-Z0-9._-]{1,64}_(0|[1-9][0-9]{0,9})$/;

/** A streams member's topology and task offsets: counts, id shapes, ranges. */
export function streamsProblem(streams: StreamsShape): LimitProblem | undefined {
  const L = GROUP_LIMITS;
  const invalid = (message: string): LimitProblem => ({ reason: 'INVALID_REQUEST', message });
  if (streams.topology.length === 0 || streams.topology.length > L.subtopologies) return invalid(`streams.topology has ${streams.topology.length} subtopologies; it needs 1 to ${L.subtopologies}`);
  if (!Number.isInteger(streams.numStandbyReplicas) || streams.numStandbyReplicas < 0 || streams.numStandbyReplicas > L.numStandbyReplicas) {
    return invalid(`streams.num_standby_replicas must be 0 to ${L.numStandbyReplicas}, got ${streams.numStandbyReplicas}`);
  }
  const ids = new Set<string>();
  let topics = 0;
  for (const s of streams.topology) {
    if (!SUBTOPOLOGY_ID.test(s.subtopologyId)) return invalid(`subtopology id must be 1-${L.subtopologyIdChars} characters of [a-zA-Z0-9._-], got ${quote(s.subtopologyId)}`);
    if (ids.has(s.subtopologyId)) return invalid(`subtopology id ${s.subtopologyId} appears twice`);
    ids.add(s.subtopologyId);
    if (s.sourceTopics.length === 0) return invalid(`subtopology ${s.subtopologyId} has no source topics`);
    topics += s.sourceTopics.length + s.changelogTopics.length;
    if (topics > L.topologyTopics) return invalid(`streams.topology names more than ${L.topologyTopics} topics`);
    for (const t of [...s.sourceTopics, ...s.changelogTopics]) {
      const p = topicProblem(t);
      if (p) return p;
    }
  }
  if (streams.taskOffsets.length > L.taskOffsets) return invalid(`streams.task_offsets has ${streams.taskOffsets.length} entries; the limit is ${L.taskOffsets}`);
  for (const o of streams.taskOffsets) {
    if (o.taskId.length > L.taskIdChars || !TASK_ID.test(o.taskId)) return invalid(`task id must be <subtopology id>_<partition> (at most ${L.taskIdChars} characters), got ${quote(o.taskId)}`);
    if (o.offsetSum < 0n || o.offsetSum > BigInt(Number.MAX_SAFE_INTEGER)) return invalid(`offset_sum of task ${o.taskId} must be 0 to 2^53-1, got ${o.offsetSum}`);
  }
  return undefined;
}

export function heartbeatProblem(req: HeartbeatShape): LimitProblem | undefined {
  const idProblem = groupIdProblem(req.groupId);
  if (idProblem) return idProblem;
  const simple = tooLong('member_id', req.memberId, GROUP_LIMITS.memberIdChars)
    ?? tooLong('client_id', req.clientId, GROUP_LIMITS.clientIdChars)
    ?? tooLong('server_assignor', req.serverAssignor, GROUP_LIMITS.serverAssignorChars);
  if (simple) return simple;
  if (req.subscribedTopics.length > GROUP_LIMITS.subscribedTopics) {
    return { reason: 'INVALID_SUBSCRIPTION', message: `subscribed_topics has ${req.subscribedTopics.length} topics; the limit is ${GROUP_LIMITS.subscribedTopics} (subscribe by regex instead)` };
  }
  for (const t of req.subscribedTopics) {
    const p = topicProblem(t);
    if (p) return p;
  }
  return partitionListProblem('owned_partitions', req.ownedPartitions) ?? (req.streams ? streamsProblem(req.streams) : undefined);
}

export interface CommitShape {
  groupId: string;
  memberId: string;
  offsets: ReadonlyArray<{ topic: string; metadata: string }>;
}

export function commitProblem(req: CommitShape, offsetMetadataMaxBytes: number): LimitProblem | undefined {
  const idProblem = groupIdProblem(req.groupId) ?? tooLong('member_id', req.memberId, GROUP_LIMITS.memberIdChars);
  if (idProblem) return idProblem;
  if (req.offsets.length > GROUP_LIMITS.partitionsPerRequest) {
    return { reason: 'INVALID_REQUEST', message: `a commit has ${req.offsets.length} offsets; the limit is ${GROUP_LIMITS.partitionsPerRequest}` };
  }
  for (const o of req.offsets) {
    const p = topicProblem(o.topic);
    if (p) return p;
    // Cheap check first: a string of n characters has at least n UTF-8 bytes.
    if (o.metadata.length > offsetMetadataMaxBytes || Buffer.byteLength(o.metadata, 'utf8') > offsetMetadataMaxBytes) {
      return { reason: 'INVALID_REQUEST', message: `offset metadata for ${o.topic} is ${Buffer.byteLength(o.metadata, 'utf8')} bytes; the limit is ${offsetMetadataMaxBytes} (offset.metadata.max.bytes)` };
    }
  }
  return undefined;
}

export function fetchOffsetsProblem(req: { groupId: string; partitions: ReadonlyArray<{ topic: string; partitions: readonly number[] }> }): LimitProblem | undefined {
  return groupIdProblem(req.groupId) ?? partitionListProblem('partitions', req.partitions);
}

export function resetOffsetsProblem(req: { groupId: string; topic: string; partitions: readonly number[] }): LimitProblem | undefined {
  return groupIdProblem(req.groupId) ?? topicProblem(req.topic)
    ?? (req.partitions.length > GROUP_LIMITS.partitionsPerRequest ? { reason: 'INVALID_REQUEST', message: `partitions has ${req.partitions.length} entries; the limit is ${GROUP_LIMITS.partitionsPerRequest}` } : undefined);
}

/** A compiled subscription regex: full-match semantics, as `^(?:pattern)$` had. */
export interface TopicRegex {
  readonly pattern: string;
  matches(topic: string): boolean;
}

export function compileTopicRegex(pattern: string): TopicRegex | LimitProblem {
  if (pattern.length > GROUP_LIMITS.topicRegexChars) {
    return { reason: 'INVALID_SUBSCRIPTION', message: `subscribed_topic_regex is ${pattern.length} characters; the limit is ${GROUP_LIMITS.topicRegexChars}` };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    // RE2 refuses what needs backtracking (backreferences, lookaround) and repeat counts over 1000.
    return { reason: 'INVALID_SUBSCRIPTION', message: `subscribed_topic_regex is not a valid RE2 regular expression: ${(err as Error).message}` };
  }
  if (re.programSize() > GROUP_LIMITS.topicRegexProgramSize) {
    return { reason: 'INVALID_SUBSCRIPTION', message: `subscribed_topic_regex compiles to ${re.programSize()} instructions; the limit is ${GROUP_LIMITS.topicRegexProgramSize} (simplify the pattern or list the topics)` };
  }
  return { pattern, matches: (topic) => re.matches(topic) };
}

export function isLimitProblem(x: TopicRegex | LimitProblem): x is LimitProblem {
  return 'reason' in x;
}

/**
 * Topics matched by a subscription regex, cached per topic snapshot: the shell's topic map is
 * one object until metadata is refreshed, so members heartbeating with the same pattern cost one
 * scan per refresh, not one per heartbeat. Bounded: a snapshot keeps at most `maxPatterns` results.
 */
export class TopicRegexCache {
  private snapshot: ReadonlyMap<string, number> | undefined;
  private results = new Map<string, string[]>();

  constructor(private readonly maxPatterns = 256) {}

  resolve(regex: TopicRegex, topics: ReadonlyMap<string, number>): string[] {
    if (topics !== this.snapshot) {
      this.snapshot = topics;
      this.results.clear();
    }
    const cached = this.results.get(regex.pattern);
    if (cached) return cached;
    const matched = [...topics.keys()].filter((t) => regex.matches(t));
    if (this.results.size >= this.maxPatterns) this.results.clear();
    this.results.set(regex.pattern, matched);
    return matched;
  }
}
