/*
 * Unit tests for reader.c: every format's good lines, each kind of malformed
 * line with the line number it is reported at, CRLF, a missing trailing
 * newline, a truncated last line, auto-detection, and (when the shared data
 * sets are there) the real files.
 *
 * Fixtures are small inline strings written to a fresh temporary directory
 * at test time and removed at the end.
 */
#include "check.h"
#include "reader.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

/* Writes len bytes (strlen when len is 0) to a new file in tmpdir; returns
 * its path in a static buffer, valid until the next call. */
static const char *fixture(const char *name, const char *text, size_t len)
{
    static char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp)
        return path;
    fwrite(text, 1, len ? len : strlen(text), fp);
    fclose(fp);
    return path;
}

/* What one call of advrec_reader_next() gave. */
typedef struct result_s {
    advrec_err_t err;
    advrec_event_t ev;
    uint64_t line;
    char errstr[512];
} result_t;

#define RESULTS_MAX 64

/* Reads path to the end with conf; returns how many results were stored
 * (the final ADVREC_ERR_EOF is not stored). The reader's counters are left
 * in the out-parameters when they are non-NULL. */
static int read_all(const char *path, const advrec_reader_conf_t *conf,
                    result_t *res, uint64_t *skipped, uint64_t *filtered)
{
    advrec_reader_t *reader;
    char errstr[512];
    int n = 0;

    if (advrec_reader_new(&reader, path, conf, errstr, sizeof(errstr)) !=
        ADVREC_OK) {
        fprintf(stderr, "advrec_reader_new: %s\n", errstr);
        CHECK(0);
        return 0;
    }
    while (n < RESULTS_MAX) {
        result_t *r = &res[n];
        r->errstr[0] = '\0';
        r->err =
            advrec_reader_next(reader, &r->ev, r->errstr, sizeof(r->errstr));
        r->line = advrec_reader_line(reader);
        if (r->err == ADVREC_ERR_EOF)
            break;
        n++;
    }
    /* The end is sticky. */
    {
        advrec_event_t ev;
        CHECK_INT(advrec_reader_next(reader, &ev, errstr, sizeof(errstr)),
                  ADVREC_ERR_EOF);
    }
    if (skipped)
        *skipped = advrec_reader_skipped(reader);
    if (filtered)
        *filtered = advrec_reader_filtered(reader);
    CHECK_INT(advrec_reader_bytes_read(reader), advrec_reader_size(reader));
    advrec_reader_destroy(reader);
    return n;
}

static advrec_reader_conf_t conf_for(advrec_reader_format_t format)
{
    advrec_reader_conf_t conf;

    advrec_reader_conf_init(&conf);
    conf.format = format;
    return conf;
}

static void check_event(const result_t *r, advrec_event_type_t type,
                        const char *user, const char *item, int64_t ts_ms)
{
    CHECK_INT(r->err, ADVREC_OK);
    CHECK_INT(r->ev.type, type);
    CHECK_STR(r->ev.user_id, user);
    CHECK_STR(r->ev.item_id, item);
    CHECK_INT(r->ev.ts_ms, ts_ms);
}

/* A malformed-line result: the code, the line number, and errstr starting
 * with "path:line: " and containing the reason's key words. */
static void check_malformed(const result_t *r, const char *path, uint64_t line,
                            const char *words)
{
    char prefix[600];

    CHECK_INT(r->err, ADVREC_ERR_PARSE);
    CHECK_INT(r->line, line);
    snprintf(prefix, sizeof(prefix), "%s:%" PRIu64 ": ", path, line);
    CHECK(strncmp(r->errstr, prefix, strlen(prefix)) == 0);
    if (!strstr(r->errstr, words)) {
        fprintf(stderr, "  \"%s\" lacks \"%s\"\n", r->errstr, words);
        CHECK(0);
    }
}

