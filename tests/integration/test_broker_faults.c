/*
 * Broker faults (docs/RELIABILITY.md, "Broker faults"): the daemon keeps
 * running through them, reports them, resumes by itself, and afterwards its
 * state counters are exact and every output it owed was delivered.
 *
 * The daemon runs in-process (lib/daemon.h, a thread) against a mock cluster
 * of three brokers of the test's own (lib/broker.h), so the test can inject
 * faults while a generated stream (tools/lib/synth) with malformed records
 * mixed in is produced, in four phases:
 *  1. request errors: Produce (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT,
 *     a dropped connection), Fetch (NOT_LEADER_FOR_PARTITION,
 *     UNKNOWN_TOPIC_OR_PART, REQUEST_TIMED_OUT) and OffsetCommit
 *     (REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR);
 *  2. the leader of an input partition of each topic moves to another
 *     broker, twice;
 *  3. every broker answers 500 ms late;
 *  4. every broker is down for 3 s (connections refused), then up.
 * Each wait is bounded by a deadline. Then:
 *  (a) the daemon never stopped: run() had not returned before the test
 *      stopped it, and rounds went on while the brokers were down;
 *  (b) every good event was applied exactly once: clicks, purchases,
 *      consumed and users equal what the input topics hold, read back
 *      after producing (the mock cluster may acknowledge a retried batch
 *      it takes for a duplicate without appending it: the test prints
 *      any difference between what was acknowledged and the log);
 *  (c) every malformed record in the input is on the dead-letter topic
 *      at least once (outputs are at-least-once, and a retried produce
 *      the mock cluster does not recognise may duplicate one), matched by
 *      its advrec.source.* headers, and no good record is;
 *  (d) after a clean stop every user has at least one list, nothing is left
 *      pending in the outbox and no user is owed a list;
 *  (e) the faults were reported: advrec_kafka_errors_total is above 0 in
 *      the counters and present in GET /metrics, and the log has the
 *      librdkafka warnings of the outage.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"
#include "log.h"
#include "synth.h"

#define N_GOOD     4000
#define N_USERS    200
#define N_ITEMS    150
#define PARTITIONS 4
#define N_BROKERS  3
#define BAD_EVERY  50 /* one malformed record after every 50th event */
#define MAX_BAD    (N_GOOD / BAD_EVERY)
#define WAIT_MS    120000
#define DOWN_MS    3000

#define T_CLICKS    "bf.clicks"
#define T_PURCHASES "bf.purchases"
#define T_RECS      "bf.recs"
#define T_ANOMALIES "bf.anomalies"
#define T_DLQ       "bf.dlq"

static const char *const input_topics[2] = {T_CLICKS, T_PURCHASES};

/* Where each produced record landed, and what came back. */
typedef struct world_s {
    /* tag > 0: good record tag-1; tag < 0: bad record -tag-1. */
    struct {
        int topic;
        int32_t partition;
        int64_t offset;
        int delivered;
        int dlq_seen;
    } bad[2 * MAX_BAD]; /* as produced, then as the log holds them */
    size_t n_bad;
    int good_delivered;
    int dr_errors;
    /* Per input partition: records acknowledged, the highest offset an
     * acknowledgement named, acknowledgements without an offset. */
    struct {
        int64_t acked, max_offset, no_offset;
    } part[2][PARTITIONS];
    /* The input as the log holds it (read back after producing): good
     * records per topic, and the malformed ones' places. */
    uint64_t log_good[2];
    struct {
        int topic;
        int32_t partition;
        int64_t offset;
    } log_bad[2 * MAX_BAD];
    size_t n_log_bad;
    char (*users)[ADVREC_ID_MAX];
    size_t n_users;
    size_t *lists_of;
    size_t dlq_read, dlq_unknown, recs_read;
} world_t;

static int find_user(world_t *w, const char *id, size_t len)
{
    for (size_t i = 0; i < w->n_users; i++)
        if (strlen(w->users[i]) == len && memcmp(w->users[i], id, len) == 0)
            return (int)i;
    return -1;
}

