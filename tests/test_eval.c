/* test_eval.c - evaluation on feature matrices: the weighted kNN against a
 * plain double-precision implementation, its tie rules, thread invariance
 * and errors; the class-balanced few-label subsets and probe; and
 * eval_features against the standalone calls, with its printed lines and
 * JSON fragment. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "testutil.h"

/* ---------------------------------------------------------------- data */

/* n points of C Gaussian clusters in dim: centre c ~ N(0, 1) per coordinate
 * (the same centres for every call with the same cseed), point = centre +
 * noise * N(0, 1); labels cycle 0..C-1 so classes are balanced. */
static void clusters(float *X, uint8_t *y, int n, int dim, int C, double noise, uint64_t cseed,
                     uint64_t seed) {
    double *ctr = malloc((size_t)C * dim * sizeof *ctr);
    jepa_rng r;
    rng_init(&r, cseed);
    for (int i = 0; i < C * dim; i++) ctr[i] = rng_normal(&r);
    rng_init(&r, seed);
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % C);
        for (int j = 0; j < dim; j++)
            X[(size_t)i * dim + j] = (float)(ctr[y[i] * dim + j] + noise * rng_normal(&r));
    }
    free(ctr);
}

static void random_set(float *X, uint8_t *y, int n, int dim, int C, uint64_t seed) {
    jepa_rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < (size_t)n * dim; i++) X[i] = (float)rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)rng_below(&r, (uint32_t)C);
}

/* ------------------------------------------------------- kNN reference */

/* DINO's rule written out in double, O(k ntr) selection per test row:
 * normalise, cosine, the k largest (lower index first on equal values),
 * sum exp(s / T) per class, arg-max (lower class on ties). margin (nte) gets
 * the smaller of the gap between the k-th and (k+1)-th similarity and the
 * relative gap between the two best class scores: float rounding can only
 * change a prediction whose margin is below ~1e-6. */
static void ref_knn(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, int nte,
                    int dim, int C, int k, double T, uint8_t *pred, double *margin) {
    double *tr = malloc((size_t)ntr * dim * sizeof *tr), *q = malloc(dim * sizeof *q);
    double *s = malloc(ntr * sizeof *s), votes[256];
    char *used = malloc(ntr);
    for (int i = 0; i < ntr; i++) {
        double nn = 0;
        for (int j = 0; j < dim; j++) nn += (double)ftr[(size_t)i * dim + j] * ftr[(size_t)i * dim + j];
        nn = fmax(sqrt(nn), 1e-12);
        for (int j = 0; j < dim; j++) tr[(size_t)i * dim + j] = ftr[(size_t)i * dim + j] / nn;
    }
    for (int t = 0; t < nte; t++) {
        double nn = 0;
        for (int j = 0; j < dim; j++) nn += (double)fte[(size_t)t * dim + j] * fte[(size_t)t * dim + j];
        nn = fmax(sqrt(nn), 1e-12);
        for (int j = 0; j < dim; j++) q[j] = fte[(size_t)t * dim + j] / nn;
        for (int i = 0; i < ntr; i++) {
            s[i] = 0;
            for (int j = 0; j < dim; j++) s[i] += q[j] * tr[(size_t)i * dim + j];
        }
        memset(used, 0, ntr);
        memset(votes, 0, sizeof votes);
        double kth = 0;
        for (int c = 0; c < k; c++) {
            int best = -1;
            for (int i = 0; i < ntr; i++)
                if (!used[i] && (best < 0 || s[i] > s[best])) best = i;
            used[best] = 1;
            votes[ytr[best]] += exp(s[best] / T);
            kth = s[best];
        }
        double next = -INFINITY;
        for (int i = 0; i < ntr; i++)
            if (!used[i]) next = fmax(next, s[i]);
        int b = 0;
        for (int c = 1; c < C; c++)
            if (votes[c] > votes[b]) b = c;
        double second = 0;
        for (int c = 0; c < C; c++)
            if (c != b) second = fmax(second, votes[c]);
        pred[t] = (uint8_t)b;
        if (margin) margin[t] = fmin(kth - next, (votes[b] - second) / votes[b]);
    }
    free(tr);
    free(q);
    free(s);
    free(used);
}

