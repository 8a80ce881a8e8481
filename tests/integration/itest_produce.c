/*
 * itest_produce - test-only helper: produces a generated shop stream
 * (tools/lib/synth, encoded with lib/codec as schema 1 / 2, keyed by user id,
 * partitioner murmur2_random) to advrec.clicks / advrec.purchases at a
 * bootstrap address, paced to a rate, then flushes and exits.
 *
 *   itest_produce BOOTSTRAP EVENTS RATE [SEED [BAD_EVERY]]
 *
 * RATE is events per second (0: as fast as possible). With BAD_EVERY > 0,
 * after every BAD_EVERY-th event one malformed record follows on the clicks
 * topic, alternately not Confluent-framed (JSON: bad-magic) and 3 bytes
 * (short-frame). Prints "produced N" on stdout at the end, then "counts
 * clicks C purchases P bad-magic B short-frame S". Exit 0 when every event was
 * delivered, 1 otherwise. Killing it mid-stream is expected.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"
#include "kafka.h"
#include "synth.h"

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dr_cb(void *opaque, const rd_kafka_message_t *m)
{
    uint64_t *failed = opaque;

    if (m->err)
        (*failed)++;
}

int main(int argc, char **argv)
{
    char errstr[512];
    advrec_conf_t *conf = NULL;
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_kafka_t *producer = NULL;
    rd_kafka_t *p = NULL;
    rd_kafka_resp_err_t err;
    advrec_event_t ev;
    uint64_t events, produced = 0, failed = 0, bad_every = 0;
    uint64_t n_type[2] = {0, 0}, n_bad[2] = {0, 0};
    double rate;
    int rc = 1;
    int64_t t0;

    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: itest_produce BOOTSTRAP EVENTS RATE [SEED "
                        "[BAD_EVERY]]\n");
        return 2;
    }
    events = strtoull(argv[2], NULL, 10);
    rate = atof(argv[3]);
    setvbuf(stdout, NULL, _IOLBF, 0);

    conf = advrec_conf_new(errstr, sizeof(errstr));
    if (!conf)
        goto fail;
    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    if (!codec)
        goto fail;
    for (size_t i = 0; i < conf->schemas_cnt; i++)
        if (advrec_codec_register(codec, conf->schemas[i].id,
                                  conf->schemas[i].path, errstr,
                                  sizeof(errstr)))
            goto fail;

    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.seed = argc >= 5 ? strtoull(argv[4], NULL, 10) : 1;
    bad_every = argc == 6 ? strtoull(argv[5], NULL, 10) : 0;
    sp.n_users = 500;
    sp.n_items = 300;
    sp.max_events = events;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    if (!synth)
        goto fail;

    /* lib/kafka's producer (murmur2_random as the Java client, linger.ms 5,
     * idempotent), as advrecd's and advrec-produce's. */
    advrec_kafka_params_t kp = {
        .role = ADVREC_KAFKA_PRODUCER,
        .bootstraps = argv[1],
        .on_delivery = dr_cb,
        .opaque = &failed,
    };
    if (advrec_kafka_new(&producer, &kp, errstr, sizeof(errstr)))
        goto fail;
    p = advrec_kafka_rk(producer);

    t0 = now_ms();
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        unsigned char buf[2048];
        size_t len;
        int purchase = ev.type == ADVREC_EVENT_PURCHASE;
        const char *topic =
            purchase ? conf->topic_purchases : conf->topic_clicks;

        if (advrec_codec_encode_event(
                codec,
                (int32_t)(purchase ? conf->schema_purchase_id
                                   : conf->schema_click_id),
                &ev, buf, sizeof(buf), &len, errstr, sizeof(errstr)))
            goto fail;
        if ((err = advrec_kafka_produce(producer, topic, ev.user_id,
                                        strlen(ev.user_id), buf, len, NULL, 0,
                                        NULL))) {
            snprintf(errstr, sizeof(errstr), "produce to %s: %s", topic,
                     rd_kafka_err2str(err));
            goto fail;
        }
        produced++;
        n_type[purchase]++;
        if (bad_every && produced % bad_every == 0) {
            static const char json[] = "{\"user_id\":\"u1\"}";
            int k = (int)((produced / bad_every) % 2); /* 0 JSON, 1 short */
            if ((err = advrec_kafka_produce(
                     producer, conf->topic_clicks, ev.user_id,
                     strlen(ev.user_id), k ? "\0\0\0" : json,
                     k ? 3 : sizeof(json) - 1, NULL, 0, NULL))) {
                snprintf(errstr, sizeof(errstr), "produce to %s: %s",
                         conf->topic_clicks, rd_kafka_err2str(err));
                goto fail;
            }
            n_bad[k]++;
        }
        rd_kafka_poll(p, 0);
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)produced * 1000.0 / rate);
            int64_t wait = due - now_ms();
            if (wait > 0)
                rd_kafka_poll(p, (int)wait); /* pacing, serves reports */
        }
    }
    if (rd_kafka_flush(p, 30000) || failed) {
        snprintf(errstr, sizeof(errstr), "%" PRIu64 " event(s) not delivered",
                 failed + (uint64_t)rd_kafka_outq_len(p));
        goto fail;
    }
    printf("produced %" PRIu64 "\n", produced);
    printf("counts clicks %" PRIu64 " purchases %" PRIu64 " bad-magic %" PRIu64
           " short-frame %" PRIu64 "\n",
           n_type[0], n_type[1], n_bad[0], n_bad[1]);
    rc = 0;

fail:
    if (rc)
        fprintf(stderr, "itest_produce: %s\n", errstr);
    advrec_kafka_destroy(producer);
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    return rc;
}
