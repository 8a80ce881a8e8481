/*
 * itemsync.h - item factors shared between instances: the exchange of
 * item-factor deltas (issue 12, point 2; docs/ARCHITECTURE.md "Scaling
 * out", the wire format in docs/SCHEMAS.md "Item-factor deltas").
 *
 * Every instance trains the item rows of its own partitions' events
 * locally; itemsync keeps, per item, the part of the local row that is not
 * this instance's own work (the item's initial row plus everything merged
 * from peers: the "base"), so the instance's cumulative contribution is
 * always local - base. publish() encodes that contribution as one record
 * per item changed since the last publish, keyed "<instance>/<item id>";
 * merge() takes a peer's record, subtracts the cumulative it last applied
 * for that (peer, item) and adds the difference to the local row (and to
 * the base). Records carry cumulative values, so the latest one per key is
 * all a compacted topic needs to keep, a replay of the same record changes
 * nothing, and an instance that reads the topic from its beginning
 * recovers every peer's total.
 *
 * The merge rule is additive (asynchronous data-parallel SGD: every
 * instance's steps count once on every instance, late by at most the
 * publish interval plus transport); item factors are approximate across
 * instances by design. Adagrad accumulators and the update counts are
 * additive too and travel in the record; whether a receiver adds its
 * peers' accumulators is share_acc (with it, an item's step size shrinks
 * with the traffic it gets on every instance, as on one).
 *
 * The state (and its item table) belongs to the caller; itemsync keeps a
 * pointer to it and must be destroyed before it. Not thread-safe: call it
 * from the thread that applies events to that state.
 */
#ifndef ADVREC_ITEMSYNC_H
#define ADVREC_ITEMSYNC_H

#include <stddef.h>
#include <stdint.h>

#include "apr.h"
#include "err.h"
#include "state.h"

/* Longest instance id (bytes; [A-Za-z0-9._-] only, no '/'). */
#define ADVREC_ITEMSYNC_INSTANCE_MAX 64
/* The wire format's version (bytes 4-5 of a value). */
#define ADVREC_ITEMSYNC_VERSION 1
/* Bytes of a value before the k factors. */
#define ADVREC_ITEMSYNC_HEADER 28
/* Largest |contribution| accepted for a factor or a bias; a record above
 * it is refused as corrupt (trained rows have norms of a few units). */
#define ADVREC_ITEMSYNC_FACTOR_MAX 1e4f
/* Largest |contribution| accepted for an Adagrad accumulator. */
#define ADVREC_ITEMSYNC_ACC_MAX 1e12f

typedef struct advrec_itemsync_params_s {
    /* This instance's id: the first part of every key it publishes,
     * 1..ADVREC_ITEMSYNC_INSTANCE_MAX bytes of [A-Za-z0-9._-]. */
    const char *instance;
    /* The model: k, use_bias and the initial rows of items (seed,
     * init_std) must be those the engine trains with. */
    advrec_apr_params_t apr;
    /* Add peers' Adagrad accumulator contributions (1) or keep the
     * accumulators local (0). */
    int share_acc;
    /* Most peers remembered (their last cumulatives cost k + 4 floats per
     * item each); a record from one more is refused. */
    uint32_t max_peers;
} advrec_itemsync_params_t;

/* One decoded record. w is the caller's (k floats). */
typedef struct advrec_itemsync_record_s {
    char instance[ADVREC_ITEMSYNC_INSTANCE_MAX + 1];
    char item[ADVREC_ID_MAX];
    uint32_t k;
    uint32_t flags;   /* ADVREC_ITEMSYNC_F_* */
    uint32_t updates; /* steps of the instance that touched the item */
    float acc;        /* row-wise Adagrad accumulator */
    float bias, bias_acc;
    float *w; /* k factors */
} advrec_itemsync_record_t;

/* The record's bias fields are meaningful (the sender trains biases). */
#define ADVREC_ITEMSYNC_F_BIAS 1u

typedef struct advrec_itemsync_s advrec_itemsync_t;

/*
 * A new exchange over state (not owned; it must outlive the exchange).
 * Items already in the state count as received: their rows now are the
 * base, so only what is trained from here on is this instance's
 * contribution (at start, an empty state). NULL with errstr filled on a
 * bad parameter (ADVREC_ERR_CONFIG: the instance id, k not the state's) or
 * no memory. Owned by the caller (advrec_itemsync_destroy).
 */
advrec_itemsync_t *advrec_itemsync_new(const advrec_itemsync_params_t *params,
                                       advrec_state_t *state, char *errstr,
                                       size_t errstr_size);

void advrec_itemsync_destroy(advrec_itemsync_t *sync);

/* This instance's id (the first part of its keys). */
const char *advrec_itemsync_instance(const advrec_itemsync_t *sync);

/* Called by publish() once per record: key and value are only valid
 * during the call. Nonzero stops publish() (that item stays owed). */
typedef int(advrec_itemsync_emit_cb)(void *opaque, const char *key,
                                     size_t key_len, const uint8_t *value,
                                     size_t value_len);

