"""e2e.registry: advrecd and advrec-produce with a real Schema Registry
(issue 17), checked with Confluent's own Python client.

The registry is Apicurio Registry 3.0.9 (tests/registry/registry.sh: in
memory, global compatibility BACKWARD, the Confluent-compatible API at
DIR/url), started by this test in a temporary directory of its own, since
the test pauses it. The broker is the shared fixture `kafka`. The
independent client is confluent-kafka's SchemaRegistryClient with its
AvroSerializer/AvroDeserializer (tests/py/requirements.txt); raw HTTP
(urllib) where the registry's exact answer matters; kafka-python moves the
bytes. advrecd runs as a process with -X schema.registry.url=URL,
schema.registry.basic.auth.user.info=USER:SECRET, a short
schema.registry.timeout.ms and retry.backoff.ms, http.listen on a free port,
and no schema.<N> line (until step 6). Applied events, dead letters and
advrec_schema_registry_up are read from its /metrics. Checked, in order:

  1. The registry starts with the global level BACKWARD. advrecd
     --check-config with the registry settings exits 0 and shows
     schema.registry.basic.auth.user.info = <redacted>, never the secret.
     Before anything else, two schemas that do not resolve against our Click
     reader are registered, each as the first version of a subject of its
     own (a first version is never checked; on Apicurio a subject's NONE
     does not lift the global BACKWARD): com.advrec.v1.Click with an int
     item_id and com.example.PageView. On the fresh registry they take ids
     1 and 2 (asserted), so every id below differs from the one the
     built-in schema.1..4 (click, purchase, recommendation, anomaly) would
     give it: any built-in still mapped would misread a record.
  2. advrec-produce --registry URL together with --click-schema-id is a
     usage error (exit 64, nothing produced). advrec-produce --registry URL
     replays an advrec-gen CSV: exit 0; subjects <clicks>-value and
     <purchases>-value hold schemas/click.avsc and purchase.avsc (docs
     aside); every record's frame carries its subject's id and decodes with
     the Confluent AvroDeserializer to exactly the CSV's events of its type.
  3. advrecd starts: subjects <recommendations>-value and <anomalies>-value
     appear with schemas/recommendation.avsc and anomaly.avsc; every CSV
     event is applied (advrec_events_total by topic), nothing is dead
     lettered, advrec_schema_registry_up is 1.
  4. A new compatible Click version (click.avsc + optional `referrer`),
     registered by the Confluent AvroSerializer under <clicks>-value and
     used for new clicks, is applied without a config change. Four bad
     records: a schema id the registry does not know (checked: 404, 40403)
     -> one dead letter `unknown-schema`; the int-item Click and the
     PageView -> two `incompatible-schema`; a Recommendation framed with
     the registry's id for ours -> `wrong-kind`.
  5. A third Click version is registered and clicks serialized with it
     while the registry is up; the registry is paused (SIGSTOP); those
     clicks, then clicks of a known id by the same users, are produced.
     advrecd logs `schema registry unreachable`, /metrics shows
     advrec_schema_registry_up 0, the dead letters are unchanged and the new
     version's clicks are not applied (their schema cannot be known). After
     resume: every one of those clicks is applied, no dead letter was added,
     advrec_schema_registry_up is 1.
  6. Restart while the registry is down: advrecd SIGTERMed (exit 0), the
     registry paused, clicks of every id seen before (advrec-produce's and
     both new versions), purchases, and click_v0 records framed with the id
     of a schema the registry holds but that does not resolve (registered
     for this) are produced; advrecd restarted on the same state.dir with
     an explicit schema.<that id> = click_v0.avsc. Every record is applied,
     nothing dead lettered, and the lists it publishes meanwhile carry the
     recommendation id it had from the registry. The registry resumed, a
     fourth Click version (new to advrecd) and more records of the explicit
     id are produced: all applied, advrec_schema_registry_up 1, still no
     dead letter (the explicit line wins over the registry). SIGTERM,
     exit 0.
  7. After the resume: <recommendations>-value has exactly one version, and
     every message on the recommendations topic carries its id, decodes with
     the Confluent AvroDeserializer, is keyed by its user_id, and every user
     who clicked has a list; anomalies (if any) carry the anomaly subject's
     id; the DLQ holds exactly the four bad records (original key, value
     and input header; advrec.error, advrec.error.message and the source
     headers); neither advrecd log holds the basic-auth secret.
  8. Basic authentication, through a front (AuthFront, in this file) that
     demands it and forwards to the registry (Apicurio's own auth needs an
     OIDC server): advrec-produce --registry with a wrong password exits 69
     naming HTTP 401 (nothing let through), with the right one
     ($ADVREC_REGISTRY_USER_INFO) registers its subjects; advrecd with a
     wrong password waits at start logging the 401, with the right one
     registers its schemas through the front (the id it logs is the
     registry's); the secret is in no log. Then a subject whose latest
     version our Recommendation cannot read (model_version a string):
     advrecd exits 78 naming the subject, and the subject keeps its one
     version.

Every wait has a deadline; advrecd and the registry are stopped in a finally
(also on SIGTERM from a ctest timeout). About 32 s.

usage: venv.sh registry.py KAFKA_DIR REGISTRY_SH ADVRECD ADVREC_PRODUCE ADVREC_GEN SOURCE_DIR
"""

