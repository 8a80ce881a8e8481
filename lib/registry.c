/*
 * registry.c - the Schema Registry client (registry.h): one curl easy
 * handle, requests built and answers parsed here. Owns its copies of the
 * options, the curl handle and the response buffer.
 */
#include "registry.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

/* An answer larger than this is not a schema we could use: refused rather
 * than buffered without bound. */
#define MAX_BODY (4u << 20)

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

struct advrec_registry_s {
    char *url; /* without a trailing '/' */
    char *user_info;
    char *ca_location;
    long timeout_ms;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    /* The last answer's body, NUL-terminated. */
    char *body;
    size_t body_len;
    size_t body_cap;
    int body_too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    advrec_registry_t *reg = opaque;
    size_t n = size * nmemb;

    if (reg->body_len + n + 1 > MAX_BODY) {
        reg->body_too_big = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (reg->body_len + n + 1 > reg->body_cap) {
        size_t cap = reg->body_cap ? reg->body_cap : 4096;
        while (cap < reg->body_len + n + 1)
            cap *= 2;
        char *bigger = realloc(reg->body, cap);
        if (!bigger)
            return 0;
        reg->body = bigger;
        reg->body_cap = cap;
    }
    memcpy(reg->body + reg->body_len, ptr, n);
    reg->body_len += n;
    reg->body[reg->body_len] = '\0';
    return n;
}

advrec_err_t advrec_registry_new(advrec_registry_t **regp,
                                 const advrec_registry_opts_t *opts,
                                 char *errstr, size_t errstr_size)
{
    advrec_registry_t *reg;
    size_t n;

    *regp = NULL;
    if (!opts->url || (strncasecmp(opts->url, "http://", 7) != 0 &&
                       strncasecmp(opts->url, "https://", 8) != 0))
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "schema registry URL \"%s\": not an http:// or "
                             "https:// URL",
                             opts->url ? opts->url : "");
    if (opts->timeout_ms <= 0)
        return advrec_seterr(ADVREC_ERR_CONFIG, errstr, errstr_size,
                             "schema registry timeout %lld ms: must be > 0",
                             (long long)opts->timeout_ms);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size, "libcurl: %s",
                             curl_easy_strerror(curl_init_rc));
    if (!(reg = calloc(1, sizeof(*reg))))
        goto nomem;
    reg->timeout_ms = (long)opts->timeout_ms;
    if (!(reg->url = strdup(opts->url)) ||
        (opts->user_info && *opts->user_info &&
         !(reg->user_info = strdup(opts->user_info))) ||
        (opts->ca_location && *opts->ca_location &&
         !(reg->ca_location = strdup(opts->ca_location))) ||
        !(reg->curl = curl_easy_init()))
        goto nomem;
    n = strlen(reg->url);
    while (n > 0 && reg->url[n - 1] == '/')
        reg->url[--n] = '\0';
    *regp = reg;
    return ADVREC_OK;

nomem:
    advrec_registry_destroy(reg);
    return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                         "out of memory");
}

void advrec_registry_destroy(advrec_registry_t *reg)
{
    if (!reg)
        return;
    if (reg->curl)
        curl_easy_cleanup(reg->curl);
    if (reg->user_info) {
        /* The password should not outlive its use in freed memory. */
        volatile char *p = reg->user_info;
        while (*p)
            *p++ = '\0';
    }
    free(reg->user_info);
    free(reg->ca_location);
    free(reg->url);
    free(reg->body);
    free(reg);
}

const char *advrec_registry_url(const advrec_registry_t *reg)
{
    return reg->url;
}

/*
 * One request: GET when body is NULL, else POST of that JSON. On return
 * *status is the HTTP status (0 when none came) and reg->body the answer.
 * ADVREC_ERR_IO with errstr set when no complete answer came; the caller
 * judges the status.
 */
