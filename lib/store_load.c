/*
 * store_load.c - every reader of the store: the load of the whole state at
 * start (or of the items alone), the pending users, flags and outputs the
 * daemon owes, the stored offsets and detector rows, and the look-ups of
 * the tools (one user or item row, an id by index, a summary). Values are
 * checked and decoded by store_row.c. Owns nothing (the key buffer it
 * copies keys into is the store's); what it allocates for a caller is the
 * caller's, as store.h says function by function.
 */
#include "store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "log.h"

/* --- load ------------------------------------------------------------- */

/* A NUL-terminated copy of a RocksDB key in store->key. */
static const char *key_str(advrec_store_t *store, const char *k, size_t len)
{
    if (advrec_store__grow_buf((void **)&store->key, &store->key_cap, len + 1))
        return NULL;
    memcpy(store->key, k, len);
    store->key[len] = '\0';
    return store->key;
}

static advrec_err_t iter_error(advrec_store_t *store, rocksdb_iterator_t *it,
                               int cf, char *errstr, size_t errstr_size)
{
    char *rocks = NULL, what[64];

    rocksdb_iter_get_error(it, &rocks);
    if (!rocks)
        return ADVREC_OK;
    snprintf(what, sizeof(what), "cannot read family %s of",
             advrec_store__cf_names[cf]);
    return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                              what, store->dir);
}

static advrec_err_t get_u32_meta(advrec_store_t *store, const char *key,
                                 uint64_t *out, size_t width, char *errstr,
                                 size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err = advrec_store__get(store, CF_META, key, strlen(key), &val,
                                         &len, errstr, errstr_size);

    *out = 0;
    if (err || !val)
        return err;
    if (len != width) {
        rocksdb_free(val);
        return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                             "state.dir %s: meta/%s has %zu bytes, want %zu",
                             store->dir, key, len, width);
    }
    *out = width == 4 ? get_u32((unsigned char *)val)
                      : get_u64((unsigned char *)val);
    rocksdb_free(val);
    return ADVREC_OK;
}

/* meta count/live: the users not deleted; a state written before users
 * could be deleted has none, and then every user numbered is live. */
static advrec_err_t get_live(advrec_store_t *store, uint64_t n_users,
                             uint64_t *n_live, char *errstr, size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err =
        advrec_store__get(store, CF_META, META_N_LIVE, strlen(META_N_LIVE),
                          &val, &len, errstr, errstr_size);

    if (err)
        return err;
    if (!val) {
        *n_live = n_users;
        return ADVREC_OK;
    }
    rocksdb_free(val);
    return get_u32_meta(store, META_N_LIVE, n_live, 4, errstr, errstr_size);
}

/* Interns every id of family ids in index order: n_items dense items,
 * n_live users numbered below n_users. */
