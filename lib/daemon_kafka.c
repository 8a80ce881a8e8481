/*
 * daemon_kafka.c - the pipeline's Kafka side: its two clients (lib/kafka,
 * built from the configuration by lib/params), the hooks they call back
 * (deliveries to the outbox, assignments seeking to the stored offsets,
 * consumer lag into the metrics, the watchdog fed while the producer
 * waits), the embedded broker, and advrec_daemon_start.
 */
#include "daemon_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "params.h"

/* Every delivery report: counted, then settled by the outbox (which knows
 * what the message was). Served on the run thread (rd_kafka_poll). */
static void on_delivery(void *opaque, const rd_kafka_message_t *m)
{
    advrec_daemon_t *d = opaque;

    if (!m->err)
        d->c->delivered++;
    else if (d->c->delivery_failed++ < 10)
        log_err("delivery to %s [%d] failed: %s (produced again)",
                rd_kafka_topic_name(m->rkt), (int)m->partition,
                rd_kafka_err2str(m->err));
    advrec_outbox_delivered(d->outbox, m);
}

/*
 * The producer waits for room in its queue (a broker away or slow): the
 * loop is alive, so systemd's watchdog is fed. A restart would not bring
 * the broker back and would reload the whole state for nothing; the outage
 * shows in the backpressure counter and, once the outbox fills, in the
 * "consumption paused" warning.
 */
static void on_produce_wait(void *opaque)
{
    advrec_daemon_t *d = opaque;

    advrec_metrics_watchdog(d->metrics, now_ms());
}

static int input_index(const advrec_daemon_t *d, const char *topic)
{
    return strcmp(topic, d->inputs[TOPIC_CLICKS]) == 0      ? TOPIC_CLICKS
           : strcmp(topic, d->inputs[TOPIC_PURCHASES]) == 0 ? TOPIC_PURCHASES
                                                            : -1;
}

int advrec_daemon__run_offset_set(advrec_daemon_t *d, const char *topic,
                                  int32_t partition, int64_t next)
{
    int t = input_index(d, topic);

    if (t < 0 || partition < 0)
        return 0;
    if (partition >= d->run_next_cap[t]) {
        int32_t cap = d->run_next_cap[t] ? d->run_next_cap[t] : 16;
        while (cap <= partition)
            cap *= 2;
        int64_t *n = realloc(d->run_next[t], (size_t)cap * sizeof(*n));
        if (!n)
            return -1;
        memset(n + d->run_next_cap[t], 0,
               (size_t)(cap - d->run_next_cap[t]) * sizeof(*n));
        d->run_next[t] = n;
        d->run_next_cap[t] = cap;
    }
    d->run_next[t][partition] = next;
    return 0;
}

/*
 * Partitions assigned: exactly-once state resumes from the offsets
 * committed with the state, not from Kafka's (which are committed
 * asynchronously and lag). A partition this process already consumed
 * resumes where it left it (the run's own record, which also covers state
 * in memory and the embedded broker); else the state's stored offset; a
 * partition neither has seen keeps RD_KAFKA_OFFSET_INVALID (committed
 * offset, else auto.offset.reset). The embedded broker starts empty with
 * every run, so offsets stored against an earlier one would point past its
 * end: there only this run's offsets are used.
 */
static int on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_t *d = opaque;
    int resumed = 0;
    char why[256];

    d->c->partitions += (uint32_t)parts->cnt;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = input_index(d, tp->topic);
        int64_t next;
        advrec_err_t serr;

        if (t >= 0 && tp->partition >= 0 &&
            tp->partition < d->run_next_cap[t] &&
            d->run_next[t][tp->partition] > 0) {
            tp->offset = d->run_next[t][tp->partition];
            resumed++;
            continue;
        }
        if (!d->store || d->broker)
            continue;
        serr = advrec_store_offset(d->store, tp->topic, tp->partition, &next,
                                   why, sizeof(why));
        if (serr == ADVREC_OK) {
            tp->offset = next;
            resumed++;
        } else if (serr != ADVREC_ERR_NOT_FOUND) {
            log_err("rebalance: %s", why);
        }
    }
    return resumed;
}

/* Partitions revoked: what was applied from them is committed while they
 * are still ours (its offsets stored for Kafka too), and they no longer
 * count as ours (the readiness gauge). A failed commit stops the daemon. */
