/*
 * broker.c - owns one librdkafka mock cluster and the client handle that
 * librdkafka needs for its bookkeeping.
 */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>

#include "kafka.h"

struct advrec_broker_s {
    rd_kafka_t *rk; /* bookkeeping handle the mock cluster hangs off */
    rd_kafka_mock_cluster_t *mcluster;
};

advrec_broker_t *advrec_broker_new(int n_brokers, char *errstr,
                                   size_t errstr_size)
{
    advrec_broker_t *broker;
    rd_kafka_conf_t *conf;
    char why[256];

    if (n_brokers < 1 || n_brokers > 16) {
        advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                      "embedded broker: %d brokers requested, expected 1..16",
                      n_brokers);
        return NULL;
    }
    broker = calloc(1, sizeof(*broker));
    if (!broker) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "embedded broker: out of memory");
        return NULL;
    }
    conf = rd_kafka_conf_new();
    advrec_kafka_conf_route_logs(conf);
    /* The bookkeeping client never connects anywhere by itself, so its
     * notice that no bootstrap.servers is set is noise: warnings only. */
    rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
    broker->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!broker->rk) {
        rd_kafka_conf_destroy(conf);
        advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                      "embedded broker: cannot create client handle: %s", why);
        goto fail;
    }
    /* conf is owned by broker->rk from here on. */
    broker->mcluster = rd_kafka_mock_cluster_new(broker->rk, n_brokers);
    if (!broker->mcluster) {
        advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                      "embedded broker: cannot start the mock cluster "
                      "(no free loopback port?)");
        goto fail;
    }
    return broker;

fail:
    advrec_broker_destroy(broker);
    return NULL;
}

const char *advrec_broker_bootstraps(const advrec_broker_t *broker)
{
    return rd_kafka_mock_cluster_bootstraps(broker->mcluster);
}

advrec_err_t advrec_broker_create_topic(advrec_broker_t *broker,
                                        const char *topic, int partitions,
                                        char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t kerr;

    if (partitions < 1)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "embedded broker: topic %s: %d partitions", topic,
                             partitions);
    kerr = rd_kafka_mock_topic_create(broker->mcluster, topic, partitions, 1);
    if (kerr && kerr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "embedded broker: cannot create topic %s: %s",
                             topic, rd_kafka_err2str(kerr));
    return ADVREC_OK;
}

void advrec_broker_push_errors(advrec_broker_t *broker, int16_t api_key,
                               size_t cnt, const rd_kafka_resp_err_t *errors)
{
    rd_kafka_mock_push_request_errors_array(broker->mcluster, api_key, cnt,
                                            errors);
}

/* librdkafka's answer to a fault injection call, with what it was about. */
static advrec_err_t fault_result(rd_kafka_resp_err_t kerr, const char *what,
                                 char *errstr, size_t errstr_size)
{
    if (!kerr)
        return ADVREC_OK;
    return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                         "embedded broker: %s: %s", what,
                         rd_kafka_err2str(kerr));
}

advrec_err_t advrec_broker_set_leader(advrec_broker_t *broker,
                                      const char *topic, int32_t partition,
                                      int32_t broker_id, char *errstr,
                                      size_t errstr_size)
{
    char what[300];

    snprintf(what, sizeof(what), "leader of %s [%d] to broker %d", topic,
             (int)partition, (int)broker_id);
    return fault_result(rd_kafka_mock_partition_set_leader(
                            broker->mcluster, topic, partition, broker_id),
                        what, errstr, errstr_size);
}

advrec_err_t advrec_broker_set_rtt(advrec_broker_t *broker, int32_t broker_id,
                                   int rtt_ms, char *errstr, size_t errstr_size)
{
    char what[64];

    snprintf(what, sizeof(what), "rtt of broker %d", (int)broker_id);
    return fault_result(
        rd_kafka_mock_broker_set_rtt(broker->mcluster, broker_id, rtt_ms), what,
        errstr, errstr_size);
}

advrec_err_t advrec_broker_set_down(advrec_broker_t *broker, int32_t broker_id,
                                    char *errstr, size_t errstr_size)
{
    char what[64];

    snprintf(what, sizeof(what), "taking broker %d down", (int)broker_id);
    return fault_result(
        rd_kafka_mock_broker_set_down(broker->mcluster, broker_id), what,
        errstr, errstr_size);
}

advrec_err_t advrec_broker_set_up(advrec_broker_t *broker, int32_t broker_id,
                                  char *errstr, size_t errstr_size)
{
    char what[64];

    snprintf(what, sizeof(what), "bringing broker %d up", (int)broker_id);
    return fault_result(
        rd_kafka_mock_broker_set_up(broker->mcluster, broker_id), what, errstr,
        errstr_size);
}

rd_kafka_mock_cluster_t *advrec_broker_mock(advrec_broker_t *broker)
{
    return broker->mcluster;
}

void advrec_broker_destroy(advrec_broker_t *broker)
{
    if (!broker)
        return;
    if (broker->mcluster)
        rd_kafka_mock_cluster_destroy(broker->mcluster);
    if (broker->rk)
        rd_kafka_destroy(broker->rk);
    free(broker);
}
