/*
 * itemsync.c - owns the base rows (each item's initial row plus what was
 * merged from peers), the peers' last applied cumulatives, the update
 * count of each item at its last publish, and the wire format of the
 * item-factor delta records (docs/SCHEMAS.md "Item-factor deltas").
 */
#include "itemsync.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first four bytes of every value: "AISD" (advrec item-sync delta). */
static const uint8_t MAGIC[4] = {'A', 'I', 'S', 'D'};

/* A peer and the cumulative it last reported per item (0 until then:
 * nothing applied is nothing to subtract). */
typedef struct peer_s {
    char id[ADVREC_ITEMSYNC_INSTANCE_MAX + 1];
    float *w; /* cap x k */
    float *acc, *bias, *bias_acc;
    uint32_t *updates;
} peer_t;

struct advrec_itemsync_s {
    advrec_itemsync_params_t p;
    char instance[ADVREC_ITEMSYNC_INSTANCE_MAX + 1];
    advrec_state_t *state; /* the caller's */
    uint32_t k;
    uint32_t n, cap; /* items tracked (a prefix of the item table) */
    /* The base: what of each local row is not this instance's own. */
    float *w; /* cap x k */
    float *acc, *bias, *bias_acc;
    uint32_t *updates;
    uint32_t *sent;     /* own update count when last published */
    uint8_t *recovered; /* items with a record read by recover() */
    peer_t *peers;
    uint32_t n_peers;
    float *rec_w; /* k floats: a decoded or encoded record's factors */
    uint8_t *buf; /* one value */
    advrec_itemsync_stats_t stats;
};

/* ---- wire format ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof(v));
    put_u32(p, v);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static float get_f32(const uint8_t *p)
{
    uint32_t v = get_u32(p);
    float f;

    memcpy(&f, &v, sizeof(f));
    return f;
}

static int instance_ok(const char *s, size_t len)
{
    if (len < 1 || len > ADVREC_ITEMSYNC_INSTANCE_MAX)
        return 0;
    for (size_t c = 0; c < len; c++) {
        char x = s[c];
        if (!((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') ||
              (x >= '0' && x <= '9') || x == '.' || x == '_' || x == '-'))
            return 0;
    }
    return 1;
}

/* The key as printable text for an error message (bytes outside
 * printable ASCII as '?', at most 80 of them). */
static void key_text(const char *key, size_t len, char *out, size_t size)
{
    size_t n = len < 80 ? len : 80, o = 0;

    for (size_t c = 0; c < n && o + 1 < size; c++)
        out[o++] = key[c] >= 0x20 && key[c] < 0x7f ? key[c] : '?';
    if (len > n && o + 3 < size)
        for (int d = 0; d < 3; d++)
            out[o++] = '.';
    out[o] = '\0';
}

advrec_err_t advrec_itemsync_encode(const advrec_itemsync_record_t *rec,
                                    char *key, size_t key_size, size_t *key_len,
                                    uint8_t *value, size_t value_size,
                                    size_t *value_len, char *errstr,
                                    size_t errstr_size)
{
    size_t il = strlen(rec->instance), tl = strlen(rec->item);
    size_t vl = ADVREC_ITEMSYNC_HEADER + 4 * (size_t)rec->k;

    if (!instance_ok(rec->instance, il) || tl < 1 || tl >= ADVREC_ID_MAX ||
        rec->k < 1 || rec->k > ADVREC_APR_K_MAX)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "itemsync: cannot encode instance \"%s\", item "
                             "\"%s\", k %u",
                             rec->instance, rec->item, rec->k);
    if (il + 1 + tl > key_size || vl > value_size)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "itemsync: buffers of %zu and %zu bytes for a "
                             "key of %zu and a value of %zu",
                             key_size, value_size, il + 1 + tl, vl);
    memcpy(key, rec->instance, il);
    key[il] = '/';
    memcpy(key + il + 1, rec->item, tl);
    *key_len = il + 1 + tl;
    memcpy(value, MAGIC, 4);
    put_u16(value + 4, ADVREC_ITEMSYNC_VERSION);
    put_u16(value + 6, (uint16_t)rec->k);
    put_u32(value + 8, rec->flags);
    put_u32(value + 12, rec->updates);
    put_f32(value + 16, rec->acc);
    put_f32(value + 20, rec->bias);
    put_f32(value + 24, rec->bias_acc);
    for (uint32_t n = 0; n < rec->k; n++)
        put_f32(value + ADVREC_ITEMSYNC_HEADER + 4 * n, rec->w[n]);
    *value_len = vl;
    return ADVREC_OK;
}

