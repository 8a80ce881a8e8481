/*
 * log.c - writes log lines to stderr, one write(2) per line so lines from
 * librdkafka's threads and ours never interleave mid-line, with control
 * characters escaped so that one message is always exactly one line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int advrec_log_threshold = ADVREC_LOG_INFO;

static const char *const level_names[] = {
    [ADVREC_LOG_ERR] = "err",       [ADVREC_LOG_WARNING] = "warning",
    [ADVREC_LOG_NOTICE] = "notice", [ADVREC_LOG_INFO] = "info",
    [ADVREC_LOG_DEBUG] = "debug",
};

int advrec_log_set_level(int level)
{
    int prev = advrec_log_threshold;

    advrec_log_threshold = level;
    return prev;
}

int advrec_log_level_parse(const char *name)
{
    char *end;
    long n;

    for (int i = ADVREC_LOG_ERR; i <= ADVREC_LOG_DEBUG; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    n = strtol(name, &end, 10);
    if (*name && !*end && n >= ADVREC_LOG_ERR && n <= ADVREC_LOG_DEBUG)
        return (int)n;
    return -1;
}

/*
 * Copies text into out (capacity size, at least 1) with every control byte
 * (< 0x20, 0x7f) escaped: '\n' as the two characters \n, any other as \xNN.
 * Ids and other input text reach log lines through %s, so this keeps one
 * message one line: no forged "<0>" priority or fake line can reach journald.
 * Returns the length written, never cutting an escape in two.
 */
static size_t escape_line(char *out, size_t size, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            if (n + 1 >= size)
                break;
            out[n++] = (char)*p;
        } else if (*p == '\n') {
            if (n + 2 >= size)
                break;
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            if (n + 4 >= size)
                break;
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0xf];
        }
    }
    out[n] = '\0';
    return n;
}

void advrec_log_write(int level, const char *fmt, ...)
{
    char msg[2048], line[4096];
    int n = 0;
    va_list ap;

    if (level < ADVREC_LOG_ERR)
        level = ADVREC_LOG_ERR;
    if (level > ADVREC_LOG_DEBUG)
        level = ADVREC_LOG_DEBUG;
    /* journald (and `systemd-cat`) strip the "<N>" prefix into PRIORITY. */
    if (getenv("JOURNAL_STREAM") != NULL)
        n = snprintf(line, sizeof(line), "<%d>", level);
    n += snprintf(line + n, sizeof(line) - (size_t)n,
                  "advrec: %s: ", level_names[level]);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Room is left for the '\n' that ends the line. */
    n += (int)escape_line(line + n, sizeof(line) - 1 - (size_t)n, msg);
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
