/*
 * config.h - advrecd's configuration: one plain struct, filled from one
 * declarative table of keys (lib/config.c), a `key = value` file and
 * `-X key=value` overrides.
 *
 * The table is the single source of truth: defaults, ranges, the generated
 * conf/advrecd.conf and docs/CONFIG.md all come from it, and a unit test fails
 * when the committed files drift from it. Adding a key is one table row plus
 * one struct field.
 *
 * Besides the table's keys, two families are open-ended:
 *  - `kafka.<property>` is kept verbatim, in order, and handed to librdkafka
 *    untouched (advrec_conf_kafka_apply()); librdkafka judges it.
 *  - `schema.<N>` maps Confluent schema id N (1..2^31-1) to an .avsc path.
 *
 * Ownership: an advrec_conf_t owns every string and array hanging off it;
 * callers read the fields directly and change them only through
 * advrec_conf_set() / advrec_conf_load_file(), so ownership stays simple.
 */
#ifndef ADVREC_CONFIG_H
#define ADVREC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "err.h"

/* state.sync */
typedef enum advrec_conf_sync_e {
    ADVREC_CONF_SYNC_NONE = 0,   /* WriteBatch without fsync */
    ADVREC_CONF_SYNC_COMMIT = 1, /* fsync every round's WriteBatch */
} advrec_conf_sync_t;

/* state.offset.missing: what to do with a partition the state is behind
 * on, or lost the offset of (docs/STATE.md, "Lineage: lost commits"). */
typedef enum advrec_conf_missing_e {
    ADVREC_CONF_MISSING_FAIL = 0,      /* stop, naming the partitions */
    ADVREC_CONF_MISSING_EARLIEST = 1,  /* replay all the state lacks */
    ADVREC_CONF_MISSING_COMMITTED = 2, /* resume at Kafka's committed offset */
} advrec_conf_missing_t;

/* recs.exclude */
typedef enum advrec_conf_exclude_e {
    ADVREC_CONF_EXCLUDE_PURCHASED = 0,
    ADVREC_CONF_EXCLUDE_SEEN = 1,
    ADVREC_CONF_EXCLUDE_NONE = 2,
} advrec_conf_exclude_t;

/* recs.retrieval */
typedef enum advrec_conf_retrieval_e {
    ADVREC_CONF_RETRIEVAL_EXACT = 0,
    ADVREC_CONF_RETRIEVAL_ANN = 1,
    ADVREC_CONF_RETRIEVAL_AUTO = 2,
} advrec_conf_retrieval_t;

/* recs.backlog.policy: when refreshes fall behind the input. */
typedef enum advrec_conf_backlog_e {
    ADVREC_CONF_BACKLOG_CONSUME = 0, /* keep consuming; staleness grows */
    ADVREC_CONF_BACKLOG_PAUSE = 1,   /* stop consuming while a list owed is
                                        recs.max.staleness.ms old */
} advrec_conf_backlog_t;

/* One kafka.* pair: name without the "kafka." prefix. */
typedef struct advrec_conf_kv_s {
    char *name;
    char *value;
    char *origin; /* "conf/x.conf:12" or "-X", for error messages */
} advrec_conf_kv_t;

/* One schema.<N> entry. */
typedef struct advrec_conf_schema_s {
    int32_t id;
    char *path; /* resolved: absolute, or relative to the working directory */
    /* Built-in defaults are a file name inside schema.dir and follow it when
     * schema.dir changes; NULL for entries set by a file or -X. */
    char *in_schema_dir;
    /* "conf/x.conf:12" or "-X" where it was set; NULL for a built-in
     * default (then schema.dir's origin is the one that matters). */
    char *origin;
} advrec_conf_schema_t;

