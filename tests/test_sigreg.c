/* test_sigreg.c - SIGReg (trainer/sigreg.h) against an independent double
 * oracle: the Epps-Pulley integral over the FULL symmetric grid [-T, T]
 * (2K-1 knots, plain trapezoid, complex ECF), which equals the kernel's
 * doubled half-range rule in exact arithmetic. Checks: loss and central
 * finite-difference gradients for several (N, dim, M, groups, K, T); hand
 * values of tiny cases; N(0,1) data vs the exact null mean sum_k w_k (1 -
 * phi_k^2); collapsed and anisotropic batches; rows split over two "ranks"
 * (one with no rows) reproduce the one-shot loss and gradient; directions;
 * thread-count independence. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"
#include "sigreg.h"
#include "testutil.h"

static void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_sigreg: out of memory\n");
        exit(2);
    }
    return p;
}

/* The oracle: mean over groups and directions of
 * N * trapz_{[-T,T], 2K-1 knots} |phi_N(t) - e^{-t^2/2}|^2 e^{-t^2/2}. */
static double oracle_loss(const double *z, const double *dirs, int G, int N, int dim, int M,
                          int K, double T) {
    double h = T / (K - 1), total = 0.0;
    double *x = xmalloc((size_t)N * sizeof *x);
    for (int g = 0; g < G; g++)
        for (int m = 0; m < M; m++) {
            for (int n = 0; n < N; n++) {
                x[n] = 0.0;
                for (int i = 0; i < dim; i++)
                    x[n] += dirs[(size_t)m * dim + i] * z[((size_t)g * N + n) * dim + i];
            }
            double integral = 0.0;
            for (int j = 0; j <= 2 * (K - 1); j++) {
                double t = -T + j * h, re = 0.0, im = 0.0;
                for (int n = 0; n < N; n++) {
                    re += cos(t * x[n]);
                    im += sin(t * x[n]);
                }
                double gauss = exp(-0.5 * t * t), dr = re / N - gauss, di = im / N;
                double q = (j == 0 || j == 2 * (K - 1)) ? 0.5 * h : h;
                integral += q * gauss * (dr * dr + di * di);
            }
            total += N * integral;
        }
    free(x);
    return total / ((double)G * M);
}

static void fill_normal(float *z, size_t n, uint64_t key, double scale, double shift) {
    jepa_rng r;
    rng_init(&r, key);
    for (size_t i = 0; i < n; i++) z[i] = (float)(shift + scale * rng_normal(&r));
}

static void draw_dirs(sigreg *g, uint64_t key) {
    jepa_rng r;
    rng_init(&r, key);
    sigreg_draw(g, &r);
}

/* One configuration: loss vs oracle, gradient vs central differences of the
 * oracle. Prints the measured errors; returns the max relative grad error. */
static double check_grad(int N, int dim, int M, int G, int K, double T, double scale) {
    sigreg g;
    sigreg_init(&g, dim, M, K, T, G, N);
    draw_dirs(&g, rng_key(7, (uint64_t)N, (uint64_t)M));
    size_t nz = (size_t)G * N * dim;
    float *z = xmalloc(nz * sizeof *z), *dz = xmalloc(nz * sizeof *dz);
    double *zd = xmalloc(nz * sizeof *zd), *dd = xmalloc((size_t)M * dim * sizeof *dd);
    fill_normal(z, nz, rng_key(8, (uint64_t)N, (uint64_t)dim), scale, 0.2);
    for (size_t i = 0; i < nz; i++) zd[i] = z[i];
    for (size_t i = 0; i < (size_t)M * dim; i++) dd[i] = g.dirs[i];

    sigreg_accumulate(&g, z, N);
    double loss = sigreg_loss(&g, N);
    double ref = oracle_loss(zd, dd, G, N, dim, M, K, T);
    CU_ASSERT(fabs(loss - ref) <= 1e-5 * fabs(ref) + 1e-9);
    sigreg_backward(&g, dz, z, N, N, 1.0f);

    const double eps = 1e-4;
    double maxfd = 0.0, maxerr = 0.0;
    for (size_t i = 0; i < nz; i++) {
        double z0 = zd[i];
        zd[i] = z0 + eps;
        double lp = oracle_loss(zd, dd, G, N, dim, M, K, T);
        zd[i] = z0 - eps;
        double lm = oracle_loss(zd, dd, G, N, dim, M, K, T);
        zd[i] = z0;
        double fd = (lp - lm) / (2 * eps);
        if (fabs(fd) > maxfd) maxfd = fabs(fd);
        if (fabs(fd - dz[i]) > maxerr) maxerr = fabs(fd - dz[i]);
    }
    double rel = maxerr / maxfd;
    printf("\n  N=%d dim=%d M=%d G=%d K=%d T=%.0f: loss %.6g (oracle %.6g, rel %.1e), "
           "grad max|fd| %.3e, max err %.2e (rel %.2e)",
           N, dim, M, G, K, T, loss, ref, fabs(loss - ref) / ref, maxfd, maxerr, rel);
    CU_ASSERT(maxfd > 0.0);
    CU_ASSERT(rel < 1e-4);
    free(z), free(dz), free(zd), free(dd);
    sigreg_free(&g);
    return rel;
}

