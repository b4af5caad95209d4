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

#endif
