/*
 * apr.h - online Adversarial Personalized Ranking (BPR-MF + adversarial
 * perturbations of the embeddings), one event at a time.
 *
 * He, He, Du, Chua, "Adversarial Personalized Ranking for Recommendation",
 * SIGIR 2018 (arXiv 1808.03908). docs/MODEL.md has the exact equations as
 * implemented here; this header names the pieces.
 *
 * The module owns no memory. Rows are views (advrec_apr_row_t) over memory
 * the state store owns; the step writes through them in place. Callers hand
 * in a scratch buffer of advrec_apr_scratch_floats(k) floats, so a step
 * allocates nothing.
 *
 * Determinism: every function here is a fixed sequence of float operations
 * (no reductions whose order depends on the data or the thread count), so the
 * same inputs give bit-identical outputs with the same binary and libm.
 */
#ifndef ADVREC_APR_H
#define ADVREC_APR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"

typedef struct advrec_apr_params_s {
    int k;               /* factors per row, 1..ADVREC_APR_K_MAX */
    float lr;            /* Adagrad learning rate (0.05) */
    float reg;           /* L2: reg * ||theta||^2 per row involved (0) */
    float adv_lambda;    /* weight of the adversarial loss (1) */
    float adv_eps;       /* L2 radius of the perturbation, per row (0.5) */
    uint32_t adv_warmup; /* updates each row needs before the adv term (0) */
    int adv_steps;       /* 1: FGSM; > 1: PGD with that many steps (1) */
    float adagrad_init;  /* Adagrad's initial accumulator (TensorFlow's
                            initial_accumulator_value; the APR paper's code
                            runs with 0.1) (0) */
    int use_bias;        /* item biases b_i (0) */
    float init_std;      /* initial factors ~ N(0, init_std^2) (0.01) */
    uint64_t seed;       /* derives initial factors (0) */
} advrec_apr_params_t;

#define ADVREC_APR_K_MAX 4096

/* Which table a row belongs to: salts the initialisation stream so that a
 * user and an item with the same id string get different factors. */
typedef enum advrec_apr_table_e {
    ADVREC_APR_USER = 1,
    ADVREC_APR_ITEM = 2,
} advrec_apr_table_t;

/*
 * A row: pointers into memory owned by the caller (the state store). w holds
 * k floats, acc one (row-wise Adagrad's accumulator for the whole row).
 * bias and bias_acc are one float each for items when
 * biases are on, NULL otherwise (user rows never have a bias). updates counts
 * the steps that touched the row (saturating); it drives the warm-up.
 */
typedef struct advrec_apr_row_s {
    float *w;
    float *acc;
    float *bias;
    float *bias_acc;
    uint32_t *updates;
} advrec_apr_row_t;

/* What one step did. Losses are measured before the update. */
typedef struct advrec_apr_result_s {
    float loss;      /* clean BPR loss -ln sigma(x_uij) */
    float adv_loss;  /* BPR loss at Theta + Delta; 0 without the adv term */
    int adversarial; /* 1 if the adversarial term was part of the step */
    int updated;     /* 0 when the weight was 0: nothing was written */
} advrec_apr_result_t;

/* An observed (user, positive item, negative item) triple, dense indices. */
typedef struct advrec_apr_triple_s {
    uint32_t u, i, j;
} advrec_apr_triple_t;

/* The reference defaults (DESIGN.md): k 64, lr 0.05, reg 0, lambda 1,
 * eps 0.5, warm-up 0, FGSM, adagrad_init 0, no biases, init_std 0.01,
 * seed 0. */
void advrec_apr_params_default(advrec_apr_params_t *params);

/* Checks ranges (k, lr > 0, reg >= 0, lambda >= 0, eps >= 0, steps >= 1,
 * init_std >= 0, all finite). On failure returns ADVREC_ERR_CONFIG and names
 * the field in errstr. params is only read. */
advrec_err_t advrec_apr_params_check(const advrec_apr_params_t *params,
                                     char *errstr, size_t errstr_size);

/* Floats of scratch advrec_apr_step() needs for k factors (12 k). */
size_t advrec_apr_scratch_floats(int k);

/*
 * Initialises the row for entity id of table: w ~ N(0, init_std^2) drawn
 * from advrec_rng_for_id(seed salted by table, id); accumulators, bias and
 * updates zeroed. The row's buffers are the caller's; id is only read.
 */
void advrec_apr_row_init(const advrec_apr_params_t *params,
                         advrec_apr_table_t table, const char *id,
                         const advrec_apr_row_t *row);

/* A negative item for positive pos, uniform over the other n_items - 1 items
 * with one draw from rng (so never pos). n_items must be >= 2. */
uint32_t advrec_apr_sample_negative(advrec_rng_t *rng, uint32_t n_items,
                                    uint32_t pos);

/* p . q (+ *bias when bias is not NULL): the ranking score of an item. */
float advrec_apr_score(int k, const float *p, const float *q,
                       const float *bias);

/* x_uij = p . (qi - qj) + bi - bj. */
float advrec_apr_x(int k, const float *p, const float *qi, const float *qj,
                   float bi, float bj);

/* -ln sigma(x), computed without overflow for any finite x. */
float advrec_apr_loss_of_x(float x);

/*
 * The clean BPR gradient at (p, qi, qj, bi, bj): writes dL/dp, dL/dqi, dL/dqj
 * (k floats each, caller's buffers, no aliasing with the inputs) and returns
 * c = dL/dx = -sigma(-x); dL/dbi = c, dL/dbj = -c. *x_out (may be NULL)
 * receives x_uij.
 */
