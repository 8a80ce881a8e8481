/*
 * Unit tests for lib/ann.c with the real Faiss (no mocks), and for the
 * parts of lib/topn.c and lib/rank.c that serve lists from it: recall on a
 * clustered catalog against the exact lists, exact re-scoring (scores,
 * order, exclusions, NaN, items added after the snapshot), the swap of a
 * finished index, and recs.retrieval's exact / ann / auto choice.
 * A few thousand items, so each test takes well under a second.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann.h"
#include "check.h"
#include "rank.h"
#include "rng.h"
#include "state.h"
#include "topn.h"

#define K       16
#define N_ITEMS 6000
#define N_Q     200
#define N       10

typedef struct data_s {
    float items[N_ITEMS * K], bias[N_ITEMS], users[N_Q * K];
} data_t;

/* Items and users around 50 centres (the structure trained factors have). */
static void make(data_t *d, uint64_t seed)
{
    advrec_rng_t rng = advrec_rng_for_id(seed, "ann");
    float centre[50 * K];

    for (size_t x = 0; x < 50 * K; x++)
        centre[x] = (float)advrec_rng_gauss(&rng) * 0.5f;
    for (size_t i = 0; i < N_ITEMS; i++) {
        const float *m = centre + (advrec_rng_next(&rng) % 50) * K;
        for (int j = 0; j < K; j++)
            d->items[i * K + j] = m[j] + (float)advrec_rng_gauss(&rng) * 0.2f;
        d->bias[i] = (float)advrec_rng_gauss(&rng) * 0.1f;
    }
    for (size_t u = 0; u < N_Q; u++) {
        const float *m = centre + (advrec_rng_next(&rng) % 50) * K;
        for (int j = 0; j < K; j++)
            d->users[u * K + j] = m[j] + (float)advrec_rng_gauss(&rng) * 0.2f;
    }
}

static advrec_ann_t *ready_index(const data_t *d, size_t n, uint32_t nprobe,
                                 int sq8)
{
    advrec_ann_params_t p = {
        .nprobe = nprobe, .candidates = 50, .rebuild_ms = 1000000, .sq8 = sq8};
    char errstr[256];
    advrec_ann_t *ann = advrec_ann_new(&p, errstr, sizeof(errstr));

    CHECK(ann != NULL);
    if (!ann)
        return NULL;
    /* No index yet: the caller must rank exactly. */
    CHECK(advrec_ann_search(ann, d->users, 1, K, 1, 10) == NULL);
    CHECK_INT(advrec_ann_update(ann, d->items, d->bias, n, K, NULL, 0, 0), 0);
    advrec_ann_wait(ann);
    CHECK_INT(advrec_ann_update(ann, d->items, d->bias, n, K, NULL, 0, 1), 1);
    CHECK_INT(advrec_ann_indexed(ann), n);
    return ann;
}

static void test_recall_against_exact(void)
{
    static data_t d;
    static float scratch[N_Q * N_ITEMS];
    advrec_topn_entry_t truth[N_Q * N], got[N];
    size_t counts[N_Q], hits = 0;

    make(&d, 1);
    CHECK_INT(advrec_topn_batch(d.users, N_Q, d.items, d.bias, N_ITEMS, K, NULL,
                                NULL, N, scratch, truth, counts),
              ADVREC_OK);
    for (int sq8 = 0; sq8 <= 1; sq8++) {
        advrec_ann_t *ann = ready_index(&d, N_ITEMS, 16, sq8);
        const int64_t *cand = advrec_ann_search(ann, d.users, N_Q, K, 1, 50);
        advrec_ann_stats_t st;

        CHECK(cand != NULL);
        advrec_ann_stats(ann, &st);
        CHECK_INT(st.builds, 1);
        CHECK_INT(st.trainings, 1);
        CHECK(st.nlist > 16);
        hits = 0;
        for (size_t u = 0; cand && u < N_Q; u++) {
            size_t n = advrec_topn_select_items(
                d.users + u * K, d.items, d.bias, K, cand + u * 50, 50, N_ITEMS,
                N_ITEMS, NULL, 0, N, got);
            CHECK_INT(n, N);
            for (size_t a = 0; a < N; a++)
                for (size_t b = 0; b < n; b++)
                    hits += truth[u * N + a].item == got[b].item;
        }
        printf("  recall@10 (%s lists, nprobe 16 of %u) %.3f\n",
               sq8 ? "SQ8" : "flat", st.nlist, (double)hits / (N_Q * N));
        CHECK((double)hits / (N_Q * N) >= 0.95);
        advrec_ann_destroy(ann);
    }
}

