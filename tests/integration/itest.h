/*
 * Helpers shared by the in-process integration tests (the daemon on its
 * embedded broker, Kafka clients of our own): a monotonic clock for
 * deadlines, a thread body running the daemon, clients (lib/kafka) on the
 * daemon's bootstrap address, an nftw() callback removing a state dir, a
 * stored user's clicks read from a state dir, a test's world (a mock
 * cluster with its topics, the codec, a producer, state dirs) and daemons
 * started in threads of the test.
 * Header-only (static functions; CHECKs count in the including test): each
 * test is one executable.
 */
#ifndef ADVREC_ITEST_H
#define ADVREC_ITEST_H

#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "event.h"
#include "kafka.h"
#include "store.h"

/* Milliseconds of CLOCK_MONOTONIC: for deadlines. */
static inline int64_t itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The interval of a bounded poll of counters that offer no event to
 * await. */
static inline void itest_poll_pause(void)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
}

/* nftw() callback: removes every entry (with FTW_DEPTH | FTW_PHYS). */
static inline int itest_rm_entry(const char *path, const struct stat *st,
                                 int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* pthread body: advrec_daemon_run(arg) until stopped; errors on stderr. */
static inline void *itest_run_daemon(void *arg)
{
    char errstr[512];
    if (advrec_daemon_run(arg, errstr, sizeof(errstr)))
        fprintf(stderr, "daemon: %s\n", errstr);
    return NULL;
}

/*
 * A lib/kafka client of role on bootstraps, so the tests set up their
 * clients exactly as advrecd does (lib/kafka's defaults: a producer is
 * idempotent with the murmur2_random partitioner of the Java client, a
 * consumer reads from the earliest offset and is already polled through
 * its consumer queue). group (consumers; may be NULL) becomes group.id;
 * props[0..n_props) (may be NULL) are set over the defaults; on_delivery
 * (producers; may be NULL) gets every delivery report with opaque. Owned by
 * the caller (advrec_kafka_destroy; close a consumer first). NULL on
 * failure, with the reason on stderr.
 */
static inline advrec_kafka_t *
itest_client(advrec_kafka_role_t role, const char *bootstraps,
             const char *group, const advrec_kafka_prop_t *props,
             size_t n_props, advrec_kafka_delivery_cb *on_delivery,
             void *opaque)
{
    const advrec_kafka_prop_t defaults[] = {{"group.id", group, NULL}};
    advrec_kafka_params_t p = {
        .role = role,
        .bootstraps = bootstraps,
        .defaults = defaults,
        .n_defaults = group ? 1 : 0,
        .props = props,
        .n_props = n_props,
        .on_delivery = on_delivery,
        .opaque = opaque,
    };
    advrec_kafka_t *kafka;
    char errstr[512];

    if (advrec_kafka_new(&kafka, &p, errstr, sizeof(errstr))) {
        fprintf(stderr, "itest_client: %s\n", errstr);
        return NULL;
    }
    return kafka;
}

/* A stored user's clicks in state dir (opened read-only), -1 when the user
 * is not stored, -2 (said on stderr) when the state does not open. */
static inline int64_t itest_stored_clicks(const char *dir, const char *user)
{
    advrec_store_t *store;
    advrec_store_row_t row;
    char errstr[512];
    int64_t n = -1;

    if (advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        return -2;
    }
    memset(&row, 0, sizeof(row));
    if (advrec_store_get_user(store, user, &row, errstr, sizeof(errstr)) == 0) {
        n = (int64_t)row.clicks;
        advrec_store_row_free(&row);
    }
    advrec_store_close(store);
    return n;
}

/* One test's world: a mock cluster (one broker) with its topics, the codec
 * of the built-in schemas, a producer, and up to two state dirs. */
typedef struct itest_world_s {
    advrec_broker_t *broker;
    const char *bootstraps;
    advrec_codec_t *codec;
    advrec_kafka_t *producer;
    int32_t click_id;
    char dir[2][64]; /* "" unless asked for */
    uint64_t produced;
    int64_t ts;    /* the test's event clock, as it wants it */
    int n_daemons; /* started so far, for names of the test's own */
} itest_world_t;

/*
 * Opens w: topics[0..n_topics) made with `partitions` partitions each, and
 * n_dirs (0..2) fresh state dirs /tmp/advrec-itest-<name><a|b>-XXXXXX.
 * 0, or -1 (CHECKed) with w to be closed all the same.
 */
static inline int itest_world_open(itest_world_t *w, const char *name,
                                   const char *const *topics, size_t n_topics,
                                   int partitions, int n_dirs)
{
    char errstr[512];
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));

    memset(w, 0, sizeof(*w));
    for (int i = 0; i < n_dirs && i < 2; i++) {
        snprintf(w->dir[i], sizeof(w->dir[i]), "/tmp/advrec-itest-%s%c-XXXXXX",
                 name, 'a' + i);
        CHECK(mkdtemp(w->dir[i]) != NULL);
    }
    CHECK(conf != NULL);
    w->broker = advrec_broker_new(1, errstr, sizeof(errstr));
    CHECK(w->broker != NULL);
    if (!conf || !w->broker) {
        advrec_conf_destroy(conf);
        return -1;
    }
    w->bootstraps = advrec_broker_bootstraps(w->broker);
    for (size_t i = 0; i < n_topics; i++)
        CHECK_INT(advrec_broker_create_topic(w->broker, topics[i], partitions,
                                             errstr, sizeof(errstr)),
                  ADVREC_OK);
    w->codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    CHECK(w->codec != NULL);
    for (size_t i = 0; w->codec && i < conf->schemas_cnt; i++)
        CHECK_INT(advrec_codec_register(w->codec, conf->schemas[i].id,
                                        conf->schemas[i].path, errstr,
                                        sizeof(errstr)),
                  ADVREC_OK);
    w->click_id = (int32_t)conf->schema_click_id;
    advrec_conf_destroy(conf);
    w->producer = itest_client(ADVREC_KAFKA_PRODUCER, w->bootstraps, NULL, NULL,
                               0, NULL, NULL);
    CHECK(w->producer != NULL);
    return w->codec && w->producer ? 0 : -1;
}

