/*
 * store.h - advrecd's persistent state: RocksDB (C API) in state.dir.
 *
 * Column families (docs/STATE.md has the byte layouts):
 *   users      external user id -> version header, dense index, counters,
 *              factors, Adagrad accumulators, history ring, last origin,
 *              the user's purchase and seen sets (variable length)
 *   items      external item id -> the same row fields plus the popularity
 *              key (popularity.h)
 *   ids        'u'|'i' + big-endian u32 dense index -> external id: the
 *              dense indices in index order, so a load re-interns every id
 *              in exactly the order it was first seen and a replay after a
 *              restart is bit-identical; also lets a tool name the items
 *              of a user's history without loading every item
 *   detectors  entity key -> anomaly detector state (opaque bytes staged
 *              by the detector module; see advrec_store_stage_detector)
 *   meta       "format", "model.k", "recs.history" (the fingerprint),
 *              "model/version", "count/users", "count/items",
 *              "offset/<topic>/<partition>" -> next offset to read,
 *              "pending/users" (users owed a list), "pending/flag/" +
 *              big-endian u64 seq -> an anomaly flag owed to the broker
 *
 * Semantics: advrec_store_commit() writes ONE WriteBatch with every row
 * changed since the last commit, every new id, the staged detector rows,
 * the next offset of every input partition consumed, the model version and
 * the row counts. RocksDB applies a batch atomically (WAL on), so after a
 * crash at any instant the state on disk is that of some round boundary
 * together with the offsets that produced it: the daemon seeks to those
 * offsets and replays exactly the records whose effects were lost.
 *
 * Ownership: the store owns the RocksDB handles, a reusable WriteBatch and
 * an encoding buffer. It never owns the state or the popularity table it
 * loads into or commits from; those are the engine's. One store is bound
 * to one state: load into an empty state first (or start with an empty
 * state on a new dir), then commit that same state every round. Not
 * thread-safe; one thread of control per store (a read-only store in
 * another process may run alongside).
 */
#ifndef ADVREC_STORE_H
#define ADVREC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "popularity.h"
#include "state.h"

/* Version of the value layout; part of the fingerprint. */
#define ADVREC_STORE_FORMAT 3

typedef struct advrec_store_s advrec_store_t;

/* When a commit reaches the disk (state.sync). */
typedef enum advrec_store_sync_e {
    ADVREC_STORE_SYNC_NONE = 0,   /* WriteBatch without fsync */
    ADVREC_STORE_SYNC_COMMIT = 1, /* fsync every round's WriteBatch */
} advrec_store_sync_t;

/* What the state dir must agree with, and how to write; filled from a
 * configuration by advrec_params_store() (params.h). */
typedef struct advrec_store_params_s {
    uint32_t k;       /* model.k: floats per factor row */
    uint32_t history; /* recs.history: entries of a user's ring */
    int sync;         /* advrec_store_sync_t (state.sync) */
    /* state.memory.limit (0: none): RocksDB's memtables, all families
     * together, are then held to an eighth of it (db_write_buffer_size) */
    uint64_t memory_limit;
} advrec_store_params_t;

/* Next offset to read from one input partition. topic is only read. */
typedef struct advrec_store_offset_s {
    const char *topic;
    int32_t partition;
    int64_t next;
} advrec_store_offset_t;

/*
 * Opens the state in dir for reading and writing, creating dir (and its
 * parents) and a new database when dir does not exist or is empty.
 * On success *storep is a new store the caller owns (advrec_store_close).
 *
 * Errors (nothing in dir is written on any of them):
 *  - ADVREC_ERR_STATE_MISMATCH: dir was written under another fingerprint;
 *    errstr says e.g. "state.dir /x was written with model.k=64, this
 *    configuration has model.k=32".
 *  - ADVREC_ERR_STORE: dir cannot be created or read, is corrupt, is not
 *    an advrec state dir (files but no RocksDB CURRENT, or a database
 *    without our fingerprint that holds data), or is locked by another
 *    process; errstr carries RocksDB's reason and the path.
 */
advrec_err_t advrec_store_open(const char *dir,
                               const advrec_store_params_t *params,
                               advrec_store_t **storep, char *errstr,
                               size_t errstr_size);

