"""e2e.interop.fastavro: records written by fastavro + kafka-python (clients
we did not write) are applied by advrecd, a separate process on the real
broker; malformed ones land on its dead-letter topic.

On fresh topics (inputs with 4 partitions, recommendations compacted),
kafka-python produces Confluent-framed records that fastavro encodes:

  - clicks with schemas/click.avsc (id 1), some with session_id and context;
  - clicks with the OLDER tests/unit/data/click_v0.avsc (id 11) and the
    NEWER click_v2.avsc (id 13, fields our reader does not know), some of
    them by users that appear in no other record;
  - purchases with schemas/purchase.avsc (id 2) and the older
    purchase_v0.avsc (id 12: no quantity/currency, float price);
  - five malformed records, each with its own key and an input header:
    JSON instead of Avro (bad-magic), a schema id nobody registered
    (unknown-schema), an Avro body cut short (truncated), a purchase with a
    negative price (invalid-event), a Recommendation on the click topic
    (wrong-kind).

advrecd runs with -X broker.embedded=false, -X schema.11/12/13=... for the
other versions; the test awaits (deadline, polling its stats lines) until it
has handled every record, then SIGTERMs it and checks:

  - exit code 0; the final stats line counts exactly the good clicks and
    purchases and 5 dlq;
  - the consumer group's committed offsets equal the end offsets of every
    input partition (read with kafka-python: nothing left unconsumed);
  - the DLQ (read with kafka-python) holds exactly the 5 malformed records,
    each with its original key, value bytes and input header, and the headers
    advrec.error (the expected reason code), advrec.error.message (non-empty),
    advrec.source.topic/partition/offset (where kafka-python produced it);
  - every user with a good record, including those seen only in old- or
    new-schema records, has a recommendation that decodes with
    schemas/recommendation.avsc (id 3), key == user_id.

usage: venv.sh interop_fastavro.py KAFKA_DIR KAFKA_SH ADVRECD SOURCE_DIR
"""

import datetime
import os
import shutil
import sys
import tempfile
import uuid

import advrec_kafka as ak
import e2e_common as ec
from e2e_common import fail, say

PARTITIONS = 4
T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def at(i):
    return T0 + datetime.timedelta(seconds=i)


