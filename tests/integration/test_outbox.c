/*
 * Integration test of lib/outbox's deliveries: the embedded broker (a
 * librdkafka mock cluster), a lib/kafka producer whose delivery callback
 * hands every report to advrec_outbox_delivered, and a real RocksDB store
 * in a temporary directory. Each wait is bounded by a deadline.
 *  (a) records committed by one outbox are produced by the next one on the
 *      same store (a restart), oldest first, with their keys, values and
 *      headers (null ones kept null); a dead letter larger than the
 *      producer's message.max.bytes arrives as a truncated copy: the first
 *      truncate_bytes bytes of its value, its headers and an
 *      `advrec.truncated` header saying how large it was; nothing dropped;
 *  (b) delivered records stay stored until the next stage and commit, then
 *      are gone (read back and after a reopen);
 *  (c) a user with a list in flight is in the stored owed set, and leaves
 *      it in the first commit after the delivery; a user whose list was
 *      delivered and who is sent another is owed once, not twice;
 *  (d) without a store, lists sent and delivered over and over stay within
 *      the outbox's arrays.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

#include "broker.h"
#include "check.h"
#include "itest.h"
#include "kafka.h"
#include "outbox.h"
#include "state.h"
#include "store.h"

#define K         4
#define H         3
#define WAIT_MS   30000
#define BIG       50000 /* value bytes of the too-large dead letter */
#define TRUNCATE  1000  /* truncate_bytes */
#define MAX_BYTES "10000"

#define T_LISTS "ob.recs"
#define T_FLAGS "ob.flags"
#define T_DEAD  "ob.dead"

static const advrec_outbox_params_t params = {
    .topic_lists = T_LISTS,
    .topic_flags = T_FLAGS,
    .topic_dead = T_DEAD,
    .max_unacked = 1000,
    .max_unacked_bytes = 1 << 24,
    .truncate_bytes = TRUNCATE,
};

static advrec_store_t *open_store(const char *dir)
{
    advrec_store_params_t sp = {
        .k = K, .history = H, .sync = ADVREC_STORE_SYNC_NONE};
    advrec_store_t *store = NULL;
    char errstr[512];

    if (advrec_store_open(dir, &sp, &store, errstr, sizeof(errstr))) {
        fprintf(stderr, "open %s: %s\n", dir, errstr);
        return NULL;
    }
    return store;
}

/* One round's end as the daemon does it: stage, commit, committed. */
static int commit_round(advrec_outbox_t *ob, advrec_store_t *store,
                        advrec_state_t *state, const uint32_t *stale,
                        size_t n_stale)
{
    char errstr[512];

    if (advrec_outbox_stage(ob, stale, n_stale))
        return -1;
    if (advrec_store_commit(store, state, NULL, 0, NULL, 0, errstr,
                            sizeof(errstr))) {
        fprintf(stderr, "commit: %s\n", errstr);
        return -1;
    }
    advrec_outbox_committed(ob);
    return 0;
}

/* The producer's delivery callback: every report goes to the outbox, as
 * advrecd's does. */
static void on_delivery(void *opaque, const rd_kafka_message_t *m)
{
    advrec_outbox_t **obp = opaque;

    if (m->err)
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    if (*obp)
        advrec_outbox_delivered(*obp, m);
}

static int count_stored(void *opaque, uint64_t seq, advrec_out_kind_t kind,
                        const void *key, size_t key_len, const void *value,
                        size_t value_len)
{
    (*(int *)opaque)++;
    return 0;
}

static int stored(advrec_store_t *store)
{
    char errstr[512];
    int n = 0;

    if (advrec_outbox_read_stored(store, count_stored, &n, errstr,
                                  sizeof(errstr))) {
        fprintf(stderr, "read_stored: %s\n", errstr);
        return -1;
    }
    return n;
}

static uint64_t delivered(const advrec_outbox_t *ob)
{
    advrec_outbox_stats_t st;

    advrec_outbox_stats(ob, &st);
    return st.delivered[ADVREC_OUT_FLAG] + st.delivered[ADVREC_OUT_DEAD];
}

/* Polls the producer until the outbox counted want deliveries of records
 * and lists_in_flight is 0, or the deadline. */
static void await_deliveries(advrec_kafka_t *producer, advrec_outbox_t *ob,
                             uint64_t want)
{
    int64_t deadline = itest_now_ms() + WAIT_MS;
    advrec_outbox_stats_t st;

    do {
        rd_kafka_poll(advrec_kafka_rk(producer), 50);
        advrec_outbox_stats(ob, &st);
    } while ((delivered(ob) < want || st.lists_in_flight) &&
             itest_now_ms() < deadline);
}

