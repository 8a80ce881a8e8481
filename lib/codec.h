/*
 * codec.h - Avro records in Confluent wire framing: decode input events,
 * encode and decode recommendations and anomaly flags.
 *
 * Wire format of every message value (Confluent Schema Registry framing):
 *
 *   byte 0      magic, always 0
 *   bytes 1..4  schema id, big-endian signed 32-bit
 *   bytes 5..   the record in Avro binary encoding, written with that schema
 *
 * A codec holds:
 *  - the reader schemas: our current schemas (click, purchase,
 *    recommendation, anomaly .avsc) loaded once from a schema directory;
 *  - a registry of writer schemas, schema id -> schema, filled by
 *    advrec_codec_register(). The full name of a writer schema's record
 *    ("com.advrec.v1.Click", ...) decides which kind of record it carries.
 *    Each writer is resolved against the reader of its kind once, at
 *    register time, so an older or newer compatible writer decodes, and an
 *    incompatible one is refused there, not per record.
 *
 * Decoding never trusts the bytes: the body is first walked against the
 * writer schema by a bounds-checked validator (varints, lengths, counts,
 * union and enum indices, exact consumption); only a body that passes is
 * handed to Avro-C. Every failure returns ADVREC_ERR_DECODE, sets a reason
 * (advrec_dlq_reason_t, reason.h: the DLQ header's stable code) and writes
 * into errstr a message that starts with that code's name and a colon, e.g.
 *
 *   "bad-magic: first byte is 0x7b, expected 0 (not Confluent-framed Avro)"
 *
 * Encoders and register() write messages the same way (codes from the same
 * table), without a reason out-parameter.
 *
 * Threads: a codec is not thread-safe (it reuses decode and encode buffers
 * between calls); use one per thread. Registering is not meant to happen
 * while another thread decodes.
 */
#ifndef ADVREC_CODEC_H
#define ADVREC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "reason.h"
#include "types.h"

/* Size of the Confluent frame header: magic byte and schema id. */
#define ADVREC_CODEC_HEADER_SIZE 5
#define ADVREC_CODEC_MAGIC       0

typedef struct advrec_codec_s advrec_codec_t;

/* The record kinds the codec knows, decided by the schema's full name. */
typedef enum advrec_codec_kind_e {
    ADVREC_CODEC_CLICK = 0,          /* com.advrec.v1.Click */
    ADVREC_CODEC_PURCHASE = 1,       /* com.advrec.v1.Purchase */
    ADVREC_CODEC_RECOMMENDATION = 2, /* com.advrec.v1.Recommendation */
    ADVREC_CODEC_ANOMALY = 3,        /* com.advrec.v1.Anomaly */
    ADVREC_CODEC__KIND_COUNT
} advrec_codec_kind_t;

/* Frees what a decode put into rec (items) and zeroes rec; NULL is a no-op. */
void advrec_recommendation_clear(advrec_recommendation_t *rec);

/*
 * The schema directory to use when the configuration names none: the
 * source tree's schemas/ if it exists (running from a build directory),
 * else the installed data directory. Returns a static string; never NULL.
 */
const char *advrec_codec_default_schema_dir(void);

/* "click", "purchase", "recommendation", "anomaly" ("?" otherwise). */
const char *advrec_codec_kind_name(advrec_codec_kind_t kind);

/*
 * Creates a codec whose reader schemas are <schema_dir>/click.avsc,
 * purchase.avsc, recommendation.avsc and anomaly.avsc (schema_dir NULL:
 * advrec_codec_default_schema_dir()). The writer registry starts empty.
 * Returns NULL on failure (missing or invalid file, wrong record name) with
 * the file and Avro-C's reason in errstr. The caller owns the codec and
 * frees it with advrec_codec_destroy().
 */
advrec_codec_t *advrec_codec_new(const char *schema_dir, char *errstr,
                                 size_t errstr_size);

/* Frees the codec and every registered schema; NULL is a no-op. */
void advrec_codec_destroy(advrec_codec_t *codec);

/*
 * Registers the schema in file `path` as writer schema `id` (id >= 0). The
 * record's full name picks the kind; the schema must resolve against our
 * reader schema of that kind (Avro rules: fields matched by name, a reader
 * field the writer lacks needs a default, writer fields the reader lacks
 * are skipped, numeric promotion int->long->float->double). The path is
 * only read during the call.
 *
 * Errors: ADVREC_ERR_IO (file unreadable), ADVREC_ERR_SCHEMA (not valid
 * Avro, unknown record name, incompatible with the reader: errstr names the
 * field), ADVREC_ERR_INVALID_ARG (id < 0 or already registered). On error
 * the registry is unchanged.
 */
advrec_err_t advrec_codec_register(advrec_codec_t *codec, int32_t id,
                                   const char *path, char *errstr,
                                   size_t errstr_size);

