/*
 * daemon.c - owns the daemon's Kafka clients, codec, engine, detectors,
 * state store and (optionally) embedded broker, and runs the processing
 * rounds (docs/ARCHITECTURE.md, "One processing round").
 *
 * What may fail where:
 *  - a record that does not decode, does not validate, or cannot be added to
 *    the state goes to the dead-letter topic and is counted; it never stops
 *    the loop;
 *  - a full producer queue pauses consumption (we poll the producer until
 *    there is room) instead of buffering without bound;
 *  - a fatal librdkafka error (e.g. the idempotent producer fenced) or a
 *    failed state commit stops run() with an error; after a failed commit
 *    nothing of the round is produced, and a restart replays from the last
 *    good commit;
 *  - an anomaly flag is stored with the commit that raised it and leaves
 *    the state only in a commit after its delivery: a failed delivery is
 *    produced again, a crash produces it again at the next start, and too
 *    many unacknowledged flags pause consumption (FLAGS_PENDING_MAX).
 */
#include "daemon.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "codec.h"
#include "detect.h"
#include "engine.h"
#include "kafka.h"
#include "log.h"
#include "params.h"
#include "store.h"

#ifdef ADVREC_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define notify(...) sd_notifyf(0, __VA_ARGS__)
#else
#define notify(...) ((void)0)
#endif

#define TOPIC_CLICKS         0
#define TOPIC_PURCHASES      1
#define FLUSH_TIMEOUT_MS     30000
#define DLQ_LOG_PER_INTERVAL 20
/* Most anomaly flags raised and not yet acknowledged before consumption
 * pauses (see round_once): the stored set stays bounded while the broker is
 * away, and no flag is ever dropped to keep it so. */
#define FLAGS_PENDING_MAX 16384

/* Where an anomaly flag is (flag_rec_t.state). */
enum {
    FLAG_NEW,       /* staged in the round's batch, commit not yet done */
    FLAG_DUE,       /* committed, to be produced (again) */
    FLAG_IN_FLIGHT, /* produced, delivery report awaited */
    FLAG_DELIVERED, /* acknowledged: deleted from the state at next commit */
};

/* One anomaly flag owed to the broker: exactly the bytes produced (the
 * entity id as key, then the framed Avro value), kept from the commit that
 * raised it until a commit after its delivery. Its address is the message
 * opaque of its produce (even: malloc'd), so it is freed only when
 * delivered or with the producer gone. */
typedef struct flag_rec_s {
    uint64_t seq; /* its key in the store, in raising order */
    int state;
    uint32_t key_len;
    size_t value_len;
    unsigned char bytes[]; /* key, then value */
} flag_rec_t;

struct advrec_daemon_s {
    advrec_conf_t *conf; /* owned */
    advrec_codec_t *codec;
    advrec_engine_t *engine;
    advrec_detect_t *detect; /* the anomaly detectors, the engine's judge */
    advrec_store_t *store;   /* RocksDB state, or NULL: state.dir = "" */
    advrec_broker_t *broker; /* embedded broker, or NULL */
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *cq; /* the consumer's queue, for batch polls */
    int32_t rec_schema_id;
    int32_t anomaly_schema_id;
    const char *inputs[2]; /* input topic names, by TOPIC_* */
    atomic_int stop;
    atomic_int checkpoint;  /* requested by advrec_daemon_checkpoint() */
    char fatal[1024];       /* first fatal error seen by a callback */
    advrec_err_t fatal_err; /* its code: KAFKA, or STORE for a commit */

    /* Round scratch, allocated once. */
    rd_kafka_message_t **batch;
    advrec_store_offset_t *offs; /* next offset per partition in a round */
    advrec_scored_item_t *rec_items;
    unsigned char *enc;
    size_t enc_size;

    advrec_daemon_stats_t stats; /* the run thread's counters */
    advrec_daemon_stats_t shown; /* the published copy */
    pthread_mutex_t shown_lock;
    int64_t last_stats_ms;
    advrec_daemon_stats_t last_stats;
    uint64_t dlq_logged; /* DLQ records logged since the last stats line */

    /* Owed lists (see owe()): per user lists in flight, the users with
     * some, and the set staged into each commit. */
    uint16_t *in_flight;
    uint32_t *owed_list;
    uint32_t owed_cap;
    size_t n_owed;
    uint32_t *pending;
    size_t pending_cap;

    /* Anomaly flags owed to the broker (flag_rec_t), in raising order. */
    flag_rec_t **flags;
    size_t n_flags, flags_cap;
    size_t flags_unacked;  /* not yet FLAG_DELIVERED */
    size_t flags_due;      /* FLAG_DUE */
    uint64_t flag_seq;     /* seq of the next flag raised */
    int flags_paused;      /* consumption paused: FLAGS_PENDING_MAX reached */
    advrec_err_t flag_err; /* NOMEM while taking a round's flags */
};

static void produce_flags(advrec_daemon_t *d);
static void flag_delivered(advrec_daemon_t *d, flag_rec_t *f, int delivered);

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Registers every schema.<N> of the configuration with the codec and picks
 * the writer id for our recommendations. */
