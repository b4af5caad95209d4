/* ops_attn.h - the piece of training's attention (ops_attn.c) that the
 * bfloat16 extraction attention (ops_attn_bf16.c) shares, private to
 * trainer/: the 16 x 16 transpose. */
#ifndef JEPA_OPS_ATTN_H
#define JEPA_OPS_ATTN_H

#if defined(__AVX512F__)
#include <immintrin.h>
/* dst rows c = 0..15 (stride ldd) <- column c of the 16 x 16 block r[0..16):
 * shuffles only, so any 32-bit words come through bit for bit */
void attn_transpose16(float *dst, int ldd, const __m512 r[16]);
#endif

#endif
