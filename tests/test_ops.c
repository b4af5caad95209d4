/* test_ops.c - every kernel with a backward pass against an independent
 * oracle: a naive double-precision forward written here, differentiated by
 * central differences in double (h = 1e-6). Each check also compares the
 * float forward with the double one.
 *
 * Scalar loss: L = sum(out * R) for a fixed random R, so dL/dout = R.
 * Bound, per element: |analytic - numeric| <= 1e-3 |numeric| + 1e-5 max|numeric|
 * (float kernels against a double oracle; the floor keeps near-zero entries
 * from failing on float rounding). Forward: max abs diff <= 1e-4 (scaled). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "jepa.h"
#include "prof.h"
#include "testutil.h"
#include "vec.h"

#define H_FD 1e-6
#define M_PI_VAL 3.14159265358979323846

static jepa_rng R;

static void fill(float *p, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(rng_normal(&R) * scale);
}
static double *to_d(const float *p, size_t n) {
    double *d = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) d[i] = p[i];
    return d;
}

/* Returns worst err/tol (<= 1 passes); prints a line per tensor. */
static double grad_compare(const char *what, const float *a, const double *num, size_t n) {
    double maxn = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) maxn = fmax(maxn, fabs(num[i]));
    size_t nonfinite = 0; /* fmax ignores NaN: count them apart */
    for (size_t i = 0; i < n; i++) {
        double tol = 1e-3 * fabs(num[i]) + 1e-5 * maxn + 1e-12;
        worst = fmax(worst, fabs(a[i] - num[i]) / tol);
        nonfinite += !isfinite(a[i]) || !isfinite(num[i]);
    }
    CU_ASSERT_EQUAL(nonfinite, 0);
    printf("\n    %-22s n=%-6zu max|g|=%.3e worst err/tol=%.3f", what, n, maxn, worst);
    CU_ASSERT(maxn > 0.0); /* a zero gradient everywhere would check nothing */
    return worst;
}

static void fwd_compare(const char *what, const float *out, const double *ref, size_t n) {
    double maxr = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) maxr = fmax(maxr, fabs(ref[i]));
    size_t nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(out[i] - ref[i]));
        nonfinite += !isfinite(out[i]) || !isfinite(ref[i]);
    }
    CU_ASSERT_EQUAL(nonfinite, 0);
    printf("\n    %-22s forward max|diff|=%.2e (max|ref| %.2e)", what, worst, maxr);
    CU_ASSERT(worst <= 1e-4 * fmax(1.0, maxr));
}

/* numeric gradient of f wrt x[0..n) via central differences in double */
typedef double (*loss_fn)(void *ctx);
static void numeric_grad(double *g, double *x, size_t n, loss_fn f, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        double s = x[i];
        x[i] = s + H_FD;
        double lp = f(ctx);
        x[i] = s - H_FD;
        double lm = f(ctx);
        x[i] = s;
        g[i] = (lp - lm) / (2 * H_FD);
    }
}

/* ----------------------------------------------------------------- linear */
typedef struct { int M, K, N; double *x, *w, *b, *r, *out; } lin_ctx;
static double lin_ref(void *p) {
    lin_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double s = c->b[j];
            for (int k = 0; k < c->K; k++) s += c->x[i * c->K + k] * c->w[j * c->K + k];
            if (c->out) c->out[i * c->N + j] = s;
            L += s * c->r[i * c->N + j];
        }
    return L;
}

