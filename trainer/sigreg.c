/* sigreg.c - SIGReg kernels (see sigreg.h for the formulas and sources).
 * The cost is N*M*K cos/sin pairs; since the knots are uniform, t_k x =
 * k (dt x), so one cos/sin per (row, direction) and the angle-addition
 * recurrence give all K of them (in double: the error grows like K * 1e-16).
 * Eight rows advance together so the recurrence vectorises. */
#include "sigreg.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define LANES 8

void sigreg_init(sigreg *g, int dim, int ndir, int nknots, double t_max, int ngroups, int maxN) {
    JEPA_ASSERT(dim >= 1 && ndir >= 1 && ngroups >= 1 && maxN >= 1);
    JEPA_ASSERT(nknots >= 2 && nknots <= SIGREG_MAX_KNOTS);
    JEPA_ASSERT(t_max > 0.0);
    memset(g, 0, sizeof *g);
    g->dim = dim;
    g->ndir = ndir;
    g->nknots = nknots;
    g->maxN = maxN;
    g->ngroups = ngroups;
    g->t_max = t_max;
    g->dirs = JEPA_MALLOC((size_t)ndir * dim * sizeof(float));
    g->t = JEPA_MALLOC((size_t)nknots * sizeof(double));
    g->w = JEPA_MALLOC((size_t)nknots * sizeof(double));
    g->phi = JEPA_MALLOC((size_t)nknots * sizeof(double));
    g->ecf = JEPA_MALLOC((size_t)ngroups * 2 * ndir * nknots * sizeof(double));
    g->proj = JEPA_MALLOC((size_t)ngroups * ndir * maxN * sizeof(float));
    double dt = t_max / (nknots - 1);
    for (int k = 0; k < nknots; k++) {
        g->t[k] = k * dt;
        g->phi[k] = exp(-0.5 * g->t[k] * g->t[k]);
        /* trapezoid on [0, T], doubled for [-T, 0]: dt at the ends, 2 dt inside */
        double q = (k == 0 || k == nknots - 1) ? dt : 2.0 * dt;
        g->w[k] = q * g->phi[k];
    }
}

void sigreg_free(sigreg *g) {
    jepa_free(g->dirs);
    jepa_free(g->t);
    jepa_free(g->w);
    jepa_free(g->phi);
    jepa_free(g->ecf);
    jepa_free(g->proj);
    memset(g, 0, sizeof *g);
}

void sigreg_draw(sigreg *g, jepa_rng *r) {
    for (int m = 0; m < g->ndir; m++) {
        float *a = g->dirs + (size_t)m * g->dim;
        /* a holds the float-rounded normals; the norm is taken of those, in
         * double, so the stored row is unit length to float precision */
        for (int i = 0; i < g->dim; i++) a[i] = (float)rng_normal(r);
        double ss = 0.0;
        for (int i = 0; i < g->dim; i++) ss += (double)a[i] * a[i];
        double inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        for (int i = 0; i < g->dim; i++) a[i] = (float)(a[i] * inv);
    }
}

/* proj (ngroups, ndir, N): x[g][m][n] = <dirs[m], z[g][n]>. */
static void project(sigreg *g, const float *z, int N) {
    for (int gr = 0; gr < g->ngroups; gr++)
        ops_sgemm(0, 1, g->ndir, N, g->dim, 1.0f, g->dirs, g->dim, z + (size_t)gr * N * g->dim,
                  g->dim, 0.0f, g->proj + (size_t)gr * g->ndir * N, N);
}

/* For rows x[0..n) (n <= LANES) load cos/sin of dt*x as the step of the
 * recurrence and start it at t_0 = 0 (cos 1, sin 0). */
static void lanes_start(double *c, double *s, double *c1, double *s1, const float *x, int n,
                        double dt) {
    for (int l = 0; l < LANES; l++) {
        double a = l < n ? dt * (double)x[l] : 0.0;
        c1[l] = cos(a);
        s1[l] = sin(a);
        c[l] = l < n ? 1.0 : 0.0; /* dead lanes contribute zeros */
        s[l] = 0.0;
    }
}

