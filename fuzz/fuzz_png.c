/* fuzz_png.c - libFuzzer target for the packer's PNG path (shard/png.c):
 * any bytes through shard_png_decode, read from memory as pack reads a
 * file. Under ASan/UBSan a stray read or a leak on libpng's longjmp is a
 * crash; so is a broken promise (abort()): what decodes is 1 or 3 channels
 * within the shard limits, every pixel byte readable, and both --channels
 * conversions take it. A refusal must be one line naming the file. Built
 * with -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, under which png.c lets
 * chunk CRCs pass, so the fuzzer reaches the decoder behind them. Seeds:
 * JEPA_FUZZ_PNG_SEED=DIR fuzz-png writes a few small PNGs (every colour
 * type, 16-bit, interlaced, palette with tRNS) into DIR and exits. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "png_fixture.h"
#include "shard_internal.h"

static int write_seeds(const char *dir) {
    static const uint8_t pal[9] = {0, 0, 0, 255, 128, 0, 9, 99, 199}, trns[1] = {7};
    static const struct { int type, depth, interlace; } k[] = {
        {PNG_COLOR_TYPE_GRAY, 8, 0},      {PNG_COLOR_TYPE_RGB, 8, 0},
        {PNG_COLOR_TYPE_PALETTE, 4, 0},   {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16, 1}, {PNG_COLOR_TYPE_GRAY, 1, 1},
    };
    uint16_t s[8 * 6 * 4];
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) s[i] = (uint16_t)(i * 40503u);
    int rc = 0;
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        uint16_t t[8 * 6 * 4];
        int max = k[i].type == PNG_COLOR_TYPE_PALETTE ? 2 : (1 << k[i].depth) - 1;
        for (size_t j = 0; j < sizeof t / sizeof *t; j++) t[j] = (uint16_t)(s[j] % (max + 1));
        png_fixture f = {8, 6, k[i].type, k[i].depth, k[i].interlace, t, pal, 3, trns, 1};
        char p[4096];
        snprintf(p, sizeof p, "%s/seed%zu.png", dir, i);
        rc |= png_fixture_write(p, &f);
    }
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("JEPA_FUZZ_PNG_SEED");
    if (dir) exit(write_seeds(dir) ? 1 : 0);
    return 0;
}

volatile unsigned fuzz_png_sink; /* keeps the reads of every pixel byte */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0; /* fmemopen wants a buffer */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    shard_pic p;
    char err[SHARD_ERR_MAX];
    int rc = shard_png_decode(f, "fuzz.png", &p, err, sizeof err);
    fclose(f);
    if (rc) {
        if (strncmp(err, "fuzz.png: ", 10) || strchr(err, '\n')) abort();
        return 0;
    }
    size_t bytes = (size_t)p.height * p.width * p.channels;
    if ((p.channels != 1 && p.channels != 3) || !p.height || !p.width ||
        p.height > SHARD_MAX_SIDE || p.width > SHARD_MAX_SIDE || bytes > SHARD_MAX_RECORD_BYTES)
        abort();
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; i++) sum += p.pixels[i];
    shard_pic_convert(&p, p.channels == 1 ? 3 : 1);
    shard_pic_convert(&p, p.channels == 1 ? 3 : 1);
    if (p.channels != 1 && p.channels != 3) abort();
    free(p.pixels);
    fuzz_png_sink = sum;
    return 0;
}
