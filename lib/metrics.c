/*
 * metrics.c - counters, the stats line and systemd notifications.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_int.h"

#include "log.h"

#ifdef ADVREC_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define notify(...) sd_notifyf(0, __VA_ARGS__)
#else
#define notify(...) ((void)0)
#endif

struct advrec_metrics_s {
    int64_t interval_ms;
    advrec_counters_t now;   /* the writer's */
    advrec_counters_t shown; /* the published copy */
    pthread_mutex_t lock;    /* guards shown */
    advrec_counters_t last;  /* at the last stats line */
    int64_t last_ms;
    char *topics[2];          /* the input topics' names, for labels */
    int64_t watchdog_ms;      /* WATCHDOG=1 this often; 0: no watchdog */
    int64_t watchdog_last_ms; /* the last one sent */
    /* advrec_metrics_set_memory's, guarded by lock. */
    int64_t mem_limit, mem_used;
    int mem_short;
};

advrec_metrics_t *advrec_metrics_new(int64_t interval_ms)
{
    advrec_metrics_t *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->interval_ms = interval_ms;
    /* No registry until the daemon says it has one. */
    m->now.registry_up = m->shown.registry_up = m->last.registry_up = -1;
    m->mem_limit = m->mem_used = -1;
    pthread_mutex_init(&m->lock, NULL);
#ifdef ADVREC_HAVE_SYSTEMD
    {
        /* WATCHDOG_USEC (WatchdogSec=) for this process: ping at half of
         * it, as sd_watchdog_enabled(3) advises. */
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
            m->watchdog_ms = (int64_t)(usec / 2000);
            if (m->watchdog_ms < 1)
                m->watchdog_ms = 1;
        }
    }
#endif
    return m;
}

void advrec_metrics_destroy(advrec_metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->topics[0]);
    free(m->topics[1]);
    free(m);
}

advrec_counters_t *advrec_metrics_counters(advrec_metrics_t *m)
{
    return &m->now;
}

int advrec_metrics_publish(advrec_metrics_t *m, int64_t now_ms, int final)
{
    advrec_counters_t *s = &m->now;
    const advrec_counters_t *l = &m->last;
    int line =
        final || (m->interval_ms > 0 && now_ms - m->last_ms >= m->interval_ms);
    double secs = (double)(now_ms - m->last_ms) / 1000.0;

    if (secs <= 0)
        secs = 1e-3;
    /* The interval's figures go into the published copy too (/metrics). */
    if (line) {
        s->lists_per_s = (double)(s->recs - l->recs) / secs;
        s->staleness_p99_s =
            advrec_histogram_quantile(&s->staleness, &l->staleness, 0.99);
    }
    pthread_mutex_lock(&m->lock);
    m->shown = *s;
    pthread_mutex_unlock(&m->lock);
    if (!line)
        return 0;
    log_info(
        "%s: %.0f events/s, %.0f lists/s; total %llu clicks, %llu "
        "purchases, %llu lists, %llu dlq (%llu delivered), %llu flags "
        "(%llu quarantined, %llu cleared, %llu events down-weighted), "
        "%llu outputs pending; %u users (%u in memory, %llu read back, "
        "%llu evicted), %u items, %llu stale (oldest owed %.1f s, list "
        "staleness p99 %.3f s%s)",
        final ? "final" : "stats",
        (double)(s->clicks + s->purchases - l->clicks - l->purchases) / secs,
        s->lists_per_s, (unsigned long long)s->clicks,
        (unsigned long long)s->purchases, (unsigned long long)s->recs,
        (unsigned long long)s->dlq, (unsigned long long)s->dlq_delivered,
        (unsigned long long)s->flags, (unsigned long long)s->flags_quarantined,
        (unsigned long long)s->flags_cleared,
        (unsigned long long)s->downweighted,
        (unsigned long long)s->outbox_pending, s->users, s->users_resident,
        (unsigned long long)s->user_reads,
        (unsigned long long)s->user_evictions, s->items,
        (unsigned long long)s->stale, s->backlog_oldest_s, s->staleness_p99_s,
        s->backlog_paused ? ", consumption paused" : "");
    notify("STATUS=%llu events, %llu lists, %llu dlq, %u users",
           (unsigned long long)(s->clicks + s->purchases),
           (unsigned long long)s->recs, (unsigned long long)s->dlq, s->users);
    m->last = *s;
    m->last_ms = now_ms;
    return 1;
}

