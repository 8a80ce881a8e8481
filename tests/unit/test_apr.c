/*
 * Unit tests for apr.c and rng.c: gradients against finite differences,
 * special cases that must reduce to plain BPR or FGSM bit for bit, replay
 * determinism, warm-up, weights, regularisation.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "apr.h"
#include "check.h"
#include "rng.h"

#define KMAX 64

/* A row with its own storage (tests only; the daemon's rows live in the
 * state store). */
typedef struct trow_s {
    float w[KMAX], acc[1], bias, bias_acc; /* row-wise Adagrad: one acc */
    uint32_t updates;
    advrec_apr_row_t row;
} trow_t;

static void trow_bind(trow_t *t, int with_bias)
{
    memset(t, 0, sizeof(*t));
    t->row.w = t->w;
    t->row.acc = t->acc;
    t->row.bias = with_bias ? &t->bias : NULL;
    t->row.bias_acc = with_bias ? &t->bias_acc : NULL;
    t->row.updates = &t->updates;
}

static void fill_uniform(advrec_rng_t *rng, float *v, int k, float scale)
{
    for (int n = 0; n < k; n++)
        v[n] = (advrec_rng_float(rng) * 2.0f - 1.0f) * scale;
}

/* The objective J of apr.h, in double, written independently of apr.c. */
static double ref_objective(const advrec_apr_params_t *params, const double *p,
                            const double *qi, const double *qj, double bi,
                            double bj, const float *du, const float *di,
                            const float *dj)
{
    int k = params->k;
    double x = bi - bj, xa = bi - bj, reg = 0.0, j;

    for (int n = 0; n < k; n++) {
        x += p[n] * (qi[n] - qj[n]);
        if (du)
            xa += (p[n] + du[n]) * ((qi[n] + di[n]) - (qj[n] + dj[n]));
        reg += p[n] * p[n] + qi[n] * qi[n] + qj[n] * qj[n];
    }
    if (params->use_bias)
        reg += bi * bi + bj * bj;
    j = log1p(exp(-x)) + (double)params->reg * reg;
    if (du)
        j += (double)params->adv_lambda * log1p(exp(-xa));
    return j;
}

/* Checks advrec_apr_objective_grad() against central differences of
 * ref_objective() for every coordinate of p, qi, qj, bi, bj. */
static void check_fd(const advrec_apr_params_t *params, advrec_rng_t *rng,
                     int with_delta)
{
    enum { K = 5 };
    float p[K], qi[K], qj[K], du[K], di[K], dj[K];
    float gp[K], gi[K], gj[K], gb[2], bi, bj, adv;
    double theta[3 * K + 2];
    const double h = 1e-4;

    fill_uniform(rng, p, K, 1.0f);
    fill_uniform(rng, qi, K, 1.0f);
    fill_uniform(rng, qj, K, 1.0f);
    fill_uniform(rng, du, K, 0.3f);
    fill_uniform(rng, di, K, 0.3f);
    fill_uniform(rng, dj, K, 0.3f);
    bi = advrec_rng_float(rng) - 0.5f;
    bj = advrec_rng_float(rng) - 0.5f;
    advrec_apr_objective_grad(params, p, qi, qj, bi, bj, with_delta ? du : NULL,
                              with_delta ? di : NULL, with_delta ? dj : NULL,
                              gp, gi, gj, gb, &adv);
    for (int n = 0; n < K; n++) {
        theta[n] = p[n];
        theta[K + n] = qi[n];
        theta[2 * K + n] = qj[n];
    }
    theta[3 * K] = bi;
    theta[3 * K + 1] = bj;
    for (int c = 0; c < 3 * K + 2; c++) {
        double save = theta[c], jp, jm, fd, an;

        if (c >= 3 * K && !params->use_bias)
            continue;
        theta[c] = save + h;
        jp =
            ref_objective(params, theta, theta + K, theta + 2 * K, theta[3 * K],
                          theta[3 * K + 1], with_delta ? du : NULL, di, dj);
        theta[c] = save - h;
        jm =
            ref_objective(params, theta, theta + K, theta + 2 * K, theta[3 * K],
                          theta[3 * K + 1], with_delta ? du : NULL, di, dj);
        theta[c] = save;
        fd = (jp - jm) / (2.0 * h);
        an = c < K       ? gp[c]
             : c < 2 * K ? gi[c - K]
             : c < 3 * K ? gj[c - 2 * K]
                         : gb[c - 3 * K];
        CHECK_NEAR(an, fd, 1e-4 + 1e-4 * fabs(fd));
    }
}

static void test_gradient_matches_finite_differences(void)
{
    advrec_apr_params_t params;
    advrec_rng_t rng = advrec_rng_for_id(1, "fd");

    advrec_apr_params_default(&params);
    params.k = 5;
    for (int trial = 0; trial < 20; trial++) {
        params.use_bias = trial % 2;
        params.reg = trial % 3 ? 0.05f : 0.0f;
        params.adv_lambda = 0.7f;
        check_fd(&params, &rng, 0); /* clean BPR (+ reg) */
        check_fd(&params, &rng, 1); /* L + lambda L(Theta + Delta fixed) */
    }
}

static void test_clean_gradient_matches_objective_without_delta(void)
{
    advrec_apr_params_t params;
    advrec_rng_t rng = advrec_rng_for_id(2, "g");
    float p[8], qi[8], qj[8], a[3][8], b[3][8], gb[2], x;

    advrec_apr_params_default(&params);
    params.k = 8;
    fill_uniform(&rng, p, 8, 1.0f);
    fill_uniform(&rng, qi, 8, 1.0f);
    fill_uniform(&rng, qj, 8, 1.0f);
    float c = advrec_apr_grad(8, p, qi, qj, 0, 0, a[0], a[1], a[2], &x);
    float loss = advrec_apr_objective_grad(&params, p, qi, qj, 0, 0, NULL, NULL,
                                           NULL, b[0], b[1], b[2], gb, NULL);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    CHECK_NEAR(loss, log1p(exp(-(double)x)), 1e-6);
    CHECK_NEAR(c, -1.0 / (1.0 + exp((double)x)), 1e-6);
    /* Extreme x: finite loss and gradient, no overflow. */
    CHECK(isfinite(advrec_apr_loss_of_x(-200.0f)));
    CHECK_NEAR(advrec_apr_loss_of_x(-200.0f), 200.0, 1e-3);
    CHECK_NEAR(advrec_apr_loss_of_x(200.0f), 0.0, 1e-6);
}

