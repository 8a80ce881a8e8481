/*
 * engine.c - owns the state, the popularity table, the stale-user list,
 * the ranker (lib/rank: lists are built there) and the training scratch.
 */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "popularity.h"
#include "rank.h"
#include "rng.h"
/* Redraws of a negative that the user already has in their history. */
#define NEG_REDRAWS 3

struct advrec_engine_s {
    advrec_engine_params_t p;
    advrec_state_t *state;
    advrec_popularity_t *pop;
    float *scratch; /* advrec_apr_scratch_floats(k) */
    uint64_t version;

    /* Users with stale_since != 0, oldest first: marks append with the
     * caller's clock, so the list is in stale_since order as long as that
     * clock does not go back; refresh() sorts it again when it did. */
    uint32_t *stale;
    size_t n_stale, stale_cap;

    advrec_rank_t *rank;

    /* Refresh scratch, grown on demand (never per event). */
    uint32_t *due;
    int64_t *due_since; /* their stale_since, restored if ranking fails */
    size_t due_cap;
    struct stale_key_s *keys; /* sorting the stale list (rarely needed) */
    size_t keys_cap;

    advrec_engine_judge_cb *judge; /* the detectors, or NULL */
    void *judge_opaque;
    advrec_engine_loader_cb *loader; /* reads evicted users back, or NULL */
    void *loader_opaque;
    advrec_engine_room_cb *make_room; /* deletes a user when full, or NULL */
    void *room_opaque;
    int64_t watermark; /* the latest event time applied */

    /* For the metrics (advrec_engine_take_loss, _refreshed_since). */
    double loss_sum; /* clean BPR loss of the steps since the last take */
    uint64_t loss_n;
    uint64_t negatives;    /* negatives trained, ever (the budget's effect) */
    size_t n_refreshed;    /* due_since entries of the last refresh */
    size_t n_ann, n_exact; /* of its lists: from the index, scored exactly */
};

/* A stale user and its stale_since, for sorting oldest first (ties in
 * list order). */
typedef struct stale_key_s {
    int64_t since;
    uint32_t pos, user;
} stale_key_t;

advrec_engine_t *advrec_engine_new(const advrec_engine_params_t *params,
                                   char *errstr, size_t errstr_size)
{
    advrec_rank_params_t rp;
    advrec_engine_t *e;

    if (advrec_apr_params_check(&params->apr, errstr, errstr_size))
        return NULL;
    if (params->recs_n < 1 || params->negatives < 1 ||
        (uint32_t)params->apr.k != params->state.k) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "engine: recs.n=%u, model.negatives=%u must be >= 1",
                      params->recs_n, params->negatives);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    e->p = *params;
    e->state = advrec_state_new(&params->state, errstr, errstr_size);
    if (!e->state)
        goto fail;
    /* Cold users need at most recs_n plus what they may exclude. */
    e->pop = advrec_popularity_new(
        params->popularity_halflife_s * 1000.0,
        (size_t)params->recs_n + params->state.history, errstr, errstr_size);
    if (!e->pop)
        goto fail;
    rp.recs_n = params->recs_n;
    rp.exclude = params->exclude;
    rp.cold_events = params->cold_events;
    rp.use_bias = params->apr.use_bias;
    rp.retrieval = params->retrieval;
    rp.auto_items = params->retrieval_auto_items;
    rp.ann = params->ann;
    e->rank = advrec_rank_new(&rp, errstr, errstr_size);
    if (!e->rank)
        goto fail;
    e->scratch =
        malloc(advrec_apr_scratch_floats(params->apr.k) * sizeof(float));
    if (!e->scratch)
        goto nomem;
    return e;

nomem:
    advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                  "engine: out of memory");
fail:
    advrec_engine_destroy(e);
    return NULL;
}

void advrec_engine_destroy(advrec_engine_t *e)
{
    if (!e)
        return;
    advrec_state_destroy(e->state);
    advrec_popularity_destroy(e->pop);
    advrec_rank_destroy(e->rank);
    free(e->scratch);
    free(e->stale);
    free(e->due);
    free(e->due_since);
    free(e->keys);
    free(e);
}

advrec_state_t *advrec_engine_state(advrec_engine_t *e)
{
    return e->state;
}

