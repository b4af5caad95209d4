/* picture.h - pictures of plans: an RGB canvas with anti-aliased lines,
 * discs and rings, written as an 8-bit RGB PNG by libpng. Writes are atomic
 * (temp file, rename): a failed write leaves no file. */
#ifndef JEPA_PICTURE_H
#define JEPA_PICTURE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* (h, w, 3) row-major */
} pic_canvas;

void pic_canvas_init(pic_canvas *c, int w, int h); /* black */
void pic_canvas_free(pic_canvas *c);
/* Coordinates are in pixels, (0, 0) the top-left corner of the top-left
 * pixel; colours are 0xRRGGBB, alpha in [0, 1]. Coverage is the distance
 * from each pixel centre to the shape, smoothed over one pixel. */
void pic_canvas_line(pic_canvas *c, double x0, double y0, double x1, double y1, double width,
                     uint32_t color, double alpha);
void pic_canvas_disc(pic_canvas *c, double cx, double cy, double r, uint32_t color, double alpha);
void pic_canvas_ring(pic_canvas *c, double cx, double cy, double r, double width, uint32_t color,
                     double alpha);

/* Writes w x h RGB pixels (h, w, 3) as a PNG file, atomically and durably
 * (path.tmp, then shard_tmp_commit). 0 or -1 + one line in err naming the
 * file. */
int pic_write_png(const char *path, int w, int h, const uint8_t *rgb, char *err, size_t errlen);

#endif
