/*
 * outbox.c - every output the daemon owes, delivered at least once
 * (outbox.h). Owns the records owed (flags, dead letters), the users owed a
 * list, the delivery tag and the stored record format.
 *
 * Stored record (meta "pending/out/<seq>", the bytes kept in memory too):
 *   u8 format (1), u8 kind, u32 key length, u32 value length (either
 *   0xffffffff for a null key or value), u32 header bytes, then the headers
 * (each: u16 name length, name, i32 value length or -1 for none, value), the
 * key, the value; integers little-endian.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define REC_FORMAT   1
#define REC_HEADER   14
#define KEY_KEEP_MAX 1024 /* key bytes kept of a truncated dead letter */
/* The last resort when even that copy is refused: a small key and value,
 * and only our own advrec.* headers (input headers can be large too). */
#define LAST_KEY_MAX   256
#define LAST_VALUE_MAX 1024
#define LAST_LEVEL     2
#define NAME_MAX_LEN   65535 /* a header name's length is stored in a u16 */

/* Where a record is. */
enum {
    REC_NEW,        /* staged in the round's batch, commit not yet done */
    REC_COMMITTING, /* in a batch being written (commit started) */
    REC_DUE,        /* committed, to be produced (again) */
    REC_IN_FLIGHT,  /* produced, delivery report awaited */
    REC_DELIVERED,  /* acknowledged: deleted from the state at next stage */
};

/* One record owed to the broker. Its address is the delivery tag of its
 * produce (malloc'd, so the low two bits are 0); it is freed only once
 * delivered and its deletion staged, or with the outbox. */
typedef struct out_rec_s {
    uint64_t seq;
    uint8_t kind;
    uint8_t state;
    uint8_t legacy;    /* stored as meta pending/flag/<seq> (older format) */
    uint8_t truncated; /* 0 whole; 1, LAST_LEVEL: a dead letter's copy */
    size_t len;        /* of bytes[] */
    unsigned char bytes[];
} out_rec_t;

/* A list's tag: user number << 32 | slot << 2 | ADVREC_TAG_LIST (64-bit;
 * never a pointer, whose low bits are 0). */
#define SLOT_MASK 0x3fffffffu
_Static_assert(sizeof(uintptr_t) >= 8, "a list's tag holds two numbers");

struct advrec_outbox_s {
    advrec_outbox_params_t p;
    advrec_store_t *store; /* not owned; NULL: state in memory */
    advrec_kafka_t *producer;
    out_rec_t **recs; /* in seq order */
    size_t n_recs, recs_cap;
    size_t due;
    uint64_t next_seq;
    advrec_outbox_stats_t stats;

    /* Lists: per user lists in flight, and the users with some. */
    uint16_t *in_flight;
    uint8_t *listed; /* per user: in owed_list (once, until a stage) */
    uint32_t *owed_list;
    uint32_t owed_cap;
    size_t n_owed;
    uint32_t *pending; /* the owed set staged into each commit */
    size_t pending_cap;
    uint32_t *const *uids; /* slot -> uid (advrec_outbox_set_uids), or NULL */
};

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* The parts of a record's bytes (valid: checked by rec_parse). */
typedef struct rec_view_s {
    const unsigned char *headers, *key, *value;
    size_t headers_len, key_len, value_len;
} rec_view_t;

static int rec_parse(const unsigned char *b, size_t len, rec_view_t *v)
{
    if (len < REC_HEADER || b[0] != REC_FORMAT)
        return -1;
    uint32_t kl = get32(b + 2), vl = get32(b + 6);
    /* UINT32_MAX: a null key or value (a tombstone's), not an empty one. */
    v->key_len = kl == UINT32_MAX ? 0 : kl;
    v->value_len = vl == UINT32_MAX ? 0 : vl;
    v->headers_len = get32(b + 10);
    if (v->headers_len > len - REC_HEADER ||
        v->key_len > len - REC_HEADER - v->headers_len ||
        v->value_len != len - REC_HEADER - v->headers_len - v->key_len)
        return -1;
    v->headers = b + REC_HEADER;
    v->key = v->headers + v->headers_len;
    v->value = v->key + v->key_len;
    if (kl == UINT32_MAX)
        v->key = NULL;
    if (vl == UINT32_MAX)
        v->value = NULL;
    /* The headers must walk to their exact end. */
    for (size_t o = 0; o < v->headers_len;) {
        uint32_t nl, hvl;
        if (v->headers_len - o < 2)
            return -1;
        nl = (uint32_t)v->headers[o] | (uint32_t)v->headers[o + 1] << 8;
        o += 2;
        if (v->headers_len - o < (size_t)nl + 4)
            return -1;
        o += nl;
        hvl = get32(v->headers + o);
        o += 4;
        if (hvl != UINT32_MAX) {
            if (v->headers_len - o < hvl)
                return -1;
            o += hvl;
        }
    }
    return 0;
}

