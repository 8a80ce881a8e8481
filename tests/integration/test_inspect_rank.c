/*
 * Integration test: advrec-inspect's list for a user is the list the daemon
 * publishes for the same state.
 *
 * The daemon runs in-process on its embedded broker with a state.dir, on a
 * generated stream, with debounce and staleness at a day, so no list goes
 * out before the stop; the stop refreshes every stale user, i.e. everyone,
 * from the final state, which is what is committed. Then for every user
 * the last list on the recommendation topic is compared with what
 * `advrec-inspect --json -X ... STATE_DIR user ID` prints (the binary, as a
 * user runs it): the same items in the same order and the same scores (to
 * float rounding: the daemon scores users in one sgemm batch, inspect one
 * user at a time). recs.history is 4, so exclusions come from the purchase
 * sets, not the ring; cold users (under recs.cold.events) get popularity
 * lists from both, warm users model lists, and both kinds are checked.
 */
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"
#include "synth.h"

#define N_EVENTS 1500
#define N_USERS  60
#define N_ITEMS  80
#define RECS_N   5
#define WAIT_MS  90000

/* The settings lists depend on, given to the daemon and to inspect. */
static const char *const list_sets[][2] = {
    {"recs.n", "5"},
    {"recs.exclude", "purchased"},
    {"recs.cold.events", "4"},
    {"recs.history", "4"},
    {"recs.popularity.halflife.s", "600"},
};

typedef struct last_s {
    char user[ADVREC_ID_MAX];
    char items[RECS_N][ADVREC_ID_MAX];
    float scores[RECS_N];
    size_t n;
} last_t;

static const char *inspect; /* the advrec-inspect binary (argv[1]) */
static last_t lasts[N_USERS * 4];
static size_t n_lasts;

static last_t *last_of(const char *user)
{
    for (size_t i = 0; i < n_lasts; i++)
        if (strcmp(lasts[i].user, user) == 0)
            return &lasts[i];
    if (n_lasts == sizeof(lasts) / sizeof(lasts[0]))
        return NULL;
    snprintf(lasts[n_lasts].user, ADVREC_ID_MAX, "%s", user);
    return &lasts[n_lasts++];
}

/* advrec-inspect's JSON for user, parsed; NULL on failure. */
static json_t *inspect_user(const char *dir, const char *user)
{
    char cmd[4096], *buf = NULL;
    size_t off = 0, cap = 0, r;
    json_error_t jerr;
    json_t *root;
    FILE *p;
    int n = snprintf(cmd, sizeof(cmd), "'%s' --json", inspect);

    for (size_t i = 0; i < sizeof(list_sets) / sizeof(list_sets[0]); i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " -X %s=%s",
                      list_sets[i][0], list_sets[i][1]);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s' user '%s'", dir, user);
    p = popen(cmd, "r");
    if (!p)
        return NULL;
    do {
        if (off + 4096 > cap) {
            char *b = realloc(buf, cap + 65536);
            if (!b)
                break;
            buf = b;
            cap += 65536;
        }
        r = fread(buf + off, 1, cap - off - 1, p);
        off += r;
    } while (r > 0);
    if (pclose(p) != 0 || !buf) {
        fprintf(stderr, "%s: failed\n", cmd);
        free(buf);
        return NULL;
    }
    buf[off] = '\0';
    root = json_loads(buf, 0, &jerr);
    if (!root)
        fprintf(stderr, "%s: not JSON: %s\n", cmd, jerr.text);
    free(buf);
    return root;
}

