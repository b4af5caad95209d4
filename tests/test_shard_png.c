/* test_shard_png.c - PNG input and image directories (shard/png.c,
 * shard/imagedir.c). Fixtures are written by libpng (png_fixture.c) from
 * samples made here, and every pixel the packer returns is checked against
 * a value computed here from those samples and the documented rules (16-bit
 * v -> round(v * 255 / 65535), palette -> its colour, alpha dropped, luma
 * 0.299/0.587/0.114), not by the code under test. Round trips go through
 * shard_pack and the reader; every truncation and every single-byte change
 * of a PNG is refused in one line naming it; bad directories (empty class,
 * too many classes, sizes that differ, a FIFO, a JPEG, ...) likewise. Also
 * run under ASan/UBSan (test_shard_png_asan). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "png_fixture.h"
#include "shard.h"
#include "shard_internal.h"
#include "shard_synth.h"
#include "testutil.h"

/* Sample s of pixel p: a pattern covering 0..max with neighbours apart. */
static uint16_t sample(uint32_t p, int s, uint32_t max) {
    return (uint16_t)(((uint64_t)p * 7919 + (uint64_t)s * 104729 + p / 3) % (max + 1));
}

/* f's samples: width x height x channels of its type, at its depth */
static uint16_t *samples_for(png_fixture *f, int npal) {
    int c = png_fixture_channels(f->color_type);
    uint32_t max = f->color_type == PNG_COLOR_TYPE_PALETTE ? (uint32_t)npal - 1
                                                            : (1u << f->bit_depth) - 1;
    size_t n = (size_t)f->width * f->height * c;
    uint16_t *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++) s[i] = sample((uint32_t)(i / c), (int)(i % c), max);
    f->samples = s;
    return s;
}

/* What the packer must give for f: (C, H, W), C = 1 for grey types, 3 else. */
static uint8_t *expect_pixels(const png_fixture *f, uint32_t *channels) {
    int c = png_fixture_channels(f->color_type), d = f->bit_depth;
    int rgb = f->color_type & PNG_COLOR_MASK_COLOR; /* RGB, RGBA, palette */
    uint32_t out_c = rgb ? 3 : 1;
    size_t plane = (size_t)f->width * f->height;
    uint8_t *px = malloc(plane * out_c);
    for (size_t p = 0; p < plane; p++)
        for (uint32_t ch = 0; ch < out_c; ch++) {
            unsigned v = f->samples[p * c + (f->color_type == PNG_COLOR_TYPE_PALETTE ? 0 : ch)];
            if (f->color_type == PNG_COLOR_TYPE_PALETTE) v = f->palette[3 * v + ch];
            else if (d == 16) v = (unsigned)lround(v * 255.0 / 65535.0);
            else if (d < 8) v = v * 255 / ((1u << d) - 1);
            px[ch * plane + p] = (uint8_t)v;
        }
    *channels = out_c;
    return px;
}

