/*
 * types.h - the domain's plain values, shared by the modules that compute
 * them (engine, detect, state) and the codec that puts them on the wire.
 *
 * Only types and limits live here, no functions: every module may include
 * it, and it includes nothing of ours, so the dependency runs from the
 * codec to the domain and never from the domain to the codec. The wire
 * mapping of each type is in codec.h and docs/SCHEMAS.md.
 */
#ifndef ADVREC_TYPES_H
#define ADVREC_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Longest user, item, session and order id plus its NUL. Longer ids are
 * refused where they enter (decoder, file reader), never truncated. */
#define ADVREC_ID_MAX 256

/* Where an input record came from. */
typedef struct advrec_origin_s {
    uint8_t topic; /* index into the daemon's input topics (0 clicks, 1
                      purchases) */
    int32_t partition;
    int64_t offset;
} advrec_origin_t;

/* One recommended item. */
typedef struct advrec_scored_item_s {
    char item_id[ADVREC_ID_MAX];
    float score;
} advrec_scored_item_t;

/*
 * A recommendation list. For encoding, items points to n_items entries the
 * caller owns. A decoded one owns items (malloc'd by the codec): release it
 * with advrec_recommendation_clear() (codec.h).
 */
typedef struct advrec_recommendation_s {
    char user_id[ADVREC_ID_MAX];
    advrec_scored_item_t *items;
    size_t n_items;
    int64_t model_version;
    char input_topic[ADVREC_ID_MAX];
    int32_t input_partition;
    int64_t input_offset;
    int64_t generated_at_ms;
} advrec_recommendation_t;

/* What an anomaly flag is about. */
typedef enum advrec_entity_type_e {
    ADVREC_ENTITY_USER = 0,
    ADVREC_ENTITY_ITEM = 1,
} advrec_entity_type_t;

/* What a flag does to its entity (docs/ANOMALY.md). */
typedef enum advrec_anomaly_action_e {
    ADVREC_ANOMALY_FLAGGED = 0,
    ADVREC_ANOMALY_QUARANTINED = 1,
    ADVREC_ANOMALY_CLEARED = 2,
} advrec_anomaly_action_t;

/* Capacities of one advrec_anomaly_t. */
#define ADVREC_ANOMALY_MAX_REASONS  16
#define ADVREC_ANOMALY_REASON_MAX   64
#define ADVREC_ANOMALY_MAX_EVIDENCE 16
#define ADVREC_ANOMALY_KEY_MAX      64
#define ADVREC_ANOMALY_DETECTOR_MAX 64

typedef struct advrec_evidence_s {
    char key[ADVREC_ANOMALY_KEY_MAX];
    int64_t count;
} advrec_evidence_t;

/*
 * An anomaly flag: a plain value, no pointers, nothing to free. Decoding a
 * record with more reasons or evidence entries than fit, or a longer
 * string, fails with "bad-field" (never truncated).
 */
typedef struct advrec_anomaly_s {
    advrec_entity_type_t entity_type;
    char entity_id[ADVREC_ID_MAX];
    double score;
    char reasons[ADVREC_ANOMALY_MAX_REASONS][ADVREC_ANOMALY_REASON_MAX];
    size_t n_reasons;
    advrec_evidence_t evidence[ADVREC_ANOMALY_MAX_EVIDENCE];
    size_t n_evidence;
    advrec_anomaly_action_t action;
    int64_t ts_ms;
    char detector[ADVREC_ANOMALY_DETECTOR_MAX]; /* "" when not recorded */
} advrec_anomaly_t;

#endif
