/*
 * detect_eval.c - owns the labelled event sets of `advrec-eval --detect`
 * (ids interned here, events with their labels), their replays through an
 * engine with and without the detector, and the figures printed.
 */
#include "detect_eval.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "engine.h"
#include "eval.h"
#include "params.h"
#include "reader.h"
#include "rng.h"
#include "synth.h"

#define NONE        UINT32_MAX
#define DAY_MS      (86400LL * 1000)
#define T0_MS       1700000000000LL /* profiles' stream start */
#define GAP_MEAN_S  20.0            /* mean gap inside a session */
#define SHIFT_USERS 500             /* genuine users the shift is measured on */
#define TOP_K       10

typedef struct ev_s {
    uint32_t u, i;
    int64_t ts;
    uint32_t purchase;
} ev_t;

/* Strings interned to dense indices (open addressing, power-of-two). */
typedef struct names_s {
    char **name;
    uint32_t n, cap;
    uint32_t *slot; /* index + 1, 0 empty */
    uint32_t n_slots;
} names_t;

typedef struct set_s {
    names_t users, items;
    uint8_t *attacker; /* users.cap: label 1 (generator: 2 bot, 3 shill) */
    ev_t *ev;
    size_t n_ev, ev_cap;
    uint32_t target;   /* injected: the pushed item; else NONE */
    int64_t attack_ms; /* first attacker event, INT64_MAX if none */
} set_t;

typedef struct opts_s {
    const char *labels, *name, *features;
    double attack_pct, filler_pct;
    double attack_at;       /* profiles: attackers' window start, share */
    double attack_window_s; /* ... its length; 0: spread like genuine */
    uint64_t seed;
    int shift;          /* measure the prediction shift (injected) */
    int group_min;      /* -1: the shipped default */
    int profile_min;    /* -1: the shipped default */
    double profile_fit; /* < 0: the shipped default */
    int synth;          /* the generator's stream instead of a file */
    uint32_t synth_users, synth_items, bots, groups;
    uint64_t synth_events;
    double young_s, item_window_s; /* 0: the shipped defaults */
    double inject_len_s;           /* injected sessions start within */
    unsigned cost_runs;            /* rounds of the cost's replays (1) */
    advrec_reader_conf_t rconf;
} opts_t;

static uint32_t names_get(names_t *m, const char *s, int add)
{
    uint64_t h = advrec_hash64(s);
    uint32_t mask, k;

    if (m->n * 2 >= m->n_slots) {
        uint32_t ns = m->n_slots ? m->n_slots * 2 : 1024;
        uint32_t *slot = calloc(ns, sizeof(*slot));
        if (!slot)
            return NONE;
        for (uint32_t x = 0; x < m->n; x++) {
            uint32_t j = (uint32_t)(advrec_hash64(m->name[x]) & (ns - 1));
            while (slot[j])
                j = (j + 1) & (ns - 1);
            slot[j] = x + 1;
        }
        free(m->slot);
        m->slot = slot;
        m->n_slots = ns;
    }
    mask = m->n_slots - 1;
    for (k = (uint32_t)(h & mask); m->slot[k]; k = (k + 1) & mask)
        if (strcmp(m->name[m->slot[k] - 1], s) == 0)
            return m->slot[k] - 1;
    if (!add)
        return NONE;
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 1024;
        char **nm = realloc(m->name, cap * sizeof(*nm));
        if (!nm)
            return NONE;
        m->name = nm;
        m->cap = cap;
    }
    if (!(m->name[m->n] = strdup(s)))
        return NONE;
    m->slot[k] = m->n + 1;
    return m->n++;
}

static void names_free(names_t *m)
{
    for (uint32_t x = 0; x < m->n; x++)
        free(m->name[x]);
    free(m->name);
    free(m->slot);
}

static void set_free(set_t *s)
{
    names_free(&s->users);
    names_free(&s->items);
    free(s->attacker);
    free(s->ev);
}

/* Interns a user (label 0 for a new one); NONE on no memory. */
static uint32_t set_user(set_t *s, const char *id)
{
    uint32_t cap = s->users.cap, u = names_get(&s->users, id, 1);

    if (u == NONE)
        return NONE;
    if (s->users.cap != cap || !s->attacker) {
        uint8_t *a = realloc(s->attacker, s->users.cap);
        if (!a)
            return NONE;
        memset(a + cap, 0, s->users.cap - cap);
        s->attacker = a;
    }
    return u;
}

static int set_add(set_t *s, uint32_t u, uint32_t i, int64_t ts, int purchase)
{
    if (s->n_ev == s->ev_cap) {
        size_t cap = s->ev_cap ? s->ev_cap * 2 : 65536;
        ev_t *e = realloc(s->ev, cap * sizeof(*e));
        if (!e)
            return -1;
        s->ev = e;
        s->ev_cap = cap;
    }
    s->ev[s->n_ev].u = u;
    s->ev[s->n_ev].i = i;
    s->ev[s->n_ev].ts = ts;
    s->ev[s->n_ev++].purchase = (uint32_t)purchase;
    return 0;
}

