#!/usr/bin/env python3
"""Durability of advrecd's RocksDB state, on the real broker (label e2e).

advrecd runs as a separate process (-X broker.embedded=false) against the
fixture's Apache Kafka; input is advrec-gen's CSV produced by advrec-produce
to topics unique to the test. Every wait has a deadline; every process this
script starts is killed and reaped on the way out.

  durability.py kill9 ...     tests a. and c. of the issue
  durability.py bitexact ...  test b.
  durability.py dlq ...       dead letters at-least-once across kill -9

kill9: 50,000 generated events (clicks and purchases) on 4-partition topics.
  advrecd is killed with SIGKILL at least 20 times at seeded random moments
  (a quarter of the kills a random 0-0.8 s after the spawn: during the state
  load, group join or first rounds; the rest a random 0-0.3 s after the
  stored offsets passed a seeded target spread over the stream), restarting
  each time on the same state dir. Asserts:
  - the stored offsets never move backwards across a kill (a commit is
    durable), and at >= 5 kills the stored total was strictly between 0 and
    the end (the daemon was killed mid-work);
  - after the last restart drains the input (stored offsets == end offsets),
    SIGTERM ends it with exit 0 within 30 s;
  - every user's and item's clicks and purchases counters in the state
    (state_dump over lib/store) equal the counts computed from the CSV: the
    same ids, nothing lost, nothing applied twice.
  Then c.: a restart on the drained state, once assigned, gets one new
  sentinel click; it is awaited in the state, then SIGTERM: exit 0 within
  30 s, its final stats line counts exactly 1 click and 0 purchases (nothing
  of the old stream re-applied), every other row's counters are unchanged and
  the stored offsets equal the new end offsets.
  - every user of the CSV got at least one recommendation message, though
    refreshes were pending at most kills (the owed set is committed with the
    state: outputs are at-least-once).

bitexact: 20,000 clicks (purchase probability 0) on ONE partition (the
  purchase topic stays empty, so the input order is total). Run A drains it
  uninterrupted on a fresh state dir; run B on another fresh state dir is
  killed with SIGKILL at >= 5 seeded moments (after the stored offset passed
  seeded targets, plus 0-0.3 s) and restarted until drained. Both stopped
  with SIGTERM. Asserts the dumps of every user and item row (counters,
  bias, factors and Adagrad accumulators as exact %a hex floats) and the
  stored offsets are byte-identical. (The rng of a record is seeded with its
  topic name, so both runs read the same topic, as different groups.) The
  stream has four click bots; run A writes its anomaly flags to a topic of
  its own: run B's flags (read with kafka-python, decoded with fastavro) are
  exactly A's set, byte for byte, with at most duplicates (flags are
  at-least-once across a crash).

budget: a stream like bitexact's with 5,000 users (one partition, clicks
  only, 2,000 events/s)
  through run B with a tiny memory budget (state.memory.limit=64k, a commit
  every round, recs.debounce.ms=0: every user whose row is committed and
  whose list was delivered is evicted, and read back from RocksDB at their
  next event), killed with SIGKILL 3 times (a start with a budget reads no
  user row; the users owed a list are read back by uid), and run A without
  a budget, uninterrupted. Asserts B evicted and read back users (at least
  300 and 500 over its runs, from its stats lines; measured 700-900 and
  1,500-2,200), the dumps of both states are
  byte-identical (every row, exact %a floats, offsets), and the list
  advrec-inspect builds from each state is the same for 50 users.
"""

import argparse
import atexit
import collections
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import advrec_kafka as ak

PROCS = []  # every Popen we started, killed at exit


def _reap_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


atexit.register(_reap_all)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # ctest timeout


def log(msg):
    print(msg, flush=True)


