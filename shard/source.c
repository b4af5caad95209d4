/* source.c - the packer's inputs as streams (shard_image_src): IDX files
 * (MNIST / Fashion-MNIST, gzip or plain) and raw uint8 arrays here, a
 * directory of images in imagedir.c. Opening reads what needs the whole set
 * (sizes, the labels: one byte a record); the pixels then come a chunk at a
 * time, so packing holds one chunk, whatever the data set's size (a bad
 * record found late costs the writer's staging directory, never output).
 * Every header number is range-checked before it sizes anything; whole
 * reads (shard_idx_read ...) grow with the bytes actually read, so a lying
 * header costs one small buffer. */
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

/* ----------------------------------------------------------------- stream */
const shard_images *shard_image_src_info(const shard_image_src *s) { return &s->info; }

int shard_image_src_next(shard_image_src *s, uint8_t *pixels, uint8_t *labels, uint64_t k,
                         char *err, size_t errlen) {
    SHARD_ASSERT(k <= s->info.n - s->at && (pixels || k == 0));
    if (k && s->ops->next(s, pixels, k, err, errlen)) return -1;
    if (labels && s->info.labels) memcpy(labels, s->info.labels + s->at, (size_t)k);
    s->at += k;
    return 0;
}

void shard_image_src_close(shard_image_src *s) {
    if (!s) return;
    shard_images_free(&s->info);
    s->ops->free(s); /* the kind's state and s itself */
}

#define READ_FIRST_ALLOC ((size_t)16 << 20)

int shard_image_src_read_all(shard_images *out, shard_image_src *s, int rc, char *err,
                        size_t errlen) {
    memset(out, 0, sizeof *out);
    if (rc) return -1;
    size_t rec = shard_schema_record_bytes(&s->info.schema);
    uint64_t n = s->info.n, first = READ_FIRST_ALLOC / rec, cap = n < first ? n : first;
    SHARD_ASSERT(rec && n <= SIZE_MAX / 2 / rec); /* IDX: < 2^31 of < 2^32 bytes; others: files */
    cap = cap ? cap : 1;
    uint8_t *pix = shard_xmalloc((size_t)cap * rec);
    for (uint64_t have = 0; have < n; have = cap) {
        if (have == cap) {
            cap = cap > n / 2 ? n : 2 * cap;
            uint8_t *np = realloc(pix, (size_t)cap * rec);
            SHARD_ASSERT(np);
            pix = np;
        }
        if (shard_image_src_next(s, pix + have * rec, NULL, cap - have, err, errlen)) {
            free(pix);
            shard_image_src_close(s);
            return -1;
        }
    }
    *out = s->info; /* labels and class names move to out */
    out->pixels = pix;
    memset(&s->info, 0, sizeof s->info);
    shard_image_src_close(s);
    return 0;
}

/* -------------------------------------------------------------------- IDX */
#define IDX_SLICE ((size_t)1 << 30) /* inflate takes unsigned */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An IDX input, gzip (by its magic 1f 8b) or plain. Inflated here rather
 * than by gzread, which takes whatever follows a gzip stream's end for
 * "trailing garbage" and ignores it: a file with bytes appended (or two
 * files run together) would pack. Concatenated members read as one, as
 * gzip -d reads them. */
typedef struct {
    int fd, gz, end;  /* end: the gzip stream ended at the end of the file */
    uint64_t in_off;  /* compressed bytes read from fd */
    z_stream z;
    uint8_t in[1 << 17];
} gz_file;

/* At least 2 bytes in z's input unless the file ended: 0, or -1 + err. */
static int gzf_fill(gz_file *s, const char *path, char *err, size_t errlen) {
    while (s->z.avail_in < 2) {
        memmove(s->in, s->z.next_in, s->z.avail_in);
        s->z.next_in = s->in;
        ssize_t k = read(s->fd, s->in + s->z.avail_in, sizeof s->in - s->z.avail_in);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return shard_err(err, errlen, "%s: offset %llu: read error: %s", path,
                                    (unsigned long long)s->in_off, strerror(errno)), -1;
        if (k == 0) return 0;
        s->z.avail_in += (unsigned)k;
        s->in_off += (uint64_t)k;
    }
    return 0;
}