/*
 * Encodes this instance's cumulative contribution of every item trained
 * here since the last publish (an item is owed when its update count
 * moved) and hands each record to emit; *n_out (may be NULL) gets how many
 * were emitted. Returns ADVREC_OK; ADVREC_ERR_NOMEM (tracking new items)
 * or ADVREC_ERR_STOPPED (emit refused one) with errstr filled; the items
 * not emitted stay owed for the next call.
 */
advrec_err_t advrec_itemsync_publish(advrec_itemsync_t *sync,
                                     advrec_itemsync_emit_cb *emit,
                                     void *opaque, size_t *n_out, char *errstr,
                                     size_t errstr_size);

/*
 * A record publish() handed to emit was not delivered (its producer gave
 * up): the item it named (key as emitted, "<instance>/<item id>") is owed
 * again, so the next publish sends the item's cumulative contribution as
 * it is then, whether or not the item is trained meanwhile (records carry
 * totals: a newer one delivered first makes the resend harmless). Returns
 * ADVREC_OK; ADVREC_ERR_NOT_FOUND when the key is not one of this
 * instance's or names no item it tracks (nothing is owed).
 */
advrec_err_t advrec_itemsync_owe(advrec_itemsync_t *sync, const char *key,
                                 size_t key_len);

/*
 * Applies a peer's record (key and value only read): the difference
 * between its cumulative and the one last applied for that (peer, item) is
 * added to the local row (factors, bias when both train biases, the
 * accumulators under share_acc, the update count) and the row marked
 * changed. An item not in the state is created with its deterministic
 * initial row, as the engine would. The instance's own records (read back
 * from the topic) and tombstones (empty value) change nothing and return
 * ADVREC_OK. Errors (no row changed, errstr names the key and why; after
 * ADVREC_ERR_NOMEM an item made for the record may stay, with its initial
 * row):
 * ADVREC_ERR_DECODE for a malformed key or value (bad magic, version, k,
 * flags, length, non-finite or out-of-range numbers), ADVREC_ERR_FULL when
 * the item table or the peer table is full, ADVREC_ERR_NOMEM.
 */
advrec_err_t advrec_itemsync_merge(advrec_itemsync_t *sync, const char *key,
                                   size_t key_len, const uint8_t *value,
                                   size_t value_len, char *errstr,
                                   size_t errstr_size);

/*
 * Encodes rec as a key ("<instance>/<item>", not NUL-terminated, into
 * key[key_size]) and a value (ADVREC_ITEMSYNC_HEADER + 4 k bytes into
 * value[value_size]); the lengths go to *key_len and *value_len.
 * ADVREC_ERR_INVALID_ARG (errstr) when a buffer is too small or the ids or
 * k are out of range.
 */
advrec_err_t advrec_itemsync_encode(const advrec_itemsync_record_t *rec,
                                    char *key, size_t key_size, size_t *key_len,
                                    uint8_t *value, size_t value_size,
                                    size_t *value_len, char *errstr,
                                    size_t errstr_size);

/*
 * Decodes and validates a record; rec->w must hold k floats (the
 * receiver's k: a record of another k is refused). ADVREC_ERR_DECODE with
 * errstr naming the key and the fault; ADVREC_ERR_NOT_FOUND for a
 * tombstone (empty value; rec then has only its ids).
 */
advrec_err_t advrec_itemsync_decode(const char *key, size_t key_len,
                                    const uint8_t *value, size_t value_len,
                                    uint32_t k, advrec_itemsync_record_t *rec,
                                    char *errstr, size_t errstr_size);

/*
 * A start from the model topic, read from its beginning: every record in
 * order through recover(), then recovered() once at its end. The latest
 * record of each (instance, item) is that instance's total, this
 * instance's own records included. For every item with records, the local
 * row becomes the item's initial row plus every instance's total, and the
 * base the same without this instance's own: what it trained and published
 * before a restart stays its contribution, each peer's counts once, and
 * the peers' records that follow merge() as usual. Items without records
 * keep their rows (their base is the row, as at new()). What this instance
 * trained after its last publish and before a crash is lost from the item
 * rows (the input it came from is replayed and trains again); what it
 * published after its last state commit counts twice for that replay:
 * approximate by design, bounded by a commit interval of its own steps.
 * Errors as merge()'s (the record is skipped).
 */
advrec_err_t advrec_itemsync_recover(advrec_itemsync_t *sync, const char *key,
                                     size_t key_len, const uint8_t *value,
                                     size_t value_len, char *errstr,
                                     size_t errstr_size);
void advrec_itemsync_recovered(advrec_itemsync_t *sync);

/* Counters since the exchange was made. */
typedef struct advrec_itemsync_stats_s {
    uint64_t published; /* records handed to emit */
    uint64_t merged;    /* peers' records applied */
    uint64_t own;       /* own records read back, skipped */
    uint64_t created;   /* items first seen through a peer */
    uint64_t refused;   /* records refused by merge() */
    uint32_t peers;     /* peers heard from */
} advrec_itemsync_stats_t;

void advrec_itemsync_stats(const advrec_itemsync_t *sync,
                           advrec_itemsync_stats_t *out);

#endif
