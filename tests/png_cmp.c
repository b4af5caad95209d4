/* png_cmp.c - test-only tool: does an 8-bit grey PNG hold the same pixels as
 * a binary PGM (P5, maxval 255)? The PNG is decoded by libpng's simplified
 * API, independently of jepa-world's row writer, and compared byte for byte.
 *   png-cmp FILE.png FILE.pgm   -> exit 0 when equal, else 1 with one line */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The PGM's pixels (malloc'd, w*h bytes) or NULL with why filled. */
static unsigned char *pgm_read(const char *path, unsigned *w, unsigned *h, char *why, size_t n) {
    FILE *f = fopen(path, "rb");
    unsigned maxval = 0;
    if (!f) return snprintf(why, n, "%s: cannot open", path), NULL;
    if (fscanf(f, "P5 %u %u %u", w, h, &maxval) != 3 || maxval != 255 || fgetc(f) == EOF ||
        *w == 0 || *h == 0 || (size_t)*w * *h > ((size_t)1 << 30)) {
        fclose(f);
        return snprintf(why, n, "%s: not an 8-bit P5 PGM", path), NULL;
    }
    size_t sz = (size_t)*w * *h;
    unsigned char *px = malloc(sz);
    int extra = px && fread(px, 1, sz, f) == sz ? fgetc(f) : 0;
    if (!px || extra != EOF) {
        fclose(f), free(px);
        return snprintf(why, n, "%s: %s", path, px ? "pixel data not w*h bytes" : "out of memory"), NULL;
    }
    fclose(f);
    return px;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: png-cmp FILE.png FILE.pgm\n"), 2;
    char why[512];
    unsigned w, h;
    unsigned char *pgm = pgm_read(argv[2], &w, &h, why, sizeof why);
    if (!pgm) return fprintf(stderr, "png-cmp: %s\n", why), 1;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        fprintf(stderr, "png-cmp: %s: %s\n", argv[1], img.message);
        return free(pgm), 1;
    }
    if (img.width != w || img.height != h || img.format != PNG_FORMAT_GRAY) {
        fprintf(stderr, "png-cmp: %s is %ux%u format %#x, %s is %ux%u grey\n", argv[1], img.width,
                img.height, img.format, argv[2], w, h);
        return png_image_free(&img), free(pgm), 1;
    }
    unsigned char *png = malloc(PNG_IMAGE_SIZE(img));
    if (!png || !png_image_finish_read(&img, NULL, png, 0, NULL)) {
        fprintf(stderr, "png-cmp: %s: %s\n", argv[1], png ? img.message : "out of memory");
        return png_image_free(&img), free(png), free(pgm), 1;
    }
    size_t i = 0, sz = (size_t)w * h;
    while (i < sz && png[i] == pgm[i]) i++;
    if (i < sz)
        fprintf(stderr, "png-cmp: %s and %s differ at row %zu column %zu: %u vs %u\n", argv[1],
                argv[2], i / w, i % w, png[i], pgm[i]);
    free(png), free(pgm);
    return i < sz;
}
