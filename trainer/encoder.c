/* encoder.c - the ViT image encoder over whole images (encoder.h). */
#include <stdio.h>
#include <string.h>

#include "encoder.h"

int enc_tensor_count(const jepa_dims *d) { return 4 + BLK_N * d->depth; }

void enc_table_add(table_builder *tb, const jepa_dims *d, enc_layout *L) {
    JEPA_ASSERT(d->depth <= 64);
    L->patch_w = table_add(tb, "enc.patch.w", d->D, d->pdim, 1);
    L->patch_b = table_add(tb, "enc.patch.b", 1, d->D, 0);
    for (int l = 0; l < d->depth; l++)
        table_add_block(tb, "enc", l, d->D, d->mlp, L->blk + (size_t)l * BLK_N);
    L->norm_w = table_add(tb, "enc.norm.w", 1, d->D, 0);
    L->norm_b = table_add(tb, "enc.norm.b", 1, d->D, 0);
}

void enc_pass_init(enc_pass *p, const jepa_dims *d, int maxS, int img, int keep) {
    memset(p, 0, sizeof *p);
    JEPA_ASSERT(img % d->patch == 0 && maxS > 0);
    p->maxS = maxS;
    p->img = img;
    p->G = img / d->patch;
    p->N = p->G * p->G;
    p->keep = keep;
    size_t M = (size_t)maxS * p->N;
    vit_acts_init(&p->acts, d->depth, maxS, p->N, d->D, d->mlp, d->heads, keep);
    p->pos = JEPA_MALLOC(sizeof(float) * p->N * d->D);
    pos_embed_sincos(p->pos, d->D, p->G);
    p->patches = JEPA_MALLOC(sizeof(float) * M * d->pdim);
    p->ln = JEPA_MALLOC(sizeof(float) * M * d->D);
    p->lnm = JEPA_MALLOC(sizeof(float) * M);
    p->lnr = JEPA_MALLOC(sizeof(float) * M);
    p->pooled = JEPA_MALLOC(sizeof(float) * maxS * d->D);
    if (keep) p->dres = JEPA_MALLOC(sizeof(float) * M * d->D);
}

void enc_pass_free(enc_pass *p) {
    vit_acts_free(&p->acts);
    float *f[] = {p->pos, p->patches, p->ln, p->lnm, p->lnr, p->pooled, p->dres};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
    memset(p, 0, sizeof *p);
}

void enc_pass_forward(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                      const float *images, int S, float *attn_scratch) {
    const int N = p->N, D = d->D, M = S * N;
    JEPA_ASSERT(S <= p->maxS);
    patchify(p->patches, images, S, d->ch, p->img, d->patch);
    float *x0 = vit_res(&p->acts, 0);
    linear_forward(x0, p->patches, W + L->patch_w, W + L->patch_b, M, d->pdim, D);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *pe = p->pos + (size_t)(i % N) * D;
        float *x = x0 + (size_t)i * D;
        for (int c = 0; c < D; c++) x[c] += pe[c];
    }
    vit_stack_forward(&p->acts, W, L->blk, S, N, attn_scratch);
    layernorm_forward(p->ln, p->lnm, p->lnr, vit_res(&p->acts, d->depth), W + L->norm_w,
                      W + L->norm_b, M, D);
    mean_rows(p->pooled, p->ln, S, N, D);
}

void enc_pass_backward(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                       float *G, vit_scratch *sc, const float *dpooled, int S, jepa_model *notify) {
    const int N = p->N, D = d->D, M = S * N;
    JEPA_ASSERT(p->keep && S <= p->maxS);
    /* the mean over tokens: each token gets dpooled / N; the LayerNorm input
     * grad goes to dres, which the block stack then carries back */
    float *dln = sc->dln; /* (M, D) fits: the scratch is sized for the largest stack */
    JEPA_ASSERT((size_t)M <= sc->Mmax);
    float inv = 1.0f / N;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *g = dpooled + (size_t)(i / N) * D;
        float *o = dln + (size_t)i * D;
        for (int c = 0; c < D; c++) o[c] = g[c] * inv;
    }
    memset(p->dres, 0, sizeof(float) * M * D);
    layernorm_backward(p->dres, G + L->norm_w, G + L->norm_b, dln, vit_res(&p->acts, d->depth),
                       W + L->norm_w, p->lnm, p->lnr, M, D);
    if (notify) jepa_grads_ready(notify, L->norm_w);
    vit_stack_backward(notify, &p->acts, sc, W, G, L->blk, S, N, p->dres);
    linear_backward(NULL, G + L->patch_w, G + L->patch_b, p->dres, p->patches, W + L->patch_w, M,
                    d->pdim, D);
    if (notify) jepa_grads_ready(notify, L->patch_w);
}

void enc_features(enc_pass *p, const jepa_dims *d, const enc_layout *L, const float *W,
                  const uint8_t *pixels, int n, float mean, float std, int k, float *feats,
                  float *attn_scratch) {
    const int D = d->D, N = p->N;
    JEPA_ASSERT(k >= 1 && k <= d->depth && (k == 1 || p->keep));
    size_t npix = (size_t)d->ch * p->img * p->img;
    float *img = JEPA_MALLOC(sizeof(float) * npix * p->maxS);
    for (int i0 = 0; i0 < n; i0 += p->maxS) {
        int S = n - i0 < p->maxS ? n - i0 : p->maxS, M = S * N;
        const uint8_t *src = pixels + (size_t)i0 * npix;
        for (size_t q = 0; q < (size_t)S * npix; q++)
            img[q] = ((float)src[q] * (1.0f / 255.0f) - mean) / std;
        enc_pass_forward(p, d, L, W, img, S, attn_scratch);
        for (int j = 0; j < k; j++) {
            int blk = d->depth - k + 1 + j; /* residual index: output of block blk-1 */
            if (k > 1) /* the final LayerNorm applied to that block's output */
                layernorm_forward(p->ln, p->lnm, p->lnr, vit_res(&p->acts, blk), W + L->norm_w,
                                  W + L->norm_b, M, D);
            for (int s = 0; s < S; s++) {
                float *f = feats + (size_t)(i0 + s) * k * D + (size_t)j * D;
                if (k == 1) {
                    memcpy(f, p->pooled + (size_t)s * D, sizeof(float) * D);
                    continue;
                }
                mean_rows(f, p->ln + (size_t)s * N * D, 1, N, D);
            }
        }
    }
    jepa_free(img);
}

int enc_layout_from_table(const jepa_model *m, enc_layout *L) {
    const jepa_dims *d = &m->dims;
    const jepa_tensor *t;
    char name[48];
    if (d->depth > 64) return -1;
#define FIND(field, nm) if (!(t = jepa_tensor_find(m, nm))) return -1; L->field = t->offset
    FIND(patch_w, "enc.patch.w");
    FIND(patch_b, "enc.patch.b");
    FIND(norm_w, "enc.norm.w");
    FIND(norm_b, "enc.norm.b");
#undef FIND
    static const char *leaf[BLK_N] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                                      "ln2.w", "ln2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};
    for (int l = 0; l < d->depth; l++)
        for (int q = 0; q < BLK_N; q++) {
            snprintf(name, sizeof name, "enc.%d.%s", l, leaf[q]);
            if (!(t = jepa_tensor_find(m, name))) return -1;
            L->blk[(size_t)l * BLK_N + q] = t->offset;
        }
    return 0;
}
