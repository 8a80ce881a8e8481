/*
 * codec.c - Confluent-framed Avro: the reader schemas, the registry of
 * writer schemas and the resolution of each writer against our reader.
 * Decoding is in codec_decode.c, encoding in codec_encode.c, the validator
 * in avro_check.c; codec_int.h is what they share.
 *
 * What this file owns (and frees with the codec):
 *  - the four reader schemas (Avro-C schema + jansson JSON, the JSON kept for
 *    field defaults, which Avro-C 1.11 parses but does not keep);
 *  - per registered writer schema (codec_entry_t): its JSON and Avro-C
 *    schema, a "projected" reader schema, the resolved writer from the
 *    writer to that projection, a reusable destination value, a reusable
 *    encode value, and a compiled form of the writer schema for the
 *    validator (avro_check.h);
 *  - one memory reader and one memory writer reused for every record.
 *
 * Why a projected reader schema: Avro-C 1.11's resolved writer refuses a
 * reader field that the writer lacks even when the reader gives it a
 * default ("Reader field x doesn't appear in writer"). So at register time
 * we drop such fields (after checking that they have a default) from a
 * copy of the reader schema, resolve the writer against that copy, and
 * codec_decode.c fills the dropped fields from the reader schema's JSON
 * defaults when it turns the decoded value into a struct.
 */
#include "codec.h"
#include "codec_int.h"

#include <avro.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAMESPACE "com.advrec.v1"

static const char *const kind_names[ADVREC_CODEC__KIND_COUNT] = {
    "click", "purchase", "recommendation", "anomaly"};
static const char *const kind_records[ADVREC_CODEC__KIND_COUNT] = {
    NAMESPACE ".Click", NAMESPACE ".Purchase", NAMESPACE ".Recommendation",
    NAMESPACE ".Anomaly"};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

const char *advrec_codec_kind_name(advrec_codec_kind_t kind)
{
    if ((unsigned)kind >= ADVREC_CODEC__KIND_COUNT)
        return "?";
    return kind_names[kind];
}

static int dir_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *advrec_codec_default_schema_dir(void)
{
    if (dir_exists(ADVREC_SOURCE_SCHEMA_DIR))
        return ADVREC_SOURCE_SCHEMA_DIR;
    return ADVREC_INSTALLED_SCHEMA_DIR;
}

advrec_err_t advrec_codec__fail(advrec_err_t err, advrec_dlq_reason_t reason,
                                advrec_dlq_reason_t *reason_out, char *errstr,
                                size_t errstr_size, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (reason_out)
        *reason_out = reason;
    return advrec_seterr(err, errstr, errstr_size, "%s: %s",
                         advrec_dlq_reason_name(reason), what);
}

/* Reads a whole file into a malloc'd, NUL-terminated buffer (caller frees). */
static advrec_err_t read_file(const char *path, char **out, size_t *out_len,
                              char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!fp)
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "schema: cannot open %s: %s", path,
                             strerror(errno));
    for (;;) {
        if (cap - len < 4096) {
            char *nbuf;
            if (cap > (size_t)16 << 20) {
                fclose(fp);
                free(buf);
                return advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                                     "schema: %s is larger than 16 MiB", path);
            }
            cap = cap ? cap * 2 : 8192;
            nbuf = realloc(buf, cap);
            if (!nbuf) {
                fclose(fp);
                free(buf);
                return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                     "schema: out of memory reading %s", path);
            }
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len - 1, fp);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(fp)) {
        fclose(fp);
        free(buf);
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "schema: cannot read %s", path);
    }
    fclose(fp);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return ADVREC_OK;
}

/* Full name "namespace.Name" of a named Avro-C schema into buf. */
static const char *full_name(avro_schema_t schema, char *buf, size_t size)
{
    const char *ns = avro_schema_namespace(schema);
    const char *name = avro_schema_type_name(schema);

    if (ns && *ns)
        snprintf(buf, size, "%s.%s", ns, name ? name : "");
    else
        snprintf(buf, size, "%s", name ? name : "");
    return buf;
}

static const char *short_name(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot ? dot + 1 : name;
}

