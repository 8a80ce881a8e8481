/*
 * codec_decode.c - the codec's decoders (codec.h): frame header, writer
 * lookup, the bounds-checked walk (avro_check.h), Avro-C's read into the
 * entry's reusable value, and extraction into our structs, with reader
 * defaults for fields the writer lacks. Owns no memory of its own: a
 * decoded recommendation's items are the caller's.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

/* advrec_codec_frame_id(), and the reason of a failure in *reason. */
static advrec_err_t frame_id(const void *buf, size_t len, int32_t *schema_id,
                             advrec_dlq_reason_t *reason, char *errstr,
                             size_t errstr_size)
{
    const uint8_t *b = buf;

    if (len < ADVREC_CODEC_HEADER_SIZE)
        return advrec_codec__fail(
            ADVREC_ERR_DECODE, ADVREC_DLQ_SHORT_FRAME, reason, errstr,
            errstr_size, "%zu bytes, a Confluent frame has at least %d", len,
            ADVREC_CODEC_HEADER_SIZE);
    if (b[0] != ADVREC_CODEC_MAGIC)
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_MAGIC,
                                  reason, errstr, errstr_size,
                                  "first byte is 0x%02x, expected 0 (not "
                                  "Confluent-framed Avro)",
                                  b[0]);
    *schema_id = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) |
                           ((uint32_t)b[3] << 8) | (uint32_t)b[4]);
    return ADVREC_OK;
}

advrec_err_t advrec_codec_frame_id(const void *buf, size_t len,
                                   int32_t *schema_id, char *errstr,
                                   size_t errstr_size)
{
    return frame_id(buf, len, schema_id, NULL, errstr, errstr_size);
}

/*
 * Frame, look up, validate and decode into the entry's reusable value.
 * `want` is a bit set of acceptable kinds. On success *out is the entry,
 * whose dest value holds the record (projected reader shape).
 */
static advrec_err_t decode_frame(advrec_codec_t *codec, const void *buf,
                                 size_t len, unsigned want, codec_entry_t **out,
                                 advrec_dlq_reason_t *reason, char *errstr,
                                 size_t errstr_size)
{
    int32_t id = 0;
    codec_entry_t *e;
    size_t used = 0;
    advrec_err_t err;

    if ((err = frame_id(buf, len, &id, reason, errstr, errstr_size)))
        return err;
    e = codec->last && codec->last->id == id ? codec->last
                                             : advrec_codec__lookup(codec, id);
    if (!e)
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_UNKNOWN_SCHEMA,
                                  reason, errstr, errstr_size,
                                  "schema id %d is not registered", id);
    codec->last = e;
    if (!(want & (1u << e->kind)))
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_WRONG_KIND,
                                  reason, errstr, errstr_size,
                                  "schema id %d is a %s record, not what this "
                                  "decoder reads",
                                  id, advrec_codec_kind_name(e->kind));
    if ((err = advrec_avro_check_body(
             e->check, (const uint8_t *)buf + ADVREC_CODEC_HEADER_SIZE,
             len - ADVREC_CODEC_HEADER_SIZE, &used, reason, errstr,
             errstr_size)) != ADVREC_OK)
        return err;
    if (used != len - ADVREC_CODEC_HEADER_SIZE)
        return advrec_codec__fail(
            ADVREC_ERR_DECODE, ADVREC_DLQ_TRAILING_BYTES, reason, errstr,
            errstr_size, "%zu bytes after the %s record (schema id %d)",
            len - ADVREC_CODEC_HEADER_SIZE - used,
            advrec_codec_kind_name(e->kind), id);
    avro_value_reset(&e->dest);
    avro_reader_memory_set_source(codec->reader,
                                  (const char *)buf + ADVREC_CODEC_HEADER_SIZE,
                                  (int64_t)(len - ADVREC_CODEC_HEADER_SIZE));
    if (avro_value_read(codec->reader, &e->resolved))
        return advrec_codec__fail(
            ADVREC_ERR_DECODE, ADVREC_DLQ_AVRO, reason, errstr, errstr_size,
            "Avro-C cannot read schema id %d: %s", id, avro_strerror());
    *out = e;
    return ADVREC_OK;
}

/* Extraction: decoded value (or reader default) -> struct fields. */

typedef struct xctx_s {
    const char *rec;             /* record name, for messages */
    advrec_dlq_reason_t *reason; /* may be NULL */
    char *errstr;
    size_t errstr_size;
} xctx_t;

