/*
 * Integration test of the whole daemon, in-process through lib/daemon.h on
 * its own embedded broker (advrec_daemon_run in a thread, as advrec-demo
 * does).
 *
 * The test produces N_GOOD generated events (tools/lib/synth, encoded with
 * lib/codec, keyed by user, partitioner murmur2_random) with malformed
 * records of many kinds mixed in, some carrying Kafka headers. It learns
 * where every record landed from the delivery reports. Then, each wait
 * bounded by a deadline:
 *  (a) every good record is applied and exactly the bad ones are on the
 *      dead-letter topic, each with its original key, value and headers plus
 *      advrec.error (the expected reason code), advrec.error.message and
 *      advrec.source.topic/partition/offset pointing at the original;
 *  (b) after advrec_daemon_stop() every user with an event has at least one
 *      recommendation message, keyed by its user id, that decodes;
 *  (c) no list recommends an item its user bought: recs.history is set far
 *      above any user's event count (the test checks that), so every
 *      purchase is still in the ring. The last list of a user must avoid
 *      all of their purchases; every list must avoid the purchases at or
 *      before its origin in the origin's partition (those were applied
 *      before it was made);
 *  (d) every list has n <= recs.n real item ids of the input and an
 *      input_topic/partition/offset that is a good record of that user.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "itest.h"
#include "kafka.h"
#include "log.h"
#include "synth.h"

#define N_GOOD      3000
#define N_USERS     150
#define N_ITEMS     120
#define PARTITIONS  4
#define RECS_N      10
#define HISTORY     1000
#define X_SCHEMA_ID 10
#define WAIT_MS     90000

static const char *const input_topics[2] = {"itest.clicks", "itest.purchases"};

/* A newer Click writer with a boolean, an enum and an array at the end, so
 * bad-boolean, bad-enum and bad-count can be crafted. */
static const char x_schema[] =
    "{\"type\":\"record\",\"name\":\"Click\",\"namespace\":\"com.advrec.v1\","
    "\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"},"
    "{\"name\":\"session_id\",\"type\":[\"null\",\"string\"],"
    "\"default\":null},"
    "{\"name\":\"flag\",\"type\":\"boolean\",\"default\":false},"
    "{\"name\":\"device\",\"type\":{\"type\":\"enum\",\"name\":\"Device\","
    "\"symbols\":[\"WEB\",\"APP\"]},\"default\":\"WEB\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},"
    "\"default\":[]}]}";

/* ------------------------------------------------------------------ */
/* What was produced, and where it landed                              */

typedef struct hdr_s {
    const char *name;
    const char *value; /* NULL: a header without a value */
} hdr_t;

#define MAX_HDRS 3

typedef struct bad_s {
    const char *what; /* the kind of damage */
    const char *code; /* expected advrec.error */
    int topic;        /* 0 clicks, 1 purchases */
    const char *key;  /* NULL: no key */
    unsigned char val[600];
    size_t len;
    int null_value; /* produced as a tombstone (no value) */
    hdr_t hdrs[MAX_HDRS];
    int n_hdrs;
    /* Filled by the delivery report. */
    int32_t partition;
    int64_t offset;
    int delivered;
    int dlq_seen;
} bad_t;

typedef struct good_s {
    int user; /* index into users[] */
    int item;
    int purchase;
    int32_t partition;
    int64_t offset;
    int delivered;
} good_t;

typedef struct world_s {
    good_t *good;
    size_t n_good;
    bad_t *bad;
    size_t n_bad;
    char (*users)[ADVREC_ID_MAX];
    size_t n_users;
    char (*items)[ADVREC_ID_MAX];
    size_t n_items;
    /* by_pos[topic][partition][offset]: good index + 1, bad -(index + 1). */
    int *by_pos;
    size_t pos_cap;
    int dr_errors;
    /* Recommendations read back. */
    size_t *recs_of; /* per user: lists seen */
    int **last_list; /* per user: item indices of the last list */
    size_t *last_n;  /* ... and its length */
    size_t recs_read;
    int purchase_violations; /* printed as they are found */
} world_t;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int *pos_slot(world_t *w, int topic, int32_t partition, int64_t offset)
{
    if (topic < 0 || topic > 1 || partition < 0 || partition >= PARTITIONS ||
        offset < 0 || (size_t)offset >= w->pos_cap)
        return NULL;
    return &w->by_pos[((size_t)topic * PARTITIONS + (size_t)partition) *
                          w->pos_cap +
                      (size_t)offset];
}

static int find_id(char (*ids)[ADVREC_ID_MAX], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return (int)i;
    return -1;
}

static int intern(char (*ids)[ADVREC_ID_MAX], size_t *n, size_t cap,
                  const char *id)
{
    int i = find_id(ids, *n, id);

    if (i >= 0 || *n == cap)
        return i;
    snprintf(ids[*n], ADVREC_ID_MAX, "%s", id);
    return (int)(*n)++;
}

