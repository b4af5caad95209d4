/* ops_attn.c - the multi-head attention core of training (jepa.h): per
 * (image, head) the products are tiny (T ~ 27-49 tokens, head width 16 or
 * 32), too small for a BLAS call each, so small_mm does them in registers.
 * Where the head width is a multiple of the vector width the products read
 * Q, K, V, dO and write O, dQKV in place (no row copies); softmax and its
 * backward run on whole vectors with masked tails. Every output is one sum
 * in a fixed order, computed by one thread. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "jepa.h"
#include "ops_attn.h"
#include "prof.h"
#include "vec.h"

/* C[r][0, NB*VW) = sum_p A(r, p) B[p][0, NB*VW) for RB rows; A(r, p) is
 * A[r * rs + p * ps]: rs = lda, ps = 1 for A, rs = 1, ps = lda for A^T */
static inline __attribute__((always_inline)) void mm_block(float *C, int ldc, const float *A,
                                                           int rs, int ps, const float *B,
                                                           int ldb, int k, const int RB,
                                                           const int NB) {
    vfl acc[8][4];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NB; v++) acc[r][v] = (vfl){0};
    for (int p = 0; p < k; p++) {
        vfl b[4];
        for (int v = 0; v < NB; v++) b[v] = v_load(B + (size_t)p * ldb + v * VW);
        for (int r = 0; r < RB; r++) {
            vfl a = v_bcast(A[(size_t)r * rs + (size_t)p * ps]);
            for (int v = 0; v < NB; v++) acc[r][v] = v_fma(a, b[v], acc[r][v]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NB; v++) v_store(C + (size_t)r * ldc + v * VW, acc[r][v]);
}

/* rb (< 8) rows of NB vectors as one block: constant row counts, so the
 * remainder rows of small_mm share their B loads instead of running one
 * latency-bound chain each */
#define MM_ROWS(NB)                                                                  \
    switch (rb) {                                                                    \
    case 7: mm_block(C, ldc, A, rs, ps, B, ldb, k, 7, NB); break;                    \
    case 6: mm_block(C, ldc, A, rs, ps, B, ldb, k, 6, NB); break;                    \
    case 5: mm_block(C, ldc, A, rs, ps, B, ldb, k, 5, NB); break;                    \
    case 4: mm_block(C, ldc, A, rs, ps, B, ldb, k, 4, NB); break;                    \
    case 3: mm_block(C, ldc, A, rs, ps, B, ldb, k, 3, NB); break;                    \
    case 2: mm_block(C, ldc, A, rs, ps, B, ldb, k, 2, NB); break;                    \
    default: mm_block(C, ldc, A, rs, ps, B, ldb, k, 1, NB); break;                   \
    }

static void mm_rows(float *C, int ldc, const float *A, int rs, int ps, const float *B, int ldb,
                    int k, int rb, int nb) {
    switch (nb) {
    case 4: MM_ROWS(4); break;
    case 3: MM_ROWS(3); break;
    case 2: MM_ROWS(2); break;
    default: MM_ROWS(1); break;
    }
}

/* Column vectors of the next block, given rem vectors left. AVX-512 (32
 * registers): up to 4, in blocks of 4 rows x 4 or 8 x 2. AVX2 and SSE (16
 * registers): up to 3, in blocks of 4 x 3, 6 x 2 or 8 x 1 -- 4 x 4 needs 21
 * registers and spilled the accumulators to the stack in the inner loop;
 * 7 vectors (a 49-token score row) go as 3 + 2 + 2, not 3 + 3 + 1. The
 * block's shape does not change any output's arithmetic. */
#if VW == 16
static int mm_nb(int rem) { return rem > 4 ? 4 : rem; }
static int mm_rb(int nb) { return nb > 2 ? 4 : 8; }
#else
static int mm_nb(int rem) { return rem >= 5 || rem == 3 ? 3 : rem == 4 ? 2 : rem; }
static int mm_rb(int nb) { return nb == 3 ? 4 : nb == 2 ? 6 : 8; }
#endif

/* C (m, n) = op(A) (m, k) @ B (k, n; row stride ldb); op(A) = A (row stride
 * lda) or, with ta, the transpose of A (k, m; row stride lda); n a multiple
 * of VW; C's row stride ldc. */
static void small_mm(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb,
                     int m, int k, int n) {
    const int rs = ta ? 1 : lda, ps = ta ? lda : 1;
    for (int j = 0; j < n;) {
        int nb = mm_nb((n - j) / VW), rb = mm_rb(nb), i = 0;
        float *c = C + j;
        const float *b = B + j;
        for (; i + rb <= m; i += rb) {
            const float *a = A + (size_t)i * rs;
            float *ci = c + (size_t)i * ldc;
            switch (nb) {
#if VW == 16
            case 4: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 4, 4); break;
            case 3: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 4, 3); break;
            case 2: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 8, 2); break;
#else
            case 3: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 4, 3); break;
            case 2: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 6, 2); break;
