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
 * secondary instance), the fingerprint, close, checkpoints, the read
 * and error helpers the other store files share (store_int.h), and every
 * reader. The value format is store_row.c's, the commit store_commit.c's;
 * docs/STATE.md has the layouts.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "log.h"

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
    /* Format 1 rows are read (their sets rebuilt from the ring); the first
     * read-write open records our format, so an older build refuses the
     * dir once it may hold rows it cannot read. */
    if (fps[0].present && strcmp(fps[0].have, "1") == 0) {
        store->upgrade = 1;
        snprintf(fps[0].want, sizeof(fps[0].want), "1");
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

static advrec_err_t write_fingerprint(advrec_store_t *store, char *errstr,
                                      size_t errstr_size)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    char v[3][32];
    const char *keys[3] = {META_FORMAT, META_K, META_HISTORY};
    char *rocks = NULL;

    snprintf(v[0], sizeof(v[0]), "%d", ADVREC_STORE_FORMAT);
    snprintf(v[1], sizeof(v[1]), "%u", store->params.k);
    snprintf(v[2], sizeof(v[2]), "%u", store->params.history);
    for (int f = 0; f < 3; f++)
        rocksdb_writebatch_put_cf(b, store->cf[CF_META], keys[f],
                                  strlen(keys[f]), v[f], strlen(v[f]));
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
    return store;
}

advrec_err_t advrec_store_open(const char *dir,
                               const advrec_store_params_t *params,
                               advrec_store_t **storep, char *errstr,
                               size_t errstr_size)
{
    advrec_store_t *store;
    advrec_err_t err;
    int exists, fresh = 1;

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
    rocksdb_writeoptions_set_sync(store->wopts,
                                  params->sync == ADVREC_STORE_SYNC_COMMIT);

    /* An existing database is first checked read-only, so a mismatch or a
     * foreign database is refused without RocksDB writing anything. */
    if (exists) {
        if ((err = open_db(store, MODE_RO, 1, errstr, errstr_size)) ||
            (err = check_fingerprint(store, &fresh, errstr, errstr_size)))
            goto fail;
        close_db(store);
    }
    if ((err = open_db(store, MODE_RW, exists, errstr, errstr_size)))
        goto fail;
    if ((fresh || store->upgrade) &&
        (err = write_fingerprint(store, errstr, errstr_size)))
        goto fail;
    if (store->upgrade)
        log_notice("state.dir %s: format %d read; rows are rewritten in "
                   "format %d as they change, and older builds no longer "
                   "open it",
                   dir, FORMAT_V1, ADVREC_STORE_FORMAT);
    log_info("state.dir %s: opened (%s, model.k=%u, recs.history=%u, "
             "state.sync=%s)",
             dir, fresh ? "new" : "existing", params->k, params->history,
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
        (err = read_fingerprint(store, fps, errstr, errstr_size)))
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
    if (v[0] != ADVREC_STORE_FORMAT && v[0] != FORMAT_V1) {
        err = advrec_seterr(ADVREC_ERR_STATE_MISMATCH, errstr, errstr_size,
                            "state.dir %s was written with format=%ld, this "
                            "build reads format=%d or %d",
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

void advrec_store_close(advrec_store_t *store)
{
    if (!store)
        return;
    close_db(store);
    if (store->batch)
        rocksdb_writebatch_destroy(store->batch);
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

/* --- load ------------------------------------------------------------- */

/* A NUL-terminated copy of a RocksDB key in store->key. */
static const char *key_str(advrec_store_t *store, const char *k, size_t len)
{
    if (advrec_store__grow_buf((void **)&store->key, &store->key_cap, len + 1))
        return NULL;
    memcpy(store->key, k, len);
    store->key[len] = '\0';
    return store->key;
}

static advrec_err_t iter_error(advrec_store_t *store, rocksdb_iterator_t *it,
                               int cf, char *errstr, size_t errstr_size)
{
    char *rocks = NULL, what[64];

    rocksdb_iter_get_error(it, &rocks);
    if (!rocks)
        return ADVREC_OK;
    snprintf(what, sizeof(what), "cannot read family %s of",
             advrec_store__cf_names[cf]);
    return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                              what, store->dir);
}

static advrec_err_t get_u32_meta(advrec_store_t *store, const char *key,
                                 uint64_t *out, size_t width, char *errstr,
                                 size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err = advrec_store__get(store, CF_META, key, strlen(key), &val,
                                         &len, errstr, errstr_size);

    *out = 0;
    if (err || !val)
        return err;
    if (len != width) {
        rocksdb_free(val);
        return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                             "state.dir %s: meta/%s has %zu bytes, want %zu",
                             store->dir, key, len, width);
    }
    *out = width == 4 ? get_u32((unsigned char *)val)
                      : get_u64((unsigned char *)val);
    rocksdb_free(val);
    return ADVREC_OK;
}

/* Interns every id of family ids in index order. */
static advrec_err_t load_ids(advrec_store_t *store, advrec_state_t *state,
                             uint64_t n_users, uint64_t n_items, int items_only,
                             char *errstr, size_t errstr_size)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->scan, store->cf[CF_IDS]);
    uint32_t next[2] = {0, 0};
    advrec_err_t err = ADVREC_OK;

    /* 'i' sorts before 'u': items first, then users. */
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const unsigned char *k =
            (const unsigned char *)rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl), *id;
        int items;
        uint32_t idx, got;

        if (items_only && kl > 0 && k[0] != 'i')
            break;
        if (kl != 5 || (k[0] != 'u' && k[0] != 'i')) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed key in family ids "
                                "(%zu bytes)",
                                store->dir, kl);
            break;
        }
        items = k[0] == 'i';
        idx = (uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 |
              (uint32_t)k[3] << 8 | k[4];
        if (idx != next[items]) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: family ids lists %s index %u "
                                "where %u was expected: indices are not "
                                "dense",
                                store->dir, items ? "item" : "user", idx,
                                next[items]);
            break;
        }
        if (!(id = key_str(store, v, vl))) {
            err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                "state.dir %s: out of memory", store->dir);
            break;
        }
        err = items ? advrec_state_item(state, id, 1, &got, NULL, errstr,
                                        errstr_size)
                    : advrec_state_user(state, id, 1, &got, NULL, errstr,
                                        errstr_size);
        if (err)
            break;
        if (got != idx) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: %s \"%s\" is listed twice in "
                                "family ids (indices %u and %u)",
                                store->dir, items ? "item" : "user", id, got,
                                idx);
            break;
        }
        next[items]++;
    }
    if (!err)
        err = iter_error(store, it, CF_IDS, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    if (items_only)
        n_users = 0;
    if (!err && (next[0] != n_users || next[1] != n_items))
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: family ids lists %u users and %u "
                            "items, meta counts say %llu and %llu",
                            store->dir, next[0], next[1],
                            (unsigned long long)n_users,
                            (unsigned long long)n_items);
    return err;
}

