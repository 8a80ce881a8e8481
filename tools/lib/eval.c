/*
 * eval.c - owns the in-memory data set (interactions and id maps), the
 * split arrays, and the short-lived copies and scratch buffers of the
 * experiments. The model itself lives in lib/apr, lib/state, lib/topn and
 * lib/engine; this file only drives them.
 */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "idmap.h"
#include "itemsync.h"
#include "rank.h"
#include "rng.h"
#include "topn.h"

#define NEG_REDRAWS   3  /* as the engine: redraws of a seen negative */
#define AHEAD         4  /* training: events whose negatives are drawn early */
#define SHUFFLE_AHEAD 16 /* training: swaps whose partners are drawn early */

struct advrec_eval_data_s {
    advrec_eval_inter_t *v;
    size_t n, cap;
    advrec_idmap_t *users, *items;
    char first_skip[512]; /* "" or the first malformed line's message */
};

advrec_eval_data_t *advrec_eval_data_new(void)
{
    advrec_eval_data_t *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->users = advrec_idmap_new(UINT32_MAX - 1);
    d->items = advrec_idmap_new(UINT32_MAX - 1);
    if (!d->users || !d->items) {
        advrec_eval_data_destroy(d);
        return NULL;
    }
    return d;
}

void advrec_eval_data_destroy(advrec_eval_data_t *d)
{
    if (!d)
        return;
    advrec_idmap_destroy(d->users);
    advrec_idmap_destroy(d->items);
    free(d->v);
    free(d);
}

advrec_err_t advrec_eval_data_add(advrec_eval_data_t *d,
                                  const advrec_event_t *ev)
{
    advrec_eval_inter_t *x;
    uint32_t u, i;
    advrec_err_t err;

    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        advrec_eval_inter_t *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return ADVREC_ERR_NOMEM;
        d->v = v;
        d->cap = cap;
    }
    if ((err = advrec_idmap_get(d->users, ev->user_id, strlen(ev->user_id), 1,
                                &u, NULL)) ||
        (err = advrec_idmap_get(d->items, ev->item_id, strlen(ev->item_id), 1,
                                &i, NULL)))
        return err;
    x = &d->v[d->n++];
    x->user = u;
    x->item = i;
    x->ts_ms = ev->ts_ms;
    x->purchase = ev->type == ADVREC_EVENT_PURCHASE;
    return ADVREC_OK;
}

advrec_err_t advrec_eval_data_load(advrec_eval_data_t *d, const char *path,
                                   const advrec_reader_conf_t *rconf,
                                   uint64_t *skipped,
                                   advrec_eval_progress_cb *progress,
                                   void *opaque, char *errstr,
                                   size_t errstr_size)
{
    advrec_reader_t *r = NULL;
    advrec_event_t ev;
    advrec_err_t err;
    char lerr[512];
    uint64_t n = 0;

    if ((err = advrec_reader_new(&r, path, rconf, errstr, errstr_size)))
        return err;
    for (;;) {
        err = advrec_reader_next(r, &ev, lerr, sizeof(lerr));
        if (err == ADVREC_ERR_EOF)
            break;
        if (err == ADVREC_ERR_PARSE) {
            /* Counted by the reader; the first one is kept to be shown. */
            if (!d->first_skip[0])
                snprintf(d->first_skip, sizeof(d->first_skip), "%s", lerr);
            continue;
        }
        if (err) {
            advrec_seterr(err, errstr, errstr_size, "%s", lerr);
            goto out;
        }
        if ((err = advrec_eval_data_add(d, &ev))) {
            advrec_seterr(err, errstr, errstr_size, "%s:%llu: %s", path,
                          (unsigned long long)advrec_reader_line(r),
                          advrec_err2str(err));
            goto out;
        }
        if (progress && (++n & 0xffff) == 0 && advrec_reader_size(r) > 0)
            progress(opaque, "load", (uint64_t)advrec_reader_bytes_read(r),
                     (uint64_t)advrec_reader_size(r));
    }
    err = ADVREC_OK;
    advrec_eval_data_sort(d);
out:
    if (skipped)
        *skipped = advrec_reader_skipped(r);
    advrec_reader_destroy(r);
    return err;
}

/* Merge sort by ts_ms: stable, O(n log n), one scratch array. */
static void merge_sort(advrec_eval_inter_t *v, advrec_eval_inter_t *tmp,
                       size_t n)
{
    size_t h = n / 2, a = 0, b = h, o = 0;

    if (n < 2)
        return;
    merge_sort(v, tmp, h);
    merge_sort(v + h, tmp, n - h);
    if (v[h - 1].ts_ms <= v[h].ts_ms)
        return;
    while (a < h && b < n)
        tmp[o++] = v[b].ts_ms < v[a].ts_ms ? v[b++] : v[a++];
    while (a < h)
        tmp[o++] = v[a++];
    while (b < n)
        tmp[o++] = v[b++];
    memcpy(v, tmp, n * sizeof(*v));
}

void advrec_eval_data_sort(advrec_eval_data_t *d)
{
    advrec_eval_inter_t *tmp;
    int sorted = 1;

    for (size_t e = 1; e < d->n && sorted; e++)
        sorted = d->v[e - 1].ts_ms <= d->v[e].ts_ms;
    if (sorted)
        return;
    tmp = malloc(d->n * sizeof(*tmp));
    if (!tmp) {
        /* Insertion sort needs no memory; slow, but correct. */
        for (size_t a = 1; a < d->n; a++) {
            advrec_eval_inter_t x = d->v[a];
            size_t b = a;
            for (; b > 0 && d->v[b - 1].ts_ms > x.ts_ms; b--)
                d->v[b] = d->v[b - 1];
            d->v[b] = x;
        }
        return;
    }
    merge_sort(d->v, tmp, d->n);
    free(tmp);
}

const advrec_eval_inter_t *advrec_eval_data_inters(const advrec_eval_data_t *d)
{
    return d->v;
}

const char *advrec_eval_data_first_skip(const advrec_eval_data_t *d)
{
    return d->first_skip[0] ? d->first_skip : NULL;
}

size_t advrec_eval_data_count(const advrec_eval_data_t *d)
{
    return d->n;
}

uint32_t advrec_eval_data_users(const advrec_eval_data_t *d)
{
    return advrec_idmap_count(d->users);
}

uint32_t advrec_eval_data_items(const advrec_eval_data_t *d)
{
    return advrec_idmap_count(d->items);
}

const char *advrec_eval_data_user_name(const advrec_eval_data_t *d,
                                       uint32_t user)
{
    return advrec_idmap_name(d->users, user);
}

const char *advrec_eval_data_item_name(const advrec_eval_data_t *d,
                                       uint32_t item)
{
    return advrec_idmap_name(d->items, item);
}

