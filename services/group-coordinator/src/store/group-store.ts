/**
 * Durable group state in the metadata store (etcd in production). Three kinds of keys:
 *
 *   <prefix>groups/<groupId>                      GroupState JSON: members, epochs, target, ownership
 *   <prefix>group-liveness/<groupId>/<memberId>   the member's last heartbeat time (ms)
 *   <prefix>offsets/<groupId>/<topic>/<partition> a committed offset
 *
 * Liveness is kept apart from the group key so that a heartbeat that changes nothing but the time
 * does not rewrite the group key: every state change and every commit is a transaction guarded by
 * the group key's revision, and if heartbeats bumped it, commits would keep losing that race to
 * other members' heartbeats. A heartbeat-only write is still guarded by the group key's revision,
 * so it is decided on current state; an expiry compares the liveness keys it read, so a member
 * whose heartbeat landed meanwhile is not removed.
 */
import type { Compare, MetadataStore, TxnOp } from '@skein/common/store/types.js';
import { structuralView, type GroupState } from '../domain/group.js';

export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: bigint;
  metadata: string;
  committedAtMs: number;
}

/**
 * Where committed offsets live. A commit is conditional on the group's state being the one the
 * caller validated it against (`groupRevision`, 0n for a group that does not exist yet), so a
 * member fenced meanwhile cannot move the group's offsets. The first implementation is the
 * metadata store (etcd); a compacted internal topic could implement it when commit rates outgrow
 * etcd (see bench/groups.js).
 */
export interface OffsetStore {
  fetchOffsets(groupId: string): Promise<CommittedOffset[]>;
  commitOffsets(groupId: string, offsets: readonly CommittedOffset[], groupRevision: bigint, createGroup?: GroupState): Promise<boolean>;
}

export interface LoadedGroup {
  group: GroupState | undefined;
  /** modRevision of the group key; 0n when the group does not exist. */
  revision: bigint;
  /** modRevision of each member's liveness key as read (0n when it had none). */
  livenessRevisions: Map<string, bigint>;
}

export class GroupStore implements OffsetStore {
  constructor(private readonly store: MetadataStore, private readonly prefix: string) {}

  private groupKey(id: string): string {
    return `${this.prefix}groups/${id}`;
  }
  private livenessPrefix(id: string): string {
    return `${this.prefix}group-liveness/${id}/`;
  }
  private offsetPrefix(id: string): string {
    return `${this.prefix}offsets/${id}/`;
  }

  /**
   * The group key alone, without liveness: enough to validate a commit (member epochs and
   * ownership live there) at one read instead of two.
   */
  async loadState(groupId: string): Promise<{ group: GroupState | undefined; revision: bigint }> {
    const kv = await this.store.get(this.groupKey(groupId));
    return kv ? { group: JSON.parse(kv.value.toString('utf8')) as GroupState, revision: kv.modRevision } : { group: undefined, revision: 0n };
  }

  async load(groupId: string): Promise<LoadedGroup> {
    const [kv, liveness] = await Promise.all([this.store.get(this.groupKey(groupId)), this.store.range(this.livenessPrefix(groupId))]);
    const livenessRevisions = new Map<string, bigint>();
    if (!kv) return { group: undefined, revision: 0n, livenessRevisions };
    const group = JSON.parse(kv.value.toString('utf8')) as GroupState;
    const members = { ...group.members };
    for (const l of liveness.kvs) {
      const memberId = l.key.slice(this.livenessPrefix(groupId).length);
      const m = members[memberId];
      if (!m) continue;
      livenessRevisions.set(memberId, l.modRevision);
      const value = l.value.toString('utf8');
      // "!<ms>" is a shortened session (its stream broke): it overrides the time in the group key.
      const lastHeartbeatMs = value.startsWith('!') ? Number(value.slice(1)) : Math.max(m.lastHeartbeatMs, Number(value));
      members[memberId] = { ...m, lastHeartbeatMs };
    }
    return { group: { ...group, members }, revision: kv.modRevision, livenessRevisions };
  }

  /**
   * Writes `next` if the group is still at `loaded.revision` (and no removed member heartbeated
   * since it was read). Writes only liveness keys when nothing but heartbeat times changed.
   */
  async save(groupId: string, loaded: LoadedGroup, next: GroupState): Promise<boolean> {
    const previous = loaded.group;
    const compare: Compare[] = [{ key: this.groupKey(groupId), target: 'modRevision', op: '=', value: loaded.revision }];
    const ops: TxnOp[] = [];
    const removed = previous ? Object.keys(previous.members).filter((id) => !next.members[id]) : [];
    for (const id of removed) {
      compare.push({ key: `${this.livenessPrefix(groupId)}${id}`, target: 'modRevision', op: '=', value: loaded.livenessRevisions.get(id) ?? 0n });
      ops.push({ type: 'delete', key: `${this.livenessPrefix(groupId)}${id}` });
    }
    // A heartbeat also replaces a shortened-session mark, so a member that came back keeps its session.
    for (const m of Object.values(next.members)) {
      if (m.lastHeartbeatMs !== previous?.members[m.memberId]?.lastHeartbeatMs) {
        ops.push({ type: 'put', key: `${this.livenessPrefix(groupId)}${m.memberId}`, value: Buffer.from(String(m.lastHeartbeatMs)) });
      }
    }
    if (previous && structuralView(previous) === structuralView(next)) {
      if (ops.length === 0) return true;
    } else {
      ops.push({ type: 'put', key: this.groupKey(groupId), value: Buffer.from(JSON.stringify(next)) });
    }
    return (await this.store.txn({ compare, success: ops })).succeeded;
  }

