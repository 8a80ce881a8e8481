/*
 * store.c - the RocksDB state of advrecd: the handle.
 *
 * Owns: the RocksDB handle, its options and column family handles, one
 * reusable WriteBatch (staged detector rows wait in it, behind a save
 * point for the rows of a commit; store_commit.c fills it), a value
 * encoding buffer, a key buffer, and for a read-only (secondary) store a
 * private temporary directory. It never owns the state or the popularity
 * table (the engine's).
 *
 * Here: probing state.dir, opening it (read-write, or read-only as a
 * secondary instance), the fingerprint, close, checkpoints, and the read
 * and error helpers the other store files share (store_int.h). The value
 * format is store_row.c's, the commit store_commit.c's, every reader
 * store_load.c's; docs/STATE.md has the layouts.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "log.h"

/* rocksdb::WALRecoveryMode (options.h); the C API takes an int. */
#define WAL_ABSOLUTE      1 /* kAbsoluteConsistency */
#define WAL_POINT_IN_TIME 2 /* kPointInTimeRecovery */

const char *const advrec_store__cf_names[CF_N] = {
    "default", "users", "items", "ids", "detectors", "meta",
};

advrec_err_t advrec_store__rerr(char *rocks, advrec_err_t err, char *errstr,
                                size_t errstr_size, const char *what,
                                const char *dir)
{
    advrec_seterr(err, errstr, errstr_size, "%s state.dir %s: %s", what, dir,
                  rocks ? rocks : "unknown RocksDB error");
    rocksdb_free(rocks);
    return err;
}

int advrec_store__grow_buf(void **p, size_t *cap, size_t need)
{
    void *q;

    if (need <= *cap)
        return 0;
    q = realloc(*p, need);
    if (!q)
        return -1;
    *p = q;
    *cap = need;
    return 0;
}

/* mkdir -p; 0 or errno. */
static int mkdirs(const char *path)
{
    char *tmp = strdup(path);
    int rc = 0;

    if (!tmp)
        return ENOMEM;
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            rc = errno;
            break;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(tmp);
    return rc;
}

/* What is in dir: 1 a RocksDB (CURRENT exists), 0 new (missing or only
 * files a failed open leaves), -1 an error in errstr. */
static int probe_dir(const char *dir, int create, char *errstr,
                     size_t errstr_size, advrec_err_t *err)
{
    struct stat st;
    char path[4096];
    DIR *d;
    struct dirent *de;
    int rc = 0;

    *err = ADVREC_ERR_STORE;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT && create) {
            int e = mkdirs(dir);
            if (e == 0)
                return 0;
            advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                          "cannot create state.dir %s: %s", dir, strerror(e));
            return -1;
        }
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size, "state.dir %s: %s",
                      dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                      "state.dir %s is not a directory", dir);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/CURRENT", dir);
    if (access(path, F_OK) == 0)
        return 1;
    d = opendir(dir);
    if (!d) {
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                      "cannot read state.dir %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            strcmp(n, "LOCK") == 0 || strcmp(n, "LOG") == 0 ||
            strncmp(n, "LOG.old.", 8) == 0)
            continue;
        /* Anything else without CURRENT: a database that lost its CURRENT
         * or someone else's directory. Creating a database here would let
         * RocksDB delete files it believes obsolete. */
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                      "state.dir %s holds files (\"%s\") but no RocksDB "
                      "CURRENT file: not an advrec state dir, or a damaged "
                      "one; refusing to create a database over it",
                      dir, n);
        rc = -1;
        break;
    }
    closedir(d);
    if (rc == 0 && !create) {
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                      "state.dir %s holds no RocksDB database (no CURRENT)",
                      dir);
        rc = -1;
    }
    return rc;
}

static void close_db(advrec_store_t *store)
{
    for (int c = 0; c < CF_N; c++) {
        if (store->cf[c])
            rocksdb_column_family_handle_destroy(store->cf[c]);
        store->cf[c] = NULL;
    }
    for (size_t e = 0; e < store->n_extra; e++)
        rocksdb_column_family_handle_destroy(store->extra[e]);
    free(store->extra);
    store->extra = NULL;
    store->n_extra = 0;
    if (store->db)
        rocksdb_close(store->db);
    store->db = NULL;
}

typedef enum open_mode_e { MODE_RW, MODE_RO, MODE_SECONDARY } open_mode_t;

/*
 * Opens store->dir in mode with the families it lists (when it exists)
 * plus ours (MODE_RW creates the missing ones). Our families that are
 * absent in a read-only mode stay NULL.
 */
