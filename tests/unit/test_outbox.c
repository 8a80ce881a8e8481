/*
 * test_outbox.c - lib/outbox over a real RocksDB store in a temporary
 * directory, without a Kafka producer: flag and dead-letter records are
 * staged into the round's batch (nothing stored before the commit), survive
 * a close and reopen byte for byte with null and empty keys and values kept
 * apart, keep their seq order and numbering across a reload, a round that
 * never commits leaves nothing, the owed-user set round-trips, and a
 * malformed stored record is an error naming its seq. Producing and
 * delivery reports are in tests/integration/test_outbox.c (they need a
 * broker).
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "outbox.h"
#include "state.h"
#include "store.h"

#define K 4
#define H 3

static char base[64];

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh directory name under base (not created). */
static const char *path_in(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, 256, "%s/%s", base, name);
    return p;
}

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

static advrec_state_t *new_state(void)
{
    advrec_state_params_t p = {
        .k = K, .history = H, .max_users = 1000, .max_items = 1000};
    char errstr[256];
    advrec_state_t *state = advrec_state_new(&p, errstr, sizeof(errstr));

    if (!state)
        fprintf(stderr, "state: %s\n", errstr);
    return state;
}

static const advrec_outbox_params_t params = {
    .topic_lists = "recs",
    .topic_flags = "flags",
    .topic_dead = "dead",
    .max_unacked = 1000,
    .max_unacked_bytes = 1 << 20,
    .truncate_bytes = 100,
};

/* One round's end as the daemon does it: stage, commit, committed. */
static int commit_round(advrec_outbox_t *ob, advrec_store_t *store,
                        advrec_state_t *state, const uint32_t *stale,
                        size_t n_stale)
{
    char errstr[512];
    advrec_err_t err;

    if ((err = advrec_outbox_stage(ob, stale, n_stale)))
        return (int)err;
    if ((err = advrec_store_commit(store, state, NULL, 0, NULL, 0, errstr,
                                   sizeof(errstr)))) {
        fprintf(stderr, "commit: %s\n", errstr);
        return (int)err;
    }
    advrec_outbox_committed(ob);
    return 0;
}

/* A record as added (and as it must come back). */
typedef struct rec_s {
    advrec_out_kind_t kind;
    const char *key; /* NULL: a null key */
    size_t key_len;
    const char *value; /* NULL: a null value */
    size_t value_len;
} rec_t;

/* What advrec_outbox_read_stored returned. */
typedef struct seen_s {
    int n;
    uint64_t seq[16];
    advrec_out_kind_t kind[16];
    int key_null[16], value_null[16];
    size_t key_len[16], value_len[16];
    char key[16][64], value[16][64];
} seen_t;

static int collect(void *opaque, uint64_t seq, advrec_out_kind_t kind,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len)
{
    seen_t *s = opaque;
    int i = s->n;

    if (i == 16 || key_len > 64 || value_len > 64)
        return 1;
    s->seq[i] = seq;
    s->kind[i] = kind;
    s->key_null[i] = key == NULL;
    s->value_null[i] = value == NULL;
    s->key_len[i] = key_len;
    s->value_len[i] = value_len;
    if (key_len)
        memcpy(s->key[i], key, key_len);
    if (value_len)
        memcpy(s->value[i], value, value_len);
    s->n++;
    return 0;
}

static void read_stored(advrec_store_t *store, seen_t *s)
{
    char errstr[512];

    memset(s, 0, sizeof(*s));
    CHECK_INT(
        advrec_outbox_read_stored(store, collect, s, errstr, sizeof(errstr)),
        ADVREC_OK);
}