/*
 * Opens dir read-only for tools, as a RocksDB secondary instance (its own
 * info log goes to a private temporary directory, removed on close), so it
 * works while a daemon has dir open; advrec_store_catch_up() follows the
 * daemon's later commits. The fingerprint is read from dir, not checked:
 * advrec_store_params() tells what was found. Commit, stage and checkpoint
 * return ADVREC_ERR_INVALID_ARG on such a store. Errors as
 * advrec_store_open() (ADVREC_ERR_STORE when dir holds no advrec state).
 */
advrec_err_t advrec_store_open_readonly(const char *dir,
                                        advrec_store_t **storep, char *errstr,
                                        size_t errstr_size);

/* Catches a read-only store up with the primary's writes. */
advrec_err_t advrec_store_catch_up(advrec_store_t *store, char *errstr,
                                   size_t errstr_size);

/* Closes the database and frees the store; NULL is fine. Uncommitted
 * staged detector rows are dropped. */
void advrec_store_close(advrec_store_t *store);

/*
 * RocksDB's own size figures summed over every column family, for the
 * metrics: rocksdb.total-sst-files-size into *sst_bytes and
 * rocksdb.estimate-pending-compaction-bytes into *pending_bytes. A
 * property RocksDB does not report counts as 0. Cheap (no I/O); the
 * processing thread only.
 */
void advrec_store_sizes(advrec_store_t *store, uint64_t *sst_bytes,
                        uint64_t *pending_bytes);

/* The fingerprint in force (owned by the store). sync is the caller's for
 * a read-write store and ADVREC_STORE_SYNC_NONE for a read-only one. */
const advrec_store_params_t *advrec_store_params(const advrec_store_t *store);

/* The directory (owned by the store). */
const char *advrec_store_dir(const advrec_store_t *store);

/*
 * Loads every row into state (which must be empty and have the store's k
 * and history) re-interning ids in dense-index order, so every index is the
 * one the rows had when committed; sets every stored popularity key in pop
 * (may be NULL: skipped) and the model version in *version (may be NULL).
 * The store then considers those rows persisted. Errors: ADVREC_ERR_STORE
 * for a corrupt row (errstr names the family and key), ADVREC_ERR_FULL when
 * the state's max_users/max_items is lower than what is stored, NOMEM,
 * INVALID_ARG for a non-empty or mismatched state. On error state may hold
 * part of the rows: destroy it.
 */
advrec_err_t advrec_store_load(advrec_store_t *store, advrec_state_t *state,
                               advrec_popularity_t *pop, uint64_t *version,
                               char *errstr, size_t errstr_size);

/*
 * Loads the items (ids, rows, popularity keys) and the model version into
 * an empty state and numbers new users after the stored ones, for a state
 * whose users are read back on demand (advrec_store_load_user:
 * state.memory.limit); the store then considers the state persisted, so
 * it may be committed. Errors as advrec_store_load().
 */
advrec_err_t advrec_store_load_lazy(advrec_store_t *store,
                                    advrec_state_t *state,
                                    advrec_popularity_t *pop, uint64_t *version,
                                    char *errstr, size_t errstr_size);

/*
 * One detector row by key, copied into *value (malloc'd, the caller frees
 * it) and *len. ADVREC_ERR_NOT_FOUND when absent, ADVREC_ERR_STORE on a
 * read error, NOMEM.
 */
advrec_err_t advrec_store_get_detector(advrec_store_t *store, const void *key,
                                       size_t key_len, void **value,
                                       size_t *len, char *errstr,
                                       size_t errstr_size);

/*
 * Loads only the items (ids, rows, popularity keys) into an empty state,
 * for a tool that scores one stored user against every item. The store
 * does not consider anything persisted afterwards: never commit such a
 * state. Errors as advrec_store_load().
 */
advrec_err_t advrec_store_load_items(advrec_store_t *store,
                                     advrec_state_t *state,
                                     advrec_popularity_t *pop, char *errstr,
                                     size_t errstr_size);

