/* ops.c - forward/backward kernels of the ViT. Matrix products go through
 * OpenBLAS cblas_sgemm (ops_sgemm) over all tokens of the batch at once; the
 * small per-head attention products run in registers (small_mm, GCC/Clang
 * vector types), row reductions over fixed vector lanes, LayerNorm and GELU
 * as loops the compiler vectorises; threaded with OpenMP over rows or
 * (image, head) pairs, every sum in an order that does not depend on the
 * thread count. No kernel allocates. */
#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "jepa.h"
#include "prof.h"


/* ------------------------------------------------------------ vectors */
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
static inline vfl v_bcast(float x) { return (vfl){0} + x; }
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
    for (int k = 0; k < VW; k++) a[k] = b[k] > a[k] ? b[k] : a[k];
    return a;
#endif
}

static inline int round_vw(int n) { return (n + VW - 1) / VW * VW; }

/* Row reductions as VW interleaved partial sums (lane k takes x[k], x[k+VW],
 * ...), the lanes then added in order, the tail last: vectorised (ISO C
 * will not reorder a float sum on its own) and the same on every thread. */
static inline float v_hsum(vfl acc) {
    float l[VW], s = 0.0f;
    memcpy(l, &acc, sizeof l);
    for (int k = 0; k < VW; k++) s += l[k];
    return s;
}

static inline float row_sum(const float *x, int n) {
    vfl acc = {0};
    int i = 0;
    for (; i + VW <= n; i += VW) acc += v_load(x + i);
    float s = v_hsum(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

static inline float row_dot(const float *a, const float *b, int n) {
    vfl acc = {0};
    int i = 0;
    for (; i + VW <= n; i += VW) acc = v_fma(v_load(a + i), v_load(b + i), acc);
    float s = v_hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
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

static inline float row_max(const float *x, int n) {
    float mx = x[0];
    int i = 0;
    if (n >= VW) {
        vfl acc = v_load(x);
        for (i = VW; i + VW <= n; i += VW) acc = v_max(acc, v_load(x + i));
        float l[VW];
        memcpy(l, &acc, sizeof l);
        mx = l[0];
        for (int k = 1; k < VW; k++) mx = l[k] > mx ? l[k] : mx;
    }
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* ------------------------------------------------------------------ linear */

void ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    double t0 = prof_now();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_kernel_add(PROF_K_SGEMM, t0);
    prof_flops_add(PROF_K_SGEMM, 2 * (uint64_t)M * N * K);
    prof_shape_note(ta, tb, M, N, K);
}

void linear_forward(float *out, const float *inp, const float *w, const float *b,
                    int M, int K, int N) {
    float beta = 0.0f;
    if (b) {
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, b, sizeof(float) * N);
        beta = 1.0f;
    }
    ops_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, beta, out, N);
}

/* dinp = beta dinp + dout w (beta 0: written, the old values never read) */
static void linear_backward_beta(float *dinp, float beta, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, int M, int K, int N) {
    if (dinp) ops_sgemm(0, 0, M, K, N, 1.0f, dout, N, w, K, beta, dinp, K);
    if (dw) ops_sgemm(1, 0, N, K, M, 1.0f, dout, N, inp, K, 1.0f, dw, K);
    if (db) {
        /* column sums; each thread owns a column range so no reduction races */
        #pragma omp parallel
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int j0 = (int)((long)N * t / nt), j1 = (int)((long)N * (t + 1) / nt);
            for (int i = 0; i < M; i++) {
                const float *d = dout + (size_t)i * N;
                for (int j = j0; j < j1; j++) db[j] += d[j];
            }
        }
    }
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int M, int K, int N) {
    linear_backward_beta(dinp, 1.0f, dw, db, dout, inp, w, M, K, N);
}

void linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int M, int K, int N) {
    linear_backward_beta(dinp, 0.0f, dw, db, dout, inp, w, M, K, N);
}

/* --------------------------------------------------------------- layernorm */

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int M, int C) {
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        float m = row_sum(x, C) / C;
        float v = row_sqdev(x, m, C) / C;
        float s = 1.0f / sqrtf(v + 1e-6f);
        if (w)
            for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c] + b[c];
        else
            for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s;
        mean[i] = m;
        rstd[i] = s;
    }
    prof_kernel_add(PROF_K_NORM, t0);
}

