"""Helpers of bench/latency.sh (run with tests/py/venv.sh: kafka-python and
fastavro from the tests' pinned venv, clients we did not write).

  latency.py pace RATE SECONDS STREAM.csv
      Writes STREAM.csv's events to stdout as CSV (user,item,type,ts) at
      RATE events/s for SECONDS, each line stamped with the wall-clock time
      (ms) it is written: advrec-produce reads stdin and produces it at once,
      and its record timestamp (CreateTime) is the event's ts, so the input
      record carries the time it was produced.
  latency.py read BOOTSTRAP TOPIC OUT READY DONE
      Reads TOPIC (every partition, from the beginning) with kafka-python,
      stamping each poll's records with the wall-clock time they arrived;
      touches READY once assigned and positioned; after DONE exists, stops
      when nothing arrived for 3 s (at most 60 s more). Writes OUT (pickle).
  latency.py stamp OUT DONE
      The reader for READER=kcat: reads kcat's output on stdin (records as
      "PARTITION OFFSET TIMESTAMP LENGTH\n" + LENGTH payload bytes + "\n"),
      stamping each chunk read with the wall-clock time it arrived; after
      DONE exists, stops when nothing arrived for 3 s (at most 60 s more).
      Writes OUT (pickle, as read does).
  latency.py report BOOTSTRAP OUT SCHEMA WARMUP_S RATE
      Reads the input topics named in the lists with kafka-python (record
      timestamps by topic/partition/offset), pairs each list read back with
      the input record it names (the user's last event) and prints the
      latency percentiles of lists whose event came WARMUP_S or more after
      the first one.
"""

import os
import pickle
import struct
import sys
import time

import fastavro
from kafka import KafkaConsumer, TopicPartition


def now_ms():
    return time.time() * 1e3


def pace(rate, seconds, path):
    out = sys.stdout
    n_max = int(rate * seconds)
    with open(path) as f:
        f.readline()  # header
        out.write("user,item,type,ts\n")
        out.flush()
        t0 = time.monotonic()
        sent = 0
        while sent < n_max:
            due = min(n_max, int((time.monotonic() - t0) * rate) + 1)
            if due > sent:
                ts = int(now_ms())
                buf = []
                while sent < due:
                    line = f.readline()
                    if not line:
                        n_max = sent
                        break
                    user, item, typ, _ = line.rstrip("\n").split(",")
                    buf.append("%s,%s,%s,%d\n" % (user, item, typ, ts))
                    sent += 1
                out.write("".join(buf))
                out.flush()
            else:
                time.sleep(0.0005)  # next line due within 1/rate s
    print("pace: %d events in %.1f s" % (sent, time.monotonic() - t0), file=sys.stderr)


def read(bs, topic, out_path, ready, done):
    # check_crcs=False: kafka-python checks CRC32C in pure Python, 55 us of
    # CPU per list here against 11 without; a reader that falls behind
    # would be measured as latency.
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                      auto_offset_reset="earliest", max_poll_records=100000,
                      fetch_max_wait_ms=100, check_crcs=False)
    deadline = time.monotonic() + 30
    parts = None
    while not parts:
        parts = c.partitions_for_topic(topic)
        if time.monotonic() > deadline:
            raise TimeoutError("no metadata for %s" % topic)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    for tp in tps:
        c.position(tp)
    open(ready, "w").close()
    got = []  # (arrival ms, partition, offset, record timestamp, value)
    last = time.monotonic()
    end = None
    while True:
        batch = c.poll(timeout_ms=50)
        t = now_ms()
        for recs in batch.values():
            for r in recs:
                got.append((t, r.partition, r.offset, r.timestamp, r.value))
        if batch:
            last = time.monotonic()
        if end is None and os.path.exists(done):
            end = time.monotonic() + 60
        if end is not None and (time.monotonic() - last > 3 or time.monotonic() > end):
            break
    c.close()
    with open(out_path, "wb") as f:
        pickle.dump(got, f)
    print("read: %d lists, %.1f CPU-s" % (len(got), time.process_time()), file=sys.stderr)


