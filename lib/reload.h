/*
 * reload.h - a configuration reload (SIGHUP): which keys a running daemon
 * may change, and the merge of a re-read configuration into the running one.
 *
 * Live keys are those whose new value takes effect between two rounds
 * without touching the state's meaning: log.level, the detectors'
 * thresholds, scores and weight (anomaly.* but anomaly.enable and the two
 * window time constants, which the stored statistics were built with),
 * recs.debounce.ms and recs.max.staleness.ms (the refresh schedule),
 * round.max.records (the batch and the refresh budget of a round) and
 * round.max.ms. Every other changed key, kafka.* and schema.<N> included,
 * is refused by name and keeps its running value: it needs a restart.
 *
 * Only lib/daemon.c uses this (and tests); like params, it reads
 * advrec_conf_t and no module below the daemon sees it.
 */
#ifndef ADVREC_RELOAD_H
#define ADVREC_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "err.h"

/* Whether table key `key` may change in a running daemon. */
bool advrec_reload_is_live(const char *key);

/*
 * A configuration built as advrecd builds one at start: defaults, then the
 * file at path (NULL: none), then each of sets[0..n_sets) as -X, then the
 * cross-key check. In *confp, the caller's (advrec_conf_destroy). On
 * failure *confp is NULL: ADVREC_ERR_IO (file unreadable), CONFIG or
 * INVALID_ARG, with errstr naming the file and line or the key.
 */
advrec_err_t advrec_reload_read(advrec_conf_t **confp, const char *path,
                                const char *const *sets, size_t n_sets,
                                char *errstr, size_t errstr_size);

/*
 * Merges next into running, key by key, logging each difference: a live key
 * takes next's value ("reload: recs.debounce.ms 500 -> 200"); any other
 * keeps running's ("reload: model.k changed; needs a restart, kept 64";
 * kafka.* values are not logged, they may be secrets). next is only read.
 * Returns the number of live keys changed; *refused gets the number kept.
 * The caller then pushes running's live values into its modules.
 */
size_t advrec_reload_merge(advrec_conf_t *running, const advrec_conf_t *next,
                           size_t *refused);

#endif
