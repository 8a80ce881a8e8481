/*
 * err.h - advrec's error codes: one enum, 0 is OK, one table of messages.
 *
 * Rules (as libuv writes them down once):
 *  - A function that can fail returns advrec_err_t; ADVREC_OK (0) is success.
 *  - Constructors and I/O also fill a caller's `char *errstr, size_t
 *    errstr_size` with a sentence that carries context (file and line, topic,
 *    partition and offset, key): the code says what kind of failure, the
 *    string says where and why.
 *  - Errors of librdkafka, RocksDB and Avro-C are turned into these codes
 *    where they cross into our code, with that context added.
 */
#ifndef ADVREC_ERR_H
#define ADVREC_ERR_H

#include <stddef.h>

#define ADVREC_ERR_MAP(X)                                              \
    X(OK, "success")                                                   \
    X(INVALID_ARG, "invalid argument")                                 \
    X(NOMEM, "out of memory")                                          \
    X(IO, "input/output error")                                        \
    X(NOT_FOUND, "not found")                                          \
    X(CONFIG, "invalid configuration")                                 \
    X(PARSE, "malformed input")                                        \
    X(SCHEMA, "schema error")                                          \
    X(DECODE, "record does not decode")                                \
    X(ENCODE, "record does not encode")                                \
    X(KAFKA, "Kafka client error")                                     \
    X(STORE, "state store error")                                      \
    X(STATE_MISMATCH, "state was written under another configuration") \
    X(STATE_LOST, "state lost commits or offsets it had acknowledged") \
    X(FULL, "queue full")                                              \
    X(TIMEOUT, "timed out")                                            \
    X(STOPPED, "stopped")                                              \
    X(EOF, "end of stream")

typedef enum advrec_err_e {
#define ADVREC_ERR_ENUM(name, msg) ADVREC_ERR_##name,
    ADVREC_ERR_MAP(ADVREC_ERR_ENUM)
#undef ADVREC_ERR_ENUM
        ADVREC_ERR__COUNT
} advrec_err_t;

#define ADVREC_OK ADVREC_ERR_OK

/* The short, static description of an error code; never NULL. */
const char *advrec_err2str(advrec_err_t err);

/* The symbolic name of an error code ("DECODE"); never NULL. */
const char *advrec_err_name(advrec_err_t err);

/*
 * Formats into errstr (if errstr_size > 0) and returns err, so a failure is
 * reported in one line: `return advrec_seterr(err, errstr, size, "...", ...)`.
 */
advrec_err_t advrec_seterr(advrec_err_t err, char *errstr, size_t errstr_size,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
