/*
 * params.c - the configuration -> module parameters mapping (params.h).
 * Owns nothing: each function copies fields.
 */
#include "params.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* recs.exclude's config value -> the ranking policy. */
static int rank_exclude(int conf_exclude)
{
    switch (conf_exclude) {
    case ADVREC_CONF_EXCLUDE_SEEN:
        return ADVREC_RANK_EXCLUDE_SEEN;
    case ADVREC_CONF_EXCLUDE_NONE:
        return ADVREC_RANK_EXCLUDE_NONE;
    default:
        return ADVREC_RANK_EXCLUDE_PURCHASED;
    }
}

/* recs.retrieval's config value -> the ranking's. */
static int rank_retrieval(int conf_retrieval)
{
    switch (conf_retrieval) {
    case ADVREC_CONF_RETRIEVAL_ANN:
        return ADVREC_RANK_RETRIEVAL_ANN;
    case ADVREC_CONF_RETRIEVAL_AUTO:
        return ADVREC_RANK_RETRIEVAL_AUTO;
    default:
        return ADVREC_RANK_RETRIEVAL_EXACT;
    }
}

void advrec_params_engine(advrec_engine_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    advrec_apr_params_default(&p->apr);
    p->apr.k = (int)conf->model_k;
    p->apr.lr = (float)conf->model_lr;
    p->apr.reg = (float)conf->model_reg;
    p->apr.adv_lambda = (float)conf->model_adv_lambda;
    p->apr.adv_eps = (float)conf->model_adv_eps;
    p->apr.adv_warmup = (uint32_t)conf->model_adv_warmup;
    p->apr.adv_steps = (int)conf->model_adv_steps;
    p->apr.use_bias = conf->model_bias;
    p->apr.init_std = (float)conf->model_init_std;
    p->apr.seed = (uint64_t)conf->model_seed;
    p->state.k = (uint32_t)conf->model_k;
    p->state.history = (uint32_t)conf->recs_history;
    p->state.purchased_max = (uint32_t)conf->recs_exclude_purchased_max;
    /* Seen sets cost memory on every active user: kept only when used. */
    p->state.seen_max = conf->recs_exclude == ADVREC_CONF_EXCLUDE_SEEN
                            ? (uint32_t)conf->recs_exclude_seen_max
                            : 0;
    p->state.max_users = (uint32_t)conf->model_max_users;
    p->state.max_items = (uint32_t)conf->model_max_items;
    /* A memory budget evicts users to RocksDB: only with a state.dir. */
    /* Users may leave memory (a memory budget) or the state (expiry,
     * forgetting, making room): slots are reused, ids freed. */
    p->state.evictable = 1;
    p->negatives = (uint32_t)conf->model_negatives;
    p->negatives_min = (uint32_t)conf->model_negatives_min;
    p->negatives_budget = conf->model_negatives_budget;
    p->replay_steps = (uint32_t)conf->model_replay_steps;
    p->weight_click = (float)conf->model_weight_click;
    p->weight_purchase = (float)conf->model_weight_purchase;
    p->recs_n = (uint32_t)conf->recs_n;
    p->debounce_ms = conf->recs_debounce_ms;
    p->max_staleness_ms = conf->recs_max_staleness_ms;
    p->exclude = rank_exclude(conf->recs_exclude);
    p->cold_events = (uint32_t)conf->recs_cold_events;
    p->popularity_halflife_s = conf->recs_popularity_halflife_s;
    p->retrieval = rank_retrieval(conf->recs_retrieval);
    p->retrieval_auto_items = (uint32_t)conf->recs_retrieval_auto_items;
    p->ann.nlist = (uint32_t)conf->recs_ann_lists;
    p->ann.nprobe = (uint32_t)conf->recs_ann_probe;
    p->ann.recall = conf->recs_ann_recall;
    p->ann.candidates = (uint32_t)conf->recs_ann_candidates;
    p->ann.rebuild_ms = conf->recs_ann_rebuild_ms;
    p->ann.sq8 = conf->recs_ann_sq8;
}

void advrec_params_store(advrec_store_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    p->k = (uint32_t)conf->model_k;
    p->history = (uint32_t)conf->recs_history;
    p->sync = conf->state_sync == ADVREC_CONF_SYNC_COMMIT
                  ? ADVREC_STORE_SYNC_COMMIT
                  : ADVREC_STORE_SYNC_NONE;
    p->memory_limit = (uint64_t)conf->state_memory_limit;
}