#endif
            default: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 8, 1); break;
            }
        }
        if (i < m)
            mm_rows(c + (size_t)i * ldc, ldc, A + (size_t)i * rs, rs, ps, b, ldb, k, m - i, nb);
        j += nb * VW;
    }
}

/* dst (rows, ldd) <- src rows of `cols` floats (row stride lds), zero past cols */
static void pack_rows(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        memcpy(dst + (size_t)i * ldd, src + (size_t)i * lds, sizeof(float) * cols);
        for (int j = cols; j < ldd; j++) dst[(size_t)i * ldd + j] = 0.0f;
    }
}

/* dst (cols, ldd) <- transpose of src (rows, cols; row stride lds), zero past rows */
static void pack_cols_ref(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int d = 0; d < cols; d++) {
        float *o = dst + (size_t)d * ldd;
        for (int j = 0; j < rows; j++) o[j] = src[(size_t)j * lds + d];
        for (int j = rows; j < ldd; j++) o[j] = 0.0f;
    }
}

#if defined(__AVX512F__)
/* 16 x 16 block transpose: rows r[0..16) of 16 floats -> dst rows c (stride
 * ldd) = column c of the block. Unpacks within 128-bit lanes, then whole
 * lanes: u[g][c] holds columns c, c+4, c+8, c+12 of rows 4g..4g+3. */
static void transpose16(float *dst, int ldd, const __m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 x = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        __m512 y = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        __m512 z = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        _mm512_storeu_ps(dst + (size_t)c * ldd, _mm512_shuffle_f32x4(x, z, 0x88));
        _mm512_storeu_ps(dst + (size_t)(c + 4) * ldd, _mm512_shuffle_f32x4(x, z, 0xDD));
        _mm512_storeu_ps(dst + (size_t)(c + 8) * ldd, _mm512_shuffle_f32x4(y, w, 0x88));
        _mm512_storeu_ps(dst + (size_t)(c + 12) * ldd, _mm512_shuffle_f32x4(y, w, 0xDD));
    }
}
#endif

/* the same in 16 x 16 register blocks where cols and ldd are multiples of
 * 16 (scalar, it was a sixth of a predictor head's forward) */
static void pack_cols(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
#if defined(__AVX512F__)
    if (cols % 16 == 0 && ldd % 16 == 0) {
        for (int j = 0; j < ldd; j += 16)
            for (int d = 0; d < cols; d += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = j + i < rows ? _mm512_loadu_ps(src + (size_t)(j + i) * lds + d)
                                        : _mm512_setzero_ps();
                transpose16(dst + (size_t)d * ldd + j, ldd, r);
            }
        return;
    }
#endif
    pack_cols_ref(dst, ldd, src, lds, rows, cols);
}

/* dst rows (row stride ldd) <- the first cols floats of src rows (stride lds) */
static void copy_rows(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        memcpy(dst + (size_t)i * ldd, src + (size_t)i * lds, sizeof(float) * cols);
}