/* Recall@N of the lists served from ann's index at its probe count in
 * use (50 candidates re-scored exactly) against truth, over the N_Q users. */
static double served_recall(advrec_ann_t *ann, const data_t *d,
                            const advrec_topn_entry_t *truth)
{
    const int64_t *cand = advrec_ann_search(ann, d->users, N_Q, K, 1, 50);
    advrec_topn_entry_t got[N];
    size_t hits = 0;

    CHECK(cand != NULL);
    for (size_t u = 0; cand && u < N_Q; u++) {
        size_t n = advrec_topn_select_items(d->users + u * K, d->items, d->bias,
                                            K, cand + u * 50, 50, N_ITEMS,
                                            N_ITEMS, NULL, 0, N, got);
        for (size_t a = 0; a < N; a++)
            for (size_t b = 0; b < n; b++)
                hits += truth[u * N + a].item == got[b].item;
    }
    return (double)hits / (N_Q * N);
}

/*
 * recs.ann.recall: the build tunes the probe count on the users handed to
 * the snapshot (all N_Q here, fewer than the sample's 256, so the sample
 * is exactly them): the count in use is the smallest of the steps from
 * recs.ann.probe that reaches the target, and the sample recall reported
 * is the recall the served lists have at that count.
 */
static void test_probe_tuned_to_recall(void)
{
    static data_t d;
    static float scratch[N_Q * N_ITEMS];
    advrec_topn_entry_t truth[N_Q * N];
    size_t counts[N_Q];
    const double targets[] = {0.0, 0.9, 0.99, 1.0};

    make(&d, 7);
    CHECK_INT(advrec_topn_batch(d.users, N_Q, d.items, d.bias, N_ITEMS, K, NULL,
                                NULL, N, scratch, truth, counts),
              ADVREC_OK);
    for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        advrec_ann_params_t p = {.nprobe = 1,
                                 .recall = targets[t],
                                 .candidates = 50,
                                 .rebuild_ms = 1000000};
        char errstr[256];
        advrec_ann_t *ann = advrec_ann_new(&p, errstr, sizeof(errstr));
        advrec_ann_stats_t st;
        double r;
        uint32_t prev = 0;

        CHECK(ann != NULL);
        if (!ann)
            return;
        advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, d.users, N_Q, 0);
        advrec_ann_wait(ann);
        CHECK_INT(advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, d.users,
                                    N_Q, 1),
                  1);
        advrec_ann_stats(ann, &st);
        r = served_recall(ann, &d, truth);
        printf("  target %.2f: probe %u of %u lists, sample recall %.4f, "
               "served %.4f\n",
               targets[t], st.nprobe, st.nlist, st.sample_recall, r);
        CHECK_INT(st.sample_users, N_Q);
        CHECK_INT(st.nprobe, st.tuned_nprobe);
        CHECK(fabs(st.sample_recall - r) < 1e-9);
        if (targets[t] == 0.0)
            CHECK_INT(st.nprobe, 1); /* no tuning: recs.ann.probe */
        else
            CHECK(r >= targets[t] || st.nprobe == st.nlist);
        if (targets[t] == 0.9)
            CHECK(st.nprobe > 1); /* one list does not reach 0.9 here */
        if (targets[t] == 1.0)
            CHECK(r == 1.0); /* every list probed at worst */
        /* The step before the tuned count falls short of the target. */
        for (uint32_t np = 1; np<st.nprobe; np += np / 4> 1 ? np / 4 : 1)
            prev = np;
        if (prev) {
            advrec_ann_set_nprobe(ann, prev);
            CHECK(served_recall(ann, &d, truth) < targets[t]);
        }
        advrec_ann_destroy(ann);
    }
}

