#!/usr/bin/env python3
"""No silent skips after a damaged WAL; static membership on restart (e2e).

advrecd runs as a separate process on the fixture's Apache Kafka, with its
own default membership (group.instance.id=auto: derived from the host and
the state dir) and the default state.offset.missing=fail. Helpers come from
durability.py. Every wait is bounded; every process is killed on the way out.

  lost_state.py truncate ...  the WAL cut in half after acknowledged commits
  lost_state.py corrupt ...   bytes in the middle of the WAL overwritten
                              (RocksDB reports it)
  lost_state.py behind ...    a checkpoint taken half way started after the
                              state went on: only Kafka's committed
                              metadata can tell it is behind
  lost_state.py committed ... behind, resolved with =committed
  lost_state.py static ...    kill -9 and restart: the static member gets its
                              partitions back and applies new events; a
                              fresh state dir in the same group (another
                              lineage) resumes from Kafka's committed offsets
                              without an error

truncate / corrupt: 12,000 generated events on 4 partitions are applied by
  advrecd (stored offsets == end offsets, and Kafka's committed offsets too,
  so Kafka has heard of the last commits), then it is SIGKILLed and its WAL
  damaged. Asserts:
  a. a restart with the default policy exits 65 (EX_DATAERR) within 60 s,
     its error names state.offset.missing=fail and input partitions
     ("<topic> [<p>]"), and it applied nothing: the state's offsets are
     those the damaged WAL left (truncate: fewer than the end offsets);
  b. a restart with state.offset.missing=earliest logs the error, drains to
     the end offsets, exits 0 on SIGTERM, and every user's and item's
     clicks and purchases in the state equal the CSV's: no record skipped,
     none applied twice;
  corrupt: the error is RocksDB's report of the WAL.
behind: half of the stream applied, a checkpoint (SIGUSR1), the rest
  applied and committed to Kafka, SIGTERM; a start on the checkpoint fails
  at its assignment naming the partitions it is behind on ("is behind
  Kafka's committed offset ... committed from this state's commit"), then
  earliest replays the second half: counters equal the CSV's.
committed: as behind, then state.offset.missing=committed logs the error,
  resumes at Kafka's committed offsets (the end: nothing applied, final
  stats 0 and 0), exits 0; a restart with the default policy then starts
  without an error (the move was recorded in the state).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import durability as dur  # noqa: E402
import advrec_kafka as ak  # noqa: E402

log = dur.log


def spawn(env, t, state, group, extra=()):
    """advrecd on the real broker with the daemon's own membership default
    (durability's spawn pins kafka.group.instance.id)."""
    env.runs += 1
    errpath = os.path.join(env.tmp, "advrecd.%d.err" % env.runs)
    cmd = [env.a.advrecd, "-c", os.path.join(env.a.src, "conf/advrecd.conf"),
           "-X", "broker.embedded=false",
           "-X", "kafka.bootstrap.servers=" + env.bs,
           "-X", "topic.clicks=" + t["clicks"],
           "-X", "topic.purchases=" + t["purchases"],
           "-X", "topic.recommendations=" + t["recs"],
           "-X", "topic.anomalies=" + t["anomalies"],
           "-X", "topic.dlq=" + t["dlq"],
           "-X", "group.id=" + group,
           "-X", "kafka.session.timeout.ms=6000",
           "-X", "state.dir=" + state,
           "-X", "round.max.records=200",
           # a commit every round: the WAL holds many, so cutting or
           # corrupting it half way loses some and keeps earlier ones
           "-X", "state.commit.interval.ms=0",
           "-X", "stats.interval.ms=200",
           "-X", "log.level=info"] + list(extra)
    with open(errpath, "w") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
    p.errpath = errpath
    dur.PROCS.append(p)
    return p


def wals(state):
    """The WAL files of state, largest first."""
    fs = [os.path.join(state, f) for f in os.listdir(state) if f.endswith(".log")]
    return sorted(fs, key=os.path.getsize, reverse=True)


def applied_and_committed(env, t, state, group):
    """A fresh state applies the whole stream; returns the end offsets once
    the stored offsets and Kafka's committed offsets both reached them, with
    advrecd SIGKILLed."""
    ends = env.ends(t)
    p = spawn(env, t, state, group)
    dur.drain(env, p, state, ends, 120)

    def kafka_has_it():
        for k in ("clicks", "purchases"):
            got = ak.committed_offsets(env.bs, group, t[k])
            for part, off in got.items():
                if ends[(t[k], part)] and off != ends[(t[k], part)]:
                    return False
        return True
    dur.wait_until(kafka_has_it, 30, "Kafka's committed offsets reaching the end", 0.3)
    dur.kill9(p)
    log("applied %d events; Kafka's committed offsets at the end; SIGKILL" % dur.total(ends))
    return ends


def expect_fail(env, t, state, group, where):
    p = spawn(env, t, state, group)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("advrecd still running 60 s after a start on a "
                             "damaged state:\n%s" % dur.tail(p.errpath))
    text = open(p.errpath).read()
    assert rc == 65, "exit %d, want 65 (EX_DATAERR):\n%s" % (rc, dur.tail(p.errpath))
    assert "state.offset.missing=fail" in text, dur.tail(p.errpath)
    named = sorted({"%s [%d]" % (t[k], part) for k in ("clicks", "purchases")
                    for part in range(4) if "%s [%d]" % (t[k], part) in text})
    assert named, "the error names no partition:\n%s" % dur.tail(p.errpath)
    assert where in text, "want %r in the log:\n%s" % (where, dur.tail(p.errpath))
    line = [l for l in text.splitlines() if "state.offset.missing=fail" in l][-1]
    log("default policy: exit 65 naming %s: %s" % (", ".join(named), line[:400]))
    return named


def expect_earliest(env, t, state, group, ends, path):
    p = spawn(env, t, state, group, ["-X", "state.offset.missing=earliest"])
    dur.drain(env, p, state, ends, 120)
    rc, secs = dur.sigterm(p)
    assert rc == 0, "SIGTERM: exit %d:\n%s" % (rc, dur.tail(p.errpath))
    text = open(p.errpath).read()
    assert "state.offset.missing=earliest" in text, dur.tail(p.errpath)
    offs, users, items = dur.parse_dump(env.dump(state))
    assert dur.same_offsets(offs, ends), "stored %s, ends %s" % (offs, ends)
    want_users, want_items = dur.csv_counts(path)
    msgs = (dur.compare_counts("user", users, want_users) +
            dur.compare_counts("item", items, want_items))
    assert not msgs, "counters differ from the CSV:\n" + "\n".join(msgs)
    clicks, purchases = dur.final_stats(p.errpath)
    log("earliest: error logged, replayed %d clicks + %d purchases; every one of %d users "
        "and %d items equals the CSV (no record skipped or applied twice)" % (
            clicks, purchases, len(users), len(items)))


def setup(a, name, events):
    env = dur.Env(a, name)
    t = env.topics(4)
    path = os.path.join(env.tmp, "stream.csv")
    env.gen(path, "--seed", "23", "--events", str(events), "--users", "1500",
            "--items", "900")
    env.produce(t, path)
    return env, t, path, os.path.join(env.tmp, "state"), "lost." + env.tag


def test_truncate(a):
    env, t, path, state, group = setup(a, "truncate", 12000)
    ends = applied_and_committed(env, t, state, group)
    w = wals(state)
    assert w and os.path.getsize(w[0]) > 0, "no WAL in %s: %s" % (state, os.listdir(state))
    size = os.path.getsize(w[0])
    os.truncate(w[0], size // 2)
    log("WAL %s truncated from %d to %d bytes" % (os.path.basename(w[0]), size, size // 2))
    expect_fail(env, t, state, group, "had been acknowledged")
    left = env.stored(state)
    assert dur.total(left) < dur.total(ends), (
        "after the failed start the state holds %d of %d: the truncation lost nothing?"
        % (dur.total(left), dur.total(ends)))
    log("the state holds offsets up to %d of %d events; nothing applied by the failed start"
        % (dur.total(left), dur.total(ends)))
    expect_earliest(env, t, state, group, ends, path)
    env.cleanup()


def test_corrupt(a):
    env, t, path, state, group = setup(a, "corrupt", 12000)
    ends = applied_and_committed(env, t, state, group)
    w = wals(state)
    assert w, "no WAL in %s" % state
    size = os.path.getsize(w[0])
    with open(w[0], "r+b") as f:
        f.seek(size * 2 // 5)
        f.write(b"\xa5" * 512)
    log("WAL %s: 512 bytes overwritten at %d of %d"
        % (os.path.basename(w[0]), size * 2 // 5, size))
    expect_fail(env, t, state, group, "RocksDB could not fully recover the WAL")
    expect_earliest(env, t, state, group, ends, path)
    env.cleanup()


def test_behind(a, policy="earliest"):
    """A state behind what was committed from it, which only Kafka can
    tell: a checkpoint of the state (same lineage, no ADVREC-COMMITTED)
    taken half way, started after the state went on to the end."""
    env = dur.Env(a, "behind" if policy == "earliest" else policy)
    t = env.topics(4)
    path = os.path.join(env.tmp, "stream.csv")
    env.gen(path, "--seed", "29", "--events", "12000", "--users", "1500",
            "--items", "900")
    half1, half2 = os.path.join(env.tmp, "h1.csv"), os.path.join(env.tmp, "h2.csv")
    with open(path) as f:
        lines = f.readlines()
    with open(half1, "w") as f:
        f.writelines(lines[:6001])
    with open(half2, "w") as f:
        f.writelines(lines[:1] + lines[6001:])
    state, group = os.path.join(env.tmp, "state"), "lost." + env.tag
    cps = os.path.join(env.tmp, "checkpoints")
    env.produce(t, half1)
    p = spawn(env, t, state, group, ["-X", "state.checkpoint.dir=" + cps])
    dur.drain(env, p, state, env.ends(t), 120)
    p.send_signal(dur.signal.SIGUSR1)
    dur.wait_until(lambda: "checkpoint written to" in open(p.errpath).read(), 60,
                   "the checkpoint")
    cp = os.path.join(cps, os.listdir(cps)[0])
    env.produce(t, half2)
    ends = env.ends(t)
    dur.drain(env, p, state, ends, 120)

    def kafka_has_it():
        for k in ("clicks", "purchases"):
            for part, off in ak.committed_offsets(env.bs, group, t[k]).items():
                if ends[(t[k], part)] and off != ends[(t[k], part)]:
                    return False
        return True
    dur.wait_until(kafka_has_it, 30, "Kafka's committed offsets reaching the end", 0.3)
    rc, _ = dur.sigterm(p)
    assert rc == 0, "exit %d:\n%s" % (rc, dur.tail(p.errpath))
    log("half applied, checkpoint %s, the rest applied and committed to Kafka"
        % os.path.basename(cp))
    # The checkpoint has its own dir, so its own group.instance.id: wait out
    # the stopped static member's session (6 s) rather than share one.
    expect_fail(env, t, cp, group, "committed from this state's commit")
    if policy == "earliest":
        expect_earliest(env, t, cp, group, ends, path)
    else:
        expect_committed(env, t, cp, group, ends)
    env.cleanup()


def expect_committed(env, t, state, group, ends):
    """committed: the error logged, the partitions moved to Kafka's
    committed offsets (the end: nothing applied), the move recorded in the
    state at once, so a restart with the default policy goes on quietly."""
    p = spawn(env, t, state, group, ["-X", "state.offset.missing=committed"])
    dur.drain(env, p, state, ends, 120)
    rc, _ = dur.sigterm(p)
    assert rc == 0, "SIGTERM: exit %d:\n%s" % (rc, dur.tail(p.errpath))
    text = open(p.errpath).read()
    assert "state.offset.missing=committed" in text, dur.tail(p.errpath)
    clicks, purchases = dur.final_stats(p.errpath)
    assert (clicks, purchases) == (0, 0), "applied %d, %d; want nothing" % (clicks, purchases)
    log("committed: error logged, resumed at Kafka's committed offsets (the end), "
        "nothing applied; the state's offsets are at the end")
    p = spawn(env, t, state, group)
    dur.wait_until(lambda: p.poll() is not None or
                   "rebalance: assigned" in open(p.errpath).read(), 60, "the assignment")
    rc, _ = dur.sigterm(p)
    text = open(p.errpath).read()
    assert rc == 0 and "state.offset.missing" not in text, "exit %d:\n%s" % (
        rc, dur.tail(p.errpath))
    log("a restart with the default policy: no error, exit 0")


def test_static(a):
    env, t, path, state, group = setup(a, "static", 4000)
    ends = env.ends(t)
    p = spawn(env, t, state, group)
    dur.drain(env, p, state, ends, 120)
    text = open(p.errpath).read()
    assert "static group membership as advrecd." in text, dur.tail(p.errpath)
    dur.kill9(p)
    # The restart: same state dir, so the same group.instance.id; a new
    # event must be applied (the member got its partitions back).
    p = spawn(env, t, state, group)
    t0 = time.monotonic()
    dur.wait_until(lambda: p.poll() is not None or
                   "rebalance: assigned" in open(p.errpath).read(),
                   60, "the restart's assignment")
    assert p.poll() is None, "exit %d:\n%s" % (p.returncode, dur.tail(p.errpath))
    sentinel = os.path.join(env.tmp, "sentinel.csv")
    with open(sentinel, "w") as f:
        f.write("user,item,type,ts\nsentinel-%s,item-1,click,1700000000000\n" % env.tag)
    env.produce(t, sentinel)
    ends2 = env.ends(t)
    dur.drain(env, p, state, ends2, 60)
    log("kill -9, restart with the same group.instance.id: assigned and the new event "
        "applied %.1f s after the spawn" % (time.monotonic() - t0))
    rc, _ = dur.sigterm(p)
    assert rc == 0, "exit %d:\n%s" % (rc, dur.tail(p.errpath))
    clicks, purchases = dur.final_stats(p.errpath)
    assert (clicks, purchases) == (1, 0), "restart applied %d, %d; want (1, 0)" % (
        clicks, purchases)
    assert "state.offset.missing" not in open(p.errpath).read(), dur.tail(p.errpath)
    # Another lineage in the same group: partitions it never owned resume
    # from Kafka's committed offsets, no error.
    other = os.path.join(env.tmp, "other")
    p = spawn(env, t, other, group)
    dur.wait_until(lambda: p.poll() is not None or
                   "rebalance: assigned" in open(p.errpath).read(),
                   60, "the other state's assignment")
    sentinel2 = os.path.join(env.tmp, "sentinel2.csv")
    with open(sentinel2, "w") as f:
        f.write("user,item,type,ts\nsentinel2-%s,item-1,click,1700000000000\n" % env.tag)
    env.produce(t, sentinel2)
    ends3 = env.ends(t)
    dur.drain(env, p, other, {k: v for k, v in ends3.items() if v != ends2[k]}, 60)
    rc, _ = dur.sigterm(p)
    assert rc == 0, "exit %d:\n%s" % (rc, dur.tail(p.errpath))
    text = open(p.errpath).read()
    assert "state.offset.missing" not in text and "behind" not in text, dur.tail(p.errpath)
    clicks, purchases = dur.final_stats(p.errpath)
    assert (clicks, purchases) == (1, 0), "other lineage applied %d, %d; want (1, 0)" % (
        clicks, purchases)
    log("a fresh state dir in the same group resumed from Kafka's committed offsets: "
        "exactly the 1 new click, no error")
    env.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["truncate", "corrupt", "behind", "committed", "static"])
    for k in ("kafka-dir", "src", "advrecd", "gen", "produce", "inspect", "dump"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    {"truncate": test_truncate, "corrupt": test_corrupt, "behind": test_behind,
     "committed": lambda a: test_behind(a, "committed"), "static": test_static}[a.test](a)
    log("PASS %s in %.1f s" % (a.test, time.monotonic() - t0))


if __name__ == "__main__":
    main()
