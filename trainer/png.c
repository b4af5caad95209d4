/* png.c - see png.h. PNG layout (ISO/IEC 15948): the 8-byte signature,
 * then chunks of (length u32 BE, type, data, CRC-32 of type and data):
 * IHDR (width, height, depth 8, colour type 2 = RGB, 0, 0, 0), IDAT (zlib
 * stream of the rows, each prefixed by its filter byte 0), IEND. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "jepa.h"
#include "png.h"

void png_canvas_init(png_canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->rgb = JEPA_MALLOC((size_t)w * h * 3);
}

void png_canvas_free(png_canvas *c) {
    jepa_free(c->rgb);
    c->rgb = NULL;
}

static void blend(png_canvas *c, int x, int y, uint32_t color, double a) {
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

void png_canvas_line(png_canvas *c, double x0, double y0, double x1, double y1, double width,
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

void png_canvas_disc(png_canvas *c, double cx, double cy, double r, uint32_t color, double alpha) {
    for (int i = (int)floor(cy - r - 1); i <= (int)ceil(cy + r + 1); i++)
        for (int j = (int)floor(cx - r - 1); j <= (int)ceil(cx + r + 1); j++) {
            double d = hypot(j + 0.5 - cx, i + 0.5 - cy);
            blend(c, j, i, color, alpha * fmin(fmax(r + 0.5 - d, 0), 1));
        }
}

void png_canvas_ring(png_canvas *c, double cx, double cy, double r, double width, uint32_t color,
                     double alpha) {
    double m = r + width / 2 + 1;
    for (int i = (int)floor(cy - m); i <= (int)ceil(cy + m); i++)
        for (int j = (int)floor(cx - m); j <= (int)ceil(cx + m); j++) {
            double d = fabs(hypot(j + 0.5 - cx, i + 0.5 - cy) - r);
            blend(c, j, i, color, alpha * fmin(fmax(width / 2 + 0.5 - d, 0), 1));
        }
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One chunk: length, type, data, CRC-32 over type and data. */
static int put_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t hdr[8], crc[4];
    put_u32(hdr, n);
    memcpy(hdr + 4, type, 4);
    uLong c = crc32(0L, hdr + 4, 4);
    if (n) c = crc32(c, data, n);
    put_u32(crc, (uint32_t)c);
    return fwrite(hdr, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) &&
                   fwrite(crc, 1, 4, f) == 4
               ? 0
               : -1;
}

int png_write_rgb(const char *path, int w, int h, const uint8_t *rgb, char *err, size_t errlen) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    errno = 0;
    size_t row = (size_t)w * 3 + 1, raw_n = row * h;
    uLongf zn = compressBound((uLong)raw_n);
    uint8_t *raw = JEPA_MALLOC(raw_n), *z = JEPA_MALLOC(zn), ihdr[13] = {0};
    for (int i = 0; i < h; i++) memcpy(raw + i * row + 1, rgb + (size_t)i * w * 3, row - 1);
    int rc = compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK ? 0 : -1;
    put_u32(ihdr, (uint32_t)w);
    put_u32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8; /* bits per sample */
    ihdr[9] = 2; /* RGB */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = rc == 0 ? fopen(tmp, "wb") : NULL;
    if (f) {
        rc = fwrite(sig, 1, 8, f) == 8 ? 0 : -1;
        if (rc == 0) rc = put_chunk(f, "IHDR", ihdr, 13);
        if (rc == 0) rc = put_chunk(f, "IDAT", z, (uint32_t)zn);
        if (rc == 0) rc = put_chunk(f, "IEND", NULL, 0);
        if (fclose(f) != 0) rc = -1;
        if (rc == 0 && rename(tmp, path) != 0) rc = -1;
        if (rc) remove(tmp);
    } else {
        rc = -1;
    }
    if (rc) snprintf(err, errlen, "cannot write %s: %s", path, errno ? strerror(errno) : "compression failed");
    jepa_free(raw);
    jepa_free(z);
    return rc;
}
