/* mask.c - I-JEPA multi-block masking on a GxG patch grid.
 * Per batch: one target block size (scale, aspect) and one context block size
 * are drawn, so every image has the same number of target tokens per block.
 * Per image: npred target blocks at random positions, one context block with
 * every target token removed (retried until min_keep tokens survive). The
 * context is then cut to the batch's smallest count by a random subset, so
 * the whole batch runs as one dense tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"

static void block_size(jepa_rng *r, int G, double smin, double smax, double amin, double amax,
                       int *h, int *w) {
    double s = smin + (smax - smin) * rng_uniform(r);
    double a = amin + (amax - amin) * rng_uniform(r);
    double keep = G * G * s;
    int hh = (int)lround(sqrt(keep * a)), ww = (int)lround(sqrt(keep / a));
    /* a block never covers the whole grid side, as in I-JEPA */
    *h = hh < 1 ? 1 : (hh > G - 1 ? (G > 1 ? G - 1 : 1) : hh);
    *w = ww < 1 ? 1 : (ww > G - 1 ? (G > 1 ? G - 1 : 1) : ww);
}

int mask_max_tokens(const mask_cfg *c, int G) {
    double keep = G * G * c->tscale_max;
    int h = (int)lround(sqrt(keep * c->aspect_max)), w = (int)lround(sqrt(keep / c->aspect_min));
    int cap = G > 1 ? G - 1 : 1;
    h = h < 1 ? 1 : (h > cap ? cap : h);
    w = w < 1 ? 1 : (w > cap ? cap : w);
    /* rounding can make h*w exceed the (h_max, w_max) pair for mid aspects */
    int hw = (h + 1) * (w + 1);
    return hw < G * G ? hw : G * G;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void mask_sample(jepa_masks *mk, const mask_cfg *c, int G, int B, jepa_rng *r) {
    const int N = G * G;
    int th, tw, ch, cw;
    block_size(r, G, c->tscale_min, c->tscale_max, c->aspect_min, c->aspect_max, &th, &tw);
    block_size(r, G, c->cscale_min, c->cscale_max, 1.0, 1.0, &ch, &cw);
    /* a context "block" of scale 1.0 would be clipped to G-1: let it cover the grid */
    if (c->cscale_max >= 1.0 && ch == G - 1 && cw == G - 1 && G * G * c->cscale_min > ch * cw)
        ch = cw = G;
    mk->B = B;
    mk->npred = c->npred;
    mk->ntgt = th * tw;
    int minctx = N;
    unsigned char occ[4096];
    JEPA_ASSERT(N <= 4096);
    for (int b = 0; b < B; b++) {
        int *row = mk->ctx + (size_t)b * N, n = 0;
        for (int attempt = 0; attempt < 20; attempt++) {
            memset(occ, 0, (size_t)N);
            for (int j = 0; j < c->npred; j++) {
                int top = (int)rng_below(r, (uint32_t)(G - th + 1));
                int left = (int)rng_below(r, (uint32_t)(G - tw + 1));
                int *t = mk->tgt + ((size_t)j * B + b) * mk->ntgt, k = 0;
                for (int y = top; y < top + th; y++)
                    for (int x = left; x < left + tw; x++) {
                        t[k++] = y * G + x;
                        occ[y * G + x] = 1;
                    }
            }
            int top = (int)rng_below(r, (uint32_t)(G - ch + 1));
            int left = (int)rng_below(r, (uint32_t)(G - cw + 1));
            n = 0;
            for (int y = top; y < top + ch; y++)
                for (int x = left; x < left + cw; x++)
                    if (!occ[y * G + x]) row[n++] = y * G + x;
            if (n >= c->min_keep) break;
        }
        if (n < c->min_keep) { /* give up on the block shape: every visible token */
            n = 0;
            for (int t = 0; t < N; t++)
                if (!occ[t]) row[n++] = t;
        }
        if (n == 0) row[n++] = (int)rng_below(r, (uint32_t)N); /* targets cover all */
        mk->count[b] = n;
        minctx = n < minctx ? n : minctx;
    }
    /* cut every context to the batch minimum: random subset, kept sorted */
    for (int b = 0; b < B; b++) {
        int *row = mk->ctx + (size_t)b * N, n = mk->count[b];
        for (int i = 0; i < minctx; i++) { /* partial Fisher-Yates */
            int j = i + (int)rng_below(r, (uint32_t)(n - i));
            int t = row[i]; row[i] = row[j]; row[j] = t;
        }
        qsort(row, (size_t)minctx, sizeof(int), cmp_int);
        memmove(mk->ctx + (size_t)b * minctx, row, sizeof(int) * minctx);
    }
    mk->nctx = minctx;
}

void mask_alloc(jepa_masks *mk, int B, int G, int npred, int max_ntgt) {
    memset(mk, 0, sizeof *mk);
    mk->ctx = JEPA_MALLOC(sizeof(int) * B * G * G);
    mk->tgt = JEPA_MALLOC(sizeof(int) * npred * B * max_ntgt);
    mk->count = JEPA_MALLOC(sizeof(int) * B);
}

void mask_free(jepa_masks *mk) {
    jepa_free(mk->ctx);
    jepa_free(mk->tgt);
    jepa_free(mk->count);
    memset(mk, 0, sizeof *mk);
}

void mask_cfg_from_spec(mask_cfg *c, const jepa_spec *s) {
    c->npred = s->mask.num_targets;
    c->tscale_min = s->mask.target_scale_min;
    c->tscale_max = s->mask.target_scale_max;
    c->aspect_min = s->mask.target_aspect_min;
    c->aspect_max = s->mask.target_aspect_max;
    c->cscale_min = s->mask.context_scale_min;
    c->cscale_max = s->mask.context_scale_max;
    c->min_keep = s->mask.min_keep;
}

void mask_slice(jepa_masks *dst, const jepa_masks *src, int b0, int B) {
    JEPA_ASSERT(b0 >= 0 && b0 + B <= src->B);
    dst->B = B;
    dst->npred = src->npred;
    dst->nctx = src->nctx;
    dst->ntgt = src->ntgt;
    memcpy(dst->ctx, src->ctx + (size_t)b0 * src->nctx, sizeof(int) * B * src->nctx);
    for (int j = 0; j < src->npred; j++)
        memcpy(dst->tgt + (size_t)j * B * src->ntgt,
               src->tgt + ((size_t)j * src->B + b0) * src->ntgt, sizeof(int) * B * src->ntgt);
}