/* Against the double oracle at (M, K, N); lin_tag names the path. */
static const char *lin_tag = "sgemm";
static void check_linear(int M, int K, int N) {
    size_t nx = (size_t)M * K, nw = (size_t)N * K, no = (size_t)M * N;
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * N), *r = malloc(sizeof(float) * no);
    float *out = malloc(sizeof(float) * no), *dx = calloc(nx, sizeof(float));
    float *dw = calloc(nw, sizeof(float)), *db = calloc(N, sizeof(float));
    fill(x, nx, 1); fill(w, nw, 0.5); fill(b, N, 0.5); fill(r, no, 1);
    linear_forward(out, x, w, b, M, K, N);
    linear_backward(dx, dw, db, r, x, w, M, K, N);
    lin_ctx c = {M, K, N, to_d(x, nx), to_d(w, nw), to_d(b, N), to_d(r, no), NULL};
    double *ref = malloc(sizeof(double) * no), *g = malloc(sizeof(double) * (nx > nw ? nx : nw));
    c.out = ref; lin_ref(&c); c.out = NULL;
    printf("\n    [%s %dx%dx%d]", lin_tag, M, K, N);
    fwd_compare("linear", out, ref, no);
    numeric_grad(g, c.x, nx, lin_ref, &c); CU_ASSERT(grad_compare("linear dinp", dx, g, nx) <= 1);
    numeric_grad(g, c.w, nw, lin_ref, &c); CU_ASSERT(grad_compare("linear dw", dw, g, nw) <= 1);
    numeric_grad(g, c.b, N, lin_ref, &c); CU_ASSERT(grad_compare("linear db", db, g, N) <= 1);
    /* linear_backward_set writes dinp over garbage, accumulates dw; and
     * linear_backward adds to what dinp holds */
    float *dx2 = malloc(sizeof(float) * nx), *dw2 = calloc(nw, sizeof(float));
    for (size_t i = 0; i < nx; i++) dx2[i] = 1e3f;
    linear_backward_set(dx2, dw2, NULL, r, x, w, M, K, N);
    numeric_grad(g, c.x, nx, lin_ref, &c); CU_ASSERT(grad_compare("linear_set dinp", dx2, g, nx) <= 1);
    numeric_grad(g, c.w, nw, lin_ref, &c); CU_ASSERT(grad_compare("linear_set dw", dw2, g, nw) <= 1);
    for (size_t i = 0; i < nx; i++) dx2[i] = 2.0f;
    linear_backward(dx2, NULL, NULL, r, x, w, M, K, N);
    for (size_t i = 0; i < nx; i++) dx2[i] -= 2.0f;
    numeric_grad(g, c.x, nx, lin_ref, &c);
    CU_ASSERT(grad_compare("linear dinp += ", dx2, g, nx) <= 1);
    /* linear_residual_forward in place: out = res + x w^T + b over res */
    float *res = malloc(sizeof(float) * no);
    fill(res, no, 1);
    double *rr = malloc(sizeof(double) * no);
    for (size_t i = 0; i < no; i++) rr[i] = ref[i] + res[i];
    linear_residual_forward(res, res, x, w, b, M, K, N);
    fwd_compare("linear_residual", res, rr, no);
    free(res); free(rr); free(dx2); free(dw2);
    free(x); free(w); free(b); free(r); free(out); free(dx); free(dw); free(db);
    free(c.x); free(c.w); free(c.b); free(c.r); free(ref); free(g);
}

/* on cblas_sgemm (nothing reserved), then on packed weights: sizes that
 * cross the 12-row tiles and the 32-column panels either way round */
static void test_linear(void) {
    ops_pack_reserve(0);
    lin_tag = "sgemm";
    check_linear(7, 5, 6);
    check_linear(13, 37, 40);
    ops_pack_reserve(64 * 64);
    lin_tag = "packed";
    check_linear(7, 5, 6);
    check_linear(13, 37, 40);
    check_linear(29, 33, 64);
    /* row counts whose last block of AVX2's 6-row tiles holds 3 and 4 rows
     * (rows_strip's remainder cases; 7, 13 and 29 leave 1, 1 and 5) */
    check_linear(9, 16, 24);
    check_linear(10, 16, 24);
    ops_pack_reserve(0);
}

/* linear_dw over several chunks of rows (ops_dw.c takes 128 at a time),
 * dW rows past a multiple of 8 and columns past a multiple of 16, against
 * a double product, db against double column sums; accumulates into what
 * dw and db hold; 1 and 2 threads bitwise equal (each element one tile's) */
static void test_linear_dw(void) {
    const int M = 300, N = 20, K = 45;
    float *dy = malloc(sizeof(float) * M * N), *x = malloc(sizeof(float) * M * K);
    float *dw = malloc(sizeof(float) * N * K), *dw2 = malloc(sizeof(float) * N * K);
    fill(dy, (size_t)M * N, 1); fill(x, (size_t)M * K, 1); fill(dw, (size_t)N * K, 1);
    memcpy(dw2, dw, sizeof(float) * N * K);
    double *ref = malloc(sizeof(double) * N * K);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double a = dw[n * K + k];
            for (int m = 0; m < M; m++) a += (double)dy[m * N + n] * x[m * K + k];
            ref[n * K + k] = a;
        }
    omp_set_num_threads(1);
    float db[20], db2[20];
    double rb[20];
    for (int n = 0; n < N; n++) {
        db[n] = db2[n] = (float)n;
        rb[n] = n;
        for (int m = 0; m < M; m++) rb[n] += dy[m * N + n];
    }
    linear_dw(dw, db, dy, x, M, N, K);
    omp_set_num_threads(2);
    linear_dw(dw2, db2, dy, x, M, N, K);
    omp_set_num_threads(1);
    fwd_compare("linear_dw", dw, ref, (size_t)N * K);
    fwd_compare("linear_dw db", db, rb, (size_t)N);
#if defined(__AVX512F__) /* elsewhere dW is cblas_sgemm's, split by its own threads */
    CU_ASSERT(memcmp(dw, dw2, sizeof(float) * N * K) == 0);
    CU_ASSERT(memcmp(db, db2, sizeof(float) * N) == 0);
#endif
    free(dy); free(x); free(dw); free(dw2); free(ref);
}

/* linear_gelu_forward: pre against the double product, out against GELU of
 * it (tanh form, double); its backward is gelu_backward + linear_backward */
