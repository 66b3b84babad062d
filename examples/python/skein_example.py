#!/usr/bin/python3
"""Skein from Python with nothing but the contract in proto/ (see generate.sh) and grpcio.

Creates a topic, produces a batch of records, consumes them as a member of a consumer group
(join by heartbeat, read from the group's committed offsets, commit, leave), and shows a precise
error. Run it twice: the second run resumes after what the first committed.
Usage: ./generate.sh && /usr/bin/python3 skein_example.py [metadata host:port] [topic] [coordinator host:port] [group]
"""
import os
import sys
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_factory = message_factory.MessageFactory()


def _message_class(descriptor):
    # protobuf 4.21 (Debian bookworm) predates message_factory.GetMessageClass.
    get = getattr(message_factory, "GetMessageClass", None)
    return get(descriptor) if get else _factory.GetPrototype(descriptor)


class _Package:
    """Message classes and enum values of one proto package, looked up by name."""

    def __init__(self, pool, package):
        self._pool, self._package = pool, package

    def __getattr__(self, name):
        full = f"{self._package}.{name}"
        try:
            return _message_class(self._pool.FindMessageTypeByName(full))
        except KeyError:
            for enum_name in self._pool.FindFileContainingSymbol(full).enum_types_by_name.values():
                if name in enum_name.values_by_name:
                    return enum_name.values_by_name[name].number
            raise AttributeError(full)


class _Stub:
    """A client for one gRPC service: method names as in the .proto, requests and responses as messages."""

    def __init__(self, channel, pool, service):
        for method in pool.FindServiceByName(service).methods:
            request = _message_class(method.input_type)
            response = _message_class(method.output_type)
            setattr(self, method.name, channel.unary_unary(f"/{service}/{method.name}", request_serializer=request.SerializeToString, response_deserializer=response.FromString))


_pool = descriptor_pool.DescriptorPool()
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen", "skein.binpb"), "rb") as f:
    for file_proto in descriptor_pb2.FileDescriptorSet.FromString(f.read()).file:
        _pool.Add(file_proto)
broker_pb2 = _Package(_pool, "skein.broker.v1")
metadata_pb2 = _Package(_pool, "skein.metadata.v1")
group_pb2 = _Package(_pool, "skein.group.v1")
rpc = _Package(_pool, "google.rpc")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum a RecordBatch carries over its records bytes."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def build_batch(pairs):
    now = int(time.time() * 1000)
    records = broker_pb2.Records(records=[
        broker_pb2.Record(key=k.encode(), value=v.encode(), timestamp_delta_ms=0,
                          headers=[broker_pb2.RecordHeader(key="lang", value=b"python")])
        for k, v in pairs
    ])
    payload = records.SerializeToString()
    return broker_pb2.RecordBatch(
        format_version=1, compression=broker_pb2.COMPRESSION_CODEC_NONE, record_count=len(pairs),
        producer_id=-1, producer_epoch=-1, base_sequence=-1,
        first_timestamp_ms=now, max_timestamp_ms=now, crc32c=crc32c(payload), records=payload)


def reason_of(err: grpc.RpcError) -> str:
    for key, value in err.trailing_metadata() or []:
        if key == "grpc-status-details-bin":
            status = rpc.Status.FromString(value)
            for detail in status.details:
                if detail.type_url.endswith("google.rpc.ErrorInfo"):
                    return rpc.ErrorInfo.FromString(detail.value).reason
    return ""


def read_partition(broker, topic, partition, offset):
    """Records of one partition from offset on, as (offset, key, value), checksums verified."""
    fetched = broker.Fetch(broker_pb2.FetchRequest(max_wait_ms=500, min_bytes=1, max_bytes=1 << 20, topics=[
        broker_pb2.TopicFetchData(topic=topic, partitions=[
            broker_pb2.PartitionFetchData(partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20, current_leader_epoch=-1)])]), timeout=10)
    out = []
    for fb in fetched.topics[0].partitions[0].batches:
        assert crc32c(fb.batch.records) == fb.batch.crc32c, "checksum mismatch"
        for i, rec in enumerate(broker_pb2.Records.FromString(fb.batch.records).records):
            if fb.base_offset + i >= offset:
                out.append((fb.base_offset + i, rec.key.decode(), rec.value.decode()))
    return out


