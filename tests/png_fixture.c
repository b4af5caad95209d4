/* png_fixture.c - see png_fixture.h. Written with libpng's low-level API
 * (not the simplified one) so that every colour type, depth, palette and
 * tRNS combination the reader must take can be made. */
#include "png_fixture.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int png_fixture_channels(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* grey, palette */
    }
}

/* Packs row y of the samples at f's depth: bytes libpng writes as they are. */
static void pack_row(const png_fixture *f, uint32_t y, uint8_t *row) {
    int c = png_fixture_channels(f->color_type), d = f->bit_depth;
    size_t n = (size_t)f->width * c;
    const uint16_t *s = f->samples + (size_t)y * n;
    if (d == 16) {
        for (size_t i = 0; i < n; i++) row[2 * i] = (uint8_t)(s[i] >> 8), row[2 * i + 1] = (uint8_t)s[i];
    } else if (d == 8) {
        for (size_t i = 0; i < n; i++) row[i] = (uint8_t)s[i];
    } else { /* 1, 2, 4 bits, most significant first */
        memset(row, 0, (n * d + 7) / 8);
        for (size_t i = 0; i < n; i++)
            row[i * d / 8] |= (uint8_t)(s[i] << (8 - d - (i * d) % 8));
    }
}

static int write_to(FILE *out, const png_fixture *f) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile buf = NULL; /* both changed after setjmp, read after longjmp */
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(buf);
        return -1;
    }
    png_init_io(png, out);
    png_set_IHDR(png, info, f->width, f->height, f->bit_depth, f->color_type,
                 f->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (f->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < f->npalette; i++)
            pal[i] = (png_color){f->palette[3 * i], f->palette[3 * i + 1], f->palette[3 * i + 2]};
        png_set_PLTE(png, info, pal, f->npalette);
        if (f->trns) png_set_tRNS(png, info, f->trns, f->ntrns, NULL);
    }
    png_write_info(png, info);
    size_t rowbytes = ((size_t)f->width * png_fixture_channels(f->color_type) * f->bit_depth + 7) / 8;
    buf = malloc(rowbytes * f->height);
    rows = malloc(f->height * sizeof *rows);
    if (!buf || !rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < f->height; y++) {
        rows[y] = buf + y * rowbytes;
        pack_row(f, y, rows[y]);
    }
    png_write_image(png, rows); /* the passes of Adam7 too */
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    free(buf);
    return 0;
}

int png_fixture_write(const char *path, const png_fixture *f) {
    FILE *out = fopen(path, "wb");
    if (!out) return fprintf(stderr, "png_fixture: cannot create %s\n", path), -1;
    int rc = write_to(out, f);
    if (fclose(out) != 0) rc = -1;
    if (rc) fprintf(stderr, "png_fixture: writing %s failed\n", path);
    return rc;
}

uint8_t *png_fixture_bytes(const png_fixture *f, size_t *len) {
    char *buf = NULL;
    FILE *out = open_memstream(&buf, len);
    if (!out) return NULL;
    int rc = write_to(out, f);
    fclose(out);
    if (rc) free(buf);
    return rc ? NULL : (uint8_t *)buf;
}
