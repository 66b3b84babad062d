/**
 * Group commit, the pure part: which commits of a batch may be applied, and how the accepted ones
 * are packed into few metadata-store transactions. The shell (group-committer.ts) reads the
 * guards, runs the transactions and answers each commit.
 *
 * The fencing is the one a lone commit has: a commit is validated against a state of its group read
 * at the group key's revision R, and its writes go in a transaction that compares the group key's
 * modRevision with R. A transaction carries the commits of many groups, so it compares each of
 * those groups' keys at the revision their commits were validated against, and nothing else: a
 * fenced member's commit is refused at validation and never enters a transaction, so it cannot sink
 * the others. A transaction is all-or-nothing, so a group whose key changed between the read and the
 * write sinks the rest of its transaction; the shell then re-reads the groups of that transaction,
 * answers what is now refused, and packs each group whose key did change into transactions of its
 * own (`isolate`), so that it cannot sink the others twice.
 *
 * Limits (etcd's): a transaction has at most `maxTxnOps` compares and at most `maxTxnOps` ops
 * (`--max-txn-ops`, default 128), and its request must stay under `--max-request-bytes` (default
 * 1.5 MiB): `maxTxnBytes` bounds the keys and values we put in one.
 *
 * Splitting: a group's offsets stay in one transaction when they fit in one; a commit with more
 * offsets than one transaction holds is split over several, each guarded by the same group
 * revision. As in Kafka, where each partition of an OffsetCommit succeeds or fails on its own,
 * offsets are independent: if the group changes between two parts and the member is then fenced,
 * the parts already written stay (each was written while the member owned its partitions) and the
 * commit is answered with the error. Nothing is ever written for a member that was fenced when
 * the write happened.
 *
 * Coalescing: two commits of one batch to the same offset key are written once, with the value of
 * the later one (as if applied in arrival order; etcd refuses a transaction that puts one key twice).
 */
import type { GroupState } from '../domain/group.js';
import { commitFencingProblem, type CommitProblem } from '../domain/offset-commit.js';

export interface TxnLimits {
  /** Most compares, and most ops, in one transaction (etcd `--max-txn-ops`, default 128). */
  maxTxnOps: number;
  /** Most bytes of keys, values and compares in one transaction (below etcd `--max-request-bytes`). */
  maxTxnBytes: number;
}

/** One key written by a transaction: a committed offset, or the key of a group being created. */
export interface KeyWrite {
  key: string;
  value: Buffer;
}

export interface QueuedCommit {
  /** Arrival order: of two commits to one key in a batch, the later one's value is written. */
  seq: number;
  groupId: string;
  memberId: string;
  memberEpoch: number;
  offsets: ReadonlyArray<{ topic: string; partition: number }>;
  /** One write per offset. */
  writes: readonly KeyWrite[];
  /** Keys not yet written: all at first, fewer once some parts of a split commit landed. */
  remaining: Set<string>;
}

/** A group's state and the group key's modRevision it was read at (0n: no such group). */
export interface GroupGuard {
  group: GroupState | undefined;
  revision: bigint;
}

export interface PlannedTxn {
  /** Groups whose key this transaction compares (modRevision = the guard's), one compare each. */
  groups: string[];
  /** Groups this transaction creates (guard revision 0n): their key is put along with the offsets. */
  creates: string[];
  writes: KeyWrite[];
  /**
   * Earlier transactions (indexes) that create a group this one guards too: it runs after them and
   * compares that group's key with the revision they wrote.
   */
  after: number[];
}

/** Protobuf framing and field tags around each key and value, rounded up. */
const OP_OVERHEAD_BYTES = 16;
const COMPARE_OVERHEAD_BYTES = 24;

const opBytes = (w: KeyWrite): number => Buffer.byteLength(w.key) + w.value.length + OP_OVERHEAD_BYTES;
const compareBytes = (groupKey: string): number => Buffer.byteLength(groupKey) + COMPARE_OVERHEAD_BYTES;

/**
 * Why a write can never be stored, whatever else it is batched with: with its group's compare and
 * the group's creation it must fit in one transaction. Undefined when it fits.
 */
export function writeTooLarge(limits: TxnLimits, groupKey: string, create: KeyWrite, write: KeyWrite): string | undefined {
  const bytes = compareBytes(groupKey) + opBytes(create) + opBytes(write);
  return bytes > limits.maxTxnBytes ? `offset key and value take ${bytes - compareBytes(groupKey) - opBytes(create)} bytes; the store takes at most ${limits.maxTxnBytes - compareBytes(groupKey) - opBytes(create)} (maxTxnBytes)` : undefined;
}

