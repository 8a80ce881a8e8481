/* Unit tests for idmap.c: interning, reverse lookup, growth, limits. */
#include <stdio.h>

#include "check.h"
#include "idmap.h"

static void test_dense_indices_in_first_seen_order(void)
{
    advrec_idmap_t *m = advrec_idmap_new(100);
    uint32_t idx = 99;
    int created = 0;

    CHECK_INT(advrec_idmap_get(m, "b", 1, 1, &idx, &created), ADVREC_OK);
    CHECK_INT(idx, 0);
    CHECK_INT(created, 1);
    CHECK_INT(advrec_idmap_get(m, "a", 1, 1, &idx, &created), ADVREC_OK);
    CHECK_INT(idx, 1);
    CHECK_INT(advrec_idmap_get(m, "b", 1, 1, &idx, &created), ADVREC_OK);
    CHECK_INT(idx, 0);
    CHECK_INT(created, 0);
    /* Lengths matter, not NUL terminators: "ab" is not "a". */
    CHECK_INT(advrec_idmap_get(m, "ab", 1, 0, &idx, NULL), ADVREC_OK);
    CHECK_INT(idx, 1);
    CHECK_INT(advrec_idmap_get(m, "ab", 2, 0, &idx, NULL),
              ADVREC_ERR_NOT_FOUND);
    CHECK_STR(advrec_idmap_name(m, 0), "b");
    CHECK_STR(advrec_idmap_name(m, 1), "a");
    CHECK(advrec_idmap_name(m, 2) == NULL);
    advrec_idmap_destroy(m);
}

static void test_many_ids_survive_growth(void)
{
    advrec_idmap_t *m = advrec_idmap_new(1u << 20);
    char id[32];
    uint32_t idx;
    int n;

    for (int i = 0; i < 100000; i++) {
        n = snprintf(id, sizeof(id), "user-%d", i);
        CHECK_INT(advrec_idmap_get(m, id, (size_t)n, 1, &idx, NULL), ADVREC_OK);
        if (idx != (uint32_t)i) {
            CHECK_INT(idx, i);
            break;
        }
    }
    CHECK_INT(advrec_idmap_count(m), 100000);
    for (int i = 0; i < 100000; i += 997) {
        n = snprintf(id, sizeof(id), "user-%d", i);
        CHECK_INT(advrec_idmap_get(m, id, (size_t)n, 0, &idx, NULL), ADVREC_OK);
        CHECK_INT(idx, i);
        CHECK_STR(advrec_idmap_name(m, idx), id);
    }
    advrec_idmap_destroy(m);
}

static void test_limit_is_enforced_and_leaves_map_unchanged(void)
{
    advrec_idmap_t *m = advrec_idmap_new(2);
    uint32_t idx;

    CHECK_INT(advrec_idmap_get(m, "x", 1, 1, &idx, NULL), ADVREC_OK);
    CHECK_INT(advrec_idmap_get(m, "y", 1, 1, &idx, NULL), ADVREC_OK);
    CHECK_INT(advrec_idmap_get(m, "z", 1, 1, &idx, NULL), ADVREC_ERR_FULL);
    CHECK_INT(advrec_idmap_count(m), 2);
    CHECK_INT(advrec_idmap_get(m, "x", 1, 1, &idx, NULL), ADVREC_OK);
    CHECK_INT(idx, 0);
    advrec_idmap_destroy(m);
}

int main(void)
{
    RUN(test_dense_indices_in_first_seen_order);
    RUN(test_many_ids_survive_growth);
    RUN(test_limit_is_enforced_and_leaves_map_unchanged);
    return DONE();
}
