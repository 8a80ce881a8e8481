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
    uint32_t *uid;  /* the user's persistent number (rows, family ids) */
    uint8_t *fresh; /* uid handed out since the last clear_dirty: its id
                       is not on disk yet (the row is dirty too) */
    uint32_t *lru_prev, *lru_next; /* evictable state: activity order */
    uint64_t *batch; /* advrec_state_epoch() of the clear_dirty that last
                        took the row (0: never: as stored) */
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
    /* Users may be evicted (advrec_state_evict_user) and read back, or
     * deleted (advrec_state_delete_user): the user id map frees names,
     * activity order is kept, slots are reused. 0: no user ever leaves
     * (tools that only read a state). */
    int evictable;
} advrec_state_params_t;

typedef struct advrec_state_s advrec_state_t;

/* Empty state. NULL on bad params or no memory, with errstr filled. Owned by
 * the caller (advrec_state_destroy). */
advrec_state_t *advrec_state_new(const advrec_state_params_t *params,
                                 char *errstr, size_t errstr_size);

void advrec_state_destroy(advrec_state_t *state);

const advrec_state_params_t *advrec_state_params(const advrec_state_t *state);

/*
 * Users live in slots: a user's dense index (*idx below, what the engine,
 * rank, detectors and outbox index by) is the slot it occupies while in
 * memory; an evicted user's slot is reused. Each user also has a
 * persistent number, its uid (ux->uid[slot]), handed out in first-seen
 * order by a counter and never reused: what rows store and family ids is
 * keyed by. Without eviction slot == uid. Items are dense and stay.
 *
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

/*
 * Puts a user read back from a store (absent from memory) into a free slot
 * (*idx) under its stored uid, with a zeroed row for the caller to fill;
 * the row is clean (it equals what is stored). ADVREC_ERR_INVALID_ARG when
 * id is in memory, FULL, NOMEM (nothing changed).
 */
advrec_err_t advrec_state_user_insert(advrec_state_t *state, const char *id,
                                      uint32_t uid, uint32_t *idx, char *errstr,
                                      size_t errstr_size);

/* Uids handed out (users ever seen; what meta count/users holds), and
 * setting it after a load that did not intern the users. */
uint32_t advrec_state_user_count(const advrec_state_t *state);
void advrec_state_set_user_count(advrec_state_t *state, uint32_t n);

/* Users in the state (handed out and not deleted; in memory or not):
 * what model.max.users bounds. Set after a load that did not intern every
 * user; advrec_state_user_gone() counts one deleted while not in memory. */
uint32_t advrec_state_users_live(const advrec_state_t *state);
void advrec_state_set_users_live(advrec_state_t *state, uint32_t n);
void advrec_state_user_gone(advrec_state_t *state);

/* Users in memory (occupied slots). */
uint32_t advrec_state_users_resident(const advrec_state_t *state);

/* An evictable state: user slot idx was active now (moves it to the most
 * recent end of the activity order). No-op otherwise. */
void advrec_state_user_active(advrec_state_t *state, uint32_t idx);

/* Orders the users in memory by their last event time, oldest first: the
 * activity order after a load (which puts them in number order).
 * ADVREC_ERR_NOMEM (order unchanged). */
advrec_err_t advrec_state_lru_by_time(advrec_state_t *state);

/* The least recently active user in memory (UINT32_MAX: none), and the
 * next more recent one after idx. */
uint32_t advrec_state_lru_first(const advrec_state_t *state);
uint32_t advrec_state_lru_next(const advrec_state_t *state, uint32_t idx);

/*
 * Evicts user slot idx from memory: frees its sets and its id, zeroes the
 * row and frees the slot for reuse. Only a clean row may go (not dirty,
 * not fresh: its committed row is what a read-back gets), and only from
 * an evictable state: ADVREC_ERR_INVALID_ARG otherwise, nothing changed.
 * The caller makes sure nothing else still names the slot (stale set,
 * lists in flight, detector row).
 */
advrec_err_t advrec_state_evict_user(advrec_state_t *state, uint32_t idx);

/*
 * Deletes user slot idx (expired or forgotten): as an eviction, but its row
 * may be dirty or never committed, and the user leaves the live count. The
 * caller deletes what is stored of the user and makes sure nothing else
 * still names the slot. Evictable state only (ADVREC_ERR_INVALID_ARG
 * otherwise, or for a free slot).
 */
advrec_err_t advrec_state_delete_user(advrec_state_t *state, uint32_t idx);

/* Estimated resident bytes: every user table at its capacity plus the
 * users' ids and item sets (*user_bytes; scans the users in memory), and
 * the item tables (*item_bytes). */
void advrec_state_memory(const advrec_state_t *state, size_t *user_bytes,
                         size_t *item_bytes);

/* Bytes of the user tables per slot of capacity (no ids or sets). */
size_t advrec_state_user_slot_bytes(const advrec_state_t *state);

/* Caps the growth of the user tables: doubling stops at slots (0: no cap);
 * past it they grow by a quarter at a time (never refused). */
void advrec_state_set_slot_hint(advrec_state_t *state, uint32_t slots);

/* External ids by index (owned by state, stable until destroy, or the
 * user's eviction); NULL if out of range or free. */
const char *advrec_state_user_name(const advrec_state_t *state, uint32_t idx);
const char *advrec_state_item_name(const advrec_state_t *state, uint32_t idx);

/* The row tables; owned by state. */
advrec_rows_t *advrec_state_users(advrec_state_t *state);
advrec_rows_t *advrec_state_items(advrec_state_t *state);
advrec_user_ext_t *advrec_state_user_ext(advrec_state_t *state);

/* Marks a row changed in this round (idempotent). */
void advrec_rows_touch(advrec_rows_t *rows, uint32_t idx);

/* Forgets the dirty lists (after they were persisted, or handed to a
 * commit, or not persisted); each call is a new epoch, and the users it
 * took remember it (ux->batch): a row is on disk once the commit of its
 * epoch is written. */
void advrec_state_clear_dirty(advrec_state_t *state);

/* The number of advrec_state_clear_dirty() calls so far. */
uint64_t advrec_state_epoch(const advrec_state_t *state);

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
