/*
 * advrec-produce - replays event files into Kafka as Confluent-framed Avro.
 *
 * Reads one or more files with the reader module (one format for all of
 * them), encodes each event with the codec module as a Click or a Purchase
 * (schema ids given on the command line), and produces it to the click or
 * purchase topic keyed by user id. The producer is idempotent and uses
 * partitioner=murmur2_random, so a user's events land on the partition a
 * Java or kafka-python producer would choose for the same key.
 *
 * Malformed lines are reported with file:line, counted and skipped; the run
 * goes on. At the end every delivery is awaited (bounded by
 * --flush-timeout), a summary goes to stderr, and the exit status is
 * non-zero if any delivery failed or did not complete.
 *
 * This program owns: one librdkafka producer, one codec, one reader at a
 * time, and one encode buffer. Ctrl-C (SIGINT/SIGTERM) stops reading and
 * still flushes what was produced.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "err.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "reader.h"
#include "registry.h"

#define PRODUCE_REASONS_MAX                          \
    5 /* malformed-line reasons kept for the summary \
       */
#define PRODUCE_REASON_SIZE 512

enum { TOPIC_CLICK = 0, TOPIC_PURCHASE = 1, TOPIC__COUNT };

typedef struct produce_opts_s {
    const char *bootstrap;
    const char *topics[TOPIC__COUNT];
    int32_t schema_ids[TOPIC__COUNT];
    const char *schema_dir;
    const char *registry; /* --registry URL, or NULL */
    int ids_given;        /* --click-schema-id / --purchase-schema-id */
    advrec_reader_conf_t reader_conf;
    double rate;    /* events/s, 0 = unlimited */
    double speedup; /* event-time replay factor, 0 = as fast as possible */
    uint64_t limit; /* events, 0 = all */
    int flush_timeout_ms;
    int quiet;
    int progress; /* -1 = auto (stderr is a terminal) */
} produce_opts_t;

/* What the delivery report callback counts; read by the main thread only
 * (rd_kafka_poll/flush run the callback on the calling thread). */
typedef struct produce_stats_s {
    uint64_t read;     /* events read from files */
    uint64_t produced; /* accepted by rd_kafka_producev */
    uint64_t delivered[TOPIC__COUNT];
    uint64_t failed;
    uint64_t skipped;  /* malformed lines */
    uint64_t filtered; /* dropped by mapping / min rating */
    uint64_t encode_failed;
    char reasons[PRODUCE_REASONS_MAX][PRODUCE_REASON_SIZE];
    int n_reasons;
    char first_failure[PRODUCE_REASON_SIZE];
} produce_stats_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "Usage: advrec-produce [options] FILE...\n"
        "Replays event files into Kafka as Confluent-framed Avro, keyed by\n"
        "user id (FILE '-' is stdin).\n"
        "\n"
        "  -b, --bootstrap HOST:PORT  Kafka bootstrap servers "
        "(default localhost:9092)\n"
        "  -X, --kafka KEY=VALUE      librdkafka property, passed through "
        "(repeatable;\n"
        "                             'kafka.' prefix optional)\n"
        "  -f, --format NAME          taobao, movielens, otto, csv, amazon, "
        "session,\n"
        "                             ratings or auto (ratings is never "
        "guessed)\n"
        "                             (default auto: guessed from the first "
        "line)\n"
        "      --cart MAP             Taobao cart / OTTO carts: click, "
        "purchase, skip\n"
        "                             (default click)\n"
        "      --fav MAP              Taobao fav: click, purchase, skip "
        "(default click)\n"
        "      --min-rating N         MovieLens, ratings: drop ratings below "
        "N\n"
        "      --amazon-step-ms N     Amazon: synthetic ms between events "
        "(default 1000)\n"
        "      --click-topic NAME     (default advrec.clicks)\n"
        "      --purchase-topic NAME  (default advrec.purchases)\n"
        "      --schema-dir DIR       where click.avsc and purchase.avsc are\n"
        "      --click-schema-id N    schema id in the frame of clicks "
        "(default 1)\n"
        "      --purchase-schema-id N schema id of purchases (default 2)\n"
        "      --registry URL         Schema Registry: register click.avsc "
        "and\n"
        "                             purchase.avsc under <topic>-value and "
        "frame\n"
        "                             with its ids (credentials, if any, "
        "from\n"
        "                             $ADVREC_REGISTRY_USER_INFO, user:pass)\n"
        "      --rate N               at most N events/s (default: "
        "unlimited)\n"
        "      --speedup X            replay at X times event-time speed "
        "(0: as fast\n"
        "                             as possible, the default)\n"
        "      --limit N              stop after N events\n"
        "      --flush-timeout MS     wait at most MS for deliveries at the "
        "end\n"
        "                             (default 30000)\n"
        "      --progress / --no-progress  progress bar on stderr (default: "
        "when a\n"
        "                             terminal)\n"
        "  -q, --quiet                no progress, no per-line warnings\n"
        "  -v, --verbose              debug logging (with -X debug=... for "
        "librdkafka)\n"
        "  -h, --help\n"
        "\n"
        "Exit status: 0 when every produced event was delivered; 1 when a\n"
        "delivery failed or did not complete; 64 usage; 66 unreadable "
        "file;\n"
        "69 schema registry unreachable; 78 bad Kafka property or schema.\n");
}