static int by_ts(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static double exp_gap_ms(advrec_rng_t *rng, double mean_s)
{
    double x = advrec_rng_double(rng);
    return -log(1.0 - x) * mean_s * 1000.0 + 1000.0;
}

/* Gives every user's events (in s->ev, grouped by user in any order) one
 * session: a start drawn per user, items shuffled, exponential gaps. */
static void sessions(set_t *s, const opts_t *o, int64_t span_ms)
{
    advrec_rng_t rng = advrec_rng_for_id(o->seed, "sessions");
    int64_t *start = calloc(s->users.n, sizeof(*start));
    uint32_t *cnt = calloc(s->users.n + 1, sizeof(*cnt));
    ev_t *sorted = malloc(s->n_ev * sizeof(*sorted));
    int64_t win = (int64_t)(o->attack_window_s * 1000.0);

    if (!start || !cnt || !sorted)
        goto out;
    for (uint32_t u = 0; u < s->users.n; u++) {
        if (s->attacker[u] && win > 0)
            start[u] = T0_MS + (int64_t)(o->attack_at * (double)span_ms) +
                       (int64_t)(advrec_rng_double(&rng) * (double)win);
        else
            start[u] =
                T0_MS + (int64_t)(advrec_rng_double(&rng) * (double)span_ms);
    }
    /* Counting sort by user, then shuffle each user's items. */
    for (size_t e = 0; e < s->n_ev; e++)
        cnt[s->ev[e].u + 1]++;
    for (uint32_t u = 0; u < s->users.n; u++)
        cnt[u + 1] += cnt[u];
    for (size_t e = 0; e < s->n_ev; e++)
        sorted[cnt[s->ev[e].u]++] = s->ev[e];
    memcpy(s->ev, sorted, s->n_ev * sizeof(*sorted));
    for (size_t e = 0; e < s->n_ev;) {
        size_t f = e;
        uint32_t u = s->ev[e].u;
        int64_t t = start[u];
        while (f < s->n_ev && s->ev[f].u == u)
            f++;
        for (size_t k = f - 1; k > e; k--) {
            size_t j = e + advrec_rng_below(&rng, (uint32_t)(k - e + 1));
            ev_t x = s->ev[k];
            s->ev[k] = s->ev[j];
            s->ev[j] = x;
        }
        for (size_t k = e; k < f; k++) {
            s->ev[k].ts = t;
            t += (int64_t)exp_gap_ms(&rng, GAP_MEAN_S);
        }
        e = f;
    }
out:
    free(start);
    free(cnt);
    free(sorted);
}

/* Reads the profiles layout into s; 0 or -1 with a message on stderr. */
static int load_profiles(set_t *s, const char *ratings, const opts_t *o)
{
    char line[1024], a[512], b[512];
    FILE *fp = fopen(ratings, "r");
    uint64_t ln = 0, bad = 0, att = 0;

    if (!fp) {
        perror(ratings);
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        uint32_t u, i;
        ln++;
        if (sscanf(line, "%511s %511s", a, b) != 2) {
            bad += line[strspn(line, " \t\r\n")] != '\0';
            continue;
        }
        if ((u = set_user(s, a)) == NONE ||
            (i = names_get(&s->items, b, 1)) == NONE || set_add(s, u, i, 0, 0))
            goto nomem;
    }
    fclose(fp);
    if (!(fp = fopen(o->labels, "r"))) {
        perror(o->labels);
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        uint32_t u;
        if (sscanf(line, "%511s %511s", a, b) != 2)
            continue;
        u = names_get(&s->users, a, 0);
        if (u != NONE && strcmp(b, "1") == 0) {
            s->attacker[u] = 1;
            att++;
        }
    }
    fclose(fp);
    fprintf(stderr,
            "%s: %zu ratings, %u users (%" PRIu64 " attackers), %u items, "
            "%" PRIu64 " malformed lines skipped\n",
            ratings, s->n_ev, s->users.n, att, s->items.n, bad);
    if (s->n_ev == 0) {
        fprintf(stderr, "advrec-eval: %s: no ratings\n", ratings);
        return -1;
    }
    sessions(s, o, 30 * DAY_MS);
    return 0;
nomem:
    fclose(fp);
    fprintf(stderr, "advrec-eval: out of memory\n");
    return -1;
}

/* Reads an event file and injects one attack; 0 or -1. */
static int load_injected(set_t *s, const char *path, const opts_t *o)
{
    advrec_eval_data_t *d = advrec_eval_data_new();
    const advrec_eval_inter_t *v;
    advrec_rng_t rng = advrec_rng_for_id(o->seed, "inject");
    uint32_t n_users, n_items, n_fake, n_fill, *pop = NULL, *cand = NULL;
    uint32_t n_cand = 0;
    int64_t lo, hi, at;
    char errstr[512], id[64];
    uint8_t *used = NULL;
    int rc = -1;

    if (!d || advrec_eval_data_load(d, path, &o->rconf, NULL, NULL, NULL,
                                    errstr, sizeof(errstr))) {
        fprintf(stderr, "advrec-eval: %s\n", d ? errstr : "out of memory");
        goto out;
    }
    v = advrec_eval_data_inters(d);
    n_users = advrec_eval_data_users(d);
    n_items = advrec_eval_data_items(d);
    if (advrec_eval_data_count(d) < 2 || n_items < 4) {
        fprintf(stderr, "advrec-eval: %s: too few events\n", path);
        goto out;
    }
    for (uint32_t u = 0; u < n_users; u++)
        if (set_user(s, advrec_eval_data_user_name(d, u)) != u)
            goto nomem;
    for (uint32_t i = 0; i < n_items; i++)
        if (names_get(&s->items, advrec_eval_data_item_name(d, i), 1) != i)
            goto nomem;
    pop = calloc(n_items, sizeof(*pop));
    cand = malloc(n_items * sizeof(*cand));
    used = calloc(n_items, 1);
    if (!pop || !cand || !used)
        goto nomem;
    for (size_t e = 0; e < advrec_eval_data_count(d); e++) {
        pop[v[e].item]++;
        if (set_add(s, v[e].user, v[e].item, v[e].ts_ms, (int)v[e].purchase))
            goto nomem;
    }
    /* The target: among items below the median popularity (items with
     * an event), as push attacks choose. */
    {
        uint32_t *sorted = malloc(n_items * sizeof(*sorted)), med;
        if (!sorted)
            goto nomem;
        memcpy(sorted, pop, n_items * sizeof(*sorted));
        for (uint32_t x = 1; x < n_items; x++) { /* insertion: fine here */
            uint32_t y = sorted[x], z = x;
            if (n_items > 20000)
                break;
            while (z > 0 && sorted[z - 1] > y) {
                sorted[z] = sorted[z - 1];
                z--;
            }
            sorted[z] = y;
        }
        med = n_items > 20000 ? 1 : sorted[n_items / 2];
        free(sorted);
        for (uint32_t i = 0; i < n_items; i++)
            if (pop[i] >= 1 && pop[i] <= (med > 1 ? med : 1))
                cand[n_cand++] = i;
    }
    if (n_cand == 0)
        cand[n_cand++] = 0;
    s->target = cand[advrec_rng_below(&rng, n_cand)];
    n_fake = (uint32_t)llround(o->attack_pct / 100.0 * n_users);
    n_fill = (uint32_t)llround(o->filler_pct / 100.0 * n_items);
    if (n_fake < 1)
        n_fake = 1;
    if (n_fill < 1)
        n_fill = 1;
    if (n_fill > n_items - 2)
        n_fill = n_items - 2;
    lo = v[0].ts_ms;
    hi = v[advrec_eval_data_count(d) - 1].ts_ms;
    at = lo + (int64_t)(0.8 * (double)(hi - lo));
    for (uint32_t f = 0; f < n_fake; f++) {
        uint32_t u, picked = 0, target_pos = advrec_rng_below(&rng, n_fill + 1);
        int64_t t =
            at + (int64_t)(advrec_rng_double(&rng) * o->inject_len_s * 1000.0);
        snprintf(id, sizeof(id), "x%u-%" PRIu64, f, o->seed);
        if ((u = set_user(s, id)) == NONE)
            goto nomem;
        s->attacker[u] = 1;
        memset(used, 0, n_items);
        used[s->target] = 1;
        for (uint32_t k = 0; k <= n_fill; k++) {
            uint32_t i = s->target;
            if (k != target_pos) {
                do
                    i = advrec_rng_below(&rng, n_items);
                while (used[i]);
                used[i] = 1;
                picked++;
            }
            if (set_add(s, u, i, t, 0))
                goto nomem;
            t += (int64_t)exp_gap_ms(&rng, GAP_MEAN_S);
        }
    }
    fprintf(stderr,
            "%s: %zu events, %u users, %u items; injected %u accounts x "
            "(target %s + %u fillers) at %" PRId64 "\n",
            path, advrec_eval_data_count(d), n_users, n_items, n_fake,
            s->items.name[s->target], n_fill, at);
    rc = 0;
    goto out;
nomem:
    fprintf(stderr, "advrec-eval: out of memory\n");
out:
    free(pop);
    free(cand);
    free(used);
    advrec_eval_data_destroy(d);
    return rc;
}

/* The generator's stream with bots and shilling groups, its truth as the
 * labels; 0 or -1. */
static int load_synth(set_t *s, const opts_t *o)
{
    advrec_synth_params_t sp = advrec_synth_params_default();
    advrec_synth_t *synth;
    advrec_event_t ev;
    char errstr[512];
    int rc = 0;

    sp.seed = o->seed;
    sp.n_users = o->synth_users;
    sp.n_items = o->synth_items;
    sp.max_events = o->synth_events;
    sp.n_bots = o->bots;
    sp.n_shill_groups = o->groups;
    if (!(synth = advrec_synth_new(&sp, errstr, sizeof(errstr)))) {
        fprintf(stderr, "advrec-eval: %s\n", errstr);
        return -1;
    }
    while (rc == 0 && advrec_synth_next(synth, &ev) == ADVREC_OK) {
        advrec_synth_kind_t kind = advrec_synth_last_kind(synth);
        uint32_t u = set_user(s, ev.user_id);
        uint32_t i = u == NONE ? NONE : names_get(&s->items, ev.item_id, 1);
        if (i == NONE ||
            set_add(s, u, i, ev.ts_ms, ev.type == ADVREC_EVENT_PURCHASE)) {
            fprintf(stderr, "advrec-eval: out of memory\n");
            rc = -1;
            break;
        }
        if (kind == ADVREC_SYNTH_BOT)
            s->attacker[u] = 2;
        else if (kind == ADVREC_SYNTH_SHILL)
            s->attacker[u] = 3;
    }
    fprintf(stderr,
            "generator seed %" PRIu64 ": %zu events, %u users, %u items, %u "
            "bots, %u shilling groups\n",
            o->seed, s->n_ev, s->users.n, s->items.n, o->bots, o->groups);
    advrec_synth_destroy(synth);
    return rc;
}

/* ---- replay ---- */

typedef struct run_s {
    advrec_detect_t *detect;
    uint8_t *flagged;      /* users.n: reached FLAGGED or QUARANTINED */
    size_t *flag_at;       /* users.n: event index of the first flag */
    uint8_t *item_flag;    /* items.n */
    size_t target_at;      /* event index the target was flagged at */
    size_t event;          /* index of the event being applied */
    uint64_t judged, down; /* events judged, ... with a weight below 1 */
    int timed;             /* time each judgement into judge_ns */
    double judge_ns;       /* wall time inside advrec_detect_observe */
} run_t;

/* A fresh detector with dp and the run's per-user and per-item marks;
 * timed: each judgement is timed. Returns 0, or -1 with the reason in
 * errstr (what run_close() needs is set either way). */
static int run_open(run_t *r, const set_t *s, const advrec_detect_params_t *dp,
                    int timed, char *errstr, size_t errstr_size)
{
    memset(r, 0, sizeof(*r));
    r->target_at = SIZE_MAX;
    r->timed = timed;
    if (!(r->detect = advrec_detect_new(dp, errstr, errstr_size)))
        return -1;
    r->flagged = calloc(s->users.n, 1);
    r->flag_at = calloc(s->users.n, sizeof(*r->flag_at));
    r->item_flag = calloc(s->items.n, 1);
    if (!r->flagged || !r->flag_at || !r->item_flag) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

static void run_close(run_t *r)
{
    advrec_detect_destroy(r->detect);
    free(r->flagged);
    free(r->flag_at);
    free(r->item_flag);
    memset(r, 0, sizeof(*r));
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Monotonic wall time in ns: cheap enough (vDSO) to read per event. */
static double mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static float judge(void *opaque, const advrec_event_t *ev, uint32_t user,
                   uint32_t item, const uint32_t *hist, uint32_t hist_len)
{
    run_t *r = opaque;
    double t0 = r->timed ? mono_ns() : 0;
    float w = advrec_detect_observe(r->detect, user, item, ev, hist, hist_len);

    if (r->timed)
        r->judge_ns += mono_ns() - t0;

    r->judged++;
    r->down += w < 1.0f;
    return w;
}

typedef struct take_s {
    run_t *run;
    advrec_state_t *state;
    set_t *set;
} take_t;

static void take(void *opaque, const advrec_detect_flag_t *f)
{
    take_t *t = opaque;
    uint32_t x;

    if (f->action == ADVREC_ANOMALY_CLEARED)
        return;
    if (f->entity_type == ADVREC_ENTITY_USER) {
        x = names_get(&t->set->users, advrec_state_user_name(t->state, f->idx),
                      0);
        if (x != NONE && !t->run->flagged[x]) {
            t->run->flagged[x] = 1;
            t->run->flag_at[x] = t->run->event;
        }
        if (x != NONE && f->action == ADVREC_ANOMALY_QUARANTINED)
            t->run->flagged[x] = 2;
    } else {
        x = names_get(&t->set->items, advrec_state_item_name(t->state, f->idx),
                      0);
        if (x != NONE && !t->run->item_flag[x]) {
            t->run->item_flag[x] = 1;
            if (x == t->set->target)
                t->run->target_at = t->run->event;
        }
    }
}

/*
 * Replays s in time order through a new engine (shipped defaults): with
 * detect (judge on) when detect is not NULL, attackers' events skipped when
 * clean. Returns the engine (caller destroys) or NULL.
 */
static advrec_engine_t *replay(set_t *s, const advrec_engine_params_t *ep,
                               run_t *run, int clean)
{
    advrec_engine_params_t p = *ep;
    advrec_engine_t *e;
    advrec_event_t ev;
    advrec_origin_t o = {0, 0, 0};
    char errstr[512];
    take_t t;
    advrec_err_t rc;

    if (p.state.max_users < s->users.n + 16)
        p.state.max_users = s->users.n + 16;
    if (p.state.max_items < s->items.n + 16)
        p.state.max_items = s->items.n + 16;
    if (!(e = advrec_engine_new(&p, errstr, sizeof(errstr)))) {
        fprintf(stderr, "advrec-eval: %s\n", errstr);
        return NULL;
    }
    t.run = run;
    t.state = advrec_engine_state(e);
    t.set = s;
    if (run && run->detect)
        advrec_engine_set_judge(e, judge, run);
    advrec_event_clear(&ev);
    for (size_t k = 0; k < s->n_ev; k++) {
        const ev_t *x = &s->ev[k];
        if (clean && s->attacker[x->u])
            continue;
        ev.type = x->purchase ? ADVREC_EVENT_PURCHASE : ADVREC_EVENT_CLICK;
        ev.ts_ms = x->ts;
        snprintf(ev.user_id, sizeof(ev.user_id), "%s", s->users.name[x->u]);
        snprintf(ev.item_id, sizeof(ev.item_id), "%s", s->items.name[x->i]);
        o.offset = (int64_t)k;
        if (run)
            run->event = k;
        rc = advrec_engine_apply(e, &ev, "detect-eval", &o, 1.0f, 0, errstr,
                                 sizeof(errstr));
        if (rc) {
            fprintf(stderr, "advrec-eval: event %zu: %s\n", k, errstr);
            continue;
        }
        if (run && run->detect)
            advrec_detect_take(run->detect, take, &t);
    }
    return e;
}

/* The target's mean score and top-10 share over up to SHIFT_USERS genuine
 * users who never touched it (every k-th one), scored on e's factors
 * against the items they have not touched. */
typedef struct shift_s {
    double mean_score, top_share;
    double mean_rank; /* items ranked above the target, mean */
    uint32_t users;
    int cold_top; /* target in the cold-start (popularity) top 10 */
} shift_t;

static void measure_target(set_t *s, advrec_engine_t *e, const uint8_t *seen,
                           const size_t *off, const uint32_t *its, shift_t *out)
{
    advrec_state_t *st = advrec_engine_state(e);
    advrec_rows_t *U = advrec_state_users(st), *I = advrec_state_items(st);
    uint32_t k = I->k, t_idx, n_gen = 0, step;
    uint8_t *mine = calloc(I->n, 1);
    advrec_popularity_entry_t top[TOP_K];
    size_t n_top;

    memset(out, 0, sizeof(*out));
    if (!mine || advrec_state_item(st, s->items.name[s->target], 0, &t_idx,
                                   NULL, NULL, 0)) {
        free(mine);
        return;
    }
    n_top =
        advrec_popularity_top(advrec_engine_popularity(e), TOP_K, NULL, 0, top);
    for (size_t x = 0; x < n_top; x++)
        out->cold_top |= top[x].item == t_idx;
    for (uint32_t u = 0; u < s->users.n; u++)
        n_gen += !s->attacker[u] && !seen[u];
    step = n_gen > SHIFT_USERS ? n_gen / SHIFT_USERS : 1;
    for (uint32_t u = 0, g = 0; u < s->users.n; u++) {
        uint32_t ui, higher = 0;
        const float *pu, *qt;
        float st_score;
        if (s->attacker[u] || seen[u] || g++ % step)
            continue;
        if (advrec_state_user(st, s->users.name[u], 0, &ui, NULL, NULL, 0))
            continue;
        pu = U->w + (size_t)ui * k;
        qt = I->w + (size_t)t_idx * k;
        st_score = I->bias ? I->bias[t_idx] : 0;
        for (uint32_t f = 0; f < k; f++)
            st_score += pu[f] * qt[f];
        /* The user's items (by the set's ids, mapped to the state's). */
        for (size_t x = off[u]; x < off[u + 1]; x++) {
            uint32_t ii;
            if (!advrec_state_item(st, s->items.name[its[x]], 0, &ii, NULL,
                                   NULL, 0))
                mine[ii] = 1;
        }
        for (uint32_t j = 0; j < I->n; j++) {
            const float *qj = I->w + (size_t)j * k;
            float sc = I->bias ? I->bias[j] : 0;
            if (j == t_idx || mine[j])
                continue;
            for (uint32_t f = 0; f < k; f++)
                sc += pu[f] * qj[f];
            higher += sc > st_score;
        }
        for (size_t x = off[u]; x < off[u + 1]; x++) {
            uint32_t ii;
            if (!advrec_state_item(st, s->items.name[its[x]], 0, &ii, NULL,
                                   NULL, 0))
                mine[ii] = 0;
        }
        out->mean_score += st_score;
        out->top_share += higher < TOP_K;
        out->mean_rank += higher;
        out->users++;
    }
    if (out->users) {
        out->mean_score /= out->users;
        out->top_share /= out->users;
        out->mean_rank /= out->users;
    }
    free(mine);
}

/*
 * Writes path: a header, then per user "user label f1 ... f7 mean_logpop
 * flagged": the detector's own statistics (advrec_detect_user_features),
 * the mean log(1 + events of the item so far) over the user's events, and
 * whether the detector flagged it, so a peer scores the same features.
 */
static int write_features(set_t *s, advrec_engine_t *e, const run_t *run,
                          const char *path)
{
    advrec_state_t *st = advrec_engine_state(e);
    uint32_t *pop = calloc(s->items.n, sizeof(*pop));
    double *lp = calloc(s->users.n, sizeof(*lp));
    uint32_t *n = calloc(s->users.n, sizeof(*n));
    FILE *fp = NULL;
    int rc = -1;

    if (!pop || !lp || !n)
        goto out;
    for (size_t k = 0; k < s->n_ev; k++) {
        lp[s->ev[k].u] += log(1.0 + pop[s->ev[k].i]);
        n[s->ev[k].u]++;
        pop[s->ev[k].i]++;
    }
    if (!(fp = fopen(path, "w"))) {
        perror(path);
        goto out;
    }
    fprintf(fp, "user label events clicks purchases rate gap_logstd "
                "diversity age_s mean_logpop flagged\n");
    for (uint32_t u = 0; u < s->users.n; u++) {
        double f[ADVREC_DETECT_USER_FEATURES];
        uint32_t ui;
        if (advrec_state_user(st, s->users.name[u], 0, &ui, NULL, NULL, 0) ||
            advrec_detect_user_features(run->detect, ui, f,
                                        ADVREC_DETECT_USER_FEATURES) !=
                ADVREC_DETECT_USER_FEATURES)
            continue;
        fprintf(fp, "%s %d", s->users.name[u], s->attacker[u]);
        for (int x = 0; x < ADVREC_DETECT_USER_FEATURES; x++)
            fprintf(fp, " %.6g", f[x]);
        fprintf(fp, " %.6g %d\n", n[u] ? lp[u] / n[u] : 0.0,
                run->flagged[u] != 0);
    }
    rc = ferror(fp) ? -1 : 0;
out:
    if (fp && fclose(fp))
        rc = -1;
    free(pop);
    free(lp);
    free(n);
    return rc;
}

/* Mean wall time of an empty interval between two mono_ns() calls: what
 * timing each judgement adds to it. */
static double clock_overhead_ns(void)
{
    double sum = 0;
    int n = 100000;

    for (int k = 0; k < n; k++) {
        double a = mono_ns();
        sum += mono_ns() - a;
    }
    return sum / n;
}

/*
 * Prints the cost per event of the detector and of the model's training
 * step. The detector is timed where the engine calls it (wall time inside
 * advrec_detect_observe(), less the clock's own cost): a difference of
 * two whole replays is too noisy for it on a shared machine. Its first
 * round is measured, the replay whose flags were counted (timed too).
 * Training is such a difference, of thread CPU times: a replay without
 * the detector minus one without it nor training (click and purchase
 * weights 0: no APR step, no negatives, no popularity). Each figure is
 * the fastest of runs rounds (interleaved, so a load that comes and goes
 * meets all alike; a load only ever adds time). Returns 0, or -1 when a
 * replay could not be built (said on stderr).
 */
static int cost(set_t *s, const opts_t *o, const advrec_engine_params_t *ep,
                const advrec_detect_params_t *dp, const run_t *measured)
{
    advrec_engine_params_t untrained = *ep;
    unsigned runs = o->cost_runs ? o->cost_runs : 1;
    double best[3] = {INFINITY, INFINITY, INFINITY}, t0, t;
    double n = (double)s->n_ev, overhead = clock_overhead_ns();
    char errstr[512];

    untrained.weight_click = 0;
    untrained.weight_purchase = 0;
    /* The detector's first round is the measuring replay's own. */
    best[0] = measured->judge_ns - overhead * (double)measured->judged;
    for (unsigned k = 0; k < runs; k++) {
        advrec_engine_t *e;
        if (k > 0) {
            run_t run;
            e = NULL;
            if (run_open(&run, s, dp, 1, errstr, sizeof(errstr)) == 0)
                e = replay(s, ep, &run, 0);
            else
                fprintf(stderr, "advrec-eval: %s\n", errstr);
            t = run.judge_ns - overhead * (double)run.judged;
            if (e && t < best[0])
                best[0] = t;
            run_close(&run);
            if (!e)
                return -1;
            advrec_engine_destroy(e);
        }
        t0 = now_ns();
        if (!(e = replay(s, ep, NULL, 0)))
            return -1;
        if ((t = now_ns() - t0) < best[1])
            best[1] = t;
        advrec_engine_destroy(e);
        t0 = now_ns();
        if (!(e = replay(s, &untrained, NULL, 0)))
            return -1;
        if ((t = now_ns() - t0) < best[2])
            best[2] = t;
        advrec_engine_destroy(e);
    }
    printf("%s: cost per event (fastest of %u): detector %.0f ns (wall, "
           "in the judge), model training %.0f ns (CPU), rest of the replay "
           "%.0f ns (CPU; %zu events)\n",
           o->name, runs, best[0] / n, (best[1] - best[2]) / n, best[2] / n,
           s->n_ev);
    return 0;
}

static int run_set(set_t *s, const opts_t *o)
{
    advrec_engine_params_t ep;
    advrec_detect_params_t dp;
    advrec_conf_t *conf;
    run_t run = {0};
    advrec_engine_t *e = NULL;
    char errstr[512];
    uint64_t tp = 0, fp = 0, fn = 0, genuine = 0, n_att = 0, fp_quar = 0;
    size_t first_att = SIZE_MAX, *delays = NULL, n_delay = 0;
    double prec, rec, f1, fpr;
    int rc = -1;

    if (!(conf = advrec_conf_new(errstr, sizeof(errstr)))) {
        fprintf(stderr, "advrec-eval: %s\n", errstr);
        return -1;
    }
    advrec_params_engine(&ep, conf);
    advrec_params_detect(&dp, conf);
    advrec_conf_destroy(conf);
    dp.enable = 1;
    if (o->group_min >= 0)
        dp.group_min_size = (uint32_t)o->group_min;
    if (o->profile_min >= 0)
        dp.profile_min_events = (uint32_t)o->profile_min;
    if (o->profile_fit >= 0)
        dp.profile_fit_max = o->profile_fit;
    if (o->young_s > 0)
        dp.young_s = o->young_s;
    if (o->item_window_s > 0)
        dp.item_window_s = o->item_window_s;
    if (s->n_ev == 0) {
        fprintf(stderr, "advrec-eval: no events\n");
        return -1;
    }
    qsort(s->ev, s->n_ev, sizeof(*s->ev), by_ts);
    for (size_t k = 0; k < s->n_ev; k++)
        if (s->attacker[s->ev[k].u]) {
            first_att = k;
            break;
        }
    if (run_open(&run, s, &dp, 1, errstr, sizeof(errstr))) {
        fprintf(stderr, "advrec-eval: %s\n", errstr);
        goto out;
    }
    if (!(delays = calloc(s->users.n, sizeof(*delays)))) {
        fprintf(stderr, "advrec-eval: out of memory\n");
        goto out;
    }
    if (!(e = replay(s, &ep, &run, 0)))
        goto out;
    for (uint32_t u = 0; u < s->users.n; u++) {
        if (s->attacker[u]) {
            n_att++;
            if (run.flagged[u]) {
                tp++;
                delays[n_delay++] = run.flag_at[u] >= first_att
                                        ? run.flag_at[u] - first_att
                                        : 0;
            } else {
                fn++;
            }
        } else {
            genuine++;
            fp += run.flagged[u] != 0;
            fp_quar += run.flagged[u] == 2;
        }
    }
    prec = tp + fp ? (double)tp / (double)(tp + fp) : 0;
    rec = n_att ? (double)tp / (double)n_att : 0;
    f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    fpr = genuine ? (double)fp / (double)genuine : 0;
    {
        /* Median delay: a partial selection sort is enough here. */
        size_t med = 0;
        for (size_t a = 0; a < n_delay; a++)
            for (size_t b = a + 1; b < n_delay; b++)
                if (delays[b] < delays[a]) {
                    size_t x = delays[a];
                    delays[a] = delays[b];
                    delays[b] = x;
                }
        med = n_delay ? delays[n_delay / 2] : 0;
        printf("%s: users %u attackers %" PRIu64 " flagged %" PRIu64
               " (genuine %" PRIu64 ", of them quarantined %" PRIu64 ")",
               o->name, s->users.n, n_att, tp + fp, fp, fp_quar);
        if (o->synth) {
            uint32_t nb = 0, fb = 0, ns = 0, fs = 0;
            for (uint32_t u = 0; u < s->users.n; u++) {
                nb += s->attacker[u] == 2;
                fb += s->attacker[u] == 2 && run.flagged[u];
                ns += s->attacker[u] == 3;
                fs += s->attacker[u] == 3 && run.flagged[u];
            }
            printf(" bots %u/%u shills %u/%u", fb, nb, fs, ns);
        }
        if (s->target != NONE) {
            if (run.target_at != SIZE_MAX)
                printf(" target %s flagged after %zu events",
                       s->items.name[s->target],
                       run.target_at >= first_att ? run.target_at - first_att
                                                  : 0);
            else
                printf(" target %s not flagged", s->items.name[s->target]);
        }
        printf(" delay_events median %zu max %zu precision %.3f recall %.3f "
               "f1 %.3f fpr %.4f\n",
               med, n_delay ? delays[n_delay - 1] : 0, prec, rec, f1, fpr);
    }
    (void)fn;
    if (cost(s, o, &ep, &dp, &run))
        goto out;
    if (o->features && write_features(s, e, &run, o->features))
        goto out;
    if (o->shift && s->target != NONE) {
        /* The prediction shift: clean, attacked without the defence,
         * attacked with it; on genuine users who never touched it. */
        uint8_t *seen = calloc(s->users.n, 1);
        size_t *off = calloc(s->users.n + 1, sizeof(*off));
        uint32_t *its = malloc(s->n_ev * sizeof(*its));
        shift_t clean, clean_on, off_s, on_s;
        run_t run2 = {0};
        advrec_engine_t *e2 = NULL;
        if (!seen || !off || !its) {
            free(seen);
            free(off);
            free(its);
            goto out;
        }
        for (size_t k = 0; k < s->n_ev; k++) {
            off[s->ev[k].u + 1]++;
            if (s->ev[k].i == s->target)
                seen[s->ev[k].u] = 1;
        }
        for (uint32_t u = 0; u < s->users.n; u++)
            off[u + 1] += off[u];
        {
            size_t *fill = malloc((s->users.n + 1) * sizeof(*fill));
            if (fill) {
                memcpy(fill, off, (s->users.n + 1) * sizeof(*fill));
                for (size_t k = 0; k < s->n_ev; k++)
                    its[fill[s->ev[k].u]++] = s->ev[k].i;
                free(fill);
            }
        }
        measure_target(s, e, seen, off, its, &on_s);
        if ((e2 = replay(s, &ep, NULL, 0)))
            measure_target(s, e2, seen, off, its, &off_s);
        advrec_engine_destroy(e2);
        if ((e2 = replay(s, &ep, NULL, 1)))
            measure_target(s, e2, seen, off, its, &clean);
        advrec_engine_destroy(e2);
        /* The clean stream with the detector too: the defence changes
         * genuine training a little, and that is not the attack's shift. */
        memset(&clean_on, 0, sizeof(clean_on));
        if (run_open(&run2, s, &dp, 0, errstr, sizeof(errstr)) == 0 &&
            (e2 = replay(s, &ep, &run2, 1)))
            measure_target(s, e2, seen, off, its, &clean_on);
        advrec_engine_destroy(e2);
        {
            double ds_off = off_s.mean_score - clean.mean_score;
            double ds_on = on_s.mean_score - clean_on.mean_score;
            double dt_off = off_s.top_share - clean.top_share;
            double dt_on = on_s.top_share - clean_on.top_share;
            double dr_off = clean.mean_rank - off_s.mean_rank;
            double dr_on = clean_on.mean_rank - on_s.mean_rank;
            printf("%s: shift over %u genuine users who never touched the "
                   "target (defence off: attacked - clean; on: attacked - "
                   "clean, both with the detector): mean score %+.4f off "
                   "%+.4f on (removed %.1f%%); mean rank %.1f -> %.1f off, "
                   "%.1f -> %.1f on (removed %.1f%%); top-%d share %.4f -> "
                   "%.4f off, %.4f -> %.4f on (removed %.1f%%); in the "
                   "cold-start top-%d: clean %d off %d on %d; clean stream "
                   "with the detector: %" PRIu64 " of %" PRIu64
                   " events down-weighted or quarantined\n",
                   o->name, on_s.users, ds_off, ds_on,
                   ds_off != 0 ? 100.0 * (1.0 - ds_on / ds_off) : 0.0,
                   clean.mean_rank, off_s.mean_rank, clean_on.mean_rank,
                   on_s.mean_rank,
                   dr_off != 0 ? 100.0 * (1.0 - dr_on / dr_off) : 0.0, TOP_K,
                   clean.top_share, off_s.top_share, clean_on.top_share,
                   on_s.top_share,
                   dt_off != 0 ? 100.0 * (1.0 - dt_on / dt_off) : 0.0, TOP_K,
                   clean.cold_top, off_s.cold_top, on_s.cold_top, run2.down,
                   run2.judged);
        }
        run_close(&run2);
        free(seen);
        free(off);
        free(its);
    }
    rc = 0;
out:
    advrec_engine_destroy(e);
    run_close(&run);
    free(delays);
    return rc;
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: advrec-eval --detect [options] FILE\n"
        "Runs labelled users through the anomaly detectors (the "
        "daemon's engine\nwith the detector as judge) and prints "
        "'NAME: ... precision P recall R\nf1 F fpr X'.\n"
        "  --synth          no FILE: the generator's stream (tools/lib/synth)"
        "\n"
        "                   with its truth: --synth-users (10000), "
        "--synth-items\n"
        "                   (5000), --synth-events (300000), --bots "
        "(10),\n"
        "                   --shill-groups (3), --seed; labels: bots and"
        " shills\n"
        "                   (--synth-events 0, endless, is refused)\n"
        "  --labels FILE    FILE is a ratings file of 'user item rating' "
        "lines;\n"
        "                   labels 'user label' (1 = attacker)\n"
        "  --attack-at X    profiles: attackers' window starts at X of "
        "the 30 days (0.8)\n"
        "  --attack-window S  ... and lasts S seconds (86400); 0: "
        "attackers spread\n"
        "                   over the 30 days like everyone\n"
        "  --attack PCT     without --labels: inject PCT %% fake users "
        "(3)\n"
        "  --filler PCT     ... each with PCT %% of the items as fillers "
        "(3)\n"
        "  --shift          also the target's prediction shift, defence "
        "off / on\n"
        "  --attack-len S   injected: the fake sessions start within S "
        "seconds (3600)\n"
        "  --group-min N    anomaly.group.min.size (shipped default)\n"
        "  --profile-min N --profile-fit X  anomaly.profile.min.events\n"
        "                   and anomaly.profile.fit.max (shipped defaults)\n"
        "  --young-s S --item-window-s S  anomaly.young.s and\n"
        "                   anomaly.item.window.s (shipped defaults)\n"
        "  --cost-runs N    the cost per event: fastest of N rounds of "
        "replays\n"
        "                   with the detector, without it, and without "
        "training (1)\n"
        "  --format F       event file format (auto)\n"
        "  --name NAME      data set name in the line\n"
        "  --features FILE  per-user features and labels for a peer\n"
        "                   (tools/detect_peer.py)\n"
        "  --seed S         sessions and injection (1)\n");
}

int advrec_detect_eval_main(int argc, char **argv)
{
    enum {
        O_LABELS = 256,
        O_AT,
        O_WIN,
        O_ATT,
        O_FILL,
        O_SHIFT,
        O_GMIN,
        O_FMT,
        O_NAME,
        O_SEED,
        O_HELP,
        O_YOUNG,
        O_IWIN,
        O_ALEN,
        O_FEAT,
        O_SYNTH,
        O_SUSERS,
        O_SITEMS,
        O_SEVENTS,
        O_BOTS,
        O_GROUPS,
        O_PMIN,
        O_PFIT,
        O_COST
    };
    static const struct option lo[] = {{"labels", 1, 0, O_LABELS},
                                       {"attack-at", 1, 0, O_AT},
                                       {"attack-window", 1, 0, O_WIN},
                                       {"attack", 1, 0, O_ATT},
                                       {"filler", 1, 0, O_FILL},
                                       {"shift", 0, 0, O_SHIFT},
                                       {"group-min", 1, 0, O_GMIN},
                                       {"format", 1, 0, O_FMT},
                                       {"name", 1, 0, O_NAME},
                                       {"seed", 1, 0, O_SEED},
                                       {"help", 0, 0, O_HELP},
                                       {"young-s", 1, 0, O_YOUNG},
                                       {"item-window-s", 1, 0, O_IWIN},
                                       {"attack-len", 1, 0, O_ALEN},
                                       {"features", 1, 0, O_FEAT},
                                       {"synth", 0, 0, O_SYNTH},
                                       {"synth-users", 1, 0, O_SUSERS},
                                       {"synth-items", 1, 0, O_SITEMS},
                                       {"synth-events", 1, 0, O_SEVENTS},
                                       {"bots", 1, 0, O_BOTS},
                                       {"shill-groups", 1, 0, O_GROUPS},
                                       {"profile-min", 1, 0, O_PMIN},
                                       {"profile-fit", 1, 0, O_PFIT},
                                       {"cost-runs", 1, 0, O_COST},
                                       {0, 0, 0, 0}};
    opts_t o;
    set_t s;
    int c, rc;

    memset(&o, 0, sizeof(o));
    memset(&s, 0, sizeof(s));
    o.attack_pct = 3;
    o.filler_pct = 3;
    o.attack_at = 0.8;
    o.attack_window_s = 86400;
    o.seed = 1;
    o.group_min = -1;
    o.profile_min = -1;
    o.profile_fit = -1;
    o.inject_len_s = 3600;
    /* The generator's attack stream of unit.test_detect. */
    o.synth_users = 10000;
    o.synth_items = 5000;
    o.synth_events = 300000;
    o.bots = 10;
    o.groups = 3;
    s.target = NONE;
    advrec_reader_conf_init(&o.rconf);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_LABELS:
            o.labels = optarg;
            break;
        case O_AT:
            o.attack_at = atof(optarg);
            break;
        case O_WIN:
            o.attack_window_s = atof(optarg);
            break;
        case O_ATT:
            o.attack_pct = atof(optarg);
            break;
        case O_FILL:
            o.filler_pct = atof(optarg);
            break;
        case O_COST:
            o.cost_runs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_YOUNG:
            o.young_s = atof(optarg);
            break;
        case O_IWIN:
            o.item_window_s = atof(optarg);
            break;
        case O_SYNTH:
            o.synth = 1;
            break;
        case O_SUSERS:
            o.synth_users = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_SITEMS:
            o.synth_items = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_SEVENTS:
            o.synth_events = strtoull(optarg, NULL, 10);
            break;
        case O_BOTS:
            o.bots = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_GROUPS:
            o.groups = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_FEAT:
            o.features = optarg;
            break;
        case O_ALEN:
            o.inject_len_s = atof(optarg);
            break;
        case O_SHIFT:
            o.shift = 1;
            break;
        case O_GMIN:
            o.group_min = atoi(optarg);
            break;
        case O_PMIN:
            o.profile_min = atoi(optarg);
            break;
        case O_PFIT:
            o.profile_fit = atof(optarg);
            break;
        case O_FMT:
            if (advrec_reader_format_parse(optarg, &o.rconf.format)) {
                fprintf(stderr, "advrec-eval: unknown --format %s\n", optarg);
                return 64;
            }
            break;
        case O_NAME:
            o.name = optarg;
            break;
        case O_SEED:
            o.seed = strtoull(optarg, NULL, 10);
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    if (optind != argc - (o.synth ? 0 : 1) ||
        (o.synth && o.synth_events == 0) || o.attack_pct <= 0 ||
        o.filler_pct <= 0 || o.attack_at < 0 || o.attack_at >= 1 ||
        o.attack_window_s < 0) {
        usage(stderr);
        return 64;
    }
    if (!o.name)
        o.name = o.synth ? "generator" : argv[optind];
    if (o.synth    ? load_synth(&s, &o)
        : o.labels ? load_profiles(&s, argv[optind], &o)
                   : load_injected(&s, argv[optind], &o)) {
        set_free(&s);
        return 1;
    }
    rc = run_set(&s, &o) ? 1 : 0;
    set_free(&s);
    return rc;
}
