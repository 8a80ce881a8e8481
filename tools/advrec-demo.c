/*
 * advrec-demo - the zero-setup demo: advrecd (in-process, through the same
 * library API daemon/main.c uses) on its embedded broker, fed a generated
 * shop stream by a Kafka producer, while a Kafka consumer reads the
 * recommendation topic and shows a few users' lists changing as they click
 * and buy. Stops by itself and prints a summary.
 */
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "synth.h"

#define MAX_WATCH 8

typedef struct demo_s {
    uint64_t events;
    double rate;
    uint32_t users, items;
    uint64_t seed;
    int n_watch;
    int bad;
    int show;
    char watch[MAX_WATCH][ADVREC_ID_MAX];
    char last_list[MAX_WATCH][512];
    uint64_t lists_seen;
    uint64_t flags_seen, flags_users, flags_items, flags_quarantined;
    char topic_anomalies[256];
} demo_t;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: advrec-demo [options]\n"
            "Runs advrecd on an embedded broker, replays a generated shop\n"
            "stream (with click bots and a shilling group) into it and shows\n"
            "recommendations and anomaly flags arriving.\n\n"
            "  --events N   events to generate (default 30000)\n"
            "  --rate R     events per second to produce (default 3000;\n"
            "               0 = as fast as possible)\n"
            "  --users N    shoppers (default 2000)\n"
            "  --items N    items (default 1000)\n"
            "  --seed S     generator seed (default 1)\n"
            "  --watch N    users whose lists are shown (default 3, max %d)\n"
            "  --bad N      malformed records to inject, which must land on\n"
            "               the dead-letter topic (default 5)\n"
            "  -X key=val   daemon configuration (see docs/CONFIG.md)\n"
            "  -h, --help   this text\n",
            MAX_WATCH);
}

static int watched(demo_t *demo, const char *user)
{
    for (int i = 0; i < demo->n_watch; i++)
        if (strcmp(demo->watch[i], user) == 0)
            return i;
    return -1;
}

static void *run_daemon(void *arg)
{
    char errstr[512];

    if (advrec_daemon_run(arg, errstr, sizeof(errstr)))
        log_err("daemon stopped: %s", errstr);
    return NULL;
}

/* Shows one anomaly flag as it arrives. */
static void show_flag(demo_t *demo, const rd_kafka_message_t *m,
                      advrec_codec_t *codec)
{
    advrec_anomaly_t a;
    char errstr[256], reasons[512] = "";
    static const char *const action[] = {"flagged", "quarantined", "cleared"};
    int n = 0;

    if (advrec_codec_decode_anomaly(codec, m->payload, m->len, &a, errstr,
                                    sizeof(errstr)))
        return;
    demo->flags_seen++;
    if (a.action != ADVREC_ANOMALY_CLEARED) {
        demo->flags_users += a.entity_type == ADVREC_ENTITY_USER;
        demo->flags_items += a.entity_type == ADVREC_ENTITY_ITEM;
    }
    demo->flags_quarantined += a.action == ADVREC_ANOMALY_QUARANTINED;
    for (size_t r = 0; r < a.n_reasons; r++)
        n += snprintf(reasons + n, sizeof(reasons) - (size_t)n, "%s%s",
                      r ? ", " : "", a.reasons[r]);
    char ev[256] = "";
    int w = 0;
    for (size_t e = 0; e < a.n_evidence && w < (int)sizeof(ev) - 1; e++)
        w += snprintf(ev + w, sizeof(ev) - (size_t)w, " %s=%lld",
                      a.evidence[e].key, (long long)a.evidence[e].count);
    if (demo->show)
        printf("!! FLAG %s %s: %s (score %.2f) -> %s  [%s ]\n",
               a.entity_type == ADVREC_ENTITY_USER ? "user" : "item",
               a.entity_id, a.n_reasons ? reasons : "-", a.score,
               action[a.action], ev);
}

/* Reads what arrived on the recommendation and anomaly topics and shows
 * watched users' lists when they change, and every flag. */
