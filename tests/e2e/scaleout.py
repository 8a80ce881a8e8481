#!/usr/bin/env python3
"""e2e.scaleout: several advrecd in one consumer group on the real broker,
user state following its partition through topic.changelog (issue 12,
point 4; docs/ARCHITECTURE.md "Scaling out").

On the fixture's Apache Kafka, with 12-partition input topics, and a
changelog topic and a model topic (shared item factors) the daemons create
themselves: advrec-gen's stream
(3,000 users, 60,000 clicks and purchases) is produced by advrec-produce at
a bounded rate while three daemons (A, B, C; each its own RocksDB state
dir, static membership) consume it as one group. Each wait is bounded.

  1. Once 30 % of the stream is applied, B is killed with SIGKILL; its
     partitions move to A and C after its session times out, and are
     restored there from the changelog.
  2. Once 60 % is applied, a fourth daemon D joins: partitions rebalance to
     it and are restored there.
  3. When the group's committed offsets reach the end of both topics, and
     every clicks partition is owned by exactly one live daemon (from their
     /metrics), every user's clicks and purchases in the state of the
     daemon that owns the user's partition (state_dump) equal the counts of
     the CSV: nothing lost, nothing applied twice; and every user's latest
     list on the recommendations topic (kafka-python, fastavro) reflects
     the user's last record of one of the input topics.
  4. A rolling restart (each daemon stopped with SIGTERM and started
     again on its state, one after the other) moves nothing: each gets its
     own partitions back and restores none (static membership, the state's
     record of the changelog's end).
  5. All stop (SIGTERM, exit 0): with topic.model, every item's update
     count is the same in the three states (the group's steps, the killed
     daemon's included). All start again: once each owns its
     partitions again, nothing is applied (their final stats lines count no
     click or purchase) and every user's counters are unchanged.

usage: venv.sh scaleout.py --kafka-dir DIR --src SRC --advrecd BIN
         --gen BIN --produce BIN --dump BIN
"""

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import advrec_kafka as ak
from e2e_common import (Daemon, Procs, fail, generate, java_partition, metric,
                        parse_metrics, say, stats_lines)

PARTS = 12
USERS = 3000
ITEMS = 1000
EVENTS = 60000
RATE = 1500  # events/s produced: about 40 seconds of input