static void dr_cb(void *opaque, const rd_kafka_message_t *m)
{
    world_t *w = opaque;
    intptr_t tag = (intptr_t)m->_private;

    if (m->err) {
        if (w->dr_errors++ < 5)
            fprintf(stderr, "input delivery failed: %s\n",
                    rd_kafka_err2str(m->err));
        return;
    }
    for (int t = 0; t < 2; t++)
        if (m->partition >= 0 && m->partition < PARTITIONS &&
            strcmp(rd_kafka_topic_name(m->rkt), input_topics[t]) == 0) {
            w->part[t][m->partition].acked++;
            if (m->offset < 0)
                w->part[t][m->partition].no_offset++;
            else if (m->offset > w->part[t][m->partition].max_offset)
                w->part[t][m->partition].max_offset = m->offset;
        }
    if (tag > 0) {
        w->good_delivered++;
    } else if (tag < 0) {
        w->bad[-tag - 1].partition = m->partition;
        w->bad[-tag - 1].offset = m->offset;
        w->bad[-tag - 1].delivered = 1;
    }
}

/* The k-th malformed record: kinds the codec refuses before Avro. */
static size_t make_bad(size_t k, unsigned char *buf)
{
    switch (k % 3) {
    case 0: /* not framed at all */
        memcpy(buf, "{\"not\":\"avro\"}", 14);
        return 14;
    case 1: /* a frame cut short */
        memcpy(buf, "\0\0\1", 3);
        return 3;
    default: /* framed under a schema id nobody registered */
        memcpy(buf, "\0\0\0\0\x63\x02u\x02i\x02", 10);
        return 10;
    }
}

/* ------------------------------------------------------------------ */
/* Reading the outputs back                                            */

static void on_dlq(world_t *w, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    char topic[64] = "", part[16] = "", off[32] = "";
    int found = 0;

    w->dlq_read++;
    if (rd_kafka_message_headers(m, &h) == 0) {
        if (!rd_kafka_header_get_last(h, "advrec.source.topic", &v, &len))
            snprintf(topic, sizeof(topic), "%.*s", (int)len, (const char *)v);
        if (!rd_kafka_header_get_last(h, "advrec.source.partition", &v, &len))
            snprintf(part, sizeof(part), "%.*s", (int)len, (const char *)v);
        if (!rd_kafka_header_get_last(h, "advrec.source.offset", &v, &len))
            snprintf(off, sizeof(off), "%.*s", (int)len, (const char *)v);
    }
    for (size_t i = 0; i < w->n_bad; i++)
        if (strcmp(topic, input_topics[w->bad[i].topic]) == 0 &&
            atoi(part) == w->bad[i].partition &&
            atoll(off) == w->bad[i].offset) {
            w->bad[i].dlq_seen++;
            found = 1;
            break;
        }
    if (!found && w->dlq_unknown++ < 5)
        fprintf(stderr, "DLQ message from %s [%s] @%s is no bad record\n",
                topic, part, off);
}

static void on_rec(world_t *w, const rd_kafka_message_t *m)
{
    int u = m->key ? find_user(w, m->key, m->key_len) : -1;

    w->recs_read++;
    CHECK(u >= 0);
    if (u >= 0)
        w->lists_of[u]++;
}

/* Reads every partition of topic to its end, fn on each message. 0 when
 * every partition reached its end before deadline. */
static int read_topic(const char *bootstraps, const char *topic,
                      int64_t deadline,
                      void (*fn)(world_t *, const rd_kafka_message_t *),
                      world_t *w)
{
    static const advrec_kafka_prop_t props[] = {
        {"enable.auto.commit", "false", NULL},
        {"enable.partition.eof", "true", NULL},
    };
    advrec_kafka_t *reader =
        itest_client(ADVREC_KAFKA_CONSUMER, bootstraps, "bf-reader", props,
                     sizeof(props) / sizeof(props[0]), NULL, NULL);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *c;
    int eof[PARTITIONS] = {0}, n_eof = 0;

    if (!reader)
        return -1;
    c = advrec_kafka_rk(reader);
    parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (n_eof < PARTITIONS && itest_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < PARTITIONS &&
                !eof[m->partition]++)
                n_eof++;
        } else if (!m->err) {
            fn(w, m);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    advrec_kafka_destroy(reader);
    return n_eof == PARTITIONS ? 0 : -1;
}

