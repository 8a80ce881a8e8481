#!/usr/bin/env python3
"""e2e.forget: a forget request on the real broker, with clients we did not
write (kafka-python + fastavro).

On the fixture's Apache Kafka: 40 users click (Confluent-framed Avro made by
fastavro); advrecd (a process, RocksDB state, topic.control set) applies
them and publishes their lists; kafka-python then writes a tombstone keyed
by one user on the control topic, and a record with a value keyed by
another. Asserts, each wait bounded:
  a. the forgotten user's latest record on the recommendations topic is a
     tombstone (null value) after a list, read by kafka-python; every other
     user's latest record there is a list that decodes (fastavro);
  b. the record with a value is on the dead-letter topic with
     advrec.error=bad-control;
  c. /metrics counts one forget request and one user deleted for it;
  d. after SIGTERM (exit 0) the state has no row for the user (advrec-inspect
     fails on it) and still has the others.

usage: venv.sh forget.py --kafka-dir DIR --src SRC --advrecd BIN --inspect BIN
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import advrec_kafka as ak
from e2e_common import Daemon, Procs, fail, metric, say

USERS = 40
CLICKS = 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kafka-dir", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--advrecd", required=True)
    ap.add_argument("--inspect", required=True)
    a = ap.parse_args()

    bs = ak.bootstrap(a.kafka_dir)
    tag = "forget-" + uuid.uuid4().hex[:8]
    t = {k: "%s.%s" % (tag, k) for k in
         ("clicks", "purchases", "recs", "anomalies", "dlq", "control")}
    for k, name in t.items():
        ak.create_topic(bs, name, 2,
                        {"cleanup.policy": "compact"} if k == "recs" else None)
    schemas = os.path.join(a.src, "schemas")
    click = ak.load_schema(os.path.join(schemas, "click.avsc"))
    rec_schema = ak.load_schema(os.path.join(schemas, "recommendation.avsc"))

    t0 = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    events = []
    for i in range(USERS * CLICKS):
        user = "u%02d" % (i % USERS)
        events.append((user, {
            "user_id": user, "item_id": "i%d" % (i * 7 % 23),
            "ts": t0 + datetime.timedelta(seconds=i), "session_id": None,
            "context": None}))
    ak.produce_avro(bs, t["clicks"], click, 1, events)

    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="advrec-e2e-forget.")
    try:
        state = os.path.join(tmp, "state")
        d = Daemon(procs, a.advrecd, bs, tmp, [
            "topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
            "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
            "topic.dlq=" + t["dlq"], "topic.control=" + t["control"],
            "group.id=" + tag, "group.instance.id=", "state.dir=" + state,
            "state.commit.interval.ms=200", "recs.debounce.ms=0",
            "schema.dir=" + schemas, "http.listen=127.0.0.1:0"])
        d.await_stats(lambda s: s["clicks"] == USERS * CLICKS and s["stale"] == 0,
                      120, "every click applied and every list produced")
        ak.produce(bs, t["control"], [("u07", None), ("u08", b"please forget me")])

        # a. the tombstone after u07's list; the others' lists intact
        deadline_s = 60
        end = time.monotonic() + deadline_s
        while True:
            recs = ak.consume(bs, t["recs"], timeout_s=60)
            latest, lists = {}, set()
            for r in recs:
                k = r.key.decode()
                latest[k] = r
                if r.value is not None:
                    lists.add(k)
            if "u07" in latest and latest["u07"].value is None:
                break
            if time.monotonic() >= end:
                fail("no tombstone for u07 on %s within %d s" % (t["recs"], deadline_s))
            time.sleep(0.2)  # polling interval of a bounded wait
        if "u07" not in lists:
            fail("u07 had no list before its tombstone")
        others = ["u%02d" % u for u in range(USERS) if u != 7]
        missing = [u for u in others if u not in latest or latest[u].value is None]
        if missing:
            fail("users without a list as their latest record: %s" % missing)
        ak.decode_all(rec_schema, [latest[u] for u in others])

        # b. the record with a value is a dead letter, bad-control
        dead = ak.consume(bs, t["dlq"], expected=1, timeout_s=60)
        reasons = [dict((k, v.decode()) for k, v in r.headers).get("advrec.error")
                   for r in dead if r.key == b"u08"]
        if reasons != ["bad-control"]:
            fail("dead letters keyed u08: reasons %s, want ['bad-control']" % reasons)

        # c. the metrics
        samples = d.metrics()
        if metric(samples, "advrec_forget_requests_total") != 1:
            fail("advrec_forget_requests_total %s, want 1"
                 % metric(samples, "advrec_forget_requests_total"))
        if metric(samples, "advrec_state_users_deleted_total", cause="forget") != 1:
            fail("advrec_state_users_deleted_total{cause=forget} %s, want 1"
                 % metric(samples, "advrec_state_users_deleted_total", cause="forget"))

        # d. gone from the state after a clean stop, the others kept
        d.p.terminate()
        if d.p.wait(timeout=60) != 0:
            fail("advrecd exited %d on SIGTERM:\n%s" % (d.p.returncode, d.tail()))
        gone = subprocess.run([a.inspect, state, "user", "u07"],
                              capture_output=True, text=True)
        kept = subprocess.run([a.inspect, state, "user", "u08"],
                              capture_output=True, text=True)
        if gone.returncode == 0:
            fail("advrec-inspect still finds u07 in the state:\n" + gone.stdout)
        if kept.returncode != 0 or "clicks %d" % CLICKS not in kept.stdout:
            fail("advrec-inspect on u08: %d\n%s%s" % (kept.returncode, kept.stdout,
                                                      kept.stderr))
        say("forget: u07's list tombstoned, its rows deleted; the bad request "
            "dead-lettered; %d other users intact" % len(others))
    finally:
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
