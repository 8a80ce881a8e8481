/*
 * advrec-inspect - a read-only view of an advrecd state directory.
 *
 *   advrec-inspect [options] STATE_DIR user ID    factors, history,
 *                                                 counters, current top-N
 *   advrec-inspect [options] STATE_DIR item ID    an item's row and stats
 *   advrec-inspect [options] STATE_DIR offsets    stored input offsets
 *   advrec-inspect [options] STATE_DIR summary    counts, version, size
 *
 * Opens the directory as a RocksDB secondary instance (lib/store.h), so it
 * works while advrecd runs and never writes to it; a checkpoint directory
 * works the same. The top-N is computed from the stored factors with the
 * daemon's own scoring (lib/topn), excluding what recs.exclude would.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "engine.h"
#include "err.h"
#include "event.h"
#include "log.h"
#include "state.h"
#include "store.h"
#include "topn.h"

typedef struct opts_s {
    int json;
    int factors; /* print factor vectors */
    uint32_t n;  /* top-N length */
    int exclude; /* advrec_engine_exclude_t */
} opts_t;

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: advrec-inspect [options] STATE_DIR COMMAND\n"
            "A read-only view of an advrecd state directory (works while the "
            "daemon runs).\n"
            "\n"
            "commands:\n"
            "  user ID      a user's counters, last input position, recent "
            "history and\n"
            "               current top-N computed from the stored factors\n"
            "  item ID      an item's counters, bias and popularity key\n"
            "  offsets      the next input offset stored per partition\n"
            "  summary      row counts, model version, fingerprint, size\n"
            "\n"
            "options:\n"
            "  -j, --json            JSON instead of text\n"
            "  -n, --top N           top-N length (10)\n"
            "  -f, --factors         also print the factor vectors\n"
            "  -x, --exclude WHAT    purchased|seen|none: what the top-N "
            "leaves out\n"
            "                        (purchased, as recs.exclude's default)\n"
            "  -h, --help            this text\n");
}

static int fail(const char *what, const char *errstr, advrec_err_t err)
{
    fprintf(stderr, "advrec-inspect: %s: %s\n", what, errstr);
    if (err == ADVREC_ERR_NOT_FOUND)
        return EX_DATAERR;
    if (err == ADVREC_ERR_STATE_MISMATCH || err == ADVREC_ERR_STORE)
        return EX_NOINPUT;
    return EX_SOFTWARE;
}

