/* test_shard.c - the shard format, packer, verifier and training reader.
 * Records of the synthetic sets carry their own index in their first 4
 * bytes and a formula in the rest, so every byte a reader returns is checked
 * against an independent value; Fashion-MNIST is compared against the IDX
 * bytes gunzipped here. Corruption tests flip every header/index byte, every
 * frame byte, truncate, and forge absurd counts with valid checksums; they
 * also run under ASan/UBSan (test_shard_asan). JEPA_FMNIST_DIR moves the data.
 * The training reader has its own suite (test_shard_reader.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "shard.h"
#include "shard_internal.h"
#include "shard_synth.h"
#include "shard_testlib.h"
#include "testutil.h"


/* --------------------------------------------------------------- schema */
static void test_schema(void) {
    shard_schema s = IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10);
    CU_ASSERT(shard_schema_record_bytes(&s) == 784);
    CU_ASSERT(shard_schema_check(&s, err, sizeof err) == 0);
    shard_schema bad[] = {
        IMG(0, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 70000, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 28, 65, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 28, 1, (shard_dtype)2, SHARD_LABEL_U8, 10),
        IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 0),
        IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_NONE, 3),
        IMG(28, 28, 1, SHARD_DTYPE_U8, (shard_label_kind)7, 3),
        IMG(65535, 65535, 64, SHARD_DTYPE_U8, SHARD_LABEL_NONE, 0),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CU_ASSERT(shard_schema_check(&bad[i], err, sizeof err) == -1);
}

/* ------------------------------------------------------------ round trip */
static void check_roundtrip(const char *name, uint64_t n, uint32_t rps, uint32_t rpf,
                            int labels) {
    char dir[4096];
    pack_synth(dir, sizeof dir, name, n, rps, rpf, labels);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    size_t rec = shard_dataset_record_bytes(ds);
    CU_ASSERT(rec == 30);
    CU_ASSERT(shard_dataset_records(ds) == n);
    CU_ASSERT(!strcmp(shard_dataset_split(ds), "train"));
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    uint64_t shards = (n + rps - 1) / rps, frames = 0;
    for (uint64_t s = 0; s < shards; s++) {
        uint64_t k = s + 1 < shards ? rps : n - s * rps;
        frames += (k + rpf - 1) / rpf;
    }
    CU_ASSERT(in.shards == shards);
    CU_ASSERT(in.frames == frames);
    CU_ASSERT(in.raw_bytes == n * (rec + (labels ? 1 : 0)));
    CU_ASSERT(in.file_bytes == in.compressed_bytes + shards * 128 + frames * 32);
    uint8_t *pix = malloc(n * rec), *lab = malloc(n);
    memset(lab, 0xee, n);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, lab, err, sizeof err) == 0);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rec; j++) bad += pix[i * rec + j] != rec_byte(i, j);
        bad += lab[i] != (labels ? i % 10 : 0);
    }
    CU_ASSERT(bad == 0);
    for (uint64_t i = 0; i < n; i += n / 7 + 1) {
        uint8_t one[30], l = 99;
        char where[256];
        CU_ASSERT_FATAL(shard_dataset_read_record(ds, i, one, &l, where, sizeof where, err,
                                                  sizeof err) == 0);
        CU_ASSERT(memcmp(one, pix + i * rec, rec) == 0);
        CU_ASSERT(l == lab[i]);
        CU_ASSERT(contains(where, "shard-") && contains(where, "frame"));
    }
    uint8_t one[30];
    CU_ASSERT(shard_dataset_read_record(ds, n, one, NULL, NULL, 0, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "out of range"));
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(pix);
    free(lab);
    shard_dataset_close(ds);
}

static void test_roundtrip(void) {
    check_roundtrip("rt1", 1000, 100, 16, 1);  /* shards split frames unevenly */
    check_roundtrip("rt2", 1001, 97, 10, 1);   /* last shard and last frame partial */
    check_roundtrip("rt3", 5, 4096, 256, 0);   /* one frame, no labels */
    check_roundtrip("rt4", 64, 8, 8, 1);       /* one frame per shard */
}

