/*
 * daemon_expire.c - users leave the state: expired (state.user.ttl, by
 * event time), forgotten (a tombstone keyed by user id on topic.control) or
 * making room (a new user and model.max.users live users: the least
 * recently active goes). docs/STATE.md, "Expiry and forgetting".
 *
 * A deleted user's row, id and detector row are deleted in the next
 * commit's batch (with the input offsets of the round that deleted them,
 * so a forget request is applied exactly once); a tombstone (null value)
 * keyed by the user goes to topic.recommendations through the outbox, so
 * a compacted topic drops their list too; in memory the slot is freed for
 * the next user. A user not in memory (a memory budget) is deleted on disk
 * only, and until that commit is written its id is remembered here so
 * that an event of the same id starts a new user instead of reading the
 * old row back.
 */
#include "daemon_int.h"

#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "idmap.h"
#include "log.h"
#include "store.h"

/* Users visited per commit by the expiry sweep on disk, and per search for
 * room; slots checked per commit in memory. */
#define SWEEP_MAX      4096
#define SLOT_SWEEP_MAX 65536

/* An id deleted on disk only, until the commit of epoch is written. */
typedef struct gone_s {
    uint32_t idx; /* in d->gone_ids */
    uint64_t epoch;
} gone_t;

static const char *const cause_names[ADVREC_DELETE__COUNT] = {"ttl", "forget",
                                                              "capacity"};

int advrec_daemon__gone(const advrec_daemon_t *d, const char *id)
{
    uint32_t idx;

    return d->gone_ids && d->n_gone &&
           advrec_idmap_get(d->gone_ids, id, strlen(id), 0, &idx, NULL) == 0;
}

/* Remembers id as deleted until the next commit is written. */
static advrec_err_t remember_gone(advrec_daemon_t *d, const char *id)
{
    uint32_t idx;
    advrec_err_t err;

    if (!d->gone_ids)
        return ADVREC_OK;
    if (d->n_gone == d->gone_cap) {
        size_t cap = d->gone_cap ? 2 * d->gone_cap : 256;
        gone_t *g = realloc(d->gone, cap * sizeof(*g));
        uint32_t *f = realloc(d->gone_free, cap * sizeof(*f));
        if (g)
            d->gone = g;
        if (f)
            d->gone_free = f;
        if (!g || !f)
            return ADVREC_ERR_NOMEM;
        d->gone_cap = cap;
    }
    /* Indices freed by written commits are used again. */
    idx = d->n_gone_free ? d->gone_free[--d->n_gone_free] : d->gone_next++;
    err = advrec_idmap_insert(d->gone_ids, id, strlen(id), idx);
    if (err == ADVREC_ERR_INVALID_ARG) {
        /* Deleted twice before a commit (gone, back, gone): once is
         * enough; the index goes back. */
        d->gone_free[d->n_gone_free++] = idx;
        return ADVREC_OK;
    }
    if (err)
        return err;
    d->gone[d->n_gone].idx = idx;
    d->gone[d->n_gone].epoch =
        advrec_state_epoch(advrec_engine_state(d->engine)) + 1;
    d->n_gone++;
    return ADVREC_OK;
}

void advrec_daemon__gone_written(advrec_daemon_t *d)
{
    size_t n = 0;

    d->room_dry = 0;
    while (n < d->n_gone && d->gone[n].epoch <= d->written_epoch) {
        (void)advrec_idmap_remove(d->gone_ids, d->gone[n].idx);
        d->gone_free[d->n_gone_free++] = d->gone[n].idx;
        n++;
    }
    if (n) {
        memmove(d->gone, d->gone + n, (d->n_gone - n) * sizeof(*d->gone));
        d->n_gone -= n;
    }
}

/* What every deletion does besides the slot: the stored rows, the
 * tombstone owed on the recommendations topic, the counters. A failure
 * stops the daemon (the round must not commit a deletion half done). */
static advrec_err_t delete_stored(advrec_daemon_t *d, const char *id,
                                  uint32_t uid, int32_t partition, int cause)
{
    advrec_err_t err;

    if (d->store &&
        ((err = advrec_store_stage_user_delete(d->store, id, uid)) ||
         (err = remember_gone(d, id)))) {
        advrec_daemon__fail(d, err, "cannot stage a user's deletion",
                            advrec_err2str(err));
        return err;
    }
    if ((err = advrec_outbox_add(d->outbox, ADVREC_OUT_TOMBSTONE, id,
                                 strlen(id), NULL, 0, NULL))) {
        advrec_daemon__fail(d, err, "cannot record a deleted user's tombstone",
                            advrec_err2str(err));
        return err;
    }
    advrec_daemon__changelog_gone(d, id, partition);
    d->c->users_deleted[cause]++;
    return ADVREC_OK;
}

