/* ops_attn_bf16.c - extraction's attention with bfloat16 products
 * (eval.precision: bf16, infer.h): per (image, head) S = Q K^T over pairs
 * of the head's columns and O = P V over pairs of tokens, both through
 * AVX512_BF16's VDPBF16PS with float sums; the softmax between them in
 * fp32 on fast_exp512 (fastmath.h), written straight as P V's bfloat16
 * input. Training and the fp32 extraction never come here. */
#include <math.h>
#include <omp.h>

#include "infer.h"
#include "jepa.h"
#include "fastmath.h"
#include "ops_attn.h"
#include "prof.h"
#include "vec.h"

/* per thread, in 4-byte units: qkvh (T, 3 hd2) pairs (a head's q, k, v
 * rounded, infer_attention_bf16), kp (h2p, Tp) pairs, o (T, hdp) floats
 * (infer_attention_bf16_pairs' output before rounding), s (T, Tp) floats,
 * pb (T, Tp/2) pairs, vp (T2, hdp) pairs; Tp, hdp and h2p = T, hd and hd2
 * rounded up to 16, hd2 and T2 halves rounded up */
static size_t attn_bf16_parts(int T, int hd, size_t *at) {
    const size_t Tp = (size_t)(T + 15) / 16 * 16, hp = (size_t)(hd + 15) / 16 * 16;
    const size_t hd2 = (size_t)(hd + 1) / 2, h2p = (hd2 + 15) / 16 * 16, T2 = (size_t)(T + 1) / 2;
    const size_t n[6] = {T * 3 * hd2, h2p * Tp, T * hp, T * Tp, T * Tp / 2, T2 * hp};
    size_t tot = 0;
    for (int i = 0; i < 6; i++) {
        if (at) at[i] = tot;
        tot += (n[i] + 15) & ~(size_t)15; /* each part on its own 64-byte lines */
    }
    return tot;
}

size_t infer_attention_bf16_floats(int T, int hd) { return attn_bf16_parts(T, hd, NULL); }

#if defined(__AVX512F__)
/* The pair order: element 2i in the low half of a 32-bit lane, 2i+1 in the
 * high half, for both of VDPBF16PS's operands, so each lane adds
 * a_2i b_2i + a_2i+1 b_2i+1. */

/* dst[j] = the pair (x0[j], x1[j]) of bfloat16 words for j < np (a
 * multiple of 16), zero past n; x1 NULL: zeros (an odd count's last pair).
 * x0's 16 words in words 0-15, x1's in 16-31, then VPERMW puts word j and
 * word 16 + j side by side. */
static INFER_BF16_FN void interleave_pairs(uint32_t *dst, const uint16_t *x0, const uint16_t *x1,
                                           int n, int np) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    for (int j = 0; j < np; j += 16) {
        __mmask16 m = lanes16(n - j);
        __m256i a = _mm256_maskz_loadu_epi16(m, x0 + j);
        __m256i b = x1 ? _mm256_maskz_loadu_epi16(m, x1 + j) : _mm256_setzero_si256();
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
        _mm512_storeu_si512(dst + j, _mm512_permutexvar_epi16(idx, w));
    }
}

/* kp (h2p, Tp) <- the transpose of kr (T, hd2 pairs; row stride ldk),
 * zero past T and hd2: blocks of 16 x 16 words */
static INFER_BF16_FN void pairs_transpose(uint32_t *kp, int Tp, const uint32_t *kr, int ldk,
                                          int hd2, int T) {
    for (int j = 0; j < Tp; j += 16)
        for (int d = 0; d < hd2; d += 16) {
            __mmask16 m = hd2 - d >= 16 ? 0xffff : (__mmask16)((1u << (hd2 - d)) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = j + i < T ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(
                                       m, kr + (size_t)(j + i) * ldk + d))
                                 : _mm512_setzero_ps();
            attn_transpose16((float *)(kp + (size_t)d * Tp + j), Tp, r);
        }
}

/* C[r][0, NB*16) = sum over pairs i < k2 of A[r][i] . B[i][0, NB*16), for
 * RB (constant) rows: A and B rows of pairs (strides lda, ldb), the last
 * vector stored through mask `last`. Each output one sum, pairs in order. */
static inline __attribute__((always_inline)) INFER_BF16_FN void
bf_block(float *C, int ldc, const uint32_t *A, int lda, const uint32_t *B, int ldb, int k2,
         __mmask16 last, const int RB, const int NB) {
    __m512 acc[12][4];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NB; v++) acc[r][v] = _mm512_setzero_ps();
    for (int i = 0; i < k2; i++) {
        __m512bh b[4];
        for (int v = 0; v < NB; v++)
            b[v] = (__m512bh)_mm512_loadu_si512(B + (size_t)i * ldb + v * 16);
        for (int r = 0; r < RB; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[(size_t)r * lda + i]);
            for (int v = 0; v < NB; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
        }
    }
    for (int r = 0; r < RB; r++) {
        for (int v = 0; v < NB - 1; v++) _mm512_storeu_ps(C + (size_t)r * ldc + v * 16, acc[r][v]);
        _mm512_mask_storeu_ps(C + (size_t)r * ldc + (NB - 1) * 16, last, acc[r][NB - 1]);
    }
}