static void test_grad_check(void) {
    check_grad(5, 3, 4, 1, 17, 3.0, 1.0);
    check_grad(16, 8, 16, 2, 17, 3.0, 1.7);
    check_grad(33, 12, 7, 3, 9, 5.0, 0.6);
    check_grad(48, 16, 16, 1, 17, 3.0, 1.0);
    check_grad(9, 4, 3, 2, 2, 1.0, 2.5); /* two knots: only ends */
}

/* Hand-computed: dim 1, one direction (+-1), K = 2, T = 1: knots 0 and 1,
 * w = (1, e^{-1/2}). z = {0, 0}: EP = 2 e^{-1/2} (1 - e^{-1/2})^2.
 * z = {1, -1}: the sines cancel, EP = 2 e^{-1/2} (cos 1 - e^{-1/2})^2. */
static void test_hand_values(void) {
    sigreg g;
    sigreg_init(&g, 1, 1, 2, 1.0, 1, 2);
    CU_ASSERT_DOUBLE_EQUAL(g.t[1], 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.w[0], 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(g.w[1], 0.6065306597126334, 1e-15);
    g.dirs[0] = -1.0f;
    float z0[2] = {0.0f, 0.0f}, z1[2] = {1.0f, -1.0f};
    sigreg_accumulate(&g, z0, 2);
    CU_ASSERT_DOUBLE_EQUAL(sigreg_loss(&g, 2), 0.18780387503635723, 1e-14);
    sigreg_accumulate(&g, z1, 2);
    CU_ASSERT_DOUBLE_EQUAL(sigreg_loss(&g, 2), 0.00532072331557761, 1e-14);
    sigreg_free(&g);
    /* the default grid (T 3, 17 knots): the weights sum to the trapezoid
     * value of Int_{-3}^{3} e^{-t^2/2} dt, 2.4996663 (computed in Python);
     * the integral is sqrt(2 pi) erf(3/sqrt 2) = 2.4998609 */
    sigreg_init(&g, 1, 1, 17, 3.0, 1, 1);
    double sw = 0.0;
    for (int k = 0; k < 17; k++) sw += g.w[k];
    CU_ASSERT_DOUBLE_EQUAL(sw, 2.499666300082352, 1e-13);
    CU_ASSERT(fabs(sw - 2.4998608894830947) < 3e-4);
    sigreg_free(&g);
}

/* Mean of EP over directions for one batch (G = 1). */
static double batch_stat(sigreg *g, const float *z, int N) {
    sigreg_accumulate(g, z, N);
    return sigreg_loss(g, N);
}

static void test_null_and_collapse(void) {
    const int N = 4096, dim = 16, M = 64, K = 17;
    sigreg g;
    sigreg_init(&g, dim, M, K, 3.0, 1, N);
    draw_dirs(&g, 11);
    float *z = xmalloc((size_t)N * dim * sizeof *z);
    double null_mean = 0.0; /* E[EP] under H0: sum_k w_k (1 - phi_k^2) = 1.05246 */
    for (int k = 0; k < K; k++) null_mean += g.w[k] * (1.0 - g.phi[k] * g.phi[k]);
    CU_ASSERT_DOUBLE_EQUAL(null_mean, 1.0524641547991607, 1e-12);

    fill_normal(z, (size_t)N * dim, 12, 1.0, 0.0);
    double normal = batch_stat(&g, z, N);
    /* collapsed: every row the same vector v; EP(m) = N sum_k w_k |e^{i t_k x_m} - phi_k|^2 */
    for (int n = 1; n < N; n++) memcpy(z + (size_t)n * dim, z, dim * sizeof *z);
    double collapsed = batch_stat(&g, z, N), want = 0.0;
    for (int m = 0; m < M; m++) {
        double x = 0.0;
        for (int i = 0; i < dim; i++) x += (double)g.dirs[m * dim + i] * z[i];
        for (int k = 0; k < K; k++)
            want += N * g.w[k] * (1.0 - 2.0 * g.phi[k] * cos(g.t[k] * x) + g.phi[k] * g.phi[k]);
    }
    want /= M;
    /* anisotropic: std 4 on one axis, 0.05 on the others */
    fill_normal(z, (size_t)N * dim, 13, 1.0, 0.0);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < dim; i++) z[(size_t)n * dim + i] *= i == 0 ? 4.0f : 0.05f;
    double aniso = batch_stat(&g, z, N);
    /* right shape, wrong scale: N(0, 2^2 I) */
    fill_normal(z, (size_t)N * dim, 14, 2.0, 0.0);
    double wide = batch_stat(&g, z, N);
    printf("\n  N=%d M=%d: N(0,I) %.4f (null mean %.4f), collapsed %.1f (closed form %.1f), "
           "anisotropic %.1f, N(0,4I) %.1f",
           N, M, normal, null_mean, collapsed, want, aniso, wide);
    CU_ASSERT(normal > 0.6 * null_mean && normal < 1.6 * null_mean);
    /* float projections (sgemm) against double x here */
    CU_ASSERT(fabs(collapsed - want) <= 1e-6 * want);
    CU_ASSERT(collapsed > 100.0 * normal);
    CU_ASSERT(aniso > 100.0 * normal);
    CU_ASSERT(wide > 50.0 * normal);
    free(z);
    sigreg_free(&g);
}

