/*
 * detect_int.h - the detectors' rows and handle, shared by detect.c (the
 * judgement) and detect_row.c (their byte layout). Not API.
 */
#ifndef ADVREC_DETECT_INT_H
#define ADVREC_DETECT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"

#define DIV_WINDOW     32  /* events per diversity window */
#define ROW_FORMAT     4   /* first byte of every encoded row */
#define ROW_FORMAT_V3  3   /* still read: rows without the profile fields */
#define ROW_FORMAT_OLD 2   /* still read: user rows without id_hash */
#define RING_CHUNK     256 /* group ring entries per persisted row */
#define RING_CHUNKS    (ADVREC_DETECT_GROUP_RING / RING_CHUNK)

typedef struct user_row_s {
    int64_t first_ts, last_ts; /* event times, ms; first_ts 0: never seen */
    int64_t last_click_ts;     /* the gaps are measured between clicks */
    double rate;               /* decayed event count at last_ts */
    double gap_mean, gap_var;  /* EWMA of log(gap seconds) */
    uint64_t div_bits;         /* items hashed into 64 bits, this window */
    uint32_t events, gaps, clicks, purchases;
    float div_ratio; /* distinct/total of the last full window; -1: none */
    uint16_t div_n;  /* events in the current window */
    uint8_t level;   /* 0 normal, 1 flagged, 2 quarantined */
    uint8_t broken;  /* 1 once a gap longer than young_s ended the first
                        session: no longer a newcomer (groups) */
    uint32_t reasons;
    float score;
    uint64_t id_hash; /* of the external id: tells a ring entry's user from
                         a later occupant of its slot; 0 unknown */
    /* The filler profile over the current window (filler-profile). */
    int64_t prof_start_ts; /* the window's first event; 0: none yet */
    int64_t prof_last_ts;  /* its latest event */
    double prof_sum;       /* sum of log(1 + item events) - catalogue mean */
    uint32_t prof_n;       /* events in the window */
} user_row_t;

typedef struct item_row_s {
    int64_t last_ts;        /* 0: never seen */
    double total, suspect;  /* decayed events; ... from young or flagged */
    double young, flagged;  /* decayed events from young / flagged accounts */
    double fresh;           /* decayed first touches by newcomers (groups) */
    int64_t group_first_ts; /* a group target: its first member's touch */
    uint32_t events;
    uint8_t level;
    uint32_t reasons;
    float score;
    uint32_t group_size; /* members when it was found a group target */
} item_row_t;

/* Whether item row r is flagged for a young-account surge. */
static inline int item_surging(const item_row_t *r)
{
    return r->level && (r->reasons & ADVREC_DETECT_YOUNG_SURGE);
}

/* A newcomer's first touch of an item, in the group ring. */
typedef struct touch_s {
    uint64_t user_hash; /* id_hash of the user at the time */
    uint32_t user, item;
    int64_t ts;
} touch_t;

typedef struct rows_s {
    void *rows;
    uint8_t *dirty;
    uint32_t *dirty_list;
    uint32_t n, cap, n_dirty;
} rows_t;

struct advrec_detect_s {
    advrec_detect_params_t p;
    rows_t users, items; /* user_row_t / item_row_t */
    struct {
        int64_t first_ts; /* the first event the detector saw; 0 none */
        int64_t last_ts;
        double total, suspect;
        uint64_t events, purchases; /* all events and purchases seen */
        uint64_t items_seen;        /* items with at least one event */
        double logpop_sum;          /* sum over seen items of log(1 + events) */
        double dev_sum; /* sum of the events' deviations from it, and */
        uint64_t dev_n; /* their count, once the catalogue is mature */
        uint64_t shop;  /* 1 once purchases made SHOP_SHARE of the first
                           SHOP_EVENTS or more events: no-purchases counts */
        int rebuild;    /* restored from a row before format 4: the item rows
                           restored after it add themselves to the sums */
        int dirty;
    } global;
    advrec_detect_flag_t *queue;
    size_t n_queue, queue_cap;
    touch_t *ring;   /* ADVREC_DETECT_GROUP_RING newcomers' first touches */
    uint64_t ring_n; /* touches ever pushed; the next goes to n % size */
    uint8_t ring_dirty[RING_CHUNKS];
    uint32_t *members;  /* GROUP_MAX: scratch of group_check() */
    uint32_t n_surging; /* items item_surging(): the history is only
                           searched for one while there are any */
};

/* Grows r to hold row idx (rows of size bytes; the new ones zeroed): 1, or
 * 0 on no memory. */
int advrec_detect__rows_reserve(rows_t *r, uint32_t idx, size_t size);

#endif
