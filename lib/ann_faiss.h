/*
 * ann_faiss.h - the few Faiss calls lib/ann makes, behind a C interface.
 *
 * Debian 12's libfaiss-dev (1.7.3) ships the headers of Faiss's C API but
 * not its implementation (libfaiss.a has no c_api objects), so this is our
 * own thin extern "C" layer over the C++ API, in the spirit of Faiss's
 * c_api: every C++ exception is caught here and turned into an errstr.
 * Internal to lib/ann (not installed).
 *
 * An inverted-file index (IVF; flat lists, or 8-bit scalar-quantised rows
 * in them) under the L2 metric: lib/ann
 * reduces maximum inner product to nearest neighbour by one extra
 * coordinate. Training (k-means for the coarse centroids) is separate from
 * filling, so a rebuild can reuse the centroids of an earlier training.
 */
#ifndef ADVREC_ANN_FAISS_H
#define ADVREC_ANN_FAISS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct advrec_faiss_s advrec_faiss_t;

/*
 * A trained, empty IVF index of nlist lists over d-dimensional vectors,
 * its lists holding the rows as they are (sq8 == 0) or as 8-bit codes
 * (sq8 == 1, a quarter of the bytes to scan): k-means (niter iterations)
 * on at most max_per_list * nlist of x[0..n)
 * (n x d, row-major, only read). NULL on failure, errstr says why. The
 * caller owns it (advrec_faiss_free).
 */
advrec_faiss_t *advrec_faiss_train(const float *x, size_t n, int d,
                                   size_t nlist, int sq8, int niter,
                                   int max_per_list, char *errstr,
                                   size_t errstr_size);

/*
 * A copy of the trained index trained (only read) holding x[0..n) with ids
 * 0..n-1, searched with nprobe lists. NULL on failure (errstr). The caller
 * owns it.
 */
advrec_faiss_t *advrec_faiss_fill(const advrec_faiss_t *trained, const float *x,
                                  size_t n, int nprobe, char *errstr,
                                  size_t errstr_size);

/*
 * The k nearest stored vectors of each of q[0..nq) (nq x d): their ids in
 * labels (nq x k; -1 where fewer exist), distances in dist (nq x k). 0 on
 * success, -1 on failure (errstr). Concurrent searches of one index are
 * safe; the index is only read.
 */
int advrec_faiss_search(const advrec_faiss_t *index, const float *q, size_t nq,
                        size_t k, float *dist, int64_t *labels, char *errstr,
                        size_t errstr_size);

/*
 * The coarse centroids (nlist x d, row-major), owned by index and valid as
 * long as it is; *nlist set. The caller may choose each query's lists
 * itself (advrec_faiss_search_lists): Debian's Faiss is built for baseline
 * x86-64, and its own choice (a heap fed one centroid at a time) costs
 * more than the scan of the lists.
 */
const float *advrec_faiss_centroids(const advrec_faiss_t *index, size_t *nlist);

/*
 * As advrec_faiss_search, but scanning the lists the caller chose:
 * lists[q * nprobe ..] (nprobe = the index's; -1 entries skipped) with
 * their squared distances to the query in list_dist.
 */
int advrec_faiss_search_lists(const advrec_faiss_t *index, const float *q,
                              size_t nq, size_t k, const int64_t *lists,
                              const float *list_dist, float *dist,
                              int64_t *labels, char *errstr,
                              size_t errstr_size);

/*
 * The rows (*n x d floats) and ids of inverted list `list` of a flat index,
 * owned by index and valid as long as it is unchanged: 0, or -1 when the
 * index holds codes (sq8) or list is out of range. lib/ann scans them with
 * OpenBLAS, which is vectorised where Debian's Faiss is not.
 */
int advrec_faiss_list(const advrec_faiss_t *index, size_t list, size_t *n,
                      const float **rows, const int64_t **ids);

/* Lists searched per query from now on (no search may run meanwhile). */
void advrec_faiss_set_nprobe(advrec_faiss_t *index, int nprobe);

/* Vectors stored in index. */
size_t advrec_faiss_count(const advrec_faiss_t *index);

/* Frees index; NULL is fine. */
void advrec_faiss_free(advrec_faiss_t *index);

/* OpenMP threads Faiss may use for calls made from this thread. */
void advrec_faiss_set_threads(int n);

#ifdef __cplusplus
}
#endif

#endif