static json_t *floats_json(const float *v, uint32_t n)
{
    json_t *a = json_array();

    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static void print_floats(const char *label, const float *v, uint32_t n)
{
    printf("  %s:", label);
    for (uint32_t i = 0; i < n; i++)
        printf(" %.9g", (double)v[i]);
    printf("\n");
}

static double norm(const float *v, uint32_t n)
{
    double s = 0;

    for (uint32_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmd_user(advrec_store_t *store, const char *id, const opts_t *o)
{
    const advrec_store_params_t *sp = advrec_store_params(store);
    advrec_state_params_t stp = {sp->k, sp->history, 1, ADVREC_HIST_ITEM};
    advrec_store_row_t row;
    advrec_state_t *items_state = NULL;
    advrec_rows_t *items;
    advrec_topn_entry_t *top = NULL;
    float *scores = NULL;
    uint32_t *excl = NULL, n_excl = 0;
    size_t n_top = 0;
    char errstr[512], name[ADVREC_ID_MAX + 16];
    json_t *root = NULL, *hist = NULL, *jtop = NULL;
    advrec_err_t err;
    int rc = EX_OK;

    err = advrec_store_get_user(store, id, &row, errstr, sizeof(errstr));
    if (err)
        return fail("user", errstr, err);

    /* Every item's factors, to score this user the way the daemon does. */
    items_state = advrec_state_new(&stp, errstr, sizeof(errstr));
    if (!items_state) {
        rc = fail("items", errstr, ADVREC_ERR_NOMEM);
        goto out;
    }
    err = advrec_store_load_items(store, items_state, NULL, errstr,
                                  sizeof(errstr));
    if (err) {
        rc = fail("items", errstr, err);
        goto out;
    }
    items = advrec_state_items(items_state);
    excl = malloc((row.hist_len + 1) * sizeof(*excl));
    scores = malloc(((size_t)items->n + 1) * sizeof(*scores));
    top = malloc(((size_t)o->n + 1) * sizeof(*top));
    if (!excl || !scores || !top) {
        rc = fail("user", "out of memory", ADVREC_ERR_NOMEM);
        goto out;
    }
    for (uint32_t h = 0; h < row.hist_len; h++)
        if (o->exclude == ADVREC_ENGINE_EXCLUDE_SEEN ||
            (o->exclude == ADVREC_ENGINE_EXCLUDE_PURCHASED &&
             (row.hist[h] & ADVREC_HIST_PURCHASE)))
            excl[n_excl++] = row.hist[h] & ADVREC_HIST_ITEM;
    qsort(excl, n_excl, sizeof(*excl), cmp_u32);
    if (items->n > 0 &&
        advrec_topn_score_one(row.w, items->w, items->bias, items->n,
                              (int)row.k, scores) == ADVREC_OK)
        n_top = advrec_topn_select(scores, items->n, excl, n_excl, o->n, top);

    if (o->json) {
        root = json_object();
        json_object_set_new(root, "user", json_string(id));
        json_object_set_new(root, "index", json_integer(row.idx));
        json_object_set_new(root, "clicks",
                            json_integer((json_int_t)row.clicks));
        json_object_set_new(root, "purchases",
                            json_integer((json_int_t)row.purchases));
        json_object_set_new(root, "updates", json_integer(row.updates));
        json_object_set_new(root, "last",
                            json_pack("{s:i, s:i, s:I, s:I}", "topic",
                                      (int)row.last.topic, "partition",
                                      (int)row.last.partition, "offset",
                                      (json_int_t)row.last.offset, "ts_ms",
                                      (json_int_t)row.last_ts_ms));
        json_object_set_new(root, "factor_norm", json_real(norm(row.w, row.k)));
        if (o->factors) {
            json_object_set_new(root, "factors", floats_json(row.w, row.k));
            json_object_set_new(root, "adagrad", floats_json(row.acc, row.k));
        }
        json_object_set_new(root, "history", hist = json_array());
        json_object_set_new(root, "top", jtop = json_array());
    } else {
        printf("user %s (index %u)\n", id, row.idx);
        printf("  clicks %" PRIu64 ", purchases %" PRIu64 ", updates %u, "
               "|factors| %.6g\n",
               row.clicks, row.purchases, row.updates, norm(row.w, row.k));
        printf("  last event: input topic #%u partition %d offset %" PRId64
               ", ts %" PRId64 " ms\n",
               (unsigned)row.last.topic, (int)row.last.partition,
               row.last.offset, row.last_ts_ms);
        if (o->factors) {
            print_floats("factors", row.w, row.k);
            print_floats("adagrad", row.acc, row.k);
        }
        printf("  history (newest first, %u of %u):\n", row.hist_len,
               row.history);
    }
    /* The ring's newest entry is just before hist_head. */
    for (uint32_t h = 0; h < row.hist_len; h++) {
        uint32_t at = (row.hist_head + row.history - 1 - h) % row.history;
        uint32_t e = row.hist[at];
        const char *nm =
            advrec_state_item_name(items_state, e & ADVREC_HIST_ITEM);
        snprintf(name, sizeof(name), "%s", nm ? nm : "?");
        if (hist)
            json_array_append_new(
                hist,
                json_pack("{s:s, s:s}", "item", name, "type",
                          e & ADVREC_HIST_PURCHASE ? "purchase" : "click"));
        else
            printf("    %s%s\n", name,
                   e & ADVREC_HIST_PURCHASE ? " (purchase)" : "");
    }
    if (!o->json)
        printf("  top %zu of %u items (from stored factors):\n", n_top,
               items->n);
    for (size_t t = 0; t < n_top; t++) {
        const char *nm = advrec_state_item_name(items_state, top[t].item);
        if (jtop)
            json_array_append_new(jtop,
                                  json_pack("{s:s, s:f}", "item", nm, "score",
                                            (double)top[t].score));
        else
            printf("    %2zu. %s %.6g\n", t + 1, nm, (double)top[t].score);
    }
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        printf("\n");
    }
out:
    json_decref(root);
    free(excl);
    free(scores);
    free(top);
    advrec_state_destroy(items_state);
    advrec_store_row_free(&row);
    return rc;
}

static int cmd_item(advrec_store_t *store, const char *id, const opts_t *o)
{
    advrec_store_row_t row;
    char errstr[512];
    advrec_err_t err;

    err = advrec_store_get_item(store, id, &row, errstr, sizeof(errstr));
    if (err)
        return fail("item", errstr, err);
    if (o->json) {
        json_t *root = json_pack(
            "{s:s, s:i, s:I, s:I, s:i, s:f, s:f, s:f}", "item", id, "index",
            (int)row.idx, "clicks", (json_int_t)row.clicks, "purchases",
            (json_int_t)row.purchases, "updates", (int)row.updates, "bias",
            (double)row.bias, "bias_adagrad", (double)row.bias_acc,
            "factor_norm", norm(row.w, row.k));
        /* -inf (never seen) has no JSON number: null. */
        json_object_set_new(root, "popularity_key",
                            isfinite(row.pop_key) ? json_real(row.pop_key)
                                                  : json_null());
        if (o->factors) {
            json_object_set_new(root, "factors", floats_json(row.w, row.k));
            json_object_set_new(root, "adagrad", floats_json(row.acc, row.k));
        }
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        printf("\n");
        json_decref(root);
    } else {
        printf("item %s (index %u)\n", id, row.idx);
        printf("  clicks %" PRIu64 ", purchases %" PRIu64 ", updates %u\n",
               row.clicks, row.purchases, row.updates);
        printf("  bias %.9g (adagrad %.9g), |factors| %.6g\n", (double)row.bias,
               (double)row.bias_acc, norm(row.w, row.k));
        printf("  popularity key %.17g (log2 of the decayed score referred "
               "to t=0)\n",
               row.pop_key);
        if (o->factors) {
            print_floats("factors", row.w, row.k);
            print_floats("adagrad", row.acc, row.k);
        }
    }
    advrec_store_row_free(&row);
    return EX_OK;
}

static int print_offset(void *opaque, const advrec_store_offset_t *off)
{
    json_t *arr = opaque;

    if (arr)
        json_array_append_new(
            arr, json_pack("{s:s, s:i, s:I}", "topic", off->topic, "partition",
                           (int)off->partition, "next", (json_int_t)off->next));
    else
        printf("%s\t%d\t%" PRId64 "\n", off->topic, (int)off->partition,
               off->next);
    return 0;
}

static int cmd_offsets(advrec_store_t *store, const opts_t *o)
{
    json_t *arr = o->json ? json_array() : NULL;
    char errstr[512];
    advrec_err_t err;

    if (!o->json)
        printf("topic\tpartition\tnext_offset\n");
    err = advrec_store_offsets_foreach(store, print_offset, arr, errstr,
                                       sizeof(errstr));
    if (err) {
        json_decref(arr);
        return fail("offsets", errstr, err);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(arr);
    }
    return EX_OK;
}

static int cmd_summary(advrec_store_t *store, const opts_t *o)
{
    const advrec_store_params_t *sp = advrec_store_params(store);
    advrec_store_summary_t s;
    char errstr[512];
    advrec_err_t err;

    err = advrec_store_summary(store, &s, errstr, sizeof(errstr));
    if (err)
        return fail("summary", errstr, err);
    if (o->json) {
        json_t *root = json_pack(
            "{s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "state_dir",
            advrec_store_dir(store), "format", ADVREC_STORE_FORMAT, "model.k",
            (int)sp->k, "recs.history", (int)sp->history, "users",
            (json_int_t)s.users, "items", (json_int_t)s.items, "model_version",
            (json_int_t)s.model_version, "offsets", (json_int_t)s.offsets,
            "detector_rows", (json_int_t)s.detectors, "sst_bytes",
            (json_int_t)s.disk_bytes);
        json_dumpf(root, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(root);
    } else {
        printf("state.dir      %s\n", advrec_store_dir(store));
        printf("format         %d, model.k=%u, recs.history=%u\n",
               ADVREC_STORE_FORMAT, sp->k, sp->history);
        printf("users          %u\n", s.users);
        printf("items          %u\n", s.items);
        printf("model version  %" PRIu64 " training steps\n", s.model_version);
        printf("offsets        %zu partitions\n", s.offsets);
        printf("detector rows  %zu\n", s.detectors);
        printf("SST bytes      %" PRIu64 "\n", s.disk_bytes);
    }
    return EX_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"top", required_argument, NULL, 'n'},
        {"factors", no_argument, NULL, 'f'},
        {"exclude", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts_t o = {0, 0, 10, ADVREC_ENGINE_EXCLUDE_PURCHASED};
    advrec_store_t *store = NULL;
    const char *dir, *cmd;
    char errstr[512], *end;
    advrec_err_t err;
    int c, rc;
    long v;

    while ((c = getopt_long(argc, argv, "jn:fx:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = 1;
            break;
        case 'f':
            o.factors = 1;
            break;
        case 'n':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, "advrec-inspect: --top %s: want 1..100000\n",
                        optarg);
                return EX_USAGE;
            }
            o.n = (uint32_t)v;
            break;
        case 'x':
            if (strcmp(optarg, "purchased") == 0)
                o.exclude = ADVREC_ENGINE_EXCLUDE_PURCHASED;
            else if (strcmp(optarg, "seen") == 0)
                o.exclude = ADVREC_ENGINE_EXCLUDE_SEEN;
            else if (strcmp(optarg, "none") == 0)
                o.exclude = ADVREC_ENGINE_EXCLUDE_NONE;
            else {
                fprintf(stderr,
                        "advrec-inspect: --exclude %s: want purchased, seen "
                        "or none\n",
                        optarg);
                return EX_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (argc - optind < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    dir = argv[optind];
    cmd = argv[optind + 1];
    if (((strcmp(cmd, "user") == 0 || strcmp(cmd, "item") == 0) &&
         argc - optind != 3) ||
        ((strcmp(cmd, "offsets") == 0 || strcmp(cmd, "summary") == 0) &&
         argc - optind != 2)) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(cmd, "user") && strcmp(cmd, "item") && strcmp(cmd, "offsets") &&
        strcmp(cmd, "summary")) {
        fprintf(stderr, "advrec-inspect: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return EX_USAGE;
    }
    /* Only errors: the store's "opened" chatter is not the output. */
    advrec_log_set_level(ADVREC_LOG_WARNING);
    err = advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr));
    if (err)
        return fail("open", errstr, err);
    if (strcmp(cmd, "user") == 0)
        rc = cmd_user(store, argv[optind + 2], &o);
    else if (strcmp(cmd, "item") == 0)
        rc = cmd_item(store, argv[optind + 2], &o);
    else if (strcmp(cmd, "offsets") == 0)
        rc = cmd_offsets(store, &o);
    else
        rc = cmd_summary(store, &o);
    advrec_store_close(store);
    return rc;
}
