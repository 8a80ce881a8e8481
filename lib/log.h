/*
 * log.h - one logging macro family for the library, the daemon and the tools.
 *
 * Messages go to stderr as "<N>advrec: LEVEL message" where <N> is the syslog
 * priority prefix that journald understands (sd-daemon(3)), so under systemd
 * each line keeps its level; on a terminal the prefix is left out. The level is
 * checked before anything is formatted. The formatted message is one line:
 * the writer escapes every control byte in it (a newline as \n, any other
 * byte < 0x20 or 0x7f as \xNN), so ids and other input text passed through
 * %s can neither split a line nor forge a priority prefix. Long messages are
 * cut (about 2 KiB). librdkafka's log_cb/error_cb and
 * RocksDB's info log are routed here by the modules that own those handles.
 *
 * The threshold is process-wide (it is a property of where output goes, like
 * stderr itself); everything else in lib/ hangs off a context.
 */
#ifndef ADVREC_LOG_H
#define ADVREC_LOG_H

typedef enum advrec_log_level_e {
    ADVREC_LOG_ERR = 3,
    ADVREC_LOG_WARNING = 4,
    ADVREC_LOG_NOTICE = 5,
    ADVREC_LOG_INFO = 6,
    ADVREC_LOG_DEBUG = 7,
} advrec_log_level_t;

/* Current threshold: messages above it (less severe) are dropped. */
extern int advrec_log_threshold;

/* Sets the threshold; returns the previous one. */
int advrec_log_set_level(int level);

/* Parses "err", "warning", "notice", "info", "debug" (or 3..7); -1 if bad. */
int advrec_log_level_parse(const char *name);

void advrec_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ADVREC_LOG(level, ...)                      \
    do {                                            \
        if ((level) <= advrec_log_threshold)        \
            advrec_log_write((level), __VA_ARGS__); \
    } while (0)

#define log_err(...)     ADVREC_LOG(ADVREC_LOG_ERR, __VA_ARGS__)
#define log_warning(...) ADVREC_LOG(ADVREC_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  ADVREC_LOG(ADVREC_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    ADVREC_LOG(ADVREC_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   ADVREC_LOG(ADVREC_LOG_DEBUG, __VA_ARGS__)

#endif
