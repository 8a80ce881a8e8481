/*
 * Helpers shared by the in-process integration tests (the daemon on its
 * embedded broker, librdkafka clients of our own): a monotonic clock for
 * deadlines, a thread body running the daemon, librdkafka clients on the
 * daemon's bootstrap address, and an nftw() callback removing a state dir.
 * Header-only (static functions): each test is one executable.
 */
#ifndef ADVREC_ITEST_H
#define ADVREC_ITEST_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "daemon.h"
#include "kafka.h"

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

/* A producer (murmur2_random partitioner, like the Java client) or a
 * consumer in group (reading from the earliest offset) on bootstraps.
 * Owned by the caller (rd_kafka_destroy); NULL on failure. */
static inline rd_kafka_t *
itest_client(rd_kafka_type_t type, const char *bootstraps, const char *group)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;

    advrec_kafka_conf_route_logs(c);
    advrec_kafka_conf_set(c, "bootstrap.servers", bootstraps, NULL, 0);
    if (type == RD_KAFKA_CONSUMER) {
        advrec_kafka_conf_set(c, "group.id", group, NULL, 0);
        advrec_kafka_conf_set(c, "auto.offset.reset", "earliest", NULL, 0);
    } else {
        advrec_kafka_conf_set(c, "partitioner", "murmur2_random", NULL, 0);
    }
    rk = rd_kafka_new(type, c, errstr, sizeof(errstr));
    if (!rk)
        rd_kafka_conf_destroy(c);
    return rk;
}

#endif
