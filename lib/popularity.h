/*
 * popularity.h - time-decayed item popularity, the cold-start list.
 *
 * An item's popularity at time t is the sum over its events e of
 * weight_e * 2^(-(t - t_e) / half_life). It is stored as one number per
 * item, the key
 *     key = log2( sum_e weight_e * 2^(t_e / half_life) ),
 * i.e. the score referred to time 0, in the log domain so it cannot
 * overflow. The score at t is then 2^(key - t / half_life): decay is lazy,
 * applied only when a value is read, and an event is an O(1) log-add-exp.
 * Because every item is referred to the same time, ranking by key ranks by
 * the decayed score at *any* time, and keys never decrease. That makes the
 * exact top-M set cheap to maintain: an item outside it can only enter
 * through its own event, so each event costs O(log M) on a min-heap of
 * the M best, and a top-N query with N + (excluded) <= M reads only that
 * set; otherwise it falls back to a full O(n log N) scan.
 *
 * Deterministic: double arithmetic in a fixed order (exp2/log2 from libm).
 * Ties rank the lower item index first. Items never seen are not ranked.
 *
 * The handle owns its arrays (grown as item indices appear); not
 * thread-safe.
 */
#ifndef ADVREC_POPULARITY_H
#define ADVREC_POPULARITY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct advrec_popularity_s advrec_popularity_t;

typedef struct advrec_popularity_entry_s {
    uint32_t item;
    double key; /* log2 score referred to time 0; see above */
} advrec_popularity_entry_t;

/*
 * A new, empty tracker. half_life_ms > 0; candidates (M above) >= 1 is the
 * size of the maintained top set (e.g. 4 x the list length). Returns NULL
 * with errstr filled on a bad argument or out of memory. The caller owns
 * the result and frees it with advrec_popularity_destroy().
 */
advrec_popularity_t *advrec_popularity_new(double half_life_ms,
                                           size_t candidates, char *errstr,
                                           size_t errstr_size);

/* Frees pop and everything it owns; NULL is fine. */
void advrec_popularity_destroy(advrec_popularity_t *pop);

/*
 * Adds an event of weight (> 0, finite) for item at ts_ms (any order of
 * times is fine). Returns ADVREC_ERR_INVALID_ARG for a bad weight and
 * ADVREC_ERR_NOMEM when growing to a new item index fails; pop is unchanged
 * on error.
 */
advrec_err_t advrec_popularity_add(advrec_popularity_t *pop, uint32_t item,
                                   int64_t ts_ms, double weight);

/* The decayed score of item at now_ms (0 for an item never seen). */
double advrec_popularity_score(const advrec_popularity_t *pop, uint32_t item,
                               int64_t now_ms);

/* A key turned into the decayed score at now_ms. */
double advrec_popularity_key_score(const advrec_popularity_t *pop, double key,
                                   int64_t now_ms);

/* The stored key of item (-INFINITY if never seen): what the state store
 * persists. */
double advrec_popularity_key(const advrec_popularity_t *pop, uint32_t item);

/* Restores item's key (as read back from the state store). Errors as
 * advrec_popularity_add(). */
advrec_err_t advrec_popularity_set_key(advrec_popularity_t *pop, uint32_t item,
                                       double key);

/*
 * The n most popular items, best first, skipping the sorted (ascending,
 * duplicates allowed) list excluded (only read; may be NULL when
 * n_excluded is 0). Writes up to n entries to out (caller's) and returns
 * how many. The ranking does not depend on the time of the query.
 */
size_t advrec_popularity_top(const advrec_popularity_t *pop, size_t n,
                             const uint32_t *excluded, size_t n_excluded,
                             advrec_popularity_entry_t *out);

/* Items with at least one event. */
size_t advrec_popularity_count(const advrec_popularity_t *pop);

#endif
