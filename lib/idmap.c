/*
 * idmap.c - string -> dense index map with reverse lookup.
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
    size_t mask;  /* slot count - 1 */
    char **names; /* idx -> id, into the arena */
    uint32_t count, names_cap, max_ids;
    block_t *blocks; /* newest first */
};

advrec_idmap_t *advrec_idmap_new(uint32_t max_ids)
{
    advrec_idmap_t *map = calloc(1, sizeof(*map));

    if (!map)
        return NULL;
    map->max_ids = max_ids;
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
    free(map->names);
    free(map->slots);
    free(map);
}

/* Copies id into the arena; NULL if out of memory. */
static char *arena_copy(advrec_idmap_t *map, const char *id, size_t len)
{
    block_t *b = map->blocks;
    char *dst;

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

advrec_err_t advrec_idmap_get(advrec_idmap_t *map, const char *id, size_t len,
                              int create, uint32_t *idx, int *created)
{
    uint64_t h = advrec_hash64_bytes(id, len);
    size_t i;
    char *name;

    if (created)
        *created = 0;
    for (i = h & map->mask; map->slots[i].idx_plus1; i = (i + 1) & map->mask) {
        const char *s;
        if (map->slots[i].hash != h)
            continue;
        s = map->names[map->slots[i].idx_plus1 - 1];
        if (strncmp(s, id, len) == 0 && s[len] == '\0') {
            *idx = map->slots[i].idx_plus1 - 1;
            return ADVREC_OK;
        }
    }
    if (!create)
        return ADVREC_ERR_NOT_FOUND;
    if (map->count >= map->max_ids)
        return ADVREC_ERR_FULL;
    if (map->count == map->names_cap) {
        uint32_t cap = map->names_cap ? map->names_cap * 2 : 1024;
        char **names = realloc(map->names, cap * sizeof(*names));
        if (!names)
            return ADVREC_ERR_NOMEM;
        map->names = names;
        map->names_cap = cap;
    }
    name = arena_copy(map, id, len);
    if (!name)
        return ADVREC_ERR_NOMEM;
    map->names[map->count] = name;
    map->slots[i].hash = h;
    map->slots[i].idx_plus1 = map->count + 1;
    *idx = map->count++;
    if (created)
        *created = 1;
    /* Keep the load at most 1/2 so probes stay short. A failed grow leaves a
     * fuller but still correct table; the next insert tries again. */
    if ((size_t)map->count * 2 > map->mask + 1)
        (void)grow_slots(map);
    return ADVREC_OK;
}

const char *advrec_idmap_name(const advrec_idmap_t *map, uint32_t idx)
{
    return idx < map->count ? map->names[idx] : NULL;
}

uint32_t advrec_idmap_count(const advrec_idmap_t *map)
{
    return map->count;
}
