/* mask.c - I-JEPA multi-block masking on a GxG patch grid.
 * Per batch: one target block size (scale, aspect) and one context block size
 * are drawn, so every image has the same number of target tokens per block.
 * Per image: npred target blocks at random positions, one context block with
 * every target token removed (retried until min_keep tokens survive). The
 * whole batch runs as one dense tensor, so every image keeps the same number
 * of context tokens K, a random subset of its visible ones:
 * - batch_min (the official collator's rule): K = the batch's smallest count.
 *   On a 7x7 grid a few images whose targets spread out set K for all: with
 *   nearest block rounding K averages 16.1 tokens, some batches 6.
 * - resample (default): K = the batch's median count; an image below it
 *   redraws its blocks (up to 64 times) until it reaches K, and K falls to
 *   the best it found only if none does: equal counts by construction, near
 *   the typical visible count, without letting the unluckiest image starve
 *   the batch (default masks, batch 128, 500 batches: mean K 27.5 against
 *   21.7, fewest 23 against 13; tests/test_model.c mask_counts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"

#define MASK_REDRAWS 64

static int clamp_side(int v, int G) {
    int cap = G > 1 ? G - 1 : 1; /* a block never covers a whole grid side, as in I-JEPA */
    return v < 1 ? 1 : (v > cap ? cap : v);
}

/* (h, w) for a block of `keep` tokens at aspect a = h/w. nearest rounds both
 * sides (I-JEPA's rule; on a 7x7 grid it turns a 0.15-0.2 scale into 6-12
 * tokens); area rounds h and takes the largest w with h*w <= keep (6-9). */
static void block_hw(double keep, double a, int G, int round_rule, int *h, int *w) {
    int hh = clamp_side((int)lround(sqrt(keep * a)), G);
    int ww = round_rule == MASK_ROUND_NEAREST ? (int)lround(sqrt(keep / a))
                                              : (int)floor(keep / hh + 1e-9);
    *h = hh;
    *w = clamp_side(ww, G);
}

static void block_size(jepa_rng *r, int G, double smin, double smax, double amin, double amax,
                       int round_rule, int *h, int *w) {
    double s = smin + (smax - smin) * rng_uniform(r);
    double a = amin + (amax - amin) * rng_uniform(r);
    block_hw(G * G * s, a, G, round_rule, h, w);
}

