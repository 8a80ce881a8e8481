/*
 * codec.c - Confluent-framed Avro: schemas, validation, resolution, values.
 *
 * What this module owns:
 *  - the four reader schemas (Avro-C schema + jansson JSON, the JSON kept for
 *    field defaults, which Avro-C 1.11 parses but does not keep);
 *  - per registered writer schema (struct entry): its JSON and Avro-C
 *    schema, a "projected" reader schema, the resolved writer from the
 *    writer to that projection, a reusable destination value, a reusable
 *    encode value, and a compiled form of the writer schema for the
 *    validator;
 *  - one memory reader and one memory writer reused for every record.
 *
 * Why a projected reader schema: Avro-C 1.11's resolved writer refuses a
 * reader field that the writer lacks even when the reader gives it a
 * default ("Reader field x doesn't appear in writer"). So at register time
 * we drop such fields (after checking that they have a default) from a
 * copy of the reader schema, resolve the writer against that copy, and
 * fill the dropped fields from the reader schema's JSON defaults when we
 * turn the decoded value into a struct.
 *
 * Why a validator of our own: Avro-C trusts lengths and counts it reads
 * (it mallocs whatever a string length says). walk() checks the whole body
 * against the writer schema with bounds-checked reads first; Avro-C only
 * sees bodies that are well-formed, so its allocations are bounded by the
 * message size.
 */
#include "codec.h"
#include "reason.h"

#include <avro.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAMESPACE "com.advrec.v1"
#define MAX_DEPTH 32 /* nesting of records, unions, arrays, maps */

static const char *const kind_names[ADVREC_CODEC__KIND_COUNT] = {
    "click", "purchase", "recommendation", "anomaly"};
static const char *const kind_records[ADVREC_CODEC__KIND_COUNT] = {
    NAMESPACE ".Click", NAMESPACE ".Purchase", NAMESPACE ".Recommendation",
    NAMESPACE ".Anomaly"};

/* A writer schema compiled for the validator: one node per schema node. */
typedef struct wnode_s {
    avro_type_t type;
    int32_t n;          /* fields, branches, symbols, fixed size */
    int32_t *kids;      /* field/branch node indices; array/map: kids[0] */
    const char **names; /* record field names (owned by the avro schema) */
} wnode_t;

typedef struct entry_s {
    int32_t id;
    advrec_codec_kind_t kind;
    int is_current; /* equal to our reader schema */
    char origin[128];
    json_t *wjson;  /* writer schema JSON */
    json_t *wnamed; /* short name -> named type JSON inside wjson */
    avro_schema_t wschema;
    avro_schema_t pschema; /* projected reader */
    avro_value_iface_t *rw_iface;
    avro_value_iface_t *dest_iface;
    avro_value_t dest;
    avro_value_t resolved;
    int have_dest;
    avro_value_iface_t *enc_iface;
    avro_value_t enc;
    int have_enc;
    wnode_t *nodes;
    int32_t n_nodes;
} entry_t;

struct advrec_codec_s {
    avro_schema_t rschema[ADVREC_CODEC__KIND_COUNT];
    json_t *rjson[ADVREC_CODEC__KIND_COUNT];
    const json_t *click_ctx; /* reader JSON of ClickContext, for defaults */
    const json_t *scored;    /* reader JSON of ScoredItem */
    avro_reader_t reader;
    avro_writer_t writer;
    entry_t **entries;
    size_t n_entries;
    entry_t *last; /* last looked-up entry: records come in runs */
};

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

/*
 * Fails with err: *reason_out (when not NULL) gets reason, and errstr
 * "<reason's name>: <details>", so the message names the same stable code
 * as the enum. Returns err.
 */
