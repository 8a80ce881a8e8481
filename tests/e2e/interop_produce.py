"""e2e.interop.produce: what advrec-produce writes is read back, field by
field, by clients we did not write.

For each source file -- a fixture generated at test time by advrec-gen (CSV,
with two malformed lines inserted) and, when present, the shared Taobao
sample -- advrec-produce replays it to two fresh 4-partition topics on the
real broker. The file is parsed independently here (e2e_common.parse_*),
both topics are read with kafka-python and decoded with fastavro using
schemas/click.avsc and purchase.avsc, and the test checks:

  - advrec-produce exits 0 and reports exactly the malformed lines the
    independent parse finds, as file:line (Taobao: only the truncated last
    line, 96,169); its summary counts match;
  - every event of the file is on its topic exactly once: per topic and per
    user, the records in offset order are the user's events in file order
    (user, item, ts in ms, type), so counts per type match too (Taobao with
    the default cart/fav -> click mapping: 94,024 clicks, 2,144 purchases)
    and nothing else is there (no malformed line, no duplicate);
  - every value is Confluent-framed with schema id 1 (click) / 2 (purchase)
    and decodes with no trailing bytes; fields the source lacks are the
    schema's absent values (session_id, context, order_id null, quantity 1);
  - key == user_id; the record timestamp == the event time;
  - partition == the Java client's murmur2 partition of the key;
  - Kafka's Java ConsoleConsumer reads the same key and value bytes at the
    same partition/offset (all records of the fixture; on Taobao all
    purchases and a sample of clicks).

usage: venv.sh interop_produce.py KAFKA_DIR KAFKA_SH ADVREC_PRODUCE ADVREC_GEN SOURCE_DIR
"""

import collections
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import advrec_kafka as ak
import e2e_common as ec
from e2e_common import fail, say

PARTITIONS = 4
CLICK_ID, PURCHASE_ID = 1, 2
TAOBAO = "taobao-userbehavior/UserBehavior_timesorted_head.csv"