/** Splits a batch into the commits refused on their group's state and those that may be written. */
export function validateBatch<C extends QueuedCommit>(commits: readonly C[], guards: ReadonlyMap<string, GroupGuard>): { rejected: Array<{ commit: C; problem: CommitProblem }>; accepted: C[] } {
  const rejected: Array<{ commit: C; problem: CommitProblem }> = [];
  const accepted: C[] = [];
  for (const commit of commits) {
    const guard = guards.get(commit.groupId);
    if (!guard) throw new Error(`no guard read for group ${commit.groupId}`);
    const problem = commitFencingProblem(guard.group, commit);
    if (problem) rejected.push({ commit, problem });
    else accepted.push(commit);
  }
  return { rejected, accepted };
}

interface Open extends PlannedTxn {
  index: number;
  ops: number;
  bytes: number;
}

/**
 * Packs the remaining writes of accepted commits into transactions within `limits`. Groups are
 * taken in order of their first commit; a group's writes go in the current transaction if they
 * all fit there, else in a new one, split over several only when more than one transaction's worth.
 * Groups in `isolate` get transactions of their own.
 */
export function planTxns(
  accepted: readonly QueuedCommit[],
  guards: ReadonlyMap<string, GroupGuard>,
  options: { limits: TxnLimits; isolate?: ReadonlySet<string>; groupKey: (groupId: string) => string; createWrite: (groupId: string) => KeyWrite },
): PlannedTxn[] {
  const { limits } = options;
  // key → value of the latest commit to it, per group, in order of first appearance.
  const perGroup = new Map<string, Map<string, Buffer>>();
  for (const commit of [...accepted].sort((a, b) => a.seq - b.seq)) {
    let keys = perGroup.get(commit.groupId);
    if (!keys) perGroup.set(commit.groupId, (keys = new Map()));
    for (const w of commit.writes) if (commit.remaining.has(w.key)) keys.set(w.key, w.value);
  }

  const txns: Open[] = [];
  let current: Open | undefined;
  const open = (): Open => {
    current = { index: txns.length, groups: [], creates: [], writes: [], after: [], ops: 0, bytes: 0 };
    txns.push(current);
    return current;
  };
  const roomFor = (t: Open | undefined, ops: number, compares: number, bytes: number): t is Open =>
    t !== undefined && t.ops + ops <= limits.maxTxnOps && t.groups.length + compares <= limits.maxTxnOps && t.bytes + bytes <= limits.maxTxnBytes;

  for (const [groupId, keys] of perGroup) {
    if (keys.size === 0) continue;
    const guard = guards.get(groupId);
    if (!guard) throw new Error(`no guard read for group ${groupId}`);
    const groupKey = options.groupKey(groupId);
    const create = guard.revision === 0n ? options.createWrite(groupId) : undefined;
    const writes = [...keys].map(([key, value]) => ({ key, value }));
    const isolated = options.isolate?.has(groupId) ?? false;
    const totalOps = writes.length + (create ? 1 : 0);
    const totalBytes = compareBytes(groupKey) + (create ? opBytes(create) : 0) + writes.reduce((n, w) => n + opBytes(w), 0);
    const fitsAlone = totalOps <= limits.maxTxnOps && totalBytes <= limits.maxTxnBytes;
    // Keep a group whole when it fits in a transaction of its own.
    if (isolated || (fitsAlone && !roomFor(current, totalOps, 1, totalBytes))) current = undefined;

    let createdIn: number | undefined;
    let i = 0;
    while (i < writes.length) {
      const createBytes = create && createdIn === undefined ? opBytes(create) : 0;
      const needOps = (createBytes > 0 ? 1 : 0) + 1;
      const needBytes = compareBytes(groupKey) + createBytes + opBytes(writes[i]!);
      const t = roomFor(current, needOps, 1, needBytes) ? current : open();
      if (!roomFor(t, needOps, 1, needBytes)) throw new Error(`write ${writes[i]!.key} cannot fit in one transaction; check with writeTooLarge first`);
      t.groups.push(groupId);
      t.bytes += compareBytes(groupKey);
      if (createdIn !== undefined) t.after.push(createdIn);
      if (create && createdIn === undefined) {
        t.creates.push(groupId);
        t.writes.push(create);
        t.ops++;
        t.bytes += createBytes;
        createdIn = t.index;
      }
      while (i < writes.length && roomFor(t, 1, 0, opBytes(writes[i]!))) {
        t.writes.push(writes[i]!);
        t.ops++;
        t.bytes += opBytes(writes[i]!);
        i++;
      }
      if (i < writes.length) current = undefined; // the rest of this group goes on in a new transaction
    }
    // Nothing else joins an isolated group's transaction.
    if (isolated) current = undefined;
  }
  return txns.map(({ groups, creates, writes, after }) => ({ groups, creates, writes, after }));
}