static advrec_err_t codec_fail(advrec_err_t err, advrec_dlq_reason_t reason,
                               advrec_dlq_reason_t *reason_out, char *errstr,
                               size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static advrec_err_t codec_fail(advrec_err_t err, advrec_dlq_reason_t reason,
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

/* The field object called `name` in a JSON record schema, or NULL. */
static const json_t *json_field(const json_t *record, const char *name)
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
            const json_t *wf = json_field(w, fname ? fname : "");
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
/* Validator: the writer schema compiled to nodes, and the walk        */

typedef struct compile_s {
    entry_t *e;
    avro_schema_t *seen; /* schema of node i, to share named types */
    int32_t cap;
} compile_t;

/* Adds the node for `schema` (and its children) to e->nodes; returns its
 * index, or -1 on out-of-memory / unsupported type (errstr set). */
static int32_t compile(compile_t *c, avro_schema_t schema, char *errstr,
                       size_t errstr_size)
{
    entry_t *e = c->e;
    int32_t idx, n = 0, i;
    wnode_t *node;

    if (is_avro_link(schema))
        schema = avro_schema_link_target(schema);
    for (i = 0; i < e->n_nodes; i++)
        if (c->seen[i] == schema && is_avro_named_type(schema))
            return i;
    if (e->n_nodes == c->cap) {
        int32_t ncap = c->cap ? c->cap * 2 : 16;
        wnode_t *nn = realloc(e->nodes, (size_t)ncap * sizeof(*nn));
        avro_schema_t *ns;
        if (!nn)
            goto nomem;
        e->nodes = nn;
        ns = realloc(c->seen, (size_t)ncap * sizeof(*ns));
        if (!ns)
            goto nomem;
        c->seen = ns;
        c->cap = ncap;
    }
    idx = e->n_nodes++;
    c->seen[idx] = schema;
    node = &e->nodes[idx];
    memset(node, 0, sizeof(*node));
    node->type = avro_typeof(schema);

    switch (node->type) {
    case AVRO_RECORD:
        n = (int32_t)avro_schema_record_size(schema);
        break;
    case AVRO_UNION:
        n = (int32_t)avro_schema_union_size(schema);
        break;
    case AVRO_ARRAY:
    case AVRO_MAP:
        n = 1;
        break;
    case AVRO_ENUM:
        node->n = avro_schema_enum_number_of_symbols(schema);
        return idx;
    case AVRO_FIXED:
        node->n = (int32_t)avro_schema_fixed_size(schema);
        return idx;
    default:
        return idx;
    }
    node->n = n;
    /* kids/names are filled after recursion: e->nodes may move. */
    int32_t *kids = calloc((size_t)(n ? n : 1), sizeof(*kids));
    const char **names = NULL;
    if (!kids)
        goto nomem;
    e->nodes[idx].kids = kids;
    if (node->type == AVRO_RECORD) {
        names = calloc((size_t)(n ? n : 1), sizeof(*names));
        if (!names)
            goto nomem;
        e->nodes[idx].names = names;
    }
    for (i = 0; i < n; i++) {
        avro_schema_t child;
        int32_t k;
        if (e->nodes[idx].type == AVRO_RECORD) {
            child = avro_schema_record_field_get_by_index(schema, i);
            names[i] = avro_schema_record_field_name(schema, i);
        } else if (e->nodes[idx].type == AVRO_UNION) {
            child = avro_schema_union_branch(schema, i);
        } else if (e->nodes[idx].type == AVRO_ARRAY) {
            child = avro_schema_array_items(schema);
        } else {
            child = avro_schema_map_values(schema);
        }
        k = compile(c, child, errstr, errstr_size);
        if (k < 0)
            return -1;
        kids[i] = k;
    }
    return idx;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "schema: out of memory compiling the validator");
    return -1;
}

typedef struct cursor_s {
    const uint8_t *base, *p, *end;
    const char *field;           /* innermost record field, for messages */
    advrec_dlq_reason_t *reason; /* may be NULL */
    char *errstr;
    size_t errstr_size;
} cursor_t;

static advrec_err_t walk_fail(cursor_t *c, advrec_dlq_reason_t reason,
                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static advrec_err_t walk_fail(cursor_t *c, advrec_dlq_reason_t reason,
                              const char *fmt, ...)
{
    char what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return codec_fail(ADVREC_ERR_DECODE, reason, c->reason, c->errstr,
                      c->errstr_size, "%s at body byte %zu (field %s)", what,
                      (size_t)(c->p - c->base), c->field ? c->field : "-");
}

/* Zig-zag varint of at most 10 bytes, as Avro writes ints and longs. */
static advrec_err_t read_long(cursor_t *c, int64_t *out, const char *what)
{
    uint64_t v = 0;
    int i;

    for (i = 0;; i++) {
        uint8_t b;
        if (c->p >= c->end)
            return walk_fail(c, ADVREC_DLQ_TRUNCATED,
                             "body ends inside the varint of %s", what);
        if (i == 10 || (i == 9 && (*c->p & 0xfe)))
            return walk_fail(c, ADVREC_DLQ_BAD_VARINT,
                             "varint of %s is longer than 64 bits", what);
        b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    return ADVREC_OK;
}

static advrec_err_t read_int(cursor_t *c, int32_t *out, const char *what)
{
    const uint8_t *start = c->p;
    int64_t v;
    advrec_err_t err = read_long(c, &v, what);

    if (err)
        return err;
    if (c->p - start > 5 || v < INT32_MIN || v > INT32_MAX) {
        c->p = start;
        return walk_fail(c, ADVREC_DLQ_BAD_VARINT,
                         "varint of %s does not fit in 32 bits", what);
    }
    *out = (int32_t)v;
    return ADVREC_OK;
}

static advrec_err_t skip_bytes(cursor_t *c, int64_t n, const char *what)
{
    if (n > c->end - c->p)
        return walk_fail(c, ADVREC_DLQ_TRUNCATED,
                         "%s needs %lld bytes, %zu remain", what, (long long)n,
                         (size_t)(c->end - c->p));
    c->p += n;
    return ADVREC_OK;
}

static advrec_err_t walk(const entry_t *e, int32_t idx, cursor_t *c, int depth)
{
    const wnode_t *node = &e->nodes[idx];
    advrec_err_t err = ADVREC_OK;
    int64_t len;
    int32_t i32;

    if (depth > MAX_DEPTH)
        return walk_fail(c, ADVREC_DLQ_TOO_DEEP, "values nested deeper than %d",
                         MAX_DEPTH);
    switch (node->type) {
    case AVRO_NULL:
        return ADVREC_OK;
    case AVRO_BOOLEAN:
        if (c->p >= c->end)
            return walk_fail(c, ADVREC_DLQ_TRUNCATED,
                             "body ends before a boolean");
        if (*c->p > 1)
            return walk_fail(c, ADVREC_DLQ_BAD_BOOLEAN,
                             "boolean byte is 0x%02x, not 0 or 1", *c->p);
        c->p++;
        return ADVREC_OK;
    case AVRO_INT32:
        return read_int(c, &i32, "an int");
    case AVRO_INT64:
        return read_long(c, &len, "a long");
    case AVRO_FLOAT:
        return skip_bytes(c, 4, "a float");
    case AVRO_DOUBLE:
        return skip_bytes(c, 8, "a double");
    case AVRO_FIXED:
        return skip_bytes(c, node->n, "a fixed");
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((err = read_long(c, &len, "a string length")) != ADVREC_OK)
            return err;
        if (len < 0 || len > c->end - c->p)
            return walk_fail(c, ADVREC_DLQ_BAD_LENGTH,
                             "%s length %lld but %zu bytes remain",
                             node->type == AVRO_STRING ? "string" : "bytes",
                             (long long)len, (size_t)(c->end - c->p));
        c->p += len;
        return ADVREC_OK;
    case AVRO_ENUM:
        if ((err = read_int(c, &i32, "an enum index")) != ADVREC_OK)
            return err;
        if (i32 < 0 || i32 >= node->n)
            return walk_fail(c, ADVREC_DLQ_BAD_ENUM,
                             "enum index %d, the schema has %d symbols", i32,
                             node->n);
        return ADVREC_OK;
    case AVRO_UNION:
        if ((err = read_long(c, &len, "a union branch")) != ADVREC_OK)
            return err;
        if (len < 0 || len >= node->n)
            return walk_fail(c, ADVREC_DLQ_BAD_UNION,
                             "union branch %lld, the schema has %d branches",
                             (long long)len, node->n);
        return walk(e, node->kids[len], c, depth + 1);
    case AVRO_RECORD: {
        const char *outer = c->field;
        for (int32_t i = 0; i < node->n && !err; i++) {
            c->field = node->names[i];
            err = walk(e, node->kids[i], c, depth + 1);
        }
        if (!err)
            c->field = outer;
        return err;
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            int64_t count, size;
            if ((err = read_long(c, &count, "a block count")) != ADVREC_OK)
                return err;
            if (count == 0)
                return ADVREC_OK;
            if (count < 0) {
                if (count == INT64_MIN)
                    return walk_fail(c, ADVREC_DLQ_BAD_COUNT,
                                     "block count %lld", (long long)count);
                count = -count;
                if ((err = read_long(c, &size, "a block size")) != ADVREC_OK)
                    return err;
                if (size < 0 || size > c->end - c->p)
                    return walk_fail(c, ADVREC_DLQ_BAD_COUNT,
                                     "block of %lld bytes but %zu remain",
                                     (long long)size, (size_t)(c->end - c->p));
            }
            /* Every item but a null takes a byte at least; a block cannot
             * claim more items than bytes remain, which also bounds what
             * Avro-C allocates for the block. */
            if (count > c->end - c->p)
                return walk_fail(c, ADVREC_DLQ_BAD_COUNT,
                                 "%s block of %lld items but %zu bytes remain",
                                 node->type == AVRO_ARRAY ? "array" : "map",
                                 (long long)count, (size_t)(c->end - c->p));
            for (int64_t k = 0; k < count; k++) {
                if (node->type == AVRO_MAP) {
                    if ((err = read_long(c, &len, "a map key length")) !=
                        ADVREC_OK)
                        return err;
                    if (len < 0 || len > c->end - c->p)
                        return walk_fail(c, ADVREC_DLQ_BAD_LENGTH,
                                         "map key length %lld but %zu bytes "
                                         "remain",
                                         (long long)len,
                                         (size_t)(c->end - c->p));
                    c->p += len;
                }
                if ((err = walk(e, node->kids[0], c, depth + 1)) != ADVREC_OK)
                    return err;
            }
        }
    default:
        return walk_fail(c, ADVREC_DLQ_AVRO, "unsupported schema type %d",
                         (int)node->type);
    }
}

/* ------------------------------------------------------------------ */
/* Codec and registry                                                  */

static void entry_free(entry_t *e)
{
    if (!e)
        return;
    if (e->have_dest) {
        avro_value_decref(&e->resolved);
        avro_value_decref(&e->dest);
    }
    if (e->have_enc)
        avro_value_decref(&e->enc);
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
    for (int32_t i = 0; i < e->n_nodes; i++) {
        free(e->nodes[i].kids);
        free(e->nodes[i].names);
    }
    free(e->nodes);
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
        json_field(codec->rjson[ADVREC_CODEC_CLICK], "context"), "type"));
    codec->scored = json_object_get(
        json_object_get(
            json_field(codec->rjson[ADVREC_CODEC_RECOMMENDATION], "items"),
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

static entry_t *lookup(const advrec_codec_t *codec, int32_t id)
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
    entry_t *e = NULL, **nentries;
    json_t *pjson = NULL;
    json_error_t jerr;
    char name[256];
    char *ptext = NULL;
    compile_t comp = {0};
    advrec_err_t err = ADVREC_ERR_SCHEMA;
    int k;

    if (!origin)
        origin = "(inline)";
    if (id < 0)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "schema: id %d of %s is negative", id, origin);
    if (lookup(codec, id))
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
                      id, origin, kind_names[k], avro_strerror());
        goto fail;
    }
    if (!(e->rw_iface = avro_resolved_writer_new(e->wschema, e->pschema))) {
        advrec_seterr(err, errstr, errstr_size,
                      "incompatible: schema %d (%s) does not resolve to our "
                      "%s schema: %s",
                      id, origin, kind_names[k], avro_strerror());
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

    comp.e = e;
    if (compile(&comp, e->wschema, errstr, errstr_size) < 0) {
        err = ADVREC_ERR_NOMEM;
        goto fail;
    }
    free(comp.seen);
    comp.seen = NULL;

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
    free(comp.seen);
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
    const entry_t *e = lookup(codec, id);

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
        const entry_t *e = codec->entries[i];
        if (e->kind == kind && e->is_current && e->id > best)
            best = e->id;
    }
    if (best < 0)
        return ADVREC_ERR_NOT_FOUND;
    *id = best;
    return ADVREC_OK;
}

