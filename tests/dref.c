/* dref.c - double-precision reference layers (dref.h). */
#include "dref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double *dref_tensor(const jepa_model *m, const double *base, const char *name) {
    const jepa_tensor *t = jepa_tensor_find(m, name);
    JEPA_ASSERT(t);
    return base + t->offset;
}

void dref_linear(double *out, const double *x, const double *w, const double *b, int M, int K,
                 int N) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = b ? b[j] : 0;
            for (int k = 0; k < K; k++) s += x[(size_t)i * K + k] * w[(size_t)j * K + k];
            out[(size_t)i * N + j] = s;
        }
}

void dref_layernorm(double *x, const double *w, const double *b, int M, int C) {
    for (int i = 0; i < M; i++) {
        double mu = 0, v = 0, *r = x + (size_t)i * C;
        for (int c = 0; c < C; c++) mu += r[c];
        mu /= C;
        for (int c = 0; c < C; c++) v += (r[c] - mu) * (r[c] - mu);
        v /= C;
        for (int c = 0; c < C; c++) {
            r[c] = (r[c] - mu) / sqrt(v + 1e-6);
            if (w) r[c] = r[c] * w[c] + b[c];
        }
    }
}

void dref_gelu(double *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
}

void dref_block(double *x, const jepa_model *m, const double *base, const char *pre, int l, int S,
                int T, int C, int H, int causal) {
    char n[64];
#define W(leaf) (snprintf(n, sizeof n, "%s.%d.%s", pre, l, leaf), dref_tensor(m, base, n))
    int M = S * T, hd = C / H, Hd = 4 * C;
    JEPA_ASSERT(T <= 256);
    double *a = malloc(sizeof(double) * M * C), *qkv = malloc(sizeof(double) * M * 3 * C);
    double *o = malloc(sizeof(double) * M * C), *h1 = malloc(sizeof(double) * M * Hd);
    double *t = malloc(sizeof(double) * M * C), sc[256];
    memcpy(a, x, sizeof(double) * M * C);
    dref_layernorm(a, W("ln1.w"), W("ln1.b"), M, C);
    dref_linear(qkv, a, W("qkv.w"), W("qkv.b"), M, C, 3 * C);
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double mx = -1e300, sum = 0;
                int Tj = causal ? i + 1 : T; /* keys this query sees */
                for (int j = 0; j < Tj; j++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++)
                        d += qkv[(s * T + i) * 3 * C + h * hd + e] * qkv[(s * T + j) * 3 * C + C + h * hd + e];
                    sc[j] = d / sqrt((double)hd);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j < Tj; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double v = 0;
                    for (int j = 0; j < Tj; j++) v += sc[j] / sum * qkv[(s * T + j) * 3 * C + 2 * C + h * hd + e];
                    o[(s * T + i) * C + h * hd + e] = v;
                }
            }
    dref_linear(t, o, W("proj.w"), W("proj.b"), M, C, C);
    for (int i = 0; i < M * C; i++) x[i] += t[i];
    memcpy(a, x, sizeof(double) * M * C);
    dref_layernorm(a, W("ln2.w"), W("ln2.b"), M, C);
    dref_linear(h1, a, W("fc1.w"), W("fc1.b"), M, C, Hd);
    dref_gelu(h1, (size_t)M * Hd);
    dref_linear(t, h1, W("fc2.w"), W("fc2.b"), M, Hd, C);
    for (int i = 0; i < M * C; i++) x[i] += t[i];
#undef W
    free(a); free(qkv); free(o); free(h1); free(t);
}

void dref_encode_pooled_side(double *out, const jepa_model *m, const double *base,
                             const double *img, int S, int side, const float *pos) {
    const jepa_dims *d = &m->dims;
    const int p = d->patch, G = side / p, N = G * G, D = d->D;
    JEPA_ASSERT(side % p == 0);
    double *x = malloc(sizeof(double) * S * N * D);
    const double *pw = dref_tensor(m, base, "enc.patch.w"), *pb = dref_tensor(m, base, "enc.patch.b");
    for (int s = 0; s < S; s++)
        for (int t = 0; t < N; t++) {
            int gy = t / G, gx = t % G;
            for (int o = 0; o < D; o++) {
                double v = pb[o];
                for (int ch = 0; ch < d->ch; ch++)
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++)
                            v += img[(((size_t)s * d->ch + ch) * side + gy * p + py) * side + gx * p + px] *
                                 pw[((o * d->ch + ch) * p + py) * p + px];
                x[((size_t)s * N + t) * D + o] = v + pos[t * D + o];
            }
        }
    for (int l = 0; l < d->depth; l++) dref_block(x, m, base, "enc", l, S, N, D, d->heads, 0);
    dref_layernorm(x, dref_tensor(m, base, "enc.norm.w"), dref_tensor(m, base, "enc.norm.b"), S * N, D);
    for (int s = 0; s < S; s++)
        for (int o = 0; o < D; o++) {
            double v = 0;
            for (int t = 0; t < N; t++) v += x[((size_t)s * N + t) * D + o];
            out[(size_t)s * D + o] = v / N;
        }
    free(x);
}

void dref_encode_pooled(double *out, const jepa_model *m, const double *base, const double *img,
                        int S, const float *pos) {
    dref_encode_pooled_side(out, m, base, img, S, m->dims.img, pos);
}

double dref_sigreg(const double *z, int G, int N, int E, const float *dirs, int M, int K,
                   double T) {
    const double dt = T / (K - 1);
    double *x = malloc(sizeof(double) * (N > 0 ? N : 1)), total = 0;
    for (int g = 0; g < G; g++)
        for (int a = 0; a < M; a++) {
            for (int n = 0; n < N; n++) {
                x[n] = 0;
                for (int j = 0; j < E; j++)
                    x[n] += (double)dirs[(size_t)a * E + j] * z[((size_t)g * N + n) * E + j];
            }
            double ep = 0;
            for (int k = -(K - 1); k <= K - 1; k++) {
                double t = k * dt, phi = exp(-0.5 * t * t), w = (abs(k) == K - 1 ? 0.5 : 1.0) * dt;
                double cs = 0, sn = 0;
                for (int n = 0; n < N; n++) {
                    cs += cos(t * x[n]);
                    sn += sin(t * x[n]);
                }
                cs /= N;
                sn /= N;
                ep += w * phi * ((cs - phi) * (cs - phi) + sn * sn);
            }
            total += N * ep;
        }
    free(x);
    return total / ((double)G * M);
}

jepa_dims dref_small_dims(int ch, int wide) {
    jepa_spec s;
    spec_defaults(&s);
    s.model.channels = ch;
    s.model.img_size = 8;
    s.model.patch = 2;
    s.model.width = wide ? 32 : 16;
    s.model.depth = 2;
    s.model.heads = 2;
    s.model.pred_width = wide ? 16 : 8;
    s.model.pred_depth = 2;
    s.model.pred_heads = wide ? 1 : 2;
    jepa_dims d;
    char err[256];
    int rc = jepa_dims_from_spec(&d, &s, err, sizeof err);
    JEPA_ASSERT(rc == 0);
    return d;
}

mask_cfg dref_masks(void) {
    mask_cfg c = {4, 0.15, 0.2, 0.75, 1.5, 0.85, 1.0, 4, MASK_CUT_RESAMPLE, MASK_ROUND_AREA};
    return c;
}