/* ---- metrics ---- */

double advrec_eval_hr(uint32_t rank, uint32_t k)
{
    return rank < k ? 1.0 : 0.0;
}

double advrec_eval_ndcg(uint32_t rank, uint32_t k)
{
    return rank < k ? 1.0 / log2((double)rank + 2.0) : 0.0;
}

uint32_t advrec_eval_rank(float target, const float *others, size_t n)
{
    uint32_t r = 0;

    if (isnan(target))
        return (uint32_t)n;
    for (size_t a = 0; a < n; a++)
        r += others[a] >= target; /* NaN compares false: ignored */
    return r;
}

static void metrics_add(advrec_eval_metrics_t *m, uint32_t rank)
{
    m->hr += advrec_eval_hr(rank, m->k);
    m->ndcg += advrec_eval_ndcg(rank, m->k);
    m->mrr += 1.0 / ((double)rank + 1.0);
    m->n++;
}

static void metrics_finish(advrec_eval_metrics_t *m)
{
    if (m->n == 0)
        return;
    m->hr /= (double)m->n;
    m->ndcg /= (double)m->n;
    m->mrr /= (double)m->n;
}

/* ---- split ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int sorted_has(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

int advrec_eval_split_has(const advrec_eval_split_t *s, uint32_t user,
                          uint32_t item)
{
    return sorted_has(s->tr_it + s->tr_off[user],
                      s->tr_off[user + 1] - s->tr_off[user], item);
}

void advrec_eval_split_free(advrec_eval_split_t *s)
{
    free(s->train);
    free(s->test);
    free(s->negs);
    free(s->tr_off);
    free(s->tr_it);
    memset(s, 0, sizeof(*s));
}

/* Builds tr_off/tr_it (per-user sorted unique items) from s->train. */
static advrec_err_t build_index(advrec_eval_split_t *s)
{
    size_t *fill = NULL;

    s->tr_off = calloc((size_t)s->n_users + 1, sizeof(*s->tr_off));
    s->tr_it = malloc((s->n_train ? s->n_train : 1) * sizeof(*s->tr_it));
    fill = malloc(((size_t)s->n_users + 1) * sizeof(*fill));
    if (!s->tr_off || !s->tr_it || !fill) {
        free(fill);
        return ADVREC_ERR_NOMEM;
    }
    for (size_t e = 0; e < s->n_train; e++)
        s->tr_off[s->train[e].user + 1]++;
    for (uint32_t u = 0; u < s->n_users; u++)
        s->tr_off[u + 1] += s->tr_off[u];
    memcpy(fill, s->tr_off, ((size_t)s->n_users + 1) * sizeof(*fill));
    for (size_t e = 0; e < s->n_train; e++)
        s->tr_it[fill[s->train[e].user]++] = s->train[e].item;
    /* Sort and deduplicate each user's run, compacting in place. */
    {
        size_t o = 0;
        for (uint32_t u = 0; u < s->n_users; u++) {
            size_t a = s->tr_off[u], b = s->tr_off[u + 1], start = o;
            qsort(s->tr_it + a, b - a, sizeof(*s->tr_it), cmp_u32);
            for (size_t c = a; c < b; c++)
                if (o == start || s->tr_it[o - 1] != s->tr_it[c])
                    s->tr_it[o++] = s->tr_it[c];
            s->tr_off[u] = start;
        }
        s->tr_off[s->n_users] = o;
    }
    free(fill);
    return ADVREC_OK;
}

/* The leave-one-out construction over the n interactions v (users < nu,
 * items < ni, in order): each user's last interaction is held out when the
 * user has at least two and enough untouched items; negatives avoid the
 * user's training items, the held-out item and also[u] (an item held out
 * one level up, the test item when building a validation split; also may
 * be NULL). The negative stream is salted by salt and the user's name. */
static advrec_err_t split_build(advrec_eval_split_t *s,
                                const advrec_eval_inter_t *v, size_t n,
                                uint32_t nu, uint32_t ni, const uint32_t *also,
                                uint32_t n_neg, uint64_t seed, const char *salt,
                                const advrec_eval_data_t *d)
{
    size_t *last = NULL, *count = NULL;

    memset(s, 0, sizeof(*s));
    s->n_users = nu;
    s->n_items = ni;
    s->n_neg = n_neg;
    last = malloc(((size_t)nu + 1) * sizeof(*last));
    count = calloc((size_t)nu + 1, sizeof(*count));
    s->test = malloc(((size_t)nu + 1) * sizeof(*s->test));
    s->negs = calloc((size_t)nu * n_neg + 1, sizeof(*s->negs));
    s->train = malloc((n ? n : 1) * sizeof(*s->train));
    if (!last || !count || !s->test || !s->negs || !s->train)
        goto nomem;
    for (size_t e = 0; e < n; e++) {
        last[v[e].user] = e;
        count[v[e].user]++;
    }
    /* Users with too few untouched items for n_neg negatives are decided
     * first, so they keep all their interactions for training. An index of
     * all interactions counts each user's distinct items. */
    memcpy(s->train, v, n * sizeof(*s->train));
    s->n_train = n;
    if (build_index(s))
        goto nomem;
    for (uint32_t u = 0; u < nu; u++) {
        size_t extra = also && also[u] != ADVREC_EVAL_NONE ? 1 : 0;
        s->test[u] = count[u] >= 2 && (size_t)ni >= s->tr_off[u + 1] -
                                                        s->tr_off[u] + n_neg +
                                                        extra
                         ? v[last[u]].item
                         : ADVREC_EVAL_NONE;
    }
    free(s->tr_off);
    free(s->tr_it);
    s->tr_off = NULL;
    s->tr_it = NULL;
    s->n_train = 0;
    /* Training: everything but the test item of its user, every time it
     * occurs (a repeat of the held-out item would leak it). */
    for (size_t e = 0; e < n; e++)
        if (v[e].item != s->test[v[e].user])
            s->train[s->n_train++] = v[e];
    if (build_index(s))
        goto nomem;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t *neg = s->negs + (size_t)u * n_neg;
        uint32_t other = also ? also[u] : ADVREC_EVAL_NONE;
        size_t got = 0;
        advrec_rng_t rng;

        if (s->test[u] == ADVREC_EVAL_NONE)
            continue;
        rng = advrec_rng_for_id(advrec_mix64(seed ^ advrec_hash64(salt)),
                                advrec_idmap_name(d->users, u));
        while (got < n_neg) {
            uint32_t j = advrec_rng_below(&rng, ni);
            int dup =
                j == s->test[u] || j == other || advrec_eval_split_has(s, u, j);
            for (size_t a = 0; a < got && !dup; a++)
                dup = neg[a] == j;
            if (!dup)
                neg[got++] = j;
        }
        qsort(neg, n_neg, sizeof(*neg), cmp_u32);
        s->n_tested++;
    }
    free(last);
    free(count);
    return ADVREC_OK;
