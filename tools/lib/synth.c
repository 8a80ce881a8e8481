/*
 * synth.c - the synthetic shop: a seeded world, a heap of accounts ordered by
 * their next event time, and one step function per kind of account.
 *
 * The generator owns every array below, allocated once in _new and freed in
 * _destroy; advrec_synth_next() allocates nothing. All randomness comes from
 * one xoshiro256** stream seeded from params.seed and consumed in heap order
 * (ties broken by account index), so a seed fixes the stream.
 *
 * Account layout (internal indices): [0, n_users) normal users, then the
 * bots, then the shilling accounts group by group. Items are indexed by
 * popularity rank (0 = most popular). Both are mapped to external numbers
 * by seeded permutations, so neither "u<n>" nor "i<n>" leaks kind or rank.
 */
#include "synth.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_NONE         UINT32_MAX
#define SYNTH_MAX_FACTORS  64
#define SYNTH_MAX_CANDS    1024
#define SYNTH_MAX_ACCOUNTS 2000000000u
#define SYNTH_SESSION_CAP  1000 /* clicks per session, keeps u16 safe */
#define SYNTH_PRICE_MEDIAN 20.0 /* EUR */
#define SYNTH_ACTIVITY_SD  0.7  /* log-normal spread of user activity */
#define SYNTH_CAT_NOISE    0.5  /* item vector = centroid + this * N(0,1) */
#define SYNTH_USER_NOISE   0.5
#define SYNTH_QTY_EXTRA_P  0.2 /* P(one more unit) in a purchase */
#define SYNTH_SHILL_BURST                         \
    0.25 /* a group acts within this share of the \
            window */

typedef struct synth_account_s {
    int64_t next_ms;       /* time of this account's next event */
    uint32_t ext;          /* external number: "u<ext>" */
    uint32_t session_no;   /* sessions started so far */
    uint32_t pending_item; /* item to buy as the next event, or NONE */
    uint32_t n_events;     /* events produced so far */
    uint32_t aux;          /* bot: bot index; shill: group index */
    float gap_scale;       /* normal: activity level (session gap factor) */
    uint16_t clicks_left;  /* clicks left in the current session */
    uint16_t target_pos;   /* shill: which click of the session is the target */
    uint8_t kind;          /* advrec_synth_kind_t */
} synth_account_t;

struct advrec_synth_s {
    advrec_synth_params_t params;
    uint64_t rng[4];

    uint32_t n_accounts;
    synth_account_t *accounts;
    uint32_t *acct_by_ext; /* external number -> internal index */

    uint32_t *heap; /* account indices, min-heap on (next_ms, index) */
    uint32_t heap_len;

    uint32_t *item_ext;    /* rank -> external number */
    uint32_t *item_by_ext; /* external number -> rank */
    float *item_price;
    float *item_vec;    /* n_items x n_factors, row-major */
    float *user_vec;    /* n_users x n_factors */
    double *alias_prob; /* Vose alias table over popularity ranks */
    uint32_t *alias_other;

    uint32_t *bot_items; /* n_bots x bot_hammer_items; hammering bots only */
    uint8_t *bot_hammers;
    uint32_t *group_target; /* n_shill_groups item ranks */

    float *cand_score; /* per-click scratch, n_candidates */
    uint32_t *cand_item;

    int64_t attack_start_ms;
    int64_t attack_end_ms;
    uint64_t n_purchases_total; /* numbering of order ids */
    advrec_synth_stats_t stats;
    advrec_synth_kind_t last_kind;
};

/* ---- randomness: xoshiro256** seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_u64(advrec_synth_t *synth)
{
    uint64_t *s = synth->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(advrec_synth_t *synth)
{
    return (double)(rng_u64(synth) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0; Lemire's multiply-shift, bias below 2^-32. */
static uint32_t rng_below(advrec_synth_t *synth, uint32_t n)
{
    return (uint32_t)(((rng_u64(synth) >> 32) * (uint64_t)n) >> 32);
}

static double rng_exp(advrec_synth_t *synth, double mean)
{
    return -mean * log1p(-rng_unit(synth));
}

