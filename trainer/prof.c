/* prof.c - the step's meters (prof.h). Plain globals: one process runs one
 * step at a time, and the meters are read between steps. */
#include <omp.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "prof.h"

const char *const prof_phase_names[PROF_N] = {"target", "encoder", "predictor", "loss",
                                              "back_predictor", "back_encoder", "grad_norm", "optimizer",
                                              "ema", "allreduce_wait"};
const char *const prof_kernel_names[PROF_K_N] = {"sgemm", "attention", "layernorm", "gelu"};

static double phase_s[PROF_N], kernel_s[PROF_K_N];
static _Atomic uint64_t flops[PROF_K_N];
static prof_shape shapes[PROF_MAX_SHAPES];
static int nshapes, ndropped, recording;
static clockid_t clock_id = CLOCK_MONOTONIC;

void prof_cpu_clock(int on) { clock_id = on ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC; }

double prof_now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double prof_lap(prof_phase p, double t0) {
    double t = prof_now();
    phase_s[p] += t - t0;
    return t;
}

void prof_kernel_add(prof_kernel k, double t0) {
    if (omp_in_parallel() && omp_get_thread_num() != 0) return; /* prof.h: thread 0 counts */
    kernel_s[k] += prof_now() - t0;
}

void prof_flops_add(prof_kernel k, uint64_t n) {
    atomic_fetch_add_explicit(&flops[k], n, memory_order_relaxed);
}

void prof_get(prof_totals *out) {
    memcpy(out->phase_s, phase_s, sizeof phase_s);
    memcpy(out->kernel_s, kernel_s, sizeof kernel_s);
    for (int k = 0; k < PROF_K_N; k++)
        out->flops[k] = atomic_load_explicit(&flops[k], memory_order_relaxed);
}

void prof_reset(void) {
    memset(phase_s, 0, sizeof phase_s);
    memset(kernel_s, 0, sizeof kernel_s);
    for (int k = 0; k < PROF_K_N; k++) atomic_store_explicit(&flops[k], 0, memory_order_relaxed);
}

void prof_shapes_record(int on) {
    if (on) nshapes = ndropped = 0;
    recording = on;
}

int prof_shapes_get(const prof_shape **out) {
    *out = shapes;
    return nshapes;
}

int prof_shapes_dropped(void) { return ndropped; }

static void shape_note(int ta, int tb, int M, int N, int K);

void prof_shape_note(int ta, int tb, int M, int N, int K) {
    if (!recording) return;
    #pragma omp critical(prof_shapes)
    shape_note(ta, tb, M, N, K);
}

static void shape_note(int ta, int tb, int M, int N, int K) {
    for (int i = 0; i < nshapes; i++) {
        prof_shape *s = &shapes[i];
        if (s->ta == ta && s->tb == tb && s->M == M && s->N == N && s->K == K) {
            s->calls++;
            return;
        }
    }
    if (nshapes == PROF_MAX_SHAPES) {
        ndropped++;
        return;
    }
    shapes[nshapes++] = (prof_shape){ta, tb, M, N, K, 1};
}
