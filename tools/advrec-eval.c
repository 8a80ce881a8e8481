/*
 * advrec-eval - measures recommendation quality and robustness offline on an
 * event file, with the library's own model code (tools/lib/eval over lib/apr,
 * lib/state, lib/topn, lib/engine). Writes results.json and SVG plots into
 * an output directory; optionally the leave-one-out split for peer
 * libraries (bench/peers/).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detect_eval.h"
#include "eval.h"
#include "params.h"
#include "reader.h"

#define N_EPS    10
#define N_ATTACK 3
#define N_CURVE  50

typedef struct opts_s {
    const char *path, *out, *split_dir, *name;
    advrec_reader_conf_t rconf;
    int loo, preq, fgsm, shill, full, quiet, validate, run_bpr, run_apr;
    int onepass; /* --onepass: the engine's one pass vs offline APR */
    advrec_engine_params_t shipped; /* the daemon's defaults, untouched */
    int split_seed_set;
    uint32_t eval_every; /* --validate: measure every N passes */
    uint64_t split_seed; /* LOO / validation split and negatives */
    uint32_t n_neg, k_cut, n_targets;
    advrec_eval_train_t bpr, apr; /* lambda 0, lambda from options */
    advrec_engine_params_t eng;
    /* --preq --instances (issue 12): engines, input partitions, events
     * between item-delta exchanges, peers' accumulators merged */
    uint32_t instances, partitions;
    uint64_t sync_every;
    int share_acc;
    /* --reg-rows X (> 0): APR's L2 weight per step is X * (users + items) /
     * the training interactions of the split trained on, set in run_loo();
     * BPR's too unless --bpr-reg gives its own. */
    double reg_rows;
    int bpr_reg_set;
    /* Progress without a terminal: one line per tenth of what runs. */
    char label[96];
    int tenth;
} opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A one-line progress bar on stderr on a terminal; into a log, a line
 * per tenth of a long run (o->label names it; runs without one print
 * none). */
static void progress(void *opaque, const char *what, uint64_t done,
                     uint64_t total)
{
    opts_t *o = opaque;
    int w = 40, f;

    if (o->quiet || total == 0)
        return;
    if (!isatty(2)) {
        int tenth = (int)(10 * done / total);
        if (!o->label[0] || done == 0 || tenth == o->tenth)
            return;
        o->tenth = tenth;
        fprintf(stderr,
                "advrec-eval: %s %s: %d%% (%" PRIu64 " of %" PRIu64 ")\n", what,
                o->label, 10 * tenth, done, total);
        return;
    }
    f = (int)((double)done * w / (double)total);
    fprintf(stderr, "\r%-12s [%.*s%*s] %3d%%", what, f,
            "########################################", w - f, "",
            (int)(100.0 * (double)done / (double)total));
    if (done >= total)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: advrec-eval [options] FILE\n"
        "Offline evaluation of advrec's model on an event file (taobao,\n"
        "movielens, otto, csv, amazon, session; detected; or ratings,\n"
        "which --format must name).\n\n"
        "protocols (default: --loo):\n"
        "  --loo            leave-one-out: last item per user vs --neg "
        "sampled\n"
        "                   negatives (and all items with --full), BPR and "
        "APR\n"
        "  --onepass        with --loo: the training split once, in time "
        "order,\n"
        "                   through the daemon's engine (its shipped "
        "defaults;\n"
        "                   the model options set the offline APR), tested"
        "\n"
        "                   like the offline APR; prints onepass-hr@K, "
        "offline-hr@K\n"
        "                   and their ratio\n"
        "  --preq           prequential test-then-train through the engine:\n"
        "                   popularity, BPR, APR (--models: which of the\n"
        "                   two models)\n"
        "  --instances N    --preq through N instances, each the users of\n"
        "                   its partitions (murmur2 of the user id, range\n"
        "                   assignment), exchanging item-factor deltas\n"
        "                   (lib/itemsync) every --sync-every events (1000;\n"
        "                   0: never); --partitions P (12); --share-acc 0|1\n"
        "                   merge peers' Adagrad accumulators (1)\n"
        "  --fgsm           after --loo training: FGSM on the embeddings,\n"
        "                   eps 0.1..1.0, for each model trained; with\n"
        "                   --onepass also the one-pass model against its\n"
        "                   BPR (adversarial term off) at eps 0.5\n"
        "  --shill          shilling attack 1/3/5%% fake users, BPR vs APR\n"
        "  --detect ...     (first option) the anomaly detectors on labelled\n"
        "                   or injected shilling; --detect --help\n"
        "  --full           --loo also ranks against all items\n"
        "  --validate       tune: train without each user's last training\n"
        "                   interaction and measure on it (99 negatives);\n"
        "                   the test items are never looked at\n"
        "  --models M       bpr,apr (default) or one of them\n"
        "  --eval-every N   with --validate: the validation metrics after\n"
        "                   every N passes too (early stopping; JSON\n"
        "                   bpr_curve / apr_curve)\n"
        "options:\n"
        "  --out DIR        results.json and *.svg (default eval-out)\n"
        "  --write-split DIR  write train.tsv / test.tsv / val.tsv of the\n"
        "                   LOO split and its validation split\n"
        "  --name NAME      data set name in the output (default: file name)\n"
        "  --format F       taobao|movielens|otto|csv|amazon|session|\n"
        "                   ratings|auto\n"
        "  --neg N          sampled negatives per test user (99)\n"
        "  --topk K         cut-off (10)\n"
        "  --epochs N       passes (LOO) (30); --bpr-epochs N of them BPR\n"
        "                   pre-training before APR (15)\n"
        "  --bpr-lr X --bpr-reg X --bpr-passes N  BPR's own (default: the\n"
        "                   same as APR's --lr, --reg, --epochs)\n"
        "  --reg-rows X     --loo: --reg = X * (users + items) / training\n"
        "                   interactions (BPR's too unless --bpr-reg):\n"
        "                   the L2 weight follows the data's density\n"
        "  --adagrad-init X Adagrad's initial accumulator (daemon's default)\n"
        "  --k N --lr X --reg X --lambda X --eps X --negatives N --bias 0|1\n"
        "  --init-std X --warmup N --seed S  model parameters (the daemon's\n"
        "                   defaults otherwise)\n"
        "  --retrieval R    --preq lists: exact, ann or auto (the daemon's\n"
        "                   recs.retrieval); --ann-probe N, --ann-rebuild-ms "
        "N,\n"
        "                   --ann-recall X  recs.ann.probe, "
        "recs.ann.rebuild.ms,\n"
        "                   recs.ann.recall\n"
        "  --split-seed S   seed of the LOO / validation split and its\n"
        "                   negatives (default: --seed); vary --seed alone\n"
        "                   to retrain on the same split\n"
        "  --targets N      shilling: target items averaged (5)\n"
        "  -X key=value     a daemon setting (as advrecd -X) under the\n"
        "                   model options: the engine of --onepass and\n"
        "                   --preq, e.g. -X model.replay.steps=2\n"
        "  -q               no progress bar\n");
}

/* Makes dir and its missing parents, as mkdir -p does. */
static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path)) {
        fprintf(stderr, "advrec-eval: --out \"%s\": %s\n", dir,
                len ? "path too long" : "empty");
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST) {
            fprintf(stderr, "advrec-eval: mkdir %s: %s\n", path,
                    strerror(errno));
            return -1;
        }
        if (!(*p = c))
            break;
    }
    return 0;
}

/* ---- SVG ---- */