size_t advrec_engine_stale_count(const advrec_engine_t *e)
{
    return e->n_stale;
}

const uint32_t *advrec_engine_stale_users(const advrec_engine_t *e, size_t *n)
{
    *n = e->n_stale;
    return e->stale;
}

uint64_t advrec_engine_version(const advrec_engine_t *e)
{
    return e->version;
}

void advrec_engine_set_version(advrec_engine_t *e, uint64_t version)
{
    e->version = version;
}

void advrec_engine_set_judge(advrec_engine_t *e, advrec_engine_judge_cb *cb,
                             void *opaque)
{
    e->judge = cb;
    e->judge_opaque = opaque;
}

void advrec_engine_set_loader(advrec_engine_t *e, advrec_engine_loader_cb *cb,
                              void *opaque)
{
    e->loader = cb;
    e->loader_opaque = opaque;
}

void advrec_engine_set_room(advrec_engine_t *e, advrec_engine_room_cb *cb,
                            void *opaque)
{
    e->make_room = cb;
    e->room_opaque = opaque;
}

uint64_t advrec_engine_negatives(const advrec_engine_t *e)
{
    return e->negatives;
}

int64_t advrec_engine_watermark(const advrec_engine_t *e)
{
    return e->watermark;
}

void advrec_engine_forget_user(advrec_engine_t *e, uint32_t user)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(e->state);

    if (user >= advrec_state_users(e->state)->n || !ux->stale_since[user])
        return;
    /* Rare (a deleted user is seldom stale): a scan keeps the order. */
    for (size_t s = 0; s < e->n_stale; s++)
        if (e->stale[s] == user) {
            memmove(e->stale + s, e->stale + s + 1,
                    (e->n_stale - s - 1) * sizeof(*e->stale));
            e->n_stale--;
            break;
        }
    ux->stale_since[user] = 0;
}

void advrec_engine_set_refresh(advrec_engine_t *e, int64_t debounce_ms,
                               int64_t max_staleness_ms)
{
    e->p.debounce_ms = debounce_ms;
    e->p.max_staleness_ms = max_staleness_ms;
}

/* Asks the judge for user u's event on item i: the factor of its weight. */
static float judge(advrec_engine_t *e, const advrec_event_t *ev, uint32_t u,
                   uint32_t i)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(e->state);
    const uint32_t *ring = ux->hist + (size_t)u * e->p.state.history;
    uint32_t n = ux->hist_len[u];

    /* The ring as it lies in memory: order does not matter to the judge. */
    return e->judge(e->judge_opaque, ev, u, i, ring, n);
}

advrec_popularity_t *advrec_engine_popularity(advrec_engine_t *e)
{
    return e->pop;
}

/* A view of row idx of rows for the model; items carry a bias when on. */
static advrec_apr_row_t row_of(advrec_rows_t *rows, uint32_t idx, int with_bias)
{
    advrec_apr_row_t r = {
        .w = rows->w + (size_t)idx * rows->k,
        .acc = rows->acc + idx,
        .bias = with_bias ? rows->bias + idx : NULL,
        .bias_acc = with_bias ? rows->bias_acc + idx : NULL,
        .updates = rows->updates + idx,
    };
    return r;
}

/* Interns id in the user or item table, initialising a new row's factors
 * deterministically from the id. */
static advrec_err_t resolve(advrec_engine_t *e, int items, const char *id,
                            uint32_t *idx, char *errstr, size_t errstr_size)
{
    int created = 0;
    advrec_err_t err;
    advrec_apr_row_t row;

    if (items) {
        err = advrec_state_item(e->state, id, 1, idx, &created, errstr,
                                errstr_size);
    } else {
        /* A user not in memory may be stored: read back before it is
         * taken for new (with a memory budget). */
        err = advrec_state_user(e->state, id, 0, idx, NULL, NULL, 0);
        if (err == ADVREC_ERR_NOT_FOUND && e->loader)
            err = e->loader(e->loader_opaque, id, idx, errstr, errstr_size);
        /* A new user and a full table: the least recently active user
         * makes room, when the owner has a way to delete one. */
        if (err == ADVREC_ERR_NOT_FOUND && e->make_room &&
            advrec_state_users_live(e->state) >= e->p.state.max_users &&
            (err = e->make_room(e->room_opaque, errstr, errstr_size)) == 0)
            err = ADVREC_ERR_NOT_FOUND;
        if (err == ADVREC_ERR_NOT_FOUND)
            err = advrec_state_user(e->state, id, 1, idx, &created, errstr,
                                    errstr_size);
        if (!err)
            advrec_state_user_active(e->state, *idx);
    }
    if (err || !created)
        return err;
    row = items ? row_of(advrec_state_items(e->state), *idx, e->p.apr.use_bias)
                : row_of(advrec_state_users(e->state), *idx, 0);
    advrec_apr_row_init(&e->p.apr, items ? ADVREC_APR_ITEM : ADVREC_APR_USER,
                        id, &row);
    return ADVREC_OK;
}

