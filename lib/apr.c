/*
 * apr.c - the online APR step's pieces (gradients, FGSM, PGD) and the
 * step built from them.
 *
 * Owns nothing: rows and scratch belong to the caller. Loops are plain
 * loops over k floats; reductions use eight fixed partial sums, so they
 * vectorise and still add in an order fixed by the code, not by the data:
 * a replay gives bit-identical rows. advrec_apr_step() (apr_fused.c) runs
 * BPR and FGSM as a fused step (a few passes over the three rows; the
 * comment at the top of apr_fused.c says why) that computes exactly what
 * the pieces below compose to; PGD runs the pieces
 * (advrec_apr__step_general()). The optimiser is row-wise Adagrad: one
 * accumulator per row (the mean of the squared gradient over its k
 * coordinates), one per item bias.
 */
#include "apr_int.h"

#include <math.h>
#include <string.h>

void advrec_apr_params_default(advrec_apr_params_t *params)
{
    memset(params, 0, sizeof(*params));
    params->k = 64;
    params->lr = 0.05f;
    params->reg = 0.0f;
    params->adv_lambda = 1.0f;
    params->adv_eps = 0.5f;
    params->adv_warmup = 0;
    params->adv_steps = 1;
    params->use_bias = 0;
    params->init_std = 0.01f;
    params->seed = 0;
}

advrec_err_t advrec_apr_params_check(const advrec_apr_params_t *params,
                                     char *errstr, size_t errstr_size)
{
    if (params->k < 1 || params->k > ADVREC_APR_K_MAX)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: k = %d, want 1..%d", params->k,
                             ADVREC_APR_K_MAX);
    if (!isfinite(params->lr) || params->lr <= 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: lr = %g, want a finite value > 0",
                             (double)params->lr);
    if (!isfinite(params->reg) || params->reg < 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: reg = %g, want a finite value >= 0",
                             (double)params->reg);
    if (!isfinite(params->adv_lambda) || params->adv_lambda < 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: adv_lambda = %g, want a finite value >= 0",
                             (double)params->adv_lambda);
    if (!isfinite(params->adv_eps) || params->adv_eps < 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: adv_eps = %g, want a finite value >= 0",
                             (double)params->adv_eps);
    if (params->adv_steps < 1 || params->adv_steps > 1000)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: adv_steps = %d, want 1..1000",
                             params->adv_steps);
    if (!isfinite(params->adagrad_init) || params->adagrad_init < 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: adagrad_init = %g, want a finite value >= 0",
                             (double)params->adagrad_init);
    if (!isfinite(params->init_std) || params->init_std < 0.0f)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "apr: init_std = %g, want a finite value >= 0",
                             (double)params->init_std);
    return ADVREC_OK;
}

size_t advrec_apr_scratch_floats(int k)
{
    return (size_t)12 * (size_t)k;
}

/* Sum of a[n] * b[n] in eight fixed lanes, then the tail. */
static float dot(int k, const float *a, const float *b)
{
    float s[8] = {0};
    float tail = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[n + l] * b[n + l];
    for (; n < k; n++)
        tail += a[n] * b[n];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) +
           tail;
}

/* Sum of a[n] * (b[n] - c[n]), same lane order as dot(). */
static float dot_diff(int k, const float *a, const float *b, const float *c)
{
    float s[8] = {0};
    float tail = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[n + l] * (b[n + l] - c[n + l]);
    for (; n < k; n++)
        tail += a[n] * (b[n] - c[n]);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) +
           tail;
}

/* x for perturbed rows, without materialising them:
 * sum (p + du) . ((qi + di) - (qj + dj)). */
static float dot_diff_pert(int k, const float *p, const float *qi,
                           const float *qj, const float *du, const float *di,
                           const float *dj)
{
    float s[8] = {0};
    float tail = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            int m = n + l;
            s[l] += (p[m] + du[m]) * ((qi[m] + di[m]) - (qj[m] + dj[m]));
        }
    for (; n < k; n++)
        tail += (p[n] + du[n]) * ((qi[n] + di[n]) - (qj[n] + dj[n]));
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) +
           tail;
}

void advrec_apr_row_init(const advrec_apr_params_t *params,
                         advrec_apr_table_t table, const char *id,
                         const advrec_apr_row_t *row)
{
    advrec_rng_t rng =
        advrec_rng_for_id(advrec_mix64(params->seed ^ (uint64_t)table), id);

    for (int n = 0; n < params->k; n++)
        row->w[n] = (float)(advrec_rng_gauss(&rng) * (double)params->init_std);
    *row->acc = 0.0f;
    if (row->bias)
        *row->bias = 0.0f;
    if (row->bias_acc)
        *row->bias_acc = 0.0f;
    if (row->updates)
        *row->updates = 0;
}

