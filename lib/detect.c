/*
 * detect.c - the detectors' judgement: owns the per-user and per-item
 * detector rows (plain arrays of small structs indexed by dense index,
 * grown by doubling), their dirty lists, the global baseline, the group
 * ring and the queue of transitions not yet taken; scores each event. The
 * rows' byte layout (encoding, restoring, the dirty rows handed to a
 * store) is detect_row.c; detect_int.h is what the two share.
 *
 * One concern, the judgement of an event, kept in one file on purpose:
 * each detector here (rhythm and rate, the filler profile, the item
 * surges, the group test over the ring) is a reason bit of the same
 * noisy-OR score, reads and writes the same user and item rows, and its
 * flag goes through the same levels and transition queue; none has state
 * or rules of its own that another file could own without exposing the
 * rows, the score and the queue to it. The parts that are separable are
 * separate: the byte layout (detect_row.c) and the store keys
 * (detect_store.c).
 */
#include "detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect_int.h"
#include "state.h"

#define GAP_ALPHA       (1.0 / 16.0) /* weight of a new log-gap in the EWMA */
#define GROUP_SPAN      2.0 /* item windows a group's touches may spread over */
#define GROUP_MAX       1024 /* most members one group flag counts */
#define PROBATION_YOUNG 1.5  /* decayed young touches that start probation */
#define GROUP_WARMUP    4.0 /* young periods watched before groups are judged */
#define PROFILE_MATURE  10.0 /* mean events per item before profiles count */
#define PROFILE_TYPICAL_MIN \
    1000                 /* profile events in G before a profile is judged */
#define SHOP_SHARE  0.01 /* share of purchases that makes the stream a shop */
#define SHOP_EVENTS 1000 /* ... once it has this many events */

/* Strength of each user reason in the noisy-OR score, by bit. */
static const struct {
    uint32_t bit;
    const char *name;
    double strength;
} reasons[ADVREC_DETECT_REASONS_CNT] = {
    {ADVREC_DETECT_REGULAR_GAPS, "regular-gaps", 0.7},
    {ADVREC_DETECT_HIGH_RATE, "high-rate", 0.5},
    {ADVREC_DETECT_NO_PURCHASES, "no-purchases", 0.3},
    {ADVREC_DETECT_LOW_DIVERSITY, "low-diversity", 0.3},
    {ADVREC_DETECT_PUSHES_FLAGGED, "pushes-flagged-item", 0.7},
    {ADVREC_DETECT_YOUNG_SURGE, "young-accounts-surge", 0},
    {ADVREC_DETECT_FLAGGED_SURGE, "flagged-users-surge", 0},
    {ADVREC_DETECT_SHILL_GROUP, "shill-group", 0.8},
    {ADVREC_DETECT_GROUP_TARGET, "shill-group-target", 0},
    {ADVREC_DETECT_FILLER_PROFILE, "filler-profile", 0.7},
};

/* The relations advrec_detect_new() and _set_params() require. */
static advrec_err_t check_params(const advrec_detect_params_t *params,
                                 char *errstr, size_t errstr_size)
{
    if (!(params->rate_window_s > 0) || !(params->item_window_s > 0) ||
        !(params->clear_score <= params->flag_score) ||
        !(params->flag_score <= params->quarantine_score) ||
        !(params->weight_flagged >= 0 && params->weight_flagged <= 1) ||
        !(params->weight_probation >= 0 && params->weight_probation <= 1) ||
        !(params->profile_window_s > 0) || !(params->profile_fit_max >= 0) ||
        !(params->profile_burst_min >= 0))
        return advrec_seterr(
            ADVREC_ERR_CONFIG, errstr, errstr_size,
            "detect: need window times > 0, anomaly.clear.score <= "
            "anomaly.flag.score <= anomaly.quarantine.score "
            "(%g, %g, %g), 0 <= anomaly.weight.flagged, "
            "anomaly.weight.probation <= 1 (%g) and "
            "anomaly.profile.fit.max, anomaly.profile.burst.min >= 0",
            params->clear_score, params->flag_score, params->quarantine_score,
            (double)params->weight_flagged);
    return ADVREC_OK;
}

advrec_detect_t *advrec_detect_new(const advrec_detect_params_t *params,
                                   char *errstr, size_t errstr_size)
{
    advrec_detect_t *d;

    if (check_params(params, errstr, errstr_size))
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "detect: out of memory");
        return NULL;
    }
    d->p = *params;
    d->ring = calloc(ADVREC_DETECT_GROUP_RING, sizeof(*d->ring));
    d->members = malloc(GROUP_MAX * sizeof(*d->members));
    if (!d->ring || !d->members) {
        advrec_detect_destroy(d);
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "detect: out of memory");
        return NULL;
    }
    return d;
}