nomem:
    free(last);
    free(count);
    advrec_eval_split_free(s);
    return ADVREC_ERR_NOMEM;
}

advrec_err_t advrec_eval_split_loo(advrec_eval_split_t *s,
                                   const advrec_eval_data_t *d, uint32_t n_neg,
                                   uint64_t seed)
{
    return split_build(s, d->v, d->n, advrec_eval_data_users(d),
                       advrec_eval_data_items(d), NULL, n_neg, seed, "neg", d);
}

advrec_err_t advrec_eval_split_val(advrec_eval_split_t *val,
                                   const advrec_eval_split_t *test,
                                   const advrec_eval_data_t *d, uint64_t seed)
{
    return split_build(val, test->train, test->n_train, test->n_users,
                       test->n_items, test->test, test->n_neg, seed, "val", d);
}

/* Writes "user\theld_item\tneg1 ... negN" for every tested user of s. */
static int write_cases(const advrec_eval_split_t *s,
                       const advrec_eval_data_t *d, const char *path)
{
    FILE *fp = fopen(path, "w");

    if (!fp)
        return -1;
    for (uint32_t u = 0; u < s->n_users; u++) {
        if (s->test[u] == ADVREC_EVAL_NONE)
            continue;
        fprintf(fp, "%s\t%s", advrec_idmap_name(d->users, u),
                advrec_idmap_name(d->items, s->test[u]));
        for (uint32_t a = 0; a < s->n_neg; a++)
            fprintf(
                fp, "%c%s", a ? ' ' : '\t',
                advrec_idmap_name(d->items, s->negs[(size_t)u * s->n_neg + a]));
        fputc('\n', fp);
    }
    return fclose(fp) ? -1 : 0;
}

advrec_err_t advrec_eval_split_write(const advrec_eval_split_t *s,
                                     const advrec_eval_data_t *d,
                                     const char *dir, char *errstr,
                                     size_t errstr_size)
{
    char path[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/train.tsv", dir);
    if (!(fp = fopen(path, "w")))
        goto io;
    for (size_t e = 0; e < s->n_train; e++)
        fprintf(fp, "%s\t%s\t%lld\n",
                advrec_idmap_name(d->users, s->train[e].user),
                advrec_idmap_name(d->items, s->train[e].item),
                (long long)s->train[e].ts_ms);
    if (fclose(fp))
        goto io;
    snprintf(path, sizeof(path), "%s/test.tsv", dir);
    if (write_cases(s, d, path))
        goto io;
    return ADVREC_OK;
io:
    return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size, "cannot write %s",
                         path);
}

advrec_err_t advrec_eval_split_write_val(const advrec_eval_split_t *val,
                                         const advrec_eval_data_t *d,
                                         const char *dir, char *errstr,
                                         size_t errstr_size)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/val.tsv", dir);
    if (write_cases(val, d, path))
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "cannot write %s", path);
    return ADVREC_OK;
}

/* ---- model and training ---- */

static advrec_apr_row_t row_of(advrec_rows_t *rows, uint32_t idx, int bias)
{
    advrec_apr_row_t r = {
        .w = rows->w + (size_t)idx * rows->k,
        .acc = rows->acc + idx,
        .bias = bias ? rows->bias + idx : NULL,
        .bias_acc = bias ? rows->bias_acc + idx : NULL,
        .updates = rows->updates + idx,
    };
    return r;
}

/* Interns n names (name(data, 0..n-1)) into the state, which must hand out
 * the same indices, and initialises each new row like the engine does. */
static advrec_err_t intern_all(advrec_state_t *st, const advrec_eval_data_t *d,
                               const advrec_apr_params_t *apr, int items,
                               uint32_t n, char *errstr, size_t errstr_size)
{
    for (uint32_t x = 0; x < n; x++) {
        const char *id = items ? advrec_idmap_name(d->items, x)
                               : advrec_idmap_name(d->users, x);
        uint32_t idx;
        int created;
        advrec_err_t err;
        advrec_apr_row_t row;

        err = items ? advrec_state_item(st, id, 1, &idx, &created, errstr,
                                        errstr_size)
                    : advrec_state_user(st, id, 1, &idx, &created, errstr,
                                        errstr_size);
        if (err)
            return err;
        row = items ? row_of(advrec_state_items(st), idx, apr->use_bias)
                    : row_of(advrec_state_users(st), idx, 0);
        advrec_apr_row_init(apr, items ? ADVREC_APR_ITEM : ADVREC_APR_USER, id,
                            &row);
    }
    return ADVREC_OK;
}

advrec_state_t *advrec_eval_model_new(const advrec_eval_data_t *d,
                                      const advrec_apr_params_t *apr,
                                      char *errstr, size_t errstr_size)
{
    advrec_state_params_t sp = {
        .k = (uint32_t)apr->k,
        .history = 1,
        .max_users = advrec_eval_data_users(d) + 1,
        .max_items = advrec_eval_data_items(d) + 1,
    };
    advrec_state_t *st;

    if (advrec_apr_params_check(apr, errstr, errstr_size))
        return NULL;
    st = advrec_state_new(&sp, errstr, errstr_size);
    if (!st)
        return NULL;
    if (intern_all(st, d, apr, 0, advrec_eval_data_users(d), errstr,
                   errstr_size) ||
        intern_all(st, d, apr, 1, advrec_eval_data_items(d), errstr,
                   errstr_size)) {
        advrec_state_destroy(st);
        return NULL;
    }
    return st;
}

/* Asks for row idx's factors (k floats) and its accumulator (one) to be
 * brought into the cache; a hint, never a fault. */
static void prefetch_row(const advrec_rows_t *rows, uint32_t idx)
{
    const char *w = (const char *)(rows->w + (size_t)idx * rows->k);
    size_t bytes = (size_t)rows->k * sizeof(float);

    for (size_t b = 0; b < bytes; b += 64)
        __builtin_prefetch(w + b, 1);
    __builtin_prefetch(rows->acc + idx, 1);
}

/* One training interaction as the loop reads it: the rows, and where the
 * user's training items are (the negatives' check; n_tr 0 for users outside
 * the split, fake shilling users, whose negatives are plain uniform).
 * Shuffled in place each pass, so the loop reads them in sequence instead
 * of chasing an index into the interactions and then into the split. */
