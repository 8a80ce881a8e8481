/*
 * daemon_registry.c - the pipeline's use of a Schema Registry
 * (schema.registry.url; docs/SCHEMAS.md, "Schema Registry"):
 *
 *  - at start, the schemas the state cached are registered in the codec,
 *    and our Recommendation and Anomaly schemas are registered under
 *    <topic>-value (or their ids taken from the state while the registry
 *    is away); those ids are the ones our outputs carry;
 *  - an input record whose writer id the codec does not know asks the
 *    registry for it; the answer is cached in the codec and the state;
 *  - while the registry cannot be reached, such a record is held back,
 *    with everything after it on its partition: the partition is paused
 *    and its records kept in order here, and tried again after a backoff.
 *    Nothing held is applied, dead-lettered or counted as consumed, so
 *    the state's offsets stay at the first held record: a crash or a
 *    revocation meanwhile resumes from there.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "log.h"
#include "registry.h"

/* An id the registry does not have is asked for again after this long (a
 * producer may register it late); an id it refused never is (a registry id
 * never changes its schema). */
#define NOT_FOUND_TTL_MS 30000
#define BACKOFF_MAX_MS   30000

/* One input partition held back: its records, in order, from the first one
 * that needed the registry. */
struct advrec_daemon_held_s {
    int topic; /* TOPIC_* */
    int32_t partition;
    rd_kafka_message_t **msgs; /* owned */
    size_t n, cap;
};

/* An id the registry did not give us a usable schema for. */
struct advrec_daemon_refused_s {
    int32_t id;
    advrec_dlq_reason_t reason;
    int64_t until_ms; /* INT64_MAX: for good */
};

static int topic_of(const advrec_daemon_t *d, const rd_kafka_message_t *m)
{
    const char *t = rd_kafka_topic_name(m->rkt);

    return strcmp(t, d->inputs[TOPIC_PURCHASES]) == 0 ? TOPIC_PURCHASES
           : d->inputs[TOPIC_CONTROL] &&
                   strcmp(t, d->inputs[TOPIC_CONTROL]) == 0
               ? TOPIC_CONTROL
               : TOPIC_CLICKS;
}

/* --- start ------------------------------------------------------------ */

static int cached_schema(void *opaque, int32_t id, const char *json, size_t len)
{
    advrec_daemon_t *d = opaque;
    char why[512];

    /* An explicit schema.<N> wins over the cache, as over the registry. */
    if (advrec_codec_schema_kind(d->codec, id, &(advrec_codec_kind_t){0}) ==
        ADVREC_OK)
        return 0;
    if (advrec_codec_register_json(d->codec, id, json, len, "the state's cache",
                                   why, sizeof(why)))
        log_warning("schema id %d cached in the state no longer resolves "
                    "(%s): it will be asked of the registry again",
                    (int)id, why);
    else
        d->registry_cached++;
    return 0;
}

advrec_err_t advrec_daemon__registry_new(advrec_daemon_t *d, char *errstr,
                                         size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    advrec_registry_opts_t opts = {
        .url = conf->schema_registry_url,
        .user_info = conf->schema_registry_user_info,
        .ca_location = conf->schema_registry_ca,
        .timeout_ms = conf->schema_registry_timeout_ms,
    };
    advrec_err_t err;

    if (!*conf->schema_registry_url)
        return ADVREC_OK;
    if ((err = advrec_registry_new(&d->registry, &opts, errstr, errstr_size)))
        return err;
    d->c->registry_up = 1; /* until a request says otherwise */
    d->registry_backoff_ms = conf->schema_registry_backoff_ms;
    if (d->store && (err = advrec_store_schemas_foreach(
                         d->store, cached_schema, d, errstr, errstr_size)))
        return err;
    log_info("schema registry %s: %zu writer schema(s) from the state's "
             "cache",
             advrec_registry_url(d->registry), d->registry_cached);
    return ADVREC_OK;
}

/* Sleeps ms, in slices, unless the daemon is asked to stop; 1 if it is. */
static int wait_or_stop(advrec_daemon_t *d, int64_t ms)
{
    int64_t end = now_ms() + ms;

    while (!atomic_load(&d->stop) && now_ms() < end) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&d->stop);
}