static int factor_ok(float x)
{
    return isfinite(x) && fabsf(x) <= ADVREC_ITEMSYNC_FACTOR_MAX;
}

static int acc_ok(float x)
{
    return isfinite(x) && fabsf(x) <= ADVREC_ITEMSYNC_ACC_MAX;
}

advrec_err_t advrec_itemsync_decode(const char *key, size_t key_len,
                                    const uint8_t *value, size_t value_len,
                                    uint32_t k, advrec_itemsync_record_t *rec,
                                    char *errstr, size_t errstr_size)
{
    const char *slash = key ? memchr(key, '/', key_len) : NULL;
    char kt[96];
    size_t il, tl;
    uint32_t rk, version;

    key_text(key ? key : "", key ? key_len : 0, kt, sizeof(kt));
    if (!slash)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": not <instance>/<item>", kt);
    il = (size_t)(slash - key);
    tl = key_len - il - 1;
    if (!instance_ok(key, il))
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": the instance id must be "
                             "1..%d bytes of [A-Za-z0-9._-]",
                             kt, ADVREC_ITEMSYNC_INSTANCE_MAX);
    if (tl < 1 || tl >= ADVREC_ID_MAX || memchr(slash + 1, '\0', tl))
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": the item id must be "
                             "1..%d bytes without NUL",
                             kt, ADVREC_ID_MAX - 1);
    memcpy(rec->instance, key, il);
    rec->instance[il] = '\0';
    memcpy(rec->item, slash + 1, tl);
    rec->item[tl] = '\0';
    if (value_len == 0)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "itemsync: key \"%s\": a tombstone", kt);
    if (value_len < ADVREC_ITEMSYNC_HEADER)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": %zu bytes, shorter than "
                             "the %d-byte header",
                             kt, value_len, ADVREC_ITEMSYNC_HEADER);
    if (memcmp(value, MAGIC, 4) != 0)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": bad magic (not an "
                             "item-factor delta)",
                             kt);
    version = get_u16(value + 4);
    if (version != ADVREC_ITEMSYNC_VERSION)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": format version %u, this "
                             "build reads %d",
                             kt, version, ADVREC_ITEMSYNC_VERSION);
    rk = get_u16(value + 6);
    if (rk != k)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": k %u, this instance "
                             "trains k %u (model.k must agree)",
                             kt, rk, k);
    if (value_len != ADVREC_ITEMSYNC_HEADER + 4 * (size_t)k)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": %zu bytes, k %u needs "
                             "%zu",
                             kt, value_len, k,
                             ADVREC_ITEMSYNC_HEADER + 4 * (size_t)k);
    rec->k = k;
    rec->flags = get_u32(value + 8);
    if (rec->flags & ~ADVREC_ITEMSYNC_F_BIAS)
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": unknown flags 0x%x", kt,
                             rec->flags);
    rec->updates = get_u32(value + 12);
    rec->acc = get_f32(value + 16);
    rec->bias = get_f32(value + 20);
    rec->bias_acc = get_f32(value + 24);
    if (!acc_ok(rec->acc) || !acc_ok(rec->bias_acc) || !factor_ok(rec->bias))
        return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                             "itemsync: key \"%s\": accumulator %g, bias %g "
                             "or its accumulator %g not finite or out of "
                             "range",
                             kt, (double)rec->acc, (double)rec->bias,
                             (double)rec->bias_acc);
    for (uint32_t n = 0; n < k; n++) {
        rec->w[n] = get_f32(value + ADVREC_ITEMSYNC_HEADER + 4 * n);
        if (!factor_ok(rec->w[n]))
            return advrec_seterr(ADVREC_ERR_DECODE, errstr, errstr_size,
                                 "itemsync: key \"%s\": factor %u is %g (not "
                                 "finite or |x| > %g)",
                                 kt, n, (double)rec->w[n],
                                 (double)ADVREC_ITEMSYNC_FACTOR_MAX);
    }
    return ADVREC_OK;
}