/* Fills the rows of family cf (users or items) into state (and pop). */
static advrec_err_t load_rows(advrec_store_t *store, advrec_state_t *state,
                              advrec_popularity_t *pop, int cf, char *errstr,
                              size_t errstr_size)
{
    int items = cf == CF_ITEMS;
    char kind = items ? KIND_ITEM : KIND_USER;
    advrec_rows_t *rows =
        items ? advrec_state_items(state) : advrec_state_users(state);
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t h = store->params.history, seen = 0;
    size_t k8 = (size_t)8 * store->params.k;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->scan, store->cf[cf]);
    advrec_err_t err = ADVREC_OK;

    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *id;
        const unsigned char *v =
            (const unsigned char *)rocksdb_iter_value(it, &vl);
        uint32_t idx;

        if ((err = advrec_store__check_value(store, kind, k, kl, v, vl, errstr,
                                             errstr_size)))
            break;
        if (!(id = key_str(store, k, kl))) {
            err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                                "state.dir %s: out of memory", store->dir);
            break;
        }
        err = items ? advrec_state_item(state, id, 0, &idx, NULL, errstr,
                                        errstr_size)
                    : advrec_state_user(state, id, 0, &idx, NULL, errstr,
                                        errstr_size);
        if (err || idx != get_u32(v + OFF_IDX)) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: %s/\"%s\" (index %u) does "
                                "not match family ids",
                                store->dir, advrec_store__cf_names[cf], id,
                                get_u32(v + OFF_IDX));
            break;
        }
        advrec_store__decode_common(v, rows, idx);
        if (items) {
            double key;
            memcpy(&key, v + OFF_W + k8, 8);
            if (pop && key > -INFINITY &&
                (err = advrec_popularity_set_key(pop, idx, key))) {
                advrec_seterr(err, errstr, errstr_size,
                              "state.dir %s: item \"%s\": popularity key "
                              "%g not restored: %s",
                              store->dir, id, key, advrec_err2str(err));
                break;
            }
        } else {
            advrec_store__decode_user_tail(
                v + OFF_W + k8, h, ux->hist + (size_t)idx * h,
                ux->hist_len + idx, ux->hist_head + idx, ux->last + idx,
                ux->last_ts_ms + idx);
            if (ux->hist_len[idx] > h || ux->hist_head[idx] >= h) {
                err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                    "state.dir %s: users/\"%s\": history "
                                    "ring len %u head %u for %u entries",
                                    store->dir, id, ux->hist_len[idx],
                                    ux->hist_head[idx], h);
                break;
            }
            if ((err = advrec_store__decode_user_sets(store, state, idx, id,
                                                      v))) {
                advrec_seterr(err, errstr, errstr_size,
                              "state.dir %s: users/\"%s\": %s", store->dir, id,
                              err == ADVREC_ERR_NOMEM
                                  ? "out of memory restoring its item sets"
                                  : "malformed purchase or seen set");
                break;
            }
        }
        seen++;
    }
    if (!err)
        err = iter_error(store, it, cf, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    if (!err && seen != rows->n)
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: family %s has %u rows, family "
                            "ids lists %u",
                            store->dir, advrec_store__cf_names[cf], seen,
                            rows->n);
    return err;
}

