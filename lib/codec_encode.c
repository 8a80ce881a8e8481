/*
 * codec_encode.c - the codec's encoders (codec.h): fill the entry's
 * reusable value for the writer schema (writer defaults first, then our
 * fields by name, through unions), write it with the codec's memory writer
 * after the frame header. Owns no memory: the caller's buffer receives the
 * bytes.
 */
#include "codec_int.h"

#include <stdlib.h>
#include <string.h>

/* Sets a value from a JSON default (Avro spec: a union's default is for
 * its first branch; bytes/fixed defaults are strings). */
static int set_json(avro_value_t *v, const json_t *d)
{
    avro_value_t child;
    avro_schema_t schema = avro_value_get_schema(v);
    size_t i;
    const char *key;
    json_t *item;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return avro_value_set_null(v);
    case AVRO_BOOLEAN:
        return avro_value_set_boolean(v, json_is_true(d));
    case AVRO_INT32:
        return avro_value_set_int(v, (int32_t)json_integer_value(d));
    case AVRO_INT64:
        return avro_value_set_long(v, (int64_t)json_integer_value(d));
    case AVRO_FLOAT:
        return avro_value_set_float(v, (float)json_number_value(d));
    case AVRO_DOUBLE:
        return avro_value_set_double(v, json_number_value(d));
    case AVRO_STRING:
        if (!json_is_string(d))
            return EINVAL;
        return avro_value_set_string_len(v, json_string_value(d),
                                         json_string_length(d) + 1);
    case AVRO_BYTES:
        if (!json_is_string(d))
            return EINVAL;
        return avro_value_set_bytes(v, (void *)json_string_value(d),
                                    json_string_length(d));
    case AVRO_FIXED:
        if (!json_is_string(d))
            return EINVAL;
        return avro_value_set_fixed(v, (void *)json_string_value(d),
                                    json_string_length(d));
    case AVRO_ENUM: {
        int sym =
            json_is_string(d)
                ? avro_schema_enum_get_by_name(schema, json_string_value(d))
                : -1;
        return sym < 0 ? EINVAL : avro_value_set_enum(v, sym);
    }
    case AVRO_UNION:
        if (avro_value_set_branch(v, 0, &child))
            return EINVAL;
        return set_json(&child, d);
    case AVRO_RECORD:
        json_object_foreach((json_t *)d, key, item)
        {
            if (avro_value_get_by_name(v, key, &child, NULL) ||
                set_json(&child, item))
                return EINVAL;
        }
        return 0;
    case AVRO_ARRAY:
        json_array_foreach(d, i, item)
        {
            if (avro_value_append(v, &child, NULL) || set_json(&child, item))
                return EINVAL;
        }
        return 0;
    case AVRO_MAP:
        json_object_foreach((json_t *)d, key, item)
        {
            if (avro_value_add(v, key, &child, NULL, NULL) ||
                set_json(&child, item))
                return EINVAL;
        }
        return 0;
    default:
        return EINVAL;
    }
}

typedef struct ectx_s {
    codec_entry_t *e;
    char *errstr;
    size_t errstr_size;
} ectx_t;

static advrec_err_t enc_fail(ectx_t *x, const char *what, const char *name)
{
    return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                         "encode: %s %s into schema id %d (%s): %s", what, name,
                         x->e->id, x->e->origin, avro_strerror());
}

/*
 * The writer defaults of record type `schema` (the entry's cache, filled
 * at the first encode of the type: its JSON is walked once, not for every
 * record). NULL on no memory, with errstr set.
 */
