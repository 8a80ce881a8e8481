/*
 * daemon_probe.c - the ends of the input partitions the stall watch looks
 * at, asked of the brokers on a thread and a client of their own.
 *
 * Why: librdkafka's statistics give a partition's end (high watermark)
 * from its own fetch responses, so a fetcher that stopped asking leaves
 * the end it last saw, and the partition looks caught up while records
 * wait on the broker (librdkafka 2.0.2 after a leader change; see
 * docs/RELIABILITY.md, "Broker faults"). The probe asks the partition's
 * leader (ListOffsets) instead. It has its own client so that nothing the
 * consumer's fetcher is stuck on is shared, and its own thread so that the
 * processing thread never waits on the network.
 *
 * Protocol: at each statistics callback the processing thread hands over
 * the partitions it watches (advrec_daemon__probe_want) and reads the ends
 * found so far (advrec_daemon__probe_end); the thread asks for them once
 * per LAG_INTERVAL_MS. Both sides meet only under the probe's lock.
 */
#include "daemon_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* One ListOffsets answer waited for at most this long, so a stop waits
 * at most this long when the brokers are away. */
#define PROBE_TIMEOUT_MS 1000

struct advrec_daemon_probe_s {
    advrec_kafka_t *client; /* the probe's own (a reader: no group) */
    char *topics[3];        /* the input topics by TOPIC_* (NULL: none) */
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    int stop;
    /* Wanted by the processing thread, and the ends found: end -1 while
     * not known. The same slots on both sides. */
    struct probe_slot_s {
        int topic;
        int32_t partition;
        int64_t end;
    } slot[ADVREC_METRICS_LAG_MAX];
    uint32_t n_slot;
};

static void *probe_main(void *arg)
{
    advrec_daemon_probe_t *pr = arg;
    rd_kafka_t *rk = advrec_kafka_rk(pr->client);
    struct probe_slot_s want[ADVREC_METRICS_LAG_MAX];
    uint32_t n;

    pthread_mutex_lock(&pr->lock);
    while (!pr->stop) {
        struct timespec until;
        n = pr->n_slot;
        memcpy(want, pr->slot, n * sizeof(*want));
        pthread_mutex_unlock(&pr->lock);
        for (uint32_t i = 0; i < n; i++) {
            int64_t lo, hi;
            int stop;
            rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
                rk, pr->topics[want[i].topic], want[i].partition, &lo, &hi,
                PROBE_TIMEOUT_MS);
            pthread_mutex_lock(&pr->lock);
            /* The slot may have moved meanwhile: matched by name. A
             * failed answer keeps the end known (the watch wants a fresh
             * one only when the broker can give it). */
            for (uint32_t j = 0; !kerr && j < pr->n_slot; j++)
                if (pr->slot[j].topic == want[i].topic &&
                    pr->slot[j].partition == want[i].partition &&
                    pr->slot[j].end != hi) {
                    log_debug("probe: %s [%d] ends at %lld",
                              pr->topics[want[i].topic], (int)want[i].partition,
                              (long long)hi);
                    pr->slot[j].end = hi;
                }
            stop = pr->stop;
            pthread_mutex_unlock(&pr->lock);
            if (stop)
                break;
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += LAG_INTERVAL_MS / 1000;
        pthread_mutex_lock(&pr->lock);
        if (!pr->stop)
            pthread_cond_timedwait(&pr->cond, &pr->lock, &until);
    }
    pthread_mutex_unlock(&pr->lock);
    return NULL;
}

advrec_err_t advrec_daemon__probe_start(advrec_daemon_t *d, char *errstr,
                                        size_t errstr_size)
{
    advrec_daemon_probe_t *pr;
    advrec_err_t err;

    if (d->conf->consumer_stall_ms <= 0)
        return ADVREC_OK; /* the watch is off */
    if (!(pr = calloc(1, sizeof(*pr))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    d->probe = pr;
    pthread_mutex_init(&pr->lock, NULL);
    pthread_cond_init(&pr->cond, NULL);
    for (int t = 0; t < 3; t++)
        if (d->inputs[t] && !(pr->topics[t] = strdup(d->inputs[t])))
            return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
    if ((err = advrec_daemon__reader(d, &pr->client, 0, errstr, errstr_size)))
        return err;
    if (pthread_create(&pr->thread, NULL, probe_main, pr))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "cannot start the partition end probe thread");
    pr->started = 1;
    return ADVREC_OK;
}

void advrec_daemon__probe_destroy(advrec_daemon_t *d)
{
    advrec_daemon_probe_t *pr = d->probe;

    if (!pr)
        return;
    if (pr->started) {
        pthread_mutex_lock(&pr->lock);
        pr->stop = 1;
        pthread_cond_signal(&pr->cond);
        pthread_mutex_unlock(&pr->lock);
        pthread_join(pr->thread, NULL);
    }
    advrec_kafka_destroy(pr->client);
    for (int t = 0; t < 3; t++)
        free(pr->topics[t]);
    pthread_cond_destroy(&pr->cond);
    pthread_mutex_destroy(&pr->lock);
    free(pr);
    d->probe = NULL;
}

void advrec_daemon__probe_want(advrec_daemon_t *d)
{
    advrec_daemon_probe_t *pr = d->probe;
    struct probe_slot_s next[ADVREC_METRICS_LAG_MAX];
    uint32_t n = 0;

    if (!pr)
        return;
    pthread_mutex_lock(&pr->lock);
    for (uint32_t i = 0; i < d->n_stall; i++) {
        const struct advrec_daemon_stall_s *e = &d->stall[i];
        if (!pr->topics[e->topic])
            continue;
        next[n].topic = e->topic;
        next[n].partition = e->partition;
        next[n].end = -1;
        for (uint32_t j = 0; j < pr->n_slot; j++) /* keep what is known */
            if (pr->slot[j].topic == e->topic &&
                pr->slot[j].partition == e->partition)
                next[n].end = pr->slot[j].end;
        n++;
    }
    memcpy(pr->slot, next, n * sizeof(*next));
    pr->n_slot = n;
    pthread_mutex_unlock(&pr->lock);
}

int64_t advrec_daemon__probe_end(advrec_daemon_t *d, int topic,
                                 int32_t partition)
{
    advrec_daemon_probe_t *pr = d->probe;
    int64_t end = -1;

    if (!pr)
        return -1;
    pthread_mutex_lock(&pr->lock);
    for (uint32_t j = 0; j < pr->n_slot; j++)
        if (pr->slot[j].topic == topic && pr->slot[j].partition == partition)
            end = pr->slot[j].end;
    pthread_mutex_unlock(&pr->lock);
    return end;
}
