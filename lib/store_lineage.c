/*
 * store_lineage.c - what lets the daemon tell a state that lost commits it
 * had acknowledged from one that is merely where a crash left it
 * (docs/STATE.md, "Lineage: lost commits"):
 *
 *   meta/state/id   32 hex characters, random, made when the state is
 *                   created (or first opened by a build that has them):
 *                   names this state's lineage in the metadata of the
 *                   offsets committed to Kafka;
 *   meta/state/seq  u64, the number of the last commit, written in every
 *                   commit's batch;
 *   ADVREC-COMMITTED  a small file in state.dir rewritten (pwrite, no fsync)
 *                   after every commit RocksDB acknowledged: "the state
 *                   had reached commit N". RocksDB ignores files it does
 *                   not name; checkpoints do not copy it.
 *
 * At open the WAL is first replayed read-only with kAbsoluteConsistency: a
 * WAL that does not replay whole is reported, and replayed again with
 * kPointInTimeRecovery (the mode of the read-write open too), which stops at
 * the first damaged record. A torn last record is what a kill -9 in the
 * middle of a large write leaves (measured: 2 kills in 6), and that commit
 * was never acknowledged; so damage alone proves nothing. The witness
 * decides: a recovered seq below it means acknowledged commits are gone.
 * Owns: the witness file descriptor (store->witness_fd).
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"

#define WITNESS_NAME  "ADVREC-COMMITTED"
#define WITNESS_MAGIC "advrec-committed 1 "
/* magic, 32 hex id, space, 20 digits, newline: fixed width, so a pwrite at
 * offset 0 replaces the whole content. */
#define WITNESS_LEN (sizeof(WITNESS_MAGIC) - 1 + 32 + 1 + 20 + 1)

static void witness_path(const advrec_store_t *store, char *path, size_t size)
{
    snprintf(path, size, "%s/" WITNESS_NAME, store->dir);
}

/* Reads the witness: 1 with its id and seq, 0 when absent or unreadable
 * (a malformed one is logged and treated as absent: it proves nothing). */
static int witness_read(const advrec_store_t *store, char id[33], uint64_t *seq)
{
    char path[4200], buf[WITNESS_LEN + 1], *end;
    ssize_t n;
    int fd;

    witness_path(store, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, WITNESS_LEN);
    close(fd);
    if (n != (ssize_t)WITNESS_LEN ||
        memcmp(buf, WITNESS_MAGIC, sizeof(WITNESS_MAGIC) - 1) != 0) {
        log_warning("state.dir %s: %s is malformed; ignored", store->dir,
                    WITNESS_NAME);
        return 0;
    }
    buf[WITNESS_LEN] = '\0';
    memcpy(id, buf + sizeof(WITNESS_MAGIC) - 1, 32);
    id[32] = '\0';
    errno = 0;
    *seq = strtoull(buf + sizeof(WITNESS_MAGIC) - 1 + 33, &end, 10);
    if (errno || *end != '\n') {
        log_warning("state.dir %s: %s is malformed; ignored", store->dir,
                    WITNESS_NAME);
        return 0;
    }
    return 1;
}

void advrec_store__witness_write(advrec_store_t *store)
{
    char buf[WITNESS_LEN + 1], path[4200];

    if (store->witness_fd < 0) {
        witness_path(store, path, sizeof(path));
        store->witness_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
        if (store->witness_fd < 0) {
            /* Only the detection of lost commits suffers: say so once. */
            if (!store->witness_failed++)
                log_warning("state.dir %s: cannot write %s (%s): commits "
                            "lost from the WAL would go unnoticed",
                            store->dir, WITNESS_NAME, strerror(errno));
            return;
        }
    }
    snprintf(buf, sizeof(buf), WITNESS_MAGIC "%s %020" PRIu64 "\n", store->id,
             store->seq);
    if (pwrite(store->witness_fd, buf, WITNESS_LEN, 0) !=
            (ssize_t)WITNESS_LEN &&
        !store->witness_failed++)
        log_warning("state.dir %s: cannot write %s (%s): commits lost from "
                    "the WAL would go unnoticed",
                    store->dir, WITNESS_NAME, strerror(errno));
}

