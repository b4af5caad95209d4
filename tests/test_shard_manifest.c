/* test_shard_manifest.c - the manifest's own checksum (manifest version 4):
 * the writer's trailer holds the CRC-32 of the bytes before it, computed
 * here with zlib from docs/shard-format.md (not by the library); every
 * single-byte change and every truncation of a written manifest is refused
 * in one line naming it; manifests of versions 1 to 3 (no checksum) still
 * open; verify and info report the status. Image and record (v2) datasets
 * alike, and images with class names (version 5: the names read back with
 * JSON's escapes undone; names that do not fit refused). Also run under
 * ASan/UBSan (test_shard_manifest_asan). */
#include <zlib.h>

#include "shard.h"

static char tmpdir[] = "/tmp/test_shard_manifest_XXXXXX";
static char err[SHARD_ERR_MAX];

#include "shard_v2_helpers.h"

/* Names of the 10 classes of dataset(.., 2): JSON's escapes and UTF-8 */
static const char *const class_names[10] = {"zero", "one \"1\"", "two\\2", "tr\xc3\xaas",
                                            "4", "five five", "6", "sept", "8", "\xe4\xb9\x9d"};

/* tmpdir/name: 50 labelled 4x3x2 images in 4 shards (16 per shard, 8 per
 * frame), with fields 2 also the names of their classes (manifest version
 * 5), or (fields 1) a world dataset of 20 records in 4 shards. */
static void dataset(char *dir, size_t dn, const char *name, int fields) {
    if (fields == 1) {
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
    if (fields == 2) {
        im.nclasses = 10;
        im.class_names = malloc(10 * sizeof *im.class_names);
        for (int i = 0; i < 10; i++) im.class_names[i] = strdup(class_names[i]);
    }
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
    static const char *const name[3] = {"rt-images", "rt-fields", "rt-classes"};
    uint32_t version = fields == 2 ? 5 : 4;
    dataset(dir, sizeof dir, name[fields], fields);
    size_t n;
    char *text = manifest_of(dir, mp, sizeof mp, &n);
    /* the documented ending: "crc32": "<8 lower-case hex>"\n}\n, after "],\n  " */
    CU_ASSERT_FATAL(n > 40);
    CU_ASSERT(!memcmp(text + n - 29, "  ],\n  \"crc32\": \"", 17));
    CU_ASSERT(!memcmp(text + n - 4, "\"\n}\n", 4));
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", tl_manifest_crc(text, n)); /* zlib, here */
    CU_ASSERT(!memcmp(text + n - 12, hex, 8));
    CU_ASSERT(contains(text, version == 5 ? "\"version\": 5," : "\"version\": 4,") &&
              contains(text, "pixel_stats") == (fields != 1));
    /* parsed and written again: the same bytes */
    shard_manifest m;
    CU_ASSERT_FATAL(shard_manifest_parse(&m, text, n, "m.json", err, sizeof err) == 0);
    CU_ASSERT(m.version == version && m.crc_state == SHARD_MANIFEST_CRC_OK &&
              m.crc == (uint32_t)strtoul(hex, NULL, 16));
    shard_manifest_free(&m);
    CU_ASSERT(tl_manifest_rewrites_same(text, n));
    /* opened, reported, verified */
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.manifest_version == version && in.manifest_has_crc &&
              in.manifest_crc == (uint32_t)strtoul(hex, NULL, 16));
    for (uint32_t c = 0; c < 10; c++) /* the names, escapes undone */
        CU_ASSERT(fields == 2 ? !strcmp(shard_dataset_class_name(ds, c), class_names[c])
                              : shard_dataset_class_name(ds, c) == NULL);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(text);
}

static void test_round_trip(void) {
    round_trip(0);
    round_trip(1);
    round_trip(2);
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
    static const char *const name[3] = {"ch-images", "ch-fields", "ch-classes"};
    dataset(dir, sizeof dir, name[fields], fields);
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
    every_change(2);
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

/* ------------------------------------------------------ classes (v5) */
/* text with from replaced by to, resealed, must be refused with want */
static void classes_refused(const char *text, size_t n, const char *from, const char *to,
                            const char *want) {
    const char *at = strstr(text, from);
    CU_ASSERT_FATAL(at != NULL);
    size_t fl = strlen(from), tl = strlen(to), m = n - fl + tl;
    char *t = malloc(m + 1);
    memcpy(t, text, (size_t)(at - text));
    memcpy(t + (at - text), to, tl);
    memcpy(t + (at - text) + tl, at + fl, n - (size_t)(at - text) - fl + 1);
    CU_ASSERT_FATAL(tl_manifest_reseal(t, m) == 0);
    shard_manifest man;
    int rc = shard_manifest_parse(&man, t, m, "d/manifest.json", err, sizeof err);
    CU_ASSERT(rc == -1 && contains(err, want) && one_line(err));
    if (rc == 0 || !contains(err, want)) fprintf(stderr, "want '%s': %s\n", want, rc ? err : "ok");
    if (rc == 0) shard_manifest_free(&man);
    free(t);
}

/* Names that do not fit their schema or version are refused behind a sound
 * checksum: as many as the classes, distinct, printable, version 5 only. */
static void test_classes(void) {
    char dir[4096], mp[4200];
    dataset(dir, sizeof dir, "classes", 2);
    size_t n;
    char *text = manifest_of(dir, mp, sizeof mp, &n);
    classes_refused(text, n, "\"version\": 5,", "\"version\": 4,", "classes: only manifest version 5");
    classes_refused(text, n, ", \"sept\"", "", "classes: 9 names, but the schema has 10");
    classes_refused(text, n, "\"sept\"", "\"6\"", "items 6 and 7: the same name");
    classes_refused(text, n, "\"sept\"", "\"se\\u0001pt\"", "holds a control");
    classes_refused(text, n, "\"sept\"", "\"a/b\"", "holds '/'");
    free(text);
    /* the writer takes only names that fit */
    shard_schema s = {.height = 1, .width = 1, .channels = 1, .dtype = SHARD_DTYPE_U8,
                      .label = SHARD_LABEL_U8, .num_classes = 2};
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    shard_writer *w;
    path_of(dir, sizeof dir, "classes-w");
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
    const char *one[1] = {"a"}, *two[2] = {"a", "b\tc"};
    CU_ASSERT(shard_writer_set_classes(w, one, 1, err, sizeof err) == -1 &&
              contains(err, "1 class names, but the schema has 2"));
    CU_ASSERT(shard_writer_set_classes(w, two, 2, err, sizeof err) == -1 &&
              contains(err, "class 1: the name holds a control"));
    shard_writer_abort(w);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"round trip: the trailer, its CRC (zlib), parse/write, info, verify", test_round_trip},
        {"every single-byte change and every truncation refused", test_every_byte_every_length},
        {"versions 1 to 3 (no checksum) still open", test_old_versions},
        {"a damaged manifest: open refuses, verify says more", test_verify_says_more},
        {"class names (version 5): refused unless they fit", test_classes},
    };
    int rc = test_main("shard_manifest", cases, sizeof cases / sizeof cases[0]);
    rm_tree(tmpdir);
    return rc;
}
