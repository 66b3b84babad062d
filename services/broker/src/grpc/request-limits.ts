/**
 * Limits on the shape of data-path requests, checked before any work starts (docs/limits.md lists
 * every broker limit). Pure: each check returns the problem as a message (for INVALID_ARGUMENT with
 * reason INVALID_REQUEST) or undefined.
 *
 * Why they exist: the work a request causes grows with the entries it lists (one log lookup, one
 * promise, one response entry per partition entry: 100,000 entries held a broker's event loop for
 * ~2 s), and names the broker never stores still reach lookups, logs and error messages. A negative
 * partition never names a partition; before partitions were keyed by (topic, partition), produce to
 * (`X`, -1) wrote into (`X-`, 1). Messages never echo a whole input: names are cut to a prefix.
 */

/** Kafka's topic name limit; the metadata service refuses to create longer names. */
export const MAX_TOPIC_NAME_LENGTH = 249;

/** Default for --max-partitions-per-request (Kafka has no such limit; 10,000 is far above any client's need). */
export const DEFAULT_MAX_PARTITIONS_PER_REQUEST = 10_000;

/** Longest produce timeout_ms served: an acks=all produce holds its request until replicated or timed out. */
export const PRODUCE_TIMEOUT_CAP_MS = 300_000;

/**
 * What one ProduceStream may have in flight (read, not yet answered): past either limit the broker
 * stops reading the stream until answers go out, so HTTP/2 flow control holds the client back. An
 * acks=all request waits for replication (up to its timeout) and holds its batches meanwhile; an
 * answer counts until it has been sent, so a client that never reads its answers stops too.
 */
export const PRODUCE_STREAM_MAX_IN_FLIGHT_REQUESTS = 128;
export const PRODUCE_STREAM_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;

/** Bytes of batches a produce request carries. */
export function produceRequestBytes(topics: ReadonlyArray<{ partitions: ReadonlyArray<{ batch: { length: number } }> }>): number {
  let bytes = 0;
  for (const t of topics) for (const p of t.partitions) bytes += p.batch.length;
  return bytes;
}

/** Longest InitProducerId client_id (logged with the producer id it got). */
export const MAX_CLIENT_ID_LENGTH = 255;

/** How much of a name an error message shows. */
const NAME_PREVIEW = 64;

/** A name for an error message: JSON-quoted, cut to a prefix so a 100 KB input is not echoed whole. */
export function quoteName(name: string): string {
  return name.length <= NAME_PREVIEW ? JSON.stringify(name) : `${JSON.stringify(name.slice(0, NAME_PREVIEW))}… (${name.length} characters)`;
}

export function checkTopicName(topic: string): string | undefined {
  if (topic.length > MAX_TOPIC_NAME_LENGTH) {
    return `topic name of ${topic.length} characters exceeds the limit of ${MAX_TOPIC_NAME_LENGTH}: ${quoteName(topic)}`;
  }
  return undefined;
}

export function checkPartition(topic: string, partition: number): string | undefined {
  if (partition < 0) return `partition must not be negative, got ${partition} for topic ${quoteName(topic)}`;
  return undefined;
}

/** The produce timeout served for a requested one (0 keeps the broker default; larger values are clamped). */
export function produceTimeoutMs(requested: number): number {
  return Math.min(requested, PRODUCE_TIMEOUT_CAP_MS);
}

export function checkClientId(clientId: string): string | undefined {
  if (clientId.length > MAX_CLIENT_ID_LENGTH) return `client_id of ${clientId.length} characters exceeds the limit of ${MAX_CLIENT_ID_LENGTH}: ${quoteName(clientId)}`;
  return undefined;
}

/** A list of topic names (GetMetadata): at most `maxTopics` entries, each a possible topic name. */
export function checkTopicList(topics: readonly string[], maxTopics: number): string | undefined {
  if (topics.length > maxTopics) return `request lists ${topics.length} topics; the limit is ${maxTopics} per request (--max-partitions-per-request)`;
  for (const t of topics) {
    const bad = checkTopicName(t);
    if (bad) return bad;
  }
  return undefined;
}

/** Partitions listed by topic, as Produce, Fetch and ListOffsets requests carry them. */
export type PartitionEntries = ReadonlyArray<{ topic: string; partitions: ReadonlyArray<{ partition: number }> }>;

/**
 * Checks a request's partition entries: their number first (one pass over the topics, so an
 * oversized request is refused without walking its partitions), then each topic name and partition.
 * A topic entry that lists no partitions still counts as one entry: it costs a lookup and a
 * response entry too.
 */
export function checkPartitionEntries(topics: PartitionEntries, maxPartitionsPerRequest: number): string | undefined {
  let entries = 0;
  for (const t of topics) entries += Math.max(1, t.partitions.length);
  if (entries > maxPartitionsPerRequest) {
    return `request lists ${entries} partition entries; the limit is ${maxPartitionsPerRequest} per request (--max-partitions-per-request)`;
  }
  for (const t of topics) {
    const bad = checkTopicName(t.topic);
    if (bad) return bad;
    for (const p of t.partitions) {
      const badPartition = checkPartition(t.topic, p.partition);
      if (badPartition) return badPartition;
    }
  }
  return undefined;
}