/* s holds exactly recs[0..n), in order, with increasing seqs. */
static void check_same(const seen_t *s, const rec_t *recs, int n)
{
    CHECK_INT(s->n, n);
    for (int i = 0; i < n && i < s->n; i++) {
        CHECK_INT(s->kind[i], recs[i].kind);
        if (i > 0)
            CHECK(s->seq[i] > s->seq[i - 1]);
        CHECK_INT(s->key_null[i], recs[i].key == NULL);
        CHECK_INT(s->value_null[i], recs[i].value == NULL);
        CHECK_INT(s->key_len[i], recs[i].key_len);
        CHECK_INT(s->value_len[i], recs[i].value_len);
        if (recs[i].key_len)
            CHECK(memcmp(s->key[i], recs[i].key, recs[i].key_len) == 0);
        if (recs[i].value_len)
            CHECK(memcmp(s->value[i], recs[i].value, recs[i].value_len) == 0);
    }
}

static const rec_t recs[] = {
    {ADVREC_OUT_FLAG, "user-1", 6, "\0flag\0one", 9},
    {ADVREC_OUT_DEAD, "k2", 2, "bad record \xff\x00", 13},
    {ADVREC_OUT_FLAG, NULL, 0, "null key", 8},
    {ADVREC_OUT_DEAD, "tombstone", 9, NULL, 0},
    {ADVREC_OUT_DEAD, "", 0, "", 0}, /* empty, not null */
    {ADVREC_OUT_DEAD, NULL, 0, NULL, 0},
};
#define N_RECS ((int)(sizeof(recs) / sizeof(recs[0])))

static int add(advrec_outbox_t *ob, const rec_t *r)
{
    rd_kafka_headers_t *h = NULL;
    advrec_err_t err;

    if (r->kind == ADVREC_OUT_DEAD) {
        /* Headers as the DLQ writes them, one with a null value. */
        h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, "advrec.error", -1, "decode", -1);
        rd_kafka_header_add(h, "advrec.null", -1, NULL, 0);
        rd_kafka_header_add(h, "advrec.offset", -1, "42", 2);
    }
    err = advrec_outbox_add(ob, r->kind, r->key, r->key_len, r->value,
                            r->value_len, h);
    if (h)
        rd_kafka_headers_destroy(h); /* only read by add */
    return (int)err;
}

static void test_records_round_trip(void)
{
    const char *dir = path_in("records");
    advrec_store_t *store = open_store(dir);
    advrec_state_t *state = new_state();
    advrec_outbox_t *ob = NULL;
    advrec_outbox_stats_t st;
    uint32_t *users = NULL;
    size_t n_users = 99, bytes;
    char errstr[512];
    seen_t seen;
    const rec_t later = {ADVREC_OUT_FLAG, "user-9", 6, "later", 5};
    rec_t all[N_RECS + 1];

    CHECK(store && state);
    if (!store || !state)
        goto out;
    ob = advrec_outbox_new(&params, store);
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    for (int i = 0; i < N_RECS; i++)
        CHECK_INT(add(ob, &recs[i]), ADVREC_OK);
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.recorded[ADVREC_OUT_FLAG], 2);
    CHECK_INT(st.recorded[ADVREC_OUT_DEAD], 4);
    CHECK_INT(st.unacked, N_RECS);
    CHECK(st.unacked_bytes > 0);
    bytes = st.unacked_bytes;
    CHECK(!advrec_outbox_full(ob));

    /* Staged into the batch: nothing is stored before the commit. */
    read_stored(store, &seen);
    CHECK_INT(seen.n, 0);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    read_stored(store, &seen);
    check_same(&seen, recs, N_RECS);
    advrec_outbox_destroy(ob);
    ob = NULL;
    advrec_store_close(store);

    /* Reopened: the same bytes, and load owes every one again. */
    store = open_store(dir);
    CHECK(store != NULL);
    if (!store)
        goto out;
    read_stored(store, &seen);
    check_same(&seen, recs, N_RECS);
    ob = advrec_outbox_new(&params, store);
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 0);
    CHECK(users == NULL);
    advrec_outbox_stats(ob, &st);
    CHECK_INT(st.unacked, N_RECS);
    CHECK_INT(st.unacked_bytes, bytes);

    /* A record added after the reload is numbered after the loaded ones. */
    CHECK_INT(add(ob, &later), ADVREC_OK);
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    memcpy(all, recs, sizeof(recs));
    all[N_RECS] = later;
    read_stored(store, &seen);
    check_same(&seen, all, N_RECS + 1);

    /* A round that never commits leaves nothing behind. */
    CHECK_INT(add(ob, &later), ADVREC_OK);
    advrec_outbox_destroy(ob);
    ob = NULL;
    advrec_store_close(store);
    store = open_store(dir);
    CHECK(store != NULL);
    if (store) {
        read_stored(store, &seen);
        check_same(&seen, all, N_RECS + 1);
    }