/* Bytes the serialised headers take; 0 for none. */
static size_t headers_size(const rd_kafka_headers_t *h)
{
    const char *name;
    const void *val;
    size_t size, n = 0;

    for (size_t i = 0;
         h && rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++)
        n += 2 + strnlen(name, NAME_MAX_LEN) + 4 + (val ? size : 0);
    return n;
}

static unsigned char *headers_put(unsigned char *p, const rd_kafka_headers_t *h)
{
    const char *name;
    const void *val;
    size_t size;

    for (size_t i = 0;
         h && rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++) {
        size_t nl = strnlen(name, NAME_MAX_LEN); /* longer names are cut */
        p[0] = (unsigned char)nl;
        p[1] = (unsigned char)(nl >> 8);
        memcpy(p + 2, name, nl);
        p += 2 + nl;
        put32(p, val ? (uint32_t)size : UINT32_MAX);
        p += 4;
        if (val) {
            memcpy(p, val, size);
            p += size;
        }
    }
    return p;
}

/* A new record (malloc'd) of kind with the given parts; extra_headers
 * (may be NULL) are appended after the serialised headers hdr_bytes. */
static out_rec_t *rec_new(uint64_t seq, int kind, const void *hdr_bytes,
                          size_t hdr_len, const rd_kafka_headers_t *extra,
                          const void *key, size_t key_len, const void *value,
                          size_t value_len)
{
    size_t extra_len = headers_size(extra);
    size_t hl = hdr_len + extra_len;
    size_t len = REC_HEADER + hl + key_len + value_len;
    out_rec_t *r;
    unsigned char *p;

    if (key_len >= UINT32_MAX || value_len >= UINT32_MAX || hl >= UINT32_MAX)
        return NULL;
    if (!(r = malloc(sizeof(*r) + len)))
        return NULL;
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->kind = (uint8_t)kind;
    r->len = len;
    p = r->bytes;
    p[0] = REC_FORMAT;
    p[1] = (uint8_t)kind;
    put32(p + 2, key ? (uint32_t)key_len : UINT32_MAX);
    put32(p + 6, value ? (uint32_t)value_len : UINT32_MAX);
    put32(p + 10, (uint32_t)hl);
    p += REC_HEADER;
    if (hdr_len)
        memcpy(p, hdr_bytes, hdr_len);
    p = headers_put(p + hdr_len, extra);
    if (key_len)
        memcpy(p, key, key_len);
    if (value_len)
        memcpy(p + key_len, value, value_len);
    return r;
}

static advrec_err_t rec_append(advrec_outbox_t *ob, out_rec_t *r)
{
    if (ob->n_recs == ob->recs_cap) {
        size_t cap = ob->recs_cap ? 2 * ob->recs_cap : 64;
        out_rec_t **n = realloc(ob->recs, cap * sizeof(*n));
        if (!n)
            return ADVREC_ERR_NOMEM;
        ob->recs = n;
        ob->recs_cap = cap;
    }
    ob->recs[ob->n_recs++] = r;
    ob->stats.unacked++;
    ob->stats.unacked_bytes += r->len;
    ob->due += r->state == REC_DUE;
    if (r->seq >= ob->next_seq)
        ob->next_seq = r->seq + 1;
    return ADVREC_OK;
}

advrec_outbox_t *advrec_outbox_new(const advrec_outbox_params_t *params,
                                   advrec_store_t *store)
{
    advrec_outbox_t *ob = calloc(1, sizeof(*ob));

    if (!ob)
        return NULL;
    ob->p = *params;
    ob->store = store;
    return ob;
}

void advrec_outbox_set_producer(advrec_outbox_t *ob, advrec_kafka_t *producer)
{
    ob->producer = producer;
}