static advrec_err_t request(advrec_registry_t *reg, const char *url,
                            const char *body, long *status, char *errstr,
                            size_t errstr_size)
{
    struct curl_slist *headers = NULL, *h;
    CURL *c = reg->curl;
    CURLcode rc;

    *status = 0;
    reg->body_len = 0;
    reg->body_too_big = 0;
    if (reg->body)
        reg->body[0] = '\0';
    curl_easy_reset(c);
    if (!(h = curl_slist_append(headers,
                                "Accept: " CONTENT_TYPE ", application/json")))
        goto nomem;
    headers = h;
    if (body) {
        if (!(h = curl_slist_append(headers, "Content-Type: " CONTENT_TYPE)))
            goto nomem;
        headers = h;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reg);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, reg->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, reg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, reg->timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "advrec");
    if (reg->user_info) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, reg->user_info);
    }
    if (reg->ca_location)
        curl_easy_setopt(c, CURLOPT_CAINFO, reg->ca_location);
    reg->curl_err[0] = '\0';
    rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        if (reg->body_too_big)
            return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                                 "%s: answer larger than %u bytes", url,
                                 MAX_BODY);
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size, "%s: %s", url,
                             reg->curl_err[0] ? reg->curl_err
                                              : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (!reg->body) { /* an empty answer */
        if (!(reg->body = calloc(1, 1)))
            return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                 "out of memory");
        reg->body_cap = 1;
    }
    return ADVREC_OK;

nomem:
    curl_slist_free_all(headers);
    return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                         "out of memory");
}

/*
 * The error of an answer that is not a success: 404 is NOT_FOUND, 409 and
 * 422 SCHEMA, anything else IO (worth a retry). The message names the URL,
 * the status and the registry's own error_code and message when it gave
 * them.
 */
static advrec_err_t answer_err(advrec_registry_t *reg, const char *url,
                               long status, char *errstr, size_t errstr_size)
{
    advrec_err_t err = status == 404                    ? ADVREC_ERR_NOT_FOUND
                       : status == 409 || status == 422 ? ADVREC_ERR_SCHEMA
                                                        : ADVREC_ERR_IO;
    json_t *root = json_loadb(reg->body, reg->body_len, 0, NULL);
    json_t *code = root ? json_object_get(root, "error_code") : NULL;
    json_t *msg = root ? json_object_get(root, "message") : NULL;

    if (json_is_integer(code) && json_is_string(msg))
        advrec_seterr(err, errstr, errstr_size, "%s: HTTP %ld, error %lld: %s",
                      url, status, (long long)json_integer_value(code),
                      json_string_value(msg));
    else
        advrec_seterr(err, errstr, errstr_size, "%s: HTTP %ld%s%.200s", url,
                      status, reg->body_len ? ": " : "", reg->body);
    json_decref(root);
    return err;
}

/* The answer parsed as a JSON object; NULL (errstr set, ADVREC_ERR_IO) if it
 * is not one. */
static json_t *answer_json(advrec_registry_t *reg, const char *url,
                           char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(reg->body, reg->body_len, 0, &jerr);

    if (root && json_is_object(root))
        return root;
    json_decref(root);
    advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                  "%s: the answer is not a JSON object (%s): %.200s", url,
                  root ? "another JSON value" : jerr.text, reg->body);
    return NULL;
}

/* {"schema": json} as text (malloc'd), or NULL without memory. */
static char *schema_body(const char *json)
{
    json_t *o = json_pack("{s:s}", "schema", json);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return text;
}

/* url/<a>/<escaped subject><b> in buf; -1 without memory or room. */
static int subject_url(advrec_registry_t *reg, char *buf, size_t size,
                       const char *a, const char *subject, const char *b)
{
    char *esc = curl_easy_escape(reg->curl, subject, 0);
    int n;

    if (!esc)
        return -1;
    n = snprintf(buf, size, "%s/%s/%s%s", reg->url, a, esc, b);
    curl_free(esc);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

advrec_err_t advrec_registry_schema(advrec_registry_t *reg, int32_t id,
                                    char **json, size_t *len, char *errstr,
                                    size_t errstr_size)
{
    char url[2048];
    long status;
    json_t *root, *schema, *type, *refs;
    advrec_err_t err;

    *json = NULL;
    *len = 0;
    snprintf(url, sizeof(url), "%s/schemas/ids/%ld", reg->url, (long)id);
    if ((err = request(reg, url, NULL, &status, errstr, errstr_size)))
        return err;
    if (status != 200)
        return answer_err(reg, url, status, errstr, errstr_size);
    if (!(root = answer_json(reg, url, errstr, errstr_size)))
        return ADVREC_ERR_IO;
    schema = json_object_get(root, "schema");
    type = json_object_get(root, "schemaType");
    refs = json_object_get(root, "references");
    if (!json_is_string(schema))
        err = advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                            "%s: the answer has no \"schema\" string: %.200s",
                            url, reg->body);
    else if (type && !json_is_null(type) &&
             (!json_is_string(type) ||
              strcasecmp(json_string_value(type), "AVRO") != 0))
        err =
            advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                          "schema id %ld is of type %s, not Avro", (long)id,
                          json_is_string(type) ? json_string_value(type) : "?");
    else if (json_is_array(refs) && json_array_size(refs) > 0)
        err = advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                            "schema id %ld refers to other subjects' schemas "
                            "(references are not supported)",
                            (long)id);
    else if (!(*json = strdup(json_string_value(schema))))
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
    else
        *len = json_string_length(schema);
    json_decref(root);
    return err;
}

