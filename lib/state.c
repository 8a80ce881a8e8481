/*
 * state.c - owns the in-memory row tables and the two id maps.
 */
#include "state.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "idmap.h"

struct advrec_state_s {
    advrec_state_params_t params;
    advrec_idmap_t *user_ids, *item_ids;
    advrec_rows_t users, items;
    advrec_user_ext_t ux;
};

/* Factor tables from this size on are 2 MiB aligned and asked for huge pages:
 * a training step reads three random rows, and with 4 KiB pages each row is
 * a TLB miss once the tables outgrow the TLB's reach (a few MB). */
#define HUGE_MIN   ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

/* Grows *p from old to new_n elements of size sz, zeroing the new part;
 * aligned to 64 bytes when align is set (factor matrices go to BLAS). */
static int grow(void **p, size_t old_n, size_t new_n, size_t sz, int align)
{
    void *q;
    size_t bytes = new_n * sz;

    if (align) {
        size_t al = bytes >= HUGE_MIN ? HUGE_ALIGN : 64;

        bytes = (bytes + al - 1) & ~(al - 1);
        q = aligned_alloc(al, bytes);
        if (!q)
            return -1;
#ifdef MADV_HUGEPAGE
        if (al == HUGE_ALIGN)
            (void)madvise(q, bytes, MADV_HUGEPAGE);
#endif
        if (*p)
            memcpy(q, *p, old_n * sz);
        free(*p);
    } else {
        q = realloc(*p, bytes);
        if (!q)
            return -1;
    }
    memset((char *)q + old_n * sz, 0, bytes - old_n * sz);
    *p = q;
    return 0;
}

#define GROW(field, per_row, align)                                         \
    grow((void **)&(field), (size_t)old *(per_row), (size_t)cap *(per_row), \
         sizeof(*(field)), align)

/* Makes room for one more row in rows (and, for users, in ux). */
static advrec_err_t rows_reserve(advrec_rows_t *rows, advrec_user_ext_t *ux,
                                 uint32_t history)
{
    uint32_t old = rows->cap, cap;

    if (rows->n < rows->cap)
        return ADVREC_OK;
    cap = old ? old * 2 : 1024;
    /* Each table is grown to cap before cap is recorded, so a failure half
     * way leaves some arrays larger than needed, never smaller. */
    if (GROW(rows->w, rows->k, 1) || GROW(rows->acc, 1, 0) ||
        GROW(rows->bias, 1, 0) || GROW(rows->bias_acc, 1, 0) ||
        GROW(rows->updates, 1, 0) || GROW(rows->clicks, 1, 0) ||
        GROW(rows->purchases, 1, 0) || GROW(rows->dirty, 1, 0) ||
        GROW(rows->dirty_list, 1, 0))
        return ADVREC_ERR_NOMEM;
    if (ux && (GROW(ux->hist, history, 0) || GROW(ux->hist_len, 1, 0) ||
               GROW(ux->hist_head, 1, 0) || GROW(ux->last, 1, 0) ||
               GROW(ux->last_ts_ms, 1, 0) || GROW(ux->stale_since, 1, 0) ||
               GROW(ux->last_mark, 1, 0) || GROW(ux->purchased, 1, 0) ||
               GROW(ux->seen, 1, 0)))
        return ADVREC_ERR_NOMEM;
    rows->cap = cap;
    return ADVREC_OK;
}

static void rows_free(advrec_rows_t *rows)
{
    free(rows->w);
    free(rows->acc);
    free(rows->bias);
    free(rows->bias_acc);
    free(rows->updates);
    free(rows->clicks);
    free(rows->purchases);
    free(rows->dirty);
    free(rows->dirty_list);
}

advrec_state_t *advrec_state_new(const advrec_state_params_t *params,
                                 char *errstr, size_t errstr_size)
{
    advrec_state_t *state;

    if (params->k < 1 || params->k > 1024 || params->history < 1 ||
        params->history > 65535 || params->max_users < 1 ||
        params->max_items < 1 || params->max_items > ADVREC_HIST_ITEM ||
        params->purchased_max > ADVREC_ITEMSET_MAX ||
        params->seen_max > ADVREC_ITEMSET_MAX) {
        advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                      "state: k=%u history=%u max_users=%u max_items=%u "
                      "purchased_max=%u seen_max=%u out of range",
                      params->k, params->history, params->max_users,
                      params->max_items, params->purchased_max,
                      params->seen_max);
        return NULL;
    }
    state = calloc(1, sizeof(*state));
    if (!state)
        goto nomem;
    state->params = *params;
    state->users.k = state->items.k = params->k;
    state->user_ids = advrec_idmap_new(params->max_users);
    state->item_ids = advrec_idmap_new(params->max_items);
    if (!state->user_ids || !state->item_ids)
        goto nomem;
    return state;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "state: out of memory");
    advrec_state_destroy(state);
    return NULL;
}

void advrec_state_destroy(advrec_state_t *state)
{
    if (!state)
        return;
    advrec_idmap_destroy(state->user_ids);
    advrec_idmap_destroy(state->item_ids);
    rows_free(&state->users);
    rows_free(&state->items);
    free(state->ux.hist);
    free(state->ux.hist_len);
    free(state->ux.hist_head);
    free(state->ux.last);
    free(state->ux.last_ts_ms);
    free(state->ux.stale_since);
    free(state->ux.last_mark);
    for (uint32_t u = 0; u < state->users.cap; u++) {
        if (state->ux.purchased)
            advrec_itemset_free(state->ux.purchased[u]);
        if (state->ux.seen)
            advrec_itemset_free(state->ux.seen[u]);
    }
    free(state->ux.purchased);
    free(state->ux.seen);
    free(state);
}