/* A small world of rows: users and items initialised from their ids. */
#define NU 6
#define NI 12
typedef struct world_s {
    trow_t users[NU], items[NI];
} world_t;

static void world_init(world_t *wd, const advrec_apr_params_t *params)
{
    char id[32];

    for (int u = 0; u < NU; u++) {
        trow_bind(&wd->users[u], 0);
        snprintf(id, sizeof(id), "user-%d", u);
        advrec_apr_row_init(params, ADVREC_APR_USER, id, &wd->users[u].row);
    }
    for (int i = 0; i < NI; i++) {
        trow_bind(&wd->items[i], params->use_bias);
        snprintf(id, sizeof(id), "item-%d", i);
        advrec_apr_row_init(params, ADVREC_APR_ITEM, id, &wd->items[i].row);
    }
}

/* The same comparison for both kinds: values only, not the row pointers. */
/* How far b is from a, relative to their size or to floor, whichever is
 * larger (1 where one is not finite and the other is, 0 where both are
 * the same non-finite value). */
static double rel_diff(float a, float b, double floor)
{
    double d = fabs((double)a - b), s = fabs((double)a) + fabs((double)b);

    if (a == b || (isnan(a) && isnan(b)))
        return 0.0;
    if (!isfinite(d))
        return 1.0;
    return d / (s > floor ? s : floor);
}

/* How far the vector b is from a: the largest difference of a coordinate
 * relative to the largest coordinate (a coordinate near 0 after an update
 * that nearly cancels is compared with the row, not with itself). */
