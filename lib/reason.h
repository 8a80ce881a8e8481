/*
 * reason.h - why a record went to the dead-letter topic: one enum, one
 * table of stable names and meanings.
 *
 * The name is what the DLQ's `advrec.error` header carries and what the
 * codec's error messages start with ("bad-magic: first byte is 0x7b, ...").
 * Names never change once released: consumers of the DLQ match on them.
 * docs/SCHEMAS.md ("Dead-letter reasons") lists every row with an example,
 * and tests/unit/test_reason.c fails when the two drift apart.
 *
 * Who returns which: the codec's decoder (advrec_codec_decode_event) every
 * code from short-frame to avro; the engine's apply, as an advrec_err_t,
 * table-full and no-memory (advrec_dlq_reason_from_err maps it).
 */
#ifndef ADVREC_REASON_H
#define ADVREC_REASON_H

#include <stddef.h>

#include "err.h"

/* X(ENUM_SUFFIX, "header name", "meaning"): the one table. Append only. */
#define ADVREC_DLQ_REASONS(X)                                                 \
    X(SHORT_FRAME, "short-frame",                                             \
      "fewer than 5 bytes: no Confluent frame header (also a tombstone)")     \
    X(BAD_MAGIC, "bad-magic",                                                 \
      "first byte is not 0: not Confluent-framed Avro (e.g. JSON)")           \
    X(UNKNOWN_SCHEMA, "unknown-schema", "the schema id is not registered")    \
    X(WRONG_KIND, "wrong-kind",                                               \
      "the schema is of another kind (an Anomaly on an input topic)")         \
    X(TRUNCATED, "truncated",                                                 \
      "the body ends inside a value (varint, float, fixed)")                  \
    X(BAD_VARINT, "bad-varint",                                               \
      "a varint longer than 10 bytes / 64 bits, or an int beyond 32 bits")    \
    X(BAD_LENGTH, "bad-length",                                               \
      "a string/bytes/map-key length that is negative or longer than the "    \
      "bytes left")                                                           \
    X(BAD_COUNT, "bad-count",                                                 \
      "an array/map block count (or block size) that is negative or larger "  \
      "than the bytes left")                                                  \
    X(BAD_UNION, "bad-union", "a union branch index out of range")            \
    X(BAD_ENUM, "bad-enum", "an enum index out of range")                     \
    X(BAD_BOOLEAN, "bad-boolean", "a boolean byte other than 0 or 1")         \
    X(TRAILING_BYTES, "trailing-bytes", "bytes left over after the record")   \
    X(TOO_DEEP, "too-deep", "values nested more than 32 levels")              \
    X(BAD_FIELD, "bad-field",                                                 \
      "a value that does not fit our struct (NUL in an id, too many anomaly " \
      "reasons, a string field too long)")                                    \
    X(INVALID_EVENT, "invalid-event",                                         \
      "the decoded event fails advrec_event_validate (empty id, ts <= 0, "    \
      "quantity < 1, negative price)")                                        \
    X(AVRO, "avro",                                                           \
      "Avro-C refused a record the validator accepted (should not happen)")   \
    X(TABLE_FULL, "table-full",                                               \
      "the event's user or item is new and its table holds model.max.users "  \
      "/ model.max.items rows")                                               \
    X(NO_MEMORY, "no-memory",                                                 \
      "memory ran out adding the event's user or item")                       \
    X(INTERNAL, "internal",                                                   \
      "any other failure to apply a decoded event (a bug: please report it)") \
    X(INCOMPATIBLE_SCHEMA, "incompatible-schema",                             \
      "the schema registry's schema for the id is not Avro or does not "      \
      "resolve against our reader schema")                                    \
    X(ID_TOO_LONG, "id-too-long",                                             \
      "an identifier (user, item, session, order) longer than 255 bytes: "    \
      "refused, never truncated")                                             \
    X(BAD_CONTROL, "bad-control",                                             \
      "a record on topic.control that is not a forget request (a tombstone "  \
      "keyed by a user id)")

typedef enum advrec_dlq_reason_e {
    ADVREC_DLQ_NONE = 0, /* no failure; never sent */
#define ADVREC_DLQ_ENUM_(e, name, meaning) ADVREC_DLQ_##e,
    ADVREC_DLQ_REASONS(ADVREC_DLQ_ENUM_)
#undef ADVREC_DLQ_ENUM_
        ADVREC_DLQ__COUNT
} advrec_dlq_reason_t;

/* The stable header value, e.g. "bad-magic"; "none" for ADVREC_DLQ_NONE
 * and "internal" for anything outside the enum. Static. */
const char *advrec_dlq_reason_name(advrec_dlq_reason_t reason);

/* The one-line meaning from the table ("" for ADVREC_DLQ_NONE). Static. */
const char *advrec_dlq_reason_meaning(advrec_dlq_reason_t reason);

/* The reason named by the len bytes at name (a header value, or the text
 * before ':' of a codec message); ADVREC_DLQ_NONE when no reason has that
 * name. name is only read. */
advrec_dlq_reason_t advrec_dlq_reason_parse(const char *name, size_t len);

/* The reason for an engine apply failure: ADVREC_ERR_FULL -> table-full,
 * ADVREC_ERR_NOMEM -> no-memory, any other error -> internal. */
advrec_dlq_reason_t advrec_dlq_reason_from_err(advrec_err_t err);

#endif
