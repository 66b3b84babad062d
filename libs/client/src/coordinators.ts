/**
 * Which group coordinator instance to call. Coordinators are stateless (any instance serves any
 * group), so the pool only needs a current instance and a way to move on when it fails. Its
 * addresses come either from the caller (fixed) or from the metadata service (discovered: Kafka's
 * FindCoordinator, here FindServiceInstances), fetched at first use and fetched again once every
 * known instance has failed, so a coordinator Deployment can be rescheduled under a client.
 */
import * as grpc from '@grpc/grpc-js';
import { SkeinError } from '@skein/common/errors.js';
import { GroupCoordinatorServiceClient } from '@skein/proto/skein/group/v1/group.js';

/** Fixed addresses, or a function that finds the live ones (SkeinClient.findCoordinators). */
export type CoordinatorSource = readonly string[] | (() => Promise<string[]>);

/**
 * The pool hands out group coordinator stubs by default; the transactional producer passes its own
 * factory for the transaction coordinator stubs of the same instances (one service, two contracts).
 */
export class CoordinatorPool<C extends { close(): void } = GroupCoordinatorServiceClient> {
  private clients: Array<{ address: string; client: C }> = [];
  private next = 0;
  /** Failures since the list was last fetched: after one per address, a discovering pool fetches again. */
  private failures = 0;
  private discovering: Promise<void> | undefined;

  constructor(
    private readonly source: CoordinatorSource,
    private readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    private readonly makeClient: (address: string, credentials: grpc.ChannelCredentials, options: grpc.ClientOptions) => C = (address, credentials, options) =>
      new GroupCoordinatorServiceClient(address, credentials, options) as unknown as C,
    /** Stub options (a SkeinClient's clientOptions: its bearer-token interceptor). */
    private readonly clientOptions: grpc.ClientOptions = {},
  ) {
    if (typeof source !== 'function') {
      if (source.length === 0) throw new Error('at least one group coordinator address is required');
      this.replace(source);
    }
  }

  /** The instance to call now (discovering them first when needed). */
  async current(): Promise<C> {
    if (typeof this.source === 'function' && (this.clients.length === 0 || this.failures >= this.clients.length)) {
      this.discovering ??= this.source().then((addresses) => this.replace(addresses)).finally(() => { this.discovering = undefined; });
      await this.discovering;
    }
    if (this.clients.length === 0) throw new SkeinError('COORDINATOR_NOT_AVAILABLE', 'no group coordinator is registered with the metadata service');
    return this.clients[this.next % this.clients.length]!.client;
  }

  /** The last call on the current instance failed in a way another instance may not: move on. */
  failed(): void {
    this.next++;
    this.failures++;
  }

  /** How many instances one call may try: each known one, and with discovery one more on a fresh list. */
  get triesPerCall(): number {
    return typeof this.source === 'function' ? this.clients.length + 1 : this.clients.length;
  }

  /** Addresses in use (for messages and tests). */
  get addresses(): string[] {
    return this.clients.map((c) => c.address);
  }

  private replace(addresses: readonly string[]): void {
    const keep = new Map(this.clients.map((c) => [c.address, c.client]));
    this.clients = addresses.map((address) => {
      const client = keep.get(address) ?? this.makeClient(address, this.credentials, this.clientOptions);
      keep.delete(address);
      return { address, client };
    });
    for (const gone of keep.values()) gone.close();
    this.failures = 0;
  }

  close(): void {
    for (const c of this.clients) c.client.close();
    this.clients = [];
  }
}
