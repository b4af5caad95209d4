/* ops_attn.h - pieces of training's attention (ops_attn.c) that the
 * bfloat16 extraction attention (ops_attn_bf16.c) shares, private to
 * trainer/: the softmax, so both paths take the same fp32 probabilities
 * from the same scores, and the 16 x 16 transpose. */
#ifndef JEPA_OPS_ATTN_H
#define JEPA_OPS_ATTN_H

/* Softmax of the first nr rows of a head's scores s (T columns live, row
 * stride Tp = round_vw(T), columns past T ignored) scaled by `scale` > 0,
 * in place, exact zeros in [T, Tp) (and into att (nr, T) unless NULL);
 * causal: row i keeps tokens 0..i. attention_forward's arithmetic. */
void attn_softmax_head(float *s, int Tp, float *att, int nr, int T, float scale, int causal);
#if defined(__AVX512F__)
#include <immintrin.h>
/* dst rows c = 0..15 (stride ldd) <- column c of the 16 x 16 block r[0..16):
 * shuffles only, so any 32-bit words come through bit for bit */
void attn_transpose16(float *dst, int ldd, const __m512 r[16]);
#endif

#endif
