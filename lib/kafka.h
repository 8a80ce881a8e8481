/*
 * kafka.h - small glue between librdkafka and advrec: configuration with
 * errors turned into ours, and librdkafka's log and error callbacks routed
 * into lib/log.h so every line the process writes has one format.
 */
#ifndef ADVREC_KAFKA_H
#define ADVREC_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "err.h"

/*
 * Sets one librdkafka property. On failure returns ADVREC_ERR_CONFIG with
 * errstr naming the key, the value and librdkafka's reason; conf unchanged.
 */
advrec_err_t advrec_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                   const char *value, char *errstr,
                                   size_t errstr_size);

/*
 * Routes librdkafka's log and error callbacks of handles made from conf into
 * advrec's logger (log_cb, error_cb). Does not take ownership of conf.
 */
void advrec_kafka_conf_route_logs(rd_kafka_conf_t *conf);

#endif