def main():
    kdir, kafka_sh, advrecd, src = sys.argv[1:5]
    bs = ak.bootstrap(kdir)
    sch = lambda *p: os.path.join(src, *p)
    old = {11: sch("tests", "unit", "data", "click_v0.avsc"),
           12: sch("tests", "unit", "data", "purchase_v0.avsc"),
           13: sch("tests", "unit", "data", "click_v2.avsc")}
    click, purchase = ak.load_schema(sch("schemas", "click.avsc")), ak.load_schema(
        sch("schemas", "purchase.avsc"))
    rec_schema = ak.load_schema(sch("schemas", "recommendation.avsc"))
    v0c, v0p, v2c = (ak.load_schema(old[i]) for i in (11, 12, 13))

    run = uuid.uuid4().hex[:8]
    t = {k: "e2e-fa-%s.%s" % (run, k) for k in ("clicks", "purchases", "recs", "anomalies", "dlq")}
    ec.make_topics(kafka_sh, kdir, [
        "%s:%d:retention.ms=-1" % (t["clicks"], PARTITIONS),
        "%s:%d:retention.ms=-1" % (t["purchases"], PARTITIONS),
        "%s:%d:compact" % (t["recs"], PARTITIONS),
        "%s:1" % t["anomalies"], "%s:1" % t["dlq"]])
    say("topics %s made" % ", ".join(sorted(t.values())))

    # (topic, key, value bytes, headers, expected dlq code or None)
    items = []
    users = set()

    def good(topic, schema, sid, rec):
        items.append((topic, rec["user_id"], ak.frame(schema, sid, rec), [], None))
        users.add(rec["user_id"])

    for i in range(200):
        u, it = "u%02d" % (i % 30), "item-%d" % (i * 7 % 53)
        rec = {"user_id": u, "item_id": it, "ts": at(i)}
        if i % 3 == 0:
            rec["session_id"] = "s-%d" % (i // 10)
        if i % 4 == 0:
            rec["context"] = {"page": "home", "position": i % 12}
        good(t["clicks"], click, 1, rec)
    for i in range(60):  # older schema; old-u* appear nowhere else
        u = "old-u%d" % (i % 6) if i % 2 else "u%02d" % (i % 30)
        good(t["clicks"], v0c, 11, {"user_id": u, "item_id": "item-%d" % (i % 41),
                                    "ts": at(300 + i)})
    for i in range(20):  # newer schema with fields we do not know
        u = "new-u%d" % (i % 4) if i % 2 else "u%02d" % (i % 30)
        good(t["clicks"], v2c, 13, {"user_id": u, "referrer": "ad-%d" % i,
                                    "item_id": "item-%d" % (i % 13), "ts": at(400 + i),
                                    "context": {"page": "p", "position": None,
                                                "slot": [1, i]},
                                    "dwell_ms": 1000 + i})
    for i in range(30):
        good(t["purchases"], purchase, 2,
             {"user_id": "u%02d" % (i % 30), "item_id": "item-%d" % (i * 3 % 53),
              "ts": at(500 + i), "quantity": 1 + i % 3, "price": 9.5 + i,
              "currency": "EUR" if i % 2 else "USD", "order_id": "o-%d" % i})
    for i in range(10):
        good(t["purchases"], v0p, 12, {"user_id": "u%02d" % (i * 3 % 30),
                                       "item_id": "item-%d" % i, "ts": 1772366400000 + i,
                                       "price": 1.25 * i})
    n_clicks = sum(1 for x in items if x[0] == t["clicks"])
    n_purchases = len(items) - n_clicks

    ok_click = ak.frame(click, 1, {"user_id": "bad-3", "item_id": "i", "ts": at(1)})
    bad = [
        (t["clicks"], "bad-1", b'{"user_id":"bad-1","item_id":"i","ts":1}', "bad-magic"),
        (t["clicks"], "bad-2", ak.frame(click, 99, {"user_id": "bad-2", "item_id": "i",
                                                    "ts": at(1)}), "unknown-schema"),
        (t["clicks"], "bad-3", ok_click[:-3], "truncated"),
        (t["purchases"], "bad-4", ak.frame(purchase, 2, {"user_id": "bad-4", "item_id": "i",
                                                         "ts": at(1), "price": -1.0}),
         "invalid-event"),
        (t["clicks"], "bad-5", ak.frame(rec_schema, 3, {
            "user_id": "bad-5", "items": [{"item_id": "i", "score": 1.0}], "model_version": 1,
            "input_topic": "x", "input_partition": 0, "input_offset": 0,
            "generated_at": at(1)}), "wrong-kind"),
    ]
    # Interleave the bad ones with the good ones.
    for j, (topic, key, value, code) in enumerate(bad):
        items.insert(40 + 60 * j, (topic, key, value, [("e2e.case", code.encode())], code))

    pos = []
    for topic in (t["clicks"], t["purchases"]):
        sel = [x for x in items if x[0] == topic]
        for x, p in zip(sel, ak.produce(bs, topic, [(x[1], x[2], x[3]) for x in sel])):
            pos.append((x, p))
    say("produced %d clicks, %d purchases (3 click and 2 purchase schema versions) and "
        "%d malformed records" % (n_clicks, n_purchases, len(bad)))

    tmp = tempfile.mkdtemp(prefix="advrec-e2e-fastavro.")
    procs = ec.Procs()
    try:
        group = "e2e-fa-%s" % run
        d = ec.Daemon(procs, advrecd, bs, tmp, [
            "topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
            "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
            "topic.dlq=" + t["dlq"], "group.id=" + group,
            "state.dir=" + os.path.join(tmp, "state"),
            "schema.11=" + old[11], "schema.12=" + old[12], "schema.13=" + old[13]])
        total = len(items)
        d.await_stats(lambda s: s["clicks"] + s["purchases"] + s["dlq"] >= total, 90,
                      "stats line with all %d records handled" % total)
        say("advrecd handled all %d records" % total)
        rc, final = d.stop(60)
        if rc != 0:
            fail("advrecd exited %d after SIGTERM, want 0:\n%s" % (rc, d.tail()))
        want = {"clicks": n_clicks, "purchases": n_purchases, "dlq": len(bad)}
        got = {k: final[k] for k in want}
        if got != want:
            fail("final stats %s, want %s\n%s" % (got, want, d.tail()))
        say("advrecd exit 0, final: %s" % final)
    finally:
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    for topic in (t["clicks"], t["purchases"]):
        ends = ak.end_offsets(bs, topic)
        committed = ak.committed_offsets(bs, group, topic)
        if committed != ends:
            fail("group %s committed %s on %s, the end offsets are %s"
                 % (group, committed, topic, ends))

    dlq = ak.consume(bs, t["dlq"], expected=len(bad), timeout_s=60)
    if len(dlq) != len(bad):
        fail("DLQ holds %d records, want %d" % (len(dlq), len(bad)))
    by_key = {r.key: r for r in dlq}
    for (topic, key, value, hdrs, code), (p, o) in pos:
        if code is None:
            continue
        r = by_key.get(key.encode())
        if r is None:
            fail("the %s record (key %s) is not on the DLQ" % (code, key))
        h = dict(r.headers)
        where = "DLQ record of key %s" % key
        if r.value != value:
            fail("%s: value %r, the input was %r" % (where, r.value, value))
        expect_h = {"advrec.error": code.encode(), "advrec.source.topic": topic.encode(),
                    "advrec.source.partition": str(p).encode(),
                    "advrec.source.offset": str(o).encode(), "e2e.case": code.encode()}
        for k, v in expect_h.items():
            if h.get(k) != v:
                fail("%s: header %s = %r, want %r (headers %s)" % (where, k, h.get(k), v, h))
        if not h.get("advrec.error.message"):
            fail("%s: no advrec.error.message header (headers %s)" % (where, h))
    say("DLQ: the 5 malformed records with key, value, input header and advrec.error "
        "%s" % sorted(b[3] for b in bad))

    recs = ak.consume(bs, t["recs"], expected=final["lists"], timeout_s=60)
    seen = set()
    for r, v in ak.decode_all(rec_schema, recs, 3):
        if r.key != v["user_id"].encode():
            fail("recommendation at %d@%d: key %r, user_id %r" % (r.partition, r.offset, r.key,
                                                                 v["user_id"]))
        seen.add(v["user_id"])
    if seen != users:
        fail("recommendations for %d users, want the %d with good records: missing %s, extra %s"
             % (len(seen), len(users), sorted(users - seen)[:10], sorted(seen - users)[:10]))
    say("recommendations: %d messages decode with recommendation.avsc, one or more for each "
        "of the %d users (old-/new-schema-only users included)" % (len(recs), len(users)))


if __name__ == "__main__":
    main()
