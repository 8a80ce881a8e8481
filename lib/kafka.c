/*
 * kafka.c - librdkafka glue: config errors with context, logs into ours.
 */
#include "kafka.h"

#include "log.h"

advrec_err_t advrec_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                   const char *value, char *errstr,
                                   size_t errstr_size)
{
    char why[256];

    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "librdkafka property %s=%s: %s", key, value, why);
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