/* ---- the exchange ---- */

static void peer_free(peer_t *p)
{
    free(p->w);
    free(p->acc);
    free(p->bias);
    free(p->bias_acc);
    free(p->updates);
}

void advrec_itemsync_destroy(advrec_itemsync_t *s)
{
    if (!s)
        return;
    for (uint32_t q = 0; q < s->n_peers; q++)
        peer_free(&s->peers[q]);
    free(s->peers);
    free(s->w);
    free(s->acc);
    free(s->bias);
    free(s->bias_acc);
    free(s->updates);
    free(s->sent);
    free(s->recovered);
    free(s->rec_w);
    free(s->buf);
    free(s);
}

/* Grows *v from old to cap elements of size sz, zeroing the new ones. */
static int grow(void *v, size_t old, size_t cap, size_t sz)
{
    void **pv = v;
    unsigned char *n = realloc(*pv, cap * sz);

    if (!n)
        return -1;
    memset(n + old * sz, 0, (cap - old) * sz);
    *pv = n;
    return 0;
}

/* Room for cap items in the base and in every peer. */
static advrec_err_t reserve(advrec_itemsync_t *s, uint32_t need)
{
    size_t k = s->k, cap = s->cap ? s->cap : 1024;

    if (need <= s->cap)
        return ADVREC_OK;
    while (cap < need)
        cap *= 2;
    if (grow(&s->w, s->cap * k, cap * k, sizeof(float)) ||
        grow(&s->acc, s->cap, cap, sizeof(float)) ||
        grow(&s->bias, s->cap, cap, sizeof(float)) ||
        grow(&s->bias_acc, s->cap, cap, sizeof(float)) ||
        grow(&s->updates, s->cap, cap, sizeof(uint32_t)) ||
        grow(&s->sent, s->cap, cap, sizeof(uint32_t)) ||
        grow(&s->recovered, s->cap, cap, sizeof(uint8_t)))
        return ADVREC_ERR_NOMEM;
    for (uint32_t q = 0; q < s->n_peers; q++) {
        peer_t *p = &s->peers[q];
        if (grow(&p->w, s->cap * k, cap * k, sizeof(float)) ||
            grow(&p->acc, s->cap, cap, sizeof(float)) ||
            grow(&p->bias, s->cap, cap, sizeof(float)) ||
            grow(&p->bias_acc, s->cap, cap, sizeof(float)) ||
            grow(&p->updates, s->cap, cap, sizeof(uint32_t)))
            return ADVREC_ERR_NOMEM;
    }
    s->cap = (uint32_t)cap;
    return ADVREC_OK;
}

/*
 * Tracks the items the state gained since the last call: their base is
 * their deterministic initial row (what every instance starts the item
 * from), so all they trained since is this instance's. ADVREC_ERR_NOMEM.
 */
static advrec_err_t track(advrec_itemsync_t *s)
{
    uint32_t n = advrec_state_items(s->state)->n;

    if (n <= s->n)
        return ADVREC_OK;
    if (reserve(s, n))
        return ADVREC_ERR_NOMEM;
    for (uint32_t i = s->n; i < n; i++) {
        advrec_apr_row_t row = {.w = s->w + (size_t)i * s->k,
                                .acc = s->acc + i,
                                .bias = s->bias + i,
                                .bias_acc = s->bias_acc + i,
                                .updates = s->updates + i};
        advrec_apr_row_init(&s->p.apr, ADVREC_APR_ITEM,
                            advrec_state_item_name(s->state, i), &row);
    }
    s->n = n;
    return ADVREC_OK;
}

