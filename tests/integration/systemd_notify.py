#!/usr/bin/env python3
"""advrecd's sd_notify protocol, read off a NOTIFY_SOCKET this test owns.

    systemd_notify.py ADVRECD ITEST_PRODUCE SOURCE_DIR

No systemd is needed: libsystemd's sd_notify() sends datagrams to whatever
AF_UNIX socket NOTIFY_SOCKET names. The test binds one, starts advrecd on
its embedded broker with NOTIFY_SOCKET and WATCHDOG_USEC=1000000 (what
WatchdogSec=1 gives a service), produces a short stream into it, sends
SIGTERM and asserts, in arrival order:
  READY=1 first; then WATCHDOG=1 (several, about every 500 ms: half the
  interval) and STATUS= lines with the counters; then STOPPING=1, after
  which no WATCHDOG=1; exit 0.
A second run without WATCHDOG_USEC must send no WATCHDOG=1 at all.
Skipped (77) when advrecd was built without libsystemd (no READY=1 ever).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

advrecd, produce, src = sys.argv[1:4]
failures = []


def fail(msg):
    print("FAIL", msg)
    failures.append(msg)


def run(tmp, name, watchdog_usec):
    """Runs advrecd once; returns (messages with arrival times, exit code)."""
    path = os.path.join(tmp, name + ".sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop("WATCHDOG_PID", None)
    env.pop("WATCHDOG_USEC", None)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    err = open(os.path.join(tmp, name + ".err"), "w+")
    d = subprocess.Popen(
        [advrecd, "-c", os.path.join(src, "conf/advrecd.conf"),
         "-X", "state.dir=" + os.path.join(tmp, name + ".state"),
         "-X", "stats.interval.ms=200", "-X", "recs.debounce.ms=100",
         "-X", "recs.max.staleness.ms=500"],
        stdout=subprocess.PIPE, stderr=err, env=env, text=True)
    msgs = []
    t0 = time.monotonic()

    def drain(until):
        while time.monotonic() < until:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                if d.poll() is not None:
                    return
                continue
            for line in data.splitlines():
                msgs.append((time.monotonic() - t0, line))

    bootstrap = d.stdout.readline().strip()  # printed once consuming
    rc = None
    if not bootstrap.startswith("127.0.0.1:"):
        fail(f"{name}: no bootstrap address on stdout (got {bootstrap!r})")
    else:
        p = subprocess.run([produce, bootstrap, "2000", "2000", "3"],
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            fail(f"{name}: itest_produce exited {p.returncode}")
        drain(time.monotonic() + 2.5)
        d.send_signal(signal.SIGTERM)
    try:
        drain(time.monotonic() + 40)
        rc = d.wait(timeout=5)
    except subprocess.TimeoutExpired:
        fail(f"{name}: advrecd still running 45 s after SIGTERM")
        d.kill()
        d.wait()
    drain(time.monotonic() + 0.3)  # anything still queued on the socket
    sock.close()
    err.seek(0)
    log = err.read()
    err.close()
    if rc != 0:
        fail(f"{name}: exit {rc}, want 0")
        print(log[-3000:])
    return msgs, rc, log


with tempfile.TemporaryDirectory(prefix="advrec-notify.") as tmp:
    msgs, rc, log = run(tmp, "watchdog", 1000000)
    kinds = [m.split("=", 1)[0] + "=" for _, m in msgs]
    print("received:", " ".join(
        f"{t:.1f}s:{m if not m.startswith('STATUS=') else 'STATUS=...'}"
        for t, m in msgs))
    if "READY=" not in kinds:
        if not msgs and rc == 0:
            print("SKIP: no notification at all (built without libsystemd?)")
            sys.exit(77)
        fail("no READY=1")
    else:
        if kinds[0] != "READY=":
            fail(f"first message is {msgs[0][1]!r}, want READY=1")
        if "STOPPING=" not in kinds:
            fail("no STOPPING=1")
        else:
            stop = kinds.index("STOPPING=")
            run_part = kinds[1:stop]
            wd = [t for (t, m) in msgs[1:stop] if m == "WATCHDOG=1"]
            if len(wd) < 3:
                fail(f"{len(wd)} WATCHDOG=1 between READY=1 and STOPPING=1 "
                     "(2.5 s at one per 500 ms: want >= 3)")
            gaps = [b - a for a, b in zip(wd, wd[1:])]
            if gaps and max(gaps) > 0.9:
                fail(f"WATCHDOG=1 gaps up to {max(gaps):.2f} s; want about "
                     "0.5 s (half of WATCHDOG_USEC=1 s)")
            if "STATUS=" not in run_part:
                fail("no STATUS= between READY=1 and STOPPING=1")
            elif not any("events" in m and "users" in m
                         for _, m in msgs[1:stop] if m.startswith("STATUS=")):
                fail("STATUS= lines carry no counters")
            if "WATCHDOG=" in kinds[stop:]:
                fail("WATCHDOG=1 after STOPPING=1")
            if kinds.count("READY=") != 1 or kinds.count("STOPPING=") != 1:
                fail("READY=1 or STOPPING=1 sent more than once")
    if "systemd watchdog: WATCHDOG=1 every 500 ms" not in log:
        fail("no 'systemd watchdog: WATCHDOG=1 every 500 ms' log line")

    msgs, rc, log = run(tmp, "nowatchdog", 0)
    kinds = [m.split("=", 1)[0] + "=" for _, m in msgs]
    if "WATCHDOG=" in kinds:
        fail("WATCHDOG=1 sent without WATCHDOG_USEC")
    if kinds[:1] != ["READY="] or "STOPPING=" not in kinds:
        fail(f"without a watchdog: got {kinds}, want READY=1 ... STOPPING=1")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
