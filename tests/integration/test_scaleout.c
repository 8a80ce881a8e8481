/*
 * Users follow their partition (topic.changelog; docs/STATE.md,
 * "Changelog"): two daemons in-process in one consumer group on a mock
 * cluster of the test's own, each with its own RocksDB state dir. Every
 * wait is bounded by a deadline and awaits a counter.
 *
 *  1. A alone applies a first third of the clicks (40 users, 5 each).
 *  2. B joins: the group moves some partitions to B (cooperative-sticky),
 *     B restores their users from the changelog; the second third is
 *     split between them, and the clicks applied by A and B together equal
 *     those produced (none twice: a record the restored row already holds
 *     is skipped).
 *  3. A stops: B takes every partition, restores the rest, applies the
 *     last third. B's stored state then holds every user with exactly 15
 *     clicks.
 *  4. B starts again on its state alone: nothing to restore (the state
 *     recorded the changelog's end), and it owns every partition.
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

#define WAIT_MS    60000
#define PARTITIONS 4
#define N_USERS    40
#define PER_PHASE  5

#define T_CLICKS    "so.clicks"
#define T_PURCHASES "so.purchases"
#define T_RECS      "so.recs"
#define T_ANOMALIES "so.anomalies"
#define T_DLQ       "so.dlq"
#define T_CHANGELOG "so.changelog"
#define T_MODEL     "so.model"

#define T0 INT64_C(1700000000000)

/* The test's world: its topics, two state dirs (daemons a and b). */
static int world_open(itest_world_t *w)
{
    static const char *const topics[] = {T_CLICKS,    T_PURCHASES, T_RECS,
                                         T_ANOMALIES, T_DLQ,       T_CHANGELOG};

    if (itest_world_open(w, "so", topics, sizeof(topics) / sizeof(*topics),
                         PARTITIONS, 2))
        return -1;
    w->ts = T0;
    return 0;
}

/* Every user clicks PER_PHASE times (items differ by phase). */
static void produce_phase(itest_world_t *w, int phase)
{
    char user[32], item[32];

    for (int e = 0; e < PER_PHASE; e++)
        for (int u = 0; u < N_USERS; u++) {
            snprintf(user, sizeof(user), "user-%d", u);
            snprintf(item, sizeof(item), "item-%d", (u + e + 7 * phase) % 60);
            itest_click(w, T_CLICKS, user, item, w->ts += 1000);
        }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(w->producer), 10000), 0);
}

/* Starts daemon a (which 0) or b (1) on its state dir; model: with
 * topic.model. */
static int start(itest_world_t *w, itest_daemon_t *r, int which, int model)
{
    const char *const sets[][2] = {
        {"broker.embedded", "false"},
        {"kafka.bootstrap.servers", w->bootstraps},
        {"topic.clicks", T_CLICKS},
        {"topic.purchases", T_PURCHASES},
        {"topic.recommendations", T_RECS},
        {"topic.anomalies", T_ANOMALIES},
        {"topic.dlq", T_DLQ},
        {"topic.changelog", T_CHANGELOG},
        {"group.id", "itest-scaleout"},
        {"group.instance.id", ""}, /* a stop leaves the group at once */
        {"kafka.session.timeout.ms", "6000"},
        {"model.k", "8"},
        {"anomaly.enable", "false"},
        {"stats.interval.ms", "0"},
        {"recs.debounce.ms", "0"},
        {"state.sync", "none"},
        {"state.commit.interval.ms", "100"},
        {"http.listen", ""},
        {"state.dir", w->dir[which]},
        {"topic.model", model ? T_MODEL : ""},
        {"model.sync.interval.ms", "100"},
    };

    return itest_daemon_start(r, sets, sizeof(sets) / sizeof(*sets), NULL, 0);
}

static uint64_t clicks_of(itest_daemon_t *r)
{
    advrec_daemon_stats_t st;

    if (!r->daemon)
        return 0;
    advrec_daemon_stats(r->daemon, &st);
    return st.clicks;
}

/* Awaits the clicks applied by a and b together reaching n; then, after
 * one more second, checks that they are exactly n. */
static int await_applied(itest_daemon_t *a, itest_daemon_t *b, uint64_t n)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;
    uint64_t got;

    while ((got = clicks_of(a) + clicks_of(b)) < n) {
        if (itest_now_ms() > deadline) {
            fprintf(stderr, "applied %llu of %llu clicks\n",
                    (unsigned long long)got, (unsigned long long)n);
            CHECK(0);
            return -1;
        }
        itest_poll_pause();
    }
    sleep(1); /* nothing may be applied twice meanwhile */
    CHECK_INT(clicks_of(a) + clicks_of(b), n);
    return 0;
}