static const codec_defaults_t *defaults_of(ectx_t *x, avro_schema_t schema)
{
    codec_entry_t *e = x->e;
    const json_t *rjson;
    codec_defaults_t *all, *cd;
    size_t n;

    for (size_t i = 0; i < e->n_defaults; i++)
        if (e->defaults[i].schema == schema)
            return &e->defaults[i];
    all = realloc(e->defaults, (e->n_defaults + 1) * sizeof(*all));
    if (!all)
        goto nomem;
    e->defaults = all;
    cd = &all[e->n_defaults];
    rjson = json_object_get(e->wnamed, avro_schema_type_name(schema));
    n = avro_schema_record_size(schema);
    cd->schema = schema;
    cd->n = 0;
    if (!(cd->field = malloc((n ? n : 1) * sizeof(*cd->field))))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *fname = avro_schema_record_field_name(schema, (int)i);
        const json_t *d =
            json_object_get(advrec_codec__json_field(rjson, fname), "default");
        if (!d)
            continue;
        cd->field[cd->n].index = (int)i;
        cd->field[cd->n++].json = d;
    }
    e->n_defaults++;
    return cd;
nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, x->errstr, x->errstr_size,
                  "encode: out of memory for the defaults of schema id %d",
                  e->id);
    return NULL;
}

/* Gives every field of the record value `rec` its writer default (fields
 * without one are set by the caller, or the write fails and says so). */
static advrec_err_t fill_defaults(ectx_t *x, avro_value_t *rec)
{
    avro_schema_t schema = avro_value_get_schema(rec);
    const codec_defaults_t *cd = defaults_of(x, schema);

    if (!cd)
        return ADVREC_ERR_NOMEM;
    for (size_t i = 0; i < cd->n; i++) {
        avro_value_t f;
        if (avro_value_get_by_index(rec, (size_t)cd->field[i].index, &f,
                                    NULL) ||
            set_json(&f, cd->field[i].json))
            return enc_fail(
                x, "default of field",
                avro_schema_record_field_name(schema, cd->field[i].index));
    }
    return ADVREC_OK;
}

/* The field `name` of rec, through a union: branch of type `want` (or its
 * null branch when `is_null`). Returns 0 if the writer has no such field,
 * 1 with *out set, -1 on error (errstr set). */
static int efield(ectx_t *x, avro_value_t *rec, const char *name,
                  avro_type_t want, int is_null, avro_value_t *out)
{
    avro_value_t f;

    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        return 0;
    if (avro_value_get_type(&f) == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(&f);
        size_t n = avro_schema_union_size(us);
        avro_type_t t = is_null ? AVRO_NULL : want;
        for (size_t i = 0; i < n; i++) {
            avro_type_t bt = avro_typeof(avro_schema_union_branch(us, (int)i));
            /* numeric promotion: an int value may go to a long branch */
            if (bt == t || (t == AVRO_INT32 && bt == AVRO_INT64) ||
                (t == AVRO_FLOAT && bt == AVRO_DOUBLE)) {
                if (avro_value_set_branch(&f, (int)i, out)) {
                    enc_fail(x, "union branch of", name);
                    return -1;
                }
                return 1;
            }
        }
        advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                      "encode: field %s of schema id %d (%s) has no %s "
                      "branch",
                      name, x->e->id, x->e->origin,
                      is_null ? "null" : "matching");
        return -1;
    }
    *out = f;
    return 1;
}

/* Absent (NULL) values go to a null branch, or "" for a plain string. */
static advrec_err_t put_str(ectx_t *x, avro_value_t *rec, const char *name,
                            const char *s)
{
    avro_value_t f;
    int r = efield(x, rec, name, AVRO_STRING, s == NULL, &f);

    if (r <= 0)
        return r ? ADVREC_ERR_ENCODE : ADVREC_OK;
    if (avro_value_get_type(&f) == AVRO_NULL)
        return avro_value_set_null(&f) ? enc_fail(x, "null", name) : ADVREC_OK;
    if (!s)
        s = "";
    if (avro_value_set_string(&f, s))
        return enc_fail(x, "string", name);
    return ADVREC_OK;
}