out:
    advrec_outbox_destroy(ob);
    advrec_store_close(store);
    advrec_state_destroy(state);
}

static void test_owed_users_round_trip(void)
{
    const char *dir = path_in("users");
    advrec_store_t *store = open_store(dir);
    advrec_state_t *state = new_state();
    advrec_outbox_t *ob = NULL;
    const uint32_t stale[] = {3, 7, 4096, 42};
    uint32_t *users = NULL;
    size_t n_users = 0;
    char errstr[512];

    CHECK(store && state);
    if (!store || !state)
        goto out;
    ob = advrec_outbox_new(&params, store);
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(commit_round(ob, store, state, stale, 4), 0);
    advrec_outbox_destroy(ob);
    advrec_store_close(store);

    store = open_store(dir);
    ob = store ? advrec_outbox_new(&params, store) : NULL;
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 4);
    for (size_t i = 0; users && i < n_users && i < 4; i++)
        CHECK_INT(users[i], stale[i]);
    free(users);
    users = NULL;

    /* Nobody stale any more: the stored set is cleared. */
    CHECK_INT(commit_round(ob, store, state, NULL, 0), 0);
    advrec_outbox_destroy(ob);
    advrec_store_close(store);
    store = open_store(dir);
    ob = store ? advrec_outbox_new(&params, store) : NULL;
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_OK);
    CHECK_INT(n_users, 0);
    CHECK(users == NULL);

out:
    free(users);
    advrec_outbox_destroy(ob);
    advrec_store_close(store);
    advrec_state_destroy(state);
}

static void test_malformed_record(void)
{
    const char *dir = path_in("malformed");
    advrec_store_t *store = open_store(dir);
    advrec_state_t *state = new_state();
    advrec_outbox_t *ob = NULL;
    uint32_t *users = NULL;
    size_t n_users = 0;
    char errstr[512] = "";
    seen_t seen;
    /* Format 1, kind FLAG, key length 5 but only 2 bytes follow. */
    const unsigned char bad[] = {1, 2, 5, 0, 0, 0, 0,   0,
                                 0, 0, 0, 0, 0, 0, 'a', 'b'};

    CHECK(store && state);
    if (!store || !state)
        goto out;
    CHECK_INT(advrec_store_stage_output(store, 77, bad, sizeof(bad)),
              ADVREC_OK);
    CHECK_INT(advrec_store_commit(store, state, NULL, 0, NULL, 0, errstr,
                                  sizeof(errstr)),
              ADVREC_OK);
    ob = advrec_outbox_new(&params, store);
    CHECK(ob != NULL);
    if (!ob)
        goto out;
    CHECK_INT(advrec_outbox_load(ob, &users, &n_users, errstr, sizeof(errstr)),
              ADVREC_ERR_STORE);
    CHECK(strstr(errstr, "77") != NULL);
    CHECK_INT(n_users, 0);
    errstr[0] = '\0';
    memset(&seen, 0, sizeof(seen));
    CHECK_INT(advrec_outbox_read_stored(store, collect, &seen, errstr,
                                        sizeof(errstr)),
              ADVREC_ERR_STORE);
    CHECK(strstr(errstr, "77") != NULL);

out:
    free(users);
    advrec_outbox_destroy(ob);
    advrec_store_close(store);
    advrec_state_destroy(state);
}

int main(void)
{
    snprintf(base, sizeof(base), "/tmp/advrec-test-outbox-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_records_round_trip);
    RUN(test_owed_users_round_trip);
    RUN(test_malformed_record);
    (void)nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return DONE();
}