typedef struct advrec_conf_s {
    /* broker */
    bool broker_embedded;
    int64_t broker_embedded_partitions;
    /* topic */
    char *topic_clicks;
    char *topic_purchases;
    char *topic_recommendations;
    char *topic_anomalies;
    char *topic_dlq;
    char *topic_control;   /* forget requests; "": none */
    char *topic_changelog; /* state changelog (scale-out); "": off */
    int64_t topic_changelog_replication; /* -1: the broker's default */
    char *topic_model; /* shared item factors (scale-out); "": off */
    char *group_id;
    char *group_instance_id; /* "auto", "" (dynamic) or the id */
    /* schema */
    char *schema_dir; /* "" = built-in; see advrec_conf_schema_dir() */
    int64_t schema_click_id;
    int64_t schema_purchase_id;
    int64_t schema_recommendation_id;
    int64_t schema_anomaly_id;
    char *schema_registry_url;       /* "" = no registry */
    char *schema_registry_user_info; /* secret */
    char *schema_registry_ca;
    int64_t schema_registry_timeout_ms;
    int64_t schema_registry_backoff_ms;
    bool schema_registry_auto_register;
    /* state */
    char *state_dir;
    char *state_checkpoint_dir;
    int state_sync;           /* advrec_conf_sync_t */
    int state_offset_missing; /* advrec_conf_missing_t */
    int64_t state_commit_interval_ms;
    int64_t state_memory_limit;     /* bytes; 0: none */
    int64_t state_user_ttl_ms;      /* expiry by event time; 0: never */
    int64_t model_replay_steps;     /* history replays per event */
    int64_t model_sync_interval_ms; /* topic.model: publish period */
    /* round */
    int64_t round_max_records;
    int64_t round_max_ms;
    int64_t
        consumer_stall_ms; /* a partition not moving this long: fetched again */
    /* model */
    int64_t model_k;
    double model_lr;
    double model_reg;
    double model_adv_lambda;
    double model_adv_eps;
    int64_t model_adv_warmup;
    int64_t model_adv_steps;
    int64_t model_negatives;
    int64_t model_negatives_min;
    double model_negatives_budget;
    double model_init_std;
    int64_t model_seed;
    bool model_bias;
    double model_weight_click;
    double model_weight_purchase;
    int64_t model_max_items;
    int64_t model_max_users;
    /* recs */
    int64_t recs_n;
    int64_t recs_debounce_ms;
    int64_t recs_max_staleness_ms;
    int64_t recs_refresh_budget_ms;
    int64_t recs_refresh_batch;
    int recs_backlog_policy; /* advrec_conf_backlog_t */
    int recs_exclude;        /* advrec_conf_exclude_t */
    int64_t recs_exclude_purchased_max;
    int64_t recs_exclude_seen_max;
    int64_t recs_history;
    int64_t recs_cold_events;
    double recs_popularity_halflife_s;
    int recs_retrieval; /* advrec_conf_retrieval_t */
    int64_t recs_retrieval_auto_items;
    int64_t recs_ann_lists;
    int64_t recs_ann_probe;
    double recs_ann_recall;
    int64_t recs_ann_candidates;
    int64_t recs_ann_rebuild_ms;
    bool recs_ann_sq8;
    /* anomaly */
    bool anomaly_enable;
    int64_t anomaly_min_events;
    double anomaly_rate_window_s;
    double anomaly_rate_max;
    double anomaly_gap_logstd_max;
    int64_t anomaly_nopurchase_clicks;
    double anomaly_diversity_min;
    double anomaly_young_s;
    double anomaly_item_window_s;
    double anomaly_item_min_events;
    double anomaly_item_share;
    double anomaly_item_surge_factor;
    int64_t anomaly_group_min_size;
    int64_t anomaly_profile_min_events;
    double anomaly_profile_fit_max;
    double anomaly_profile_window_s;
    double anomaly_profile_burst_min;
    double anomaly_flag_score;
    double anomaly_quarantine_score;
    double anomaly_clear_score;
    double anomaly_weight_flagged;
    double anomaly_weight_probation;
    /* log */
    int log_level; /* syslog priority, advrec_log_level_t */
    int64_t stats_interval_ms;
    /* http */
    char *http_listen; /* "" = no endpoint */
    int64_t http_live_max_ms;
    int64_t metrics_prequential_every;

    /* kafka.* pairs in the order they were given (read-only). */
    advrec_conf_kv_t *kafka;
    size_t kafka_cnt;
    size_t kafka_size;
    /* schema.<N> entries, ordered by first appearance (read-only). */
    advrec_conf_schema_t *schemas;
    size_t schemas_cnt;
    size_t schemas_size;
    /* Where each table key was last set ("conf/x.conf:12" or "-X"), in
     * table order; NULL while a key holds its built-in default. Private:
     * read it through advrec_conf_origin(). */
    char **origins;
} advrec_conf_t;

/* Output formats of advrec_conf_write_reference(). */
typedef enum advrec_conf_format_e {
    ADVREC_CONF_FORMAT_CONF = 0, /* conf/advrecd.conf */
    ADVREC_CONF_FORMAT_MD = 1,   /* docs/CONFIG.md */
    ADVREC_CONF_FORMAT_MAN = 2,  /* man/advrecd.conf.5 (roff) */
} advrec_conf_format_t;

/*
 * A configuration holding every default. Returns NULL when out of memory
 * (errstr says so). The caller owns the result: advrec_conf_destroy().
 */
advrec_conf_t *advrec_conf_new(char *errstr, size_t errstr_size);

/* Frees conf and everything it owns; NULL and half-built objects are fine. */
void advrec_conf_destroy(advrec_conf_t *conf);

/*
 * Sets one key from text, as `-X key=value` does. Relative schema.<N> and
 * schema.dir paths are kept relative to the working directory. On error conf
 * is unchanged and errstr reads "-X key=value: why". Neither string is kept.
 */
advrec_err_t advrec_conf_set(advrec_conf_t *conf, const char *key,
                             const char *value, char *errstr,
                             size_t errstr_size);