def wait_until(fn, timeout_s, what, interval=0.05):
    """Polls fn() until it returns something truthy; TimeoutError after
    timeout_s. interval is the polling period of a bounded wait."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("%s: not within %ds" % (what, timeout_s))
        time.sleep(interval)


class Env:
    def __init__(self, a, name):
        self.a = a
        self.bs = ak.bootstrap(a.kafka_dir)
        self.tag = "%s.%d.%d" % (name, os.getpid(), int(time.time() * 1000) % 10**9)
        self.tmp = tempfile.mkdtemp(prefix="advrec-dur-%s." % name)
        self.runs = 0

    def topics(self, partitions):
        t = {k: "dur.%s.%s" % (self.tag, k)
             for k in ("clicks", "purchases", "recs", "anomalies", "dlq")}
        for k, name in t.items():
            ak.create_topic(self.bs, name, partitions if k in ("clicks", "purchases") else 1)
        return t

    def gen(self, path, *args):
        subprocess.run([self.a.gen, "-q", "-o", path] + list(args), check=True, timeout=120)

    def produce(self, t, path):
        r = subprocess.run([self.a.produce, "-b", self.bs, "-f", "csv", "-q",
                            "--click-topic", t["clicks"], "--purchase-topic", t["purchases"],
                            path], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise AssertionError("advrec-produce exit %d: %s" % (r.returncode, r.stderr))
        return r.stderr

    def produce_bg(self, t, path, rate):
        """advrec-produce at most rate events/s, in the background."""
        p = subprocess.Popen([self.a.produce, "-b", self.bs, "-f", "csv", "-q",
                              "--rate", str(rate), "--click-topic", t["clicks"],
                              "--purchase-topic", t["purchases"], path],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        PROCS.append(p)
        return p

    def ends(self, t):
        out = {}
        for k in ("clicks", "purchases"):
            for p, off in ak.end_offsets(self.bs, t[k]).items():
                out[(t[k], p)] = off
        return out

    def spawn(self, t, state, group, extra=()):
        self.runs += 1
        errpath = os.path.join(self.tmp, "advrecd.%d.err" % self.runs)
        cmd = [self.a.advrecd, "-c", os.path.join(self.a.src, "conf/advrecd.conf"),
               "-X", "broker.embedded=false",
               "-X", "kafka.bootstrap.servers=" + self.bs,
               "-X", "topic.clicks=" + t["clicks"],
               "-X", "topic.purchases=" + t["purchases"],
               "-X", "topic.recommendations=" + t["recs"],
               "-X", "topic.anomalies=" + t["anomalies"],
               "-X", "topic.dlq=" + t["dlq"],
               "-X", "group.id=" + group,
               # Static membership: a restart takes over the killed member's
               # assignment at once instead of waiting for its session to
               # time out.
               "-X", "kafka.group.instance.id=" + group + ".0",
               "-X", "kafka.session.timeout.ms=6000",
               "-X", "state.dir=" + state,
               "-X", "round.max.records=200",
               "-X", "stats.interval.ms=200",
               "-X", "log.level=info"] + list(extra)
        err = open(errpath, "w")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
        err.close()
        p.errpath = errpath
        PROCS.append(p)
        return p

    def stored(self, state):
        """{(topic, partition): next} committed in state ({} if none yet)."""
        r = subprocess.run([self.a.inspect, "--json", state, "offsets"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return {}
        return {(o["topic"], o["partition"]): o["next"] for o in json.loads(r.stdout)}

    def dump(self, state, factors=False):
        cmd = [self.a.dump, state] + (["--factors"] if factors else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("state_dump %s: exit %d: %s" % (state, r.returncode, r.stderr))
        return r.stdout

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def tail(path, n=15):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def kill9(p):
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


def sigterm(p, bound_s=30):
    """SIGTERM; returns (exit code, seconds to exit). Fails past bound_s."""
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=bound_s)
    except subprocess.TimeoutExpired:
        raise AssertionError("advrecd still running %ds after SIGTERM:\n%s"
                             % (bound_s, tail(p.errpath)))
    return rc, time.monotonic() - t0


def drain(env, p, state, ends, timeout_s):
    """Awaits, while p runs, that it has joined the group ("rebalance:
    assigned" logged: it is up and handling signals) and that the stored
    offsets equal the end offsets (the state may be drained already by an
    earlier run, so the offsets alone say nothing about p)."""
    def done():
        if p.poll() is not None:
            raise AssertionError("advrecd exited %d while draining:\n%s"
                                 % (p.returncode, tail(p.errpath)))
        with open(p.errpath) as f:
            if "rebalance: assigned" not in f.read():
                return False
        return same_offsets(env.stored(state), ends)
    wait_until(done, timeout_s, "stored offsets reaching the end offsets", 0.2)


def same_offsets(stored, ends):
    """stored == ends, where an empty partition (end 0) may have no stored
    offset (nothing was ever consumed from it)."""
    return (set(stored) <= set(ends) and
            all(stored.get(k, 0) == v for k, v in ends.items()))


def total(offs):
    return sum(offs.values())


def kill_cycles(env, t, state, group, end_total, rng, n_kills, early_every, extra=()):
    """Spawns and SIGKILLs advrecd n_kills times while the input of
    end_total events is being produced; returns the stored totals seen after
    each kill."""
    seen = []
    prev = {}
    for i in range(n_kills):
        p = env.spawn(t, state, group, extra)
        early = early_every and i % early_every == 0
        if early:
            time.sleep(rng.uniform(0.0, 0.8))  # the random kill moment
        else:
            target = end_total * (i + 1) / (n_kills + 1) * rng.uniform(0.85, 1.0)

            def reached():
                if p.poll() is not None:
                    raise AssertionError("advrecd exited %d on its own:\n%s"
                                         % (p.returncode, tail(p.errpath)))
                return total(env.stored(state)) >= target
            wait_until(reached, 90, "kill %d: stored total >= %d" % (i, target))
            time.sleep(rng.uniform(0.0, 0.3))  # the random kill moment
        if p.poll() is not None:
            raise AssertionError("advrecd exited %d before kill %d:\n%s"
                                 % (p.returncode, i, tail(p.errpath)))
        kill9(p)
        now = env.stored(state)
        for k, v in prev.items():
            assert now.get(k, 0) >= v, "kill %d: stored offset of %s went back: %d -> %s" % (
                i, k, v, now.get(k))
        prev = now
        seen.append(total(now))
        log("kill %2d (%s): stored %d of %d" % (i, "early" if early else "progress",
                                                 total(now), end_total))
    return seen


def parse_dump(text):
    offs, users, items = {}, {}, {}
    for line in text.splitlines():
        f = line.split()
        if f[0] == "offset":
            offs[(f[1], int(f[2]))] = int(f[3])
        elif f[0] == "user":
            users[f[1]] = (int(f[2]), int(f[3]))
        elif f[0] == "item":
            items[f[1]] = (int(f[2]), int(f[3]))
    return offs, users, items


def csv_counts(path):
    users = collections.defaultdict(lambda: [0, 0])
    items = collections.defaultdict(lambda: [0, 0])
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for user, item, typ, _ in r:
            j = 1 if typ == "purchase" else 0
            users[user][j] += 1
            items[item][j] += 1
    return ({k: tuple(v) for k, v in users.items()},
            {k: tuple(v) for k, v in items.items()})


def compare_counts(kind, got, want):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    msgs = []
    if missing:
        msgs.append("%d %ss missing, e.g. %s" % (len(missing), kind, missing[:5]))
    if extra:
        msgs.append("%d unexpected %ss, e.g. %s" % (len(extra), kind, extra[:5]))
    if wrong:
        msgs.append("%d %ss with wrong (clicks, purchases), e.g. %s" % (
            len(wrong), kind, [(k, got[k], want[k]) for k in wrong[:5]]))
    return msgs


def final_stats(errpath):
    """(clicks, purchases) of the last 'final:' stats line."""
    with open(errpath) as f:
        lines = [l for l in f if "final: " in l and " total " in l]
    assert lines, "no final stats line in %s:\n%s" % (errpath, tail(errpath))
    words = lines[-1].split(" total ")[1].split()
    return int(words[0]), int(words[2])


def test_kill9(a):
    env = Env(a, "kill9")
    rng = random.Random(20240611)
    t = env.topics(4)
    path = os.path.join(env.tmp, "stream.csv")
    env.gen(path, "--seed", "11", "--events", "50000", "--users", "3000", "--items", "1500")
    want_users, want_items = csv_counts(path)
    state = os.path.join(env.tmp, "state")
    group = "dur." + env.tag

    # The stream is produced at 2,500 events/s while advrecd is killed and
    # restarted, so the kills land while there is work in flight.
    t0 = time.monotonic()
    prod = env.produce_bg(t, path, 2500)
    seen = kill_cycles(env, t, state, group, 50000, rng, n_kills=24, early_every=4)
    mid = [s for s in seen if 0 < s < 50000]
    assert len(mid) >= 5, "only %d kills landed mid-stream: %s" % (len(mid), seen)
    log("24 kills in %.1f s; %d with the stored total strictly between 0 and 50000"
        % (time.monotonic() - t0, len(mid)))
    assert prod.wait(timeout=120) == 0, "advrec-produce: %s" % prod.stderr.read()
    ends = env.ends(t)
    assert total(ends) == 50000, "end offsets add up to %d, want 50000" % total(ends)

    p = env.spawn(t, state, group)
    drain(env, p, state, ends, 120)
    rc, secs = sigterm(p)
    assert rc == 0, "SIGTERM after the drain: exit %d:\n%s" % (rc, tail(p.errpath))
    log("drained; SIGTERM -> exit 0 in %.2f s; whole replay %.1f s" % (
        secs, time.monotonic() - t0))
    offs, users, items = parse_dump(env.dump(state))
    assert same_offsets(offs, ends), "stored offsets %s, end offsets %s" % (offs, ends)
    msgs = compare_counts("user", users, want_users) + compare_counts("item", items, want_items)
    assert not msgs, "counters differ from the CSV:\n" + "\n".join(msgs)
    log("counters: %d users and %d items equal the CSV's (%d clicks, %d purchases)" % (
        len(users), len(items), sum(v[0] for v in users.values()),
        sum(v[1] for v in users.values())))

    # Outputs at-least-once across kill -9: the set of users owed a list is
    # committed with the state, so every user of the input got a list even
    # though a refresh was pending at most of the kills.
    recs = ak.consume(env.bs, t["recs"], timeout_s=60)
    with_list = {r.key.decode() for r in recs}
    missing = set(want_users) - with_list
    log("%d recommendation messages; %d of %d users without a list" % (
        len(recs), len(missing), len(want_users)))
    assert not missing, "%d users never got a list, e.g. %s" % (
        len(missing), sorted(missing)[:5])

    # c. a restart on drained state applies nothing old.
    p = env.spawn(t, state, group)
    wait_until(lambda: p.poll() is not None or "rebalance: assigned" in open(p.errpath).read(),
               60, "the restart's partition assignment")
    assert p.poll() is None, "advrecd exited %d:\n%s" % (p.returncode, tail(p.errpath))
    sentinel = os.path.join(env.tmp, "sentinel.csv")
    item0 = sorted(want_items)[0]
    with open(sentinel, "w") as f:
        f.write("user,item,type,ts\nsentinel-%s,%s,click,1700000000000\n" % (env.tag, item0))
    env.produce(t, sentinel)
    ends2 = env.ends(t)
    drain(env, p, state, ends2, 60)
    rc, secs = sigterm(p)
    assert rc == 0, "SIGTERM on the restart: exit %d:\n%s" % (rc, tail(p.errpath))
    clicks, purchases = final_stats(p.errpath)
    assert (clicks, purchases) == (1, 0), (
        "restart applied %d clicks, %d purchases; want exactly the sentinel (1, 0)"
        % (clicks, purchases))
    offs2, users2, items2 = parse_dump(env.dump(state))
    assert same_offsets(offs2, ends2), "stored offsets %s, end offsets %s" % (offs2, ends2)
    want_users["sentinel-" + env.tag] = (1, 0)
    want_items[item0] = (want_items[item0][0] + 1, want_items[item0][1])
    msgs = compare_counts("user", users2, want_users) + compare_counts("item", items2, want_items)
    assert not msgs, "counters after the restart:\n" + "\n".join(msgs)
    log("restart: applied exactly the 1 new click, nothing old; SIGTERM -> exit 0 in %.2f s"
        % secs)
    env.cleanup()


def test_bitexact(a):
    env = Env(a, "bitexact")
    rng = random.Random(777)
    t = env.topics(1)
    path = os.path.join(env.tmp, "stream.csv")
    # Four click bots (200 clicks each) make sure there are anomaly flags.
    env.gen(path, "--seed", "5", "--events", "20000", "--users", "1000", "--items", "800",
            "--purchase-prob", "0", "--bots", "4", "--bot-events", "200")
    # Run B is killed while the stream is being produced (2,000 events/s).
    t0 = time.monotonic()
    prod = env.produce_bg(t, path, 2000)
    sb = os.path.join(env.tmp, "stateB")
    gb = "dur.%s.B" % env.tag
    seen = kill_cycles(env, t, sb, gb, 20000, rng, n_kills=6, early_every=0)
    mid = [s for s in seen if 0 < s < 20000]
    assert len(mid) >= 3, "only %d kills landed mid-stream: %s" % (len(mid), seen)
    assert prod.wait(timeout=120) == 0, "advrec-produce: %s" % prod.stderr.read()
    ends = env.ends(t)
    assert total(ends) == 20000, ends
    p = env.spawn(t, sb, gb)
    drain(env, p, sb, ends, 120)
    rc, _ = sigterm(p)
    assert rc == 0, "run B: exit %d:\n%s" % (rc, tail(p.errpath))
    log("run B (6 kills, %d mid-stream): %.1f s" % (len(mid), time.monotonic() - t0))

    t0 = time.monotonic()
    sa = os.path.join(env.tmp, "stateA")
    anom_a = "dur.%s.anomaliesA" % env.tag
    ak.create_topic(env.bs, anom_a, 1)
    p = env.spawn(t, sa, "dur.%s.A" % env.tag, extra=("-X", "topic.anomalies=" + anom_a))
    drain(env, p, sa, ends, 120)
    rc, _ = sigterm(p)
    assert rc == 0, "run A: exit %d:\n%s" % (rc, tail(p.errpath))
    log("run A (uninterrupted, fresh state dir): %.1f s" % (time.monotonic() - t0))

    da = env.dump(sa, factors=True).splitlines()
    db = env.dump(sb, factors=True).splitlines()
    if len(da) != len(db):
        ka = {" ".join(l.split()[:2]) for l in da}
        kb = {" ".join(l.split()[:2]) for l in db}
        raise AssertionError("dumps have %d and %d lines; only in A: %s; only in B: %s" % (
            len(da), len(db), sorted(ka - kb)[:8], sorted(kb - ka)[:8]))
    diff = [i for i in range(len(da)) if da[i] != db[i]]
    assert not diff, "%d of %d rows differ; first:\nA: %s\nB: %s" % (
        len(diff), len(da), da[diff[0]][:300], db[diff[0]][:300])
    n_users = sum(1 for l in da if l.startswith("user "))
    log("bit-identical: %d user rows and %d item rows (k floats + accumulators, %%a)"
        % (n_users, sum(1 for l in da if l.startswith("item "))))

    # Anomaly flags are at-least-once across the kills: every flag run A
    # produced (each exactly once: it was never killed) is on run B's topic
    # byte for byte, and B has no flag A did not raise (only duplicates, of
    # flags committed but not acknowledged when a kill came). Both runs were
    # stopped with SIGTERM, which flushes: the topics are complete.
    schema = ak.load_schema(os.path.join(a.src, "schemas", "anomaly.avsc"))
    fa = [(r.key, r.value) for r in ak.consume(env.bs, anom_a)]
    fb = [(r.key, r.value) for r in ak.consume(env.bs, t["anomalies"])]
    assert fa, "run A raised no anomaly flag: nothing to compare"
    assert len(set(fa)) == len(fa), "run A produced a flag twice"
    missing = [k for k, v in fa if (k, v) not in set(fb)]
    extra = [k for k, v in set(fb) - set(fa)]
    assert not missing, "%d of run A's %d flags missing in run B: %s" % (
        len(missing), len(fa), missing[:8])
    assert not extra, "run B has %d flags run A never raised: %s" % (len(extra), extra[:8])
    flagged = {rec["entity_id"] for _, rec in ak.decode_all(
        schema, [ak.Record(anom_a, 0, i, k, v, [], 0) for i, (k, v) in enumerate(fa)])}
    log("anomaly flags: run A %d (%d entities), run B %d messages: every one of A's, "
        "%d duplicate(s) after kills, nothing else" % (
            len(fa), len(flagged), len(fb), len(fb) - len(set(fb))))
    env.cleanup()


def cache_counts(paths):
    """Sum over runs of the last "read back" and "evicted" counts in each
    run's stats lines (the counters restart with every process)."""
    reads = evictions = 0
    for path in paths:
        last = (0, 0)
        with open(path) as f:
            for line in f:
                m = re.search(r"in memory, (\d+) read back, (\d+) evicted", line)
                if m:
                    last = (int(m.group(1)), int(m.group(2)))
        reads += last[0]
        evictions += last[1]
    return reads, evictions


def test_budget(a):
    env = Env(a, "budget")
    rng = random.Random(4242)
    t = env.topics(1)
    path = os.path.join(env.tmp, "stream.csv")
    # 5,000 users over 10 s: a user's next event comes seconds later, after
    # their row was committed and their list delivered (evictable), so it
    # is read back.
    env.gen(path, "--seed", "5", "--events", "20000", "--users", "5000", "--items", "800",
            "--purchase-prob", "0", "--bots", "4", "--bot-events", "200")
    budget = ("-X", "state.memory.limit=64k", "-X", "state.commit.interval.ms=0",
              "-X", "recs.debounce.ms=0")
    t0 = time.monotonic()
    first_run = env.runs + 1
    prod = env.produce_bg(t, path, 2000)
    sb = os.path.join(env.tmp, "stateB")
    gb = "dur.%s.B" % env.tag
    kill_cycles(env, t, sb, gb, 20000, rng, n_kills=3, early_every=0, extra=budget)
    assert prod.wait(timeout=120) == 0, "advrec-produce: %s" % prod.stderr.read()
    ends = env.ends(t)
    assert total(ends) == 20000, ends
    p = env.spawn(t, sb, gb, budget)
    drain(env, p, sb, ends, 120)
    rc, _ = sigterm(p)
    assert rc == 0, "run B: exit %d:\n%s" % (rc, tail(p.errpath))
    reads, evictions = cache_counts(
        os.path.join(env.tmp, "advrecd.%d.err" % r) for r in range(first_run, env.runs + 1))
    log("run B (budget 64k, 3 kills): %.1f s, %d users read back, %d evicted"
        % (time.monotonic() - t0, reads, evictions))
    assert evictions >= 300 and reads >= 500, (
        "the budget did not force the cache to work: %d read back, %d evicted" % (reads, evictions))

    sa = os.path.join(env.tmp, "stateA")
    p = env.spawn(t, sa, "dur.%s.A" % env.tag)
    drain(env, p, sa, ends, 120)
    rc, _ = sigterm(p)
    assert rc == 0, "run A: exit %d:\n%s" % (rc, tail(p.errpath))

    da = env.dump(sa, factors=True).splitlines()
    db = env.dump(sb, factors=True).splitlines()
    assert len(da) == len(db), "dumps have %d and %d lines" % (len(da), len(db))
    diff = [i for i in range(len(da)) if da[i] != db[i]]
    assert not diff, "%d of %d rows differ; first:\nA: %s\nB: %s" % (
        len(diff), len(da), da[diff[0]][:300], db[diff[0]][:300])
    users = [l.split()[1] for l in da if l.startswith("user ")]
    log("bit-identical with and without the budget: %d user rows, %d item rows"
        % (len(users), sum(1 for l in da if l.startswith("item "))))
    conf = os.path.join(a.src, "conf/advrecd.conf")
    for u in rng.sample(users, 50):
        lists = []
        for st in (sa, sb):
            r = subprocess.run([a.inspect, "--json", "-c", conf, st, "user", u],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, "advrec-inspect %s user %s: %s" % (st, u, r.stderr)
            lists.append(json.loads(r.stdout)["top"])
        assert lists[0] == lists[1], "user %s: lists differ:\nA %s\nB %s" % (u, lists[0], lists[1])
    log("the lists of 50 users are the same from both states")
    env.cleanup()


def bad_payloads(rng, schema):
    """Malformed values of every kind the decoder refuses, cycling: (name,
    value). A valid Click frame is the base of the subtle ones."""
    good = ak.frame(schema, 1, {"user_id": "u", "item_id": "i", "ts": 1700000000000})
    return [
        ("empty", b""),
        ("tombstone", None),
        ("not-framed", b'{"user":"not avro"}'),
        ("magic", b"\x01" + good[1:]),
        ("unknown-id", b"\x00\x00\x00\x00\x63" + good[5:]),
        ("truncated", good[:-3]),
        ("trailing", good + b"\x00\x00"),
        ("big", b"\x00\x00\x00\x00\x01" + bytes(rng.getrandbits(8) for _ in range(3000))),
    ]


def produce_bad_bg(env, t, n, rate, rng, schema):
    """Produces n malformed records interleaved with the stream, at about
    rate/s, spread over both input topics (keys: a null key, then user-like
    strings), from a thread; returns (thread, list of (topic, partition,
    offset) filled as acknowledgements arrive)."""
    import threading
    from kafka import KafkaProducer

    kinds = bad_payloads(rng, schema)
    sent = []
    errors = []

    def run():
        prod = KafkaProducer(bootstrap_servers=env.bs, acks="all", linger_ms=5)
        futures = []
        try:
            t0 = time.monotonic()
            for i in range(n):
                topic = t["clicks"] if i % 3 else t["purchases"]
                value = kinds[i % len(kinds)][1]
                # A null key too (but not with a null value: Kafka needs one).
                key = (None if i % 11 == 0 and value is not None
                       else ("bad%d" % rng.randrange(5000)).encode())
                futures.append(prod.send(topic, key=key, value=value))
                if i % 20 == 19:  # pace: about rate records per second
                    ahead = t0 + (i + 1) / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            prod.flush(timeout=60)
            for f in futures:
                md = f.get(timeout=60)
                sent.append((md.topic, md.partition, md.offset))
        except Exception as e:  # reported by the test thread
            errors.append(e)
        finally:
            prod.close(timeout=10)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.errors = errors
    return th, sent


def test_dlq(a):
    """Dead letters are at-least-once across kill -9: 40,000 generated
    events with 12,000 malformed records interleaved (23 %), advrecd killed
    with SIGKILL 22 times, each time after it applied new records (the
    stored offsets moved past the previous kill's); after the drain every
    malformed record is on the dead-letter topic at least once (matched by
    its advrec.source.topic/partition/offset headers, with a reason), no
    good record is, the state counters equal the CSV's and every user got a
    list."""
    env = Env(a, "dlq")
    rng = random.Random(4242)
    t = env.topics(4)
    path = os.path.join(env.tmp, "stream.csv")
    n_good, n_bad, n_kills = 40000, 12000, 22
    env.gen(path, "--seed", "23", "--events", str(n_good), "--users", "2500",
            "--items", "1200")
    want_users, want_items = csv_counts(path)
    state = os.path.join(env.tmp, "state")
    group = "dur." + env.tag
    schema = ak.load_schema(os.path.join(a.src, "schemas", "click.avsc"))
    end_total = n_good + n_bad

    t0 = time.monotonic()
    # Both streams last about 50 s, so that every kill finds new input.
    prod = env.produce_bg(t, path, 800)
    bad_thread, bad_sent = produce_bad_bg(env, t, n_bad, 240, random.Random(99), schema)
    after_progress = 0
    prev_total = 0
    prev = {}
    for i in range(n_kills):
        p = env.spawn(t, state, group)
        target = max(prev_total + 1, end_total * (i + 1) / (n_kills + 1) * rng.uniform(0.85, 1.0))

        def progressed():
            if p.poll() is not None:
                raise AssertionError("advrecd exited %d on its own:\n%s"
                                     % (p.returncode, tail(p.errpath)))
            return total(env.stored(state)) >= target
        try:
            wait_until(progressed, 90, "kill %d: stored total >= %d" % (i, target))
        except TimeoutError:
            raise AssertionError("no progress to %d (malformed producer: %r):\n%s" % (
                target, bad_thread.errors, tail(p.errpath)))
        time.sleep(rng.uniform(0.0, 0.3))  # the random kill moment
        kill9(p)
        now = env.stored(state)
        for k, v in prev.items():
            assert now.get(k, 0) >= v, "kill %d: stored offset of %s went back" % (i, k)
        assert total(now) > prev_total, "kill %d without progress" % i
        after_progress += 1
        prev, prev_total = now, total(now)
        log("kill %2d after progress: stored %d of %d" % (i, prev_total, end_total))
    log("%d kills, %d of them after the daemon applied new records, in %.1f s"
        % (n_kills, after_progress, time.monotonic() - t0))
    assert after_progress >= 20
    assert prod.wait(timeout=120) == 0, "advrec-produce: %s" % prod.stderr.read()
    bad_thread.join(timeout=120)
    assert not bad_thread.is_alive(), "the malformed-record producer did not finish"
    assert not bad_thread.errors, "malformed-record producer: %r" % bad_thread.errors
    assert len(bad_sent) == n_bad, "%d of %d malformed records acknowledged" % (
        len(bad_sent), n_bad)
    ends = env.ends(t)
    assert total(ends) == end_total, "end offsets add up to %d, want %d" % (
        total(ends), end_total)

    p = env.spawn(t, state, group)
    drain(env, p, state, ends, 120)
    rc, secs = sigterm(p)
    assert rc == 0, "SIGTERM after the drain: exit %d:\n%s" % (rc, tail(p.errpath))

    # Every malformed record is on the dead-letter topic, at least once.
    dlq = ak.consume(env.bs, t["dlq"], timeout_s=90)
    sources = collections.Counter()
    for r in dlq:
        h = {k: v for k, v in r.headers}
        assert h.get("advrec.error"), "dead letter without a reason: %r" % (h,)
        sources[(h["advrec.source.topic"].decode(), int(h["advrec.source.partition"]),
                 int(h["advrec.source.offset"]))] += 1
    want = set(bad_sent)
    missing = want - set(sources)
    foreign = set(sources) - want
    log("dead-letter topic: %d records for %d sources (%d duplicates after kills); "
        "%d of %d malformed records missing" % (
            len(dlq), len(sources), len(dlq) - len(sources), len(missing), n_bad))
    assert not missing, "%d malformed records never reached %s, e.g. %s" % (
        len(missing), t["dlq"], sorted(missing)[:5])
    assert not foreign, "%d good records were dead-lettered, e.g. %s" % (
        len(foreign), sorted(foreign)[:5])

    offs, users, items = parse_dump(env.dump(state))
    assert same_offsets(offs, ends), "stored offsets %s, end offsets %s" % (offs, ends)
    msgs = compare_counts("user", users, want_users) + compare_counts("item", items, want_items)
    assert not msgs, "counters differ from the CSV:\n" + "\n".join(msgs)
    log("counters: %d users and %d items equal the CSV's" % (len(users), len(items)))
    recs = ak.consume(env.bs, t["recs"], timeout_s=60)
    missing_lists = set(want_users) - {r.key.decode() for r in recs}
    assert not missing_lists, "%d users never got a list, e.g. %s" % (
        len(missing_lists), sorted(missing_lists)[:5])
    log("every one of %d users got a list (%d messages)" % (len(want_users), len(recs)))
    env.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["kill9", "bitexact", "dlq", "budget"])
    for k in ("kafka-dir", "src", "advrecd", "gen", "produce", "inspect", "dump"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    {"kill9": test_kill9, "bitexact": test_bitexact, "dlq": test_dlq,
     "budget": test_budget}[a.test](a)
    log("PASS %s in %.1f s" % (a.test, time.monotonic() - t0))


if __name__ == "__main__":
    main()
