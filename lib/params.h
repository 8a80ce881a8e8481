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

#include "codec.h"
#include "config.h"
#include "detect.h"
#include "engine.h"
#include "kafka.h"
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

/*
 * The kafka.* pass-through, group.id and group.instance.id
 * (advrec_params_instance_id) as a lib/kafka client's properties for role:
 * p's defaults, props and forced fields are set (hooks, opaque and
 * bootstraps are left for the caller), with the properties advrecd's
 * guarantees need forced over the user's (consumer: offsets committed only
 * by the daemon, explicitly, with the state's lineage as their metadata;
 * producer: idempotent). *props is malloc'd (the caller frees it after
 * advrec_kafka_new) and points into conf. ADVREC_ERR_NOMEM.
 */
advrec_err_t advrec_params_kafka(advrec_kafka_params_t *p,
                                 advrec_kafka_prop_t **props,
                                 const advrec_conf_t *conf,
                                 advrec_kafka_role_t role);

/*
 * The group.instance.id advrecd's consumer uses (static membership) into
 * buf, "" for dynamic membership: kafka.group.instance.id when given, else
 * group.instance.id; its default "auto" is derived from the host name and
 * the absolute state.dir (symbolic links resolved when it exists), so it is
 * the same at every start of the same daemon and differs between daemons of
 * one host:  advrecd.<host>.<dir with '/' as '_'>, any other character
 * outside Kafka's [A-Za-z0-9._-] as '-'; longer than 249 characters, or
 * with a character replaced, it ends in '.' and 16 hex digits of a hash of
 * "<host>:<dir>" instead. With state.dir empty or the embedded broker,
 * "auto" is "" (a state in memory, or a broker that starts empty, has
 * nothing to take back at once).
 */
void advrec_params_instance_id(const advrec_conf_t *conf, char *buf,
                               size_t size);

/*
 * A codec with every schema.<N> of conf registered (schema.dir for the
 * reader schemas and the built-in entries), in *codecp, and the writer ids
 * of our Recommendation and Anomaly records in *rec_id and *anomaly_id.
 * All four schema.*.id keys are checked to name schemas of their kinds.
 * With schema.registry.url set, only the explicit schema.<N> entries are
 * registered (not the built-in ones), the schema.*.id keys are not
 * checked, and *rec_id and *anomaly_id are -1: the registry's ids replace
 * them (daemon_registry.c).
 * A missing, unreadable, invalid or incompatible schema file and an id of
 * the wrong kind are ADVREC_ERR_CONFIG with errstr naming the key and where
 * it was set ("conf/x.conf:12: schema.7 = /x.avsc: schema: cannot open
 * ..."); ADVREC_ERR_NOMEM. On error *codecp may be non-NULL and is the
 * caller's to destroy.
 */
advrec_err_t advrec_params_codec(advrec_codec_t **codecp, int32_t *rec_id,
                                 int32_t *anomaly_id, const advrec_conf_t *conf,
                                 char *errstr, size_t errstr_size);

/*
 * What --check-config adds to advrec_conf_check(): the checks of
 * advrec_params_codec() (every schema file read, registered and resolved;
 * every schema.*.id of the right kind), with a codec built and freed.
 * Reads files, so it is not part of advrec_conf_check(); the daemon runs
 * the same checks when it builds its codec. Errors as there.
 */
advrec_err_t advrec_params_check(const advrec_conf_t *conf, char *errstr,
                                 size_t errstr_size);

#endif