/* Rows of each group (G, N, dim) split at n1: part a (G, n1, dim), b the rest. */
static void split_rows(float *a, float *b, const float *z, int G, int N, int n1, int dim) {
    for (int g = 0; g < G; g++) {
        memcpy(a + (size_t)g * n1 * dim, z + (size_t)g * N * dim, (size_t)n1 * dim * sizeof *z);
        memcpy(b + (size_t)g * (N - n1) * dim, z + ((size_t)g * N + n1) * dim,
               (size_t)(N - n1) * dim * sizeof *z);
    }
}

static void check_split(int N, int n1) {
    const int dim = 10, M = 12, G = 2, K = 17;
    size_t nz = (size_t)G * N * dim;
    sigreg one, ra, rb;
    sigreg_init(&one, dim, M, K, 3.0, G, N);
    sigreg_init(&ra, dim, M, K, 3.0, G, n1 > 0 ? n1 : 1);
    sigreg_init(&rb, dim, M, K, 3.0, G, N - n1 > 0 ? N - n1 : 1);
    draw_dirs(&one, 21), draw_dirs(&ra, 21), draw_dirs(&rb, 21);
    float *z = xmalloc(nz * 4), *dz = xmalloc(nz * 4), *za = xmalloc(nz * 4),
          *zb = xmalloc(nz * 4), *da = xmalloc(nz * 4), *db = xmalloc(nz * 4),
          *dsplit = xmalloc(nz * 4);
    fill_normal(z, nz, 22, 1.3, -0.1);
    split_rows(za, zb, z, G, N, n1, dim);

    sigreg_accumulate(&one, z, N);
    double l1 = sigreg_loss(&one, N);
    sigreg_backward(&one, dz, z, N, N, 0.5f);

    sigreg_accumulate(&ra, za, n1);
    sigreg_accumulate(&rb, zb, N - n1);
    size_t ne = (size_t)G * 2 * M * K; /* the all-reduce, by hand */
    for (size_t i = 0; i < ne; i++) ra.ecf[i] = rb.ecf[i] = ra.ecf[i] + rb.ecf[i];
    double la = sigreg_loss(&ra, N), lb = sigreg_loss(&rb, N);
    sigreg_backward(&ra, da, za, n1, N, 0.5f);
    sigreg_backward(&rb, db, zb, N - n1, N, 0.5f);
    split_rows(dsplit, dsplit + (size_t)G * n1 * dim, dz, G, N, n1, dim); /* one-shot, split */
    double maxg = 0.0, err = 0.0;
    for (size_t i = 0; i < (size_t)G * n1 * dim; i++) err = fmax(err, fabs(da[i] - dsplit[i]));
    for (size_t i = 0; i < (size_t)G * (N - n1) * dim; i++)
        err = fmax(err, fabs(db[i] - dsplit[(size_t)G * n1 * dim + i]));
    for (size_t i = 0; i < nz; i++) maxg = fmax(maxg, fabs(dz[i]));
    printf("\n  split %d+%d: loss %.12g vs %.12g (diff %.1e), grad max|g| %.3e diff %.1e", n1,
           N - n1, la, l1, fabs(la - l1), maxg, err);
    /* Not bitwise: sgemm may round a row's projection differently when the
     * batch has another row count (measured ~1e-8 relative on the loss). */
    /* every rank's loss comes from the reduced statistics alone, never from
     * its own rows (ra and rb saw different row counts) */
    CU_ASSERT(la == lb);
    CU_ASSERT(fabs(la - l1) <= 1e-6 * l1);
    CU_ASSERT(err <= 1e-6 * maxg);
    free(z), free(dz), free(za), free(zb), free(da), free(db), free(dsplit);
    sigreg_free(&one), sigreg_free(&ra), sigreg_free(&rb);
}

