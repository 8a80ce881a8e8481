"""e2e.kafka.smoke: the real-broker test stack works end to end.

On the broker of the ctest fixture `kafka` (bootstrap in KAFKA_DIR/bootstrap):
create a 4-partition topic with Kafka's TopicCommand, produce 1000 keyed,
Confluent-framed Avro records with kafka-python + fastavro, then read them back
with Kafka's own Java ConsoleConsumer and with kafka-python, and check that
both see exactly those records: same count, same partition and offset, same
key, same value bytes, and values that decode to what was written. Also checks
that every key stayed on one partition (murmur2, as the Java producer).

usage: venv.sh kafka_smoke.py KAFKA_DIR KAFKA_SH
"""

import datetime
import os
import subprocess
import sys
import uuid

import advrec_kafka as ak

N = 1000
PARTITIONS = 4
SCHEMA_ID = 7
# Separators for the console consumer's output: the Avro values are binary and
# may hold newlines, so records and fields are split on tokens that do not
# occur in them (checked below).
KSEP = b"<<KEY|VALUE>>"
RSEP = b"<<END-OF-RECORD>>"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def records():
    t0 = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    for i in range(N):
        user = "u%03d" % (i % 37)
        rec = {
            "user_id": user,
            "item_id": "item-%d" % (i * 7919 % 501),
            "kind": "PURCHASE" if i % 5 == 0 else "CLICK",
            "ts": t0 + datetime.timedelta(milliseconds=i * 13),
            "price": (i * 0.25) if i % 5 == 0 else None,
            "attrs": {"seq": str(i), "nl": "line\nbreak"} if i % 3 == 0 else {},
        }
        yield user, rec


def parse_console(out):
    """{(partition, offset): (key, value)} from ConsoleConsumer's output."""
    got = {}
    chunks = out.split(RSEP)
    if chunks[-1].strip():
        fail("console consumer output does not end with a record: %r" % chunks[-1][:200])
    for chunk in chunks[:-1]:
        # "Partition:P" KSEP "Offset:O" KSEP KEY KSEP VALUE (the formatter puts
        # key.separator between every printed field)
        fields = chunk.split(KSEP)
        if (len(fields) != 4 or not fields[0].startswith(b"Partition:")
                or not fields[1].startswith(b"Offset:")):
            fail("unexpected console consumer record: %r" % chunk[:200])
        head, head2, key, value = fields
        pos = (int(head[len(b"Partition:"):]), int(head2[len(b"Offset:"):]))
        if pos in got:
            fail("console consumer printed %s twice" % (pos,))
        got[pos] = (key, value)
    return got


def main():
    kdir, kafka_sh = sys.argv[1], sys.argv[2]
    bs = ak.bootstrap(kdir)
    here = os.path.dirname(os.path.abspath(__file__))
    schema = ak.load_schema(os.path.join(here, "smoke_event.avsc"))
    topic = "smoke-" + uuid.uuid4().hex[:8]  # unique: the broker may be shared

    subprocess.run([kafka_sh, "topics", kdir, "%s:%d" % (topic, PARTITIONS)], check=True,
                   timeout=60)

    keyed = list(records())
    values = [ak.frame(schema, SCHEMA_ID, r) for _, r in keyed]
    for v in values:
        if KSEP in v or RSEP in v:
            fail("a value contains a console separator token; change the tokens")
    pos = ak.produce(bs, topic, [(k, v) for (k, _), v in zip(keyed, values)])
    expect = {}  # (partition, offset) -> (key bytes, value bytes, record)
    for (key, rec), value, p in zip(keyed, values, pos):
        if p in expect:
            fail("two records acknowledged at %s" % (p,))
        expect[p] = (key.encode(), value, rec)
    used = {p for p, _ in expect}
    if used != set(range(PARTITIONS)):
        fail("records landed on partitions %s, want all of 0..%d" % (sorted(used), PARTITIONS - 1))
    part_of_key = {}
    for (p, _), (key, _, _) in expect.items():
        if part_of_key.setdefault(key, p) != p:
            fail("key %r on partitions %d and %d" % (key, part_of_key[key], p))
    ends = ak.end_offsets(bs, topic)
    if sum(ends.values()) != N:
        fail("end offsets %s sum to %d, want %d" % (ends, sum(ends.values()), N))

    # 1. Kafka's own Java console consumer.
    cmd = [kafka_sh, "consume", kdir, topic, "--from-beginning",
           "--max-messages", str(N), "--timeout-ms", "30000",
           "--property", "print.partition=true",
           "--property", "print.offset=true",
           "--property", "print.key=true",
           "--property", "key.separator=" + KSEP.decode(),
           "--property", "line.separator=" + RSEP.decode()]
    cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if cp.returncode != 0:
        fail("console consumer exited %d: %s" % (cp.returncode, cp.stderr.decode(errors="replace")))
    java = parse_console(cp.stdout)
    if len(java) != N:
        fail("Java console consumer read %d records, want %d" % (len(java), N))
    for p, (key, value, _) in expect.items():
        if java.get(p) != (key, value):
            fail("Java console consumer at %s read %r, want %r" % (p, java.get(p), (key, value)))
    for p, (key, value) in java.items():
        ak.unframe(schema, value, SCHEMA_ID, "java %s/%d@%d" % (topic, p[0], p[1]))

    # 2. kafka-python, decoding with fastavro.
    got = ak.consume(bs, topic, expected=N, timeout_s=60)
    if len(got) != N:
        fail("kafka-python read %d records, want %d" % (len(got), N))
    for r, rec in ak.decode_all(schema, got, SCHEMA_ID):
        want = expect.get((r.partition, r.offset))
        if want is None:
            fail("kafka-python read an unexpected record at %d@%d" % (r.partition, r.offset))
        if (r.key, r.value) != want[:2] or rec != want[2]:
            fail("kafka-python at %d@%d read %r / %r, want %r / %r"
                 % (r.partition, r.offset, r.key, rec, want[0], want[2]))

    print("kafka smoke: %d records on %s (%d partitions, ends %s): Java console consumer "
          "and kafka-python read them byte-for-byte; Avro decodes to what was written"
          % (N, topic, PARTITIONS, dict(sorted(ends.items()))))


if __name__ == "__main__":
    main()