/*
 * Finds field `name` of record value `rec`. Returns 1 with *v set, 0 when
 * the value is null (or a missing field's default is null), and sets *dflt
 * to the reader default when the writer had no such field (*v unset).
 */
static int xfield(avro_value_t *rec, const json_t *rjson, const char *name,
                  avro_value_t *v, const json_t **dflt)
{
    avro_value_t f;

    *dflt = NULL;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0) {
        *dflt =
            json_object_get(advrec_codec__json_field(rjson, name), "default");
        return json_is_null(*dflt) || !*dflt ? 0 : 1;
    }
    if (avro_value_get_type(&f) == AVRO_UNION) {
        avro_value_t b;
        if (avro_value_get_current_branch(&f, &b) != 0)
            return 0;
        f = b;
    }
    if (avro_value_get_type(&f) == AVRO_NULL)
        return 0;
    *v = f;
    return 1;
}

static advrec_err_t xstr(xctx_t *x, avro_value_t *rec, const json_t *rjson,
                         const char *name, char *dst, size_t dst_size)
{
    avro_value_t v;
    const json_t *dflt;
    const char *s = "";
    size_t n = 0;

    if (xfield(rec, rjson, name, &v, &dflt)) {
        if (dflt) {
            s = json_string_value(dflt);
            n = s ? json_string_length(dflt) : 0;
            if (!s)
                s = "";
        } else if (avro_value_get_type(&v) == AVRO_STRING) {
            if (avro_value_get_string(&v, &s, &n) == 0 && n > 0)
                n--; /* Avro-C counts the terminating NUL */
        } else if (avro_value_get_type(&v) == AVRO_BYTES) {
            const void *bytes;
            if (avro_value_get_bytes(&v, &bytes, &n) == 0)
                s = bytes;
        }
    }
    if (advrec_event_set_str(dst, dst_size, s, n) != ADVREC_OK)
        return advrec_codec__fail(
            ADVREC_ERR_DECODE,
            memchr(s, '\0', n) || !strstr(name, "_id") ? ADVREC_DLQ_BAD_FIELD
                                                       : ADVREC_DLQ_ID_TOO_LONG,
            x->reason, x->errstr, x->errstr_size,
            "%s.%s is %zu bytes%s, at most %zu fit", x->rec, name, n,
            memchr(s, '\0', n) ? " with a NUL byte" : "", dst_size - 1);
    return ADVREC_OK;
}

/* Integer field (int or long) or its default; `absent` if null. */
static void xlong(avro_value_t *rec, const json_t *rjson, const char *name,
                  int64_t absent, int64_t *out)
{
    avro_value_t v;
    const json_t *dflt;
    int32_t i32;

    *out = absent;
    if (!xfield(rec, rjson, name, &v, &dflt))
        return;
    if (dflt) {
        if (json_is_number(dflt))
            *out = (int64_t)json_number_value(dflt);
    } else if (avro_value_get_type(&v) == AVRO_INT32) {
        if (avro_value_get_int(&v, &i32) == 0)
            *out = i32;
    } else {
        avro_value_get_long(&v, out);
    }
}

static void xdouble(avro_value_t *rec, const json_t *rjson, const char *name,
                    double *out)
{
    avro_value_t v;
    const json_t *dflt;
    float f;

    *out = 0.0;
    if (!xfield(rec, rjson, name, &v, &dflt))
        return;
    if (dflt) {
        *out = json_number_value(dflt);
    } else if (avro_value_get_type(&v) == AVRO_FLOAT) {
        if (avro_value_get_float(&v, &f) == 0)
            *out = f;
    } else {
        avro_value_get_double(&v, out);
    }
}

static advrec_err_t xint32(xctx_t *x, avro_value_t *rec, const json_t *rjson,
                           const char *name, int32_t absent, int32_t *out)
{
    int64_t v;

    xlong(rec, rjson, name, absent, &v);
    if (v < INT32_MIN || v > INT32_MAX)
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD,
                                  x->reason, x->errstr, x->errstr_size,
                                  "%s.%s is %lld, outside 32 bits", x->rec,
                                  name, (long long)v);
    *out = (int32_t)v;
    return ADVREC_OK;
}