/* Awaits r owning at least `parts` partitions (all input topics together) with
 * at least `restores` changelog restores done; the counters then. */
static int await_owning(itest_daemon_t *r, uint32_t parts, uint64_t restores,
                        advrec_daemon_stats_t *st)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;

    for (;;) {
        advrec_daemon_stats(r->daemon, st);
        if (st->partitions >= parts && st->cl_restores >= restores &&
            st->cl_restoring == 0)
            return 0;
        if (itest_now_ms() > deadline) {
            fprintf(stderr, "owning %u of %u partitions, %llu restores\n",
                    st->partitions, parts, (unsigned long long)st->cl_restores);
            CHECK(0);
            return -1;
        }
        itest_poll_pause();
    }
}

static void test_users_follow_their_partition(void)
{
    itest_world_t w;
    itest_daemon_t a = {0}, b = {0};
    advrec_daemon_stats_t st;
    uint64_t a_clicks;
    char user[32];
    int exact = 0;

    if (world_open(&w) || start(&w, &a, 0, 0))
        goto out;
    /* 1. A alone (2 input topics of PARTITIONS each). */
    if (await_owning(&a, 2 * PARTITIONS, 0, &st))
        goto out;
    CHECK_INT(st.cl_restores, 0); /* an empty changelog: nothing to read */
    produce_phase(&w, 0);
    if (await_applied(&a, &b, w.produced))
        goto out;

    /* 2. B joins and restores what moves to it. */
    if (start(&w, &b, 1, 0) || await_owning(&b, 2, 1, &st))
        goto out;
    fprintf(stderr, "B: %u partitions, %llu restores, %llu users restored\n",
            st.partitions, (unsigned long long)st.cl_restores,
            (unsigned long long)st.cl_restored_users);
    CHECK(st.cl_restored_users > 0);
    produce_phase(&w, 1);
    if (await_applied(&a, &b, w.produced))
        goto out;
    CHECK(clicks_of(&b) > 0);

    /* 3. A leaves: B takes everything. */
    a_clicks = clicks_of(&a);
    itest_daemon_destroy(&a);
    if (await_owning(&b, 2 * PARTITIONS, 2, &st))
        goto out;
    produce_phase(&w, 2);
    if (await_applied(&a, &b, w.produced - a_clicks))
        goto out;
    advrec_daemon_stats(b.daemon, &st);
    fprintf(stderr,
            "B: %llu clicks applied, %llu skipped as already restored, "
            "%llu changelog rows, %llu markers\n",
            (unsigned long long)st.clicks, (unsigned long long)st.cl_skipped,
            (unsigned long long)st.cl_rows, (unsigned long long)st.cl_markers);
    itest_daemon_destroy(&b);
    for (int u = 0; u < N_USERS; u++) {
        snprintf(user, sizeof(user), "user-%d", u);
        exact += itest_stored_clicks(w.dir[1], user) == 3 * PER_PHASE;
    }
    CHECK_INT(exact, N_USERS);

    /* 4. B again, alone: its state is the changelog's latest. */
    if (start(&w, &b, 1, 0) || await_owning(&b, 2 * PARTITIONS, 0, &st))
        goto out;
    CHECK_INT(st.cl_restores, 0);
out:
    itest_daemon_destroy(&a);
    itest_daemon_destroy(&b);
    itest_world_close(&w);
}

/* item's stored row in dir: factors (K_MAX of them) and update count. */
#define K_MAX 8
static int stored_item(const char *dir, const char *item, float *w,
                       uint32_t *updates)
{
    advrec_store_t *store;
    advrec_store_row_t row;
    char errstr[512];
    int found = 0;

    if (advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s\n", errstr);
        CHECK(0);
        return 0;
    }
    memset(&row, 0, sizeof(row));
    if (advrec_store_get_item(store, item, &row, errstr, sizeof(errstr)) == 0) {
        memcpy(w, row.w, K_MAX * sizeof(float));
        *updates = row.updates;
        found = 1;
        advrec_store_row_free(&row);
    }
    advrec_store_close(store);
    return found;
}

