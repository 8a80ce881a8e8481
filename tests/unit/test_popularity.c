/*
 * Unit tests for popularity.c: decay by half-lives, ranking by
 * recency-weighted counts (against a direct sum), the top-M candidate set
 * against the full scan, restore from stored keys.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "popularity.h"
#include "rng.h"

#define HOUR_MS 3600000.0

static void test_decay_halves_after_half_life(void)
{
    char err[128];
    advrec_popularity_t *pop = advrec_popularity_new(HOUR_MS, 8, err, 128);
    const int64_t t0 = 1700000000000LL; /* a realistic epoch time */

    CHECK(pop != NULL);
    CHECK_INT(advrec_popularity_add(pop, 3, t0, 1.0), ADVREC_OK);
    CHECK_NEAR(advrec_popularity_score(pop, 3, t0), 1.0, 1e-9);
    CHECK_NEAR(advrec_popularity_score(pop, 3, t0 + 3600000), 0.5, 1e-9);
    CHECK_NEAR(advrec_popularity_score(pop, 3, t0 + 7200000), 0.25, 1e-9);
    /* A second event adds on top of the decayed first. */
    CHECK_INT(advrec_popularity_add(pop, 3, t0 + 3600000, 2.0), ADVREC_OK);
    CHECK_NEAR(advrec_popularity_score(pop, 3, t0 + 3600000), 2.5, 1e-9);
    /* Events out of order count the same. */
    CHECK_INT(advrec_popularity_add(pop, 4, t0 + 3600000, 2.0), ADVREC_OK);
    CHECK_INT(advrec_popularity_add(pop, 4, t0, 1.0), ADVREC_OK);
    CHECK_NEAR(advrec_popularity_score(pop, 4, t0 + 3600000), 2.5, 1e-9);
    /* Never seen: 0, and not ranked. */
    CHECK(advrec_popularity_score(pop, 2, t0) == 0.0);
    CHECK(advrec_popularity_score(pop, 999, t0) == 0.0);
    CHECK_INT(advrec_popularity_count(pop), 2);
    advrec_popularity_destroy(pop);
}

static void test_recent_beats_old_at_any_time(void)
{
    advrec_popularity_t *pop = advrec_popularity_new(HOUR_MS, 8, NULL, 0);
    advrec_popularity_entry_t out[4];

    /* Item 0: three events at 0. Item 1: one event two half-lives later,
     * worth 4 of item 0's. Item 2: weight 2 at 0, below item 0. */
    for (int e = 0; e < 3; e++)
        advrec_popularity_add(pop, 0, 0, 1.0);
    advrec_popularity_add(pop, 1, 7200000, 1.0);
    advrec_popularity_add(pop, 2, 0, 2.0);
    CHECK_INT(advrec_popularity_top(pop, 4, NULL, 0, out), 3);
    CHECK_INT(out[0].item, 1);
    CHECK_INT(out[1].item, 0);
    CHECK_INT(out[2].item, 2);
    CHECK_NEAR(advrec_popularity_key_score(pop, out[0].key, 7200000), 1.0,
               1e-9);
    CHECK_NEAR(advrec_popularity_key_score(pop, out[1].key, 7200000), 0.75,
               1e-9);
    advrec_popularity_destroy(pop);
}

typedef struct ref_s {
    uint32_t item;
    double score;
} ref_t;

static int cmp_ref(const void *pa, const void *pb)
{
    const ref_t *a = pa, *b = pb;

    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->item < b->item ? -1 : a->item > b->item;
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

    return a < b ? -1 : a > b;
}

/* Random weighted events; top-N (candidate set or scan, with or without
 * exclusions) against a direct sum of decayed weights. */
