/* enc_infer.c - the image encoder forward only (infer.h), for feature
 * extraction and the bf16 EMA target of training (ijepa.target_precision,
 * model.c): one layer's buffers, weights packed at init (and again by
 * enc_infer_repack when they change), and the same
 * operations as enc_pass_forward in the same order: the same bits where
 * training's products run on the packed tile too (INFER_PACKED), within
 * float rounding where they run on cblas_sgemm. */
#include <omp.h>
#include <string.h>

#include "infer.h"

enum { WP_QKV, WP_PROJ, WP_FC1, WP_FC2 };

static const int blk_which[4] = {BLK_QKVW, BLK_PROJW, BLK_FC1W, BLK_FC2W};

/* The blocks' four weight matrices (K, N of each below), packed after the
 * patch embedding's: fp32 panels in p->wp (infer_linear), or bfloat16 pair
 * panels in p->wpb (infer_linear_bf16), never both; *nf, *nb: the floats
 * and uint16 they take. With fill 0 only counts. */
static void pack_weights(enc_infer *p, int bf16, int fill, size_t *nf, size_t *nb) {
    const jepa_dims *d = p->d;
    const int D = d->D, Hd = d->mlp, K[4] = {D, D, D, Hd}, Nn[4] = {3 * D, D, Hd, D};
    size_t at = infer_pack_floats(d->pdim, D), atb = 0;
    if (fill) infer_pack(p->wp, p->W + p->L->patch_w, d->pdim, D);
    p->wp_patch = 0;
    for (int l = 0; l < d->depth; l++)
        for (int q = 0; q < 4; q++) {
            const float *w = p->W + p->L->blk[(size_t)l * BLK_N + blk_which[q]];
            if (bf16) {
                p->wpb_blk[l][q] = atb;
                if (fill) infer_pack_bf16(p->wpb + atb, w, K[q], Nn[q]);
                atb += infer_pack_bf16_elems(K[q], Nn[q]);
            } else {
                p->wp_blk[l][q] = at;
                if (fill) infer_pack(p->wp + at, w, K[q], Nn[q]);
                at += infer_pack_floats(K[q], Nn[q]);
            }
        }
    *nf = at;
    *nb = atb;
}

void enc_infer_repack(enc_infer *p) {
    size_t nf, nb;
    pack_weights(p, p->wpb != NULL, 1, &nf, &nb);
}

void enc_infer_init(enc_infer *p, const jepa_dims *d, const enc_layout *L, const float *W,
                    int maxS, int img, int k, int bf16) {
    memset(p, 0, sizeof *p);
    JEPA_ASSERT(img % d->patch == 0 && maxS > 0 && k >= 1 && k <= d->depth && d->depth <= 64);
    p->d = d;
    p->L = L;
    p->W = W;
    p->maxS = maxS;
    p->img = img;
    p->G = img / d->patch;
    p->N = p->G * p->G;
    p->k = k;
    const int D = d->D, Hd = d->mlp;
    size_t nf, nb;
    JEPA_ASSERT(!bf16 || infer_bf16_supported(NULL));
    pack_weights(p, bf16, 0, &nf, &nb);
    p->wp = JEPA_MALLOC(sizeof(float) * nf);
    if (bf16) p->wpb = JEPA_MALLOC(sizeof(uint16_t) * nb);
    enc_infer_repack(p);
    size_t M = (size_t)maxS * p->N;
    p->pos = JEPA_MALLOC(sizeof(float) * p->N * D);
    pos_embed_sincos(p->pos, D, p->G);
    p->pix = JEPA_MALLOC(sizeof(float) * (size_t)maxS * d->ch * img * img);
    p->patches = JEPA_MALLOC(sizeof(float) * M * d->pdim);
    p->x = JEPA_MALLOC(sizeof(float) * M * D);
    p->ln = JEPA_MALLOC(sizeof(float) * M * D);
    if (bf16 && (D / d->heads) % 2 == 0) { /* whole pairs a head: infer_block_bf16 */
        p->qkvb = JEPA_MALLOC(sizeof(uint32_t) * M * 3 * D / 2);
        p->attb = JEPA_MALLOC(sizeof(uint32_t) * M * D / 2);
    } else {
        p->atty = JEPA_MALLOC(sizeof(float) * M * D);
        p->qkv = JEPA_MALLOC(sizeof(float) * M * 3 * D);
    }
    if (bf16) { /* LayerNorm's and fc1's outputs in bfloat16 pairs: infer_block_bf16 */
        p->lnb = JEPA_MALLOC(sizeof(uint32_t) * M * ((D + 1) / 2));
        p->hidb = JEPA_MALLOC(sizeof(uint32_t) * M * ((Hd + 1) / 2));
    } else {
        p->hid = JEPA_MALLOC(sizeof(float) * M * Hd);
    }
    size_t per = bf16 ? infer_attention_bf16_floats(p->N, D / d->heads)
                      : infer_attention_floats(p->N, D / d->heads);
    p->nthr = omp_get_max_threads();
    p->attn = JEPA_MALLOC(sizeof(float) * per * p->nthr);
}

