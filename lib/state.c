/*
 * state.c - owns the in-memory row tables and the two id maps, the user
 * slots' free list and (evictable state) their activity order.
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
    uint32_t user_count;  /* uids handed out */
    uint32_t live;        /* users in the state: handed out, not deleted */
    uint32_t resident;    /* occupied user slots */
    uint32_t *free_slots; /* slots of evicted users, reused last-in first */
    uint32_t n_free, free_cap;
    uint32_t lru_head, lru_tail; /* least / most recently active */
    uint32_t slot_hint;          /* doubling of the user tables stops here */
    uint64_t epoch;              /* advrec_state_clear_dirty() calls */
};

#define NONE UINT32_MAX

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
                                 uint32_t history, uint32_t hint)
{
    uint32_t old = rows->cap, cap;

    if (rows->n < rows->cap)
        return ADVREC_OK;
    cap = old ? old * 2 : 1024;
    /* A memory budget: doubling past the slots it has room for would ask
     * for up to twice the budget at once. */
    if (hint && old < hint && cap > hint)
        cap = hint;
    else if (hint && old >= hint)
        cap = old + old / 4;
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
               GROW(ux->seen, 1, 0) || GROW(ux->uid, 1, 0) ||
               GROW(ux->fresh, 1, 0) || GROW(ux->lru_prev, 1, 0) ||
               GROW(ux->lru_next, 1, 0) || GROW(ux->batch, 1, 0)))
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
    state->lru_head = state->lru_tail = NONE;
    state->user_ids =
        advrec_idmap_new_removable(params->max_users, params->evictable);
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
    free(state->ux.uid);
    free(state->ux.fresh);
    free(state->ux.lru_prev);
    free(state->ux.lru_next);
    free(state->ux.batch);
    free(state->free_slots);
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
        err = rows_reserve(rows, ux, state->params.history, 0);
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

/* Appends slot u at the most recent end of the activity order. */
static void lru_push(advrec_state_t *state, uint32_t u)
{
    advrec_user_ext_t *ux = &state->ux;

    ux->lru_prev[u] = state->lru_tail;
    ux->lru_next[u] = NONE;
    if (state->lru_tail != NONE)
        ux->lru_next[state->lru_tail] = u;
    else
        state->lru_head = u;
    state->lru_tail = u;
}

static void lru_unlink(advrec_state_t *state, uint32_t u)
{
    advrec_user_ext_t *ux = &state->ux;

    if (ux->lru_prev[u] != NONE)
        ux->lru_next[ux->lru_prev[u]] = ux->lru_next[u];
    else
        state->lru_head = ux->lru_next[u];
    if (ux->lru_next[u] != NONE)
        ux->lru_prev[ux->lru_next[u]] = ux->lru_prev[u];
    else
        state->lru_tail = ux->lru_prev[u];
}

/* Takes a user slot for id (absent) under uid: a freed one, else a new one
 * at the end of the tables. On error nothing changed. */
static advrec_err_t take_slot(advrec_state_t *state, const char *id,
                              uint32_t uid, uint32_t *idx, char *errstr,
                              size_t errstr_size)
{
    advrec_rows_t *rows = &state->users;
    uint32_t u;
    advrec_err_t err;

    if (state->n_free) {
        u = state->free_slots[state->n_free - 1];
    } else {
        if ((err = rows_reserve(rows, &state->ux, state->params.history,
                                state->slot_hint)))
            return advrec_seterr(err, errstr, errstr_size,
                                 "state: out of memory growing the user "
                                 "table past %u rows",
                                 rows->cap);
        u = rows->n;
    }
    err = advrec_idmap_insert(state->user_ids, id, strlen(id), u);
    if (err == ADVREC_ERR_FULL)
        return advrec_seterr(err, errstr, errstr_size,
                             "state: user \"%s\" is new but the user table "
                             "is full (%u); raise model.max.users",
                             id, advrec_idmap_count(state->user_ids));
    if (err)
        return advrec_seterr(err, errstr, errstr_size,
                             "state: cannot intern user \"%s\": %s", id,
                             advrec_err2str(err));
    if (state->n_free)
        state->n_free--;
    else
        rows->n++;
    state->ux.uid[u] = uid;
    state->resident++;
    if (state->params.evictable)
        lru_push(state, u);
    *idx = u;
    return ADVREC_OK;
}