/*
 * Parses "key=value" (one -X argument) and sets it. ADVREC_ERR_INVALID_ARG
 * when there is no '=' or the key is empty (a usage error), else as
 * advrec_conf_set().
 */
advrec_err_t advrec_conf_set_arg(advrec_conf_t *conf, const char *arg,
                                 char *errstr, size_t errstr_size);

/*
 * Reads a `key = value` file: one setting per line, whitespace around key and
 * value trimmed, `#` starts a comment only as the first non-blank character
 * of a line (so values such as passwords may contain '#'), values may be
 * wrapped in "double" (with \" and \\ escapes) or 'single' quotes. Later
 * settings override earlier ones. Relative schema paths are resolved against
 * the file's directory.
 *
 * Returns ADVREC_ERR_IO when the file cannot be read, ADVREC_ERR_CONFIG on the
 * first bad line, with errstr "path:line: ..."; settings before that line
 * stay applied. path is not kept.
 */
advrec_err_t advrec_conf_load_file(advrec_conf_t *conf, const char *path,
                                   char *errstr, size_t errstr_size);

/*
 * Checks what no single key can: relations between keys (an external broker
 * needs kafka.bootstrap.servers, staleness >= debounce, ...) and that
 * librdkafka accepts every kafka.* pair. Call once after the last set/load.
 * ADVREC_ERR_CONFIG with errstr naming the key (and where it was set).
 */
advrec_err_t advrec_conf_check(const advrec_conf_t *conf, char *errstr,
                               size_t errstr_size);

/*
 * Applies the kafka.* pairs to rk_conf in order. With for_consumer, group.id
 * is set first from our group.id key, so a kafka.group.id pair still wins.
 * A property librdkafka rejects becomes ADVREC_ERR_CONFIG with errstr
 * "origin: kafka.name: librdkafka's message". rk_conf stays the caller's.
 */
advrec_err_t advrec_conf_kafka_apply(const advrec_conf_t *conf,
                                     rd_kafka_conf_t *rk_conf,
                                     bool for_consumer, char *errstr,
                                     size_t errstr_size);

/*
 * The value of kafka.<name> as last set, or NULL. Owned by conf.
 */
const char *advrec_conf_kafka_get(const advrec_conf_t *conf, const char *name);

/*
 * The directory default schemas are read from: schema.dir if set, else the
 * source tree's schemas/ when it exists (running from a build directory),
 * else the installed data directory. Owned by conf or static.
 */
const char *advrec_conf_schema_dir(const advrec_conf_t *conf);

/*
 * The .avsc path for a Confluent schema id, or NULL when none is mapped.
 * Owned by conf.
 */
const char *advrec_conf_schema_path(const advrec_conf_t *conf, int32_t id);

/*
 * Writes the effective configuration as a loadable conf file: every table
 * key, then kafka.* and schema.<N>. fp stays the caller's.
 */
void advrec_conf_write(const advrec_conf_t *conf, FILE *fp);

/*
 * Writes the reference generated from the table: the commented conf file
 * (every key commented out with its default, doc and range), the Markdown
 * reference or the advrecd.conf(5) man page. Output does not depend on the
 * build or the machine, so the committed copies can be compared with it.
 */
void advrec_conf_write_reference(FILE *fp, advrec_conf_format_t format);

/*
 * Parses a size: digits with an optional k, M, G or T suffix (powers of 1024,
 * case-insensitive, an optional trailing B: "64k", "16MB"). Exposed for
 * tools and tests; keys of type size use it.
 */
/* A duration: digits, then ms, s, m, h or d (none: milliseconds), into
 * milliseconds. ADVREC_ERR_CONFIG with errstr when malformed. */
advrec_err_t advrec_conf_parse_duration(const char *text, int64_t *out,
                                        char *errstr, size_t errstr_size);

advrec_err_t advrec_conf_parse_size(const char *text, int64_t *out,
                                    char *errstr, size_t errstr_size);

/*
 * The name of table key i (in table order), or NULL when i is past the end:
 * for tests, completion and listings. Static.
 */
const char *advrec_conf_key(size_t i);

/*
 * Where key was last set, for messages: "conf/x.conf:12", "-X", or
 * "built-in default". key is a table key or schema.<N>; NULL for any other
 * key (and for a schema.<N> that is not mapped). Owned by conf or static.
 */
const char *advrec_conf_origin(const advrec_conf_t *conf, const char *key);

/*
 * The value of table key `key` in conf as text, as advrec_conf_write()
 * writes it unquoted (and advrec_conf_set() reads it back to the same
 * value), into buf (size bytes, truncated, NUL-terminated). Returns 0, or
 * -1 when key is not a table key (kafka.* and schema.<N> are not: see
 * advrec_conf_kafka_get and advrec_conf_schema_path); buf is then "".
 */
int advrec_conf_value(const advrec_conf_t *conf, const char *key, char *buf,
                      size_t size);

/* advrec's version string, e.g. "0.1.0". Static. */
const char *advrec_version(void);

#endif