advrec_err_t advrec_detect_set_params(advrec_detect_t *d,
                                      const advrec_detect_params_t *params,
                                      char *errstr, size_t errstr_size)
{
    advrec_detect_params_t p = *params;
    advrec_err_t err;

    p.enable = d->p.enable;
    p.rate_window_s = d->p.rate_window_s;
    p.item_window_s = d->p.item_window_s;
    if ((err = check_params(&p, errstr, errstr_size)))
        return err;
    d->p = p;
    return ADVREC_OK;
}

static void rows_free(rows_t *r)
{
    free(r->rows);
    free(r->dirty);
    free(r->dirty_list);
}

void advrec_detect_destroy(advrec_detect_t *d)
{
    if (!d)
        return;
    rows_free(&d->users);
    rows_free(&d->items);
    free(d->queue);
    free(d->ring);
    free(d->members);
    free(d);
}

/* Makes row idx exist (zeroed), doubling the arrays; 0 on no memory, with
 * the arrays as they were. */
int advrec_detect__rows_reserve(rows_t *r, uint32_t idx, size_t size)
{
    uint32_t cap = r->cap ? r->cap : 1024;
    void *rows;
    uint8_t *dirty;
    uint32_t *list;

    if (idx < r->n)
        return 1;
    if (idx >= r->cap) {
        while (cap <= idx)
            cap *= 2;
        rows = realloc(r->rows, (size_t)cap * size);
        if (!rows)
            return 0;
        r->rows = rows;
        dirty = realloc(r->dirty, cap);
        if (!dirty)
            return 0;
        r->dirty = dirty;
        list = realloc(r->dirty_list, (size_t)cap * sizeof(*list));
        if (!list)
            return 0;
        r->dirty_list = list;
        r->cap = cap;
    }
    memset((char *)r->rows + (size_t)r->n * size, 0,
           (size_t)(idx + 1 - r->n) * size);
    memset(r->dirty + r->n, 0, idx + 1 - r->n);
    r->n = idx + 1;
    return 1;
}

static void rows_touch(rows_t *r, uint32_t idx)
{
    if (r->dirty[idx])
        return;
    r->dirty[idx] = 1;
    r->dirty_list[r->n_dirty++] = idx;
}

static user_row_t *user_row(const advrec_detect_t *d, uint32_t u)
{
    return u < d->users.n ? (user_row_t *)d->users.rows + u : NULL;
}

static item_row_t *item_row(const advrec_detect_t *d, uint32_t i)
{
    return i < d->items.n ? (item_row_t *)d->items.rows + i : NULL;
}

/* exp(-dt/tau) for a gap in ms; time running backwards (events of several
 * partitions interleave) decays nothing. */
static double decay(int64_t last_ts, int64_t ts, double tau_s)
{
    if (last_ts == 0 || ts <= last_ts)
        return 1.0;
    return exp(-(double)(ts - last_ts) / (tau_s * 1000.0));
}

/* 64-bit mix of an item index (splitmix64 finaliser) for the bitmap. */
static unsigned bit_of(uint32_t item)
{
    uint64_t z = (uint64_t)item + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (unsigned)((z ^ (z >> 31)) & 63u);
}

/* Distinct items in a window by linear counting over 64 bits. */
static double distinct_estimate(uint64_t bits)
{
    int zeros = 64 - __builtin_popcountll(bits);
    if (zeros == 0)
        zeros = 1; /* saturated: at least this many */
    return -64.0 * log((double)zeros / 64.0);
}

static void enqueue(advrec_detect_t *d, const advrec_detect_flag_t *flag)
{
    if (d->n_queue == d->queue_cap) {
        size_t cap = d->queue_cap ? d->queue_cap * 2 : 64;
        advrec_detect_flag_t *q = realloc(d->queue, cap * sizeof(*q));
        if (!q)
            return; /* the state still changes; only the record is lost */
        d->queue = q;
        d->queue_cap = cap;
    }
    d->queue[d->n_queue++] = *flag;
}

static void evidence(advrec_detect_flag_t *f, const char *key, int64_t count)
{
    if (f->n_evidence < ADVREC_DETECT_MAX_EVIDENCE) {
        f->evidence[f->n_evidence].key = key;
        f->evidence[f->n_evidence++].count = count;
    }
}

/* Noisy-OR of the strengths of the reasons in why. */
static double score_of(uint32_t why)
{
    double keep = 1.0;

    for (int b = 0; b < ADVREC_DETECT_REASONS_CNT; b++)
        if (why & reasons[b].bit)
            keep *= 1.0 - reasons[b].strength;
    return 1.0 - keep;
}