typedef struct tstep_s {
    uint32_t user, item;
    uint32_t n_tr; /* the user's training items: s->tr_it[off .. off+n_tr) */
    uint32_t pad;
    size_t off;
} tstep_t;

/* The n negatives of t, from rng: uniform over the items, redrawn up to
 * NEG_REDRAWS times while the user has the item in training. */
static void draw_negatives(const advrec_eval_split_t *s, uint32_t n_items,
                           const tstep_t *t, uint32_t n, advrec_rng_t *rng,
                           uint32_t *out)
{
    const uint32_t *tr = s->tr_it + t->off;

    for (uint32_t a = 0; a < n; a++) {
        uint32_t j = advrec_apr_sample_negative(rng, n_items, t->item);

        for (int r = 0; r < NEG_REDRAWS && sorted_has(tr, t->n_tr, j); r++)
            j = advrec_apr_sample_negative(rng, n_items, t->item);
        out[a] = j;
    }
}

advrec_err_t advrec_eval_train(advrec_state_t *model,
                               const advrec_eval_split_t *s,
                               const advrec_eval_inter_t *train, size_t n_train,
                               const advrec_eval_train_t *p,
                               advrec_eval_progress_cb *progress, void *opaque,
                               char *errstr, size_t errstr_size)
{
    advrec_rows_t *users = advrec_state_users(model);
    advrec_rows_t *items = advrec_state_items(model);
    tstep_t *steps = NULL; /* train, as the loop reads it, shuffled */
    float *scratch = NULL;
    uint32_t *negs = NULL; /* AHEAD + 1 events' negatives, a ring */
    advrec_err_t err = ADVREC_OK;
    int bias = p->apr.use_bias;

    if ((err = advrec_apr_params_check(&p->apr, errstr, errstr_size)))
        return err;
    if (p->negatives < 1 || items->n < 2 || (uint32_t)p->apr.k != users->k)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "eval: negatives %u, items %u, k %d vs %u",
                             p->negatives, items->n, p->apr.k, users->k);
    for (size_t e = 0; e < n_train; e++)
        if (train[e].user >= users->n || train[e].item >= items->n)
            return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                                 "eval: interaction %zu out of the model", e);
    steps = malloc((n_train ? n_train : 1) * sizeof(*steps));
    scratch = malloc(advrec_apr_scratch_floats(p->apr.k) * sizeof(float));
    negs = malloc((AHEAD + 1) * (size_t)p->negatives * sizeof(*negs));
    if (!steps || !scratch || !negs) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "eval: out of memory");
        goto out;
    }
    for (size_t e = 0; e < n_train; e++) {
        uint32_t u = train[e].user;
        int in_split = u < s->n_users;

        steps[e].user = u;
        steps[e].item = train[e].item;
        steps[e].off = in_split ? s->tr_off[u] : 0;
        steps[e].n_tr =
            in_split ? (uint32_t)(s->tr_off[u + 1] - s->tr_off[u]) : 0;
        steps[e].pad = 0;
    }
    for (uint32_t ep = 0; ep < p->epochs; ep++) {
        advrec_rng_t rng = {advrec_mix64(p->seed * 0x9e3779b97f4a7c15ull + ep)};
        int adv = ep >= p->bpr_epochs;

        /* Fisher-Yates: a fresh order each pass, as SGD over BPR wants
         * (the same swaps as on an index array, on the steps themselves).
         * The swap partners are drawn SHUFFLE_AHEAD swaps early, in the
         * same order from the stream, and prefetched: a random read of the
         * steps otherwise stalls each swap. */
        {
            size_t ring[SHUFFLE_AHEAD], drawn = n_train;

            for (; drawn > 1 && n_train - drawn < SHUFFLE_AHEAD; drawn--) {
                ring[drawn % SHUFFLE_AHEAD] =
                    advrec_rng_below(&rng, (uint32_t)drawn);
                __builtin_prefetch(&steps[ring[drawn % SHUFFLE_AHEAD]], 1);
            }
            for (size_t e = n_train; e > 1; e--) {
                size_t r = ring[e % SHUFFLE_AHEAD];
                tstep_t t;

                if (drawn > 1) {
                    /* drawn = e - SHUFFLE_AHEAD: the slot r came from. */
                    ring[drawn % SHUFFLE_AHEAD] =
                        advrec_rng_below(&rng, (uint32_t)drawn);
                    __builtin_prefetch(&steps[ring[drawn % SHUFFLE_AHEAD]], 1);
                    drawn--;
                }
                t = steps[e - 1];
                steps[e - 1] = steps[r];
                steps[r] = t;
            }
        }
        /* Negatives are drawn AHEAD events early (the draws keep their
         * order in the stream, so the model is the same), and what the
         * coming events read is prefetched while this one trains: the
         * users' training items (the negatives' check) 2 AHEAD early, the
         * three rows AHEAD early. On a data set whose tables outgrow the
         * cache, the step otherwise waits on memory for each of them
         * (docs/PERFORMANCE.md, "Model step"). */
        for (size_t e = 0; e < AHEAD && e < n_train; e++)
            draw_negatives(s, items->n, &steps[e], p->negatives, &rng,
                           negs + (e % (AHEAD + 1)) * p->negatives);
        for (size_t e = 0; e < n_train; e++) {
            const tstep_t *x = &steps[e];
            advrec_apr_row_t ru = row_of(users, x->user, 0);
            advrec_apr_row_t ri = row_of(items, x->item, bias);
            uint32_t *cur = negs + (e % (AHEAD + 1)) * p->negatives;

            if (e + 2 * AHEAD < n_train)
                __builtin_prefetch(s->tr_it + steps[e + 2 * AHEAD].off);
            if (e + AHEAD < n_train) {
                const tstep_t *xa = &steps[e + AHEAD];
                uint32_t *ahead =
                    negs + ((e + AHEAD) % (AHEAD + 1)) * p->negatives;

                draw_negatives(s, items->n, xa, p->negatives, &rng, ahead);
                prefetch_row(users, xa->user);
                prefetch_row(items, xa->item);
                for (uint32_t n = 0; n < p->negatives; n++)
                    prefetch_row(items, ahead[n]);
            }
            for (uint32_t n = 0; n < p->negatives; n++) {
                advrec_apr_row_t rj = row_of(items, cur[n], bias);
                (void)advrec_apr_step(&p->apr, &ru, &ri, &rj, 1.0f, adv,
                                      scratch, NULL);
            }
            if (progress && (e & 0x3fff) == 0)
                progress(opaque, "train", (uint64_t)ep * n_train + e,
                         (uint64_t)p->epochs * n_train);
        }
        if (p->after_pass && p->after_pass(p->after_pass_opaque, ep + 1, model))
            break;
    }
    if (progress)
        progress(opaque, "train", (uint64_t)p->epochs * n_train,
                 (uint64_t)p->epochs * n_train);