static advrec_err_t open_db(advrec_store_t *store, open_mode_t mode, int exists,
                            char *errstr, size_t errstr_size)
{
    char **listed = NULL, *rocks = NULL;
    size_t n_listed = 0, n = 0;
    const char **names = NULL;
    const rocksdb_options_t **opts = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    advrec_err_t err = ADVREC_OK;

    if (exists) {
        listed = rocksdb_list_column_families(store->opts, store->dir,
                                              &n_listed, &rocks);
        if (rocks) {
            /* The C API hands back an (empty) array even on error. */
            if (listed)
                rocksdb_list_column_families_destroy(listed, n_listed);
            return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr,
                                      errstr_size, "cannot open", store->dir);
        }
    }
    names = calloc(n_listed + CF_N, sizeof(*names));
    opts = calloc(n_listed + CF_N, sizeof(*opts));
    handles = calloc(n_listed + CF_N, sizeof(*handles));
    if (!names || !opts || !handles) {
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "state.dir %s: out of memory", store->dir);
        goto out;
    }
    for (size_t l = 0; l < n_listed; l++)
        names[n++] = listed[l];
    if (mode == MODE_RW || !exists) {
        for (int c = 0; c < CF_N; c++) {
            size_t l = 0;
            while (l < n_listed &&
                   strcmp(listed[l], advrec_store__cf_names[c]) != 0)
                l++;
            if (l == n_listed)
                names[n++] = advrec_store__cf_names[c];
        }
    }
    for (size_t i = 0; i < n; i++)
        opts[i] = store->opts;

    if (mode == MODE_RW)
        store->db = rocksdb_open_column_families(
            store->opts, store->dir, (int)n, names, opts, handles, &rocks);
    else if (mode == MODE_RO)
        store->db = rocksdb_open_for_read_only_column_families(
            store->opts, store->dir, (int)n, names, opts, handles, 0, &rocks);
    else
        store->db = rocksdb_open_as_secondary_column_families(
            store->opts, store->dir, store->secondary_dir, (int)n, names, opts,
            handles, &rocks);
    if (rocks) {
        store->db = NULL;
        err = advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                 "cannot open", store->dir);
        goto out;
    }
    store->extra = calloc(n, sizeof(*store->extra));
    for (size_t i = 0; i < n; i++) {
        int c = 0;
        while (c < CF_N && strcmp(names[i], advrec_store__cf_names[c]) != 0)
            c++;
        if (c < CF_N)
            store->cf[c] = handles[i];
        else if (store->extra)
            store->extra[store->n_extra++] = handles[i];
        else
            rocksdb_column_family_handle_destroy(handles[i]);
    }
out:
    if (listed)
        rocksdb_list_column_families_destroy(listed, n_listed);
    free(names);
    free(opts);
    free(handles);
    return err;
}

advrec_err_t advrec_store__get(advrec_store_t *store, int cf, const char *key,
                               size_t key_len, char **val, size_t *len,
                               char *errstr, size_t errstr_size)
{
    char *rocks = NULL;

    *val = NULL;
    *len = 0;
    if (!store->cf[cf])
        return ADVREC_OK;
    *val = rocksdb_get_cf(store->db, store->ropts, store->cf[cf], key, key_len,
                          len, &rocks);
    if (rocks) {
        char what[300];
        snprintf(what, sizeof(what), "cannot read %s/%.*s from",
                 advrec_store__cf_names[cf],
                 (int)(key_len > 200 ? 200 : key_len), key);
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  what, store->dir);
    }
    return ADVREC_OK;
}

advrec_err_t advrec_store_get_meta(advrec_store_t *store, const char *key,
                                   void *buf, size_t size, size_t *len,
                                   char *errstr, size_t errstr_size)
{
    char *val;
    size_t n;
    advrec_err_t err = advrec_store__get(store, CF_META, key, strlen(key), &val,
                                         &n, errstr, errstr_size);

    *len = 0;
    if (err)
        return err;
    if (!val)
        return ADVREC_ERR_NOT_FOUND;
    *len = n < size ? n : size;
    memcpy(buf, val, *len);
    rocksdb_free(val);
    return ADVREC_OK;
}

/* A fingerprint entry: meta key, our value as text. */
typedef struct fp_s {
    const char *key;
    char want[32];
    char have[32];
    int present;
} fp_t;

