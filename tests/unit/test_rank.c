/*
 * Unit tests for lib/rank.c through the engine (events in with
 * advrec_engine_apply, lists out of advrec_engine_refresh) and directly:
 * exclusions come from the users' purchase and seen sets, which outlive the
 * history ring (recs.history), are bounded, and drop the oldest first.
 *
 * Seven items and lists of ten: every item not excluded is in a list, so a
 * list says exactly what was excluded, whatever the scores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "rank.h"

#define K       4
#define N_ITEMS 7
#define RECS_N  10
#define HISTORY 4

typedef struct sink_s {
    char user_id[64];
    uint32_t items[RECS_N];
    uint32_t n;
    int popular;
    int lists;
} sink_t;

/* Keeps the latest list of sink->user_id. */
static void collect(void *opaque, const advrec_rank_list_t *list)
{
    sink_t *s = opaque;

    if (strcmp(list->user_id, s->user_id) != 0 || list->n > RECS_N)
        return;
    memcpy(s->items, list->items, list->n * sizeof(*list->items));
    s->n = list->n;
    s->popular = list->popular;
    s->lists++;
}

static advrec_engine_t *engine_for(int exclude, uint32_t purchased_max,
                                   uint32_t seen_max, uint32_t cold_events)
{
    advrec_engine_params_t p;
    advrec_engine_t *e;
    char errstr[256];

    memset(&p, 0, sizeof(p));
    advrec_apr_params_default(&p.apr);
    p.apr.k = K;
    p.apr.use_bias = 1;
    p.apr.init_std = 0.1f;
    p.apr.seed = 11;
    p.state.k = K;
    p.state.history = HISTORY;
    p.state.purchased_max = purchased_max;
    p.state.seen_max = seen_max;
    p.state.max_users = 100;
    p.state.max_items = 100;
    p.negatives = 1;
    p.weight_click = 1.0f;
    p.weight_purchase = 3.0f;
    p.recs_n = RECS_N;
    p.debounce_ms = 0;
    p.max_staleness_ms = 0;
    p.exclude = exclude;
    p.cold_events = cold_events;
    p.popularity_halflife_s = 3600;
    e = advrec_engine_new(&p, errstr, sizeof(errstr));
    if (!e)
        fprintf(stderr, "engine_new: %s\n", errstr);
    CHECK(e != NULL);
    return e;
}

static void apply(advrec_engine_t *e, int purchase, const char *user, int item)
{
    static int64_t offset;
    advrec_event_t ev;
    advrec_origin_t origin = {.topic = (uint8_t)purchase, .offset = ++offset};
    char errstr[256];

    advrec_event_clear(&ev);
    ev.type = purchase ? ADVREC_EVENT_PURCHASE : ADVREC_EVENT_CLICK;
    snprintf(ev.user_id, sizeof(ev.user_id), "%s", user);
    snprintf(ev.item_id, sizeof(ev.item_id), "i%d", item);
    ev.ts_ms = 1700000000000 + offset * 1000;
    CHECK_INT(advrec_engine_apply(e, &ev, "t", &origin, 1.0f, offset, errstr,
                                  sizeof(errstr)),
              ADVREC_OK);
}

/* Every item exists, and i0 is everyone's favourite purchase. */
static void warm_up(advrec_engine_t *e)
{
    for (int u = 0; u < 5; u++) {
        char id[16];
        snprintf(id, sizeof(id), "other%d", u);
        for (int i = 0; i < N_ITEMS; i++)
            apply(e, 0, id, i);
        apply(e, 1, id, 0);
    }
}

/* u's list after a forced refresh, into s (s->n = 0 if none came). */
static void list_of(advrec_engine_t *e, const char *u, sink_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->user_id, sizeof(s->user_id), "%s", u);
    (void)advrec_engine_refresh(e, 1 << 30, 1, 0, collect, s);
    CHECK_INT(s->lists, 1);
}

/* Whether item i<item> is in s. */
static int has(advrec_engine_t *e, const sink_t *s, int item)
{
    char id[16];

    snprintf(id, sizeof(id), "i%d", item);
    for (uint32_t r = 0; r < s->n; r++)
        if (strcmp(advrec_state_item_name(advrec_engine_state(e), s->items[r]),
                   id) == 0)
            return 1;
    return 0;
}

static uint32_t item_idx(advrec_engine_t *e, int item)
{
    char id[16];
    uint32_t idx = UINT32_MAX;

    snprintf(id, sizeof(id), "i%d", item);
    CHECK_INT(
        advrec_state_item(advrec_engine_state(e), id, 0, &idx, NULL, NULL, 0),
        ADVREC_OK);
    return idx;
}

/* recs.history 4: a purchase 20 clicks ago left the ring long ago, yet it
 * is never recommended again. With the ring as the exclusion list (the old
 * behaviour) it came back after the fourth click. */