typedef struct series_s {
    const char *name;
    const double *x, *y;
    size_t n;
    int dashed;
} series_t;

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c",
                               "#ff7f0e", "#9467bd", "#8c564b"};

/* A line plot with axes, ticks, legend; y from 0 to the max (rounded). */
static void svg_plot(const char *path, const char *title, const char *xl,
                     const char *yl, const series_t *s, size_t ns)
{
    FILE *fp = fopen(path, "w");
    double x0 = INFINITY, x1 = -INFINITY, y1 = 0;
    const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;

    if (!fp) {
        fprintf(stderr, "advrec-eval: cannot write %s\n", path);
        return;
    }
    for (size_t a = 0; a < ns; a++)
        for (size_t b = 0; b < s[a].n; b++) {
            x0 = fmin(x0, s[a].x[b]);
            x1 = fmax(x1, s[a].x[b]);
            y1 = fmax(y1, s[a].y[b]);
        }
    if (!(x1 > x0)) {
        x0 = 0;
        x1 = 1;
    }
    y1 = y1 > 0 ? ceil(y1 * 10.0 * 1.05) / 10.0 : 1;
    if (y1 > 1 && y1 <= 1.1)
        y1 = 1;
#define PX(v) (L + ((v)-x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - (v) / y1 * (H - T - B))
    fprintf(fp,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" "
            "height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%g\" y=\"22\" text-anchor=\"middle\" "
            "font-size=\"15\">%s</text>\n",
            W, H, W / 2, title);
    for (int t = 0; t <= 5; t++) {
        double v = y1 * t / 5, xv = x0 + (x1 - x0) * t / 5;
        fprintf(fp,
                "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/>\n<text x=\"%g\" y=\"%.1f\" "
                "text-anchor=\"end\">%.3g</text>\n",
                L, PY(v), W - R, PY(v), L - 6, PY(v) + 4, v);
        fprintf(fp,
                "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.3g"
                "</text>\n",
                PX(xv), H - B + 18, xv);
    }
    fprintf(fp,
            "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n"
            "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n"
            "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n"
            "<text transform=\"translate(16,%g) rotate(-90)\" "
            "text-anchor=\"middle\">%s</text>\n",
            L, H - B, W - R, H - B, L, T, L, H - B, (L + W - R) / 2, H - 12, xl,
            (T + H - B) / 2, yl);
    for (size_t a = 0; a < ns; a++) {
        const char *c = colors[a % (sizeof(colors) / sizeof(*colors))];
        fprintf(fp,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                "points=\"",
                c, s[a].dashed ? " stroke-dasharray=\"6,4\"" : "");
        for (size_t b = 0; b < s[a].n; b++)
            fprintf(fp, "%.1f,%.1f ", PX(s[a].x[b]), PY(s[a].y[b]));
        fprintf(fp, "\"/>\n");
        for (size_t b = 0; b < s[a].n && s[a].n <= 20; b++)
            fprintf(fp,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                    PX(s[a].x[b]), PY(s[a].y[b]), c);
    }
    /* The legend goes over the curves: on a white box, so neither hides
     * the other's text. */
    fprintf(fp,
            "<rect x=\"%g\" y=\"%g\" width=\"154\" height=\"%g\" "
            "fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>\n",
            W - R - 158, T, 18.0 * (double)ns + 4);
    for (size_t a = 0; a < ns; a++) {
        const char *c = colors[a % (sizeof(colors) / sizeof(*colors))];
        fprintf(fp,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/><text x=\"%g\" y=\"%g\">%s</text>\n",
                W - R - 150, T + 10 + 18.0 * a, W - R - 125, T + 10 + 18.0 * a,
                c, s[a].dashed ? " stroke-dasharray=\"6,4\"" : "", W - R - 120,
                T + 14 + 18.0 * a, s[a].name);
    }
#undef PX
#undef PY
    fprintf(fp, "</svg>\n");
    fclose(fp);
}

/* ---- JSON helpers (hand-written: flat numbers and strings only) ---- */

static void json_metrics(FILE *fp, const char *key,
                         const advrec_eval_metrics_t *m, double secs,
                         const char *tail)
{
    fprintf(fp,
            "\"%s\": {\"hr\": %.6f, \"ndcg\": %.6f, \"mrr\": %.6f, \"n\": "
            "%" PRIu64 ", \"k\": %u, \"train_s\": %.3f}%s",
            key, m->hr, m->ndcg, m->mrr, m->n, m->k, secs, tail);
}

static void json_train(FILE *fp, const advrec_eval_train_t *t)
{
    fprintf(fp,
            "{\"k\": %d, \"lr\": %g, \"reg\": %g, \"lambda\": %g, \"eps\": %g, "
            "\"warmup\": %u, \"bias\": %d, \"init_std\": %g, "
            "\"adagrad_init\": %g, \"epochs\": %u, "
            "\"bpr_epochs\": %u, \"negatives\": %u, \"seed\": %" PRIu64 "}",
            t->apr.k, (double)t->apr.lr, (double)t->apr.reg,
            (double)t->apr.adv_lambda, (double)t->apr.adv_eps,
            t->apr.adv_warmup, t->apr.use_bias, (double)t->apr.init_std,
            (double)t->apr.adagrad_init, t->epochs, t->bpr_epochs, t->negatives,
            t->seed);
}

static void json_norms(FILE *fp, const char *key, advrec_state_t *m,
                       int use_bias, const char *tail)
{
    advrec_eval_norms_t n;

    advrec_eval_norms(m, use_bias, &n);
    fprintf(fp,
            "\"%s\": {\"user\": %.4f, \"item\": %.4f, \"item_bias_abs\": "
            "%.4f}%s",
            key, n.user, n.item, n.item_bias_abs, tail);
    fprintf(stderr,
            "%s: mean L2 norm of trained rows: users %.3f, items %.3f; mean "
            "|item bias| %.3f\n",
            key, n.user, n.item, n.item_bias_abs);
}

/* Trains one model for the split; prints and returns it (NULL on error). */
static advrec_state_t *train_model(opts_t *o, const advrec_eval_data_t *d,
                                   const advrec_eval_split_t *s,
                                   const advrec_eval_inter_t *train,
                                   size_t n_train, const advrec_eval_train_t *t,
                                   double *secs)
{
    char errstr[512];
    advrec_state_t *m =
        advrec_eval_model_new(d, &t->apr, errstr, sizeof(errstr));
    double t0 = now_s();

    if (!m || advrec_eval_train(m, s, train, n_train, t, progress, o, errstr,
                                sizeof(errstr))) {
        fprintf(stderr, "advrec-eval: %s\n", errstr);
        advrec_state_destroy(m);
        return NULL;
    }
    *secs = now_s() - t0;
    return m;
}

/* The model for the shilling runs needs rows for the fake users too: a data
 * set copy with their ids interned. */
static advrec_eval_data_t *with_fakes(const advrec_eval_data_t *d,
                                      uint32_t n_fake)
{
    advrec_eval_data_t *c = advrec_eval_data_new();
    const advrec_eval_inter_t *v = advrec_eval_data_inters(d);
    advrec_event_t ev;

    if (!c)
        return NULL;
    advrec_event_clear(&ev);
    ev.type = ADVREC_EVENT_CLICK;
    ev.ts_ms = 1;
    /* Same interning order as d: users then items in index order. */
    for (uint32_t u = 0; u < advrec_eval_data_users(d); u++) {
        snprintf(ev.user_id, sizeof(ev.user_id), "%s",
                 advrec_eval_data_user_name(d, u));
        snprintf(ev.item_id, sizeof(ev.item_id), "%s",
                 advrec_eval_data_item_name(d, v[0].item));
        if (advrec_eval_data_add(c, &ev))
            goto fail;
    }
    for (uint32_t f = 0; f < n_fake; f++) {
        snprintf(ev.user_id, sizeof(ev.user_id), "shill-%u", f);
        if (advrec_eval_data_add(c, &ev))
            goto fail;
    }
    for (uint32_t i = 0; i < advrec_eval_data_items(d); i++) {
        snprintf(ev.item_id, sizeof(ev.item_id), "%s",
                 advrec_eval_data_item_name(d, i));
        if (advrec_eval_data_add(c, &ev))
            goto fail;
    }
    return c;
fail:
    advrec_eval_data_destroy(c);
    return NULL;
}