/*
 * As advrec_codec_register() with the schema given as JSON text (len bytes
 * at json, not necessarily NUL-terminated; read only during the call).
 * `origin` names the schema in messages (e.g. a file name); may be NULL.
 */
advrec_err_t advrec_codec_register_json(advrec_codec_t *codec, int32_t id,
                                        const char *json, size_t len,
                                        const char *origin, char *errstr,
                                        size_t errstr_size);

/*
 * The kind of registered schema `id` in *kind. ADVREC_ERR_NOT_FOUND if the
 * id is not registered.
 */
advrec_err_t advrec_codec_schema_kind(const advrec_codec_t *codec, int32_t id,
                                      advrec_codec_kind_t *kind);

/*
 * The highest registered id whose schema is exactly our reader schema of
 * `kind` (the id to encode our outputs with), in *id. ADVREC_ERR_NOT_FOUND
 * if none is registered.
 */
advrec_err_t advrec_codec_current_id(const advrec_codec_t *codec,
                                     advrec_codec_kind_t kind, int32_t *id);

/*
 * Our reader schema of `kind` as compact JSON text (what a registry is
 * given to register), malloc'd and owned by the caller; NULL without
 * memory or for a kind outside the enum.
 */
char *advrec_codec_reader_json(const advrec_codec_t *codec,
                               advrec_codec_kind_t kind);

/*
 * Reads the frame header of the len bytes at buf: *schema_id gets the id.
 * ADVREC_ERR_DECODE with "short-frame"/"bad-magic" otherwise. Reads at most
 * 5 bytes; needs no codec.
 */
advrec_err_t advrec_codec_frame_id(const void *buf, size_t len,
                                   int32_t *schema_id, char *errstr,
                                   size_t errstr_size);

/*
 * Decodes one framed Click or Purchase from the len bytes at buf into *ev
 * (cleared first; fields the writer lacks get the reader schema's default)
 * and checks it with advrec_event_validate(). buf is only read during the
 * call. Returns ADVREC_OK (*reason untouched), or ADVREC_ERR_DECODE with
 * *reason set (reason may be NULL: not wanted), errstr starting with the
 * reason's name, and *ev unspecified. The Avro values and the reader are reused
 * per schema; Avro-C still mallocs each string it reads (bounded by the
 * validated message size) and frees it on the next decode.
 */
advrec_err_t advrec_codec_decode_event(advrec_codec_t *codec, const void *buf,
                                       size_t len, advrec_event_t *ev,
                                       advrec_dlq_reason_t *reason,
                                       char *errstr, size_t errstr_size);

/*
 * Decodes one framed Recommendation into *rec. On success rec->items is
 * malloc'd (NULL when n_items is 0) and owned by the caller, who releases
 * it with advrec_recommendation_clear(). On failure (ADVREC_ERR_DECODE)
 * nothing is allocated and *rec is zeroed.
 */
advrec_err_t advrec_codec_decode_recommendation(advrec_codec_t *codec,
                                                const void *buf, size_t len,
                                                advrec_recommendation_t *rec,
                                                char *errstr,
                                                size_t errstr_size);

/* Decodes one framed Anomaly into *anomaly (a plain value). */
advrec_err_t advrec_codec_decode_anomaly(advrec_codec_t *codec, const void *buf,
                                         size_t len, advrec_anomaly_t *anomaly,
                                         char *errstr, size_t errstr_size);

/*
 * Encoders. Each writes the framed record (header + Avro body) for writer
 * schema `schema_id`, which must be registered and of the right kind, into
 * the buf_size bytes at buf (caller-owned), and sets *out_len to its length.
 * Fields of the writer schema the struct has no value for get the writer
 * schema's default. If buf is too small, returns ADVREC_ERR_ENCODE with
 * *out_len set to the size needed, so the caller can grow buf and retry.
 * Other failures: ADVREC_ERR_NOT_FOUND (unknown id), ADVREC_ERR_ENCODE
 * (wrong kind, value does not fit the schema) with a reason in errstr.
 */

/* An event, as a Click or a Purchase according to schema_id's kind (the
 * event's type must match it). */
advrec_err_t advrec_codec_encode_event(advrec_codec_t *codec, int32_t schema_id,
                                       const advrec_event_t *ev, void *buf,
                                       size_t buf_size, size_t *out_len,
                                       char *errstr, size_t errstr_size);

advrec_err_t
advrec_codec_encode_recommendation(advrec_codec_t *codec, int32_t schema_id,
                                   const advrec_recommendation_t *rec,
                                   void *buf, size_t buf_size, size_t *out_len,
                                   char *errstr, size_t errstr_size);

advrec_err_t advrec_codec_encode_anomaly(advrec_codec_t *codec,
                                         int32_t schema_id,
                                         const advrec_anomaly_t *anomaly,
                                         void *buf, size_t buf_size,
                                         size_t *out_len, char *errstr,
                                         size_t errstr_size);

#endif