static double rng_normal(advrec_synth_t *synth)
{
    /* Box-Muller; one of the pair is dropped to keep no hidden state. */
    double u1 = 1.0 - rng_unit(synth), u2 = rng_unit(synth);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Fisher-Yates into perm[0..n), then the inverse into inv. */
static void rng_permutation(advrec_synth_t *synth, uint32_t *perm,
                            uint32_t *inv, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(synth, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        inv[perm[i]] = i;
}

/* ---- the heap of accounts ---- */

static int heap_less(const advrec_synth_t *synth, uint32_t a, uint32_t b)
{
    int64_t ta = synth->accounts[a].next_ms, tb = synth->accounts[b].next_ms;
    return ta < tb || (ta == tb && a < b);
}

static void heap_sift_down(advrec_synth_t *synth, uint32_t pos)
{
    uint32_t *h = synth->heap, n = synth->heap_len;

    for (;;) {
        uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
        if (l < n && heap_less(synth, h[l], h[m]))
            m = l;
        if (r < n && heap_less(synth, h[r], h[m]))
            m = r;
        if (m == pos)
            return;
        uint32_t t = h[m];
        h[m] = h[pos];
        h[pos] = t;
        pos = m;
    }
}

/* Builds the heap from all accounts in O(n). */
static void heap_build(advrec_synth_t *synth)
{
    synth->heap_len = synth->n_accounts;
    for (uint32_t i = 0; i < synth->n_accounts; i++)
        synth->heap[i] = i;
    for (uint32_t i = synth->heap_len / 2; i-- > 0;)
        heap_sift_down(synth, i);
}

static void heap_pop(advrec_synth_t *synth)
{
    synth->heap[0] = synth->heap[--synth->heap_len];
    heap_sift_down(synth, 0);
}

/* ---- parameters ---- */

advrec_synth_params_t advrec_synth_params_default(void)
{
    advrec_synth_params_t p;

    memset(&p, 0, sizeof(p));
    p.seed = 1;
    p.n_users = 10000;
    p.n_items = 5000;
    p.max_events = 1000000;
    p.start_s = 1700000000; /* 2023-11-14T22:13:20Z */
    p.n_factors = 8;
    p.n_categories = 20;
    p.zipf_exponent = 1.0;
    p.n_candidates = 32;
    p.taste_strength = 2.0;
    p.session_clicks_mean = 6.0;
    p.click_gap_mean_s = 40.0;
    p.session_gap_mean_s = 4 * 3600.0;
    p.purchase_prob = 0.05;
    p.new_user_frac = 0.1;
    p.attack_start_s = -1;
    p.attack_len_s = 0;
    p.n_bots = 0;
    p.bot_rate = 0.5;
    p.bot_jitter = 0.02;
    p.bot_events = 2000;
    p.bot_hammer_frac = 0.5;
    p.bot_hammer_items = 3;
    p.n_shill_groups = 0;
    p.shill_size = 20;
    p.shill_fillers = 10;
    p.shill_popular_fillers = 1;
    p.shill_purchase_prob = 0.3;
    return p;
}

static int prob_ok(double p)
{
    return p >= 0.0 && p <= 1.0; /* false for NaN too */
}

static advrec_err_t params_check(const advrec_synth_params_t *p, char *errstr,
                                 size_t errstr_size)
{
#define BAD(...)                                               \
    advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size, \
                  "synth: " __VA_ARGS__)
    uint64_t n_adv;

    if (p->n_users < 1)
        return BAD("n_users must be >= 1");
    if (p->n_items < 2)
        return BAD("n_items %u: need at least 2", p->n_items);
    if (p->start_s <= 0)
        return BAD("start_s %lld is not a positive epoch time",
                   (long long)p->start_s);
    if (p->n_factors < 1 || p->n_factors > SYNTH_MAX_FACTORS)
        return BAD("n_factors %u outside 1..%d", p->n_factors,
                   SYNTH_MAX_FACTORS);
    if (p->n_categories < 1)
        return BAD("n_categories must be >= 1");
    if (!(p->zipf_exponent >= 0.0 && p->zipf_exponent <= 10.0))
        return BAD("zipf_exponent %g outside 0..10", p->zipf_exponent);
    if (p->n_candidates < 1 || p->n_candidates > SYNTH_MAX_CANDS)
        return BAD("n_candidates %u outside 1..%d", p->n_candidates,
                   SYNTH_MAX_CANDS);
    if (!(p->taste_strength >= 0.0 && p->taste_strength <= 100.0))
        return BAD("taste_strength %g outside 0..100", p->taste_strength);
    if (!(p->session_clicks_mean >= 1.0 &&
          p->session_clicks_mean <= SYNTH_SESSION_CAP))
        return BAD("session_clicks_mean %g outside 1..%d",
                   p->session_clicks_mean, SYNTH_SESSION_CAP);
    if (!(p->click_gap_mean_s > 0.0 && p->click_gap_mean_s < 1e7))
        return BAD("click_gap_mean_s %g must be > 0", p->click_gap_mean_s);
    if (!(p->session_gap_mean_s > 0.0 && p->session_gap_mean_s < 1e9))
        return BAD("session_gap_mean_s %g must be > 0", p->session_gap_mean_s);
    if (!prob_ok(p->purchase_prob))
        return BAD("purchase_prob %g outside 0..1", p->purchase_prob);
    if (!prob_ok(p->new_user_frac))
        return BAD("new_user_frac %g outside 0..1", p->new_user_frac);
    if (isnan(p->attack_start_s) || isnan(p->attack_len_s) ||
        p->attack_start_s > 1e10 || p->attack_len_s > 1e10)
        return BAD("attack window %g+%g is not a usable time span",
                   p->attack_start_s, p->attack_len_s);
    if (p->n_bots > 0) {
        if (!(p->bot_rate > 0.0 && p->bot_rate <= 1000.0))
            return BAD("bot_rate %g outside (0, 1000] per second", p->bot_rate);
        if (!(p->bot_jitter >= 0.0 && p->bot_jitter < 1.0))
            return BAD("bot_jitter %g outside [0, 1)", p->bot_jitter);
        if (p->bot_events < 1)
            return BAD("bot_events must be >= 1");
        if (!prob_ok(p->bot_hammer_frac))
            return BAD("bot_hammer_frac %g outside 0..1", p->bot_hammer_frac);
        if (p->bot_hammer_items < 1 || p->bot_hammer_items > p->n_items)
            return BAD("bot_hammer_items %u outside 1..n_items",
                       p->bot_hammer_items);
    }
    if (p->n_shill_groups > 0) {
        if (p->n_shill_groups > p->n_items / 2)
            return BAD("n_shill_groups %u: at most n_items / 2 = %u (targets "
                       "are distinct items of the less popular half)",
                       p->n_shill_groups, p->n_items / 2);
        if (p->shill_size < 1)
            return BAD("shill_size must be >= 1");
        if (p->shill_fillers >= SYNTH_SESSION_CAP)
            return BAD("shill_fillers %u: at most %d", p->shill_fillers,
                       SYNTH_SESSION_CAP - 1);
        if (!prob_ok(p->shill_purchase_prob))
            return BAD("shill_purchase_prob %g outside 0..1",
                       p->shill_purchase_prob);
    }
    n_adv =
        (uint64_t)p->n_bots +
        (p->n_shill_groups ? (uint64_t)p->n_shill_groups * p->shill_size : 0);
    if ((uint64_t)p->n_users + n_adv > SYNTH_MAX_ACCOUNTS)
        return BAD("%llu accounts in all: at most %u",
                   (unsigned long long)(p->n_users + n_adv),
                   SYNTH_MAX_ACCOUNTS);
    return ADVREC_OK;
#undef BAD
}

/* ---- building the world ---- */

/*
 * Vose's alias method over Zipf weights, so a popularity draw is O(1).
 * Returns ADVREC_ERR_NOMEM if the temporary worklists cannot be allocated.
 */
static advrec_err_t build_alias(advrec_synth_t *synth)
{
    uint32_t n = synth->params.n_items, n_small = 0, n_large = 0;
    uint32_t *small = malloc(sizeof(*small) * n);
    uint32_t *large = malloc(sizeof(*large) * n);
    double *w = synth->alias_prob, sum = 0.0;

    if (!small || !large) {
        free(small);
        free(large);
        return ADVREC_ERR_NOMEM;
    }
    for (uint32_t r = 0; r < n; r++) {
        w[r] = pow((double)r + 1.0, -synth->params.zipf_exponent);
        sum += w[r];
    }
    for (uint32_t r = 0; r < n; r++) {
        w[r] = w[r] * n / sum;
        synth->alias_other[r] = r;
        if (w[r] < 1.0)
            small[n_small++] = r;
        else
            large[n_large++] = r;
    }
    while (n_small > 0 && n_large > 0) {
        uint32_t s = small[--n_small], l = large[n_large - 1];
        synth->alias_other[s] = l;
        w[l] -= 1.0 - w[s];
        if (w[l] < 1.0) {
            n_large--;
            small[n_small++] = l;
        }
    }
    /* What is left is 1 up to rounding. */
    while (n_large > 0)
        w[large[--n_large]] = 1.0;
    while (n_small > 0)
        w[small[--n_small]] = 1.0;
    free(small);
    free(large);
    return ADVREC_OK;
}

static uint32_t draw_popular(advrec_synth_t *synth)
{
    uint32_t r = rng_below(synth, synth->params.n_items);
    return rng_unit(synth) < synth->alias_prob[r] ? r : synth->alias_other[r];
}

/*
 * Latent tastes: category centroids ~ N(0, I); an item is its category's
 * centroid plus noise; a user is a mix of one to three favourite categories
 * plus noise. Vectors are scaled by 1/sqrt(d) so scores stay O(1) whatever d.
 */
static void build_tastes(advrec_synth_t *synth, float *centroids)
{
    const advrec_synth_params_t *p = &synth->params;
    uint32_t d = p->n_factors;
    double scale = 1.0 / sqrt(sqrt((double)d));

    for (uint32_t c = 0; c < p->n_categories * d; c++)
        centroids[c] = (float)rng_normal(synth);
    for (uint32_t i = 0; i < p->n_items; i++) {
        const float *cen = centroids + rng_below(synth, p->n_categories) * d;
        float *q = synth->item_vec + (size_t)i * d;
        for (uint32_t k = 0; k < d; k++)
            q[k] =
                (float)((cen[k] + SYNTH_CAT_NOISE * rng_normal(synth)) * scale);
        synth->item_price[i] =
            (float)(round(SYNTH_PRICE_MEDIAN * exp(0.8 * rng_normal(synth)) *
                          100.0) /
                    100.0);
        if (synth->item_price[i] < 0.5f)
            synth->item_price[i] = 0.5f;
    }
    for (uint32_t u = 0; u < p->n_users; u++) {
        float *pu = synth->user_vec + (size_t)u * d;
        uint32_t n_fav = 1 + rng_below(synth, 3);
        for (uint32_t k = 0; k < d; k++)
            pu[k] = (float)(SYNTH_USER_NOISE * rng_normal(synth) * scale);
        for (uint32_t f = 0; f < n_fav; f++) {
            const float *cen =
                centroids + rng_below(synth, p->n_categories) * d;
            for (uint32_t k = 0; k < d; k++)
                pu[k] += (float)(cen[k] * scale / n_fav);
        }
    }
}

static int64_t s_to_ms(double s)
{
    return (int64_t)llround(s * 1000.0);
}

/* A gap of at least 1 ms, so one account's events are strictly ordered. */
static int64_t gap_ms(double s)
{
    int64_t ms = s_to_ms(s);
    return ms < 1 ? 1 : ms;
}

/*
 * Expected span of the stream in seconds, used to place the attack window
 * where the stream will actually be: normal traffic is a rate, adversarial
 * traffic a fixed number of events.
 */
static double expected_span_s(const advrec_synth_params_t *p)
{
    double per_session = p->session_clicks_mean * (1.0 + p->purchase_prob);
    double cycle =
        p->session_clicks_mean * p->click_gap_mean_s + p->session_gap_mean_s;
    /* E[1 / activity] of the log-normal is exp(sd^2); new users are active
       for half the span on average. */
    double rate = p->n_users * per_session / cycle *
                  exp(SYNTH_ACTIVITY_SD * SYNTH_ACTIVITY_SD) *
                  (1.0 - p->new_user_frac / 2);
    double adv = (double)p->n_bots * p->bot_events +
                 (double)p->n_shill_groups * p->shill_size *
                     (1.0 + p->shill_fillers + p->shill_purchase_prob);
    double span;

    if (p->max_events == 0)
        return 86400.0;
    span = ((double)p->max_events - adv) / rate;
    return span < 3600.0 ? 3600.0 : span;
}

static uint16_t draw_session_clicks(advrec_synth_t *synth)
{
    double mean = synth->params.session_clicks_mean;
    double k;

    if (mean <= 1.0)
        return 1;
    /* 1 + geometric with mean (mean - 1). */
    k = floor(log1p(-rng_unit(synth)) / log1p(-1.0 / mean));
    if (!(k < SYNTH_SESSION_CAP - 1))
        k = SYNTH_SESSION_CAP - 1;
    return (uint16_t)(1 + (int)k);
}

static void init_accounts(advrec_synth_t *synth)
{
    const advrec_synth_params_t *p = &synth->params;
    int64_t start_ms = p->start_s * 1000;
    double span = expected_span_s(p);
    double win_start = p->attack_start_s >= 0 ? p->attack_start_s : 0.4 * span;
    double win_len = p->attack_len_s > 0 ? p->attack_len_s : 0.2 * span;
    uint32_t *perm = synth->heap; /* scratch until heap_build */
    uint32_t a = 0;

    synth->attack_start_ms = start_ms + s_to_ms(win_start);
    synth->attack_end_ms = start_ms + s_to_ms(win_start + win_len);

    rng_permutation(synth, perm, synth->acct_by_ext, synth->n_accounts);
    for (uint32_t i = 0; i < synth->n_accounts; i++) {
        synth->accounts[i].ext = perm[i];
        synth->accounts[i].pending_item = SYNTH_NONE;
    }

    for (; a < p->n_users; a++) {
        synth_account_t *acc = &synth->accounts[a];
        double first;
        acc->kind = ADVREC_SYNTH_NORMAL;
        acc->gap_scale = (float)exp(SYNTH_ACTIVITY_SD * rng_normal(synth) -
                                    SYNTH_ACTIVITY_SD * SYNTH_ACTIVITY_SD / 2);
        if (rng_unit(synth) < p->new_user_frac)
            first = rng_unit(synth) * span;
        else
            first = rng_exp(synth, p->session_gap_mean_s * acc->gap_scale);
        acc->next_ms = start_ms + s_to_ms(first);
    }

    for (uint32_t b = 0; b < p->n_bots; b++, a++) {
        synth_account_t *acc = &synth->accounts[a];
        double active = p->bot_events / p->bot_rate;
        double slack = win_len > active ? win_len - active : 0.0;
        acc->kind = ADVREC_SYNTH_BOT;
        acc->aux = b;
        acc->session_no = 1;
        acc->next_ms = synth->attack_start_ms +
                       s_to_ms(rng_unit(synth) * slack + rng_unit(synth));
        synth->bot_hammers[b] = rng_unit(synth) < p->bot_hammer_frac;
        for (uint32_t k = 0; k < p->bot_hammer_items; k++)
            synth->bot_items[(size_t)b * p->bot_hammer_items + k] =
                rng_below(synth, p->n_items);
    }

    for (uint32_t g = 0; g < p->n_shill_groups; g++) {
        uint32_t half = p->n_items / 2, target;
        double burst = win_len * SYNTH_SHILL_BURST;
        double burst_start = rng_unit(synth) * (win_len - burst);
        /* Distinct targets from the less popular half of the catalogue. */
        for (;;) {
            uint32_t h;
            target = p->n_items - half + rng_below(synth, half);
            for (h = 0; h < g && synth->group_target[h] != target; h++)
                ;
            if (h == g)
                break;
        }
        synth->group_target[g] = target;
        for (uint32_t m = 0; m < p->shill_size; m++, a++) {
            synth_account_t *acc = &synth->accounts[a];
            acc->kind = ADVREC_SYNTH_SHILL;
            acc->aux = g;
            acc->clicks_left = (uint16_t)(1 + p->shill_fillers);
            acc->target_pos = (uint16_t)rng_below(synth, 1 + p->shill_fillers);
            acc->next_ms = synth->attack_start_ms +
                           s_to_ms(burst_start + rng_unit(synth) * burst);
        }
    }
}

advrec_synth_t *advrec_synth_new(const advrec_synth_params_t *params,
                                 char *errstr, size_t errstr_size)
{
    advrec_synth_t *synth = NULL;
    float *centroids = NULL;
    uint64_t seed;
    size_t n_items, n_users, d;

    if (params_check(params, errstr, errstr_size) != ADVREC_OK)
        return NULL;
    synth = calloc(1, sizeof(*synth));
    if (!synth)
        goto nomem;
    synth->params = *params;
    seed = params->seed;
    for (int i = 0; i < 4; i++)
        synth->rng[i] = splitmix64(&seed);

    n_items = params->n_items;
    n_users = params->n_users;
    d = params->n_factors;
    synth->n_accounts =
        params->n_users + params->n_bots +
        (params->n_shill_groups ? params->n_shill_groups * params->shill_size
                                : 0);
    synth->accounts = calloc(synth->n_accounts, sizeof(*synth->accounts));
    synth->acct_by_ext = malloc(sizeof(uint32_t) * synth->n_accounts);
    synth->heap = malloc(sizeof(uint32_t) * synth->n_accounts);
    synth->item_ext = malloc(sizeof(uint32_t) * n_items);
    synth->item_by_ext = malloc(sizeof(uint32_t) * n_items);
    synth->item_price = malloc(sizeof(float) * n_items);
    synth->item_vec = malloc(sizeof(float) * n_items * d);
    synth->user_vec = malloc(sizeof(float) * n_users * d);
    synth->alias_prob = malloc(sizeof(double) * n_items);
    synth->alias_other = malloc(sizeof(uint32_t) * n_items);
    synth->bot_items =
        malloc(sizeof(uint32_t) *
               ((size_t)params->n_bots * params->bot_hammer_items + 1));
    synth->bot_hammers = calloc(params->n_bots + 1, 1);
    synth->group_target =
        malloc(sizeof(uint32_t) * (params->n_shill_groups + 1));
    synth->cand_score = malloc(sizeof(float) * params->n_candidates);
    synth->cand_item = malloc(sizeof(uint32_t) * params->n_candidates);
    centroids = malloc(sizeof(float) * params->n_categories * d);
    if (!synth->accounts || !synth->acct_by_ext || !synth->heap ||
        !synth->item_ext || !synth->item_by_ext || !synth->item_price ||
        !synth->item_vec || !synth->user_vec || !synth->alias_prob ||
        !synth->alias_other || !synth->bot_items || !synth->bot_hammers ||
        !synth->group_target || !synth->cand_score || !synth->cand_item ||
        !centroids)
        goto nomem;

    rng_permutation(synth, synth->item_ext, synth->item_by_ext,
                    params->n_items);
    if (build_alias(synth) != ADVREC_OK)
        goto nomem;
    build_tastes(synth, centroids);
    free(centroids);
    centroids = NULL;
    init_accounts(synth);
    heap_build(synth);
    synth->stats.attack_start_ms = synth->attack_start_ms;
    synth->stats.attack_end_ms = synth->attack_end_ms;
    synth->last_kind = ADVREC_SYNTH_NORMAL;
    return synth;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "synth: out of memory for %u users, %u items, %u factors",
                  params->n_users, params->n_items, params->n_factors);
    free(centroids);
    advrec_synth_destroy(synth);
    return NULL;
}

