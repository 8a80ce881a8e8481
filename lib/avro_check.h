/*
 * avro_check.h - checks that a body is one well-formed Avro binary value of
 * a writer schema, with bounds-checked reads, before Avro-C sees it.
 *
 * Why: Avro-C trusts the lengths and counts it reads (it mallocs whatever a
 * string length says), so hostile bytes could make it read past the buffer
 * or allocate without bound. A body that passes this check has every
 * varint at most 10 bytes (ints within 32 bits), every length and block
 * count within the bytes left, every union branch and enum index in range,
 * every boolean 0 or 1, and nesting at most 32 deep; Avro-C's allocations
 * for it are then bounded by its size. UTF-8 is not checked.
 *
 * Used by the codec (codec.c), once per decoded record; the codec adds the
 * frame header, the registry and the check that nothing follows the value.
 */
#ifndef ADVREC_AVRO_CHECK_H
#define ADVREC_AVRO_CHECK_H

#include <stddef.h>

#include <avro.h>

#include "err.h"
#include "reason.h"

typedef struct advrec_avro_check_s advrec_avro_check_t;

/*
 * Compiles writer schema `schema` (only read during the call; record field
 * names are borrowed from it, so it must outlive the result) into a
 * checker. NULL when out of memory (errstr says so). The caller owns the
 * result: advrec_avro_check_destroy().
 */
advrec_avro_check_t *advrec_avro_check_new(avro_schema_t schema, char *errstr,
                                           size_t errstr_size);

/* Frees check; NULL is fine. */
void advrec_avro_check_destroy(advrec_avro_check_t *check);

/*
 * Walks one value of the schema at the start of the len bytes at body
 * (only read). ADVREC_OK with *used set to the bytes it takes (the caller
 * decides about any that follow), or ADVREC_ERR_DECODE with *reason (when
 * reason is not NULL) one of truncated, bad-varint, bad-length, bad-count,
 * bad-union, bad-enum, bad-boolean, too-deep (avro: a schema type the
 * checker does not know), and errstr "<reason>: <what> at body byte <n>
 * (field <innermost record field>)".
 */
advrec_err_t advrec_avro_check_body(const advrec_avro_check_t *check,
                                    const void *body, size_t len, size_t *used,
                                    advrec_dlq_reason_t *reason, char *errstr,
                                    size_t errstr_size);

#endif
