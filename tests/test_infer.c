/* test_infer.c - the forward-only extraction path (infer.h) against the
 * training path: the packed product against a double reference and against
 * linear_forward, LayerNorm and attention against double references and
 * ops.c's kernels,
 * and whole-encoder features against enc_features (the training forward)
 * within float rounding; features bitwise the same for 1 and 2 threads and
 * for any images-per-forward. The bfloat16 path (eval.precision: bf16:
 * products and attention) against double sums of rounded inputs, fp32, and
 * itself. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"
#include "infer.h"
#include "testutil.h"

static float *rnd(size_t n, uint64_t seed, double scale) {
    float *p = malloc(n * sizeof *p);
    jepa_rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = (float)(rng_normal(&r) * scale);
    return p;
}

/* out = inp @ W^T + b (+ res) (then GELU) against double sums: relative
 * to the sum of magnitudes, a float sum of K terms errs by < K * 2^-24. */
static void check_linear(int M, int K, int N, int with_b, int with_res, int gelu) {
    float *a = rnd((size_t)M * K, 1, 1.0), *w = rnd((size_t)N * K, 2, 0.5);
    float *b = with_b ? rnd(N, 3, 1.0) : NULL, *res = with_res ? rnd((size_t)M * N, 4, 1.0) : NULL;
    float *wp = malloc(infer_pack_floats(K, N) * sizeof *wp), *out = malloc((size_t)M * N * 4);
    infer_pack(wp, w, K, N);
    infer_linear(out, a, wp, b, res, M, K, N, gelu);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                s += (double)a[(size_t)i * K + k] * w[(size_t)n * K + k];
                mag += fabs((double)a[(size_t)i * K + k] * w[(size_t)n * K + k]);
            }
            if (b) s += b[n], mag += fabs(b[n]);
            if (res) s += res[(size_t)i * N + n], mag += fabs(res[(size_t)i * N + n]);
            if (gelu) /* tanh form, as gelu_forward */
                s = 0.5 * s * (1 + tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
            double e = fabs(out[(size_t)i * N + n] - s) / (mag + 1e-30);
            worst = e > worst ? e : worst;
        }
    CU_ASSERT(worst < (K + 2) * 6e-8 + (gelu ? 1e-6 : 0));
    /* and against training's kernel, which sums in another order */
    float *ref = malloc((size_t)M * N * 4);
    linear_forward(ref, a, w, b, M, K, N);
    if (gelu) gelu_forward(ref, ref, (size_t)M * N);
    double d = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) {
        double e = fabs(ref[i] + (res && !gelu ? res[i] : 0) - out[i]);
        d = e > d ? e : d;
    }
    if (!res || gelu == 0) CU_ASSERT(d < 1e-4);
    free(a); free(w); free(b); free(res); free(wp); free(out); free(ref);
}

static void test_linear(void) {
    check_linear(37, 24, 70, 1, 0, 0);  /* rows not a multiple of 8, a partial panel */
    check_linear(37, 24, 70, 1, 1, 0);
    check_linear(8, 16, 32, 0, 0, 0);   /* exact tiles, no bias */
    check_linear(203, 128, 96, 1, 0, 1); /* several row blocks, GELU */
    check_linear(1, 5, 3, 1, 1, 0);
}

/* in place (res == out), as the encoder adds its branches: the same bits
 * as into another buffer; fp32 or bfloat16 products */
static void check_inplace(int bf16) {
    int M = 29, K = 40, N = 48;
    float *a = rnd((size_t)M * K, 5, 1.0), *w = rnd((size_t)N * K, 6, 0.3), *b = rnd(N, 7, 1.0);
    float *x = rnd((size_t)M * N, 8, 1.0), *y = malloc((size_t)M * N * 4);
    float *wp = malloc(infer_pack_floats(K, N) * 4);
    uint16_t *wb = malloc(infer_pack_bf16_elems(K, N) * 2);
    infer_pack(wp, w, K, N);
    infer_pack_bf16(wb, w, K, N);
    for (int pass = 0; pass < 2; pass++) { /* y, then x in place */
        float *o = pass ? x : y;
        if (bf16) infer_linear_bf16(o, a, wb, b, x, M, K, N, 0);
        else infer_linear(o, a, wp, b, x, M, K, N, 0);
    }
    CU_ASSERT(memcmp(x, y, (size_t)M * N * 4) == 0);
    free(a); free(w); free(b); free(x); free(y); free(wp); free(wb);
}