static double floats_diff(const float *a, const float *b, int n)
{
    double worst = 0.0, big = 0.0;

    for (int i = 0; i < n; i++) {
        big = fabs((double)a[i]) > big ? fabs((double)a[i]) : big;
        big = fabs((double)b[i]) > big ? fabs((double)b[i]) : big;
    }
    for (int i = 0; i < n; i++) {
        double d = rel_diff(a[i], b[i], 2.0 * big);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* The largest rel_diff() between two rows (factors, accumulator, bias and
 * its accumulator), 1 where their update counts differ. */
static double trow_diff(const trow_t *a, const trow_t *b, int k)
{
    double worst = floats_diff(a->w, b->w, k), d;

    /* An accumulator's sum of squares is from the products' expansion:
     * compared with at least the 1e-3 of a typical accumulator. */
    if ((d = rel_diff(a->acc[0], b->acc[0], 1e-3)) > worst)
        worst = d;
    if ((d = rel_diff(a->bias, b->bias, 1e-6)) > worst)
        worst = d;
    if ((d = rel_diff(a->bias_acc, b->bias_acc, 1e-6)) > worst)
        worst = d;
    return a->updates == b->updates ? worst : 1.0;
}

static int world_equal(const world_t *a, const world_t *b)
{
    for (int u = 0; u < NU; u++)
        if (memcmp(a->users[u].w, b->users[u].w, sizeof(a->users[u].w)) ||
            memcmp(a->users[u].acc, b->users[u].acc, sizeof(a->users[u].acc)) ||
            a->users[u].updates != b->users[u].updates)
            return 0;
    for (int i = 0; i < NI; i++)
        if (memcmp(a->items[i].w, b->items[i].w, sizeof(a->items[i].w)) ||
            memcmp(a->items[i].acc, b->items[i].acc, sizeof(a->items[i].acc)) ||
            memcmp(&a->items[i].bias, &b->items[i].bias, sizeof(float)) ||
            memcmp(&a->items[i].bias_acc, &b->items[i].bias_acc,
                   sizeof(float)) ||
            a->items[i].updates != b->items[i].updates)
            return 0;
    return 1;
}

/* world_equal() up to rounding: every row within rel_diff() tol. */
static int world_near(const world_t *a, const world_t *b, int k, double tol)
{
    for (int u = 0; u < NU; u++)
        if (trow_diff(&a->users[u], &b->users[u], k) > tol)
            return 0;
    for (int i = 0; i < NI; i++)
        if (trow_diff(&a->items[i], &b->items[i], k) > tol)
            return 0;
    return 1;
}

/* Replays n events of a synthetic stream; negatives and users/items come
 * from per-record streams, like the daemon. Returns how many steps used
 * the adversarial term. */
static int world_replay(world_t *wd, const advrec_apr_params_t *params,
                        int n_events, int allow_adv)
{
    float scratch[12 * KMAX];
    int adv_steps = 0;

    for (int64_t off = 0; off < n_events; off++) {
        advrec_rng_t rng =
            advrec_rng_for_record(params->seed, "advrec.clicks", 0, off);
        uint32_t u = advrec_rng_below(&rng, NU);
        uint32_t i = advrec_rng_below(&rng, NI / 2) + (u % 2) * (NI / 2);
        uint32_t j = advrec_apr_sample_negative(&rng, NI, i);
        advrec_apr_result_t res;
        advrec_err_t err = advrec_apr_step(
            params, &wd->users[u].row, &wd->items[i].row, &wd->items[j].row,
            off % 5 == 0 ? 3.0f : 1.0f, allow_adv, scratch, &res);

        CHECK_INT(err, ADVREC_OK);
        adv_steps += res.adversarial;
    }
    return adv_steps;
}

static void test_lambda_zero_is_bpr_bit_for_bit(void)
{
    static world_t a, b;
    advrec_apr_params_t params;

    advrec_apr_params_default(&params);
    params.k = 16;
    params.use_bias = 1;
    params.reg = 0.01f;
    params.init_std = 0.1f;
    params.adv_lambda = 0.0f;
    params.adv_eps = 0.5f;
    params.adv_warmup = 2;
    world_init(&a, &params);
    world_init(&b, &params);
    /* a goes through the adversarial code path (perturbation computed, its
     * gradient added with weight 0); b never does. */
    CHECK(world_replay(&a, &params, 400, 1) > 300);
    CHECK_INT(world_replay(&b, &params, 400, 0), 0);
    CHECK(world_equal(&a, &b));

    /* Same with PGD, whose step is apr.c's pieces: the same up to the
     * rounding in which the fused step differs from them. */
    params.adv_steps = 3;
    world_init(&a, &params);
    world_init(&b, &params);
    world_replay(&a, &params, 200, 1);
    world_replay(&b, &params, 200, 0);
    CHECK(world_near(&a, &b, params.k, 1e-4));
}

static void test_eps_zero_makes_adversarial_loss_the_clean_loss(void)
{
    advrec_apr_params_t params;
    trow_t u, i, j;
    float scratch[12 * KMAX];
    advrec_apr_result_t res;

    advrec_apr_params_default(&params);
    params.k = 16;
    params.adv_eps = 0.0f;
    params.init_std = 0.3f;
    trow_bind(&u, 0);
    trow_bind(&i, 0);
    trow_bind(&j, 0);
    advrec_apr_row_init(&params, ADVREC_APR_USER, "u", &u.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "i", &i.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "j", &j.row);
    for (int s = 0; s < 10; s++) {
        CHECK_INT(advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 1,
                                  scratch, &res),
                  ADVREC_OK);
        CHECK(res.adversarial);
        /* Delta = 0: Theta + Delta is Theta, bit for bit. */
        CHECK(memcmp(&res.loss, &res.adv_loss, sizeof(float)) == 0);
    }
}

/* Largest absolute difference between two worlds' factors and biases. */
static double world_max_diff(const world_t *a, const world_t *b, int k)
{
    double m = 0;

    for (int u = 0; u < NU; u++)
        for (int f = 0; f < k; f++)
            m = fmax(m, fabs((double)a->users[u].w[f] - b->users[u].w[f]));
    for (int i = 0; i < NI; i++) {
        for (int f = 0; f < k; f++)
            m = fmax(m, fabs((double)a->items[i].w[f] - b->items[i].w[f]));
        m = fmax(m, fabs((double)a->items[i].bias - b->items[i].bias));
    }
    return m;
}

/*
 * The check "APR with eps = 0 equals BPR step for step". With
 * Delta = 0 the objective is (1 + lambda) L, whose gradient is (1 + lambda)
 * times BPR's; Adagrad divides by the root of the accumulated squares, so the
 * step is the same up to its 1e-8 guard and float rounding: equal within a
 * tight tolerance after every event, not bit for bit (lambda = 0 is bit for
 * bit, above). reg = 0, as the regulariser is not scaled by (1 + lambda).
 */
static void test_eps_zero_is_bpr_step_for_step(void)
{
    static world_t a, b;
    advrec_apr_params_t params;
    float scratch[12 * KMAX];
    double worst = 0;

    advrec_apr_params_default(&params);
    params.k = 16;
    params.use_bias = 1;
    params.init_std = 0.1f;
    params.adv_eps = 0.0f;
    params.adv_lambda = 1.0f;
    world_init(&a, &params);
    world_init(&b, &params);
    for (int64_t off = 0; off < 400; off++) {
        advrec_rng_t rng =
            advrec_rng_for_record(params.seed, "advrec.clicks", 0, off);
        uint32_t u = advrec_rng_below(&rng, NU);
        uint32_t i = advrec_rng_below(&rng, NI / 2) + (u % 2) * (NI / 2);
        uint32_t j = advrec_apr_sample_negative(&rng, NI, i);
        advrec_apr_result_t ra, rb;

        advrec_apr_step(&params, &a.users[u].row, &a.items[i].row,
                        &a.items[j].row, 1.0f, 1, scratch, &ra);
        advrec_apr_step(&params, &b.users[u].row, &b.items[i].row,
                        &b.items[j].row, 1.0f, 0, scratch, &rb);
        CHECK(ra.adversarial && !rb.adversarial);
        worst = fmax(worst, world_max_diff(&a, &b, params.k));
    }
    CHECK(worst < 1e-5);
    if (worst >= 1e-5)
        fprintf(stderr, "eps=0 APR vs BPR: max difference %g\n", worst);
}

static void test_replay_is_bit_identical(void)
{
    static world_t a, b, c;
    advrec_apr_params_t params;

    advrec_apr_params_default(&params);
    params.k = 64;
    params.use_bias = 1;
    params.reg = 0.001f;
    params.adv_warmup = 5;
    params.seed = 42;
    world_init(&a, &params);
    world_init(&b, &params);
    world_replay(&a, &params, 1000, 1);
    world_replay(&b, &params, 1000, 1);
    CHECK(world_equal(&a, &b));

    params.adv_steps = 4;
    world_init(&a, &params);
    world_init(&b, &params);
    world_replay(&a, &params, 300, 1);
    world_replay(&b, &params, 300, 1);
    CHECK(world_equal(&a, &b));

    /* Another seed is another model. */
    params.seed = 43;
    world_init(&c, &params);
    world_replay(&c, &params, 300, 1);
    CHECK(!world_equal(&a, &c));
}

/*
 * Repeating one (u, i, j) drives its loss down. Plain BPR decreases it at
 * every step. APR gets three BPR steps first (warm-up 3, the online
 * analogue of APR's pre-training), then the trend is asserted. Without
 * them (warm-up 0) the perturbation of radius 0.5 dominates rows of norm
 * 0.08: its gradient pulls the factors towards 0, and row-wise Adagrad,
 * which follows the gradient's direction, keeps them there (norms below
 * 0.1 after 50 steps, the loss falling through the biases only; FGSM's
 * linearisation then even lowers the loss at times). Per-coordinate
 * Adagrad escaped by its sign-like steps. The daemon's rows warm up for 5
 * steps (model.adv.warmup) and offline APR pretrains.
 */
static void test_loss_on_repeated_pair_decreases(void)
{
    advrec_apr_params_t params;
    trow_t u, i, j;
    float scratch[12 * KMAX];
    advrec_apr_result_t res;

    advrec_apr_params_default(&params);
    params.use_bias = 1;
    params.adv_warmup = 3;
    for (int adv = 0; adv <= 1; adv++) {
        float first = 0, prev = INFINITY, first_adv = 0;
        int increases = 0;

        trow_bind(&u, 0);
        trow_bind(&i, 1);
        trow_bind(&j, 1);
        advrec_apr_row_init(&params, ADVREC_APR_USER, "u", &u.row);
        advrec_apr_row_init(&params, ADVREC_APR_ITEM, "i", &i.row);
        advrec_apr_row_init(&params, ADVREC_APR_ITEM, "j", &j.row);
        for (int s = 0; s < 50; s++) {
            advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, adv, scratch,
                            &res);
            if (s == 0)
                first = res.loss;
            if (s == 3)
                first_adv = res.adv_loss;
            increases += res.loss > prev;
            prev = res.loss;
            CHECK_INT(res.adversarial, adv && s >= 3);
            /* The perturbation is the worst case: it never lowers the
             * loss. */
            if (res.adversarial)
                CHECK(res.adv_loss >= res.loss);
        }
        CHECK_NEAR(first, log(2.0), 0.01); /* tiny init: x ~ 0 */
        CHECK(prev < 0.1f * first);
        if (adv)
            CHECK(res.adv_loss < 0.2f * first_adv);
        else
            CHECK_INT(increases, 0);
    }
}