/* per thread: a (hd, Tp) panel, four (T, hdp) panels, one (T, Tp) panel */
size_t attention_scratch_floats(int T, int hd) {
    size_t Tp = (size_t)round_vw(T), hp = (size_t)round_vw(hd);
    return ((size_t)hd * Tp + 4 * (size_t)T * hp + (size_t)T * Tp + 15) & ~(size_t)15;
}

/* Softmax of nr (<= 4) score rows s (row stride Tp; row r has n[r] of T
 * entries live, causal rows end early) scaled by `scale`, back into s
 * (exact zeros past n) and, unless NULL, into p (rows of T floats). The
 * max, then exp and the sum over VW lanes, then the scale; the tail vector
 * masked, never a scalar loop. The rows advance together: one row alone is
 * a chain of dependent reductions, four overlap. */
static inline __attribute__((always_inline)) void
softmax_rows(float *s, int Tp, float *p, const int *n, int T, float scale, const int nr) {
    const vfl ninf = v_bcast(-INFINITY);
    vfl vm[4], mx[4], acc[4], inv[4];
    for (int r = 0; r < nr; r++) vm[r] = ninf, acc[r] = (vfl){0};
    for (int j = 0; j < T; j += VW)
        for (int r = 0; r < nr; r++)
            if (j < n[r])
                vm[r] = v_max(vm[r], v_select(v_lanes(n[r] - j), v_load(s + r * Tp + j), ninf));
    for (int r = 0; r < nr; r++) mx[r] = v_bcast(v_hmax(vm[r]) * scale); /* scale > 0 */
    for (int j = 0; j < T; j += VW)
        for (int r = 0; r < nr; r++) {
            if (j >= n[r]) continue;
            float *x = s + r * Tp + j;
            vfl e = v_select(v_lanes(n[r] - j), v_expf(v_load(x) * scale - mx[r]), (vfl){0});
            v_store(x, e);
            acc[r] += e;
        }
    for (int r = 0; r < nr; r++) inv[r] = v_bcast(1.0f / v_hsum(acc[r]));
    for (int j = 0; j < T; j += VW)
        for (int r = 0; r < nr; r++) {
            vfl y = j < n[r] ? v_load(s + r * Tp + j) * inv[r] : (vfl){0}; /* zeros past n */
            v_store(s + r * Tp + j, y);
            if (!p) continue;
            if (T - j >= VW) v_store(p + r * T + j, y);
            else v_store_n(p + r * T + j, y, T - j);
        }
}

/* the first nr rows of a head's T x T scores, four at a time */
static void softmax_head(float *s, int Tp, float *att, int nr, int T, float scale, int causal) {
    int i = 0, n[4];
    for (; i + 4 <= nr; i += 4) {
        for (int r = 0; r < 4; r++) n[r] = causal ? i + r + 1 : T;
        softmax_rows(s + (size_t)i * Tp, Tp, att ? att + (size_t)i * T : NULL, n, T, scale, 4);
    }
    for (; i < nr; i++) {
        n[0] = causal ? i + 1 : T;
        softmax_rows(s + (size_t)i * Tp, Tp, att ? att + (size_t)i * T : NULL, n, T, scale, 1);
    }
}

/* ops_attn.h's export: a wrapper, so training's calls stay as they were
 * (and inline as they did) */
#if defined(__AVX512F__)
void attn_transpose16(float *dst, int ldd, const __m512 r[16]) { transpose16(dst, ldd, r); }
#endif

/* One (image, head): S = Q K^T, P = softmax(scale S) into att (T, T)
 * unless NULL, O = P V into out's head columns. base: the image's qkv
 * rows (T, 3C). P V reads P from the scratch rows, which stay in L1. */
