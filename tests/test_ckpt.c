/* test_ckpt.c - checkpoint format: round-trip, truncation at every region,
 * flipped bytes anywhere, wrong magic, version and model config, and that a
 * failed save leaves no file behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jepa.h"
#include "testutil.h"

static char dir[256];

static void small_model(jepa_model *m, uint64_t seed, int width) {
    jepa_spec s;
    spec_defaults(&s);
    s.model.img_size = 8;
    s.model.patch = 2;
    s.model.width = width;
    s.model.depth = 1;
    s.model.heads = 2;
    s.model.pred_width = 8;
    s.model.pred_depth = 1;
    s.model.pred_heads = 2;
    jepa_dims d;
    char err[256];
    JEPA_ASSERT(jepa_dims_from_spec(&d, &s, err, sizeof err) == 0);
    jepa_model_init(m, &d, seed, 2, 1, 4, 1);
    jepa_rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < m->nparams; i++) {
        m->adam_m[i] = (float)rng_normal(&r);
        m->adam_v[i] = (float)rng_uniform(&r);
    }
    for (size_t i = 0; i < m->nenc; i++) m->target[i] = (float)rng_normal(&r);
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *slurp(const char *path, long *n) {
    *n = file_size(path);
    if (*n <= 0 || *n > (1L << 30)) return NULL;
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc((size_t)*n);
    if (!f || !buf || fread(buf, 1, (size_t)*n, f) != (size_t)*n) {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

static void save_reference(const char *path, jepa_model *m, ckpt_meta *meta) {
    char err[512];
    small_model(m, 11, 16);
    ckpt_meta mm = {1234, 5000, 0xfeedULL, 7, 158000, 0.286f, 0.353f};
    *meta = mm;
    CU_ASSERT_FATAL(ckpt_save(path, m, meta, err, sizeof err) == 0);
}

static void test_roundtrip(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb = {0};
    save_reference(path, &a, &ma);
    CU_ASSERT_EQUAL(file_size(path), (long)(128 + 4 * (3 * a.nparams + a.nenc) + 4));
    small_model(&b, 99, 16); /* different contents, same shape */
    mb.model_hash = 0xfeedULL;
    CU_ASSERT_FATAL(ckpt_load(path, &b, &mb, err, sizeof err) == 0);
    CU_ASSERT(!memcmp(a.params, b.params, 4 * a.nparams));
    CU_ASSERT(!memcmp(a.target, b.target, 4 * a.nenc));
    CU_ASSERT(!memcmp(a.adam_m, b.adam_m, 4 * a.nparams));
    CU_ASSERT(!memcmp(a.adam_v, b.adam_v, 4 * a.nparams));
    CU_ASSERT_EQUAL(mb.step, 1234);
    CU_ASSERT_EQUAL(mb.total_steps, 5000);
    CU_ASSERT_EQUAL(mb.seed, 7);
    CU_ASSERT_EQUAL(mb.images_seen, 158000);
    CU_ASSERT_EQUAL(mb.norm_mean, 0.286f);
    CU_ASSERT_EQUAL(mb.norm_std, 0.353f);
    CU_ASSERT_EQUAL(jepa_hash_floats(a.params, a.nparams), jepa_hash_floats(b.params, b.nparams));
    /* no temp file left behind */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/a.ckpt.tmp.%d", dir, (int)getpid());
    CU_ASSERT(access(tmp, F_OK) != 0);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* Every truncation length (sampled densely) fails with a message naming the file. */
static void test_truncation(void) {
    char path[300], cut[300], err[512];
    snprintf(path, sizeof path, "%s/t.ckpt", dir);
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    FILE *f;
    small_model(&b, 1, 16);
    int tried = 0, failed = 0;
    for (long len = 0; len < n; len += (len < 200 ? 1 : 97)) {
        f = fopen(cut, "wb");
        fwrite(buf, 1, (size_t)len, f);
        fclose(f);
        ckpt_meta mb = {0};
        tried++;
        if (ckpt_load(cut, &b, &mb, err, sizeof err) != 0 && strstr(err, cut)) failed++;
    }
    CU_ASSERT_EQUAL(failed, tried);
    /* one byte too many is refused too */
    f = fopen(cut, "wb");
    fwrite(buf, 1, (size_t)n, f);
    fputc(0, f);
    fclose(f);
    ckpt_meta mb = {0};
    CU_ASSERT(ckpt_load(cut, &b, &mb, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "trailing") != NULL);
    free(buf);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* A flipped byte anywhere (header, each state region, checksum) is caught. */
static void test_corruption(void) {
    char path[300], bad[300], err[512];
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    FILE *f;
    small_model(&b, 1, 16);
    long offs[] = {0, 7, 9, 40, 100, 128, 128 + 4 * (long)a.nparams - 1,
                   128 + 4 * (long)(a.nparams + a.nenc) + 3, n - 20, n - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        buf[offs[i]] ^= 0x10;
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)n, f);
        fclose(f);
        buf[offs[i]] ^= 0x10;
        ckpt_meta mb = {0};
        int rc = ckpt_load(bad, &b, &mb, err, sizeof err);
        CU_ASSERT(rc != 0);
        CU_ASSERT(strstr(err, bad) != NULL);
        if (rc == 0) printf("\n    flip at %ld not detected", offs[i]);
    }
    /* wrong magic reads as such */
    memcpy(buf, "NOTCKPT!", 8);
    f = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)n, f);
    fclose(f);
    ckpt_meta mb = {0};
    CU_ASSERT(ckpt_load(bad, &b, &mb, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "bad magic") != NULL);
    free(buf);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

static void test_wrong_config(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/w.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma;
    save_reference(path, &a, &ma);
    small_model(&b, 1, 32); /* another width: another shape */
    ckpt_meta mb = {0};
    CU_ASSERT(ckpt_load(path, &b, &mb, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "model shape differs") != NULL);
    jepa_model_free(&b);
    small_model(&b, 1, 16); /* same shape, the spec's model hash differs */
    mb.model_hash = 0xbeefULL;
    CU_ASSERT(ckpt_load(path, &b, &mb, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "another model config") != NULL);
    /* missing file */
    CU_ASSERT(ckpt_load("/nonexistent/x.ckpt", &b, &mb, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "/nonexistent/x.ckpt") != NULL);
    /* saving into a missing directory fails cleanly */
    CU_ASSERT(ckpt_save("/nonexistent/dir/x.ckpt", &a, &ma, err, sizeof err) != 0);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/jepa-test-ckpt-%d", (int)getpid());
    mkdir(dir, 0700);
    static const test_case cases[] = {
        {"roundtrip", test_roundtrip}, {"truncation", test_truncation},
        {"corruption", test_corruption}, {"wrong_config", test_wrong_config},
    };
    int rc = test_main("ckpt", cases, (int)(sizeof cases / sizeof cases[0]));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