static advrec_err_t load_ids(advrec_store_t *store, advrec_state_t *state,
                             uint64_t n_users, uint64_t n_live,
                             uint64_t n_items, int items_only, char *errstr,
                             size_t errstr_size)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->scan, store->cf[CF_IDS]);
    uint32_t next[2] = {0, 0}, n_loaded = 0;
    advrec_err_t err = ADVREC_OK;

    /* 'i' sorts before 'u': items first, then users. */
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const unsigned char *k =
            (const unsigned char *)rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl), *id;
        int items;
        uint32_t idx, got;

        if (items_only && kl > 0 && k[0] != 'i')
            break;
        if (kl != 5 || (k[0] != 'u' && k[0] != 'i')) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed key in family ids "
                                "(%zu bytes)",
                                store->dir, kl);
            break;
        }
        items = k[0] == 'i';
        idx = (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 |
              (uint32_t)k[3] << 8 | k[4];
        /* Users are numbered in first-seen order and deleted users leave
         * gaps (expiry, forgetting): each goes to a slot of its own. Items
         * are dense. */
        if (!items && idx >= next[0] && idx < n_users) {
            if (!(id = key_str(store, v, vl))) {
                err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                    "state.dir %s: out of memory", store->dir);
                break;
            }
            if ((err = advrec_state_user_insert(state, id, idx, &got, errstr,
                                                errstr_size)))
                break;
            next[0] = idx + 1;
            n_loaded++;
            continue;
        }
        if (idx != next[items]) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: family ids lists %s index %u "
                                "where %u was expected: indices are not "
                                "dense",
                                store->dir, items ? "item" : "user", idx,
                                next[items]);
            break;
        }
        if (!(id = key_str(store, v, vl))) {
            err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                "state.dir %s: out of memory", store->dir);
            break;
        }
        err = items ? advrec_state_item(state, id, 1, &got, NULL, errstr,
                                        errstr_size)
                    : advrec_state_user(state, id, 1, &got, NULL, errstr,
                                        errstr_size);
        if (err)
            break;
        if (got != idx) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: %s \"%s\" is listed twice in "
                                "family ids (indices %u and %u)",
                                store->dir, items ? "item" : "user", id, got,
                                idx);
            break;
        }
        next[items]++;
    }
    if (!err)
        err = iter_error(store, it, CF_IDS, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    if (items_only)
        n_live = 0;
    if (!err && (n_loaded != n_live || next[1] != n_items))
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: family ids lists %u users and %u "
                            "items, meta counts say %llu and %llu",
                            store->dir, n_loaded, next[1],
                            (unsigned long long)n_live,
                            (unsigned long long)n_items);
    return err;
}

/* Fills the rows of family cf (users or items) into state (and pop). */
static advrec_err_t load_rows(advrec_store_t *store, advrec_state_t *state,
                              advrec_popularity_t *pop, int cf, char *errstr,
                              size_t errstr_size)
{
    int items = cf == CF_ITEMS;
    char kind = items ? KIND_ITEM : KIND_USER;
    advrec_rows_t *rows =
        items ? advrec_state_items(state) : advrec_state_users(state);
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t h = store->params.history, seen = 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->scan, store->cf[cf]);
    advrec_err_t err = ADVREC_OK;

    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *id;
        const unsigned char *v =
            (const unsigned char *)rocksdb_iter_value(it, &vl);
        uint32_t idx;

        if ((err = advrec_store__check_value(store, kind, k, kl, v, vl, errstr,
                                             errstr_size)))
            break;
        if (!(id = key_str(store, k, kl))) {
            err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                "state.dir %s: out of memory", store->dir);
            break;
        }
        err = items ? advrec_state_item(state, id, 0, &idx, NULL, errstr,
                                        errstr_size)
                    : advrec_state_user(state, id, 0, &idx, NULL, errstr,
                                        errstr_size);
        if (err || (items ? idx : ux->uid[idx]) != get_u32(v + OFF_IDX)) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: %s/\"%s\" (index %u) does "
                                "not match family ids",
                                store->dir, advrec_store__cf_names[cf], id,
                                get_u32(v + OFF_IDX));
            break;
        }
        advrec_store__decode_common(v, rows, idx);
        if (items) {
            double key;
            memcpy(&key,
                   v + advrec_store__tail_off(v[OFF_FORMAT], store->params.k),
                   8);
            if (pop && key > -INFINITY &&
                (err = advrec_popularity_set_key(pop, idx, key))) {
                advrec_seterr(err, errstr, errstr_size,
                              "state.dir %s: item \"%s\": popularity key "
                              "%g not restored: %s",
                              store->dir, id, key, advrec_err2str(err));
                break;
            }
        } else {
            advrec_store__decode_user_tail(
                v + advrec_store__tail_off(v[OFF_FORMAT], store->params.k), h,
                ux->hist + (size_t)idx * h, ux->hist_len + idx,
                ux->hist_head + idx, ux->last + idx, ux->last_ts_ms + idx);
            if (ux->hist_len[idx] > h || ux->hist_head[idx] >= h) {
                err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                    "state.dir %s: users/\"%s\": history "
                                    "ring len %u head %u for %u entries",
                                    store->dir, id, ux->hist_len[idx],
                                    ux->hist_head[idx], h);
                break;
            }
            if ((err = advrec_store__decode_user_sets(store, state, idx, id,
                                                      v))) {
                advrec_seterr(err, errstr, errstr_size,
                              "state.dir %s: users/\"%s\": %s", store->dir, id,
                              err == ADVREC_ERR_NOMEM
                                  ? "out of memory restoring its item sets"
                                  : "malformed purchase or seen set");
                break;
            }
        }
        seen++;
    }
    if (!err)
        err = iter_error(store, it, cf, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    if (!err && seen != rows->n)
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: family %s has %u rows, family "
                            "ids lists %u",
                            store->dir, advrec_store__cf_names[cf], seen,
                            rows->n);
    return err;
}

