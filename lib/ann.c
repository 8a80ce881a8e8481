/*
 * ann.c - owns the builder thread, the item snapshot, the trained coarse
 * centroids, the index being built, the finished index waiting to be
 * swapped in, the index in use and the search scratch (ann.h).
 *
 * Who touches what: the snapshot is written by the processing thread only
 * while no job is queued (job == 0) and read by the builder only while one
 * is (job == 1); `ready` and the counters are under the lock; the index in
 * use and the search scratch belong to the processing thread alone, so a
 * search takes no lock and never waits for a build.
 */
#include "ann.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ann_faiss.h"
#include "err.h"
#include "rng.h"
#include "topn.h"

/* k-means of the coarse centroids: iterations, and points per list
 * sampled (Faiss's defaults, 25 and 256, cost minutes at 1 M items). */
#define TRAIN_ITER     10
#define TRAIN_PER_LIST 64
/* Faiss wants at least this many training points per list. */
#define MIN_PER_LIST 39
/* The probe count is tuned on at most this many users' exact top-N. */
#define TUNE_USERS 256
#define TUNE_N     10

/*
 * A search over one index with its own scratch: the processing thread has
 * one for the index in use, the builder one for the index it tunes, so
 * neither ever waits for the other.
 */
typedef struct searcher_s {
    advrec_faiss_t *idx;
    const float *probe; /* idx's probe rows, NULL for sq8 */
    uint32_t k;
    size_t nlist;
    uint32_t nprobe; /* lists searched per query */
    int sq8;
    float *q;
    size_t q_cap;
    float *dist;
    int64_t *labels;
    size_t dist_cap, labels_cap;
    /* The coarse step, done here with topn (ann_faiss.h says why). */
    const float *centroids; /* idx's, nlist x (k + 2) */
    float *chalf;           /* -|c|^2 / 2 per centroid (for adist) */
    size_t chalf_cap;
    float *cscratch; /* advrec_topn_batch's scratch */
    size_t cscratch_cap;
    advrec_topn_entry_t *ctop; /* 256 x nprobe */
    size_t ctop_cap;
    int64_t *assign; /* nq x nprobe: the lists to scan */
    float *adist;    /* their squared distances */
    size_t assign_cap, adist_cap;
    /* The scan of flat lists, done here with OpenBLAS. */
    float *sscores; /* one query's probed rows' inner products */
    int64_t *sids;  /* ... and their item ids */
    size_t sscores_cap, sids_cap;
    advrec_topn_entry_t *sbest; /* c best of them */
    size_t sbest_cap;
} searcher_t;

struct advrec_ann_s {
    advrec_ann_params_t p;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    /* Under lock. */
    int stop;
    int job;               /* a snapshot is queued or being built */
    advrec_faiss_t *ready; /* finished, not yet swapped in */
    size_t ready_n;
    uint32_t ready_k, ready_nlist;
    uint32_t ready_nprobe; /* tuned on the sample (or p.nprobe) */
    uint64_t ready_snap;   /* the snapshot it was built from (1-based) */
    float *ready_probe;    /* ready's probe rows (list_probe_rows) */
    advrec_ann_stats_t st; /* builds, trainings, last_*_s, sample_* */

    /* The snapshot: the caller's while job == 0, the builder's while 1. */
    float *snap;      /* snap_n x snap_k */
    float *snap_bias; /* snap_n, or unused when !snap_has_bias */
    size_t snap_cap, snap_bias_cap, snap_n;
    uint32_t snap_k;
    int snap_has_bias;
    float *snap_users; /* snap_nu x snap_k: the users recall is tuned on */
    uint64_t snap_seq; /* its number (1-based) */
    size_t snap_users_cap, snap_nu;

    /* The builder's alone. */
    float *aug; /* snap_n x (snap_k + 2) */
    size_t aug_cap;
    advrec_faiss_t *trained;
    size_t trained_n;
    uint32_t trained_d, trained_nlist;
    searcher_t tune;               /* over the index just built */
    advrec_topn_entry_t *truth;    /* TUNE_USERS x TUNE_N, exact */
    advrec_topn_entry_t *tune_got; /* TUNE_N, a served list */
    float *tune_scratch;           /* advrec_topn_batch's */
    size_t tune_scratch_cap;

