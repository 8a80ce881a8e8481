/*
 * Integration test for lib/broker.c: the embedded broker speaks Kafka on
 * loopback: a topic created with 8 partitions is reported by metadata with
 * 8 partitions, and 200 keyed messages produced to it are all consumed back
 * with their keys and values. The clients are lib/kafka's, as advrecd's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "check.h"
#include "kafka.h"

#define N_MSGS 200

static advrec_broker_t *broker;

static void test_topic_has_requested_partitions(void)
{
    char errstr[256];
    const struct rd_kafka_metadata *md = NULL;
    advrec_kafka_params_t kp = {.role = ADVREC_KAFKA_PRODUCER};
    advrec_kafka_t *producer = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk;

    CHECK_INT(
        advrec_broker_create_topic(broker, "t8", 8, errstr, sizeof(errstr)),
        ADVREC_OK);
    /* Creating it again is not an error. */
    CHECK_INT(
        advrec_broker_create_topic(broker, "t8", 8, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(
        advrec_broker_create_topic(broker, "t0", 0, errstr, sizeof(errstr)),
        ADVREC_ERR_INVALID_ARG);
    CHECK(strstr(errstr, "t0") != NULL);

    kp.bootstraps = advrec_broker_bootstraps(broker);
    CHECK_INT(advrec_kafka_new(&producer, &kp, errstr, sizeof(errstr)),
              ADVREC_OK);
    if (!producer)
        return;
    rk = advrec_kafka_rk(producer);
    rkt = rd_kafka_topic_new(rk, "t8", NULL);
    CHECK_INT(rd_kafka_metadata(rk, 0, rkt, &md, 10000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    if (md) {
        CHECK_INT(md->topic_cnt, 1);
        CHECK_INT(md->topics[0].partition_cnt, 8);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    advrec_kafka_destroy(producer);
}

static void test_produce_consume_round_trip(void)
{
    char errstr[256], key[32], val[32];
    const advrec_kafka_prop_t group[] = {{"group.id", "test-broker", NULL}};
    advrec_kafka_params_t kp = {.role = ADVREC_KAFKA_PRODUCER};
    advrec_kafka_t *producer = NULL, *consumer = NULL;
    rd_kafka_t *c;
    int seen[N_MSGS] = {0}, got = 0;
    struct timespec now, deadline;

    CHECK_INT(
        advrec_broker_create_topic(broker, "rt", 4, errstr, sizeof(errstr)),
        ADVREC_OK);
    kp.bootstraps = advrec_broker_bootstraps(broker);
    CHECK_INT(advrec_kafka_new(&producer, &kp, errstr, sizeof(errstr)),
              ADVREC_OK);
    if (!producer)
        return;
    for (int i = 0; i < N_MSGS; i++) {
        snprintf(key, sizeof(key), "user%d", i % 17);
        snprintf(val, sizeof(val), "%d", i);
        CHECK_INT(advrec_kafka_produce(producer, "rt", key, strlen(key), val,
                                       strlen(val), NULL, 0, NULL),
                  RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    CHECK_INT(rd_kafka_flush(advrec_kafka_rk(producer), 10000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    advrec_kafka_destroy(producer);

    /* A consumer in a group, reading from the earliest offset (lib/kafka's
     * default), subscribed: the broker's group coordinator assigns. */
    kp.role = ADVREC_KAFKA_CONSUMER;
    kp.defaults = group;
    kp.n_defaults = 1;
    CHECK_INT(advrec_kafka_new(&consumer, &kp, errstr, sizeof(errstr)),
              ADVREC_OK);
    if (!consumer)
        return;
    c = advrec_kafka_rk(consumer);
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "rt", RD_KAFKA_PARTITION_UA);
    CHECK_INT(rd_kafka_subscribe(c, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);
    /* Bounded: give up 60 s from now. */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 60;
    while (got < N_MSGS) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
        if (!m)
            continue;
        if (!m->err) {
            int v = -1;
            char k[32] = "";
            snprintf(val, sizeof(val), "%.*s", (int)m->len,
                     (const char *)m->payload);
            snprintf(k, sizeof(k), "%.*s", (int)m->key_len,
                     (const char *)m->key);
            sscanf(val, "%d", &v);
            CHECK(v >= 0 && v < N_MSGS);
            if (v >= 0 && v < N_MSGS) {
                snprintf(key, sizeof(key), "user%d", v % 17);
                CHECK_STR(k, key);
                got += !seen[v];
                seen[v] = 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(got, N_MSGS);
    rd_kafka_consumer_close(c);
    advrec_kafka_destroy(consumer);
}

int main(void)
{
    char errstr[256];

    CHECK(advrec_broker_new(0, errstr, sizeof(errstr)) == NULL);
    broker = advrec_broker_new(1, errstr, sizeof(errstr));
    if (!broker) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    CHECK(strstr(advrec_broker_bootstraps(broker), "127.0.0.1:") != NULL);
    RUN(test_topic_has_requested_partitions);
    RUN(test_produce_consume_round_trip);
    advrec_broker_destroy(broker);
    return DONE();
}
