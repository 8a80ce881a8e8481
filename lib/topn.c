/*
 * topn.c - batched scoring with OpenBLAS and heap-based top-N selection.
 *
 * Owns nothing; see topn.h.
 */
#include "topn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* 1 if a ranks above b: higher score, then lower index. */
static int better(const advrec_topn_entry_t *a, const advrec_topn_entry_t *b)
{
    return a->score > b->score || (a->score == b->score && a->item < b->item);
}

/* Restores the min-heap (root = worst kept entry) below position at. */
static void sift_down(advrec_topn_entry_t *heap, size_t len, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, worst = at;
        advrec_topn_entry_t tmp;

        if (l < len && better(&heap[worst], &heap[l]))
            worst = l;
        if (r < len && better(&heap[worst], &heap[r]))
            worst = r;
        if (worst == at)
            return;
        tmp = heap[at];
        heap[at] = heap[worst];
        heap[worst] = tmp;
        at = worst;
    }
}

static void sift_up(advrec_topn_entry_t *heap, size_t at)
{
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        advrec_topn_entry_t tmp;

        if (!better(&heap[parent], &heap[at]))
            return;
        tmp = heap[at];
        heap[at] = heap[parent];
        heap[parent] = tmp;
        at = parent;
    }
}

static int dims_ok(size_t n_users, size_t n_items, int k)
{
    return k > 0 && n_users <= INT_MAX && n_items <= INT_MAX;
}

advrec_err_t advrec_topn_scores(const float *users, size_t n_users,
                                const float *items, const float *item_bias,
                                size_t n_items, int k, float *scores)
{
    float beta = 0.0f;

    if (!dims_ok(n_users, n_items, k))
        return ADVREC_ERR_INVALID_ARG;
    if (n_users == 0 || n_items == 0)
        return ADVREC_OK;
    if (item_bias) {
        /* sgemm adds onto C with beta = 1: preload the biases. */
        for (size_t b = 0; b < n_users; b++)
            memcpy(scores + b * n_items, item_bias, sizeof(float) * n_items);
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_users,
                (int)n_items, k, 1.0f, users, k, items, k, beta, scores,
                (int)n_items);
    return ADVREC_OK;
}

advrec_err_t advrec_topn_score_one(const float *user, const float *items,
                                   const float *item_bias, size_t n_items,
                                   int k, float *scores)
{
    float beta = 0.0f;

    if (!dims_ok(1, n_items, k))
        return ADVREC_ERR_INVALID_ARG;
    if (n_items == 0)
        return ADVREC_OK;
    if (item_bias) {
        memcpy(scores, item_bias, sizeof(float) * n_items);
        beta = 1.0f;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_items, k, 1.0f, items, k,
                user, 1, beta, scores, 1);
    return ADVREC_OK;
}

/* Offers item it (score s, not NaN, not excluded) to the heap out[0..*len). */
static void push(float s, size_t it, size_t n, advrec_topn_entry_t *out,
                 size_t *len)
{
    advrec_topn_entry_t cand = {.item = (uint32_t)it, .score = s};

    if (*len < n) {
        out[*len] = cand;
        sift_up(out, *len);
        (*len)++;
    } else if (better(&cand, &out[0])) {
        out[0] = cand;
        sift_down(out, *len, 0);
    }
}

/* Sorts the heap out[0..len) best first, in place. */
static void heap_sort(advrec_topn_entry_t *out, size_t len)
{
    for (size_t end = len; end > 1; end--) {
        advrec_topn_entry_t tmp = out[0];
        out[0] = out[end - 1];
        out[end - 1] = tmp;
        sift_down(out, end - 1, 0);
    }
}

/* Items a full heap skips at once when none scores above its worst. */
#define TOPN_BLOCK 16

/* Offers item it to the heap out[0..*len) of at most n entries, unless
 * excluded (the merge position *ex advances) or NaN. */
static void offer(const float *scores, size_t it, const uint32_t *excluded,
                  size_t n_excluded, size_t *ex, size_t n,
                  advrec_topn_entry_t *out, size_t *len)
{

    /* excluded is sorted and items are visited in order: one merge. */
    while (*ex < n_excluded && excluded[*ex] < it)
        (*ex)++;
    if (*ex < n_excluded && excluded[*ex] == it)
        return;
    if (isnan(scores[it]))
        return;
    push(scores[it], it, n, out, len);
}

