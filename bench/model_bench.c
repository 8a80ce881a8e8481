/*
 * model_bench.c - throughput of the model's hot paths (not a test).
 *
 * Prints events/s of advrec_apr_step at k = 64 (BPR only, FGSM, PGD-3),
 * users/s scored by one sgemm per batch against 10k and 100k items (plus
 * top-N selection), the same by sgemv one user at a time, and the cost of
 * popularity updates and queries. Build with -DADVREC_BENCH=ON; run
 * build/bench/advrec-model-bench.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "apr.h"
#include "popularity.h"
#include "rng.h"
#include "topn.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_step(const char *name, int allow_adv, int steps)
{
    enum { K = 64, NU = 10000, NI = 10000, EVENTS = 400000 };
    advrec_apr_params_t params;
    float *uw = calloc((size_t)NU * K * 2, sizeof(float));
    float *iw = calloc((size_t)NI * K * 2, sizeof(float));
    float *ib = calloc((size_t)NI * 2, sizeof(float));
    uint32_t *uup = calloc(NU, sizeof(uint32_t));
    uint32_t *iup = calloc(NI, sizeof(uint32_t));
    float scratch[12 * K];
    double t0, dt, loss = 0;
    char id[32];

    advrec_apr_params_default(&params);
    params.k = K;
    params.use_bias = 1;
    params.adv_steps = steps;
    for (int r = 0; r < NU; r++) {
        advrec_apr_row_t row = {uw + (size_t)r * 2 * K,
                                uw + (size_t)r * 2 * K + K, NULL, NULL,
                                uup + r};
        snprintf(id, sizeof(id), "u%d", r);
        advrec_apr_row_init(&params, ADVREC_APR_USER, id, &row);
    }
    for (int r = 0; r < NI; r++) {
        advrec_apr_row_t row = {iw + (size_t)r * 2 * K,
                                iw + (size_t)r * 2 * K + K, ib + 2 * r,
                                ib + 2 * r + 1, iup + r};
        snprintf(id, sizeof(id), "i%d", r);
        advrec_apr_row_init(&params, ADVREC_APR_ITEM, id, &row);
    }
    t0 = now_s();
    for (int64_t off = 0; off < EVENTS; off++) {
        advrec_rng_t rng = advrec_rng_for_record(1, "advrec.clicks", 0, off);
        uint32_t u = advrec_rng_below(&rng, NU);
        uint32_t i = advrec_rng_below(&rng, NI);
        uint32_t j = advrec_apr_sample_negative(&rng, NI, i);
        advrec_apr_row_t ru = {uw + (size_t)u * 2 * K,
                               uw + (size_t)u * 2 * K + K, NULL, NULL, uup + u};
        advrec_apr_row_t ri = {iw + (size_t)i * 2 * K,
                               iw + (size_t)i * 2 * K + K, ib + 2 * i,
                               ib + 2 * i + 1, iup + i};
        advrec_apr_row_t rj = {iw + (size_t)j * 2 * K,
                               iw + (size_t)j * 2 * K + K, ib + 2 * j,
                               ib + 2 * j + 1, iup + j};
        advrec_apr_result_t res;
        advrec_apr_step(&params, &ru, &ri, &rj, 1.0f, allow_adv, scratch, &res);
        loss += res.loss;
    }
    dt = now_s() - t0;
    printf("apr_step k=%d %-10s %9.0f events/s  (%.2f us/event, mean loss "
           "%.3f)\n",
           K, name, EVENTS / dt, dt / EVENTS * 1e6, loss / EVENTS);
    free(uw);
    free(iw);
    free(ib);
    free(uup);
    free(iup);
}

static void bench_scoring(size_t n_items, size_t batch)
{
    enum { K = 64, N = 20 };
    size_t n_users = batch * 8;
    float *users = malloc(sizeof(float) * n_users * K);
    float *items = malloc(sizeof(float) * n_items * K);
    float *bias = malloc(sizeof(float) * n_items);
    float *scores = malloc(sizeof(float) * batch * n_items);
    advrec_topn_entry_t *out = malloc(sizeof(*out) * batch * N);
    size_t *counts = malloc(sizeof(size_t) * batch);
    advrec_rng_t rng = advrec_rng_for_id(2, "bench");
    double t0, t_gemm, t_all, t_gemv;

    for (size_t x = 0; x < n_users * K; x++)
        users[x] = (float)advrec_rng_gauss(&rng) * 0.1f;
    for (size_t x = 0; x < n_items * K; x++)
        items[x] = (float)advrec_rng_gauss(&rng) * 0.1f;
    for (size_t x = 0; x < n_items; x++)
        bias[x] = advrec_rng_float(&rng) * 0.1f;

    t0 = now_s();
    for (size_t b = 0; b < n_users; b += batch)
        advrec_topn_scores(users + b * K, batch, items, bias, n_items, K,
                           scores);
    t_gemm = now_s() - t0;
    t0 = now_s();
    for (size_t b = 0; b < n_users; b += batch)
        advrec_topn_batch(users + b * K, batch, items, bias, n_items, K, NULL,
                          NULL, N, scores, out, counts);
    t_all = now_s() - t0;
    t0 = now_s();
    for (size_t u = 0; u < n_users; u++) {
        advrec_topn_score_one(users + u * K, items, bias, n_items, K, scores);
        advrec_topn_select(scores, n_items, NULL, 0, N, out);
    }
    t_gemv = now_s() - t0;
    printf("n_items=%6zu batch=%4zu: sgemm %8.0f users/s, sgemm+top%d "
           "%8.0f users/s, sgemv+top%d %8.0f users/s\n",
           n_items, batch, n_users / t_gemm, N, n_users / t_all, N,
           n_users / t_gemv);
    free(users);
    free(items);
    free(bias);
    free(scores);
    free(out);
    free(counts);
}

static void bench_popularity(void)
{
    enum { ITEMS = 100000, EVENTS = 2000000, QUERIES = 2000, N = 20 };
    advrec_popularity_t *pop = advrec_popularity_new(3600000.0, 4 * N, NULL, 0);
    advrec_rng_t rng = advrec_rng_for_id(3, "pop");
    advrec_popularity_entry_t out[N];
    uint32_t ex[4 * N];
    double t0, t_add, t_query, t_scan;

    t0 = now_s();
    for (int e = 0; e < EVENTS; e++)
        advrec_popularity_add(
            pop, advrec_rng_below(&rng, 1 + advrec_rng_below(&rng, ITEMS)),
            1700000000000LL + e * 10, 1.0);
    t_add = now_s() - t0;
    t0 = now_s();
    for (int q = 0; q < QUERIES; q++)
        advrec_popularity_top(pop, N, NULL, 0, out);
    t_query = now_s() - t0;
    for (int x = 0; x < 4 * N; x++) /* too many exclusions: full scan */
        ex[x] = (uint32_t)x;
    t0 = now_s();
    for (int q = 0; q < QUERIES / 10; q++)
        advrec_popularity_top(pop, N, ex, 4 * N, out);
    t_scan = now_s() - t0;
    printf("popularity %d items: add %.0f events/s; top%d from candidates "
           "%.2f us, by full scan %.0f us\n",
           ITEMS, EVENTS / t_add, N, t_query / QUERIES * 1e6,
           t_scan / (QUERIES / 10) * 1e6);
    advrec_popularity_destroy(pop);
}

int main(void)
{
    bench_step("bpr", 0, 1);
    bench_step("apr-fgsm", 1, 1);
    bench_step("apr-pgd3", 1, 3);
    bench_scoring(10000, 1);
    bench_scoring(10000, 64);
    bench_scoring(10000, 256);
    bench_scoring(100000, 64);
    bench_scoring(100000, 256);
    bench_popularity();
    return 0;
}