class Env:
    def __init__(self, a):
        self.a = a
        self.bs = ak.bootstrap(a.kafka_dir)
        self.tag = "so-" + uuid.uuid4().hex[:8]
        self.t = {k: "%s.%s" % (self.tag, k) for k in
                  ("clicks", "purchases", "recs", "anomalies", "dlq", "changelog", "model")}
        for k in ("clicks", "purchases", "recs", "anomalies", "dlq"):
            ak.create_topic(self.bs, self.t[k], PARTS if k in ("clicks", "purchases") else 2,
                            {"cleanup.policy": "compact"} if k == "recs" else None)
        self.tmp = tempfile.mkdtemp(prefix="advrec-e2e-scaleout.")
        self.procs = Procs()
        self.daemons = {}
        self.gone = {}  # name -> applied by runs that ended

    def start(self, name):
        logdir = os.path.join(self.tmp, "%s.%d" % (name, int(time.monotonic() * 1000)))
        os.makedirs(logdir)
        t = self.t
        d = Daemon(self.procs, self.a.advrecd, self.bs, logdir, [
            "topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
            "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
            "topic.dlq=" + t["dlq"], "topic.changelog=" + t["changelog"],
            "topic.model=" + t["model"],
            "group.id=" + self.tag, "kafka.session.timeout.ms=6000",
            "state.dir=" + os.path.join(self.tmp, "state-" + name),
            "state.commit.interval.ms=200", "recs.debounce.ms=0",
            "schema.dir=" + os.path.join(self.a.src, "schemas"),
            "http.listen=127.0.0.1:0"])
        d.name = name
        self.daemons[name] = d
        return d

    def applied(self, d):
        lines = stats_lines(d.err_path)
        return (lines[-1][1]["clicks"] + lines[-1][1]["purchases"]) if lines else 0

    def total_applied(self):
        return sum(self.gone.values()) + sum(self.applied(d) for d in self.daemons.values())

    def await_total(self, n, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while self.total_applied() < n:
            for d in self.daemons.values():
                if d.p.poll() is not None:
                    fail("advrecd %s exited (%d) before %s:\n%s"
                         % (d.name, d.p.returncode, what, d.tail()))
            if time.monotonic() >= deadline:
                fail("%s: %d of %d applied within %d s" % (what, self.total_applied(), n,
                                                           timeout_s))
            time.sleep(0.1)  # polling interval of a bounded wait

    def owners(self, timeout_s=90):
        """{clicks partition: daemon} once every partition is owned by exactly
        one live daemon and every live daemon owns some (their
        advrec_partition_assigned gauges)."""
        deadline = time.monotonic() + timeout_s
        while True:
            own = collections.defaultdict(list)
            for d in self.daemons.values():
                if d.p.poll() is not None:
                    fail("advrecd %s exited (%d):\n%s" % (d.name, d.p.returncode, d.tail()))
                for (name, labels), _ in d.metrics().items():
                    lab = dict(labels)
                    if (name == "advrec_partition_assigned"
                            and lab.get("topic") == self.t["clicks"]):
                        own[int(lab["partition"])].append(d)
            if (len(own) == PARTS and all(len(v) == 1 for v in own.values())
                    and len({v[0].name for v in own.values()}) == len(self.daemons)):
                return {p: v[0] for p, v in own.items()}
            if time.monotonic() >= deadline:
                fail("partitions not owned once each within %d s: %s" % (
                    timeout_s, {p: [d.name for d in v] for p, v in sorted(own.items())}))
            time.sleep(0.5)  # polling interval of a bounded wait

    def drained(self, timeout_s=180):
        deadline = time.monotonic() + timeout_s
        ends = {k: ak.end_offsets(self.bs, self.t[k]) for k in ("clicks", "purchases")}
        while True:
            done = all(
                (ak.committed_offsets(self.bs, self.tag, self.t[k]).get(p) or 0) >= off
                for k in ("clicks", "purchases") for p, off in ends[k].items())
            if done:
                return
            if time.monotonic() >= deadline:
                fail("the group's committed offsets did not reach the end within %d s"
                     % timeout_s)
            time.sleep(0.5)  # polling interval of a bounded wait

    def counters(self, owners):
        """{user: (clicks, purchases)} of each user from the state of the
        daemon owning their partition."""
        dumps = {}
        out = {}
        for d in set(owners.values()):
            state = os.path.join(self.tmp, "state-" + d.name)
            r = subprocess.run([self.a.dump, state], capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0:
                fail("state_dump %s: exit %d: %s" % (state, r.returncode, r.stderr))
            rows = {}
            for line in r.stdout.splitlines():
                f = line.split()
                if f[0] == "user":
                    rows[f[1]] = (int(f[2]), int(f[3]))
            dumps[d.name] = rows
        for p, d in owners.items():
            for user, c in dumps[d.name].items():
                if java_partition(user, PARTS) == p:
                    out[user] = c
        return out


def main():
    ap = argparse.ArgumentParser()
    for k in ("kafka-dir", "src", "advrecd", "gen", "produce", "dump"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    env = Env(a)
    try:
        run(env)
    finally:
        env.procs.cleanup()
        shutil.rmtree(env.tmp, ignore_errors=True)


def run(env):
    csv = os.path.join(env.tmp, "events.csv")
    events = generate(env.a.gen, csv, 12, USERS, ITEMS, EVENTS)
    want = collections.defaultdict(lambda: [0, 0])
    for _, user, _, kind, _ in events:
        want[user][kind == "purchase"] += 1
    say("%d events of %d users" % (len(events), len(want)))

    for name in ("A", "B", "C"):
        env.start(name)
    owners = env.owners()
    say("A, B, C own %s partitions" % sorted(collections.Counter(
        d.name for d in owners.values()).items()))
    prod = env.procs.start([env.a.produce, "-b", env.bs, "-f", "csv", "-q",
                            "--rate", str(RATE), "--click-topic", env.t["clicks"],
                            "--purchase-topic", env.t["purchases"], csv],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)

    # 1. kill -9 B mid-stream, once it applied some; its partitions move to
    # A and C once its session times out, restored there.
    env.await_total(EVENTS * 3 // 10, 120, "30 % applied")
    env.daemons["B"].await_stats(lambda s: s["clicks"] + s["purchases"] > 0, 60,
                                 "B applying events")
    b = env.daemons.pop("B")
    b.p.send_signal(signal.SIGKILL)
    b.p.wait(timeout=10)
    env.gone["B"] = env.applied(b)
    say("B killed (SIGKILL) after %d applied (its last stats line)" % env.gone["B"])
    owners = env.owners()
    say("A, C own %s partitions, %d of %d events applied" % (sorted(collections.Counter(
        d.name for d in owners.values()).items()), env.total_applied(), EVENTS))

    # 2. a fourth daemon joins mid-stream: partitions rebalance to it.
    env.await_total(EVENTS * 6 // 10, 180, "60 % applied")
    env.start("D")
    owners = env.owners()
    say("D joined: A, C, D own %s partitions, %d of %d events applied" % (
        sorted(collections.Counter(d.name for d in owners.values()).items()),
        env.total_applied(), EVENTS))
    if prod.poll() is not None:
        say("(advrec-produce had finished: the moves were not mid-stream)")
    if prod.wait(timeout=120) != 0:
        fail("advrec-produce: %s" % prod.stderr.read().decode(errors="replace"))

    # 3. drained: exact counters at each user's owner, lists reflect the end.
    env.drained()
    owners = env.owners()
    say("drained; A, C, D own %s partitions" % sorted(collections.Counter(
        d.name for d in owners.values()).items()))
    restores = {d.name: metric(d.metrics(), "advrec_changelog_restores_total")
                for d in env.daemons.values()}
    skipped = {d.name: metric(d.metrics(), "advrec_changelog_skipped_total")
               for d in env.daemons.values()}
    say("restores %s, records skipped as already restored %s" % (restores, skipped))
    if not restores["D"] or not (restores["A"] or restores["C"]):
        fail("B's partitions were not restored at A or C, or D's at D")
    got = env.counters(owners)
    bad = [(u, tuple(w), got.get(u)) for u, w in want.items() if got.get(u) != tuple(w)]
    if bad:
        fail("%d of %d users' counters differ from the input at their owner "
             "(user, want, got), first: %s" % (len(bad), len(want), bad[:5]))
    say("every user's clicks and purchases at their owner equal the input (%d users)"
        % len(want))

    last_in = {}
    for k in ("clicks", "purchases"):
        for r in ak.consume(env.bs, env.t[k], expected=None, idle_s=0.5, timeout_s=120):
            last_in.setdefault(r.key.decode(), {})[k] = (r.partition, r.offset)
    rec_schema = ak.load_schema(os.path.join(env.a.src, "schemas", "recommendation.avsc"))
    latest = {}
    for r, rec in ak.decode_all(rec_schema, ak.consume(env.bs, env.t["recs"], idle_s=1.0,
                                                       timeout_s=120)):
        latest[r.key.decode()] = rec
    stale = []
    for user, lasts in last_in.items():
        rec = latest.get(user)
        at = rec and (rec["input_partition"], rec["input_offset"])
        ok = rec and any(rec["input_topic"] == env.t[k] and at == pos
                         for k, pos in lasts.items())
        if not ok:
            stale.append((user, lasts, at))
    if stale:
        fail("%d users' latest list does not reflect their last record, first: %s"
             % (len(stale), stale[:5]))
    say("every user's latest list reflects their last record (%d users)" % len(last_in))

    # 4. a rolling restart moves nothing: each daemon in turn stopped and
    # started again on its state (static membership) gets its own
    # partitions back and restores none.
    for name in sorted(env.daemons):
        mine = sorted(p for p, d in owners.items() if d.name == name)
        rc, _ = env.daemons[name].stop(60)
        if rc != 0:
            fail("advrecd %s exited %d after SIGTERM" % (name, rc))
        env.start(name)
        owners = env.owners()
        back = sorted(p for p, d in owners.items() if d.name == name)
        restores = metric(env.daemons[name].metrics(), "advrec_changelog_restores_total")
        if back != mine or restores:
            fail("rolling restart of %s: partitions %s before, %s after, %s restores"
                 % (name, mine, back, restores))
    say("rolling restart of %s: every daemon got its partitions back, no restore"
        % ", ".join(sorted(env.daemons)))

    # 5. stop all, start all: nothing applied twice.
    for d in list(env.daemons.values()):
        rc, final = d.stop(60)
        if rc != 0:
            fail("advrecd %s exited %d after SIGTERM" % (d.name, rc))
    names = sorted(env.daemons)
    # Item factors shared (topic.model): every daemon's item rows hold the
    # steps of the whole group, B's (killed) included.
    items = {}
    for name in names:
        r = subprocess.run([env.a.dump, os.path.join(env.tmp, "state-" + name)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fail("state_dump %s: exit %d: %s" % (name, r.returncode, r.stderr))
        items[name] = {f[1]: int(f[4]) for f in
                       (line.split() for line in r.stdout.splitlines()) if f[0] == "item"}
    first = items[names[0]]
    differ = [(i, {n: items[n].get(i) for n in names}) for i in first
              if any(items[n].get(i) != first[i] for n in names)]
    if differ or not first:
        fail("%d of %d items' update counts differ between %s, first: %s"
             % (len(differ), len(first), names, differ[:5]))
    say("item factors shared: every item's update count equal at %s (%d items)"
        % (", ".join(names), len(first)))
    env.daemons = {}
    for name in names:
        env.start(name)
    owners = env.owners()
    after = env.counters(owners)
    if after != got:
        diff = [u for u in got if after.get(u) != got[u]]
        fail("%d users' counters changed across stop all / start all, first: %s"
             % (len(diff), diff[:5]))
    for d in list(env.daemons.values()):
        rc, final = d.stop(60)
        if rc != 0 or final["clicks"] or final["purchases"]:
            fail("advrecd %s after the restart: exit %d, applied %d clicks and %d "
                 "purchases (want 0)" % (d.name, rc, final["clicks"], final["purchases"]))
    say("stop all, start all: nothing applied again, counters unchanged")
    print("PASS e2e.scaleout")


if __name__ == "__main__":
    main()
