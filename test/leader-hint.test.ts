// LeaderHint.leader_endpoint (issue 13): the contract says a hint lets a client re-route without a
// metadata round trip, but brokers sent the leader's id only. A broker that is not the leader now
// names the leader's address in per-partition errors and in request-level statuses, and the
// client goes straight there. Real processes: a metadata service and two brokers.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromServiceError } from '@skein/common/errors.js';
import { SkeinClient, OffsetSpec } from '@skein/client';
import { Acks, BrokerServiceClient } from '@skein/proto/skein/broker/v1/broker.js';
import { buildRecordBatch } from '@skein/common/records/record-batch.js';
import { startStores, type TestStores } from './harness/stores.js';
import { startService, stopAll, waitFor, type ServiceProcess } from './harness/services.js';
import { brokerClient, metadataClient } from './harness/clients.js';
import { BROKER_ENTRY, METADATA_ENTRY } from './harness/entries.js';

const TOPIC = 'hinted';
let stores: TestStores;
let meta: ReturnType<typeof metadataClient>;
const brokers = new Map<number, ServiceProcess>();

beforeAll(async () => {
  stores = await startStores();
  const metadata = await startService({ name: 'metadata', entry: METADATA_ENTRY, args: stores.args('metadata', `/leader-hint-${process.pid}/`) });
  meta = metadataClient(metadata.address);
  for (const id of [0, 1]) brokers.set(id, await startService({ name: `broker-${id}`, entry: BROKER_ENTRY, dataDirFlag: '--data-dir', args: ['--broker-id', String(id), '--metadata-addresses', metadata.address] }));
  await waitFor(async () => (await meta.getClusterMetadata({ topics: [] })).metadata!.brokers.length === 2, { timeoutMs: 20_000, message: 'both brokers registered' });
  await meta.createTopic({ name: TOPIC, partitions: 1, replicationFactor: 2, configs: {}, validateOnly: false });
}, 90_000);

afterAll(async () => {
  meta?.close();
  await stopAll();
  await stores?.stop();
});

const partition0 = async () => (await meta.describeTopic({ name: TOPIC })).topic!.partitions[0]!;
const endpointOf = (p: ServiceProcess) => ({ host: '127.0.0.1', port: p.port });

/** Waits until both replicas are in the ISR and each broker has applied that state (the follower answers NOT_LEADER, not "unknown"). */
async function settled(): Promise<{ leader: number; follower: number }> {
  let state = await partition0();
  await waitFor(async () => {
    state = await partition0();
    if (state.leaderId < 0 || state.isr.length !== 2) return false;
    const follower = brokerClient(brokers.get(1 - state.leaderId)!.address);
    try {
      const res = await follower.listOffsets({ topics: [{ topic: TOPIC, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      return res.topics[0]?.partitions[0]?.error?.leaderHint?.leaderId === state.leaderId;
    } finally {
      follower.close();
    }
  }, { timeoutMs: 30_000, intervalMs: 100, message: 'both replicas in sync, and the follower knows the leader' });
  return { leader: state.leaderId, follower: 1 - state.leaderId };
}

describe('LeaderHint carries the leader’s address', () => {
  it('a follower names the leader and its address in Produce, Fetch and ListOffsets partition errors, and in a Subscribe status', async () => {
    const { leader, follower } = await settled();
    const expected = { leaderId: leader, leaderEndpoint: endpointOf(brokers.get(leader)!) };
    const f = brokerClient(brokers.get(follower)!.address);
    try {
      const produced = await f.produce({ acks: Acks.ACKS_ALL, timeoutMs: 5000, topics: [{ topic: TOPIC, partitions: [{ partition: 0, batch: buildRecordBatch([{ key: 'k', value: 'v', timestampMs: 1 }]) }] }] });
      expect(produced.topics[0]!.partitions[0]!.error).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', leaderHint: expected });
      const fetched = await f.fetch({ maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1 }] }] });
      expect(fetched.topics[0]!.partitions[0]!.error).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', leaderHint: expected });
      const listed = await f.listOffsets({ topics: [{ topic: TOPIC, partitions: [{ partition: 0, spec: OffsetSpec.OFFSET_SPEC_LATEST, timestampMs: 0n }] }] });
      expect(listed.topics[0]!.partitions[0]!.error).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', leaderHint: expected });
    } finally {
      f.close();
    }
    // Request level: the status's google.rpc.Status details carry the LeaderHint with the address.
    const raw = new BrokerServiceClient(brokers.get(follower)!.address, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const call = raw.subscribe({ topic: TOPIC, partition: 0, offset: 0n, maxBytes: 0, currentLeaderEpoch: -1 });
        call.on('data', () => {});
        call.on('error', resolve);
      });
      expect(fromServiceError(err)).toMatchObject({ reason: 'NOT_LEADER_OR_FOLLOWER', leaderHint: expected });
    } finally {
      raw.close();
    }
  });

  it('the client follows the hint to the new leader without a metadata round trip', async () => {
    const client = new SkeinClient({ metadata: [`127.0.0.1:${(await meta.getClusterMetadata({ topics: [] })).metadata!.controller!.endpoint!.port}`] });
    try {
      const before = await settled();
      await client.produceBatch(TOPIC, 0, [{ key: 'a', value: 'first' }]);
      expect(client.cachedLeaderId(TOPIC, 0)).toBe(before.leader);
      // Leadership moves: the leader stops gracefully (the controller moves leadership to the other
      // replica) and comes back as a follower. The client's cached metadata still names it.
      await brokers.get(before.leader)!.restart();
      const after = await settled();
      expect(after.leader).toBe(before.follower);
      const refreshes = client.stats.metadataRefreshes;
      const offset = await client.produceBatch(TOPIC, 0, [{ key: 'b', value: 'second' }]);
      expect(client.stats.leaderHintReroutes, 'the old leader refused and named the new one').toBe(1);
      expect(client.stats.metadataRefreshes - refreshes, 'no metadata call on the way').toBe(0);
      expect(client.cachedLeaderId(TOPIC, 0)).toBe(after.leader);
      const read = await client.fetch(TOPIC, 0, 0n);
      expect(read.records.map((r) => String(r.value))).toEqual(['first', 'second']);
      expect(offset).toBe(1n);
    } finally {
      client.close();
    }
  });
});
