/* test_probe.c - the linear probe: its gradient against finite differences of
 * an independent double-precision loss, accuracy on separable and on random
 * data, bitwise determinism, argument errors, and the raw-pixel probe on the
 * full Fashion-MNIST. Data directory: JEPA_FMNIST_DIR or the package's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jepa.h"
#include "shard.h"
#include "testutil.h"

/* probe.c's test hook: loss and gradient of the probe objective. */
double probe_logreg_loss(const float *X, const uint8_t *y, int n, int dim, int nclass, double wd,
                         const double *pen, const double *theta, double *grad);

/* Reference objective, plain loops in double:
 * mean_i [logsumexp(x_i W + b) - (x_i W + b)[y_i]] + wd sum_k pen_k ||W_k||^2
 * (pen NULL: every pen_k 1). */
static double ref_loss(const float *X, const uint8_t *y, int n, int dim, int C, double wd,
                       const double *pen, const double *theta) {
    const double *W = theta, *b = theta + (size_t)dim * C;
    double loss = 0, z[16];
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < C; j++) {
            z[j] = b[j];
            for (int k = 0; k < dim; k++) z[j] += (double)X[(size_t)i * dim + k] * W[k * C + j];
            mx = fmax(mx, z[j]);
        }
        for (int j = 0; j < C; j++) s += exp(z[j] - mx);
        loss += mx + log(s) - z[y[i]];
    }
    double reg = 0;
    for (int k = 0; k < dim * C; k++) reg += (pen ? pen[k / C] : 1.0) * W[k] * W[k];
    return loss / n + wd * reg;
}

/* Fills X (n, dim) with standard normals and y with labels in [0, C). */
static void random_problem(float *X, uint8_t *y, int n, int dim, int C, uint64_t seed) {
    jepa_rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < (size_t)n * dim; i++) X[i] = (float)rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)rng_below(&r, (uint32_t)C);
}

/* Analytic gradient vs central differences (h = 1e-5) of ref_loss at a
 * random theta; prints and checks the max relative difference. n > 512
 * crosses the probe's block boundaries (512 rows; dW passes of 128),
 * accumulating dW over blocks. */
static void check_grad(int n, int dim, int C, double wd, int with_pen) {
    int P = (dim + 1) * C;
    float *X = malloc((size_t)n * dim * sizeof *X);
    uint8_t *y = malloc((size_t)n);
    double *theta = malloc(P * sizeof *theta), *g = malloc(P * sizeof *g);
    CU_ASSERT_FATAL(X && y && theta && g && C <= 16);
    random_problem(X, y, n, dim, C, 42 + (uint64_t)n);
    jepa_rng r;
    rng_init(&r, 7);
    for (int i = 0; i < P; i++) theta[i] = 0.5 * rng_normal(&r);
    double *pen = NULL; /* probe_run's per-feature penalty weights: positive, unequal */
    if (with_pen) {
        pen = malloc((size_t)dim * sizeof *pen);
        for (int k = 0; k < dim; k++) pen[k] = 0.1 + 3.0 * rng_uniform(&r);
    }

    double f = probe_logreg_loss(X, y, n, dim, C, wd, pen, theta, g);
    double fref = ref_loss(X, y, n, dim, C, wd, pen, theta);
    CU_ASSERT(fabs(f - fref) <= 1e-5 * fabs(fref));

    double maxdiff = 0, maxfd = 0;
    for (int i = 0; i < P; i++) {
        const double h = 1e-5, t0 = theta[i];
        theta[i] = t0 + h;
        double fp = ref_loss(X, y, n, dim, C, wd, pen, theta);
        theta[i] = t0 - h;
        double fm = ref_loss(X, y, n, dim, C, wd, pen, theta);
        theta[i] = t0;
        double fd = (fp - fm) / (2 * h);
        maxdiff = fmax(maxdiff, fabs(fd - g[i]));
        maxfd = fmax(maxfd, fabs(fd));
    }
    double rel = maxdiff / maxfd;
    printf("\n    n=%d dim=%d C=%d wd=%g%s: loss %.9f (ref %.9f), max |g - fd| / max |fd| = %.2e",
           n, dim, C, wd, pen ? " pen" : "", f, fref, rel);
    CU_ASSERT(maxfd > 1e-3); /* the comparison is not vacuous */
    CU_ASSERT(rel < 1e-4);
    free(X);
    free(y);
    free(theta);
    free(g);
    free(pen);
}

