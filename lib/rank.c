/*
 * rank.c - owns the scratch of list building: the gathered factor rows of
 * a batch, its score matrix, the top-N entries, the exclusion lists and
 * the list handed to the callback. Nothing here outlives a call.
 */
#include "rank.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topn.h"

#define BATCH_MAX 256
/* The most recently trained items remembered for the index path (each
 * user's list re-scores those trained since the index's snapshot). */
#define RECENT_MAX 256

typedef struct recent_s {
    uint32_t item;
    uint32_t mark; /* trained[item] when it was noted */
} recent_t;

struct advrec_rank_s {
    advrec_rank_params_t p;

    uint32_t k;     /* factors per row the scratch is sized for */
    uint32_t *warm; /* BATCH_MAX users scored by the model */
    float *ubatch;  /* BATCH_MAX x k: their factor rows, gathered */
    float *scores;  /* advrec_topn_batch's scratch (a block of scores) */
    size_t scores_cap;
    advrec_topn_entry_t *top; /* BATCH_MAX x recs_n */
    size_t top_counts[BATCH_MAX];
    advrec_popularity_entry_t *pop_top; /* recs_n */
    uint32_t *excl; /* a batch's exclusions, user after user, each sorted */
    size_t excl_cap;
    const uint32_t *excl_ptr[BATCH_MAX];
    size_t n_excl[BATCH_MAX];
    uint32_t *list_items; /* recs_n, for the emitted list */
    float *list_scores;

    advrec_ann_t *ann;  /* NULL under exact retrieval */
    int use_ann;        /* this call ranks from the index */
    size_t indexed;     /* items [0, indexed) are in it */
    size_t ann_lists;   /* lists of this call built from it */
    size_t exact_lists; /* ... and scored against every item */
    /* Items trained as positives (advrec_rank_trained): per item, 1 + the
     * index's snapshot count when it was last noted (0: never), and a
     * ring of the last RECENT_MAX notes, one per item and mark. */
    uint32_t *trained;
    size_t trained_cap;
    recent_t recent[RECENT_MAX];
    size_t n_recent, recent_at; /* notes held, the next slot */
    uint32_t extra[RECENT_MAX]; /* this call's: trained since, sorted */
    size_t n_extra;
    int64_t *cand; /* one user's candidates: the index's, then extra */
    size_t cand_cap;
};

advrec_rank_t *advrec_rank_new(const advrec_rank_params_t *params, char *errstr,
                               size_t errstr_size)
{
    advrec_rank_t *r;

    if (params->recs_n < 1 ||
        (params->exclude != ADVREC_RANK_EXCLUDE_PURCHASED &&
         params->exclude != ADVREC_RANK_EXCLUDE_SEEN &&
         params->exclude != ADVREC_RANK_EXCLUDE_NONE)) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "rank: recs.n=%u must be >= 1 and recs.exclude %d "
                      "one of purchased, seen, none",
                      params->recs_n, params->exclude);
        return NULL;
    }
    if (params->retrieval != ADVREC_RANK_RETRIEVAL_EXACT &&
        params->retrieval != ADVREC_RANK_RETRIEVAL_ANN &&
        params->retrieval != ADVREC_RANK_RETRIEVAL_AUTO) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "rank: recs.retrieval %d is not one of exact, ann, auto",
                      params->retrieval);
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        goto nomem;
    r->p = *params;
    r->warm = malloc(BATCH_MAX * sizeof(*r->warm));
    r->top = malloc((size_t)BATCH_MAX * params->recs_n * sizeof(*r->top));
    r->pop_top = malloc(params->recs_n * sizeof(*r->pop_top));
    r->list_items = malloc(params->recs_n * sizeof(*r->list_items));
    r->list_scores = malloc(params->recs_n * sizeof(*r->list_scores));
    if (!r->warm || !r->top || !r->pop_top || !r->list_items || !r->list_scores)
        goto nomem;
    if (params->retrieval != ADVREC_RANK_RETRIEVAL_EXACT) {
        r->ann = advrec_ann_new(&params->ann, errstr, errstr_size);
        if (!r->ann) {
            advrec_rank_destroy(r);
            return NULL;
        }
    }
    return r;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size, "rank: out of memory");
    advrec_rank_destroy(r);
    return NULL;
}

