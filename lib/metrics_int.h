/*
 * metrics_int.h - what metrics.c shares with metrics_text.c (not installed).
 */
#ifndef ADVREC_METRICS_INT_H
#define ADVREC_METRICS_INT_H

#include "metrics.h"

/* The name of input topic 0 (clicks) or 1 (purchases); "" before
 * advrec_metrics_set_topics. Owned by metrics. */
const char *advrec_metrics__topic(const advrec_metrics_t *metrics, int topic);

/* The memory gauges advrec_metrics_set_memory last set (any thread). */
void advrec_metrics__memory(const advrec_metrics_t *metrics, int64_t *limit,
                            int64_t *used, int *short_of);

#endif
