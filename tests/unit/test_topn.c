/*
 * Unit tests for topn.c: heap selection against a full sort, sgemm/sgemv
 * scores against naive dot products, the batch path against per-user calls.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "topn.h"

static int cmp_entry(const void *pa, const void *pb)
{
    const advrec_topn_entry_t *a = pa, *b = pb;

    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

    return a < b ? -1 : a > b;
}

/* The answer by brute force: every eligible item, fully sorted. */
static size_t brute_topn(const float *scores, size_t n_items,
                         const uint32_t *excluded, size_t n_excluded, size_t n,
                         advrec_topn_entry_t *out)
{
    advrec_topn_entry_t *all = malloc(sizeof(*all) * (n_items + 1));
    size_t len = 0;

    for (size_t it = 0; it < n_items; it++) {
        int skip = isnan(scores[it]);
        for (size_t e = 0; e < n_excluded; e++)
            skip |= excluded[e] == it;
        if (skip)
            continue;
        all[len].item = (uint32_t)it;
        all[len].score = scores[it];
        len++;
    }
    qsort(all, len, sizeof(*all), cmp_entry);
    if (len > n)
        len = n;
    memcpy(out, all, sizeof(*all) * len);
    free(all);
    return len;
}

static void test_select_equals_full_sort(void)
{
    static const size_t sizes[] = {0, 1, 2, 7, 17, 100, 1000, 4099, 5000};
    static const size_t ns[] = {0, 1, 3, 10, 50, 6000};
    advrec_rng_t rng = advrec_rng_for_id(11, "topn");

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
        for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++)
            for (int variant = 0; variant < 4; variant++) {
                size_t n_items = sizes[si], n = ns[ni];
                float *scores = malloc(sizeof(float) * (n_items + 1));
                uint32_t excl[64];
                size_t n_ex = 0;
                advrec_topn_entry_t *got = malloc(sizeof(*got) * (n + 1));
                advrec_topn_entry_t *want = malloc(sizeof(*want) * (n + 1));

                for (size_t it = 0; it < n_items; it++) {
                    float f = advrec_rng_float(&rng);
                    /* variant 1 and 3: few distinct values, many ties. */
                    scores[it] =
                        variant % 2 ? (float)(int)(f * 4.0f) : f * 2.0f - 1.0f;
                }
                if (variant == 3 && n_items > 2)
                    scores[n_items / 2] = NAN;
                if (variant >= 2 && n_items > 0) {
                    n_ex = 1 + advrec_rng_below(&rng, 63);
                    for (size_t e = 0; e < n_ex; e++)
                        excl[e] = advrec_rng_below(&rng, (uint32_t)n_items);
                    qsort(excl, n_ex, sizeof(excl[0]), cmp_u32);
                }
                size_t lg =
                    advrec_topn_select(scores, n_items, excl, n_ex, n, got);
                size_t lw = brute_topn(scores, n_items, excl, n_ex, n, want);
                CHECK_INT(lg, lw);
                for (size_t r = 0; r < lg && r < lw; r++) {
                    CHECK_INT(got[r].item, want[r].item);
                    CHECK(got[r].score == want[r].score);
                }
                free(scores);
                free(got);
                free(want);
            }
}

static void test_ties_prefer_lower_index(void)
{
    float scores[6] = {1, 2, 2, 0, 2, 1};
    advrec_topn_entry_t out[4];
    uint32_t excl[] = {2, 2};

    CHECK_INT(advrec_topn_select(scores, 6, NULL, 0, 4, out), 4);
    CHECK_INT(out[0].item, 1);
    CHECK_INT(out[1].item, 2);
    CHECK_INT(out[2].item, 4);
    CHECK_INT(out[3].item, 0);
    CHECK_INT(advrec_topn_select(scores, 6, excl, 2, 2, out), 2);
    CHECK_INT(out[0].item, 1);
    CHECK_INT(out[1].item, 4);
}

static void naive_scores(const float *users, size_t b_users, const float *items,
                         const float *bias, size_t n_items, int k, double *out)
{
    for (size_t b = 0; b < b_users; b++)
        for (size_t it = 0; it < n_items; it++) {
            double s = bias ? bias[it] : 0.0;
            for (int n = 0; n < k; n++)
                s += (double)users[b * (size_t)k + (size_t)n] *
                     items[it * (size_t)k + (size_t)n];
            out[b * n_items + it] = s;
        }
}

static void test_sgemm_scores_equal_naive(void)
{
    static const int ks[] = {1, 8, 37, 64};
    advrec_rng_t rng = advrec_rng_for_id(12, "gemm");
    const size_t b_users = 13, n_items = 517;

    for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
        int k = ks[ki];
        float *users = malloc(sizeof(float) * b_users * (size_t)k);
        float *items = malloc(sizeof(float) * n_items * (size_t)k);
        float *bias = malloc(sizeof(float) * n_items);
        float *scores = malloc(sizeof(float) * b_users * n_items);
        float *one = malloc(sizeof(float) * n_items);
        double *want = malloc(sizeof(double) * b_users * n_items);

        for (size_t x = 0; x < b_users * (size_t)k; x++)
            users[x] = (float)advrec_rng_gauss(&rng) * 0.3f;
        for (size_t x = 0; x < n_items * (size_t)k; x++)
            items[x] = (float)advrec_rng_gauss(&rng) * 0.3f;
        for (size_t x = 0; x < n_items; x++)
            bias[x] = advrec_rng_float(&rng) - 0.5f;

        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            const float *bb = with_bias ? bias : NULL;
            naive_scores(users, b_users, items, bb, n_items, k, want);
            CHECK_INT(advrec_topn_scores(users, b_users, items, bb, n_items, k,
                                         scores),
                      ADVREC_OK);
            for (size_t x = 0; x < b_users * n_items; x++)
                CHECK_NEAR(scores[x], want[x], 1e-4);
            for (size_t b = 0; b < b_users; b++) {
                CHECK_INT(advrec_topn_score_one(users + b * (size_t)k, items,
                                                bb, n_items, k, one),
                          ADVREC_OK);
                for (size_t it = 0; it < n_items; it++)
                    CHECK_NEAR(one[it], want[b * n_items + it], 1e-4);
            }
        }
        free(users);
        free(items);
        free(bias);
        free(scores);
        free(one);
        free(want);
    }
}

