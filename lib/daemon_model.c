/*
 * daemon_model.c - item factors shared by the daemons of a group
 * (topic.model; lib/itemsync; docs/ARCHITECTURE.md, "Shared item factors").
 *
 * Every daemon trains the item rows its own partitions' events touch. Every
 * model.sync.interval.ms it publishes, for each item it trained since, its
 * cumulative contribution (keyed "<instance>/<item id>") to the compacted
 * model topic, and every round it reads the others' records (a consumer
 * assigned every partition of the topic, never in the group) and adds what
 * each peer's total grew by. At start the topic is read from its beginning
 * first: every instance's latest total rebuilds the exchange (a restart
 * keeps its own contribution and counts each peer's once). The instance id
 * is the state's lineage id (stable across restarts of one state dir), or a
 * random one with state in memory.
 *
 * Item rows changed by a merge are written by the next state commit like
 * trained ones. A record that fails to be delivered reaches the peers with
 * the item's next publish (records carry totals).
 */
#include "daemon_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itemsync.h"
#include "log.h"
#include "params.h"

#define MODEL_MAX_PEERS   256
#define MODEL_POLL_MAX    10000 /* records merged per round at most */
#define MODEL_TIMEOUT_MS  10000
#define MODEL_STALL_MS    120000
#define MODEL_LOG_REFUSED 10

struct advrec_daemon_model_s {
    advrec_itemsync_t *sync;
    advrec_kafka_t *reader;
    int64_t published_ms;
    uint64_t refused_logged;
    uint64_t recovered; /* others' records read at start */
};

/* The counters from the exchange's own (it tells the others' records from
 * this daemon's own read back). */
static void count(advrec_daemon_t *d)
{
    advrec_itemsync_stats_t st;

    advrec_itemsync_stats(d->model->sync, &st);
    d->c->model_merged = st.merged + d->model->recovered;
    d->c->model_refused = st.refused;
}

static int emit(void *opaque, const char *key, size_t key_len,
                const uint8_t *value, size_t value_len)
{
    advrec_daemon_t *d = opaque;
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        advrec_kafka_rk(d->producer), RD_KAFKA_V_TOPIC(d->conf->topic_model),
        RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)ADVREC_TAG_MODEL), RD_KAFKA_V_END);

    if (kerr)
        return -1; /* queue full: the rest stay owed, next round */
    d->c->model_published++;
    d->c->model_bytes += key_len + value_len;
    return 0;
}

int advrec_daemon__model_delivered(advrec_daemon_t *d,
                                   const rd_kafka_message_t *m)
{
    if (ADVREC_TAG_KIND(m->_private) != ADVREC_TAG_MODEL)
        return 0;
    if (m->err) {
        /* The item's total goes out again with the next publish. */
        d->c->model_failed++;
        if (d->model)
            (void)advrec_itemsync_owe(d->model->sync, m->key, m->key_len);
    }
    return 1;
}

void advrec_daemon__model_publish(advrec_daemon_t *d)
{
    char why[512];

    if (!d->model)
        return;
    d->model->published_ms = now_ms();
    if (advrec_itemsync_publish(d->model->sync, emit, d, NULL, why,
                                sizeof(why)) == ADVREC_ERR_NOMEM)
        log_err("model: %s", why);
}

/* One peer's record into the item rows (a bad one is logged and counted:
 * the item keeps its row). */
static void merge(advrec_daemon_t *d, const rd_kafka_message_t *m,
                  int recovering)
{
    advrec_daemon_model_t *mo = d->model;
    char why[512];
    advrec_err_t err;

    if (!m->key) {
        err = ADVREC_ERR_DECODE;
        snprintf(why, sizeof(why), "a record without a key");
    } else if (recovering) {
        err = advrec_itemsync_recover(mo->sync, m->key, m->key_len, m->payload,
                                      m->len, why, sizeof(why));
    } else {
        err = advrec_itemsync_merge(mo->sync, m->key, m->key_len, m->payload,
                                    m->len, why, sizeof(why));
    }
    if (!err)
        return;
    if (!m->key)
        d->c->model_refused++;
    if (mo->refused_logged++ < MODEL_LOG_REFUSED)
        log_err("model: %s [%d] @%lld refused: %s%s", d->conf->topic_model,
                (int)m->partition, (long long)m->offset, why,
                mo->refused_logged == MODEL_LOG_REFUSED
                    ? " (more are only counted: advrec_model_records_total)"
                    : "");
}

