/* idx.c - reads MNIST-style IDX files (images + labels), gzip or plain, into
 * a jepa_images. Every number in a header is range-checked before it sizes
 * anything, and pixel memory grows with the bytes actually read, so a lying
 * header cannot make us allocate more than the file really holds.
 *
 * Format: a 4-byte big-endian magic 0x0000TTDD (TT = 0x08 unsigned bytes,
 * DD = number of dimensions), DD big-endian uint32 sizes, then the data.
 * Images are 0x00000803 (n, h, w); labels are 0x00000801 (n).
 * Trailing bytes after the data are an ERROR: they mean the header and the
 * file disagree (e.g. a wrong n), which is exactly what we want to catch. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <zlib.h>

#include "jepa.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_SIDE 4096u
/* First allocation for a body; doubled as data arrives, capped at what the
 * header claims. 16 MiB keeps small sets in one read and big lies cheap. */
#define IDX_FIRST_ALLOC ((size_t)16 << 20)
/* gzread takes an unsigned and returns an int: read in slices below 2^30. */
#define IDX_READ_SLICE ((size_t)1 << 30)

static void idx_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void idx_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Opens path for reading through zlib (plain files pass through). NULL + err
 * with the OS reason on failure. */
static gzFile idx_open(const char *path, char *err, size_t errlen) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        /* gzopen leaves errno at 0 when its own allocation failed */
        idx_err(err, errlen, "cannot open %s: %s", path,
                errno ? strerror(errno) : "out of memory in zlib");
        return NULL;
    }
    gzbuffer(f, 1u << 17);
    return f;
}

/* Reads up to n bytes; returns how many were read (< n at end of data), or
 * -1 on a decompression/read error (message in err). */
