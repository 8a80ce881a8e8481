/* Unit tests for idmap.c: interning, reverse lookup, growth, limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A removable map under random removals and re-insertions into chosen
 * indices agrees with a plain array at every step (backward-shift deletion
 * must keep every remaining id reachable, across table growth too). */
static void test_remove_and_insert_agree_with_reference(void)
{
    enum { N = 20000, OPS = 200000 };
    advrec_idmap_t *m = advrec_idmap_new_removable(N, 1);
    static char names[N][16];
    static int live[N];
    uint32_t free_idx[N], n_free = 0, next = 0, idx, bad = 0;
    unsigned rnd = 12345;
    char id[32];

    CHECK(m != NULL);
    CHECK_INT(advrec_idmap_remove(m, 3), ADVREC_ERR_INVALID_ARG);
    for (int op = 0; op < OPS; op++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t r = (rnd >> 8) % N;
        if (live[r] && (rnd & 1)) {
            CHECK_INT(advrec_idmap_remove(m, r), ADVREC_OK);
            live[r] = 0;
            free_idx[n_free++] = r;
        } else if (!live[r]) {
            uint32_t at = n_free ? free_idx[--n_free] : next++;
            if (at >= N) {
                next = N;
                continue;
            }
            snprintf(names[at], sizeof(names[at]), "u%u.%d", r, op);
            CHECK_INT(advrec_idmap_insert(m, names[at], strlen(names[at]), at),
                      ADVREC_OK);
            live[at] = 1;
        }
    }
    for (uint32_t i = 0; i < N; i++) {
        if (!live[i]) {
            bad += advrec_idmap_name(m, i) != NULL;
            continue;
        }
        bad += advrec_idmap_get(m, names[i], strlen(names[i]), 0, &idx, NULL) !=
                   ADVREC_OK ||
               idx != i || strcmp(advrec_idmap_name(m, i), names[i]) != 0;
    }
    CHECK_INT(bad, 0);
    /* Taken index, present id: refused, map unchanged. */
    for (idx = 0; idx < N && !live[idx]; idx++)
        ;
    snprintf(id, sizeof(id), "fresh");
    CHECK_INT(advrec_idmap_insert(m, id, strlen(id), idx),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_idmap_insert(m, names[idx], strlen(names[idx]), N - 1),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_idmap_insert(m, id, strlen(id), N), ADVREC_ERR_FULL);
    advrec_idmap_destroy(m);
    m = advrec_idmap_new(4); /* not removable */
    CHECK_INT(advrec_idmap_get(m, "a", 1, 1, &idx, NULL), ADVREC_OK);
    CHECK_INT(advrec_idmap_remove(m, idx), ADVREC_ERR_INVALID_ARG);
    advrec_idmap_destroy(m);
}

int main(void)
{
    RUN(test_dense_indices_in_first_seen_order);
    RUN(test_many_ids_survive_growth);
    RUN(test_limit_is_enforced_and_leaves_map_unchanged);
    RUN(test_remove_and_insert_agree_with_reference);
    return DONE();
}