/* FNV-1a of an external id; never 0 (0 means unknown). */
static uint64_t id_hash(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 0x100000001b3ull;
    return h ? h : 1;
}

static double gap_logstd(const user_row_t *r)
{
    return sqrt(r->gap_var > 0 ? r->gap_var : 0);
}

/* The level a score calls for, with hysteresis: a flag stays until the
 * score falls below clear_score. */
static int level_for(const advrec_detect_t *d, double score, int level,
                     int max_level)
{
    int want = score >= d->p.quarantine_score && max_level >= 2 ? 2
               : score >= d->p.flag_score                       ? 1
                                                                : 0;
    if (want > level)
        return want;
    if (level > 0 && score < d->p.clear_score)
        return 0;
    return level;
}

static advrec_anomaly_action_t action_of(int level)
{
    return level == 2   ? ADVREC_ANOMALY_QUARANTINED
           : level == 1 ? ADVREC_ANOMALY_FLAGGED
                        : ADVREC_ANOMALY_CLEARED;
}

static int in_hist(uint32_t item, const uint32_t *hist, uint32_t hist_len)
{
    for (uint32_t h = 0; h < hist_len; h++)
        if ((hist[h] & ADVREC_HIST_ITEM) == item)
            return 1;
    return 0;
}

/* Whether item, or any item in the ring, is flagged for a young-account
 * surge (an item hammered by flagged bots says nothing about the young
 * shoppers who also click it). */
static int pushes_flagged(const advrec_detect_t *d, uint32_t item,
                          const uint32_t *hist, uint32_t hist_len)
{
    const item_row_t *ir = item_row(d, item);

    if (d->n_surging == 0)
        return 0; /* the common case: no history scan */
    if (ir && item_surging(ir))
        return 1;
    for (uint32_t h = 0; h < hist_len; h++) {
        ir = item_row(d, hist[h] & ADVREC_HIST_ITEM);
        if (ir && item_surging(ir))
            return 1;
    }
    return 0;
}

/* |mean deviation| of the window's items' log-popularity from the
 * catalogue's mean. */
static double profile_fit(const user_row_t *r)
{
    return r->prof_n ? fabs(r->prof_sum / r->prof_n) : INFINITY;
}

/*
 * Adds an event on item to user r's filler profile. An average or random
 * attack draws its fillers uniformly from the catalogue, so the mean of its
 * items' log(1 + events) is the catalogue's own mean: the profile fits the
 * item means too well. A person picks by taste, and taste follows
 * popularity: genuine users sit 1.5 to 4 above it (docs/ANOMALY.md). The
 * popularity is the item's before this event; the profile restarts after
 * anomaly.profile.window.s of event time.
 */
static void profile_add(advrec_detect_t *d, user_row_t *r, uint32_t item,
                        int64_t ts)
{
    const item_row_t *ir = item_row(d, item);
    double mean = d->global.items_seen
                      ? d->global.logpop_sum / (double)d->global.items_seen
                      : 0;
    double x;

    /* Until the catalogue's items have PROFILE_MATURE events on average
     * popularity has not formed yet: everything fits its mean. */
    if (d->p.profile_min_events == 0 ||
        (double)d->global.events <
            PROFILE_MATURE * (double)d->global.items_seen)
        return;
    if (r->prof_start_ts == 0 || ts < r->prof_start_ts ||
        (double)(ts - r->prof_start_ts) > d->p.profile_window_s * 1000.0) {
        r->prof_start_ts = ts;
        r->prof_last_ts = ts;
        r->prof_sum = 0;
        r->prof_n = 0;
    }
    if (ts > r->prof_last_ts)
        r->prof_last_ts = ts;
    x = log1p((double)ir->events) - mean;
    r->prof_sum += x;
    r->prof_n++;
    /* A flagged account's events would pull the typical deviation
     * towards its own. */
    if (r->level == 0) {
        d->global.dev_sum += x;
        d->global.dev_n++;
    }
}

/* Whether r's window is a filler profile: enough events, a fit below
 * profile_fit_max, and (profile_burst_min > 0) at least that many events
 * per hour of the window (a window shorter than a minute counts as one). */
