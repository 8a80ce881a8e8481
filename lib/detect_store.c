/*
 * detect_store.c - the anomaly detectors' rows in the state store: their
 * key format, loading them back, staging the changed ones.
 *
 * Rows are keyed 'u' + user id, 'i' + item id, "g" (the baseline) or 'r'
 * + decimal chunk number (the group ring), so they survive as long as the
 * ids and are readable in advrec-inspect.
 */
#include "detect_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

typedef struct detector_io_s {
    advrec_detect_t *detect;
    advrec_store_t *store;
    advrec_state_t *state;
    advrec_err_t err;
    char *errstr;
    size_t errstr_size;
} detector_io_t;

static int load_row(void *opaque, const void *key, size_t key_len,
                    const void *value, size_t value_len)
{
    detector_io_t *io = opaque;
    char id[ADVREC_ID_MAX];
    const char *k = key;
    advrec_detect_row_kind_t kind;
    uint32_t idx = 0;

    if (key_len < 1 || key_len > sizeof(id)) {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key of %zu bytes", key_len);
        return 1;
    }
    memcpy(id, k + 1, key_len - 1);
    id[key_len - 1] = '\0';
    /* 'u' sorts after 'g' and 'i': the rest are user rows. Users not in
     * memory (a memory budget's lazy load) are restored with each user
     * (advrec_detect_store_load_user), so the scan stops there. */
    if (k[0] == 'u' && advrec_state_users_resident(io->state) <
                           advrec_state_users_live(io->state))
        return 1;
    if (k[0] == 'g' && key_len == 1) {
        kind = ADVREC_DETECT_ROW_GLOBAL;
    } else if (k[0] == 'r' && key_len > 1 && key_len <= 6 &&
               strspn(id, "0123456789") == key_len - 1) {
        kind = ADVREC_DETECT_ROW_GROUP;
        idx = (uint32_t)strtoul(id, NULL, 10);
    } else if (k[0] == 'u' &&
               advrec_state_user(io->state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_USER;
    } else if (k[0] == 'i' &&
               advrec_state_item(io->state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_ITEM;
    } else {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key \"%.*s\" names no stored "
                                "user or item",
                                (int)key_len, k);
        return 1;
    }
    io->err = advrec_detect_restore(io->detect, kind, idx, value, value_len,
                                    io->errstr, io->errstr_size);
    if (io->err == ADVREC_ERR_PARSE)
        io->err = ADVREC_ERR_STORE;
    return io->err != ADVREC_OK;
}

advrec_err_t advrec_detect_store_load(advrec_detect_t *detect,
                                      advrec_store_t *store,
                                      advrec_state_t *state, char *errstr,
                                      size_t errstr_size)
{
    detector_io_t io = {detect, store, state, ADVREC_OK, errstr, errstr_size};
    advrec_err_t err;

    err = advrec_store_detectors_foreach(store, load_row, &io, errstr,
                                         errstr_size);
    return err ? err : io.err;
}

advrec_err_t advrec_detect_store_load_user(advrec_detect_t *detect,
                                           advrec_store_t *store,
                                           advrec_state_t *state, uint32_t idx,
                                           char *errstr, size_t errstr_size)
{
    const char *id = advrec_state_user_name(state, idx);
    char key[ADVREC_ID_MAX + 1];
    size_t n = strlen(id), len;
    void *val;
    advrec_err_t err;

    if (n + 1 > sizeof(key))
        return ADVREC_ERR_NOT_FOUND;
    key[0] = 'u';
    memcpy(key + 1, id, n);
    err = advrec_store_get_detector(store, key, n + 1, &val, &len, errstr,
                                    errstr_size);
    if (err == ADVREC_ERR_NOT_FOUND)
        return ADVREC_OK;
    if (err)
        return err;
    err = advrec_detect_restore(detect, ADVREC_DETECT_ROW_USER, idx, val, len,
                                errstr, errstr_size);
    free(val);
    return err == ADVREC_ERR_PARSE ? ADVREC_ERR_STORE : err;
}

/* A changed row waiting to be staged: its key (kind letter + id) and its
 * encoded value, both in the stage's arena. */
typedef struct staged_s {
    size_t key, key_len, value, value_len; /* offsets into the arena */
    const unsigned char *k; /* the key, once the arena no longer moves */
} staged_t;

typedef struct stage_s {
    advrec_state_t *state;
    unsigned char *arena;
    size_t used, cap;
    staged_t *rows;
    size_t n, rows_cap;
    int nomem;
} stage_t;

static int by_key(const void *a, const void *b)
{
    const staged_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->k, y->k, n);

    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* The key suffix of group ring chunk idx: its decimal number, in buf. */
static const char *chunk_name(char *buf, size_t size, uint32_t idx)
{
    snprintf(buf, size, "%u", idx);
    return buf;
}

static int collect_row(void *opaque, advrec_detect_row_kind_t kind,
                       uint32_t idx, const void *value, size_t len)
{
    stage_t *st = opaque;
    char chunk[16];
    const char *id = kind == ADVREC_DETECT_ROW_USER
                         ? advrec_state_user_name(st->state, idx)
                     : kind == ADVREC_DETECT_ROW_ITEM
                         ? advrec_state_item_name(st->state, idx)
                     : kind == ADVREC_DETECT_ROW_GROUP
                         ? chunk_name(chunk, sizeof(chunk), idx)
                         : "";
    size_t id_len = id ? strlen(id) : 0, need = 1 + id_len + len;
    staged_t *r;

    /* A user deleted since their row changed: nothing to write. */
    if (kind != ADVREC_DETECT_ROW_GLOBAL && !id)
        return 0;

    if (st->used + need > st->cap) {
        size_t cap = st->cap ? st->cap : 65536;
        while (cap < st->used + need)
            cap *= 2;
        unsigned char *a = realloc(st->arena, cap);
        if (!a)
            return st->nomem = 1;
        st->arena = a;
        st->cap = cap;
    }
    if (st->n == st->rows_cap) {
        size_t cap = st->rows_cap ? 2 * st->rows_cap : 1024;
        staged_t *rows = realloc(st->rows, cap * sizeof(*rows));
        if (!rows)
            return st->nomem = 1;
        st->rows = rows;
        st->rows_cap = cap;
    }
    r = &st->rows[st->n++];
    r->key = st->used;
    r->key_len = 1 + id_len;
    st->arena[st->used] = kind == ADVREC_DETECT_ROW_USER    ? 'u'
                          : kind == ADVREC_DETECT_ROW_ITEM  ? 'i'
                          : kind == ADVREC_DETECT_ROW_GROUP ? 'r'
                                                            : 'g';
    memcpy(st->arena + st->used + 1, id, id_len);
    st->used += 1 + id_len;
    r->value = st->used;
    r->value_len = len;
    memcpy(st->arena + st->used, value, len);
    st->used += len;
    return 0;
}

/*
 * Stages every detector row changed since the last stage, in key order (as
 * the store's commit writes its rows: RocksDB's memtable inserts ordered
 * keys far faster than random ones). Without a store the rows are only
 * forgotten, never encoded.
 */
advrec_err_t advrec_detect_store_stage(advrec_detect_t *detect,
                                       advrec_store_t *store,
                                       advrec_state_t *state)
{
    stage_t st = {state, NULL, 0, 0, NULL, 0, 0, 0};
    advrec_err_t err = ADVREC_OK;

    if (!store) {
        advrec_detect_forget_dirty(detect);
        return ADVREC_OK;
    }
    advrec_detect_foreach_dirty(detect, collect_row, &st);
    if (st.nomem) {
        err = ADVREC_ERR_NOMEM;
        goto out;
    }
    for (size_t r = 0; r < st.n; r++)
        st.rows[r].k = st.arena + st.rows[r].key;
    /* qsort's array must not be NULL, even for no element (UBSan): with
     * the detectors off nothing is ever staged. */
    if (st.n > 1)
        qsort(st.rows, st.n, sizeof(*st.rows), by_key);
    for (size_t r = 0; r < st.n && !err; r++)
        err = advrec_store_stage_detector(
            store, st.arena + st.rows[r].key, st.rows[r].key_len,
            st.arena + st.rows[r].value, st.rows[r].value_len);
out:
    free(st.arena);
    free(st.rows);
    return err;
}
