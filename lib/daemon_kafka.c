/*
 * daemon_kafka.c - the pipeline's Kafka side: its two clients (lib/kafka,
 * built from the configuration by lib/params), the hooks they call back
 * (deliveries to the outbox, assignments seeking to the stored offsets,
 * consumer lag into the metrics, the watchdog fed while the producer
 * waits), the embedded broker, and advrec_daemon_start.
 */
#include "daemon_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "params.h"

/* Every delivery report: counted, then settled by the outbox (which knows
 * what the message was). Served on the run thread (rd_kafka_poll). */
static void on_delivery(void *opaque, const rd_kafka_message_t *m)
{
    advrec_daemon_t *d = opaque;

    if (advrec_daemon__changelog_delivered(d, m) ||
        advrec_daemon__model_delivered(d, m))
        return;
    if (!m->err)
        d->c->delivered++;
    else if (d->c->delivery_failed++ < 10)
        log_err("delivery to %s [%d] failed: %s (produced again)",
                rd_kafka_topic_name(m->rkt), (int)m->partition,
                rd_kafka_err2str(m->err));
    advrec_outbox_delivered(d->outbox, m);
}

/*
 * The producer waits for room in its queue (a broker away or slow): the
 * loop is alive, so systemd's watchdog is fed. A restart would not bring
 * the broker back and would reload the whole state for nothing; the outage
 * shows in the backpressure counter and, once the outbox fills, in the
 * "consumption paused" warning.
 */
static void on_produce_wait(void *opaque)
{
    advrec_daemon_t *d = opaque;

    advrec_metrics_watchdog(d->metrics, now_ms());
}

static int input_index(const advrec_daemon_t *d, const char *topic)
{
    return strcmp(topic, d->inputs[TOPIC_CLICKS]) == 0      ? TOPIC_CLICKS
           : strcmp(topic, d->inputs[TOPIC_PURCHASES]) == 0 ? TOPIC_PURCHASES
           : d->inputs[TOPIC_CONTROL] &&
                   strcmp(topic, d->inputs[TOPIC_CONTROL]) == 0
               ? TOPIC_CONTROL
               : -1;
}

int advrec_daemon__run_offset_set(advrec_daemon_t *d, const char *topic,
                                  int32_t partition, int64_t next)
{
    int t = input_index(d, topic);

    if (t < 0 || partition < 0)
        return 0;
    if (partition >= d->run_next_cap[t]) {
        int32_t cap = d->run_next_cap[t] ? d->run_next_cap[t] : 16;
        while (cap <= partition)
            cap *= 2;
        int64_t *n = realloc(d->run_next[t], (size_t)cap * sizeof(*n));
        if (!n)
            return -1;
        memset(n + d->run_next_cap[t], 0,
               (size_t)(cap - d->run_next_cap[t]) * sizeof(*n));
        d->run_next[t] = n;
        d->run_next_cap[t] = cap;
    }
    d->run_next[t][partition] = next;
    return 0;
}

#define META_PREFIX "advrec1 "

