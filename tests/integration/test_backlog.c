/*
 * Refreshes on a budget (docs/PERFORMANCE.md, "Refreshes on a budget"):
 * the daemon in-process on a mock cluster of the test's own, state in
 * memory. The input is pre-produced (one click of each of N users on one
 * partition), and the refreshes are held to one batch of 16 lists per
 * round (recs.refresh.budget.ms = 0) while a round may take 200 records,
 * so they cannot keep up. Every wait awaits a counter under a deadline;
 * nothing asserted depends on how fast this machine is.
 *
 *  oldest-first  the lists come out in the order their users became
 *                stale: on the one-partition recommendations topic, the
 *                input offsets the lists reflect only grow.
 *  consume       recs.backlog.policy=consume: the backlog grows past what
 *                one round takes (200), no round is skipped, and every
 *                list is made in the end.
 *  pause         recs.backlog.policy=pause with recs.max.staleness.ms=0:
 *                a round consumes only when no list is owed, so the
 *                backlog never exceeds one round's input (200; holds by
 *                construction), rounds are skipped for it, and every list
 *                is made in the end.
 *  ann metrics   recs.retrieval=ann on 400 items: index builds are counted
 *                with their duration, finish time and items, and lists
 *                served from the index are counted apart from exact ones.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"

#define WAIT_MS 120000

#define T_CLICKS    "bl.clicks"
#define T_PURCHASES "bl.purchases"
#define T_RECS      "bl.recs"
#define T_ANOMALIES "bl.anomalies"
#define T_DLQ       "bl.dlq"

#define T0        INT64_C(1700000000000)
#define ROUND_MAX 200 /* round.max.records */
#define BATCH     16  /* recs.refresh.batch */
#define N_USERS   3000

/* One test's world (itest.h): a mock cluster, a codec, the input. */
typedef itest_world_t world_t;

/* Produces a click of user on item at event time ts (flush to send). */
static void click(world_t *w, const char *user, const char *item, int64_t ts)
{
    itest_click(w, T_CLICKS, user, item, ts);
}

/* Opens w with its topics of one partition each (the input's order and
 * the lists' order are the topics' order) and n_users users' first
 * clicks produced, before the daemon starts: its first fetches find
 * plenty. */
static int world_open(world_t *w, int n_users)
{
    static const char *const topics[] = {T_CLICKS, T_PURCHASES, T_RECS,
                                         T_ANOMALIES, T_DLQ};
    char user[32], item[32];

    if (itest_world_open(w, "bl", topics, sizeof(topics) / sizeof(*topics), 1,
                         0))
        return -1;
    for (int u = 0; u < n_users; u++) {
        snprintf(user, sizeof(user), "u%05d", u);
        snprintf(item, sizeof(item), "i%d", u % 50);
        click(w, user, item, T0 + u);
    }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w->producer), 30000), 0);
    return 0;
}

static void world_close(world_t *w)
{
    itest_world_close(w);
}

/* Starts a daemon on w's cluster (state in memory) under policy with
 * recs.max.staleness.ms staleness; *daemon and *thread are the caller's. */
static int start(world_t *w, const char *policy, const char *staleness,
                 const char *const (*extra)[2], size_t n_extra,
                 advrec_daemon_t **daemon, pthread_t *thread)
{
    char errstr[512], round_max[16], batch[16];
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));
    const char *sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", w->bootstraps},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"group.id", policy},
        {"group.instance.id", ""},
        {"model.k", "8"},
        {"anomaly.enable", "false"},
        {"stats.interval.ms", "0"},
        {"state.dir", ""},
        {"http.listen", ""},
        {"round.max.records", round_max},
        {"recs.debounce.ms", "0"},
        {"recs.max.staleness.ms", staleness},
        {"recs.refresh.batch", batch},
        {"recs.refresh.budget.ms", "0"},
        {"recs.backlog.policy", policy},
    };

    snprintf(round_max, sizeof(round_max), "%d", ROUND_MAX);
    snprintf(batch, sizeof(batch), "%d", BATCH);
    CHECK(conf != NULL);
    if (!conf)
        return -1;
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        CHECK_INT(advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
    for (size_t i = 0; i < n_extra; i++)
        CHECK_INT(advrec_conf_set(conf, extra[i][0], extra[i][1], errstr,
                                  sizeof(errstr)),
                  ADVREC_OK);
    if (advrec_daemon_new(daemon, conf, errstr, sizeof(errstr))) {
        fprintf(stderr, "daemon: %s\n", errstr);
        CHECK(0);
        return -1;
    }
    CHECK_INT(advrec_daemon_start(*daemon, errstr, sizeof(errstr)), ADVREC_OK);
    CHECK_INT(pthread_create(thread, NULL, itest_run_daemon, *daemon), 0);
    return 0;
}

/* What one run saw: the largest backlog published, the counters once
 * every list was made. */
