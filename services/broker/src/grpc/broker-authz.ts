/**
 * What each broker RPC needs from the authorizer (the shell enforces it: libs/common
 * security/enforcement.ts). Kafka's choices: produce needs write on each topic, fetch and
 * subscribe read, list offsets describe; an idempotent producer's InitProducerId needs write on
 * some topic or idempotent_write on the cluster (KIP-679). Replication and transaction markers are
 * internal (cluster_action), and a replica fetch is accepted only under the caller's own broker id.
 */
import { type Action, ANY_RESOURCE } from '@skein/common/security/authorizer.js';
import { type AuthorizeMap, type AuthzPrincipal, clusterAction, requireBrokerIdentity, type Requirement } from '@skein/common/security/enforcement.js';

const topic = (resourceName: string, operation: Action['operation']): Action => ({ resourceType: 'topic', resourceName, operation });
/** One action per distinct topic named in the request (a malformed request has none: it is refused before). */
const perTopic = (names: Iterable<string>, operation: Action['operation']): Requirement[] => [...new Set(names)].map((n) => topic(n, operation));

interface TopicsRequest {
  topics?: Array<{ topic: string }>;
}

export const brokerAuthorizeMap: AuthorizeMap = {
  produce: (req: TopicsRequest) =>
    perTopic(
      (req.topics ?? []).map((t) => t.topic),
      'write',
    ),
  produceStream: (req: TopicsRequest) =>
    perTopic(
      (req.topics ?? []).map((t) => t.topic),
      'write',
    ),
  fetch: (req: TopicsRequest) =>
    perTopic(
      (req.topics ?? []).map((t) => t.topic),
      'read',
    ),
  // A malformed request (the broker's decoders mark it; its handler answers INVALID_ARGUMENT) names no topic.
  subscribe: (req: { topic?: string }) => (typeof req.topic === 'string' ? [topic(req.topic, 'read')] : []),
  listOffsets: (req: TopicsRequest) =>
    perTopic(
      (req.topics ?? []).map((t) => t.topic),
      'describe',
    ),
  initProducerId: () => [[clusterAction('idempotent_write'), topic(ANY_RESOURCE, 'write')]],
  // Answers only the topics the caller may describe (the handler filters).
  getMetadata: 'any',
  // An operator's byte-for-byte read of any replica, above the high watermark too: internal only.
  readReplicaLog: () => [clusterAction('cluster_action')],
};

/** The transaction coordinator's calls to brokers: internal; DescribeProducers (an operator's look for hanging transactions) needs read on each topic, as in Kafka. */
export const brokerTxnAuthorizeMap: AuthorizeMap = {
  beginTxn: () => [clusterAction('cluster_action')],
  writeTxnMarkers: () => [clusterAction('cluster_action')],
  describeProducers: (req: TopicsRequest) =>
    perTopic(
      (req.topics ?? []).map((t) => t.topic),
      'read',
    ),
};

/** Follower → leader: only as the caller's own broker id (a forged id would record fake progress and move the high watermark). */
export function replicaAuthorizeMap(brokerPrincipalPattern: RegExp): AuthorizeMap {
  return {
    replicaFetch: (req: { replicaId: number }, p: AuthzPrincipal) => requireBrokerIdentity(p, req.replicaId, brokerPrincipalPattern),
    // Each message of the stream names the follower; every one is checked.
    replicate: (req: { replicaId: number }, p: AuthzPrincipal) => requireBrokerIdentity(p, req.replicaId, brokerPrincipalPattern),
  };
}
