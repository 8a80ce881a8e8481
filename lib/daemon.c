/*
 * daemon.c - the pipeline: wires the modules together and runs the
 * processing rounds (docs/ARCHITECTURE.md, "One processing round").
 *
 * What lives elsewhere: Kafka client set-up and producing with
 * backpressure (kafka), every output owed and its at-least-once delivery
 * (outbox), counters and the stats line (metrics), turning factors into
 * lists (rank, through the engine), the state's layout (store). What stays
 * here: the round, the dead-letter headers, encoding lists, the stats
 * line, checkpoints on request. Building the daemon from its configuration
 * and tearing it down are daemon_build.c, state commits (and the flags
 * they carry) daemon_commit.c, the Kafka side (clients, callbacks, start)
 * daemon_kafka.c, SIGHUP reloads daemon_reload.c, the Schema Registry
 * daemon_registry.c, the user cache of a memory budget daemon_cache.c;
 * daemon_int.h is what they share.
 *
 * What may fail where:
 *  - a record that does not decode, does not validate, or cannot be added to
 *    the state is recorded as a dead letter in the round's batch and
 *    produced after the commit (outbox): it never stops the loop and is
 *    never lost;
 *  - a full producer queue pauses consumption (kafka) instead of buffering
 *    without bound, and so do too many outputs not yet acknowledged
 *    (outbox);
 *  - a fatal librdkafka error (e.g. the idempotent producer fenced), a
 *    failed state commit, or no memory for an output owed stops run() with
 *    an error; after a failed commit nothing of the round is produced, and
 *    a restart replays from the last good commit.
 */
#include "daemon_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "detect.h"
#include "engine.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "reload.h"
#include "store.h"

void advrec_daemon__fail(advrec_daemon_t *d, advrec_err_t err, const char *what,
                         const char *why)
{
    if (!d->fatal[0]) {
        snprintf(d->fatal, sizeof(d->fatal), "%s%s%s", what, why ? ": " : "",
                 why ? why : "");
        d->fatal_err = err;
    }
    atomic_store(&d->stop, 1);
}

/*
 * Records a record that could not be applied as a dead letter: its key,
 * value and headers as they came, plus headers naming the reason and its
 * source. It is staged into the round's batch and produced after the
 * commit (outbox), so a crash never loses it. No memory for it stops the
 * daemon: the round must not commit past input it cannot account for.
 */
void advrec_daemon__dead_letter(advrec_daemon_t *d, const rd_kafka_message_t *m,
                                advrec_dlq_reason_t reason, const char *why)
{
    rd_kafka_headers_t *in = NULL, *h;
    char num[32];
    advrec_err_t oerr;

    if (rd_kafka_message_headers(m, &in) == RD_KAFKA_RESP_ERR_NO_ERROR)
        h = rd_kafka_headers_copy(in);
    else
        h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "advrec.error", -1, advrec_dlq_reason_name(reason),
                        -1);
    rd_kafka_header_add(h, "advrec.error.message", -1, why, -1);
    rd_kafka_header_add(h, "advrec.source.topic", -1,
                        rd_kafka_topic_name(m->rkt), -1);
    snprintf(num, sizeof(num), "%d", (int)m->partition);
    rd_kafka_header_add(h, "advrec.source.partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)m->offset);
    rd_kafka_header_add(h, "advrec.source.offset", -1, num, -1);
    if ((unsigned)reason < ADVREC_DLQ__COUNT)
        d->c->dead[reason]++;
    /* A flood of bad input must not become a flood of log lines: the first
     * few per stats interval are logged, the rest only counted. */
    if (d->dlq_logged++ < DLQ_LOG_PER_INTERVAL)
        log_warning("%s [%d] @%lld -> %s: %s", rd_kafka_topic_name(m->rkt),
                    (int)m->partition, (long long)m->offset, d->conf->topic_dlq,
                    why);
    else if (d->dlq_logged == DLQ_LOG_PER_INTERVAL + 1)
        log_warning("more records are going to %s; only counted until the "
                    "next stats line",
                    d->conf->topic_dlq);
    oerr = advrec_outbox_add(d->outbox, ADVREC_OUT_DEAD, m->key, m->key_len,
                             m->payload, m->len, h);
    rd_kafka_headers_destroy(h);
    if (oerr) {
        advrec_daemon__fail(d, oerr, "cannot record a dead letter",
                            advrec_err2str(oerr));
        return;
    }
    d->c->dlq++;
}

