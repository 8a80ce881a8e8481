/*
 * event.h - the decoded input event: one click or one purchase.
 *
 * Events are plain values with fixed-size fields, so decoding, reading files
 * and generating streams allocate nothing per event. An identifier longer
 * than ADVREC_ID_MAX - 1 bytes is rejected where it enters (decoder, file
 * reader), never truncated: two long ids must not silently become one.
 */
#ifndef ADVREC_EVENT_H
#define ADVREC_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "types.h"

#define ADVREC_PAGE_MAX     128
#define ADVREC_CURRENCY_MAX 8

typedef enum advrec_event_type_e {
    ADVREC_EVENT_CLICK = 1,
    ADVREC_EVENT_PURCHASE = 2,
} advrec_event_type_t;

typedef struct advrec_event_s {
    advrec_event_type_t type;
    char user_id[ADVREC_ID_MAX];
    char item_id[ADVREC_ID_MAX];
    int64_t ts_ms;                  /* event time, ms since the epoch, UTC */
    char session_id[ADVREC_ID_MAX]; /* "" when absent */
    /* Click only: where the item was shown. */
    char page[ADVREC_PAGE_MAX]; /* "" when absent */
    int32_t position;           /* -1 when absent */
    /* Purchase only. */
    int32_t quantity;                   /* >= 1 */
    double price;                       /* unit price, >= 0 */
    char currency[ADVREC_CURRENCY_MAX]; /* ISO 4217, e.g. "EUR"; "" absent */
    char order_id[ADVREC_ID_MAX];       /* "" when absent */
} advrec_event_t;

/* Resets every field to "absent" (empty strings, position -1, quantity 1). */
void advrec_event_clear(advrec_event_t *ev);

/* "click" or "purchase" ("?" for anything else). */
const char *advrec_event_type_name(advrec_event_type_t type);

/*
 * Checks what a decoded or parsed event must satisfy to be trained on:
 * non-empty user and item ids, a known type, ts_ms > 0, and for purchases
 * quantity >= 1 and a finite price >= 0. On failure returns ADVREC_ERR_PARSE
 * and names the field in errstr; the event is not changed.
 */
advrec_err_t advrec_event_validate(const advrec_event_t *ev, char *errstr,
                                   size_t errstr_size);

/*
 * Copies the src_len bytes at src into the fixed-size field dst (dst_size
 * bytes, NUL-terminated after the copy). Returns ADVREC_ERR_PARSE, with dst
 * untouched, if src does not fit or holds a NUL byte: ids are never truncated.
 */
advrec_err_t advrec_event_set_str(char *dst, size_t dst_size, const char *src,
                                  size_t src_len);

#endif
