/**
 * Bounds on what a client may make the metadata service store, echo or look up, checked in the
 * gRPC layer before any work (no store read, no validation pass over a huge map). Each bound is
 * listed in docs/limits.md. Domain validation (topic-config.ts, admin.ts) still decides what is
 * valid; these only keep hostile sizes from reaching it: 10,000 bad config keys used to make a
 * 200 KB error message, and a 100 KB topic name was echoed whole by describe and delete.
 *
 * Pure: returns the problem (reason and message); the gRPC shell throws.
 */

export const METADATA_LIMITS = Object.freeze({
  /** Kafka's topic name limit (topicNameProblem checks the characters on create). */
  topicNameChars: 249,
  /** Topic configs set (or removed) in one request; there are 14 known keys. */
  configEntries: 64,
  configKeyChars: 255,
  configValueChars: 1024,
  /** Topic names in one GetClusterMetadata request. */
  topicsPerRequest: 10_000,
  /** Partition entries in one ElectPreferredLeaders or ReassignPartitions request. */
  partitionsPerRequest: 10_000,
  /** Broker ids in one replica list or ISR (the replication factor limit). */
  replicasPerPartition: 32,
  topicIdChars: 64,
  hostChars: 255,
  rackChars: 255,
});

export type LimitProblem = { reason: 'INVALID_TOPIC_NAME' | 'INVALID_CONFIG' | 'INVALID_REQUEST'; message: string };

const L = METADATA_LIMITS;

/** A short quote of client input for a message. */
function quote(s: string): string {
  return s.length <= 64 ? `"${s}"` : `"${s.slice(0, 64)}…" (${s.length} characters)`;
}

function tooLong(what: string, value: string, limit: number, reason: LimitProblem['reason'] = 'INVALID_REQUEST'): LimitProblem | undefined {
  return value.length > limit ? { reason, message: `${what} is ${value.length} characters; the limit is ${limit}` } : undefined;
}

export function topicNameLimitProblem(name: string): LimitProblem | undefined {
  return tooLong(`topic name ${quote(name)}`, name, L.topicNameChars, 'INVALID_TOPIC_NAME');
}

/** Config maps and removal lists: entry count and key/value lengths. */
export function configsProblem(what: string, configs: Readonly<Record<string, string>>, remove: readonly string[] = []): LimitProblem | undefined {
  const keys = Object.keys(configs);
  if (keys.length > L.configEntries || remove.length > L.configEntries) {
    return { reason: 'INVALID_CONFIG', message: `${what} has ${Math.max(keys.length, remove.length)} entries; the limit is ${L.configEntries}` };
  }
  for (const key of [...keys, ...remove]) {
    const p = tooLong(`config key ${quote(key)}`, key, L.configKeyChars, 'INVALID_CONFIG');
    if (p) return p;
  }
  for (const [key, value] of Object.entries(configs)) {
    const p = tooLong(`the value of config ${quote(key)}`, value, L.configValueChars, 'INVALID_CONFIG');
    if (p) return p;
  }
  return undefined;
}

function replicasProblem(what: string, ids: readonly number[]): LimitProblem | undefined {
  return ids.length > L.replicasPerPartition ? { reason: 'INVALID_REQUEST', message: `${what} has ${ids.length} broker ids; the limit is ${L.replicasPerPartition}` } : undefined;
}

export function registerBrokerProblem(req: { host: string; rack: string }): LimitProblem | undefined {
  return tooLong('endpoint.host', req.host, L.hostChars) ?? tooLong('rack', req.rack, L.rackChars);
}

export function getClusterMetadataProblem(req: { topics: readonly string[] }): LimitProblem | undefined {
  if (req.topics.length > L.topicsPerRequest) return { reason: 'INVALID_REQUEST', message: `topics has ${req.topics.length} names; the limit is ${L.topicsPerRequest}` };
  for (const t of req.topics) {
    const p = topicNameLimitProblem(t);
    if (p) return p;
  }
  return undefined;
}

export function alterPartitionProblem(req: { topic: string; topicId: string; newIsr: readonly number[] }): LimitProblem | undefined {
  return topicNameLimitProblem(req.topic) ?? tooLong('topic_id', req.topicId, L.topicIdChars) ?? replicasProblem('new_isr', req.newIsr);
}

export function electPreferredLeadersProblem(req: { partitions: ReadonlyArray<{ topic: string; partitions: readonly number[] }> }): LimitProblem | undefined {
  let count = 0;
  for (const t of req.partitions) {
    const p = topicNameLimitProblem(t.topic);
    if (p) return p;
    count += Math.max(1, t.partitions.length);
    if (count > L.partitionsPerRequest) return { reason: 'INVALID_REQUEST', message: `partitions has more than ${L.partitionsPerRequest} entries` };
  }
  return undefined;
}

export function reassignPartitionsProblem(req: { reassignments: ReadonlyArray<{ topic: string; targetReplicas: readonly number[] }> }): LimitProblem | undefined {
  if (req.reassignments.length > L.partitionsPerRequest) {
    return { reason: 'INVALID_REQUEST', message: `reassignments has ${req.reassignments.length} entries; the limit is ${L.partitionsPerRequest}` };
  }
  for (const r of req.reassignments) {
    const p = topicNameLimitProblem(r.topic) ?? replicasProblem('target_replicas', r.targetReplicas);
    if (p) return p;
  }
  return undefined;
}
