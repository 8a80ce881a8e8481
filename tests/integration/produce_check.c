/*
 * produce_check - integration test of tools/advrec-produce against an
 * embedded broker (lib/broker: librdkafka's mock cluster, started in this
 * process).
 *
 * Usage: produce_check ADVREC_PRODUCE SOURCE_DIR [SHARED_DATA_DIR]
 *
 * 1. Writes small Taobao, CSV and OTTO fixtures (with malformed lines) to a
 *    temporary directory, runs advrec-produce on each, and checks its exit
 *    status and that the summary names the malformed lines by file:line.
 * 2. Consumes both topics from the beginning and checks the count per topic,
 *    that every key is the user id inside the Avro value, that every value
 *    decodes as the kind its topic carries, and that each key sits on the
 *    partition the Java client's murmur2 partitioner picks.
 * 3. Points advrec-produce at a closed port and checks that failed
 *    deliveries make it exit 1.
 * 4. When the shared Taobao sample is there, replays it whole (its last line
 *    is a real truncated record) and checks the counts again.
 *
 * Every wait is bounded; the child is killed if it overruns.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include "broker.h"
#include "codec.h"
#include "event.h"
#include "kafka.h"

#define PARTITIONS   8
#define CHILD_SECS   120
#define CONSUME_SECS 60

extern char **environ;

static int failures;
static char tmpdir[256];

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Kafka's (Java client's) murmur2 partitioner: the partition a key gets. */
static int32_t java_partition(const void *key, size_t len, int32_t n)
{
    const uint8_t *data = key;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    size_t i, len4 = len / 4;

    for (i = 0; i < len4; i++) {
        uint32_t k = (uint32_t)data[i * 4] | (uint32_t)data[i * 4 + 1] << 8 |
                     (uint32_t)data[i * 4 + 2] << 16 |
                     (uint32_t)data[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)data[(len & ~(size_t)3) + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[(len & ~(size_t)3) + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[len & ~(size_t)3];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffff) % (uint32_t)n);
}

static const char *write_fixture(const char *name, const char *text)
{
    static char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Reads a whole small file into a static buffer (for the child's stderr). */
static const char *slurp(const char *path)
{
    static char buf[65536];
    FILE *fp = fopen(path, "r");
    size_t n = 0;

    if (fp) {
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    return buf;
}

/*
 * Runs argv (NULL-terminated) with stderr to err_path; returns its exit
 * status, or -1 if it had to be killed after CHILD_SECS.
 */
static int run(char *const argv[], const char *err_path)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status, rc;
    time_t deadline = time(NULL) + CHILD_SECS;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "spawn %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0 && errno != EINTR)
            return -1;
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "%s overran %d s: killed\n", argv[0], CHILD_SECS);
            return -1;
        }
        usleep(20000); /* polling a child's exit: no event to wait on */
    }
}

/* Counts per topic, and the checks on every consumed message. */
typedef struct consumed_s {
    uint64_t clicks, purchases, bad;
} consumed_t;

/*
 * Reads topics[0] (clicks) and topics[1] (purchases) from the beginning
 * until want_clicks + want_purchases messages arrived or CONSUME_SECS
 * passed, then lingers briefly to catch any extra message.
 */