/* dst = src with dst's own pointers (a row copy for a second step). */
static void trow_copy(trow_t *dst, const trow_t *src)
{
    memcpy(dst, src, sizeof(*dst));
    dst->row.w = dst->w;
    dst->row.acc = dst->acc;
    dst->row.bias = src->row.bias ? &dst->bias : NULL;
    dst->row.bias_acc = src->row.bias_acc ? &dst->bias_acc : NULL;
    dst->row.updates = &dst->updates;
}

/* The step as the pieces of apr.h compose it (FGSM, the objective's
 * gradient, Adagrad written out), for comparison with advrec_apr_step(),
 * which fuses them. rows: the warm rows, as advrec_apr_warmed(). */
static void pieces_step(const advrec_apr_params_t *params, trow_t *u, trow_t *i,
                        trow_t *j, float weight, unsigned rows,
                        advrec_apr_result_t *res)
{
    const int k = params->k;
    advrec_apr_params_t eff = *params;
    int use_bias = params->use_bias && i->row.bias && j->row.bias;
    float bi = use_bias ? i->bias : 0.0f, bj = use_bias ? j->bias : 0.0f;
    float du[KMAX], di[KMAX], dj[KMAX], gp[KMAX], gi[KMAX], gj[KMAX], gb[2];
    float step = params->lr * weight, init = params->adagrad_init;
    trow_t *t[3] = {u, i, j};
    float *g[3] = {gp, gi, gj};

    eff.use_bias = use_bias;
    if (rows) {
        advrec_apr_fgsm(k, params->adv_eps, u->w, i->w, j->w, bi, bj, du, di,
                        dj);
        if (!(rows & ADVREC_APR_ROW_U))
            memset(du, 0, sizeof(du));
        if (!(rows & ADVREC_APR_ROW_I))
            memset(di, 0, sizeof(di));
        if (!(rows & ADVREC_APR_ROW_J))
            memset(dj, 0, sizeof(dj));
    }
    res->loss = advrec_apr_objective_grad(
        &eff, u->w, i->w, j->w, bi, bj, rows ? du : NULL, rows ? di : NULL,
        rows ? dj : NULL, gp, gi, gj, gb, &res->adv_loss);
    res->adversarial = rows != 0;
    res->updated = weight > 0.0f;
    if (weight == 0.0f)
        return;
    for (int r = 0; r < 3; r++) {
        /* Row-wise Adagrad: the sum of squares in apr.c's eight lanes, its
         * mean into the row's one accumulator, one multiplier per row. */
        float s8[8] = {0}, tail = 0.0f, sq, m;
        int n = 0;

        for (; n + 8 <= k; n += 8)
            for (int l = 0; l < 8; l++)
                s8[l] += g[r][n + l] * g[r][n + l];
        for (; n < k; n++)
            tail += g[r][n] * g[r][n];
        sq = ((s8[0] + s8[1]) + (s8[2] + s8[3])) +
             ((s8[4] + s8[5]) + (s8[6] + s8[7])) + tail;
        t[r]->acc[0] += sq / (float)k;
        m = step / sqrtf(t[r]->acc[0] + 1e-20f + init);
        for (n = 0; n < k; n++)
            t[r]->w[n] -= m * g[r][n];
        t[r]->updates++;
    }
    if (use_bias) {
        i->bias_acc += gb[0] * gb[0];
        i->bias -= step * gb[0] / sqrtf(i->bias_acc + 1e-20f + init);
        j->bias_acc += gb[1] * gb[1];
        j->bias -= step * gb[1] / sqrtf(j->bias_acc + 1e-20f + init);
    }
}

