/* fastmath.h - the float exp shared by the training kernels (ops.c) and the
 * forward-only ones (ops_infer.c): one definition, so both paths round alike;
 * and, for eval.precision: bf16's kernels only, a faster AVX-512 one. */
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

#if defined(__AVX512F__)
#include <immintrin.h>
/* e^z on 16 lanes for eval.precision: bf16's epilogues (the GELU and the
 * softmax, whose outputs round to bfloat16 next, 2^-9 relative): z clamped
 * to [-87, 88] as fast_expf's x, e^z = 2^n e^r with n = round(z log2 e)
 * and r = z - n ln2 in two fused steps (ln 2 split in a float and its
 * remainder, so r keeps its bits for any n), |r| <= ln2 / 2, e^r by the
 * Taylor polynomial of degree 6 (remainder < (ln2 / 2)^7 / 7! < 2e-7
 * relative), VSCALEFPS for 2^n: 13 operations where fast_expf, written so
 * that scalar and vector code round alike, takes ~25. Not fast_expf's
 * bits: training never calls it. NaN stays NaN. */
static inline __attribute__((always_inline)) __m512 fast_exp512(__m512 z) {
    z = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), z));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147182464599609375f), z);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654323148236e-09f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720); /* 1 / k!, k = 6 .. 0 */
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif

#endif