static void test_purchase_older_than_history(void)
{
    advrec_engine_t *e = engine_for(ADVREC_RANK_EXCLUDE_PURCHASED, 256, 0, 0);
    sink_t s;
    uint32_t u;

    if (!e)
        return;
    warm_up(e);
    apply(e, 1, "buyer", 0);
    for (int c = 0; c < 20; c++) {
        apply(e, 0, "buyer", 1 + c % 5);
        list_of(e, "buyer", &s);
        CHECK_INT(s.popular, 0);
        CHECK_INT(s.n, N_ITEMS - 1); /* all but i0 */
        CHECK(!has(e, &s, 0));
    }
    CHECK_INT(advrec_state_user(advrec_engine_state(e), "buyer", 0, &u, NULL,
                                NULL, 0),
              ADVREC_OK);
    /* The ring alone would not exclude it any more. */
    CHECK(
        !advrec_state_in_history(advrec_engine_state(e), u, item_idx(e, 0), 1));
    advrec_engine_destroy(e);

    /* Control: without exclusions the same user gets it. */
    e = engine_for(ADVREC_RANK_EXCLUDE_NONE, 256, 0, 0);
    if (!e)
        return;
    warm_up(e);
    apply(e, 1, "buyer", 0);
    for (int c = 0; c < 20; c++)
        apply(e, 0, "buyer", 1 + c % 5);
    list_of(e, "buyer", &s);
    CHECK_INT(s.n, N_ITEMS);
    CHECK(has(e, &s, 0));
    advrec_engine_destroy(e);
}

/* recs.exclude=seen: every item clicked stays out, not only the last 4. */
static void test_seen_older_than_history(void)
{
    advrec_engine_t *e = engine_for(ADVREC_RANK_EXCLUDE_SEEN, 256, 256, 0);
    sink_t s;

    if (!e)
        return;
    warm_up(e);
    apply(e, 0, "looker", 0);
    for (int c = 0; c < 20; c++) {
        apply(e, 0, "looker", 1 + c % 5);
        list_of(e, "looker", &s);
        CHECK(!has(e, &s, 0));
    }
    /* Seen: i0..i5; left: i6 alone. */
    CHECK_INT(s.n, 1);
    CHECK(has(e, &s, 6));
    /* A purchase that left a small seen set is still excluded. */
    advrec_engine_destroy(e);
    e = engine_for(ADVREC_RANK_EXCLUDE_SEEN, 256, 2, 0);
    if (!e)
        return;
    warm_up(e);
    apply(e, 1, "looker", 0);
    for (int c = 0; c < 6; c++)
        apply(e, 0, "looker", 1 + c % 5);
    list_of(e, "looker", &s);
    CHECK(!has(e, &s, 0));
    CHECK_INT(s.n, N_ITEMS - 3); /* i0 bought; i5, i1 the last two seen */
    CHECK(!has(e, &s, 5) && !has(e, &s, 1));
    CHECK(has(e, &s, 2) && has(e, &s, 3) && has(e, &s, 4));
    advrec_engine_destroy(e);
}

/* recs.exclude.purchased.max 3: the fourth distinct purchase drops the
 * oldest, and buying an item again makes it the most recent. */
static void test_bound_evicts_oldest(void)
{
    advrec_engine_t *e = engine_for(ADVREC_RANK_EXCLUDE_PURCHASED, 3, 0, 0);
    sink_t s;

    if (!e)
        return;
    warm_up(e);
    for (int i = 0; i < 4; i++)
        apply(e, 1, "buyer", i);
    list_of(e, "buyer", &s);
    CHECK(has(e, &s, 0));
    CHECK(!has(e, &s, 1) && !has(e, &s, 2) && !has(e, &s, 3));
    apply(e, 1, "buyer", 1); /* renewed: 2 is now the oldest */
    apply(e, 1, "buyer", 4);
    list_of(e, "buyer", &s);
    CHECK(has(e, &s, 0) && has(e, &s, 2));
    CHECK(!has(e, &s, 1) && !has(e, &s, 3) && !has(e, &s, 4));
    CHECK_INT(s.n, N_ITEMS - 3);
    advrec_engine_destroy(e);
}

/* A cold user's popularity list leaves out their purchases too, even
 * those older than the ring. */
static void test_cold_user_popularity_excludes_purchases(void)
{
    advrec_engine_t *e = engine_for(ADVREC_RANK_EXCLUDE_PURCHASED, 256, 0, 100);
    sink_t s;

    if (!e)
        return;
    warm_up(e);
    apply(e, 1, "newbie", 0);
    for (int c = 0; c < 8; c++)
        apply(e, 0, "newbie", 1 + c % 5);
    list_of(e, "newbie", &s);
    CHECK_INT(s.popular, 1);
    CHECK_INT(s.n, N_ITEMS - 1);
    CHECK(!has(e, &s, 0));
    advrec_engine_destroy(e);
}

static void test_params_checked(void)
{
    advrec_rank_params_t p = {.recs_n = 0, .exclude = 0};
    char errstr[256];

    CHECK(advrec_rank_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "recs.n") != NULL);
    p.recs_n = 5;
    p.exclude = 7;
    CHECK(advrec_rank_new(&p, errstr, sizeof(errstr)) == NULL);
    p.exclude = ADVREC_RANK_EXCLUDE_SEEN;
    advrec_rank_t *r = advrec_rank_new(&p, errstr, sizeof(errstr));
    CHECK(r != NULL);
    CHECK_INT(advrec_rank_params(r)->recs_n, 5);
    advrec_rank_destroy(r);
}

int main(void)
{
    RUN(test_purchase_older_than_history);
    RUN(test_seen_older_than_history);
    RUN(test_bound_evicts_oldest);
    RUN(test_cold_user_popularity_excludes_purchases);
    RUN(test_params_checked);
    return DONE();
}