static void test_gradient(void) {
    check_grad(7, 4, 3, 0.1, 0);
    check_grad(7, 4, 3, 0.0, 0);
    check_grad(5000, 3, 4, 1e-3, 0);
    /* the per-feature penalty probe_run fits with (the hook's pen) */
    check_grad(7, 4, 3, 0.5, 1);
    check_grad(131, 24, 10, 0.05, 1);
    /* the vector paths of probe_logits and probe_dw: dim past two vectors
     * with a masked tail (37) or a whole last vector (24, on 8 lanes);
     * classes padded to 15 and 10; an odd row count */
    check_grad(1029, 37, 11, 1e-3, 0);
    check_grad(131, 24, 10, 0.0, 0);
}

/* Gaussian blobs: class k centred at sep * e_k (k < dim), unit variance. */
static void blobs(float *X, uint8_t *y, int n, int dim, int C, double sep, jepa_rng *r) {
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)rng_below(r, (uint32_t)C);
        for (int k = 0; k < dim; k++)
            X[(size_t)i * dim + k] = (float)(rng_normal(r) + (k == y[i] ? sep : 0.0));
    }
}

/* A training and a test set of blobs, drawn in that order from one seed */
static void blob_sets(float *Xtr, uint8_t *ytr, int ntr, float *Xte, uint8_t *yte, int nte,
                      int dim, int C, double sep, uint64_t seed) {
    jepa_rng r;
    rng_init(&r, seed);
    blobs(Xtr, ytr, ntr, dim, C, sep, &r);
    blobs(Xte, yte, nte, dim, C, sep, &r);
}

static void test_separable_blobs(void) {
    enum { NTR = 600, NTE = 3000, DIM = 5, C = 3 };
    static float Xtr[NTR * DIM], Xte[NTE * DIM];
    static uint8_t ytr[NTR], yte[NTE];
    /* means 5 apart on axes: pairwise distance 7.1 sigma, Bayes error ~1e-4 */
    blob_sets(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 5.0, 1);
    probe_result res;
    char err[256] = "";
    int rc = probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.2, 100, 3, &res, err, sizeof err);
    CU_ASSERT_FATAL(rc == 0);
    printf("\n    blobs: test %.4f val %.4f wd %g", res.test_acc, res.val_acc, res.best_wd);
    CU_ASSERT(res.test_acc > 0.99);
    CU_ASSERT(res.val_acc > 0.98);
    /* every wd separates the val rows perfectly here, so ties must pick the
     * largest in the grid */
    if (res.val_acc == 1.0) CU_ASSERT_DOUBLE_EQUAL(res.best_wd, 0.1, 1e-12);
}

/* Overlapping blobs (no separating plane, so many L-BFGS steps), drawn
 * once and shared by the tests that read them */
enum { OB_NTR = 2000, OB_NTE = 500, OB_DIM = 20, OB_C = 4 };
static void overlapping_blobs(float **Xtr, uint8_t **ytr, float **Xte, uint8_t **yte) {
    static float xtr[OB_NTR * OB_DIM], xte[OB_NTE * OB_DIM];
    static uint8_t ltr[OB_NTR], lte[OB_NTE];
    static int drawn;
    if (!drawn) blob_sets(xtr, ltr, OB_NTR, xte, lte, OB_NTE, OB_DIM, OB_C, 1.0, 5);
    drawn = 1;
    *Xtr = xtr, *ytr = ltr, *Xte = xte, *yte = lte;
}