advrec_err_t advrec_state_user(advrec_state_t *state, const char *id,
                               int create, uint32_t *idx, int *created,
                               char *errstr, size_t errstr_size)
{
    advrec_err_t err;

    if (created)
        *created = 0;
    err = advrec_idmap_get(state->user_ids, id, strlen(id), 0, idx, NULL);
    if (err != ADVREC_ERR_NOT_FOUND)
        return err;
    if (!create)
        return advrec_seterr(err, errstr, errstr_size, "state: no user \"%s\"",
                             id);
    if (state->live >= state->params.max_users)
        return advrec_seterr(ADVREC_ERR_FULL, errstr, errstr_size,
                             "state: user \"%s\" is new but the user table "
                             "is full (%u); raise model.max.users",
                             id, state->live);
    if (state->user_count == UINT32_MAX)
        return advrec_seterr(ADVREC_ERR_FULL, errstr, errstr_size,
                             "state: user \"%s\" is new but every user "
                             "number has been handed out",
                             id);
    if ((err =
             take_slot(state, id, state->user_count, idx, errstr, errstr_size)))
        return err;
    state->user_count++;
    state->live++;
    /* Its id goes to disk with the next commit, which writes dirty rows:
     * a user interned by an event that then fails keeps its number. */
    state->ux.fresh[*idx] = 1;
    advrec_rows_touch(&state->users, *idx);
    if (created)
        *created = 1;
    return ADVREC_OK;
}

advrec_err_t advrec_state_user_insert(advrec_state_t *state, const char *id,
                                      uint32_t uid, uint32_t *idx, char *errstr,
                                      size_t errstr_size)
{
    uint32_t had;
    advrec_err_t err;

    if (advrec_idmap_get(state->user_ids, id, strlen(id), 0, &had, NULL) == 0)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state: user \"%s\" is in memory already", id);
    if ((err = take_slot(state, id, uid, idx, errstr, errstr_size)))
        return err;
    if (uid >= state->user_count)
        state->user_count = uid + 1;
    return ADVREC_OK;
}

uint32_t advrec_state_user_count(const advrec_state_t *state)
{
    return state->user_count;
}

void advrec_state_set_user_count(advrec_state_t *state, uint32_t n)
{
    state->user_count = n;
}

uint32_t advrec_state_users_live(const advrec_state_t *state)
{
    return state->live;
}

void advrec_state_set_users_live(advrec_state_t *state, uint32_t n)
{
    state->live = n;
}

uint32_t advrec_state_users_resident(const advrec_state_t *state)
{
    return state->resident;
}

void advrec_state_user_active(advrec_state_t *state, uint32_t idx)
{
    if (!state->params.evictable || state->lru_tail == idx)
        return;
    lru_unlink(state, idx);
    lru_push(state, idx);
}

/* A slot and its user's last event time, for the activity order. */
typedef struct slot_ts_s {
    int64_t ts;
    uint32_t slot;
} slot_ts_t;

