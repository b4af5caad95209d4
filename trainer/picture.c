/* picture.c - see picture.h. The canvas is ours (a few anti-aliased
 * shapes); the PNG file is libpng's (its simplified write API). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "jepa.h"
#include "picture.h"
#include "shard.h"

void pic_canvas_init(pic_canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->rgb = JEPA_MALLOC((size_t)w * h * 3);
}

void pic_canvas_free(pic_canvas *c) {
    jepa_free(c->rgb);
    c->rgb = NULL;
}

static void blend(pic_canvas *c, int x, int y, uint32_t color, double a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0) return;
    if (a > 1) a = 1;
    uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    for (int k = 0; k < 3; k++) {
        double v = (color >> (16 - 8 * k)) & 0xff;
        p[k] = (uint8_t)floor(p[k] * (1 - a) + v * a + 0.5);
    }
}

/* Distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static double seg_dist(double px, double py, double x0, double y0, double x1, double y1) {
    double dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy, t = 0;
    if (l2 > 0) t = fmin(fmax(((px - x0) * dx + (py - y0) * dy) / l2, 0), 1);
    return hypot(px - x0 - t * dx, py - y0 - t * dy);
}

void pic_canvas_line(pic_canvas *c, double x0, double y0, double x1, double y1, double width,
                     uint32_t color, double alpha) {
    double m = width / 2 + 1;
    int i0 = (int)floor(fmin(y0, y1) - m), i1 = (int)ceil(fmax(y0, y1) + m);
    int j0 = (int)floor(fmin(x0, x1) - m), j1 = (int)ceil(fmax(x0, x1) + m);
    for (int i = i0 < 0 ? 0 : i0; i <= i1 && i < c->h; i++)
        for (int j = j0 < 0 ? 0 : j0; j <= j1 && j < c->w; j++) {
            double d = seg_dist(j + 0.5, i + 0.5, x0, y0, x1, y1);
            blend(c, j, i, color, alpha * fmin(fmax(width / 2 + 0.5 - d, 0), 1));
        }
}

void pic_canvas_disc(pic_canvas *c, double cx, double cy, double r, uint32_t color, double alpha) {
    for (int i = (int)floor(cy - r - 1); i <= (int)ceil(cy + r + 1); i++)
        for (int j = (int)floor(cx - r - 1); j <= (int)ceil(cx + r + 1); j++) {
            double d = hypot(j + 0.5 - cx, i + 0.5 - cy);
            blend(c, j, i, color, alpha * fmin(fmax(r + 0.5 - d, 0), 1));
        }
}

void pic_canvas_ring(pic_canvas *c, double cx, double cy, double r, double width, uint32_t color,
                     double alpha) {
    double m = r + width / 2 + 1;
    for (int i = (int)floor(cy - m); i <= (int)ceil(cy + m); i++)
        for (int j = (int)floor(cx - m); j <= (int)ceil(cx + m); j++) {
            double d = fabs(hypot(j + 0.5 - cx, i + 0.5 - cy) - r);
            blend(c, j, i, color, alpha * fmin(fmax(width / 2 + 0.5 - d, 0), 1));
        }
}

int pic_write_png(const char *path, int w, int h, const uint8_t *rgb, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGB;
    errno = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f || png_image_write_to_stdio(&im, f, 0, rgb, w * 3, NULL))
        return shard_tmp_commit(f, f != NULL, tmp, path, err, errlen);
    int saved = errno; /* libpng failed: its message, where errno says nothing */
    shard_tmp_commit(f, 0, tmp, path, err, errlen);
    if (!saved) snprintf(err, errlen, "cannot write %s: %s", path, im.message[0] ? im.message : "libpng failed");
    png_image_free(&im);
    return -1;
}