void advrec_metrics_read(const advrec_metrics_t *m, advrec_counters_t *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    *out = m->shown;
    pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}

void advrec_metrics_ready(advrec_metrics_t *m, int64_t now_ms)
{
    m->last_ms = now_ms;
    m->watchdog_last_ms = now_ms;
    notify("READY=1");
}

void advrec_metrics_watchdog(advrec_metrics_t *m, int64_t now_ms)
{
    if (m->watchdog_ms == 0 || now_ms - m->watchdog_last_ms < m->watchdog_ms)
        return;
    m->watchdog_last_ms = now_ms;
    notify("WATCHDOG=1");
}

int64_t advrec_metrics_watchdog_ms(const advrec_metrics_t *m)
{
    return m->watchdog_ms;
}

void advrec_metrics_stopping(advrec_metrics_t *m)
{
    (void)m;
    notify("STOPPING=1");
}

void advrec_metrics_share(advrec_metrics_t *m)
{
    pthread_mutex_lock(&m->lock);
    m->shown = m->now;
    pthread_mutex_unlock(&m->lock);
}

void advrec_histogram_observe(advrec_histogram_t *h, double seconds)
{
    static const double bounds[] = {ADVREC_METRICS_BUCKETS};
    size_t b = 0;

    while (b < ADVREC_METRICS_BUCKETS_CNT && seconds > bounds[b])
        b++;
    h->bucket[b]++;
    h->count++;
    h->sum_s += seconds;
}

double advrec_histogram_quantile(const advrec_histogram_t *h,
                                 const advrec_histogram_t *before, double q)
{
    static const double bounds[] = {ADVREC_METRICS_BUCKETS};
    uint64_t count = h->count - (before ? before->count : 0), cum = 0;
    double rank;

    if (count == 0)
        return 0;
    rank = q * (double)count;
    for (size_t b = 0; b < ADVREC_METRICS_BUCKETS_CNT; b++) {
        uint64_t in = h->bucket[b] - (before ? before->bucket[b] : 0);
        double lo = b ? bounds[b - 1] : 0;
        if (in && (double)(cum + in) >= rank)
            return lo + (bounds[b] - lo) * (rank - (double)cum) / (double)in;
        cum += in;
    }
    return bounds[ADVREC_METRICS_BUCKETS_CNT - 1];
}

advrec_err_t advrec_metrics_set_topics(advrec_metrics_t *m, const char *clicks,
                                       const char *purchases)
{
    char *c = strdup(clicks), *p = strdup(purchases);

    if (!c || !p) {
        free(c);
        free(p);
        return ADVREC_ERR_NOMEM;
    }
    free(m->topics[0]);
    free(m->topics[1]);
    m->topics[0] = c;
    m->topics[1] = p;
    return ADVREC_OK;
}

const char *advrec_metrics__topic(const advrec_metrics_t *m, int topic)
{
    return m->topics[topic] ? m->topics[topic] : "";
}

void advrec_metrics_set_memory(advrec_metrics_t *m, int64_t limit, int64_t used,
                               int short_of)
{
    pthread_mutex_lock(&m->lock);
    m->mem_limit = limit;
    m->mem_used = used;
    m->mem_short = short_of;
    pthread_mutex_unlock(&m->lock);
}

void advrec_metrics__memory(const advrec_metrics_t *m, int64_t *limit,
                            int64_t *used, int *short_of)
{
    pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    *limit = m->mem_limit;
    *used = m->mem_used;
    *short_of = m->mem_short;
    pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}