static void test_warmup_switches_adversarial_on(void)
{
    advrec_apr_params_t params;
    trow_t u, i, j, fresh;
    float scratch[12 * KMAX];
    advrec_apr_result_t res;

    advrec_apr_params_default(&params);
    params.k = 8;
    params.adv_warmup = 3;
    trow_bind(&u, 0);
    trow_bind(&i, 0);
    trow_bind(&j, 0);
    trow_bind(&fresh, 0);
    advrec_apr_row_init(&params, ADVREC_APR_USER, "u", &u.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "i", &i.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "j", &j.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "fresh", &fresh.row);
    for (int s = 0; s < 6; s++) {
        advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 1, scratch,
                        &res);
        /* Before step s each row has had s updates. */
        CHECK_INT(res.adversarial, s >= 3);
        CHECK_INT(u.updates, s + 1);
    }
    /* One cold row in the triple: the term is on for the warm rows, and the
     * cold row is not perturbed: the step is the pieces' step with
     * Delta_j = 0, not the one that perturbs j as well. */
    CHECK_INT(advrec_apr_warmed(&params, &u.row, &i.row, &fresh.row),
              ADVREC_APR_ROW_U | ADVREC_APR_ROW_I);
    {
        trow_t c[3], all[3];
        advrec_apr_result_t rc, rall;

        trow_copy(&c[0], &u);
        trow_copy(&c[1], &i);
        trow_copy(&c[2], &fresh);
        memcpy(all, c, sizeof(c));
        for (int r = 0; r < 3; r++)
            trow_copy(&all[r], &c[r]);
        advrec_apr_step(&params, &u.row, &i.row, &fresh.row, 1.0f, 1, scratch,
                        &res);
        CHECK_INT(res.adversarial, 1);
        pieces_step(&params, &c[0], &c[1], &c[2], 1.0f,
                    ADVREC_APR_ROW_U | ADVREC_APR_ROW_I, &rc);
        pieces_step(&params, &all[0], &all[1], &all[2], 1.0f,
                    ADVREC_APR_ROW_U | ADVREC_APR_ROW_I | ADVREC_APR_ROW_J,
                    &rall);
        /* Rounding apart from the step without Delta_j; a hundred times
         * that from the one with it (about 1e-8 and 4e-4 here). */
        CHECK(floats_diff(fresh.w, c[2].w, params.k) < 1e-6);
        CHECK(floats_diff(u.w, c[0].w, params.k) < 1e-6);
        CHECK(floats_diff(fresh.w, all[2].w, params.k) >
              100 * floats_diff(fresh.w, c[2].w, params.k) + 1e-6);
    }
    /* Every row cold: the term stays off. */
    {
        trow_t cu, ci, cj;
        trow_bind(&cu, 0);
        trow_bind(&ci, 0);
        trow_bind(&cj, 0);
        advrec_apr_row_init(&params, ADVREC_APR_USER, "cu", &cu.row);
        advrec_apr_row_init(&params, ADVREC_APR_ITEM, "ci", &ci.row);
        advrec_apr_row_init(&params, ADVREC_APR_ITEM, "cj", &cj.row);
        CHECK_INT(advrec_apr_warmed(&params, &cu.row, &ci.row, &cj.row), 0);
        advrec_apr_step(&params, &cu.row, &ci.row, &cj.row, 1.0f, 1, scratch,
                        &res);
        CHECK_INT(res.adversarial, 0);
    }
    /* allow_adv = 0 overrides a warm triple. */
    advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 0, scratch, &res);
    CHECK_INT(res.adversarial, 0);
    /* warmup 0: on from the first event, for every row. */
    params.adv_warmup = 0;
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "fresh", &fresh.row);
    advrec_apr_step(&params, &u.row, &i.row, &fresh.row, 1.0f, 1, scratch,
                    &res);
    CHECK_INT(res.adversarial, 1);
}

static void test_weight_scales_update(void)
{
    advrec_apr_params_t params;
    trow_t u0, i0, j0, u1, i1, j1;
    float scratch[12 * KMAX];
    advrec_apr_result_t res;

    advrec_apr_params_default(&params);
    params.k = 16;
    params.init_std = 0.2f;
    trow_bind(&u0, 0);
    trow_bind(&i0, 0);
    trow_bind(&j0, 0);
    advrec_apr_row_init(&params, ADVREC_APR_USER, "u", &u0.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "i", &i0.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "j", &j0.row);
    u0.acc[0] = i0.acc[0] = j0.acc[0] = 0.5f; /* some history */

    for (int adv = 0; adv <= 1; adv++) {
        u1 = u0, i1 = i0, j1 = j0;
        trow_t u2 = u0, i2 = i0, j2 = j0;
        /* Rebind: the copies' views must point at the copies. */
        u1.row.w = u1.w, u1.row.acc = u1.acc, u1.row.updates = &u1.updates;
        i1.row.w = i1.w, i1.row.acc = i1.acc, i1.row.updates = &i1.updates;
        j1.row.w = j1.w, j1.row.acc = j1.acc, j1.row.updates = &j1.updates;
        u2.row.w = u2.w, u2.row.acc = u2.acc, u2.row.updates = &u2.updates;
        i2.row.w = i2.w, i2.row.acc = i2.acc, i2.row.updates = &i2.updates;
        j2.row.w = j2.w, j2.row.acc = j2.acc, j2.row.updates = &j2.updates;
        advrec_apr_step(&params, &u1.row, &i1.row, &j1.row, 1.0f, adv, scratch,
                        NULL);
        advrec_apr_step(&params, &u2.row, &i2.row, &j2.row, 2.5f, adv, scratch,
                        NULL);
        for (int n = 0; n < params.k; n++) {
            double d1 = (double)u1.w[n] - u0.w[n];
            double d2 = (double)u2.w[n] - u0.w[n];
            CHECK_NEAR(d2, 2.5 * d1, 1e-6 + 1e-4 * fabs(d1));
            d1 = (double)i1.w[n] - i0.w[n];
            d2 = (double)i2.w[n] - i0.w[n];
            CHECK_NEAR(d2, 2.5 * d1, 1e-6 + 1e-4 * fabs(d1));
        }
        /* The accumulator sees the unweighted gradient. */
        CHECK(u1.acc[0] == u2.acc[0]);
    }
    /* Weight 0 (quarantine) writes nothing at all. */
    u1 = u0, i1 = i0, j1 = j0;
    u1.row.w = u1.w, u1.row.acc = u1.acc, u1.row.updates = &u1.updates;
    i1.row.w = i1.w, i1.row.acc = i1.acc, i1.row.updates = &i1.updates;
    j1.row.w = j1.w, j1.row.acc = j1.acc, j1.row.updates = &j1.updates;
    CHECK_INT(advrec_apr_step(&params, &u1.row, &i1.row, &j1.row, 0.0f, 1,
                              scratch, &res),
              ADVREC_OK);
    CHECK_INT(res.updated, 0);
    CHECK(res.loss > 0.0f);
    CHECK(memcmp(u1.w, u0.w, sizeof(u0.w)) == 0);
    CHECK(memcmp(i1.acc, i0.acc, sizeof(i0.acc)) == 0);
    CHECK_INT(u1.updates, 0);
    /* Bad weights and i == j are refused. */
    CHECK_INT(advrec_apr_step(&params, &u1.row, &i1.row, &j1.row, -1.0f, 1,
                              scratch, NULL),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_apr_step(&params, &u1.row, &i1.row, &j1.row, NAN, 1,
                              scratch, NULL),
              ADVREC_ERR_INVALID_ARG);
    CHECK_INT(advrec_apr_step(&params, &u1.row, &i1.row, &i1.row, 1.0f, 1,
                              scratch, NULL),
              ADVREC_ERR_INVALID_ARG);
    CHECK(memcmp(u1.w, u0.w, sizeof(u0.w)) == 0);
}

