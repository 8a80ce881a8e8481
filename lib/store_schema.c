/*
 * store_schema.c - the Schema Registry cache in the state's meta family
 * (store.h): meta "registry/id/" + big-endian id holds a fetched schema's
 * text; meta "registry/subject/" + subject holds the id our schema got
 * there (u32, host order as every value) followed by that schema's text.
 */
#include <stdlib.h>

#include "store_int.h"

/* One synced put into meta: the cache must survive the crash that follows
 * the records it decoded. */
static advrec_err_t put_meta(advrec_store_t *store, const char *key,
                             size_t key_len, const char *val, size_t val_len,
                             char *errstr, size_t errstr_size)
{
    rocksdb_writeoptions_t *w;
    char *rocks = NULL;

    if (store->readonly || !store->cf[CF_META])
        return advrec_seterr(ADVREC_ERR_INVALID_ARG, errstr, errstr_size,
                             "state.dir %s is open read-only", store->dir);
    if (!(w = rocksdb_writeoptions_create()))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    rocksdb_writeoptions_set_sync(w, 1);
    rocksdb_put_cf(store->db, w, store->cf[CF_META], key, key_len, val, val_len,
                   &rocks);
    rocksdb_writeoptions_destroy(w);
    if (rocks)
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  "cannot write the schema cache to",
                                  store->dir);
    return ADVREC_OK;
}

static size_t schema_key(char *key, int32_t id)
{
    size_t pl = strlen(META_SCHEMA_PF);
    uint32_t u = (uint32_t)id;

    memcpy(key, META_SCHEMA_PF, pl);
    for (int i = 0; i < 4; i++)
        key[pl + (size_t)i] = (char)(u >> (24 - 8 * i));
    return pl + 4;
}

advrec_err_t advrec_store_put_schema(advrec_store_t *store, int32_t id,
                                     const char *json, size_t len, char *errstr,
                                     size_t errstr_size)
{
    char key[32];
    size_t kl = schema_key(key, id);

    return put_meta(store, key, kl, json, len, errstr, errstr_size);
}

advrec_err_t advrec_store_schemas_foreach(advrec_store_t *store,
                                          advrec_store_schema_cb *cb,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
    rocksdb_iterator_t *it;
    size_t pl = strlen(META_SCHEMA_PF);
    char *rocks = NULL;

    if (!store->cf[CF_META])
        return ADVREC_OK;
    it =
        rocksdb_create_iterator_cf(store->db, store->ropts, store->cf[CF_META]);
    for (rocksdb_iter_seek(it, META_SCHEMA_PF, pl); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        uint32_t id = 0;

        if (kl < pl || memcmp(k, META_SCHEMA_PF, pl) != 0)
            break;
        if (kl != pl + 4)
            continue; /* not ours: nothing else writes this prefix */
        for (size_t i = pl; i < kl; i++)
            id = id << 8 | (unsigned char)k[i];
        if (cb(opaque, (int32_t)id, v, vl))
            break;
    }
    rocksdb_iter_get_error(it, &rocks);
    rocksdb_iter_destroy(it);
    if (rocks)
        return advrec_store__rerr(rocks, ADVREC_ERR_STORE, errstr, errstr_size,
                                  "cannot read the schema cache of",
                                  store->dir);
    return ADVREC_OK;
}

/* meta key of subject in store->key; its length, or 0 without memory. */
static size_t subject_key(advrec_store_t *store, const char *subject)
{
    size_t pl = strlen(META_SUBJECT_PF), sl = strlen(subject);

    if (advrec_store__grow_buf((void **)&store->key, &store->key_cap, pl + sl))
        return 0;
    memcpy(store->key, META_SUBJECT_PF, pl);
    memcpy(store->key + pl, subject, sl);
    return pl + sl;
}

advrec_err_t advrec_store_put_subject_id(advrec_store_t *store,
                                         const char *subject, const char *json,
                                         int32_t id, char *errstr,
                                         size_t errstr_size)
{
    size_t kl = subject_key(store, subject), jl = strlen(json);
    char *val;
    advrec_err_t err;

    if (!kl || !(val = malloc(4 + jl)))
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    put_u32((unsigned char *)val, (uint32_t)id);
    memcpy(val + 4, json, jl);
    err = put_meta(store, store->key, kl, val, 4 + jl, errstr, errstr_size);
    free(val);
    return err;
}

advrec_err_t advrec_store_subject_id(advrec_store_t *store, const char *subject,
                                     const char *json, int32_t *id,
                                     char *errstr, size_t errstr_size)
{
    size_t kl = subject_key(store, subject), vl, jl = strlen(json);
    char *val = NULL;
    advrec_err_t err;

    if (!kl)
        return advrec_seterr(ADVREC_ERR_NOMEM, errstr, errstr_size,
                             "out of memory");
    if ((err = advrec_store__get(store, CF_META, store->key, kl, &val, &vl,
                                 errstr, errstr_size)))
        return err;
    if (!val || vl != 4 + jl || memcmp(val + 4, json, jl) != 0)
        err = advrec_seterr(ADVREC_ERR_NOT_FOUND, errstr, errstr_size,
                            "state.dir %s has no id of this schema under "
                            "subject %s",
                            store->dir, subject);
    else
        *id = (int32_t)get_u32((const unsigned char *)val);
    rocksdb_free(val);
    return err;
}