/* Reads the fingerprint into fps[0..3) (format, model.k, recs.history). */
static advrec_err_t read_fingerprint(advrec_store_t *store, fp_t *fps,
                                     char *errstr, size_t errstr_size)
{
    static const char *const keys[3] = {META_FORMAT, META_K, META_HISTORY};

    for (int f = 0; f < 3; f++) {
        char *val;
        size_t len;
        advrec_err_t err =
            advrec_store__get(store, CF_META, keys[f], strlen(keys[f]), &val,
                              &len, errstr, errstr_size);
        if (err)
            return err;
        fps[f].key = keys[f];
        fps[f].present = val != NULL;
        fps[f].have[0] = '\0';
        if (val)
            snprintf(fps[f].have, sizeof(fps[f].have), "%.*s",
                     (int)(len < 31 ? len : 31), val);
        rocksdb_free(val);
    }
    return ADVREC_OK;
}

/* 1 if family cf holds at least one key. */
static int family_has_data(advrec_store_t *store, int cf)
{
    rocksdb_iterator_t *it;
    int any;

    if (!store->cf[cf])
        return 0;
    it = rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[cf]);
    rocksdb_iter_seek_to_first(it);
    any = rocksdb_iter_valid(it);
    rocksdb_iter_destroy(it);
    return any;
}

/*
 * Compares the stored fingerprint with params. *fresh is set when there is
 * none and no rows either (a new database, or one whose creation was cut
 * before the fingerprint was written).
 */
static advrec_err_t check_fingerprint(advrec_store_t *store, int *fresh,
                                      char *errstr, size_t errstr_size)
{
    fp_t fps[3];
    advrec_err_t err;
    size_t off = 0;
    int n_present = 0;

    *fresh = 0;
    if ((err = read_fingerprint(store, fps, errstr, errstr_size)))
        return err;
    snprintf(fps[0].want, sizeof(fps[0].want), "%d", ADVREC_STORE_FORMAT);
    snprintf(fps[1].want, sizeof(fps[1].want), "%u", store->params.k);
    snprintf(fps[2].want, sizeof(fps[2].want), "%u", store->params.history);
    for (int f = 0; f < 3; f++)
        n_present += fps[f].present;
    if (n_present == 0) {
        if (family_has_data(store, CF_USERS) ||
            family_has_data(store, CF_ITEMS) || family_has_data(store, CF_META))
            return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                 "state.dir %s holds a RocksDB database "
                                 "without advrec's fingerprint (meta/%s): "
                                 "not an advrec state dir",
                                 store->dir, META_FORMAT);
        *fresh = 1;
        return ADVREC_OK;
    }
    /* Format 1 and 2 rows are read (format 1's sets rebuilt from the
     * ring, the per-coordinate accumulators of both averaged into the
     * row's one); the first read-write open records our format, so an
     * older build refuses the dir once it may hold rows it cannot read. */
    if (fps[0].present &&
        (strcmp(fps[0].have, "1") == 0 || strcmp(fps[0].have, "2") == 0)) {
        store->upgrade = fps[0].have[0] - '0';
        snprintf(fps[0].want, sizeof(fps[0].want), "%s", fps[0].have);
    }
    for (int f = 0; f < 3; f++) {
        if (fps[f].present && strcmp(fps[f].have, fps[f].want) == 0)
            continue;
        if (off == 0)
            off +=
                (size_t)snprintf(errstr, errstr_size,
                                 "state.dir %s was written with ", store->dir);
        else if (off < errstr_size)
            off += (size_t)snprintf(errstr + off, errstr_size - off, "; ");
        if (off < errstr_size)
            off += (size_t)snprintf(
                errstr + off, errstr_size - off, "%s=%s, this %s has %s=%s",
                fps[f].key, fps[f].present ? fps[f].have : "(missing)",
                f == 0 ? "build" : "configuration", fps[f].key, fps[f].want);
    }
    if (off > 0)
        return ADVREC_ERR_STATE_MISMATCH;
    return ADVREC_OK;
}

/* Writes the fingerprint (when fp) and the state's id (when id), with
 * fsync. */
