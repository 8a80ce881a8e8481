/*
 * params.h - fills every module's parameters from a loaded configuration.
 *
 * The modules below the daemon (engine, store, detect, and through the
 * engine apr and state) take plain parameter structs and never see the
 * configuration: they can be built by a test or a tool from literals, and
 * a new config key touches only config.c, this module and the module that
 * uses it. This is the one place that knows which key goes to which field,
 * and it maps the config's enum words (recs.exclude, state.sync) to the
 * modules' own enums.
 *
 * Every function only reads conf and writes every field of *params.
 */
#ifndef ADVREC_PARAMS_H
#define ADVREC_PARAMS_H

#include "config.h"
#include "detect.h"
#include "engine.h"
#include "store.h"

/* The model.*, recs.* keys: the engine's, apr's and state's parameters. */
void advrec_params_engine(advrec_engine_params_t *params,
                          const advrec_conf_t *conf);

/* model.k, recs.history (the state dir's fingerprint) and state.sync. */
void advrec_params_store(advrec_store_params_t *params,
                         const advrec_conf_t *conf);

/* The anomaly.* keys. */
void advrec_params_detect(advrec_detect_params_t *params,
                          const advrec_conf_t *conf);

/*
 * The defaults of the anomaly.* keys (docs/ANOMALY.md), taken from the
 * config table, the one place they are written. Only an out-of-memory
 * failure leaves params zeroed (detection disabled).
 */
void advrec_params_detect_default(advrec_detect_params_t *params);

#endif