/*
 * --registry: registers our Click and Purchase schemas under <topic>-value
 * and puts the registry's ids into opts->schema_ids. Returns EX_OK, or
 * EX_UNAVAILABLE (the registry cannot be reached) / EX_CONFIG (it refuses
 * a schema) / EX_OSERR with errstr set.
 */
static int registry_ids(const advrec_codec_t *codec, produce_opts_t *opts,
                        char *errstr, size_t errstr_size)
{
    advrec_registry_opts_t ropts = {
        .url = opts->registry,
        .user_info = getenv("ADVREC_REGISTRY_USER_INFO"),
        .timeout_ms = 10000,
    };
    advrec_registry_t *reg;
    advrec_err_t err;
    char subject[512], why[1024];
    int rc = EX_OK;

    if ((err = advrec_registry_new(&reg, &ropts, errstr, errstr_size)))
        return err == ADVREC_ERR_NOMEM ? EX_OSERR : EX_USAGE;
    for (int t = 0; t < TOPIC__COUNT && rc == EX_OK; t++) {
        advrec_codec_kind_t kind =
            t == TOPIC_CLICK ? ADVREC_CODEC_CLICK : ADVREC_CODEC_PURCHASE;
        char *json = advrec_codec_reader_json(codec, kind);
        if (!json) {
            rc = EX_OSERR;
            snprintf(errstr, errstr_size, "out of memory");
            break;
        }
        snprintf(subject, sizeof(subject), "%s-value", opts->topics[t]);
        err = advrec_registry_register(reg, subject, json, &opts->schema_ids[t],
                                       why, sizeof(why));
        free(json);
        if (err)
            rc = err == ADVREC_ERR_IO      ? EX_UNAVAILABLE
                 : err == ADVREC_ERR_NOMEM ? EX_OSERR
                                           : EX_CONFIG;
        if (err)
            advrec_seterr(err, errstr, errstr_size,
                          "schema registry: our %s schema under subject %s: "
                          "%s",
                          advrec_codec_kind_name(kind), subject, why);
    }
    advrec_registry_destroy(reg);
    return rc;
}

static int parse_double(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return (errno || end == s || *end || *out < 0) ? -1 : 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    if (*s == '-')
        return -1;
    *out = strtoull(s, &end, 10);
    return (errno || end == s || *end) ? -1 : 0;
}

/* Counts each delivery by topic; the message opaque is the topic index. */
static void kafka_dr_cb(void *opaque, const rd_kafka_message_t *msg)
{
    produce_stats_t *stats = opaque;

    if (msg->err) {
        if (stats->failed++ == 0)
            snprintf(stats->first_failure, sizeof(stats->first_failure),
                     "%s [%" PRId32 "]: %s", rd_kafka_topic_name(msg->rkt),
                     msg->partition, rd_kafka_err2str(msg->err));
        return;
    }
    stats->delivered[(intptr_t)msg->_private == TOPIC_PURCHASE ? TOPIC_PURCHASE
                                                               : TOPIC_CLICK]++;
}