/* ------------------------------------------------------------------ */
/* Crafting malformed records                                          */

typedef struct wbuf_s {
    unsigned char b[600];
    size_t n;
} wbuf_t;

static void put_raw(wbuf_t *w, const void *p, size_t n)
{
    if (w->n + n <= sizeof(w->b)) {
        memcpy(w->b + w->n, p, n);
        w->n += n;
    }
}

static void put_long(wbuf_t *w, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    unsigned char c;

    do {
        c = (unsigned char)(z & 0x7f);
        z >>= 7;
        if (z)
            c |= 0x80;
        put_raw(w, &c, 1);
    } while (z);
}

static void put_str(wbuf_t *w, const char *s, size_t n)
{
    put_long(w, (int64_t)n);
    put_raw(w, s, n);
}

static void put_frame(wbuf_t *w, int32_t id)
{
    unsigned char h[5] = {0, (unsigned char)(id >> 24),
                          (unsigned char)(id >> 16), (unsigned char)(id >> 8),
                          (unsigned char)id};
    put_raw(w, h, sizeof(h));
}

/* A framed Click (schema 1): session_id and context null. */
static void click(wbuf_t *w, const char *user, size_t ulen, int64_t ts)
{
    put_frame(w, 1);
    put_str(w, user, ulen);
    put_str(w, "i1", 2);
    put_long(w, ts);
    put_long(w, 0); /* session_id: null */
    put_long(w, 0); /* context: null */
}

/* A framed Purchase (schema 2). */
static void purchase(wbuf_t *w, const char *user, int64_t qty, double price)
{
    put_frame(w, 2);
    put_str(w, user, strlen(user));
    put_str(w, "i2", 2);
    put_long(w, 1700000000000);
    put_long(w, qty);
    put_raw(w, &price, 8); /* little-endian IEEE 754, as Avro writes it */
    put_str(w, "EUR", 3);
    put_long(w, 0); /* order_id: null */
}

static bad_t *add_bad(world_t *w, const char *what, const char *code, int topic,
                      const char *key, const wbuf_t *val)
{
    bad_t *b = &w->bad[w->n_bad++];

    memset(b, 0, sizeof(*b));
    b->what = what;
    b->code = code;
    b->topic = topic;
    b->key = key;
    if (val) {
        memcpy(b->val, val->b, val->n);
        b->len = val->n;
    } else {
        b->null_value = 1;
    }
    b->partition = -1;
    b->offset = -1;
    return b;
}

