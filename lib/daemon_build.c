/*
 * daemon_build.c - building the daemon from its configuration, and tearing
 * it down: the metrics and HTTP endpoint, the codec, the engine, the
 * detectors (the engine's judge) and their stored rows, the state (opened,
 * checked for lost commits, loaded; or the lazy load of a memory budget)
 * with what the last run still owed (outbox), the Schema Registry side.
 * The round that runs on what this builds is daemon.c.
 */
#include "daemon_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "codec.h"
#include "detect.h"
#include "detect_store.h"
#include "engine.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "memlimit.h"
#include "metrics.h"
#include "outbox.h"
#include "params.h"
#include "store.h"

/* The memory limit is read this often by its own thread (lib/memlimit),
 * and a processing loop that has finished no round for MEMORY_STALL_MS
 * while memory is short is reported as stalled. */
#define MEMORY_CHECK_MS 1000
#define MEMORY_STALL_MS 10000

/* A list's delivery failed, or could not be produced: owed again. */
static void list_failed(void *opaque, uint32_t user)
{
    advrec_daemon_t *d = opaque;

    /* The outbox ignores the reports of deleted users' lists. */
    advrec_engine_mark_stale(d->engine, user, now_ms());
}

/* Appends "topic [p] (at offset N)" of one stored offset to the list in
 * opaque. */
typedef struct names_s {
    char *buf;
    size_t size, len, n;
} names_t;

static int name_offset(void *opaque, const advrec_store_offset_t *off)
{
    names_t *nm = opaque;

    if (nm->len < nm->size)
        nm->len += (size_t)snprintf(nm->buf + nm->len, nm->size - nm->len,
                                    "%s%s [%d] (at offset %lld)",
                                    nm->n++ ? ", " : "", off->topic,
                                    (int)off->partition, (long long)off->next);
    return 0;
}

/*
 * The state lost commits it had acknowledged (advrec_store_lost: the WAL
 * came back short of the ADVREC-COMMITTED witness). Every partition it has
 * an offset for may be behind, and a partition first consumed in a lost
 * commit has none at all, so state.offset.missing decides before anything
 * is consumed: fail stops here (ADVREC_ERR_STATE_LOST) naming the stored
 * partitions; earliest and committed go on, and every partition assigned
 * is resumed by that policy (on_assign). With the embedded broker (which
 * starts empty) it is only a warning.
 */
static advrec_err_t check_lost(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    char why[1024], parts[2048] = "";
    names_t nm = {parts, sizeof(parts), 0, 0};
    advrec_err_t err;

    if (!advrec_store_lost(d->store, why, sizeof(why)))
        return ADVREC_OK;
    if (d->conf->broker_embedded) {
        /* Its input is gone with the last run: nothing to replay or skip. */
        log_warning("%s; the embedded broker starts empty, so there is "
                    "nothing to replay",
                    why);
        advrec_store_seq_raise(d->store, advrec_store_witness_seq(d->store));
        return ADVREC_OK;
    }
    if ((err = advrec_store_offsets_foreach(d->store, name_offset, &nm, errstr,
                                            errstr_size)))
        return err;
    if (d->conf->state_offset_missing == ADVREC_CONF_MISSING_FAIL)
        return advrec_seterr(
            ADVREC_ERR_STATE_LOST, errstr, errstr_size,
            "%s; the partitions it holds offsets for may resume behind what "
            "was applied and published: %s (and any partition first "
            "consumed in a lost commit); state.offset.missing=fail: not "
            "starting. -X state.offset.missing=earliest replays what the "
            "state lacks (from its offsets, or a partition's beginning); "
            "=committed resumes at Kafka's committed offsets and skips it",
            why, nm.n ? parts : "none");
    log_err("%s; state.offset.missing=%s: every partition assigned resumes "
            "%s (stored: %s)",
            why,
            d->conf->state_offset_missing == ADVREC_CONF_MISSING_EARLIEST
                ? "earliest"
                : "committed",
            d->conf->state_offset_missing == ADVREC_CONF_MISSING_EARLIEST
                ? "from the state's offset, or from its beginning when the "
                  "state has none"
                : "from Kafka's committed offset where it is ahead of the "
                  "state's",
            nm.n ? parts : "none");
    d->lost = 1;
    /* The lost commits' numbers are in Kafka's metadata: never reuse them. */
    advrec_store_seq_raise(d->store, advrec_store_witness_seq(d->store));
    return ADVREC_OK;
}

