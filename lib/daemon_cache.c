/*
 * daemon_cache.c - the user cache of a memory budget (state.memory.limit,
 * docs/STATE.md "Memory budget"): RocksDB holds every user row, memory the
 * items and the users recently active. Reads a user back from the store at
 * their next event (the engine's loader), and after a commit evicts the
 * least recently active users whose rows are committed and who are owed
 * nothing, until the estimated resident set fits the budget. Owns nothing
 * beyond the daemon's counters it updates.
 */
#include "daemon_int.h"

#include <stdio.h>
#include <unistd.h>

#include "detect_store.h"
#include "log.h"

/* Memory the budget leaves aside for what the estimate does not see
 * (librdkafka's queues, RocksDB's block cache, malloc's free lists), on
 * top of what is resident beyond the user tables at the time. */
#define HEADROOM_DIV 16
/* Users kept per slot the tables were sized for: the rest is room for the
 * new users of the next commit interval, so the tables need not grow. */
#define FILL_NUM 7
#define FILL_DEN 8

/* Resident bytes of the process (/proc/self/statm); 0 when unknown. */
static uint64_t rss_bytes(void)
{
    unsigned long long size, rss;
    FILE *f = fopen("/proc/self/statm", "r");
    int ok;

    if (!f)
        return 0;
    ok = fscanf(f, "%llu %llu", &size, &rss) == 2;
    fclose(f);
    return ok ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

/* The engine's loader: reads user id back with its detector row. A store
 * that cannot be read stops the daemon (a user must not be taken for new
 * because their row could not be read). */
static advrec_err_t read_back(void *opaque, const char *id, uint32_t *user,
                              char *errstr, size_t errstr_size)
{
    advrec_daemon_t *d = opaque;
    advrec_state_t *state = advrec_engine_state(d->engine);
    advrec_err_t err;

    /* Deleted, and the commit that deletes it not written yet: a new user
     * of the same id starts afresh (daemon_expire.c). */
    if (advrec_daemon__gone(d, id))
        return ADVREC_ERR_NOT_FOUND;
    err =
        advrec_store_load_user(d->store, state, id, user, errstr, errstr_size);
    if (err == ADVREC_ERR_NOT_FOUND)
        return err;
    if (!err)
        err = advrec_detect_store_load_user(d->detect, d->store, state, *user,
                                            errstr, errstr_size);
    if (err) {
        advrec_daemon__fail(d, err, "cannot read a user back from the state",
                            errstr);
        return err;
    }
    d->c->user_reads++;
    return ADVREC_OK;
}

void advrec_daemon__cache_init(advrec_daemon_t *d)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint64_t limit = (uint64_t)d->conf->state_memory_limit;
    size_t slot = advrec_state_user_slot_bytes(state) + 64; /* id, sets */
    uint64_t slots = limit / 2 / slot;

    advrec_outbox_set_uids(d->outbox, &advrec_state_user_ext(state)->uid);
    d->commit_max_rows = COMMIT_MAX_ROWS;
    if (!limit || !d->store)
        return;
    /* A commit's batch (a row is about a slot's bytes) is held several
     * times over while built and written: a 32nd of the budget at most
     * (measured: 1 M new users through 256 MiB peaked at 1.55 x the budget
     * with 1 s batches, 1.23 x with 200 ms ones). */
    if (limit / 32 / slot < COMMIT_MAX_ROWS)
        d->commit_max_rows = (uint32_t)(limit / 32 / slot) + 1;
    advrec_engine_set_loader(d->engine, read_back, d);
    /* Half the budget for the user tables before they grow by quarters
     * only: doubling would ask for the whole budget at once. */
    if (slots < 1024)
        slots = 1024;
    if (slots > UINT32_MAX / 2)
        slots = UINT32_MAX / 2;
    d->cache_slots = (uint32_t)slots;
    advrec_state_set_slot_hint(state, d->cache_slots);
    log_info("state.memory.limit %llu bytes: users read back on demand, "
             "about %zu bytes each in memory, tables sized for %u, a commit "
             "at the latest every %u rows changed",
             (unsigned long long)limit, slot, d->cache_slots,
             d->commit_max_rows);
}

