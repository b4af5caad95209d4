/* ops_infer.c - forward-only kernels for feature extraction (infer.h): a
 * register-blocked matrix product over pre-packed weights (training's
 * products against weights use it too, ops.c), and training's LayerNorm
 * and attention without the statistics and probabilities they keep. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gelu.h"
#include "infer.h"
#include "jepa.h"
#include "prof.h"
#include "vec.h" /* and immintrin.h on x86 */

/* Every tile's epilogue: out = acc + (res + b), or acc + b, ops.c's
 * rounding order (b absent: 0). */

#define INFER_MR 12 /* rows per micro-tile: 12 x 32 accumulators = 24 zmm */
#define INFER_MC 96 /* rows per thread task: its A rows (<= 96 x 512 floats) stay in L2 */

size_t infer_pack_floats(int K, int N) {
    return (size_t)((N + INFER_NR - 1) / INFER_NR) * K * INFER_NR;
}

void infer_pack(float *wp, const float *w, int K, int N) {
    int np = (N + INFER_NR - 1) / INFER_NR;
    for (int p = 0; p < np; p++)
        for (int k = 0; k < K; k++) {
            float *dst = wp + ((size_t)p * K + k) * INFER_NR;
            for (int j = 0; j < INFER_NR; j++) {
                int n = p * INFER_NR + j;
                dst[j] = n < N ? w[(size_t)n * K + k] : 0.0f;
            }
        }
}

void infer_pack_rows(float *wp, const float *w, int K, int N) {
    int np = (N + INFER_NR - 1) / INFER_NR;
    for (int p = 0; p < np; p++)
        for (int k = 0; k < K; k++) {
            float *dst = wp + ((size_t)p * K + k) * INFER_NR;
            const float *src = w + (size_t)k * N + (size_t)p * INFER_NR;
            int nc = N - p * INFER_NR < INFER_NR ? N - p * INFER_NR : INFER_NR;
            memcpy(dst, src, sizeof(float) * nc);
            for (int j = nc; j < INFER_NR; j++) dst[j] = 0.0f;
        }
}

#if defined(__AVX512F__)
/* GELU's tanh form (gelu.h) as 0.5 x (1 + tanh u) = x / (1 + e^(-2u)),
 * u = sqrt(2/pi) (x + 0.044715 x^3), for the bfloat16 products' epilogue:
 * fast_exp512 (fastmath.h), and the reciprocal by VRCP14PS and one Newton
 * step: ~22 operations without a division where gelu.h's v_gelu, written
 * to round as training's scalar code, takes ~40 and one. Relative error
 * below 1e-6 plus what z's own float rounding gives e^z (as in v_gelu;
 * tested against double), and its output rounds to bfloat16 next (fc2's
 * input). */
static inline __attribute__((always_inline)) __m512 gelu_fast(__m512 x) {
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 z = _mm512_mul_ps(x, _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.0f * GELU_K * GELU_A),
                                                _mm512_set1_ps(-2.0f * GELU_K)));
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), fast_exp512(z));
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
    /* past fast_exp512's clamp (x below ~ -10.03) the GELU is below 1e-37:
     * 0, as gelu.h's, where x e^-88 would grow with x (NaN compares false) */
    __mmask16 zero = _mm512_cmp_ps_mask(z, _mm512_set1_ps(88.0f), _CMP_GE_OQ);
    return _mm512_maskz_mul_ps((__mmask16)~zero, x, r);
}

#define GELU_FAST 2 /* tile_store's gelu: gelu_fast, not gelu.h's (1) */

/* y0, y1 (16 columns each) to bfloat16 at dst's first nw words: its own
 * function with AVX512_BF16's target, which tile_store (built for the
 * build's flags, AVX-512 without BF16 on a Skylake-X) may not inline;
 * tile_bf16 has the target, so there it is inlined all the same */
static INFER_BF16_FN void store_pairs(uint16_t *dst, int nw, __m512 y0, __m512 y1) {
    __mmask32 mw = nw >= 32 ? 0xffffffffu : (__mmask32)((1u << nw) - 1);
    _mm512_mask_storeu_epi16(dst, mw, (__m512i)_mm512_cvtne2ps_pbh(y1, y0));
}