static advrec_err_t load_schemas(advrec_daemon_t *d, char *errstr,
                                 size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    advrec_codec_kind_t kind;
    advrec_err_t err;

    d->codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, errstr_size);
    if (!d->codec)
        return ADVREC_ERR_SCHEMA;
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        err = advrec_codec_register(d->codec, conf->schemas[i].id,
                                    conf->schemas[i].path, errstr, errstr_size);
        if (err)
            return err;
    }
    d->rec_schema_id = (int32_t)conf->schema_recommendation_id;
    if (advrec_codec_schema_kind(d->codec, d->rec_schema_id, &kind) ||
        kind != ADVREC_CODEC_RECOMMENDATION)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "schema.recommendation.id=%d does not name a "
                             "registered Recommendation schema (schema.%d)",
                             d->rec_schema_id, d->rec_schema_id);
    d->anomaly_schema_id = (int32_t)conf->schema_anomaly_id;
    if (advrec_codec_schema_kind(d->codec, d->anomaly_schema_id, &kind) ||
        kind != ADVREC_CODEC_ANOMALY)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "schema.anomaly.id=%d does not name a "
                             "registered Anomaly schema (schema.%d)",
                             d->anomaly_schema_id, d->anomaly_schema_id);
    return ADVREC_OK;
}

/* Appends a copy of key and value as flag seq in state to the owed flags
 * (the record is the daemon's). ADVREC_ERR_NOMEM, nothing appended. */
static advrec_err_t add_flag(advrec_daemon_t *d, uint64_t seq, int state,
                             const void *key, size_t key_len, const void *value,
                             size_t value_len)
{
    flag_rec_t *f;

    if (d->n_flags == d->flags_cap) {
        size_t cap = d->flags_cap ? 2 * d->flags_cap : 64;
        flag_rec_t **n = realloc(d->flags, cap * sizeof(*n));
        if (!n)
            return ADVREC_ERR_NOMEM;
        d->flags = n;
        d->flags_cap = cap;
    }
    f = malloc(sizeof(*f) + key_len + value_len);
    if (!f)
        return ADVREC_ERR_NOMEM;
    f->seq = seq;
    f->state = state;
    f->key_len = (uint32_t)key_len;
    f->value_len = value_len;
    memcpy(f->bytes, key, key_len);
    memcpy(f->bytes + key_len, value, value_len);
    d->flags[d->n_flags++] = f;
    d->flags_unacked++;
    d->flags_due += state == FLAG_DUE;
    if (seq >= d->flag_seq)
        d->flag_seq = seq + 1;
    return ADVREC_OK;
}

/* Flags stored by the last run and not acknowledged: due again. */
static int load_flag(void *opaque, uint64_t seq, const void *key,
                     size_t key_len, const void *value, size_t value_len)
{
    advrec_daemon_t *d = opaque;

    d->flag_err = add_flag(d, seq, FLAG_DUE, key, key_len, value, value_len);
    return d->flag_err != ADVREC_OK;
}

/* Opens state.dir and loads every row, so scoring works from the first round
 * and the consumer resumes where the state ends. state.dir = "" keeps state
 * in memory only (nothing survives a restart). */