typedef struct seen_s {
    uint64_t max_stale;
    advrec_daemon_stats_t st;
    int done;
} seen_t;

/*
 * Runs a daemon under policy over w's input until every record is
 * consumed and every user has had their list (recs == users, nothing
 * stale), sampling the published backlog meanwhile (each round publishes
 * its counters once, after its refreshes).
 */
static void run(world_t *w, const char *policy, const char *staleness,
                seen_t *seen)
{
    advrec_daemon_t *daemon = NULL;
    pthread_t thread;
    int64_t deadline = itest_now_ms() + WAIT_MS;

    memset(seen, 0, sizeof(*seen));
    if (start(w, policy, staleness, NULL, 0, &daemon, &thread))
        goto out;
    for (;;) {
        struct timespec ts = {0, 1000000};
        advrec_daemon_stats(daemon, &seen->st);
        if (seen->st.stale > seen->max_stale)
            seen->max_stale = seen->st.stale;
        /* Done: every list made, and (pause) consuming again. */
        if (seen->st.consumed == w->produced && seen->st.recs == w->produced &&
            seen->st.stale == 0 && !seen->st.backlog_paused) {
            seen->done = 1;
            break;
        }
        if (itest_now_ms() > deadline)
            break;
        nanosleep(&ts, NULL); /* sampling a gauge: no event to await */
    }
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    fprintf(stderr,
            "%s: %llu consumed, %llu lists, backlog at most %llu, %llu "
            "pause(s), %llu round(s) paused, %llu rounds\n",
            policy, (unsigned long long)seen->st.consumed,
            (unsigned long long)seen->st.recs,
            (unsigned long long)seen->max_stale,
            (unsigned long long)seen->st.backlog_pauses,
            (unsigned long long)seen->st.backlog_paused_rounds,
            (unsigned long long)seen->st.rounds);
    CHECK(seen->done);
    CHECK_INT(seen->st.dlq, 0);
out:
    advrec_daemon_destroy(daemon);
}

/* The lists on the recommendations topic (one partition, in the order
 * produced) reflect growing input offsets: oldest first. */
