/*
 * store_bench.c - what the RocksDB state costs (not a test).
 *
 *   advrec-store-bench [DIR [USERS [ITEMS]]]    (1000000 users, 100000 items)
 *
 * At k = 64 and recs.history = 50 it measures:
 *  - bulk: USERS new users and ITEMS new items committed in rounds of
 *    10000 new rows (state.sync=commit), rows/s and MB/s;
 *  - steady: rounds of 1000 changed users + 3000 changed items (a busy
 *    round of the daemon), with state.sync=commit and with none, rounds/s;
 *  - hold: the same rounds committed as the daemon does (the batch built on
 *    the caller's thread, written on the store's): how long each held it;
 *  - restart: open + load of the whole state into fresh tables, seconds.
 * DIR must not exist (default: a new directory under /tmp, removed at the
 * end). Build with -DADVREC_BENCH=ON; run build/bench/advrec-store-bench.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "popularity.h"
#include "state.h"
#include "store.h"

#define K       64
#define HISTORY 50

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void fill_row(advrec_rows_t *rows, uint32_t idx, uint64_t *s)
{
    for (size_t f = 0; f < K; f++)
        rows->w[(size_t)idx * K + f] = (float)lcg(s) * 1e-9f;
    rows->acc[idx] = (float)lcg(s) * 1e-9f;
    rows->updates[idx]++;
    rows->clicks[idx]++;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    return remove(path);
}

static uint64_t du(const char *dir)
{
    static uint64_t total;
    char cmd[600];
    FILE *p;
    unsigned long long kb = 0;

    snprintf(cmd, sizeof(cmd), "du -sk '%s'", dir);
    p = popen(cmd, "r");
    if (p && fscanf(p, "%llu", &kb) != 1)
        kb = 0;
    if (p)
        pclose(p);
    total = kb * 1024;
    return total;
}

static advrec_store_t *open_or_die(const char *dir, int sync)
{
    advrec_store_params_t sp = {K, HISTORY, sync, 0};
    advrec_store_t *store = NULL;
    char errstr[512];

    if (advrec_store_open(dir, &sp, &store, errstr, sizeof(errstr))) {
        fprintf(stderr, "open: %s\n", errstr);
        exit(1);
    }
    return store;
}

static void commit_or_die(advrec_store_t *store, advrec_state_t *state,
                          advrec_popularity_t *pop, int64_t next)
{
    advrec_store_offset_t off = {"advrec.clicks", 0, next};
    char errstr[512];

    if (advrec_store_commit(store, state, pop, (uint64_t)next, &off, 1, errstr,
                            sizeof(errstr))) {
        fprintf(stderr, "commit: %s\n", errstr);
        exit(1);
    }
}

/* What a busy round of the daemon changes: 1000 users, 3000 items. */
static void busy_round(advrec_state_t *state, uint64_t *s)
{
    advrec_rows_t *users = advrec_state_users(state);
    advrec_rows_t *items = advrec_state_items(state);

    for (int u = 0; u < 1000; u++) {
        uint32_t idx = (uint32_t)(lcg(s) % users->n);
        fill_row(users, idx, s);
        advrec_state_push_history(state, idx, (uint32_t)(lcg(s) % items->n));
        advrec_rows_touch(users, idx);
    }
    for (int i = 0; i < 3000; i++) {
        uint32_t idx = (uint32_t)(lcg(s) % items->n);
        fill_row(items, idx, s);
        advrec_rows_touch(items, idx);
    }
}

static void steady(advrec_store_t *store, advrec_state_t *state,
                   advrec_popularity_t *pop, const char *name, int rounds)
{
    uint64_t s = 42;
    double t0 = now_s(), dt;

    for (int r = 0; r < rounds; r++) {
        busy_round(state, &s);
        commit_or_die(store, state, pop, 1000000 + r);
    }
    dt = now_s() - t0;
    printf("steady %-6s %d rounds of 1000 users + 3000 items (<= 4000 rows): "
           "%.1f rounds/s, %.3f ms/round\n",
           name, rounds, rounds / dt, dt / rounds * 1e3);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * The daemon's commit: advrec_store_commit_start builds the batch on the
 * caller's thread (the processing thread: the round waits) and writes it on
 * the store's. Rounds as in steady(); the time each start held its caller,
 * p50 / p99 / max in ms.
 */
static void hold(advrec_store_t *store, advrec_state_t *state,
                 advrec_popularity_t *pop, int rounds)
{
    advrec_store_offset_t off = {"advrec.clicks", 0, 0};
    double *ms = calloc((size_t)rounds, sizeof(*ms));
    char errstr[512];
    uint64_t s = 43;

    if (!ms)
        exit(1);
    for (int r = 0; r < rounds; r++) {
        busy_round(state, &s);
        /* The previous write finished first, as after a round's wait. */
        if (advrec_store_commit_wait(store, errstr, sizeof(errstr))) {
            fprintf(stderr, "commit: %s\n", errstr);
            exit(1);
        }
        off.next = 2000000 + r;
        double t0 = now_s();
        if (advrec_store_commit_start(store, state, pop, (uint64_t)off.next,
                                      &off, 1, errstr, sizeof(errstr))) {
            fprintf(stderr, "commit: %s\n", errstr);
            exit(1);
        }
        ms[r] = (now_s() - t0) * 1e3;
    }
    if (advrec_store_commit_wait(store, errstr, sizeof(errstr))) {
        fprintf(stderr, "commit: %s\n", errstr);
        exit(1);
    }
    qsort(ms, (size_t)rounds, sizeof(*ms), by_double);
    printf("hold   %d commits of <= 4000 rows started in the background: the "
           "caller held p50 %.3f p99 %.3f max %.3f ms\n",
           rounds, ms[rounds / 2], ms[rounds * 99 / 100], ms[rounds - 1]);
    free(ms);
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/advrec-store-bench-XXXXXX", dir[600];
    uint32_t n_users = argc > 2 ? (uint32_t)atol(argv[2]) : 1000000;
    uint32_t n_items = argc > 3 ? (uint32_t)atol(argv[3]) : 100000;
    advrec_state_params_t stp = {
        .k = K, .history = HISTORY, .max_users = n_users, .max_items = n_items};
    advrec_state_t *state;
    advrec_popularity_t *pop;
    advrec_store_t *store;
    char errstr[512], id[32];
    uint64_t s = 1, version = 0;
    double t0, dt;
    int own = argc < 2;

    advrec_log_set_level(ADVREC_LOG_WARNING);
    if (own) {
        if (!mkdtemp(tmpl))
            return 1;
        snprintf(dir, sizeof(dir), "%s/state", tmpl);
    } else {
        snprintf(dir, sizeof(dir), "%s", argv[1]);
    }
    state = advrec_state_new(&stp, errstr, sizeof(errstr));
    pop = advrec_popularity_new(3.6e6, 100, errstr, sizeof(errstr));
    if (!state || !pop) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }

    /* Bulk: new rows in rounds of 10000. */
    store = open_or_die(dir, ADVREC_STORE_SYNC_COMMIT);
    t0 = now_s();
    for (uint32_t done = 0; done < n_users + n_items;) {
        uint32_t end = done + 10000;
        for (; done < end && done < n_users + n_items; done++) {
            uint32_t idx;
            if (done < n_items) {
                snprintf(id, sizeof(id), "item-%u", done);
                advrec_state_item(state, id, 1, &idx, NULL, errstr,
                                  sizeof(errstr));
                fill_row(advrec_state_items(state), idx, &s);
                advrec_popularity_add(pop, idx, 1700000000000 + done, 1.0);
            } else {
                snprintf(id, sizeof(id), "user-%u", done - n_items);
                advrec_state_user(state, id, 1, &idx, NULL, errstr,
                                  sizeof(errstr));
                fill_row(advrec_state_users(state), idx, &s);
                for (int h = 0; h < HISTORY; h++)
                    advrec_state_push_history(state, idx,
                                              (uint32_t)(lcg(&s) % n_items));
            }
        }
        commit_or_die(store, state, pop, done);
    }
    dt = now_s() - t0;
    printf("bulk   %u users + %u items (k=%d, history=%d), sync=commit: "
           "%.1f s, %.0f rows/s; on disk %.0f MB\n",
           n_users, n_items, K, HISTORY, dt, (n_users + n_items) / dt,
           (double)du(dir) / 1e6);

    steady(store, state, pop, "commit", 200);
    hold(store, state, pop, 200);
    advrec_store_close(store);
    store = open_or_die(dir, ADVREC_STORE_SYNC_NONE);
    steady(store, state, pop, "none", 200);
    advrec_store_close(store);
    advrec_state_destroy(state);
    advrec_popularity_destroy(pop);

    /* Restart: open and load everything into fresh tables. */
    state = advrec_state_new(&stp, errstr, sizeof(errstr));
    pop = advrec_popularity_new(3.6e6, 100, errstr, sizeof(errstr));
    t0 = now_s();
    store = open_or_die(dir, ADVREC_STORE_SYNC_COMMIT);
    dt = now_s() - t0;
    if (advrec_store_load(store, state, pop, &version, errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "load: %s\n", errstr);
        return 1;
    }
    printf("restart open %.2f s, open+load of %u users + %u items %.2f s "
           "(%.0f rows/s); on disk %.0f MB\n",
           dt, advrec_state_users(state)->n, advrec_state_items(state)->n,
           now_s() - t0,
           (advrec_state_users(state)->n + advrec_state_items(state)->n) /
               (now_s() - t0),
           (double)du(dir) / 1e6);
    advrec_store_close(store);
    advrec_state_destroy(state);
    advrec_popularity_destroy(pop);
    if (own)
        (void)nftw(tmpl, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