static void test_taobao_good_lines(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_TAOBAO);
    result_t res[RESULTS_MAX];
    uint64_t skipped, filtered;
    const char *path = fixture("tb.csv",
                               "1,10,100,pv,1511658000\n"
                               "2,20,200,buy,1511658001\n"
                               "3,30,300,cart,1511658002\n"
                               "4,40,400,fav,1511658003\n",
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 4);
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "10", 1511658000000);
    check_event(&res[1], ADVREC_EVENT_PURCHASE, "2", "20", 1511658001000);
    /* cart and fav default to click. */
    check_event(&res[2], ADVREC_EVENT_CLICK, "3", "30", 1511658002000);
    check_event(&res[3], ADVREC_EVENT_CLICK, "4", "40", 1511658003000);
    CHECK_INT(res[3].line, 4);
    CHECK_INT(skipped, 0);
    CHECK_INT(filtered, 0);

    /* cart -> purchase, fav -> skip (counted as filtered, not malformed). */
    conf.cart = ADVREC_READER_MAP_PURCHASE;
    conf.fav = ADVREC_READER_MAP_SKIP;
    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 3);
    check_event(&res[2], ADVREC_EVENT_PURCHASE, "3", "30", 1511658002000);
    CHECK_INT(skipped, 0);
    CHECK_INT(filtered, 1);
}

static void test_taobao_malformed_lines(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_TAOBAO);
    result_t res[RESULTS_MAX];
    uint64_t skipped;
    char text[2048], longid[ADVREC_ID_MAX + 1];
    const char *path;

    memset(longid, 'x', ADVREC_ID_MAX);
    longid[ADVREC_ID_MAX] = '\0';
    snprintf(text, sizeof(text),
             "1,10,100,pv,1511658000\n"     /* 1 good */
             "1,10,100,pv\n"                /* 2 field count */
             "1,10,100,pv,15116x8000\n"     /* 3 non-numeric ts */
             "1,10,100,like,1511658000\n"   /* 4 unknown behaviour */
             ",10,100,pv,1511658000\n"      /* 5 empty user */
             "1,%s,100,pv,1511658000\n"     /* 6 over-long item id */
             "1,,100,pv,1511658000\n"       /* 7 empty item */
             "1,10,100,pv,1511658000,9\n"   /* 8 too many fields */
             "7,70,100,buy,1511658007\n"    /* 9 good */
             "301780,543546,4181361,pv,15", /* 10 truncated, no newline */
             longid);
    path = fixture("tb-bad.csv", text, 0);

    CHECK_INT(read_all(path, &conf, res, &skipped, NULL), 10);
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "10", 1511658000000);
    check_malformed(&res[1], path, 2, "expected 5 comma-separated fields");
    check_malformed(&res[2], path, 3, "not a non-negative integer");
    check_malformed(&res[3], path, 4, "unknown behavior \"like\"");
    check_malformed(&res[4], path, 5, "empty user id");
    check_malformed(&res[5], path, 6, "item id is 256 bytes long");
    check_malformed(&res[6], path, 7, "empty item id");
    check_malformed(&res[7], path, 8, "found 6");
    check_event(&res[8], ADVREC_EVENT_PURCHASE, "7", "70", 1511658007000);
    /* The cut-off last line still has five fields and a numeric ts: the
     * plausibility range catches it, and the reason says it was last. */
    check_malformed(&res[9], path, 10, "timestamp 15 s is not between");
    check_malformed(&res[9], path, 10, "truncated?");
    CHECK_INT(skipped, 8);
}

