/**
 * Partition directory names, `<topic>-<partition>` under the data directory (Kafka's layout), and
 * the broker's own check of the topic name before it becomes a path. The metadata service
 * validates names at CreateTopic, but the broker does not trust any path into its data directory:
 * a name from the metadata stream (a bug, a store written by hand, a forged service) or from any
 * other caller is checked again here, so `../x`, `a/b`, a NUL or an over-long name never reaches
 * the file system. Kafka's rules: 1 to 249 characters of [a-zA-Z0-9._-], and not `.` or `..`.
 *
 * Pure: no I/O.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { LogError } from './log-error.js';

/** Kafka's limit: with `-<partition>` and a suffix the directory name stays under 255 bytes. */
export const MAX_TOPIC_NAME_LENGTH = 249;
const LEGAL = /^[A-Za-z0-9._-]+$/;

/** Why `topic` may not name a directory, or undefined when it may. */
export function topicNameProblem(topic: string): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'topic name is empty';
  if (topic.length > MAX_TOPIC_NAME_LENGTH) return `topic name of ${topic.length} characters exceeds ${MAX_TOPIC_NAME_LENGTH}`;
  if (topic === '.' || topic === '..') return `topic name ${JSON.stringify(topic)} is reserved`;
  if (!LEGAL.test(topic)) return `topic name ${JSON.stringify(topic.slice(0, 64))} has characters other than [a-zA-Z0-9._-]`;
  return undefined;
}

/**
 * The directory of a partition's log under `dataDir`. Throws LogError INVALID_TOPIC_NAME (or
 * INVALID_REQUEST for a bad partition) rather than return a path outside `dataDir`.
 */
export function partitionDir(dataDir: string, topic: string, partition: number): string {
  if (!Number.isSafeInteger(partition) || partition < 0) throw new LogError('INVALID_REQUEST', `partition must be a non-negative integer, got ${partition}`);
  const problem = topicNameProblem(topic);
  if (problem) throw new LogError('INVALID_TOPIC_NAME', `refusing to store partition ${partition}: ${problem}`, { metadata: { partition: String(partition) } });
  const root = resolve(dataDir);
  const dir = resolve(root, `${topic}-${partition}`);
  // Unreachable with the rules above; kept so a future change to them cannot open a path out.
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.includes('/') || rel.includes('\\')) {
    throw new LogError('INVALID_TOPIC_NAME', `refusing to store partition ${partition}: its directory would not be directly under the data directory`);
  }
  return dir;
}
