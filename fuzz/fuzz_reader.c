/*
 * fuzz_reader.c - libFuzzer target for advrec-produce's input file parsers
 * (tools/lib/reader.h): Taobao, MovieLens, OTTO, plain CSV, Amazon, session
 * clicks, rating dumps, and format detection.
 *
 * The first input byte picks the reader's configuration: bits 0-2 the
 * format (auto, taobao, movielens, otto, csv, amazon, session, ratings),
 * bits 3-4 what a cart becomes, bits 5-6 what a fav becomes (mod 3: click,
 * purchase, skip), bit 7 a minimum rating of 3 (MovieLens, ratings). The rest
 * is the file, written to one memfd created at start and opened by path
 * (/proc/self/fd/N), as the reader only opens paths.
 *
 * Checked beyond "no crash, no leak, no UB": every event returned passes
 * advrec_event_validate() with its timestamp inside the configured range,
 * the reader ends (EOF or an I/O error) within one call per byte plus one
 * per event, and its counters add up. A violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_fd = -1;
static char in_path[64];

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_reader: %s: %s\n", what, why);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if ((in_fd = memfd_create("fuzz-reader", 0)) < 0)
        die("memfd_create", "failed");
    snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in_fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const advrec_reader_format_t formats[] = {
        ADVREC_READER_AUTO,    ADVREC_READER_TAOBAO,  ADVREC_READER_MOVIELENS,
        ADVREC_READER_OTTO,    ADVREC_READER_CSV,     ADVREC_READER_AMAZON,
        ADVREC_READER_SESSION, ADVREC_READER_RATINGS,
    };
    static const advrec_reader_map_t maps[] = {
        ADVREC_READER_MAP_CLICK,
        ADVREC_READER_MAP_PURCHASE,
        ADVREC_READER_MAP_SKIP,
    };
    advrec_reader_conf_t conf;
    advrec_reader_t *reader = NULL;
    advrec_event_t ev;
    advrec_err_t err;
    uint64_t events = 0, calls = 0, parse_errors = 0;
    char errstr[1024];

    if (size < 1)
        return 0;
    advrec_reader_conf_init(&conf);
    conf.format = formats[data[0] & 7];
    conf.cart = maps[((data[0] >> 3) & 3) % 3];
    conf.fav = maps[((data[0] >> 5) & 3) % 3];
    conf.min_rating = (data[0] & 0x80) ? 3 : 0;
    data++;
    size--;

    if (ftruncate(in_fd, 0) != 0 ||
        (size && pwrite(in_fd, data, size, 0) != (ssize_t)size))
        die("memfd write", "failed");
    if (advrec_reader_new(&reader, in_path, &conf, errstr, sizeof(errstr))) {
        if (reader)
            die("advrec_reader_new", "failed but left a reader");
        return 0;
    }
    while ((err = advrec_reader_next(reader, &ev, errstr, sizeof(errstr))) !=
               ADVREC_ERR_EOF &&
           err != ADVREC_ERR_IO) {
        if (++calls > 2 * (uint64_t)size + 2)
            die("advrec_reader_next", "does not reach the end of the input");
        if (err == ADVREC_ERR_PARSE) {
            parse_errors++;
            continue;
        }
        if (err != ADVREC_OK)
            die("advrec_reader_next", errstr);
        events++;
        if (advrec_event_validate(&ev, errstr, sizeof(errstr)))
            die("an event fails validation", errstr);
        if (ev.ts_ms < conf.min_ts_ms || ev.ts_ms > conf.max_ts_ms)
            die("an event's timestamp", "outside [min_ts_ms, max_ts_ms]");
    }
    if (advrec_reader_events(reader) != events ||
        advrec_reader_skipped(reader) != parse_errors)
        die("counters", "events or skipped lines miscounted");
    advrec_reader_destroy(reader);
    return 0;
}