const advrec_state_params_t *advrec_state_params(const advrec_state_t *state)
{
    return &state->params;
}

static advrec_err_t intern(advrec_state_t *state, advrec_idmap_t *map,
                           advrec_rows_t *rows, advrec_user_ext_t *ux,
                           const char *what, const char *id, int create,
                           uint32_t *idx, int *created, char *errstr,
                           size_t errstr_size)
{
    advrec_err_t err;
    int made = 0;

    if (created)
        *created = 0;
    /* Reserve first, so a new id is never interned without a row. */
    if (create) {
        err = rows_reserve(rows, ux, state->params.history);
        if (err)
            return advrec_seterr(err, errstr, errstr_size,
                                 "state: out of memory growing the %s table "
                                 "past %u rows",
                                 what, rows->cap);
    }
    err = advrec_idmap_get(map, id, strlen(id), create, idx, &made);
    if (err == ADVREC_ERR_FULL)
        return advrec_seterr(err, errstr, errstr_size,
                             "state: %s \"%s\" is new but the %s table is "
                             "full (%u); raise model.max.%ss",
                             what, id, what, advrec_idmap_count(map), what);
    if (err == ADVREC_ERR_NOT_FOUND)
        return advrec_seterr(err, errstr, errstr_size, "state: no %s \"%s\"",
                             what, id);
    if (err)
        return advrec_seterr(err, errstr, errstr_size,
                             "state: cannot intern %s \"%s\": %s", what, id,
                             advrec_err2str(err));
    if (made) {
        rows->n++;
        if (created)
            *created = 1;
    }
    return ADVREC_OK;
}

advrec_err_t advrec_state_user(advrec_state_t *state, const char *id,
                               int create, uint32_t *idx, int *created,
                               char *errstr, size_t errstr_size)
{
    return intern(state, state->user_ids, &state->users, &state->ux, "user", id,
                  create, idx, created, errstr, errstr_size);
}

advrec_err_t advrec_state_item(advrec_state_t *state, const char *id,
                               int create, uint32_t *idx, int *created,
                               char *errstr, size_t errstr_size)
{
    return intern(state, state->item_ids, &state->items, NULL, "item", id,
                  create, idx, created, errstr, errstr_size);
}

const char *advrec_state_user_name(const advrec_state_t *state, uint32_t idx)
{
    return advrec_idmap_name(state->user_ids, idx);
}

const char *advrec_state_item_name(const advrec_state_t *state, uint32_t idx)
{
    return advrec_idmap_name(state->item_ids, idx);
}

advrec_rows_t *advrec_state_users(advrec_state_t *state)
{
    return &state->users;
}

advrec_rows_t *advrec_state_items(advrec_state_t *state)
{
    return &state->items;
}

advrec_user_ext_t *advrec_state_user_ext(advrec_state_t *state)
{
    return &state->ux;
}

void advrec_rows_touch(advrec_rows_t *rows, uint32_t idx)
{
    if (rows->dirty[idx])
        return;
    rows->dirty[idx] = 1;
    rows->dirty_list[rows->n_dirty++] = idx;
}

static void rows_clear_dirty(advrec_rows_t *rows)
{
    for (uint32_t i = 0; i < rows->n_dirty; i++)
        rows->dirty[rows->dirty_list[i]] = 0;
    rows->n_dirty = 0;
}

void advrec_state_clear_dirty(advrec_state_t *state)
{
    rows_clear_dirty(&state->users);
    rows_clear_dirty(&state->items);
}

void advrec_state_push_history(advrec_state_t *state, uint32_t user,
                               uint32_t entry)
{
    advrec_user_ext_t *ux = &state->ux;
    uint32_t h = state->params.history;

    ux->hist[(size_t)user * h + ux->hist_head[user]] = entry;
    ux->hist_head[user] = (uint16_t)((ux->hist_head[user] + 1) % h);
    if (ux->hist_len[user] < h)
        ux->hist_len[user]++;
}

advrec_err_t advrec_state_remember(advrec_state_t *state, uint32_t user,
                                   uint32_t item, int purchase, char *errstr,
                                   size_t errstr_size)
{
    advrec_user_ext_t *ux = &state->ux;

    if (advrec_itemset_add(&ux->seen[user], item, state->params.seen_max) ||
        (purchase && advrec_itemset_add(&ux->purchased[user], item,
                                        state->params.purchased_max)))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state: out of memory growing the item sets of "
                             "user \"%s\"",
                             advrec_state_user_name(state, user));
    return ADVREC_OK;
}

int advrec_state_in_history(const advrec_state_t *state, uint32_t user,
                            uint32_t item, int purchases_only)
{
    const advrec_user_ext_t *ux = &state->ux;
    const uint32_t *ring = ux->hist + (size_t)user * state->params.history;

    for (uint32_t i = 0; i < ux->hist_len[user]; i++) {
        if ((ring[i] & ADVREC_HIST_ITEM) != item)
            continue;
        if (!purchases_only || (ring[i] & ADVREC_HIST_PURCHASE))
            return 1;
    }
    return 0;
}
