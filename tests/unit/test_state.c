/* Unit tests for state.c: rows, growth, dirty lists, history ring. */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "state.h"

static advrec_state_t *new_state(uint32_t k, uint32_t history,
                                 uint32_t max_users)
{
    advrec_state_params_t p = {.k = k,
                               .history = history,
                               .max_users = max_users,
                               .max_items = 1u << 20};
    char errstr[128];

    return advrec_state_new(&p, errstr, sizeof(errstr));
}

static void test_rows_grow_and_keep_contents(void)
{
    advrec_state_t *s = new_state(8, 4, 1u << 20);
    char id[32];
    uint32_t idx;
    int created;
    advrec_rows_t *items;

    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "i%u", i);
        CHECK_INT(advrec_state_item(s, id, 1, &idx, &created, NULL, 0),
                  ADVREC_OK);
        CHECK_INT(created, 1);
        items = advrec_state_items(s);
        /* New rows are zeroed; write a recognisable value. */
        CHECK(items->w[(size_t)idx * 8 + 7] == 0.0f);
        items->w[(size_t)idx * 8 + 7] = (float)i;
        items->clicks[idx] = i;
    }
    items = advrec_state_items(s);
    CHECK_INT(items->n, 5000);
    CHECK(((uintptr_t)items->w & 63) == 0);
    for (uint32_t i = 0; i < 5000; i += 123) {
        CHECK(items->w[(size_t)i * 8 + 7] == (float)i);
        CHECK_INT(items->clicks[i], i);
    }
    CHECK_STR(advrec_state_item_name(s, 42), "i42");
    CHECK_INT(advrec_state_item(s, "i42", 0, &idx, &created, NULL, 0),
              ADVREC_OK);
    CHECK_INT(idx, 42);
    CHECK_INT(created, 0);
    advrec_state_destroy(s);
}

static void test_full_table_names_the_id(void)
{
    advrec_state_t *s = new_state(4, 4, 1);
    char errstr[256];
    uint32_t idx;

    CHECK_INT(advrec_state_user(s, "a", 1, &idx, NULL, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_state_user(s, "b", 1, &idx, NULL, errstr, sizeof(errstr)),
              ADVREC_ERR_FULL);
    CHECK(strstr(errstr, "\"b\"") != NULL);
    CHECK(strstr(errstr, "model.max.users") != NULL);
    CHECK_INT(advrec_state_users(s)->n, 1);
    advrec_state_destroy(s);
}

static void test_dirty_list_is_a_set(void)
{
    advrec_state_t *s = new_state(4, 4, 100);
    uint32_t a, b;

    advrec_state_user(s, "a", 1, &a, NULL, NULL, 0);
    advrec_state_user(s, "b", 1, &b, NULL, NULL, 0);
    advrec_rows_touch(advrec_state_users(s), a);
    advrec_rows_touch(advrec_state_users(s), b);
    advrec_rows_touch(advrec_state_users(s), a);
    CHECK_INT(advrec_state_users(s)->n_dirty, 2);
    advrec_state_clear_dirty(s);
    CHECK_INT(advrec_state_users(s)->n_dirty, 0);
    advrec_rows_touch(advrec_state_users(s), b);
    CHECK_INT(advrec_state_users(s)->n_dirty, 1);
    CHECK_INT(advrec_state_users(s)->dirty_list[0], b);
    advrec_state_destroy(s);
}

static void test_history_ring_keeps_latest(void)
{
    advrec_state_t *s = new_state(4, 3, 100);
    uint32_t u;

    advrec_state_user(s, "u", 1, &u, NULL, NULL, 0);
    advrec_state_push_history(s, u, 1);
    advrec_state_push_history(s, u, 2 | ADVREC_HIST_PURCHASE);
    CHECK(advrec_state_in_history(s, u, 1, 0));
    CHECK(!advrec_state_in_history(s, u, 1, 1));
    CHECK(advrec_state_in_history(s, u, 2, 1));
    advrec_state_push_history(s, u, 3);
    advrec_state_push_history(s, u, 4); /* evicts 1 */
    CHECK(!advrec_state_in_history(s, u, 1, 0));
    CHECK(advrec_state_in_history(s, u, 4, 0));
    CHECK_INT(advrec_state_user_ext(s)->hist_len[u], 3);
    advrec_state_destroy(s);
}

static void test_bad_params_are_refused(void)
{
    advrec_state_params_t p = {
        .k = 0, .history = 4, .max_users = 1, .max_items = 1};
    char errstr[128];

    CHECK(advrec_state_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "k=0") != NULL);
}

/* An evictable state: users keep their number across eviction and
 * re-insertion into another slot, a freed slot goes to the next user, only
 * clean rows leave, and the activity order is least recent first. */