static void test_ranking_follows_decayed_counts(void)
{
    enum { ITEMS = 300, EVENTS = 5000 };
    static const size_t ms[] = {1, 4, 32, 1000};
    advrec_rng_t rng = advrec_rng_for_id(21, "pop");
    static double sums[ITEMS];
    const int64_t now = 1700000000000LL + (int64_t)(20 * HOUR_MS);

    for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
        advrec_popularity_t *pop =
            advrec_popularity_new(HOUR_MS, ms[mi], NULL, 0);
        ref_t ref[ITEMS];
        size_t n_ref = 0;

        memset(sums, 0, sizeof(sums));
        for (int e = 0; e < EVENTS; e++) {
            /* Skewed items, times over 20 hours, clicks and purchases. */
            uint32_t item =
                advrec_rng_below(&rng, 1 + advrec_rng_below(&rng, ITEMS));
            int64_t t =
                1700000000000LL + (int64_t)advrec_rng_below(&rng, 72000000);
            double w = advrec_rng_below(&rng, 10) == 0 ? 5.0 : 1.0;
            CHECK_INT(advrec_popularity_add(pop, item, t, w), ADVREC_OK);
            sums[item] += w * exp2(-(double)(now - t) / HOUR_MS);
        }
        for (uint32_t it = 0; it < ITEMS; it++)
            if (sums[it] > 0.0) {
                ref[n_ref].item = it;
                ref[n_ref].score = sums[it];
                n_ref++;
                CHECK_NEAR(advrec_popularity_score(pop, it, now), sums[it],
                           1e-9 * sums[it] + 1e-12);
            }
        qsort(ref, n_ref, sizeof(ref[0]), cmp_ref);
        CHECK_INT(advrec_popularity_count(pop), n_ref);

        for (int with_ex = 0; with_ex <= 1; with_ex++) {
            for (size_t n = 1; n <= 20; n += 19) {
                uint32_t ex[3] = {ref[2].item, ref[0].item, ref[0].item};
                size_t n_ex = with_ex ? 3 : 0;
                advrec_popularity_entry_t out[20];
                size_t len, r = 0;

                qsort(ex, 3, sizeof(ex[0]), cmp_u32);
                len = advrec_popularity_top(pop, n, ex, n_ex, out);
                CHECK_INT(len, n);
                for (size_t g = 0; g < len; g++) {
                    /* the reference list, minus the excluded items */
                    while (with_ex && (ref[r].item == ref[0].item ||
                                       ref[r].item == ref[2].item))
                        r++;
                    CHECK_INT(out[g].item, ref[r].item);
                    r++;
                }
            }
        }
        advrec_popularity_destroy(pop);
    }
}

static void test_restore_and_errors(void)
{
    char err[128];
    advrec_popularity_t *pop = advrec_popularity_new(HOUR_MS, 2, NULL, 0);
    advrec_popularity_t *back = advrec_popularity_new(HOUR_MS, 2, NULL, 0);
    advrec_popularity_entry_t a[3], b[3];

    for (uint32_t it = 0; it < 5; it++)
        advrec_popularity_add(pop, it, (int64_t)it * 1000, 1.0 + it % 3);
    /* What the state store would persist, restored into a new tracker. */
    for (uint32_t it = 0; it < 5; it++)
        CHECK_INT(
            advrec_popularity_set_key(back, it, advrec_popularity_key(pop, it)),
            ADVREC_OK);
    CHECK_INT(advrec_popularity_top(pop, 3, NULL, 0, a), 3);
    CHECK_INT(advrec_popularity_top(back, 3, NULL, 0, b), 3);
    for (int r = 0; r < 3; r++) {
        CHECK_INT(a[r].item, b[r].item);
        CHECK(a[r].key == b[r].key);
    }
    /* Lowering a key (a store rewritten by hand) re-ranks correctly. */
    CHECK_INT(advrec_popularity_set_key(back, a[0].item, -INFINITY), ADVREC_OK);
    CHECK_INT(advrec_popularity_count(back), 4);
    CHECK_INT(advrec_popularity_top(back, 2, NULL, 0, b), 2);
    CHECK_INT(b[0].item, a[1].item);
    CHECK_INT(b[1].item, a[2].item);

    CHECK_INT(advrec_popularity_add(pop, 1, 0, 0.0), ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_popularity_add(pop, 1, 0, -1.0), ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_popularity_add(pop, 1, 0, NAN), ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_popularity_set_key(pop, 1, NAN), ADVREC_ERR_INVALID_ARG);
    CHECK(advrec_popularity_new(0.0, 2, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "half-life") != NULL);
    CHECK(advrec_popularity_new(HOUR_MS, 0, err, sizeof(err)) == NULL);
    advrec_popularity_destroy(NULL);
    advrec_popularity_destroy(pop);
    advrec_popularity_destroy(back);
}

int main(void)
{
    RUN(test_restore_and_errors);
    RUN(test_decay_halves_after_half_life);
    RUN(test_recent_beats_old_at_any_time);
    RUN(test_ranking_follows_decayed_counts);
    return DONE();
}
