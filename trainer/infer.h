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
#include <stdint.h>

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

/* CALL(n) with n (1 <= n <= 11; else nothing) a constant in each branch:
 * the rows left after a kernel's whole tiles, as one tile whose loops
 * unroll (ops_infer.c, ops_attn_bf16.c) */
#define INFER_REMAINDER(n, CALL)                                                               \
    switch (n) {                                                                               \
    case 11: CALL(11); break;                                                                  \
    case 10: CALL(10); break;                                                                  \
    case 9: CALL(9); break;                                                                    \
    case 8: CALL(8); break;                                                                    \
    case 7: CALL(7); break;                                                                    \
    case 6: CALL(6); break;                                                                    \
    case 5: CALL(5); break;                                                                    \
    case 4: CALL(4); break;                                                                    \
    case 3: CALL(3); break;                                                                    \
    case 2: CALL(2); break;                                                                    \
    case 1: CALL(1); break;                                                                    \
    default: break;                                                                            \
    }

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

/* ------------------------------------------- bfloat16 products, forward */
/* eval.precision: bf16. The same product and epilogue with bfloat16 inputs
 * and float sums: AVX512_BF16's VDPBF16PS, which multiplies pairs of
 * bfloat16 (k = 2i, 2i+1) and adds both products to a float lane, with
 * denormal inputs and outputs taken as zero (Intel SDM, VDPBF16PS). Inputs
 * round to bfloat16 (8-bit significand) to nearest, ties to even; the
 * product's relative error is then ~2^-8 per term where fp32's is ~2^-24,
 * for about twice fp32's throughput (measured: docs/performance.md).
 * Determinism as infer_linear: every output one thread's sum over k pairs
 * in order, whatever M and the thread count; on one CPU model (VDPBF16PS's
 * internal rounding is the CPU's). */

#if defined(__AVX512F__)
/* The bfloat16 kernels' functions (ops_infer.c, ops_attn_bf16.c): compiled
 * for AVX512_BF16 whatever the build's flags, run only where
 * infer_bf16_supported said yes (the CPU is asked at run time). */
#define INFER_BF16_FN __attribute__((target("avx512f,avx512bw,avx512bf16")))
/* m rows of n floats (row stride lds) to ceil(n / 2) bfloat16 pairs each
 * in dst (row stride ldd uint32), element 2i in the low half of pair i,
 * rounded to nearest even (VCVTNE2PS2BF16), zero past n. Only where
 * infer_bf16_supported. */
INFER_BF16_FN void infer_rows_bf16(uint32_t *dst, int ldd, const float *src, int lds, int m, int n);
#endif

/* 1 when this program can run infer_linear_bf16: an AVX-512 build on a CPU
 * with AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake and Sapphire
 * Rapids and later); else 0 and why, a phrase, in *why. The environment
 * variable JEPA_DEBUG_NO_BF16=1 makes it 0 (the refusal's test). */
int infer_bf16_supported(const char **why);
/* uint16 elements of W (N, K) packed for it: ceil(N / INFER_NR) panels of
 * (ceil(K / 2), INFER_NR, 2), K padded to even with zeros. */
size_t infer_pack_bf16_elems(int K, int N);
/* W (N, K) row-major, rounded to bfloat16: panel p's pair row i holds
 * wp[((p K2 + i) INFER_NR + j) 2 + e] = bf16(W[p INFER_NR + j][2i + e]),
 * K2 = ceil(K / 2), zero past N and K. */
void infer_pack_bf16(uint16_t *wp, const float *w, int K, int N);
/* infer_linear's contract (out = inp W^T + (res + b), then GELU) with inp
 * and W in bfloat16 (inp rounded here, per block of rows), float sums. The
 * GELU is the same tanh form computed without a division (ops_infer.c's
 * gelu_fast: within 1e-6 relative of it in double, plus its argument's
 * own rounding; not gelu_forward's bits). Requires infer_bf16_supported
 * (asserted). */
void infer_linear_bf16(float *out, const float *inp, const uint16_t *wp, const float *b,
                       const float *res, int M, int K, int N, int gelu);
/* The same product with inp already in bfloat16 pairs: M rows of
 * ceil(K / 2) uint32, infer_rows_bf16's layout (an odd K's pad zero). Its
 * output goes to out (as infer_linear_bf16's) or, outb not NULL (out then
 * NULL), rounded to bfloat16 pairs there: M rows of ceil(N / 2), an odd
 * N's pad zero, ready to be the next product's inp. The same bits as
 * infer_linear_bf16 with rounding before or after (tested): the producers
 * of enc_infer's bfloat16 path write pairs once, where rounding each
 * product's input read and wrote every row again. */
void infer_linear_bf16_pairs(float *out, uint32_t *outb, const uint32_t *inp, const uint16_t *wp,
                             const float *b, const float *res, int M, int K, int N, int gelu);
/* infer_layernorm's values rounded to bfloat16 pairs: out M rows of
 * ceil(C / 2) uint32 (the same bits as infer_layernorm, then rounding) */
void infer_layernorm_bf16(uint32_t *out, const float *inp, const float *w, const float *b, int M,
                          int C);