const json_t *advrec_codec__json_field(const json_t *record, const char *name)
{
    const json_t *fields = json_object_get(record, "fields");
    size_t i;
    json_t *f;

    json_array_foreach(fields, i, f)
    {
        const char *fname = json_string_value(json_object_get(f, "name"));
        if (fname && strcmp(fname, name) == 0)
            return f;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Schema projection (see the top of the file)                         */

/* Collects every named type (record, enum, fixed) of a schema JSON by its
 * short name into `named` (borrowed references). */
static void collect_named(json_t *type, json_t *named)
{
    size_t i;
    json_t *t;

    if (json_is_array(type)) {
        json_array_foreach(type, i, t) collect_named(t, named);
        return;
    }
    if (!json_is_object(type))
        return;
    const char *name = json_string_value(json_object_get(type, "name"));
    const char *kind = json_string_value(json_object_get(type, "type"));
    if (name && kind &&
        (!strcmp(kind, "record") || !strcmp(kind, "enum") ||
         !strcmp(kind, "fixed") || !strcmp(kind, "error")))
        json_object_set(named, short_name(name), type);
    if (kind && (!strcmp(kind, "record") || !strcmp(kind, "error"))) {
        json_array_foreach(json_object_get(type, "fields"), i, t)
            collect_named(json_object_get(t, "type"), named);
    } else if (kind && !strcmp(kind, "array")) {
        collect_named(json_object_get(type, "items"), named);
    } else if (kind && !strcmp(kind, "map")) {
        collect_named(json_object_get(type, "values"), named);
    } else if (kind) {
        collect_named(json_object_get(type, "type"), named);
    }
}

static const json_t *deref(const json_t *type, const json_t *named)
{
    const char *s = json_string_value(type);
    const json_t *def;

    if (s && (def = json_object_get(named, short_name(s))) != NULL)
        return def;
    return type;
}

static const char *json_kind(const json_t *type)
{
    if (json_is_string(type))
        return json_string_value(type);
    if (json_is_object(type))
        return json_string_value(json_object_get(type, "type"));
    return json_is_array(type) ? "union" : "";
}

/* The writer type (or union branch) that is a named `kind` called `name`. */
static const json_t *find_named(const json_t *wtype, const json_t *wnamed,
                                const char *kind, const char *name)
{
    size_t i;
    const json_t *t;

    if (json_is_array(wtype)) {
        json_array_foreach(wtype, i, t)
        {
            const json_t *hit = find_named(t, wnamed, kind, name);
            if (hit)
                return hit;
        }
        return NULL;
    }
    wtype = deref(wtype, wnamed);
    if (!json_is_object(wtype) || strcmp(json_kind(wtype), kind) != 0)
        return NULL;
    const char *wname = json_string_value(json_object_get(wtype, "name"));
    if (!wname || strcmp(short_name(wname), short_name(name)) != 0)
        return NULL;
    return wtype;
}

/*
 * Returns a new JSON type: the reader type `rtype` with every record field
 * the writer type `wtype` lacks removed. Fails (NULL, errstr set) if such a
 * field has no default, or an enum's writer symbols are not a prefix of the
 * reader's (Avro-C maps enums by index). Everything else is left to
 * avro_resolved_writer_new().
 */
static json_t *project(const json_t *rtype, const json_t *wtype,
                       const json_t *wnamed, char *errstr, size_t errstr_size)
{
    const char *kind = json_kind(rtype);
    json_t *out, *t;
    size_t i;

    if (json_is_array(rtype)) {
        out = json_array();
        json_array_foreach(rtype, i, t)
        {
            json_t *p = project(t, wtype, wnamed, errstr, errstr_size);
            if (!p) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, p);
        }
        return out;
    }
    if (!json_is_object(rtype))
        return json_deep_copy(rtype);

    if (!strcmp(kind, "record")) {
        const char *name = json_string_value(json_object_get(rtype, "name"));
        const json_t *w = find_named(wtype, wnamed, "record", name ? name : "");
        json_t *fields;
        if (!w)
            return json_deep_copy(rtype);
        out = json_deep_copy(rtype);
        fields = json_array();
        json_object_set_new(out, "fields", fields);
        json_array_foreach(json_object_get(rtype, "fields"), i, t)
        {
            const char *fname = json_string_value(json_object_get(t, "name"));
            const json_t *wf = advrec_codec__json_field(w, fname ? fname : "");
            json_t *nf, *p;
            if (!wf) {
                if (!json_object_get(t, "default")) {
                    json_decref(out);
                    advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                                  "incompatible: field %s.%s is not in the "
                                  "writer schema and has no default",
                                  short_name(name), fname ? fname : "?");
                    return NULL;
                }
                continue; /* filled from the default when extracted */
            }
            p = project(json_object_get(t, "type"), json_object_get(wf, "type"),
                        wnamed, errstr, errstr_size);
            if (!p) {
                json_decref(out);
                return NULL;
            }
            nf = json_deep_copy(t);
            json_object_set_new(nf, "type", p);
            json_array_append_new(fields, nf);
        }
        return out;
    }
    if (!strcmp(kind, "enum")) {
        const char *name = json_string_value(json_object_get(rtype, "name"));
        const json_t *w = find_named(wtype, wnamed, "enum", name ? name : "");
        if (w) {
            const json_t *rs = json_object_get(rtype, "symbols");
            const json_t *ws = json_object_get(w, "symbols");
            json_array_foreach(ws, i, t)
            {
                const char *rsym = json_string_value(json_array_get(rs, i));
                if (!rsym || !json_string_value(t) ||
                    strcmp(rsym, json_string_value(t)) != 0) {
                    advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                                  "incompatible: enum %s symbol %zu is %s in "
                                  "the writer, %s in the reader (symbols "
                                  "may only be appended)",
                                  short_name(name), i,
                                  json_string_value(t) ? json_string_value(t)
                                                       : "?",
                                  rsym ? rsym : "(none)");
                    return NULL;
                }
            }
        }
        return json_deep_copy(rtype);
    }
    if (!strcmp(kind, "array") || !strcmp(kind, "map")) {
        const char *sub = !strcmp(kind, "array") ? "items" : "values";
        const json_t *w = deref(wtype, wnamed);
        json_t *p;
        if (!json_is_object(w) || strcmp(json_kind(w), kind) != 0)
            return json_deep_copy(rtype);
        p = project(json_object_get(rtype, sub), json_object_get(w, sub),
                    wnamed, errstr, errstr_size);
        if (!p)
            return NULL;
        out = json_deep_copy(rtype);
        json_object_set_new(out, sub, p);
        return out;
    }
    return json_deep_copy(rtype);
}

