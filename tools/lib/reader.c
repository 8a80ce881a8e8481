/*
 * reader.c - event files to advrec_event_t, streamed line by line.
 *
 * The reader owns its FILE (unless it is stdin), one getline() buffer reused
 * for every line, and for multi-event lines either the parsed JSON document
 * (OTTO) or a cursor into the line buffer (Amazon). Per event nothing is
 * allocated; per OTTO line jansson allocates the document, which is freed
 * when the line's last event has been returned.
 *
 * Each format's line parser either yields events or reports the whole line as
 * malformed with a reason; advrec_reader_next() prefixes "file:line: " and
 * notes when the line was the last one and had no newline (a cut-off file).
 */
#include "reader.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

/* 1990-01-01 and 2100-01-01, in ms since the epoch. */
#define READER_MIN_TS_MS INT64_C(631152000000)
#define READER_MAX_TS_MS INT64_C(4102444800000)
/* 2014-01-01T00:00:00Z: within the Amazon review data's own years. */
#define READER_AMAZON_BASE_TS_MS INT64_C(1388534400000)

/* How many bytes of an offending field are quoted in a reason. */
#define READER_QUOTE_MAX 40

/* One field of a split line: a slice of the line buffer. */
typedef struct reader_field_s {
    const char *p;
    size_t len;
} reader_field_t;

#define READER_FIELDS_MAX 8

struct advrec_reader_s {
    char *path;
    FILE *fp;
    int own_fp;
    advrec_reader_conf_t conf;
    advrec_reader_format_t format;

    char *line; /* getline() buffer, line_cap bytes */
    size_t line_cap;
    size_t line_len;     /* current line, without "\n" or "\r\n" */
    int line_no_newline; /* the current line ended at EOF without "\n" */
    int line_pending;    /* line holds a line read but not yet parsed */
    int at_end;

    uint64_t lineno;
    uint64_t skipped;
    uint64_t filtered;
    uint64_t events;
    int64_t bytes_read;
    int64_t size;

    /* OTTO: the current line's document and the next event index. */
    json_t *otto_doc;
    json_t *otto_events;
    size_t otto_next;
    char otto_user[ADVREC_ID_MAX];

    /* Amazon: the current line's user and where the next item starts. */
    char amazon_user[ADVREC_ID_MAX];
    size_t amazon_pos; /* offset in line; == line_len when done */
    int amazon_active;
    int64_t amazon_seq; /* events of this file so far (ratings too) */
};

void advrec_reader_conf_init(advrec_reader_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->format = ADVREC_READER_AUTO;
    conf->cart = ADVREC_READER_MAP_CLICK;
    conf->fav = ADVREC_READER_MAP_CLICK;
    conf->min_rating = 0;
    conf->amazon_base_ts_ms = READER_AMAZON_BASE_TS_MS;
    conf->amazon_step_ms = 1000;
    conf->min_ts_ms = READER_MIN_TS_MS;
    conf->max_ts_ms = READER_MAX_TS_MS;
}

static const char *const format_names[] = {
    [ADVREC_READER_AUTO] = "auto",
    [ADVREC_READER_TAOBAO] = "taobao",
    [ADVREC_READER_MOVIELENS] = "movielens",
    [ADVREC_READER_OTTO] = "otto",
    [ADVREC_READER_CSV] = "csv",
    [ADVREC_READER_AMAZON] = "amazon",
    [ADVREC_READER_SESSION] = "session",
    [ADVREC_READER_RATINGS] = "ratings",
};

static const char *const map_names[] = {
    [ADVREC_READER_MAP_CLICK] = "click",
    [ADVREC_READER_MAP_PURCHASE] = "purchase",
    [ADVREC_READER_MAP_SKIP] = "skip",
};

advrec_err_t advrec_reader_format_parse(const char *name,
                                        advrec_reader_format_t *format)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
         i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (advrec_reader_format_t)i;
            return ADVREC_OK;
        }
    }
    return ADVREC_ERR_INVALID_ARG;
}

