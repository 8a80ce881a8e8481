/*
 * itemset.h - a small bounded set of item indices that keeps the most
 * recently added: a user's purchases, or the items they have seen.
 *
 * One heap block per set: a header, then the items in ascending order,
 * then each item's recency stamp (a per-set counter, bumped on every add).
 * An empty set is a NULL pointer, so a user with no purchases costs one
 * pointer. The sorted item array is what lib/topn and lib/popularity take
 * as an exclusion list, without a copy.
 *
 * Costs: membership and adding an item already present (its stamp is
 * renewed) are a binary search; adding a new item moves the entries after
 * it (one memmove of at most 8 x max bytes), and when the set is full
 * first finds and drops the oldest entry (a scan of the stamps). The block
 * grows by doubling up to max entries, so adding allocates only amortised.
 *
 * Owns nothing but its block; not thread-safe.
 */
#ifndef ADVREC_ITEMSET_H
#define ADVREC_ITEMSET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Largest bound a set may have (recs.exclude.*.max). */
#define ADVREC_ITEMSET_MAX 65535u

typedef struct advrec_itemset_s advrec_itemset_t;

/*
 * Adds item to *set (NULL is the empty set), renewing its recency when it
 * is there already; when the set holds max items and item is new, the
 * least recently added one is dropped first. max 0 keeps nothing (*set is
 * left as it is). Returns ADVREC_OK, or ADVREC_ERR_NOMEM when the block
 * cannot grow: then *set is unchanged. *set may be reallocated; the caller
 * owns it (advrec_itemset_free).
 */
advrec_err_t advrec_itemset_add(advrec_itemset_t **set, uint32_t item,
                                uint32_t max);

/* Whether item is in set (NULL: no). */
int advrec_itemset_has(const advrec_itemset_t *set, uint32_t item);

/* Items in set (0 for NULL). */
uint32_t advrec_itemset_count(const advrec_itemset_t *set);

/* The items, ascending, count of them (NULL for an empty set); owned by
 * set, valid until it is next changed or freed. */
const uint32_t *advrec_itemset_items(const advrec_itemset_t *set);

/* Their recency stamps, in the order of the items (larger: more recent);
 * owned by set as the items are. */
const uint32_t *advrec_itemset_stamps(const advrec_itemset_t *set);

/*
 * Replaces *set (freed) with n items and their stamps as a store read them
 * back (only read): items must be strictly ascending, else
 * ADVREC_ERR_INVALID_ARG and *set is unchanged. When n is above max
 * only the max most recent are kept (a bound lowered since they were
 * written). ADVREC_ERR_NOMEM: *set unchanged.
 */
advrec_err_t advrec_itemset_restore(advrec_itemset_t **set,
                                    const uint32_t *items,
                                    const uint32_t *stamps, uint32_t n,
                                    uint32_t max);

/* Frees set; NULL is fine. */
void advrec_itemset_free(advrec_itemset_t *set);

#endif
