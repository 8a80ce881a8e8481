/*
 * Users leave the state (docs/STATE.md, "Expiry and forgetting"): the
 * daemon in-process on a mock cluster of the test's own, with a RocksDB
 * state dir. Every wait is bounded by a deadline and awaits a counter.
 *
 *  capacity      model.max.users = 40 and 160 distinct users, 5 of them
 *                active throughout: no event is dead-lettered, every event
 *                is applied, the live users never exceed 40, the users
 *                deleted to make room are counted, and the active users
 *                keep every event of theirs (their stored counters are
 *                exact after a restart). Once without and once with a
 *                memory budget (users deleted while not in memory).
 *  forget        a tombstone keyed by a user on topic.control deletes the
 *                user's rows (not in the stored state after the commit),
 *                puts a tombstone for their list on the recommendations
 *                topic, and is applied once: after a restart on the same
 *                state the user's next event starts a new user. A record
 *                with a value there is a dead letter (bad-control).
 *  ttl           state.user.ttl = 1h: users whose last event is more than
 *                an hour of event time behind the latest are deleted at a
 *                commit, the others stay.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "store.h"

#define WAIT_MS 60000

#define T_CLICKS    "ex.clicks"
#define T_PURCHASES "ex.purchases"
#define T_RECS      "ex.recs"
#define T_ANOMALIES "ex.anomalies"
#define T_DLQ       "ex.dlq"
#define T_CONTROL   "ex.control"

#define T0 INT64_C(1700000000000)

/* The test's world: its topics of two partitions, one state dir. */
static int world_open(itest_world_t *w, const char *name)
{
    static const char *const topics[] = {T_CLICKS,    T_PURCHASES, T_RECS,
                                         T_ANOMALIES, T_DLQ,       T_CONTROL};

    return itest_world_open(w, name, topics, sizeof(topics) / sizeof(*topics),
                            2, 1);
}

/* Produces a click of user on item at event time ts. */
static void click(itest_world_t *w, const char *user, const char *item,
                  int64_t ts)
{
    itest_click(w, T_CLICKS, user, item, ts);
}

/* Produces a record on the control topic (value NULL: a tombstone). */
static void control(itest_world_t *w, const char *user, const char *value)
{
    CHECK_INT(advrec_kafka_produce(w->producer, T_CONTROL, user, strlen(user),
                                   value, value ? strlen(value) : 0, NULL, 0,
                                   NULL),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    w->produced++;
}

/* Starts a daemon on w's cluster and state dir with extra -X pairs. */
static int start(itest_world_t *w, itest_daemon_t *r,
                 const char *const (*extra)[2], size_t n_extra)
{
    char group[64];
    const char *const sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", w->bootstraps},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"topic.control", T_CONTROL},
        {"group.id", group},
        {"group.instance.id", ""},
        {"model.k", "8"},
        {"anomaly.enable", "false"},
        {"stats.interval.ms", "0"},
        {"http.listen", ""}, /* off: tests run side by side */
        {"recs.debounce.ms", "0"},
        {"state.sync", "none"},
        {"state.commit.interval.ms", "100"},
        /* The mock cluster answers a fetch only when its wait is out,
         * whatever arrives meanwhile: each of the capacity tests' 40
         * produce-then-await rounds would wait out the default 500 ms
         * (the test took 72 s, 33 s with this). */
        {"kafka.fetch.wait.max.ms", "10"},
        {"state.dir", w->dir[0]},
    };

    snprintf(group, sizeof(group), "itest-expire-%d", w->n_daemons++);
    return itest_daemon_start(r, sets, sizeof(sets) / sizeof(*sets), extra,
                              n_extra);
}

/* Awaits consumed >= n (every record produced read and applied or dead-
 * lettered); the counters then. */
static int await_consumed(itest_daemon_t *r, uint64_t n,
                          advrec_daemon_stats_t *st)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;

    for (;;) {
        advrec_daemon_stats(r->daemon, st);
        if (st->consumed >= n)
            return 0;
        if (itest_now_ms() > deadline) {
            fprintf(stderr, "consumed %llu of %llu records\n",
                    (unsigned long long)st->consumed, (unsigned long long)n);
            CHECK(0);
            return -1;
        }
        itest_poll_pause();
    }
}

