/*
 * Unit tests for log.c's writer: a message is always exactly one line, with
 * control characters escaped (a newline as \n, other bytes < 0x20 and 0x7f
 * as \xNN), so an id such as "u1\n<0>evil" can neither split the line nor
 * forge a journald priority; the "<N>" prefix appears only at the start of
 * the line (under JOURNAL_STREAM); levels and the threshold still work.
 *
 * stderr is redirected with dup2() to a temporary file for each capture and
 * restored afterwards.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char captured[16384];

/* Runs fn with stderr going to a temporary file; the file's bytes end up in
 * captured (NUL-terminated). */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/advrec-test-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;

    CHECK(fd >= 0 && saved >= 0);
    if (fd < 0 || saved < 0)
        exit(1);
    unlink(path);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, captured, sizeof(captured) - 1, 0);
    close(fd);
    captured[n > 0 ? n : 0] = '\0';
}

static int count_char(const char *s, char c)
{
    int n = 0;

    for (; *s; s++)
        n += *s == c;
    return n;
}

static void log_evil_user(void)
{
    const char *user = "u1\n<0>evil";

    log_info("user %s: list published", user);
}

static void test_newline_in_id_stays_one_line_journald(void)
{
    setenv("JOURNAL_STREAM", "8:1234", 1);
    capture(log_evil_user);
    unsetenv("JOURNAL_STREAM");
    CHECK_STR(captured, "<6>advrec: info: user u1\\n<0>evil: list published\n");
    CHECK_INT(count_char(captured, '\n'), 1);
    /* The only priority prefix is the writer's, at the very start. */
    CHECK(strncmp(captured, "<6>", 3) == 0);
    CHECK(strstr(captured + 1, "\n<") == NULL);
}

static void test_newline_in_id_stays_one_line_terminal(void)
{
    unsetenv("JOURNAL_STREAM");
    capture(log_evil_user);
    CHECK_STR(captured, "advrec: info: user u1\\n<0>evil: list published\n");
}

static void log_controls(void)
{
    log_warning("a\tb\rc\x1b[31md\x7f"
                "e\x01\xc3\xa9");
}

static void test_other_controls_as_hex(void)
{
    unsetenv("JOURNAL_STREAM");
    capture(log_controls);
    /* UTF-8 (é) passes; ESC, CR, TAB, DEL and SOH do not. */
    CHECK_STR(captured, "advrec: warning: a\\x09b\\x0dc\\x1b[31md\\x7fe\\x01"
                        "\xc3\xa9\n");
}

static void log_long(void)
{
    char text[3000];

    memset(text, '\n', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    log_err("%s", text);
}

static void test_long_message_cut_whole_escapes(void)
{
    size_t n;

    unsetenv("JOURNAL_STREAM");
    capture(log_long);
    n = strlen(captured);
    CHECK_INT(count_char(captured, '\n'), 1);
    CHECK(n > 100 && captured[n - 1] == '\n');
    /* Cut between escapes, never inside one. */
    CHECK(captured[n - 2] == 'n' && captured[n - 3] == '\\');
}

static void log_below_threshold(void)
{
    int prev = advrec_log_set_level(ADVREC_LOG_WARNING);

    log_info("dropped");
    log_debug("dropped");
    log_err("kept\n");
    advrec_log_set_level(prev);
}

static void test_threshold(void)
{
    unsetenv("JOURNAL_STREAM");
    capture(log_below_threshold);
    CHECK_STR(captured, "advrec: err: kept\\n\n");
}

int main(void)
{
    RUN(test_newline_in_id_stays_one_line_journald);
    RUN(test_newline_in_id_stays_one_line_terminal);
    RUN(test_other_controls_as_hex);
    RUN(test_long_message_cut_whole_escapes);
    RUN(test_threshold);
    return DONE();
}