/* ------------------------------------------------------------------ */
/* Codec and registry                                                  */

static void entry_free(codec_entry_t *e)
{
    if (!e)
        return;
    if (e->have_dest) {
        avro_value_decref(&e->resolved);
        avro_value_decref(&e->dest);
    }
    if (e->have_enc)
        avro_value_decref(&e->enc);
    for (size_t i = 0; i < e->n_defaults; i++)
        free(e->defaults[i].field);
    free(e->defaults);
    if (e->rw_iface)
        avro_value_iface_decref(e->rw_iface);
    if (e->dest_iface)
        avro_value_iface_decref(e->dest_iface);
    if (e->enc_iface)
        avro_value_iface_decref(e->enc_iface);
    if (e->pschema)
        avro_schema_decref(e->pschema);
    if (e->wschema)
        avro_schema_decref(e->wschema);
    json_decref(e->wnamed);
    json_decref(e->wjson);
    advrec_avro_check_destroy(e->check);
    free(e);
}

void advrec_codec_destroy(advrec_codec_t *codec)
{
    if (!codec)
        return;
    for (size_t i = 0; i < codec->n_entries; i++)
        entry_free(codec->entries[i]);
    free(codec->entries);
    for (int k = 0; k < ADVREC_CODEC__KIND_COUNT; k++) {
        if (codec->rschema[k])
            avro_schema_decref(codec->rschema[k]);
        json_decref(codec->rjson[k]);
    }
    if (codec->reader)
        avro_reader_free(codec->reader);
    if (codec->writer)
        avro_writer_free(codec->writer);
    free(codec);
}

/* The record type JSON inside the first union branch that is a record. */
static const json_t *union_record(const json_t *type)
{
    size_t i;
    const json_t *t;

    if (json_is_object(type))
        return type;
    json_array_foreach(type, i,
                       t) if (json_is_object(t) &&
                              !strcmp(json_kind(t), "record")) return t;
    return NULL;
}

char *advrec_codec_reader_json(const advrec_codec_t *codec,
                               advrec_codec_kind_t kind)
{
    if ((unsigned)kind >= ADVREC_CODEC__KIND_COUNT)
        return NULL;
    return json_dumps(codec->rjson[kind], JSON_COMPACT | JSON_PRESERVE_ORDER);
}

