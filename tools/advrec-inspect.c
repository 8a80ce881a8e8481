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
 * works the same. A user's list is built by lib/rank, the code the daemon
 * publishes with, from the stored factors, popularity keys and the user's
 * purchase/seen sets, under the daemon's configuration (-c, -X): a cold
 * user gets the popularity list, as from the daemon.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "config.h"
#include "engine.h"
#include "params.h"
#include "err.h"
#include "event.h"
#include "log.h"
#include "outbox.h"
#include "popularity.h"
#include "rank.h"
#include "state.h"
#include "store.h"

typedef struct opts_s {
    int json;
    int factors;               /* print factor vectors */
    const advrec_conf_t *conf; /* the daemon's configuration (or defaults) */
    uint32_t n;                /* top-N length; 0: the conf's recs.n */
    int exclude;               /* advrec_conf_exclude_t; -1: the conf's */
} opts_t;

/* The list rank built, copied out of its callback. */
typedef struct got_list_s {
    uint32_t *items;
    float *scores;
    uint32_t n;
    int popular;
    int got;
} got_list_t;

static void keep_list(void *opaque, const advrec_rank_list_t *list)
{
    got_list_t *g = opaque;

    memcpy(g->items, list->items, list->n * sizeof(*g->items));
    memcpy(g->scores, list->scores, list->n * sizeof(*g->scores));
    g->n = list->n;
    g->popular = list->popular;
    g->got = 1;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: advrec-inspect [options] STATE_DIR COMMAND\n"
            "A read-only view of an advrecd state directory (works while the "
            "daemon runs).\n"
            "\n"
            "commands:\n"
            "  user ID      a user's counters, last input position, recent "
            "history,\n"
            "               purchase/seen set sizes and the list the daemon "
            "would publish\n"
            "               now (lib/rank: the model's top-N, or popularity "
            "for a cold user)\n"
            "  item ID      an item's counters, bias and popularity key\n"
            "  offsets      the next input offset stored per partition\n"
            "  pending      outputs still owed to the broker: users owed a "
            "list,\n"
            "               anomaly flags and dead letters not yet "
            "acknowledged\n"
            "  summary      lineage, row counts, model version, fingerprint, "
            "size\n"
            "\n"
            "options:\n"
            "  -j, --json            JSON instead of text\n"
            "  -c, --config FILE     the daemon's configuration (recs.n, "
            "recs.exclude,\n"
            "                        recs.cold.events, model.bias, "
            "recs.popularity.halflife.s);\n"
            "                        the defaults otherwise\n"
            "  -X key=value          one setting, as advrecd -X (after -c)\n"
            "  -n, --top N           list length (recs.n)\n"
            "  -f, --factors         also print the factor vectors\n"
            "  -x, --exclude WHAT    purchased|seen|none: what the list "
            "leaves out\n"
            "                        (recs.exclude)\n"
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

static int cmd_user(advrec_store_t *store, const char *id, const opts_t *o)
{
    const advrec_store_params_t *sp = advrec_store_params(store);
    const advrec_conf_t *conf = o->conf;
    /* Every stored set entry is kept: the daemon bounded them already. */
    advrec_state_params_t stp = {.k = sp->k,
                                 .history = sp->history,
                                 .max_users = 1,
                                 .max_items = ADVREC_HIST_ITEM,
                                 .purchased_max = ADVREC_ITEMSET_MAX,
                                 .seen_max = ADVREC_ITEMSET_MAX};
    advrec_engine_params_t ep;
    advrec_rank_params_t rp;
    advrec_store_row_t row;
    advrec_state_t *state = NULL;
    advrec_popularity_t *pop = NULL;
    advrec_rank_t *rank = NULL;
    advrec_user_ext_t *ux;
    got_list_t list = {0};
    uint32_t u = 0, n_items = 0;
    char errstr[512], name[ADVREC_ID_MAX + 16];
    json_t *root = NULL, *hist = NULL, *jtop = NULL;
    advrec_err_t err;
    int rc = EX_OK;

    /* The daemon's ranking parameters (lib/params), then -n and -x. */
    advrec_params_engine(&ep, conf);
    rp.recs_n = o->n ? o->n : ep.recs_n;
    rp.exclude = o->exclude >= 0 ? o->exclude : ep.exclude;
    rp.cold_events = ep.cold_events;
    rp.use_bias = ep.apr.use_bias;
    rp.retrieval = ADVREC_RANK_RETRIEVAL_EXACT; /* one list: the truth */
    err = advrec_store_get_user(store, id, &row, errstr, sizeof(errstr));
    if (err)
        return fail("user", errstr, err);

    /* Every item's factors and popularity key, and the user's row with its
     * sets, to rank this user the way the daemon does. */
    state = advrec_state_new(&stp, errstr, sizeof(errstr));
    pop = advrec_popularity_new(ep.popularity_halflife_s * 1000.0,
                                (size_t)rp.recs_n + sp->history, errstr,
                                sizeof(errstr));
    rank = state && pop ? advrec_rank_new(&rp, errstr, sizeof(errstr)) : NULL;
    if (!state || !pop || !rank) {
        rc = fail("user", errstr, ADVREC_ERR_NOMEM);
        goto out;
    }
    if ((err = advrec_store_load_items(store, state, pop, errstr,
                                       sizeof(errstr))) ||
        (err = advrec_store_load_user(store, state, id, &u, errstr,
                                      sizeof(errstr)))) {
        rc = fail("user", errstr, err);
        goto out;
    }
    ux = advrec_state_user_ext(state);
    n_items = advrec_state_items(state)->n;
    list.items = malloc(((size_t)rp.recs_n + 1) * sizeof(*list.items));
    list.scores = malloc(((size_t)rp.recs_n + 1) * sizeof(*list.scores));
    if (!list.items || !list.scores ||
        advrec_rank_users(rank, state, pop, &u, 1, keep_list, &list)) {
        rc = fail("user", "out of memory", ADVREC_ERR_NOMEM);
        goto out;
    }

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
            json_object_set_new(root, "adagrad", json_real((double)row.acc));
        }
        json_object_set_new(
            root, "purchased_set",
            json_integer(advrec_itemset_count(ux->purchased[u])));
        json_object_set_new(root, "seen_set",
                            json_integer(advrec_itemset_count(ux->seen[u])));
        json_object_set_new(root, "history", hist = json_array());
        json_object_set_new(root, "list",
                            json_string(list.popular ? "popularity" : "model"));
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
            print_floats("adagrad", &row.acc, 1);
        }
        printf("  sets: %u purchased, %u seen items remembered\n",
               advrec_itemset_count(ux->purchased[u]),
               advrec_itemset_count(ux->seen[u]));
        printf("  history (newest first, %u of %u):\n", row.hist_len,
               row.history);
    }
    /* The ring's newest entry is just before hist_head. */
    for (uint32_t h = 0; h < row.hist_len; h++) {
        uint32_t at = (row.hist_head + row.history - 1 - h) % row.history;
        uint32_t e = row.hist[at];
        const char *nm = advrec_state_item_name(state, e & ADVREC_HIST_ITEM);
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
        printf("  top %u of %u items (%s):\n", list.n, n_items,
               list.popular ? "popularity: a cold user, under recs.cold.events"
                            : "model, from the stored factors");
    for (uint32_t t = 0; t < list.n; t++) {
        const char *nm = advrec_state_item_name(state, list.items[t]);
        if (jtop)
            json_array_append_new(jtop,
                                  json_pack("{s:s, s:f}", "item", nm, "score",
                                            (double)list.scores[t]));
        else
            printf("    %2u. %s %.9g\n", t + 1, nm, (double)list.scores[t]);
    }
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        printf("\n");
    }
