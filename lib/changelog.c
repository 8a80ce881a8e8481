/*
 * changelog.c - the changelog's records (changelog.h; layout in
 * docs/STATE.md, "Changelog"). Integers and floats are copied as the
 * little-endian host holds them, as lib/store's rows are.
 *
 * User record (kind 1), after the header (u8 format, u8 kind):
 *   i64 pos[3], u8 flags (bit 0: a list is owed), u16 k, u32 updates,
 *   u64 clicks, u64 purchases, f32 w[k], f32 acc,
 *   u8 last.topic, i32 last.partition, i64 last.offset, i64 last_ts_ms,
 *   u16 n_hist, then per entry: u8 purchase, u16 id length, the id;
 *   u16 n_purchased, u16 n_seen, then per set entry: u32 stamp,
 *   u16 id length, the id (purchased first);
 *   u32 detector row length, the row.
 * Marker (kind 2): i64 pos[3], u8 lineage length, the lineage, u64 seq.
 */
#include "changelog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itemset.h"

/* --- writing ------------------------------------------------------------ */

static int grow(advrec_changelog_buf_t *b, size_t more)
{
    size_t cap;
    unsigned char *p;

    if (b->cap - b->len >= more)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    if (!(p = realloc(b->p, cap)))
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Appends n bytes; the caller grew the buffer. */
static void put(advrec_changelog_buf_t *b, const void *v, size_t n)
{
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u8(advrec_changelog_buf_t *b, uint8_t v)
{
    put(b, &v, 1);
}
static void put_u16(advrec_changelog_buf_t *b, uint16_t v)
{
    put(b, &v, 2);
}
static void put_u32(advrec_changelog_buf_t *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put_u64(advrec_changelog_buf_t *b, uint64_t v)
{
    put(b, &v, 8);
}

/* Appends an item's id (u16 length, bytes); -1 without memory. */
static int put_item(advrec_changelog_buf_t *b, advrec_state_t *state,
                    uint32_t item)
{
    const char *id = advrec_state_item_name(state, item);
    size_t len = id ? strlen(id) : 0;

    if (len > UINT16_MAX)
        len = UINT16_MAX; /* ids are bounded far below (event.h) */
    if (grow(b, 2 + len))
        return -1;
    put_u16(b, (uint16_t)len);
    put(b, id ? id : "", len);
    return 0;
}

static void put_pos(advrec_changelog_buf_t *b, const advrec_changelog_pos_t *p)
{
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
        put_u64(b, (uint64_t)p->next[t]);
}

advrec_err_t advrec_changelog_encode_user(advrec_changelog_buf_t *out,
                                          advrec_state_t *state, uint32_t idx,
                                          const advrec_changelog_pos_t *pos,
                                          int owed, const void *det,
                                          size_t det_len)
{
    const advrec_rows_t *users = advrec_state_users(state);
    const advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t h = advrec_state_params(state)->history, k = users->k;
    uint32_t n = ux->hist_len[idx], head = ux->hist_head[idx];
    const uint32_t *ring = ux->hist + (size_t)idx * h;

    out->len = 0;
    if (grow(out, 2 + 24 + 1 + 2 + 4 + 16 + 4 * (size_t)k + 4 + 1 + 4 + 16 + 2))
        return ADVREC_ERR_NOMEM;
    put_u8(out, ADVREC_CHANGELOG_FORMAT);
    put_u8(out, ADVREC_CHANGELOG_USER);
    put_pos(out, pos);
    put_u8(out, owed ? 1 : 0);
    put_u16(out, (uint16_t)k);
    put_u32(out, users->updates[idx]);
    put_u64(out, users->clicks[idx]);
    put_u64(out, users->purchases[idx]);
    put(out, users->w + (size_t)idx * k, 4 * (size_t)k);
    put(out, users->acc + idx, 4);
    put_u8(out, ux->last[idx].topic);
    put_u32(out, (uint32_t)ux->last[idx].partition);
    put_u64(out, (uint64_t)ux->last[idx].offset);
    put_u64(out, (uint64_t)ux->last_ts_ms[idx]);
    put_u16(out, (uint16_t)n);
    /* Oldest first: the ring's oldest entry is at head once it is full. */
    for (uint32_t j = 0; j < n; j++) {
        uint32_t e = ring[n < h ? j : (head + j) % h];
        if (grow(out, 1))
            return ADVREC_ERR_NOMEM;
        put_u8(out, (e & ADVREC_HIST_PURCHASE) ? 1 : 0);
        if (put_item(out, state, e & ADVREC_HIST_ITEM))
            return ADVREC_ERR_NOMEM;
    }
    if (grow(out, 4))
        return ADVREC_ERR_NOMEM;
    put_u16(out, (uint16_t)advrec_itemset_count(ux->purchased[idx]));
    put_u16(out, (uint16_t)advrec_itemset_count(ux->seen[idx]));
    for (int which = 0; which < 2; which++) {
        const advrec_itemset_t *set =
            which ? ux->seen[idx] : ux->purchased[idx];
        uint32_t cnt = advrec_itemset_count(set);
        const uint32_t *items = advrec_itemset_items(set);
        const uint32_t *stamps = advrec_itemset_stamps(set);
        for (uint32_t j = 0; j < cnt; j++) {
            if (grow(out, 4))
                return ADVREC_ERR_NOMEM;
            put_u32(out, stamps[j]);
            if (put_item(out, state, items[j]))
                return ADVREC_ERR_NOMEM;
        }
    }
    if (grow(out, 4 + det_len))
        return ADVREC_ERR_NOMEM;
    put_u32(out, (uint32_t)det_len);
    if (det_len)
        put(out, det, det_len);
    return ADVREC_OK;
}

advrec_err_t
advrec_changelog_encode_marker(advrec_changelog_buf_t *out,
                               const advrec_changelog_marker_t *marker)
{
    size_t len = strnlen(marker->lineage, sizeof(marker->lineage) - 1);

    out->len = 0;
    if (grow(out, 2 + 24 + 1 + len + 8))
        return ADVREC_ERR_NOMEM;
    put_u8(out, ADVREC_CHANGELOG_FORMAT);
    put_u8(out, ADVREC_CHANGELOG_MARKER);
    put_pos(out, &marker->pos);
    put_u8(out, (uint8_t)len);
    put(out, marker->lineage, len);
    put_u64(out, marker->seq);
    return ADVREC_OK;
}

/* --- reading ------------------------------------------------------------ */

typedef struct rd_s {
    const unsigned char *p;
    size_t len, off;
    const char *bad; /* the first field that did not fit */
} rd_t;

/* A view of the next n bytes, or NULL (and r->bad = what) past the end. */
static const unsigned char *take(rd_t *r, size_t n, const char *what)
{
    const unsigned char *v;

    if (r->bad || r->len - r->off < n) {
        if (!r->bad)
            r->bad = what;
        return NULL;
    }
    v = r->p + r->off;
    r->off += n;
    return v;
}

static uint64_t take_u(rd_t *r, size_t n, const char *what)
{
    const unsigned char *v = take(r, n, what);
    uint64_t u = 0;

    if (v)
        memcpy(&u, v, n); /* little-endian host, as the writer */
    return u;
}

/* Skips an item id (u16 length, bytes). */
static void skip_item(rd_t *r, const char *what)
{
    size_t len = (size_t)take_u(r, 2, what);
    (void)take(r, len, what);
}

static void take_pos(rd_t *r, advrec_changelog_pos_t *pos)
{
    for (int t = 0; t < ADVREC_CHANGELOG_TOPICS; t++)
        pos->next[t] = (int64_t)take_u(r, 8, "position");
}

advrec_err_t advrec_changelog_decode(const void *value, size_t len,
                                     advrec_changelog_kind_t *kind,
                                     advrec_changelog_user_t *u,
                                     advrec_changelog_marker_t *m, char *errstr,
                                     size_t errstr_size)
{
    rd_t r = {value, len, 0, NULL};
    unsigned format = (unsigned)take_u(&r, 1, "format");
    unsigned k = (unsigned)take_u(&r, 1, "kind");

    if (!r.bad && format != ADVREC_CHANGELOG_FORMAT)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "changelog record of format %u (this build "
                             "reads format %d)",
                             format, ADVREC_CHANGELOG_FORMAT);
    if (!r.bad && k == ADVREC_CHANGELOG_MARKER) {
        size_t n;
        const unsigned char *id;
        memset(m, 0, sizeof(*m));
        take_pos(&r, &m->pos);
        n = (size_t)take_u(&r, 1, "lineage length");
        if (n >= sizeof(m->lineage) && !r.bad)
            r.bad = "lineage length";
        if ((id = take(&r, n, "lineage")))
            memcpy(m->lineage, id, n);
        m->seq = take_u(&r, 8, "seq");
    } else if (!r.bad && k == ADVREC_CHANGELOG_USER) {
        memset(u, 0, sizeof(*u));
        take_pos(&r, &u->pos);
        u->owed = (int)(take_u(&r, 1, "flags") & 1);
        u->k = (uint32_t)take_u(&r, 2, "k");
        u->updates = (uint32_t)take_u(&r, 4, "updates");
        u->clicks = take_u(&r, 8, "clicks");
        u->purchases = take_u(&r, 8, "purchases");
        u->w = take(&r, 4 * (size_t)u->k, "factors");
        {
            uint32_t a = (uint32_t)take_u(&r, 4, "accumulator");
            memcpy(&u->acc, &a, 4);
        }
        u->last.topic = (uint8_t)take_u(&r, 1, "last topic");
        u->last.partition = (int32_t)take_u(&r, 4, "last partition");
        u->last.offset = (int64_t)take_u(&r, 8, "last offset");
        u->last_ts_ms = (int64_t)take_u(&r, 8, "last time");
        u->n_hist = (uint32_t)take_u(&r, 2, "history length");
        u->hist = r.p + r.off;
        for (uint32_t j = 0; j < u->n_hist && !r.bad; j++) {
            (void)take(&r, 1, "history entry");
            skip_item(&r, "history entry");
        }
        u->hist_bytes = (size_t)(r.p + r.off - u->hist);
        u->n_purchased = (uint32_t)take_u(&r, 2, "purchased count");
        u->n_seen = (uint32_t)take_u(&r, 2, "seen count");
        u->sets = r.p + r.off;
        for (uint32_t j = 0; j < u->n_purchased + u->n_seen && !r.bad; j++) {
            (void)take(&r, 4, "set entry");
            skip_item(&r, "set entry");
        }
        u->sets_bytes = (size_t)(r.p + r.off - u->sets);
        u->det_len = (size_t)take_u(&r, 4, "detector row length");
        u->det = take(&r, u->det_len, "detector row");
        if (u->det_len == 0)
            u->det = NULL;
    } else if (!r.bad) {
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "changelog record of unknown kind %u", k);
    }
    if (r.bad)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "changelog record of %zu bytes ends in its %s",
                             len, r.bad);
    if (r.off != len)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "changelog record has %zu bytes after its end",
                             len - r.off);
    *kind = (advrec_changelog_kind_t)k;
    return ADVREC_OK;
}

