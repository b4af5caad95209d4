/* rng.c - counter-based random numbers. Streams are derived from (seed, a, b)
 * by hashing, so any consumer (init, masks of step s on rank r, shuffles of
 * epoch e) gets its own reproducible stream without shared state. */
#include <math.h>

#include "jepa.h"

#define RNG_WEYL 0x9e3779b97f4a7c15ULL

uint64_t rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b) {
    return rng_mix(rng_mix(rng_mix(seed + RNG_WEYL) ^ (a + 2 * RNG_WEYL)) ^ (b + 3 * RNG_WEYL));
}

void rng_init(jepa_rng *r, uint64_t key) { r->state = rng_mix(key); }

uint64_t rng_u64(jepa_rng *r) {
    r->state += RNG_WEYL;
    return rng_mix(r->state);
}

uint32_t rng_below(jepa_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased for every n */
    uint64_t m = (uint64_t)(uint32_t)(rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)(uint32_t)(rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double rng_uniform(jepa_rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

double rng_normal(jepa_rng *r) {
    /* Box-Muller, one value per call: simple and stateless beyond r */
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double rng_trunc_normal(jepa_rng *r, double std) {
    for (;;) {
        double z = rng_normal(r);
        if (z >= -2.0 && z <= 2.0) return z * std;
    }
}

void rng_shuffle_u32(jepa_rng *r, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        uint32_t j = rng_below(r, (uint32_t)i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