int mask_max_tokens(const mask_cfg *c, int G) {
    double keep = G * G * c->tscale_max;
    if (c->block_round == MASK_ROUND_AREA) {
        /* h*w <= keep, except w clamped up to 1, where h*w = h <= G-1 */
        int k = (int)floor(keep + 1e-9), side = G > 1 ? G - 1 : 1;
        k = k > side ? k : side;
        return k < G * G ? k : G * G;
    }
    int h = clamp_side((int)lround(sqrt(keep * c->aspect_max)), G);
    int w = clamp_side((int)lround(sqrt(keep / c->aspect_min)), G);
    /* rounding can make h*w exceed the (h_max, w_max) pair for mid aspects */
    int hw = (h + 1) * (w + 1);
    return hw < G * G ? hw : G * G;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* One image b: target blocks, then a context block minus the targets, into
 * row (unsorted is fine: sorted after the cut). Returns the context count. */
static int draw_image(jepa_masks *mk, const mask_cfg *c, int G, int b, int th, int tw, int ch,
                      int cw, int *row, jepa_rng *r) {
    const int N = G * G;
    unsigned char occ[4096];
    int n = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        memset(occ, 0, (size_t)N);
        for (int j = 0; j < c->npred; j++) {
            int top = (int)rng_below(r, (uint32_t)(G - th + 1));
            int left = (int)rng_below(r, (uint32_t)(G - tw + 1));
            int *t = mk->tgt + ((size_t)j * mk->B + b) * mk->ntgt, k = 0;
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
    return n;
}

/* resample: redraw images below the median count; returns the new K. */
static int raise_floor(jepa_masks *mk, const mask_cfg *c, int G, int th, int tw, int ch, int cw,
                       jepa_rng *r) {
    const int N = G * G, B = mk->B;
    int *sorted = mk->work, keep = N; /* (B), then row (N) and tgt (npred ntgt) */
    memcpy(sorted, mk->count, sizeof(int) * B);
    qsort(sorted, (size_t)B, sizeof(int), cmp_int);
    int K = sorted[B / 2];
    int *row = mk->work + B, *tgt = row + N;
    for (int b = 0; b < B; b++) {
        int *best = mk->ctx + (size_t)b * N;
        for (int k = 0; k < MASK_REDRAWS && mk->count[b] < K; k++) {
            for (int j = 0; j < c->npred; j++) /* keep the best draw's targets */
                memcpy(tgt + (size_t)j * mk->ntgt, mk->tgt + ((size_t)j * B + b) * mk->ntgt,
                       sizeof(int) * mk->ntgt);
            int n = draw_image(mk, c, G, b, th, tw, ch, cw, row, r);
            if (n > mk->count[b]) {
                memcpy(best, row, sizeof(int) * n);
                mk->count[b] = n;
            } else {
                for (int j = 0; j < c->npred; j++)
                    memcpy(mk->tgt + ((size_t)j * B + b) * mk->ntgt, tgt + (size_t)j * mk->ntgt,
                           sizeof(int) * mk->ntgt);
            }
        }
        keep = mk->count[b] < keep ? mk->count[b] : keep;
    }
    return keep < K ? keep : K;
}

void mask_sample(jepa_masks *mk, const mask_cfg *c, int G, int B, jepa_rng *r) {
    const int N = G * G;
    int th, tw, ch, cw;
    block_size(r, G, c->tscale_min, c->tscale_max, c->aspect_min, c->aspect_max, c->block_round,
               &th, &tw);
    block_size(r, G, c->cscale_min, c->cscale_max, 1.0, 1.0, MASK_ROUND_NEAREST, &ch, &cw);
    /* a context "block" of scale 1.0 would be clipped to G-1: let it cover the grid */
    if (c->cscale_max >= 1.0 && ch == G - 1 && cw == G - 1 && G * G * c->cscale_min > ch * cw)
        ch = cw = G;
    JEPA_ASSERT(N <= 4096);
    mk->B = B;
    mk->npred = c->npred;
    mk->ntgt = th * tw;
    int K = N;
    for (int b = 0; b < B; b++) {
        mk->count[b] = draw_image(mk, c, G, b, th, tw, ch, cw, mk->ctx + (size_t)b * N, r);
        K = mk->count[b] < K ? mk->count[b] : K;
    }
    if (c->context_cut == MASK_CUT_RESAMPLE) K = raise_floor(mk, c, G, th, tw, ch, cw, r);
    /* cut every context to K: random subset, kept sorted */
    for (int b = 0; b < B; b++) {
        int *row = mk->ctx + (size_t)b * N, n = mk->count[b];
        for (int i = 0; i < K; i++) { /* partial Fisher-Yates */
            int j = i + (int)rng_below(r, (uint32_t)(n - i));
            int t = row[i]; row[i] = row[j]; row[j] = t;
        }
        qsort(row, (size_t)K, sizeof(int), cmp_int);
        memmove(mk->ctx + (size_t)b * K, row, sizeof(int) * K);
    }
    mk->nctx = K;
}

void mask_alloc(jepa_masks *mk, int B, int G, int npred, int max_ntgt) {
    memset(mk, 0, sizeof *mk);
    mk->ctx = JEPA_MALLOC(sizeof(int) * B * G * G);
    mk->tgt = JEPA_MALLOC(sizeof(int) * npred * B * max_ntgt);
    mk->count = JEPA_MALLOC(sizeof(int) * B);
    mk->work = JEPA_MALLOC(sizeof(int) * ((size_t)B + (size_t)G * G + (size_t)npred * max_ntgt));
}

void mask_free(jepa_masks *mk) {
    jepa_free(mk->ctx);
    jepa_free(mk->tgt);
    jepa_free(mk->count);
    jepa_free(mk->work);
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
    c->context_cut = strcmp(s->mask.context_cut, "batch_min") ? MASK_CUT_RESAMPLE : MASK_CUT_BATCH_MIN;
    c->block_round = strcmp(s->mask.block_round, "nearest") ? MASK_ROUND_AREA : MASK_ROUND_NEAREST;
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