const char *advrec_reader_format_name(advrec_reader_format_t format)
{
    if ((unsigned)format >= sizeof(format_names) / sizeof(format_names[0]))
        return "?";
    return format_names[format];
}

advrec_err_t advrec_reader_map_parse(const char *name, advrec_reader_map_t *map)
{
    for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
        if (strcmp(name, map_names[i]) == 0) {
            *map = (advrec_reader_map_t)i;
            return ADVREC_OK;
        }
    }
    return ADVREC_ERR_INVALID_ARG;
}

const char *advrec_reader_map_name(advrec_reader_map_t map)
{
    if ((unsigned)map >= sizeof(map_names) / sizeof(map_names[0]))
        return "?";
    return map_names[map];
}

/* Splits len bytes at s on sep into at most max fields; returns how many
 * fields the line has (which may exceed max: only max are filled). */
static size_t split(const char *s, size_t len, char sep, reader_field_t *f,
                    size_t max)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == sep) {
            if (n < max) {
                f[n].p = s + start;
                f[n].len = i - start;
            }
            n++;
            start = i + 1;
        }
    }
    return n;
}

static int field_is(const reader_field_t *f, const char *word)
{
    size_t n = strlen(word);
    return f->len == n && memcmp(f->p, word, n) == 0;
}

/* A non-negative decimal integer that fits int64_t; -1 if it is not. */
static int parse_u63(const reader_field_t *f, int64_t *out)
{
    int64_t v = 0;

    if (f->len == 0)
        return -1;
    for (size_t i = 0; i < f->len; i++) {
        int d = f->p[i] - '0';
        if (d < 0 || d > 9)
            return -1;
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* The reason a parser gives; advrec_reader_next() adds file:line. Returns
 * -1, so a parser fails in one line: `return REASON("...", ...)`. */
__attribute__((format(printf, 3, 4))) static int
reason_fmt(char *reason, size_t reason_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, reason_size, fmt, ap);
    va_end(ap);
    return -1;
}

#define REASON(...) reason_fmt(reason, reason_size, __VA_ARGS__)

static int set_id(char *dst, const reader_field_t *f, const char *what,
                  char *reason, size_t reason_size)
{
    if (f->len == 0)
        return REASON("empty %s", what);
    if (advrec_event_set_str(dst, ADVREC_ID_MAX, f->p, f->len) != ADVREC_OK) {
        if (f->len >= ADVREC_ID_MAX)
            return REASON("%s is %zu bytes long (at most %d allowed)", what,
                          f->len, ADVREC_ID_MAX - 1);
        return REASON("%s holds a NUL byte", what);
    }
    return 0;
}

/* Formats a ms bound as a UTC date, for reasons a person reads. */
static const char *ms_date(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, size, "%" PRId64 " ms", ms);
    return buf;
}

static int quote_len(const reader_field_t *f)
{
    return (int)(f->len < READER_QUOTE_MAX ? f->len : READER_QUOTE_MAX);
}

/* Seconds with an optional decimal fraction ("1396321232.517"), in ms:
 * digits past the third decimal are dropped. -1 when malformed or beyond
 * int64_t ms. */
static int parse_seconds_ms(const reader_field_t *f, int64_t *ms)
{
    const char *dot = memchr(f->p, '.', f->len);
    reader_field_t whole = *f;
    int64_t s, frac = 0;
    size_t i, n = 0;

    if (dot) {
        whole.len = (size_t)(dot - f->p);
        n = f->len - whole.len - 1;
        if (n == 0)
            return -1;
    }
    if (parse_u63(&whole, &s) < 0 || s > INT64_MAX / 1000 - 1)
        return -1;
    for (i = 0; i < n; i++) {
        int d = dot[1 + i] - '0';
        if (d < 0 || d > 9)
            return -1;
        if (i < 3)
            frac = frac * 10 + d;
    }
    for (; i < 3; i++)
        frac *= 10;
    *ms = s * 1000 + frac;
    return 0;
}