#define N_COLD   160
#define N_ACTIVE 5
#define ROUNDS   40
#define MAX      40

static void run_capacity(const char *budget)
{
    itest_world_t w;
    itest_daemon_t r = {0};
    advrec_daemon_stats_t st;
    const char *const extra[][2] = {
        {"model.max.users", "40"},
        {"state.memory.limit", budget ? budget : "0"},
    };
    char user[32], item[32];
    int64_t ts = T0;
    int cold = 0;

    if (world_open(&w, "ex-cap") || start(&w, &r, extra, 2))
        goto out;
    /* The active users click every round; between rounds, new users
     * arrive, each with two clicks, so the table overflows many times. */
    for (int round = 0; round < ROUNDS; round++) {
        for (int a = 0; a < N_ACTIVE; a++) {
            snprintf(user, sizeof(user), "active-%d", a);
            snprintf(item, sizeof(item), "i%d", (round + a) % 30);
            click(&w, user, item, ts += 1000);
        }
        for (int c = 0; c < N_COLD / ROUNDS; c++, cold++) {
            snprintf(user, sizeof(user), "cold-%d", cold);
            for (int e = 0; e < 2; e++) {
                snprintf(item, sizeof(item), "i%d", (cold + e) % 30);
                click(&w, user, item, ts += 1000);
            }
        }
        /* Applied in order: the active users stay the most recent. */
        CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 10000), 0);
        if (await_consumed(&r, w.produced, &st))
            goto out;
        CHECK(st.users <= MAX);
    }
    CHECK_INT(st.dlq, 0);
    CHECK_INT(st.clicks, w.produced);
    CHECK(st.users <= MAX);
    CHECK(st.users_deleted[2] >= N_COLD + N_ACTIVE - MAX);
    CHECK_INT(st.users_deleted[0] + st.users_deleted[1], 0);
    fprintf(stderr,
            "capacity%s%s: %llu events, %u users live, %llu deleted to make "
            "room\n",
            budget ? " with state.memory.limit=" : "", budget ? budget : "",
            (unsigned long long)st.clicks, st.users,
            (unsigned long long)st.users_deleted[2]);
    itest_daemon_destroy(&r);
    /* Every active user kept every event of theirs; the state holds at
     * most model.max.users users and loads again. */
    for (int a = 0; a < N_ACTIVE; a++) {
        snprintf(user, sizeof(user), "active-%d", a);
        CHECK_INT(itest_stored_clicks(w.dir[0], user), ROUNDS);
    }
    CHECK_INT(itest_stored_clicks(w.dir[0], "cold-0"), -1);
    if (start(&w, &r, extra, 2))
        goto out;
    {
        int64_t deadline = itest_now_ms() + WAIT_MS;
        do {
            itest_poll_pause();
            advrec_daemon_stats(r.daemon, &st);
        } while (st.rounds < 2 && itest_now_ms() < deadline);
    }
    CHECK(st.users <= MAX);
    CHECK(st.users >= N_ACTIVE);

out:
    itest_daemon_destroy(&r);
    itest_world_close(&w);
}

static void test_capacity(void)
{
    run_capacity(NULL);
}

static void test_capacity_budget(void)
{
    /* Small enough that most users are not in memory. */
    run_capacity("64k");
}

/* Reads the recommendations topic until key's latest record is a
 * tombstone after a list; 1 when it was. */
