/**
 * The transaction log: each transactional id's state under one key of the metadata store (etcd in
 * production), written only by compare-and-set on that key's revision, so any coordinator instance
 * serves any transactional id and two instances never both win a change.
 *
 *   <prefix>txns/<transactionalId>   TransactionMetadata JSON, {"v":1,...}, bigints as strings
 *
 * A commit decision is ONE store transaction: the txn key goes to PrepareCommit and every group's
 * offsets are put, guarded by the txn key's revision and by each group key's revision as read when
 * the member's epoch and ownership were checked. If a member's group changed in between, the whole
 * decision fails and is made again on fresh state, so offsets are never committed by a member that
 * has lost the partition (Kafka needs KIP-447's require_stable fetches to close that window; here
 * it never opens). Kafka's coordinator writes the same decision to its __transaction_state topic
 * and the offsets to __consumer_offsets separately, bridged by markers; one etcd transaction is
 * simpler and atomic.
 *
 * Like the group coordinator's OffsetStore, the interface keeps the backend replaceable (an
 * internal compacted topic, should etcd become the limit).
 */
import type { Compare, MetadataStore, TxnOp } from '@skein/common/store/types.js';
import type { GroupState } from '../domain/group.js';
import type { TransactionMetadata, TxnState } from '../domain/transaction.js';
import type { GroupStore } from './group-store.js';

export interface LoadedTxn {
  txn: TransactionMetadata | undefined;
  /** modRevision of the txn key; 0n when the id is unknown. */
  revision: bigint;
}

/** Offsets a commit decision writes to one group, guarded by the group key's revision. */
export interface DecisionGroupWrite {
  groupId: string;
  groupRevision: bigint;
  offsets: Array<{ topic: string; partition: number; offset: bigint; metadata: string }>;
  /** Put as the group's state when the group key does not exist yet (revision 0n). */
  createGroup?: GroupState;
}

export interface TransactionLog {
  load(transactionalId: string): Promise<LoadedTxn>;
  /** Every transactional id's state (admin listing and the recovery sweep). */
  list(): Promise<Array<{ txn: TransactionMetadata; revision: bigint }>>;
  /** Writes `next` if the id is still at `revision`; returns the new revision, or undefined when the CAS lost. */
  save(transactionalId: string, revision: bigint, next: TransactionMetadata): Promise<bigint | undefined>;
  /** save() plus the group offsets, in one compare-and-set (a commit decision). */
  saveDecision(transactionalId: string, revision: bigint, next: TransactionMetadata, groups: readonly DecisionGroupWrite[], nowMs: number): Promise<bigint | undefined>;
}

interface StoredTxn {
  v: 1;
  transactionalId: string;
  producerId: string;
  producerEpoch: number;
  lastProducerEpoch: number;
  timeoutMs: number;
  state: TxnState;
  coordinatorEpoch: number;
  partitions: string[];
  pendingOffsets: Array<{ groupId: string; memberId: string; memberEpoch: number; offsets: Array<{ topic: string; partition: number; offset: string; metadata: string }> }>;
  startedAtMs: number;
  updatedAtMs: number;
  endedBy?: TransactionMetadata['endedBy'];
}

export function encodeTxn(t: TransactionMetadata): Buffer {
  const stored: StoredTxn = {
    v: 1,
    ...t,
    producerId: t.producerId.toString(),
    pendingOffsets: t.pendingOffsets.map((p) => ({ ...p, offsets: p.offsets.map((o) => ({ ...o, offset: o.offset.toString() })) })),
  };
  return Buffer.from(JSON.stringify(stored));
}

export function decodeTxn(value: Buffer): TransactionMetadata {
  const s = JSON.parse(value.toString('utf8')) as StoredTxn;
  if (s.v !== 1) throw new Error(`transaction state version ${String(s.v)} is not known to this coordinator`);
  const { v: _, ...rest } = s;
  return {
    ...rest,
    producerId: BigInt(s.producerId),
    pendingOffsets: s.pendingOffsets.map((p) => ({ ...p, offsets: p.offsets.map((o) => ({ ...o, offset: BigInt(o.offset) })) })),
  };
}

export class MetadataStoreTransactionLog implements TransactionLog {
  constructor(private readonly store: MetadataStore, private readonly prefix: string, private readonly groups: GroupStore) {}

  private key(id: string): string {
    return `${this.prefix}txns/${id}`;
  }

  async load(transactionalId: string): Promise<LoadedTxn> {
    const kv = await this.store.get(this.key(transactionalId));
    return kv ? { txn: decodeTxn(kv.value), revision: kv.modRevision } : { txn: undefined, revision: 0n };
  }

  async list(): Promise<Array<{ txn: TransactionMetadata; revision: bigint }>> {
    const { kvs } = await this.store.range(`${this.prefix}txns/`);
    return kvs.map((kv) => ({ txn: decodeTxn(kv.value), revision: kv.modRevision }));
  }

  async save(transactionalId: string, revision: bigint, next: TransactionMetadata): Promise<bigint | undefined> {
    return this.saveDecision(transactionalId, revision, next, [], 0);
  }

  async saveDecision(transactionalId: string, revision: bigint, next: TransactionMetadata, groups: readonly DecisionGroupWrite[], nowMs: number): Promise<bigint | undefined> {
    const compare: Compare[] = [{ key: this.key(transactionalId), target: 'modRevision', op: '=', value: revision }];
    const success: TxnOp[] = [{ type: 'put', key: this.key(transactionalId), value: encodeTxn(next) }];
    for (const g of groups) {
      compare.push({ key: this.groups.groupKeyOf(g.groupId), target: 'modRevision', op: '=', value: g.groupRevision });
      for (const o of g.offsets) success.push({ type: 'put', ...this.groups.offsetWrite(g.groupId, { ...o, committedAtMs: nowMs }) });
      if (g.createGroup && g.groupRevision === 0n) success.push({ type: 'put', ...this.groups.groupWrite(g.groupId, g.createGroup) });
    }
    const res = await this.store.txn({ compare, success });
    return res.succeeded ? res.revision : undefined;
  }
}
