/*
 * config_check.c - the configuration's checks across keys
 * (advrec_conf_check): what no single key's range can say (staleness >=
 * debounce, distinct topics, the state and checkpoint directories apart,
 * kafka.* accepted by librdkafka), each failure naming the keys and where
 * they were set (advrec_conf_origin).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_int.h"
#include "log.h"
#include "redact.h"

/*
 * Checks across keys
 */

/* path made absolute (against the working directory) with every symlink
 * in its longest existing prefix resolved and ".", ".." and repeated '/'
 * removed from the rest: two spellings of one directory, existing or not
 * yet, compare equal. A new string (caller frees) or NULL when out of
 * memory or the working directory is unknown. */
static char *path_canon(const char *path)
{
    char *abs = NULL, *real = NULL, *out = NULL, *cwd = NULL, *cut, *w;
    const char *r;

    if (path[0] == '/')
        abs = strdup(path);
    else if ((cwd = getcwd(NULL, 0)))
        abs = advrec_conf__path_join(cwd, path);
    free(cwd);
    if (!abs)
        return NULL;
    /* The longest prefix realpath() accepts; the rest does not exist. */
    for (cut = abs + strlen(abs);;) {
        char saved = *cut;

        *cut = '\0';
        real = realpath(*abs ? abs : "/", NULL);
        *cut = saved;
        if (real || cut == abs)
            break;
        while (--cut > abs && *cut != '/')
            ;
    }
    if (!real || asprintf(&out, "%s/%s", real, cut) < 0)
        out = NULL;
    free(real);
    free(abs);
    if (!out)
        return NULL;
    /* Lexically: drop "." and empty components, ".." removes one. */
    for (r = out, w = out; *r;) {
        size_t n;

        while (*r == '/')
            r++;
        n = strcspn(r, "/");
        if (n == 0 || (n == 1 && r[0] == '.')) {
            r += n;
            continue;
        }
        if (n == 2 && r[0] == '.' && r[1] == '.') {
            while (w > out && *--w != '/')
                ;
            r += n;
            continue;
        }
        *w++ = '/';
        memmove(w, r, n);
        w += n;
        r += n;
    }
    if (w == out)
        *w++ = '/';
    *w = '\0';
    return out;
}

/* Whether canonical path a is b or below it. */
static bool path_within(const char *a, const char *b)
{
    size_t n = strlen(b);

    if (strcmp(b, "/") == 0)
        return true;
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/*
 * state.checkpoint.dir must not be state.dir or inside it: RocksDB owns
 * state.dir (a database that loses its CURRENT is then refused for the
 * foreign checkpoint subdirectories, and replacing or deleting the state,
 * as a change of model.k requires, would take every checkpoint with it).
 * state.dir inside state.checkpoint.dir is allowed: it is how a daemon is
 * started from a checkpoint (docs/STATE.md).
 */
static advrec_err_t check_state_dirs(const advrec_conf_t *conf, char *errstr,
                                     size_t errstr_size)
{
    char *state, *ckpt;
    advrec_err_t err = ADVREC_OK;

    if (!*conf->state_dir || !*conf->state_checkpoint_dir)
        return ADVREC_OK; /* state in memory / no checkpoints possible */
    state = path_canon(conf->state_dir);
    ckpt = path_canon(conf->state_checkpoint_dir);
    if (!state || !ckpt)
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "out of memory resolving state.dir");
    else if (path_within(ckpt, state))
        err = advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size,
            "%s: state.checkpoint.dir = %s is %s state.dir (%s: %s): "
            "checkpoints would land in the live RocksDB directory; put them "
            "outside it",
            advrec_conf_origin(conf, "state.checkpoint.dir"),
            conf->state_checkpoint_dir,
            strcmp(ckpt, state) == 0 ? "the same directory as" : "inside",
            advrec_conf_origin(conf, "state.dir"), conf->state_dir);
    free(state);
    free(ckpt);
    return err;
}

