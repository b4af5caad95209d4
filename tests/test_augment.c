/* test_augment.c - views (trainer/augment.h): the identity crop reproduces
 * the normalised image bit for bit; flip is an exact mirror of the same crop;
 * crops stay inside images of many shapes; same key, same view, other keys
 * differ; bilinear resampling of a linear ramp equals the ramp at the
 * (clamped) sample points; crop scales of 10k draws follow the density
 * torchvision's rejection gives (derived below) and aspect ratios stay in
 * range; the
 * centre-crop fallback; jitter is the affine map it claims, and on RGB
 * views its clamps, grey weights and order are augment.h's rule; config
 * errors name the field. Prints a throughput figure (no timing assertion). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment.h"
#include "jepa.h"
#include "testutil.h"

static const aug_cfg RRC = {0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, 0.0, 0.0, 0.0};

static void fill_image(uint8_t *img, size_t n, uint64_t key) {
    jepa_rng r;
    rng_init(&r, key);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)rng_below(&r, 256);
}

static void view(float *out, int S, const uint8_t *img, int C, int H, int W, const aug_cfg *c,
                 uint64_t key) {
    jepa_rng r;
    rng_init(&r, key);
    aug_view(out, S, img, C, H, W, c, 0.3f, 0.7f, &r);
}

static void test_identity(void) {
    enum { C = 3, S = 12 };
    uint8_t img[C * S * S];
    float out[C * S * S];
    fill_image(img, sizeof img, 1);
    aug_cfg c = {1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0};
    int bad = 0;
    for (uint64_t key = 0; key < 5; key++) {
        view(out, S, img, C, S, S, &c, key);
        for (int i = 0; i < C * S * S; i++) bad += out[i] != ((float)img[i] / 255.0f - 0.3f) / 0.7f;
    }
    CU_ASSERT_EQUAL(bad, 0);
    jepa_rng r;
    rng_init(&r, 9);
    aug_box b;
    aug_crop_box(&b, S, S, &c, &r);
    CU_ASSERT(b.top == 0 && b.left == 0 && b.h == S && b.w == S);
}

static void test_flip_mirror(void) {
    enum { C = 2, H = 30, W = 22, S = 16 };
    uint8_t img[C * H * W];
    float a[C * S * S], b[C * S * S];
    fill_image(img, sizeof img, 2);
    aug_cfg c0 = RRC, c1 = RRC;
    c1.flip_p = 1.0;
    int bad = 0, flips = 0, same = 0;
    for (uint64_t key = 0; key < 20; key++) {
        view(a, S, img, C, H, W, &c0, key);
        view(b, S, img, C, H, W, &c1, key);
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    bad += b[(ch * S + y) * S + x] != a[(ch * S + y) * S + S - 1 - x];
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* p = 0.5: each view is one of the two, about half flipped */
    aug_cfg ch = RRC;
    ch.flip_p = 0.5;
    for (uint64_t key = 0; key < 200; key++) {
        view(a, S, img, C, H, W, &c0, key);
        view(b, S, img, C, H, W, &ch, key);
        if (memcmp(a, b, sizeof a) == 0) {
            same++;
        } else {
            float m[C * S * S];
            view(m, S, img, C, H, W, &c1, key);
            flips += memcmp(m, b, sizeof m) == 0;
        }
    }
    printf("\n  flip_p 0.5: %d of 200 flipped", flips);
    CU_ASSERT_EQUAL(same + flips, 200);
    CU_ASSERT(flips > 70 && flips < 130);
}