/*
 * Builds the producer (lib/kafka: its defaults, then ours, then the -X
 * properties, which may override them). ADVREC_ERR_CONFIG / KAFKA with the
 * reason in errstr.
 */
static advrec_err_t kafka_new(advrec_kafka_t **kafkap,
                              const produce_opts_t *opts, char **props,
                              int n_props, produce_stats_t *stats, char *errstr,
                              size_t errstr_size)
{
    static const advrec_kafka_prop_t defaults[] = {
        {"compression.type", "lz4", NULL},
    };
    advrec_kafka_prop_t *kv = calloc((size_t)n_props + 1, sizeof(*kv));
    advrec_kafka_prop_t boot = {"bootstrap.servers", opts->bootstrap, "-b"};
    advrec_err_t err;

    if (!kv)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    kv[0] = boot;
    for (int i = 0; i < n_props; i++) {
        char *p = props[i], *eq;

        if (strncmp(p, "kafka.", 6) == 0)
            p += 6;
        eq = strchr(p, '=');
        if (!eq || eq == p) {
            free(kv);
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "-X %s: expected KEY=VALUE", props[i]);
        }
        *eq = '\0'; /* props[i] is argv's: split it in place */
        kv[i + 1].name = p;
        kv[i + 1].value = eq + 1;
        kv[i + 1].origin = "-X";
    }
    advrec_kafka_params_t params = {
        .role = ADVREC_KAFKA_PRODUCER,
        .defaults = defaults,
        .n_defaults = sizeof(defaults) / sizeof(*defaults),
        .props = kv,
        .n_props = (size_t)n_props + 1,
        .on_delivery = kafka_dr_cb,
        .opaque = stats,
    };
    err = advrec_kafka_new(kafkap, &params, errstr, errstr_size);
    free(kv);
    return err;
}

/*
 * Asks for both topics' metadata before the first event, bounded by
 * timeout_ms: otherwise the first event of a topic the client has not seen
 * yet waits for a metadata refresh (a second on the embedded broker, which
 * creates topics on first use), and an unreachable broker only shows at
 * the end. A failure here is only a warning: deliveries report the truth.
 * The second topic is not asked for when the first timed out.
 */
static void kafka_warm_up(advrec_kafka_t *kafka, const produce_opts_t *opts,
                          int timeout_ms)
{
    for (int t = 0; t < TOPIC__COUNT; t++) {
        rd_kafka_resp_err_t err =
            advrec_kafka_warm_up(kafka, opts->topics[t], timeout_ms);

        if (err && !opts->quiet)
            log_warning("%s: no metadata yet: %s", opts->topics[t],
                        rd_kafka_err2str(err));
        /* Unreachable: asking again for the next topic would only wait. */
        if (err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
            err == RD_KAFKA_RESP_ERR__TRANSPORT)
            break;
    }
}

/* Progress: the line is redrawn in place, at most 5 times a second. */
typedef struct progress_s {
    int on;
    int64_t start_us;
    int64_t last_us;
    int64_t total_bytes; /* of all files, -1 when unknown (stdin) */
    int64_t done_bytes;  /* of the files already finished */
} progress_t;

static void progress_draw(progress_t *pg, const produce_stats_t *stats,
                          const advrec_reader_t *reader, int force)
{
    int64_t now = now_us();
    double secs, pct = -1;

    if (!pg->on || (!force && now - pg->last_us < 200000))
        return;
    pg->last_us = now;
    secs = (double)(now - pg->start_us) / 1e6;
    if (pg->total_bytes > 0)
        pct = 100.0 *
              (double)(pg->done_bytes +
                       (reader ? advrec_reader_bytes_read(reader) : 0)) /
              (double)pg->total_bytes;
    fprintf(stderr,
            "\r\033[K%" PRIu64 " events, %.0f ev/s, %" PRIu64
            " delivered, %" PRIu64 " skipped",
            stats->produced, secs > 0 ? (double)stats->produced / secs : 0.0,
            stats->delivered[0] + stats->delivered[1], stats->skipped);
    if (pct >= 0)
        fprintf(stderr, ", %.1f%%", pct);
}

/*
 * Waits until the next event may go: --rate spaces events by 1/rate s,
 * --speedup places them at their event-time offset divided by the factor;
 * with both, the later of the two. Serves delivery reports while waiting.
 */