size_t advrec_topn_select(const float *scores, size_t n_items,
                          const uint32_t *excluded, size_t n_excluded, size_t n,
                          advrec_topn_entry_t *out)
{
    size_t len = 0, ex = 0, it = 0;

    if (n == 0)
        return 0;
    for (; it < n_items && len < n; it++)
        offer(scores, it, excluded, n_excluded, &ex, n, out, &len);
    /*
     * The heap is full: a later item enters only with a score above the
     * worst kept one (on a tie the lower index wins, and every kept item
     * was visited before). Most blocks have none, and one vectorised
     * comparison skips them; the heap and the exclusion merge see only
     * the candidates. Same entries as offering every item.
     */
    while (it + TOPN_BLOCK <= n_items) {
        const float *s = scores + it;
        float worst = out[0].score;
        int any = 0;
        for (size_t j = 0; j < TOPN_BLOCK; j++)
            any |= s[j] > worst;
        if (any)
            for (size_t j = 0; j < TOPN_BLOCK; j++)
                if (s[j] > out[0].score)
                    offer(scores, it + j, excluded, n_excluded, &ex, n, out,
                          &len);
        it += TOPN_BLOCK;
    }
    for (; it < n_items; it++)
        if (scores[it] > out[0].score)
            offer(scores, it, excluded, n_excluded, &ex, n, out, &len);
    heap_sort(out, len);
    return len;
}

/*
 * Item columns per block of the fused product: the block's scores (at most
 * SCORE_BLOCK_FLOATS for the whole batch) stay in L2 while they are
 * selected, instead of a full n_users x n_items matrix going out to memory
 * and coming back (docs/PERFORMANCE.md, "Exact scoring").
 */
#define SCORE_BLOCK_FLOATS (64u << 10)
#define SCORE_BLOCK_MIN    256u
/* Candidates whose rows are asked for ahead of their scoring: enough to
 * cover a miss to memory with the dot products of the ones between. */
#define PREFETCH_AHEAD 4

/* 1 if item it is in excluded[0..n_excluded) (sorted). */
static int is_excluded(const uint32_t *excluded, size_t n_excluded, size_t it)
{
    size_t lo = 0, hi = n_excluded;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (excluded[mid] < it)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_excluded && excluded[lo] == it;
}

/*
 * Adds bias[0..m) (may be NULL) to the block s[0..m) of items first..first+m
 * and offers them to the heap out[0..*len) of at most n entries. Once the
 * heap is full a vectorised threshold pass over TOPN_BLOCK scores skips the
 * blocks with none above the worst kept entry; only the survivors pay for
 * the exclusion search and the heap.
 */
static void select_block(float *s, const float *bias, size_t m, size_t first,
                         const uint32_t *excluded, size_t n_excluded, size_t n,
                         advrec_topn_entry_t *out, size_t *len)
{
    size_t j = 0;

    if (bias)
        for (size_t x = 0; x < m; x++)
            s[x] += bias[x];
    for (; j < m && *len < n; j++)
        if (!isnan(s[j]) && !is_excluded(excluded, n_excluded, first + j))
            push(s[j], first + j, n, out, len);
    for (; j + TOPN_BLOCK <= m; j += TOPN_BLOCK) {
        float worst = out[0].score;
        int any = 0;
        for (size_t x = 0; x < TOPN_BLOCK; x++)
            any |= s[j + x] > worst;
        if (!any)
            continue;
        for (size_t x = 0; x < TOPN_BLOCK; x++)
            if (s[j + x] > out[0].score &&
                !is_excluded(excluded, n_excluded, first + j + x))
                push(s[j + x], first + j + x, n, out, len);
    }
    for (; j < m; j++)
        if ((*len < n ? !isnan(s[j]) : s[j] > out[0].score) &&
            !is_excluded(excluded, n_excluded, first + j))
            push(s[j], first + j, n, out, len);
}

size_t advrec_topn_batch_scratch(size_t n_users, size_t n_items)
{
    size_t cols;

    if (n_users == 0)
        return 0;
    /* Rounded down, so that fewer users never need more than n_users do:
     * scratch sized for a full batch serves every smaller one. */
    cols = SCORE_BLOCK_FLOATS / n_users / TOPN_BLOCK * TOPN_BLOCK;
    if (cols < SCORE_BLOCK_MIN)
        cols = SCORE_BLOCK_MIN;
    if (cols > n_items)
        cols = n_items;
    return n_users * cols;
}

