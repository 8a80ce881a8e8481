/*
 * config.c - the table of advrecd's configuration keys, and everything that
 * is derived from it: defaults, parsing, range checks, error messages with
 * file:line and a did-you-mean, the effective-config dump and the generated
 * reference (conf/advrecd.conf, docs/CONFIG.md).
 *
 * Owns: the key table (static, read-only) and, per advrec_conf_t, its
 * strings, the kafka.* pairs and the schema.<N> map.
 *
 * To add a key: one field in advrec_conf_t (config.h), one row in conf_rows[]
 * below, then regenerate the two committed files (the unit test says how).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"

#ifndef ADVREC_VERSION
#define ADVREC_VERSION "unknown"
#endif
#ifndef ADVREC_SOURCE_SCHEMA_DIR
#define ADVREC_SOURCE_SCHEMA_DIR "schemas"
#endif
#ifndef ADVREC_INSTALLED_SCHEMA_DIR
#define ADVREC_INSTALLED_SCHEMA_DIR "/usr/share/advrec/schemas"
#endif

#define SCHEMA_ID_MAX INT32_MAX

typedef enum conf_type_e {
    CONF_BOOL,
    CONF_INT,
    CONF_DOUBLE,
    CONF_STRING,
    CONF_ENUM,
    CONF_SIZE,
} conf_type_t;

typedef struct conf_word_s {
    const char *word;
    int value;
} conf_word_t;

/* Row flags. */
#define F_PATH  0x1 /* relative to the config file's directory in a file */
#define F_TOPIC 0x2 /* a Kafka topic name */

typedef struct conf_row_s {
    const char *name;
    conf_type_t type;
    size_t offset;
    int64_t imin, imax;       /* int, size; string: minimum length in imin */
    double dmin, dmax;        /* double */
    const conf_word_t *words; /* enum, NULL-terminated */
    const char *def; /* default, as text: parsed like any other value */
    const char *group;
    const char *doc;
    unsigned flags;
} conf_row_t;

/*
 * The offset of a field, which also fails to compile when the field's type is
 * not ctype: subtracting pointers of different types is a constraint error.
 */
#define FIELD(field, ctype)           \
    (offsetof(advrec_conf_t, field) + \
     0 * sizeof(&((advrec_conf_t *)0)->field - (ctype *)0))

#define ROW_BOOL(nm, field, def_, grp, doc_)                         \
    {                                                                \
        .name = nm, .type = CONF_BOOL, .offset = FIELD(field, bool), \
        .def = def_, .group = grp, .doc = doc_                       \
    }
#define ROW_INT(nm, field, lo, hi, def_, grp, doc_)                    \
    {                                                                  \
        .name = nm, .type = CONF_INT, .offset = FIELD(field, int64_t), \
        .imin = lo, .imax = hi, .def = def_, .group = grp, .doc = doc_ \
    }
#define ROW_SIZE(nm, field, lo, hi, def_, grp, doc_)                    \
    {                                                                   \
        .name = nm, .type = CONF_SIZE, .offset = FIELD(field, int64_t), \
        .imin = lo, .imax = hi, .def = def_, .group = grp, .doc = doc_  \
    }
#define ROW_DBL(nm, field, lo, hi, def_, grp, doc_)                      \
    {                                                                    \
        .name = nm, .type = CONF_DOUBLE, .offset = FIELD(field, double), \
        .dmin = lo, .dmax = hi, .def = def_, .group = grp, .doc = doc_   \
    }
#define ROW_STR(nm, field, minlen, flags_, def_, grp, doc_)              \
    {                                                                    \
        .name = nm, .type = CONF_STRING, .offset = FIELD(field, char *), \
        .imin = minlen, .flags = flags_, .def = def_, .group = grp,      \
        .doc = doc_                                                      \
    }
#define ROW_ENUM(nm, field, words_, def_, grp, doc_)                \
    {                                                               \
        .name = nm, .type = CONF_ENUM, .offset = FIELD(field, int), \
        .words = words_, .def = def_, .group = grp, .doc = doc_     \
    }

static const conf_word_t sync_words[] = {
    {"none", ADVREC_CONF_SYNC_NONE},
    {"commit", ADVREC_CONF_SYNC_COMMIT},
    {NULL, 0},
};

static const conf_word_t exclude_words[] = {
    {"purchased", ADVREC_CONF_EXCLUDE_PURCHASED},
    {"seen", ADVREC_CONF_EXCLUDE_SEEN},
    {"none", ADVREC_CONF_EXCLUDE_NONE},
    {NULL, 0},
};

static const conf_word_t log_words[] = {
    {"err", ADVREC_LOG_ERR},       {"warning", ADVREC_LOG_WARNING},
    {"notice", ADVREC_LOG_NOTICE}, {"info", ADVREC_LOG_INFO},
    {"debug", ADVREC_LOG_DEBUG},   {NULL, 0},
};

#define MS_DAY  INT64_C(86400000)
#define I32_MAX INT64_C(2147483647)

