/*
 * config.c - advrecd's configuration: setting a key (from a file line or
 * -X) to a value with its range check, error messages with file:line and a
 * did-you-mean, kafka.* and schema.<N>, and where each value was set. The
 * key table itself is in config_table.c, the text of one value (bool,
 * integer, size, duration, number, Kafka name) in config_value.c, the
 * checks across keys in config_check.c, the dump and the generated
 * reference in config_write.c; config_int.h is what they share.
 *
 * Owns, per advrec_conf_t, its strings, the kafka.* pairs and the
 * schema.<N> map.
 *
 * To add a key: one field in advrec_conf_t (config.h), one row in
 * config_table.c, then regenerate the two committed files (the unit test
 * says how).
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
#include <unistd.h>

#include "config_int.h"
#include "log.h"
#include "redact.h"

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

const char *advrec_version(void)
{
    return ADVREC_VERSION;
}

const char *advrec_conf_key(size_t i)
{
    return i < advrec_conf__rows_cnt ? advrec_conf__rows[i].name : NULL;
}

/*
 * Small helpers
 */

static const conf_row_t *row_find(const char *name)
{
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++)
        if (strcmp(advrec_conf__rows[i].name, name) == 0)
            return &advrec_conf__rows[i];
    return NULL;
}

/* dir + "/" + file, or a copy of file when it is absolute or dir is NULL.
 * Returns a new string (caller frees) or NULL when out of memory. */
char *advrec_conf__path_join(const char *dir, const char *file)
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
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
        size_t d = edit_distance(name, advrec_conf__rows[i].name);
        if (d < best_d) {
            best_d = d;
            best = advrec_conf__rows[i].name;
        }
    }
    return best_d <= limit ? best : NULL;
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

/* Maps id to path, in_schema_dir and origin (all three taken over: freed
 * on error too). Replaces an existing entry in place, keeping its
 * position. */
static advrec_err_t schema_put(advrec_conf_t *conf, int32_t id, char *path,
                               char *in_schema_dir, char *origin)
{
    advrec_conf_schema_t *s = schema_find(conf, id);

    if (!s) {
        if (conf->schemas_cnt == conf->schemas_size) {
            size_t size = conf->schemas_size ? conf->schemas_size * 2 : 8;
            void *p = realloc(conf->schemas, size * sizeof(*conf->schemas));
            if (!p) {
                free(path);
                free(in_schema_dir);
                free(origin);
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
        free(s->origin);
    }
    s->path = path;
    s->in_schema_dir = in_schema_dir;
    s->origin = origin;
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
        if (!(path = advrec_conf__path_join(dir, s->in_schema_dir)))
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
                              sizeof(rkerr)) != RD_KAFKA_CONF_OK) {
            /* librdkafka may quote the value back: not a secret's. */
            if (advrec_redact_is_secret(kv->name))
                advrec_redact_scrub(rkerr, sizeof(rkerr), kv->value);
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "%s: kafka.%s: %s", kv->origin, kv->name,
                                 rkerr);
        }
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
        if ((err = advrec_conf__parse_bool(value, &b, why, why_size)))
            return err;
        *(bool *)field_ptr(conf, row) = b;
        return ADVREC_OK;
    case CONF_INT:
    case CONF_SIZE:
    case CONF_DURATION:
        err = row->type == CONF_INT
                  ? advrec_conf__parse_int(value, &i64, why, why_size)
              : row->type == CONF_SIZE
                  ? advrec_conf_parse_size(value, &i64, why, why_size)
                  : advrec_conf_parse_duration(value, &i64, why, why_size);
        if (err)
            return err;
        if (i64 < row->imin || i64 > row->imax)
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "out of range [%" PRId64 ", %" PRId64 "]",
                                 row->imin, row->imax);
        *(int64_t *)field_ptr(conf, row) = i64;
        return ADVREC_OK;
    case CONF_DOUBLE:
        if ((err = advrec_conf__parse_double(value, &d, why, why_size)))
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
        advrec_conf__words_join(row->words, ", ", words, sizeof(words));
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "expected one of %s", words);
    case CONF_STRING:
        if ((int64_t)strlen(value) < row->imin)
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "must not be empty");
        if ((row->flags & F_TOPIC) &&
            (err = advrec_conf__check_name(value, "topic name", why, why_size)))
            return err;
        if ((row->flags & F_KNAME) && *value &&
            (err = advrec_conf__check_name(value, "group.instance.id", why,
                                           why_size)))
            return err;
        s = (row->flags & F_PATH) && *value
                ? advrec_conf__path_join(base_dir, value)
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
    bool builtin;         /* a default from the table: no origin kept */
} conf_origin_t;

#define BUILTIN_ORIGIN "built-in default"

/* The origin as kept with a value ("file:line" or "-X") in *out, NULL for
 * a built-in default. ADVREC_ERR_NOMEM. */
