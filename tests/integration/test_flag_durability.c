/*
 * Anomaly flags are at-least-once across a crash (docs/ARCHITECTURE.md,
 * "Guarantees"). A flag is committed with the detector state that raised it
 * and leaves the state only in a commit after its delivery, so a daemon
 * killed between the two produces it again at its next start.
 *
 * The test runs advrecd (argv[1]) as a child process against a mock
 * cluster of its own (lib/broker.h) whose anomalies partition has no
 * leader, so no flag can be delivered. Each wait is bounded by a deadline:
 *  (a) fed a stream with click bots, the child commits flags: a read-only
 *      store on its state.dir shows pending flags for bots;
 *  (b) the child is killed with SIGKILL (no flush, no final commit); the
 *      flags pending in the state it left are read;
 *  (c) the partition gets its leader back and a daemon is started
 *      in-process on the same state.dir: every pending flag appears on the
 *      anomalies topic with exactly the stored key and value bytes;
 *  (d) after that daemon's clean stop, no flag is pending in the state.
 */
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"
#include "outbox.h"
#include "store.h"
#include "synth.h"

#define N_EVENTS  6000
#define N_BOTS    3
#define WAIT_MS   90000
#define MAX_FLAGS 256

#define T_CLICKS    "fd.clicks"
#define T_PURCHASES "fd.purchases"
#define T_RECS      "fd.recs"
#define T_ANOMALIES "fd.anomalies"
#define T_DLQ       "fd.dlq"

/* The interval of a bounded poll of state that offers no event to await. */
static void poll_pause(void)
{
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
}

/* Pending flags read from a state dir: copies of key and value. */
typedef struct flags_s {
    struct {
        char key[ADVREC_ID_MAX];
        unsigned char value[1024];
        size_t value_len;
        int seen; /* on the anomalies topic, byte for byte */
    } f[MAX_FLAGS];
    int n;
    int overflow; /* more than MAX_FLAGS, or a record too big */
} flags_t;

static int collect_flag(void *opaque, uint64_t seq, advrec_out_kind_t kind,
                        const void *key, size_t key_len, const void *value,
                        size_t value_len)
{
    flags_t *fl = opaque;
    (void)seq;
    if (kind != ADVREC_OUT_FLAG)
        return 0;
    if (fl->n == MAX_FLAGS || key_len >= sizeof(fl->f[0].key) ||
        value_len > sizeof(fl->f[0].value)) {
        fl->overflow = 1;
        return 1;
    }
    memcpy(fl->f[fl->n].key, key, key_len);
    fl->f[fl->n].key[key_len] = '\0';
    memcpy(fl->f[fl->n].value, value, value_len);
    fl->f[fl->n].value_len = value_len;
    fl->f[fl->n].seen = 0;
    fl->n++;
    return 0;
}

static advrec_err_t read_flags(advrec_store_t *store, flags_t *fl)
{
    char errstr[512];
    advrec_err_t err;

    fl->n = 0;
    fl->overflow = 0;
    err = advrec_store_catch_up(store, errstr, sizeof(errstr));
    if (!err)
        err = advrec_outbox_read_stored(store, collect_flag, fl, errstr,
                                        sizeof(errstr));
    if (err)
        fprintf(stderr, "pending flags: %s\n", errstr);
    return err;
}

static int bots_flagged(const flags_t *fl, char bots[][ADVREC_ID_MAX],
                        int n_bots)
{
    int n = 0;
    for (int b = 0; b < n_bots; b++)
        for (int i = 0; i < fl->n; i++)
            if (strcmp(fl->f[i].key, bots[b]) == 0) {
                n++;
                break;
            }
    return n;
}

/* Sets the configuration both daemons share. */
static void configure(advrec_conf_t *conf, const char *bootstraps,
                      const char *dir, const char *group)
{
    char errstr[512];
    const char *sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", bootstraps},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"group.id", group},
        {"model.k", "8"},
        {"stats.interval.ms", "0"},
        {"http.listen", ""}, /* off: tests run side by side */
        {"state.sync", "none"},
        {"state.dir", dir},
    };
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        CHECK_INT(advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
}

static const char *advrecd;

