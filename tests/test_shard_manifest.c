/* test_shard_manifest.c - the manifest's own checksum (manifest version 4):
 * the writer's trailer holds the CRC-32 of the bytes before it, computed
 * here with zlib from docs/shard-format.md (not by the library); every
 * single-byte change and every truncation of a written manifest is refused
 * in one line naming it; manifests of versions 1 to 3 (no checksum) still
 * open; verify and info report the status. Image and record (v2) datasets
 * alike. Also run under ASan/UBSan (test_shard_manifest_asan). */
#include <zlib.h>

#include "shard.h"

static char tmpdir[] = "/tmp/test_shard_manifest_XXXXXX";
static char err[SHARD_ERR_MAX];

#include "shard_v2_helpers.h"

/* tmpdir/name: 50 labelled 4x3x2 images in 4 shards (16 per shard, 8 per
 * frame), or a world dataset of 20 records in 4 shards. */
static void dataset(char *dir, size_t dn, const char *name, int fields) {
    if (fields) {
        world(dir, dn, name, 20, 3, 2, 6, 4);
        return;
    }
    path_of(dir, dn, name);
    rm_tree(dir);
    shard_images im = {{.height = 4, .width = 3, .channels = 2, .dtype = SHARD_DTYPE_U8,
                        .label = SHARD_LABEL_U8, .num_classes = 10}, 50, NULL, NULL, 0, NULL};
    im.pixels = malloc(50 * 24);
    im.labels = malloc(50);
    for (size_t j = 0; j < 50 * 24; j++) im.pixels[j] = (uint8_t)(j * 37 + j / 5);
    for (int i = 0; i < 50; i++) im.labels[i] = (uint8_t)(i % 10);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = 16;
    o.records_per_frame = 8;
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
    shard_images_free(&im);
}

/* dir's manifest.json, NUL-terminated; its path in mp */
static char *manifest_of(const char *dir, char *mp, size_t mn, size_t *n) {
    snprintf(mp, mn, "%s/manifest.json", dir);
    char *t = (char *)read_file(mp, n);
    t = realloc(t, *n + 1);
    t[*n] = 0;
    return t;
}

/* ------------------------------------------------------------ round trip */
static void round_trip(int fields) {
    char dir[4096], mp[4200];
    dataset(dir, sizeof dir, fields ? "rt-fields" : "rt-images", fields);
    size_t n;
    char *text = manifest_of(dir, mp, sizeof mp, &n);
    /* the documented ending: "crc32": "<8 lower-case hex>"\n}\n, after "],\n  " */
    CU_ASSERT_FATAL(n > 40);
    CU_ASSERT(!memcmp(text + n - 29, "  ],\n  \"crc32\": \"", 17));
    CU_ASSERT(!memcmp(text + n - 4, "\"\n}\n", 4));
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", tl_manifest_crc(text, n)); /* zlib, here */
    CU_ASSERT(!memcmp(text + n - 12, hex, 8));
    CU_ASSERT(contains(text, "\"version\": 4,") && contains(text, "pixel_stats") == !fields);
    /* parsed and written again: the same bytes */
    shard_manifest m;
    CU_ASSERT_FATAL(shard_manifest_parse(&m, text, n, "m.json", err, sizeof err) == 0);
    CU_ASSERT(m.version == 4 && m.crc_state == SHARD_MANIFEST_CRC_OK &&
              m.crc == (uint32_t)strtoul(hex, NULL, 16));
    shard_manifest_free(&m);
    CU_ASSERT(tl_manifest_rewrites_same(text, n));
    /* opened, reported, verified */
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.manifest_version == 4 && in.manifest_has_crc &&
              in.manifest_crc == (uint32_t)strtoul(hex, NULL, 16));
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(text);
}

static void test_round_trip(void) {
    round_trip(0);
    round_trip(1);
}

/* ------------------------------------------------- every byte, every length */
/* Every byte of a written manifest set to each of its 255 other values, and
 * every proper prefix: all refused in one line naming the file. A change
 * before the trailer is refused by the checksum, before the text is parsed;
 * one in the trailer (22 bytes of fixed text and lower-case hex) either
 * breaks it (no checksum in a version 4 manifest: refused) or names another
 * CRC (mismatch). So no change is left that parses to the same content. */
static void every_change(int fields) {
    char dir[4096], mp[4200];
    dataset(dir, sizeof dir, fields ? "ch-fields" : "ch-images", fields);
    size_t n;
    char *good = manifest_of(dir, mp, sizeof mp, &n), *t = malloc(n + 1);
    shard_manifest m;
    long accepted = 0, not_crc = 0, bad_msg = 0;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 256; b++) {
            if (b == (uint8_t)good[i]) continue;
            memcpy(t, good, n + 1);
            t[i] = (char)b;
            if (shard_manifest_parse(&m, t, n, "d/manifest.json", err, sizeof err) == 0) {
                if (accepted++ < 5) fprintf(stderr, "byte %zu = %d accepted\n", i, b);
                shard_manifest_free(&m);
                continue;
            }
            if (!one_line(err) || strncmp(err, "d/manifest.json", 15)) bad_msg++;
            if (i < n - 22 && !(contains(err, "d/manifest.json: checksum mismatch (crc32 says ") &&
                                contains(err, "the manifest is damaged (jepa-shard verify d says more)")))
                not_crc++;
        }
    CU_ASSERT(accepted == 0);
    CU_ASSERT(bad_msg == 0);
    CU_ASSERT(not_crc == 0);
    long cut = 0;
    for (size_t k = 0; k < n; k++) {
        if (shard_manifest_parse(&m, good, k, "d/manifest.json", err, sizeof err) == 0) {
            fprintf(stderr, "cut at %zu of %zu accepted\n", k, n);
            shard_manifest_free(&m);
            cut++;
        } else if (!one_line(err) || strncmp(err, "d/manifest.json", 15)) {
            bad_msg++;
        }
    }
    CU_ASSERT(cut == 0 && bad_msg == 0);
    /* the same through the file: open names the manifest; one problem for verify */
    shard_dataset *ds;
    size_t cuts[] = {n - 1, n - 3, n - 22, n / 2};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        write_file(mp, good, cuts[c]);
        CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 && contains(err, mp) &&
                  one_line(err));
        CU_ASSERT(shard_verify(dir, NULL, NULL) == 1);
    }
    write_file(mp, good, n);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(t);
    free(good);
}