float advrec_apr_grad(int k, const float *p, const float *qi, const float *qj,
                      float bi, float bj, float *gp, float *gi, float *gj,
                      float *x_out);

/*
 * FGSM: Delta_r = eps * g_r / ||g_r|| per row r in (p, qi, qj), g the clean
 * gradient; a row whose gradient is 0 gets Delta_r = 0. Writes du, di, dj
 * (k floats each, caller's). Biases are not perturbed.
 */
void advrec_apr_fgsm(int k, float eps, const float *p, const float *qi,
                     const float *qj, float bi, float bj, float *du, float *di,
                     float *dj);

/*
 * PGD with `steps` iterations (L2 ball of radius eps per row, step size
 * alpha = eps / steps, Delta_0 = 0):
 *   Delta <- Proj_{||.|| <= eps}(Delta + alpha * g(Theta + Delta) / ||g||)
 * per row. steps == 1 gives exactly advrec_apr_fgsm(). scratch: 6 k floats.
 */
void advrec_apr_pgd(int k, float eps, int steps, const float *p,
                    const float *qi, const float *qj, float bi, float bj,
                    float *du, float *di, float *dj, float *scratch);

/*
 * The gradient of the full per-event objective with the perturbation held
 * constant:
 *   J = L(Theta) + lambda * L(Theta + Delta)
 *       + reg * (||p||^2 + ||qi||^2 + ||qj||^2 + bi^2 + bj^2)
 * (the bias terms only when params->use_bias). du, di, dj may all be NULL:
 * then J has no adversarial term. Writes gp, gi, gj (k each) and gb[0] =
 * dJ/dbi, gb[1] = dJ/dbj; returns the clean loss L(Theta) and stores
 * L(Theta + Delta) in *adv_loss (may be NULL; 0 without Delta).
 */
float advrec_apr_objective_grad(const advrec_apr_params_t *params,
                                const float *p, const float *qi,
                                const float *qj, float bi, float bj,
                                const float *du, const float *di,
                                const float *dj, float *gp, float *gi,
                                float *gj, float gb[2], float *adv_loss);

/* The rows of a triple, as bits of advrec_apr_warmed()'s mask. */
#define ADVREC_APR_ROW_U 1u /* the user */
#define ADVREC_APR_ROW_I 2u /* the positive item */
#define ADVREC_APR_ROW_J 4u /* the negative item */

/* Which rows have had at least params->adv_warmup updates (ADVREC_APR_ROW_*
 * bits; all three with warm-up 0). */
unsigned advrec_apr_warmed(const advrec_apr_params_t *params,
                           const advrec_apr_row_t *u, const advrec_apr_row_t *i,
                           const advrec_apr_row_t *j);

/*
 * One online APR step for the positive event (u, i) and negative item j.
 * The adversarial term is used when allow_adv is set and at least one row is
 * warmed up (advrec_apr_warmed()); Delta comes from FGSM (adv_steps 1) or
 * PGD, and is 0 on the rows not yet warmed up (a row is perturbed only once
 * it has been trained: the online analogue of APR's BPR pre-training).
 * The update is row-wise Adagrad on the gradient of J above, scaled by
 * weight; per row r with gradient G_r (k coordinates):
 *   acc_r += mean_n(G_rn^2);
 *   theta_r -= lr * weight / sqrt(acc_r + 1e-20 + adagrad_init) * G_r
 * (item biases: the same with their own accumulator, k = 1; adagrad_init is
 * the accumulator's starting value, kept out of the stored accumulator so
 * rows need no re-initialisation)
 * weight 0 writes nothing (quarantine). Rows are updated in place and must
 * not overlap (u from the user table, i != j from the item table); scratch
 * is the caller's (advrec_apr_scratch_floats(k) floats; FGSM and PGD use it,
 * its contents afterwards are unspecified). result may be NULL.
 * BPR and FGSM steps run fused and vectorised, with the same bits as the
 * pieces above composed (docs/MODEL.md, "Speed").
 * Returns ADVREC_ERR_INVALID_ARG, writing nothing, when i and j are the same
 * row or weight is negative or not finite.
 */
advrec_err_t advrec_apr_step(const advrec_apr_params_t *params,
                             const advrec_apr_row_t *u,
                             const advrec_apr_row_t *i,
                             const advrec_apr_row_t *j, float weight,
                             int allow_adv, float *scratch,
                             advrec_apr_result_t *result);

/*
 * The robustness experiment's attack on whole embedding tables (APR paper,
 * section 3): the gradient of sum_t L(u_t, i_t, j_t) over the n_triples
 * triples is accumulated per row into grad_users (n_users x k) and grad_items
 * (n_items x k), both the caller's and overwritten; then every row with a
 * non-zero gradient moves by eps * g_r / ||g_r|| (per row, as the paper's
 * code normalises). users (n_users x k) and items (n_items x k) are row-major
 * and changed in place; item_bias (n_items, may be NULL) is only read.
 * Returns ADVREC_ERR_INVALID_ARG, changing nothing, on an index out of range.
 */
advrec_err_t advrec_apr_perturb_tables(int k, float eps, float *users,
                                       size_t n_users, float *items,
                                       size_t n_items, const float *item_bias,
                                       const advrec_apr_triple_t *triples,
                                       size_t n_triples, float *grad_users,
                                       float *grad_items);

#endif
