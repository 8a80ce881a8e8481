/*
 * changelog.h - the records of the state changelog (docs/STATE.md,
 * "Changelog"): one user's whole state, portable between instances, and a
 * partition's marker. Pure encoding: no Kafka, no store.
 *
 * A user record names items by their external ids, never by a state's
 * dense index (each instance numbers items in the order it first saw
 * them), and carries the input position of the commit that wrote it, so
 * the instance that restores it can skip that user's events the row
 * already reflects. A marker says where the input of a partition stands
 * once every record before it was acknowledged.
 *
 * Values are little-endian, behind a two-byte header (format, kind). The
 * decoder checks every length against the value: a truncated or corrupt
 * record is an error naming the field, never a read past its end.
 */
#ifndef ADVREC_CHANGELOG_H
#define ADVREC_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "state.h"

#define ADVREC_CHANGELOG_FORMAT 1

/* Input topics a position covers: clicks, purchases, control (the
 * daemon's order). */
#define ADVREC_CHANGELOG_TOPICS 3

typedef enum advrec_changelog_kind_e {
    ADVREC_CHANGELOG_USER = 1,
    ADVREC_CHANGELOG_MARKER = 2,
} advrec_changelog_kind_t;

/* The key of a partition's marker: empty (a user id never is). */
#define ADVREC_CHANGELOG_MARKER_KEY ""

/* Next offset of the partition in each input topic; -1: none. */
typedef struct advrec_changelog_pos_s {
    int64_t next[ADVREC_CHANGELOG_TOPICS];
} advrec_changelog_pos_t;

typedef struct advrec_changelog_marker_s {
    advrec_changelog_pos_t pos;
    char lineage[40]; /* the writing state's id (store.h), NUL-terminated */
    uint64_t seq;     /* its commit number */
} advrec_changelog_marker_t;

/* A growable output buffer; the caller frees p. */
typedef struct advrec_changelog_buf_s {
    unsigned char *p;
    size_t len, cap;
} advrec_changelog_buf_t;

/*
 * Encodes user idx of state into out (replacing its contents): counters,
 * factors, accumulator, history ring (oldest first) and purchase and seen
 * sets by item id, last input position and event time, pos (the commit's
 * position in the user's partition), owed (a list is owed) and the
 * detector row det (det_len bytes, may be 0). ADVREC_ERR_NOMEM.
 */
advrec_err_t advrec_changelog_encode_user(advrec_changelog_buf_t *out,
                                          advrec_state_t *state, uint32_t idx,
                                          const advrec_changelog_pos_t *pos,
                                          int owed, const void *det,
                                          size_t det_len);

advrec_err_t
advrec_changelog_encode_marker(advrec_changelog_buf_t *out,
                               const advrec_changelog_marker_t *marker);

/* A decoded user record: views into the value it was decoded from. */
typedef struct advrec_changelog_user_s {
    advrec_changelog_pos_t pos;
    int owed;
    uint32_t k;
    uint32_t updates;
    uint64_t clicks, purchases;
    const unsigned char *w; /* k little-endian floats */
    float acc;
    advrec_origin_t last;
    int64_t last_ts_ms;
    uint32_t n_hist;           /* ring entries, oldest first */
    const unsigned char *hist; /* its entries, hist_bytes of them */
    size_t hist_bytes;
    uint32_t n_purchased, n_seen;
    const unsigned char *sets; /* purchased, then seen: sets_bytes */
    size_t sets_bytes;
    const unsigned char *det;
    size_t det_len;
} advrec_changelog_user_t;

/*
 * Decodes a record value: its kind in *kind and the user or the marker.
 * ADVREC_ERR_DECODE (errstr says what is wrong) on a value that is not a
 * whole record of this format.
 */
advrec_err_t advrec_changelog_decode(const void *value, size_t len,
                                     advrec_changelog_kind_t *kind,
                                     advrec_changelog_user_t *user,
                                     advrec_changelog_marker_t *marker,
                                     char *errstr, size_t errstr_size);

/* Interns an item by id for advrec_changelog_apply_user (the engine's
 * resolve, so a new item is initialised as any other). */
typedef advrec_err_t(advrec_changelog_item_cb)(void *opaque, const char *id,
                                               uint32_t *idx, char *errstr,
                                               size_t errstr_size);

/*
 * Overwrites user idx of state with u (factors, counters, ring, sets, last
 * position and time; the row is touched, so the next commit writes it),
 * interning the items it names through item. ADVREC_ERR_INVALID_ARG when
 * u's k differs from the state's, an item callback's error, NOMEM.
 */
advrec_err_t advrec_changelog_apply_user(advrec_state_t *state, uint32_t idx,
                                         const advrec_changelog_user_t *u,
                                         advrec_changelog_item_cb *item,
                                         void *opaque, char *errstr,
                                         size_t errstr_size);

#endif