/* sum_c g_c and sum_c g_c xhat_c of one row, g = dy * w (dy without w),
 * xhat = (x - m) s; lanes as row_sum */
static inline void ln_grad_sums(float *sg, float *sgx, const float *x, const float *dy,
                                const float *w, float m, float s, int C) {
    vfl ag = {0}, agx = {0}, vm = v_bcast(m), vs = v_bcast(s);
    int c = 0;
    for (; c + VW <= C; c += VW) {
        vfl g = w ? v_load(dy + c) * v_load(w + c) : v_load(dy + c);
        ag += g;
        agx = v_fma(g, (v_load(x + c) - vm) * vs, agx);
    }
    float a = v_hsum(ag), b = v_hsum(agx);
    for (; c < C; c++) {
        float g = w ? dy[c] * w[c] : dy[c];
        a += g;
        b += g * ((x[c] - m) * s);
    }
    *sg = a;
    *sgx = b;
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int M, int C) {
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        float sum_g, sum_gx;
        ln_grad_sums(&sum_g, &sum_gx, x, dy, w, m, s, C);
        sum_g /= C;
        sum_gx /= C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            float g = w ? dy[c] * w[c] : dy[c];
            dx[c] += s * (g - sum_g - xh * sum_gx);
        }
    }
    if (dw) {
        /* parameter grads: per-thread column ranges, rows in order (deterministic) */
        #pragma omp parallel
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
            for (int i = 0; i < M; i++) {
                const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
                float m = mean[i], s = rstd[i];
                for (int c = c0; c < c1; c++) {
                    dw[c] += dy[c] * (x[c] - m) * s;
                    db[c] += dy[c];
                }
            }
        }
    }
    prof_kernel_add(PROF_K_NORM, t0);
}

/* -------------------------------------------------------------------- gelu */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

static inline float gelu_f(float x) {
    float u = GELU_K * (x + GELU_A * x * x * x);
    float t = 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u)); /* tanh(u) */
    return 0.5f * x * (1.0f + t);
}

void gelu_forward(float *out, const float *inp, size_t n) {
    double t0 = prof_now();
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < (long)n; i++) out[i] = gelu_f(inp[i]);
    prof_kernel_add(PROF_K_GELU, t0);
}

void linear_gelu_forward(float *pre, float *out, const float *inp, const float *w,
                         const float *b, int M, int K, int N) {
    ops_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, 0.0f, pre, N);
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *p = pre + (size_t)i * N, *o = out + (size_t)i * N;
        #pragma omp simd
        for (int j = 0; j < N; j++) {
            float x = p[j] + b[j];
            p[j] = x;
            o[j] = gelu_f(x);
        }
    }
    prof_kernel_add(PROF_K_GELU, t0);
}

/* d = gelu'(inp) * d in place */
void gelu_backward_inplace(float *d, const float *inp, size_t n) {
    double t0 = prof_now();
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u));
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        d[i] = g * d[i];
    }
    prof_kernel_add(PROF_K_GELU, t0);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    double t0 = prof_now();
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u));
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        dinp[i] += g * dout[i];
    }
    prof_kernel_add(PROF_K_GELU, t0);
}

/* --------------------------------------------------------------- attention */
/* Per (image, head) the products are tiny (T ~ 49 tokens, hd = 16 or 32), too
 * small for a BLAS call each. small_mm does them in registers: blocks of up
 * to 8 rows x 4 vectors of accumulators, every output one sum over k in
 * order (so results depend on neither the thread count nor the batch). */


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

/* C (m, n) = op(A) (m, k) @ B (k, n; row stride ldb); op(A) = A (row stride
 * lda) or, with ta, the transpose of A (k, m; row stride lda); n a multiple
 * of VW; C's row stride ldc. */
