/**
 * Producer ids for transactional ids, from blocks the metadata service allocates
 * (AllocateProducerIds, the same sequence brokers draw idempotent producer ids from, so the two
 * never collide). A coordinator needs a new id only when a transactional id is first seen (or its
 * epoch runs out), so blocks are small and nothing is prefetched. Id 0 is never handed out
 * (brokers refuse it).
 */
export class ProducerIdBlocks {
  private next = 0n;
  private end = 0n;
  private pending: Promise<void> | undefined;

  constructor(private readonly allocate: (count: number) => Promise<{ first: bigint; count: number }>, private readonly blockSize = 100) {}

  async generate(): Promise<bigint> {
    for (;;) {
      if (this.next === 0n && this.end > 0n) this.next = 1n;
      if (this.next < this.end) return this.next++;
      this.pending ??= this.allocate(this.blockSize).then((b) => {
        this.next = b.first;
        this.end = b.first + BigInt(b.count);
      }).finally(() => {
        this.pending = undefined;
      });
      await this.pending;
    }
  }
}