/* advrec_codec_frame_id(), and the reason of a failure in *reason. */
static advrec_err_t frame_id(const void *buf, size_t len, int32_t *schema_id,
                             advrec_dlq_reason_t *reason, char *errstr,
                             size_t errstr_size)
{
    const uint8_t *b = buf;

    if (len < ADVREC_CODEC_HEADER_SIZE)
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_SHORT_FRAME, reason,
                          errstr, errstr_size,
                          "%zu bytes, a Confluent frame has at least %d", len,
                          ADVREC_CODEC_HEADER_SIZE);
    if (b[0] != ADVREC_CODEC_MAGIC)
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_MAGIC, reason,
                          errstr, errstr_size,
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
                                 size_t len, unsigned want, entry_t **out,
                                 advrec_dlq_reason_t *reason, char *errstr,
                                 size_t errstr_size)
{
    int32_t id = 0;
    entry_t *e;
    cursor_t c;
    advrec_err_t err;

    if ((err = frame_id(buf, len, &id, reason, errstr, errstr_size)))
        return err;
    e = codec->last && codec->last->id == id ? codec->last : lookup(codec, id);
    if (!e)
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_UNKNOWN_SCHEMA, reason,
                          errstr, errstr_size, "schema id %d is not registered",
                          id);
    codec->last = e;
    if (!(want & (1u << e->kind)))
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_WRONG_KIND, reason,
                          errstr, errstr_size,
                          "schema id %d is a %s record, not what this "
                          "decoder reads",
                          id, kind_names[e->kind]);
    c.base = c.p = (const uint8_t *)buf + ADVREC_CODEC_HEADER_SIZE;
    c.end = (const uint8_t *)buf + len;
    c.field = NULL;
    c.reason = reason;
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    if ((err = walk(e, 0, &c, 0)) != ADVREC_OK)
        return err;
    if (c.p != c.end)
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_TRAILING_BYTES, reason,
                          errstr, errstr_size,
                          "%zu bytes after the %s record (schema id %d)",
                          (size_t)(c.end - c.p), kind_names[e->kind], id);
    avro_value_reset(&e->dest);
    avro_reader_memory_set_source(codec->reader,
                                  (const char *)buf + ADVREC_CODEC_HEADER_SIZE,
                                  (int64_t)(len - ADVREC_CODEC_HEADER_SIZE));
    if (avro_value_read(codec->reader, &e->resolved))
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_AVRO, reason, errstr,
                          errstr_size, "Avro-C cannot read schema id %d: %s",
                          id, avro_strerror());
    *out = e;
    return ADVREC_OK;
}