/* An input record read back: a good one (a Confluent frame of a schema
 * id we registered; make_bad's ids are 99) counts with its user (the
 * key); a malformed one is a dead letter owed, at its place in the log. */
static void on_input(world_t *w, const rd_kafka_message_t *m)
{
    const unsigned char *v = m->payload;
    int t = strcmp(rd_kafka_topic_name(m->rkt), input_topics[0]) == 0 ? 0 : 1;
    int good = m->len >= 5 && v[0] == 0 &&
               !(v[1] == 0 && v[2] == 0 && v[3] == 0 && v[4] == 0x63);

    if (!good) {
        if (w->n_log_bad < sizeof(w->log_bad) / sizeof(*w->log_bad)) {
            w->log_bad[w->n_log_bad].topic = t;
            w->log_bad[w->n_log_bad].partition = m->partition;
            w->log_bad[w->n_log_bad++].offset = m->offset;
        }
        return;
    }
    w->log_good[t]++;
    if (m->key && find_user(w, m->key, m->key_len) < 0 &&
        w->n_users < N_USERS * 2 && m->key_len < ADVREC_ID_MAX) {
        memcpy(w->users[w->n_users], m->key, m->key_len);
        w->users[w->n_users++][m->key_len] = '\0';
    }
}

/* GET /metrics from 127.0.0.1:port into buf (NUL-terminated; truncated
 * to size). 0 on a 200 answer. */
static int scrape(int port, char *buf, size_t size)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = 0;
    ssize_t n;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 ||
                   strncmp(buf, "HTTP/1.0 200", 12) == 0
               ? 0
               : -1;
}

/* ------------------------------------------------------------------ */

typedef struct runner_s {
    advrec_daemon_t *daemon;
    advrec_err_t err;
    char errstr[512];
    atomic_int done;
} runner_t;

static void *run_daemon(void *arg)
{
    runner_t *r = arg;

    r->err = advrec_daemon_run(r->daemon, r->errstr, sizeof(r->errstr));
    atomic_store(&r->done, 1);
    return NULL;
}

static advrec_conf_t *daemon_conf(const char *bootstraps)
{
    char errstr[512];
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));
    const char *sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", bootstraps},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"group.id", "bf-daemon"},
        {"kafka.session.timeout.ms", "6000"},
        {"recs.debounce.ms", "200"},
        {"recs.max.staleness.ms", "1000"},
        {"stats.interval.ms", "0"},
        {"model.k", "8"},
        {"http.listen", "127.0.0.1:0"},
        {"state.dir", ""},
    };

    if (!conf) {
        fprintf(stderr, "conf: %s\n", errstr);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        if (advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                            sizeof(errstr))) {
            fprintf(stderr, "conf: %s\n", errstr);
            advrec_conf_destroy(conf);
            return NULL;
        }
    /* BF_DEBUG=<librdkafka debug contexts>: their lines in the captured
     * log, printed with it when the test fails (to see a stuck fetcher). */
    if (getenv("BF_DEBUG") &&
        advrec_conf_set(conf, "kafka.debug", getenv("BF_DEBUG"), errstr,
                        sizeof(errstr))) {
        fprintf(stderr, "conf: %s\n", errstr);
        advrec_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* Produces events [from, to) of the stream (and the malformed records
 * among them), then waits (bounded) until the input is acknowledged. */
static int produce_part(advrec_kafka_t *producer, advrec_synth_t *synth,
                        advrec_codec_t *codec, world_t *w, size_t *produced,
                        size_t to, uint64_t counts[2])
{
    advrec_event_t ev;
    unsigned char buf[1024];
    size_t len;
    char errstr[256];

    while (*produced < to && advrec_synth_next(synth, &ev) == ADVREC_OK) {
        int p = ev.type == ADVREC_EVENT_PURCHASE;
        if (find_user(w, ev.user_id, strlen(ev.user_id)) < 0 &&
            w->n_users < N_USERS * 2)
            snprintf(w->users[w->n_users++], ADVREC_ID_MAX, "%s", ev.user_id);
        if (advrec_codec_encode_event(codec, p ? 2 : 1, &ev, buf, sizeof(buf),
                                      &len, errstr, sizeof(errstr))) {
            fprintf(stderr, "encode: %s\n", errstr);
            return -1;
        }
        (*produced)++;
        counts[p]++;
        if (advrec_kafka_produce(producer, input_topics[p], ev.user_id,
                                 strlen(ev.user_id), buf, len, NULL, 0,
                                 (void *)(intptr_t)*produced))
            return -1;
        if (*produced % BAD_EVERY == 0 && w->n_bad < MAX_BAD) {
            size_t k = w->n_bad++;
            w->bad[k].topic = (int)(k % 2);
            w->bad[k].partition = -1;
            len = make_bad(k, buf);
            if (advrec_kafka_produce(producer, input_topics[w->bad[k].topic],
                                     ev.user_id, strlen(ev.user_id), buf, len,
                                     NULL, 0, (void *)(intptr_t)(-(long)k - 1)))
                return -1;
        }
        rd_kafka_poll(advrec_kafka_rk(producer), 0);
    }
    return rd_kafka_flush(advrec_kafka_rk(producer), WAIT_MS) ? -1 : 0;
}

/* When not every record was applied: per input partition what the
 * producer was told (acknowledged, highest offset named, acknowledged
 * without an offset) against the end the broker reports now, to tell
 * records the cluster acknowledged but never appended from records not
 * consumed. */
static void report_partitions(advrec_kafka_t *producer, const world_t *w)
{
    for (int t = 0; t < 2; t++)
        for (int32_t p = 0; p < PARTITIONS; p++) {
            int64_t lo = -1, hi = -1;
            rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
                advrec_kafka_rk(producer), input_topics[t], p, &lo, &hi, 5000);
            fprintf(stderr,
                    "%s [%d]: %" PRId64 " acknowledged, highest offset %" PRId64
                    ", %" PRId64
                    " without an offset; end on the broker %" PRId64 "%s%s\n",
                    input_topics[t], (int)p, w->part[t][p].acked,
                    w->part[t][p].max_offset, w->part[t][p].no_offset, hi,
                    kerr ? ": " : "", kerr ? rd_kafka_err2str(kerr) : "");
        }
}