static int decode_file(const char *path, shard_pic *pic) {
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    int rc = shard_png_decode(f, path, pic, err, sizeof err);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ colour types */
static void test_types(void) {
    static const uint8_t pal[4 * 3] = {10, 20, 30, 255, 0, 128, 0, 255, 1, 77, 77, 77};
    static const uint8_t trns[2] = {0, 128};
    static const struct { int type, depth, interlace; const char *name; } cases[] = {
        {PNG_COLOR_TYPE_GRAY, 8, 0, "grey8"},        {PNG_COLOR_TYPE_RGB, 8, 0, "rgb8"},
        {PNG_COLOR_TYPE_GRAY, 1, 0, "grey1"},        {PNG_COLOR_TYPE_GRAY, 2, 0, "grey2"},
        {PNG_COLOR_TYPE_GRAY, 4, 0, "grey4"},        {PNG_COLOR_TYPE_GRAY, 16, 0, "grey16"},
        {PNG_COLOR_TYPE_RGB, 16, 0, "rgb16"},        {PNG_COLOR_TYPE_PALETTE, 8, 0, "pal8"},
        {PNG_COLOR_TYPE_PALETTE, 2, 0, "pal2"},      {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, "ga8"},
        {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, "rgba8"},   {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, "rgba16"},
        {PNG_COLOR_TYPE_RGB, 8, 1, "rgb8-adam7"},    {PNG_COLOR_TYPE_GRAY, 16, 1, "grey16-adam7"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        png_fixture f = {.width = 13, .height = 7, .color_type = cases[k].type,
                         .bit_depth = cases[k].depth, .interlace = cases[k].interlace,
                         .palette = pal, .npalette = 4, .trns = trns, .ntrns = 2};
        uint16_t *s = samples_for(&f, 4);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.png", tmpdir, cases[k].name);
        CU_ASSERT_FATAL(png_fixture_write(path, &f) == 0);
        uint32_t want_c;
        uint8_t *want = expect_pixels(&f, &want_c);
        shard_pic pic;
        int rc = decode_file(path, &pic);
        if (rc) fprintf(stderr, "%s: %s\n", cases[k].name, err);
        CU_ASSERT(rc == 0);
        if (!rc) {
            CU_ASSERT(pic.height == 7 && pic.width == 13 && pic.channels == want_c);
            int same = pic.channels == want_c && !memcmp(pic.pixels, want, 91 * want_c);
            if (!same) fprintf(stderr, "%s: pixels differ\n", cases[k].name);
            CU_ASSERT(same);
            free(pic.pixels);
        }
        free(want);
        free(s);
    }
}

/* --channels: grey replicated; RGB to the rounded luma (its formula in
 * doubles here: every x.5 is exact, lround takes it up as the integers do) */
static void test_convert(void) {
    png_fixture f = {.width = 9, .height = 5, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8};
    uint16_t *s = samples_for(&f, 0);
    shard_pic p = {5, 9, 3, malloc(135)};
    uint32_t c;
    uint8_t *rgb = expect_pixels(&f, &c);
    memcpy(p.pixels, rgb, 135);
    shard_pic_convert(&p, 1);
    CU_ASSERT_FATAL(p.channels == 1);
    int bad = 0;
    for (size_t i = 0; i < 45; i++) {
        double y = (299.0 * rgb[i] + 587.0 * rgb[45 + i] + 114.0 * rgb[90 + i]) / 1000.0;
        bad += p.pixels[i] != (uint8_t)lround(y);
    }
    CU_ASSERT(bad == 0);
    shard_pic_convert(&p, 3);
    CU_ASSERT(p.channels == 3 && !memcmp(p.pixels, p.pixels + 45, 45) &&
              !memcmp(p.pixels, p.pixels + 90, 45));
    free(p.pixels);
    free(rgb);
    free(s);
}

/* ------------------------------------------------------------- round trip */
/* tmpdir/NAME/REL: a w x h PNG of type, pattern offset seed; its expected
 * (C, H, W) pixels appended to *want at *at. */
static void put_png(const char *dir, const char *rel, int type, uint32_t seed, uint8_t *want,
                    size_t *at) {
    png_fixture f = {.width = 6, .height = 4, .color_type = type, .bit_depth = 8};
    int c = png_fixture_channels(type);
    uint16_t *s = malloc(24 * c * sizeof *s);
    for (int i = 0; i < 24 * c; i++) s[i] = sample((uint32_t)i + seed * 31, 0, 255);
    f.samples = s;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    CU_ASSERT_FATAL(png_fixture_write(path, &f) == 0);
    uint32_t oc;
    uint8_t *px = expect_pixels(&f, &oc);
    if (want) memcpy(want + *at, px, 24 * oc);
    if (at) *at += 24 * oc;
    free(px);
    free(s);
}

/* Packs im into tmpdir/out and checks every byte and label read back. */
static void check_packed(const char *name, shard_images *im, const uint8_t *want,
                         const uint8_t *want_labels, uint64_t n) {
    char out[4096];
    path_of(out, sizeof out, name);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_frame = 2;
    CU_ASSERT_FATAL(shard_pack(out, im, &o, err, sizeof err) == 0);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, out, err, sizeof err) == 0);
    size_t rec = shard_dataset_record_bytes(ds);
    uint8_t *pix = malloc(n * rec), *lab = malloc(n);
    CU_ASSERT_FATAL(shard_dataset_records(ds) == n);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, lab, err, sizeof err) == 0);
    CU_ASSERT(memcmp(pix, want, n * rec) == 0);
    if (want_labels) CU_ASSERT(memcmp(lab, want_labels, n) == 0);
    free(pix);
    free(lab);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(out, NULL, NULL) == 0);
}

