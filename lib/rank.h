/*
 * rank.h - the one place that turns factors into a list.
 *
 * Given a state (users' and items' factor rows, counters, the users' item
 * sets) and the item popularity table, rank() builds each requested user's
 * list:
 *   - a user with fewer than cold_events events gets the time-decayed
 *     popularity list (popularity.h), scored at the time of their last
 *     event;
 *   - every other user is scored by the model: the users' factor rows are
 *     gathered into batches of up to 256 and multiplied with the item
 *     matrix one block of items at a time, each block's scores selected
 *     while in cache (advrec_topn_batch);
 *     Under recs.retrieval = ann (or auto on a catalog of at least
 *     auto_items items) the users' rows instead query an approximate
 *     inner-product index (ann.h) for candidates, which are re-scored
 *     exactly with the current factors, together with the items added
 *     since the index's snapshot and the last 256 items trained as
 *     positives since it (advrec_rank_trained); until an index is ready (it is
 * built in the background from the first call on), or while the items added
 *     since exceed an eighth of those indexed, lists are exact;
 *   - in both cases the items the exclusion policy names are left out
 *     (purchased: the user's purchase set; seen: that and the user's seen
 *     set; none), and the best recs_n are kept.
 *
 * The daemon (through engine refresh), advrec-inspect and the evaluation
 * code all call this, so what a tool shows is what the daemon publishes.
 *
 * The handle owns only scratch buffers, grown on demand and reused (never
 * per user); it never owns the state or the popularity table. Not
 * thread-safe: one rank per thread of control.
 */
#ifndef ADVREC_RANK_H
#define ADVREC_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "ann.h"
#include "err.h"
#include "popularity.h"
#include "state.h"

/* What a list leaves out (recs.exclude, mapped by lib/params). */
typedef enum advrec_rank_exclude_e {
    ADVREC_RANK_EXCLUDE_PURCHASED = 0, /* the user's purchase set */
    ADVREC_RANK_EXCLUDE_SEEN = 1,      /* purchase set and seen set */
    ADVREC_RANK_EXCLUDE_NONE = 2,
} advrec_rank_exclude_t;

/* How model-scored lists find their items (recs.retrieval). */
typedef enum advrec_rank_retrieval_e {
    ADVREC_RANK_RETRIEVAL_EXACT = 0, /* every item scored (the ground truth) */
    ADVREC_RANK_RETRIEVAL_ANN = 1,   /* index candidates, re-scored exactly */
    ADVREC_RANK_RETRIEVAL_AUTO = 2,  /* ann from auto_items items on */
} advrec_rank_retrieval_t;

typedef struct advrec_rank_params_s {
    uint32_t recs_n;         /* list length, >= 1 */
    int exclude;             /* advrec_rank_exclude_t */
    uint32_t cold_events;    /* fewer events than this: the popularity list */
    int use_bias;            /* add the item bias to model scores */
    int retrieval;           /* advrec_rank_retrieval_t */
    uint32_t auto_items;     /* auto: the index from this many items on */
    advrec_ann_params_t ann; /* the index, unless retrieval is exact */
} advrec_rank_params_t;

/* One list, valid only during the callback. */
typedef struct advrec_rank_list_s {
    uint32_t user;         /* dense index */
    const char *user_id;   /* owned by the state */
    const uint32_t *items; /* n dense item indices, best first */
    const float *scores;   /* n scores */
    uint32_t n;
    int popular;            /* 1: the cold-start popularity list */
    advrec_origin_t origin; /* input position of the user's last event */
} advrec_rank_list_t;

typedef void(advrec_rank_emit_cb)(void *opaque, const advrec_rank_list_t *list);

typedef struct advrec_rank_s advrec_rank_t;

/*
 * A new ranker. NULL on invalid params (errstr names the field) or no
 * memory (errstr says so). The caller owns it (advrec_rank_destroy).
 */
advrec_rank_t *advrec_rank_new(const advrec_rank_params_t *params, char *errstr,
                               size_t errstr_size);

/* Frees rank and its scratch; NULL is fine. */
void advrec_rank_destroy(advrec_rank_t *rank);

/* The parameters in force (owned by rank). */
const advrec_rank_params_t *advrec_rank_params(const advrec_rank_t *rank);

/* The index keeper (owned by rank), or NULL under exact retrieval. */
advrec_ann_t *advrec_rank_ann(advrec_rank_t *rank);

/* Lists the last advrec_rank_users() call built from index candidates,
 * and those it scored against every item (cold users' popularity lists
 * are neither). */
size_t advrec_rank_ann_lists(const advrec_rank_t *rank);
size_t advrec_rank_exact_lists(const advrec_rank_t *rank);

/*
 * Notes that item (a dense index of the state) was just trained as an
 * event's positive. Under ann, each list re-scores, besides the index's
 * candidates, the last 256 items noted since the snapshot the index in
 * use was built from: the index placed them by their factors before that
 * step. Nothing under exact retrieval; no memory: not noted.
 */
void advrec_rank_trained(advrec_rank_t *rank, uint32_t item);

/*
 * Builds the list of each of users[0..n_users) (dense indices of state, in
 * range; only read) and calls emit once per user, in the order given for
 * the cold users of a batch and then its model-scored users (a batch is at
 * most 256 users). state and pop are only read (pop may be NULL: cold
 * users get empty lists). Returns ADVREC_OK, or ADVREC_ERR_NOMEM when the
 * scratch cannot grow: then emit was never called.
 */
advrec_err_t advrec_rank_users(advrec_rank_t *rank, advrec_state_t *state,
                               const advrec_popularity_t *pop,
                               const uint32_t *users, size_t n_users,
                               advrec_rank_emit_cb *emit, void *opaque);

#endif
