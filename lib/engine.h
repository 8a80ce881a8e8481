/*
 * engine.h - what the daemon does with one event and with stale users,
 * without any Kafka: the library's learning core.
 *
 * apply(): resolve the event's user and item ids to rows (new rows get
 *   deterministic initial factors), remember the item in the user's
 *   purchase/seen sets (what lists exclude), count it, push it to the
 *   user's history ring, update item popularity, train one online APR step
 *   per sampled negative, and mark the user stale.
 * refresh(): pick the stale users whose debounce has expired (or whose
 *   staleness reached the maximum) and have lib/rank build their lists
 *   (exclusions, cold-start popularity, batched scoring), each handed to a
 *   callback.
 *
 * The daemon, the evaluation tool and the tests all call these same
 * functions. Every random choice comes from the configured seed and the
 * record's (topic, partition, offset) or the id, so a replay of the same
 * input is bit-identical.
 *
 * Not thread-safe: one engine per thread of control.
 */
#ifndef ADVREC_ENGINE_H
#define ADVREC_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "apr.h"
#include "err.h"
#include "event.h"
#include "popularity.h"
#include "rank.h"
#include "state.h"

typedef struct advrec_engine_params_s {
    advrec_apr_params_t apr;
    advrec_state_params_t state;
    uint32_t negatives; /* negatives sampled per positive event */
    /* model.negatives.budget: negatives per second of a partition's event
     * time (0: none), and model.negatives.min, the floor under it. */
    double negatives_budget;
    uint32_t negatives_min;
    /* Past interactions of the event's user replayed after its own step
     * (model.replay.steps): each a positive drawn from the user's history
     * ring, with a negative of its own, from the record's random stream. */
    uint32_t replay_steps;
    float weight_click;       /* training weight of a click */
    float weight_purchase;    /* ... and of a purchase */
    uint32_t recs_n;          /* list length */
    int64_t debounce_ms;      /* quiet time after a user's last event */
    int64_t max_staleness_ms; /* refresh at the latest this long after */
    int exclude;              /* advrec_rank_exclude_t */
    uint32_t cold_events;     /* fewer events than this: popularity list */
    double popularity_halflife_s;
    int retrieval;                 /* advrec_rank_retrieval_t */
    uint32_t retrieval_auto_items; /* auto: the index from this many on */
    advrec_ann_params_t ann;       /* the index (recs.ann.*) */
} advrec_engine_params_t;

/* One refreshed list, valid only during the callback (rank.h). */
typedef advrec_rank_list_t advrec_engine_list_t;
typedef advrec_rank_emit_cb advrec_engine_emit_cb;

typedef struct advrec_engine_s advrec_engine_t;

/*
 * A new, empty engine. NULL on invalid params (errstr names the field) or no
 * memory. The caller owns it (advrec_engine_destroy).
 */
advrec_engine_t *advrec_engine_new(const advrec_engine_params_t *params,
                                   char *errstr, size_t errstr_size);

void advrec_engine_destroy(advrec_engine_t *engine);

/* The state the engine trains (owned by the engine). */
advrec_state_t *advrec_engine_state(advrec_engine_t *engine);

/*
 * Applies one validated event read from (topic, origin->partition,
 * origin->offset); topic is the input topic's name (it seeds the negative
 * sampling). weight scales the configured click/purchase weight: 1 normal,
 * < 1 down-weighted, 0 quarantined (counted and remembered, not trained).
 * now_ms is the caller's monotonic clock (debounce). Returns ADVREC_OK, or
 * ADVREC_ERR_FULL / NOMEM when the user or item cannot be added (errstr
 * names it); then nothing was changed. ADVREC_ERR_NOMEM when the user's
 * item sets cannot grow (errstr names the user): then the rows may have
 * been interned and the item be in one set, but nothing was counted or
 * trained.
 */
advrec_err_t advrec_engine_apply(advrec_engine_t *engine,
                                 const advrec_event_t *ev, const char *topic,
                                 const advrec_origin_t *origin, float weight,
                                 int64_t now_ms, char *errstr,
                                 size_t errstr_size);

/*
 * Refreshes stale users that are due at now_ms (all stale users when force
 * is set), calling emit once per user with the list lib/rank built, and
 * returns how many lists were emitted. Oldest first: the due users are
 * taken in order of the time they became stale (ties in the order they
 * did), at most max_users of them per call (0: no limit), so a caller can
 * refresh in batches and stop between two when its time is up; lib/rank
 * emits a batch's cold users before its model-scored ones. Out of memory:
 * returns 0 with nothing emitted; the users stay stale.
 */
size_t advrec_engine_refresh(advrec_engine_t *engine, int64_t now_ms, int force,
                             size_t max_users, advrec_engine_emit_cb *emit,
                             void *opaque);

/*
 * A judge of events (the anomaly detectors): called by apply() once the
 * event's user and item have rows, before training, with the user's recent
 * items (hist[0..hist_len), ADVREC_HIST_* entries in ring order, before
 * this event; owned by the engine, valid during the call). Its
 * return value multiplies the caller's weight (1, < 1, 0 quarantined).
 */
typedef float(advrec_engine_judge_cb)(void *opaque, const advrec_event_t *ev,
                                      uint32_t user, uint32_t item,
                                      const uint32_t *hist, uint32_t hist_len);

/* Installs (cb NULL: removes) the judge; opaque is the caller's. */
void advrec_engine_set_judge(advrec_engine_t *engine,
                             advrec_engine_judge_cb *cb, void *opaque);