void advrec_params_detect(advrec_detect_params_t *p, const advrec_conf_t *conf)
{
    memset(p, 0, sizeof(*p));
    p->enable = conf->anomaly_enable;
    p->min_events = (uint32_t)conf->anomaly_min_events;
    p->rate_window_s = conf->anomaly_rate_window_s;
    p->rate_max = conf->anomaly_rate_max;
    p->gap_logstd_max = conf->anomaly_gap_logstd_max;
    p->nopurchase_clicks = (uint32_t)conf->anomaly_nopurchase_clicks;
    p->diversity_min = conf->anomaly_diversity_min;
    p->young_s = conf->anomaly_young_s;
    p->item_window_s = conf->anomaly_item_window_s;
    p->item_min_events = conf->anomaly_item_min_events;
    p->item_share = conf->anomaly_item_share;
    p->item_surge_factor = conf->anomaly_item_surge_factor;
    p->group_min_size = (uint32_t)conf->anomaly_group_min_size;
    p->profile_min_events = (uint32_t)conf->anomaly_profile_min_events;
    p->profile_fit_max = conf->anomaly_profile_fit_max;
    p->profile_window_s = conf->anomaly_profile_window_s;
    p->profile_burst_min = conf->anomaly_profile_burst_min;
    p->flag_score = conf->anomaly_flag_score;
    p->quarantine_score = conf->anomaly_quarantine_score;
    p->clear_score = conf->anomaly_clear_score;
    p->weight_flagged = (float)conf->anomaly_weight_flagged;
    p->weight_probation = (float)conf->anomaly_weight_probation;
}

void advrec_params_detect_default(advrec_detect_params_t *p)
{
    advrec_conf_t *conf = advrec_conf_new(NULL, 0);

    memset(p, 0, sizeof(*p));
    if (conf)
        advrec_params_detect(p, conf);
    advrec_conf_destroy(conf);
}

/* Copies s into out (at most size - 1 characters) with Kafka's name rules:
 * '/' becomes '_', anything else outside [A-Za-z0-9._-] '-'. Returns the
 * number of characters replaced other than '/'. */
static size_t kafka_name(char *out, size_t size, const char *s)
{
    size_t n = 0, replaced = 0;

    for (; *s && n + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '.' || c == '_' || c == '-')
            out[n++] = (char)c;
        else if (c == '/')
            out[n++] = '_';
        else
            out[n++] = '-', replaced++;
    }
    out[n] = '\0';
    return replaced;
}

void advrec_params_instance_id(const advrec_conf_t *conf, char *buf,
                               size_t size)
{
    const char *set = advrec_conf_kafka_get(conf, "group.instance.id");
    char host[256] = "", dir[4096], id[1024], *real;
    const char *d = conf->state_dir;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64 */
    size_t replaced;

    /* auto with state in memory or on the embedded broker (which starts
     * empty with every run): nothing to take back, dynamic membership. */
    if (set || strcmp(conf->group_instance_id, "auto") != 0 ||
        !conf->state_dir[0] || conf->broker_embedded) {
        snprintf(buf, size, "%s",
                 set ? set
                 : strcmp(conf->group_instance_id, "auto") != 0
                     ? conf->group_instance_id
                     : "");
        return;
    }
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    /* Absolute: the same daemon started from another directory must find
     * the same id. */
    real = realpath(d, NULL);
    if (real)
        snprintf(dir, sizeof(dir), "%s", real);
    else if (d[0] == '/' || !getcwd(dir, sizeof(dir) - 2))
        snprintf(dir, sizeof(dir), "%s", d);
    else
        snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", d);
    free(real);
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
        dir[strlen(dir) - 1] = '\0';
    for (const char *p = host; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ ':') * 1099511628211ULL;
    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    memcpy(id, "advrecd.", 8);
    replaced = kafka_name(id + 8, 250, host);
    if (strlen(id) < sizeof(id) - 2)
        strcat(id, ".");
    replaced += kafka_name(id + strlen(id), sizeof(id) - strlen(id),
                           dir[0] == '/' && dir[1] ? dir + 1 : dir);
    if (strlen(id) > 249 || replaced) {
        /* 249 is Kafka's limit; the hash keeps ids of different dirs apart
         * once characters were dropped or replaced. */
        id[249 - 17] = '\0';
        snprintf(id + strlen(id), sizeof(id) - strlen(id), ".%016" PRIx64, h);
    }
    snprintf(buf, size, "%s", id);
}

