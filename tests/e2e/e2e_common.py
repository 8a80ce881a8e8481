"""Shared pieces of advrec's end-to-end tests (label e2e, real Kafka broker).

Independent of our C code on purpose: the source files are parsed here, in
Python, from the formats documented in docs/PRODUCE.md (not with tools/lib/reader),
records are read with kafka-python and decoded with fastavro (tests/py/
advrec_kafka.py), and partitions are recomputed with kafka-python's murmur2
(the Java client's DefaultPartitioner). advrecd and advrec-produce are only
run as processes.

Every wait is bounded by a deadline; every process started here is killed by
Procs.cleanup() (scripts call it in a finally).
"""

import datetime
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from kafka.partitioner.default import murmur2

# Timestamps the reader accepts: 1990-01-01 .. 2100-01-01 (docs/PRODUCE.md).
TS_MIN_MS = 631152000000
TS_MAX_MS = 4102444800000
ID_MAX = 255  # bytes of an id


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.stdout.flush()
    sys.exit(1)


T0 = time.monotonic()


def say(msg):
    print("[%5.1f s] %s" % (time.monotonic() - T0, msg))
    sys.stdout.flush()


def java_partition(key, partitions):
    """The partition the Java client's default partitioner picks for key."""
    if isinstance(key, str):
        key = key.encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def ms(dt):
    """Milliseconds since the epoch of a decoded timestamp-millis value."""
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1)


def shared_data(source_dir, rel):
    """Path of a shared data file, or None when absent: ADVREC_SHARED_DATA if
    set, else shared/data next to the project (../shared/data), looked for
    in each ancestor of source_dir in turn (a git worktree sits deeper)."""
    env = os.environ.get("ADVREC_SHARED_DATA")
    if env:
        bases = [env]
    else:
        bases, d = [], os.path.dirname(os.path.abspath(source_dir))
        while True:
            bases.append(os.path.join(d, "shared", "data"))
            if os.path.dirname(d) == d:
                break
            d = os.path.dirname(d)
    for base in bases:
        path = os.path.join(base, rel)
        if os.path.isfile(path):
            return path
    return None


# --- independent parsers of the source formats ------------------------------
#
# An event is (line, user, item, kind, ts_ms) with kind "click"/"purchase";
# a parser returns (events, malformed line numbers).

def _good_id(s):
    b = s.encode()
    return 0 < len(b) <= ID_MAX and b"\0" not in b


def _good_ts(s, scale):
    if not s.isdigit():
        return None
    ts = int(s) * scale
    return ts if TS_MIN_MS <= ts < TS_MAX_MS else None


def _lines(path):
    with open(path, "rb") as f:
        for no, raw in enumerate(f, 1):
            yield no, raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n")


def parse_taobao(path, cart="click", fav="click"):
    """user,item,category,behavior,unix_ts(s): pv->click, buy->purchase,
    cart/fav -> the mapping ("skip" drops them)."""
    kinds = {"pv": "click", "buy": "purchase", "cart": cart, "fav": fav}
    events, bad = [], []
    for no, line in _lines(path):
        if not line.strip():
            continue
        f = line.split(",")
        ts = _good_ts(f[4], 1000) if len(f) == 5 else None
        if (len(f) != 5 or not _good_id(f[0]) or not _good_id(f[1])
                or f[3] not in kinds or ts is None):
            bad.append(no)
            continue
        if kinds[f[3]] != "skip":
            events.append((no, f[0], f[1], kinds[f[3]], ts))
    return events, bad


def parse_csv(path):
    """user,item,type,ts_ms (advrec-gen's output), optional header line 1."""
    events, bad = [], []
    for no, line in _lines(path):
        if not line.strip():
            continue
        f = line.split(",")
        if no == 1 and len(f) == 4 and f[2] not in ("click", "purchase") \
                and not f[3].isdigit():
            continue  # header
        ts = _good_ts(f[3], 1) if len(f) == 4 else None
        if (len(f) != 4 or not _good_id(f[0]) or not _good_id(f[1])
                or f[2] not in ("click", "purchase") or ts is None):
            bad.append(no)
            continue
        events.append((no, f[0], f[1], f[2], ts))
    return events, bad


