/* augment.c - random resized crop, flip, brightness/contrast jitter (see
 * augment.h for the torchvision semantics and the draw order). */
#include "augment.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 3, 4))) static int cfg_fail(char *err, size_t errlen,
                                                           const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        int k = snprintf(err, errlen, "aug: ");
        if (k > 0 && (size_t)k < errlen) vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int aug_cfg_check(const aug_cfg *c, char *err, size_t errlen) {
    /* written as !(ok) so NaN fails every check */
    if (!(isfinite(c->scale_max) && c->scale_max > 0.0))
        return cfg_fail(err, errlen, "scale_max %g must be > 0", c->scale_max);
    if (!(c->scale_min > 0.0 && c->scale_min <= c->scale_max))
        return cfg_fail(err, errlen, "scale_min %g must be in (0, scale_max]", c->scale_min);
    if (!(isfinite(c->ratio_max) && c->ratio_max > 0.0))
        return cfg_fail(err, errlen, "ratio_max %g must be > 0", c->ratio_max);
    if (!(c->ratio_min > 0.0 && c->ratio_min <= c->ratio_max))
        return cfg_fail(err, errlen, "ratio_min %g must be in (0, ratio_max]", c->ratio_min);
    if (!(c->flip_p >= 0.0 && c->flip_p <= 1.0))
        return cfg_fail(err, errlen, "flip_p %g must be in [0, 1]", c->flip_p);
    if (!(isfinite(c->brightness) && c->brightness >= 0.0))
        return cfg_fail(err, errlen, "brightness %g must be >= 0", c->brightness);
    if (!(isfinite(c->contrast) && c->contrast >= 0.0))
        return cfg_fail(err, errlen, "contrast %g must be >= 0", c->contrast);
    return 0;
}

static double uniform_in(jepa_rng *r, double lo, double hi) {
    return lo + (hi - lo) * rng_uniform(r);
}

void aug_crop_box(aug_box *b, int H, int W, const aug_cfg *c, jepa_rng *r) {
    JEPA_ASSERT(H >= 1 && W >= 1);
    const double area = (double)H * W, lr0 = log(c->ratio_min), lr1 = log(c->ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform_in(r, c->scale_min, c->scale_max);
        double ratio = exp(uniform_in(r, lr0, lr1));
        double w = nearbyint(sqrt(target * ratio)), h = nearbyint(sqrt(target / ratio));
        if (w >= 1 && w <= W && h >= 1 && h <= H) {
            b->h = (int)h;
            b->w = (int)w;
            b->top = (int)rng_below(r, (uint32_t)(H - b->h + 1));
            b->left = (int)rng_below(r, (uint32_t)(W - b->w + 1));
            return;
        }
    }
    double in_ratio = (double)W / H; /* torchvision's fallback: a centred crop */
    if (in_ratio < c->ratio_min) {
        b->w = W;
        b->h = (int)nearbyint(W / c->ratio_min);
    } else if (in_ratio > c->ratio_max) {
        b->h = H;
        b->w = (int)nearbyint(H * c->ratio_max);
    } else {
        b->w = W;
        b->h = H;
    }
    if (b->h < 1) b->h = 1;
    if (b->w < 1) b->w = 1;
    b->top = (H - b->h) / 2;
    b->left = (W - b->w) / 2;
}

/* Source index pair and weight for output index o of n over a crop of len:
 * half-pixel centres, clamped to [0, len-1]. */
static void bilinear_tap(int o, int n, int len, int *i0, int *i1, float *f) {
    double s = (o + 0.5) * len / n - 0.5;
    if (s < 0.0) s = 0.0;
    int i = (int)s;
    if (i >= len - 1) {
        *i0 = *i1 = len - 1;
        *f = 0.0f;
        return;
    }
    *i0 = i;
    *i1 = i + 1;
    *f = (float)(s - i);
}

void aug_resample(float *out, int S, const uint8_t *img, int C, int H, int W, const aug_box *b,
                  int flip) {
    JEPA_ASSERT(b->top >= 0 && b->left >= 0 && b->h >= 1 && b->w >= 1);
    JEPA_ASSERT(b->top + b->h <= H && b->left + b->w <= W);
    for (int ch = 0; ch < C; ch++) {
        const uint8_t *p = img + (size_t)ch * H * W;
        for (int oy = 0; oy < S; oy++) {
            int y0, y1;
            float fy;
            bilinear_tap(oy, S, b->h, &y0, &y1, &fy);
            const uint8_t *r0 = p + (size_t)(b->top + y0) * W + b->left;
            const uint8_t *r1 = p + (size_t)(b->top + y1) * W + b->left;
            float *o = out + ((size_t)ch * S + oy) * S;
            for (int ox = 0; ox < S; ox++) {
                int x0, x1;
                float fx;
                bilinear_tap(ox, S, b->w, &x0, &x1, &fx);
                float top = r0[x0] * (1.0f - fx) + r0[x1] * fx;
                float bot = r1[x0] * (1.0f - fx) + r1[x1] * fx;
                o[flip ? S - 1 - ox : ox] = (top * (1.0f - fy) + bot * fy) / 255.0f;
            }
        }
    }
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* Mean grey level of a (C, S, S) view in [0, 1]. */
static float view_grey_mean(const float *v, int C, int S) {
    size_t n = (size_t)S * S;
    static const double rgb[3] = {0.299, 0.587, 0.114};
    double sum = 0.0;
    for (int ch = 0; ch < C; ch++) {
        double cs = 0.0;
        for (size_t i = 0; i < n; i++) cs += v[(size_t)ch * n + i];
        sum += (C == 3 ? rgb[ch] : 1.0 / C) * cs;
    }
    return (float)(sum / n);
}

void aug_view(float *out, int S, const uint8_t *img, int C, int H, int W, const aug_cfg *c,
              float mean, float std, jepa_rng *r) {
    JEPA_ASSERT(S >= 1 && C >= 1 && std > 0.0f);
    aug_box b;
    aug_crop_box(&b, H, W, c, r);
    int flip = rng_uniform(r) < c->flip_p;
    double ub = rng_uniform(r), uc = rng_uniform(r);
    aug_resample(out, S, img, C, H, W, &b, flip);
    size_t n = (size_t)C * S * S;
    if (c->brightness > 0.0) {
        float f = (float)(fmax(0.0, 1.0 - c->brightness) +
                          ub * (1.0 + c->brightness - fmax(0.0, 1.0 - c->brightness)));
        for (size_t i = 0; i < n; i++) out[i] = clamp01(out[i] * f);
    }
    if (c->contrast > 0.0) {
        float f = (float)(fmax(0.0, 1.0 - c->contrast) +
                          uc * (1.0 + c->contrast - fmax(0.0, 1.0 - c->contrast)));
        float m = view_grey_mean(out, C, S);
        for (size_t i = 0; i < n; i++) out[i] = clamp01(f * out[i] + (1.0f - f) * m);
    }
    for (size_t i = 0; i < n; i++) out[i] = (out[i] - mean) / std;
}