/* Deletes the user in memory slot u. */
static advrec_err_t delete_slot(advrec_daemon_t *d, uint32_t u, int cause)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    char id[ADVREC_ID_MAX + 1];
    advrec_err_t err;

    snprintf(id, sizeof(id), "%s", advrec_state_user_name(state, u));
    if ((err = delete_stored(d, id, advrec_state_user_ext(state)->uid[u],
                             advrec_state_user_ext(state)->last[u].partition,
                             cause)))
        return err;
    advrec_engine_forget_user(d->engine, u);
    advrec_outbox_forget_list(d->outbox, u);
    advrec_detect_drop_user(d->detect, u);
    if ((err = advrec_state_delete_user(state, u))) {
        advrec_daemon__fail(d, err, "cannot delete a user from memory",
                            advrec_err2str(err));
        return err;
    }
    log_debug("user \"%s\" deleted (%s)", id, cause_names[cause]);
    return ADVREC_OK;
}

/* Deletes a user not in memory, stored under uid. */
static advrec_err_t delete_absent(advrec_daemon_t *d, const char *id,
                                  uint32_t uid, int32_t partition, int cause)
{
    advrec_err_t err;

    if ((err = delete_stored(d, id, uid, partition, cause)))
        return err;
    advrec_state_user_gone(advrec_engine_state(d->engine));
    log_debug("user \"%s\" deleted (%s; not in memory)", id,
              cause_names[cause]);
    return ADVREC_OK;
}

advrec_err_t advrec_daemon__delete_quietly(advrec_daemon_t *d, const char *id)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_store_row_t row;
    uint32_t slot;
    advrec_err_t err = ADVREC_OK;
    char why[300];

    if (advrec_state_user(state, id, 0, &slot, NULL, NULL, 0) == 0) {
        if (d->store &&
            ((err = advrec_store_stage_user_delete(
                  d->store, id, advrec_state_user_ext(state)->uid[slot])) ||
             (err = remember_gone(d, id))))
            return err;
        advrec_engine_forget_user(d->engine, slot);
        advrec_outbox_forget_list(d->outbox, slot);
        advrec_detect_drop_user(d->detect, slot);
        return advrec_state_delete_user(state, slot);
    }
    if (!d->store)
        return ADVREC_OK;
    memset(&row, 0, sizeof(row));
    err = advrec_store_get_user(d->store, id, &row, why, sizeof(why));
    if (err == ADVREC_ERR_NOT_FOUND)
        return ADVREC_OK;
    if (!err) {
        err = advrec_store_stage_user_delete(d->store, id, row.idx);
        if (!err)
            err = remember_gone(d, id);
        if (!err)
            advrec_state_user_gone(state);
        advrec_store_row_free(&row);
    }
    return err;
}

/* --- users not in memory, visited in number order ----------------------- */

/* Users sampled for room (an approximated LRU, as Redis evicts): the one
 * whose last event is oldest among them goes. */
#define ROOM_SAMPLE 16

typedef struct candidate_s {
    uint32_t uid;
    int32_t partition; /* of its last event */
    int64_t last_ts;
    char id[ADVREC_ID_MAX + 1];
} candidate_t;

typedef struct visit_s {
    advrec_daemon_t *d;
    int64_t cutoff;  /* expiry: delete users whose last event is before */
    uint32_t budget; /* users left to look at */
    uint32_t next;   /* where the next visit starts */
    uint32_t deleted;
    candidate_t *sample; /* room: the users not in memory seen, or NULL */
    uint32_t n_sample;
    advrec_err_t err;
} visit_t;

