/*
 * apr_fused.c - advrec_apr_step(): the fused, vectorised APR step (BPR,
 * or APR with FGSM); PGD runs apr.c's step from the pieces.
 *
 * Owns nothing, as apr.c: rows belong to the caller. The step reads the
 * three rows once and writes them once. With d = qi - qj, every vector it
 * needs is a combination of p and d (and of qi or qj for the
 * regularisation): FGSM's Delta_u = alpha d (g_u = c d), Delta_i - Delta_j
 * = beta p (g_i = -g_j = c p), so
 *
 *   x  = p.d + b_i - b_j
 *   x' = p.d + beta p.p + alpha d.d + alpha beta p.d + b_i - b_j
 *   g_p = A d + B p,  g_i = A p + E d + 2 reg qi,  g_j = -(A p + E d) + 2 reg
 * qj
 *
 * with A = c + lambda c', B = lambda c' beta + 2 reg, E = lambda c' alpha,
 * and the squared norms of g_u, g_i (FGSM's scales) and of g_p, g_i, g_j
 * (row-wise Adagrad's) are quadratic forms of seven inner products: p.p,
 * p.d, d.d, p.qi, qi.qi, qi.qj, qj.qj. One pass sums those (fused_dots),
 * the scalars follow in double, one pass updates the rows from their old
 * values (fused_update). apr.c's pieces (advrec_apr_fgsm(),
 * advrec_apr_objective_grad(), the per-coordinate passes) compute the same
 * step in five passes over scratch; test_fused_step_matches_pieces holds
 * the two within a relative 1e-5 (rounding: the norms here are expanded,
 * there summed coordinate by coordinate). x is summed exactly as
 * dot_diff() sums it, so the clean loss has the pieces' bits, and with
 * lambda 0 or no warm row the step is BPR's, bit for bit.
 *
 * Built twice on x86-64 (AVX2 and the baseline, picked at load time by the
 * ifunc that target_clones makes): the loops are element-wise or reduce in
 * eight fixed lanes, and -std=c11 keeps FMA contraction off, so both clones
 * compute the same bits; the shipped build still runs on any x86-64. This
 * file has its own compile flags (CMakeLists.txt says which and why); none
 * of them changes a result.
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

/* Row-wise Adagrad's step multipliers of the three rows. */
typedef struct mult3_s {
    float p, i, j;
} mult3_t;

/* The seven inner products of p, qi, qj (d = qi - qj) that the whole step
 * is a function of. */
typedef struct dots_s {
    float pp, pd, dd; /* p.p, p.d (x less the biases), d.d */
    float pi, ii, ij, jj;
} dots_t;

/* Eight floats as one value: GCC's and clang's vector extension, so each
 * accumulator is one register of the AVX2 clone (two of the baseline's)
 * with lane l adding the coordinates l, l + 8, ... as the arrays of eight
 * did; a two-dimensional array of lanes was shuffled through the stack. */
typedef float v8_t __attribute__((vector_size(32)));

/* Eight floats from f (any alignment). A macro: a function returning a
 * vector would have another ABI in the baseline build (-Wpsabi). */
#define LOAD8(v, f) memcpy(&(v), (f), sizeof(v8_t))

/* The eight-lane sum of a vector's lanes, as lanes(). */
static inline float lanes8(const v8_t *v, float tail)
{
    const float *s = (const float *)v;

    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) +
           tail;
}

/* The one pass that reads: the seven products, eight lanes each then the
 * tail. p.d adds as dot_diff() does, so x has the bits of apr.c's. */
APR_CLONES
static void fused_dots(int k, const float *restrict p, const float *restrict qi,
                       const float *restrict qj, dots_t *o)
{
    v8_t pp = {0}, pd = {0}, dd = {0}, pi = {0}, ii = {0}, ij = {0}, jj = {0};
    float t[7] = {0};
    int n = 0;

    for (; n + 8 <= k; n += 8) {
        v8_t pn, in, jn, dn;

        LOAD8(pn, p + n);
        LOAD8(in, qi + n);
        LOAD8(jn, qj + n);
        dn = in - jn;

        pp += pn * pn;
        pd += pn * dn;
        dd += dn * dn;
        pi += pn * in;
        ii += in * in;
        ij += in * jn;
        jj += jn * jn;
    }
    for (; n < k; n++) {
        float pn = p[n], in = qi[n], jn = qj[n];
        float dn = in - jn;

        t[0] += pn * pn;
        t[1] += pn * dn;
        t[2] += dn * dn;
        t[3] += pn * in;
        t[4] += in * in;
        t[5] += in * jn;
        t[6] += jn * jn;
    }
    o->pp = lanes8(&pp, t[0]);
    o->pd = lanes8(&pd, t[1]);
    o->dd = lanes8(&dd, t[2]);
    o->pi = lanes8(&pi, t[3]);
    o->ii = lanes8(&ii, t[4]);
    o->ij = lanes8(&ij, t[5]);
    o->jj = lanes8(&jj, t[6]);
}

