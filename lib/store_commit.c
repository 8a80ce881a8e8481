/*
 * store_commit.c - the round's WriteBatch: advrec_store_commit() puts every
 * row changed since the last commit, every new id, the offsets, the model
 * version and the row counts into the store's batch, behind a save point
 * so that a refused or failed commit leaves only what was staged before
 * it (detector rows, pending users, flags and outputs, staged here too).
 * advrec_store_commit_start() hands the batch to a writer thread and
 * stages what follows into a second one (store->inflight while written).
 * Owns nothing: the batches and the encoding buffer are the store's.
 */
#include "store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <rocksdb/c.h>

#include "log.h"

/* --- commit ----------------------------------------------------------- */

/* Free space a commit leaves for RocksDB's own work (memtable flushes,
 * compactions, MANIFEST), on top of twice the batch (WAL, then SST). */
#define SPACE_RESERVE ((uint64_t)64 << 20)

/*
 * Refuses a commit the filesystem cannot take. RocksDB itself would fail
 * the write cleanly and leave nothing of it, but the Debian build of
 * librocksdb 7.8.3 has assertions enabled and aborts the process on a
 * failed WAL append (WritableFileWriter); checking first turns the common
 * case, a full disk, into an error the daemon can report. -1 with errstr.
 */
static int space_left(advrec_store_t *store, char *errstr, size_t errstr_size)
{
    struct statvfs vfs;
    size_t batch = 0;
    uint64_t avail, need;

    (void)rocksdb_writebatch_data(store->batch, &batch);
    if (statvfs(store->dir, &vfs) != 0)
        return 0; /* cannot tell: let RocksDB try */
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    need = 2 * (uint64_t)batch + SPACE_RESERVE;
    if (avail >= need)
        return 0;
    advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                  "commit to state.dir %s refused: %llu bytes free, a %zu "
                  "byte batch needs %llu (filesystem full); nothing of it "
                  "was written",
                  store->dir, (unsigned long long)avail, batch,
                  (unsigned long long)need);
    return -1;
}

/*
 * Drops what this commit added to the batch (back to its save point). The C
 * API's errptr must not be NULL: librocksdb's SaveError() asserts it even
 * on success, and the Debian build keeps assertions, so a NULL there
 * aborted the process on every refused or failed commit.
 */
static void rollback(advrec_store_t *store)
{
    char *rocks = NULL;

    rocksdb_writebatch_rollback_to_save_point(store->batch, &rocks);
    if (rocks)
        log_err("state.dir %s: cannot roll the batch back: %s", store->dir,
                rocks);
    rocksdb_free(rocks);
}

static void put_row(advrec_store_t *store, int cf, const char *id, size_t size)
{
    rocksdb_writebatch_put_cf(store->batch, store->cf[cf], id, strlen(id),
                              (const char *)store->buf, size);
}

struct advrec_store_row_ref_s {
    const char *id; /* the row's key */
    uint32_t idx;
};

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct advrec_store_row_ref_s *)a)->id,
                  ((const struct advrec_store_row_ref_s *)b)->id);
}

/*
 * Lists in store->order the rows of one table a commit writes: those
 * changed since the last commit and those interned since (index >= hw),
 * sorted by key. RocksDB's memtable (a skip list) inserts keys that come
 * in order at a fraction of the cost of random ones: it resumes its search
 * from the previous insert. The count, or SIZE_MAX on no memory.
 */
static size_t order_rows(advrec_store_t *store, advrec_state_t *state,
                         int is_items, const advrec_rows_t *rows, uint32_t hw)
{
    size_t n = 0, cap = (size_t)rows->n_dirty + (rows->n - hw);

    if (cap > store->order_cap) {
        void *o = realloc(store->order, cap * sizeof(*store->order));
        if (!o)
            return SIZE_MAX;
        store->order = o;
        store->order_cap = cap;
    }
    for (uint32_t d = 0; d < rows->n_dirty; d++)
        if (rows->dirty_list[d] < hw)
            store->order[n++].idx = rows->dirty_list[d];
    for (uint32_t x = hw; x < rows->n; x++)
        store->order[n++].idx = x;
    for (size_t r = 0; r < n;) {
        uint32_t x = store->order[r].idx;
        const char *id = is_items ? advrec_state_item_name(state, x)
                                  : advrec_state_user_name(state, x);
        /* A user deleted since it changed leaves a free slot: nothing to
         * write (advrec_state_delete_user). */
        if (!id) {
            store->order[r] = store->order[--n];
            continue;
        }
        store->order[r++].id = id;
    }
    /* qsort's array must not be NULL even for 0 elements (UBSan): a
     * commit of offsets only, before any with rows, has no order yet. */
    if (n > 1)
        qsort(store->order, n, sizeof(*store->order), by_key);
    return n;
}