void enc_infer_free(enc_infer *p) {
    float *f[] = {p->wp, p->pos, p->pix, p->patches, p->x, p->ln, p->atty, p->qkv, p->hid,
                  p->attn};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
    jepa_free(p->wpb);
    jepa_free(p->lnb);
    jepa_free(p->hidb);
    jepa_free(p->qkvb);
    jepa_free(p->attb);
    memset(p, 0, sizeof *p);
}

/* One pre-LN block in place on p->x (M = S*N rows), bfloat16 products:
 * every product's input is written in bfloat16 pairs by its producer (the
 * LayerNorms, qkv for attention, attention for proj, fc1 for fc2), the same
 * bits as rounding it where it is read; heads of an odd width (pairs
 * across heads) keep qkv and attention's output in floats */
static void infer_block_bf16(enc_infer *p, int l, int S) {
    const jepa_dims *d = p->d;
    const int N = p->N, D = d->D, Hd = d->mlp, M = S * N;
    const size_t *o = p->L->blk + (size_t)l * BLK_N, *at = p->wpb_blk[l];
    const float *W = p->W;
    infer_layernorm_bf16(p->lnb, p->x, W + o[BLK_LN1W], W + o[BLK_LN1B], M, D);
    if (p->qkvb) {
        infer_linear_bf16_pairs(NULL, p->qkvb, p->lnb, p->wpb + at[WP_QKV], W + o[BLK_QKVB], NULL,
                                M, D, 3 * D, 0);
        infer_attention_bf16_pairs(p->attb, p->qkvb, S, N, D, d->heads, p->attn);
        infer_linear_bf16_pairs(p->x, NULL, p->attb, p->wpb + at[WP_PROJ], W + o[BLK_PROJB], p->x,
                                M, D, D, 0);
    } else {
        infer_linear_bf16_pairs(p->qkv, NULL, p->lnb, p->wpb + at[WP_QKV], W + o[BLK_QKVB], NULL,
                                M, D, 3 * D, 0);
        infer_attention_bf16(p->atty, p->qkv, S, N, D, d->heads, p->attn);
        infer_linear_bf16(p->x, p->atty, p->wpb + at[WP_PROJ], W + o[BLK_PROJB], p->x, M, D, D, 0);
    }
    infer_layernorm_bf16(p->lnb, p->x, W + o[BLK_LN2W], W + o[BLK_LN2B], M, D);
    infer_linear_bf16_pairs(NULL, p->hidb, p->lnb, p->wpb + at[WP_FC1], W + o[BLK_FC1B], NULL, M,
                            D, Hd, 1);
    infer_linear_bf16_pairs(p->x, NULL, p->hidb, p->wpb + at[WP_FC2], W + o[BLK_FC2B], p->x, M,
                            Hd, D, 0);
}

/* out (M, N) = inp @ block l's matrix q ^T + (res + b), then GELU */
static void block_linear(enc_infer *p, int l, int q, float *out, const float *inp,
                         const float *b, const float *res, int M, int K, int N, int gelu) {
    infer_linear(out, inp, p->wp + p->wp_blk[l][q], b, res, M, K, N, gelu);
}

