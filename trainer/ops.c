/* ops.c - forward/backward kernels of the ViT but attention (ops_attn.c)
 * and the weight gradient (ops_dw.c). Products against weights run on
 * weights packed per call through ops_infer.c's register tiles (AVX-512
 * builds and AVX2 with FMA; cblas_sgemm otherwise, and for every other
 * product, via ops_sgemm); row reductions over fixed vector lanes (vec.h),
 * LayerNorm as loops the compiler vectorises, GELU on vec.h's vectors
 * (gelu.h); threaded with OpenMP over rows,
 * every sum in an order that does not depend on the thread count. No
 * kernel allocates. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fastmath.h"
#include "gelu.h"
#include "infer.h"
#include "jepa.h"
#include "prof.h"
#include "vec.h"

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

/* Products against a weight matrix skip OpenBLAS's packing of the
 * activations: the weights (small) are packed per call into pack_buf and
 * infer_linear_pre's register tiles read the activation rows in place
 * (INFER_PACKED builds; elsewhere, or past the reserved size, cblas_sgemm).
 * Each output is one sum over k in order, whatever the thread count. */
static float *pack_buf;
static size_t pack_cap;

void ops_pack_reserve(size_t floats) {
    if (floats == 0) { /* release: back to cblas_sgemm (tests, A/B) */
        jepa_free(pack_buf);
        pack_buf = NULL;
        pack_cap = 0;
        return;
    }
    if (floats <= pack_cap) return;
    jepa_free(pack_buf);
    pack_buf = JEPA_MALLOC(sizeof(float) * floats);
    pack_cap = floats;
}

/* infer_linear_pre on weights packed (wt 1: infer_pack, 0: infer_pack_rows),
 * timed and counted as one product from t0 */
static void packed_run(double t0, int wt, float *out, float *pre, const float *inp,
                       const float *wp, const float *b, const float *res, int M, int K, int N,
                       int gelu) {
    infer_linear_pre(out, pre, inp, wp, b, res, M, K, N, gelu);
    prof_kernel_add(PROF_K_SGEMM, t0);
    prof_flops_add(PROF_K_SGEMM, 2 * (uint64_t)M * N * K);
    prof_shape_note(0, wt, M, N, K);
}

/* out (M, N) = inp (M, K) @ op(w) + b (+ res), pre as infer_linear_pre;
 * op(w) = w^T for w (N, K) (wt 1) or w (K, N) (wt 0). Returns 0, having
 * done nothing, where the packed product does not apply. */
static int packed_product(float *out, float *pre, const float *inp, const float *w, int wt,
                          const float *b, const float *res, int M, int K, int N, int gelu) {
#if INFER_PACKED
    if (infer_pack_floats(K, N) > pack_cap) return 0;
    JEPA_ASSERT(!omp_in_parallel()); /* one pack_buf per process */
    double t0 = prof_now();
    if (wt) infer_pack(pack_buf, w, K, N);
    else infer_pack_rows(pack_buf, w, K, N);
    packed_run(t0, wt, out, pre, inp, pack_buf, b, res, M, K, N, gelu);
    return 1;
#else
    (void)out; (void)pre; (void)inp; (void)w; (void)wt; (void)b; (void)res;
    (void)M; (void)K; (void)N; (void)gelu;
    return 0;
#endif
}

int ops_packed(void) { return INFER_PACKED; }

void linear_forward_packed(float *out, float *pre, const float *inp, const float *wp,
                           const float *b, const float *res, int M, int K, int N, int gelu) {
    JEPA_ASSERT(ops_packed());
    packed_run(prof_now(), 1, out, pre, inp, wp, b, res, M, K, N, gelu);
}

void linear_forward(float *out, const float *inp, const float *w, const float *b,
                    int M, int K, int N) {
    if (packed_product(out, NULL, inp, w, 1, b, NULL, M, K, N, 0)) return;
    float beta = 0.0f;
    if (b) {
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, b, sizeof(float) * N);
        beta = 1.0f;
    }
    ops_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, beta, out, N);
}

