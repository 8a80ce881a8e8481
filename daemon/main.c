/*
 * advrecd - the daemon's entry point: a thin shell over lib/.
 *
 * Parses the command line, builds the configuration (defaults, then -c FILE,
 * then every -X in order), and either reports on it or runs the daemon. Maps
 * failures to sysexits(3) codes: EX_USAGE for bad arguments, EX_NOINPUT for
 * an unreadable config file, EX_CONFIG for a bad configuration.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "params.h"

/* The running daemon, for the signal handler, and the requests that came
 * before it existed (main's only globals). */
static advrec_daemon_t *volatile running;
static volatile sig_atomic_t early_stop, early_checkpoint, early_reload;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        if (running)
            advrec_daemon_checkpoint(running);
        else
            early_checkpoint = 1;
    } else if (sig == SIGHUP) {
        if (running)
            advrec_daemon_reload(running);
        else
            early_reload = 1;
    } else {
        if (running)
            advrec_daemon_stop(running);
        else
            early_stop = 1;
    }
}

/* Maps a library error to a sysexits(3) code. */
static int exit_code(advrec_err_t err)
{
    switch (err) {
    case ADVREC_OK:
        return EX_OK;
    case ADVREC_ERR_CONFIG:
    case ADVREC_ERR_SCHEMA:
    case ADVREC_ERR_STATE_MISMATCH: /* state.dir of another configuration */
        return EX_CONFIG;
    case ADVREC_ERR_IO:
    case ADVREC_ERR_STORE:
        return EX_IOERR;
    case ADVREC_ERR_KAFKA:
        return EX_UNAVAILABLE;
    case ADVREC_ERR_STATE_LOST: /* behind Kafka, or a WAL cut short */
        return EX_DATAERR;
    default:
        return EX_SOFTWARE;
    }
}

/*
 * Builds, starts and runs the daemon until SIGTERM or SIGINT; SIGHUP reloads
 * the configuration from conf_path and the -X sets[0..n_sets) (read again,
 * not kept from start). Takes ownership of conf. Returns the exit code.
 */
static int run_daemon(advrec_conf_t *conf, const char *conf_path,
                      const char *const *sets, size_t n_sets)
{
    struct sigaction sa;
    char errstr[1024];
    advrec_daemon_t *d;
    advrec_err_t err;

    /* Handlers first: a SIGTERM while the state loads (seconds for a big
     * state) must stop the daemon cleanly, not kill it. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    err = advrec_daemon_new(&d, conf, errstr, sizeof(errstr));
    if (err) {
        log_err("%s", errstr);
        return exit_code(err);
    }
    if (advrec_daemon_set_reload_source(d, conf_path, sets, n_sets)) {
        log_err("out of memory");
        advrec_daemon_destroy(d);
        return EX_OSERR;
    }
    running = d;
    if (early_stop)
        advrec_daemon_stop(d);
    if (early_checkpoint)
        advrec_daemon_checkpoint(d);
    if (early_reload)
        advrec_daemon_reload(d);
    err = advrec_daemon_start(d, errstr, sizeof(errstr));
    if (!err) {
        const char *bootstraps = advrec_daemon_bootstraps(d);
        if (bootstraps) {
            /* For scripts: the embedded broker's address, alone on stdout. */
            printf("%s\n", bootstraps);
            fflush(stdout);
        }
        err = advrec_daemon_run(d, errstr, sizeof(errstr));
    }
    if (err)
        log_err("%s", errstr);
    running = NULL;
    advrec_daemon_destroy(d);
    return exit_code(err);
}