static void drain_recs(demo_t *demo, rd_kafka_t *c, advrec_codec_t *codec,
                       int timeout_ms)
{
    rd_kafka_message_t *m;
    advrec_recommendation_t rec;
    char errstr[256], line[512];

    while ((m = rd_kafka_consumer_poll(c, timeout_ms))) {
        timeout_ms = 0;
        if (!m->err && m->rkt &&
            strcmp(rd_kafka_topic_name(m->rkt), demo->topic_anomalies) == 0) {
            show_flag(demo, m, codec);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err ||
            advrec_codec_decode_recommendation(codec, m->payload, m->len, &rec,
                                               errstr, sizeof(errstr))) {
            rd_kafka_message_destroy(m);
            continue;
        }
        demo->lists_seen++;
        int w = watched(demo, rec.user_id);
        if (w >= 0 && demo->show) {
            int n = 0;
            for (size_t i = 0; i < rec.n_items && i < 6; i++)
                n += snprintf(line + n, sizeof(line) - (size_t)n, " %s",
                              rec.items[i].item_id);
            if (strcmp(line, demo->last_list[w]) != 0) {
                printf("   %-6s now sees:%s  (model v%" PRId64 ")\n",
                       rec.user_id, line, rec.model_version);
                snprintf(demo->last_list[w], sizeof(demo->last_list[w]), "%s",
                         line);
            }
        }
        advrec_recommendation_clear(&rec);
        rd_kafka_message_destroy(m);
    }
}

/* A client of the embedded broker (lib/kafka's defaults: the producer
 * partitions as the Java client does). NULL after logging why. */