out:
    json_decref(root);
    free(list.items);
    free(list.scores);
    advrec_rank_destroy(rank);
    advrec_popularity_destroy(pop);
    advrec_state_destroy(state);
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
            json_object_set_new(root, "adagrad", json_real((double)row.acc));
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
            print_floats("adagrad", &row.acc, 1);
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

/* One owed output (lib/outbox) as a line or a JSON object. */
static int print_pending(void *opaque, uint64_t seq, advrec_out_kind_t kind,
                         const void *key, size_t key_len, const void *value,
                         size_t value_len)
{
    json_t *arr = opaque;
    const char *what = kind == ADVREC_OUT_DEAD        ? "dead-letter"
                       : kind == ADVREC_OUT_TOMBSTONE ? "list-tombstone"
                                                      : "flag";
    char k[80];
    size_t n = key_len < sizeof(k) - 1 ? key_len : sizeof(k) - 1;

    /* Keys are input bytes: show printable ASCII only. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char *)key)[i];
        k[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    k[n] = '\0';
    if (arr)
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s?, s:I, s:I}", "seq", (json_int_t)seq,
                           "kind", what, "key", key ? k : NULL, "key_bytes",
                           (json_int_t)key_len, "value_bytes",
                           (json_int_t)(value ? value_len : 0)));
    else
        printf("%llu\t%s\t%s%s\t%zu\n", (unsigned long long)seq, what,
               key ? k : "(null)", key_len > n ? "..." : "", value_len);
    return 0;
}

/* What the daemon still owes the broker: users owed a list, flags and dead
 * letters not yet acknowledged (lib/outbox; produced again at start). */
static int cmd_pending(advrec_store_t *store, const opts_t *o)
{
    json_t *arr = o->json ? json_array() : NULL;
    uint32_t *users = NULL;
    size_t n_users = 0;
    char errstr[512];
    advrec_err_t err;

    err = advrec_store_load_pending(store, &users, &n_users, errstr,
                                    sizeof(errstr));
    free(users);
    if (err) {
        json_decref(arr);
        return fail("pending", errstr, err);
    }
    if (!o->json)
        printf("users owed a list: %zu\nseq\tkind\tkey\tvalue_bytes\n",
               n_users);
    err = advrec_outbox_read_stored(store, print_pending, arr, errstr,
                                    sizeof(errstr));
    if (err) {
        json_decref(arr);
        return fail("pending", errstr, err);
    }
    if (arr) {
        json_t *root = json_pack("{s:I, s:o}", "users_owed_a_list",
                                 (json_int_t)n_users, "outputs", arr);
        json_dumpf(root, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(root);
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
            "{s:s, s:s, s:I, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
            "state_dir", advrec_store_dir(store), "state_id",
            advrec_store_id(store), "commit",
            (json_int_t)advrec_store_seq(store), "format", ADVREC_STORE_FORMAT,
            "model.k", (int)sp->k, "recs.history", (int)sp->history, "users",
            (json_int_t)s.users, "items", (json_int_t)s.items, "model_version",
            (json_int_t)s.model_version, "offsets", (json_int_t)s.offsets,
            "detector_rows", (json_int_t)s.detectors, "sst_bytes",
            (json_int_t)s.disk_bytes);
        json_dumpf(root, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(root);
    } else {
        printf("state.dir      %s\n", advrec_store_dir(store));
        printf("lineage        %s, commit %" PRIu64 "\n",
               advrec_store_id(store)[0] ? advrec_store_id(store) : "(none)",
               advrec_store_seq(store));
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
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts_t o = {0, 0, NULL, 0, -1};
    advrec_conf_t *conf;
    advrec_store_t *store = NULL;
    const char *dir, *cmd;
    char errstr[512], *end;
    advrec_err_t err;
    int c, rc;
    long v;

    conf = advrec_conf_new(errstr, sizeof(errstr));
    if (!conf)
        return fail("config", errstr, ADVREC_ERR_NOMEM);
    o.conf = conf;
    while ((c = getopt_long(argc, argv, "jn:fx:c:X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            err = advrec_conf_load_file(conf, optarg, errstr, sizeof(errstr));
            if (err) {
                fprintf(stderr, "advrec-inspect: %s\n", errstr);
                advrec_conf_destroy(conf);
                return err == ADVREC_ERR_IO ? EX_NOINPUT : EX_CONFIG;
            }
            break;
        case 'X':
            err = advrec_conf_set_arg(conf, optarg, errstr, sizeof(errstr));
            if (err) {
                fprintf(stderr, "advrec-inspect: %s\n", errstr);
                advrec_conf_destroy(conf);
                return err == ADVREC_ERR_INVALID_ARG ? EX_USAGE : EX_CONFIG;
            }
            break;
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
                advrec_conf_destroy(conf);
                return EX_USAGE;
            }
            o.n = (uint32_t)v;
            break;
        case 'x':
            if (strcmp(optarg, "purchased") == 0)
                o.exclude = ADVREC_RANK_EXCLUDE_PURCHASED;
            else if (strcmp(optarg, "seen") == 0)
                o.exclude = ADVREC_RANK_EXCLUDE_SEEN;
            else if (strcmp(optarg, "none") == 0)
                o.exclude = ADVREC_RANK_EXCLUDE_NONE;
            else {
                fprintf(stderr,
                        "advrec-inspect: --exclude %s: want purchased, seen "
                        "or none\n",
                        optarg);
                advrec_conf_destroy(conf);
                return EX_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            advrec_conf_destroy(conf);
            return EX_OK;
        default:
            usage(stderr);
            advrec_conf_destroy(conf);
            return EX_USAGE;
        }
    }
    if (argc - optind < 2) {
        usage(stderr);
        rc = EX_USAGE;
        goto done;
    }
    dir = argv[optind];
    cmd = argv[optind + 1];
    if (((strcmp(cmd, "user") == 0 || strcmp(cmd, "item") == 0) &&
         argc - optind != 3) ||
        ((strcmp(cmd, "offsets") == 0 || strcmp(cmd, "summary") == 0 ||
          strcmp(cmd, "pending") == 0) &&
         argc - optind != 2)) {
        usage(stderr);
        rc = EX_USAGE;
        goto done;
    }
    if (strcmp(cmd, "user") && strcmp(cmd, "item") && strcmp(cmd, "offsets") &&
        strcmp(cmd, "summary") && strcmp(cmd, "pending")) {
        fprintf(stderr, "advrec-inspect: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = EX_USAGE;
        goto done;
    }
    /* Only errors: the store's "opened" chatter is not the output. */
    advrec_log_set_level(ADVREC_LOG_WARNING);
    err = advrec_store_open_readonly(dir, &store, errstr, sizeof(errstr));
    if (err) {
        rc = fail("open", errstr, err);
        goto done;
    }
    if (strcmp(cmd, "user") == 0)
        rc = cmd_user(store, argv[optind + 2], &o);
    else if (strcmp(cmd, "item") == 0)
        rc = cmd_item(store, argv[optind + 2], &o);
    else if (strcmp(cmd, "offsets") == 0)
        rc = cmd_offsets(store, &o);
    else if (strcmp(cmd, "pending") == 0)
        rc = cmd_pending(store, &o);
    else
        rc = cmd_summary(store, &o);
    advrec_store_close(store);
done:
    advrec_conf_destroy(conf);
    return rc;
}