def stamp(out_path, done):
    import select

    fd = sys.stdin.fileno()
    buf = b""
    got = []  # (arrival ms, partition, offset, record timestamp, value)
    last = time.monotonic()
    end = None
    while True:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            chunk = os.read(fd, 1 << 20)
            t = now_ms()
            if not chunk:
                break
            last = time.monotonic()
            buf += chunk
            pos = 0
            while True:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
                part, off, ts, size = buf[pos:nl].split()
                size = int(size)
                if len(buf) < nl + 1 + size + 1:
                    break
                got.append((t, int(part), int(off), int(ts), buf[nl + 1:nl + 1 + size]))
                pos = nl + 1 + size + 1
            buf = buf[pos:]
        if end is None and os.path.exists(done):
            end = time.monotonic() + 60
        if end is not None and (time.monotonic() - last > 3 or time.monotonic() > end):
            break
    with open(out_path, "wb") as f:
        pickle.dump(got, f)
    print("read: %d lists, %.1f CPU-s" % (len(got), time.process_time()), file=sys.stderr)


def input_times(bs, wanted):
    """{(topic, partition, offset): record timestamp} of every record of the
    given topic/partitions, read from the beginning to their end."""
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False,
                      auto_offset_reset="earliest", max_poll_records=100000,
                      check_crcs=False)
    tps = [TopicPartition(t, p) for t, p in sorted(wanted)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    ts = {}
    deadline = time.monotonic() + 120
    left = {tp for tp in tps if ends[tp] > 0}
    while left and time.monotonic() < deadline:
        for tp, recs in c.poll(timeout_ms=200).items():
            for r in recs:
                ts[(tp.topic, tp.partition, r.offset)] = r.timestamp
            if c.position(tp) >= ends[tp]:
                left.discard(tp)
    c.close()
    return ts


def pct(xs, p):
    """Nearest-rank percentile of sorted xs."""
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
    return xs[k]


def report(bs, out_path, schema_path, warmup_s, rate):
    import io
    import json

    with open(schema_path) as f:
        schema = fastavro.parse_schema(json.load(f))
    with open(out_path, "rb") as f:
        got = pickle.load(f)
    lists = []
    for t, _part, _off, rts, v in got:
        magic, _sid = struct.unpack(">bI", v[:5])
        if magic != 0:
            raise ValueError("not Confluent-framed Avro")
        r = fastavro.schemaless_reader(io.BytesIO(v[5:]), schema)
        lists.append((t, rts, r["generated_at"], r["input_topic"], r["input_partition"],
                      r["input_offset"]))
    if not lists:
        print("no lists read back")
        return 1
    ts = input_times(bs, {(x[3], x[4]) for x in lists})
    missing = 0
    first = min(ts.values())
    lat, dgen, dapp, dread = [], [], [], []
    skipped = 0
    for t, rts, gen, topic, part, off in lists:
        e = ts.get((topic, part, off))
        if e is None:
            missing += 1
            continue
        if e - first < warmup_s * 1e3:
            skipped += 1
            continue
        gen_ms = gen.timestamp() * 1e3 if hasattr(gen, "timestamp") else gen
        lat.append(t - e)
        dgen.append(gen_ms - e)
        dapp.append(rts - gen_ms)
        dread.append(t - rts)
    if not lat:
        print("no lists after the warm-up")
        return 1
    for xs in (lat, dgen, dapp, dread):
        xs.sort()
    print("lists read back: %d (%d of events in the first %g s skipped as warm-up, "
          "%d naming no input record found)" % (len(got), skipped, warmup_s, missing))
    for name, xs in (("produce -> read back", lat), ("  produce -> list generated", dgen),
                     ("  generated -> appended", dapp), ("  appended -> read back", dread)):
        print("%-28s count %d  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms"
              % (name, len(xs), pct(xs, 50), pct(xs, 90), pct(xs, 99), xs[-1]))
    print("latency p50 %.0f ms p99 %.0f ms at %g events/s (target p99 <= 50 ms)"
          % (pct(lat, 50), pct(lat, 99), rate))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "pace":
        pace(float(argv[2]), float(argv[3]), argv[4])
    elif cmd == "read":
        read(*argv[2:7])
    elif cmd == "stamp":
        stamp(argv[2], argv[3])
    elif cmd == "report":
        return report(argv[2], argv[3], argv[4], float(argv[5]), float(argv[6]))
    else:
        print(__doc__, file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