static void test_reg_shrinks_rows(void)
{
    advrec_apr_params_t params;
    trow_t u, i, j, u_before;
    float scratch[12 * KMAX];

    advrec_apr_params_default(&params);
    params.k = 16;
    params.init_std = 0.5f;
    trow_bind(&u, 0);
    trow_bind(&i, 0);
    trow_bind(&j, 0);
    advrec_apr_row_init(&params, ADVREC_APR_USER, "u", &u.row);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "i", &i.row);
    /* qi == qj: the BPR gradient on p is 0, only the regulariser moves p. */
    memcpy(j.w, i.w, sizeof(i.w));
    u_before = u;

    params.reg = 0.0f;
    advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 0, scratch, NULL);
    CHECK(memcmp(u.w, u_before.w, sizeof(u.w)) == 0);

    /* A small learning rate, so that Adagrad's first steps (about lr per
     * coordinate whatever the gradient's size) cannot overshoot 0 on the
     * coordinates checked. */
    params.reg = 0.1f;
    params.lr = 0.001f;
    for (int s = 0; s < 5; s++) {
        /* The step moves qi and qj apart: make them equal again. */
        memcpy(j.w, i.w, sizeof(i.w));
        advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 0, scratch,
                        NULL);
    }
    double n0 = 0, n1 = 0;
    for (int n = 0; n < params.k; n++) {
        n0 += (double)u_before.w[n] * u_before.w[n];
        n1 += (double)u.w[n] * u.w[n];
        if (fabsf(u_before.w[n]) > 0.01f) {
            CHECK(fabsf(u.w[n]) < fabsf(u_before.w[n]));
            CHECK(u.w[n] * u_before.w[n] > 0.0f);
        }
    }
    CHECK(n1 < n0);
}

static void test_pgd_one_step_is_fgsm(void)
{
    advrec_rng_t rng = advrec_rng_for_id(3, "pgd");
    float p[KMAX], qi[KMAX], qj[KMAX];
    float f[3][KMAX], g[3][KMAX], scratch[6 * KMAX];
    const int k = 37; /* not a multiple of 8: the tail loops too */

    for (int trial = 0; trial < 10; trial++) {
        fill_uniform(&rng, p, k, 1.0f);
        fill_uniform(&rng, qi, k, 1.0f);
        fill_uniform(&rng, qj, k, 1.0f);
        advrec_apr_fgsm(k, 0.5f, p, qi, qj, 0.1f, -0.2f, f[0], f[1], f[2]);
        advrec_apr_pgd(k, 0.5f, 1, p, qi, qj, 0.1f, -0.2f, g[0], g[1], g[2],
                       scratch);
        for (int r = 0; r < 3; r++) {
            CHECK(memcmp(f[r], g[r], sizeof(float) * (size_t)k) == 0);
            double norm = 0.0;
            for (int n = 0; n < k; n++)
                norm += (double)f[r][n] * f[r][n];
            CHECK_NEAR(sqrt(norm), 0.5, 1e-5);
        }
        /* PGD with more steps stays in the ball and is at least as strong
         * as no perturbation. */
        advrec_apr_pgd(k, 0.5f, 5, p, qi, qj, 0.1f, -0.2f, g[0], g[1], g[2],
                       scratch);
        for (int r = 0; r < 3; r++) {
            double norm = 0.0;
            for (int n = 0; n < k; n++)
                norm += (double)g[r][n] * g[r][n];
            CHECK(sqrt(norm) <= 0.5 * (1.0 + 1e-5));
        }
        float clean = advrec_apr_loss_of_x(advrec_apr_x(k, p, qi, qj, 0, 0));
        for (int n = 0; n < k; n++) {
            p[n] += g[0][n];
            qi[n] += g[1][n];
            qj[n] += g[2][n];
        }
        CHECK(advrec_apr_loss_of_x(advrec_apr_x(k, p, qi, qj, 0, 0)) > clean);
    }
    /* Zero gradient rows get a zero perturbation, not NaN. */
    memset(p, 0, sizeof(p));
    advrec_apr_fgsm(k, 0.5f, p, qi, qj, 0, 0, f[0], f[1], f[2]);
    for (int n = 0; n < k; n++)
        CHECK(f[1][n] == 0.0f && f[2][n] == 0.0f && isfinite(f[0][n]));
}

static void test_perturb_tables_raises_loss(void)
{
    enum { K = 8, U = 4, I = 6, T = 10 };
    float users[U * K], items[I * K], gu[U * K], gi[I * K], before[U * K];
    advrec_apr_triple_t tr[T];
    advrec_rng_t rng = advrec_rng_for_id(5, "tables");
    double l0 = 0, l1 = 0;

    fill_uniform(&rng, users, U * K, 0.5f);
    fill_uniform(&rng, items, I * K, 0.5f);
    for (int t = 0; t < T; t++) {
        tr[t].u = advrec_rng_below(&rng, U - 1); /* user U-1: no triples */
        tr[t].i = advrec_rng_below(&rng, I);
        tr[t].j = advrec_apr_sample_negative(&rng, I, tr[t].i);
        l0 += advrec_apr_loss_of_x(advrec_apr_x(K, users + K * tr[t].u,
                                                items + K * tr[t].i,
                                                items + K * tr[t].j, 0, 0));
    }
    memcpy(before, users, sizeof(users));
    CHECK_INT(advrec_apr_perturb_tables(K, 0.3f, users, U, items, I, NULL, tr,
                                        T, gu, gi),
              ADVREC_OK);
    for (int t = 0; t < T; t++)
        l1 += advrec_apr_loss_of_x(advrec_apr_x(K, users + K * tr[t].u,
                                                items + K * tr[t].i,
                                                items + K * tr[t].j, 0, 0));
    CHECK(l1 > l0);
    CHECK(memcmp(users + K * (U - 1), before + K * (U - 1),
                 sizeof(float) * K) == 0);
    tr[0].j = I;
    CHECK_INT(advrec_apr_perturb_tables(K, 0.3f, users, U, items, I, NULL, tr,
                                        T, gu, gi),
              ADVREC_ERR_INVALID_ARG);
}