static void test_linear_gelu(void) {
    int M = 9, K = 37, N = 43; /* N: whole vectors and a tail for every VW */
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), b[43];
    float *pre = malloc(sizeof(float) * M * N), *out = malloc(sizeof(float) * M * N);
    fill(x, (size_t)M * K, 0.5); fill(w, (size_t)N * K, 0.3); fill(b, N, 0.5);
    ops_pack_reserve(0);
    linear_gelu_forward(pre, out, x, w, b, M, K, N);
    double *rp = malloc(sizeof(double) * M * N), *ro = malloc(sizeof(double) * M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = b[j];
            for (int k = 0; k < K; k++) a += (double)x[i * K + k] * w[j * K + k];
            rp[i * N + j] = a;
            ro[i * N + j] = 0.5 * a * (1 + tanh(sqrt(2 / M_PI_VAL) * (a + 0.044715 * a * a * a)));
        }
    fwd_compare("linear_gelu pre", pre, rp, (size_t)M * N);
    fwd_compare("linear_gelu out", out, ro, (size_t)M * N);
    ops_pack_reserve(64 * 64); /* then the packed product, GELU in its tile */
    linear_gelu_forward(pre, out, x, w, b, M, K, N);
    fwd_compare("linear_gelu pre, packed", pre, rp, (size_t)M * N);
    fwd_compare("linear_gelu out, packed", out, ro, (size_t)M * N);
    ops_pack_reserve(0);
    free(x); free(w); free(pre); free(out); free(rp); free(ro);
}

/* -------------------------------------------------------------- layernorm */
typedef struct { int M, C; double *x, *w, *b, *r, *out; } ln_ctx;
static double ln_ref(void *p) {
    ln_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->M; i++) {
        double m = 0, v = 0;
        for (int k = 0; k < c->C; k++) m += c->x[i * c->C + k];
        m /= c->C;
        for (int k = 0; k < c->C; k++) v += pow(c->x[i * c->C + k] - m, 2);
        v /= c->C;
        for (int k = 0; k < c->C; k++) {
            double y = (c->x[i * c->C + k] - m) / sqrt(v + 1e-6);
            if (c->w) y = y * c->w[k] + c->b[k];
            if (c->out) c->out[i * c->C + k] = y;
            L += y * c->r[i * c->C + k];
        }
    }
    return L;
}

/* C = 8 and 37: below one vector and across vectors with a tail */
static void check_layernorm(int M, int C) {
    int n = M * C;
    for (int affine = 1; affine >= 0; affine--) {
        float *x = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
        float *out = malloc(sizeof(float) * n), *dx = calloc((size_t)n, sizeof(float));
        float *w = malloc(sizeof(float) * C), *b = malloc(sizeof(float) * C);
        float *dw = calloc((size_t)C, sizeof(float)), *db = calloc((size_t)C, sizeof(float));
        float *mean = malloc(sizeof(float) * M), *rstd = malloc(sizeof(float) * M);
        fill(x, n, 2); fill(w, C, 1); fill(b, C, 1); fill(r, n, 1);
        for (int i = 0; i < n; i++) x[i] += 0.5f; /* non-zero row means */
        layernorm_forward(out, mean, rstd, x, affine ? w : NULL, affine ? b : NULL, M, C);
        layernorm_backward(dx, affine ? dw : NULL, affine ? db : NULL, r, x, affine ? w : NULL,
                           mean, rstd, M, C);
        ln_ctx c = {M, C, to_d(x, n), affine ? to_d(w, C) : NULL, affine ? to_d(b, C) : NULL,
                    to_d(r, n), NULL};
        double *ref = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n);
        c.out = ref; ln_ref(&c); c.out = NULL;
        fwd_compare(affine ? "layernorm" : "layernorm (no affine)", out, ref, n);
        numeric_grad(g, c.x, n, ln_ref, &c);
        CU_ASSERT(grad_compare(affine ? "layernorm dinp" : "layernorm-na dinp", dx, g, n) <= 1);
        if (affine) {
            numeric_grad(g, c.w, C, ln_ref, &c);
            CU_ASSERT(grad_compare("layernorm dw", dw, g, C) <= 1);
            numeric_grad(g, c.b, C, ln_ref, &c);
            CU_ASSERT(grad_compare("layernorm db", db, g, C) <= 1);
        }
        free(c.x); free(c.w); free(c.b); free(c.r); free(ref); free(g);
        free(x); free(r); free(out); free(dx); free(w); free(b); free(dw); free(db);
        free(mean); free(rstd);
    }
}

static void test_layernorm(void) {
    check_layernorm(5, 8);
    check_layernorm(3, 37);
}

/* ------------------------------------------------------------------- gelu */
typedef struct { int n; double *x, *r, *out; } gelu_ctx;
static double gelu_ref(void *p) {
    gelu_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        double x = c->x[i];
        double y = 0.5 * x * (1 + tanh(sqrt(2 / M_PI_VAL) * (x + 0.044715 * x * x * x)));
        if (c->out) c->out[i] = y;
        L += y * c->r[i];
    }
    return L;
}


