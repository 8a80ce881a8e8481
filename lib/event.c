/*
 * event.c - helpers for the fixed-size input event.
 */
#include "event.h"

#include <math.h>
#include <string.h>

void advrec_event_clear(advrec_event_t *ev)
{
    ev->type = ADVREC_EVENT_CLICK;
    ev->user_id[0] = '\0';
    ev->item_id[0] = '\0';
    ev->ts_ms = 0;
    ev->session_id[0] = '\0';
    ev->page[0] = '\0';
    ev->position = -1;
    ev->quantity = 1;
    ev->price = 0.0;
    ev->currency[0] = '\0';
    ev->order_id[0] = '\0';
}

const char *advrec_event_type_name(advrec_event_type_t type)
{
    switch (type) {
    case ADVREC_EVENT_CLICK:
        return "click";
    case ADVREC_EVENT_PURCHASE:
        return "purchase";
    }
    return "?";
}

advrec_err_t advrec_event_validate(const advrec_event_t *ev, char *errstr,
                                   size_t errstr_size)
{
    if (ev->type != ADVREC_EVENT_CLICK && ev->type != ADVREC_EVENT_PURCHASE)
        return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                             "unknown event type %d", (int)ev->type);
    if (!ev->user_id[0])
        return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                             "empty user_id");
    if (!ev->item_id[0])
        return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                             "empty item_id");
    if (ev->ts_ms <= 0)
        return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                             "ts %lld is not a positive epoch time",
                             (long long)ev->ts_ms);
    if (ev->type == ADVREC_EVENT_PURCHASE) {
        if (ev->quantity < 1)
            return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                                 "purchase quantity %d < 1", ev->quantity);
        if (!isfinite(ev->price) || ev->price < 0)
            return advrec_seterr(ADVREC_ERR_PARSE, errstr, errstr_size,
                                 "purchase price %g is not a finite amount "
                                 ">= 0",
                                 ev->price);
    }
    return ADVREC_OK;
}

advrec_err_t advrec_event_set_str(char *dst, size_t dst_size, const char *src,
                                  size_t src_len)
{
    if (src_len >= dst_size || memchr(src, '\0', src_len) != NULL)
        return ADVREC_ERR_PARSE;
    memcpy(dst, src, src_len);
    dst[src_len] = '\0';
    return ADVREC_OK;
}