/* A tile's epilogue: out = acc + (res + b), pre the same before the GELU;
 * outb not NULL: out's values to bfloat16 (VCVTNE2PS2BF16, as
 * infer_rows_bf16) there instead, rows of ceil(N / 2) pairs, an odd N's
 * pad word zero (the lanes past ncols zeroed: an inf input makes them
 * NaN, and infer_rows_bf16 pads with zero) */
static inline __attribute__((always_inline)) void
tile_store(float *out, uint32_t *outb, float *pre, __m512 acc[][2], const float *b,
           const float *res, int mr, int N, int n0, int ncols, int gelu) {
    __mmask16 m0 = lanes16(ncols), m1 = lanes16(ncols - 16);
    __m512 b0 = b ? _mm512_maskz_loadu_ps(m0, b + n0) : _mm512_setzero_ps();
    __m512 b1 = b ? _mm512_maskz_loadu_ps(m1, b + n0 + 16) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++) {
        size_t row = (size_t)r * N + n0;
        __m512 t0 = b0, t1 = b1;
        if (res) {
            t0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, res + row), b0);
            t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, res + row + 16), b1);
        }
        __m512 y0 = _mm512_add_ps(acc[r][0], t0), y1 = _mm512_add_ps(acc[r][1], t1);
        if (pre) {
            _mm512_mask_storeu_ps(pre + row, m0, y0);
            _mm512_mask_storeu_ps(pre + row + 16, m1, y1);
        }
        if (gelu == GELU_FAST) {
            y0 = gelu_fast(y0);
            y1 = gelu_fast(y1);
        } else if (gelu) { /* gelu.h's, as gelu_forward */
            y0 = (__m512)v_gelu((vfl)y0);
            y1 = (__m512)v_gelu((vfl)y1);
        }
        if (outb) {
            store_pairs((uint16_t *)outb + (size_t)r * (N + (N & 1)) + n0, ncols + (ncols & 1),
                        _mm512_maskz_mov_ps(m0, y0), _mm512_maskz_mov_ps(m1, y1));
            continue;
        }
        _mm512_mask_storeu_ps(out + row, m0, y0);
        _mm512_mask_storeu_ps(out + row + 16, m1, y1);
    }
}

/* One (mr <= 12, 32) tile: rows A (mr, K) against panel bp (K, 32); ncols
 * (<= 32) columns written. mr is a constant where this is inlined, so the
 * row loops unroll into 2 * mr independent accumulators. */
static inline __attribute__((always_inline)) void
tile(float *out, float *pre, const float *A, const float *bp, const float *b, const float *res,
     int mr, int K, int N, int n0, int ncols, int gelu) {
    __m512 acc[INFER_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 w0 = _mm512_loadu_ps(bp + (size_t)k * INFER_NR);
        __m512 w1 = _mm512_loadu_ps(bp + (size_t)k * INFER_NR + 16);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * K + k]);
            acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    tile_store(out, NULL, pre, acc, b, res, mr, N, n0, ncols, gelu);
}

static void rows_block(float *out, float *pre, const float *A, const float *wp, const float *b,
                       const float *res, int m, int K, int N, int gelu) {
    int np = (N + INFER_NR - 1) / INFER_NR;
    for (int p = 0; p < np; p++) {
        const float *bp = wp + (size_t)p * K * INFER_NR;
        int n0 = p * INFER_NR, nc = N - n0 < INFER_NR ? N - n0 : INFER_NR;
        int r = 0;
#define T32(mr)                                                                               \
    tile(out + (size_t)r * N, pre ? pre + (size_t)r * N : NULL, A + (size_t)r * K, bp, b,     \
         res ? res + (size_t)r * N : NULL, mr, K, N, n0, nc, gelu)
        for (; r + INFER_MR <= m; r += INFER_MR) T32(INFER_MR);
        INFER_REMAINDER(m - r, T32);
#undef T32
    }
}

void infer_linear_pre(float *out, float *pre, const float *inp, const float *wp, const float *b,
                      const float *res, int M, int K, int N, int gelu) {
    int nblk = (M + INFER_MC - 1) / INFER_MC;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < nblk; t++) {
        int r0 = t * INFER_MC, m = M - r0 < INFER_MC ? M - r0 : INFER_MC;
        rows_block(out + (size_t)r0 * N, pre ? pre + (size_t)r0 * N : NULL, inp + (size_t)r0 * K,
                   wp, b, res ? res + (size_t)r0 * N : NULL, m, K, N, gelu);
    }
}