static int visit_user(void *opaque, uint32_t uid, const char *id)
{
    visit_t *v = opaque;
    advrec_daemon_t *d = v->d;
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_store_row_t row;
    uint32_t slot;
    int32_t partition;
    int64_t last_ts;
    char why[256];

    if (v->budget == 0 || (v->sample && v->n_sample == ROOM_SAMPLE))
        return 1;
    v->budget--;
    v->next = uid + 1;
    /* In memory: judged there, with its current event time. */
    if (advrec_state_user(state, id, 0, &slot, NULL, NULL, 0) == 0 ||
        advrec_daemon__gone(d, id))
        return 0;
    memset(&row, 0, sizeof(row));
    v->err = advrec_store_get_user(d->store, id, &row, why, sizeof(why));
    if (v->err == ADVREC_ERR_NOT_FOUND) {
        v->err = ADVREC_OK;
        return 0;
    }
    if (v->err) {
        advrec_daemon__fail(d, v->err, "cannot read a stored user", why);
        return 1;
    }
    last_ts = row.last_ts_ms;
    partition = row.last.partition;
    advrec_store_row_free(&row);
    if (v->sample) {
        candidate_t *c = &v->sample[v->n_sample++];
        c->uid = uid;
        c->partition = partition;
        c->last_ts = last_ts;
        snprintf(c->id, sizeof(c->id), "%s", id);
        return 0;
    }
    if (last_ts >= v->cutoff)
        return 0;
    if ((v->err = delete_absent(d, id, uid, partition, ADVREC_DELETE_TTL)))
        return 1;
    v->deleted++;
    return 0;
}

/* Visits up to budget stored users from *cursor on, then from the first
 * one when the end came first: expires them (v->cutoff) or samples them
 * (v->sample). */
static void visit_stored(advrec_daemon_t *d, uint32_t *cursor, visit_t *v)
{
    char why[256];

    v->next = *cursor;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t from = pass ? 0 : *cursor;
        advrec_err_t err = advrec_store_users_from(d->store, from, visit_user,
                                                   v, why, sizeof(why));
        if (err) {
            advrec_daemon__fail(d, err, "cannot list the stored users", why);
            break;
        }
        /* Stopped by the budget, an error or a full sample: done. */
        if (v->err || v->budget == 0 ||
            (v->sample && v->n_sample == ROOM_SAMPLE))
            break;
        /* The end came first: the next visit starts from the first. */
        v->next = 0;
        if (from == 0)
            break;
    }
    *cursor = v->next;
}

/* --- making room ---------------------------------------------------------- */

/*
 * The engine's room callback: a new user and a full table. With a memory
 * budget the users not in memory were evicted from the cold end of the
 * activity order, so one of them goes: of ROOM_SAMPLE of them (visited in
 * number order, round robin), the one whose last event is oldest. Else, or
 * when every stored user is in memory, the least recently active user in
 * memory.
 */
static advrec_err_t make_room(void *opaque, char *errstr, size_t errstr_size)
{
    advrec_daemon_t *d = opaque;
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint32_t u;

    /* A visit that found nobody is not repeated until a commit is written
     * (the users it passed were in memory, or deleted meanwhile). */
    if (d->cache_slots && !d->room_dry &&
        advrec_state_users_resident(state) < advrec_state_users_live(state)) {
        candidate_t sample[ROOM_SAMPLE];
        visit_t v = {.d = d, .budget = SWEEP_MAX, .sample = sample};
        visit_stored(d, &d->room_cursor, &v);
        if (v.n_sample) {
            uint32_t best = 0;
            for (uint32_t i = 1; i < v.n_sample; i++)
                if (sample[i].last_ts < sample[best].last_ts)
                    best = i;
            if (delete_absent(d, sample[best].id, sample[best].uid,
                              sample[best].partition, ADVREC_DELETE_CAPACITY))
                return advrec_seterr(d->fatal_err, errstr, errstr_size, "%s",
                                     d->fatal);
            return ADVREC_OK;
        }
        if (d->fatal[0])
            return advrec_seterr(d->fatal_err, errstr, errstr_size, "%s",
                                 d->fatal);
        d->room_dry = 1;
    }
    u = advrec_state_lru_first(state);
    if (u == UINT32_MAX)
        return advrec_seterr(ADVREC_ERR_FULL, errstr, errstr_size,
                             "state: the user table is full (%u) and no user "
                             "can make room",
                             advrec_state_users_live(state));
    if (delete_slot(d, u, ADVREC_DELETE_CAPACITY))
        return advrec_seterr(d->fatal_err, errstr, errstr_size, "%s", d->fatal);
    return ADVREC_OK;
}

/* --- expiry by event time ------------------------------------------------- */