/* 1 when every byte left, to the end of the file, is zero (a tape or block
 * tool's padding, which gzip -d ignores too), 0 when one is not, -1 + err. */
static int gzf_zero_tail(gz_file *s, const char *path, char *err, size_t errlen) {
    for (;;) {
        for (unsigned i = 0; i < s->z.avail_in; i++)
            if (s->z.next_in[i]) return 0;
        s->z.avail_in = 0;
        if (gzf_fill(s, path, err, errlen)) return -1;
        if (s->z.avail_in == 0) return 1;
    }
}

/* After a member's end: the next member, or the end of the file (after
 * zero padding at most); anything else is refused. 0, or -1 + err. */
static int gzf_member_end(gz_file *s, const char *path, char *err, size_t errlen) {
    if (gzf_fill(s, path, err, errlen)) return -1;
    if (s->z.avail_in == 0) return s->end = 1, 0;
    uint64_t at = s->in_off - s->z.avail_in;
    if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) {
        if (inflateReset(&s->z) == Z_OK) return 0;
        return shard_err(err, errlen, "%s: offset %llu: cannot read its next gzip member", path,
                         (unsigned long long)at), -1;
    }
    int zeros = s->z.next_in[0] == 0 ? gzf_zero_tail(s, path, err, errlen) : 0;
    if (zeros < 0) return -1;
    if (zeros) return s->end = 1, 0;
    shard_err(err, errlen, "%s: offset %llu: bytes after the end of the gzip stream (appended "
              "to the file?)", path, (unsigned long long)at);
    return -1;
}

/* Up to n inflated bytes: the count (short at the end of the stream), or
 * -1 + err. */
static long long gzf_inflate(gz_file *s, const char *path, uint8_t *buf, size_t n, char *err,
                            size_t errlen) {
    size_t got = 0;
    while (got < n && !s->end) {
        if (gzf_fill(s, path, err, errlen)) return -1;
        size_t want = n - got < IDX_SLICE ? n - got : IDX_SLICE;
        s->z.next_out = buf + got;
        s->z.avail_out = (unsigned)want;
        unsigned had = s->z.avail_in;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        got += want - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            if (gzf_member_end(s, path, err, errlen)) return -1;
        } else if (rc == Z_BUF_ERROR && had == 0) { /* gzf_fill found the file's end */
            shard_err(err, errlen, "%s: offset %llu: truncated gzip stream", path,
                      (unsigned long long)s->in_off);
            return -1;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            shard_err(err, errlen, "%s: offset %llu: gzip data error: %s", path,
                      (unsigned long long)(s->in_off - s->z.avail_in), s->z.msg ? s->z.msg : "?");
            return -1;
        }
    }
    return (long long)got;
}

/* Reads up to n bytes; returns the count (short at end of data) or -1 + err. */
static long long gzf_read(gz_file *s, const char *path, uint8_t *buf, size_t n, char *err,
                          size_t errlen) {
    if (s->gz) return gzf_inflate(s, path, buf, n, err, errlen);
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(s->fd, buf + got, n - got < IDX_SLICE ? n - got : IDX_SLICE);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            shard_err(err, errlen, "%s: offset %zu: read error: %s", path, got, strerror(errno));
            return -1;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    return (long long)got;
}

static gz_file *gzf_open(const char *path, char *err, size_t errlen) {
    int fd = shard_open_regular(path, NULL, err, errlen);
    if (fd < 0) return NULL;
    gz_file *s = shard_xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->fd = fd;
    uint8_t m[2];
    s->gz = pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    s->z.next_in = s->in;
    if (s->gz && inflateInit2(&s->z, 15 + 16) != Z_OK) { /* 15 + 16: gzip only */
        close(fd);
        free(s);
        shard_err(err, errlen, "%s: cannot open: out of memory in zlib", path);
        return NULL;
    }
    return s;
}

static void gzf_close(gz_file *s) {
    if (s->gz) inflateEnd(&s->z);
    close(s->fd);
    free(s);
}

/* An IDX file open at its data: magic and ndims big-endian sizes read and
 * checked (into dims), *bytes the data bytes they promise. NULL + err. */
