/*
 * avro_check.c - the bounds-checked validator of Avro binary bodies
 * (avro_check.h).
 *
 * Owns one compiled form of a writer schema: an array of nodes, one per
 * schema node (named types shared, so recursive schemas are finite), each
 * with its kind, its count (fields, branches, symbols, fixed size) and its
 * children's node indices. walk() reads the body against that array with
 * every read checked against the end of the buffer; it never allocates.
 */
#include "avro_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting of records, unions, arrays, maps */

/* A writer schema compiled for the validator: one node per schema node. */
typedef struct wnode_s {
    avro_type_t type;
    int32_t n;          /* fields, branches, symbols, fixed size */
    int32_t *kids;      /* field/branch node indices; array/map: kids[0] */
    const char **names; /* record field names (owned by the avro schema) */
} wnode_t;

struct advrec_avro_check_s {
    wnode_t *nodes; /* node 0 is the schema's root */
    int32_t n_nodes;
};

typedef struct compile_s {
    advrec_avro_check_t *e;
    avro_schema_t *seen; /* schema of node i, to share named types */
    int32_t cap;
} compile_t;

/* Adds the node for `schema` (and its children) to e->nodes; returns its
 * index, or -1 on out-of-memory / unsupported type (errstr set). */
static int32_t compile(compile_t *c, avro_schema_t schema, char *errstr,
                       size_t errstr_size)
{
    advrec_avro_check_t *e = c->e;
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
    if (c->reason)
        *c->reason = reason;
    return advrec_seterr(ADVREC_ERR_DECODE, c->errstr, c->errstr_size,
                         "%s: %s at body byte %zu (field %s)",
                         advrec_dlq_reason_name(reason), what,
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

static advrec_err_t walk(const advrec_avro_check_t *e, int32_t idx, cursor_t *c,
                         int depth)
{
    const wnode_t *node = &e->nodes[idx];
    advrec_err_t err = ADVREC_OK;
    int64_t len;
    int32_t i32 = 0; /* set by read_int; GCC -O3 cannot tell */

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

advrec_avro_check_t *advrec_avro_check_new(avro_schema_t schema, char *errstr,
                                           size_t errstr_size)
{
    compile_t comp = {0};
    advrec_avro_check_t *check = calloc(1, sizeof(*check));

    if (!check) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "schema: out of memory compiling the validator");
        return NULL;
    }
    comp.e = check;
    if (compile(&comp, schema, errstr, errstr_size) < 0) {
        free(comp.seen);
        advrec_avro_check_destroy(check);
        return NULL;
    }
    free(comp.seen);
    return check;
}

void advrec_avro_check_destroy(advrec_avro_check_t *check)
{
    if (!check)
        return;
    for (int32_t i = 0; i < check->n_nodes; i++) {
        free(check->nodes[i].kids);
        free(check->nodes[i].names);
    }
    free(check->nodes);
    free(check);
}

advrec_err_t advrec_avro_check_body(const advrec_avro_check_t *check,
                                    const void *body, size_t len, size_t *used,
                                    advrec_dlq_reason_t *reason, char *errstr,
                                    size_t errstr_size)
{
    cursor_t c;
    advrec_err_t err;

    c.base = c.p = body;
    c.end = c.base + len;
    c.field = NULL;
    c.reason = reason;
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    err = walk(check, 0, &c, 0);
    if (!err)
        *used = (size_t)(c.p - c.base);
    return err;
}