static advrec_err_t origin_dup(const conf_origin_t *origin, char **out)
{
    *out = NULL;
    if (origin->builtin)
        return ADVREC_OK;
    if (!origin->file)
        *out = strdup("-X");
    else if (asprintf(out, "%s:%u", origin->file, origin->line) < 0)
        *out = NULL;
    return *out ? ADVREC_OK : ADVREC_ERR_NOMEM;
}

/* Formats the context of an error: "file:line: " or "-X key=value: ". The
 * value of a secret key is never echoed (redact.h). */
static advrec_err_t origin_err(advrec_err_t err, const conf_origin_t *origin,
                               const char *key, const char *value,
                               const char *why, bool show_key, char *errstr,
                               size_t errstr_size)
{
    value = advrec_redact_value(key, value);
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
        char **slot = &conf->origins[row - advrec_conf__rows], *where;

        if (origin_dup(origin, &where))
            return origin_err(ADVREC_ERR_NOMEM, origin, key, value,
                              "out of memory", false, errstr, errstr_size);
        err = row_set(conf, row, value, origin->base_dir, why, sizeof(why));
        if (err) {
            free(where);
            return origin_err(err, origin, key, value, why, true, errstr,
                              errstr_size);
        }
        free(*slot);
        *slot = where;
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
        char *path, *where;

        if (!in_range)
            return origin_err(ADVREC_ERR_CONFIG, origin, key, value,
                              "a schema id must be in [1, 2147483647]", true,
                              errstr, errstr_size);
        if (!*value)
            return origin_err(ADVREC_ERR_CONFIG, origin, key, value,
                              "expected the path of an .avsc file", true,
                              errstr, errstr_size);
        path = advrec_conf__path_join(origin->base_dir, value);
        if (origin_dup(origin, &where) || !path) {
            free(path);
            free(where);
            path = NULL;
        }
        if (!path || schema_put(conf, (int32_t)id, path, NULL, where))
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
    conf_origin_t origin = {NULL, 0, NULL, false};

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
                             "-X %s: expected key=value",
                             advrec_redact_value(arg, arg));
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
    conf_origin_t origin = {path, 0, NULL, false};
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
            /* "kafka.sasl.password: x" must not print x either. */
            err = advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                "%s:%u: expected \"key = value\", got "
                                "\"%.80s\"",
                                path, origin.line, advrec_redact_value(s, s));
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
    conf_origin_t origin = {BUILTIN_ORIGIN, 0, NULL, true};
    advrec_conf_t *conf;

    if (!(conf = calloc(1, sizeof(*conf))) ||
        !(conf->origins = calloc(advrec_conf__rows_cnt, sizeof(char *)))) {
        free(conf);
        advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* Defaults go through the same parser as any value, so a default that
     * does not parse or is out of its own range fails here (and in the unit
     * test), never silently. */
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++)
        if (conf_set_origin(conf, advrec_conf__rows[i].name,
                            advrec_conf__rows[i].def, &origin, errstr,
                            errstr_size))
            goto fail;
    for (size_t i = 0; i < advrec_conf__default_schemas_cnt; i++) {
        char *file = strdup(advrec_conf__default_schemas[i].file);
        char *path = advrec_conf__path_join(
            advrec_conf_schema_dir(conf), advrec_conf__default_schemas[i].file);

        if (!file || !path) {
            free(file);
            free(path);
            advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                          "out of memory");
            goto fail;
        }
        if (schema_put(conf, advrec_conf__default_schemas[i].id, path, file,
                       NULL)) {
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
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++)
        if (advrec_conf__rows[i].type == CONF_STRING)
            free(*(char **)field_ptr(conf, &advrec_conf__rows[i]));
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        free(conf->kafka[i].name);
        free(conf->kafka[i].value);
        free(conf->kafka[i].origin);
    }
    free(conf->kafka);
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        free(conf->schemas[i].path);
        free(conf->schemas[i].in_schema_dir);
        free(conf->schemas[i].origin);
    }
    free(conf->schemas);
    if (conf->origins)
        for (size_t i = 0; i < advrec_conf__rows_cnt; i++)
            free(conf->origins[i]);
    free(conf->origins);
    free(conf);
}

const char *advrec_conf_origin(const advrec_conf_t *conf, const char *key)
{
    const conf_row_t *row = row_find(key);
    const advrec_conf_schema_t *s;
    int64_t id;
    bool in_range;

    if (row) {
        const char *where = conf->origins[row - advrec_conf__rows];
        return where ? where : BUILTIN_ORIGIN;
    }
    if (schema_key(key, &id, &in_range) && in_range &&
        (s = schema_find(conf, (int32_t)id)))
        return s->origin ? s->origin : BUILTIN_ORIGIN;
    return NULL;
}
