/*
 * outbox.h - every output the daemon owes, delivered at least once.
 *
 * One rule for recommendation lists, anomaly flags and dead letters: an
 * output is recorded in the state with the round that produced it, produced
 * only after that round's commit, removed in a later commit once the broker
 * acknowledged it, and produced again after a failed delivery or a crash.
 *
 *  - Flags and dead letters are records: their exact bytes (key, value,
 *    headers) are staged into the round's batch (meta "pending/out/<seq>")
 *    when they arise, become due when the commit succeeded, are produced
 *    oldest first, and leave the state in the first commit after their
 *    delivery report. A dead letter the broker refuses as too large is
 *    produced again as a truncated copy with an `advrec.truncated` header
 *    saying how large key and value were: never dropped.
 *  - A list is recomputed, not replayed: the users owed one (stale, or
 *    produced and not yet acknowledged) are stored in every batch (meta
 *    "pending/users"); a user leaves that set only in a commit after their
 *    list was delivered; a failed delivery makes the user stale again (the
 *    owner's on_list_failed hook), and a restart refreshes whoever is owed.
 *
 * Every message the outbox produces carries a delivery tag of kind
 * ADVREC_TAG_RECORD or ADVREC_TAG_LIST (below), decoded only here
 * (advrec_outbox_delivered): the producer's delivery callback hands the
 * outbox every report of those kinds.
 *
 * Bounded: more than max_unacked records or max_unacked_bytes of them not
 * yet acknowledged make advrec_outbox_full() true, and the owner stops
 * consuming until deliveries catch up (the broker away must not grow the
 * state without bound, and nothing is dropped to keep it bounded).
 *
 * Not thread-safe: one thread adds, stages, produces and serves delivery
 * reports (rd_kafka_poll on that thread).
 */
#ifndef ADVREC_OUTBOX_H
#define ADVREC_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "kafka.h"
#include "store.h"

/*
 * Delivery tags (the opaque, msg->_private, of every record the daemon's
 * producer sends): the low two bits name the kind, so that the one
 * delivery callback routes each report to the code that produced it
 * (lib/daemon_kafka.c, on_delivery). The rest of the tag is the kind's.
 */
#define ADVREC_TAG_KIND(tag) ((uintptr_t)(tag)&3u)
enum {
    ADVREC_TAG_RECORD = 0,    /* an outbox record: its address (NULL: none) */
    ADVREC_TAG_LIST = 1,      /* an outbox list: user number, slot */
    ADVREC_TAG_CHANGELOG = 2, /* lib/daemon_changelog.c: user number, slot */
    ADVREC_TAG_MODEL = 3,     /* lib/daemon_model.c: nothing more */
};

typedef enum advrec_out_kind_e {
    ADVREC_OUT_LIST = 1,      /* a recommendation list (recomputed when owed) */
    ADVREC_OUT_FLAG = 2,      /* an anomaly flag (exact bytes) */
    ADVREC_OUT_DEAD = 3,      /* a dead letter (exact bytes and headers) */
    ADVREC_OUT_TOMBSTONE = 4, /* a deleted user's list: null value on the
                                 recommendations topic (exact bytes) */
} advrec_out_kind_t;

/* A list's delivery failed: the owner makes user stale again. */
typedef void(advrec_outbox_list_failed_cb)(void *opaque, uint32_t user);

typedef struct advrec_outbox_params_s {
    const char *topic_lists;  /* recommendations */
    const char *topic_flags;  /* anomalies */
    const char *topic_dead;   /* dead letters */
    size_t max_unacked;       /* records (flags, dead letters) */
    size_t max_unacked_bytes; /* ... and their bytes */
    size_t truncate_bytes;    /* value bytes kept of a too-large letter */
    advrec_outbox_list_failed_cb *on_list_failed;
    void *opaque;
} advrec_outbox_params_t;

/* Counters, for the metrics (cumulative unless said otherwise). */
typedef struct advrec_outbox_stats_s {
    uint64_t recorded[5];   /* by kind: records added (lists: produced) */
    uint64_t delivered[5];  /* by kind: acknowledged by the broker */
    uint64_t failed[5];     /* by kind: failed deliveries (retried) */
    uint64_t truncated;     /* dead letters re-sent truncated */
    size_t unacked;         /* gauge: records not yet acknowledged */
    size_t unacked_bytes;   /* gauge: their bytes */
    size_t lists_in_flight; /* gauge: users with a list produced, unacked */
} advrec_outbox_stats_t;

typedef struct advrec_outbox_s advrec_outbox_t;

/*
 * An empty outbox over store (NULL: state in memory; records are then kept
 * only until delivered). The topic strings must outlive the outbox. NULL on
 * no memory. The caller owns it (advrec_outbox_destroy).
 */
advrec_outbox_t *advrec_outbox_new(const advrec_outbox_params_t *params,
                                   advrec_store_t *store);

/*
 * Reads what the last run left owed: the flag and dead-letter records
 * (due again, oldest first; also anomaly flags stored by earlier versions
 * as meta "pending/flag/<seq>") and the users owed a list, returned in
 * *users (malloc'd, the caller frees it; NULL when *n_users is 0) for the
 * owner to mark stale. ADVREC_ERR_STORE on a malformed row (errstr names
 * it), ADVREC_ERR_NOMEM.
 */
