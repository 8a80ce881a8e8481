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

#include "reason.h"

/* Buckets of every latency histogram: upper bounds in seconds (the last,
 * +Inf, is implicit). */
#define ADVREC_METRICS_BUCKETS                                              \
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, \
        10.0, 30.0, 60.0
#define ADVREC_METRICS_BUCKETS_CNT 15
/* Partitions whose consumer lag is kept (the rest are not shown). */
#define ADVREC_METRICS_LAG_MAX 256
/* Distinct (client, error code) pairs of Kafka errors kept. */
#define ADVREC_METRICS_KAFKA_ERRORS 64
/* Anomaly flag reasons, by bit of advrec_detect_flag_t.reasons. */
#define ADVREC_METRICS_FLAG_REASONS 16

/* A latency histogram: counts per bucket (not cumulative), total, sum. */
typedef struct advrec_histogram_s {
    uint64_t bucket[ADVREC_METRICS_BUCKETS_CNT + 1];
    uint64_t count;
    double sum_s;
} advrec_histogram_t;

/* One input partition's consumer lag (librdkafka statistics). */
typedef struct advrec_partition_lag_s {
    int32_t topic; /* 0 clicks, 1 purchases (the input topics, in order) */
    int32_t partition;
    int64_t lag;
} advrec_partition_lag_t;

/* How often a Kafka client's error callback reported one error code
 * (lib/kafka: advrec_kafka_errors). */
typedef struct advrec_kafka_error_stat_s {
    int client;    /* 0 producer, 1 consumer */
    int32_t code;  /* librdkafka's rd_kafka_resp_err_t */
    char name[48]; /* rd_kafka_err2name(code) */
    uint64_t count;
} advrec_kafka_error_stat_t;

