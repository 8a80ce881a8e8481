/*
 * redact.h - which configuration values are secrets, and what is printed in
 * their place.
 *
 * A secret (a SASL password, an SSL private key or its password, an OAuth
 * client secret or sasl.oauthbearer.config) must never reach the effective
 * configuration dump (advrecd --check-config), an error message, a log line
 * or a metric. Every place that prints a kafka.* value asks this module
 * first; it depends on nothing of ours, so lib/config and lib/kafka share one
 * rule.
 */
#ifndef ADVREC_REDACT_H
#define ADVREC_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* Printed instead of a secret value. */
#define ADVREC_REDACTED "<redacted>"

/*
 * True when the property name (a librdkafka property, with or without the
 * "kafka." prefix) holds a secret: its name contains, case-insensitively,
 * "password", "passphrase", "secret", "private.key", "sasl.oauthbearer.config",
 * "ssl.key.pem" or "ssl_key". Errs on the side of hiding: an unknown property
 * whose name says it is secret is treated as one.
 */
bool advrec_redact_is_secret(const char *name);

/*
 * The text to print for name's value: value itself, or ADVREC_REDACTED when
 * name is a secret. Returns value (owned by the caller) or a static string.
 */
const char *advrec_redact_value(const char *name, const char *value);

/*
 * Replaces, in place, every occurrence of secret (when non-empty) in the
 * NUL-terminated text buf of capacity size by ADVREC_REDACTED, truncating if
 * the result would not fit. For messages written by someone else (librdkafka)
 * that may quote a secret value back.
 */
void advrec_redact_scrub(char *buf, size_t size, const char *secret);

#endif