static gz_file *idx_open(const char *path, uint32_t magic, int ndims, uint32_t *dims,
                         uint64_t *bytes, char *err, size_t errlen) {
    gz_file *f = gzf_open(path, err, errlen);
    if (!f) return NULL;
    uint8_t h[16];
    size_t need = 4 + 4 * (size_t)ndims;
    long long got = gzf_read(f, path, h, need, err, errlen);
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
    *bytes = n;
    return f;
fail:
    gzf_close(f);
    return NULL;
}

/* The next k data bytes of f into buf, have of its n data bytes (after a
 * head-byte header) read before; at the last byte, that no more follow. */
static int idx_body(gz_file *f, const char *path, size_t head, uint64_t n, uint64_t have,
                    uint8_t *buf, size_t k, char *err, size_t errlen) {
    long long got = gzf_read(f, path, buf, k, err, errlen);
    if (got < 0) return -1;
    if ((size_t)got < k) {
        shard_err(err, errlen, "%s: offset %llu: truncated: %llu data bytes expected, got %llu",
                  path, (unsigned long long)(head + have + (uint64_t)got), (unsigned long long)n,
                  (unsigned long long)(have + (uint64_t)got));
        return -1;
    }
    if (have + k < n) return 0;
    uint8_t extra[64];
    got = gzf_read(f, path, extra, sizeof extra, err, errlen);
    if (got < 0) return -1;
    if (got > 0) {
        shard_err(err, errlen, "%s: offset %llu: trailing bytes after the %llu data bytes (header "
                  "sizes disagree with the file)", path, (unsigned long long)(head + n),
                  (unsigned long long)n);
        return -1;
    }
    return 0;
}

/* An IDX labels file, whole: its count into *count. The buffer grows with
 * the bytes read (a lying header costs one small buffer). NULL + err. */
static uint8_t *idx_labels(const char *path, uint32_t *count, char *err, size_t errlen) {
    uint64_t n;
    gz_file *f = idx_open(path, 0x00000801u, 1, count, &n, err, errlen);
    if (!f) return NULL;
    size_t cap = n < READ_FIRST_ALLOC ? (size_t)n : READ_FIRST_ALLOC, have = 0;
    uint8_t *buf = shard_xmalloc(cap);
    for (;;) {
        if (idx_body(f, path, 8, n, have, buf + have, cap - have, err, errlen)) {
            free(buf);
            gzf_close(f);
            return NULL;
        }
        have = cap;
        if (cap == n) break;
        cap = cap > n / 2 ? (size_t)n : 2 * cap;
        uint8_t *nb = realloc(buf, cap);
        SHARD_ASSERT(nb);
        buf = nb;
    }
    gzf_close(f);
    return buf;
}

typedef struct {
    shard_image_src base;
    gz_file *f;
    char *path;
    uint64_t bytes, have; /* data bytes the header promises, read so far */
} idx_src;

static int idx_next(shard_image_src *s, uint8_t *pixels, uint64_t k, char *err, size_t errlen) {
    idx_src *x = (idx_src *)s;
    size_t want = (size_t)k * shard_schema_record_bytes(&s->info.schema);
    if (idx_body(x->f, x->path, 16, x->bytes, x->have, pixels, want, err, errlen)) return -1;
    x->have += want;
    return 0;
}

static void idx_free(shard_image_src *s) {
    idx_src *x = (idx_src *)s;
    if (x->f) gzf_close(x->f);
    free(x->path);
    free(x);
}

static const shard_image_src_ops idx_ops = {idx_next, idx_free};


int shard_idx_open(shard_image_src **out, const char *images_path, const char *labels_path,
                   char *err, size_t errlen) {
    *out = NULL;
    uint32_t d[3], nl;
    uint64_t bytes;
    gz_file *f = idx_open(images_path, 0x00000803u, 3, d, &bytes, err, errlen);
    if (!f) return -1;
    idx_src *x = shard_xcalloc(1, sizeof *x);
    *x = (idx_src){.base = {.ops = &idx_ops}, .f = f, .path = shard_xstrdup(images_path),
                   .bytes = bytes};
    shard_images *im = &x->base.info;
    im->n = d[0];
    im->schema =
        (shard_schema){.height = d[1], .width = d[2], .channels = 1, .dtype = SHARD_DTYPE_U8};
    if (labels_path) {
        im->labels = idx_labels(labels_path, &nl, err, errlen);
        if (!im->labels) goto fail;
        if (nl != d[0]) {
            shard_err(err, errlen, "%s: offset 4: %u labels, but %s has %u images", labels_path,
                      nl, images_path, d[0]);
            goto fail;
        }
        shard_images_count_classes(im);
    }
    *out = &x->base;
    return 0;
fail:
    shard_image_src_close(&x->base);
    return -1;
}