static void attn_head_forward(float *out, float *att, const float *base, int T, int C, int hd,
                              int h, float scale, int causal, float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd);
    float *kt = ws, *s = kt + (size_t)hd * Tp, *vp = s + (size_t)T * Tp;
    float *o = vp + (size_t)T * hp;
    pack_cols(kt, Tp, base + C + h * hd, 3 * C, T, hd);
    small_mm(s, Tp, base + h * hd, 3 * C, 0, kt, Tp, T, hd, Tp);
    softmax_head(s, Tp, att, T, T, scale, causal);
    if (hd == hp) { /* V's and O's head columns are whole vectors: in place */
        small_mm(out + h * hd, C, s, Tp, 0, base + 2 * C + h * hd, 3 * C, T, T, hd);
        return;
    }
    pack_rows(vp, hp, base + 2 * C + h * hd, 3 * C, T, hd);
    small_mm(o, hp, s, Tp, 0, vp, hp, T, T, hp);
    copy_rows(out + h * hd, C, o, hp, T, hd);
}

/* causal: row i attends to tokens 0..i only; the masked probabilities are
 * exact zeros, so attention_backward serves both forms unchanged */
static void attn_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                         int H, int causal, float *scratch) {
    double t0 = prof_now();
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = attention_scratch_floats(T, hd);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        attn_head_forward(out + (size_t)b * T * C, att ? att + (size_t)bh * T * T : NULL,
                          qkv + (size_t)b * T * 3 * C, T, C, hd, h, scale, causal,
                          scratch + per * omp_get_thread_num());
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 4 * (uint64_t)B * T * T * C);
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                       int H, float *scratch) {
    attn_forward(out, att, qkv, B, T, C, H, 0, scratch);
}

void attention_forward_causal(float *out, float *att, const float *qkv, int B, int T, int C,
                              int H, float *scratch) {
    attn_forward(out, att, qkv, B, T, C, H, 1, scratch);
}

/* dS = P (dP - rowsum(P dP)) scale in place over nr rows of ds (row stride
 * Tp); P rows of T floats, the tail vector masked so dS stays zero past T */
static void softmax_backward_rows(float *ds, const float *p, int nr, int T, int Tp, float scale) {
    for (int i = 0; i < nr; i++) {
        const float *pi = p + (size_t)i * T;
        float *d = ds + (size_t)i * Tp;
        vfl acc = {0};
        for (int j = 0; j < T; j += VW) {
            vfl pv = T - j >= VW ? v_load(pi + j) : v_load_n(pi + j, T - j);
            acc = v_fma(pv, v_load(d + j), acc);
        }
        vfl dot = v_bcast(v_hsum(acc));
        for (int j = 0; j < T; j += VW) {
            vfl pv = T - j >= VW ? v_load(pi + j) : v_load_n(pi + j, T - j);
            v_store(d + j, pv * (v_load(d + j) - dot) * scale);
        }
    }
}

/* One (image, head), from dO and P: dP = dO V^T, dS = P (dP - rowsum(P dP)) scale,
 * dQ = dS K, dK = dS^T Q, dV = P^T dO, written into dbase's head columns. */
static void attn_head_backward(float *dbase, const float *dout, const float *base,
                               const float *p, int T, int C, int hd, int h, float scale,
                               float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd), C3 = 3 * C;
    const float *q = base + h * hd, *k = base + C + h * hd, *g = dout + h * hd;
    float *vt = ws, *ds = vt + (size_t)hd * Tp;
    pack_cols(vt, Tp, base + 2 * C + h * hd, C3, T, hd);
    small_mm(ds, Tp, g, C, 0, vt, Tp, T, hd, Tp);
    softmax_backward_rows(ds, p, T, T, Tp, scale);
    if (hd == hp) { /* whole vectors: read Q, K, dO and write d(qkv) in place */
        small_mm(dbase + h * hd, C3, ds, Tp, 0, k, C3, T, T, hd);         /* dQ */
        small_mm(dbase + C + h * hd, C3, ds, Tp, 1, q, C3, T, T, hd);     /* dK = dS^T Q */
        small_mm(dbase + 2 * C + h * hd, C3, p, T, 1, g, C, T, T, hd);    /* dV = P^T dO */
        return;
    }
    float *kp = ds + (size_t)T * Tp, *qp = kp + (size_t)T * hp, *gp = qp + (size_t)T * hp;
    float *o = gp + (size_t)T * hp;
    pack_rows(kp, hp, k, C3, T, hd);
    pack_rows(qp, hp, q, C3, T, hd);
    pack_rows(gp, hp, g, C, T, hd);
    small_mm(o, hp, ds, Tp, 0, kp, hp, T, T, hp);
    copy_rows(dbase + h * hd, C3, o, hp, T, hd);
    small_mm(o, hp, ds, Tp, 1, qp, hp, T, T, hp);
    copy_rows(dbase + C + h * hd, C3, o, hp, T, hd);
    small_mm(o, hp, p, T, 1, gp, hp, T, T, hp);
    copy_rows(dbase + 2 * C + h * hd, C3, o, hp, T, hd);
}

