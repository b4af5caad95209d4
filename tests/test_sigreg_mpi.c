/* test_sigreg_mpi.c - SIGReg's two phases across real ranks (run as a
 * singleton and under mpirun -np 2): each rank accumulates its own rows (an
 * uneven share), comm_sum_doubles all-reduces the ECF sums, and every rank
 * gets the one-process loss and, for its rows, the one-process gradient.
 * Also the scale = lambda * W rule: with z = X P, per-rank dP = X_r^T dz_r
 * averaged over ranks (what the trainer does) equals lambda * X^T dz of one
 * process. The reference runs on every rank over the whole batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "jepa.h"
#include "sigreg.h"
#include "testutil.h"

enum { G = 2, DIN = 5, DIM = 12, M = 16, K = 17, STEPS = 3 };
static int R, W;

static void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) comm_fatal("test_sigreg_mpi: out of memory");
    return p;
}

/* Rows of rank r: 17 + 9 r, so shares differ. */
static int rows_of(int r) { return 17 + 9 * r; }
static int first_row(int r) {
    int o = 0;
    for (int q = 0; q < r; q++) o += rows_of(q);
    return o;
}

static void test_two_phase(void) {
    const int N = rows_of(R), o = first_row(R), Nt = first_row(W);
    const float lambda = 0.05f;
    float *X = xmalloc((size_t)G * Nt * DIN * 4), *P = xmalloc(DIN * DIM * 4);
    float *z = xmalloc((size_t)G * Nt * DIM * 4), *zr = xmalloc((size_t)G * N * DIM * 4);
    float *dzref = xmalloc((size_t)G * Nt * DIM * 4), *dz = xmalloc((size_t)G * N * DIM * 4);
    double *dP = xmalloc(DIN * DIM * 8), *dPref = xmalloc(DIN * DIM * 8);
    sigreg ref, dp;
    sigreg_init(&ref, DIM, M, K, 3.0, G, Nt);
    sigreg_init(&dp, DIM, M, K, 3.0, G, N);
    double worst_l = 0.0, worst_g = 0.0, worst_p = 0.0;
    int diverged = 0;
    for (int step = 0; step < STEPS; step++) {
        jepa_rng r;
        rng_init(&r, rng_key(3, (uint64_t)step, 0xda7a));
        for (size_t i = 0; i < (size_t)G * Nt * DIN; i++) X[i] = (float)rng_normal(&r);
        for (int i = 0; i < DIN * DIM; i++) P[i] = (float)(0.6 * rng_normal(&r));
        for (int g = 0; g < G; g++) /* z = X P, then this rank's rows */
            for (int n = 0; n < Nt; n++)
                for (int j = 0; j < DIM; j++) {
                    float s = 0.0f;
                    for (int i = 0; i < DIN; i++) s += X[((size_t)g * Nt + n) * DIN + i] * P[i * DIM + j];
                    z[((size_t)g * Nt + n) * DIM + j] = s;
                }
        for (int g = 0; g < G; g++)
            memcpy(zr + (size_t)g * N * DIM, z + ((size_t)g * Nt + o) * DIM, (size_t)N * DIM * 4);
        /* directions from (seed, step) only: identical on every rank */
        rng_init(&r, rng_key(3, (uint64_t)step, 0x5157));
        sigreg_draw(&ref, &r);
        rng_init(&r, rng_key(3, (uint64_t)step, 0x5157));
        sigreg_draw(&dp, &r);
        diverged += comm_check_replicas(dp.dirs, (size_t)M * DIM, NULL, 0) != 0;

        sigreg_accumulate(&ref, z, Nt);
        double lref = sigreg_loss(&ref, Nt);
        memset(dzref, 0, (size_t)G * Nt * DIM * 4);
        sigreg_backward(&ref, dzref, z, Nt, Nt, lambda);

        sigreg_accumulate(&dp, zr, N);
        comm_sum_doubles(dp.ecf, (size_t)G * 2 * M * K);
        double l = sigreg_loss(&dp, Nt);
        memset(dz, 0, (size_t)G * N * DIM * 4);
        sigreg_backward(&dp, dz, zr, N, Nt, lambda * (float)W);
        float lf[2] = {(float)l, (float)(l - (float)l)};
        diverged += comm_check_replicas(lf, 2, NULL, 0) != 0;
        worst_l = fmax(worst_l, fabs(l - lref) / lref);

        double gmax = 0.0, gerr = 0.0;
        for (int g = 0; g < G; g++)
            for (int n = 0; n < N; n++)
                for (int j = 0; j < DIM; j++) {
                    double want = (double)W * dzref[((size_t)g * Nt + o + n) * DIM + j];
                    gmax = fmax(gmax, fabs(want));
                    gerr = fmax(gerr, fabs(dz[((size_t)g * N + n) * DIM + j] - want));
                }
        worst_g = fmax(worst_g, gerr / gmax);

        /* dP: per rank X_r^T dz_r, summed then divided by W as the trainer
         * averages; the reference is X^T dzref over all rows */
        memset(dP, 0, DIN * DIM * 8), memset(dPref, 0, DIN * DIM * 8);
        for (int g = 0; g < G; g++)
            for (int n = 0; n < Nt; n++)
                for (int i = 0; i < DIN; i++)
                    for (int j = 0; j < DIM; j++) {
                        double x = X[((size_t)g * Nt + n) * DIN + i];
                        dPref[i * DIM + j] += x * dzref[((size_t)g * Nt + n) * DIM + j];
                        if (n >= o && n < o + N)
                            dP[i * DIM + j] += x * dz[((size_t)g * N + n - o) * DIM + j];
                    }
        comm_sum_doubles(dP, DIN * DIM);
        double pmax = 0.0, perr = 0.0;
        for (int i = 0; i < DIN * DIM; i++) {
            pmax = fmax(pmax, fabs(dPref[i]));
            perr = fmax(perr, fabs(dP[i] / W - dPref[i]));
        }
        worst_p = fmax(worst_p, perr / pmax);
    }
    if (R == 0)
        printf("\n  W=%d rows %d..%d, Ntot %d: loss rel diff %.1e, row grads %.1e, "
               "averaged dP %.1e",
               W, rows_of(0), rows_of(W - 1), Nt, worst_l, worst_g, worst_p);
    CU_ASSERT_EQUAL(diverged, 0);
    CU_ASSERT(worst_l <= 1e-6);
    CU_ASSERT(worst_g <= 1e-5);
    CU_ASSERT(worst_p <= 1e-5);
    free(X), free(P), free(z), free(zr), free(dzref), free(dz), free(dP), free(dPref);
    sigreg_free(&ref), sigreg_free(&dp);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    R = comm_rank();
    W = comm_world();
    static const test_case cases[] = {{"two_phase", test_two_phase}};
    int rc = test_main("sigreg_mpi", cases, 1);
    int failed = comm_any_error(rc != 0); /* every rank's failure fails the run */
    if (rc) fprintf(stderr, "test_sigreg_mpi: rank %d of %d failed\n", R, W);
    comm_finalize();
    return failed >= 0 ? 1 : 0;
}
