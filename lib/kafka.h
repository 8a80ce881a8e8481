/*
 * kafka.h - our Kafka clients: one handle that owns a librdkafka client's
 * set-up and producing with backpressure.
 *
 * Every Kafka client advrec makes (advrecd's consumer and producer,
 * advrec-produce, advrec-demo, the C tests) is built here, so there is one
 * copy of: our defaults per role, the user's pass-through properties over
 * them, properties the caller forces, librdkafka's log and error callbacks
 * routed into lib/log.h, fatal errors recorded for the owner, the rebalance
 * callback (eager or cooperative) with hooks the owner supplies, and the
 * produce loop that waits while the local queue is full instead of
 * buffering without bound.
 *
 * The raw rd_kafka_t stays reachable (advrec_kafka_rk) for consuming,
 * polling and flushing: this module owns set-up and producing, not the
 * owner's loop.
 */
#ifndef ADVREC_KAFKA_H
#define ADVREC_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "err.h"

typedef struct advrec_kafka_s advrec_kafka_t;

typedef enum advrec_kafka_role_e {
    ADVREC_KAFKA_PRODUCER,
    ADVREC_KAFKA_CONSUMER,
} advrec_kafka_role_t;

/* One librdkafka property. origin ("conf/x.conf:12", "-X") names where it
 * came from in error messages; may be NULL. */
typedef struct advrec_kafka_prop_s {
    const char *name;
    const char *value;
    const char *origin;
} advrec_kafka_prop_t;

/* A delivery report (producer), served on the thread that polls. */
typedef void(advrec_kafka_delivery_cb)(void *opaque,
                                       const rd_kafka_message_t *msg);

/*
 * Partitions about to be assigned (consumer): the hook may set each
 * element's offset (RD_KAFKA_OFFSET_INVALID: the committed offset, else
 * auto.offset.reset) before the assignment is made. Returns how many
 * partitions it positioned (for the log line).
 */
typedef int(advrec_kafka_assign_cb)(void *opaque,
                                    rd_kafka_topic_partition_list_t *parts);

/*
 * produce() is waiting for room in the producer queue (called about every
 * 100 ms while it waits, on the producing thread): a long wait is a broker
 * that is away or slow, not a stuck caller, and the owner may say so to its
 * supervisor (advrecd feeds systemd's watchdog from here).
 */
typedef void(advrec_kafka_wait_cb)(void *opaque);

/*
 * Partitions the group assigns or revokes (consumer), before the assign or
 * revoke hook sees them: the hook may add partitions that go with them
 * (the daemon's other input topics under topic.changelog: a user's
 * partition of every input follows the group's assignment of the first),
 * and the list, with them, is what is assigned or revoked.
 */
typedef void(advrec_kafka_expand_cb)(void *opaque,
                                     rd_kafka_topic_partition_list_t *parts);

/* Partitions about to be revoked (consumer), before they are. */
typedef void(advrec_kafka_revoke_cb)(
    void *opaque, const rd_kafka_topic_partition_list_t *parts);

/* One partition's consumer lag and fetch state from librdkafka's
 * statistics. */
typedef struct advrec_kafka_lag_s {
    const char *topic; /* valid during the hook only */
    int32_t partition;
    int64_t lag;          /* records from the committed position to the end; -1:
                             not known */
    char fetch_state[24]; /* librdkafka's: "active", "offset-query",
                             "validate-epoch-wait", ... */
} advrec_kafka_lag_t;

/* librdkafka's statistics (consumer): every partition being fetched (a
 * fetch state other than "none") or reporting a lag, n of them (0: none
 * known); lags is valid during the call only. Served on the thread that
 * polls. */
typedef void(advrec_kafka_stats_cb)(void *opaque,
                                    const advrec_kafka_lag_t *lags, size_t n);

typedef struct advrec_kafka_params_s {
    advrec_kafka_role_t role;
    /* Set last when non-NULL (the embedded broker's address). */
    const char *bootstraps;
    /* Defaults of the caller, over the role's own (producer: idempotent,
     * partitioner murmur2_random as the Java client, linger.ms 5; consumer:
     * auto.offset.reset earliest) and under the user's props. */
    const advrec_kafka_prop_t *defaults;
    size_t n_defaults;
    /* The user's pass-through properties (kafka.* keys, -X), in order. */
    const advrec_kafka_prop_t *props;
    size_t n_props;
    /* Properties the caller's guarantees depend on: set after the user's. */
    const advrec_kafka_prop_t *forced;
    size_t n_forced;
    advrec_kafka_delivery_cb *on_delivery; /* producer; may be NULL */
    advrec_kafka_assign_cb *on_assign;     /* consumer; may be NULL */
    advrec_kafka_revoke_cb *on_revoke;     /* consumer; may be NULL */
    advrec_kafka_expand_cb *on_expand;     /* consumer; may be NULL */
    /* Statistics: with a hook, statistics.interval.ms defaults to
     * stats_interval_ms (the user's kafka.* may override it). */
    advrec_kafka_stats_cb *on_stats; /* may be NULL */
    int stats_interval_ms;
    advrec_kafka_wait_cb *on_wait; /* producer; may be NULL */
    void *opaque;                  /* passed to the hooks */
} advrec_kafka_params_t;

