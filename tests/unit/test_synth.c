/*
 * Unit tests for synth.c: determinism, time order, purchases after clicks,
 * bot regularity, labels against the events actually produced, shilling
 * accounts on their target, counts, popularity skew, parameter checks.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "synth.h"

#define N_USERS  300
#define N_ITEMS  400
#define N_EVENTS 60000

static advrec_synth_params_t small_world(void)
{
    advrec_synth_params_t p = advrec_synth_params_default();

    p.seed = 42;
    p.n_users = N_USERS;
    p.n_items = N_ITEMS;
    p.max_events = N_EVENTS;
    p.n_bots = 4;
    p.bot_events = 500;
    p.n_shill_groups = 2;
    p.shill_size = 8;
    p.shill_fillers = 5;
    return p;
}

static uint32_t n_accounts(const advrec_synth_params_t *p)
{
    return p->n_users + p->n_bots + p->n_shill_groups * p->shill_size;
}

/* "u123" -> 123; the tests know the id format, not the kinds behind it. */
static uint32_t id_num(const char *id)
{
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

static void format_event(const advrec_event_t *ev, char *buf, size_t size)
{
    snprintf(buf, size, "%s,%s,%s,%lld,%s,%d,%.2f,%s,%s", ev->user_id,
             ev->item_id, advrec_event_type_name(ev->type),
             (long long)ev->ts_ms, ev->session_id, ev->quantity, ev->price,
             ev->currency, ev->order_id);
}

static advrec_synth_t *must_new(const advrec_synth_params_t *p)
{
    char errstr[256] = "";
    advrec_synth_t *synth = advrec_synth_new(p, errstr, sizeof(errstr));

    if (!synth)
        fprintf(stderr, "advrec_synth_new: %s\n", errstr);
    CHECK(synth != NULL);
    return synth;
}

static void test_same_seed_identical(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *a = must_new(&p), *b = must_new(&p);
    advrec_event_t ea, eb;
    char la[2048], lb[2048];
    long n = 0, differ = 0;

    if (!a || !b)
        goto out;
    while (advrec_synth_next(a, &ea) == ADVREC_OK) {
        CHECK_INT(advrec_synth_next(b, &eb), ADVREC_OK);
        format_event(&ea, la, sizeof(la));
        format_event(&eb, lb, sizeof(lb));
        differ += strcmp(la, lb) != 0;
        n++;
    }
    CHECK_INT(n, N_EVENTS);
    CHECK_INT(differ, 0);
    CHECK_INT(advrec_synth_next(b, &eb), ADVREC_ERR_EOF);
out:
    advrec_synth_destroy(a);
    advrec_synth_destroy(b);
}

static void test_different_seed_differs(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *a = must_new(&p), *b;
    advrec_event_t ea, eb;
    char la[2048], lb[2048];
    long same = 0;

    p.seed = 43;
    b = must_new(&p);
    if (!a || !b)
        goto out;
    for (int i = 0; i < 1000; i++) {
        CHECK_INT(advrec_synth_next(a, &ea), ADVREC_OK);
        CHECK_INT(advrec_synth_next(b, &eb), ADVREC_OK);
        format_event(&ea, la, sizeof(la));
        format_event(&eb, lb, sizeof(lb));
        same += strcmp(la, lb) == 0;
    }
    /* Not one line of a thousand should coincide by chance. */
    CHECK_INT(same, 0);
out:
    advrec_synth_destroy(a);
    advrec_synth_destroy(b);
}

static void test_time_ordered_and_valid(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth = must_new(&p);
    advrec_event_t ev;
    int64_t prev = 0;
    long disordered = 0, invalid = 0;
    char errstr[128];

    if (!synth)
        return;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        disordered += ev.ts_ms < prev;
        prev = ev.ts_ms;
        if (advrec_event_validate(&ev, errstr, sizeof(errstr)) != ADVREC_OK) {
            if (invalid++ == 0)
                fprintf(stderr, "invalid event: %s\n", errstr);
        }
        CHECK(ev.ts_ms >= p.start_s * 1000);
    }
    CHECK_INT(disordered, 0);
    CHECK_INT(invalid, 0);
    advrec_synth_destroy(synth);
}

/* A set of 64-bit hashes (open addressing), enough for one test run. */
#define SET_SIZE (1u << 18)

