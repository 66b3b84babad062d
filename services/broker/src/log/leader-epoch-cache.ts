/**
 * Leader-epoch history of one partition: for each leader epoch, the first offset appended in it.
 * Pure; the partition log persists it. Replication uses `endOffsetForEpoch` so a follower truncates
 * to where its history and the leader's diverge (KIP-101/KIP-279).
 *
 * On disk (`leader-epoch-checkpoint`): text, line 1 the version (0), line 2 the entry count, then
 * `<epoch> <start offset>` per line. Invariant: epochs and start offsets strictly increase.
 */
export interface EpochEntry {
  epoch: number;
  startOffset: bigint;
}

export class LeaderEpochCache {
  private entries: EpochEntry[] = [];

  list(): readonly EpochEntry[] {
    return this.entries;
  }

  latest(): EpochEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  /** Records that `epoch` starts at `startOffset`; returns whether the history changed. */
  assign(epoch: number, startOffset: bigint): boolean {
    const last = this.latest();
    if (last && epoch <= last.epoch) return false;
    // A new epoch whose start offset is not beyond older ones means those were truncated away.
    this.entries = this.entries.filter((e) => e.startOffset < startOffset);
    this.entries.push({ epoch, startOffset });
    return true;
  }

  /**
   * The end offset of `epoch` (exclusive): the start offset of the next larger epoch, or the log end
   * offset when `epoch` is the latest. Asked for an epoch it does not know, answers for the largest
   * epoch below it; `{ epoch: -1, endOffset: -1 }` when there is none.
   */
  endOffsetForEpoch(epoch: number, logEndOffset: bigint): { epoch: number; endOffset: bigint } {
    let found = -1;
    for (let i = 0; i < this.entries.length; i++) if (this.entries[i]!.epoch <= epoch) found = i;
    if (found < 0) return { epoch: -1, endOffset: -1n };
    const next = this.entries[found + 1];
    return { epoch: this.entries[found]!.epoch, endOffset: next ? next.startOffset : logEndOffset };
  }

  /** The epoch of the batch holding `offset`, or -1 when unknown. */
  epochForOffset(offset: bigint): number {
    let epoch = -1;
    for (const e of this.entries) if (e.startOffset <= offset) epoch = e.epoch;
    return epoch;
  }

  /** Drops epochs starting at or after `offset` (log truncated to `offset`). */
  truncateFromEnd(offset: bigint): void {
    this.entries = this.entries.filter((e) => e.startOffset < offset);
  }

  /** Log start moved to `offset`: the epoch covering it now starts there. */
  truncateFromStart(offset: bigint): void {
    const keep: EpochEntry[] = [];
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const next = this.entries[i + 1];
      if (next && next.startOffset <= offset) continue;
      keep.push(e.startOffset < offset ? { epoch: e.epoch, startOffset: offset } : e);
    }
    this.entries = keep;
  }

  serialize(): Buffer {
    return Buffer.from(['0', String(this.entries.length), ...this.entries.map((e) => `${e.epoch} ${e.startOffset}`)].join('\n') + '\n');
  }

  static parse(buf: Buffer): LeaderEpochCache | string {
    const lines = buf.toString('utf8').split('\n').filter((l) => l.length > 0);
    if (lines[0] !== '0') return `unknown leader-epoch checkpoint version ${lines[0]}`;
    const n = Number(lines[1]);
    if (!Number.isInteger(n) || lines.length !== n + 2) return 'leader-epoch checkpoint entry count does not match';
    const cache = new LeaderEpochCache();
    for (const line of lines.slice(2)) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (!m) return `bad leader-epoch checkpoint line "${line}"`;
      if (!cache.assign(Number(m[1]), BigInt(m[2]!))) return 'leader-epoch checkpoint is out of order';
    }
    return cache;
  }
}
