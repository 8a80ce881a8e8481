/*
 * daemon_commit.c - the pipeline's state commits: what a round consumed
 * (the offsets noted per input partition), when a commit is due, the
 * commit itself (rows, offsets, the round's flags and dead letters and the
 * users owed a list in one WriteBatch, written in the background by the
 * store's thread) and its finish (flags and dead letters due, offsets
 * queued for Kafka). The anomaly flags are encoded here too: they are
 * recorded into the commit of the detector state that raised them.
 */
#include "daemon_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "detect.h"
#include "detect_store.h"
#include "engine.h"
#include "log.h"
#include "outbox.h"
#include "store.h"

/* --- anomaly flags: recorded with the round, produced after its commit - */

/*
 * Encodes one transition as an Anomaly and records it in the outbox, so it
 * is committed with the detector state that raised it and produced only
 * after that commit. Out of memory sets d->flag_err: the round must not
 * commit a detector state whose flag is lost.
 */
static void raise_flag(void *opaque, const advrec_detect_flag_t *flag)
{
    advrec_daemon_t *d = opaque;
    advrec_state_t *state = advrec_engine_state(d->engine);
    const char *names[ADVREC_ANOMALY_MAX_REASONS];
    const char *id = flag->entity_type == ADVREC_ENTITY_USER
                         ? advrec_state_user_name(state, flag->idx)
                         : advrec_state_item_name(state, flag->idx);
    advrec_anomaly_t a;
    size_t len, n;
    advrec_err_t err;
    char why[256];

    memset(&a, 0, sizeof(a));
    a.entity_type = flag->entity_type;
    snprintf(a.entity_id, sizeof(a.entity_id), "%s", id ? id : "");
    a.score = flag->score;
    n = advrec_detect_reason_names(flag->reasons, names,
                                   ADVREC_ANOMALY_MAX_REASONS);
    for (size_t r = 0; r < n; r++)
        snprintf(a.reasons[r], sizeof(a.reasons[r]), "%s", names[r]);
    a.n_reasons = n;
    for (size_t e = 0; e < flag->n_evidence; e++) {
        snprintf(a.evidence[e].key, sizeof(a.evidence[e].key), "%s",
                 flag->evidence[e].key);
        a.evidence[e].count = flag->evidence[e].count;
    }
    a.n_evidence = flag->n_evidence;
    a.action = flag->action;
    a.ts_ms = flag->ts_ms;
    snprintf(a.detector, sizeof(a.detector), "advrec.detect");
    if (advrec_codec_encode_anomaly(d->codec, d->anomaly_schema_id, &a, d->enc,
                                    d->enc_size, &len, why, sizeof(why))) {
        /* enc is at least 4 KiB and a flag is far smaller: a bug. */
        log_err("cannot encode the anomaly flag for %s: %s", a.entity_id, why);
        return;
    }
    err = advrec_outbox_add(d->outbox, ADVREC_OUT_FLAG, a.entity_id,
                            strlen(a.entity_id), d->enc, len, NULL);
    if (err) {
        d->flag_err = err;
        return;
    }
    d->c->flags++;
    for (unsigned b = 0; b < ADVREC_METRICS_FLAG_REASONS; b++)
        d->c->flag_reasons[b] += (flag->reasons >> b) & 1u;
    d->c->flags_quarantined += flag->action == ADVREC_ANOMALY_QUARANTINED;
    d->c->flags_cleared += flag->action == ADVREC_ANOMALY_CLEARED;
}

/*
 * Notes what a round consumed: the next offset of every input partition it
 * read, pending for the next state commit, and as where this process's
 * state in memory stands (a partition that comes back after a rebalance
 * resumes there). -1 on no memory: the daemon stops (the round must not be
 * committed without its offsets).
 */