/* Every candidate is scored exactly: scores, order, exclusions, NaN and
 * the items past the indexed ones. */
static void test_rescoring_is_exact(void)
{
    static data_t d;
    const size_t indexed = N_ITEMS - 100;
    advrec_ann_t *ann;
    const int64_t *cand;
    advrec_topn_entry_t got[N], again[N];
    uint32_t excl[3];

    make(&d, 2);
    ann = ready_index(&d, indexed, 8, 1);
    cand = advrec_ann_search(ann, d.users, 1, K, 1, 50);
    CHECK(cand != NULL);
    if (!cand)
        goto out;
    /* A new item (not in the index) that beats everything. */
    for (int j = 0; j < K; j++)
        d.items[(N_ITEMS - 7) * K + j] = d.users[j] * 100.0f;
    /* The best candidate excluded, the second made NaN. */
    size_t n = advrec_topn_select_items(d.users, d.items, d.bias, K, cand, 50,
                                        indexed, N_ITEMS, NULL, 0, N, got);
    CHECK_INT(n, N);
    CHECK_INT(got[0].item, N_ITEMS - 7);
    for (size_t r = 0; r < n; r++) {
        float want = d.bias[got[r].item];
        for (int j = 0; j < K; j++)
            want += d.users[j] * d.items[got[r].item * K + j];
        CHECK_NEAR(got[r].score, want, 1e-4 * fabsf(want) + 1e-5);
        if (r)
            CHECK(got[r].score <= got[r - 1].score);
    }
    excl[0] = got[1].item < got[3].item ? got[1].item : got[3].item;
    excl[1] = got[1].item < got[3].item ? got[3].item : got[1].item;
    excl[2] = N_ITEMS - 7;
    d.bias[got[2].item] = NAN;
    n = advrec_topn_select_items(d.users, d.items, d.bias, K, cand, 50, indexed,
                                 N_ITEMS, excl, 3, N, again);
    CHECK_INT(n, N);
    for (size_t r = 0; r < n; r++) {
        CHECK(again[r].item != excl[0] && again[r].item != excl[1] &&
              again[r].item != excl[2]);
        CHECK(!isnan(again[r].score));
    }
    CHECK_INT(again[0].item, got[4].item);
out:
    advrec_ann_destroy(ann);
}

/* A rebuild swaps in at the next update, never in the middle of a search,
 * and rebuild_ms holds the next snapshot back. */
static void test_rebuild_swaps_in(void)
{
    static data_t d;
    advrec_ann_t *ann;
    advrec_ann_stats_t st;

    make(&d, 3);
    ann = ready_index(&d, N_ITEMS / 2, 8, 0);
    /* Not due yet (rebuild_ms = 1000 s): no new snapshot. */
    advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, NULL, 0, 5000);
    advrec_ann_wait(ann);
    advrec_ann_stats(ann, &st);
    CHECK_INT(st.builds, 1);
    /* Due: the grown catalog is indexed, the centroids re-trained (it
     * doubled), and the new index is used from the next update on. */
    advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, NULL, 0, 2000000);
    advrec_ann_wait(ann);
    CHECK_INT(advrec_ann_indexed(ann), N_ITEMS / 2);
    advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, NULL, 0, 2000001);
    CHECK_INT(advrec_ann_indexed(ann), N_ITEMS);
    advrec_ann_stats(ann, &st);
    CHECK_INT(st.builds, 2);
    CHECK_INT(st.trainings, 2);
    /* A refill keeps the centroids. */
    advrec_ann_update(ann, d.items, d.bias, N_ITEMS, K, NULL, 0, 4000000);
    advrec_ann_wait(ann);
    advrec_ann_stats(ann, &st);
    CHECK_INT(st.builds, 3);
    CHECK_INT(st.trainings, 2);
    advrec_ann_destroy(ann);
}