static void test_linear_inplace(void) { check_inplace(0); }

/* against a double LayerNorm, and training's kernel (same formula) */
static void test_layernorm(void) {
    int M = 19, C = 40;
    float *x = rnd((size_t)M * C, 9, 2.0), *w = rnd(C, 10, 1.0), *b = rnd(C, 11, 1.0);
    float *o1 = malloc((size_t)M * C * 4), *o2 = malloc((size_t)M * C * 4);
    float *mu = malloc(M * 4), *rs = malloc(M * 4);
    layernorm_forward(o1, mu, rs, x, w, b, M, C);
    infer_layernorm(o2, x, w, b, M, C);
    double worst = 0, vs_train = 0;
    for (int i = 0; i < M; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[i * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
        double s = 1.0 / sqrt(v / C + 1e-6);
        for (int c = 0; c < C; c++) {
            double y = (x[i * C + c] - m) * s * w[c] + b[c];
            double e = fabs(o2[i * C + c] - y) / (fabs(w[c]) * 4 + fabs(b[c]) + 1);
            worst = e > worst ? e : worst;
            e = fabs(o2[i * C + c] - o1[i * C + c]);
            vs_train = e > vs_train ? e : vs_train;
        }
    }
    CU_ASSERT(worst < 2e-6);
    CU_ASSERT(vs_train == 0); /* training's arithmetic: the same bits */
    free(x); free(w); free(b); free(o1); free(o2); free(mu); free(rs);
}

/* against a double softmax attention and training's attention_forward: head
 * widths on the vector path (32, 16) and off it (12), token counts not
 * multiples of 4 or 16 */
static void check_attention(int B, int T, int C, int H) {
    float *qkv = rnd((size_t)B * T * 3 * C, 12, 1.5);
    float *o1 = malloc((size_t)B * T * C * 4), *o2 = malloc((size_t)B * T * C * 4);
    float *att = malloc((size_t)B * H * T * T * 4);
    float *s1 = malloc(attention_scratch_floats(T, C / H) * omp_get_max_threads() * 4);
    float *s2 = malloc(infer_attention_floats(T, C / H) * omp_get_max_threads() * 4);
    double *p = malloc((size_t)T * sizeof *p);
    attention_forward(o1, att, qkv, B, T, C, H, s1);
    infer_attention(o2, qkv, B, T, C, H, s2);
    int hd = C / H;
    double worst = 0, vs_train = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * 3 * C + h * hd;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hd;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += (double)q[d] * k[d];
                    p[j] = s / sqrt((double)hd);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j < T; j++) sum += p[j] = exp(p[j] - mx);
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++)
                        o += p[j] / sum * qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hd + d];
                    size_t at = ((size_t)b * T + i) * C + h * hd + d;
                    worst = fabs(o2[at] - o) > worst ? fabs(o2[at] - o) : worst;
                    vs_train = fabs(o2[at] - o1[at]) > vs_train ? fabs(o2[at] - o1[at]) : vs_train;
                }
            }
    CU_ASSERT(worst < 2e-5);  /* values are O(1.5) */
    CU_ASSERT(vs_train == 0); /* training's kernel without the probabilities: the same bits */
    free(qkv); free(o1); free(o2); free(att); free(s1); free(s2); free(p);
}

static void test_attention(void) {
    check_attention(3, 49, 128, 4);
    check_attention(2, 17, 64, 2);
    check_attention(2, 9, 32, 2);
    check_attention(2, 9, 24, 2);
    check_attention(1, 1, 32, 1);
}

/* A small encoder (two blocks, width 32) of I-JEPA's table. */
typedef struct {
    jepa_dims d;
    jepa_model m;
    enc_layout L;
    uint8_t *px;
} fixture;

/* width D (heads of D/2 columns) and MLP 4D */
static void fixture_init_width(fixture *f, int n, int D) {
    jepa_dims d = {28, 1, 4, 7, 49, 16, D, 2, 2, 4 * D, 16, 1, 2, 0, 0, 0, 0, 0, 0};
    f->d = d;
    jepa_model_init(&f->m, &f->d, 3, 8, 4, 12, 1);
    /* livelier than the init: LayerNorm gains and biases away from 1 and 0 */
    jepa_rng r;
    rng_init(&r, 77);
    for (size_t i = 0; i < f->m.nenc; i++) f->m.params[i] += (float)(0.05 * rng_normal(&r));
    CU_ASSERT_FATAL(enc_layout_from_table(&f->m, &f->L) == 0);
    f->px = malloc((size_t)n * 784);
    for (size_t i = 0; i < (size_t)n * 784; i++) f->px[i] = (uint8_t)rng_below(&r, 256);
}

