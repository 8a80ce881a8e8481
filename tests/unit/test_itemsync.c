/*
 * Unit tests for lib/itemsync.c: the wire format round trip, two and three
 * instances (each a real engine trained on its own events) exchanging
 * their item-factor deltas, items first seen through a peer, idempotence,
 * the Adagrad choice, and the refusal of malformed records (nothing
 * changed, an error that says why).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "itemsync.h"

#define K      8
#define VALUE  (ADVREC_ITEMSYNC_HEADER + 4 * K)
#define MAXREC 256

static advrec_engine_params_t params(void)
{
    advrec_engine_params_t p;

    memset(&p, 0, sizeof(p));
    advrec_apr_params_default(&p.apr);
    p.apr.k = K;
    p.apr.use_bias = 1;
    p.apr.init_std = 0.1f;
    p.apr.lr = 0.1f;
    p.apr.seed = 11;
    p.state.k = K;
    p.state.history = 16;
    p.state.purchased_max = 16;
    p.state.max_users = 100;
    p.state.max_items = 100;
    p.negatives = 1;
    p.weight_click = 1.0f;
    p.weight_purchase = 3.0f;
    p.recs_n = 5;
    p.max_staleness_ms = 1000;
    p.cold_events = 1;
    p.popularity_halflife_s = 3600;
    return p;
}

/* Records a publish produced, copied out of the callback. */
typedef struct box_s {
    char key[MAXREC][ADVREC_ITEMSYNC_INSTANCE_MAX + 1 + ADVREC_ID_MAX];
    size_t key_len[MAXREC];
    uint8_t value[MAXREC][VALUE];
    size_t value_len[MAXREC];
    size_t n;
    size_t refuse_after; /* emit refuses the record after this many */
} box_t;

static int keep(void *opaque, const char *key, size_t key_len,
                const uint8_t *value, size_t value_len)
{
    box_t *b = opaque;

    if (b->n >= b->refuse_after || b->n == MAXREC || value_len > VALUE)
        return -1;
    memcpy(b->key[b->n], key, key_len);
    b->key_len[b->n] = key_len;
    memcpy(b->value[b->n], value, value_len);
    b->value_len[b->n] = value_len;
    b->n++;
    return 0;
}

static void apply(advrec_engine_t *e, const char *user, const char *item,
                  int64_t offset)
{
    advrec_event_t ev;
    advrec_origin_t o = {.topic = 0, .partition = 0, .offset = offset};
    char errstr[256];

    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_CLICK;
    snprintf(ev.user_id, sizeof(ev.user_id), "%s", user);
    snprintf(ev.item_id, sizeof(ev.item_id), "%s", item);
    ev.ts_ms = 1000 + offset;
    CHECK_INT(advrec_engine_apply(e, &ev, "t", &o, 1.0f, offset, errstr,
                                  sizeof(errstr)),
              ADVREC_OK);
}

static advrec_itemsync_t *sync_for(advrec_engine_t *e, const char *instance,
                                   int share_acc)
{
    advrec_itemsync_params_t sp = {.instance = instance,
                                   .apr = params().apr,
                                   .share_acc = share_acc,
                                   .max_peers = 4};
    char errstr[256];
    advrec_itemsync_t *s = advrec_itemsync_new(&sp, advrec_engine_state(e),
                                               errstr, sizeof(errstr));

    if (!s)
        fprintf(stderr, "itemsync_new: %s\n", errstr);
    CHECK(s != NULL);
    return s;
}

/* Item id's row in e as k factors, bias, acc, updates. */
typedef struct row_s {
    float w[K], bias, acc, bias_acc;
    uint32_t updates;
    int found;
} row_t;

static row_t row(advrec_engine_t *e, const char *id)
{
    advrec_state_t *st = advrec_engine_state(e);
    advrec_rows_t *items;
    row_t r;
    uint32_t idx;

    memset(&r, 0, sizeof(r));
    if (advrec_state_item(st, id, 0, &idx, NULL, NULL, 0))
        return r;
    items = advrec_state_items(st);
    memcpy(r.w, items->w + (size_t)idx * K, sizeof(r.w));
    r.bias = items->bias[idx];
    r.acc = items->acc[idx];
    r.bias_acc = items->bias_acc[idx];
    r.updates = items->updates[idx];
    r.found = 1;
    return r;
}