advrec_itemsync_t *advrec_itemsync_new(const advrec_itemsync_params_t *params,
                                       advrec_state_t *state, char *errstr,
                                       size_t errstr_size)
{
    advrec_itemsync_t *s;
    advrec_rows_t *items = advrec_state_items(state);
    size_t il = params->instance ? strlen(params->instance) : 0;

    if (!instance_ok(params->instance, il)) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "itemsync: instance id \"%s\" must be 1..%d bytes of "
                      "[A-Za-z0-9._-]",
                      params->instance ? params->instance : "",
                      ADVREC_ITEMSYNC_INSTANCE_MAX);
        return NULL;
    }
    if (params->apr.k < 1 || (uint32_t)params->apr.k != items->k ||
        params->max_peers < 1) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "itemsync: k %d (the state's is %u), max_peers %u (>= "
                      "1)",
                      params->apr.k, items->k, params->max_peers);
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s))))
        goto nomem;
    s->p = *params;
    memcpy(s->instance, params->instance, il + 1);
    s->p.instance = s->instance;
    s->state = state;
    s->k = items->k;
    s->rec_w = malloc(s->k * sizeof(float));
    s->buf = malloc(ADVREC_ITEMSYNC_HEADER + 4 * (size_t)s->k);
    if (!s->rec_w || !s->buf || reserve(s, items->n ? items->n : 1))
        goto nomem;
    /* What the state holds now is not ours to publish: it is the base.
     * (An empty table may have no arrays yet.) */
    if (items->n) {
        memcpy(s->w, items->w, (size_t)items->n * s->k * sizeof(float));
        memcpy(s->acc, items->acc, items->n * sizeof(float));
        memcpy(s->bias, items->bias, items->n * sizeof(float));
        memcpy(s->bias_acc, items->bias_acc, items->n * sizeof(float));
        memcpy(s->updates, items->updates, items->n * sizeof(uint32_t));
    }
    s->n = items->n;
    return s;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "itemsync: out of memory");
    advrec_itemsync_destroy(s);
    return NULL;
}

advrec_err_t advrec_itemsync_publish(advrec_itemsync_t *s,
                                     advrec_itemsync_emit_cb *emit,
                                     void *opaque, size_t *n_out, char *errstr,
                                     size_t errstr_size)
{
    advrec_itemsync_record_t rec;
    advrec_rows_t *items;
    char key[ADVREC_ITEMSYNC_INSTANCE_MAX + 1 + ADVREC_ID_MAX];
    size_t emitted = 0, kl, vl;
    int bias = s->p.apr.use_bias;

    if (n_out)
        *n_out = 0;
    if (track(s))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "itemsync: out of memory tracking %u items",
                             advrec_state_items(s->state)->n);
    items = advrec_state_items(s->state);
    memset(&rec, 0, sizeof(rec));
    memcpy(rec.instance, s->instance, sizeof(rec.instance));
    rec.k = s->k;
    rec.flags = bias ? ADVREC_ITEMSYNC_F_BIAS : 0;
    rec.w = s->rec_w;
    for (uint32_t i = 0; i < s->n; i++) {
        const float *lw = items->w + (size_t)i * s->k,
                    *bw = s->w + (size_t)i * s->k;
        uint32_t own = items->updates[i] - s->updates[i];
        if (own == s->sent[i])
            continue;
        for (uint32_t n = 0; n < s->k; n++)
            rec.w[n] = lw[n] - bw[n];
        rec.updates = own;
        rec.acc = items->acc[i] - s->acc[i];
        rec.bias = bias ? items->bias[i] - s->bias[i] : 0;
        rec.bias_acc = bias ? items->bias_acc[i] - s->bias_acc[i] : 0;
        snprintf(rec.item, sizeof(rec.item), "%s",
                 advrec_state_item_name(s->state, i));
        if (advrec_itemsync_encode(&rec, key, sizeof(key), &kl, s->buf,
                                   ADVREC_ITEMSYNC_HEADER + 4 * (size_t)s->k,
                                   &vl, errstr, errstr_size))
            return ADVREC_ERR_INVALID_ARG; /* not reached: ids are valid */
        if (emit(opaque, key, kl, s->buf, vl)) {
            if (n_out)
                *n_out = emitted;
            return advrec_seterr(ADVREC_ERR_STOPPED, errstr, errstr_size,
                                 "itemsync: the record of item \"%s\" was "
                                 "refused; %zu sent, the rest stay owed",
                                 rec.item, emitted);
        }
        s->sent[i] = own;
        emitted++;
        s->stats.published++;
    }
    if (n_out)
        *n_out = emitted;
    return ADVREC_OK;
}