void linear_residual_forward(float *out, const float *res, const float *inp, const float *w,
                             const float *b, int M, int K, int N) {
    if (packed_product(out, NULL, inp, w, 1, b, res, M, K, N, 0)) return;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *o = out + (size_t)i * N;
        const float *r = res + (size_t)i * N;
        for (int j = 0; j < N; j++) o[j] = r[j] + b[j];
    }
    ops_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, 1.0f, out, N);
}

/* dw += dout^T inp and, unless NULL, db += dout's column sums; dw NULL:
 * no parameter gradient (a bias is never trained without its weight) */
static void weight_grads(float *dw, float *db, const float *dout, const float *inp, int M, int K,
                         int N) {
    JEPA_ASSERT(dw || !db);
    if (dw) linear_dw(dw, db, dout, inp, M, N, K);
}

/* dinp = beta dinp + dout w (beta 0: written, the old values never read) */
static void linear_backward_beta(float *dinp, float beta, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, int M, int K, int N) {
    if (dinp && !packed_product(dinp, NULL, dout, w, 0, NULL, beta != 0.0f ? dinp : NULL, M, N,
                                K, 0))
        ops_sgemm(0, 0, M, K, N, 1.0f, dout, N, w, K, beta, dinp, K);
    weight_grads(dw, db, dout, inp, M, K, N);
}

void linear_backward_packed(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *wp, int M, int K, int N) {
    JEPA_ASSERT(ops_packed());
    packed_run(prof_now(), 0, dinp, NULL, dout, wp, NULL, NULL, M, N, K, 0);
    weight_grads(dw, db, dout, inp, M, K, N);
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

/* gelu.h defines the function (gelu_f, v_gelu) and its derivative */

void gelu_forward(float *out, const float *inp, size_t n) {
    double t0 = prof_now();
    long nv = (long)(n / VW);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < nv; i++) v_store(out + i * VW, v_gelu(v_load(inp + i * VW)));
    for (size_t i = (size_t)nv * VW; i < n; i++) out[i] = gelu_f(inp[i]);
    prof_kernel_add(PROF_K_GELU, t0);
}

void linear_gelu_forward(float *pre, float *out, const float *inp, const float *w,
                         const float *b, int M, int K, int N) {
    if (packed_product(out, pre, inp, w, 1, b, NULL, M, K, N, 1)) return; /* GELU in the tile */
    ops_sgemm(0, 1, M, N, K, 1.0f, inp, K, w, K, 0.0f, pre, N);
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *p = pre + (size_t)i * N, *o = out + (size_t)i * N;
        int j = 0;
        for (; j + VW <= N; j += VW) {
            vfl x = v_load(p + j) + v_load(b + j);
            v_store(p + j, x);
            v_store(o + j, v_gelu(x));
        }
        if (j < N) { /* the row's tail: masked lanes, the same operations */
            vfl x = v_load_n(p + j, N - j) + v_load_n(b + j, N - j);
            v_store_n(p + j, x, N - j);
            v_store_n(o + j, v_gelu(x), N - j);
        }
    }
    prof_kernel_add(PROF_K_GELU, t0);
}

/* vectors of GELU a lockstep group takes (gelu.h): 8 chains in flight */
#define GELU_GROUP 8

