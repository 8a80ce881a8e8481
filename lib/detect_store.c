/*
 * detect_store.c - the anomaly detectors' rows in the state store: their
 * key format, loading them back, staging the changed ones.
 *
 * Rows are keyed 'u' + user id, 'i' + item id, or "g" (the baseline), so
 * they survive as long as the ids and are readable in advrec-inspect.
 */
#include "detect_store.h"

#include <stdio.h>
#include <string.h>

#include "event.h"

typedef struct detector_io_s {
    advrec_detect_t *detect;
    advrec_store_t *store;
    advrec_state_t *state;
    advrec_err_t err;
    char *errstr;
    size_t errstr_size;
} detector_io_t;

static int load_row(void *opaque, const void *key, size_t key_len,
                    const void *value, size_t value_len)
{
    detector_io_t *io = opaque;
    char id[ADVREC_ID_MAX];
    const char *k = key;
    advrec_detect_row_kind_t kind;
    uint32_t idx = 0;

    if (key_len < 1 || key_len > sizeof(id)) {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key of %zu bytes", key_len);
        return 1;
    }
    memcpy(id, k + 1, key_len - 1);
    id[key_len - 1] = '\0';
    if (k[0] == 'g' && key_len == 1) {
        kind = ADVREC_DETECT_ROW_GLOBAL;
    } else if (k[0] == 'u' &&
               advrec_state_user(io->state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_USER;
    } else if (k[0] == 'i' &&
               advrec_state_item(io->state, id, 0, &idx, NULL, NULL, 0) == 0) {
        kind = ADVREC_DETECT_ROW_ITEM;
    } else {
        io->err = advrec_seterr(ADVREC_ERR_STORE, io->errstr, io->errstr_size,
                                "detectors: key \"%.*s\" names no stored "
                                "user or item",
                                (int)key_len, k);
        return 1;
    }
    io->err = advrec_detect_restore(io->detect, kind, idx, value, value_len,
                                    io->errstr, io->errstr_size);
    if (io->err == ADVREC_ERR_PARSE)
        io->err = ADVREC_ERR_STORE;
    return io->err != ADVREC_OK;
}

advrec_err_t advrec_detect_store_load(advrec_detect_t *detect,
                                      advrec_store_t *store,
                                      advrec_state_t *state, char *errstr,
                                      size_t errstr_size)
{
    detector_io_t io = {detect, store, state, ADVREC_OK, errstr, errstr_size};
    advrec_err_t err;

    err = advrec_store_detectors_foreach(store, load_row, &io, errstr,
                                         errstr_size);
    return err ? err : io.err;
}

static int stage_row(void *opaque, advrec_detect_row_kind_t kind, uint32_t idx,
                     const void *value, size_t len)
{
    detector_io_t *io = opaque;
    char key[ADVREC_ID_MAX + 1];
    const char *id = kind == ADVREC_DETECT_ROW_USER
                         ? advrec_state_user_name(io->state, idx)
                     : kind == ADVREC_DETECT_ROW_ITEM
                         ? advrec_state_item_name(io->state, idx)
                         : "";
    int n = snprintf(key, sizeof(key), "%c%s",
                     kind == ADVREC_DETECT_ROW_USER   ? 'u'
                     : kind == ADVREC_DETECT_ROW_ITEM ? 'i'
                                                      : 'g',
                     id ? id : "");

    if (!io->store)
        return 0; /* state in memory: the rows are only forgotten */
    io->err =
        advrec_store_stage_detector(io->store, key, (size_t)n, value, len);
    return io->err != ADVREC_OK;
}

advrec_err_t advrec_detect_store_stage(advrec_detect_t *detect,
                                       advrec_store_t *store,
                                       advrec_state_t *state)
{
    detector_io_t io = {detect, store, state, ADVREC_OK, NULL, 0};

    advrec_detect_foreach_dirty(detect, stage_row, &io);
    return io.err;
}