advrec_codec_t *advrec_codec_new(const char *schema_dir, char *errstr,
                                 size_t errstr_size)
{
    static const char *const files[ADVREC_CODEC__KIND_COUNT] = {
        "click.avsc", "purchase.avsc", "recommendation.avsc", "anomaly.avsc"};
    advrec_codec_t *codec = calloc(1, sizeof(*codec));
    char path[4096], name[256];
    char *text = NULL;
    size_t len;

    if (!codec) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "codec: out of memory");
        return NULL;
    }
    if (!schema_dir)
        schema_dir = advrec_codec_default_schema_dir();
    for (int k = 0; k < ADVREC_CODEC__KIND_COUNT; k++) {
        json_error_t jerr;
        snprintf(path, sizeof(path), "%s/%s", schema_dir, files[k]);
        if (read_file(path, &text, &len, errstr, errstr_size) != ADVREC_OK)
            goto fail;
        codec->rjson[k] = json_loadb(text, len, 0, &jerr);
        if (!codec->rjson[k]) {
            advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                          "schema: %s:%d: %s", path, jerr.line, jerr.text);
            goto fail;
        }
        if (avro_schema_from_json_length(text, len, &codec->rschema[k])) {
            codec->rschema[k] = NULL;
            advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                          "schema: %s: %s", path, avro_strerror());
            goto fail;
        }
        free(text);
        text = NULL;
        if (!is_avro_record(codec->rschema[k]) ||
            strcmp(full_name(codec->rschema[k], name, sizeof(name)),
                   kind_records[k]) != 0) {
            advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                          "schema: %s is not the record %s", path,
                          kind_records[k]);
            goto fail;
        }
    }
    codec->click_ctx = union_record(json_object_get(
        advrec_codec__json_field(codec->rjson[ADVREC_CODEC_CLICK], "context"),
        "type"));
    codec->scored = json_object_get(
        json_object_get(advrec_codec__json_field(
                            codec->rjson[ADVREC_CODEC_RECOMMENDATION], "items"),
                        "type"),
        "items");
    if (!codec->click_ctx || !json_is_object(codec->scored)) {
        advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                      "schema: %s: Click.context or Recommendation.items is "
                      "not an inline record",
                      schema_dir);
        goto fail;
    }
    codec->reader = avro_reader_memory("", 0);
    codec->writer = avro_writer_memory("", 0);
    if (!codec->reader || !codec->writer) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "codec: out of memory");
        goto fail;
    }
    return codec;

fail:
    free(text);
    advrec_codec_destroy(codec);
    return NULL;
}

codec_entry_t *advrec_codec__lookup(const advrec_codec_t *codec, int32_t id)
{
    for (size_t i = 0; i < codec->n_entries; i++)
        if (codec->entries[i]->id == id)
            return codec->entries[i];
    return NULL;
}

