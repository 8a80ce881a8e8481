/*
 * eval.h - offline evaluation of the recommender on event files: the data
 * set in memory, leave-one-out splits with sampled negatives, multi-epoch
 * training, ranking metrics, the prequential (test-then-train) replay, and
 * the two robustness experiments (FGSM on the trained embeddings, shilling
 * attacks on the training data).
 *
 * Nothing here is a copy of the model: training is advrec_apr_step() over
 * advrec_state_t rows initialised by advrec_apr_row_init() (exactly what the
 * daemon's engine does per event), scoring is lib/topn, the robustness attack
 * is advrec_apr_perturb_tables(), and the prequential replay drives an
 * advrec_engine_t through advrec_engine_apply()/advrec_engine_refresh(), the
 * daemon's own path. BPR is the same code with adv_lambda 0.
 *
 * Ownership: a data set (advrec_eval_data_t) owns its interactions and the
 * id maps; a split (advrec_eval_split_t) owns its arrays and only reads the
 * data set while it is built. Models are advrec_state_t objects owned by the
 * caller. Everything is deterministic given the seeds.
 */
#ifndef ADVREC_EVAL_H
#define ADVREC_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "apr.h"
#include "engine.h"
#include "err.h"
#include "event.h"
#include "reader.h"
#include "state.h"

#define ADVREC_EVAL_NONE UINT32_MAX /* "no test item" */

/* One interaction, dense indices of the data set's maps. */
typedef struct advrec_eval_inter_s {
    uint32_t user, item;
    int64_t ts_ms;
    uint32_t purchase; /* 1 for a purchase, 0 for a click */
} advrec_eval_inter_t;

/* Called now and then during long loops with done <= total; may be NULL. */
typedef void(advrec_eval_progress_cb)(void *opaque, const char *what,
                                      uint64_t done, uint64_t total);

/* ---- data set ---- */

typedef struct advrec_eval_data_s advrec_eval_data_t;

/* An empty data set; NULL on no memory. Owned by the caller
 * (advrec_eval_data_destroy). */
advrec_eval_data_t *advrec_eval_data_new(void);
void advrec_eval_data_destroy(advrec_eval_data_t *data);

/* Appends one event (only read), interning its user and item ids. Returns
 * ADVREC_ERR_NOMEM (data unchanged) when growing fails. */
advrec_err_t advrec_eval_data_add(advrec_eval_data_t *data,
                                  const advrec_event_t *ev);

/*
 * Reads every event of path with reader conf rconf (NULL: defaults, format
 * detected) and appends them; malformed lines are skipped and counted in
 * *skipped (may be NULL), as the daemon's producer does. Then sorts the
 * interactions by time, stably (file order breaks ties, so Amazon sequences
 * keep their order). Returns ADVREC_ERR_IO/NOMEM with errstr filled.
 */
advrec_err_t advrec_eval_data_load(advrec_eval_data_t *data, const char *path,
                                   const advrec_reader_conf_t *rconf,
                                   uint64_t *skipped,
                                   advrec_eval_progress_cb *progress,
                                   void *opaque, char *errstr,
                                   size_t errstr_size);

/* The message ("file:line: reason") of the first malformed line
 * advrec_eval_data_load() skipped (owned by data), NULL if none. */
const char *advrec_eval_data_first_skip(const advrec_eval_data_t *data);

/* Stable sort of the interactions by ts_ms. */
void advrec_eval_data_sort(advrec_eval_data_t *data);

/* The interactions in order (owned by data), their count, the map sizes and
 * the ids (owned by data; NULL when out of range). */
const advrec_eval_inter_t *advrec_eval_data_inters(const advrec_eval_data_t *d);
size_t advrec_eval_data_count(const advrec_eval_data_t *data);
uint32_t advrec_eval_data_users(const advrec_eval_data_t *data);
uint32_t advrec_eval_data_items(const advrec_eval_data_t *data);
const char *advrec_eval_data_user_name(const advrec_eval_data_t *data,
                                       uint32_t user);
const char *advrec_eval_data_item_name(const advrec_eval_data_t *data,
                                       uint32_t item);

/* ---- metrics ---- */

/* 1 if a 0-based rank is inside the top k. */
double advrec_eval_hr(uint32_t rank, uint32_t k);
/* 1 / log2(rank + 2) inside the top k, else 0. */
double advrec_eval_ndcg(uint32_t rank, uint32_t k);