out:
    free(steps);
    free(scratch);
    free(negs);
    return err;
}

/* ---- leave-one-out ---- */

advrec_err_t advrec_eval_loo(const advrec_eval_split_t *s, const float *users,
                             const float *items, const float *item_bias, int kf,
                             int full, uint32_t k, advrec_eval_metrics_t *out)
{
    float *scores = malloc(((size_t)s->n_items + 1) * sizeof(float));
    float *others = malloc(((size_t)s->n_items + 1) * sizeof(float));

    memset(out, 0, sizeof(*out));
    out->k = k;
    if (!scores || !others) {
        free(scores);
        free(others);
        return ADVREC_ERR_NOMEM;
    }
    for (uint32_t u = 0; u < s->n_users; u++) {
        const float *p = users + (size_t)u * kf;
        uint32_t t = s->test[u];
        size_t n = 0;

        if (t == ADVREC_EVAL_NONE)
            continue;
        if (full) {
            const uint32_t *tr = s->tr_it + s->tr_off[u];
            size_t ntr = s->tr_off[u + 1] - s->tr_off[u], a = 0;

            advrec_topn_score_one(p, items, item_bias, s->n_items, kf, scores);
            /* Everything but the test item and the training items (a
             * merge over the sorted training list). */
            for (uint32_t j = 0; j < s->n_items; j++) {
                while (a < ntr && tr[a] < j)
                    a++;
                if (j != t && !(a < ntr && tr[a] == j))
                    others[n++] = scores[j];
            }
            metrics_add(out, advrec_eval_rank(scores[t], others, n));
        } else {
            const uint32_t *neg = s->negs + (size_t)u * s->n_neg;
            float st = advrec_apr_score(kf, p, items + (size_t)t * kf,
                                        item_bias ? item_bias + t : NULL);
            for (uint32_t a = 0; a < s->n_neg; a++)
                others[n++] =
                    advrec_apr_score(kf, p, items + (size_t)neg[a] * kf,
                                     item_bias ? item_bias + neg[a] : NULL);
            metrics_add(out, advrec_eval_rank(st, others, n));
        }
    }
    metrics_finish(out);
    free(scores);
    free(others);
    return ADVREC_OK;
}

advrec_err_t advrec_eval_loo_model(const advrec_eval_split_t *s,
                                   advrec_state_t *model, int use_bias,
                                   int full, uint32_t k,
                                   advrec_eval_metrics_t *out)
{
    advrec_rows_t *users = advrec_state_users(model);
    advrec_rows_t *items = advrec_state_items(model);

    return advrec_eval_loo(s, users->w, items->w, use_bias ? items->bias : NULL,
                           (int)users->k, full, k, out);
}

advrec_err_t advrec_eval_fgsm(const advrec_eval_split_t *s,
                              advrec_state_t *model, int use_bias, float eps,
                              uint64_t seed, uint32_t k,
                              advrec_eval_metrics_t *out)
{
    advrec_rows_t *users = advrec_state_users(model);
    advrec_rows_t *items = advrec_state_items(model);
    size_t ku = (size_t)users->n * users->k, ki = (size_t)items->n * items->k;
    float *pu = malloc(ku * sizeof(float)), *pi = malloc(ki * sizeof(float));
    float *gu = malloc(ku * sizeof(float)), *gi = malloc(ki * sizeof(float));
    advrec_apr_triple_t *tr = malloc((s->n_train + 1) * sizeof(*tr));
    advrec_rng_t rng = {advrec_mix64(seed ^ 0xf65du)};
    advrec_err_t err = ADVREC_ERR_NOMEM;

    if (!pu || !pi || !gu || !gi || !tr)
        goto out;
    memcpy(pu, users->w, ku * sizeof(float));
    memcpy(pi, items->w, ki * sizeof(float));
    for (size_t e = 0; e < s->n_train; e++) {
        uint32_t u = s->train[e].user, i = s->train[e].item;
        uint32_t j = advrec_apr_sample_negative(&rng, items->n, i);
        for (int r = 0; r < NEG_REDRAWS && advrec_eval_split_has(s, u, j); r++)
            j = advrec_apr_sample_negative(&rng, items->n, i);
        tr[e] = (advrec_apr_triple_t){u, i, j};
    }
    if ((err = advrec_apr_perturb_tables(
             (int)users->k, eps, pu, users->n, pi, items->n,
             use_bias ? items->bias : NULL, tr, s->n_train, gu, gi)))
        goto out;
    err = advrec_eval_loo(s, pu, pi, use_bias ? items->bias : NULL,
                          (int)users->k, 0, k, out);
out:
    free(pu);
    free(pi);
    free(gu);
    free(gi);
    free(tr);
    return err;
}

void advrec_eval_norms(advrec_state_t *model, int use_bias,
                       advrec_eval_norms_t *out)
{
    advrec_rows_t *rows[2] = {advrec_state_users(model),
                              advrec_state_items(model)};
    double sum[2] = {0, 0}, bsum = 0;
    uint32_t n[2] = {0, 0};

    for (int t = 0; t < 2; t++)
        for (uint32_t r = 0; r < rows[t]->n; r++) {
            const float *w = rows[t]->w + (size_t)r * rows[t]->k;
            double q = 0;
            if (rows[t]->updates[r] == 0)
                continue;
            for (uint32_t c = 0; c < rows[t]->k; c++)
                q += (double)w[c] * w[c];
            sum[t] += sqrt(q);
            n[t]++;
            if (t == 1 && use_bias)
                bsum += fabs((double)rows[t]->bias[r]);
        }
    out->users = n[0];
    out->items = n[1];
    out->user = n[0] ? sum[0] / n[0] : 0;
    out->item = n[1] ? sum[1] / n[1] : 0;
    out->item_bias_abs = n[1] ? bsum / n[1] : 0;
}

/* ---- shilling ---- */

