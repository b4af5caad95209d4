/* fastmath.h - the float exp shared by the training kernels (ops.c) and the
 * forward-only ones (ops_infer.c): one definition, so both paths round alike. */
#ifndef JEPA_FASTMATH_H
#define JEPA_FASTMATH_H
#include <stdint.h>

/* exp for float, vectorisable (no libm call in the loop): e^x = 2^n e^r with
 * |r| <= ln2/2 and a degree-6 Taylor polynomial, ~1 ulp over the clamp range.
 * libm's expf blocks vectorisation without -ffast-math, which we avoid. */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest by the 1.5*2^23 trick: floorf blocks vectorisation
     * under the default -ftrapping-math */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
                                   r * (0.008333334f + r * 0.0013888889f)))));
    union { int32_t i; float f; } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}

#endif
