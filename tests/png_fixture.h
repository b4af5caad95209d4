/* png_fixture.h - PNG files for the tests, written by libpng (no Python or
 * PIL on a fresh machine): any colour type and bit depth, interlaced or not,
 * from interleaved samples, so a test knows every pixel it packs. */
#ifndef JEPA_PNG_FIXTURE_H
#define JEPA_PNG_FIXTURE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t width, height;
    int color_type;  /* PNG_COLOR_TYPE_GRAY, _RGB, _PALETTE, _GRAY_ALPHA, _RGB_ALPHA */
    int bit_depth;   /* 1, 2, 4, 8 or 16 as the type allows */
    int interlace;   /* 0 or 1 (Adam7) */
    const uint16_t *samples; /* (H, W, channels of the type) sample values, row-major */
    const uint8_t *palette;  /* (npalette, 3) RGB for _PALETTE; samples are indices */
    int npalette;
    const uint8_t *trns;     /* palette alpha (ntrns), or NULL */
    int ntrns;
} png_fixture;

/* Channels of a colour type's samples (1 to 4). */
int png_fixture_channels(int color_type);
/* Writes f to path (0) or returns -1 with a line on stderr. */
int png_fixture_write(const char *path, const png_fixture *f);
/* The same PNG into memory: malloc'd bytes and *len, or NULL. */
uint8_t *png_fixture_bytes(const png_fixture *f, size_t *len);
#endif
