/* ops.c - forward/backward kernels of the ViT. Matrix products go through
 * OpenBLAS cblas_sgemm over all tokens of the batch at once; the small
 * per-head attention products, LayerNorm and GELU are plain loops written so
 * the compiler vectorises the inner loop, threaded with OpenMP over rows or
 * (image, head) pairs. No kernel allocates. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "jepa.h"
#include "prof.h"

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

void linear_backward(float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int M, int K, int N) {
    if (dinp) ops_sgemm(0, 0, M, K, N, 1.0f, dout, N, w, K, 1.0f, dinp, K);
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

/* --------------------------------------------------------------- layernorm */

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int M, int C) {
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
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

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int M, int C) {
    double t0 = prof_now();
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        float sum_g = 0.0f, sum_gx = 0.0f;
        for (int c = 0; c < C; c++) {
            float g = w ? dy[c] * w[c] : dy[c];
            sum_g += g;
            sum_gx += g * (x[c] - m) * s;
        }
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

void gelu_forward(float *out, const float *inp, size_t n) {
    double t0 = prof_now();
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = 1.0f - 2.0f / (1.0f + fast_expf(2.0f * u)); /* tanh(u) */
        out[i] = 0.5f * x * (1.0f + t);
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

size_t attention_scratch_floats(int T, int hd) {
    /* kt (hd, T) + vt (hd, T) + two rows of T + one row of hd, padded */
    return ((size_t)2 * hd * T + 2 * (size_t)T + hd + 15) & ~(size_t)15;
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
        float *kt = scratch + per * omp_get_thread_num();
        const float *base = qkv + (size_t)b * T * 3 * C;
        /* K^T for this head so the score loop runs over contiguous keys */
        for (int j = 0; j < T; j++) {
            const float *k = base + (size_t)j * 3 * C + C + h * hd;
            for (int d = 0; d < hd; d++) kt[(size_t)d * T + j] = k[d];
        }
        for (int i = 0; i < T; i++) {
            const float *q = base + (size_t)i * 3 * C + h * hd;
            float *p = att + (((size_t)b * H + h) * T + i) * T;
            for (int j = 0; j < T; j++) p[j] = 0.0f;
            for (int d = 0; d < hd; d++) {
                float qd = q[d] * scale;
                const float *kr = kt + (size_t)d * T;
                for (int j = 0; j < T; j++) p[j] += qd * kr[j];
            }
            int n = causal ? i + 1 : T;
            float mx = p[0];
            for (int j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
            float sum = 0.0f;
            for (int j = 0; j < n; j++) {
                p[j] = fast_expf(p[j] - mx);
                sum += p[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < n; j++) p[j] *= inv;
            for (int j = n; j < T; j++) p[j] = 0.0f;
            float *o = out + ((size_t)b * T + i) * C + h * hd;
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            for (int j = 0; j < n; j++) {
                const float *v = base + (size_t)j * 3 * C + 2 * C + h * hd;
                float pj = p[j];
                for (int d = 0; d < hd; d++) o[d] += pj * v[d];
            }
        }
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

void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int H, float *scratch) {
    double t0 = prof_now();
    int hd = C / H;
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = attention_scratch_floats(T, hd);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float *vt = scratch + per * omp_get_thread_num();
        float *dp = vt + (size_t)hd * T;
        const float *base = qkv + (size_t)b * T * 3 * C;
        float *dbase = dqkv + (size_t)b * T * 3 * C;
        for (int j = 0; j < T; j++) {
            const float *v = base + (size_t)j * 3 * C + 2 * C + h * hd;
            for (int d = 0; d < hd; d++) vt[(size_t)d * T + j] = v[d];
            float *dq = dbase + (size_t)j * 3 * C + h * hd;
            for (int d = 0; d < hd; d++) dq[d] = dq[C + d] = dq[2 * C + d] = 0.0f;
        }
        for (int i = 0; i < T; i++) {
            const float *p = att + (((size_t)b * H + h) * T + i) * T;
            const float *go = dout + ((size_t)b * T + i) * C + h * hd;
            /* dP = dO V^T ; dV += P^T dO */
            for (int j = 0; j < T; j++) dp[j] = 0.0f;
            for (int d = 0; d < hd; d++) {
                float g = go[d];
                const float *vr = vt + (size_t)d * T;
                for (int j = 0; j < T; j++) dp[j] += g * vr[j];
            }
            for (int j = 0; j < T; j++) {
                float *dv = dbase + (size_t)j * 3 * C + 2 * C + h * hd;
                float pj = p[j];
                for (int d = 0; d < hd; d++) dv[d] += pj * go[d];
            }
            /* softmax backward, then the score scale */
            float dot = 0.0f;
            for (int j = 0; j < T; j++) dot += p[j] * dp[j];
            for (int j = 0; j < T; j++) dp[j] = p[j] * (dp[j] - dot) * scale;
            /* dQ_i = dS K ; dK += dS^T Q_i */
            const float *q = base + (size_t)i * 3 * C + h * hd;
            float *dq = dbase + (size_t)i * 3 * C + h * hd;
            for (int j = 0; j < T; j++) {
                const float *k = base + (size_t)j * 3 * C + C + h * hd;
                float *dk = dbase + (size_t)j * 3 * C + C + h * hd;
                float s = dp[j];
                for (int d = 0; d < hd; d++) {
                    dq[d] += s * k[d];
                    dk[d] += s * q[d];
                }
            }
        }
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
    double acc = 0.0;
    for (int c = 0; c < dim; c++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < n; i++) {
            double v = x[(size_t)i * dim + c];
            s += v;
            s2 += v * v;
        }
        double mu = s / n, var = s2 / n - mu * mu;
        acc += sqrt(var > 0 ? var : 0);
    }
    return acc / dim;
}