/* A timestamp field in unit_ms (1000 for seconds, 1 for ms; 0 for seconds
 * with an optional fraction), converted to ms and checked against the
 * plausible range. */
static int check_ts(const advrec_reader_t *reader, const reader_field_t *f,
                    int64_t unit_ms, int64_t *ts_ms, char *reason,
                    size_t reason_size)
{
    char lo[32], hi[32];
    int64_t v = 0, ms = 0;

    if (unit_ms == 0 ? parse_seconds_ms(f, &ms) < 0 : parse_u63(f, &v) < 0)
        return REASON("timestamp \"%.*s\" is not a non-negative %s",
                      quote_len(f), f->p,
                      unit_ms == 0 ? "number of seconds" : "integer");
    if (unit_ms && v <= INT64_MAX / unit_ms)
        ms = v * unit_ms;
    if ((unit_ms && v > INT64_MAX / unit_ms) || ms < reader->conf.min_ts_ms ||
        ms > reader->conf.max_ts_ms)
        return REASON("timestamp %.*s %s is not between %s and %s",
                      quote_len(f), f->p, unit_ms == 1 ? "ms" : "s",
                      ms_date(reader->conf.min_ts_ms, lo, sizeof(lo)),
                      ms_date(reader->conf.max_ts_ms, hi, sizeof(hi)));
    *ts_ms = ms;
    return 0;
}

/* Applies a behaviour mapping: 1 = keep with *type set, 0 = skip. */
static int apply_map(advrec_reader_map_t map, advrec_event_type_t *type)
{
    switch (map) {
    case ADVREC_READER_MAP_CLICK:
        *type = ADVREC_EVENT_CLICK;
        return 1;
    case ADVREC_READER_MAP_PURCHASE:
        *type = ADVREC_EVENT_PURCHASE;
        return 1;
    case ADVREC_READER_MAP_SKIP:
        break;
    }
    return 0;
}

/*
 * Line parsers for one-event formats: return 1 with *ev filled, 0 when the
 * record is well-formed but dropped by the configuration, -1 with reason.
 */
static int parse_taobao(advrec_reader_t *reader, advrec_event_t *ev,
                        char *reason, size_t reason_size)
{
    reader_field_t f[READER_FIELDS_MAX];
    size_t n = split(reader->line, reader->line_len, ',', f, 5);

    if (n != 5)
        return REASON("expected 5 comma-separated fields "
                      "(user,item,category,behavior,timestamp), found %zu",
                      n);
    if (set_id(ev->user_id, &f[0], "user id", reason, reason_size) < 0 ||
        set_id(ev->item_id, &f[1], "item id", reason, reason_size) < 0)
        return -1;
    if (field_is(&f[3], "pv")) {
        ev->type = ADVREC_EVENT_CLICK;
    } else if (field_is(&f[3], "buy")) {
        ev->type = ADVREC_EVENT_PURCHASE;
    } else if (field_is(&f[3], "cart") || field_is(&f[3], "fav")) {
        /* Checked before the mapping so a skipped line is still validated. */
    } else {
        return REASON("unknown behavior \"%.*s\" (pv, buy, cart, fav)",
                      quote_len(&f[3]), f[3].p);
    }
    if (check_ts(reader, &f[4], 1000, &ev->ts_ms, reason, reason_size) < 0)
        return -1;
    if (field_is(&f[3], "cart"))
        return apply_map(reader->conf.cart, &ev->type);
    if (field_is(&f[3], "fav"))
        return apply_map(reader->conf.fav, &ev->type);
    return 1;
}