static int profile_fits(const advrec_detect_t *d, const user_row_t *r)
{
    const advrec_detect_params_t *p = &d->p;
    double hours, typical;

    /* G from too few events (just after the catalogue matured, or after
     * an upgrade from rows without it) could be an attack's own. */
    if (p->profile_min_events == 0 || d->global.dev_n < PROFILE_TYPICAL_MIN ||
        r->prof_n < p->profile_min_events)
        return 0;
    /* Relative to how far the stream's typical event sits from the
     * catalogue's mean (MovieLens about 1.2, FilmTrust about 3; where it is
     * not positive, as on a catalogue of mostly once-seen items, popularity
     * tells nothing and no profile fits), and narrowing as 1/sqrt(events)
     * as a uniform sample's mean does: a long genuine history drifts close
     * to the mean, a long uniform one much closer. */
    typical = d->global.dev_sum / (double)d->global.dev_n;
    if (!(profile_fit(r) <
          p->profile_fit_max * typical *
              sqrt((double)p->profile_min_events / (double)r->prof_n)))
        return 0;
    hours = (double)(r->prof_last_ts - r->prof_start_ts) / 3600000.0;
    if (hours < 1.0 / 60.0)
        hours = 1.0 / 60.0;
    return p->profile_burst_min <= 0 ||
           (double)r->prof_n / hours >= p->profile_burst_min;
}

/* Updates user u's statistics with ev and re-judges them; *young says
 * whether the account was young at this event. */
static void observe_user(advrec_detect_t *d, uint32_t u, uint32_t item,
                         const advrec_event_t *ev, const uint32_t *hist,
                         uint32_t hist_len, int *young, int *newcomer)
{
    user_row_t *r = (user_row_t *)d->users.rows + u;
    const advrec_detect_params_t *p = &d->p;
    int64_t ts = ev->ts_ms;
    uint32_t why = 0;
    double score, logstd;
    int level;
    const item_row_t *ir;

    if (r->first_ts == 0 || ts < r->first_ts) {
        /* The earliest event seen, whatever order the two input topics
         * were read in. */
        if (r->first_ts == 0)
            r->div_ratio = -1;
        r->first_ts = ts;
    }
    /*
     * The rhythm is measured on clicks only: a user's clicks come in order
     * (one partition of one topic), while purchases arrive on another topic
     * in no fixed order relative to them. Mixing the two gave shoppers runs
     * of zero or missing gaps that looked machine-regular. A click at the
     * same millisecond as the previous one says nothing and is skipped.
     */
    if (ev->type == ADVREC_EVENT_CLICK && ts > r->last_click_ts) {
        if (r->last_click_ts != 0) {
            double x = log((double)(ts - r->last_click_ts) / 1000.0), dx;
            if (r->gaps == 0) {
                r->gap_mean = x;
            } else {
                dx = x - r->gap_mean;
                r->gap_mean += GAP_ALPHA * dx;
                r->gap_var =
                    (1 - GAP_ALPHA) * (r->gap_var + GAP_ALPHA * dx * dx);
            }
            r->gaps++;
        }
        r->last_click_ts = ts;
    }
    r->rate = r->rate * decay(r->last_ts, ts, p->rate_window_s) + 1.0;
    /* A newcomer is young, or still in its first session (no gap longer
     * than young_s yet): a shilling account with many fillers is older
     * than young_s when it reaches the target, but has never left. */
    if (r->last_ts != 0 && ts - r->last_ts > (int64_t)(p->young_s * 1000.0))
        r->broken = 1;
    if (ts > r->last_ts)
        r->last_ts = ts;
    r->events++;
    if (ev->type == ADVREC_EVENT_PURCHASE)
        r->purchases++;
    else
        r->clicks++;
    r->div_bits |= 1ull << bit_of(item);
    if (++r->div_n == DIV_WINDOW) {
        r->div_ratio = (float)(distinct_estimate(r->div_bits) / DIV_WINDOW);
        r->div_n = 0;
        r->div_bits = 0;
    }
    *young = (double)(ts - r->first_ts) < p->young_s * 1000.0;
    *newcomer = *young || !r->broken;
    profile_add(d, r, item, ts);

    logstd = gap_logstd(r);
    if (r->events >= p->min_events) {
        /* Judged on as many gaps as min.events asks events for. */
        if (r->gaps + 1 >= p->min_events && logstd < p->gap_logstd_max)
            why |= ADVREC_DETECT_REGULAR_GAPS;
        if (r->div_ratio >= 0 && r->div_ratio < p->diversity_min)
            why |= ADVREC_DETECT_LOW_DIVERSITY;
    }
    if (r->rate >= p->rate_max)
        why |= ADVREC_DETECT_HIGH_RATE;
    /* Where (almost) nobody buys (ratings, page views only) not buying
     * says nothing about a user. */
    if (r->clicks >= p->nopurchase_clicks && r->purchases == 0 &&
        d->global.shop)
        why |= ADVREC_DETECT_NO_PURCHASES;
    /* Shilling accounts are new: an established user's taste is not
     * judged by its shape (on MovieLens that kept 9 genuine users). */
    if (*newcomer && profile_fits(d, r))
        why |= ADVREC_DETECT_FILLER_PROFILE;
    if (*young && pushes_flagged(d, item, hist, hist_len))
        why |= ADVREC_DETECT_PUSHES_FLAGGED;
    /* Group membership stays: the group is an act, not a rate. A young
     * account touching a group's target joins it. */
    why |= r->reasons & ADVREC_DETECT_SHILL_GROUP;
    ir = item_row(d, item);
    /* A newcomer touching a group target joins the group if it appeared
     * with it (not before its first member, give or take young_s): an
     * established user's long first session is not the attack. */
    if (*newcomer && ir && ir->level &&
        (ir->reasons & ADVREC_DETECT_GROUP_TARGET) &&
        (double)r->first_ts >= (double)ir->group_first_ts - p->young_s * 1000.0)
        why |= ADVREC_DETECT_SHILL_GROUP;
    r->id_hash = id_hash(ev->user_id);
    score = score_of(why);

    level = level_for(d, score, r->level, 2);
    if (level != r->level) {
        advrec_detect_flag_t f = {
            .entity_type = ADVREC_ENTITY_USER,
            .idx = u,
            .action = action_of(level),
            .score = score,
            .reasons = level ? why : r->reasons,
            .ts_ms = ts,
        };
        evidence(&f, "events", r->events);
        evidence(&f, "clicks", r->clicks);
        evidence(&f, "purchases", r->purchases);
        evidence(&f, "rate_window", (int64_t)llround(r->rate));
        evidence(&f, "gap_logstd_milli", (int64_t)llround(logstd * 1000.0));
        if (r->div_ratio >= 0)
            evidence(&f, "diversity_pct",
                     (int64_t)llround((double)r->div_ratio * 100.0));
        evidence(&f, "age_s", (ts - r->first_ts) / 1000);
        if ((why & ADVREC_DETECT_SHILL_GROUP) && ir && ir->group_size)
            evidence(&f, "group_size", ir->group_size);
        if (why & ADVREC_DETECT_FILLER_PROFILE) {
            evidence(&f, "profile_events", r->prof_n);
            evidence(&f, "profile_fit_milli",
                     (int64_t)llround(profile_fit(r) * 1000.0));
        }
        enqueue(d, &f);
        r->level = (uint8_t)level;
    }
    if (level)
        r->reasons |= why; /* a flag keeps every reason it has shown */
    else
        r->reasons = why;
    r->score = (float)score;
    rows_touch(&d->users, u);
}