/* clang-format off */
static const conf_row_t conf_rows[] = {
    ROW_BOOL("broker.embedded", broker_embedded, "true", "broker",
             "Start librdkafka's mock cluster in-process and use it as the broker (data lives in memory only); false: use kafka.bootstrap.servers."),
    ROW_INT("broker.embedded.partitions", broker_embedded_partitions, 1, 1024, "16", "broker",
            "Partitions of each topic created on the embedded broker (it keeps only about 5 MiB per partition)."),

    ROW_STR("topic.clicks", topic_clicks, 1, F_TOPIC, "advrec.clicks", "topic",
            "Input topic of click events (Avro, Confluent framing, keyed by user id)."),
    ROW_STR("topic.purchases", topic_purchases, 1, F_TOPIC, "advrec.purchases", "topic",
            "Input topic of purchase events (Avro, Confluent framing, keyed by user id)."),
    ROW_STR("topic.recommendations", topic_recommendations, 1, F_TOPIC, "advrec.recommendations", "topic",
            "Output topic of top-N recommendations, keyed by user id (compact it: latest wins)."),
    ROW_STR("topic.anomalies", topic_anomalies, 1, F_TOPIC, "advrec.anomalies", "topic",
            "Output topic of anomaly flags (bots, shilling) with their reasons."),
    ROW_STR("topic.dlq", topic_dlq, 1, F_TOPIC, "advrec.dlq", "topic",
            "Dead-letter topic: input records that do not decode or validate, with headers saying why."),
    ROW_STR("group.id", group_id, 1, 0, "advrecd", "topic",
            "Kafka consumer group of the daemons sharing the input partitions (kafka.group.id, if given, wins)."),

    ROW_STR("schema.dir", schema_dir, 0, F_PATH, "", "schema",
            "Directory of the default .avsc files; empty: the source tree's schemas/ when run from a build directory, else the installed share/advrec/schemas."),
    ROW_INT("schema.click.id", schema_click_id, 1, I32_MAX, "1", "schema",
            "Confluent schema id written when we encode a click (schema.<N> must map it)."),
    ROW_INT("schema.purchase.id", schema_purchase_id, 1, I32_MAX, "2", "schema",
            "Confluent schema id written when we encode a purchase."),
    ROW_INT("schema.recommendation.id", schema_recommendation_id, 1, I32_MAX, "3", "schema",
            "Confluent schema id written in front of every recommendation we produce."),
    ROW_INT("schema.anomaly.id", schema_anomaly_id, 1, I32_MAX, "4", "schema",
            "Confluent schema id written in front of every anomaly flag we produce."),

    ROW_STR("state.dir", state_dir, 0, 0, "/var/lib/advrec", "state",
            "RocksDB directory holding the model, histories, detector state and input offsets; empty: state in memory only, lost at exit."),
    ROW_STR("state.checkpoint.dir", state_checkpoint_dir, 0, 0, "/var/lib/advrec-checkpoints", "state",
            "Where SIGUSR1 makes a consistent copy of the state (a new subdirectory named by UTC time); start a daemon from one with state.dir=<it>."),
    ROW_ENUM("state.sync", state_sync, sync_words, "commit", "state",
             "commit: fsync each round's WriteBatch (survives power loss); none: survives a crash of the process only."),

    ROW_INT("round.max.records", round_max_records, 1, 1000000, "1000", "round",
            "Most records polled and committed in one processing round."),
    ROW_INT("round.max.ms", round_max_ms, 1, 60000, "100", "round",
            "Longest a round waits for records before it commits what it has."),

    ROW_INT("model.k", model_k, 1, 1024, "64", "model",
            "Latent factors per user and item; changing it needs fresh state."),
    ROW_DBL("model.lr", model_lr, 1e-6, 10.0, "0.2", "model",
            "Adagrad learning rate."),
    ROW_DBL("model.reg", model_reg, 0.0, 10.0, "0.001", "model",
            "L2 regularisation of the factors touched by an update."),
    ROW_DBL("model.adv.lambda", model_adv_lambda, 0.0, 100.0, "1.0", "model",
            "Weight of the adversarial loss term (APR's lambda); 0: plain BPR."),
    ROW_DBL("model.adv.eps", model_adv_eps, 0.0, 100.0, "0.5", "model",
            "L2 norm of the adversarial perturbation of each embedding row (APR's epsilon)."),
    ROW_INT("model.adv.warmup", model_adv_warmup, 0, I32_MAX, "5", "model",
            "Updates a row needs before the adversarial term perturbs it (younger rows are not perturbed; a triple with no warm row trains as plain BPR)."),
    ROW_INT("model.adv.steps", model_adv_steps, 1, 100, "1", "model",
            "Gradient steps building the perturbation: 1 is FGSM, more is PGD (stronger, slower)."),
    ROW_INT("model.negatives", model_negatives, 1, 100, "1", "model",
            "Uniformly sampled negative items per positive event."),
    ROW_DBL("model.init.std", model_init_std, 0.0, 1.0, "0.01", "model",
            "Standard deviation of the normal distribution new factors are drawn from."),
    ROW_INT("model.seed", model_seed, 0, INT64_MAX, "42", "model",
            "Seed of every random choice (derived with the record's topic, partition and offset, or the id)."),
    ROW_BOOL("model.bias", model_bias, "true", "model",
             "Learn an item bias term next to the factors."),
    ROW_DBL("model.weight.click", model_weight_click, 0.0, 1000.0, "1.0", "model",
            "Training weight of a click."),
    ROW_DBL("model.weight.purchase", model_weight_purchase, 0.0, 1000.0, "3.0", "model",
            "Training weight of a purchase."),
    ROW_INT("model.max.items", model_max_items, 1, I32_MAX, "1000000", "model",
            "Most distinct items; events for new items beyond it are not trained on."),
    ROW_INT("model.max.users", model_max_users, 1, I32_MAX, "10000000", "model",
            "Most distinct users; events of new users beyond it are not trained on."),

    ROW_INT("recs.n", recs_n, 1, 1000, "10", "recs",
            "Items in each recommendation list."),
    ROW_INT("recs.debounce.ms", recs_debounce_ms, 0, MS_DAY, "1000", "recs",
            "A user's list is refreshed at most this often while their events keep coming."),
    ROW_INT("recs.max.staleness.ms", recs_max_staleness_ms, 0, MS_DAY, "10000", "recs",
            "Longest a user's list may lag their latest event; must be >= recs.debounce.ms."),
    ROW_ENUM("recs.exclude", recs_exclude, exclude_words, "purchased", "recs",
             "Items left out of a user's list: the user's purchased items (recs.exclude.purchased.max), those and every item seen (recs.exclude.seen.max), or none."),
    ROW_INT("recs.exclude.purchased.max", recs_exclude_purchased_max, 0, 65535, "256", "recs",
            "Distinct purchased items remembered per user, the most recent kept, stored with the user's row; under recs.exclude=purchased or seen none of them is recommended again. Independent of recs.history; 0 keeps none."),
    ROW_INT("recs.exclude.seen.max", recs_exclude_seen_max, 0, 65535, "256", "recs",
            "Distinct items seen (clicked or purchased) remembered per user, the most recent kept, stored with the user's row; kept only under recs.exclude=seen, where none of them is recommended. Independent of recs.history."),
    ROW_INT("recs.history", recs_history, 1, 10000, "50", "recs",
            "Recent items remembered per user, in a ring (negative sampling and the detectors; recs.exclude uses its own sets)."),
    ROW_INT("recs.cold.events", recs_cold_events, 0, 1000000, "3", "recs",
            "users with fewer events than this get the time-decayed popularity list instead of model scores"),
    ROW_DBL("recs.popularity.halflife.s", recs_popularity_halflife_s, 1.0, 1e9, "3600", "recs",
            "Half-life of the time-decayed popularity that cold users are recommended from."),

    ROW_BOOL("anomaly.enable", anomaly_enable, "true", "anomaly",
             "Run the bot and shilling detectors: flag to topic.anomalies and down-weight or quarantine flagged entities' events (docs/ANOMALY.md)."),
    ROW_INT("anomaly.min.events", anomaly_min_events, 1, 1000000, "20", "anomaly",
            "Events of a user before its gap regularity and diversity are judged."),
    ROW_DBL("anomaly.rate.window.s", anomaly_rate_window_s, 1.0, 1e7, "300", "anomaly",
            "Time constant (event time) of a user's exponentially decayed event count."),
    ROW_DBL("anomaly.rate.max", anomaly_rate_max, 1.0, 1e9, "60", "anomaly",
            "Decayed event count (about events per rate window) at which a user is high-rate."),
    ROW_DBL("anomaly.gap.logstd.max", anomaly_gap_logstd_max, 0.0, 100.0, "0.25", "anomaly",
            "Standard deviation of a user's log inter-event gaps below which the gaps are machine-regular."),
    ROW_INT("anomaly.nopurchase.clicks", anomaly_nopurchase_clicks, 1, I32_MAX, "20", "anomaly",
            "Clicks without any purchase at which a user counts as never buying."),
    ROW_DBL("anomaly.diversity.min", anomaly_diversity_min, 0.0, 1.0, "0.2", "anomaly",
            "Distinct/total items over a user's last 32 events below which diversity is low."),
    ROW_DBL("anomaly.young.s", anomaly_young_s, 0.0, 1e9, "1800", "anomaly",
            "An account first seen less than this long ago (event time) is young."),
    ROW_DBL("anomaly.item.window.s", anomaly_item_window_s, 1.0, 1e9, "1800", "anomaly",
            "Time constant (event time) of an item's decayed counts of recent events."),
    ROW_DBL("anomaly.item.min.events", anomaly_item_min_events, 1.0, 1e9, "12", "anomaly",
            "Decayed events from young or flagged accounts an item needs before it can be flagged."),
    ROW_DBL("anomaly.item.share", anomaly_item_share, 0.0, 1.0, "0.5", "anomaly",
            "Share of an item's recent events from young or flagged accounts at which it surges."),
    ROW_DBL("anomaly.item.surge.factor", anomaly_item_surge_factor, 1.0, 1000.0, "3", "anomaly",
            "... and that share must be at least this many times the share over all items (the baseline)."),
    ROW_DBL("anomaly.flag.score", anomaly_flag_score, 0.0, 1.0, "0.6", "anomaly",
            "User score (noisy-OR of its reasons' strengths) at which it is flagged and down-weighted."),
    ROW_DBL("anomaly.quarantine.score", anomaly_quarantine_score, 0.0, 1.0, "0.8", "anomaly",
            "User score at which it is quarantined: its events are counted but not trained on."),
    ROW_DBL("anomaly.clear.score", anomaly_clear_score, 0.0, 1.0, "0.3", "anomaly",
            "User score below which a flag is cleared (hysteresis)."),
    ROW_DBL("anomaly.weight.flagged", anomaly_weight_flagged, 0.0, 1.0, "0.1", "anomaly",
            "Training weight factor of a flagged user's events (and of young accounts' events on a surging item)."),

    ROW_ENUM("log.level", log_level, log_words, "info", "log",
             "Least severe level logged (syslog levels; journald keeps each line's level)."),
    ROW_INT("stats.interval.ms", stats_interval_ms, 0, MS_DAY, "10000", "log",
            "Interval of the statistics log line (rates, lag, model size); 0: off."),
};
/* clang-format on */