void advrec_synth_destroy(advrec_synth_t *synth)
{
    if (!synth)
        return;
    free(synth->accounts);
    free(synth->acct_by_ext);
    free(synth->heap);
    free(synth->item_ext);
    free(synth->item_by_ext);
    free(synth->item_price);
    free(synth->item_vec);
    free(synth->user_vec);
    free(synth->alias_prob);
    free(synth->alias_other);
    free(synth->bot_items);
    free(synth->bot_hammers);
    free(synth->group_target);
    free(synth->cand_score);
    free(synth->cand_item);
    free(synth);
}

/* ---- one event ---- */

/*
 * Taste x popularity: n_candidates items drawn by popularity, one of them
 * chosen by a softmax of the user's taste score. O(n_candidates * d).
 */
static uint32_t pick_item(advrec_synth_t *synth, uint32_t user)
{
    const advrec_synth_params_t *p = &synth->params;
    uint32_t d = p->n_factors, n = p->n_candidates;
    const float *pu = synth->user_vec + (size_t)user * d;
    float best = -INFINITY;
    double sum = 0.0, x;

    for (uint32_t c = 0; c < n; c++) {
        uint32_t i = draw_popular(synth);
        const float *q = synth->item_vec + (size_t)i * d;
        float dot = 0.0f;
        for (uint32_t k = 0; k < d; k++)
            dot += pu[k] * q[k];
        synth->cand_item[c] = i;
        synth->cand_score[c] = (float)(p->taste_strength * dot);
        if (synth->cand_score[c] > best)
            best = synth->cand_score[c];
    }
    for (uint32_t c = 0; c < n; c++) {
        synth->cand_score[c] = expf(synth->cand_score[c] - best);
        sum += synth->cand_score[c];
    }
    x = rng_unit(synth) * sum;
    for (uint32_t c = 0; c < n; c++) {
        x -= synth->cand_score[c];
        if (x < 0.0)
            return synth->cand_item[c];
    }
    return synth->cand_item[n - 1];
}