static advrec_err_t open_store(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    advrec_store_params_t sp;
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint64_t version = 0;
    advrec_err_t err;

    if (!d->conf->state_dir[0]) {
        log_warning("state.dir is empty: state is kept in memory only and "
                    "lost at exit");
        return ADVREC_OK;
    }
    advrec_params_store(&sp, d->conf);
    err = advrec_store_open(d->conf->state_dir, &sp, &d->store, errstr,
                            errstr_size);
    if (err)
        return err;
    err =
        advrec_store_load(d->store, state, advrec_engine_popularity(d->engine),
                          &version, errstr, errstr_size);
    if (err)
        return err;
    advrec_engine_set_version(d->engine, version);
    /* Users whose list was owed when the last run ended get it now. */
    uint32_t *owed;
    size_t n_owed;
    err = advrec_store_load_pending(d->store, &owed, &n_owed, errstr,
                                    errstr_size);
    if (err)
        return err;
    for (size_t i = 0; i < n_owed; i++)
        advrec_engine_mark_stale(d->engine, owed[i], now_ms());
    free(owed);
    if (n_owed)
        log_info("state %s: %zu user(s) owed a list from the last run",
                 d->conf->state_dir, n_owed);
    /* Flags raised but not acknowledged when the last run ended are
     * produced again before the first round (advrec_daemon_start). */
    err =
        advrec_store_flags_foreach(d->store, load_flag, d, errstr, errstr_size);
    if (!err && d->flag_err)
        err = advrec_seterr(d->flag_err, errstr, errstr_size,
                            "out of memory loading the pending anomaly flags");
    if (err)
        return err;
    if (d->n_flags)
        log_info("state %s: %zu anomaly flag(s) not acknowledged in the last "
                 "run; producing them again",
                 d->conf->state_dir, d->n_flags);
    log_notice("state %s: %u users, %u items, model version %llu",
               d->conf->state_dir, advrec_state_users(state)->n,
               advrec_state_items(state)->n, (unsigned long long)version);
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
        d->stats.downweighted++;
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

/* Detector rows are keyed 'u' + user id, 'i' + item id, or "g" (the
 * baseline), so they survive as long as the ids and are readable. */
typedef struct detector_io_s {
    advrec_daemon_t *d;
    advrec_err_t err;
    char *errstr;
    size_t errstr_size;
} detector_io_t;

static int load_detector_row(void *opaque, const void *key, size_t key_len,
                             const void *value, size_t value_len)
{
    detector_io_t *io = opaque;
    advrec_state_t *state = advrec_engine_state(io->d->engine);
    char id[ADVREC_ID_MAX];
    const char *k = key;
    advrec_detect_row_kind_t kind;
    uint32_t idx = 0;

    if (key_len < 1 || key_len > sizeof(id)) {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key of %zu bytes", key_len);
        return 1;
    }
    memcpy(id, k + 1, key_len - 1);
    id[key_len - 1] = '\0';
    if (k[0] == 'g' && key_len == 1) {
        kind = ADVREC_DETECT_ROW_GLOBAL;
    } else if (k[0] == 'u' &&
               advrec_state_user(state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_USER;
    } else if (k[0] == 'i' &&
               advrec_state_item(state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_ITEM;
    } else {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key \"%.*s\" names no stored "
                                "user or item",
                                (int)key_len, k);
        return 1;
    }
    io->err = advrec_detect_restore(io->d->detect, kind, idx, value, value_len,
                                    io->errstr, io->errstr_size);
    if (io->err == ADVREC_ERR_PARSE)
        io->err = ADVREC_ERR_STORE;
    return io->err != ADVREC_OK;
}

/* Restores the detector rows committed with the state, so a restart goes
 * on from them (flags stay flagged, rates keep their history). */
static advrec_err_t load_detector(advrec_daemon_t *d, char *errstr,
                                  size_t errstr_size)
{
    detector_io_t io = {d, ADVREC_OK, errstr, errstr_size};
    advrec_err_t err;

    if (!d->store)
        return ADVREC_OK;
    err = advrec_store_detectors_foreach(d->store, load_detector_row, &io,
                                         errstr, errstr_size);
    return err ? err : io.err;
}

static int stage_detector_row(void *opaque, advrec_detect_row_kind_t kind,
                              uint32_t idx, const void *value, size_t len)
{
    detector_io_t *io = opaque;
    advrec_state_t *state = advrec_engine_state(io->d->engine);
    char key[ADVREC_ID_MAX + 1];
    const char *id =
        kind == ADVREC_DETECT_ROW_USER   ? advrec_state_user_name(state, idx)
        : kind == ADVREC_DETECT_ROW_ITEM ? advrec_state_item_name(state, idx)
                                         : "";
    int n = snprintf(key, sizeof(key), "%c%s",
                     kind == ADVREC_DETECT_ROW_USER   ? 'u'
                     : kind == ADVREC_DETECT_ROW_ITEM ? 'i'
                                                      : 'g',
                     id ? id : "");

    io->err =
        advrec_store_stage_detector(io->d->store, key, (size_t)n, value, len);
    return io->err != ADVREC_OK;
}

static int forget_row(void *opaque, advrec_detect_row_kind_t kind, uint32_t idx,
                      const void *value, size_t len)
{
    (void)opaque;
    (void)kind;
    (void)idx;
    (void)value;
    (void)len;
    return 0;
}

/* Stages every detector row the round changed into the round's batch. */
static void stage_detector(advrec_daemon_t *d)
{
    detector_io_t io = {d, ADVREC_OK, NULL, 0};

    /* Without a store the rows are only forgotten (state in memory). */
    advrec_detect_foreach_dirty(
        d->detect, d->store ? stage_detector_row : forget_row, &io);
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
    d->conf = conf;
    pthread_mutex_init(&d->shown_lock, NULL);
    d->inputs[TOPIC_CLICKS] = conf->topic_clicks;
    d->inputs[TOPIC_PURCHASES] = conf->topic_purchases;
    if ((err = load_schemas(d, errstr, errstr_size)))
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
        (err = load_detector(d, errstr, errstr_size)))
        goto fail;
    d->batch = calloc((size_t)conf->round_max_records, sizeof(*d->batch));
    d->offs = calloc((size_t)conf->round_max_records, sizeof(*d->offs));
    d->rec_items = calloc((size_t)conf->recs_n, sizeof(*d->rec_items));
    d->enc_size = 4096;
    d->enc = malloc(d->enc_size);
    if (!d->batch || !d->offs || !d->rec_items || !d->enc) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        goto fail;
    }
    *daemonp = d;
    return ADVREC_OK;

fail:
    advrec_daemon_destroy(d);
    return err;
}

/*
 * Owed lists. A user whose list is produced but not yet acknowledged stays
 * in the owed set that every commit stores (advrec_store_stage_pending), as
 * do stale users: after a crash the restarted daemon refreshes them again,
 * so a list is never lost between the commit of its input and its delivery
 * (outputs at-least-once). owe() counts a list in flight for user; paid()
 * settles it when its delivery report arrives (a failed delivery makes the
 * user stale again, to be retried). 0, or ADVREC_ERR_NOMEM.
 */
static advrec_err_t owe(advrec_daemon_t *d, uint32_t user)
{
    if (user >= d->owed_cap) {
        uint32_t cap = d->owed_cap ? d->owed_cap : 1024;
        while (cap <= user)
            cap *= 2;
        uint16_t *n = realloc(d->in_flight, cap * sizeof(*n));
        if (!n)
            return ADVREC_ERR_NOMEM;
        memset(n + d->owed_cap, 0, (cap - d->owed_cap) * sizeof(*n));
        d->in_flight = n;
        uint32_t *l = realloc(d->owed_list, cap * sizeof(*l));
        if (!l)
            return ADVREC_ERR_NOMEM;
        d->owed_list = l;
        d->owed_cap = cap;
    }
    if (d->in_flight[user]++ == 0)
        d->owed_list[d->n_owed++] = user;
    return ADVREC_OK;
}

