/*
 * daemon_topics.c - topics the daemon makes and reads back itself, outside
 * its consumer group: a topic's partition count, creating a compacted
 * topic (the changelog, the model topic), and the consumer that reads such
 * topics by assignment. Shared by daemon_changelog.c and daemon_model.c.
 */
#include "daemon_int.h"

#include <stdlib.h>

#include "log.h"
#include "params.h"

#define TOPICS_TIMEOUT_MS 10000

int advrec_daemon__topic_partitions(rd_kafka_t *rk, const char *topic,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr;
    int n = -1;

    if (!rkt) {
        advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                      "cannot look up topic %s", topic);
        return -2;
    }
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, TOPICS_TIMEOUT_MS);
    if (kerr) {
        advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                      "cannot read the metadata of topic %s: %s", topic,
                      rd_kafka_err2str(kerr));
        n = -2;
    } else if (md->topic_cnt == 1 && !md->topics[0].err) {
        n = md->topics[0].partition_cnt;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

advrec_err_t advrec_daemon__topic_create(rd_kafka_t *rk, const char *topic,
                                         int n, int replication, char *errstr,
                                         size_t errstr_size)
{
    char why[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, n, replication, why, sizeof(why));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    advrec_err_t err = ADVREC_OK;

    if (!nt || !q) {
        err = advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                            "cannot create topic %s: %s", topic,
                            nt ? "no queue" : why);
        goto out;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, TOPICS_TIMEOUT_MS + 5000);
    if (!ev || rd_kafka_event_error(ev)) {
        err = advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                            "cannot create topic %s: %s", topic,
                            ev ? rd_kafka_event_error_string(ev) : "timed out");
    } else {
        const rd_kafka_CreateTopics_result_t *res =
            rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
        if (cnt == 1 && rd_kafka_topic_result_error(tr[0]) &&
            rd_kafka_topic_result_error(tr[0]) !=
                RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            err = advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                                "cannot create topic %s: %s", topic,
                                rd_kafka_topic_result_error_string(tr[0]));
        else
            log_notice("created topic %s (%d partitions, "
                       "cleanup.policy=compact)",
                       topic, n);
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return err;
}

advrec_err_t advrec_daemon__reader(advrec_daemon_t *d, advrec_kafka_t **reader,
                                   int quick, char *errstr, size_t errstr_size)
{
    static const advrec_kafka_prop_t forced[] = {
        {"enable.auto.commit", "false", NULL},
        {"enable.partition.eof", "true", NULL},
        {"auto.offset.reset", "earliest", NULL},
        {"group.id", "advrecd-changelog-reader", NULL},
        /* Last (quick only): a restore reads one partition after another
         * to its end, and a fetch must not wait 500 ms for data that is
         * not coming (measured: 0.4 s per partition restored with the
         * default). A reader that stays assigned keeps the default. */
        {"fetch.wait.max.ms", "10", NULL},
    };
    advrec_kafka_params_t p = {0};
    advrec_kafka_prop_t *props;
    advrec_err_t err;

    if (advrec_params_kafka(&p, &props, d->conf, ADVREC_KAFKA_CONSUMER))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    p.defaults = NULL; /* not a member: no group.instance.id */
    p.n_defaults = 0;
    p.forced = forced;
    p.n_forced = sizeof(forced) / sizeof(*forced) - (quick ? 0 : 1);
    p.bootstraps = d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
    err = advrec_kafka_new(reader, &p, errstr, errstr_size);
    free(props);
    return err;
}