static inline void itest_world_close(itest_world_t *w)
{
    advrec_kafka_destroy(w->producer);
    advrec_codec_destroy(w->codec);
    advrec_broker_destroy(w->broker);
    for (int i = 0; i < 2; i++)
        if (w->dir[i][0])
            nftw(w->dir[i], itest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Produces a click of user on item at event time ts to topic, keyed by
 * user (flush the producer to send it now). */
static inline void itest_click(itest_world_t *w, const char *topic,
                               const char *user, const char *item, int64_t ts)
{
    advrec_event_t ev;
    unsigned char buf[1024];
    size_t len;
    char errstr[256];

    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_CLICK;
    snprintf(ev.user_id, sizeof(ev.user_id), "%s", user);
    snprintf(ev.item_id, sizeof(ev.item_id), "%s", item);
    ev.ts_ms = ts;
    CHECK_INT(advrec_codec_encode_event(w->codec, w->click_id, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_kafka_produce(w->producer, topic, user, strlen(user), buf,
                                   len, NULL, 0, NULL),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    w->produced++;
}

/* A daemon of the test's, run by a thread of its own. */
typedef struct itest_daemon_s {
    advrec_daemon_t *daemon;
    pthread_t thread;
    int running;
} itest_daemon_t;

/*
 * Makes, starts and runs (in a thread) a daemon configured by sets, then
 * extra (either may be NULL with 0 pairs). 0, or -1 (CHECKed, said on
 * stderr); destroy r either way.
 */
static inline int
itest_daemon_start(itest_daemon_t *r, const char *const (*sets)[2],
                   size_t n_sets, const char *const (*extra)[2], size_t n_extra)
{
    char errstr[512];
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));

    memset(r, 0, sizeof(*r));
    CHECK(conf != NULL);
    if (!conf)
        return -1;
    for (size_t i = 0; i < n_sets; i++)
        CHECK_INT(advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
    for (size_t i = 0; i < n_extra; i++)
        CHECK_INT(advrec_conf_set(conf, extra[i][0], extra[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
    if (advrec_daemon_new(&r->daemon, conf, errstr, sizeof(errstr))) {
        fprintf(stderr, "daemon: %s\n", errstr);
        CHECK(0);
        return -1;
    }
    if (advrec_daemon_start(r->daemon, errstr, sizeof(errstr))) {
        fprintf(stderr, "daemon start: %s\n", errstr);
        CHECK(0);
        return -1;
    }
    CHECK_INT(pthread_create(&r->thread, NULL, itest_run_daemon, r->daemon), 0);
    r->running = 1;
    return 0;
}

/* Stops r's daemon (a clean stop: its run() returns) and joins its thread. */
static inline void itest_daemon_stop(itest_daemon_t *r)
{
    if (r->running) {
        advrec_daemon_stop(r->daemon);
        pthread_join(r->thread, NULL);
        r->running = 0;
    }
}

/* Stops and destroys r's daemon. */
static inline void itest_daemon_destroy(itest_daemon_t *r)
{
    itest_daemon_stop(r);
    advrec_daemon_destroy(r->daemon);
    r->daemon = NULL;
}

#endif