void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int H, float *scratch) {
    double t0 = prof_now();
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = attention_scratch_floats(T, hd);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        attn_head_backward(dqkv + (size_t)b * T * 3 * C, dout + (size_t)b * T * C,
                           qkv + (size_t)b * T * 3 * C, att + (size_t)bh * T * T, T, C, hd, h,
                           scale, scratch + per * omp_get_thread_num());
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 8 * (uint64_t)B * T * T * C);
}

/* ------------------------------------------------------------ listed queries */

/* [lo, hi) of the ascending rows in [b T, (b + 1) T) */
static void rows_of_image(const int *rows, int nrows, int b, int T, int *lo, int *hi) {
    int a = 0, z = nrows;
    while (a < z) { int m = (a + z) / 2; if (rows[m] < b * T) a = m + 1; else z = m; }
    *lo = a;
    z = nrows;
    while (a < z) { int m = (a + z) / 2; if (rows[m] < (b + 1) * T) a = m + 1; else z = m; }
    *hi = a;
}

/* dst (n, hp) <- columns [0, hd) of the sequence's rows r[0..n) - r0 (stride
 * lds), zero past hd */
static void pack_listed(float *dst, int hp, const float *src, int lds, const int *r, int r0,
                        int n, int hd) {
    for (int i = 0; i < n; i++)
        pack_rows(dst + (size_t)i * hp, hp, src + (size_t)(r[i] - r0) * lds, lds, 1, hd);
}

/* One (image, head), n listed queries (rows r[0..n) of the stack, tokens
 * r[i] - r0): S = Q_l K^T, P into att (n, T), O_l = P V into out's n rows. */
static void attn_head_forward_rows(float *out, float *att, const float *base, const int *r,
                                   int r0, int n, int T, int C, int hd, int h, float scale,
                                   float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd);
    float *kt = ws, *s = kt + (size_t)hd * Tp, *qp = s + (size_t)T * Tp;
    float *vp = qp + (size_t)T * hp, *o = vp + (size_t)T * hp;
    pack_cols(kt, Tp, base + C + h * hd, 3 * C, T, hd);
    pack_listed(qp, hp, base + h * hd, 3 * C, r, r0, n, hd);
    small_mm(s, Tp, qp, hp, 0, kt, Tp, n, hd, Tp);
    softmax_head(s, Tp, att, n, T, scale, 0);
    if (hd == hp) {
        small_mm(out + h * hd, C, s, Tp, 0, base + 2 * C + h * hd, 3 * C, n, T, hd);
        return;
    }
    pack_rows(vp, hp, base + 2 * C + h * hd, 3 * C, T, hd);
    small_mm(o, hp, s, Tp, 0, vp, hp, n, T, hp);
    copy_rows(out + h * hd, C, o, hp, n, hd);
}

/* Image b's listed rows: rows[*lo, *lo + n), returns n */
static int listed(const int *rows, int nrows, int b, int T, int *lo) {
    int hi;
    rows_of_image(rows, nrows, b, T, lo, &hi);
    return hi - *lo;
}