static int parse_movielens(advrec_reader_t *reader, advrec_event_t *ev,
                           char *reason, size_t reason_size)
{
    reader_field_t f[READER_FIELDS_MAX];
    size_t n = split(reader->line, reader->line_len, '\t', f, 4);
    int64_t rating;

    if (n != 4)
        return REASON("expected 4 tab-separated fields "
                      "(user, item, rating, timestamp), found %zu",
                      n);
    if (set_id(ev->user_id, &f[0], "user id", reason, reason_size) < 0 ||
        set_id(ev->item_id, &f[1], "item id", reason, reason_size) < 0)
        return -1;
    if (parse_u63(&f[2], &rating) < 0)
        return REASON("rating \"%.*s\" is not a non-negative integer",
                      quote_len(&f[2]), f[2].p);
    if (check_ts(reader, &f[3], 1000, &ev->ts_ms, reason, reason_size) < 0)
        return -1;
    ev->type = ADVREC_EVENT_CLICK;
    return rating >= reader->conf.min_rating ? 1 : 0;
}

static int parse_csv(advrec_reader_t *reader, advrec_event_t *ev, char *reason,
                     size_t reason_size)
{
    reader_field_t f[READER_FIELDS_MAX];
    size_t n = split(reader->line, reader->line_len, ',', f, 4);
    int64_t ts;

    if (n != 4)
        return REASON("expected 4 comma-separated fields "
                      "(user,item,type,ts_ms), found %zu",
                      n);
    /* The optional header: line 1 whose type and ts are not data. */
    if (reader->lineno == 1 && !field_is(&f[2], "click") &&
        !field_is(&f[2], "purchase") && parse_u63(&f[3], &ts) < 0)
        return 0;
    if (set_id(ev->user_id, &f[0], "user id", reason, reason_size) < 0 ||
        set_id(ev->item_id, &f[1], "item id", reason, reason_size) < 0)
        return -1;
    if (field_is(&f[2], "click"))
        ev->type = ADVREC_EVENT_CLICK;
    else if (field_is(&f[2], "purchase"))
        ev->type = ADVREC_EVENT_PURCHASE;
    else
        return REASON("unknown type \"%.*s\" (click, purchase)",
                      quote_len(&f[2]), f[2].p);
    if (check_ts(reader, &f[3], 1, &ev->ts_ms, reason, reason_size) < 0)
        return -1;
    return 1;
}

/* Session clicks as session-based recommenders prepare the RecSys
 * Challenge 2015 (yoochoose) data: SessionId<TAB>ItemId<TAB>Time, time in
 * seconds with a fraction, an optional header line. A session is a user. */
static int parse_session(advrec_reader_t *reader, advrec_event_t *ev,
                         char *reason, size_t reason_size)
{
    reader_field_t f[READER_FIELDS_MAX];
    size_t n = split(reader->line, reader->line_len, '\t', f, 3);
    int64_t ts;

    if (n != 3)
        return REASON("expected 3 tab-separated fields "
                      "(session id, item id, time in s), found %zu",
                      n);
    /* The optional header: line 1 whose time is not a number. */
    if (reader->lineno == 1 && parse_seconds_ms(&f[2], &ts) < 0)
        return 0;
    if (set_id(ev->user_id, &f[0], "session id", reason, reason_size) < 0 ||
        set_id(ev->item_id, &f[1], "item id", reason, reason_size) < 0)
        return -1;
    if (check_ts(reader, &f[2], 0, &ev->ts_ms, reason, reason_size) < 0)
        return -1;
    ev->type = ADVREC_EVENT_CLICK;
    return 1;
}

/* An OTTO id: a JSON integer >= 0 or a non-empty string. */
static int otto_id(char *dst, json_t *v, const char *what, char *reason,
                   size_t reason_size)
{
    char buf[32];
    reader_field_t f;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return REASON("%s is negative", what);
        f.len = (size_t)snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                                 json_integer_value(v));
        f.p = buf;
    } else if (json_is_string(v)) {
        f.p = json_string_value(v);
        f.len = json_string_length(v);
    } else {
        return REASON("%s is missing or not an integer or string", what);
    }
    return set_id(dst, &f, what, reason, reason_size);
}

/*
 * Parses and checks a whole OTTO line; on success the reader holds the
 * document and the events are returned by otto_next().
 */
static int otto_load(advrec_reader_t *reader, char *reason, size_t reason_size)
{
    json_error_t jerr;
    json_t *doc, *events, *e;
    size_t i;
    char id[ADVREC_ID_MAX];

    doc = json_loadb(reader->line, reader->line_len, JSON_REJECT_DUPLICATES,
                     &jerr);
    if (!doc)
        return REASON("not JSON: %s (column %d)", jerr.text, jerr.column);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return REASON("not a JSON object");
    }
    if (otto_id(reader->otto_user, json_object_get(doc, "session"),
                "\"session\"", reason, reason_size) < 0)
        goto fail;
    events = json_object_get(doc, "events");
    if (!json_is_array(events)) {
        REASON("\"events\" is missing or not an array");
        goto fail;
    }
    json_array_foreach(events, i, e)
    {
        json_t *type = json_object_get(e, "type");
        json_t *ts = json_object_get(e, "ts");
        const char *t;
        char what[48];

        snprintf(what, sizeof(what), "events[%zu].aid", i);
        if (!json_is_object(e)) {
            REASON("events[%zu] is not an object", i);
            goto fail;
        }
        if (otto_id(id, json_object_get(e, "aid"), what, reason, reason_size) <
            0)
            goto fail;
        if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
            REASON("events[%zu].ts is missing or not a non-negative "
                   "integer",
                   i);
            goto fail;
        }
        if (json_integer_value(ts) < reader->conf.min_ts_ms ||
            json_integer_value(ts) > reader->conf.max_ts_ms) {
            char lo[32], hi[32];
            REASON("events[%zu].ts %" JSON_INTEGER_FORMAT
                   " ms is not between %s and %s",
                   i, json_integer_value(ts),
                   ms_date(reader->conf.min_ts_ms, lo, sizeof(lo)),
                   ms_date(reader->conf.max_ts_ms, hi, sizeof(hi)));
            goto fail;
        }
        t = json_string_value(type);
        if (!t || (strcmp(t, "clicks") != 0 && strcmp(t, "carts") != 0 &&
                   strcmp(t, "orders") != 0)) {
            REASON("events[%zu].type is not \"clicks\", \"carts\" or "
                   "\"orders\"",
                   i);
            goto fail;
        }
    }
    reader->otto_doc = doc;
    reader->otto_events = events;
    reader->otto_next = 0;
    return 0;

fail:
    json_decref(doc);
    return -1;
}

/* The next event of the loaded OTTO line: 1 = *ev filled, 0 = line done.
 * Everything was checked by otto_load(), so nothing here fails. */
static int otto_next(advrec_reader_t *reader, advrec_event_t *ev)
{
    char reason[8];

    while (reader->otto_doc &&
           reader->otto_next < json_array_size(reader->otto_events)) {
        json_t *e = json_array_get(reader->otto_events, reader->otto_next++);
        const char *t = json_string_value(json_object_get(e, "type"));

        if (strcmp(t, "clicks") == 0) {
            ev->type = ADVREC_EVENT_CLICK;
        } else if (strcmp(t, "orders") == 0) {
            ev->type = ADVREC_EVENT_PURCHASE;
        } else if (!apply_map(reader->conf.cart, &ev->type)) {
            reader->filtered++;
            continue;
        }
        memcpy(ev->user_id, reader->otto_user, sizeof(ev->user_id));
        memcpy(ev->session_id, reader->otto_user, sizeof(ev->session_id));
        otto_id(ev->item_id, json_object_get(e, "aid"), "aid", reason,
                sizeof(reason));
        ev->ts_ms = (int64_t)json_integer_value(json_object_get(e, "ts"));
        return 1;
    }
    json_decref(reader->otto_doc);
    reader->otto_doc = NULL;
    reader->otto_events = NULL;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next whitespace-separated token at or after *pos; 0 at the end. */
static int next_token(const char *s, size_t len, size_t *pos, reader_field_t *f)
{
    size_t i = *pos;

    while (i < len && is_blank(s[i]))
        i++;
    if (i == len)
        return 0;
    f->p = s + i;
    f->len = 0;
    while (i < len && !is_blank(s[i])) {
        i++;
        f->len++;
    }
    *pos = i;
    return 1;
}

/* The time of the file's next event where the format has none (Amazon, a
 * ratings line without one): its place in the file (reader.h). */
static int64_t synth_ts(advrec_reader_t *reader)
{
    return reader->conf.amazon_base_ts_ms +
           reader->amazon_seq++ * reader->conf.amazon_step_ms;
}

/*
 * A ratings line: user, item, rating (a non-negative number, a decimal
 * fraction allowed: FilmTrust's 3.5) and an optional Unix time in
 * seconds, separated by blanks (FilmTrust, Epinions and the like). Without
 * the time an event's time is its place in the file, as for Amazon.
 */
static int parse_ratings(advrec_reader_t *reader, advrec_event_t *ev,
                         char *reason, size_t reason_size)
{
    reader_field_t f[5];
    size_t n = 0, pos = 0;
    int64_t rating_milli;

    while (n < 5 && next_token(reader->line, reader->line_len, &pos, &f[n]))
        n++;
    if (n != 3 && n != 4)
        return REASON("expected 3 or 4 blank-separated fields (user, item, "
                      "rating[, timestamp]), found %s%zu",
                      n == 5 ? "more than " : "", n == 5 ? (size_t)4 : n);
    if (set_id(ev->user_id, &f[0], "user id", reason, reason_size) < 0 ||
        set_id(ev->item_id, &f[1], "item id", reason, reason_size) < 0)
        return -1;
    /* Seconds' fixed-point parser, used for a rating's thousandths. */
    if (parse_seconds_ms(&f[2], &rating_milli) < 0)
        return REASON("rating \"%.*s\" is not a non-negative number",
                      quote_len(&f[2]), f[2].p);
    if (n == 4) {
        if (check_ts(reader, &f[3], 1000, &ev->ts_ms, reason, reason_size) < 0)
            return -1;
        reader->amazon_seq++;
    } else {
        ev->ts_ms = synth_ts(reader);
    }
    ev->type = ADVREC_EVENT_CLICK;
    return rating_milli >= (int64_t)reader->conf.min_rating * 1000 ? 1 : 0;
}

/* Checks a whole Amazon line (user, then one or more items). */
static int amazon_load(advrec_reader_t *reader, char *reason,
                       size_t reason_size)
{
    reader_field_t f;
    size_t pos = 0, n = 0;
    char id[ADVREC_ID_MAX];

    if (!next_token(reader->line, reader->line_len, &pos, &f))
        return REASON("empty line");
    if (set_id(reader->amazon_user, &f, "user id", reason, reason_size) < 0)
        return -1;
    reader->amazon_pos = pos;
    while (next_token(reader->line, reader->line_len, &pos, &f)) {
        char what[40];
        n++;
        snprintf(what, sizeof(what), "item %zu", n);
        if (set_id(id, &f, what, reason, reason_size) < 0)
            return -1;
    }
    if (n == 0)
        return REASON("expected a user followed by at least one item");
    reader->amazon_active = 1;
    return 0;
}

static int amazon_next(advrec_reader_t *reader, advrec_event_t *ev)
{
    reader_field_t f;

    if (!reader->amazon_active)
        return 0;
    if (!next_token(reader->line, reader->line_len, &reader->amazon_pos, &f)) {
        reader->amazon_active = 0;
        return 0;
    }
    ev->type = ADVREC_EVENT_CLICK;
    memcpy(ev->user_id, reader->amazon_user, sizeof(ev->user_id));
    memcpy(ev->item_id, f.p, f.len); /* fits: checked by amazon_load() */
    ev->item_id[f.len] = '\0';
    ev->ts_ms = synth_ts(reader);
    return 1;
}

advrec_reader_format_t advrec_reader_detect_line(const char *line, size_t len)
{
    reader_field_t f[READER_FIELDS_MAX];
    size_t n;

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0)
        return ADVREC_READER_AUTO;
    if (line[0] == '{')
        return ADVREC_READER_OTTO;
    n = split(line, len, '\t', f, READER_FIELDS_MAX);
    if (n == 4)
        return ADVREC_READER_MOVIELENS;
    if (n == 3)
        return ADVREC_READER_SESSION;
    n = split(line, len, ',', f, READER_FIELDS_MAX);
    if (n == 5)
        return ADVREC_READER_TAOBAO;
    if (n == 4)
        return ADVREC_READER_CSV;
    if (n == 1 && memchr(line, ' ', len))
        return ADVREC_READER_AMAZON;
    return ADVREC_READER_AUTO;
}

/*
 * Reads the next line into reader->line, without its "\n" or "\r\n".
 * Returns 1 with a line, 0 at the end of input, -1 on a read error.
 */
static int read_line(advrec_reader_t *reader, char *errstr, size_t errstr_size)
{
    ssize_t n;

    errno = 0;
    n = getline(&reader->line, &reader->line_cap, reader->fp);
    if (n < 0) {
        if (ferror(reader->fp)) {
            advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                          "%s:%" PRIu64 ": read failed: %s", reader->path,
                          reader->lineno + 1, strerror(errno ? errno : EIO));
            return -1;
        }
        return 0;
    }
    reader->lineno++;
    reader->bytes_read += n;
    reader->line_len = (size_t)n;
    reader->line_no_newline = 1;
    if (reader->line_len > 0 && reader->line[reader->line_len - 1] == '\n') {
        reader->line_len--;
        reader->line_no_newline = 0;
    }
    if (reader->line_len > 0 && reader->line[reader->line_len - 1] == '\r')
        reader->line_len--;
    reader->line[reader->line_len] = '\0';
    return 1;
}

static int line_is_blank(const advrec_reader_t *reader)
{
    for (size_t i = 0; i < reader->line_len; i++)
        if (!is_blank(reader->line[i]))
            return 0;
    return 1;
}

advrec_err_t advrec_reader_new(advrec_reader_t **readerp, const char *path,
                               const advrec_reader_conf_t *conf, char *errstr,
                               size_t errstr_size)
{
    advrec_reader_t *reader;
    struct stat st;
    advrec_err_t err;
    int r;

    *readerp = NULL;
    reader = calloc(1, sizeof(*reader));
    if (!reader)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "%s: out of memory", path);
    if (conf)
        reader->conf = *conf;
    else
        advrec_reader_conf_init(&reader->conf);
    reader->format = reader->conf.format;
    reader->size = -1;
    reader->path = strdup(path);
    if (!reader->path) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "%s: out of memory", path);
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        reader->fp = stdin;
    } else {
        reader->fp = fopen(path, "r");
        if (!reader->fp) {
            err = advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                                "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        reader->own_fp = 1;
    }
    if (fstat(fileno(reader->fp), &st) == 0 && S_ISREG(st.st_mode))
        reader->size = (int64_t)st.st_size;

    if (reader->format == ADVREC_READER_AUTO) {
        /* The first non-blank line decides, and stays pending so that it is
         * also read as the first record: stdin cannot be rewound. */
        while ((r = read_line(reader, errstr, errstr_size)) == 1 &&
               line_is_blank(reader))
            ;
        if (r < 0) {
            err = ADVREC_ERR_IO;
            goto fail;
        }
        if (r == 1) {
            reader->format =
                advrec_reader_detect_line(reader->line, reader->line_len);
            if (reader->format == ADVREC_READER_AUTO) {
                err = advrec_seterr(
                    ADVREC_ERR_PARSE, errstr, errstr_size,
                    "%s:%" PRIu64 ": cannot tell the format from this line; "
                    "name it (taobao, movielens, otto, csv, amazon)",
                    path, reader->lineno);
                goto fail;
            }
            reader->line_pending = 1;
        } else {
            reader->at_end = 1;
        }
    }
    *readerp = reader;
    return ADVREC_OK;

fail:
    advrec_reader_destroy(reader);
    return err;
}