static void fixture_init(fixture *f, int n) { fixture_init_width(f, n, 32); }

static void fixture_free(fixture *f) {
    jepa_model_free(&f->m);
    free(f->px);
}

/* features of the fixture's n images, fp32 or bfloat16 products */
static void features(fixture *f, int n, int maxS, int k, int bf16, float *out) {
    enc_infer p;
    enc_infer_init(&p, &f->d, &f->L, f->m.params, maxS, 28, k, bf16);
    enc_infer_features(&p, f->px, n, 0.29f, 0.35f, out);
    enc_infer_free(&p);
}

static void test_features_match_training(void) {
    const int n = 21;
    fixture f;
    fixture_init(&f, n);
    for (int k = 1; k <= 2; k++) {
        int dim = k * f.d.D;
        float *a = malloc((size_t)n * dim * 4), *b = malloc((size_t)n * dim * 4);
        enc_pass p;
        enc_pass_init(&p, &f.d, 8, 28, k > 1);
        float *sc = malloc(attention_scratch_floats(49, f.d.D / f.d.heads) * omp_get_max_threads() * 4);
        enc_features(&p, &f.d, &f.L, f.m.params, f.px, n, 0.29f, 0.35f, k, a, sc);
        features(&f, n, 8, k, 0, b);
        double worst = 0, mag = 0;
        for (size_t i = 0; i < (size_t)n * dim; i++) {
            double e = fabs(a[i] - b[i]);
            worst = e > worst ? e : worst;
            mag = fabs(a[i]) > mag ? fabs(a[i]) : mag;
        }
        CU_ASSERT(mag > 0.1); /* features are not all zero */
        CU_ASSERT(worst < 1e-5 * mag);
        /* where training's products run on the same tile, every kernel is
         * shared: the same bits (docs/trainer.md) */
        if (ops_packed()) CU_ASSERT(worst == 0);
        enc_pass_free(&p);
        free(a); free(b); free(sc);
    }
    fixture_free(&f);
}

static void test_features_deterministic(void) {
    const int n = 23, k = 2, dim = k * 32;
    fixture f;
    fixture_init(&f, n);
    float *a = malloc((size_t)n * dim * 4), *b = malloc((size_t)n * dim * 4);
    float *c = malloc((size_t)n * dim * 4);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    features(&f, n, 5, k, 0, a);
    omp_set_num_threads(2);
    features(&f, n, 5, k, 0, b);
    features(&f, n, 23, k, 0, c); /* one forward of all */
    omp_set_num_threads(nt);
    CU_ASSERT(memcmp(a, b, (size_t)n * dim * 4) == 0);
    CU_ASSERT(memcmp(a, c, (size_t)n * dim * 4) == 0);
    free(a); free(b); free(c);
    fixture_free(&f);
}

/* ------------------------------------------------------------- bfloat16 */