/*
 * The stored next offset of topic/partition in *next. ADVREC_ERR_NOT_FOUND
 * when none is stored (the partition was never consumed into this state:
 * start from the consumer's auto.offset.reset); ADVREC_ERR_STORE on a read
 * error or a malformed value.
 */
advrec_err_t advrec_store_offset(advrec_store_t *store, const char *topic,
                                 int32_t partition, int64_t *next, char *errstr,
                                 size_t errstr_size);

/* Calls cb for every stored offset in key order (topic and the offset are
 * valid during the call only); stops and returns early when cb returns
 * non-zero. */
typedef int(advrec_store_offset_cb)(void *opaque,
                                    const advrec_store_offset_t *offset);
advrec_err_t advrec_store_offsets_foreach(advrec_store_t *store,
                                          advrec_store_offset_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size);

/*
 * The state's lineage (docs/STATE.md, "Lineage: lost commits"): its id (32
 * hex characters, random, made when the state was created; "" for a
 * read-only store of a state that has none) and the number of its last
 * commit (0 before the first; advrec_store_commit() adds one). The daemon
 * writes both into the metadata of the offsets it commits to Kafka, so a
 * later start can tell that the state is behind what was committed from it.
 * The id string lives as long as the store.
 */
const char *advrec_store_id(const advrec_store_t *store);
uint64_t advrec_store_seq(const advrec_store_t *store);

/* Makes the next commit's number at least seq + 1: after the daemon chose
 * to go on from a state that lost commits, the numbers the lost ones had
 * (still in Kafka's metadata) must not be taken for this state's again. */
void advrec_store_seq_raise(advrec_store_t *store, uint64_t seq);

/*
 * 1 when the open found that the state lacks commits it had acknowledged
 * (the ADVREC-COMMITTED witness names a later commit than the state holds,
 * or RocksDB could not replay the whole WAL and there is no witness to
 * clear it), with a sentence saying so copied into buf; 0 otherwise. The
 * state is then that of an earlier commit, with that commit's offsets.
 */
int advrec_store_lost(const advrec_store_t *store, char *buf, size_t size);

/*
 * A meta entry of another module (key outside the store's own: the state
 * changelog's "changelog/<partition>"), staged for the next
 * advrec_store_commit() in the same batch; len 0 deletes the key.
 * ADVREC_ERR_INVALID_ARG on a read-only store.
 */
advrec_err_t advrec_store_stage_meta(advrec_store_t *store, const char *key,
                                     const void *value, size_t len);

/* Reads meta entry key into buf (at most size bytes, its length in *len):
 * ADVREC_ERR_NOT_FOUND when absent, ADVREC_ERR_STORE on a read error. */
advrec_err_t advrec_store_get_meta(advrec_store_t *store, const char *key,
                                   void *buf, size_t size, size_t *len,
                                   char *errstr, size_t errstr_size);

/* The commit number ADVREC-COMMITTED held at open (0: none). */
uint64_t advrec_store_witness_seq(const advrec_store_t *store);

/*
 * Stages one detector row (key and value are copied) to be written by the
 * next advrec_store_commit() in the same batch; an empty value (len 0)
 * deletes the key. ADVREC_ERR_INVALID_ARG on a read-only store.
 */
advrec_err_t advrec_store_stage_detector(advrec_store_t *store, const void *key,
                                         size_t key_len, const void *value,
                                         size_t value_len);

/* Calls cb for every detector row (valid during the call only); stops when
 * cb returns non-zero. */
typedef int(advrec_store_kv_cb)(void *opaque, const void *key, size_t key_len,
                                const void *value, size_t value_len);
advrec_err_t advrec_store_detectors_foreach(advrec_store_t *store,
                                            advrec_store_kv_cb *cb,
                                            void *opaque, char *errstr,
                                            size_t errstr_size);

/*
 * The Schema Registry cache (store_schema.c): schemas fetched by id, and
 * the ids our own schemas got under their subjects, so a restart while the
 * registry is down still decodes the ids it saw and still writes its
 * outputs' ids. Registry ids never change their schema, so the cache is
 * written at once (one synced put, outside the commit batches: it is not
 * input-derived state) and never invalidated. ADVREC_ERR_INVALID_ARG on a
 * read-only store; ADVREC_ERR_STORE on a RocksDB error.
 */