static advrec_err_t put_num(ectx_t *x, avro_value_t *rec, const char *name,
                            int is_null, int64_t i, double d, int is_float)
{
    avro_value_t f;
    int r =
        efield(x, rec, name, is_float ? AVRO_FLOAT : AVRO_INT32, is_null, &f);
    int rc = 0;

    if (r <= 0)
        return r ? ADVREC_ERR_ENCODE : ADVREC_OK;
    switch (avro_value_get_type(&f)) {
    case AVRO_NULL:
        rc = avro_value_set_null(&f);
        break;
    case AVRO_INT32:
        if (is_float || i < INT32_MIN || i > INT32_MAX)
            return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                                 "encode: %s does not fit the int field of "
                                 "schema id %d",
                                 name, x->e->id);
        rc = avro_value_set_int(&f, (int32_t)i);
        break;
    case AVRO_INT64:
        if (is_float)
            return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                                 "encode: %s is fractional, the field of "
                                 "schema id %d is a long",
                                 name, x->e->id);
        rc = avro_value_set_long(&f, i);
        break;
    case AVRO_FLOAT:
        rc = avro_value_set_float(&f, is_float ? (float)d : (float)i);
        break;
    case AVRO_DOUBLE:
        rc = avro_value_set_double(&f, is_float ? d : (double)i);
        break;
    default:
        return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                             "encode: field %s of schema id %d is not "
                             "numeric",
                             name, x->e->id);
    }
    return rc ? enc_fail(x, "number", name) : ADVREC_OK;
}

#define PUT_LONG(x, rec, name, v)   put_num(x, rec, name, 0, (v), 0.0, 0)
#define PUT_DOUBLE(x, rec, name, v) put_num(x, rec, name, 0, 0, (v), 1)

static advrec_err_t enc_begin(advrec_codec_t *codec, int32_t schema_id,
                              advrec_codec_kind_t kind, unsigned also,
                              ectx_t *x, char *errstr, size_t errstr_size)
{
    codec_entry_t *e = advrec_codec__lookup(codec, schema_id);

    x->e = e;
    x->errstr = errstr;
    x->errstr_size = errstr_size;
    if (!e)
        return advrec_codec__fail(
            ADVREC_ERR_NOT_FOUND, ADVREC_DLQ_UNKNOWN_SCHEMA, NULL, errstr,
            errstr_size, "schema id %d is not registered", schema_id);
    if (e->kind != kind && !(also & (1u << e->kind)))
        return advrec_codec__fail(
            ADVREC_ERR_ENCODE, ADVREC_DLQ_WRONG_KIND, NULL, errstr, errstr_size,
            "schema id %d is a %s schema, not %s", schema_id,
            advrec_codec_kind_name(e->kind), advrec_codec_kind_name(kind));
    avro_value_reset(&e->enc);
    return fill_defaults(x, &e->enc);
}

static advrec_err_t enc_finish(advrec_codec_t *codec, ectx_t *x, void *buf,
                               size_t buf_size, size_t *out_len)
{
    avro_value_t *v = &x->e->enc;
    size_t size;
    uint8_t *b = buf;
    uint32_t id = (uint32_t)x->e->id;

    if (avro_value_sizeof(v, &size))
        return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                             "encode: record does not fit schema id %d (%s): "
                             "%s",
                             x->e->id, x->e->origin, avro_strerror());
    *out_len = size + ADVREC_CODEC_HEADER_SIZE;
    if (*out_len > buf_size)
        return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                             "buffer-small: the record needs %zu bytes, the "
                             "buffer has %zu",
                             *out_len, buf_size);
    b[0] = ADVREC_CODEC_MAGIC;
    b[1] = (uint8_t)(id >> 24);
    b[2] = (uint8_t)(id >> 16);
    b[3] = (uint8_t)(id >> 8);
    b[4] = (uint8_t)id;
    avro_writer_memory_set_dest(codec->writer,
                                (const char *)b + ADVREC_CODEC_HEADER_SIZE,
                                (int64_t)size);
    if (avro_value_write(codec->writer, v))
        return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                             "encode: Avro-C cannot write schema id %d: %s",
                             x->e->id, avro_strerror());
    return ADVREC_OK;
}

