/*
 * reload.c - the live keys and the merge of a re-read configuration
 * (reload.h). Owns nothing.
 */
#include "reload.h"

#include <string.h>

#include "log.h"

/* Table keys a running daemon takes over (see reload.h for why these). */
static const char *const live_keys[] = {
    "log.level",
    "round.max.records",
    "round.max.ms",
    "state.commit.interval.ms",
    "recs.debounce.ms",
    "recs.max.staleness.ms",
    "recs.refresh.budget.ms",
    "recs.refresh.batch",
    "recs.backlog.policy",
    "anomaly.min.events",
    "anomaly.rate.max",
    "anomaly.gap.logstd.max",
    "anomaly.nopurchase.clicks",
    "anomaly.diversity.min",
    "anomaly.young.s",
    "anomaly.item.min.events",
    "anomaly.item.share",
    "anomaly.item.surge.factor",
    "anomaly.group.min.size",
    "anomaly.flag.score",
    "anomaly.quarantine.score",
    "anomaly.clear.score",
    "anomaly.weight.flagged",
    "anomaly.weight.probation",
    "anomaly.profile.min.events",
    "anomaly.profile.fit.max",
    "anomaly.profile.window.s",
    "anomaly.profile.burst.min",
};

bool advrec_reload_is_live(const char *key)
{
    for (size_t i = 0; i < sizeof(live_keys) / sizeof(live_keys[0]); i++)
        if (strcmp(live_keys[i], key) == 0)
            return true;
    return false;
}

advrec_err_t advrec_reload_read(advrec_conf_t **confp, const char *path,
                                const char *const *sets, size_t n_sets,
                                char *errstr, size_t errstr_size)
{
    advrec_conf_t *conf;
    advrec_err_t err = ADVREC_OK;

    *confp = NULL;
    if (!(conf = advrec_conf_new(errstr, errstr_size)))
        return ADVREC_ERR_NOMEM;
    if (path)
        err = advrec_conf_load_file(conf, path, errstr, errstr_size);
    for (size_t i = 0; !err && i < n_sets; i++)
        err = advrec_conf_set_arg(conf, sets[i], errstr, errstr_size);
    if (!err)
        err = advrec_conf_check(conf, errstr, errstr_size);
    if (err) {
        advrec_conf_destroy(conf);
        return err;
    }
    *confp = conf;
    return ADVREC_OK;
}

/* kafka.* names set in a but not to the same value in b, logged. */
static size_t kafka_refused(const advrec_conf_t *a, const advrec_conf_t *b)
{
    size_t n = 0;

    for (size_t i = 0; i < a->kafka_cnt; i++) {
        const char *name = a->kafka[i].name;
        const char *va = advrec_conf_kafka_get(a, name);
        const char *vb = advrec_conf_kafka_get(b, name);
        /* The last setting of a name is its value: report it once. */
        if (va != a->kafka[i].value || (vb && strcmp(va, vb) == 0))
            continue;
        log_warning("reload: kafka.%s %s; needs a restart, kept the running "
                    "value",
                    name, vb ? "changed" : "removed");
        n++;
    }
    return n;
}

size_t advrec_reload_merge(advrec_conf_t *running, const advrec_conf_t *next,
                           size_t *refused)
{
    size_t applied = 0, kept = 0;
    const char *key;
    char was[1024], now[1024], why[256];

    for (size_t i = 0; (key = advrec_conf_key(i)); i++) {
        advrec_conf_value(running, key, was, sizeof(was));
        advrec_conf_value(next, key, now, sizeof(now));
        if (strcmp(was, now) == 0)
            continue;
        if (!advrec_reload_is_live(key)) {
            log_warning("reload: %s changed; needs a restart, kept %s", key,
                        was);
            kept++;
        } else if (advrec_conf_set(running, key, now, why, sizeof(why))) {
            /* next passed the same checks: not expected. */
            log_err("reload: %s: %s; kept %s", key, why, was);
            kept++;
        } else {
            log_notice("reload: %s %s -> %s", key, was, now);
            applied++;
        }
    }
    /* Added or changed in next, then removed from next. */
    for (size_t i = 0; i < next->kafka_cnt; i++) {
        const char *name = next->kafka[i].name;
        if (next->kafka[i].value == advrec_conf_kafka_get(next, name) &&
            !advrec_conf_kafka_get(running, name)) {
            log_warning("reload: kafka.%s added; needs a restart, not applied",
                        name);
            kept++;
        }
    }
    kept += kafka_refused(running, next);
    for (size_t i = 0; i < next->schemas_cnt; i++) {
        const char *was_path =
            advrec_conf_schema_path(running, next->schemas[i].id);
        if (!was_path || strcmp(was_path, next->schemas[i].path) != 0) {
            log_warning("reload: schema.%d changed; needs a restart, kept %s",
                        (int)next->schemas[i].id,
                        was_path ? was_path : "(none)");
            kept++;
        }
    }
    for (size_t i = 0; i < running->schemas_cnt; i++) {
        if (!advrec_conf_schema_path(next, running->schemas[i].id)) {
            log_warning("reload: schema.%d removed; needs a restart, kept %s",
                        (int)running->schemas[i].id, running->schemas[i].path);
            kept++;
        }
    }
    *refused = kept;
    return applied;
}
