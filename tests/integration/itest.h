/*
 * Helpers shared by the in-process integration tests (the daemon on its
 * embedded broker, Kafka clients of our own): a monotonic clock for
 * deadlines, a thread body running the daemon, clients (lib/kafka) on the
 * daemon's bootstrap address, an nftw() callback removing a state dir, and
 * a stored user's clicks read from a state dir.
 * Header-only (static functions): each test is one executable.
 */
#ifndef ADVREC_ITEST_H
#define ADVREC_ITEST_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "daemon.h"
#include "kafka.h"
#include "store.h"

/* Milliseconds of CLOCK_MONOTONIC: for deadlines. */
static inline int64_t itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

#endif