static advrec_err_t write_fingerprint(advrec_store_t *store, int fp, int id,
                                      char *errstr, size_t errstr_size)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    char v[3][32];
    const char *keys[3] = {META_FORMAT, META_K, META_HISTORY};
    char *rocks = NULL;

    snprintf(v[0], sizeof(v[0]), "%d", ADVREC_STORE_FORMAT);
    snprintf(v[1], sizeof(v[1]), "%u", store->params.k);
    snprintf(v[2], sizeof(v[2]), "%u", store->params.history);
    for (int f = 0; fp && f < 3; f++)
        rocksdb_writebatch_put_cf(b, store->cf[CF_META], keys[f],
                                  strlen(keys[f]), v[f], strlen(v[f]));
    if (id)
        rocksdb_writebatch_put_cf(b, store->cf[CF_META], META_STATE_ID,
                                  strlen(META_STATE_ID), store->id, 32);
    rocksdb_writeoptions_set_sync(w, 1);
    rocksdb_write(store->db, w, b, &rocks);
    rocksdb_writebatch_destroy(b);
    rocksdb_writeoptions_destroy(w);
    if (rocks)
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  "cannot write the fingerprint to",
                                  store->dir);
    return ADVREC_OK;
}

static advrec_store_t *store_alloc(const char *dir)
{
    advrec_store_t *store = calloc(1, sizeof(*store));

    if (!store)
        return NULL;
    store->dir = strdup(dir);
    store->opts = rocksdb_options_create();
    store->wopts = rocksdb_writeoptions_create();
    store->ropts = rocksdb_readoptions_create();
    store->scan = rocksdb_readoptions_create();
    store->batch = rocksdb_writebatch_create();
    if (!store->dir || !store->opts || !store->wopts || !store->ropts ||
        !store->scan || !store->batch) {
        advrec_store_close(store);
        return NULL;
    }
    rocksdb_readoptions_set_fill_cache(store->scan, 0);
    rocksdb_readoptions_set_readahead_size(store->scan, (size_t)2 << 20);
    rocksdb_options_set_create_if_missing(store->opts, 1);
    rocksdb_options_set_create_missing_column_families(store->opts, 1);
    rocksdb_options_set_keep_log_file_num(store->opts, 4);
    rocksdb_options_set_paranoid_checks(store->opts, 1);
    /* meta takes a few bytes every commit and would otherwise keep every
     * WAL file alive until the default limit (4 x all write buffers, GBs):
     * a restart would then replay all of it. */
    rocksdb_options_set_max_total_wal_size(store->opts, (uint64_t)128 << 20);
    /* RocksDB's default, chosen deliberately: replay up to the first
     * damaged record and stop there, so the state is that of a whole
     * commit. Whether that lost an acknowledged commit is decided against
     * the witness (store_lineage.c). */
    rocksdb_options_set_wal_recovery_mode(store->opts, WAL_POINT_IN_TIME);
    store->witness_fd = -1;
    return store;
}