advrec_err_t advrec_params_kafka(advrec_kafka_params_t *p,
                                 advrec_kafka_prop_t **props,
                                 const advrec_conf_t *conf,
                                 advrec_kafka_role_t role)
{
    /* static: p keeps pointers to them. group.id and group.instance.id are
     * defaults so that kafka.group.id and kafka.group.instance.id still
     * win. The daemon commits offsets itself, with the state's lineage as
     * their metadata (librdkafka 2.0.2's rd_kafka_offsets_store() drops
     * metadata, and an automatic commit would overwrite ours without it). */
    static const advrec_kafka_prop_t consumer_forced[] = {
        {"enable.auto.offset.store", "false", NULL},
        {"enable.auto.commit", "false", NULL}};
    static const advrec_kafka_prop_t producer_forced[] = {
        {"enable.idempotence", "true", NULL}};
    int consumer = role == ADVREC_KAFKA_CONSUMER;
    advrec_kafka_prop_t *kv = NULL;
    char *instance, *budget;
    size_t nd = conf->kafka_cnt; /* the defaults follow the user's pairs */
    uint64_t limit = (uint64_t)conf->state_memory_limit;

    /* One allocation: the user's pairs, then up to four defaults (group.id,
     * group.instance.id and a queue bound; linger.ms and two queue
     * bounds), then the texts: the instance id
     * (256 bytes), the queue bound (32). */
    if (!(kv = calloc(conf->kafka_cnt + 4 + (256 + 32) / sizeof(*kv) + 1,
                      sizeof(*kv))))
        return ADVREC_ERR_NOMEM;
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        kv[i].name = conf->kafka[i].name;
        kv[i].value = conf->kafka[i].value;
        kv[i].origin = conf->kafka[i].origin;
    }
    instance = (char *)&kv[conf->kafka_cnt + 4];
    budget = instance + 256;
    if (consumer) {
        kv[nd].name = "group.id";
        kv[nd].value = conf->group_id;
        kv[nd++].origin = "group.id";
        /* A rebalance moves only the partitions that change hands: under
         * topic.changelog each one moved is restored. */
        if (conf->topic_changelog[0] &&
            !advrec_conf_kafka_get(conf, "partition.assignment.strategy")) {
            kv[nd].name = "partition.assignment.strategy";
            kv[nd].value = "cooperative-sticky";
            kv[nd++].origin = "topic.changelog";
        }
        advrec_params_instance_id(conf, instance, 256);
        if (instance[0] && !advrec_conf_kafka_get(conf, "group.instance.id")) {
            kv[nd].name = "group.instance.id";
            kv[nd].value = instance;
            kv[nd++].origin = "group.instance.id";
        }
    }
    /* Lists go out in bursts, one per round, one produce request per
     * partition with librdkafka: linger.ms 20 (lib/kafka's 5 otherwise)
     * makes at most 50 requests a second per partition. At 10,000
     * events/s on the shared 2-core machine it halved the p99 from event
     * to list read back (docs/PERFORMANCE.md, "Latency"); kafka.linger.ms
     * still wins. */
    if (!consumer) {
        kv[nd].name = "linger.ms";
        kv[nd].value = "20";
        kv[nd++].origin = "advrecd's producer default";
    }
    /* Under state.memory.limit librdkafka's queues count too: by default a
     * consumer prefetches up to 64 MiB per partition and a producer queues
     * up to 1 GiB (measured: 1 M new users through a 256 MiB budget peaked
     * at 1.70 x the budget with them). The consumer gets a 256th of the
     * budget per partition, the producer a 128th, at least 1 and 2 MiB,
     * and 10,000 messages (kafka.* still wins). */
    if (limit) {
        uint64_t kb = consumer ? limit / 256 / 1024 : limit / 128 / 1024;
        uint64_t min = consumer ? 1024 : 2048;
        snprintf(budget, 32, "%llu", (unsigned long long)(kb < min ? min : kb));
        kv[nd].name = consumer ? "queued.max.messages.kbytes"
                               : "queue.buffering.max.kbytes";
        kv[nd].value = budget;
        kv[nd++].origin = "state.memory.limit";
        /* librdkafka's own bookkeeping per queued message is not in
         * kbytes: a list queue of 100,000 (the default) cost ~50 MiB. */
        if (!consumer) {
            kv[nd].name = "queue.buffering.max.messages";
            kv[nd].value = "10000";
            kv[nd++].origin = "state.memory.limit";
        }
    }
    p->role = role;
    p->props = kv;
    p->n_props = conf->kafka_cnt;
    p->defaults = nd > conf->kafka_cnt ? &kv[conf->kafka_cnt] : NULL;
    p->n_defaults = nd - conf->kafka_cnt;
    p->forced = consumer ? consumer_forced : producer_forced;
    p->n_forced = consumer ? 2 : 1;
    *props = kv;
    return ADVREC_OK;
}

/* Where schema.<id> comes from, for messages: "ORIGIN: schema.7 = PATH";
 * for a built-in entry "schema.1 = PATH (built in)", or "schema.1 = PATH
 * (built in, inside schema.dir set at ORIGIN)". */