/* Every kind of damage, each with the reason code the daemon must give. */
static int make_bad(world_t *w, advrec_codec_t *codec)
{
    wbuf_t v;
    advrec_event_t ev;
    advrec_recommendation_t rec = {0};
    advrec_scored_item_t item = {.item_id = "i1", .score = 1};
    advrec_anomaly_t an;
    char errstr[256], big[300];
    size_t len;
    bad_t *b;

    memset(big, 'u', sizeof(big));

    v = (wbuf_t){.n = 0};
    put_raw(&v, "\0\0\1", 3);
    b = add_bad(w, "3-byte value", "short-frame", 0, "u-bad1", &v);
    b->hdrs[0] = (hdr_t){"trace-id", "t-1"};
    b->hdrs[1] = (hdr_t){"origin", "itest"};
    b->n_hdrs = 2;

    add_bad(w, "tombstone (no value)", "short-frame", 1, "u-bad2", NULL);

    v = (wbuf_t){.n = 0};
    put_raw(&v, "{\"user\":\"not avro\"}", 19);
    b = add_bad(w, "JSON text", "bad-magic", 0, NULL, &v);
    b->hdrs[0] = (hdr_t){"content-type", "application/json"};
    b->hdrs[1] = (hdr_t){"no-value", NULL};
    b->n_hdrs = 2;

    /* A good click body behind an id nobody registered. */
    v = (wbuf_t){.n = 0};
    click(&v, "u-bad4", 6, 1700000000000);
    v.b[4] = 99;
    add_bad(w, "unregistered schema id", "unknown-schema", 0, "u-bad4", &v);

    /* A real Recommendation, framed by the codec, on the clicks topic. */
    snprintf(rec.user_id, sizeof(rec.user_id), "u-bad5");
    rec.items = &item;
    rec.n_items = 1;
    snprintf(rec.input_topic, sizeof(rec.input_topic), "%s", input_topics[0]);
    rec.generated_at_ms = 1;
    v = (wbuf_t){.n = 0};
    if (advrec_codec_encode_recommendation(codec, 3, &rec, v.b, sizeof(v.b),
                                           &len, errstr, sizeof(errstr))) {
        fprintf(stderr, "encode recommendation: %s\n", errstr);
        return -1;
    }
    v.n = len;
    b = add_bad(w, "Recommendation on the clicks topic", "wrong-kind", 0,
                "u-bad5", &v);
    b->hdrs[0] = (hdr_t){"trace-id", "t-5"};
    b->n_hdrs = 1;

    /* A real Anomaly on the purchases topic. */
    memset(&an, 0, sizeof(an));
    an.entity_type = ADVREC_ENTITY_USER;
    snprintf(an.entity_id, sizeof(an.entity_id), "u-bad6");
    an.score = 0.5;
    an.ts_ms = 1;
    v = (wbuf_t){.n = 0};
    if (advrec_codec_encode_anomaly(codec, 4, &an, v.b, sizeof(v.b), &len,
                                    errstr, sizeof(errstr))) {
        fprintf(stderr, "encode anomaly: %s\n", errstr);
        return -1;
    }
    v.n = len;
    add_bad(w, "Anomaly on the purchases topic", "wrong-kind", 1, "u-bad6", &v);

    /* A codec-encoded click cut inside its last varint, and one with a
     * byte too many. */
    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_CLICK;
    snprintf(ev.user_id, sizeof(ev.user_id), "u-bad7");
    snprintf(ev.item_id, sizeof(ev.item_id), "i7");
    ev.ts_ms = 1700000000000;
    v = (wbuf_t){.n = 0};
    if (advrec_codec_encode_event(codec, 1, &ev, v.b, sizeof(v.b), &len, errstr,
                                  sizeof(errstr))) {
        fprintf(stderr, "encode click: %s\n", errstr);
        return -1;
    }
    v.n = len - 1;
    add_bad(w, "click cut short", "truncated", 0, "u-bad7", &v);
    v.n = len;
    v.b[v.n++] = 0;
    b = add_bad(w, "click with a trailing byte", "trailing-bytes", 0, "u-bad8",
                &v);
    b->hdrs[0] = (hdr_t){"a", "1"};
    b->hdrs[1] = (hdr_t){"b", "2"};
    b->hdrs[2] = (hdr_t){"a", "3"}; /* repeated names keep their order */
    b->n_hdrs = 3;

    /* A purchase that ends inside its price. */
    v = (wbuf_t){.n = 0};
    purchase(&v, "u-bad9", 1, 9.5);
    v.n = 5 + 1 + 6 + 1 + 2 + 6 + 1 + 4; /* up to 4 bytes into price */
    add_bad(w, "purchase cut inside the price", "truncated", 1, "u-bad9", &v);

    /* session_id union branch 2 of 2. */
    v = (wbuf_t){.n = 0};
    put_frame(&v, 1);
    put_str(&v, "u-bad10", 7);
    put_str(&v, "i1", 2);
    put_long(&v, 1700000000000);
    put_long(&v, 2);
    put_long(&v, 0);
    add_bad(w, "union branch out of range", "bad-union", 0, "u-bad10", &v);

    /* user_id claims 2^40 bytes. */
    v = (wbuf_t){.n = 0};
    put_frame(&v, 1);
    put_long(&v, (int64_t)1 << 40);
    put_raw(&v, "u-bad11", 7);
    add_bad(w, "absurd string length", "bad-length", 0, "u-bad11", &v);

    /* ts as a varint of 11 bytes. */
    v = (wbuf_t){.n = 0};
    put_frame(&v, 1);
    put_str(&v, "u-bad12", 7);
    put_str(&v, "i1", 2);
    for (int i = 0; i < 10; i++)
        put_raw(&v, "\xff", 1);
    put_raw(&v, "\x01", 1);
    put_long(&v, 0);
    put_long(&v, 0);
    add_bad(w, "over-long varint", "bad-varint", 0, "u-bad12", &v);

    /* quantity (an int) of 2^40. */
    v = (wbuf_t){.n = 0};
    purchase(&v, "u-bad13", (int64_t)1 << 40, 1.0);
    add_bad(w, "int varint beyond 32 bits", "bad-varint", 1, "u-bad13", &v);

    v = (wbuf_t){.n = 0};
    click(&v, "", 0, 1700000000000);
    b = add_bad(w, "empty user_id", "invalid-event", 0, "u-bad14", &v);
    b->hdrs[0] = (hdr_t){"trace-id", "t-14"};
    b->n_hdrs = 1;

    v = (wbuf_t){.n = 0};
    click(&v, big, sizeof(big), 1700000000000);
    add_bad(w, "300-byte user_id", "id-too-long", 0, "u-bad15", &v);

    v = (wbuf_t){.n = 0};
    click(&v, "u-b\0ad16", 8, 1700000000000);
    add_bad(w, "NUL byte in user_id", "bad-field", 0, "u-bad16", &v);

    v = (wbuf_t){.n = 0};
    purchase(&v, "u-bad17", 0, 1.0);
    add_bad(w, "purchase of quantity 0", "invalid-event", 1, "u-bad17", &v);

    v = (wbuf_t){.n = 0};
    click(&v, "u-bad18", 7, -5);
    add_bad(w, "negative ts", "invalid-event", 0, "u-bad18", &v);

    v = (wbuf_t){.n = 0};
    purchase(&v, "u-bad19", 1, -2.0);
    add_bad(w, "negative price", "invalid-event", 1, "u-bad19", &v);

    /* Through the newer writer (schema 10): its last three bytes are the
     * boolean, the enum index and the array's block count. */
    snprintf(ev.user_id, sizeof(ev.user_id), "u-bad20");
    v = (wbuf_t){.n = 0};
    if (advrec_codec_encode_event(codec, X_SCHEMA_ID, &ev, v.b, sizeof(v.b),
                                  &len, errstr, sizeof(errstr))) {
        fprintf(stderr, "encode click as schema %d: %s\n", X_SCHEMA_ID, errstr);
        return -1;
    }
    v.n = len;
    v.b[len - 3] = 2;
    add_bad(w, "boolean byte 2", "bad-boolean", 0, "u-bad20", &v);
    v.b[len - 3] = 0;
    v.b[len - 2] = 10; /* index 5 of 2 symbols */
    b = add_bad(w, "enum index out of range", "bad-enum", 0, "u-bad21", &v);
    b->hdrs[0] = (hdr_t){"trace-id", "t-21"};
    b->n_hdrs = 1;
    v.b[len - 2] = 0;
    v.b[len - 1] = 0xd0; /* array block of 1000 items in 1 byte */
    v.b[len] = 0x0f;
    v.n = len + 1;
    add_bad(w, "array count beyond the body", "bad-count", 0, "u-bad22", &v);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Clients                                                             */

/* lib/kafka delivery callback of the producer: where each record landed. */
static void dr_cb(void *opaque, const rd_kafka_message_t *m)
{
    world_t *w = opaque;
    intptr_t tag = (intptr_t)m->_private;
    int topic = strcmp(rd_kafka_topic_name(m->rkt), input_topics[1]) == 0;
    int *slot;

    if (m->err) {
        if (w->dr_errors++ < 5)
            fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (tag > 0) {
        good_t *g = &w->good[tag - 1];
        g->partition = m->partition;
        g->offset = m->offset;
        g->delivered = 1;
    } else if (tag < 0) {
        bad_t *b = &w->bad[-tag - 1];
        b->partition = m->partition;
        b->offset = m->offset;
        b->delivered = 1;
    }
    slot = pos_slot(w, topic, m->partition, m->offset);
    if (slot)
        *slot = (int)tag;
}

/* The producer of the input: lib/kafka's client, as advrecd's. */
static advrec_kafka_t *producer_new(const char *bootstraps, world_t *w)
{
    return itest_client(ADVREC_KAFKA_PRODUCER, bootstraps, NULL, NULL, 0, dr_cb,
                        w);
}

/* A reader of the outputs: assigned partitions read to their end. */
static advrec_kafka_t *reader_new(const char *bootstraps)
{
    static const advrec_kafka_prop_t props[] = {
        {"enable.auto.commit", "false", NULL},
        {"enable.partition.eof", "true", NULL},
    };

    return itest_client(ADVREC_KAFKA_CONSUMER, bootstraps, "itest-reader",
                        props, sizeof(props) / sizeof(props[0]), NULL, NULL);
}

/* Produces one input record (key NULL: a null key; hdrs owned by the
 * producer, destroyed on failure); tag comes back in dr_cb. 0 or -1. */
static int produce(advrec_kafka_t *p, int topic, const char *key,
                   const void *val, size_t len, rd_kafka_headers_t *hdrs,
                   intptr_t tag)
{
    rd_kafka_resp_err_t err =
        advrec_kafka_produce(p, input_topics[topic], key, key ? strlen(key) : 0,
                             val, len, hdrs, 0, (void *)tag);

    if (err)
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
    return err ? -1 : 0;
}

/* Reads every partition of topic from the beginning to its end (the topic
 * no longer grows), calling fn on each message. 0 when every partition
 * reached its end before deadline. */
static int read_topic(const char *bootstraps, const char *topic,
                      int64_t deadline,
                      void (*fn)(world_t *, const rd_kafka_message_t *),
                      world_t *w)
{
    advrec_kafka_t *reader = reader_new(bootstraps);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *c;
    int eof[PARTITIONS] = {0}, n_eof = 0;

    if (!reader)
        return -1;
    c = advrec_kafka_rk(reader);
    parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (n_eof < PARTITIONS && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < PARTITIONS &&
                !eof[m->partition]++)
                n_eof++;
        } else if (m->err) {
            fprintf(stderr, "read %s: %s\n", topic, rd_kafka_message_errstr(m));
        } else {
            fn(w, m);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    advrec_kafka_destroy(reader);
    if (n_eof < PARTITIONS)
        fprintf(stderr, "read %s: only %d of %d partitions read to the end\n",
                topic, n_eof, PARTITIONS);
    return n_eof == PARTITIONS ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Checks on what the daemon produced                                  */

/* The value of the last header called name, as a string ("" if none). */
static const char *last_header(rd_kafka_headers_t *h, const char *name,
                               char *buf, size_t size)
{
    const void *val = NULL;
    size_t len = 0;

    buf[0] = '\0';
    if (h && rd_kafka_header_get_last(h, name, &val, &len) == 0 && val)
        snprintf(buf, size, "%.*s", (int)len, (const char *)val);
    return buf;
}

static void check_dlq_message(world_t *w, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    char topic[256], part[32], off[32], code[64], msg[512];
    int t, *slot;
    bad_t *b;
    size_t n_h;

    rd_kafka_message_headers(m, &h);
    last_header(h, "advrec.source.topic", topic, sizeof(topic));
    last_header(h, "advrec.source.partition", part, sizeof(part));
    last_header(h, "advrec.source.offset", off, sizeof(off));
    last_header(h, "advrec.error", code, sizeof(code));
    last_header(h, "advrec.error.message", msg, sizeof(msg));
    t = strcmp(topic, input_topics[1]) == 0   ? 1
        : strcmp(topic, input_topics[0]) == 0 ? 0
                                              : -1;
    slot = pos_slot(w, t, (int32_t)atoi(part), atoll(off));
    CHECK(slot != NULL && *slot < 0);
    if (!slot || *slot >= 0) {
        fprintf(stderr, "DLQ message from %s [%s] @%s is no bad record\n",
                topic, part, off);
        return;
    }
    b = &w->bad[-*slot - 1];
    b->dlq_seen++;
    if (strcmp(code, b->code) != 0)
        fprintf(stderr, "bad record \"%s\": advrec.error %s, want %s (%s)\n",
                b->what, code, b->code, msg);
    CHECK_STR(code, b->code);
    CHECK(strncmp(msg, b->code, strlen(b->code)) == 0 &&
          msg[strlen(b->code)] == ':');
    /* The original key and value, byte for byte. */
    CHECK_INT(m->key_len, b->key ? strlen(b->key) : 0);
    CHECK((m->key == NULL) == (b->key == NULL));
    if (b->key && m->key && m->key_len == strlen(b->key))
        CHECK(memcmp(m->key, b->key, m->key_len) == 0);
    CHECK_INT(m->len, b->len);
    CHECK((m->payload == NULL) == (b->null_value != 0));
    if (m->payload && m->len == b->len)
        CHECK(memcmp(m->payload, b->val, b->len) == 0);
    /* The original headers first, in order, then exactly our five. */
    n_h = h ? rd_kafka_header_cnt(h) : 0;
    CHECK_INT(n_h, (size_t)b->n_hdrs + 5);
    for (int i = 0; i < b->n_hdrs && (size_t)i < n_h; i++) {
        const char *name;
        const void *val;
        size_t len;
        CHECK_INT(rd_kafka_header_get_all(h, (size_t)i, &name, &val, &len), 0);
        CHECK_STR(name, b->hdrs[i].name);
        if (b->hdrs[i].value) {
            CHECK_INT(len, strlen(b->hdrs[i].value));
            CHECK(val && memcmp(val, b->hdrs[i].value, len) == 0);
        } else {
            CHECK(val == NULL);
        }
    }
}

static void read_recommendation(world_t *w, const rd_kafka_message_t *m,
                                advrec_codec_t *codec)
{
    advrec_recommendation_t rec;
    char errstr[256];
    int u, t, *slot, purchased_before[N_ITEMS];

    w->recs_read++;
    if (advrec_codec_decode_recommendation(codec, m->payload, m->len, &rec,
                                           errstr, sizeof(errstr))) {
        fprintf(stderr, "recommendation does not decode: %s\n", errstr);
        CHECK(0);
        return;
    }
    /* Keyed by user id. */
    CHECK(m->key && m->key_len == strlen(rec.user_id) &&
          memcmp(m->key, rec.user_id, m->key_len) == 0);
    u = find_id(w->users, w->n_users, rec.user_id);
    CHECK(u >= 0);
    CHECK(rec.n_items <= RECS_N);
    /* (d) the origin is a good record of that user. */
    t = strcmp(rec.input_topic, input_topics[1]) == 0   ? 1
        : strcmp(rec.input_topic, input_topics[0]) == 0 ? 0
                                                        : -1;
    slot = pos_slot(w, t, rec.input_partition, rec.input_offset);
    CHECK(slot && *slot > 0 && w->good[*slot - 1].user == u);
    if (u < 0 || !slot || *slot <= 0) {
        advrec_recommendation_clear(&rec);
        return;
    }
    /* (c) purchases of this user at or before the origin, in the origin's
     * partition: applied before the list was made. */
    memset(purchased_before, 0, sizeof(purchased_before));
    if (t == 1)
        for (int64_t o = 0; o <= rec.input_offset; o++) {
            int *s = pos_slot(w, 1, rec.input_partition, o);
            if (s && *s > 0 && w->good[*s - 1].user == u)
                purchased_before[w->good[*s - 1].item] = 1;
        }
    w->recs_of[u]++;
    w->last_n[u] = rec.n_items;
    for (size_t r = 0; r < rec.n_items; r++) {
        int it = find_id(w->items, w->n_items, rec.items[r].item_id);
        CHECK(it >= 0); /* (d) a real item of the input */
        w->last_list[u][r] = it;
        if (it >= 0 && purchased_before[it]) {
            if (w->purchase_violations++ < 5)
                fprintf(stderr, "list for %s @%s[%d]@%lld has bought %s\n",
                        rec.user_id, rec.input_topic, rec.input_partition,
                        (long long)rec.input_offset, rec.items[r].item_id);
        }
    }
    advrec_recommendation_clear(&rec);
}

static advrec_codec_t *reader_codec;

static void read_recommendation_cb(world_t *w, const rd_kafka_message_t *m)
{
    read_recommendation(w, m, reader_codec);
}

/* ------------------------------------------------------------------ */

typedef struct runner_s {
    advrec_daemon_t *daemon;
    advrec_err_t err;
    char errstr[512];
} runner_t;

static void *run_daemon(void *arg)
{
    runner_t *r = arg;

    r->err = advrec_daemon_run(r->daemon, r->errstr, sizeof(r->errstr));
    return NULL;
}

static advrec_conf_t *daemon_conf(const char *x_path)
{
    char errstr[512], num[32];
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));
    const char *sets[][2] = {
        {"topic.clicks", input_topics[0]},
        {"topic.purchases", input_topics[1]},
        {"topic.recommendations", "itest.recs"},
        {"topic.anomalies", "itest.anomalies"},
        {"topic.dlq", "itest.dlq"},
        {"group.id", "itest-daemon"},
        {"broker.embedded", "true"},
        {"recs.debounce.ms", "200"},
        {"recs.max.staleness.ms", "1000"},
        {"recs.exclude", "purchased"},
        {"stats.interval.ms", "0"},
        {"http.listen", ""}, /* off: tests run side by side */
        {"model.k", "16"},
        /* In memory: this test is about the pipeline; durability is tested
         * with the daemon as a process (daemon_sigterm.sh, e2e). */
        {"state.dir", ""},
    };

    if (!conf) {
        fprintf(stderr, "conf: %s\n", errstr);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        if (advrec_conf_set(conf, sets[i][0], sets[i][1], errstr,
                            sizeof(errstr)))
            goto fail;
    snprintf(num, sizeof(num), "%d", PARTITIONS);
    if (advrec_conf_set(conf, "broker.embedded.partitions", num, errstr,
                        sizeof(errstr)))
        goto fail;
    snprintf(num, sizeof(num), "%d", RECS_N);
    if (advrec_conf_set(conf, "recs.n", num, errstr, sizeof(errstr)))
        goto fail;
    snprintf(num, sizeof(num), "%d", HISTORY);
    if (advrec_conf_set(conf, "recs.history", num, errstr, sizeof(errstr)))
        goto fail;
    snprintf(num, sizeof(num), "schema.%d", X_SCHEMA_ID);
    if (advrec_conf_set(conf, num, x_path, errstr, sizeof(errstr)))
        goto fail;
    return conf;
fail:
    fprintf(stderr, "conf: %s\n", errstr);
    advrec_conf_destroy(conf);
    return NULL;
}

static void test_daemon_end_to_end(void)
{
    char errstr[512], x_path[] = "/tmp/advrec-itest-XXXXXX";
    world_t w = {0};
    advrec_conf_t *conf = NULL;
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_daemon_t *daemon = NULL;
    advrec_kafka_t *producer = NULL;
    runner_t runner = {0};
    pthread_t thread;
    int running = 0, fd;
    advrec_daemon_stats_t st;
    int64_t t0 = now_ms(), deadline;
    size_t n_purchases = 0, max_user_events = 0, *events_of = NULL;

    /* The newer Click writer, in a temporary file for schema.10. */
    fd = mkstemp(x_path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, x_schema, sizeof(x_schema) - 1) ==
          (ssize_t)(sizeof(x_schema) - 1));
    close(fd);

    w.good = calloc(N_GOOD, sizeof(*w.good));
    w.bad = calloc(32, sizeof(*w.bad));
    w.users = calloc(N_USERS * 2, sizeof(*w.users));
    w.items = calloc(N_ITEMS * 2, sizeof(*w.items));
    w.pos_cap = N_GOOD + 64;
    w.by_pos = calloc(2 * PARTITIONS * w.pos_cap, sizeof(*w.by_pos));
    w.recs_of = calloc(N_USERS * 2, sizeof(*w.recs_of));
    w.last_n = calloc(N_USERS * 2, sizeof(*w.last_n));
    w.last_list = calloc(N_USERS * 2, sizeof(*w.last_list));
    events_of = calloc(N_USERS * 2, sizeof(*events_of));
    CHECK(w.good && w.bad && w.users && w.items && w.by_pos && w.recs_of &&
          w.last_n && w.last_list && events_of);
    if (!w.good || !w.bad || !w.users || !w.items || !w.by_pos || !w.recs_of ||
        !w.last_n || !w.last_list || !events_of)
        goto out;
    for (size_t u = 0; u < N_USERS * 2; u++)
        if (!(w.last_list[u] = calloc(RECS_N, sizeof(int))))
            goto out;

    /* The test's own codec: the shipped schemas plus schema 10. */
    conf = daemon_conf(x_path);
    CHECK(conf != NULL);
    if (!conf)
        goto out;
    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    CHECK(codec != NULL);
    if (!codec)
        goto out;
    for (size_t i = 0; i < conf->schemas_cnt; i++)
        CHECK_INT(advrec_codec_register(codec, conf->schemas[i].id,
                                        conf->schemas[i].path, errstr,
                                        sizeof(errstr)),
                  ADVREC_OK);
    reader_codec = codec;
    CHECK_INT(make_bad(&w, codec), 0);
    /* The fixture itself: each bad record fails our own decode with the
     * code the daemon must report. */
    for (size_t i = 0; i < w.n_bad; i++) {
        advrec_event_t ev;
        advrec_dlq_reason_t reason = ADVREC_DLQ_NONE;
        const char *code;
        bad_t *b = &w.bad[i];
        CHECK_INT(advrec_codec_decode_event(
                      codec, b->null_value ? NULL : b->val, b->len, &ev,
                      &reason, errstr, sizeof(errstr)),
                  ADVREC_ERR_DECODE);
        code = advrec_dlq_reason_name(reason);
        if (strcmp(code, b->code) != 0)
            fprintf(stderr, "fixture \"%s\": %s\n", b->what, errstr);
        CHECK_STR(code, b->code);
    }

    advrec_daemon_new(&daemon, conf, errstr, sizeof(errstr));
    conf = NULL; /* the daemon's now, even on failure */
    if (!daemon) {
        fprintf(stderr, "daemon_new: %s\n", errstr);
        CHECK(0);
        goto out;
    }
    if (advrec_daemon_start(daemon, errstr, sizeof(errstr))) {
        fprintf(stderr, "daemon_start: %s\n", errstr);
        CHECK(0);
        goto out;
    }
    runner.daemon = daemon;
    CHECK_INT(pthread_create(&thread, NULL, run_daemon, &runner), 0);
    running = 1;

    /* Produce the stream with a bad record every N_GOOD / n_bad events. */
    producer = producer_new(advrec_daemon_bootstraps(daemon), &w);
    CHECK(producer != NULL);
    if (!producer)
        goto out;
    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.seed = 11;
    sp.n_users = N_USERS;
    sp.n_items = N_ITEMS;
    sp.max_events = N_GOOD;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    CHECK(synth != NULL);
    if (!synth)
        goto out;
    size_t next_bad = 0, every = N_GOOD / (w.n_bad + 1);
    advrec_event_t ev;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        unsigned char buf[1024];
        size_t len;
        int p = ev.type == ADVREC_EVENT_PURCHASE;
        good_t *g = &w.good[w.n_good];
        g->user = intern(w.users, &w.n_users, N_USERS * 2, ev.user_id);
        g->item = intern(w.items, &w.n_items, N_ITEMS, ev.item_id);
        g->purchase = p;
        CHECK(g->user >= 0 && g->item >= 0);
        CHECK_INT(advrec_codec_encode_event(codec, p ? 2 : 1, &ev, buf,
                                            sizeof(buf), &len, errstr,
                                            sizeof(errstr)),
                  ADVREC_OK);
        w.n_good++;
        n_purchases += (size_t)p;
        if (g->user >= 0 && ++events_of[g->user] > max_user_events)
            max_user_events = events_of[g->user];
        CHECK_INT(produce(producer, p, ev.user_id, buf, len, NULL,
                          (intptr_t)w.n_good),
                  0);
        if (next_bad < w.n_bad && w.n_good % every == 0) {
            bad_t *b = &w.bad[next_bad];
            rd_kafka_headers_t *h = NULL;
            if (b->n_hdrs) {
                h = rd_kafka_headers_new((size_t)b->n_hdrs);
                for (int i = 0; i < b->n_hdrs; i++)
                    rd_kafka_header_add(h, b->hdrs[i].name, -1,
                                        b->hdrs[i].value, -1);
            }
            CHECK_INT(produce(producer, b->topic, b->key,
                              b->null_value ? NULL : b->val, b->len, h,
                              -(intptr_t)(next_bad + 1)),
                      0);
            next_bad++;
        }
        rd_kafka_poll(advrec_kafka_rk(producer), 0);
    }
    CHECK_INT(next_bad, w.n_bad);
    CHECK_INT(w.n_good, N_GOOD);
    CHECK(n_purchases > 50); /* the stream really exercises exclusion */
    CHECK(max_user_events < HISTORY);
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(producer), 30000), 0);
    CHECK_INT(w.dr_errors, 0);
    for (size_t i = 0; i < w.n_good; i++)
        CHECK(w.good[i].delivered);
    for (size_t i = 0; i < w.n_bad; i++)
        CHECK(w.bad[i].delivered);

    /* (a) await every record's effect, bounded. */
    deadline = now_ms() + WAIT_MS;
    do {
        advrec_daemon_stats(daemon, &st);
        if (st.clicks + st.purchases >= N_GOOD && st.dlq >= w.n_bad)
            break;
        usleep(50 * 1000); /* polling interval, not synchronisation */
    } while (now_ms() < deadline && !runner.err);
    fprintf(stderr,
            "applied %" PRIu64 " of %d, dlq %" PRIu64 " of %zu after "
            "%.1f s\n",
            st.clicks + st.purchases, N_GOOD, st.dlq, w.n_bad,
            (double)(now_ms() - t0) / 1000.0);
    CHECK_INT(st.clicks + st.purchases, N_GOOD);
    CHECK_INT(st.purchases, n_purchases);
    CHECK_INT(st.dlq, w.n_bad);
    CHECK_INT(st.consumed, N_GOOD + w.n_bad);
    CHECK_INT(st.users, w.n_users);
    CHECK_INT(st.items, w.n_items);

    /* (b) stop: every stale user gets a list, everything is delivered. */
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    running = 0;
    CHECK_INT(runner.err, ADVREC_OK);
    advrec_daemon_stats(daemon, &st);
    CHECK_INT(st.delivery_failed, 0);
    CHECK_INT(st.delivered, st.recs + st.dlq + st.flags);
    CHECK(st.recs >= w.n_users);

    deadline = now_ms() + WAIT_MS;
    CHECK_INT(read_topic(advrec_daemon_bootstraps(daemon), "itest.dlq",
                         deadline, check_dlq_message, &w),
              0);
    for (size_t i = 0; i < w.n_bad; i++) {
        if (w.bad[i].dlq_seen != 1)
            fprintf(stderr, "bad record \"%s\" on the DLQ %d times\n",
                    w.bad[i].what, w.bad[i].dlq_seen);
        CHECK_INT(w.bad[i].dlq_seen, 1);
    }
    CHECK_INT(read_topic(advrec_daemon_bootstraps(daemon), "itest.recs",
                         deadline, read_recommendation_cb, &w),
              0);
    CHECK_INT(w.recs_read, st.recs);
    CHECK_INT(w.purchase_violations, 0);
    for (size_t u = 0; u < w.n_users; u++) {
        if (w.recs_of[u] == 0)
            fprintf(stderr, "no list for %s\n", w.users[u]);
        CHECK(w.recs_of[u] >= 1);
        /* (c) the last list avoids every purchase of the user. */
        for (size_t r = 0; r < w.last_n[u]; r++)
            for (size_t i = 0; i < w.n_good; i++)
                if (w.good[i].user == (int)u && w.good[i].purchase &&
                    w.good[i].item == w.last_list[u][r]) {
                    fprintf(stderr, "last list of %s has bought %s\n",
                            w.users[u], w.items[w.good[i].item]);
                    CHECK(0);
                }
    }
    fprintf(stderr,
            "%zu users, %zu items, %zu purchases, %zu lists read, %.1f s\n",
            w.n_users, w.n_items, n_purchases, w.recs_read,
            (double)(now_ms() - t0) / 1000.0);

out:
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    advrec_kafka_destroy(producer);
    advrec_daemon_destroy(daemon);
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    if (w.last_list)
        for (size_t u = 0; u < N_USERS * 2; u++)
            free(w.last_list[u]);
    free(w.last_list);
    free(w.last_n);
    free(w.recs_of);
    free(w.by_pos);
    free(w.items);
    free(w.users);
    free(w.bad);
    free(w.good);
    free(events_of);
    unlink(x_path);
}

int main(void)
{
    advrec_log_set_level(ADVREC_LOG_NOTICE);
    RUN(test_daemon_end_to_end);
    return DONE();
}