void advrec_rank_destroy(advrec_rank_t *r)
{
    if (!r)
        return;
    advrec_ann_destroy(r->ann);
    free(r->warm);
    free(r->ubatch);
    free(r->scores);
    free(r->top);
    free(r->pop_top);
    free(r->excl);
    free(r->list_items);
    free(r->list_scores);
    free(r->trained);
    free(r->cand);
    free(r);
}

const advrec_rank_params_t *advrec_rank_params(const advrec_rank_t *r)
{
    return &r->p;
}

advrec_ann_t *advrec_rank_ann(advrec_rank_t *r)
{
    return r->ann;
}

size_t advrec_rank_ann_lists(const advrec_rank_t *r)
{
    return r->ann_lists;
}

size_t advrec_rank_exact_lists(const advrec_rank_t *r)
{
    return r->exact_lists;
}

void advrec_rank_trained(advrec_rank_t *r, uint32_t item)
{
    uint32_t mark;

    if (!r->ann)
        return;
    mark = (uint32_t)advrec_ann_snapshots(r->ann) + 1;
    if (item >= r->trained_cap) {
        size_t cap = r->trained_cap ? r->trained_cap : 1024;
        uint32_t *t;
        while (cap <= item)
            cap *= 2;
        t = realloc(r->trained, cap * sizeof(*t));
        if (!t)
            return; /* not remembered: only recall can suffer */
        memset(t + r->trained_cap, 0, (cap - r->trained_cap) * sizeof(*t));
        r->trained = t;
        r->trained_cap = cap;
    }
    if (r->trained[item] == mark)
        return;
    r->trained[item] = mark;
    r->recent[r->recent_at] = (recent_t){item, mark};
    r->recent_at = (r->recent_at + 1) % RECENT_MAX;
    if (r->n_recent < RECENT_MAX)
        r->n_recent++;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

    return a < b ? -1 : a > b;
}

/*
 * r->extra: the items among the last RECENT_MAX noted that were trained
 * after the snapshot of the index in use was taken and are in it (those
 * added since are scored anyway), sorted. The index placed them by their
 * factors at the snapshot; a positive step since may have moved them to
 * the top of the lists that matter most, those of users like the one who
 * just bought or clicked them.
 */
static void recent_since_snapshot(advrec_rank_t *r)
{
    uint32_t since = (uint32_t)advrec_ann_index_snapshot(r->ann) + 1;

    r->n_extra = 0;
    for (size_t x = 0; x < r->n_recent; x++) {
        const recent_t *e = &r->recent[x];
        if (e->mark >= since && r->trained[e->item] == e->mark &&
            e->item < r->indexed)
            r->extra[r->n_extra++] = e->item;
    }
    qsort(r->extra, r->n_extra, sizeof(*r->extra), cmp_u32);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Lists from index candidates for the n_warm gathered users: 1, or 0 when
 * the index cannot answer (then nothing was written). Each user's
 * candidates are at least recs_n plus their exclusions, so an excluded
 * candidate does not shorten the list when enough others exist.
 */
static int rank_ann(advrec_rank_t *r, advrec_rows_t *items, size_t n_warm)
{
    size_t c = r->p.ann.candidates, max_ex = 0;
    const int64_t *cand;

    for (size_t w = 0; w < n_warm; w++)
        if (r->n_excl[w] > max_ex)
            max_ex = r->n_excl[w];
    if (c < r->p.recs_n + max_ex)
        c = r->p.recs_n + max_ex;
    if (c > r->indexed)
        c = r->indexed;
    if (r->cand_cap < c + RECENT_MAX) {
        int64_t *x = realloc(r->cand, (c + RECENT_MAX) * sizeof(*x));
        if (!x)
            return 0;
        r->cand = x;
        r->cand_cap = c + RECENT_MAX;
    }
    cand = advrec_ann_search(r->ann, r->ubatch, n_warm, r->k, r->p.use_bias, c);
    if (!cand)
        return 0;
    recent_since_snapshot(r);
    for (size_t w = 0; w < n_warm; w++) {
        size_t m = 0;
        /* The index's candidates, less those among the recent ones (an
         * item offered twice would be listed twice), then those. */
        for (size_t x = 0; x < c; x++) {
            uint32_t it = (uint32_t)cand[w * c + x];
            if (cand[w * c + x] >= 0 &&
                bsearch(&it, r->extra, r->n_extra, sizeof(*r->extra), cmp_u32))
                continue;
            r->cand[m++] = cand[w * c + x];
        }
        for (size_t x = 0; x < r->n_extra; x++)
            r->cand[m++] = r->extra[x];
        r->top_counts[w] = advrec_topn_select_items(
            r->ubatch + w * r->k, items->w, r->p.use_bias ? items->bias : NULL,
            (int)r->k, r->cand, m, r->indexed, items->n, r->excl_ptr[w],
            r->n_excl[w], r->p.recs_n, r->top + w * r->p.recs_n);
    }
    r->ann_lists += n_warm;
    return 1;
}

/* An upper bound of user u's exclusions. */
static size_t excl_bound(const advrec_rank_t *r, advrec_state_t *state,
                         uint32_t u)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);

    switch (r->p.exclude) {
    case ADVREC_RANK_EXCLUDE_PURCHASED:
        return advrec_itemset_count(ux->purchased[u]);
    case ADVREC_RANK_EXCLUDE_SEEN:
        return (size_t)advrec_itemset_count(ux->purchased[u]) +
               advrec_itemset_count(ux->seen[u]);
    default:
        return 0;
    }
}