static void test_crops_inside(void) {
    static const int shapes[][2] = {{28, 28}, {32, 20}, {7, 50}, {1, 1}, {2, 9}, {224, 160}};
    aug_cfg cfgs[3] = {RRC, RRC, RRC};
    cfgs[1].scale_min = 0.3, cfgs[1].ratio_min = 0.2, cfgs[1].ratio_max = 5.0;
    cfgs[2].scale_min = 0.9, cfgs[2].scale_max = 1.0;
    int bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int k = 0; k < 3; k++) {
            jepa_rng r;
            rng_init(&r, rng_key(3, s, (uint64_t)k));
            for (int i = 0; i < 2000; i++) {
                aug_box b;
                int H = shapes[s][0], W = shapes[s][1];
                aug_crop_box(&b, H, W, &cfgs[k], &r);
                bad += b.h < 1 || b.w < 1 || b.top < 0 || b.left < 0 || b.top + b.h > H ||
                       b.left + b.w > W;
            }
        }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_keys(void) {
    enum { C = 1, H = 28, W = 28, S = 20 };
    uint8_t img[C * H * W];
    float a[C * S * S], b[C * S * S];
    fill_image(img, sizeof img, 4);
    aug_cfg c = RRC;
    c.flip_p = 0.5, c.brightness = 0.4, c.contrast = 0.4;
    view(a, S, img, C, H, W, &c, rng_key(1, 2, 3));
    view(b, S, img, C, H, W, &c, rng_key(1, 2, 3));
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    int differ = 0;
    for (uint64_t v = 4; v < 24; v++) {
        view(b, S, img, C, H, W, &c, rng_key(1, 2, v));
        differ += memcmp(a, b, sizeof a) != 0;
    }
    CU_ASSERT_EQUAL(differ, 20);
}

/* img(c, y, x) = 2x + 3y + 10c: bilinear interpolation of a linear function
 * is that function at the sample point, clamped to the crop. */
static void check_ramp(int S, const aug_box *b, int H, int W) {
    enum { C = 2 };
    uint8_t *img = malloc((size_t)C * H * W);
    float *out = malloc((size_t)C * S * S * sizeof *out);
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) img[((size_t)ch * H + y) * W + x] = (uint8_t)(2 * x + 3 * y + 10 * ch);
    aug_resample(out, S, img, C, H, W, b, 0);
    double err = 0.0;
    for (int ch = 0; ch < C; ch++)
        for (int oy = 0; oy < S; oy++)
            for (int ox = 0; ox < S; ox++) {
                double sy = fmin(fmax((oy + 0.5) * b->h / S - 0.5, 0.0), b->h - 1.0);
                double sx = fmin(fmax((ox + 0.5) * b->w / S - 0.5, 0.0), b->w - 1.0);
                double want = (2 * (b->left + sx) + 3 * (b->top + sy) + 10 * ch) / 255.0;
                err = fmax(err, fabs(out[((size_t)ch * S + oy) * S + ox] - want));
            }
    printf("\n  ramp crop %dx%d -> %d: max err %.1e", b->h, b->w, S, err);
    CU_ASSERT(err < 2e-6);
    free(img), free(out);
}

static void test_bilinear_ramp(void) {
    aug_box shrink = {5, 3, 30, 25}, grow = {2, 7, 10, 6}, one = {4, 4, 1, 1};
    check_ramp(16, &shrink, 40, 40);
    check_ramp(40, &grow, 40, 40);
    check_ramp(9, &one, 40, 40);
}