/* ------------------------------------------------------------- kNN tests */

static void test_knn_clusters(void) {
    enum { NTR = 2000, NTE = 500, D = 32, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE], p1[NTE], p2[NTE];
    clusters(ftr, ytr, NTR, D, C, 0.5, 9, 1);
    clusters(fte, yte, NTE, D, C, 0.5, 9, 2);
    double acc = 0;
    char err[256];
    CU_ASSERT_FATAL(knn_run(ftr, ytr, NTR, fte, yte, NTE, D, C, 20, 0.07, &acc, err, sizeof err) == 0);
    printf("\n    clusters: knn acc %.4f", acc);
    CU_ASSERT(acc >= 0.99);
    /* scaling a row by a positive factor is invisible after normalisation */
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 20, 0.07, p1, err, sizeof err) == 0);
    jepa_rng r;
    rng_init(&r, 3);
    for (int i = 0; i < NTE; i++) {
        float a = (float)(0.01 + 100 * rng_uniform(&r));
        for (int j = 0; j < D; j++) fte[i * D + j] *= a;
    }
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 20, 0.07, p2, err, sizeof err) == 0);
    int diff = 0;
    for (int i = 0; i < NTE; i++) diff += p1[i] != p2[i];
    CU_ASSERT(diff == 0);
    free(ftr);
    free(fte);
}

/* Random features, several (k, T), training rows crossing the 4096-row
 * block and test rows not a multiple of the 64-row block: every prediction
 * equals the double reference. */
static void test_knn_vs_naive(void) {
    enum { NTR = 5000, NTE = 301, D = 24, C = 7 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE], p[NTE], ref[NTE];
    double margin[NTE];
    random_set(ftr, ytr, NTR, D, C, 21);
    random_set(fte, yte, NTE, D, C, 22);
    static const struct {
        int k;
        double T;
    } cfg[] = {{20, 0.07}, {5, 0.5}, {1, 0.07}, {200, 0.07}};
    char err[256];
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, cfg[c].k, cfg[c].T, p, err,
                                    sizeof err) == 0);
        ref_knn(ftr, ytr, NTR, fte, NTE, D, C, cfg[c].k, cfg[c].T, ref, margin);
        int diff = 0, close = 0;
        double mmin = INFINITY;
        for (int i = 0; i < NTE; i++) {
            diff += p[i] != ref[i];
            close += margin[i] < 1e-5;
            mmin = fmin(mmin, margin[i]);
        }
        printf("\n    k=%d T=%g: %d/%d predictions differ from the double reference "
               "(smallest margin %.2e, %d below 1e-5)", cfg[c].k, cfg[c].T, diff, NTE, mmin, close);
        CU_ASSERT(diff == 0);
    }
    free(ftr);
    free(fte);
}

/* A temperature small enough that exp(s / T) overflows a double (s / T up
 * to 1e5): the vote is the nearest neighbour's class, as the limit T -> 0
 * of the weighted vote is (every prediction as k = 1's). It was the lowest
 * class among those at inf, chance on real data. */
static void test_knn_small_temp(void) {
    enum { NTR = 1500, NTE = 200, D = 16, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE], p[NTE], p1[NTE];
    random_set(ftr, ytr, NTR, D, C, 41);
    random_set(fte, yte, NTE, D, C, 42);
    char err[256];
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 1, 0.07, p1, err, sizeof err) == 0);
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 20, 1e-5, p, err, sizeof err) == 0);
    int diff = 0;
    for (int i = 0; i < NTE; i++) diff += p[i] != p1[i];
    CU_ASSERT(diff == 0);
    free(ftr);
    free(fte);
}