#define CONF_ROWS_CNT (sizeof(conf_rows) / sizeof(conf_rows[0]))

typedef struct conf_group_s {
    const char *name;
    const char *title;
} conf_group_t;

/* Display order and titles of the groups the rows name. */
static const conf_group_t conf_groups[] = {
    {"broker", "where the Kafka cluster is"},
    {"topic", "topics and the consumer group"},
    {"schema", "Avro schemas and the ids we write"},
    {"state", "the RocksDB state store"},
    {"round", "one processing round"},
    {"model", "the online APR (adversarial BPR-MF) model"},
    {"recs", "recommendation lists"},
    {"anomaly", "bot and shilling detectors (docs/ANOMALY.md)"},
    {"log", "logging and statistics"},
};

#define CONF_GROUPS_CNT (sizeof(conf_groups) / sizeof(conf_groups[0]))

/* The default schema.<N> map: files inside schema.dir. */
static const struct {
    int32_t id;
    const char *file;
} default_schemas[] = {
    {1, "click.avsc"},
    {2, "purchase.avsc"},
    {3, "recommendation.avsc"},
    {4, "anomaly.avsc"},
};

const char *advrec_version(void)
{
    return ADVREC_VERSION;
}

const char *advrec_conf_key(size_t i)
{
    return i < CONF_ROWS_CNT ? conf_rows[i].name : NULL;
}

/*
 * Small helpers
 */

static void *field_ptr(advrec_conf_t *conf, const conf_row_t *row)
{
    return (char *)conf + row->offset;
}

static const void *field_cptr(const advrec_conf_t *conf, const conf_row_t *row)
{
    return (const char *)conf + row->offset;
}

static const conf_row_t *row_find(const char *name)
{
    for (size_t i = 0; i < CONF_ROWS_CNT; i++)
        if (strcmp(conf_rows[i].name, name) == 0)
            return &conf_rows[i];
    return NULL;
}

/* dir + "/" + file, or a copy of file when it is absolute or dir is NULL.
 * Returns a new string (caller frees) or NULL when out of memory. */
static char *path_join(const char *dir, const char *file)
{
    char *out;

    if (file[0] == '/' || !dir || !*dir)
        return strdup(file);
    if (asprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                 file) < 0)
        return NULL;
    return out;
}

/* The directory part of path ("conf/x.conf" -> "conf", "/x" -> "/"), or NULL
 * when path has none. Caller frees. */
static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return NULL;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Edit distance, for "did you mean"; SIZE_MAX when a string is too long to
 * bother. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev[128], cur[128];

    if (la >= 128 || lb >= 128)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? del : ins;
            if (sub < cur[j])
                cur[j] = sub;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
    }
    return prev[lb];
}

/* The table key closest to name, or NULL when none is close enough to be a
 * plausible typo. */
static const char *suggest_key(const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, limit = strlen(name) / 3;

    if (limit < 2)
        limit = 2;
    for (size_t i = 0; i < CONF_ROWS_CNT; i++) {
        size_t d = edit_distance(name, conf_rows[i].name);
        if (d < best_d) {
            best_d = d;
            best = conf_rows[i].name;
        }
    }
    return best_d <= limit ? best : NULL;
}

/*
 * Value parsers: each returns ADVREC_ERR_CONFIG with a short "why" (no key,
 * no context: the callers add those).
 */

static advrec_err_t parse_bool(const char *s, bool *out, char *why,
                               size_t why_size)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return ADVREC_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return ADVREC_OK;
        }
    }
    return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                         "expected true or false");
}

