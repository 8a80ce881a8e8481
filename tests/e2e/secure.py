"""e2e.secure.sasl_ssl: advrec on a broker that only lets clients in over
SASL_SSL (issue 13 point 5), with the secrets kept out of every output.

The broker is the fixture `kafka_secure` (tests/kafka/kafka.sh start --fresh
--secure): a SASL_SSL listener with a throw-away CA, SCRAM-SHA-512 (and PLAIN)
for the user `advrec`; DIR/client.properties holds the librdkafka settings.

Every client authenticates with SCRAM-SHA-512 over TLS: advrecd,
advrec-produce (librdkafka) and kafka-python. The secure broker is Kafka 3.9
(pom.xml kafka.secure.version, DIR/kafka.version), not the 4.x of the other
tests: librdkafka before 2.6.1 (Debian 12 ships 2.0.2) sends a SCRAM
client-final nonce that Kafka 4.x refuses as "invalid credentials"
(librdkafka#4895), Kafka 3.9 accepts it. Checked, in order:

  - advrecd --check-config with the kafka.* security settings exits 0 and
    prints kafka.sasl.password as <redacted>, never the password;
  - kafka-python (SCRAM-SHA-512, ssl_cafile) creates the topics;
  - advrec-produce (-X kafka.security.protocol=SASL_SSL,
    kafka.sasl.mechanisms=SCRAM-SHA-512 ...) produces a generated stream
    (advrec-gen), exit 0, every event delivered;
  - advrecd (a process, -X broker.embedded=false and the same kafka.*)
    handles every event, SIGTERM, exit 0, final counts exact, 0 dlq; its log
    holds no password;
  - kafka-python reads the recommendations topic back: every message decodes
    (schemas/recommendation.avsc, id 3), key == user_id, every user who
    clicked has a list;
  - a wrong SCRAM password is refused: advrecd logs an _AUTHENTICATION
    error ("Authentication failed"), handles nothing, keeps running
    (librdkafka retries: the operator sees the error, the daemon waits),
    stops on SIGTERM with exit 0; neither password is in its log.

The broker must be one that accepts this librdkafka's SCRAM: a Kafka 4.x
secure broker (ADVREC_KAFKA_SECURE_VERSION) with librdkafka < 2.6.1 fails
the test at once, saying so.

Every wait has a deadline; processes started here are killed in a finally.

usage: venv.sh secure.py KAFKA_DIR ADVREC_PRODUCE ADVREC_GEN ADVRECD SOURCE_DIR
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import advrec_kafka as ak
import e2e_common as ec
from e2e_common import fail, say

PARTITIONS = 2
MECH = "SCRAM-SHA-512"
SCRAM_FIXED = (2, 6, 1)  # first librdkafka whose SCRAM Kafka 4.x accepts
AUTH_RE = re.compile(r"_AUTHENTICATION: .*Authentication failed")


def read_properties(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out


def parse_version(text):
    return tuple(int(x) for x in text.strip().split("."))


def librdkafka_version(advrecd):
    cp = subprocess.run([advrecd, "--version"], stdout=subprocess.PIPE, timeout=30,
                        check=True)
    m = re.search(rb"librdkafka (\d+)\.(\d+)\.(\d+)", cp.stdout)
    if not m:
        fail("advrecd --version names no librdkafka version: %r" % cp.stdout)
    return tuple(int(x) for x in m.groups())


def kafka_sets(props, password):
    """advrecd's / advrec-produce's -X settings for the secure listener."""
    return ["kafka.security.protocol=" + props["security.protocol"],
            "kafka.sasl.mechanisms=" + props["sasl.mechanisms"],
            "kafka.sasl.username=" + props["sasl.username"],
            "kafka.sasl.password=" + password,
            "kafka.ssl.ca.location=" + props["ssl.ca.location"]]


def xargs(sets):
    out = []
    for s in sets:
        out += ["-X", s]
    return out


def log_has(path, needle):
    with open(path, errors="replace") as f:
        return needle in f.read()


def expect_refused(procs, advrecd, bs, logdir, topics, sets, secrets, what):
    """advrecd with credentials the broker refuses: an authentication error
    within 30 s, nothing handled, still running; exit 0 on SIGTERM."""
    os.makedirs(logdir)
    d = ec.Daemon(procs, advrecd, bs, logdir, topics + sets + [
        "group.id=e2e-sec-refused-" + uuid.uuid4().hex[:8],
        "state.dir=" + os.path.join(logdir, "state")])
    deadline = time.monotonic() + 30
    while True:
        with open(d.err_path, errors="replace") as f:
            text = f.read()
        if AUTH_RE.search(text):
            break
        if d.p.poll() is not None:
            fail("%s: advrecd exited %d before logging an authentication error:\n%s"
                 % (what, d.p.returncode, d.tail()))
        if time.monotonic() >= deadline:
            fail("%s: no authentication error logged within 30 s:\n%s" % (what, d.tail()))
        time.sleep(0.1)  # polling interval of a bounded wait
    time.sleep(1.0)  # a second more: still nothing consumed, still running
    if d.p.poll() is not None:
        fail("%s: advrecd exited %d after the authentication error, expected it to "
             "keep retrying:\n%s" % (what, d.p.returncode, d.tail()))
    rc, final = d.stop(60)
    if rc != 0:
        fail("%s: advrecd exited %d on SIGTERM, want 0:\n%s" % (what, rc, d.tail()))
    if final["clicks"] + final["purchases"] + final["dlq"] != 0:
        fail("%s: advrecd handled records without authenticating: %s" % (what, final))
    for s in secrets:
        if log_has(d.err_path, s):
            fail("%s: a password appears in advrecd's log" % what)
    line = AUTH_RE.search(open(d.err_path, errors="replace").read()).group(0)
    say("%s: refused (%s...), nothing handled, exit 0 on SIGTERM" % (what, line[:90]))


def main():
    kdir, prod, gen, advrecd, src = sys.argv[1:6]
    bs = ak.bootstrap(kdir)
    props = read_properties(os.path.join(kdir, "client.properties"))
    password = props["sasl.password"]
    if props.get("security.protocol") != "SASL_SSL" or props.get("sasl.mechanisms") != MECH:
        fail("%s/client.properties: want SASL_SSL and %s, got %s and %s"
             % (kdir, MECH, props.get("security.protocol"), props.get("sasl.mechanisms")))
    with open(os.path.join(kdir, "kafka.version")) as f:
        kver = parse_version(f.read())
    ver = librdkafka_version(advrecd)
    if kver >= (4,) and ver < SCRAM_FIXED:
        fail("the secure broker is Kafka %s, which refuses the SCRAM of librdkafka %s "
             "(librdkafka#4895, fixed in 2.6.1): run it on Kafka 3.9 (pom.xml "
             "kafka.secure.version; unset ADVREC_KAFKA_SECURE_VERSION)"
             % (".".join(map(str, kver)), ".".join(map(str, ver))))
    say("secure broker Kafka %s at %s; every client on SASL_SSL + %s (librdkafka %s, "
        "kafka-python)" % (".".join(map(str, kver)), bs, MECH, ".".join(map(str, ver))))
    py_sec = dict(security_protocol="SASL_SSL", sasl_mechanism=MECH,
                  sasl_plain_username=props["sasl.username"], sasl_plain_password=password,
                  ssl_cafile=props["ssl.ca.location"])
    good = kafka_sets(props, password)
    rec_schema = ak.load_schema(os.path.join(src, "schemas", "recommendation.avsc"))
    tmp = tempfile.mkdtemp(prefix="advrec-e2e-secure.")
    procs = ec.Procs()
    try:
        # --check-config: the effective configuration, secrets redacted.
        cp = subprocess.run([advrecd, "--check-config", "-X", "broker.embedded=false",
                             "-X", "kafka.bootstrap.servers=" + bs] + xargs(good),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = cp.stdout.decode() + cp.stderr.decode()
        if cp.returncode != 0:
            fail("advrecd --check-config exited %d:\n%s" % (cp.returncode, out[-2000:]))
        if password in out:
            fail("advrecd --check-config prints the SASL password")
        if "\nkafka.sasl.password = <redacted>\n" not in cp.stdout.decode():
            fail("advrecd --check-config does not show kafka.sasl.password as <redacted>:\n%s"
                 % out[-2000:])
        say("--check-config: kafka.sasl.password = <redacted>")

        run = uuid.uuid4().hex[:8]
        t = {k: "e2e-sec-%s.%s" % (run, k)
             for k in ("clicks", "purchases", "recs", "anomalies", "dlq")}
        for k in ("clicks", "purchases"):
            ak.create_topic(bs, t[k], PARTITIONS, {"retention.ms": "-1"}, **py_sec)
        ak.create_topic(bs, t["recs"], PARTITIONS, {"cleanup.policy": "compact"}, **py_sec)
        ak.create_topic(bs, t["anomalies"], 1, **py_sec)
        ak.create_topic(bs, t["dlq"], 1, **py_sec)
        say("kafka-python (SASL_SSL, SCRAM-SHA-512) created 5 topics")

        path = os.path.join(tmp, "gen.csv")
        events = ec.generate(gen, path, seed=13, users=150, items=100, events=1500)
        n_clicks = sum(1 for e in events if e[3] == "click")
        n_purchases = len(events) - n_clicks
        clickers = {e[1] for e in events if e[3] == "click"}

        cp = subprocess.run([prod, "-b", bs, "-f", "csv", "-q", "--click-topic", t["clicks"],
                             "--purchase-topic", t["purchases"]] + xargs(good) + [path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        perr = cp.stderr.decode(errors="replace")
        if cp.returncode != 0:
            fail("advrec-produce exited %d:\n%s" % (cp.returncode, perr[-3000:]))
        if password in perr or password in cp.stdout.decode(errors="replace"):
            fail("advrec-produce printed the SASL password")
        say("advrec-produce (SASL_SSL, SCRAM-SHA-512) produced %d clicks, %d purchases"
            % (n_clicks, n_purchases))

        topics = ["topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
                  "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
                  "topic.dlq=" + t["dlq"]]
        d = ec.Daemon(procs, advrecd, bs, tmp, topics + good + [
            "group.id=e2e-sec-" + run, "recs.n=5",
            "state.dir=" + os.path.join(tmp, "state")])
        d.await_stats(lambda s: s["clicks"] + s["purchases"] + s["dlq"] >= len(events), 60,
                      "stats line with all %d events handled" % len(events))
        rc, final = d.stop(60)
        if rc != 0:
            fail("advrecd exited %d, want 0:\n%s" % (rc, d.tail()))
        want = {"clicks": n_clicks, "purchases": n_purchases, "dlq": 0, "stale": 0}
        got = {k: final[k] for k in want}
        if got != want:
            fail("final stats %s, want %s\n%s" % (got, want, d.tail()))
        if log_has(d.err_path, password):
            fail("the SASL password appears in advrecd's log")
        say("advrecd (SASL_SSL, SCRAM-SHA-512) handled every event, exit 0; final %s" % final)

        recs = ak.consume(bs, t["recs"], expected=final["lists"], timeout_s=60, **py_sec)
        if len(recs) != final["lists"]:
            fail("%s holds %d messages, the daemon counted %d lists"
                 % (t["recs"], len(recs), final["lists"]))
        users = set()
        for r, v in ak.decode_all(rec_schema, recs, 3):
            if r.key != v["user_id"].encode():
                fail("%s/%d@%d: key %r, user_id %r"
                     % (r.topic, r.partition, r.offset, r.key, v["user_id"]))
            users.add(v["user_id"])
        missing = clickers - users
        if missing:
            fail("%d users who clicked have no list, e.g. %s"
                 % (len(missing), sorted(missing)[:10]))
        say("kafka-python (SASL_SSL, SCRAM-SHA-512) read %d lists; all %d clickers served"
            % (len(recs), len(clickers)))

        wrong = "wrong-" + uuid.uuid4().hex
        expect_refused(procs, advrecd, bs, os.path.join(tmp, "wrong"), topics,
                       kafka_sets(props, wrong), [wrong, password],
                       "wrong password (%s)" % MECH)
    finally:
        procs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
