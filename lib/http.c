/*
 * http.c - the HTTP endpoint over libmicrohttpd (MHD_USE_INTERNAL_POLLING_
 * THREAD: one thread of its own, no part of the processing loop).
 *
 * What may fail where: a malformed or unbindable http.listen fails
 * advrec_http_new (the daemon decides what that means); a request that
 * cannot be answered (no memory for the text) gets a 500; anything other
 * than GET or HEAD gets a 405, an unknown path a 404. Nothing here writes
 * to the pipeline.
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "log.h"

#define PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct advrec_http_s {
    struct MHD_Daemon *mhd;
    const advrec_metrics_t *metrics;
    int64_t live_max_ms;
    int port;
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libmicrohttpd's own error messages, into our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_warning("http: %s", line);
}

/* Queues body (copied) with status and type. */
static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *fmt, ...)
{
    char body[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    return answer(conn, status, "text/plain; charset=utf-8", body,
                  strnlen(body, sizeof(body)));
}

static enum MHD_Result live(advrec_http_t *h, struct MHD_Connection *conn)
{
    advrec_counters_t *c = malloc(sizeof(*c));
    int64_t age;
    enum MHD_Result ret;

    if (!c)
        return text(conn, 500, "out of memory\n");
    advrec_metrics_read(h->metrics, c);
    age = mono_ms() - c->round_end_ms;
    if (c->stopping)
        ret = text(conn, 503, "stopped: the processing loop has ended\n");
    else if (c->round_end_ms == 0)
        ret = text(conn, 200, "starting: no round finished yet\n");
    else if (age > h->live_max_ms)
        ret = text(conn, 503,
                   "stuck: the last round finished %lld ms ago "
                   "(http.live.max.ms %lld)\n",
                   (long long)age, (long long)h->live_max_ms);
    else
        ret = text(conn, 200, "live: the last round finished %lld ms ago\n",
                   (long long)age);
    free(c);
    return ret;
}

static enum MHD_Result ready(advrec_http_t *h, struct MHD_Connection *conn)
{
    advrec_counters_t *c = malloc(sizeof(*c));
    enum MHD_Result ret;

    if (!c)
        return text(conn, 500, "out of memory\n");
    advrec_metrics_read(h->metrics, c);
    if (c->stopping)
        ret = text(conn, 503, "not ready: stopping\n");
    else if (!c->loaded_ms)
        ret = text(conn, 503, "not ready: loading the state\n");
    else if (c->partitions == 0)
        ret = text(conn, 503, "not ready: no input partition assigned yet\n");
    else
        ret = text(conn, 200, "ready: %u input partition(s) assigned\n",
                   c->partitions);
    free(c);
    return ret;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **req)
{
    advrec_http_t *h = cls;

    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text(conn, 405, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *body = advrec_metrics_prometheus(h->metrics, &len);
        enum MHD_Result ret;
        if (!body)
            return text(conn, 500, "out of memory\n");
        ret = answer(conn, 200, PROMETHEUS_TYPE, body, len);
        free(body);
        return ret;
    }
    if (strcmp(url, "/health/live") == 0)
        return live(h, conn);
    if (strcmp(url, "/health/ready") == 0)
        return ready(h, conn);
    return text(conn, 404,
                "not found: /metrics, /health/live, /health/ready\n");
}

/* "host:port" or "[v6]:port", numeric, into addr. 0 or -1. */
static int parse_listen(const char *listen, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(listen, ':'), *h = listen;
    size_t hlen;
    char *end;
    long port;

    if (!colon || colon == listen)
        return -1;
    hlen = (size_t)(colon - listen);
    if (listen[0] == '[') {
        if (hlen < 3 || listen[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -1;
    memset(addr, 0, sizeof(*addr));
    if (listen[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

advrec_err_t advrec_http_new(advrec_http_t **httpp,
                             const advrec_http_params_t *params, char *errstr,
                             size_t errstr_size)
{
    struct sockaddr_storage addr;
    const union MHD_DaemonInfo *info;
    advrec_http_t *h;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    *httpp = NULL;
    if (parse_listen(params->listen, &addr))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "http.listen \"%s\": expected a numeric "
                             "host:port (127.0.0.1:9464, [::1]:9464)",
                             params->listen);
    if (!(h = calloc(1, sizeof(*h))))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    h->metrics = params->metrics;
    h->live_max_ms = params->live_max_ms;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first, so libmicrohttpd's own messages all come to us. */
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, serve, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "http.listen %s: cannot listen (address in use, "
                             "or not local?)",
                             params->listen);
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *httpp = h;
    return ADVREC_OK;
}

int advrec_http_port(const advrec_http_t *h)
{
    return h->port;
}

void advrec_http_destroy(advrec_http_t *h)
{
    if (!h)
        return;
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    free(h);
}