static advrec_err_t parse_int(const char *s, int64_t *out, char *why,
                              size_t why_size)
{
    char *end;
    long long v;

    if (!*s || isspace((unsigned char)*s))
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected an integer");
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected an integer");
    if (errno == ERANGE)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "integer out of the 64-bit range");
    *out = (int64_t)v;
    return ADVREC_OK;
}

advrec_err_t advrec_conf_parse_size(const char *text, int64_t *out,
                                    char *errstr, size_t errstr_size)
{
    const char *p = text;
    uint64_t v = 0, mult = 1;

    if (!isdigit((unsigned char)*p))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "expected a size such as 512, 64k or 16M");
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "size too large");
        v = v * 10 + (uint64_t)(*p - '0');
    }
    switch (tolower((unsigned char)*p)) {
    case 'k':
        mult = UINT64_C(1) << 10;
        p++;
        break;
    case 'm':
        mult = UINT64_C(1) << 20;
        p++;
        break;
    case 'g':
        mult = UINT64_C(1) << 30;
        p++;
        break;
    case 't':
        mult = UINT64_C(1) << 40;
        p++;
        break;
    }
    if (mult > 1 && (*p == 'b' || *p == 'B'))
        p++;
    else if (mult == 1 && (*p == 'b' || *p == 'B') && !p[1])
        p++;
    if (*p)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "expected a size such as 512, 64k or 16M");
    if (v > (uint64_t)INT64_MAX / mult)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "size too large");
    *out = (int64_t)(v * mult);
    return ADVREC_OK;
}

static advrec_err_t parse_double(const char *s, double *out, char *why,
                                 size_t why_size)
{
    char *end;
    double v;

    if (!*s || isspace((unsigned char)*s))
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected a number");
    errno = 0;
    v = strtod(s, &end);
    if (*end)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected a number");
    if (!isfinite(v) || errno == ERANGE)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected a finite number");
    *out = v;
    return ADVREC_OK;
}

/* A Kafka topic name: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
static advrec_err_t check_topic(const char *s, char *why, size_t why_size)
{
    size_t n = strlen(s);

    if (n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "not a valid Kafka topic name");
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "not a valid Kafka topic name (allowed: "
                                 "letters, digits, '.', '_', '-')");
    return ADVREC_OK;
}

static void words_join(const conf_word_t *words, const char *sep, char *buf,
                       size_t size)
{
    size_t n = 0;

    buf[0] = '\0';
    for (const conf_word_t *w = words; w->word && n < size; w++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", w == words ? "" : sep,
                              w->word);
}

/*
 * The schema.<N> map
 */

static advrec_conf_schema_t *schema_find(const advrec_conf_t *conf, int32_t id)
{
    for (size_t i = 0; i < conf->schemas_cnt; i++)
        if (conf->schemas[i].id == id)
            return &conf->schemas[i];
    return NULL;
}

/* Maps id to path (taken over: freed on error too) and in_schema_dir (the
 * same). Replaces an existing entry in place, keeping its position. */
static advrec_err_t schema_put(advrec_conf_t *conf, int32_t id, char *path,
                               char *in_schema_dir)
{
    advrec_conf_schema_t *s = schema_find(conf, id);

    if (!s) {
        if (conf->schemas_cnt == conf->schemas_size) {
            size_t size = conf->schemas_size ? conf->schemas_size * 2 : 8;
            void *p = realloc(conf->schemas, size * sizeof(*conf->schemas));
            if (!p) {
                free(path);
                free(in_schema_dir);
                return ADVREC_ERR_NOMEM;
            }
            conf->schemas = p;
            conf->schemas_size = size;
        }
        s = &conf->schemas[conf->schemas_cnt++];
        s->id = id;
    } else {
        free(s->path);
        free(s->in_schema_dir);
    }
    s->path = path;
    s->in_schema_dir = in_schema_dir;
    return ADVREC_OK;
}

/* Re-resolves the built-in entries after schema.dir changed. */
static advrec_err_t schemas_follow_dir(advrec_conf_t *conf)
{
    const char *dir = advrec_conf_schema_dir(conf);

    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        advrec_conf_schema_t *s = &conf->schemas[i];
        char *path;

        if (!s->in_schema_dir)
            continue;
        if (!(path = path_join(dir, s->in_schema_dir)))
            return ADVREC_ERR_NOMEM;
        free(s->path);
        s->path = path;
    }
    return ADVREC_OK;
}

const char *advrec_conf_schema_dir(const advrec_conf_t *conf)
{
    struct stat st;

    if (conf->schema_dir && *conf->schema_dir)
        return conf->schema_dir;
    if (stat(ADVREC_SOURCE_SCHEMA_DIR, &st) == 0 && S_ISDIR(st.st_mode))
        return ADVREC_SOURCE_SCHEMA_DIR;
    return ADVREC_INSTALLED_SCHEMA_DIR;
}

const char *advrec_conf_schema_path(const advrec_conf_t *conf, int32_t id)
{
    const advrec_conf_schema_t *s = schema_find(conf, id);

    return s ? s->path : NULL;
}

/*
 * kafka.* pairs
 */

static advrec_err_t kafka_add(advrec_conf_t *conf, const char *name,
                              const char *value, const char *origin)
{
    advrec_conf_kv_t *kv;

    if (conf->kafka_cnt == conf->kafka_size) {
        size_t size = conf->kafka_size ? conf->kafka_size * 2 : 8;
        void *p = realloc(conf->kafka, size * sizeof(*conf->kafka));
        if (!p)
            return ADVREC_ERR_NOMEM;
        conf->kafka = p;
        conf->kafka_size = size;
    }
    kv = &conf->kafka[conf->kafka_cnt];
    kv->name = strdup(name);
    kv->value = strdup(value);
    kv->origin = strdup(origin);
    if (!kv->name || !kv->value || !kv->origin) {
        free(kv->name);
        free(kv->value);
        free(kv->origin);
        return ADVREC_ERR_NOMEM;
    }
    conf->kafka_cnt++;
    return ADVREC_OK;
}

const char *advrec_conf_kafka_get(const advrec_conf_t *conf, const char *name)
{
    /* The last occurrence is the one librdkafka ends up with. */
    for (size_t i = conf->kafka_cnt; i-- > 0;)
        if (strcmp(conf->kafka[i].name, name) == 0)
            return conf->kafka[i].value;
    return NULL;
}

advrec_err_t advrec_conf_kafka_apply(const advrec_conf_t *conf,
                                     rd_kafka_conf_t *rk_conf,
                                     bool for_consumer, char *errstr,
                                     size_t errstr_size)
{
    char rkerr[512];

    if (for_consumer && !advrec_conf_kafka_get(conf, "group.id") &&
        rd_kafka_conf_set(rk_conf, "group.id", conf->group_id, rkerr,
                          sizeof(rkerr)) != RD_KAFKA_CONF_OK)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "group.id: %s", rkerr);
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        const advrec_conf_kv_t *kv = &conf->kafka[i];

        if (rd_kafka_conf_set(rk_conf, kv->name, kv->value, rkerr,
                              sizeof(rkerr)) != RD_KAFKA_CONF_OK)
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "%s: kafka.%s: %s", kv->origin, kv->name,
                                 rkerr);
    }
    return ADVREC_OK;
}

