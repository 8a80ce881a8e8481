/*
 * Unit tests for config.c: defaults, every value type, ranges, file syntax,
 * error messages (file:line, key, did-you-mean), kafka.* passthrough, the
 * schema.<N> map, -X precedence, cross-key checks, where each value was set
 * (file:line, -X, default), state.checkpoint.dir against state.dir, schema
 * files and kinds as --check-config checks them (advrec_params_check, with
 * the key and file:line named), secrets redacted from the
 * dump and from error messages, and that the committed conf/advrecd.conf,
 * docs/CONFIG.md and man/advrecd.conf.5 are what the table generates.
 *
 * Files are written into a fresh mkdtemp() directory, removed at the end.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "codec.h"
#include "params.h"
#include "redact.h"

static char tmpdir[] = "/tmp/advrec-test-config-XXXXXX";

/* Writes text to tmpdir/name (creating one level of subdirectory if name has
 * one) and returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *fp;
    const char *slash = strchr(name, '/');

    if (slash) {
        snprintf(path, sizeof(path), "%s/%.*s", tmpdir, (int)(slash - name),
                 name);
        (void)!mkdir(path, 0700);
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    return path;
}

static advrec_conf_t *new_conf(void)
{
    char errstr[256] = "";
    advrec_conf_t *conf = advrec_conf_new(errstr, sizeof(errstr));

    CHECK(conf != NULL);
    if (!conf) {
        fprintf(stderr, "advrec_conf_new: %s\n", errstr);
        exit(1);
    }
    return conf;
}

/* Sets key=value and returns the error code; errstr kept for inspection. */
static char last_err[1024];
static advrec_err_t set(advrec_conf_t *conf, const char *key, const char *value)
{
    last_err[0] = '\0';
    return advrec_conf_set(conf, key, value, last_err, sizeof(last_err));
}

static advrec_err_t load(advrec_conf_t *conf, const char *path)
{
    last_err[0] = '\0';
    return advrec_conf_load_file(conf, path, last_err, sizeof(last_err));
}