    /* The processing thread's alone. */
    advrec_faiss_t *cur;
    size_t cur_n;
    float *cur_probe; /* cur's probe rows, NULL for sq8 */
    int64_t last_snap_ms;
    int have_snap;
    uint64_t snaps;    /* snapshots taken */
    uint64_t cur_snap; /* the one cur was built from (1-based) */
    searcher_t srch;   /* over cur */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The wall clock, for the time a build finished (shown, never compared). */
static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Grows *buf to hold n elements of size sz; 0, or -1 (buf unchanged). */
static int grow(void *buf, size_t *cap, size_t n, size_t sz)
{
    void *x;

    if (n <= *cap)
        return 0;
    x = realloc(*(void **)buf, n * sz);
    if (!x)
        return -1;
    *(void **)buf = x;
    *cap = n;
    return 0;
}

/*
 * The augmented rows of the snapshot into a->aug: factors, bias (or 0),
 * sqrt(M^2 - |x|^2). A row with a non-finite value becomes zeros: it is
 * never a candidate worth having, and Faiss's k-means must not see NaN.
 */
static int augment(advrec_ann_t *a)
{
    size_t n = a->snap_n;
    uint32_t k = a->snap_k, d = k + 2;
    double max2 = 0;

    if (grow(&a->aug, &a->aug_cap, n * d, sizeof(float)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        float *row = a->aug + i * d;
        double norm2 = 0;

        memcpy(row, a->snap + i * k, k * sizeof(float));
        row[k] = a->snap_has_bias ? a->snap_bias[i] : 0.0f;
        for (uint32_t j = 0; j <= k; j++)
            norm2 += (double)row[j] * row[j];
        if (!isfinite(norm2)) {
            memset(row, 0, d * sizeof(float));
            norm2 = 0;
        }
        row[k + 1] = (float)norm2; /* |x|^2 until M is known */
        if (norm2 > max2)
            max2 = norm2;
    }
    for (size_t i = 0; i < n; i++) {
        float *row = a->aug + i * d;
        double rest = max2 - row[k + 1];
        row[k + 1] = rest > 0 ? (float)sqrt(rest) : 0.0f;
    }
    return 0;
}

static uint32_t pick_nlist(const advrec_ann_params_t *p, size_t n)
{
    double want = p->nlist ? (double)p->nlist : 4.0 * sqrt((double)n);
    double most = (double)(n / MIN_PER_LIST);

    if (want > most)
        want = most;
    return want < 1 ? 1 : (uint32_t)want;
}

/* One build from the snapshot; the new index, or NULL (errstr). */
static advrec_faiss_t *build(advrec_ann_t *a, double *train_s, uint32_t *nlist,
                             char *errstr, size_t errstr_size)
{
    uint32_t d = a->snap_k + 2;

    *train_s = 0;
    if (augment(a)) {
        snprintf(errstr, errstr_size, "ann: no memory for %zu rows", a->snap_n);
        return NULL;
    }
    if (!a->trained || a->trained_d != d || a->snap_n >= 2 * a->trained_n) {
        double t0 = now_s();
        advrec_faiss_free(a->trained);
        a->trained_nlist = pick_nlist(&a->p, a->snap_n);
        a->trained = advrec_faiss_train(a->aug, a->snap_n, (int)d,
                                        a->trained_nlist, a->p.sq8, TRAIN_ITER,
                                        TRAIN_PER_LIST, errstr, errstr_size);
        if (!a->trained)
            return NULL;
        a->trained_n = a->snap_n;
        a->trained_d = d;
        *train_s = now_s() - t0;
    }
    *nlist = a->trained_nlist;
    return advrec_faiss_fill(a->trained, a->aug, a->snap_n, 1, errstr,
                             errstr_size);
}

/*
 * Per list of a flat index, the row lists are probed by: its centroid's
 * factors, the largest bias of its rows in place of the centroid's mean
 * bias, 0 for the reduction coordinate. A query (p, 1, 0) then ranks list l
 * by p.c_l + max bias of l: on factors where a few items' biases decide
 * the top (trained on the Taobao sample), the centroid's mean bias hides
 * them. NULL for an index with codes, or without memory (then the
 * centroids themselves).
 */
static float *list_probe_rows(const advrec_faiss_t *idx, uint32_t d)
{
    size_t nlist, n;
    const float *cent = advrec_faiss_centroids(idx, &nlist), *rows;
    const int64_t *ids;
    float *probe;

    if (!cent || advrec_faiss_list(idx, 0, &n, &rows, &ids))
        return NULL;
    probe = malloc(nlist * d * sizeof(float));
    if (!probe)
        return NULL;
    for (size_t l = 0; l < nlist; l++) {
        float *row = probe + l * d, best = cent[l * d + d - 2];

        advrec_faiss_list(idx, l, &n, &rows, &ids);
        for (size_t i = 0; i < n; i++)
            best = i == 0 || rows[i * d + d - 2] > best ? rows[i * d + d - 2]
                                                        : best;
        memcpy(row, cent + l * d, (d - 2) * sizeof(float));
        row[d - 2] = best;
        row[d - 1] = 0.0f;
    }
    return probe;
}

/* Frees a searcher's scratch (not its index). */
static void searcher_free(searcher_t *sr)
{
    free(sr->q);
    free(sr->dist);
    free(sr->labels);
    free(sr->chalf);
    free(sr->cscratch);
    free(sr->ctop);
    free(sr->assign);
    free(sr->adist);
    free(sr->sscores);
    free(sr->sids);
    free(sr->sbest);
}

/*
 * Points sr at idx (k factors, nlist lists, probe rows or NULL), keeping
 * its scratch: the centroids and their half squared norms for the coarse
 * step. Without memory for those, centroids stays NULL and Faiss chooses
 * the lists itself.
 */
static void searcher_bind(searcher_t *sr, advrec_faiss_t *idx,
                          const float *probe, uint32_t k, size_t nlist, int sq8)
{
    uint32_t d = k + 2;
    size_t n;

    sr->idx = idx;
    sr->probe = probe;
    sr->k = k;
    sr->nlist = nlist;
    sr->sq8 = sq8;
    sr->centroids = advrec_faiss_centroids(idx, &n);
    if (grow(&sr->chalf, &sr->chalf_cap, n, sizeof(float)))
        sr->centroids = NULL;
    for (size_t c = 0; sr->centroids && c < n; c++) {
        double h = 0;
        for (uint32_t j = 0; j < d; j++)
            h += (double)sr->centroids[c * d + j] * sr->centroids[c * d + j];
        sr->chalf[c] = (float)(-h / 2);
    }
}

/*
 * Each query's nprobe lists into sr->assign (and their squared distances,
 * which Faiss's scan of codes wants, into sr->adist): the lists with the
 * largest inner product of the query (p, 1, 0) and their probe rows
 * (list_probe_rows; the centroids for an index of codes), one sgemm for
 * the batch and topn's selection. Not the nearest centroids in the reduced
 * space, the reduction's own order, which found fewer of the exact top-10
 * (docs/MODEL.md, "Retrieval"). 0, or -1 (no memory: let Faiss choose).
 */
static int choose_lists(searcher_t *sr, size_t nq)
{
    uint32_t d = sr->k + 2;
    size_t nlist = sr->nlist, np = sr->nprobe, counts[256];

    if (np > nlist)
        np = nlist;
    if (grow(&sr->cscratch, &sr->cscratch_cap,
             advrec_topn_batch_scratch(nq < 256 ? nq : 256, nlist),
             sizeof(float)) ||
        grow(&sr->ctop, &sr->ctop_cap, 256 * np, sizeof(*sr->ctop)) ||
        grow(&sr->assign, &sr->assign_cap, nq * sr->nprobe, sizeof(int64_t)) ||
        grow(&sr->adist, &sr->adist_cap, nq * sr->nprobe, sizeof(float)))
        return -1;
    for (size_t b = 0; b < nq; b += 256) {
        size_t m = nq - b < 256 ? nq - b : 256;
        advrec_topn_batch(
            sr->q + b * d, m, sr->probe ? sr->probe : sr->centroids, NULL,
            nlist, (int)d, NULL, NULL, np, sr->cscratch, sr->ctop, counts);
        for (size_t u = 0; u < m; u++) {
            const float *q = sr->q + (b + u) * d;
            double q2 = 0;
            for (uint32_t j = 0; j < d; j++)
                q2 += (double)q[j] * q[j];
            for (size_t r = 0; r < sr->nprobe; r++) {
                size_t at = (b + u) * sr->nprobe + r;
                if (r < counts[u]) {
                    const advrec_topn_entry_t *e = &sr->ctop[u * np + r];
                    sr->assign[at] = e->item;
                    sr->adist[at] =
                        (float)(q2 - 2.0 * (e->score + sr->chalf[e->item]));
                } else {
                    sr->assign[at] = -1;
                    sr->adist[at] = 0;
                }
            }
        }
    }
    return 0;
}

/*
 * Query u's c best rows of its probed lists by inner product with the
 * snapshot rows (the reduction coordinate is 0 in queries, so this is the
 * snapshot's own score), into labels[u * c ..] (-1 past the rows found):
 * one sgemv per list and topn's selection over them. 0, or -1 (an index
 * with codes, or no memory: let Faiss scan).
 */
static int scan_lists(searcher_t *sr, size_t u, size_t c)
{
    uint32_t d = sr->k + 2;
    const int64_t *lists = sr->assign + u * sr->nprobe;
    const float *q = sr->q + u * d;
    int64_t *labels = sr->labels + u * c;
    size_t total = 0, got;

    for (size_t r = 0; r < sr->nprobe; r++) {
        size_t n;
        const float *rows;
        const int64_t *ids;

        if (lists[r] < 0)
            continue;
        if (advrec_faiss_list(sr->idx, (size_t)lists[r], &n, &rows, &ids))
            return -1;
        if (n == 0)
            continue;
        if (grow(&sr->sscores, &sr->sscores_cap, total + n, sizeof(float)) ||
            grow(&sr->sids, &sr->sids_cap, total + n, sizeof(int64_t)))
            return -1;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, rows,
                    (int)d, q, 1, 0.0f, sr->sscores + total, 1);
        memcpy(sr->sids + total, ids, n * sizeof(int64_t));
        total += n;
    }
    if (grow(&sr->sbest, &sr->sbest_cap, c, sizeof(*sr->sbest)))
        return -1;
    got = advrec_topn_select(sr->sscores, total, NULL, 0, c, sr->sbest);
    for (size_t t = 0; t < c; t++)
        labels[t] = t < got ? sr->sids[sr->sbest[t].item] : -1;
    return 0;
}

/*
 * The c nearest rows of each of users[0..nq) (nq x sr->k) under sr's
 * index: nq x c item indices in sr's scratch, or NULL (no memory, a Faiss
 * error). The Faiss index's own nprobe is set first (its scan of codes and
 * its fallback search read it).
 */
static const int64_t *searcher_search(searcher_t *sr, const float *users,
                                      size_t nq, int use_bias, size_t c)
{
    uint32_t k = sr->k, d = k + 2;
    advrec_faiss_t *idx = sr->idx;

    if (grow(&sr->q, &sr->q_cap, nq * d, sizeof(float)) ||
        grow(&sr->dist, &sr->dist_cap, nq * c, sizeof(float)) ||
        grow(&sr->labels, &sr->labels_cap, nq * c, sizeof(int64_t)))
        return NULL;
    for (size_t u = 0; u < nq; u++) {
        float *row = sr->q + u * d;
        memcpy(row, users + u * k, k * sizeof(float));
        row[k] = use_bias ? 1.0f : 0.0f;
        row[k + 1] = 0.0f;
    }
    advrec_faiss_set_threads(1);
    advrec_faiss_set_nprobe(idx, (int)sr->nprobe);
    if (!sr->centroids || choose_lists(sr, nq)) {
        if (advrec_faiss_search(idx, sr->q, nq, c, sr->dist, sr->labels, NULL,
                                0))
            return NULL;
        return sr->labels;
    }
    if (!sr->sq8) {
        size_t u = 0;
        while (u < nq && scan_lists(sr, u, c) == 0)
            u++;
        if (u == nq)
            return sr->labels;
    }
    if (advrec_faiss_search_lists(idx, sr->q, nq, c, sr->assign, sr->adist,
                                  sr->dist, sr->labels, NULL, 0))
        return NULL;
    return sr->labels;
}

static uint32_t tune_nprobe(advrec_ann_t *a, advrec_faiss_t *idx,
                            const float *probe, uint32_t nlist, uint32_t start,
                            double target, double *recall);

static void *builder_main(void *opaque)
{
    advrec_ann_t *a = opaque;

    /* In the background, on one core: the processing thread keeps the
     * other. */
    advrec_faiss_set_threads(1);
    pthread_mutex_lock(&a->lock);
    for (;;) {
        advrec_faiss_t *idx;
        float *probe;
        double t0, t1, train_s, tune_s, target, recall = 0;
        uint32_t nlist = 0, start, nprobe;
        char errstr[256] = "";

        while (!a->stop && !a->job)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->stop)
            break;
        start = a->p.nprobe;
        target = a->p.recall;
        pthread_mutex_unlock(&a->lock);
        t0 = now_s();
        idx = build(a, &train_s, &nlist, errstr, sizeof(errstr));
        probe = idx ? list_probe_rows(idx, a->snap_k + 2) : NULL;
        t1 = now_s();
        nprobe = idx ? tune_nprobe(a, idx, probe, nlist, start, target, &recall)
                     : start;
        tune_s = now_s() - t1;
        pthread_mutex_lock(&a->lock);
        if (idx) {
            advrec_faiss_free(a->ready);
            free(a->ready_probe);
            a->ready = idx;
            a->ready_probe = probe;
            a->ready_n = a->snap_n;
            a->ready_k = a->snap_k;
            a->ready_nlist = nlist;
            a->ready_nprobe = nprobe;
            a->ready_snap = a->snap_seq;
            a->st.sample_recall = recall;
            a->st.sample_users = a->snap_nu;
            a->st.tuned_nprobe = nprobe;
            a->st.last_tune_s = tune_s;
            a->st.builds++;
            a->st.trainings += train_s > 0;
            a->st.last_build_s = now_s() - t0;
            a->st.last_train_s = train_s;
            a->st.last_built_unix_s = wall_s();
        }
        /* A failed build (no memory, a Faiss error) leaves the index in
         * use; the next due snapshot tries again. */
        a->job = 0;
        pthread_cond_broadcast(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

advrec_ann_t *advrec_ann_new(const advrec_ann_params_t *params, char *errstr,
                             size_t errstr_size)
{
    advrec_ann_t *a;

    if (params->nprobe < 1 || params->candidates < 1 ||
        params->rebuild_ms < 0 ||
        !(params->recall >= 0 && params->recall <= 1)) {
        advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                      "ann: recs.ann.probe=%u and recs.ann.candidates=%u "
                      "must be >= 1, recs.ann.rebuild.ms=%lld >= 0, "
                      "recs.ann.recall=%g in [0, 1]",
                      params->nprobe, params->candidates,
                      (long long)params->rebuild_ms, params->recall);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "ann: out of memory");
        return NULL;
    }
    a->p = *params;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (pthread_create(&a->thread, NULL, builder_main, a)) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                      "ann: cannot start the index builder thread");
        advrec_ann_destroy(a);
        return NULL;
    }
    a->started = 1;
    return a;
}