def generate(gen, path, seed, users, items, events):
    """Writes advrec-gen's CSV of that size to path; returns parse_csv's
    events, failing if any line is malformed."""
    subprocess.run([gen, "--seed", str(seed), "--users", str(users), "--items", str(items),
                    "--events", str(events), "-q", "-o", path], check=True, timeout=60)
    parsed, bad = parse_csv(path)
    if bad:
        fail("advrec-gen wrote %d malformed lines (first: %d) to %s" % (len(bad), bad[0], path))
    return parsed


# --- Kafka's own tools -------------------------------------------------------

def make_topics(kafka_sh, kdir, specs, timeout_s=120):
    """Creates topics with Kafka's TopicCommand (kafka.sh topics)."""
    subprocess.run([kafka_sh, "topics", kdir] + list(specs), check=True,
                   timeout=timeout_s)


KSEP = b"<<KEY|VALUE>>"
RSEP = b"<<END-OF-RECORD>>"


def java_consume(kafka_sh, kdir, topic, n, timeout_s=120):
    """Reads n records of topic from the beginning with Kafka's Java
    ConsoleConsumer; returns {(partition, offset): (key, value)}."""
    cmd = [kafka_sh, "consume", kdir, topic, "--from-beginning",
           "--max-messages", str(n), "--timeout-ms", "30000",
           "--property", "print.partition=true",
           "--property", "print.offset=true",
           "--property", "print.key=true",
           "--property", "key.separator=" + KSEP.decode(),
           "--property", "line.separator=" + RSEP.decode()]
    cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=timeout_s)
    if cp.returncode != 0:
        fail("console consumer on %s exited %d: %s"
             % (topic, cp.returncode, cp.stderr.decode(errors="replace")[-2000:]))
    got = {}
    chunks = cp.stdout.split(RSEP)
    if chunks[-1].strip():
        fail("console consumer output does not end with a record: %r" % chunks[-1][:200])
    for chunk in chunks[:-1]:
        fields = chunk.split(KSEP)
        if (len(fields) != 4 or not fields[0].startswith(b"Partition:")
                or not fields[1].startswith(b"Offset:")):
            fail("unexpected console consumer record: %r" % chunk[:200])
        pos = (int(fields[0][len(b"Partition:"):]), int(fields[1][len(b"Offset:"):]))
        if pos in got:
            fail("console consumer printed %s twice" % (pos,))
        got[pos] = (fields[2], fields[3])
    return got


# --- processes ----------------------------------------------------------------

class Procs:
    """Processes started by a test; cleanup() kills what is still running."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


STATS_RE = re.compile(
    r"(stats|final): .*total (\d+) clicks, (\d+) purchases, (\d+) lists, "
    r"(\d+) dlq[^;]*; (\d+) users(?: \([^)]*\))?, (\d+) items, (\d+) stale")
STATS_KEYS = ("clicks", "purchases", "lists", "dlq", "users", "items", "stale")


def stats_lines(path):
    """[(kind, {clicks, purchases, lists, dlq, users, items, stale})] of the
    daemon's stats and final lines in its log file."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = STATS_RE.search(line)
            if m:
                out.append((m.group(1), dict(zip(STATS_KEYS, map(int, m.groups()[1:])))))
    return out


SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset((label, value), ...)): float} of the sample lines of
    Prometheus text; raises ValueError on a line that is not one."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("not a Prometheus sample line: %r" % line)
        out[(m.group(1), frozenset(LABEL_RE.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """The value of one sample of parse_metrics() output, None when absent."""
    return samples.get((name, frozenset(labels.items())))


class Daemon:
    """advrecd as a process on the real broker, logging to LOGDIR/advrecd.err.

    Topics, group and state dir are the caller's -X settings; added here:
    broker.embedded=false, the bootstrap, a short stats interval. For
    metrics() the caller sets http.listen=127.0.0.1:0 (the port is read
    from the log)."""

    def __init__(self, procs, advrecd, bs, logdir, sets):
        self.err_path = os.path.join(logdir, "advrecd.err")
        self.out_path = os.path.join(logdir, "advrecd.out")
        argv = [advrecd, "-X", "broker.embedded=false",
                "-X", "kafka.bootstrap.servers=" + bs,
                "-X", "stats.interval.ms=200", "-X", "log.level=info"]
        for s in sets:
            argv += ["-X", s]
        self.argv = argv
        self.t0 = time.monotonic()
        self.t_first = None  # when await_stats first saw a record handled
        self.port = None  # of the HTTP endpoint, once http_port() read it
        with open(self.err_path, "wb") as err, open(self.out_path, "wb") as out:
            self.p = procs.start(argv, stdout=out, stderr=err)

    def tail(self, n=30):
        with open(self.err_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def await_(self, fn, timeout_s, what):
        """Polls fn() until it returns (v, True); returns v. Fails on timeout
        (naming what and the last v) or when the daemon exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            v, done = fn()
            if done:
                return v
            if self.p.poll() is not None:
                fail("advrecd exited (%d) before %s:\n%s" % (self.p.returncode, what, self.tail()))
            if time.monotonic() >= deadline:
                fail("advrecd: no %s within %d s; last seen %s\n%s"
                     % (what, timeout_s, v, self.tail()))
            time.sleep(0.1)  # polling interval of a bounded wait

    def await_stats(self, pred, timeout_s, what):
        """Polls the stats lines until pred(stats) holds; returns those stats.
        Fails on timeout or when the daemon exits first."""
        def check():
            lines = stats_lines(self.err_path)
            if lines and self.t_first is None and sum(
                    lines[-1][1][k] for k in ("clicks", "purchases", "dlq")):
                self.t_first = time.monotonic()
            return (lines[-1][1] if lines else None), bool(lines) and pred(lines[-1][1])
        return self.await_(check, timeout_s, what)

    def await_log(self, pattern, timeout_s, what, start=0):
        """Polls the log (from byte start) until the regex pattern matches;
        returns the match."""
        rx = re.compile(pattern)

        def check():
            with open(self.err_path, errors="replace") as f:
                f.seek(start)
                m = rx.search(f.read())
            return m, m is not None
        return self.await_(check, timeout_s, what)

    def log_size(self):
        """Bytes in the log so far (a start for await_log)."""
        return os.path.getsize(self.err_path)

    def http_port(self, timeout_s=30):
        """The port of the HTTP endpoint, from the log line that names it."""
        if self.port is None:
            m = self.await_log(r"http: serving .*\(port (\d+)\)", timeout_s,
                               "log line naming the HTTP port")
            self.port = int(m.group(1))
        return self.port

    def metrics(self):
        """parse_metrics() of GET /metrics."""
        url = "http://127.0.0.1:%d/metrics" % self.http_port()
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse_metrics(r.read().decode())

    def await_metrics(self, pred, timeout_s, what):
        """Polls /metrics until pred(samples) holds; returns those samples."""
        def check():
            samples = self.metrics()
            return samples, pred(samples)
        return self.await_(check, timeout_s, what)

    def stop(self, timeout_s):
        """SIGTERM, bounded wait; returns (exit code, final stats)."""
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            fail("advrecd still running %d s after SIGTERM:\n%s" % (timeout_s, self.tail()))
        finals = [s for k, s in stats_lines(self.err_path) if k == "final"]
        if not finals:
            fail("advrecd (exit %d) logged no final stats line:\n%s" % (rc, self.tail()))
        return rc, finals[-1]
