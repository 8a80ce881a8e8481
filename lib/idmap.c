/*
 * idmap.c - string -> dense index map with reverse lookup. Owns the slot
 * table, the index -> name array and the names: in 1 MiB arena blocks, or
 * (a removable map) one malloc'd copy each, freed when removed. Removal
 * shifts the following entries of the probe run back (no tombstones), so
 * a lookup's probe never gets longer than the table's load makes it.
 */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define ARENA_BLOCK (1u << 20) /* ids are copied into 1 MiB blocks */

typedef struct slot_s {
    uint64_t hash;
    uint32_t idx_plus1; /* 0 = empty slot */
} slot_t;

typedef struct block_s {
    struct block_s *next;
    size_t used, size;
    char data[];
} block_t;

struct advrec_idmap_s {
    slot_t *slots;
    size_t mask;    /* slot count - 1 */
    char **names;   /* idx -> id, into the arena (or malloc'd); NULL: free */
    uint32_t count; /* ids interned */
    uint32_t n_idx; /* indices [0, n_idx) handed out at some time */
    uint32_t names_cap, max_ids;
    int removable;   /* names malloc'd one by one; remove() allowed */
    block_t *blocks; /* newest first */
};

advrec_idmap_t *advrec_idmap_new(uint32_t max_ids)
{
    return advrec_idmap_new_removable(max_ids, 0);
}

advrec_idmap_t *advrec_idmap_new_removable(uint32_t max_ids, int removable)
{
    advrec_idmap_t *map = calloc(1, sizeof(*map));

    if (!map)
        return NULL;
    map->max_ids = max_ids;
    map->removable = removable;
    map->mask = 1023;
    map->slots = calloc(map->mask + 1, sizeof(*map->slots));
    if (!map->slots) {
        free(map);
        return NULL;
    }
    return map;
}

void advrec_idmap_destroy(advrec_idmap_t *map)
{
    if (!map)
        return;
    while (map->blocks) {
        block_t *next = map->blocks->next;
        free(map->blocks);
        map->blocks = next;
    }
    if (map->removable)
        for (uint32_t i = 0; i < map->n_idx; i++)
            free(map->names[i]);
    free(map->names);
    free(map->slots);
    free(map);
}

/* Copies id into the arena (a removable map: its own block); NULL if out
 * of memory. */
static char *arena_copy(advrec_idmap_t *map, const char *id, size_t len)
{
    block_t *b = map->blocks;
    char *dst;

    if (map->removable) {
        if (!(dst = malloc(len + 1)))
            return NULL;
        memcpy(dst, id, len);
        dst[len] = '\0';
        return dst;
    }
    if (!b || b->size - b->used < len + 1) {
        size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
        b = malloc(sizeof(*b) + size);
        if (!b)
            return NULL;
        b->used = 0;
        b->size = size;
        b->next = map->blocks;
        map->blocks = b;
    }
    dst = b->data + b->used;
    memcpy(dst, id, len);
    dst[len] = '\0';
    b->used += len + 1;
    return dst;
}

/* Doubles the slot table; on failure the map keeps its old table. */
static advrec_err_t grow_slots(advrec_idmap_t *map)
{
    size_t n = (map->mask + 1) * 2;
    slot_t *slots = calloc(n, sizeof(*slots));

    if (!slots)
        return ADVREC_ERR_NOMEM;
    for (size_t i = 0; i <= map->mask; i++) {
        size_t j;
        if (!map->slots[i].idx_plus1)
            continue;
        for (j = map->slots[i].hash & (n - 1); slots[j].idx_plus1;
             j = (j + 1) & (n - 1))
            ;
        slots[j] = map->slots[i];
    }
    free(map->slots);
    map->slots = slots;
    map->mask = n - 1;
    return ADVREC_OK;
}

/* Probes for id (hash h): its slot's position in *pos and ADVREC_OK, or
 * ADVREC_ERR_NOT_FOUND with *pos the empty slot ending the run. */
static inline __attribute__((always_inline)) advrec_err_t
probe(const advrec_idmap_t *map, const char *id, size_t len, uint64_t h,
      size_t *pos)
{
    size_t i;

    for (i = h & map->mask; map->slots[i].idx_plus1; i = (i + 1) & map->mask) {
        const char *s;
        if (map->slots[i].hash != h)
            continue;
        s = map->names[map->slots[i].idx_plus1 - 1];
        if (strncmp(s, id, len) == 0 && s[len] == '\0') {
            *pos = i;
            return ADVREC_OK;
        }
    }
    *pos = i;
    return ADVREC_ERR_NOT_FOUND;
}