/* k = 1 is the nearest neighbour: a test set of (positively scaled) copies
 * of training rows with random labels is classified perfectly, and on
 * random data the prediction is the label of the arg-max cosine. */
static void test_knn_k1(void) {
    enum { NTR = 1500, NTE = 200, D = 16, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE], p[NTE];
    random_set(ftr, ytr, NTR, D, C, 31);
    jepa_rng r;
    rng_init(&r, 32);
    for (int i = 0; i < NTE; i++) {
        int src = (int)rng_below(&r, NTR);
        float a = (float)(0.5 + rng_uniform(&r));
        for (int j = 0; j < D; j++) fte[i * D + j] = a * ftr[src * D + j];
        yte[i] = ytr[src];
    }
    double acc = 0;
    char err[256];
    CU_ASSERT_FATAL(knn_run(ftr, ytr, NTR, fte, yte, NTE, D, C, 1, 0.07, &acc, err, sizeof err) == 0);
    CU_ASSERT(acc == 1.0);
    random_set(fte, yte, NTE, D, C, 33);
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 1, 0.07, p, err, sizeof err) == 0);
    int diff = 0;
    for (int t = 0; t < NTE; t++) {
        int best = 0;
        double bs = -INFINITY, nq = 0;
        for (int j = 0; j < D; j++) nq += (double)fte[t * D + j] * fte[t * D + j];
        for (int i = 0; i < NTR; i++) {
            double d = 0, ni = 0;
            for (int j = 0; j < D; j++) {
                d += (double)fte[t * D + j] * ftr[i * D + j];
                ni += (double)ftr[i * D + j] * ftr[i * D + j];
            }
            d /= sqrt(nq * ni);
            if (d > bs) {
                bs = d;
                best = i;
            }
        }
        diff += p[t] != ytr[best];
    }
    CU_ASSERT(diff == 0);
    free(ftr);
    free(fte);
}

/* Ties: equal similarities rank the lower training index first, also
 * across the 4096-row training block; equal class scores pick the lower
 * class. All similarities here are exact in float (0 or 1). */
static void test_knn_ties(void) {
    enum { NTR = 5000, D = 4 };
    float *ftr = calloc((size_t)NTR * D, sizeof(float));
    uint8_t *ytr = calloc(NTR, 1), p;
    for (int i = 0; i < NTR; i++) {
        ftr[i * D + 1 + i % 3] = 1.0f; /* orthogonal to the query: similarity 0 */
        ytr[i] = 0;
    }
    const float q[D] = {2, 0, 0, 0};
    int a = 4100, b = 90; /* b < 4096 <= a: the later block holds the higher index */
    memset(ftr + a * D, 0, sizeof(float) * D);
    memset(ftr + b * D, 0, sizeof(float) * D);
    ftr[a * D] = 3.0f;
    ytr[a] = 5;
    ftr[b * D] = 0.5f;
    ytr[b] = 2;
    char err[256];
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, q, 1, D, 8, 1, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 2); /* row 90 before row 4100 */
    ytr[b] = 7;
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, q, 1, D, 8, 1, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 7);
    /* k = 2: one vote each for classes 7 and 5, equal weights: class 5 */
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, q, 1, D, 8, 2, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 5);
    /* k = 3: the third neighbour is the lowest-index similarity-0 row
     * (class 0), far lighter than exp(1 / T): still class 5 */
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, q, 1, D, 8, 3, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 5);
    /* when a full list drops one of two equal similarities it keeps the
     * lower index: rows 90 (class 2) and 4100 (class 5) at s = 0.6, then
     * 4200 (class 2) and 4300 (class 5) at s = 1; k = 3 keeps 4200, 4300
     * and row 90, so class 2 wins (with row 4100 instead, class 5 would) */
    const float h[D] = {0.6f, 0.8f, 0, 0}; /* q is (1, 0, 0, 0): s = h[0] / |h|, exactly */
    memcpy(ftr + b * D, h, sizeof h);
    memcpy(ftr + a * D, h, sizeof h);
    ytr[b] = 2;
    ytr[a] = 5;
    memset(ftr + 4200 * D, 0, sizeof(float) * D);
    memset(ftr + 4300 * D, 0, sizeof(float) * D);
    ftr[4200 * D] = ftr[4300 * D] = 1.0f;
    ytr[4200] = 2;
    ytr[4300] = 5;
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, q, 1, D, 8, 3, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 2);
    /* a zero query row has similarity 0 to everything: the k lowest rows */
    const float z[D] = {0, 0, 0, 0};
    ytr[0] = 6;
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, z, 1, D, 8, 1, 0.07, &p, err, sizeof err) == 0);
    CU_ASSERT(p == 6);
    free(ftr);
    free(ytr);
}