static void paid(advrec_daemon_t *d, uint32_t user, int delivered)
{
    if (user < d->owed_cap && d->in_flight[user] > 0)
        d->in_flight[user]--;
    if (!delivered)
        advrec_engine_mark_stale(d->engine, user, now_ms());
}

/* Stages the owed set (stale users and lists in flight) into the next
 * commit, and forgets settled users. */
static advrec_err_t stage_owed(advrec_daemon_t *d)
{
    size_t n_stale, n = 0, kept = 0;
    const uint32_t *stale = advrec_engine_stale_users(d->engine, &n_stale);
    advrec_user_ext_t *ux =
        advrec_state_user_ext(advrec_engine_state(d->engine));

    for (size_t i = 0; i < d->n_owed; i++)
        if (d->in_flight[d->owed_list[i]] > 0)
            d->owed_list[kept++] = d->owed_list[i];
    d->n_owed = kept;
    if (d->pending_cap < n_stale + kept) {
        uint32_t *p = realloc(d->pending, (n_stale + kept) * sizeof(*p));
        if (!p)
            return ADVREC_ERR_NOMEM;
        d->pending = p;
        d->pending_cap = n_stale + kept;
    }
    if (n_stale) /* stale is NULL before the first user ever went stale */
        memcpy(d->pending, stale, n_stale * sizeof(*stale));
    n = n_stale;
    for (size_t i = 0; i < kept; i++)
        if (!ux->stale_since[d->owed_list[i]]) /* not already listed */
            d->pending[n++] = d->owed_list[i];
    return advrec_store_stage_pending(d->store, d->pending, n);
}

/* Delivery reports arrive on the run thread (we serve them with
 * rd_kafka_poll), so plain counters suffice. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    advrec_daemon_t *d = opaque;

    /* A recommendation carries its user as an odd message opaque (index
     * * 2 + 1), an anomaly flag its flag_rec_t (malloc'd: even), a DLQ
     * record none. */
    uintptr_t tag = (uintptr_t)m->_private;
    if (tag & 1)
        paid(d, (uint32_t)(tag >> 1), m->err == 0);
    else if (tag)
        flag_delivered(d, m->_private, m->err == 0);
    if (!m->err) {
        d->stats.delivered++;
        return;
    }
    if (d->stats.delivery_failed++ < 10)
        log_err("delivery to %s [%d] failed: %s", rd_kafka_topic_name(m->rkt),
                (int)m->partition, rd_kafka_err2str(m->err));
}

/* Fatal client errors (e.g. the idempotent producer lost its guarantees)
 * stop the daemon; everything else is logged by the shared error_cb. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    advrec_daemon_t *d = opaque;
    char fatal[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        if (!d->fatal[0]) {
            snprintf(d->fatal, sizeof(d->fatal), "%s: fatal error: %s",
                     rd_kafka_name(rk), fatal);
            d->fatal_err = ADVREC_ERR_KAFKA;
        }
        atomic_store(&d->stop, 1);
        return;
    }
    log_warning("%s: %s: %s", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int cooperative =
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

    advrec_daemon_t *d = opaque;
    int resumed = 0;

    /* The embedded broker starts empty with every run, so offsets stored
     * against an earlier one point past its end: there the state is kept
     * but consumption starts from what this broker holds. */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && d->store && !d->broker) {
        /* Exactly-once state: resume from the offsets committed with the
         * state, not from Kafka's; a partition the state has never seen
         * keeps RD_KAFKA_OFFSET_INVALID (committed offset, else
         * auto.offset.reset). */
        char why[256];
        for (int i = 0; i < parts->cnt; i++) {
            int64_t next;
            advrec_err_t serr = advrec_store_offset(
                d->store, parts->elems[i].topic, parts->elems[i].partition,
                &next, why, sizeof(why));
            if (serr == ADVREC_OK) {
                parts->elems[i].offset = next;
                resumed++;
            } else if (serr != ADVREC_ERR_NOT_FOUND) {
                log_err("rebalance: %s", why);
            }
        }
    }
    log_info("rebalance: %s %d partition(s)%s",
             err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned"
                                                         : "revoked",
             parts->cnt, resumed ? ", resuming from stored offsets" : "");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
    } else {
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_err("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        log_err("rebalance: %s", rd_kafka_err2str(ret));
    }
}

/* Sets key=value unless the user set kafka.key themselves. */
static advrec_err_t default_prop(const advrec_conf_t *conf,
                                 rd_kafka_conf_t *rk_conf, const char *key,
                                 const char *value, char *errstr,
                                 size_t errstr_size)
{
    if (advrec_conf_kafka_get(conf, key))
        return ADVREC_OK;
    return advrec_kafka_conf_set(rk_conf, key, value, errstr, errstr_size);
}

/* A librdkafka configuration for one of our clients: the user's kafka.*
 * pairs over our defaults, our callbacks and, for the embedded broker, its
 * address. NULL with errstr on failure. */