/* Gunzips an IDX file here (independently of shard_idx_read). */
static uint8_t *gunzip_all(const char *path, size_t *n) {
    gzFile f = gzopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    int k;
    while ((k = gzread(f, b + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)k;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    gzclose(f);
    *n = len;
    return b;
}

static void test_fmnist_roundtrip(void) {
    const char *d = getenv("JEPA_FMNIST_DIR");
    if (!d || !*d) d = "/usr/share/datasets/fashion-mnist";
    char img[4096], lab[4096], dir[4096];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", d);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", d);
    shard_images im;
    int rc = shard_idx_read(&im, img, lab, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 60000 && im.schema.height == 28 && im.schema.width == 28);
    CU_ASSERT(im.schema.channels == 1 && im.schema.num_classes == 10);
    size_t ni, nl;
    uint8_t *gi = gunzip_all(img, &ni), *gl = gunzip_all(lab, &nl);
    CU_ASSERT_FATAL(ni == 16 + 60000u * 784 && nl == 8 + 60000u);
    CU_ASSERT(memcmp(im.pixels, gi + 16, 60000u * 784) == 0);
    CU_ASSERT(memcmp(im.labels, gl + 8, 60000) == 0);
    path_of(dir, sizeof dir, "fmnist");
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.level = 1;
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
    shard_images_free(&im);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.shards == 15 && in.records == 60000);
    uint8_t *pix = malloc(60000u * 784), *l = malloc(60000);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, l, err, sizeof err) == 0);
    CU_ASSERT(memcmp(pix, gi + 16, 60000u * 784) == 0);
    CU_ASSERT(memcmp(l, gl + 8, 60000) == 0);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(pix);
    free(l);
    free(gi);
    free(gl);
}

/* ------------------------------------------------------------ corruption */
/* A one-shard dataset of 40 records in 5 frames. */
static void tiny_dataset(char *dir, size_t n, char *shard, size_t sn) {
    path_of(dir, n, "tiny");
    rm_tree(dir);
    pack_synth(dir, n, "tiny", 40, 4096, 8, 1);
    snprintf(shard, sn, "%s/shard-00000.jshard", dir);
}

static uint64_t count_problems(const char *dir) { return shard_verify(dir, NULL, NULL); }

static void collect(void *ctx, const char *line) {
    char *buf = ctx;
    if (!*buf) snprintf(buf, SHARD_ERR_MAX, "%s", line);
}

static void test_corrupt_header_index(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t index_offset = shard_get64(orig + 64);
    int failures = 0, named = 0, total = 0;
    /* every byte of the header and of the index */
    for (size_t off = 0; off < n; off++) {
        if (off >= 128 && off < index_offset) continue;
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        b[off] ^= 0x5a;
        write_file(sp, b, n);
        shard_dataset *ds;
        total++;
        if (shard_dataset_open(&ds, dir, err, sizeof err) == -1) {
            failures++;
            named += contains(err, sp) && contains(err, "offset ");
        } else {
            shard_dataset_close(ds);
        }
        char first[SHARD_ERR_MAX] = "";
        CU_ASSERT(shard_verify(dir, collect, first) >= 1);
        free(b);
    }
    CU_ASSERT(failures == total);
    CU_ASSERT(named == total);
    write_file(sp, orig, n);
    CU_ASSERT(count_problems(dir) == 0);
    free(orig);
}

static void test_corrupt_frames(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t index_offset = shard_get64(orig + 64);
    int ok_named = 0, total = 0;
    for (size_t off = 128; off < index_offset; off++) {
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        b[off] ^= 0x01;
        write_file(sp, b, n);
        free(b);
        total++;
        char first[SHARD_ERR_MAX] = "";
        uint64_t p = shard_verify(dir, collect, first);
        ok_named += p == 1 && contains(first, sp) && contains(first, "offset ") &&
                    contains(first, "frame");
        if (off % 17 == 0) { /* the reader surfaces it too, thread or not */
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, 0, 1, 1, 8, 16, (int)(off % 2), err,
                                              sizeof err) == 0);
            uint8_t pix[8 * 30], lab[8];
            int rc = 0;
            for (int k = 0; k < 10 && rc == 0; k++) rc = shard_reader_next(r, pix, lab, err,
                                                                            sizeof err);
            CU_ASSERT(rc == -1 && contains(err, "frame") && contains(err, sp));
            CU_ASSERT(shard_reader_next(r, pix, lab, err, sizeof err) == -1);
            shard_reader_free(r);
            shard_dataset *ds;
            CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
            uint8_t all[40 * 30];
            CU_ASSERT(shard_dataset_read_all(ds, all, NULL, err, sizeof err) == -1);
            shard_dataset_close(ds);
        }
    }
    CU_ASSERT(ok_named == total);
    write_file(sp, orig, n);
    free(orig);
}

