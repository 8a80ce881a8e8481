/*
 * idmap.h - interns external ids (strings) as dense indices 0, 1, 2, ...
 *
 * Users and items arrive as strings; every table in advrec is an array
 * indexed by a dense index. The map owns a copy of every id (in an arena that
 * only grows), so the reverse lookup returns a pointer that stays valid until
 * the map is destroyed. Indices are handed out in first-seen order, which is
 * what makes a replay of one partition reproduce the same indices.
 *
 * A removable map (the user cache of a memory budget, state.h) copies each
 * id on its own instead, so that advrec_idmap_remove() frees it, and takes
 * ids back at an index the caller chooses (advrec_idmap_insert: a slot an
 * evicted user left). Its names stay valid until removed.
 *
 * Open addressing with linear probing over a power-of-two table, kept at most
 * half full; the hash is stored so probes compare strings only on a hash hit.
 */
#ifndef ADVREC_IDMAP_H
#define ADVREC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct advrec_idmap_s advrec_idmap_t;

/* An empty map that will hand out at most max_ids indices. NULL if out of
 * memory. The caller owns it (advrec_idmap_destroy). */
advrec_idmap_t *advrec_idmap_new(uint32_t max_ids);

/* As advrec_idmap_new(); with removable set, names are copied one by one
 * and advrec_idmap_remove() works (it refuses on a map made without). */
advrec_idmap_t *advrec_idmap_new_removable(uint32_t max_ids, int removable);

void advrec_idmap_destroy(advrec_idmap_t *map);

/*
 * Looks id (len bytes, need not be NUL-terminated) up; when absent and
 * create is set, adds it with the next index and sets *created. Returns
 * ADVREC_OK and the index in *idx; ADVREC_ERR_NOT_FOUND when absent and not
 * created; ADVREC_ERR_FULL when max_ids is reached; ADVREC_ERR_NOMEM. On any
 * error the map is unchanged.
 */
advrec_err_t advrec_idmap_get(advrec_idmap_t *map, const char *id, size_t len,
                              int create, uint32_t *idx, int *created);

/*
 * Adds id (absent) at index idx (free: never handed out, or removed).
 * ADVREC_ERR_FULL when idx >= max_ids, ADVREC_ERR_INVALID_ARG when id is
 * present or idx is in use, ADVREC_ERR_NOMEM; on error the map is
 * unchanged. advrec_idmap_get(create) hands out indices after the highest
 * ever used, never a freed one.
 */
advrec_err_t advrec_idmap_insert(advrec_idmap_t *map, const char *id,
                                 size_t len, uint32_t idx);

/* Removes the id of index idx and frees its copy (a removable map only):
 * ADVREC_ERR_INVALID_ARG when idx is not in use or the map is not
 * removable. Other entries keep their indices. */
advrec_err_t advrec_idmap_remove(advrec_idmap_t *map, uint32_t idx);

/* The id of index idx (NUL-terminated), owned by the map; NULL if idx is not
 * in use. */
const char *advrec_idmap_name(const advrec_idmap_t *map, uint32_t idx);

/* How many ids are interned. */
uint32_t advrec_idmap_count(const advrec_idmap_t *map);

#endif