/* The deterministic initial row every instance starts item id from. */
static row_t init_row(const char *id)
{
    advrec_apr_params_t ap = params().apr;
    row_t r;
    advrec_apr_row_t v = {.w = r.w,
                          .acc = &r.acc,
                          .bias = &r.bias,
                          .bias_acc = &r.bias_acc,
                          .updates = &r.updates};

    memset(&r, 0, sizeof(r));
    advrec_apr_row_init(&ap, ADVREC_APR_ITEM, id, &v);
    r.found = 1;
    return r;
}

static void merge_all(advrec_itemsync_t *s, const box_t *b)
{
    char errstr[256];

    for (size_t r = 0; r < b->n; r++) {
        advrec_err_t err =
            advrec_itemsync_merge(s, b->key[r], b->key_len[r], b->value[r],
                                  b->value_len[r], errstr, sizeof(errstr));
        if (err)
            fprintf(stderr, "merge: %s\n", errstr);
        CHECK_INT(err, ADVREC_OK);
    }
}

static void test_round_trip(void)
{
    float w[K], back[K];
    advrec_itemsync_record_t rec, got;
    char key[128], errstr[256];
    uint8_t value[VALUE];
    size_t kl, vl;

    memset(&rec, 0, sizeof(rec));
    snprintf(rec.instance, sizeof(rec.instance), "host-1.a_b");
    snprintf(rec.item, sizeof(rec.item), "item/with/slashes");
    for (int n = 0; n < K; n++)
        w[n] = (float)(n - 3) * 0.37f + 1e-7f;
    rec.w = w;
    rec.k = K;
    rec.flags = ADVREC_ITEMSYNC_F_BIAS;
    rec.updates = 4000000123u;
    rec.acc = 12.5f;
    rec.bias = -0.25f;
    rec.bias_acc = 3.0f;
    CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, value,
                                     sizeof(value), &vl, errstr,
                                     sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(vl, VALUE);
    CHECK_INT(kl, strlen("host-1.a_b/item/with/slashes"));
    CHECK(memcmp(key, "host-1.a_b/item/with/slashes", kl) == 0);
    /* Little-endian on the wire whatever the host: magic, version 1, k. */
    CHECK(memcmp(value, "AISD\x01\x00\x08\x00", 8) == 0);
    CHECK(value[12] == (uint8_t)(4000000123u & 0xff));
    got.w = back;
    CHECK_INT(advrec_itemsync_decode(key, kl, value, vl, K, &got, errstr,
                                     sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(got.instance, "host-1.a_b");
    CHECK_STR(got.item, "item/with/slashes");
    CHECK_INT(got.updates, rec.updates);
    CHECK_INT(got.flags, ADVREC_ITEMSYNC_F_BIAS);
    CHECK(memcmp(back, w, sizeof(w)) == 0);
    CHECK(got.acc == rec.acc && got.bias == rec.bias &&
          got.bias_acc == rec.bias_acc);
    /* Too small a buffer is the caller's error, not a crash. */
    CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, value,
                                     VALUE - 1, &vl, errstr, sizeof(errstr)),
              ADVREC_ERR_INVALID_ARG);
}

/*
 * Two instances train on their own users (item "b" on both, "a" only on
 * A, "c" only on B), then exchange: afterwards both hold, for every item,
 * init + A's contribution + B's contribution, and B has "a" though it
 * never saw an event on it.
 */
