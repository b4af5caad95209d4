/* infer.h - forward-only kernels for feature extraction (private to
 * trainer/): a matrix product against weights packed once, and training's
 * attention and LayerNorm (ops_attn.c, ops.c) without the probabilities and
 * statistics its backward keeps. Training's products against weights run on
 * infer_linear too, with the weights packed per call (either orientation:
 * infer_pack, infer_pack_rows), so where INFER_PACKED the extractor's
 * features are the training forward's bits.
 *
 * Why our own product: the OpenBLAS this project links (0.3.21) takes a
 * Zen 5 for a Haswell and runs AVX2 kernels at ~95 GFLOP/s per core, where
 * the CPU's AVX-512 units give ~190 (measured, bench-extract). The packed
 * product uses AVX-512 when the compiler targets it (JEPA_NATIVE builds on
 * such a CPU), else the compiler's vectors (AVX, AVX2: 6 x 16 tiles).
 *
 * Determinism: every output element is one sum over k = 0..K-1 in order,
 * computed by one thread, so results do not depend on the thread count or
 * on how many rows a call holds (tested bitwise). */
#ifndef JEPA_INFER_H
#define JEPA_INFER_H

#include <stddef.h>

#include "encoder.h"

/* Columns per packed panel: AVX-512's tile, two 16-float vectors; other
 * builds' tiles are 16 columns wide, and a panel of exactly their width
 * keeps a tile's weight rows contiguous (with 32, each tile read every
 * other 64-byte line, and K = 512 rows no longer fit L1). */
#if defined(__AVX512F__)
#define INFER_NR 32
#else
#define INFER_NR 16
#endif

/* 1 where training's products against weights run on infer_linear_pre
 * (ops.c): AVX-512 builds, and AVX2 builds with FMA (as fast as
 * OpenBLAS's there, with the bias, residual and GELU in the tile, every row
 * the same sum whatever M: docs/performance.md); elsewhere cblas_sgemm. */
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define INFER_PACKED 1
#else
#define INFER_PACKED 0
#endif

/* Floats of W (N, K) packed: ceil(N / INFER_NR) panels of (K, INFER_NR). */
size_t infer_pack_floats(int K, int N);
/* Packs W (N, K), row-major as in the parameter buffer, into wp
 * (infer_pack_floats(K, N) floats): panel p holds wp[(p K + k) INFER_NR + j]
 * = W[p INFER_NR + j][k], zero past N. */
void infer_pack(float *wp, const float *w, int K, int N);

/* out (M, N) = inp (M, K) @ W^T + b, plus res (M, N) when res is not NULL
 * (out = acc + (res + b), the order of ops.c's linear_residual; res may
 * equal out), then gelu_forward's GELU when gelu is 1. wp: W packed by
 * infer_pack; b may be NULL. Threaded with OpenMP over row blocks. */
void infer_linear(float *out, const float *inp, const float *wp, const float *b,
                  const float *res, int M, int K, int N, int gelu);
/* The same, and pre (M, N), unless NULL, receives the values before the
 * GELU (training keeps them for the backward). */
void infer_linear_pre(float *out, float *pre, const float *inp, const float *wp, const float *b,
                      const float *res, int M, int K, int N, int gelu);
/* Packs a row-major B (K, N) into the panels infer_linear reads, so that it
 * computes inp @ B: wp[(p K + k) INFER_NR + j] = B[k][p INFER_NR + j] (the
 * backward's d(inp) = d(out) W takes B = W). */
void infer_pack_rows(float *wp, const float *w, int K, int N);

/* out (M, C) = LayerNorm of inp (M, C) with gain w and bias b (eps 1e-6),
 * layernorm_forward's arithmetic without its statistics: the same bits. */
void infer_layernorm(float *out, const float *inp, const float *w, const float *b, int M,
                     int C);

/* Multi-head self-attention over B sequences of T tokens, forward only:
 * out (B*T, C) from qkv (B*T, 3C) (q | k | v, heads of C/H columns each).
 * attention_forward without its (B, H, T, T) probability tensor: the same
 * kernel, the same bits.
 * scratch: infer_attention_floats(T, C/H) floats per OpenMP thread. */
size_t infer_attention_floats(int T, int hd);
void infer_attention(float *out, const float *qkv, int B, int T, int C, int H, float *scratch);

/* ---------------------------------------------------- the encoder, forward */
/* The ViT encoder of encoder.h run forward only, for features: weights
 * packed once at init (so W must not change while this lives), buffers for
 * maxS images of one layer at a time, nothing kept across blocks. */
typedef struct {
    const jepa_dims *d;
    const enc_layout *L;
    const float *W;
    int maxS, img, G, N, k;     /* images, side, grid, tokens per image, pooled blocks */
    float *wp;                  /* packed patch, then per block qkv, proj, fc1, fc2 */
    size_t wp_patch, wp_blk[64][4];
    float *pos;                 /* (N, D) */
    float *pix;                 /* (maxS, ch, img, img) normalised pixels */
    float *patches;             /* (maxS*N, pdim) */
    float *x, *ln, *atty;       /* (maxS*N, D) residual stream, LayerNorm out, attention out */
    float *qkv;                 /* (maxS*N, 3D) */
    float *hid;                 /* (maxS*N, mlp) */
    float *attn;                /* infer_attention scratch, per thread */
} enc_infer;

/* Images per forward for extraction (eval_images.c, bench-extract): the
 * features do not depend on it; 16 keep a layer's activations (784 rows at
 * 7x7 tokens, ~4 MB at width 128) close to the cores, where 64 ran the
 * products 10-20% slower (docs/performance.md). */
#define INFER_CHUNK_IMAGES 16

/* For features pooled over the last k blocks (1 <= k <= depth) of images
 * of side img (a multiple of d->patch), up to maxS images per forward. */
void enc_infer_init(enc_infer *p, const jepa_dims *d, const enc_layout *L, const float *W,
                    int maxS, int img, int k);
void enc_infer_free(enc_infer *p);
/* enc_features' contract (features (n, k*D) of n u8 images normalised with
 * (mean, std), chunks of maxS), forward only; equal to it within float
 * rounding (the products sum in another order), and bitwise independent of
 * the thread count and of maxS. */
void enc_infer_features(enc_infer *p, const uint8_t *pixels, int n, float mean, float std,
                        float *feats);

#endif