static void test_scale_stats(void) {
    const int H = 224, W = 224, n = 10000;
    jepa_rng r;
    rng_init(&r, 5);
    int bins[3] = {0, 0, 0}, above = 0, out_range = 0;
    double lrmin = 1e9, lrmax = -1e9, lo = log(3.0 / 4.0), hi = log(4.0 / 3.0);
    for (int i = 0; i < n; i++) {
        aug_box b;
        aug_crop_box(&b, H, W, &RRC, &r);
        double f = (double)b.h * b.w / ((double)H * W), lr = log((double)b.w / b.h);
        out_range += f < 0.075 || f > 1.0;
        /* rounding w and h moves the log ratio by at most ~1/side */
        out_range += lr < lo - 0.05 || lr > hi + 0.05;
        lrmin = fmin(lrmin, lr), lrmax = fmax(lrmax, lr);
        /* below 0.75 every ratio in range fits, so the scale is uniform there */
        if (f >= 0.08 && f < 0.74) bins[(int)((f - 0.08) / 0.22)]++;
        above += f >= 0.74;
    }
    /* A rejected attempt draws again, so the kept scales have density
     * proportional to the acceptance probability a(s): 1 for s <= 3/4, and
     * for s > 3/4 the share of the log-ratio range with s r <= 1 and s / r
     * <= 1, i.e. 2 ln(1/s) / ln(16/9). Mass: 0.67 + 2 (1/4 - 3/4 ln(4/3)) /
     * ln(16/9) = 0.789; each bin of width 0.22 expects n 0.22 / 0.789 =
     * 2788 (sd ~ 45); 10 failed attempts in a row have probability ~3e-9. */
    double mass = 0.67 + 2.0 * (0.25 - 0.75 * log(4.0 / 3.0)) / log(16.0 / 9.0);
    double expect = n * 0.22 / mass;
    printf("\n  10k crops: bins %d %d %d (expect %.0f), above 0.74: %d, log ratio [%.3f, %.3f]",
           bins[0], bins[1], bins[2], expect, above, lrmin, lrmax);
    CU_ASSERT_EQUAL(out_range, 0);
    for (int k = 0; k < 3; k++) CU_ASSERT(fabs(bins[k] - expect) < 200);
    /* above 0.74: n (0.01 + 0.119) / 0.789 = 1636, give or take the rounding */
    CU_ASSERT(above > 1400 && above < 1900);
    CU_ASSERT(lrmin < lo + 0.03 && lrmax > hi - 0.03);
}

static void test_fallback(void) {
    aug_cfg c = RRC;
    c.scale_min = 2.0, c.scale_max = 3.0; /* never fits: always the centre crop */
    jepa_rng r;
    rng_init(&r, 6);
    aug_box b;
    aug_crop_box(&b, 40, 20, &c, &r); /* W/H 0.5 < 3/4: full width, h = round(20 / 0.75) */
    CU_ASSERT(b.w == 20 && b.h == 27 && b.top == 6 && b.left == 0);
    aug_crop_box(&b, 10, 30, &c, &r); /* 3 > 4/3: full height, w = round(10 * 4/3) */
    CU_ASSERT(b.h == 10 && b.w == 13 && b.top == 0 && b.left == 8);
    aug_crop_box(&b, 30, 35, &c, &r); /* ratio in range: the whole image */
    CU_ASSERT(b.h == 30 && b.w == 35 && b.top == 0 && b.left == 0);
}

/* brightness: out = f v (unclamped pixels); contrast: out - m = f (v - m). */
static void test_jitter(void) {
    enum { C = 1, H = 28, W = 28, S = 14 };
    uint8_t img[C * H * W];
    float base[C * S * S], jit[C * S * S];
    fill_image(img, sizeof img, 7);
    for (int i = 0; i < C * H * W; i++) img[i] = (uint8_t)(60 + img[i] / 4); /* no clamping */
    for (int which = 0; which < 2; which++) {
        aug_cfg c = RRC;
        if (which == 0) c.brightness = 0.5;
        else c.contrast = 0.5;
        view(base, S, img, C, H, W, &RRC, 77);
        view(jit, S, img, C, H, W, &c, 77);
        double m = 0.0;
        float v[C * S * S], o[C * S * S];
        for (int i = 0; i < C * S * S; i++) {
            v[i] = base[i] * 0.7f + 0.3f; /* undo the normalisation */
            o[i] = jit[i] * 0.7f + 0.3f;
            m += v[i];
        }
        m = which ? m / (C * S * S) : 0.0;
        double f = (o[0] - m) / (v[0] - m), err = 0.0;
        for (int i = 1; i < C * S * S; i++)
            if (fabs(v[i] - m) > 0.05) err = fmax(err, fabs((o[i] - m) / (v[i] - m) - f));
        printf("\n  %s factor %.4f, spread %.1e", which ? "contrast" : "brightness", f, err);
        CU_ASSERT(f >= 0.5 - 1e-6 && f <= 1.5 + 1e-6 && fabs(f - 1.0) > 1e-3);
        CU_ASSERT(err < 1e-4);
    }
}

