/* source.c - the packer's inputs, read whole into a shard_images: IDX files
 * (MNIST / Fashion-MNIST, gzip or plain) or raw uint8 arrays (a directory of
 * images: imagedir.c). Every
 * header number is range-checked before it sizes anything; IDX bodies grow
 * with the bytes actually read, so a lying header costs one small buffer.
 * All input is read before any output is written, so a bad input never
 * leaves a half-packed dataset. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "shard_internal.h"

void shard_images_free(shard_images *im) {
    if (!im) return;
    free(im->pixels);
    free(im->labels);
    for (uint32_t i = 0; im->class_names && i < im->nclasses; i++) free(im->class_names[i]);
    free(im->class_names);
    memset(im, 0, sizeof *im);
}

void shard_images_count_classes(shard_images *im) {
    unsigned mx = 0;
    for (uint64_t i = 0; i < im->n; i++)
        if (im->labels[i] > mx) mx = im->labels[i];
    im->schema.label = SHARD_LABEL_U8;
    im->schema.num_classes = mx + 1;
}

/* -------------------------------------------------------------------- IDX */
#define IDX_FIRST_ALLOC ((size_t)16 << 20)
#define IDX_SLICE ((size_t)1 << 30) /* gzread takes unsigned, returns int */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads up to n bytes; returns the count (short at end of data) or -1 + err. */
static long long gz_read(gzFile f, const char *path, uint8_t *buf, size_t n, char *err,
                         size_t errlen) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < IDX_SLICE ? n - got : IDX_SLICE;
        int k = gzread(f, buf + got, (unsigned)want);
        if (k < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            shard_err(err, errlen, "%s: offset %zu: read error: %s", path, got,
                      code == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    return (long long)got;
}

/* One IDX file: magic, ndims big-endian sizes (checked by the caller via
 * dims), then exactly `bytes(dims)` bytes and end of file. */
static uint8_t *idx_file(const char *path, uint32_t magic, int ndims, uint32_t *dims,
                         char *err, size_t errlen) {
    int fd = shard_open_regular(path, NULL, err, errlen);
    if (fd < 0) return NULL;
    gzFile f = gzdopen(fd, "rb"); /* gzclose closes fd */
    if (!f) {
        close(fd);
        shard_err(err, errlen, "%s: cannot open: out of memory in zlib", path);
        return NULL;
    }
    gzbuffer(f, 1u << 17);
    uint8_t h[16], *buf = NULL;
    size_t need = 4 + 4 * (size_t)ndims;
    long long got = gz_read(f, path, h, need, err, errlen);
    if (got < 0) goto fail;
    if (got >= 4 && be32(h) != magic) {
        shard_err(err, errlen, "%s: offset 0: bad magic 0x%08x, expected 0x%08x (IDX %s)", path,
                  be32(h), magic, ndims == 3 ? "ubyte images" : "ubyte labels");
        goto fail;
    }
    if ((size_t)got < need) {
        shard_err(err, errlen, "%s: offset %lld: truncated header (%zu bytes expected)", path,
                  got, need);
        goto fail;
    }
    uint64_t n = 1;
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        uint32_t hi = i == 0 ? (1u << 31) - 1 : SHARD_MAX_SIDE;
        if (dims[i] < 1 || dims[i] > hi) {
            shard_err(err, errlen, "%s: offset %d: size %u out of range [1, %u]", path, 4 + 4 * i,
                      dims[i], hi);
            goto fail;
        }
        n *= dims[i]; /* < 2^31 * 2^16 * 2^16 = 2^63 */
    }
    if (n > SIZE_MAX / 2) {
        shard_err(err, errlen, "%s: %llu data bytes do not fit in memory", path,
                  (unsigned long long)n);
        goto fail;
    }
    size_t cap = n < IDX_FIRST_ALLOC ? (size_t)n : IDX_FIRST_ALLOC, have = 0;
    buf = shard_xmalloc(cap);
    for (;;) {
        long long k = gz_read(f, path, buf + have, cap - have, err, errlen);
        if (k < 0) goto fail;
        have += (size_t)k;
        if (have < cap) {
            shard_err(err, errlen, "%s: offset %zu: truncated: %llu data bytes expected, got %zu",
                      path, need + have, (unsigned long long)n, have);
            goto fail;
        }
        if (cap == n) break;
        cap = cap > n / 2 ? (size_t)n : 2 * cap;
        uint8_t *nb = realloc(buf, cap);
        SHARD_ASSERT(nb);
        buf = nb;
    }
    uint8_t extra[64];
    long long k = gz_read(f, path, extra, sizeof extra, err, errlen);
    if (k < 0) goto fail;
    if (k > 0) {
        shard_err(err, errlen, "%s: offset %llu: trailing bytes after the %llu data bytes (header "
                  "sizes disagree with the file)", path, (unsigned long long)(need + n),
                  (unsigned long long)n);
        goto fail;
    }
    gzclose(f);
    return buf;
fail:
    free(buf);
    gzclose(f);
    return NULL;
}