static void test_truncated(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    size_t cuts[] = {0, 7, 8, 100, 127, 128, 129, 200, n - 33, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_file(sp, orig, cuts[i]);
        shard_dataset *ds;
        CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
        CU_ASSERT(contains(err, sp) && contains(err, "offset "));
        CU_ASSERT(cuts[i] < 8 || contains(err, "truncated"));
        CU_ASSERT(count_problems(dir) == 1);
    }
    uint8_t *longer = malloc(n + 5);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 5);
    write_file(sp, longer, n + 5);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "trailing bytes"));
    memcpy(longer, "NOTASHRD", 8);
    write_file(sp, longer, n);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "bad magic") && contains(err, "offset 0"));
    unlink(sp);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, sp) && contains(err, "cannot open"));
    free(longer);
    write_file(sp, orig, n);
    free(orig);
}

/* Rewrites header field at off (4 or 8 bytes) and re-seals the header CRC,
 * so the range checks behind the checksum are what must catch it. */
static void forge(const char *sp, const uint8_t *orig, size_t n, size_t off, int width,
                  uint64_t v, int index_entry_field) {
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    if (width == 4) shard_put32(b + off, (uint32_t)v);
    else shard_put64(b + off, v);
    if (index_entry_field) { /* re-seal the index CRC, which lives in the header */
        uint64_t io = shard_get64(b + 64);
        shard_put32(b + 80, shard_crc32(b + io, n - io));
    }
    shard_put32(b + 124, shard_crc32(b, 124));
    write_file(sp, b, n);
    free(b);
}