static void schema_where(const advrec_conf_t *conf,
                         const advrec_conf_schema_t *s, char *buf, size_t size)
{
    if (!s->in_schema_dir)
        snprintf(buf, size, "%s: schema.%d = %s", s->origin, (int)s->id,
                 s->path);
    else if (*conf->schema_dir)
        snprintf(buf, size,
                 "schema.%d = %s (built in, inside schema.dir set at %s)",
                 (int)s->id, s->path, advrec_conf_origin(conf, "schema.dir"));
    else
        snprintf(buf, size, "schema.%d = %s (built in)", (int)s->id, s->path);
}

/* The writer id of key (one of the schema.*.id keys) names a registered
 * schema of kind want; else ADVREC_ERR_CONFIG naming the key, where it was
 * set, and the schema.<N> it points at and where that was set. */
static advrec_err_t check_kind(const advrec_codec_t *codec,
                               const advrec_conf_t *conf, const char *key,
                               int64_t id, advrec_codec_kind_t want,
                               char *errstr, size_t errstr_size)
{
    advrec_codec_kind_t kind;
    char where[1200] = "no schema.<N> maps it";

    for (size_t i = 0; i < conf->schemas_cnt; i++)
        if (conf->schemas[i].id == id)
            schema_where(conf, &conf->schemas[i], where, sizeof(where));
    if (advrec_codec_schema_kind(codec, (int32_t)id, &kind))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "%s: %s = %" PRId64 " names no registered "
                             "schema (%s); expected one of kind %s",
                             advrec_conf_origin(conf, key), key, id, where,
                             advrec_codec_kind_name(want));
    if (kind != want)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "%s: %s = %" PRId64 " names a schema of kind "
                             "%s, expected %s: %s",
                             advrec_conf_origin(conf, key), key, id,
                             advrec_codec_kind_name(kind),
                             advrec_codec_kind_name(want), where);
    return ADVREC_OK;
}

advrec_err_t advrec_params_codec(advrec_codec_t **codecp, int32_t *rec_id,
                                 int32_t *anomaly_id, const advrec_conf_t *conf,
                                 char *errstr, size_t errstr_size)
{
    const struct {
        const char *key;
        int64_t id;
        advrec_codec_kind_t kind;
    } writers[] = {
        {"schema.click.id", conf->schema_click_id, ADVREC_CODEC_CLICK},
        {"schema.purchase.id", conf->schema_purchase_id, ADVREC_CODEC_PURCHASE},
        {"schema.recommendation.id", conf->schema_recommendation_id,
         ADVREC_CODEC_RECOMMENDATION},
        {"schema.anomaly.id", conf->schema_anomaly_id, ADVREC_CODEC_ANOMALY},
    };
    const char *dir = advrec_conf_schema_dir(conf);
    const int registry = *conf->schema_registry_url != '\0';
    char why[1024], where[1200];
    advrec_err_t err;

    /* The reader schemas are always schema.dir's four files, whatever
     * schema.<N> maps: a missing one is schema.dir's fault. */
    *codecp = advrec_codec_new(dir, why, sizeof(why));
    if (!*codecp && *conf->schema_dir)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "%s: schema.dir = %s: our reader schemas: %s",
                             advrec_conf_origin(conf, "schema.dir"), dir, why);
    if (!*codecp)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "schema.dir is unset, so our reader schemas are "
                             "read from %s: %s",
                             dir, why);
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        /* With a registry only the explicit schema.<N> map ids: the
         * built-in 1..4 would shadow the registry's ids. */
        if (registry && !conf->schemas[i].origin)
            continue;
        err = advrec_codec_register(*codecp, conf->schemas[i].id,
                                    conf->schemas[i].path, why, sizeof(why));
        if (err == ADVREC_ERR_NOMEM)
            return advrec_seterr(err, errstr, errstr_size, "%s", why);
        if (err) {
            /* Unreadable or unusable, the file is the configuration's
             * mistake: a config error (EX_CONFIG), not an I/O one. */
            schema_where(conf, &conf->schemas[i], where, sizeof(where));
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s", where, why);
        }
    }
    if (registry) {
        /* Registered under <topic>-value at start (daemon_registry.c). */
        *rec_id = *anomaly_id = -1;
        return ADVREC_OK;
    }
    for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++)
        if ((err = check_kind(*codecp, conf, writers[i].key, writers[i].id,
                              writers[i].kind, errstr, errstr_size)))
            return err;
    *rec_id = (int32_t)conf->schema_recommendation_id;
    *anomaly_id = (int32_t)conf->schema_anomaly_id;
    return ADVREC_OK;
}

advrec_err_t advrec_params_check(const advrec_conf_t *conf, char *errstr,
                                 size_t errstr_size)
{
    advrec_codec_t *codec = NULL;
    int32_t rec_id, anomaly_id;
    advrec_err_t err = advrec_params_codec(&codec, &rec_id, &anomaly_id, conf,
                                           errstr, errstr_size);

    advrec_codec_destroy(codec);
    return err;
}