/* What load() reads: everything; the items for a tool (nothing counts as
 * persisted); the items for a state whose users are read back one by one
 * on demand (advrec_store_load_lazy). */
enum { LOAD_ALL, LOAD_ITEMS, LOAD_LAZY };

static advrec_err_t load(advrec_store_t *store, advrec_state_t *state,
                         advrec_popularity_t *pop, uint64_t *version, int mode,
                         char *errstr, size_t errstr_size)
{
    int items_only = mode != LOAD_ALL;
    const advrec_state_params_t *sp = advrec_state_params(state);
    uint64_t n_users, n_live, n_items, v;
    advrec_err_t err;

    if (advrec_state_users(state)->n || advrec_state_items(state)->n ||
        sp->k != store->params.k || sp->history != store->params.history)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s: load needs an empty state with "
                             "k=%u history=%u",
                             store->dir, store->params.k,
                             store->params.history);
    if ((err = get_u32_meta(store, META_N_USERS, &n_users, 4, errstr,
                            errstr_size)) ||
        (err = get_live(store, n_users, &n_live, errstr, errstr_size)) ||
        (err = get_u32_meta(store, META_N_ITEMS, &n_items, 4, errstr,
                            errstr_size)) ||
        (err = get_u32_meta(store, META_VERSION, &v, 8, errstr, errstr_size)) ||
        (err = load_ids(store, state, n_users, n_live, n_items, items_only,
                        errstr, errstr_size)) ||
        (!items_only && (err = load_rows(store, state, NULL, CF_USERS, errstr,
                                         errstr_size))) ||
        (err = load_rows(store, state, pop, CF_ITEMS, errstr, errstr_size)))
        return err;
    if (version)
        *version = v;
    if (mode == LOAD_ITEMS)
        return ADVREC_OK;
    /* Loaded rows are on disk already; users not loaded keep their
     * numbers, and new ones are numbered after them. */
    advrec_state_clear_dirty(state);
    advrec_state_set_user_count(state, (uint32_t)n_users);
    advrec_state_set_users_live(state, (uint32_t)n_live);
    /* Who makes room first (model.max.users) is the least recently
     * active: the loaded users in the order of their last event. */
    if (mode == LOAD_ALL && advrec_state_lru_by_time(state))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", store->dir);
    store->users_hw = (uint32_t)n_users;
    store->items_hw = (uint32_t)n_items;
    log_info("state.dir %s: loaded %llu %susers, %llu items, model version "
             "%llu",
             store->dir, (unsigned long long)(mode == LOAD_LAZY ? 0 : n_users),
             mode == LOAD_LAZY ? "(of the stored, read back on demand) " : "",
             (unsigned long long)n_items, (unsigned long long)v);
    return ADVREC_OK;
}

advrec_err_t advrec_store_load(advrec_store_t *store, advrec_state_t *state,
                               advrec_popularity_t *pop, uint64_t *version,
                               char *errstr, size_t errstr_size)
{
    return load(store, state, pop, version, LOAD_ALL, errstr, errstr_size);
}