static void test_absurd_counts(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t io = shard_get64(orig + 64);
    struct {
        size_t off;
        int width;
        uint64_t v;
        int idx;
        const char *want;
    } cases[] = {
        {8, 4, 3, 0, "version 3 not supported"},
        {8, 4, 2, 0, "version 2 shard"}, /* an image header read as v2 */
        {16, 4, 0, 0, "schema"},
        {20, 4, 1u << 30, 0, "schema"},
        {24, 4, 100000, 0, "schema"},
        {28, 4, 9, 0, "dtype"},
        {32, 4, 5, 0, "label kind"},
        {36, 4, 300, 0, "num_classes"},
        {40, 4, 31, 0, "record bytes"},
        {44, 4, 0, 0, "records per frame"},
        {44, 4, 0xffffffffu, 0, "records per frame"},
        {48, 8, UINT64_MAX, 0, "record count"},
        {48, 8, 0, 0, "record count"},
        {56, 4, 0xffffffffu, 0, "frame count"},
        {56, 4, 0, 0, "frame count"},
        {56, 4, 6, 0, "record count"},
        {64, 8, UINT64_MAX - 10, 0, "index offset"},
        {64, 8, 0, 0, "index offset"},
        {72, 8, 1ull << 62, 0, "header says"},
        {100, 4, 1, 0, "reserved"},
        {io + 0, 8, 1ull << 40, 1, "frame 0"},          /* frame offset */
        {io + 8, 4, 0xffffffffu, 1, "frame 0"},         /* compressed bytes */
        {io + 32 + 12, 4, 12345, 1, "raw size"},        /* raw bytes */
        {io + 32 + 16, 8, 3, 1, "records"},             /* first record */
        {io + 64 + 24, 4, 1u << 31, 1, "records"},      /* record count */
        {io + 64 + 8, 4, 1, 1, "frame 3"},              /* leaves a gap before frame 3 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge(sp, orig, n, cases[i].off, cases[i].width, cases[i].v, cases[i].idx);
        shard_file sf;
        int rc = shard_file_open(&sf, sp, NULL, err, sizeof err);
        CU_ASSERT(rc == -1);
        if (rc == -1 && !(contains(err, cases[i].want) && contains(err, "offset ")))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, cases[i].want);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want) && contains(err, sp));
        if (rc == 0) shard_file_free(&sf);
        CU_ASSERT(count_problems(dir) >= 1);
    }
    /* a valid shard that is not the one the manifest lists */
    forge(sp, orig, n, 60, 4, 9, 0); /* the informative zstd level */
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest"));
    write_file(sp, orig, n);
    free(orig);
}

static void test_manifest(void) {
    const char *good =
        "{\"format\": \"jepa-shard\", \"version\": 1, \"split\": \"test\", \"schema\": "
        "{\"height\": 2, \"width\": 3, \"channels\": 1, \"dtype\": \"u8\", \"label\": \"u8\", "
        "\"num_classes\": 10}, \"records\": 5, \"records_per_shard\": 4, \"records_per_frame\": 2, "
        "\"level\": 3, \"shards\": [{\"file\": \"a.jshard\", \"records\": 4, \"bytes\": 300, "
        "\"header_crc32\": 7}, {\"file\": \"b.jshard\", \"records\": 1, \"bytes\": 200, "
        "\"header_crc32\": 8}]}";
    shard_manifest m;
    CU_ASSERT_FATAL(shard_manifest_parse(&m, good, strlen(good), "m.json", err, sizeof err) == 0);
    CU_ASSERT(m.nshards == 2 && m.records == 5 && m.schema.width == 3 && m.shards[1].header_crc == 8);
    CU_ASSERT(!strcmp(m.split, "test") && !strcmp(m.shards[0].file, "a.jshard"));
    shard_manifest_free(&m);
    struct {
        const char *from, *to, *want;
    } edits[] = {
        {"\"version\": 1", "\"version\": 6", "version 6 not supported"},
        {"\"version\": 1", "\"version\": 4", "version 4 needs pixel_stats"},
        {"\"level\": 3", "\"crc32\": \"00000000\", \"level\": 3", "only manifest version 4 has it"},
        {"\"version\": 1", "\"version\": 2", "version 1 goes with images"},
        {"\"records\": 5", "\"records\": 6", "shards hold 5"},
        {"a.jshard", "../a.jshard", "only letters"},
        {"a.jshard", "b.jshard", "listed twice"},
        {"\"level\": 3", "\"levle\": 3", "unknown key 'levle'"},
        {"\"height\": 2", "\"height\": \"2\"", "expected a number"},
        {"\"height\": 2", "\"height\": -2", "not a whole number"},
        {"\"height\": 2", "\"height\": 0", "out of range"},
        {"\"records\": 1,", "\"records\": 99999999999999999999999,", "too large"},
        {"\"split\": \"test\", ", "", "missing key 'split'"},
        {"\"shards\": [", "\"shards\": [[], ", "expected a mapping"},
        {"\"format\": \"jepa-shard\"", "\"format\": \"zip\"", "expected 'jepa-shard'"},
        {"\"num_classes\": 10", "\"num_classes\": 0", "num_classes"},
        {"\"dtype\": \"u8\"", "\"dtype\": \"f32\"", "unknown"},
        {"{\"format\"", "{{\"format\"", "syntax error"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        char text[2048];
        const char *at = strstr(good, edits[i].from);
        CU_ASSERT_FATAL(at != NULL);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, edits[i].to,
                 at + strlen(edits[i].from));
        int rc = shard_manifest_parse(&m, text, strlen(text), "m.json", err, sizeof err);
        if (rc == 0 || !contains(err, edits[i].want))
            fprintf(stderr, "edit %zu: rc %d '%s' lacks '%s'\n", i, rc, err, edits[i].want);
        CU_ASSERT(rc == -1 && contains(err, edits[i].want) && contains(err, "m.json"));
    }
    CU_ASSERT(shard_manifest_parse(&m, "", 0, "m.json", err, sizeof err) == -1);
    CU_ASSERT(shard_manifest_parse(&m, "[1, 2]", 6, "m.json", err, sizeof err) == -1);
    /* a dataset whose manifest disagrees with its shard */
    char dir[4096], mp[4200];
    tiny_dataset(dir, sizeof dir, mp, sizeof mp);
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *text = (char *)read_file(mp, &n);
    char *p = strstr(text, "\"records\": 40, \"bytes\"");
    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, "\"records\": 41", 13);
    p = strstr(text, "\"records\": 40,");
    memcpy(p, "\"records\": 41", 13);
    write_file(mp, text, n); /* as edited: its own checksum refuses it */
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest.json: checksum mismatch") && !strchr(err, '\n'));
    CU_ASSERT_FATAL(tl_manifest_reseal(text, n) == 0); /* re-sealed: the shard refuses it */
    write_file(mp, text, n);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest says 41") && contains(err, "offset 48"));
    unlink(mp);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest.json") && contains(err, "not a dataset"));
    free(text);
}