static rd_kafka_conf_t *client_conf(advrec_daemon_t *d, int consumer,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const advrec_conf_t *conf = d->conf;

    advrec_kafka_conf_route_logs(c);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_opaque(c, d);
    if (advrec_conf_kafka_apply(conf, c, consumer, errstr, errstr_size))
        goto fail;
    if (d->broker && advrec_kafka_conf_set(c, "bootstrap.servers",
                                           advrec_broker_bootstraps(d->broker),
                                           errstr, errstr_size))
        goto fail;
    if (consumer) {
        /* Offsets are stored only for records whose effects are applied. */
        if (advrec_kafka_conf_set(c, "enable.auto.offset.store", "false",
                                  errstr, errstr_size) ||
            default_prop(conf, c, "auto.offset.reset", "earliest", errstr,
                         errstr_size))
            goto fail;
        rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    } else {
        if (advrec_kafka_conf_set(c, "enable.idempotence", "true", errstr,
                                  errstr_size) ||
            /* Same partition for a key as the Java client would choose. */
            default_prop(conf, c, "partitioner", "murmur2_random", errstr,
                         errstr_size) ||
            default_prop(conf, c, "linger.ms", "5", errstr, errstr_size))
            goto fail;
        rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
    }
    return c;

fail:
    rd_kafka_conf_destroy(c);
    return NULL;
}

advrec_err_t advrec_daemon_start(advrec_daemon_t *d, char *errstr,
                                 size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    const char *outputs[] = {conf->topic_clicks, conf->topic_purchases,
                             conf->topic_recommendations, conf->topic_anomalies,
                             conf->topic_dlq};
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_conf_t *c;
    rd_kafka_resp_err_t kerr;
    char why[512];

    if (conf->broker_embedded) {
        d->broker = advrec_broker_new(1, errstr, errstr_size);
        if (!d->broker)
            return ADVREC_ERR_KAFKA;
        for (size_t i = 0; i < sizeof(outputs) / sizeof(*outputs); i++)
            if (advrec_broker_create_topic(
                    d->broker, outputs[i],
                    (int)conf->broker_embedded_partitions, errstr, errstr_size))
                return ADVREC_ERR_KAFKA;
        log_notice("embedded broker (in-memory, for demos and tests) at %s; "
                   "it starts empty, so input offsets stored in the state "
                   "are not used",
                   advrec_broker_bootstraps(d->broker));
    }

    if (!(c = client_conf(d, 0, errstr, errstr_size)))
        return ADVREC_ERR_CONFIG;
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, why, sizeof(why));
    if (!d->producer) {
        rd_kafka_conf_destroy(c);
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot create the producer: %s", why);
    }
    if (!(c = client_conf(d, 1, errstr, errstr_size)))
        return ADVREC_ERR_CONFIG;
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, c, why, sizeof(why));
    if (!d->consumer) {
        rd_kafka_conf_destroy(c);
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot create the consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(d->consumer);
    d->cq = rd_kafka_queue_get_consumer(d->consumer);

    topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, conf->topic_clicks,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, conf->topic_purchases,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(d->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr)
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot subscribe to %s and %s: %s",
                             conf->topic_clicks, conf->topic_purchases,
                             rd_kafka_err2str(kerr));
    log_notice("consuming %s and %s as group %s", conf->topic_clicks,
               conf->topic_purchases,
               advrec_conf_kafka_get(conf, "group.id")
                   ? advrec_conf_kafka_get(conf, "group.id")
                   : conf->group_id);
    /* Flags the last run left unacknowledged go out before any new one. */
    produce_flags(d);
    return ADVREC_OK;
}

/*
 * Produces one message, waiting while the producer queue is full: this is
 * the backpressure that pauses consumption instead of buffering without
 * bound. headers are owned by librdkafka on success and destroyed here on
 * failure. Returns the final librdkafka error.
 */