/*
 * Reads a user that is not in memory back from the state store (a memory
 * budget): called by apply() before a user id not in the state is taken
 * for new. Puts the user into a slot of the engine's state (*user) and
 * returns ADVREC_OK, ADVREC_ERR_NOT_FOUND when the store has no such user
 * (it is new), or another error (errstr filled): the event is refused.
 */
typedef advrec_err_t(advrec_engine_loader_cb)(void *opaque, const char *id,
                                              uint32_t *user, char *errstr,
                                              size_t errstr_size);

/* Installs (cb NULL: removes) the loader; opaque is the caller's. */
void advrec_engine_set_loader(advrec_engine_t *engine,
                              advrec_engine_loader_cb *cb, void *opaque);

/*
 * Asked when a new user's event finds the user table full (model.max.users
 * users live): deletes one user (the least recently active, the owner's
 * choice) and returns ADVREC_OK, or an error (errstr) and the event is
 * refused as before (ADVREC_ERR_FULL). The user of the event at hand is
 * new, so never the one deleted.
 */
typedef advrec_err_t(advrec_engine_room_cb)(void *opaque, char *errstr,
                                            size_t errstr_size);
void advrec_engine_set_room(advrec_engine_t *engine, advrec_engine_room_cb *cb,
                            void *opaque);

/*
 * Finds or interns a user (items = 0) or an item (items = 1) by external
 * id, as an event would: a user not in memory is read back, a full user
 * table makes room, a new row's factors are initialised from the id. Its
 * dense index in *idx. Errors as advrec_engine_apply's.
 */
advrec_err_t advrec_engine_intern(advrec_engine_t *engine, int items,
                                  const char *id, uint32_t *idx, char *errstr,
                                  size_t errstr_size);

/* User (a slot) is being deleted: no longer owed a refresh. */
void advrec_engine_forget_user(advrec_engine_t *engine, uint32_t user);

/* The latest event time (ms) applied since the engine was made: what
 * expiry by event time (state.user.ttl) measures from. */
int64_t advrec_engine_watermark(const advrec_engine_t *engine);

/* Negatives trained since the engine was made (model.negatives per
 * trained event, fewer where model.negatives.budget cut them). */
uint64_t advrec_engine_negatives(const advrec_engine_t *engine);

/*
 * Changes the refresh schedule of a running engine (a configuration
 * reload): a stale user is due debounce_ms after their last event, or
 * max_staleness_ms after they became stale, whichever comes first. Users
 * already stale are judged by the new values at the next refresh.
 */
void advrec_engine_set_refresh(advrec_engine_t *engine, int64_t debounce_ms,
                               int64_t max_staleness_ms);

/* Users waiting for a refresh. */
size_t advrec_engine_stale_count(const advrec_engine_t *engine);

/* The users waiting for a refresh (dense indices, n of them; oldest first
 * unless a mark since went back in time); owned by the engine, valid until
 * the next apply/refresh/mark. */
const uint32_t *advrec_engine_stale_users(const advrec_engine_t *engine,
                                          size_t *n);

/* Marks user (a dense index of the engine's state) as owing a refresh, as
 * an event would: used for users whose list was owed when the daemon
 * stopped, and for lists that failed delivery. Out-of-range indices are
 * ignored. */
void advrec_engine_mark_stale(advrec_engine_t *engine, uint32_t user,
                              int64_t now_ms);

/* Training steps taken so far: the model version carried by each list. */
uint64_t advrec_engine_version(const advrec_engine_t *engine);

/* The sum of the clean BPR loss of the training steps taken since the last
 * call, and how many (for the metrics' running loss); both start again. */
void advrec_engine_take_loss(advrec_engine_t *engine, double *sum, uint64_t *n);

/* The time (now_ms of advrec_engine_mark_stale's first mark) since which
 * each user the last advrec_engine_refresh listed had been waiting, n of
 * them (0 when it listed none). Owned by the engine, valid until the next
 * refresh. */
const int64_t *advrec_engine_refreshed_since(const advrec_engine_t *engine,
                                             size_t *n);

/*
 * Prequential check, before the event is applied: ranks user_id as a list
 * would be published now (exclusions, cold-start popularity, recs.n) and
 * returns 1 when item_id is in it, 0 when not, -1 when it cannot be asked
 * (the user or the item is not known yet, or no memory). Costs one user's
 * scoring against every item: call it on a sample. Changes nothing.
 */
int advrec_engine_hit(advrec_engine_t *engine, const char *user_id,
                      const char *item_id);

/* Restores the version read back from the state store (store.h). */
void advrec_engine_set_version(advrec_engine_t *engine, uint64_t version);

/* The item popularity table (owned by the engine), for the state store to
 * persist and restore its keys. */
advrec_popularity_t *advrec_engine_popularity(advrec_engine_t *engine);

/* Of the lists the last advrec_engine_refresh built: those from the
 * approximate index's candidates, and those scored against every item
 * (rank.h); the rest were cold users' popularity lists. */
size_t advrec_engine_ann_lists(const advrec_engine_t *engine);
size_t advrec_engine_exact_lists(const advrec_engine_t *engine);

/* The index keeper of recs.retrieval = ann | auto (owned by the engine),
 * or NULL under exact retrieval: for its statistics (ann.h). */
advrec_ann_t *advrec_engine_ann(advrec_engine_t *engine);

/* When (the now_ms of its first mark) the user waiting longest for a
 * refresh became stale; 0 when nobody waits. Puts the stale list back in
 * order if a mark went back in time, hence not const. */
int64_t advrec_engine_oldest_stale(advrec_engine_t *engine);

#endif