/* ------------------------------------------------- bfloat16 (AVX512_BF16) */
/* One (mr <= 12, 32) tile: rows A (mr, K2 pairs of bfloat16, one uint32
 * each) against panel bp (K2, 32 pairs); VDPBF16PS adds a pair's two
 * products to each lane, so each k pair costs one instruction per 16
 * columns where fp32 takes two. */
static inline __attribute__((always_inline)) INFER_BF16_FN void
tile_bf16(float *out, uint32_t *outb, const uint32_t *A, const uint16_t *bp, const float *b,
          const float *res, int mr, int K2, int N, int n0, int ncols, int gelu) {
    __m512 acc[INFER_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int i = 0; i < K2; i++) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(bp + (size_t)i * 2 * INFER_NR);
        __m512bh w1 = (__m512bh)_mm512_loadu_si512(bp + (size_t)i * 2 * INFER_NR + INFER_NR);
        for (int r = 0; r < mr; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[(size_t)r * K2 + i]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, w1);
        }
    }
    tile_store(out, outb, NULL, acc, b, res, mr, N, n0, ncols, gelu ? GELU_FAST : 0);
}

INFER_BF16_FN void infer_rows_bf16(uint32_t *dst, int ldd, const float *src, int lds, int m, int n) {
    const int n2 = (n + 1) / 2;
    for (int r = 0; r < m; r++) {
        const float *x = src + (size_t)r * lds;
        uint16_t *y = (uint16_t *)(dst + (size_t)r * ldd);
        for (int k = 0; k < 2 * n2; k += 32) {
            int a = n - k;
            store_pairs(y + k, 2 * n2 - k, _mm512_maskz_loadu_ps(lanes16(a), x + k),
                        _mm512_maskz_loadu_ps(lanes16(a - 16), x + k + 16));
        }
    }
}

/* rows [0, m) of the product: out's (or outb's) rows from A's */
static INFER_BF16_FN void rows_block_bf16(float *out, uint32_t *outb, const uint32_t *A,
                                          const uint16_t *wp, const float *b, const float *res,
                                          int m, int K2, int N, int gelu) {
    const int np = (N + INFER_NR - 1) / INFER_NR, N2 = (N + 1) / 2;
    for (int p = 0; p < np; p++) {
        const uint16_t *bp = wp + (size_t)p * K2 * 2 * INFER_NR;
        int n0 = p * INFER_NR, nc = N - n0 < INFER_NR ? N - n0 : INFER_NR;
        int r = 0;
#define T16(mr)                                                                                \
    tile_bf16(out ? out + (size_t)r * N : NULL, outb ? outb + (size_t)r * N2 : NULL,           \
              A + (size_t)r * K2, bp, b, res ? res + (size_t)r * N : NULL, mr, K2, N, n0, nc, gelu)
        for (; r + INFER_MR <= m; r += INFER_MR) T16(INFER_MR);
        INFER_REMAINDER(m - r, T16);
#undef T16
    }
}

void infer_linear_bf16(float *out, const float *inp, const uint16_t *wp, const float *b,
                       const float *res, int M, int K, int N, int gelu) {
    JEPA_ASSERT(infer_bf16_supported(NULL));
    const int K2 = (K + 1) / 2, nblk = (M + INFER_MC - 1) / INFER_MC;
    double t0 = prof_now();
    #pragma omp parallel
    {
        /* this thread's rows in bfloat16, converted once for every panel */
        uint32_t *ab = JEPA_MALLOC(sizeof(uint32_t) * INFER_MC * K2);
        #pragma omp for schedule(static)
        for (int t = 0; t < nblk; t++) {
            int r0 = t * INFER_MC, m = M - r0 < INFER_MC ? M - r0 : INFER_MC;
            infer_rows_bf16(ab, K2, inp + (size_t)r0 * K, K, m, K);
            rows_block_bf16(out + (size_t)r0 * N, NULL, ab, wp, b,
                            res ? res + (size_t)r0 * N : NULL, m, K2, N, gelu);
        }
        jepa_free(ab);
    }
    prof_kernel_add(PROF_K_SGEMM, t0); /* bench-step's figures (ijepa.target_precision) */
    prof_flops_add(PROF_K_SGEMM, 2 * (uint64_t)M * N * K);
}

