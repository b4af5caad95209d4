/* ckpt.c - checkpoint files (format version 4; 2 and 3 still read): the whole training state in
 * one versioned, checksummed file, written atomically so a crash never
 * leaves a file that looks whole, and read without trusting a byte of it.
 * Layout (little-endian, docs/checkpoint-format.md has the table):
 *   header (256 bytes) | params (nparams f32) | target (nenc f32)
 *   | adam m (nparams f32) | adam v (nparams f32) | crc32 of all before (u32)
 * The header is (de)serialised field by field at fixed offsets, so the file
 * does not depend on the compiler's struct layout or the host's byte order.
 * Only zlib and libc: the fuzzer builds this file alone. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "jepa.h"

#define CKPT_MAGIC "JEPACKPT"
#define CKPT_MAX_PARAMS (1ull << 40) /* bounds every size computed from the header */
/* reader state of versions 2 and 3: the per-rank order of older builds */
#define CKPT_READER_SHR1 0x53485231u

const char *const ckpt_model_keys[CKPT_MODEL_KEYS] = {
    "model.img_size", "model.channels", "model.patch",      "model.width",
    "model.depth",    "model.heads",    "model.mlp_ratio",  "model.pred_width",
    "model.pred_depth", "model.pred_heads",
};

uint64_t jepa_hash_floats(const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* ---------------------------------------------------------------- header */
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(p, u);
}
static void put_f64(uint8_t *p, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(p, u);
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static float get_f32(const uint8_t *p) {
    uint32_t u = get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}
static double get_f64(const uint8_t *p) {
    uint64_t u = get_u64(p);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* field offsets: the table in docs/checkpoint-format.md */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_BYTES = 12, H_NPARAMS = 16, H_NENC = 24,
    H_NTENSORS = 32, H_WORLD = 36, H_MODEL_HASH = 40, H_TRAIN_HASH = 48, H_SEED = 56,
    H_STEP = 64, H_TOTAL = 72, H_SEEN = 80, H_MEAN = 88, H_STD = 92, H_MODEL = 96,
    H_READER = 136, H_LOG_SUM = 192, H_LOG_COUNT = 200, H_LAST_LOSS = 208,
    H_LAST_STD = 216, H_TRAIN_S = 224, H_OBJECTIVE = 232, H_REPLAN_STEP = 248, H_REPLAN_P = 252,
    H_RESERVED = 256,
};
_Static_assert(H_OBJECTIVE + CKPT_OBJECTIVE_MAX == H_REPLAN_STEP, "objective name is 16 bytes");
_Static_assert(H_RESERVED <= CKPT_HEADER_BYTES, "header fields fit");
_Static_assert(H_MODEL + 4 * CKPT_MODEL_KEYS == H_READER, "model config is 10 i32");
_Static_assert(H_READER + 56 == H_LOG_SUM, "reader state is 56 bytes");
_Static_assert(sizeof(shard_reader_state) == 56, "shard_reader_state is 56 bytes");

static void header_pack(uint8_t *h, const ckpt_meta *m) {
    memset(h, 0, CKPT_HEADER_BYTES);
    memcpy(h + H_MAGIC, CKPT_MAGIC, 8);
    put_u32(h + H_VERSION, CKPT_VERSION);
    put_u32(h + H_HEADER_BYTES, CKPT_HEADER_BYTES);
    put_u64(h + H_NPARAMS, m->nparams);
    put_u64(h + H_NENC, m->nenc);
    put_u32(h + H_NTENSORS, m->ntensors);
    put_u32(h + H_WORLD, m->world);
    put_u64(h + H_MODEL_HASH, m->model_hash);
    put_u64(h + H_TRAIN_HASH, m->train_hash);
    put_u64(h + H_SEED, m->seed);
    put_u64(h + H_STEP, (uint64_t)m->step);
    put_u64(h + H_TOTAL, (uint64_t)m->total_steps);
    put_u64(h + H_SEEN, (uint64_t)m->images_seen);
    put_f32(h + H_MEAN, m->norm_mean);
    put_f32(h + H_STD, m->norm_std);
    for (int i = 0; i < CKPT_MODEL_KEYS; i++) put_u32(h + H_MODEL + 4 * i, (uint32_t)m->model[i]);
    const shard_reader_state *r = &m->reader;
    uint8_t *p = h + H_READER;
    put_u32(p, r->version);
    put_u32(p + 4, r->world);
    put_u32(p + 8, r->global_batch);
    put_u32(p + 12, r->shuffle_buffer);
    put_u64(p + 16, r->seed);
    put_u64(p + 24, r->epoch);
    put_u64(p + 32, r->batch_in_epoch);
    put_u64(p + 40, r->records);
    put_u64(p + 48, r->fingerprint);
    put_f64(h + H_LOG_SUM, m->log_loss_sum);
    put_u64(h + H_LOG_COUNT, (uint64_t)m->log_count);
    put_f64(h + H_LAST_LOSS, m->last_loss);
    put_f64(h + H_LAST_STD, m->last_target_std);
    put_f64(h + H_TRAIN_S, m->train_s);
    memcpy(h + H_OBJECTIVE, m->objective, strnlen(m->objective, CKPT_OBJECTIVE_MAX - 1));
    /* zero in older files; train.c re-plans only below 2^32 steps */
    put_u32(h + H_REPLAN_STEP, (uint32_t)m->replan_step);
    put_f32(h + H_REPLAN_P, m->replan_progress);
}

static void header_unpack(ckpt_meta *m, const uint8_t *h) {
    memset(m, 0, sizeof *m);
    m->nparams = get_u64(h + H_NPARAMS);
    m->nenc = get_u64(h + H_NENC);
    m->ntensors = get_u32(h + H_NTENSORS);
    m->world = get_u32(h + H_WORLD);
    m->model_hash = get_u64(h + H_MODEL_HASH);
    m->train_hash = get_u64(h + H_TRAIN_HASH);
    m->seed = get_u64(h + H_SEED);
    m->step = (int64_t)get_u64(h + H_STEP);
    m->total_steps = (int64_t)get_u64(h + H_TOTAL);
    m->images_seen = (int64_t)get_u64(h + H_SEEN);
    m->norm_mean = get_f32(h + H_MEAN);
    m->norm_std = get_f32(h + H_STD);
    for (int i = 0; i < CKPT_MODEL_KEYS; i++) m->model[i] = (int32_t)get_u32(h + H_MODEL + 4 * i);
    shard_reader_state *r = &m->reader;
    const uint8_t *p = h + H_READER;
    r->version = get_u32(p);
    r->world = get_u32(p + 4);
    r->global_batch = get_u32(p + 8); /* versions 2, 3: the per-rank batch */
    r->shuffle_buffer = get_u32(p + 12);
    r->seed = get_u64(p + 16);
    r->epoch = get_u64(p + 24);
    r->batch_in_epoch = get_u64(p + 32);
    r->records = get_u64(p + 40);
    r->fingerprint = get_u64(p + 48);
    m->log_loss_sum = get_f64(h + H_LOG_SUM);
    m->log_count = (int64_t)get_u64(h + H_LOG_COUNT);
    m->last_loss = get_f64(h + H_LAST_LOSS);
    m->last_target_std = get_f64(h + H_LAST_STD);
    m->train_s = get_f64(h + H_TRAIN_S);
    m->replan_step = get_u32(h + H_REPLAN_STEP);
    m->replan_progress = get_f32(h + H_REPLAN_P);
    memcpy(m->objective, h + H_OBJECTIVE, CKPT_OBJECTIVE_MAX);
    if (get_u32(h + H_VERSION) == 2) /* version 2 had only I-JEPA; those bytes were zero */
        snprintf(m->objective, sizeof m->objective, "ijepa");
}

/* A name is lower-case letters, digits and '_', NUL-padded. */
static int objective_name_ok(const char *p) {
    size_t n = strnlen(p, CKPT_OBJECTIVE_MAX);
    if (n == 0 || n == CKPT_OBJECTIVE_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_')) return 0;
    for (size_t i = n; i < CKPT_OBJECTIVE_MAX; i++)
        if (p[i]) return 0;
    return 1;
}

/* Bytes the whole file must have, for a header that passed its range checks. */
static uint64_t file_bytes(const ckpt_meta *m) {
    return CKPT_HEADER_BYTES + 4 * (3 * m->nparams + m->nenc) + 4;
}

/* ----------------------------------------------------------------- write */
static int write_all(FILE *f, const void *p, size_t n, uLong *crc) {
    const unsigned char *b = p;
    while (n) { /* crc32 takes uInt lengths: feed it in chunks */
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        *crc = crc32(*crc, b, (uInt)k);
        if (fwrite(b, 1, k, f) != k) return -1;
        b += k;
        n -= k;
    }
    return 0;
}

/* shard_fsync_dir_of's own copy: fuzz-ckpt compiles this file alone */
static int fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* shard_tmp_commit's steps written out, not the call: fuzz-ckpt compiles
 * this file alone; and a directory fsync that fails is an error here. */
int ckpt_save(const char *path, const jepa_model *m, const ckpt_meta *meta, char *err,
              size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    ckpt_meta mm = *meta;
    mm.nparams = m->nparams;
    mm.nenc = m->nenc;
    mm.ntensors = (uint32_t)m->ntensors;
    uint8_t h[CKPT_HEADER_BYTES];
    header_pack(h, &mm);
    uLong crc = crc32(0L, Z_NULL, 0);
    int bad = write_all(f, h, sizeof h, &crc) ||
              write_all(f, m->params, sizeof(float) * m->nparams, &crc) ||
              write_all(f, m->target, sizeof(float) * m->nenc, &crc) ||
              write_all(f, m->adam_m, sizeof(float) * m->nparams, &crc) ||
              write_all(f, m->adam_v, sizeof(float) * m->nparams, &crc);
    uint8_t c32[4];
    put_u32(c32, (uint32_t)crc);
    bad = bad || fwrite(c32, 4, 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
        unlink(tmp);
        return -1;
    }
    /* the rename is durable only once the directory entry is */
    if (fsync_dir_of(path) != 0) {
        snprintf(err, errlen, "cannot fsync the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ read */
static int read_all(FILE *f, void *p, size_t n, uLong *crc) {
    unsigned char *b = p;
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        if (fread(b, 1, k, f) != k) return -1;
        *crc = crc32(*crc, b, (uInt)k);
        b += k;
        n -= k;
    }
    return 0;
}

static int finite_f(double v) { return isfinite(v); }

int ckpt_read_meta(FILE *f, const char *name, ckpt_meta *got, char *err, size_t errlen) {
    uint8_t h[CKPT_HEADER_BYTES];
    size_t n = fread(h, 1, 16, f); /* magic, version, header size */
    if (n < 8 && ferror(f)) { /* EISDIR for a directory: not a short file */
        snprintf(err, errlen, "cannot read %s: %s", name, strerror(errno));
        return -1;
    }
    if (n < 8) {
        snprintf(err, errlen, "%s: truncated header (%zu of %d bytes)", name, n, CKPT_HEADER_BYTES);
        return -1;
    }
    if (memcmp(h + H_MAGIC, CKPT_MAGIC, 8)) {
        snprintf(err, errlen, "%s: not a jepa-mpi checkpoint (bad magic)", name);
        return -1;
    }
    if (n < 16) {
        snprintf(err, errlen, "%s: truncated header (%zu of %d bytes)", name, n, CKPT_HEADER_BYTES);
        return -1;
    }
    uint32_t version = get_u32(h + H_VERSION), hb = get_u32(h + H_HEADER_BYTES);
    if (version < 2 || version > CKPT_VERSION || hb != CKPT_HEADER_BYTES) {
        snprintf(err, errlen,
                 "%s: checkpoint version %u (header %u bytes) not supported: this build reads "
                 "versions 2 to %u",
                 name, version, hb, CKPT_VERSION);
        return -1;
    }
    n += fread(h + 16, 1, CKPT_HEADER_BYTES - 16, f);
    if (n < CKPT_HEADER_BYTES) {
        snprintf(err, errlen, "%s: truncated header (%zu of %d bytes)", name, n, CKPT_HEADER_BYTES);
        return -1;
    }
    ckpt_meta m;
    header_unpack(&m, h);
    const char *what = NULL;
    if (m.nparams < 1 || m.nparams > CKPT_MAX_PARAMS) what = "nparams";
    else if (m.nenc > m.nparams || (version == 2 && m.nenc < 1)) what = "nenc";
    else if (m.ntensors < 1 || m.ntensors > (1u << 20)) what = "tensor count";
    else if (m.world < 1 || m.world > (1u << 24)) what = "world size";
    else if (m.total_steps < 1 || m.total_steps > (INT64_C(1) << 62)) what = "total steps";
    else if (m.step < 0 || m.step > m.total_steps) what = "step";
    else if (m.images_seen < 0) what = "images seen";
    else if (!finite_f(m.norm_mean) || !finite_f(m.norm_std) || !(m.norm_std > 0)) what = "pixel normalisation";
    else if (m.log_count < 0 || m.log_count > m.step || !finite_f(m.log_loss_sum)) what = "log interval";
    else if (!finite_f(m.last_loss) || !finite_f(m.last_target_std)) what = "last loss";
    else if (!finite_f(m.train_s) || m.train_s < 0) what = "training seconds";
    else if (m.reader.version != (version >= 4 ? SHARD_STATE_VERSION : CKPT_READER_SHR1) ||
             m.reader.world != m.world || m.reader.global_batch < 1)
        what = "reader state";
    else if (!objective_name_ok(m.objective)) what = "objective name";
    else if (m.replan_step > m.step || !finite_f(m.replan_progress) ||
             (m.replan_step ? !(m.replan_progress > 0 && m.replan_progress < 1)
                            : m.replan_progress != 0))
        what = "re-plan";
    for (int i = 0; !what && i < CKPT_MODEL_KEYS; i++)
        if (m.model[i] < 1) what = ckpt_model_keys[i];
    for (int i = H_RESERVED; !what && i < CKPT_HEADER_BYTES; i++)
        if (h[i]) what = "reserved bytes (not zero)";
    if (what) {
        snprintf(err, errlen, "%s: corrupt header: %s out of range", name, what);
        return -1;
    }
    /* the length the header implies, before any read it sizes */
    off_t here = ftello(f);
    if (here >= 0 && fseeko(f, 0, SEEK_END) == 0) {
        off_t size = ftello(f);
        if (size >= 0 && (uint64_t)size != file_bytes(&m)) {
            snprintf(err, errlen, "%s: %s: %lld bytes, the header implies %llu", name,
                     (uint64_t)size < file_bytes(&m) ? "truncated" : "trailing bytes",
                     (long long)size, (unsigned long long)file_bytes(&m));
            return -1;
        }
        if (fseeko(f, here, SEEK_SET) != 0) {
            snprintf(err, errlen, "%s: cannot seek: %s", name, strerror(errno));
            return -1;
        }
    }
    *got = m;
    return 0;
}

/* The job's values against the file's: a sound file of another job. */
static int check_want(const char *name, const jepa_model *mod, const ckpt_meta *m,
                      const ckpt_meta *want, char *err, size_t errlen) {
    if (want && want->objective[0] && strcmp(want->objective, m->objective)) {
        snprintf(err, errlen,
                 "%s: written by a run of objective %s, the spec trains objective %s: resume "
                 "with objective: %s, or start a new run.dir",
                 name, m->objective, want->objective, m->objective);
        return -1;
    }
    if (want && want->model_hash) {
        for (int i = 0; i < CKPT_MODEL_KEYS; i++)
            if (m->model[i] != want->model[i]) {
                snprintf(err, errlen,
                         "%s: written for another model config (%s is %d in the checkpoint, %d "
                         "in the spec)",
                         name, ckpt_model_keys[i], m->model[i], want->model[i]);
                return -1;
            }
        if (m->model_hash != want->model_hash) {
            snprintf(err, errlen,
                     "%s: written for another model config (hash %016llx, spec %016llx)", name,
                     (unsigned long long)m->model_hash, (unsigned long long)want->model_hash);
            return -1;
        }
    }
    if (m->nparams != mod->nparams || m->nenc != mod->nenc ||
        m->ntensors != (uint32_t)mod->ntensors) {
        snprintf(err, errlen,
                 "%s: model shape differs from the spec (%llu parameters in file, %zu expected): "
                 "a key that sizes the model (model.*, or the objective's own, e.g. "
                 "world.embed_dim) differs from the run that wrote it",
                 name, (unsigned long long)m->nparams, mod->nparams);
        return -1;
    }
    /* a resume (want->world set) on any world size that divides the global batch */
    if (want && want->world && m->reader.version != SHARD_STATE_VERSION) {
        snprintf(err, errlen,
                 "%s: holds the data position of the per-rank reader of older builds "
                 "(checkpoint version 3 or older), which this build's data order cannot "
                 "continue: evaluate it with jepa-eval, or start a new run.dir",
                 name);
        return -1;
    }
    if (want && want->world && m->reader.global_batch % want->world != 0) {
        snprintf(err, errlen,
                 "%s: global batch %u (written by %u rank%s) does not divide by %u ranks: "
                 "resume on a number of ranks that divides %u",
                 name, m->reader.global_batch, m->world, m->world == 1 ? "" : "s", want->world,
                 m->reader.global_batch);
        return -1;
    }
    if (want && want->train_hash && m->train_hash != want->train_hash) {
        snprintf(err, errlen,
                 "%s: written with other training settings (seed, train.batch_per_rank, "
                 "data.shuffle_buffer, optim.*, ema.*, mask.* or loss.* differ): resume with "
                 "the run's spec.resolved.yaml",
                 name);
        return -1;
    }
    return 0;
}

int ckpt_load_stream(FILE *f, const char *name, jepa_model *mod, const ckpt_meta *want,
                     ckpt_meta *got, char *err, size_t errlen) {
    ckpt_meta m;
    if (ckpt_read_meta(f, name, &m, err, errlen)) return CKPT_ERR_CORRUPT;
    /* pass 1: the checksum over everything, before any field is believed */
    uint8_t h[CKPT_HEADER_BYTES], buf[1 << 16], c32[4];
    if (fseeko(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot seek: %s", name, strerror(errno));
        return CKPT_ERR_CORRUPT;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t left = file_bytes(&m) - 4;
    while (left) {
        size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
        if (fread(buf, 1, k, f) != k) {
            snprintf(err, errlen, "%s: truncated (%llu bytes short)", name,
                     (unsigned long long)left);
            return CKPT_ERR_CORRUPT;
        }
        crc = crc32(crc, buf, (uInt)k);
        left -= k;
    }
    if (fread(c32, 1, 4, f) != 4) {
        snprintf(err, errlen, "%s: truncated (missing checksum)", name);
        return CKPT_ERR_CORRUPT;
    }
    if (fgetc(f) != EOF) {
        snprintf(err, errlen, "%s: trailing bytes after the checksum", name);
        return CKPT_ERR_CORRUPT;
    }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* let the fuzzer past the door */
    if (get_u32(c32) != (uint32_t)crc) {
        snprintf(err, errlen, "%s: checksum mismatch (file %08x, computed %08x): corrupt", name,
                 get_u32(c32), (unsigned)crc);
        return CKPT_ERR_CORRUPT;
    }
#endif
    if (check_want(name, mod, &m, want, err, errlen)) return CKPT_ERR_MISMATCH;
    /* pass 2: the state into the model, checksummed again (the file could
     * have changed between the passes) */
    uLong crc2 = crc32(0L, Z_NULL, 0);
    if (fseeko(f, 0, SEEK_SET) != 0 || read_all(f, h, sizeof h, &crc2) ||
        read_all(f, mod->params, sizeof(float) * mod->nparams, &crc2) ||
        read_all(f, mod->target, sizeof(float) * mod->nenc, &crc2) ||
        read_all(f, mod->adam_m, sizeof(float) * mod->nparams, &crc2) ||
        read_all(f, mod->adam_v, sizeof(float) * mod->nparams, &crc2) || crc2 != crc) {
        snprintf(err, errlen, "%s: changed while being read", name);
        return CKPT_ERR_CORRUPT;
    }
    *got = m;
    return CKPT_OK;
}

int ckpt_load(const char *path, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
              char *err, size_t errlen) {
    FILE *f = spec_fopen_regular(path, err, errlen); /* a FIFO: refused, never waited on */
    if (!f) return CKPT_ERR_CORRUPT;
    int rc = ckpt_load_stream(f, path, m, want, got, err, errlen);
    fclose(f);
    return rc;
}
