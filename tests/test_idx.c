/* test_idx.c - IDX reader: the real Fashion-MNIST files against values read
 * independently, round trips of small files written here (plain and gzip),
 * and every malformed-file path ending in one clean error line.
 * The data directory defaults to the dataset-fashion-mnist package's and can
 * be moved with JEPA_FMNIST_DIR. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "jepa.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/test_idx_XXXXXX";

static const char *fmnist_dir(void) {
    const char *d = getenv("JEPA_FMNIST_DIR");
    return d && *d ? d : "/usr/share/datasets/fashion-mnist";
}

static void fmnist_path(char *out, size_t n, const char *file) {
    snprintf(out, n, "%s/%s", fmnist_dir(), file);
}

static void tmp_path(char *out, size_t n, const char *file) {
    snprintf(out, n, "%s/%s", tmpdir, file);
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes bytes to tmpdir/name, gzip-compressed when gz. */
static void write_file(const char *name, const uint8_t *bytes, size_t n, int gz, char *path,
                       size_t pathlen) {
    tmp_path(path, pathlen, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_FATAL(n == 0 || gzwrite(f, bytes, (unsigned)n) == (int)n);
        CU_ASSERT_FATAL(gzclose(f) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_FATAL(fwrite(bytes, 1, n, f) == n);
        CU_ASSERT_FATAL(fclose(f) == 0);
    }
}

/* Writes an IDX images file: header (magic, n, h, w) then npix pixel bytes
 * (npix may disagree with the header on purpose). */
static void write_images(const char *name, uint32_t magic, uint32_t n, uint32_t h, uint32_t w,
                         const uint8_t *pix, size_t npix, int gz, char *path, size_t pathlen) {
    size_t len = 16 + npix;
    uint8_t *buf = malloc(len);
    CU_ASSERT_FATAL(buf != NULL);
    be32(buf, magic);
    be32(buf + 4, n);
    be32(buf + 8, h);
    be32(buf + 12, w);
    if (npix) memcpy(buf + 16, pix, npix);
    write_file(name, buf, len, gz, path, pathlen);
    free(buf);
}

static void write_labels(const char *name, uint32_t n, const uint8_t *lab, size_t nlab, int gz,
                         char *path, size_t pathlen) {
    uint8_t buf[8 + 256];
    CU_ASSERT_FATAL(nlab <= 256);
    be32(buf, 0x00000801);
    be32(buf + 4, n);
    if (nlab) memcpy(buf + 8, lab, nlab);
    write_file(name, buf, 8 + nlab, gz, path, pathlen);
}

/* Loads and expects failure whose message contains each of the needles;
 * the struct must come back zeroed (nothing half-owned). */
static void expect_fail(const char *img, const char *lab, const char *needle1,
                        const char *needle2) {
    jepa_images d;
    memset(&d, 0x5a, sizeof d);
    char err[512] = "";
    int rc = idx_load(&d, img, lab, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    if (rc == 0) {
        images_free(&d);
        return;
    }
    CU_ASSERT_PTR_NULL(d.pixels);
    CU_ASSERT_PTR_NULL(d.labels);
    CU_ASSERT_EQUAL(d.n, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle1));
    if (needle2) CU_ASSERT_PTR_NOT_NULL(strstr(err, needle2));
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    images_free(&d); /* harmless on the zeroed struct */
}

/* Sums image i's pixels straight from the gzip file, without idx.c. */
static long long pixel_sum_direct(const char *path, long long i) {
    gzFile f = gzopen(path, "rb");
    if (!f) return -1;
    gzseek(f, 16 + i * 784, SEEK_SET);
    uint8_t px[784];
    long long s = gzread(f, px, sizeof px) == (int)sizeof px ? 0 : -1;
    for (int k = 0; k < 784 && s >= 0; k++) s += px[k];
    gzclose(f);
    return s;
}

static long long pixel_sum(const jepa_images *d, int i) {
    long long s = 0;
    size_t sz = (size_t)d->c * d->h * d->w;
    for (size_t k = 0; k < sz; k++) s += d->pixels[(size_t)i * sz + k];
    return s;
}

static void test_fashion_mnist(void) {
    char img[1024], lab[1024], err[512] = "";
    jepa_images d;

    fmnist_path(img, sizeof img, "train-images-idx3-ubyte.gz");
    fmnist_path(lab, sizeof lab, "train-labels-idx1-ubyte.gz");
    int rc = idx_load(&d, img, lab, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s (set JEPA_FMNIST_DIR)\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_EQUAL(d.n, 60000);
    CU_ASSERT_EQUAL(d.c, 1);
    CU_ASSERT_EQUAL(d.h, 28);
    CU_ASSERT_EQUAL(d.w, 28);
    CU_ASSERT_EQUAL(d.labels[0], 9);
    CU_ASSERT_EQUAL(d.labels[59999], 5);
    /* python3: sum(gzip.open(f).read()[16:16+784]) == 47040016-byte file's image 0 */
    CU_ASSERT_EQUAL(pixel_sum(&d, 0), 76247);
    CU_ASSERT_EQUAL(pixel_sum(&d, 0), pixel_sum_direct(img, 0));
    CU_ASSERT_EQUAL(pixel_sum(&d, 59999), 16684); /* python3, same way, last image */
    CU_ASSERT_EQUAL(pixel_sum(&d, 59999), pixel_sum_direct(img, 59999));
    int hist[256] = {0};
    for (int i = 0; i < d.n; i++) hist[d.labels[i]]++;
    for (int k = 0; k < 10; k++) CU_ASSERT_EQUAL(hist[k], 6000); /* balanced classes */
    images_free(&d);
    CU_ASSERT_PTR_NULL(d.pixels);

    fmnist_path(img, sizeof img, "t10k-images-idx3-ubyte.gz");
    fmnist_path(lab, sizeof lab, "t10k-labels-idx1-ubyte.gz");
    CU_ASSERT_FATAL(idx_load(&d, img, lab, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.n, 10000);
    CU_ASSERT_EQUAL(d.labels[0], 9);
    CU_ASSERT_EQUAL(pixel_sum(&d, 0), 33456); /* python3, as above */
    CU_ASSERT_EQUAL(pixel_sum(&d, 0), pixel_sum_direct(img, 0));
    images_free(&d);

    /* train images with test labels: the counts disagree */
    fmnist_path(img, sizeof img, "train-images-idx3-ubyte.gz");
    expect_fail(img, lab, "has 60000 images but ", "has 10000 labels");
}

static void test_roundtrip(void) {
    enum { N = 5, H = 3, W = 7 };
    uint8_t pix[N * H * W], labs[N] = {0, 255, 7, 3, 128};
    for (int i = 0; i < N * H * W; i++) pix[i] = (uint8_t)(i * 37 + 11);
    for (int gz = 0; gz < 2; gz++) {
        char img[1024], lab[1024], err[256] = "";
        write_images(gz ? "rt.img.gz" : "rt.img", 0x803, N, H, W, pix, sizeof pix, gz, img,
                     sizeof img);
        write_labels(gz ? "rt.lab.gz" : "rt.lab", N, labs, N, gz, lab, sizeof lab);
        jepa_images d;
        CU_ASSERT_FATAL(idx_load(&d, img, lab, err, sizeof err) == 0);
        CU_ASSERT_EQUAL(d.n, N);
        CU_ASSERT_EQUAL(d.c, 1);
        CU_ASSERT_EQUAL(d.h, H);
        CU_ASSERT_EQUAL(d.w, W);
        CU_ASSERT_EQUAL(memcmp(d.pixels, pix, sizeof pix), 0);
        CU_ASSERT_EQUAL(memcmp(d.labels, labs, N), 0);
        images_free(&d);
    }
}

/* One byte per image, many images: exercises the geometric buffer growth
 * past the first 16 MiB slice (gzip keeps the file small). */
static void test_large_growth(void) {
    const uint32_t n = 20u << 20; /* 20 Mi 1x1 images */
    uint8_t *pix = malloc(n);
    CU_ASSERT_FATAL(pix != NULL);
    for (uint32_t i = 0; i < n; i++) pix[i] = (uint8_t)(i ^ (i >> 8));
    char img[1024], lab[1024], err[256] = "";
    write_images("big.img.gz", 0x803, n, 1, 1, pix, n, 1, img, sizeof img);
    /* labels file of n bytes, written by hand (write_labels caps at 256) */
    tmp_path(lab, sizeof lab, "big.lab.gz");
    gzFile f = gzopen(lab, "wb");
    CU_ASSERT_FATAL(f != NULL);
    uint8_t h[8];
    be32(h, 0x801);
    be32(h + 4, n);
    gzwrite(f, h, 8);
    gzwrite(f, pix, n);
    gzclose(f);
    jepa_images d;
    int rc = idx_load(&d, img, lab, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_EQUAL(d.n, (int)n);
    CU_ASSERT_EQUAL(memcmp(d.pixels, pix, n), 0);
    CU_ASSERT_EQUAL(memcmp(d.labels, pix, n), 0);
    images_free(&d);
    free(pix);
}

static void test_missing_file(void) {
    char img[1024], lab[1024], miss[1024];
    uint8_t pix[4] = {1, 2, 3, 4}, labs[1] = {0};
    write_images("ok.img", 0x803, 1, 2, 2, pix, 4, 0, img, sizeof img);
    write_labels("ok.lab", 1, labs, 1, 0, lab, sizeof lab);
    tmp_path(miss, sizeof miss, "nope.gz");
    char want[1200];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", miss);
    expect_fail(miss, lab, want, NULL);
    expect_fail(img, miss, want, NULL); /* images loaded, then freed on the label error */
}

static void test_bad_magic(void) {
    char img[1024], lab[1024];
    uint8_t pix[4] = {0}, labs[1] = {0};
    write_labels("ok1.lab", 1, labs, 1, 0, lab, sizeof lab);
    for (int gz = 0; gz < 2; gz++) {
        write_images(gz ? "magic.img.gz" : "magic.img", 0x801, 1, 2, 2, pix, 4, gz, img,
                     sizeof img);
        expect_fail(img, lab, "bad magic 0x00000801, expected 0x00000803 (IDX ubyte images)",
                    img);
        /* 4-dim ubyte and 3-dim int32 variants are not ours either */
        write_images(gz ? "magic.img.gz" : "magic.img", 0x804, 1, 2, 2, pix, 4, gz, img,
                     sizeof img);
        expect_fail(img, lab, "bad magic 0x00000804", NULL);
        write_images(gz ? "magic.img.gz" : "magic.img", 0x0c03, 1, 2, 2, pix, 4, gz, img,
                     sizeof img);
        expect_fail(img, lab, "bad magic 0x00000c03", NULL);
    }
    /* images file given as the labels file */
    write_images("ok2.img", 0x803, 1, 2, 2, pix, 4, 0, img, sizeof img);
    expect_fail(img, img, "bad magic 0x00000803, expected 0x00000801 (IDX ubyte labels)", NULL);
}

static void test_truncated(void) {
    char img[1024], lab[1024];
    uint8_t pix[2 * 3 * 3] = {0}, labs[2] = {1, 1};
    write_labels("t.lab", 2, labs, 2, 0, lab, sizeof lab);
    for (int gz = 0; gz < 2; gz++) {
        write_images(gz ? "t.img.gz" : "t.img", 0x803, 2, 3, 3, pix, 17, gz, img, sizeof img);
        expect_fail(img, lab, "truncated: expected 18 bytes of pixels, got 17", img);
        /* header cut after the magic */
        uint8_t hdr[6] = {0, 0, 8, 3, 0, 0};
        write_file(gz ? "th.img.gz" : "th.img", hdr, sizeof hdr, gz, img, sizeof img);
        expect_fail(img, lab, "truncated header: expected 16 bytes, got 6", NULL);
        write_file(gz ? "th.img.gz" : "th.img", hdr, 0, gz, img, sizeof img);
        expect_fail(img, lab, "truncated header: expected 16 bytes, got 0", NULL);
    }
    write_images("ok3.img", 0x803, 2, 3, 3, pix, 18, 0, img, sizeof img);
    write_labels("t1.lab", 2, labs, 1, 1, lab, sizeof lab);
    expect_fail(img, lab, "truncated: expected 2 bytes of labels, got 1", NULL);

    /* a gzip stream cut in the middle: zlib's reason is appended */
    enum { N = 50, S = 28 };
    uint8_t *big = malloc(N * S * S);
    CU_ASSERT_FATAL(big != NULL);
    for (int i = 0; i < N * S * S; i++) big[i] = (uint8_t)(i * 2654435761u >> 24);
    write_images("cut.img.gz", 0x803, N, S, S, big, N * S * S, 1, img, sizeof img);
    free(big);
    FILE *f = fopen(img, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fclose(f);
    CU_ASSERT_FATAL(truncate(img, len / 2) == 0);
    expect_fail(img, lab, img, "truncated: expected 39200 bytes of pixels, got ");
}

static void test_trailing_bytes(void) {
    char img[1024], lab[1024];
    uint8_t pix[5] = {0}, labs[2] = {0, 1};
    write_labels("tr.lab", 1, labs, 1, 0, lab, sizeof lab);
    write_images("tr.img", 0x803, 1, 2, 2, pix, 5, 0, img, sizeof img);
    expect_fail(img, lab, "1 trailing bytes after the 4 bytes of pixels", NULL);
    write_images("tr1.img", 0x803, 1, 2, 2, pix, 4, 0, img, sizeof img);
    write_labels("tr1.lab", 1, labs, 2, 1, lab, sizeof lab);
    expect_fail(img, lab, "1 trailing bytes after the 1 bytes of labels", NULL);
}

static void test_count_mismatch(void) {
    char img[1024], lab[1024];
    uint8_t pix[12] = {0}, labs[4] = {0};
    write_images("cm.img", 0x803, 3, 2, 2, pix, 12, 0, img, sizeof img);
    write_labels("cm.lab", 4, labs, 4, 1, lab, sizeof lab);
    char want[2200];
    snprintf(want, sizeof want, "%s has 3 images but %s has 4 labels", img, lab);
    expect_fail(img, lab, want, NULL);
}

/* Headers that lie: the reader must reject or fail cleanly without trying to
 * allocate what the header claims. */
static void test_absurd_dims(void) {
    char img[1024], lab[1024];
    uint8_t pix[84] = {0}, labs[1] = {0};
    write_labels("ad.lab", 1, labs, 1, 0, lab, sizeof lab);
    for (int gz = 0; gz < 2; gz++) {
        const char *name = gz ? "ad.img.gz" : "ad.img";
        write_images(name, 0x803, 0x80000000u, 28, 28, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "image count 2147483648 out of range", NULL);
        write_images(name, 0x803, 0, 28, 28, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "image count 0 out of range", NULL);
        write_images(name, 0x803, 1, 0, 28, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "image size 0x28 out of range", NULL);
        write_images(name, 0x803, 1, 28, 4097, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "image size 28x4097 out of range", NULL);
        /* in range but ~1.7 TB claimed in a 100-byte file: a truncation
         * error after one small allocation, not an out-of-memory abort */
        write_images(name, 0x803, 0x7fffffffu, 28, 28, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "truncated: expected 1683627179248 bytes of pixels, got 84",
                    NULL);
        write_images(name, 0x803, 0x7fffffffu, 4096, 4096, pix, 84, gz, img, sizeof img);
        expect_fail(img, lab, "bytes of pixels, got 84", NULL);
    }
}

/* A tiny err buffer truncates the message but never overflows. */
static void test_small_err_buffer(void) {
    char miss[1024];
    tmp_path(miss, sizeof miss, "missing");
    char err[12];
    memset(err, 'x', sizeof err);
    jepa_images d;
    CU_ASSERT_EQUAL(idx_load(&d, miss, miss, err, 8), -1);
    CU_ASSERT_EQUAL(strlen(err), 7);
    CU_ASSERT_EQUAL(err[8], 'x');
    CU_ASSERT_EQUAL(idx_load(&d, miss, miss, NULL, 0), -1);
}

static void cleanup_tmpdir(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const test_case cases[] = {
    {"fashion_mnist", test_fashion_mnist},
    {"roundtrip_plain_and_gz", test_roundtrip},
    {"large_growth", test_large_growth},
    {"missing_file", test_missing_file},
    {"bad_magic", test_bad_magic},
    {"truncated", test_truncated},
    {"trailing_bytes", test_trailing_bytes},
    {"count_mismatch", test_count_mismatch},
    {"absurd_dims", test_absurd_dims},
    {"small_err_buffer", test_small_err_buffer},
};

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    int rc = test_main("idx", cases, sizeof cases / sizeof cases[0]);
    cleanup_tmpdir();
    return rc;
}