static uint64_t fnv(const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    uint64_t h = 1469598103934665603ULL;

    for (int i = 0; i < 3; i++) {
        for (const char *s = parts[i]; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ '|') * 1099511628211ULL;
    }
    return h | 1; /* 0 marks an empty slot */
}

static void set_add(uint64_t *set, uint64_t h)
{
    uint32_t i = (uint32_t)h & (SET_SIZE - 1);

    while (set[i] && set[i] != h)
        i = (i + 1) & (SET_SIZE - 1);
    set[i] = h;
}

static int set_has(const uint64_t *set, uint64_t h)
{
    uint32_t i = (uint32_t)h & (SET_SIZE - 1);

    while (set[i]) {
        if (set[i] == h)
            return 1;
        i = (i + 1) & (SET_SIZE - 1);
    }
    return 0;
}

static void test_purchases_follow_clicks(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth;
    uint64_t *clicked = calloc(SET_SIZE, sizeof(uint64_t));
    advrec_event_t ev;
    long purchases = 0, orphans = 0;

    p.purchase_prob = 0.2;
    synth = must_new(&p);
    if (!synth || !clicked)
        goto out;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        uint64_t h = fnv(ev.user_id, ev.session_id, ev.item_id);
        if (ev.type == ADVREC_EVENT_CLICK) {
            set_add(clicked, h);
        } else {
            purchases++;
            orphans += !set_has(clicked, h);
            CHECK(ev.quantity >= 1);
            CHECK(ev.price > 0);
            CHECK(ev.order_id[0] != '\0');
        }
    }
    printf("purchases: %ld\n", purchases);
    CHECK(purchases > 1000);
    CHECK_INT(orphans, 0);
out:
    advrec_synth_destroy(synth);
    free(clicked);
}

typedef struct {
    int64_t last_ts;
    long n, purchases, adversarial;
    double gap_sum, gap_sq;
    int kind;
} acct_obs_t;

static double cv(const acct_obs_t *o)
{
    double n = (double)(o->n - 1), mean = o->gap_sum / n;
    double var = o->gap_sq / n - mean * mean;

    return sqrt(var > 0 ? var : 0) / mean;
}

static void test_bots_regular_and_fast(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth = must_new(&p);
    uint32_t n = n_accounts(&p);
    acct_obs_t *obs = calloc(n, sizeof(*obs));
    advrec_event_t ev;
    double bot_cv = 0, user_cv = 0, bot_gap = 0, user_gap = 0;
    int n_bot = 0, n_user = 0;

    if (!synth || !obs)
        goto out;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        acct_obs_t *o = &obs[id_num(ev.user_id)];
        if (o->n > 0) {
            double g = (double)(ev.ts_ms - o->last_ts) / 1000.0;
            o->gap_sum += g;
            o->gap_sq += g * g;
        }
        o->n++;
        o->last_ts = ev.ts_ms;
        o->purchases += ev.type == ADVREC_EVENT_PURCHASE;
        o->kind = advrec_synth_last_kind(synth);
    }
    for (uint32_t u = 0; u < n; u++) {
        if (obs[u].n < 20)
            continue;
        if (obs[u].kind == ADVREC_SYNTH_BOT) {
            bot_cv += cv(&obs[u]);
            bot_gap += obs[u].gap_sum / (double)(obs[u].n - 1);
            n_bot++;
            CHECK_INT(obs[u].purchases, 0);
        } else if (obs[u].kind == ADVREC_SYNTH_NORMAL) {
            user_cv += cv(&obs[u]);
            user_gap += obs[u].gap_sum / (double)(obs[u].n - 1);
            n_user++;
        }
    }
    CHECK_INT(n_bot, (int)p.n_bots);
    CHECK(n_user > 100);
    if (n_bot && n_user) {
        bot_cv /= n_bot;
        user_cv /= n_user;
        bot_gap /= n_bot;
        user_gap /= n_user;
        printf("bots: gap %.3f s, cv %.4f; users: gap %.0f s, cv %.2f\n",
               bot_gap, bot_cv, user_gap, user_cv);
        /* Jitter 2 % uniform gives CV ~ 0.012; humans mix clicks and
           hours-long session gaps, CV well above 1. */
        CHECK(bot_cv < 0.05);
        CHECK(user_cv > 1.0);
        CHECK_NEAR(bot_gap, 1.0 / p.bot_rate, 0.05);
        CHECK(user_gap > 20 * bot_gap);
    }
out:
    advrec_synth_destroy(synth);
    free(obs);
}