/* Updates item i's recent counts with an event from an account that is
 * young and/or flagged, and re-judges it. */
static void observe_item(advrec_detect_t *d, uint32_t i, int64_t ts, int young,
                         int flagged, int fresh)
{
    item_row_t *r = (item_row_t *)d->items.rows + i;
    const advrec_detect_params_t *p = &d->p;
    double k = decay(r->last_ts, ts, p->item_window_s);
    double g = decay(d->global.last_ts, ts, p->item_window_s);
    double share = 0, base, lift;
    uint32_t why = 0;
    int level, suspect = young || flagged, was = item_surging(r);

    r->total = r->total * k + 1.0;
    r->suspect = r->suspect * k + suspect;
    r->young = r->young * k + young;
    r->fresh = r->fresh * k + fresh;
    r->flagged = r->flagged * k + flagged;
    if (ts > r->last_ts)
        r->last_ts = ts;
    /* The catalogue's mean log-popularity, kept as a sum over the items
     * seen: one log per event. */
    if (r->events == 0)
        d->global.items_seen++;
    d->global.logpop_sum += log((r->events + 2.0) / (r->events + 1.0));
    r->events++;
    d->global.total = d->global.total * g + 1.0;
    d->global.suspect = d->global.suspect * g + suspect;
    if (ts > d->global.last_ts)
        d->global.last_ts = ts;
    if (d->global.first_ts == 0 || ts < d->global.first_ts)
        d->global.first_ts = ts;
    d->global.dirty = 1;

    base = d->global.suspect / d->global.total;
    share = r->suspect / r->total;
    /* Relative to the baseline in odds: where most traffic is young (a
     * new shop, a short stream) a share cannot double, but its odds can. */
    lift = (r->suspect / (r->total - r->suspect + 1.0)) /
           (base / (1.0 - base + 1e-9) + 1e-9);
    /* While most of all traffic is young (a cold start: every account is
     * new to the detector) youth says nothing, and items are not judged. */
    if (base < 0.5 && r->suspect >= p->item_min_events &&
        share >= p->item_share && lift >= p->item_surge_factor) {
        if (r->young >= r->flagged)
            why |= ADVREC_DETECT_YOUNG_SURGE;
        else
            why |= ADVREC_DETECT_FLAGGED_SURGE;
    }
    /* Hysteresis: a surging item stays flagged until its share of
     * suspect events falls below half the threshold. */
    if (why)
        level = 1;
    else if (r->level && share < p->item_share / 2)
        level = 0;
    else
        level = r->level;
    if (level != r->level) {
        advrec_detect_flag_t f = {
            .entity_type = ADVREC_ENTITY_ITEM,
            .idx = i,
            .action = action_of(level),
            .score = share,
            .reasons = level ? why : r->reasons,
            .ts_ms = ts,
        };
        evidence(&f, "events", r->events);
        evidence(&f, "recent_events", (int64_t)llround(r->total));
        evidence(&f, "recent_young", (int64_t)llround(r->young));
        evidence(&f, "recent_flagged", (int64_t)llround(r->flagged));
        evidence(&f, "baseline_share_pct", (int64_t)llround(base * 100.0));
        evidence(&f, "odds_lift_pct", (int64_t)llround(lift * 100.0));
        enqueue(d, &f);
        r->level = (uint8_t)level;
    }
    if (level)
        r->reasons |= why;
    else
        r->reasons = why;
    r->score = (float)share;
    d->n_surging = d->n_surging - (uint32_t)was + (uint32_t)item_surging(r);
    rows_touch(&d->items, i);
}

