/*
 * ann.h - approximate maximum-inner-product retrieval over the item
 * factors (recs.retrieval = ann | auto), kept in the background.
 *
 * An inverted-file index (Faiss IVF, flat lists; lib/ann_faiss.h) over the
 * items' augmented rows: the factors, the bias as one more coordinate (the
 * query carries 1 there when biases are scored, else 0), and the standard
 * MIPS-to-L2 coordinate sqrt(M^2 - |x|^2) (M the largest row norm), so the
 * nearest rows under L2 are the rows of largest inner product. The index
 * only proposes candidates: lib/rank re-scores them exactly with the
 * current factors and applies the exclusions, so an index built from older
 * factors costs recall, never a wrong score.
 *
 * One background thread builds: advrec_ann_update(), called by the
 * processing thread before it ranks, copies the item matrix (a snapshot)
 * when a rebuild is due and the builder is idle, and swaps in an index the
 * builder has finished. The builder k-means-trains the coarse centroids on
 * the first snapshot (and again when the catalog has doubled since) and
 * otherwise only re-assigns the rows of the new snapshot to the existing
 * centroids (a refill). Then it tunes the probe count: the smallest, from
 * params.nprobe up, whose recall@10 on up to 256 sampled users (their
 * exact top-10 over the snapshot against the lists served from the new
 * index) reaches params.recall; the index comes into use with it.
 * Nothing here is persisted: the index is derived
 * data, rebuilt at start; until the first one is ready the caller ranks
 * exactly.
 *
 * The handle owns the thread, the snapshot, the indexes and the search
 * scratch. advrec_ann_update/_search/_indexed must be called from one
 * thread (the processing thread); the builder never touches what they use.
 */
#ifndef ADVREC_ANN_H
#define ADVREC_ANN_H

#include <stddef.h>
#include <stdint.h>

typedef struct advrec_ann_params_s {
    uint32_t nlist;      /* IVF lists; 0: 4 sqrt(n), at most n / 39 */
    uint32_t nprobe;     /* lists searched per query, >= 1; with recall > 0
                            the smallest count the tuning starts from */
    double recall;       /* sampled recall@10 each build's probe count is
                            tuned to reach, in [0, 1]; 0: nprobe as set */
    uint32_t candidates; /* nearest rows per query handed back, >= 1 */
    int64_t rebuild_ms;  /* a new snapshot at most this often, >= 0 */
    int sq8;             /* lists hold 8-bit codes, not the rows */
} advrec_ann_params_t;

typedef struct advrec_ann_stats_s {
    uint64_t builds;          /* indexes swapped in */
    uint64_t trainings;       /* of them, with fresh k-means centroids */
    double last_build_s;      /* wall time of the last build (train, fill,
                                 tuning) */
    double last_train_s;      /* of it, training (0 for a refill) */
    double last_copy_s;       /* the snapshot copy, on the calling thread */
    double last_built_unix_s; /* when the last build finished (Unix time,
                                 seconds; 0: none yet) */
    double last_tune_s;       /* of it after the fill, the probe tuning */
    double sample_recall;     /* recall@10 of the last build's sample at
                                 its tuned probe count (0: no sample) */
    size_t sample_users;      /* users in that sample (0: none, untuned) */
    uint32_t tuned_nprobe;    /* the last build's tuned probe count */
    size_t indexed;           /* rows in the index in use (0: none yet) */
    uint32_t nlist;           /* lists of the index in use */
    uint32_t nprobe;          /* lists searched per query with it */
} advrec_ann_stats_t;

typedef struct advrec_ann_s advrec_ann_t;

/*
 * A new index keeper with its builder thread started, no index yet. NULL
 * on invalid params or when the thread or memory is not there (errstr
 * says which). The caller owns it (advrec_ann_destroy).
 */
advrec_ann_t *advrec_ann_new(const advrec_ann_params_t *params, char *errstr,
                             size_t errstr_size);

/* Stops the builder (waiting for a build under way) and frees everything;
 * NULL is fine. */
void advrec_ann_destroy(advrec_ann_t *ann);

/*
 * Processing thread, before ranking: swaps in a finished index, then, if
 * the builder is idle and no index exists or the last snapshot is at least
 * rebuild_ms old (now_ms, any monotonic clock), copies items (n x k,
 * row-major) and bias (n floats; NULL when biases are not scored) for the
 * next build (not below 156 items: k-means wants 39 rows a list), and up
 * to 256 rows of users (n_users x k; NULL or 0: no tuning), all of them
 * when they fit, else drawn by a fixed-seed stream (the same draw for the
 * same n_users): after the fill the builder tunes the probe count on them
 * (params.recall). Inputs are only read, during the call. Returns 1 when
 * an index is in use, else 0 (rank exactly). A snapshot that cannot be
 * allocated is skipped (retried at the next due time).
 */
int advrec_ann_update(advrec_ann_t *ann, const float *items, const float *bias,
                      size_t n, uint32_t k, const float *users, size_t n_users,
                      int64_t now_ms);

/*
 * Searches the index in use for the c nearest rows of each of users[0..nq)
 * (nq x k, the user factor rows; use_bias: whether the bias coordinate
 * counts). On success returns a pointer to nq x c item indices, owned by
 * ann and valid until the next call, -1 where the index had fewer; else
 * NULL (no index, a k other than the index's, or no memory: rank exactly).
 * One thread of Faiss's.
 */
const int64_t *advrec_ann_search(advrec_ann_t *ann, const float *users,
                                 size_t nq, uint32_t k, int use_bias, size_t c);

/* Lists searched per query with the index in use (until the next swap,
 * which brings its own tuned count) and the count later builds' tuning
 * starts from (processing thread). */
void advrec_ann_set_nprobe(advrec_ann_t *ann, uint32_t nprobe);

/* Snapshots taken so far, and the one (1-based) the index in use was
 * built from (0: none yet): an item trained after snapshot s was taken is
 * newer than its row in the indexes from s on (processing thread). */
uint64_t advrec_ann_snapshots(const advrec_ann_t *ann);
uint64_t advrec_ann_index_snapshot(const advrec_ann_t *ann);

/* Rows in the index in use: items [0, indexed) are in it, later ones
 * (added since the snapshot) are not and must be scored by the caller. */
size_t advrec_ann_indexed(const advrec_ann_t *ann);

/* Counters for stats and benchmarks (a copy). */
void advrec_ann_stats(advrec_ann_t *ann, advrec_ann_stats_t *stats);

/* Blocks until no build is queued or under way (tests, benchmarks). */
void advrec_ann_wait(advrec_ann_t *ann);

#endif