/*
 * ADVREC_ERR_FULL (errstr naming id) when id is new and its table is full,
 * else ADVREC_OK. apply() checks both ids first, so a refused event leaves
 * nothing behind: without it a new user whose new item does not fit stayed
 * interned with no event.
 */
static advrec_err_t room_for(advrec_engine_t *e, int items, const char *id,
                             char *errstr, size_t errstr_size)
{
    const char *what = items ? "item" : "user";
    uint32_t n = items ? advrec_state_items(e->state)->n
                       : advrec_state_users_live(e->state);
    uint32_t max = items ? e->p.state.max_items : e->p.state.max_users;
    uint32_t idx;
    advrec_err_t err;

    if (n < max)
        return ADVREC_OK;
    err = items ? advrec_state_item(e->state, id, 0, &idx, NULL, NULL, 0)
                : advrec_state_user(e->state, id, 0, &idx, NULL, NULL, 0);
    /* A user out of memory may be stored (resolve reads it back, and
     * refuses a new one itself before anything else is interned), and a
     * full user table may make room (resolve). */
    if (err != ADVREC_ERR_NOT_FOUND || (!items && (e->loader || e->make_room)))
        return ADVREC_OK;
    return advrec_seterr(ADVREC_ERR_FULL, errstr, errstr_size,
                         "state: %s \"%s\" is new but the %s table is full "
                         "(%u); raise model.max.%ss",
                         what, id, what, n, what);
}

advrec_err_t advrec_engine_intern(advrec_engine_t *e, int items, const char *id,
                                  uint32_t *idx, char *errstr,
                                  size_t errstr_size)
{
    advrec_err_t err = room_for(e, items, id, errstr, errstr_size);

    return err ? err : resolve(e, items, id, idx, errstr, errstr_size);
}

static void mark_stale(advrec_engine_t *e, uint32_t u, int64_t now_ms)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(e->state);

    ux->last_mark[u] = now_ms;
    if (ux->stale_since[u])
        return;
    if (e->n_stale == e->stale_cap) {
        size_t cap = e->stale_cap ? e->stale_cap * 2 : 1024;
        uint32_t *s = realloc(e->stale, cap * sizeof(*s));
        if (!s)
            return; /* refreshed later: at the next event that fits */
        e->stale = s;
        e->stale_cap = cap;
    }
    /* 0 means fresh, so a clock that starts at 0 is nudged to 1. */
    ux->stale_since[u] = now_ms > 0 ? now_ms : 1;
    e->stale[e->n_stale++] = u;
}

void advrec_engine_mark_stale(advrec_engine_t *e, uint32_t user, int64_t now_ms)
{
    if (user < advrec_state_users(e->state)->n)
        mark_stale(e, user, now_ms);
}

/*
 * The negatives this event trains (model.negatives.budget): budget / rate,
 * between model.negatives.min and model.negatives, where rate is the
 * records per second of event time on the event's input partition since
 * its user's previous record there: (offset - prev offset) / (ts - prev
 * ts), from the record and the user's stored last position, so a replay,
 * a restart and a partition restored elsewhere from the changelog compute
 * the same count. Without a previous record on the same topic and
 * partition (a new user; the other input topic) there is no rate, and the
 * event trains model.negatives.min: a stream of new users must not cost
 * more per event than the budget allows. An event time not after the previous
 * one counts as 1 ms: a session's clicks are a few hundred records apart on a
 * fast partition, milliseconds, so the estimate needs the millisecond (a source
 * stamping whole seconds reads a user's burst within one as fast: fewer
 * negatives for it, never more).
 */