/*
 * Setting one key
 */

/* Parses value for row and stores it. base_dir: directory relative F_PATH
 * values are resolved against (NULL: keep as given). On error conf is
 * unchanged and why says what is wrong with the value. */
static advrec_err_t row_set(advrec_conf_t *conf, const conf_row_t *row,
                            const char *value, const char *base_dir, char *why,
                            size_t why_size)
{
    advrec_err_t err;
    int64_t i64 = 0;
    double d = 0;
    bool b = false;
    char *s, words[256];

    switch (row->type) {
    case CONF_BOOL:
        if ((err = parse_bool(value, &b, why, why_size)))
            return err;
        *(bool *)field_ptr(conf, row) = b;
        return ADVREC_OK;
    case CONF_INT:
    case CONF_SIZE:
        err = row->type == CONF_INT
                  ? parse_int(value, &i64, why, why_size)
                  : advrec_conf_parse_size(value, &i64, why, why_size);
        if (err)
            return err;
        if (i64 < row->imin || i64 > row->imax)
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "out of range [%" PRId64 ", %" PRId64 "]",
                                 row->imin, row->imax);
        *(int64_t *)field_ptr(conf, row) = i64;
        return ADVREC_OK;
    case CONF_DOUBLE:
        if ((err = parse_double(value, &d, why, why_size)))
            return err;
        if (d < row->dmin || d > row->dmax)
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "out of range [%g, %g]", row->dmin, row->dmax);
        *(double *)field_ptr(conf, row) = d;
        return ADVREC_OK;
    case CONF_ENUM:
        for (const conf_word_t *w = row->words; w->word; w++) {
            if (strcasecmp(value, w->word) == 0) {
                *(int *)field_ptr(conf, row) = w->value;
                return ADVREC_OK;
            }
        }
        words_join(row->words, ", ", words, sizeof(words));
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected one of %s", words);
    case CONF_STRING:
        if ((int64_t)strlen(value) < row->imin)
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "must not be empty");
        if ((row->flags & F_TOPIC) && (err = check_topic(value, why, why_size)))
            return err;
        s = (row->flags & F_PATH) && *value ? path_join(base_dir, value)
                                            : strdup(value);
        if (!s)
            return advrec_seterr(ADVREC_ERR_NOMEM, why, why_size,
                                 "out of memory");
        free(*(char **)field_ptr(conf, row));
        *(char **)field_ptr(conf, row) = s;
        if (row->offset == offsetof(advrec_conf_t, schema_dir) &&
            schemas_follow_dir(conf))
            return advrec_seterr(ADVREC_ERR_NOMEM, why, why_size,
                                 "out of memory");
        return ADVREC_OK;
    }
    return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size, "bad table row");
}

/* Where a setting came from, for messages. */
typedef struct conf_origin_s {
    const char *file; /* NULL: -X */
    unsigned line;
    const char *base_dir; /* relative paths are resolved against it */
} conf_origin_t;

/* Formats the context of an error: "file:line: " or "-X key=value: ". */
static advrec_err_t origin_err(advrec_err_t err, const conf_origin_t *origin,
                               const char *key, const char *value,
                               const char *why, bool show_key, char *errstr,
                               size_t errstr_size)
{
    if (origin->file && show_key)
        return advrec_seterr(err, errstr, errstr_size,
                             "%s:%u: %s: %s, got \"%.80s%s\"", origin->file,
                             origin->line, key, why, value,
                             strlen(value) > 80 ? "..." : "");
    if (origin->file)
        return advrec_seterr(err, errstr, errstr_size, "%s:%u: %s",
                             origin->file, origin->line, why);
    return advrec_seterr(err, errstr, errstr_size, "-X %s=%s: %s", key, value,
                         why);
}

/* Parses "schema.<digits>" into id; false when key is not of that form. */
static bool schema_key(const char *key, int64_t *id, bool *in_range)
{
    const char *p = key + strlen("schema.");
    char *end;
    long long v;

    if (strncmp(key, "schema.", 7) != 0 || !isdigit((unsigned char)*p))
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    v = strtoll(p, &end, 10);
    *in_range = errno != ERANGE && v >= 1 && v <= SCHEMA_ID_MAX;
    *id = v;
    return true;
}

static advrec_err_t conf_set_origin(advrec_conf_t *conf, const char *key,
                                    const char *value,
                                    const conf_origin_t *origin, char *errstr,
                                    size_t errstr_size)
{
    const conf_row_t *row;
    char why[512];
    advrec_err_t err;
    int64_t id;
    bool in_range;

    if ((row = row_find(key))) {
        err = row_set(conf, row, value, origin->base_dir, why, sizeof(why));
        if (err)
            return origin_err(err, origin, key, value, why, true, errstr,
                              errstr_size);
        return ADVREC_OK;
    }

    if (strncmp(key, "kafka.", 6) == 0) {
        char where[512];

        if (!key[6])
            return origin_err(ADVREC_ERR_CONFIG, origin, key, value,
                              "kafka. needs a librdkafka property name "
                              "after it",
                              false, errstr, errstr_size);
        if (origin->file)
            snprintf(where, sizeof(where), "%s:%u", origin->file, origin->line);
        else
            snprintf(where, sizeof(where), "-X");
        if (kafka_add(conf, key + 6, value, where))
            return origin_err(ADVREC_ERR_NOMEM, origin, key, value,
                              "out of memory", false, errstr, errstr_size);
        return ADVREC_OK;
    }

    if (schema_key(key, &id, &in_range)) {
        char *path;

        if (!in_range)
            return origin_err(ADVREC_ERR_CONFIG, origin, key, value,
                              "a schema id must be in [1, 2147483647]", true,
                              errstr, errstr_size);
        if (!*value)
            return origin_err(ADVREC_ERR_CONFIG, origin, key, value,
                              "expected the path of an .avsc file", true,
                              errstr, errstr_size);
        if (!(path = path_join(origin->base_dir, value)) ||
            schema_put(conf, (int32_t)id, path, NULL))
            return origin_err(ADVREC_ERR_NOMEM, origin, key, value,
                              "out of memory", false, errstr, errstr_size);
        return ADVREC_OK;
    }

    {
        const char *guess = suggest_key(key);

        if (guess)
            snprintf(why, sizeof(why),
                     "unknown key \"%.200s\" (did you mean \"%s\"?)", key,
                     guess);
        else
            snprintf(why, sizeof(why), "unknown key \"%.200s\"", key);
        return origin_err(ADVREC_ERR_CONFIG, origin, key, value, why, false,
                          errstr, errstr_size);
    }
}

