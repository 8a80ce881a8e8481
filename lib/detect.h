/*
 * detect.h - streaming anomaly detectors for users (click bots) and items
 * (shilling surges), and the training weight they decide per event.
 *
 * Per user, O(1) per event and no allocation on the hot path: an event
 * rate over a decaying window (by event time), the regularity of the gaps
 * between events (exponentially weighted mean and variance of log-gaps),
 * click and purchase counts, and item diversity (distinct/total items over
 * windows of 32 events, counted approximately with a 64-bit bitmap). Per
 * item: decayed counts of recent events, of those from young accounts
 * (first seen less than anomaly.young.s ago, by event time) and of those
 * from flagged users, compared with the same share over all items (the
 * baseline). docs/ANOMALY.md has the scores and thresholds.
 *
 * Groups (shilling): the first touch of an item by a newcomer (a young
 * account, or one still in its first session) is kept in a ring of the
 * last ADVREC_DETECT_GROUP_RING such touches (fixed memory, O(1) per
 * event). When newcomers make most of an item's recent traffic and the
 * ring holds at least anomaly.group.min.size distinct ones on it within two
 * item windows, making at least half of its events ever, the item is
 * flagged as a group target and every one of those accounts is quarantined
 * at once (reason "shill-group"), including those that already left; a
 * newcomer that appeared with the group and touches the target later
 * joins it. A young account on an item whose recent traffic is mostly
 * young trains at anomaly.weight.flagged meanwhile (probation). The ring
 * is persisted in chunks like the other rows.
 *
 * Each statistic that crosses its threshold adds a reason; a user's score
 * is the noisy-OR of its reasons' fixed strengths, an item's the share of
 * its recent events from young or flagged accounts. Crossing
 * anomaly.flag.score flags the entity (its events train with
 * anomaly.weight.flagged), crossing anomaly.quarantine.score quarantines a
 * user (weight 0), falling below anomaly.clear.score clears it. Each such
 * transition is queued with its reasons and evidence counts until the caller
 * takes it (advrec_detect_take), which the daemon does after the round's
 * state is committed.
 *
 * Entities are the state's dense user and item indices (state.h); the
 * detector grows its own row arrays (amortised doubling, never per event).
 * Rows changed since the last advrec_detect_foreach_dirty() are listed, so
 * the daemon persists only those, in the round's WriteBatch (store.h).
 *
 * Not thread-safe: one detector per engine.
 */
#ifndef ADVREC_DETECT_H
#define ADVREC_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "types.h"

/* Reasons, as bits of advrec_detect_flag_t.reasons. */
#define ADVREC_DETECT_REGULAR_GAPS  0x01u /* user: machine-regular gaps */
#define ADVREC_DETECT_HIGH_RATE     0x02u /* user: events/window above max */
#define ADVREC_DETECT_NO_PURCHASES  0x04u /* user: many clicks, no purchase */
#define ADVREC_DETECT_LOW_DIVERSITY 0x08u /* user: few distinct items */
#define ADVREC_DETECT_PUSHES_FLAGGED \
    0x10u /* user: young, has a surging item in its recent history */
#define ADVREC_DETECT_YOUNG_SURGE   0x20u /* item: young accounts drive it */
#define ADVREC_DETECT_FLAGGED_SURGE 0x40u /* item: flagged users drive it */
#define ADVREC_DETECT_SHILL_GROUP \
    0x80u /* user: one of a group of young accounts on one target */
#define ADVREC_DETECT_GROUP_TARGET \
    0x100u /* item: a group of young accounts pushes it */
#define ADVREC_DETECT_FILLER_PROFILE \
    0x200u /* user: its items' popularity fits the catalogue's mean */
#define ADVREC_DETECT_REASONS_CNT 10

/* Young first touches the group ring remembers (fixed memory). */
#define ADVREC_DETECT_GROUP_RING 16384

/* Most evidence counts one transition carries. */
#define ADVREC_DETECT_MAX_EVIDENCE 10

/* Filled from the anomaly.* keys by advrec_params_detect(), or with their
 * defaults by advrec_params_detect_default() (params.h). */