static void test_gelu(void) {
    /* whole lockstep groups of 8 vectors, single vectors and a scalar tail
     * for every VW (AVX2: 2 groups, 2 vectors, 3 floats) */
    enum { n = 147 };
    float x[n], r[n], out[n], dx[n] = {0};
    fill(x, n, 2.5); fill(r, n, 1);
    x[0] = 0.0f; x[1] = 12.0f; x[2] = -12.0f; /* saturated ends */
    gelu_forward(out, x, n);
    gelu_backward(dx, x, r, n);
    gelu_ctx c = {n, to_d(x, n), to_d(r, n), NULL};
    double ref[n], g[n];
    c.out = ref; gelu_ref(&c); c.out = NULL;
    fwd_compare("gelu", out, ref, n);
    numeric_grad(g, c.x, n, gelu_ref, &c);
    CU_ASSERT(grad_compare("gelu dinp", dx, g, n) <= 1);
    float d2[n];
    memcpy(d2, r, sizeof d2);
    gelu_backward_inplace(d2, x, n);
    CU_ASSERT(grad_compare("gelu inplace", d2, g, n) <= 1);
    /* the lockstep groups, single vectors and the scalar tail give the
     * same bits: shifted by one, x[n - 3] moves from the tail into the
     * body and (AVX2) x[128] from a single vector into a group */
    float o2[n], dx2[n] = {0}, d3[n];
    memcpy(d3, r, sizeof d3);
    gelu_forward(o2, x + 1, n - 1);
    gelu_backward(dx2, x + 1, r + 1, n - 1);
    gelu_backward_inplace(d3 + 1, x + 1, n - 1);
    CU_ASSERT(memcmp(o2, out + 1, sizeof(float) * (n - 1)) == 0);
    CU_ASSERT(memcmp(dx2, dx + 1, sizeof(float) * (n - 1)) == 0);
    CU_ASSERT(memcmp(d3 + 1, d2 + 1, sizeof(float) * (n - 1)) == 0);
    free(c.x); free(c.r);
}

/* -------------------------------------------------------------- attention */
typedef struct { int B, T, C, H; double *qkv, *r, *out; int causal; } att_ctx;
static double att_ref(void *p) {
    att_ctx *c = p;
    int hd = c->C / c->H, C3 = 3 * c->C;
    double L = 0, s[64];
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->T; i++) {
                const double *q = c->qkv + (b * c->T + i) * C3 + h * hd;
                double mx = -1e300, sum = 0;
                int n = c->causal ? i + 1 : c->T; /* causal: keys 0..i only */
                for (int j = 0; j < n; j++) {
                    const double *k = c->qkv + (b * c->T + j) * C3 + c->C + h * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += q[e] * k[e];
                    s[j] = d / sqrt((double)hd);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = 0; j < n; j++)
                        o += s[j] / sum * c->qkv[(b * c->T + j) * C3 + 2 * c->C + h * hd + e];
                    if (c->out) c->out[(b * c->T + i) * c->C + h * hd + e] = o;
                    L += o * c->r[(b * c->T + i) * c->C + h * hd + e];
                }
            }
    return L;
}

/* Against the double oracle; then the same call at 2 threads must be bitwise
 * equal (each (image, head) is one thread's, summed in a fixed order). */
static void check_attention(int B, int T, int C, int H, int causal) {
    int n = B * T * 3 * C, no = B * T * C;
    float *qkv = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * no);
    float *out = malloc(sizeof(float) * no), *att = malloc(sizeof(float) * B * H * T * T);
    float *dqkv = malloc(sizeof(float) * n);
    float *scratch = malloc(sizeof(float) * attention_scratch_floats(T, C / H) * 64);
    float *out2 = malloc(sizeof(float) * no), *dqkv2 = malloc(sizeof(float) * n);
    fill(qkv, n, 1.0); fill(r, no, 1);
    for (int threads = 2; threads >= 1; threads--) {
        omp_set_num_threads(threads);
        float *o = threads == 1 ? out : out2, *dq = threads == 1 ? dqkv : dqkv2;
        for (int i = 0; i < n; i++) dq[i] = 123.0f; /* backward must overwrite, not add */
        if (causal) attention_forward_causal(o, att, qkv, B, T, C, H, scratch);
        else attention_forward(o, att, qkv, B, T, C, H, scratch);
        attention_backward(dq, r, qkv, att, B, T, C, H, scratch);
    }
    CU_ASSERT(memcmp(out, out2, sizeof(float) * no) == 0);
    CU_ASSERT(memcmp(dqkv, dqkv2, sizeof(float) * n) == 0);
    free(out2); free(dqkv2);
    att_ctx c = {B, T, C, H, to_d(qkv, n), to_d(r, no), NULL, causal};
    double *ref = malloc(sizeof(double) * no), *g = malloc(sizeof(double) * n);
    c.out = ref; att_ref(&c); c.out = NULL;
    fwd_compare("attention", out, ref, no);
    /* each probability row sums to one */
    double worst = 0;
    for (int i = 0; i < B * H * T; i++) {
        double s = 0;
        for (int j = 0; j < T; j++) s += att[i * T + j];
        worst = fmax(worst, fabs(s - 1));
    }
    CU_ASSERT(worst < 1e-5);
    /* causal: exact zeros above the diagonal (the backward relies on them),
     * and the first query sees only itself */
    int above = 0;
    for (int bh = 0; causal && bh < B * H; bh++)
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++) above += att[((size_t)bh * T + i) * T + j] != 0.0f;
    CU_ASSERT_EQUAL(above, 0);
    if (causal) CU_ASSERT_EQUAL(att[0], 1.0f);
    numeric_grad(g, c.qkv, n, att_ref, &c);
    CU_ASSERT(grad_compare(causal ? "causal attention dqkv" : "attention dqkv", dqkv, g, n) <= 1);
    free(qkv); free(r); free(out); free(att); free(dqkv); free(scratch);
    free(c.qkv); free(c.r); free(ref); free(g);
}

