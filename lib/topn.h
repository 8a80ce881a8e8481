/*
 * topn.h - scoring users against every item, and keeping the best N.
 *
 * Scores are s[b][n] = p_b . q_n + bias_n. For a batch of B users the whole
 * B x n_items matrix comes from one OpenBLAS cblas_sgemm (users B x k times
 * items^T, both row-major); one user goes through cblas_sgemv. Which wins:
 * sgemm reads the item matrix once per batch instead of once per user, so
 * from a few users on it is several times faster per user (docs/MODEL.md has
 * the figures); sgemv is for a lone refresh.
 *
 * Selection keeps a size-N min-heap over one pass of the scores: O(n log N).
 * Ties go to the lower item index, so a list is a function of the scores
 * alone. Items with a NaN score are never recommended.
 *
 * Owns nothing: matrices and outputs are the caller's. OpenBLAS may use its
 * own threads inside sgemm (OPENBLAS_NUM_THREADS); scores are not part of
 * the replayed state, so that does not touch determinism of the model.
 */
#ifndef ADVREC_TOPN_H
#define ADVREC_TOPN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct advrec_topn_entry_s {
    uint32_t item; /* dense item index */
    float score;
} advrec_topn_entry_t;

/*
 * scores (n_users x n_items, row-major, caller's) = users (n_users x k) *
 * items^T (n_items x k) + item_bias (n_items floats, may be NULL) on every
 * row. Inputs are only read. Returns ADVREC_ERR_INVALID_ARG when a dimension
 * does not fit BLAS's int.
 */
advrec_err_t advrec_topn_scores(const float *users, size_t n_users,
                                const float *items, const float *item_bias,
                                size_t n_items, int k, float *scores);

/* The same for one user (cblas_sgemv): scores has n_items floats. */
advrec_err_t advrec_topn_score_one(const float *user, const float *items,
                                   const float *item_bias, size_t n_items,
                                   int k, float *scores);

/*
 * The best min(n, eligible items) entries of scores[0..n_items), best first
 * (higher score, then lower index), written to out (n entries, caller's).
 * excluded lists item indices never to return, sorted ascending (duplicates
 * allowed, may be NULL when n_excluded is 0); it is only read. Returns the
 * number of entries written.
 */
size_t advrec_topn_select(const float *scores, size_t n_items,
                          const uint32_t *excluded, size_t n_excluded, size_t n,
                          advrec_topn_entry_t *out);

/*
 * Scores n_users users against the items and selects each user's top n:
 * user b's list goes to out + b * n, its length to counts[b]; the same
 * lists as advrec_topn_scores() followed by advrec_topn_select() per user.
 * The product is computed one block of items at a time (one sgemm per
 * block) and each block selected while in cache, so scores (caller's
 * scratch) needs only advrec_topn_batch_scratch(n_users, n_items) floats.
 * excluded[b] / n_excluded[b] are user b's sorted exclusions (excluded and
 * n_excluded may be NULL: no exclusions). Errors as advrec_topn_scores().
 */
advrec_err_t advrec_topn_batch(const float *users, size_t n_users,
                               const float *items, const float *item_bias,
                               size_t n_items, int k,
                               const uint32_t *const *excluded,
                               const size_t *n_excluded, size_t n,
                               float *scores, advrec_topn_entry_t *out,
                               size_t *counts);

/* Floats of scratch advrec_topn_batch() needs for this shape; enough for
 * any smaller n_users too. */
size_t advrec_topn_batch_scratch(size_t n_users, size_t n_items);

/*
 * Exact re-scoring of a candidate set (recs.retrieval = ann): scores user
 * (k floats) against the items cand[0..n_cand) (indices into items, which
 * is n x k; negative entries are skipped) and against every item of
 * [first, end), plus item_bias (may be NULL), and writes the best
 * min(n, eligible) to out, best first, with topn's order and rules
 * (exclusions sorted, NaN never returned). A candidate listed twice counts
 * once only if the caller lists it once: the index never repeats one.
 * Returns the number of entries written.
 */
size_t advrec_topn_select_items(const float *user, const float *items,
                                const float *item_bias, int k,
                                const int64_t *cand, size_t n_cand,
                                size_t first, size_t end,
                                const uint32_t *excluded, size_t n_excluded,
                                size_t n, advrec_topn_entry_t *out);

#endif