/* The same predictions at 1 and 2 threads (blocks do not depend on them). */
static void test_knn_threads(void) {
    enum { NTR = 5000, NTE = 333, D = 20, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE], p1[NTE], p2[NTE];
    random_set(ftr, ytr, NTR, D, C, 41);
    random_set(fte, yte, NTE, D, C, 42);
    int saved = omp_get_max_threads();
    char err[256];
    omp_set_num_threads(1);
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 20, 0.07, p1, err, sizeof err) == 0);
    omp_set_num_threads(2);
    CU_ASSERT_FATAL(knn_predict(ftr, ytr, NTR, fte, NTE, D, C, 20, 0.07, p2, err, sizeof err) == 0);
    omp_set_num_threads(saved);
    CU_ASSERT(memcmp(p1, p2, NTE) == 0);
    free(ftr);
    free(fte);
}

/* Expects failure with a message containing `want`. */
static void expect_knn_err(int rc, const char *err, const char *want) {
    CU_ASSERT(rc == -1);
    if (!strstr(err, want)) printf("\n    error '%s' lacks '%s'", err, want);
    CU_ASSERT(strstr(err, want) != NULL);
}

static void test_knn_errors(void) {
    enum { N = 30, D = 3 };
    float f[N * D];
    uint8_t y[N], p[N];
    random_set(f, y, N, D, 4, 51);
    double acc;
    char err[256];
    expect_knn_err(knn_predict(f, y, N, f, N, D, 4, 0, 0.07, p, err, sizeof err), err, "k=0");
    expect_knn_err(knn_predict(f, y, N, f, N, D, 4, 31, 0.07, p, err, sizeof err), err, "k=31");
    expect_knn_err(knn_predict(f, y, N, f, N, D, 4, 5, 0, p, err, sizeof err), err, "temperature=0");
    expect_knn_err(knn_predict(f, y, N, f, N, D, 4, 5, NAN, p, err, sizeof err), err, "temperature=nan");
    expect_knn_err(knn_predict(f, y, N, f, N, D, 1, 5, 0.07, p, err, sizeof err), err, "nclass=1");
    expect_knn_err(knn_predict(f, y, N, f, N, D, 300, 5, 0.07, p, err, sizeof err), err, "nclass=300");
    expect_knn_err(knn_predict(NULL, y, N, f, N, D, 4, 5, 0.07, p, err, sizeof err), err, "NULL");
    expect_knn_err(knn_predict(f, y, N, f, 0, D, 4, 5, 0.07, p, err, sizeof err), err, "nte > 0");
    y[7] = 4;
    expect_knn_err(knn_predict(f, y, N, f, N, D, 4, 5, 0.07, p, err, sizeof err), err,
                   "train label 4 at row 7");
    y[7] = 0;
    uint8_t yt[N];
    memcpy(yt, y, N);
    yt[11] = 9;
    expect_knn_err(knn_run(f, y, N, f, yt, N, D, 4, 5, 0.07, &acc, err, sizeof err), err,
                   "test label 9 at row 11");
    float g[N * D];
    memcpy(g, f, sizeof g);
    g[13 * D + 2] = NAN;
    expect_knn_err(knn_predict(g, y, N, f, N, D, 4, 5, 0.07, p, err, sizeof err), err,
                   "train feature at row 13, column 2");
    expect_knn_err(knn_predict(f, y, N, g, N, D, 4, 5, 0.07, p, err, sizeof err), err,
                   "test feature at row 13, column 2");
    g[13 * D + 2] = INFINITY;
    expect_knn_err(knn_predict(f, y, N, g, N, D, 4, 5, 0.07, p, err, sizeof err), err,
                   "not finite");
}