/*
 * A new client in *kafkap, configured from params (only read; the strings
 * need not outlive the call). ADVREC_ERR_CONFIG when librdkafka rejects a
 * property (errstr: its origin, name, value and librdkafka's reason),
 * ADVREC_ERR_KAFKA when the client cannot be created; *kafkap is NULL then.
 * The caller owns the handle (advrec_kafka_destroy).
 */
advrec_err_t advrec_kafka_new(advrec_kafka_t **kafkap,
                              const advrec_kafka_params_t *params, char *errstr,
                              size_t errstr_size);

/* The librdkafka client, owned by the handle. */
rd_kafka_t *advrec_kafka_rk(advrec_kafka_t *kafka);

/*
 * Produces one message (key and value copied; headers owned by librdkafka
 * on success and destroyed here on failure), waiting while the producer
 * queue is full: this is the backpressure that pauses the caller instead of
 * buffering without bound. Delivery reports are served while it waits, and
 * the params' on_wait hook is called.
 * ts_ms 0: now. msg_opaque comes back in the delivery report. Gives up
 * (returning RD_KAFKA_RESP_ERR__FATAL) once the client hit a fatal error.
 * Returns librdkafka's error; on error no delivery report will follow.
 */
rd_kafka_resp_err_t advrec_kafka_produce(advrec_kafka_t *kafka,
                                         const char *topic, const void *key,
                                         size_t key_len, const void *value,
                                         size_t value_len,
                                         rd_kafka_headers_t *headers,
                                         int64_t ts_ms, void *msg_opaque);

/* Times produce() found the queue full and waited. */
uint64_t advrec_kafka_backpressure(const advrec_kafka_t *kafka);

/*
 * Whether the client hit a fatal error (e.g. the idempotent producer lost
 * its guarantees); its description ("producer: fatal error: ...") goes into
 * buf. Safe from any thread.
 */
int advrec_kafka_fatal(const advrec_kafka_t *kafka, char *buf, size_t size);

/* Distinct error codes a handle counts (advrec_kafka_errors); a code first
 * seen after that many others is not counted. */
#define ADVREC_KAFKA_ERRORS_MAX 32

/* How often librdkafka's error callback reported one error code. */
typedef struct advrec_kafka_error_count_s {
    rd_kafka_resp_err_t code;
    uint64_t count;
} advrec_kafka_error_count_t;

/*
 * The error callbacks this client received so far, by error code (every
 * one, fatal or not: a broker down is _TRANSPORT / _ALL_BROKERS_DOWN, a
 * request that timed out _TIMED_OUT, ...), in the order each code was first
 * seen: up to max of them into out. Returns how many were written. Safe
 * from any thread; counts only grow. librdkafka retries most of these by
 * itself, so they say that something went wrong with the cluster, not that
 * anything was lost.
 */
size_t advrec_kafka_errors(const advrec_kafka_t *kafka,
                           advrec_kafka_error_count_t *out, size_t max);

/*
 * Waits up to timeout_ms for the metadata of topic (which also creates it
 * on a broker that auto-creates topics). 0, or librdkafka's error.
 */
rd_kafka_resp_err_t advrec_kafka_warm_up(advrec_kafka_t *kafka,
                                         const char *topic, int timeout_ms);

/*
 * Destroys the client (without flushing: flush first if delivery matters;
 * a consumer should be closed first). NULL is OK.
 */
void advrec_kafka_destroy(advrec_kafka_t *kafka);

/*
 * Sets one librdkafka property. On failure returns ADVREC_ERR_CONFIG with
 * errstr naming the key, the value and librdkafka's reason; conf unchanged.
 */
advrec_err_t advrec_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                   const char *value, char *errstr,
                                   size_t errstr_size);

/*
 * Routes librdkafka's log and error callbacks of handles made from conf into
 * advrec's logger (log_cb, error_cb), for the few handles not made by
 * advrec_kafka_new (the embedded broker's). Does not take ownership of conf.
 */
void advrec_kafka_conf_route_logs(rd_kafka_conf_t *conf);

#endif