/* tiny heads; then sizes that cross the kernel's vector and row blocks
 * (hd 20 and 16, T 19 and 37: padded columns, remainder rows); hd 32 and
 * 16 are whole vectors (read and written in place), hd 20 and 4 are not
 * (packed copies); T 49 and 33 end rows one lane past a vector */
static void test_attention(void) {
    check_attention(2, 5, 8, 2, 0);
    check_attention(2, 19, 40, 2, 0);
    check_attention(1, 37, 48, 3, 0);
    check_attention(1, 49, 64, 2, 0);
    check_attention(2, 33, 32, 2, 0);
}
/* the world model's frame-causal predictor */
static void test_attention_causal(void) {
    check_attention(2, 5, 8, 2, 1);
    check_attention(1, 19, 40, 2, 1);
    check_attention(1, 37, 32, 2, 1);
}

/* The listed-queries form against the full one (checked above against the
 * double oracle) with d(out) zero on the other rows: outputs and the
 * probabilities bitwise, every d(qkv) equal and written (NaN-filled first).
 * mode 0: about half the rows, image 1 none; 1: every row; 2: one per image. */
static int check_attention_rows(int B, int T, int C, int H, int mode) {
    int M = B * T, hd = C / H, n = 0, ok = 1;
    size_t per = attention_scratch_floats(T, hd) * (size_t)omp_get_max_threads();
    int *rows = malloc(sizeof(int) * M);
    for (int r = 0; r < M; r++) {
        int b = r / T, t = r % T;
        if (mode == 1 || (mode == 2 && t == (b * 7) % T) ||
            (mode == 0 && b != 1 && rng_uniform(&R) < 0.5))
            rows[n++] = r;
    }
    if (n == 0) rows[n++] = 0;
    float *qkv = malloc(sizeof(float) * M * 3 * C), *sc = malloc(sizeof(float) * per);
    float *of = malloc(sizeof(float) * M * C), *af = malloc(sizeof(float) * M * H * T);
    float *orr = malloc(sizeof(float) * n * C), *ar = malloc(sizeof(float) * n * H * T);
    float *dof = calloc((size_t)M * C, sizeof(float)), *dor = malloc(sizeof(float) * n * C);
    float *gf = malloc(sizeof(float) * M * 3 * C), *gr = malloc(sizeof(float) * M * 3 * C);
    fill(qkv, (size_t)M * 3 * C, 1.0);
    attention_forward(of, af, qkv, B, T, C, H, sc);
    attention_forward_rows(orr, ar, qkv, B, T, C, H, rows, n, sc);
    for (int lo = 0, b = 0; b < B; b++) { /* image b's rows, then its heads' probabilities */
        int nb = 0;
        while (lo + nb < n && rows[lo + nb] < (b + 1) * T) nb++;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < nb; i++)
                ok &= !memcmp(af + (((size_t)b * H + h) * T + rows[lo + i] - b * T) * T,
                              ar + ((size_t)lo * H + (size_t)h * nb + i) * T, sizeof(float) * T);
        lo += nb;
    }
    for (int k = 0; k < n; k++) {
        ok &= !memcmp(of + (size_t)rows[k] * C, orr + (size_t)k * C, sizeof(float) * C);
        for (int c = 0; c < C; c++)
            dor[(size_t)k * C + c] = dof[(size_t)rows[k] * C + c] = (float)rng_normal(&R);
    }
    attention_forward_rows(orr, NULL, qkv, B, T, C, H, rows, n, sc); /* no probabilities kept */
    for (int k = 0; k < n; k++)
        ok &= !memcmp(of + (size_t)rows[k] * C, orr + (size_t)k * C, sizeof(float) * C);
    for (int i = 0; i < M * 3 * C; i++) gr[i] = NAN;
    attention_backward(gf, dof, qkv, af, B, T, C, H, sc);
    attention_backward_rows(gr, dor, qkv, ar, B, T, C, H, rows, n, sc);
    for (int i = 0; i < M * 3 * C; i++) ok &= gf[i] == gr[i]; /* NaN never equals */
    if (!ok) printf("\n    attention rows differ: B %d T %d C %d H %d mode %d", B, T, C, H, mode);
    free(rows); free(qkv); free(sc); free(of); free(af); free(orr); free(ar);
    free(dof); free(dor); free(gf); free(gr);
    return ok;
}

