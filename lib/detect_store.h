/*
 * detect_store.h - the anomaly detectors' rows in the state store.
 *
 * The detectors (detect.h) know rows by dense index; the store (store.h)
 * knows opaque keys. This module owns the key format between them ('u' +
 * user id, 'i' + item id, "g" for the baseline, 'r' + chunk number for
 * the group ring; docs/STATE.md), loads the committed rows back at start
 * and stages the rows a round changed into the round's batch, so detector
 * state is exactly-once with the rest.
 */
#ifndef ADVREC_DETECT_STORE_H
#define ADVREC_DETECT_STORE_H

#include <stddef.h>

#include "detect.h"
#include "err.h"
#include "state.h"
#include "store.h"

/*
 * Restores every detector row committed in store into detect, resolving
 * ids through state (loaded first). An evictable state (users read back
 * on demand) gets the item rows and the baseline only; each user's row
 * comes back with the user (advrec_detect_store_load_user). ADVREC_ERR_STORE
 * when a row is malformed or names no stored user or item (errstr says which).
 */
advrec_err_t advrec_detect_store_load(advrec_detect_t *detect,
                                      advrec_store_t *store,
                                      advrec_state_t *state, char *errstr,
                                      size_t errstr_size);

/*
 * Restores the detector row of user slot idx of state (just read back from
 * store, advrec_store_load_user) if one is stored. ADVREC_ERR_STORE on a
 * malformed row or read error, NOMEM.
 */
advrec_err_t advrec_detect_store_load_user(advrec_detect_t *detect,
                                           advrec_store_t *store,
                                           advrec_state_t *state, uint32_t idx,
                                           char *errstr, size_t errstr_size);

/*
 * Stages every row detect changed since the last call into store's next
 * commit and clears detect's dirty set; store NULL (state in memory) only
 * clears it. ADVREC_ERR_INVALID_ARG on a read-only store.
 */
advrec_err_t advrec_detect_store_stage(advrec_detect_t *detect,
                                       advrec_store_t *store,
                                       advrec_state_t *state);

#endif
