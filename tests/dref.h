/* dref.h - double-precision reference layers for the gradient checks
 * (test_model, test_lejepa): naive loops over a model's parameter table,
 * looked up by tensor name, so a numeric gradient comes from a second
 * implementation where central differences (h = 1e-6) are accurate to ~1e-8.
 * Same conventions as trainer/ops.c: LayerNorm eps 1e-6, GELU tanh form,
 * PyTorch's (out, in) weights, pre-LN blocks with MLP ratio 4. */
#ifndef JEPA_DREF_H
#define JEPA_DREF_H

#include "jepa.h"

/* base + offset of tensor `name` of m (asserts it exists). */
const double *dref_tensor(const jepa_model *m, const double *base, const char *name);
/* out (M, N) = x (M, K) @ w^T + b; b may be NULL. */
void dref_linear(double *out, const double *x, const double *w, const double *b, int M, int K,
                 int N);
/* In place per row of C; w NULL: no affine. */
void dref_layernorm(double *x, const double *w, const double *b, int M, int C);
/* In place, n values. */
void dref_gelu(double *x, size_t n);
/* Block PRE.l over S sequences of T <= 256 tokens, in place on x (S*T, C),
 * H heads, MLP width 4 C; causal = 1: token i attends to tokens 0..i only. */
void dref_block(double *x, const jepa_model *m, const double *base, const char *pre, int l, int S,
                int T, int C, int H, int causal);
/* The image encoder (trainer/encoder.h): out (S, D) = mean over tokens of
 * enc.norm(blocks(enc.patch(patches) + pos)) of S normalised images
 * (S, ch, side, side), side a multiple of the patch; pos (N, D) the sin-cos
 * positions of the side/patch grid (fixed, not parameters, so float as in
 * the model). */
void dref_encode_pooled_side(double *out, const jepa_model *m, const double *base,
                             const double *img, int S, int side, const float *pos);
/* The same at side m->dims.img. */
void dref_encode_pooled(double *out, const jepa_model *m, const double *base, const double *img,
                        int S, const float *pos);
/* SIGReg (trainer/sigreg.h) of z (G, N, E): mean over the G groups and the M
 * unit directions dirs (M, E) of the Epps-Pulley statistic N * Int_{-T}^{T}
 * |phi_N(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt, by the trapezoid rule on the
 * FULL grid t_k = k T/(K-1), k = -(K-1)..K-1 (equal to sigreg.c's doubled
 * half grid for this even integrand), cos/sin evaluated directly. */
double dref_sigreg(const double *z, int G, int N, int E, const float *dirs, int M, int K,
                   double T);

/* The gradient checks' small model (test_model, test_target): 8x8
 * images of ch channels, patches of 2 (16 tokens), width 16, 2 blocks of
 * 2 heads; predictor width 8, 2 blocks of 2 heads: heads of 8 and 4
 * columns, attention's packed-copy path. wide: width 32, predictor width
 * 16 with 1 head: heads of 16, the in-place path (ops_attn.c). */
jepa_dims dref_small_dims(int ch, int wide);
/* I-JEPA's masks: 4 target blocks of scale 0.15-0.2, aspect 0.75-1.5,
 * context scale 0.85-1, at least 4 tokens kept. */
mask_cfg dref_masks(void);

#endif