static rd_kafka_resp_err_t produce(advrec_daemon_t *d, const char *topic,
                                   const void *key, size_t key_len,
                                   const void *val, size_t val_len,
                                   rd_kafka_headers_t *headers,
                                   void *msg_opaque)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        if (headers)
            err = rd_kafka_producev(d->producer, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY(key, key_len),
                                    RD_KAFKA_V_VALUE((void *)val, val_len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(headers),
                                    RD_KAFKA_V_OPAQUE(msg_opaque),
                                    RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(d->producer, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY(key, key_len),
                                    RD_KAFKA_V_VALUE((void *)val, val_len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_OPAQUE(msg_opaque),
                                    RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        d->stats.backpressure++;
        rd_kafka_poll(d->producer, 100);
        if (d->fatal[0])
            break;
    }
    if (err) {
        if (headers)
            rd_kafka_headers_destroy(headers);
        log_err("cannot produce to %s: %s", topic, rd_kafka_err2str(err));
        d->stats.delivery_failed++;
    }
    return err;
}

/* Sends a record that could not be applied to the dead-letter topic: its
 * key, value and headers as they came, plus headers naming the reason and
 * its source. */
static void to_dlq(advrec_daemon_t *d, const rd_kafka_message_t *m,
                   advrec_dlq_reason_t reason, const char *why)
{
    rd_kafka_headers_t *in = NULL, *h;
    char num[32];

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
    if (produce(d, d->conf->topic_dlq, m->key, m->key_len, m->payload, m->len,
                h, NULL) == RD_KAFKA_RESP_ERR_NO_ERROR)
        d->stats.dlq++;
}

/* Decodes and applies one input record; anything wrong goes to the DLQ. */
static void handle(advrec_daemon_t *d, const rd_kafka_message_t *m, int64_t now)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    advrec_event_t ev;
    advrec_origin_t origin;
    advrec_dlq_reason_t reason = ADVREC_DLQ_NONE;
    advrec_err_t err;
    char why[512];

    d->stats.consumed++;
    origin.topic = strcmp(topic, d->inputs[TOPIC_PURCHASES]) == 0
                       ? TOPIC_PURCHASES
                       : TOPIC_CLICKS;
    origin.partition = m->partition;
    origin.offset = m->offset;
    err = advrec_codec_decode_event(d->codec, m->payload, m->len, &ev, &reason,
                                    why, sizeof(why));
    if (!err && (err = advrec_engine_apply(d->engine, &ev, topic, &origin, 1.0f,
                                           now, why, sizeof(why))))
        reason = advrec_dlq_reason_from_err(err);
    if (err) {
        to_dlq(d, m, reason, why);
        return;
    }
    if (ev.type == ADVREC_EVENT_PURCHASE)
        d->stats.purchases++;
    else
        d->stats.clicks++;
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

    snprintf(rec.user_id, sizeof(rec.user_id), "%s", list->user_id);
    for (uint32_t i = 0; i < list->n; i++) {
        snprintf(d->rec_items[i].item_id, sizeof(d->rec_items[i].item_id), "%s",
                 advrec_state_item_name(state, list->items[i]));
        d->rec_items[i].score = list->scores[i];
    }
    rec.items = d->rec_items;
    rec.n_items = list->n;
    rec.model_version = (int64_t)advrec_engine_version(d->engine);
    snprintf(rec.input_topic, sizeof(rec.input_topic), "%s",
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
    if (owe(d, list->user))
        return; /* out of memory: the user stays owed, refreshed later */
    if (produce(d, d->conf->topic_recommendations, list->user_id,
                strlen(list->user_id), d->enc, len, NULL,
                (void *)((uintptr_t)list->user << 1 | 1)) == 0) {
        d->stats.recs++;
        d->stats.recs_popular += (uint64_t)list->popular;
    } else {
        paid(d, list->user, 0);
    }
}

/* --- anomaly flags: stored with the round, produced after its commit - */

/*
 * Encodes one transition as an Anomaly, keeps it among the owed flags and
 * stages it into the round's batch, so it is committed with the detector
 * state that raised it; it is produced only after that commit
 * (produce_flags). Out of memory sets d->flag_err: the round must not
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
    uint64_t seq = d->flag_seq;
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
    err = add_flag(d, seq, FLAG_NEW, a.entity_id, strlen(a.entity_id), d->enc,
                   len);
    if (!err && d->store)
        err = advrec_store_stage_flag(d->store, seq, a.entity_id,
                                      strlen(a.entity_id), d->enc, len);
    if (err) {
        d->flag_err = err;
        return;
    }
    d->stats.flags++;
    d->stats.flags_quarantined += flag->action == ADVREC_ANOMALY_QUARANTINED;
    d->stats.flags_cleared += flag->action == ADVREC_ANOMALY_CLEARED;
}

/*
 * Before a commit: takes the round's transitions (raise_flag) and stages
 * the deletion of every flag delivered since the last commit, forgetting
 * it. ADVREC_ERR_NOMEM when a flag could not be kept.
 */
static advrec_err_t stage_flags(advrec_daemon_t *d)
{
    size_t kept = 0;

    d->flag_err = ADVREC_OK;
    advrec_detect_take(d->detect, raise_flag, d);
    for (size_t i = 0; i < d->n_flags; i++) {
        flag_rec_t *f = d->flags[i];
        if (f->state != FLAG_DELIVERED) {
            d->flags[kept++] = f;
            continue;
        }
        if (d->store &&
            advrec_store_stage_flag(d->store, f->seq, NULL, 0, NULL, 0)) {
            d->flags[kept++] = f; /* stays stored: sent again at restart */
            continue;
        }
        free(f);
    }
    d->n_flags = kept;
    return d->flag_err;
}

/* After a successful commit: the flags it stored may be produced. */
static void flags_committed(advrec_daemon_t *d)
{
    for (size_t i = d->n_flags; i-- > 0 && d->flags[i]->state == FLAG_NEW;) {
        d->flags[i]->state = FLAG_DUE;
        d->flags_due++;
    }
}

/*
 * Produces every due flag (newly committed, failed, or left by the last
 * run), oldest first, keyed by entity; the record is the message opaque.
 * A produce that fails at once leaves the rest due until the next round
 * (one error line per round, not one per flag).
 */
static void produce_flags(advrec_daemon_t *d)
{
    for (size_t i = 0; i < d->n_flags && d->flags_due > 0; i++) {
        flag_rec_t *f = d->flags[i];
        if (f->state != FLAG_DUE)
            continue;
        if (produce(d, d->conf->topic_anomalies, f->bytes, f->key_len,
                    f->bytes + f->key_len, f->value_len, NULL, f))
            return;
        f->state = FLAG_IN_FLIGHT;
        d->flags_due--;
    }
}

/* A flag's delivery report: acknowledged, or due again. */
static void flag_delivered(advrec_daemon_t *d, flag_rec_t *f, int delivered)
{
    if (f->state != FLAG_IN_FLIGHT)
        return;
    if (delivered) {
        f->state = FLAG_DELIVERED;
        d->flags_unacked--;
    } else {
        f->state = FLAG_DUE;
        d->flags_due++;
    }
}

/*
 * Ends a round's input side: commits every row the round changed together
 * with the next offset of every partition it consumed (one RocksDB
 * WriteBatch), then stores those offsets in the consumer for the
 * asynchronous commit to Kafka, which only reports progress (lag). A failed
 * state commit stops the daemon: a restart replays from the last good one.
 */
static advrec_err_t commit_round(advrec_daemon_t *d, rd_kafka_message_t **msgs,
                                 ssize_t n)
{
    rd_kafka_topic_partition_list_t *offs;
    size_t n_offs = 0;
    rd_kafka_resp_err_t kerr;
    advrec_err_t err = ADVREC_OK;
    char why[512];

    for (ssize_t i = 0; i < n; i++) {
        const char *topic;
        size_t j;
        if (msgs[i]->err)
            continue;
        topic = rd_kafka_topic_name(msgs[i]->rkt);
        for (j = 0; j < n_offs; j++)
            if (d->offs[j].partition == msgs[i]->partition &&
                strcmp(d->offs[j].topic, topic) == 0)
                break;
        if (j == n_offs) {
            d->offs[n_offs].topic = topic;
            d->offs[n_offs].partition = msgs[i]->partition;
            d->offs[n_offs++].next = msgs[i]->offset + 1;
        } else if (msgs[i]->offset + 1 > d->offs[j].next) {
            d->offs[j].next = msgs[i]->offset + 1;
        }
    }
    if (n_offs == 0)
        return ADVREC_OK;
    stage_detector(d);
    if ((err = stage_flags(d)))
        snprintf(why, sizeof(why), "out of memory for the anomaly flags");
    else if (d->store && (err = stage_owed(d)))
        snprintf(why, sizeof(why), "out of memory for the owed set");
    else if (d->store)
        err = advrec_store_commit(d->store, advrec_engine_state(d->engine),
                                  advrec_engine_popularity(d->engine),
                                  advrec_engine_version(d->engine), d->offs,
                                  n_offs, why, sizeof(why));
    else
        advrec_state_clear_dirty(advrec_engine_state(d->engine));
    if (err) {
        snprintf(d->fatal, sizeof(d->fatal), "state commit failed: %s", why);
        d->fatal_err = err;
        atomic_store(&d->stop, 1);
        return err;
    }
    flags_committed(d);
    offs = rd_kafka_topic_partition_list_new((int)n_offs);
    for (size_t j = 0; j < n_offs; j++)
        rd_kafka_topic_partition_list_add(offs, d->offs[j].topic,
                                          d->offs[j].partition)
            ->offset = d->offs[j].next;
    if ((kerr = rd_kafka_offsets_store(d->consumer, offs)))
        log_debug("offsets_store: %s", rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(offs);
    return ADVREC_OK;
}

static void publish_stats(advrec_daemon_t *d, int64_t now, int final)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_daemon_stats_t *s = &d->stats, *l = &d->last_stats;
    double secs;

    s->users = advrec_state_users(state)->n;
    s->items = advrec_state_items(state)->n;
    s->flags_pending = d->flags_unacked;
    pthread_mutex_lock(&d->shown_lock);
    d->shown = *s;
    pthread_mutex_unlock(&d->shown_lock);
    if (!final && (d->conf->stats_interval_ms == 0 ||
                   now - d->last_stats_ms < d->conf->stats_interval_ms))
        return;
    secs = (double)(now - d->last_stats_ms) / 1000.0;
    if (secs <= 0)
        secs = 1e-3;
    log_info("%s: %.0f events/s, %.0f lists/s; total %llu clicks, %llu "
             "purchases, %llu lists, %llu dlq, %llu flags (%llu quarantined, "
             "%llu cleared, %llu events down-weighted, %llu flags pending); "
             "%u users, %u items, %zu stale",
             final ? "final" : "stats",
             (double)(s->clicks + s->purchases - l->clicks - l->purchases) /
                 secs,
             (double)(s->recs - l->recs) / secs, (unsigned long long)s->clicks,
             (unsigned long long)s->purchases, (unsigned long long)s->recs,
             (unsigned long long)s->dlq, (unsigned long long)s->flags,
             (unsigned long long)s->flags_quarantined,
             (unsigned long long)s->flags_cleared,
             (unsigned long long)s->downweighted,
             (unsigned long long)s->flags_pending, s->users, s->items,
             advrec_engine_stale_count(d->engine));
    notify("STATUS=%llu events, %llu lists, %llu dlq, %u users",
           (unsigned long long)(s->clicks + s->purchases),
           (unsigned long long)s->recs, (unsigned long long)s->dlq, s->users);
    d->last_stats = *s;
    d->last_stats_ms = now;
    d->dlq_logged = 0;
}

/* One processing round. */
static void round_once(advrec_daemon_t *d)
{
    ssize_t n;
    int64_t now;
    advrec_err_t err;

    /* Backpressure for flags: consuming more could raise more flags while
     * this many are unacknowledged (broker away, anomalies topic failing),
     * so wait for deliveries instead of growing the stored set or dropping
     * any. Failed ones are produced again meanwhile. */
    if (d->flags_unacked >= FLAGS_PENDING_MAX) {
        if (!d->flags_paused)
            log_warning("%zu anomaly flags not acknowledged by the broker "
                        "(limit %d): consumption paused until they are "
                        "delivered",
                        d->flags_unacked, FLAGS_PENDING_MAX);
        d->flags_paused = 1;
        d->stats.backpressure++;
        produce_flags(d);
        rd_kafka_poll(d->producer, 100);
        publish_stats(d, now_ms(), 0);
        return;
    }
    if (d->flags_paused) {
        log_notice("anomaly flags acknowledged (%zu pending): consumption "
                   "resumed",
                   d->flags_unacked);
        d->flags_paused = 0;
    }
    n = rd_kafka_consume_batch_queue(d->cq, (int)d->conf->round_max_ms,
                                     d->batch,
                                     (size_t)d->conf->round_max_records);
    now = now_ms();
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = d->batch[i];
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warning("consumer: %s%s%s",
                            m->rkt ? rd_kafka_topic_name(m->rkt) : "",
                            m->rkt ? ": " : "", rd_kafka_message_errstr(m));
            continue;
        }
        handle(d, m, now);
    }
    err = commit_round(d, d->batch, n);
    for (ssize_t i = 0; i < n; i++)
        rd_kafka_message_destroy(d->batch[i]);
    if (err)
        return; /* outputs never run ahead of committed state */
    produce_flags(d);
    /* Refresh what is due; bounded per round so a burst of stale users
     * cannot starve consumption. */
    advrec_engine_refresh(d->engine, now, 0, (size_t)d->conf->round_max_records,
                          emit, d);
    rd_kafka_poll(d->producer, 0);
    d->stats.rounds++;
    publish_stats(d, now, 0);
}