void advrec_ann_destroy(advrec_ann_t *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stop = 1;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    advrec_faiss_free(a->ready);
    advrec_faiss_free(a->cur);
    free(a->ready_probe);
    free(a->cur_probe);
    advrec_faiss_free(a->trained);
    free(a->snap);
    free(a->snap_bias);
    free(a->aug);
    free(a->snap_users);
    free(a->truth);
    free(a->tune_got);
    free(a->tune_scratch);
    searcher_free(&a->tune);
    searcher_free(&a->srch);
    free(a);
}

int advrec_ann_update(advrec_ann_t *a, const float *items, const float *bias,
                      size_t n, uint32_t k, const float *users, size_t n_users,
                      int64_t now_ms)
{
    advrec_faiss_t *old = NULL;
    int idle, swapped = 0;

    pthread_mutex_lock(&a->lock);
    if (a->ready) {
        old = a->cur;
        a->cur = a->ready;
        a->cur_n = a->ready_n;
        a->ready = NULL;
        free(a->cur_probe);
        a->cur_probe = a->ready_probe;
        a->ready_probe = NULL;
        a->srch.nprobe = a->ready_nprobe;
        a->srch.nlist = a->ready_nlist;
        a->srch.k = a->ready_k;
        a->cur_snap = a->ready_snap;
        swapped = 1;
    }
    idle = !a->job;
    pthread_mutex_unlock(&a->lock);
    advrec_faiss_free(old);
    if (swapped)
        searcher_bind(&a->srch, a->cur, a->cur_probe, a->srch.k, a->srch.nlist,
                      a->p.sq8);
    /* A catalog too small for k-means is ranked exactly anyway. */
    if (idle && n >= 4 * MIN_PER_LIST && k > 0 &&
        (!a->have_snap || now_ms - a->last_snap_ms >= a->p.rebuild_ms)) {
        double t0 = now_s();
        size_t nu = n_users < TUNE_USERS ? n_users : TUNE_USERS;
        /* The same users at every build while the table does not grow,
         * so sample recalls of successive builds compare. */
        advrec_rng_t rng = advrec_rng_for_id(0, "ann-tune");

        if (!users)
            nu = 0;
        a->have_snap = 1;
        a->last_snap_ms = now_ms;
        if (grow(&a->snap, &a->snap_cap, n * k, sizeof(float)) ||
            (bias &&
             grow(&a->snap_bias, &a->snap_bias_cap, n, sizeof(float))) ||
            grow(&a->snap_users, &a->snap_users_cap, nu * k, sizeof(float)))
            return a->cur != NULL;
        memcpy(a->snap, items, n * k * sizeof(float));
        if (bias)
            memcpy(a->snap_bias, bias, n * sizeof(float));
        for (size_t u = 0; u < nu; u++) {
            /* All of them when they fit, else a draw with replacement. */
            size_t from =
                n_users <= TUNE_USERS ? u : advrec_rng_next(&rng) % n_users;
            memcpy(a->snap_users + u * k, users + from * k, k * sizeof(float));
        }
        a->snap_nu = nu;
        a->snap_n = n;
        a->snap_k = k;
        a->snap_has_bias = bias != NULL;
        a->snap_seq = ++a->snaps;
        pthread_mutex_lock(&a->lock);
        a->st.last_copy_s = now_s() - t0;
        a->job = 1;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
    }
    return a->cur != NULL;
}

