/*
 * redact.c - the one rule for secret configuration values (redact.h).
 * Owns nothing.
 */
#include "redact.h"

#include <string.h>
#include <strings.h>

/* Name fragments that mark a secret. librdkafka's own sensitive properties
 * (sasl.password, ssl.key.password, ssl.keystore.password, ssl.key.pem,
 * ssl_key, sasl.oauthbearer.client.secret, sasl.oauthbearer.config, the
 * assertion private key and its passphrase) all match one of them, and so
 * do the Schema Registry's credentials (basic.auth.user.info). */
static const char *const secret_fragments[] = {
    "password",
    "passphrase",
    "secret",
    "private.key",
    "ssl.key.pem",
    "ssl_key",
    "sasl.oauthbearer.config",
    /* schema.registry.basic.auth.user.info: "user:password" */
    "user.info",
};

bool advrec_redact_is_secret(const char *name)
{
    for (size_t i = 0;
         i < sizeof(secret_fragments) / sizeof(secret_fragments[0]); i++)
        if (strcasestr(name, secret_fragments[i]))
            return true;
    return false;
}

const char *advrec_redact_value(const char *name, const char *value)
{
    return advrec_redact_is_secret(name) ? ADVREC_REDACTED : value;
}

void advrec_redact_scrub(char *buf, size_t size, const char *secret)
{
    const size_t slen = secret ? strlen(secret) : 0;
    const size_t rlen = strlen(ADVREC_REDACTED);
    char *p = buf;

    if (!slen || !size)
        return;
    while ((p = strstr(p, secret))) {
        size_t off = (size_t)(p - buf);
        size_t tail = strlen(p + slen);

        if (off + rlen >= size) {
            /* No room even for the marker: cut the text here. */
            *p = '\0';
            return;
        }
        if (off + rlen + tail >= size)
            tail = size - 1 - off - rlen;
        memmove(p + rlen, p + slen, tail);
        memcpy(p, ADVREC_REDACTED, rlen);
        p[rlen + tail] = '\0';
        p += rlen;
    }
}