/* The id of our schema of `kind` under `subject`, from the registry, or
 * from the state while the registry cannot be reached; waits for the
 * registry when neither has it. *id -1: asked to stop meanwhile. */
static advrec_err_t output_id(advrec_daemon_t *d, advrec_codec_kind_t kind,
                              const char *subject, int32_t *id, char *errstr,
                              size_t errstr_size)
{
    const advrec_conf_t *conf = d->conf;
    char *json = advrec_codec_reader_json(d->codec, kind);
    int64_t backoff = conf->schema_registry_backoff_ms;
    advrec_err_t err;
    char why[1024];

    if (!json)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    *id = -1;
    for (;;) {
        err = conf->schema_registry_auto_register
                  ? advrec_registry_register(d->registry, subject, json, id,
                                             why, sizeof(why))
                  : advrec_registry_lookup(d->registry, subject, json, id, why,
                                           sizeof(why));
        d->c->registry_requests[err == ADVREC_OK       ? 0
                                : err == ADVREC_ERR_IO ? 2
                                                       : 1]++;
        d->c->registry_up = err != ADVREC_ERR_IO;
        if (err == ADVREC_OK) {
            log_notice("schema registry: our %s schema is id %d under subject "
                       "%s",
                       advrec_codec_kind_name(kind), (int)*id, subject);
            if (d->store && advrec_store_put_subject_id(d->store, subject, json,
                                                        *id, why, sizeof(why)))
                log_warning("cannot record it in the state: %s", why);
            break;
        }
        if (err != ADVREC_ERR_IO) {
            err = advrec_seterr(
                ADVREC_ERR_SCHEMA, errstr, errstr_size,
                "schema registry: our %s schema %s subject %s%s: %s",
                advrec_codec_kind_name(kind),
                conf->schema_registry_auto_register
                    ? "cannot be registered under"
                    : "is not registered under",
                subject,
                conf->schema_registry_auto_register
                    ? ""
                    : " (schema.registry.auto.register = false)",
                why);
            goto out;
        }
        if (d->store &&
            advrec_store_subject_id(d->store, subject, json, id, errstr,
                                    errstr_size) == ADVREC_OK) {
            log_warning("schema registry unreachable (%s): our %s schema "
                        "keeps id %d under subject %s, as recorded in the "
                        "state",
                        why, advrec_codec_kind_name(kind), (int)*id, subject);
            break;
        }
        log_warning("schema registry unreachable (%s): our %s schema has no "
                    "id yet; trying again in %lld ms",
                    why, advrec_codec_kind_name(kind), (long long)backoff);
        if (wait_or_stop(d, backoff)) {
            *id = -1;
            err = ADVREC_OK;
            goto out;
        }
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    err = advrec_codec_register_json(d->codec, *id, json, strlen(json), subject,
                                     why, sizeof(why));
    if (err == ADVREC_ERR_INVALID_ARG) {
        /* Registered already: an explicit schema.<N> with that id. */
        advrec_codec_kind_t have;
        err = ADVREC_OK;
        if (advrec_codec_schema_kind(d->codec, *id, &have) == ADVREC_OK &&
            have != kind)
            err =
                advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                              "schema.%d maps a %s schema, but the registry "
                              "gives id %d to our %s schema (subject %s)",
                              (int)*id, advrec_codec_kind_name(have), (int)*id,
                              advrec_codec_kind_name(kind), subject);
    } else if (err) {
        err = advrec_seterr(err, errstr, errstr_size, "%s", why);
    }
out:
    free(json);
    return err;
}

