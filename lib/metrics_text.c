/*
 * metrics_text.c - the published counters in Prometheus' text exposition
 * format (version 0.0.4): what GET /metrics serves (lib/http).
 *
 * Every family is written every time, zeros included, so a scrape always
 * has the same series and a rate() never starts from a missing one. Names
 * follow Prometheus' conventions: advrec_ prefix, the unit in the name,
 * counters end in _total. docs/OPERATIONS.md lists each family; nothing
 * here can carry configuration values, so no secret reaches a scrape.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect.h"
#include "metrics_int.h"

typedef struct text_s {
    char *buf;
    size_t len, size;
    int nomem;
} text_t;

static void put(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends to the text; on no memory sets nomem and ignores the rest. */
static void put(text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->nomem)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->nomem = 1;
            return;
        }
        if ((size_t)n < t->size - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t size = t->size * 2 + (size_t)n;
        char *bigger = realloc(t->buf, size);
        if (!bigger) {
            t->nomem = 1;
            return;
        }
        t->buf = bigger;
        t->size = size;
    }
}

static void family(text_t *t, const char *name, const char *type,
                   const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: \\, \" and \n escaped. Topic and
 * reason names never contain them; this keeps the text valid if one did. */
static const char *label(const char *in, char *out, size_t size)
{
    size_t o = 0;

    for (; *in && o + 3 < size; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[o++] = '\\';
            out[o++] = *in == '\n' ? 'n' : *in;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
    return out;
}

static void histogram(text_t *t, const char *name, const char *help,
                      const advrec_histogram_t *h)
{
    static const double bounds[] = {ADVREC_METRICS_BUCKETS};
    uint64_t cum = 0;

    family(t, name, "histogram", help);
    for (size_t b = 0; b < ADVREC_METRICS_BUCKETS_CNT; b++) {
        cum += h->bucket[b];
        put(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(t, "%s_sum %.6f\n%s_count %llu\n", name, h->sum_s, name,
        (unsigned long long)h->count);
}

static void counter(text_t *t, const char *name, const char *help, uint64_t v)
{
    family(t, name, "counter", help);
    put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(text_t *t, const char *name, const char *help, double v)
{
    family(t, name, "gauge", help);
    put(t, "%s %.17g\n", name, v);
}

/* Resident set size from /proc/self/statm; -1 when unreadable. */
static double resident_bytes(void)
{
    unsigned long long size, rss;
    FILE *f = fopen("/proc/self/statm", "r");
    int ok;

    if (!f)
        return -1;
    ok = fscanf(f, "%llu %llu", &size, &rss) == 2;
    fclose(f);
    return ok ? (double)rss * (double)sysconf(_SC_PAGESIZE) : -1;
}

char *advrec_metrics_prometheus(const advrec_metrics_t *m, size_t *len)
{
    static const char *types[] = {"click", "purchase"};
    advrec_counters_t *c = malloc(sizeof(*c));
    text_t t = {.size = 16384};
    char l1[256], l2[256];
    int64_t mem_limit, mem_used;
    int mem_short;

    t.buf = malloc(t.size);
    if (!c || !t.buf) {
        free(c);
        free(t.buf);
        return NULL;
    }
    advrec_metrics_read(m, c);

    counter(&t, "advrec_records_consumed_total",
            "Records read from the input topics (applied or dead-lettered).",
            c->consumed);
    family(&t, "advrec_events_total", "counter",
           "Input events applied to the model, by input topic and event "
           "type.");
    for (int tp = 0; tp < 2; tp++)
        for (int ty = 0; ty < 2; ty++)
            put(&t, "advrec_events_total{topic=\"%s\",type=\"%s\"} %llu\n",
                label(advrec_metrics__topic(m, tp), l1, sizeof(l1)), types[ty],
                (unsigned long long)c->events[tp][ty]);
    family(&t, "advrec_decode_failures_total", "counter",
           "Input records the codec refused, by reason (each is also a dead "
           "letter).");
    for (int r = 1; r < ADVREC_DLQ__COUNT; r++)
        if (r != ADVREC_DLQ_TABLE_FULL && r != ADVREC_DLQ_NO_MEMORY &&
            r != ADVREC_DLQ_INTERNAL && r != ADVREC_DLQ_BAD_CONTROL)
            put(&t, "advrec_decode_failures_total{reason=\"%s\"} %llu\n",
                advrec_dlq_reason_name((advrec_dlq_reason_t)r),
                (unsigned long long)c->decode_failed[r]);
    family(&t, "advrec_dead_letters_total", "counter",
           "Input records recorded for the dead-letter topic, by reason "
           "(advrec.error header).");
    for (int r = 1; r < ADVREC_DLQ__COUNT; r++)
        put(&t, "advrec_dead_letters_total{reason=\"%s\"} %llu\n",
            advrec_dlq_reason_name((advrec_dlq_reason_t)r),
            (unsigned long long)c->dead[r]);
    counter(&t, "advrec_dead_letters_delivered_total",
            "Dead letters acknowledged by the broker.", c->dlq_delivered);
    counter(&t, "advrec_dead_letters_truncated_total",
            "Dead letters re-sent truncated because the broker refused them "
            "as too large.",
            c->dlq_truncated);

    counter(&t, "advrec_model_updates_total",
            "APR training steps taken (the model version lists carry).",
            c->model_updates);
    counter(&t, "advrec_negatives_total",
            "Negative items trained against: model.negatives per trained "
            "event, fewer where model.negatives.budget cut them (a fast "
            "partition, or no rate: a user's first record there).",
            c->negatives);
    gauge(&t, "advrec_training_loss",
          "Exponentially weighted mean (alpha 0.01 per step) of the clean "
          "BPR loss -ln sigmoid(x_uij) of recent training steps.",
          c->loss_ewma);
    counter(&t, "advrec_prequential_samples_total",
            "Sampled events (every metrics.prequential.every-th) whose user "
            "was ranked before training on them.",
            c->preq_samples);
    counter(&t, "advrec_prequential_hits_total",
            "... of which the event's item was in the user's list (hits / "
            "samples estimates HR@recs.n).",
            c->preq_hits);
    counter(&t, "advrec_events_downweighted_total",
            "Events trained with a weight below 1 (or not at all) by the "
            "anomaly detectors.",
            c->downweighted);

    family(&t, "advrec_lists_published_total", "counter",
           "Recommendation lists produced, by kind (model scores, or the "
           "cold-start popularity list).");
    put(&t, "advrec_lists_published_total{kind=\"model\"} %llu\n",
        (unsigned long long)(c->recs - c->recs_popular));
    put(&t, "advrec_lists_published_total{kind=\"popular\"} %llu\n",
        (unsigned long long)c->recs_popular);
    histogram(&t, "advrec_list_staleness_seconds",
              "Time from a user's first event not yet reflected in a list to "
              "that user's list being made and handed to the producer.",
              &c->staleness);
    histogram(&t, "advrec_refresh_duration_seconds",
              "Time of one batch of refreshes (ranking, encoding, "
              "producing; at most recs.refresh.batch users), per batch.",
              &c->refresh);
    gauge(&t, "advrec_refresh_lists_per_second",
          "Lists made per second over the last stats interval "
          "(stats.interval.ms).",
          c->lists_per_s);
    gauge(&t, "advrec_list_staleness_p99_seconds",
          "99th percentile of advrec_list_staleness_seconds over the last "
          "stats interval, from its buckets (0: no list made).",
          c->staleness_p99_s);
    gauge(&t, "advrec_refresh_backlog_oldest_seconds",
          "How long the user waiting longest has owed a list (0: none "
          "owed); the backlog itself is advrec_users_stale.",
          c->backlog_oldest_s);
    gauge(&t, "advrec_backlog_paused",
          "1 while consumption is paused because a list owed is "
          "recs.max.staleness.ms old (recs.backlog.policy=pause), else 0.",
          (double)c->backlog_paused);
    counter(&t, "advrec_backlog_pauses_total",
            "Times consumption paused for the refresh backlog.",
            c->backlog_pauses);
    counter(&t, "advrec_backlog_paused_rounds_total",
            "Rounds that did not consume because of the refresh backlog.",
            c->backlog_paused_rounds);
    family(&t, "advrec_lists_built_total", "counter",
           "Model-scored lists built, by retrieval: ann (the approximate "
           "index's candidates re-scored exactly) or exact (every item "
           "scored); cold-start popularity lists are neither.");
    put(&t, "advrec_lists_built_total{retrieval=\"ann\"} %llu\n",
        (unsigned long long)c->lists_ann);
    put(&t, "advrec_lists_built_total{retrieval=\"exact\"} %llu\n",
        (unsigned long long)c->lists_exact);
    counter(&t, "advrec_ann_builds_total",
            "Approximate indexes built and taken into use (recs.retrieval "
            "ann or auto; 0 under exact).",
            c->ann_builds);
    counter(&t, "advrec_ann_trainings_total",
            "... of which trained fresh k-means centroids (the others "
            "re-assigned the items to the existing ones).",
            c->ann_trainings);
    gauge(&t, "advrec_ann_last_build_duration_seconds",
          "Wall time of the last index build (training and filling) in "
          "its background thread.",
          c->ann_last_build_s);
    gauge(&t, "advrec_ann_last_build_timestamp_seconds",
          "When the last index build finished, Unix time (0: none yet).",
          c->ann_last_built_unix_s);
    gauge(&t, "advrec_ann_items_indexed",
          "Items in the index in use (0: none yet; lists are exact until "
          "there is one).",
          (double)c->ann_indexed);
    gauge(&t, "advrec_ann_index_lists",
          "Inverted lists (IVF cells) of the index in use.",
          (double)c->ann_nlist);
    gauge(&t, "advrec_ann_probe_lists",
          "Lists searched per user with the index in use: recs.ann.probe, "
          "raised at its build until the sampled recall@10 reached "
          "recs.ann.recall (0: no index yet).",
          (double)c->ann_nprobe);
    gauge(&t, "advrec_ann_sample_recall",
          "Recall@10 of the lists served from the last index built, at its "
          "tuned probe count, against the exact top-10 of up to 256 sampled "
          "users (0: no sample yet).",
          c->ann_sample_recall);
    histogram(&t, "advrec_round_duration_seconds",
              "Time of one processing round (poll wait included).", &c->round);
    counter(&t, "advrec_rounds_total", "Processing rounds finished.",
            c->rounds);
    counter(&t, "advrec_state_commits_total",
            "State commits: rows, offsets and outputs in one WriteBatch.",
            c->commits);

    family(&t, "advrec_anomaly_flags_total", "counter",
           "Anomaly flag transitions produced, by action.");
    put(&t, "advrec_anomaly_flags_total{action=\"flagged\"} %llu\n",
        (unsigned long long)(c->flags - c->flags_quarantined -
                             c->flags_cleared));
    put(&t, "advrec_anomaly_flags_total{action=\"quarantined\"} %llu\n",
        (unsigned long long)c->flags_quarantined);
    put(&t, "advrec_anomaly_flags_total{action=\"cleared\"} %llu\n",
        (unsigned long long)c->flags_cleared);
    family(&t, "advrec_anomaly_flag_reasons_total", "counter",
           "Reasons named by the anomaly flags produced (a flag may name "
           "several), by reason.");
    for (unsigned b = 0; b < ADVREC_DETECT_REASONS_CNT; b++) {
        const char *name;
        if (advrec_detect_reason_names(1u << b, &name, 1) == 1)
            put(&t, "advrec_anomaly_flag_reasons_total{reason=\"%s\"} %llu\n",
                name, (unsigned long long)c->flag_reasons[b]);
    }

    gauge(&t, "advrec_partitions_assigned",
          "Input partitions assigned to this daemon.", c->partitions);
    family(&t, "advrec_partition_assigned", "gauge",
           "1 for each input partition assigned to this daemon now (with "
           "topic.changelog: whose users it owns).");
    for (uint32_t i = 0; i < c->n_owned; i++)
        put(&t, "advrec_partition_assigned{topic=\"%s\",partition=\"%d\"} 1\n",
            label(advrec_metrics__topic(m, c->owned[i].topic), l2, sizeof(l2)),
            (int)c->owned[i].partition);
    family(&t, "advrec_consumer_lag_messages", "gauge",
           "Records between the committed position and the end of each "
           "assigned input partition (librdkafka statistics, every 5 s).");
    for (uint32_t i = 0; i < c->n_lag; i++)
        put(&t,
            "advrec_consumer_lag_messages{topic=\"%s\",partition=\"%d\"} "
            "%lld\n",
            label(advrec_metrics__topic(m, c->lag[i].topic), l2, sizeof(l2)),
            (int)c->lag[i].partition, (long long)c->lag[i].lag);

    counter(&t, "advrec_consumer_stalls_total",
            "Input partitions fetched again (a seek to where the state "
            "stands) after making no progress behind their end, or staying "
            "in a fetch state other than active, for 30 s.",
            c->consumer_stalls);
    counter(&t, "advrec_outputs_delivered_total",
            "Output messages (lists, flags, dead letters) acknowledged by "
            "the broker.",
            c->delivered);
    counter(&t, "advrec_output_delivery_failures_total",
            "Output deliveries that failed (each is produced again).",
            c->delivery_failed);
    family(&t, "advrec_kafka_errors_total", "counter",
           "Errors librdkafka's error callback reported, by client and "
           "error code (a broker down, a request timed out, ...); most are "
           "retried by the client itself.");
    for (uint32_t i = 0; i < c->n_kafka_errors; i++)
        put(&t, "advrec_kafka_errors_total{client=\"%s\",code=\"%s\"} %llu\n",
            c->kafka_errors[i].client ? "consumer" : "producer",
            label(c->kafka_errors[i].name, l1, sizeof(l1)),
            (unsigned long long)c->kafka_errors[i].count);
    gauge(&t, "advrec_outbox_pending_records",
          "Flags and dead letters committed and not yet acknowledged.",
          (double)c->outbox_pending);
    counter(&t, "advrec_outbox_paused_rounds_total",
            "Rounds that did not consume because too many outputs were "
            "unacknowledged.",
            c->outbox_paused);
    counter(&t, "advrec_outbox_guard_rounds_total",
            "Rounds that consumed while too many outputs were "
            "unacknowledged, one every half kafka.max.poll.interval.ms, so "
            "the consumer group keeps this member.",
            c->outbox_guard);
    counter(&t, "advrec_partitions_revoked_total",
            "Input partitions taken from this member by rebalances (another "
            "member joined or left, or this one was dropped from its group).",
            c->revoked);
    counter(&t, "advrec_state_offsets_lost_total",
            "Input partitions the state was behind on or had lost the offset "
            "of, resumed by state.offset.missing (each also logged as an "
            "error).",
            c->offsets_lost);
    if (c->registry_up >= 0) {
        static const char *const results[3] = {"ok", "refused", "failed"};
        gauge(&t, "advrec_schema_registry_up",
              "1 when the last request to the schema registry got an "
              "answer, 0 when it could not be reached (or failed).",
              (double)c->registry_up);
        family(&t, "advrec_schema_registry_requests_total", "counter",
               "Requests to the schema registry, by result: ok, refused "
               "(unknown id, incompatible schema), failed (unreachable, "
               "timeout, server error; retried).");
        for (int i = 0; i < 3; i++)
            put(&t,
                "advrec_schema_registry_requests_total{result=\"%s\"} "
                "%llu\n",
                results[i], (unsigned long long)c->registry_requests[i]);
        counter(&t, "advrec_schema_registry_schemas_fetched_total",
                "Writer schemas fetched from the registry and usable.",
                c->registry_fetched);
        counter(&t, "advrec_schema_registry_held_records_total",
                "Input records held back (consumed again later, never "
                "dead-lettered) because the registry could not be reached.",
                c->registry_held);
        gauge(&t, "advrec_schema_registry_held_partitions",
              "Input partitions paused until the registry answers.",
              (double)c->registry_held_partitions);
    }
    counter(&t, "advrec_producer_backpressure_total",
            "Times producing found the producer queue full and waited.",
            c->backpressure);

    gauge(&t, "advrec_users", "Users in the model.", c->users);
    gauge(&t, "advrec_items", "Items in the model.", c->items);
    gauge(&t, "advrec_users_stale", "Users waiting for a new list.",
          (double)c->stale);
    gauge(&t, "advrec_state_users_resident",
          "Users in memory (all of them without state.memory.limit).",
          (double)c->users_resident);
    gauge(&t, "advrec_state_user_resident_bytes",
          "Estimated resident bytes per user in memory (the user tables at "
          "their capacity, ids and item sets, over the users in memory).",
          c->user_bytes);
    gauge(&t, "advrec_state_item_resident_bytes",
          "Estimated resident bytes per item (the item tables at their "
          "capacity and ids, over the items).",
          c->item_bytes);
    counter(&t, "advrec_state_user_reads_total",
            "Users read back from the state store at their event "
            "(state.memory.limit).",
            c->user_reads);
    counter(&t, "advrec_state_user_evictions_total",
            "Users evicted from memory after a commit "
            "(state.memory.limit).",
            c->user_evictions);
    family(&t, "advrec_state_users_deleted_total", "counter",
           "Users deleted from the state with their rows, by cause: ttl "
           "(state.user.ttl), forget (a request on topic.control), capacity "
           "(room for a new user at model.max.users).");
    {
        static const char *const causes[] = {"ttl", "forget", "capacity"};
        for (int i = 0; i < 3; i++)
            put(&t, "advrec_state_users_deleted_total{cause=\"%s\"} %llu\n",
                causes[i], (unsigned long long)c->users_deleted[i]);
    }
    counter(&t, "advrec_forget_requests_total",
            "Forget requests read from topic.control (the user in the state "
            "or not).",
            c->forget_requests);
    family(&t, "advrec_changelog_records_total", "counter",
           "Records produced to topic.changelog, by kind: row (a user's "
           "state), marker (a partition's input position), tombstone (a "
           "deleted user).");
    put(&t, "advrec_changelog_records_total{kind=\"row\"} %llu\n",
        (unsigned long long)c->cl_rows);
    put(&t, "advrec_changelog_records_total{kind=\"marker\"} %llu\n",
        (unsigned long long)c->cl_markers);
    put(&t, "advrec_changelog_records_total{kind=\"tombstone\"} %llu\n",
        (unsigned long long)c->cl_tombstones);
    counter(&t, "advrec_changelog_bytes_total",
            "Key and value bytes produced to topic.changelog (every kind).",
            c->cl_bytes);
    family(&t, "advrec_changelog_deliveries_total", "counter",
           "Delivery reports of changelog records, by result.");
    put(&t, "advrec_changelog_deliveries_total{result=\"ok\"} %llu\n",
        (unsigned long long)c->cl_acked);
    put(&t, "advrec_changelog_deliveries_total{result=\"failed\"} %llu\n",
        (unsigned long long)c->cl_failed);
    counter(&t, "advrec_changelog_restores_total",
            "Input partitions restored from topic.changelog at assignment "
            "(the local state was missing or older).",
            c->cl_restores);
    counter(&t, "advrec_changelog_restore_records_total",
            "Changelog records read while restoring.", c->cl_restore_records);
    counter(&t, "advrec_changelog_restored_users_total",
            "User rows restored from topic.changelog.", c->cl_restored_users);
    counter(&t, "advrec_changelog_skipped_total",
            "Input records of a restored user skipped: their row already "
            "reflected them (exactly once across a move).",
            c->cl_skipped);
    gauge(&t, "advrec_changelog_restoring_partitions",
          "Input partitions being restored from topic.changelog now.",
          (double)c->cl_restoring);
    family(&t, "advrec_model_records_total", "counter",
           "Item-factor records of topic.model: published (this daemon's "
           "contribution), failed (deliveries; the item's next publish "
           "carries its total), merged (the others' applied, those read at "
           "start included), refused (malformed, or too many peers).");
    put(&t, "advrec_model_records_total{result=\"published\"} %llu\n",
        (unsigned long long)c->model_published);
    put(&t, "advrec_model_records_total{result=\"failed\"} %llu\n",
        (unsigned long long)c->model_failed);
    put(&t, "advrec_model_records_total{result=\"merged\"} %llu\n",
        (unsigned long long)c->model_merged);
    put(&t, "advrec_model_records_total{result=\"refused\"} %llu\n",
        (unsigned long long)c->model_refused);
    counter(&t, "advrec_model_bytes_total",
            "Key and value bytes published to topic.model.", c->model_bytes);
    gauge(&t, "advrec_store_sst_bytes",
          "RocksDB rocksdb.total-sst-files-size over every column family "
          "(-1: state in memory only).",
          (double)c->store_sst_bytes);
    gauge(&t, "advrec_store_pending_compaction_bytes",
          "RocksDB rocksdb.estimate-pending-compaction-bytes over every "
          "column family (-1: state in memory only).",
          (double)c->store_pending_bytes);
    gauge(&t, "advrec_resident_memory_bytes",
          "Resident memory of the process (/proc/self/statm).",
          resident_bytes());
    advrec_metrics__memory(m, &mem_limit, &mem_used, &mem_short);
    gauge(&t, "advrec_memory_limit_bytes",
          "The tightest memory limit on the process: RLIMIT_AS, or a "
          "cgroup v2 memory.max (-1: none found; lib/memlimit).",
          (double)mem_limit);
    gauge(&t, "advrec_memory_used_bytes",
          "What counts against that limit: the address space in use "
          "(VmSize) for RLIMIT_AS, the working set (memory.current less "
          "inactive_file) for a cgroup (-1: no limit).",
          (double)mem_used);
    gauge(&t, "advrec_memory_pressure",
          "1 while the headroom under the limit is below its margin (also "
          "logged as an error), else 0.",
          (double)mem_short);
    free(c);
    if (t.nomem) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
