/*
 * broker.h - the embedded Kafka broker: librdkafka's mock cluster started
 * in-process, speaking the Kafka protocol on loopback (ephemeral ports).
 *
 * For the zero-setup demo and for fault-injection tests, never for
 * durability or throughput claims: it keeps data in memory only, about
 * 5 MiB per partition (older data is dropped silently), and does not enforce
 * idempotence or transactions (see ../shared/DESIGN.md, "Facts about the
 * embedded broker"). Topics are created explicitly with enough partitions
 * to keep a replay under that limit.
 */
#ifndef ADVREC_BROKER_H
#define ADVREC_BROKER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "err.h"

typedef struct advrec_broker_s advrec_broker_t;

/*
 * Starts a mock cluster of n_brokers brokers (1..16). Returns NULL on failure
 * with errstr filled. The caller owns the result (advrec_broker_destroy).
 */
advrec_broker_t *advrec_broker_new(int n_brokers, char *errstr,
                                   size_t errstr_size);

/* The "host:port,..." bootstrap list; owned by broker, valid until destroy. */
const char *advrec_broker_bootstraps(const advrec_broker_t *broker);

/*
 * Creates topic with partitions partitions (replication factor 1). Creating
 * an existing topic is not an error. On failure returns ADVREC_ERR_KAFKA and
 * names the topic in errstr.
 */
advrec_err_t advrec_broker_create_topic(advrec_broker_t *broker,
                                        const char *topic, int partitions,
                                        char *errstr, size_t errstr_size);

/*
 * The underlying mock cluster, for fault injection (rd_kafka_mock_*);
 * owned by broker.
 */
rd_kafka_mock_cluster_t *advrec_broker_mock(advrec_broker_t *broker);

/* Stops the cluster; clients still connected see the brokers go down.
 * Accepts NULL. */
void advrec_broker_destroy(advrec_broker_t *broker);

#endif