advrec_err_t advrec_codec_encode_event(advrec_codec_t *codec, int32_t schema_id,
                                       const advrec_event_t *ev, void *buf,
                                       size_t buf_size, size_t *out_len,
                                       char *errstr, size_t errstr_size)
{
    advrec_codec_kind_t kind = ev->type == ADVREC_EVENT_PURCHASE
                                   ? ADVREC_CODEC_PURCHASE
                                   : ADVREC_CODEC_CLICK;
    ectx_t x;
    avro_value_t *rec;
    advrec_err_t err;

    *out_len = 0;
    if ((err = enc_begin(codec, schema_id, kind, 0, &x, errstr, errstr_size)))
        return err;
    rec = &x.e->enc;
    if ((err = put_str(&x, rec, "user_id", ev->user_id)) ||
        (err = put_str(&x, rec, "item_id", ev->item_id)) ||
        (err = PUT_LONG(&x, rec, "ts", ev->ts_ms)))
        return err;
    if (kind == ADVREC_CODEC_CLICK) {
        avro_value_t ctx;
        int has_ctx = ev->page[0] || ev->position >= 0;
        int r;
        if ((err = put_str(&x, rec, "session_id",
                           ev->session_id[0] ? ev->session_id : NULL)))
            return err;
        r = efield(&x, rec, "context", AVRO_RECORD, !has_ctx, &ctx);
        if (r < 0)
            return ADVREC_ERR_ENCODE;
        if (r > 0 && avro_value_get_type(&ctx) == AVRO_NULL) {
            avro_value_set_null(&ctx);
        } else if (r > 0) {
            if ((err = fill_defaults(&x, &ctx)) ||
                (err = put_str(&x, &ctx, "page",
                               ev->page[0] ? ev->page : NULL)) ||
                (err = put_num(&x, &ctx, "position", ev->position < 0,
                               ev->position, 0.0, 0)))
                return err;
        }
    } else {
        if ((err = PUT_LONG(&x, rec, "quantity", ev->quantity)) ||
            (err = PUT_DOUBLE(&x, rec, "price", ev->price)) ||
            (ev->currency[0] &&
             (err = put_str(&x, rec, "currency", ev->currency))) ||
            (err = put_str(&x, rec, "order_id",
                           ev->order_id[0] ? ev->order_id : NULL)))
            return err;
    }
    return enc_finish(codec, &x, buf, buf_size, out_len);
}

advrec_err_t
advrec_codec_encode_recommendation(advrec_codec_t *codec, int32_t schema_id,
                                   const advrec_recommendation_t *rec,
                                   void *buf, size_t buf_size, size_t *out_len,
                                   char *errstr, size_t errstr_size)
{
    ectx_t x;
    avro_value_t *v, items;
    advrec_err_t err;
    int r;

    *out_len = 0;
    if ((err = enc_begin(codec, schema_id, ADVREC_CODEC_RECOMMENDATION, 0, &x,
                         errstr, errstr_size)))
        return err;
    v = &x.e->enc;
    if ((err = put_str(&x, v, "user_id", rec->user_id)) ||
        (err = PUT_LONG(&x, v, "model_version", rec->model_version)) ||
        (err = put_str(&x, v, "input_topic", rec->input_topic)) ||
        (err = PUT_LONG(&x, v, "input_partition", rec->input_partition)) ||
        (err = PUT_LONG(&x, v, "input_offset", rec->input_offset)) ||
        (err = PUT_LONG(&x, v, "generated_at", rec->generated_at_ms)))
        return err;
    r = efield(&x, v, "items", AVRO_ARRAY, 0, &items);
    if (r < 0)
        return ADVREC_ERR_ENCODE;
    for (size_t i = 0; r > 0 && i < rec->n_items; i++) {
        avro_value_t item;
        if (avro_value_append(&items, &item, NULL))
            return enc_fail(&x, "item of", "items");
        if ((err = fill_defaults(&x, &item)) ||
            (err = put_str(&x, &item, "item_id", rec->items[i].item_id)) ||
            (err = PUT_DOUBLE(&x, &item, "score", rec->items[i].score)))
            return err;
    }
    return enc_finish(codec, &x, buf, buf_size, out_len);
}

