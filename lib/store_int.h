/*
 * store_int.h - the store's internals, shared by its files and by
 * nothing else (not installed):
 *
 *   store.c         the RocksDB handle: state.dir probe, open (read-write, or
 *                   read-only as a secondary), fingerprint, close,
 *                   checkpoints; the read and error helpers below;
 *   store_row.c     the value format of user and item rows (docs/STATE.md):
 *                   sizes, encode, check, decode, format 1 rows' sets;
 *   store_commit.c  the round's WriteBatch: the commit, and the detector
 *                   rows, pending users, flags and outputs staged into it;
 *   store_load.c    the readers: the load at start, pending users, flags
 *                   and outputs, offsets, detectors, the tools' look-ups;
 *   store_lineage.c the state's identity and commit sequence, the
 *                   ADVREC-COMMITTED witness, lost commits found at open;
 *   store_schema.c  the Schema Registry cache: schemas by id, our ids by
 *                   subject.
 *
 * The row offsets and meta keys live here rather than in one file: the
 * readers index into the values they fetch (index, tail, popularity key),
 * and the commit writes the meta keys the readers read.
 */
#ifndef ADVREC_STORE_INT_H
#define ADVREC_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store.h"

/* Values are written as the host lays them out; RocksDB files must read the
 * same on every machine, so only little-endian hosts are supported. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the store writes host floats as little-endian");

enum { CF_DEFAULT, CF_USERS, CF_ITEMS, CF_IDS, CF_DETECTORS, CF_META, CF_N };

/* The families' names, indexed by CF_*. */
extern const char *const advrec_store__cf_names[CF_N];

#define KIND_USER 'U'
#define KIND_ITEM 'I'

/* Row layout: header and common part, then factors, then the tail. */
#define OFF_KIND      0
#define OFF_FORMAT    1
#define OFF_K         2
#define OFF_IDX       4
#define OFF_UPDATES   8
#define OFF_BIAS      12
#define OFF_BIAS_ACC  16
#define OFF_CLICKS    24
#define OFF_PURCHASES 32
#define OFF_W         40
#define USER_TAIL     32 /* history..last_ts_ms, then the ring */
#define SETS_HEADER   4  /* format 2 on: u16 purchased count, u16 seen count */
#define FORMAT_V1     1  /* user rows without sets: read, never written */
#define FORMAT_V2     2 /* k Adagrad accumulators per row: read, never written */
#define FORMAT_V3     3 /* one (row-wise) accumulator per row */

#define META_FORMAT     "format"
#define META_K          "model.k"
#define META_HISTORY    "recs.history"
#define META_VERSION    "model/version"
#define META_N_USERS    "count/users"
#define META_N_ITEMS    "count/items"
#define META_N_LIVE     "count/live" /* users not deleted (absent: users) */
#define META_OFFSET_PF  "offset/"
#define META_PENDING    "pending/users"
#define META_FLAG_PF    "pending/flag/"
#define META_OUT_PF     "pending/out/"
#define META_STATE_ID   "state/id"
#define META_STATE_SEQ  "state/seq"
#define META_SCHEMA_PF  "registry/id/"      /* + big-endian id: the text */
#define META_SUBJECT_PF "registry/subject/" /* + subject: u32 id, text */
#define FLAG_FORMAT     1 /* first byte of a pending flag row */
#define FLAG_HEADER     5 /* format, u32 key length */

struct advrec_store_s {
    char *dir;
    char *secondary_dir; /* read-only store: RocksDB's info log lives here */
    int readonly;
    advrec_store_params_t params;
    rocksdb_options_t *opts;
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CF_N];
    rocksdb_column_family_handle_t **extra; /* families we do not know */
    size_t n_extra;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    rocksdb_readoptions_t *scan; /* full scans: no cache fill, readahead */
    rocksdb_writebatch_t *batch;
    /* advrec_store_commit_start(): the batch being written by writer
     * (writing 1; 2: written already, in the caller's thread), its rows
     * and offsets (for the error), RocksDB's error; broken once such a
     * write failed. */
    rocksdb_writebatch_t *inflight;
    pthread_t writer;
    int writing;
    atomic_int inflight_done;
    char *inflight_err;
    uint32_t inflight_rows;
    size_t inflight_offsets;
    int broken;
    unsigned char *buf;
    size_t buf_cap;
    struct advrec_store_row_ref_s *order; /* a commit's rows, by key */
    size_t order_cap;
    char *key;
    size_t key_cap;
    uint32_t users_hw, items_hw; /* rows [0, hw) are on disk */
    int upgrade;  /* the dir says format 1 or 2 (this): meta/format becomes
                     ours on open */
    char id[33];  /* lineage: meta/state/id ("" read-only, none) */
    uint64_t seq; /* number of the last commit (meta/state/seq) */
    uint64_t witness_seq; /* ADVREC-COMMITTED's at open (0: none) */
    int witness_fd;       /* -1 until the first commit opens it */
    int witness_failed;   /* writes failed (logged once) */
    char lost[1024];      /* why acknowledged commits are missing, or "" */
};

