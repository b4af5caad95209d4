/* gelu.h - GELU and its derivative for floats and for vec.h's lanes, shared
 * by the training kernels (ops.c) and the packed product's epilogue
 * (ops_infer.c): one body, so every path rounds alike. */
#ifndef JEPA_GELU_H
#define JEPA_GELU_H

#include "fastmath.h"
#include "vec.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* GELU, tanh form (Hendrycks & Gimpel 2016, sec. 2):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh(u) = 1 - 2/(1 + e^(2u)),
 * and its derivative. One body for floats (fast_expf) and for vec.h's VW
 * lanes (v_expf, fast_expf's bits lane by lane): GCC in ISO C mode (our
 * -std=c11) does not contract, so the two forms round alike. The vector
 * form is written out because GCC vectorises the scalar loops for AVX-512
 * only: for AVX2 the clamp and the float-to-int conversion kept them
 * scalar, 9.5 ns per value, a third of the step (docs/performance.md). */
#define GELU_DEFINE(fwd, grad, T, EXP)                                         \
    static inline T fwd(T x) {                                                 \
        T u = GELU_K * (x + GELU_A * x * x * x);                               \
        T t = 1.0f - 2.0f / (1.0f + EXP(2.0f * u)); /* tanh(u) */              \
        return 0.5f * x * (1.0f + t);                                          \
    }                                                                          \
    static inline T grad(T x) {                                                \
        T u = GELU_K * (x + GELU_A * x * x * x);                               \
        T t = 1.0f - 2.0f / (1.0f + EXP(2.0f * u));                            \
        T du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);                        \
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;             \
    }
GELU_DEFINE(gelu_f, gelu_grad_f, float, fast_expf)
GELU_DEFINE(v_gelu, v_gelu_grad, vfl, v_expf)

/* GELU and its derivative over n (<= GELU_LOCK, a constant where inlined)
 * vectors, step by step across all n: one GELU is a chain of ~35 dependent
 * operations, and one vector after another they left the packed product's
 * epilogue and the backward waiting on latency; in lockstep the n chains
 * overlap. Each lane gets GELU_DEFINE's (and v_expf's) operations in their
 * order: the same bits as v_gelu / v_gelu_grad. */
#define GELU_LOCK 16

/* t[i] = tanh(u) of x[i], u = sqrt(2/pi) (x + 0.044715 x^3), as GELU_DEFINE */
static inline __attribute__((always_inline)) void v_gelu_tanh_n(const vfl *x, vfl *t, const int n) {
    vfl u[GELU_LOCK], m[GELU_LOCK], r[GELU_LOCK];
    for (int i = 0; i < n; i++) u[i] = 2.0f * (GELU_K * (x[i] + GELU_A * x[i] * x[i] * x[i]));
    for (int i = 0; i < n; i++) { /* v_expf(2u): clamp, m = round(2u / ln 2), r = 2u - m ln 2 */
        u[i] = v_min(v_bcast(88.0f), v_max(v_bcast(-87.0f), u[i]));
        m[i] = (u[i] * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    }
    for (int i = 0; i < n; i++) r[i] = u[i] - m[i] * 0.693145751953125f - m[i] * 1.428606765330187e-06f;
    for (int i = 0; i < n; i++) t[i] = 0.008333334f + r[i] * 0.0013888889f;
    for (int i = 0; i < n; i++) t[i] = 0.041666668f + r[i] * t[i];
    for (int i = 0; i < n; i++) t[i] = 0.16666667f + r[i] * t[i];
    for (int i = 0; i < n; i++) t[i] = 0.5f + r[i] * t[i];
    for (int i = 0; i < n; i++) t[i] = 1.0f + r[i] * t[i];
    for (int i = 0; i < n; i++) t[i] = 1.0f + r[i] * t[i];
    for (int i = 0; i < n; i++) t[i] = t[i] * (vfl)((__builtin_convertvector(m[i], vin) + 127) << 23);
    for (int i = 0; i < n; i++) t[i] = 1.0f - 2.0f / (1.0f + t[i]);
}

/* x[i] <- GELU(x[i]) */
static inline __attribute__((always_inline)) void v_gelu_n(vfl *x, const int n) {
    vfl t[GELU_LOCK];
    v_gelu_tanh_n(x, t, n);
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + t[i]);
}

/* g[i] = GELU'(x[i]) */
static inline __attribute__((always_inline)) void v_gelu_grad_n(const vfl *x, vfl *g, const int n) {
    vfl t[GELU_LOCK];
    v_gelu_tanh_n(x, t, n);
    for (int i = 0; i < n; i++) {
        vfl du = GELU_K * (1.0f + 3.0f * GELU_A * x[i] * x[i]);
        g[i] = 0.5f * (1.0f + t[i]) + 0.5f * x[i] * (1.0f - t[i] * t[i]) * du;
    }
}

#endif
