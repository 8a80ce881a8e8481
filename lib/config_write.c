/*
 * config_write.c - output of the configuration module (config.h): the
 * effective configuration as a loadable conf file (advrec_conf_write) and
 * the reference generated from the key table (advrec_conf_write_reference:
 * conf/advrecd.conf, docs/CONFIG.md and man/advrecd.conf.5). Output depends
 * only on the table and the values, never on the build or the machine;
 * secret kafka.* values are written as <redacted> (redact.h). Owns nothing.
 */
#include "config_int.h"
#include "redact.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value as it is written in a conf file (quoted when needed). */
static void write_value(FILE *fp, const char *v)
{
    size_t n = strlen(v);

    if (n && !isspace((unsigned char)v[0]) &&
        !isspace((unsigned char)v[n - 1]) && v[0] != '"' && v[0] != '\'') {
        fputs(v, fp);
        return;
    }
    fputc('"', fp);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', fp);
        fputc(*v, fp);
    }
    fputc('"', fp);
}

/* Shortest "%g" text that reads back as the same double. */
static void format_double(double d, char *buf, size_t size)
{
    /* Plain decimals where they are short enough to read, exponents else. */
    if (d == 0 || (fabs(d) >= 1e-4 && fabs(d) < 1e15)) {
        for (int dec = 0; dec <= 20; dec++) {
            snprintf(buf, size, "%.*f", dec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    }
    /* "1" reads as an integer to a human; "1.0" says it is a number. */
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

static void format_row(const advrec_conf_t *conf, const conf_row_t *row,
                       char *buf, size_t size)
{
    const void *p = field_cptr(conf, row);

    switch (row->type) {
    case CONF_BOOL:
        snprintf(buf, size, "%s", *(const bool *)p ? "true" : "false");
        return;
    case CONF_INT:
    case CONF_SIZE:
    case CONF_DURATION:
        snprintf(buf, size, "%" PRId64, *(const int64_t *)p);
        return;
    case CONF_DOUBLE:
        format_double(*(const double *)p, buf, size);
        return;
    case CONF_STRING:
        snprintf(buf, size, "%s", *(char *const *)p);
        return;
    case CONF_ENUM:
        for (const conf_word_t *w = row->words; w->word; w++) {
            if (w->value == *(const int *)p) {
                snprintf(buf, size, "%s", w->word);
                return;
            }
        }
        snprintf(buf, size, "%d", *(const int *)p);
        return;
    }
}

void advrec_conf_write(const advrec_conf_t *conf, FILE *fp)
{
    const char *group = NULL, *value;
    char buf[1024];

    fprintf(fp, "# advrecd %s effective configuration\n", advrec_version());
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
        const conf_row_t *row = &advrec_conf__rows[i];

        if (!group || strcmp(group, row->group) != 0) {
            group = row->group;
            fprintf(fp, "\n# %s\n", group);
        }
        /* Strings as they are, whatever their length (buf would cut them,
         * and the dump must load back); a secret one that is set is never
         * written out. */
        if (row->type == CONF_STRING) {
            value = *(char *const *)field_cptr(conf, row);
            if (*value)
                value = advrec_redact_value(row->name, value);
        } else {
            format_row(conf, row, buf, sizeof(buf));
            value = buf;
        }
        /* A note on its own line: only whole lines are comments. */
        if (row->offset == offsetof(advrec_conf_t, schema_dir) && !*value)
            fprintf(fp, "# (empty: built-in %s)\n",
                    advrec_conf_schema_dir(conf));
        fprintf(fp, "%s = ", row->name);
        write_value(fp, value);
        fputc('\n', fp);
    }
    fprintf(fp, "\n# schema.<N>: Confluent schema id -> .avsc\n");
    for (size_t i = 0; i < conf->schemas_cnt; i++) {
        fprintf(fp, "schema.%" PRId32 " = ", conf->schemas[i].id);
        write_value(fp, conf->schemas[i].path);
        fputc('\n', fp);
    }
    fprintf(fp, "\n# kafka.*: passed to librdkafka in this order\n");
    if (!advrec_conf_kafka_get(conf, "group.id")) {
        fprintf(fp, "# (group.id is set from group.id = ");
        write_value(fp, conf->group_id);
        fprintf(fp, ")\n");
    }
    for (size_t i = 0; i < conf->kafka_cnt; i++) {
        fprintf(fp, "kafka.%s = ", conf->kafka[i].name);
        /* Secrets are never printed; the dump is then not a loadable copy
         * of them, which is the point. */
        write_value(
            fp, advrec_redact_value(conf->kafka[i].name, conf->kafka[i].value));
        fputc('\n', fp);
    }
}

/* What values a row accepts, in words: "1 .. 1024", "one of a, b". */
static void describe_range(const conf_row_t *row, char *buf, size_t size)
{
    switch (row->type) {
    case CONF_BOOL:
        snprintf(buf, size, "true or false");
        return;
    case CONF_INT:
    case CONF_SIZE:
    case CONF_DURATION:
        if (row->imax == INT64_MAX)
            snprintf(buf, size, ">= %" PRId64, row->imin);
        else
            snprintf(buf, size, "%" PRId64 " .. %" PRId64, row->imin,
                     row->imax);
        if (row->type == CONF_SIZE)
            strncat(buf, " (suffixes k, M, G)", size - strlen(buf) - 1);
        if (row->type == CONF_DURATION)
            strncat(buf, " ms (suffixes ms, s, m, h, d)",
                    size - strlen(buf) - 1);
        return;
    case CONF_DOUBLE:
        snprintf(buf, size, "%g .. %g", row->dmin, row->dmax);
        return;
    case CONF_STRING:
        snprintf(buf, size, "%s",
                 row->flags & F_TOPIC ? "a Kafka topic name"
                 : row->flags & F_KNAME
                     ? "empty, or letters, digits, '.', '_', '-' (at most 249)"
                 : row->flags & F_PATH
                     ? "a path (relative: to the config file's directory)"
                 : row->imin > 0 ? "non-empty text"
                                 : "text");
        return;
    case CONF_ENUM: {
        size_t n = (size_t)snprintf(buf, size, "one of ");
        if (n < size)
            advrec_conf__words_join(row->words, ", ", buf + n, size - n);
        return;
    }
    }
}

static const char *type_name(conf_type_t type)
{
    static const char *const names[] = {
        [CONF_BOOL] = "bool",         [CONF_INT] = "int",
        [CONF_DOUBLE] = "double",     [CONF_STRING] = "string",
        [CONF_ENUM] = "enum",         [CONF_SIZE] = "size",
        [CONF_DURATION] = "duration",
    };
    return names[type];
}

/* Writes text as "# " comment lines wrapped at 78 columns. */
static void write_comment(FILE *fp, const char *text)
{
    const size_t width = 76;

    while (*text) {
        size_t n = strlen(text), cut = n;

        if (n > width) {
            cut = width;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = width;
        }
        fprintf(fp, "# %.*s\n", (int)cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

static const char *const ref_header_conf =
    "# advrecd.conf - the configuration of advrecd, the advrec daemon.\n"
    "#\n"
    "# Generated from the key table in lib/config.c; do not edit by hand, run\n"
    "#   advrecd --dump-config=conf > conf/advrecd.conf\n"
    "# Every key is listed, commented out, with its default: uncomment a line\n"
    "# to change it. Syntax: one `key = value` per line; `#` starts a comment\n"
    "# only as the first character of a line (values may contain it); values\n"
    "# may be \"double\" (with \\\" and \\\\) or 'single' quoted. Unknown "
    "keys\n"
    "# are an error. Options `-X key=value` override this file, in order.\n"
    "# The reference with every key is docs/CONFIG.md.\n";

static const char *const doc_kafka =
    "Any key kafka.<property> is handed to librdkafka as <property>, "
    "verbatim and in the order given (a later one wins); librdkafka checks "
    "it (advrecd --check-config shows its verdict). See librdkafka's "
    "CONFIGURATION.md.";

static const char *const doc_schema_map =
    "schema.<N> = path maps Confluent schema id N (1 .. 2147483647) to the "
    ".avsc file decoding records written with it; a relative path is relative "
    "to the config file's directory. Built in: schema.1 = click.avsc, "
    "schema.2 = purchase.avsc, schema.3 = recommendation.avsc, "
    "schema.4 = anomaly.avsc, inside schema.dir.";

static void write_reference_conf(FILE *fp)
{
    char range[256];

    fputs(ref_header_conf, fp);
    for (size_t g = 0; g < advrec_conf__groups_cnt; g++) {
        fprintf(fp, "\n\n# --- %s: %s ---\n", advrec_conf__groups[g].name,
                advrec_conf__groups[g].title);
        for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
            const conf_row_t *row = &advrec_conf__rows[i];

            if (strcmp(row->group, advrec_conf__groups[g].name) != 0)
                continue;
            describe_range(row, range, sizeof(range));
            fputc('\n', fp);
            write_comment(fp, row->doc);
            fprintf(fp, "# %s: %s.\n#%s = ", type_name(row->type), range,
                    row->name);
            write_value(fp, row->def);
            fputc('\n', fp);
        }
        if (strcmp(advrec_conf__groups[g].name, "schema") == 0) {
            fputc('\n', fp);
            write_comment(fp, doc_schema_map);
            fprintf(fp, "#schema.5 = /etc/advrec/schemas/click-v2.avsc\n");
        }
    }
    fprintf(fp, "\n\n# --- kafka: librdkafka properties ---\n\n");
    write_comment(fp, doc_kafka);
    fprintf(fp, "#kafka.bootstrap.servers = localhost:9092\n"
                "#kafka.session.timeout.ms = 45000\n");
}

/* Markdown text: '|' would end a table cell, "<N>" would be an HTML tag. */
static void md_text(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", fp);
        else if (*s == '>')
            fputs("&gt;", fp);
        else if (*s == '|')
            fputs("\\|", fp);
        else
            fputc(*s, fp);
    }
}

static void write_reference_md(FILE *fp)
{
    char range[256];

    fprintf(
        fp,
        "# advrecd configuration reference\n\n"
        "<!-- Generated from the key table in lib/config.c by\n"
        "     `advrecd --dump-config=md > docs/CONFIG.md`; do not edit. -->\n\n"
        "advrecd reads `advrecd -c FILE` (a commented example with every "
        "default is\n"
        "[conf/advrecd.conf](../conf/advrecd.conf)), then applies each `-X "
        "key=value`\n"
        "in order. `advrecd --check-config` validates and prints the "
        "effective\n"
        "configuration; besides each value it checks what the daemon would "
        "otherwise\n"
        "find only at start: every schema file read, each `schema.*.id` "
        "naming a\n"
        "schema of its kind, the state and checkpoint directories apart "
        "(each\n"
        "mistake named by key and file:line; docs/RELIABILITY.md).\n\n"
        "Syntax: one `key = value` per line; whitespace around key and value "
        "is\n"
        "ignored; `#` starts a comment only as the first character of a line, "
        "so a\n"
        "value may contain `#`; a value may be wrapped in \"double\" (with "
        "`\\\"` and\n"
        "`\\\\` escapes) or 'single' quotes. A later setting of a key "
        "overrides an\n"
        "earlier one. An unknown key, a malformed value or one out of range is "
        "an\n"
        "error naming the file, line and key.\n\n"
        "Types: `bool` is true/false (also yes/no, on/off, 1/0); `int` is a "
        "decimal\n"
        "integer; `double` a decimal number; `enum` one of the listed words; "
        "`size`\n"
        "an integer with an optional k, M, G suffix (powers of 1024).\n");
    for (size_t g = 0; g < advrec_conf__groups_cnt; g++) {
        fprintf(fp,
                "\n## %s: %s\n\n"
                "| Key | Type | Default | Accepts | Description |\n"
                "|---|---|---|---|---|\n",
                advrec_conf__groups[g].name, advrec_conf__groups[g].title);
        for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
            const conf_row_t *row = &advrec_conf__rows[i];

            if (strcmp(row->group, advrec_conf__groups[g].name) != 0)
                continue;
            describe_range(row, range, sizeof(range));
            fprintf(fp, "| `%s` | %s | ", row->name, type_name(row->type));
            if (*row->def)
                fprintf(fp, "`%s`", row->def);
            else
                fprintf(fp, "(empty)");
            fprintf(fp, " | ");
            md_text(fp, range);
            fprintf(fp, " | ");
            md_text(fp, row->doc);
            fprintf(fp, " |\n");
        }
        if (strcmp(advrec_conf__groups[g].name, "schema") == 0) {
            fputc('\n', fp);
            md_text(fp, doc_schema_map);
            fputc('\n', fp);
        }
    }
    fprintf(fp, "\n## kafka: librdkafka properties\n\n");
    md_text(fp, doc_kafka);
    fprintf(fp, "\n\nExample: `kafka.bootstrap.servers = localhost:9092`.\n");
}

/* roff text: a backslash is \e, and a line starting with '.' or '\'' would
 * be a request, so it gets a zero-width \& first. Hyphens stay hyphens. */
static void man_text(FILE *fp, const char *s)
{
    bool line_start = true;

    for (; *s; s++) {
        if (line_start && (*s == '.' || *s == '\''))
            fputs("\\&", fp);
        if (*s == '\\')
            fputs("\\e", fp);
        else
            fputc(*s, fp);
        line_start = *s == '\n';
    }
}

/* A word set in bold or italic (font then back to roman). */
static void man_font(FILE *fp, char font, const char *s)
{
    fprintf(fp, "\\f%c", font);
    man_text(fp, s);
    fputs("\\fR", fp);
}

static void write_reference_man(FILE *fp)
{
    char range[256];

    fputs(".\\\" Generated from the key table in lib/config_table.c by\n"
          ".\\\"   advrecd --dump-config=man > man/advrecd.conf.5\n"
          ".\\\" do not edit by hand.\n"
          ".TH ADVRECD.CONF 5 \"\" \"advrec\" \"File Formats Manual\"\n"
          ".SH NAME\n"
          "advrecd.conf \\- configuration file of advrecd, the advrec "
          "recommender daemon\n"
          ".SH SYNOPSIS\n"
          ".I /etc/advrec/advrecd.conf\n"
          ".SH DESCRIPTION\n"
          ".B advrecd\n"
          "reads the file named by\n"
          ".BR \"advrecd \\-c\" ,\n"
          "then applies each\n"
          ".B \\-X key=value\n"
          "option in order.\n"
          ".B advrecd \\-\\-check\\-config\n"
          "validates and prints the effective configuration.\n"
          "The installed file lists every key commented out with its "
          "default;\n"
          "uncomment a line to change it.\n"
          ".PP\n"
          "Syntax: one\n"
          ".B key = value\n"
          "per line; whitespace around key and value is ignored;\n"
          ".B #\n"
          "starts a comment only as the first character of a line, so a "
          "value may\n"
          "contain it; a value may be wrapped in \"double\" (with \\e\" and "
          "\\e\\e escapes)\n"
          "or 'single' quotes.\n"
          "A later setting of a key overrides an earlier one.\n"
          "An unknown key, a malformed value or one out of range is an "
          "error naming\n"
          "the file, line and key (exit status 78).\n"
          ".PP\n"
          "Types:\n"
          ".B bool\n"
          "is true/false (also yes/no, on/off, 1/0);\n"
          ".B int\n"
          "a decimal integer;\n"
          ".B double\n"
          "a decimal number;\n"
          ".B enum\n"
          "one of the listed words;\n"
          ".B size\n"
          "an integer with an optional k, M, G suffix (powers of 1024).\n"
          ".SH KEYS\n",
          fp);
    for (size_t g = 0; g < advrec_conf__groups_cnt; g++) {
        fprintf(fp, ".SS \"%s: ", advrec_conf__groups[g].name);
        man_text(fp, advrec_conf__groups[g].title);
        fputs("\"\n", fp);
        for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
            const conf_row_t *row = &advrec_conf__rows[i];

            if (strcmp(row->group, advrec_conf__groups[g].name) != 0)
                continue;
            describe_range(row, range, sizeof(range));
            fputs(".TP\n", fp);
            man_font(fp, 'B', row->name);
            fprintf(fp, " (%s, default ", type_name(row->type));
            if (*row->def)
                man_font(fp, 'I', row->def);
            else
                fputs("empty", fp);
            fputs(")\n", fp);
            man_text(fp, row->doc);
            fputs("\nAccepts: ", fp);
            man_text(fp, range);
            fputs(".\n", fp);
        }
        if (strcmp(advrec_conf__groups[g].name, "schema") == 0) {
            fputs(".TP\n\\fBschema.\\fR\\fIN\\fR\n", fp);
            man_text(fp, doc_schema_map);
            fputc('\n', fp);
        }
    }
    fputs(".SS \"kafka: librdkafka properties\"\n"
          ".TP\n\\fBkafka.\\fR\\fIproperty\\fR\n",
          fp);
    man_text(fp, doc_kafka);
    fputs("\nExample:\n"
          ".BR \"kafka.bootstrap.servers = localhost:9092\" .\n"
          ".SH FILES\n"
          ".TP\n.I /etc/advrec/advrecd.conf\n"
          "the configuration the systemd unit passes to advrecd "
          "(mode 0640, group advrec)\n"
          ".TP\n.I /var/lib/advrec\n"
          "the default state.dir\n"
          ".TP\n.I /var/lib/advrec\\-checkpoints\n"
          "the default state.checkpoint.dir\n"
          ".TP\n.I /usr/share/advrec/schemas\n"
          "the built-in schema.dir\n"
          ".SH \"SEE ALSO\"\n"
          ".BR advrecd (8),\n"
          ".BR advrec\\-inspect (1),\n"
          ".BR advrec\\-produce (1);\n"
          "librdkafka's CONFIGURATION.md for kafka.* properties.\n",
          fp);
}

void advrec_conf_write_reference(FILE *fp, advrec_conf_format_t format)
{
    switch (format) {
    case ADVREC_CONF_FORMAT_MD:
        write_reference_md(fp);
        return;
    case ADVREC_CONF_FORMAT_MAN:
        write_reference_man(fp);
        return;
    case ADVREC_CONF_FORMAT_CONF:
        break;
    }
    write_reference_conf(fp);
}

int advrec_conf_value(const advrec_conf_t *conf, const char *key, char *buf,
                      size_t size)
{
    for (size_t i = 0; i < advrec_conf__rows_cnt; i++) {
        if (strcmp(advrec_conf__rows[i].name, key) == 0) {
            format_row(conf, &advrec_conf__rows[i], buf, size);
            return 0;
        }
    }
    if (size)
        buf[0] = '\0';
    return -1;
}