/*
 * Puts the commit's rows, ids, offsets and counters into store->batch
 * behind a save point, checks the filesystem has room for it; *n_rows is
 * the number of rows. On failure the batch is back at its save point.
 */
static advrec_err_t build_batch(advrec_store_t *store, advrec_state_t *state,
                                const advrec_popularity_t *pop,
                                uint64_t version,
                                const advrec_store_offset_t *offsets,
                                size_t n_offsets, uint32_t *n_rows_out,
                                char *errstr, size_t errstr_size)
{
    const advrec_state_params_t *sp = advrec_state_params(state);
    advrec_rows_t *users = advrec_state_users(state);
    advrec_rows_t *items = advrec_state_items(state);
    size_t isz;
    unsigned char num[8], idk[5];
    char key[600];
    uint32_t n_rows = 0;

    if (store->readonly)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s is open read-only", store->dir);
    if (store->broken)
        return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                             "state.dir %s: an earlier commit failed after "
                             "its rows were handed over; restart to replay "
                             "from the last good commit",
                             store->dir);
    if (sp->k != store->params.k || sp->history != store->params.history ||
        advrec_state_user_count(state) < store->users_hw ||
        items->n < store->items_hw)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s: commit of a state that is not "
                             "the one loaded (k=%u history=%u, %u users, %u "
                             "items; store has k=%u history=%u, %u users, "
                             "%u items)",
                             store->dir, sp->k, sp->history,
                             advrec_state_user_count(state), items->n,
                             store->params.k, store->params.history,
                             store->users_hw, store->items_hw);
    isz = advrec_store__item_size(sp->k);
    if (advrec_store__grow_buf((void **)&store->buf, &store->buf_cap, isz))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", store->dir);

    /* Staged detector rows stay in the batch if this commit fails. */
    rocksdb_writebatch_set_save_point(store->batch);
    for (int cf = CF_USERS; cf <= CF_ITEMS; cf++) {
        int is_items = cf == CF_ITEMS;
        const advrec_rows_t *rows = is_items ? items : users;
        /* Users live in slots, so a new one is not told by its index: it
         * is dirty and fresh (advrec_state_user), and every dirty row is
         * written. Items are dense: those from hw on are new. */
        uint32_t hw = is_items ? store->items_hw : users->n;
        size_t n = order_rows(store, state, is_items, rows, hw);
        if (n == SIZE_MAX) {
            rollback(store);
            return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                 "state.dir %s: out of memory", store->dir);
        }
        for (size_t r = 0; r < n; r++) {
            uint32_t x = store->order[r].idx;
            size_t sz = is_items ? isz : advrec_store__user_row_size(state, x);
            if (advrec_store__grow_buf((void **)&store->buf, &store->buf_cap,
                                       sz)) {
                rollback(store);
                return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                     "state.dir %s: out of memory", store->dir);
            }
            if (is_items)
                advrec_store__encode_item(store->buf, state, pop, x);
            else
                advrec_store__encode_user(store->buf, state, x);
            put_row(store, cf, store->order[r].id, sz);
            n_rows++;
        }
        /* Every row interned since the last commit, dirty or not (an
         * event may intern a user and then fail on its item), has its
         * dense index recorded, so that indices on disk stay dense and a
         * load reproduces them. */
        for (uint32_t x = hw; is_items && x < rows->n; x++) {
            const char *id = advrec_state_item_name(state, x);
            id_key(idk, 1, x);
            rocksdb_writebatch_put_cf(store->batch, store->cf[CF_IDS],
                                      (const char *)idk, 5, id, strlen(id));
        }
        for (uint32_t d = 0; !is_items && d < rows->n_dirty; d++) {
            uint32_t x = rows->dirty_list[d];
            const char *id = advrec_state_user_name(state, x);
            if (!id || !advrec_state_user_ext(state)->fresh[x])
                continue;
            id_key(idk, 0, advrec_state_user_ext(state)->uid[x]);
            rocksdb_writebatch_put_cf(store->batch, store->cf[CF_IDS],
                                      (const char *)idk, 5, id, strlen(id));
        }
    }
    for (size_t o = 0; o < n_offsets; o++) {
        size_t kl = offset_key(key, sizeof(key), offsets[o].topic,
                               offsets[o].partition);
        put_u64(num, (uint64_t)offsets[o].next);
        rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], key, kl,
                                  (const char *)num, 8);
    }
    put_u64(num, store->seq + 1);
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_STATE_SEQ,
                              strlen(META_STATE_SEQ), (const char *)num, 8);
    put_u64(num, version);
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_VERSION,
                              strlen(META_VERSION), (const char *)num, 8);
    put_u32(num, advrec_state_user_count(state));
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_N_USERS,
                              strlen(META_N_USERS), (const char *)num, 4);
    put_u32(num, advrec_state_users_live(state));
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_N_LIVE,
                              strlen(META_N_LIVE), (const char *)num, 4);
    put_u32(num, items->n);
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_N_ITEMS,
                              strlen(META_N_ITEMS), (const char *)num, 4);

    if (space_left(store, errstr, errstr_size)) {
        rollback(store);
        return ADVREC_ERR_STORE;
    }
    *n_rows_out = n_rows;
    return ADVREC_OK;
}

