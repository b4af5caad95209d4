/* ops_dw.c - the weight gradient of a linear layer, dW (N, K) += dY^T X
 * over all M rows of the batch, both operands activations. cblas_sgemm
 * packs both for every call; here 8 x 32 register tiles read them in
 * place: row m of dY gives 8 contiguous broadcasts, row m of X two
 * vectors. The rows go in chunks of DW_MB (a chunk's X and dY rows are
 * contiguous and stay in L2 across the tiles) and each tile prefetches its
 * share of the next chunk, which a strided first touch would otherwise
 * wait for. db's column sums ride along in the first column panel's
 * tiles. Every dW and db element belongs to one tile, summed chunk by chunk
 * in row order: the result does not depend on the thread count. */
#include <omp.h>

#include "jepa.h"
#include "prof.h"
#include "vec.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define DW_MR 8   /* dW rows per tile: 8 x 2 accumulators (the models' N are multiples of 8) */
#define DW_NR 32  /* dW columns per tile: two vectors */
#define DW_MB 128 /* rows of X and dY per chunk (measured best of 64-512) */

static inline void dw_add_row(float *o, __mmask16 q0, __mmask16 q1, __m512 a0, __m512 a1) {
    _mm512_mask_storeu_ps(o, q0, _mm512_add_ps(_mm512_maskz_loadu_ps(q0, o), a0));
    _mm512_mask_storeu_ps(o + 16, q1, _mm512_add_ps(_mm512_maskz_loadu_ps(q1, o + 16), a1));
}

/* dW rows [n0, n0 + 8) x columns [k0, k0 + 32; masks q0, q1) += sum over m
 * in [m0, m1) of dY[m][n] X[m][k]; npf lines from pf prefetched along the
 * way. The accumulators are named variables: as an array (any row count)
 * GCC 12 stored them to the stack on every row, half the speed. */
#define DW_ZERO(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = _mm512_setzero_ps();
#define DW_FMA(r)                                                                          \
    {                                                                                      \
        __m512 b = _mm512_set1_ps(d[r]);                                                   \
        a##r##0 = _mm512_fmadd_ps(b, w0, a##r##0);                                         \
        a##r##1 = _mm512_fmadd_ps(b, w1, a##r##1);                                         \
    }
#define DW_ADD(r) dw_add_row(dw + (size_t)(n0 + r) * K + k0, q0, q1, a##r##0, a##r##1);

/* with_db: also db[n0, n0 + 8) += the same rows' dY sums (the tiles of
 * the first column panel; constant where inlined, so the others pay nothing) */
static inline __attribute__((always_inline)) void
dw_tile8(float *dw, float *db, const float *dy, int N, const float *x, int K, int m0, int m1,
         int n0, int k0, __mmask16 q0, __mmask16 q1, const char *pf, int npf, const int with_db) {
    DW_ZERO(0) DW_ZERO(1) DW_ZERO(2) DW_ZERO(3) DW_ZERO(4) DW_ZERO(5) DW_ZERO(6) DW_ZERO(7)
    __m256 sb = _mm256_setzero_ps();
    for (int m = m0; m < m1; m++) {
        if (m - m0 < npf) _mm_prefetch(pf + (size_t)(m - m0) * 64, _MM_HINT_T0);
        const float *xr = x + (size_t)m * K + k0, *d = dy + (size_t)m * N + n0;
        __m512 w0 = _mm512_maskz_loadu_ps(q0, xr), w1 = _mm512_maskz_loadu_ps(q1, xr + 16);
        DW_FMA(0) DW_FMA(1) DW_FMA(2) DW_FMA(3) DW_FMA(4) DW_FMA(5) DW_FMA(6) DW_FMA(7)
        if (with_db) sb = _mm256_add_ps(sb, _mm256_loadu_ps(d));
    }
    DW_ADD(0) DW_ADD(1) DW_ADD(2) DW_ADD(3) DW_ADD(4) DW_ADD(5) DW_ADD(6) DW_ADD(7)
    if (with_db) _mm256_storeu_ps(db + n0, _mm256_add_ps(_mm256_loadu_ps(db + n0), sb));
}

static void dw_tile8_db(float *dw, float *db, const float *dy, int N, const float *x, int K,
                        int m0, int m1, int n0, int k0, __mmask16 q0, __mmask16 q1,
                        const char *pf, int npf) {
    dw_tile8(dw, db, dy, N, x, K, m0, m1, n0, k0, q0, q1, pf, npf, 1);
}

static void dw_tile8_w(float *dw, const float *dy, int N, const float *x, int K, int m0, int m1,
                       int n0, int k0, __mmask16 q0, __mmask16 q1, const char *pf, int npf) {
    dw_tile8(dw, NULL, dy, N, x, K, m0, m1, n0, k0, q0, q1, pf, npf, 0);
}