void infer_linear_bf16_pairs(float *out, uint32_t *outb, const uint32_t *inp, const uint16_t *wp,
                             const float *b, const float *res, int M, int K, int N, int gelu) {
    JEPA_ASSERT(infer_bf16_supported(NULL) && (out != NULL) != (outb != NULL));
    const int K2 = (K + 1) / 2, N2 = (N + 1) / 2, nblk = (M + INFER_MC - 1) / INFER_MC;
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < nblk; t++) {
        int r0 = t * INFER_MC, m = M - r0 < INFER_MC ? M - r0 : INFER_MC;
        rows_block_bf16(out ? out + (size_t)r0 * N : NULL, outb ? outb + (size_t)r0 * N2 : NULL,
                        inp + (size_t)r0 * K2, wp, b, res ? res + (size_t)r0 * N : NULL, m, K2, N,
                        gelu);
    }
    prof_kernel_add(PROF_K_SGEMM, t0);
    prof_flops_add(PROF_K_SGEMM, 2 * (uint64_t)M * N * K);
}

/* infer_layernorm's arithmetic, row by row, each row's output rounded to
 * bfloat16 pairs as infer_rows_bf16 does: the same bits as the two */
INFER_BF16_FN void infer_layernorm_bf16(uint32_t *out, const float *inp, const float *w,
                                        const float *b, int M, int C) {
    JEPA_ASSERT(infer_bf16_supported(NULL));
    const int C2 = (C + 1) / 2;
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C;
        uint16_t *y = (uint16_t *)(out + (size_t)i * C2);
        const float mf = row_sum(x, C) / C;
        const __m512 m = _mm512_set1_ps(mf);
        const __m512 s = _mm512_set1_ps(1.0f / sqrtf(row_sqdev(x, mf, C) / C + 1e-6f));
        for (int c = 0; c < 2 * C2; c += 32) {
            __m512 v[2];
            for (int h = 0; h < 2; h++) {
                __mmask16 k = lanes16(C - c - 16 * h);
                __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c + 16 * h), m);
                d = _mm512_mul_ps(_mm512_mul_ps(d, s), _mm512_maskz_loadu_ps(k, w + c + 16 * h));
                v[h] = _mm512_maskz_add_ps(k, d, _mm512_maskz_loadu_ps(k, b + c + 16 * h));
            }
            store_pairs(y + c, 2 * C2 - c, v[0], v[1]);
        }
    }
    prof_kernel_add(PROF_K_NORM, t0);
}
#else
/* No AVX-512 in this build: the same product in vec.h's vectors (AVX and
 * AVX2: 6 x 16 tiles, fused multiply-adds where FMA is there; SSE: 4 x 16).
 * Not sgemm: OpenBLAS's AVX2 kernels round a row differently by where it
 * falls in the product's tiling, and extraction must give the same bits
 * for any thread count and images per forward (tests/test_infer.c). Each
 * output is the sum over k in ascending order, then the epilogue, whatever
 * M is. With AVX2 and FMA, training's products against weights run here
 * too (INFER_PACKED, infer.h). */
/* rows per tile (their weight-row loads are shared) x INFER_PC columns:
 * with AVX2's 8 lanes 6 x 16 is 12 accumulators, 2 weight vectors and a
 * broadcast in 16 registers, enough independent FMAs to cover their
 * latency (4 rows left it latency-bound); SSE's 4 lanes keep 4 x 16 */
#if VW == 8
#define INFER_PR 6
#else
#define INFER_PR 4
#endif
#define INFER_PC 16
#define INFER_PMC 96 /* rows per thread task (24-96 measured alike on AVX2) */

/* RB (constant) rows x INFER_PC columns [c, c + cc) of out (c = n0 + c0)
 * from rows inp (RB, K) and a panel's columns w (K, stride INFER_NR); the
 * epilogue in vectors, then pre and GELU as the AVX-512 tile */