int shard_idx_read(shard_images *out, const char *images_path, const char *labels_path,
                   char *err, size_t errlen) {
    shard_image_src *s;
    int rc = shard_idx_open(&s, images_path, labels_path, err, errlen);
    return shard_image_src_read_all(out, s, rc, err, errlen);
}

/* -------------------------------------------------------------------- raw */
/* Reads a whole regular file of exactly `want` bytes. */
static uint8_t *slurp(const char *path, uint64_t want, char *err, size_t errlen) {
    uint64_t n;
    FILE *f = shard_fopen_regular(path, &n, err, errlen);
    if (!f) return NULL;
    if (n != want || n > SIZE_MAX / 2) {
        shard_err(err, errlen, "%s: %llu bytes, expected %llu", path, (unsigned long long)n,
                  (unsigned long long)want);
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
    return buf;
}

typedef struct {
    shard_image_src base;
    FILE *f;
    char *path;
} raw_src;

static int raw_next(shard_image_src *s, uint8_t *pixels, uint64_t k, char *err, size_t errlen) {
    raw_src *x = (raw_src *)s;
    size_t want = (size_t)k * shard_schema_record_bytes(&s->info.schema);
    if (fread(pixels, 1, want, x->f) != want) { /* the file shrank since open */
        shard_err(err, errlen, "%s: read error: %s", x->path,
                  ferror(x->f) ? strerror(errno) : "short");
        return -1;
    }
    return 0;
}

static void raw_free(shard_image_src *s) {
    raw_src *x = (raw_src *)s;
    if (x->f) fclose(x->f);
    free(x->path);
    free(x);
}

static const shard_image_src_ops raw_ops = {raw_next, raw_free};

int shard_raw_open(shard_image_src **out, const char *path, const char *labels_path,
                   uint32_t height, uint32_t width, uint32_t channels, char *err,
                   size_t errlen) {
    *out = NULL;
    shard_schema sc = {.height = height, .width = width, .channels = channels,
                       .dtype = SHARD_DTYPE_U8};
    char why[SHARD_ERR_MAX / 2];
    if (shard_schema_check(&sc, why, sizeof why)) {
        shard_err(err, errlen, "%s: %s", path, why);
        return -1;
    }
    uint64_t size, rec = shard_schema_record_bytes(&sc);
    FILE *f = shard_fopen_regular(path, &size, err, errlen);
    if (!f) return -1;
    raw_src *x = shard_xcalloc(1, sizeof *x);
    *x = (raw_src){.base = {.ops = &raw_ops, .info = {.schema = sc}}, .f = f,
                   .path = shard_xstrdup(path)};
    if (size == 0 || size > SIZE_MAX / 2) {
        shard_err(err, errlen, "%s: %llu bytes, expected %llu", path, (unsigned long long)size,
                  1ull);
        goto fail;
    }
    if (size % rec) {
        shard_err(err, errlen, "%s: %llu bytes is not a whole number of %ux%ux%u records (%llu "
                  "bytes each)", path, (unsigned long long)size, height, width, channels,
                  (unsigned long long)rec);
        goto fail;
    }
    x->base.info.n = size / rec;
    if (labels_path) {
        x->base.info.labels = slurp(labels_path, x->base.info.n, err, errlen);
        if (!x->base.info.labels) goto fail;
        shard_images_count_classes(&x->base.info);
    }
    *out = &x->base;
    return 0;
fail:
    shard_image_src_close(&x->base);
    return -1;
}

int shard_raw_read(shard_images *out, const char *path, const char *labels_path,
                   uint32_t height, uint32_t width, uint32_t channels, char *err,
                   size_t errlen) {
    shard_image_src *s;
    int rc = shard_raw_open(&s, path, labels_path, height, width, channels, err, errlen);
    return shard_image_src_read_all(out, s, rc, err, errlen);
}