uint32_t advrec_apr_sample_negative(advrec_rng_t *rng, uint32_t n_items,
                                    uint32_t pos)
{
    uint32_t j;

    if (n_items < 2)
        return 0;
    /* Draw among the n - 1 others and shift past pos: one draw, no retry. */
    j = advrec_rng_below(rng, n_items - 1);
    return j >= pos ? j + 1 : j;
}

float advrec_apr_score(int k, const float *p, const float *q, const float *bias)
{
    float s = dot(k, p, q);

    return bias ? s + *bias : s;
}

float advrec_apr_x(int k, const float *p, const float *qi, const float *qj,
                   float bi, float bj)
{
    return dot_diff(k, p, qi, qj) + (bi - bj);
}

float advrec_apr_loss_of_x(float x)
{
    /* softplus(-x): the branch keeps expf's argument <= 0. */
    if (x >= 0.0f)
        return log1pf(expf(-x));
    return -x + log1pf(expf(x));
}

/* dL/dx = -sigma(-x), again with expf's argument <= 0. */
static float dloss_dx(float x)
{
    float e;

    if (x >= 0.0f) {
        e = expf(-x);
        return -(e / (1.0f + e));
    }
    e = expf(x);
    return -(1.0f / (1.0f + e));
}

float advrec_apr_grad(int k, const float *p, const float *qi, const float *qj,
                      float bi, float bj, float *gp, float *gi, float *gj,
                      float *x_out)
{
    float x = advrec_apr_x(k, p, qi, qj, bi, bj);
    float c = dloss_dx(x);

    for (int n = 0; n < k; n++) {
        gp[n] = c * (qi[n] - qj[n]);
        gi[n] = c * p[n];
        gj[n] = -(c * p[n]);
    }
    if (x_out)
        *x_out = x;
    return c;
}

/* r = s * r with s = scale / ||r||; r stays 0 when ||r|| is 0. */
static void normalise_to(int k, float *r, float scale)
{
    float norm = sqrtf(dot(k, r, r));
    float s;

    if (!(norm > 0.0f) || !isfinite(norm)) {
        memset(r, 0, sizeof(*r) * (size_t)k);
        return;
    }
    s = scale / norm;
    for (int n = 0; n < k; n++)
        r[n] = s * r[n];
}

void advrec_apr_fgsm(int k, float eps, const float *p, const float *qi,
                     const float *qj, float bi, float bj, float *du, float *di,
                     float *dj)
{
    /* The gradient is written straight into the outputs, then scaled. */
    advrec_apr_grad(k, p, qi, qj, bi, bj, du, di, dj, NULL);
    normalise_to(k, du, eps);
    normalise_to(k, di, eps);
    normalise_to(k, dj, eps);
}

/* d = first ? s * g : Proj_eps(d + s * g), s = alpha / ||g|| (0 if g = 0). */
static void pgd_row(int k, float eps, float alpha, int first, float *d,
                    const float *g)
{
    float gnorm = sqrtf(dot(k, g, g));
    float s = (gnorm > 0.0f && isfinite(gnorm)) ? alpha / gnorm : 0.0f;
    float dnorm;

    if (first) {
        /* Assigned, not added to 0, so that steps == 1 is FGSM bit for bit
         * (0 + -0 would flip the sign of a zero). alpha <= eps: no
         * projection is needed after the first step. */
        for (int n = 0; n < k; n++)
            d[n] = s * g[n];
        return;
    }
    for (int n = 0; n < k; n++)
        d[n] += s * g[n];
    dnorm = sqrtf(dot(k, d, d));
    if (dnorm > eps) {
        float shrink = eps / dnorm;
        for (int n = 0; n < k; n++)
            d[n] = shrink * d[n];
    }
}

/* PGD on the rows whose bit is set in rows (1 user, 2 positive, 4
 * negative); the others keep Delta = 0 at every step, so the later steps'
 * gradients are taken where the perturbation really is. */
