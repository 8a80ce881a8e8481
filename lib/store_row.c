/*
 * store_row.c - the value format of user and item rows (docs/STATE.md):
 * their sizes, the encoders the commit uses, the check every reader runs
 * on a fetched value, and the decoders into the state's row tables,
 * including the purchase and seen sets (rebuilt from the history ring for
 * a format 1 row). Owns no memory: encoders write into the caller's
 * buffer, decoders into the caller's state.
 *
 * Values are records of little-endian integers and IEEE floats behind a
 * 4-byte header (kind, format, k): a load copies the factor array straight
 * into the row table. Items are fixed-size; a user row ends with the
 * user's purchase and seen sets (format 2 on), so its size varies. Format 3
 * holds one row-wise Adagrad accumulator per row; formats 1 and 2 held k
 * per-coordinate accumulators, and are still read: the row's accumulator is
 * their mean (what row-wise Adagrad would have summed), and a format 1
 * row's sets are rebuilt from the history ring.
 */
#include "store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t advrec_store__tail_off(int format, uint32_t k)
{
    return format >= FORMAT_V3 ? OFF_W + (size_t)4 * k + 4
                               : OFF_W + (size_t)8 * k;
}

/* A user row up to the end of its ring (all of a format 1 row). */
static size_t user_size(int format, uint32_t k, uint32_t history)
{
    return advrec_store__tail_off(format, k) + USER_TAIL + (size_t)4 * history;
}

/* A user row of format 2 or 3 holding np purchased and ns seen items. */
static size_t user_size_sets(int format, uint32_t k, uint32_t history,
                             uint32_t np, uint32_t ns)
{
    return user_size(format, k, history) + SETS_HEADER + (size_t)8 * (np + ns);
}

/* An item row of a format. */
static size_t item_size(int format, uint32_t k)
{
    return advrec_store__tail_off(format, k) + 8;
}

size_t advrec_store__item_size(uint32_t k)
{
    return item_size(ADVREC_STORE_FORMAT, k);
}

float advrec_store__decode_acc(const unsigned char *v, uint32_t k)
{
    double sum = 0.0;
    float a;

    if (v[OFF_FORMAT] >= FORMAT_V3) {
        memcpy(&a, v + OFF_W + (size_t)4 * k, 4);
        return a;
    }
    /* Per-coordinate accumulators: in order, in double, so the mean is
     * the same on every load. */
    for (uint32_t n = 0; n < k; n++) {
        memcpy(&a, v + OFF_W + (size_t)4 * (k + n), 4);
        sum += (double)a;
    }
    return (float)(sum / (double)k);
}

/* Encodes the common part of row idx of rows into b. */
static void encode_common(unsigned char *b, char kind,
                          const advrec_rows_t *rows, uint32_t idx)
{
    size_t k = rows->k;

    memset(b, 0, OFF_W);
    b[OFF_KIND] = (unsigned char)kind;
    b[OFF_FORMAT] = ADVREC_STORE_FORMAT;
    put_u16(b + OFF_K, (uint16_t)rows->k);
    put_u32(b + OFF_IDX, idx);
    put_u32(b + OFF_UPDATES, rows->updates[idx]);
    memcpy(b + OFF_BIAS, rows->bias + idx, 4);
    memcpy(b + OFF_BIAS_ACC, rows->bias_acc + idx, 4);
    put_u64(b + OFF_CLICKS, rows->clicks[idx]);
    put_u64(b + OFF_PURCHASES, rows->purchases[idx]);
    memcpy(b + OFF_W, rows->w + idx * k, 4 * k);
    memcpy(b + OFF_W + 4 * k, rows->acc + idx, 4);
}

void advrec_store__encode_user(unsigned char *b, advrec_state_t *state,
                               uint32_t idx)
{
    const advrec_rows_t *users = advrec_state_users(state);
    const advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t h = advrec_state_params(state)->history;
    unsigned char *t =
        b + advrec_store__tail_off(ADVREC_STORE_FORMAT, users->k);

    encode_common(b, KIND_USER, users, idx);
    /* A user's row is keyed by its persistent number, not its slot. */
    put_u32(b + OFF_IDX, ux->uid[idx]);
    memset(t, 0, USER_TAIL);
    put_u16(t + 0, (uint16_t)h);
    put_u16(t + 2, ux->hist_len[idx]);
    put_u16(t + 4, ux->hist_head[idx]);
    t[6] = ux->last[idx].topic;
    put_u32(t + 8, (uint32_t)ux->last[idx].partition);
    put_u64(t + 16, (uint64_t)ux->last[idx].offset);
    put_u64(t + 24, (uint64_t)ux->last_ts_ms[idx]);
    memcpy(t + USER_TAIL, ux->hist + (size_t)idx * h, (size_t)4 * h);
    t += USER_TAIL + (size_t)4 * h;
    put_u16(t, (uint16_t)advrec_itemset_count(ux->purchased[idx]));
    put_u16(t + 2, (uint16_t)advrec_itemset_count(ux->seen[idx]));
    t += SETS_HEADER;
    for (int which = 0; which < 2; which++) {
        const advrec_itemset_t *set =
            which ? ux->seen[idx] : ux->purchased[idx];
        size_t n = advrec_itemset_count(set);
        if (n == 0)
            continue;
        memcpy(t, advrec_itemset_items(set), 4 * n);
        memcpy(t + 4 * n, advrec_itemset_stamps(set), 4 * n);
        t += 8 * n;
    }
}

size_t advrec_store__user_row_size(advrec_state_t *state, uint32_t idx)
{
    const advrec_user_ext_t *ux = advrec_state_user_ext(state);
    const advrec_state_params_t *sp = advrec_state_params(state);

    return user_size_sets(ADVREC_STORE_FORMAT, sp->k, sp->history,
                          advrec_itemset_count(ux->purchased[idx]),
                          advrec_itemset_count(ux->seen[idx]));
}