/* ------------------------------------------------------------ atomicity */
static int partial_dirs_left(void) { return tl_partial_dirs(tmpdir); }

static void test_writer_atomic(void) {
    char dir[4096], f[4200];
    path_of(dir, sizeof dir, "atomic");
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
    snprintf(f, sizeof f, "%s/keep.txt", dir);
    write_file(f, "x", 1);
    shard_images im = make_images(50, 3, 5, 2, 1);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "not empty") && contains(err, dir));
    unlink(f); /* now an empty directory: allowed, replaced whole */
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
    CU_ASSERT(count_problems(dir) == 0);
    /* a failure mid-pack (label out of range at record 30) leaves nothing */
    path_of(dir, sizeof dir, "atomic2");
    im.labels[30] = 10;
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "record 30"));
    struct stat st;
    CU_ASSERT(stat(dir, &st) == -1);
    CU_ASSERT(partial_dirs_left() == 0);
    /* a writer abandoned after shards were written also leaves nothing */
    im.labels[30] = 3;
    o.records_per_shard = 10;
    shard_writer *w;
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &im.schema, &o, err, sizeof err) == 0);
    CU_ASSERT_FATAL(shard_writer_add(w, im.pixels, im.labels, 35, err, sizeof err) == 0);
    CU_ASSERT(partial_dirs_left() == 1 && stat(dir, &st) == -1);
    shard_writer_abort(w);
    CU_ASSERT(partial_dirs_left() == 0 && stat(dir, &st) == -1);
    o.level = 0;
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1 && contains(err, "level"));
    shard_images_free(&im);
}

/* --------------------------------------------------------------- sources */
/* path as a gzip file of the n bytes at b in members gzip members (each
 * its own gzip stream, as `cat a.gz b.gz` makes), then tail (k bytes) */
static void write_gz(const char *path, const uint8_t *b, size_t n, int members, const char *tail, size_t k) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    for (int m = 0; m < members; m++) {
        size_t from = n * (size_t)m / (size_t)members, to = n * (size_t)(m + 1) / (size_t)members;
        uint8_t z[256];
        z_stream s = {0};
        CU_ASSERT_FATAL(deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        s.next_in = (uint8_t *)b + from;
        s.avail_in = (unsigned)(to - from);
        s.next_out = z;
        s.avail_out = sizeof z;
        CU_ASSERT_FATAL(deflate(&s, Z_FINISH) == Z_STREAM_END);
        fwrite(z, 1, sizeof z - s.avail_out, f);
        deflateEnd(&s);
    }
    if (k) fwrite(tail, 1, k, f);
    fclose(f);
}

/* A gzip IDX file reads as its plain bytes, across concatenated members;
 * anything after the gzip stream's end but zero padding (zlib's gzread
 * skips it all: "trailing garbage is ignored") and a stream cut short are
 * refused in one line naming the file. idx: a valid 2x2x2 images file; lp its labels. */
