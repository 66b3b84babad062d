/**
 * Transaction administration through the transaction coordinator (any group coordinator instance
 * serves skein.txn.v1): list transactional ids and their states, describe them (producer, epoch,
 * partitions, pending group offsets, age), and abort a hanging transaction. An abort fences the
 * transaction's producer (its epoch is bumped), as a timeout does; a transaction whose outcome is
 * already decided is finished in that direction instead.
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '@skein/common/errors.js';
import { type TransactionDescription, TransactionCoordinatorServiceClient, type TransactionListing, TransactionState } from '@skein/proto/skein/txn/v1/txn.js';
import type { SkeinClient } from './client.js';
import { CoordinatorPool } from './coordinators.js';
import { callUnary, type UnaryStub } from './rpc.js';

export { TransactionState };
export type { TransactionDescription, TransactionListing };

/** The state's short name (EMPTY, ONGOING, PREPARE_COMMIT, ...), for tables and filters. */
export function transactionStateName(state: TransactionState): string {
  return (TransactionState[state] ?? 'UNSPECIFIED').replace(/^TRANSACTION_STATE_/, '');
}

export class TransactionAdmin {
  private readonly pool: CoordinatorPool<TransactionCoordinatorServiceClient>;

  /** `coordinators`: their addresses, or a SkeinClient to find them from the metadata service. */
  /** `credentials` default to the SkeinClient's when one is given, plaintext otherwise. */
  constructor(
    coordinators: string[] | SkeinClient,
    credentials = Array.isArray(coordinators) ? grpc.credentials.createInsecure() : coordinators.credentials,
    private readonly timeoutMs = 10_000,
    /** The bearer-token interceptor: the SkeinClient's by default, none for bare addresses. */
    clientOptions: grpc.ClientOptions = Array.isArray(coordinators) ? {} : coordinators.clientOptions,
  ) {
    this.pool = new CoordinatorPool(
      Array.isArray(coordinators) ? coordinators : () => coordinators.findCoordinators(),
      credentials,
      (address, creds, options) => new TransactionCoordinatorServiceClient(address, creds, options),
      clientOptions,
    );
  }

  private async call<Req, Res>(rpc: (c: TransactionCoordinatorServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
    for (let tries = 1; ; tries++) {
      const c = await this.pool.current();
      try {
        return await callUnary(rpc(c), req, this.timeoutMs);
      } catch (err) {
        const e = fromServiceError(err as grpc.ServiceError);
        if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || tries >= this.pool.triesPerCall) throw e;
        this.pool.failed();
      }
    }
  }

  /** Transactional ids, only those in `states` when given (names like ONGOING or enum values). */
  async listTransactions(states: Array<TransactionState | string> = []): Promise<TransactionListing[]> {
    const wire = states.map((s) =>
      typeof s === 'string'
        ? ((TransactionState[`TRANSACTION_STATE_${s.toUpperCase()}` as keyof typeof TransactionState] as TransactionState | undefined) ??
          TransactionState.UNRECOGNIZED)
        : s,
    );
    return (await this.call((c) => c.listTransactions.bind(c), { states: wire })).transactions;
  }

  async describeTransactions(transactionalIds: string[]): Promise<TransactionDescription[]> {
    return (await this.call((c) => c.describeTransactions.bind(c), { transactionalIds })).transactions;
  }

  /** Aborts the open transaction of `transactionalId`; returns the states before and after. */
  async abortTransaction(transactionalId: string): Promise<{ previousState: TransactionState; state: TransactionState }> {
    return this.call((c) => c.abortTransaction.bind(c), { transactionalId });
  }

  close(): void {
    this.pool.close();
  }
}
