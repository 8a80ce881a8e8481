/*
 * idmap.h - interns external ids (strings) as dense indices 0, 1, 2, ...
 *
 * Users and items arrive as strings; every table in advrec is an array
 * indexed by a dense index. The map owns a copy of every id (in an arena that
 * only grows), so the reverse lookup returns a pointer that stays valid until
 * the map is destroyed. Indices are handed out in first-seen order, which is
 * what makes a replay of one partition reproduce the same indices.
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

/* The id of index idx (NUL-terminated), owned by the map; NULL if idx is not
 * handed out. */
const char *advrec_idmap_name(const advrec_idmap_t *map, uint32_t idx);

/* How many ids are interned. */
uint32_t advrec_idmap_count(const advrec_idmap_t *map);

#endif