advrec_err_t advrec_outbox_load(advrec_outbox_t *outbox, uint32_t **users,
                                size_t *n_users, char *errstr,
                                size_t errstr_size);

/* The producer to send through (owned by the caller; outlives the outbox
 * or is unset with NULL before it goes). */
void advrec_outbox_set_producer(advrec_outbox_t *outbox,
                                advrec_kafka_t *producer);

/*
 * Records a flag, a dead letter or a list tombstone (kind FLAG, DEAD or
 * TOMBSTONE; a tombstone's value is NULL) arising in the
 * current round: key, value and headers (may be NULL; only read) are copied
 * and staged into the store's batch, to be produced after the round's
 * commit (advrec_outbox_committed). ADVREC_ERR_NOMEM: nothing recorded, and
 * the round must not commit (its input would be skipped).
 */
advrec_err_t advrec_outbox_add(advrec_outbox_t *outbox, advrec_out_kind_t kind,
                               const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const rd_kafka_headers_t *headers);

/*
 * Produces a freshly computed list for user (key and value copied). A list
 * is produced at once, without waiting for its inputs' commit (a crash
 * before it replays them and makes the list again); the user stays owed
 * until the delivery report. A produce that fails at once makes the
 * user stale again through on_list_failed. 0, or librdkafka's error.
 */
rd_kafka_resp_err_t advrec_outbox_send_list(advrec_outbox_t *outbox,
                                            uint32_t user, const void *key,
                                            size_t key_len, const void *value,
                                            size_t value_len);

/*
 * The users of lists are slots of the engine's state; the stored set of
 * users owed a list names them by persistent number. *uids (the state's
 * slot -> uid array, which moves as it grows: hence its address; only
 * read) maps them at each stage; NULL (the default) stores slots as they
 * are, which is the same while no user is ever evicted.
 */
void advrec_outbox_set_uids(advrec_outbox_t *outbox, uint32_t *const *uids);

/* Whether a list of user is produced and not yet acknowledged: the user's
 * slot must not be reused until it is. */
int advrec_outbox_owes(const advrec_outbox_t *outbox, uint32_t user);

/* User (a slot) was deleted: their lists in flight are owed no more. A
 * later delivery report of one is recognised by the user number it
 * carries and changes nothing, even when the slot has a new user. */
void advrec_outbox_forget_list(advrec_outbox_t *outbox, uint32_t user);

/*
 * Before a commit: stages the deletion of every record delivered since the
 * last commit and the set of users owed a list: stale[0..n_stale) (the
 * engine's stale users; only read) and the users with a list in flight.
 * ADVREC_ERR_NOMEM / INVALID_ARG (read-only store); then the commit must
 * not happen. Without a store it only forgets delivered records.
 */
advrec_err_t advrec_outbox_stage(advrec_outbox_t *outbox, const uint32_t *stale,
                                 size_t n_stale);

/* After a successful commit: the records it stored may be produced. */
void advrec_outbox_committed(advrec_outbox_t *outbox);

/* When a commit starts in the background (advrec_store_commit_start()):
 * the records recorded so far are in its batch, those recorded later are
 * not. */
void advrec_outbox_committing(advrec_outbox_t *outbox);

/* After that commit's write succeeded: its records (those marked by
 * advrec_outbox_committing()) may be produced; later ones wait for their
 * own commit. */
void advrec_outbox_commit_written(advrec_outbox_t *outbox);

/*
 * Produces every due record (newly committed, failed, or left by the last
 * run), oldest first. A produce that fails at once leaves the rest due
 * until the next call (one error line per call, not one per record).
 */
void advrec_outbox_produce(advrec_outbox_t *outbox);

/*
 * The producer's delivery report for any message the outbox produced
 * (msg->_private is the outbox's tag): a record acknowledged is deleted at
 * the next stage/commit, a failed one is due again (a dead letter too large
 * for the broker becomes its truncated copy), a list settles its user or
 * makes them stale again.
 */
void advrec_outbox_delivered(advrec_outbox_t *outbox,
                             const rd_kafka_message_t *msg);

/*
 * Calls cb for every flag and dead letter stored in store as owed (older
 * stored flags first, then in seq order; key and value NULL for a null
 * one, valid during the call), without an outbox: for advrec-inspect and
 * tests. Stops when cb returns non-zero. ADVREC_ERR_STORE on a malformed
 * row or read error (errstr).
 */
typedef int(advrec_outbox_record_cb)(void *opaque, uint64_t seq,
                                     advrec_out_kind_t kind, const void *key,
                                     size_t key_len, const void *value,
                                     size_t value_len);
advrec_err_t advrec_outbox_read_stored(advrec_store_t *store,
                                       advrec_outbox_record_cb *cb,
                                       void *opaque, char *errstr,
                                       size_t errstr_size);

/* Whether too much is unacknowledged to take more input (see above). */
int advrec_outbox_full(const advrec_outbox_t *outbox);

/* A copy of the counters. */
void advrec_outbox_stats(const advrec_outbox_t *outbox,
                         advrec_outbox_stats_t *stats);

/* Frees every record. Call after the producer is destroyed (no delivery
 * report may name a record any more). NULL is OK. */
void advrec_outbox_destroy(advrec_outbox_t *outbox);

#endif