import copy
import datetime
import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import advrec_kafka as ak
import e2e_common as ec
from e2e_common import fail, say

PARTITIONS = 4
T0 = datetime.datetime(2026, 3, 2, 8, 0, 0, tzinfo=datetime.timezone.utc)
WAIT_S = 60  # bound of each wait for advrecd
OPTIONAL_STRING = ["null", "string"]


def at(i):
    return T0 + datetime.timedelta(seconds=i)


# --- the registry, over raw HTTP ----------------------------------------------

class Registry:
    """The registry's Confluent-compatible API at url, with urllib."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None):
        """(HTTP status, decoded JSON body or None)."""
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")

    def ok(self, method, path, body=None):
        status, doc = self.call(method, path, body)
        if status != 200:
            fail("registry %s %s: HTTP %d %s" % (method, path, status, doc))
        return doc

    def register(self, subject, schema):
        """POST /subjects/S/versions of a schema dict; returns the id."""
        return self.ok("POST", "/subjects/%s/versions" % subject,
                       {"schema": json.dumps(schema)})["id"]

    def latest(self, subject):
        """(id, schema dict) of the subject's latest version, None if none."""
        status, doc = self.call("GET", "/subjects/%s/versions/latest" % subject)
        if status == 404:
            return None
        if status != 200:
            fail("registry GET latest of %s: HTTP %d %s" % (subject, status, doc))
        return doc["id"], json.loads(doc["schema"])

    def versions(self, subject):
        return self.ok("GET", "/subjects/%s/versions" % subject)


def registry_sh(sh, *args):
    cp = subprocess.run([sh] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=180)
    if cp.returncode != 0:
        fail("registry.sh %s exited %d:\n%s" % (" ".join(args), cp.returncode,
                                               cp.stderr.decode(errors="replace")[-3000:]))
    return cp.stdout.decode().strip()


def without_docs(schema):
    """A schema dict with every "doc" removed: what a registered schema must
    keep of its .avsc (names, types, defaults, order)."""
    if isinstance(schema, dict):
        return {k: without_docs(v) for k, v in schema.items() if k != "doc"}
    if isinstance(schema, list):
        return [without_docs(v) for v in schema]
    return schema


def expect_subject(reg, subject, avsc_path):
    """The subject's latest (id, schema) once it exists and holds the file's
    schema; fails when it holds another."""
    got = reg.latest(subject)
    if got is None:
        return None
    with open(avsc_path) as f:
        want = json.load(f)
    if without_docs(got[1]) != without_docs(want):
        fail("registry subject %s holds\n%s\nnot %s" % (subject, json.dumps(got[1]), avsc_path))
    return got


def registered(reg, topic, avsc_path):
    """(id, True) once subject <topic>-value holds avsc_path's schema, for
    Daemon.await_."""
    got = expect_subject(reg, topic + "-value", avsc_path)
    return (got[0], True) if got else (None, False)


def with_fields(schema, *fields):
    s = copy.deepcopy(schema)
    s["fields"].extend(fields)
    return s


def frame_id(value):
    if value is None or len(value) < 5 or value[0] != 0:
        fail("not a Confluent frame: %r" % (value[:16] if value else value))
    return int.from_bytes(value[1:5], "big")


# --- advrecd --------------------------------------------------------------------

def events(samples, topic, kind):
    return ec.metric(samples, "advrec_events_total", topic=topic, type=kind) or 0


def dead(samples, reason):
    return ec.metric(samples, "advrec_dead_letters_total", reason=reason) or 0


def dead_all(samples):
    return sum(v for (name, _), v in samples.items() if name == "advrec_dead_letters_total")


def lists(samples):
    return sum(ec.metric(samples, "advrec_lists_published_total", kind=k) or 0
               for k in ("model", "popular"))


def registry_up(samples):
    return ec.metric(samples, "advrec_schema_registry_up")