static void idx_gzip_tails(const uint8_t *idx, const char *lp) {
    char p[4200];
    shard_images im;
    snprintf(p, sizeof p, "%s/i.idx.gz", tmpdir);
    write_gz(p, idx, 24, 1, NULL, 0);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == 0 && im.n == 2 && !memcmp(im.pixels, idx + 16, 8));
    shard_images_free(&im);
    write_gz(p, idx, 24, 2, NULL, 0);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == 0 && im.n == 2 && !memcmp(im.pixels, idx + 16, 8));
    shard_images_free(&im);
    /* zero padding (a tape or block tool's) reads, as gzip -d reads it */
    const char zeros[8] = {0};
    for (int k = 1; k <= 8; k += 7) {
        write_gz(p, idx, 24, 1 + k % 2, zeros, (size_t)k);
        CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == 0 && im.n == 2 && !memcmp(im.pixels, idx + 16, 8));
        shard_images_free(&im);
    }
    const char *tails[] = {"junk\n", "\0\0x", "\x1f", "\0\0\0\0\0\0\0\x01"};
    const size_t lens[] = {5, 3, 1, 8};
    for (int i = 0; i < 4; i++) {
        write_gz(p, idx, 24, 1 + i % 2, tails[i], lens[i]);
        int rc = shard_idx_read(&im, p, lp, err, sizeof err);
        CU_ASSERT(rc == -1 && contains(err, p) && contains(err, "after the end of the gzip stream"));
        if (rc == 0) fprintf(stderr, "tail %d accepted\n", i);
        if (rc == 0) shard_images_free(&im);
    }
    size_t n;
    uint8_t *whole = (write_gz(p, idx, 24, 1, NULL, 0), read_file(p, &n));
    write_file(p, whole, n - 3); /* its CRC and length cut */
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, p) && contains(err, "truncated"));
    free(whole);
}

static void test_sources(void) {
    char d[4096], p[4200], lp[4200];
    path_of(d, sizeof d, "pnm");
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    /* b.pgm 3x2 maxval 255, a.pgm maxval 15 (scaled), both with a comment */
    snprintf(p, sizeof p, "%s/b.pgm", d);
    write_file(p, "P5\n# c\n3 2\n255\n\x01\x02\x03\x04\x05\x06", 21);
    snprintf(p, sizeof p, "%s/a.pgm", d);
    write_file(p, "P5 3 2 15\n\x00\x0f\x05\x01\x02\x03", 16);
    snprintf(lp, sizeof lp, "%s/labels.txt", tmpdir);
    write_file(lp, "# name label\nb.pgm 4\na.pgm 1\n", 29);
    shard_images im;
    int rc = shard_pnm_dir_read(&im, d, lp, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 2 && im.schema.height == 2 && im.schema.width == 3);
    CU_ASSERT(im.schema.num_classes == 5 && im.labels[0] == 1 && im.labels[1] == 4);
    const uint8_t want[12] = {0, 255, 85, 17, 34, 51, 1, 2, 3, 4, 5, 6};
    CU_ASSERT(memcmp(im.pixels, want, 12) == 0);
    shard_images_free(&im);
    /* names with spaces and '#' (the label is the line's last word), a
     * comment after a label, a tab, CRLF; they were refused as bad lines */
    char q[4200];
    snprintf(p, sizeof p, "%s/b.pgm", d);
    snprintf(q, sizeof q, "%s/my cat #2.pgm", d);
    CU_ASSERT_FATAL(rename(p, q) == 0);
    const char *sp = "  my cat #2.pgm\t7  # a shirt, size 2\r\n# whole-line comment\na.pgm 1 # was 5\n";
    write_file(lp, sp, strlen(sp));
    rc = shard_pnm_dir_read(&im, d, lp, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 2 && im.labels[0] == 1 && im.labels[1] == 7); /* a.pgm, then "my cat #2.pgm" */
    shard_images_free(&im);
    const char *bad[] = {"a.pgm one\nmy cat #2.pgm 7\n", "a.pgm 256\nmy cat #2.pgm 7\n", "7\n",
                         "a.pgm 1\nmy cat #2.pgm\n"};
    for (int i = 0; i < 4; i++) {
        write_file(lp, bad[i], strlen(bad[i]));
        CU_ASSERT(shard_pnm_dir_read(&im, d, lp, err, sizeof err) == -1 && contains(err, "expected 'NAME LABEL'"));
    }
    CU_ASSERT_FATAL(rename(q, p) == 0);
    write_file(lp, "b.pgm 4\nc.pgm 1\n", 16);
    CU_ASSERT(shard_pnm_dir_read(&im, d, lp, err, sizeof err) == -1);
    CU_ASSERT(contains(err, ":2:") && contains(err, "c.pgm"));
    write_file(lp, "b.pgm 4\n", 8);
    CU_ASSERT(shard_pnm_dir_read(&im, d, lp, err, sizeof err) == -1 && contains(err, "a.pgm"));
    snprintf(p, sizeof p, "%s/c.ppm", d); /* RGB 1x2, interleaved -> planar */
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05\x06", 17);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "c.ppm"));
    rm_tree(d);
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05\x06", 17);
    CU_ASSERT_FATAL(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == 0);
    const uint8_t rgb[6] = {1, 4, 2, 5, 3, 6};
    CU_ASSERT(im.schema.channels == 3 && memcmp(im.pixels, rgb, 6) == 0 && !im.labels);
    shard_images_free(&im);
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05", 16);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "offset"));
    write_file(p, "P3 2 1 255\n1 2 3 4 5 6", 22);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "P5"));
    /* raw arrays */
    snprintf(p, sizeof p, "%s/raw.bin", tmpdir);
    uint8_t raw[24];
    for (int i = 0; i < 24; i++) raw[i] = (uint8_t)i;
    write_file(p, raw, 24);
    CU_ASSERT_FATAL(shard_raw_read(&im, p, NULL, 2, 2, 1, err, sizeof err) == 0);
    CU_ASSERT(im.n == 6 && memcmp(im.pixels, raw, 24) == 0);
    shard_images_free(&im);
    CU_ASSERT(shard_raw_read(&im, p, NULL, 5, 1, 1, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "not a whole number"));
    CU_ASSERT(shard_raw_read(&im, p, p, 2, 2, 1, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "expected 6"));
    /* IDX edge cases (small plain files) */
    uint8_t idx[16 + 8] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    snprintf(p, sizeof p, "%s/i.idx", tmpdir);
    write_file(p, idx, 24);
    snprintf(lp, sizeof lp, "%s/l.idx", tmpdir);
    uint8_t lab[10] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    write_file(lp, lab, 10);
    CU_ASSERT_FATAL(shard_idx_read(&im, p, lp, err, sizeof err) == 0);
    CU_ASSERT(im.n == 2 && im.schema.num_classes == 8);
    shard_images_free(&im);
    write_file(p, idx, 23);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "truncated"));
    uint8_t longer[25] = {0};
    memcpy(longer, idx, 24);
    write_file(p, longer, 25);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "trailing"));
    idx[3] = 1;
    write_file(p, idx, 24);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "bad magic"));
    idx[3] = 3;
    idx[4] = 0x7f; /* 2^31 images in a 24-byte file: refused cheaply */
    write_file(p, idx, 24);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, p));
    CU_ASSERT(im.pixels == NULL && im.n == 0);
    idx[4] = 0;
    idx_gzip_tails(idx, lp);
}

