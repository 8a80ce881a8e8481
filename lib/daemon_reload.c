/*
 * daemon_reload.c - SIGHUP: the configuration re-read between two rounds,
 * what is safe applied live (lib/reload decides and logs), the rest refused
 * with the key named (docs/OPERATIONS.md).
 */
#include "daemon_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "params.h"
#include "reload.h"

/* Grows the round's scratch for round.max.records records. 0, or -1 (no
 * memory: the arrays keep their old size, still valid). */
static int size_round(advrec_daemon_t *d, size_t n)
{
    rd_kafka_message_t **batch;

    if (!(batch = realloc(d->batch, n * sizeof(*batch))))
        return -1;
    d->batch = batch;
    return 0;
}

/*
 * Reloads the configuration between two rounds (advrec_daemon_reload):
 * re-reads it from the reload source, merges the live keys into d->conf
 * (lib/reload: each change and each refused key logged), then hands the
 * running values to the modules through params, as at start.
 */
void advrec_daemon__reload_conf(advrec_daemon_t *d)
{
    advrec_conf_t *next = NULL;
    advrec_engine_params_t ep;
    advrec_detect_params_t dp;
    int64_t old_records = d->conf->round_max_records;
    size_t applied, refused;
    char why[1024];

    if (!d->reload_path && !d->n_reload_sets) {
        log_warning("reload requested, but this daemon has no configuration "
                    "source: ignored");
        return;
    }
    if (advrec_reload_read(&next, d->reload_path,
                           (const char *const *)d->reload_sets,
                           d->n_reload_sets, why, sizeof(why))) {
        log_err("reload: %s; configuration refused, nothing changed", why);
        return;
    }
    applied = advrec_reload_merge(d->conf, next, &refused);
    advrec_conf_destroy(next);
    advrec_log_set_level(d->conf->log_level);
    advrec_params_engine(&ep, d->conf);
    advrec_engine_set_refresh(d->engine, ep.debounce_ms, ep.max_staleness_ms);
    advrec_params_detect(&dp, d->conf);
    if (advrec_detect_set_params(d->detect, &dp, why, sizeof(why)))
        log_err("reload: %s; the detectors keep their thresholds", why);
    if (d->conf->round_max_records > old_records &&
        size_round(d, (size_t)d->conf->round_max_records)) {
        log_err("reload: no memory for round.max.records %lld; kept %lld",
                (long long)d->conf->round_max_records, (long long)old_records);
        d->conf->round_max_records = old_records;
    }
    log_notice("reload: %zu change(s) applied, %zu refused%s", applied, refused,
               refused ? " (they need a restart)" : "");
}

advrec_err_t advrec_daemon_set_reload_source(advrec_daemon_t *d,
                                             const char *path,
                                             const char *const *sets,
                                             size_t n_sets)
{
    char *p = NULL, **s = NULL;
    size_t n = 0;

    if ((path && !(p = strdup(path))) ||
        (n_sets && !(s = calloc(n_sets, sizeof(*s)))))
        goto fail;
    for (; n < n_sets; n++)
        if (!(s[n] = strdup(sets[n])))
            goto fail;
    free(d->reload_path);
    for (size_t i = 0; i < d->n_reload_sets; i++)
        free(d->reload_sets[i]);
    free(d->reload_sets);
    d->reload_path = p;
    d->reload_sets = s;
    d->n_reload_sets = n_sets;
    return ADVREC_OK;

fail:
    while (n-- > 0)
        free(s[n]);
    free(s);
    free(p);
    return ADVREC_ERR_NOMEM;
}

void advrec_daemon_reload(advrec_daemon_t *d)
{
    atomic_store(&d->reload, 1);
}
