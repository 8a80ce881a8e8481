/*
 * apr_fused.c - advrec_apr_step(): the fused, vectorised APR step (BPR,
 * or APR with FGSM); PGD runs apr.c's step from the pieces.
 *
 * Owns nothing, as apr.c: rows and scratch belong to the caller. The step
 * runs in passes over the three rows (x; with FGSM the clean gradient's
 * norms and x at Theta + Delta; the squared norms of the gradient G; the
 * update) instead of apr.c's dozen loops over scratch arrays. Every
 * coordinate of G depends only on the old values of that coordinate once
 * c (and c') are known, so BPR's G is recomputed where it is used instead
 * of stored (APR's, Delta and all, is kept in scratch between its two
 * passes: fused_sq()), the perturbation is recomputed where it is used,
 * and row-wise Adagrad needs only the three sums of G^2 before the update
 * pass. The float operations and their order are those of apr.c's
 * advrec_apr_fgsm() + advrec_apr_objective_grad() + adagrad_row(), term
 * for term (checked bit for bit against them by
 * test_fused_step_matches_pieces), and ||g_j|| is ||g_i|| (g_j = -g_i
 * exactly). A helper below that says "as dot()" (or another piece) adds in
 * the order of that piece of apr.c.
 *
 * Built twice on x86-64 (AVX2 and the baseline, picked at load time by the
 * ifunc that target_clones makes): the loops are element-wise or reduce in
 * eight fixed lanes, sqrt and division are correctly rounded at any vector
 * width, and -std=c11 keeps FMA contraction off, so both clones compute the
 * same bits; the shipped build still runs on any x86-64. This file has its
 * own compile flags (CMakeLists.txt says which and why); none of them
 * changes a result.
 */
#include "apr_int.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* The gradient at one coordinate: APR's when adv is set, else BPR's
 * (which reads only a->c and a->reg2). Always inlined: left to GCC 12 at
 * -O3, it came in too late for the BPR pass's eight lanes to be unrolled
 * and vectorised as they were when the loop was written out. */
static inline __attribute__((always_inline)) grad3_t
step_g(float pn, float in, float jn, const adv_t *a, int adv)
{
    return adv ? apr_g(pn, in, jn, a) : bpr_g(pn, in, jn, a->c, a->reg2);
}

/* Sums of the squared gradient of the three rows, eight lanes each as
 * dot(g, g): row-wise Adagrad needs them before any coordinate is written.
 * With adv, APR's gradient, which is also kept in gp, gi, gj (k floats
 * each, the caller's scratch): recomputing it for the update (Delta and
 * all) cost more than the round trip through L1. Without, BPR's, which
 * fused_bpr() recomputes: gp, gi, gj are not written (may be NULL).
 * The one body of fused_bpr_sq() and fused_apr_sq(): each passes adv as a
 * constant, so once inlined the branches fold away and each clone is the
 * loop it would be written out by hand. Always inlined: a copy of its own
 * would be built for the baseline only, not in the callers' AVX2 clones
 * (GCC 12 at -O2 kept the APR one out of line). */
static inline __attribute__((always_inline)) void
fused_sq(int k, const float *restrict p, const float *restrict qi,
         const float *restrict qj, const adv_t *a, int adv, float sq[3],
         float *restrict gp, float *restrict gi, float *restrict gj)
{
    float s0[8] = {0}, s1[8] = {0}, s2[8] = {0};
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
    int n = 0;

    for (; n + 8 <= k; n += 8)
        for (int l = 0; l < 8; l++) {
            grad3_t g = step_g(p[n + l], qi[n + l], qj[n + l], a, adv);
            if (adv) {
                gp[n + l] = g.p;
                gi[n + l] = g.i;
                gj[n + l] = g.j;
            }
            s0[l] += g.p * g.p;
            s1[l] += g.i * g.i;
            s2[l] += g.j * g.j;
        }
    for (; n < k; n++) {
        grad3_t g = step_g(p[n], qi[n], qj[n], a, adv);
        if (adv) {
            gp[n] = g.p;
            gi[n] = g.i;
            gj[n] = g.j;
        }
        t0 += g.p * g.p;
        t1 += g.i * g.i;
        t2 += g.j * g.j;
    }
    sq[0] = lanes(s0, t0);
    sq[1] = lanes(s1, t1);
    sq[2] = lanes(s2, t2);
}

APR_CLONES
static void fused_bpr_sq(int k, const float *restrict p,
                         const float *restrict qi, const float *restrict qj,
                         float c, float reg2, float sq[3])
{
    adv_t a = {c, 0.0f, 0.0f, 0.0f, reg2, 0, 0, 0};

    fused_sq(k, p, qi, qj, &a, 0, sq, NULL, NULL, NULL);
}

APR_CLONES
static void fused_apr_sq(int k, const float *restrict p,
                         const float *restrict qi, const float *restrict qj,
                         adv_t a, float sq[3], float *restrict gp,
                         float *restrict gi, float *restrict gj)
{
    fused_sq(k, p, qi, qj, &a, 1, sq, gp, gi, gj);
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

/* The fused step (BPR, or APR with FGSM): see the top of this file for why
 * it computes what apr.c's advrec_apr__step_general() does, bit for bit.
 * rows: the warm rows (ADVREC_APR_ROW_*), 0 for a step without the
 * adversarial term. */
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

unsigned advrec_apr_warmed(const advrec_apr_params_t *params,
                           const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                           const advrec_apr_row_t *j)
{
    uint32_t w = params->adv_warmup;

    return (*u->updates >= w ? ADVREC_APR_ROW_U : 0u) |
           (*i->updates >= w ? ADVREC_APR_ROW_I : 0u) |
           (*j->updates >= w ? ADVREC_APR_ROW_J : 0u);
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
        advrec_apr__step_general(params, u, i, j, weight, rows, scratch,
                                 result);
    else
        step_fused(params, u, i, j, weight, rows, scratch, result);
    return ADVREC_OK;
}