typedef struct load_ctx_s {
    advrec_outbox_t *ob;
    advrec_err_t err;
    char *errstr;
    size_t errstr_size;
} load_ctx_t;

static int load_output(void *opaque, uint64_t seq, const void *rec, size_t len)
{
    load_ctx_t *c = opaque;
    const unsigned char *b = rec;
    rec_view_t v;
    out_rec_t *r;

    if (rec_parse(b, len, &v) ||
        (b[1] != ADVREC_OUT_FLAG && b[1] != ADVREC_OUT_DEAD &&
         b[1] != ADVREC_OUT_TOMBSTONE)) {
        c->err = advrec_seterr(ADVREC_ERR_STORE, c->errstr, c->errstr_size,
                               "malformed pending output meta/pending/out/"
                               "<seq %llu> (%zu bytes, format %d)",
                               (unsigned long long)seq, len, len ? b[0] : -1);
        return 1;
    }
    if (!(r = malloc(sizeof(*r) + len))) {
        c->err = ADVREC_ERR_NOMEM;
        return 1;
    }
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->kind = b[1];
    r->state = REC_DUE;
    r->len = len;
    memcpy(r->bytes, b, len);
    if ((c->err = rec_append(c->ob, r)) != ADVREC_OK) {
        free(r);
        return 1;
    }
    return 0;
}

/* Anomaly flags stored by earlier versions: key and value only. */
static int load_legacy_flag(void *opaque, uint64_t seq, const void *key,
                            size_t key_len, const void *value, size_t value_len)
{
    load_ctx_t *c = opaque;
    out_rec_t *r = rec_new(seq, ADVREC_OUT_FLAG, NULL, 0, NULL, key, key_len,
                           value, value_len);

    if (!r) {
        c->err = ADVREC_ERR_NOMEM;
        return 1;
    }
    r->legacy = 1;
    r->state = REC_DUE;
    if ((c->err = rec_append(c->ob, r)) != ADVREC_OK) {
        free(r);
        return 1;
    }
    return 0;
}

advrec_err_t advrec_outbox_load(advrec_outbox_t *ob, uint32_t **users,
                                size_t *n_users, char *errstr,
                                size_t errstr_size)
{
    load_ctx_t c = {ob, ADVREC_OK, errstr, errstr_size};
    advrec_err_t err;

    *users = NULL;
    *n_users = 0;
    if (!ob->store)
        return ADVREC_OK;
    if ((err = advrec_store_load_pending(ob->store, users, n_users, errstr,
                                         errstr_size)))
        return err;
    err = advrec_store_flags_foreach(ob->store, load_legacy_flag, &c, errstr,
                                     errstr_size);
    if (!err && !c.err)
        err = advrec_store_outputs_foreach(ob->store, load_output, &c, errstr,
                                           errstr_size);
    if (!err && c.err == ADVREC_ERR_NOMEM)
        err = advrec_seterr(c.err, errstr, errstr_size,
                            "out of memory loading the pending outputs");
    else if (!err)
        err = c.err;
    if (err) {
        free(*users);
        *users = NULL;
        *n_users = 0;
    }
    return err;
}

advrec_err_t advrec_outbox_add(advrec_outbox_t *ob, advrec_out_kind_t kind,
                               const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const rd_kafka_headers_t *headers)
{
    out_rec_t *r = rec_new(ob->next_seq, (int)kind, NULL, 0, headers, key,
                           key_len, value, value_len);
    advrec_err_t err;

    if (!r)
        return ADVREC_ERR_NOMEM;
    r->state = REC_NEW;
    if ((err = rec_append(ob, r))) {
        free(r);
        return err;
    }
    if (ob->store && (err = advrec_store_stage_output(ob->store, r->seq,
                                                      r->bytes, r->len))) {
        /* Not staged: forget it again, the round must not commit. */
        ob->n_recs--;
        ob->stats.unacked--;
        ob->stats.unacked_bytes -= r->len;
        free(r);
        return err;
    }
    ob->stats.recorded[kind]++;
    return ADVREC_OK;
}