static advrec_err_t load(advrec_store_t *store, advrec_state_t *state,
                         advrec_popularity_t *pop, uint64_t *version,
                         int items_only, char *errstr, size_t errstr_size)
{
    const advrec_state_params_t *sp = advrec_state_params(state);
    uint64_t n_users, n_items, v;
    advrec_err_t err;

    if (advrec_state_users(state)->n || advrec_state_items(state)->n ||
        sp->k != store->params.k || sp->history != store->params.history)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s: load needs an empty state with "
                             "k=%u history=%u",
                             store->dir, store->params.k,
                             store->params.history);
    if ((err = get_u32_meta(store, META_N_USERS, &n_users, 4, errstr,
                            errstr_size)) ||
        (err = get_u32_meta(store, META_N_ITEMS, &n_items, 4, errstr,
                            errstr_size)) ||
        (err = get_u32_meta(store, META_VERSION, &v, 8, errstr, errstr_size)) ||
        (err = load_ids(store, state, n_users, n_items, items_only, errstr,
                        errstr_size)) ||
        (!items_only && (err = load_rows(store, state, NULL, CF_USERS, errstr,
                                         errstr_size))) ||
        (err = load_rows(store, state, pop, CF_ITEMS, errstr, errstr_size)))
        return err;
    if (version)
        *version = v;
    if (items_only)
        return ADVREC_OK;
    /* Loaded rows are on disk already. */
    advrec_state_clear_dirty(state);
    store->users_hw = (uint32_t)n_users;
    store->items_hw = (uint32_t)n_items;
    log_info("state.dir %s: loaded %llu users, %llu items, model version "
             "%llu",
             store->dir, (unsigned long long)n_users,
             (unsigned long long)n_items, (unsigned long long)v);
    return ADVREC_OK;
}

advrec_err_t advrec_store_load(advrec_store_t *store, advrec_state_t *state,
                               advrec_popularity_t *pop, uint64_t *version,
                               char *errstr, size_t errstr_size)
{
    return load(store, state, pop, version, 0, errstr, errstr_size);
}

advrec_err_t advrec_store_load_items(advrec_store_t *store,
                                     advrec_state_t *state,
                                     advrec_popularity_t *pop, char *errstr,
                                     size_t errstr_size)
{
    return load(store, state, pop, NULL, 1, errstr, errstr_size);
}

/* --- offsets, detectors ----------------------------------------------- */

advrec_err_t advrec_store_offset(advrec_store_t *store, const char *topic,
                                 int32_t partition, int64_t *next, char *errstr,
                                 size_t errstr_size)
{
    char key[600], *val;
    size_t kl = offset_key(key, sizeof(key), topic, partition), len;
    advrec_err_t err = advrec_store__get(store, CF_META, key, kl, &val, &len,
                                         errstr, errstr_size);

    if (err)
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no offset stored for %s [%d]",
                             store->dir, topic, (int)partition);
    if (len != 8) {
        rocksdb_free(val);
        return advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                             "state.dir %s: meta/%s has %zu bytes, want 8",
                             store->dir, key, len);
    }
    *next = (int64_t)get_u64((unsigned char *)val);
    rocksdb_free(val);
    return ADVREC_OK;
}