/* C (m, n; row stride ldc) = A (m, k2 pairs) . B (k2 pairs, n): blocks of 6
 * rows x 4 vectors, 8 x 3 or 12 x 2 and 12 x 1 (24 accumulators at most,
 * of AVX-512's 32 registers); the block's shape does not change a sum */
static INFER_BF16_FN void bf_mm(float *C, int ldc, const uint32_t *A, int lda, const uint32_t *B,
                                int ldb, int m, int k2, int n) {
    for (int j = 0; j < n;) {
        int nv = (n - j + 15) / 16, nb = nv > 4 ? 4 : nv, rb = nb == 4 ? 6 : nb == 3 ? 8 : 12;
        int tail = n - j - (nb - 1) * 16, i = 0;
        __mmask16 last = tail >= 16 ? 0xffff : (__mmask16)((1u << tail) - 1);
        float *c = C + j;
        const uint32_t *b = B + j;
#define BF_BLOCK(RB, NB) \
    bf_block(c + (size_t)i * ldc, ldc, A + (size_t)i * lda, lda, b, ldb, k2, last, RB, NB)
        for (; i + rb <= m; i += rb) {
            switch (nb) {
            case 4: BF_BLOCK(6, 4); break;
            case 3: BF_BLOCK(8, 3); break;
            case 2: BF_BLOCK(12, 2); break;
            default: BF_BLOCK(12, 1); break;
            }
        }
#define BF_B4(RB) BF_BLOCK(RB, 4)
#define BF_B3(RB) BF_BLOCK(RB, 3)
#define BF_B2(RB) BF_BLOCK(RB, 2)
#define BF_B1(RB) BF_BLOCK(RB, 1)
        switch (nb) { /* rows [i, m), fewer than a block, as one block */
        case 4: INFER_REMAINDER(m - i, BF_B4); break;
        case 3: INFER_REMAINDER(m - i, BF_B3); break;
        case 2: INFER_REMAINDER(m - i, BF_B2); break;
        default: INFER_REMAINDER(m - i, BF_B1); break;
        }
#undef BF_BLOCK
#undef BF_B4
#undef BF_B3
#undef BF_B2
#undef BF_B1
        j += nb * 16;
    }
}

/* P = softmax(scale s) of a head's T rows of scores s (row stride Tp, a
 * multiple of 16; columns past T ignored, overwritten) straight into
 * bfloat16 pairs of tokens pb (row stride Tp / 2), zero past T: the max,
 * e^(scale s - max) by fast_exp512 (fastmath.h) into s, their float sum
 * over 16 lanes, one division per row. Not training's softmax bits (its
 * exp rounds as scalar code: ~25 operations where this takes 13); within
 * a few ulps of them before the rounding to bfloat16 (tested). */
static INFER_BF16_FN void softmax_pairs(uint32_t *pb, float *s, int Tp, int T, float scale) {
    const __m512 vs = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < T; i++) {
        float *x = s + (size_t)i * Tp;
        uint16_t *y = (uint16_t *)(pb + (size_t)i * (Tp / 2));
        __m512 mx = ninf, acc = _mm512_setzero_ps();
        for (int j = 0; j < Tp; j += 16) {
            __mmask16 m = lanes16(T - j);
            mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, m, x + j));
        }
        mx = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * scale); /* scale > 0 */
        for (int j = 0; j < Tp; j += 16) { /* masked: fast_exp512(-inf) is e^-87, not 0 */
            __mmask16 m = lanes16(T - j);
            __m512 z = _mm512_fmsub_ps(_mm512_loadu_ps(x + j), vs, mx);
            __m512 e = _mm512_maskz_mov_ps(m, fast_exp512(z));
            _mm512_storeu_ps(x + j, e);
            acc = _mm512_add_ps(acc, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
        for (int j = 0; j < Tp; j += 32) {
            __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(x + j), inv);
            __m512 hi = j + 16 < Tp ? _mm512_mul_ps(_mm512_loadu_ps(x + j + 16), inv) : lo;
            __m512i w = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            _mm512_mask_storeu_epi16(y + j, j + 16 < Tp ? 0xffffffffu : 0xffffu, w);
        }
    }
}