/* Whether the detector has watched long enough for youth to mean
 * something (before that every account is young). */
static int warm(const advrec_detect_t *d, int64_t ts)
{
    return d->global.first_ts != 0 && (double)(ts - d->global.first_ts) >=
                                          GROUP_WARMUP * d->p.young_s * 1000.0;
}

/* Remembers a newcomer's first touch of item in the group ring. */
static void ring_push(advrec_detect_t *d, uint32_t u, uint32_t item, int64_t ts)
{
    size_t slot = (size_t)(d->ring_n % ADVREC_DETECT_GROUP_RING);

    d->ring[slot].user_hash = user_row(d, u)->id_hash;
    d->ring[slot].user = u;
    d->ring[slot].item = item;
    d->ring[slot].ts = ts;
    d->ring_n++;
    d->ring_dirty[slot / RING_CHUNK] = 1;
}

/* Puts user u into the group pushing an item (size accounts, touches over
 * span_s): quarantines it at once, even if it has left. */
static void join_group(advrec_detect_t *d, uint32_t u, int64_t ts,
                       uint32_t size, int64_t span_s)
{
    user_row_t *r = user_row(d, u);
    uint32_t why;
    double score;
    int level;

    if (r->reasons & ADVREC_DETECT_SHILL_GROUP)
        return;
    why = r->reasons | ADVREC_DETECT_SHILL_GROUP;
    score = score_of(why);
    level = level_for(d, score, r->level, 2);
    if (level != r->level) {
        advrec_detect_flag_t f = {
            .entity_type = ADVREC_ENTITY_USER,
            .idx = u,
            .action = action_of(level),
            .score = score,
            .reasons = why,
            .ts_ms = ts,
        };
        evidence(&f, "events", r->events);
        evidence(&f, "clicks", r->clicks);
        evidence(&f, "purchases", r->purchases);
        evidence(&f, "age_s", (r->last_ts - r->first_ts) / 1000);
        evidence(&f, "group_size", size);
        evidence(&f, "group_span_s", span_s);
        enqueue(d, &f);
        r->level = (uint8_t)level;
    }
    r->reasons = why;
    r->score = (float)score;
    rows_touch(&d->users, u);
}

/* The accounts among m found in the ring since horizon, scaled to the
 * whole span up to ts when the ring's oldest touch is younger than
 * horizon (it was overwritten sooner): a steady rate over the span. */
static double group_estimate(const advrec_detect_t *d, uint32_t m,
                             int64_t horizon, int64_t ts)
{
    int64_t oldest;

    if (d->ring_n <= ADVREC_DETECT_GROUP_RING)
        return m; /* nothing overwritten yet */
    oldest = d->ring[d->ring_n % ADVREC_DETECT_GROUP_RING].ts;
    if (oldest <= horizon || ts <= oldest)
        return m;
    return (double)m * (double)(ts - horizon) / (double)(ts - oldest);
}

/*
 * Whether item i, surging, is pushed by a group: at least group_min_size
 * distinct newcomers touched it first within GROUP_SPAN item windows
 * (those still in the ring, whose slot still holds them). If so the item
 * is flagged as a group target and every member joins the group. Cost: a
 * pass over the ring, only for an item that surges and is not yet a
 * target, so rarely.
 */