/*
 * Writes user u's excluded items (policy p.exclude) to dst (room for
 * excl_bound() entries), ascending and without duplicates, as topn and
 * popularity expect; returns their count. The sets are sorted already:
 * seen is the merge of both (a purchase may have left the seen set).
 */
static size_t exclusions(const advrec_rank_t *r, advrec_state_t *state,
                         uint32_t u, uint32_t *dst)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    const uint32_t *a = advrec_itemset_items(ux->purchased[u]), *b;
    size_t na = advrec_itemset_count(ux->purchased[u]), nb, i = 0, j = 0, m = 0;

    if (r->p.exclude == ADVREC_RANK_EXCLUDE_NONE)
        return 0;
    if (r->p.exclude == ADVREC_RANK_EXCLUDE_PURCHASED) {
        if (na)
            memcpy(dst, a, na * sizeof(*dst));
        return na;
    }
    b = advrec_itemset_items(ux->seen[u]);
    nb = advrec_itemset_count(ux->seen[u]);
    while (i < na || j < nb) {
        uint32_t v;
        if (j == nb || (i < na && a[i] < b[j]))
            v = a[i++];
        else if (i == na || b[j] < a[i])
            v = b[j++];
        else {
            v = a[i++];
            j++;
        }
        dst[m++] = v;
    }
    return m;
}

static void emit_list(advrec_rank_t *r, advrec_state_t *state, uint32_t u,
                      uint32_t n, int popular, advrec_rank_emit_cb *emit,
                      void *opaque)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    advrec_rank_list_t list = {
        .user = u,
        .user_id = advrec_state_user_name(state, u),
        .items = r->list_items,
        .scores = r->list_scores,
        .n = n,
        .popular = popular,
        .origin = ux->last[u],
    };

    emit(opaque, &list);
}

/* Whether user u gets the popularity list. */
static int is_cold(const advrec_rank_t *r, advrec_state_t *state, uint32_t u)
{
    advrec_rows_t *users = advrec_state_users(state);

    return users->clicks[u] + users->purchases[u] < r->p.cold_events;
}

/* Gathers the exclusions of users[0..n) into r->excl (reserved). */
static void gather(advrec_rank_t *r, advrec_state_t *state,
                   const uint32_t *users, size_t n, size_t *offs,
                   size_t *counts)
{
    size_t used = 0;

    for (size_t d = 0; d < n; d++) {
        offs[d] = used;
        counts[d] = exclusions(r, state, users[d], r->excl + used);
        used += counts[d];
    }
}