advrec_err_t advrec_conf_set(advrec_conf_t *conf, const char *key,
                             const char *value, char *errstr,
                             size_t errstr_size)
{
    conf_origin_t origin = {NULL, 0, NULL};

    return conf_set_origin(conf, key, value, &origin, errstr, errstr_size);
}

advrec_err_t advrec_conf_set_arg(advrec_conf_t *conf, const char *arg,
                                 char *errstr, size_t errstr_size)
{
    const char *eq = strchr(arg, '=');
    char *key;
    advrec_err_t err;

    if (!eq || eq == arg)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "-X %s: expected key=value", arg);
    if (!(key = strndup(arg, (size_t)(eq - arg))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    err = advrec_conf_set(conf, key, eq + 1, errstr, errstr_size);
    free(key);
    return err;
}

/*
 * Files
 */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Removes the quotes around a value in place. NULL with why filled when the
 * quoting is broken. */
static char *unquote(char *v, char *why, size_t why_size)
{
    char q = v[0], *r, *w;

    if (q != '"' && q != '\'')
        return v;
    for (r = v + 1, w = v; *r && *r != q; r++) {
        if (q == '"' && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
            r++;
        *w++ = *r;
    }
    if (*r != q) {
        snprintf(why, why_size, "unterminated %s quote",
                 q == '"' ? "double" : "single");
        return NULL;
    }
    *w = '\0';
    for (r++; *r; r++) {
        if (!isspace((unsigned char)*r)) {
            snprintf(why, why_size, "text after the closing quote");
            return NULL;
        }
    }
    return v;
}

advrec_err_t advrec_conf_load_file(advrec_conf_t *conf, const char *path,
                                   char *errstr, size_t errstr_size)
{
    conf_origin_t origin = {path, 0, NULL};
    advrec_err_t err = ADVREC_OK;
    char *line = NULL, *base_dir = NULL, why[256];
    size_t cap = 0;
    ssize_t len;
    FILE *fp;

    if (!(fp = fopen(path, "r")))
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size, "%s: %s", path,
                             strerror(errno));
    base_dir = path_dir(path);
    origin.base_dir = base_dir;

    while ((len = getline(&line, &cap, fp)) != -1) {
        char *s = line, *eq, *key, *value;

        origin.line++;
        if (strlen(line) != (size_t)len) {
            err = advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                "%s:%u: line contains a NUL byte", path,
                                origin.line);
            break;
        }
        if (origin.line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3; /* UTF-8 byte order mark */
        s = trim(s);
        if (!*s || *s == '#')
            continue;
        if (!(eq = strchr(s, '='))) {
            err = advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                "%s:%u: expected \"key = value\", got "
                                "\"%.80s\"",
                                path, origin.line, s);
            break;
        }
        *eq = '\0';
        key = trim(s);
        value = trim(eq + 1);
        if (!*key || strcspn(key, " \t") != strlen(key)) {
            err = advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                "%s:%u: expected \"key = value\", got a "
                                "bad key \"%.80s\"",
                                path, origin.line, key);
            break;
        }
        if (!(value = unquote(value, why, sizeof(why)))) {
            err = advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                "%s:%u: %s: %s", path, origin.line, key, why);
            break;
        }
        if ((err = conf_set_origin(conf, key, value, &origin, errstr,
                                   errstr_size)))
            break;
    }
    if (!err && ferror(fp))
        err = advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size, "%s: %s", path,
                            strerror(errno));
    free(line);
    free(base_dir);
    fclose(fp);
    return err;
}

/*
 * Life cycle
 */

advrec_conf_t *advrec_conf_new(char *errstr, size_t errstr_size)
{
    conf_origin_t origin = {"built-in default", 0, NULL};
    advrec_conf_t *conf;

    if (!(conf = calloc(1, sizeof(*conf)))) {
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* Defaults go through the same parser as any value, so a default that
     * does not parse or is out of its own range fails here (and in the unit
     * test), never silently. */
    for (size_t i = 0; i < CONF_ROWS_CNT; i++)
        if (conf_set_origin(conf, conf_rows[i].name, conf_rows[i].def, &origin,
                            errstr, errstr_size))
            goto fail;
    for (size_t i = 0; i < sizeof(default_schemas) / sizeof(default_schemas[0]);
         i++) {
        char *file = strdup(default_schemas[i].file);
        char *path =
            path_join(advrec_conf_schema_dir(conf), default_schemas[i].file);

        if (!file || !path) {
            free(file);
            free(path);
            advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                          "out of memory");
            goto fail;
        }
        if (schema_put(conf, default_schemas[i].id, path, file)) {
            advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                          "out of memory");
            goto fail;
        }
    }
    return conf;

fail:
    advrec_conf_destroy(conf);
    return NULL;
}

void advrec_conf_destroy(advrec_conf_t *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < CONF_ROWS_CNT; i++)
        if (conf_rows[i].type == CONF_STRING)
            free(*(char **)field_ptr(conf, &conf_rows[i]));
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        free(conf->kafka[i].name);
        free(conf->kafka[i].value);
        free(conf->kafka[i].origin);
    }
    free(conf->kafka);
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        free(conf->schemas[i].path);
        free(conf->schemas[i].in_schema_dir);
    }
    free(conf->schemas);
    free(conf);
}

/*
 * Checks across keys
 */