advrec_err_t advrec_eval_shill(const advrec_eval_split_t *s, uint32_t target,
                               uint32_t n_fake, uint32_t n_filler,
                               uint64_t seed, advrec_eval_inter_t **out,
                               size_t *n_out)
{
    size_t n = s->n_train + (size_t)n_fake * (n_filler + 1), o = s->n_train;
    advrec_eval_inter_t *v;
    uint32_t *fill;
    int64_t ts = 0;
    advrec_rng_t rng = {advrec_mix64(seed ^ 0x5411u)};

    *out = NULL;
    *n_out = 0;
    if (target >= s->n_items || n_filler + 1 > s->n_items)
        return ADVREC_ERR_INVALID_ARG;
    v = malloc((n ? n : 1) * sizeof(*v));
    fill = malloc(((size_t)n_filler + 1) * sizeof(*fill));
    if (!v || !fill) {
        free(v);
        free(fill);
        return ADVREC_ERR_NOMEM;
    }
    memcpy(v, s->train, s->n_train * sizeof(*v));
    for (size_t e = 0; e < s->n_train; e++)
        if (v[e].ts_ms > ts)
            ts = v[e].ts_ms;
    for (uint32_t f = 0; f < n_fake; f++) {
        uint32_t got = 0;
        fill[got++] = target;
        while (got < n_filler + 1) {
            uint32_t j = advrec_rng_below(&rng, s->n_items);
            int dup = 0;
            for (uint32_t a = 0; a < got && !dup; a++)
                dup = fill[a] == j;
            if (!dup)
                fill[got++] = j;
        }
        for (uint32_t a = 0; a < got; a++)
            v[o++] = (advrec_eval_inter_t){
                .user = s->n_users + f, .item = fill[a], .ts_ms = ++ts};
    }
    free(fill);
    *out = v;
    *n_out = n;
    return ADVREC_OK;
}

advrec_err_t advrec_eval_target(const advrec_eval_split_t *s,
                                advrec_state_t *model, int use_bias,
                                uint32_t target, uint32_t k,
                                advrec_eval_target_t *out)
{
    advrec_rows_t *users = advrec_state_users(model);
    advrec_rows_t *items = advrec_state_items(model);
    float *scores = malloc(((size_t)s->n_items + 1) * sizeof(float));
    const float *bias = use_bias ? items->bias : NULL;

    memset(out, 0, sizeof(*out));
    if (!scores)
        return ADVREC_ERR_NOMEM;
    for (uint32_t u = 0; u < s->n_users; u++) {
        const uint32_t *tr = s->tr_it + s->tr_off[u];
        size_t ntr = s->tr_off[u + 1] - s->tr_off[u], a = 0;
        uint32_t above = 0;
        float st;

        if (ntr == 0 || sorted_has(tr, ntr, target))
            continue;
        advrec_topn_score_one(users->w + (size_t)u * users->k, items->w, bias,
                              s->n_items, (int)users->k, scores);
        st = scores[target];
        /* Rank among the items the user would be offered (ties: the lower
         * index first, as advrec_topn_select orders them). */
        for (uint32_t j = 0; j < s->n_items && above < k; j++) {
            while (a < ntr && tr[a] < j)
                a++;
            if (j == target || (a < ntr && tr[a] == j))
                continue;
            above += scores[j] > st || (scores[j] == st && j < target);
        }
        out->hit += above < k;
        out->mean_score += st;
        out->users++;
    }
    if (out->users) {
        out->hit /= (double)out->users;
        out->mean_score /= (double)out->users;
    }
    free(scores);
    return ADVREC_OK;
}

/* ---- prequential ---- */

typedef struct preq_ctx_s {
    uint32_t *list; /* where the emitted list goes */
    uint32_t *len;
    uint32_t k;
} preq_ctx_t;

static void preq_emit(void *opaque, const advrec_engine_list_t *list)
{
    preq_ctx_t *c = opaque;
    uint32_t n = list->n < c->k ? list->n : c->k;

    memcpy(c->list, list->items, n * sizeof(*c->list));
    *c->len = n;
}

typedef struct lists_s {
    uint32_t *items; /* per user, k entries */
    uint32_t k;
    uint64_t n; /* lists kept (model-scored users only) */
} lists_t;

static void lists_keep(void *opaque, const advrec_rank_list_t *list)
{
    lists_t *l = opaque;
    uint32_t n = list->n < l->k ? list->n : l->k;

    if (list->popular)
        return;
    memcpy(l->items + (size_t)list->user * l->k, list->items,
           n * sizeof(*l->items));
    for (uint32_t t = n; t < l->k; t++)
        l->items[(size_t)list->user * l->k + t] = UINT32_MAX;
    l->n++;
}

/*
 * The recall@k of index lists against exact lists on state's factors,
 * with a fresh index (built here, waited for); 0 users when params do not
 * use one or memory is short.
 */
static void ann_recall(advrec_state_t *state, const advrec_engine_params_t *p,
                       advrec_eval_preq_t *out)
{
    advrec_rank_params_t rp = {.recs_n = p->recs_n,
                               .exclude = p->exclude,
                               .cold_events = p->cold_events,
                               .use_bias = p->apr.use_bias,
                               .retrieval = p->retrieval,
                               .auto_items = p->retrieval_auto_items,
                               .ann = p->ann};
    uint32_t nu = advrec_state_users(state)->n, k = p->recs_n;
    lists_t ex = {NULL, k, 0}, an = {NULL, k, 0};
    advrec_rank_t *re = NULL, *ra = NULL;
    uint32_t *users = malloc(((size_t)nu + 1) * sizeof(*users));
    uint64_t hit = 0;

    out->ann_users = 0;
    ex.items = malloc(((size_t)nu * k + 1) * sizeof(*ex.items));
    an.items = malloc(((size_t)nu * k + 1) * sizeof(*an.items));
    re = advrec_rank_new(&rp, NULL, 0);
    rp.retrieval = ADVREC_RANK_RETRIEVAL_EXACT;
    ra = re;
    re = advrec_rank_new(&rp, NULL, 0);
    if (!users || !ex.items || !an.items || !re || !ra || !advrec_rank_ann(ra))
        goto out;
    for (uint32_t u = 0; u < nu; u++)
        users[u] = u;
    /* The first call snapshots the factors; the second ranks from them. */
    advrec_rank_users(ra, state, NULL, users, 1, lists_keep, &an);
    advrec_ann_wait(advrec_rank_ann(ra));
    an.n = 0;
    if (advrec_rank_users(ra, state, NULL, users, nu, lists_keep, &an) ||
        advrec_rank_users(re, state, NULL, users, nu, lists_keep, &ex) ||
        advrec_rank_ann_lists(ra) != an.n)
        goto out;
    {
        advrec_ann_stats_t st;
        advrec_ann_stats(advrec_rank_ann(ra), &st);
        out->ann_probe = st.nprobe;
        out->ann_nlist = st.nlist;
        out->ann_sample_recall = st.sample_recall;
    }
    for (uint32_t u = 0; u < nu; u++) {
        const uint32_t *a = an.items + (size_t)u * k,
                       *e = ex.items + (size_t)u * k;
        if (advrec_state_users(state)->clicks[u] +
                advrec_state_users(state)->purchases[u] <
            p->cold_events)
            continue;
        for (uint32_t x = 0; x < k; x++)
            for (uint32_t y = 0; y < k && e[x] != UINT32_MAX; y++)
                if (e[x] == a[y]) {
                    hit++;
                    break;
                }
        out->ann_users++;
    }
    out->ann_recall =
        out->ann_users ? (double)hit / ((double)out->ann_users * k) : 0;
out:
    advrec_rank_destroy(re);
    advrec_rank_destroy(ra);
    free(users);
    free(ex.items);
    free(an.items);
}

