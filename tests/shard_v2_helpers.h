/* shard_v2_helpers.h - small helpers shared by the record (v2) suites
 * test_shard_v2.c and test_shard_v2_corrupt.c. Include after defining
 * `static char tmpdir[]` and `static char err[SHARD_ERR_MAX]`; everything
 * here is static inline, so a suite that uses part of it stays -Wall clean. */
#ifndef JEPA_SHARD_V2_HELPERS_H
#define JEPA_SHARD_V2_HELPERS_H

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_internal.h"
#include "shard_testlib.h"
#include "testutil.h"

static inline void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static inline void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int k = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof p) continue; /* no such paths under our tmpdir */
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline uint8_t *read_file(const char *path, size_t *n) {
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

static inline void write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(b, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

/* staging directories (".NAME.partial-PID") left in tmpdir */
static inline int partial_dirs_left(void) { return tl_partial_dirs(tmpdir); }

static inline int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }
static inline int one_line(const char *s) { return *s && !strchr(s, '\n'); }

/* A fresh world dataset tmpdir/name of n records (T steps, side x side). */
static inline void world(char *dir, size_t dn, const char *name, uint64_t n, uint32_t T, uint32_t side,
                  uint32_t rps, uint32_t rpf) {
    path_of(dir, dn, name);
    rm_tree(dir);
    int rc = tl_world_write(dir, n, T, side, rps, rpf, err, sizeof err);
    if (rc) fprintf(stderr, "write: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
}

static inline float f32_at(const uint8_t *p) {
    uint32_t u = shard_get32(p);
    float x;
    memcpy(&x, &u, 4);
    return x;
}
/* Bytes of record rec that differ from record i of the world schema. */
static inline uint64_t record_diff(const shard_schema *s, uint64_t i, const uint8_t *rec) {
    size_t rb = shard_schema_record_bytes(s);
    uint8_t *want = malloc(rb);
    tl_world_record(s, i, want);
    uint64_t bad = 0;
    for (size_t j = 0; j < rb; j++) bad += want[j] != rec[j];
    free(want);
    return bad;
}

static inline void collect(void *ctx, const char *line) {
    char *buf = ctx;
    if (!*buf) snprintf(buf, SHARD_ERR_MAX, "%s", line);
}

#endif