advrec_err_t advrec_itemsync_owe(advrec_itemsync_t *s, const char *key,
                                 size_t key_len)
{
    size_t il = strlen(s->instance);
    char id[ADVREC_ID_MAX], errstr[ADVREC_ID_MAX + 64];
    uint32_t idx;

    if (!key || key_len <= il + 1 || key_len - il - 1 >= sizeof(id) ||
        memcmp(key, s->instance, il) != 0 || key[il] != '/')
        return ADVREC_ERR_NOT_FOUND;
    memcpy(id, key + il + 1, key_len - il - 1);
    id[key_len - il - 1] = '\0';
    if (advrec_state_item(s->state, id, 0, &idx, NULL, errstr,
                          sizeof(errstr)) ||
        idx >= s->n)
        return ADVREC_ERR_NOT_FOUND;
    /* publish() skips an item whose count of own updates equals the count
     * last sent; one less than the count now differs until it is sent
     * (counts only grow, and a record was sent only for a count above 0). */
    s->sent[idx] =
        advrec_state_items(s->state)->updates[idx] - s->updates[idx] - 1;
    return ADVREC_OK;
}

/* The peer named id, made (with room for every tracked item) when new;
 * NULL when the peer table is full or memory is short (*err says which). */
static peer_t *peer_of(advrec_itemsync_t *s, const char *id, advrec_err_t *err)
{
    peer_t *p, *v;
    size_t k = s->k;

    for (uint32_t q = 0; q < s->n_peers; q++)
        if (strcmp(s->peers[q].id, id) == 0)
            return &s->peers[q];
    *err = ADVREC_ERR_FULL;
    if (s->n_peers >= s->p.max_peers)
        return NULL;
    *err = ADVREC_ERR_NOMEM;
    if (!(v = realloc(s->peers, (s->n_peers + 1) * sizeof(*v))))
        return NULL;
    s->peers = v;
    p = &s->peers[s->n_peers];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->w = calloc((size_t)s->cap * k + 1, sizeof(float));
    p->acc = calloc((size_t)s->cap + 1, sizeof(float));
    p->bias = calloc((size_t)s->cap + 1, sizeof(float));
    p->bias_acc = calloc((size_t)s->cap + 1, sizeof(float));
    p->updates = calloc((size_t)s->cap + 1, sizeof(uint32_t));
    if (!p->w || !p->acc || !p->bias || !p->bias_acc || !p->updates) {
        peer_free(p);
        return NULL;
    }
    s->n_peers++;
    s->stats.peers = s->n_peers;
    return p;
}

/* Adds the difference between a peer's new and last cumulative to the
 * local value and the base, and remembers the new one. */
static void add_diff(float *local, float *base, float *last, float now)
{
    float d = now - *last;

    *local += d;
    *base += d;
    *last = now;
}