advrec_err_t advrec_store_open(const char *dir,
                               const advrec_store_params_t *params,
                               advrec_store_t **storep, char *errstr,
                               size_t errstr_size)
{
    advrec_store_t *store;
    advrec_err_t err;
    int exists, fresh = 1, new_id;
    char wal_damage[512] = "";

    *storep = NULL;
    if (params->k < 1 || params->k > 65535 || params->history < 1 ||
        params->history > 65535)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "store: k=%u history=%u out of range", params->k,
                             params->history);
    exists = probe_dir(dir, 1, errstr, errstr_size, &err);
    if (exists < 0)
        return err;
    store = store_alloc(dir);
    if (!store)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", dir);
    store->params = *params;
    /* Under a memory budget the memtables count too: by default each
     * family may hold two of 64 MiB, which alone would pass a small one. */
    if (store->params.memory_limit) {
        rocksdb_block_based_table_options_t *bbto;

        rocksdb_options_set_db_write_buffer_size(
            store->opts, (size_t)(store->params.memory_limit / 8));
        /* Every new user is looked up in RocksDB first (it may have been
         * evicted): without filters a miss reads and decompresses a block
         * of every level (perf: rocksdb_get_cf 17 % of the CPU of 1 M new
         * users). Bloom filters, 10 bits a key, in the tables written from
         * now on; older tables still read. The factory copies the options
         * and shares the policy. */
        if ((bbto = rocksdb_block_based_options_create())) {
            rocksdb_block_based_options_set_filter_policy(
                bbto, rocksdb_filterpolicy_create_bloom(10));
            rocksdb_options_set_block_based_table_factory(store->opts, bbto);
            rocksdb_block_based_options_destroy(bbto);
        }
    }
    rocksdb_writeoptions_set_sync(store->wopts,
                                  params->sync == ADVREC_STORE_SYNC_COMMIT);

    /* An existing database is first checked read-only, so a mismatch or a
     * foreign database is refused without RocksDB writing anything. */
    if (exists) {
        /* The read-only replay is also the WAL's check: with
         * kAbsoluteConsistency any record that does not replay whole is
         * reported; then it is replayed as the read-write open will
         * (point in time) and the witness decides what that means. */
        rocksdb_options_set_wal_recovery_mode(store->opts, WAL_ABSOLUTE);
        err = open_db(store, MODE_RO, 1, errstr, errstr_size);
        rocksdb_options_set_wal_recovery_mode(store->opts, WAL_POINT_IN_TIME);
        if (err == ADVREC_ERR_STORE && strstr(errstr, ": Corruption: ")) {
            snprintf(wal_damage, sizeof(wal_damage), "%s",
                     strstr(errstr, ": Corruption: ") + 2);
            err = open_db(store, MODE_RO, 1, errstr, errstr_size);
        }
        if (err ||
            (err = check_fingerprint(store, &fresh, errstr, errstr_size)) ||
            (err = advrec_store__lineage_read(store, errstr, errstr_size)))
            goto fail;
        close_db(store);
    }
    if ((err = open_db(store, MODE_RW, exists, errstr, errstr_size)))
        goto fail;
    if (!fresh)
        advrec_store__lineage_check(store, wal_damage[0] ? wal_damage : NULL);
    new_id = advrec_store__lineage_new_id(store);
    if (new_id < 0) {
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: no random bytes for the state's "
                            "id: %s",
                            dir, strerror(errno));
        goto fail;
    }
    if ((fresh || store->upgrade || new_id) &&
        (err = write_fingerprint(store, fresh || store->upgrade, new_id, errstr,
                                 errstr_size)))
        goto fail;
    if (store->upgrade)
        log_notice("state.dir %s: format %d read; rows are rewritten in "
                   "format %d as they change, and older builds no longer "
                   "open it",
                   dir, store->upgrade, ADVREC_STORE_FORMAT);
    log_info("state.dir %s: opened (%s, id %s, commit %llu, model.k=%u, "
             "recs.history=%u, state.sync=%s)",
             dir, fresh ? "new" : "existing", store->id,
             (unsigned long long)store->seq, params->k, params->history,
             params->sync == ADVREC_STORE_SYNC_COMMIT ? "commit" : "none");
    *storep = store;
    return ADVREC_OK;

fail:
    advrec_store_close(store);
    return err;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    return remove(path);
}

advrec_err_t advrec_store_open_readonly(const char *dir,
                                        advrec_store_t **storep, char *errstr,
                                        size_t errstr_size)
{
    advrec_store_t *store;
    advrec_err_t err;
    fp_t fps[3];
    char tmpl[] = "/tmp/advrec-secondary-XXXXXX";
    long v[3];

    *storep = NULL;
    if (probe_dir(dir, 0, errstr, errstr_size, &err) < 0)
        return err;
    store = store_alloc(dir);
    if (!store)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "state.dir %s: out of memory", dir);
    store->readonly = 1;
    /* A secondary instance keeps every file open, so files the primary
     * compacts away stay readable until catch-up. */
    rocksdb_options_set_max_open_files(store->opts, -1);
    rocksdb_options_set_create_if_missing(store->opts, 0);
    if (!mkdtemp(tmpl)) {
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: cannot make a temporary "
                            "directory for the secondary instance: %s",
                            dir, strerror(errno));
        goto fail;
    }
    store->secondary_dir = strdup(tmpl);
    if (!store->secondary_dir) {
        (void)rmdir(tmpl);
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "state.dir %s: out of memory", dir);
        goto fail;
    }
    if ((err = open_db(store, MODE_SECONDARY, 1, errstr, errstr_size)) ||
        (err = read_fingerprint(store, fps, errstr, errstr_size)) ||
        (err = advrec_store__lineage_read(store, errstr, errstr_size)))
        goto fail;
    for (int f = 0; f < 3; f++) {
        char *end;
        v[f] = fps[f].present ? strtol(fps[f].have, &end, 10) : -1;
        if (!fps[f].present || *end != '\0' || v[f] < 1 || v[f] > 65535) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: meta/%s is %s: not an advrec "
                                "state dir",
                                dir, fps[f].key,
                                fps[f].present ? fps[f].have : "missing");
            goto fail;
        }
    }
    if (v[0] < FORMAT_V1 || v[0] > ADVREC_STORE_FORMAT) {
        err = advrec_seterr(ADVREC_ERR_STATE_MISMATCH, errstr, errstr_size,
                            "state.dir %s was written with format=%ld, this "
                            "build reads format=%d to %d",
                            dir, v[0], FORMAT_V1, ADVREC_STORE_FORMAT);
        goto fail;
    }
    store->params.k = (uint32_t)v[1];
    store->params.history = (uint32_t)v[2];
    store->params.sync = ADVREC_STORE_SYNC_NONE;
    *storep = store;
    return ADVREC_OK;