static void fill_event(advrec_synth_t *synth, const synth_account_t *acc,
                       advrec_event_type_t type, uint32_t item,
                       advrec_event_t *ev)
{
    advrec_event_clear(ev);
    ev->type = type;
    ev->ts_ms = acc->next_ms;
    snprintf(ev->user_id, sizeof(ev->user_id), "u%u", acc->ext);
    snprintf(ev->item_id, sizeof(ev->item_id), "i%u", synth->item_ext[item]);
    snprintf(ev->session_id, sizeof(ev->session_id), "s%u-%u", acc->ext,
             acc->session_no);
    if (type == ADVREC_EVENT_PURCHASE) {
        int qty = 1;
        while (qty < 10 && rng_unit(synth) < SYNTH_QTY_EXTRA_P)
            qty++;
        ev->quantity = qty;
        ev->price = synth->item_price[item];
        memcpy(ev->currency, "EUR", 4);
        snprintf(ev->order_id, sizeof(ev->order_id), "o%llu",
                 (unsigned long long)++synth->n_purchases_total);
        synth->stats.purchases++;
    } else {
        synth->stats.clicks++;
    }
}

/* A normal user: sessions of clicks, a click sometimes followed by buying. */
static int step_normal(advrec_synth_t *synth, uint32_t a, advrec_event_t *ev)
{
    const advrec_synth_params_t *p = &synth->params;
    synth_account_t *acc = &synth->accounts[a];

    if (acc->pending_item != SYNTH_NONE) {
        fill_event(synth, acc, ADVREC_EVENT_PURCHASE, acc->pending_item, ev);
        acc->pending_item = SYNTH_NONE;
    } else {
        uint32_t item;
        if (acc->clicks_left == 0) {
            acc->session_no++;
            acc->clicks_left = draw_session_clicks(synth);
        }
        item = pick_item(synth, a);
        fill_event(synth, acc, ADVREC_EVENT_CLICK, item, ev);
        acc->clicks_left--;
        if (rng_unit(synth) < p->purchase_prob)
            acc->pending_item = item;
    }
    if (acc->pending_item != SYNTH_NONE || acc->clicks_left > 0)
        acc->next_ms += gap_ms(rng_exp(synth, p->click_gap_mean_s));
    else
        acc->next_ms +=
            gap_ms(rng_exp(synth, p->session_gap_mean_s * acc->gap_scale));
    return 1;
}