class AuthFront:
    """A front to the registry that demands HTTP basic authentication
    (Apicurio's own needs an OIDC server) and forwards every authorized
    request unchanged; counts what it let through and what it refused."""

    def __init__(self, target, user, password):
        want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        base = urllib.parse.urlsplit(target)
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != want:
                    front.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="registry"')
                    self.send_header("Content-Type", "application/json")
                    msg = b'{"error_code":40101,"message":"Unauthorized"}'
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                front.passed += 1
                req = urllib.request.Request(
                    "%s://%s%s" % (base.scheme, base.netloc, self.path),
                    data=body if self.command != "GET" else None, method=self.command,
                    headers={k: v for k, v in self.headers.items()
                             if k.lower() in ("content-type", "accept")})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = forward

        self.passed = self.refused = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d%s" % (self.server.server_address[1], base.path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    kdir, reg_sh, advrecd, prod, gen, src = sys.argv[1:7]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # ctest timeout: run the finally
    bs = ak.bootstrap(kdir)
    sch = lambda *p: os.path.join(src, *p)
    with open(sch("schemas", "click.avsc")) as f:
        click_json = json.load(f)
    click = ak.load_schema(sch("schemas", "click.avsc"))
    purchase = ak.load_schema(sch("schemas", "purchase.avsc"))
    recommendation = ak.load_schema(sch("schemas", "recommendation.avsc"))
    v0_path = sch("tests", "unit", "data", "click_v0.avsc")
    click_v0 = ak.load_schema(v0_path)
    click_v2_json = with_fields(click_json, {"name": "referrer", "type": OPTIONAL_STRING,
                                             "default": None})
    click_v3_json = with_fields(click_v2_json, {"name": "campaign", "type": OPTIONAL_STRING,
                                                "default": None})
    click_v4_json = with_fields(click_v3_json, {"name": "device", "type": OPTIONAL_STRING,
                                                "default": None})
    # Records the registry holds but our Click reader cannot resolve.
    click_int_item = copy.deepcopy(click_json)
    click_int_item["fields"][1]["type"] = "int"
    page_view = dict(copy.deepcopy(click_json), name="PageView", namespace="com.example")
    click_str_ts = copy.deepcopy(click_json)
    click_str_ts["fields"][2]["type"] = "string"

    run = uuid.uuid4().hex[:8]
    t = {k: "e2e-reg-%s.%s" % (run, k) for k in ("clicks", "purchases", "recs", "anomalies",
                                                "dlq")}
    secret = "s3cret-" + uuid.uuid4().hex
    tmp = tempfile.mkdtemp(prefix="advrec-e2e-registry.")
    rdir = os.path.join(tmp, "registry")
    procs = ec.Procs()
    try:
        # 1. A registry of our own; the settings exist, the secret is
        # redacted; the two bad schemas take the first ids.
        url = registry_sh(reg_sh, "start", rdir)
        reg = Registry(url)
        level = reg.ok("GET", "/config")
        if level != {"compatibilityLevel": "BACKWARD"}:
            fail("registry global config %s, registry.sh sets BACKWARD" % level)
        cp = subprocess.run([advrecd, "--check-config", "-X", "broker.embedded=false",
                             "-X", "kafka.bootstrap.servers=" + bs,
                             "-X", "schema.registry.url=" + url,
                             "-X", "schema.registry.basic.auth.user.info=tester:" + secret],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
        if cp.returncode != 0:
            fail("advrecd --check-config with schema.registry.* exited %d (no registry client "
                 "in this advrecd? issue 17):\n%s" % (cp.returncode, out[-2000:]))
        if secret in out:
            fail("advrecd --check-config prints the basic-auth secret")
        if "\nschema.registry.basic.auth.user.info = <redacted>\n" not in cp.stdout.decode():
            fail("advrecd --check-config does not show schema.registry.basic.auth.user.info "
                 "as <redacted>:\n%s" % out[-2000:])
        say("--check-config: schema.registry.basic.auth.user.info = <redacted>")
        id_int_item = reg.register("e2e-reg-%s.int-item-value" % run, click_int_item)
        id_page_view = reg.register("e2e-reg-%s.page-view-value" % run, page_view)
        if (id_int_item, id_page_view) != (1, 2):
            fail("a fresh registry gave ids %d and %d, the test needs 1 and 2"
                 % (id_int_item, id_page_view))
        say("registry %s: BACKWARD; Click(item_id int) id 1, com.example.PageView id 2" % url)

        for k in ("clicks", "purchases"):
            ak.create_topic(bs, t[k], PARTITIONS, {"retention.ms": "-1"})
        ak.create_topic(bs, t["recs"], PARTITIONS, {"cleanup.policy": "compact"})
        ak.create_topic(bs, t["anomalies"], 1)
        ak.create_topic(bs, t["dlq"], 1)

        # 2. advrec-produce --registry.
        csv_path = os.path.join(tmp, "gen.csv")
        csv_events = ec.generate(gen, csv_path, seed=17, users=120, items=90, events=1500)
        prod_args = [prod, "-b", bs, "-f", "csv", "-q", "--click-topic", t["clicks"],
                     "--purchase-topic", t["purchases"], "--registry", url]
        cp = subprocess.run(prod_args + ["--click-schema-id", "7", csv_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if cp.returncode != 64:
            fail("advrec-produce --registry --click-schema-id 7 exited %d, want 64 (usage):\n%s"
                 % (cp.returncode, cp.stderr.decode(errors="replace")[-2000:]))
        for k in ("clicks", "purchases"):
            if sum(ak.end_offsets(bs, t[k]).values()):
                fail("advrec-produce refused its options but wrote to %s" % t[k])
            if reg.latest(t[k] + "-value") is not None:
                fail("advrec-produce refused its options but registered %s-value" % t[k])
        say("advrec-produce --registry --click-schema-id: exit 64, nothing produced or "
            "registered")

        cp = subprocess.run(prod_args + [csv_path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=120)
        if cp.returncode != 0:
            fail("advrec-produce --registry exited %d:\n%s"
                 % (cp.returncode, cp.stderr.decode(errors="replace")[-3000:]))
        ids = {}
        for kind, topic, avsc in (("click", t["clicks"], "click.avsc"),
                                  ("purchase", t["purchases"], "purchase.avsc")):
            got = expect_subject(reg, topic + "-value", sch("schemas", avsc))
            if got is None:
                fail("advrec-produce --registry registered no subject %s-value" % topic)
            ids[kind] = got[0]
        builtin = {1: "click", 2: "purchase", 3: "recommendation", 4: "anomaly"}
        for kind in ("click", "purchase"):
            if builtin.get(ids[kind]) == kind:
                fail("the registry gave %s id %d, the built-in one: the test cannot tell "
                     "them apart" % (kind, ids[kind]))
        src_client = SchemaRegistryClient({"url": url})
        deser = AvroDeserializer(src_client)
        for kind, topic in (("click", t["clicks"]), ("purchase", t["purchases"])):
            want = sorted((e[1], e[2], e[4]) for e in csv_events if e[3] == kind)
            recs = ak.consume(bs, topic, expected=len(want), timeout_s=60)
            got = []
            for r in recs:
                where = "%s/%d@%d" % (r.topic, r.partition, r.offset)
                if frame_id(r.value) != ids[kind]:
                    fail("%s: schema id %d, the registry's %s id is %d"
                         % (where, frame_id(r.value), kind, ids[kind]))
                v = deser(r.value, SerializationContext(topic, MessageField.VALUE))
                if r.key != v["user_id"].encode():
                    fail("%s: key %r, user_id %r" % (where, r.key, v["user_id"]))
                got.append((v["user_id"], v["item_id"], ec.ms(v["ts"])))
            if sorted(got) != want:
                fail("%s: the Confluent deserializer read %d events that are not the CSV's %d"
                     % (topic, len(got), len(want)))
        n_clicks = sum(1 for e in csv_events if e[3] == "click")
        n_purchases = len(csv_events) - n_clicks
        clickers = {e[1] for e in csv_events if e[3] == "click"}
        users = {e[1] for e in csv_events}  # with a good record (clickers apart)
        say("advrec-produce --registry: click id %d, purchase id %d; %d clicks and %d "
            "purchases decode with the Confluent deserializer to the CSV's events"
            % (ids["click"], ids["purchase"], n_clicks, n_purchases))

        # 3. advrecd with the registry and no schema.<N>.
        state = os.path.join(tmp, "state")
        sets = ["topic.clicks=" + t["clicks"], "topic.purchases=" + t["purchases"],
                "topic.recommendations=" + t["recs"], "topic.anomalies=" + t["anomalies"],
                "topic.dlq=" + t["dlq"], "group.id=e2e-reg-" + run, "state.dir=" + state,
                "http.listen=127.0.0.1:0", "schema.registry.url=" + url,
                "schema.registry.basic.auth.user.info=tester:" + secret,
                "schema.registry.timeout.ms=1000", "schema.registry.retry.backoff.ms=200"]
        os.mkdir(os.path.join(tmp, "run1"))
        d = ec.Daemon(procs, advrecd, bs, os.path.join(tmp, "run1"), sets)
        out_ids = {}
        for kind, topic, avsc in (("recommendation", t["recs"], "recommendation.avsc"),
                                  ("anomaly", t["anomalies"], "anomaly.avsc")):
            out_ids[kind] = d.await_(lambda: registered(reg, topic, sch("schemas", avsc)),
                                     WAIT_S, "subject %s-value in the registry" % topic)
        for kind, sid in out_ids.items():
            if builtin.get(sid) == kind:
                fail("the registry gave %s id %d, the built-in one" % (kind, sid))
        applied = {"click": n_clicks, "purchase": n_purchases}

        def all_applied(s):
            return (events(s, t["clicks"], "click") == applied["click"]
                    and events(s, t["purchases"], "purchase") == applied["purchase"])
        s = d.await_metrics(lambda s: all_applied(s) and registry_up(s) == 1, WAIT_S,
                            "every CSV event applied, advrec_schema_registry_up 1")
        if dead_all(s):
            fail("dead letters after the CSV alone: %s" % {
                k: v for k, v in s.items() if k[0] == "advrec_dead_letters_total" and v})
        say("advrecd registered recommendation id %d, anomaly id %d; applied the %d events"
            % (out_ids["recommendation"], out_ids["anomaly"], len(csv_events)))

        # 4. A new compatible version, and three records that must be dead lettered.
        ctx = SerializationContext(t["clicks"], MessageField.VALUE)
        ser_v2 = AvroSerializer(src_client, json.dumps(click_v2_json),
                                conf={"auto.register.schemas": True})
        items = []
        for i in range(40):
            u = "v2-u%d" % (i % 8) if i % 2 else "u-%d" % (i % 30)
            items.append((u, ser_v2({"user_id": u, "item_id": "v2-i%d" % (i % 11),
                                     "ts": at(i), "referrer": "ad-%d" % i if i % 3 else None},
                                    ctx)))
            clickers.add(u)
        ids["click_v2"] = frame_id(items[0][1])
        latest = reg.latest(t["clicks"] + "-value")
        if latest[0] != ids["click_v2"] or ids["click_v2"] == ids["click"]:
            fail("the Confluent serializer framed v2 with id %d; the subject's latest is %s, v1 "
                 "is %d" % (ids["click_v2"], latest[0], ids["click"]))
        unknown = max(list(ids.values()) + list(out_ids.values()) + [id_page_view]) + 1000
        status, doc = reg.call("GET", "/schemas/ids/%d" % unknown)
        if status != 404 or not isinstance(doc, dict) or doc.get("error_code") != 40403:
            fail("GET /schemas/ids/%d: HTTP %d %s, want 404 40403" % (unknown, status, doc))
        bad = [
            ("bad-unknown", ak.frame(click, unknown, {"user_id": "bad-unknown", "item_id": "i",
                                                      "ts": at(1)}), "unknown-schema"),
            ("bad-int-item", ak.frame(fastavro.parse_schema(click_int_item), id_int_item,
                                      {"user_id": "bad-int-item", "item_id": 7, "ts": at(2)}),
             "incompatible-schema"),
            ("bad-page-view", ak.frame(fastavro.parse_schema(page_view), id_page_view,
                                       {"user_id": "bad-page-view", "item_id": "i",
                                        "ts": at(3)}), "incompatible-schema"),
            # Our own Recommendation (the registry's id for it) on an input topic.
            ("bad-wrong-kind", ak.frame(recommendation, out_ids["recommendation"],
                                        {"user_id": "bad-wrong-kind", "items": [],
                                         "model_version": 1, "input_topic": t["clicks"],
                                         "input_partition": 0, "input_offset": 0,
                                         "generated_at": at(4)}), "wrong-kind"),
        ]
        for j, (key, value, code) in enumerate(bad):
            items.insert(10 + 10 * j, (key, value, [("e2e.case", code.encode())]))
        positions = dict(zip((it[0] for it in items), ak.produce(bs, t["clicks"], items)))
        applied["click"] += 40
        s = d.await_metrics(lambda s: all_applied(s) and dead_all(s) == len(bad), WAIT_S,
                            "the v2 clicks applied and %d dead letters" % len(bad))
        want_dead = {"unknown-schema": 1, "incompatible-schema": 2, "wrong-kind": 1}
        got_dead = {r: dead(s, r) for r in want_dead}
        if got_dead != want_dead:
            fail("dead letters by reason %s, want %s" % (got_dead, want_dead))
        say("click v2 (id %d, Confluent AvroSerializer) applied; dead letters %s"
            % (ids["click_v2"], got_dead))

        # 5. The registry paused while clicks of a not-yet-seen id arrive.
        ser_v3 = AvroSerializer(src_client, json.dumps(click_v3_json),
                                conf={"auto.register.schemas": True})
        held = []
        for i in range(30):
            u = "v3-u%d" % (i % 6) if i % 2 else "u-%d" % (i % 25)
            held.append((u, ser_v3({"user_id": u, "item_id": "v3-i%d" % (i % 7), "ts": at(100 + i),
                                    "referrer": None, "campaign": "c-%d" % (i % 4)}, ctx)))
            clickers.add(u)
        ids["click_v3"] = frame_id(held[0][1])
        if ids["click_v3"] in (ids["click"], ids["click_v2"]):
            fail("click v3 got id %d, an older version's" % ids["click_v3"])
        after = [(u, ak.frame(click, ids["click"], {"user_id": u, "item_id": "after-%d" % i,
                                                     "ts": at(200 + i)}))
                 for i, (u, _) in enumerate(held[:20])]
        # The shadowed schema of step 6, registered while the registry is up.
        id_str_ts = reg.register("e2e-reg-%s.str-ts-value" % run, click_str_ts)
        before = d.metrics()
        mark = d.log_size()
        registry_sh(reg_sh, "pause", rdir)
        ak.produce(bs, t["clicks"], held + after)
        d.await_log(r"schema registry unreachable", WAIT_S,
                    "log line 'schema registry unreachable'", start=mark)
        s = d.await_metrics(lambda s: registry_up(s) == 0, WAIT_S,
                            "advrec_schema_registry_up 0 while the registry is paused")
        if dead_all(s) != len(bad):
            fail("registry paused: dead letters went from %d to %d" % (len(bad), dead_all(s)))
        if events(s, t["clicks"], "click") > events(before, t["clicks"], "click") + len(after):
            fail("registry paused: %d clicks applied, more than the %d of known ids: clicks of "
                 "id %d were applied without their schema"
                 % (events(s, t["clicks"], "click") - events(before, t["clicks"], "click"),
                    len(after), ids["click_v3"]))
        say("registry paused: advrecd logged 'schema registry unreachable', "
            "advrec_schema_registry_up 0, no dead letter, no click of id %d applied"
            % ids["click_v3"])
        registry_sh(reg_sh, "resume", rdir)
        applied["click"] += len(held) + len(after)
        s = d.await_metrics(lambda s: all_applied(s) and registry_up(s) == 1, WAIT_S,
                            "every held click applied after the resume")
        if dead_all(s) != len(bad):
            fail("after the resume: %d dead letters, want still %d" % (dead_all(s), len(bad)))
        say("registry resumed: the %d clicks of id %d and the %d after them applied, "
            "no dead letter" % (len(held), ids["click_v3"], len(after)))

        # 6. Restart while the registry is down.
        rc, final1 = d.stop(60)
        if rc != 0:
            fail("advrecd exited %d after SIGTERM, want 0:\n%s" % (rc, d.tail()))
        ends_before = ak.end_offsets(bs, t["recs"])
        registry_sh(reg_sh, "pause", rdir)
        ts = iter(range(300, 400))
        restart_clicks = []
        for sid, schema in ((ids["click"], click),
                            (ids["click_v2"], fastavro.parse_schema(click_v2_json)),
                            (ids["click_v3"], fastavro.parse_schema(click_v3_json)),
                            (id_str_ts, click_v0)):
            for i in range(6):
                u = "r-u%d" % i if i % 2 else "u-%d" % i
                restart_clicks.append((u, ak.frame(schema, sid, {
                    "user_id": u, "item_id": "r-i%d" % i, "ts": at(next(ts))})))
                clickers.add(u)
        restart_purchases = [("u-%d" % i, ak.frame(purchase, ids["purchase"], {
            "user_id": "u-%d" % i, "item_id": "r-i%d" % i, "ts": at(next(ts)), "price": 2.5}))
            for i in range(5)]
        users |= {key for key, _ in restart_purchases}
        ak.produce(bs, t["clicks"], restart_clicks)
        ak.produce(bs, t["purchases"], restart_purchases)
        os.mkdir(os.path.join(tmp, "run2"))
        d = ec.Daemon(procs, advrecd, bs, os.path.join(tmp, "run2"),
                      sets + ["schema.%d=%s" % (id_str_ts, v0_path)])
        applied = {"click": len(restart_clicks), "purchase": len(restart_purchases)}
        s = d.await_metrics(lambda s: all_applied(s), WAIT_S,
                            "the records of known ids applied with the registry paused")
        if dead_all(s):
            fail("restart with the registry paused: %d dead letters" % dead_all(s))
        s = d.await_metrics(lambda s: lists(s) > 0, WAIT_S, "a list published after the restart")
        recs = ak.consume(bs, t["recs"], expected=sum(ends_before.values()) + int(lists(s)),
                          timeout_s=60)
        new = [r for r in recs if r.offset >= ends_before.get(r.partition, 0)]
        if not new:
            fail("no list on %s after the restart" % t["recs"])
        for r in new:
            if frame_id(r.value) != out_ids["recommendation"]:
                fail("%s/%d@%d, published with the registry paused: schema id %d, want the "
                     "cached %d" % (r.topic, r.partition, r.offset, frame_id(r.value),
                                    out_ids["recommendation"]))
        say("restart with the registry paused: %d clicks (ids %d, %d, %d, explicit %d) and %d "
            "purchases applied, %d lists with the cached id %d"
            % (len(restart_clicks), ids["click"], ids["click_v2"], ids["click_v3"], id_str_ts,
               len(restart_purchases), len(new), out_ids["recommendation"]))
        registry_sh(reg_sh, "resume", rdir)
        ser_v4 = AvroSerializer(src_client, json.dumps(click_v4_json),
                                conf={"auto.register.schemas": True})
        late = []
        for i in range(10):
            u = "late-u%d" % (i % 3)
            late.append((u, ser_v4({"user_id": u, "item_id": "late-i%d" % i, "ts": at(400 + i),
                                    "referrer": None, "campaign": None, "device": "d%d" % i},
                                   ctx)))
            late.append((u, ak.frame(click_v0, id_str_ts, {"user_id": u, "item_id": "v0-%d" % i,
                                                           "ts": at(450 + i)})))
            clickers.add(u)
        ids["click_v4"] = frame_id(late[0][1])
        ak.produce(bs, t["clicks"], late)
        applied["click"] += len(late)
        s = d.await_metrics(lambda s: all_applied(s) and registry_up(s) == 1, WAIT_S,
                            "after the resume, click v4 (id %d, new) and more of id %d applied"
                            % (ids["click_v4"], id_str_ts))
        if dead_all(s):
            fail("after the resume: %d dead letters; schema.%d = click_v0.avsc should win over "
                 "the registry's id %d" % (dead_all(s), id_str_ts, id_str_ts))
        say("registry resumed: click v4 (id %d) fetched and applied, and id %d still read with "
            "the explicit click_v0.avsc" % (ids["click_v4"], id_str_ts))
        rc, final2 = d.stop(60)
        if rc != 0:
            fail("advrecd (restarted) exited %d after SIGTERM, want 0:\n%s" % (rc, d.tail()))

        # 7. What an independent consumer sees.
        versions = reg.versions(t["recs"] + "-value")
        if versions != [1]:
            fail("subject %s-value has versions %s, want [1]" % (t["recs"], versions))
        recs = ak.consume(bs, t["recs"], expected=final1["lists"] + final2["lists"],
                          timeout_s=60)
        served = set()
        rctx = SerializationContext(t["recs"], MessageField.VALUE)
        for r in recs:
            where = "%s/%d@%d" % (r.topic, r.partition, r.offset)
            if frame_id(r.value) != out_ids["recommendation"]:
                fail("%s: schema id %d, subject %s-value's is %d" % (
                    where, frame_id(r.value), t["recs"], out_ids["recommendation"]))
            v = deser(r.value, rctx)
            if r.key != v["user_id"].encode():
                fail("%s: key %r, user_id %r" % (where, r.key, v["user_id"]))
            served.add(v["user_id"])
        missing = clickers - served
        if missing:
            fail("%d users who clicked have no list, e.g. %s" % (len(missing),
                                                                  sorted(missing)[:10]))
        extra = served - users - clickers
        if extra:
            fail("lists for users who sent no good record: %s" % sorted(extra)[:10])
        say("%d lists: id %d, decode with the Confluent deserializer, every clicker served"
            % (len(recs), out_ids["recommendation"]))
        for r in ak.consume(bs, t["anomalies"], timeout_s=60):
            if frame_id(r.value) != out_ids["anomaly"]:
                fail("%s/%d@%d: anomaly with schema id %d, want %d" % (
                    r.topic, r.partition, r.offset, frame_id(r.value), out_ids["anomaly"]))
            deser(r.value, SerializationContext(t["anomalies"], MessageField.VALUE))

        dlq = ak.consume(bs, t["dlq"], expected=len(bad), timeout_s=60)
        if len(dlq) != len(bad):
            fail("DLQ holds %d records, want the %d bad ones" % (len(dlq), len(bad)))
        by_key = {r.key: r for r in dlq}
        for key, value, code in bad:
            r = by_key.get(key.encode())
            if r is None:
                fail("the %s record (key %s) is not on the DLQ" % (code, key))
            h = dict(r.headers)
            p, o = positions[key]
            want_h = {"advrec.error": code.encode(), "advrec.source.topic": t["clicks"].encode(),
                      "advrec.source.partition": str(p).encode(),
                      "advrec.source.offset": str(o).encode(), "e2e.case": code.encode()}
            for k, v in want_h.items():
                if h.get(k) != v:
                    fail("DLQ record %s: header %s = %r, want %r (headers %s)"
                         % (key, k, h.get(k), v, h))
            if r.value != value or not h.get("advrec.error.message"):
                fail("DLQ record %s: value or advrec.error.message wrong (headers %s)" % (key, h))
        say("DLQ: exactly the %d bad records, %s" % (len(bad), sorted(b[2] for b in bad)))
        for run_dir in ("run1", "run2"):
            with open(os.path.join(tmp, run_dir, "advrecd.err"), errors="replace") as f:
                if secret in f.read():
                    fail("the basic-auth secret is in advrecd's log (%s)" % run_dir)

        # 8. Basic authentication, through a front that demands it, and an
        # output schema the registry refuses.
        front = AuthFront(url, "tester", secret)
        try:
            t8 = {k: "e2e-reg-%s.auth-%s" % (run, k) for k in ("clicks", "purchases", "recs")}
            pargv = [prod, "-b", bs, "--registry", front.url, "--click-topic", t8["clicks"],
                     "--purchase-topic", t8["purchases"], "--limit", "5", "-q", csv_path]
            env = dict(os.environ, ADVREC_REGISTRY_USER_INFO="tester:wrong-" + secret)
            cp = subprocess.run(pargv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=120)
            err = cp.stderr.decode(errors="replace")
            if cp.returncode != 69 or "HTTP 401" not in err or secret in err:
                fail("advrec-produce --registry with wrong credentials: exit %d, want 69 (the "
                     "registry cannot be used) naming HTTP 401 and not the secret:\n%s"
                     % (cp.returncode, err[-2000:]))
            if front.refused == 0 or front.passed != 0:
                fail("the auth front let %d requests through and refused %d, want 0 and > 0"
                     % (front.passed, front.refused))
            env["ADVREC_REGISTRY_USER_INFO"] = "tester:" + secret
            cp = subprocess.run(pargv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=120)
            if cp.returncode != 0:
                fail("advrec-produce --registry with the right credentials: exit %d:\n%s"
                     % (cp.returncode, cp.stderr.decode(errors="replace")[-2000:]))
            expect_subject(reg, t8["clicks"] + "-value", sch("schemas", "click.avsc"))
            say("basic auth: advrec-produce refused with a wrong password (exit 69, HTTP 401), "
                "registered through the front with the right one (%d requests let through)"
                % front.passed)
            asets = ["topic.clicks=" + t8["clicks"], "topic.purchases=" + t8["purchases"],
                     "topic.recommendations=" + t8["recs"], "group.id=e2e-reg-auth-" + run,
                     "state.dir=", "schema.registry.url=" + front.url,
                     "schema.registry.timeout.ms=2000", "schema.registry.retry.backoff.ms=200"]
            for i, (creds, pattern) in enumerate((
                    ("tester:wrong-" + secret, r"schema registry unreachable \(.*HTTP 401"),
                    ("tester:" + secret, r"our recommendation schema is id (\d+) under "
                                         r"subject " + t8["recs"] + "-value"))):
                os.mkdir(os.path.join(tmp, "auth%d" % i))
                d = ec.Daemon(procs, advrecd, bs, os.path.join(tmp, "auth%d" % i),
                              asets + ["schema.registry.basic.auth.user.info=" + creds])
                m = d.await_log(pattern, WAIT_S, "log line /%s/" % pattern)
                rc, _ = d.stop(60)
                if rc != 0:
                    fail("advrecd (auth run %d) exited %d after SIGTERM:\n%s" % (i, rc, d.tail()))
                with open(d.err_path, errors="replace") as f:
                    if secret in f.read():
                        fail("the basic-auth secret is in advrecd's log (auth run %d)" % i)
            if int(m.group(1)) != registered(reg, t8["recs"], sch("schemas",
                                                                  "recommendation.avsc"))[0]:
                fail("advrecd registered its recommendation schema as id %s through the front, "
                     "the registry says otherwise" % m.group(1))
            say("basic auth: advrecd with a wrong password waits and logs HTTP 401; with the "
                "right one it registers its schemas through the front")
        finally:
            front.close()

        # The subject's latest version is a Recommendation ours cannot be
        # compatible with (BACKWARD: ours must read it): advrecd refuses to
        # start (EX_CONFIG) and says why.
        refused_topic = "e2e-reg-%s.refused" % run
        theirs = copy.deepcopy(json.load(open(sch("schemas", "recommendation.avsc"))))
        for f in theirs["fields"]:
            if f["name"] == "model_version":
                f["type"] = "string"
        reg.register(refused_topic + "-value", theirs)
        cp = subprocess.run([advrecd, "-X", "broker.embedded=false",
                             "-X", "kafka.bootstrap.servers=" + bs, "-X", "state.dir=",
                             "-X", "topic.recommendations=" + refused_topic,
                             "-X", "http.listen=", "-X", "schema.registry.url=" + url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        err = cp.stderr.decode(errors="replace")
        if cp.returncode != 78 or "cannot be registered under subject %s-value" % refused_topic \
                not in err:
            fail("advrecd with a refused output schema: exit %d, want 78 naming the subject:\n%s"
                 % (cp.returncode, err[-2000:]))
        if reg.versions(refused_topic + "-value") != [1]:
            fail("the refused subject has versions %s, want [1]"
                 % reg.versions(refused_topic + "-value"))
        say("an incompatible latest version under %s-value: advrecd exits 78 naming the "
            "subject, and registers nothing" % refused_topic)
    finally:
        procs.cleanup()
        subprocess.run([reg_sh, "stop", rdir], timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