/* Nearly collinear features, as mean-pooled encoder features are: every
 * column is one shared signal plus its own noise, whose scale falls
 * geometrically from 1 to 1e-3 across the columns, and the label is the sign
 * of the two smallest noises' difference: a direction with ~1e-6 of the
 * variance, among 30 others spread over three decades. Without whitening
 * L-BFGS crawls along it (this probe scored chance, 0.51, at 30 iterations
 * before it whitened); whitened, the problem is isotropic and easy (0.97). */
static void test_collinear(void) {
    enum { NTR = 4000, NTE = 2000, DIM = 32 };
    static float Xtr[NTR * DIM], Xte[NTE * DIM];
    static uint8_t ytr[NTR], yte[NTE];
    jepa_rng r;
    rng_init(&r, 21);
    for (int pass = 0; pass < 2; pass++) {
        float *X = pass ? Xte : Xtr;
        uint8_t *y = pass ? yte : ytr;
        int n = pass ? NTE : NTR;
        for (int i = 0; i < n; i++) {
            double z = rng_normal(&r), e[DIM];
            for (int j = 0; j < DIM; j++) {
                e[j] = rng_normal(&r);
                X[(size_t)i * DIM + j] = (float)(3.0 + z + pow(1e-3, j / (DIM - 1.0)) * e[j]);
            }
            y[i] = e[DIM - 1] - e[DIM - 2] > 0;
        }
    }
    probe_result res;
    char err[256] = "";
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, 2, 0.2, 30, 4, &res, err,
                              sizeof err) == 0);
    printf("\n    collinear: test %.4f val %.4f wd %g", res.test_acc, res.val_acc, res.best_wd);
    CU_ASSERT(res.test_acc > 0.9);
    CU_ASSERT(res.val_acc > 0.9);
}

double probe_fit_one(const float *X, const uint8_t *y, int n, int dim, int nclass, double wd,
                     int max_iters, int *iters, int *capped, double *gmax);

/* Regularised fits on collinear features converge: the penalty of the
 * standardised problem weighs each whitened direction by 1 / its
 * eigenvalue, here spread over six decades. With a scalar initial Hessian
 * L-BFGS took 300 (the cap), 217, 74, 24 and 7 iterations for wd 1e-1 ..
 * 1e-5 (-march=native here; 300 / 195 / 72 / 24 / 7 without FMA), and the
 * probe's fits on encoder features stopped at its cap; with the penalty's
 * own diagonal in it, 5 or 6. Labels are a noisy rule on the
 * small-variance directions: the classes overlap, so every wd, 0
 * included, has a finite minimiser, and the fit must reach the gradient
 * tolerance (1e-5), not stop on a stalled loss. */
static void test_regularised_converge(void) {
    enum { N = 3000, DIM = 32, C = 3 };
    static float X[N * DIM];
    static uint8_t y[N];
    jepa_rng r;
    rng_init(&r, 33);
    for (int i = 0; i < N; i++) {
        double z = rng_normal(&r), e[DIM];
        for (int j = 0; j < DIM; j++) {
            e[j] = rng_normal(&r);
            X[(size_t)i * DIM + j] = (float)(3.0 + z + pow(1e-3, j / (DIM - 1.0)) * e[j]);
        }
        double t = e[DIM - 1] - e[DIM - 2] + rng_normal(&r);
        y[i] = (uint8_t)(t < -0.5 ? 0 : t < 0.5 ? 1 : 2);
    }
    const double wds[] = {1e-1, 1e-2, 1e-3, 1e-4, 1e-5};
    printf("\n    iterations to converge, wd 1e-1 .. 1e-5:");
    for (int k = 0; k < 5; k++) {
        int iters = -1, capped = -1;
        double gmax = -1;
        double f = probe_fit_one(X, y, N, DIM, C, wds[k], 300, &iters, &capped, &gmax);
        printf(" %d", iters);
        CU_ASSERT(isfinite(f));
        CU_ASSERT_EQUAL(capped, 0);
        CU_ASSERT(gmax >= 0 && gmax <= 1e-5);
        CU_ASSERT(iters >= 1 && iters <= 20);
    }
}