/* The one pass that writes, from the old values: g_p = A d + B p,
 * g_i = A p + E d + reg2 qi, g_j = -(A p + E d) + reg2 qj. */
APR_CLONES
static void fused_update(int k, float *restrict p, float *restrict qi,
                         float *restrict qj, float a, float b, float e,
                         float reg2, mult3_t m)
{
    for (int n = 0; n < k; n++) {
        float pn = p[n], in = qi[n], jn = qj[n];
        float dn = in - jn, w = a * pn + e * dn;

        p[n] = pn - m.p * (a * dn + b * pn);
        qi[n] = in - m.i * (w + reg2 * in);
        qj[n] = jn - m.j * (reg2 * jn - w);
    }
}

/* FGSM's scale eps / ||g|| of a gradient row of squared norm sq; 0 where
 * apr.c's normalise_to() leaves Delta at 0 (a norm of 0 or not finite). */
static inline double fgsm_scale(double sq, float eps)
{
    double norm = sqrt(sq);

    return norm > 0.0 && isfinite(norm) ? eps / norm : 0.0;
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

/* A squared norm from its expansion: rounding may take a tiny one below 0. */
static inline float sq_of(double v)
{
    return v > 0.0 ? (float)v : 0.0f;
}

/* The fused step (BPR, or APR with FGSM): see the top of this file for the
 * algebra. rows: the warm rows (ADVREC_APR_ROW_*), 0 for a step without
 * the adversarial term. */
static void step_fused(const advrec_apr_params_t *params,
                       const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                       const advrec_apr_row_t *j, float weight, unsigned rows,
                       advrec_apr_result_t *result)
{
    const int k = params->k;
    float *p = u->w, *qi = i->w, *qj = j->w;
    int use_bias = params->use_bias && i->bias && j->bias;
    float bi = use_bias ? *i->bias : 0.0f;
    float bj = use_bias ? *j->bias : 0.0f;
    float reg2 = 2.0f * params->reg;
    float x, e, c, lc = 0.0f, adv = 0.0f, step, init;
    double alpha = 0.0, beta = 0.0, a, b, ee, w2, pj, gp2, gi2, gj2;
    dots_t o;
    mult3_t m;

    fused_dots(k, p, qi, qj, &o);
    x = o.pd + (bi - bj);
    e = expf(x >= 0.0f ? -x : x);
    c = c_of(x, e);
    if (rows) {
        /* Delta_u = alpha d, Delta_i - Delta_j = beta p: FGSM's rows are
         * multiples of d and p, so x' and the gradient's norms follow
         * from the seven products. */
        double cd = c, su, si, xa;
        float xaf, ea;

        su = fgsm_scale(cd * cd * o.dd, params->adv_eps);
        si = fgsm_scale(cd * cd * o.pp, params->adv_eps);
        alpha = rows & ADVREC_APR_ROW_U ? su * cd : 0.0;
        beta = ((rows & ADVREC_APR_ROW_I ? 1 : 0) +
                (rows & ADVREC_APR_ROW_J ? 1 : 0)) *
               si * cd;
        xa = o.pd + beta * o.pp + alpha * o.dd + alpha * beta * o.pd;
        xaf = (float)xa + (bi - bj);
        ea = expf(xaf >= 0.0f ? -xaf : xaf);
        lc = params->adv_lambda * c_of(xaf, ea);
        if (result)
            adv = loss_of(xaf, ea);
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
    /* g_p = a d + b p, g_i = a p + ee d + reg2 qi, g_j = -(a p + ee d) +
     * reg2 qj; their squared norms from the products, for row-wise Adagrad
     * before any coordinate is written. */
    a = (double)c + lc;
    b = lc * beta + reg2;
    ee = lc * alpha;
    pj = (double)o.pi - o.pd;
    gp2 = a * a * o.dd + 2.0 * a * b * o.pd + b * b * o.pp;
    w2 = a * a * o.pp + 2.0 * a * ee * o.pd + ee * ee * o.dd;
    gi2 = w2 + 2.0 * reg2 * (a * o.pi + ee * ((double)o.ii - o.ij)) +
          (double)reg2 * reg2 * o.ii;
    gj2 = w2 - 2.0 * reg2 * (a * pj + ee * ((double)o.ij - o.jj)) +
          (double)reg2 * reg2 * o.jj;
    m.p = rowwise_at(u->acc, sq_of(gp2), k, step, init);
    m.i = rowwise_at(i->acc, sq_of(gi2), k, step, init);
    m.j = rowwise_at(j->acc, sq_of(gj2), k, step, init);
    fused_update(k, p, qi, qj, (float)a, (float)b, (float)ee, reg2, m);
    if (use_bias) {
        float gb = (float)a;

        adagrad1(step, init, i->bias, i->bias_acc, gb + reg2 * bi);
        adagrad1(step, init, j->bias, j->bias_acc, -gb + reg2 * bj);
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
        step_fused(params, u, i, j, weight, rows, result);
    return ADVREC_OK;
}