/* A consumed message, copied out (a consumer cannot be destroyed while
 * its messages live). */
typedef struct msg_s {
    void *key, *value; /* NULL: null */
    size_t key_len, len;
    rd_kafka_headers_t *headers; /* NULL: none */
} msg_t;

static void msg_free(msg_t *m)
{
    free(m->key);
    free(m->value);
    if (m->headers)
        rd_kafka_headers_destroy(m->headers);
    memset(m, 0, sizeof(*m));
}

static void *copy_of(const void *p, size_t len)
{
    void *c = p ? malloc(len ? len : 1) : NULL;

    if (c && len)
        memcpy(c, p, len);
    return c;
}

/*
 * Reads the single partition of topic from the start until want messages
 * arrived and a second passed without more; the first cap are copied into
 * msgs (msg_free each). Returns how many arrived.
 */
static int consume(const char *bootstraps, const char *topic, msg_t *msgs,
                   int cap, int want)
{
    const advrec_kafka_prop_t props[] = {{"enable.auto.commit", "false", NULL}};
    advrec_kafka_t *reader =
        itest_client(ADVREC_KAFKA_CONSUMER, bootstraps, "itest-outbox-reader",
                     props, 1, NULL, NULL);
    rd_kafka_topic_partition_list_t *parts;
    int64_t deadline = itest_now_ms() + WAIT_MS;
    int n = 0, idle = 0;

    if (!reader)
        return -1;
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(advrec_kafka_rk(reader), parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (itest_now_ms() < deadline && (n < want || idle < 5)) {
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(advrec_kafka_rk(reader), 200);
        if (!m) {
            idle += n >= want;
            continue;
        }
        idle = 0;
        if (!m->err && n < cap) {
            msg_t *c = &msgs[n];
            c->key = copy_of(m->key, m->key_len);
            c->key_len = m->key_len;
            c->value = copy_of(m->payload, m->len);
            c->len = m->len;
            if (rd_kafka_message_detach_headers(m, &c->headers))
                c->headers = NULL;
        }
        n += !m->err;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(advrec_kafka_rk(reader));
    advrec_kafka_destroy(reader);
    return n;
}

/* Whether m has header name with value (NULL: present with a null value). */
static int has_header(const msg_t *m, const char *name, const char *value)
{
    const void *val;
    size_t len;

    if (!m->headers || rd_kafka_header_get_last(m->headers, name, &val, &len))
        return 0;
    if (!value)
        return val == NULL;
    return val && len == strlen(value) && memcmp(val, value, len) == 0;
}

static size_t header_count(const msg_t *m)
{
    return m->headers ? rd_kafka_header_cnt(m->headers) : 0;
}

static rd_kafka_headers_t *dlq_headers(void)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);

    rd_kafka_header_add(h, "advrec.error", -1, "decode", -1);
    rd_kafka_header_add(h, "advrec.null", -1, NULL, 0);
    return h;
}