void advrec_daemon__kafka_commit(advrec_daemon_t *d, int async)
{
    rd_kafka_resp_err_t kerr;
    char meta[96] = "";

    d->kcommit_ms = now_ms();
    if (!d->kcommit || d->kcommit->cnt == 0 || !d->consumer)
        return;
    if (d->store)
        snprintf(meta, sizeof(meta), META_PREFIX "%s %llu",
                 advrec_store_id(d->store),
                 (unsigned long long)advrec_store_seq(d->store));
    for (int i = 0; meta[0] && i < d->kcommit->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &d->kcommit->elems[i];
        free(tp->metadata); /* the list frees it */
        tp->metadata = strdup(meta);
        tp->metadata_size = tp->metadata ? strlen(meta) : 0;
    }
    kerr = rd_kafka_commit(advrec_kafka_rk(d->consumer), d->kcommit, async);
    if (kerr)
        log_debug("offset commit: %s", rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(d->kcommit);
    d->kcommit = NULL;
}

/* Queues next as (topic, partition)'s offset for the next Kafka commit. */
static void queue_commit(advrec_daemon_t *d, const char *topic,
                         int32_t partition, int64_t next)
{
    rd_kafka_topic_partition_t *tp;

    if (!d->kcommit && !(d->kcommit = rd_kafka_topic_partition_list_new(8)))
        return;
    tp = rd_kafka_topic_partition_list_find(d->kcommit, topic, partition);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(d->kcommit, topic, partition);
    if (tp->offset < next)
        tp->offset = next;
}

/*
 * Records in the state the offsets state.offset.missing=committed moved
 * partitions to (one commit of offsets only: the rounds before committed
 * every row), so the next start resumes there without asking again and
 * Kafka hears of them. A failed commit stops the daemon, as in a round.
 */
static void record_jumps(advrec_daemon_t *d, const advrec_store_offset_t *jump,
                         size_t n)
{
    char why[512];
    advrec_err_t err;

    if (advrec_daemon__commit_finish(d, 1))
        return;
    err = advrec_store_commit(d->store, advrec_engine_state(d->engine),
                              advrec_engine_popularity(d->engine),
                              advrec_engine_version(d->engine), jump, n, why,
                              sizeof(why));

    if (err) {
        advrec_daemon__fail(d, err, "state commit failed", why);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        (void)advrec_daemon__run_offset_set(d, jump[j].topic, jump[j].partition,
                                            jump[j].next);
        queue_commit(d, jump[j].topic, jump[j].partition, jump[j].next);
    }
}

/* Keeps the assigned input partitions for the metrics (add or remove). */
static void note_owned(advrec_daemon_t *d,
                       const rd_kafka_topic_partition_list_t *parts, int add)
{
    advrec_counters_t *c = d->c;

    for (int i = 0; i < parts->cnt; i++) {
        int t = input_index(d, parts->elems[i].topic);
        int32_t p = parts->elems[i].partition;
        uint32_t j;
        if (t < 0 || t > TOPIC_PURCHASES)
            continue;
        for (j = 0; j < c->n_owned; j++)
            if (c->owned[j].topic == t && c->owned[j].partition == p)
                break;
        if (add && j == c->n_owned && j < ADVREC_METRICS_LAG_MAX) {
            c->owned[j].topic = t;
            c->owned[j].partition = p;
            c->owned[j].lag = 0;
            c->n_owned++;
        } else if (!add && j < c->n_owned) {
            c->owned[j] = c->owned[--c->n_owned];
        }
    }
}

/* Kafka's committed offset of one partition and who committed it. */
typedef struct committed_s {
    int64_t offset; /* < 0: none */
    int ours;       /* the metadata names this state */
    uint64_t seq;   /* ... and its commit number then */
} committed_t;

static void parse_committed(const advrec_daemon_t *d,
                            const rd_kafka_topic_partition_t *tp,
                            committed_t *c)
{
    char buf[128], id[40];
    unsigned long long seq;
    size_t n = tp->metadata_size < sizeof(buf) - 1 ? tp->metadata_size
                                                   : sizeof(buf) - 1;

    c->offset = tp->err ? -1 : tp->offset;
    c->ours = 0;
    c->seq = 0;
    if (!tp->metadata || tp->err)
        return;
    memcpy(buf, tp->metadata, n);
    buf[n] = '\0';
    if (sscanf(buf, META_PREFIX "%39s %llu", id, &seq) == 2 &&
        strcmp(id, advrec_store_id(d->store)) == 0) {
        c->ours = 1;
        c->seq = seq;
    }
}

/*
 * Where a partition the state should have resumed goes, by
 * state.offset.missing, with the error logged (fail: appended to the
 * list in fails instead). have: the state's offset next is valid; c:
 * Kafka's committed one; why: what is wrong. A partition moved past the
 * state's offset (committed) is added to jump[*n_jump], to be recorded in
 * the state at once: the gap is the operator's choice, made once.
 */
static void resume_lost(advrec_daemon_t *d, rd_kafka_topic_partition_t *tp,
                        int have, int64_t next, const committed_t *c,
                        const char *why, char *fails, size_t fails_size,
                        advrec_store_offset_t *jump, size_t *n_jump)
{
    const char *how;
    size_t len = strlen(fails);

    switch (d->conf->state_offset_missing) {
    case ADVREC_CONF_MISSING_EARLIEST:
        /* The state is a whole earlier commit with its offsets (RocksDB
         * recovers a prefix of the WAL), so replaying from there applies
         * every record it lacks exactly once; without an offset the state
         * holds nothing of the partition. */
        tp->offset = have ? next : RD_KAFKA_OFFSET_BEGINNING;
        how = have ? "replaying from the state's offset"
                   : "replaying from its beginning";
        break;
    case ADVREC_CONF_MISSING_COMMITTED:
        tp->offset = c->offset >= 0 && (!have || c->offset > next) ? c->offset
                     : have                                        ? next
                            : RD_KAFKA_OFFSET_INVALID;
        how = "resuming at Kafka's committed offset: what the state lacks "
              "before it is skipped";
        break;
    default:
        if (len < fails_size)
            snprintf(fails + len, fails_size - len, "%s%s [%d] (%s)",
                     len ? "; " : "", tp->topic, (int)tp->partition, why);
        return;
    }
    if (d->conf->state_offset_missing == ADVREC_CONF_MISSING_COMMITTED &&
        tp->offset >= 0 && (!have || tp->offset != next))
        jump[(*n_jump)++] =
            (advrec_store_offset_t){tp->topic, tp->partition, tp->offset};
    log_err("rebalance: %s [%d]: %s; state.offset.missing=%s: %s (offset "
            "%lld)",
            tp->topic, (int)tp->partition, why,
            d->conf->state_offset_missing == ADVREC_CONF_MISSING_EARLIEST
                ? "earliest"
                : "committed",
            how, (long long)tp->offset);
    d->c->offsets_lost++;
}

/*
 * Partitions assigned: exactly-once state resumes from the offsets
 * committed with the state, not from Kafka's (which are committed
 * asynchronously and lag). A partition this process already consumed
 * resumes where it left it (the run's own record, which also covers state
 * in memory and the embedded broker); else the state's stored offset; a
 * partition neither has seen keeps RD_KAFKA_OFFSET_INVALID (committed
 * offset, else auto.offset.reset). The embedded broker starts empty with
 * every run, so offsets stored against an earlier one would point past its
 * end: there only this run's offsets are used.
 *
 * No silent skips (docs/STATE.md, "Lineage: lost commits"): Kafka's
 * committed offsets carry the lineage of the state that committed them
 * ("advrec1 <id> <seq>"). A partition whose committed offset came from
 * this state at a later commit than the state holds (the state is behind
 * it), one the state has no offset for although this state committed one
 * (the state lost it), and every partition of a state that lost
 * acknowledged commits from its WAL (d->lost) is an error, resolved by
 * state.offset.missing: fail stops the daemon (ADVREC_ERR_STATE_LOST)
 * naming them, before anything of them is applied. A partition whose
 * committed offset is absent or another state's was never ours: not an
 * error. When the committed offsets cannot be read, the state's offsets
 * are used as before and the check is skipped with a warning.
 */
static int on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_t *d = opaque;
    int resumed = 0, *have = NULL;
    int64_t *next = NULL;
    advrec_store_offset_t *jump = NULL;
    size_t n_jump = 0;
    uint64_t seq = 0, seq_max = 0;
    rd_kafka_topic_partition_list_t *ask = NULL;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    char why[256], fails[2048] = "";

    d->c->partitions += (uint32_t)parts->cnt;
    note_owned(d, parts, 1);
    /* topic.changelog: partitions the local state is behind on are
     * restored and positioned first. */
    advrec_daemon__changelog_assign(d, parts);
    if (d->store && !d->broker) {
        have = calloc((size_t)parts->cnt + 1, sizeof(*have));
        next = calloc((size_t)parts->cnt + 1, sizeof(*next));
        jump = calloc((size_t)parts->cnt + 1, sizeof(*jump));
        ask = rd_kafka_topic_partition_list_new(parts->cnt);
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = input_index(d, tp->topic);
        int64_t off;
        advrec_err_t serr;

        if (advrec_daemon__changelog_positioned(d, tp)) {
            resumed++;
            continue;
        }
        if (t >= 0 && tp->partition >= 0 &&
            tp->partition < d->run_next_cap[t] &&
            d->run_next[t][tp->partition] > 0) {
            tp->offset = d->run_next[t][tp->partition];
            resumed++;
            continue;
        }
        if (!d->store || d->broker)
            continue;
        serr = advrec_store_offset(d->store, tp->topic, tp->partition, &off,
                                   why, sizeof(why));
        if (serr == ADVREC_OK) {
            tp->offset = off;
            if (have && next)
                have[i] = 1, next[i] = off;
            resumed++;
        } else if (serr != ADVREC_ERR_NOT_FOUND) {
            log_err("rebalance: %s", why);
        }
        if (ask)
            rd_kafka_topic_partition_list_add(ask, tp->topic, tp->partition);
    }
    if (!ask || !have || !next || !jump) {
        if (d->store && !d->broker)
            log_warning("rebalance: no memory to check the state against "
                        "Kafka's committed offsets");
        goto out;
    }
    if (ask->cnt > 0)
        kerr = rd_kafka_committed(advrec_kafka_rk(d->consumer), ask,
                                  COMMITTED_TIMEOUT_MS);
    if (kerr)
        log_warning("rebalance: cannot read Kafka's committed offsets to "
                    "check the state against them (%s)%s",
                    rd_kafka_err2str(kerr),
                    d->lost ? "" : "; resuming from the state's offsets");
    seq = seq_max = advrec_store_seq(d->store);
    for (int i = 0; i < parts->cnt && ask->cnt > 0; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        rd_kafka_topic_partition_t *k =
            rd_kafka_topic_partition_list_find(ask, tp->topic, tp->partition);
        committed_t c = {-1, 0, 0};

        if (!k)
            continue; /* resumed from this run's own offset */
        if (!kerr)
            parse_committed(d, k, &c);
        if (c.ours && c.seq > seq_max)
            seq_max = c.seq;
        /* Behind: Kafka holds a later offset of this partition from a
         * commit this state no longer has. (An equal offset from a later
         * commit lost nothing of this partition.) */
        if (c.ours && c.seq > seq && have[i] && next[i] < c.offset)
            snprintf(why, sizeof(why),
                     "the state (commit %llu, offset %lld) is behind "
                     "Kafka's committed offset %lld, committed from this "
                     "state's commit %llu",
                     (unsigned long long)seq, (long long)next[i],
                     (long long)c.offset, (unsigned long long)c.seq);
        else if (c.ours && !have[i])
            snprintf(why, sizeof(why),
                     "the state has no offset for it, but Kafka has offset "
                     "%lld committed from this state (commit %llu)",
                     (long long)c.offset, (unsigned long long)c.seq);
        else if (d->lost)
            snprintf(why, sizeof(why),
                     "the state lost acknowledged commits (%s)",
                     have[i] ? "its offset may be behind"
                             : "it has no offset, and it may have had one");
        else {
            /* Kafka behind the state (its commits lag ours by up to
             * KAFKA_COMMIT_MS, and a kill loses that): catch it up now,
             * or another lineage taking the partition over would replay
             * from there. */
            if (have[i] && c.offset < next[i])
                queue_commit(d, tp->topic, tp->partition, next[i]);
            continue;
        }
        resume_lost(d, tp, have[i], next[i], &c, why, fails, sizeof(fails),
                    jump, &n_jump);
    }
    /* Going on: the numbers of the lost commits are in Kafka's metadata,
     * never to be taken for this state's again. Raised only now: every
     * partition is compared with the state's number as loaded. */
    if (!fails[0])
        advrec_store_seq_raise(d->store, seq_max);
    if (n_jump && !fails[0])
        record_jumps(d, jump, n_jump);
    if (fails[0]) {
        char msg[sizeof(fails) + 512];
        snprintf(msg, sizeof(msg),
                 "state.dir %s cannot resume %s; state.offset.missing=fail: "
                 "stopping. -X state.offset.missing=earliest replays what the "
                 "state lacks (from its offset, or a partition's beginning); "
                 "=committed resumes at Kafka's committed offsets and skips it",
                 d->conf->state_dir, fails);
        log_err("rebalance: %s", msg);
        advrec_daemon__fail(d, ADVREC_ERR_STATE_LOST, msg, NULL);
    }
out:
    if (ask)
        rd_kafka_topic_partition_list_destroy(ask);
    free(have);
    free(next);
    free(jump);
    return resumed;
}