/* Opens state.dir and loads every row, so scoring works from the first round
 * and the consumer resumes where the state ends, then what the last run
 * still owed (outbox). state.dir = "" keeps state in memory only (nothing
 * survives a restart). */
static advrec_err_t open_store(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    advrec_store_params_t sp;
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint64_t version = 0;
    uint32_t *owed = NULL;
    size_t n_owed = 0;
    advrec_outbox_stats_t os;
    advrec_err_t err;

    if (d->conf->state_dir[0]) {
        advrec_params_store(&sp, d->conf);
        err = advrec_store_open(d->conf->state_dir, &sp, &d->store, errstr,
                                errstr_size);
        if (err || (err = check_lost(d, errstr, errstr_size)))
            return err;
        /* With a memory budget no user is read before consuming: each is
         * read back at their next event (daemon_cache.c). */
        err = d->conf->state_memory_limit > 0
                  ? advrec_store_load_lazy(d->store, state,
                                           advrec_engine_popularity(d->engine),
                                           &version, errstr, errstr_size)
                  : advrec_store_load(d->store, state,
                                      advrec_engine_popularity(d->engine),
                                      &version, errstr, errstr_size);
        if (err)
            return err;
        advrec_engine_set_version(d->engine, version);
    } else {
        log_warning("state.dir is empty: state is kept in memory only and "
                    "lost at exit");
    }
    advrec_outbox_params_t op = {
        .topic_lists = d->conf->topic_recommendations,
        .topic_flags = d->conf->topic_anomalies,
        .topic_dead = d->conf->topic_dlq,
        .max_unacked = OUTBOX_MAX_RECORDS,
        .max_unacked_bytes = OUTBOX_MAX_BYTES,
        .truncate_bytes = DLQ_TRUNCATE_BYTES,
        .on_list_failed = list_failed,
        .opaque = d,
    };
    if (!(d->outbox = advrec_outbox_new(&op, d->store)))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    advrec_daemon__cache_init(d);
    if (!d->store)
        return ADVREC_OK;
    /* What the last run owed: lists (refreshed now), flags and dead letters
     * (produced again before the first round, advrec_daemon_start). */
    if ((err = advrec_outbox_load(d->outbox, &owed, &n_owed, errstr,
                                  errstr_size)))
        return err;
    /* Stored by uid (slots are reused as users leave): named through the
     * ids, and with a budget read back now. */
    for (size_t i = 0; i < n_owed && !err; i++) {
        char id[ADVREC_ID_MAX + 1];
        uint32_t slot;
        err = advrec_store_id_name(d->store, 0, owed[i], id, sizeof(id), errstr,
                                   errstr_size);
        if (err == ADVREC_ERR_NOT_FOUND) {
            err = ADVREC_OK; /* deleted since */
            continue;
        }
        if (!err)
            err = advrec_daemon__cache_user(d, id, &slot, errstr, errstr_size);
        if (!err)
            advrec_engine_mark_stale(d->engine, slot, now_ms());
    }
    free(owed);
    if (err)
        return err;
    advrec_outbox_stats(d->outbox, &os);
    if (n_owed || os.unacked)
        log_info("state %s: %zu user(s) owed a list and %zu flag(s) or dead "
                 "letter(s) not acknowledged in the last run; producing "
                 "them again",
                 d->conf->state_dir, n_owed, os.unacked);
    log_notice("state %s: %u users (%u in memory), %u items, model version "
               "%llu",
               d->conf->state_dir, advrec_state_user_count(state),
               advrec_state_users_resident(state), advrec_state_items(state)->n,
               (unsigned long long)version);
    return ADVREC_OK;
}

