/* vec.h - the vector helpers shared by the training kernels (ops.c,
 * ops_attn.c): GCC/Clang vector types of VW floats, loads and stores that
 * do not care about alignment, FMA where the target has it, and row
 * reductions over fixed lanes (the same order on every thread). */
#ifndef JEPA_VEC_H
#define JEPA_VEC_H
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* GCC/Clang vector types: VW floats per register where the build targets
 * AVX-512 (16), AVX (8) or SSE (4). */
#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
typedef float vfl __attribute__((vector_size(VW * sizeof(float))));

static inline vfl v_load(const float *p) {
    vfl v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v_store(float *p, vfl v) { memcpy(p, &v, sizeof v); }
/* x in every lane: one broadcast ((vfl){0} + x compiles to a scalar add
 * first, since 0 + x is not x for x = -0) */
static inline vfl v_bcast(float x) {
#if VW == 16
    return (vfl)_mm512_set1_ps(x);
#elif VW == 8
    return (vfl)_mm256_set1_ps(x);
#elif defined(__SSE__)
    return (vfl)_mm_set1_ps(x);
#else
    return (vfl){x, x, x, x};
#endif
}
/* a * b + c, one rounding where the target has FMA (ISO C mode does not
 * contract a * b + c on its own) */
static inline vfl v_fma(vfl a, vfl b, vfl c) {
#if VW == 16
    return (vfl)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif VW == 8 && defined(__FMA__)
    return (vfl)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

static inline vfl v_max(vfl a, vfl b) {
#if VW == 16
    return (vfl)_mm512_max_ps((__m512)a, (__m512)b);
#elif VW == 8
    return (vfl)_mm256_max_ps((__m256)a, (__m256)b);
#else
    for (int k = 0; k < VW; k++) a[k] = a[k] > b[k] ? a[k] : b[k]; /* maxps: b on NaN */
    return a;
#endif
}

static inline int round_vw(int n) { return (n + VW - 1) / VW * VW; }

/* Row reductions as VW interleaved partial sums (lane k takes x[k], x[k+VW],
 * ...), the lanes then added as a tree of halves (lane k + lane k + w for
 * w = VW/2, ..., 1: four dependent adds, not VW), the tail last:
 * vectorised (ISO C will not reorder a float sum on its own) and the same
 * on every thread. v_hsum_ref is the same order written out. */
static inline float v_hsum_ref(vfl acc) {
    float l[VW];
    memcpy(l, &acc, sizeof l);
    for (int w = VW / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) l[k] += l[k + w];
    return l[0];
}
static inline float v_hsum(vfl acc) {
#if VW == 16
    __m512 v = (__m512)acc;
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
#else
    return v_hsum_ref(acc);
#endif
}

static inline float row_sum(const float *x, int n) {
    vfl acc = {0};
    int i = 0;
    for (; i + VW <= n; i += VW) acc += v_load(x + i);
    float s = v_hsum(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum of (x - m)^2 */
static inline float row_sqdev(const float *x, float m, int n) {
    vfl acc = {0}, vm = v_bcast(m);
    int i = 0;
    for (; i + VW <= n; i += VW) {
        vfl d = v_load(x + i) - vm;
        acc = v_fma(d, d, acc);
    }
    float s = v_hsum(acc);
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

static inline vfl v_min(vfl a, vfl b) {
#if VW == 16
    return (vfl)_mm512_min_ps((__m512)a, (__m512)b);
#elif VW == 8
    return (vfl)_mm256_min_ps((__m256)a, (__m256)b);
#else
    for (int k = 0; k < VW; k++) a[k] = a[k] < b[k] ? a[k] : b[k]; /* minps: b on NaN */
    return a;
#endif
}

/* lanes [0, n) of a vector mask, all ones; the others zero (n may pass VW) */
typedef int32_t vin __attribute__((vector_size(VW * sizeof(int32_t))));
static inline vin v_lanes(int n) {
    vin idx;
    for (int k = 0; k < VW; k++) idx[k] = k;
    return idx < (vin){0} + n;
}
/* m ? a : b lane by lane, m from v_lanes */
static inline vfl v_select(vin m, vfl a, vfl b) {
    return (vfl)(((vin)a & m) | ((vin)b & ~m));
}

#if defined(__AVX512F__)
/* lanes [0, n) of a 16-lane mask, n clipped to [0, 16] */
static inline __mmask16 lanes16(int n) {
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}
#endif

/* the first n (< VW) floats at p, zeros past them; nothing past p + n is
 * read, so a row's tail is safe at the end of a buffer */
static inline vfl v_load_n(const float *p, int n) {
#if VW == 16
    return (vfl)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
    vfl v = {0};
    memcpy(&v, p, sizeof(float) * n);
    return v;
#endif
}
static inline void v_store_n(float *p, vfl v, int n) {
#if VW == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
    memcpy(p, &v, sizeof(float) * n);
#endif
}

static inline float v_hmax(vfl v) { /* a max is exact in any order */
#if VW == 16
    return _mm512_reduce_max_ps((__m512)v);
#else
    float l[VW], mx;
    memcpy(l, &v, sizeof l);
    mx = l[0];
    for (int k = 1; k < VW; k++) mx = l[k] > mx ? l[k] : mx;
    return mx;
#endif
}

/* fast_expf (fastmath.h) on VW lanes of k (<= VEXP_MAX, a constant where
 * inlined) vectors in place: the same operations in the same order (no
 * FMA), so the same bits lane by lane. Step by step across the k vectors,
 * so their dependent chains overlap (gelu.h takes a dozen at once). */
#define VEXP_MAX 16
static inline __attribute__((always_inline)) void v_expf_n(vfl *x, const int k) {
    vfl n[VEXP_MAX], r[VEXP_MAX];
    for (int i = 0; i < k; i++) {
        /* x second: maxps/minps return the second operand on NaN, so NaN
         * propagates as in fast_expf instead of clamping to exp(-87) */
        x[i] = v_min(v_bcast(88.0f), v_max(v_bcast(-87.0f), x[i]));
        n[i] = (x[i] * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    }
    for (int i = 0; i < k; i++) r[i] = x[i] - n[i] * 0.693145751953125f - n[i] * 1.428606765330187e-06f;
    for (int i = 0; i < k; i++) x[i] = 0.008333334f + r[i] * 0.0013888889f; /* the polynomial, inside out */
    for (int i = 0; i < k; i++) x[i] = 0.041666668f + r[i] * x[i];
    for (int i = 0; i < k; i++) x[i] = 0.16666667f + r[i] * x[i];
    for (int i = 0; i < k; i++) x[i] = 0.5f + r[i] * x[i];
    for (int i = 0; i < k; i++) x[i] = 1.0f + r[i] * x[i];
    for (int i = 0; i < k; i++) x[i] = 1.0f + r[i] * x[i];
    for (int i = 0; i < k; i++) x[i] = x[i] * (vfl)((__builtin_convertvector(n[i], vin) + 127) << 23);
}

static inline vfl v_expf(vfl x) {
    v_expf_n(&x, 1);
    return x;
}

#endif