/* ------------------------------------------------------------------ */
/* Extraction: decoded value (or reader default) -> struct fields      */

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
        *dflt = json_object_get(json_field(rjson, name), "default");
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
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, x->reason,
                          x->errstr, x->errstr_size,
                          "%s.%s is %zu bytes%s, at most %zu fit", x->rec, name,
                          n, memchr(s, '\0', n) ? " with a NUL byte" : "",
                          dst_size - 1);
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
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, x->reason,
                          x->errstr, x->errstr_size,
                          "%s.%s is %lld, outside 32 bits", x->rec, name,
                          (long long)v);
    *out = (int32_t)v;
    return ADVREC_OK;
}

advrec_err_t advrec_codec_decode_event(advrec_codec_t *codec, const void *buf,
                                       size_t len, advrec_event_t *ev,
                                       advrec_dlq_reason_t *reason,
                                       char *errstr, size_t errstr_size)
{
    entry_t *e;
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
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_INVALID_EVENT, reason,
                          errstr, errstr_size, "%s (schema id %d)", why, e->id);
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
    entry_t *e;
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
            err =
                codec_fail(ADVREC_ERR_NOMEM, ADVREC_DLQ_NO_MEMORY, NULL, errstr,
                           errstr_size, "%zu recommendation items", n);
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
    entry_t *e;
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
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL, errstr,
                          errstr_size,
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
            return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL,
                              errstr, errstr_size,
                              "Anomaly.reasons[%zu] is %zu bytes, at "
                              "most %d fit",
                              i, sl - 1, ADVREC_ANOMALY_REASON_MAX - 1);
    }
    anomaly->n_reasons = n;

    n = 0;
    if (xfield(&e->dest, rj, "evidence", &v, &dflt) && !dflt)
        avro_value_get_size(&v, &n);
    if (n > ADVREC_ANOMALY_MAX_EVIDENCE)
        return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL, errstr,
                          errstr_size,
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
            return codec_fail(ADVREC_ERR_DECODE, ADVREC_DLQ_BAD_FIELD, NULL,
                              errstr, errstr_size,
                              "Anomaly.evidence key \"%.40s...\" is "
                              "longer than %d bytes",
                              key, ADVREC_ANOMALY_KEY_MAX - 1);
        avro_value_get_long(&val, &anomaly->evidence[i].count);
    }
    anomaly->n_evidence = n;
    return ADVREC_OK;
}