/* After a commit's batch is written: the rows it holds are on disk. */
static void written(advrec_store_t *store)
{
    store->seq++;
    advrec_store__witness_write(store);
}

advrec_err_t advrec_store_commit(advrec_store_t *store, advrec_state_t *state,
                                 const advrec_popularity_t *pop,
                                 uint64_t version,
                                 const advrec_store_offset_t *offsets,
                                 size_t n_offsets, char *errstr,
                                 size_t errstr_size)
{
    advrec_rows_t *items = advrec_state_items(state);
    char *rocks = NULL;
    uint32_t n_rows = 0;
    advrec_err_t err;

    if ((err = advrec_store_commit_wait(store, errstr, errstr_size)))
        return err;
    if ((err = build_batch(store, state, pop, version, offsets, n_offsets,
                           &n_rows, errstr, errstr_size)))
        return err;
    rocksdb_write(store->db, store->wopts, store->batch, &rocks);
    if (rocks) {
        char what[160];
        rollback(store);
        snprintf(what, sizeof(what),
                 "commit of %u rows and %zu offsets failed; nothing of it "
                 "was written to",
                 n_rows, n_offsets);
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  what, store->dir);
    }
    rocksdb_writebatch_clear(store->batch);
    written(store);
    advrec_state_clear_dirty(state);
    store->users_hw = advrec_state_user_count(state);
    store->items_hw = items->n;
    return ADVREC_OK;
}

/* The writer thread of advrec_store_commit_start(): one rocksdb_write. */
static void *write_main(void *arg)
{
    advrec_store_t *store = arg;
    char *rocks = NULL;

    rocksdb_write(store->db, store->wopts, store->inflight, &rocks);
    store->inflight_err = rocks;
    atomic_store(&store->inflight_done, 1);
    return NULL;
}

advrec_err_t
advrec_store_commit_start(advrec_store_t *store, advrec_state_t *state,
                          const advrec_popularity_t *pop, uint64_t version,
                          const advrec_store_offset_t *offsets,
                          size_t n_offsets, char *errstr, size_t errstr_size)
{
    advrec_rows_t *items = advrec_state_items(state);
    rocksdb_writebatch_t *b;
    uint32_t n_rows = 0;
    advrec_err_t err;

    if ((err = advrec_store_commit_wait(store, errstr, errstr_size)))
        return err;
    if (!store->inflight && !(store->inflight = rocksdb_writebatch_create()))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", store->dir);
    if ((err = build_batch(store, state, pop, version, offsets, n_offsets,
                           &n_rows, errstr, errstr_size)))
        return err;
    /* The batch goes to the writer; what is staged from now on goes into
     * the other one, for the next commit. */
    b = store->inflight;
    store->inflight = store->batch;
    store->batch = b;
    store->inflight_rows = n_rows;
    store->inflight_offsets = n_offsets;
    store->inflight_err = NULL;
    atomic_store(&store->inflight_done, 0);
    if (pthread_create(&store->writer, NULL, write_main, store) != 0) {
        /* No thread: write it here. */
        write_main(store);
        store->writing = 2;
    } else {
        store->writing = 1;
    }
    advrec_state_clear_dirty(state);
    store->users_hw = advrec_state_user_count(state);
    store->items_hw = items->n;
    return ADVREC_OK;
}

int advrec_store_commit_done(advrec_store_t *store)
{
    return !store->writing || atomic_load(&store->inflight_done);
}

advrec_err_t advrec_store_commit_wait(advrec_store_t *store, char *errstr,
                                      size_t errstr_size)
{
    char what[160], *rocks;

    if (!store->writing)
        return ADVREC_OK;
    if (store->writing == 1)
        pthread_join(store->writer, NULL);
    store->writing = 0;
    rocks = store->inflight_err;
    store->inflight_err = NULL;
    rocksdb_writebatch_clear(store->inflight);
    if (rocks) {
        /* The rows are no longer marked dirty: the store cannot take
         * another commit of this state. */
        store->broken = 1;
        snprintf(what, sizeof(what),
                 "commit of %u rows and %zu offsets failed; nothing of it "
                 "was written to",
                 store->inflight_rows, store->inflight_offsets);
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  what, store->dir);
    }
    written(store);
    return ADVREC_OK;
}