#define CHECK_ERR_HAS(needle)                                               \
    do {                                                                    \
        if (!strstr(last_err, (needle))) {                                  \
            check_failed_asserts++;                                         \
            fprintf(stderr, "%s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, \
                    __LINE__, last_err, (needle));                          \
        }                                                                   \
    } while (0)

static void test_defaults(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK(conf->broker_embedded);
    CHECK_INT(conf->broker_embedded_partitions, 16);
    CHECK_STR(conf->topic_clicks, "advrec.clicks");
    CHECK_STR(conf->topic_purchases, "advrec.purchases");
    CHECK_STR(conf->topic_recommendations, "advrec.recommendations");
    CHECK_STR(conf->topic_anomalies, "advrec.anomalies");
    CHECK_STR(conf->topic_dlq, "advrec.dlq");
    CHECK_STR(conf->group_id, "advrecd");
    CHECK_STR(conf->schema_dir, "");
    CHECK_INT(conf->schema_click_id, 1);
    CHECK_INT(conf->schema_purchase_id, 2);
    CHECK_INT(conf->schema_recommendation_id, 3);
    CHECK_INT(conf->schema_anomaly_id, 4);
    CHECK_STR(conf->state_dir, "/var/lib/advrec");
    CHECK_INT(conf->state_sync, ADVREC_CONF_SYNC_COMMIT);
    CHECK_INT(conf->round_max_records, 1000);
    CHECK_INT(conf->round_max_ms, 100);
    CHECK_INT(conf->model_k, 64);
    CHECK_NEAR(conf->model_lr, 0.08, 0); /* docs/EVALUATION.md */
    CHECK_NEAR(conf->model_reg, 0.0175, 0);
    CHECK_NEAR(conf->model_adv_lambda, 1.0, 0);
    CHECK_NEAR(conf->model_adv_eps, 0.5, 0);
    CHECK_INT(conf->model_adv_warmup, 5);
    CHECK_INT(conf->model_adv_steps, 1);
    CHECK_INT(conf->model_negatives, 24);
    CHECK_INT(conf->model_negatives_min, 4);
    CHECK_NEAR(conf->model_negatives_budget, 120000, 0);
    CHECK_NEAR(conf->model_init_std, 0.1, 0);
    CHECK_INT(conf->model_seed, 42);
    CHECK(conf->model_bias);
    CHECK_NEAR(conf->model_weight_click, 1.0, 0);
    CHECK_NEAR(conf->model_weight_purchase, 3.0, 0);
    CHECK_INT(conf->model_max_items, 1000000);
    CHECK_INT(conf->model_max_users, 10000000);
    CHECK_INT(conf->recs_n, 10);
    CHECK_INT(conf->recs_debounce_ms, 1000);
    CHECK_INT(conf->recs_max_staleness_ms, 10000);
    CHECK_INT(conf->recs_exclude, ADVREC_CONF_EXCLUDE_PURCHASED);
    CHECK_INT(conf->recs_history, 50);
    CHECK_NEAR(conf->recs_popularity_halflife_s, 3600, 0);
    CHECK_INT(conf->log_level, ADVREC_LOG_INFO);
    CHECK_INT(conf->stats_interval_ms, 10000);
    CHECK_INT(conf->kafka_cnt, 0);

    /* The default schema map: ids 1..4 inside the built-in schema dir. */
    CHECK_INT(conf->schemas_cnt, 4);
    {
        const char *files[] = {"click.avsc", "purchase.avsc",
                               "recommendation.avsc", "anomaly.avsc"};
        char want[512];

        for (int32_t id = 1; id <= 4; id++) {
            snprintf(want, sizeof(want), "%s/%s", advrec_conf_schema_dir(conf),
                     files[id - 1]);
            CHECK_STR(advrec_conf_schema_path(conf, id), want);
        }
    }
    CHECK(advrec_conf_schema_path(conf, 5) == NULL);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    advrec_conf_destroy(conf);
}

static void test_bool(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "model.bias", "false"), ADVREC_OK);
    CHECK(!conf->model_bias);
    CHECK_INT(set(conf, "model.bias", "YES"), ADVREC_OK);
    CHECK(conf->model_bias);
    CHECK_INT(set(conf, "model.bias", "off"), ADVREC_OK);
    CHECK(!conf->model_bias);
    CHECK_INT(set(conf, "model.bias", "1"), ADVREC_OK);
    CHECK(conf->model_bias);
    CHECK_INT(set(conf, "model.bias", "maybe"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X model.bias=maybe: expected true or false");
    CHECK(conf->model_bias); /* unchanged on error */
    advrec_conf_destroy(conf);
}

static void test_int(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "model.k", "128"), ADVREC_OK);
    CHECK_INT(conf->model_k, 128);
    CHECK_INT(set(conf, "model.seed", "9223372036854775807"), ADVREC_OK);
    CHECK_INT(conf->model_seed, INT64_MAX);
    CHECK_INT(set(conf, "model.k", "abc"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X model.k=abc: expected an integer");
    CHECK_INT(set(conf, "model.k", "12x"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.k", ""), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.k", "1.5"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.seed", "99999999999999999999"),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("64-bit");
    CHECK_INT(conf->model_k, 128);
    advrec_conf_destroy(conf);
}

static void test_double(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "model.lr", "0.1"), ADVREC_OK);
    CHECK_NEAR(conf->model_lr, 0.1, 0);
    CHECK_INT(set(conf, "model.lr", "2e-3"), ADVREC_OK);
    CHECK_NEAR(conf->model_lr, 0.002, 0);
    CHECK_INT(set(conf, "model.reg", "1"), ADVREC_OK);
    CHECK_NEAR(conf->model_reg, 1.0, 0);
    CHECK_INT(set(conf, "model.lr", "fast"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X model.lr=fast: expected a number");
    CHECK_INT(set(conf, "model.lr", "nan"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.lr", "inf"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("finite");
    CHECK_NEAR(conf->model_lr, 0.002, 0);
    advrec_conf_destroy(conf);
}

static void test_string(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "state.dir", "/srv/advrec state"), ADVREC_OK);
    CHECK_STR(conf->state_dir, "/srv/advrec state");
    /* An empty state.dir is allowed: state in memory only. */
    CHECK_INT(set(conf, "state.dir", ""), ADVREC_OK);
    CHECK_STR(conf->state_dir, "");
    CHECK_INT(set(conf, "group.id", ""), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("must not be empty");
    CHECK_INT(set(conf, "topic.clicks", "shop_clicks-v2.eu"), ADVREC_OK);
    CHECK_STR(conf->topic_clicks, "shop_clicks-v2.eu");
    CHECK_INT(set(conf, "topic.clicks", "bad topic"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("not a valid Kafka topic name");
    CHECK_INT(set(conf, "topic.clicks", ".."), ADVREC_ERR_CONFIG);
    CHECK_STR(conf->topic_clicks, "shop_clicks-v2.eu");
    advrec_conf_destroy(conf);
}

static void test_enum(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "state.sync", "none"), ADVREC_OK);
    CHECK_INT(conf->state_sync, ADVREC_CONF_SYNC_NONE);
    CHECK_INT(set(conf, "recs.exclude", "Seen"), ADVREC_OK);
    CHECK_INT(conf->recs_exclude, ADVREC_CONF_EXCLUDE_SEEN);
    CHECK_INT(set(conf, "log.level", "debug"), ADVREC_OK);
    CHECK_INT(conf->log_level, ADVREC_LOG_DEBUG);
    CHECK_INT(set(conf, "log.level", "err"), ADVREC_OK);
    CHECK_INT(conf->log_level, ADVREC_LOG_ERR);
    CHECK_INT(set(conf, "state.sync", "always"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X state.sync=always: expected one of none, commit");
    CHECK_INT(conf->state_sync, ADVREC_CONF_SYNC_NONE);
    advrec_conf_destroy(conf);
}

/* Static membership: group.instance.id's default is derived from the host
 * and the absolute state.dir (stable, sanitized, at most 249), "" is
 * dynamic, kafka.group.instance.id wins; state.offset.missing's words. */
static void test_instance_id_and_missing_policy(void)
{
    advrec_conf_t *conf = new_conf();
    char id[300], id2[300], host[256] = "", want[4400], cwd[4096];
    char longdir[400];
    advrec_kafka_params_t p;
    advrec_kafka_prop_t *props = NULL;
    int found = 0;

    CHECK_STR(conf->group_instance_id, "auto");
    CHECK_INT(conf->state_offset_missing, ADVREC_CONF_MISSING_FAIL);
    CHECK_INT(set(conf, "state.offset.missing", "earliest"), ADVREC_OK);
    CHECK_INT(conf->state_offset_missing, ADVREC_CONF_MISSING_EARLIEST);
    CHECK_INT(set(conf, "state.offset.missing", "committed"), ADVREC_OK);
    CHECK_INT(conf->state_offset_missing, ADVREC_CONF_MISSING_COMMITTED);
    CHECK_INT(set(conf, "state.offset.missing", "skip"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X state.offset.missing=skip: expected one of fail, "
                        "earliest, committed");

    /* Embedded broker (the default) or state in memory: dynamic. */
    CHECK_INT(set(conf, "state.dir", "/srv/no-such-advrec-dir"), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_STR(id, "");
    CHECK_INT(set(conf, "broker.embedded", "false"), ADVREC_OK);
    gethostname(host, sizeof(host) - 1);
    advrec_params_instance_id(conf, id, sizeof(id));
    snprintf(want, sizeof(want), "advrecd.%s.srv_no-such-advrec-dir", host);
    if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") == strlen(host))
        CHECK_STR(id, want);
    /* A relative dir is made absolute: the same id from another cwd's
     * spelling of the same path. */
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_INT(set(conf, "state.dir", "rel-advrec-state"), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    snprintf(want, sizeof(want), "%s/rel-advrec-state/", cwd);
    CHECK_INT(set(conf, "state.dir", want), ADVREC_OK);
    advrec_params_instance_id(conf, id2, sizeof(id2));
    CHECK_STR(id, id2);
    /* Characters Kafka refuses are replaced, and a hash keeps dirs apart. */
    CHECK_INT(set(conf, "state.dir", "/srv/a b"), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_INT(set(conf, "state.dir", "/srv/a:b"), ADVREC_OK);
    advrec_params_instance_id(conf, id2, sizeof(id2));
    CHECK(strcmp(id, id2) != 0);
    CHECK_INT(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._-"),
              strlen(id));
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    CHECK_INT(set(conf, "state.dir", longdir), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_INT(strlen(id), 249);
    /* Empty: dynamic; a value: itself; kafka.group.instance.id wins. */
    CHECK_INT(set(conf, "group.instance.id", ""), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_STR(id, "");
    CHECK_INT(set(conf, "group.instance.id", "shop eu"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("not a valid Kafka group.instance.id");
    CHECK_INT(set(conf, "group.instance.id", "advrec-eu-1"), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_STR(id, "advrec-eu-1");
    /* The consumer's properties carry it, and commit offsets only when the
     * daemon says so. */
    CHECK_INT(advrec_params_kafka(&p, &props, conf, ADVREC_KAFKA_CONSUMER),
              ADVREC_OK);
    for (size_t i = 0; i < p.n_defaults; i++)
        found += strcmp(p.defaults[i].name, "group.instance.id") == 0 &&
                 strcmp(p.defaults[i].value, "advrec-eu-1") == 0;
    CHECK_INT(found, 1);
    found = 0;
    for (size_t i = 0; i < p.n_forced; i++)
        found += strcmp(p.forced[i].name, "enable.auto.commit") == 0 &&
                 strcmp(p.forced[i].value, "false") == 0;
    CHECK_INT(found, 1);
    free(props);
    /* advrecd's producer lingers 20 ms (docs/PERFORMANCE.md, "Latency"),
     * a default that kafka.linger.ms overrides (p.props go after it). */
    CHECK_INT(advrec_params_kafka(&p, &props, conf, ADVREC_KAFKA_PRODUCER),
              ADVREC_OK);
    found = 0;
    for (size_t i = 0; i < p.n_defaults; i++)
        found += strcmp(p.defaults[i].name, "linger.ms") == 0 &&
                 strcmp(p.defaults[i].value, "20") == 0;
    CHECK_INT(found, 1);
    free(props);
    CHECK_INT(set(conf, "kafka.group.instance.id", "mine"), ADVREC_OK);
    advrec_params_instance_id(conf, id, sizeof(id));
    CHECK_STR(id, "mine");
    advrec_conf_destroy(conf);
}

static void test_size(void)
{
    int64_t v = -1;
    char err[128];

    CHECK_INT(advrec_conf_parse_size("512", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, 512);
    CHECK_INT(advrec_conf_parse_size("64k", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, 65536);
    CHECK_INT(advrec_conf_parse_size("16M", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, 16 << 20);
    CHECK_INT(advrec_conf_parse_size("2GB", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, INT64_C(2) << 30);
    CHECK_INT(advrec_conf_parse_size("1t", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, INT64_C(1) << 40);
    CHECK_INT(advrec_conf_parse_size("100B", &v, err, sizeof(err)), ADVREC_OK);
    CHECK_INT(v, 100);
    CHECK_INT(advrec_conf_parse_size("", &v, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK_INT(advrec_conf_parse_size("-1k", &v, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK_INT(advrec_conf_parse_size("16Q", &v, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK_INT(advrec_conf_parse_size("1.5M", &v, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK_INT(advrec_conf_parse_size("99999999999T", &v, err, sizeof(err)),
              ADVREC_ERR_CONFIG);
    CHECK_STR(err, "size too large");
    CHECK_INT(v, 100);
}

static void test_ranges(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "model.k", "0"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X model.k=0: out of range [1, 1024]");
    CHECK_INT(set(conf, "model.k", "1025"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.k", "1024"), ADVREC_OK);
    CHECK_INT(set(conf, "model.k", "1"), ADVREC_OK);
    CHECK_INT(set(conf, "model.lr", "0"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("out of range");
    CHECK_INT(set(conf, "model.reg", "-0.1"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "model.adv.steps", "0"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "schema.click.id", "2147483648"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "schema.click.id", "2147483647"), ADVREC_OK);
    CHECK_INT(conf->model_k, 1);
    advrec_conf_destroy(conf);
}

static void test_unknown_key_names_file_line_and_guess(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path = write_file("unknown.conf", "# a comment\n"
                                                  "\n"
                                                  "model.k = 32\n"
                                                  "model.kk = 16\n");
    char want[600];

    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    snprintf(want, sizeof(want),
             "%s:4: unknown key \"model.kk\" (did you mean \"model.k\"?)",
             path);
    CHECK_STR(last_err, want);
    CHECK_INT(conf->model_k, 32); /* lines before the bad one applied */

    /* -X gets the same guess; a key far from every name gets none. */
    CHECK_INT(set(conf, "recs.exlcude", "none"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X recs.exlcude=none: unknown key \"recs.exlcude\" "
                        "(did you mean \"recs.exclude\"?)");
    CHECK_INT(set(conf, "completely.different", "1"), ADVREC_ERR_CONFIG);
    CHECK_STR(last_err, "-X completely.different=1: unknown key "
                        "\"completely.different\"");
    CHECK_INT(set(conf, "kafka.", "x"), ADVREC_ERR_CONFIG);
    advrec_conf_destroy(conf);
}

static void test_bad_value_in_file(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path = write_file("badvalue.conf", "model.k = abc\n");
    char want[600];

    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    snprintf(want, sizeof(want),
             "%s:1: model.k: expected an integer, got \"abc\"", path);
    CHECK_STR(last_err, want);

    /* A trailing comment is not one: the value is taken verbatim. */
    path = write_file("trailing.conf", "model.k = 32 # smaller\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: model.k: expected an integer, got \"32 # smaller\"");

    path = write_file("noeq.conf", "model.k 32\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: expected \"key = value\"");

    path = write_file("badkey.conf", "model k = 32\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: expected \"key = value\", got a bad key");

    path = write_file("nul.conf", "model.k = 3\0002\n");
    /* write_file stops at the NUL: write this one by hand. */
    {
        FILE *fp = fopen(path, "w");
        fwrite("model.k = 3\0002\n", 1, 14, fp);
        fclose(fp);
    }
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: line contains a NUL byte");

    CHECK_INT(load(conf, "/nonexistent/advrec.conf"), ADVREC_ERR_IO);
    CHECK_STR(last_err, "/nonexistent/advrec.conf: No such file or directory");
    CHECK_INT(conf->model_k, 64);
    advrec_conf_destroy(conf);
}

static void test_bad_line_7_names_line_7(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path = write_file("line7.conf", "# advrecd test config\n"
                                                "\n"
                                                "model.k = 32\n"
                                                "   # indented comment\n"
                                                "recs.n = 20\n"
                                                "\n"
                                                "model.lr = 0.05.1\n"
                                                "model.seed = 7\n");
    char want[600];

    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s:7: model.lr:", path);
    CHECK_ERR_HAS(want);
    CHECK_INT(conf->recs_n, 20);
    CHECK_INT(conf->model_seed, 42); /* nothing after the bad line */
    advrec_conf_destroy(conf);
}

static void test_quotes_and_whitespace(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path = write_file(
        "quotes.conf", "\xef\xbb\xbf# BOM, CRLF and tabs are fine\r\n"
                       "  state.dir\t=   \"/srv/with space \"  \r\n"
                       "group.id = 'a # not a comment'\n"
                       "kafka.sasl.password = \"p\\\"w\\\\d\"\n"
                       "kafka.client.id = it's#raw\n"
                       "recs.exclude=\"none\"\n"
                       "topic.dlq = \"\"\n");

    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    /* Everything up to the empty topic was read as intended. */
    CHECK_ERR_HAS(":7: topic.dlq: must not be empty");
    CHECK_STR(conf->state_dir, "/srv/with space ");
    CHECK_STR(conf->group_id, "a # not a comment");
    CHECK_STR(advrec_conf_kafka_get(conf, "sasl.password"), "p\"w\\d");
    CHECK_STR(advrec_conf_kafka_get(conf, "client.id"), "it's#raw");
    CHECK_INT(conf->recs_exclude, ADVREC_CONF_EXCLUDE_NONE);

    path = write_file("unterminated.conf", "group.id = \"abc\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: group.id: unterminated double quote");
    path = write_file("after.conf", "group.id = 'abc' def\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: group.id: text after the closing quote");
    advrec_conf_destroy(conf);
}

static void test_kafka_passthrough_in_order(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path =
        write_file("kafka.conf", "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                                 "kafka.session.timeout.ms = 6000\n"
                                 "broker.embedded = false\n"
                                 "kafka.client.id = one\n"
                                 "kafka.client.id = two\n");
    rd_kafka_conf_t *rk_conf;
    char buf[256];
    size_t sz;

    CHECK_INT(load(conf, path), ADVREC_OK);
    CHECK_INT(advrec_conf_set_arg(conf, "kafka.linger.ms=5", last_err,
                                  sizeof(last_err)),
              ADVREC_OK);
    CHECK_INT(conf->kafka_cnt, 5);
    if (conf->kafka_cnt == 5) {
        CHECK_STR(conf->kafka[0].name, "bootstrap.servers");
        CHECK_STR(conf->kafka[0].value, "127.0.0.1:9092");
        CHECK_STR(conf->kafka[1].name, "session.timeout.ms");
        CHECK_STR(conf->kafka[2].value, "one");
        CHECK_STR(conf->kafka[3].value, "two");
        CHECK_STR(conf->kafka[4].name, "linger.ms");
        CHECK_STR(conf->kafka[4].origin, "-X");
    }
    CHECK_STR(advrec_conf_kafka_get(conf, "client.id"), "two");
    CHECK(advrec_conf_kafka_get(conf, "group.id") == NULL);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);

    /* Applied in order (the later client.id wins), group.id from ours. */
    rk_conf = rd_kafka_conf_new();
    CHECK_INT(advrec_conf_kafka_apply(conf, rk_conf, true, last_err,
                                      sizeof(last_err)),
              ADVREC_OK);
    sz = sizeof(buf);
    CHECK_INT(rd_kafka_conf_get(rk_conf, "client.id", buf, &sz),
              RD_KAFKA_CONF_OK);
    CHECK_STR(buf, "two");
    sz = sizeof(buf);
    CHECK_INT(rd_kafka_conf_get(rk_conf, "session.timeout.ms", buf, &sz),
              RD_KAFKA_CONF_OK);
    CHECK_STR(buf, "6000");
    sz = sizeof(buf);
    CHECK_INT(rd_kafka_conf_get(rk_conf, "group.id", buf, &sz),
              RD_KAFKA_CONF_OK);
    CHECK_STR(buf, "advrecd");
    rd_kafka_conf_destroy(rk_conf);

    /* kafka.group.id wins over group.id. */
    CHECK_INT(set(conf, "kafka.group.id", "theirs"), ADVREC_OK);
    rk_conf = rd_kafka_conf_new();
    CHECK_INT(advrec_conf_kafka_apply(conf, rk_conf, true, last_err,
                                      sizeof(last_err)),
              ADVREC_OK);
    sz = sizeof(buf);
    CHECK_INT(rd_kafka_conf_get(rk_conf, "group.id", buf, &sz),
              RD_KAFKA_CONF_OK);
    CHECK_STR(buf, "theirs");
    rd_kafka_conf_destroy(rk_conf);
    advrec_conf_destroy(conf);

    /* A property librdkafka rejects is reported with where it was set. */
    conf = new_conf();
    path = write_file("kafkabad.conf", "\n\nkafka.no.such.property = 1\n");
    CHECK_INT(load(conf, path), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    {
        char want[600];
        snprintf(want, sizeof(want), "%s:3: kafka.no.such.property: ", path);
        CHECK_ERR_HAS(want);
    }
    advrec_conf_destroy(conf);
}

/* Registry mode (issue 17): the URL is checked, the schema.*.id keys are
 * not (the registry gives our ids), and the codec maps only the explicit
 * schema.<N> lines, not the built-in 1..4 that would shadow registry ids. */
static void test_schema_registry_keys(void)
{
    advrec_conf_t *conf = new_conf();
    advrec_codec_t *codec = NULL;
    advrec_codec_kind_t kind;
    int32_t rec_id = 0, anomaly_id = 0;
    char path[4096];

    CHECK_STR(conf->schema_registry_url, "");
    CHECK_INT(conf->schema_registry_timeout_ms, 5000);
    CHECK_INT(conf->schema_registry_backoff_ms, 1000);
    CHECK(conf->schema_registry_auto_register);
    CHECK_INT(set(conf, "schema.registry.url", "ftp://reg:21"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("schema.registry.url = \"ftp://reg:21\": expected an "
                  "http:// or https:// URL");
    /* An id no schema.<N> maps is an error without a registry only. */
    CHECK_INT(set(conf, "schema.click.id", "77"), ADVREC_OK);
    CHECK_INT(set(conf, "schema.registry.url", "http://127.0.0.1:1"),
              ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    snprintf(path, sizeof(path), "%s/click.avsc",
             advrec_codec_default_schema_dir());
    CHECK_INT(set(conf, "schema.9", path), ADVREC_OK);
    CHECK_INT(advrec_params_codec(&codec, &rec_id, &anomaly_id, conf, last_err,
                                  sizeof(last_err)),
              ADVREC_OK);
    CHECK_INT(rec_id, -1);
    CHECK_INT(anomaly_id, -1);
    CHECK_INT(advrec_codec_schema_kind(codec, 9, &kind), ADVREC_OK);
    CHECK_INT(kind, ADVREC_CODEC_CLICK);
    for (int32_t id = 1; id <= 4; id++)
        CHECK_INT(advrec_codec_schema_kind(codec, id, &kind),
                  ADVREC_ERR_NOT_FOUND);
    advrec_codec_destroy(codec);
    codec = NULL;
    CHECK_INT(set(conf, "schema.registry.url", ""), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("schema.click.id = 77 but no schema.77 maps that id");
    advrec_conf_destroy(conf);
}

static void test_schema_map(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path =
        write_file("sub/schemas.conf", "schema.7 = v7/click.avsc\n"
                                       "schema.8 = /abs/purchase.avsc\n"
                                       "schema.1 = mine.avsc\n"
                                       "schema.click.id = 7\n");
    char want[600];

    CHECK_INT(load(conf, path), ADVREC_OK);
    snprintf(want, sizeof(want), "%s/sub/v7/click.avsc", tmpdir);
    CHECK_STR(advrec_conf_schema_path(conf, 7), want);
    CHECK_STR(advrec_conf_schema_path(conf, 8), "/abs/purchase.avsc");
    /* Overriding a built-in id replaces it in place. */
    snprintf(want, sizeof(want), "%s/sub/mine.avsc", tmpdir);
    CHECK_STR(advrec_conf_schema_path(conf, 1), want);
    CHECK_INT(conf->schemas_cnt, 6);
    CHECK_INT(conf->schemas[0].id, 1);
    CHECK_INT(conf->schema_click_id, 7);

    /* -X paths stay relative to the working directory. */
    CHECK_INT(set(conf, "schema.9", "here.avsc"), ADVREC_OK);
    CHECK_STR(advrec_conf_schema_path(conf, 9), "here.avsc");

    /* Built-in entries follow schema.dir; explicit ones do not. */
    CHECK_INT(set(conf, "schema.dir", "/opt/s"), ADVREC_OK);
    CHECK_STR(advrec_conf_schema_dir(conf), "/opt/s");
    CHECK_STR(advrec_conf_schema_path(conf, 2), "/opt/s/purchase.avsc");
    CHECK_STR(advrec_conf_schema_path(conf, 4), "/opt/s/anomaly.avsc");
    CHECK_STR(advrec_conf_schema_path(conf, 8), "/abs/purchase.avsc");
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);

    /* schema.dir in a file is relative to the file too. */
    path = write_file("sub/dir.conf", "schema.dir = avro\n");
    CHECK_INT(load(conf, path), ADVREC_OK);
    CHECK_STR(conf->schema_dir + strlen(conf->schema_dir) - 8, "sub/avro");
    CHECK_STR(advrec_conf_schema_path(conf, 3) +
                  strlen(advrec_conf_schema_path(conf, 3)) - 28,
              "sub/avro/recommendation.avsc");

    CHECK_INT(set(conf, "schema.0", "x.avsc"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("schema id must be in [1, 2147483647]");
    CHECK_INT(set(conf, "schema.2147483648", "x.avsc"), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "schema.5", ""), ADVREC_ERR_CONFIG);
    CHECK_INT(set(conf, "schema.5x", "x.avsc"), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("unknown key");
    CHECK_INT(set(conf, "schema.2147483647", "max.avsc"), ADVREC_OK);
    advrec_conf_destroy(conf);
}

static void test_cli_overrides_file(void)
{
    advrec_conf_t *conf = new_conf();
    const char *path = write_file("override.conf", "model.k = 32\n"
                                                   "recs.n = 5\n");

    CHECK_INT(load(conf, path), ADVREC_OK);
    CHECK_INT(
        advrec_conf_set_arg(conf, "model.k=16", last_err, sizeof(last_err)),
        ADVREC_OK);
    CHECK_INT(
        advrec_conf_set_arg(conf, "model.k=8", last_err, sizeof(last_err)),
        ADVREC_OK);
    CHECK_INT(conf->model_k, 8);
    CHECK_INT(conf->recs_n, 5);
    /* Values may contain '='. */
    CHECK_INT(advrec_conf_set_arg(conf, "kafka.sasl.password=a=b", last_err,
                                  sizeof(last_err)),
              ADVREC_OK);
    CHECK_STR(advrec_conf_kafka_get(conf, "sasl.password"), "a=b");
    CHECK_INT(advrec_conf_set_arg(conf, "model.k", last_err, sizeof(last_err)),
              ADVREC_ERR_INVALID_ARG);
    CHECK_STR(last_err, "-X model.k: expected key=value");
    CHECK_INT(advrec_conf_set_arg(conf, "=5", last_err, sizeof(last_err)),
              ADVREC_ERR_INVALID_ARG);
    advrec_conf_destroy(conf);
}

static void test_check_across_keys(void)
{
    advrec_conf_t *conf = new_conf();

    CHECK_INT(set(conf, "broker.embedded", "false"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("needs kafka.bootstrap.servers");
    CHECK_INT(set(conf, "kafka.bootstrap.servers", "127.0.0.1:1"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    CHECK_INT(set(conf, "broker.embedded", "true"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("broker.embedded = true would ignore it");
    advrec_conf_destroy(conf);

    conf = new_conf();
    CHECK_INT(set(conf, "recs.debounce.ms", "20000"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("recs.max.staleness.ms (10000, built-in default) must "
                  "be >= recs.debounce.ms (20000, -X)");
    CHECK_INT(set(conf, "recs.debounce.ms", "1000"), ADVREC_OK);

    CHECK_INT(set(conf, "schema.anomaly.id", "12"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: schema.anomaly.id = 12 but no schema.12");
    CHECK_INT(set(conf, "schema.12", "/x/anomaly.avsc"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);

    CHECK_INT(set(conf, "topic.dlq", "advrec.clicks"), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("topic.clicks and topic.dlq are both");
    advrec_conf_destroy(conf);
}

/* Captures a writer's output into a malloc'd string (caller frees). */
static char *capture_reference(advrec_conf_format_t format)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    advrec_conf_write_reference(fp, format);
    fclose(fp);
    return buf;
}

static char *capture_effective(const advrec_conf_t *conf)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);

    advrec_conf_write(conf, fp);
    fclose(fp);
    return buf;
}

/* Found by fuzz_config: a string value longer than the dump's 1 KiB
 * scratch buffer was cut, so the dump did not load back as the same
 * configuration. */
static void test_dump_keeps_long_strings(void)
{
    advrec_conf_t *conf = new_conf(), *again = new_conf();
    char value[3000], *dump, *dump2;
    const char *path;

    memset(value, 'g', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    CHECK_INT(set(conf, "group.id", value), ADVREC_OK);
    dump = capture_effective(conf);
    path = write_file("long.conf", dump);
    CHECK_INT(load(again, path), ADVREC_OK);
    CHECK_STR(again->group_id, value);
    dump2 = capture_effective(again);
    CHECK_STR(dump2, dump);
    free(dump);
    free(dump2);
    advrec_conf_destroy(conf);
    advrec_conf_destroy(again);
}

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *out;
    int c;

    if (!fp)
        return NULL;
    out = open_memstream(&buf, &len);
    while ((c = fgetc(fp)) != EOF)
        fputc(c, out);
    fclose(out);
    fclose(fp);
    return buf;
}

/* The committed generated files are exactly what the table generates. */
static void test_committed_reference_is_current(void)
{
    static const struct {
        const char *file;
        advrec_conf_format_t format;
        const char *flag;
    } refs[] = {
        {"conf/advrecd.conf", ADVREC_CONF_FORMAT_CONF, "conf"},
        {"docs/CONFIG.md", ADVREC_CONF_FORMAT_MD, "md"},
        {"man/advrecd.conf.5", ADVREC_CONF_FORMAT_MAN, "man"},
    };

    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        char path[512];
        char *want = capture_reference(refs[i].format), *have;

        snprintf(path, sizeof(path), "%s/%s", ADVREC_TEST_SOURCE_DIR,
                 refs[i].file);
        have = read_all(path);
        if (!have || strcmp(have, want) != 0) {
            check_failed_asserts++;
            fprintf(stderr,
                    "%s is not what lib/config.c's key table generates; "
                    "regenerate it with:\n"
                    "  build/advrecd --dump-config=%s > %s\n",
                    refs[i].file, refs[i].flag, refs[i].file);
        }
        free(want);
        free(have);
    }
}

/* Every key is documented in both references, with its default. */
static void test_reference_lists_every_key(void)
{
    char *conf_ref = capture_reference(ADVREC_CONF_FORMAT_CONF);
    char *md_ref = capture_reference(ADVREC_CONF_FORMAT_MD);
    char *man_ref = capture_reference(ADVREC_CONF_FORMAT_MAN);
    size_t n = 0;

    for (const char *key; (key = advrec_conf_key(n)); n++) {
        char needle[256];

        snprintf(needle, sizeof(needle), "\n#%s = ", key);
        if (!strstr(conf_ref, needle)) {
            check_failed_asserts++;
            fprintf(stderr, "conf reference lacks %s\n", key);
        }
        snprintf(needle, sizeof(needle), "| `%s` |", key);
        if (!strstr(md_ref, needle)) {
            check_failed_asserts++;
            fprintf(stderr, "md reference lacks %s\n", key);
        }
        snprintf(needle, sizeof(needle), ".TP\n\\fB%s\\fR (", key);
        if (!strstr(man_ref, needle)) {
            check_failed_asserts++;
            fprintf(stderr, "man reference lacks %s\n", key);
        }
    }
    CHECK(n >= 40);
    CHECK(advrec_conf_key(n) == NULL);
    free(conf_ref);
    free(md_ref);
    free(man_ref);
}

/* Uncommenting every line of the generated conf gives a loadable file whose
 * values are the defaults, and the effective dump reloads to itself. */
static void test_reference_and_dump_reload(void)
{
    char *ref = capture_reference(ADVREC_CONF_FORMAT_CONF), *out, *p;
    advrec_conf_t *defaults = new_conf(), *conf = new_conf();
    char *dump_default, *dump_loaded;
    const char *path;
    FILE *fp;
    size_t len = 0;

    /* "#key = value" lines become "key = value"; prose stays comments. */
    out = NULL;
    fp = open_memstream(&out, &len);
    for (p = strtok(ref, "\n"); p; p = strtok(NULL, "\n")) {
        if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z' && strstr(p, " = ") &&
            !strstr(p, "bootstrap.servers") && !strstr(p, "schema.5"))
            fprintf(fp, "%s\n", p + 1);
        else
            fprintf(fp, "%s\n", p);
    }
    fclose(fp);
    path = write_file("uncommented.conf", out);
    CHECK_INT(load(conf, path), ADVREC_OK);
    if (last_err[0])
        fprintf(stderr, "%s\n", last_err);
    CHECK_INT(conf->kafka_cnt, 1); /* the session.timeout.ms example */
    CHECK_INT(conf->schemas_cnt, 4);
    dump_default = capture_effective(defaults);
    /* Same settings as the defaults, apart from the kafka example. */
    CHECK_INT(set(defaults, "kafka.session.timeout.ms", "45000"), ADVREC_OK);
    free(dump_default);
    dump_default = capture_effective(defaults);
    dump_loaded = capture_effective(conf);
    CHECK_STR(dump_loaded, dump_default);
    free(dump_loaded);

    /* The effective dump is itself a config that loads to the same dump. */
    advrec_conf_destroy(conf);
    conf = new_conf();
    CHECK_INT(set(defaults, "model.lr", "0.0123456789"), ADVREC_OK);
    CHECK_INT(set(defaults, "group.id", " padded \"quoted\" "), ADVREC_OK);
    free(dump_default);
    dump_default = capture_effective(defaults);
    path = write_file("dump.conf", dump_default);
    CHECK_INT(load(conf, path), ADVREC_OK);
    CHECK_NEAR(conf->model_lr, 0.0123456789, 0);
    CHECK_STR(conf->group_id, " padded \"quoted\" ");
    dump_loaded = capture_effective(conf);
    CHECK_STR(dump_loaded, dump_default);

    free(dump_default);
    free(dump_loaded);
    free(out);
    free(ref);
    advrec_conf_destroy(defaults);
    advrec_conf_destroy(conf);
}

/* Secrets (issue 13): never in the effective dump nor an error message. */
#define SECRET "hunter2-Secret!"

static void test_secrets_absent_from_dump(void)
{
    static const char *const secret_keys[] = {
        "kafka.sasl.password",           "kafka.ssl.key.password",
        "kafka.ssl.keystore.password",   "kafka.ssl.key.pem",
        "kafka.sasl.oauthbearer.config", "kafka.sasl.oauthbearer.client.secret",
    };
    advrec_conf_t *conf = new_conf();
    const char *path;
    char want[256], *dump;

    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
        CHECK_INT(set(conf, secret_keys[i], SECRET), ADVREC_OK);
    /* The registry's credentials too (a table key, not kafka.*). */
    CHECK_INT(set(conf, "schema.registry.basic.auth.user.info", "bob:" SECRET),
              ADVREC_OK);
    CHECK_STR(conf->schema_registry_user_info, "bob:" SECRET);
    path = write_file("secret.conf", "kafka.sasl.username = alice\n"
                                     "kafka.SASL.Password = '" SECRET "'\n");
    CHECK_INT(load(conf, path), ADVREC_OK);
    /* The values are kept for librdkafka, only printing hides them. */
    CHECK_STR(advrec_conf_kafka_get(conf, "sasl.password"), SECRET);
    dump = capture_effective(conf);
    CHECK(strstr(dump, "hunter2") == NULL);
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
        snprintf(want, sizeof(want), "\n%s = <redacted>\n", secret_keys[i]);
        CHECK(strstr(dump, want) != NULL);
    }
    CHECK(strstr(dump, "\nkafka.SASL.Password = <redacted>\n") != NULL);
    /* Not a secret: shown. */
    CHECK(strstr(dump, "bob:") == NULL);
    CHECK(strstr(dump, "schema.registry.basic.auth.user.info = ") != NULL);
    CHECK(strstr(dump, "<redacted>") != NULL);
    CHECK(strstr(dump, "\nkafka.sasl.username = alice\n") != NULL);
    free(dump);
    advrec_conf_destroy(conf);

    CHECK(advrec_redact_is_secret("sasl.password"));
    CHECK(advrec_redact_is_secret("kafka.ssl_key"));
    CHECK(!advrec_redact_is_secret("sasl.username"));
    CHECK(!advrec_redact_is_secret("ssl.ca.location"));
}

static void test_secrets_absent_from_errors(void)
{
    advrec_conf_t *conf = new_conf();
    const advrec_kafka_prop_t prop = {"ssl.keystore.password.typo", SECRET,
                                      "-X"};
    const advrec_kafka_params_t kp = {
        .role = ADVREC_KAFKA_CONSUMER, .props = &prop, .n_props = 1};
    advrec_kafka_t *kafka = NULL;
    rd_kafka_conf_t *rk_conf;
    const char *path;
    char buf[64];

    /* A line without '=' is echoed, unless it names a secret. */
    path = write_file("nosep.conf", "kafka.sasl.password: " SECRET "\n");
    CHECK_INT(load(conf, path), ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(":1: expected \"key = value\", got \"<redacted>\"");
    CHECK(strstr(last_err, "hunter2") == NULL);

    /* librdkafka refuses the property: the message names it, not its
     * value. advrec_conf_check and lib/kafka's two paths. */
    CHECK_INT(set(conf, "broker.embedded", "false"), ADVREC_OK);
    CHECK_INT(set(conf, "kafka.bootstrap.servers", "127.0.0.1:1"), ADVREC_OK);
    CHECK_INT(set(conf, "kafka.sasl.password.typo", SECRET), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: kafka.sasl.password.typo: ");
    CHECK(strstr(last_err, "hunter2") == NULL);

    rk_conf = rd_kafka_conf_new();
    CHECK_INT(advrec_kafka_conf_set(rk_conf, "sasl.password.typo", SECRET,
                                    last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("sasl.password.typo=<redacted>: ");
    CHECK(strstr(last_err, "hunter2") == NULL);
    rd_kafka_conf_destroy(rk_conf);

    CHECK_INT(advrec_kafka_new(&kafka, &kp, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK(kafka == NULL);
    CHECK_ERR_HAS("-X: kafka.ssl.keystore.password.typo=<redacted>: ");
    CHECK(strstr(last_err, "hunter2") == NULL);

    /* A message that quotes the secret back (as librdkafka's "Invalid value
     * \"...\"" does) is scrubbed; a small buffer is cut, never overrun. */
    snprintf(last_err, sizeof(last_err), "Invalid value \"%s\" (%s)", SECRET,
             SECRET);
    advrec_redact_scrub(last_err, sizeof(last_err), SECRET);
    CHECK_STR(last_err, "Invalid value \"<redacted>\" (<redacted>)");
    strcpy(buf, "ab XY cd");
    advrec_redact_scrub(buf, 16, "XY");
    CHECK_STR(buf, "ab <redacted> c");
    strcpy(buf, "ab XY cd");
    advrec_redact_scrub(buf, 12, "XY");
    CHECK_STR(buf, "ab ");
    advrec_conf_destroy(conf);
}

/* The committed SASL_SSL example loads, passes the check, and its password
 * placeholder is redacted in the dump. */
static void test_sasl_ssl_example_loads(void)
{
    advrec_conf_t *conf = new_conf();
    char *dump;

    CHECK_INT(load(conf, ADVREC_TEST_SOURCE_DIR
                   "/conf/advrecd-sasl-ssl.conf.example"),
              ADVREC_OK);
    if (last_err[0])
        fprintf(stderr, "%s\n", last_err);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    CHECK_STR(advrec_conf_kafka_get(conf, "security.protocol"), "SASL_SSL");
    CHECK_STR(advrec_conf_kafka_get(conf, "sasl.mechanisms"), "SCRAM-SHA-512");
    dump = capture_effective(conf);
    CHECK(strstr(dump, "\nkafka.sasl.password = <redacted>\n") != NULL);
    CHECK(strstr(dump, "CHANGE-ME") == NULL);
    free(dump);
    advrec_conf_destroy(conf);
}

/* Loads text as tmpdir/name into a fresh configuration; the path of the
 * file in *path (static). */
static advrec_conf_t *conf_from(const char *name, const char *text,
                                const char **path)
{
    advrec_conf_t *conf = new_conf();

    *path = write_file(name, text);
    CHECK_INT(load(conf, *path), ADVREC_OK);
    return conf;
}

/* printf into a static buffer: a needle naming a file path. */
__attribute__((format(printf, 1, 2))) static const char *at(const char *fmt,
                                                            ...)
{
    static char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* Where a value was set: file:line, -X, built-in default. */
static void test_origin(void)
{
    const char *path;
    advrec_conf_t *conf = conf_from("origin.conf",
                                    "# x\n"
                                    "model.k = 8\n"
                                    "schema.7 = s.avsc\n",
                                    &path);

    CHECK_STR(advrec_conf_origin(conf, "model.k"), at("%s:2", path));
    CHECK_STR(advrec_conf_origin(conf, "schema.7"), at("%s:3", path));
    CHECK_STR(advrec_conf_origin(conf, "recs.n"), "built-in default");
    CHECK_STR(advrec_conf_origin(conf, "schema.1"), "built-in default");
    CHECK(advrec_conf_origin(conf, "schema.8") == NULL);
    CHECK(advrec_conf_origin(conf, "no.such.key") == NULL);
    CHECK_INT(set(conf, "model.k", "16"), ADVREC_OK);
    CHECK_STR(advrec_conf_origin(conf, "model.k"), "-X");
    /* A refused value leaves the origin of the value kept. */
    CHECK_INT(set(conf, "recs.n", "x"), ADVREC_ERR_CONFIG);
    CHECK_STR(advrec_conf_origin(conf, "recs.n"), "built-in default");
    advrec_conf_destroy(conf);
}

/* state.checkpoint.dir equal to or inside state.dir (after resolving) is
 * refused naming both keys and lines; state.dir inside the checkpoint dir
 * (a daemon started from a checkpoint) is fine. */
static void test_check_state_dirs(void)
{
    const char *path;
    char text[1024], link[600], real[600];
    advrec_conf_t *conf;

    snprintf(text, sizeof(text),
             "state.dir = %s/state\n"
             "state.checkpoint.dir = %s/x/../state/\n",
             tmpdir, tmpdir);
    conf = conf_from("same.conf", text, &path);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:2: state.checkpoint.dir = ", path));
    CHECK_ERR_HAS("is the same directory as state.dir");
    CHECK_ERR_HAS(at("(%s:1: ", path));
    advrec_conf_destroy(conf);

    snprintf(text, sizeof(text),
             "state.dir = %s/state\n"
             "\n"
             "state.checkpoint.dir = %s/state/ckpt\n",
             tmpdir, tmpdir);
    conf = conf_from("inside.conf", text, &path);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:3: state.checkpoint.dir = ", path));
    CHECK_ERR_HAS("is inside state.dir");
    /* A sibling whose name merely starts the same is not inside. */
    CHECK_INT(set(conf, "state.checkpoint.dir", at("%s/state-ckpt", tmpdir)),
              ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    /* Started from a checkpoint: state.dir below the checkpoint dir. */
    CHECK_INT(set(conf, "state.checkpoint.dir", tmpdir), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    /* State in memory: nothing to collide with. */
    CHECK_INT(set(conf, "state.dir", ""), ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    advrec_conf_destroy(conf);

    /* Through a symlink: link -> real, checkpoints in link/ckpt. */
    snprintf(real, sizeof(real), "%s/real", tmpdir);
    snprintf(link, sizeof(link), "%s/link", tmpdir);
    CHECK(mkdir(real, 0700) == 0);
    CHECK(symlink(real, link) == 0);
    conf = new_conf();
    CHECK_INT(set(conf, "state.dir", real), ADVREC_OK);
    CHECK_INT(set(conf, "state.checkpoint.dir", at("%s/link/ckpt", tmpdir)),
              ADVREC_OK);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: state.checkpoint.dir = ");
    CHECK_ERR_HAS("is inside state.dir (-X: ");
    advrec_conf_destroy(conf);
    unlink(link);
    rmdir(real);
}

/* advrec_params_check (what --check-config adds): schema files that cannot
 * be read and ids naming a schema of the wrong kind, each naming the key
 * and the file:line it was set at. */
static void test_check_schemas(void)
{
    const char *src = ADVREC_TEST_SOURCE_DIR "/schemas";
    const char *path;
    char text[1024];
    advrec_conf_t *conf;

    /* The shipped defaults pass. */
    conf = new_conf();
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    advrec_conf_destroy(conf);

    /* A schema.<N> whose file does not exist. */
    conf = conf_from("missing.conf",
                     "\n"
                     "schema.7 = nope/click.avsc\n",
                     &path);
    CHECK_INT(advrec_conf_check(conf, last_err, sizeof(last_err)), ADVREC_OK);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:2: schema.7 = ", path));
    CHECK_ERR_HAS("nope/click.avsc: No such file or directory");
    advrec_conf_destroy(conf);

    /* One that cannot be read: a directory (root reads any file). */
    conf = new_conf();
    CHECK_INT(set(conf, "schema.8", tmpdir), ADVREC_OK);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: schema.8 = ");
    CHECK_ERR_HAS("cannot read");
    advrec_conf_destroy(conf);

    /* schema.dir without the four files: the reader schemas and the
     * built-in schema.1..4 are read from it. */
    conf = conf_from("dir.conf", "schema.dir = empty\n", &path);
    CHECK(mkdir(at("%s/empty", tmpdir), 0700) == 0);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:1: schema.dir = ", path));
    CHECK_ERR_HAS("empty/click.avsc: No such file or directory");
    rmdir(at("%s/empty", tmpdir));
    advrec_conf_destroy(conf);

    /* A Click schema as the Recommendation schema (built-in schema.1). */
    conf = conf_from("rec.conf",
                     "# outputs\n"
                     "\n"
                     "schema.recommendation.id = 1\n",
                     &path);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:3: schema.recommendation.id = 1 names a schema of "
                     "kind click, expected recommendation",
                     path));
    CHECK_ERR_HAS("schema.1 = ");
    CHECK_ERR_HAS("(built in)");
    advrec_conf_destroy(conf);

    /* A Recommendation schema as the Anomaly schema, set with -X. */
    conf = new_conf();
    CHECK_INT(set(conf, "schema.anomaly.id", "3"), ADVREC_OK);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: schema.anomaly.id = 3 names a schema of kind "
                  "recommendation, expected anomaly");
    advrec_conf_destroy(conf);

    /* The input ids too: both the id's line and the schema.<N> line. */
    snprintf(text, sizeof(text),
             "schema.9 = %s/click.avsc\n"
             "schema.purchase.id = 9\n",
             src);
    conf = conf_from("purchase.conf", text, &path);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("%s:2: schema.purchase.id = 9 names a schema of kind "
                     "click, expected purchase",
                     path));
    CHECK_ERR_HAS(at("%s:1: schema.9 = ", path));
    advrec_conf_destroy(conf);

    conf = new_conf();
    CHECK_INT(set(conf, "schema.click.id", "2"), ADVREC_OK);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS("-X: schema.click.id = 2 names a schema of kind purchase, "
                  "expected click");
    advrec_conf_destroy(conf);

    /* A schema.dir set in a file is named for a built-in entry. */
    snprintf(text, sizeof(text),
             "schema.dir = %s\n"
             "schema.anomaly.id = 2\n",
             src);
    conf = conf_from("builtin.conf", text, &path);
    CHECK_INT(advrec_params_check(conf, last_err, sizeof(last_err)),
              ADVREC_ERR_CONFIG);
    CHECK_ERR_HAS(at("(built in, inside schema.dir set at %s:1)", path));
    advrec_conf_destroy(conf);
}

static void test_destroy_null(void)
{
    advrec_conf_destroy(NULL);
}

int main(void)
{
    int rc;

    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_defaults);
    RUN(test_bool);
    RUN(test_int);
    RUN(test_double);
    RUN(test_string);
    RUN(test_enum);
    RUN(test_instance_id_and_missing_policy);
    RUN(test_size);
    RUN(test_ranges);
    RUN(test_unknown_key_names_file_line_and_guess);
    RUN(test_bad_value_in_file);
    RUN(test_bad_line_7_names_line_7);
    RUN(test_quotes_and_whitespace);
    RUN(test_kafka_passthrough_in_order);
    RUN(test_schema_map);
    RUN(test_cli_overrides_file);
    RUN(test_check_across_keys);
    RUN(test_origin);
    RUN(test_check_state_dirs);
    RUN(test_check_schemas);
    RUN(test_committed_reference_is_current);
    RUN(test_reference_lists_every_key);
    RUN(test_reference_and_dump_reload);
    RUN(test_secrets_absent_from_dump);
    RUN(test_schema_registry_keys);
    RUN(test_dump_keeps_long_strings);
    RUN(test_secrets_absent_from_errors);
    RUN(test_sasl_ssl_example_loads);
    RUN(test_destroy_null);
    rc = DONE();
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return rc;
}