/* Partitions revoked: what was applied from them is committed to the
 * state while they are still ours, and what the state committed of them
 * goes to Kafka now, before another member takes them; they no longer
 * count as ours (the readiness gauge). A failed commit stops the daemon. */
static void on_revoke(void *opaque,
                      const rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon_t *d = opaque;

    advrec_daemon__registry_revoked(d, parts);
    (void)advrec_daemon__commit(d);
    advrec_daemon__changelog_revoke(d, parts);
    if (!d->fatal[0])
        advrec_daemon__kafka_commit(d, 1);
    note_owned(d, parts, 0);
    d->c->revoked += (uint64_t)parts->cnt;
    d->c->partitions -= d->c->partitions < (uint32_t)parts->cnt
                            ? d->c->partitions
                            : (uint32_t)parts->cnt;
}

static void on_expand(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    advrec_daemon__changelog_expand(opaque, parts);
}

/*
 * Watches one input partition for a stalled fetch: behind its end with
 * this run's offset not moving, or in a fetch state other than active, for
 * consumer.stall.ms while the daemon did not pause it. Marks it to be
 * fetched again (advrec_daemon__stall_restart), at most once as often.
 */
static void watch(advrec_daemon_t *d, int t, const advrec_kafka_lag_t *l,
                  struct advrec_daemon_stall_s *old, uint32_t n_old,
                  int64_t now)
{
    struct advrec_daemon_stall_s *e;
    int64_t next =
        l->partition < d->run_next_cap[t] ? d->run_next[t][l->partition] : 0;
    int ours = d->paused || d->backlog_paused || d->n_held;
    int stuck;

    if (d->n_stall == ADVREC_METRICS_LAG_MAX)
        return;
    e = &d->stall[d->n_stall++];
    memset(e, 0, sizeof(*e));
    for (uint32_t j = 0; j < n_old; j++)
        if (old[j].topic == t && old[j].partition == l->partition)
            *e = old[j];
    e->topic = t;
    e->partition = l->partition;
    e->lag = l->lag;
    snprintf(e->state, sizeof(e->state), "%s", l->fetch_state);
    stuck = !ours && next > 0 &&
            ((l->lag > 0 && next == e->next) ||
             (l->fetch_state[0] && strcmp(l->fetch_state, "active") != 0));
    if (!stuck) {
        e->since = 0;
        e->next = next;
        return;
    }
    if (!e->since)
        e->since = now;
    else if (now - e->since >= d->conf->consumer_stall_ms) {
        e->restart = 1;
        e->since = now; /* again after as long, if it does not help */
    }
}