/* The grid: decades down to wd_min, then 0 if wd_zero; without the wd-0
 * fit the probe picks a regularised fit, which converges; a wd_min off
 * the decades is refused (the default grid: test_deterministic). */
static void test_grid(void) {
    double wd[16];
    CU_ASSERT_EQUAL(probe_grid_values(NULL, wd), 6);
    CU_ASSERT(wd[0] == 1e-1 && wd[4] == 1e-5 && wd[5] == 0.0);
    CU_ASSERT_EQUAL(probe_grid_values(&(probe_grid){1e-3, 0}, wd), 3);
    CU_ASSERT(wd[0] == 1e-1 && wd[1] == 1e-2 && wd[2] == 1e-3);
    CU_ASSERT_EQUAL(probe_grid_values(&(probe_grid){1e-12, 1}, wd), 13);
    CU_ASSERT(wd[11] == 1e-12 && wd[12] == 0.0);
    CU_ASSERT_EQUAL(probe_grid_values(&(probe_grid){0.1, 0}, wd), 1);
    const double bad[] = {3e-6, 0.0, 0.2, 1e-13, -1e-3};
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(probe_grid_values(&(probe_grid){bad[i], 1}, wd), -1);

    float *Xtr, *Xte;
    uint8_t *ytr, *yte;
    overlapping_blobs(&Xtr, &ytr, &Xte, &yte);
    probe_result c;
    char err[256] = "";
    probe_grid g = {1e-8, 0};
    CU_ASSERT_FATAL(probe_run_grid(Xtr, ytr, OB_NTR, Xte, yte, OB_NTE, OB_DIM, OB_C, 0.25, 200,
                                   &g, 9, &c, err, sizeof err) == 0);
    printf("\n    grid to 1e-8 without 0: wd %g, test %.4f, refit %d iterations", c.best_wd,
           c.test_acc, c.iters);
    CU_ASSERT(c.best_wd >= 1e-8 && c.best_wd <= 0.1);
    CU_ASSERT_EQUAL(c.capped, 0);
    CU_ASSERT(c.test_acc > 0.45); /* 4 classes: chance 0.25; the default grid scores 0.564 */
    g = (probe_grid){3e-6, 1};
    CU_ASSERT_EQUAL(probe_run_grid(Xtr, ytr, OB_NTR, Xte, yte, OB_NTE, OB_DIM, OB_C, 0.25, 200,
                                   &g, 9, &c, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "probe: wd_min=3e-06 is not a power of ten in [1e-12, 0.1]");
}

/* The result says whether the chosen fit converged: overlapping blobs (no
 * separating plane, so every wd has a finite minimiser) converge well
 * inside 500 iterations and not in 2 */
static void test_convergence_reported(void) {
    enum { NTR = 600, NTE = 600, DIM = 5, C = 3 };
    static float Xtr[NTR * DIM], Xte[NTE * DIM];
    static uint8_t ytr[NTR], yte[NTE];
    blob_sets(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 1.0, 5);
    probe_result a, b;
    char err[256] = "";
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.2, 500, 3, &a, err,
                              sizeof err) == 0);
    CU_ASSERT_EQUAL(a.capped, 0);
    CU_ASSERT(a.iters >= 1 && a.iters < 500);
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.2, 2, 3, &b, err,
                              sizeof err) == 0);
    CU_ASSERT_EQUAL(b.capped, 1);
    CU_ASSERT_EQUAL(b.iters, 2);
}