static void test_crlf_and_missing_newline(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_TAOBAO);
    result_t res[RESULTS_MAX];
    uint64_t skipped;
    const char *path = fixture("crlf.csv",
                               "1,10,100,pv,1511658000\r\n"
                               "2,20,200,buy,1511658001\r\n"
                               "\r\n" /* blank: passed over silently */
                               "3,30,300,pv,1511658002",
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, NULL), 3);
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "10", 1511658000000);
    check_event(&res[1], ADVREC_EVENT_PURCHASE, "2", "20", 1511658001000);
    /* A good last line without its newline is an ordinary record. */
    check_event(&res[2], ADVREC_EVENT_CLICK, "3", "30", 1511658002000);
    CHECK_INT(res[2].line, 4);
    CHECK_INT(skipped, 0);

    /* CRLF in the other line formats too: the ts/type is the last field. */
    conf = conf_for(ADVREC_READER_MOVIELENS);
    path = fixture("crlf.data", "196\t242\t3\t881250949\r\n", 0);
    CHECK_INT(read_all(path, &conf, res, NULL, NULL), 1);
    check_event(&res[0], ADVREC_EVENT_CLICK, "196", "242", 881250949000);
    conf = conf_for(ADVREC_READER_AMAZON);
    path = fixture("crlf.txt", "u1 a b\r\n", 0);
    CHECK_INT(read_all(path, &conf, res, NULL, NULL), 2);
    CHECK_STR(res[1].ev.item_id, "b");
}

static void test_movielens(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_MOVIELENS);
    result_t res[RESULTS_MAX];
    uint64_t skipped, filtered;
    const char *path = fixture("u.data",
                               "196\t242\t3\t881250949\n"
                               "186\t302\t5\t891717742\n"
                               "22\t377\t1\t878887116\n"
                               "22\t377\tbad\t878887116\n" /* 4 rating */
                               "22 377 1 878887116\n"      /* 5 not tabs */
                               "22\t377\t1\t87888711\n",   /* 6 1972 */
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 6);
    check_event(&res[0], ADVREC_EVENT_CLICK, "196", "242", 881250949000);
    check_event(&res[2], ADVREC_EVENT_CLICK, "22", "377", 878887116000);
    check_malformed(&res[3], path, 4, "rating \"bad\"");
    check_malformed(&res[4], path, 5, "expected 4 tab-separated fields");
    check_malformed(&res[5], path, 6, "is not between 1990-01-01");
    CHECK_INT(skipped, 3);
    CHECK_INT(filtered, 0);

    /* Ratings below min_rating are dropped, not malformed. */
    conf.min_rating = 3;
    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 5);
    check_event(&res[1], ADVREC_EVENT_CLICK, "186", "302", 891717742000);
    check_malformed(&res[2], path, 4, "rating");
    CHECK_INT(filtered, 1);
}

/* Session clicks (issue 16): the RecSys Challenge 2015 layout as
 * session-based recommenders prepare it, with its header. */
static void test_session(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_SESSION);
    result_t res[RESULTS_MAX];
    uint64_t skipped, filtered;
    const char *path = fixture("rsc15.txt",
                               "SessionId\tItemId\tTime\n"
                               "1\t214536502\t1396839069.277\n"
                               "1\t214536500\t1396839249.868\n"
                               "2\t214662742\t1396850197\n"
                               "2\t214662742\t1396850197.1234567\n"
                               "3\t214716935\t13968.x\n"     /* 6 */
                               "3\t214716935\n"              /* 7 */
                               "3\t214716935\t1396850197.\n" /* 8 */
                               "3\t214716935\t339685019\n",  /* 9 1980 */
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 8);
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "214536502", 1396839069277);
    check_event(&res[1], ADVREC_EVENT_CLICK, "1", "214536500", 1396839249868);
    check_event(&res[2], ADVREC_EVENT_CLICK, "2", "214662742", 1396850197000);
    /* Digits past milliseconds are dropped. */
    check_event(&res[3], ADVREC_EVENT_CLICK, "2", "214662742", 1396850197123);
    check_malformed(&res[4], path, 6,
                    "is not a non-negative number of seconds");
    check_malformed(&res[5], path, 7, "expected 3 tab-separated fields");
    check_malformed(&res[6], path, 8,
                    "is not a non-negative number of seconds");
    check_malformed(&res[7], path, 9, "is not between 1990-01-01");
    CHECK_INT(skipped, 4);
    CHECK_INT(filtered, 0);
}