static void test_attention_rows(void) {
    static const int hds[] = {4, 8, 16, 20, 32};
    int cases = 0, good = 0;
    for (int T = 1; T <= 41; T += 2)
        for (size_t q = 0; q < sizeof hds / sizeof hds[0]; q++)
            for (int H = 1; H <= 2; H++)
                for (int mode = 0; mode < 3; mode++, cases++)
                    good += check_attention_rows(3, T, hds[q] * H, H, mode);
    good += check_attention_rows(8, 35, 64, 4, 0); /* the predictor's heads */
    good += check_attention_rows(4, 49, 128, 4, 0); /* the target's */
    printf("\n    %d of %d shapes equal the full attention", good, cases + 2);
    CU_ASSERT(good == cases + 2);
}

/* ------------------------------------------------------------ patch embed */
/* patchify + linear must equal a stride-p convolution (Conv2d(ch, D, p, p)) */
typedef struct { int B, Ch, S, p, D; double *img, *w, *b, *r, *out; } pe_ctx;
static double pe_ref(void *q) {
    pe_ctx *c = q;
    int G = c->S / c->p;
    double L = 0;
    for (int b = 0; b < c->B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++)
                for (int d = 0; d < c->D; d++) {
                    double s = c->b[d];
                    for (int ch = 0; ch < c->Ch; ch++)
                        for (int py = 0; py < c->p; py++)
                            for (int px = 0; px < c->p; px++)
                                s += c->img[((b * c->Ch + ch) * c->S + gy * c->p + py) * c->S +
                                            gx * c->p + px] *
                                     c->w[((d * c->Ch + ch) * c->p + py) * c->p + px];
                    int o = ((b * G + gy) * G + gx) * c->D + d;
                    if (c->out) c->out[o] = s;
                    L += s * c->r[o];
                }
    return L;
}

static void test_patch_embed(void) {
    int B = 2, Ch = 2, S = 6, p = 3, D = 4, G = 2, pd = Ch * p * p;
    int ni = B * Ch * S * S, nw = D * pd, no = B * G * G * D;
    float img[144], w[72], bb[4], r[32], patches[144], out[32], dw[72] = {0}, db[4] = {0};
    fill(img, ni, 1); fill(w, nw, 0.5); fill(bb, D, 0.5); fill(r, no, 1);
    patchify(patches, img, B, Ch, S, p);
    linear_forward(out, patches, w, bb, B * G * G, pd, D);
    linear_backward(NULL, dw, db, r, patches, w, B * G * G, pd, D);
    pe_ctx c = {B, Ch, S, p, D, to_d(img, ni), to_d(w, nw), to_d(bb, D), to_d(r, no), NULL};
    double ref[32], g[72];
    c.out = ref; pe_ref(&c); c.out = NULL;
    fwd_compare("patch embed (conv)", out, ref, no);
    numeric_grad(g, c.w, nw, pe_ref, &c);
    CU_ASSERT(grad_compare("patch embed dw", dw, g, nw) <= 1);
    numeric_grad(g, c.b, D, pe_ref, &c);
    CU_ASSERT(grad_compare("patch embed db", db, g, D) <= 1);
    free(c.img); free(c.w); free(c.b); free(c.r);
}

/* --------------------------------------------------------- gather/scatter */
typedef struct { int n, C; const int *idx; double *x, *r; } gs_ctx;
static double gs_ref(void *q) {
    gs_ctx *c = q;
    double L = 0;
    for (int i = 0; i < c->n; i++)
        for (int k = 0; k < c->C; k++) L += c->x[c->idx[i] * c->C + k] * c->r[i * c->C + k];
    return L;
}

static void test_gather_scatter(void) {
    int rows = 6, C = 3, n = 8;
    int idx[8] = {5, 0, 2, 2, 4, 0, 1, 2}; /* repeats: scatter must add */
    float x[18], r[24], out[24], dx[18] = {0};
    fill(x, 18, 1); fill(r, 24, 1);
    gather_rows(out, x, idx, n, C);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < C; k++) CU_ASSERT_EQUAL(out[i * C + k], x[idx[i] * C + k]);
    scatter_add_rows(dx, r, idx, n, C);
    gs_ctx c = {n, C, idx, to_d(x, 18), to_d(r, 24)};
    double g[18];
    numeric_grad(g, c.x, (size_t)rows * C, gs_ref, &c);
    CU_ASSERT(grad_compare("gather->scatter dinp", dx, g, 18) <= 1);
    free(c.x); free(c.r);
}