static void test_bf16_round(void) {
    const struct { uint32_t in; uint16_t out; } c[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: halfway, to the even 1 */
        {0x3f818000u, 0x3f82}, /* 1 + 3 2^-8: halfway, to the even 1 + 2^-6 */
        {0x3f808001u, 0x3f81}, /* just above halfway: up */
        {0x80000000u, 0x8000}, /* -0 */
        {0xc0490fdbu, 0xc049}, /* -pi */
        {0x7f800000u, 0x7f80}, /* inf */
        {0x7f7fffffu, 0x7f80}, /* the largest float rounds to inf */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        float x;
        memcpy(&x, &c[i].in, 4);
        CU_ASSERT_EQUAL(infer_bf16_round(x), c[i].out);
    }
    uint16_t nan = infer_bf16_round(NAN), nan_lo = 0;
    uint32_t low = 0x7f800001u; /* a NaN whose payload bits all go: it must stay a NaN */
    float xl;
    memcpy(&xl, &low, 4);
    nan_lo = infer_bf16_round(xl);
    CU_ASSERT((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0);
    CU_ASSERT((nan_lo & 0x7f80) == 0x7f80 && (nan_lo & 0x7f) != 0);
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* infer_linear_bf16 against double sums of the bfloat16-rounded inputs
 * (what VDPBF16PS multiplies: exact products, float sums), and against the
 * fp32 product within bfloat16's rounding of the inputs (2^-8 relative
 * each); rows bitwise alike in a call of M rows and of one row. */
static void check_linear_bf16(int M, int K, int N, int with_b, int with_res, int gelu) {
    float *a = rnd((size_t)M * K, 11, 1.0), *w = rnd((size_t)N * K, 12, 0.5);
    float *b = with_b ? rnd(N, 13, 1.0) : NULL, *res = with_res ? rnd((size_t)M * N, 14, 1.0) : NULL;
    uint16_t *wp = malloc(infer_pack_bf16_elems(K, N) * sizeof *wp);
    float *wf = malloc(infer_pack_floats(K, N) * sizeof *wf);
    float *out = malloc((size_t)M * N * 4), *ref = malloc((size_t)M * N * 4), *one = malloc((size_t)N * 4);
    infer_pack_bf16(wp, w, K, N);
    infer_pack(wf, w, K, N);
    infer_linear_bf16(out, a, wp, b, res, M, K, N, gelu);
    infer_linear(ref, a, wf, b, res, M, K, N, gelu);
    double worst = 0, worst32 = 0;
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double t = (double)from_bf16(infer_bf16_round(a[(size_t)i * K + k])) *
                           from_bf16(infer_bf16_round(w[(size_t)n * K + k]));
                s += t, mag += fabs(t);
            }
            if (b) s += b[n], mag += fabs(b[n]);
            if (res) s += res[(size_t)i * N + n], mag += fabs(res[(size_t)i * N + n]);
            if (gelu) s = 0.5 * s * (1 + tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
            double e = fabs(out[(size_t)i * N + n] - s) / (mag + 1e-30);
            double e32 = fabs(out[(size_t)i * N + n] - ref[(size_t)i * N + n]) / (mag + 1e-30);
            worst = e > worst ? e : worst;
            worst32 = e32 > worst32 ? e32 : worst32;
        }
    CU_ASSERT(worst < (K + 2) * 6e-8 + (gelu ? 1e-6 : 0));
    CU_ASSERT(worst32 < 2 * 0.00390625 + (gelu ? 1e-6 : 0)); /* two inputs, 2^-8 each */
    CU_ASSERT(worst32 > 0); /* the inputs were rounded: not the fp32 product */
    for (int i = 0; i < M; i += M / 3 + 1) { /* one row alone: its bits */
        infer_linear_bf16(one, a + (size_t)i * K, wp, b, res ? res + (size_t)i * N : NULL, 1, K, N, gelu);
        CU_ASSERT(memcmp(one, out + (size_t)i * N, (size_t)N * 4) == 0);
    }
    free(a); free(w); free(b); free(res); free(wp); free(wf); free(out); free(ref); free(one);
}

/* a (M, K) rounded to bfloat16 pairs by infer_bf16_round: ceil(K/2) a row */
static uint32_t *pairs_of(const float *a, int M, int K) {
    const int K2 = (K + 1) / 2;
    uint32_t *p = malloc((size_t)M * K2 * 4);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K2; k++) {
            uint32_t lo = infer_bf16_round(a[(size_t)i * K + 2 * k]);
            uint32_t hi = 2 * k + 1 < K ? infer_bf16_round(a[(size_t)i * K + 2 * k + 1]) : 0;
            p[(size_t)i * K2 + k] = lo | hi << 16;
        }
    return p;
}

/* infer_linear_bf16_pairs: from inputs already in pairs, the bits of
 * infer_linear_bf16; into pairs (outb), those bits rounded, an odd N's pad
 * word zero. infer_layernorm_bf16: infer_layernorm's bits rounded. */