/* ---------------------------------------------------- few-label subsets */

static void class_counts(const uint32_t *idx, int n, const uint8_t *y, int *cnt, int C) {
    memset(cnt, 0, sizeof(int) * C);
    for (int i = 0; i < n; i++) cnt[y[idx[i]]]++;
}

static void test_fewlabel_subset(void) {
    enum { N = 6000, C = 10 };
    uint8_t *y = malloc(N);
    jepa_rng r;
    rng_init(&r, 61);
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % C);
    for (int i = N - 1; i > 0; i--) { /* balanced, in random order */
        int j = (int)rng_below(&r, (uint32_t)i + 1);
        uint8_t t = y[i];
        y[i] = y[j];
        y[j] = t;
    }
    uint32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *t10 = malloc(N * sizeof *t10);
    int na, nb, n10, cnt[C];
    char err[256];
    CU_ASSERT_FATAL(probe_fewlabel_subset(y, N, C, 0.01, 7, a, &na, err, sizeof err) == 0);
    CU_ASSERT(na == 60);
    class_counts(a, na, y, cnt, C);
    for (int c = 0; c < C; c++) CU_ASSERT(cnt[c] == 6);
    for (int i = 1; i < na; i++) CU_ASSERT(a[i] > a[i - 1]); /* ascending, distinct */
    CU_ASSERT(a[na - 1] < N);
    /* a pure function of the seed */
    CU_ASSERT_FATAL(probe_fewlabel_subset(y, N, C, 0.01, 7, b, &nb, err, sizeof err) == 0);
    CU_ASSERT(nb == na && memcmp(a, b, sizeof *a * na) == 0);
    CU_ASSERT_FATAL(probe_fewlabel_subset(y, N, C, 0.01, 8, b, &nb, err, sizeof err) == 0);
    CU_ASSERT(nb == na && memcmp(a, b, sizeof *a * na) != 0);
    /* 10%: 600, and it contains the 1% subset of the same seed */
    CU_ASSERT_FATAL(probe_fewlabel_subset(y, N, C, 0.10, 7, t10, &n10, err, sizeof err) == 0);
    CU_ASSERT(n10 == 600);
    class_counts(t10, n10, y, cnt, C);
    for (int c = 0; c < C; c++) CU_ASSERT(cnt[c] == 60);
    int j = 0, nested = 0;
    for (int i = 0; i < na; i++) {
        while (j < n10 && t10[j] < a[i]) j++;
        nested += j < n10 && t10[j] == a[i];
    }
    CU_ASSERT(nested == na);
    /* frac 1: everything */
    CU_ASSERT_FATAL(probe_fewlabel_subset(y, N, C, 1.0, 7, b, &nb, err, sizeof err) == 0);
    CU_ASSERT(nb == N);
    /* unbalanced: m_c = max(1, round(frac n_c)), empty classes stay empty */
    uint8_t u[1000];
    int sizes[5] = {1, 3, 50, 946, 0};
    for (int i = 0, c = 0, k = 0; i < 1000; i++) {
        while (k == sizes[c]) {
            c++;
            k = 0;
        }
        u[i] = (uint8_t)c;
        k++;
    }
    CU_ASSERT_FATAL(probe_fewlabel_subset(u, 1000, 5, 0.10, 3, b, &nb, err, sizeof err) == 0);
    class_counts(b, nb, u, cnt, 5);
    CU_ASSERT(cnt[0] == 1 && cnt[1] == 1 && cnt[2] == 5 && cnt[3] == 95 && cnt[4] == 0);
    CU_ASSERT(nb == 102);
    /* errors */
    CU_ASSERT(probe_fewlabel_subset(y, N, C, 0.0, 7, b, &nb, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "frac=0") != NULL);
    CU_ASSERT(probe_fewlabel_subset(y, N, C, 1.5, 7, b, &nb, err, sizeof err) == -1);
    CU_ASSERT(probe_fewlabel_subset(y, N, C, NAN, 7, b, &nb, err, sizeof err) == -1);
    CU_ASSERT(probe_fewlabel_subset(y, N, 5, 0.1, 7, b, &nb, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, ">= nclass 5") != NULL);
    free(y);
    free(a);
    free(b);
    free(t10);
}

