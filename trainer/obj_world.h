/* obj_world.h - the action-conditioned JEPA world model (objective "world"),
 * shared by its training step (obj_world.c) and its evaluation
 * (world_eval.c). Private to trainer/.
 *
 * Model (after LeWorldModel 2026, trained end to end from pixels with a
 * prediction loss + SIGReg and no EMA teacher, and V-JEPA 2-AC, Assran et
 * al. 2025, teacher forcing + an autoregressive rollout loss):
 *   frame embedding  z_t = BN(P (mean-pooled ViT encoder of frame t) + p)   (E)
 *                    BN: BatchNorm without affine over the GLOBAL batch of the
 *                    step's frames (Ioffe & Szegedy 2015), running statistics
 *                    (momentum WORLD_BN_MOMENTUM) for evaluation and planning:
 *                    a standardised embedding cannot collapse to a point, as
 *                    the BatchNorm projectors of LeJEPA / LeWorldModel
 *   predictor token  x_t = W_in z_t + W_act (s a_t) + e_time[t]         (Dp)
 *   frame-causal transformer over x_0..x_{k-1}, final LayerNorm h_t,
 *   prediction       zhat_{t+1} = z_t + W_out h_t + b                     (E)
 * The action enters as an embedding added to its frame's token (a stated
 * variant of V-JEPA 2-AC's separate action tokens: with a causal mask over
 * frames the token t carries (z_t, a_t) and predicts z_{t+1}); the residual
 * form makes "nothing moves" the initial guess.
 *
 * Loss per window of H+1 frames (world.history = H):
 *   teacher forcing  L_tf = mean_t ||zhat_{t+1} - z_{t+1}||^2 / E, t < H, true inputs
 *   rollout          L_ro = mean_{r=1..R} ||zhat^{ar}_{r+1} - z_{r+1}||^2 / E, inputs
 *                    (z_0, zhat_1, ..., zhat_r) fed back (world.rollout = R <= H-1)
 *   total            L_tf + rollout_weight L_ro + sigreg.weight SIGReg(z)
 * with SIGReg over the frame embeddings, one statistic per time step of the
 * window (as LeWorldModel transposes its embeddings to (T, B, D)). */
#ifndef JEPA_OBJ_WORLD_H
#define JEPA_OBJ_WORLD_H

#include "encoder.h"
#include "objective.h"
#include "sigreg.h"

#define WORLD_MAX_S 8 /* state dimensions the evaluation handles */
#define WORLD_BN_MOMENTUM 0.05
#define WORLD_BN_EPS 1e-5

/* Activations of one predictor pass: B sequences of T tokens. */
typedef struct {
    int T;
    vit_acts acts;
    float *u;            /* (B, T, E) input embeddings (true or fed back) */
    float *a;            /* (B, T, A) scaled actions */
    float *hn, *hm, *hr; /* (B*T, Dp), (B*T), (B*T): final LayerNorm */
    float *out;          /* (B*T, E) predictions zhat (row t predicts t+1) */
    float *dout, *du;    /* (B*T, E) their gradients */
} wpass;

typedef struct {
    objective base;
    jepa_dims d;
    enc_layout L;
    size_t proj_w, proj_b, bn_mean, bn_var; /* bn_*: running statistics, never trained */
    size_t in_w, in_b, act_w, act_b, time, norm_w, norm_b, out_w, out_b;
    size_t blk[64 * BLK_N];
    int T, A, S, H, R, W, E, Dp; /* frames/episode, action dim, state dim, history,
                                    rollout, window H+1, embedding, predictor width */
    size_t off_frames, off_actions, off_state, frame_bytes, rec_bytes;
    float act_scale, lambda, ro_weight;
    int stopgrad;
    int sig_dirs, sig_knots;
    double sig_tmax;
    enc_pass enc;        /* B*W frames per step */
    float *frames;       /* (B*W, 1, img, img) normalised */
    float *y;            /* (B*W, E) projector output before its BatchNorm */
    float *z, *dz;       /* (B*W, E) embeddings, row b*W + t, and gradients */
    float *mu, *rstd, *var; /* (E) this step's global batch statistics of y */
    double *sums;        /* (4E + 1) for the all-reduces of the statistics (2E + 1: col_moments_sum) */
    float *zt, *dzt;     /* (W, B, E) the same per time step, for SIGReg */
    float *dpooled;      /* (B*W, D) */
    float *g;            /* (B, H+1, E) gradients w.r.t. fed-back predictions */
    float *pdx;          /* (B*H, Dp) predictor backward: d(stack input) */
    wpass *pp;           /* pass 0: teacher forcing (T = H); pass r: rollout (T = r + 1) */
    vit_scratch sc;
    sigreg sg;
    int maxB;            /* sequences the passes are sized for */
    int64_t step;        /* the last step taken (the running statistics' momentum) */
    /* the position probe of the randomly initialised model (world_eval.c):
     * the same seed and data at every evaluation, so computed once */
    int random_done;
    double random_r2, random_dist;
} world_obj;

/* Predictor forward of pass p over B sequences of p->T tokens (p->u, p->a
 * filled): p->out. */
void world_pred_forward(world_obj *o, const float *W, wpass *p, int B);
/* Its backward from p->dout: p->du (written), parameter grads into G. */
void world_pred_backward(world_obj *o, const float *W, float *G, wpass *p, int B);
void wpass_init(wpass *p, const world_obj *o, int B, int T);
void wpass_free(wpass *p);
/* z (n, E) of n normalised frames (n, 1, img, img) via o->enc (n <= its maxS),
 * the BatchNorm with its running statistics (the evaluation's embedding). */
void world_embed(world_obj *o, const float *W, const float *frames, int n, float *z);
/* Parameters from the seed (vit_init_params) and unit running variances. */
void world_init_params(world_obj *o);

/* The evaluation (world_eval.c): prediction error against "nothing moves"
 * at horizons 1, 2, 4, 8, the position probe of the frame embedding (trained
 * and random init) and of the embedding predicted 4 steps ahead. */
int world_evaluate(objective *b, const jepa_spec *s, obj_eval *out, char *err, size_t errlen);

#endif