const int64_t *advrec_ann_search(advrec_ann_t *a, const float *users, size_t nq,
                                 uint32_t k, int use_bias, size_t c)
{
    if (!a->cur || k != a->srch.k || nq == 0 || c == 0)
        return NULL;
    return searcher_search(&a->srch, users, nq, use_bias, c);
}

/*
 * Recall@TUNE_N of the lists served from idx (the candidates of a->tune,
 * re-scored exactly) against the exact lists a->truth (counts per user)
 * of the sampled users; -1 when the search fails.
 */
static double sample_recall(advrec_ann_t *a, const size_t *counts, size_t c)
{
    uint32_t k = a->snap_k;
    const float *bias = a->snap_has_bias ? a->snap_bias : NULL;
    const int64_t *lab = searcher_search(&a->tune, a->snap_users, a->snap_nu,
                                         a->snap_has_bias, c);
    size_t hit = 0, want = 0;

    if (!lab)
        return -1;
    for (size_t u = 0; u < a->snap_nu; u++) {
        const advrec_topn_entry_t *truth = a->truth + u * TUNE_N;
        size_t got = advrec_topn_select_items(
            a->snap_users + u * k, a->snap, bias, (int)k, lab + u * c, c,
            a->snap_n, a->snap_n, NULL, 0, TUNE_N, a->tune_got);
        for (size_t t = 0; t < counts[u]; t++)
            for (size_t g = 0; g < got; g++)
                if (a->tune_got[g].item == truth[t].item) {
                    hit++;
                    break;
                }
        want += counts[u];
    }
    return want ? (double)hit / (double)want : 1.0;
}

