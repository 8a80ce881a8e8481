/*
 * err.c - the one table of advrec error messages.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_msgs[] = {
#define ADVREC_ERR_MSG(name, msg) [ADVREC_ERR_##name] = msg,
    ADVREC_ERR_MAP(ADVREC_ERR_MSG)
#undef ADVREC_ERR_MSG
};

static const char *const err_names[] = {
#define ADVREC_ERR_NAME(name, msg) [ADVREC_ERR_##name] = #name,
    ADVREC_ERR_MAP(ADVREC_ERR_NAME)
#undef ADVREC_ERR_NAME
};

const char *advrec_err2str(advrec_err_t err)
{
    if ((unsigned)err >= ADVREC_ERR__COUNT)
        return "unknown error";
    return err_msgs[err];
}

const char *advrec_err_name(advrec_err_t err)
{
    if ((unsigned)err >= ADVREC_ERR__COUNT)
        return "UNKNOWN";
    return err_names[err];
}

advrec_err_t advrec_seterr(advrec_err_t err, char *errstr, size_t errstr_size,
                           const char *fmt, ...)
{
    va_list ap;

    if (errstr && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
