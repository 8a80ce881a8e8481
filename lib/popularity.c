/*
 * popularity.c - log-domain decayed counts with an exact top-M set.
 *
 * Owns: the per-item keys and heap positions (grown by doubling), and the
 * candidate min-heap of the M best items. See popularity.h for the maths.
 */
#include "popularity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct advrec_popularity_s {
    double half_life_ms;
    double *keys;    /* per item; -INFINITY: never seen */
    int32_t *slot;   /* per item: position in heap, -1 if not there */
    size_t n_items;  /* entries of keys/slot in use (max index + 1) */
    size_t capacity; /* entries allocated */
    size_t n_seen;   /* items with a finite key */
    uint32_t *heap;  /* min-heap of item indices; root = worst kept */
    size_t heap_len;
    size_t heap_cap; /* M */
};

/* 1 if item a ranks above item b: higher key, then lower index. */
static int ranks_above(const advrec_popularity_t *pop, uint32_t a, uint32_t b)
{
    return pop->keys[a] > pop->keys[b] ||
           (pop->keys[a] == pop->keys[b] && a < b);
}

static void heap_swap(advrec_popularity_t *pop, size_t x, size_t y)
{
    uint32_t tmp = pop->heap[x];

    pop->heap[x] = pop->heap[y];
    pop->heap[y] = tmp;
    pop->slot[pop->heap[x]] = (int32_t)x;
    pop->slot[pop->heap[y]] = (int32_t)y;
}

static void heap_down(advrec_popularity_t *pop, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, worst = at;

        if (l < pop->heap_len &&
            ranks_above(pop, pop->heap[worst], pop->heap[l]))
            worst = l;
        if (r < pop->heap_len &&
            ranks_above(pop, pop->heap[worst], pop->heap[r]))
            worst = r;
        if (worst == at)
            return;
        heap_swap(pop, at, worst);
        at = worst;
    }
}

static void heap_up(advrec_popularity_t *pop, size_t at)
{
    while (at > 0) {
        size_t parent = (at - 1) / 2;

        if (!ranks_above(pop, pop->heap[parent], pop->heap[at]))
            return;
        heap_swap(pop, at, parent);
        at = parent;
    }
}

/* After item's key went up: keep the heap the exact top M. */
static void candidate_raised(advrec_popularity_t *pop, uint32_t item)
{
    if (pop->slot[item] >= 0) {
        /* Better now: it moves away from the root of a min-heap. */
        heap_down(pop, (size_t)pop->slot[item]);
        return;
    }
    if (pop->heap_len < pop->heap_cap) {
        pop->heap[pop->heap_len] = item;
        pop->slot[item] = (int32_t)pop->heap_len;
        heap_up(pop, pop->heap_len++);
        return;
    }
    if (ranks_above(pop, item, pop->heap[0])) {
        pop->slot[pop->heap[0]] = -1;
        pop->heap[0] = item;
        pop->slot[item] = 0;
        heap_down(pop, 0);
    }
}

static void heap_rebuild(advrec_popularity_t *pop)
{
    for (size_t h = 0; h < pop->heap_len; h++)
        pop->slot[pop->heap[h]] = -1;
    pop->heap_len = 0;
    for (size_t it = 0; it < pop->n_items; it++)
        if (pop->keys[it] > -INFINITY)
            candidate_raised(pop, (uint32_t)it);
}

advrec_popularity_t *advrec_popularity_new(double half_life_ms,
                                           size_t candidates, char *errstr,
                                           size_t errstr_size)
{
    advrec_popularity_t *pop = NULL;

    if (!(half_life_ms > 0.0) || !isfinite(half_life_ms)) {
        advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                      "popularity: half-life %g ms, want a finite value > 0",
                      half_life_ms);
        goto fail;
    }
    if (candidates < 1 || candidates > INT32_MAX) {
        advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                      "popularity: %zu candidates, want 1..%d", candidates,
                      INT32_MAX);
        goto fail;
    }
    pop = calloc(1, sizeof(*pop));
    if (!pop)
        goto nomem;
    pop->half_life_ms = half_life_ms;
    pop->heap_cap = candidates;
    pop->heap = malloc(sizeof(*pop->heap) * candidates);
    if (!pop->heap)
        goto nomem;
    return pop;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "popularity: out of memory for %zu candidates", candidates);
fail:
    advrec_popularity_destroy(pop);
    return NULL;
}

void advrec_popularity_destroy(advrec_popularity_t *pop)
{
    if (!pop)
        return;
    free(pop->keys);
    free(pop->slot);
    free(pop->heap);
    free(pop);
}

/* Makes item a valid index. On failure nothing changes. */
static advrec_err_t ensure_item(advrec_popularity_t *pop, uint32_t item)
{
    size_t need = (size_t)item + 1, cap;
    double *keys;
    int32_t *slot;

    if (need <= pop->n_items)
        return ADVREC_OK;
    if (need > pop->capacity) {
        cap = pop->capacity ? pop->capacity : 1024;
        while (cap < need)
            cap *= 2;
        keys = realloc(pop->keys, sizeof(*keys) * cap);
        if (!keys)
            return ADVREC_ERR_NOMEM;
        pop->keys = keys;
        slot = realloc(pop->slot, sizeof(*slot) * cap);
        if (!slot)
            return ADVREC_ERR_NOMEM; /* keys is just bigger: harmless */
        pop->slot = slot;
        pop->capacity = cap;
    }
    for (size_t it = pop->n_items; it < need; it++) {
        pop->keys[it] = -INFINITY;
        pop->slot[it] = -1;
    }
    pop->n_items = need;
    return ADVREC_OK;
}