static void test_row_init_and_sampling(void)
{
    advrec_apr_params_t params;
    static float w1[ADVREC_APR_K_MAX], w2[ADVREC_APR_K_MAX], acc[1];
    uint32_t upd = 7;
    advrec_apr_row_t r1 = {w1, acc, NULL, NULL, &upd};
    advrec_apr_row_t r2 = {w2, acc, NULL, NULL, &upd};
    double sum = 0, sq = 0;
    int seen[10] = {0};

    advrec_apr_params_default(&params);
    params.k = ADVREC_APR_K_MAX;
    params.init_std = 0.1f;
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "sku-1", &r1);
    advrec_apr_row_init(&params, ADVREC_APR_ITEM, "sku-1", &r2);
    CHECK(memcmp(w1, w2, sizeof(w1)) == 0);
    CHECK_INT(upd, 0);
    advrec_apr_row_init(&params, ADVREC_APR_USER, "sku-1", &r2);
    CHECK(memcmp(w1, w2, sizeof(w1)) != 0);
    for (int n = 0; n < params.k; n++) {
        sum += w1[n];
        sq += (double)w1[n] * w1[n];
    }
    CHECK_NEAR(sum / params.k, 0.0, 0.01);
    CHECK_NEAR(sqrt(sq / params.k), 0.1, 0.01);

    advrec_rng_t rng = advrec_rng_for_record(0, "t", 0, 0);
    for (int s = 0; s < 2000; s++) {
        uint32_t j = advrec_apr_sample_negative(&rng, 10, 4);
        CHECK(j < 10 && j != 4);
        if (j < 10)
            seen[j]++;
    }
    for (int n = 0; n < 10; n++)
        CHECK(n == 4 ? seen[n] == 0 : seen[n] > 150);
}

static void test_rng_streams(void)
{
    advrec_rng_t a = advrec_rng_for_record(9, "clicks", 1, 0);
    advrec_rng_t b = advrec_rng_for_record(9, "clicks", 0, 1);
    advrec_rng_t c = advrec_rng_for_record(9, "clicks", 1, 0);
    int counts[7] = {0};
    double sum = 0, sq = 0;

    CHECK(advrec_rng_next(&a) != advrec_rng_next(&b));
    a = advrec_rng_for_record(9, "clicks", 1, 0);
    CHECK(advrec_rng_next(&a) == advrec_rng_next(&c));
    CHECK(advrec_rng_for_id(1, "x").state != advrec_rng_for_id(2, "x").state);
    CHECK(advrec_hash64("") == 0xcbf29ce484222325ULL);
    CHECK(advrec_hash64("a") == 0xaf63dc4c8601ec8cULL); /* FNV-1a vector */
    CHECK(advrec_hash64_bytes("ab", 2) == advrec_hash64("ab"));
    for (int s = 0; s < 70000; s++) {
        uint32_t v = advrec_rng_below(&a, 7);
        CHECK(v < 7);
        counts[v < 7 ? v : 0]++;
        float f = advrec_rng_float(&a);
        CHECK(f >= 0.0f && f < 1.0f);
        double g = advrec_rng_gauss(&a);
        sum += g;
        sq += g * g;
    }
    for (int v = 0; v < 7; v++)
        CHECK(counts[v] > 9500 && counts[v] < 10500);
    CHECK_NEAR(sum / 70000, 0.0, 0.02);
    CHECK_NEAR(sq / 70000, 1.0, 0.03);
    CHECK_INT(advrec_rng_below(&a, 1), 0);
    CHECK(advrec_rng_below(&a, 0xffffffffu) < 0xffffffffu);
}

/* The first Adagrad step by hand, k = 1, p = 1, qi = qj = 0, no bias, no
 * reg, lr 0.1: x = 0, c = -1/2, G_p = 0, G_i = -1/2, G_j = +1/2.
 * adagrad_init 0: qi moves by 0.1 * 0.5 / sqrt(0.25) = 0.1 (a sign step);
 * adagrad_init 0.1: by 0.1 * 0.5 / sqrt(0.35) = 0.0845154; the stored
 * accumulator is 0.25 in both cases. */
static void test_adagrad_init_first_step(void)
{
    static const double want[2] = {0.1, 0.05 / 0.5916079783099616};
    advrec_apr_params_t params;
    float scratch[12 * KMAX];

    for (int c = 0; c < 2; c++) {
        trow_t u, i, j;
        advrec_apr_params_default(&params);
        params.k = 1;
        params.lr = 0.1f;
        params.adagrad_init = c ? 0.1f : 0.0f;
        trow_bind(&u, 0);
        trow_bind(&i, 0);
        trow_bind(&j, 0);
        u.w[0] = 1.0f;
        CHECK_INT(advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 0,
                                  scratch, NULL),
                  ADVREC_OK);
        CHECK_NEAR(u.w[0], 1.0, 0);
        CHECK_NEAR(i.w[0], want[c], 1e-6);
        CHECK_NEAR(j.w[0], -want[c], 1e-6);
        CHECK_NEAR(i.acc[0], 0.25, 0);
        CHECK_NEAR(u.acc[0], 0.0, 0);
    }
    params.adagrad_init = -1.0f;
    CHECK_INT(advrec_apr_params_check(&params, NULL, 0), ADVREC_ERR_CONFIG);
}

/* Row-wise Adagrad by hand, k = 2, p = (1, 0.5), qi = qj = 0, lr 0.1,
 * adagrad_init 0: c = -1/2, G_i = (-0.5, -0.25), G_j = -G_i, G_p = 0. The
 * row's one accumulator gets the mean of G_i^2, 0.15625; both coordinates
 * move by lr / sqrt(0.15625) = 0.2529822 times their gradient, so the step
 * keeps the gradient's direction (per-coordinate Adagrad would move both by
 * 0.1, a sign step). */