advrec_err_t advrec_store_stage_detector(advrec_store_t *store, const void *key,
                                         size_t key_len, const void *value,
                                         size_t value_len)
{
    if (store->readonly)
        return ADVREC_ERR_INVALID_ARG;
    if (value_len == 0)
        rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_DETECTORS], key,
                                     key_len);
    else
        rocksdb_writebatch_put_cf(store->batch, store->cf[CF_DETECTORS], key,
                                  key_len, value, value_len);
    return ADVREC_OK;
}

advrec_err_t advrec_store_stage_meta(advrec_store_t *store, const char *key,
                                     const void *value, size_t len)
{
    if (store->readonly)
        return ADVREC_ERR_INVALID_ARG;
    if (len == 0)
        rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_META], key,
                                     strlen(key));
    else
        rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], key,
                                  strlen(key), value, len);
    return ADVREC_OK;
}

advrec_err_t advrec_store_stage_user_delete(advrec_store_t *store,
                                            const char *id, uint32_t uid)
{
    unsigned char idk[5];
    char dk[ADVREC_ID_MAX + 1];
    size_t n = strlen(id);

    if (store->readonly || n + 1 > sizeof(dk))
        return ADVREC_ERR_INVALID_ARG;
    rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_USERS], id, n);
    id_key(idk, 0, uid);
    rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_IDS],
                                 (const char *)idk, 5);
    /* The detectors' row of a user (lib/detect_store.c): 'u' + id. */
    dk[0] = 'u';
    memcpy(dk + 1, id, n);
    rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_DETECTORS], dk,
                                 n + 1);
    return ADVREC_OK;
}

advrec_err_t advrec_store_stage_pending(advrec_store_t *store,
                                        const uint32_t *users, size_t n)
{
    unsigned char *p;

    if (store->readonly)
        return ADVREC_ERR_INVALID_ARG;
    if (n == 0) {
        rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_META],
                                     META_PENDING, strlen(META_PENDING));
        return ADVREC_OK;
    }
    if (advrec_store__grow_buf((void **)&store->buf, &store->buf_cap, n * 4))
        return ADVREC_ERR_NOMEM;
    p = (unsigned char *)store->buf;
    for (size_t i = 0; i < n; i++)
        put_u32(p + 4 * i, users[i]);
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], META_PENDING,
                              strlen(META_PENDING), (const char *)p, n * 4);
    return ADVREC_OK;
}

/* meta key of a pending output: prefix (META_FLAG_PF, META_OUT_PF), then
 * seq big-endian so that keys sort in the order the outputs arose. */
static size_t seq_key(char *key, const char *prefix, uint64_t seq)
{
    size_t pl = strlen(prefix);

    memcpy(key, prefix, pl);
    for (int i = 0; i < 8; i++)
        key[pl + (size_t)i] = (char)(unsigned char)(seq >> (56 - 8 * i));
    return pl + 8;
}

advrec_err_t advrec_store_stage_flag(advrec_store_t *store, uint64_t seq,
                                     const void *key, size_t key_len,
                                     const void *value, size_t value_len)
{
    char k[32];
    size_t kl = seq_key(k, META_FLAG_PF, seq);
    unsigned char *p;

    if (store->readonly || (value && key_len > 65536))
        return ADVREC_ERR_INVALID_ARG;
    if (!value) {
        rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_META], k, kl);
        return ADVREC_OK;
    }
    if (advrec_store__grow_buf((void **)&store->buf, &store->buf_cap,
                               FLAG_HEADER + key_len + value_len))
        return ADVREC_ERR_NOMEM;
    p = store->buf;
    p[0] = FLAG_FORMAT;
    put_u32(p + 1, (uint32_t)key_len);
    memcpy(p + FLAG_HEADER, key, key_len);
    memcpy(p + FLAG_HEADER + key_len, value, value_len);
    rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], k, kl,
                              (const char *)p,
                              FLAG_HEADER + key_len + value_len);
    return ADVREC_OK;
}

advrec_err_t advrec_store_stage_output(advrec_store_t *store, uint64_t seq,
                                       const void *rec, size_t len)
{
    char k[32];
    size_t kl = seq_key(k, META_OUT_PF, seq);

    if (store->readonly)
        return ADVREC_ERR_INVALID_ARG;
    if (rec)
        rocksdb_writebatch_put_cf(store->batch, store->cf[CF_META], k, kl,
                                  (const char *)rec, len);
    else
        rocksdb_writebatch_delete_cf(store->batch, store->cf[CF_META], k, kl);
    return ADVREC_OK;
}