static inline void put_u16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}
static inline void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}
static inline void put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v));
}
static inline uint16_t get_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}
static inline uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void id_key(unsigned char key[5], int items, uint32_t idx)
{
    key[0] = items ? 'i' : 'u';
    key[1] = (unsigned char)(idx >> 24);
    key[2] = (unsigned char)(idx >> 16);
    key[3] = (unsigned char)(idx >> 8);
    key[4] = (unsigned char)idx;
}

static inline size_t offset_key(char *key, size_t size, const char *topic,
                                int32_t partition)
{
    int n = snprintf(key, size, META_OFFSET_PF "%s/%d", topic, (int)partition);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Turns a RocksDB error string into ours (and frees it). Returns err. */
advrec_err_t advrec_store__rerr(char *rocks, advrec_err_t err, char *errstr,
                                size_t errstr_size, const char *what,
                                const char *dir);

/* Grows *p (realloc) to hold need bytes; *cap is its size. -1 (and *p
 * unchanged) when out of memory. */
int advrec_store__grow_buf(void **p, size_t *cap, size_t need);

/* Reads key of family cf; *val (rocksdb_free) is NULL when absent, or
 * when the family is. ADVREC_ERR_STORE with errstr naming the key. */
advrec_err_t advrec_store__get(advrec_store_t *store, int cf, const char *key,
                               size_t key_len, char **val, size_t *len,
                               char *errstr, size_t errstr_size);

/* --- lineage (store_lineage.c) --- */

/* Reads meta/state/id and meta/state/seq into store->id and store->seq
 * (absent: "" and 0). ADVREC_ERR_STORE on a read error. */
advrec_err_t advrec_store__lineage_read(advrec_store_t *store, char *errstr,
                                        size_t errstr_size);

/* Makes a random store->id when it has none: 1 made, 0 had one, -1 no
 * randomness (getrandom failed). */
int advrec_store__lineage_new_id(advrec_store_t *store);

/* Compares the recovered store->seq with the ADVREC-COMMITTED witness and
 * sets store->lost when acknowledged commits are missing. wal_damage is
 * RocksDB's report of a WAL that did not replay whole, or NULL. */
void advrec_store__lineage_check(advrec_store_t *store, const char *wal_damage);

/* Rewrites ADVREC-COMMITTED with store->id and store->seq (after a commit
 * RocksDB acknowledged). A failure is logged once; nothing else fails. */
void advrec_store__witness_write(advrec_store_t *store);

/* --- rows (store_row.c) --- */

/* The size of an item row for k factors (this build's format). */
size_t advrec_store__item_size(uint32_t k);

/* Where a row of format format (1..3) continues after its factors and
 * Adagrad accumulators: a user's tail, an item's popularity key. */
size_t advrec_store__tail_off(int format, uint32_t k);

/* The row's Adagrad accumulator from checked value v: format 3's one
 * float, or the mean of the k per-coordinate ones of formats 1 and 2. */
float advrec_store__decode_acc(const unsigned char *v, uint32_t k);

/* The size of user idx's row as advrec_store__encode_user() writes it. */
size_t advrec_store__user_row_size(advrec_state_t *state, uint32_t idx);

/* Encodes user idx of state into b (advrec_store__user_row_size() bytes). */
void advrec_store__encode_user(unsigned char *b, advrec_state_t *state,
                               uint32_t idx);

/* Encodes item idx of state into b (advrec_store__item_size() bytes), with
 * its popularity key from pop (-INFINITY when pop is NULL). */
void advrec_store__encode_item(unsigned char *b, advrec_state_t *state,
                               const advrec_popularity_t *pop, uint32_t idx);

/*
 * Checks a stored value's header and size; fills errstr naming the key.
 * Items: format 1 or 2 (the same layout), or 3 (one accumulator). Users:
 * format 1 (up to the ring), format 2 or 3 (the ring, then the sets as
 * their counts say).
 */
advrec_err_t advrec_store__check_value(const advrec_store_t *store, char kind,
                                       const char *key, size_t key_len,
                                       const unsigned char *v, size_t len,
                                       char *errstr, size_t errstr_size);

/* Copies the common part of checked value v into row idx of rows. */
void advrec_store__decode_common(const unsigned char *v, advrec_rows_t *rows,
                                 uint32_t idx);

/* Reads a user row's tail t (at advrec_store__tail_off()): the ring of h
 * entries into hist, its length and head, the last origin and its time. */
void advrec_store__decode_user_tail(const unsigned char *t, uint32_t h,
                                    uint32_t *hist, uint16_t *len,
                                    uint16_t *head, advrec_origin_t *last,
                                    int64_t *last_ts);

/*
 * Fills user idx's purchase and seen sets in state from row v (checked by
 * advrec_store__check_value()): a format 2 row carries them (a set longer
 * than the state's bound keeps its most recent items); a format 1 row has
 * none, so they are rebuilt from its history ring (already decoded into
 * state), oldest entry first, as events would have built them.
 * ADVREC_ERR_STORE for a malformed set (the caller names the user), NOMEM.
 */
advrec_err_t advrec_store__decode_user_sets(const advrec_store_t *store,
                                            advrec_state_t *state, uint32_t idx,
                                            const char *id,
                                            const unsigned char *v);

#endif
