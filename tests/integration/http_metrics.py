#!/usr/bin/env python3
"""advrecd's HTTP endpoint, scraped by a real HTTP client (urllib).

    http_metrics.py ADVRECD ITEST_PRODUCE SOURCE_DIR

Starts advrecd as a process on its embedded broker with http.listen on
127.0.0.1:0 (the bound port is read from its log), checks /health/ready is
503 with a reason until partitions are assigned and then 200, produces a
generated stream with malformed records mixed in (itest_produce), polls
/metrics until every record is counted, and checks the families against
what was produced: events by topic and type, dead letters and decode
failures by reason, training steps, lists, histograms, lag, store and
memory gauges. The scraped text must pass `promtool check metrics`
(promtool missing is a failure, not a skip). Then SIGTERM: exit 0 and
/health/live no longer answering 200 while it stops is not required, only
the clean exit. Every wait is a poll with a deadline.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

advrecd, produce, src = sys.argv[1:4]
failures = []


def fail(msg):
    print("FAIL " + msg, flush=True)
    failures.append(msg)


def get(port, path):
    """(status, body) of GET path; the status of an HTTP error too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def await_(what, fn, seconds):
    """Polls fn() until it returns a true value, up to seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"FAIL timed out after {seconds} s waiting for {what}")


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            fail(f"unparsable sample line: {line!r}")
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


promtool = shutil.which("promtool")
if not promtool:
    print("FAIL promtool not found: install the Debian package prometheus "
          "(tools/install-deps.sh)")
    sys.exit(1)

tmp = tempfile.mkdtemp(prefix="advrec-http.")
err_path = os.path.join(tmp, "err")
with open(err_path, "w") as err, open(os.devnull, "w") as out:
    daemon = subprocess.Popen(
        [advrecd, "-c", os.path.join(src, "conf/advrecd.conf"),
         "-X", f"state.dir={tmp}/state", "-X", "http.listen=127.0.0.1:0",
         "-X", "stats.interval.ms=1000", "-X", "metrics.prequential.every=7",
         "-X", "recs.debounce.ms=100", "-X", "broker.embedded.partitions=4"],
        stdout=out, stderr=err)
try:
    def log():
        with open(err_path) as f:
            return f.read()

    port = int(await_("the bound port in the log", lambda: (re.search(
        r"http: serving .* \(port (\d+)\)", log()) or [None, None])[1], 30))
    bootstrap = await_("the embedded broker's address", lambda: (re.search(
        r"embedded broker .* at (\S+?);", log()) or [None, None])[1], 30)
    print(f"http port {port}, broker {bootstrap}", flush=True)

    status, body = get(port, "/health/ready")
    if status == 503 and not body.startswith("not ready: "):
        fail(f"/health/ready 503 without a reason: {body!r}")
    await_("/health/ready 200",
           lambda: get(port, "/health/ready")[0] == 200, 60)
    status, body = get(port, "/health/live")
    if status != 200:
        fail(f"/health/live {status}: {body!r}")
    if get(port, "/nope")[0] != 404:
        fail("an unknown path is not 404")

    p = subprocess.run([produce, bootstrap, "3000", "0", "11", "25"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise SystemExit(f"FAIL itest_produce: {p.stderr}")
    m = re.search(r"counts clicks (\d+) purchases (\d+) bad-magic (\d+) "
                  r"short-frame (\d+)", p.stdout)
    clicks, purchases, bad_magic, short = map(int, m.groups())
    total = clicks + purchases + bad_magic + short
    print(f"produced {clicks} clicks, {purchases} purchases, {bad_magic} "
          f"bad-magic, {short} short-frame", flush=True)

    def all_counted():
        s = parse(get(port, "/metrics")[1])
        done = val(s, "advrec_records_consumed_total") == total and \
            (val(s, "advrec_lists_published_total", kind="model") or 0) + \
            (val(s, "advrec_lists_published_total", kind="popular") or 0) > 0
        return s if done else None

    s = await_(f"advrec_records_consumed_total == {total}", all_counted, 120)
    expect = [
        ("advrec_events_total", dict(topic="advrec.clicks", type="click"),
         clicks),
        ("advrec_events_total",
         dict(topic="advrec.purchases", type="purchase"), purchases),
        ("advrec_events_total", dict(topic="advrec.clicks", type="purchase"),
         0),
        ("advrec_dead_letters_total", dict(reason="bad-magic"), bad_magic),
        ("advrec_dead_letters_total", dict(reason="short-frame"), short),
        ("advrec_dead_letters_total", dict(reason="table-full"), 0),
        ("advrec_decode_failures_total", dict(reason="bad-magic"), bad_magic),
        ("advrec_decode_failures_total", dict(reason="short-frame"), short),
    ]
    for name, labels, want in expect:
        have = val(s, name, **labels)
        if have != want:
            fail(f"{name}{labels}: {have}, expected {want}")
    positive = ["advrec_model_updates_total", "advrec_negatives_total",
                "advrec_rounds_total",
                "advrec_round_duration_seconds_count",
                "advrec_refresh_duration_seconds_count",
                "advrec_list_staleness_seconds_count",
                "advrec_prequential_samples_total", "advrec_training_loss",
                "advrec_partitions_assigned", "advrec_resident_memory_bytes",
                "advrec_users", "advrec_items"]
    for name in positive:
        if not (val(s, name) or 0) > 0:
            fail(f"{name} is {val(s, name)}, expected > 0")
    if val(s, "advrec_partitions_assigned") != 8:
        fail(f"advrec_partitions_assigned {val(s, 'advrec_partitions_assigned')}"
             ", expected 8 (2 topics x 4)")
    if val(s, "advrec_store_sst_bytes") is None or \
            val(s, "advrec_store_sst_bytes") < 0:
        fail("advrec_store_sst_bytes missing or negative with a state.dir")
    if not 0 < val(s, "advrec_training_loss") < 10:
        fail(f"advrec_training_loss {val(s, 'advrec_training_loss')}")
    if val(s, "advrec_prequential_hits_total") > \
            val(s, "advrec_prequential_samples_total"):
        fail("more prequential hits than samples")
    # One training step per negative (no replay steps here).
    if val(s, "advrec_negatives_total") != \
            val(s, "advrec_model_updates_total"):
        fail(f"advrec_negatives_total {val(s, 'advrec_negatives_total')} != "
             f"advrec_model_updates_total "
             f"{val(s, 'advrec_model_updates_total')}")

    # librdkafka's statistics come every 5 s: lag of each input partition,
    # 0 once everything is consumed.
    def lags():
        s = parse(get(port, "/metrics")[1])
        return {k: v for k, v in s.items()
                if k[0] == "advrec_consumer_lag_messages"}
    lag = await_("advrec_consumer_lag_messages series", lambda: len(
        lags()) == 8 and all(v == 0 for v in lags().values()) and lags(), 30)
    print(f"{len(lag)} lag series, all 0", flush=True)

    text = get(port, "/metrics")[1]
    for family in ["advrec_events_total", "advrec_dead_letters_total",
                   "advrec_decode_failures_total", "advrec_model_updates_total",
                   "advrec_training_loss", "advrec_prequential_hits_total",
                   "advrec_lists_published_total",
                   "advrec_list_staleness_seconds",
                   "advrec_refresh_duration_seconds",
                   "advrec_round_duration_seconds",
                   "advrec_anomaly_flags_total",
                   "advrec_anomaly_flag_reasons_total",
                   "advrec_consumer_lag_messages", "advrec_store_sst_bytes",
                   "advrec_store_pending_compaction_bytes",
                   "advrec_resident_memory_bytes",
                   "advrec_memory_limit_bytes", "advrec_memory_used_bytes",
                   "advrec_memory_pressure"]:
        if f"# TYPE {family} " not in text:
            fail(f"family {family} missing")
    pc = subprocess.run([promtool, "check", "metrics"], input=text,
                        capture_output=True, text=True)
    if pc.returncode != 0:
        fail(f"promtool check metrics: {pc.stdout}{pc.stderr}")
    else:
        print("promtool check metrics: ok", flush=True)

    daemon.send_signal(signal.SIGTERM)
    try:
        rc = daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail("no exit within 60 s of SIGTERM")
        rc = None
    if rc is not None and rc != 0:
        fail(f"exit {rc} after SIGTERM")
finally:
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    if failures:
        print(open(err_path).read()[-4000:])
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