int advrec_daemon__note_offsets(advrec_daemon_t *d, rd_kafka_message_t **msgs,
                                ssize_t n)
{
    for (ssize_t i = 0; i < n; i++) {
        const char *topic;
        size_t j;
        if (!msgs[i] || msgs[i]->err)
            continue;
        topic = rd_kafka_topic_name(msgs[i]->rkt);
        topic = strcmp(topic, d->inputs[TOPIC_PURCHASES]) == 0
                    ? d->inputs[TOPIC_PURCHASES]
                : d->inputs[TOPIC_CONTROL] &&
                        strcmp(topic, d->inputs[TOPIC_CONTROL]) == 0
                    ? d->inputs[TOPIC_CONTROL]
                    : d->inputs[TOPIC_CLICKS];
        for (j = 0; j < d->n_offs; j++)
            if (d->offs[j].partition == msgs[i]->partition &&
                d->offs[j].topic == topic)
                break;
        if (j == d->n_offs) {
            if (d->n_offs == d->offs_cap) {
                size_t cap = d->offs_cap ? 2 * d->offs_cap : 64;
                advrec_store_offset_t *o = realloc(d->offs, cap * sizeof(*o));
                if (!o) {
                    advrec_daemon__fail(d, ADVREC_ERR_NOMEM, "out of memory",
                                        NULL);
                    return -1;
                }
                d->offs = o;
                d->offs_cap = cap;
            }
            d->offs[j].topic = topic;
            d->offs[j].partition = msgs[i]->partition;
            d->offs[j].next = msgs[i]->offset + 1;
            d->n_offs++;
        } else if (msgs[i]->offset + 1 > d->offs[j].next) {
            d->offs[j].next = msgs[i]->offset + 1;
        }
    }
    for (size_t j = 0; j < d->n_offs; j++)
        if (advrec_daemon__run_offset_set(
                d, d->offs[j].topic, d->offs[j].partition, d->offs[j].next))
            log_warning("no memory to remember the offset of %s [%d]: a "
                        "rebalance resumes it from the %s",
                        d->offs[j].topic, (int)d->offs[j].partition,
                        d->store ? "state" : "committed offset");
    return 0;
}

/*
 * Whether the state is due for a commit after this round: with a store,
 * every state.commit.interval.ms (0: every round), or sooner when the rows
 * changed since the last commit reach d->commit_max_rows (COMMIT_MAX_ROWS,
 * fewer under a memory budget: the batch stays bounded) or the outbox is
 * full (its records go out only after a commit).
 * State in memory "commits" every round (it only forgets the dirty lists).
 */
int advrec_daemon__commit_due(advrec_daemon_t *d, int64_t now)
{
    advrec_state_t *state = advrec_engine_state(d->engine);

    if (d->n_offs == 0)
        return 0;
    if (!d->store || d->conf->state_commit_interval_ms == 0 ||
        now - d->commit_ms >= d->conf->state_commit_interval_ms)
        return 1;
    return advrec_state_users(state)->n_dirty +
                   advrec_state_items(state)->n_dirty >=
               d->commit_max_rows ||
           advrec_outbox_full(d->outbox);
}

/* Queues offsets the state committed for Kafka (advrec_daemon__kafka_commit
 * sends them). Without memory for the list, Kafka hears of them next time. */
static void queue_offsets(advrec_daemon_t *d, const advrec_store_offset_t *offs,
                          size_t n)
{
    if (!d->kcommit && !(d->kcommit = rd_kafka_topic_partition_list_new(8)))
        return;
    for (size_t j = 0; j < n; j++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            d->kcommit, offs[j].topic, offs[j].partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(d->kcommit, offs[j].topic,
                                                   offs[j].partition);
        tp->offset = offs[j].next;
    }
}

advrec_err_t advrec_daemon__commit_finish(advrec_daemon_t *d, int block)
{
    advrec_err_t err;
    char why[512];

    if (!d->committing || (!block && !advrec_store_commit_done(d->store)))
        return ADVREC_OK;
    d->committing = 0;
    if ((err = advrec_store_commit_wait(d->store, why, sizeof(why)))) {
        advrec_daemon__fail(d, err, "state commit failed", why);
        return err;
    }
    advrec_outbox_commit_written(d->outbox);
    d->c->commits++;
    d->evict_due = 1;
    d->written_epoch = d->inflight_epoch;
    advrec_daemon__gone_written(d);
    queue_offsets(d, d->c_offs, d->c_n_offs);
    d->c_n_offs = 0;
    return ADVREC_OK;
}

