/*
 * ann_faiss.cpp - the C interface of ann_faiss.h over Faiss's C++ API.
 *
 * Owns the faiss::IndexIVF objects behind advrec_faiss_t (flat or 8-bit
 * scalar-quantised lists, each index with its own coarse quantizer). No exception leaves this file.
 */
#include "ann_faiss.h"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <omp.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/clone_index.h>

struct advrec_faiss_s {
    faiss::IndexIVF *ivf;
};

static void set_err(char *errstr, size_t errstr_size, const char *what,
                    const char *msg)
{
    if (errstr && errstr_size)
        std::snprintf(errstr, errstr_size, "faiss %s: %s", what, msg);
}

extern "C" advrec_faiss_t *advrec_faiss_train(const float *x, size_t n, int d,
                                              size_t nlist, int sq8,
                                              int niter, int max_per_list,
                                              char *errstr,
                                              size_t errstr_size)
{
    advrec_faiss_t *f = nullptr;

    try {
        f = new advrec_faiss_t{nullptr};
        auto *quantizer = new faiss::IndexFlatL2(d);
        if (sq8)
            /* Codes of the rows themselves, not of their residuals: the
             * scan skips one subtraction per list, and lib/ann re-scores
             * every candidate exactly anyway. */
            f->ivf = new faiss::IndexIVFScalarQuantizer(
                quantizer, d, nlist, faiss::ScalarQuantizer::QT_8bit,
                faiss::METRIC_L2, false);
        else
            f->ivf = new faiss::IndexIVFFlat(quantizer, d, nlist,
                                             faiss::METRIC_L2);
        f->ivf->own_fields = true;
        f->ivf->cp.niter = niter;
        f->ivf->cp.max_points_per_centroid = max_per_list;
        f->ivf->cp.verbose = false;
        f->ivf->train((faiss::Index::idx_t)n, x);
        return f;
    } catch (const std::exception &e) {
        set_err(errstr, errstr_size, "train", e.what());
    } catch (...) {
        set_err(errstr, errstr_size, "train", "unknown exception");
    }
    advrec_faiss_free(f);
    return nullptr;
}

extern "C" advrec_faiss_t *advrec_faiss_fill(const advrec_faiss_t *trained,
                                             const float *x, size_t n,
                                             int nprobe, char *errstr,
                                             size_t errstr_size)
{
    advrec_faiss_t *f = nullptr;

    try {
        f = new advrec_faiss_t{nullptr};
        f->ivf = dynamic_cast<faiss::IndexIVF *>(
            faiss::clone_index(trained->ivf));
        if (!f->ivf)
            throw std::runtime_error("clone is not an IndexIVF");
        f->ivf->reset();
        f->ivf->add((faiss::Index::idx_t)n, x);
        f->ivf->nprobe = (size_t)nprobe;
        return f;
    } catch (const std::exception &e) {
        set_err(errstr, errstr_size, "fill", e.what());
    } catch (...) {
        set_err(errstr, errstr_size, "fill", "unknown exception");
    }
    advrec_faiss_free(f);
    return nullptr;
}

extern "C" int advrec_faiss_search(const advrec_faiss_t *f, const float *q,
                                   size_t nq, size_t k, float *dist,
                                   int64_t *labels, char *errstr,
                                   size_t errstr_size)
{
    try {
        static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "idx_t");
        f->ivf->search((faiss::Index::idx_t)nq, q, (faiss::Index::idx_t)k, dist,
                       reinterpret_cast<faiss::Index::idx_t *>(labels));
        return 0;
    } catch (const std::exception &e) {
        set_err(errstr, errstr_size, "search", e.what());
    } catch (...) {
        set_err(errstr, errstr_size, "search", "unknown exception");
    }
    return -1;
}

extern "C" const float *advrec_faiss_centroids(const advrec_faiss_t *f,
                                               size_t *nlist)
{
    auto *flat = dynamic_cast<const faiss::IndexFlat *>(f->ivf->quantizer);

    *nlist = f->ivf->nlist;
    return flat ? flat->get_xb() : nullptr;
}

extern "C" int advrec_faiss_search_lists(const advrec_faiss_t *f,
                                         const float *q, size_t nq, size_t k,
                                         const int64_t *lists,
                                         const float *list_dist, float *dist,
                                         int64_t *labels, char *errstr,
                                         size_t errstr_size)
{
    try {
        using idx_t = faiss::Index::idx_t;
        f->ivf->search_preassigned((idx_t)nq, q, (idx_t)k,
                                   reinterpret_cast<const idx_t *>(lists),
                                   list_dist, dist,
                                   reinterpret_cast<idx_t *>(labels), false);
        return 0;
    } catch (const std::exception &e) {
        set_err(errstr, errstr_size, "search", e.what());
    } catch (...) {
        set_err(errstr, errstr_size, "search", "unknown exception");
    }
    return -1;
}

extern "C" int advrec_faiss_list(const advrec_faiss_t *f, size_t list,
                                 size_t *n, const float **rows,
                                 const int64_t **ids)
{
    if (!dynamic_cast<const faiss::IndexIVFFlat *>(f->ivf) ||
        list >= f->ivf->nlist)
        return -1;
    *n = f->ivf->invlists->list_size(list);
    /* ArrayInvertedLists (what IndexIVFFlat holds) returns pointers into
     * its own arrays, with nothing to release. */
    *rows = reinterpret_cast<const float *>(f->ivf->invlists->get_codes(list));
    *ids = reinterpret_cast<const int64_t *>(f->ivf->invlists->get_ids(list));
    return 0;
}

extern "C" size_t advrec_faiss_count(const advrec_faiss_t *f)
{
    return (size_t)f->ivf->ntotal;
}

extern "C" void advrec_faiss_free(advrec_faiss_t *f)
{
    if (!f)
        return;
    delete f->ivf;
    delete f;
}

extern "C" void advrec_faiss_set_nprobe(advrec_faiss_t *f, int nprobe)
{
    f->ivf->nprobe = (size_t)nprobe;
}

extern "C" void advrec_faiss_set_threads(int n)
{
    omp_set_num_threads(n);
}
