/*
 * kafka.c - our Kafka clients: set-up, callbacks, produce with backpressure.
 */
#include "kafka.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "redact.h"

struct advrec_kafka_s {
    rd_kafka_t *rk;
    advrec_kafka_role_t role;
    advrec_kafka_delivery_cb *on_delivery;
    advrec_kafka_assign_cb *on_assign;
    advrec_kafka_revoke_cb *on_revoke;
    advrec_kafka_expand_cb *on_expand;
    int cooperative; /* the rebalance protocol last seen */
    advrec_kafka_stats_cb *on_stats;
    advrec_kafka_wait_cb *on_wait;
    void *opaque;
    atomic_int fatal; /* 0, 1 being written, 2 written */
    char fatal_msg[512];
    uint64_t backpressure;
    /* Error callbacks by code: a slot is claimed by a CAS of its code from
     * 0 (no error is ever reported as 0), then only counted. */
    struct {
        atomic_int code;
        atomic_uint_fast64_t count;
    } errors[ADVREC_KAFKA_ERRORS_MAX];
};

/* Each role's defaults: the user's properties override them. */
static const advrec_kafka_prop_t producer_defaults[] = {
    {"enable.idempotence", "true", NULL},
    /* The partition the Java client chooses for a key. */
    {"partitioner", "murmur2_random", NULL},
    {"linger.ms", "5", NULL},
};
static const advrec_kafka_prop_t consumer_defaults[] = {
    {"auto.offset.reset", "earliest", NULL},
};

advrec_err_t advrec_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                   const char *value, char *errstr,
                                   size_t errstr_size)
{
    char why[256];

    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        if (advrec_redact_is_secret(key))
            advrec_redact_scrub(why, sizeof(why), value);
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "librdkafka property %s=%s: %s", key,
                             advrec_redact_value(key, value), why);
    }
    return ADVREC_OK;
}

static advrec_err_t set_props(rd_kafka_conf_t *conf,
                              const advrec_kafka_prop_t *props, size_t n,
                              char *errstr, size_t errstr_size)
{
    char why[256];

    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_conf_set(conf, props[i].name, props[i].value, why,
                              sizeof(why)) == RD_KAFKA_CONF_OK)
            continue;
        /* Neither our message nor librdkafka's may carry a secret. */
        if (advrec_redact_is_secret(props[i].name))
            advrec_redact_scrub(why, sizeof(why), props[i].value);
        return advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size, "%s%skafka.%s=%s: %s",
            props[i].origin ? props[i].origin : "", props[i].origin ? ": " : "",
            props[i].name, advrec_redact_value(props[i].name, props[i].value),
            why);
    }
    return ADVREC_OK;
}

/* librdkafka calls this from its own threads; log.c writes one line with one
 * write(2), so this is safe. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    /* librdkafka uses syslog levels too (0..7); clamp to ours. */
    ADVREC_LOG(level < ADVREC_LOG_ERR ? ADVREC_LOG_ERR : level,
               "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque)
{
    /* Most of these are transient (a broker went away and will be retried);
     * only fatal errors stop a client, and those are handled by its owner. */
    log_warning("librdkafka %s: %s: %s", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

void advrec_kafka_conf_route_logs(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
}

/* Counts one error callback of code err (any thread). */
static void count_error(advrec_kafka_t *k, int err)
{
    for (size_t i = 0; i < ADVREC_KAFKA_ERRORS_MAX; i++) {
        int code = atomic_load(&k->errors[i].code);
        if (code == 0) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&k->errors[i].code, &expected,
                                               err))
                code = err;
            else
                code = expected; /* another thread claimed it first */
        }
        if (code == err) {
            atomic_fetch_add(&k->errors[i].count, 1);
            return;
        }
    }
}

/* A handle's error callback: every error is counted by code; a fatal error
 * is recorded once for the owner (advrec_kafka_fatal), everything else is
 * only logged. */
static void handle_error_cb(rd_kafka_t *rk, int err, const char *reason,
                            void *opaque)
{
    advrec_kafka_t *k = opaque;
    char fatal[256];
    int expected = 0;

    if (err != 0)
        count_error(k, err);
    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        kafka_error_cb(rk, err, reason, opaque);
        return;
    }
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    log_err("%s: fatal error: %s", rd_kafka_name(rk), fatal);
    if (atomic_compare_exchange_strong(&k->fatal, &expected, 1)) {
        snprintf(k->fatal_msg, sizeof(k->fatal_msg), "%s: fatal error: %s",
                 k->role == ADVREC_KAFKA_PRODUCER ? "producer" : "consumer",
                 fatal);
        atomic_store(&k->fatal, 2);
    }
}