static void test_labels_match_events(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth = must_new(&p);
    uint32_t n = n_accounts(&p);
    acct_obs_t *obs = calloc(n, sizeof(*obs));
    char *labelled = calloc(n, 1);
    int *hit_target = calloc(n, sizeof(int));
    advrec_synth_stats_t stats;
    advrec_event_t ev;
    char line[512], errstr[256], target[64];
    FILE *fp = tmpfile();
    long n_labels = 0, n_targets = 0, low_ids = 0;

    if (!synth || !obs || !labelled || !hit_target || !fp)
        goto out;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        uint32_t u = id_num(ev.user_id);
        advrec_synth_kind_t kind;
        obs[u].n++;
        obs[u].adversarial +=
            advrec_synth_last_kind(synth) != ADVREC_SYNTH_NORMAL;
        CHECK_INT(advrec_synth_truth_user(synth, ev.user_id, &kind, target,
                                          sizeof(target)),
                  ADVREC_OK);
        CHECK_INT(kind, advrec_synth_last_kind(synth));
        if (kind == ADVREC_SYNTH_SHILL) {
            advrec_synth_stats(synth, &stats);
            /* Young accounts: nothing before the attack window opens. */
            CHECK(ev.ts_ms >= stats.attack_start_ms);
            if (strcmp(ev.item_id, target) == 0)
                hit_target[u] = 1;
        }
    }

    CHECK_INT(advrec_synth_write_labels(synth, fp, 1, errstr, sizeof(errstr)),
              ADVREC_OK);
    rewind(fp);
    CHECK(fgets(line, sizeof(line), fp) != NULL);
    CHECK_STR(line, "entity_type,entity_id,kind\n");
    while (fgets(line, sizeof(line), fp)) {
        char type[16], id[64], kindname[32];
        advrec_synth_kind_t kind;
        CHECK_INT(sscanf(line, "%15[^,],%63[^,],%31s", type, id, kindname), 3);
        if (strcmp(type, "user") == 0) {
            uint32_t u = id_num(id);
            n_labels++;
            low_ids += u < p.n_users;
            CHECK(u < n);
            if (u >= n)
                continue;
            labelled[u] = 1;
            CHECK_INT(advrec_synth_truth_user(synth, id, &kind, NULL, 0),
                      ADVREC_OK);
            CHECK_STR(kindname, advrec_synth_kind_name(kind));
            CHECK(kind == ADVREC_SYNTH_BOT || kind == ADVREC_SYNTH_SHILL);
            if (kind == ADVREC_SYNTH_SHILL)
                CHECK(hit_target[u]);
        } else {
            CHECK_STR(type, "item");
            n_targets++;
            CHECK_INT(advrec_synth_truth_item(synth, id, &kind), ADVREC_OK);
            CHECK_STR(kindname, advrec_synth_kind_name(kind));
            CHECK(kind == ADVREC_SYNTH_SHILL_TARGET ||
                  kind == ADVREC_SYNTH_BOT_TARGET);
        }
    }
    /* Every account with adversarial events is labelled, and only those. */
    for (uint32_t u = 0; u < n; u++) {
        CHECK_INT(labelled[u], obs[u].adversarial > 0);
        CHECK(obs[u].adversarial == 0 || obs[u].adversarial == obs[u].n);
    }
    printf("labels: %ld users, %ld items\n", n_labels, n_targets);
    CHECK_INT(n_labels, p.n_bots + p.n_shill_groups * p.shill_size);
    CHECK(n_targets >= p.n_shill_groups);
    /* Adversaries are mixed into the user numbering, not appended. */
    CHECK(low_ids > 0);
out:
    if (fp)
        fclose(fp);
    advrec_synth_destroy(synth);
    free(obs);
    free(labelled);
    free(hit_target);
}

