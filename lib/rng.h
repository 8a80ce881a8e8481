/*
 * rng.h - small counter-based random streams, derived, never global.
 *
 * Every random choice advrec makes (a negative sample, an initial factor) is
 * drawn from a stream derived from the configured seed and *what the choice is
 * about*: the input record's (topic, partition, offset), or an entity's id.
 * Replaying the same records therefore makes the same choices, in any process,
 * whatever else happened before. There is no process-wide stream.
 *
 * The generator is splitmix64 (Steele, Lea, Flood, "Fast splittable
 * pseudorandom number generators", OOPSLA 2014): a 64-bit counter advanced by
 * a fixed odd constant and passed through a bijective mixer. A stream is a
 * plain value (8 bytes), copied freely, owned by whoever holds it.
 *
 * Everything here is integer arithmetic except advrec_rng_gauss(), which uses
 * libm's log/sqrt/cos in double: bit-identical on the same libm, which is what
 * a replay on one machine needs.
 */
#ifndef ADVREC_RNG_H
#define ADVREC_RNG_H

#include <stdint.h>

typedef struct advrec_rng_s {
    uint64_t state;
} advrec_rng_t;

/* 64-bit FNV-1a of the NUL-terminated string s (s must not be NULL). */
uint64_t advrec_hash64(const char *s);

/* 64-bit FNV-1a of len bytes at p (p may be NULL when len is 0). */
uint64_t advrec_hash64_bytes(const void *p, uint64_t len);

/* splitmix64's finaliser: a bijection of 64-bit words, good avalanche. */
uint64_t advrec_mix64(uint64_t x);

/* A stream for the input record at (topic, partition, offset). topic is only
 * read. Different records give independent-looking streams. */
advrec_rng_t advrec_rng_for_record(uint64_t seed, const char *topic,
                                   int32_t partition, int64_t offset);

/* A stream for the entity named id (only read), e.g. an item's initial
 * factors. Callers that keep several tables salt the seed per table. */
advrec_rng_t advrec_rng_for_id(uint64_t seed, const char *id);

/* The next 64 random bits; advances the stream. */
uint64_t advrec_rng_next(advrec_rng_t *rng);

/* Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift
 * with rejection). n must be > 0; returns 0 for n == 0. */
uint32_t advrec_rng_below(advrec_rng_t *rng, uint32_t n);

/* Uniform float in [0, 1), 24 random bits. */
float advrec_rng_float(advrec_rng_t *rng);

/* Uniform double in [0, 1), 53 random bits. */
double advrec_rng_double(advrec_rng_t *rng);

/* A standard normal N(0, 1) draw (Box-Muller, one value per two uniforms;
 * the second value is dropped so the stream stays a plain counter). */
double advrec_rng_gauss(advrec_rng_t *rng);

#endif