/* --eval-every: the validation metrics after every N passes of one model
 * (early stopping: advrec_eval_train_t.after_pass). */
#define CURVE_MAX 1000
typedef struct curve_s {
    const advrec_eval_split_t *split;
    const char *model;
    int use_bias;
    uint32_t every, k_cut, n;
    struct {
        uint32_t passes;
        double hr, ndcg;
    } pt[CURVE_MAX];
} curve_t;

static int curve_after_pass(void *opaque, uint32_t passes, advrec_state_t *m)
{
    curve_t *c = opaque;
    advrec_eval_metrics_t x;

    if (passes % c->every || c->n == CURVE_MAX ||
        advrec_eval_loo_model(c->split, m, c->use_bias, 0, c->k_cut, &x))
        return 0;
    c->pt[c->n].passes = passes;
    c->pt[c->n].hr = x.hr;
    c->pt[c->n].ndcg = x.ndcg;
    c->n++;
    printf("val after %u passes  %s HR@%u %.4f NDCG %.4f\n", passes, c->model,
           c->k_cut, x.hr, x.ndcg);
    fflush(stdout);
    return 0;
}

static void json_curve(FILE *js, const char *key, const curve_t *c)
{
    fprintf(js, ", \"%s\": [", key);
    for (uint32_t i = 0; i < c->n; i++)
        fprintf(js, "%s{\"passes\": %u, \"hr\": %.6f, \"ndcg\": %.6f}",
                i ? ", " : "", c->pt[i].passes, c->pt[i].hr, c->pt[i].ndcg);
    fprintf(js, "]");
}

/* Leave-one-out HR of popularity on split: items ranked by their training
 * interactions (one factor: users 1, items their count). */
static int popularity_loo(const advrec_eval_split_t *s, uint32_t k,
                          advrec_eval_metrics_t *out)
{
    float *users = malloc(((size_t)s->n_users + 1) * sizeof(*users));
    float *items = calloc((size_t)s->n_items + 1, sizeof(*items));
    int rc = -1;

    if (users && items) {
        for (uint32_t u = 0; u < s->n_users; u++)
            users[u] = 1.0f;
        for (size_t e = 0; e < s->n_train; e++)
            items[s->train[e].item] += 1.0f;
        rc = advrec_eval_loo(s, users, items, NULL, 1, 0, k, out) ? -1 : 0;
    }
    free(users);
    free(items);
    return rc;
}

/*
 * --onepass (issue 16): the split's training interactions once, in time
 * order, through the daemon's engine with its shipped defaults (the model
 * options on the command line set the offline APR only), measured like the
 * offline APR (already trained on the same split) and popularity; one line
 * ending in
 * "onepass-hr@K A offline-hr@K B ratio R".
 */
/*
 * --onepass --fgsm: the robustness the daemon's model has, as the offline
 * FGSM experiment measures it at eps ONEPASS_EPS: the relative HR drop of
 * the one-pass model (apr, trained with the shipped settings) against that
 * of the same engine with the adversarial term off (BPR: model.adv.lambda
 * 0), and their ratio (issue 16: at most 0.5). One line ending in
 * "onepass-fgsm-ratio R".
 */
#define ONEPASS_EPS 0.5f
static int onepass_fgsm(opts_t *o, const advrec_eval_data_t *d,
                        const advrec_eval_split_t *s,
                        const advrec_engine_params_t *shipped,
                        const advrec_eval_metrics_t *apr, advrec_state_t *ma,
                        FILE *js)
{
    advrec_engine_params_t bp = *shipped;
    advrec_eval_metrics_t bpr, pa = {0}, pb = {0};
    advrec_state_t *mb = NULL;
    double da, db;
    char errstr[512] = "";

    bp.apr.adv_lambda = 0;
    if (advrec_eval_onepass(d, s, &bp, o->k_cut, &bpr, &mb, progress, o, errstr,
                            sizeof(errstr)) ||
        advrec_eval_fgsm(s, ma, shipped->apr.use_bias, ONEPASS_EPS,
                         shipped->apr.seed, o->k_cut, &pa) ||
        advrec_eval_fgsm(s, mb, bp.apr.use_bias, ONEPASS_EPS, bp.apr.seed,
                         o->k_cut, &pb)) {
        fprintf(stderr, "advrec-eval: one pass, FGSM: %s\n",
                errstr[0] ? errstr : "out of memory");
        advrec_state_destroy(mb);
        return 1;
    }
    advrec_state_destroy(mb);
    da = apr->hr > 0 ? (apr->hr - pa.hr) / apr->hr : 0;
    db = bpr.hr > 0 ? (bpr.hr - pb.hr) / bpr.hr : 0;
    printf("onepass-fgsm %s eps %.1f: bpr-hr@%u %.4f -> %.4f (-%.1f%%) "
           "apr-hr@%u %.4f -> %.4f (-%.1f%%) onepass-fgsm-ratio %.3f\n",
           o->name, (double)ONEPASS_EPS, o->k_cut, bpr.hr, pb.hr, 100 * db,
           o->k_cut, apr->hr, pa.hr, 100 * da, db > 0 ? da / db : 0.0);
    fprintf(js,
            ", \"fgsm\": {\"eps\": %.1f, \"bpr_hr\": %.6f, "
            "\"bpr_hr_eps\": %.6f, \"apr_hr_eps\": %.6f, \"ratio\": %.6f}",
            (double)ONEPASS_EPS, bpr.hr, pb.hr, pa.hr, db > 0 ? da / db : 0.0);
    return 0;
}

static int run_onepass(opts_t *o, const advrec_eval_data_t *d,
                       const advrec_eval_split_t *s,
                       const advrec_eval_metrics_t *offline, FILE *js)
{
    advrec_eval_metrics_t one, pop;
    char errstr[512];
    double t0 = now_s(), secs;

    advrec_engine_params_t shipped = o->shipped;
    advrec_state_t *model = NULL;

    shipped.recs_n = o->k_cut;
    errstr[0] = '\0';
    if (advrec_eval_onepass(d, s, &shipped, o->k_cut, &one,
                            o->fgsm ? &model : NULL, progress, o, errstr,
                            sizeof(errstr)) ||
        popularity_loo(s, o->k_cut, &pop)) {
        fprintf(stderr, "advrec-eval: one pass: %s\n",
                errstr[0] ? errstr : "out of memory");
        advrec_state_destroy(model);
        return 1;
    }
    secs = now_s() - t0;
    printf("onepass %s (%s, %.1fs): popularity-hr@%u %.4f onepass-ndcg@%u "
           "%.4f offline-ndcg@%u %.4f onepass-hr@%u %.4f offline-hr@%u %.4f "
           "ratio %.3f\n",
           o->name, o->validate ? "validation" : "test", secs, o->k_cut, pop.hr,
           o->k_cut, one.ndcg, o->k_cut, offline->ndcg, o->k_cut, one.hr,
           o->k_cut, offline->hr, offline->hr > 0 ? one.hr / offline->hr : 0.0);
    fprintf(js, ",\n\"onepass\": {\"split\": \"%s\", ",
            o->validate ? "validation" : "test");
    json_metrics(js, "onepass", &one, secs, ", ");
    json_metrics(js, "offline_apr", offline, 0, ", ");
    json_metrics(js, "popularity", &pop, 0, ", ");
    fprintf(js, "\"ratio\": %.6f",
            offline->hr > 0 ? one.hr / offline->hr : 0.0);
    if (model && onepass_fgsm(o, d, s, &shipped, &one, model, js)) {
        advrec_state_destroy(model);
        return 1;
    }
    advrec_state_destroy(model);
    fprintf(js, "}");
    return 0;
}

