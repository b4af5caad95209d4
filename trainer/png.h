/* png.h - pictures without a new dependency: an RGB canvas with
 * anti-aliased lines, discs and rings, written as PNG (8-bit RGB, one IDAT,
 * filter 0 on every row) through zlib, which the trainer links already.
 * Writes are atomic (temp file, rename): a failed write leaves no file. */
#ifndef JEPA_PNG_H
#define JEPA_PNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* (h, w, 3) row-major */
} png_canvas;

void png_canvas_init(png_canvas *c, int w, int h); /* black */
void png_canvas_free(png_canvas *c);
/* Coordinates are in pixels, (0, 0) the top-left corner of the top-left
 * pixel; colours are 0xRRGGBB, alpha in [0, 1]. Coverage is the distance
 * from each pixel centre to the shape, smoothed over one pixel. */
void png_canvas_line(png_canvas *c, double x0, double y0, double x1, double y1, double width,
                     uint32_t color, double alpha);
void png_canvas_disc(png_canvas *c, double cx, double cy, double r, uint32_t color, double alpha);
void png_canvas_ring(png_canvas *c, double cx, double cy, double r, double width, uint32_t color,
                     double alpha);

/* Writes w x h RGB pixels (h, w, 3) as a PNG file. 0 or -1 + one line in
 * err naming the file. */
int png_write_rgb(const char *path, int w, int h, const uint8_t *rgb, char *err, size_t errlen);

#endif
