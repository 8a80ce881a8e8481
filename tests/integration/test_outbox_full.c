/*
 * A full outbox does not cost the daemon its group membership
 * (docs/RELIABILITY.md, "Broker faults"): while more outputs than the
 * outbox's bound (16,384 records) are unacknowledged, consumption pauses,
 * but a consumer not polled for kafka.max.poll.interval.ms leaves its group
 * and its partitions are taken from it. So one round in every half of that
 * interval consumes all the same.
 *
 * The daemon runs in-process on a mock cluster of the test's own, state in
 * memory, with kafka.max.poll.interval.ms = 3000. The dead-letter topic's
 * partition has no leader, so no dead letter can be delivered, and 17,000
 * malformed records are produced: the outbox fills and stays full. Every
 * wait awaits a counter under a deadline:
 *  (a) consumption paused for the full outbox (advrec_outbox_paused_rounds);
 *  (b) rounds consumed all the same while it stayed full, at least three
 *      (4.5 s, longer than the interval), and no input partition was
 *      revoked meanwhile: the member stayed in its group;
 *  (c) once the partition has its leader back, every malformed record is a
 *      dead letter delivered exactly as counted, nothing is pending, and
 *      still nothing was revoked.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"

#define WAIT_MS 120000
#define N_BAD   17000 /* above the outbox's bound of 16,384 records */

#define T_CLICKS    "of.clicks"
#define T_PURCHASES "of.purchases"
#define T_RECS      "of.recs"
#define T_ANOMALIES "of.anomalies"
#define T_DLQ       "of.dlq"

/* Waits (bounded) until pred holds for the daemon's counters; 0 if it
 * did, the counters in *st either way. */
static int await_stats(advrec_daemon_t *daemon, advrec_daemon_stats_t *st,
                       int (*pred)(const advrec_daemon_stats_t *))
{
    int64_t deadline = itest_now_ms() + WAIT_MS;

    for (;;) {
        advrec_daemon_stats(daemon, st);
        if (pred(st))
            return 0;
        if (itest_now_ms() > deadline)
            return -1;
        itest_poll_pause();
    }
}

static int paused(const advrec_daemon_stats_t *st)
{
    return st->outbox_paused > 0;
}

static int guarded(const advrec_daemon_stats_t *st)
{
    return st->outbox_guard >= 3;
}

static int delivered(const advrec_daemon_stats_t *st)
{
    return st->dlq_delivered >= N_BAD && st->outbox_pending == 0;
}

static void test_full_outbox_keeps_membership(void)
{
    static const char *const topics[] = {T_CLICKS, T_PURCHASES, T_RECS,
                                         T_ANOMALIES, T_DLQ};
    const char *sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", ""},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"group.id", "outbox-full"},
        {"group.instance.id", ""},
        {"model.k", "8"},
        {"anomaly.enable", "false"},
        {"stats.interval.ms", "0"},
        {"state.dir", ""},
        {"http.listen", ""},
        {"kafka.max.poll.interval.ms", "3000"},
        {"kafka.session.timeout.ms", "3000"},
        {"kafka.heartbeat.interval.ms", "500"},
    };
    itest_world_t w;
    itest_daemon_t r;
    advrec_daemon_stats_t st;
    rd_kafka_mock_cluster_t *mock;
    char value[32];

    memset(&r, 0, sizeof(r));
    if (itest_world_open(&w, "of", topics, sizeof(topics) / sizeof(*topics), 1,
                         0))
        goto out;
    sets[1][1] = w.bootstraps;
    mock = advrec_broker_mock(w.broker);
    CHECK_INT(rd_kafka_mock_partition_set_leader(mock, T_DLQ, 0, -1), 0);
    for (int i = 0; i < N_BAD; i++) {
        int n = snprintf(value, sizeof(value), "not avro %d", i);
        CHECK_INT(advrec_kafka_produce(w.producer, T_CLICKS, "k", 1, value,
                                       (size_t)n, NULL, 0, NULL),
                  RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 30000), 0);
    if (itest_daemon_start(&r, sets, sizeof(sets) / sizeof(*sets), NULL, 0))
        goto out;

    /* (a) */
    CHECK_INT(await_stats(r.daemon, &st, paused), 0);
    /* (b) */
    CHECK_INT(await_stats(r.daemon, &st, guarded), 0);
    fprintf(stderr,
            "outbox full: %llu rounds paused, %llu consumed all the same, "
            "%llu pending, %llu partitions revoked\n",
            (unsigned long long)st.outbox_paused,
            (unsigned long long)st.outbox_guard,
            (unsigned long long)st.outbox_pending,
            (unsigned long long)st.revoked);
    CHECK(st.outbox_pending >= 16384);
    CHECK_INT(st.revoked, 0);

    /* (c) */
    CHECK_INT(rd_kafka_mock_partition_set_leader(mock, T_DLQ, 0, 1), 0);
    CHECK_INT(await_stats(r.daemon, &st, delivered), 0);
    fprintf(stderr,
            "delivered: %llu dead letters of %llu, %llu consumed, %llu "
            "pending, %llu partitions revoked\n",
            (unsigned long long)st.dlq_delivered, (unsigned long long)st.dlq,
            (unsigned long long)st.consumed,
            (unsigned long long)st.outbox_pending,
            (unsigned long long)st.revoked);
    CHECK_INT(st.consumed, N_BAD);
    CHECK_INT(st.dlq, N_BAD);
    CHECK_INT(st.outbox_pending, 0);
    CHECK_INT(st.revoked, 0);

out:
    itest_daemon_destroy(&r);
    itest_world_close(&w);
}

int main(void)
{
    RUN(test_full_outbox_keeps_membership);
    return DONE();
}