/* A bot: clicks on a near-constant clock; returns 0 when it is done. */
static int step_bot(advrec_synth_t *synth, uint32_t a, advrec_event_t *ev)
{
    const advrec_synth_params_t *p = &synth->params;
    synth_account_t *acc = &synth->accounts[a];
    uint32_t b = acc->aux, item;
    double gap;

    if (synth->bot_hammers[b])
        item = synth->bot_items[(size_t)b * p->bot_hammer_items +
                                acc->n_events % p->bot_hammer_items];
    else
        item = rng_below(synth, p->n_items);
    fill_event(synth, acc, ADVREC_EVENT_CLICK, item, ev);
    synth->stats.bot_events++;
    gap = (1.0 + p->bot_jitter * (2.0 * rng_unit(synth) - 1.0)) / p->bot_rate;
    acc->next_ms += gap_ms(gap);
    return acc->n_events + 1 < p->bot_events;
}

/*
 * A shilling account: one session of 1 + shill_fillers clicks, one of them
 * on the group's target, perhaps followed by buying the target; then gone.
 */
static int step_shill(advrec_synth_t *synth, uint32_t a, advrec_event_t *ev)
{
    const advrec_synth_params_t *p = &synth->params;
    synth_account_t *acc = &synth->accounts[a];
    uint32_t target = synth->group_target[acc->aux];

    if (acc->session_no == 0)
        acc->session_no = 1;
    if (acc->pending_item != SYNTH_NONE) {
        fill_event(synth, acc, ADVREC_EVENT_PURCHASE, acc->pending_item, ev);
        acc->pending_item = SYNTH_NONE;
    } else {
        uint32_t k = p->shill_fillers + 1u - acc->clicks_left, item = target;
        if (k != acc->target_pos) {
            uint32_t pool = p->n_items;
            if (p->shill_popular_fillers) {
                pool = p->n_items / 20;
                if (pool < 10)
                    pool = p->n_items < 10 ? p->n_items : 10;
            }
            /* Any filler but the target (n_items >= 2 guarantees one). */
            do
                item = rng_below(synth, pool);
            while (item == target && pool > 1);
            if (item == target)
                item = (target + 1) % p->n_items;
        }
        fill_event(synth, acc, ADVREC_EVENT_CLICK, item, ev);
        acc->clicks_left--;
        if (item == target && rng_unit(synth) < p->shill_purchase_prob)
            acc->pending_item = target;
    }
    synth->stats.shill_events++;
    acc->next_ms += gap_ms(rng_exp(synth, p->click_gap_mean_s));
    return acc->clicks_left > 0 || acc->pending_item != SYNTH_NONE;
}