/* Awaits every record one daemon published being merged by the other. */
static int await_exchanged(itest_daemon_t *a, itest_daemon_t *b)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;
    advrec_daemon_stats_t sa, sb;

    for (;;) {
        advrec_daemon_stats(a->daemon, &sa);
        advrec_daemon_stats(b->daemon, &sb);
        if (sa.model_published > 0 && sb.model_published > 0 &&
            sa.model_merged >= sb.model_published &&
            sb.model_merged >= sa.model_published)
            return 0;
        if (itest_now_ms() > deadline) {
            fprintf(stderr,
                    "A published %llu, merged %llu; B published %llu, "
                    "merged %llu\n",
                    (unsigned long long)sa.model_published,
                    (unsigned long long)sa.model_merged,
                    (unsigned long long)sb.model_published,
                    (unsigned long long)sb.model_merged);
            CHECK(0);
            return -1;
        }
        itest_poll_pause();
    }
}

/*
 * topic.model: A and B each train the items their own users touch and
 * exchange their contributions. Once each merged all the other published,
 * every item's stored row has the same update count at both (the steps of
 * the whole group) and factors equal up to rounding; without topic.model
 * (the first run) the counts differ.
 */
static void run_items(int model, int *same_updates, int *close, int *items)
{
    itest_world_t w;
    itest_daemon_t a = {0}, b = {0};
    advrec_daemon_stats_t st;
    char item[32];

    *same_updates = *close = *items = 0;
    if (world_open(&w) || start(&w, &a, 0, model) || start(&w, &b, 1, model))
        goto out;
    if (await_owning(&a, 2, 0, &st) || await_owning(&b, 2, 0, &st))
        goto out;
    produce_phase(&w, 0);
    produce_phase(&w, 1);
    if (await_applied(&a, &b, w.produced))
        goto out;
    if (model && await_exchanged(&a, &b))
        goto out;
    itest_daemon_destroy(&a);
    itest_daemon_destroy(&b);
    if (model) {
        /* A again, alone: rebuilt from the topic at start, its rows are
         * what they were (every total counted once). */
        float before[60][K_MAX], after[K_MAX];
        uint32_t ub[60], ua;
        int found[60], kept = 0, n = 0;
        for (int i = 0; i < 60; i++) {
            snprintf(item, sizeof(item), "item-%d", i);
            found[i] = stored_item(w.dir[0], item, before[i], &ub[i]);
        }
        if (start(&w, &a, 0, 1) || await_owning(&a, 2 * PARTITIONS, 0, &st))
            goto out;
        itest_daemon_destroy(&a);
        for (int i = 0; i < 60; i++) {
            double diff = 0;
            snprintf(item, sizeof(item), "item-%d", i);
            if (!found[i] || !stored_item(w.dir[0], item, after, &ua))
                continue;
            n++;
            for (int c = 0; c < K_MAX; c++)
                diff += (after[c] - before[i][c]) * (after[c] - before[i][c]);
            kept += ua == ub[i] && diff <= 1e-8;
        }
        fprintf(stderr, "restart: %d of %d items' rows as before\n", kept, n);
        CHECK(n > 20);
        CHECK_INT(kept, n);
    }
    for (int i = 0; i < 60; i++) {
        float wa[K_MAX], wb[K_MAX];
        uint32_t ua, ub;
        double diff = 0, norm = 0;
        snprintf(item, sizeof(item), "item-%d", i);
        if (!stored_item(w.dir[0], item, wa, &ua) ||
            !stored_item(w.dir[1], item, wb, &ub))
            continue;
        (*items)++;
        *same_updates += ua == ub;
        for (int c = 0; c < K_MAX; c++) {
            diff += (wa[c] - wb[c]) * (wa[c] - wb[c]);
            norm += wa[c] * wa[c];
        }
        *close += diff <= 1e-8 * (norm + 1e-3);
    }
    fprintf(stderr,
            "%s: %d items at both, %d with the same update count, %d with "
            "the same factors\n",
            model ? "topic.model" : "no topic.model", *items, *same_updates,
            *close);
out:
    itest_daemon_destroy(&a);
    itest_daemon_destroy(&b);
    itest_world_close(&w);
}

static void test_item_factors_are_shared(void)
{
    int same, close, items;

    run_items(0, &same, &close, &items);
    CHECK(items > 20);
    CHECK(same < items); /* each trains its own */
    run_items(1, &same, &close, &items);
    CHECK(items > 20);
    CHECK_INT(same, items);
    CHECK_INT(close, items);
}

int main(void)
{
    RUN(test_users_follow_their_partition);
    RUN(test_item_factors_are_shared);
    return DONE();
}
