/*
 * rank_bench.c - lists per second of the two retrieval paths (not a test).
 *
 * Exact scoring: for each catalog size, a bare cblas_sgemm of the batch's
 * shape (users x k times items^T into a full score matrix), the former path
 * (that matrix plus biases, then one heap selection per user) and the fused
 * path advrec_topn_batch (block by block, selected in cache), alternated in
 * one run so the ratios compare like with like.
 *
 * Build with -DADVREC_BENCH=ON; run
 *   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 build/bench/advrec-rank-bench
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
                        (int)n_items, K, 1.0f, users + b * K, K, items, K,
                        0.0f, full, (int)n_items);
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

int main(int argc, char **argv)
{
    bench_exact(100000, 1024);
    bench_exact(1000000, 256);
    return 0;
}
