/* fuzz_npy.c - libFuzzer target for the .npy parser (trainer/npy.c). Under
 * ASan/UBSan any out-of-bounds read is a crash; so is a broken promise
 * (abort()): an accepted input's data must be exactly count * itemsize
 * bytes ending at the input's end, every byte of it readable, and the
 * header our writer makes for the same dtype and shape must parse back to
 * the same array (writer and reader agree on every shape the reader takes).
 * Seed corpus: JEPA_FUZZ_NPY_SEED=DIR fuzz-npy writes a few valid files
 * (2-d f32, 1-d u8, 0-d, empty) into DIR and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("JEPA_FUZZ_NPY_SEED");
    if (!dir) return 0;
    float f[12] = {1, -2, 3.5f, 0, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t u[5] = {0, 1, 2, 254, 255};
    int64_t s0[2] = {0, 3};
    char p[4096], err[256];
    int rc = 0;
    snprintf(p, sizeof p, "%s/f32.npy", dir);
    rc |= npy_write_f32(p, f, 3, 4, err, sizeof err);
    snprintf(p, sizeof p, "%s/u8.npy", dir);
    rc |= npy_write_u8(p, u, 5, err, sizeof err);
    snprintf(p, sizeof p, "%s/scalar.npy", dir);
    rc |= npy_write(p, NPY_DTYPE_F32, f, 0, NULL, err, sizeof err);
    snprintf(p, sizeof p, "%s/empty.npy", dir);
    rc |= npy_write(p, NPY_DTYPE_F32, NULL, 2, s0, err, sizeof err);
    if (rc) fprintf(stderr, "fuzz-npy: %s\n", err);
    exit(rc ? 1 : 0);
}

volatile unsigned fuzz_npy_sink; /* keeps the reads of every data byte */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    npy_array a, b;
    size_t off = 0;
    if (npy_parse(data, size, &a, &off, NULL, 0) != 0) return 0;
    size_t isz = a.dtype == NPY_DTYPE_F32 ? 4 : 1;
    if (a.ndim < 0 || a.ndim > NPY_MAX_DIMS || off + a.count * isz != size) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < a.count * isz; i++) sum += ((const uint8_t *)a.data)[i];
    char hdr[512];
    int hl = npy_header(hdr, sizeof hdr, a.dtype, a.ndim, a.shape);
    if (hl < 0) abort(); /* the reader took a shape the writer refuses */
    uint8_t *img = malloc((size_t)hl + a.count * isz + 1);
    if (!img) return 0;
    memcpy(img, hdr, (size_t)hl);
    memcpy(img + hl, a.data, a.count * isz);
    if (npy_parse(img, (size_t)hl + a.count * isz, &b, NULL, NULL, 0) != 0) abort();
    if (b.dtype != a.dtype || b.ndim != a.ndim || b.count != a.count ||
        memcmp(b.shape, a.shape, sizeof a.shape) != 0)
        abort();
    free(img);
    fuzz_npy_sink = sum;
    return 0;
}