void advrec_store__encode_item(unsigned char *b, advrec_state_t *state,
                               const advrec_popularity_t *pop, uint32_t idx)
{
    const advrec_rows_t *items = advrec_state_items(state);
    double key = pop ? advrec_popularity_key(pop, idx) : -INFINITY;

    encode_common(b, KIND_ITEM, items, idx);
    memcpy(b + advrec_store__tail_off(ADVREC_STORE_FORMAT, items->k), &key, 8);
}

advrec_err_t advrec_store__check_value(const advrec_store_t *store, char kind,
                                       const char *key, size_t key_len,
                                       const unsigned char *v, size_t len,
                                       char *errstr, size_t errstr_size)
{
    uint32_t k = store->params.k, h = store->params.history;
    int format = len > OFF_FORMAT ? v[OFF_FORMAT] : -1;
    int known = format == FORMAT_V1 || format == FORMAT_V2 ||
                format == ADVREC_STORE_FORMAT;
    /* An unknown format is measured as ours, for the message. */
    int as = known ? format : ADVREC_STORE_FORMAT;
    size_t base = kind == KIND_USER ? user_size(as, k, h) : item_size(as, k);
    size_t want = base;
    const char *fam = kind == KIND_USER ? "users" : "items";

    if (kind == KIND_USER && as != FORMAT_V1) {
        want = base + SETS_HEADER;
        if (len >= want)
            want = user_size_sets(as, k, h, get_u16(v + base),
                                  get_u16(v + base + 2));
    }
    if (len < OFF_W || v[OFF_KIND] != (unsigned char)kind || !known ||
        get_u16(v + OFF_K) != k || len != want ||
        (kind == KIND_USER && get_u16(v + advrec_store__tail_off(as, k)) != h))
        return advrec_seterr(
            ADVREC_ERR_STORE, errstr, errstr_size,
            "state.dir %s: %s/\"%.*s\" is malformed (%zu "
            "bytes, format %d; want %zu for format %d, formats %d to %d "
            "read, k=%u, history=%u)",
            store->dir, fam, (int)(key_len > 200 ? 200 : key_len), key, len,
            format, want, as, FORMAT_V1, ADVREC_STORE_FORMAT, k, h);
    return ADVREC_OK;
}

void advrec_store__decode_common(const unsigned char *v, advrec_rows_t *rows,
                                 uint32_t idx)
{
    size_t k = rows->k;

    rows->updates[idx] = get_u32(v + OFF_UPDATES);
    memcpy(rows->bias + idx, v + OFF_BIAS, 4);
    memcpy(rows->bias_acc + idx, v + OFF_BIAS_ACC, 4);
    rows->clicks[idx] = get_u64(v + OFF_CLICKS);
    rows->purchases[idx] = get_u64(v + OFF_PURCHASES);
    memcpy(rows->w + idx * k, v + OFF_W, 4 * k);
    rows->acc[idx] = advrec_store__decode_acc(v, rows->k);
}

void advrec_store__decode_user_tail(const unsigned char *t, uint32_t h,
                                    uint32_t *hist, uint16_t *len,
                                    uint16_t *head, advrec_origin_t *last,
                                    int64_t *last_ts)
{
    *len = get_u16(t + 2);
    *head = get_u16(t + 4);
    last->topic = t[6];
    last->partition = (int32_t)get_u32(t + 8);
    last->offset = (int64_t)get_u64(t + 16);
    *last_ts = (int64_t)get_u64(t + 24);
    memcpy(hist, t + USER_TAIL, (size_t)4 * h);
}

advrec_err_t advrec_store__decode_user_sets(const advrec_store_t *store,
                                            advrec_state_t *state, uint32_t idx,
                                            const char *id,
                                            const unsigned char *v)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    const advrec_state_params_t *sp = advrec_state_params(state);
    uint32_t k = store->params.k, h = store->params.history;
    const unsigned char *t = v + user_size(v[OFF_FORMAT], k, h);
    advrec_err_t err = ADVREC_OK;

    if (v[OFF_FORMAT] == FORMAT_V1) {
        uint32_t len = ux->hist_len[idx], head = ux->hist_head[idx];
        uint32_t first = len < h ? 0 : head;
        for (uint32_t a = 0; a < len && !err; a++) {
            uint32_t e = ux->hist[(size_t)idx * h + (first + a) % h];
            err =
                advrec_state_remember(state, idx, e & ADVREC_HIST_ITEM,
                                      (e & ADVREC_HIST_PURCHASE) != 0, NULL, 0);
        }
        return err;
    }
    for (int which = 0; which < 2 && !err; which++) {
        uint32_t n = get_u16(t + 2 * which), max;
        const unsigned char *at = t + SETS_HEADER;
        advrec_itemset_t **set = which ? &ux->seen[idx] : &ux->purchased[idx];
        uint32_t *items, *stamps;

        if (which)
            at += (size_t)8 * get_u16(t);
        max = which ? sp->seen_max : sp->purchased_max;
        if (n == 0)
            continue;
        /* The row's bytes are not aligned for u32 access: copy. */
        items = malloc((size_t)8 * n);
        if (!items)
            return ADVREC_ERR_NOMEM;
        stamps = items + n;
        memcpy(items, at, (size_t)8 * n);
        err = advrec_itemset_restore(set, items, stamps, n, max);
        for (uint32_t a = 0; a < n && !err; a++)
            if (items[a] >= advrec_state_items(state)->n)
                err = ADVREC_ERR_INVALID_ARG;
        free(items);
    }
    if (err == ADVREC_ERR_INVALID_ARG)
        return ADVREC_ERR_STORE;
    return err;
}