advrec_err_t advrec_daemon__registry_outputs(advrec_daemon_t *d, char *errstr,
                                             size_t errstr_size)
{
    const struct {
        advrec_codec_kind_t kind;
        const char *topic;
        int32_t *id;
    } outs[] = {
        {ADVREC_CODEC_RECOMMENDATION, d->conf->topic_recommendations,
         &d->rec_schema_id},
        {ADVREC_CODEC_ANOMALY, d->conf->topic_anomalies, &d->anomaly_schema_id},
    };
    char subject[512];
    advrec_err_t err;

    if (!d->registry)
        return ADVREC_OK;
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        /* TopicNameStrategy: the value schema of topic T is subject
         * T-value. */
        snprintf(subject, sizeof(subject), "%s-value", outs[i].topic);
        if ((err = output_id(d, outs[i].kind, subject, outs[i].id, errstr,
                             errstr_size)))
            return err;
        if (*outs[i].id < 0)
            return ADVREC_OK; /* asked to stop */
    }
    return ADVREC_OK;
}

void advrec_daemon__registry_destroy(advrec_daemon_t *d)
{
    for (size_t i = 0; i < d->n_held; i++) {
        for (size_t j = 0; j < d->held[i].n; j++)
            rd_kafka_message_destroy(d->held[i].msgs[j]);
        free(d->held[i].msgs);
    }
    free(d->held);
    free(d->refused);
    advrec_registry_destroy(d->registry);
}

/* --- records whose writer id the codec does not know ------------------ */

static struct advrec_daemon_refused_s *refused(advrec_daemon_t *d, int32_t id)
{
    for (size_t i = 0; i < d->n_refused; i++)
        if (d->refused[i].id == id)
            return &d->refused[i];
    return NULL;
}

/* Remembers that id got no usable schema (reason) until until_ms. Without
 * memory it is only asked again next time. */
static void refuse(advrec_daemon_t *d, int32_t id, advrec_dlq_reason_t reason,
                   int64_t until_ms)
{
    struct advrec_daemon_refused_s *r = refused(d, id);

    if (!r) {
        if (d->n_refused == d->refused_cap) {
            size_t cap = d->refused_cap ? 2 * d->refused_cap : 16;
            struct advrec_daemon_refused_s *bigger =
                realloc(d->refused, cap * sizeof(*bigger));
            if (!bigger)
                return;
            d->refused = bigger;
            d->refused_cap = cap;
        }
        r = &d->refused[d->n_refused++];
        r->id = id;
    }
    r->reason = reason;
    r->until_ms = until_ms;
}