static void check_oldest_first(world_t *w, const char *group)
{
    advrec_kafka_t *reader = itest_client(ADVREC_KAFKA_CONSUMER, w->bootstraps,
                                          group, NULL, 0, NULL, NULL);
    rd_kafka_topic_partition_list_t *sub;
    int64_t deadline = itest_now_ms() + WAIT_MS, last = -1;
    uint64_t lists = 0, out_of_order = 0;
    char errstr[256];

    CHECK(reader != NULL);
    if (!reader)
        return;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, T_RECS, RD_KAFKA_PARTITION_UA);
    CHECK_INT(rd_kafka_subscribe(advrec_kafka_rk(reader), sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    while (lists < w->produced && itest_now_ms() < deadline) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(advrec_kafka_rk(reader), 200);
        advrec_recommendation_t rec;
        if (!m)
            continue;
        if (!m->err && m->payload &&
            advrec_codec_decode_recommendation(w->codec, m->payload, m->len,
                                               &rec, errstr,
                                               sizeof(errstr)) == 0) {
            lists++;
            if (rec.input_offset <= last)
                out_of_order++;
            last = rec.input_offset;
            advrec_recommendation_clear(&rec);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(advrec_kafka_rk(reader));
    advrec_kafka_destroy(reader);
    fprintf(stderr, "%s: %llu lists read, %llu out of order\n", group,
            (unsigned long long)lists, (unsigned long long)out_of_order);
    CHECK_INT(lists, w->produced);
    CHECK_INT(out_of_order, 0);
}

static void test_consume(void)
{
    world_t w;
    seen_t seen;

    if (world_open(&w, N_USERS) == 0) {
        run(&w, "consume", "10000", &seen);
        /* Refreshes fall behind: more owed than one round takes in. */
        CHECK(seen.max_stale > ROUND_MAX);
        CHECK_INT(seen.st.backlog_pauses, 0);
        CHECK_INT(seen.st.backlog_paused_rounds, 0);
        check_oldest_first(&w, "reader-consume");
    }
    world_close(&w);
}

static void test_pause(void)
{
    world_t w;
    seen_t seen;

    if (world_open(&w, N_USERS) == 0) {
        run(&w, "pause", "0", &seen);
        /* Held by construction: input only with no list owed. */
        CHECK(seen.max_stale <= ROUND_MAX);
        CHECK(seen.st.backlog_pauses > 0);
        CHECK(seen.st.backlog_paused_rounds > 0);
        check_oldest_first(&w, "reader-pause");
    }
    world_close(&w);
}

/* Awaits what(st) under a deadline, the daemon's counters in *st. */
static int await_stats(advrec_daemon_t *daemon, advrec_daemon_stats_t *st,
                       int (*what)(const advrec_daemon_stats_t *, uint64_t),
                       uint64_t arg, const char *name)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;

    for (;;) {
        struct timespec ts = {0, 20 * 1000000};
        advrec_daemon_stats(daemon, st);
        if (what(st, arg))
            return 0;
        if (itest_now_ms() > deadline) {
            fprintf(stderr,
                    "timed out awaiting %s: %llu consumed, %llu lists (%llu "
                    "ann, %llu exact), %llu build(s), %llu items indexed, "
                    "%u items\n",
                    name, (unsigned long long)st->consumed,
                    (unsigned long long)st->recs,
                    (unsigned long long)st->lists_ann,
                    (unsigned long long)st->lists_exact,
                    (unsigned long long)st->ann_builds,
                    (unsigned long long)st->ann_indexed, st->items);
            CHECK(0);
            return -1;
        }
        nanosleep(&ts, NULL); /* polling a counter: no event to await */
    }
}

static int consumed_is(const advrec_daemon_stats_t *st, uint64_t n)
{
    return st->consumed == n;
}

static int built(const advrec_daemon_stats_t *st, uint64_t n)
{
    return st->ann_builds >= n;
}

static int lists_at_least(const advrec_daemon_stats_t *st, uint64_t n)
{
    return st->recs >= n;
}

/*
 * The index's figures (recs.retrieval=ann): a catalog of 400 items and 40
 * users with 4 clicks each; the first refresh takes a snapshot, the
 * builder builds; once a build is counted, more clicks of the same users
 * make refreshes that swap an index in and serve lists from it.
 */
static void test_ann_metrics(void)
{
    world_t w;
    advrec_daemon_t *daemon = NULL;
    pthread_t thread;
    advrec_daemon_stats_t st;
    const char *const extra[][2] = {{"recs.retrieval", "ann"},
                                    {"recs.ann.rebuild.ms", "0"}};
    char user[32], item[32];
    int64_t ts = T0;
    int running = 0;

    if (world_open(&w, 0) ||
        start(&w, "consume", "10000", extra, 2, &daemon, &thread))
        goto out;
    running = 1;
    for (int i = 0; i < 400; i++) {
        snprintf(item, sizeof(item), "i%d", i);
        click(&w, "catalog", item, ts++);
    }
    for (int u = 0; u < 40; u++)
        for (int e = 0; e < 4; e++) {
            snprintf(user, sizeof(user), "w%d", u);
            snprintf(item, sizeof(item), "i%d", (u * 7 + e * 13) % 400);
            click(&w, user, item, ts++);
        }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 30000), 0);
    if (await_stats(daemon, &st, consumed_is, w.produced, "consumed") ||
        await_stats(daemon, &st, built, 1, "an index build"))
        goto out;
    /* An index of fewer items than eight ninths of the catalog is not
     * used (rank.h): the first snapshot may have been taken with part of
     * the catalog in. Every refresh takes a new one (rebuild.ms 0) and
     * swaps in the last one built, so a few more clicks per user, the
     * catalog unchanged, bring an index of all of it into use. */
    for (int again = 0; again < 20 && st.lists_ann == 0; again++) {
        uint64_t before = st.recs;
        for (int u = 0; u < 40; u++) {
            snprintf(user, sizeof(user), "w%d", u);
            snprintf(item, sizeof(item), "i%d", (u * 11 + again) % 400);
            click(&w, user, item, ts++);
        }
        CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w.producer), 30000), 0);
        if (await_stats(daemon, &st, consumed_is, w.produced, "consumed") ||
            await_stats(daemon, &st, lists_at_least, before + 40,
                        "their lists"))
            goto out;
    }
    CHECK(st.lists_ann > 0);
    fprintf(
        stderr,
        "ann: %llu build(s), %llu with training, last %.6f s, %llu items "
        "indexed in %u lists; lists %llu from the index, %llu exact\n",
        (unsigned long long)st.ann_builds, (unsigned long long)st.ann_trainings,
        st.ann_last_build_s, (unsigned long long)st.ann_indexed, st.ann_nlist,
        (unsigned long long)st.lists_ann, (unsigned long long)st.lists_exact);
    CHECK(st.ann_trainings >= 1 && st.ann_trainings <= st.ann_builds);
    CHECK(st.ann_last_build_s > 0);
    /* Wall clock, and after this test's own event times' epoch. */
    CHECK(st.ann_last_built_unix_s > (double)T0 / 1000);
    /* A snapshot needs 156 items (39 a list, 4 lists). */
    CHECK(st.ann_indexed >= 156 && st.ann_indexed <= 400);
    CHECK(st.ann_nlist >= 1);
out:
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    advrec_daemon_destroy(daemon);
    world_close(&w);
}

int main(void)
{
    RUN(test_consume);
    RUN(test_pause);
    RUN(test_ann_metrics);
    return DONE();
}