static void test_flat_roundtrip(void) {
    char d[4096], lp[4200];
    path_of(d, sizeof d, "flat");
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    uint8_t want[5 * 24];
    size_t at = 0;
    const char *names[5] = {"a.png", "b.PNG", "c.png", "d.png", "e.png"}; /* byte order */
    for (int i = 0; i < 5; i++) put_png(d, names[i], PNG_COLOR_TYPE_GRAY, (uint32_t)i, want, &at);
    snprintf(lp, sizeof lp, "%s/flat.labels", tmpdir);
    const char *lab = "e.png 2\na.png 0\nb.PNG 7\nc.png 1\nd.png 0\n";
    write_file(lp, lab, strlen(lab));
    shard_image_dir_opts o = {.labels_path = lp};
    shard_images im;
    int rc = shard_image_dir_read(&im, d, &o, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 5 && im.schema.channels == 1 && im.schema.num_classes == 8 && !im.nclasses);
    const uint8_t labels[5] = {0, 7, 1, 0, 2};
    check_packed("flat-ds", &im, want, labels, 5);
    shard_images_free(&im);
    /* --channels 3: each plane the grey image */
    o.channels = 3;
    CU_ASSERT_FATAL(shard_image_dir_read(&im, d, &o, err, sizeof err) == 0);
    CU_ASSERT(im.schema.channels == 3);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 3; c++)
            CU_ASSERT(!memcmp(im.pixels + i * 72 + c * 24, want + i * 24, 24));
    shard_images_free(&im);
}

/* ImageFolder: class order is byte order of the folder names (upper case
 * before lower, '.' hidden folders too), images in byte order inside each */
static void test_class_dirs_roundtrip(void) {
    static const char *const cls[] = {".hidden", "Zebra", "caf\xc3\xa9", "cat \"tabby\""};
    static const int count[] = {1, 2, 3, 2};
    char d[4096], sub[4300];
    path_of(d, sizeof d, "folder");
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    uint8_t want[8 * 72], labels[8];
    size_t at = 0, k = 0;
    for (int c = 0; c < 4; c++) {
        snprintf(sub, sizeof sub, "%s/%s", d, cls[c]);
        CU_ASSERT_FATAL(mkdir(sub, 0755) == 0);
        for (int i = 0; i < count[c]; i++) {
            char rel[300];
            snprintf(rel, sizeof rel, "%s/img%d.png", cls[c], i);
            put_png(d, rel, PNG_COLOR_TYPE_RGB, (uint32_t)(10 * c + i), want, &at);
            labels[k++] = (uint8_t)c;
        }
    }
    snprintf(sub, sizeof sub, "%s/README.txt", d); /* other files are skipped, as ImageFolder */
    write_file(sub, "hi", 2);
    snprintf(sub, sizeof sub, "%s/cat \"tabby\"/notes", d);
    write_file(sub, "x", 1);
    shard_image_dir_opts o = {.class_dirs = 1};
    shard_images im;
    int rc = shard_image_dir_read(&im, d, &o, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 8 && im.schema.channels == 3 && im.schema.num_classes == 4 &&
              im.nclasses == 4);
    check_packed("folder-ds", &im, want, labels, 8);
    shard_images_free(&im);
    char out[4096];
    path_of(out, sizeof out, "folder-ds");
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, out, err, sizeof err) == 0);
    for (uint32_t c = 0; c < 4; c++) CU_ASSERT_STRING_EQUAL(shard_dataset_class_name(ds, c), cls[c]);
    CU_ASSERT(shard_dataset_class_name(ds, 4) == NULL);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.manifest_version == 5 && in.manifest_has_crc);
    shard_dataset_close(ds);
    /* --channels 1: each image's luma */
    o.channels = 1;
    CU_ASSERT_FATAL(shard_image_dir_read(&im, d, &o, err, sizeof err) == 0);
    CU_ASSERT(im.schema.channels == 1 && im.n == 8);
    const uint8_t *p = want;
    CU_ASSERT(im.pixels[0] == (uint8_t)lround((299.0 * p[0] + 587.0 * p[24] + 114.0 * p[48]) / 1000));
    shard_images_free(&im);
}

/* --------------------------------------------------------------- damage */
/* A PNG's bytes: every truncation and every single-byte change (to x ^ 0x01
 * and x ^ 0xff) is refused in one line naming the file, never a crash (the
 * ASan build proves no stray read) and never accepted: the signature, the
 * chunk lengths and types and the CRC of each chunk's data leave no byte
 * unchecked. */