static void check_pairs_bf16(int M, int K, int N, int with_res, int gelu) {
    const int N2 = (N + 1) / 2;
    float *a = rnd((size_t)M * K, 15, 1.0), *w = rnd((size_t)N * K, 16, 0.5), *b = rnd(N, 17, 1.0);
    float *res = with_res ? rnd((size_t)M * N, 18, 1.0) : NULL;
    uint16_t *wp = malloc(infer_pack_bf16_elems(K, N) * sizeof *wp);
    float *out = malloc((size_t)M * N * 4), *out2 = malloc((size_t)M * N * 4);
    uint32_t *ap = pairs_of(a, M, K), *ob = malloc((size_t)M * N2 * 4);
    infer_pack_bf16(wp, w, K, N);
    infer_linear_bf16(out, a, wp, b, res, M, K, N, gelu);
    infer_linear_bf16_pairs(out2, NULL, ap, wp, b, res, M, K, N, gelu);
    CU_ASSERT(memcmp(out, out2, (size_t)M * N * 4) == 0);
    memset(ob, 0xff, (size_t)M * N2 * 4);
    infer_linear_bf16_pairs(NULL, ob, ap, wp, b, res, M, K, N, gelu);
    uint32_t *want = pairs_of(out, M, N);
    CU_ASSERT(memcmp(ob, want, (size_t)M * N2 * 4) == 0);
    free(want);
    if (N % 2) { /* an inf input makes row 0 NaN, its pad lane too: the pad word stays 0 */
        ap[0] = infer_bf16_round(INFINITY);
        memset(ob, 0xff, (size_t)M * N2 * 4);
        infer_linear_bf16_pairs(NULL, ob, ap, wp, b, res, M, K, N, gelu);
        CU_ASSERT((ob[N2 - 1] >> 16) == 0);
    }
    float *g = rnd(N, 19, 1.0), *lo = malloc((size_t)M * N * 4);
    infer_layernorm(lo, res ? res : out, g, b, M, N);
    want = pairs_of(lo, M, N);
    memset(ob, 0xff, (size_t)M * N2 * 4);
    infer_layernorm_bf16(ob, res ? res : out, g, b, M, N);
    CU_ASSERT(memcmp(ob, want, (size_t)M * N2 * 4) == 0);
    free(a); free(w); free(b); free(res); free(wp); free(out); free(out2); free(ap); free(ob);
    free(want); free(g); free(lo);
}

/* the bf16 epilogue's GELU (gelu_fast: its own exp and reciprocal) against
 * the tanh form in double over a wide range, the clamps' ends and NaN:
 * values taken through a product with zero inputs, as its bias */
static void check_gelu_bf16(void) {
    enum { N = 4099 };
    float *x = malloc(N * 4), *y = malloc(N * 4), *z = calloc(2, 4);
    uint16_t *wp = calloc(infer_pack_bf16_elems(2, N), 2);
    for (int i = 0; i < N - 3; i++) x[i] = -20.0f + 40.0f * i / (N - 4); /* [-20, 20] */
    x[N - 3] = 1e30f, x[N - 2] = -1e30f, x[N - 1] = NAN;
    infer_linear_bf16(y, z, wp, x, NULL, 1, 2, N, 1);
    double worst = 0;
    for (int i = 0; i < N - 3; i++) {
        /* 0.5 s (1 + tanh u) as s / (1 + e^z), z = -2u: double's 1 + tanh u
         * cancels to 0 below s ~ -7. The float z errs by a few 2^-24 |z|,
         * which e^z turns into as much relative error (as in fp32's GELU);
         * the exp and the reciprocal add < 1e-6. */
        double s = x[i], zd = -2 * 0.7978845608028654 * (s + 0.044715 * s * s * s);
        double ref = s / (1 + exp(zd)), tol = (1e-6 + 4 * 6e-8 * fabs(zd)) * fabs(ref) + 1e-30;
        double e = fabs(y[i] - ref) / tol;
        worst = e > worst ? e : worst;
    }
    printf("\n  bf16 GELU: error / tolerance %.3f over [-20, 20]\n", worst);
    CU_ASSERT(worst <= 1);
    CU_ASSERT(fabs(y[N - 3] - 1e30f) <= 1e-6 * 1e30); /* GELU(x) = x for large x */
    CU_ASSERT(fabsf(y[N - 2]) <= 1e-30f);              /* and 0 for large -x */
    CU_ASSERT(isnan(y[N - 1]));
    free(x); free(y); free(z); free(wp);
}

static void test_linear_bf16(void) {
    const char *why = NULL;
    if (!infer_bf16_supported(&why)) { /* the refusal's reason is what can be checked here */
        printf("\n  bf16 products not checked: %s\n", why);
        CU_ASSERT(why && strlen(why) > 10);
        return;
    }
    check_linear_bf16(37, 24, 70, 1, 0, 0); /* a partial panel */
    check_linear_bf16(37, 23, 70, 1, 1, 0); /* odd K: the last pair padded */
    check_linear_bf16(8, 16, 32, 0, 0, 0);
    check_linear_bf16(203, 128, 96, 1, 0, 1); /* several row blocks, GELU */
    check_linear_bf16(1, 5, 3, 1, 1, 0);
    check_linear_bf16(101, 512, 40, 1, 1, 0); /* fc2's K */
    check_inplace(1);
    check_pairs_bf16(101, 128, 512, 0, 1); /* fc1: pairs in, GELU, pairs out */
    check_pairs_bf16(37, 23, 70, 1, 0);    /* odd K, a partial panel, residual */
    check_pairs_bf16(13, 24, 33, 1, 1);    /* odd N: a pad word */
    check_gelu_bf16();
}