int shard_idx_read(shard_images *out, const char *images_path, const char *labels_path,
                   char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint32_t d[3], nl;
    out->pixels = idx_file(images_path, 0x00000803u, 3, d, err, errlen);
    if (!out->pixels) return -1;
    out->n = d[0];
    out->schema =
        (shard_schema){.height = d[1], .width = d[2], .channels = 1, .dtype = SHARD_DTYPE_U8};
    if (labels_path) {
        out->labels = idx_file(labels_path, 0x00000801u, 1, &nl, err, errlen);
        if (!out->labels) goto fail;
        if (nl != d[0]) {
            shard_err(err, errlen, "%s: offset 4: %u labels, but %s has %u images", labels_path,
                      nl, images_path, d[0]);
            goto fail;
        }
        shard_images_count_classes(out);
    }
    return 0;
fail:
    shard_images_free(out);
    return -1;
}

/* -------------------------------------------------------------------- raw */
/* Reads a whole regular file of exactly `want` bytes (0: any size > 0). */
static uint8_t *slurp(const char *path, uint64_t want, uint64_t *size, char *err,
                      size_t errlen) {
    uint64_t n;
    FILE *f = shard_fopen_regular(path, &n, err, errlen);
    if (!f) return NULL;
    if ((want && n != want) || n == 0 || n > SIZE_MAX / 2) {
        shard_err(err, errlen, "%s: %llu bytes, expected %llu", path, (unsigned long long)n,
                  (unsigned long long)(want ? want : 1));
        fclose(f);
        return NULL;
    }
    uint8_t *buf = shard_xmalloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != n) {
        shard_err(err, errlen, "%s: read error: %s", path, ferror(f) ? strerror(errno) : "short");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

int shard_raw_read(shard_images *out, const char *path, const char *labels_path,
                   uint32_t height, uint32_t width, uint32_t channels, char *err,
                   size_t errlen) {
    memset(out, 0, sizeof *out);
    out->schema = (shard_schema){.height = height, .width = width, .channels = channels,
                                 .dtype = SHARD_DTYPE_U8};
    char why[SHARD_ERR_MAX / 2];
    if (shard_schema_check(&out->schema, why, sizeof why)) {
        shard_err(err, errlen, "%s: %s", path, why);
        return -1;
    }
    uint64_t size, rec = shard_schema_record_bytes(&out->schema);
    out->pixels = slurp(path, 0, &size, err, errlen);
    if (!out->pixels) return -1;
    if (size % rec) {
        shard_err(err, errlen, "%s: %llu bytes is not a whole number of %ux%ux%u records (%llu "
                  "bytes each)", path, (unsigned long long)size, height, width, channels,
                  (unsigned long long)rec);
        goto fail;
    }
    out->n = size / rec;
    if (labels_path) {
        out->labels = slurp(labels_path, out->n, &size, err, errlen);
        if (!out->labels) goto fail;
        shard_images_count_classes(out);
    }
    return 0;
fail:
    shard_images_free(out);
    return -1;
}