static inline __attribute__((always_inline)) void
rows_tile(float *out, float *pre, const float *inp, const float *w, const float *b,
          const float *res, int K, int N, int c, int cc, int gelu, const int RB) {
    enum { NV = INFER_PC / VW };
    /* the epilogue's lines, asked for while the k loop runs: a product's
     * output is usually cold (written for the first time), and with K 64 -
     * 128 the stores' misses took a third of the tile's time */
    for (int r = 0; r < RB; r++) {
        __builtin_prefetch(out + (size_t)r * N + c, 1, 3);
        if (pre) __builtin_prefetch(pre + (size_t)r * N + c, 1, 3);
        if (res) __builtin_prefetch(res + (size_t)r * N + c, 0, 3);
    }
    vfl acc[INFER_PR][NV];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (vfl){0};
    for (int k = 0; k < K; k++) {
        vfl wk[NV];
        for (int v = 0; v < NV; v++) wk[v] = v_load(w + (size_t)k * INFER_NR + v * VW);
        for (int r = 0; r < RB; r++) {
            vfl a = v_bcast(inp[(size_t)r * K + k]);
            for (int v = 0; v < NV; v++) acc[r][v] = v_fma(a, wk[v], acc[r][v]);
        }
    }
    for (int v = 0; v < NV && v * VW < cc; v++) {
        int n = cc - v * VW, j = c + v * VW; /* n < VW: the last columns, masked */
        vfl bv = (vfl){0};
        if (b) bv = n >= VW ? v_load(b + j) : v_load_n(b + j, n);
        for (int r = 0; r < RB; r++) {
            size_t at = (size_t)r * N + j;
            vfl t = bv; /* res may be out: read before written */
            if (res) t = (n >= VW ? v_load(res + at) : v_load_n(res + at, n)) + bv;
            vfl y = acc[r][v] + t;
            acc[r][v] = y; /* the GELU's input, below */
            if (n >= VW) {
                if (pre) v_store(pre + at, y);
                if (!gelu) v_store(out + at, y);
            } else {
                if (pre) v_store_n(pre + at, y, n);
                if (!gelu) v_store_n(out + at, y, n);
            }
        }
    }
    if (!gelu) return;
    v_gelu_n(&acc[0][0], RB * NV); /* every tile's GELU at once (gelu.h) */
    for (int v = 0; v < NV && v * VW < cc; v++) {
        int n = cc - v * VW, j = c + v * VW;
        for (int r = 0; r < RB; r++) {
            if (n >= VW) v_store(out + (size_t)r * N + j, acc[r][v]);
            else v_store_n(out + (size_t)r * N + j, acc[r][v], n);
        }
    }
}

#define ROWS_TILE(rb)                                                                          \
    rows_tile(out + (size_t)r * N, pre ? pre + (size_t)r * N : NULL, inp + (size_t)r * K, w, b, \
              res ? res + (size_t)r * N : NULL, K, N, c, cc, gelu, rb)

/* rows [0, m) x columns [c, c + cc) against panel columns w */
static void rows_strip(float *out, float *pre, const float *inp, const float *w, const float *b,
                       const float *res, int m, int K, int N, int c, int cc, int gelu) {
    int r = 0;
    for (; r + INFER_PR <= m; r += INFER_PR) ROWS_TILE(INFER_PR);
    switch (m - r) { /* constant row counts, so each tile unrolls */
#if INFER_PR > 4
    case 5: ROWS_TILE(5); break;
    case 4: ROWS_TILE(4); break;
#endif
    case 3: ROWS_TILE(3); break;
    case 2: ROWS_TILE(2); break;
    case 1: ROWS_TILE(1); break;
    default: break;
    }
}

