/*
 * step_bench.c - our training step's rate in updates per CPU-second on real
 * data (not a test): the rate issue 10 compares with implicit's and
 * cornac's BPR (bench/step_bench.sh runs all of them on the same pairs).
 *
 *   advrec-step-bench [--passes N] [--repeat R] [--write-split DIR]
 *                     [--models bpr,apr] [--checksum] DATA
 *
 * DATA is read as advrec-eval reads it (format detected); the training
 * pairs are its leave-one-out training part with split seed 42, the very
 * pairs advrec-eval --write-split (and --write-split DIR here) writes to
 * DIR/train.tsv for the peers. Training is advrec_eval_train(), the code
 * advrec-eval runs: a shuffle per pass, one negative per pair drawn outside
 * the user's training items, one advrec_apr_step() each, k = 64, item
 * biases, Adagrad initial accumulator 0.1. APR is measured with every step
 * adversarial (no BPR pre-training, no warm-up), so its figure is the
 * FGSM step's cost. Timed: the training call only, in process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID), one thread. Each of R repeats trains a fresh
 * model; one line per model and repeat on stdout:
 *
 *   ours-bpr <updates> <cpu_s>
 *
 * With --checksum, a third field: a 64-bit hash of the trained tables
 * (factors, accumulators, biases), to check that a faster step trains
 * bit for bit the same model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval.h"
#include "rng.h"
#include "state.h"

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* FNV-1a over the trained rows: factors, accumulators, biases. */
static uint64_t checksum(advrec_state_t *model)
{
    advrec_rows_t *t[2] = {advrec_state_users(model),
                           advrec_state_items(model)};
    uint64_t h = advrec_hash64_bytes(NULL, 0);

    for (int x = 0; x < 2; x++) {
        size_t n = (size_t)t[x]->n * t[x]->k;
        h ^= advrec_hash64_bytes(t[x]->w, n * sizeof(float));
        h = advrec_mix64(
            h ^ advrec_hash64_bytes(t[x]->acc, t[x]->n * sizeof(float)));
        h = advrec_mix64(
            h ^ advrec_hash64_bytes(t[x]->bias, t[x]->n * sizeof(float)));
    }
    return h;
}

static int run(const advrec_eval_data_t *d, const advrec_eval_split_t *s,
               int apr, uint32_t passes, int with_checksum)
{
    char errstr[512];
    advrec_eval_train_t tp;
    advrec_state_t *model;
    double t0, dt;

    memset(&tp, 0, sizeof(tp));
    advrec_apr_params_default(&tp.apr);
    tp.apr.k = 64;
    tp.apr.lr = 0.2f;
    tp.apr.reg = 0.01f;
    tp.apr.use_bias = 1;
    tp.apr.adagrad_init = 0.1f;
    tp.apr.seed = 42;
    tp.apr.adv_lambda = apr ? 0.35f : 0.0f;
    tp.epochs = passes;
    tp.bpr_epochs = apr ? 0 : passes;
    tp.negatives = 1;
    tp.seed = 42;
    model = advrec_eval_model_new(d, &tp.apr, errstr, sizeof(errstr));
    if (!model) {
        fprintf(stderr, "advrec-step-bench: %s\n", errstr);
        return -1;
    }
    t0 = cpu_s();
    if (advrec_eval_train(model, s, s->train, s->n_train, &tp, NULL, NULL,
                          errstr, sizeof(errstr))) {
        fprintf(stderr, "advrec-step-bench: %s\n", errstr);
        advrec_state_destroy(model);
        return -1;
    }
    dt = cpu_s() - t0;
    printf("ours-%s %zu %.4f", apr ? "apr" : "bpr", s->n_train * passes, dt);
    if (with_checksum)
        printf(" %016llx", (unsigned long long)checksum(model));
    printf("\n");
    fflush(stdout);
    advrec_state_destroy(model);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t passes = 10, repeat = 1;
    const char *split_dir = NULL, *models = "bpr,apr", *path = NULL;
    char errstr[512];
    advrec_eval_data_t *d;
    advrec_eval_split_t s;
    int rc = 0, with_checksum = 0;

    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--passes") && a + 1 < argc)
            passes = (uint32_t)atoi(argv[++a]);
        else if (!strcmp(argv[a], "--repeat") && a + 1 < argc)
            repeat = (uint32_t)atoi(argv[++a]);
        else if (!strcmp(argv[a], "--write-split") && a + 1 < argc)
            split_dir = argv[++a];
        else if (!strcmp(argv[a], "--models") && a + 1 < argc)
            models = argv[++a];
        else if (!strcmp(argv[a], "--checksum"))
            with_checksum = 1;
        else if (argv[a][0] != '-' && !path)
            path = argv[a];
        else {
            fprintf(
                stderr,
                "usage: advrec-step-bench [--passes N] [--repeat R] "
                "[--write-split DIR] [--models bpr,apr] [--checksum] DATA\n");
            return 64;
        }
    }
    if (!path || passes < 1 || repeat < 1) {
        fprintf(stderr, "advrec-step-bench: DATA, passes >= 1, repeat >= 1\n");
        return 64;
    }
    d = advrec_eval_data_new();
    if (!d || advrec_eval_data_load(d, path, NULL, NULL, NULL, NULL, errstr,
                                    sizeof(errstr))) {
        fprintf(stderr, "advrec-step-bench: %s\n", d ? errstr : "no memory");
        advrec_eval_data_destroy(d);
        return 66;
    }
    if (advrec_eval_split_loo(&s, d, 99, 42)) {
        fprintf(stderr, "advrec-step-bench: no memory for the split\n");
        advrec_eval_data_destroy(d);
        return 70;
    }
    if (split_dir &&
        advrec_eval_split_write(&s, d, split_dir, errstr, sizeof(errstr))) {
        fprintf(stderr, "advrec-step-bench: %s\n", errstr);
        rc = 73;
        goto out;
    }
    fprintf(stderr,
            "advrec-step-bench: %s: %u users, %u items, %zu training "
            "pairs, %u passes\n",
            path, s.n_users, s.n_items, s.n_train, passes);
    for (uint32_t r = 0; r < repeat && !rc; r++) {
        if (strstr(models, "bpr") && run(d, &s, 0, passes, with_checksum))
            rc = 70;
        if (!rc && strstr(models, "apr") &&
            run(d, &s, 1, passes, with_checksum))
            rc = 70;
    }
out:
    advrec_eval_split_free(&s);
    advrec_eval_data_destroy(d);
    return rc;
}
