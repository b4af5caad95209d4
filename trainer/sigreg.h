/* sigreg.h - SIGReg, Sketched Isotropic Gaussian Regularisation (LeJEPA:
 * Balestriero & LeCun 2025, "LeJEPA: Provable and Scalable Self-Supervised
 * Learning Without the Heuristics", arXiv:2511.08544): pushes a batch of
 * embeddings towards N(0, I) by testing M random 1-D projections of it for
 * standard normality with the Epps-Pulley characteristic-function statistic.
 * Used by the LeJEPA objective (per view) and the world model (frame
 * embeddings). Two phases so data parallelism costs one small all-reduce.
 *
 * The statistic (paper Sec. 4.2.3, the Epps-Pulley test; Epps & Pulley 1983;
 * cited by section: the paper's equation numbers could not be checked here):
 * for the projections x_1..x_N of one group on one unit direction a,
 *
 *     EP = N * Int_{-T}^{T} |phi_N(t) - exp(-t^2/2)|^2 w(t) dt,
 *     phi_N(t) = (1/N) sum_n exp(i t x_n),   w(t) = exp(-t^2/2)
 *
 * (w is the unnormalised Gaussian window of the reference code, not the
 * N(0,1) density). The integrand is even in t (phi_N(-t) is the conjugate of
 * phi_N(t)), so, as the reference does, it is integrated on [0, T] with the
 * trapezoid rule and doubled: knots t_k = k T / (K - 1), k = 0..K-1, weights
 * dt = T / (K - 1) at both ends and 2 dt inside, each times w(t_k). With
 * C_k = sum_n cos(t_k x_n) and S_k = sum_n sin(t_k x_n):
 *
 *     EP = N sum_k w_k [ (C_k / N - exp(-t_k^2/2))^2 + (S_k / N)^2 ]
 *     SIGReg = mean over groups g and directions m of EP(g, m)
 *
 * Reference code read (rbalestr-lab/lejepa, now galilai-group/lejepa):
 * lejepa/univariate/epps_pulley.py (EppsPulley.__init__: t = linspace(0, t_max,
 * n_points), weights 2 dt with dt at both ends, times phi = exp(-t^2/2);
 * forward: cos/sin means over samples, all-reduced, err @ weights * N *
 * world_size, i.e. N = the GLOBAL sample count), lejepa/multivariate/slicing.py
 * (Gaussian directions normalised to unit columns, seeded by a step counter
 * synchronised over ranks, mean over slices) and MINIMAL.md (class SIGReg:
 * t_max 3, 17 knots, 256 directions; proj is (V, N, K) so the mean over
 * samples is per view and the final mean is over views and directions).
 * Defaults there: T = 3, K = 17; the paper's text suggests [-5, 5] and 1024
 * directions as starting points. LeWorldModel calls the same statistic on
 * embeddings transposed to (T, B, D), i.e. one group per time step.
 *
 * Gradient (exact, for the rows of this rank, with c_k = C_k/N, s_k = S_k/N
 * from the GLOBAL sums):
 *
 *     d SIGReg / d x_n = 2/(G M) sum_k w_k t_k [ s_k cos(t_k x_n)
 *                                              - (c_k - phi_k) sin(t_k x_n) ]
 *
 * The N of EP cancels the 1/N of the ECF: per-sample gradients are O(1) and
 * bounded (the paper's bounded-gradient argument), and d/dz_n = sum_m
 * (d/dx_nm) a_m.
 *
 * Data parallelism: the ECF is a mean over samples, so each rank accumulates
 * the cos/sin SUMS of its rows (sigreg_accumulate), the caller all-reduces
 * g->ecf with SUM (comm_sum_doubles), then every rank evaluates the same loss
 * (sigreg_loss) and the exact gradient for its own rows (sigreg_backward).
 * Every rank must use the same directions: seed the rng from (seed, step)
 * only, never the rank. The trainer AVERAGES parameter gradients over W
 * ranks, while these per-row gradients are already exact shares of the global
 * gradient; so pass scale = lambda * W to sigreg_backward, and the average
 * over ranks comes out as lambda * d SIGReg / d theta. (Ranks may hold
 * different row counts; Ntot is their sum.)
 *
 * Determinism: sums run in a fixed order per (group, direction), so results
 * do not depend on the OpenMP thread count; they differ from the one-process
 * result only by double rounding when rows are split over ranks. Nothing is
 * allocated after sigreg_init. */
#ifndef JEPA_SIGREG_H
#define JEPA_SIGREG_H

#include <stdint.h>

#include "jepa.h"

#define SIGREG_MAX_KNOTS 64

typedef struct {
    int dim;      /* embedding width */
    int ndir;     /* M: random directions per step */
    int nknots;   /* K: quadrature knots on [0, t_max], 2..SIGREG_MAX_KNOTS */
    int maxN;     /* most rows per group this rank passes */
    int ngroups;  /* G: independent statistics (views, or 1) */
    double t_max; /* T */
    float *dirs;  /* (ndir, dim) unit rows, redrawn each step by sigreg_draw */
    double *t;    /* (nknots) knots t_k */
    double *w;    /* (nknots) trapezoid weights times the window exp(-t_k^2/2) */
    double *phi;  /* (nknots) exp(-t_k^2/2), the N(0,1) characteristic function */
    double *ecf;  /* (ngroups, 2, ndir, nknots): [g][0] cos sums, [g][1] sin sums
                     over samples; local after accumulate, global after the
                     caller's all-reduce SUM */
    float *proj;  /* (ngroups, ndir, maxN) scratch: projections, then their gradients */
} sigreg;

/* Sizes everything once; the only allocation. Asserts dim, ndir, ngroups,
 * maxN >= 1, 2 <= nknots <= SIGREG_MAX_KNOTS, t_max > 0. Knots and weights as
 * in the header comment. Directions start as zero rows: call sigreg_draw. */
void sigreg_init(sigreg *g, int dim, int ndir, int nknots, double t_max, int ngroups, int maxN);
void sigreg_free(sigreg *g);

/* Fills g->dirs with ndir*dim standard normals from r (row-major order) and
 * normalises each row to unit L2 length (norm in double). The caller seeds r
 * from (seed, step) so replay and resume are exact and all ranks agree. */
void sigreg_draw(sigreg *g, jepa_rng *r);

/* Phase 1. z (ngroups, N, dim): this rank's rows of each group, 0 <= N <=
 * maxN. Zeroes g->ecf, projects (sgemm) and adds cos(t_k x), sin(t_k x) of
 * every row into g->ecf. Leaves projections in g->proj. */
void sigreg_accumulate(sigreg *g, const float *z, int N);

/* Caller, between the phases: all-reduce SUM g->ecf,
 * ngroups * 2 * ndir * nknots doubles (comm_sum_doubles), on every rank. */

/* Phase 2. The SIGReg value from g->ecf, with Ntot >= 1 the global number of
 * rows per group: mean over groups and directions of EP. Same on all ranks. */
double sigreg_loss(const sigreg *g, int64_t Ntot);

/* Phase 2. dz (ngroups, N, dim) += scale * d sigreg_loss / d z for this
 * rank's rows z (ngroups, N, dim), the same z as in accumulate, using the
 * global g->ecf and Ntot. Recomputes the projections (cheap) so it does not
 * rely on g->proj surviving; overwrites g->proj. See the header comment for
 * scale under data parallelism (lambda * W). */
void sigreg_backward(sigreg *g, float *dz, const float *z, int N, int64_t Ntot, float scale);

#endif