static void test_flags_survive_kill(void)
{
    char errstr[512], dir[] = "/tmp/advrec-itest-flagdur-XXXXXX";
    char bots[N_BOTS][ADVREC_ID_MAX];
    static flags_t pending, after;
    advrec_broker_t *broker = NULL;
    rd_kafka_mock_cluster_t *mock;
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_daemon_t *daemon = NULL;
    advrec_store_t *store = NULL;
    advrec_kafka_t *producer = NULL, *reader = NULL;
    pthread_t thread;
    pid_t child = -1;
    int running = 0, have_dir = 0, n_bots = 0, seen = 0, status;
    int64_t deadline;
    advrec_event_t ev;
    const char *bootstraps;
    const struct {
        const char *name;
        int partitions;
    } topics[] = {{T_CLICKS, 2},
                  {T_PURCHASES, 2},
                  {T_RECS, 2},
                  {T_ANOMALIES, 1},
                  {T_DLQ, 1}};

    CHECK(conf != NULL);
    if (!conf)
        return;
    CHECK(mkdtemp(dir) != NULL);
    have_dir = 1;
    broker = advrec_broker_new(1, errstr, sizeof(errstr));
    CHECK(broker != NULL);
    if (!broker)
        goto out;
    bootstraps = advrec_broker_bootstraps(broker);
    mock = advrec_broker_mock(broker);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        CHECK_INT(advrec_broker_create_topic(broker, topics[i].name,
                                             topics[i].partitions, errstr,
                                             sizeof(errstr)),
                  ADVREC_OK);
    /* No leader: every flag produced waits, none is delivered. */
    CHECK_INT(rd_kafka_mock_partition_set_leader(mock, T_ANOMALIES, 0, -1), 0);

    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    CHECK(codec != NULL);
    for (size_t i = 0; codec && i < conf->schemas_cnt; i++)
        CHECK_INT(advrec_codec_register(codec, conf->schemas[i].id,
                                        conf->schemas[i].path, errstr,
                                        sizeof(errstr)),
                  ADVREC_OK);
    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.n_users = 300;
    sp.n_items = 200;
    sp.max_events = N_EVENTS;
    sp.n_bots = N_BOTS;
    sp.bot_events = 300;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    CHECK(synth != NULL);
    if (!codec || !synth)
        goto out;

    /* (a) the first daemon, a process of its own, so it can be killed */
    {
        char bs[512], sd[512];
        snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstraps);
        snprintf(sd, sizeof(sd), "state.dir=%s", dir);
        char *const argv[] = {
            (char *)advrecd,
            "-X",
            "broker.embedded=false",
            "-X",
            bs,
            "-X",
            "topic.clicks=" T_CLICKS,
            "-X",
            "topic.purchases=" T_PURCHASES,
            "-X",
            "topic.recommendations=" T_RECS,
            "-X",
            "topic.anomalies=" T_ANOMALIES,
            "-X",
            "topic.dlq=" T_DLQ,
            "-X",
            "group.id=itest-flagdur-a",
            "-X",
            "model.k=8",
            "-X",
            "state.sync=none",
            "-X",
            sd,
            NULL,
        };
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            execv(advrecd, argv);
            perror(advrecd);
            _exit(127);
        }
        if (child < 0)
            goto out;
    }
    producer = itest_client(ADVREC_KAFKA_PRODUCER, bootstraps, NULL, NULL, 0,
                            NULL, NULL);
    CHECK(producer != NULL);
    if (!producer)
        goto out;
    int32_t click_id = (int32_t)conf->schema_click_id;
    int32_t purchase_id = (int32_t)conf->schema_purchase_id;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        unsigned char buf[2048];
        size_t len;
        int purchase = ev.type == ADVREC_EVENT_PURCHASE;
        if (advrec_synth_last_kind(synth) == ADVREC_SYNTH_BOT) {
            int i;
            for (i = 0; i < n_bots && strcmp(bots[i], ev.user_id); i++)
                ;
            if (i == n_bots && n_bots < N_BOTS)
                snprintf(bots[n_bots++], ADVREC_ID_MAX, "%s", ev.user_id);
        }
        CHECK_INT(advrec_codec_encode_event(
                      codec, purchase ? purchase_id : click_id, &ev, buf,
                      sizeof(buf), &len, errstr, sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(advrec_kafka_produce(
                      producer, purchase ? T_PURCHASES : T_CLICKS, ev.user_id,
                      strlen(ev.user_id), buf, len, NULL, 0, NULL),
                  RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    CHECK_INT(n_bots, N_BOTS);
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(producer), 30000), 0);

    /* Wait for every bot's flag to be committed (the child creates the
     * state dir: open it read-only once it exists). */
    deadline = itest_now_ms() + WAIT_MS;
    while (itest_now_ms() < deadline) {
        if (waitpid(child, &status, WNOHANG) == child) {
            child = -1;
            break;
        }
        if (!store &&
            advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr))) {
            store = NULL;
            poll_pause();
            continue;
        }
        if (read_flags(store, &pending) ||
            bots_flagged(&pending, bots, n_bots) == n_bots)
            break;
        poll_pause();
    }
    CHECK(child > 0); /* the daemon did not exit on its own */
    CHECK(store != NULL);
    CHECK_INT(bots_flagged(&pending, bots, n_bots), n_bots);

    /* (b) crash: no flush, no final commit */
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        child = -1;
    }
    if (store)
        CHECK_INT(read_flags(store, &pending), ADVREC_OK);
    advrec_store_close(store);
    store = NULL;
    CHECK(!pending.overflow);
    CHECK(pending.n >= n_bots);
    fprintf(stderr, "%d flag(s) pending after the kill\n", pending.n);

    /* (c) the broker can take flags again; a new daemon on the same dir */
    CHECK_INT(rd_kafka_mock_partition_set_leader(mock, T_ANOMALIES, 0, 1), 0);
    configure(conf, bootstraps, dir, "itest-flagdur-b");
    CHECK_INT(advrec_daemon_new(&daemon, conf, errstr, sizeof(errstr)),
              ADVREC_OK);
    conf = NULL;
    if (!daemon)
        goto out;
    CHECK_INT(advrec_daemon_start(daemon, errstr, sizeof(errstr)), ADVREC_OK);
    CHECK_INT(pthread_create(&thread, NULL, itest_run_daemon, daemon), 0);
    running = 1;
    reader = itest_client(ADVREC_KAFKA_CONSUMER, bootstraps,
                          "itest-flagdur-reader", NULL, 0, NULL, NULL);
    CHECK(reader != NULL);
    if (!reader)
        goto out;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, T_ANOMALIES, RD_KAFKA_PARTITION_UA);
    CHECK_INT(rd_kafka_subscribe(advrec_kafka_rk(reader), sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    deadline = itest_now_ms() + WAIT_MS;
    while (seen < pending.n && itest_now_ms() < deadline) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(advrec_kafka_rk(reader), 200);
        if (!m)
            continue;
        for (int i = 0; !m->err && i < pending.n; i++)
            if (!pending.f[i].seen && m->key_len == strlen(pending.f[i].key) &&
                memcmp(m->key, pending.f[i].key, m->key_len) == 0 &&
                m->len == pending.f[i].value_len &&
                memcmp(m->payload, pending.f[i].value, m->len) == 0) {
                pending.f[i].seen = 1;
                seen++;
                break;
            }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(seen, pending.n);
    for (int i = 0; i < pending.n; i++)
        if (!pending.f[i].seen)
            fprintf(stderr, "flag for %s not produced after the restart\n",
                    pending.f[i].key);

    /* (d) delivered flags leave the state in the final commit */
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    running = 0;
    advrec_daemon_stats_t st;
    advrec_daemon_stats(daemon, &st);
    CHECK_INT(st.outbox_pending, 0);
    rd_kafka_consumer_close(advrec_kafka_rk(reader));
    advrec_kafka_destroy(reader);
    reader = NULL;
    advrec_daemon_destroy(daemon);
    daemon = NULL;
    CHECK_INT(advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr)),
              ADVREC_OK);
    if (store) {
        CHECK_INT(read_flags(store, &after), ADVREC_OK);
        CHECK_INT(after.n, 0);
    }

out:
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
    }
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    if (reader)
        rd_kafka_consumer_close(advrec_kafka_rk(reader));
    advrec_kafka_destroy(reader);
    advrec_kafka_destroy(producer);
    advrec_store_close(store);
    advrec_daemon_destroy(daemon);
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    advrec_broker_destroy(broker);
    if (have_dir)
        nftw(dir, itest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ADVRECD\n", argv[0]);
        return 2;
    }
    advrecd = argv[1];
    RUN(test_flags_survive_kill);
    return DONE();
}