/* log2(2^a + 2^b) without overflow; -INFINITY is the empty sum. */
static double log2_add(double a, double b)
{
    double hi = a > b ? a : b, lo = a > b ? b : a;

    if (lo == -INFINITY)
        return hi;
    return hi + log2(1.0 + exp2(lo - hi));
}

advrec_err_t advrec_popularity_add(advrec_popularity_t *pop, uint32_t item,
                                   int64_t ts_ms, double weight)
{
    advrec_err_t err;
    double key;

    if (!(weight > 0.0) || !isfinite(weight))
        return ADVREC_ERR_INVALID_ARG;
    if ((err = ensure_item(pop, item)))
        return err;
    if (pop->keys[item] == -INFINITY)
        pop->n_seen++;
    key = log2_add(pop->keys[item],
                   log2(weight) + (double)ts_ms / pop->half_life_ms);
    pop->keys[item] = key;
    candidate_raised(pop, item);
    return ADVREC_OK;
}

double advrec_popularity_key_score(const advrec_popularity_t *pop, double key,
                                   int64_t now_ms)
{
    if (key == -INFINITY)
        return 0.0;
    return exp2(key - (double)now_ms / pop->half_life_ms);
}

double advrec_popularity_key(const advrec_popularity_t *pop, uint32_t item)
{
    return item < pop->n_items ? pop->keys[item] : -INFINITY;
}

double advrec_popularity_score(const advrec_popularity_t *pop, uint32_t item,
                               int64_t now_ms)
{
    return advrec_popularity_key_score(pop, advrec_popularity_key(pop, item),
                                       now_ms);
}

advrec_err_t advrec_popularity_set_key(advrec_popularity_t *pop, uint32_t item,
                                       double key)
{
    advrec_err_t err;
    double old;

    if (isnan(key) || key == INFINITY)
        return ADVREC_ERR_INVALID_ARG;
    if ((err = ensure_item(pop, item)))
        return err;
    old = pop->keys[item];
    pop->n_seen += (old == -INFINITY) - (key == -INFINITY);
    pop->keys[item] = key;
    if (key >= old && key > -INFINITY)
        candidate_raised(pop, item);
    else if (key < old)
        heap_rebuild(pop); /* keys only rise otherwise: rare, O(n log M) */
    return ADVREC_OK;
}

size_t advrec_popularity_count(const advrec_popularity_t *pop)
{
    return pop->n_seen;
}

static int is_excluded(const uint32_t *excluded, size_t n_excluded,
                       uint32_t item)
{
    size_t lo = 0, hi = n_excluded;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (excluded[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_excluded && excluded[lo] == item;
}

static int entry_above(const advrec_popularity_entry_t *a,
                       const advrec_popularity_entry_t *b)
{
    return a->key > b->key || (a->key == b->key && a->item < b->item);
}

static void entry_down(advrec_popularity_entry_t *h, size_t len, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, worst = at;
        advrec_popularity_entry_t tmp;

        if (l < len && entry_above(&h[worst], &h[l]))
            worst = l;
        if (r < len && entry_above(&h[worst], &h[r]))
            worst = r;
        if (worst == at)
            return;
        tmp = h[at];
        h[at] = h[worst];
        h[worst] = tmp;
        at = worst;
    }
}

static void entry_up(advrec_popularity_entry_t *h, size_t at)
{
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        advrec_popularity_entry_t tmp;

        if (!entry_above(&h[parent], &h[at]))
            return;
        tmp = h[at];
        h[at] = h[parent];
        h[parent] = tmp;
        at = parent;
    }
}

/* Offers (item, key) to the size-n min-heap out of length *len. */
static void offer(advrec_popularity_entry_t *out, size_t n, size_t *len,
                  uint32_t item, double key)
{
    advrec_popularity_entry_t cand = {item, key};

    if (*len < n) {
        out[*len] = cand;
        entry_up(out, (*len)++);
    } else if (entry_above(&cand, &out[0])) {
        out[0] = cand;
        entry_down(out, *len, 0);
    }
}

size_t advrec_popularity_top(const advrec_popularity_t *pop, size_t n,
                             const uint32_t *excluded, size_t n_excluded,
                             advrec_popularity_entry_t *out)
{
    size_t len = 0;

    if (n == 0)
        return 0;
    /* The heap holds the exact top heap_len items: enough when it holds
     * every seen item, or n more than the exclusions could remove. */
    if (pop->heap_len == pop->n_seen || n + n_excluded <= pop->heap_len) {
        for (size_t h = 0; h < pop->heap_len; h++) {
            uint32_t item = pop->heap[h];
            if (!is_excluded(excluded, n_excluded, item))
                offer(out, n, &len, item, pop->keys[item]);
        }
    } else {
        for (size_t it = 0; it < pop->n_items; it++)
            if (pop->keys[it] > -INFINITY &&
                !is_excluded(excluded, n_excluded, (uint32_t)it))
                offer(out, n, &len, (uint32_t)it, pop->keys[it]);
    }
    for (size_t end = len; end > 1; end--) {
        advrec_popularity_entry_t tmp = out[0];
        out[0] = out[end - 1];
        out[end - 1] = tmp;
        entry_down(out, end - 1, 0);
    }
    return len;
}