void advrec_daemon__expire(advrec_daemon_t *d)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    const advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t slots = advrec_state_users(state)->n, n = 0;
    int64_t ttl = d->conf->state_user_ttl_ms;
    int64_t mark = advrec_engine_watermark(d->engine), cutoff;

    if (ttl <= 0 || mark <= ttl)
        return;
    cutoff = mark - ttl;
    /* In memory, a slice of the slots per commit, all in turn: a check of
     * a number each (a free slot has none). */
    for (uint32_t seen = 0;
         seen < SLOT_SWEEP_MAX && seen < slots && !d->fatal[0]; seen++) {
        uint32_t u = d->ttl_slot++ % slots;
        if (advrec_state_user_name(state, u) && ux->last_ts_ms[u] < cutoff) {
            if (delete_slot(d, u, ADVREC_DELETE_TTL))
                return;
            n++;
        }
    }
    d->ttl_slot %= slots ? slots : 1;
    /* On disk (a memory budget), a slice per commit, all in turn. */
    if (d->cache_slots && d->store &&
        advrec_state_users_resident(state) < advrec_state_users_live(state)) {
        visit_t v = {.d = d, .cutoff = cutoff, .budget = SWEEP_MAX};
        visit_stored(d, &d->ttl_cursor, &v);
        n += v.deleted;
    }
    if (n)
        log_info("%u user(s) expired: no event since %lld ms before the "
                 "latest event time (state.user.ttl)",
                 n, (long long)ttl);
}

/* --- forget requests ------------------------------------------------------ */

advrec_daemon_apply_t advrec_daemon__forget(advrec_daemon_t *d,
                                            const rd_kafka_message_t *m)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    char id[ADVREC_ID_MAX + 1], why[300];
    advrec_store_row_t row;
    uint32_t slot;
    advrec_err_t err;

    d->c->consumed++;
    if (m->payload || !m->key || m->key_len == 0 || m->key_len >= sizeof(id) ||
        memchr(m->key, '\0', m->key_len)) {
        snprintf(why, sizeof(why),
                 "%s: a forget request is a tombstone (null value) keyed by "
                 "a user id of 1 to %d bytes; this record has %s%s",
                 d->conf->topic_control, ADVREC_ID_MAX - 1,
                 m->payload ? "a value" : "no usable key",
                 m->payload && !m->key ? " and no key" : "");
        advrec_daemon__dead_letter(d, m, ADVREC_DLQ_BAD_CONTROL, why);
        return ADVREC_APPLY_DONE;
    }
    memcpy(id, m->key, m->key_len);
    id[m->key_len] = '\0';
    /* Restored from the changelog with a row that already reflects it. */
    if (advrec_daemon__changelog_skip(d, id, TOPIC_CONTROL, m->partition,
                                      m->offset))
        return ADVREC_APPLY_DONE;
    d->c->forget_requests++;
    if (advrec_state_user(state, id, 0, &slot, NULL, NULL, 0) == 0) {
        (void)delete_slot(d, slot, ADVREC_DELETE_FORGET);
        return ADVREC_APPLY_DONE;
    }
    if (!d->store || advrec_daemon__gone(d, id)) {
        log_info("forget request for user \"%s\": not in the state", id);
        return ADVREC_APPLY_DONE;
    }
    memset(&row, 0, sizeof(row));
    err = advrec_store_get_user(d->store, id, &row, why, sizeof(why));
    if (err == ADVREC_ERR_NOT_FOUND) {
        log_info("forget request for user \"%s\": not in the state", id);
        return ADVREC_APPLY_DONE;
    }
    if (err) {
        advrec_daemon__fail(d, err, "cannot read a user to forget", why);
        return ADVREC_APPLY_DONE;
    }
    (void)delete_absent(d, id, row.idx, m->partition, ADVREC_DELETE_FORGET);
    advrec_store_row_free(&row);
    return ADVREC_APPLY_DONE;
}

/* --- life cycle ----------------------------------------------------------- */

advrec_err_t advrec_daemon__expire_init(advrec_daemon_t *d, char *errstr,
                                        size_t errstr_size)
{
    advrec_engine_set_room(d->engine, make_room, d);
    if (!d->store)
        return ADVREC_OK;
    d->gone_ids = advrec_idmap_new_removable(UINT32_MAX / 2, 1);
    if (!d->gone_ids)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    return ADVREC_OK;
}

void advrec_daemon__expire_destroy(advrec_daemon_t *d)
{
    advrec_idmap_destroy(d->gone_ids);
    free(d->gone);
    free(d->gone_free);
}