static void test_slots_numbers_and_eviction(void)
{
    advrec_state_params_t p = {.k = 4,
                               .history = 4,
                               .max_users = 100,
                               .max_items = 100,
                               .evictable = 1};
    advrec_state_t *s = advrec_state_new(&p, NULL, 0);
    advrec_user_ext_t *ux;
    uint32_t a, b, c, d, b2, x;
    int created;

    CHECK(s != NULL);
    CHECK_INT(advrec_state_user(s, "a", 1, &a, &created, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_user(s, "b", 1, &b, &created, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_user(s, "c", 1, &c, &created, NULL, 0), ADVREC_OK);
    ux = advrec_state_user_ext(s);
    CHECK_INT(ux->uid[a], 0);
    CHECK_INT(ux->uid[b], 1);
    CHECK_INT(ux->uid[c], 2);
    /* New users are dirty and fresh until their commit. */
    CHECK_INT(advrec_state_evict_user(s, b), ADVREC_ERR_INVALID_ARG);
    advrec_state_clear_dirty(s);
    CHECK_INT(ux->batch[b], advrec_state_epoch(s));
    advrec_state_user_active(s, a); /* order now b, c, a */
    CHECK_INT(advrec_state_lru_first(s), b);
    CHECK_INT(advrec_state_lru_next(s, b), c);
    CHECK_INT(advrec_state_lru_next(s, c), a);
    advrec_state_users(s)->w[(size_t)b * 4] = 1.5f;
    CHECK_INT(advrec_state_evict_user(s, b), ADVREC_OK);
    CHECK_INT(advrec_state_users_resident(s), 2);
    CHECK(advrec_state_user_name(s, b) == NULL);
    CHECK_INT(advrec_state_user(s, "b", 0, &x, NULL, NULL, 0),
              ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_state_lru_first(s), c);
    /* The next user takes the freed slot, zeroed, with a new number. */
    CHECK_INT(advrec_state_user(s, "d", 1, &d, &created, NULL, 0), ADVREC_OK);
    CHECK_INT(d, b);
    CHECK_INT(ux->uid[d], 3);
    CHECK(advrec_state_users(s)->w[(size_t)d * 4] == 0.0f);
    /* b comes back under its own number, in a new slot, clean. */
    CHECK_INT(advrec_state_user_insert(s, "b", 1, &b2, NULL, 0), ADVREC_OK);
    CHECK_INT(ux->uid[b2], 1);
    CHECK(b2 != d);
    CHECK_INT(advrec_state_users(s)->dirty[b2], 0);
    CHECK_INT(advrec_state_user_insert(s, "b", 1, &x, NULL, 0),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_state_user_count(s), 4);
    CHECK_INT(advrec_state_users_resident(s), 4);
    advrec_state_destroy(s);

    /* Not evictable: eviction is refused. */
    s = new_state(4, 4, 10);
    CHECK_INT(advrec_state_user(s, "a", 1, &a, &created, NULL, 0), ADVREC_OK);
    advrec_state_clear_dirty(s);
    CHECK_INT(advrec_state_evict_user(s, a), ADVREC_ERR_INVALID_ARG);
    advrec_state_destroy(s);
}

/* Deleting: a dirty, never-committed user may go; the live count (what
 * max_users bounds) drops while numbers are never reused; a user deleted
 * while not in memory only leaves the count; the activity order of a load
 * follows last event times. */
static void test_delete_and_live_count(void)
{
    advrec_state_params_t p = {
        .k = 4, .history = 4, .max_users = 2, .max_items = 100, .evictable = 1};
    advrec_state_t *s = advrec_state_new(&p, NULL, 0);
    advrec_user_ext_t *ux;
    uint32_t a, b, c, x;
    int created;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(advrec_state_user(s, "a", 1, &a, &created, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_user(s, "b", 1, &b, &created, NULL, 0), ADVREC_OK);
    CHECK_INT(advrec_state_users_live(s), 2);
    CHECK_INT(advrec_state_user(s, "c", 1, &c, &created, NULL, 0),
              ADVREC_ERR_FULL);
    /* "a" is new and dirty: deleting it is allowed (evicting is not). */
    CHECK_INT(advrec_state_evict_user(s, a), ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_state_delete_user(s, a), ADVREC_OK);
    CHECK_INT(advrec_state_delete_user(s, a), ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_state_users_live(s), 1);
    CHECK_INT(advrec_state_user(s, "a", 0, &x, NULL, NULL, 0),
              ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_state_user(s, "c", 1, &c, &created, NULL, 0), ADVREC_OK);
    ux = advrec_state_user_ext(s);
    CHECK_INT(c, a);          /* the freed slot */
    CHECK_INT(ux->uid[c], 2); /* a new number */
    CHECK_INT(ux->fresh[c], 1);
    CHECK_INT(advrec_state_user_count(s), 3);
    CHECK_INT(advrec_state_users_live(s), 2);
    /* One deleted while not in memory: only the count. */
    advrec_state_user_gone(s);
    CHECK_INT(advrec_state_users_live(s), 1);
    /* The activity order by event time: c (ts 5) before b (ts 9). */
    ux->last_ts_ms[b] = 9;
    ux->last_ts_ms[c] = 5;
    CHECK_INT(advrec_state_lru_first(s), b);
    CHECK_INT(advrec_state_lru_by_time(s), ADVREC_OK);
    CHECK_INT(advrec_state_lru_first(s), c);
    CHECK_INT(advrec_state_lru_next(s, c), b);
    advrec_state_destroy(s);
}

int main(void)
{
    RUN(test_rows_grow_and_keep_contents);
    RUN(test_full_table_names_the_id);
    RUN(test_dirty_list_is_a_set);
    RUN(test_history_ring_keeps_latest);
    RUN(test_bad_params_are_refused);
    RUN(test_slots_numbers_and_eviction);
    RUN(test_delete_and_live_count);
    return DONE();
}
