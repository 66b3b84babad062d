#!/usr/bin/env python3
"""Skein's schema registry from Confluent's own Python client (confluent_kafka.schema_registry),
unchanged: register, look up, check compatibility, configure, delete; and decode a JSON Schema record
that another client (the TypeScript serializer) wrote, from nothing but its bytes and the registry.

Usage: schema_registry_example.py REGISTRY_URL SUBJECT [RECORD_HEX]
Prints one JSON object per step on stdout (the test reads them).
Needs Debian's python3-confluent-kafka, python3-requests and python3-jsonschema.
"""
import json
import struct
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

url, subject = sys.argv[1], sys.argv[2]
record_hex = sys.argv[3] if len(sys.argv) > 3 else None
client = SchemaRegistryClient({'url': url})


def out(step, **kw):
    print(json.dumps({'step': step, **kw}), flush=True)


def error_of(fn):
    try:
        fn()
        return None
    except SchemaRegistryError as e:
        return {'http_status': e.http_status_code, 'error_code': e.error_code}


v1 = Schema(json.dumps({'type': 'record', 'name': 'Payment', 'fields': [{'name': 'id', 'type': 'string'}]}), 'AVRO')
v2 = Schema(json.dumps({'type': 'record', 'name': 'Payment', 'fields': [
    {'name': 'id', 'type': 'string'}, {'name': 'amount', 'type': 'double', 'default': 0.0}]}), 'AVRO')
bad = Schema(json.dumps({'type': 'record', 'name': 'Payment', 'fields': [
    {'name': 'id', 'type': 'string'}, {'name': 'currency', 'type': 'string'}]}), 'AVRO')

id1 = client.register_schema(subject, v1)
out('register', id=id1, again=client.register_schema(subject, v1))
out('get_schema', schema=json.loads(client.get_schema(id1).schema_str), schema_type=client.get_schema(id1).schema_type)
found = client.lookup_schema(subject, v1)
out('lookup', id=found.schema_id, version=found.version, subject=found.subject)
out('compatibility', v2=client.test_compatibility(subject, v2), bad=client.test_compatibility(subject, bad))
out('register_incompatible', error=error_of(lambda: client.register_schema(subject, bad)))
id2 = client.register_schema(subject, v2)
latest = client.get_latest_version(subject)
out('latest', id=id2, version=latest.version, versions=client.get_versions(subject), v1=client.get_version(subject, 1).schema_id)
out('config', set=client.set_compatibility(subject_name=subject, level='FULL'), get=client.get_compatibility(subject))
out('missing', schema=error_of(lambda: client.get_schema(987654)), subject=error_of(lambda: client.get_versions('no-such-subject')))
out('subjects', listed=subject in client.get_subjects())
out('delete_version', deleted=client.delete_version(subject, 1), versions=client.get_versions(subject))
# permanent=True: this client soft-deletes first, then permanently (Confluent's required order).
out('delete_subject', deleted=client.delete_subject(subject, permanent=True), after=error_of(lambda: client.get_versions(subject)))

if record_hex:
    record = bytes.fromhex(record_hex)
    magic, schema_id = struct.unpack('>bI', record[:5])
    # Only the registry tells which schema: fetched by the id in the record.
    writer = client.get_schema(schema_id)
    value = JSONDeserializer(writer.schema_str)(record, SerializationContext('any', MessageField.VALUE))
    out('decode_json', schema_id=schema_id, schema_type=writer.schema_type, value=value)