/* Owed lists: owe() counts a list in flight for user, paid() settles it. */
static advrec_err_t owe(advrec_outbox_t *ob, uint32_t user)
{
    if (user >= ob->owed_cap) {
        uint32_t cap = ob->owed_cap ? ob->owed_cap : 1024;
        while (cap <= user)
            cap *= 2;
        uint16_t *n = realloc(ob->in_flight, cap * sizeof(*n));
        if (!n)
            return ADVREC_ERR_NOMEM;
        memset(n + ob->owed_cap, 0, (cap - ob->owed_cap) * sizeof(*n));
        ob->in_flight = n;
        uint8_t *m = realloc(ob->listed, cap);
        if (!m)
            return ADVREC_ERR_NOMEM;
        memset(m + ob->owed_cap, 0, cap - ob->owed_cap);
        ob->listed = m;
        uint32_t *l = realloc(ob->owed_list, cap * sizeof(*l));
        if (!l)
            return ADVREC_ERR_NOMEM;
        ob->owed_list = l;
        ob->owed_cap = cap;
    }
    if (ob->in_flight[user]++ == 0) {
        /* A user settled and owed again before the next stage is listed
         * already: listing them again would store them twice and could
         * run n_owed past owed_cap. */
        if (!ob->listed[user]) {
            ob->listed[user] = 1;
            ob->owed_list[ob->n_owed++] = user;
        }
        ob->stats.lists_in_flight++;
    }
    return ADVREC_OK;
}

static void paid(advrec_outbox_t *ob, uint32_t user, uint32_t uid,
                 int delivered)
{
    /* The list of a user deleted since (advrec_outbox_forget_list). */
    if (ob->uids && (*ob->uids)[user] != uid)
        return;
    if (user < ob->owed_cap && ob->in_flight[user] > 0 &&
        --ob->in_flight[user] == 0)
        ob->stats.lists_in_flight--;
    if (!delivered && ob->p.on_list_failed)
        ob->p.on_list_failed(ob->p.opaque, user);
}