/*
 * The prequential estimate, on a sample: before the event trains the model,
 * would the list published for its user now contain its item? Only events
 * of a known user on a known item are asked (advrec_engine_hit).
 */
static void prequential(advrec_daemon_t *d, const advrec_event_t *ev)
{
    int hit = advrec_engine_hit(d->engine, ev->user_id, ev->item_id);

    if (hit < 0)
        return;
    d->c->preq_samples++;
    d->c->preq_hits += (uint64_t)hit;
}

advrec_daemon_apply_t advrec_daemon__apply(advrec_daemon_t *d,
                                           const rd_kafka_message_t *m,
                                           int64_t now)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    advrec_event_t ev;
    advrec_origin_t origin;
    advrec_dlq_reason_t reason = ADVREC_DLQ_NONE;
    advrec_err_t err;
    char why[512];

    if (d->inputs[TOPIC_CONTROL] &&
        strcmp(topic, d->inputs[TOPIC_CONTROL]) == 0)
        return advrec_daemon__forget(d, m);

    origin.topic = strcmp(topic, d->inputs[TOPIC_PURCHASES]) == 0
                       ? TOPIC_PURCHASES
                       : TOPIC_CLICKS;
    origin.partition = m->partition;
    origin.offset = m->offset;
    err = advrec_codec_decode_event(d->codec, m->payload, m->len, &ev, &reason,
                                    why, sizeof(why));
    if (err && reason == ADVREC_DLQ_UNKNOWN_SCHEMA && d->registry) {
        switch (
            advrec_daemon__registry_resolve(d, m, &reason, why, sizeof(why))) {
        case ADVREC_RESOLVE_HOLD:
            return ADVREC_APPLY_HELD;
        case ADVREC_RESOLVE_AGAIN:
            err = advrec_codec_decode_event(d->codec, m->payload, m->len, &ev,
                                            &reason, why, sizeof(why));
            break;
        case ADVREC_RESOLVE_FINAL:
            break;
        }
    }
    d->c->consumed++;
    if (err && (unsigned)reason < ADVREC_DLQ__COUNT)
        d->c->decode_failed[reason]++;
    /* Restored from the changelog with a row that already reflects it. */
    if (!err && d->cl &&
        advrec_daemon__changelog_skip(d, ev.user_id, origin.topic, m->partition,
                                      m->offset))
        return ADVREC_APPLY_DONE;
    if (!err && d->conf->metrics_prequential_every > 0 &&
        ++d->preq_seen % (uint64_t)d->conf->metrics_prequential_every == 0)
        prequential(d, &ev);
    if (!err && (err = advrec_engine_apply(d->engine, &ev, topic, &origin, 1.0f,
                                           now, why, sizeof(why))))
        reason = advrec_dlq_reason_from_err(err);
    if (err) {
        advrec_daemon__dead_letter(d, m, reason, why);
        return ADVREC_APPLY_DONE;
    }
    if (ev.type == ADVREC_EVENT_PURCHASE)
        d->c->purchases++;
    else
        d->c->clicks++;
    d->c->events[origin.topic][ev.type == ADVREC_EVENT_PURCHASE]++;
    return ADVREC_APPLY_DONE;
}

/* Copies the string src into dst (dst_size bytes), cut as snprintf's "%s"
 * would cut it: a list's ids went through snprintf, 4 % of the processing
 * thread at 10,000 lists/s. */