/* Writes the requested checkpoint (between rounds, so it holds whole rounds
 * only). A failure is logged and the daemon goes on: a backup that could not
 * be made must not stop the service. */
static void write_checkpoint(advrec_daemon_t *d)
{
    const char *base = d->conf->state_checkpoint_dir;
    char path[4096], why[512], stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    if (!d->store) {
        log_warning("checkpoint requested, but state.dir is empty: state is "
                    "in memory only");
        return;
    }
    if (mkdir(base, 0750) != 0 && errno != EEXIST) {
        log_err("checkpoint: cannot create %s: %s", base, strerror(errno));
        return;
    }
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(path, sizeof(path), "%s/%s", base, stamp);
    for (int n = 1; access(path, F_OK) == 0 && n < 100; n++)
        snprintf(path, sizeof(path), "%s/%s.%d", base, stamp, n);
    if (advrec_store_checkpoint(d->store, path, why, sizeof(why)))
        log_err("checkpoint: %s", why);
    else
        log_notice("checkpoint written to %s (start a daemon from it with "
                   "-X state.dir=%s)",
                   path, path);
}

advrec_err_t advrec_daemon_run(advrec_daemon_t *d, char *errstr,
                               size_t errstr_size)
{
    rd_kafka_resp_err_t kerr;

    d->last_stats_ms = now_ms();
    notify("READY=1");
    while (!atomic_load(&d->stop)) {
        round_once(d);
        if (atomic_exchange(&d->checkpoint, 0))
            write_checkpoint(d);
    }
    notify("STOPPING=1");
    if (d->fatal[0])
        return advrec_seterr(d->fatal_err ? d->fatal_err : ADVREC_ERR_KAFKA,
                             errstr, errstr_size, "%s", d->fatal);

    /* Clean stop: every user with news gets a list, then deliver it all. */
    log_info("stopping: refreshing %zu stale user(s), flushing",
             advrec_engine_stale_count(d->engine));
    advrec_engine_refresh(d->engine, now_ms(), 1, 0, emit, d);
    produce_flags(d); /* those whose delivery failed: one more try */
    kerr = rd_kafka_flush(d->producer, FLUSH_TIMEOUT_MS);
    if (kerr)
        log_err("flush: %d message(s) not delivered within %d ms",
                rd_kafka_outq_len(d->producer), FLUSH_TIMEOUT_MS);
    /* What the flush delivered is no longer owed; undelivered flags stay
     * stored for the next start. */
    if (d->flags_unacked)
        log_warning("%zu anomaly flag(s) not acknowledged: kept in the state, "
                    "produced again at the next start",
                    d->flags_unacked);
    if (d->store) {
        char why[512];
        if (stage_flags(d) || stage_owed(d) ||
            advrec_store_commit(d->store, advrec_engine_state(d->engine),
                                advrec_engine_popularity(d->engine),
                                advrec_engine_version(d->engine), NULL, 0, why,
                                sizeof(why)))
            log_warning("final commit of the owed set failed (the lists "
                        "and flags will be sent again at restart)");
    }
    kerr = rd_kafka_commit(d->consumer, NULL, 0);
    if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warning("final offset commit: %s", rd_kafka_err2str(kerr));
    rd_kafka_consumer_close(d->consumer);
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

const char *advrec_daemon_bootstraps(const advrec_daemon_t *d)
{
    return d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
}

void advrec_daemon_stats(const advrec_daemon_t *d, advrec_daemon_stats_t *stats)
{
    pthread_mutex_lock((pthread_mutex_t *)&d->shown_lock);
    *stats = d->shown;
    pthread_mutex_unlock((pthread_mutex_t *)&d->shown_lock);
}

void advrec_daemon_destroy(advrec_daemon_t *d)
{
    if (!d)
        return;
    if (d->cq)
        rd_kafka_queue_destroy(d->cq);
    if (d->consumer)
        rd_kafka_destroy(d->consumer);
    if (d->producer)
        rd_kafka_destroy(d->producer);
    advrec_broker_destroy(d->broker);
    advrec_store_close(d->store);
    advrec_engine_destroy(d->engine);
    advrec_detect_destroy(d->detect);
    advrec_codec_destroy(d->codec);
    advrec_conf_destroy(d->conf);
    free(d->batch);
    free(d->offs);
    free(d->in_flight);
    free(d->owed_list);
    free(d->pending);
    /* After the producer: no delivery report can name a flag any more. */
    for (size_t i = 0; i < d->n_flags; i++)
        free(d->flags[i]);
    free(d->flags);
    free(d->rec_items);
    free(d->enc);
    pthread_mutex_destroy(&d->shown_lock);
    free(d);
}