/* ----------------------------------------------------------- not regular */
/* Every input opens through shard_open_regular: a FIFO (whose blocking open
 * waits for a writer forever, SIGTERM ignored), a device or a directory is
 * refused in one line naming it, by the dataset readers and the packer's
 * sources alike; a regular file's fd comes back blocking, with its size.
 * The alarm turns a reader that waits on a FIFO into a failure, not a hang. */
static void test_not_regular(void) {
    char dir[4096], sp[4200], mp[4200], fifo[4200], want[4400];
    shard_dataset *ds;
    shard_schema sc;
    shard_images im;
    uint64_t size = 0;
    struct stat st;
    alarm(20);
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    snprintf(fifo, sizeof fifo, "%s.fifo", dir);
    CU_ASSERT_FATAL(stat(sp, &st) == 0 && mkfifo(fifo, 0644) == 0);
    int fd = shard_open_regular(sp, &size, err, sizeof err);
    CU_ASSERT(fd >= 0 && size == (uint64_t)st.st_size && !(fcntl(fd, F_GETFL) & O_NONBLOCK));
    if (fd >= 0) close(fd);
    snprintf(want, sizeof want, "%s: not a regular file (a device, FIFO or socket may never end)", fifo);
    CU_ASSERT(shard_open_regular(fifo, NULL, err, sizeof err) == -1 && errno == EINVAL);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT(shard_fopen_regular("/dev/zero", NULL, err, sizeof err) == NULL && errno == EINVAL &&
              contains(err, "/dev/zero: not a regular file"));
    snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
    CU_ASSERT(shard_open_regular(dir, NULL, err, sizeof err) == -1 && errno == EISDIR);
    CU_ASSERT_STRING_EQUAL(err, want);
    /* the dataset: its shard, then its manifest, a FIFO */
    size_t n, mn;
    uint8_t *orig = read_file(sp, &n), *man = read_file(mp, &mn);
    CU_ASSERT_FATAL(unlink(sp) == 0 && mkfifo(sp, 0644) == 0);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 && contains(err, sp) &&
              contains(err, "not a regular file"));
    CU_ASSERT(count_problems(dir) == 1);
    CU_ASSERT_FATAL(unlink(sp) == 0);
    write_file(sp, orig, n);
    CU_ASSERT_FATAL(unlink(mp) == 0 && mkfifo(mp, 0644) == 0);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 && contains(err, mp) &&
              contains(err, "not a regular file"));
    CU_ASSERT(shard_manifest_schema(dir, &sc, err, sizeof err) == -1 && contains(err, mp));
    CU_ASSERT_FATAL(unlink(mp) == 0);
    write_file(mp, man, mn);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    if (ds) shard_dataset_close(ds);
    /* the packer's sources: raw (pixels, labels), IDX (gzip or plain) */
    CU_ASSERT(shard_raw_read(&im, fifo, NULL, 2, 2, 1, err, sizeof err) == -1 && contains(err, fifo) &&
              contains(err, "not a regular file"));
    write_file(sp, orig, 40 * 4);
    CU_ASSERT(shard_raw_read(&im, sp, fifo, 2, 2, 1, err, sizeof err) == -1 && contains(err, fifo) &&
              contains(err, "not a regular file") && im.pixels == NULL);
    CU_ASSERT(shard_idx_read(&im, fifo, NULL, err, sizeof err) == -1 && contains(err, fifo) &&
              contains(err, "not a regular file"));
    unlink(fifo);
    free(orig);
    free(man);
    alarm(0);
}

