/*
 * synth.h - a synthetic e-commerce click/purchase stream with ground truth.
 *
 * A seeded model of a shop: users and items with latent tastes (items in
 * categories), Zipf-like item popularity, users acting in sessions of clicks
 * with occasional purchases, and switchable adversaries (click bots, shilling
 * groups pushing a target item). Events come out one at a time in global
 * time order; the same parameters and seed give the same stream, byte for
 * byte. The generator knows which accounts are adversarial and which items
 * they push, so detectors and the recommender can be scored against it.
 *
 * Every account, adversarial or not, is named "u<number>" and every item
 * "i<number>", with numbers drawn as a seeded permutation: the id says
 * nothing about the account's kind. The truth is only in the labels.
 *
 * Cost: memory is O((users + items) * n_factors); each event is
 * O(log accounts + n_candidates * n_factors) and allocates nothing. There is
 * no global state: generators are independent, one per thread if wanted.
 */
#ifndef ADVREC_SYNTH_H
#define ADVREC_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "event.h"

typedef struct advrec_synth_s advrec_synth_t;

/* What an account or item is, in truth. */
typedef enum advrec_synth_kind_e {
    ADVREC_SYNTH_NORMAL = 0,       /* a user or item of the modelled shop */
    ADVREC_SYNTH_BOT = 1,          /* user: click bot */
    ADVREC_SYNTH_SHILL = 2,        /* user: member of a shilling group */
    ADVREC_SYNTH_SHILL_TARGET = 3, /* item: pushed by a shilling group */
    ADVREC_SYNTH_BOT_TARGET = 4,   /* item: hammered by a click bot */
} advrec_synth_kind_t;

/*
 * The knobs. Start from advrec_synth_params_default() and change fields;
 * advrec_synth_new() checks every field and names the one out of range.
 * Times are in seconds unless the name says otherwise.
 */
typedef struct advrec_synth_params_s {
    uint64_t seed;
    uint32_t n_users;    /* normal users (adversaries come on top) */
    uint32_t n_items;    /* >= 2, and >= 2 * n_shill_groups */
    uint64_t max_events; /* stream length; 0 = endless */
    int64_t start_s;     /* first possible event time, epoch seconds, > 0 */

    /* The world. */
    uint32_t n_factors;    /* latent taste dimensions, 1..64 */
    uint32_t n_categories; /* item clusters, >= 1 */
    double zipf_exponent;  /* popularity of rank r ~ 1 / (r + 1)^s, >= 0 */
    uint32_t n_candidates; /* items sampled by popularity per click, 1..1024 */
    double taste_strength; /* softmax sharpness over the candidates, >= 0 */

    /* Normal users. */
    double session_clicks_mean; /* mean clicks per session, >= 1 */
    double click_gap_mean_s;    /* mean gap between clicks in a session */
    double session_gap_mean_s;  /* mean gap between sessions (per user it is
                                   scaled by a log-normal activity level) */
    double purchase_prob;       /* P(a click is followed by buying the item) */
    double new_user_frac; /* users whose first session starts uniformly over
                             the stream instead of near its start, [0, 1] */

    /*
     * The attack window in which adversaries act, relative to start_s.
     * Negative start or non-positive length: placed automatically at 40 %..
     * 60 % of the expected span of the stream (estimated from max_events
     * and the rates above; one day when max_events is 0).
     */
    double attack_start_s;
    double attack_len_s;

    /* Click bots: never buy; near-constant gap 1/bot_rate. */
    uint32_t n_bots;
    double bot_rate;           /* clicks per second while active, > 0 */
    double bot_jitter;         /* relative gap jitter, uniform +-, [0, 1) */
    uint32_t bot_events;       /* clicks per bot, >= 1 */
    double bot_hammer_frac;    /* share of bots that hammer a few items; the
                                  rest click items uniformly, [0, 1] */
    uint32_t bot_hammer_items; /* items a hammering bot cycles through, >= 1 */

    /* Shilling groups: young accounts, one session each in the window. */
    uint32_t n_shill_groups;
    uint32_t shill_size;        /* accounts per group, >= 1 */
    uint32_t shill_fillers;     /* filler clicks per account besides target */
    int shill_popular_fillers;  /* 1: fillers from the top 5 % items; 0: any */
    double shill_purchase_prob; /* P(an account also buys the target) */
} advrec_synth_params_t;