static long long idx_read(gzFile f, const char *path, uint8_t *buf, size_t n, char *err,
                          size_t errlen) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < IDX_READ_SLICE ? n - got : IDX_READ_SLICE;
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            idx_err(err, errlen, "%s: read error after %zu bytes: %s", path, got,
                    code == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

/* After a short read zlib may know why (a gzip stream cut short says
 * "unexpected end of file"); returns that reason or "". */
static const char *idx_short_reason(gzFile f) {
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    return (code != Z_OK && msg) ? msg : "";
}

static uint32_t idx_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads the magic and ndims sizes of a header into dims. 0 or -1 + err. */
static int idx_header(gzFile f, const char *path, uint32_t magic, const char *what,
                      uint32_t *dims, int ndims, char *err, size_t errlen) {
    uint8_t h[4 + 4 * 3];
    size_t need = 4 + 4 * (size_t)ndims;
    long long got = idx_read(f, path, h, need, err, errlen);
    if (got < 0) return -1;
    if (got >= 4 && idx_be32(h) != magic) {
        idx_err(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (IDX %s)", path,
                idx_be32(h), magic, what);
        return -1;
    }
    if ((size_t)got < need) {
        const char *why = idx_short_reason(f);
        idx_err(err, errlen, "%s: truncated header: expected %zu bytes, got %lld%s%s%s", path,
                need, got, *why ? " (" : "", why, *why ? ")" : "");
        return -1;
    }
    for (int i = 0; i < ndims; i++) dims[i] = idx_be32(h + 4 + 4 * i);
    return 0;
}

/* Reads exactly n data bytes into a fresh JEPA_MALLOC buffer, then insists
 * on end of file. The buffer grows geometrically with what was read, so a
 * header claiming terabytes over a 100-byte file costs one small allocation.
 * NULL + err (nothing leaked) on failure. */
static uint8_t *idx_body(gzFile f, const char *path, size_t n, const char *what, char *err,
                         size_t errlen) {
    size_t cap = n < IDX_FIRST_ALLOC ? n : IDX_FIRST_ALLOC;
    uint8_t *buf = JEPA_MALLOC(cap);
    size_t got = 0;
    for (;;) {
        long long r = idx_read(f, path, buf + got, cap - got, err, errlen);
        if (r < 0) goto fail;
        got += (size_t)r;
        if (got < cap) {
            const char *why = idx_short_reason(f);
            idx_err(err, errlen, "%s: truncated: expected %zu bytes of %s, got %zu%s%s%s", path,
                    n, what, got, *why ? " (" : "", why, *why ? ")" : "");
            goto fail;
        }
        if (cap == n) break;
        size_t ncap = cap > n / 2 ? n : 2 * cap;
        uint8_t *nbuf = JEPA_MALLOC(ncap);
        memcpy(nbuf, buf, got);
        jepa_free(buf);
        buf = nbuf;
        cap = ncap;
    }
    uint8_t extra[256];
    long long r = idx_read(f, path, extra, sizeof extra, err, errlen);
    if (r < 0) goto fail;
    if (r > 0) {
        idx_err(err, errlen,
                "%s: %s%lld trailing bytes after the %zu bytes of %s (header sizes disagree "
                "with the file)",
                path, r == (long long)sizeof extra ? "at least " : "", r, n, what);
        goto fail;
    }
    return buf;
fail:
    jepa_free(buf);
    return NULL;
}

/* Loads the images file into d (pixels, n, h, w). 0 or -1 + err. */
static int idx_load_images(jepa_images *d, const char *path, char *err, size_t errlen) {
    gzFile f = idx_open(path, err, errlen);
    if (!f) return -1;
    uint32_t dims[3];
    int rc = -1;
    if (idx_header(f, path, IDX_MAGIC_IMAGES, "ubyte images", dims, 3, err, errlen)) goto out;
    if (dims[0] == 0 || dims[0] > INT_MAX) {
        idx_err(err, errlen, "%s: image count %u out of range [1, %d]", path, dims[0], INT_MAX);
        goto out;
    }
    if (dims[1] == 0 || dims[1] > IDX_MAX_SIDE || dims[2] == 0 || dims[2] > IDX_MAX_SIDE) {
        idx_err(err, errlen, "%s: image size %ux%u out of range [1, %u] per side", path,
                dims[1], dims[2], IDX_MAX_SIDE);
        goto out;
    }
    /* n < 2^31 and h*w <= 2^24, so the product fits in 55 bits */
    uint64_t bytes = (uint64_t)dims[0] * dims[1] * dims[2];
    if (bytes > (uint64_t)PTRDIFF_MAX) {
        idx_err(err, errlen, "%s: %llu bytes of pixels do not fit in memory", path,
                (unsigned long long)bytes);
        goto out;
    }
    d->pixels = idx_body(f, path, (size_t)bytes, "pixels", err, errlen);
    if (!d->pixels) goto out;
    d->n = (int)dims[0];
    d->c = 1;
    d->h = (int)dims[1];
    d->w = (int)dims[2];
    rc = 0;
out:
    gzclose(f);
    return rc;
}

/* Loads the labels file; the count must equal n images (from images_path). */
static int idx_load_labels(jepa_images *d, const char *path, const char *images_path,
                           char *err, size_t errlen) {
    gzFile f = idx_open(path, err, errlen);
    if (!f) return -1;
    uint32_t n;
    int rc = -1;
    if (idx_header(f, path, IDX_MAGIC_LABELS, "ubyte labels", &n, 1, err, errlen)) goto out;
    if (n != (uint32_t)d->n) {
        idx_err(err, errlen, "%s has %d images but %s has %u labels", images_path, d->n, path,
                n);
        goto out;
    }
    d->labels = idx_body(f, path, n, "labels", err, errlen);
    if (d->labels) rc = 0;
out:
    gzclose(f);
    return rc;
}

int idx_load(jepa_images *d, const char *images_path, const char *labels_path, char *err,
             size_t errlen) {
    JEPA_ASSERT(d && images_path && labels_path);
    memset(d, 0, sizeof *d);
    if (idx_load_images(d, images_path, err, errlen) ||
        idx_load_labels(d, labels_path, images_path, err, errlen)) {
        images_free(d); /* leaves d zeroed, so a second images_free is harmless */
        return -1;
    }
    return 0;
}

void images_free(jepa_images *d) {
    if (!d) return;
    jepa_free(d->pixels);
    jepa_free(d->labels);
    memset(d, 0, sizeof *d);
}