advrec_err_t advrec_topn_batch(const float *users, size_t n_users,
                               const float *items, const float *item_bias,
                               size_t n_items, int k,
                               const uint32_t *const *excluded,
                               const size_t *n_excluded, size_t n,
                               float *scores, advrec_topn_entry_t *out,
                               size_t *counts)
{
    size_t cols;

    if (!dims_ok(n_users, n_items, k))
        return ADVREC_ERR_INVALID_ARG;
    for (size_t b = 0; b < n_users; b++)
        counts[b] = 0;
    if (n_users == 0 || n_items == 0 || n == 0)
        return ADVREC_OK;
    cols = advrec_topn_batch_scratch(n_users, n_items) / n_users;
    /* The product one block of items at a time, each block selected while
     * its scores are still in cache: the heaps carry over between blocks. */
    for (size_t first = 0; first < n_items; first += cols) {
        size_t m = n_items - first < cols ? n_items - first : cols;

        /* One user (a list due alone, the prequential sample): a product
         * of a matrix and a vector, which reads the block once where
         * sgemm first copies it into its packed layout (that copy was
         * most of a prequential sample's cost, docs/PERFORMANCE.md). */
        if (n_users == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, k, 1.0f,
                        items + first * (size_t)k, k, users, 1, 0.0f, scores,
                        1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_users,
                        (int)m, k, 1.0f, users, k, items + first * (size_t)k, k,
                        0.0f, scores, (int)m);
        for (size_t b = 0; b < n_users; b++) {
            const uint32_t *ex = excluded ? excluded[b] : NULL;
            size_t n_ex = excluded && n_excluded ? n_excluded[b] : 0;

            select_block(scores + b * m, item_bias ? item_bias + first : NULL,
                         m, first, ex, n_ex, n, out + b * n, &counts[b]);
        }
    }
    for (size_t b = 0; b < n_users; b++)
        heap_sort(out + b * n, counts[b]);
    return ADVREC_OK;
}

/*
 * p . q over k floats in eight independent partial sums (j mod 8), added
 * pairwise at the end: without -ffast-math the compiler keeps a plain
 * loop's one running sum in order, a chain of k dependent adds; eight
 * sums are one 8-wide vector the loop vectorises into. The order differs
 * from sgemm's anyway, so the exact path and this one may differ in the
 * last bit, as before.
 */
static float dot(const float *p, const float *q, int k)
{
    float s[8] = {0};
    int j = 0;

    for (; j + 8 <= k; j += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[j + l] * q[j + l];
    for (; j < k; j++)
        s[0] += p[j] * q[j];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* Scores item it exactly and offers it, unless excluded or NaN. */
static void offer_item(const float *user, const float *items,
                       const float *item_bias, int k, size_t it,
                       const uint32_t *excluded, size_t n_excluded, size_t n,
                       advrec_topn_entry_t *out, size_t *len)
{
    float s = dot(user, items + it * (size_t)k, k);

    if (item_bias)
        s += item_bias[it];
    if (isnan(s) || is_excluded(excluded, n_excluded, it))
        return;
    push(s, it, n, out, len);
}

size_t advrec_topn_select_items(const float *user, const float *items,
                                const float *item_bias, int k,
                                const int64_t *cand, size_t n_cand,
                                size_t first, size_t end,
                                const uint32_t *excluded, size_t n_excluded,
                                size_t n, advrec_topn_entry_t *out)
{
    size_t len = 0;

    if (n == 0)
        return 0;
    /* better() is a total order, so the heap keeps the same entries in
     * whatever order the candidates come. */
    for (size_t c = 0; c < n_cand; c++) {
        /* The candidates are scattered over the catalog: each row is a
         * cache miss (and often a TLB miss) unless asked for ahead. */
        if (c + PREFETCH_AHEAD < n_cand && cand[c + PREFETCH_AHEAD] >= 0) {
            const char *row =
                (const char *)(items +
                               (size_t)cand[c + PREFETCH_AHEAD] * (size_t)k);
            for (size_t b = 0; b < (size_t)k * sizeof(float); b += 64)
                __builtin_prefetch(row + b);
            if (item_bias)
                __builtin_prefetch(item_bias + cand[c + PREFETCH_AHEAD]);
        }
        if (cand[c] >= 0)
            offer_item(user, items, item_bias, k, (size_t)cand[c], excluded,
                       n_excluded, n, out, &len);
    }
    for (size_t it = first; it < end; it++)
        offer_item(user, items, item_bias, k, it, excluded, n_excluded, n, out,
                   &len);
    heap_sort(out, len);
    return len;
}
