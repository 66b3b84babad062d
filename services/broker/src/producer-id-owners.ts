/**
 * Which principal owns which idempotent producer id, so that one principal cannot write with a
 * producer id another obtained (issue 14): a batch under someone else's id and next sequence would
 * be stored as theirs, and their own batch then answered as a duplicate and never stored.
 *
 * Semantics, in memory and per broker (nothing is persisted or replicated):
 * - InitProducerId on this broker binds the id it hands out to the caller (`issued`).
 * - A produce with an id this broker does not know binds it to the writer (trust on first use):
 *   ids handed out by another broker or by the transaction coordinator, and every id after this
 *   broker restarts or becomes leader in a failover. From then on only that principal may use it
 *   here; another principal gets PRODUCER_ID_AUTHORIZATION_FAILED.
 * - So the window left open: right after a failover or restart, a principal that has observed an
 *   id (e.g. in fetched batches) and writes with it to the new leader before its owner does takes
 *   it over there; its owner is then refused on that broker and must get a new id
 *   (InitProducerId). Closing it needs the binding replicated with the producer state.
 * - At most `maxEntries` ids are remembered; the least recently used is forgotten first (it is
 *   then bound again on its next use), so memory is bounded whatever clients do.
 *
 * Pure: no I/O, no clock. With the authorizer off every caller is the same anonymous principal,
 * so nothing is ever refused.
 */
export type ProducerIdCheck = { allowed: true } | { allowed: false; owner: string };

export const DEFAULT_MAX_PRODUCER_ID_OWNERS = 100_000;

export class ProducerIdOwners {
  /** producer id → principal (`User:alice`); Map order is the recency order (oldest first). */
  private readonly owners = new Map<bigint, string>();

  constructor(private readonly maxEntries = DEFAULT_MAX_PRODUCER_ID_OWNERS) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  }

  /** InitProducerId gave `producerId` to `principal`. */
  issued(producerId: bigint, principal: string): void {
    this.remember(producerId, principal);
  }

  /**
   * May `principal` write batches carrying `producerId`? An unknown id is bound to it (see the
   * file comment). Non-idempotent batches (producer id -1) are not this module's business.
   */
  check(producerId: bigint, principal: string): ProducerIdCheck {
    if (producerId < 0n) return { allowed: true };
    const owner = this.owners.get(producerId);
    if (owner !== undefined && owner !== principal) return { allowed: false, owner };
    this.remember(producerId, principal);
    return { allowed: true };
  }

  get size(): number {
    return this.owners.size;
  }

  private remember(producerId: bigint, principal: string): void {
    this.owners.delete(producerId);
    this.owners.set(producerId, principal);
    if (this.owners.size > this.maxEntries) this.owners.delete(this.owners.keys().next().value!);
  }
}
