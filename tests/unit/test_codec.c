/*
 * Unit tests for codec.c: round trips of the four record kinds, one test per
 * decode failure (code and reason), schema evolution both ways, refused
 * schemas, and a bounded mutation loop over valid records (run under ASan
 * in CI: it must neither crash nor leak).
 */
#include <avro.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "codec.h"

#define SCHEMAS ADVREC_TEST_SOURCE_DIR "/schemas"
#define DATA    ADVREC_TEST_SOURCE_DIR "/tests/unit/data"

enum {
    ID_CLICK = 1,
    ID_PURCHASE = 2,
    ID_REC = 3,
    ID_ANOMALY = 4,
    ID_CLICK_V0 = 10,
    ID_PURCHASE_V0 = 11,
    ID_CLICK_V2 = 12,
};

static char errstr[512];

/* A codec with our four schemas and the older/newer test schemas. */
static advrec_codec_t *codec_all(void)
{
    advrec_codec_t *codec = advrec_codec_new(SCHEMAS, errstr, sizeof(errstr));

    CHECK(codec != NULL);
    if (!codec) {
        fprintf(stderr, "codec_new: %s\n", errstr);
        return NULL;
    }
    CHECK_INT(advrec_codec_register(codec, ID_CLICK, SCHEMAS "/click.avsc",
                                    errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_PURCHASE,
                                    SCHEMAS "/purchase.avsc", errstr,
                                    sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_REC,
                                    SCHEMAS "/recommendation.avsc", errstr,
                                    sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_ANOMALY, SCHEMAS "/anomaly.avsc",
                                    errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_CLICK_V0, DATA "/click_v0.avsc",
                                    errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_PURCHASE_V0,
                                    DATA "/purchase_v0.avsc", errstr,
                                    sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_register(codec, ID_CLICK_V2, DATA "/click_v2.avsc",
                                    errstr, sizeof(errstr)),
              ADVREC_OK);
    return codec;
}

static void sample_click(advrec_event_t *ev)
{
    advrec_event_clear(ev);
    ev->type = ADVREC_EVENT_CLICK;
    strcpy(ev->user_id, "u1");
    strcpy(ev->item_id, "i1");
    ev->ts_ms = 1700000000123;
    strcpy(ev->session_id, "s-42");
    strcpy(ev->page, "home");
    ev->position = 3;
}

/* Encodes the sample click with our schema: u1, i1, ts, session, context. */
static size_t click_bytes(advrec_codec_t *codec, uint8_t *buf, size_t size)
{
    advrec_event_t ev;
    size_t len = 0;

    sample_click(&ev);
    CHECK_INT(advrec_codec_encode_event(codec, ID_CLICK, &ev, buf, size, &len,
                                        errstr, sizeof(errstr)),
              ADVREC_OK);
    return len;
}

/* The reason code a codec message starts with ("?" when it names none). */
static const char *code_of(const char *msg)
{
    advrec_dlq_reason_t r = advrec_dlq_reason_parse(msg, strcspn(msg, ":"));

    return r == ADVREC_DLQ_NONE ? "?" : advrec_dlq_reason_name(r);
}

/* Expects decode_event to fail with DECODE, reason `code` (the DLQ header's
 * string, written out: it is a contract) and a message starting with it. */
static void expect_event_fail(advrec_codec_t *codec, const uint8_t *buf,
                              size_t len, const char *code, const char *sub)
{
    advrec_event_t ev;
    advrec_dlq_reason_t reason = ADVREC_DLQ_NONE;
    advrec_err_t err;

    errstr[0] = '\0';
    err = advrec_codec_decode_event(codec, buf, len, &ev, &reason, errstr,
                                    sizeof(errstr));
    CHECK_INT(err, ADVREC_ERR_DECODE);
    CHECK_STR(advrec_dlq_reason_name(reason), code);
    CHECK_STR(code_of(errstr), code);
    if (sub && !strstr(errstr, sub)) {
        fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", errstr, sub);
        CHECK(strstr(errstr, sub) != NULL);
    }
}

/* ---- round trips ---- */

static void test_click_round_trip(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t buf[512];
    advrec_event_t ev;
    size_t len = click_bytes(codec, buf, sizeof(buf));

    CHECK_INT(buf[0], 0);
    CHECK_INT(buf[4], ID_CLICK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(ev.type, ADVREC_EVENT_CLICK);
    CHECK_STR(ev.user_id, "u1");
    CHECK_STR(ev.item_id, "i1");
    CHECK_INT(ev.ts_ms, 1700000000123);
    CHECK_STR(ev.session_id, "s-42");
    CHECK_STR(ev.page, "home");
    CHECK_INT(ev.position, 3);

    /* Absent optionals travel as nulls and come back absent. */
    sample_click(&ev);
    ev.session_id[0] = '\0';
    ev.page[0] = '\0';
    ev.position = -1;
    CHECK_INT(advrec_codec_encode_event(codec, ID_CLICK, &ev, buf, sizeof(buf),
                                        &len, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(ev.session_id, "");
    CHECK_STR(ev.page, "");
    CHECK_INT(ev.position, -1);
    advrec_codec_destroy(codec);
}

static void test_purchase_round_trip(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t buf[512];
    advrec_event_t ev, out;
    size_t len;

    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_PURCHASE;
    strcpy(ev.user_id, "buyer");
    strcpy(ev.item_id, "sku-9");
    ev.ts_ms = 1700000000999;
    ev.quantity = 2;
    ev.price = 19.95;
    strcpy(ev.currency, "USD");
    strcpy(ev.order_id, "o-1");
    CHECK_INT(advrec_codec_encode_event(codec, ID_PURCHASE, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &out, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(out.type, ADVREC_EVENT_PURCHASE);
    CHECK_STR(out.user_id, "buyer");
    CHECK_STR(out.item_id, "sku-9");
    CHECK_INT(out.ts_ms, 1700000000999);
    CHECK_INT(out.quantity, 2);
    CHECK_NEAR(out.price, 19.95, 0);
    CHECK_STR(out.currency, "USD");
    CHECK_STR(out.order_id, "o-1");

    /* No currency given: the schema default (EUR) is written. */
    ev.currency[0] = '\0';
    CHECK_INT(advrec_codec_encode_event(codec, ID_PURCHASE, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &out, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(out.currency, "EUR");

    /* A click cannot be written with a purchase schema. */
    sample_click(&ev);
    CHECK_INT(advrec_codec_encode_event(codec, ID_PURCHASE, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_ERR_ENCODE);
    CHECK(strstr(errstr, "wrong-kind") != NULL);
    advrec_codec_destroy(codec);
}

static void test_recommendation_round_trip(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_scored_item_t items[3] = {{"a", 0.5f}, {"b", -1.25f}, {"c", 3.0f}};
    advrec_recommendation_t rec = {0}, out;
    uint8_t buf[1024];
    size_t len, small_len;

    strcpy(rec.user_id, "u7");
    rec.items = items;
    rec.n_items = 3;
    rec.model_version = 123456789012;
    strcpy(rec.input_topic, "advrec.clicks");
    rec.input_partition = 5;
    rec.input_offset = 99;
    rec.generated_at_ms = 1700000001000;
    CHECK_INT(advrec_codec_encode_recommendation(codec, ID_REC, &rec, buf,
                                                 sizeof(buf), &len, errstr,
                                                 sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_recommendation(codec, buf, len, &out, errstr,
                                                 sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(out.user_id, "u7");
    CHECK_INT(out.n_items, 3);
    if (out.n_items == 3) {
        CHECK_STR(out.items[0].item_id, "a");
        CHECK_NEAR(out.items[1].score, -1.25, 0);
        CHECK_STR(out.items[2].item_id, "c");
    }
    CHECK_INT(out.model_version, 123456789012);
    CHECK_STR(out.input_topic, "advrec.clicks");
    CHECK_INT(out.input_partition, 5);
    CHECK_INT(out.input_offset, 99);
    CHECK_INT(out.generated_at_ms, 1700000001000);
    advrec_recommendation_clear(&out);
    CHECK(out.items == NULL);

    /* Too small a buffer: ENCODE, and out_len says what is needed. */
    CHECK_INT(advrec_codec_encode_recommendation(codec, ID_REC, &rec, buf, 10,
                                                 &small_len, errstr,
                                                 sizeof(errstr)),
              ADVREC_ERR_ENCODE);
    CHECK_INT(small_len, len);

    /* An empty list round-trips with items NULL. */
    rec.n_items = 0;
    CHECK_INT(advrec_codec_encode_recommendation(codec, ID_REC, &rec, buf,
                                                 sizeof(buf), &len, errstr,
                                                 sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_recommendation(codec, buf, len, &out, errstr,
                                                 sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(out.n_items, 0);
    CHECK(out.items == NULL);
    advrec_recommendation_clear(&out);
    advrec_codec_destroy(codec);
}

static void test_anomaly_round_trip(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_anomaly_t a, out;
    uint8_t buf[2048];
    size_t len;

    memset(&a, 0, sizeof(a));
    a.entity_type = ADVREC_ENTITY_ITEM;
    strcpy(a.entity_id, "sku-1");
    a.score = 7.5;
    strcpy(a.reasons[0], "click-rate");
    strcpy(a.reasons[1], "rating-burst");
    a.n_reasons = 2;
    strcpy(a.evidence[0].key, "clicks_1m");
    a.evidence[0].count = 912;
    a.n_evidence = 1;
    a.action = ADVREC_ANOMALY_QUARANTINED;
    a.ts_ms = 1700000002000;
    strcpy(a.detector, "rate");
    CHECK_INT(advrec_codec_encode_anomaly(codec, ID_ANOMALY, &a, buf,
                                          sizeof(buf), &len, errstr,
                                          sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_anomaly(codec, buf, len, &out, errstr,
                                          sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(out.entity_type, ADVREC_ENTITY_ITEM);
    CHECK_STR(out.entity_id, "sku-1");
    CHECK_NEAR(out.score, 7.5, 0);
    CHECK_INT(out.n_reasons, 2);
    CHECK_STR(out.reasons[1], "rating-burst");
    CHECK_INT(out.n_evidence, 1);
    CHECK_STR(out.evidence[0].key, "clicks_1m");
    CHECK_INT(out.evidence[0].count, 912);
    CHECK_INT(out.action, ADVREC_ANOMALY_QUARANTINED);
    CHECK_INT(out.ts_ms, 1700000002000);
    CHECK_STR(out.detector, "rate");

    /* An anomaly is not an input event: wrong-kind. */
    expect_event_fail(codec, buf, len, "wrong-kind", "anomaly");
    advrec_codec_destroy(codec);
}

/* ---- decode failures, one each ---- */

/* Frame + body for schema id 1 (Click) from raw body bytes. */
static size_t frame(uint8_t *out, int32_t id, const uint8_t *body, size_t n)
{
    out[0] = 0;
    out[1] = (uint8_t)((uint32_t)id >> 24);
    out[2] = (uint8_t)((uint32_t)id >> 16);
    out[3] = (uint8_t)((uint32_t)id >> 8);
    out[4] = (uint8_t)id;
    memcpy(out + 5, body, n);
    return n + 5;
}

static void test_fail_short_frame(void)
{
    advrec_codec_t *codec = codec_all();
    const uint8_t buf[4] = {0, 0, 0, 1};

    expect_event_fail(codec, buf, 4, "short-frame", "4 bytes");
    expect_event_fail(codec, buf, 0, "short-frame", "0 bytes");
    advrec_codec_destroy(codec);
}

static void test_fail_bad_magic(void)
{
    advrec_codec_t *codec = codec_all();
    const uint8_t buf[] = "{\"user_id\":1}";

    expect_event_fail(codec, buf, sizeof(buf) - 1, "bad-magic", "0x7b");
    advrec_codec_destroy(codec);
}

static void test_fail_unknown_schema(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t buf[512];
    size_t len = click_bytes(codec, buf, sizeof(buf));

    buf[1] = 0x01; /* id 16777217 */
    expect_event_fail(codec, buf, len, "unknown-schema", "16777217");
    advrec_codec_destroy(codec);
}

static void test_fail_truncated_varint(void)
{
    advrec_codec_t *codec = codec_all();
    /* user "u1", item "i1", then ts varint cut after a continuation byte */
    const uint8_t body[] = {4, 'u', '1', 4, 'i', '1', 0x80};
    uint8_t buf[64];

    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, sizeof(body)),
                      "truncated", "field ts");
    advrec_codec_destroy(codec);
}

static void test_fail_truncated_record(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t buf[512];
    size_t len = click_bytes(codec, buf, sizeof(buf));

    /* Every proper prefix of a valid record fails, none crashes. */
    for (size_t n = 5; n < len; n++) {
        advrec_event_t ev;
        CHECK_INT(advrec_codec_decode_event(codec, buf, n, &ev, NULL, errstr,
                                            sizeof(errstr)),
                  ADVREC_ERR_DECODE);
    }
    advrec_codec_destroy(codec);
}

static void test_fail_overlong_varint(void)
{
    advrec_codec_t *codec = codec_all();
    const uint8_t body[] = {4,    'u',  '1',  4,    'i',  '1',  0xff,
                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0x01, 0,    0};
    const uint8_t body_int[] = {4, 'u', '1', 4, 'i', '1', 2, 0,
                                /* context: record branch, page null, */
                                2, 0,
                                /* position: int branch, 6-byte varint */
                                2, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint8_t buf[64];

    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, sizeof(body)),
                      "bad-varint", "64 bits");
    expect_event_fail(codec, buf,
                      frame(buf, ID_CLICK, body_int, sizeof(body_int)),
                      "bad-varint", "32 bits");
    advrec_codec_destroy(codec);
}

static void test_fail_absurd_string_length(void)
{
    advrec_codec_t *codec = codec_all();
    /* user_id claims 2^62 bytes */
    const uint8_t body[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0x7f, 'u',  '1'};
    const uint8_t neg[] = {0x03, 'u', '1'}; /* length -2 */
    uint8_t buf[64];

    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, sizeof(body)),
                      "bad-length", "field user_id");
    expect_event_fail(codec, buf, frame(buf, ID_CLICK, neg, sizeof(neg)),
                      "bad-length", "length -2");
    advrec_codec_destroy(codec);
}

static void test_fail_absurd_array_count(void)
{
    advrec_codec_t *codec = codec_all();
    /* Recommendation: user "u", then items claims 2^31 records. */
    const uint8_t body[] = {2, 'u', 0x80, 0x80, 0x80, 0x80, 0x10, 0};
    uint8_t buf[64];
    advrec_recommendation_t rec;
    size_t len = frame(buf, ID_REC, body, sizeof(body));

    CHECK_INT(advrec_codec_decode_recommendation(codec, buf, len, &rec, errstr,
                                                 sizeof(errstr)),
              ADVREC_ERR_DECODE);
    CHECK_STR(code_of(errstr), "bad-count");
    CHECK(strstr(errstr, "field items") != NULL);
    CHECK(rec.items == NULL);
    advrec_codec_destroy(codec);
}

static void test_fail_union_branch(void)
{
    advrec_codec_t *codec = codec_all();
    /* session_id union branch 3 of 2 */
    const uint8_t body[] = {4, 'u', '1', 4, 'i', '1', 2, 6, 0};
    uint8_t buf[64];

    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, sizeof(body)),
                      "bad-union", "branch 3");
    advrec_codec_destroy(codec);
}

static void test_fail_enum_index(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_anomaly_t a;
    uint8_t buf[512];
    size_t len;

    memset(&a, 0, sizeof(a));
    strcpy(a.entity_id, "u1");
    a.ts_ms = 1;
    CHECK_INT(advrec_codec_encode_anomaly(codec, ID_ANOMALY, &a, buf,
                                          sizeof(buf), &len, errstr,
                                          sizeof(errstr)),
              ADVREC_OK);
    buf[5] = 8; /* entity_type index 4, the enum has 2 symbols */
    CHECK_INT(advrec_codec_decode_anomaly(codec, buf, len, &a, errstr,
                                          sizeof(errstr)),
              ADVREC_ERR_DECODE);
    CHECK_STR(code_of(errstr), "bad-enum");
    CHECK(strstr(errstr, "entity_type") != NULL);
    advrec_codec_destroy(codec);
}

static void test_fail_trailing_bytes(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t buf[512];
    size_t len = click_bytes(codec, buf, sizeof(buf));

    buf[len] = 0;
    buf[len + 1] = 0x42;
    expect_event_fail(codec, buf, len + 2, "trailing-bytes", "2 bytes");
    advrec_codec_destroy(codec);
}

static void test_fail_long_id_not_truncated(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t body[400], buf[512];
    size_t n = 0;

    /* user_id of 300 bytes: zig-zag 600 = 0xd8 0x04 */
    body[n++] = 0xd8;
    body[n++] = 0x04;
    memset(body + n, 'x', 300);
    n += 300;
    memcpy(body + n, "\x04i1\x02\x00\x00", 6);
    n += 6;
    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, n), "id-too-long",
                      "user_id is 300 bytes");
    advrec_codec_destroy(codec);
}

static void test_fail_invalid_event(void)
{
    advrec_codec_t *codec = codec_all();
    /* empty user id, item "i1", ts 1 */
    const uint8_t body[] = {0, 4, 'i', '1', 2, 0, 0};
    const uint8_t zero_ts[] = {2, 'u', 4, 'i', '1', 0, 0, 0};
    uint8_t buf[64];

    expect_event_fail(codec, buf, frame(buf, ID_CLICK, body, sizeof(body)),
                      "invalid-event", "empty user_id");
    expect_event_fail(codec, buf,
                      frame(buf, ID_CLICK, zero_ts, sizeof(zero_ts)),
                      "invalid-event", "ts 0");
    advrec_codec_destroy(codec);
}

static void test_fail_bad_boolean(void)
{
    static const char schema[] =
        "{\"type\":\"record\",\"name\":\"Click\",\"namespace\":"
        "\"com.advrec.v1\",\"fields\":["
        "{\"name\":\"user_id\",\"type\":\"string\"},"
        "{\"name\":\"bot\",\"type\":\"boolean\"},"
        "{\"name\":\"item_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":\"long\"}]}";
    advrec_codec_t *codec = codec_all();
    const uint8_t body[] = {2, 'u', 7, 2, 'i', 2};
    uint8_t buf[64];

    CHECK_INT(advrec_codec_register_json(codec, 50, schema, strlen(schema),
                                         "bool", errstr, sizeof(errstr)),
              ADVREC_OK);
    expect_event_fail(codec, buf, frame(buf, 50, body, sizeof(body)),
                      "bad-boolean", "0x07");
    advrec_codec_destroy(codec);
}

/* ---- schema evolution and registry ---- */

static void test_older_writer_gets_defaults(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_event_t ev;
    uint8_t buf[512];
    size_t len;

    /* Written with click_v0: only user, item, ts are on the wire. */
    sample_click(&ev);
    CHECK_INT(advrec_codec_encode_event(codec, ID_CLICK_V0, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(len, 5 + 3 + 3 + 6);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(ev.user_id, "u1");
    CHECK_INT(ev.ts_ms, 1700000000123);
    CHECK_STR(ev.session_id, "");
    CHECK_STR(ev.page, "");
    CHECK_INT(ev.position, -1);

    /* purchase_v0: no quantity/currency/order_id, float price. */
    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_PURCHASE;
    strcpy(ev.user_id, "u2");
    strcpy(ev.item_id, "i2");
    ev.ts_ms = 5;
    ev.price = 2.5;
    CHECK_INT(advrec_codec_encode_event(codec, ID_PURCHASE_V0, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(ev.quantity, 1);
    CHECK_STR(ev.currency, "EUR");
    CHECK_NEAR(ev.price, 2.5, 0);
    CHECK_STR(ev.order_id, "");
    advrec_codec_destroy(codec);
}

/* Writes a click_v2 record with Avro-C directly, extra fields non-default. */
static size_t click_v2_bytes(uint8_t *buf, size_t size)
{
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t v, f, b, ctx, slot, x;
    avro_writer_t w;
    FILE *fp = fopen(DATA "/click_v2.avsc", "rb");
    char json[4096];
    size_t n = fp ? fread(json, 1, sizeof(json), fp) : 0;
    size_t len;

    if (fp)
        fclose(fp);
    CHECK(avro_schema_from_json_length(json, n, &schema) == 0);
    iface = avro_generic_class_from_schema(schema);
    avro_generic_value_new(iface, &v);
    avro_value_get_by_name(&v, "user_id", &f, NULL);
    avro_value_set_string(&f, "u9");
    avro_value_get_by_name(&v, "referrer", &f, NULL);
    avro_value_set_string(&f, "newsletter");
    avro_value_get_by_name(&v, "item_id", &f, NULL);
    avro_value_set_string(&f, "i9");
    avro_value_get_by_name(&v, "ts", &f, NULL);
    avro_value_set_long(&f, 77);
    avro_value_get_by_name(&v, "session_id", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_string(&b, "s9");
    avro_value_get_by_name(&v, "context", &f, NULL);
    avro_value_set_branch(&f, 1, &ctx);
    avro_value_get_by_name(&ctx, "page", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_string(&b, "search");
    avro_value_get_by_name(&ctx, "position", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_int(&b, 4);
    avro_value_get_by_name(&ctx, "slot", &slot, NULL);
    avro_value_append(&slot, &x, NULL);
    avro_value_set_long(&x, 11);
    avro_value_append(&slot, &x, NULL);
    avro_value_set_long(&x, 12);
    avro_value_get_by_name(&v, "dwell_ms", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_long(&b, 4321);
    w = avro_writer_memory((const char *)buf + 5, (int64_t)size - 5);
    CHECK(avro_value_write(w, &v) == 0);
    len = (size_t)avro_writer_tell(w) + 5;
    avro_writer_free(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    buf[0] = 0;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = ID_CLICK_V2;
    return len;
}

static void test_newer_writer_extra_fields_ignored(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_event_t ev;
    uint8_t buf[512];
    size_t len = click_v2_bytes(buf, sizeof(buf));

    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(ev.user_id, "u9");
    CHECK_STR(ev.item_id, "i9");
    CHECK_INT(ev.ts_ms, 77);
    CHECK_STR(ev.session_id, "s9");
    CHECK_STR(ev.page, "search");
    CHECK_INT(ev.position, 4);

    /* Encoding with the newer schema fills its extra fields' defaults. */
    sample_click(&ev);
    CHECK_INT(advrec_codec_encode_event(codec, ID_CLICK_V2, &ev, buf,
                                        sizeof(buf), &len, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_codec_decode_event(codec, buf, len, &ev, NULL, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(ev.page, "home");
    advrec_codec_destroy(codec);
}

static void expect_register_fail(advrec_codec_t *codec, int32_t id,
                                 const char *path, advrec_err_t want,
                                 const char *sub)
{
    advrec_codec_kind_t kind;

    errstr[0] = '\0';
    CHECK_INT(advrec_codec_register(codec, id, path, errstr, sizeof(errstr)),
              want);
    if (!strstr(errstr, sub)) {
        fprintf(stderr, "register reason \"%s\" lacks \"%s\"\n", errstr, sub);
        CHECK(strstr(errstr, sub) != NULL);
    }
    if (want != ADVREC_ERR_INVALID_ARG)
        CHECK_INT(advrec_codec_schema_kind(codec, id, &kind),
                  ADVREC_ERR_NOT_FOUND);
}

static void test_incompatible_schemas_refused(void)
{
    advrec_codec_t *codec = codec_all();
    static const char no_default[] =
        "{\"type\":\"record\",\"name\":\"Purchase\",\"namespace\":"
        "\"com.advrec.v1\",\"fields\":["
        "{\"name\":\"user_id\",\"type\":\"string\"},"
        "{\"name\":\"item_id\",\"type\":\"string\"},"
        "{\"name\":\"ts\",\"type\":\"long\"}]}";
    static const char stranger[] =
        "{\"type\":\"record\",\"name\":\"Rating\",\"fields\":[]}";

    expect_register_fail(codec, 20, DATA "/click_incompatible.avsc",
                         ADVREC_ERR_SCHEMA, "incompatible:");
    expect_register_fail(codec, 21, DATA "/anomaly_reordered.avsc",
                         ADVREC_ERR_SCHEMA, "enum EntityType");
    expect_register_fail(codec, 22, DATA "/does-not-exist.avsc", ADVREC_ERR_IO,
                         "does-not-exist.avsc");
    expect_register_fail(codec, ID_CLICK, SCHEMAS "/click.avsc",
                         ADVREC_ERR_INVALID_ARG, "already registered");
    CHECK_INT(advrec_codec_register_json(codec, 23, no_default,
                                         strlen(no_default), "p", errstr,
                                         sizeof(errstr)),
              ADVREC_ERR_SCHEMA);
    CHECK(strstr(errstr, "Purchase.price") != NULL);
    CHECK(strstr(errstr, "no default") != NULL);
    CHECK_INT(advrec_codec_register_json(codec, 24, stranger, strlen(stranger),
                                         "r", errstr, sizeof(errstr)),
              ADVREC_ERR_SCHEMA);
    CHECK(strstr(errstr, "Rating") != NULL);
    CHECK_INT(advrec_codec_register_json(codec, 25, "{", 1, "broken", errstr,
                                         sizeof(errstr)),
              ADVREC_ERR_SCHEMA);
    advrec_codec_destroy(codec);
}

static void test_registry_lookups(void)
{
    advrec_codec_t *codec = codec_all();
    advrec_codec_kind_t kind;
    int32_t id = -1;

    CHECK_INT(advrec_codec_schema_kind(codec, ID_CLICK_V2, &kind), ADVREC_OK);
    CHECK_INT(kind, ADVREC_CODEC_CLICK);
    CHECK_INT(advrec_codec_current_id(codec, ADVREC_CODEC_CLICK, &id),
              ADVREC_OK);
    CHECK_INT(id, ID_CLICK); /* v0 and v2 are not our schema */
    CHECK_INT(advrec_codec_current_id(codec, ADVREC_CODEC_ANOMALY, &id),
              ADVREC_OK);
    CHECK_INT(id, ID_ANOMALY);
    CHECK_STR(advrec_codec_kind_name(ADVREC_CODEC_RECOMMENDATION),
              "recommendation");
    CHECK_STR(code_of("bad-magic: x"), "bad-magic");
    CHECK_STR(code_of("no code here"), "?");
    CHECK(advrec_codec_default_schema_dir()[0] == '/');
    advrec_codec_destroy(codec);

    /* A missing schema directory is a clear error, not a crash. */
    CHECK(advrec_codec_new("/nonexistent-dir", errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "/nonexistent-dir/click.avsc") != NULL);
}

/* ---- mutation loop ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void test_mutations_never_crash(void)
{
    advrec_codec_t *codec = codec_all();
    uint8_t seeds[4][1024], buf[1100];
    size_t seed_len[4];
    advrec_scored_item_t items[2] = {{"a", 1.0f}, {"bb", 2.0f}};
    advrec_recommendation_t rec = {0};
    advrec_anomaly_t a;
    int ok = 0, failed = 0;

    seed_len[0] = click_bytes(codec, seeds[0], sizeof(seeds[0]));
    seed_len[1] = click_v2_bytes(seeds[1], sizeof(seeds[1]));
    strcpy(rec.user_id, "u");
    rec.items = items;
    rec.n_items = 2;
    strcpy(rec.input_topic, "t");
    CHECK_INT(advrec_codec_encode_recommendation(codec, ID_REC, &rec, seeds[2],
                                                 sizeof(seeds[2]), &seed_len[2],
                                                 errstr, sizeof(errstr)),
              ADVREC_OK);
    memset(&a, 0, sizeof(a));
    strcpy(a.entity_id, "e");
    strcpy(a.reasons[0], "r");
    a.n_reasons = 1;
    strcpy(a.evidence[0].key, "k");
    a.n_evidence = 1;
    CHECK_INT(advrec_codec_encode_anomaly(codec, ID_ANOMALY, &a, seeds[3],
                                          sizeof(seeds[3]), &seed_len[3],
                                          errstr, sizeof(errstr)),
              ADVREC_OK);

    for (int round = 0; round < 20000; round++) {
        int s = (int)(rng() % 4);
        size_t len = seed_len[s];
        int edits = 1 + (int)(rng() % 4);
        advrec_err_t err;

        memcpy(buf, seeds[s], len);
        for (int k = 0; k < edits; k++) {
            uint32_t r = rng();
            switch (r % 4) {
            case 0: /* flip a bit */
                buf[(r >> 8) % len] ^= (uint8_t)(1u << ((r >> 4) % 8));
                break;
            case 1: /* overwrite a byte */
                buf[(r >> 8) % len] = (uint8_t)(r >> 24);
                break;
            case 2: /* truncate */
                len = (r >> 8) % (len + 1);
                break;
            default: /* append a byte */
                if (len < sizeof(buf))
                    buf[len++] = (uint8_t)(r >> 16);
                break;
            }
            if (len == 0)
                break;
        }
        /* Half the time, keep the header so the body is what is fuzzed. */
        if (len >= 5 && (rng() & 1))
            memcpy(buf, seeds[s], 5);
        if (s < 2) {
            advrec_event_t ev;
            advrec_dlq_reason_t reason = ADVREC_DLQ_NONE;
            err = advrec_codec_decode_event(codec, buf, len, &ev, &reason,
                                            errstr, sizeof(errstr));
            if (err)
                CHECK_STR(advrec_dlq_reason_name(reason), code_of(errstr));
        } else if (s == 2) {
            advrec_recommendation_t out;
            err = advrec_codec_decode_recommendation(codec, buf, len, &out,
                                                     errstr, sizeof(errstr));
            advrec_recommendation_clear(&out);
        } else {
            advrec_anomaly_t out;
            err = advrec_codec_decode_anomaly(codec, buf, len, &out, errstr,
                                              sizeof(errstr));
        }
        if (err == ADVREC_OK) {
            ok++;
        } else {
            failed++;
            CHECK_INT(err, ADVREC_ERR_DECODE);
            CHECK(strcmp(code_of(errstr), "?") != 0);
        }
    }
    printf("mutations: %d decoded, %d refused\n", ok, failed);
    CHECK(failed > 10000);
    advrec_codec_destroy(codec);
}

int main(void)
{
    RUN(test_click_round_trip);
    RUN(test_purchase_round_trip);
    RUN(test_recommendation_round_trip);
    RUN(test_anomaly_round_trip);
    RUN(test_fail_short_frame);
    RUN(test_fail_bad_magic);
    RUN(test_fail_unknown_schema);
    RUN(test_fail_truncated_varint);
    RUN(test_fail_truncated_record);
    RUN(test_fail_overlong_varint);
    RUN(test_fail_absurd_string_length);
    RUN(test_fail_absurd_array_count);
    RUN(test_fail_union_branch);
    RUN(test_fail_enum_index);
    RUN(test_fail_trailing_bytes);
    RUN(test_fail_long_id_not_truncated);
    RUN(test_fail_invalid_event);
    RUN(test_fail_bad_boolean);
    RUN(test_older_writer_gets_defaults);
    RUN(test_newer_writer_extra_fields_ignored);
    RUN(test_incompatible_schemas_refused);
    RUN(test_registry_lookups);
    RUN(test_mutations_never_crash);
    return DONE();
}
