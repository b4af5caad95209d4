/* test_ckpt.c - checkpoint format v2 and a run directory's checkpoint set:
 * round trip of every field, the header bytes at the offsets the format doc
 * gives (read here by hand, not by the reader under test), truncation at
 * every length class, a flipped byte in every header byte and every state
 * region read as damage (never as "another config", which would stop the
 * fallback), wrong magic/version, another model/world/training config
 * refused, keep-K rotation, the latest pointer and fallback past a damaged
 * newest checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jepa.h"
#include "testutil.h"

static char dir[256];

static void small_spec(jepa_spec *s, int width) {
    spec_defaults(s);
    s->model.img_size = 8;
    s->model.patch = 2;
    s->model.width = width;
    s->model.depth = 1;
    s->model.heads = 2;
    s->model.pred_width = 8;
    s->model.pred_depth = 1;
    s->model.pred_heads = 2;
}

static void small_model(jepa_model *m, uint64_t seed, int width) {
    jepa_spec s;
    small_spec(&s, width);
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

/* The identity of the small spec's job (world 2) and made-up progress. */
static void reference_meta(ckpt_meta *meta, int64_t step) {
    jepa_spec s;
    small_spec(&s, 16);
    s.seed = 7;
    train_meta_init(meta, &s, 2);
    meta->step = step;
    meta->total_steps = 5000;
    meta->images_seen = 158000;
    meta->norm_mean = 0.286f;
    meta->norm_std = 0.353f;
    meta->reader.version = SHARD_STATE_VERSION;
    meta->reader.world = 2;
    meta->reader.global_batch = 64;
    meta->reader.shuffle_buffer = 8192;
    meta->reader.seed = 7;
    meta->reader.epoch = 3;
    meta->reader.batch_in_epoch = 17;
    meta->reader.records = 60000;
    meta->reader.fingerprint = 0x0123456789abcdefULL;
    meta->log_loss_sum = 1.25;
    meta->log_count = 3;
    meta->last_loss = 0.4375;
    meta->last_target_std = 0.75;
    meta->train_s = 61.5;
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

static void spit(const char *path, const unsigned char *buf, long n) {
    FILE *f = fopen(path, "wb");
    JEPA_ASSERT(f && fwrite(buf, 1, (size_t)n, f) == (size_t)n && fclose(f) == 0);
}

static void save_reference(const char *path, jepa_model *m, ckpt_meta *meta) {
    char err[512];
    small_model(m, 11, 16);
    reference_meta(meta, 1234);
    CU_ASSERT_FATAL(ckpt_save(path, m, meta, err, sizeof err) == 0);
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void test_roundtrip(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb;
    save_reference(path, &a, &ma);
    CU_ASSERT_EQUAL(file_size(path), (long)(256 + 4 * (3 * a.nparams + a.nenc) + 4));
    small_model(&b, 99, 16); /* different contents, same shape */
    CU_ASSERT_FATAL(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_OK);
    CU_ASSERT(!memcmp(a.params, b.params, 4 * a.nparams));
    CU_ASSERT(!memcmp(a.target, b.target, 4 * a.nenc));
    CU_ASSERT(!memcmp(a.adam_m, b.adam_m, 4 * a.nparams));
    CU_ASSERT(!memcmp(a.adam_v, b.adam_v, 4 * a.nparams));
    CU_ASSERT_EQUAL(mb.step, 1234);
    CU_ASSERT_EQUAL(mb.total_steps, 5000);
    CU_ASSERT_EQUAL(mb.seed, 7);
    CU_ASSERT_EQUAL(mb.world, 2);
    CU_ASSERT_EQUAL(mb.images_seen, 158000);
    CU_ASSERT_EQUAL(mb.norm_mean, 0.286f);
    CU_ASSERT_EQUAL(mb.norm_std, 0.353f);
    CU_ASSERT_EQUAL(mb.model_hash, ma.model_hash);
    CU_ASSERT_EQUAL(mb.train_hash, ma.train_hash);
    CU_ASSERT(!memcmp(mb.model, ma.model, sizeof ma.model));
    CU_ASSERT(!memcmp(&mb.reader, &ma.reader, sizeof ma.reader));
    CU_ASSERT_EQUAL(mb.log_loss_sum, 1.25);
    CU_ASSERT_EQUAL(mb.log_count, 3);
    CU_ASSERT_EQUAL(mb.last_loss, 0.4375);
    CU_ASSERT_EQUAL(mb.last_target_std, 0.75);
    CU_ASSERT_EQUAL(mb.train_s, 61.5);
    CU_ASSERT_EQUAL(mb.nparams, a.nparams);
    CU_ASSERT_EQUAL(mb.nenc, a.nenc);
    CU_ASSERT_EQUAL(jepa_hash_floats(a.params, a.nparams), jepa_hash_floats(b.params, b.nparams));
    /* no temp file left behind */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s/a.ckpt.tmp.%d", dir, (int)getpid());
    CU_ASSERT(access(tmp, F_OK) != 0);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* The bytes where docs/checkpoint-format.md says they are, read by hand. */
static void test_layout(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/l.ckpt", dir);
    jepa_model a;
    ckpt_meta ma;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *b = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT(!memcmp(b, "JEPACKPT", 8));
    CU_ASSERT_EQUAL(le(b + 8, 4), 4);
    CU_ASSERT_EQUAL(le(b + 12, 4), 256);
    CU_ASSERT_EQUAL(le(b + 16, 8), a.nparams);
    CU_ASSERT_EQUAL(le(b + 24, 8), a.nenc);
    CU_ASSERT_EQUAL(le(b + 32, 4), (uint64_t)a.ntensors);
    CU_ASSERT_EQUAL(le(b + 36, 4), 2);
    CU_ASSERT_EQUAL(le(b + 56, 8), 7);
    CU_ASSERT_EQUAL(le(b + 64, 8), 1234);
    CU_ASSERT_EQUAL(le(b + 72, 8), 5000);
    CU_ASSERT_EQUAL(le(b + 80, 8), 158000);
    CU_ASSERT_EQUAL(le(b + 96 + 4 * 3, 4), 16); /* model.width */
    CU_ASSERT_EQUAL(le(b + 136, 4), SHARD_STATE_VERSION);
    CU_ASSERT_EQUAL(le(b + 136 + 8, 4), 64); /* global batch */
    CU_ASSERT_EQUAL(le(b + 136 + 24, 8), 3);  /* reader epoch */
    CU_ASSERT_EQUAL(le(b + 136 + 32, 8), 17); /* batch in epoch */
    CU_ASSERT_EQUAL(le(b + 200, 8), 3);       /* log count */
    CU_ASSERT(!memcmp(b + 232, "ijepa\0\0\0\0\0\0\0\0\0\0\0", 16)); /* objective */
    float p0;
    memcpy(&p0, b + 256, 4); /* x86 and every target we build on are little-endian */
    CU_ASSERT_EQUAL(p0, a.params[0]);
    memcpy(&p0, b + 256 + 4 * a.nparams, 4);
    CU_ASSERT_EQUAL(p0, a.target[0]);
    free(b);
    jepa_model_free(&a);
}

/* Every truncation length class: inside the header (each byte), at and
 * around every region boundary, and sampled through the regions; each is
 * damage naming the file. */
static void test_truncation(void) {
    char path[300], cut[300], err[512];
    snprintf(path, sizeof path, "%s/t.ckpt", dir);
    snprintf(cut, sizeof cut, "%s/cut.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    small_model(&b, 1, 16);
    long P = 4 * (long)a.nparams, E = 4 * (long)a.nenc;
    long edges[] = {256, 256 + P, 256 + P + E, 256 + 2 * P + E, 256 + 3 * P + E, n};
    long lens[600];
    int nl = 0;
    for (long len = 0; len <= 300; len++) lens[nl++] = len;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (long d = -2; d <= 1; d++)
            if (edges[i] + d >= 0 && edges[i] + d < n) lens[nl++] = edges[i] + d;
    for (long len = 300; len < n && nl < 600; len += 997) lens[nl++] = len;
    int failed = 0;
    for (int i = 0; i < nl; i++) {
        spit(cut, buf, lens[i]);
        int rc = ckpt_load(cut, &b, &ma, &mb, err, sizeof err);
        if (rc == CKPT_ERR_CORRUPT && strstr(err, cut)) failed++;
        else printf("\n    truncation at %ld: rc %d (%s)", lens[i], rc, err);
    }
    CU_ASSERT_EQUAL(failed, nl);
    spit(cut, buf, n - 7);
    CU_ASSERT(ckpt_load(cut, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "truncated") != NULL);
    /* one byte too many is refused too */
    FILE *f = fopen(cut, "wb");
    fwrite(buf, 1, (size_t)n, f);
    fputc(0, f);
    fclose(f);
    CU_ASSERT(ckpt_load(cut, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "trailing") != NULL);
    /* a failed load leaves the model untouched */
    jepa_model_free(&b);
    small_model(&b, 1, 16);
    uint64_t before = jepa_hash_floats(b.params, b.nparams);
    spit(cut, buf, n - 1);
    CU_ASSERT(ckpt_load(cut, &b, &ma, &mb, err, sizeof err) != CKPT_OK);
    CU_ASSERT_EQUAL(jepa_hash_floats(b.params, b.nparams), before);
    free(buf);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* A flipped byte anywhere is damage (CKPT_ERR_CORRUPT), never "another
 * config": every header byte, the first/middle/last byte of every state
 * region, every checksum byte. */
static void test_corruption(void) {
    char path[300], bad[300], err[512];
    snprintf(path, sizeof path, "%s/c.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    small_model(&b, 1, 16);
    long P = 4 * (long)a.nparams, E = 4 * (long)a.nenc;
    long starts[] = {256, 256 + P, 256 + P + E, 256 + 2 * P + E}, lens[] = {P, E, P, P};
    long offs[300];
    int no = 0;
    for (long o = 0; o < 256; o++) offs[no++] = o;
    for (int r = 0; r < 4; r++) {
        offs[no++] = starts[r];
        offs[no++] = starts[r] + lens[r] / 2;
        offs[no++] = starts[r] + lens[r] - 1;
    }
    for (long o = n - 4; o < n; o++) offs[no++] = o;
    int caught = 0;
    for (int i = 0; i < no; i++) {
        buf[offs[i]] ^= 0x10;
        spit(bad, buf, n);
        buf[offs[i]] ^= 0x10;
        int rc = ckpt_load(bad, &b, &ma, &mb, err, sizeof err);
        if (rc == CKPT_ERR_CORRUPT && strstr(err, bad)) caught++;
        else printf("\n    flip at %ld: rc %d (%s)", offs[i], rc, rc ? err : "loaded");
    }
    CU_ASSERT_EQUAL(caught, no);
    /* wrong magic and wrong version read as such */
    memcpy(buf, "NOTCKPT!", 8);
    spit(bad, buf, n);
    CU_ASSERT(ckpt_load(bad, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "bad magic") != NULL);
    memcpy(buf, "JEPACKPT", 8);
    buf[8] = 1; /* a version-1 file */
    spit(bad, buf, n);
    CU_ASSERT(ckpt_load(bad, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "checkpoint version 1 ") && strstr(err, "not supported"));
    free(buf);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* Sound files of another job: refused as a mismatch naming what differs. */
static void test_wrong_config(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/w.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb, want;
    save_reference(path, &a, &ma);
    /* another width: named by key, with both values */
    jepa_spec s;
    small_spec(&s, 32);
    s.seed = 7;
    train_meta_init(&want, &s, 2);
    small_model(&b, 1, 32);
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "model.width is 16 in the checkpoint, 32 in the spec") != NULL);
    CU_ASSERT(strstr(err, path) != NULL);
    /* without the job's identity, the shape still decides */
    CU_ASSERT(ckpt_load(path, &b, NULL, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "model shape differs") != NULL);
    jepa_model_free(&b);
    small_model(&b, 1, 16);
    /* same shape, the model hash differs */
    want = ma;
    want.model_hash ^= 1;
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "another model config") != NULL);
    /* another world size: any that divides the global batch (64) resumes */
    want = ma;
    want.world = 1;
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_OK);
    want.world = 4;
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_OK);
    want.world = 3;
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "global batch 64 (written by 2 ranks) does not divide by 3 ranks") != NULL);
    CU_ASSERT(strchr(err, '\n') == NULL);
    /* other training settings: the hash follows optim.lr, not the thread count */
    small_spec(&s, 16);
    s.seed = 7;
    s.optim.lr *= 2;
    train_meta_init(&want, &s, 2);
    CU_ASSERT(want.train_hash != ma.train_hash);
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "other training settings") != NULL);
    small_spec(&s, 16);
    s.seed = 7;
    s.parallel.threads_per_rank = 5;
    train_meta_init(&want, &s, 2);
    CU_ASSERT_EQUAL(want.train_hash, ma.train_hash);
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_OK);
    /* another objective: refused in one line naming both */
    want = ma;
    snprintf(want.objective, sizeof want.objective, "lejepa");
    CU_ASSERT(ckpt_load(path, &b, &want, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "objective ijepa") && strstr(err, "objective lejepa"));
    CU_ASSERT(strchr(err, '\n') == NULL);
    /* missing file */
    CU_ASSERT(ckpt_load("/nonexistent/x.ckpt", &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "/nonexistent/x.ckpt") != NULL);
    /* saving into a missing directory fails cleanly */
    CU_ASSERT(ckpt_save("/nonexistent/dir/x.ckpt", &a, &ma, err, sizeof err) != 0);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* Version 2 (objective bytes zero) still loads, as objective ijepa, for an
 * evaluation; a resume of a version 2 or 3 file (the per-rank reader's
 * state) is refused in one line; a version-4 file of a model without an EMA
 * target (nenc 0) round-trips. */
