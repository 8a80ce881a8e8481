/*
 * advrec-gen - writes a synthetic click/purchase stream as CSV, with labels.
 *
 *   advrec-gen [options] [-o FILE]     stream as "user,item,type,ts" (ts in ms)
 *   --labels FILE                      the ground truth: adversarial accounts
 *                                      and the items they push
 *
 * A thin shell over tools/lib/synth: it parses options into
 * advrec_synth_params_t, pulls events and prints them. Progress goes to stderr
 * only when stderr is a terminal; one summary line is printed at the end either
 * way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "err.h"
#include "event.h"
#include "synth.h"

static void usage(FILE *fp)
{
    advrec_synth_params_t d = advrec_synth_params_default();

    fprintf(fp,
            "usage: advrec-gen [options]\n"
            "Writes a synthetic e-commerce event stream as CSV "
            "(user,item,type,ts; ts in ms\n"
            "since the epoch), in time order; the same options and seed give "
            "the same bytes.\n"
            "\n"
            "  -o, --output FILE       stream to FILE (default: stdout)\n"
            "      --labels FILE       ground truth CSV "
            "(entity_type,entity_id,kind)\n"
            "      --seed N            random seed (%" PRIu64 ")\n"
            "      --users N           normal users (%u)\n"
            "      --items N           items (%u)\n"
            "      --events N          events to write, 0 = endless (%" PRIu64
            ")\n"
            "      --start S           first event time, epoch seconds "
            "(%" PRId64 ")\n"
            "      --purchase-prob P   P(a click is followed by a purchase) "
            "(%g)\n"
            "      --zipf S            item popularity exponent (%g)\n"
            "      --bots N            click bots (%u)\n"
            "      --bot-rate R        bot clicks per second (%g)\n"
            "      --bot-events N      clicks per bot (%u)\n"
            "      --shill-groups N    shilling groups (%u)\n"
            "      --shill-size N      accounts per group (%u)\n"
            "      --shill-fillers N   filler clicks per shilling account "
            "(%u)\n"
            "      --attack-start S    attack window start, seconds after "
            "--start (auto)\n"
            "      --attack-len S      attack window length, seconds (auto)\n"
            "  -q, --quiet             no progress and no summary\n"
            "  -h, --help              this text\n"
            "See docs/GENERATOR.md for the model.\n",
            d.seed, d.n_users, d.n_items, d.max_events, d.start_s,
            d.purchase_prob, d.zipf_exponent, d.n_bots, d.bot_rate,
            d.bot_events, d.n_shill_groups, d.shill_size, d.shill_fillers);
}

/* Strict number parsing: the whole argument, in range, or a clear error. */
static int parse_u64(const char *opt, const char *arg, uint64_t max,
                     uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v > max) {
        fprintf(stderr, "advrec-gen: --%s: '%s' is not a number in 0..%llu\n",
                opt, arg, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u32(const char *opt, const char *arg, uint32_t *out)
{
    uint64_t v;

    if (parse_u64(opt, arg, UINT32_MAX, &v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *opt, const char *arg, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(arg, &end);
    if (errno || end == arg || *end) {
        fprintf(stderr, "advrec-gen: --%s: '%s' is not a number\n", opt, arg);
        return -1;
    }
    return 0;
}

enum {
    OPT_LABELS = 256,
    OPT_SEED,
    OPT_USERS,
    OPT_ITEMS,
    OPT_EVENTS,
    OPT_START,
    OPT_PURCHASE_PROB,
    OPT_ZIPF,
    OPT_BOTS,
    OPT_BOT_RATE,
    OPT_BOT_EVENTS,
    OPT_SHILL_GROUPS,
    OPT_SHILL_SIZE,
    OPT_SHILL_FILLERS,
    OPT_ATTACK_START,
    OPT_ATTACK_LEN,
};

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"labels", required_argument, NULL, OPT_LABELS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"users", required_argument, NULL, OPT_USERS},
    {"items", required_argument, NULL, OPT_ITEMS},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"start", required_argument, NULL, OPT_START},
    {"purchase-prob", required_argument, NULL, OPT_PURCHASE_PROB},
    {"zipf", required_argument, NULL, OPT_ZIPF},
    {"bots", required_argument, NULL, OPT_BOTS},
    {"bot-rate", required_argument, NULL, OPT_BOT_RATE},
    {"bot-events", required_argument, NULL, OPT_BOT_EVENTS},
    {"shill-groups", required_argument, NULL, OPT_SHILL_GROUPS},
    {"shill-size", required_argument, NULL, OPT_SHILL_SIZE},
    {"shill-fillers", required_argument, NULL, OPT_SHILL_FILLERS},
    {"attack-start", required_argument, NULL, OPT_ATTACK_START},
    {"attack-len", required_argument, NULL, OPT_ATTACK_LEN},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Fills params from argv; returns 0, -1 after --help, or an exit code. */
static int parse_args(int argc, char **argv, advrec_synth_params_t *params,
                      const char **out_path, const char **labels_path,
                      int *quiet)
{
    int c, rc = 0;
    uint64_t v;

    while ((c = getopt_long(argc, argv, "o:qh", long_opts, NULL)) != -1) {
        const char *name = "";
        for (const struct option *o = long_opts; o->name; o++)
            if (o->val == c)
                name = o->name;
        switch (c) {
        case 'o':
            *out_path = optarg;
            break;
        case OPT_LABELS:
            *labels_path = optarg;
            break;
        case OPT_SEED:
            rc = parse_u64(name, optarg, UINT64_MAX, &params->seed);
            break;
        case OPT_USERS:
            rc = parse_u32(name, optarg, &params->n_users);
            break;
        case OPT_ITEMS:
            rc = parse_u32(name, optarg, &params->n_items);
            break;
        case OPT_EVENTS:
            rc = parse_u64(name, optarg, UINT64_MAX, &params->max_events);
            break;
        case OPT_START:
            rc = parse_u64(name, optarg, (uint64_t)INT64_MAX / 1000, &v);
            params->start_s = (int64_t)v;
            break;
        case OPT_PURCHASE_PROB:
            rc = parse_double(name, optarg, &params->purchase_prob);
            break;
        case OPT_ZIPF:
            rc = parse_double(name, optarg, &params->zipf_exponent);
            break;
        case OPT_BOTS:
            rc = parse_u32(name, optarg, &params->n_bots);
            break;
        case OPT_BOT_RATE:
            rc = parse_double(name, optarg, &params->bot_rate);
            break;
        case OPT_BOT_EVENTS:
            rc = parse_u32(name, optarg, &params->bot_events);
            break;
        case OPT_SHILL_GROUPS:
            rc = parse_u32(name, optarg, &params->n_shill_groups);
            break;
        case OPT_SHILL_SIZE:
            rc = parse_u32(name, optarg, &params->shill_size);
            break;
        case OPT_SHILL_FILLERS:
            rc = parse_u32(name, optarg, &params->shill_fillers);
            break;
        case OPT_ATTACK_START:
            rc = parse_double(name, optarg, &params->attack_start_s);
            break;
        case OPT_ATTACK_LEN:
            rc = parse_double(name, optarg, &params->attack_len_s);
            break;
        case 'q':
            *quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return EX_USAGE;
        }
        if (rc)
            return EX_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "advrec-gen: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    advrec_synth_params_t params = advrec_synth_params_default();
    const char *out_path = NULL, *labels_path = NULL;
    advrec_synth_t *synth = NULL;
    advrec_synth_stats_t stats;
    advrec_event_t ev;
    FILE *out = stdout, *labels = NULL;
    char errstr[512];
    int quiet = 0, progress, rc;
    uint64_t every;

    rc = parse_args(argc, argv, &params, &out_path, &labels_path, &quiet);
    if (rc)
        return rc < 0 ? EX_OK : rc;

    synth = advrec_synth_new(&params, errstr, sizeof(errstr));
    if (!synth) {
        fprintf(stderr, "advrec-gen: %s\n", errstr);
        return EX_USAGE;
    }
    if (out_path && strcmp(out_path, "-") != 0) {
        out = fopen(out_path, "w");
        if (!out) {
            fprintf(stderr, "advrec-gen: %s: %s\n", out_path, strerror(errno));
            rc = EX_CANTCREAT;
            goto done;
        }
    }
    /* Open the labels file before generating, so a bad path fails fast. */
    if (labels_path) {
        labels = fopen(labels_path, "w");
        if (!labels) {
            fprintf(stderr, "advrec-gen: %s: %s\n", labels_path,
                    strerror(errno));
            rc = EX_CANTCREAT;
            goto done;
        }
    }
    setvbuf(out, NULL, _IOFBF, 1 << 20);

    progress = !quiet && isatty(STDERR_FILENO);
    every = params.max_events ? params.max_events / 100 : 100000;
    if (every < 10000)
        every = 10000;

    fputs("user,item,type,ts\n", out);
    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        fprintf(out, "%s,%s,%s,%" PRId64 "\n", ev.user_id, ev.item_id,
                advrec_event_type_name(ev.type), ev.ts_ms);
        advrec_synth_stats(synth, &stats);
        if (progress && stats.events % every == 0) {
            if (params.max_events)
                fprintf(stderr, "\radvrec-gen: %" PRIu64 " events (%d%%)",
                        stats.events,
                        (int)(stats.events * 100 / params.max_events));
            else
                fprintf(stderr, "\radvrec-gen: %" PRIu64 " events",
                        stats.events);
        }
        if (ferror(out))
            break;
    }
    if (progress)
        fputc('\n', stderr);
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "advrec-gen: writing %s: %s\n",
                out_path ? out_path : "stdout", strerror(errno));
        rc = EX_IOERR;
        goto done;
    }
    if (labels) {
        if (advrec_synth_write_labels(synth, labels, 1, errstr,
                                      sizeof(errstr)) != ADVREC_OK) {
            fprintf(stderr, "advrec-gen: %s: %s\n", labels_path, errstr);
            rc = EX_IOERR;
            goto done;
        }
    }
    advrec_synth_stats(synth, &stats);
    if (!quiet)
        fprintf(stderr,
                "advrec-gen: %" PRIu64 " events: %" PRIu64 " clicks, %" PRIu64
                " purchases, %" PRIu64 " adversarial (%" PRIu64 " bot, %" PRIu64
                " shill)\n",
                stats.events, stats.clicks, stats.purchases,
                stats.bot_events + stats.shill_events, stats.bot_events,
                stats.shill_events);
    rc = EX_OK;

done:
    if (labels && fclose(labels) != 0 && rc == EX_OK) {
        fprintf(stderr, "advrec-gen: %s: %s\n", labels_path, strerror(errno));
        rc = EX_IOERR;
    }
    if (out && out != stdout && fclose(out) != 0 && rc == EX_OK) {
        fprintf(stderr, "advrec-gen: %s: %s\n", out_path, strerror(errno));
        rc = EX_IOERR;
    }
    advrec_synth_destroy(synth);
    return rc;
}
