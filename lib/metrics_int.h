/*
 * metrics_int.h - what metrics.c shares with metrics_text.c (not installed).
 */
#ifndef ADVREC_METRICS_INT_H
#define ADVREC_METRICS_INT_H

#include "metrics.h"

/* The name of input topic 0 (clicks) or 1 (purchases); "" before
 * advrec_metrics_set_topics. Owned by metrics. */
const char *advrec_metrics__topic(const advrec_metrics_t *metrics, int topic);

#endif