/* Makes names[] hold index idx. */
static advrec_err_t reserve_names(advrec_idmap_t *map, uint32_t idx)
{
    uint32_t cap;
    char **names;

    if (idx < map->names_cap)
        return ADVREC_OK;
    cap = map->names_cap ? map->names_cap : 1024;
    while (cap <= idx)
        cap *= 2;
    names = realloc(map->names, cap * sizeof(*names));
    if (!names)
        return ADVREC_ERR_NOMEM;
    memset(names + map->names_cap, 0, (cap - map->names_cap) * sizeof(*names));
    map->names = names;
    map->names_cap = cap;
    return ADVREC_OK;
}

/* Adds id (hash h, absent, its run ending at empty slot pos) as idx. */
static advrec_err_t add(advrec_idmap_t *map, const char *id, size_t len,
                        uint64_t h, size_t pos, uint32_t idx)
{
    char *name;

    if (reserve_names(map, idx))
        return ADVREC_ERR_NOMEM;
    if (!(name = arena_copy(map, id, len)))
        return ADVREC_ERR_NOMEM;
    map->names[idx] = name;
    map->slots[pos].hash = h;
    map->slots[pos].idx_plus1 = idx + 1;
    map->count++;
    if (idx >= map->n_idx)
        map->n_idx = idx + 1;
    /* Keep the load at most 1/2 so probes stay short. A failed grow leaves a
     * fuller but still correct table; the next insert tries again. */
    if ((size_t)map->count * 2 > map->mask + 1)
        (void)grow_slots(map);
    return ADVREC_OK;
}

advrec_err_t advrec_idmap_get(advrec_idmap_t *map, const char *id, size_t len,
                              int create, uint32_t *idx, int *created)
{
    uint64_t h = advrec_hash64_bytes(id, len);
    size_t i;
    advrec_err_t err;

    if (created)
        *created = 0;
    if (probe(map, id, len, h, &i) == ADVREC_OK) {
        *idx = map->slots[i].idx_plus1 - 1;
        return ADVREC_OK;
    }
    if (!create)
        return ADVREC_ERR_NOT_FOUND;
    if (map->n_idx >= map->max_ids)
        return ADVREC_ERR_FULL;
    if ((err = add(map, id, len, h, i, map->n_idx)))
        return err;
    *idx = map->n_idx - 1;
    if (created)
        *created = 1;
    return ADVREC_OK;
}

advrec_err_t advrec_idmap_insert(advrec_idmap_t *map, const char *id,
                                 size_t len, uint32_t idx)
{
    uint64_t h = advrec_hash64_bytes(id, len);
    size_t i;

    if (idx >= map->max_ids)
        return ADVREC_ERR_FULL;
    if ((idx < map->n_idx && map->names[idx]) ||
        probe(map, id, len, h, &i) == ADVREC_OK)
        return ADVREC_ERR_INVALID_ARG;
    return add(map, id, len, h, i, idx);
}

advrec_err_t advrec_idmap_remove(advrec_idmap_t *map, uint32_t idx)
{
    const char *name;
    size_t i, j, home;

    if (!map->removable || idx >= map->n_idx || !map->names[idx])
        return ADVREC_ERR_INVALID_ARG;
    name = map->names[idx];
    if (probe(map, name, strlen(name), advrec_hash64_bytes(name, strlen(name)),
              &i) != ADVREC_OK)
        return ADVREC_ERR_INVALID_ARG; /* not reached: names[] and slots agree
                                        */
    /* Backward-shift deletion: an entry after the hole moves into it unless
     * its home slot lies cyclically in (hole, entry], where a probe for it
     * starts past the hole anyway. */
    for (j = i;;) {
        j = (j + 1) & map->mask;
        if (!map->slots[j].idx_plus1)
            break;
        home = map->slots[j].hash & map->mask;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        map->slots[i] = map->slots[j];
        i = j;
    }
    map->slots[i].idx_plus1 = 0;
    map->slots[i].hash = 0;
    free(map->names[idx]);
    map->names[idx] = NULL;
    map->count--;
    return ADVREC_OK;
}

const char *advrec_idmap_name(const advrec_idmap_t *map, uint32_t idx)
{
    return idx < map->n_idx ? map->names[idx] : NULL;
}

uint32_t advrec_idmap_count(const advrec_idmap_t *map)
{
    return map->count;
}
