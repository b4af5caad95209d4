/* augment.h - image views for view-based objectives (LeJEPA): random resized
 * crop, horizontal flip and brightness/contrast jitter on one uint8 image,
 * written as a normalised float view. Deterministic: every random choice
 * comes from a jepa_rng the caller seeds per (seed, step, image, view), e.g.
 * rng_init(&r, rng_key(seed, step, (uint64_t)image * V + view)), so views are
 * identical on replay, resume and any world size. Allocation-free.
 *
 * Semantics follow torchvision (what LeJEPA's MINIMAL.md uses), with the
 * differences noted: RandomResizedCrop.get_params exactly (10 attempts, then a
 * centre crop clamped to the ratio range), but the resize is plain bilinear
 * with half-pixel centres (F.interpolate align_corners=False) WITHOUT the
 * antialias filter torchvision v2 applies when shrinking; ColorJitter's
 * brightness then contrast in a fixed order (torchvision permutes the order
 * randomly), no saturation/hue. */
#ifndef JEPA_AUGMENT_H
#define JEPA_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "jepa.h"

typedef struct {
    double scale_min, scale_max; /* crop area / image area, uniform; torchvision (0.08, 1) */
    double ratio_min, ratio_max; /* crop width / height, log-uniform; (3/4, 4/3) */
    double flip_p;               /* probability of a horizontal flip, [0, 1] */
    double brightness;           /* factor uniform in [max(0, 1-b), 1+b]; 0 = off */
    double contrast;             /* factor uniform in [max(0, 1-c), 1+c]; 0 = off */
} aug_cfg;

/* A crop in source pixels: rows [top, top+h), columns [left, left+w). */
typedef struct {
    int top, left, h, w;
} aug_box;

/* 0 if c is usable; else -1 and a one-line message naming the field and its
 * value in err (e.g. "aug: scale_min 0 must be in (0, scale_max]"). Checks
 * 0 < scale_min <= scale_max, 0 < ratio_min <= ratio_max, 0 <= flip_p <= 1,
 * brightness >= 0, contrast >= 0, all finite. aug_view assumes a checked c. */
int aug_cfg_check(const aug_cfg *c, char *err, size_t errlen);

/* torchvision RandomResizedCrop.get_params on an H x W image: up to 10
 * attempts of area = H W U(scale_min, scale_max), ratio = exp(U(log
 * ratio_min, log ratio_max)), w = round(sqrt(area ratio)), h = round(sqrt(area
 * / ratio)) (round half to even, as Python), accepted if 1 <= w <= W and
 * 1 <= h <= H, then top ~ U{0..H-h}, left ~ U{0..W-w}. If all 10 fail: the
 * largest centred crop whose ratio W/H is clamped into [ratio_min, ratio_max].
 * Draws 2 uniforms per attempt and 2 integers on success. */
void aug_crop_box(aug_box *b, int H, int W, const aug_cfg *c, jepa_rng *r);

/* Bilinear resample of the crop b of img (C, H, W) uint8 to out (C, S, S),
 * values in [0, 1] (x / 255), mirrored left-right if flip. Sample points are
 * pixel centres: source y = top + (oy + 0.5) h / S - 0.5, clamped to the crop
 * (likewise x), so a crop of S x S pixels is copied exactly. */
void aug_resample(float *out, int S, const uint8_t *img, int C, int H, int W, const aug_box *b,
                  int flip);

/* One view: out (C, S, S) = (jitter(resample(crop(img))) - mean) / std,
 * computed in float. Draw order from r, fixed whatever c says (so switching
 * flip or jitter on leaves the crop of a key unchanged): the crop
 * (aug_crop_box), one uniform for the flip (flip if u < flip_p), one for
 * brightness, one for contrast. Jitter on [0, 1] values, each step clamped to
 * [0, 1]: brightness v *= f; contrast v = f v + (1 - f) m with m the mean
 * grey level of the view (0.299 R + 0.587 G + 0.114 B for C = 3, the plain
 * mean otherwise). std > 0. */
void aug_view(float *out, int S, const uint8_t *img, int C, int H, int W, const aug_cfg *c,
              float mean, float std, jepa_rng *r);

#endif