/* One (image, head) from its q, k and v rows in bfloat16 pairs of head
 * columns (q, k, v: the head's first pair of token 0; ld: pairs a token)
 * into out's head columns (T rows, stride ldo floats) or, out NULL, outb's
 * (stride ldo pairs): S = Q K^T over pairs of columns, P = softmax_pairs,
 * O = P V over pairs of tokens */
static INFER_BF16_FN void attn_head_bf16(float *out, uint32_t *outb, int ldo, const uint32_t *q,
                                         const uint32_t *k, const uint32_t *v, int ld, int T,
                                         int hd, float scale, float *ws) {
    const int Tp = (T + 15) / 16 * 16, hp = (hd + 15) / 16 * 16;
    const int hd2 = (hd + 1) / 2, T2 = (T + 1) / 2;
    size_t at[6];
    attn_bf16_parts(T, hd, at);
    float *s = ws + at[3], *o = ws + at[2];
    uint32_t *kp = (uint32_t *)(ws + at[1]), *pb = (uint32_t *)(ws + at[4]);
    uint32_t *vp = (uint32_t *)(ws + at[5]);
    pairs_transpose(kp, Tp, k, ld, hd2, T); /* K^T in pairs of columns */
    bf_mm(s, Tp, q, ld, kp, Tp, T, hd2, Tp);
    softmax_pairs(pb, s, Tp, T, scale);
    for (int i = 0; i < T2; i++)
        interleave_pairs(vp + (size_t)i * hp, (const uint16_t *)(v + (size_t)2 * i * ld),
                         2 * i + 1 < T ? (const uint16_t *)(v + (size_t)(2 * i + 1) * ld) : NULL,
                         hd, hp);
    if (out) {
        bf_mm(out, ldo, pb, Tp / 2, vp, hp, T, T2, hd);
        return;
    }
    bf_mm(o, hp, pb, Tp / 2, vp, hp, T, T2, hd);
    infer_rows_bf16(outb, ldo, o, hp, T, hd);
}

void infer_attention_bf16(float *out, const float *qkv, int B, int T, int C, int H,
                          float *scratch) {
    JEPA_ASSERT(infer_bf16_supported(NULL) && VW == 16);
    double t0 = prof_now();
    const int hd = C / H;
    const float scale = 1.0f / sqrtf((float)hd); /* attention_forward's */
    const size_t per = infer_attention_bf16_floats(T, hd);
    const int hd2 = (hd + 1) / 2;
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float *ws = scratch + per * omp_get_thread_num();
        uint32_t *qkvh = (uint32_t *)ws; /* the head's q, k, v rounded: part 0 */
        const float *base = qkv + (size_t)b * T * 3 * C + h * hd;
        for (int e = 0; e < 3; e++)
            infer_rows_bf16(qkvh + e * hd2, 3 * hd2, base + e * C, 3 * C, T, hd);
        attn_head_bf16(out + (size_t)b * T * C + h * hd, NULL, C, qkvh, qkvh + hd2, qkvh + 2 * hd2,
                       3 * hd2, T, hd, scale, ws);
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 4 * (uint64_t)B * T * T * C);
}
void infer_attention_bf16_pairs(uint32_t *outb, const uint32_t *qkvb, int B, int T, int C, int H,
                                float *scratch) {
    const int hd = C / H, hd2 = hd / 2;
    JEPA_ASSERT(infer_bf16_supported(NULL) && hd % 2 == 0);
    double t0 = prof_now();
    const float scale = 1.0f / sqrtf((float)hd); /* attention_forward's */
    const size_t per = infer_attention_bf16_floats(T, hd), ld = (size_t)3 * C / 2;
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const uint32_t *q = qkvb + (size_t)b * T * ld + (size_t)h * hd2; /* k, v: C/2, C on */
        float *ws = scratch + per * omp_get_thread_num();
        attn_head_bf16(NULL, outb + (size_t)b * T * (C / 2) + (size_t)h * hd2, C / 2, q, q + C / 2,
                       q + C, (int)ld, T, hd, scale, ws);
    }
    prof_kernel_add(PROF_K_ATTENTION, t0);
    prof_flops_add(PROF_K_ATTENTION, 4 * (uint64_t)B * T * T * C);
}
#else
/* no AVX-512 in this build: infer_bf16_supported says no, so never called */
void infer_attention_bf16(float *out, const float *qkv, int B, int T, int C, int H,
                          float *scratch) {
    (void)out, (void)qkv, (void)B, (void)T, (void)C, (void)H, (void)scratch;
    JEPA_ASSERT(infer_bf16_supported(NULL));
}
void infer_attention_bf16_pairs(uint32_t *outb, const uint32_t *qkvb, int B, int T, int C, int H,
                                float *scratch) {
    (void)outb, (void)qkvb, (void)B, (void)T, (void)C, (void)H, (void)scratch;
    JEPA_ASSERT(infer_bf16_supported(NULL));
}
#endif