static int await_list_tombstone(itest_world_t *w, const char *key)
{
    advrec_kafka_t *reader =
        itest_client(ADVREC_KAFKA_CONSUMER, w->bootstraps, "itest-expire-rd",
                     NULL, 0, NULL, NULL);
    rd_kafka_topic_partition_list_t *sub;
    int64_t deadline = itest_now_ms() + WAIT_MS;
    int lists = 0, tombstone = 0;

    CHECK(reader != NULL);
    if (!reader)
        return 0;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, T_RECS, RD_KAFKA_PARTITION_UA);
    CHECK_INT(rd_kafka_subscribe(advrec_kafka_rk(reader), sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    while (!tombstone && itest_now_ms() < deadline) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(advrec_kafka_rk(reader), 200);
        if (!m)
            continue;
        if (!m->err && m->key_len == strlen(key) &&
            memcmp(m->key, key, m->key_len) == 0) {
            if (m->payload)
                lists++;
            else if (lists)
                tombstone = 1;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(advrec_kafka_rk(reader));
    advrec_kafka_destroy(reader);
    CHECK(lists > 0);
    return tombstone;
}

static void test_forget(void)
{
    itest_world_t w;
    itest_daemon_t r = {0};
    advrec_daemon_stats_t st;
    char user[32], item[32];
    int64_t ts = T0;

    if (world_open(&w, "ex-forget") || start(&w, &r, NULL, 0))
        goto out;
    for (int u = 0; u < 10; u++)
        for (int e = 0; e < 3; e++) {
            snprintf(user, sizeof(user), "u%d", u);
            snprintf(item, sizeof(item), "i%d", (u + e) % 7);
            click(&w, user, item, ts += 1000);
        }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 10000), 0);
    if (await_consumed(&r, w.produced, &st))
        goto out;
    control(&w, "u3", NULL);
    control(&w, "nobody", NULL);
    control(&w, "u4", "not a tombstone");
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 10000), 0);
    if (await_consumed(&r, w.produced, &st))
        goto out;
    CHECK_INT(st.forget_requests, 2);
    CHECK_INT(st.users_deleted[1], 1);
    CHECK_INT(st.dlq, 1);
    CHECK_INT(st.dead[ADVREC_DLQ_BAD_CONTROL], 1);
    CHECK_INT(st.users, 9);
    CHECK(await_list_tombstone(&w, "u3"));
    itest_daemon_destroy(&r);
    CHECK_INT(itest_stored_clicks(w.dir[0], "u3"), -1);
    CHECK_INT(itest_stored_clicks(w.dir[0], "u4"), 3);

    /* A restart replays nothing of it; u3's next event is a new user. */
    if (start(&w, &r, NULL, 0))
        goto out;
    click(&w, "u3", "i1", ts += 1000);
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 10000), 0);
    if (await_consumed(&r, 1, &st))
        goto out;
    CHECK_INT(st.consumed, 1);
    CHECK_INT(st.forget_requests, 0);
    CHECK_INT(st.users, 10);
    itest_daemon_destroy(&r);
    CHECK_INT(itest_stored_clicks(w.dir[0], "u3"), 1);

out:
    itest_daemon_destroy(&r);
    itest_world_close(&w);
}

static void test_ttl(void)
{
    itest_world_t w;
    itest_daemon_t r = {0};
    advrec_daemon_stats_t st;
    const char *const extra[][2] = {{"state.user.ttl", "1h"}};
    char user[32];
    int64_t deadline;

    if (world_open(&w, "ex-ttl") || start(&w, &r, extra, 1))
        goto out;
    for (int u = 0; u < 6; u++) {
        snprintf(user, sizeof(user), "old%d", u);
        click(&w, user, "i1", T0 + u * 1000);
        click(&w, user, "i2", T0 + u * 1000 + 500);
    }
    /* Two hours of event time later. */
    for (int u = 0; u < 4; u++) {
        snprintf(user, sizeof(user), "new%d", u);
        click(&w, user, "i1", T0 + 7200000 + u * 1000);
        click(&w, user, "i3", T0 + 7200000 + u * 1000 + 500);
    }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 10000), 0);
    if (await_consumed(&r, w.produced, &st))
        goto out;
    /* The expiry runs with the commits (every 100 ms here). */
    deadline = itest_now_ms() + WAIT_MS;
    while (st.users_deleted[0] < 6 && itest_now_ms() < deadline) {
        itest_poll_pause();
        advrec_daemon_stats(r.daemon, &st);
    }
    CHECK_INT(st.users_deleted[0], 6);
    CHECK_INT(st.users, 4);
    CHECK_INT(st.dlq, 0);
    itest_daemon_destroy(&r);
    CHECK_INT(itest_stored_clicks(w.dir[0], "old0"), -1);
    CHECK_INT(itest_stored_clicks(w.dir[0], "old5"), -1);
    CHECK_INT(itest_stored_clicks(w.dir[0], "new0"), 2);
    CHECK_INT(itest_stored_clicks(w.dir[0], "new3"), 2);

out:
    itest_daemon_destroy(&r);
    itest_world_close(&w);
}

int main(void)
{
    RUN(test_capacity);
    RUN(test_capacity_budget);
    RUN(test_forget);
    RUN(test_ttl);
    return DONE();
}
