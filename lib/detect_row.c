/*
 * detect_row.c - the detector rows' byte layout: each user and item row,
 * the global baseline and the group ring's chunks encoded for a store
 * (explicit little-endian fields, format byte first), handed over when
 * dirty, and restored (format 3 and 2 rows still read). Owns nothing: the rows
 * are detect.c's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "detect_int.h"

/* --- persistence: explicit little-endian fields, format byte first ------ */

typedef struct buf_s {
    unsigned char *p;
    size_t len, cap;
    int bad;
} buf_t;

static void put_u64(buf_t *b, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        b->p[b->len++] = (unsigned char)(v >> (8 * k));
}

static void put_f64(buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    put_u64(b, u);
}

static uint64_t get_u64(buf_t *b)
{
    uint64_t v = 0;
    if (b->len + 8 > b->cap) {
        b->bad = 1;
        return 0;
    }
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)b->p[b->len++] << (8 * k);
    return v;
}

static double get_f64(buf_t *b)
{
    uint64_t u = get_u64(b);
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Every row is the format byte, the kind byte, then 8-byte fields; a ring
 * chunk is ring_n then three fields per touch. */
#define ROW_MAX   ADVREC_DETECT_ROW_MAX
#define CHUNK_LEN (2 + 8 + RING_CHUNK * 3 * 8)

static size_t encode_user(const user_row_t *r, unsigned char *out)
{
    buf_t b = {out, 0, ROW_MAX, 0};
    out[b.len++] = ROW_FORMAT;
    out[b.len++] = ADVREC_DETECT_ROW_USER;
    put_u64(&b, (uint64_t)r->first_ts);
    put_u64(&b, (uint64_t)r->last_ts);
    put_f64(&b, r->rate);
    put_f64(&b, r->gap_mean);
    put_f64(&b, r->gap_var);
    put_u64(&b, r->div_bits);
    put_u64(&b, (uint64_t)r->events << 32 | r->gaps);
    put_u64(&b, (uint64_t)r->clicks << 32 | r->purchases);
    put_f64(&b, r->div_ratio);
    put_u64(&b, (uint64_t)r->broken << 32 | (uint64_t)r->div_n << 8 | r->level);
    put_u64(&b, r->reasons);
    put_f64(&b, r->score);
    put_u64(&b, (uint64_t)r->last_click_ts);
    put_u64(&b, r->id_hash);
    put_u64(&b, (uint64_t)r->prof_start_ts);
    put_u64(&b, (uint64_t)r->prof_last_ts);
    put_f64(&b, r->prof_sum);
    put_u64(&b, r->prof_n);
    return b.len;
}

size_t advrec_detect_encode_user(const advrec_detect_t *d, uint32_t idx,
                                 unsigned char *out)
{
    const user_row_t *r;

    if (idx >= d->users.n)
        return 0;
    r = (const user_row_t *)d->users.rows + idx;
    return r->events ? encode_user(r, out) : 0;
}

static void decode_user(buf_t *b, user_row_t *r, int format)
{
    uint64_t v;
    r->first_ts = (int64_t)get_u64(b);
    r->last_ts = (int64_t)get_u64(b);
    r->rate = get_f64(b);
    r->gap_mean = get_f64(b);
    r->gap_var = get_f64(b);
    r->div_bits = get_u64(b);
    v = get_u64(b);
    r->events = (uint32_t)(v >> 32);
    r->gaps = (uint32_t)v;
    v = get_u64(b);
    r->clicks = (uint32_t)(v >> 32);
    r->purchases = (uint32_t)v;
    r->div_ratio = (float)get_f64(b);
    v = get_u64(b);
    r->div_n = (uint16_t)(v >> 8);
    r->level = (uint8_t)(v & 0xff);
    /* Format 2 rows are of users from before: not newcomers. */
    r->broken = format >= 3 ? (uint8_t)((v >> 32) & 1) : 1;
    r->reasons = (uint32_t)get_u64(b);
    r->score = (float)get_f64(b);
    r->last_click_ts = (int64_t)get_u64(b);
    r->id_hash = format >= 3 ? get_u64(b) : 0;
    /* Rows before format 4 start their profile window afresh. */
    r->prof_start_ts = format >= 4 ? (int64_t)get_u64(b) : 0;
    r->prof_last_ts = format >= 4 ? (int64_t)get_u64(b) : 0;
    r->prof_sum = format >= 4 ? get_f64(b) : 0;
    v = format >= 4 ? get_u64(b) : 0;
    r->prof_n = (uint32_t)v;
    if (v > UINT32_MAX || r->level > 2 || r->div_n >= DIV_WINDOW)
        b->bad = 1;
}

static size_t encode_item(const item_row_t *r, unsigned char *out)
{
    buf_t b = {out, 0, ROW_MAX, 0};
    out[b.len++] = ROW_FORMAT;
    out[b.len++] = ADVREC_DETECT_ROW_ITEM;
    put_u64(&b, (uint64_t)r->last_ts);
    put_f64(&b, r->total);
    put_f64(&b, r->suspect);
    put_f64(&b, r->young);
    put_f64(&b, r->flagged);
    put_u64(&b, (uint64_t)r->events << 8 | r->level);
    put_u64(&b, r->reasons);
    put_f64(&b, r->score);
    put_u64(&b, r->group_size);
    put_f64(&b, r->fresh);
    put_u64(&b, (uint64_t)r->group_first_ts);
    return b.len;
}

static void decode_item(buf_t *b, item_row_t *r, int format)
{
    uint64_t v;
    r->last_ts = (int64_t)get_u64(b);
    r->total = get_f64(b);
    r->suspect = get_f64(b);
    r->young = get_f64(b);
    r->flagged = get_f64(b);
    v = get_u64(b);
    r->events = (uint32_t)(v >> 8);
    r->level = (uint8_t)(v & 0xff);
    r->reasons = (uint32_t)get_u64(b);
    r->score = (float)get_f64(b);
    r->group_size = format >= 3 ? (uint32_t)get_u64(b) : 0;
    r->fresh = format >= 3 ? get_f64(b) : 0;
    r->group_first_ts = format >= 3 ? (int64_t)get_u64(b) : 0;
    if (r->level > 1)
        b->bad = 1;
}

static int drain_dirty(rows_t *rows, advrec_detect_row_kind_t kind,
                       advrec_detect_row_cb *cb, void *opaque)
{
    unsigned char val[ROW_MAX];
    size_t len;

    while (rows->n_dirty > 0) {
        uint32_t idx = rows->dirty_list[rows->n_dirty - 1];
        if (kind == ADVREC_DETECT_ROW_USER)
            len = encode_user((user_row_t *)rows->rows + idx, val);
        else
            len = encode_item((item_row_t *)rows->rows + idx, val);
        if (cb(opaque, kind, idx, val, len))
            return 1;
        rows->dirty[idx] = 0;
        rows->n_dirty--;
    }
    return 0;
}

static size_t encode_chunk(const advrec_detect_t *d, uint32_t c,
                           unsigned char *out)
{
    buf_t b = {out, 0, CHUNK_LEN, 0};
    out[b.len++] = ROW_FORMAT;
    out[b.len++] = ADVREC_DETECT_ROW_GROUP;
    put_u64(&b, d->ring_n);
    for (uint32_t k = 0; k < RING_CHUNK; k++) {
        const touch_t *t = &d->ring[(size_t)c * RING_CHUNK + k];
        put_u64(&b, t->user_hash);
        put_u64(&b, (uint64_t)t->user << 32 | t->item);
        put_u64(&b, (uint64_t)t->ts);
    }
    return b.len;
}

void advrec_detect_foreach_dirty(advrec_detect_t *d, advrec_detect_row_cb *cb,
                                 void *opaque)
{
    if (d->global.dirty) {
        unsigned char val[ROW_MAX];
        buf_t b = {val, 0, ROW_MAX, 0};
        val[b.len++] = ROW_FORMAT;
        val[b.len++] = ADVREC_DETECT_ROW_GLOBAL;
        put_u64(&b, (uint64_t)d->global.last_ts);
        put_f64(&b, d->global.total);
        put_f64(&b, d->global.suspect);
        put_u64(&b, (uint64_t)d->global.first_ts);
        put_u64(&b, d->global.events);
        put_u64(&b, d->global.purchases);
        put_u64(&b, d->global.items_seen);
        put_f64(&b, d->global.logpop_sum);
        put_f64(&b, d->global.dev_sum);
        put_u64(&b, d->global.dev_n);
        put_u64(&b, d->global.shop);
        if (cb(opaque, ADVREC_DETECT_ROW_GLOBAL, 0, val, b.len))
            return;
        d->global.dirty = 0;
    }
    for (uint32_t c = 0; c < RING_CHUNKS; c++) {
        unsigned char val[CHUNK_LEN];
        if (!d->ring_dirty[c])
            continue;
        if (cb(opaque, ADVREC_DETECT_ROW_GROUP, c, val,
               encode_chunk(d, c, val)))
            return;
        d->ring_dirty[c] = 0;
    }
    if (drain_dirty(&d->users, ADVREC_DETECT_ROW_USER, cb, opaque))
        return;
    drain_dirty(&d->items, ADVREC_DETECT_ROW_ITEM, cb, opaque);
}

static void forget_dirty(rows_t *rows)
{
    for (uint32_t i = 0; i < rows->n_dirty; i++)
        rows->dirty[rows->dirty_list[i]] = 0;
    rows->n_dirty = 0;
}

void advrec_detect_forget_dirty(advrec_detect_t *d)
{
    d->global.dirty = 0;
    memset(d->ring_dirty, 0, sizeof(d->ring_dirty));
    forget_dirty(&d->users);
    forget_dirty(&d->items);
}

advrec_err_t advrec_detect_restore(advrec_detect_t *d,
                                   advrec_detect_row_kind_t kind, uint32_t idx,
                                   const void *value, size_t len, char *errstr,
                                   size_t errstr_size)
{
    buf_t b = {(unsigned char *)value, 2, len, 0};
    const unsigned char *v = value;

    if (len < 2 || v[0] < ROW_FORMAT_OLD || v[0] > ROW_FORMAT ||
        v[1] != (unsigned char)kind ||
        (kind == ADVREC_DETECT_ROW_GROUP && v[0] < ROW_FORMAT_V3))
        return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                             "detector row of %zu bytes: unknown format or "
                             "kind (expected format %d, kind %d)",
                             len, ROW_FORMAT, (int)kind);
    switch (kind) {
    case ADVREC_DETECT_ROW_USER: {
        user_row_t r;
        decode_user(&b, &r, v[0]);
        if (b.bad || b.len != len)
            break;
        if (!advrec_detect__rows_reserve(&d->users, idx, sizeof(r)))
            goto nomem;
        ((user_row_t *)d->users.rows)[idx] = r;
        return ADVREC_OK;
    }
    case ADVREC_DETECT_ROW_ITEM: {
        item_row_t r;
        decode_item(&b, &r, v[0]);
        if (b.bad || b.len != len)
            break;
        if (!advrec_detect__rows_reserve(&d->items, idx, sizeof(r)))
            goto nomem;
        d->n_surging -=
            (uint32_t)item_surging((item_row_t *)d->items.rows + idx);
        ((item_row_t *)d->items.rows)[idx] = r;
        d->n_surging += (uint32_t)item_surging(&r);
        /* The catalogue's popularity sums came with a global row of
         * format 4; before that they are rebuilt from the items. */
        if (d->global.rebuild && r.events > 0) {
            d->global.items_seen++;
            d->global.logpop_sum += log1p((double)r.events);
        }
        return ADVREC_OK;
    }
    case ADVREC_DETECT_ROW_GLOBAL: {
        int64_t last = (int64_t)get_u64(&b), first = 0;
        double total = get_f64(&b), suspect = get_f64(&b), logpop = 0;
        uint64_t events = 0, purchases = 0, seen = 0, dev_n = 0, shop = 0;
        double dev_sum = 0;
        if (v[0] >= 3)
            first = (int64_t)get_u64(&b);
        if (v[0] >= 4) {
            events = get_u64(&b);
            purchases = get_u64(&b);
            seen = get_u64(&b);
            logpop = get_f64(&b);
            dev_sum = get_f64(&b);
            dev_n = get_u64(&b);
            shop = get_u64(&b);
        }
        if (b.bad || b.len != len || shop > 1)
            break;
        d->global.first_ts = first;
        d->global.last_ts = last;
        d->global.total = total;
        d->global.suspect = suspect;
        d->global.events = events;
        d->global.purchases = purchases;
        d->global.items_seen = seen;
        d->global.logpop_sum = logpop;
        d->global.dev_sum = dev_sum;
        d->global.dev_n = dev_n;
        /* Before format 4 no-purchases always counted. */
        d->global.shop = v[0] >= 4 ? shop : 1;
        d->global.rebuild = v[0] < 4;
        return ADVREC_OK;
    }
    case ADVREC_DETECT_ROW_GROUP: {
        touch_t t[RING_CHUNK];
        uint64_t n = get_u64(&b);
        for (uint32_t k = 0; k < RING_CHUNK; k++) {
            uint64_t ui;
            t[k].user_hash = get_u64(&b);
            ui = get_u64(&b);
            t[k].user = (uint32_t)(ui >> 32);
            t[k].item = (uint32_t)ui;
            t[k].ts = (int64_t)get_u64(&b);
        }
        if (b.bad || b.len != len || idx >= RING_CHUNKS)
            break;
        memcpy(d->ring + (size_t)idx * RING_CHUNK, t, sizeof(t));
        if (n > d->ring_n)
            d->ring_n = n;
        return ADVREC_OK;
    }
    }
    return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                         "detector row of kind %d: %zu bytes do not hold its "
                         "fields",
                         (int)kind, len);
nomem:
    return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                         "detect: out of memory restoring row %u", idx);
}