advrec_err_t advrec_store__lineage_read(advrec_store_t *store, char *errstr,
                                        size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err;

    store->id[0] = '\0';
    store->seq = 0;
    if ((err = advrec_store__get(store, CF_META, META_STATE_ID,
                                 strlen(META_STATE_ID), &val, &len, errstr,
                                 errstr_size)))
        return err;
    if (val && len == 32)
        memcpy(store->id, val, 32), store->id[32] = '\0';
    else if (val)
        log_warning("state.dir %s: meta/%s has %zu bytes, want 32; a new "
                    "identity replaces it",
                    store->dir, META_STATE_ID, len);
    rocksdb_free(val);
    if ((err = advrec_store__get(store, CF_META, META_STATE_SEQ,
                                 strlen(META_STATE_SEQ), &val, &len, errstr,
                                 errstr_size)))
        return err;
    if (val && len == 8)
        store->seq = get_u64((unsigned char *)val);
    rocksdb_free(val);
    return ADVREC_OK;
}

int advrec_store__lineage_new_id(advrec_store_t *store)
{
    unsigned char r[16];
    size_t got = 0;

    if (store->id[0])
        return 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(store->id + 2 * i, 3, "%02x", r[i]);
    return 1;
}

void advrec_store__lineage_check(advrec_store_t *store, const char *wal_damage)
{
    char wid[33];
    uint64_t wseq;
    int have = witness_read(store, wid, &wseq);

    store->lost[0] = '\0';
    store->witness_seq = 0;
    if (have && store->id[0] && strcmp(wid, store->id) != 0) {
        log_notice("state.dir %s: %s names another state (%s, this one is "
                   "%s); ignored",
                   store->dir, WITNESS_NAME, wid, store->id);
        have = 0;
    }
    if (have)
        store->witness_seq = wseq;
    if (have && wseq > store->seq)
        snprintf(store->lost, sizeof(store->lost),
                 "state.dir %s holds commits up to %" PRIu64
                 ", but commit %" PRIu64 " had been acknowledged (%s): %" PRIu64
                 " acknowledged commit(s) are missing%s%s%s",
                 store->dir, store->seq, wseq, WITNESS_NAME, wseq - store->seq,
                 wal_damage ? " (RocksDB could not fully recover the WAL: "
                            : "",
                 wal_damage ? wal_damage : "", wal_damage ? ")" : "");
    else if (!have && wal_damage)
        snprintf(store->lost, sizeof(store->lost),
                 "state.dir %s: RocksDB could not fully recover the WAL (%s) "
                 "and there is no %s to tell whether the commits dropped had "
                 "been acknowledged",
                 store->dir, wal_damage, WITNESS_NAME);
    else if (wal_damage)
        log_notice("state.dir %s: the WAL ended in a damaged record (%s) "
                   "after the last acknowledged commit %" PRIu64
                   " (a write cut by a crash); it was dropped",
                   store->dir, wal_damage, store->seq);
}

const char *advrec_store_id(const advrec_store_t *store)
{
    return store->id;
}

uint64_t advrec_store_seq(const advrec_store_t *store)
{
    return store->seq;
}

void advrec_store_seq_raise(advrec_store_t *store, uint64_t seq)
{
    if (seq > store->seq)
        store->seq = seq;
}

int advrec_store_lost(const advrec_store_t *store, char *buf, size_t size)
{
    if (!store->lost[0])
        return 0;
    if (size)
        snprintf(buf, size, "%s", store->lost);
    return 1;
}

uint64_t advrec_store_witness_seq(const advrec_store_t *store)
{
    return store->witness_seq;
}
