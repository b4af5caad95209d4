/* prof.h - the step's own meters: seconds per phase of a step (target
 * encoder, context encoder, predictor, loss, backward per part, optimizer,
 * EMA, all-reduce wait), seconds per kind of kernel, and the floating-point
 * operations of every matrix product, counted from its shape. bench-step
 * reads them; training ignores them (a few clock reads per step).
 *
 * Single-threaded by contract: phases are lapped by the thread that runs the
 * step, outside OpenMP regions; the FLOP counter is atomic so a kernel may
 * be called from any thread. Kernels called inside a parallel region (a
 * team running whole chunks of a forward, vit.c) add their times from
 * thread 0 only, which stands for the team's wall time; shapes are noted
 * under a critical section. */
#ifndef JEPA_PROF_H
#define JEPA_PROF_H

#include <stdint.h>

typedef enum {
    PROF_TARGET,     /* EMA target encoder forward (I-JEPA) */
    PROF_ENCODER,    /* online / context encoder forward */
    PROF_PREDICTOR,  /* predictor (and projector) forward */
    PROF_LOSS,       /* loss and its gradient at the outputs */
    PROF_BACK_PRED,  /* backward through the predictor / projector */
    PROF_BACK_ENC,   /* backward through the encoder */
    PROF_GRADNORM,   /* the NaN/Inf guard's gradient norm */
    PROF_OPTIMIZER,  /* AdamW */
    PROF_EMA,        /* EMA target update (after_update) */
    PROF_ALLREDUCE,  /* waiting for the gradient all-reduce after backward */
    PROF_N
} prof_phase;

typedef enum {
    PROF_K_SGEMM,     /* cblas_sgemm through ops_sgemm */
    PROF_K_ATTENTION, /* attention forward/backward cores */
    PROF_K_NORM,      /* LayerNorm forward/backward */
    PROF_K_GELU,      /* GELU forward/backward */
    PROF_K_N
} prof_kernel;

extern const char *const prof_phase_names[PROF_N];
extern const char *const prof_kernel_names[PROF_K_N];

/* Monotonic seconds, or with prof_cpu_clock(1) the process's CPU seconds
 * (all threads): on a machine shared with other jobs, CPU time measures
 * the work a one-thread step does without the time it waited for a core. */
double prof_now(void);
void prof_cpu_clock(int on);
/* Adds now - t0 to phase p; returns now (the next phase's start). */
double prof_lap(prof_phase p, double t0);
/* Adds now - t0 to kernel k. */
void prof_kernel_add(prof_kernel k, double t0);
/* Adds n floating-point operations done by kernel k (a multiply-add counts 2). */
void prof_flops_add(prof_kernel k, uint64_t n);

/* Cumulative totals since the last prof_reset. */
typedef struct {
    double phase_s[PROF_N];
    double kernel_s[PROF_K_N];
    uint64_t flops[PROF_K_N]; /* matrix products only: sgemm and attention */
} prof_totals;
void prof_get(prof_totals *out);
void prof_reset(void);

/* Shapes of the products: while recording, every ops_sgemm call is tallied
 * by (transA, transB, M, N, K) so a benchmark can time cblas_sgemm on the
 * model's own shapes. Up to PROF_MAX_SHAPES distinct shapes; later new ones
 * are counted in prof_shapes_dropped. */
#define PROF_MAX_SHAPES 256
typedef struct {
    int ta, tb, M, N, K;
    int calls;
} prof_shape;
void prof_shapes_record(int on); /* on: clears the table and starts recording */
int prof_shapes_get(const prof_shape **out); /* number of shapes */
int prof_shapes_dropped(void);
void prof_shape_note(int ta, int tb, int M, int N, int K);

#endif