  /**
   * Ends a member's session at `endsAtMs` (as if its last heartbeat were then), if neither the group
   * nor the member's liveness changed since `loaded` was read.
   */
  async markSessionBroken(groupId: string, memberId: string, lastHeartbeatMs: number, loaded: LoadedGroup): Promise<boolean> {
    const key = `${this.livenessPrefix(groupId)}${memberId}`;
    return (await this.store.txn({
      compare: [
        { key: this.groupKey(groupId), target: 'modRevision', op: '=', value: loaded.revision },
        { key, target: 'modRevision', op: '=', value: loaded.livenessRevisions.get(memberId) ?? 0n },
      ],
      success: [{ type: 'put', key, value: Buffer.from(`!${lastHeartbeatMs}`) }],
    })).succeeded;
  }

  async listGroups(): Promise<GroupState[]> {
    const { kvs } = await this.store.range(`${this.prefix}groups/`);
    return kvs.map((kv) => JSON.parse(kv.value.toString('utf8')) as GroupState);
  }

  async fetchOffsets(groupId: string): Promise<CommittedOffset[]> {
    const prefix = this.offsetPrefix(groupId);
    const { kvs } = await this.store.range(prefix);
    return kvs.map((kv) => {
      const rest = kv.key.slice(prefix.length);
      const slash = rest.lastIndexOf('/');
      const value = JSON.parse(kv.value.toString('utf8')) as { offset: string; metadata: string; committedAtMs?: number };
      return { topic: rest.slice(0, slash), partition: Number(rest.slice(slash + 1)), offset: BigInt(value.offset), metadata: value.metadata, committedAtMs: value.committedAtMs ?? 0 };
    });
  }

  /** The key commits are guarded by: its modRevision changes with every change of the group's state. */
  groupKeyOf(groupId: string): string {
    return this.groupKey(groupId);
  }

  /** The key and stored value of one committed offset. */
  offsetWrite(groupId: string, o: CommittedOffset): { key: string; value: Buffer } {
    return { key: `${this.offsetPrefix(groupId)}${o.topic}/${o.partition}`, value: Buffer.from(JSON.stringify({ v: 1, offset: o.offset.toString(), metadata: o.metadata, committedAtMs: o.committedAtMs })) };
  }

  /** The group key's value for a group created by a commit (offsets are never stored without one). */
  groupWrite(groupId: string, state: GroupState): { key: string; value: Buffer } {
    return { key: this.groupKey(groupId), value: Buffer.from(JSON.stringify(state)) };
  }

  /**
   * One transaction of a group commit: puts `writes` if every group key in `guards` is still at
   * its revision (0n: still missing). The revision it ran at tells the new revision of a group key
   * it created.
   */
  async guardedPut(guards: ReadonlyArray<{ groupId: string; revision: bigint }>, writes: ReadonlyArray<{ key: string; value: Buffer }>): Promise<{ succeeded: boolean; revision: bigint }> {
    return this.store.txn({
      compare: guards.map((g) => ({ key: this.groupKey(g.groupId), target: 'modRevision', op: '=', value: g.revision })),
      success: writes.map((w) => ({ type: 'put', key: w.key, value: w.value })),
    });
  }

  async commitOffsets(groupId: string, offsets: readonly CommittedOffset[], groupRevision: bigint, createGroup?: GroupState): Promise<boolean> {
    const ops: TxnOp[] = offsets.map((o) => ({ type: 'put', ...this.offsetWrite(groupId, o) }));
    // Offsets are never stored without a group key, so retention and listing find every group.
    if (createGroup && groupRevision === 0n) ops.push({ type: 'put', key: this.groupKey(groupId), value: Buffer.from(JSON.stringify(createGroup)) });
    return (await this.store.txn({ compare: [{ key: this.groupKey(groupId), target: 'modRevision', op: '=', value: groupRevision }], success: ops })).succeeded;
  }

  /** Deletes the group, its liveness keys and its offsets, if it is still at `revision`. */
  async deleteGroup(groupId: string, revision: bigint): Promise<boolean> {
    return (await this.store.txn({
      compare: [{ key: this.groupKey(groupId), target: 'modRevision', op: '=', value: revision }],
      success: [{ type: 'delete', key: this.groupKey(groupId) }, { type: 'deletePrefix', prefix: this.livenessPrefix(groupId) }, { type: 'deletePrefix', prefix: this.offsetPrefix(groupId) }],
    })).succeeded;
  }
}