static int run_loo(opts_t *o, const advrec_eval_data_t *d, FILE *js)
{
    advrec_eval_split_t s, vs;
    advrec_state_t *mb = NULL, *ma = NULL;
    advrec_eval_metrics_t bs = {0}, as = {0}, bf = {0}, af = {0};
    advrec_eval_train_t tpb, tpa;
    curve_t *cb = NULL;
    double tb = 0, ta = 0;
    char errstr[512], path[4096];
    int rc = 1;

    memset(&vs, 0, sizeof(vs));
    if (advrec_eval_split_loo(&s, d, o->n_neg, o->split_seed) ||
        advrec_eval_split_val(&vs, &s, d, o->split_seed)) {
        fprintf(stderr, "advrec-eval: out of memory (split)\n");
        advrec_eval_split_free(&s);
        return 1;
    }
    fprintf(stderr,
            "loo: %u users tested, %zu training interactions; validation: "
            "%u users, %zu training interactions\n",
            s.n_tested, s.n_train, vs.n_tested, vs.n_train);
    if (o->split_dir) {
        if (mkdir_p(o->split_dir) ||
            advrec_eval_split_write(&s, d, o->split_dir, errstr,
                                    sizeof(errstr)) ||
            advrec_eval_split_write_val(&vs, d, o->split_dir, errstr,
                                        sizeof(errstr))) {
            fprintf(stderr, "advrec-eval: %s\n", errstr);
            goto out;
        }
    }
    if (o->validate) {
        /* From here on the validation split stands in for the test split:
         * the test items are never trained on nor measured. */
        advrec_eval_split_t t = s;
        s = vs;
        vs = t;
    }
    if (o->reg_rows > 0) {
        /* The L2 weight of the whole objective spread over the steps: the
         * same --reg-rows gives a dense data set a smaller weight per step
         * (docs/EVALUATION.md, "Robustness across data sets"). */
        float reg = (float)(o->reg_rows *
                            (advrec_eval_data_users(d) +
                             (double)advrec_eval_data_items(d)) /
                            (double)(s.n_train ? s.n_train : 1));

        o->apr.apr.reg = reg;
        if (!o->bpr_reg_set)
            o->bpr.apr.reg = reg;
        fprintf(stderr,
                "--reg-rows %g: reg %.6g (%u users + %u items, %zu training "
                "interactions)\n",
                o->reg_rows, (double)reg, advrec_eval_data_users(d),
                advrec_eval_data_items(d), s.n_train);
    }
    tpb = o->bpr;
    tpa = o->apr;
    if (o->eval_every) {
        cb = calloc(2, sizeof(*cb));
        if (!cb) {
            fprintf(stderr, "advrec-eval: out of memory\n");
            goto out;
        }
        cb[0] = (curve_t){.split = &s,
                          .model = "BPR",
                          .every = o->eval_every,
                          .k_cut = o->k_cut,
                          .use_bias = tpb.apr.use_bias};
        cb[1] = cb[0];
        cb[1].model = "APR";
        cb[1].use_bias = tpa.apr.use_bias;
        tpb.after_pass = tpa.after_pass = curve_after_pass;
        tpb.after_pass_opaque = &cb[0];
        tpa.after_pass_opaque = &cb[1];
    }
    if ((o->run_bpr &&
         !(mb = train_model(o, d, &s, s.train, s.n_train, &tpb, &tb))) ||
        (o->run_apr &&
         !(ma = train_model(o, d, &s, s.train, s.n_train, &tpa, &ta))))
        goto out;
    if (mb)
        advrec_eval_loo_model(&s, mb, o->bpr.apr.use_bias, 0, o->k_cut, &bs);
    if (ma)
        advrec_eval_loo_model(&s, ma, o->apr.apr.use_bias, 0, o->k_cut, &as);
    printf("%s-%u HR@%u/NDCG@%u", o->validate ? "val" : "loo", o->n_neg,
           o->k_cut, o->k_cut);
    if (mb)
        printf("  BPR %.4f %.4f (%.1fs)", bs.hr, bs.ndcg, tb);
    if (ma)
        printf("  APR %.4f %.4f (%.1fs)", as.hr, as.ndcg, ta);
    printf("\n");
    fprintf(js,
            "\"%s\": {\"tested\": %u, \"train\": %zu, \"negatives\": %u, "
            "\"split_seed\": %" PRIu64 ", ",
            o->validate ? "validation" : "loo", s.n_tested, s.n_train, o->n_neg,
            o->split_seed);
    if (o->reg_rows > 0)
        fprintf(js, "\"reg_rows\": %.9g, ", o->reg_rows);
    if (mb)
        json_norms(js, "bpr_norms", mb, o->bpr.apr.use_bias, ", ");
    if (ma)
        json_norms(js, "apr_norms", ma, o->apr.apr.use_bias, ", ");
    fprintf(js, "\"bpr_params\": ");
    json_train(js, &o->bpr);
    fprintf(js, ", \"apr_params\": ");
    json_train(js, &o->apr);
    fprintf(js, ", ");
    json_metrics(js, "bpr_sampled", &bs, tb, ", ");
    json_metrics(js, "apr_sampled", &as, ta, "");
    if (cb && mb)
        json_curve(js, "bpr_curve", &cb[0]);
    if (cb && ma)
        json_curve(js, "apr_curve", &cb[1]);
    if (o->full && mb && ma) {
        advrec_eval_loo_model(&s, mb, o->bpr.apr.use_bias, 1, o->k_cut, &bf);
        advrec_eval_loo_model(&s, ma, o->apr.apr.use_bias, 1, o->k_cut, &af);
        printf("loo-full BPR HR@%u %.4f NDCG %.4f  APR HR %.4f NDCG %.4f\n",
               o->k_cut, bf.hr, bf.ndcg, af.hr, af.ndcg);
        fprintf(js, ", ");
        json_metrics(js, "bpr_full", &bf, tb, ", ");
        json_metrics(js, "apr_full", &af, ta, "");
    }
    fprintf(js, "}");

    if (o->onepass && ma && run_onepass(o, d, &s, &as, js))
        goto out;

    if (o->fgsm && (mb || ma)) {
        double x[N_EPS + 1], yb[N_EPS + 1], ya[N_EPS + 1], rb[N_EPS + 1],
            ra[N_EPS + 1];
        series_t sr[2];
        size_t ns = 0;
        x[0] = 0;
        yb[0] = bs.hr;
        ya[0] = as.hr;
        rb[0] = ra[0] = 0;
        fprintf(js, ",\n\"fgsm\": [");
        for (int e = 1; e <= N_EPS; e++) {
            advrec_eval_metrics_t pb = {0}, pa = {0};
            float eps = 0.1f * (float)e;
            char line[256];
            int n = 0;
            x[e] = eps;
            fprintf(js, "%s{\"eps\": %.1f", e > 1 ? ", " : "", (double)eps);
            n += snprintf(line + n, sizeof(line) - (size_t)n, "fgsm eps %.1f",
                          (double)eps);
            if (mb) {
                advrec_eval_fgsm(&s, mb, o->bpr.apr.use_bias, eps, o->bpr.seed,
                                 o->k_cut, &pb);
                yb[e] = pb.hr;
                rb[e] = bs.hr > 0 ? (bs.hr - pb.hr) / bs.hr : 0;
                n += snprintf(line + n, sizeof(line) - (size_t)n,
                              "  BPR HR %.4f NDCG %.4f (-%.1f%%)", pb.hr,
                              pb.ndcg, 100 * rb[e]);
                fprintf(js,
                        ", \"bpr_hr\": %.6f, \"bpr_ndcg\": %.6f, "
                        "\"bpr_hr_drop\": %.6f, \"bpr_ndcg_drop\": %.6f",
                        pb.hr, pb.ndcg, rb[e],
                        bs.ndcg > 0 ? (bs.ndcg - pb.ndcg) / bs.ndcg : 0);
            }
            if (ma) {
                advrec_eval_fgsm(&s, ma, o->apr.apr.use_bias, eps, o->apr.seed,
                                 o->k_cut, &pa);
                ya[e] = pa.hr;
                ra[e] = as.hr > 0 ? (as.hr - pa.hr) / as.hr : 0;
                snprintf(line + n, sizeof(line) - (size_t)n,
                         "  APR HR %.4f NDCG %.4f (-%.1f%%)", pa.hr, pa.ndcg,
                         100 * ra[e]);
                fprintf(js,
                        ", \"apr_hr\": %.6f, \"apr_ndcg\": %.6f, "
                        "\"apr_hr_drop\": %.6f, \"apr_ndcg_drop\": %.6f",
                        pa.hr, pa.ndcg, ra[e],
                        as.ndcg > 0 ? (as.ndcg - pa.ndcg) / as.ndcg : 0);
            }
            fprintf(js, "}");
            printf("%s\n", line);
        }
        fprintf(js, "]");
        if (mb)
            sr[ns++] = (series_t){"BPR", x, yb, N_EPS + 1, 0};
        if (ma)
            sr[ns++] = (series_t){"APR", x, ya, N_EPS + 1, 0};
        {
            char title[256];
            snprintf(title, sizeof(title),
                     "%s: HR@%u under FGSM on the embeddings", o->name,
                     o->k_cut);
            snprintf(path, sizeof(path), "%s/fgsm-hr.svg", o->out);
            svg_plot(path, title, "eps (L2 radius per row)", "HR@10", sr, ns);
            ns = 0;
            if (mb)
                sr[ns++] = (series_t){"BPR", x, rb, N_EPS + 1, 0};
            if (ma)
                sr[ns++] = (series_t){"APR", x, ra, N_EPS + 1, 0};
            snprintf(title, sizeof(title), "%s: relative HR@%u drop under FGSM",
                     o->name, o->k_cut);
            snprintf(path, sizeof(path), "%s/fgsm-drop.svg", o->out);
            svg_plot(path, title, "eps (L2 radius per row)", "relative HR drop",
                     sr, ns);
        }
    }

    if (o->shill && mb && ma) {
        static const double sizes[N_ATTACK] = {0.01, 0.03, 0.05};
        double x[N_ATTACK + 1] = {0}, hb[N_ATTACK + 1], ha[N_ATTACK + 1];
        uint32_t n_filler =
            (uint32_t)((double)s.n_train / (s.n_users ? s.n_users : 1) + 0.5);
        uint32_t *count = calloc(s.n_items, sizeof(*count));
        uint32_t targets[64], nt = 0;
        advrec_rng_t rng = {advrec_mix64(o->bpr.seed ^ 0x7a6e7u)};

        if (!count)
            goto out;
        if (n_filler + 1 > s.n_items)
            n_filler = s.n_items - 1;
        /* Targets: unpopular items (at most 5 training interactions, at
         * least one, so the item is real), drawn uniformly. */
        for (size_t e = 0; e < s.n_train; e++)
            count[s.train[e].item]++;
        for (int tries = 0; nt < o->n_targets && nt < 64 && tries < 100000;
             tries++) {
            uint32_t i = advrec_rng_below(&rng, s.n_items);
            int dup = 0;
            for (uint32_t a = 0; a < nt; a++)
                dup |= targets[a] == i;
            if (!dup && count[i] >= 1 && count[i] <= 5)
                targets[nt++] = i;
        }
        free(count);
        fprintf(js,
                ",\n\"shilling\": {\"filler\": %u, \"targets\": %u, "
                "\"attacks\": [",
                n_filler, nt);
        for (int a = -1; a < N_ATTACK; a++) {
            uint32_t n_fake =
                a < 0 ? 0 : (uint32_t)ceil(sizes[a] * (double)s.n_users);
            double hit[2] = {0, 0}, score[2] = {0, 0};
            advrec_eval_data_t *df = with_fakes(d, n_fake);

            for (uint32_t t = 0; t < nt && df; t++) {
                advrec_eval_inter_t *v;
                size_t n;
                if (advrec_eval_shill(&s, targets[t], n_fake, n_filler,
                                      o->bpr.seed + t, &v, &n))
                    continue;
                for (int m = 0; m < 2; m++) {
                    const advrec_eval_train_t *tp = m ? &o->apr : &o->bpr;
                    double secs;
                    advrec_eval_target_t r;
                    advrec_state_t *st =
                        train_model(o, df, &s, v, n, tp, &secs);
                    if (!st)
                        continue;
                    advrec_eval_target(&s, st, tp->apr.use_bias, targets[t],
                                       o->k_cut, &r);
                    hit[m] += r.hit / nt;
                    score[m] += r.mean_score / nt;
                    advrec_state_destroy(st);
                }
                free(v);
            }
            advrec_eval_data_destroy(df);
            x[a + 1] = a < 0 ? 0 : 100 * sizes[a];
            hb[a + 1] = hit[0];
            ha[a + 1] = hit[1];
            printf("shill %4.1f%% (%u fake users, %u fillers): target in "
                   "top-%u  BPR %.4f  APR %.4f  mean score BPR %.3f APR "
                   "%.3f\n",
                   x[a + 1], n_fake, n_filler, o->k_cut, hit[0], hit[1],
                   score[0], score[1]);
            fprintf(js,
                    "%s{\"size\": %.2f, \"fake_users\": %u, \"bpr_hit\": "
                    "%.6f, \"apr_hit\": %.6f, \"bpr_score\": %.6f, "
                    "\"apr_score\": %.6f}",
                    a >= 0 ? ", " : "", x[a + 1] / 100, n_fake, hit[0], hit[1],
                    score[0], score[1]);
        }
        fprintf(js, "]}");
        {
            series_t sr[2] = {{"BPR", x, hb, N_ATTACK + 1, 0},
                              {"APR", x, ha, N_ATTACK + 1, 0}};
            char title[256];
            snprintf(title, sizeof(title),
                     "%s: shilling, target item in users' top-%u", o->name,
                     o->k_cut);
            snprintf(path, sizeof(path), "%s/shilling.svg", o->out);
            svg_plot(path, title, "fake users (% of real users)",
                     "share of users with target in top-10", sr, 2);
        }
    }
    rc = 0;
out:
    free(cb);
    advrec_state_destroy(mb);
    advrec_state_destroy(ma);
    advrec_eval_split_free(&s);
    advrec_eval_split_free(&vs);
    return rc;
}