/* One pre-LN block in place on p->x (M = S*N rows). */
static void infer_block(enc_infer *p, int l, int S) {
    if (p->wpb) {
        infer_block_bf16(p, l, S);
        return;
    }
    const jepa_dims *d = p->d;
    const int N = p->N, D = d->D, Hd = d->mlp, M = S * N;
    const size_t *o = p->L->blk + (size_t)l * BLK_N;
    const float *W = p->W;
    infer_layernorm(p->ln, p->x, W + o[BLK_LN1W], W + o[BLK_LN1B], M, D);
    block_linear(p, l, WP_QKV, p->qkv, p->ln, W + o[BLK_QKVB], NULL, M, D, 3 * D, 0);
    infer_attention(p->atty, p->qkv, S, N, D, d->heads, p->attn);
    block_linear(p, l, WP_PROJ, p->x, p->atty, W + o[BLK_PROJB], p->x, M, D, D, 0);
    infer_layernorm(p->ln, p->x, W + o[BLK_LN2W], W + o[BLK_LN2B], M, D);
    block_linear(p, l, WP_FC1, p->hid, p->ln, W + o[BLK_FC1B], NULL, M, D, Hd, 1);
    block_linear(p, l, WP_FC2, p->x, p->hid, W + o[BLK_FC2B], p->x, M, Hd, D, 0);
}

/* The final LayerNorm of p->x, averaged over each image's tokens, into
 * column block j of the S feature rows at f (row stride k*D). */
static void infer_pool(enc_infer *p, int S, float *f, int j) {
    const int N = p->N, D = p->d->D, M = S * N;
    infer_layernorm(p->ln, p->x, p->W + p->L->norm_w, p->W + p->L->norm_b, M, D);
    #pragma omp parallel for schedule(static)
    for (int s = 0; s < S; s++) {
        float *o = f + (size_t)s * p->k * D + (size_t)j * D;
        for (int c = 0; c < D; c++) o[c] = 0.0f;
        for (int t = 0; t < N; t++) {
            const float *x = p->ln + ((size_t)s * N + t) * D;
            for (int c = 0; c < D; c++) o[c] += x[c];
        }
        for (int c = 0; c < D; c++) o[c] /= N;
    }
}

/* p->x (S*N, D) = the patch embedding of patches (S*N, pdim) + positions */
static void embed(enc_infer *p, const float *patches, int S) {
    const jepa_dims *d = p->d;
    const int N = p->N, D = d->D, M = S * N;
    infer_linear(p->x, patches, p->wp + p->wp_patch, p->W + p->L->patch_b, NULL, M, d->pdim, D,
                 0);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *pe = p->pos + (size_t)(i % N) * D;
        float *x = p->x + (size_t)i * D;
        for (int c = 0; c < D; c++) x[c] += pe[c];
    }
}

void enc_infer_features(enc_infer *p, const uint8_t *pixels, int n, float mean, float std,
                        float *feats) {
    const jepa_dims *d = p->d;
    const size_t npix = (size_t)d->ch * p->img * p->img;
    JEPA_ASSERT(omp_get_max_threads() <= p->nthr); /* attention's scratch is per thread */
    for (int i0 = 0; i0 < n; i0 += p->maxS) {
        int S = n - i0 < p->maxS ? n - i0 : p->maxS;
        const uint8_t *src = pixels + (size_t)i0 * npix;
        #pragma omp parallel for schedule(static)
        for (size_t q = 0; q < (size_t)S * npix; q++)
            p->pix[q] = ((float)src[q] * (1.0f / 255.0f) - mean) / std;
        patchify(p->patches, p->pix, S, d->ch, p->img, d->patch);
        embed(p, p->patches, S);
        float *f = feats + (size_t)i0 * p->k * d->D;
        for (int l = 0; l < d->depth; l++) {
            infer_block(p, l, S);
            if (l >= d->depth - p->k) infer_pool(p, S, f, l - (d->depth - p->k));
        }
    }
}

void enc_infer_tokens(enc_infer *p, const float *patches, int n, float *out) {
    const size_t per = (size_t)p->N * p->d->D, pper = (size_t)p->N * p->d->pdim;
    JEPA_ASSERT(omp_get_max_threads() <= p->nthr);
    for (int i0 = 0; i0 < n; i0 += p->maxS) {
        int S = n - i0 < p->maxS ? n - i0 : p->maxS;
        embed(p, patches + (size_t)i0 * pper, S);
        for (int l = 0; l < p->d->depth; l++) infer_block(p, l, S);
        memcpy(out + (size_t)i0 * per, p->x, sizeof(float) * S * per);
    }
}
