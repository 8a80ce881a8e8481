/*
 * daemon.h - advrecd as a library: create, start, run, stop, destroy.
 *
 * daemon/main.c is a thin shell over this API, and tests and the demo embed
 * the whole daemon in-process through it. One processing round (see
 * docs/ARCHITECTURE.md): poll a batch from the click and purchase topics,
 * decode each record (a bad one becomes a dead letter: its original key,
 * value and headers plus headers saying why and where it came from), apply
 * it to the engine, commit the rows, the consumed offsets and every output
 * the round owes in one batch, then produce those outputs (lib/outbox),
 * refresh the users whose debounce expired and produce their lists.
 *
 * Threads: run() blocks the calling thread; stop(), checkpoint() and
 * reload() may be called from any thread or a signal handler (they only set
 * a flag that run() checks at least every round.max.ms).
 */
#ifndef ADVREC_DAEMON_H
#define ADVREC_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "metrics.h"

typedef struct advrec_daemon_s advrec_daemon_t;

/* The daemon's counters (lib/metrics.h). */
typedef advrec_counters_t advrec_daemon_stats_t;

/*
 * A daemon configured by conf, in *daemonp. Takes ownership of conf on
 * success and on failure (the caller must not use or free it after the call).
 * Validates the configuration, loads the schemas, builds the model and opens
 * and loads the state directory; connects nothing yet. On failure *daemonp is
 * NULL and the error says what kind (CONFIG, SCHEMA, STATE_MISMATCH: state
 * written under another configuration; STORE: unusable state directory;
 * NOMEM), with errstr filled.
 */
advrec_err_t advrec_daemon_new(advrec_daemon_t **daemonp, advrec_conf_t *conf,
                               char *errstr, size_t errstr_size);

/*
 * Starts the embedded broker (when broker.embedded) and the Kafka clients,
 * and subscribes to the input topics. ADVREC_ERR_KAFKA / CONFIG with errstr on
 * failure; then destroy the daemon.
 */
advrec_err_t advrec_daemon_start(advrec_daemon_t *daemon, char *errstr,
                                 size_t errstr_size);

/*
 * Runs rounds until advrec_daemon_stop(), then finishes the round, refreshes
 * every stale user, flushes the producer (bounded), commits offsets and
 * leaves the group. Returns ADVREC_OK on a clean stop, or the error that
 * stopped it (a fatal Kafka error) with errstr filled.
 */
advrec_err_t advrec_daemon_run(advrec_daemon_t *daemon, char *errstr,
                               size_t errstr_size);

/* Asks run() to stop after the current round. Async-signal-safe. */
void advrec_daemon_stop(advrec_daemon_t *daemon);

/*
 * Asks run() to write a consistent checkpoint of the state between two rounds,
 * into a new subdirectory of state.checkpoint.dir named by UTC time (logged).
 * Async-signal-safe (advrecd calls it on SIGUSR1). Without a state.dir it
 * logs that there is nothing to checkpoint.
 */
void advrec_daemon_checkpoint(advrec_daemon_t *daemon);

/*
 * Where a reload re-reads the configuration from: the file at path (NULL:
 * none) and then each of sets[0..n_sets) as `-X key=value`, as advrecd
 * built it at start. Copied (the caller keeps its strings). Without it a
 * reload request is logged and ignored. ADVREC_ERR_NOMEM, nothing changed.
 */
advrec_err_t advrec_daemon_set_reload_source(advrec_daemon_t *daemon,
                                             const char *path,
                                             const char *const *sets,
                                             size_t n_sets);

/*
 * Asks run() to reload the configuration between two rounds (advrecd calls
 * it on SIGHUP). Async-signal-safe. The reload re-reads the source, applies
 * what is safe to change live (lib/reload.h: log.level, the detectors'
 * thresholds, the refresh schedule, the round's limits), logs each change,
 * and refuses every other changed key by name, keeping its running value. A
 * configuration that does not parse or check is refused whole (logged); the
 * daemon goes on either way.
 */
void advrec_daemon_reload(advrec_daemon_t *daemon);

/* The embedded broker's bootstrap list, or NULL when using an external
 * cluster. Owned by the daemon. Valid after start(). */
const char *advrec_daemon_bootstraps(const advrec_daemon_t *daemon);

/* The TCP port the HTTP endpoint listens on (http.listen; the one chosen
 * for port 0), or 0 without an endpoint. Valid after new(). */
int advrec_daemon_http_port(const advrec_daemon_t *daemon);

/* A snapshot of the counters (safe from any thread; values may be a round
 * old). */
void advrec_daemon_stats(const advrec_daemon_t *daemon,
                         advrec_daemon_stats_t *stats);

/* Stops the clients (if still running) and frees everything. NULL is OK. */
void advrec_daemon_destroy(advrec_daemon_t *daemon);

#endif