advrec_err_t advrec_codec_decode_event(advrec_codec_t *codec, const void *buf,
                                       size_t len, advrec_event_t *ev,
                                       advrec_dlq_reason_t *reason,
                                       char *errstr, size_t errstr_size)
{
    codec_entry_t *e = NULL; /* set by the lookup; GCC -O3 cannot tell */
    advrec_err_t err;
    xctx_t x = {NULL, reason, errstr, errstr_size};
    const json_t *rj;
    avro_value_t *rec, v;
    const json_t *dflt;
    char why[200];

    advrec_event_clear(ev);
    err =
        decode_frame(codec, buf, len,
                     (1u << ADVREC_CODEC_CLICK) | (1u << ADVREC_CODEC_PURCHASE),
                     &e, reason, errstr, errstr_size);
    if (err)
        return err;
    rec = &e->dest;
    rj = codec->rjson[e->kind];
    x.rec = e->kind == ADVREC_CODEC_CLICK ? "Click" : "Purchase";
    ev->type = e->kind == ADVREC_CODEC_CLICK ? ADVREC_EVENT_CLICK
                                             : ADVREC_EVENT_PURCHASE;
    if ((err =
             xstr(&x, rec, rj, "user_id", ev->user_id, sizeof(ev->user_id))) ||
        (err = xstr(&x, rec, rj, "item_id", ev->item_id, sizeof(ev->item_id))))
        return err;
    xlong(rec, rj, "ts", 0, &ev->ts_ms);
    if (e->kind == ADVREC_CODEC_CLICK) {
        if ((err = xstr(&x, rec, rj, "session_id", ev->session_id,
                        sizeof(ev->session_id))))
            return err;
        if (xfield(rec, rj, "context", &v, &dflt) && !dflt) {
            x.rec = "Click.context";
            if ((err = xstr(&x, &v, codec->click_ctx, "page", ev->page,
                            sizeof(ev->page))) ||
                (err = xint32(&x, &v, codec->click_ctx, "position", -1,
                              &ev->position)))
                return err;
        }
    } else {
        if ((err = xint32(&x, rec, rj, "quantity", 1, &ev->quantity)))
            return err;
        xdouble(rec, rj, "price", &ev->price);
        if ((err = xstr(&x, rec, rj, "currency", ev->currency,
                        sizeof(ev->currency))) ||
            (err = xstr(&x, rec, rj, "order_id", ev->order_id,
                        sizeof(ev->order_id))))
            return err;
    }
    if (advrec_event_validate(ev, why, sizeof(why)) != ADVREC_OK)
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_INVALID_EVENT,
                                  reason, errstr, errstr_size,
                                  "%s (schema id %d)", why, e->id);
    return ADVREC_OK;
}

void advrec_recommendation_clear(advrec_recommendation_t *rec)
{
    if (!rec)
        return;
    free(rec->items);
    memset(rec, 0, sizeof(*rec));
}

advrec_err_t advrec_codec_decode_recommendation(advrec_codec_t *codec,
                                                const void *buf, size_t len,
                                                advrec_recommendation_t *rec,
                                                char *errstr,
                                                size_t errstr_size)
{
    codec_entry_t *e;
    advrec_err_t err;
    xctx_t x = {"Recommendation", NULL, errstr, errstr_size};
    const json_t *rj = codec->rjson[ADVREC_CODEC_RECOMMENDATION];
    const json_t *dflt;
    avro_value_t items;
    size_t n = 0;

    memset(rec, 0, sizeof(*rec));
    err = decode_frame(codec, buf, len, 1u << ADVREC_CODEC_RECOMMENDATION, &e,
                       NULL, errstr, errstr_size);
    if (err)
        return err;
    if ((err = xstr(&x, &e->dest, rj, "user_id", rec->user_id,
                    sizeof(rec->user_id))) ||
        (err = xstr(&x, &e->dest, rj, "input_topic", rec->input_topic,
                    sizeof(rec->input_topic))) ||
        (err = xint32(&x, &e->dest, rj, "input_partition", -1,
                      &rec->input_partition)))
        goto fail;
    xlong(&e->dest, rj, "model_version", 0, &rec->model_version);
    xlong(&e->dest, rj, "input_offset", -1, &rec->input_offset);
    xlong(&e->dest, rj, "generated_at", 0, &rec->generated_at_ms);
    if (xfield(&e->dest, rj, "items", &items, &dflt) && !dflt)
        avro_value_get_size(&items, &n);
    if (n > 0) {
        rec->items = calloc(n, sizeof(*rec->items));
        if (!rec->items) {
            err = advrec_codec__fail(ADVREC_ERR_NOMEM, ADVREC_DLQ_NO_MEMORY,
                                     NULL, errstr, errstr_size,
                                     "%zu recommendation items", n);
            goto fail;
        }
        rec->n_items = n;
        x.rec = "Recommendation.items";
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            double score;
            avro_value_get_by_index(&items, i, &item, NULL);
            if ((err = xstr(&x, &item, codec->scored, "item_id",
                            rec->items[i].item_id,
                            sizeof(rec->items[i].item_id))))
                goto fail;
            xdouble(&item, codec->scored, "score", &score);
            rec->items[i].score = (float)score;
        }
    }
    return ADVREC_OK;