static void test_batch_equals_per_user(void)
{
    enum { B = 5, NI = 300, K = 16, N = 10 };
    static float users[B * K], items[NI * K], scores[B * NI], one[NI];
    advrec_topn_entry_t out[B * N], want[N];
    size_t counts[B], n_ex[B];
    uint32_t ex_store[B][3];
    const uint32_t *ex[B];
    advrec_rng_t rng = advrec_rng_for_id(13, "batch");

    for (size_t x = 0; x < B * K; x++)
        users[x] = advrec_rng_float(&rng) - 0.5f;
    for (size_t x = 0; x < NI * K; x++)
        items[x] = advrec_rng_float(&rng) - 0.5f;
    for (int b = 0; b < B; b++) {
        /* Exclude what the user would otherwise get first. */
        advrec_topn_score_one(users + b * K, items, NULL, NI, K, one);
        advrec_topn_select(one, NI, NULL, 0, 3, want);
        for (int e = 0; e < 3; e++)
            ex_store[b][e] = want[e].item;
        qsort(ex_store[b], 3, sizeof(uint32_t), cmp_u32);
        ex[b] = ex_store[b];
        n_ex[b] = (size_t)b % 4; /* 0..3 of them */
    }
    CHECK_INT(advrec_topn_batch(users, B, items, NULL, NI, K, ex, n_ex, N,
                                scores, out, counts),
              ADVREC_OK);
    for (int b = 0; b < B; b++) {
        advrec_topn_score_one(users + b * K, items, NULL, NI, K, one);
        size_t len = advrec_topn_select(one, NI, ex[b], n_ex[b], N, want);
        CHECK_INT(counts[b], len);
        for (size_t r = 0; r < len; r++)
            CHECK_INT(out[b * N + r].item, want[r].item);
        for (size_t r = 0; r < counts[b]; r++)
            for (size_t e = 0; e < n_ex[b]; e++)
                CHECK(out[b * N + r].item != ex[b][e]);
    }
}

/* Several item blocks (and a ragged last one), biases, a NaN, exclusions
 * with duplicates: the fused path keeps what score-then-select keeps (the
 * scores to rounding: sgemm's blocking may sum differently). */
static void test_batch_blocks_equal_full_matrix(void)
{
    enum { B = 64, NI = 3001, K = 8, N = 7 };
    float *users = malloc(sizeof(float) * B * K);
    float *items = malloc(sizeof(float) * NI * K);
    float *bias = malloc(sizeof(float) * NI);
    float *full = malloc(sizeof(float) * B * NI);
    float *scratch = malloc(sizeof(float) * advrec_topn_batch_scratch(B, NI));
    advrec_topn_entry_t out[B * N], want[N];
    size_t counts[B], n_ex[B];
    uint32_t ex_store[B][4];
    const uint32_t *ex[B];
    advrec_rng_t rng = advrec_rng_for_id(17, "blocks");

    CHECK(advrec_topn_batch_scratch(B, NI) < (size_t)B * NI);
    for (size_t x = 0; x < B * K; x++)
        users[x] = advrec_rng_float(&rng) - 0.5f;
    for (size_t x = 0; x < NI * K; x++)
        items[x] = advrec_rng_float(&rng) - 0.5f;
    for (size_t x = 0; x < NI; x++)
        bias[x] = (advrec_rng_float(&rng) - 0.5f) * 0.1f;
    bias[2000] = NAN;
    CHECK_INT(advrec_topn_scores(users, B, items, bias, NI, K, full),
              ADVREC_OK);
    for (int b = 0; b < B; b++) {
        advrec_topn_select(full + (size_t)b * NI, NI, NULL, 0, 3, want);
        ex_store[b][0] = want[0].item;
        ex_store[b][1] = want[0].item; /* a duplicate */
        ex_store[b][2] = want[2].item;
        ex_store[b][3] = 2999;
        qsort(ex_store[b], 4, sizeof(uint32_t), cmp_u32);
        ex[b] = ex_store[b];
        n_ex[b] = (size_t)b % 5;
    }
    CHECK_INT(advrec_topn_batch(users, B, items, bias, NI, K, ex, n_ex, N,
                                scratch, out, counts),
              ADVREC_OK);
    for (int b = 0; b < B; b++) {
        size_t len = advrec_topn_select(full + (size_t)b * NI, NI, ex[b],
                                        n_ex[b], N, want);
        CHECK_INT(counts[b], len);
        for (size_t r = 0; r < len; r++) {
            CHECK_INT(out[b * N + r].item, want[r].item);
            CHECK_NEAR(out[b * N + r].score, want[r].score, 1e-5);
        }
    }
    free(users);
    free(items);
    free(bias);
    free(full);
    free(scratch);
}

int main(void)
{
    RUN(test_select_equals_full_sort);
    RUN(test_ties_prefer_lower_index);
    RUN(test_sgemm_scores_equal_naive);
    RUN(test_batch_equals_per_user);
    RUN(test_batch_blocks_equal_full_matrix);
    return DONE();
}