/* --- anomaly detectors (lib/detect.h): judge, persist, publish --------- */

/* The engine's judge: the detector's weight for one event. */
static float judge_event(void *opaque, const advrec_event_t *ev, uint32_t user,
                         uint32_t item, const uint32_t *hist, uint32_t hist_len)
{
    advrec_daemon_t *d = opaque;
    float w = advrec_detect_observe(d->detect, user, item, ev, hist, hist_len);

    if (w < 1.0f)
        d->c->downweighted++;
    return w;
}

/* Builds the detector and makes it the engine's judge. */
static advrec_err_t new_detector(advrec_daemon_t *d, char *errstr,
                                 size_t errstr_size)
{
    advrec_detect_params_t dp;

    advrec_params_detect(&dp, d->conf);
    d->detect = advrec_detect_new(&dp, errstr, errstr_size);
    if (!d->detect)
        return ADVREC_ERR_CONFIG;
    if (dp.enable)
        advrec_engine_set_judge(d->engine, judge_event, d);
    return ADVREC_OK;
}

/* Restores the detector rows committed with the state, so a restart goes
 * on from them (flags stay flagged, rates keep their history). */
static advrec_err_t load_detector(advrec_daemon_t *d, char *errstr,
                                  size_t errstr_size)
{
    if (!d->store)
        return ADVREC_OK;
    return advrec_detect_store_load(d->detect, d->store,
                                    advrec_engine_state(d->engine), errstr,
                                    errstr_size);
}

/*
 * Starts the HTTP endpoint (http.listen; "" is none) before the state is
 * loaded, so /health/ready can say it is loading. A malformed address is a
 * configuration error; an address that cannot be bound (in use) is logged
 * and the daemon runs without the endpoint: monitoring that cannot start
 * must not stop the service.
 */
static advrec_err_t start_http(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    advrec_http_params_t hp = {
        .listen = d->conf->http_listen,
        .metrics = d->metrics,
        .live_max_ms = d->conf->http_live_max_ms,
    };
    advrec_err_t err;
    char why[512];

    if (advrec_metrics_set_topics(d->metrics, d->conf->topic_clicks,
                                  d->conf->topic_purchases))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    if (!d->conf->http_listen[0])
        return ADVREC_OK;
    err = advrec_http_new(&d->http, &hp, why, sizeof(why));
    if (err == ADVREC_ERR_CONFIG || err == ADVREC_ERR_NOMEM)
        return advrec_seterr(err, errstr, errstr_size, "%s", why);
    if (err)
        log_err("%s: running without the HTTP endpoint", why);
    else
        log_notice("http: serving /metrics, /health/live and /health/ready "
                   "on %s (port %d)",
                   d->conf->http_listen, advrec_http_port(d->http));
    return ADVREC_OK;
}