rd_kafka_resp_err_t advrec_outbox_send_list(advrec_outbox_t *ob, uint32_t user,
                                            const void *key, size_t key_len,
                                            const void *value, size_t value_len)
{
    rd_kafka_resp_err_t err;
    uint32_t uid;

    if (owe(ob, user)) {
        /* Out of memory: the user is made stale again, refreshed later. */
        if (ob->p.on_list_failed)
            ob->p.on_list_failed(ob->p.opaque, user);
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    uid = ob->uids ? (*ob->uids)[user] : user;
    err =
        advrec_kafka_produce(ob->producer, ob->p.topic_lists, key, key_len,
                             value, value_len, NULL, 0,
                             (void *)((uintptr_t)uid << 32 |
                                      (uintptr_t)user << 2 | ADVREC_TAG_LIST));
    if (err) {
        log_err("cannot produce to %s: %s", ob->p.topic_lists,
                rd_kafka_err2str(err));
        ob->stats.failed[ADVREC_OUT_LIST]++;
        paid(ob, user, uid, 0);
        return err;
    }
    ob->stats.recorded[ADVREC_OUT_LIST]++;
    return 0;
}

/* Stages the owed users: lists in flight, then stale users not in flight. */
static advrec_err_t stage_owed(advrec_outbox_t *ob, const uint32_t *stale,
                               size_t n_stale)
{
    size_t kept = 0, n = 0;

    for (size_t i = 0; i < ob->n_owed; i++)
        if (ob->in_flight[ob->owed_list[i]] > 0)
            ob->owed_list[kept++] = ob->owed_list[i];
        else
            ob->listed[ob->owed_list[i]] = 0;
    ob->n_owed = kept;
    if (ob->pending_cap < n_stale + kept) {
        uint32_t *p = realloc(ob->pending, (n_stale + kept) * sizeof(*p));
        if (!p)
            return ADVREC_ERR_NOMEM;
        ob->pending = p;
        ob->pending_cap = n_stale + kept;
    }
    if (kept)
        memcpy(ob->pending, ob->owed_list, kept * sizeof(*ob->pending));
    n = kept;
    for (size_t i = 0; i < n_stale; i++)
        if (stale[i] >= ob->owed_cap || ob->in_flight[stale[i]] == 0)
            ob->pending[n++] = stale[i];
    /* Stored by persistent number: slots mean nothing after a restart. */
    if (ob->uids)
        for (size_t i = 0; i < n; i++)
            ob->pending[i] = (*ob->uids)[ob->pending[i]];
    return advrec_store_stage_pending(ob->store, ob->pending, n);
}

advrec_err_t advrec_outbox_stage(advrec_outbox_t *ob, const uint32_t *stale,
                                 size_t n_stale)
{
    size_t kept = 0;
    advrec_err_t err = ADVREC_OK;

    for (size_t i = 0; i < ob->n_recs; i++) {
        out_rec_t *r = ob->recs[i];
        if (r->state != REC_DELIVERED) {
            ob->recs[kept++] = r;
            continue;
        }
        if (ob->store &&
            (r->legacy
                 ? advrec_store_stage_flag(ob->store, r->seq, NULL, 0, NULL, 0)
                 : advrec_store_stage_output(ob->store, r->seq, NULL, 0))) {
            ob->recs[kept++] = r; /* stays stored: sent again at restart */
            continue;
        }
        free(r);
    }
    ob->n_recs = kept;
    if (ob->store)
        err = stage_owed(ob, stale, n_stale);
    return err;
}

void advrec_outbox_set_uids(advrec_outbox_t *ob, uint32_t *const *uids)
{
    ob->uids = uids;
}

int advrec_outbox_owes(const advrec_outbox_t *ob, uint32_t user)
{
    return user < ob->owed_cap && ob->in_flight[user] > 0;
}

void advrec_outbox_forget_list(advrec_outbox_t *ob, uint32_t user)
{
    if (user < ob->owed_cap && ob->in_flight[user] > 0) {
        ob->in_flight[user] = 0;
        ob->stats.lists_in_flight--;
    }
}

void advrec_outbox_committing(advrec_outbox_t *ob)
{
    for (size_t i = ob->n_recs; i-- > 0 && ob->recs[i]->state == REC_NEW;)
        ob->recs[i]->state = REC_COMMITTING;
}

/* Makes due the records at the tail that are new (unless only_started)
 * or committing: records are appended in order, so the committing ones
 * come before any recorded since their commit started. */
static void make_due(advrec_outbox_t *ob, int only_started)
{
    for (size_t i = ob->n_recs;
         i-- > 0 && (ob->recs[i]->state == REC_NEW ||
                     ob->recs[i]->state == REC_COMMITTING);) {
        if (only_started && ob->recs[i]->state == REC_NEW)
            continue;
        ob->recs[i]->state = REC_DUE;
        ob->due++;
    }
}

void advrec_outbox_committed(advrec_outbox_t *ob)
{
    make_due(ob, 0);
}

void advrec_outbox_commit_written(advrec_outbox_t *ob)
{
    make_due(ob, 1);
}

static const char *topic_of(const advrec_outbox_t *ob, int kind)
{
    return kind == ADVREC_OUT_DEAD        ? ob->p.topic_dead
           : kind == ADVREC_OUT_TOMBSTONE ? ob->p.topic_lists
                                          : ob->p.topic_flags;
}

/* Builds the headers of a record for one produce (librdkafka takes them). */
static rd_kafka_headers_t *headers_of(const rec_view_t *v)
{
    rd_kafka_headers_t *h;
    size_t n = 0;
    char name[65536];

    if (!v->headers_len)
        return NULL;
    for (size_t o = 0; o < v->headers_len; n++) {
        uint32_t nl = (uint32_t)v->headers[o] | (uint32_t)v->headers[o + 1]
                                                    << 8;
        uint32_t vl = get32(v->headers + o + 2 + nl);
        o += 2 + nl + 4 + (vl == UINT32_MAX ? 0 : vl);
    }
    h = rd_kafka_headers_new(n);
    for (size_t o = 0; o < v->headers_len;) {
        uint32_t nl = (uint32_t)v->headers[o] | (uint32_t)v->headers[o + 1]
                                                    << 8;
        const unsigned char *val;
        uint32_t vl;
        memcpy(name, v->headers + o + 2, nl);
        name[nl] = '\0';
        o += 2 + nl;
        vl = get32(v->headers + o);
        o += 4;
        val = vl == UINT32_MAX ? NULL : v->headers + o;
        rd_kafka_header_add(h, name, (ssize_t)nl, val, val ? (ssize_t)vl : 0);
        o += vl == UINT32_MAX ? 0 : vl;
    }
    return h;
}

static int too_large(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* Only our own headers (advrec.*), serialised: the last-resort copy's. */
static size_t own_headers(const rec_view_t *v, unsigned char *dst)
{
    size_t n = 0;

    for (size_t o = 0; o < v->headers_len;) {
        uint32_t nl = (uint32_t)v->headers[o] | (uint32_t)v->headers[o + 1]
                                                    << 8;
        uint32_t vl = get32(v->headers + o + 2 + nl);
        size_t len = 2 + nl + 4 + (vl == UINT32_MAX ? 0 : vl);
        if (nl >= 7 && memcmp(v->headers + o + 2, "advrec.", 7) == 0 &&
            len <= 2 + 64 + 4 + 1024) {
            memcpy(dst + n, v->headers + o, len);
            n += len;
        }
        o += len;
    }
    return n;
}

/*
 * Replaces recs[i], a dead letter the broker refused as too large, with a
 * smaller copy (same seq; the stored full record is deleted once the copy
 * is delivered): first its value cut to truncate_bytes and its key to
 * KEY_KEEP_MAX with every header; if that is refused too, LAST_VALUE_MAX
 * and LAST_KEY_MAX bytes with only our advrec.* headers, which any broker
 * takes. Either carries `advrec.truncated: key K value V` (the original
 * sizes). Returns 0, or -1 when out of memory or already the last copy (it
 * stays due).
 */
static int truncate_rec(advrec_outbox_t *ob, size_t i)
{
    out_rec_t *r = ob->recs[i], *t;
    int level = r->truncated + 1;
    unsigned char *own = NULL;
    rec_view_t v;
    rd_kafka_headers_t *note;
    const void *hdrs;
    char what[96];
    size_t kl, vl, hl;

    if (level > LAST_LEVEL)
        return -1;
    rec_parse(r->bytes, r->len, &v);
    if (level == 1) {
        kl = v.key_len < KEY_KEEP_MAX ? v.key_len : KEY_KEEP_MAX;
        vl = v.value_len < ob->p.truncate_bytes ? v.value_len
                                                : ob->p.truncate_bytes;
        snprintf(what, sizeof(what), "key %zu value %zu", v.key_len,
                 v.value_len);
        hdrs = v.headers;
        hl = v.headers_len;
    } else {
        kl = v.key_len < LAST_KEY_MAX ? v.key_len : LAST_KEY_MAX;
        vl = v.value_len < LAST_VALUE_MAX ? v.value_len : LAST_VALUE_MAX;
        /* The first copy's note already names the original sizes. */
        if (!(own = malloc(v.headers_len ? v.headers_len : 1)))
            return -1;
        hl = own_headers(&v, own);
        hdrs = own;
        what[0] = '\0';
    }
    note = rd_kafka_headers_new(1);
    if (what[0])
        rd_kafka_header_add(note, "advrec.truncated", -1, what, -1);
    t = rec_new(r->seq, r->kind, hdrs, hl, note, v.key, kl, v.value,
                vl); /* keeps a null key or value null */
    rd_kafka_headers_destroy(note);
    free(own);
    if (!t)
        return -1;
    t->legacy = r->legacy;
    t->truncated = (uint8_t)level;
    t->state = r->state;
    ob->stats.unacked_bytes = ob->stats.unacked_bytes - r->len + t->len;
    ob->stats.truncated++;
    log_warning("dead letter seq %llu too large for the broker: producing "
                "%s copy (%zu key bytes, %zu value bytes, header "
                "advrec.truncated)",
                (unsigned long long)r->seq,
                level == 1 ? "a truncated" : "a minimal", kl, vl);
    ob->recs[i] = t;
    free(r);
    return 0;
}

static size_t index_of(const advrec_outbox_t *ob, const out_rec_t *r)
{
    /* Records are in seq order: binary search. */
    size_t lo = 0, hi = ob->n_recs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ob->recs[mid]->seq < r->seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void advrec_outbox_produce(advrec_outbox_t *ob)
{
    rd_kafka_resp_err_t first = 0;
    size_t failed = 0;

    for (size_t i = 0; i < ob->n_recs && ob->due > failed; i++) {
        out_rec_t *r = ob->recs[i];
        rd_kafka_resp_err_t err;
        rec_view_t v;

        if (r->state != REC_DUE)
            continue;
        rec_parse(r->bytes, r->len, &v);
        err = advrec_kafka_produce(ob->producer, topic_of(ob, r->kind), v.key,
                                   v.key_len, v.value, v.value_len,
                                   headers_of(&v), 0, r);
        if (err && too_large(err) && r->kind == ADVREC_OUT_DEAD &&
            truncate_rec(ob, i) == 0) {
            i--; /* produce the smaller copy now */
            continue;
        }
        if (err) {
            /* This one stays due; the others still go (one refused record
             * must not hold back the rest), unless the client is done. */
            if (!failed++)
                first = err;
            if (err == RD_KAFKA_RESP_ERR__FATAL)
                break;
            continue;
        }
        r->state = REC_IN_FLIGHT;
        ob->due--;
    }
    if (failed)
        log_err("cannot produce %zu record(s): %s (retried next round)", failed,
                rd_kafka_err2str(first));
}

void advrec_outbox_delivered(advrec_outbox_t *ob, const rd_kafka_message_t *m)
{
    uintptr_t tag = (uintptr_t)m->_private;
    out_rec_t *r;
    size_t i;

    if (ADVREC_TAG_KIND(tag) == ADVREC_TAG_LIST) {
        if (m->err)
            ob->stats.failed[ADVREC_OUT_LIST]++;
        else
            ob->stats.delivered[ADVREC_OUT_LIST]++;
        paid(ob, (uint32_t)(tag >> 2 & SLOT_MASK), (uint32_t)(tag >> 32),
             m->err == 0);
        return;
    }
    if (!tag)
        return; /* not ours */
    r = (out_rec_t *)tag;
    if (r->state != REC_IN_FLIGHT)
        return;
    if (!m->err) {
        r->state = REC_DELIVERED;
        ob->stats.unacked--;
        ob->stats.unacked_bytes -= r->len;
        ob->stats.delivered[r->kind]++;
        return;
    }
    ob->stats.failed[r->kind]++;
    r->state = REC_DUE;
    ob->due++;
    if (too_large(m->err) && r->kind == ADVREC_OUT_DEAD) {
        i = index_of(ob, r);
        if (i < ob->n_recs && ob->recs[i] == r)
            truncate_rec(ob, i);
    }
}

typedef struct read_ctx_s {
    advrec_outbox_record_cb *cb;
    void *opaque;
    advrec_err_t err;
    char *errstr;
    size_t errstr_size;
} read_ctx_t;

static int read_output(void *opaque, uint64_t seq, const void *rec, size_t len)
{
    read_ctx_t *c = opaque;
    const unsigned char *b = rec;
    rec_view_t v;

    if (rec_parse(b, len, &v)) {
        c->err = advrec_seterr(ADVREC_ERR_STORE, c->errstr, c->errstr_size,
                               "malformed pending output meta/pending/out/"
                               "<seq %llu> (%zu bytes)",
                               (unsigned long long)seq, len);
        return 1;
    }
    return c->cb(c->opaque, seq, (advrec_out_kind_t)b[1], v.key, v.key_len,
                 v.value, v.value_len);
}

static int read_legacy(void *opaque, uint64_t seq, const void *key,
                       size_t key_len, const void *value, size_t value_len)
{
    read_ctx_t *c = opaque;

    return c->cb(c->opaque, seq, ADVREC_OUT_FLAG, key, key_len, value,
                 value_len);
}

advrec_err_t advrec_outbox_read_stored(advrec_store_t *store,
                                       advrec_outbox_record_cb *cb,
                                       void *opaque, char *errstr,
                                       size_t errstr_size)
{
    read_ctx_t c = {cb, opaque, ADVREC_OK, errstr, errstr_size};
    advrec_err_t err;

    err =
        advrec_store_flags_foreach(store, read_legacy, &c, errstr, errstr_size);
    if (!err)
        err = advrec_store_outputs_foreach(store, read_output, &c, errstr,
                                           errstr_size);
    return err ? err : c.err;
}

int advrec_outbox_full(const advrec_outbox_t *ob)
{
    return ob->stats.unacked >= ob->p.max_unacked ||
           ob->stats.unacked_bytes >= ob->p.max_unacked_bytes;
}

void advrec_outbox_stats(const advrec_outbox_t *ob,
                         advrec_outbox_stats_t *stats)
{
    *stats = ob->stats;
}

void advrec_outbox_destroy(advrec_outbox_t *ob)
{
    if (!ob)
        return;
    for (size_t i = 0; i < ob->n_recs; i++)
        free(ob->recs[i]);
    free(ob->recs);
    free(ob->in_flight);
    free(ob->listed);
    free(ob->owed_list);
    free(ob->pending);
    free(ob);
}
