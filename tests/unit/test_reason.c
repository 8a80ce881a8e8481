/*
 * test_reason.c - the dead-letter reason table: every reason has a unique,
 * stable name and a meaning, docs/SCHEMAS.md has its row (so the docs cannot
 * drift from the table, as test_config does for docs/CONFIG.md), names
 * parse back, and engine errors map to the documented reasons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "reason.h"

/* docs/SCHEMAS.md as one malloc'd string, or NULL. */
static char *read_doc(void)
{
    char path[1024];
    FILE *fp;
    char *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/docs/SCHEMAS.md", ADVREC_TEST_SOURCE_DIR);
    fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 &&
        fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(fp);
    return buf;
}

static void test_names_unique_and_parse(void)
{
    for (int r = ADVREC_DLQ_NONE + 1; r < ADVREC_DLQ__COUNT; r++) {
        const char *name = advrec_dlq_reason_name((advrec_dlq_reason_t)r);
        CHECK(name[0] != '\0');
        CHECK(advrec_dlq_reason_meaning((advrec_dlq_reason_t)r)[0] != '\0');
        CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz-") == strlen(name));
        CHECK_INT(advrec_dlq_reason_parse(name, strlen(name)), r);
        for (int o = ADVREC_DLQ_NONE + 1; o < r; o++)
            CHECK(strcmp(name,
                         advrec_dlq_reason_name((advrec_dlq_reason_t)o)) != 0);
    }
    CHECK_INT(advrec_dlq_reason_parse("bad-magic: x", 9), ADVREC_DLQ_BAD_MAGIC);
    CHECK_INT(advrec_dlq_reason_parse("bad-mag", 7), ADVREC_DLQ_NONE);
    CHECK_INT(advrec_dlq_reason_parse("none", 4), ADVREC_DLQ_NONE);
    CHECK_STR(advrec_dlq_reason_name(ADVREC_DLQ__COUNT), "internal");
}

/* The strings downstream consumers match on, written out: renaming one is
 * a breaking change and must fail here first. */
static void test_stable_strings(void)
{
    static const struct {
        advrec_dlq_reason_t r;
        const char *name;
    } want[] = {
        {ADVREC_DLQ_SHORT_FRAME, "short-frame"},
        {ADVREC_DLQ_BAD_MAGIC, "bad-magic"},
        {ADVREC_DLQ_UNKNOWN_SCHEMA, "unknown-schema"},
        {ADVREC_DLQ_WRONG_KIND, "wrong-kind"},
        {ADVREC_DLQ_TRUNCATED, "truncated"},
        {ADVREC_DLQ_BAD_VARINT, "bad-varint"},
        {ADVREC_DLQ_BAD_LENGTH, "bad-length"},
        {ADVREC_DLQ_BAD_COUNT, "bad-count"},
        {ADVREC_DLQ_BAD_UNION, "bad-union"},
        {ADVREC_DLQ_BAD_ENUM, "bad-enum"},
        {ADVREC_DLQ_BAD_BOOLEAN, "bad-boolean"},
        {ADVREC_DLQ_TRAILING_BYTES, "trailing-bytes"},
        {ADVREC_DLQ_TOO_DEEP, "too-deep"},
        {ADVREC_DLQ_BAD_FIELD, "bad-field"},
        {ADVREC_DLQ_INVALID_EVENT, "invalid-event"},
        {ADVREC_DLQ_AVRO, "avro"},
        {ADVREC_DLQ_TABLE_FULL, "table-full"},
        {ADVREC_DLQ_NO_MEMORY, "no-memory"},
        {ADVREC_DLQ_INTERNAL, "internal"},
        {ADVREC_DLQ_INCOMPATIBLE_SCHEMA, "incompatible-schema"},
        {ADVREC_DLQ_ID_TOO_LONG, "id-too-long"},
        {ADVREC_DLQ_BAD_CONTROL, "bad-control"},
    };

    CHECK_INT(sizeof(want) / sizeof(want[0]), ADVREC_DLQ__COUNT - 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK_STR(advrec_dlq_reason_name(want[i].r), want[i].name);
}

static void test_from_err(void)
{
    CHECK_INT(advrec_dlq_reason_from_err(ADVREC_OK), ADVREC_DLQ_NONE);
    CHECK_INT(advrec_dlq_reason_from_err(ADVREC_ERR_FULL),
              ADVREC_DLQ_TABLE_FULL);
    CHECK_INT(advrec_dlq_reason_from_err(ADVREC_ERR_NOMEM),
              ADVREC_DLQ_NO_MEMORY);
    CHECK_INT(advrec_dlq_reason_from_err(ADVREC_ERR_INVALID_ARG),
              ADVREC_DLQ_INTERNAL);
}

/* Each reason has the row "| `name` | meaning | example |" in
 * docs/SCHEMAS.md, its meaning exactly the table's. */
static void test_documented(void)
{
    char *doc = read_doc();
    char row[512];

    CHECK(doc != NULL);
    if (!doc)
        return;
    for (int r = ADVREC_DLQ_NONE + 1; r < ADVREC_DLQ__COUNT; r++) {
        snprintf(row, sizeof(row), "\n| `%s` | %s | ",
                 advrec_dlq_reason_name((advrec_dlq_reason_t)r),
                 advrec_dlq_reason_meaning((advrec_dlq_reason_t)r));
        if (!strstr(doc, row))
            fprintf(stderr, "docs/SCHEMAS.md lacks the row starting:%s\n", row);
        CHECK(strstr(doc, row) != NULL);
    }
    free(doc);
}

int main(void)
{
    RUN(test_names_unique_and_parse);
    RUN(test_stable_strings);
    RUN(test_from_err);
    RUN(test_documented);
    return DONE();
}