/* JEPA_DEBUG_NO_BF16=1 says no, with a reason (the refusal's end-to-end
 * test, e2e_cli_eval, uses it) */
static void test_bf16_debug_off(void) {
    const char *why = NULL;
    setenv("JEPA_DEBUG_NO_BF16", "1", 1);
    CU_ASSERT(infer_bf16_supported(&why) == 0);
    CU_ASSERT(why && strstr(why, "AVX"));
    unsetenv("JEPA_DEBUG_NO_BF16");
}

/* ---------------------------------------------------- bf16 attention */

static double bfd(float x) { return from_bf16(infer_bf16_round(x)); }

/* One (image, head, query) row of scores scale * q.k in double, from q and
 * k rounded to bfloat16 (round 1) or not; *amax: the largest sum of |q_d
 * k_d| over the keys; the softmax into p */
static void ref_probs(double *p, double *amax, const float *q, const float *k0, int T, int C,
                      int hd, double scale, int round) {
    double mx = -1e300, sum = 0;
    *amax = 0;
    for (int j = 0; j < T; j++) {
        const float *k = k0 + (size_t)j * 3 * C;
        double s = 0, a = 0;
        for (int d = 0; d < hd; d++) {
            double t = round ? bfd(q[d]) * bfd(k[d]) : (double)q[d] * k[d];
            s += t, a += fabs(t);
        }
        p[j] = s * scale;
        mx = p[j] > mx ? p[j] : mx;
        *amax = a > *amax ? a : *amax;
    }
    for (int j = 0; j < T; j++) sum += p[j] = exp(p[j] - mx);
    for (int j = 0; j < T; j++) p[j] /= sum;
}

/* infer_attention_bf16 for B images, T tokens, H heads of C/H columns,
 * output element by element against
 * - what the kernel defines, in double: P the softmax of scale * (bf16 q .
 *   bf16 k), O = sum_j bf16(p_j) bf16(v_j). The kernel's fp32 p is within
 *   a relative delta of the double p (float sums of hd exact products: hd
 *   2^-24 amax each score, scaled; the subtraction of the max; expf's few
 *   ulp; the sum of T and the division), so its bfloat16 value is the
 *   reference's unless p (1 +- delta) straddles a rounding boundary: there
 *   the step between the two is allowed, elsewhere nothing; plus O's float
 *   sum of T products (2 T 2^-24 of the sum of |p v|) and 1e-30 (VCVTNEPS2BF16
 *   flushes probabilities below 2^-126 to zero).
 * - fp32 infer_attention: rounding q and k to 8-bit significands (2^-9
 *   relative each) moves each scaled score by at most eps = scale (2^-8 +
 *   2^-18) amax, so each p by a factor within e^(+-2 eps); rounding p and v
 *   adds 2^-8 + 2^-18 relative: |dO| <= sum_j p_j |v_j| (e^(4 eps) - 1 +
 *   2^-7), p_j from unrounded q and k (the e^(2 eps) of p's change taken
 *   twice to cover it). */