advrec_err_t advrec_store_put_schema(advrec_store_t *store, int32_t id,
                                     const char *json, size_t len, char *errstr,
                                     size_t errstr_size);

/* Calls cb for every cached schema, by id (json valid during the call,
 * not NUL-terminated); stops when cb returns non-zero. */
typedef int(advrec_store_schema_cb)(void *opaque, int32_t id, const char *json,
                                    size_t len);
advrec_err_t advrec_store_schemas_foreach(advrec_store_t *store,
                                          advrec_store_schema_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size);

/* Records that schema `json` got `id` under `subject`. */
advrec_err_t advrec_store_put_subject_id(advrec_store_t *store,
                                         const char *subject, const char *json,
                                         int32_t id, char *errstr,
                                         size_t errstr_size);

/* The id recorded for exactly `json` under `subject`: ADVREC_ERR_NOT_FOUND
 * if none is (or another schema was recorded there). */
advrec_err_t advrec_store_subject_id(advrec_store_t *store, const char *subject,
                                     const char *json, int32_t *id,
                                     char *errstr, size_t errstr_size);

/*
 * Stages the set of users whose recommendation is owed (stale, or produced
 * but not yet acknowledged by the broker) for the next advrec_store_commit(),
 * replacing the staged or stored set; n = 0 clears it. Persisting it in the
 * round's batch is what makes outputs at-least-once across a crash: a user
 * leaves the stored set only in a commit after their list was delivered.
 * users (uids, advrec_state_user_ext()->uid) is only read.
 * ADVREC_ERR_INVALID_ARG on a read-only store, ADVREC_ERR_NOMEM.
 */
/*
 * Stages the deletion of a user (expired or forgotten) for the next
 * advrec_store_commit(): its row, its id under its number uid and its
 * detector row. Staged before the commit's rows, so a user of the same id
 * made again since is written after it and stays. ADVREC_ERR_INVALID_ARG
 * on a read-only store.
 */
advrec_err_t advrec_store_stage_user_delete(advrec_store_t *store,
                                            const char *id, uint32_t uid);

advrec_err_t advrec_store_stage_pending(advrec_store_t *store,
                                        const uint32_t *users, size_t n);

/*
 * The stored set of owed users (uids): *users is malloc'd (the caller frees it;
 * NULL when *n is 0). ADVREC_ERR_STORE on a malformed value or read error.
 */
advrec_err_t advrec_store_load_pending(advrec_store_t *store, uint32_t **users,
                                       size_t *n, char *errstr,
                                       size_t errstr_size);

/*
 * Stages one anomaly flag record owed to the broker (key and value are the
 * exact bytes produced: the entity id and the Confluent-framed Avro value;
 * both copied) under its sequence number seq for the next
 * advrec_store_commit(); value == NULL (lengths ignored) stages its
 * deletion instead, once its delivery was acknowledged. Stored as
 * meta "pending/flag/" + big-endian seq, so a scan returns flags in the
 * order they were raised (docs/STATE.md). ADVREC_ERR_INVALID_ARG on a
 * read-only store or a key longer than 64 KiB, ADVREC_ERR_NOMEM.
 */
advrec_err_t advrec_store_stage_flag(advrec_store_t *store, uint64_t seq,
                                     const void *key, size_t key_len,
                                     const void *value, size_t value_len);

/*
 * Calls cb for every stored pending flag in seq order (key and value valid
 * during the call only); stops when cb returns non-zero. ADVREC_ERR_STORE
 * on a malformed row (errstr names its seq) or a read error.
 */
typedef int(advrec_store_flag_cb)(void *opaque, uint64_t seq, const void *key,
                                  size_t key_len, const void *value,
                                  size_t value_len);
advrec_err_t advrec_store_flags_foreach(advrec_store_t *store,
                                        advrec_store_flag_cb *cb, void *opaque,
                                        char *errstr, size_t errstr_size);