static void test_every_byte_every_length(void) {
    every_change(0);
    every_change(1);
}

/* ---------------------------------------------------------- older versions */
/* What earlier builds wrote (versions 3, 1 and 2, no crc32) opens as before,
 * and info reports that the manifest has no checksum. */
static void open_old(const char *dir, const char *mp, const char *text, uint32_t version) {
    write_file(mp, text, strlen(text));
    shard_dataset *ds;
    int rc = shard_dataset_open(&ds, dir, err, sizeof err);
    if (rc) fprintf(stderr, "version %u: %s\n", version, err);
    CU_ASSERT_FATAL(rc == 0);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.manifest_version == version && !in.manifest_has_crc);
    shard_pixel_stats st;
    CU_ASSERT(shard_dataset_has_pixel_stats(ds, &st) == (version == 3));
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
}

static void test_old_versions(void) {
    char dir[4096], mp[4200];
    dataset(dir, sizeof dir, "old-images", 0);
    size_t n;
    char *good = manifest_of(dir, mp, sizeof mp, &n);
    char *v3 = tl_manifest_unseal(good, n, 3), *v1 = tl_manifest_unseal(good, n, 1);
    CU_ASSERT_FATAL(v3 && v1);
    CU_ASSERT(!contains(v3, "\"crc32\"") && contains(v3, "\"version\": 3,"));
    open_old(dir, mp, v3, 3);
    char *at = strstr(v1, "  \"pixel_stats\"");
    CU_ASSERT_FATAL(at != NULL);
    memmove(at, strchr(at, '\n') + 1, strlen(strchr(at, '\n') + 1) + 1);
    open_old(dir, mp, v1, 1);
    /* a crc32 member in an older version, or version 4 without one: refused */
    char *t = malloc(n + 64);
    snprintf(t, n + 64, "%.*s  \"crc32\": \"00000000\",%s", (int)(strstr(v3, "  \"records\"") - v3),
             v3, strstr(v3, "  \"records\""));
    write_file(mp, t, strlen(t));
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 &&
              contains(err, "crc32: only manifest version 4 has it") && contains(err, mp));
    char *v4 = strdup(v3);
    v4[strstr(v4, "\"version\": 3,") - v4 + 11] = '4';
    write_file(mp, v4, strlen(v4));
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 &&
              contains(err, "crc32: missing") && contains(err, mp) && one_line(err));
    free(good);
    free(v3);
    free(v1);
    free(v4);
    free(t);
    dataset(dir, sizeof dir, "old-fields", 1);
    good = manifest_of(dir, mp, sizeof mp, &n);
    char *v2 = tl_manifest_unseal(good, n, 2);
    CU_ASSERT_FATAL(v2 != NULL);
    open_old(dir, mp, v2, 2);
    free(v2);
    free(good);
}

/* ------------------------------------------------------------------ verify */
static void collect_all(void *ctx, const char *line) {
    char *all = ctx;
    size_t k = strlen(all);
    snprintf(all + k, 4096 - k, "%s\n", line);
}

/* A plausible edit (one shard's byte count): open refuses it at the
 * checksum; verify reports the mismatch and then what the shards say. */
static void test_verify_says_more(void) {
    char dir[4096], mp[4200];
    dataset(dir, sizeof dir, "more", 0);
    size_t n;
    char *t = manifest_of(dir, mp, sizeof mp, &n);
    char *p = strstr(t, "\"records\": 16, \"bytes\": ");
    CU_ASSERT_FATAL(p != NULL);
    p[strlen("\"records\": 16, \"bytes\": ")] ^= 1; /* a digit, still a digit */
    write_file(mp, t, n);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    char want[4400];
    snprintf(want, sizeof want, "%s: checksum mismatch (crc32 says ", mp);
    CU_ASSERT(!strncmp(err, want, strlen(want)) && one_line(err));
    snprintf(want, sizeof want, "the manifest is damaged (jepa-shard verify %s says more)", dir);
    CU_ASSERT(contains(err, want));
    char all[4096] = "";
    CU_ASSERT(shard_verify(dir, collect_all, all) == 2);
    snprintf(want, sizeof want, "%s: checksum mismatch", mp);
    CU_ASSERT(!strncmp(all, want, strlen(want)) && !contains(all, "says more"));
    CU_ASSERT(contains(all, "shard-00000.jshard: offset 72: file is"));
    free(t);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"round trip: the trailer, its CRC (zlib), parse/write, info, verify", test_round_trip},
        {"every single-byte change and every truncation refused", test_every_byte_every_length},
        {"versions 1 to 3 (no checksum) still open", test_old_versions},
        {"a damaged manifest: open refuses, verify says more", test_verify_says_more},
    };
    int rc = test_main("shard_manifest", cases, sizeof cases / sizeof cases[0]);
    rm_tree(tmpdir);
    return rc;
}
