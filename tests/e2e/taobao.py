"""e2e.taobao: the Taobao sample through the whole pipeline on the real broker.

advrec-produce replays the shared Taobao sample (96,168 events; without the
shared data a generated advrec-gen fixture, with a printed reason) to fresh
4-partition topics; advrecd runs as a process against them
(-X broker.embedded=false, a fresh -X state.dir in a temp dir). The test
awaits (deadline, polling the daemon's stats lines) until every input record
is handled, SIGTERMs advrecd (it refreshes every stale user and flushes) and
checks:

  - advrecd exits 0; its final stats line counts exactly the clicks and
    purchases of an independent parse of the file, and 0 dlq;
  - the consumer group's committed offsets equal the input end offsets;
  - the recommendations topic, read fully with kafka-python, holds only
    messages that decode with schemas/recommendation.avsc (schema id 3), with
    key == user_id, 1 <= n <= recs.n distinct items that are all item ids of
    the input, model_version > 0, and input_topic/partition/offset naming a
    record of that user (the input topics are read back with kafka-python);
  - every user who clicked has a recommendation; each user's last one points
    at the user's last record on one of the input topics (the list reflects
    all their events) and, for users with at most recs.history (50) events,
    recommends nothing the user bought.

Prints how long the daemon took to consume the input and to stop.

usage: venv.sh taobao.py KAFKA_DIR KAFKA_SH ADVREC_PRODUCE ADVREC_GEN ADVRECD SOURCE_DIR
"""

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import advrec_kafka as ak
import e2e_common as ec
from e2e_common import fail, say

PARTITIONS = 4
RECS_N = 10
# recs.history: the ring exclusion used to look at, kept short here so that
# many real buyers have more events than it holds (the sample's users are
# light: none has more than 50 events).
HISTORY = 4
PURCHASED_MAX = 256  # recs.exclude.purchased.max
TAOBAO = "taobao-userbehavior/UserBehavior_timesorted_head.csv"