static consumed_t consume(const char *bootstrap, const char *const topics[2],
                          uint64_t want_clicks, uint64_t want_purchases,
                          advrec_codec_t *codec)
{
    consumed_t got = {0, 0, 0};
    char errstr[512];
    const advrec_kafka_prop_t props[] = {
        {"group.id", "produce-check", NULL},
        {"enable.auto.commit", "false", NULL},
    };
    advrec_kafka_params_t kp = {
        .role = ADVREC_KAFKA_CONSUMER,
        .bootstraps = bootstrap,
        .props = props,
        .n_props = sizeof(props) / sizeof(props[0]),
    };
    advrec_kafka_t *consumer;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    time_t deadline = time(NULL) + CONSUME_SECS;
    int idle = 0;

    if (advrec_kafka_new(&consumer, &kp, errstr, sizeof(errstr))) {
        EXPECT(0, "consumer: %s", errstr);
        return got;
    }
    rk = advrec_kafka_rk(consumer);
    parts = rd_kafka_topic_partition_list_new(2 * PARTITIONS);
    for (int t = 0; t < 2; t++)
        for (int32_t p = 0; p < PARTITIONS; p++)
            rd_kafka_topic_partition_list_add(parts, topics[t], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    while (time(NULL) < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        advrec_event_t ev;
        int is_purchase;

        if (!msg) {
            /* All expected messages in: a few idle polls show no extra. */
            if (got.clicks + got.purchases >= want_clicks + want_purchases &&
                ++idle >= 5)
                break;
            continue;
        }
        idle = 0;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                EXPECT(0, "consume: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        is_purchase = strcmp(rd_kafka_topic_name(msg->rkt), topics[1]) == 0;
        if (advrec_codec_decode_event(codec, msg->payload, msg->len, &ev, NULL,
                                      errstr, sizeof(errstr)) != ADVREC_OK) {
            got.bad++;
            EXPECT(0, "decode at %s [%" PRId32 "] @%" PRId64 ": %s",
                   rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset,
                   errstr);
        } else {
            int key_ok = msg->key && msg->key_len == strlen(ev.user_id) &&
                         memcmp(msg->key, ev.user_id, msg->key_len) == 0;
            if (!key_ok || (ev.type == ADVREC_EVENT_PURCHASE) != is_purchase ||
                msg->partition !=
                    java_partition(msg->key, msg->key_len, PARTITIONS))
                got.bad++;
            EXPECT(key_ok, "key is not the user id %s", ev.user_id);
            EXPECT((ev.type == ADVREC_EVENT_PURCHASE) == is_purchase,
                   "a %s on topic %s", advrec_event_type_name(ev.type),
                   rd_kafka_topic_name(msg->rkt));
            EXPECT(msg->partition ==
                       java_partition(msg->key, msg->key_len, PARTITIONS),
                   "user %s on partition %" PRId32 ", murmur2 says %" PRId32,
                   ev.user_id, msg->partition,
                   java_partition(msg->key, msg->key_len, PARTITIONS));
        }
        if (is_purchase)
            got.purchases++;
        else
            got.clicks++;
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    advrec_kafka_destroy(consumer);
    return got;
}

/* A port on 127.0.0.1 that nothing listens on (bound, then released). */
static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        perror("closed_port");
        exit(2);
    }
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    const char *produce, *srcdir, *shared = argc > 3 ? argv[3] : NULL;
    char schema_dir[1024], err_path[512], errstr[512], bootstrap[256];
    char taobao[512], csv[512], otto[512];
    advrec_broker_t *broker;
    advrec_codec_t *codec;
    const char *topics[2] = {"advrec.clicks", "advrec.purchases"};
    const char *out;
    consumed_t got;
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: %s ADVREC_PRODUCE SOURCE_DIR [SHARED_DATA]\n",
                argv[0]);
        return 2;
    }
    produce = argv[1];
    srcdir = argv[2];
    snprintf(schema_dir, sizeof(schema_dir), "%s/schemas", srcdir);
    snprintf(tmpdir, sizeof(tmpdir), "%s/advrec-produce-check-XXXXXX",
             getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR")
                                                     : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", tmpdir);

    /* The embedded broker (lib/broker), with topics of a known partition
     * count. */
    broker = advrec_broker_new(1, errstr, sizeof(errstr));
    if (!broker) {
        fprintf(stderr, "broker: %s\n", errstr);
        return 2;
    }
    snprintf(bootstrap, sizeof(bootstrap), "%s",
             advrec_broker_bootstraps(broker));
    for (int t = 0; t < 2; t++)
        if (advrec_broker_create_topic(broker, topics[t], PARTITIONS, errstr,
                                       sizeof(errstr)) != ADVREC_OK) {
            fprintf(stderr, "broker: %s\n", errstr);
            return 2;
        }

    /* The checker decodes with the same schemas under the tool's default
     * ids: 1 for clicks, 2 for purchases. */
    codec = advrec_codec_new(schema_dir, errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "codec: %s\n", errstr);
        return 2;
    }
    for (int32_t id = 1; id <= 2; id++) {
        char avsc[1100];
        snprintf(avsc, sizeof(avsc), "%s/%s.avsc", schema_dir,
                 id == 1 ? "click" : "purchase");
        if (advrec_codec_register(codec, id, avsc, errstr, sizeof(errstr))) {
            fprintf(stderr, "codec: %s\n", errstr);
            return 2;
        }
    }

    /* 1. Fixtures: 4 good Taobao lines (cart -> purchase, fav -> skip) and
     *    two malformed ones; CSV with a header; OTTO with one bad line. */
    snprintf(taobao, sizeof(taobao), "%s",
             write_fixture("tb.csv", "1,10,100,pv,1511658000\n"
                                     "2,20,200,buy,1511658001\n"
                                     "1,30,300,cart,1511658002\n"
                                     "3,40,400,fav,1511658003\n"
                                     "4,50,500,pv\n"
                                     "user-5,60,600,pv,1511658005\n"
                                     "6,70,700,pv,15")); /* truncated */
    snprintf(csv, sizeof(csv), "%s",
             write_fixture("gen.csv", "user,item,type,ts\n"
                                      "u1,i1,click,1700000000000\n"
                                      "u2,i2,purchase,1700000000001\n"
                                      "u3,i3,click,1700000000002\n"));
    snprintf(otto, sizeof(otto), "%s",
             write_fixture("otto.jsonl",
                           "{\"session\":7,\"events\":["
                           "{\"aid\":11,\"ts\":1659304800025,\"type\":"
                           "\"clicks\"},"
                           "{\"aid\":12,\"ts\":1659304800026,\"type\":"
                           "\"carts\"},"
                           "{\"aid\":13,\"ts\":1659304800027,\"type\":"
                           "\"orders\"}]}\n"
                           "not json\n"));
    {
        char *args[] = {(char *)produce, "-b",       bootstrap,
                        "--format",      "taobao",   "--cart",
                        "purchase",      "--fav",    "skip",
                        "--schema-dir",  schema_dir, "--no-progress",
                        taobao,          NULL};
        rc = run(args, err_path);
        out = slurp(err_path);
        EXPECT(rc == 0, "taobao run exit %d\n%s", rc, out);
        EXPECT(strstr(out, "tb.csv:5: expected 5") != NULL,
               "summary lacks tb.csv:5:\n%s", out);
        EXPECT(strstr(out, "tb.csv:7: timestamp 15 s") != NULL,
               "summary lacks tb.csv:7:\n%s", out);
        EXPECT(strstr(out, "skipped 2 malformed lines, filtered 1") != NULL,
               "summary counts:\n%s", out);
        EXPECT(strstr(out, "delivered 4 (advrec.clicks 2, advrec.purchases "
                           "2)") != NULL,
               "summary deliveries:\n%s", out);
    }
    {
        char *args[] = {(char *)produce, "-b",       bootstrap, "-f", "csv",
                        "--schema-dir",  schema_dir, "-q",      csv,  NULL};
        rc = run(args, err_path);
        EXPECT(rc == 0, "csv run exit %d\n%s", rc, slurp(err_path));
    }
    {
        /* Auto-detected format, explicit default topic names, -X. */
        char *args[] = {(char *)produce,
                        "-b",
                        bootstrap,
                        "--click-topic",
                        "advrec.clicks",
                        "--purchase-topic",
                        "advrec.purchases",
                        "-X",
                        "kafka.linger.ms=1",
                        "--schema-dir",
                        schema_dir,
                        "-q",
                        otto,
                        NULL};
        rc = run(args, err_path);
        out = slurp(err_path);
        EXPECT(rc == 0, "otto run exit %d\n%s", rc, out);
        EXPECT(strstr(out, "otto.jsonl:2: not JSON") != NULL,
               "summary lacks otto.jsonl:2:\n%s", out);
    }

    /* 2. Taobao 2 + 2, CSV 2 + 1, OTTO 2 + 1 (carts default to click). */
    got = consume(bootstrap, topics, 6, 4, codec);
    EXPECT(got.clicks == 6, "clicks %" PRIu64 ", want 6", got.clicks);
    EXPECT(got.purchases == 4, "purchases %" PRIu64 ", want 4", got.purchases);
    EXPECT(got.bad == 0, "%" PRIu64 " bad messages", got.bad);

    /* 3. Nothing listens: every delivery fails, the exit status says so. */
    {
        char dead[64];
        char *args[] = {(char *)produce,
                        "-b",
                        dead,
                        "-X",
                        "message.timeout.ms=1000",
                        "--flush-timeout",
                        "20000",
                        "--schema-dir",
                        schema_dir,
                        "-q",
                        csv,
                        NULL};
        snprintf(dead, sizeof(dead), "127.0.0.1:%d", closed_port());
        rc = run(args, err_path);
        out = slurp(err_path);
        EXPECT(rc == 1, "dead broker run exit %d, want 1\n%s", rc, out);
        EXPECT(strstr(out, "failed 3") != NULL, "summary:\n%s", out);
    }

    /* 4. The real Taobao sample, if present: 96,168 events, 1 truncated. */
    snprintf(taobao, sizeof(taobao),
             "%s/taobao-userbehavior/UserBehavior_timesorted_head.csv",
             shared ? shared : "");
    if (shared && access(taobao, R_OK) == 0) {
        const char *big[2] = {"tb.clicks", "tb.purchases"};
        char *args[] = {(char *)produce, "-b",
                        bootstrap,       "--click-topic",
                        (char *)big[0],  "--purchase-topic",
                        (char *)big[1],  "--schema-dir",
                        schema_dir,      "-q",
                        taobao,          NULL};
        advrec_broker_create_topic(broker, big[0], PARTITIONS, errstr,
                                   sizeof(errstr));
        advrec_broker_create_topic(broker, big[1], PARTITIONS, errstr,
                                   sizeof(errstr));
        rc = run(args, err_path);
        out = slurp(err_path);
        EXPECT(rc == 0, "taobao sample exit %d\n%s", rc, out);
        EXPECT(strstr(out, "UserBehavior_timesorted_head.csv:96169: ") != NULL,
               "summary lacks the truncated line:\n%s", out);
        fputs(out, stdout);
        got = consume(bootstrap, big, 94024, 2144, codec);
        EXPECT(got.clicks == 94024, "clicks %" PRIu64, got.clicks);
        EXPECT(got.purchases == 2144, "purchases %" PRIu64, got.purchases);
        EXPECT(got.bad == 0, "%" PRIu64 " bad messages", got.bad);
    } else {
        printf("shared Taobao sample not found: step 4 skipped\n");
    }

    advrec_codec_destroy(codec);
    advrec_broker_destroy(broker);
    nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    printf("%s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
