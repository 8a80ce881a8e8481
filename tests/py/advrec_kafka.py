"""Helpers for advrec's tests that talk to Kafka with clients we did not write.

kafka-python (producer, consumer, admin) and fastavro (Avro), pinned in
tests/py/requirements.txt; run scripts with tests/py/venv.sh SCRIPT, which puts
this directory on PYTHONPATH.

Confluent wire framing, as advrecd reads and writes it: one magic byte 0, the
schema id as a 4-byte big-endian unsigned int, then the Avro binary encoding of
one datum (no container header). Here the schema id is whatever the test and
the daemon's configuration agree on; e2e.registry alone runs a real schema
registry (tests/registry/registry.sh) and uses confluent-kafka's client with it.

Every wait here is bounded by a deadline and raises TimeoutError with what it
got so far; nothing sleeps to synchronise.
"""

import io
import json
import os
import struct
import time
from collections import namedtuple

import fastavro
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

MAGIC = 0
_HEADER = struct.Struct(">bI")

# One consumed record. key/value are bytes (or None); headers a list of
# (str, bytes); timestamp in ms.
Record = namedtuple("Record", "topic partition offset key value headers timestamp")


class FramingError(ValueError):
    """A value that is not Confluent-framed Avro of the expected schema."""


def bootstrap(where=None):
    """The bootstrap address of the test broker.

    where: a directory holding a 'bootstrap' file (as tests/kafka/kafka.sh
    start writes), or that file itself; None means $ADVREC_KAFKA_BOOTSTRAP.
    """
    if where is None:
        bs = os.environ.get("ADVREC_KAFKA_BOOTSTRAP")
        if not bs:
            raise RuntimeError("no broker: pass a kafka dir or set ADVREC_KAFKA_BOOTSTRAP")
        return bs
    path = os.path.join(where, "bootstrap") if os.path.isdir(where) else where
    with open(path) as f:
        bs = f.read().strip()
    if not bs:
        raise RuntimeError("%s is empty" % path)
    return bs


def load_schema(path):
    """Parses an .avsc file with fastavro (named types resolved)."""
    with open(path) as f:
        return fastavro.parse_schema(json.load(f))


def frame(schema, schema_id, record):
    """Confluent-framed Avro bytes of one record (fastavro validates it)."""
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def unframe(schema, data, schema_id=None, where=""):
    """Decodes Confluent-framed Avro; returns (schema_id, record).

    Raises FramingError (with `where`, e.g. 'topic/partition@offset') when the
    magic byte or, if given, the schema id is wrong, or when the Avro body does
    not decode to exactly the bytes it holds.
    """
    ctx = " at %s" % where if where else ""
    if data is None or len(data) < _HEADER.size:
        raise FramingError("value too short for framing (%r)%s" % (data, ctx))
    magic, sid = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FramingError("magic byte %d, want 0%s" % (magic, ctx))
    if schema_id is not None and sid != schema_id:
        raise FramingError("schema id %d, want %d%s" % (sid, schema_id, ctx))
    body = io.BytesIO(data[_HEADER.size:])
    try:
        rec = fastavro.schemaless_reader(body, schema)
    except Exception as e:  # fastavro raises several types on bad bytes
        raise FramingError("Avro body does not decode: %s%s" % (e, ctx)) from e
    if body.tell() != len(data) - _HEADER.size:
        raise FramingError("%d trailing bytes after the Avro datum%s"
                           % (len(data) - _HEADER.size - body.tell(), ctx))
    return sid, rec


def _key_bytes(key):
    if key is None or isinstance(key, bytes):
        return key
    return str(key).encode()


