/* encoder.h - the ViT image encoder as a reusable piece (private to
 * trainer/): patch embedding + 2-D sin-cos positions, pre-LN blocks, final
 * LayerNorm, mean over tokens. LeJEPA encodes augmented views with it and
 * the world model encodes frames; I-JEPA keeps its own masked variant in
 * model.c (same tensor names and init, so the encoders are the same net).
 *
 * An enc_pass holds the activations of one forward over S images of one
 * side (a grid of G x G patches); several passes (global and local views)
 * share the weights and accumulate into the same gradients. */
#ifndef JEPA_ENCODER_H
#define JEPA_ENCODER_H

#include "vit.h"

/* offsets of the encoder's tensors in the parameter buffer */
typedef struct enc_layout {
    size_t patch_w, patch_b, norm_w, norm_b;
    size_t blk[64 * BLK_N]; /* (depth, BLK_N) */
} enc_layout;

/* Appends the encoder's tensors (enc.patch.w (D, pdim), enc.patch.b,
 * enc.L.* blocks, enc.norm.w/b) in I-JEPA's order. */
void enc_table_add(table_builder *tb, const jepa_dims *d, enc_layout *L);
/* Tensors enc_table_add appends for d (to size a table). */
int enc_tensor_count(const jepa_dims *d);

typedef struct {
    int maxS, img, G, N, keep; /* images, side in pixels, grid, tokens per image */
    vit_acts acts;
    float *pos;            /* (N, D) sin-cos position embedding of the G x G grid */
    float *patches;        /* (maxS*N, pdim) */
    float *ln, *lnm, *lnr; /* (maxS*N, D), (maxS*N), (maxS*N): final LayerNorm */
    float *pooled;         /* (maxS, D): mean of ln over each image's tokens */
    float *dres;           /* (maxS*N, D) backward scratch (keep only) */
} enc_pass;

/* Activations for up to maxS images of side img (a multiple of d->patch).
 * keep = 0: forward only (features), one layer slot. */
void enc_pass_init(enc_pass *p, const jepa_dims *d, int maxS, int img, int keep);
void enc_pass_free(enc_pass *p);
/* pooled (S, D) of S normalised images (S, ch, img, img) under weights W. */
void enc_pass_forward(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                      const float *images, int S, float *attn_scratch);
/* Backward of enc_pass_forward from dpooled (S, D): gradients accumulate
 * into G. notify (may be NULL): the model whose grad_ready is told as
 * encoder blocks finish — pass it only on the last pass over shared
 * weights, so no range is reported before every pass has added to it. */
void enc_pass_backward(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                       float *G, vit_scratch *sc, const float *dpooled, int S, jepa_model *notify);

/* Features (n, k*D) of n u8 images (n, ch, img, img), normalised with
 * (mean, std), in chunks of p->maxS: for each of the last k blocks (oldest
 * first) the final LayerNorm (with its affine) of that block's output,
 * averaged over tokens, concatenated (DINO's n_last_blocks; k = 1 is the
 * pooled output of enc_pass_forward). k > 1 needs p from enc_pass_init
 * with keep 1 (every block's output kept). */
void enc_features(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                  const uint8_t *pixels, int n, float mean, float std, int k, float *feats,
                  float *attn_scratch);
/* The encoder layout of a table holding enc.* tensors (by name), e.g. an
 * I-JEPA model's: 0, or -1 if a tensor is missing. */
int enc_layout_from_table(const jepa_model *m, enc_layout *L);

#endif