static void test_deliveries(void)
{
    char errstr[512], dir[] = "/tmp/advrec-itest-outbox-XXXXXX";
    advrec_broker_t *broker = NULL;
    advrec_store_t *store = NULL;
    advrec_state_t *state = NULL;
    advrec_outbox_t *ob = NULL;
    advrec_kafka_t *producer = NULL;
    advrec_state_params_t stp = {
        .k = K, .history = H, .max_users = 1000, .max_items = 1000};
    const advrec_kafka_prop_t props[] = {
        {"message.max.bytes", MAX_BYTES, NULL},
        {"linger.ms", "0", NULL},
    };
    advrec_kafka_params_t kp = {
        .role = ADVREC_KAFKA_PRODUCER,
        .props = props,
        .n_props = sizeof(props) / sizeof(props[0]),
        .on_delivery = on_delivery,
        .opaque = &ob,
    };
    msg_t flags[4] = {0}, dead[4] = {0};
    unsigned char *big = malloc(BIG);
    uint32_t *users = NULL;
    size_t n_users = 0;
    int have_dir = 0, n;
    advrec_outbox_stats_t st;
    rd_kafka_headers_t *h;
    char what[64];

    CHECK(big != NULL);
    CHECK(mkdtemp(dir) != NULL);
    have_dir = 1;
    broker = advrec_broker_new(1, errstr, sizeof(errstr));
    CHECK(broker != NULL);
    if (!broker || !big)
        goto out;
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)(i * 31 + i / 251);
    CHECK_INT(
        advrec_broker_create_topic(broker, T_LISTS, 1, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(
        advrec_broker_create_topic(broker, T_FLAGS, 1, errstr, sizeof(errstr)),
        ADVREC_OK);
    CHECK_INT(
        advrec_broker_create_topic(broker, T_DEAD, 1, errstr, sizeof(errstr)),
        ADVREC_OK);
    kp.bootstraps = advrec_broker_bootstraps(broker);
    CHECK_INT(advrec_kafka_new(&producer, &kp, errstr, sizeof(errstr)),
              ADVREC_OK);
    state = advrec_state_new(&stp, errstr, sizeof(errstr));
    store = open_store(dir);
    CHECK(producer && state && store);
    if (!producer || !state || !store)
        goto out;

    /* (a) a round records two flags and three dead letters and commits;
     * the daemon dies before producing them. */
    ob = advrec_outbox_new(&params, store);
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(
        advrec_outbox_add(ob, ADVREC_OUT_FLAG, "e1", 2, "flag-1", 6, NULL),
        ADVREC_OK);
    h = dlq_headers();
    CHECK_INT(advrec_outbox_add(ob, ADVREC_OUT_DEAD, "k-big", 5, big, BIG, h),
              ADVREC_OK);
    rd_kafka_headers_destroy(h);
    CHECK_INT(
        advrec_outbox_add(ob, ADVREC_OUT_FLAG, NULL, 0, "flag-2", 6, NULL),
        ADVREC_OK);
    h = dlq_headers();
    CHECK_INT(advrec_outbox_add(ob, ADVREC_OUT_DEAD, "k2", 2, NULL, 0, h),
              ADVREC_OK);
    rd_kafka_headers_destroy(h);
    CHECK_INT(advrec_outbox_add(ob, ADVREC_OUT_DEAD, NULL, 0, "small", 5, NULL),
              ADVREC_OK);
    /* Too large through an input header: the truncated copy keeps the
     * headers and is refused too; the last-resort copy keeps only ours. */
    h = dlq_headers();
    rd_kafka_header_add(h, "x-big", -1, big, 20000);
    CHECK_INT(advrec_outbox_add(ob, ADVREC_OUT_DEAD, "k-hdr", 5, "v", 1, h),
              ADVREC_OK);
    rd_kafka_headers_destroy(h);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    advrec_outbox_destroy(ob);
    ob = NULL;
    advrec_store_close(store);

    /* The restart: a new outbox loads them and produces them. */
    store = open_store(dir);
    ob = store ? advrec_outbox_new(&params, store) : NULL;
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_OK);
    advrec_outbox_set_producer(ob, producer);
    advrec_outbox_produce(ob);
    await_deliveries(producer, ob, 6);
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.delivered[ADVREC_OUT_FLAG], 2);
    CHECK_INT(st.delivered[ADVREC_OUT_DEAD], 4);
    CHECK_INT(st.truncated, 3); /* k-big once, k-hdr twice */
    CHECK_INT(st.unacked, 0);
    CHECK_INT(st.unacked_bytes, 0);

    /* (b) delivered, still stored until the next commit, then gone */
    CHECK_INT(stored(store), 6);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    CHECK_INT(stored(store), 0);
    advrec_outbox_destroy(ob);
    ob = NULL;
    advrec_store_close(store);
    store = open_store(dir);
    ob = store ? advrec_outbox_new(&params, store) : NULL;
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(stored(store), 0);
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_OK);
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.unacked, 0);
    advrec_outbox_set_producer(ob, producer);

    /* What the broker got, in seq order per topic, nothing twice. */
    n = consume(kp.bootstraps, T_FLAGS, flags, 4, 2);
    CHECK_INT(n, 2);
    if (n >= 2) {
        CHECK(flags[0].key_len == 2 && memcmp(flags[0].key, "e1", 2) == 0);
        CHECK(flags[0].len == 6 && memcmp(flags[0].value, "flag-1", 6) == 0);
        CHECK(flags[1].key == NULL);
        CHECK(flags[1].len == 6 && memcmp(flags[1].value, "flag-2", 6) == 0);
    }
    n = consume(kp.bootstraps, T_DEAD, dead, 4, 4);
    CHECK_INT(n, 4);
    if (n >= 4) {
        /* The too-large one: truncated, never dropped. */
        snprintf(what, sizeof(what), "key 5 value %d", BIG);
        CHECK(dead[0].key_len == 5 && memcmp(dead[0].key, "k-big", 5) == 0);
        CHECK_INT(dead[0].len, TRUNCATE);
        CHECK(dead[0].value && memcmp(dead[0].value, big, TRUNCATE) == 0);
        CHECK(has_header(&dead[0], "advrec.truncated", what));
        CHECK(has_header(&dead[0], "advrec.error", "decode"));
        CHECK(has_header(&dead[0], "advrec.null", NULL));
        CHECK_INT(header_count(&dead[0]), 3);
        /* A null value stays null, headers kept. */
        CHECK(dead[1].key_len == 2 && memcmp(dead[1].key, "k2", 2) == 0);
        CHECK(dead[1].value == NULL);
        CHECK(has_header(&dead[1], "advrec.error", "decode"));
        CHECK(has_header(&dead[1], "advrec.null", NULL));
        CHECK_INT(header_count(&dead[1]), 2);
        CHECK(dead[2].key == NULL);
        CHECK(dead[2].len == 5 && memcmp(dead[2].value, "small", 5) == 0);
        CHECK_INT(header_count(&dead[2]), 0);
        /* The last-resort copy: our headers, the original sizes, no x-big */
        CHECK(dead[3].key_len == 5 && memcmp(dead[3].key, "k-hdr", 5) == 0);
        CHECK(dead[3].len == 1 && memcmp(dead[3].value, "v", 1) == 0);
        CHECK(has_header(&dead[3], "advrec.truncated", "key 5 value 1"));
        CHECK(has_header(&dead[3], "advrec.error", "decode"));
        CHECK_INT(header_count(&dead[3]), 3);
    }

    /* (c) a list in flight is owed in the commit, settled in the next */
    CHECK_INT(advrec_outbox_send_list(ob, 5, "u5", 2, "list", 4), 0);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    CHECK_INT(advrec_store_load_pending(store, &users, &n_users, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 1);
    CHECK(users && users[0] == 5);
    free(users);
    users = NULL;
    await_deliveries(producer, ob, 0);
    /* Sent again after the delivery, in the same round: owed once. */
    CHECK_INT(advrec_outbox_send_list(ob, 5, "u5", 2, "list", 4), 0);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    CHECK_INT(advrec_store_load_pending(store, &users, &n_users, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 1);
    CHECK(users && users[0] == 5);
    free(users);
    users = NULL;
    await_deliveries(producer, ob, 0);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    CHECK_INT(advrec_store_load_pending(store, &users, &n_users, errstr,
                                        sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 0);
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.delivered[ADVREC_OUT_LIST], 2);
    CHECK_INT(st.failed[ADVREC_OUT_LIST], 0);

out:
    for (int i = 0; i < 4; i++) {
        msg_free(&flags[i]);
        msg_free(&dead[i]);
    }
    free(users);
    /* The producer first: no delivery report may name a record after. */
    advrec_kafka_destroy(producer);
    advrec_outbox_destroy(ob);
    advrec_store_close(store);
    advrec_state_destroy(state);
    advrec_broker_destroy(broker);
    free(big);
    if (have_dir)
        (void)nftw(dir, itest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * (d) without a store (state in memory), one user's list sent and delivered
 * over and over, stages between as the daemon's rounds: every one is
 * delivered, and the owed-user bookkeeping stays within its arrays (it
 * used to grow by one per send, past owed_list, which ASan reports).
 */
static void test_lists_in_memory(void)
{
    char errstr[512];
    advrec_broker_t *broker = advrec_broker_new(1, errstr, sizeof(errstr));
    advrec_outbox_t *ob = advrec_outbox_new(&params, NULL);
    const advrec_kafka_prop_t props[] = {{"linger.ms", "0", NULL}};
    advrec_kafka_t *producer = NULL;
    advrec_outbox_stats_t st;
    int sends = 1100;

    CHECK(broker && ob);
    if (!broker || !ob)
        goto out;
    CHECK_INT(
        advrec_broker_create_topic(broker, T_LISTS, 1, errstr, sizeof(errstr)),
        ADVREC_OK);
    producer =
        itest_client(ADVREC_KAFKA_PRODUCER, advrec_broker_bootstraps(broker),
                     NULL, props, 1, on_delivery, &ob);
    CHECK(producer != NULL);
    if (!producer)
        goto out;
    advrec_outbox_set_producer(ob, producer);
    for (int i = 0; i < sends; i++) {
        CHECK_INT(advrec_outbox_send_list(ob, 7, "u7", 2, "list", 4), 0);
        await_deliveries(producer, ob, 0);
        if (i % 100 == 99)
            CHECK_INT(advrec_outbox_stage(ob, NULL, 0), ADVREC_OK);
    }
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.delivered[ADVREC_OUT_LIST], sends);
    CHECK_INT(st.failed[ADVREC_OUT_LIST], 0);
    CHECK_INT(st.lists_in_flight, 0);

out:
    advrec_kafka_destroy(producer);
    advrec_outbox_destroy(ob);
    advrec_broker_destroy(broker);
}

int main(void)
{
    RUN(test_deliveries);
    RUN(test_lists_in_memory);
    return DONE();
}