/*
 * Builder, after a build: the smallest probe count from start on (each
 * step a quarter more, at most nlist) whose sampled recall@10 reaches
 * target, measured on the snapshot's sampled users against their exact
 * top-10 over the snapshot (the lists rank serves: p.candidates
 * candidates re-scored exactly, no exclusions). *recall gets the recall
 * at the count returned. Without sampled users, or without memory for
 * the exact lists, start is returned and *recall is 0.
 */
static uint32_t tune_nprobe(advrec_ann_t *a, advrec_faiss_t *idx,
                            const float *probe, uint32_t nlist, uint32_t start,
                            double target, double *recall)
{
    size_t counts[TUNE_USERS];
    size_t c = a->p.candidates > TUNE_N ? a->p.candidates : TUNE_N;
    uint32_t np = start < nlist ? start : nlist;

    *recall = 0;
    if (a->snap_nu == 0 || c > a->snap_n)
        return np;
    if (!a->truth)
        a->truth = malloc(TUNE_USERS * TUNE_N * sizeof(*a->truth));
    if (!a->tune_got)
        a->tune_got = malloc(TUNE_N * sizeof(*a->tune_got));
    if (!a->truth || !a->tune_got ||
        grow(&a->tune_scratch, &a->tune_scratch_cap,
             advrec_topn_batch_scratch(a->snap_nu, a->snap_n), sizeof(float)))
        return np;
    if (advrec_topn_batch(a->snap_users, a->snap_nu, a->snap,
                          a->snap_has_bias ? a->snap_bias : NULL, a->snap_n,
                          (int)a->snap_k, NULL, NULL, TUNE_N, a->tune_scratch,
                          a->truth, counts))
        return np;
    searcher_bind(&a->tune, idx, probe, a->snap_k, nlist, a->p.sq8);
    for (;;) {
        double r;

        a->tune.nprobe = np;
        r = sample_recall(a, counts, c);
        if (r < 0)
            return np;
        *recall = r;
        if (r >= target || np >= nlist)
            return np;
        np += np / 4 > 1 ? np / 4 : 1;
        if (np > nlist)
            np = nlist;
    }
}

void advrec_ann_set_nprobe(advrec_ann_t *a, uint32_t nprobe)
{
    pthread_mutex_lock(&a->lock);
    a->p.nprobe = nprobe;
    pthread_mutex_unlock(&a->lock);
    a->srch.nprobe = nprobe;
}

uint64_t advrec_ann_snapshots(const advrec_ann_t *a)
{
    return a->snaps;
}

uint64_t advrec_ann_index_snapshot(const advrec_ann_t *a)
{
    return a->cur ? a->cur_snap : 0;
}

size_t advrec_ann_indexed(const advrec_ann_t *a)
{
    return a->cur ? a->cur_n : 0;
}

void advrec_ann_stats(advrec_ann_t *a, advrec_ann_stats_t *stats)
{
    pthread_mutex_lock(&a->lock);
    *stats = a->st;
    pthread_mutex_unlock(&a->lock);
    stats->indexed = advrec_ann_indexed(a);
    stats->nlist = a->cur ? (uint32_t)a->srch.nlist : 0;
    stats->nprobe = a->cur ? a->srch.nprobe : 0;
}

void advrec_ann_wait(advrec_ann_t *a)
{
    pthread_mutex_lock(&a->lock);
    while (a->job)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
}