static void on_revoke(void *opaque,
                      const rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_t *d = opaque;

    (void)advrec_daemon__commit(d);

    d->c->partitions -= d->c->partitions < (uint32_t)parts->cnt
                            ? d->c->partitions
                            : (uint32_t)parts->cnt;
}

/* librdkafka's statistics: the consumer lag of the input partitions. */
static void on_lag(void *opaque, const advrec_kafka_lag_t *lags, size_t n)
{
    advrec_daemon_t *d = opaque;
    uint32_t k = 0;

    for (size_t i = 0; i < n && k < ADVREC_METRICS_LAG_MAX; i++) {
        int topic = strcmp(lags[i].topic, d->inputs[TOPIC_CLICKS]) == 0 ? 0
                    : strcmp(lags[i].topic, d->inputs[TOPIC_PURCHASES]) == 0
                        ? 1
                        : -1;
        if (topic < 0)
            continue;
        d->c->lag[k].topic = topic;
        d->c->lag[k].partition = lags[i].partition;
        d->c->lag[k++].lag = lags[i].lag;
    }
    d->c->n_lag = k;
}

/* One of our clients (lib/params: the user's kafka.* pairs over our
 * defaults, what our guarantees need forced), with the pipeline's hooks. */
static advrec_err_t new_client(advrec_daemon_t *d, advrec_kafka_role_t role,
                               advrec_kafka_t **kafkap, char *errstr,
                               size_t errstr_size)
{
    advrec_kafka_params_t p = {0};
    advrec_kafka_prop_t *props;
    advrec_err_t err;

    if (advrec_params_kafka(&p, &props, d->conf, role))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    p.bootstraps = d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
    p.on_delivery = on_delivery;
    p.on_assign = on_assign;
    p.on_revoke = on_revoke;
    if (d->http && role == ADVREC_KAFKA_CONSUMER) {
        p.on_stats = on_lag;
        p.stats_interval_ms = LAG_INTERVAL_MS;
    }
    p.on_wait = on_produce_wait;
    p.opaque = d;
    err = advrec_kafka_new(kafkap, &p, errstr, errstr_size);
    free(props);
    return err;
}

advrec_err_t advrec_daemon_start(advrec_daemon_t *d, char *errstr,
                                 size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    const char *outputs[] = {conf->topic_clicks, conf->topic_purchases,
                             conf->topic_recommendations, conf->topic_anomalies,
                             conf->topic_dlq};
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t kerr;
    advrec_err_t err;

    if (conf->broker_embedded) {
        d->broker = advrec_broker_new(1, errstr, errstr_size);
        if (!d->broker)
            return ADVREC_ERR_KAFKA;
        for (size_t i = 0; i < sizeof(outputs) / sizeof(*outputs); i++)
            if (advrec_broker_create_topic(
                    d->broker, outputs[i],
                    (int)conf->broker_embedded_partitions, errstr, errstr_size))
                return ADVREC_ERR_KAFKA;
        log_notice("embedded broker (in-memory, for demos and tests) at %s; "
                   "it starts empty, so input offsets stored in the state "
                   "are not used",
                   advrec_broker_bootstraps(d->broker));
    }
    if ((err = new_client(d, ADVREC_KAFKA_PRODUCER, &d->producer, errstr,
                          errstr_size)) ||
        (err = new_client(d, ADVREC_KAFKA_CONSUMER, &d->consumer, errstr,
                          errstr_size)))
        return err;
    advrec_outbox_set_producer(d->outbox, d->producer);
    d->cq = rd_kafka_queue_get_consumer(advrec_kafka_rk(d->consumer));

    topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, conf->topic_clicks,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, conf->topic_purchases,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(advrec_kafka_rk(d->consumer), topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr)
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot subscribe to %s and %s: %s",
                             conf->topic_clicks, conf->topic_purchases,
                             rd_kafka_err2str(kerr));
    log_notice("consuming %s and %s as group %s", conf->topic_clicks,
               conf->topic_purchases,
               advrec_conf_kafka_get(conf, "group.id")
                   ? advrec_conf_kafka_get(conf, "group.id")
                   : conf->group_id);
    /* What the last run left unacknowledged goes out before anything new. */
    advrec_outbox_produce(d->outbox);
    return ADVREC_OK;
}

const char *advrec_daemon_bootstraps(const advrec_daemon_t *d)
{
    return d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
}
