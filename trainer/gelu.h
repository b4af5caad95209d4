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
#define GELU_DEFINE(fwd_n, grad_n, T, EXP_N)                                    \
    static inline __attribute__((always_inline)) void fwd_n##_tanh(const T *x, T *t, const int n) { \
        for (int i = 0; i < n; i++) t[i] = 2.0f * (GELU_K * (x[i] + GELU_A * x[i] * x[i] * x[i])); \
        EXP_N(t, n); /* e^(2u) */                                              \
        for (int i = 0; i < n; i++) t[i] = 1.0f - 2.0f / (1.0f + t[i]); /* tanh(u) */ \
    }                                                                          \
    static inline __attribute__((always_inline)) void fwd_n(T *x, const int n) { \
        T t[GELU_LOCK];                                                        \
        fwd_n##_tanh(x, t, n);                                                 \
        for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + t[i]);        \
    }                                                                          \
    static inline __attribute__((always_inline)) void grad_n(const T *x, T *g, const int n) { \
        T t[GELU_LOCK];                                                        \
        fwd_n##_tanh(x, t, n);                                                 \
        for (int i = 0; i < n; i++) {                                          \
            T du = GELU_K * (1.0f + 3.0f * GELU_A * x[i] * x[i]);              \
            g[i] = 0.5f * (1.0f + t[i]) + 0.5f * x[i] * (1.0f - t[i] * t[i]) * du; \
        }                                                                      \
    }

/* n (<= GELU_LOCK, a constant where inlined) values in place, step by step
 * across all n: one GELU is a chain of ~35 dependent operations, and one
 * vector after another they left the packed product's epilogue and the
 * backward waiting on latency; in lockstep the chains overlap. */
#define GELU_LOCK 16

static inline __attribute__((always_inline)) void fast_expf_n(float *x, const int n) {
    for (int i = 0; i < n; i++) x[i] = fast_expf(x[i]);
}
GELU_DEFINE(gelu_f_n, gelu_grad_f_n, float, fast_expf_n)
GELU_DEFINE(v_gelu_n, v_gelu_grad_n, vfl, v_expf_n)

/* one value (one vector): the n = 1 forms */
static inline float gelu_f(float x) { gelu_f_n(&x, 1); return x; }
static inline float gelu_grad_f(float x) { float g; gelu_grad_f_n(&x, &g, 1); return g; }
static inline vfl v_gelu(vfl x) { v_gelu_n(&x, 1); return x; }
static inline vfl v_gelu_grad(vfl x) { vfl g; v_gelu_grad_n(&x, &g, 1); return g; }

#endif
