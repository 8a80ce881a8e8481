/*
 * rank_bench.c - lists per second of the two retrieval paths (not a test).
 *
 * Exact scoring: for each catalog size, a bare cblas_sgemm of the batch's
 * shape (users x k times items^T into a full score matrix), the former path
 * (that matrix plus biases, then one heap selection per user) and the fused
 * path advrec_topn_batch (block by block, selected in cache), alternated in
 * one run so the ratios compare like with like.
 *
 * Retrieval: per catalog size, a synthetic catalog with the structure of
 * trained factors (items drawn around 1,000 taste centres, norms spread
 * like popularity, a bias; users around the same centres), exact top-10
 * lists by advrec_topn_batch as the ground truth, and the approximate path
 * lib/rank takes (advrec_ann_search for candidates, advrec_topn_select_items
 * re-scoring them exactly), first with the probe count the build tuned
 * (the daemon's defaults: from 4 up to a sampled recall@10 of 0.97 on 256
 * of the 2,048 queries), then at fixed probe counts, one line per setting:
 *   items N mode M ... recall@10 R lists/s L exact-lists/s E
 * with E brute force in the same run. Then the index is left as built while
 * the factors move (a share of the items takes a step), to show what a
 * stale index costs in recall.
 *
 * Build with -DADVREC_BENCH=ON; run
 *   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/advrec-rank-bench
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ann.h"
#include "rng.h"
#include "topn.h"

enum { K = 64, N = 10, BATCH = 64 };

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(float *x, size_t n, float scale, advrec_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)advrec_rng_gauss(rng) * scale;
}

/* users/s of each exact path at n_items; the best of five alternated runs. */
static void bench_exact(size_t n_items, size_t n_users)
{
    float *users = malloc(sizeof(float) * n_users * K);
    float *items = malloc(sizeof(float) * n_items * K);
    float *bias = malloc(sizeof(float) * n_items);
    float *full = malloc(sizeof(float) * BATCH * n_items);
    float *scratch =
        malloc(sizeof(float) * advrec_topn_batch_scratch(BATCH, n_items));
    advrec_topn_entry_t *out = malloc(sizeof(*out) * BATCH * N);
    size_t counts[BATCH];
    advrec_rng_t rng = advrec_rng_for_id(3, "rank-bench");
    double best[3] = {1e30, 1e30, 1e30}, gflop;

    fill(users, n_users * K, 0.1f, &rng);
    fill(items, n_items * K, 0.1f, &rng);
    fill(bias, n_items, 0.1f, &rng);
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s(), t;
        for (size_t b = 0; b < n_users; b += BATCH)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BATCH,
                        (int)n_items, K, 1.0f, users + b * K, K, items, K, 0.0f,
                        full, (int)n_items);
        t = now_s() - t0;
        best[0] = t < best[0] ? t : best[0];
        t0 = now_s();
        for (size_t b = 0; b < n_users; b += BATCH) {
            advrec_topn_scores(users + b * K, BATCH, items, bias, n_items, K,
                               full);
            for (size_t u = 0; u < BATCH; u++)
                advrec_topn_select(full + u * n_items, n_items, NULL, 0, N,
                                   out);
        }
        t = now_s() - t0;
        best[1] = t < best[1] ? t : best[1];
        t0 = now_s();
        for (size_t b = 0; b < n_users; b += BATCH)
            advrec_topn_batch(users + b * K, BATCH, items, bias, n_items, K,
                              NULL, NULL, N, scratch, out, counts);
        t = now_s() - t0;
        best[2] = t < best[2] ? t : best[2];
    }
    gflop = 2.0 * K * (double)n_items * (double)n_users * 1e-9;
    printf("exact items %zu k %d batch %d top%d: bare sgemm %.0f users/s "
           "(%.1f GFLOP/s); sgemm+bias then select %.0f lists/s (%.0f %%); "
           "fused blocks %.0f lists/s (%.0f %%)\n",
           n_items, K, BATCH, N, n_users / best[0], gflop / best[0],
           n_users / best[1], 100 * best[0] / best[1], n_users / best[2],
           100 * best[0] / best[2]);
    fflush(stdout);
    free(users);
    free(items);
    free(bias);
    free(full);
    free(scratch);
    free(out);
}

enum { CENTRES = 1000, QUERIES = 2048, QBATCH = 256 };

typedef struct catalog_s {
    size_t n;
    float *items, *bias, *users;
} catalog_t;

/* Items and users around shared taste centres (see the top comment). */
static void catalog_make(catalog_t *c, size_t n, uint64_t seed)
{
    advrec_rng_t rng = advrec_rng_for_id(seed, "catalog");
    float *centre = malloc(sizeof(float) * CENTRES * K);

    c->n = n;
    c->items = malloc(sizeof(float) * n * K);
    c->bias = malloc(sizeof(float) * n);
    c->users = malloc(sizeof(float) * QUERIES * K);
    fill(centre, CENTRES * K, 0.3f, &rng);
    for (size_t i = 0; i < n; i++) {
        const float *m = centre + (advrec_rng_next(&rng) % CENTRES) * K;
        float scale = (float)exp(advrec_rng_gauss(&rng) * 0.3);
        for (int j = 0; j < K; j++)
            c->items[i * K + j] =
                (m[j] + (float)advrec_rng_gauss(&rng) * 0.2f) * scale;
        c->bias[i] = (float)advrec_rng_gauss(&rng) * 0.1f;
    }
    for (size_t u = 0; u < QUERIES; u++) {
        const float *m = centre + (advrec_rng_next(&rng) % CENTRES) * K;
        for (int j = 0; j < K; j++)
            c->users[u * K + j] = m[j] + (float)advrec_rng_gauss(&rng) * 0.2f;
    }
    free(centre);
}

static void catalog_free(catalog_t *c)
{
    free(c->items);
    free(c->bias);
    free(c->users);
}

/* Exact top-N of every query into truth (QUERIES x N); lists/s. */
static double exact_lists(const catalog_t *c, advrec_topn_entry_t *truth)
{
    float *scratch =
        malloc(sizeof(float) * advrec_topn_batch_scratch(QBATCH, c->n));
    size_t counts[QBATCH];
    double t0 = now_s();

    for (size_t b = 0; b < QUERIES; b += QBATCH)
        advrec_topn_batch(c->users + b * K, QBATCH, c->items, c->bias, c->n, K,
                          NULL, NULL, N, scratch, truth + b * N, counts);
    free(scratch);
    return QUERIES / (now_s() - t0);
}

enum { RECENT = 256 };

/*
 * The lists rank's ann path serves, into got; lists/s (0: no index). With
 * recent, each list also re-scores RECENT items spread over the catalog,
 * as rank does with the items trained since the snapshot (at most 256):
 * the cost of that under a steady stream of events. Unlike rank, they are
 * not deduplicated against the candidates (few are among them: 256 items
 * of the catalog, rarely near a user's top).
 */
static double ann_lists(advrec_ann_t *ann, const catalog_t *c, size_t cand,
                        int recent, advrec_topn_entry_t *got)
{
    static int64_t all[1024];
    size_t m = cand + (recent ? RECENT : 0);
    double t0 = now_s();

    if (m > sizeof(all) / sizeof(all[0]))
        return 0;
    for (size_t x = 0; recent && x < RECENT; x++)
        all[cand + x] = (int64_t)((x * 2654435761u) % c->n);
    for (size_t b = 0; b < QUERIES; b += QBATCH) {
        const int64_t *lab =
            advrec_ann_search(ann, c->users + b * K, QBATCH, K, 1, cand);
        if (!lab)
            return 0;
        for (size_t q = 0; q < QBATCH; q++) {
            memcpy(all, lab + q * cand, cand * sizeof(*all));
            advrec_topn_select_items(c->users + (b + q) * K, c->items, c->bias,
                                     K, all, m, c->n, c->n, NULL, 0, N,
                                     got + (b + q) * N);
        }
    }
    return QUERIES / (now_s() - t0);
}

/* Mean share of each exact top-N found in the served list. */
static double recall(const advrec_topn_entry_t *truth,
                     const advrec_topn_entry_t *got)
{
    size_t hit = 0;

    for (size_t q = 0; q < QUERIES; q++)
        for (size_t a = 0; a < N; a++)
            for (size_t b = 0; b < N; b++)
                if (truth[q * N + a].item == got[q * N + b].item) {
                    hit++;
                    break;
                }
    return (double)hit / (QUERIES * N);
}

/* The daemon's defaults: recs.ann.probe, recs.ann.recall,
 * recs.ann.candidates. */
enum { PROBE = 4, CAND = 50 };
#define RECALL 0.97

/* Builds an index of c, its probe count tuned as the daemon's is (256 of
 * the queries sampled), and waits for it; NULL on failure. */
static advrec_ann_t *index_of(const catalog_t *c, int sq8)
{
    advrec_ann_params_t p = {.nprobe = PROBE,
                             .recall = RECALL,
                             .candidates = CAND,
                             .sq8 = sq8,
                             .rebuild_ms = 1000000000};
    char errstr[256];
    advrec_ann_t *ann = advrec_ann_new(&p, errstr, sizeof(errstr));

    if (!ann) {
        fprintf(stderr, "rank-bench: %s\n", errstr);
        return NULL;
    }
    advrec_ann_update(ann, c->items, c->bias, c->n, K, c->users, QUERIES, 0);
    advrec_ann_wait(ann);
    advrec_ann_update(ann, c->items, c->bias, c->n, K, c->users, QUERIES, 1);
    return ann;
}

typedef struct setting_s {
    uint32_t nprobe;
    size_t cand;
} setting_t;

static void bench_ann(size_t n, int sq8, const setting_t *set, size_t n_set)
{
    catalog_t c;
    advrec_topn_entry_t *truth = malloc(sizeof(*truth) * QUERIES * N);
    advrec_topn_entry_t *got = malloc(sizeof(*got) * QUERIES * N);
    advrec_ann_t *ann;
    advrec_ann_stats_t st;
    advrec_rng_t rng = advrec_rng_for_id(9, "drift");
    const char *lists = sq8 ? "SQ8" : "Flat";
    double e;

    catalog_make(&c, n, n);
    e = exact_lists(&c, truth);
    printf("items %zu mode exact k %d recall@10 1.000 lists/s %.0f "
           "exact-lists/s %.0f\n",
           n, K, e, e);
    fflush(stdout);
    ann = index_of(&c, sq8);
    if (!ann)
        goto out;
    advrec_ann_stats(ann, &st);
    printf("items %zu index IVF%u,%s (MIPS->L2, d %d): build %.1f s "
           "(k-means %.1f s, probe tuning %.2f s), snapshot copy %.3f s, one "
           "thread\n",
           n, st.nlist, lists, K + 2, st.last_build_s, st.last_train_s,
           st.last_tune_s, st.last_copy_s);
    fflush(stdout);
    {
        /* As the daemon serves: the probe count tuned at the build. */
        double l = 0, e2;
        for (int rep = 0; rep < 3; rep++) {
            double x = ann_lists(ann, &c, CAND, 0, got);
            l = x > l ? x : l;
        }
        e2 = exact_lists(&c, truth);
        printf("items %zu mode ann-tuned IVF%u,%s nprobe %u (recall target "
               "%.2f from %d, sample of %zu: %.3f) candidates %d k %d "
               "recall@10 %.3f lists/s %.0f exact-lists/s %.0f\n",
               n, st.nlist, lists, st.nprobe, RECALL, PROBE, st.sample_users,
               st.sample_recall, CAND, K, recall(truth, got), l, e2);
        fflush(stdout);
        l = 0;
        for (int rep = 0; rep < 3; rep++) {
            double x = ann_lists(ann, &c, CAND, 1, got);
            l = x > l ? x : l;
        }
        e2 = exact_lists(&c, truth);
        printf("items %zu mode ann-tuned+recent IVF%u,%s nprobe %u "
               "candidates %d + %d recently trained k %d recall@10 %.3f "
               "lists/s %.0f exact-lists/s %.0f\n",
               n, st.nlist, lists, st.nprobe, CAND, RECENT, K,
               recall(truth, got), l, e2);
        fflush(stdout);
    }
    for (size_t si = 0; si < n_set; si++) {
        double l, e2;
        advrec_ann_set_nprobe(ann, set[si].nprobe);
        /* The index pass is short, the exact one long: the best of three
         * index passes, so that a moment of load on the shared machine
         * does not decide its figure (the exact pass averages it). */
        l = 0;
        for (int rep = 0; rep < 3; rep++) {
            double x = ann_lists(ann, &c, set[si].cand, 0, got);
            l = x > l ? x : l;
        }
        e2 = exact_lists(&c, truth);
        printf("items %zu mode ann IVF%u,%s nprobe %u candidates %zu k %d "
               "recall@10 %.3f lists/s %.0f exact-lists/s %.0f\n",
               n, st.nlist, lists, set[si].nprobe, set[si].cand, K,
               recall(truth, got), l, e2);
        fflush(stdout);
    }
    /* A refill: the same centroids, the rows re-assigned. */
    advrec_ann_update(ann, c.items, c.bias, c.n, K, NULL, 0, 2000000000);
    advrec_ann_wait(ann);
    advrec_ann_stats(ann, &st);
    printf("items %zu refill (centroids kept): %.1f s\n", n, st.last_build_s);
    /* Staleness: a fifth of the items take a step (about a seventh of
     * their length), the index is not rebuilt; candidates are re-scored
     * with the moved factors. */
    for (size_t i = 0; i < n; i++) {
        if (advrec_rng_next(&rng) % 5)
            continue;
        for (int j = 0; j < K; j++)
            c.items[i * K + j] += (float)advrec_rng_gauss(&rng) * 0.05f;
    }
    exact_lists(&c, truth);
    advrec_ann_set_nprobe(ann, set[n_set - 1].nprobe);
    ann_lists(ann, &c, set[n_set - 1].cand, 0, got);
    printf("items %zu mode ann nprobe %u candidates %zu, stale index (20 %% "
           "of items moved): recall@10 %.3f\n",
           n, set[n_set - 1].nprobe, set[n_set - 1].cand, recall(truth, got));
    fflush(stdout);
    advrec_ann_destroy(ann);
out:
    catalog_free(&c);
    free(truth);
    free(got);
}

int main(int argc, char **argv)
{
    static const setting_t set[] = {{4, 50},  {6, 50},   {8, 50},
                                    {16, 50}, {16, 100}, {32, 50}};
    const char *what = argc > 1 ? argv[1] : "all";

    if (strcmp(what, "exact") == 0 || strcmp(what, "all") == 0) {
        bench_exact(100000, 1024);
        bench_exact(1000000, 256);
    }
    if (strcmp(what, "ann") == 0 || strcmp(what, "all") == 0) {
        bench_ann(100000, 0, set, 6);
        bench_ann(1000000, 0, set, 6);
    }
    if (strcmp(what, "ann100k") == 0)
        bench_ann(100000, 0, set, 6);
    if (strcmp(what, "ann1m") == 0)
        bench_ann(1000000, 0, set, 6);
    return 0;
}