/* What test_jitter leaves out (one grey channel, no pixel clamped, one
 * jitter at a time), against the rule augment.h states, written out in
 * double: on an RGB view with bright red, mid green and dark blue channels,
 * brightness o = clamp01(f v); contrast o = clamp01(f v + (1 - f) m) with m
 * = 0.299 R + 0.587 G + 0.114 B means (the plain mean is some 0.05 lower
 * here); both on, brightness first, then contrast on its clamped
 * output. The draw order is fixed whatever the config (augment.h), so a
 * key's brightness-only and contrast-only views give its two factors.
 * Keys are taken where both factors exceed 1.2 and pixels clip. */
#define JIT_C 3
#define JIT_S 14
#define JIT_N (JIT_C * JIT_S * JIT_S)
static double grey_mean_ref(const double *v) {
    static const double wrgb[3] = {0.299, 0.587, 0.114};
    double m = 0.0;
    for (int ch = 0; ch < JIT_C; ch++) {
        double s = 0.0;
        for (int i = 0; i < JIT_S * JIT_S; i++) s += v[ch * JIT_S * JIT_S + i];
        m += wrgb[ch] * s / (JIT_S * JIT_S);
    }
    return m;
}

static void jit_view(double *o, const uint8_t *img, int H, int W, double b, double c, uint64_t key) {
    float out[JIT_N];
    aug_cfg cfg = RRC;
    cfg.brightness = b, cfg.contrast = c;
    view(out, JIT_S, img, JIT_C, H, W, &cfg, key);
    for (int i = 0; i < JIT_N; i++) o[i] = out[i] * 0.7 + 0.3; /* undo the normalisation */
}

static void test_jitter_rgb_clamp_order(void) {
    enum { H = 28, W = 28 };
    static uint8_t img[JIT_C * H * W];
    fill_image(img, sizeof img, 9);
    for (int i = 0; i < H * W; i++) {
        img[i] = (uint8_t)(150 + img[i] % 106);                 /* R 150..255 */
        img[H * W + i] = (uint8_t)(60 + img[H * W + i] % 141);   /* G 60..200 */
        img[2 * H * W + i] = (uint8_t)(img[2 * H * W + i] % 101); /* B 0..100 */
    }
    static double v[JIT_N], ob[JIT_N], oc[JIT_N], obc[JIT_N], w[JIT_N];
    int used = 0;
    for (uint64_t key = 100; key < 200 && used < 3; key++) {
        jit_view(v, img, H, W, 0.0, 0.0, key);
        jit_view(ob, img, H, W, 0.5, 0.0, key);
        jit_view(oc, img, H, W, 0.0, 0.5, key);
        jit_view(obc, img, H, W, 0.5, 0.5, key);
        /* each factor from a pixel no factor up to 1.5 clips: brightness from
         * one in [0.2, 0.5], contrast from one 0.05 to 0.2 from m */
        double m = grey_mean_ref(v);
        int d = -1, e = -1;
        for (int i = 0; i < JIT_N; i++) {
            if (v[i] >= 0.2 && v[i] <= 0.5) d = i;
            if (fabs(v[i] - m) >= 0.05 && fabs(v[i] - m) <= 0.2) e = i;
        }
        CU_ASSERT_FATAL(d >= 0 && e >= 0);
        double fb = ob[d] / v[d], fc = (oc[e] - m) / (v[e] - m);
        if (fb < 1.2 || fc < 1.2) continue;
        used++;
        int clip_b = 0, clip_c = 0, clip_bc = 0;
        double eb = 0, ec = 0, ebc = 0;
        for (int i = 0; i < JIT_N; i++) {
            double x = fb * v[i];
            clip_b += x > 1.0;
            w[i] = x > 1.0 ? 1.0 : x;
            eb = fmax(eb, fabs(ob[i] - w[i]));
            double y = fc * v[i] + (1 - fc) * m;
            clip_c += y > 1.0 || y < 0.0;
            ec = fmax(ec, fabs(oc[i] - (y > 1.0 ? 1.0 : y < 0.0 ? 0.0 : y)));
        }
        double m2 = grey_mean_ref(w); /* contrast after brightness: the clamped view's mean */
        for (int i = 0; i < JIT_N; i++) {
            double y = fc * w[i] + (1 - fc) * m2;
            clip_bc += y > 1.0 || y < 0.0;
            ebc = fmax(ebc, fabs(obc[i] - (y > 1.0 ? 1.0 : y < 0.0 ? 0.0 : y)));
        }
        printf("\n  key %llu: brightness %.3f (%d clipped, err %.1e), contrast %.3f (m %.4f, %d "
               "clipped, err %.1e), both (%d clipped, err %.1e)", (unsigned long long)key, fb,
               clip_b, eb, fc, m, clip_c, ec, clip_bc, ebc);
        double plain = 0.0;
        for (int i = 0; i < JIT_N; i++) plain += v[i] / JIT_N;
        CU_ASSERT(m - plain > 0.02); /* the weights are exercised */
        CU_ASSERT(clip_b > 0 && clip_c > 0 && clip_bc > 0); /* and the clamps */
        CU_ASSERT(eb < 1e-5);
        CU_ASSERT(ec < 1e-5);
        CU_ASSERT(ebc < 1e-5);
    }
    CU_ASSERT_EQUAL(used, 3);
}