/* The instance Kafka's range assignor gives partition part of parts
 * among n members: contiguous runs, the first parts % n one longer. */
static uint32_t range_owner(uint32_t part, uint32_t parts, uint32_t n)
{
    uint32_t per = parts / n, extra = parts % n;

    if (part < extra * (per + 1))
        return part / (per + 1);
    return extra + (part - extra * (per + 1)) / per;
}

/* One exchange: every instance's records merged into every other. */
typedef struct xchg_s {
    advrec_itemsync_t **sync;
    uint32_t n, from;
    advrec_err_t err;
    char errstr[512]; /* the merge's, kept apart from publish's */
} xchg_t;

static int xchg_emit(void *opaque, const char *key, size_t key_len,
                     const uint8_t *value, size_t value_len)
{
    xchg_t *x = opaque;

    for (uint32_t b = 0; b < x->n; b++)
        if (b != x->from && (x->err = advrec_itemsync_merge(
                                 x->sync[b], key, key_len, value, value_len,
                                 x->errstr, sizeof(x->errstr))))
            return -1;
    return 0;
}

static advrec_err_t exchange(advrec_itemsync_t **sync, uint32_t n,
                             uint64_t *records, char *errstr,
                             size_t errstr_size)
{
    xchg_t *x = calloc(1, sizeof(*x));
    advrec_err_t err = ADVREC_OK;

    if (!x)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "eval: out of memory");
    x->sync = sync;
    x->n = n;
    for (x->from = 0; x->from < n && !err; x->from++) {
        size_t k = 0;
        err = advrec_itemsync_publish(sync[x->from], xchg_emit, x, &k, errstr,
                                      errstr_size);
        *records += k;
        if (x->err)
            err = advrec_seterr(x->err, errstr, errstr_size, "%s", x->errstr);
    }
    free(x);
    return err;
}

advrec_err_t advrec_eval_prequential(const advrec_eval_data_t *d,
                                     const advrec_engine_params_t *params,
                                     int popularity, advrec_eval_preq_t *out,
                                     advrec_eval_progress_cb *progress,
                                     void *opaque, char *errstr,
                                     size_t errstr_size)
{
    advrec_engine_params_t p = *params;
    uint32_t n_inst = out->instances > 1 ? out->instances : 1;
    advrec_engine_t **eng = NULL;
    advrec_itemsync_t **sync = NULL;
    uint32_t k = p.recs_n, nu = advrec_eval_data_users(d);
    uint32_t *lists = NULL, *lens = NULL, *inst_of = NULL, *inst_users = NULL;
    advrec_err_t err = ADVREC_OK;
    double *whr = out->curve_hr, *wnd = out->curve_ndcg;
    uint64_t *wn = out->curve_n;
    uint32_t np = out->n_points;
    uint64_t ann_served = 0;

    memset(&out->all, 0, sizeof(out->all));
    out->ann_recall = out->ann_share = 0;
    out->ann_users = 0;
    out->all.k = k;
    out->events = 0;
    out->syncs = out->records = 0;
    out->users_max = out->users_min = nu;
    for (uint32_t w = 0; w < np; w++) {
        whr[w] = wnd[w] = 0;
        wn[w] = 0;
    }
    if (n_inst > 1 && out->partitions < n_inst)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "eval: %u partitions for %u instances: each "
                             "instance needs one at least",
                             out->partitions, n_inst);
    if (popularity)
        p.cold_events = UINT32_MAX; /* every list is the popularity list */
    p.state.max_users = nu + 1;
    p.state.max_items = advrec_eval_data_items(d) + 1;
    eng = calloc(n_inst, sizeof(*eng));
    sync = calloc(n_inst, sizeof(*sync));
    lists = malloc(((size_t)nu * k + 1) * sizeof(*lists));
    lens = calloc((size_t)nu + 1, sizeof(*lens));
    inst_of = calloc((size_t)nu + 1, sizeof(*inst_of));
    inst_users = calloc(n_inst, sizeof(*inst_users));
    if (!eng || !sync || !lists || !lens || !inst_of || !inst_users) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "eval: out of memory");
        goto out;
    }
    for (uint32_t a = 0; a < n_inst; a++)
        if (!(eng[a] = advrec_engine_new(&p, errstr, errstr_size))) {
            err = ADVREC_ERR_CONFIG;
            goto out;
        }
    if (n_inst > 1) {
        /* Each user's partition as the daemon's producer picks it (the
         * Java client's murmur2 of the key; librdkafka's partitioner reads
         * only the key and the count). */
        for (uint32_t u = 0; u < nu; u++) {
            const char *name = advrec_idmap_name(d->users, u);
            int32_t part = rd_kafka_msg_partitioner_murmur2(
                NULL, name, strlen(name), (int32_t)out->partitions, NULL, NULL);
            inst_of[u] = range_owner((uint32_t)part, out->partitions, n_inst);
            inst_users[inst_of[u]]++;
        }
        out->users_max = 0;
        out->users_min = UINT32_MAX;
        for (uint32_t a = 0; a < n_inst; a++) {
            char name[32];
            advrec_itemsync_params_t sp = {.instance = name,
                                           .apr = p.apr,
                                           .share_acc = out->share_acc,
                                           .max_peers = n_inst};
            snprintf(name, sizeof(name), "eval-%u", a);
            if (!(sync[a] = advrec_itemsync_new(
                      &sp, advrec_engine_state(eng[a]), errstr, errstr_size))) {
                err = ADVREC_ERR_CONFIG;
                goto out;
            }
            if (inst_users[a] > out->users_max)
                out->users_max = inst_users[a];
            if (inst_users[a] < out->users_min)
                out->users_min = inst_users[a];
        }
    }
    for (size_t e = 0; e < d->n; e++) {
        const advrec_eval_inter_t *x = &d->v[e];
        advrec_engine_t *ue = eng[inst_of[x->user]];
        advrec_event_t ev;
        advrec_origin_t origin = {
            .topic = 0, .partition = 0, .offset = (int64_t)e};
        preq_ctx_t ctx = {lists + (size_t)x->user * k, lens + x->user, k};

        /* Test: the list the daemon published after this user's previous
         * event. */
        if (lens[x->user]) {
            uint32_t idx, rank = k;
            if (advrec_state_item(advrec_engine_state(ue),
                                  advrec_idmap_name(d->items, x->item), 0, &idx,
                                  NULL, NULL, 0) == ADVREC_OK)
                for (uint32_t r = 0; r < lens[x->user]; r++)
                    if (ctx.list[r] == idx) {
                        rank = r;
                        break;
                    }
            metrics_add(&out->all, rank);
            if (np) {
                uint32_t w = (uint32_t)((double)e * np / (double)d->n);
                whr[w] += advrec_eval_hr(rank, k);
                wnd[w] += advrec_eval_ndcg(rank, k);
                wn[w]++;
            }
        }
        /* Then train, exactly as the daemon applies an input record. */
        advrec_event_clear(&ev);
        ev.type = x->purchase ? ADVREC_EVENT_PURCHASE : ADVREC_EVENT_CLICK;
        snprintf(ev.user_id, sizeof(ev.user_id), "%s",
                 advrec_idmap_name(d->users, x->user));
        snprintf(ev.item_id, sizeof(ev.item_id), "%s",
                 advrec_idmap_name(d->items, x->item));
        ev.ts_ms = x->ts_ms;
        /* Weight 1 for the popularity baseline too: popularity counts
         * only what trains (quarantined traffic feeds no list), and every
         * list of that run is the popularity list (cold_events) anyway. */
        if ((err = advrec_engine_apply(ue, &ev, "eval", &origin, 1.0f,
                                       (int64_t)e, errstr, errstr_size)))
            goto out;
        (void)advrec_engine_refresh(ue, (int64_t)e, 1, 0, preq_emit, &ctx);
        ann_served += advrec_engine_ann_lists(ue);
        out->events++;
        /* The instances' item deltas, every sync_every events: what one
         * instance trained reaches the others that many events late at
         * most. */
        if (n_inst > 1 && out->sync_every && (e + 1) % out->sync_every == 0) {
            if ((err = exchange(sync, n_inst, &out->records, errstr,
                                errstr_size)))
                goto out;
            out->syncs++;
        }
        if (progress && (e & 0xfff) == 0)
            progress(opaque, "prequential", e, d->n);
    }
    if (progress)
        progress(opaque, "prequential", d->n, d->n);
    metrics_finish(&out->all);
    out->ann_share = out->events ? (double)ann_served / (double)out->events : 0;
    if (!popularity && p.retrieval != ADVREC_RANK_RETRIEVAL_EXACT)
        ann_recall(advrec_engine_state(eng[0]), &p, out);
    for (uint32_t w = 0; w < np; w++)
        if (wn[w]) {
            whr[w] /= (double)wn[w];
            wnd[w] /= (double)wn[w];
        }