static void small_mm(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb,
                     int m, int k, int n) {
    const int rs = ta ? 1 : lda, ps = ta ? lda : 1;
    for (int j = 0; j < n;) {
        int nb = (n - j) / VW > 4 ? 4 : (n - j) / VW, rb = nb > 2 ? 4 : 8, i = 0;
        float *c = C + j;
        const float *b = B + j;
        for (; i + rb <= m; i += rb) {
            const float *a = A + (size_t)i * rs;
            float *ci = c + (size_t)i * ldc;
            switch (nb) {
            case 4: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 4, 4); break;
            case 3: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 4, 3); break;
            case 2: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 8, 2); break;
            default: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 8, 1); break;
            }
        }
        for (; i < m; i++) {
            const float *a = A + (size_t)i * rs;
            float *ci = c + (size_t)i * ldc;
            switch (nb) {
            case 4: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 1, 4); break;
            case 3: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 1, 3); break;
            case 2: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 1, 2); break;
            default: mm_block(ci, ldc, a, rs, ps, b, ldb, k, 1, 1); break;
            }
        }
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
static void pack_cols(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int d = 0; d < cols; d++) {
        float *o = dst + (size_t)d * ldd;
        for (int j = 0; j < rows; j++) o[j] = src[(size_t)j * lds + d];
        for (int j = rows; j < ldd; j++) o[j] = 0.0f;
    }
}

/* per thread: a (hd, Tp) panel, four (T, hdp) panels, one (T, Tp) panel */
size_t attention_scratch_floats(int T, int hd) {
    size_t Tp = (size_t)round_vw(T), hp = (size_t)round_vw(hd);
    return ((size_t)hd * Tp + 4 * (size_t)T * hp + (size_t)T * Tp + 15) & ~(size_t)15;
}

/* Softmax of row s (n of T entries live; causal rows end early) scaled by
 * `scale`, into p (T floats, exact zeros past n) and back into s. */
static void softmax_row(float *s, float *p, int n, int T, float scale) {
    float mx = row_max(s, n) * scale; /* scale > 0: max commutes with it */
    for (int j = 0; j < n; j++) s[j] = fast_expf(s[j] * scale - mx);
    float inv = 1.0f / row_sum(s, n);
    for (int j = 0; j < n; j++) p[j] = s[j] = s[j] * inv;
    for (int j = n; j < T; j++) p[j] = s[j] = 0.0f;
}

/* One (image, head): S = Q K^T, P = softmax(scale S) into att (T, T), O = P V
 * into out's head columns. base: the image's qkv rows (T, 3C). */
static void attn_head_forward(float *out, float *att, const float *base, int T, int C, int hd,
                              int h, float scale, int causal, float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd);
    float *kt = ws, *vp = kt + (size_t)hd * Tp, *o = vp + (size_t)T * hp;
    float *s = o + (size_t)T * hp;
    pack_cols(kt, Tp, base + C + h * hd, 3 * C, T, hd);
    pack_rows(vp, hp, base + 2 * C + h * hd, 3 * C, T, hd);
    small_mm(s, Tp, base + h * hd, 3 * C, 0, kt, Tp, T, hd, Tp);
    for (int i = 0; i < T; i++)
        softmax_row(s + (size_t)i * Tp, att + (size_t)i * T, causal ? i + 1 : T, T, scale);
    small_mm(o, hp, s, Tp, 0, vp, hp, T, T, hp);
    for (int i = 0; i < T; i++)
        memcpy(out + (size_t)i * C + h * hd, o + (size_t)i * hp, sizeof(float) * hd);
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
        attn_head_forward(out + (size_t)b * T * C, att + (size_t)bh * T * T,
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

/* One (image, head), from dO and P: dP = dO V^T, dS = P (dP - rowsum(P dP)) scale,
 * dQ = dS K, dK = dS^T Q, dV = P^T dO, written into dbase's head columns. */
static void attn_head_backward(float *dbase, const float *dout, const float *base,
                               const float *p, int T, int C, int hd, int h, float scale,
                               float *ws) {
    const int Tp = round_vw(T), hp = round_vw(hd);
    float *vt = ws, *kp = vt + (size_t)hd * Tp, *qp = kp + (size_t)T * hp;
    float *gp = qp + (size_t)T * hp, *o = gp + (size_t)T * hp;
    float *ds = o + (size_t)T * hp;
    pack_cols(vt, Tp, base + 2 * C + h * hd, 3 * C, T, hd);
    pack_rows(kp, hp, base + C + h * hd, 3 * C, T, hd);
    pack_rows(qp, hp, base + h * hd, 3 * C, T, hd);
    pack_rows(gp, hp, dout + h * hd, C, T, hd);
    small_mm(ds, Tp, gp, hp, 0, vt, Tp, T, hd, Tp);
    for (int i = 0; i < T; i++) {
        const float *pi = p + (size_t)i * T;
        float *d = ds + (size_t)i * Tp, dot = row_dot(pi, d, T);
        for (int j = 0; j < T; j++) d[j] = pi[j] * (d[j] - dot) * scale;
    }
    small_mm(o, hp, ds, Tp, 0, kp, hp, T, T, hp); /* dQ */
    for (int i = 0; i < T; i++)
        memcpy(dbase + (size_t)i * 3 * C + h * hd, o + (size_t)i * hp, sizeof(float) * hd);
    small_mm(o, hp, ds, Tp, 1, qp, hp, T, T, hp); /* dK = dS^T Q */
    for (int i = 0; i < T; i++)
        memcpy(dbase + (size_t)i * 3 * C + C + h * hd, o + (size_t)i * hp, sizeof(float) * hd);
    small_mm(o, hp, p, T, 1, gp, hp, T, T, hp); /* dV = P^T dO */
    for (int i = 0; i < T; i++)
        memcpy(dbase + (size_t)i * 3 * C + 2 * C + h * hd, o + (size_t)i * hp, sizeof(float) * hd);
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

/* ------------------------------------------------------- tokens and patches */

void patchify(float *patches, const float *img, int B, int Ch, int S, int p) {
    int G = S / p, pd = Ch * p * p;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                float *dst = patches + ((size_t)b * G * G + gy * G + gx) * pd;
                for (int c = 0; c < Ch; c++)
                    for (int py = 0; py < p; py++) {
                        const float *src =
                            img + (((size_t)b * Ch + c) * S + gy * p + py) * S + gx * p;
                        memcpy(dst + (c * p + py) * p, src, sizeof(float) * p);
                    }
            }
}

void gather_rows(float *out, const float *inp, const int *idx, int n, int C) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * C, inp + (size_t)idx[i] * C, sizeof(float) * C);
}