static void test_random_labels(void) {
    enum { NTR = 300, NTE = 3000, DIM = 5, C = 3 };
    static float Xtr[NTR * DIM], Xte[NTE * DIM];
    static uint8_t ytr[NTR], yte[NTE];
    random_problem(Xtr, ytr, NTR, DIM, C, 11);
    random_problem(Xte, yte, NTE, DIM, C, 12);
    probe_result res;
    char err[256] = "";
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.2, 100, 3, &res, err,
                              sizeof err) == 0);
    printf("\n    random labels: test %.4f val %.4f wd %g", res.test_acc, res.val_acc,
           res.best_wd);
    /* test labels are independent of everything the probe saw, so accuracy
     * is Binomial(3000, 1/3) / 3000: sd 0.0086; the bounds are 7+ sd away */
    CU_ASSERT(res.test_acc > 0.27);
    CU_ASSERT(res.test_acc < 0.40);
}

/* Deterministic, and probe_run is probe_run_grid over the default grid */
static void test_deterministic(void) {
    enum { NTR = OB_NTR, NTE = OB_NTE, DIM = OB_DIM, C = OB_C };
    float *Xtr, *Xte;
    uint8_t *ytr, *yte;
    overlapping_blobs(&Xtr, &ytr, &Xte, &yte);
    probe_result a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0xff, sizeof b);
    char err[256] = "";
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.25, 200, 9, &a, err,
                              sizeof err) == 0);
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.25, 200, 9, &b, err,
                              sizeof err) == 0);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    memset(&b, 0xff, sizeof b);
    probe_grid g = PROBE_GRID_DEFAULT;
    CU_ASSERT_FATAL(probe_run_grid(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.25, 200, &g, 9, &b,
                                   err, sizeof err) == 0);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    /* another seed is another split: still a sensible fit */
    CU_ASSERT_FATAL(probe_run(Xtr, ytr, NTR, Xte, yte, NTE, DIM, C, 0.25, 200, 10, &c, err,
                              sizeof err) == 0);
    printf("\n    seed 9: test %.4f val %.4f wd %g; seed 10: test %.4f val %.4f wd %g",
           a.test_acc, a.val_acc, a.best_wd, c.test_acc, c.val_acc, c.best_wd);
    CU_ASSERT(fabs(a.test_acc - c.test_acc) < 0.05);
}

/* Each bad argument is refused with -1 and a message naming it. */
static void test_bad_arguments(void) {
    float X[8 * 2] = {0}, Xnan[8 * 2] = {0};
    uint8_t y[8] = {0, 1, 0, 1, 0, 1, 0, 1}, ybad[8] = {0, 1, 2, 1, 0, 1, 0, 1};
    Xnan[5] = NAN;
    probe_result res;
    char err[256];
    struct {
        const float *ftr, *fte;
        const uint8_t *ytr, *yte;
        int ntr, nte, dim, nclass, iters;
        double vf;
        const char *needle;
    } cases[] = {
        {X, X, y, y, 0, 8, 2, 2, 10, 0.25, "ntr > 0"},
        {X, X, y, y, 8, 0, 2, 2, 10, 0.25, "nte > 0"},
        {X, X, y, y, 8, 8, 0, 2, 10, 0.25, "dim > 0"},
        {X, X, y, y, 8, 8, 2, 1, 10, 0.25, "nclass=1 out of range"},
        {X, X, y, y, 8, 8, 2, 1001, 10, 0.25, "nclass=1001 out of range"},
        {X, X, y, y, 8, 8, 2, 2, 0, 0.25, "max_iters=0"},
        {X, X, y, y, 8, 8, 2, 2, 10, 0.0, "val_frac=0"},
        {X, X, y, y, 8, 8, 2, 2, 10, 0.01, "leaves 0 validation rows"},
        {X, X, y, y, 8, 8, 2, 2, 10, 0.99, "leaves 8 validation rows"},
        {X, X, y, y, 8, 8, 2, 2, 10, NAN, "val_frac=nan"},
        {X, X, ybad, y, 8, 8, 2, 2, 10, 0.25, "train label 2 at row 2 >= nclass 2"},
        {X, X, y, ybad, 8, 8, 2, 2, 10, 0.25, "test label 2 at row 2 >= nclass 2"},
        {Xnan, X, y, y, 8, 8, 2, 2, 10, 0.25, "train feature at row 2, column 1 is not finite"},
        {X, Xnan, y, y, 8, 8, 2, 2, 10, 0.25, "test feature at row 2, column 1 is not finite"},
        {NULL, X, y, y, 8, 8, 2, 2, 10, 0.25, "NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = 0;
        int rc = probe_run(cases[i].ftr, cases[i].ytr, cases[i].ntr, cases[i].fte, cases[i].yte,
                           cases[i].nte, cases[i].dim, cases[i].nclass, cases[i].vf,
                           cases[i].iters, 1, &res, err, sizeof err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].needle));
        if (rc != -1 || !strstr(err, cases[i].needle))
            fprintf(stderr, "\n  case %zu: rc %d, err '%s'", i, rc, err);
    }
    /* the smallest legal problem runs */
    CU_ASSERT_EQUAL(probe_run(X, y, 8, X, y, 8, 2, 2, 0.25, 10, 1, &res, err, sizeof err), 0);
}