def main():
    kdir, kafka_sh, prod, gen, advrecd, src = sys.argv[1:7]
    bs = ak.bootstrap(kdir)
    rec_schema = ak.load_schema(os.path.join(src, "schemas", "recommendation.avsc"))
    tmp = tempfile.mkdtemp(prefix="advrec-e2e-taobao.")
    procs = ec.Procs()
    try:
        path = ec.shared_data(src, TAOBAO)
        if path:
            fmt = "taobao"
            events, bad = ec.parse_taobao(path)
        else:
            say("shared Taobao sample (%s) absent: using a generated fixture instead" % TAOBAO)
            path, fmt = os.path.join(tmp, "gen.csv"), "csv"
            subprocess.run([gen, "--seed", "5", "--users", "3000", "--items", "2000",
                            "--events", "20000", "-q", "-o", path], check=True, timeout=60)
            events, bad = ec.parse_csv(path)
        n_clicks = sum(1 for e in events if e[3] == "click")
        n_purchases = len(events) - n_clicks
        clickers = {e[1] for e in events if e[3] == "click"}
        items = {e[2] for e in events}
        bought = collections.defaultdict(set)
        n_events = collections.Counter(e[1] for e in events)
        for e in events:
            if e[3] == "purchase":
                bought[e[1]].add(e[2])

        run = uuid.uuid4().hex[:8]
        t = {k: "e2e-tb-%s.%s" % (run, k)
             for k in ("clicks", "purchases", "recs", "anomalies", "dlq")}
        ec.make_topics(kafka_sh, kdir, [
            # the records carry 2017 event times: no time-based retention
            "%s:%d:retention.ms=-1" % (t["clicks"], PARTITIONS),
            "%s:%d:retention.ms=-1" % (t["purchases"], PARTITIONS),
            "%s:%d:compact" % (t["recs"], PARTITIONS),
            "%s:1" % t["anomalies"], "%s:1" % t["dlq"]])
        cp = subprocess.run([prod, "-b", bs, "-f", fmt, "-q", "--click-topic", t["clicks"],
                             "--purchase-topic", t["purchases"], path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        if cp.returncode != 0:
            fail("advrec-produce exited %d:\n%s" % (cp.returncode, cp.stderr.decode()[-3000:]))
        say("produced %s: %d clicks, %d purchases (%d malformed lines skipped)"
            % (os.path.basename(path), n_clicks, n_purchases, len(bad)))

        group = "e2e-tb-%s" % run
        d = ec.Daemon(procs, advrecd, bs, tmp, [
            "topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
            "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
            "topic.dlq=" + t["dlq"], "group.id=" + group, "recs.n=%d" % RECS_N,
            "recs.history=%d" % HISTORY, "recs.exclude=purchased",
            "state.dir=" + os.path.join(tmp, "state")])
        t_start = time.monotonic()
        wall_start_ms = int(time.time() * 1000)
        d.await_stats(lambda s: s["clicks"] + s["purchases"] + s["dlq"] >= len(events), 180,
                      "stats line with all %d events handled" % len(events))
        t_consumed = time.monotonic()
        say("advrecd handled all %d events %.1f s after it started, %.1f s after the first"
            % (len(events), t_consumed - t_start, t_consumed - (d.t_first or t_start)))
        rc, final = d.stop(150)
        t_stopped = time.monotonic()
        say("advrecd stopped %.1f s after SIGTERM (exit %d); final: %s"
            % (t_stopped - t_consumed, rc, final))
        if rc != 0:
            fail("advrecd exited %d, want 0:\n%s" % (rc, d.tail()))
        want = {"clicks": n_clicks, "purchases": n_purchases, "dlq": 0, "stale": 0}
        got = {k: final[k] for k in want}
        if got != want:
            fail("final stats %s, want %s\n%s" % (got, want, d.tail()))
    finally:
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    for topic in (t["clicks"], t["purchases"]):
        ends, committed = ak.end_offsets(bs, topic), ak.committed_offsets(bs, group, topic)
        if committed != ends:
            fail("group %s committed %s on %s; end offsets %s" % (group, committed, topic, ends))

    # Who is at each input offset, and each user's last record per topic.
    owner, last = {}, collections.defaultdict(set)
    for kind, n in (("clicks", n_clicks), ("purchases", n_purchases)):
        latest = {}
        for r in ak.consume(bs, t[kind], expected=n, timeout_s=120):
            owner[(t[kind], r.partition, r.offset)] = r.key.decode()
            latest[r.key.decode()] = (t[kind], r.partition, r.offset)
        for u, pos in latest.items():
            last[u].add(pos)
    if len(owner) != len(events):
        fail("the input topics hold %d records, want %d" % (len(owner), len(events)))

    recs = ak.consume(bs, t["recs"], expected=final["lists"], timeout_s=120)
    if len(recs) != final["lists"]:
        fail("%s holds %d messages, the daemon counted %d lists" % (t["recs"], len(recs), final["lists"]))
    latest = {}
    now_ms = int(time.time() * 1000)
    for r, v in ak.decode_all(rec_schema, recs, 3):
        where = "%s/%d@%d" % (r.topic, r.partition, r.offset)
        u = v["user_id"]
        if r.key != u.encode():
            fail("%s: key %r, user_id %r" % (where, r.key, u))
        ids = [x["item_id"] for x in v["items"]]
        if not 1 <= len(ids) <= RECS_N or len(set(ids)) != len(ids):
            fail("%s: %d items (%s), want 1..%d distinct" % (where, len(ids), ids, RECS_N))
        unknown = [i for i in ids if i not in items]
        if unknown:
            fail("%s: items %s are not in the input" % (where, unknown))
        if v["model_version"] <= 0:
            fail("%s: model_version %d" % (where, v["model_version"]))
        src_pos = (v["input_topic"], v["input_partition"], v["input_offset"])
        if owner.get(src_pos) != u:
            fail("%s: list of %s points at %s, a record of %r" % (where, u, src_pos, owner.get(src_pos)))
        gen_ms = ec.ms(v["generated_at"])
        if not wall_start_ms - 1000 <= gen_ms <= now_ms + 1000:
            fail("%s: generated_at %d outside the daemon's run [%d, %d]"
                 % (where, gen_ms, wall_start_ms, now_ms))
        # Per key, the later offset on its partition is the later list.
        latest[u] = (src_pos, ids, where)
    missing = clickers - set(latest)
    if missing:
        fail("%d users who clicked have no recommendation, e.g. %s"
             % (len(missing), sorted(missing)[:10]))
    for u, (src_pos, ids, where) in latest.items():
        if src_pos not in last[u]:
            fail("%s: the last list of %s points at %s, not at the user's last record (%s)"
                 % (where, u, src_pos, sorted(last[u])))
        # Purchases are excluded however old (the set keeps PURCHASED_MAX).
        if len(bought[u]) <= PURCHASED_MAX and bought[u] & set(ids):
            fail("%s: the last list of %s (%d events, %d purchases) recommends items "
                 "the user bought: %s" % (where, u, n_events[u], len(bought[u]),
                                          sorted(bought[u] & set(ids))))
    long_buyers = sum(1 for u in latest if n_events[u] > HISTORY and bought[u])
    say("%d recommendation messages decode, keyed by user, real items, n <= %d, "
        "model_version > 0, pointing at the user's records; all %d users who clicked have "
        "one, each last one at their last record and without their purchases "
        "(%d of them buyers with more than recs.history=%d events)"
        % (len(recs), RECS_N, len(clickers), long_buyers, HISTORY))


if __name__ == "__main__":
    main()