/* Waits (bounded) until the daemon consumed n records; the stats in *st. */
static void await_consumed(advrec_daemon_t *daemon, runner_t *runner,
                           uint64_t n, advrec_daemon_stats_t *st)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;

    do {
        advrec_daemon_stats(daemon, st);
        if (st->consumed >= n)
            return;
        usleep(50 * 1000); /* polling interval, not synchronisation */
    } while (itest_now_ms() < deadline && !atomic_load(&runner->done));
}

/* The log (stderr) goes to a file while the daemon runs: the test looks
 * for the outage in it, then copies it to the real stderr. */
static int log_fd = -1, saved_stderr = -1;
static char log_path[] = "/tmp/advrec-bf-log-XXXXXX";

static void log_capture(void)
{
    log_fd = mkstemp(log_path);
    saved_stderr = dup(2);
    if (log_fd >= 0 && saved_stderr >= 0)
        dup2(log_fd, 2);
}

/* Restores stderr; returns the captured text (malloc'ed) or NULL. */
static char *log_release(void)
{
    char *text = NULL;
    off_t size;

    if (saved_stderr < 0 || log_fd < 0)
        return NULL;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    size = lseek(log_fd, 0, SEEK_END);
    if (size >= 0 && (text = malloc((size_t)size + 1))) {
        ssize_t n = pread(log_fd, text, (size_t)size, 0);
        text[n > 0 ? n : 0] = '\0';
    }
    close(log_fd);
    unlink(log_path);
    return text;
}

/* Lines of text containing all of a and b, copied to stderr (a few). */
static int count_lines(const char *text, const char *a, const char *b)
{
    int n = 0;

    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)len, l);
        if (strstr(line, a) && strstr(line, b) && n++ < 3)
            fprintf(stderr, "  log: %s\n", line);
        l = e ? e + 1 : l + len;
    }
    return n;
}