static void test_inspect_equals_daemon(void)
{
    char errstr[512], dir[] = "/tmp/advrec-itest-inspect-XXXXXX";
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_daemon_t *daemon = NULL;
    advrec_kafka_t *kproducer = NULL, *kreader = NULL;
    rd_kafka_t *producer = NULL, *reader = NULL;
    pthread_t thread;
    int running = 0, have_dir = 0;
    advrec_daemon_stats_t st;
    uint64_t produced = 0, lists = 0;
    int64_t deadline;
    size_t cold = 0, warm = 0, warm_excluding = 0;
    advrec_event_t ev;
    const char *sets[][2] = {
        {"topic.clicks", "iti.clicks"},
        {"topic.purchases", "iti.purchases"},
        {"topic.recommendations", "iti.recs"},
        {"topic.anomalies", "iti.anomalies"},
        {"topic.dlq", "iti.dlq"},
        {"group.id", "itest-inspect"},
        {"broker.embedded.partitions", "2"},
        {"model.k", "8"},
        {"stats.interval.ms", "0"},
        {"http.listen", ""}, /* off: tests run side by side */
        {"state.sync", "none"},
        /* No list before the stop: all come from the final state. */
        {"recs.debounce.ms", "86400000"},
        {"recs.max.staleness.ms", "86400000"},
    };

    CHECK(conf != NULL);
    if (!conf)
        return;
    CHECK(mkdtemp(dir) != NULL);
    have_dir = 1;
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        CHECK_INT(advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
    for (size_t i = 0; i < sizeof(list_sets) / sizeof(list_sets[0]); i++)
        CHECK_INT(advrec_conf_set(conf, list_sets[i][0], list_sets[i][1],
                                  errstr, sizeof(errstr)),
                  ADVREC_OK);
    CHECK_INT(advrec_conf_set(conf, "state.dir", dir, errstr, sizeof(errstr)),
              ADVREC_OK);
    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    CHECK(codec != NULL);
    for (size_t i = 0; codec && i < conf->schemas_cnt; i++)
        CHECK_INT(advrec_codec_register(codec, conf->schemas[i].id,
                                        conf->schemas[i].path, errstr,
                                        sizeof(errstr)),
                  ADVREC_OK);
    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.seed = 5;
    sp.n_users = N_USERS;
    sp.n_items = N_ITEMS;
    sp.max_events = N_EVENTS;
    sp.purchase_prob = 0.3;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    CHECK(synth != NULL);
    int32_t click_id = (int32_t)conf->schema_click_id;
    int32_t purchase_id = (int32_t)conf->schema_purchase_id;
    CHECK_INT(advrec_daemon_new(&daemon, conf, errstr, sizeof(errstr)),
              ADVREC_OK);
    conf = NULL;
    if (!daemon || !codec || !synth)
        goto out;
    CHECK_INT(advrec_daemon_start(daemon, errstr, sizeof(errstr)), ADVREC_OK);
    CHECK_INT(pthread_create(&thread, NULL, itest_run_daemon, daemon), 0);
    running = 1;
    kproducer =
        itest_client(ADVREC_KAFKA_PRODUCER, advrec_daemon_bootstraps(daemon),
                     NULL, NULL, 0, NULL, NULL);
    kreader =
        itest_client(ADVREC_KAFKA_CONSUMER, advrec_daemon_bootstraps(daemon),
                     "itest-inspect-reader", NULL, 0, NULL, NULL);
    CHECK(kproducer && kreader);
    producer = kproducer ? advrec_kafka_rk(kproducer) : NULL;
    reader = kreader ? advrec_kafka_rk(kreader) : NULL;
    if (!producer || !reader)
        goto out;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        unsigned char buf[2048];
        size_t len;
        int purchase = ev.type == ADVREC_EVENT_PURCHASE;
        CHECK_INT(advrec_codec_encode_event(
                      codec, purchase ? purchase_id : click_id, &ev, buf,
                      sizeof(buf), &len, errstr, sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(advrec_kafka_produce(
                      kproducer, purchase ? "iti.purchases" : "iti.clicks",
                      ev.user_id, strlen(ev.user_id), buf, len, NULL, 0, NULL),
                  0);
        produced++;
    }
    CHECK_INT(rd_kafka_flush(producer, 30000), 0);
    deadline = itest_now_ms() + WAIT_MS;
    do {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL); /* polling a counter: no event to wait on */
        advrec_daemon_stats(daemon, &st);
    } while (st.consumed < produced && itest_now_ms() < deadline);
    CHECK_INT(st.consumed, produced);
    CHECK_INT(st.recs, 0); /* nothing due before the stop */
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    running = 0;
    advrec_daemon_stats(daemon, &st);
    CHECK_INT(st.recs, st.users);
    CHECK(st.recs_popular > 0 && st.recs_popular < st.recs);

    /* The lists, the last one per user (a user's are on one partition). */
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, "iti.recs", RD_KAFKA_PARTITION_UA);
    CHECK_INT(rd_kafka_subscribe(reader, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    deadline = itest_now_ms() + WAIT_MS;
    while (lists < st.recs && itest_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 200);
        advrec_recommendation_t rec;
        last_t *l;
        if (!m)
            continue;
        if (m->err ||
            advrec_codec_decode_recommendation(codec, m->payload, m->len, &rec,
                                               errstr, sizeof(errstr))) {
            rd_kafka_message_destroy(m);
            continue;
        }
        lists++;
        l = last_of(rec.user_id);
        CHECK(l != NULL && rec.n_items <= RECS_N);
        if (l && rec.n_items <= RECS_N) {
            l->n = rec.n_items;
            for (size_t r = 0; r < rec.n_items; r++) {
                snprintf(l->items[r], ADVREC_ID_MAX, "%s",
                         rec.items[r].item_id);
                l->scores[r] = rec.items[r].score;
            }
        }
        advrec_recommendation_clear(&rec);
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(lists, st.recs);
    CHECK_INT(n_lasts, st.users);

    /* The broker goes with the daemon: our clients first. */
    rd_kafka_consumer_close(reader);
    advrec_kafka_destroy(kreader);
    kreader = NULL;
    reader = NULL;
    advrec_kafka_destroy(kproducer);
    kproducer = NULL;
    producer = NULL;
    advrec_daemon_destroy(daemon);
    daemon = NULL;

    for (size_t i = 0; i < n_lasts; i++) {
        const last_t *l = &lasts[i];
        json_t *root = inspect_user(dir, l->user);
        json_t *top = root ? json_object_get(root, "top") : NULL;
        const char *kind =
            root ? json_string_value(json_object_get(root, "list")) : NULL;
        int same = top && json_array_size(top) == l->n;

        CHECK(root != NULL && kind != NULL);
        for (size_t r = 0; same && r < l->n; r++) {
            json_t *e = json_array_get(top, r);
            const char *item = json_string_value(json_object_get(e, "item"));
            double s = json_number_value(json_object_get(e, "score"));
            same = item && strcmp(item, l->items[r]) == 0 &&
                   fabs(s - l->scores[r]) <= 1e-5 * (1 + fabs(s));
        }
        if (!same) {
            char *says = top ? json_dumps(top, JSON_COMPACT) : NULL;
            fprintf(stderr, "user %s: the daemon published", l->user);
            for (size_t r = 0; r < l->n; r++)
                fprintf(stderr, " %s %.9g", l->items[r], (double)l->scores[r]);
            fprintf(stderr, "; advrec-inspect says %s\n",
                    says ? says : "nothing");
            free(says);
        }
        CHECK(same);
        if (kind && strcmp(kind, "popularity") == 0)
            cold++;
        else if (kind) {
            warm++;
            warm_excluding +=
                json_integer_value(json_object_get(root, "purchased_set")) > 4;
        }
        json_decref(root);
    }
    fprintf(stderr,
            "%zu users compared: %zu cold (popularity), %zu warm (model), "
            "%zu of them excluding more purchases than recs.history holds\n",
            n_lasts, cold, warm, warm_excluding);
    CHECK(cold > 0);
    CHECK(warm > 0);
    CHECK(warm_excluding > 0);

out:
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    if (reader)
        rd_kafka_consumer_close(reader);
    advrec_kafka_destroy(kreader);
    advrec_kafka_destroy(kproducer);
    advrec_daemon_destroy(daemon);
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    if (have_dir)
        nftw(dir, itest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_inspect_rank ADVREC_INSPECT\n");
        return 2;
    }
    inspect = argv[1];
    RUN(test_inspect_equals_daemon);
    return DONE();
}