/* ----------------------------------------------------------------- losses */
typedef struct { int n, kind; double beta, *p, *t; } loss_ctx;
static double loss_ref(void *q) {
    loss_ctx *c = q;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        double d = c->p[i] - c->t[i];
        if (c->kind == LOSS_L2) L += d * d;
        else L += fabs(d) < c->beta ? 0.5 * d * d / c->beta : fabs(d) - 0.5 * c->beta;
    }
    return L / c->n;
}

static void test_losses(void) {
    enum { n = 50 };
    for (int kind = 0; kind < 2; kind++) {
        float p[n], t[n], dp[n];
        fill(p, n, 1.5); fill(t, n, 1.0);
        /* keep samples away from the smooth-L1 kink at |d| = beta, where the
         * central difference straddles two branches */
        for (int i = 0; i < n; i++)
            if (fabsf(fabsf(p[i] - t[i]) - 0.7f) < 1e-3f) p[i] += 0.01f;
        double L = loss_forward_backward(dp, p, t, n, (loss_kind)kind, 0.7f);
        loss_ctx c = {n, kind, 0.7, to_d(p, n), to_d(t, n)};
        double g[n];
        double Lr = loss_ref(&c);
        printf("\n    %-22s loss %.6f ref %.6f", kind ? "l2" : "smooth_l1", L, Lr);
        CU_ASSERT(fabs(L - Lr) <= 1e-6 * fmax(1, fabs(Lr)));
        numeric_grad(g, c.p, n, loss_ref, &c);
        CU_ASSERT(grad_compare(kind ? "l2 dpred" : "smooth_l1 dpred", dp, g, n) <= 1);
        free(c.p); free(c.t);
    }
}

/* ------------------------------------------------- reductions and counters */
/* col_std_mean walks rows in blocks of columns; a walk down each column
 * (the same additions in the same order) must give the same bits. */
static void test_col_std_mean(void) {
    int n = 37, dim = 300;
    float *x = malloc(sizeof(float) * n * dim);
    fill(x, (size_t)n * dim, 1.5);
    double acc = 0.0;
    for (int c = 0; c < dim; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            double v = x[(size_t)i * dim + c];
            s += v;
            s2 += v * v;
        }
        double mu = s / n, var = s2 / n - mu * mu;
        acc += sqrt(var > 0 ? var : 0);
    }
    CU_ASSERT(col_std_mean(x, n, dim) == acc / dim);
    float two[4] = {0, 5, 2, 5}; /* columns {0, 2}: std 1; {5, 5}: 0 */
    CU_ASSERT_DOUBLE_EQUAL(col_std_mean(two, 2, 2), 0.5, 1e-12);
    free(x);
}

/* grads_sq_norm: the double sum within rounding, the same bits at 1 and 2
 * threads, non-finite values counted */
static void test_grads_sq_norm(void) {
    size_t n = 300001;
    float *g = malloc(sizeof(float) * n);
    fill(g, n, 0.01);
    double ref = 0.0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    size_t bad = 7;
    omp_set_num_threads(1);
    double a = grads_sq_norm(g, n, &bad);
    omp_set_num_threads(2);
    double b = grads_sq_norm(g, n, &bad);
    CU_ASSERT(fabs(a - ref) <= 1e-12 * ref);
    CU_ASSERT(a == b);
    CU_ASSERT_EQUAL(bad, 7); /* untouched when finite */
    g[5] = NAN;
    g[n - 1] = INFINITY;
    CU_ASSERT(!isfinite(grads_sq_norm(g, n, &bad)));
    CU_ASSERT_EQUAL(bad, 2);
    free(g);
}

/* the FLOP counter: 2MNK per product, attention 4BTTC forward, 8BTTC backward */
static void test_flop_count(void) {
    int M = 7, K = 5, N = 6, B = 2, T = 5, C = 8, H = 2;
    float x[35], w[30], out[42], dx[35] = {0}, dw[30] = {0};
    fill(x, 35, 1); fill(w, 30, 1);
    prof_totals pt;
    prof_reset();
    linear_forward(out, x, w, NULL, M, K, N);
    linear_backward(dx, dw, NULL, out, x, w, M, K, N);
    prof_get(&pt);
    CU_ASSERT_EQUAL(pt.flops[PROF_K_SGEMM], 3 * 2 * (uint64_t)M * N * K);
    float qkv[2 * 5 * 24], ao[2 * 5 * 8], att[2 * 2 * 25], dq[2 * 5 * 24];
    float *scratch = malloc(sizeof(float) * attention_scratch_floats(T, C / H) * 64);
    fill(qkv, 240, 1);
    prof_reset();
    attention_forward(ao, att, qkv, B, T, C, H, scratch);
    attention_backward(dq, ao, qkv, att, B, T, C, H, scratch);
    prof_get(&pt);
    CU_ASSERT_EQUAL(pt.flops[PROF_K_ATTENTION], 12 * (uint64_t)B * T * T * C);
    CU_ASSERT_EQUAL(pt.flops[PROF_K_SGEMM], 0);
    free(scratch);
}

/* The comparison itself must be able to fail: a gradient off by 1% in one
 * entry is rejected. */