advrec_err_t advrec_store_load_lazy(advrec_store_t *store,
                                    advrec_state_t *state,
                                    advrec_popularity_t *pop, uint64_t *version,
                                    char *errstr, size_t errstr_size)
{
    return load(store, state, pop, version, LOAD_LAZY, errstr, errstr_size);
}

advrec_err_t advrec_store_load_items(advrec_store_t *store,
                                     advrec_state_t *state,
                                     advrec_popularity_t *pop, char *errstr,
                                     size_t errstr_size)
{
    return load(store, state, pop, NULL, LOAD_ITEMS, errstr, errstr_size);
}

/* --- offsets, detectors ----------------------------------------------- */

advrec_err_t advrec_store_offset(advrec_store_t *store, const char *topic,
                                 int32_t partition, int64_t *next, char *errstr,
                                 size_t errstr_size)
{
    char key[600], *val;
    size_t kl = offset_key(key, sizeof(key), topic, partition), len;
    advrec_err_t err = advrec_store__get(store, CF_META, key, kl, &val, &len,
                                         errstr, errstr_size);

    if (err)
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no offset stored for %s [%d]",
                             store->dir, topic, (int)partition);
    if (len != 8) {
        rocksdb_free(val);
        return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                             "state.dir %s: meta/%s has %zu bytes, want 8",
                             store->dir, key, len);
    }
    *next = (int64_t)get_u64((unsigned char *)val);
    rocksdb_free(val);
    return ADVREC_OK;
}