/* ------------------------------------------------------------- tmp commit */
/* shard_tmp_commit: the text under path and no temp file after ok 1; after
 * ok 0 the earlier file kept whole; a temp file that could not be opened
 * (f NULL) names path; each failure removes the temp file. */
static void test_tmp_commit(void) {
    char path[300], tmp[320], err[512], got[16] = "";
    snprintf(path, sizeof path, "%s/commit.txt", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("first\n", f);
    CU_ASSERT_EQUAL(shard_tmp_commit(f, 1, tmp, path, err, sizeof err), 0);
    CU_ASSERT(access(tmp, F_OK) != 0);
    f = fopen(tmp, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("second, cut short", f);
    errno = 0;
    CU_ASSERT_EQUAL(shard_tmp_commit(f, 0, tmp, path, err, sizeof err), -1);
    CU_ASSERT(strstr(err, path) != NULL && access(tmp, F_OK) != 0);
    f = fopen(path, "r");
    CU_ASSERT(f && fgets(got, sizeof got, f) && !strcmp(got, "first\n"));
    if (f) fclose(f);
    snprintf(tmp, sizeof tmp, "%s/no-such-dir/x.tmp", tmpdir);
    errno = 0;
    f = fopen(tmp, "w");
    CU_ASSERT_EQUAL(shard_tmp_commit(f, f != NULL, tmp, "no-such-dir/x", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "cannot write no-such-dir/x: No such file or directory") != NULL);
    unlink(path);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"schema checks", test_schema},
        {"round trip: bytes, labels, counts, sizes", test_roundtrip},
        {"Fashion-MNIST train: IDX -> shards -> bytes", test_fmnist_roundtrip},
        {"corrupt: every header and index byte", test_corrupt_header_index},
        {"corrupt: every frame byte", test_corrupt_frames},
        {"corrupt: truncated, extended, wrong magic, missing", test_truncated},
        {"corrupt: absurd counts with valid checksums", test_absurd_counts},
        {"manifest: strict parse, cross-checks", test_manifest},
        {"writer: atomic, no partial output", test_writer_atomic},
        {"sources: PGM/PPM, raw, IDX edge cases", test_sources},
        {"tmp commit: whole or not at all", test_tmp_commit},
        {"inputs: a FIFO, device or directory refused, never waited on", test_not_regular},
    };
    int rc = test_main("shard", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