/*
 * Commits the state: every row changed since the last commit together with
 * the next offset of every partition consumed since, the flags and dead
 * letters recorded since, the deletions of outputs delivered since, and the
 * users owed a list (one RocksDB WriteBatch), then queues those offsets
 * for Kafka (committed at most every KAFKA_COMMIT_MS, asynchronously, with
 * the state's lineage as metadata): they report progress (lag) and let a
 * later start see that the state is behind them. A failed state commit
 * stops the daemon: a restart replays from the last good one. Without
 * pending offsets, nothing to do but finish a commit still being written.
 *
 * background (with a store): the batch is built here and written by the
 * store's writer thread while the rounds go on (a WriteBatch of a second's
 * rows with its fsync held every list behind it for tens of ms); its flags,
 * dead letters and offsets follow once the write is done
 * (advrec_daemon__commit_finish). Otherwise the write is done on return.
 */
advrec_err_t advrec_daemon__commit_state(advrec_daemon_t *d, int background)
{
    size_t n_stale;
    const uint32_t *stale;
    advrec_err_t err = ADVREC_OK;
    char why[512];

    if ((err = advrec_daemon__commit_finish(d, 1)))
        return err;
    if (d->n_offs == 0)
        return ADVREC_OK;
    if (d->fatal[0])
        return d->fatal_err; /* e.g. a dead letter could not be recorded */
    /* Users expired by event time go in this commit. */
    advrec_daemon__expire(d);
    if (d->fatal[0])
        return d->fatal_err;
    d->flag_err = advrec_detect_store_stage(d->detect, d->store,
                                            advrec_engine_state(d->engine));
    advrec_detect_take(d->detect, raise_flag, d);
    stale = advrec_engine_stale_users(d->engine, &n_stale);
    /* The changed users' rows to the changelog, before the commit clears
     * the dirty lists. */
    advrec_daemon__changelog_stage(d);
    if ((err = d->flag_err))
        snprintf(why, sizeof(why),
                 "cannot stage the detector rows or flags: %s",
                 advrec_err2str(err));
    else if ((err = advrec_outbox_stage(d->outbox, stale, n_stale)))
        snprintf(why, sizeof(why), "cannot stage the outputs owed: %s",
                 advrec_err2str(err));
    else if (d->store && background)
        err =
            advrec_store_commit_start(d->store, advrec_engine_state(d->engine),
                                      advrec_engine_popularity(d->engine),
                                      advrec_engine_version(d->engine), d->offs,
                                      d->n_offs, why, sizeof(why));
    else if (d->store)
        err = advrec_store_commit(d->store, advrec_engine_state(d->engine),
                                  advrec_engine_popularity(d->engine),
                                  advrec_engine_version(d->engine), d->offs,
                                  d->n_offs, why, sizeof(why));
    else
        advrec_state_clear_dirty(advrec_engine_state(d->engine));
    if (err) {
        advrec_daemon__fail(d, err, "state commit failed", why);
        return err;
    }
    if (d->store && background) {
        /* These offsets are the writer's now; the next commit's start
         * afresh in the other array. */
        advrec_store_offset_t *o = d->c_offs;
        size_t cap = d->c_offs_cap;
        d->c_offs = d->offs;
        d->c_offs_cap = d->offs_cap;
        d->c_n_offs = d->n_offs;
        d->offs = o;
        d->offs_cap = cap;
        d->n_offs = 0;
        advrec_outbox_committing(d->outbox);
        d->committing = 1;
        d->inflight_epoch = advrec_state_epoch(advrec_engine_state(d->engine));
        return ADVREC_OK;
    }
    advrec_outbox_committed(d->outbox);
    d->c->commits++;
    d->evict_due = 1;
    d->written_epoch = advrec_state_epoch(advrec_engine_state(d->engine));
    advrec_daemon__gone_written(d);
    queue_offsets(d, d->offs, d->n_offs);
    d->n_offs = 0;
    return ADVREC_OK;
}

advrec_err_t advrec_daemon__commit(advrec_daemon_t *d)
{
    advrec_err_t err = advrec_daemon__commit_state(d, 0);

    d->commit_ms = now_ms();
    return err;
}
