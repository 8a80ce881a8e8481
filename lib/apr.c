/*
 * apr.c - the online APR step and its pieces (gradients, FGSM, PGD).
 *
 * Owns nothing: rows and scratch belong to the caller. Loops are plain
 * loops over k floats; reductions use eight fixed partial sums, so they
 * vectorise and still add in an order fixed by the code, not by the data:
 * a replay gives bit-identical rows. advrec_apr_step() runs BPR and FGSM
 * as a fused step (a few passes over the three rows; the comment before
 * fused_x() says why) that computes exactly what the pieces below compose
 * to; PGD runs the pieces. The optimiser is row-wise Adagrad: one accumulator
 * per row (the mean of the squared gradient over its k coordinates), one per
 * item bias.
 */
#include "apr.h"

#include <math.h>
#include <string.h>

/* Added under the square root of the Adagrad accumulator: a row whose
 * gradients have all been 0 so far takes a zero step instead of 0/0. It is
 * tiny on purpose: a tiny eps keeps Adagrad invariant to a constant factor
 * on the objective, which is what makes APR with eps = 0 (objective
 * (1 + lambda) L) take the same steps as BPR. With 1e-8 a coordinate whose
 * gradient is near 1e-4 moved up to 20 % more under APR(eps = 0) than under
 * BPR. */
#define ADAGRAD_EPS 1e-20f

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

unsigned advrec_apr_warmed(const advrec_apr_params_t *params,
                           const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                           const advrec_apr_row_t *j)
{
    uint32_t w = params->adv_warmup;

    return (*u->updates >= w ? ADVREC_APR_ROW_U : 0u) |
           (*i->updates >= w ? ADVREC_APR_ROW_I : 0u) |
           (*j->updates >= w ? ADVREC_APR_ROW_J : 0u);
}

/* Adagrad on one coordinate (an item bias) with a per-event step scale
 * (lr * weight); init is the accumulator's starting value (0 adds exactly
 * nothing). */
static void adagrad1(float step, float init, float *w, float *acc, float g)
{
    *acc += g * g;
    *w -= step * g / sqrtf(*acc + ADAGRAD_EPS + init);
}

/* Row-wise Adagrad's accumulator update: acc += mean of the squared
 * gradient over the row's k coordinates (sq = their sum); returns the
 * row's step multiplier step / sqrt(acc + eps + init), which every
 * coordinate of the row uses: w -= m * g. */
static inline float rowwise_at(float *acc, float sq, int k, float step,
                               float init)
{
    *acc += sq / (float)k;
    return step / sqrtf(*acc + ADAGRAD_EPS + init);
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

/*
 * The fused step: BPR, or APR with FGSM, in passes over the three rows
 * (x; with FGSM the clean gradient's norms and x at Theta + Delta; the
 * squared norms of the gradient G; G again and the update) instead of a
 * dozen loops over scratch arrays. Every coordinate of G depends only on
 * the old values of that coordinate once c (and c') are known, so G is
 * recomputed where it is used instead of stored, and row-wise Adagrad
 * needs only the three sums of G^2 before the update pass. The float
 * operations and their order are those of advrec_apr_fgsm() +
 * advrec_apr_objective_grad() + adagrad_row() above, term for term (checked
 * bit for bit against them by test_fused_step_matches_pieces): the
 * perturbation is recomputed where it is used instead of stored, and
 * ||g_j|| is ||g_i|| (g_j = -g_i exactly).
 *
 * Built twice on x86-64 (AVX2 and the baseline, picked at load time by the
 * ifunc that target_clones makes): the loops are element-wise or reduce in
 * eight fixed lanes, sqrt and division are correctly rounded at any vector
 * width, and -std=c11 keeps FMA contraction off, so both clones compute the
 * same bits; the shipped build still runs on any x86-64. apr.c is compiled
 * with -fno-math-errno (CMakeLists.txt), without which sqrtf keeps a scalar
 * call path for errno and the Adagrad loop does not vectorise.
 */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(ADVREC_NO_CLONES)
#define APR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef APR_CLONES
#define APR_CLONES
#endif

/* The gradient of a step at one coordinate, for the three rows. */
typedef struct grad3_s {
    float p, i, j;
} grad3_t;

/* Row-wise Adagrad's step multipliers of the three rows. */
typedef struct mult3_s {
    float p, i, j;
} mult3_t;

/* The eight-lane sum of the lanes (as dot()). */
static inline float lanes(const float s[8], float tail)
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) +
           tail;
}

