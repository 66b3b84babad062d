/**
 * Consumer-group administration through the group coordinator (any instance): list, describe
 * with lag, delete, read and move committed offsets. Offsets can be moved only while a group has
 * no members (the coordinator refuses with GROUP_NOT_EMPTY otherwise), so a running group never
 * has its positions changed under it.
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, type SkeinError } from '@skein/common/errors.js';
import {
  ResetSpec,
  type GroupCoordinatorServiceClient,
  type DescribeGroupResponse, type GroupSummary, type OffsetCommit,
} from '@skein/proto/skein/group/v1/group.js';
import type { SkeinClient } from './client.js';
import { CommitChannel } from './commit-stream.js';
import { CoordinatorPool } from './coordinators.js';
import { callUnary, type UnaryStub } from './rpc.js';

export { ResetSpec };
export type { DescribeGroupResponse, GroupSummary, OffsetCommit };

export type ResetTo =
  | { to: 'earliest' | 'latest' }
  | { to: 'timestamp'; timestampMs: bigint }
  | { to: 'offset'; offset: bigint }
  | { to: 'shift-by'; shift: bigint };

export class GroupAdmin {
  private readonly pool: CoordinatorPool;
  private readonly commits = new CommitChannel();

  /**
   * `coordinators`: their addresses, or a SkeinClient to find them from the metadata service
   * (FindServiceInstances; found again when every known one is unreachable).
   */
  /** `credentials` default to the SkeinClient's when one is given, plaintext otherwise. */
  /** `clientOptions` (the bearer-token interceptor) likewise: the SkeinClient's, none otherwise. */
  constructor(
    coordinators: string[] | SkeinClient,
    credentials = Array.isArray(coordinators) ? grpc.credentials.createInsecure() : coordinators.credentials,
    private readonly timeoutMs = 10_000,
    clientOptions: grpc.ClientOptions = Array.isArray(coordinators) ? {} : coordinators.clientOptions,
  ) {
    this.pool = new CoordinatorPool(Array.isArray(coordinators) ? coordinators : () => coordinators.findCoordinators(), credentials, undefined, clientOptions);
  }

  /**
   * Calls an RPC through its generated stub (`(c) => c.listGroups.bind(c)`) on any coordinator
   * instance, moving on to the next one when one is unreachable.
   */
  private async call<Req, Res>(rpc: (c: GroupCoordinatorServiceClient) => UnaryStub<Req, Res>, req: Req): Promise<Res> {
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

  async listGroups(): Promise<GroupSummary[]> {
    return (await this.call((c) => c.listGroups.bind(c), {})).groups;
  }

  /** State, members with their assignments, committed offsets, and lag per partition. */
  describeGroup(groupId: string): Promise<DescribeGroupResponse> {
    return this.call((c) => c.describeGroup.bind(c), { groupId });
  }

  /** Deletes an empty group and its committed offsets. */
  async deleteGroup(groupId: string): Promise<void> {
    await this.call((c) => c.deleteGroup.bind(c), { groupId });
  }

  async fetchOffsets(groupId: string, partitions: Array<{ topic: string; partitions: number[] }> = []): Promise<OffsetCommit[]> {
    return (await this.call((c) => c.fetchOffsets.bind(c), { groupId, partitions })).offsets;
  }

  /** Commits offsets for a group with no members (e.g. a standalone reader tracking its position in a group). */
  async commitOffsets(groupId: string, offsets: Array<{ topic: string; partition: number; offset: bigint; metadata?: string }>): Promise<void> {
    const req = { groupId, memberId: '', memberEpoch: -1, offsets: offsets.map((o) => ({ ...o, metadata: o.metadata ?? '' })) };
    // Over the commit stream (commit-stream.ts), moving on when an instance is unreachable as call() does.
    for (let tries = 1; ; tries++) {
      const c = await this.pool.current();
      try {
        return await this.commits.commit(c, req, this.timeoutMs);
      } catch (err) {
        if ((err as SkeinError).code !== grpc.status.UNAVAILABLE || tries >= this.pool.triesPerCall) throw err;
        this.pool.failed();
      }
    }
  }

  /** Moves an empty group's offsets for a topic; `dryRun` (default true) only reports where they would go. */
  async resetOffsets(groupId: string, topic: string, target: ResetTo, options: { partitions?: number[]; dryRun?: boolean } = {}): Promise<OffsetCommit[]> {
    let spec: ResetSpec;
    let value = 0n;
    switch (target.to) {
      case 'earliest': spec = ResetSpec.RESET_SPEC_EARLIEST; break;
      case 'latest': spec = ResetSpec.RESET_SPEC_LATEST; break;
      case 'timestamp': spec = ResetSpec.RESET_SPEC_TIMESTAMP; value = target.timestampMs; break;
      case 'offset': spec = ResetSpec.RESET_SPEC_TO_OFFSET; value = target.offset; break;
      case 'shift-by': spec = ResetSpec.RESET_SPEC_SHIFT_BY; value = target.shift; break;
    }
    return (await this.call((c) => c.resetOffsets.bind(c), { groupId, topic, partitions: options.partitions ?? [], spec, value, dryRun: options.dryRun ?? true })).offsets;
  }

  close(): void {
    this.commits.close();
    this.pool.close();
  }
}
