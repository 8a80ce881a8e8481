/*
 * rng.c - splitmix64 streams keyed by (seed, record) or (seed, id).
 *
 * Owns nothing: a stream is a value. See rng.h for why there is no global
 * stream.
 */
#include "rng.h"

#include <math.h>

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL
#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

uint64_t advrec_hash64_bytes(const void *p, uint64_t len)
{
    const unsigned char *b = p;
    uint64_t h = FNV64_OFFSET;

    for (uint64_t n = 0; n < len; n++) {
        h ^= b[n];
        h *= FNV64_PRIME;
    }
    return h;
}

uint64_t advrec_hash64(const char *s)
{
    uint64_t h = FNV64_OFFSET;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV64_PRIME;
    }
    return h;
}

uint64_t advrec_mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/*
 * Each field goes through the mixer before the next is folded in, so that
 * (partition 1, offset 0) and (partition 0, offset 1) land far apart: a plain
 * XOR of the fields would make them collide.
 */
advrec_rng_t advrec_rng_for_record(uint64_t seed, const char *topic,
                                   int32_t partition, int64_t offset)
{
    advrec_rng_t rng;
    uint64_t h = advrec_mix64(seed ^ 0x7265636f7264ULL); /* "record" */

    h = advrec_mix64(h ^ advrec_hash64(topic));
    h = advrec_mix64(h ^ (uint64_t)(uint32_t)partition);
    h = advrec_mix64(h ^ (uint64_t)offset);
    rng.state = h;
    return rng;
}

advrec_rng_t advrec_rng_for_id(uint64_t seed, const char *id)
{
    advrec_rng_t rng;
    uint64_t h = advrec_mix64(seed ^ 0x6964ULL); /* "id" */

    rng.state = advrec_mix64(h ^ advrec_hash64(id));
    return rng;
}

uint64_t advrec_rng_next(advrec_rng_t *rng)
{
    rng->state += GOLDEN_GAMMA;
    return advrec_mix64(rng->state);
}

/*
 * Lemire, "Fast random integer generation in an interval" (2019): the high
 * word of x * n is uniform once the low words that fall in the biased
 * remainder (2^32 mod n of them) are rejected.
 */
uint32_t advrec_rng_below(advrec_rng_t *rng, uint32_t n)
{
    uint64_t m;
    uint32_t low, threshold;

    if (n == 0)
        return 0;
    m = (advrec_rng_next(rng) >> 32) * (uint64_t)n;
    low = (uint32_t)m;
    if (low < n) {
        threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (advrec_rng_next(rng) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float advrec_rng_float(advrec_rng_t *rng)
{
    return (float)(advrec_rng_next(rng) >> 40) * 0x1.0p-24f;
}

double advrec_rng_double(advrec_rng_t *rng)
{
    return (double)(advrec_rng_next(rng) >> 11) * 0x1.0p-53;
}

double advrec_rng_gauss(advrec_rng_t *rng)
{
    /* 1 - u is in (0, 1], so log() never sees 0. */
    double u1 = 1.0 - advrec_rng_double(rng);
    double u2 = advrec_rng_double(rng);

    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
