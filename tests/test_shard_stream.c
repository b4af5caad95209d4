/* test_shard_stream.c - packing as a stream (shard_pack_stream over the
 * shard_image_src sources): the peak memory of packing an image folder does
 * not grow with the number of images (the process's VmHWM, read from
 * /proc/self/status, across a set 32 times larger; a whole read of that set
 * is measured too, so the probe is shown to see what it must), every record
 * reads back as the formula that wrote it (image folder, IDX, raw), and a
 * bad image late in the set leaves nothing at the output. Not under ASan:
 * its shadow memory and quarantine are not the packer's. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shard.h"
#include "shard_synth.h"
#include "testutil.h"

#define SIDE 64 /* 64x64x3: the user's case, 12 KiB an image */
#define REC ((size_t)SIDE * SIDE * 3)

/* Pixel j (planar, as packed) of image i of class c. */
static uint8_t px(uint64_t i, uint32_t c, size_t j) {
    return (uint8_t)((i * 31 + c * 101 + j * 7 + j / 191) & 255);
}

/* dir/CLASS/NNNNN.ppm, n images in 2 classes (i % 2: "a" or "b"); P6 is
 * interleaved (H, W, C), the packer stores (C, H, W). */
static void write_folder(const char *dir, uint64_t n) {
    char p[4200];
    uint8_t *b = malloc(REC);
    mkdir(dir, 0755);
    for (uint32_t c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/%c", dir, 'a' + c);
        mkdir(p, 0755);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)(i % 2);
        for (size_t q = 0; q < (size_t)SIDE * SIDE; q++)
            for (size_t ch = 0; ch < 3; ch++) b[q * 3 + ch] = px(i, c, ch * SIDE * SIDE + q);
        snprintf(p, sizeof p, "%s/%c/%06llu.ppm", dir, 'a' + c, (unsigned long long)i);
        FILE *f = fopen(p, "wb");
        CU_ASSERT_FATAL(f != NULL);
        fprintf(f, "P6 %d %d 255\n", SIDE, SIDE);
        CU_ASSERT(fwrite(b, 1, REC, f) == REC);
        fclose(f);
    }
    free(b);
}

/* The process's peak resident set (kB), or 0 when /proc does not say. */
static long vm_hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static void small_opts(shard_pack_opts *o) {
    shard_pack_opts_defaults(o);
    o->records_per_shard = 64;
    o->records_per_frame = 16;
    o->level = 1;
}

/* src streamed into out; 0 or -1 (err holds the line). */
static int pack_src(shard_image_src *src, const char *out) {
    shard_pack_opts o;
    small_opts(&o);
    int rc = shard_pack_stream(out, src, &o, NULL, NULL, err, sizeof err);
    shard_image_src_close(src);
    return rc;
}

static int pack_folder(const char *dir, const char *out) {
    shard_image_src *src;
    shard_image_dir_opts io = {.class_dirs = 1};
    if (shard_image_dir_open(&src, dir, &io, err, sizeof err)) return -1;
    return pack_src(src, out);
}

/* 128 then 4096 images (1.5 MB, 48 MB): the peak grows by less than an
 * eighth of the difference (the file list is all that grows); a whole
 * read of the larger set then raises it by most of its size. */
static void test_memory_bounded(void) {
    char small[4096], big[4096], out[4200];
    path_of(small, sizeof small, "small");
    path_of(big, sizeof big, "big");
    const uint64_t n1 = 128, n2 = 4096;
    write_folder(small, n1);
    write_folder(big, n2);
    snprintf(out, sizeof out, "%s/out-small", tmpdir);
    CU_ASSERT_FATAL(pack_folder(small, out) == 0);
    long h1 = vm_hwm_kb();
    snprintf(out, sizeof out, "%s/out-big", tmpdir);
    int rc = pack_folder(big, out);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    long h2 = vm_hwm_kb(), diff_kb = (long)((n2 - n1) * REC / 1024);
    fprintf(stderr, "\n  VmHWM after %llu images %ld kB, after %llu images %ld kB (data %ld kB more)\n",
            (unsigned long long)n1, h1, (unsigned long long)n2, h2, diff_kb);
    CU_ASSERT_FATAL(h1 > 0); /* /proc/self/status has VmHWM */
    CU_ASSERT(h2 - h1 < diff_kb / 8);
    shard_images im;
    shard_image_dir_opts io = {.class_dirs = 1};
    CU_ASSERT_FATAL(shard_image_dir_read(&im, big, &io, err, sizeof err) == 0);
    long h3 = vm_hwm_kb();
    fprintf(stderr, "  a whole read of the %llu: %ld kB\n", (unsigned long long)n2, h3);
    CU_ASSERT(h3 - h2 > diff_kb / 2); /* the probe sees a set held in memory */
    shard_images_free(&im);
    rm_tree(small);
    rm_tree(big);
    snprintf(out, sizeof out, "%s/out-small", tmpdir);
    rm_tree(out);
    snprintf(out, sizeof out, "%s/out-big", tmpdir);
    rm_tree(out);
}

/* out holds n labelled records, record i being image k_of(i, n) of the
 * formula (class k % 2, its label); names: the classes are named a, b. */