advrec_err_t advrec_synth_next(advrec_synth_t *synth, advrec_event_t *ev)
{
    uint32_t a;
    synth_account_t *acc;
    int again = 0;

    if ((synth->params.max_events &&
         synth->stats.events >= synth->params.max_events) ||
        synth->heap_len == 0)
        return ADVREC_ERR_EOF;
    a = synth->heap[0];
    acc = &synth->accounts[a];
    switch ((advrec_synth_kind_t)acc->kind) {
    case ADVREC_SYNTH_BOT:
        again = step_bot(synth, a, ev);
        break;
    case ADVREC_SYNTH_SHILL:
        again = step_shill(synth, a, ev);
        break;
    default:
        again = step_normal(synth, a, ev);
        break;
    }
    acc->n_events++;
    synth->stats.events++;
    synth->last_kind = (advrec_synth_kind_t)acc->kind;
    if (again)
        heap_sift_down(synth, 0);
    else
        heap_pop(synth);
    return ADVREC_OK;
}

advrec_synth_kind_t advrec_synth_last_kind(const advrec_synth_t *synth)
{
    return synth->last_kind;
}

void advrec_synth_stats(const advrec_synth_t *synth,
                        advrec_synth_stats_t *stats)
{
    *stats = synth->stats;
}

/* ---- ground truth ---- */