static void test_params_checked(void)
{
    advrec_ann_params_t p = {.nprobe = 0, .candidates = 10};
    advrec_rank_params_t rp = {.recs_n = 5, .retrieval = 9};
    char errstr[256];

    CHECK(advrec_ann_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "recs.ann.probe") != NULL);
    p.nprobe = 4;
    p.recall = 1.5;
    CHECK(advrec_ann_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "recs.ann.recall") != NULL);
    CHECK(advrec_rank_new(&rp, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "recs.retrieval") != NULL);
}

typedef struct got_s {
    uint32_t items[N];
    uint32_t n;
} got_t;

static void keep(void *opaque, const advrec_rank_list_t *list)
{
    got_t *g = opaque;

    memcpy(g->items, list->items, list->n * sizeof(*list->items));
    g->n = list->n;
}

/* rank: exact until an index is ready; auto by catalog size; with every
 * list probed the index's list is the exact one. */
static void test_rank_retrieval_choice(void)
{
    static data_t d;
    advrec_state_params_t sp = {
        .k = K, .history = 4, .max_users = 10, .max_items = N_ITEMS};
    char errstr[256], id[32];
    advrec_state_t *state = advrec_state_new(&sp, errstr, sizeof(errstr));
    advrec_rows_t *items, *users;
    uint32_t u, idx;
    got_t exact = {{0}, 0}, got = {{0}, 0};

    CHECK(state != NULL);
    if (!state)
        return;
    make(&d, 4);
    for (size_t i = 0; i < N_ITEMS; i++) {
        snprintf(id, sizeof(id), "i%zu", i);
        CHECK_INT(
            advrec_state_item(state, id, 1, &idx, NULL, errstr, sizeof(errstr)),
            ADVREC_OK);
    }
    CHECK_INT(
        advrec_state_user(state, "u", 1, &u, NULL, errstr, sizeof(errstr)),
        ADVREC_OK);
    items = advrec_state_items(state);
    users = advrec_state_users(state);
    memcpy(items->w, d.items, sizeof(d.items));
    memcpy(items->bias, d.bias, sizeof(d.bias));
    memcpy(users->w + (size_t)u * K, d.users, K * sizeof(float));

    for (int mode = 0; mode < 3; mode++) {
        advrec_rank_params_t rp = {
            .recs_n = N,
            .exclude = ADVREC_RANK_EXCLUDE_NONE,
            .cold_events = 0,
            .use_bias = 1,
            .retrieval = mode,
            .auto_items = mode == ADVREC_RANK_RETRIEVAL_AUTO ? N_ITEMS + 1 : 1,
            .ann = {.nprobe = 100000, .candidates = 20, .rebuild_ms = 1000000}};
        advrec_rank_t *r = advrec_rank_new(&rp, errstr, sizeof(errstr));

        CHECK(r != NULL);
        if (!r)
            continue;
        CHECK((advrec_rank_ann(r) == NULL) ==
              (mode == ADVREC_RANK_RETRIEVAL_EXACT));
        CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep,
                                    mode ? &got : &exact),
                  ADVREC_OK);
        CHECK_INT(advrec_rank_ann_lists(r), 0); /* no index yet */
        if (advrec_rank_ann(r))
            advrec_ann_wait(advrec_rank_ann(r));
        CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep,
                                    mode ? &got : &exact),
                  ADVREC_OK);
        /* auto below its threshold never builds an index. */
        CHECK_INT(advrec_rank_ann_lists(r),
                  mode == ADVREC_RANK_RETRIEVAL_ANN ? 1 : 0);
        if (mode == ADVREC_RANK_RETRIEVAL_AUTO)
            CHECK_INT(advrec_ann_indexed(advrec_rank_ann(r)), 0);
        if (mode) {
            CHECK_INT(got.n, exact.n);
            for (uint32_t t = 0; t < got.n; t++)
                CHECK_INT(got.items[t], exact.items[t]);
        }
        advrec_rank_destroy(r);
    }
    advrec_state_destroy(state);
}