static void test_otto(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_OTTO);
    result_t res[RESULTS_MAX];
    uint64_t skipped, filtered;
    const char *path = fixture(
        "otto.jsonl",
        "{\"session\":7,\"events\":[{\"aid\":11,\"ts\":1659304800025,"
        "\"type\":\"clicks\"},{\"aid\":12,\"ts\":1659304800026,\"type\":"
        "\"carts\"},{\"aid\":13,\"ts\":1659304800027,\"type\":\"orders\"}]}\n"
        "{\"session\":8,\"events\":[{\"aid\":1,\"ts\":1659304800025,\n" /* 2 */
        "{\"session\":9,\"events\":[{\"aid\":21,\"ts\":1659304800030,"
        "\"type\":\"clicks\"},{\"aid\":22,\"ts\":1659304800031,\"type\":"
        "\"views\"}]}\n"     /* 3: second event bad, so no event of it */
        "{\"session\":10}\n" /* 4 */
        "[1,2]\n"            /* 5 */
        "{\"session\":11,\"events\":[{\"aid\":31,\"ts\":\"x\","
        "\"type\":\"clicks\"}]}\n" /* 6 */
        "{\"session\":12,\"events\":[{\"aid\":41,\"ts\":1659304800040,"
        "\"type\":\"clicks\"}]}\r\n", /* 7 */
        0);

    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 9);
    check_event(&res[0], ADVREC_EVENT_CLICK, "7", "11", 1659304800025);
    CHECK_STR(res[0].ev.session_id, "7");
    CHECK_INT(res[0].line, 1);
    check_event(&res[1], ADVREC_EVENT_CLICK, "7", "12", 1659304800026);
    check_event(&res[2], ADVREC_EVENT_PURCHASE, "7", "13", 1659304800027);
    CHECK_INT(res[2].line, 1);
    check_malformed(&res[3], path, 2, "not JSON");
    check_malformed(&res[4], path, 3, "events[1].type");
    check_malformed(&res[5], path, 4, "\"events\" is missing");
    check_malformed(&res[6], path, 5, "not a JSON object");
    check_malformed(&res[7], path, 6, "events[0].ts");
    check_event(&res[8], ADVREC_EVENT_CLICK, "12", "41", 1659304800040);
    CHECK_INT(skipped, 5);
    CHECK_INT(filtered, 0);

    /* carts -> skip: counted as filtered. */
    conf.cart = ADVREC_READER_MAP_SKIP;
    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 8);
    check_event(&res[1], ADVREC_EVENT_PURCHASE, "7", "13", 1659304800027);
    CHECK_INT(filtered, 1);
}

static void test_csv(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_CSV);
    result_t res[RESULTS_MAX];
    uint64_t skipped;
    const char *path = fixture("gen.csv",
                               "user,item,type,ts\n"
                               "u1,i1,click,1700000000000\n"
                               "u2,i2,purchase,1700000000001\n"
                               "u3,i3,view,1700000000002\n" /* 4 */
                               "u4,i4,click,1700000000\n"   /* 5 s, not ms */
                               "u5,i5,click\n"              /* 6 */
                               "user,item,type,ts\n",       /* 7 */
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, NULL), 6);
    check_event(&res[0], ADVREC_EVENT_CLICK, "u1", "i1", 1700000000000);
    CHECK_INT(res[0].line, 2);
    check_event(&res[1], ADVREC_EVENT_PURCHASE, "u2", "i2", 1700000000001);
    check_malformed(&res[2], path, 4, "unknown type \"view\"");
    check_malformed(&res[3], path, 5, "1700000000 ms is not between");
    check_malformed(&res[4], path, 6, "expected 4 comma-separated fields");
    /* A header is only a header on line 1. */
    check_malformed(&res[5], path, 7, "unknown type");
    CHECK_INT(skipped, 4);

    /* Without a header the first line is data. */
    path = fixture("gen2.csv", "u1,i1,click,1700000000000", 0);
    CHECK_INT(read_all(path, &conf, res, NULL, NULL), 1);
    check_event(&res[0], ADVREC_EVENT_CLICK, "u1", "i1", 1700000000000);
}