/* Sums over x[0..N) of cos(t_k x), sin(t_k x) into C[k], S[k] (overwritten). */
static void ecf_row(double *C, double *S, const float *x, int N, int K, double dt) {
    double accC[SIGREG_MAX_KNOTS * LANES] = {0}, accS[SIGREG_MAX_KNOTS * LANES] = {0};
    double c[LANES], s[LANES], c1[LANES], s1[LANES];
    for (int n0 = 0; n0 < N; n0 += LANES) {
        lanes_start(c, s, c1, s1, x + n0, N - n0 < LANES ? N - n0 : LANES, dt);
        for (int k = 0; k < K; k++) {
            double *ac = accC + k * LANES, *as = accS + k * LANES;
            for (int l = 0; l < LANES; l++) {
                ac[l] += c[l];
                as[l] += s[l];
                double cn = c[l] * c1[l] - s[l] * s1[l];
                s[l] = s[l] * c1[l] + c[l] * s1[l];
                c[l] = cn;
            }
        }
    }
    for (int k = 0; k < K; k++) {
        double sc = 0.0, ss = 0.0;
        for (int l = 0; l < LANES; l++) {
            sc += accC[k * LANES + l];
            ss += accS[k * LANES + l];
        }
        C[k] = sc;
        S[k] = ss;
    }
}

void sigreg_accumulate(sigreg *g, const float *z, int N) {
    JEPA_ASSERT(N >= 0 && N <= g->maxN);
    const int M = g->ndir, K = g->nknots;
    memset(g->ecf, 0, (size_t)g->ngroups * 2 * M * K * sizeof(double));
    if (N == 0) return;
    project(g, z, N);
    const double dt = g->t[1];
#pragma omp parallel for schedule(static)
    for (int gm = 0; gm < g->ngroups * M; gm++) {
        int gr = gm / M, m = gm % M;
        double *C = g->ecf + ((size_t)gr * 2 * M + m) * K;
        double *S = C + (size_t)M * K;
        ecf_row(C, S, g->proj + (size_t)gm * N, N, K, dt);
    }
}

double sigreg_loss(const sigreg *g, int64_t Ntot) {
    JEPA_ASSERT(Ntot >= 1);
    const int M = g->ndir, K = g->nknots;
    const double n = (double)Ntot;
    double total = 0.0;
    for (int gr = 0; gr < g->ngroups; gr++)
        for (int m = 0; m < M; m++) {
            const double *C = g->ecf + ((size_t)gr * 2 * M + m) * K;
            const double *S = C + (size_t)M * K;
            double ep = 0.0;
            for (int k = 0; k < K; k++) {
                double dc = C[k] / n - g->phi[k], s = S[k] / n;
                ep += g->w[k] * (dc * dc + s * s);
            }
            total += n * ep;
        }
    return total / ((double)g->ngroups * M);
}

/* x[0..N) := d loss / d x for one (group, direction): sum over k of
 * b_k cos(t_k x) - a_k sin(t_k x). */
static void grad_row(float *x, int N, int K, double dt, const double *a, const double *b) {
    double c[LANES], s[LANES], c1[LANES], s1[LANES], d[LANES];
    for (int n0 = 0; n0 < N; n0 += LANES) {
        int nl = N - n0 < LANES ? N - n0 : LANES;
        lanes_start(c, s, c1, s1, x + n0, nl, dt);
        for (int l = 0; l < LANES; l++) d[l] = 0.0;
        for (int k = 0; k < K; k++)
            for (int l = 0; l < LANES; l++) {
                d[l] += b[k] * c[l] - a[k] * s[l];
                double cn = c[l] * c1[l] - s[l] * s1[l];
                s[l] = s[l] * c1[l] + c[l] * s1[l];
                c[l] = cn;
            }
        for (int l = 0; l < nl; l++) x[n0 + l] = (float)d[l];
    }
}

void sigreg_backward(sigreg *g, float *dz, const float *z, int N, int64_t Ntot, float scale) {
    JEPA_ASSERT(N >= 0 && N <= g->maxN && Ntot >= 1);
    if (N == 0) return;
    const int M = g->ndir, K = g->nknots;
    const double n = (double)Ntot, f = 2.0 / ((double)g->ngroups * M);
    project(g, z, N);
#pragma omp parallel for schedule(static)
    for (int gm = 0; gm < g->ngroups * M; gm++) {
        int gr = gm / M, m = gm % M;
        const double *C = g->ecf + ((size_t)gr * 2 * M + m) * K;
        const double *S = C + (size_t)M * K;
        double a[SIGREG_MAX_KNOTS], b[SIGREG_MAX_KNOTS];
        for (int k = 0; k < K; k++) {
            double wt = f * g->w[k] * g->t[k];
            a[k] = wt * (C[k] / n - g->phi[k]);
            b[k] = wt * (S[k] / n);
        }
        grad_row(g->proj + (size_t)gm * N, N, K, g->t[1], a, b);
    }
    /* dz[g] (N, dim) += scale * dproj[g]^T (N, M) @ dirs (M, dim) */
    for (int gr = 0; gr < g->ngroups; gr++)
        ops_sgemm(1, 0, N, g->dim, M, scale, g->proj + (size_t)gr * M * N, N, g->dirs, g->dim,
                  1.0f, dz + (size_t)gr * N * g->dim, g->dim);
}