/* x = p . (qi - qj), eight lanes then the tail, as dot_diff(). */
APR_CLONES
static float fused_x(int k, const float *restrict p, const float *restrict qi,
                     const float *restrict qj)
{
    float s[8] = {0};
    float tail = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[n + l] * (qi[n + l] - qj[n + l]);
    for (; n < k; n++)
        tail += p[n] * (qi[n] - qj[n]);
    return lanes(s, tail);
}

/* FGSM's per-row scale eps / ||g||; *keep is 0 when Delta_r is 0 (a cold
 * row, or a gradient of norm 0 or not finite, as normalise_to()), else all
 * ones. */
static inline float fgsm_scale(float sq, float eps, unsigned warm,
                               uint32_t *keep)
{
    float norm = sqrtf(sq);
    int zero = !(norm > 0.0f) || !isfinite(norm);

    /* The scale does not depend on warm: g_j's is g_i's, whether or not
     * the positive item is warm. */
    *keep = zero || !warm ? 0u : ~0u;
    return zero ? 0.0f : eps / norm;
}

/* dL/dx = -sigma(-x) from e = expf(-|x|), as dloss_dx(). */
static inline float c_of(float x, float e)
{
    return x >= 0.0f ? -(e / (1.0f + e)) : -(1.0f / (1.0f + e));
}

/* -ln sigma(x) from the same e, as advrec_apr_loss_of_x(). */
static inline float loss_of(float x, float e)
{
    return x >= 0.0f ? log1pf(e) : -x + log1pf(e);
}

/* v, or +0 when keep is 0 (keep: all ones or 0). A bit mask, not a branch
 * or a ?: (which kept the loops from vectorising): the result is the same
 * +0 that normalise_to()'s memset gives a zero row. */
static inline float pick(uint32_t keep, float v)
{
    uint32_t b;

    memcpy(&b, &v, sizeof(b));
    b &= keep;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/* BPR's gradient at one coordinate from the old values, as
 * advrec_apr_objective_grad() without Delta. */
static inline grad3_t bpr_g(float pn, float in, float jn, float c, float reg2)
{
    grad3_t g = {c * (in - jn), c * pn, -(c * pn)};

    g.p += reg2 * pn;
    g.i += reg2 * in;
    g.j += reg2 * jn;
    return g;
}

/* Sums of the squared gradient of the three rows, eight lanes each as
 * dot(g, g): row-wise Adagrad needs them before any coordinate is written. */
APR_CLONES
static void fused_bpr_sq(int k, const float *restrict p,
                         const float *restrict qi, const float *restrict qj,
                         float c, float reg2, float sq[3])
{
    float a[8] = {0}, b[8] = {0}, d[8] = {0};
    float ta = 0.0f, tb = 0.0f, td = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            grad3_t g = bpr_g(p[n + l], qi[n + l], qj[n + l], c, reg2);
            a[l] += g.p * g.p;
            b[l] += g.i * g.i;
            d[l] += g.j * g.j;
        }
    for (; n < k; n++) {
        grad3_t g = bpr_g(p[n], qi[n], qj[n], c, reg2);
        ta += g.p * g.p;
        tb += g.i * g.i;
        td += g.j * g.j;
    }
    sq[0] = lanes(a, ta);
    sq[1] = lanes(b, tb);
    sq[2] = lanes(d, td);
}

/* The update, with the gradient recomputed from the old values (cheaper
 * than a scratch round trip, and the same bits). */
APR_CLONES
static void fused_bpr(int k, float *restrict p, float *restrict qi,
                      float *restrict qj, float c, float reg2, mult3_t m)
{
    for (int n = 0; n < k; n++) {
        grad3_t g = bpr_g(p[n], qi[n], qj[n], c, reg2);

        p[n] -= m.p * g.p;
        qi[n] -= m.i * g.i;
        qj[n] -= m.j * g.j;
    }
}

/* The squared norms of the clean gradient rows g_u = c (qi - qj), g_i = c p
 * (g_j = -g_i has g_i's), eight lanes each as dot(). */
APR_CLONES
static void fused_norms(int k, const float *restrict p,
                        const float *restrict qi, const float *restrict qj,
                        float c, float *su2, float *si2)
{
    float a[8] = {0}, b[8] = {0};
    float ta = 0.0f, tb = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            float gu = c * (qi[n + l] - qj[n + l]), gi = c * p[n + l];
            a[l] += gu * gu;
            b[l] += gi * gi;
        }
    for (; n < k; n++) {
        float gu = c * (qi[n] - qj[n]), gi = c * p[n];
        ta += gu * gu;
        tb += gi * gi;
    }
    *su2 = lanes(a, ta);
    *si2 = lanes(b, tb);
}

/* FGSM's Delta at one coordinate, recomputed from the old values (pn, in,
 * jn) where it is used instead of stored: su, si the scales, ku, ki, kj the
 * keep masks (g_j = -g_i, so Delta_j uses g_i's scale). */