static uint32_t negatives_for(const advrec_engine_params_t *p, int seen,
                              const advrec_origin_t *prev, int64_t prev_ts,
                              const advrec_origin_t *origin, int64_t ts)
{
    uint32_t lo = p->negatives_min < 1 ? 1 : p->negatives_min;
    double rate, n;

    if (lo > p->negatives)
        lo = p->negatives;
    if (!(p->negatives_budget > 0))
        return p->negatives;
    if (!seen || prev->topic != origin->topic ||
        prev->partition != origin->partition || prev->offset >= origin->offset)
        return lo;
    rate = (double)(origin->offset - prev->offset) * 1000.0 /
           (double)(ts > prev_ts ? ts - prev_ts : 1);
    n = floor(p->negatives_budget / rate);
    return n >= p->negatives ? p->negatives : n <= lo ? lo : (uint32_t)n;
}

/* Trains model.replay.steps past interactions of user u (from the ring,
 * before the event at hand is pushed to it) with rng, the record's stream
 * after its own negatives: reproducible like the step itself. */
static void replay(advrec_engine_t *e, advrec_rng_t *rng, uint32_t u,
                   advrec_apr_row_t *ru, float weight)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(e->state);
    advrec_rows_t *items = advrec_state_items(e->state);
    const uint32_t *ring = ux->hist + (size_t)u * e->p.state.history;
    uint32_t len = ux->hist_len[u];

    for (uint32_t s = 0; s < e->p.replay_steps && len > 0; s++) {
        uint32_t entry = ring[advrec_rng_below(rng, len)];
        uint32_t p = entry & ADVREC_HIST_ITEM, j;
        float w = weight * (entry & ADVREC_HIST_PURCHASE ? e->p.weight_purchase
                                                         : e->p.weight_click);
        advrec_apr_row_t rp, rj;
        advrec_apr_result_t res;

        if (w <= 0 || p >= items->n)
            continue;
        j = advrec_apr_sample_negative(rng, items->n, p);
        for (int r = 0;
             r < NEG_REDRAWS && advrec_state_in_history(e->state, u, j, 0); r++)
            j = advrec_apr_sample_negative(rng, items->n, p);
        rp = row_of(items, p, e->p.apr.use_bias);
        rj = row_of(items, j, e->p.apr.use_bias);
        if (advrec_apr_step(&e->p.apr, ru, &rp, &rj, w, 1, e->scratch, &res) ==
            ADVREC_OK) {
            advrec_rows_touch(items, p);
            advrec_rows_touch(items, j);
            e->version++;
        }
    }
}

