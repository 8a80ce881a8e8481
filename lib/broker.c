/*
 * broker.c - owns one librdkafka mock cluster and the client handle that
 * librdkafka needs for its bookkeeping.
 */
#include "broker.h"

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