/* Scores and emits users[0..n) (n <= BATCH_MAX); exclusions gathered. */
static void rank_batch(advrec_rank_t *r, advrec_state_t *state,
                       const advrec_popularity_t *pop, const uint32_t *users,
                       size_t n, const size_t *offs, const size_t *counts,
                       advrec_rank_emit_cb *emit, void *opaque)
{
    advrec_rows_t *urows = advrec_state_users(state);
    advrec_rows_t *items = advrec_state_items(state);
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t k = r->k;
    size_t n_warm = 0;

    for (size_t d = 0; d < n; d++) {
        uint32_t u = users[d];
        const uint32_t *ex = r->excl + offs[d];

        if (is_cold(r, state, u)) {
            /* Too little history for the model: recent popularity. */
            size_t m = pop ? advrec_popularity_top(pop, r->p.recs_n, ex,
                                                   counts[d], r->pop_top)
                           : 0;
            for (size_t t = 0; t < m; t++) {
                r->list_items[t] = r->pop_top[t].item;
                r->list_scores[t] = (float)advrec_popularity_key_score(
                    pop, r->pop_top[t].key, ux->last_ts_ms[u]);
            }
            emit_list(r, state, u, (uint32_t)m, 1, emit, opaque);
            continue;
        }
        memcpy(r->ubatch + n_warm * k, urows->w + (size_t)u * k,
               k * sizeof(float));
        r->excl_ptr[n_warm] = ex;
        r->n_excl[n_warm] = counts[d];
        r->warm[n_warm++] = u;
    }
    if (n_warm == 0)
        return;
    if (!r->use_ann || !rank_ann(r, items, n_warm)) {
        /* No index, or it could not answer: every item is scored. */
        if (advrec_topn_batch(r->ubatch, n_warm, items->w,
                              r->p.use_bias ? items->bias : NULL, items->n,
                              (int)k, r->excl_ptr, r->n_excl, r->p.recs_n,
                              r->scores, r->top, r->top_counts))
            return; /* only on invalid arguments, which we never pass */
        r->exact_lists += n_warm;
    }
    for (size_t w = 0; w < n_warm; w++) {
        const advrec_topn_entry_t *top = r->top + w * r->p.recs_n;
        for (size_t t = 0; t < r->top_counts[w]; t++) {
            r->list_items[t] = top[t].item;
            r->list_scores[t] = top[t].score;
        }
        emit_list(r, state, r->warm[w], (uint32_t)r->top_counts[w], 0, emit,
                  opaque);
    }
}

advrec_err_t advrec_rank_users(advrec_rank_t *r, advrec_state_t *state,
                               const advrec_popularity_t *pop,
                               const uint32_t *users, size_t n_users,
                               advrec_rank_emit_cb *emit, void *opaque)
{
    size_t n_items = advrec_state_items(state)->n, batch = BATCH_MAX, done;
    size_t need_scores;
    uint32_t k = advrec_state_params(state)->k;
    size_t offs[BATCH_MAX], counts[BATCH_MAX];

    r->ann_lists = 0;
    r->exact_lists = 0;
    if (n_users == 0)
        return ADVREC_OK;
    r->use_ann = 0;
    if (r->ann && (r->p.retrieval == ADVREC_RANK_RETRIEVAL_ANN ||
                   n_items >= r->p.auto_items)) {
        advrec_rows_t *items = advrec_state_items(state);
        advrec_rows_t *urows = advrec_state_users(state);
        int ready = advrec_ann_update(
            r->ann, items->w, r->p.use_bias ? items->bias : NULL, n_items, k,
            urows->w, urows->n, mono_ms());
        /* Items added since the snapshot are scored one by one: the index
         * pays only while they are few. */
        r->indexed = advrec_ann_indexed(r->ann);
        r->use_ann = ready && n_items - r->indexed <= r->indexed / 8;
    }
    if (r->k != k) {
        float *ub = malloc((size_t)BATCH_MAX * k * sizeof(float));
        if (!ub)
            return ADVREC_ERR_NOMEM;
        free(r->ubatch);
        r->ubatch = ub;
        r->k = k;
    }
    need_scores = advrec_topn_batch_scratch(batch, n_items);
    if (r->scores_cap < need_scores) {
        float *sc = realloc(r->scores, need_scores * sizeof(float));
        if (!sc)
            return ADVREC_ERR_NOMEM;
        r->scores = sc;
        r->scores_cap = need_scores;
    }
    /* The exclusion buffer is sized for the largest batch before any
     * list is emitted, so a failure emits nothing. */
    for (done = 0; done < n_users; done += batch) {
        size_t n = n_users - done < batch ? n_users - done : batch, need = 0;
        for (size_t d = 0; d < n; d++)
            need += excl_bound(r, state, users[done + d]);
        if (need > r->excl_cap) {
            uint32_t *x = realloc(r->excl, need * sizeof(*x));
            if (!x)
                return ADVREC_ERR_NOMEM;
            r->excl = x;
            r->excl_cap = need;
        }
    }
    for (done = 0; done < n_users; done += batch) {
        size_t n = n_users - done < batch ? n_users - done : batch;
        gather(r, state, users + done, n, offs, counts);
        rank_batch(r, state, pop, users + done, n, offs, counts, emit, opaque);
    }
    return ADVREC_OK;
}