typedef struct pacer_s {
    int64_t start_us;
    int64_t first_ts_ms;
    uint64_t n;
} pacer_t;

static void pace(pacer_t *pacer, const produce_opts_t *opts, rd_kafka_t *rk,
                 int64_t ts_ms)
{
    int64_t due = pacer->start_us, now;

    if (pacer->n == 0) {
        pacer->start_us = now_us();
        pacer->first_ts_ms = ts_ms;
        due = pacer->start_us;
    }
    if (opts->rate > 0)
        due = pacer->start_us + (int64_t)((double)pacer->n * 1e6 / opts->rate);
    if (opts->speedup > 0) {
        int64_t at =
            pacer->start_us + (int64_t)((double)(ts_ms - pacer->first_ts_ms) *
                                        1e3 / opts->speedup);
        if (at > due)
            due = at;
    }
    pacer->n++;
    while (!stop_requested && (now = now_us()) < due) {
        int64_t wait_ms = (due - now) / 1000;
        if (wait_ms > 0) {
            rd_kafka_poll(rk, wait_ms > 100 ? 100 : (int)wait_ms);
        } else {
            struct timespec ts = {0, (long)(due - now) * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* Produces one framed value, keyed by user, at its event time; waits
 * while the local queue is full (lib/kafka). */
static int produce_one(advrec_kafka_t *kafka, const char *topic, int topic_idx,
                       const advrec_event_t *ev, const void *value,
                       size_t value_len, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = advrec_kafka_produce(
        kafka, topic, ev->user_id, strlen(ev->user_id), value, value_len, NULL,
        ev->ts_ms, (void *)(intptr_t)topic_idx);

    if (err) {
        snprintf(errstr, errstr_size, "produce to %s: %s", topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void note_reason(produce_stats_t *stats, const char *reason, int quiet,
                        progress_t *pg)
{
    if (stats->n_reasons < PRODUCE_REASONS_MAX)
        snprintf(stats->reasons[stats->n_reasons++], PRODUCE_REASON_SIZE, "%s",
                 reason);
    if (!quiet && stats->skipped <= 20) {
        if (pg->on)
            fputs("\r\033[K", stderr);
        log_warning("skipped: %s%s", reason,
                    stats->skipped == 20 ? " (further ones not shown)" : "");
    }
}

static void summary(const produce_stats_t *stats, const produce_opts_t *opts,
                    double secs, uint64_t undelivered)
{
    uint64_t delivered = stats->delivered[0] + stats->delivered[1];

    fprintf(stderr,
            "advrec-produce: read %" PRIu64 " events, produced %" PRIu64
            ", delivered %" PRIu64 " (%s %" PRIu64 ", %s %" PRIu64
            "), failed %" PRIu64 ", undelivered %" PRIu64 "\n",
            stats->read, stats->produced, delivered, opts->topics[0],
            stats->delivered[0], opts->topics[1], stats->delivered[1],
            stats->failed, undelivered);
    fprintf(stderr,
            "advrec-produce: skipped %" PRIu64
            " malformed lines, filtered %" PRIu64 " records, %" PRIu64
            " not encodable; %.2f s, %.0f events/s\n",
            stats->skipped, stats->filtered, stats->encode_failed, secs,
            secs > 0 ? (double)stats->produced / secs : 0.0);
    for (int i = 0; i < stats->n_reasons; i++)
        fprintf(stderr, "advrec-produce:   %s\n", stats->reasons[i]);
    if (stats->skipped > (uint64_t)stats->n_reasons)
        fprintf(stderr, "advrec-produce:   ... and %" PRIu64 " more\n",
                stats->skipped - (uint64_t)stats->n_reasons);
    if (stats->failed)
        fprintf(stderr, "advrec-produce: first delivery failure: %s\n",
                stats->first_failure);
}

int main(int argc, char **argv)
{
    enum {
        OPT_CART = 256,
        OPT_FAV,
        OPT_MIN_RATING,
        OPT_AMAZON_STEP,
        OPT_CLICK_TOPIC,
        OPT_PURCHASE_TOPIC,
        OPT_SCHEMA_DIR,
        OPT_CLICK_ID,
        OPT_PURCHASE_ID,
        OPT_REGISTRY,
        OPT_RATE,
        OPT_SPEEDUP,
        OPT_LIMIT,
        OPT_FLUSH_TIMEOUT,
        OPT_PROGRESS,
        OPT_NO_PROGRESS,
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka", required_argument, NULL, 'X'},
        {"format", required_argument, NULL, 'f'},
        {"cart", required_argument, NULL, OPT_CART},
        {"fav", required_argument, NULL, OPT_FAV},
        {"min-rating", required_argument, NULL, OPT_MIN_RATING},
        {"amazon-step-ms", required_argument, NULL, OPT_AMAZON_STEP},
        {"click-topic", required_argument, NULL, OPT_CLICK_TOPIC},
        {"purchase-topic", required_argument, NULL, OPT_PURCHASE_TOPIC},
        {"schema-dir", required_argument, NULL, OPT_SCHEMA_DIR},
        {"click-schema-id", required_argument, NULL, OPT_CLICK_ID},
        {"purchase-schema-id", required_argument, NULL, OPT_PURCHASE_ID},
        {"registry", required_argument, NULL, OPT_REGISTRY},
        {"rate", required_argument, NULL, OPT_RATE},
        {"speedup", required_argument, NULL, OPT_SPEEDUP},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"flush-timeout", required_argument, NULL, OPT_FLUSH_TIMEOUT},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    produce_opts_t opts = {
        .bootstrap = "localhost:9092",
        .topics = {"advrec.clicks", "advrec.purchases"},
        .schema_ids = {1, 2},
        .flush_timeout_ms = 30000,
        .progress = -1,
    };
    static produce_stats_t stats; /* large (reasons): not on the stack */
    char **props = NULL;
    int n_props = 0, c, longindex = 0, rc = EX_SOFTWARE;
    char errstr[1024], path[4096];
    advrec_codec_t *codec = NULL;
    advrec_kafka_t *kafka = NULL;
    rd_kafka_t *rk = NULL;
    advrec_reader_t *reader = NULL;
    unsigned char *buf = NULL;
    size_t buf_size = 4096;
    progress_t pg = {0};
    pacer_t pacer = {0};
    int64_t start_us;
    uint64_t undelivered = 0, v;
    double d;

    advrec_reader_conf_init(&opts.reader_conf);
    props = calloc((size_t)argc, sizeof(*props));
    if (!props)
        return EX_OSERR;

    while ((c = getopt_long(argc, argv, "b:X:f:qvh", longopts, &longindex)) !=
           -1) {
        switch (c) {
        case 'b':
            opts.bootstrap = optarg;
            break;
        case 'X':
            props[n_props++] = optarg;
            break;
        case 'f':
            if (advrec_reader_format_parse(optarg, &opts.reader_conf.format)) {
                fprintf(stderr, "advrec-produce: unknown format '%s'\n",
                        optarg);
                goto usage_error;
            }
            break;
        case OPT_CART:
        case OPT_FAV:
            if (advrec_reader_map_parse(optarg, c == OPT_CART
                                                    ? &opts.reader_conf.cart
                                                    : &opts.reader_conf.fav)) {
                fprintf(stderr,
                        "advrec-produce: --%s: '%s' is not click, purchase "
                        "or skip\n",
                        c == OPT_CART ? "cart" : "fav", optarg);
                goto usage_error;
            }
            break;
        case OPT_MIN_RATING:
            if (parse_u64(optarg, &v) || v > 1000)
                goto bad_number;
            opts.reader_conf.min_rating = (int)v;
            break;
        case OPT_AMAZON_STEP:
            if (parse_u64(optarg, &v) || v > INT32_MAX)
                goto bad_number;
            opts.reader_conf.amazon_step_ms = (int64_t)v;
            break;
        case OPT_CLICK_TOPIC:
            opts.topics[TOPIC_CLICK] = optarg;
            break;
        case OPT_PURCHASE_TOPIC:
            opts.topics[TOPIC_PURCHASE] = optarg;
            break;
        case OPT_SCHEMA_DIR:
            opts.schema_dir = optarg;
            break;
        case OPT_CLICK_ID:
        case OPT_PURCHASE_ID:
            if (parse_u64(optarg, &v) || v > INT32_MAX)
                goto bad_number;
            opts.schema_ids[c == OPT_CLICK_ID ? TOPIC_CLICK : TOPIC_PURCHASE] =
                (int32_t)v;
            opts.ids_given = 1;
            break;
        case OPT_REGISTRY:
            opts.registry = optarg;
            break;
        case OPT_RATE:
            if (parse_double(optarg, &d))
                goto bad_number;
            opts.rate = d;
            break;
        case OPT_SPEEDUP:
            if (parse_double(optarg, &d))
                goto bad_number;
            opts.speedup = d;
            break;
        case OPT_LIMIT:
            if (parse_u64(optarg, &v))
                goto bad_number;
            opts.limit = v;
            break;
        case OPT_FLUSH_TIMEOUT:
            if (parse_u64(optarg, &v) || v > INT32_MAX)
                goto bad_number;
            opts.flush_timeout_ms = (int)v;
            break;
        case OPT_PROGRESS:
            opts.progress = 1;
            break;
        case OPT_NO_PROGRESS:
            opts.progress = 0;
            break;
        case 'q':
            opts.quiet = 1;
            break;
        case 'v':
            advrec_log_set_level(ADVREC_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            free(props);
            return 0;
        default:
            goto usage_error;
        }
        continue;
    bad_number:
        fprintf(stderr, "advrec-produce: bad number '%s' for --%s\n", optarg,
                longopts[longindex].name);
        goto usage_error;
    }
    if (optind >= argc) {
        fprintf(stderr, "advrec-produce: no input file\n");
        goto usage_error;
    }
    if (opts.registry && opts.ids_given) {
        fprintf(stderr, "advrec-produce: --registry gives the schema ids; "
                        "--click-schema-id and --purchase-schema-id cannot "
                        "be used with it\n");
        goto usage_error;
    }
    if (opts.schema_ids[TOPIC_CLICK] == opts.schema_ids[TOPIC_PURCHASE]) {
        fprintf(stderr, "advrec-produce: click and purchase schema ids must "
                        "differ\n");
        goto usage_error;
    }

    /* Every file must be readable before anything is produced. */
    pg.total_bytes = 0;
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "-") == 0) {
            pg.total_bytes = -1;
            continue;
        }
        if (stat(argv[i], &st) != 0 || access(argv[i], R_OK) != 0) {
            fprintf(stderr, "advrec-produce: %s: %s\n", argv[i],
                    strerror(errno));
            rc = EX_NOINPUT;
            goto out;
        }
        if (pg.total_bytes >= 0)
            pg.total_bytes += (int64_t)st.st_size;
    }

    /* The codec: our reader schemas, registered as the writers under the
     * ids we frame with. */
    codec = advrec_codec_new(opts.schema_dir, errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "advrec-produce: %s\n", errstr);
        rc = EX_CONFIG;
        goto out;
    }
    if (opts.registry &&
        (rc = registry_ids(codec, &opts, errstr, sizeof(errstr))) != EX_OK) {
        fprintf(stderr, "advrec-produce: %s\n", errstr);
        goto out;
    }
    for (int t = 0; t < TOPIC__COUNT; t++) {
        snprintf(path, sizeof(path), "%s/%s.avsc",
                 opts.schema_dir ? opts.schema_dir
                                 : advrec_codec_default_schema_dir(),
                 t == TOPIC_CLICK ? "click" : "purchase");
        if (advrec_codec_register(codec, opts.schema_ids[t], path, errstr,
                                  sizeof(errstr)) != ADVREC_OK) {
            fprintf(stderr, "advrec-produce: %s\n", errstr);
            rc = EX_CONFIG;
            goto out;
        }
    }
    buf = malloc(buf_size);
    if (!buf) {
        rc = EX_OSERR;
        goto out;
    }

    if (kafka_new(&kafka, &opts, props, n_props, &stats, errstr,
                  sizeof(errstr))) {
        fprintf(stderr, "advrec-produce: %s\n", errstr);
        rc = EX_CONFIG;
        goto out;
    }

    rk = advrec_kafka_rk(kafka);
    kafka_warm_up(kafka, &opts, 5000);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    pg.on = opts.progress == -1 ? (!opts.quiet && isatty(STDERR_FILENO))
                                : opts.progress;
    start_us = pg.start_us = now_us();

    for (int i = optind; i < argc && !stop_requested; i++) {
        advrec_event_t ev;
        advrec_err_t err;

        if (advrec_reader_new(&reader, argv[i], &opts.reader_conf, errstr,
                              sizeof(errstr)) != ADVREC_OK) {
            fprintf(stderr, "advrec-produce: %s\n", errstr);
            rc = EX_NOINPUT;
            goto drain;
        }
        if (!opts.quiet)
            log_info("%s: format %s", argv[i],
                     advrec_reader_format_name(advrec_reader_format(reader)));
        while (!stop_requested &&
               (opts.limit == 0 || stats.read < opts.limit)) {
            size_t len;
            int t;

            err = advrec_reader_next(reader, &ev, errstr, sizeof(errstr));
            if (err == ADVREC_ERR_EOF)
                break;
            if (err == ADVREC_ERR_PARSE) {
                stats.skipped++;
                note_reason(&stats, errstr, opts.quiet, &pg);
                continue;
            }
            if (err != ADVREC_OK) {
                fprintf(stderr, "\nadvrec-produce: %s\n", errstr);
                rc = EX_IOERR;
                goto drain;
            }
            stats.read++;
            t = ev.type == ADVREC_EVENT_PURCHASE ? TOPIC_PURCHASE : TOPIC_CLICK;
            err = advrec_codec_encode_event(codec, opts.schema_ids[t], &ev, buf,
                                            buf_size, &len, errstr,
                                            sizeof(errstr));
            if (err == ADVREC_ERR_ENCODE && len > buf_size) {
                unsigned char *nbuf = realloc(buf, len);
                if (!nbuf) {
                    rc = EX_OSERR;
                    goto drain;
                }
                buf = nbuf;
                buf_size = len;
                err = advrec_codec_encode_event(codec, opts.schema_ids[t], &ev,
                                                buf, buf_size, &len, errstr,
                                                sizeof(errstr));
            }
            if (err != ADVREC_OK) {
                char where[2048];
                stats.encode_failed++;
                stats.skipped++;
                snprintf(where, sizeof(where), "%.900s:%" PRIu64 ": %.1000s",
                         argv[i], advrec_reader_line(reader), errstr);
                note_reason(&stats, where, opts.quiet, &pg);
                continue;
            }
            if (opts.rate > 0 || opts.speedup > 0)
                pace(&pacer, &opts, rk, ev.ts_ms);
            if (produce_one(kafka, opts.topics[t], t, &ev, buf, len, errstr,
                            sizeof(errstr)) < 0) {
                fprintf(stderr, "\nadvrec-produce: %s\n", errstr);
                goto drain;
            }
            stats.produced++;
            rd_kafka_poll(rk, 0);
            progress_draw(&pg, &stats, reader, 0);
        }
        stats.filtered += advrec_reader_filtered(reader);
        if (pg.total_bytes > 0)
            pg.done_bytes += advrec_reader_bytes_read(reader);
        advrec_reader_destroy(reader);
        reader = NULL;
        if (opts.limit && stats.read >= opts.limit)
            break;
    }
    rc = 0;

drain:
    /* Await every delivery, bounded; what is still queued then counts as
     * undelivered. */
    if (reader) {
        stats.filtered += advrec_reader_filtered(reader);
        advrec_reader_destroy(reader);
        reader = NULL;
    }
    if (rd_kafka_flush(rk, opts.flush_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        undelivered = (uint64_t)rd_kafka_outq_len(rk);
    progress_draw(&pg, &stats, NULL, 1);
    if (pg.on)
        fputc('\n', stderr);
    summary(&stats, &opts, (double)(now_us() - start_us) / 1e6, undelivered);
    if (rc == 0 && (stats.failed || undelivered))
        rc = 1;
    if (rc == 0 && stop_requested)
        rc = 130;
    goto out;

usage_error:
    usage(stderr);
    rc = EX_USAGE;
out:
    advrec_reader_destroy(reader);
    advrec_kafka_destroy(kafka);
    advrec_codec_destroy(codec);
    free(buf);
    free(props);
    return rc;
}