typedef struct advrec_counters_s {
    uint64_t rounds;
    uint64_t commits;  /* state commits (one WriteBatch each) */
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
    uint64_t outbox_guard;      /* ... rounds consumed all the same, so
                                   the group keeps this member */
    uint64_t revoked;           /* input partitions revoked (rebalances) */
    uint32_t users, items;
    uint64_t stale; /* gauge: users waiting for a list (the backlog) */
    /* Refreshes on a budget (recs.refresh.*, recs.backlog.policy). */
    double backlog_oldest_s; /* gauge: how long the longest-waiting user
                                has owed a list (0: none owed) */
    int backlog_paused;      /* gauge: consumption paused (policy pause) */
    uint64_t backlog_pauses; /* times it paused */
    uint64_t backlog_paused_rounds; /* rounds that did not consume for it */
    /* Over the last stats interval (set when its line is logged): lists
     * made per second, and the 99th percentile of their staleness from
     * the histogram's buckets (0: no list made). */
    double lists_per_s;
    double staleness_p99_s;
    /* Lists built, by how their items were found: from the approximate
     * index's candidates, or by scoring every item (cold users'
     * popularity lists are neither). */
    uint64_t lists_ann, lists_exact;
    /* The index of recs.retrieval = ann | auto (lib/ann; zeros under
     * exact): builds swapped in, of them with fresh centroids, the last
     * build's wall time and when it finished (Unix seconds; 0: none), the
     * items in the index in use and its lists. */
    uint64_t ann_builds, ann_trainings;
    double ann_last_build_s, ann_last_built_unix_s;
    uint64_t ann_indexed;
    uint32_t ann_nlist;
    uint32_t ann_nprobe;      /* lists searched per query, in use */
    double ann_sample_recall; /* the last build's sampled recall@10 */
    /* The user cache (state.memory.limit): users read back from the store
     * and evicted; users in memory and the estimated resident bytes per
     * user in memory and per item (gauges). */
    uint64_t user_reads, user_evictions;
    uint32_t users_resident;
    /* Users deleted, by cause (ADVREC_DELETE_*: ttl, forget, capacity),
     * and forget requests read (for a user in the state or not). */
    uint64_t users_deleted[3];
    uint64_t forget_requests;
    /* The state changelog (topic.changelog): records produced (user rows,
     * markers, tombstones), acknowledged and failed; partitions restored
     * from it, records read and users restored then, input records of a
     * restored user skipped as already in their row; partitions being
     * restored now (gauge). */
    uint64_t cl_rows, cl_markers, cl_tombstones, cl_acked, cl_failed;
    uint64_t cl_bytes; /* key and value bytes produced to the changelog */
    /* Shared item factors (topic.model): records published (and their
     * bytes), delivery failures, peers' records merged and refused. */
    uint64_t model_published, model_bytes, model_failed, model_merged;
    uint64_t model_refused;
    /* Input partitions fetched again after their fetch stalled. */
    uint64_t consumer_stalls;
    uint64_t cl_restores, cl_restore_records, cl_restored_users, cl_skipped;
    uint32_t cl_restoring;
    double user_bytes, item_bytes;

    /* What the HTTP endpoint shows (docs/OPERATIONS.md, "Metrics and
     * health"); the same single writer. */
    uint64_t events[2][2]; /* applied, by input topic and event type (0
                              click, 1 purchase) */
    uint64_t decode_failed[ADVREC_DLQ__COUNT]; /* by the codec's reason */
    uint64_t dead[ADVREC_DLQ__COUNT];          /* dead letters, by reason */
    uint64_t model_updates;                    /* training steps (version) */
    uint64_t negatives;    /* negatives trained (model.negatives.budget) */
    uint64_t loss_steps;   /* training steps whose loss was averaged */
    double loss_ewma;      /* EWMA of the clean BPR loss per step */
    uint64_t preq_samples; /* prequential samples ranked */
    uint64_t preq_hits;    /* ... whose item was in the list */
    uint64_t flag_reasons[ADVREC_METRICS_FLAG_REASONS]; /* flags (any action)
                                                           by reason bit */
    advrec_histogram_t staleness; /* first unserved event -> list made */
    advrec_histogram_t refresh;   /* one engine refresh (rank + produce) */
    advrec_histogram_t round;     /* one whole round */
    uint32_t partitions;          /* gauge: input partitions assigned */
    uint64_t offsets_lost; /* partitions resumed by state.offset.missing */
    /* Schema Registry (schema.registry.url; registry_up -1: none) */
    int registry_up;               /* gauge: 1 last request answered, 0 not */
    uint64_t registry_requests[3]; /* by result: answered, refused, failed */
    uint64_t registry_fetched;     /* writer schemas fetched and usable */
    uint64_t registry_held;        /* records held back (not DLQ'd) */
    uint64_t registry_held_partitions; /* gauge: partitions waiting */
    uint32_t n_lag;
    advrec_partition_lag_t lag[ADVREC_METRICS_LAG_MAX];
    /* The input partitions assigned now (lag unused; the first
     * ADVREC_METRICS_LAG_MAX), in the order they came. */
    uint32_t n_owned;
    advrec_partition_lag_t owned[ADVREC_METRICS_LAG_MAX];
    uint32_t n_kafka_errors;
    advrec_kafka_error_stat_t kafka_errors[ADVREC_METRICS_KAFKA_ERRORS];
    uint64_t kafka_errors_total; /* sum of kafka_errors[].count */
    int64_t store_sst_bytes;     /* gauge: RocksDB SST files; -1: none */
    int64_t store_pending_bytes; /* gauge: pending compaction; -1: none */
    int64_t loaded_ms;    /* monotonic ms the state was loaded; 0: not yet */
    int64_t round_end_ms; /* monotonic ms the last round ended; 0: none */
    int stopping;         /* run() left its loop */
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

/* Publishes the writer's counters for readers, nothing else (no stats
 * line): for figures set outside the rounds (state loaded, stopping). */
void advrec_metrics_share(advrec_metrics_t *metrics);

/* Adds one observation of seconds to a histogram (the writer's). */
void advrec_histogram_observe(advrec_histogram_t *histogram, double seconds);

/*
 * The q-quantile (0 < q <= 1) of the observations added to histogram since
 * the copy before was taken (before may be NULL: all of them), estimated
 * as Prometheus' histogram_quantile() does: linear within the bucket it
 * falls in; in the +Inf bucket, the largest finite bound. 0 when none.
 */
double advrec_histogram_quantile(const advrec_histogram_t *histogram,
                                 const advrec_histogram_t *before, double q);

/*
 * The names of the two input topics, for the metrics' labels (copied).
 * ADVREC_ERR_NOMEM, or ADVREC_OK.
 */
advrec_err_t advrec_metrics_set_topics(advrec_metrics_t *metrics,
                                       const char *clicks,
                                       const char *purchases);

/*
 * The last published counters in Prometheus' text exposition format
 * (version 0.0.4), plus the process's resident memory read now from
 * /proc/self/statm (metrics_text.c). Any thread. Returns a malloc'ed,
 * NUL-terminated text the caller frees, its length in *len; NULL on no
 * memory.
 */
char *advrec_metrics_prometheus(const advrec_metrics_t *metrics, size_t *len);

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

/*
 * The memory gauges (lib/memlimit's monitor thread, the one writer of
 * these; any thread reads them): the tightest memory limit in bytes (-1:
 * none), the bytes counted against it (-1: no limit), and whether memory is
 * short (1) or not (0). Not part of the counters: the monitor is not the
 * processing thread, and must report while that thread is stuck.
 */
void advrec_metrics_set_memory(advrec_metrics_t *metrics, int64_t limit,
                               int64_t used, int short_of);

#endif