/* d = gelu'(inp) * d in place */
void gelu_backward_inplace(float *d, const float *inp, size_t n) {
    double t0 = prof_now();
    long ng = (long)(n / (VW * GELU_GROUP));
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < ng; i++) {
        const float *x = inp + i * VW * GELU_GROUP;
        float *di = d + i * VW * GELU_GROUP;
        vfl xv[GELU_GROUP], g[GELU_GROUP];
        for (int k = 0; k < GELU_GROUP; k++) xv[k] = v_load(x + k * VW);
        v_gelu_grad_n(xv, g, GELU_GROUP);
        for (int k = 0; k < GELU_GROUP; k++) v_store(di + k * VW, g[k] * v_load(di + k * VW));
    }
    size_t nv = n / VW;
    for (size_t i = (size_t)ng * GELU_GROUP; i < nv; i++)
        v_store(d + i * VW, v_gelu_grad(v_load(inp + i * VW)) * v_load(d + i * VW));
    for (size_t i = nv * VW; i < n; i++) d[i] = gelu_grad_f(inp[i]) * d[i];
    prof_kernel_add(PROF_K_GELU, t0);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    double t0 = prof_now();
    long nv = (long)(n / VW);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < nv; i++)
        v_store(dinp + i * VW, v_load(dinp + i * VW) +
                                   v_gelu_grad(v_load(inp + i * VW)) * v_load(dout + i * VW));
    for (size_t i = (size_t)nv * VW; i < n; i++) dinp[i] += gelu_grad_f(inp[i]) * dout[i];
    prof_kernel_add(PROF_K_GELU, t0);
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

#define LOSS_PARTS 64

double loss_forward_backward(float *dpred, const float *pred, const float *target,
                             size_t n, loss_kind kind, float beta) {
    /* the sum in LOSS_PARTS fixed parts added in order: threaded, and the
     * same bits at any thread count */
    double part[LOSS_PARTS];
    size_t per = (n + LOSS_PARTS - 1) / LOSS_PARTS;
    float inv = 1.0f / (float)n;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int q = 0; q < LOSS_PARTS; q++) {
        size_t lo = (size_t)q * per < n ? (size_t)q * per : n;
        size_t hi = lo + per < n ? lo + per : n;
        double sum = 0.0;
        for (size_t i = lo; i < hi; i++) {
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
        part[q] = sum;
    }
    double sum = 0.0;
    for (int q = 0; q < LOSS_PARTS; q++) sum += part[q];
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

void mean_rows(float *out, const float *x, int S, int T, int D) {
    #pragma omp parallel for schedule(static) if (S > 1)
    for (int s = 0; s < S; s++) {
        float *f = out + (size_t)s * D;
        for (int c = 0; c < D; c++) f[c] = 0.0f;
        for (int t = 0; t < T; t++) {
            const float *r = x + ((size_t)s * T + t) * D;
            for (int c = 0; c < D; c++) f[c] += r[c];
        }
        for (int c = 0; c < D; c++) f[c] /= T;
    }
}

void col_moments_sum(double *s, const float *x, int n, int dim, void (*sum)(double *p, size_t n)) {
    /* column sums taken row by row over blocks of columns: the rows stream
     * through the cache once, and each column's sums are the same additions
     * in the same order as a walk down the column */
    enum { COLS = 256 };
    double *s2 = s + dim;
    memset(s, 0, sizeof(double) * (2 * (size_t)dim + 1));
    for (int c0 = 0; c0 < dim; c0 += COLS) {
        int w = dim - c0 < COLS ? dim - c0 : COLS;
        for (int i = 0; i < n; i++) {
            const float *r = x + (size_t)i * dim + c0;
            for (int c = 0; c < w; c++) {
                double v = r[c];
                s[c0 + c] += v;
                s2[c0 + c] += v * v;
            }
        }
    }
    s[2 * dim] = n;
    if (sum) sum(s, 2 * (size_t)dim + 1); /* the other ranks' rows */
}

double col_std_mean_sum(const float *x, int n, int dim, void (*sum)(double *p, size_t n), double *s) {
    double acc = 0.0;
    col_moments_sum(s, x, n, dim, sum);
    for (int c = 0; c < dim; c++) {
        double mu = s[c] / s[2 * dim], var = s[dim + c] / s[2 * dim] - mu * mu;
        acc += sqrt(var > 0 ? var : 0);
    }
    return acc / dim;
}

double col_std_mean(const float *x, int n, int dim) {
    double *s = JEPA_MALLOC(sizeof(double) * (2 * (size_t)dim + 1));
    double v = col_std_mean_sum(x, n, dim, NULL, s);
    jepa_free(s);
    return v;
}