def create_topic(bs, name, partitions, configs=None, timeout_s=30, **client_config):
    """Creates a topic with kafka-python's admin client; an existing topic is
    fine. (tests/kafka/kafka.sh topics does the same with Kafka's own tool.)
    client_config: more KafkaAdminClient settings (security_protocol, ...)."""
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=timeout_s * 1000,
                             **client_config)
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def produce(bs, topic, items, timeout_s=60, **producer_config):
    """Produces (key, value[, headers]) items; value is bytes (see frame()).

    Keys may be str or bytes; the default partitioner is murmur2, as Java's.
    Waits for every acknowledgement (acks=all, idempotent by default) and
    returns [(partition, offset), ...] in item order.
    """
    producer = KafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=5,
                             **producer_config)
    try:
        futures = []
        for it in items:
            key, value = it[0], it[1]
            headers = list(it[2]) if len(it) > 2 and it[2] else None
            futures.append(producer.send(topic, key=_key_bytes(key), value=value,
                                         headers=headers))
        producer.flush(timeout=timeout_s)
        out = []
        for f in futures:
            md = f.get(timeout=timeout_s)
            out.append((md.partition, md.offset))
        return out
    finally:
        producer.close(timeout=10)


def produce_avro(bs, topic, schema, schema_id, keyed_records, **kw):
    """Produces (key, record) pairs as Confluent-framed Avro; see produce()."""
    return produce(bs, topic, [(k, frame(schema, schema_id, r)) for k, r in keyed_records], **kw)


def end_offsets(bs, topic, timeout_s=30):
    """{partition: end offset (high watermark)} of every partition of topic."""
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
    try:
        parts = _partitions(c, topic, timeout_s)
        tps = [TopicPartition(topic, p) for p in parts]
        return {tp.partition: off for tp, off in c.end_offsets(tps).items()}
    finally:
        c.close()


def committed_offsets(bs, group, topic, timeout_s=30):
    """{partition: committed offset or None} of a consumer group on topic."""
    c = KafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False)
    try:
        parts = _partitions(c, topic, timeout_s)
        return {p: c.committed(TopicPartition(topic, p)) for p in parts}
    finally:
        c.close()


def _partitions(consumer, topic, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        if time.monotonic() >= deadline:
            raise TimeoutError("topic %r has no partitions after %ds" % (topic, timeout_s))
        consumer.poll(timeout_ms=100)  # drives the metadata refresh


def consume(bs, topic, expected=None, idle_s=1.0, timeout_s=60,
            isolation_level="read_uncommitted", **client_config):
    """Reads a topic from the beginning of every partition, without a group.

    expected=N: returns once N records were read and every partition is read up
    to its end offset (so more than N is seen, not hidden); raises TimeoutError
    if that does not happen within timeout_s.
    expected=None: returns once every partition is read up to its end offset
    and nothing new arrived for idle_s.
    client_config: more KafkaConsumer settings (security_protocol, ...).
    Returns [Record], in partition then offset order.
    """
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level=isolation_level,
                      max_poll_records=10000, **client_config)
    out = []
    try:
        deadline = time.monotonic() + timeout_s
        parts = _partitions(c, topic, timeout_s)
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        last_new = time.monotonic()
        ends = None
        while True:
            now = time.monotonic()
            batch = c.poll(timeout_ms=200)
            for tp, recs in batch.items():
                for r in recs:
                    out.append(Record(r.topic, r.partition, r.offset, r.key, r.value,
                                      list(r.headers or []), r.timestamp))
            if batch:
                last_new = time.monotonic()
            # end_offsets is a round trip that waits behind the pending fetch
            # (~100 ms): ask again only once the known ends are reached.
            if ends is None or all(c.position(tp) >= ends[tp] for tp in tps):
                ends = c.end_offsets(tps)
            caught_up = all(c.position(tp) >= ends[tp] for tp in tps)
            if caught_up:
                if expected is not None and len(out) >= expected:
                    break
                if expected is None and time.monotonic() - last_new >= idle_s:
                    break
            if now >= deadline:
                raise TimeoutError("%s: read %d records%s in %ds" % (
                    topic, len(out),
                    "" if expected is None else " of %d expected" % expected, timeout_s))
    finally:
        c.close()
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


def decode_all(schema, records, schema_id=None):
    """[(Record, avro dict)] for consumed records; FramingError names the
    first record that does not decode."""
    out = []
    for r in records:
        where = "%s/%d@%d" % (r.topic, r.partition, r.offset)
        out.append((r, unframe(schema, r.value, schema_id, where)[1]))
    return out
