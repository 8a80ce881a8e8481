/*
 * reason.c - the dead-letter reason table (reason.h). Owns nothing but
 * static strings.
 */
#include "reason.h"

#include <string.h>

static const struct {
    const char *name;
    const char *meaning;
} reasons[ADVREC_DLQ__COUNT] = {[ADVREC_DLQ_NONE] = {"none", ""},
#define ROW_(e, name, meaning) [ADVREC_DLQ_##e] = {name, meaning},
                                ADVREC_DLQ_REASONS(ROW_)
#undef ROW_
};

const char *advrec_dlq_reason_name(advrec_dlq_reason_t reason)
{
    if ((unsigned)reason >= ADVREC_DLQ__COUNT)
        reason = ADVREC_DLQ_INTERNAL;
    return reasons[reason].name;
}

const char *advrec_dlq_reason_meaning(advrec_dlq_reason_t reason)
{
    if ((unsigned)reason >= ADVREC_DLQ__COUNT)
        reason = ADVREC_DLQ_INTERNAL;
    return reasons[reason].meaning;
}

advrec_dlq_reason_t advrec_dlq_reason_parse(const char *name, size_t len)
{
    for (int r = ADVREC_DLQ_NONE + 1; r < ADVREC_DLQ__COUNT; r++)
        if (strlen(reasons[r].name) == len &&
            memcmp(reasons[r].name, name, len) == 0)
            return (advrec_dlq_reason_t)r;
    return ADVREC_DLQ_NONE;
}

advrec_dlq_reason_t advrec_dlq_reason_from_err(advrec_err_t err)
{
    switch (err) {
    case ADVREC_OK:
        return ADVREC_DLQ_NONE;
    case ADVREC_ERR_FULL:
        return ADVREC_DLQ_TABLE_FULL;
    case ADVREC_ERR_NOMEM:
        return ADVREC_DLQ_NO_MEMORY;
    default:
        return ADVREC_DLQ_INTERNAL;
    }
}