def make_fixture(gen, tmp):
    """advrec-gen's CSV with two malformed lines inserted (lines 1001, 2502)."""
    raw = os.path.join(tmp, "gen.csv")
    subprocess.run([gen, "--seed", "11", "--users", "300", "--items", "250",
                    "--events", "4000", "--purchase-prob", "0.1", "-q", "-o", raw],
                   check=True, timeout=60)
    with open(raw) as f:
        lines = f.read().splitlines()
    lines.insert(1000, "u-bad,i-bad,like,1700000000000")   # unknown type
    lines.insert(2501, "u-bad,,click,1700000000001")        # empty item id
    path = os.path.join(tmp, "fixture.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def produce(prod, bs, path, fmt, topics):
    cp = subprocess.run([prod, "-b", bs, "-f", fmt, "--no-progress",
                         "--click-topic", topics["click"],
                         "--purchase-topic", topics["purchase"], path],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    err = cp.stderr.decode(errors="replace")
    if cp.returncode != 0:
        fail("advrec-produce exited %d on %s:\n%s" % (cp.returncode, path, err[-3000:]))
    reported = {int(n) for n in re.findall(re.escape(path) + r":(\d+): ", err)}
    return err, reported


def check_file(name, path, fmt, events, bad, tool, bs, kdir, kafka_sh, schemas,
               java_clicks, expect_counts=None):
    prod = tool
    run = uuid.uuid4().hex[:8]
    topics = {"click": "e2e-prod-%s-%s.clicks" % (name, run),
              "purchase": "e2e-prod-%s-%s.purchases" % (name, run)}
    # retention.ms=-1: the records carry their event time (Taobao: 2017) and
    # would otherwise be past the 7-day retention at the broker's next check.
    ec.make_topics(kafka_sh, kdir,
                   ["%s:%d:retention.ms=-1" % (t, PARTITIONS) for t in topics.values()])

    want = {k: [e for e in events if e[3] == k] for k in ("click", "purchase")}
    counts = {k: len(v) for k, v in want.items()}
    if expect_counts and counts != expect_counts:
        fail("%s: the independent parse finds %s, the data set is documented as %s"
             % (name, counts, expect_counts))

    say("%s: topics made; producing %d events" % (name, len(events)))
    summary, reported = produce(prod, bs, path, fmt, topics)
    say("%s: produced" % name)
    if reported != set(bad):
        fail("%s: advrec-produce reported malformed lines %s, the independent parse "
             "finds %s\n%s" % (name, sorted(reported), sorted(bad), summary[-3000:]))
    m = re.search(r"delivered (\d+) \(\S+ (\d+), \S+ (\d+)\), failed 0, undelivered 0", summary)
    if not m or (int(m.group(1)), int(m.group(2)), int(m.group(3))) != (
            len(events), counts["click"], counts["purchase"]):
        fail("%s: summary does not say %d delivered (%d + %d):\n%s"
             % (name, len(events), counts["click"], counts["purchase"], summary))
    if not re.search(r"skipped %d malformed lines" % len(bad), summary):
        fail("%s: summary does not count %d malformed lines:\n%s" % (name, len(bad), summary))

    got_all = {}
    for kind, sid in (("click", CLICK_ID), ("purchase", PURCHASE_ID)):
        topic = topics[kind]
        recs = ak.consume(bs, topic, expected=counts[kind], timeout_s=120)
        if len(recs) != counts[kind]:
            fail("%s: %s holds %d records, want %d" % (name, topic, len(recs), counts[kind]))
        per_user = collections.defaultdict(list)
        for r, v in ak.decode_all(schemas[kind], recs, sid):
            where = "%s/%d@%d" % (topic, r.partition, r.offset)
            if r.key != v["user_id"].encode():
                fail("%s: key %r != user_id %r" % (where, r.key, v["user_id"]))
            if r.partition != ec.java_partition(r.key, PARTITIONS):
                fail("%s: key %r on partition %d, Java's murmur2 says %d"
                     % (where, r.key, r.partition, ec.java_partition(r.key, PARTITIONS)))
            ts = ec.ms(v["ts"])
            if r.timestamp != ts:
                fail("%s: record timestamp %d != event ts %d" % (where, r.timestamp, ts))
            if kind == "click":
                if v["session_id"] is not None or v["context"] is not None:
                    fail("%s: session_id/context %r/%r, the source has none"
                         % (where, v["session_id"], v["context"]))
            else:
                if (v["quantity"] != 1 or v["order_id"] is not None
                        or not math.isfinite(v["price"]) or v["price"] < 0):
                    fail("%s: quantity %r, price %r, order_id %r: want 1, a finite "
                         "price >= 0, null" % (where, v["quantity"], v["price"], v["order_id"]))
            per_user[v["user_id"]].append((v["item_id"], ts, r.partition, r.offset))
        src_user = collections.defaultdict(list)
        for (no, user, item, _, ts) in want[kind]:
            src_user[user].append((item, ts, no))
        if set(per_user) != set(src_user):
            extra = sorted(set(per_user) - set(src_user))[:5]
            missing = sorted(set(src_user) - set(per_user))[:5]
            fail("%s: %s users differ from the source: extra %s, missing %s"
                 % (name, topic, extra, missing))
        for user, src in src_user.items():
            got = per_user[user]
            if len(got) != len(src):
                fail("%s: user %s has %d %ss on %s, the source %d (lines %s)"
                     % (name, user, len(got), kind, topic, len(src), [s[2] for s in src][:10]))
            for (item, ts, no), (gitem, gts, p, o) in zip(src, got):
                if (item, ts) != (gitem, gts):
                    fail("%s: %s:%d (%s %s %s ts %d) is %s/%d@%d with item %s ts %d"
                         % (name, path, no, user, kind, item, ts, topic, p, o, gitem, gts))
        say("%s: %s checked" % (name, topic))
        got_all[kind] = {(r.partition, r.offset): (r.key, r.value) for r in recs}

    # Kafka's own Java consumer sees the same bytes where kafka-python did.
    java_checked = 0
    for kind in ("click", "purchase"):
        n = counts[kind] if kind == "purchase" else min(counts[kind], java_clicks)
        if n == 0:
            continue
        java = ec.java_consume(kafka_sh, kdir, topics[kind], n)
        if len(java) != n:
            fail("%s: Java console consumer read %d of %s, want %d" % (name, len(java), topics[kind], n))
        for pos, kv in java.items():
            if got_all[kind].get(pos) != kv:
                fail("%s: Java console consumer at %s/%d@%d read %r, kafka-python %r"
                     % (name, topics[kind], pos[0], pos[1], kv, got_all[kind].get(pos)))
            if kv[0] not in (b"", None) and pos[0] != ec.java_partition(kv[0], PARTITIONS):
                fail("%s: Java read key %r on partition %d" % (name, kv[0], pos[0]))
        java_checked += n
    say("%s: %s -> %d clicks + %d purchases, each once, field by field in file order per "
        "user, keys = user ids on murmur2 partitions; malformed lines %s reported and absent; "
        "Java console consumer agreed on %d records"
        % (name, os.path.basename(path), counts["click"], counts["purchase"], sorted(bad),
           java_checked))


def main():
    kdir, kafka_sh, prod, gen, src = sys.argv[1:6]
    bs = ak.bootstrap(kdir)
    schemas = {"click": ak.load_schema(os.path.join(src, "schemas", "click.avsc")),
               "purchase": ak.load_schema(os.path.join(src, "schemas", "purchase.avsc"))}
    tmp = tempfile.mkdtemp(prefix="advrec-e2e-produce.")
    try:
        fixture = make_fixture(gen, tmp)
        events, bad = ec.parse_csv(fixture)
        if bad != [1001, 2502]:
            fail("the fixture's inserted malformed lines parse as %s, want [1001, 2502]" % bad)
        check_file("fixture", fixture, "csv", events, bad, prod, bs, kdir, kafka_sh,
                   schemas, java_clicks=10 ** 9)

        taobao = ec.shared_data(src, TAOBAO)
        if not taobao:
            say("SKIPPED the Taobao part: %s not found (shared data absent)" % TAOBAO)
            return
        events, bad = ec.parse_taobao(taobao)
        if bad != [96169]:
            fail("the independent Taobao parse finds malformed lines %s, want [96169]" % bad[:10])
        check_file("taobao", taobao, "taobao", events, bad, prod, bs, kdir, kafka_sh,
                   schemas, java_clicks=2000,
                   expect_counts={"click": 94024, "purchase": 2144})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