static int run_preq(opts_t *o, const advrec_eval_data_t *d, FILE *js)
{
    static const char *names[3] = {"popularity", "bpr", "apr"};
    static const char *labels[3] = {"popularity", "BPR", "APR"};
    double hr[3][N_CURVE], nd[3][N_CURVE], x[N_CURVE], cum[3][N_CURVE];
    uint64_t cn[3][N_CURVE];
    advrec_eval_preq_t r[3];
    char errstr[512], path[4096], title[256];
    double secs[3];
    int run[3] = {1, o->run_bpr, o->run_apr}, last = o->run_apr ? 2 : 1;
    series_t sr[6];
    int n_sr = 0;

    if (o->instances > 1)
        printf("prequential through %u instances: %u partitions, item "
               "deltas exchanged every %" PRIu64 " events, peers' Adagrad "
               "accumulators %s\n",
               o->instances, o->partitions, o->sync_every,
               o->share_acc ? "merged" : "kept local");
    for (int m = 0; m < 3; m++) {
        advrec_engine_params_t p = o->eng;
        double t0 = now_s(), h = 0;
        uint64_t n = 0;
        memset(&r[m], 0, sizeof(r[m]));
        if (!run[m])
            continue;
        if (m == 1)
            p.apr.adv_lambda = 0;
        r[m].n_points = N_CURVE;
        r[m].curve_hr = hr[m];
        r[m].curve_ndcg = nd[m];
        r[m].curve_n = cn[m];
        r[m].instances = o->instances;
        r[m].partitions = o->partitions;
        r[m].sync_every = o->sync_every;
        r[m].share_acc = o->share_acc;
        snprintf(o->label, sizeof(o->label), "%s, %u instance%s", names[m],
                 o->instances, o->instances > 1 ? "s" : "");
        o->tenth = 0;
        if (advrec_eval_prequential(d, &p, m == 0, &r[m], progress, o, errstr,
                                    sizeof(errstr))) {
            fprintf(stderr, "advrec-eval: %s\n", errstr);
            return 1;
        }
        o->label[0] = '\0';
        secs[m] = now_s() - t0;
        for (int w = 0; w < N_CURVE; w++) {
            h += hr[m][w] * (double)cn[m][w];
            n += cn[m][w];
            cum[m][w] = n ? h / (double)n : 0;
        }
        printf("prequential %-10s HR@%u %.4f NDCG %.4f over %" PRIu64
               " events (%.1fs)\n",
               names[m], r[m].all.k, r[m].all.hr, r[m].all.ndcg, r[m].all.n,
               secs[m]);
        if (o->instances > 1)
            printf("prequential %-10s %" PRIu64 " exchanges, %" PRIu64
                   " item records published; users per instance %u..%u\n",
                   names[m], r[m].syncs, r[m].records, r[m].users_min,
                   r[m].users_max);
        if (m > 0 && r[m].ann_users)
            printf("prequential %-10s served by the index: %.1f %% of lists; "
                   "recall@%u of index lists vs exact on the final factors "
                   "%.4f over %" PRIu64 " users (probe %u of %u lists, "
                   "tuned on a sample: %.4f)\n",
                   names[m], 100.0 * r[m].ann_share, r[m].all.k,
                   r[m].ann_recall, r[m].ann_users, r[m].ann_probe,
                   r[m].ann_nlist, r[m].ann_sample_recall);
    }
    fprintf(js, ",\n\"prequential\": {\"events\": %" PRIu64 ", \"params\": ",
            r[0].events);
    {
        advrec_eval_train_t t = {.apr = o->eng.apr,
                                 .negatives = o->eng.negatives};
        json_train(js, &t);
    }
    fprintf(js, ", \"cold_events\": %u, \"exclude\": %d, ", o->eng.cold_events,
            o->eng.exclude);
    fprintf(js,
            "\"instances\": %u, \"partitions\": %u, \"sync_every\": %" PRIu64
            ", \"share_acc\": %d, \"exchanges\": %" PRIu64
            ", \"records\": %" PRIu64 ", ",
            o->instances, o->partitions, o->sync_every, o->share_acc,
            r[last].syncs, r[last].records);
    for (int m = 0; m < 3; m++) {
        if (!run[m])
            continue;
        json_metrics(js, names[m], &r[m].all, secs[m], ", ");
        fprintf(js, "\"%s_curve_hr\": [", names[m]);
        for (int w = 0; w < N_CURVE; w++)
            fprintf(js, "%s%.5f", w ? ", " : "", hr[m][w]);
        fprintf(js, "]%s", m < last ? ", " : "}");
    }
    for (int w = 0; w < N_CURVE; w++)
        x[w] = 100.0 * (w + 1) / N_CURVE;
    for (int m = 0; m < 3; m++)
        if (run[m])
            sr[n_sr++] = (series_t){labels[m], x, hr[m], N_CURVE, 0};
    for (int m = 0; m < 3; m++)
        if (run[m]) {
            static const char *cl[3] = {"popularity (cum.)", "BPR (cum.)",
                                        "APR (cum.)"};
            sr[n_sr++] = (series_t){cl[m], x, cum[m], N_CURVE, 1};
        }
    snprintf(title, sizeof(title), "%s: prequential HR@%u over the stream",
             o->name, o->eng.recs_n);
    snprintf(path, sizeof(path), "%s/prequential-hr.svg", o->out);
    svg_plot(path, title, "position in the stream (% of events)",
             "HR@10 per 2% window", sr, n_sr);
    return 0;
}

