/*
 * metrics.h - the daemon's figures: counters, the periodic stats line and
 * systemd's STATUS=, with one reader API.
 *
 * The processing thread is the only writer: it updates the counters it gets
 * from advrec_metrics_counters() as it goes, and publishes them once per
 * round (advrec_metrics_publish), which makes a consistent copy that any
 * thread may read (advrec_metrics_read: tests, the demo, an HTTP endpoint)
 * and, every stats.interval.ms, logs the stats line and tells systemd the
 * STATUS=. The lifecycle notifications (READY=1, STOPPING=1) and the
 * watchdog's WATCHDOG=1 go through here too, so the daemon has one place
 * that talks to its supervisor.
 */
#ifndef ADVREC_METRICS_H
#define ADVREC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct advrec_counters_s {
    uint64_t rounds;
    uint64_t consumed; /* records read from the input topics */
    uint64_t clicks;   /* applied events, by type */
    uint64_t purchases;
    uint64_t dlq;           /* records dead-lettered (recorded in the outbox) */
    uint64_t dlq_delivered; /* ... of which acknowledged by the broker */
    uint64_t dlq_truncated; /* ... re-sent truncated (too large) */
    uint64_t recs;          /* recommendation lists produced */
    uint64_t recs_popular;  /* ... of which cold-start popularity lists */
    uint64_t delivered;     /* output messages acknowledged by the broker */
    uint64_t delivery_failed;
    uint64_t backpressure;      /* times the producer queue was full */
    uint64_t flags;             /* anomaly flags raised (any action) */
    uint64_t flags_quarantined; /* ... of which QUARANTINED */
    uint64_t flags_cleared;     /* ... of which CLEARED */
    uint64_t downweighted;      /* events trained with weight < 1 (or 0) */
    uint64_t outbox_pending;    /* gauge: flags and dead letters committed,
                                   not yet acknowledged (includes the last
                                   run's) */
    uint64_t outbox_paused;     /* rounds not consumed: outbox full */
    uint32_t users, items;
    uint64_t stale; /* gauge: users waiting for a list */
} advrec_counters_t;

typedef struct advrec_metrics_s advrec_metrics_t;

/* New metrics; the stats line every interval_ms (0: only the final one).
 * NULL on no memory. Owned by the caller (advrec_metrics_destroy). */
advrec_metrics_t *advrec_metrics_new(int64_t interval_ms);

void advrec_metrics_destroy(advrec_metrics_t *metrics);

/* The writer's counters (the processing thread only). */
advrec_counters_t *advrec_metrics_counters(advrec_metrics_t *metrics);

/*
 * Publishes the writer's counters for readers; at now_ms (monotonic) past
 * the interval, or with final, also logs the stats line (rates since the
 * last one) and sends STATUS=. Returns 1 when a line was logged (the
 * caller's per-interval log budgets start again), else 0.
 */
int advrec_metrics_publish(advrec_metrics_t *metrics, int64_t now_ms,
                           int final);

/* A consistent copy of the last published counters (any thread). */
void advrec_metrics_read(const advrec_metrics_t *metrics,
                         advrec_counters_t *out);

/* Lifecycle: READY=1 (rounds begin at now_ms) and STOPPING=1 to systemd
 * (no-ops without it). */
void advrec_metrics_ready(advrec_metrics_t *metrics, int64_t now_ms);
void advrec_metrics_stopping(advrec_metrics_t *metrics);

/*
 * Feeds systemd's watchdog: sends WATCHDOG=1 when half of the interval
 * sd_watchdog_enabled(3) reported at advrec_metrics_new() (WatchdogSec=)
 * has passed since the last one (or READY=1), at now_ms (monotonic). Cheap
 * enough for every round and every backpressure wait; a no-op without a
 * watchdog or without libsystemd. The processing thread only: a loop that
 * stops calling it is what the watchdog is there to catch.
 */
void advrec_metrics_watchdog(advrec_metrics_t *metrics, int64_t now_ms);

/* How often advrec_metrics_watchdog() sends WATCHDOG=1, in ms; 0: never. */
int64_t advrec_metrics_watchdog_ms(const advrec_metrics_t *metrics);

#endif