advrec_err_t advrec_daemon__cache_user(advrec_daemon_t *d, const char *id,
                                       uint32_t *user, char *errstr,
                                       size_t errstr_size)
{
    advrec_state_t *state = advrec_engine_state(d->engine);

    if (advrec_state_user(state, id, 0, user, NULL, NULL, 0) == ADVREC_OK)
        return ADVREC_OK;
    return read_back(d, id, user, errstr, errstr_size);
}

/* Whether user slot u may leave memory: its row equals the committed one
 * (not dirty, not fresh, not in the batch of a commit still being
 * written) and nothing names the slot (stale, a list in flight, a changed
 * detector row). */
static int evictable(advrec_daemon_t *d, advrec_state_t *state, uint32_t u)
{
    const advrec_user_ext_t *ux = advrec_state_user_ext(state);

    return !advrec_state_users(state)->dirty[u] && !ux->fresh[u] &&
           ux->batch[u] <= d->written_epoch && !ux->stale_since[u] &&
           !advrec_outbox_owes(d->outbox, u) &&
           !advrec_detect_user_dirty(d->detect, u);
}

void advrec_daemon__cache_gauges(advrec_daemon_t *d)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint32_t resident = advrec_state_users_resident(state);
    uint32_t items = advrec_state_items(state)->n;
    size_t ub, ib;

    advrec_state_memory(state, &ub, &ib);
    d->c->users_resident = resident;
    d->c->user_bytes = resident ? (double)ub / resident : 0;
    d->c->item_bytes = items ? (double)ib / items : 0;
}

void advrec_daemon__cache_evict(advrec_daemon_t *d)
{
    advrec_state_t *state = advrec_engine_state(d->engine);
    uint64_t limit = (uint64_t)d->conf->state_memory_limit;
    uint32_t resident = advrec_state_users_resident(state), target, u, n = 0;
    size_t ub, ib, slot = advrec_state_user_slot_bytes(state);
    uint64_t rss, other, room, per_user;

    /* The estimate scans the users in memory: at most every 100 ms. */
    if (!d->cache_slots || !d->evict_due || now_ms() - d->evict_ms < 100)
        return;
    d->evict_due = 0;
    d->evict_ms = now_ms();
    advrec_state_memory(state, &ub, &ib);
    rss = rss_bytes();
    /* What is resident besides the user cache (items, libraries, queues,
     * memtables), as measured now. */
    other = rss > ub ? rss - ub : 0;
    room = limit > other + limit / HEADROOM_DIV
               ? limit - other - limit / HEADROOM_DIV
               : 0;
    per_user =
        resident
            ? (ub - slot * advrec_state_users(state)->cap) / resident + slot
            : slot;
    target = (uint32_t)(room / per_user <
                                (uint64_t)d->cache_slots * FILL_NUM / FILL_DEN
                            ? room / per_user
                            : (uint64_t)d->cache_slots * FILL_NUM / FILL_DEN);
    d->c->users_resident = resident;
    d->c->user_bytes = resident ? (double)ub / resident : 0;
    d->c->item_bytes = advrec_state_items(state)->n
                           ? (double)ib / advrec_state_items(state)->n
                           : 0;
    if (resident <= target)
        return;
    /* Least recently active first; a user who may not go yet is passed. */
    for (u = advrec_state_lru_first(state);
         u != UINT32_MAX && resident > target;) {
        uint32_t next = advrec_state_lru_next(state, u);

        if (evictable(d, state, u) && advrec_state_evict_user(state, u) == 0) {
            advrec_detect_forget_user(d->detect, u);
            resident--;
            n++;
        }
        u = next;
    }
    d->c->user_evictions += n;
    d->c->users_resident = resident;
    log_debug("memory: %llu resident (%llu besides the %u users in memory, "
              "~%llu bytes each): %u evicted",
              (unsigned long long)rss, (unsigned long long)other, resident + n,
              (unsigned long long)per_user, n);
}