static int eval_main(int argc, char **argv);

/* --detect (first) is the detectors' evaluation (tools/lib/detect_eval). */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--detect") == 0)
        return advrec_detect_eval_main(argc - 1, argv + 1);
    return eval_main(argc, argv);
}

static int eval_main(int argc, char **argv)
{
    enum {
        O_LOO = 256,
        O_PREQ,
        O_ONEPASS,
        O_FGSM,
        O_SHILL,
        O_FULL,
        O_OUT,
        O_SPLIT,
        O_NAME,
        O_FORMAT,
        O_NEG,
        O_TOPK,
        O_EPOCHS,
        O_BPRE,
        O_K,
        O_LR,
        O_REG,
        O_REG_ROWS,
        O_LAMBDA,
        O_EPS,
        O_NEGS,
        O_BIAS,
        O_INIT,
        O_WARM,
        O_SEED,
        O_SPLIT_SEED,
        O_TARGETS,
        O_MINRATE,
        O_VALIDATE,
        O_MODELS,
        O_EVAL_EVERY,
        O_BPR_LR,
        O_BPR_REG,
        O_BPR_PASSES,
        O_ADAINIT,
        O_RETRIEVAL,
        O_ANN_PROBE,
        O_ANN_RECALL,
        O_ANN_REBUILD,
        O_INSTANCES,
        O_PARTITIONS,
        O_SYNC_EVERY,
        O_SHARE_ACC
    };
    static const struct option lo[] = {{"loo", 0, 0, O_LOO},
                                       {"preq", 0, 0, O_PREQ},
                                       {"onepass", 0, 0, O_ONEPASS},
                                       {"fgsm", 0, 0, O_FGSM},
                                       {"shill", 0, 0, O_SHILL},
                                       {"full", 0, 0, O_FULL},
                                       {"out", 1, 0, O_OUT},
                                       {"write-split", 1, 0, O_SPLIT},
                                       {"name", 1, 0, O_NAME},
                                       {"format", 1, 0, O_FORMAT},
                                       {"neg", 1, 0, O_NEG},
                                       {"topk", 1, 0, O_TOPK},
                                       {"epochs", 1, 0, O_EPOCHS},
                                       {"bpr-epochs", 1, 0, O_BPRE},
                                       {"k", 1, 0, O_K},
                                       {"lr", 1, 0, O_LR},
                                       {"reg", 1, 0, O_REG},
                                       {"reg-rows", 1, 0, O_REG_ROWS},
                                       {"lambda", 1, 0, O_LAMBDA},
                                       {"eps", 1, 0, O_EPS},
                                       {"negatives", 1, 0, O_NEGS},
                                       {"bias", 1, 0, O_BIAS},
                                       {"init-std", 1, 0, O_INIT},
                                       {"warmup", 1, 0, O_WARM},
                                       {"seed", 1, 0, O_SEED},
                                       {"split-seed", 1, 0, O_SPLIT_SEED},
                                       {"targets", 1, 0, O_TARGETS},
                                       {"min-rating", 1, 0, O_MINRATE},
                                       {"validate", 0, 0, O_VALIDATE},
                                       {"models", 1, 0, O_MODELS},
                                       {"eval-every", 1, 0, O_EVAL_EVERY},
                                       {"bpr-lr", 1, 0, O_BPR_LR},
                                       {"bpr-reg", 1, 0, O_BPR_REG},
                                       {"bpr-passes", 1, 0, O_BPR_PASSES},
                                       {"adagrad-init", 1, 0, O_ADAINIT},
                                       {"retrieval", 1, 0, O_RETRIEVAL},
                                       {"ann-probe", 1, 0, O_ANN_PROBE},
                                       {"ann-recall", 1, 0, O_ANN_RECALL},
                                       {"ann-rebuild-ms", 1, 0, O_ANN_REBUILD},
                                       {"instances", 1, 0, O_INSTANCES},
                                       {"partitions", 1, 0, O_PARTITIONS},
                                       {"sync-every", 1, 0, O_SYNC_EVERY},
                                       {"share-acc", 1, 0, O_SHARE_ACC},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    opts_t o;
    float bpr_lr = -1, bpr_reg = -1;
    long bpr_passes = -1;
    int bpr_epochs_set = 0;
    advrec_conf_t *conf;
    advrec_eval_data_t *d = NULL;
    char errstr[512], path[4096];
    uint64_t skipped = 0;
    FILE *js = NULL;
    int c, rc = 1;

    memset(&o, 0, sizeof(o));
    advrec_reader_conf_init(&o.rconf);
    o.out = "eval-out";
    o.n_neg = 99;
    o.k_cut = 10;
    o.n_targets = 5;
    o.instances = 1;
    o.partitions = 12;
    o.sync_every = 1000;
    o.share_acc = 1;
    /* Model parameters start at the daemon's shipped defaults. */
    conf = advrec_conf_new(errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "advrec-eval: out of memory\n");
        return 1;
    }
    /* -X key=value: the daemon's settings over its defaults, as advrecd
     * takes them, before the model options below. */
    for (int a = 1; a < argc; a++) {
        const char *kv = NULL;
        if (strcmp(argv[a], "-X") == 0 && a + 1 < argc)
            kv = argv[++a];
        else if (strncmp(argv[a], "-X", 2) == 0 && argv[a][2])
            kv = argv[a] + 2;
        else if (strcmp(argv[a], "--") == 0)
            break;
        if (!kv)
            continue;
        char key[256];
        const char *eq = strchr(kv, '=');
        if (!eq || (size_t)(eq - kv) >= sizeof(key)) {
            fprintf(stderr, "advrec-eval: -X %s: expected key=value\n", kv);
            advrec_conf_destroy(conf);
            return 2;
        }
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        if (advrec_conf_set(conf, key, eq + 1, errstr, sizeof(errstr))) {
            fprintf(stderr, "advrec-eval: -X %s: %s\n", kv, errstr);
            advrec_conf_destroy(conf);
            return 2;
        }
    }
    advrec_params_engine(&o.eng, conf);
    o.shipped = o.eng;
    advrec_conf_destroy(conf);
    o.apr.apr = o.eng.apr;
    o.apr.epochs = 30;
    o.apr.bpr_epochs = 15;
    o.apr.negatives = o.eng.negatives;
    o.apr.seed = o.eng.apr.seed;
    o.run_bpr = o.run_apr = 1;

    while ((c = getopt_long(argc, argv, "qhX:", lo, NULL)) != -1) {
        switch (c) {
        case 'X':
            break; /* applied before the defaults were taken */
        case O_LOO:
            o.loo = 1;
            break;
        case O_ONEPASS:
            o.onepass = 1;
            o.loo = 1;
            break;
        case O_PREQ:
            o.preq = 1;
            break;
        case O_FGSM:
            o.fgsm = 1;
            break;
        case O_SHILL:
            o.shill = 1;
            break;
        case O_FULL:
            o.full = 1;
            break;
        case O_OUT:
            o.out = optarg;
            break;
        case O_SPLIT:
            o.split_dir = optarg;
            break;
        case O_NAME:
            o.name = optarg;
            break;
        case O_FORMAT:
            if (advrec_reader_format_parse(optarg, &o.rconf.format)) {
                fprintf(stderr, "advrec-eval: unknown format %s\n", optarg);
                return 64;
            }
            break;
        case O_NEG:
            o.n_neg = (uint32_t)atoi(optarg);
            break;
        case O_TOPK:
            o.k_cut = (uint32_t)atoi(optarg);
            break;
        case O_EPOCHS:
            o.apr.epochs = (uint32_t)atoi(optarg);
            break;
        case O_BPRE:
            o.apr.bpr_epochs = (uint32_t)atoi(optarg);
            bpr_epochs_set = 1;
            break;
        case O_K:
            o.apr.apr.k = atoi(optarg);
            break;
        case O_LR:
            o.apr.apr.lr = strtof(optarg, NULL);
            break;
        case O_REG:
            o.apr.apr.reg = strtof(optarg, NULL);
            break;
        case O_REG_ROWS:
            o.reg_rows = strtod(optarg, NULL);
            if (!(o.reg_rows > 0)) {
                fprintf(stderr,
                        "advrec-eval: --reg-rows %s: want a "
                        "positive number\n",
                        optarg);
                return 64;
            }
            break;
        case O_LAMBDA:
            o.apr.apr.adv_lambda = strtof(optarg, NULL);
            break;
        case O_EPS:
            o.apr.apr.adv_eps = strtof(optarg, NULL);
            break;
        case O_NEGS:
            o.apr.negatives = (uint32_t)atoi(optarg);
            break;
        case O_BIAS:
            o.apr.apr.use_bias = atoi(optarg) != 0;
            break;
        case O_INIT:
            o.apr.apr.init_std = strtof(optarg, NULL);
            break;
        case O_WARM:
            o.apr.apr.adv_warmup = (uint32_t)atoi(optarg);
            break;
        case O_SEED:
            o.apr.seed = o.apr.apr.seed = strtoull(optarg, NULL, 10);
            break;
        case O_SPLIT_SEED:
            o.split_seed = strtoull(optarg, NULL, 10);
            o.split_seed_set = 1;
            break;
        case O_TARGETS:
            o.n_targets = (uint32_t)atoi(optarg);
            break;
        case O_MINRATE:
            o.rconf.min_rating = atoi(optarg);
            break;
        case O_ADAINIT:
            o.apr.apr.adagrad_init = strtof(optarg, NULL);
            break;
        case O_RETRIEVAL:
            if (strcmp(optarg, "exact") == 0)
                o.eng.retrieval = ADVREC_RANK_RETRIEVAL_EXACT;
            else if (strcmp(optarg, "ann") == 0)
                o.eng.retrieval = ADVREC_RANK_RETRIEVAL_ANN;
            else if (strcmp(optarg, "auto") == 0)
                o.eng.retrieval = ADVREC_RANK_RETRIEVAL_AUTO;
            else {
                fprintf(stderr,
                        "advrec-eval: --retrieval %s: not exact, "
                        "ann or auto\n",
                        optarg);
                return 2;
            }
            break;
        case O_ANN_PROBE:
            o.eng.ann.nprobe = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_ANN_RECALL:
            o.eng.ann.recall = strtod(optarg, NULL);
            break;
        case O_ANN_REBUILD:
            o.eng.ann.rebuild_ms = strtoll(optarg, NULL, 10);
            break;
        case O_INSTANCES:
            o.instances = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_PARTITIONS:
            o.partitions = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case O_SYNC_EVERY:
            o.sync_every = strtoull(optarg, NULL, 10);
            break;
        case O_SHARE_ACC:
            o.share_acc = atoi(optarg) != 0;
            break;
        case O_BPR_LR:
            bpr_lr = strtof(optarg, NULL);
            break;
        case O_BPR_REG:
            bpr_reg = strtof(optarg, NULL);
            break;
        case O_BPR_PASSES:
            bpr_passes = atol(optarg);
            break;
        case O_EVAL_EVERY:
            o.eval_every = (uint32_t)atoi(optarg);
            break;
        case O_VALIDATE:
            o.validate = 1;
            break;
        case O_MODELS:
            o.run_bpr = strstr(optarg, "bpr") != NULL;
            o.run_apr = strstr(optarg, "apr") != NULL;
            if (!o.run_bpr && !o.run_apr) {
                fprintf(stderr, "advrec-eval: --models %s: want bpr, apr\n",
                        optarg);
                return 64;
            }
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 64;
    }
    o.path = argv[optind];
    if (!o.name) {
        o.name = strrchr(o.path, '/') ? strrchr(o.path, '/') + 1 : o.path;
    }
    if (!o.loo && !o.preq && !o.shill && !o.fgsm)
        o.loo = 1;
    /* APR is BPR pre-training then adversarial passes: with no adversarial
     * pass left it would silently be BPR. An explicit --bpr-epochs that
     * leaves none is refused; the default pre-training (half of the
     * default passes) is cut to half of a smaller --epochs, and said. */
    if (o.run_apr && o.apr.apr.adv_lambda > 0 &&
        o.apr.bpr_epochs >= o.apr.epochs) {
        if (bpr_epochs_set) {
            fprintf(stderr,
                    "advrec-eval: --bpr-epochs %u >= --epochs %u leaves APR "
                    "no adversarial pass (it would be BPR); give more "
                    "--epochs or fewer --bpr-epochs\n",
                    o.apr.bpr_epochs, o.apr.epochs);
            return 64;
        }
        fprintf(stderr,
                "advrec-eval: --epochs %u: APR pre-trains with BPR for %u "
                "of them (half; the default is 15 of 30) and trains "
                "adversarially for %u; --bpr-epochs chooses\n",
                o.apr.epochs, o.apr.epochs / 2,
                o.apr.epochs - o.apr.epochs / 2);
        o.apr.bpr_epochs = o.apr.epochs / 2;
    }
    if (o.onepass && !o.run_apr) {
        fprintf(stderr, "advrec-eval: --onepass compares with the offline "
                        "APR: --models must include apr\n");
        return 64;
    }
    if (o.instances < 1 || o.instances > 1024 || o.partitions < o.instances ||
        o.partitions > 100000) {
        fprintf(stderr,
                "advrec-eval: --instances %u, --partitions %u: want 1..1024 "
                "instances and at least one partition each\n",
                o.instances, o.partitions);
        return 64;
    }
    if (o.instances > 1 && !o.preq) {
        fprintf(stderr, "advrec-eval: --instances is a --preq replay\n");
        return 64;
    }
    if (o.reg_rows > 0 && !(o.loo || o.fgsm || o.shill)) {
        fprintf(stderr, "advrec-eval: --reg-rows sets the offline models' "
                        "reg (--loo, --fgsm, --shill); the engine of --preq "
                        "takes -X model.reg\n");
        return 64;
    }
    if (o.eval_every && !o.validate) {
        fprintf(stderr, "advrec-eval: --eval-every measures the validation "
                        "split: it needs --validate (the test split is "
                        "measured once)\n");
        return 64;
    }
    if (!o.split_seed_set)
        o.split_seed = o.apr.seed;
    o.bpr = o.apr;
    o.bpr.apr.adv_lambda = 0;
    /* BPR may be tuned separately (--bpr-*); otherwise it shares APR's. */
    if (bpr_lr > 0)
        o.bpr.apr.lr = bpr_lr;
    if (bpr_reg >= 0) {
        o.bpr.apr.reg = bpr_reg;
        o.bpr_reg_set = 1;
    }
    if (bpr_passes > 0)
        o.bpr.epochs = (uint32_t)bpr_passes;
    o.bpr.bpr_epochs = o.bpr.epochs;
    /* The prequential engine trains with the same model parameters. */
    o.eng.apr = o.apr.apr;
    o.eng.state.k = (uint32_t)o.apr.apr.k;
    o.eng.negatives = o.apr.negatives;
    o.eng.recs_n = o.k_cut;

    /* The output directory before the (long) load: a bad --out fails
     * first. */
    if (mkdir_p(o.out))
        goto out;
    d = advrec_eval_data_new();
    if (!d || advrec_eval_data_load(d, o.path, &o.rconf, &skipped, progress, &o,
                                    errstr, sizeof(errstr))) {
        fprintf(stderr, "advrec-eval: %s\n", d ? errstr : "out of memory");
        goto out;
    }
    fprintf(stderr,
            "%s: %zu events, %u users, %u items, %" PRIu64
            " malformed lines skipped\n",
            o.path, advrec_eval_data_count(d), advrec_eval_data_users(d),
            advrec_eval_data_items(d), skipped);
    if (advrec_eval_data_first_skip(d))
        fprintf(stderr, "  the first malformed line: %s\n",
                advrec_eval_data_first_skip(d));
    if (advrec_eval_data_count(d) < 2) {
        fprintf(stderr,
                "advrec-eval: %s: nothing to evaluate (%zu events read; "
                "--format names the file's format)\n",
                o.path, advrec_eval_data_count(d));
        goto out;
    }
    snprintf(path, sizeof(path), "%s/results.json", o.out);
    if (!(js = fopen(path, "w"))) {
        fprintf(stderr, "advrec-eval: cannot write %s\n", path);
        goto out;
    }
    fprintf(js,
            "{\"data\": {\"name\": \"%s\", \"path\": \"%s\", \"events\": %zu, "
            "\"users\": %u, \"items\": %u, \"skipped\": %" PRIu64 "}",
            o.name, o.path, advrec_eval_data_count(d),
            advrec_eval_data_users(d), advrec_eval_data_items(d), skipped);
    if (o.loo || o.fgsm || o.shill) {
        fprintf(js, ",\n");
        if (run_loo(&o, d, js))
            goto out;
    }
    if (o.preq && run_preq(&o, d, js))
        goto out;
    fprintf(js, "}\n");
    rc = 0;
out:
    if (js)
        fclose(js);
    advrec_eval_data_destroy(d);
    return rc;
}