advrec_err_t advrec_codec_register_json(advrec_codec_t *codec, int32_t id,
                                        const char *json, size_t len,
                                        const char *origin, char *errstr,
                                        size_t errstr_size)
{
    codec_entry_t *e = NULL, **nentries;
    json_t *pjson = NULL;
    json_error_t jerr;
    char name[256];
    char *ptext = NULL;
    advrec_err_t err = ADVREC_ERR_SCHEMA;
    int k;

    if (!origin)
        origin = "(inline)";
    if (id < 0)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "schema: id %d of %s is negative", id, origin);
    if (advrec_codec__lookup(codec, id))
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "schema: id %d (%s) is already registered", id,
                             origin);
    if (!(e = calloc(1, sizeof(*e)))) {
        err = ADVREC_ERR_NOMEM;
        goto nomem;
    }
    e->id = id;
    snprintf(e->origin, sizeof(e->origin), "%s", origin);

    if (!(e->wjson = json_loadb(json, len, 0, &jerr))) {
        advrec_seterr(err, errstr, errstr_size, "schema: %s:%d: %s", origin,
                      jerr.line, jerr.text);
        goto fail;
    }
    if (avro_schema_from_json_length(json, len, &e->wschema)) {
        e->wschema = NULL;
        advrec_seterr(err, errstr, errstr_size, "schema: %s: %s", origin,
                      avro_strerror());
        goto fail;
    }
    if (!is_avro_record(e->wschema)) {
        advrec_seterr(err, errstr, errstr_size,
                      "schema: %s is not a record schema", origin);
        goto fail;
    }
    full_name(e->wschema, name, sizeof(name));
    for (k = 0; k < ADVREC_CODEC__KIND_COUNT; k++)
        if (!strcmp(name, kind_records[k]))
            break;
    if (k == ADVREC_CODEC__KIND_COUNT) {
        advrec_seterr(err, errstr, errstr_size,
                      "schema: %s is the record %s, not one of %s.Click, "
                      "Purchase, Recommendation, Anomaly",
                      origin, name, NAMESPACE);
        goto fail;
    }
    e->kind = (advrec_codec_kind_t)k;
    e->is_current = avro_schema_equal(e->wschema, codec->rschema[k]);

    if (!(e->wnamed = json_object()))
        goto nomem;
    collect_named(e->wjson, e->wnamed);
    pjson = project(codec->rjson[k], e->wjson, e->wnamed, errstr, errstr_size);
    if (!pjson) {
        size_t n = strlen(errstr ? errstr : "");
        if (errstr && n + 1 < errstr_size)
            snprintf(errstr + n, errstr_size - n, " (schema %d, %s)", id,
                     origin);
        goto fail;
    }
    if (!(ptext = json_dumps(pjson, JSON_COMPACT)))
        goto nomem;
    if (avro_schema_from_json_length(ptext, strlen(ptext), &e->pschema)) {
        e->pschema = NULL;
        advrec_seterr(err, errstr, errstr_size,
                      "incompatible: schema %d (%s) against our %s schema: %s",
                      id, origin, advrec_codec_kind_name(k), avro_strerror());
        goto fail;
    }
    if (!(e->rw_iface = avro_resolved_writer_new(e->wschema, e->pschema))) {
        advrec_seterr(err, errstr, errstr_size,
                      "incompatible: schema %d (%s) does not resolve to our "
                      "%s schema: %s",
                      id, origin, advrec_codec_kind_name(k), avro_strerror());
        goto fail;
    }
    if (!(e->dest_iface = avro_generic_class_from_schema(e->pschema)) ||
        !(e->enc_iface = avro_generic_class_from_schema(e->wschema)))
        goto nomem;
    if (avro_generic_value_new(e->dest_iface, &e->dest))
        goto nomem;
    if (avro_resolved_writer_new_value(e->rw_iface, &e->resolved)) {
        avro_value_decref(&e->dest);
        goto nomem;
    }
    e->have_dest = 1;
    avro_resolved_writer_set_dest(&e->resolved, &e->dest);
    if (avro_generic_value_new(e->enc_iface, &e->enc))
        goto nomem;
    e->have_enc = 1;

    e->check = advrec_avro_check_new(e->wschema, errstr, errstr_size);
    if (!e->check) {
        err = ADVREC_ERR_NOMEM;
        goto fail;
    }

    nentries = realloc(codec->entries,
                       (codec->n_entries + 1) * sizeof(*codec->entries));
    if (!nentries)
        goto nomem;
    codec->entries = nentries;
    codec->entries[codec->n_entries++] = e;
    json_decref(pjson);
    free(ptext);
    return ADVREC_OK;

nomem:
    err = ADVREC_ERR_NOMEM;
    advrec_seterr(err, errstr, errstr_size,
                  "schema: out of memory registering schema %d (%s): %s", id,
                  origin, avro_strerror());
fail:
    json_decref(pjson);
    free(ptext);
    entry_free(e);
    return err;
}

advrec_err_t advrec_codec_register(advrec_codec_t *codec, int32_t id,
                                   const char *path, char *errstr,
                                   size_t errstr_size)
{
    char *text;
    size_t len;
    advrec_err_t err = read_file(path, &text, &len, errstr, errstr_size);

    if (err)
        return err;
    err = advrec_codec_register_json(codec, id, text, len, path, errstr,
                                     errstr_size);
    free(text);
    return err;
}

advrec_err_t advrec_codec_schema_kind(const advrec_codec_t *codec, int32_t id,
                                      advrec_codec_kind_t *kind)
{
    const codec_entry_t *e = advrec_codec__lookup(codec, id);

    if (!e)
        return ADVREC_ERR_NOT_FOUND;
    *kind = e->kind;
    return ADVREC_OK;
}

advrec_err_t advrec_codec_current_id(const advrec_codec_t *codec,
                                     advrec_codec_kind_t kind, int32_t *id)
{
    int32_t best = -1;

    for (size_t i = 0; i < codec->n_entries; i++) {
        const codec_entry_t *e = codec->entries[i];
        if (e->kind == kind && e->is_current && e->id > best)
            best = e->id;
    }
    if (best < 0)
        return ADVREC_ERR_NOT_FOUND;
    *id = best;
    return ADVREC_OK;
}
