/*
 * registry.h - a client of a Confluent Schema Registry (or a registry that
 * speaks its API, as Apicurio's /apis/ccompat/v7 does), over HTTP(S) with
 * libcurl; JSON with jansson.
 *
 * What advrec asks of a registry, and the calls that do it:
 *
 *   GET  {url}/schemas/ids/{id}                       advrec_registry_schema
 *   POST {url}/compatibility/subjects/{s}/versions/latest
 *   POST {url}/subjects/{s}/versions                  advrec_registry_register
 *   POST {url}/subjects/{s}                           advrec_registry_lookup
 *
 * Errors are sorted by what the caller should do about them:
 *
 *   ADVREC_ERR_NOT_FOUND  the registry answered: no such id, subject or
 *                         schema (404). Final for this request.
 *   ADVREC_ERR_SCHEMA     the registry answered: the schema is refused as
 *                         incompatible or invalid (409, 422, or a compatibility
 *                         check that says false), or a fetched schema is not
 *                         plain Avro (another schemaType, or references).
 *   ADVREC_ERR_IO         the registry could not be asked, or did not give a
 *                         usable answer: no connection, a timeout, TLS, a 5xx,
 *                         401/403 (credentials), a body that is not the
 *                         expected JSON. Worth retrying later; never a
 *                         verdict on the schema.
 *   ADVREC_ERR_NOMEM      out of memory.
 *
 * errstr always says which URL was asked and what came back (status, the
 * registry's error_code and message, or libcurl's reason); the credentials
 * are never part of it.
 *
 * Threads: a registry handle is used by one thread at a time (it keeps one
 * curl handle, so connections are reused between calls).
 */
#ifndef ADVREC_REGISTRY_H
#define ADVREC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct advrec_registry_s advrec_registry_t;

typedef struct advrec_registry_opts_s {
    /* Base URL, e.g. "http://127.0.0.1:8081" or an Apicurio
     * "http://host:8080/apis/ccompat/v7" (a trailing '/' is ignored). */
    const char *url;
    /* "user:password" for HTTP basic authentication; NULL or "": none. */
    const char *user_info;
    /* A PEM file of CA certificates to verify an https:// registry with;
     * NULL or "": the system's. */
    const char *ca_location;
    /* Bound of one request, connection included, in milliseconds (> 0). */
    int64_t timeout_ms;
} advrec_registry_opts_t;

/*
 * Creates a client (no request is made). The strings in opts are copied.
 * Returns ADVREC_OK, or ADVREC_ERR_CONFIG (empty or non-http(s) URL,
 * timeout <= 0) / ADVREC_ERR_NOMEM with errstr set and *regp NULL.
 */
advrec_err_t advrec_registry_new(advrec_registry_t **regp,
                                 const advrec_registry_opts_t *opts,
                                 char *errstr, size_t errstr_size);

/* Frees the client; NULL is a no-op. */
void advrec_registry_destroy(advrec_registry_t *reg);

/* The base URL the client asks (without a trailing '/'). */
const char *advrec_registry_url(const advrec_registry_t *reg);

/*
 * The schema registered under global id `id`: on ADVREC_OK *json is its
 * text (malloc'd, NUL-terminated, owned by the caller) and *len its length.
 * A schema whose schemaType is not AVRO, or that has references, is
 * ADVREC_ERR_SCHEMA. Other errors as above; *json is NULL on error.
 */
advrec_err_t advrec_registry_schema(advrec_registry_t *reg, int32_t id,
                                    char **json, size_t *len, char *errstr,
                                    size_t errstr_size);

/*
 * Registers the Avro schema text `json` under `subject`, after asking the
 * registry whether it is compatible with the subject's latest version (a
 * subject with no version yet is compatible with anything). Registering a
 * schema the subject already has returns its existing id. On ADVREC_OK *id
 * is the registry's global id of the schema. An incompatible schema is
 * ADVREC_ERR_SCHEMA with the registry's reasons in errstr.
 */
advrec_err_t advrec_registry_register(advrec_registry_t *reg,
                                      const char *subject, const char *json,
                                      int32_t *id, char *errstr,
                                      size_t errstr_size);

/*
 * The id of schema `json` if it is registered under `subject`, without
 * registering anything: ADVREC_ERR_NOT_FOUND if the subject or the schema
 * is not there.
 */
advrec_err_t advrec_registry_lookup(advrec_registry_t *reg, const char *subject,
                                    const char *json, int32_t *id, char *errstr,
                                    size_t errstr_size);

#endif