/* librdkafka's statistics: the consumer lag of the input partitions, and
 * stalled fetches. */
static void on_lag(void *opaque, const advrec_kafka_lag_t *lags, size_t n)
{
    advrec_daemon_t *d = opaque;
    struct advrec_daemon_stall_s old[ADVREC_METRICS_LAG_MAX];
    uint32_t k = 0, n_old = d->n_stall;
    int64_t now = now_ms();

    memcpy(old, d->stall, n_old * sizeof(*old));
    d->n_stall = 0;
    for (size_t i = 0; i < n; i++) {
        int topic = input_index(d, lags[i].topic);
        if (topic < 0)
            continue;
        watch(d, topic, &lags[i], old, n_old, now);
        if (topic > TOPIC_PURCHASES || lags[i].lag < 0 ||
            k == ADVREC_METRICS_LAG_MAX)
            continue;
        d->c->lag[k].topic = topic;
        d->c->lag[k].partition = lags[i].partition;
        d->c->lag[k++].lag = lags[i].lag;
    }
    d->c->n_lag = k;
}

void advrec_daemon__stall_restart(advrec_daemon_t *d)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_error_t *error;

    for (uint32_t i = 0; i < d->n_stall; i++) {
        struct advrec_daemon_stall_s *e = &d->stall[i];
        int64_t next;
        if (!e->restart)
            continue;
        e->restart = 0;
        next = e->partition < d->run_next_cap[e->topic]
                   ? d->run_next[e->topic][e->partition]
                   : 0;
        if (next <= 0 || (!l && !(l = rd_kafka_topic_partition_list_new(4))))
            continue;
        rd_kafka_topic_partition_list_add(l, d->inputs[e->topic], e->partition)
            ->offset = next;
        d->c->consumer_stalls++;
        log_warning("consumer: %s [%d] made no progress for %lld s (fetch "
                    "state %s, %lld records behind): fetching it again from "
                    "offset %lld",
                    d->inputs[e->topic], (int)e->partition,
                    (long long)(d->conf->consumer_stall_ms / 1000),
                    e->state[0] ? e->state : "unknown", (long long)e->lag,
                    (long long)next);
    }
    if (!l)
        return;
    if ((error =
             rd_kafka_seek_partitions(advrec_kafka_rk(d->consumer), l, 0))) {
        log_err("consumer: cannot fetch again: %s",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* One of our clients (lib/params: the user's kafka.* pairs over our
 * defaults, what our guarantees need forced), with the pipeline's hooks. */
static advrec_err_t new_client(advrec_daemon_t *d, advrec_kafka_role_t role,
                               advrec_kafka_t **kafkap, char *errstr,
                               size_t errstr_size)
{
    advrec_kafka_params_t p = {0};
    advrec_kafka_prop_t *props;
    advrec_err_t err;

    if (advrec_params_kafka(&p, &props, d->conf, role))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    p.bootstraps = d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
    p.on_delivery = on_delivery;
    p.on_assign = on_assign;
    p.on_revoke = on_revoke;
    if (d->conf->topic_changelog[0])
        p.on_expand = on_expand;
    /* Statistics for the lag gauges and the stall watch (cheap: one JSON
     * document every LAG_INTERVAL_MS). */
    if (role == ADVREC_KAFKA_CONSUMER) {
        p.on_stats = on_lag;
        p.stats_interval_ms = LAG_INTERVAL_MS;
    }
    p.on_wait = on_produce_wait;
    p.opaque = d;
    err = advrec_kafka_new(kafkap, &p, errstr, errstr_size);
    free(props);
    return err;
}

advrec_err_t advrec_daemon_start(advrec_daemon_t *d, char *errstr,
                                 size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    const char *outputs[] = {conf->topic_clicks,
                             conf->topic_purchases,
                             conf->topic_recommendations,
                             conf->topic_anomalies,
                             conf->topic_dlq,
                             conf->topic_control,
                             conf->topic_changelog,
                             conf->topic_model};
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t kerr;
    advrec_err_t err;
    char instance[256];

    if (conf->broker_embedded) {
        d->broker = advrec_broker_new(1, errstr, errstr_size);
        if (!d->broker)
            return ADVREC_ERR_KAFKA;
        for (size_t i = 0; i < sizeof(outputs) / sizeof(*outputs); i++)
            if (outputs[i][0] &&
                advrec_broker_create_topic(
                    d->broker, outputs[i],
                    (int)conf->broker_embedded_partitions, errstr, errstr_size))
                return ADVREC_ERR_KAFKA;
        log_notice("embedded broker (in-memory, for demos and tests) at %s; "
                   "it starts empty, so input offsets stored in the state "
                   "are not used",
                   advrec_broker_bootstraps(d->broker));
    }
    if ((err = new_client(d, ADVREC_KAFKA_PRODUCER, &d->producer, errstr,
                          errstr_size)) ||
        (err = new_client(d, ADVREC_KAFKA_CONSUMER, &d->consumer, errstr,
                          errstr_size)))
        return err;
    advrec_outbox_set_producer(d->outbox, d->producer);
    d->cq = rd_kafka_queue_get_consumer(advrec_kafka_rk(d->consumer));
    /* Our outputs' ids before any input: a list is encoded as it is made. */
    if ((err = advrec_daemon__registry_outputs(d, errstr, errstr_size)))
        return err;
    if (atomic_load(&d->stop))
        return ADVREC_OK; /* asked to stop while the registry was away */

    if ((err = advrec_daemon__changelog_start(d, errstr, errstr_size)) ||
        (err = advrec_daemon__model_start(d, errstr, errstr_size)))
        return err;
    /* With the changelog the group assigns topic.clicks alone; the same
     * partitions of the others follow (advrec_daemon__changelog_expand). */
    topics = rd_kafka_topic_partition_list_new(3);
    rd_kafka_topic_partition_list_add(topics, conf->topic_clicks,
                                      RD_KAFKA_PARTITION_UA);
    if (!d->cl)
        rd_kafka_topic_partition_list_add(topics, conf->topic_purchases,
                                          RD_KAFKA_PARTITION_UA);
    if (conf->topic_control[0] && !d->cl)
        rd_kafka_topic_partition_list_add(topics, conf->topic_control,
                                          RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(advrec_kafka_rk(d->consumer), topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr)
        return advrec_seterr(ADVREC_ERR_KAFKA, errstr, errstr_size,
                             "cannot subscribe to %s and %s: %s",
                             conf->topic_clicks, conf->topic_purchases,
                             rd_kafka_err2str(kerr));
    advrec_params_instance_id(conf, instance, sizeof(instance));
    log_notice("consuming %s and %s%s%s%s as group %s, %s%s",
               conf->topic_clicks, conf->topic_purchases,
               conf->topic_control[0] ? " (forget requests: " : "",
               conf->topic_control[0] ? conf->topic_control : "",
               conf->topic_control[0] ? ")" : "",
               advrec_conf_kafka_get(conf, "group.id")
                   ? advrec_conf_kafka_get(conf, "group.id")
                   : conf->group_id,
               instance[0] ? "static group membership as "
                           : "dynamic group membership",
               instance);
    /* What the last run left unacknowledged goes out before anything new. */
    advrec_outbox_produce(d->outbox);
    return ADVREC_OK;
}

const char *advrec_daemon_bootstraps(const advrec_daemon_t *d)
{
    return d->broker ? advrec_broker_bootstraps(d->broker) : NULL;
}