typedef struct delta_s {
    float u, i, j;
} delta_t;

static inline delta_t delta_at(float pn, float in, float jn, float c, float su,
                               float si, uint32_t ku, uint32_t ki, uint32_t kj)
{
    delta_t d;

    d.u = pick(ku, su * (c * (in - jn)));
    d.i = pick(ki, si * (c * pn));
    d.j = pick(kj, si * -(c * pn));
    return d;
}

/* x' = (p + du) . ((qi + di) - (qj + dj)), as dot_diff_pert(). */
APR_CLONES
static float fused_xadv(int k, const float *restrict p,
                        const float *restrict qi, const float *restrict qj,
                        float c, float su, float si, uint32_t ku, uint32_t ki,
                        uint32_t kj)
{
    float s[8] = {0};
    float tail = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            int m = n + l;
            delta_t d = delta_at(p[m], qi[m], qj[m], c, su, si, ku, ki, kj);
            s[l] += (p[m] + d.u) * ((qi[m] + d.i) - (qj[m] + d.j));
        }
    for (; n < k; n++) {
        delta_t d = delta_at(p[n], qi[n], qj[n], c, su, si, ku, ki, kj);
        tail += (p[n] + d.u) * ((qi[n] + d.i) - (qj[n] + d.j));
    }
    return lanes(s, tail);
}

/* APR's gradient at one coordinate from the old values, as
 * advrec_apr_objective_grad() with FGSM's Delta. */
typedef struct adv_s {
    float c, su, si, lc, reg2;
    uint32_t ku, ki, kj;
} adv_t;

static inline grad3_t apr_g(float pn, float in, float jn, const adv_t *a)
{
    delta_t d = delta_at(pn, in, jn, a->c, a->su, a->si, a->ku, a->ki, a->kj);
    float pa = pn + d.u;
    grad3_t g = {a->c * (in - jn), a->c * pn, -(a->c * pn)};

    g.p += a->lc * ((in + d.i) - (jn + d.j));
    g.i += a->lc * pa;
    g.j -= a->lc * pa;
    g.p += a->reg2 * pn;
    g.i += a->reg2 * in;
    g.j += a->reg2 * jn;
    return g;
}

/* As fused_bpr_sq(), for APR's gradient, which is also kept in gp, gi, gj
 * (k floats each, the caller's scratch): recomputing it for the update
 * (Delta and all) cost more than the round trip through L1. */
APR_CLONES
static void fused_apr_sq(int k, const float *restrict p,
                         const float *restrict qi, const float *restrict qj,
                         adv_t a, float sq[3], float *restrict gp,
                         float *restrict gi, float *restrict gj)
{
    float s0[8] = {0}, s1[8] = {0}, s2[8] = {0};
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            grad3_t g = apr_g(p[n + l], qi[n + l], qj[n + l], &a);
            gp[n + l] = g.p;
            gi[n + l] = g.i;
            gj[n + l] = g.j;
            s0[l] += g.p * g.p;
            s1[l] += g.i * g.i;
            s2[l] += g.j * g.j;
        }
    for (; n < k; n++) {
        grad3_t g = apr_g(p[n], qi[n], qj[n], &a);
        gp[n] = g.p;
        gi[n] = g.i;
        gj[n] = g.j;
        t0 += g.p * g.p;
        t1 += g.i * g.i;
        t2 += g.j * g.j;
    }
    sq[0] = lanes(s0, t0);
    sq[1] = lanes(s1, t1);
    sq[2] = lanes(s2, t2);
}

APR_CLONES
static void fused_apr(int k, float *restrict p, float *restrict qi,
                      float *restrict qj, const float *restrict gp,
                      const float *restrict gi, const float *restrict gj,
                      mult3_t m)
{
    for (int n = 0; n < k; n++) {
        p[n] -= m.p * gp[n];
        qi[n] -= m.i * gi[n];
        qj[n] -= m.j * gj[n];
    }
}

static void count_update(const advrec_apr_row_t *row)
{
    if (row->updates && *row->updates != UINT32_MAX)
        (*row->updates)++;
}

/* The step from the pieces above, through scratch: what PGD runs, and the
 * reference the fused step is tested against. Arguments already checked. */
