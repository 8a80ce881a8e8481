/*
 * state.h - the learned state in memory: users, items, their ids.
 *
 * Two row tables (users, items) hold the model's parameters and counters as
 * plain arrays indexed by dense index (idmap.h), row-major and 64-byte
 * aligned, so scoring hands the item matrix to BLAS as it is and a training
 * step touches three rows without any lookup. Users also keep a ring of their
 * recent items (negative sampling, the detectors), bounded sets of the items
 * they purchased and saw (exclusions, itemset.h; independent of the ring's
 * length) and the input position of their last event (what a
 * recommendation "reflects").
 *
 * Every row changed since the last advrec_state_clear_dirty() is listed, so a
 * persistent store (store.h) writes only what a round changed.
 *
 * The row tables are plain data on purpose (the hot path reads them
 * directly); they belong to the state and move when a table grows, so never
 * keep a row pointer across an advrec_state_user/item call that may create.
 */
#ifndef ADVREC_STATE_H
#define ADVREC_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "itemset.h"
#include "types.h"

/* In a history entry, this bit marks a purchase; the rest is the item index. */
#define ADVREC_HIST_PURCHASE 0x80000000u
#define ADVREC_HIST_ITEM     0x7fffffffu

typedef struct advrec_rows_s {
    uint32_t n, cap;   /* rows in use, rows allocated */
    uint32_t k;        /* factors per row */
    float *w;          /* n x k factors */
    float *acc;        /* n row-wise Adagrad accumulators (one per row) */
    float *bias;       /* n (items only use it) */
    float *bias_acc;   /* n */
    uint32_t *updates; /* training steps that touched the row */
    uint64_t *clicks;  /* events counted, by type */
    uint64_t *purchases;
    uint8_t *dirty; /* n: listed in dirty_list */
    uint32_t *dirty_list;
    uint32_t n_dirty;
} advrec_rows_t;

typedef struct advrec_user_ext_s {
    uint32_t *hist;        /* n x history ring entries (ADVREC_HIST_*) */
    uint16_t *hist_len;    /* entries filled, <= history */
    uint16_t *hist_head;   /* next slot to write */
    advrec_origin_t *last; /* input position of the user's last event */
    int64_t *last_ts_ms;   /* event time of the user's last event */
    int64_t *stale_since;  /* clock ms when first marked stale; 0 = fresh */
    int64_t *last_mark;    /* clock ms of the latest mark (debounce) */
    advrec_itemset_t **purchased; /* n sets (NULL: empty), <= purchased_max */
    advrec_itemset_t **seen;      /* n sets (NULL: empty), <= seen_max */
} advrec_user_ext_t;

typedef struct advrec_state_params_s {
    uint32_t k;       /* factors per row, 1..1024 */
    uint32_t history; /* ring entries per user, 1..65535 */
    uint32_t max_users;
    uint32_t max_items;
    /* Most recent distinct items kept per user in each set, 0..65535
     * (0: the set is not kept). */
    uint32_t purchased_max;
    uint32_t seen_max;
} advrec_state_params_t;

typedef struct advrec_state_s advrec_state_t;

/* Empty state. NULL on bad params or no memory, with errstr filled. Owned by
 * the caller (advrec_state_destroy). */
advrec_state_t *advrec_state_new(const advrec_state_params_t *params,
                                 char *errstr, size_t errstr_size);

void advrec_state_destroy(advrec_state_t *state);

const advrec_state_params_t *advrec_state_params(const advrec_state_t *state);

/*
 * Finds (create = 0) or interns (create = 1) a user/item by external id and
 * returns its dense index in *idx; *created (may be NULL) says whether a new
 * zeroed row was made (the caller initialises its factors). Errors as
 * advrec_idmap_get (NOT_FOUND, FULL when max_users/max_items is reached,
 * NOMEM), with errstr naming the id.
 */
advrec_err_t advrec_state_user(advrec_state_t *state, const char *id,
                               int create, uint32_t *idx, int *created,
                               char *errstr, size_t errstr_size);
advrec_err_t advrec_state_item(advrec_state_t *state, const char *id,
                               int create, uint32_t *idx, int *created,
                               char *errstr, size_t errstr_size);

/* External ids by index (owned by state, stable until destroy); NULL if out
 * of range. */
const char *advrec_state_user_name(const advrec_state_t *state, uint32_t idx);
const char *advrec_state_item_name(const advrec_state_t *state, uint32_t idx);

/* The row tables; owned by state. */
advrec_rows_t *advrec_state_users(advrec_state_t *state);
advrec_rows_t *advrec_state_items(advrec_state_t *state);
advrec_user_ext_t *advrec_state_user_ext(advrec_state_t *state);

/* Marks a row changed in this round (idempotent). */
void advrec_rows_touch(advrec_rows_t *rows, uint32_t idx);

/* Forgets the dirty lists (after they were persisted, or not persisted). */
void advrec_state_clear_dirty(advrec_state_t *state);

/* Appends item (with ADVREC_HIST_PURCHASE for a purchase) to user's ring. */
void advrec_state_push_history(advrec_state_t *state, uint32_t user,
                               uint32_t entry);

/*
 * Remembers user's event on item in the user's sets: every event in the
 * seen set, a purchase also in the purchased set (each bounded, the least
 * recent dropped first). ADVREC_ERR_NOMEM when a set cannot grow (errstr
 * names the user): the item may then be missing from either set.
 */
advrec_err_t advrec_state_remember(advrec_state_t *state, uint32_t user,
                                   uint32_t item, int purchase, char *errstr,
                                   size_t errstr_size);

/* Whether item is in user's ring; with purchases_only, only purchases. */
int advrec_state_in_history(const advrec_state_t *state, uint32_t user,
                            uint32_t item, int purchases_only);

#endif
