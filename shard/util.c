/* util.c - small pieces every shard file uses: fail-fast allocation, the
 * one-line error buffer, CRC-32, the counter-based RNG behind every shuffle,
 * positioned reads, and the schema / pack-option checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "shard_internal.h"

void shard_fatal(const char *file, int line, const char *what) {
    fprintf(stderr, "jepa-shard: %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}

void *shard_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "jepa-shard: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *shard_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "jepa-shard: out of memory allocating %zu x %zu bytes\n", n, size);
        abort();
    }
    return p;
}

void shard_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint32_t shard_crc32(const uint8_t *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) { /* crc32 takes uInt lengths */
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        c = crc32(c, p, (uInt)k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

uint64_t shard_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t shard_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    /* chained so (a, b, c) and (b, a, c) give unrelated streams */
    return shard_mix64(shard_mix64(shard_mix64(shard_mix64(seed) ^ a) ^ b) ^ c);
}

uint64_t shard_rng_next(shard_rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t shard_rng_below(shard_rng *r, uint64_t n) {
    SHARD_ASSERT(n > 0);
    /* reject the low 2^64 mod n values so every residue is equally likely */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = shard_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

void shard_shuffle_u32(shard_rng *r, uint32_t *a, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)shard_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

int shard_pread_all(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *b = buf;
    while (n) {
        ssize_t k = pread(fd, b, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = 0;
            return -1;
        }
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int shard_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- schema */
size_t shard_dtype_bytes(shard_dtype t) {
    return t == SHARD_DTYPE_U8 ? 1 : t == SHARD_DTYPE_F32 ? 4 : 0;
}

const char *shard_dtype_name(shard_dtype t) {
    return t == SHARD_DTYPE_U8 ? "u8" : t == SHARD_DTYPE_F32 ? "f32" : "?";
}

size_t shard_field_bytes(const shard_field *f) {
    size_t n = shard_dtype_bytes(f->dtype);
    for (uint32_t d = 0; d < f->ndim && d < SHARD_MAX_DIMS; d++) n *= f->shape[d];
    return n;
}

size_t shard_schema_field_offset(const shard_schema *s, int i) {
    SHARD_ASSERT(i >= 0 && (uint32_t)i < s->nfields && s->nfields <= SHARD_MAX_FIELDS);
    size_t off = 0;
    for (int k = 0; k < i; k++) off += shard_field_bytes(&s->fields[k]);
    return off;
}

int shard_schema_field_index(const shard_schema *s, const char *name) {
    for (uint32_t i = 0; i < s->nfields && i < SHARD_MAX_FIELDS; i++)
        if (!strncmp(s->fields[i].name, name, SHARD_FIELD_NAME_MAX)) return (int)i;
    return -1;
}

size_t shard_schema_record_bytes(const shard_schema *s) {
    if (s->nfields == 0) return (size_t)s->height * s->width * s->channels;
    size_t n = 0;
    for (uint32_t i = 0; i < s->nfields && i < SHARD_MAX_FIELDS; i++)
        n += shard_field_bytes(&s->fields[i]);
    return n;
}

size_t shard_label_bytes(const shard_schema *s) {
    return s->label == SHARD_LABEL_U8 ? 1 : 0;
}

int shard_name_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static int image_schema_check(const shard_schema *s, char *err, size_t errlen) {
    if (s->height < 1 || s->height > SHARD_MAX_SIDE || s->width < 1 ||
        s->width > SHARD_MAX_SIDE) {
        shard_err(err, errlen, "image size %ux%u out of range [1, %u] per side", s->height,
                  s->width, SHARD_MAX_SIDE);
        return -1;
    }
    if (s->channels < 1 || s->channels > SHARD_MAX_CHANNELS) {
        shard_err(err, errlen, "channels %u out of range [1, %u]", s->channels,
                  SHARD_MAX_CHANNELS);
        return -1;
    }
    uint64_t rb = (uint64_t)s->height * s->width * s->channels;
    if (rb > SHARD_MAX_RECORD_BYTES) {
        shard_err(err, errlen, "record of %llu bytes exceeds the limit of %llu",
                  (unsigned long long)rb, (unsigned long long)SHARD_MAX_RECORD_BYTES);
        return -1;
    }
    if (s->dtype != SHARD_DTYPE_U8) {
        shard_err(err, errlen, "dtype %d unknown (only 1 = u8)", (int)s->dtype);
        return -1;
    }
    if (s->label == SHARD_LABEL_NONE) {
        if (s->num_classes != 0) {
            shard_err(err, errlen, "num_classes %u without labels (must be 0)", s->num_classes);
            return -1;
        }
    } else if (s->label == SHARD_LABEL_U8) {
        if (s->num_classes < 1 || s->num_classes > 256) {
            shard_err(err, errlen, "num_classes %u out of range [1, 256]", s->num_classes);
            return -1;
        }
    } else {
        shard_err(err, errlen, "label kind %d unknown (0 = none, 1 = u8 class)", (int)s->label);
        return -1;
    }
    return 0;
}

/* One field's name, dtype and shape; its bytes (<= the record limit) into *bytes. */
static int field_check(const shard_field *f, uint32_t i, uint64_t *bytes, char *err,
                       size_t errlen) {
    size_t len = strnlen(f->name, SHARD_FIELD_NAME_MAX);
    if (len == 0 || len == SHARD_FIELD_NAME_MAX) {
        shard_err(err, errlen, "field %u: name must be 1 to %d characters%s", i,
                  SHARD_FIELD_NAME_MAX - 1, len ? " (no NUL within the name bytes)" : "");
        return -1;
    }
    for (size_t k = 0; k < len; k++)
        if (!shard_name_char_ok(f->name[k])) {
            shard_err(err, errlen, "field %u: name '%s': only letters, digits, '.', '_' and '-'",
                      i, f->name);
            return -1;
        }
    for (size_t k = len; k < SHARD_FIELD_NAME_MAX; k++)
        if (f->name[k]) {
            shard_err(err, errlen, "field %u ('%s'): name bytes after the NUL must be 0", i,
                      f->name);
            return -1;
        }
    uint64_t n = shard_dtype_bytes(f->dtype);
    if (n == 0) {
        shard_err(err, errlen, "field %u ('%s'): dtype %d unknown (1 = u8, 2 = f32)", i,
                  f->name, (int)f->dtype);
        return -1;
    }
    if (f->ndim > SHARD_MAX_DIMS) {
        shard_err(err, errlen, "field %u ('%s'): ndim %u out of range [0, %d]", i, f->name,
                  f->ndim, SHARD_MAX_DIMS);
        return -1;
    }
    for (uint32_t d = 0; d < SHARD_MAX_DIMS; d++) {
        uint32_t v = f->shape[d];
        if (d < f->ndim && v < 1) {
            shard_err(err, errlen, "field %u ('%s'): shape[%u] is 0, dims must be >= 1", i,
                      f->name, d);
            return -1;
        }
        if (d >= f->ndim && v != 0) {
            shard_err(err, errlen, "field %u ('%s'): shape[%u] is %u beyond ndim %u (must be 0)",
                      i, f->name, d, v, f->ndim);
            return -1;
        }
        /* n <= 64 MiB and v < 2^32 before each step: the product fits 64 bits */
        if (d < f->ndim) n *= v;
        if (n > SHARD_MAX_RECORD_BYTES) {
            shard_err(err, errlen, "field %u ('%s'): more than %llu bytes", i, f->name,
                      (unsigned long long)SHARD_MAX_RECORD_BYTES);
            return -1;
        }
    }
    *bytes = n;
    return 0;
}

static int record_schema_check(const shard_schema *s, char *err, size_t errlen) {
    if (s->height || s->width || s->channels || s->dtype || s->label || s->num_classes) {
        shard_err(err, errlen, "a schema with fields must leave the image members 0 (height %u, "
                  "width %u, channels %u, dtype %d, label %d, num_classes %u)", s->height,
                  s->width, s->channels, (int)s->dtype, (int)s->label, s->num_classes);
        return -1;
    }
    if (s->nfields > SHARD_MAX_FIELDS) {
        shard_err(err, errlen, "%u fields, at most %d", s->nfields, SHARD_MAX_FIELDS);
        return -1;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nfields; i++) {
        uint64_t b;
        if (field_check(&s->fields[i], i, &b, err, errlen)) return -1;
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(s->fields[k].name, s->fields[i].name)) {
                shard_err(err, errlen, "fields %u and %u are both named '%s'", k, i,
                          s->fields[i].name);
                return -1;
            }
        total += b;
        if (total > SHARD_MAX_RECORD_BYTES) {
            shard_err(err, errlen, "record of more than %llu bytes (fields 0..%u)",
                      (unsigned long long)SHARD_MAX_RECORD_BYTES, i);
            return -1;
        }
    }
    return 0;
}

int shard_schema_check(const shard_schema *s, char *err, size_t errlen) {
    return s->nfields == 0 ? image_schema_check(s, err, errlen)
                           : record_schema_check(s, err, errlen);
}

/* ----------------------------------------------------------- pack options */
void shard_pack_opts_defaults(shard_pack_opts *o) {
    memset(o, 0, sizeof *o);
    o->records_per_shard = 4096;
    o->records_per_frame = 256;
    o->level = 3;
    snprintf(o->split, sizeof o->split, "train");
}

int shard_pack_opts_check(const shard_pack_opts *o, char *err, size_t errlen) {
    if (o->records_per_shard < 1 || o->records_per_shard > (1u << 31)) {
        shard_err(err, errlen, "records per shard %u out of range [1, %u]", o->records_per_shard,
                  1u << 31);
        return -1;
    }
    if (o->records_per_frame < 1 || o->records_per_frame > (1u << 20)) {
        shard_err(err, errlen, "records per frame %u out of range [1, %u]", o->records_per_frame,
                  1u << 20);
        return -1;
    }
    if (o->level < 1 || o->level > ZSTD_maxCLevel()) {
        shard_err(err, errlen, "zstd level %d out of range [1, %d]", o->level, ZSTD_maxCLevel());
        return -1;
    }
    size_t n = strnlen(o->split, sizeof o->split);
    if (n == 0 || n >= sizeof o->split) {
        shard_err(err, errlen, "split name must be 1 to %zu characters", sizeof o->split - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!shard_name_char_ok(o->split[i])) {
            shard_err(err, errlen, "split name '%s': only letters, digits, '.', '_' and '-'",
                      o->split);
            return -1;
        }
    }
    return 0;
}