static void step_general(const advrec_apr_params_t *params,
                         const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                         const advrec_apr_row_t *j, float weight, int allow_adv,
                         float *scratch, advrec_apr_result_t *result)
{
    const int k = params->k;
    float *gp = scratch, *gi = scratch + k, *gj = scratch + 2 * k;
    float *du = scratch + 3 * k, *di = scratch + 4 * k, *dj = scratch + 5 * k;
    float *pgd_scratch = scratch + 6 * k;
    int use_bias = params->use_bias && i->bias && j->bias;
    float bi = use_bias ? *i->bias : 0.0f;
    float bj = use_bias ? *j->bias : 0.0f;
    int adversarial;
    unsigned rows;
    float gb[2], loss, adv_loss;
    advrec_apr_params_t eff = *params;

    eff.use_bias = use_bias;
    rows = allow_adv ? advrec_apr_warmed(params, u, i, j) : 0u;
    adversarial = rows != 0;
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

/* The fused step (BPR, or APR with FGSM): see fused_x() for why it
 * computes what step_general() does, bit for bit. rows: the warm rows
 * (ADVREC_APR_ROW_*), 0 for a step without the adversarial term. */
static void step_fused(const advrec_apr_params_t *params,
                       const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                       const advrec_apr_row_t *j, float weight, unsigned rows,
                       float *scratch, advrec_apr_result_t *result)
{
    const int k = params->k;
    float *p = u->w, *qi = i->w, *qj = j->w;
    int use_bias = params->use_bias && i->bias && j->bias;
    float bi = use_bias ? *i->bias : 0.0f;
    float bj = use_bias ? *j->bias : 0.0f;
    float x = fused_x(k, p, qi, qj) + (bi - bj);
    float e = expf(x >= 0.0f ? -x : x);
    adv_t a = {c_of(x, e), 0.0f, 0.0f, 0.0f, 2.0f * params->reg, 0, 0, 0};
    float gbi = a.c, gbj = -a.c, adv = 0.0f;
    float step, init, sq[3];
    mult3_t m;

    if (rows) {
        float su2, si2, xa, ea;

        fused_norms(k, p, qi, qj, a.c, &su2, &si2);
        a.su = fgsm_scale(su2, params->adv_eps, rows & ADVREC_APR_ROW_U, &a.ku);
        a.si = fgsm_scale(si2, params->adv_eps, rows & ADVREC_APR_ROW_I, &a.ki);
        (void)fgsm_scale(si2, params->adv_eps, rows & ADVREC_APR_ROW_J, &a.kj);
        xa = fused_xadv(k, p, qi, qj, a.c, a.su, a.si, a.ku, a.ki, a.kj) +
             (bi - bj);
        ea = expf(xa >= 0.0f ? -xa : xa);
        a.lc = params->adv_lambda * c_of(xa, ea);
        if (result)
            adv = loss_of(xa, ea);
        gbi += a.lc;
        gbj -= a.lc;
    }
    if (result) {
        result->loss = loss_of(x, e);
        result->adv_loss = adv;
        result->adversarial = rows != 0;
        result->updated = weight > 0.0f;
    }
    if (weight == 0.0f)
        return;
    step = params->lr * weight;
    init = params->adagrad_init;
    /* Row-wise Adagrad: the rows' squared gradient first (one pass that
     * only reads), then the accumulators, then the rows. */
    if (rows)
        fused_apr_sq(k, p, qi, qj, a, sq, scratch, scratch + k,
                     scratch + 2 * k);
    else
        fused_bpr_sq(k, p, qi, qj, a.c, a.reg2, sq);
    m.p = rowwise_at(u->acc, sq[0], k, step, init);
    m.i = rowwise_at(i->acc, sq[1], k, step, init);
    m.j = rowwise_at(j->acc, sq[2], k, step, init);
    if (rows)
        fused_apr(k, p, qi, qj, scratch, scratch + k, scratch + 2 * k, m);
    else
        fused_bpr(k, p, qi, qj, a.c, a.reg2, m);
    if (use_bias) {
        adagrad1(step, init, i->bias, i->bias_acc, gbi + a.reg2 * bi);
        adagrad1(step, init, j->bias, j->bias_acc, gbj + a.reg2 * bj);
    }
    count_update(u);
    count_update(i);
    count_update(j);
}

advrec_err_t advrec_apr_step(const advrec_apr_params_t *params,
                             const advrec_apr_row_t *u,
                             const advrec_apr_row_t *i,
                             const advrec_apr_row_t *j, float weight,
                             int allow_adv, float *scratch,
                             advrec_apr_result_t *result)
{
    unsigned rows;

    if (i->w == j->w || !isfinite(weight) || weight < 0.0f)
        return ADVREC_ERR_INVALID_ARG;
    rows = allow_adv ? advrec_apr_warmed(params, u, i, j) : 0u;
    if (rows && params->adv_steps > 1)
        step_general(params, u, i, j, weight, allow_adv, scratch, result);
    else
        step_fused(params, u, i, j, weight, rows, scratch, result);
    return ADVREC_OK;
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