static int by_ts(const void *a, const void *b)
{
    const slot_ts_t *x = a, *y = b;

    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

advrec_err_t advrec_state_lru_by_time(advrec_state_t *state)
{
    uint32_t n = 0;
    slot_ts_t *order;

    if (!state->params.evictable || state->resident < 2)
        return ADVREC_OK;
    if (!(order = malloc((size_t)state->resident * sizeof(*order))))
        return ADVREC_ERR_NOMEM;
    for (uint32_t u = state->lru_head; u != NONE && n < state->resident;
         u = state->ux.lru_next[u])
        order[n++] = (slot_ts_t){state->ux.last_ts_ms[u], u};
    qsort(order, n, sizeof(*order), by_ts);
    state->lru_head = state->lru_tail = NONE;
    for (uint32_t i = 0; i < n; i++)
        lru_push(state, order[i].slot);
    free(order);
    return ADVREC_OK;
}

uint32_t advrec_state_lru_first(const advrec_state_t *state)
{
    return state->lru_head;
}

uint32_t advrec_state_lru_next(const advrec_state_t *state, uint32_t idx)
{
    return state->ux.lru_next[idx];
}

/* Frees user slot idx (in memory, evictable state): its id, its sets,
 * its place in the activity order; the row zeroed as a new one is. */
static advrec_err_t free_slot(advrec_state_t *state, uint32_t idx)
{
    advrec_rows_t *r = &state->users;
    advrec_user_ext_t *ux = &state->ux;
    size_t k = r->k, h = state->params.history;

    if (state->n_free == state->free_cap) {
        uint32_t cap = state->free_cap ? state->free_cap * 2 : 1024;
        uint32_t *f = realloc(state->free_slots, cap * sizeof(*f));
        if (!f)
            return ADVREC_ERR_NOMEM;
        state->free_slots = f;
        state->free_cap = cap;
    }
    (void)advrec_idmap_remove(state->user_ids, idx);
    lru_unlink(state, idx);
    advrec_itemset_free(ux->purchased[idx]);
    advrec_itemset_free(ux->seen[idx]);
    /* A slot is zeroed as a new row is: the next user starts from it. */
    memset(r->w + idx * k, 0, k * sizeof(*r->w));
    r->acc[idx] = r->bias[idx] = r->bias_acc[idx] = 0;
    r->updates[idx] = 0;
    r->clicks[idx] = r->purchases[idx] = 0;
    memset(ux->hist + idx * h, 0, h * sizeof(*ux->hist));
    ux->hist_len[idx] = ux->hist_head[idx] = 0;
    memset(&ux->last[idx], 0, sizeof(ux->last[idx]));
    ux->last_ts_ms[idx] = ux->stale_since[idx] = ux->last_mark[idx] = 0;
    ux->purchased[idx] = ux->seen[idx] = NULL;
    ux->uid[idx] = 0;
    ux->batch[idx] = 0;
    ux->fresh[idx] = 0;
    state->free_slots[state->n_free++] = idx;
    state->resident--;
    return ADVREC_OK;
}

advrec_err_t advrec_state_evict_user(advrec_state_t *state, uint32_t idx)
{
    advrec_rows_t *r = &state->users;
    advrec_user_ext_t *ux = &state->ux;

    if (!state->params.evictable || idx >= r->n || r->dirty[idx] ||
        ux->fresh[idx] || !advrec_idmap_name(state->user_ids, idx))
        return ADVREC_ERR_INVALID_ARG;
    return free_slot(state, idx);
}

advrec_err_t advrec_state_delete_user(advrec_state_t *state, uint32_t idx)
{
    advrec_err_t err;

    if (!state->params.evictable || idx >= state->users.n ||
        !advrec_idmap_name(state->user_ids, idx))
        return ADVREC_ERR_INVALID_ARG;
    /* A dirty slot stays listed: a commit skips a free slot, and writes
     * the row of the user who takes it next. */
    if ((err = free_slot(state, idx)))
        return err;
    advrec_state_user_gone(state);
    return ADVREC_OK;
}

void advrec_state_user_gone(advrec_state_t *state)
{
    if (state->live)
        state->live--;
}

size_t advrec_state_user_slot_bytes(const advrec_state_t *state)
{
    const advrec_rows_t *r = &state->users;
    const advrec_user_ext_t *ux = &state->ux;

    return r->k * sizeof(*r->w) + sizeof(*r->acc) + sizeof(*r->bias) +
           sizeof(*r->bias_acc) + sizeof(*r->updates) + sizeof(*r->clicks) +
           sizeof(*r->purchases) + sizeof(*r->dirty) + sizeof(*r->dirty_list) +
           state->params.history * sizeof(*ux->hist) + sizeof(*ux->hist_len) +
           sizeof(*ux->hist_head) + sizeof(*ux->last) +
           sizeof(*ux->last_ts_ms) + sizeof(*ux->stale_since) +
           sizeof(*ux->last_mark) + sizeof(*ux->purchased) + sizeof(*ux->seen) +
           sizeof(*ux->uid) + sizeof(*ux->fresh) + sizeof(*ux->lru_prev) +
           sizeof(*ux->lru_next) + sizeof(*ux->batch) +
           /* the id map: its slot table at most half full (16-byte
            * entries), the name pointer */
           2 * 16 + sizeof(char *);
}

/* A heap block of n bytes as malloc keeps it (header, 16-byte steps). */
static size_t heap(size_t n)
{
    return (n + 8 + 15) & ~(size_t)15;
}

void advrec_state_memory(const advrec_state_t *state, size_t *user_bytes,
                         size_t *item_bytes)
{
    const advrec_rows_t *r = &state->users, *it = &state->items;
    size_t u = advrec_state_user_slot_bytes(state) * r->cap;

    for (uint32_t x = 0; x < r->n; x++) {
        const char *id = advrec_idmap_name(state->user_ids, x);
        uint32_t np = advrec_itemset_count(state->ux.purchased[x]);
        uint32_t ns = advrec_itemset_count(state->ux.seen[x]);
        if (!id)
            continue;
        u += state->params.evictable ? heap(strlen(id) + 1) : strlen(id) + 1;
        /* a set: a small header and items + stamps, grown by doubling */
        u += np ? heap(16 + 8 * (size_t)np * 2) : 0;
        u += ns ? heap(16 + 8 * (size_t)ns * 2) : 0;
    }
    *user_bytes = u;
    *item_bytes =
        (size_t)it->cap *
            (it->k * sizeof(*it->w) + sizeof(*it->acc) + sizeof(*it->bias) +
             sizeof(*it->bias_acc) + sizeof(*it->updates) +
             sizeof(*it->clicks) + sizeof(*it->purchases) + sizeof(*it->dirty) +
             sizeof(*it->dirty_list) + 2 * 16 + sizeof(char *)) +
        (size_t)it->n * 16; /* ids in the arena, about */
}

void advrec_state_set_slot_hint(advrec_state_t *state, uint32_t slots)
{
    state->slot_hint = slots;
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
    /* Every fresh user is dirty (advrec_state_user): its id is written
     * with its row. */
    state->epoch++;
    for (uint32_t i = 0; i < state->users.n_dirty; i++) {
        state->ux.fresh[state->users.dirty_list[i]] = 0;
        state->ux.batch[state->users.dirty_list[i]] = state->epoch;
    }
    rows_clear_dirty(&state->users);
    rows_clear_dirty(&state->items);
}

uint64_t advrec_state_epoch(const advrec_state_t *state)
{
    return state->epoch;
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