advrec_daemon_resolve_t
advrec_daemon__registry_resolve(advrec_daemon_t *d, const rd_kafka_message_t *m,
                                advrec_dlq_reason_t *reason, char *why,
                                size_t why_size)
{
    int64_t now = now_ms();
    struct advrec_daemon_refused_s *r;
    advrec_codec_kind_t kind;
    char msg[1024];
    char *json;
    size_t len;
    int32_t id;
    advrec_err_t err;

    if (!d->registry ||
        advrec_codec_frame_id(m->payload, m->len, &id, msg, sizeof(msg)))
        return ADVREC_RESOLVE_FINAL;
    if ((r = refused(d, id)) && now < r->until_ms) {
        *reason = r->reason;
        snprintf(why, why_size,
                 "%s: schema id %d: %s (asked of %s at its first record)",
                 advrec_dlq_reason_name(r->reason), (int)id,
                 r->reason == ADVREC_DLQ_UNKNOWN_SCHEMA
                     ? "no schema.<N> maps it and the schema registry does "
                       "not have it"
                     : "the schema registry's schema does not resolve "
                       "against ours",
                 advrec_registry_url(d->registry));
        return ADVREC_RESOLVE_FINAL;
    }
    if (d->n_held && now < d->registry_retry_ms)
        return ADVREC_RESOLVE_HOLD; /* known away: do not wait on it again */
    err =
        advrec_registry_schema(d->registry, id, &json, &len, msg, sizeof(msg));
    d->c->registry_requests[err == ADVREC_OK       ? 0
                            : err == ADVREC_ERR_IO ? 2
                                                   : 1]++;
    if (err == ADVREC_ERR_IO || err == ADVREC_ERR_NOMEM) {
        if (d->c->registry_up)
            log_warning("schema registry unreachable: %s; records that need "
                        "it are held back (partition paused), nothing is "
                        "skipped; trying again in %lld ms",
                        msg, (long long)d->registry_backoff_ms);
        d->c->registry_up = 0;
        d->registry_retry_ms = now + d->registry_backoff_ms;
        return ADVREC_RESOLVE_HOLD;
    }
    if (!d->c->registry_up)
        log_notice("schema registry reachable again");
    d->c->registry_up = 1;
    d->registry_backoff_ms = d->conf->schema_registry_backoff_ms;
    if (err == ADVREC_ERR_NOT_FOUND) {
        *reason = ADVREC_DLQ_UNKNOWN_SCHEMA;
        snprintf(why, why_size,
                 "unknown-schema: schema id %d: no schema.<N> maps it and "
                 "the schema registry does not have it (%s)",
                 (int)id, msg);
        refuse(d, id, *reason, now + NOT_FOUND_TTL_MS);
        return ADVREC_RESOLVE_FINAL;
    }
    if (!err)
        err = advrec_codec_register_json(
            d->codec, id, json, len, "the schema registry", msg, sizeof(msg));
    if (err) {
        free(json);
        *reason = ADVREC_DLQ_INCOMPATIBLE_SCHEMA;
        snprintf(why, why_size, "incompatible-schema: schema id %d from %s: %s",
                 (int)id, advrec_registry_url(d->registry), msg);
        refuse(d, id, *reason, INT64_MAX);
        return ADVREC_RESOLVE_FINAL;
    }
    d->c->registry_fetched++;
    advrec_codec_schema_kind(d->codec, id, &kind);
    log_info("schema registry: writer schema id %d (%s) fetched from %s",
             (int)id, advrec_codec_kind_name(kind),
             advrec_registry_url(d->registry));
    if (d->store &&
        advrec_store_put_schema(d->store, id, json, len, msg, sizeof(msg)))
        log_warning("schema id %d is not cached in the state (%s): a restart "
                    "needs the registry for it",
                    (int)id, msg);
    free(json);
    return ADVREC_RESOLVE_AGAIN;
}

/* --- held partitions --------------------------------------------------- */

static struct advrec_daemon_held_s *held_of(advrec_daemon_t *d, int topic,
                                            int32_t partition)
{
    for (size_t i = 0; i < d->n_held; i++)
        if (d->held[i].topic == topic && d->held[i].partition == partition)
            return &d->held[i];
    return NULL;
}

/* Appends m to h; -1 without memory. */
static int held_push(struct advrec_daemon_held_s *h, rd_kafka_message_t *m)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        rd_kafka_message_t **bigger = realloc(h->msgs, cap * sizeof(*bigger));
        if (!bigger)
            return -1;
        h->msgs = bigger;
        h->cap = cap;
    }
    h->msgs[h->n++] = m;
    return 0;
}