fail:
    advrec_store_close(store);
    return err;
}

advrec_err_t advrec_store_catch_up(advrec_store_t *store, char *errstr,
                                   size_t errstr_size)
{
    char *rocks = NULL;

    if (!store->readonly)
        return ADVREC_OK;
    rocksdb_try_catch_up_with_primary(store->db, &rocks);
    if (rocks)
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  "cannot catch up with", store->dir);
    return ADVREC_OK;
}

void advrec_store_sizes(advrec_store_t *store, uint64_t *sst_bytes,
                        uint64_t *pending_bytes)
{
    *sst_bytes = *pending_bytes = 0;
    for (int f = 0; f < CF_N; f++) {
        uint64_t v;
        if (!store->cf[f])
            continue;
        if (rocksdb_property_int_cf(store->db, store->cf[f],
                                    "rocksdb.total-sst-files-size", &v) == 0)
            *sst_bytes += v;
        if (rocksdb_property_int_cf(store->db, store->cf[f],
                                    "rocksdb.estimate-pending-compaction-bytes",
                                    &v) == 0)
            *pending_bytes += v;
    }
}

void advrec_store_close(advrec_store_t *store)
{
    if (!store)
        return;
    if (store->writing) {
        char why[512];
        if (advrec_store_commit_wait(store, why, sizeof(why)))
            log_err("%s", why);
    }
    close_db(store);
    if (store->witness_fd >= 0)
        close(store->witness_fd);
    if (store->batch)
        rocksdb_writebatch_destroy(store->batch);
    if (store->inflight)
        rocksdb_writebatch_destroy(store->inflight);
    if (store->wopts)
        rocksdb_writeoptions_destroy(store->wopts);
    if (store->ropts)
        rocksdb_readoptions_destroy(store->ropts);
    if (store->scan)
        rocksdb_readoptions_destroy(store->scan);
    if (store->opts)
        rocksdb_options_destroy(store->opts);
    if (store->secondary_dir) {
        (void)nftw(store->secondary_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(store->secondary_dir);
    }
    free(store->buf);
    free(store->order);
    free(store->key);
    free(store->dir);
    free(store);
}

const advrec_store_params_t *advrec_store_params(const advrec_store_t *store)
{
    return &store->params;
}

const char *advrec_store_dir(const advrec_store_t *store)
{
    return store->dir;
}

/* --- checkpoint ------------------------------------------------------- */

advrec_err_t advrec_store_checkpoint(advrec_store_t *store,
                                     const char *dest_dir, char *errstr,
                                     size_t errstr_size)
{
    rocksdb_checkpoint_t *cp;
    char *rocks = NULL;

    if (store->readonly)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s is open read-only: checkpoint it "
                             "from the daemon",
                             store->dir);
    cp = rocksdb_checkpoint_object_create(store->db, &rocks);
    if (rocks)
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  "cannot checkpoint", store->dir);
    /* log_size_for_flush 0: flush every family first, so the copy holds
     * SST files only and needs no WAL replay. */
    rocksdb_checkpoint_create(cp, dest_dir, 0, &rocks);
    rocksdb_checkpoint_object_destroy(cp);
    if (rocks) {
        advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                      "cannot checkpoint state.dir %s into %s: %s", store->dir,
                      dest_dir, rocks);
        rocksdb_free(rocks);
        return ADVREC_ERR_STORE;
    }
    log_info("state.dir %s: checkpoint written to %s", store->dir, dest_dir);
    return ADVREC_OK;
}

advrec_err_t advrec_store_checkpoint_stamped(advrec_store_t *store,
                                             const char *base_dir, char *path,
                                             size_t path_size, char *errstr,
                                             size_t errstr_size)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    if (mkdir(base_dir, 0750) != 0 && errno != EEXIST)
        return advrec_seterr(ADVREC_ERR_IO, errstr, errstr_size,
                             "cannot create %s: %s", base_dir, strerror(errno));
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(path, path_size, "%s/%s", base_dir, stamp);
    for (int n = 1; access(path, F_OK) == 0 && n < 100; n++)
        snprintf(path, path_size, "%s/%s.%d", base_dir, stamp, n);
    return advrec_store_checkpoint(store, path, errstr, errstr_size);
}