static void test_check_can_fail(void) {
    float a[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    double n[4] = {1.0, -2.0, 0.5, 3.0};
    CU_ASSERT(grad_compare("identical", a, n, 4) <= 1);
    a[2] *= 1.01f;
    CU_ASSERT(grad_compare("one entry +1%", a, n, 4) > 1);
}

/* sin-cos position embedding: values from the closed form, and distinct rows */
static void test_pos_embed(void) {
    int C = 8, G = 3;
    float e[72];
    pos_embed_sincos(e, C, G);
    /* token (y=2, x=1): first quarter sin(x * 10000^(-k/2)) */
    const float *t = e + (2 * G + 1) * C;
    CU_ASSERT_DOUBLE_EQUAL(t[0], sin(1.0), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(t[1], sin(1.0 / 100.0), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(t[2], cos(1.0), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(t[4], sin(2.0), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(t[7], cos(2.0 / 100.0), 1e-6);
    for (int a = 0; a < G * G; a++)
        for (int b = a + 1; b < G * G; b++) CU_ASSERT(memcmp(e + a * C, e + b * C, 32) != 0);
}

/* ------------------------------------------------------------ vec.h */
/* v_expf is fast_expf lane by lane, bitwise (the softmax uses one, the
 * GELU the other); v_hsum is the tree its reference writes out; the masked
 * loads and stores touch only their n lanes. */
static void test_vec(void) {
    int bad = 0;
    for (int i = 0; i < 4000; i++) {
        float x[VW], y[VW];
        /* [-195, 195] at any VW: clamped, accurate and overflowing ranges */
        for (int k = 0; k < VW; k++) x[k] = (float)((i * 16 + k) * 0.0061 - 195.0);
        vfl e = v_expf(v_load(x));
        v_store(y, e);
        for (int k = 0; k < VW; k++) {
            float r = fast_expf(x[k]);
            bad += memcmp(&r, &y[k], sizeof r) != 0;
            if (x[k] > -80 && x[k] < 80) bad += fabs(y[k] - exp(x[k])) > 4e-7 * exp(x[k]);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    float nanv[VW], got[VW];
    for (int k = 0; k < VW; k++) nanv[k] = k % 2 ? NAN : 1.0f;
    v_store(got, v_expf(v_load(nanv)));
    for (int k = 0; k < VW; k++) CU_ASSERT(k % 2 ? isnan(got[k]) : got[k] == fast_expf(1.0f));
    float l[VW], buf[2 * VW];
    for (int k = 0; k < VW; k++) l[k] = (float)rng_normal(&R) * (k % 3 ? 1e-3f : 1e3f);
    float a = v_hsum(v_load(l)), b = v_hsum_ref(v_load(l));
    CU_ASSERT(memcmp(&a, &b, sizeof a) == 0);
    double sum = 0;
    for (int k = 0; k < VW; k++) sum += l[k];
    CU_ASSERT(fabs(a - sum) <= 1e-6 * 1e3 * VW);
    float m_all = l[0], m_head = l[0]; /* the max of all lanes, and of the first VW - 1 */
    for (int k = 1; k < VW; k++) {
        m_all = fmaxf(m_all, l[k]);
        if (k < VW - 1) m_head = fmaxf(m_head, l[k]);
    }
    CU_ASSERT_EQUAL(v_hmax(v_load(l)), m_all);
    CU_ASSERT_EQUAL(v_hmax(v_select(v_lanes(VW - 1), v_load(l), v_bcast(-1e30f))), m_head);
    for (int n = 1; n < VW; n++) {
        for (int k = 0; k < 2 * VW; k++) buf[k] = 7.0f;
        v_store_n(buf, v_load_n(l, n), n);
        int ok = 1;
        for (int k = 0; k < 2 * VW; k++) ok &= buf[k] == (k < n ? l[k] : 7.0f);
        vfl z = v_select(v_lanes(n), v_load(l), v_bcast(0.0f));
        vfl y = v_load_n(l, n);
        ok &= memcmp(&z, &y, sizeof z) == 0;
        CU_ASSERT(ok);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    rng_init(&R, 12345);
    static const test_case cases[] = {
        {"check_can_fail", test_check_can_fail}, {"linear", test_linear},
        {"linear_gelu", test_linear_gelu},      {"linear_dw", test_linear_dw},
        {"layernorm", test_layernorm},           {"gelu", test_gelu},
        {"attention", test_attention},           {"attention_causal", test_attention_causal},
        {"attention_rows", test_attention_rows}, {"patch_embed", test_patch_embed},
        {"gather_scatter", test_gather_scatter}, {"losses", test_losses},
        {"pos_embed", test_pos_embed},          {"col_std_mean", test_col_std_mean},
        {"grads_sq_norm", test_grads_sq_norm},  {"flop_count", test_flop_count},
        {"vec", test_vec},
    };
    return test_main("ops", cases, (int)(sizeof cases / sizeof cases[0]));
}