static void handle_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
    advrec_kafka_t *k = opaque;

    if (k->on_delivery)
        k->on_delivery(k->opaque, m);
}

static void handle_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *given,
                                void *opaque)
{
    advrec_kafka_t *k = opaque;
    /* NULL while the consumer closes (its group handle no longer takes
     * requests): the protocol of the last rebalance still holds. */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    int cooperative =
        protocol ? strcmp(protocol, "COOPERATIVE") == 0 : k->cooperative;
    int assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
    int positioned = 0;
    /* The hooks work on a copy: librdkafka's list stays the group's. */
    rd_kafka_topic_partition_list_t *parts =
        k->on_expand ? rd_kafka_topic_partition_list_copy(given) : given;

    if (!parts) {
        log_err("rebalance: out of memory copying the assignment");
        parts = given;
    } else if (k->on_expand) {
        k->on_expand(k->opaque, parts);
    }
    k->cooperative = cooperative;
    if (assign && k->on_assign)
        positioned = k->on_assign(k->opaque, parts);
    else if (!assign && k->on_revoke)
        k->on_revoke(k->opaque, parts);
    log_info("rebalance: %s %d partition(s)%s", assign ? "assigned" : "revoked",
             parts->cnt, positioned ? ", resuming from stored offsets" : "");
    if (assign) {
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
    } else {
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_err("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        log_err("rebalance: %s", rd_kafka_err2str(ret));
    }
    if (parts != given)
        rd_kafka_topic_partition_list_destroy(parts);
}

/*
 * librdkafka's statistics JSON: topics.<t>.partitions.<p>.consumer_lag and
 * fetch_state of each partition being fetched or with a lag (librdkafka's
 * own "-1" partition, and partitions neither fetched nor positioned, are
 * left out). A document that does not parse is logged at debug level and
 * skipped.
 */
static int handle_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                           void *opaque)
{
    advrec_kafka_t *k = opaque;
    advrec_kafka_lag_t lags[256];
    size_t n = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(json, json_len, 0, &jerr), *topics, *t;
    const char *tname;

    (void)rk;
    if (!doc) {
        log_debug("statistics: %s", jerr.text);
        return 0;
    }
    topics = json_object_get(doc, "topics");
    json_object_foreach(topics, tname, t)
    {
        json_t *parts = json_object_get(t, "partitions"), *pt;
        const char *pname;
        json_object_foreach(parts, pname, pt)
        {
            json_t *lag = json_object_get(pt, "consumer_lag");
            json_t *id = json_object_get(pt, "partition");
            const char *state =
                json_string_value(json_object_get(pt, "fetch_state"));
            int64_t l = json_is_integer(lag) ? json_integer_value(lag) : -1;
            if (!json_is_integer(id) || json_integer_value(id) < 0 ||
                (l < 0 && (!state || strcmp(state, "none") == 0)) ||
                n == sizeof(lags) / sizeof(*lags))
                continue;
            lags[n].topic = tname;
            lags[n].partition = (int32_t)json_integer_value(id);
            lags[n].lag = l < 0 ? -1 : l;
            snprintf(lags[n++].fetch_state, sizeof(lags[0].fetch_state), "%s",
                     state ? state : "");
        }
    }
    k->on_stats(k->opaque, lags, n);
    json_decref(doc);
    return 0; /* librdkafka frees json */
}