typedef struct advrec_detect_params_s {
    int enable;                  /* 0: every weight is 1, nothing is flagged */
    uint32_t min_events;         /* user events before its statistics judge */
    double rate_window_s;        /* time constant of the decayed event count */
    double rate_max;             /* decayed events above which: high-rate */
    double gap_logstd_max;       /* log-gap std below which: regular-gaps */
    uint32_t nopurchase_clicks;  /* clicks without a purchase: no-purchases */
    double diversity_min;        /* distinct/total below which: low-diversity */
    double young_s;              /* accounts first seen less ago are young */
    double item_window_s;        /* time constant of the item counts */
    double item_min_events;      /* decayed suspect events before judging */
    double item_share;           /* suspect share above which an item surges */
    double item_surge_factor;    /* ... and at least this times the baseline */
    uint32_t group_min_size;     /* distinct young accounts on one surging
                                    item that make a shilling group */
    uint32_t profile_min_events; /* window events before filler-profile is
                                    judged; 0: never */
    double profile_fit_max;      /* |mean log-popularity deviation| below
                                    which: filler-profile */
    double profile_window_s;     /* a profile window's length (event time) */
    double profile_burst_min;    /* ... and at least this many events per
                                    hour of the window; 0: any rate */
    double flag_score;           /* score at which an entity is flagged */
    double quarantine_score;     /* score at which a user is quarantined */
    double clear_score;          /* score below which a flag is cleared */
    float weight_flagged;        /* training weight of a flagged entity */
    float weight_probation;      /* ... of a young account on probation */
} advrec_detect_params_t;

/* Kinds of persisted row (advrec_detect_foreach_dirty / _restore). */
typedef enum advrec_detect_row_kind_e {
    ADVREC_DETECT_ROW_USER = 0,
    ADVREC_DETECT_ROW_ITEM = 1,
    ADVREC_DETECT_ROW_GLOBAL = 2, /* the baseline; idx is 0 */
    ADVREC_DETECT_ROW_GROUP = 3,  /* a chunk of the group ring; idx: chunk */
} advrec_detect_row_kind_t;

/* One state transition of a user or item. */
typedef struct advrec_detect_flag_s {
    advrec_entity_type_t entity_type;
    uint32_t idx; /* dense user or item index */
    advrec_anomaly_action_t action;
    double score;
    uint32_t reasons; /* ADVREC_DETECT_* bits (for CLEARED: the old ones) */
    int64_t ts_ms;    /* event time of the event that decided it */
    struct {
        const char *key; /* static string */
        int64_t count;
    } evidence[ADVREC_DETECT_MAX_EVIDENCE];
    size_t n_evidence;
} advrec_detect_flag_t;

typedef struct advrec_detect_s advrec_detect_t;

/*
 * A new detector with no rows. NULL on invalid params (errstr names the
 * field) or no memory. The caller owns it (advrec_detect_destroy).
 */
advrec_detect_t *advrec_detect_new(const advrec_detect_params_t *params,
                                   char *errstr, size_t errstr_size);

/* Frees the detector; NULL is fine. */
void advrec_detect_destroy(advrec_detect_t *detect);

/*
 * Replaces the thresholds, scores and weight of a running detector (a
 * configuration reload): from the next observed event on, entities are
 * judged by them; rows keep their statistics, and flags already raised
 * stand until a new score crosses the new levels. enable and the two window
 * time constants are kept: the stored decayed statistics were built with
 * them (changing those needs a restart). ADVREC_ERR_CONFIG with errstr, and
 * nothing changed, on params advrec_detect_new() would refuse.
 */
advrec_err_t advrec_detect_set_params(advrec_detect_t *detect,
                                      const advrec_detect_params_t *params,
                                      char *errstr, size_t errstr_size);

/*
 * Observes one event of dense user `user` on dense item `item` and returns
 * the factor its training weight is multiplied by: 1, params.weight_flagged,
 * or 0 (quarantined user). hist[0..hist_len) are the user's recent items
 * before this event (state.h ring entries, ADVREC_HIST_PURCHASE bit
 * allowed; may be NULL with hist_len 0); they let a young account that
 * pushed an item be flagged once that item surges. Transitions are queued
 * (advrec_detect_pending / _take). Returns 1 without looking when the
 * detector is disabled. When a row array cannot grow (no memory) the event
 * is not observed and 1 is returned: detection degrades, training goes on.
 */
float advrec_detect_observe(advrec_detect_t *detect, uint32_t user,
                            uint32_t item, const advrec_event_t *ev,
                            const uint32_t *hist, uint32_t hist_len);