void attention_forward_rows(float *out, float *att, const float *qkv, int B, int T, int C, int H,
                            const int *rows, int nrows, float *scratch) {
    double t0 = prof_now();
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = attention_scratch_floats(T, hd);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, lo, n = listed(rows, nrows, b, T, &lo);
        if (n == 0) continue;
        float *p = att ? att + ((size_t)lo * H + (size_t)h * n) * T : NULL;
        attn_head_forward_rows(out + (size_t)lo * C, p, qkv + (size_t)b * T * 3 * C, rows + lo,
                               b * T, n, T, C, hd, h, scale, scratch + per * omp_get_thread_num());
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 4 * (uint64_t)nrows * T * C);
}

/* One (image, head), n listed queries: dP = dO_l V^T, dS, dQ_l = dS K (zero
 * for the other queries), dK = dS^T Q_l, dV = P^T dO_l into dbase's columns. */
static void attn_head_backward_rows(float *dbase, const float *dout, const float *base,
                                    const float *p, const int *r, int r0, int n, int T, int C,
                                    int hd, int h, float scale, float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd), C3 = 3 * C;
    const float *k = base + C + h * hd;
    float *vt = ws, *ds = vt + (size_t)hd * Tp, *qp = ds + (size_t)T * Tp;
    float *kp = qp + (size_t)T * hp, *gp = kp + (size_t)T * hp, *o = gp + (size_t)T * hp;
    for (int t = 0, i = 0; t < T; t++) { /* dQ of the queries not listed */
        if (i < n && r[i] - r0 == t) { i++; continue; }
        memset(dbase + (size_t)t * C3 + h * hd, 0, sizeof(float) * hd);
    }
    if (n == 0) { /* no query listed: K and V get no gradient either */
        for (int t = 0; t < T; t++) {
            memset(dbase + (size_t)t * C3 + C + h * hd, 0, sizeof(float) * hd);
            memset(dbase + (size_t)t * C3 + 2 * C + h * hd, 0, sizeof(float) * hd);
        }
        return;
    }
    pack_cols(vt, Tp, base + 2 * C + h * hd, C3, T, hd);
    small_mm(ds, Tp, dout + h * hd, C, 0, vt, Tp, n, hd, Tp);
    softmax_backward_rows(ds, p, n, T, Tp, scale);
    pack_listed(qp, hp, base + h * hd, C3, r, r0, n, hd);
    if (hd == hp) { /* whole vectors: K and dO read, dK and dV written in place */
        small_mm(o, hp, ds, Tp, 0, k, C3, n, T, hd);                        /* dQ_l */
        small_mm(dbase + C + h * hd, C3, ds, Tp, 1, qp, hp, T, n, hd);      /* dK = dS^T Q_l */
        small_mm(dbase + 2 * C + h * hd, C3, p, T, 1, dout + h * hd, C, T, n, hd); /* dV */
    } else {
        pack_rows(kp, hp, k, C3, T, hd);
        pack_rows(gp, hp, dout + h * hd, C, n, hd);
        small_mm(o, hp, ds, Tp, 1, qp, hp, T, n, hp);
        copy_rows(dbase + C + h * hd, C3, o, hp, T, hd);
        small_mm(o, hp, p, T, 1, gp, hp, T, n, hp);
        copy_rows(dbase + 2 * C + h * hd, C3, o, hp, T, hd);
        small_mm(o, hp, ds, Tp, 0, kp, hp, n, T, hp);
    }
    for (int i = 0; i < n; i++) /* dQ_l to the listed rows */
        memcpy(dbase + (size_t)(r[i] - r0) * C3 + h * hd, o + (size_t)i * hp, sizeof(float) * hd);
}

void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *att,
                             int B, int T, int C, int H, const int *rows, int nrows,
                             float *scratch) {
    double t0 = prof_now();
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = attention_scratch_floats(T, hd);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, lo, n = listed(rows, nrows, b, T, &lo);
        attn_head_backward_rows(dqkv + (size_t)b * T * 3 * C, dout + (size_t)lo * C,
                                qkv + (size_t)b * T * 3 * C,
                                att + ((size_t)lo * H + (size_t)h * n) * T, rows + lo, b * T, n,
                                T, C, hd, h, scale, scratch + per * omp_get_thread_num());
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 8 * (uint64_t)nrows * T * C);
}
