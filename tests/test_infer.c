/* test_infer.c - the forward-only extraction path (infer.h) against the
 * training path: the packed product against a double reference and against
 * linear_forward, LayerNorm and attention against double references and
 * ops.c's kernels,
 * and whole-encoder features against enc_features (the training forward)
 * within float rounding; features bitwise the same for 1 and 2 threads and
 * for any images-per-forward. */
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

/* in place (res == out), as the encoder adds its branches */
static void test_linear_inplace(void) {
    int M = 29, K = 40, N = 48;
    float *a = rnd((size_t)M * K, 5, 1.0), *w = rnd((size_t)N * K, 6, 0.3), *b = rnd(N, 7, 1.0);
    float *x = rnd((size_t)M * N, 8, 1.0), *y = malloc((size_t)M * N * 4);
    float *wp = malloc(infer_pack_floats(K, N) * 4);
    infer_pack(wp, w, K, N);
    infer_linear(y, a, wp, b, x, M, K, N, 0);
    infer_linear(x, a, wp, b, x, M, K, N, 0);
    CU_ASSERT(memcmp(x, y, (size_t)M * N * 4) == 0);
    free(a); free(w); free(b); free(x); free(y); free(wp);
}

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

static void fixture_init(fixture *f, int n) {
    jepa_dims d = {28, 1, 4, 7, 49, 16, 32, 2, 2, 128, 16, 1, 2, 0, 0, 0, 0, 0, 0};
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

static void fixture_free(fixture *f) {
    jepa_model_free(&f->m);
    free(f->px);
}

static void features(fixture *f, int n, int maxS, int k, float *out) {
    enc_infer p;
    enc_infer_init(&p, &f->d, &f->L, f->m.params, maxS, 28, k);
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
        features(&f, n, 8, k, b);
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
    features(&f, n, 5, k, a);
    omp_set_num_threads(2);
    features(&f, n, 5, k, b);
    features(&f, n, 23, k, c); /* one forward of all */
    omp_set_num_threads(nt);
    CU_ASSERT(memcmp(a, b, (size_t)n * dim * 4) == 0);
    CU_ASSERT(memcmp(a, c, (size_t)n * dim * 4) == 0);
    free(a); free(b); free(c);
    fixture_free(&f);
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
    };
    return test_main("infer", cases, sizeof cases / sizeof cases[0]);
}