static void group_check(advrec_detect_t *d, uint32_t i, int64_t ts)
{
    item_row_t *r = item_row(d, i);
    const advrec_detect_params_t *p = &d->p;
    uint64_t n = d->ring_n < ADVREC_DETECT_GROUP_RING
                     ? d->ring_n
                     : ADVREC_DETECT_GROUP_RING;
    int64_t horizon = ts - (int64_t)(GROUP_SPAN * p->item_window_s * 1000.0);
    int64_t first = ts;
    double base, share, lift;
    uint32_t m = 0;

    if (p->group_min_size == 0 || (r->reasons & ADVREC_DETECT_GROUP_TARGET) ||
        r->fresh < (double)p->group_min_size)
        return;
    base = d->global.suspect / d->global.total;
    share = r->fresh / r->total;
    lift = (r->suspect / (r->total - r->suspect + 1.0)) /
           (base / (1.0 - base + 1e-9) + 1e-9);
    /* No baseline test here: a large attack makes most of all traffic
     * young itself. Instead the detector must have watched for
     * GROUP_WARMUP young periods (before that every account is young),
     * and the group must make most of the item's traffic. */
    if (!warm(d, ts) || share < p->item_share)
        return;
    for (uint64_t k = 0; k < n && m < GROUP_MAX; k++) {
        const touch_t *t = &d->ring[k];
        const user_row_t *ur;
        uint32_t x;
        if (t->item != i || t->ts < horizon)
            continue;
        ur = user_row(d, t->user);
        if (!ur || ur->id_hash != t->user_hash)
            continue; /* the slot went to another user */
        for (x = 0; x < m && d->members[x] != t->user; x++)
            ;
        if (x < m)
            continue;
        d->members[m++] = t->user;
        if (t->ts < first)
            first = t->ts;
    }
    /* A group makes most of its target's traffic ever: pushing an item
     * that is popular already gains little, and young shoppers crowding a
     * popular item are no group. m counts the horizon only if the ring
     * reaches back that far; when newcomers' first touches flooded it
     * sooner (an attack with hundreds of fillers per account: 16,384
     * touches in a few minutes) m is the count of the ring's last
     * minutes, and the horizon's is estimated at that rate. */
    if (m < p->group_min_size ||
        2.0 * group_estimate(d, m, horizon, ts) < (double)r->events)
        return;
    {
        advrec_detect_flag_t f = {
            .entity_type = ADVREC_ENTITY_ITEM,
            .idx = i,
            .action = ADVREC_ANOMALY_FLAGGED,
            .score = share,
            .reasons = r->reasons | ADVREC_DETECT_GROUP_TARGET,
            .ts_ms = ts,
        };
        evidence(&f, "events", r->events);
        evidence(&f, "recent_events", (int64_t)llround(r->total));
        evidence(&f, "recent_young", (int64_t)llround(r->young));
        evidence(&f, "baseline_share_pct", (int64_t)llround(base * 100.0));
        evidence(&f, "odds_lift_pct", (int64_t)llround(lift * 100.0));
        evidence(&f, "group_size", m);
        evidence(&f, "group_span_s", (ts - first) / 1000);
        enqueue(d, &f);
    }
    d->n_surging -= (uint32_t)item_surging(r);
    r->level = 1;
    r->reasons |= ADVREC_DETECT_GROUP_TARGET;
    d->n_surging += (uint32_t)item_surging(r);
    r->group_size = m;
    r->group_first_ts = first;
    rows_touch(&d->items, i);
    for (uint32_t x = 0; x < m; x++)
        join_group(d, d->members[x], ts, m, (ts - first) / 1000);
}