static void check_attention_bf16(int B, int T, int C, int H) {
    const int hd = C / H;
    const double u = 5.9604644775390625e-8, scale = 1.0f / sqrtf((float)hd);
    float *qkv = rnd((size_t)B * T * 3 * C, 21, 1.0);
    float *o = malloc((size_t)B * T * C * 4), *r32 = malloc((size_t)B * T * C * 4);
    float *sb = malloc(infer_attention_bf16_floats(T, hd) * omp_get_max_threads() * 4);
    float *s32 = malloc(infer_attention_floats(T, hd) * omp_get_max_threads() * 4);
    double *p = malloc((size_t)T * 8), *p32 = malloc((size_t)T * 8), *step = malloc((size_t)T * 8);
    infer_attention_bf16(o, qkv, B, T, C, H, sb);
    infer_attention(r32, qkv, B, T, C, H, s32);
    double worst = 0, worst32 = 0, diff32 = 0;
    int nstep = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *base = qkv + (size_t)b * T * 3 * C, *q = base + (size_t)i * 3 * C + h * hd;
                const float *v = base + 2 * C + h * hd;
                double amax, amax32, xmax = 0;
                ref_probs(p, &amax, q, base + C + h * hd, T, C, hd, scale, 1);
                ref_probs(p32, &amax32, q, base + C + h * hd, T, C, hd, scale, 0);
                xmax = scale * amax;
                double delta = 4 * (2 * scale * hd * u * amax + 6 * u * xmax + (T + 8) * u);
                for (int j = 0; j < T; j++) {
                    step[j] = bfd((float)(p[j] * (1 + delta))) - bfd((float)(p[j] * (1 - delta)));
                    nstep += step[j] != 0;
                }
                double eps = scale * (0.00390625 + 1.0 / (1 << 18)) * amax32;
                for (int d = 0; d < hd; d++) {
                    double ref = 0, tol = 0, mag = 0, mag32 = 0;
                    for (int j = 0; j < T; j++) {
                        double vj = bfd(v[(size_t)j * 3 * C + d]), t = bfd((float)p[j]) * vj;
                        ref += t, mag += fabs(t), tol += fabs(vj) * step[j];
                        mag32 += p32[j] * fabs(v[(size_t)j * 3 * C + d]);
                    }
                    tol += 2 * T * u * mag + 1e-30;
                    size_t at = ((size_t)b * T + i) * C + h * hd + d;
                    double e = fabs(o[at] - ref) / tol, e32 = fabs(o[at] - r32[at]);
                    worst = e > worst ? e : worst;
                    diff32 = e32 > diff32 ? e32 : diff32;
                    e32 /= mag32 * (exp(4 * eps) - 1 + 0.0078125) + 1e-30;
                    worst32 = e32 > worst32 ? e32 : worst32;
                }
            }
    printf("\n  bf16 attention B %d T %d hd %d: error / tolerance %.3f (double), %.3f (fp32); "
           "%d probabilities on a rounding boundary\n",
           B, T, hd, worst, worst32, nstep);
    CU_ASSERT(worst <= 1);
    CU_ASSERT(worst32 <= 1);
    CU_ASSERT(diff32 > 0); /* rounded: not fp32's bits */
    free(qkv); free(o); free(r32); free(sb); free(s32); free(p); free(p32); free(step);
}

/* the same bits for 1 and 2 threads, and for an image alone */
static void check_attention_bf16_bits(int B, int T, int C, int H) {
    const int hd = C / H, nt = omp_get_max_threads(), nth = nt > 2 ? nt : 2;
    const size_t n = (size_t)T * C;
    float *qkv = rnd((size_t)B * T * 3 * C, 22, 1.0);
    float *a = malloc(B * n * 4), *b = malloc(B * n * 4), *one = malloc(n * 4);
    float *sc = malloc(infer_attention_bf16_floats(T, hd) * nth * 4);
    omp_set_num_threads(1);
    infer_attention_bf16(a, qkv, B, T, C, H, sc);
    omp_set_num_threads(2);
    infer_attention_bf16(b, qkv, B, T, C, H, sc);
    omp_set_num_threads(nt);
    CU_ASSERT(memcmp(a, b, B * n * 4) == 0);
    infer_attention_bf16(one, qkv + (size_t)(B - 1) * T * 3 * C, 1, T, C, H, sc);
    CU_ASSERT(memcmp(one, a + (B - 1) * n, n * 4) == 0);
    free(qkv); free(a); free(b); free(one); free(sc);
}

/* infer_attention_bf16_pairs: from qkv rounded to pairs, the bits of
 * infer_attention_bf16 rounded to pairs; and of an image alone, at 1 and
 * 2 threads */
static void check_attention_bf16_pairs(int B, int T, int C, int H) {
    const int hd = C / H, nt = omp_get_max_threads(), nth = nt > 2 ? nt : 2;
    const size_t M = (size_t)B * T, n = (size_t)T * C / 2;
    float *qkv = rnd(M * 3 * C, 23, 1.0), *o = malloc(M * C * 4);
    float *sc = malloc(infer_attention_bf16_floats(T, hd) * nth * 4);
    uint32_t *qb = pairs_of(qkv, (int)M, 3 * C), *ob = malloc(M * C / 2 * 4), *one = malloc(n * 4);
    infer_attention_bf16(o, qkv, B, T, C, H, sc);
    uint32_t *want = pairs_of(o, (int)M, C);
    for (int th = 1; th <= 2; th++) { /* each call's own output: cleared first */
        omp_set_num_threads(th);
        memset(ob, 0xff, M * C / 2 * 4);
        infer_attention_bf16_pairs(ob, qb, B, T, C, H, sc);
        CU_ASSERT(memcmp(ob, want, M * C / 2 * 4) == 0);
        memset(one, 0xff, n * 4);
        infer_attention_bf16_pairs(one, qb + (size_t)(B - 1) * T * 3 * C / 2, 1, T, C, H, sc);
        CU_ASSERT(memcmp(one, want + (B - 1) * n, n * 4) == 0);
    }
    omp_set_num_threads(nt);
    free(qkv); free(o); free(sc); free(qb); free(ob); free(one); free(want);
}