advrec_err_t advrec_engine_apply(advrec_engine_t *e, const advrec_event_t *ev,
                                 const char *topic,
                                 const advrec_origin_t *origin, float weight,
                                 int64_t now_ms, char *errstr,
                                 size_t errstr_size)
{
    int purchase = ev->type == ADVREC_EVENT_PURCHASE;
    advrec_rows_t *users, *items;
    advrec_user_ext_t *ux;
    uint32_t u, i;
    advrec_err_t err;
    advrec_origin_t prev;
    int64_t prev_ts;
    int seen;
    float w;

    /* The item first: a full user table may make room by deleting a
     * user, which must not happen for an event refused anyway. */
    if ((err = room_for(e, 1, ev->item_id, errstr, errstr_size)) ||
        (err = room_for(e, 0, ev->user_id, errstr, errstr_size)) ||
        (err = resolve(e, 0, ev->user_id, &u, errstr, errstr_size)) ||
        (err = resolve(e, 1, ev->item_id, &i, errstr, errstr_size)))
        return err;
    /* First what can fail, so a refused event changes no counter. */
    if ((err = advrec_state_remember(e->state, u, i, purchase, errstr,
                                     errstr_size)))
        return err;
    /* Row pointers only now: interning may have moved the tables. */
    users = advrec_state_users(e->state);
    items = advrec_state_items(e->state);
    ux = advrec_state_user_ext(e->state);

    seen = users->clicks[u] + users->purchases[u] > 0;
    prev = ux->last[u];
    prev_ts = ux->last_ts_ms[u];
    if (purchase) {
        users->purchases[u]++;
        items->purchases[i]++;
    } else {
        users->clicks[u]++;
        items->clicks[i]++;
    }
    ux->last[u] = *origin;
    ux->last_ts_ms[u] = ev->ts_ms;
    if (ev->ts_ms > e->watermark)
        e->watermark = ev->ts_ms;

    if (e->judge)
        weight *= judge(e, ev, u, i);
    /* Popularity (the cold-start lists) counts what the judge lets train,
     * as much as it does: quarantined traffic (0) feeds no list. */
    if (weight > 0)
        (void)advrec_popularity_add(
            e->pop, i, ev->ts_ms,
            weight * (purchase ? e->p.weight_purchase : e->p.weight_click));
    w = weight * (purchase ? e->p.weight_purchase : e->p.weight_click);
    if (w > 0 && items->n >= 2) {
        advrec_rng_t rng = advrec_rng_for_record(
            e->p.apr.seed, topic, origin->partition, origin->offset);
        advrec_apr_row_t ru = row_of(users, u, 0);
        advrec_apr_row_t ri = row_of(items, i, e->p.apr.use_bias);

        uint32_t negs =
            negatives_for(&e->p, seen, &prev, prev_ts, origin, ev->ts_ms);

        e->negatives += negs;
        for (uint32_t n = 0; n < negs; n++) {
            uint32_t j = advrec_apr_sample_negative(&rng, items->n, i);
            /* A negative the user has interacted with is a false negative;
             * redraw a few times (deterministically: same stream). */
            for (int r = 0;
                 r < NEG_REDRAWS && advrec_state_in_history(e->state, u, j, 0);
                 r++)
                j = advrec_apr_sample_negative(&rng, items->n, i);
            advrec_apr_row_t rj = row_of(items, j, e->p.apr.use_bias);
            advrec_apr_result_t res;
            if (advrec_apr_step(&e->p.apr, &ru, &ri, &rj, w, 1, e->scratch,
                                &res) == ADVREC_OK) {
                advrec_rows_touch(items, j);
                e->version++;
                e->loss_sum += res.loss;
                e->loss_n++;
            }
        }
        replay(e, &rng, u, &ru, weight);
        advrec_rank_trained(e->rank, i);
    }
    /* Remembered after training, so the positive is never its own
     * negative's "seen" check and the ring holds the newest item last. */
    advrec_state_push_history(e->state, u,
                              i | (purchase ? ADVREC_HIST_PURCHASE : 0));
    advrec_rows_touch(users, u);
    advrec_rows_touch(items, i);
    mark_stale(e, u, now_ms);
    return ADVREC_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const stale_key_t *x = a, *y = b;

    if (x->since != y->since)
        return x->since < y->since ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Puts the stale list back in stale_since order (ties keep their order)
 * when a mark or a failed refresh broke it: a caller's clock that went
 * back (a tool replaying event times), users put back after ranking found
 * no memory. A no-op scan otherwise. No memory for the keys leaves the
 * list as it is: refreshes then go in list order, nothing is lost.
 */
static void sort_stale(advrec_engine_t *e)
{
    const int64_t *since = advrec_state_user_ext(e->state)->stale_since;
    size_t s;

    for (s = 1; s < e->n_stale; s++)
        if (since[e->stale[s]] < since[e->stale[s - 1]])
            break;
    if (s >= e->n_stale)
        return;
    if (e->keys_cap < e->n_stale) {
        stale_key_t *k = realloc(e->keys, e->n_stale * sizeof(*k));
        if (!k)
            return;
        e->keys = k;
        e->keys_cap = e->n_stale;
    }
    for (s = 0; s < e->n_stale; s++) {
        e->keys[s].since = since[e->stale[s]];
        e->keys[s].pos = (uint32_t)s;
        e->keys[s].user = e->stale[s];
    }
    qsort(e->keys, e->n_stale, sizeof(*e->keys), key_cmp);
    for (s = 0; s < e->n_stale; s++)
        e->stale[s] = e->keys[s].user;
}

int64_t advrec_engine_oldest_stale(advrec_engine_t *e)
{
    if (e->n_stale == 0)
        return 0;
    sort_stale(e);
    return advrec_state_user_ext(e->state)->stale_since[e->stale[0]];
}

size_t advrec_engine_refresh(advrec_engine_t *e, int64_t now_ms, int force,
                             size_t max_users, advrec_engine_emit_cb *emit,
                             void *opaque)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(e->state);
    size_t n_due = 0, kept = 0;

    e->n_refreshed = 0;
    e->n_ann = e->n_exact = 0;
    if (e->n_stale == 0)
        return 0;
    if (e->due_cap < e->n_stale) {
        uint32_t *due = realloc(e->due, e->n_stale * sizeof(*due));
        int64_t *since;
        if (!due)
            return 0; /* tried again next round */
        e->due = due;
        since = realloc(e->due_since, e->n_stale * sizeof(*since));
        if (!since)
            return 0;
        e->due_since = since;
        e->due_cap = e->n_stale;
    }
    /* Oldest first: with the list in stale_since order, the first
     * max_users due users met are the ones waiting longest. */
    sort_stale(e);
    /* Split the stale list into due users and the rest, keeping order. */
    for (size_t s = 0; s < e->n_stale; s++) {
        uint32_t u = e->stale[s];
        int is_due = force || now_ms - ux->last_mark[u] >= e->p.debounce_ms ||
                     now_ms - ux->stale_since[u] >= e->p.max_staleness_ms;
        if (is_due && (max_users == 0 || n_due < max_users))
            e->due[n_due++] = u;
        else
            e->stale[kept++] = u;
    }
    e->n_stale = kept;
    if (n_due == 0)
        return 0;
    /* Fresh before their lists go out: the callback may mark them stale
     * again (a list that could not be produced). */
    for (size_t d = 0; d < n_due; d++) {
        e->due_since[d] = ux->stale_since[e->due[d]];
        ux->stale_since[e->due[d]] = 0;
    }
    if (advrec_rank_users(e->rank, e->state, e->pop, e->due, n_due, emit,
                          opaque)) {
        /* No memory for the scores: nothing was emitted. Put them back
         * (out of order: the next refresh sorts the list again); nothing
         * is lost, only delayed. */
        for (size_t d = 0; d < n_due; d++) {
            ux->stale_since[e->due[d]] = e->due_since[d];
            e->stale[e->n_stale++] = e->due[d];
        }
        return 0;
    }
    e->n_refreshed = n_due;
    e->n_ann = advrec_rank_ann_lists(e->rank);
    e->n_exact = advrec_rank_exact_lists(e->rank);
    return n_due;
}