/*
 * The 0-based rank of score `target` among the n scores of others: the
 * number of them strictly higher, plus the number equal (ties count against
 * the target, so a model that scores everything alike gets no credit). NaN
 * scores in others are ignored; a NaN target ranks last (n).
 */
uint32_t advrec_eval_rank(float target, const float *others, size_t n);

typedef struct advrec_eval_metrics_s {
    double hr;   /* HR@k averaged over tested users/events */
    double ndcg; /* NDCG@k, likewise */
    double mrr;  /* mean 1/(rank+1) (no cut-off) */
    uint64_t n;  /* cases averaged */
    uint32_t k;  /* the cut-off */
} advrec_eval_metrics_t;

/* ---- leave-one-out split ---- */

/*
 * Every user with at least two interactions has the last one (in the data
 * set's order) held out as the test item; all of that user's interactions
 * with the test item are removed from training (no leakage through a
 * repeat). Users with one interaction stay in training untested.
 *
 * For each tested user n_neg distinct negatives are drawn uniformly from the
 * items the user never touched (training or test), with a stream derived
 * from seed and the user id; users with fewer untouched items are not tested.
 */
typedef struct advrec_eval_split_s {
    uint32_t n_users, n_items;
    advrec_eval_inter_t *train; /* in data order */
    size_t n_train;
    uint32_t *test;  /* n_users: test item or ADVREC_EVAL_NONE */
    uint32_t n_neg;  /* negatives per tested user */
    uint32_t *negs;  /* n_users x n_neg, sorted; rows of untested users 0 */
    size_t *tr_off;  /* n_users + 1: user u's training items are */
    uint32_t *tr_it; /*   tr_it[tr_off[u] .. tr_off[u+1]), sorted, unique */
    uint32_t n_tested;
} advrec_eval_split_t;

/* Builds split from data (only read). The split's arrays are owned by split
 * and freed by advrec_eval_split_free(). ADVREC_ERR_NOMEM on no memory
 * (split then holds nothing). */
advrec_err_t advrec_eval_split_loo(advrec_eval_split_t *split,
                                   const advrec_eval_data_t *data,
                                   uint32_t n_neg, uint64_t seed);
/*
 * The validation split of the leave-one-out split test, for tuning without
 * looking at the test items: the same construction applied to test's
 * training interactions (each user with at least two of them has the last
 * one, in data order, held out with all its repeats), with test->n_neg
 * negatives drawn from the items the user never touched, the test item
 * included (a separate stream, salted "val", from seed and the user id).
 * val owns its arrays (advrec_eval_split_free); test and data are only read.
 * ADVREC_ERR_NOMEM on no memory (val then holds nothing).
 */
advrec_err_t advrec_eval_split_val(advrec_eval_split_t *val,
                                   const advrec_eval_split_t *test,
                                   const advrec_eval_data_t *data,
                                   uint64_t seed);
void advrec_eval_split_free(advrec_eval_split_t *split);

/* 1 if item is among user's training items (binary search). */
int advrec_eval_split_has(const advrec_eval_split_t *split, uint32_t user,
                          uint32_t item);

/*
 * Writes the split for other tools: dir/train.tsv ("user\titem\tts_ms",
 * external ids, data order), dir/test.tsv ("user\ttest_item\tneg1 ... negN").
 * dir must exist. ADVREC_ERR_IO with errstr naming the file.
 */
advrec_err_t advrec_eval_split_write(const advrec_eval_split_t *split,
                                     const advrec_eval_data_t *data,
                                     const char *dir, char *errstr,
                                     size_t errstr_size);

/*
 * Writes dir/val.tsv for the validation split val ("user\tval_item\tneg1
 * ... negN", external ids), so peers tune on the same held-out items and
 * negatives: their training part is train.tsv minus each listed user's
 * interactions with the listed item. dir must exist. ADVREC_ERR_IO.
 */
advrec_err_t advrec_eval_split_write_val(const advrec_eval_split_t *val,
                                         const advrec_eval_data_t *data,
                                         const char *dir, char *errstr,
                                         size_t errstr_size);

/* ---- offline training ---- */

