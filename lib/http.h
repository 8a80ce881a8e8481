/*
 * http.h - the HTTP endpoint: GET /metrics (Prometheus text), /health/live
 * and /health/ready, served by libmicrohttpd on its own thread.
 *
 * It only reads: every figure comes from lib/metrics' reader API (the last
 * counters the processing thread published), so serving never touches the
 * pipeline's state and a slow scraper cannot slow a round. It owns nothing
 * of the daemon's but the listening socket and libmicrohttpd's thread.
 *
 * Health, from the published figures (docs/OPERATIONS.md):
 *  - /health/live: 200 while the processing loop runs (no round finished
 *    yet, or the last one finished within live_max_ms); 503 once a round
 *    is overdue or the loop has ended.
 *  - /health/ready: 200 once the state is loaded and at least one input
 *    partition is assigned; 503 before (and while stopping).
 * Each answers with a one-line text body saying why.
 */
#ifndef ADVREC_HTTP_H
#define ADVREC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"

typedef struct advrec_http_s advrec_http_t;

typedef struct advrec_http_params_s {
    /* "host:port": an IPv4 address or [IPv6 address], numeric; port 0 binds
     * any free port (advrec_http_port says which). */
    const char *listen;
    /* Read only, from the server's thread; must outlive the server. */
    const advrec_metrics_t *metrics;
    int64_t live_max_ms; /* /health/live's bound on the last round's age */
} advrec_http_params_t;

/*
 * Starts serving in *httpp. ADVREC_ERR_CONFIG when listen is not a numeric
 * "host:port", ADVREC_ERR_IO when the socket cannot be bound (port in use)
 * or the thread cannot start, ADVREC_ERR_NOMEM; errstr says which, with
 * the address. *httpp is NULL on failure. The caller owns the server
 * (advrec_http_destroy).
 */
advrec_err_t advrec_http_new(advrec_http_t **httpp,
                             const advrec_http_params_t *params, char *errstr,
                             size_t errstr_size);

/* The TCP port bound (the one chosen when params asked for port 0). */
int advrec_http_port(const advrec_http_t *http);

/* Stops serving (waits for requests in progress) and frees. NULL is OK. */
void advrec_http_destroy(advrec_http_t *http);

#endif