static void test_versions(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/v.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb;
    save_reference(path, &a, &ma);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    /* a version-4 header with the old reader state is damage */
    memcpy(buf + 136, "1RHS", 4); /* "SHR1" little-endian */
    uLong crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(n - 4));
    for (int i = 0; i < 4; i++) buf[n - 4 + i] = (unsigned char)(crc >> (8 * i));
    spit(path, buf, n);
    small_model(&b, 1, 16);
    CU_ASSERT(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "reader state") != NULL);
    buf[8] = 2;
    memset(buf + 232, 0, 16);
    crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(n - 4));
    for (int i = 0; i < 4; i++) buf[n - 4 + i] = (unsigned char)(crc >> (8 * i));
    spit(path, buf, n);
    ckpt_meta ev = ma;
    ev.world = 0; /* an evaluation */
    CU_ASSERT(ckpt_load(path, &b, &ev, &mb, err, sizeof err) == CKPT_OK);
    CU_ASSERT_STRING_EQUAL(mb.objective, "ijepa");
    CU_ASSERT(!memcmp(a.params, b.params, sizeof(float) * a.nparams));
    CU_ASSERT(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_MISMATCH);
    CU_ASSERT(strstr(err, "per-rank reader of older builds") && strstr(err, path));
    CU_ASSERT(strchr(err, '\n') == NULL);
    /* objective bytes must be a clean name: a version-3 file with garbage there is corrupt */
    buf[8] = 3;
    memcpy(buf + 232, "IJ EPA", 6);
    crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(n - 4));
    for (int i = 0; i < 4; i++) buf[n - 4 + i] = (unsigned char)(crc >> (8 * i));
    spit(path, buf, n);
    CU_ASSERT(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "objective name") != NULL);
    free(buf);
    /* no EMA target: nenc 0, the file is 4 * 3 * nparams + header + crc */
    jepa_free(a.target);
    a.target = NULL;
    a.nenc = 0;
    snprintf(ma.objective, sizeof ma.objective, "lejepa");
    CU_ASSERT_FATAL(ckpt_save(path, &a, &ma, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(file_size(path), 256 + 12 * (long)a.nparams + 4);
    jepa_free(b.target);
    b.target = NULL;
    b.nenc = 0;
    memset(b.params, 0, sizeof(float) * b.nparams);
    CU_ASSERT(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_OK);
    CU_ASSERT_STRING_EQUAL(mb.objective, "lejepa");
    CU_ASSERT(!memcmp(a.params, b.params, sizeof(float) * a.nparams));
    CU_ASSERT(!memcmp(a.adam_v, b.adam_v, sizeof(float) * a.nparams));
    jepa_model_free(&a);
    jepa_model_free(&b);
}

static int exists(const char *run, int64_t step) {
    char p[400];
    ckpt_dir_path(p, sizeof p, run, step);
    return access(p, F_OK) == 0;
}

/* keep-K rotation, the latest pointer, fallback past a damaged newest. */
static void test_run_dir(void) {
    char run[300], p[400], err[512], got_path[400];
    snprintf(run, sizeof run, "%s/run", dir);
    mkdir(run, 0755);
    jepa_model a, b;
    ckpt_meta ma, mb;
    small_model(&a, 11, 16);
    small_model(&b, 1, 16);
    CU_ASSERT_EQUAL(ckpt_dir_any(run), 0);
    CU_ASSERT_EQUAL(ckpt_dir_load(run, &b, NULL, &mb, got_path, sizeof got_path, err, sizeof err), 1);
    uint64_t h8 = 0;
    for (int64_t st = 4; st <= 12; st += 4) {
        reference_meta(&ma, st);
        a.params[0] = (float)st; /* tell the files apart */
        if (st == 8) h8 = jepa_hash_floats(a.params, a.nparams);
        CU_ASSERT_FATAL(ckpt_dir_save(run, 2, &a, &ma, p, sizeof p, err, sizeof err) == 0);
    }
    CU_ASSERT(!exists(run, 4) && exists(run, 8) && exists(run, 12));
    CU_ASSERT_EQUAL(ckpt_dir_any(run), 1);
    long n;
    snprintf(p, sizeof p, "%s/latest", run);
    unsigned char *txt = slurp(p, &n);
    CU_ASSERT(txt && n == 31 && !memcmp(txt, "checkpoints/step-00000012.ckpt\n", 31));
    free(txt);
    /* the newest is damaged: warning, fallback to 8; 12 moved aside once accepted */
    ckpt_dir_path(p, sizeof p, run, 12);
    unsigned char *buf = slurp(p, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    buf[300] ^= 1;
    spit(p, buf, n);
    free(buf);
    reference_meta(&ma, 0);
    CU_ASSERT_EQUAL(ckpt_dir_load(run, &b, &ma, &mb, got_path, sizeof got_path, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mb.step, 8);
    CU_ASSERT_EQUAL(jepa_hash_floats(b.params, b.nparams), h8);
    ckpt_dir_path(p, sizeof p, run, 8);
    CU_ASSERT_STRING_EQUAL(got_path, p);
    CU_ASSERT(exists(run, 12)); /* the load changes nothing: the resume may yet be refused */
    ckpt_dir_tidy(run, mb.step); /* accepted */
    CU_ASSERT(!exists(run, 12));
    ckpt_dir_path(p, sizeof p, run, 12);
    strcat(p, ".corrupt");
    CU_ASSERT(access(p, F_OK) == 0);
    /* another job's checkpoints: refused, no fallback, nothing moved */
    ckpt_meta want = ma;
    want.world = 3;
    CU_ASSERT_EQUAL(ckpt_dir_load(run, &b, &want, &mb, got_path, sizeof got_path, err, sizeof err),
                    CKPT_ERR_MISMATCH);
    CU_ASSERT(exists(run, 8));
    /* resumed from 8 and saved 10: a later step (20, a discarded future)
     * is rotated out, the newest `keep` up to 10 stay */
    reference_meta(&ma, 20);
    CU_ASSERT(ckpt_dir_save(run, 2, &a, &ma, NULL, 0, err, sizeof err) == 0);
    reference_meta(&ma, 10);
    CU_ASSERT(ckpt_dir_save(run, 2, &a, &ma, NULL, 0, err, sizeof err) == 0);
    CU_ASSERT(exists(run, 8) && exists(run, 10) && !exists(run, 20));
    /* every one damaged: an error, nothing moved aside (a retry must not find
     * an empty directory and start over) */
    for (int64_t st = 8; st <= 10; st += 2) {
        ckpt_dir_path(p, sizeof p, run, st);
        CU_ASSERT(truncate(p, 100) == 0);
    }
    CU_ASSERT_EQUAL(ckpt_dir_load(run, &b, &ma, &mb, got_path, sizeof got_path, err, sizeof err),
                    CKPT_ERR_CORRUPT);
    CU_ASSERT(strstr(err, "none of its 2 checkpoints") != NULL);
    CU_ASSERT(exists(run, 8) && exists(run, 10));
    jepa_model_free(&a);
    jepa_model_free(&b);
}

/* A time budget's re-plan (train.c step_replan): step and progress round
 * trip at header bytes 248 (u32) and 252 (f32); values a re-plan cannot
 * leave (after the checkpoint's step, progress outside (0, 1), progress
 * without a step) are refused as a corrupt header naming the file. */
static void test_replan_fields(void) {
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/r.ckpt", dir);
    jepa_model a, b;
    ckpt_meta ma, mb;
    small_model(&a, 11, 16);
    small_model(&b, 5, 16);
    reference_meta(&ma, 1234);
    ma.replan_step = 500;
    ma.replan_progress = 0.125f;
    CU_ASSERT_FATAL(ckpt_save(path, &a, &ma, err, sizeof err) == 0);
    CU_ASSERT_FATAL(ckpt_load(path, &b, &ma, &mb, err, sizeof err) == CKPT_OK);
    CU_ASSERT_EQUAL(mb.replan_step, 500);
    CU_ASSERT_EQUAL(mb.replan_progress, 0.125f);
    long n;
    unsigned char *buf = slurp(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(le(buf + 248, 4), 500);
    CU_ASSERT_EQUAL(le(buf + 252, 4), 0x3e000000); /* 0.125f */
    free(buf);
    const struct { int64_t step; float p; } bad[] = {{1235, 0.5f}, {500, 0.0f}, {500, 1.0f},
                                                     {500, -0.25f}, {0, 0.5f}, {500, NAN}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ma.replan_step = bad[i].step;
        ma.replan_progress = bad[i].p;
        CU_ASSERT_FATAL(ckpt_save(path, &a, &ma, err, sizeof err) == 0);
        int rc = ckpt_load(path, &b, &ma, &mb, err, sizeof err);
        CU_ASSERT(rc == CKPT_ERR_CORRUPT && strstr(err, path) && strstr(err, "re-plan"));
        if (rc != CKPT_ERR_CORRUPT) printf("\n    re-plan (%lld, %g) accepted", (long long)bad[i].step, bad[i].p);
    }
    jepa_model_free(&a);
    jepa_model_free(&b);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/jepa-test-ckpt-%d", (int)getpid());
    mkdir(dir, 0700);
    static const test_case cases[] = {
        {"roundtrip", test_roundtrip},       {"layout", test_layout},
        {"truncation", test_truncation},     {"corruption", test_corruption},
        {"wrong_config", test_wrong_config}, {"run_dir", test_run_dir},
        {"versions", test_versions},
        {"replan_fields", test_replan_fields},
    };
    int rc = test_main("ckpt", cases, (int)(sizeof cases / sizeof cases[0]));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