/* Transitions queued and not yet taken. */
size_t advrec_detect_pending(const advrec_detect_t *detect);

/*
 * Calls cb for every queued transition in the order they happened (each
 * valid during the call only), then empties the queue.
 */
typedef void(advrec_detect_flag_cb)(void *opaque,
                                    const advrec_detect_flag_t *flag);
void advrec_detect_take(advrec_detect_t *detect, advrec_detect_flag_cb *cb,
                        void *opaque);

/* Drops the queued transitions (e.g. when they cannot be published). */
void advrec_detect_drop_pending(advrec_detect_t *detect);

/*
 * The reason names of the bits in reasons ("regular-gaps", "high-rate",
 * "no-purchases", "low-diversity", "pushes-flagged-item",
 * "young-accounts-surge", "flagged-users-surge", "shill-group",
 * "shill-group-target", "filler-profile"), in bit order, into
 * names[0..max) (static strings); returns how many were written.
 */
size_t advrec_detect_reason_names(uint32_t reasons, const char **names,
                                  size_t max);

/* Current level of a user or item: 0 normal, 1 flagged, 2 quarantined. */
int advrec_detect_user_level(const advrec_detect_t *detect, uint32_t user);
int advrec_detect_item_level(const advrec_detect_t *detect, uint32_t item);

/* The current score of a user or item (0 for one never seen). */
double advrec_detect_user_score(const advrec_detect_t *detect, uint32_t user);
double advrec_detect_item_score(const advrec_detect_t *detect, uint32_t item);

/*
 * Persistence. foreach_dirty calls cb once per row changed since the last
 * call (the encoded value is valid during the call only, versioned and
 * little-endian) and forgets the list; a non-zero return from cb stops
 * early and keeps the rest listed. restore sets one row from such a value
 * (the entity's dense index must be the same as when it was encoded, as the
 * store guarantees); ADVREC_ERR_PARSE on a malformed value (errstr says
 * why), NOMEM when the rows cannot grow.
 */
typedef int(advrec_detect_row_cb)(void *opaque, advrec_detect_row_kind_t kind,
                                  uint32_t idx, const void *value, size_t len);
void advrec_detect_foreach_dirty(advrec_detect_t *detect,
                                 advrec_detect_row_cb *cb, void *opaque);
/* Bytes of the largest encoded row (user or item). */
#define ADVREC_DETECT_ROW_MAX (2 + 20 * 8)

/* User row idx encoded as foreach_dirty would (out holds
 * ADVREC_DETECT_ROW_MAX bytes), its length returned; 0 for a user the
 * detectors never saw. Restored with advrec_detect_restore. */
size_t advrec_detect_encode_user(const advrec_detect_t *detect, uint32_t idx,
                                 unsigned char *out);

/* Forgets which rows changed, encoding nothing (state in memory only). */
void advrec_detect_forget_dirty(advrec_detect_t *detect);
advrec_err_t advrec_detect_restore(advrec_detect_t *detect,
                                   advrec_detect_row_kind_t kind, uint32_t idx,
                                   const void *value, size_t len, char *errstr,
                                   size_t errstr_size);

/*
 * The statistics user u is judged on, for peers and analysis: writes up to
 * max of, in this order, events, clicks, purchases, decayed rate,
 * log-gap std, diversity ratio (-1 before a window), age in seconds (last
 * event - first) into out and returns how many (0 for a user never seen).
 */
#define ADVREC_DETECT_USER_FEATURES 7
size_t advrec_detect_user_features(const advrec_detect_t *detect, uint32_t u,
                                   double *out, size_t max);

/* Whether user row idx changed since the last foreach_dirty/forget. */
int advrec_detect_user_dirty(const advrec_detect_t *detect, uint32_t idx);

/* Zeroes user row idx (as a new user's), for a slot whose user was evicted
 * from memory (its row is stored: the user's read-back restores it). A
 * dirty row is left as it is: the caller evicts only clean ones. */
void advrec_detect_forget_user(advrec_detect_t *detect, uint32_t idx);

/* Zeroes user row idx, dirty or not, for a slot whose user was deleted
 * (expired or forgotten): the stored row is deleted with the user; a
 * dirty row stays listed and is staged for whoever takes the slot next,
 * or skipped while the slot is free. */
void advrec_detect_drop_user(advrec_detect_t *detect, uint32_t idx);

#endif
