/* shard_synth.c - the synthetic image sets and file helpers shared by the
 * shard suites (test_shard: format, packer, verifier; test_shard_reader: the
 * training reader). Record i carries i in its first 4 bytes and a formula in
 * the rest, so every byte a reader returns is checked against an
 * independent value. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_synth.h"
#include "testutil.h"

char tmpdir[] = "/tmp/test_shard_XXXXXX";
char err[SHARD_ERR_MAX];

void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmpdir, name);
}

void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Record i: bytes 0..3 = i (LE), byte j >= 4 = (i * 7 + j * 13) & 255; label i % 10. */
uint8_t rec_byte(uint64_t i, size_t j) {
    return j < 4 ? (uint8_t)(i >> (8 * j)) : (uint8_t)((i * 7 + j * 13) & 255);
}

shard_images make_images(uint64_t n, uint32_t h, uint32_t w, uint32_t c, int labels) {
    shard_images im = {IMG(h, w, c, SHARD_DTYPE_U8, labels ? SHARD_LABEL_U8 : SHARD_LABEL_NONE,
                           labels ? 10 : 0), n, NULL, NULL, 0, NULL};
    size_t rec = (size_t)h * w * c;
    im.pixels = malloc(n * rec);
    for (uint64_t i = 0; i < n; i++)
        for (size_t j = 0; j < rec; j++) im.pixels[i * rec + j] = rec_byte(i, j);
    if (labels) {
        im.labels = malloc(n);
        for (uint64_t i = 0; i < n; i++) im.labels[i] = (uint8_t)(i % 10);
    }
    return im;
}

/* Packs n synthetic records into tmpdir/name; returns the path in out. */
void pack_synth(char *out, size_t outlen, const char *name, uint64_t n, uint32_t rps,
                       uint32_t rpf, int labels) {
    path_of(out, outlen, name);
    shard_images im = make_images(n, 3, 5, 2, labels);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = rps;
    o.records_per_frame = rpf;
    o.level = 1;
    int rc = shard_pack(out, &im, &o, err, sizeof err);
    if (rc) fprintf(stderr, "pack: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    shard_images_free(&im);
}

uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    CU_ASSERT_FATAL(fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

void write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(b, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }
