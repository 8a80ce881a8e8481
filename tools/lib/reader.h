/*
 * reader.h - reads event files (Taobao, MovieLens, OTTO, plain CSV, Amazon
 * sequences, session clicks, rating dumps) into advrec_event_t, one event
 * at a time.
 *
 * A reader owns one open file (or stdin), one line buffer that grows to the
 * longest line seen, and for formats where one line holds many events (OTTO,
 * Amazon) the parsed line it is walking through. Nothing is allocated per
 * event; files are streamed line by line, never loaded whole.
 *
 * Error model: advrec_reader_next() returns
 *   ADVREC_OK         an event was written to *ev;
 *   ADVREC_ERR_PARSE  the current line is malformed: errstr holds
 *                     "file:line: reason", the line is counted as skipped and
 *                     the next call goes on with the next line;
 *   ADVREC_ERR_EOF    end of input (every later call returns it too);
 *   ADVREC_ERR_IO     the file could not be read (errstr says why); the
 *                     reader is then at its end.
 * A malformed line never yields part of its events: multi-event lines are
 * checked whole before the first of their events is returned.
 */
#ifndef ADVREC_READER_H
#define ADVREC_READER_H

#include <stdint.h>

#include "err.h"
#include "event.h"

typedef enum advrec_reader_format_e {
    ADVREC_READER_AUTO = 0,  /* detect from the first non-blank line */
    ADVREC_READER_TAOBAO,    /* user,item,category,behavior,unix_ts (s) */
    ADVREC_READER_MOVIELENS, /* user\titem\trating\tunix_ts (s) */
    ADVREC_READER_OTTO,      /* {"session":N,"events":[{aid,ts(ms),type}]} */
    ADVREC_READER_CSV,       /* user,item,click|purchase,ts_ms [header] */
    ADVREC_READER_AMAZON,    /* user item item item ... (time order) */
    ADVREC_READER_SESSION,   /* session\titem\ttime (s, fraction) [header] */
    ADVREC_READER_RATINGS,   /* user item rating [unix_ts (s)], blank-sep. */
} advrec_reader_format_t;

/* What a secondary behaviour (Taobao cart/fav, OTTO carts) becomes. */
typedef enum advrec_reader_map_e {
    ADVREC_READER_MAP_CLICK = 0,
    ADVREC_READER_MAP_PURCHASE,
    ADVREC_READER_MAP_SKIP,
} advrec_reader_map_t;

typedef struct advrec_reader_conf_s {
    advrec_reader_format_t format; /* default AUTO */
    advrec_reader_map_t cart;      /* Taobao "cart", OTTO "carts"; CLICK */
    advrec_reader_map_t fav;       /* Taobao "fav"; default CLICK */
    int min_rating; /* MovieLens, ratings: drop ratings below; 0 */
    /* Amazon has no timestamps, nor has a ratings file without its fourth
     * column: the n-th event of the file (n = 0, 1, ...)
     * gets amazon_base_ts_ms + n * amazon_step_ms, so events are strictly
     * increasing in file order and each user's items keep their order.
     * Defaults: 2014-01-01T00:00:00Z and 1000 ms. */
    int64_t amazon_base_ts_ms;
    int64_t amazon_step_ms;
    /* Timestamps outside [min_ts_ms, max_ts_ms] are malformed. The defaults
     * (1990-01-01 .. 2100-01-01) catch a timestamp cut short by a truncated
     * last line ("...,pv,15"), which is still a number. */
    int64_t min_ts_ms;
    int64_t max_ts_ms;
} advrec_reader_conf_t;

typedef struct advrec_reader_s advrec_reader_t;

/* Fills conf with the defaults written above. */
void advrec_reader_conf_init(advrec_reader_conf_t *conf);

/* "taobao", "movielens", "otto", "csv", "amazon", "session", "ratings",
 * "auto" <-> enum. The parse
 * functions return ADVREC_ERR_INVALID_ARG (output untouched) on an unknown
 * name; the name functions never return NULL. */
advrec_err_t advrec_reader_format_parse(const char *name,
                                        advrec_reader_format_t *format);
const char *advrec_reader_format_name(advrec_reader_format_t format);
/* "click", "purchase", "skip" <-> enum. */
advrec_err_t advrec_reader_map_parse(const char *name,
                                     advrec_reader_map_t *map);
const char *advrec_reader_map_name(advrec_reader_map_t map);

/*
 * Guesses the format of one line (no newline needed; len bytes at line):
 * '{' -> otto, 4 tab-separated fields -> movielens, 5 comma-separated ->
 * taobao, 4 comma-separated -> csv, space-separated tokens -> amazon.
 * Never ratings: "1 1 2" is an Amazon line too (user 1, items 1 and 2);
 * a ratings file needs its format named. Returns ADVREC_READER_AUTO when
 * nothing fits.
 */
advrec_reader_format_t advrec_reader_detect_line(const char *line, size_t len);

/*
 * Opens path ("-" is stdin) for reading with conf (copied; NULL means the
 * defaults). With format AUTO the first non-blank line decides the format
 * (advrec_reader_detect_line) and is then read as the first record.
 * On success *readerp owns the open file and must be released with
 * advrec_reader_destroy(). On failure returns ADVREC_ERR_IO (cannot open),
 * ADVREC_ERR_PARSE (AUTO and the first line fits no format) or
 * ADVREC_ERR_NOMEM, fills errstr, and leaves *readerp NULL.
 */
advrec_err_t advrec_reader_new(advrec_reader_t **readerp, const char *path,
                               const advrec_reader_conf_t *conf, char *errstr,
                               size_t errstr_size);

/*
 * Reads the next event into *ev (cleared first; the caller owns ev). See
 * the error model at the top of this file. Well-formed records that the
 * configuration drops (a behaviour mapped to skip, a rating below
 * min_rating) and blank lines are passed over silently and counted in
 * advrec_reader_filtered() (blank lines are not counted).
 */
advrec_err_t advrec_reader_next(advrec_reader_t *reader, advrec_event_t *ev,
                                char *errstr, size_t errstr_size);

/* The 1-based number of the line the last event or error came from (0
 * before the first line). */
uint64_t advrec_reader_line(const advrec_reader_t *reader);
/* Lines reported as ADVREC_ERR_PARSE so far. */
uint64_t advrec_reader_skipped(const advrec_reader_t *reader);
/* Well-formed records dropped by the configuration so far. */
uint64_t advrec_reader_filtered(const advrec_reader_t *reader);
/* Events returned so far. */
uint64_t advrec_reader_events(const advrec_reader_t *reader);
/* Bytes consumed so far, and the file's size (-1 when not a regular file):
 * together they make a progress fraction. */
int64_t advrec_reader_bytes_read(const advrec_reader_t *reader);
int64_t advrec_reader_size(const advrec_reader_t *reader);
/* The format in use (AUTO only if the input had no non-blank line). */
advrec_reader_format_t advrec_reader_format(const advrec_reader_t *reader);
/* The path as given to _new (owned by the reader). */
const char *advrec_reader_path(const advrec_reader_t *reader);

/* Closes the file and frees the reader; NULL is a no-op. */
void advrec_reader_destroy(advrec_reader_t *reader);

#endif
