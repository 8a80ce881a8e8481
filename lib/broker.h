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
 * Fault injection (tests). Brokers are numbered 1..n_brokers; -1 means every
 * broker where a broker id is taken. Each returns ADVREC_ERR_INVALID_ARG
 * for a broker, topic or partition the cluster does not have, with errstr
 * naming it, and changes nothing then.
 */

/*
 * The next cnt requests of kind api_key (the protocol's ApiKey: 0 Produce,
 * 1 Fetch, 8 OffsetCommit, ...) to any broker fail with errors[0..cnt) in
 * order (copied). RD_KAFKA_RESP_ERR__TRANSPORT makes the broker drop the
 * connection instead of answering.
 */
void advrec_broker_push_errors(advrec_broker_t *broker, int16_t api_key,
                               size_t cnt, const rd_kafka_resp_err_t *errors);

/*
 * Moves the leadership of topic's partition to broker_id (-1: no leader,
 * so every request for it fails until a leader is set again). Clients
 * learn of it from NOT_LEADER_FOR_PARTITION answers and a metadata refresh.
 */
advrec_err_t advrec_broker_set_leader(advrec_broker_t *broker,
                                      const char *topic, int32_t partition,
                                      int32_t broker_id, char *errstr,
                                      size_t errstr_size);

/* Delays every answer of broker_id (-1: all) by rtt_ms (0: none). */
advrec_err_t advrec_broker_set_rtt(advrec_broker_t *broker, int32_t broker_id,
                                   int rtt_ms, char *errstr,
                                   size_t errstr_size);

/*
 * Takes broker_id (-1: all) down: its connections are closed and new ones
 * refused until advrec_broker_set_up(); its partitions keep it as leader
 * (no leader change), so their clients wait.
 */
advrec_err_t advrec_broker_set_down(advrec_broker_t *broker, int32_t broker_id,
                                    char *errstr, size_t errstr_size);
advrec_err_t advrec_broker_set_up(advrec_broker_t *broker, int32_t broker_id,
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
