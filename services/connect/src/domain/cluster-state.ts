/**
 * The Connect cluster's configuration state, rebuilt by replaying the config topic (Kafka
 * Connect's KafkaConfigBackingStore; KRaft's image/replay is the model): one compacted record per
 * connector, key `connector-<name>`, value the JSON of `ConnectorRecord` or null (a tombstone:
 * deleted). Every worker replays the same topic, so every worker reaches the same state; `replay`
 * is the only thing that changes it and returns a new map (the old one is never mutated).
 *
 * Which worker runs a task is decided by task slots (assignment.ts), not stored here.
 *
 * A record holds everything about its connector (config, the plugin's task configs, pause and
 * restart counters) so that one write is one atomic change: a reader never sees a connector whose
 * tasks belong to an older config. Writes are read-modify-write by whichever worker answered the
 * RPC; two concurrent changes of one connector are last-writer-wins, as on Kafka Connect's
 * REST API without the leader's forwarding.
 */

export type ConnectorType = 'source' | 'sink';

export interface ConnectorRecord {
  name: string;
  type: ConnectorType;
  config: Record<string, string>;
  /** Per task, as the plugin split the config (taskConfigs). */
  tasks: Array<Record<string, string>>;
  /** Bumped by every update and connector restart: tasks with an older generation are restarted. */
  generation: number;
  paused: boolean;
  /** Per task, bumped by RestartTask (and RestartConnector): a task restarts when its count moves. */
  taskRestarts: number[];
}

export type ClusterState = ReadonlyMap<string, ConnectorRecord>;

export const CONNECTOR_KEY_PREFIX = 'connector-';

export function connectorKey(name: string): string {
  return `${CONNECTOR_KEY_PREFIX}${name}`;
}

export function encodeConnector(record: ConnectorRecord): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...record }));
}

/** Parses a config-topic value; throws on anything that is not a version-1 connector record. */
export function decodeConnector(value: Buffer): ConnectorRecord {
  const o = JSON.parse(value.toString('utf8')) as ConnectorRecord & { v?: number };
  if (o.v !== 1 || typeof o.name !== 'string' || (o.type !== 'source' && o.type !== 'sink') || !Array.isArray(o.tasks))
    throw new Error('not a connector record');
  return {
    name: o.name,
    type: o.type,
    config: o.config ?? {},
    tasks: o.tasks,
    generation: o.generation ?? 0,
    paused: o.paused === true,
    taskRestarts: Array.isArray(o.taskRestarts) ? o.taskRestarts : [],
  };
}

/**
 * The state after one config-topic record. Records with keys this version does not know, or
 * values it cannot parse, are skipped (reported through `onSkip`) so that one bad record never
 * stops a worker from reading the rest.
 */
export function replay(state: ClusterState, key: string, value: Buffer | null, onSkip?: (why: string) => void): ClusterState {
  if (!key.startsWith(CONNECTOR_KEY_PREFIX)) {
    onSkip?.(`unknown key ${key}`);
    return state;
  }
  const name = key.slice(CONNECTOR_KEY_PREFIX.length);
  const next = new Map(state);
  if (value === null) {
    next.delete(name);
    return next;
  }
  try {
    next.set(name, decodeConnector(value));
  } catch (err) {
    onSkip?.(`${key}: ${(err as Error).message}`);
    return state;
  }
  return next;
}

/** What identifies one run of a task: when it changes, the running instance is stopped and a new one started. */
export function taskRunKey(record: ConnectorRecord, task: number): string {
  return `${record.generation}.${record.taskRestarts[task] ?? 0}`;
}