advrec_err_t advrec_store_offsets_foreach(advrec_store_t *store,
                                          advrec_store_offset_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    size_t pl = strlen(META_OFFSET_PF);
    advrec_err_t err = ADVREC_OK;

    for (rocksdb_iter_seek(it, META_OFFSET_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        const char *slash;
        char topic[512];
        advrec_store_offset_t off;

        if (kl < pl || memcmp(k, META_OFFSET_PF, pl) != 0)
            break;
        slash = memrchr(k + pl, '/', kl - pl);
        if (!slash || vl != 8 ||
            (size_t)(slash - k - (ptrdiff_t)pl) >= sizeof(topic)) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed offset entry "
                                "meta/%.*s",
                                store->dir, (int)(kl > 200 ? 200 : kl), k);
            break;
        }
        memcpy(topic, k + pl, (size_t)(slash - k) - pl);
        topic[(size_t)(slash - k) - pl] = '\0';
        off.topic = topic;
        off.partition = (int32_t)strtol(
            key_str(store, slash + 1, kl - (size_t)(slash + 1 - k)), NULL, 10);
        off.next = (int64_t)get_u64((const unsigned char *)v);
        if (cb(opaque, &off))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

advrec_err_t advrec_store_detectors_foreach(advrec_store_t *store,
                                            advrec_store_kv_cb *cb,
                                            void *opaque, char *errstr,
                                            size_t errstr_size)
{
    rocksdb_iterator_t *it;
    advrec_err_t err;

    if (!store->cf[CF_DETECTORS])
        return ADVREC_OK;
    it = rocksdb_create_iterator_cf(store->db, store->ropts,
                                    store->cf[CF_DETECTORS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (cb(opaque, k, kl, v, vl))
            break;
    }
    err = iter_error(store, it, CF_DETECTORS, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

advrec_err_t advrec_store_get_detector(advrec_store_t *store, const void *key,
                                       size_t key_len, void **value,
                                       size_t *len, char *errstr,
                                       size_t errstr_size)
{
    char *val;
    advrec_err_t err;

    *value = NULL;
    *len = 0;
    if (!store->cf[CF_DETECTORS])
        return ADVREC_ERR_NOT_FOUND;
    if ((err = advrec_store__get(store, CF_DETECTORS, key, key_len, &val, len,
                                 errstr, errstr_size)))
        return err;
    if (!val)
        return ADVREC_ERR_NOT_FOUND;
    *value = malloc(*len ? *len : 1);
    if (*value)
        memcpy(*value, val, *len);
    rocksdb_free(val);
    if (!*value)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", store->dir);
    return ADVREC_OK;
}

/* --- pending ---------------------------------------------------------- */

advrec_err_t advrec_store_load_pending(advrec_store_t *store, uint32_t **users,
                                       size_t *n, char *errstr,
                                       size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err =
        advrec_store__get(store, CF_META, META_PENDING, strlen(META_PENDING),
                          &val, &len, errstr, errstr_size);

    *users = NULL;
    *n = 0;
    if (err || !val)
        return err;
    if (len % 4 != 0 || !(*users = malloc(len ? len : 1))) {
        rocksdb_free(val);
        return advrec_seterr(
            len % 4 ? ADVREC_ERR_STORE : ADVREC_ERR_NOMEM, errstr, errstr_size,
            "state.dir %s: meta/%s: %zu bytes", store->dir, META_PENDING, len);
    }
    for (size_t i = 0; i < len / 4; i++)
        (*users)[i] = get_u32((unsigned char *)val + 4 * i);
    *n = len / 4;
    rocksdb_free(val);
    return ADVREC_OK;
}

advrec_err_t advrec_store_flags_foreach(advrec_store_t *store,
                                        advrec_store_flag_cb *cb, void *opaque,
                                        char *errstr, size_t errstr_size)
{
    rocksdb_iterator_t *it;
    size_t pl = strlen(META_FLAG_PF);
    advrec_err_t err = ADVREC_OK;

    if (!store->cf[CF_META])
        return ADVREC_OK;
    it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    for (rocksdb_iter_seek(it, META_FLAG_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const unsigned char *v =
            (const unsigned char *)rocksdb_iter_value(it, &vl);
        uint64_t seq = 0;
        uint32_t key_len;

        if (kl < pl || memcmp(k, META_FLAG_PF, pl) != 0)
            break;
        for (size_t i = pl; i < kl && i < pl + 8; i++)
            seq = seq << 8 | (unsigned char)k[i];
        if (kl != pl + 8 || vl < FLAG_HEADER || v[0] != FLAG_FORMAT ||
            (key_len = get_u32(v + 1)) > vl - FLAG_HEADER) {
            err =
                advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                              "state.dir %s: malformed pending flag "
                              "meta/%s<seq %llu> (%zu-byte key, %zu-byte "
                              "value, format %d)",
                              store->dir, META_FLAG_PF, (unsigned long long)seq,
                              kl, vl, vl ? v[0] : -1);
            break;
        }
        if (cb(opaque, seq, v + FLAG_HEADER, key_len, v + FLAG_HEADER + key_len,
               vl - FLAG_HEADER - key_len))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

/* meta key of pending output seq: META_OUT_PF, then seq big-endian. */

advrec_err_t advrec_store_outputs_foreach(advrec_store_t *store,
                                          advrec_store_output_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
    rocksdb_iterator_t *it;
    size_t pl = strlen(META_OUT_PF);
    advrec_err_t err = ADVREC_OK;

    if (!store->cf[CF_META])
        return ADVREC_OK;
    it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    for (rocksdb_iter_seek(it, META_OUT_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        uint64_t seq = 0;

        if (kl < pl || memcmp(k, META_OUT_PF, pl) != 0)
            break;
        for (size_t i = pl; i < kl && i < pl + 8; i++)
            seq = seq << 8 | (unsigned char)k[i];
        if (kl != pl + 8) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed pending output key "
                                "meta/%s... (%zu bytes)",
                                store->dir, META_OUT_PF, kl);
            break;
        }
        if (cb(opaque, seq, v, vl))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

/* --- tools ------------------------------------------------------------ */

void advrec_store_row_free(advrec_store_row_t *row)
{
    if (!row)
        return;
    free(row->w);
    free(row->hist);
    memset(row, 0, sizeof(*row));
}

static advrec_err_t get_row(advrec_store_t *store, int cf, const char *id,
                            advrec_store_row_t *row, char *errstr,
                            size_t errstr_size)
{
    char kind = cf == CF_ITEMS ? KIND_ITEM : KIND_USER;
    uint32_t k = store->params.k, h = store->params.history;
    const unsigned char *v;
    char *val;
    size_t len;
    advrec_err_t err;

    memset(row, 0, sizeof(*row));
    if ((err = advrec_store__get(store, cf, id, strlen(id), &val, &len, errstr,
                                 errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no %s \"%s\"", store->dir,
                             cf == CF_ITEMS ? "item" : "user", id);
    v = (const unsigned char *)val;
    if ((err = advrec_store__check_value(store, kind, id, strlen(id), v, len,
                                         errstr, errstr_size)))
        goto out;
    row->k = k;
    row->idx = get_u32(v + OFF_IDX);
    row->updates = get_u32(v + OFF_UPDATES);
    memcpy(&row->bias, v + OFF_BIAS, 4);
    memcpy(&row->bias_acc, v + OFF_BIAS_ACC, 4);
    row->clicks = get_u64(v + OFF_CLICKS);
    row->purchases = get_u64(v + OFF_PURCHASES);
    row->pop_key = -INFINITY;
    row->w = malloc((size_t)4 * k);
    if (kind == KIND_USER)
        row->hist = malloc((size_t)4 * h);
    if (!row->w || (kind == KIND_USER && !row->hist)) {
        advrec_store_row_free(row);
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "state.dir %s: out of memory", store->dir);
        goto out;
    }
    memcpy(row->w, v + OFF_W, (size_t)4 * k);
    row->acc = advrec_store__decode_acc(v, k);
    if (kind == KIND_ITEM) {
        memcpy(&row->pop_key, v + advrec_store__tail_off(v[OFF_FORMAT], k), 8);
    } else {
        uint16_t hl, hh;
        row->history = h;
        advrec_store__decode_user_tail(
            v + advrec_store__tail_off(v[OFF_FORMAT], k), h, row->hist, &hl,
            &hh, &row->last, &row->last_ts_ms);
        row->hist_len = hl;
        row->hist_head = hh;
    }
out:
    rocksdb_free(val);
    return err;
}

advrec_err_t advrec_store_load_user(advrec_store_t *store,
                                    advrec_state_t *state, const char *id,
                                    uint32_t *idx, char *errstr,
                                    size_t errstr_size)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t k = store->params.k, h = store->params.history;
    const advrec_state_params_t *sp = advrec_state_params(state);
    const unsigned char *v;
    char *val;
    size_t len;
    advrec_err_t err;

    if (sp->k != k || sp->history != h)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s: load of a user needs a state "
                             "with k=%u history=%u",
                             store->dir, k, h);
    if ((err = advrec_store__get(store, CF_USERS, id, strlen(id), &val, &len,
                                 errstr, errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no user \"%s\"", store->dir, id);
    v = (const unsigned char *)val;
    if ((err = advrec_store__check_value(store, KIND_USER, id, strlen(id), v,
                                         len, errstr, errstr_size)) ||
        (err = advrec_state_user_insert(state, id, get_u32(v + OFF_IDX), idx,
                                        errstr, errstr_size)))
        goto out;
    advrec_store__decode_common(v, advrec_state_users(state), *idx);
    advrec_store__decode_user_tail(v + advrec_store__tail_off(v[OFF_FORMAT], k),
                                   h, ux->hist + (size_t)*idx * h,
                                   ux->hist_len + *idx, ux->hist_head + *idx,
                                   ux->last + *idx, ux->last_ts_ms + *idx);
    if (ux->hist_len[*idx] > h || ux->hist_head[*idx] >= h) {
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: users/\"%s\": history ring len "
                            "%u head %u for %u entries",
                            store->dir, id, ux->hist_len[*idx],
                            ux->hist_head[*idx], h);
        goto out;
    }
    if ((err = advrec_store__decode_user_sets(store, state, *idx, id, v)))
        advrec_seterr(err, errstr, errstr_size,
                      "state.dir %s: users/\"%s\": %s", store->dir, id,
                      err == ADVREC_ERR_NOMEM
                          ? "out of memory restoring its item sets"
                          : "malformed purchase or seen set");
out:
    rocksdb_free(val);
    return err;
}

advrec_err_t advrec_store_get_user(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size)
{
    return get_row(store, CF_USERS, id, row, errstr, errstr_size);
}

advrec_err_t advrec_store_get_item(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size)
{
    return get_row(store, CF_ITEMS, id, row, errstr, errstr_size);
}

advrec_err_t advrec_store_id_name(advrec_store_t *store, int items,
                                  uint32_t idx, char *buf, size_t buf_size,
                                  char *errstr, size_t errstr_size)
{
    unsigned char key[5];
    char *val;
    size_t len;
    advrec_err_t err;

    id_key(key, items, idx);
    if ((err = advrec_store__get(store, CF_IDS, (const char *)key, 5, &val,
                                 &len, errstr, errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no %s with index %u", store->dir,
                             items ? "item" : "user", idx);
    snprintf(buf, buf_size, "%.*s", (int)len, val);
    rocksdb_free(val);
    return ADVREC_OK;
}

static int count_offset(void *opaque, const advrec_store_offset_t *offset)
{
    (*(size_t *)opaque)++;
    return 0;
}

static int count_kv(void *opaque, const void *key, size_t key_len,
                    const void *value, size_t value_len)
{
    (*(size_t *)opaque)++;
    return 0;
}

advrec_err_t advrec_store_summary(advrec_store_t *store,
                                  advrec_store_summary_t *s, char *errstr,
                                  size_t errstr_size)
{
    uint64_t nu, ni;
    advrec_err_t err;

    memset(s, 0, sizeof(*s));
    if ((err =
             get_u32_meta(store, META_N_USERS, &nu, 4, errstr, errstr_size)) ||
        (err =
             get_u32_meta(store, META_N_ITEMS, &ni, 4, errstr, errstr_size)) ||
        (err = get_u32_meta(store, META_VERSION, &s->model_version, 8, errstr,
                            errstr_size)) ||
        (err = advrec_store_offsets_foreach(store, count_offset, &s->offsets,
                                            errstr, errstr_size)) ||
        (err = advrec_store_detectors_foreach(store, count_kv, &s->detectors,
                                              errstr, errstr_size)))
        return err;
    s->users = (uint32_t)nu;
    s->items = (uint32_t)ni;
    for (int c = 0; c < CF_N; c++) {
        char *p;
        if (!store->cf[c])
            continue;
        p = rocksdb_property_value_cf(store->db, store->cf[c],
                                      "rocksdb.total-sst-files-size");
        if (p)
            s->disk_bytes += strtoull(p, NULL, 10);
        rocksdb_free(p);
    }
    return ADVREC_OK;
}

advrec_err_t advrec_store_users_from(advrec_store_t *store, uint32_t uid,
                                     advrec_store_user_cb *cb, void *opaque,
                                     char *errstr, size_t errstr_size)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_IDS]);
    unsigned char start[5];
    char id[ADVREC_ID_MAX + 1];
    advrec_err_t err;

    id_key(start, 0, uid);
    for (rocksdb_iter_seek(it, (const char *)start, 5); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const unsigned char *k =
            (const unsigned char *)rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);

        if (kl != 5 || k[0] != 'u')
            break;
        snprintf(id, sizeof(id), "%.*s", (int)vl, v);
        if (cb(opaque,
               (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 |
                   (uint32_t)k[3] << 8 | k[4],
               id))
            break;
    }
    err = iter_error(store, it, CF_IDS, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}