static void test_damage(void) {
    png_fixture f = {.width = 5, .height = 3, .color_type = PNG_COLOR_TYPE_PALETTE, .bit_depth = 8};
    static const uint8_t pal[6] = {1, 2, 3, 200, 100, 50};
    f.palette = pal;
    f.npalette = 2;
    uint16_t *s = samples_for(&f, 2);
    size_t n;
    uint8_t *png = png_fixture_bytes(&f, &n), *buf = malloc(n);
    CU_ASSERT_FATAL(png != NULL);
    const char *name = "damaged.png";
    shard_pic pic;
    size_t refused = 0, one_line = 0, tries = 0;
    for (size_t len = 0; len <= n; len++) {
        FILE *m = fmemopen(len ? png : (uint8_t *)"", len ? len : 1, "rb");
        if (!len) fgetc(m); /* an empty file */
        int rc = shard_png_decode(m, name, &pic, err, sizeof err);
        fclose(m);
        if (len == n) {
            CU_ASSERT(rc == 0 && pic.channels == 3);
            if (!rc) free(pic.pixels);
            continue;
        }
        tries++;
        refused += rc == -1;
        one_line += rc == -1 && !strncmp(err, "damaged.png: ", 13) && !strchr(err, '\n');
    }
    for (size_t i = 0; i < n; i++)
        for (int x = 0; x < 2; x++) {
            memcpy(buf, png, n);
            buf[i] ^= x ? 0xff : 0x01;
            FILE *m = fmemopen(buf, n, "rb");
            int rc = shard_png_decode(m, name, &pic, err, sizeof err);
            fclose(m);
            tries++;
            refused += rc == -1;
            one_line += rc == -1 && !strncmp(err, "damaged.png: ", 13) && !strchr(err, '\n');
            if (!rc) {
                fprintf(stderr, "byte %zu ^ %d accepted\n", i, x ? 0xff : 1);
                free(pic.pixels);
            }
        }
    CU_ASSERT(refused == tries && one_line == tries);
    /* the messages a user sees */
    FILE *m = fmemopen(png, n - 20, "rb");
    CU_ASSERT(shard_png_decode(m, name, &pic, err, sizeof err) == -1 && contains(err, "truncated"));
    fclose(m);
    memcpy(buf, png, n);
    buf[42] ^= 1; /* inside PLTE's data (8 + 25 + 8 bytes before it) */
    m = fmemopen(buf, n, "rb");
    CU_ASSERT(shard_png_decode(m, name, &pic, err, sizeof err) == -1 && contains(err, "CRC"));
    fclose(m);
    static const uint8_t jpeg[16] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F'};
    m = fmemopen((void *)jpeg, sizeof jpeg, "rb");
    CU_ASSERT(shard_png_decode(m, name, &pic, err, sizeof err) == -1 &&
              contains(err, "damaged.png: offset 0: not a PNG file") && contains(err, "JPEG"));
    fclose(m);
    free(buf);
    free(png);
    free(s);
}

/* ------------------------------------------------------ bad directories */
/* shard_image_dir_read on dir: refused, with every piece in err */
static void expect_refused(const char *dir, int class_dirs, const char *a, const char *b) {
    shard_image_dir_opts o = {.class_dirs = class_dirs};
    shard_images im;
    int rc = shard_image_dir_read(&im, dir, &o, err, sizeof err);
    CU_ASSERT(rc == -1 && im.pixels == NULL && im.class_names == NULL);
    CU_ASSERT(contains(err, a) && (!b || contains(err, b)) && !strchr(err, '\n'));
    if (rc == 0 || !contains(err, a) || (b && !contains(err, b)))
        fprintf(stderr, "want '%s' '%s', got rc %d: %s\n", a, b ? b : "", rc, err);
    if (!rc) shard_images_free(&im);
}