/* Running counts, for summaries and tests. */
typedef struct advrec_synth_stats_s {
    uint64_t events;
    uint64_t clicks;
    uint64_t purchases;
    uint64_t bot_events;     /* events produced by bots */
    uint64_t shill_events;   /* events produced by shilling accounts */
    int64_t attack_start_ms; /* the attack window actually used, epoch ms */
    int64_t attack_end_ms;
} advrec_synth_stats_t;

/* The defaults: 10000 users, 5000 items, 1 M events, no adversaries. */
advrec_synth_params_t advrec_synth_params_default(void);

/*
 * Builds a generator from params (copied; the caller keeps its struct).
 * Returns NULL and fills errstr when a parameter is out of range (the message
 * names it) or memory runs out. The result is freed with
 * advrec_synth_destroy().
 */
advrec_synth_t *advrec_synth_new(const advrec_synth_params_t *params,
                                 char *errstr, size_t errstr_size);

/* Frees the generator; NULL is fine. */
void advrec_synth_destroy(advrec_synth_t *synth);

/*
 * Writes the next event into *ev (caller-owned; every field is set: clicks
 * carry a session id, purchases a session id, order id, quantity, unit price
 * and currency). Returns ADVREC_OK, or ADVREC_ERR_EOF once max_events have
 * been produced (and on every later call), leaving *ev untouched.
 */
advrec_err_t advrec_synth_next(advrec_synth_t *synth, advrec_event_t *ev);

/* The true kind of the account that produced the last event. */
advrec_synth_kind_t advrec_synth_last_kind(const advrec_synth_t *synth);

/* Copies the running counts into *stats (caller-owned). */
void advrec_synth_stats(const advrec_synth_t *synth,
                        advrec_synth_stats_t *stats);

/*
 * Ground truth for a user id ("u123"): its kind in *kind. For a shilling
 * account, its group's target item id is copied into target_item (when not
 * NULL, target_size bytes; "" for other kinds). Returns ADVREC_ERR_NOT_FOUND
 * if the id is none of this generator's accounts; *kind is then NORMAL.
 */
advrec_err_t advrec_synth_truth_user(const advrec_synth_t *synth,
                                     const char *user_id,
                                     advrec_synth_kind_t *kind,
                                     char *target_item, size_t target_size);

/*
 * Ground truth for an item id ("i45"): NORMAL, SHILL_TARGET or BOT_TARGET
 * (an item that is both is reported as SHILL_TARGET). Returns
 * ADVREC_ERR_NOT_FOUND if the id is none of this generator's items.
 */
advrec_err_t advrec_synth_truth_item(const advrec_synth_t *synth,
                                     const char *item_id,
                                     advrec_synth_kind_t *kind);

/* "normal", "bot", "shill", "shill-target", "bot-target" ("?" otherwise). */
const char *advrec_synth_kind_name(advrec_synth_kind_t kind);

/*
 * Writes the labels as CSV to fp (caller-owned, left open): the header
 * "entity_type,entity_id,kind", then one "user,u9001,bot" or
 * "user,u9500,shill" line per adversarial account, then one
 * "item,i77,shill-target" or "item,i12,bot-target" line per pushed item.
 * With active_only, only accounts that have produced at least one event so
 * far are listed, and only the items those accounts pushed: call it after
 * the stream to label exactly what the stream holds. Returns ADVREC_ERR_IO
 * with errno's text in errstr if writing fails.
 */
advrec_err_t advrec_synth_write_labels(const advrec_synth_t *synth, FILE *fp,
                                       int active_only, char *errstr,
                                       size_t errstr_size);

#endif
