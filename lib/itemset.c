/*
 * itemset.c - owns one heap block per non-empty set: the header, cap items
 * (the first n ascending) and cap stamps.
 */
#include "itemset.h"

#include <stdlib.h>
#include <string.h>

struct advrec_itemset_s {
    uint32_t n, cap;
    uint32_t next; /* stamp of the next add */
    uint32_t pad;
    uint32_t data[]; /* items[cap], then stamps[cap] */
};

#define ITEMS(s)  ((s)->data)
#define STAMPS(s) ((s)->data + (s)->cap)

/* Index of item in s, or where it would go (-(pos) - 1). */
static long find(const advrec_itemset_t *s, uint32_t item)
{
    const uint32_t *it = ITEMS(s);
    uint32_t lo = 0, hi = s->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (it[mid] < item)
            lo = mid + 1;
        else if (it[mid] > item)
            hi = mid;
        else
            return (long)mid;
    }
    return -(long)lo - 1;
}

/* A block for cap entries holding s's entries (s may be NULL); s is freed
 * on success. NULL on no memory (s untouched). */
static advrec_itemset_t *resize(advrec_itemset_t *s, uint32_t cap)
{
    advrec_itemset_t *t =
        malloc(sizeof(*t) + (size_t)2 * cap * sizeof(uint32_t));

    if (!t)
        return NULL;
    t->n = s ? s->n : 0;
    t->next = s ? s->next : 0;
    t->pad = 0;
    t->cap = cap;
    if (s) {
        memcpy(ITEMS(t), ITEMS(s), (size_t)s->n * sizeof(uint32_t));
        memcpy(STAMPS(t), STAMPS(s), (size_t)s->n * sizeof(uint32_t));
        free(s);
    }
    return t;
}

/* Removes entry at. */
static void drop(advrec_itemset_t *s, uint32_t at)
{
    size_t tail = (size_t)(s->n - at - 1) * sizeof(uint32_t);

    memmove(ITEMS(s) + at, ITEMS(s) + at + 1, tail);
    memmove(STAMPS(s) + at, STAMPS(s) + at + 1, tail);
    s->n--;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Renumbers the stamps 0..n-1 keeping their order, when the counter is
 * about to wrap (after 2^32 adds to one set). -1 on no memory.
 */
static int renumber(advrec_itemset_t *s)
{
    uint64_t *o = malloc(((size_t)s->n + 1) * sizeof(*o));

    if (!o)
        return -1;
    for (uint32_t a = 0; a < s->n; a++)
        o[a] = (uint64_t)STAMPS(s)[a] << 32 | a;
    qsort(o, s->n, sizeof(*o), cmp_u64);
    for (uint32_t r = 0; r < s->n; r++)
        STAMPS(s)[(uint32_t)o[r]] = r;
    s->next = s->n;
    free(o);
    return 0;
}

advrec_err_t advrec_itemset_add(advrec_itemset_t **set, uint32_t item,
                                uint32_t max)
{
    advrec_itemset_t *s = *set;
    long at;
    uint32_t pos;

    if (max == 0)
        return ADVREC_OK;
    if (s && s->next == UINT32_MAX && renumber(s))
        return ADVREC_ERR_NOMEM;
    at = s ? find(s, item) : -1;
    if (at >= 0) {
        STAMPS(s)[at] = s->next++;
        return ADVREC_OK;
    }
    pos = (uint32_t)(-at - 1);
    if (!s || (s->n == s->cap && s->cap < max)) {
        uint32_t cap = s ? s->cap * 2 : 4;
        advrec_itemset_t *t = resize(s, cap < max ? cap : max);
        if (!t)
            return ADVREC_ERR_NOMEM;
        *set = s = t;
    }
    if (s->n >= max) {
        /* Full: the least recent goes. */
        uint32_t old = 0;
        for (uint32_t a = 1; a < s->n; a++)
            if (STAMPS(s)[a] < STAMPS(s)[old])
                old = a;
        drop(s, old);
        if (old < pos)
            pos--;
    }
    memmove(ITEMS(s) + pos + 1, ITEMS(s) + pos,
            (size_t)(s->n - pos) * sizeof(uint32_t));
    memmove(STAMPS(s) + pos + 1, STAMPS(s) + pos,
            (size_t)(s->n - pos) * sizeof(uint32_t));
    ITEMS(s)[pos] = item;
    STAMPS(s)[pos] = s->next++;
    s->n++;
    return ADVREC_OK;
}

int advrec_itemset_has(const advrec_itemset_t *set, uint32_t item)
{
    return set && find(set, item) >= 0;
}

uint32_t advrec_itemset_count(const advrec_itemset_t *set)
{
    return set ? set->n : 0;
}

const uint32_t *advrec_itemset_items(const advrec_itemset_t *set)
{
    return set && set->n ? ITEMS(set) : NULL;
}

const uint32_t *advrec_itemset_stamps(const advrec_itemset_t *set)
{
    return set && set->n ? STAMPS(set) : NULL;
}

advrec_err_t advrec_itemset_restore(advrec_itemset_t **set,
                                    const uint32_t *items,
                                    const uint32_t *stamps, uint32_t n,
                                    uint32_t max)
{
    advrec_itemset_t *s;
    uint32_t keep = n < max ? n : max;
    uint64_t top = 0, *o = NULL;
    uint8_t *kept = NULL;

    for (uint32_t a = 1; a < n; a++)
        if (items[a] <= items[a - 1])
            return ADVREC_ERR_INVALID_ARG;
    if (keep == 0) {
        advrec_itemset_free(*set);
        *set = NULL;
        return ADVREC_OK;
    }
    s = resize(NULL, keep);
    if (!s)
        return ADVREC_ERR_NOMEM;
    if (keep < n) {
        /* A bound lowered since the set was written: the keep most recent
         * stay, found by sorting (stamp, index) once. */
        o = malloc((size_t)n * sizeof(*o));
        kept = calloc(n, 1);
        if (!o || !kept) {
            free(o);
            free(kept);
            free(s);
            return ADVREC_ERR_NOMEM;
        }
        for (uint32_t a = 0; a < n; a++)
            o[a] = (uint64_t)stamps[a] << 32 | a;
        qsort(o, n, sizeof(*o), cmp_u64);
        for (uint32_t r = n - keep; r < n; r++)
            kept[(uint32_t)o[r]] = 1;
        free(o);
    }
    for (uint32_t a = 0; a < n; a++) {
        if (kept && !kept[a])
            continue;
        if (stamps[a] >= top)
            top = (uint64_t)stamps[a] + 1;
        ITEMS(s)[s->n] = items[a];
        STAMPS(s)[s->n++] = stamps[a];
    }
    free(kept);
    /* A stamp at the counter's end makes the next add renumber first. */
    s->next = top > UINT32_MAX ? UINT32_MAX : (uint32_t)top;
    advrec_itemset_free(*set);
    *set = s;
    return ADVREC_OK;
}

void advrec_itemset_free(advrec_itemset_t *set)
{
    free(set);
}