/* Reports the current line as malformed: "file:line: reason". */
static advrec_err_t reader_malformed(advrec_reader_t *reader,
                                     const char *reason, char *errstr,
                                     size_t errstr_size)
{
    reader->skipped++;
    return advrec_seterr(
        ADVREC_ERR_PARSE, errstr, errstr_size, "%s:%" PRIu64 ": %s%s",
        reader->path, reader->lineno, reason,
        reader->line_no_newline ? " (last line, no newline at end of file: "
                                  "truncated?)"
                                : "");
}

advrec_err_t advrec_reader_next(advrec_reader_t *reader, advrec_event_t *ev,
                                char *errstr, size_t errstr_size)
{
    char reason[256];
    int r;

    for (;;) {
        advrec_event_clear(ev);
        /* Events left over from a multi-event line come first. */
        if (reader->otto_doc && otto_next(reader, ev)) {
            reader->events++;
            return ADVREC_OK;
        }
        if (reader->amazon_active && amazon_next(reader, ev)) {
            reader->events++;
            return ADVREC_OK;
        }
        if (reader->at_end)
            return ADVREC_ERR_EOF;
        if (reader->line_pending) {
            reader->line_pending = 0;
        } else {
            r = read_line(reader, errstr, errstr_size);
            if (r <= 0) {
                reader->at_end = 1;
                return r < 0 ? ADVREC_ERR_IO : ADVREC_ERR_EOF;
            }
        }
        if (line_is_blank(reader))
            continue;

        reason[0] = '\0';
        switch (reader->format) {
        case ADVREC_READER_TAOBAO:
            r = parse_taobao(reader, ev, reason, sizeof(reason));
            break;
        case ADVREC_READER_MOVIELENS:
            r = parse_movielens(reader, ev, reason, sizeof(reason));
            break;
        case ADVREC_READER_CSV:
            r = parse_csv(reader, ev, reason, sizeof(reason));
            /* The header line is not a filtered record. */
            if (r == 0 && reader->lineno == 1)
                continue;
            break;
        case ADVREC_READER_SESSION:
            r = parse_session(reader, ev, reason, sizeof(reason));
            if (r == 0 && reader->lineno == 1)
                continue;
            break;
        case ADVREC_READER_OTTO:
            r = otto_load(reader, reason, sizeof(reason));
            if (r == 0)
                continue;
            break;
        case ADVREC_READER_RATINGS:
            r = parse_ratings(reader, ev, reason, sizeof(reason));
            break;
        case ADVREC_READER_AMAZON:
            r = amazon_load(reader, reason, sizeof(reason));
            if (r == 0)
                continue;
            break;
        case ADVREC_READER_AUTO:
        default:
            r = -1;
            snprintf(reason, sizeof(reason), "no format");
            break;
        }
        if (r < 0)
            return reader_malformed(reader, reason, errstr, errstr_size);
        if (r == 0) {
            reader->filtered++;
            continue;
        }
        reader->events++;
        return ADVREC_OK;
    }
}

uint64_t advrec_reader_line(const advrec_reader_t *reader)
{
    return reader->lineno;
}

uint64_t advrec_reader_skipped(const advrec_reader_t *reader)
{
    return reader->skipped;
}

uint64_t advrec_reader_filtered(const advrec_reader_t *reader)
{
    return reader->filtered;
}

uint64_t advrec_reader_events(const advrec_reader_t *reader)
{
    return reader->events;
}

int64_t advrec_reader_bytes_read(const advrec_reader_t *reader)
{
    return reader->bytes_read;
}

int64_t advrec_reader_size(const advrec_reader_t *reader)
{
    return reader->size;
}

advrec_reader_format_t advrec_reader_format(const advrec_reader_t *reader)
{
    return reader->format;
}

const char *advrec_reader_path(const advrec_reader_t *reader)
{
    return reader->path;
}

void advrec_reader_destroy(advrec_reader_t *reader)
{
    if (!reader)
        return;
    if (reader->own_fp && reader->fp)
        fclose(reader->fp);
    json_decref(reader->otto_doc);
    free(reader->line);
    free(reader->path);
    free(reader);
}