void infer_linear_pre(float *out, float *pre, const float *inp, const float *wp, const float *b,
                      const float *res, int M, int K, int N, int gelu) {
    int np = (N + INFER_NR - 1) / INFER_NR, nblk = (M + INFER_PMC - 1) / INFER_PMC;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < nblk; t++) {
        int r0 = t * INFER_PMC, m = M - r0 < INFER_PMC ? M - r0 : INFER_PMC;
        for (int p = 0; p < np; p++)
            for (int c0 = 0; c0 < INFER_NR && p * INFER_NR + c0 < N; c0 += INFER_PC) {
                int c = p * INFER_NR + c0, cc = N - c < INFER_PC ? N - c : INFER_PC;
                rows_strip(out + (size_t)r0 * N, pre ? pre + (size_t)r0 * N : NULL,
                           inp + (size_t)r0 * K, wp + (size_t)p * K * INFER_NR + c0, b,
                           res ? res + (size_t)r0 * N : NULL, m, K, N, c, cc, gelu);
            }
    }
}
/* no AVX-512 in this build: infer_bf16_supported says no, so never called */
void infer_linear_bf16(float *out, const float *inp, const uint16_t *wp, const float *b,
                       const float *res, int M, int K, int N, int gelu) {
    (void)out, (void)inp, (void)wp, (void)b, (void)res, (void)M, (void)K, (void)N, (void)gelu;
    JEPA_ASSERT(infer_bf16_supported(NULL));
}
void infer_linear_bf16_pairs(float *out, uint32_t *outb, const uint32_t *inp, const uint16_t *wp,
                             const float *b, const float *res, int M, int K, int N, int gelu) {
    (void)out, (void)outb, (void)inp, (void)wp, (void)b, (void)res, (void)M, (void)K, (void)N;
    (void)gelu;
    JEPA_ASSERT(infer_bf16_supported(NULL));
}
void infer_layernorm_bf16(uint32_t *out, const float *inp, const float *w, const float *b, int M,
                          int C) {
    (void)out, (void)inp, (void)w, (void)b, (void)M, (void)C;
    JEPA_ASSERT(infer_bf16_supported(NULL));
}
#endif


void infer_linear(float *out, const float *inp, const float *wp, const float *b,
                  const float *res, int M, int K, int N, int gelu) {
    infer_linear_pre(out, NULL, inp, wp, b, res, M, K, N, gelu);
}

/* ------------------------------------------------ bfloat16, any build */

int infer_bf16_supported(const char **why) {
    const char *no = getenv("JEPA_DEBUG_NO_BF16"), *w = NULL;
#if defined(__AVX512F__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16"))
        w = "this CPU has no AVX512_BF16 (bfloat16 products: AMD Zen 4 and later, Intel Cooper "
            "Lake, Sapphire Rapids and later)";
#else
    w = "this build has no AVX-512 (JEPA_NATIVE=ON on a CPU with AVX512_BF16 has it)";
#endif
    if (!w && no && !strcmp(no, "1")) w = "JEPA_DEBUG_NO_BF16=1 takes AVX512_BF16 as absent";
    if (why) *why = w;
    return w == NULL;
}

uint16_t infer_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

size_t infer_pack_bf16_elems(int K, int N) {
    return (size_t)((N + INFER_NR - 1) / INFER_NR) * ((K + 1) / 2) * INFER_NR * 2;
}

void infer_pack_bf16(uint16_t *wp, const float *w, int K, int N) {
    const int np = (N + INFER_NR - 1) / INFER_NR, K2 = (K + 1) / 2;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < K2; i++) {
            uint16_t *dst = wp + ((size_t)p * K2 + i) * INFER_NR * 2;
            for (int j = 0; j < INFER_NR; j++)
                for (int e = 0; e < 2; e++) {
                    int n = p * INFER_NR + j, k = 2 * i + e;
                    dst[2 * j + e] = n < N && k < K ? infer_bf16_round(w[(size_t)n * K + k]) : 0;
                }
        }
}

/* ------------------------------------------------------------- layernorm */

/* layernorm_forward's arithmetic (its sums over vec.h's lanes), without
 * the saved statistics: the same bits as training's LayerNorm */
void infer_layernorm(float *out, const float *inp, const float *w, const float *b, int M,
                     int C) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        float m = row_sum(x, C) / C;
        float s = 1.0f / sqrtf(row_sqdev(x, m, C) / C + 1e-6f);
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c] + b[c];
    }
}

/* ------------------------------------------------------------- attention */

/* Training's attention core (ops_attn.c) without the probabilities: per
 * (image, head) in registers, one thread each, so a row's output does not
 * depend on the thread count or the images per forward. */
size_t infer_attention_floats(int T, int hd) { return attention_scratch_floats(T, hd); }

void infer_attention(float *out, const float *qkv, int B, int T, int C, int H, float *scratch) {
    attention_forward(out, NULL, qkv, B, T, C, H, scratch);
}