out:
    for (uint32_t a = 0; eng && a < n_inst; a++) {
        if (sync)
            advrec_itemsync_destroy(sync[a]);
        advrec_engine_destroy(eng[a]);
    }
    free(eng);
    free(sync);
    free(lists);
    free(lens);
    free(inst_of);
    free(inst_users);
    return err;
}

/* Copies the engine's row of id (if it has one) over row idx of dst. */
static void copy_row(advrec_rows_t *dst, uint32_t idx, advrec_rows_t *src,
                     uint32_t src_idx, int use_bias)
{
    memcpy(dst->w + (size_t)idx * dst->k, src->w + (size_t)src_idx * src->k,
           (size_t)dst->k * sizeof(float));
    if (use_bias)
        dst->bias[idx] = src->bias[src_idx];
}

advrec_err_t advrec_eval_onepass(const advrec_eval_data_t *d,
                                 const advrec_eval_split_t *split,
                                 const advrec_engine_params_t *params,
                                 uint32_t k, advrec_eval_metrics_t *out,
                                 advrec_state_t **model_out,
                                 advrec_eval_progress_cb *progress,
                                 void *opaque, char *errstr, size_t errstr_size)
{
    advrec_engine_params_t p = *params;
    advrec_engine_t *eng = NULL;
    advrec_state_t *model = NULL, *st;
    uint32_t nu = advrec_eval_data_users(d), ni = advrec_eval_data_items(d);
    advrec_err_t err = ADVREC_OK;

    memset(out, 0, sizeof(*out));
    if (model_out)
        *model_out = NULL;
    p.state.max_users = nu + 1;
    p.state.max_items = ni + 1;
    if (!(eng = advrec_engine_new(&p, errstr, errstr_size)))
        return ADVREC_ERR_CONFIG;
    for (size_t e = 0; e < split->n_train; e++) {
        const advrec_eval_inter_t *x = &split->train[e];
        advrec_origin_t origin = {
            .topic = 0, .partition = 0, .offset = (int64_t)e};
        advrec_event_t ev;

        advrec_event_clear(&ev);
        ev.type = x->purchase ? ADVREC_EVENT_PURCHASE : ADVREC_EVENT_CLICK;
        snprintf(ev.user_id, sizeof(ev.user_id), "%s",
                 advrec_idmap_name(d->users, x->user));
        snprintf(ev.item_id, sizeof(ev.item_id), "%s",
                 advrec_idmap_name(d->items, x->item));
        ev.ts_ms = x->ts_ms;
        if ((err = advrec_engine_apply(eng, &ev, "eval", &origin, 1.0f,
                                       (int64_t)e, errstr, errstr_size)))
            goto out;
        if (progress && (e & 0xfff) == 0)
            progress(opaque, "one pass", e, split->n_train);
    }
    if (progress)
        progress(opaque, "one pass", split->n_train, split->n_train);
    /* The engine's factors in the split's dense indices. */
    if (!(model = advrec_eval_model_new(d, &p.apr, errstr, errstr_size))) {
        err = ADVREC_ERR_NOMEM;
        goto out;
    }
    st = advrec_engine_state(eng);
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t idx;
        if (advrec_state_user(st, advrec_idmap_name(d->users, u), 0, &idx, NULL,
                              NULL, 0) == ADVREC_OK)
            copy_row(advrec_state_users(model), u, advrec_state_users(st), idx,
                     0);
    }
    for (uint32_t i = 0; i < ni; i++) {
        uint32_t idx;
        if (advrec_state_item(st, advrec_idmap_name(d->items, i), 0, &idx, NULL,
                              NULL, 0) == ADVREC_OK)
            copy_row(advrec_state_items(model), i, advrec_state_items(st), idx,
                     p.apr.use_bias);
    }
    err = advrec_eval_loo_model(split, model, p.apr.use_bias, 0, k, out);
    if (err)
        advrec_seterr(err, errstr, errstr_size, "eval: out of memory");
    else if (model_out) {
        *model_out = model;
        model = NULL;
    }
out:
    advrec_state_destroy(model);
    advrec_engine_destroy(eng);
    return err;
}