/* Raw-pixel probe on Fashion-MNIST: features = pixels / 255, full 60k train,
 * 10k test, 100 L-BFGS iterations per fit. The published figure for raw-pixel
 * logistic regression is 0.8445. ~40 s with one OpenBLAS thread on a 2-core
 * EPYC VM, so it stays in the default run. */
static void test_fmnist(void) {
    const int max_iters = 100;
    const char *dir = getenv("JEPA_FMNIST_DIR");
    if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
    char a[1024], b[1024], err[512] = "";
    shard_images tr, te;
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", dir);
    int rc = shard_idx_read(&tr, a, b, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s (set JEPA_FMNIST_DIR)\n", err);
    CU_ASSERT_FATAL(rc == 0);
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte.gz", dir);
    CU_ASSERT_FATAL(shard_idx_read(&te, a, b, err, sizeof err) == 0);
    const int dim = (int)(tr.schema.height * tr.schema.width), ntr = (int)tr.n, nte = (int)te.n;
    float *ftr = malloc((size_t)ntr * dim * sizeof *ftr);
    float *fte = malloc((size_t)nte * dim * sizeof *fte);
    CU_ASSERT_FATAL(ftr && fte);
    for (size_t i = 0; i < (size_t)ntr * dim; i++) ftr[i] = tr.pixels[i] / 255.0f;
    for (size_t i = 0; i < (size_t)nte * dim; i++) fte[i] = te.pixels[i] / 255.0f;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    probe_result res;
    rc = probe_run(ftr, tr.labels, ntr, fte, te.labels, nte, dim, 10, 0.1, max_iters, 0, &res,
                   err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    CU_ASSERT_FATAL(rc == 0);
    printf("\n    fashion-mnist raw pixels, %d train, %d iters: test %.4f val %.4f wd %g, "
           "%.1f s",
           ntr, max_iters, res.test_acc, res.val_acc, res.best_wd, sec);
    CU_ASSERT(res.test_acc > 0.835);
    free(ftr);
    free(fte);
    shard_images_free(&tr);
    shard_images_free(&te);
}

static const test_case cases[] = {
    {"gradient_vs_finite_differences", test_gradient},
    {"separable_blobs", test_separable_blobs},
    {"collinear_features", test_collinear},
    {"regularised_fits_converge", test_regularised_converge},
    {"weight_decay_grid", test_grid},
    {"convergence_reported", test_convergence_reported},
    {"random_labels_at_chance", test_random_labels},
    {"deterministic", test_deterministic},
    {"bad_arguments", test_bad_arguments},
    {"fmnist_raw_pixels", test_fmnist},
};

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    return test_main("probe", cases, sizeof cases / sizeof cases[0]);
}