static void test_two_instances_exchange(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *ea = advrec_engine_new(&p, NULL, 0),
                    *eb = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *sa, *sb;
    static box_t ba, bb;
    const char *ids[3] = {"a", "b", "c"};
    row_t ra[3], rb[3], want[3];
    advrec_itemsync_stats_t st;
    char errstr[256];
    size_t n;

    CHECK(ea && eb);
    if (!ea || !eb)
        return;
    sa = sync_for(ea, "A", 1);
    sb = sync_for(eb, "B", 1);
    for (int r = 0; r < 6; r++) {
        apply(ea, "ua", r % 2 ? "a" : "b", r);
        apply(ea, "ua", "x", 100 + r); /* a third item to sample */
        apply(eb, "ub", r % 2 ? "c" : "b", 200 + r);
    }
    for (int t = 0; t < 3; t++) {
        ra[t] = row(ea, ids[t]);
        rb[t] = row(eb, ids[t]);
    }
    CHECK(ra[0].found && ra[1].found && !ra[2].found);
    CHECK(!rb[0].found && rb[1].found && rb[2].found);
    /* Both trained "b": its rows differ before the exchange. */
    CHECK(memcmp(ra[1].w, rb[1].w, sizeof(ra[1].w)) != 0);
    for (int t = 0; t < 3; t++) {
        row_t i0 = init_row(ids[t]);
        const row_t *x = ra[t].found ? &ra[t] : &i0,
                    *y = rb[t].found ? &rb[t] : &i0;
        want[t] = i0;
        for (int c = 0; c < K; c++)
            want[t].w[c] = i0.w[c] + (x->w[c] - i0.w[c]) + (y->w[c] - i0.w[c]);
        want[t].bias = x->bias + y->bias;
        want[t].acc = x->acc + y->acc;
        want[t].updates = x->updates + y->updates;
    }
    memset(&ba, 0, sizeof(ba));
    memset(&bb, 0, sizeof(bb));
    ba.refuse_after = bb.refuse_after = MAXREC;
    CHECK_INT(
        advrec_itemsync_publish(sa, keep, &ba, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, ba.n);
    CHECK_INT(ba.n, advrec_state_items(advrec_engine_state(ea))->n);
    CHECK_INT(
        advrec_itemsync_publish(sb, keep, &bb, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    merge_all(sb, &ba);
    merge_all(sa, &bb);
    for (int t = 0; t < 3; t++) {
        row_t xa = row(ea, ids[t]), xb = row(eb, ids[t]);
        CHECK(xa.found && xb.found);
        for (int c = 0; c < K; c++) {
            CHECK_NEAR(xa.w[c], want[t].w[c], 1e-6);
            CHECK_NEAR(xb.w[c], want[t].w[c], 1e-6);
        }
        CHECK_NEAR(xa.bias, want[t].bias, 1e-6);
        CHECK_NEAR(xb.bias, want[t].bias, 1e-6);
        CHECK_NEAR(xa.acc, want[t].acc, 1e-5);
        CHECK_NEAR(xb.acc, want[t].acc, 1e-5);
        CHECK_INT(xa.updates, want[t].updates);
        CHECK_INT(xb.updates, want[t].updates);
    }
    advrec_itemsync_stats(sb, &st);
    CHECK_INT(st.created, 2); /* "a" and "x" first seen through A */
    CHECK_INT(st.peers, 1);
    CHECK_INT(st.merged, ba.n);

    /* Nothing trained since: nothing owed, and the merges are not ours. */
    memset(&ba, 0, sizeof(ba));
    ba.refuse_after = MAXREC;
    CHECK_INT(
        advrec_itemsync_publish(sa, keep, &ba, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 0);
    /* One more event on A: only its positive and negative are owed. */
    apply(ea, "ua", "a", 50);
    CHECK_INT(
        advrec_itemsync_publish(sa, keep, &ba, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 2);
    {
        /* Applying the same records twice is applying them once. */
        row_t before, after;
        merge_all(sb, &ba);
        before = row(eb, "a");
        merge_all(sb, &ba);
        after = row(eb, "a");
        CHECK(memcmp(&before, &after, sizeof(before)) == 0);
        CHECK(memcmp(before.w, row(ea, "a").w, sizeof(before.w)) == 0 ||
              fabsf(before.w[0] - row(ea, "a").w[0]) < 1e-6f);
    }
    advrec_itemsync_destroy(sa);
    advrec_itemsync_destroy(sb);
    advrec_engine_destroy(ea);
    advrec_engine_destroy(eb);
}

/* C hears from A and B on the same item: both contributions add up; with
 * share_acc off C's accumulator stays its own. */
static void test_merge_of_two_peers(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e[3];
    advrec_itemsync_t *s[3];
    static box_t b[2];
    const char *names[3] = {"A", "B", "C"};
    row_t r[3], i0 = init_row("b"), got;
    char errstr[256];

    for (int x = 0; x < 3; x++) {
        e[x] = advrec_engine_new(&p, NULL, 0);
        CHECK(e[x] != NULL);
        if (!e[x])
            return;
        s[x] = sync_for(e[x], names[x], 0);
    }
    for (int t = 0; t < 5; t++)
        for (int x = 0; x < 3; x++) {
            char user[8];
            snprintf(user, sizeof(user), "u%d", x);
            apply(e[x], user, "b", 10 * x + 2 * t);
            apply(e[x], user, x == 0 ? "y" : "z", 10 * x + 2 * t + 1);
        }
    for (int x = 0; x < 3; x++)
        r[x] = row(e[x], "b");
    for (int x = 0; x < 2; x++) {
        memset(&b[x], 0, sizeof(b[x]));
        b[x].refuse_after = MAXREC;
        CHECK_INT(advrec_itemsync_publish(s[x], keep, &b[x], NULL, errstr,
                                          sizeof(errstr)),
                  ADVREC_OK);
        merge_all(s[2], &b[x]);
    }
    got = row(e[2], "b");
    for (int c = 0; c < K; c++)
        CHECK_NEAR(got.w[c],
                   r[2].w[c] + (r[0].w[c] - i0.w[c]) + (r[1].w[c] - i0.w[c]),
                   1e-6);
    CHECK_NEAR(got.bias, r[0].bias + r[1].bias + r[2].bias, 1e-6);
    CHECK(got.acc == r[2].acc); /* share_acc 0: C's own */
    CHECK(got.acc > 0);
    CHECK_INT(got.updates, r[0].updates + r[1].updates + r[2].updates);
    for (int x = 0; x < 3; x++) {
        advrec_itemsync_destroy(s[x]);
        advrec_engine_destroy(e[x]);
    }
}

/* A record emit refuses stays owed, and the next publish sends it. */
static void test_refused_emit_stays_owed(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *s;
    static box_t b;
    char errstr[256];
    size_t n;

    CHECK(e != NULL);
    if (!e)
        return;
    s = sync_for(e, "A", 1);
    apply(e, "u", "a", 0);
    apply(e, "u", "b", 1);
    apply(e, "u", "c", 2);
    memset(&b, 0, sizeof(b));
    b.refuse_after = 1;
    CHECK_INT(advrec_itemsync_publish(s, keep, &b, &n, errstr, sizeof(errstr)),
              ADVREC_ERR_STOPPED);
    CHECK_INT(n, 1);
    CHECK(strstr(errstr, "refused") != NULL);
    b.refuse_after = MAXREC;
    CHECK_INT(advrec_itemsync_publish(s, keep, &b, &n, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n, 2);
    CHECK_INT(b.n, 3);
    advrec_itemsync_destroy(s);
    advrec_engine_destroy(e);
}

/* A record whose delivery failed is owed again: the next publish sends the
 * item's total even though it was not trained since; keys of another
 * instance or of no item owe nothing. */
static void test_failed_delivery_owes_again(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *s;
    static box_t b, again;
    char errstr[256];
    size_t n, a = MAXREC;

    CHECK(e != NULL);
    if (!e)
        return;
    s = sync_for(e, "A", 1);
    apply(e, "u", "a", 0);
    apply(e, "u", "b", 1);
    memset(&b, 0, sizeof(b));
    b.refuse_after = MAXREC;
    CHECK_INT(advrec_itemsync_publish(s, keep, &b, &n, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK(n >= 2);
    /* Nothing trained: nothing owed. */
    memset(&again, 0, sizeof(again));
    again.refuse_after = MAXREC;
    CHECK_INT(
        advrec_itemsync_publish(s, keep, &again, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 0);
    for (size_t r = 0; r < b.n; r++)
        if (b.key_len[r] == 3 && memcmp(b.key[r], "A/a", 3) == 0)
            a = r;
    CHECK(a < b.n);
    if (a >= b.n)
        goto out;
    CHECK_INT(advrec_itemsync_owe(s, "B/a", 3), ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_itemsync_owe(s, "A/zz", 4), ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_itemsync_owe(s, "A", 1), ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_itemsync_owe(s, b.key[a], b.key_len[a]), ADVREC_OK);
    CHECK_INT(
        advrec_itemsync_publish(s, keep, &again, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 1);
    /* The same record again: the item's total has not moved. */
    CHECK_INT(again.key_len[0], b.key_len[a]);
    CHECK(memcmp(again.key[0], b.key[a], b.key_len[a]) == 0);
    CHECK_INT(again.value_len[0], b.value_len[a]);
    CHECK(memcmp(again.value[0], b.value[a], b.value_len[a]) == 0);
    CHECK_INT(
        advrec_itemsync_publish(s, keep, &again, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 0);
out:
    advrec_itemsync_destroy(s);
    advrec_engine_destroy(e);
}

/* Each malformed record is refused with DECODE (or FULL), an error naming
 * the fault, and the state unchanged. */
static void test_malformed_records_refused(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *s;
    advrec_itemsync_record_t rec;
    advrec_itemsync_stats_t st;
    float w[K];
    char key[128], errstr[256];
    uint8_t good[VALUE], bad[VALUE + 8];
    size_t kl, vl;
    row_t before, after;
    advrec_rows_t *items;
    struct {
        const char *what, *key; /* key NULL: the good one */
        int off;                /* byte to overwrite, -1 none */
        uint8_t byte;
        size_t len; /* 0: the good length */
        advrec_err_t err;
        const char *says;
    } cases[] = {
        {"truncated header", NULL, -1, 0, 10, ADVREC_ERR_DECODE, "header"},
        {"one factor short", NULL, -1, 0, VALUE - 4, ADVREC_ERR_DECODE,
         "needs"},
        {"trailing bytes", NULL, -1, 0, VALUE + 4, ADVREC_ERR_DECODE, "needs"},
        {"bad magic", NULL, 0, 'X', 0, ADVREC_ERR_DECODE, "magic"},
        {"version 2", NULL, 4, 2, 0, ADVREC_ERR_DECODE, "version 2"},
        {"k 9", NULL, 6, 9, 0, ADVREC_ERR_DECODE, "k 9"},
        {"unknown flag", NULL, 8, 0x82, 0, ADVREC_ERR_DECODE, "flags"},
        /* factor 0 (0.0) with its top byte 0x7f: 1.7e38 */
        {"enormous factor", NULL, ADVREC_ITEMSYNC_HEADER + 3, 0x7f, 0,
         ADVREC_ERR_DECODE, "factor 0"},
        /* 0x4f: about 3e9, far above any trained row */
        {"huge factor", NULL, ADVREC_ITEMSYNC_HEADER + 4 * 5 + 3, 0x4f, 0,
         ADVREC_ERR_DECODE, "factor 5"},
        {"huge bias", NULL, 23, 0xff, 0, ADVREC_ERR_DECODE, "bias"},
        {"no slash", "Bitem", -1, 0, 0, ADVREC_ERR_DECODE, "<instance>"},
        {"empty instance", "/item", -1, 0, 0, ADVREC_ERR_DECODE, "instance"},
        {"bad instance byte", "B C/item", -1, 0, 0, ADVREC_ERR_DECODE,
         "instance"},
        {"empty item", "B/", -1, 0, 0, ADVREC_ERR_DECODE, "item id"},
        {"a fifth peer", "P5/b", -1, 0, 0, ADVREC_ERR_FULL, "max_peers"},
    };

    CHECK(e != NULL);
    if (!e)
        return;
    s = sync_for(e, "A", 1);
    apply(e, "u", "a", 0);
    apply(e, "u", "b", 1);
    /* Four peers fill the table (max_peers 4) for the last case. */
    memset(&rec, 0, sizeof(rec));
    for (int n = 0; n < K; n++)
        w[n] = 0.01f * (float)n;
    rec.w = w;
    rec.k = K;
    rec.flags = ADVREC_ITEMSYNC_F_BIAS;
    rec.updates = 1;
    snprintf(rec.item, sizeof(rec.item), "b");
    for (int q = 1; q <= 4; q++) {
        snprintf(rec.instance, sizeof(rec.instance), "P%d", q);
        CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, good,
                                         sizeof(good), &vl, errstr,
                                         sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(
            advrec_itemsync_merge(s, key, kl, good, vl, errstr, sizeof(errstr)),
            ADVREC_OK);
    }
    snprintf(rec.instance, sizeof(rec.instance), "P1");
    CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, good,
                                     sizeof(good), &vl, errstr, sizeof(errstr)),
              ADVREC_OK);
    items = advrec_state_items(advrec_engine_state(e));
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const char *k = cases[c].key ? cases[c].key : key;
        size_t klen = cases[c].key ? strlen(cases[c].key) : kl;
        size_t len = cases[c].len ? cases[c].len : vl;
        uint32_t n_items = items->n;
        advrec_err_t err;

        memset(bad, 0, sizeof(bad));
        memcpy(bad, good, vl);
        if (cases[c].off >= 0)
            bad[cases[c].off] = cases[c].byte;
        before = row(e, "b");
        errstr[0] = '\0';
        err =
            advrec_itemsync_merge(s, k, klen, bad, len, errstr, sizeof(errstr));
        after = row(e, "b");
        if (err != cases[c].err || !strstr(errstr, cases[c].says))
            fprintf(stderr, "case %s: %d \"%s\"\n", cases[c].what, err, errstr);
        CHECK_INT(err, cases[c].err);
        CHECK(strstr(errstr, cases[c].says) != NULL);
        CHECK(memcmp(&before, &after, sizeof(before)) == 0);
        CHECK_INT(advrec_state_items(advrec_engine_state(e))->n, n_items);
    }
    advrec_itemsync_stats(s, &st);
    CHECK_INT(st.refused, sizeof(cases) / sizeof(cases[0]));
    CHECK_INT(st.merged, 4);

    /* A tombstone and the instance's own record change nothing. */
    before = row(e, "b");
    CHECK_INT(
        advrec_itemsync_merge(s, "P1/b", 4, NULL, 0, errstr, sizeof(errstr)),
        ADVREC_OK);
    snprintf(rec.instance, sizeof(rec.instance), "A");
    CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, good,
                                     sizeof(good), &vl, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(
        advrec_itemsync_merge(s, key, kl, good, vl, errstr, sizeof(errstr)),
        ADVREC_OK);
    after = row(e, "b");
    CHECK(memcmp(&before, &after, sizeof(before)) == 0);
    advrec_itemsync_stats(s, &st);
    CHECK_INT(st.own, 1);

    /* A full item table refuses a new item with an error naming it. */
    {
        advrec_engine_params_t small = params();
        advrec_engine_t *e2;
        advrec_itemsync_t *s2;
        small.state.max_items = 2;
        e2 = advrec_engine_new(&small, NULL, 0);
        CHECK(e2 != NULL);
        if (e2) {
            s2 = sync_for(e2, "A", 1);
            apply(e2, "u", "a", 0);
            apply(e2, "u", "b", 1);
            snprintf(rec.instance, sizeof(rec.instance), "B");
            snprintf(rec.item, sizeof(rec.item), "new-item");
            CHECK_INT(advrec_itemsync_encode(&rec, key, sizeof(key), &kl, good,
                                             sizeof(good), &vl, errstr,
                                             sizeof(errstr)),
                      ADVREC_OK);
            CHECK_INT(advrec_itemsync_merge(s2, key, kl, good, vl, errstr,
                                            sizeof(errstr)),
                      ADVREC_ERR_FULL);
            CHECK(strstr(errstr, "new-item") != NULL);
            CHECK_INT(advrec_state_items(advrec_engine_state(e2))->n, 2);
            advrec_itemsync_destroy(s2);
            advrec_engine_destroy(e2);
        }
    }
    advrec_itemsync_destroy(s);
    advrec_engine_destroy(e);
}

/* Bad parameters are refused with an error naming them. */
static void test_bad_params(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_params_t sp = {
        .instance = "a/b", .apr = p.apr, .share_acc = 1, .max_peers = 2};
    char errstr[256];

    CHECK(e != NULL);
    if (!e)
        return;
    CHECK(advrec_itemsync_new(&sp, advrec_engine_state(e), errstr,
                              sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "instance id") != NULL);
    sp.instance = "ok";
    sp.apr.k = K + 1;
    CHECK(advrec_itemsync_new(&sp, advrec_engine_state(e), errstr,
                              sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "k 9") != NULL);
    advrec_engine_destroy(e);
}

/* An exchange made over a trained state takes its rows as the base:
 * nothing is owed until the instance trains again. */
static void test_existing_rows_are_base(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *e = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *s;
    static box_t b;
    char errstr[256];
    size_t n;

    CHECK(e != NULL);
    if (!e)
        return;
    apply(e, "u", "a", 0);
    apply(e, "u", "b", 1);
    apply(e, "v", "c", 2);
    s = sync_for(e, "A", 1);
    memset(&b, 0, sizeof(b));
    b.refuse_after = MAXREC;
    CHECK_INT(advrec_itemsync_publish(s, keep, &b, &n, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n, 0);
    apply(e, "v", "d", 3);
    CHECK_INT(advrec_itemsync_publish(s, keep, &b, &n, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n, 2); /* "d" (new: its base is its initial row) + a negative */
    advrec_itemsync_destroy(s);
    advrec_engine_destroy(e);
}

/* Keeps the latest record per key of b in c, as a compacted topic does. */
static void compact_into(box_t *c, const box_t *b)
{
    for (size_t r = 0; r < b->n; r++) {
        size_t at = c->n;
        for (size_t x = 0; x < c->n; x++)
            if (c->key_len[x] == b->key_len[r] &&
                memcmp(c->key[x], b->key[r], b->key_len[r]) == 0)
                at = x;
        if (at == c->n && c->n == MAXREC)
            continue;
        memcpy(c->key[at], b->key[r], b->key_len[r]);
        c->key_len[at] = b->key_len[r];
        memcpy(c->value[at], b->value[r], b->value_len[r]);
        c->value_len[at] = b->value_len[r];
        if (at == c->n)
            c->n++;
    }
}

/*
 * A and B exchange twice; a new instance C that reads the compacted topic
 * (the latest record per key) from its beginning holds every item as B
 * does: init + A's total + B's total.
 */
static void test_new_instance_reads_compacted_topic(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *ea = advrec_engine_new(&p, NULL, 0),
                    *eb = advrec_engine_new(&p, NULL, 0),
                    *ec = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *sa, *sb, *sc;
    static box_t ba, bb, topic;
    const char *ids[4] = {"a", "b", "c", "d"};
    char errstr[256];

    CHECK(ea && eb && ec);
    if (!ea || !eb || !ec)
        return;
    sa = sync_for(ea, "A", 1);
    sb = sync_for(eb, "B", 1);
    sc = sync_for(ec, "C", 1);
    memset(&topic, 0, sizeof(topic));
    for (int round = 0; round < 2; round++) {
        for (int r = 0; r < 4; r++) {
            apply(ea, "ua", ids[(r + round) % 4], 100 * round + r);
            apply(eb, "ub", ids[(r * 3 + round) % 4], 100 * round + 50 + r);
        }
        memset(&ba, 0, sizeof(ba));
        memset(&bb, 0, sizeof(bb));
        ba.refuse_after = bb.refuse_after = MAXREC;
        CHECK_INT(advrec_itemsync_publish(sa, keep, &ba, NULL, errstr,
                                          sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(advrec_itemsync_publish(sb, keep, &bb, NULL, errstr,
                                          sizeof(errstr)),
                  ADVREC_OK);
        merge_all(sb, &ba);
        merge_all(sa, &bb);
        compact_into(&topic, &ba);
        compact_into(&topic, &bb);
    }
    CHECK_INT(topic.n, 8); /* 2 instances x 4 items, latest each */
    merge_all(sc, &topic);
    for (int t = 0; t < 4; t++) {
        row_t xb = row(eb, ids[t]), xc = row(ec, ids[t]);
        CHECK(xb.found && xc.found);
        for (int c = 0; c < K; c++)
            CHECK_NEAR(xc.w[c], xb.w[c], 1e-6);
        CHECK_NEAR(xc.bias, xb.bias, 1e-6);
        CHECK_NEAR(xc.acc, xb.acc, 1e-5);
        CHECK_INT(xc.updates, xb.updates);
    }
    advrec_itemsync_destroy(sa);
    advrec_itemsync_destroy(sb);
    advrec_itemsync_destroy(sc);
    advrec_engine_destroy(ea);
    advrec_engine_destroy(eb);
    advrec_engine_destroy(ec);
}

/*
 * A restarts on its state after two exchanges with B and recovers from the
 * compacted topic: its rows are unchanged (init + A's total + B's), it owes
 * no record, B's records merged again change nothing, and A's next step
 * reaches B on top of A's earlier total (not instead of it).
 */
static void test_restart_recovers_from_topic(void)
{
    advrec_engine_params_t p = params();
    advrec_engine_t *ea = advrec_engine_new(&p, NULL, 0),
                    *eb = advrec_engine_new(&p, NULL, 0);
    advrec_itemsync_t *sa, *sb;
    static box_t ba, bb, topic;
    const char *ids[4] = {"a", "b", "c", "d"};
    row_t before[4];
    char errstr[256];
    size_t n;

    CHECK(ea && eb);
    if (!ea || !eb)
        return;
    sa = sync_for(ea, "A", 1);
    sb = sync_for(eb, "B", 1);
    memset(&topic, 0, sizeof(topic));
    for (int round = 0; round < 2; round++) {
        for (int r = 0; r < 4; r++) {
            apply(ea, "ua", ids[(r + round) % 4], 100 * round + r);
            apply(eb, "ub", ids[(r * 3 + round) % 4], 100 * round + 50 + r);
        }
        memset(&ba, 0, sizeof(ba));
        memset(&bb, 0, sizeof(bb));
        ba.refuse_after = bb.refuse_after = MAXREC;
        CHECK_INT(advrec_itemsync_publish(sa, keep, &ba, NULL, errstr,
                                          sizeof(errstr)),
                  ADVREC_OK);
        CHECK_INT(advrec_itemsync_publish(sb, keep, &bb, NULL, errstr,
                                          sizeof(errstr)),
                  ADVREC_OK);
        merge_all(sb, &ba);
        merge_all(sa, &bb);
        compact_into(&topic, &ba);
        compact_into(&topic, &bb);
    }
    for (int t = 0; t < 4; t++)
        before[t] = row(ea, ids[t]);
    /* The restart: a new exchange over the same rows, the topic read. */
    advrec_itemsync_destroy(sa);
    sa = sync_for(ea, "A", 1);
    for (size_t r = 0; r < topic.n; r++)
        CHECK_INT(advrec_itemsync_recover(sa, topic.key[r], topic.key_len[r],
                                          topic.value[r], topic.value_len[r],
                                          errstr, sizeof(errstr)),
                  ADVREC_OK);
    advrec_itemsync_recovered(sa);
    for (int t = 0; t < 4; t++) {
        row_t x = row(ea, ids[t]);
        for (int c = 0; c < K; c++)
            CHECK_NEAR(x.w[c], before[t].w[c], 1e-5);
        CHECK_NEAR(x.bias, before[t].bias, 1e-5);
        CHECK_NEAR(x.acc, before[t].acc, 1e-4);
        CHECK_INT(x.updates, before[t].updates);
    }
    memset(&ba, 0, sizeof(ba));
    ba.refuse_after = MAXREC;
    CHECK_INT(
        advrec_itemsync_publish(sa, keep, &ba, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(n, 0);
    merge_all(sa, &bb);
    for (int t = 0; t < 4; t++)
        CHECK_NEAR(row(ea, ids[t]).w[0], before[t].w[0], 1e-5);
    /* One more step of A's on "a" reaches B added to A's earlier total. */
    apply(ea, "ua", "a", 1000);
    memset(&ba, 0, sizeof(ba));
    ba.refuse_after = MAXREC;
    CHECK_INT(
        advrec_itemsync_publish(sa, keep, &ba, &n, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK(n >= 1);
    merge_all(sb, &ba);
    {
        row_t xa = row(ea, "a"), xb = row(eb, "a");
        for (int c = 0; c < K; c++)
            CHECK_NEAR(xb.w[c], xa.w[c], 1e-5);
        CHECK_INT(xb.updates, xa.updates);
    }
    advrec_itemsync_destroy(sa);
    advrec_itemsync_destroy(sb);
    advrec_engine_destroy(ea);
    advrec_engine_destroy(eb);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_two_instances_exchange);
    RUN(test_merge_of_two_peers);
    RUN(test_refused_emit_stays_owed);
    RUN(test_failed_delivery_owes_again);
    RUN(test_malformed_records_refused);
    RUN(test_bad_params);
    RUN(test_existing_rows_are_base);
    RUN(test_new_instance_reads_compacted_topic);
    RUN(test_restart_recovers_from_topic);
    return DONE();
}
