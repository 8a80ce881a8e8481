/*
 * fuzz_decode.c - libFuzzer target for the Confluent framing and the Avro
 * decoders (lib/codec.h), the path every consumed record takes.
 *
 * The codec is built once, with the writer schemas a daemon registers by
 * default (1 Click, 2 Purchase, 3 Recommendation, 4 Anomaly from schemas/)
 * and, to reach schema resolution (fields filled from reader defaults,
 * fields skipped), the older and newer test schemas of tests/unit/data
 * (10 Click v0, 11 Purchase v0, 12 Click v2). The input is one message
 * value; its schema id picks the decoder.
 *
 * Beyond "no crash, no leak, no UB", two properties are checked: a decoded
 * event passes advrec_event_validate() (the decoder's own promise), and
 * encoding it again with our current schema and decoding that gives the
 * same event byte for byte. A violation aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define SCHEMAS ADVREC_FUZZ_SOURCE_DIR "/schemas"
#define DATA    ADVREC_FUZZ_SOURCE_DIR "/tests/unit/data"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static advrec_codec_t *codec;

static void die(const char *what, const char *errstr)
{
    fprintf(stderr, "fuzz_decode: %s: %s\n", what, errstr);
    abort();
}

/* At exit, so that LeakSanitizer's final check sees only real leaks: the
 * codec keeps Avro-C's decode values (and their buffers) between calls. */
static void codec_free(void)
{
    advrec_codec_destroy(codec);
    codec = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct {
        int32_t id;
        const char *path;
    } writers[] = {
        {1, SCHEMAS "/click.avsc"},          {2, SCHEMAS "/purchase.avsc"},
        {3, SCHEMAS "/recommendation.avsc"}, {4, SCHEMAS "/anomaly.avsc"},
        {10, DATA "/click_v0.avsc"},         {11, DATA "/purchase_v0.avsc"},
        {12, DATA "/click_v2.avsc"},
    };
    char errstr[512];

    if (!(codec = advrec_codec_new(SCHEMAS, errstr, sizeof(errstr))))
        die("advrec_codec_new", errstr);
    for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++)
        if (advrec_codec_register(codec, writers[i].id, writers[i].path, errstr,
                                  sizeof(errstr)))
            die(writers[i].path, errstr);
    atexit(codec_free);
    return 0;
}

/* Field by field: the struct's padding is not part of the value. Returns
 * the first differing field's name, or NULL. A currency of "" in a (the
 * wire's explicit empty string) means "absent" in advrec_event_t, which the
 * encoder writes as the schema's default ("EUR"), so it is not compared;
 * likewise a negative position on the wire is decoded as it is, and every
 * negative position is "absent" to the encoder, so it comes back as -1. */
static const char *event_diff(const advrec_event_t *a, const advrec_event_t *b)
{
    if (a->type != b->type)
        return "type";
    if (strcmp(a->user_id, b->user_id) != 0)
        return "user_id";
    if (strcmp(a->item_id, b->item_id) != 0)
        return "item_id";
    if (a->ts_ms != b->ts_ms)
        return "ts_ms";
    if (strcmp(a->session_id, b->session_id) != 0)
        return "session_id";
    if (strcmp(a->page, b->page) != 0)
        return "page";
    if ((a->position < 0 ? -1 : a->position) != b->position)
        return "position";
    if (a->quantity != b->quantity)
        return "quantity";
    if (memcmp(&a->price, &b->price, sizeof(a->price)) != 0)
        return "price";
    if (a->currency[0] && strcmp(a->currency, b->currency) != 0)
        return "currency";
    if (strcmp(a->order_id, b->order_id) != 0)
        return "order_id";
    return NULL;
}

/* Encodes ev with our current schema of its kind and decodes it again. */
static void check_round_trip(const advrec_event_t *ev)
{
    advrec_codec_kind_t kind = ev->type == ADVREC_EVENT_PURCHASE
                                   ? ADVREC_CODEC_PURCHASE
                                   : ADVREC_CODEC_CLICK;
    advrec_event_t again;
    unsigned char buf[4096];
    char errstr[512];
    const char *field;
    size_t len;
    int32_t id;

    if (advrec_codec_current_id(codec, kind, &id))
        die("advrec_codec_current_id", "none");
    if (advrec_codec_encode_event(codec, id, ev, buf, sizeof(buf), &len, errstr,
                                  sizeof(errstr)))
        die("re-encoding a decoded event", errstr);
    if (advrec_codec_decode_event(codec, buf, len, &again, NULL, errstr,
                                  sizeof(errstr)))
        die("decoding a re-encoded event", errstr);
    if ((field = event_diff(ev, &again)) != NULL)
        die("round trip: this field differs after encode + decode", field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    advrec_codec_kind_t kind = ADVREC_CODEC_CLICK;
    advrec_dlq_reason_t reason;
    char errstr[512];
    int32_t id;

    if (advrec_codec_frame_id(data, size, &id, errstr, sizeof(errstr)) ==
        ADVREC_OK)
        (void)advrec_codec_schema_kind(codec, id, &kind);

    switch (kind) {
    case ADVREC_CODEC_RECOMMENDATION: {
        advrec_recommendation_t rec;

        if (advrec_codec_decode_recommendation(codec, data, size, &rec, errstr,
                                               sizeof(errstr)) == ADVREC_OK)
            advrec_recommendation_clear(&rec);
        break;
    }
    case ADVREC_CODEC_ANOMALY: {
        advrec_anomaly_t anomaly;

        (void)advrec_codec_decode_anomaly(codec, data, size, &anomaly, errstr,
                                          sizeof(errstr));
        break;
    }
    default: {
        advrec_event_t ev;

        if (advrec_codec_decode_event(codec, data, size, &ev, &reason, errstr,
                                      sizeof(errstr)) != ADVREC_OK)
            break;
        if (advrec_event_validate(&ev, errstr, sizeof(errstr)))
            die("a decoded event fails validation", errstr);
        check_round_trip(&ev);
        break;
    }
    }
    return 0;
}
