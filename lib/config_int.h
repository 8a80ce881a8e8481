/*
 * config_int.h - the configuration module's internals, shared by its three
 * files and by nothing else (not installed):
 *
 *   config_table.c  the declarative key table: every key's name, type,
 *                   field, range, default, group and doc (the one place a
 *                   key is described);
 *   config.c        parsing and setting values, files, -X, kafka.* and
 *                   schema.<N>, the cross-key check;
 *   config_write.c  the effective-config dump and the generated reference
 *                   (conf/advrecd.conf, docs/CONFIG.md).
 */
#ifndef ADVREC_CONFIG_INT_H
#define ADVREC_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SCHEMA_ID_MAX INT32_MAX

typedef enum conf_type_e {
    CONF_BOOL,
    CONF_INT,
    CONF_DOUBLE,
    CONF_STRING,
    CONF_ENUM,
    CONF_SIZE,
    CONF_DURATION, /* int64_t milliseconds; suffixes ms, s, m, h, d */
} conf_type_t;

typedef struct conf_word_s {
    const char *word;
    int value;
} conf_word_t;

/* Row flags. */
#define F_PATH  0x1 /* relative to the config file's directory in a file */
#define F_TOPIC 0x2 /* a Kafka topic name */
#define F_KNAME                                                \
    0x4 /* empty, or a name with a topic name's rules (Kafka's \
           group.instance.id) */

typedef struct conf_row_s {
    const char *name;
    conf_type_t type;
    size_t offset;
    int64_t imin, imax;       /* int, size; string: minimum length in imin */
    double dmin, dmax;        /* double */
    const conf_word_t *words; /* enum, NULL-terminated */
    const char *def; /* default, as text: parsed like any other value */
    const char *group;
    const char *doc;
    unsigned flags;
} conf_row_t;

typedef struct conf_group_s {
    const char *name;
    const char *title;
} conf_group_t;

/* One built-in schema.<N> entry: a file inside schema.dir. */
typedef struct conf_default_schema_s {
    int32_t id;
    const char *file;
} conf_default_schema_t;

/* The key table, in display order (config_table.c). */
extern const conf_row_t advrec_conf__rows[];
extern const size_t advrec_conf__rows_cnt;
/* Display order and titles of the groups the rows name. */
extern const conf_group_t advrec_conf__groups[];
extern const size_t advrec_conf__groups_cnt;
/* The default schema.<N> map. */
extern const conf_default_schema_t advrec_conf__default_schemas[];
extern const size_t advrec_conf__default_schemas_cnt;

/* The words of an enum row joined by sep into buf (size bytes, truncated,
 * NUL-terminated). */
void advrec_conf__words_join(const conf_word_t *words, const char *sep,
                             char *buf, size_t size);

static inline void *field_ptr(advrec_conf_t *conf, const conf_row_t *row)
{
    return (char *)conf + row->offset;
}

static inline const void *field_cptr(const advrec_conf_t *conf,
                                     const conf_row_t *row)
{
    return (const char *)conf + row->offset;
}

/* dir + "/" + file, or a copy of file when it is absolute or dir is NULL.
 * Returns a new string (caller frees) or NULL when out of memory. */
char *advrec_conf__path_join(const char *dir, const char *file);

/* config_value.c: one value's text; ADVREC_ERR_CONFIG with a short why.
 * check_name: Kafka's rules for a topic name (group.instance.id shares
 * them); what names the kind in the message. */
advrec_err_t advrec_conf__parse_bool(const char *s, bool *out, char *why,
                                     size_t why_size);
advrec_err_t advrec_conf__parse_int(const char *s, int64_t *out, char *why,
                                    size_t why_size);
advrec_err_t advrec_conf__parse_double(const char *s, double *out, char *why,
                                       size_t why_size);
advrec_err_t advrec_conf__check_name(const char *s, const char *what, char *why,
                                     size_t why_size);

#endif
