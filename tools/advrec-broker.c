/*
 * advrec-broker - the embedded broker (librdkafka's mock cluster) as a
 * standalone process: creates advrec's topics and prints the bootstrap
 * address for other clients, then serves until SIGTERM or SIGINT.
 *
 * In-memory only, about 5 MiB per partition: for demos and tests, never for
 * data you want to keep (docs/ARCHITECTURE.md, "Brokers").
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "broker.h"
#include "config.h"
#include "log.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: advrec-broker [options]\n"
            "Runs an in-memory Kafka broker (librdkafka mock cluster) on\n"
            "127.0.0.1, creates advrec's topics and prints the bootstrap\n"
            "address on stdout; serves until SIGTERM or SIGINT.\n\n"
            "  -c FILE              advrecd config to take topic names from\n"
            "  -X key=value         config override (e.g. topic.clicks=x)\n"
            "  -p, --partitions N   partitions per topic (default: "
            "broker.embedded.partitions)\n"
            "  -b, --brokers N      brokers in the cluster (default 1)\n"
            "  -t, --topic NAME     create another topic (repeatable)\n"
            "  -f, --bootstrap-file FILE  also write the address to FILE\n"
            "  -h, --help           this text\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    char errstr[512];
    advrec_conf_t *conf;
    advrec_broker_t *broker = NULL;
    const char *extra[64];
    int n_extra = 0, partitions = -1, brokers = 1, opt, rc = EX_SOFTWARE;
    const char *bootstrap_file = NULL;
    sigset_t sigs;
    int sig;

    conf = advrec_conf_new(errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "advrec-broker: %s\n", errstr);
        return EX_SOFTWARE;
    }
    while ((opt = getopt_long(argc, argv, "c:X:p:b:t:f:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (advrec_conf_load_file(conf, optarg, errstr, sizeof(errstr))) {
                fprintf(stderr, "advrec-broker: %s\n", errstr);
                rc = EX_CONFIG;
                goto done;
            }
            break;
        case 'X':
            if (advrec_conf_set_arg(conf, optarg, errstr, sizeof(errstr))) {
                fprintf(stderr, "advrec-broker: %s\n", errstr);
                rc = EX_CONFIG;
                goto done;
            }
            break;
        case 'p':
            partitions = atoi(optarg);
            break;
        case 'b':
            brokers = atoi(optarg);
            break;
        case 't':
            if (n_extra == (int)(sizeof(extra) / sizeof(*extra))) {
                fprintf(stderr, "advrec-broker: too many --topic\n");
                rc = EX_USAGE;
                goto done;
            }
            extra[n_extra++] = optarg;
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'h':
            usage(stdout);
            rc = EX_OK;
            goto done;
        default:
            usage(stderr);
            rc = EX_USAGE;
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "advrec-broker: unexpected argument \"%s\"\n",
                argv[optind]);
        rc = EX_USAGE;
        goto done;
    }
    if (partitions < 0)
        partitions = (int)conf->broker_embedded_partitions;
    if (partitions < 1 || partitions > 10000) {
        fprintf(stderr, "advrec-broker: --partitions %d: expected 1..10000\n",
                partitions);
        rc = EX_USAGE;
        goto done;
    }
    advrec_log_set_level(conf->log_level);

    /* Block the stop signals before librdkafka starts its threads, so they
     * are delivered to sigwait() below and to no other thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    broker = advrec_broker_new(brokers, errstr, sizeof(errstr));
    if (!broker) {
        fprintf(stderr, "advrec-broker: %s\n", errstr);
        rc = EX_UNAVAILABLE;
        goto done;
    }
    const char *topics[] = {conf->topic_clicks, conf->topic_purchases,
                            conf->topic_recommendations, conf->topic_anomalies,
                            conf->topic_dlq};
    for (size_t i = 0; i < sizeof(topics) / sizeof(*topics); i++)
        if (advrec_broker_create_topic(broker, topics[i], partitions, errstr,
                                       sizeof(errstr)))
            goto fail;
    for (int i = 0; i < n_extra; i++)
        if (advrec_broker_create_topic(broker, extra[i], partitions, errstr,
                                       sizeof(errstr)))
            goto fail;

    if (bootstrap_file) {
        FILE *fp = fopen(bootstrap_file, "w");
        if (!fp || fprintf(fp, "%s\n", advrec_broker_bootstraps(broker)) < 0 ||
            fclose(fp) != 0) {
            fprintf(stderr, "advrec-broker: cannot write %s\n", bootstrap_file);
            rc = EX_CANTCREAT;
            goto done;
        }
    }
    printf("%s\n", advrec_broker_bootstraps(broker));
    fflush(stdout);
    log_notice("embedded broker at %s: %d partition(s) per topic; "
               "in memory only; SIGTERM or SIGINT stops it",
               advrec_broker_bootstraps(broker), partitions);
    sigwait(&sigs, &sig);
    log_notice("%s: stopping", strsignal(sig));
    rc = EX_OK;
    goto done;

fail:
    fprintf(stderr, "advrec-broker: %s\n", errstr);
    rc = EX_UNAVAILABLE;
done:
    advrec_broker_destroy(broker);
    advrec_conf_destroy(conf);
    return rc;
}