float advrec_detect_observe(advrec_detect_t *d, uint32_t user, uint32_t item,
                            const advrec_event_t *ev, const uint32_t *hist,
                            uint32_t hist_len)
{
    int young = 0, newcomer = 0, flagged, first_touch, fresh_touch;
    const user_row_t *ur;
    const item_row_t *ir;

    if (!d->p.enable)
        return 1.0f;
    if (!advrec_detect__rows_reserve(&d->users, user, sizeof(user_row_t)) ||
        !advrec_detect__rows_reserve(&d->items, item, sizeof(item_row_t)))
        return 1.0f;
    d->global.events++;
    d->global.purchases += ev->type == ADVREC_EVENT_PURCHASE;
    /* A shop, once seen, stays one: an attack's own clicks must not dilute
     * the purchases below the share and switch no-purchases off. */
    if (!d->global.shop && d->global.events >= SHOP_EVENTS &&
        (double)d->global.purchases >= SHOP_SHARE * (double)d->global.events)
        d->global.shop = 1;
    d->global.dirty = 1;
    observe_user(d, user, item, ev, hist, hist_len, &young, &newcomer);
    ur = user_row(d, user);
    /* Only a user flagged for its own behaviour makes an item suspect:
     * counting users flagged for pushing a surging item would feed back. */
    flagged = ur->level > 0 && (ur->reasons & ~(ADVREC_DETECT_PUSHES_FLAGGED |
                                                ADVREC_DETECT_SHILL_GROUP |
                                                ADVREC_DETECT_FILLER_PROFILE));
    /* A young account counts once per item while the item is in its
     * recent history: a surge of young accounts is many accounts, not one
     * young bot hammering the item. */
    first_touch = !in_hist(item, hist, hist_len);
    /* The group ring and its count take newcomers not flagged for their
     * own behaviour (a bot is one long first session). */
    fresh_touch = first_touch && newcomer && !flagged;
    observe_item(d, item, ev->ts_ms, young && first_touch, flagged,
                 fresh_touch);
    if (fresh_touch) {
        ring_push(d, user, item, ev->ts_ms);
        group_check(d, item, ev->ts_ms);
    }
    ir = item_row(d, item);
    if (ur->level == 2)
        return 0.0f;
    /* A flagged user, or a young account pushing a surging item. */
    if (ur->level == 1 || (ir->level && young))
        return d->p.weight_flagged;
    /* Probation: a young account on an item whose recent traffic is
     * mostly young accounts (at least PROBATION_YOUNG of them) trains
     * little until the group is confirmed or the crowd turns out to be
     * normal: what a group trains before it is caught stays in the model,
     * and this is most of it. Not while every account is young. */
    if (young && ir->young >= PROBATION_YOUNG &&
        ir->suspect >= d->p.item_share * ir->total && warm(d, ev->ts_ms))
        return d->p.weight_probation;
    return 1.0f;
}

size_t advrec_detect_pending(const advrec_detect_t *d)
{
    return d->n_queue;
}

void advrec_detect_take(advrec_detect_t *d, advrec_detect_flag_cb *cb,
                        void *opaque)
{
    for (size_t q = 0; q < d->n_queue; q++)
        cb(opaque, &d->queue[q]);
    d->n_queue = 0;
}

void advrec_detect_drop_pending(advrec_detect_t *d)
{
    d->n_queue = 0;
}

size_t advrec_detect_reason_names(uint32_t why, const char **names, size_t max)
{
    size_t n = 0;

    for (int b = 0; b < ADVREC_DETECT_REASONS_CNT && n < max; b++)
        if (why & reasons[b].bit)
            names[n++] = reasons[b].name;
    return n;
}

int advrec_detect_user_level(const advrec_detect_t *d, uint32_t u)
{
    const user_row_t *r = user_row(d, u);
    return r ? r->level : 0;
}

int advrec_detect_item_level(const advrec_detect_t *d, uint32_t i)
{
    const item_row_t *r = item_row(d, i);
    return r ? r->level : 0;
}

double advrec_detect_user_score(const advrec_detect_t *d, uint32_t u)
{
    const user_row_t *r = user_row(d, u);
    return r ? r->score : 0;
}

double advrec_detect_item_score(const advrec_detect_t *d, uint32_t i)
{
    const item_row_t *r = item_row(d, i);
    return r ? r->score : 0;
}

size_t advrec_detect_user_features(const advrec_detect_t *d, uint32_t u,
                                   double *out, size_t max)
{
    const user_row_t *r = user_row(d, u);
    double f[ADVREC_DETECT_USER_FEATURES];
    size_t n = 0;

    if (!r || r->first_ts == 0)
        return 0;
    f[0] = r->events;
    f[1] = r->clicks;
    f[2] = r->purchases;
    f[3] = r->rate;
    f[4] = gap_logstd(r);
    f[5] = r->div_ratio;
    f[6] = (double)(r->last_ts - r->first_ts) / 1000.0;
    for (; n < max && n < ADVREC_DETECT_USER_FEATURES; n++)
        out[n] = f[n];
    return n;
}

int advrec_detect_user_dirty(const advrec_detect_t *d, uint32_t idx)
{
    return idx < d->users.n && d->users.dirty[idx];
}

void advrec_detect_forget_user(advrec_detect_t *d, uint32_t idx)
{
    if (idx < d->users.n && !d->users.dirty[idx])
        memset((user_row_t *)d->users.rows + idx, 0, sizeof(user_row_t));
}

void advrec_detect_drop_user(advrec_detect_t *d, uint32_t idx)
{
    if (idx < d->users.n)
        memset((user_row_t *)d->users.rows + idx, 0, sizeof(user_row_t));
}
