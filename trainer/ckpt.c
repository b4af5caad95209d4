/* ckpt.c - checkpoint files: the full training state in one versioned,
 * checksummed file, written atomically so a crash never leaves a file that
 * looks whole. Layout (little-endian, see docs/checkpoint-format.md):
 *   header (ckpt_header, 128 bytes) | params (nparams f32) | target (nenc f32)
 *   | adam m (nparams f32) | adam v (nparams f32) | crc32 of all before (u32) */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "jepa.h"

#define CKPT_MAGIC "JEPACKPT"
#define CKPT_VERSION 1u

typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t nparams, nenc, model_hash, seed;
    int64_t step, total_steps, images_seen;
    float norm_mean, norm_std;
    uint32_t ntensors, reserved0;
    uint8_t pad[128 - 8 - 8 - 32 - 24 - 8 - 8];
} ckpt_header;
_Static_assert(sizeof(ckpt_header) == 128, "checkpoint header is 128 bytes");

uint64_t jepa_hash_floats(const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int write_all(FILE *f, const void *p, size_t n, uLong *crc) {
    *crc = crc32(*crc, p, (uInt)0);
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

static int fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ckpt_save(const char *path, const jepa_model *m, const ckpt_meta *meta, char *err,
              size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    ckpt_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION;
    h.header_bytes = sizeof h;
    h.nparams = m->nparams;
    h.nenc = m->nenc;
    h.model_hash = meta->model_hash;
    h.seed = meta->seed;
    h.step = meta->step;
    h.total_steps = meta->total_steps;
    h.images_seen = meta->images_seen;
    h.norm_mean = meta->norm_mean;
    h.norm_std = meta->norm_std;
    h.ntensors = (uint32_t)m->ntensors;
    uLong crc = crc32(0L, Z_NULL, 0);
    int bad = write_all(f, &h, sizeof h, &crc) ||
              write_all(f, m->params, sizeof(float) * m->nparams, &crc) ||
              write_all(f, m->target, sizeof(float) * m->nenc, &crc) ||
              write_all(f, m->adam_m, sizeof(float) * m->nparams, &crc) ||
              write_all(f, m->adam_v, sizeof(float) * m->nparams, &crc);
    uint32_t c32 = (uint32_t)crc;
    bad = bad || fwrite(&c32, 4, 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    fsync_dir_of(path);
    return 0;
}

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

int ckpt_load(const char *path, jepa_model *m, ckpt_meta *meta, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    ckpt_header h;
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = -1;
    if (read_all(f, &h, sizeof h, &crc)) {
        snprintf(err, errlen, "%s: truncated header (file shorter than %zu bytes)", path,
                 sizeof h);
    } else if (memcmp(h.magic, CKPT_MAGIC, 8)) {
        snprintf(err, errlen, "%s: not a jepa-mpi checkpoint (bad magic)", path);
    } else if (h.version != CKPT_VERSION || h.header_bytes != sizeof h) {
        snprintf(err, errlen, "%s: checkpoint version %u not supported (this build reads %u)",
                 path, h.version, CKPT_VERSION);
    } else if (h.nparams != m->nparams || h.nenc != m->nenc ||
               h.ntensors != (uint32_t)m->ntensors) {
        snprintf(err, errlen,
                 "%s: model shape differs from the spec (%llu parameters in file, %zu expected)",
                 path, (unsigned long long)h.nparams, m->nparams);
    } else if (meta->model_hash && h.model_hash != meta->model_hash) {
        snprintf(err, errlen, "%s: written for another model config (hash %016llx, spec %016llx)",
                 path, (unsigned long long)h.model_hash, (unsigned long long)meta->model_hash);
    } else if (read_all(f, m->params, sizeof(float) * m->nparams, &crc) ||
               read_all(f, m->target, sizeof(float) * m->nenc, &crc) ||
               read_all(f, m->adam_m, sizeof(float) * m->nparams, &crc) ||
               read_all(f, m->adam_v, sizeof(float) * m->nparams, &crc)) {
        snprintf(err, errlen, "%s: truncated (expected %zu bytes of state)", path,
                 sizeof(float) * (3 * m->nparams + m->nenc));
    } else {
        uint32_t c32;
        if (fread(&c32, 4, 1, f) != 1) {
            snprintf(err, errlen, "%s: truncated (missing checksum)", path);
        } else if (c32 != (uint32_t)crc) {
            snprintf(err, errlen, "%s: checksum mismatch (file %08x, computed %08x): corrupt",
                     path, c32, (unsigned)crc);
        } else if (fgetc(f) != EOF) {
            snprintf(err, errlen, "%s: trailing bytes after the checksum", path);
        } else {
            meta->step = h.step;
            meta->total_steps = h.total_steps;
            meta->model_hash = h.model_hash;
            meta->seed = h.seed;
            meta->images_seen = h.images_seen;
            meta->norm_mean = h.norm_mean;
            meta->norm_std = h.norm_std;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}