advrec_err_t advrec_conf_check(const advrec_conf_t *conf, char *errstr,
                               size_t errstr_size)
{
    const char *bootstrap = advrec_conf_kafka_get(conf, "bootstrap.servers");
    const struct {
        const char *key;
        int64_t id;
    } writers[] = {
        {"schema.click.id", conf->schema_click_id},
        {"schema.purchase.id", conf->schema_purchase_id},
        {"schema.recommendation.id", conf->schema_recommendation_id},
        {"schema.anomaly.id", conf->schema_anomaly_id},
    };
    const struct {
        const char *key;
        const char *topic;
    } topics[] = {
        {"topic.clicks", conf->topic_clicks},
        {"topic.purchases", conf->topic_purchases},
        {"topic.recommendations", conf->topic_recommendations},
        {"topic.anomalies", conf->topic_anomalies},
        {"topic.dlq", conf->topic_dlq},
        {"topic.control", conf->topic_control},
        {"topic.changelog", conf->topic_changelog},
        {"topic.model", conf->topic_model},
    };
    rd_kafka_conf_t *rk_conf;
    advrec_err_t err;

    if ((err = check_state_dirs(conf, errstr, errstr_size)))
        return err;
    if (conf->state_memory_limit > 0 && !*conf->state_dir)
        return advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size,
            "%s: state.memory.limit = %" PRId64 " needs a state.dir, but "
            "state.dir (%s) is empty: state in memory only has nowhere to "
            "evict users to",
            advrec_conf_origin(conf, "state.memory.limit"),
            conf->state_memory_limit, advrec_conf_origin(conf, "state.dir"));
    if (!conf->broker_embedded && (!bootstrap || !*bootstrap))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "%s: broker.embedded = false needs "
                             "kafka.bootstrap.servers",
                             advrec_conf_origin(conf, "broker.embedded"));
    if (conf->broker_embedded && bootstrap)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "kafka.bootstrap.servers is set but "
                             "broker.embedded = true would ignore it; set "
                             "broker.embedded = false to use it");
    if (conf->recs_max_staleness_ms < conf->recs_debounce_ms)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "recs.max.staleness.ms (%" PRId64
                             ", %s) must be >= recs.debounce.ms (%" PRId64
                             ", %s)",
                             conf->recs_max_staleness_ms,
                             advrec_conf_origin(conf, "recs.max.staleness.ms"),
                             conf->recs_debounce_ms,
                             advrec_conf_origin(conf, "recs.debounce.ms"));
    if (conf->model_negatives_min > conf->model_negatives)
        return advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size,
            "model.negatives.min (%" PRId64
            ", %s) must be <= model.negatives (%" PRId64 ", %s)",
            conf->model_negatives_min,
            advrec_conf_origin(conf, "model.negatives.min"),
            conf->model_negatives, advrec_conf_origin(conf, "model.negatives"));
    if (!(conf->anomaly_clear_score <= conf->anomaly_flag_score &&
          conf->anomaly_flag_score <= conf->anomaly_quarantine_score))
        return advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size,
            "anomaly.clear.score (%g, %s) <= "
            "anomaly.flag.score (%g, %s) <= "
            "anomaly.quarantine.score (%g, %s) must hold",
            conf->anomaly_clear_score,
            advrec_conf_origin(conf, "anomaly.clear.score"),
            conf->anomaly_flag_score,
            advrec_conf_origin(conf, "anomaly.flag.score"),
            conf->anomaly_quarantine_score,
            advrec_conf_origin(conf, "anomaly.quarantine.score"));
    if (*conf->schema_registry_url &&
        strncasecmp(conf->schema_registry_url, "http://", 7) != 0 &&
        strncasecmp(conf->schema_registry_url, "https://", 8) != 0)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "%s: schema.registry.url = \"%s\": expected an "
                             "http:// or https:// URL",
                             advrec_conf_origin(conf, "schema.registry.url"),
                             conf->schema_registry_url);
    /* With a registry, the ids we write are the registry's. */
    for (size_t i = 0; !*conf->schema_registry_url &&
                       i < sizeof(writers) / sizeof(writers[0]);
         i++)
        if (!advrec_conf_schema_path(conf, (int32_t)writers[i].id))
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "%s: %s = %" PRId64 " but no schema.%" PRId64
                                 " maps that id to an .avsc file",
                                 advrec_conf_origin(conf, writers[i].key),
                                 writers[i].key, writers[i].id, writers[i].id);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        for (size_t j = i + 1; j < sizeof(topics) / sizeof(topics[0]); j++)
            if (topics[i].topic[0] &&
                strcmp(topics[i].topic, topics[j].topic) == 0)
                return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                     "%s and %s are both \"%s\" (%s, %s); "
                                     "every topic must differ",
                                     topics[i].key, topics[j].key,
                                     topics[i].topic,
                                     advrec_conf_origin(conf, topics[i].key),
                                     advrec_conf_origin(conf, topics[j].key));

    /* librdkafka is the judge of kafka.*: try them on a scratch conf. */
    if (!(rk_conf = rd_kafka_conf_new()))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    err = advrec_conf_kafka_apply(conf, rk_conf, true, errstr, errstr_size);
    rd_kafka_conf_destroy(rk_conf);
    return err;
}