/* The same for a count, clamped to what a uint32_t holds. */
static uint32_t clamp_add(uint32_t v, int64_t d)
{
    int64_t r = (int64_t)v + d;

    return r < 0 ? 0 : r > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

/*
 * What merge() and recover() share: rec decoded (into s->rec_w), its peer
 * in *pp (NULL, with ADVREC_OK, for a tombstone, and for this instance's
 * own record unless own is set), its item in *idx, made with its initial
 * row when new and tracked. Errors as merge()'s, counted as refused.
 */
static advrec_err_t take(advrec_itemsync_t *s, const char *key, size_t key_len,
                         const uint8_t *value, size_t value_len, int own,
                         advrec_itemsync_record_t *rec, peer_t **pp,
                         uint32_t *idx, char *errstr, size_t errstr_size)
{
    advrec_err_t err;
    int created = 0, bias = s->p.apr.use_bias;
    advrec_rows_t *items;

    *pp = NULL;
    rec->w = s->rec_w;
    err = advrec_itemsync_decode(key, key_len, value, value_len, s->k, rec,
                                 errstr, errstr_size);
    if (err == ADVREC_ERR_NOT_FOUND)
        return ADVREC_OK; /* a tombstone: nothing to add */
    if (err) {
        s->stats.refused++;
        return err;
    }
    if (!own && strcmp(rec->instance, s->instance) == 0) {
        s->stats.own++;
        return ADVREC_OK;
    }
    if (!(*pp = peer_of(s, rec->instance, &err))) {
        s->stats.refused++;
        return advrec_seterr(err, errstr, errstr_size,
                             "itemsync: record of item \"%s\" from \"%s\": %s",
                             rec->item, rec->instance,
                             err == ADVREC_ERR_FULL
                                 ? "one peer more than max_peers"
                                 : "out of memory");
    }
    err = advrec_state_item(s->state, rec->item, 1, idx, &created, errstr,
                            errstr_size);
    if (err) {
        *pp = NULL;
        s->stats.refused++;
        return err; /* FULL or NOMEM, errstr names the item */
    }
    items = advrec_state_items(s->state);
    if (created) {
        advrec_apr_row_t row = {.w = items->w + (size_t)*idx * s->k,
                                .acc = items->acc + *idx,
                                .bias = bias ? items->bias + *idx : NULL,
                                .bias_acc =
                                    bias ? items->bias_acc + *idx : NULL,
                                .updates = items->updates + *idx};
        advrec_apr_row_init(&s->p.apr, ADVREC_APR_ITEM, rec->item, &row);
        s->stats.created++;
    }
    /* A new item (made here or by the engine since) gets its base, and
     * every peer's table grows with it (the peer itself does not move). */
    if (track(s)) {
        *pp = NULL;
        s->stats.refused++;
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "itemsync: out of memory tracking item \"%s\"",
                             rec->item);
    }
    return ADVREC_OK;
}

advrec_err_t advrec_itemsync_merge(advrec_itemsync_t *s, const char *key,
                                   size_t key_len, const uint8_t *value,
                                   size_t value_len, char *errstr,
                                   size_t errstr_size)
{
    advrec_itemsync_record_t rec;
    advrec_rows_t *items;
    advrec_err_t err;
    peer_t *p;
    uint32_t idx;
    int bias = s->p.apr.use_bias;
    int64_t du;

    if ((err = take(s, key, key_len, value, value_len, 0, &rec, &p, &idx,
                    errstr, errstr_size)) ||
        !p)
        return err; /* or a tombstone, or this instance's own record */
    items = advrec_state_items(s->state);
    {
        float *lw = items->w + (size_t)idx * s->k,
              *bw = s->w + (size_t)idx * s->k, *pw = p->w + (size_t)idx * s->k;
        for (uint32_t n = 0; n < s->k; n++)
            add_diff(lw + n, bw + n, pw + n, rec.w[n]);
    }
    if (bias && (rec.flags & ADVREC_ITEMSYNC_F_BIAS))
        add_diff(items->bias + idx, s->bias + idx, p->bias + idx, rec.bias);
    if (s->p.share_acc) {
        add_diff(items->acc + idx, s->acc + idx, p->acc + idx, rec.acc);
        /* Rounding (or a peer that started over) must not leave Adagrad a
         * negative sum of squares. */
        if (items->acc[idx] < 0)
            items->acc[idx] = 0;
        if (bias && (rec.flags & ADVREC_ITEMSYNC_F_BIAS)) {
            add_diff(items->bias_acc + idx, s->bias_acc + idx,
                     p->bias_acc + idx, rec.bias_acc);
            if (items->bias_acc[idx] < 0)
                items->bias_acc[idx] = 0;
        }
    }
    du = (int64_t)rec.updates - (int64_t)p->updates[idx];
    items->updates[idx] = clamp_add(items->updates[idx], du);
    s->updates[idx] = clamp_add(s->updates[idx], du);
    p->updates[idx] = rec.updates;
    advrec_rows_touch(items, idx);
    s->stats.merged++;
    return ADVREC_OK;
}