fail:
    advrec_recommendation_clear(rec);
    return err;
}

advrec_err_t advrec_codec_decode_anomaly(advrec_codec_t *codec, const void *buf,
                                         size_t len, advrec_anomaly_t *anomaly,
                                         char *errstr, size_t errstr_size)
{
    codec_entry_t *e;
    advrec_err_t err;
    xctx_t x = {"Anomaly", NULL, errstr, errstr_size};
    const json_t *rj = codec->rjson[ADVREC_CODEC_ANOMALY];
    const json_t *dflt;
    avro_value_t v;
    size_t n = 0;
    int sym;

    memset(anomaly, 0, sizeof(*anomaly));
    err = decode_frame(codec, buf, len, 1u << ADVREC_CODEC_ANOMALY, &e, NULL,
                       errstr, errstr_size);
    if (err)
        return err;
    if (xfield(&e->dest, rj, "entity_type", &v, &dflt) && !dflt &&
        avro_value_get_enum(&v, &sym) == 0)
        anomaly->entity_type = (advrec_entity_type_t)sym;
    if (xfield(&e->dest, rj, "action", &v, &dflt) && !dflt &&
        avro_value_get_enum(&v, &sym) == 0)
        anomaly->action = (advrec_anomaly_action_t)sym;
    if ((err = xstr(&x, &e->dest, rj, "entity_id", anomaly->entity_id,
                    sizeof(anomaly->entity_id))) ||
        (err = xstr(&x, &e->dest, rj, "detector", anomaly->detector,
                    sizeof(anomaly->detector))))
        return err;
    xdouble(&e->dest, rj, "score", &anomaly->score);
    xlong(&e->dest, rj, "ts", 0, &anomaly->ts_ms);

    if (xfield(&e->dest, rj, "reasons", &v, &dflt) && !dflt)
        avro_value_get_size(&v, &n);
    if (n > ADVREC_ANOMALY_MAX_REASONS)
        return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL,
                                  errstr, errstr_size,
                                  "Anomaly.reasons has %zu entries, at most %d "
                                  "fit",
                                  n, ADVREC_ANOMALY_MAX_REASONS);
    for (size_t i = 0; i < n; i++) {
        avro_value_t r;
        const char *s = NULL;
        size_t sl = 0;
        avro_value_get_by_index(&v, i, &r, NULL);
        if (avro_value_get_string(&r, &s, &sl) != 0 || !s || sl == 0) {
            s = "";
            sl = 1;
        }
        if (advrec_event_set_str(anomaly->reasons[i], ADVREC_ANOMALY_REASON_MAX,
                                 s, sl - 1) != ADVREC_OK)
            return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD,
                                      NULL, errstr, errstr_size,
                                      "Anomaly.reasons[%zu] is %zu bytes, at "
                                      "most %d fit",
                                      i, sl - 1, ADVREC_ANOMALY_REASON_MAX - 1);
    }
    anomaly->n_reasons = n;

    n = 0;
    if (xfield(&e->dest, rj, "evidence", &v, &dflt) && !dflt)
        avro_value_get_size(&v, &n);
    if (n > ADVREC_ANOMALY_MAX_EVIDENCE)
        return advrec_codec__fail(
            ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL, errstr, errstr_size,
            "Anomaly.evidence has %zu entries, at most %d "
            "fit",
            n, ADVREC_ANOMALY_MAX_EVIDENCE);
    for (size_t i = 0; i < n; i++) {
        avro_value_t val;
        const char *key = NULL;
        avro_value_get_by_index(&v, i, &val, &key);
        if (!key)
            key = "";
        if (advrec_event_set_str(anomaly->evidence[i].key,
                                 ADVREC_ANOMALY_KEY_MAX, key,
                                 strlen(key)) != ADVREC_OK)
            return advrec_codec__fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD,
                                      NULL, errstr, errstr_size,
                                      "Anomaly.evidence key \"%.40s...\" is "
                                      "longer than %d bytes",
                                      key, ADVREC_ANOMALY_KEY_MAX - 1);
        avro_value_get_long(&val, &anomaly->evidence[i].count);
    }
    anomaly->n_evidence = n;
    return ADVREC_OK;
}
