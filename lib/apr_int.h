/*
 * apr_int.h - the APR module's internals, shared by its two files and by
 * nothing else (not installed):
 *
 *   apr.c        the pieces (score, x, the gradient, FGSM, PGD, the
 *                objective's gradient, Adagrad on a row), the step built
 *                from them (PGD's, and the reference the fused step is
 *                tested against), and the attack on whole tables;
 *   apr_fused.c  advrec_apr_step(): the fused, vectorised step (BPR, or
 *                APR with FGSM; target_clones loops), or apr.c's step for
 *                PGD.
 *
 * The split follows what is built for speed: apr_fused.c's loops are
 * cloned for AVX2 and the baseline, and compute the bits of apr.c's plain
 * pieces (test_fused_step_matches_pieces). advrec_apr_step(), and
 * advrec_apr_warmed() which it calls first, sit with the fused step so
 * that the compiler still inlines the step into advrec_apr_step(): a call
 * between the two files cost about 30 instructions a step (2 % of a BPR
 * step, callgrind). What both steps do to a row once its gradient is known
 * (Adagrad's accumulator and multiplier, the update count) lives here,
 * once.
 */
#ifndef ADVREC_APR_INT_H
#define ADVREC_APR_INT_H

#include <math.h>
#include <stdint.h>

#include "apr.h"

/* Added under the square root of the Adagrad accumulator: a row whose
 * gradients have all been 0 so far takes a zero step instead of 0/0. It is
 * tiny on purpose: a tiny eps keeps Adagrad invariant to a constant factor
 * on the objective, which is what makes APR with eps = 0 (objective
 * (1 + lambda) L) take the same steps as BPR. With 1e-8 a coordinate whose
 * gradient is near 1e-4 moved up to 20 % more under APR(eps = 0) than under
 * BPR. */
#define ADAGRAD_EPS 1e-20f

/* Adagrad on one coordinate (an item bias) with a per-event step scale
 * (lr * weight); init is the accumulator's starting value (0 adds exactly
 * nothing). */
static inline void adagrad1(float step, float init, float *w, float *acc,
                            float g)
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

/* One more step for the row's warm-up count (saturating; rows without a
 * count are left alone). */
static inline void count_update(const advrec_apr_row_t *row)
{
    if (row->updates && *row->updates != UINT32_MAX)
        (*row->updates)++;
}

/*
 * The step from the pieces (apr.c): PGD's (what advrec_apr_step() runs
 * when adv_steps > 1 and a row is warm), and for BPR and FGSM the
 * reference the fused step (apr_fused.c) matches bit for bit. rows: the
 * warm rows (ADVREC_APR_ROW_*, advrec_apr_warmed()), 0 for a step without
 * the adversarial term. Arguments as advrec_apr_step()'s, already checked
 * there; scratch: advrec_apr_scratch_floats(k) floats; result may be NULL.
 */
void advrec_apr__step_general(const advrec_apr_params_t *params,
                              const advrec_apr_row_t *u,
                              const advrec_apr_row_t *i,
                              const advrec_apr_row_t *j, float weight,
                              unsigned rows, float *scratch,
                              advrec_apr_result_t *result);

#endif