void advrec_daemon__model_round(advrec_daemon_t *d)
{
    advrec_daemon_model_t *mo = d->model;
    rd_kafka_t *rk;

    if (!mo)
        return;
    rk = advrec_kafka_rk(mo->reader);
    for (int n = 0; n < MODEL_POLL_MAX; n++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
        if (!m)
            break;
        if (!m->err)
            merge(d, m, 0);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warning("model: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    count(d);
    if (now_ms() - mo->published_ms >= d->conf->model_sync_interval_ms)
        advrec_daemon__model_publish(d);
}

/* Reads the whole topic (every partition to the end it had at start) into
 * the exchange, then rebuilds the rows from it. */
static advrec_err_t recover(advrec_daemon_t *d, int n, char *errstr,
                            size_t errstr_size)
{
    advrec_daemon_model_t *mo = d->model;
    rd_kafka_t *rk = advrec_kafka_rk(mo->reader);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int64_t *end = calloc((size_t)n + 1, sizeof(*end)), *next;
    int64_t t0 = now_ms(), last = t0, records = 0;
    int left = 0;
    rd_kafka_resp_err_t kerr;
    advrec_itemsync_stats_t st;

    next = calloc((size_t)n + 1, sizeof(*next));
    if (!l || !end || !next) {
        free(end);
        free(next);
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    }
    for (int p = 0; p < n; p++) {
        int64_t lo = 0;
        int64_t deadline = now_ms() + MODEL_TIMEOUT_MS;
        do {
            kerr = rd_kafka_query_watermark_offsets(
                rk, d->conf->topic_model, p, &lo, &end[p], MODEL_TIMEOUT_MS);
            if (kerr) {
                struct timespec ts = {0, 100 * 1000000};
                nanosleep(&ts, NULL); /* a new topic's leader is elected */
            }
        } while (kerr && now_ms() < deadline);
        if (kerr) {
            free(end);
            free(next);
            rd_kafka_topic_partition_list_destroy(l);
            return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                                 "cannot read the end of %s [%d]: %s",
                                 d->conf->topic_model, p,
                                 rd_kafka_err2str(kerr));
        }
        left += end[p] > 0;
        rd_kafka_topic_partition_list_add(l, d->conf->topic_model, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    kerr = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (kerr) {
        free(end);
        free(next);
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot read %s: %s", d->conf->topic_model,
                             rd_kafka_err2str(kerr));
    }
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        int p;
        if (!m) {
            if (now_ms() - last > MODEL_STALL_MS) {
                free(end);
                free(next);
                return advrec_seterr(ADVREC_ERR_TIMEOUT, errstr, errstr_size,
                                     "%s: no record for two minutes while "
                                     "reading it at start",
                                     d->conf->topic_model);
            }
            continue;
        }
        p = m->partition;
        if (p >= 0 && p < n && next[p] < end[p]) {
            if (!m->err) {
                char *k = (char *)m->key;
                merge(d, m, 1);
                records++;
                last = now_ms();
                /* Others' records (a key is "<instance>/<item>"). */
                if (k &&
                    m->key_len > strlen(advrec_itemsync_instance(mo->sync)) &&
                    !(memcmp(k, advrec_itemsync_instance(mo->sync),
                             strlen(advrec_itemsync_instance(mo->sync))) == 0 &&
                      k[strlen(advrec_itemsync_instance(mo->sync))] == '/'))
                    mo->recovered++;
            }
            if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                next[p] = m->err ? m->offset : m->offset + 1;
                if (next[p] >= end[p])
                    left--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(end);
    free(next);
    advrec_itemsync_recovered(mo->sync);
    count(d);
    advrec_itemsync_stats(mo->sync, &st);
    log_notice("model: %s read at start: %lld records of %u other "
               "instance(s) in %.1f s",
               d->conf->topic_model, (long long)records, st.peers,
               (double)(now_ms() - t0) / 1000.0);
    return ADVREC_OK;
}

advrec_err_t advrec_daemon__model_start(advrec_daemon_t *d, char *errstr,
                                        size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    advrec_engine_params_t ep;
    advrec_itemsync_params_t sp;
    char instance[40];
    int n, inputs;
    advrec_err_t err;

    if (!conf->topic_model[0])
        return ADVREC_OK;
    if (!(d->model = calloc(1, sizeof(*d->model))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    if (d->store) {
        snprintf(instance, sizeof(instance), "%s", advrec_store_id(d->store));
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(instance, sizeof(instance), "m%08lx%08lx",
                 (unsigned long)ts.tv_nsec, (unsigned long)getpid());
    }
    advrec_params_engine(&ep, conf);
    memset(&sp, 0, sizeof(sp));
    sp.instance = instance;
    sp.apr = ep.apr;
    sp.share_acc = 1;
    sp.max_peers = MODEL_MAX_PEERS;
    if (!(d->model->sync = advrec_itemsync_new(
              &sp, advrec_engine_state(d->engine), errstr, errstr_size)))
        return ADVREC_ERR_CONFIG;
    inputs = advrec_daemon__topic_partitions(
        advrec_kafka_rk(d->consumer), conf->topic_clicks, errstr, errstr_size);
    if (inputs == -2)
        return ADVREC_ERR_KAFKA;
    n = advrec_daemon__topic_partitions(advrec_kafka_rk(d->consumer),
                                        conf->topic_model, errstr, errstr_size);
    if (n == -2)
        return ADVREC_ERR_KAFKA;
    if (n < 0) {
        n = inputs > 0 ? inputs : 1;
        if ((err = advrec_daemon__topic_create(
                 advrec_kafka_rk(d->producer), conf->topic_model, n,
                 (int)conf->topic_changelog_replication, errstr, errstr_size)))
            return err;
    }
    if ((err = advrec_daemon__reader(d, &d->model->reader, 0, errstr,
                                     errstr_size)) ||
        (err = recover(d, n, errstr, errstr_size)))
        return err;
    d->model->published_ms = now_ms();
    log_notice("model: item factors shared through %s as instance %s, "
               "published every %lld ms",
               conf->topic_model, instance,
               (long long)conf->model_sync_interval_ms);
    return ADVREC_OK;
}

void advrec_daemon__model_destroy(advrec_daemon_t *d)
{
    if (!d->model)
        return;
    if (d->model->reader) {
        (void)rd_kafka_consumer_close(advrec_kafka_rk(d->model->reader));
        advrec_kafka_destroy(d->model->reader);
    }
    advrec_itemsync_destroy(d->model->sync);
    free(d->model);
    d->model = NULL;
}