static void pgd_rows(int k, float eps, int steps, unsigned rows, const float *p,
                     const float *qi, const float *qj, float bi, float bj,
                     float *du, float *di, float *dj, float *scratch)
{
    float *pp = scratch, *pi = scratch + k, *pj = scratch + 2 * k;
    float *gp = scratch + 3 * k, *gi = scratch + 4 * k, *gj = scratch + 5 * k;
    float alpha;

    if (steps < 1)
        steps = 1;
    alpha = eps / (float)steps;
    memset(du, 0, (size_t)k * sizeof(*du));
    memset(di, 0, (size_t)k * sizeof(*di));
    memset(dj, 0, (size_t)k * sizeof(*dj));
    for (int t = 0; t < steps; t++) {
        if (t == 0) {
            advrec_apr_grad(k, p, qi, qj, bi, bj, gp, gi, gj, NULL);
        } else {
            for (int n = 0; n < k; n++) {
                pp[n] = p[n] + du[n];
                pi[n] = qi[n] + di[n];
                pj[n] = qj[n] + dj[n];
            }
            advrec_apr_grad(k, pp, pi, pj, bi, bj, gp, gi, gj, NULL);
        }
        if (rows & ADVREC_APR_ROW_U)
            pgd_row(k, eps, alpha, t == 0, du, gp);
        if (rows & ADVREC_APR_ROW_I)
            pgd_row(k, eps, alpha, t == 0, di, gi);
        if (rows & ADVREC_APR_ROW_J)
            pgd_row(k, eps, alpha, t == 0, dj, gj);
    }
}

void advrec_apr_pgd(int k, float eps, int steps, const float *p,
                    const float *qi, const float *qj, float bi, float bj,
                    float *du, float *di, float *dj, float *scratch)
{
    pgd_rows(k, eps, steps,
             ADVREC_APR_ROW_U | ADVREC_APR_ROW_I | ADVREC_APR_ROW_J, p, qi, qj,
             bi, bj, du, di, dj, scratch);
}

float advrec_apr_objective_grad(const advrec_apr_params_t *params,
                                const float *p, const float *qi,
                                const float *qj, float bi, float bj,
                                const float *du, const float *di,
                                const float *dj, float *gp, float *gi,
                                float *gj, float gb[2], float *adv_loss)
{
    const int k = params->k;
    const float reg2 = 2.0f * params->reg;
    float x, c, loss, adv = 0.0f;
    float gbi, gbj;

    c = advrec_apr_grad(k, p, qi, qj, bi, bj, gp, gi, gj, &x);
    loss = advrec_apr_loss_of_x(x);
    gbi = c;
    gbj = -c;

    if (du && di && dj) {
        /* Delta is a constant: d/dTheta L(Theta + Delta) is the clean
         * gradient formula evaluated at the perturbed rows. */
        float xa = dot_diff_pert(k, p, qi, qj, du, di, dj) + (bi - bj);
        float lc = params->adv_lambda * dloss_dx(xa);

        adv = advrec_apr_loss_of_x(xa);
        for (int n = 0; n < k; n++) {
            float pa = p[n] + du[n];
            gp[n] += lc * ((qi[n] + di[n]) - (qj[n] + dj[n]));
            gi[n] += lc * pa;
            gj[n] -= lc * pa;
        }
        gbi += lc;
        gbj -= lc;
    }
    for (int n = 0; n < k; n++) {
        gp[n] += reg2 * p[n];
        gi[n] += reg2 * qi[n];
        gj[n] += reg2 * qj[n];
    }
    if (params->use_bias) {
        gb[0] = gbi + reg2 * bi;
        gb[1] = gbj + reg2 * bj;
    } else {
        gb[0] = 0.0f;
        gb[1] = 0.0f;
    }
    if (adv_loss)
        *adv_loss = adv;
    return loss;
}

/* Row-wise Adagrad on the k coordinates of one row (the reference the
 * fused step is tested against, and PGD's update). */
static void adagrad_row(int k, float step, float init, float *w, float *acc,
                        const float *g)
{
    float m = rowwise_at(acc, dot(k, g, g), k, step, init);

    for (int n = 0; n < k; n++)
        w[n] -= m * g[n];
}

/* The step from the pieces above, through scratch (apr_int.h): what PGD
 * runs, and the reference the fused step is tested against. */
