#!/usr/bin/env python3
"""advrecd rides out a real broker's outage (label e2e; docs/RELIABILITY.md,
"Broker faults").

    broker_restart.py --kafka-sh SH --src DIR --advrecd BIN --gen BIN
                      --produce BIN --inspect BIN --dump BIN

The test starts a broker of its own (tests/kafka/kafka.sh start --fresh in a
temporary directory, on free ports of its own), never the shared fixture's,
so stopping it disturbs no other test. advrecd runs as a process against it
(-X broker.embedded=false, a RocksDB state dir, http.listen on a free port).

  1. advrec-gen's CSV (20,000 events) is split in two; advrec-produce sends
     the first half; the stored offsets (advrec-inspect) reach its end.
  2. The broker is stopped (kafka.sh stop: SIGTERM) and stays down for
     OUTAGE_S seconds while advrecd runs. Asserts advrecd is still running
     at the end of it and that its log reports the outage (librdkafka's
     _TRANSPORT / _ALL_BROKERS_DOWN warnings, routed into advrec's log).
  3. The broker is started again on the same directory (same ports, same
     data); advrec-produce sends the second half. Nothing is done to
     advrecd: it must resume by itself. Asserts the stored offsets reach the
     new end offsets (bounded), advrecd still running, and GET /metrics has
     advrec_kafka_errors_total above 0.
  4. SIGTERM: exit 0 within 30 s; the final stats line counts exactly the
     CSV's clicks and purchases (one run, nothing applied twice); every
     user's and item's counters in the state (state_dump) equal the CSV's;
     the stored offsets equal the end offsets; every user of the CSV has at
     least one list on the recommendations topic (kafka-python).

Every wait has a deadline; advrecd and the broker are stopped on every way
out (atexit, and SIGTERM from a ctest timeout).
"""

import argparse
import atexit
import collections
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import advrec_kafka as ak

OUTAGE_S = 10
EVENTS = 20000
PROCS = []
BROKERS = []  # kafka.sh directories to stop on the way out
ARGS = None


def log(msg):
    print(msg, flush=True)