/* probe_fewlabel is probe_run on exactly the subset's rows, and its weight
 * decay is chosen without the test set: scrambling the test labels and
 * features leaves the chosen wd and validation accuracy bitwise alone. */
static void test_fewlabel_probe(void) {
    enum { NTR = 3000, NTE = 600, D = 12, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE];
    clusters(ftr, ytr, NTR, D, C, 0.6, 71, 1);
    clusters(fte, yte, NTE, D, C, 0.6, 71, 2);
    probe_result pr, ref, scr;
    int nl = 0, nsub = 0;
    char err[256];
    CU_ASSERT_FATAL(probe_fewlabel(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.10, 0.1, 100, NULL, 5, &pr,
                                   &nl, err, sizeof err) == 0);
    CU_ASSERT(nl == 300);
    printf("\n    10%% (%d labels): wd %g val %.3f test %.4f", nl, pr.best_wd, pr.val_acc,
           pr.test_acc);
    CU_ASSERT(pr.test_acc > 0.9);
    uint32_t idx[NTR];
    CU_ASSERT_FATAL(probe_fewlabel_subset(ytr, NTR, C, 0.10, 5, idx, &nsub, err, sizeof err) == 0);
    float *fs = malloc(sizeof(float) * nsub * D);
    uint8_t ys[NTR];
    for (int i = 0; i < nsub; i++) {
        memcpy(fs + i * D, ftr + idx[i] * D, sizeof(float) * D);
        ys[i] = ytr[idx[i]];
    }
    CU_ASSERT_FATAL(probe_run(fs, ys, nsub, fte, yte, NTE, D, C, 0.1, 100, 5, &ref, err,
                              sizeof err) == 0);
    CU_ASSERT(ref.test_acc == pr.test_acc && ref.best_wd == pr.best_wd &&
              ref.val_acc == pr.val_acc);
    /* 1%: 30 labels, 3 of them validation */
    CU_ASSERT_FATAL(probe_fewlabel(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.01, 0.1, 100, NULL, 5, &pr,
                                   &nl, err, sizeof err) == 0);
    CU_ASSERT(nl == 30);
    printf("\n    1%% (%d labels): wd %g val %.3f test %.4f", nl, pr.best_wd, pr.val_acc,
           pr.test_acc);
    uint8_t yscr[NTE];
    for (int i = 0; i < NTE; i++) yscr[i] = (uint8_t)((yte[i] * 7 + 3) % C);
    for (int i = 0; i < NTE * D; i++) fte[i] = -fte[i];
    CU_ASSERT_FATAL(probe_fewlabel(ftr, ytr, NTR, fte, yscr, NTE, D, C, 0.01, 0.1, 100, NULL, 5, &scr,
                                   &nl, err, sizeof err) == 0);
    CU_ASSERT(scr.best_wd == pr.best_wd && scr.val_acc == pr.val_acc);
    CU_ASSERT(scr.test_acc != pr.test_acc);
    /* too few labels for a validation row: probe_run's error, with context */
    CU_ASSERT(probe_fewlabel(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.001, 0.01, 100, NULL, 5, &pr, &nl,
                             err, sizeof err) == -1);
    printf("\n    0.1%%: %s", err);
    CU_ASSERT(strstr(err, "fewlabel 0.001 (10 labels)") != NULL);
    free(ftr);
    free(fte);
    free(fs);
}