advrec_err_t advrec_conf_check(const advrec_conf_t *conf, char *errstr,
                               size_t errstr_size)
{
    const char *bootstrap = advrec_conf_kafka_get(conf, "bootstrap.servers");
    const struct {
        const char *key;
        int64_t id;
    } writers[] = {
        {"schema.click.id", conf->schema_click_id},
        {"schema.purchase.id", conf->schema_purchase_id},
        {"schema.recommendation.id", conf->schema_recommendation_id},
        {"schema.anomaly.id", conf->schema_anomaly_id},
    };
    const struct {
        const char *key;
        const char *topic;
    } topics[] = {
        {"topic.clicks", conf->topic_clicks},
        {"topic.purchases", conf->topic_purchases},
        {"topic.recommendations", conf->topic_recommendations},
        {"topic.anomalies", conf->topic_anomalies},
        {"topic.dlq", conf->topic_dlq},
    };
    rd_kafka_conf_t *rk_conf;
    advrec_err_t err;

    if (!conf->broker_embedded && (!bootstrap || !*bootstrap))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "broker.embedded = false needs "
                             "kafka.bootstrap.servers");
    if (conf->broker_embedded && bootstrap)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "kafka.bootstrap.servers is set but "
                             "broker.embedded = true would ignore it; set "
                             "broker.embedded = false to use it");
    if (conf->recs_max_staleness_ms < conf->recs_debounce_ms)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "recs.max.staleness.ms (%" PRId64
                             ") must be >= recs.debounce.ms (%" PRId64 ")",
                             conf->recs_max_staleness_ms,
                             conf->recs_debounce_ms);
    if (!(conf->anomaly_clear_score <= conf->anomaly_flag_score &&
          conf->anomaly_flag_score <= conf->anomaly_quarantine_score))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "anomaly.clear.score (%g) <= anomaly.flag.score "
                             "(%g) <= anomaly.quarantine.score (%g) must hold",
                             conf->anomaly_clear_score,
                             conf->anomaly_flag_score,
                             conf->anomaly_quarantine_score);
    for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++)
        if (!advrec_conf_schema_path(conf, (int32_t)writers[i].id))
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "%s = %" PRId64 " but no schema.%" PRId64
                                 " maps that id to an .avsc file",
                                 writers[i].key, writers[i].id, writers[i].id);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        for (size_t j = i + 1; j < sizeof(topics) / sizeof(topics[0]); j++)
            if (strcmp(topics[i].topic, topics[j].topic) == 0)
                return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                     "%s and %s are both \"%s\"; every "
                                     "topic must differ",
                                     topics[i].key, topics[j].key,
                                     topics[i].topic);

    /* librdkafka is the judge of kafka.*: try them on a scratch conf. */
    if (!(rk_conf = rd_kafka_conf_new()))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    err = advrec_conf_kafka_apply(conf, rk_conf, true, errstr, errstr_size);
    rd_kafka_conf_destroy(rk_conf);
    return err;
}

/*
 * Output: the effective configuration and the generated reference
 */

/* A value as it is written in a conf file (quoted when needed). */
static void write_value(FILE *fp, const char *v)
{
    size_t n = strlen(v);

    if (n && !isspace((unsigned char)v[0]) &&
        !isspace((unsigned char)v[n - 1]) && v[0] != '"' && v[0] != '\'') {
        fputs(v, fp);
        return;
    }
    fputc('"', fp);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', fp);
        fputc(*v, fp);
    }
    fputc('"', fp);
}