typedef struct advrec_eval_train_s {
    advrec_apr_params_t apr; /* adv_lambda 0: BPR */
    uint32_t epochs;         /* passes over the training interactions */
    uint32_t bpr_epochs;     /* of those, the first ones without the
                                adversarial term (APR's BPR pre-training) */
    uint32_t negatives;      /* negatives per positive per pass */
    uint64_t seed;           /* shuffling and negative sampling */
    /* Called after each pass with the passes done so far (1-based) and the
     * model (to be read only, e.g. measured); nonzero stops the training
     * there. NULL: none. A pass's randomness depends on the seed and the
     * pass only, so the model after P passes of a longer run is the model
     * of a run with epochs = P (early stopping measures every prefix). */
    int (*after_pass)(void *opaque, uint32_t passes, advrec_state_t *model);
    void *after_pass_opaque;
} advrec_eval_train_t;

/*
 * A new model for split: an advrec_state_t whose user and item rows have
 * the data set's dense indices and the daemon's deterministic initial
 * factors (advrec_apr_row_init by external id). Owned by the caller
 * (advrec_state_destroy). NULL with errstr filled on failure.
 */
advrec_state_t *advrec_eval_model_new(const advrec_eval_data_t *data,
                                      const advrec_apr_params_t *apr,
                                      char *errstr, size_t errstr_size);

/*
 * Trains model with params over the n_train interactions train (in a new
 * random order each pass); negatives are uniform over items that are not
 * among the user's training items in split (a few redraws, as the daemon
 * does). Each step is advrec_apr_step(). Returns ADVREC_ERR_NOMEM or
 * ADVREC_ERR_INVALID_ARG (bad parameters) with errstr filled.
 */
advrec_err_t advrec_eval_train(advrec_state_t *model,
                               const advrec_eval_split_t *split,
                               const advrec_eval_inter_t *train, size_t n_train,
                               const advrec_eval_train_t *params,
                               advrec_eval_progress_cb *progress, void *opaque,
                               char *errstr, size_t errstr_size);

/*
 * Leave-one-out metrics at cut-off k for the factor tables users (n_users x
 * kf) and items (n_items x kf) and item_bias (may be NULL): with full == 0
 * the test item is ranked against the user's n_neg sampled negatives; with
 * full != 0 against every item that is not among the user's training items.
 * All inputs are only read. ADVREC_ERR_NOMEM on no memory.
 */
advrec_err_t advrec_eval_loo(const advrec_eval_split_t *split,
                             const float *users, const float *items,
                             const float *item_bias, int kf, int full,
                             uint32_t k, advrec_eval_metrics_t *out);

/* advrec_eval_loo() on a trained model's tables. */
advrec_err_t advrec_eval_loo_model(const advrec_eval_split_t *split,
                                   advrec_state_t *model, int use_bias,
                                   int full, uint32_t k,
                                   advrec_eval_metrics_t *out);

/*
 * The APR paper's robustness experiment: copies model's tables, moves them
 * with advrec_apr_perturb_tables() at radius eps along the gradient of the
 * BPR loss over the training interactions (one negative each, drawn from
 * seed), and measures leave-one-out (sampled negatives) on the copy. model
 * is only read. ADVREC_ERR_NOMEM on no memory.
 */
advrec_err_t advrec_eval_fgsm(const advrec_eval_split_t *split,
                              advrec_state_t *model, int use_bias, float eps,
                              uint64_t seed, uint32_t k,
                              advrec_eval_metrics_t *out);

/* Mean L2 norm of the factor rows of users and of items that were trained
 * (updates > 0), and of the item biases when use_bias; model is only read.
 * Robustness figures only mean something next to these: an FGSM radius
 * eps moves a row of norm r by eps / r of its length. */
typedef struct advrec_eval_norms_s {
    double user, item, item_bias_abs;
    uint32_t users, items;
} advrec_eval_norms_t;

void advrec_eval_norms(advrec_state_t *model, int use_bias,
                       advrec_eval_norms_t *out);

/* ---- shilling attack ---- */

/*
 * Appends n_fake fake users to a copy of the training interactions: each
 * interacts with target and with n_filler distinct other items drawn
 * uniformly (stream from seed). Fake users get dense indices
 * split->n_users .. + n_fake - 1. *out (owned by the caller, free()) gets
 * the n_train + n_fake * (n_filler + 1) interactions; fake interactions
 * carry ts_ms after every real one. ADVREC_ERR_NOMEM / INVALID_ARG
 * (n_filler >= n_items).
 */
advrec_err_t advrec_eval_shill(const advrec_eval_split_t *split,
                               uint32_t target, uint32_t n_fake,
                               uint32_t n_filler, uint64_t seed,
                               advrec_eval_inter_t **out, size_t *n_out);

/* How often target is in the top k of the real users who never touched it
 * in training (scored against all items minus their training items). */