static void test_counts_add_up(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth = must_new(&p);
    advrec_synth_stats_t stats;
    advrec_event_t ev;
    uint64_t clicks = 0, purchases = 0, bot = 0, shill = 0, events = 0;

    if (!synth)
        return;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        events++;
        clicks += ev.type == ADVREC_EVENT_CLICK;
        purchases += ev.type == ADVREC_EVENT_PURCHASE;
        bot += advrec_synth_last_kind(synth) == ADVREC_SYNTH_BOT;
        shill += advrec_synth_last_kind(synth) == ADVREC_SYNTH_SHILL;
    }
    advrec_synth_stats(synth, &stats);
    CHECK_INT(events, N_EVENTS);
    CHECK_INT(stats.events, events);
    CHECK_INT(stats.clicks, clicks);
    CHECK_INT(stats.purchases, purchases);
    CHECK_INT(stats.clicks + stats.purchases, stats.events);
    CHECK_INT(stats.bot_events, bot);
    CHECK_INT(stats.shill_events, shill);
    /* Every bot ran to the end inside this stream. */
    CHECK_INT(bot, (uint64_t)p.n_bots * p.bot_events);
    CHECK(shill >=
          (uint64_t)p.n_shill_groups * p.shill_size * (1 + p.shill_fillers));
    CHECK(stats.attack_start_ms > p.start_s * 1000);
    CHECK(stats.attack_end_ms > stats.attack_start_ms);
    /* End of stream is sticky. */
    CHECK_INT(advrec_synth_next(synth, &ev), ADVREC_ERR_EOF);
    CHECK_INT(advrec_synth_next(synth, &ev), ADVREC_ERR_EOF);
    advrec_synth_destroy(synth);
}

static int cmp_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

static void test_popularity_skewed(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth;
    long *clicks = calloc(N_ITEMS, sizeof(long)), total = 0, top = 0;
    advrec_event_t ev;

    p.n_bots = 0;
    p.n_shill_groups = 0;
    synth = must_new(&p);
    if (!synth || !clicks)
        goto out;
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        uint32_t i = id_num(ev.item_id);
        CHECK(i < N_ITEMS);
        if (ev.type == ADVREC_EVENT_CLICK && i < N_ITEMS) {
            clicks[i]++;
            total++;
        }
    }
    qsort(clicks, N_ITEMS, sizeof(long), cmp_desc);
    for (int i = 0; i < N_ITEMS / 10; i++)
        top += clicks[i];
    printf("top 10%% of items: %.1f%% of %ld clicks\n",
           100.0 * (double)top / (double)total, total);
    /* Uniform would give 10 %; Zipf(1) over 400 items about 55 %. */
    CHECK((double)top / (double)total > 0.4);
out:
    advrec_synth_destroy(synth);
    free(clicks);
}

static void test_bad_params_named(void)
{
    advrec_synth_params_t p = small_world();
    char errstr[256];

    p.n_items = 1;
    CHECK(advrec_synth_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "n_items") != NULL);

    p = small_world();
    p.purchase_prob = 1.5;
    CHECK(advrec_synth_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "purchase_prob") != NULL);

    p = small_world();
    p.n_shill_groups = N_ITEMS;
    CHECK(advrec_synth_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "n_shill_groups") != NULL);

    p = small_world();
    p.bot_rate = 0;
    CHECK(advrec_synth_new(&p, errstr, sizeof(errstr)) == NULL);
    CHECK(strstr(errstr, "bot_rate") != NULL);
}

static void test_truth_unknown_ids(void)
{
    advrec_synth_params_t p = small_world();
    advrec_synth_t *synth = must_new(&p);
    advrec_synth_kind_t kind;
    char id[32];

    if (!synth)
        return;
    CHECK_INT(advrec_synth_truth_user(synth, "x1", &kind, NULL, 0),
              ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_synth_truth_user(synth, "u007", &kind, NULL, 0),
              ADVREC_ERR_NOT_FOUND);
    snprintf(id, sizeof(id), "u%u", n_accounts(&p));
    CHECK_INT(advrec_synth_truth_user(synth, id, &kind, NULL, 0),
              ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_synth_truth_user(synth, "u0", &kind, NULL, 0), ADVREC_OK);
    snprintf(id, sizeof(id), "i%u", N_ITEMS);
    CHECK_INT(advrec_synth_truth_item(synth, id, &kind), ADVREC_ERR_NOT_FOUND);
    CHECK_INT(advrec_synth_truth_item(synth, "i0", &kind), ADVREC_OK);
    advrec_synth_destroy(synth);
}

int main(void)
{
    RUN(test_same_seed_identical);
    RUN(test_different_seed_differs);
    RUN(test_time_ordered_and_valid);
    RUN(test_purchases_follow_clicks);
    RUN(test_bots_regular_and_fast);
    RUN(test_labels_match_events);
    RUN(test_counts_add_up);
    RUN(test_popularity_skewed);
    RUN(test_bad_params_named);
    RUN(test_truth_unknown_ids);
    return DONE();
}