/* The integer field `name` of the answer in *out (an id, within int32). */
static advrec_err_t answer_id(advrec_registry_t *reg, const char *url,
                              const char *name, int32_t *out, char *errstr,
                              size_t errstr_size)
{
    json_t *root = answer_json(reg, url, errstr, errstr_size);
    json_t *v = root ? json_object_get(root, name) : NULL;
    advrec_err_t err = ADVREC_OK;

    if (!root)
        return ADVREC_ERR_IO;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > INT32_MAX)
        err = advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                            "%s: the answer has no \"%s\" id: %.200s", url,
                            name, reg->body);
    else
        *out = (int32_t)json_integer_value(v);
    json_decref(root);
    return err;
}

/* Whether json may be registered under subject: ADVREC_OK, or
 * ADVREC_ERR_SCHEMA with the registry's reasons when it may not. */
static advrec_err_t compatible(advrec_registry_t *reg, const char *subject,
                               const char *body, char *errstr,
                               size_t errstr_size)
{
    char url[2048];
    long status;
    json_t *root, *ok, *why;
    advrec_err_t err;

    if (subject_url(reg, url, sizeof(url), "compatibility/subjects", subject,
                    "/versions/latest?verbose=true"))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "subject URL too long or out of memory");
    if ((err = request(reg, url, body, &status, errstr, errstr_size)))
        return err;
    if (status == 404)
        return ADVREC_OK; /* no version yet: anything goes */
    if (status != 200)
        return answer_err(reg, url, status, errstr, errstr_size);
    if (!(root = answer_json(reg, url, errstr, errstr_size)))
        return ADVREC_ERR_IO;
    ok = json_object_get(root, "is_compatible");
    why = json_object_get(root, "messages");
    if (!json_is_boolean(ok))
        err = advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                            "%s: the answer has no \"is_compatible\": %.200s",
                            url, reg->body);
    else if (!json_is_true(ok)) {
        char *reasons = why ? json_dumps(why, JSON_COMPACT) : NULL;
        err =
            advrec_seterr(ADVREC_ERR_SCHEMA, errstr, errstr_size,
                          "not compatible with the latest version of "
                          "subject %s%s%.400s",
                          subject, reasons ? ": " : "", reasons ? reasons : "");
        free(reasons);
    }
    json_decref(root);
    return err;
}

/* POSTs {"schema": json} to url/subjects/<subject><tail> and takes the
 * answer's "id" into *id. */
static advrec_err_t post_schema(advrec_registry_t *reg, const char *subject,
                                const char *tail, const char *body, int32_t *id,
                                char *errstr, size_t errstr_size)
{
    char url[2048];
    long status;
    advrec_err_t err;

    if (subject_url(reg, url, sizeof(url), "subjects", subject, tail))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "subject URL too long or out of memory");
    if ((err = request(reg, url, body, &status, errstr, errstr_size)))
        return err;
    if (status != 200)
        return answer_err(reg, url, status, errstr, errstr_size);
    return answer_id(reg, url, "id", id, errstr, errstr_size);
}

advrec_err_t advrec_registry_register(advrec_registry_t *reg,
                                      const char *subject, const char *json,
                                      int32_t *id, char *errstr,
                                      size_t errstr_size)
{
    char *body = schema_body(json);
    advrec_err_t err;

    if (!body)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    if (!(err = compatible(reg, subject, body, errstr, errstr_size)))
        err = post_schema(reg, subject, "/versions", body, id, errstr,
                          errstr_size);
    free(body);
    return err;
}

advrec_err_t advrec_registry_lookup(advrec_registry_t *reg, const char *subject,
                                    const char *json, int32_t *id, char *errstr,
                                    size_t errstr_size)
{
    char *body = schema_body(json);
    advrec_err_t err;

    if (!body)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    err = post_schema(reg, subject, "", body, id, errstr, errstr_size);
    free(body);
    return err;
}