typedef struct advrec_eval_target_s {
    double hit;        /* share of those users with target in their top k */
    double mean_score; /* mean predicted score of target over them */
    uint64_t users;
} advrec_eval_target_t;

advrec_err_t advrec_eval_target(const advrec_eval_split_t *split,
                                advrec_state_t *model, int use_bias,
                                uint32_t target, uint32_t k,
                                advrec_eval_target_t *out);

/* ---- prequential ---- */

typedef struct advrec_eval_preq_s {
    advrec_eval_metrics_t all; /* over every event whose user had a list */
    uint32_t n_points;         /* curve windows (caller's arrays below) */
    double *curve_hr;          /* n_points: HR@k per window of events */
    double *curve_ndcg;        /* n_points */
    uint64_t *curve_n;         /* n_points: events ranked in the window */
    uint64_t events;           /* events replayed */
    /* Under ann or auto retrieval (params->retrieval), on the final
     * factors: the share of the exact top-k every model-scored user's
     * index list holds (a fresh index), over ann_users users; and the
     * share of the replay's lists the index served. */
    double ann_recall;
    uint64_t ann_users;
    uint32_t ann_probe, ann_nlist; /* that index's tuned probe count */
    double ann_sample_recall;      /* and its sample's recall@10 */
    double ann_share;
    /* Scale-out (issue 12, point 5), set by the caller: instances > 1
     * replays the stream through that many engines, each with the users
     * of its partitions (partitions input partitions, the partition of
     * a user the Java client's murmur2 of the user id, partitions
     * range-assigned to instances as Kafka's range assignor does), which
     * exchange item-factor deltas through lib/itemsync after every
     * sync_every events of the stream (0: never; the staleness), merging
     * peers' Adagrad accumulators with share_acc. 0 or 1 instance: the
     * one engine above, partition 0 (the other fields unused). */
    uint32_t instances, partitions;
    uint64_t sync_every;
    int share_acc;
    /* Out: exchanges made, records published (each merged into every
     * other instance), and the users of the busiest and the quietest
     * instance. */
    uint64_t syncs, records;
    uint32_t users_max, users_min;
} advrec_eval_preq_t;

/*
 * Test-then-train through the daemon's engine with params (recs_n is the
 * cut-off k): in data order, for each event the user's current list (the
 * one the engine emitted after the user's previous event; users without
 * one are not scored) is checked for the event's item and its rank, then
 * the event is applied with advrec_engine_apply() and the user refreshed
 * with advrec_engine_refresh() (as with debounce 0). With popularity set
 * the engine trains nothing and every list is its popularity list (the
 * baseline). out's curve arrays are the caller's (n_points entries, may be
 * 0 / NULL). With out->instances > 1, each event goes to the engine of its
 * user's instance and is tested against that engine's list (users never
 * move, so a user's list always comes from one engine), and the instances
 * exchange item deltas as out->sync_every says; the measure is the same.
 * Returns engine and itemsync errors with errstr filled (ADVREC_ERR_CONFIG
 * for partitions < instances).
 */
advrec_err_t advrec_eval_prequential(const advrec_eval_data_t *data,
                                     const advrec_engine_params_t *params,
                                     int popularity, advrec_eval_preq_t *out,
                                     advrec_eval_progress_cb *progress,
                                     void *opaque, char *errstr,
                                     size_t errstr_size);

/*
 * The one-pass protocol (issue 16): split's training interactions, in data
 * (time) order, through the daemon's engine with params, each applied once
 * as the daemon applies an input record (advrec_engine_apply; origin
 * offset = its position, so the run is reproducible); then the
 * leave-one-out test of split at cut-off k (sampled negatives) on the
 * engine's factors. Users and items the engine never saw keep their
 * deterministic initial factors (advrec_apr_row_init), as an offline model
 * would. With model_out (may be NULL), *model_out gets those factors in
 * the split's dense indices (the caller's: advrec_state_destroy), for
 * advrec_eval_fgsm. Returns engine errors, ADVREC_ERR_NOMEM, with errstr
 * filled.
 */
advrec_err_t advrec_eval_onepass(const advrec_eval_data_t *data,
                                 const advrec_eval_split_t *split,
                                 const advrec_engine_params_t *params,
                                 uint32_t k, advrec_eval_metrics_t *out,
                                 advrec_state_t **model_out,
                                 advrec_eval_progress_cb *progress,
                                 void *opaque, char *errstr,
                                 size_t errstr_size);

#endif