static void test_amazon(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_AMAZON);
    result_t res[RESULTS_MAX];
    uint64_t skipped;
    char text[1024], longid[ADVREC_ID_MAX + 1];
    const char *path;
    int64_t base = conf.amazon_base_ts_ms, step = conf.amazon_step_ms;

    memset(longid, 'y', ADVREC_ID_MAX);
    longid[ADVREC_ID_MAX] = '\0';
    snprintf(text, sizeof(text),
             "1 1 2 3\n"
             "2 4\n"
             "3\n"         /* 3: no items */
             "4 5 %s 6\n"  /* 4: over-long item: no event of it */
             "5  7\t8 \n", /* 5: runs of blanks separate too */
             longid);
    path = fixture("Beauty.txt", text, 0);

    CHECK_INT(read_all(path, &conf, res, &skipped, NULL), 8);
    /* Synthesised time: base + n * step for the n-th event of the file. */
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "1", base);
    check_event(&res[1], ADVREC_EVENT_CLICK, "1", "2", base + step);
    check_event(&res[2], ADVREC_EVENT_CLICK, "1", "3", base + 2 * step);
    CHECK_INT(res[2].line, 1);
    check_event(&res[3], ADVREC_EVENT_CLICK, "2", "4", base + 3 * step);
    check_malformed(&res[4], path, 3, "at least one item");
    check_malformed(&res[5], path, 4, "item 2 is 256 bytes long");
    check_event(&res[6], ADVREC_EVENT_CLICK, "5", "7", base + 4 * step);
    check_event(&res[7], ADVREC_EVENT_CLICK, "5", "8", base + 5 * step);
    CHECK_INT(skipped, 2);
}

static void test_ratings(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_RATINGS);
    result_t res[RESULTS_MAX];
    uint64_t skipped, filtered;
    int64_t base = conf.amazon_base_ts_ms, step = conf.amazon_step_ms;
    const char *path = fixture("ratings.txt",
                               "1 1 2\n"
                               "1 2 3.5\n"
                               "2\t7  0.5\n"        /* blanks of any kind */
                               "2 8 1 1400000000\n" /* with a time */
                               "3 9\n"              /* 5: no rating */
                               "3 9 x\n"            /* 6 */
                               "3 9 4 5 6\n"        /* 7: too many */
                               "3 9 4 339685019\n", /* 8: 1980 */
                               0);

    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 8);
    /* The rating is not an item (as "1 1 2" would be for amazon); without
     * a time, the place in the file is the time. */
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "1", base);
    check_event(&res[1], ADVREC_EVENT_CLICK, "1", "2", base + step);
    check_event(&res[2], ADVREC_EVENT_CLICK, "2", "7", base + 2 * step);
    check_event(&res[3], ADVREC_EVENT_CLICK, "2", "8", 1400000000000);
    check_malformed(&res[4], path, 5, "expected 3 or 4 blank-separated");
    check_malformed(&res[5], path, 6, "is not a non-negative number");
    check_malformed(&res[6], path, 7, "found more than 4");
    check_malformed(&res[7], path, 8, "is not between 1990-01-01");
    CHECK_INT(skipped, 4);
    CHECK_INT(filtered, 0);

    /* --min-rating compares the whole rating: 3.5 stays at 3, 0.5 goes. */
    conf.min_rating = 3;
    CHECK_INT(read_all(path, &conf, res, &skipped, &filtered), 5);
    check_event(&res[0], ADVREC_EVENT_CLICK, "1", "2", base + step);
    CHECK_INT(filtered, 3);
}

static void test_nul_byte_is_malformed(void)
{
    advrec_reader_conf_t conf = conf_for(ADVREC_READER_TAOBAO);
    result_t res[RESULTS_MAX];
    static const char text[] = "1,1\0x,100,pv,1511658000\n"
                               "2,20,200,pv,1511658001\n";
    const char *path = fixture("nul.csv", text, sizeof(text) - 1);

    CHECK_INT(read_all(path, &conf, res, NULL, NULL), 2);
    check_malformed(&res[0], path, 1, "NUL byte");
    check_event(&res[1], ADVREC_EVENT_CLICK, "2", "20", 1511658001000);
}