/* ------------------------------------------------------------ the report */

static void test_eval_features(void) {
    enum { NTR = 2000, NTE = 500, D = 10, C = 10 };
    float *ftr = malloc(sizeof(float) * NTR * D), *fte = malloc(sizeof(float) * NTE * D);
    uint8_t ytr[NTR], yte[NTE];
    clusters(ftr, ytr, NTR, D, C, 0.7, 81, 1);
    clusters(fte, yte, NTE, D, C, 0.7, 81, 2);
    eval_opts o;
    eval_opts_default(&o);
    CU_ASSERT(o.metrics == EVAL_ALL && o.knn_k == 20 && o.knn_temp == 0.07);
    o.max_iters = 100;
    o.seed = 3;
    eval_report rep;
    char err[256];
    CU_ASSERT_FATAL(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &rep, err, sizeof err) == 0);
    CU_ASSERT(rep.metrics == EVAL_ALL);
    CU_ASSERT(rep.n1pct == 20 && rep.n10pct == 200);
    eval_report_log(stdout, &rep);
    /* each number is the standalone call's, bitwise */
    double acc;
    probe_result pr;
    int nl;
    CU_ASSERT_FATAL(knn_run(ftr, ytr, NTR, fte, yte, NTE, D, C, 20, 0.07, &acc, err, sizeof err) == 0);
    CU_ASSERT(acc == rep.knn_acc);
    CU_ASSERT_FATAL(probe_run(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.1, 100, 3, &pr, err, sizeof err) == 0);
    CU_ASSERT(pr.test_acc == rep.probe_acc && pr.best_wd == rep.probe.best_wd);
    CU_ASSERT_FATAL(probe_fewlabel(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.10, 0.1, 100, NULL, 3, &pr,
                                   &nl, err, sizeof err) == 0);
    CU_ASSERT(pr.test_acc == rep.probe10pct_acc && nl == rep.n10pct);
    CU_ASSERT_FATAL(probe_fewlabel(ftr, ytr, NTR, fte, yte, NTE, D, C, 0.01, 0.1, 100, NULL, 3, &pr,
                                   &nl, err, sizeof err) == 0);
    CU_ASSERT(pr.test_acc == rep.probe1pct_acc && nl == rep.n1pct);
    /* overlapping clusters (measured: knn 0.890, 1% 0.740, 10% 0.890, all
     * 0.918): every metric far above chance (0.1), all labels beat 1% */
    CU_ASSERT(rep.knn_acc > 0.8 && rep.probe_acc > 0.85 && rep.probe10pct_acc > 0.8);
    CU_ASSERT(rep.probe1pct_acc > 0.5 && rep.probe_acc > rep.probe1pct_acc);

    /* printed lines: the four keys in order, probe_acc last, values %.4f */
    char *txt = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&txt, &tl);
    eval_report_print(f, &rep, "t_");
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "t_knn_acc %.4f\nt_probe1pct_acc %.4f\nt_probe10pct_acc %.4f\n"
             "t_probe_acc %.4f\n", rep.knn_acc, rep.probe1pct_acc, rep.probe10pct_acc,
             rep.probe_acc);
    CU_ASSERT_STRING_EQUAL(txt, want);
    free(txt);

    /* JSON: snprintf's contract; the fragment wrapped in braces has every key */
    char js[1024];
    int need = eval_report_json(NULL, 0, &rep, NULL);
    CU_ASSERT(eval_report_json(js, sizeof js, &rep, NULL) == need && (int)strlen(js) == need);
    char small[16];
    CU_ASSERT(eval_report_json(small, sizeof small, &rep, NULL) == need);
    CU_ASSERT(strlen(small) == sizeof small - 1 && memcmp(small, js, sizeof small - 1) == 0);
    printf("\n{\n%s\n}", js);
    const char *keys[] = {"knn_acc", "knn_k\": 20", "knn_temp\": 0.07", "probe1pct_acc",
                          "probe1pct_labels\": 20", "probe1pct_wd", "probe10pct_acc",
                          "probe10pct_labels\": 200", "probe10pct_wd", "probe_acc", "probe_wd",
                          rep.probe.capped ? "probe_converged\": 0" : "probe_converged\": 1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) CU_ASSERT(strstr(js, keys[i]) != NULL);
    snprintf(want, sizeof want, "  \"probe_acc\": %.4f,", rep.probe_acc);
    CU_ASSERT(strstr(js, want) != NULL);
    CU_ASSERT(js[need - 1] != ',' && js[need - 1] != '\n');

    /* a subset of metrics: the others NAN, absent from print and JSON */
    o.metrics = EVAL_KNN;
    CU_ASSERT_FATAL(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &rep, err, sizeof err) == 0);
    CU_ASSERT(rep.metrics == EVAL_KNN && isnan(rep.probe_acc) && isnan(rep.probe1pct_acc));
    CU_ASSERT(rep.knn_acc == acc);
    f = open_memstream(&txt, &tl);
    eval_report_print(f, &rep, NULL);
    fclose(f);
    snprintf(want, sizeof want, "knn_acc %.4f\n", acc);
    CU_ASSERT_STRING_EQUAL(txt, want);
    free(txt);
    eval_report_json(js, sizeof js, &rep, "x_");
    CU_ASSERT(strstr(js, "x_knn_acc") != NULL && strstr(js, "probe") == NULL);
    o.metrics = 0;
    CU_ASSERT(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &rep, err, sizeof err) == 0);
    CU_ASSERT(eval_report_json(js, sizeof js, &rep, NULL) == 0 && js[0] == '\0');

    /* errors: unknown bits, and a metric's own error */
    o.metrics = 1u << 7;
    CU_ASSERT(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &rep, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "0x80") != NULL);
    o.metrics = EVAL_ALL;
    o.knn_k = 5000;
    CU_ASSERT(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &rep, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "k=5000") != NULL);
    free(ftr);
    free(fte);
}

