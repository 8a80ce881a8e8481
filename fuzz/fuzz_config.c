/*
 * fuzz_config.c - libFuzzer target for the config file parser
 * (lib/config.h: advrec_conf_load_file and, through it, every key's value
 * parser in the declarative table).
 *
 * advrec_conf_load_file() takes a path, so the input is written to one
 * memfd created at start and read back through /proc/self/fd/N: no file
 * system traffic per run. A file that loads is also checked
 * (advrec_conf_check: relations between keys, librdkafka on kafka.*), and
 * dumped with advrec_conf_write(), which promises "a loadable conf file":
 * the dump is loaded into a fresh configuration and dumped again, and the
 * two dumps must be equal. A violation aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_fd = -1, dump_fd = -1;
static char in_path[64], dump_path[64];

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, why);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if ((in_fd = memfd_create("fuzz-config", 0)) < 0 ||
        (dump_fd = memfd_create("fuzz-config-dump", 0)) < 0)
        die("memfd_create", "failed");
    snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in_fd);
    snprintf(dump_path, sizeof(dump_path), "/proc/self/fd/%d", dump_fd);
    return 0;
}

/* Replaces the contents of memfd fd with the size bytes at data. */
static void fill(int fd, const void *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 ||
        (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        die("memfd write", "failed");
}

/* conf's dump as a malloc'd string (*len bytes); the caller frees it. */
static char *dump(const advrec_conf_t *conf, size_t *len)
{
    char *text = NULL;
    FILE *fp = open_memstream(&text, len);

    if (!fp)
        die("open_memstream", "failed");
    advrec_conf_write(conf, fp);
    if (fclose(fp) != 0)
        die("open_memstream", "fclose failed");
    return text;
}

static void check_dump_reloads(const advrec_conf_t *conf)
{
    advrec_conf_t *again;
    char errstr[1024], *first, *second;
    size_t first_len, second_len;

    first = dump(conf, &first_len);
    fill(dump_fd, first, first_len);
    if (!(again = advrec_conf_new(errstr, sizeof(errstr))))
        die("advrec_conf_new", errstr);
    if (advrec_conf_load_file(again, dump_path, errstr, sizeof(errstr))) {
        fprintf(stderr, "---- dump:\n%.*s----\n", (int)first_len, first);
        die("the dump of a loaded config does not load", errstr);
    }
    second = dump(again, &second_len);
    if (first_len != second_len || memcmp(first, second, first_len) != 0) {
        fprintf(stderr, "---- first dump:\n%.*s---- second dump:\n%.*s----\n",
                (int)first_len, first, (int)second_len, second);
        die("dump, load, dump", "the two dumps differ");
    }
    free(first);
    free(second);
    advrec_conf_destroy(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    advrec_conf_t *conf;
    char errstr[1024];

    fill(in_fd, data, size);
    if (!(conf = advrec_conf_new(errstr, sizeof(errstr))))
        die("advrec_conf_new", errstr);
    if (advrec_conf_load_file(conf, in_path, errstr, sizeof(errstr)) ==
        ADVREC_OK) {
        (void)advrec_conf_check(conf, errstr, sizeof(errstr));
        check_dump_reloads(conf);
    }
    advrec_conf_destroy(conf);
    return 0;
}