advrec_err_t advrec_kafka_new(advrec_kafka_t **kafkap,
                              const advrec_kafka_params_t *p, char *errstr,
                              size_t errstr_size)
{
    int producer = p->role == ADVREC_KAFKA_PRODUCER;
    const advrec_kafka_prop_t *own =
        producer ? producer_defaults : consumer_defaults;
    size_t n_own = producer
                       ? sizeof(producer_defaults) / sizeof(*producer_defaults)
                       : sizeof(consumer_defaults) / sizeof(*consumer_defaults);
    rd_kafka_conf_t *c = NULL;
    advrec_kafka_t *k;
    advrec_err_t err;
    char why[512];

    *kafkap = NULL;
    if (!(k = calloc(1, sizeof(*k))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    k->role = p->role;
    k->on_delivery = p->on_delivery;
    k->on_assign = p->on_assign;
    k->on_revoke = p->on_revoke;
    k->on_expand = p->on_expand;
    k->on_stats = p->on_stats;
    k->on_wait = p->on_wait;
    k->opaque = p->opaque;
    c = rd_kafka_conf_new();
    if (p->on_stats) {
        char ms[32];
        snprintf(ms, sizeof(ms), "%d", p->stats_interval_ms);
        if ((err = advrec_kafka_conf_set(c, "statistics.interval.ms", ms,
                                         errstr, errstr_size)))
            goto fail;
        rd_kafka_conf_set_stats_cb(c, handle_stats_cb);
    }
    if ((err = set_props(c, own, n_own, errstr, errstr_size)) ||
        (err = set_props(c, p->defaults, p->n_defaults, errstr, errstr_size)) ||
        (err = set_props(c, p->props, p->n_props, errstr, errstr_size)) ||
        (err = set_props(c, p->forced, p->n_forced, errstr, errstr_size)))
        goto fail;
    if (p->bootstraps &&
        (err = advrec_kafka_conf_set(c, "bootstrap.servers", p->bootstraps,
                                     errstr, errstr_size)))
        goto fail;
    rd_kafka_conf_set_log_cb(c, kafka_log_cb);
    rd_kafka_conf_set_error_cb(c, handle_error_cb);
    rd_kafka_conf_set_opaque(c, k);
    if (producer)
        rd_kafka_conf_set_dr_msg_cb(c, handle_dr_cb);
    else
        rd_kafka_conf_set_rebalance_cb(c, handle_rebalance_cb);
    k->rk = rd_kafka_new(producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, c,
                         why, sizeof(why));
    if (!k->rk) {
        err = advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                            "cannot create the %s: %s",
                            producer ? "producer" : "consumer", why);
        goto fail;
    }
    c = NULL; /* owned by rk now */
    if (!producer)
        rd_kafka_poll_set_consumer(k->rk);
    *kafkap = k;
    return ADVREC_OK;

fail:
    if (c)
        rd_kafka_conf_destroy(c);
    free(k);
    return err;
}

rd_kafka_t *advrec_kafka_rk(advrec_kafka_t *k)
{
    return k->rk;
}

rd_kafka_resp_err_t advrec_kafka_produce(advrec_kafka_t *k, const char *topic,
                                         const void *key, size_t key_len,
                                         const void *value, size_t value_len,
                                         rd_kafka_headers_t *headers,
                                         int64_t ts_ms, void *msg_opaque)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        if (atomic_load(&k->fatal)) {
            err = RD_KAFKA_RESP_ERR__FATAL;
            break;
        }
        /* With headers, librdkafka takes them over only on success. */
        if (headers)
            err = rd_kafka_producev(
                k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE((void *)value, value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(ts_ms),
                RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(
                k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_VALUE((void *)value, value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(msg_opaque),
                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* Backpressure: serve delivery reports until there is room. */
        k->backpressure++;
        rd_kafka_poll(k->rk, 100);
        if (k->on_wait)
            k->on_wait(k->opaque);
    }
    if (err && headers)
        rd_kafka_headers_destroy(headers);
    return err;
}

uint64_t advrec_kafka_backpressure(const advrec_kafka_t *k)
{
    return k->backpressure;
}

size_t advrec_kafka_errors(const advrec_kafka_t *k,
                           advrec_kafka_error_count_t *out, size_t max)
{
    advrec_kafka_t *m = (advrec_kafka_t *)k; /* atomics: loads only */
    size_t n = 0;

    for (size_t i = 0; i < ADVREC_KAFKA_ERRORS_MAX && n < max; i++) {
        int code = atomic_load(&m->errors[i].code);
        if (code == 0)
            break;
        out[n].code = (rd_kafka_resp_err_t)code;
        out[n++].count = atomic_load(&m->errors[i].count);
    }
    return n;
}

int advrec_kafka_fatal(const advrec_kafka_t *k, char *buf, size_t size)
{
    if (atomic_load((atomic_int *)&k->fatal) != 2)
        return 0;
    if (size)
        snprintf(buf, size, "%s", k->fatal_msg);
    return 1;
}

rd_kafka_resp_err_t advrec_kafka_warm_up(advrec_kafka_t *k, const char *topic,
                                         int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;

    if (!rkt)
        return rd_kafka_last_error();
    err = rd_kafka_metadata(k->rk, 0, rkt, &md, timeout_ms);
    if (!err && md->topic_cnt == 1 && md->topics[0].err)
        err = md->topics[0].err;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err;
}

void advrec_kafka_destroy(advrec_kafka_t *k)
{
    if (!k)
        return;
    if (k->rk)
        rd_kafka_destroy(k->rk);
    free(k);
}