void advrec_apr__step_general(const advrec_apr_params_t *params,
                              const advrec_apr_row_t *u,
                              const advrec_apr_row_t *i,
                              const advrec_apr_row_t *j, float weight,
                              unsigned rows, float *scratch,
                              advrec_apr_result_t *result)
{
    const int k = params->k;
    float *gp = scratch, *gi = scratch + k, *gj = scratch + 2 * k;
    float *du = scratch + 3 * k, *di = scratch + 4 * k, *dj = scratch + 5 * k;
    float *pgd_scratch = scratch + 6 * k;
    int use_bias = params->use_bias && i->bias && j->bias;
    float bi = use_bias ? *i->bias : 0.0f;
    float bj = use_bias ? *j->bias : 0.0f;
    int adversarial = rows != 0;
    float gb[2], loss, adv_loss;
    advrec_apr_params_t eff = *params;

    eff.use_bias = use_bias;
    if (adversarial) {
        if (params->adv_steps <= 1) {
            /* FGSM's rows are independent: a cold row's Delta is just 0. */
            advrec_apr_fgsm(k, params->adv_eps, u->w, i->w, j->w, bi, bj, du,
                            di, dj);
            if (!(rows & ADVREC_APR_ROW_U))
                memset(du, 0, (size_t)k * sizeof(*du));
            if (!(rows & ADVREC_APR_ROW_I))
                memset(di, 0, (size_t)k * sizeof(*di));
            if (!(rows & ADVREC_APR_ROW_J))
                memset(dj, 0, (size_t)k * sizeof(*dj));
        } else {
            pgd_rows(k, params->adv_eps, params->adv_steps, rows, u->w, i->w,
                     j->w, bi, bj, du, di, dj, pgd_scratch);
        }
        loss = advrec_apr_objective_grad(&eff, u->w, i->w, j->w, bi, bj, du, di,
                                         dj, gp, gi, gj, gb, &adv_loss);
    } else {
        loss = advrec_apr_objective_grad(&eff, u->w, i->w, j->w, bi, bj, NULL,
                                         NULL, NULL, gp, gi, gj, gb, &adv_loss);
    }
    if (result) {
        result->loss = loss;
        result->adv_loss = adv_loss;
        result->adversarial = adversarial;
        result->updated = weight > 0.0f;
    }
    if (weight == 0.0f)
        return;

    /* Every gradient above was taken at the old values; now write. */
    adagrad_row(k, params->lr * weight, params->adagrad_init, u->w, u->acc, gp);
    adagrad_row(k, params->lr * weight, params->adagrad_init, i->w, i->acc, gi);
    adagrad_row(k, params->lr * weight, params->adagrad_init, j->w, j->acc, gj);
    if (use_bias) {
        adagrad1(params->lr * weight, params->adagrad_init, i->bias,
                 i->bias_acc, gb[0]);
        adagrad1(params->lr * weight, params->adagrad_init, j->bias,
                 j->bias_acc, gb[1]);
    }
    count_update(u);
    count_update(i);
    count_update(j);
}

advrec_err_t advrec_apr_perturb_tables(int k, float eps, float *users,
                                       size_t n_users, float *items,
                                       size_t n_items, const float *item_bias,
                                       const advrec_apr_triple_t *triples,
                                       size_t n_triples, float *grad_users,
                                       float *grad_items)
{
    const size_t ku = (size_t)k;

    for (size_t t = 0; t < n_triples; t++)
        if (triples[t].u >= n_users || triples[t].i >= n_items ||
            triples[t].j >= n_items)
            return ADVREC_ERR_INVALID_ARG;

    memset(grad_users, 0, sizeof(float) * ku * n_users);
    memset(grad_items, 0, sizeof(float) * ku * n_items);
    for (size_t t = 0; t < n_triples; t++) {
        const float *p = users + ku * triples[t].u;
        const float *qi = items + ku * triples[t].i;
        const float *qj = items + ku * triples[t].j;
        float bi = item_bias ? item_bias[triples[t].i] : 0.0f;
        float bj = item_bias ? item_bias[triples[t].j] : 0.0f;
        float c = dloss_dx(advrec_apr_x(k, p, qi, qj, bi, bj));
        float *gp = grad_users + ku * triples[t].u;
        float *gi = grad_items + ku * triples[t].i;
        float *gj = grad_items + ku * triples[t].j;

        for (int n = 0; n < k; n++) {
            gp[n] += c * (qi[n] - qj[n]);
            gi[n] += c * p[n];
            gj[n] -= c * p[n];
        }
    }
    /* Rows untouched by any triple have g = 0 and stay where they are. */
    for (size_t r = 0; r < n_users; r++) {
        float *g = grad_users + ku * r;
        normalise_to(k, g, eps);
        for (int n = 0; n < k; n++)
            users[ku * r + (size_t)n] += g[n];
    }
    for (size_t r = 0; r < n_items; r++) {
        float *g = grad_items + ku * r;
        normalise_to(k, g, eps);
        for (int n = 0; n < k; n++)
            items[ku * r + (size_t)n] += g[n];
    }
    return ADVREC_OK;
}