static advrec_kafka_t *new_client(advrec_kafka_role_t role,
                                  const char *bootstraps)
{
    static const advrec_kafka_prop_t viewer[] = {
        {"group.id", "advrec-demo-viewer", NULL},
    };
    advrec_kafka_params_t p = {
        .role = role,
        .bootstraps = bootstraps,
        .defaults = role == ADVREC_KAFKA_CONSUMER ? viewer : NULL,
        .n_defaults = role == ADVREC_KAFKA_CONSUMER ? 1 : 0,
    };
    advrec_kafka_t *kafka;
    char errstr[512];

    if (advrec_kafka_new(&kafka, &p, errstr, sizeof(errstr))) {
        log_err("cannot create a client: %s", errstr);
        return NULL;
    }
    return kafka;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'e'},
        {"rate", required_argument, NULL, 'r'},
        {"users", required_argument, NULL, 'u'},
        {"items", required_argument, NULL, 'i'},
        {"seed", required_argument, NULL, 's'},
        {"watch", required_argument, NULL, 'w'},
        {"bad", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    demo_t demo = {.events = 30000,
                   .rate = 3000,
                   .users = 2000,
                   .items = 1000,
                   .seed = 1,
                   .n_watch = 3,
                   .bad = 5,
                   .show = 1};
    char errstr[512];
    advrec_conf_t *conf;
    advrec_daemon_t *daemon = NULL;
    advrec_codec_t *codec = NULL;
    advrec_synth_t *synth = NULL;
    advrec_kafka_t *kproducer = NULL, *kviewer = NULL;
    rd_kafka_t *producer = NULL, *viewer = NULL;
    pthread_t thread;
    int running = 0, rc = 1, opt;
    char state_dir[] = "/tmp/advrec-demo-state.XXXXXX";
    int have_state_dir = 0;

    conf = advrec_conf_new(errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "advrec-demo: %s\n", errstr);
        return 1;
    }
    /* Demo pacing: lists refresh half a second after a user's last click. */
    advrec_conf_set(conf, "recs.debounce.ms", "500", NULL, 0);
    advrec_conf_set(conf, "recs.max.staleness.ms", "2000", NULL, 0);
    advrec_conf_set(conf, "stats.interval.ms", "2000", NULL, 0);
    advrec_conf_set(conf, "log.level", "notice", NULL, 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt_long(argc, argv, "hX:", opts, NULL)) != -1) {
        switch (opt) {
        case 'e':
            demo.events = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            demo.rate = atof(optarg);
            break;
        case 'u':
            demo.users = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            demo.items = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            demo.seed = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            demo.n_watch = atoi(optarg);
            if (demo.n_watch < 0 || demo.n_watch > MAX_WATCH)
                demo.n_watch = MAX_WATCH;
            break;
        case 'b':
            demo.bad = atoi(optarg);
            break;
        case 'X':
            if (advrec_conf_set_arg(conf, optarg, errstr, sizeof(errstr))) {
                fprintf(stderr, "advrec-demo: %s\n", errstr);
                advrec_conf_destroy(conf);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            advrec_conf_destroy(conf);
            return 0;
        default:
            usage(stderr);
            advrec_conf_destroy(conf);
            return 2;
        }
    }
    advrec_log_set_level(conf->log_level);
    /* The demo's state is real (RocksDB) but temporary. */
    if (!mkdtemp(state_dir)) {
        perror("advrec-demo: mkdtemp");
        advrec_conf_destroy(conf);
        return 1;
    }
    have_state_dir = 1;
    advrec_conf_set(conf, "state.dir", state_dir, NULL, 0);
    if (!conf->broker_embedded) {
        fprintf(stderr, "advrec-demo: runs on the embedded broker only\n");
        advrec_conf_destroy(conf);
        nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 2;
    }

    /* The demo's own clients encode and decode with the shipped schemas. */
    codec =
        advrec_codec_new(advrec_conf_schema_dir(conf), errstr, sizeof(errstr));
    if (!codec)
        goto fail;
    for (size_t i = 0; i < conf->schemas_cnt; i++)
        if (advrec_codec_register(codec, conf->schemas[i].id,
                                  conf->schemas[i].path, errstr,
                                  sizeof(errstr)))
            goto fail;
    int32_t click_id = (int32_t)conf->schema_click_id;
    int32_t purchase_id = (int32_t)conf->schema_purchase_id;
    char topic_clicks[256], topic_purchases[256], topic_recs[256];
    snprintf(topic_clicks, sizeof(topic_clicks), "%s", conf->topic_clicks);
    snprintf(topic_purchases, sizeof(topic_purchases), "%s",
             conf->topic_purchases);
    snprintf(topic_recs, sizeof(topic_recs), "%s", conf->topic_recommendations);
    snprintf(demo.topic_anomalies, sizeof(demo.topic_anomalies), "%s",
             conf->topic_anomalies);

    advrec_synth_params_t sp = advrec_synth_params_default();
    sp.seed = demo.seed;
    sp.n_users = demo.users;
    sp.n_items = demo.items;
    sp.max_events = demo.events;
    /* Adversaries in the automatic attack window (40-60 % of the stream's
     * span): 4 bots of 300 clicks and one shilling group of 20 accounts;
     * with the defaults both act mid-demo, and the detectors flag them. */
    sp.n_bots = 4;
    sp.bot_events = 300;
    sp.n_shill_groups = 1;
    synth = advrec_synth_new(&sp, errstr, sizeof(errstr));
    if (!synth)
        goto fail;

    advrec_err_t err = advrec_daemon_new(&daemon, conf, errstr, sizeof(errstr));
    conf = NULL; /* owned by the daemon from here on */
    if (err || advrec_daemon_start(daemon, errstr, sizeof(errstr)))
        goto fail;
    const char *bootstraps = advrec_daemon_bootstraps(daemon);
    if (pthread_create(&thread, NULL, run_daemon, daemon) != 0) {
        snprintf(errstr, sizeof(errstr), "cannot start the daemon thread");
        goto fail;
    }
    running = 1;

    kproducer = new_client(ADVREC_KAFKA_PRODUCER, bootstraps);
    kviewer = new_client(ADVREC_KAFKA_CONSUMER, bootstraps);
    if (!kproducer || !kviewer) {
        snprintf(errstr, sizeof(errstr), "cannot create the demo clients");
        goto fail;
    }
    producer = advrec_kafka_rk(kproducer);
    viewer = advrec_kafka_rk(kviewer);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(sub, topic_recs, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(sub, demo.topic_anomalies,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(viewer, sub);
    rd_kafka_topic_partition_list_destroy(sub);

    printf("advrec demo: advrecd on an embedded broker at %s\n"
           "  producing %" PRIu64 " generated events (%u shoppers, %u items, "
           "bots and a shilling group included)\n"
           "  at %.0f events/s; watching the lists of %d shoppers.\n\n",
           bootstraps, demo.events, demo.users, demo.items, demo.rate,
           demo.n_watch);
    fflush(stdout);

    advrec_event_t ev;
    unsigned char buf[2048];
    size_t len;
    uint64_t produced = 0;
    int64_t t0 = now_ms(), last_status = t0;
    advrec_daemon_stats_t st;

    while (advrec_synth_next(synth, &ev) == ADVREC_OK) {
        int purchase = ev.type == ADVREC_EVENT_PURCHASE;
        if (advrec_codec_encode_event(codec, purchase ? purchase_id : click_id,
                                      &ev, buf, sizeof(buf), &len, errstr,
                                      sizeof(errstr)))
            goto fail;
        int w = watched(&demo, ev.user_id);
        if (w < 0 && demo.n_watch > 0 &&
            advrec_synth_last_kind(synth) == ADVREC_SYNTH_NORMAL) {
            for (w = 0; w < demo.n_watch && demo.watch[w][0]; w++)
                ;
            if (w < demo.n_watch)
                snprintf(demo.watch[w], sizeof(demo.watch[w]), "%s",
                         ev.user_id);
            else
                w = -1;
        }
        if (w >= 0)
            printf("%s %-6s %-8s %s\n", purchase ? "$$" : "->", ev.user_id,
                   purchase ? "bought" : "clicked", ev.item_id);
        advrec_kafka_produce(
            kproducer, purchase ? topic_purchases : topic_clicks, ev.user_id,
            strlen(ev.user_id), buf, len, NULL, 0, NULL);
        produced++;
        /* Malformed records spread through the stream: they must land on
         * the dead-letter topic without disturbing anything else. */
        if (demo.bad > 0 &&
            produced % (demo.events / (uint64_t)(demo.bad + 1) + 1) == 0) {
            static const char junk[] = "{\"user\":\"not avro\"}";
            advrec_kafka_produce(kproducer, topic_clicks, "junk", 4, junk,
                                 sizeof(junk) - 1, NULL, 0, NULL);
            demo.bad--;
        }
        rd_kafka_poll(producer, 0);
        drain_recs(&demo, viewer, codec, 0);
        /* Pace to the requested rate against the clock. */
        if (demo.rate > 0) {
            int64_t due = t0 + (int64_t)((double)produced * 1000.0 / demo.rate);
            int64_t wait = due - now_ms();
            if (wait > 0)
                drain_recs(&demo, viewer, codec, (int)wait);
        }
        if (now_ms() - last_status >= 2000) {
            advrec_daemon_stats(daemon, &st);
            printf("   [%5.1fs] produced %" PRIu64 ", trained on %" PRIu64
                   ", lists published %" PRIu64 ", dead-lettered %" PRIu64 "\n",
                   (double)(now_ms() - t0) / 1000.0, produced,
                   st.clicks + st.purchases, st.recs, st.dlq);
            last_status = now_ms();
        }
    }
    rd_kafka_flush(producer, 10000);

    /* Wait (bounded) until the daemon has read everything we produced. */
    int64_t deadline = now_ms() + 60000;
    do {
        drain_recs(&demo, viewer, codec, 200);
        advrec_daemon_stats(daemon, &st);
    } while (st.consumed < produced + (uint64_t)0 && now_ms() < deadline);
    advrec_daemon_stop(daemon);
    pthread_join(thread, NULL);
    running = 0;
    /* ... and until the viewer has read every list it published. */
    advrec_daemon_stats(daemon, &st);
    deadline = now_ms() + 30000;
    while ((demo.lists_seen < st.recs || demo.flags_seen < st.flags) &&
           now_ms() < deadline)
        drain_recs(&demo, viewer, codec, 200);

    double secs = (double)(now_ms() - t0) / 1000.0;
    printf("\nsummary: %" PRIu64 " events produced in %.1f s; advrecd "
           "trained on %" PRIu64 " clicks and %" PRIu64 " purchases,\n"
           "  published %" PRIu64 " recommendation lists (%" PRIu64
           " cold-start popularity lists) for %u users over %u items,\n"
           "  sent %" PRIu64 " malformed records to the dead-letter topic; "
           "the viewer read %" PRIu64 " lists.\n"
           "  anomaly flags: %" PRIu64 " published, %" PRIu64 " read (%" PRIu64
           " users and %" PRIu64 " items flagged, %" PRIu64
           " quarantined); %" PRIu64 " events down-weighted in training.\n",
           produced, secs, st.clicks, st.purchases, st.recs, st.recs_popular,
           st.users, st.items, st.dlq, demo.lists_seen, st.flags,
           demo.flags_seen, demo.flags_users, demo.flags_items,
           demo.flags_quarantined, st.downweighted);
    rc = 0;

fail:
    if (rc)
        fprintf(stderr, "advrec-demo: %s\n", errstr);
    if (running) {
        advrec_daemon_stop(daemon);
        pthread_join(thread, NULL);
    }
    if (viewer)
        rd_kafka_consumer_close(viewer);
    advrec_kafka_destroy(kviewer);
    advrec_kafka_destroy(kproducer);
    advrec_daemon_destroy(daemon);
    advrec_synth_destroy(synth);
    advrec_codec_destroy(codec);
    advrec_conf_destroy(conf);
    if (have_state_dir)
        nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