def _cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    for d in BROKERS:
        subprocess.run([ARGS.kafka_sh, "stop", d], timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # ctest timeout


def wait_until(fn, timeout_s, what, interval=0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("%s: not within %ds" % (what, timeout_s))
        time.sleep(interval)


def tail(path, n=30):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def kafka_sh(*args, timeout=180):
    t0 = time.monotonic()
    r = subprocess.run([ARGS.kafka_sh] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("kafka.sh %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                         r.stderr))
    return r.stdout.strip(), time.monotonic() - t0


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


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    for o in ("kafka-sh", "src", "advrecd", "gen", "produce", "inspect", "dump"):
        ap.add_argument("--" + o, required=True)
    ARGS = a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="advrec-restart.")
    kdir = os.path.join(tmp, "kafka")
    t_all = time.monotonic()

    # A broker of our own: stopping it disturbs no other test.
    BROKERS.append(kdir)
    bs, secs = kafka_sh("start", "--fresh", kdir)
    bs = bs.splitlines()[-1]
    log("own broker at %s, started in %.1f s" % (bs, secs))
    t = {k: "restart.%s" % k for k in ("clicks", "purchases", "recs", "anomalies", "dlq")}
    for k, name in t.items():
        ak.create_topic(bs, name, 4 if k in ("clicks", "purchases") else 1)

    # The stream, in two halves (each a CSV with the header).
    path = os.path.join(tmp, "stream.csv")
    subprocess.run([a.gen, "-q", "-o", path, "--seed", "14", "--events", str(EVENTS),
                    "--users", "1500", "--items", "800"], check=True, timeout=120)
    want_users, want_items = csv_counts(path)
    with open(path) as f:
        lines = f.readlines()
    halves = []
    for i, part in enumerate((lines[1:1 + EVENTS // 2], lines[1 + EVENTS // 2:])):
        hp = os.path.join(tmp, "half%d.csv" % i)
        with open(hp, "w") as f:
            f.write(lines[0])
            f.writelines(part)
        halves.append(hp)
    want_clicks = sum(v[0] for v in want_users.values())
    want_purchases = sum(v[1] for v in want_users.values())

    def produce(hp):
        r = subprocess.run([a.produce, "-b", bs, "-f", "csv", "-q",
                            "--click-topic", t["clicks"], "--purchase-topic", t["purchases"],
                            hp], capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, "advrec-produce exit %d: %s" % (r.returncode, r.stderr)

    def ends():
        out = {}
        for k in ("clicks", "purchases"):
            for p, off in ak.end_offsets(bs, t[k]).items():
                out[(t[k], p)] = off
        return out

    state = os.path.join(tmp, "state")

    def stored():
        r = subprocess.run([a.inspect, "--json", state, "offsets"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return {}
        return {(o["topic"], o["partition"]): o["next"] for o in json.loads(r.stdout)}

    errpath = os.path.join(tmp, "advrecd.err")
    with open(errpath, "w") as err:
        p = subprocess.Popen(
            [a.advrecd, "-c", os.path.join(a.src, "conf/advrecd.conf"),
             "-X", "broker.embedded=false",
             "-X", "kafka.bootstrap.servers=" + bs,
             "-X", "topic.clicks=" + t["clicks"],
             "-X", "topic.purchases=" + t["purchases"],
             "-X", "topic.recommendations=" + t["recs"],
             "-X", "topic.anomalies=" + t["anomalies"],
             "-X", "topic.dlq=" + t["dlq"],
             "-X", "group.id=restart",
             "-X", "kafka.session.timeout.ms=6000",
             "-X", "state.dir=" + state,
             "-X", "state.sync=none",
             "-X", "http.listen=127.0.0.1:0",
             "-X", "stats.interval.ms=1000",
             "-X", "log.level=info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    PROCS.append(p)

    def text():
        with open(errpath) as f:
            return f.read()

    def alive(when):
        assert p.poll() is None, "advrecd exited %d %s:\n%s" % (p.returncode, when,
                                                                tail(errpath))

    def drained(e, when):
        def done():
            alive(when)
            s = stored()
            return all(s.get(k, 0) == v for k, v in e.items()) and set(s) <= set(e)
        return done

    wait_until(lambda: alive("starting") or "rebalance: assigned" in text(), 60,
               "advrecd's partition assignment")
    port = int(re.search(r"\(port (\d+)\)", text()).group(1))

    # 1. The first half, applied.
    t0 = time.monotonic()
    produce(halves[0])
    e1 = ends()
    assert sum(e1.values()) == EVENTS // 2, "end offsets %s" % e1
    wait_until(drained(e1, "on the first half"), 120, "stored offsets at the first half's end")
    log("first half (%d events) applied in %.1f s" % (EVENTS // 2, time.monotonic() - t0))

    # 2. The broker away for OUTAGE_S seconds, advrecd left alone.
    mark = len(text())
    _, secs = kafka_sh("stop", kdir)
    t_down = time.monotonic()
    log("broker stopped in %.1f s" % secs)
    while time.monotonic() - t_down < OUTAGE_S:
        alive("while the broker was down")
        time.sleep(0.5)
    alive("while the broker was down")
    outage = [l for l in text()[mark:].splitlines()
              if "librdkafka" in l and ("_TRANSPORT" in l or "_ALL_BROKERS_DOWN" in l)]
    assert outage, "no outage reported in advrecd's log:\n" + tail(errpath)
    log("advrecd ran through %d s of outage; %d log lines report it, e.g.\n  %s"
        % (OUTAGE_S, len(outage), outage[0]))

    # 3. The broker back on the same directory; advrecd resumes by itself.
    _, secs = kafka_sh("start", kdir)
    t_up = time.monotonic()
    log("broker restarted in %.1f s (down %.1f s)" % (secs, t_up - t_down))
    produce(halves[1])
    e2 = ends()
    assert sum(e2.values()) == EVENTS, "end offsets after the restart: %s" % e2
    wait_until(drained(e2, "after the restart"), 180,
               "stored offsets at the end after the restart")
    log("resumed: everything applied %.1f s after the broker came back"
        % (time.monotonic() - t_up))
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        metrics = r.read().decode()
    errs = {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^advrec_kafka_errors_total\{([^}]*)\} (\S+)$', metrics, re.M)}
    log("advrec_kafka_errors_total: %s" % errs)
    assert sum(errs.values()) > 0, "no advrec_kafka_errors_total after the outage"

    # 4. Stop; everything exact, every user served.
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("advrecd still running 30 s after SIGTERM:\n" + tail(errpath))
    assert rc == 0, "SIGTERM: exit %d:\n%s" % (rc, tail(errpath))
    log("SIGTERM -> exit 0 in %.2f s" % (time.monotonic() - t0))
    finals = [l for l in text().splitlines() if "final: " in l and " total " in l]
    assert finals, "no final stats line:\n" + tail(errpath)
    words = finals[-1].split(" total ")[1].split()
    assert (int(words[0]), int(words[2])) == (want_clicks, want_purchases), (
        "final stats %s; want %d clicks, %d purchases" % (finals[-1], want_clicks,
                                                        want_purchases))
    r = subprocess.run([a.dump, state], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "state_dump: %s" % r.stderr
    offs, users, items = parse_dump(r.stdout)
    assert all(offs.get(k, 0) == v for k, v in e2.items()), "stored %s, ends %s" % (offs, e2)
    msgs = compare_counts("user", users, want_users) + compare_counts("item", items, want_items)
    assert not msgs, "counters differ from the CSV:\n" + "\n".join(msgs)
    log("counters: %d users and %d items equal the CSV's (%d clicks, %d purchases)"
        % (len(users), len(items), want_clicks, want_purchases))
    recs = ak.consume(bs, t["recs"], timeout_s=60)
    missing = set(want_users) - {r.key.decode() for r in recs}
    assert not missing, "%d users never got a list, e.g. %s" % (len(missing),
                                                                sorted(missing)[:5])
    log("%d lists; every one of %d users has one; whole test %.1f s"
        % (len(recs), len(want_users), time.monotonic() - t_all))
    kafka_sh("stop", kdir)
    BROKERS.remove(kdir)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