static void test_rowwise_by_hand(void)
{
    advrec_apr_params_t params;
    float scratch[12 * KMAX];
    trow_t u, i, j;
    const double m = 0.1 / sqrt(0.15625);

    advrec_apr_params_default(&params);
    params.k = 2;
    params.lr = 0.1f;
    trow_bind(&u, 0);
    trow_bind(&i, 0);
    trow_bind(&j, 0);
    u.w[0] = 1.0f;
    u.w[1] = 0.5f;
    CHECK_INT(advrec_apr_step(&params, &u.row, &i.row, &j.row, 1.0f, 0, scratch,
                              NULL),
              ADVREC_OK);
    CHECK_NEAR(i.acc[0], 0.15625, 0);
    CHECK_NEAR(j.acc[0], 0.15625, 0);
    CHECK_NEAR(u.acc[0], 0.0, 0);
    CHECK_NEAR(i.w[0], 0.5 * m, 1e-6);
    CHECK_NEAR(i.w[1], 0.25 * m, 1e-6);
    CHECK_NEAR(j.w[0], -0.5 * m, 1e-6);
    CHECK_NEAR(j.w[1], -0.25 * m, 1e-6);
    CHECK_NEAR(u.w[0], 1.0, 0);
    CHECK_NEAR(u.w[1], 0.5, 0);
}

static void test_params_check(void)
{
    advrec_apr_params_t params;
    char err[128];

    advrec_apr_params_default(&params);
    CHECK_INT(advrec_apr_params_check(&params, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(advrec_apr_scratch_floats(64), 12 * 64);
    params.adv_eps = -1.0f;
    CHECK_INT(advrec_apr_params_check(&params, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK(strstr(err, "adv_eps") != NULL);
    advrec_apr_params_default(&params);
    params.k = 0;
    CHECK_INT(advrec_apr_params_check(&params, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK(strstr(err, "k = 0") != NULL);
}

/* advrec_apr_step() runs BPR and FGSM as two fused passes over the rows
 * (vectorised, an AVX2 clone on x86-64), from seven inner products; it
 * must compute the pieces' step up to rounding (relative 1e-5, worst case
 * printed), for any k (tails after the eight lanes), with and without
 * biases, reg, Adagrad's initial value, warm masks, zero gradients, and
 * weights 0 and 3. */
static void test_fused_step_matches_pieces(void)
{
    double worst = 0.0;
    static const int ks[] = {1, 5, 8, 13, 64};
    advrec_rng_t rng = advrec_rng_for_id(7, "fused");
    float scratch[12 * KMAX];
    int mismatches = 0, adversarial = 0;

    for (int trial = 0; trial < 2000; trial++) {
        advrec_apr_params_t params;
        trow_t a[3], b[3];
        advrec_apr_result_t ra, rb;
        unsigned rows;
        float weight;
        int allow;

        advrec_apr_params_default(&params);
        params.k = ks[trial % 5];
        params.use_bias = (trial / 5) % 2;
        params.reg = (trial / 10) % 2 ? 0.01f : 0.0f;
        params.adagrad_init = (trial / 20) % 2 ? 0.1f : 0.0f;
        params.adv_lambda = (trial / 40) % 3 == 0 ? 1.0f : 0.35f;
        params.adv_eps = (trial / 120) % 4 == 3 ? 0.0f : 0.5f;
        params.adv_warmup = 1;
        allow = trial % 7 != 0;
        weight = trial % 11 == 0 ? 0.0f : trial % 3 == 0 ? 3.0f : 1.0f;
        for (int r = 0; r < 3; r++) {
            trow_bind(&a[r], r > 0);
            fill_uniform(&rng, a[r].w, params.k, 1.0f);
            fill_uniform(&rng, a[r].acc, 1, 1.0f);
            a[r].acc[0] = a[r].acc[0] < 0 ? 0.0f : a[r].acc[0];
            a[r].bias = advrec_rng_float(&rng) - 0.5f;
            a[r].updates = advrec_rng_below(&rng, 2);
        }
        if (trial % 13 == 0) /* g_u = 0: FGSM leaves the user alone */
            memcpy(a[2].w, a[1].w, sizeof(a[1].w));
        if (trial % 17 == 0) /* g_i = g_j = 0 */
            memset(a[0].w, 0, sizeof(a[0].w));
        memcpy(b, a, sizeof(a));
        for (int r = 0; r < 3; r++) {
            b[r].row.w = b[r].w;
            b[r].row.acc = b[r].acc;
            b[r].row.bias = r > 0 ? &b[r].bias : NULL;
            b[r].row.bias_acc = r > 0 ? &b[r].bias_acc : NULL;
            b[r].row.updates = &b[r].updates;
        }
        rows = allow
                   ? advrec_apr_warmed(&params, &a[0].row, &a[1].row, &a[2].row)
                   : 0u;
        CHECK_INT(advrec_apr_step(&params, &a[0].row, &a[1].row, &a[2].row,
                                  weight, allow, scratch, &ra),
                  ADVREC_OK);
        pieces_step(&params, &b[0], &b[1], &b[2], weight, rows, &rb);
        adversarial += ra.adversarial;
        for (int r = 0; r < 3; r++) {
            double d = trow_diff(&a[r], &b[r], params.k);
            worst = d > worst ? d : worst;
            if (d > 1e-5)
                mismatches++;
        }
        /* The clean loss has the pieces' bits (x is summed as they sum
         * it); the adversarial one is x' from the products. */
        if (memcmp(&ra.loss, &rb.loss, sizeof(float)) ||
            rel_diff(ra.adv_loss, rb.adv_loss, 1e-6) > 1e-5 ||
            ra.adversarial != rb.adversarial || ra.updated != rb.updated)
            mismatches++;
    }
    printf("  fused step against the pieces: worst relative difference %.2e\n",
           worst);
    CHECK_INT(mismatches, 0);
    CHECK(adversarial > 1000);
}

int main(void)
{
    RUN(test_gradient_matches_finite_differences);
    RUN(test_clean_gradient_matches_objective_without_delta);
    RUN(test_lambda_zero_is_bpr_bit_for_bit);
    RUN(test_eps_zero_makes_adversarial_loss_the_clean_loss);
    RUN(test_eps_zero_is_bpr_step_for_step);
    RUN(test_replay_is_bit_identical);
    RUN(test_loss_on_repeated_pair_decreases);
    RUN(test_warmup_switches_adversarial_on);
    RUN(test_weight_scales_update);
    RUN(test_reg_shrinks_rows);
    RUN(test_pgd_one_step_is_fgsm);
    RUN(test_fused_step_matches_pieces);
    RUN(test_perturb_tables_raises_loss);
    RUN(test_row_init_and_sampling);
    RUN(test_rng_streams);
    RUN(test_adagrad_init_first_step);
    RUN(test_rowwise_by_hand);
    RUN(test_params_check);
    return DONE();
}