static void test_detect(void)
{
    static const struct {
        const char *line;
        advrec_reader_format_t format;
    } cases[] = {
        {"543462,1715,1464116,pv,1511658000", ADVREC_READER_TAOBAO},
        {"196\t242\t3\t881250949\r\n", ADVREC_READER_MOVIELENS},
        {"{\"session\":0,\"events\":[]}", ADVREC_READER_OTTO},
        {"user,item,type,ts", ADVREC_READER_CSV},
        {"u1,i1,click,1700000000000", ADVREC_READER_CSV},
        {"1 1 2 3 4 5", ADVREC_READER_AMAZON},
        {"1 1 2", ADVREC_READER_AMAZON}, /* a ratings line too: never guessed */
        {"SessionId\tItemId\tTime", ADVREC_READER_SESSION},
        {"1\t214536502\t1396839069.277", ADVREC_READER_SESSION},
        {"just-one-token", ADVREC_READER_AUTO},
        {"", ADVREC_READER_AUTO},
    };
    advrec_reader_conf_t conf;
    advrec_reader_t *reader;
    advrec_event_t ev;
    advrec_reader_format_t format;
    advrec_reader_map_t map;
    char errstr[512];
    const char *path;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_INT(
            advrec_reader_detect_line(cases[i].line, strlen(cases[i].line)),
            cases[i].format);

    /* AUTO reads the first non-blank line and keeps it as a record. */
    advrec_reader_conf_init(&conf);
    path = fixture("auto.data", "\n196\t242\t3\t881250949\n", 0);
    CHECK_INT(advrec_reader_new(&reader, path, &conf, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_reader_format(reader), ADVREC_READER_MOVIELENS);
    CHECK_INT(advrec_reader_next(reader, &ev, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_STR(ev.item_id, "242");
    CHECK_INT(advrec_reader_line(reader), 2);
    CHECK_INT(advrec_reader_next(reader, &ev, errstr, sizeof(errstr)),
              ADVREC_ERR_EOF);
    advrec_reader_destroy(reader);

    /* A first line that fits nothing: the constructor says where. */
    path = fixture("auto.bad", "hello\n", 0);
    reader = (advrec_reader_t *)&ev; /* must come back NULL */
    CHECK_INT(advrec_reader_new(&reader, path, &conf, errstr, sizeof(errstr)),
              ADVREC_ERR_PARSE);
    CHECK(reader == NULL);
    CHECK(strstr(errstr, "auto.bad:1: cannot tell the format") != NULL);

    /* An empty file is simply at its end. */
    path = fixture("empty", "", 0);
    CHECK_INT(advrec_reader_new(&reader, path, &conf, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(advrec_reader_next(reader, &ev, errstr, sizeof(errstr)),
              ADVREC_ERR_EOF);
    advrec_reader_destroy(reader);

    CHECK_INT(advrec_reader_format_parse("otto", &format), ADVREC_OK);
    CHECK_INT(format, ADVREC_READER_OTTO);
    CHECK_INT(advrec_reader_format_parse("parquet", &format),
              ADVREC_ERR_INVALID_ARG);
    CHECK_STR(advrec_reader_format_name(ADVREC_READER_AMAZON), "amazon");
    CHECK_INT(advrec_reader_format_parse("ratings", &format), ADVREC_OK);
    CHECK_INT(format, ADVREC_READER_RATINGS);
    CHECK_INT(advrec_reader_map_parse("skip", &map), ADVREC_OK);
    CHECK_INT(map, ADVREC_READER_MAP_SKIP);
    CHECK_INT(advrec_reader_map_parse("both", &map), ADVREC_ERR_INVALID_ARG);
    CHECK_STR(advrec_reader_map_name(ADVREC_READER_MAP_PURCHASE), "purchase");
}

static void test_missing_file(void)
{
    advrec_reader_t *reader;
    char errstr[512];

    CHECK_INT(advrec_reader_new(&reader, "/nonexistent/x.csv", NULL, errstr,
                                sizeof(errstr)),
              ADVREC_ERR_IO);
    CHECK(reader == NULL);
    CHECK(strstr(errstr, "/nonexistent/x.csv: cannot open") != NULL);
    advrec_reader_destroy(NULL);
}

/*
 * The shared data sets, when present: counts as the data's README gives
 * them. Looked for next to the project (../shared/data, or ../../shared/data
 * from a worktree), then at the machine's path; absent data skips this test.
 */
static void test_shared_data(void)
{
    static const struct {
        const char *file;
        advrec_reader_format_t format;
        uint64_t events, purchases, skipped, last_bad_line;
    } sets[] = {
        {"taobao-userbehavior/UserBehavior_timesorted_head.csv",
         ADVREC_READER_TAOBAO, 96168, 2144, 1, 96169},
        {"movielens-100k/u.data", ADVREC_READER_MOVIELENS, 100000, 0, 0, 0},
        {"otto-sample/train.jsonl", ADVREC_READER_OTTO, 862, 10, 0, 0},
        {"amazon-beauty/Beauty.txt", ADVREC_READER_AMAZON, 198502, 0, 0, 0},
    };
    const char *dirs[] = {ADVREC_TEST_SOURCE_DIR "/../shared/data",
                          ADVREC_TEST_SOURCE_DIR "/../../shared/data",
                          "/work/shared/data"};
    const char *dir = NULL;
    char path[1024], errstr[512];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !dir; i++)
        if (access(dirs[i], R_OK) == 0)
            dir = dirs[i];
    if (!dir) {
        printf("test_shared_data: no shared data, skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        advrec_reader_t *reader;
        advrec_event_t ev;
        advrec_err_t err;
        uint64_t purchases = 0, bad_line = 0;

        snprintf(path, sizeof(path), "%s/%s", dir, sets[s].file);
        if (access(path, R_OK) != 0) {
            printf("test_shared_data: %s absent, skipped\n", path);
            continue;
        }
        /* Auto-detection must pick the same format as naming it. */
        CHECK_INT(
            advrec_reader_new(&reader, path, NULL, errstr, sizeof(errstr)),
            ADVREC_OK);
        if (!reader)
            continue;
        CHECK_INT(advrec_reader_format(reader), sets[s].format);
        while ((err = advrec_reader_next(reader, &ev, errstr,
                                         sizeof(errstr))) != ADVREC_ERR_EOF) {
            if (err == ADVREC_ERR_PARSE) {
                bad_line = advrec_reader_line(reader);
                continue;
            }
            CHECK_INT(err, ADVREC_OK);
            if (err != ADVREC_OK)
                break;
            purchases += ev.type == ADVREC_EVENT_PURCHASE;
        }
        CHECK_INT(advrec_reader_events(reader), sets[s].events);
        CHECK_INT(purchases, sets[s].purchases);
        CHECK_INT(advrec_reader_skipped(reader), sets[s].skipped);
        CHECK_INT(bad_line, sets[s].last_bad_line);
        CHECK_INT(advrec_reader_bytes_read(reader), advrec_reader_size(reader));
        advrec_reader_destroy(reader);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/advrec-test-reader-XXXXXX",
             base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_taobao_good_lines);
    RUN(test_taobao_malformed_lines);
    RUN(test_crlf_and_missing_newline);
    RUN(test_movielens);
    RUN(test_session);
    RUN(test_otto);
    RUN(test_csv);
    RUN(test_amazon);
    RUN(test_ratings);
    RUN(test_nul_byte_is_malformed);
    RUN(test_detect);
    RUN(test_missing_file);
    RUN(test_shared_data);
    if (nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return DONE();
}