/*
 * Stages one output record owed to the broker (lib/outbox.c's serialised
 * record; copied) under its sequence number seq for the next
 * advrec_store_commit(); rec == NULL stages its deletion instead, once its
 * delivery was acknowledged. Stored as meta "pending/out/" + big-endian seq,
 * so a scan returns them in the order they were recorded (docs/STATE.md).
 * ADVREC_ERR_INVALID_ARG on a read-only store.
 */
advrec_err_t advrec_store_stage_output(advrec_store_t *store, uint64_t seq,
                                       const void *rec, size_t len);

/*
 * Calls cb for every stored output record in seq order (rec valid during
 * the call only); stops when cb returns non-zero. ADVREC_ERR_STORE on a
 * malformed key or a read error.
 */
typedef int(advrec_store_output_cb)(void *opaque, uint64_t seq, const void *rec,
                                    size_t len);
advrec_err_t advrec_store_outputs_foreach(advrec_store_t *store,
                                          advrec_store_output_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size);

/*
 * Writes, in ONE WriteBatch: every dirty user and item row of state, every
 * row (and its id) interned since the last commit or load, the detector
 * rows staged since, offsets[0..n_offsets) (each topic/partition's next
 * offset; only read), the model version, and the row counts; with fsync
 * when the store was opened with state.sync=commit. pop (may be NULL: keys
 * stored as never seen) gives the items' popularity keys.
 *
 * On success the state's dirty lists are cleared. On failure (ADVREC_ERR_STORE
 * with RocksDB's reason: disk full, I/O error) nothing of the batch is on
 * disk, the dirty lists and staged rows are kept, and a later commit writes
 * their union; the daemon should nevertheless stop, since RocksDB may refuse
 * further writes and a restart replays from the last good commit.
 */
advrec_err_t advrec_store_commit(advrec_store_t *store, advrec_state_t *state,
                                 const advrec_popularity_t *pop,
                                 uint64_t version,
                                 const advrec_store_offset_t *offsets,
                                 size_t n_offsets, char *errstr,
                                 size_t errstr_size);

/*
 * As advrec_store_commit(), but the write runs in a thread of its own: the
 * batch is built here (errors then are advrec_store_commit()'s, and nothing
 * was started), the state's dirty lists are cleared, and the batch handed to
 * the writer; anything staged from then on goes into the next commit. Waits
 * first for a write still running (advrec_store_commit_wait()). The rows
 * are on disk only once advrec_store_commit_wait() returned ADVREC_OK: what
 * must follow the commit (outputs it records, the offsets told to Kafka)
 * waits for that. Checkpoints and reads see the store as of the last write
 * finished.
 */
advrec_err_t
advrec_store_commit_start(advrec_store_t *store, advrec_state_t *state,
                          const advrec_popularity_t *pop, uint64_t version,
                          const advrec_store_offset_t *offsets,
                          size_t n_offsets, char *errstr, size_t errstr_size);

/* Whether the write of advrec_store_commit_start() has finished (1 when none
 * runs): advrec_store_commit_wait() then returns at once. */
int advrec_store_commit_done(advrec_store_t *store);

/*
 * Waits for the write of advrec_store_commit_start(), if one runs; ADVREC_OK
 * when none. On failure (ADVREC_ERR_STORE with RocksDB's reason) nothing of
 * that batch is on disk and its rows are no longer marked dirty: every later
 * commit to this store fails, and the daemon must stop (a restart replays
 * from the last good commit).
 */
advrec_err_t advrec_store_commit_wait(advrec_store_t *store, char *errstr,
                                      size_t errstr_size);

/*
 * Writes a consistent copy of the whole state to dest_dir (which must not
 * exist; same filesystem: hard links, so it is cheap) with RocksDB's
 * checkpoint. A daemon started with state.dir=dest_dir resumes from it;
 * advrec-inspect reads it. ADVREC_ERR_STORE with the reason on failure.
 */
advrec_err_t advrec_store_checkpoint(advrec_store_t *store,
                                     const char *dest_dir, char *errstr,
                                     size_t errstr_size);

/*
 * Writes a checkpoint into a new subdirectory of base_dir (created 0750 if
 * missing) named by UTC time (20261203T141500Z, with .N appended when taken
 * within the same second), and returns its path in path. Errors as
 * advrec_store_checkpoint, and ADVREC_ERR_IO when base_dir cannot be made.
 */