advrec_err_t advrec_store_offsets_foreach(advrec_store_t *store,
                                          advrec_store_offset_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    size_t pl = strlen(META_OFFSET_PF);
    advrec_err_t err = ADVREC_OK;

    for (rocksdb_iter_seek(it, META_OFFSET_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        const char *slash;
        char topic[512];
        advrec_store_offset_t off;

        if (kl < pl || memcmp(k, META_OFFSET_PF, pl) != 0)
            break;
        slash = memrchr(k + pl, '/', kl - pl);
        if (!slash || vl != 8 ||
            (size_t)(slash - k - (ptrdiff_t)pl) >= sizeof(topic)) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed offset entry "
                                "meta/%.*s",
                                store->dir, (int)(kl > 200 ? 200 : kl), k);
            break;
        }
        memcpy(topic, k + pl, (size_t)(slash - k) - pl);
        topic[(size_t)(slash - k) - pl] = '\0';
        off.topic = topic;
        off.partition = (int32_t)strtol(
            key_str(store, slash + 1, kl - (size_t)(slash + 1 - k)), NULL, 10);
        off.next = (int64_t)get_u64((const unsigned char *)v);
        if (cb(opaque, &off))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

advrec_err_t advrec_store_detectors_foreach(advrec_store_t *store,
                                            advrec_store_kv_cb *cb,
                                            void *opaque, char *errstr,
                                            size_t errstr_size)
{
    rocksdb_iterator_t *it;
    advrec_err_t err;

    if (!store->cf[CF_DETECTORS])
        return ADVREC_OK;
    it = rocksdb_create_iterator_cf(store->db, store->ropts,
                                    store->cf[CF_DETECTORS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (cb(opaque, k, kl, v, vl))
            break;
    }
    err = iter_error(store, it, CF_DETECTORS, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

/* --- pending ---------------------------------------------------------- */

advrec_err_t advrec_store_load_pending(advrec_store_t *store, uint32_t **users,
                                       size_t *n, char *errstr,
                                       size_t errstr_size)
{
    char *val;
    size_t len;
    advrec_err_t err =
        advrec_store__get(store, CF_META, META_PENDING, strlen(META_PENDING),
                          &val, &len, errstr, errstr_size);

    *users = NULL;
    *n = 0;
    if (err || !val)
        return err;
    if (len % 4 != 0 || !(*users = malloc(len ? len : 1))) {
        rocksdb_free(val);
        return advrec_seterr(
            len % 4 ? ADVREC_ERR_STORE : ADVREC_ERR_NOMEM, errstr, errstr_size,
            "state.dir %s: meta/%s: %zu bytes", store->dir, META_PENDING, len);
    }
    for (size_t i = 0; i < len / 4; i++)
        (*users)[i] = get_u32((unsigned char *)val + 4 * i);
    *n = len / 4;
    rocksdb_free(val);
    return ADVREC_OK;
}

advrec_err_t advrec_store_flags_foreach(advrec_store_t *store,
                                        advrec_store_flag_cb *cb, void *opaque,
                                        char *errstr, size_t errstr_size)
{
    rocksdb_iterator_t *it;
    size_t pl = strlen(META_FLAG_PF);
    advrec_err_t err = ADVREC_OK;

    if (!store->cf[CF_META])
        return ADVREC_OK;
    it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    for (rocksdb_iter_seek(it, META_FLAG_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const unsigned char *v =
            (const unsigned char *)rocksdb_iter_value(it, &vl);
        uint64_t seq = 0;
        uint32_t key_len;

        if (kl < pl || memcmp(k, META_FLAG_PF, pl) != 0)
            break;
        for (size_t i = pl; i < kl && i < pl + 8; i++)
            seq = seq << 8 | (unsigned char)k[i];
        if (kl != pl + 8 || vl < FLAG_HEADER || v[0] != FLAG_FORMAT ||
            (key_len = get_u32(v + 1)) > vl - FLAG_HEADER) {
            err =
                advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                              "state.dir %s: malformed pending flag "
                              "meta/%s<seq %llu> (%zu-byte key, %zu-byte "
                              "value, format %d)",
                              store->dir, META_FLAG_PF, (unsigned long long)seq,
                              kl, vl, vl ? v[0] : -1);
            break;
        }
        if (cb(opaque, seq, v + FLAG_HEADER, key_len, v + FLAG_HEADER + key_len,
               vl - FLAG_HEADER - key_len))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

/* meta key of pending output seq: META_OUT_PF, then seq big-endian. */

advrec_err_t advrec_store_outputs_foreach(advrec_store_t *store,
                                          advrec_store_output_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
    rocksdb_iterator_t *it;
    size_t pl = strlen(META_OUT_PF);
    advrec_err_t err = ADVREC_OK;

    if (!store->cf[CF_META])
        return ADVREC_OK;
    it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    for (rocksdb_iter_seek(it, META_OUT_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        uint64_t seq = 0;

        if (kl < pl || memcmp(k, META_OUT_PF, pl) != 0)
            break;
        for (size_t i = pl; i < kl && i < pl + 8; i++)
            seq = seq << 8 | (unsigned char)k[i];
        if (kl != pl + 8) {
            err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                                "state.dir %s: malformed pending output key "
                                "meta/%s... (%zu bytes)",
                                store->dir, META_OUT_PF, kl);
            break;
        }
        if (cb(opaque, seq, v, vl))
            break;
    }
    if (!err)
        err = iter_error(store, it, CF_META, errstr, errstr_size);
    rocksdb_iter_destroy(it);
    return err;
}

/* --- tools ------------------------------------------------------------ */

void advrec_store_row_free(advrec_store_row_t *row)
{
    if (!row)
        return;
    free(row->w);
    free(row->acc);
    free(row->hist);
    memset(row, 0, sizeof(*row));
}

static advrec_err_t get_row(advrec_store_t *store, int cf, const char *id,
                            advrec_store_row_t *row, char *errstr,
                            size_t errstr_size)
{
    char kind = cf == CF_ITEMS ? KIND_ITEM : KIND_USER;
    uint32_t k = store->params.k, h = store->params.history;
    const unsigned char *v;
    char *val;
    size_t len;
    advrec_err_t err;

    memset(row, 0, sizeof(*row));
    if ((err = advrec_store__get(store, cf, id, strlen(id), &val, &len, errstr,
                                 errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no %s \"%s\"", store->dir,
                             cf == CF_ITEMS ? "item" : "user", id);
    v = (const unsigned char *)val;
    if ((err = advrec_store__check_value(store, kind, id, strlen(id), v, len,
                                         errstr, errstr_size)))
        goto out;
    row->k = k;
    row->idx = get_u32(v + OFF_IDX);
    row->updates = get_u32(v + OFF_UPDATES);
    memcpy(&row->bias, v + OFF_BIAS, 4);
    memcpy(&row->bias_acc, v + OFF_BIAS_ACC, 4);
    row->clicks = get_u64(v + OFF_CLICKS);
    row->purchases = get_u64(v + OFF_PURCHASES);
    row->pop_key = -INFINITY;
    row->w = malloc((size_t)4 * k);
    row->acc = malloc((size_t)4 * k);
    if (kind == KIND_USER)
        row->hist = malloc((size_t)4 * h);
    if (!row->w || !row->acc || (kind == KIND_USER && !row->hist)) {
        advrec_store_row_free(row);
        err = advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                            "state.dir %s: out of memory", store->dir);
        goto out;
    }
    memcpy(row->w, v + OFF_W, (size_t)4 * k);
    memcpy(row->acc, v + OFF_W + (size_t)4 * k, (size_t)4 * k);
    if (kind == KIND_ITEM) {
        memcpy(&row->pop_key, v + OFF_W + (size_t)8 * k, 8);
    } else {
        uint16_t hl, hh;
        row->history = h;
        advrec_store__decode_user_tail(v + OFF_W + (size_t)8 * k, h, row->hist,
                                       &hl, &hh, &row->last, &row->last_ts_ms);
        row->hist_len = hl;
        row->hist_head = hh;
    }
out:
    rocksdb_free(val);
    return err;
}

advrec_err_t advrec_store_load_user(advrec_store_t *store,
                                    advrec_state_t *state, const char *id,
                                    uint32_t *idx, char *errstr,
                                    size_t errstr_size)
{
    advrec_user_ext_t *ux = advrec_state_user_ext(state);
    uint32_t k = store->params.k, h = store->params.history;
    const advrec_state_params_t *sp = advrec_state_params(state);
    const unsigned char *v;
    char *val;
    size_t len;
    advrec_err_t err;

    if (sp->k != k || sp->history != h)
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s: load of a user needs a state "
                             "with k=%u history=%u",
                             store->dir, k, h);
    if ((err = advrec_store__get(store, CF_USERS, id, strlen(id), &val, &len,
                                 errstr, errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no user \"%s\"", store->dir, id);
    v = (const unsigned char *)val;
    if ((err = advrec_store__check_value(store, KIND_USER, id, strlen(id), v,
                                         len, errstr, errstr_size)) ||
        (err = advrec_state_user(state, id, 1, idx, NULL, errstr, errstr_size)))
        goto out;
    advrec_store__decode_common(v, advrec_state_users(state), *idx);
    advrec_store__decode_user_tail(v + OFF_W + (size_t)8 * k, h,
                                   ux->hist + (size_t)*idx * h,
                                   ux->hist_len + *idx, ux->hist_head + *idx,
                                   ux->last + *idx, ux->last_ts_ms + *idx);
    if (ux->hist_len[*idx] > h || ux->hist_head[*idx] >= h) {
        err = advrec_seterr(ADVREC_ERR_STORE, errstr, errstr_size,
                            "state.dir %s: users/\"%s\": history ring len "
                            "%u head %u for %u entries",
                            store->dir, id, ux->hist_len[*idx],
                            ux->hist_head[*idx], h);
        goto out;
    }
    if ((err = advrec_store__decode_user_sets(store, state, *idx, id, v)))
        advrec_seterr(err, errstr, errstr_size,
                      "state.dir %s: users/\"%s\": %s", store->dir, id,
                      err == ADVREC_ERR_NOMEM
                          ? "out of memory restoring its item sets"
                          : "malformed purchase or seen set");
out:
    rocksdb_free(val);
    return err;
}

advrec_err_t advrec_store_get_user(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size)
{
    return get_row(store, CF_USERS, id, row, errstr, errstr_size);
}

advrec_err_t advrec_store_get_item(advrec_store_t *store, const char *id,
                                   advrec_store_row_t *row, char *errstr,
                                   size_t errstr_size)
{
    return get_row(store, CF_ITEMS, id, row, errstr, errstr_size);
}

advrec_err_t advrec_store_id_name(advrec_store_t *store, int items,
                                  uint32_t idx, char *buf, size_t buf_size,
                                  char *errstr, size_t errstr_size)
{
    unsigned char key[5];
    char *val;
    size_t len;
    advrec_err_t err;

    id_key(key, items, idx);
    if ((err = advrec_store__get(store, CF_IDS, (const char *)key, 5, &val,
                                 &len, errstr, errstr_size)))
        return err;
    if (!val)
        return advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                             "state.dir %s: no %s with index %u", store->dir,
                             items ? "item" : "user", idx);
    snprintf(buf, buf_size, "%.*s", (int)len, val);
    rocksdb_free(val);
    return ADVREC_OK;
}

static int count_offset(void *opaque, const advrec_store_offset_t *offset)
{
    (*(size_t *)opaque)++;
    return 0;
}

static int count_kv(void *opaque, const void *key, size_t key_len,
                    const void *value, size_t value_len)
{
    (*(size_t *)opaque)++;
    return 0;
}

advrec_err_t advrec_store_summary(advrec_store_t *store,
                                  advrec_store_summary_t *s, char *errstr,
                                  size_t errstr_size)
{
    uint64_t nu, ni;
    advrec_err_t err;

    memset(s, 0, sizeof(*s));
    if ((err =
             get_u32_meta(store, META_N_USERS, &nu, 4, errstr, errstr_size)) ||
        (err =
             get_u32_meta(store, META_N_ITEMS, &ni, 4, errstr, errstr_size)) ||
        (err = get_u32_meta(store, META_VERSION, &s->model_version, 8, errstr,
                            errstr_size)) ||
        (err = advrec_store_offsets_foreach(store, count_offset, &s->offsets,
                                            errstr, errstr_size)) ||
        (err = advrec_store_detectors_foreach(store, count_kv, &s->detectors,
                                              errstr, errstr_size)))
        return err;
    s->users = (uint32_t)nu;
    s->items = (uint32_t)ni;
    for (int c = 0; c < CF_N; c++) {
        char *p;
        if (!store->cf[c])
            continue;
        p = rocksdb_property_value_cf(store->db, store->cf[c],
                                      "rocksdb.total-sst-files-size");
        if (p)
            s->disk_bytes += strtoull(p, NULL, 10);
        rocksdb_free(p);
    }
    return ADVREC_OK;
}