static void test_attention_bf16(void) {
    if (!infer_bf16_supported(NULL)) return; /* test_linear_bf16 said why */
    check_attention_bf16(3, 49, 128, 4);  /* the tiny config: hd 32 */
    check_attention_bf16(1, 196, 128, 2); /* 14 x 14 tokens, hd 64 */
    check_attention_bf16(2, 17, 64, 2);   /* odd T: a zero token pads the last pair */
    check_attention_bf16(2, 9, 30, 2);    /* odd hd (15): a zero column pads it */
    check_attention_bf16(1, 70, 160, 2);  /* hd 80, T 70: 5 vectors, blocks of 4 and 1 */
    check_attention_bf16(2, 33, 48, 1);   /* hd 48: a block of 3 vectors */
    check_attention_bf16(1, 1, 32, 1);
    check_attention_bf16_bits(5, 49, 128, 4);
    check_attention_bf16_bits(3, 17, 30, 2);
    check_attention_bf16_pairs(3, 49, 128, 4);
    check_attention_bf16_pairs(2, 17, 64, 2);
    check_attention_bf16_pairs(1, 70, 160, 2);
    check_attention_bf16_pairs(2, 33, 48, 1);
    check_attention_bf16_pairs(1, 1, 32, 1);
}

/* the encoder's features in bf16: near fp32's (bfloat16 inputs in 4
 * products a block), not its bits, and the same bits for any thread count
 * and images per forward; width D: 32 (heads of 16 columns: qkv and
 * attention's output in pairs) or 30 (heads of 15: in floats) */
static void check_features_bf16(int D) {
    const int n = 23, k = 2, dim = k * D;
    fixture f;
    fixture_init_width(&f, n, D);
    float *a = malloc((size_t)n * dim * 4), *b = malloc((size_t)n * dim * 4);
    float *c = malloc((size_t)n * dim * 4), *r = malloc((size_t)n * dim * 4);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    features(&f, n, 5, k, 1, a);
    omp_set_num_threads(2);
    features(&f, n, 5, k, 1, b);
    features(&f, n, 23, k, 1, c);
    omp_set_num_threads(nt);
    features(&f, n, 5, k, 0, r);
    CU_ASSERT(memcmp(a, b, (size_t)n * dim * 4) == 0);
    CU_ASSERT(memcmp(a, c, (size_t)n * dim * 4) == 0);
    double worst = 0, mag = 0;
    for (size_t i = 0; i < (size_t)n * dim; i++) {
        worst = fabs(a[i] - r[i]) > worst ? fabs(a[i] - r[i]) : worst;
        mag = fabs(r[i]) > mag ? fabs(r[i]) : mag;
    }
    CU_ASSERT(mag > 0.1);
    CU_ASSERT(worst > 0 && worst < 2e-2 * mag);
    free(a); free(b); free(c); free(r);
    fixture_free(&f);
}

static void test_features_bf16(void) {
    if (!infer_bf16_supported(NULL)) return; /* test_linear_bf16 said why */
    check_features_bf16(32);
    check_features_bf16(30);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    const test_case cases[] = {
        {"packed product vs double and linear_forward", test_linear},
        {"packed product in place", test_linear_inplace},
        {"layernorm vs double and layernorm_forward", test_layernorm},
        {"attention vs double and attention_forward", test_attention},
        {"features vs the training forward", test_features_match_training},
        {"features: threads and chunk do not matter", test_features_deterministic},
        {"bfloat16 rounding", test_bf16_round},
        {"bf16 product vs double, fp32, one row, in place, pairs, GELU", test_linear_bf16},
        {"JEPA_DEBUG_NO_BF16 says no", test_bf16_debug_off},
        {"bf16 attention vs double, fp32, threads, one image, pairs", test_attention_bf16},
        {"bf16 features: near fp32, threads and chunk do not matter", test_features_bf16},
    };
    return test_main("infer", cases, sizeof cases / sizeof cases[0]);
}
