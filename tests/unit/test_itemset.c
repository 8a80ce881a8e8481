/*
 * Unit tests for lib/itemset.c: a bounded set that keeps the most recently
 * added items, sorted for exclusion lists.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "itemset.h"

/* Items of set as they are (ascending), into out; returns the count. */
static uint32_t items_of(const advrec_itemset_t *set, uint32_t *out)
{
    uint32_t n = advrec_itemset_count(set);

    if (n)
        memcpy(out, advrec_itemset_items(set), n * sizeof(*out));
    return n;
}

static void test_sorted_and_deduplicated(void)
{
    static const uint32_t adds[] = {9, 3, 7, 3, 1, 9, 12, 0};
    advrec_itemset_t *set = NULL;
    uint32_t got[16], n;

    CHECK_INT(advrec_itemset_count(set), 0);
    CHECK(!advrec_itemset_has(set, 3));
    CHECK(advrec_itemset_items(set) == NULL);
    for (size_t a = 0; a < sizeof(adds) / sizeof(adds[0]); a++)
        CHECK_INT(advrec_itemset_add(&set, adds[a], 100), ADVREC_OK);
    n = items_of(set, got);
    CHECK_INT(n, 6);
    for (uint32_t a = 1; a < n; a++)
        CHECK(got[a - 1] < got[a]);
    CHECK(advrec_itemset_has(set, 0) && advrec_itemset_has(set, 12));
    CHECK(!advrec_itemset_has(set, 2) && !advrec_itemset_has(set, 13));
    advrec_itemset_free(set);
}

/* Full: the least recently added goes; adding again renews an item. */
static void test_bound_evicts_oldest(void)
{
    advrec_itemset_t *set = NULL;

    for (uint32_t i = 10; i < 14; i++) /* 10 11 12 13 */
        CHECK_INT(advrec_itemset_add(&set, i, 4), ADVREC_OK);
    CHECK_INT(advrec_itemset_add(&set, 10, 4), ADVREC_OK); /* renews 10 */
    CHECK_INT(advrec_itemset_add(&set, 5, 4), ADVREC_OK);  /* drops 11 */
    CHECK_INT(advrec_itemset_count(set), 4);
    CHECK(!advrec_itemset_has(set, 11));
    CHECK(advrec_itemset_has(set, 10) && advrec_itemset_has(set, 5));
    CHECK_INT(advrec_itemset_add(&set, 20, 4), ADVREC_OK); /* drops 12 */
    CHECK(!advrec_itemset_has(set, 12));
    CHECK(advrec_itemset_has(set, 13) && advrec_itemset_has(set, 20));
    /* A long stream keeps exactly the last 4 distinct items. */
    for (uint32_t i = 100; i < 1100; i++)
        CHECK_INT(advrec_itemset_add(&set, i * 7 % 1009, 4), ADVREC_OK);
    CHECK_INT(advrec_itemset_count(set), 4);
    for (uint32_t i = 1096; i < 1100; i++)
        CHECK(advrec_itemset_has(set, i * 7 % 1009));
    /* max 0 keeps nothing. */
    advrec_itemset_t *none = NULL;
    CHECK_INT(advrec_itemset_add(&none, 1, 0), ADVREC_OK);
    CHECK(none == NULL);
    advrec_itemset_free(set);
}

/* What a store reads back: the same set, and a lowered bound keeps the
 * most recent. */
static void test_restore(void)
{
    advrec_itemset_t *set = NULL, *back = NULL;
    uint32_t items[8], stamps[8], n;
    static const uint32_t bad[] = {3, 3};

    for (uint32_t i = 0; i < 6; i++)
        CHECK_INT(advrec_itemset_add(&set, 50 - i, 8), ADVREC_OK);
    n = advrec_itemset_count(set);
    memcpy(items, advrec_itemset_items(set), n * sizeof(*items));
    memcpy(stamps, advrec_itemset_stamps(set), n * sizeof(*stamps));
    CHECK_INT(advrec_itemset_restore(&back, items, stamps, n, 8), ADVREC_OK);
    CHECK_INT(advrec_itemset_count(back), 6);
    /* Same recency after the round trip: 45 (newest) survives, 50 goes. */
    CHECK_INT(advrec_itemset_add(&back, 99, 6), ADVREC_OK);
    CHECK(!advrec_itemset_has(back, 50) && advrec_itemset_has(back, 45));
    /* Bound lowered to 2: the two most recent, 46 and 45. */
    CHECK_INT(advrec_itemset_restore(&back, items, stamps, n, 2), ADVREC_OK);
    CHECK_INT(advrec_itemset_count(back), 2);
    CHECK(advrec_itemset_has(back, 45) && advrec_itemset_has(back, 46));
    CHECK_INT(advrec_itemset_restore(&back, bad, stamps, 2, 8),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_itemset_count(back), 2);
    CHECK_INT(advrec_itemset_restore(&back, items, stamps, n, 0), ADVREC_OK);
    CHECK(back == NULL);
    advrec_itemset_free(set);
}

int main(void)
{
    RUN(test_sorted_and_deduplicated);
    RUN(test_bound_evicts_oldest);
    RUN(test_restore);
    return DONE();
}
