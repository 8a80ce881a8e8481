/*
 * config_value.c - the text of one configuration value: a bool, an
 * integer, a size (k, M, G, T), a duration (ms, s, m, h, d), a number, a
 * Kafka topic or member name. Each returns ADVREC_ERR_CONFIG with a short
 * "why" (no key, no context: config.c adds those). Owns nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

advrec_err_t advrec_conf__parse_bool(const char *s, bool *out, char *why,
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

advrec_err_t advrec_conf__parse_int(const char *s, int64_t *out, char *why,
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

advrec_err_t advrec_conf_parse_duration(const char *text, int64_t *out,
                                        char *errstr, size_t errstr_size)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"", 1},      {"ms", 1},      {"s", 1000},
                 {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = text;
    uint64_t v = 0;

    if (!isdigit((unsigned char)*p))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "expected a duration such as 500, 30s, 12h or "
                             "30d (no suffix: milliseconds)");
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "duration too large");
        v = v * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (v > (uint64_t)INT64_MAX / units[i].ms)
            return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                                 "duration too large");
        *out = (int64_t)(v * units[i].ms);
        return ADVREC_OK;
    }
    return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                         "unknown unit \"%s\": use ms, s, m, h or d", p);
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

advrec_err_t advrec_conf__parse_double(const char *s, double *out, char *why,
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
/* Kafka's rules for a topic name, which group.instance.id shares; what
 * names the kind in the message. */
advrec_err_t advrec_conf__check_name(const char *s, const char *what, char *why,
                                     size_t why_size)
{
    size_t n = strlen(s);

    if (n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                             "not a valid Kafka %s", what);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return advrec_seterr(ADVREC_ERR_CONFIG, why, why_size,
                                 "not a valid Kafka %s (allowed: letters, "
                                 "digits, '.', '_', '-')",
                                 what);
    return ADVREC_OK;
}
