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

int main(void)
{
    RUN(test_rows_grow_and_keep_contents);
    RUN(test_full_table_names_the_id);
    RUN(test_dirty_list_is_a_set);
    RUN(test_history_ring_keeps_latest);
    RUN(test_bad_params_are_refused);
    return DONE();
}
