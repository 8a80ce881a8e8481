/*
 * log.c - writes log lines to stderr, one write(2) per line so lines from
 * librdkafka's threads and ours never interleave mid-line.
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

void advrec_log_write(int level, const char *fmt, ...)
{
    char line[2048];
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
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