static void test_cfg_check(void) {
    char err[128];
    CU_ASSERT_EQUAL(aug_cfg_check(&RRC, err, sizeof err), 0);
    aug_cfg c = RRC;
    c.scale_min = 0.0;
    CU_ASSERT_EQUAL(aug_cfg_check(&c, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "aug: scale_min 0 must be in (0, scale_max]");
    c = RRC, c.ratio_min = 2.0;
    CU_ASSERT_EQUAL(aug_cfg_check(&c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ratio_min 2"));
    c = RRC, c.flip_p = NAN;
    CU_ASSERT_EQUAL(aug_cfg_check(&c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "flip_p nan"));
    c = RRC, c.contrast = -0.1;
    CU_ASSERT_EQUAL(aug_cfg_check(&c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "contrast -0.1"));
    c = RRC, c.scale_max = INFINITY;
    CU_ASSERT_EQUAL(aug_cfg_check(&c, NULL, 0), -1);
}

static void test_throughput(void) {
    enum { C = 3, H = 96, W = 96, S = 64, V = 2000 };
    uint8_t *img = malloc(C * H * W);
    float *out = malloc(sizeof(float) * C * S * S);
    fill_image(img, C * H * W, 8);
    aug_cfg c = RRC;
    c.flip_p = 0.5, c.brightness = 0.4, c.contrast = 0.4;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double sink = 0.0;
    for (int v = 0; v < V; v++) {
        view(out, S, img, C, H, W, &c, (uint64_t)v);
        sink += out[v % (C * S * S)];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("\n  throughput: %.0f views/s (%dx%dx%d -> %dx%d, jitter on, one thread)", V / s, C,
           H, W, S, S);
    CU_ASSERT(isfinite(sink));
    free(img), free(out);
}

int main(void) {
    static const test_case cases[] = {
        {"identity", test_identity},         {"flip_mirror", test_flip_mirror},
        {"crops_inside", test_crops_inside}, {"keys", test_keys},
        {"bilinear_ramp", test_bilinear_ramp}, {"scale_stats", test_scale_stats},
        {"fallback", test_fallback},         {"jitter", test_jitter},
        {"jitter_rgb_clamp_order", test_jitter_rgb_clamp_order},
        {"cfg_check", test_cfg_check},       {"throughput", test_throughput},
    };
    return test_main("augment", cases, (int)(sizeof cases / sizeof cases[0]));
}