advrec_err_t advrec_itemsync_recover(advrec_itemsync_t *s, const char *key,
                                     size_t key_len, const uint8_t *value,
                                     size_t value_len, char *errstr,
                                     size_t errstr_size)
{
    advrec_itemsync_record_t rec;
    advrec_err_t err;
    peer_t *p;
    uint32_t idx;

    /* This instance's own records too: they are its total. */
    if ((err = take(s, key, key_len, value, value_len, 1, &rec, &p, &idx,
                    errstr, errstr_size)) ||
        !p)
        return err; /* or a tombstone */
    /* The latest record of a key is its instance's total: replaced. */
    memcpy(p->w + (size_t)idx * s->k, rec.w, s->k * sizeof(float));
    p->acc[idx] = rec.acc;
    p->bias[idx] = (rec.flags & ADVREC_ITEMSYNC_F_BIAS) ? rec.bias : 0;
    p->bias_acc[idx] = (rec.flags & ADVREC_ITEMSYNC_F_BIAS) ? rec.bias_acc : 0;
    p->updates[idx] = rec.updates;
    s->recovered[idx] = 1;
    return ADVREC_OK;
}

void advrec_itemsync_recovered(advrec_itemsync_t *s)
{
    advrec_rows_t *items = advrec_state_items(s->state);
    int bias = s->p.apr.use_bias;
    uint32_t self = s->n_peers;
    float *w0 = s->rec_w, acc0 = 0, b0 = 0, bacc0 = 0;
    uint32_t u0 = 0;

    for (uint32_t q = 0; q < s->n_peers; q++)
        if (strcmp(s->peers[q].id, s->instance) == 0)
            self = q;
    for (uint32_t i = 0; i < s->n; i++) {
        advrec_apr_row_t row = {.w = w0,
                                .acc = &acc0,
                                .bias = &b0,
                                .bias_acc = &bacc0,
                                .updates = &u0};
        float *lw = items->w + (size_t)i * s->k, *bw = s->w + (size_t)i * s->k;
        if (!s->recovered[i])
            continue;
        advrec_apr_row_init(&s->p.apr, ADVREC_APR_ITEM,
                            advrec_state_item_name(s->state, i), &row);
        memcpy(bw, w0, s->k * sizeof(float));
        s->acc[i] = acc0;
        s->bias[i] = bias ? b0 : 0;
        s->bias_acc[i] = bias ? bacc0 : 0;
        s->updates[i] = 0;
        for (uint32_t q = 0; q < s->n_peers; q++) {
            const peer_t *p = &s->peers[q];
            if (q == self)
                continue;
            for (uint32_t n = 0; n < s->k; n++)
                bw[n] += p->w[(size_t)i * s->k + n];
            if (s->p.share_acc) {
                s->acc[i] += p->acc[i];
                s->bias_acc[i] += bias ? p->bias_acc[i] : 0;
            }
            s->bias[i] += bias ? p->bias[i] : 0;
            s->updates[i] = clamp_add(s->updates[i], p->updates[i]);
        }
        /* The local row: the base plus this instance's own total. */
        memcpy(lw, bw, s->k * sizeof(float));
        items->acc[i] = s->acc[i];
        items->bias[i] = s->bias[i];
        items->bias_acc[i] = s->bias_acc[i];
        items->updates[i] = s->updates[i];
        s->sent[i] = 0;
        if (self < s->n_peers) {
            const peer_t *p = &s->peers[self];
            for (uint32_t n = 0; n < s->k; n++)
                lw[n] += p->w[(size_t)i * s->k + n];
            items->acc[i] += p->acc[i];
            items->bias[i] += bias ? p->bias[i] : 0;
            items->bias_acc[i] += bias ? p->bias_acc[i] : 0;
            items->updates[i] = clamp_add(items->updates[i], p->updates[i]);
            s->sent[i] = p->updates[i];
        }
        s->recovered[i] = 0;
        advrec_rows_touch(items, i);
    }
    if (self < s->n_peers) {
        peer_free(&s->peers[self]);
        s->peers[self] = s->peers[--s->n_peers];
        s->stats.peers = s->n_peers;
    }
}

const char *advrec_itemsync_instance(const advrec_itemsync_t *s)
{
    return s->instance;
}

void advrec_itemsync_stats(const advrec_itemsync_t *s,
                           advrec_itemsync_stats_t *out)
{
    *out = s->stats;
}