/* x rounded to bfloat16, to nearest with ties to even (a NaN stays NaN) */
uint16_t infer_bf16_round(float x);

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
/* The same contract (any B, T, C/H; no causal form) with bfloat16
 * products, for eval.precision: bf16. Per (image, head): S = Q K^T with q
 * and k rounded to bfloat16 (nearest even), VDPBF16PS over pairs of head
 * columns (2i, 2i+1; an odd width's last pair padded with zero), float
 * sums; P = the softmax of S / sqrt(C/H) in fp32 (fast_exp512, fastmath.h:
 * within a few ulps of infer_attention's); O = P V with P and v rounded to
 * bfloat16 and pairs of tokens (2j, 2j+1; an odd T padded with a zero
 * token), float sums. Every
 * output one thread's sum in a fixed order: the same bits for any thread
 * count and B. Requires infer_bf16_supported (asserted).
 * scratch: infer_attention_bf16_floats(T, C/H) floats per OpenMP thread. */
size_t infer_attention_bf16_floats(int T, int hd);
void infer_attention_bf16(float *out, const float *qkv, int B, int T, int C, int H,
                          float *scratch);
/* The same from qkv already in bfloat16 pairs of columns (B*T rows of 3C/2
 * uint32: infer_linear_bf16_pairs' outb) into outb (B*T rows of C/2), its
 * output rounded to bfloat16 pairs as infer_rows_bf16 rounds: the same bits
 * as infer_attention_bf16 with rounding before and after (tested). C/H
 * even (a head's columns whole pairs; asserted). */
void infer_attention_bf16_pairs(uint32_t *outb, const uint32_t *qkvb, int B, int T, int C, int H,
                                float *scratch);

/* ---------------------------------------------------- the encoder, forward */
/* The ViT encoder of encoder.h run forward only, for features: weights
 * packed at init (W must not change while this lives unless
 * enc_infer_repack follows), buffers for maxS images of one layer at a
 * time, nothing kept across blocks. */
typedef struct {
    const jepa_dims *d;
    const enc_layout *L;
    const float *W;
    int maxS, img, G, N, k;     /* images, side, grid, tokens per image, pooled blocks */
    float *wp;                  /* packed patch, then (fp32) per block qkv, proj, fc1, fc2 */
    uint16_t *wpb;              /* bf16 (else NULL): per block qkv, proj, fc1, fc2 in bfloat16 */
    size_t wp_patch, wp_blk[64][4], wpb_blk[64][4];
    float *pos;                 /* (N, D) */
    float *pix;                 /* (maxS, ch, img, img) normalised pixels */
    float *patches;             /* (maxS*N, pdim) */
    float *x, *ln, *atty;       /* (maxS*N, D) residual stream, LayerNorm out, attention out */
    float *qkv;                 /* (maxS*N, 3D); qkv, atty NULL where qkvb, attb */
    float *hid;                 /* (maxS*N, mlp), fp32 only */
    uint32_t *lnb, *hidb;       /* bf16 only: ln and hid in bfloat16 pairs */
    uint32_t *qkvb, *attb;      /* bf16 with even C/H: qkv and atty in pairs */
    float *attn;                /* infer_attention(_bf16) scratch, per thread */
    int nthr;                   /* threads it has scratch for: OpenMP's at init */
} enc_infer;

/* Images per forward for extraction (eval_images.c, bench-extract) and the
 * bf16 EMA target's forward (model.c): the
 * features do not depend on it; 16 keep a layer's activations (784 rows at
 * 7x7 tokens, ~4 MB at width 128) close to the cores, where 64 ran the
 * products 10-20% slower (docs/performance.md). */
#define INFER_CHUNK_IMAGES 16

/* For features pooled over the last k blocks (1 <= k <= depth) of images
 * of side img (a multiple of d->patch), up to maxS images per forward.
 * bf16 1: the blocks' products in bfloat16 (infer_linear_bf16_pairs, and
 * attention's two, infer_attention_bf16_pairs; heads of an odd width:
 * infer_attention_bf16 and infer_linear_bf16 for proj; the patch embedding
 * and LayerNorm stay fp32, the softmax and GELU are fp32 without training's
 * bits), which needs infer_bf16_supported (asserted). Attention's scratch
 * is for OpenMP's thread count at init: running at more threads later is
 * refused (asserted). */
void enc_infer_init(enc_infer *p, const jepa_dims *d, const enc_layout *L, const float *W,
                    int maxS, int img, int k, int bf16);
void enc_infer_free(enc_infer *p);
/* enc_features' contract (features (n, k*D) of n u8 images normalised with
 * (mean, std), chunks of maxS), forward only; equal to it within float
 * rounding (the products sum in another order; with bf16, within
 * bfloat16's), and bitwise independent of the thread count and of maxS. */
void enc_infer_features(enc_infer *p, const uint8_t *pixels, int n, float mean, float std,
                        float *feats);
/* The encoder on n images' patches (n*N, pdim; patchify's layout, pixels
 * already normalised), chunks of maxS: out (n*N, D) receives the residual
 * stream after the last block, before the final LayerNorm (the caller's:
 * ijepa.target_precision, model.c). k is unused here. */
void enc_infer_tokens(enc_infer *p, const float *patches, int n, float *out);
/* Packs the weights again from p->W, which changed (the EMA target after
 * an update); the buffers are init's. */
void enc_infer_repack(enc_infer *p);

#endif