/* Shortest "%g" text that reads back as the same double. */
static void format_double(double d, char *buf, size_t size)
{
    /* Plain decimals where they are short enough to read, exponents else. */
    if (d == 0 || (fabs(d) >= 1e-4 && fabs(d) < 1e15)) {
        for (int dec = 0; dec <= 20; dec++) {
            snprintf(buf, size, "%.*f", dec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    }
    /* "1" reads as an integer to a human; "1.0" says it is a number. */
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

static void format_row(const advrec_conf_t *conf, const conf_row_t *row,
                       char *buf, size_t size)
{
    const void *p = field_cptr(conf, row);

    switch (row->type) {
    case CONF_BOOL:
        snprintf(buf, size, "%s", *(const bool *)p ? "true" : "false");
        return;
    case CONF_INT:
    case CONF_SIZE:
        snprintf(buf, size, "%" PRId64, *(const int64_t *)p);
        return;
    case CONF_DOUBLE:
        format_double(*(const double *)p, buf, size);
        return;
    case CONF_STRING:
        snprintf(buf, size, "%s", *(char *const *)p);
        return;
    case CONF_ENUM:
        for (const conf_word_t *w = row->words; w->word; w++) {
            if (w->value == *(const int *)p) {
                snprintf(buf, size, "%s", w->word);
                return;
            }
        }
        snprintf(buf, size, "%d", *(const int *)p);
        return;
    }
}

void advrec_conf_write(const advrec_conf_t *conf, FILE *fp)
{
    const char *group = NULL;
    char buf[1024];

    fprintf(fp, "# advrecd %s effective configuration\n", advrec_version());
    for (size_t i = 0; i < CONF_ROWS_CNT; i++) {
        const conf_row_t *row = &conf_rows[i];

        if (!group || strcmp(group, row->group) != 0) {
            group = row->group;
            fprintf(fp, "\n# %s\n", group);
        }
        format_row(conf, row, buf, sizeof(buf));
        /* A note on its own line: only whole lines are comments. */
        if (row->offset == offsetof(advrec_conf_t, schema_dir) && !buf[0])
            fprintf(fp, "# (empty: built-in %s)\n",
                    advrec_conf_schema_dir(conf));
        fprintf(fp, "%s = ", row->name);
        write_value(fp, buf);
        fputc('\n', fp);
    }
    fprintf(fp, "\n# schema.<N>: Confluent schema id -> .avsc\n");
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        fprintf(fp, "schema.%" PRId32 " = ", conf->schemas[i].id);
        write_value(fp, conf->schemas[i].path);
        fputc('\n', fp);
    }
    fprintf(fp, "\n# kafka.*: passed to librdkafka in this order\n");
    if (!advrec_conf_kafka_get(conf, "group.id")) {
        fprintf(fp, "# (group.id is set from group.id = ");
        write_value(fp, conf->group_id);
        fprintf(fp, ")\n");
    }
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        fprintf(fp, "kafka.%s = ", conf->kafka[i].name);
        write_value(fp, conf->kafka[i].value);
        fputc('\n', fp);
    }
}

/* What values a row accepts, in words: "1 .. 1024", "one of a, b". */
static void describe_range(const conf_row_t *row, char *buf, size_t size)
{
    char words[256];

    switch (row->type) {
    case CONF_BOOL:
        snprintf(buf, size, "true or false");
        return;
    case CONF_INT:
    case CONF_SIZE:
        if (row->imax == INT64_MAX)
            snprintf(buf, size, ">= %" PRId64, row->imin);
        else
            snprintf(buf, size, "%" PRId64 " .. %" PRId64, row->imin,
                     row->imax);
        if (row->type == CONF_SIZE)
            strncat(buf, " (suffixes k, M, G)", size - strlen(buf) - 1);
        return;
    case CONF_DOUBLE:
        snprintf(buf, size, "%g .. %g", row->dmin, row->dmax);
        return;
    case CONF_STRING:
        snprintf(buf, size, "%s",
                 row->flags & F_TOPIC ? "a Kafka topic name"
                 : row->flags & F_PATH
                     ? "a path (relative: to the config file's directory)"
                 : row->imin > 0 ? "non-empty text"
                                 : "text");
        return;
    case CONF_ENUM:
        words_join(row->words, ", ", words, sizeof(words));
        snprintf(buf, size, "one of %s", words);
        return;
    }
}

static const char *type_name(conf_type_t type)
{
    static const char *const names[] = {
        [CONF_BOOL] = "bool",     [CONF_INT] = "int",
        [CONF_DOUBLE] = "double", [CONF_STRING] = "string",
        [CONF_ENUM] = "enum",     [CONF_SIZE] = "size",
    };
    return names[type];
}

/* Writes text as "# " comment lines wrapped at 78 columns. */
static void write_comment(FILE *fp, const char *text)
{
    const size_t width = 76;

    while (*text) {
        size_t n = strlen(text), cut = n;

        if (n > width) {
            cut = width;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = width;
        }
        fprintf(fp, "# %.*s\n", (int)cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

static const char *const ref_header_conf =
    "# advrecd.conf - the configuration of advrecd, the advrec daemon.\n"
    "#\n"
    "# Generated from the key table in lib/config.c; do not edit by hand, run\n"
    "#   advrecd --dump-config=conf > conf/advrecd.conf\n"
    "# Every key is listed, commented out, with its default: uncomment a line\n"
    "# to change it. Syntax: one `key = value` per line; `#` starts a comment\n"
    "# only as the first character of a line (values may contain it); values\n"
    "# may be \"double\" (with \\\" and \\\\) or 'single' quoted. Unknown "
    "keys\n"
    "# are an error. Options `-X key=value` override this file, in order.\n"
    "# The reference with every key is docs/CONFIG.md.\n";

static const char *const doc_kafka =
    "Any key kafka.<property> is handed to librdkafka as <property>, "
    "verbatim and in the order given (a later one wins); librdkafka checks "
    "it (advrecd --check-config shows its verdict). See librdkafka's "
    "CONFIGURATION.md.";

static const char *const doc_schema_map =
    "schema.<N> = path maps Confluent schema id N (1 .. 2147483647) to the "
    ".avsc file decoding records written with it; a relative path is relative "
    "to the config file's directory. Built in: schema.1 = click.avsc, "
    "schema.2 = purchase.avsc, schema.3 = recommendation.avsc, "
    "schema.4 = anomaly.avsc, inside schema.dir.";

static void write_reference_conf(FILE *fp)
{
    char range[256];

    fputs(ref_header_conf, fp);
    for (size_t g = 0; g < CONF_GROUPS_CNT; g++) {
        fprintf(fp, "\n\n# --- %s: %s ---\n", conf_groups[g].name,
                conf_groups[g].title);
        for (size_t i = 0; i < CONF_ROWS_CNT; i++) {
            const conf_row_t *row = &conf_rows[i];

            if (strcmp(row->group, conf_groups[g].name) != 0)
                continue;
            describe_range(row, range, sizeof(range));
            fputc('\n', fp);
            write_comment(fp, row->doc);
            fprintf(fp, "# %s: %s.\n#%s = ", type_name(row->type), range,
                    row->name);
            write_value(fp, row->def);
            fputc('\n', fp);
        }
        if (strcmp(conf_groups[g].name, "schema") == 0) {
            fputc('\n', fp);
            write_comment(fp, doc_schema_map);
            fprintf(fp, "#schema.5 = /etc/advrec/schemas/click-v2.avsc\n");
        }
    }
    fprintf(fp, "\n\n# --- kafka: librdkafka properties ---\n\n");
    write_comment(fp, doc_kafka);
    fprintf(fp, "#kafka.bootstrap.servers = localhost:9092\n"
                "#kafka.session.timeout.ms = 45000\n");
}

/* Markdown text: '|' would end a table cell, "<N>" would be an HTML tag. */
static void md_text(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", fp);
        else if (*s == '>')
            fputs("&gt;", fp);
        else if (*s == '|')
            fputs("\\|", fp);
        else
            fputc(*s, fp);
    }
}

static void write_reference_md(FILE *fp)
{
    char range[256];

    fprintf(
        fp,
        "# advrecd configuration reference\n\n"
        "<!-- Generated from the key table in lib/config.c by\n"
        "     `advrecd --dump-config=md > docs/CONFIG.md`; do not edit. -->\n\n"
        "advrecd reads `advrecd -c FILE` (a commented example with every "
        "default is\n"
        "[conf/advrecd.conf](../conf/advrecd.conf)), then applies each `-X "
        "key=value`\n"
        "in order. `advrecd --check-config` validates and prints the "
        "effective\n"
        "configuration.\n\n"
        "Syntax: one `key = value` per line; whitespace around key and value "
        "is\n"
        "ignored; `#` starts a comment only as the first character of a line, "
        "so a\n"
        "value may contain `#`; a value may be wrapped in \"double\" (with "
        "`\\\"` and\n"
        "`\\\\` escapes) or 'single' quotes. A later setting of a key "
        "overrides an\n"
        "earlier one. An unknown key, a malformed value or one out of range is "
        "an\n"
        "error naming the file, line and key.\n\n"
        "Types: `bool` is true/false (also yes/no, on/off, 1/0); `int` is a "
        "decimal\n"
        "integer; `double` a decimal number; `enum` one of the listed words; "
        "`size`\n"
        "an integer with an optional k, M, G suffix (powers of 1024).\n");
    for (size_t g = 0; g < CONF_GROUPS_CNT; g++) {
        fprintf(fp,
                "\n## %s: %s\n\n"
                "| Key | Type | Default | Accepts | Description |\n"
                "|---|---|---|---|---|\n",
                conf_groups[g].name, conf_groups[g].title);
        for (size_t i = 0; i < CONF_ROWS_CNT; i++) {
            const conf_row_t *row = &conf_rows[i];

            if (strcmp(row->group, conf_groups[g].name) != 0)
                continue;
            describe_range(row, range, sizeof(range));
            fprintf(fp, "| `%s` | %s | ", row->name, type_name(row->type));
            if (*row->def)
                fprintf(fp, "`%s`", row->def);
            else
                fprintf(fp, "(empty)");
            fprintf(fp, " | ");
            md_text(fp, range);
            fprintf(fp, " | ");
            md_text(fp, row->doc);
            fprintf(fp, " |\n");
        }
        if (strcmp(conf_groups[g].name, "schema") == 0) {
            fputc('\n', fp);
            md_text(fp, doc_schema_map);
            fputc('\n', fp);
        }
    }
    fprintf(fp, "\n## kafka: librdkafka properties\n\n");
    md_text(fp, doc_kafka);
    fprintf(fp, "\n\nExample: `kafka.bootstrap.servers = localhost:9092`.\n");
}

void advrec_conf_write_reference(FILE *fp, advrec_conf_format_t format)
{
    if (format == ADVREC_CONF_FORMAT_MD)
        write_reference_md(fp);
    else
        write_reference_conf(fp);
}