static void test_broker_faults(void)
{
    char errstr[512];
    world_t w = {0};
    advrec_broker_t *broker = NULL;
    advrec_conf_t *conf = NULL;
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_daemon_t *daemon = NULL;
    advrec_kafka_t *producer = NULL;
    runner_t runner = {0};
    pthread_t thread;
    int running = 0, port;
    advrec_daemon_stats_t st;
    uint64_t counts[2] = {0, 0}, rounds_before;
    size_t produced = 0;
    int64_t t0 = itest_now_ms(), t;
    const char *bs;
    char *metrics = NULL, *logtext = NULL;
    const char *topics[] = {T_CLICKS, T_PURCHASES, T_RECS, T_ANOMALIES, T_DLQ};

    w.users = calloc(N_USERS * 2, sizeof(*w.users));
    w.lists_of = calloc(N_USERS * 2, sizeof(*w.lists_of));
    metrics = malloc(1 << 20);
    CHECK(w.users && w.lists_of && metrics);
    if (!w.users || !w.lists_of || !metrics)
        goto out;

    broker = advrec_broker_new(N_BROKERS, errstr, sizeof(errstr));
    CHECK(broker != NULL);
    if (!broker) {
        fprintf(stderr, "broker: %s\n", errstr);
        goto out;
    }
    bs = advrec_broker_bootstraps(broker);
    for (size_t i = 0; i < sizeof(topics) / sizeof(*topics); i++)
        CHECK_INT(advrec_broker_create_topic(broker, topics[i], PARTITIONS,
                                             errstr, sizeof(errstr)),
                  ADVREC_OK);

    conf = daemon_conf(bs);
    CHECK(conf != NULL);
    if (!conf)
        goto out;
    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    CHECK(codec != NULL);
    if (!codec)
        goto out;
    for (size_t i = 0; i < conf->schemas_cnt; i++)
        CHECK_INT(advrec_codec_register(codec, conf->schemas[i].id,
                                        conf->schemas[i].path, errstr,
                                        sizeof(errstr)),
                  ADVREC_OK);

    log_capture();
    advrec_daemon_new(&daemon, conf, errstr, sizeof(errstr));
    conf = NULL; /* the daemon's now, even on failure */
    if (!daemon || advrec_daemon_start(daemon, errstr, sizeof(errstr))) {
        fprintf(stderr, "daemon: %s\n", errstr);
        CHECK(0);
        goto out;
    }
    runner.daemon = daemon;
    CHECK_INT(pthread_create(&thread, NULL, run_daemon, &runner), 0);
    running = 1;
    port = advrec_daemon_http_port(daemon);
    CHECK(port > 0);

    producer =
        itest_client(ADVREC_KAFKA_PRODUCER, bs, NULL, NULL, 0, dr_cb, &w);
    CHECK(producer != NULL);
    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.seed = 14;
    sp.n_users = N_USERS;
    sp.n_items = N_ITEMS;
    sp.max_events = N_GOOD;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    CHECK(synth != NULL);
    if (!producer || !synth)
        goto out;

    /* 1. Request errors, consumed by whichever client asks next (the
     * daemon's producer and consumer, or the test's producer). */
    {
        const rd_kafka_resp_err_t produce_errs[] = {
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        };
        const rd_kafka_resp_err_t fetch_errs[] = {
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        };
        const rd_kafka_resp_err_t commit_errs[] = {
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        };
        advrec_broker_push_errors(broker, 0, 5, produce_errs);
        advrec_broker_push_errors(broker, 1, 5, fetch_errs);
        advrec_broker_push_errors(broker, 8, 3, commit_errs);
    }
    CHECK_INT(
        produce_part(producer, synth, codec, &w, &produced, N_GOOD / 4, counts),
        0);
    fprintf(stderr, "phase 1 (request errors) produced, %.1f s\n",
            (double)(itest_now_ms() - t0) / 1000.0);

    /* 2. Leader changes of an input partition of each topic. */
    for (int32_t b = 2; b <= 3; b++) {
        CHECK_INT(advrec_broker_set_leader(broker, T_CLICKS, 0, b, errstr,
                                           sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(advrec_broker_set_leader(broker, T_PURCHASES, 1, b, errstr,
                                           sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(produce_part(producer, synth, codec, &w, &produced,
                               N_GOOD / 4 + (size_t)(b - 1) * N_GOOD / 8,
                               counts),
                  0);
    }
    fprintf(stderr, "phase 2 (leader changes) produced, %.1f s\n",
            (double)(itest_now_ms() - t0) / 1000.0);

    /* 3. Every answer 500 ms late. */
    CHECK_INT(advrec_broker_set_rtt(broker, -1, 500, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(produce_part(producer, synth, codec, &w, &produced,
                           3 * N_GOOD / 4, counts),
              0);
    await_consumed(daemon, &runner, produced + w.n_bad / 2, &st);
    CHECK_INT(advrec_broker_set_rtt(broker, -1, 0, errstr, sizeof(errstr)),
              ADVREC_OK);
    fprintf(stderr, "phase 3 (rtt 500 ms) produced, %.1f s\n",
            (double)(itest_now_ms() - t0) / 1000.0);

    /* 4. Every broker down for DOWN_MS: rounds go on, nothing arrives. */
    advrec_daemon_stats(daemon, &st);
    rounds_before = st.rounds;
    CHECK_INT(advrec_broker_set_down(broker, -1, errstr, sizeof(errstr)),
              ADVREC_OK);
    usleep(DOWN_MS * 1000);
    advrec_daemon_stats(daemon, &st);
    fprintf(stderr, "phase 4: %" PRIu64 " rounds while the brokers were down\n",
            st.rounds - rounds_before);
    CHECK(st.rounds > rounds_before);
    CHECK(!atomic_load(&runner.done));
    CHECK_INT(advrec_broker_set_up(broker, -1, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(
        produce_part(producer, synth, codec, &w, &produced, N_GOOD, counts), 0);
    CHECK_INT(produced, N_GOOD);
    CHECK_INT(w.good_delivered, N_GOOD);
    CHECK_INT(w.dr_errors, 0);
    for (size_t i = 0; i < w.n_bad; i++)
        CHECK(w.bad[i].delivered);

    /* What the daemon owes an effect for is the input the log holds. The
     * mock cluster can acknowledge a record it never appends: a retried
     * batch whose sequence falls inside its window of the last five
     * Produce requests is taken for a duplicate (acknowledged, offset
     * unknown, not written), which faults make happen now and then. So
     * the expected counts, users and dead letters are read back from the
     * input topics, and any difference from the acknowledgements shown. */
    w.n_users = 0;
    CHECK_INT(read_topic(bs, T_CLICKS, itest_now_ms() + WAIT_MS, on_input, &w),
              0);
    CHECK_INT(
        read_topic(bs, T_PURCHASES, itest_now_ms() + WAIT_MS, on_input, &w), 0);
    if (w.log_good[0] != counts[0] || w.log_good[1] != counts[1] ||
        w.n_log_bad != w.n_bad) {
        fprintf(stderr,
                "the log holds %" PRIu64 " + %" PRIu64 " good and %zu "
                "malformed input records; %" PRIu64 " + %" PRIu64
                " and %zu were acknowledged (the mock cluster's duplicate "
                "window):\n",
                w.log_good[0], w.log_good[1], w.n_log_bad, counts[0], counts[1],
                w.n_bad);
        report_partitions(producer, &w);
    }
    counts[0] = w.log_good[0];
    counts[1] = w.log_good[1];
    w.n_bad = w.n_log_bad;
    for (size_t i = 0; i < w.n_bad; i++) {
        w.bad[i].topic = w.log_bad[i].topic;
        w.bad[i].partition = w.log_bad[i].partition;
        w.bad[i].offset = w.log_bad[i].offset;
        w.bad[i].dlq_seen = 0;
    }

    /* (a), (b): every record's effect, exactly once, with run() running. */
    await_consumed(daemon, &runner, counts[0] + counts[1] + w.n_bad, &st);
    t = itest_now_ms();
    usleep(1000 * 1000); /* one more second: nothing may be applied twice */
    advrec_daemon_stats(daemon, &st);
    fprintf(stderr,
            "applied %" PRIu64 " + %" PRIu64 " of %" PRIu64 " + %" PRIu64
            ", dlq %" PRIu64 " of %zu after %.1f s\n",
            st.clicks, st.purchases, counts[0], counts[1], st.dlq, w.n_bad,
            (double)(t - t0) / 1000.0);
    CHECK(!atomic_load(&runner.done));
    if (st.consumed != counts[0] + counts[1] + w.n_bad)
        report_partitions(producer, &w);
    CHECK_INT(st.clicks, counts[0]);
    CHECK_INT(st.purchases, counts[1]);
    CHECK_INT(st.dlq, w.n_bad);
    CHECK_INT(st.consumed, counts[0] + counts[1] + w.n_bad);
    CHECK_INT(st.users, w.n_users);

    /* (e) reported, in the counters and on /metrics. */
    fprintf(stderr, "kafka errors: %" PRIu64 "\n", st.kafka_errors_total);
    for (uint32_t i = 0; i < st.n_kafka_errors; i++)
        fprintf(stderr, "  %s %s: %" PRIu64 "\n",
                st.kafka_errors[i].client ? "consumer" : "producer",
                st.kafka_errors[i].name, st.kafka_errors[i].count);
    CHECK(st.kafka_errors_total > 0);
    CHECK_INT(scrape(port, metrics, 1 << 20), 0);
    CHECK(strstr(metrics, "\nadvrec_kafka_errors_total{client=\"") != NULL);
    CHECK(strstr(metrics, "# TYPE advrec_kafka_errors_total counter") != NULL);

    /* (d) a clean stop: every owed output delivered. */
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    running = 0;
    CHECK_INT(runner.err, ADVREC_OK);
    advrec_daemon_stats(daemon, &st);
    fprintf(stderr,
            "lists %" PRIu64 ", delivered %" PRIu64 ", delivery failures "
            "%" PRIu64 ", pending %" PRIu64 ", stale %" PRIu64 "\n",
            st.recs, st.delivered, st.delivery_failed, st.outbox_pending,
            st.stale);
    CHECK_INT(st.outbox_pending, 0);
    CHECK_INT(st.stale, 0);
    CHECK(st.delivered >= st.recs + st.dlq + st.flags);
    CHECK(st.recs >= w.n_users);

    /* (c) the dead letters, and (d) a list for every user, read back. */
    t = itest_now_ms() + WAIT_MS;
    CHECK_INT(read_topic(bs, T_DLQ, t, on_dlq, &w), 0);
    CHECK_INT(read_topic(bs, T_RECS, t, on_rec, &w), 0);
    CHECK_INT(w.dlq_unknown, 0);
    for (size_t i = 0; i < w.n_bad; i++) {
        if (w.bad[i].dlq_seen < 1)
            fprintf(stderr,
                    "malformed record %zu (%s [%d] @%" PRId64
                    ") not on the DLQ\n",
                    i, input_topics[w.bad[i].topic], (int)w.bad[i].partition,
                    w.bad[i].offset);
        CHECK(w.bad[i].dlq_seen >= 1);
    }
    for (size_t u = 0; u < w.n_users; u++) {
        if (w.lists_of[u] == 0)
            fprintf(stderr, "no list for %s\n", w.users[u]);
        CHECK(w.lists_of[u] >= 1);
    }
    fprintf(stderr,
            "%zu users, %zu dead letters read (%zu owed), %zu lists read, "
            "%.1f s\n",
            w.n_users, w.dlq_read, w.n_bad, w.recs_read,
            (double)(itest_now_ms() - t0) / 1000.0);

out:
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    advrec_kafka_destroy(producer);
    advrec_daemon_destroy(daemon);
    logtext = log_release();
    if (logtext) {
        /* (e) the outage in the log: librdkafka's warnings, routed. */
        int n = count_lines(logtext, "librdkafka", "_TRANSPORT") +
                count_lines(logtext, "librdkafka", "_ALL_BROKERS_DOWN");
        fprintf(stderr, "%d log lines about the brokers being away\n", n);
        CHECK(n > 0);
        if (check_failed_asserts || getenv("BF_LOG")) /* the whole log */
            fputs(logtext, stderr);
    }
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    advrec_broker_destroy(broker);
    free(logtext);
    free(metrics);
    free(w.users);
    free(w.lists_of);
}

int main(void)
{
    advrec_log_set_level(getenv("BF_DEBUG") ? ADVREC_LOG_DEBUG
                                            : ADVREC_LOG_NOTICE);
    RUN(test_broker_faults);
    return DONE();
}
