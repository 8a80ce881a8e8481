/*
 * codec_int.h - the codec's internals, shared by its three files and by
 * nothing else (not installed):
 *
 *   codec.c         reader schemas, the writer registry and the resolution
 *                   of each writer against our reader (projection);
 *   codec_decode.c  frame, validate (avro_check.h), Avro-C read, and the
 *                   extraction of values (or reader defaults) into structs;
 *   codec_encode.c  structs -> writer-schema values -> framed bytes.
 *
 * The split follows what each part reads: decode and encode only look up
 * a registered entry and use its reusable values; only codec.c builds and
 * frees them.
 */
#ifndef ADVREC_CODEC_INT_H
#define ADVREC_CODEC_INT_H

#include <avro.h>
#include <jansson.h>

#include "avro_check.h"
#include "codec.h"
#include "reason.h"

/* The writer defaults of one record type of an entry: the fields that
 * have one, by index (codec_encode.c finds them at the first encode of
 * the type; a walk of the schema JSON for every record cost 8 % of the
 * processing thread at 10,000 lists/s). */
typedef struct codec_defaults_s {
    avro_schema_t schema; /* the record type, borrowed from wschema */
    size_t n;
    struct {
        int index;
        const json_t *json; /* borrowed from wjson */
    } * field;
} codec_defaults_t;

/* One registered writer schema. Built by advrec_codec_register_json(),
 * freed with the codec. */
typedef struct codec_entry_s {
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
    codec_defaults_t *defaults; /* one per record type encoded so far */
    size_t n_defaults;
    advrec_avro_check_t *check; /* the validator's form of the writer */
} codec_entry_t;

struct advrec_codec_s {
    avro_schema_t rschema[ADVREC_CODEC__KIND_COUNT];
    json_t *rjson[ADVREC_CODEC__KIND_COUNT];
    const json_t *click_ctx; /* reader JSON of ClickContext, for defaults */
    const json_t *scored;    /* reader JSON of ScoredItem */
    avro_reader_t reader;
    avro_writer_t writer;
    codec_entry_t **entries;
    size_t n_entries;
    codec_entry_t *last; /* last looked-up entry: records come in runs */
};

/* The registered entry of schema id, or NULL. Owned by the codec. */
codec_entry_t *advrec_codec__lookup(const advrec_codec_t *codec, int32_t id);

/* The field object called `name` in a JSON record schema, or NULL
 * (borrowed from record). */
const json_t *advrec_codec__json_field(const json_t *record, const char *name);

/*
 * Fails with err: *reason_out (when not NULL) gets reason, and errstr
 * "<reason's name>: <details>", so the message names the same stable code
 * as the enum. Returns err.
 */
advrec_err_t advrec_codec__fail(advrec_err_t err, advrec_dlq_reason_t reason,
                                advrec_dlq_reason_t *reason_out, char *errstr,
                                size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