static void test_bad_dirs(void) {
    char d[4096], p[4300], q[4300];
    path_of(d, sizeof d, "bad");
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    snprintf(p, sizeof p, "%s/a", d);
    CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
    put_png(d, "a/1.png", PNG_COLOR_TYPE_GRAY, 1, NULL, NULL);
    snprintf(p, sizeof p, "%s/b", d); /* an empty class */
    CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
    expect_refused(d, 1, "/bad/b: an empty class folder", "label 1");
    expect_refused(d, 0, "/bad: no *.png", "--class-dirs"); /* flat: the hint */
    put_png(d, "b/x.png", PNG_COLOR_TYPE_RGB, 2, NULL, NULL); /* grey and RGB */
    expect_refused(d, 1, "/bad/b/x.png: 4x6x3 (height x width x channels), but ",
                   "/bad/a/1.png is 4x6x1: all must match (pack does not resize; --channels");
    snprintf(p, sizeof p, "%s/b/x.png", d);
    png_fixture big = {.width = 7, .height = 4, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 8};
    uint16_t *s = samples_for(&big, 0);
    CU_ASSERT_FATAL(png_fixture_write(p, &big) == 0);
    free(s);
    expect_refused(d, 1, "/bad/b/x.png: 4x7x1", "all must match (pack does not resize)");
    put_png(d, "b/x.png", PNG_COLOR_TYPE_GRAY, 2, NULL, NULL);
    snprintf(q, sizeof q, "%s/b/y.png", d); /* a PGM named .png */
    write_file(q, "P5 6 4 255\n", 11);
    expect_refused(d, 1, "/bad/b/y.png: offset 0: not a PNG file", NULL);
    unlink(q);
    CU_ASSERT_FATAL(mkfifo(q, 0644) == 0); /* refused before anything waits on it */
    expect_refused(d, 1, "/bad/b/y.png: not a regular file", NULL);
    unlink(q);
    CU_ASSERT_FATAL(symlink("nowhere.png", q) == 0);
    expect_refused(d, 1, "/bad/b/y.png: cannot open: No such file", NULL);
    unlink(q);
    snprintf(q, sizeof q, "%s/b/photo.JPG", d); /* refused, not skipped */
    write_file(q, "\xff\xd8\xff", 3);
    expect_refused(d, 1, "/bad/b/photo.JPG: pack reads PNG, PGM and PPM only", NULL);
    unlink(q);
    snprintf(q, sizeof q, "%s/b/deeper", d);
    CU_ASSERT_FATAL(mkdir(q, 0755) == 0);
    expect_refused(d, 1, "/bad/b/deeper: a directory inside a class folder", NULL);
    rmdir(q);
    snprintf(q, sizeof q, "%s/stray.png", d);
    write_file(q, "x", 1);
    expect_refused(d, 1, "/bad/stray.png: an image outside the class folders", NULL);
    unlink(q);
    snprintf(q, sizeof q, "%s/bad\x01name", d);
    CU_ASSERT_FATAL(mkdir(q, 0755) == 0);
    expect_refused(d, 1, "class name holds a control", NULL);
    rmdir(q);
    snprintf(q, sizeof q, "%s/b/z.png", d); /* truncated */
    size_t n;
    snprintf(p, sizeof p, "%s/b/x.png", d);
    uint8_t *bytes = read_file(p, &n);
    write_file(q, bytes, n - 13);
    expect_refused(d, 1, "/bad/b/z.png: bad PNG: ", NULL);
    unlink(q);
    free(bytes);
    if (geteuid() != 0) { /* root reads anything */
        CU_ASSERT_FATAL(chmod(p, 0) == 0);
        expect_refused(d, 1, "/bad/b/x.png: cannot open: Permission denied", NULL);
        chmod(p, 0644);
    }
    shard_image_dir_opts o = {.class_dirs = 1};
    shard_images im;
    CU_ASSERT(shard_image_dir_read(&im, d, &o, err, sizeof err) == 0 && im.n == 2);
    shard_images_free(&im);
    /* 257 classes: more than a byte holds */
    for (int i = 0; i < 257; i++) {
        snprintf(p, sizeof p, "%s/c%03d", d, i);
        mkdir(p, 0755);
    }
    expect_refused(d, 1, "/bad: 259 class folders, at most 256 (labels are one byte)", NULL);
    rm_tree(d);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"PNG colour types and depths to 8-bit grey/RGB", test_types},
        {"--channels: grey to RGB, RGB to luma", test_convert},
        {"flat directory + labels file: pack, read back", test_flat_roundtrip},
        {"ImageFolder layout: labels, names, pack, read back", test_class_dirs_roundtrip},
        {"damaged PNG: every truncation and byte change", test_damage},
        {"bad directories and files: one line naming them", test_bad_dirs},
    };
    int rc = test_main("shard_png", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