void advrec_engine_take_loss(advrec_engine_t *e, double *sum, uint64_t *n)
{
    *sum = e->loss_sum;
    *n = e->loss_n;
    e->loss_sum = 0;
    e->loss_n = 0;
}

const int64_t *advrec_engine_refreshed_since(const advrec_engine_t *e,
                                             size_t *n)
{
    *n = e->n_refreshed;
    return e->due_since;
}

typedef struct hit_s {
    uint32_t item;
    int hit;
} hit_t;

static void hit_check(void *opaque, const advrec_rank_list_t *list)
{
    hit_t *h = opaque;

    for (uint32_t r = 0; r < list->n; r++)
        if (list->items[r] == h->item)
            h->hit = 1;
}

int advrec_engine_hit(advrec_engine_t *e, const char *user_id,
                      const char *item_id)
{
    hit_t h = {0, 0};
    uint32_t u;

    if (advrec_state_user(e->state, user_id, 0, &u, NULL, NULL, 0) ||
        advrec_state_item(e->state, item_id, 0, &h.item, NULL, NULL, 0) ||
        advrec_rank_users(e->rank, e->state, e->pop, &u, 1, hit_check, &h))
        return -1;
    return h.hit;
}

size_t advrec_engine_ann_lists(const advrec_engine_t *e)
{
    return e->n_ann;
}

size_t advrec_engine_exact_lists(const advrec_engine_t *e)
{
    return e->n_exact;
}

advrec_ann_t *advrec_engine_ann(advrec_engine_t *e)
{
    return advrec_rank_ann(e->rank);
}