static void expect_records(const char *out, uint64_t n, uint64_t (*k_of)(uint64_t, uint64_t),
                           int names) {
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, out, err, sizeof err) == 0);
    CU_ASSERT_FATAL(shard_dataset_records(ds) == n);
    uint8_t *pix = malloc(n * REC), *lab = malloc(n);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, lab, err, sizeof err) == 0);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = k_of(i, n);
        uint32_t c = (uint32_t)(k % 2);
        bad += lab[i] != c;
        for (size_t j = 0; j < REC; j++) bad += pix[i * REC + j] != px(k, c, j);
    }
    CU_ASSERT_EQUAL(bad, 0);
    const char *b = shard_dataset_class_name(ds, 1);
    CU_ASSERT(names ? b && !strcmp(b, "b") : b == NULL);
    free(pix);
    free(lab);
    shard_dataset_close(ds);
}

/* ImageFolder order: class a (even images) then class b (odd). */
static uint64_t k_folder(uint64_t i, uint64_t n) {
    uint64_t na = (n + 1) / 2;
    return i < na ? 2 * i : 2 * (i - na) + 1;
}
static uint64_t k_same(uint64_t i, uint64_t n) {
    (void)n;
    return i;
}

/* The folder, a raw file and a plain IDX file of the same images (grey for
 * IDX: its one channel), each streamed and read back against the formula. */
static void test_stream_records(void) {
    char dir[4096], out[4200], raw[4200], lab[4200], idx[4200];
    const uint64_t n = 101; /* short last frame and shard */
    path_of(dir, sizeof dir, "rec");
    write_folder(dir, n);
    snprintf(out, sizeof out, "%s/out-folder", tmpdir);
    CU_ASSERT_FATAL(pack_folder(dir, out) == 0);
    expect_records(out, n, k_folder, 1);
    rm_tree(out);
    /* raw (N, C, H, W) and its labels */
    uint8_t *b = malloc(n * REC), l[101];
    for (uint64_t i = 0; i < n; i++) {
        l[i] = (uint8_t)(i % 2);
        for (size_t j = 0; j < REC; j++) b[i * REC + j] = px(i, (uint32_t)(i % 2), j);
    }
    snprintf(raw, sizeof raw, "%s/x.raw", tmpdir);
    snprintf(lab, sizeof lab, "%s/x.lab", tmpdir);
    write_file(raw, b, n * REC);
    write_file(lab, l, n);
    shard_image_src *src;
    CU_ASSERT_FATAL(shard_raw_open(&src, raw, lab, SIDE, SIDE, 3, err, sizeof err) == 0);
    CU_ASSERT_FATAL(pack_src(src, out) == 0);
    expect_records(out, n, k_same, 0);
    rm_tree(out);
    /* IDX: 3 * n grey images of SIDE x SIDE are the same bytes */
    uint8_t h[16] = {0, 0, 8, 3, 0, 0, (uint8_t)(3 * n >> 8), (uint8_t)(3 * n), 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    uint8_t *f = malloc(16 + n * REC);
    memcpy(f, h, 16);
    memcpy(f + 16, b, n * REC);
    snprintf(idx, sizeof idx, "%s/x.idx", tmpdir);
    write_file(idx, f, 16 + n * REC);
    CU_ASSERT_FATAL(shard_idx_open(&src, idx, NULL, err, sizeof err) == 0);
    int rc = pack_src(src, out);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    uint8_t *got = malloc(n * REC);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, out, err, sizeof err) == 0);
    CU_ASSERT(shard_dataset_records(ds) == 3 * n);
    CU_ASSERT(shard_dataset_read_all(ds, got, NULL, err, sizeof err) == 0 &&
              memcmp(got, b, n * REC) == 0);
    shard_dataset_close(ds);
    rm_tree(out);
    rm_tree(dir);
    free(b);
    free(f);
    free(got);
}

/* No ".out.partial-PID" (or anything) left in tmpdir beside out. */
static int leftovers(const char *base) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, base) != NULL;
    if (d) closedir(d);
    return n;
}

/* Image 81 of 100 of another size, 5 shards in: one line naming both
 * files, nothing at the output, no staging directory left. */
static void test_late_refusal(void) {
    char dir[4096], out[4200], p[4200];
    path_of(dir, sizeof dir, "late");
    write_folder(dir, 100);
    snprintf(p, sizeof p, "%s/b/000081.ppm", dir);
    write_file(p, "P6 2 1 255\n\1\2\3\4\5\6", 17);
    snprintf(out, sizeof out, "%s/out-late", tmpdir);
    CU_ASSERT(pack_folder(dir, out) == -1);
    CU_ASSERT(contains(err, "/b/000081.ppm: 1x2x3") && contains(err, "/a/000000.ppm is 64x64x3"));
    CU_ASSERT(leftovers("out-late") == 0);
    rm_tree(dir);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"peak memory does not grow with the set (VmHWM)", test_memory_bounded},
        {"folder, raw and IDX streamed: every record as written", test_stream_records},
        {"a bad image late in the set: nothing at the output", test_late_refusal},
    };
    int rc = test_main("shard_stream", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