/*
 * An item trained after the index's snapshot is re-scored in every list
 * served from the index: moved to the top of a user's scores, it is
 * listed first once noted (advrec_rank_trained), and not before (the
 * index still places it where its old factors were).
 */
static void test_recently_trained_rescored(void)
{
    static data_t d;
    advrec_state_params_t sp = {
        .k = K, .history = 4, .max_users = 10, .max_items = N_ITEMS};
    char errstr[256], id[32];
    advrec_state_t *state = advrec_state_new(&sp, errstr, sizeof(errstr));
    advrec_rank_params_t rp = {
        .recs_n = N,
        .exclude = ADVREC_RANK_EXCLUDE_NONE,
        .use_bias = 1,
        .retrieval = ADVREC_RANK_RETRIEVAL_ANN,
        .ann = {.nprobe = 1, .candidates = 20, .rebuild_ms = 1000000}};
    advrec_rank_t *r;
    advrec_rows_t *items, *users;
    uint32_t u, idx, moved = UINT32_MAX;
    got_t got = {{0}, 0};

    CHECK(state != NULL);
    if (!state)
        return;
    make(&d, 5);
    for (size_t i = 0; i < N_ITEMS; i++) {
        snprintf(id, sizeof(id), "i%zu", i);
        CHECK_INT(
            advrec_state_item(state, id, 1, &idx, NULL, errstr, sizeof(errstr)),
            ADVREC_OK);
    }
    CHECK_INT(
        advrec_state_user(state, "u", 1, &u, NULL, errstr, sizeof(errstr)),
        ADVREC_OK);
    items = advrec_state_items(state);
    users = advrec_state_users(state);
    memcpy(items->w, d.items, sizeof(d.items));
    memcpy(items->bias, d.bias, sizeof(d.bias));
    memcpy(users->w + (size_t)u * K, d.users, K * sizeof(float));
    r = advrec_rank_new(&rp, errstr, sizeof(errstr));
    CHECK(r != NULL);
    if (!r) {
        advrec_state_destroy(state);
        return;
    }
    CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep, &got), ADVREC_OK);
    advrec_ann_wait(advrec_rank_ann(r));
    CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep, &got), ADVREC_OK);
    CHECK_INT(advrec_rank_ann_lists(r), 1);
    /* An item at the far end of the user's scores (not a candidate)
     * takes a step to the top. */
    {
        float worst = INFINITY;
        for (uint32_t i = 0; i < N_ITEMS; i++) {
            float s = items->bias[i];
            for (int j = 0; j < K; j++)
                s += items->w[(size_t)i * K + j] * d.users[j];
            if (s < worst) {
                worst = s;
                moved = i;
            }
        }
    }
    for (int j = 0; j < K; j++)
        items->w[(size_t)moved * K + j] = d.users[j] * 100.0f;
    CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep, &got), ADVREC_OK);
    CHECK_INT(advrec_rank_ann_lists(r), 1);
    CHECK(got.n == N && got.items[0] != moved);
    advrec_rank_trained(r, moved);
    CHECK_INT(advrec_rank_users(r, state, NULL, &u, 1, keep, &got), ADVREC_OK);
    CHECK_INT(advrec_rank_ann_lists(r), 1);
    CHECK_INT(got.n, N);
    CHECK_INT(got.items[0], moved);
    for (uint32_t t = 1; t < got.n; t++)
        CHECK(got.items[t] != moved); /* listed once */
    advrec_rank_destroy(r);
    advrec_state_destroy(state);
}

int main(void)
{
    RUN(test_recall_against_exact);
    RUN(test_probe_tuned_to_recall);
    RUN(test_rescoring_is_exact);
    RUN(test_rebuild_swaps_in);
    RUN(test_params_checked);
    RUN(test_rank_retrieval_choice);
    RUN(test_recently_trained_rescored);
    return DONE();
}