enum {
    OPT_CHECK_CONFIG = 256,
    OPT_DUMP_CONFIG,
};

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: advrecd [-c FILE] [-X key=value]... [--check-config]\n"
            "       advrecd --dump-config=conf|md|man | --help | --version\n"
            "\n"
            "Real-time adversarial recommender on Kafka: consumes click and\n"
            "purchase events, trains online, publishes recommendations and\n"
            "anomaly flags.\n"
            "\n"
            "  -c, --config FILE     read `key = value` settings from FILE\n"
            "                        (without it: built-in defaults)\n"
            "  -X key=value          set one key, after FILE, in order;\n"
            "                        repeatable (kafka.* goes to librdkafka)\n"
            "      --check-config    validate, print the effective "
            "configuration,\n"
            "                        exit 0 (78 when invalid)\n"
            "      --dump-config=conf|md|man\n"
            "                        write the commented default config "
            "file,\n"
            "                        the Markdown key reference or the\n"
            "                        advrecd.conf(5) man page to stdout\n"
            "  -h, --help            show this help\n"
            "  -V, --version         show the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT finish the round, refresh pending users,\n"
            "flush and commit, then exit 0; SIGUSR1 writes a checkpoint of\n"
            "the state into state.checkpoint.dir; SIGHUP re-reads FILE and\n"
            "-X, applies what can change live, names each key that needs a\n"
            "restart (docs/OPERATIONS.md).\n"
            "\n"
            "Every key, its default and range: advrecd.conf(5), "
            "docs/CONFIG.md, or\n"
            "`advrecd --dump-config=conf`.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"dump-config", required_argument, NULL, OPT_DUMP_CONFIG},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = NULL;
    const char **sets = NULL;
    size_t sets_cnt = 0;
    bool check_only = false;
    advrec_conf_t *conf = NULL;
    char errstr[1024];
    int opt, rc = EX_OK;

    /* -X may be repeated: collect them, they are applied after the file. */
    if (!(sets = calloc((size_t)argc, sizeof(*sets)))) {
        fprintf(stderr, "advrecd: out of memory\n");
        return EX_OSERR;
    }
    while ((opt = getopt_long(argc, argv, "c:X:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'X':
            sets[sets_cnt++] = optarg;
            break;
        case 'h':
            usage(stdout);
            goto done;
        case 'V':
            printf("advrecd %s (librdkafka %s)\n", advrec_version(),
                   rd_kafka_version_str());
            goto done;
        case OPT_CHECK_CONFIG:
            check_only = true;
            break;
        case OPT_DUMP_CONFIG:
            if (strcmp(optarg, "conf") == 0) {
                advrec_conf_write_reference(stdout, ADVREC_CONF_FORMAT_CONF);
            } else if (strcmp(optarg, "md") == 0) {
                advrec_conf_write_reference(stdout, ADVREC_CONF_FORMAT_MD);
            } else if (strcmp(optarg, "man") == 0) {
                advrec_conf_write_reference(stdout, ADVREC_CONF_FORMAT_MAN);
            } else {
                fprintf(stderr,
                        "advrecd: --dump-config=%s: expected conf, md or "
                        "man\n",
                        optarg);
                rc = EX_USAGE;
            }
            goto done;
        default:
            usage(stderr);
            rc = EX_USAGE;
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "advrecd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        rc = EX_USAGE;
        goto done;
    }

    if (!(conf = advrec_conf_new(errstr, sizeof(errstr)))) {
        fprintf(stderr, "advrecd: %s\n", errstr);
        rc = EX_SOFTWARE;
        goto done;
    }
    if (conf_path) {
        advrec_err_t err =
            advrec_conf_load_file(conf, conf_path, errstr, sizeof(errstr));
        if (err) {
            fprintf(stderr, "advrecd: %s\n", errstr);
            rc = err == ADVREC_ERR_IO ? EX_NOINPUT : EX_CONFIG;
            goto done;
        }
    }
    for (size_t i = 0; i < sets_cnt; i++) {
        advrec_err_t err =
            advrec_conf_set_arg(conf, sets[i], errstr, sizeof(errstr));
        if (err) {
            fprintf(stderr, "advrecd: %s\n", errstr);
            rc = err == ADVREC_ERR_INVALID_ARG ? EX_USAGE : EX_CONFIG;
            goto done;
        }
    }
    if (advrec_conf_check(conf, errstr, sizeof(errstr))) {
        fprintf(stderr, "advrecd: %s\n", errstr);
        rc = EX_CONFIG;
        goto done;
    }
    if (check_only) {
        /* Also what the daemon finds only when it starts: every schema
         * file read and of the kind its id is configured for. */
        advrec_err_t err = advrec_params_check(conf, errstr, sizeof(errstr));
        if (err) {
            fprintf(stderr, "advrecd: %s\n", errstr);
            rc = exit_code(err);
            goto done;
        }
        advrec_conf_write(conf, stdout);
        goto done;
    }
    advrec_log_set_level(conf->log_level);

    /* The daemon proper: from here on lib/ does the work. */
    rc = run_daemon(conf, conf_path, sets, sets_cnt);
    conf = NULL; /* owned and freed by the daemon */

done:
    advrec_conf_destroy(conf);
    free(sets);
    return rc;
}