static void test_split_ranks(void) {
    check_split(50, 23);
    check_split(31, 0); /* a rank with no rows */
}

static void test_directions(void) {
    sigreg a, b;
    sigreg_init(&a, 33, 20, 17, 3.0, 1, 1);
    sigreg_init(&b, 33, 20, 17, 3.0, 1, 1);
    draw_dirs(&a, rng_key(5, 100, 0));
    draw_dirs(&b, rng_key(5, 100, 0));
    CU_ASSERT_EQUAL(memcmp(a.dirs, b.dirs, 20 * 33 * sizeof(float)), 0);
    double worst = 0.0, meandot = 0.0;
    for (int m = 0; m < 20; m++) {
        double ss = 0.0;
        for (int i = 0; i < 33; i++) ss += (double)a.dirs[m * 33 + i] * a.dirs[m * 33 + i];
        worst = fmax(worst, fabs(sqrt(ss) - 1.0));
    }
    CU_ASSERT(worst < 1e-6);
    draw_dirs(&b, rng_key(5, 101, 0)); /* the next step: new directions */
    CU_ASSERT_NOT_EQUAL(memcmp(a.dirs, b.dirs, 20 * 33 * sizeof(float)), 0);
    for (int m = 0; m < 20; m++)
        for (int i = 0; i < 33; i++) meandot += fabs((double)a.dirs[m * 33 + i] * b.dirs[m * 33 + i]);
    CU_ASSERT(meandot < 0.9 * 20); /* not the same rows, nor one scaled copy */
    sigreg_free(&a), sigreg_free(&b);
}

/* ecf and gradient bitwise equal at 1 and 2 OpenMP threads. */
static void test_threads(void) {
    const int N = 100, dim = 16, M = 32, G = 2;
    sigreg g;
    sigreg_init(&g, dim, M, 17, 3.0, G, N);
    draw_dirs(&g, 31);
    size_t nz = (size_t)G * N * dim, ne = (size_t)G * 2 * M * 17;
    float *z = xmalloc(nz * 4), *d1 = xmalloc(nz * 4), *d2 = xmalloc(nz * 4);
    double *e1 = xmalloc(ne * 8);
    fill_normal(z, nz, 32, 1.0, 0.0);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    sigreg_accumulate(&g, z, N);
    memcpy(e1, g.ecf, ne * 8);
    sigreg_backward(&g, d1, z, N, N, 1.0f);
    omp_set_num_threads(2);
    sigreg_accumulate(&g, z, N);
    CU_ASSERT_EQUAL(memcmp(e1, g.ecf, ne * 8), 0);
    sigreg_backward(&g, d2, z, N, N, 1.0f);
    CU_ASSERT_EQUAL(memcmp(d1, d2, nz * 4), 0);
    omp_set_num_threads(saved);
    free(z), free(d1), free(d2), free(e1);
    sigreg_free(&g);
}

/* backward accumulates (dz +=) and scales linearly. */
static void test_accumulates(void) {
    const int N = 20, dim = 6, M = 8;
    sigreg g;
    sigreg_init(&g, dim, M, 17, 3.0, 1, N);
    draw_dirs(&g, 41);
    float z[20 * 6], d1[20 * 6] = {0}, d2[20 * 6];
    fill_normal(z, sizeof z / 4, 42, 0.7, 0.3);
    for (int i = 0; i < N * dim; i++) d2[i] = 1.0f;
    sigreg_accumulate(&g, z, N);
    sigreg_backward(&g, d1, z, N, N, 1.0f);
    sigreg_backward(&g, d2, z, N, N, 3.0f);
    double err = 0.0;
    for (int i = 0; i < N * dim; i++) err = fmax(err, fabs(d2[i] - (1.0 + 3.0 * d1[i])));
    CU_ASSERT(err < 1e-6);
    sigreg_free(&g);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    static const test_case cases[] = {
        {"grad_check", test_grad_check},
        {"hand_values", test_hand_values},
        {"null_and_collapse", test_null_and_collapse},
        {"split_ranks", test_split_ranks},
        {"directions", test_directions},
        {"threads", test_threads},
        {"accumulates", test_accumulates},
    };
    return test_main("sigreg", cases, (int)(sizeof cases / sizeof cases[0]));
}