static void copy_id(char *dst, size_t dst_size, const char *src)
{
    size_t n = strnlen(src, dst_size - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Encodes one refreshed list and produces it, keyed by user. */
static void emit(void *opaque, const advrec_engine_list_t *list)
{
    advrec_daemon_t *d = opaque;
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_recommendation_t rec = {0};
    size_t len;
    advrec_err_t err;
    char why[256];

    copy_id(rec.user_id, sizeof(rec.user_id), list->user_id);
    for (uint32_t i = 0; i < list->n; i++) {
        copy_id(d->rec_items[i].item_id, sizeof(d->rec_items[i].item_id),
                advrec_state_item_name(state, list->items[i]));
        d->rec_items[i].score = list->scores[i];
    }
    rec.items = d->rec_items;
    rec.n_items = list->n;
    rec.model_version = (int64_t)advrec_engine_version(d->engine);
    copy_id(rec.input_topic, sizeof(rec.input_topic),
            d->inputs[list->origin.topic]);
    rec.input_partition = list->origin.partition;
    rec.input_offset = list->origin.offset;
    rec.generated_at_ms = wall_ms();
    for (;;) {
        err = advrec_codec_encode_recommendation(d->codec, d->rec_schema_id,
                                                 &rec, d->enc, d->enc_size,
                                                 &len, why, sizeof(why));
        if (err != ADVREC_ERR_ENCODE || len <= d->enc_size)
            break;
        unsigned char *bigger = realloc(d->enc, len);
        if (!bigger) {
            err = ADVREC_ERR_NOMEM;
            snprintf(why, sizeof(why), "out of memory");
            break;
        }
        d->enc = bigger;
        d->enc_size = len;
    }
    if (err) {
        /* Our own record not fitting our own schema is a bug, not input. */
        log_err("cannot encode the recommendation for user %s: %s",
                list->user_id, why);
        return;
    }
    if (advrec_outbox_send_list(d->outbox, list->user, list->user_id,
                                strlen(list->user_id), d->enc, len) == 0) {
        d->c->recs++;
        d->c->recs_popular += (uint64_t)list->popular;
    }
}

/* The model's figures: training steps, and the running loss as an
 * exponentially weighted mean with LOSS_EWMA_ALPHA per step (n steps of
 * mean loss L since the last round move it as n single steps of L would). */
static void running_loss(advrec_daemon_t *d)
{
    double sum, keep;
    uint64_t n;

    d->c->model_updates = advrec_engine_version(d->engine);
    d->c->negatives = advrec_engine_negatives(d->engine);
    advrec_engine_take_loss(d->engine, &sum, &n);
    if (n == 0)
        return;
    keep = d->c->loss_steps ? pow(1.0 - LOSS_EWMA_ALPHA, (double)n) : 0.0;
    d->c->loss_ewma = keep * d->c->loss_ewma + (1.0 - keep) * (sum / (double)n);
    d->c->loss_steps += n;
}

/* The clients' error callbacks by code (lib/kafka) into the counters. */
static void kafka_errors(advrec_daemon_t *d)
{
    advrec_kafka_t *clients[2] = {d->producer, d->consumer};
    advrec_kafka_error_count_t e[ADVREC_KAFKA_ERRORS_MAX];
    uint32_t k = 0;

    d->c->kafka_errors_total = 0;
    for (int c = 0; c < 2; c++) {
        size_t n = clients[c] ? advrec_kafka_errors(clients[c], e,
                                                    ADVREC_KAFKA_ERRORS_MAX)
                              : 0;
        for (size_t i = 0; i < n && k < ADVREC_METRICS_KAFKA_ERRORS; i++) {
            advrec_kafka_error_stat_t *s = &d->c->kafka_errors[k++];
            s->client = c;
            s->code = (int32_t)e[i].code;
            snprintf(s->name, sizeof(s->name), "%s",
                     rd_kafka_err2name(e[i].code));
            s->count = e[i].count;
            d->c->kafka_errors_total += e[i].count;
        }
    }
    d->c->n_kafka_errors = k;
}

/* The approximate index's figures (lib/ann), under ann or auto only. */
static void ann_gauges(advrec_daemon_t *d)
{
    advrec_ann_t *ann = advrec_engine_ann(d->engine);
    advrec_ann_stats_t as;

    if (!ann)
        return;
    advrec_ann_stats(ann, &as);
    if (as.builds != d->c->ann_builds)
        log_info("ann: index %llu built in %.1f s (k-means %.1f s, probe "
                 "tuning %.2f s): %zu items, %u lists, probe %u lists, "
                 "sampled recall@10 %.3f over %zu users",
                 (unsigned long long)as.builds, as.last_build_s,
                 as.last_train_s, as.last_tune_s, as.indexed, as.nlist,
                 as.tuned_nprobe, as.sample_recall, as.sample_users);
    d->c->ann_builds = as.builds;
    d->c->ann_trainings = as.trainings;
    d->c->ann_last_build_s = as.last_build_s;
    d->c->ann_last_built_unix_s = as.last_built_unix_s;
    d->c->ann_indexed = as.indexed;
    d->c->ann_nlist = as.nlist;
    d->c->ann_nprobe = as.nprobe;
    d->c->ann_sample_recall = as.sample_recall;
}

/* Gauges into the counters, then publish (metrics). */
static void publish_stats(advrec_daemon_t *d, int64_t now, int final)
{
    int64_t oldest;
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_outbox_stats_t os;

    advrec_outbox_stats(d->outbox, &os);
    d->c->users = advrec_state_users_live(state);
    d->c->items = advrec_state_items(state)->n;
    d->c->stale = advrec_engine_stale_count(d->engine);
    oldest = advrec_engine_oldest_stale(d->engine);
    d->c->backlog_oldest_s = oldest ? (double)(now - oldest) / 1e3 : 0;
    ann_gauges(d);
    d->c->outbox_pending = os.unacked;
    d->c->dlq_delivered = os.delivered[ADVREC_OUT_DEAD];
    d->c->dlq_truncated = os.truncated;
    d->c->backpressure =
        d->producer ? advrec_kafka_backpressure(d->producer) : 0;
    kafka_errors(d);
    running_loss(d);
    if (d->store && (final || now - d->sizes_ms >= STORE_SIZES_MS)) {
        uint64_t sst, pending;
        advrec_store_sizes(d->store, &sst, &pending);
        d->c->store_sst_bytes = (int64_t)sst;
        d->c->store_pending_bytes = (int64_t)pending;
        d->sizes_ms = now;
    }
    /* Scans the users in memory: not every round (the cache's evictions
     * set them after each commit). */
    if (final || now - d->mem_ms >= 10 * STORE_SIZES_MS) {
        advrec_daemon__cache_gauges(d);
        d->mem_ms = now;
    }
    d->c->round_end_ms = now;
    if (advrec_metrics_publish(d->metrics, now, final))
        d->dlq_logged = 0;
}

/*
 * Takes a round's input: waits up to round.max.ms for the first record,
 * then takes only what is already fetched, up to round.max.records. A
 * round that waited for a full batch (rd_kafka_consume_batch_queue's
 * timeout runs until the batch is full) would hold every record it got
 * first for up to round.max.ms before applying it: at 10,000 events/s,
 * about 100 ms added to every list (docs/PERFORMANCE.md, "Latency").
 * Returns the number of entries in d->batch (records and consumer errors),
 * or -1 as rd_kafka_consume_batch_queue does.
 */
static ssize_t consume(advrec_daemon_t *d)
{
    ssize_t n, more;

    n = rd_kafka_consume_batch_queue(d->cq, (int)d->conf->round_max_ms,
                                     d->batch, 1);
    if (n <= 0 || d->conf->round_max_records <= 1)
        return n;
    more = rd_kafka_consume_batch_queue(
        d->cq, 0, d->batch + n, (size_t)d->conf->round_max_records - (size_t)n);
    return more > 0 ? n + more : n;
}

/*
 * Refreshes the lists owed, oldest first (advrec_engine_refresh), in
 * batches of recs.refresh.batch users until recs.refresh.budget.ms of the
 * monotonic clock is spent (round.max.ms if that is longer while paused
 * for the backlog; checked between batches: one batch always goes, so the
 * backlog shrinks even under a budget of 0), nothing more is due, or
 * round.max.records lists were made: a burst of stale users cannot starve
 * consumption, and consumption cannot starve the lists.
 */
static void refresh_round(advrec_daemon_t *d)
{
    int64_t t0 = now_us(), budget_us = d->conf->recs_refresh_budget_ms * 1000;
    size_t cap = (size_t)d->conf->round_max_records;
    size_t batch = (size_t)d->conf->recs_refresh_batch, done = 0;

    /* Paused for the backlog, the round has nothing else to do and would
     * have waited up to round.max.ms for input: refresh that long. */
    if (d->backlog_paused && budget_us < d->conf->round_max_ms * 1000)
        budget_us = d->conf->round_max_ms * 1000;

    while (done < cap) {
        size_t want = cap - done < batch ? cap - done : batch, n, n_since;
        int64_t t1 = now_us(), now = now_ms();
        const int64_t *since;

        n = advrec_engine_refresh(d->engine, now, 0, want, emit, d);
        if (n == 0)
            break;
        advrec_histogram_observe(&d->c->refresh, (double)(now_us() - t1) / 1e6);
        since = advrec_engine_refreshed_since(d->engine, &n_since);
        for (size_t i = 0; i < n_since; i++)
            advrec_histogram_observe(&d->c->staleness,
                                     (double)(now - since[i]) / 1e3);
        d->c->lists_ann += advrec_engine_ann_lists(d->engine);
        d->c->lists_exact += advrec_engine_exact_lists(d->engine);
        done += n;
        if (n < want || now_us() - t0 >= budget_us)
            break;
    }
}

/*
 * Whether a round that would leave the input alone (a full outbox, a
 * refresh backlog under pause) must consume all the same: a consumer not
 * polled for the whole max.poll.interval.ms leaves its group and its
 * partitions go to another member, so one round in every half of it
 * (librdkafka's default 300 s when it cannot be read) polls.
 */
static int poll_due(advrec_daemon_t *d, int64_t now)
{
    if (!d->poll_guard_ms) {
        char buf[32];
        size_t size = sizeof(buf);
        long long ms = 300000;

        if (rd_kafka_conf_get(rd_kafka_conf(advrec_kafka_rk(d->consumer)),
                              "max.poll.interval.ms", buf,
                              &size) == RD_KAFKA_CONF_OK)
            ms = atoll(buf);
        d->poll_guard_ms = ms > 2 ? ms / 2 : 1;
    }
    return now - d->polled_ms >= d->poll_guard_ms;
}

/*
 * recs.backlog.policy = pause: whether this round leaves the input alone
 * (1) because a list owed is recs.max.staleness.ms old or older, the
 * same rule that makes it due: the round then only refreshes, oldest
 * first, until no owed list is that old. Logs entering and leaving the
 * paused state (at most once per BACKLOG_LOG_MS; the pauses not logged
 * are counted). Under consume, or with nothing that old, 0. A
 * paused consumer is still polled once every half max.poll.interval.ms
 * (one round of input) so the group keeps it; that round's lists may then
 * wait longer than recs.max.staleness.ms.
 */
static int backlog_hold(advrec_daemon_t *d, int64_t now)
{
    int64_t oldest = advrec_engine_oldest_stale(d->engine);
    int over = d->conf->recs_backlog_policy == ADVREC_CONF_BACKLOG_PAUSE &&
               oldest && now - oldest >= d->conf->recs_max_staleness_ms;
    /* A backlog near the bound pauses and resumes every few rounds: the
     * first pause of a BACKLOG_LOG_MS is logged (and its end), the rest
     * only counted (advrec_backlog_pauses_total). */
    int log = !d->backlog_log_ms || now - d->backlog_log_ms >= BACKLOG_LOG_MS;

    if (over && !d->backlog_paused) {
        if (log) {
            log_notice("refresh backlog: %zu list(s) owed, the oldest for "
                       "%lld ms (recs.max.staleness.ms %lld): consumption "
                       "paused (recs.backlog.policy=pause)%s",
                       advrec_engine_stale_count(d->engine),
                       (long long)(now - oldest),
                       (long long)d->conf->recs_max_staleness_ms,
                       d->backlog_unlogged ? "; it paused before without a "
                                             "line, see "
                                             "advrec_backlog_pauses_total"
                                           : "");
            d->backlog_log_ms = now;
            d->backlog_logged = 1;
            d->backlog_unlogged = 0;
        } else {
            d->backlog_logged = 0;
            d->backlog_unlogged = 1;
        }
        d->backlog_paused = 1;
        d->backlog_since_ms = now;
        d->c->backlog_pauses++;
    } else if (!over && d->backlog_paused) {
        /* Leaving is logged when entering was. */
        if (d->backlog_logged)
            log_notice("refresh backlog: %zu list(s) owed, none for "
                       "recs.max.staleness.ms: consumption resumed after "
                       "%lld ms",
                       advrec_engine_stale_count(d->engine),
                       (long long)(now - d->backlog_since_ms));
        d->backlog_paused = 0;
    }
    d->c->backlog_paused = d->backlog_paused;
    if (!over)
        return 0;
    if (poll_due(d, now)) {
        log_info("refresh backlog: one round of input while paused, so the "
                 "consumer group keeps this member (max.poll.interval.ms)");
        return 0;
    }
    d->c->backlog_paused_rounds++;
    return 1;
}

/* One processing round. */
static void round_once(advrec_daemon_t *d)
{
    rd_kafka_t *producer = advrec_kafka_rk(d->producer);
    ssize_t n;
    int64_t now, t0 = now_us();
    advrec_err_t err;
    char why[512];

    if (advrec_kafka_fatal(d->producer, why, sizeof(why)) ||
        advrec_kafka_fatal(d->consumer, why, sizeof(why))) {
        advrec_daemon__fail(d, ADVREC_ERR_KAFKA, why, NULL);
        return;
    }
    /* A commit written meanwhile: its flags and dead letters are due, and
     * the users it wrote may leave memory. */
    if (advrec_daemon__commit_finish(d, 0))
        return;
    /* Users become evictable after their commit, and also when their list
     * is acknowledged: look again at least every second. */
    if (now_ms() - d->evict_ms >= 1000)
        d->evict_due = 1;
    advrec_daemon__cache_evict(d);
    /* Backpressure for outputs: consuming more could owe more while this
     * much is unacknowledged (broker away, a topic failing), so wait for
     * deliveries instead of growing the stored set or dropping any. Failed
     * ones are produced again meanwhile. A consumer not polled for
     * max.poll.interval.ms leaves its group, so one round in every half of
     * it consumes (its outputs go past the bound by one round's). */
    if (advrec_outbox_full(d->outbox)) {
        if (d->n_offs && advrec_daemon__commit(d))
            return; /* the records owed go out only once committed */
        if (!d->paused)
            log_warning("%llu outputs not acknowledged by the broker: "
                        "consumption paused until they are delivered (but "
                        "for one round every half max.poll.interval.ms, so "
                        "the consumer group keeps this member)",
                        (unsigned long long)d->c->outbox_pending);
        d->paused = 1;
        advrec_outbox_produce(d->outbox);
        rd_kafka_poll(producer, 100);
        publish_stats(d, now_ms(), 0);
        if (!poll_due(d, now_ms())) {
            d->c->outbox_paused++;
            return;
        }
        d->c->outbox_guard++;
    } else if (d->paused) {
        log_notice("outputs acknowledged: consumption resumed");
        d->paused = 0;
    }
    if (backlog_hold(d, now_ms())) {
        n = 0; /* only refreshes this round */
    } else {
        advrec_daemon__registry_retry(d, now_ms());
        n = consume(d);
        d->polled_ms = now_ms();
        advrec_daemon__stall_restart(d);
    }
    now = now_ms();
    if (d->fatal[0]) {
        /* Stopped while polling (an assignment the state cannot resume
         * under state.offset.missing=fail): apply nothing. */
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(d->batch[i]);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = d->batch[i];
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warning("consumer: %s%s%s",
                            m->rkt ? rd_kafka_topic_name(m->rkt) : "",
                            m->rkt ? ": " : "", rd_kafka_message_errstr(m));
            continue;
        }
        /* A partition held back for the registry keeps its records in
         * order; they are not applied, so their offsets are not noted. */
        if (d->n_held && advrec_daemon__registry_keep(d, m)) {
            d->batch[i] = NULL;
            continue;
        }
        if (advrec_daemon__apply(d, m, now) == ADVREC_APPLY_HELD) {
            advrec_daemon__registry_hold(d, m);
            d->batch[i] = NULL;
        }
    }
    err = advrec_daemon__note_offsets(d, d->batch, n) ? ADVREC_ERR_NOMEM
                                                      : ADVREC_OK;
    for (ssize_t i = 0; i < n; i++)
        if (d->batch[i])
            rd_kafka_message_destroy(d->batch[i]);
    if (err)
        return;
    /* Refresh what is due before the commit: lists do not wait for
     * commits (a list owed stays owed in the state until its delivery
     * report), so a commit due this round must not delay the lists of
     * the events it applied. Bounded per round (recs.refresh.budget.ms,
     * round.max.records) so a burst of stale users cannot starve
     * consumption. */
    refresh_round(d);
    rd_kafka_poll(producer, 0);
    if (advrec_daemon__commit_due(d, now)) {
        err = advrec_daemon__commit_state(d, 1);
        d->commit_ms = now_ms();
        if (err)
            return; /* flags and dead letters never run ahead of committed
                       state */
    }
    /* Idle rounds too: the last offsets of a burst must reach Kafka. */
    if (d->kcommit && now_ms() - d->kcommit_ms >= KAFKA_COMMIT_MS)
        advrec_daemon__kafka_commit(d, 1);
    advrec_outbox_produce(d->outbox);
    advrec_daemon__changelog_round(d);
    advrec_daemon__model_round(d);
    d->c->rounds++;
    advrec_histogram_observe(&d->c->round, (double)(now_us() - t0) / 1e6);
    publish_stats(d, now, 0);
}

/* Writes the requested checkpoint (between rounds, so it holds whole rounds
 * only). A failure is logged and the daemon goes on: a backup that could not
 * be made must not stop the service. */
static void write_checkpoint(advrec_daemon_t *d)
{
    char path[4096], why[512];

    if (!d->store) {
        log_warning("checkpoint requested, but state.dir is empty: state is "
                    "in memory only");
        return;
    }
    if (advrec_daemon__commit(d))
        return; /* the daemon stops: fail() said why */
    if (advrec_store_checkpoint_stamped(d->store, d->conf->state_checkpoint_dir,
                                        path, sizeof(path), why, sizeof(why)))
        log_err("checkpoint: %s", why);
    else
        log_notice("checkpoint written to %s (start a daemon from it with "
                   "-X state.dir=%s)",
                   path, path);
}

advrec_err_t advrec_daemon_run(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    rd_kafka_t *producer = advrec_kafka_rk(d->producer);
    rd_kafka_resp_err_t kerr;
    advrec_outbox_stats_t os;
    size_t n_stale;
    const uint32_t *stale;

    advrec_metrics_ready(d->metrics, now_ms());
    d->commit_ms = now_ms();
    d->polled_ms = now_ms();
    if (advrec_metrics_watchdog_ms(d->metrics))
        log_info("systemd watchdog: WATCHDOG=1 every %lld ms from the "
                 "processing loop",
                 (long long)advrec_metrics_watchdog_ms(d->metrics));
    while (!atomic_load(&d->stop)) {
        round_once(d);
        /* A round is bounded (round.max.ms of polling, round.max.records
         * of input, recs.refresh.budget.ms of refreshes plus one batch)
         * except while the producer waits for room, which feeds the
         * watchdog itself (on_produce_wait). */
        advrec_metrics_watchdog(d->metrics, now_ms());
        if (atomic_exchange(&d->checkpoint, 0))
            write_checkpoint(d);
        if (atomic_exchange(&d->reload, 0))
            advrec_daemon__reload_conf(d);
    }
    d->c->stopping = 1; /* /health: the loop has ended */
    advrec_metrics_share(d->metrics);
    advrec_metrics_stopping(d->metrics);
    if (d->fatal[0])
        return advrec_seterr(d->fatal_err ? d->fatal_err : ADVREC_ERR_KAFKA,
                             errstr, errstr_size, "%s", d->fatal);

    /* Clean stop: what was applied since the last commit is committed
     * (its flags and dead letters become due), every user with news gets a
     * list, then deliver it all. */
    if (advrec_daemon__commit(d))
        return advrec_seterr(d->fatal_err ? d->fatal_err : ADVREC_ERR_STORE,
                             errstr, errstr_size, "%s", d->fatal);
    advrec_outbox_produce(d->outbox);
    log_info("stopping: refreshing %zu stale user(s), flushing",
             advrec_engine_stale_count(d->engine));
    advrec_engine_refresh(d->engine, now_ms(), 1, 0, emit, d);
    d->c->lists_ann += advrec_engine_ann_lists(d->engine);
    d->c->lists_exact += advrec_engine_exact_lists(d->engine);
    advrec_outbox_produce(d->outbox); /* failed ones: one more try */
    advrec_daemon__model_publish(d);
    kerr = rd_kafka_flush(producer, FLUSH_TIMEOUT_MS);
    if (kerr)
        log_err("flush: %d message(s) not delivered within %d ms",
                rd_kafka_outq_len(producer), FLUSH_TIMEOUT_MS);
    /* What the flush delivered is no longer owed; the rest stays stored
     * for the next start. */
    advrec_outbox_stats(d->outbox, &os);
    if (os.unacked)
        log_warning("%zu flag(s) or dead letter(s) not acknowledged: kept in "
                    "the state, produced again at the next start",
                    os.unacked);
    stale = advrec_engine_stale_users(d->engine, &n_stale);
    if (d->store) {
        char why[512];
        if (advrec_outbox_stage(d->outbox, stale, n_stale) ||
            advrec_store_commit(d->store, advrec_engine_state(d->engine),
                                advrec_engine_popularity(d->engine),
                                advrec_engine_version(d->engine), NULL, 0, why,
                                sizeof(why)))
            log_warning("final commit of the outputs owed failed (the lists, "
                        "flags and dead letters will be sent again at "
                        "restart)");
    }
    advrec_daemon__kafka_commit(d, 0);
    rd_kafka_consumer_close(advrec_kafka_rk(d->consumer));
    publish_stats(d, now_ms(), 1);
    return ADVREC_OK;
}

void advrec_daemon_stop(advrec_daemon_t *d)
{
    atomic_store(&d->stop, 1);
}

void advrec_daemon_checkpoint(advrec_daemon_t *d)
{
    atomic_store(&d->checkpoint, 1);
}

void advrec_daemon_stats(const advrec_daemon_t *d, advrec_daemon_stats_t *stats)
{
    advrec_metrics_read(d->metrics, stats);
}

int advrec_daemon_http_port(const advrec_daemon_t *d)
{
    return d->http ? advrec_http_port(d->http) : 0;
}
