/* png_mk.c - test-only tool: writes a PNG (by libpng, png_fixture.c) for
 * the e2e tests, which have no Python or PIL to make one, and the bytes
 * jepa-shard must store for it: (C, H, W) planar, 16-bit samples as
 * round(v * 255 / 65535), palette entries as their colour, alpha dropped.
 *   png-mk OUT.png grey|rgb|rgba|grey16|palette WIDTH HEIGHT SEED [RAW_OUT]
 * exit 0, or 2 with one line. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "png_fixture.h"

static int type_of(const char *k, int *depth) {
    *depth = !strcmp(k, "grey16") ? 16 : 8;
    return !strcmp(k, "grey") || !strcmp(k, "grey16") ? PNG_COLOR_TYPE_GRAY
           : !strcmp(k, "rgb")                        ? PNG_COLOR_TYPE_RGB
           : !strcmp(k, "rgba")                       ? PNG_COLOR_TYPE_RGB_ALPHA
           : !strcmp(k, "palette")                    ? PNG_COLOR_TYPE_PALETTE
                                                      : -1;
}

int main(int argc, char **argv) {
    int depth, type = argc >= 6 ? type_of(argv[2], &depth) : -1;
    long w = argc >= 6 ? atol(argv[3]) : 0, h = argc >= 6 ? atol(argv[4]) : 0;
    if (argc < 6 || argc > 7 || type < 0 || w < 1 || h < 1 || w * h > (1L << 24)) {
        fprintf(stderr, "usage: png-mk OUT.png grey|rgb|rgba|grey16|palette W H SEED [RAW_OUT]\n");
        return 2;
    }
    unsigned seed = (unsigned)atol(argv[5]), max = depth == 16 ? 65535 : type == PNG_COLOR_TYPE_PALETTE ? 5 : 255;
    static const uint8_t pal[6 * 3] = {0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 90, 91, 92};
    int c = png_fixture_channels(type), oc = type == PNG_COLOR_TYPE_GRAY ? 1 : 3;
    size_t plane = (size_t)w * h;
    uint16_t *s = malloc(plane * c * sizeof *s);
    uint8_t *raw = malloc(plane * oc);
    for (size_t i = 0; i < plane * c; i++) s[i] = (uint16_t)((i * 2654435761u + seed * 40503u) % (max + 1));
    for (size_t p = 0; p < plane; p++)
        for (int ch = 0; ch < oc; ch++) {
            unsigned v = s[p * c + (type == PNG_COLOR_TYPE_PALETTE ? 0 : ch)];
            raw[ch * plane + p] = (uint8_t)(type == PNG_COLOR_TYPE_PALETTE ? pal[3 * v + ch]
                                            : depth == 16 ? lround(v * 255.0 / 65535.0) : v);
        }
    png_fixture f = {(uint32_t)w, (uint32_t)h, type, depth, 0, s, pal, 6, NULL, 0};
    int rc = png_fixture_write(argv[1], &f) ? 2 : 0;
    if (!rc && argc == 7) {
        FILE *o = fopen(argv[6], "wb");
        if (!o || fwrite(raw, 1, plane * oc, o) != plane * oc || fclose(o) != 0) {
            fprintf(stderr, "png-mk: cannot write %s\n", argv[6]);
            rc = 2;
        }
    }
    free(s);
    free(raw);
    return rc;
}