/* ------------------------------------------------------------------ */
/* Encoding: struct -> writer-schema value -> framed bytes             */

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
    entry_t *e;
    char *errstr;
    size_t errstr_size;
} ectx_t;

static advrec_err_t enc_fail(ectx_t *x, const char *what, const char *name)
{
    return advrec_seterr(ADVREC_ERR_ENCODE, x->errstr, x->errstr_size,
                         "encode: %s %s into schema id %d (%s): %s", what, name,
                         x->e->id, x->e->origin, avro_strerror());
}

/* Gives every field of the record value `rec` its writer default (fields
 * without one are set by the caller, or the write fails and says so). */
static advrec_err_t fill_defaults(ectx_t *x, avro_value_t *rec)
{
    avro_schema_t schema = avro_value_get_schema(rec);
    const json_t *rjson =
        json_object_get(x->e->wnamed, avro_schema_type_name(schema));
    size_t n = avro_schema_record_size(schema);

    for (size_t i = 0; i < n; i++) {
        const char *fname = avro_schema_record_field_name(schema, (int)i);
        const json_t *d = json_object_get(json_field(rjson, fname), "default");
        avro_value_t f;
        if (!d)
            continue;
        if (avro_value_get_by_index(rec, i, &f, NULL) || set_json(&f, d))
            return enc_fail(x, "default of field", fname);
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
    entry_t *e = lookup(codec, schema_id);

    x->e = e;
    x->errstr = errstr;
    x->errstr_size = errstr_size;
    if (!e)
        return codec_fail(ADVREC_ERR_NOT_FOUND, ADVREC_DLQ_UNKNOWN_SCHEMA, NULL,
                          errstr, errstr_size, "schema id %d is not registered",
                          schema_id);
    if (e->kind != kind && !(also & (1u << e->kind)))
        return codec_fail(ADVREC_ERR_ENCODE, ADVREC_DLQ_WRONG_KIND, NULL,
                          errstr, errstr_size,
                          "schema id %d is a %s schema, not %s", schema_id,
                          kind_names[e->kind], kind_names[kind]);
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