def consume_in_group(coordinator_address, broker, topic, group):
    """Joins the group, reads partition 0 (where the records went) from the committed offset, commits, leaves."""
    coordinator = _Stub(grpc.insecure_channel(coordinator_address), _pool, "skein.group.v1.GroupCoordinatorService")
    member_id, epoch, owned = "", 0, []
    for _ in range(100):
        res = coordinator.Heartbeat(group_pb2.HeartbeatRequest(
            group_id=group, member_id=member_id, member_epoch=epoch, client_id="python-example", subscribed_topics=[topic],
            owned_partitions=[group_pb2.TopicPartitions(topic=topic, partitions=owned)] if owned else []), timeout=10)
        member_id, epoch = res.member_id, res.member_epoch
        owned = sorted(p for tp in res.assignment if tp.topic == topic for p in tp.partitions)
        if 0 in owned:
            break
        time.sleep(0.2)
    print(f"joined group {group} as {member_id} (epoch {epoch}), assigned partitions {owned}")
    committed = {o.partition: o.offset for o in coordinator.FetchOffsets(group_pb2.FetchOffsetsRequest(group_id=group), timeout=10).offsets if o.topic == topic}
    start = committed.get(0, 0)
    records = read_partition(broker, topic, 0, start)
    for offset, key, value in records:
        print(f"consumed offset={offset} key={key} value={value}")
    if records:
        next_offset = records[-1][0] + 1
        coordinator.CommitOffsets(group_pb2.CommitOffsetsRequest(group_id=group, member_id=member_id, member_epoch=epoch, offsets=[
            group_pb2.OffsetCommit(topic=topic, partition=0, offset=next_offset, metadata="python-example")]), timeout=10)
        print(f"committed offset={next_offset} partition=0 group={group}")
    coordinator.Heartbeat(group_pb2.HeartbeatRequest(group_id=group, member_id=member_id, member_epoch=-1), timeout=10)
    print(f"left group {group}")
    return len(records)


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9090"
    topic = sys.argv[2] if len(sys.argv) > 2 else "python-example"
    coordinator_address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:9095"
    group = sys.argv[4] if len(sys.argv) > 4 else "python-example"
    metadata = _Stub(grpc.insecure_channel(address), _pool, "skein.metadata.v1.MetadataService")
    try:
        metadata.CreateTopic(metadata_pb2.CreateTopicRequest(name=topic, partitions=3), timeout=10)
        print(f"created topic {topic}")
    except grpc.RpcError as err:
        if reason_of(err) != "TOPIC_ALREADY_EXISTS":
            raise
        print(f"topic {topic} exists")

    for _ in range(100):
        cluster = metadata.GetClusterMetadata(metadata_pb2.GetClusterMetadataRequest(), timeout=10).metadata
        part = next(p for t in cluster.topics if t.name == topic for p in t.partitions if p.partition == 0)
        leader = next((b for b in cluster.brokers if b.broker_id == part.leader_id), None)
        if leader:
            break
        time.sleep(0.1)
    broker = _Stub(grpc.insecure_channel(f"{leader.endpoint.host}:{leader.endpoint.port}"), _pool, "skein.broker.v1.BrokerService")

    pairs = [(f"key-{i}", f"hello from python {i}") for i in range(10)]
    for _ in range(100):
        res = broker.Produce(broker_pb2.ProduceRequest(acks=broker_pb2.ACKS_ALL, timeout_ms=5000, topics=[
            broker_pb2.TopicProduceData(topic=topic, partitions=[
                broker_pb2.PartitionProduceData(partition=0, batch=build_batch(pairs))])]), timeout=10)
        presult = res.topics[0].partitions[0]
        if not presult.HasField("error"):
            break
        time.sleep(0.1)
    base = presult.base_offset
    print(f"produced {len(pairs)} records at offset {base}")

    count = consume_in_group(coordinator_address, broker, topic, group)
    try:
        metadata.DescribeTopic(metadata_pb2.DescribeTopicRequest(name="no-such-topic"), timeout=10)
    except grpc.RpcError as err:
        print(f"describe of a missing topic: {err.code().name} {reason_of(err)}")
    print(f"ok: {count} records consumed in group {group}")


if __name__ == "__main__":
    main()