void scatter_add_rows(float *dinp, const float *dout, const int *idx, int n, int C) {
    /* serial: indices may repeat, and a fixed order keeps sums bitwise stable */
    for (int i = 0; i < n; i++) {
        float *d = dinp + (size_t)idx[i] * C;
        const float *s = dout + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

/* ------------------------------------------------------------------ losses */

double loss_forward_backward(float *dpred, const float *pred, const float *target,
                             size_t n, loss_kind kind, float beta) {
    double sum = 0.0;
    float inv = 1.0f / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target[i], ad = fabsf(d), l, g;
        if (kind == LOSS_L2) {
            l = d * d;
            g = 2.0f * d;
        } else if (ad < beta) {
            l = 0.5f * d * d / beta;
            g = d / beta;
        } else {
            l = ad - 0.5f * beta;
            g = d > 0 ? 1.0f : -1.0f;
        }
        sum += l;
        if (dpred) dpred[i] = g * inv;
    }
    return sum / (double)n;
}

/* ------------------------------------------------------- position embedding */

void pos_embed_sincos(float *out, int C, int G) {
    /* first half encodes the column (x), second half the row (y), each as
     * [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (C/4)) */
    int q = C / 4;
    for (int y = 0; y < G; y++)
        for (int x = 0; x < G; x++) {
            float *e = out + ((size_t)y * G + x) * C;
            for (int k = 0; k < q; k++) {
                double w = 1.0 / pow(10000.0, (double)k / q);
                e[k] = (float)sin(x * w);
                e[q + k] = (float)cos(x * w);
                e[2 * q + k] = (float)sin(y * w);
                e[3 * q + k] = (float)cos(y * w);
            }
        }
}

double col_std_mean(const float *x, int n, int dim) {
    /* column sums taken row by row over blocks of columns: the rows stream
     * through the cache once, and each column's sums are the same additions
     * in the same order as a walk down the column */
    enum { COLS = 256 };
    double acc = 0.0;
    for (int c0 = 0; c0 < dim; c0 += COLS) {
        int w = dim - c0 < COLS ? dim - c0 : COLS;
        double s[COLS] = {0}, s2[COLS] = {0};
        for (int i = 0; i < n; i++) {
            const float *r = x + (size_t)i * dim + c0;
            for (int c = 0; c < w; c++) {
                double v = r[c];
                s[c] += v;
                s2[c] += v * v;
            }
        }
        for (int c = 0; c < w; c++) {
            double mu = s[c] / n, var = s2[c] / n - mu * mu;
            acc += sqrt(var > 0 ? var : 0);
        }
    }
    return acc / dim;
}