/* Pauses or resumes one input partition. */
static void pause_partition(advrec_daemon_t *d, int topic, int32_t partition,
                            int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_t *rk = advrec_kafka_rk(d->consumer);
    rd_kafka_resp_err_t kerr;

    if (!l)
        return; /* held records are still kept in order: only slower */
    rd_kafka_topic_partition_list_add(l, d->inputs[topic], partition);
    kerr = pause ? rd_kafka_pause_partitions(rk, l)
                 : rd_kafka_resume_partitions(rk, l);
    if (kerr)
        log_warning("cannot %s %s [%d]: %s", pause ? "pause" : "resume",
                    d->inputs[topic], (int)partition, rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(l);
}

int advrec_daemon__registry_keep(advrec_daemon_t *d, rd_kafka_message_t *m)
{
    struct advrec_daemon_held_s *h;

    if (!d->n_held || !(h = held_of(d, topic_of(d, m), m->partition)))
        return 0;
    d->c->registry_held++;
    if (held_push(h, m)) {
        advrec_daemon__fail(d, ADVREC_ERR_NOMEM,
                            "out of memory holding records back", NULL);
        rd_kafka_message_destroy(m); /* the state resumes before it */
    }
    return 1;
}

void advrec_daemon__registry_hold(advrec_daemon_t *d, rd_kafka_message_t *m)
{
    int topic = topic_of(d, m);
    struct advrec_daemon_held_s *h = held_of(d, topic, m->partition);

    d->c->registry_held++;
    if (!h) {
        if (d->n_held == d->held_cap) {
            size_t cap = d->held_cap ? 2 * d->held_cap : 8;
            struct advrec_daemon_held_s *bigger =
                realloc(d->held, cap * sizeof(*bigger));
            if (!bigger) {
                advrec_daemon__fail(d, ADVREC_ERR_NOMEM,
                                    "out of memory holding records back", NULL);
                rd_kafka_message_destroy(m);
                return;
            }
            d->held = bigger;
            d->held_cap = cap;
        }
        h = &d->held[d->n_held++];
        memset(h, 0, sizeof(*h));
        h->topic = topic;
        h->partition = m->partition;
        pause_partition(d, topic, m->partition, 1);
        d->c->registry_held_partitions = d->n_held;
        log_warning("%s [%d] held back at offset %lld until the schema "
                    "registry answers",
                    d->inputs[topic], (int)m->partition, (long long)m->offset);
    }
    if (held_push(h, m)) {
        advrec_daemon__fail(d, ADVREC_ERR_NOMEM,
                            "out of memory holding records back", NULL);
        rd_kafka_message_destroy(m);
    }
}

/* Drops held partition i (its records are destroyed: they were not applied,
 * so they are consumed again from the state's offsets). */
static void held_drop(advrec_daemon_t *d, size_t i)
{
    for (size_t j = 0; j < d->held[i].n; j++)
        rd_kafka_message_destroy(d->held[i].msgs[j]);
    free(d->held[i].msgs);
    d->held[i] = d->held[--d->n_held];
    d->c->registry_held_partitions = d->n_held;
}

void advrec_daemon__registry_retry(advrec_daemon_t *d, int64_t now)
{
    if (!d->n_held || now < d->registry_retry_ms)
        return;
    for (size_t i = 0; i < d->n_held && !d->fatal[0];) {
        struct advrec_daemon_held_s *h = &d->held[i];
        size_t done = 0;
        int again = 0;

        /* The first record needs the registry: ask once for it, and go on
         * through the partition's records while they can be applied. */
        while (done < h->n && !again) {
            rd_kafka_message_t *m = h->msgs[done];
            if (advrec_daemon__apply(d, m, now_ms()) == ADVREC_APPLY_HELD)
                again = 1;
            else
                done++;
        }
        if (done &&
            advrec_daemon__note_offsets(d, (rd_kafka_message_t **)h->msgs,
                                        (ssize_t)done) == 0) {
            for (size_t j = 0; j < done; j++)
                rd_kafka_message_destroy(h->msgs[j]);
            memmove(h->msgs, h->msgs + done, (h->n - done) * sizeof(*h->msgs));
            h->n -= done;
        }
        if (again || d->fatal[0]) {
            i++;
            continue;
        }
        log_notice("%s [%d] resumed: the schema registry answered",
                   d->inputs[h->topic], (int)h->partition);
        pause_partition(d, h->topic, h->partition, 0);
        held_drop(d, i);
    }
    if (d->n_held) {
        d->registry_backoff_ms = d->registry_backoff_ms * 2 > BACKOFF_MAX_MS
                                     ? BACKOFF_MAX_MS
                                     : d->registry_backoff_ms * 2;
        d->registry_retry_ms = now_ms() + d->registry_backoff_ms;
    }
}

void advrec_daemon__registry_revoked(
    advrec_daemon_t *d, const rd_kafka_topic_partition_list_t *parts)
{
    for (int p = 0; p < parts->cnt; p++)
        for (size_t i = 0; i < d->n_held; i++) {
            struct advrec_daemon_held_s *h = &d->held[i];
            if (h->partition != parts->elems[p].partition ||
                strcmp(d->inputs[h->topic], parts->elems[p].topic) != 0)
                continue;
            /* Its next owner starts at the first held record (the
             * state's offset): the paused flag must not outlive us. */
            pause_partition(d, h->topic, h->partition, 0);
            held_drop(d, i);
            break;
        }
}