/* --- applying ----------------------------------------------------------- */

/* Reads an item id at r into buf (NUL-terminated) and interns it. */
static advrec_err_t take_item(rd_t *r, advrec_changelog_item_cb *item,
                              void *opaque, uint32_t *idx, char *errstr,
                              size_t errstr_size)
{
    char id[UINT16_MAX + 1];
    size_t len = (size_t)take_u(r, 2, "item");
    const unsigned char *v = take(r, len, "item");

    if (!v)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "changelog record ends in an item id");
    memcpy(id, v, len);
    id[len] = '\0';
    return item(opaque, id, idx, errstr, errstr_size);
}

static int by_item(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x >> 32 > y >> 32) - (x >> 32 < y >> 32);
}

advrec_err_t advrec_changelog_apply_user(advrec_state_t *state, uint32_t idx,
                                         const advrec_changelog_user_t *u,
                                         advrec_changelog_item_cb *item,
                                         void *opaque, char *errstr,
                                         size_t errstr_size)
{
    advrec_rows_t *users = advrec_state_users(state);
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    const advrec_state_params_t *sp = advrec_state_params(state);
    uint32_t h = sp->history, k = users->k;
    rd_t r = {u->hist, u->hist_bytes, 0, NULL};
    uint64_t *pairs = NULL;
    uint32_t *items = NULL, *stamps = NULL;
    advrec_err_t err = ADVREC_OK;

    if (u->k != k)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "changelog record has model.k=%u, this state "
                             "%u",
                             (unsigned)u->k, (unsigned)k);
    /* The ring: its newest h entries, oldest first from slot 0. */
    ux->hist_len[idx] = 0;
    ux->hist_head[idx] = 0;
    for (uint32_t j = 0; j < u->n_hist; j++) {
        uint32_t it;
        unsigned purchase = (unsigned)take_u(&r, 1, "history entry");
        if ((err = take_item(&r, item, opaque, &it, errstr, errstr_size)))
            return err;
        if (u->n_hist - j > h)
            continue; /* a shorter ring here: the oldest go */
        advrec_state_push_history(state, idx,
                                  it | (purchase ? ADVREC_HIST_PURCHASE : 0));
    }
    /* The sets: (item index, stamp) pairs sorted by index. */
    r = (rd_t){u->sets, u->sets_bytes, 0, NULL};
    for (int which = 0; which < 2 && !err; which++) {
        uint32_t n = which ? u->n_seen : u->n_purchased;
        advrec_itemset_t **set = which ? &ux->seen[idx] : &ux->purchased[idx];
        uint32_t max = which ? sp->seen_max : sp->purchased_max;
        pairs = realloc(pairs, ((size_t)n + 1) * sizeof(*pairs));
        items = realloc(items, ((size_t)n + 1) * sizeof(*items));
        stamps = realloc(stamps, ((size_t)n + 1) * sizeof(*stamps));
        if (!pairs || !items || !stamps) {
            err = ADVREC_ERR_NOMEM;
            break;
        }
        for (uint32_t j = 0; j < n && !err; j++) {
            uint32_t it, st = (uint32_t)take_u(&r, 4, "set entry");
            if (!(err = take_item(&r, item, opaque, &it, errstr, errstr_size)))
                pairs[j] = (uint64_t)it << 32 | st;
        }
        if (err)
            break;
        qsort(pairs, n, sizeof(*pairs), by_item);
        for (uint32_t j = 0; j < n; j++) {
            items[j] = (uint32_t)(pairs[j] >> 32);
            stamps[j] = (uint32_t)pairs[j];
        }
        if (max == 0) {
            advrec_itemset_free(*set);
            *set = NULL;
        } else if (n == 0) {
            advrec_itemset_free(*set);
            *set = NULL;
        } else {
            err = advrec_itemset_restore(set, items, stamps, n, max);
        }
    }
    free(pairs);
    free(items);
    free(stamps);
    if (err) {
        if (err == ADVREC_ERR_NOMEM || err == ADVREC_ERR_INVALID_ARG)
            advrec_seterr(err, errstr, errstr_size,
                          "changelog record: the sets cannot be restored (%s)",
                          advrec_err2str(err));
        return err;
    }
    memcpy(users->w + (size_t)idx * k, u->w, 4 * (size_t)k);
    users->acc[idx] = u->acc;
    users->updates[idx] = u->updates;
    users->clicks[idx] = u->clicks;
    users->purchases[idx] = u->purchases;
    ux->last[idx] = u->last;
    ux->last_ts_ms[idx] = u->last_ts_ms;
    advrec_rows_touch(users, idx);
    return ADVREC_OK;
}