advrec_err_t advrec_daemon_new(advrec_daemon_t **daemonp, advrec_conf_t *conf,
                               char *errstr, size_t errstr_size)
{
    advrec_daemon_t *d;
    advrec_engine_params_t params;
    advrec_err_t err;

    *daemonp = NULL;
    if ((err = advrec_conf_check(conf, errstr, errstr_size))) {
        advrec_conf_destroy(conf);
        return err;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        advrec_conf_destroy(conf);
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    }
    /* One BLAS thread: the round scores on its own thread, and OpenBLAS's
     * workers spun in sched_yield against librdkafka's and RocksDB's
     * threads (a fifth of the samples on 2 cores, docs/PERFORMANCE.md).
     * OPENBLAS_NUM_THREADS, when set, wins. */
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS"))
        openblas_set_num_threads(1);
    d->conf = conf;
    d->inputs[TOPIC_CLICKS] = conf->topic_clicks;
    d->inputs[TOPIC_PURCHASES] = conf->topic_purchases;
    d->inputs[TOPIC_CONTROL] =
        conf->topic_control[0] ? conf->topic_control : NULL;
    if (!(d->metrics = advrec_metrics_new(conf->stats_interval_ms))) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        goto fail;
    }
    d->c = advrec_metrics_counters(d->metrics);
    d->c->store_sst_bytes = d->c->store_pending_bytes = -1;
    /* Watched from its own thread, not from the round: near the limit the
     * round itself is what stalls. Without the thread the daemon runs as
     * before, unwatched. */
    if ((err = advrec_memlimit_new(&d->memlimit, d->metrics, MEMORY_CHECK_MS,
                                   MEMORY_STALL_MS, errstr, errstr_size))) {
        if (err == ADVREC_ERR_NOMEM)
            goto fail;
        log_warning("%s: memory limits are not watched", errstr);
    }
    if ((err = start_http(d, errstr, errstr_size)))
        goto fail;
    if ((err = advrec_params_codec(&d->codec, &d->rec_schema_id,
                                   &d->anomaly_schema_id, conf, errstr,
                                   errstr_size)))
        goto fail;
    advrec_params_engine(&params, conf);
    d->engine = advrec_engine_new(&params, errstr, errstr_size);
    if (!d->engine) {
        err = ADVREC_ERR_CONFIG;
        goto fail;
    }
    if ((err = new_detector(d, errstr, errstr_size)))
        goto fail;
    if ((err = open_store(d, errstr, errstr_size)) ||
        (err = load_detector(d, errstr, errstr_size)) ||
        (err = advrec_daemon__registry_new(d, errstr, errstr_size)) ||
        (err = advrec_daemon__expire_init(d, errstr, errstr_size)))
        goto fail;
    d->batch = calloc((size_t)conf->round_max_records, sizeof(*d->batch));
    d->rec_items = calloc((size_t)conf->recs_n, sizeof(*d->rec_items));
    d->enc_size = 4096;
    d->enc = malloc(d->enc_size);
    if (!d->batch || !d->rec_items || !d->enc) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        goto fail;
    }
    d->c->loaded_ms = now_ms(); /* /health/ready: the state is loaded */
    advrec_metrics_share(d->metrics);
    *daemonp = d;
    return ADVREC_OK;

fail:
    advrec_daemon_destroy(d);
    return err;
}

void advrec_daemon_destroy(advrec_daemon_t *d)
{
    if (!d)
        return;
    /* First: their threads read the metrics. */
    advrec_http_destroy(d->http);
    advrec_memlimit_destroy(d->memlimit);
    /* Held records belong to the consumer: freed before it. */
    advrec_daemon__registry_destroy(d);
    if (d->cq)
        rd_kafka_queue_destroy(d->cq);
    advrec_kafka_destroy(d->consumer);
    advrec_kafka_destroy(d->producer);
    /* After the producer: no delivery report can name a record any more. */
    advrec_outbox_destroy(d->outbox);
    advrec_daemon__changelog_destroy(d);
    advrec_daemon__model_destroy(d);
    advrec_broker_destroy(d->broker);
    advrec_store_close(d->store);
    advrec_engine_destroy(d->engine);
    advrec_detect_destroy(d->detect);
    advrec_codec_destroy(d->codec);
    advrec_conf_destroy(d->conf);
    advrec_metrics_destroy(d->metrics);
    if (d->kcommit)
        rd_kafka_topic_partition_list_destroy(d->kcommit);
    for (int t = 0; t < 3; t++)
        free(d->run_next[t]);
    advrec_daemon__expire_destroy(d);
    free(d->batch);
    free(d->offs);
    free(d->c_offs);
    free(d->rec_items);
    free(d->enc);
    free(d->reload_path);
    for (size_t i = 0; i < d->n_reload_sets; i++)
        free(d->reload_sets[i]);
    free(d->reload_sets);
    free(d);
}