static advrec_err_t put_enum(ectx_t *x, avro_value_t *rec, const char *name,
                             int sym)
{
    avro_value_t f;
    int r = efield(x, rec, name, AVRO_ENUM, 0, &f);

    if (r <= 0)
        return r ? ADVREC_ERR_ENCODE : ADVREC_OK;
    if (sym < 0 ||
        sym >= avro_schema_enum_number_of_symbols(avro_value_get_schema(&f)))
        return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                             "encode: %s value %d has no symbol in schema id "
                             "%d",
                             name, sym, x->e->id);
    return avro_value_set_enum(&f, sym) ? enc_fail(x, "enum", name) : ADVREC_OK;
}

advrec_err_t advrec_codec_encode_anomaly(advrec_codec_t *codec,
                                         int32_t schema_id,
                                         const advrec_anomaly_t *anomaly,
                                         void *buf, size_t buf_size,
                                         size_t *out_len, char *errstr,
                                         size_t errstr_size)
{
    ectx_t x;
    avro_value_t *v, f, child;
    advrec_err_t err;
    int r;

    *out_len = 0;
    if (anomaly->n_reasons > ADVREC_ANOMALY_MAX_REASONS ||
        anomaly->n_evidence > ADVREC_ANOMALY_MAX_EVIDENCE)
        return advrec_seterr(ADVREC_ERR_ENCODE, errstr, errstr_size,
                             "encode: anomaly with %zu reasons and %zu "
                             "evidence entries, at most %d and %d",
                             anomaly->n_reasons, anomaly->n_evidence,
                             ADVREC_ANOMALY_MAX_REASONS,
                             ADVREC_ANOMALY_MAX_EVIDENCE);
    if ((err = enc_begin(codec, schema_id, ADVREC_CODEC_ANOMALY, 0, &x, errstr,
                         errstr_size)))
        return err;
    v = &x.e->enc;
    if ((err = put_enum(&x, v, "entity_type", (int)anomaly->entity_type)) ||
        (err = put_str(&x, v, "entity_id", anomaly->entity_id)) ||
        (err = PUT_DOUBLE(&x, v, "score", anomaly->score)) ||
        (err = put_enum(&x, v, "action", (int)anomaly->action)) ||
        (err = PUT_LONG(&x, v, "ts", anomaly->ts_ms)) ||
        (err = put_str(&x, v, "detector", anomaly->detector)))
        return err;
    if ((r = efield(&x, v, "reasons", AVRO_ARRAY, 0, &f)) < 0)
        return ADVREC_ERR_ENCODE;
    for (size_t i = 0; r > 0 && i < anomaly->n_reasons; i++)
        if (avro_value_append(&f, &child, NULL) ||
            avro_value_set_string(&child, anomaly->reasons[i]))
            return enc_fail(&x, "entry of", "reasons");
    if ((r = efield(&x, v, "evidence", AVRO_MAP, 0, &f)) < 0)
        return ADVREC_ERR_ENCODE;
    for (size_t i = 0; r > 0 && i < anomaly->n_evidence; i++)
        if (avro_value_add(&f, anomaly->evidence[i].key, &child, NULL, NULL) ||
            avro_value_set_long(&child, anomaly->evidence[i].count))
            return enc_fail(&x, "entry of", "evidence");
    return enc_finish(codec, &x, buf, buf_size, out_len);
}