/* figures as printed: 4 decimals, or 4 significant digits below 1e-3
 * (a chosen weight decay of 1e-05 must not read 0.0000) */
static void test_figure_format(void) {
    char b[32];
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 0.84631), "0.8463");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 0.0), "0.0000");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 0.1), "0.1000");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 1e-3), "0.0010");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 1e-4), "0.0001");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 1e-5), "1e-05");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 1e-12), "1e-12");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, -2.5e-4), "-0.00025");
    CU_ASSERT_STRING_EQUAL(obj_eval_fmt(b, 66.42), "66.4200");
    CU_ASSERT(atof(obj_eval_fmt(b, 3e-7)) == 3e-7); /* parses back */
}

int main(void) {
    static const test_case cases[] = {
        {"figure_format", test_figure_format},
        {"knn_clusters", test_knn_clusters},
        {"knn_vs_naive", test_knn_vs_naive},
        {"knn_k1", test_knn_k1},
        {"knn_small_temp", test_knn_small_temp},
        {"knn_ties", test_knn_ties},
        {"knn_threads", test_knn_threads},
        {"knn_errors", test_knn_errors},
        {"fewlabel_subset", test_fewlabel_subset},
        {"fewlabel_probe", test_fewlabel_probe},
        {"eval_features", test_eval_features},
    };
    return test_main("eval", cases, (int)(sizeof cases / sizeof cases[0]));
}