/* Parses "<prefix><decimal>" with no sign, spaces or leading zeros. */
static int parse_id(const char *id, char prefix, uint32_t limit, uint32_t *out)
{
    uint64_t v = 0;
    const char *c;

    if (!id || id[0] != prefix)
        return 0;
    c = id + 1;
    if (!*c || (c[0] == '0' && c[1]))
        return 0;
    for (; *c; c++) {
        if (*c < '0' || *c > '9')
            return 0;
        v = v * 10 + (uint64_t)(*c - '0');
        if (v >= limit)
            return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

advrec_err_t advrec_synth_truth_user(const advrec_synth_t *synth,
                                     const char *user_id,
                                     advrec_synth_kind_t *kind,
                                     char *target_item, size_t target_size)
{
    uint32_t ext;
    const synth_account_t *acc;

    *kind = ADVREC_SYNTH_NORMAL;
    if (target_item && target_size)
        target_item[0] = '\0';
    if (!user_id || !parse_id(user_id, 'u', synth->n_accounts, &ext))
        return ADVREC_ERR_NOT_FOUND;
    acc = &synth->accounts[synth->acct_by_ext[ext]];
    *kind = (advrec_synth_kind_t)acc->kind;
    if (acc->kind == ADVREC_SYNTH_SHILL && target_item && target_size)
        snprintf(target_item, target_size, "i%u",
                 synth->item_ext[synth->group_target[acc->aux]]);
    return ADVREC_OK;
}

static int is_bot_target(const advrec_synth_t *synth, uint32_t rank,
                         int active_only)
{
    const advrec_synth_params_t *p = &synth->params;

    for (uint32_t b = 0; b < p->n_bots; b++) {
        if (!synth->bot_hammers[b])
            continue;
        if (active_only && synth->accounts[p->n_users + b].n_events == 0)
            continue;
        for (uint32_t k = 0; k < p->bot_hammer_items; k++)
            if (synth->bot_items[(size_t)b * p->bot_hammer_items + k] == rank)
                return 1;
    }
    return 0;
}

advrec_err_t advrec_synth_truth_item(const advrec_synth_t *synth,
                                     const char *item_id,
                                     advrec_synth_kind_t *kind)
{
    uint32_t ext, rank;

    *kind = ADVREC_SYNTH_NORMAL;
    if (!item_id || !parse_id(item_id, 'i', synth->params.n_items, &ext))
        return ADVREC_ERR_NOT_FOUND;
    rank = synth->item_by_ext[ext];
    for (uint32_t g = 0; g < synth->params.n_shill_groups; g++)
        if (synth->group_target[g] == rank) {
            *kind = ADVREC_SYNTH_SHILL_TARGET;
            return ADVREC_OK;
        }
    if (is_bot_target(synth, rank, 0))
        *kind = ADVREC_SYNTH_BOT_TARGET;
    return ADVREC_OK;
}

const char *advrec_synth_kind_name(advrec_synth_kind_t kind)
{
    switch (kind) {
    case ADVREC_SYNTH_NORMAL:
        return "normal";
    case ADVREC_SYNTH_BOT:
        return "bot";
    case ADVREC_SYNTH_SHILL:
        return "shill";
    case ADVREC_SYNTH_SHILL_TARGET:
        return "shill-target";
    case ADVREC_SYNTH_BOT_TARGET:
        return "bot-target";
    }
    return "?";
}

/* Whether bot b's hammered items belong in the labels. */
static int bot_listed(const advrec_synth_t *synth, uint32_t b, int active_only)
{
    const synth_account_t *acc = &synth->accounts[synth->params.n_users + b];

    return synth->bot_hammers[b] && (!active_only || acc->n_events > 0);
}

/* Whether any member of shilling group g has acted. */
static int group_active(const advrec_synth_t *synth, uint32_t g)
{
    const advrec_synth_params_t *p = &synth->params;
    uint32_t first = p->n_users + p->n_bots + g * p->shill_size;

    for (uint32_t m = 0; m < p->shill_size; m++)
        if (synth->accounts[first + m].n_events > 0)
            return 1;
    return 0;
}

advrec_err_t advrec_synth_write_labels(const advrec_synth_t *synth, FILE *fp,
                                       int active_only, char *errstr,
                                       size_t errstr_size)
{
    const advrec_synth_params_t *p = &synth->params;
    uint32_t n_bot_items = p->n_bots * p->bot_hammer_items;

    fprintf(fp, "entity_type,entity_id,kind\n");
    for (uint32_t a = p->n_users; a < synth->n_accounts; a++) {
        const synth_account_t *acc = &synth->accounts[a];
        if (active_only && acc->n_events == 0)
            continue;
        fprintf(fp, "user,u%u,%s\n", acc->ext,
                advrec_synth_kind_name((advrec_synth_kind_t)acc->kind));
    }
    for (uint32_t g = 0; g < p->n_shill_groups; g++) {
        if (active_only && !group_active(synth, g))
            continue;
        fprintf(fp, "item,i%u,shill-target\n",
                synth->item_ext[synth->group_target[g]]);
    }
    /* Each hammered item once, unless it is listed as a shill target. */
    for (uint32_t k = 0; k < n_bot_items; k++) {
        uint32_t rank = synth->bot_items[k], j;
        int listed = 0;
        if (!bot_listed(synth, k / p->bot_hammer_items, active_only))
            continue;
        for (j = 0; j < k && !listed; j++)
            listed = synth->bot_items[j] == rank &&
                     bot_listed(synth, j / p->bot_hammer_items, active_only);
        for (uint32_t g = 0; g < p->n_shill_groups && !listed; g++)
            listed = synth->group_target[g] == rank &&
                     (!active_only || group_active(synth, g));
        if (!listed)
            fprintf(fp, "item,i%u,bot-target\n", synth->item_ext[rank]);
    }
    if (fflush(fp) != 0 || ferror(fp))
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "synth: writing labels: %s", strerror(errno));
    return ADVREC_OK;
}