advrec_err_t advrec_store_checkpoint_stamped(advrec_store_t *store,
                                             const char *base_dir, char *path,
                                             size_t path_size, char *errstr,
                                             size_t errstr_size);

/*
 * Loads one stored user by external id into state (which must have the
 * store's k and history, and should hold the items: advrec_store_load_items
 * first, since the user's history and sets name items by dense index):
 * the user (absent from state) takes a slot of state (*idx, may differ
 * from the stored number, which becomes its uid: advrec_state_user_insert)
 * with its counters, factors, history ring, last position and purchase/seen
 * sets (bounded by the state's purchased_max/seen_max; a format 1 row
 * rebuilds them from the ring); the row is clean. For a tool that ranks one
 * user exactly as the daemon would (lib/rank), and for the daemon reading
 * an evicted user back (a state from advrec_store_load_lazy, committed
 * as usual). ADVREC_ERR_NOT_FOUND when absent, ADVREC_ERR_STORE
 * when malformed (errstr names the user), INVALID_ARG, NOMEM, FULL.
 */
advrec_err_t advrec_store_load_user(advrec_store_t *store,
                                    advrec_state_t *state, const char *id,
                                    uint32_t *idx, char *errstr,
                                    size_t errstr_size);

/* One stored row, decoded for tools. Arrays are owned by the row
 * (advrec_store_row_free); hist and last* are only set for users, pop_key
 * only for items. */
typedef struct advrec_store_row_s {
    uint32_t idx; /* dense index */
    uint32_t k;
    float *w;  /* k floats */
    float acc; /* the row's Adagrad accumulator (formats 1, 2: the
                  mean of its k per-coordinate ones) */
    float bias, bias_acc;
    uint32_t updates;
    uint64_t clicks, purchases;
    double pop_key; /* -INFINITY: never seen */
    uint32_t history, hist_len, hist_head;
    uint32_t *hist; /* history entries, ring order (ADVREC_HIST_*) */
    advrec_origin_t last;
    int64_t last_ts_ms;
} advrec_store_row_t;

/*
 * Reads one user's / item's row by external id into *row (caller's struct;
 * its arrays are allocated here and freed by advrec_store_row_free).
 * ADVREC_ERR_NOT_FOUND when absent, ADVREC_ERR_STORE when malformed.
 */
advrec_err_t advrec_store_get_user(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size);
advrec_err_t advrec_store_get_item(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size);
void advrec_store_row_free(advrec_store_row_t *row);

/* The external id of a user (items = 0) or item (items = 1) by dense index,
 * copied into buf (NUL-terminated, truncated to buf_size).
 * ADVREC_ERR_NOT_FOUND when no such index is stored. */
advrec_err_t advrec_store_id_name(advrec_store_t *store, int items,
                                  uint32_t idx, char *buf, size_t buf_size,
                                  char *errstr, size_t errstr_size);

/*
 * Calls cb(opaque, uid, id) for every stored user numbered uid or above, in
 * number order (first seen first), as committed, until cb returns non-zero:
 * how the users not in memory are visited for expiry. ADVREC_ERR_STORE on a
 * read error (errstr).
 */
typedef int(advrec_store_user_cb)(void *opaque, uint32_t uid, const char *id);
advrec_err_t advrec_store_users_from(advrec_store_t *store, uint32_t uid,
                                     advrec_store_user_cb *cb, void *opaque,
                                     char *errstr, size_t errstr_size);

/* What a tool's summary shows. */
typedef struct advrec_store_summary_s {
    uint32_t users, items;  /* committed row counts */
    uint64_t model_version; /* training steps at the last commit */
    size_t offsets;         /* stored partitions */
    size_t detectors;       /* detector rows */
    uint64_t disk_bytes;    /* RocksDB's total SST size, all families */
} advrec_store_summary_t;

advrec_err_t advrec_store_summary(advrec_store_t *store,
                                  advrec_store_summary_t *summary, char *errstr,
                                  size_t errstr_size);

#endif