/* one row n0 of the same (the rows past the last multiple of 8) */
static void dw_tile1(float *dw, float *db, const float *dy, int N, const float *x, int K, int m0,
                     int m1, int n0, int k0, __mmask16 q0, __mmask16 q1, const char *pf, int npf) {
    DW_ZERO(0)
    float sb = 0.0f;
    for (int m = m0; m < m1; m++) {
        if (m - m0 < npf) _mm_prefetch(pf + (size_t)(m - m0) * 64, _MM_HINT_T0);
        const float *xr = x + (size_t)m * K + k0, *d = dy + (size_t)m * N + n0;
        __m512 w0 = _mm512_maskz_loadu_ps(q0, xr), w1 = _mm512_maskz_loadu_ps(q1, xr + 16);
        DW_FMA(0)
        sb += d[0];
    }
    DW_ADD(0)
    if (db) db[n0] += sb;
}

/* the next chunk, bytes [0, lx) of X then [0, ld) of dY, split into equal
 * shares of `per` lines, one per tile */
typedef struct { const char *x, *d; long lx, ld, per; } dw_prefetch;

static const char *pf_at(const dw_prefetch *p, int t, int *n) {
    long at = (long)t * p->per, end = at + p->per;
    if (at >= p->lx + p->ld) {
        *n = 0;
        return p->x;
    }
    if (at < p->lx) {
        *n = (int)((end < p->lx ? end : p->lx) - at);
        return p->x + at * 64;
    }
    *n = (int)((end < p->lx + p->ld ? end : p->lx + p->ld) - at);
    return p->d + (at - p->lx) * 64;
}

/* tile t of a chunk: k-panel t / nb, row block t % nb; the first panel's
 * tiles own db (may be NULL) */
static void dw_tile_at(float *dw, float *db, const float *dy, const float *x, int N, int K,
                       int m0, int m1, int t, int nb, const dw_prefetch *p) {
    int k0 = t / nb * DW_NR, n0 = t % nb * DW_MR, npf;
    int kc = K - k0 < DW_NR ? K - k0 : DW_NR, mr = N - n0 < DW_MR ? N - n0 : DW_MR;
    const __mmask16 q0 = lanes16(kc), q1 = lanes16(kc - 16);
    const char *pf = pf_at(p, t, &npf);
    float *b = k0 == 0 ? db : NULL;
    if (mr == DW_MR && b) dw_tile8_db(dw, b, dy, N, x, K, m0, m1, n0, k0, q0, q1, pf, npf);
    else if (mr == DW_MR) dw_tile8_w(dw, dy, N, x, K, m0, m1, n0, k0, q0, q1, pf, npf);
    else /* the share's prefetches go with the first row */
        for (int r = 0; r < mr; r++)
            dw_tile1(dw, b, dy, N, x, K, m0, m1, n0 + r, k0, q0, q1, pf, r ? 0 : npf);
}

void linear_dw(float *dw, float *db, const float *dy, const float *x, int M, int N, int K) {
    double start = prof_now();
    const int nb = (N + DW_MR - 1) / DW_MR, ntile = nb * ((K + DW_NR - 1) / DW_NR);
    #pragma omp parallel
    {
        /* a fixed split of the tiles: each dW element is one thread's */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int tb = (int)((long)ntile * id / nt), te = (int)((long)ntile * (id + 1) / nt);
        for (int m0 = 0; m0 < M; m0 += DW_MB) {
            int m1 = m0 + DW_MB < M ? m0 + DW_MB : M, m2 = m1 + DW_MB < M ? m1 + DW_MB : M;
            dw_prefetch p = {(const char *)(x + (size_t)m1 * K), (const char *)(dy + (size_t)m1 * N),
                             ((long)(m2 - m1) * K * 4 + 63) / 64,
                             ((long)(m2 - m1) * N * 4 + 63) / 64, 0};
            p.per = (p.lx + p.ld + ntile - 1) / ntile;
            for (int t = tb; t < te; t++) dw_tile_at(dw, db, dy, x, N, K, m0, m1, t, nb, &p);
        }
    }
    prof_kernel_add(PROF_K_SGEMM, start);
    prof_flops_add(PROF_K_SGEMM, 2 * (uint64_t)M * N * K);
    prof_shape_note(1, 0, N, K, M);
}
#else
/* No AVX-512 in this build: OpenBLAS's product. */
void linear_dw(float *dw, float *db, const float *dy, const float *x, int M, int N, int K) {
    ops_sgemm(1, 0, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    if (db)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) db[j] += dy[(size_t)i * N + j];
}
#endif
