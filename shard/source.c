/* source.c - the packer's inputs, read whole into a shard_images: IDX files
 * (MNIST / Fashion-MNIST, gzip or plain), a directory of binary PGM/PPM
 * images with an optional "NAME LABEL" file, or raw uint8 arrays. Every
 * header number is range-checked before it sizes anything; IDX bodies grow
 * with the bytes actually read, so a lying header costs one small buffer.
 * All input is read before any output is written, so a bad input never
 * leaves a half-packed dataset. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "shard_internal.h"

void shard_images_free(shard_images *im) {
    if (!im) return;
    free(im->pixels);
    free(im->labels);
    memset(im, 0, sizeof *im);
}

static void set_classes(shard_images *im) {
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
        set_classes(out);
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
        set_classes(out);
    }
    return 0;
fail:
    shard_images_free(out);
    return -1;
}

/* -------------------------------------------------------------------- PNM */
/* Parses a binary PGM/PPM in buf: header fields then pixels; pix (C, H, W)
 * is written when non-NULL and the size matches *s (else *s is filled). */
static int pnm_parse(const uint8_t *b, size_t n, const char *path, shard_schema *s,
                     uint8_t *pix, char *err, size_t errlen) {
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) {
        shard_err(err, errlen, "%s: offset 0: not a binary PGM (P5) or PPM (P6) file", path);
        return -1;
    }
    uint32_t v[3];
    size_t i = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and # comments */
            while (i < n && isspace(b[i])) i++;
            if (i < n && b[i] == '#') {
                while (i < n && b[i] != '\n') i++;
            } else {
                break;
            }
        }
        uint64_t x = 0;
        size_t start = i;
        while (i < n && b[i] >= '0' && b[i] <= '9' && x <= 1u << 20) x = x * 10 + (b[i++] - '0');
        if (i == start || x == 0 || x > (k == 2 ? 65535 : SHARD_MAX_SIDE)) {
            shard_err(err, errlen, "%s: offset %zu: bad %s in the header", path, start,
                      k == 0 ? "width" : k == 1 ? "height" : "maxval");
            return -1;
        }
        v[k] = (uint32_t)x;
    }
    if (i >= n || !isspace(b[i])) {
        shard_err(err, errlen, "%s: offset %zu: header must end with one whitespace", path, i);
        return -1;
    }
    i++;
    if (v[2] > 255) {
        shard_err(err, errlen, "%s: maxval %u: 16-bit images are not supported", path, v[2]);
        return -1;
    }
    uint32_t c = b[1] == '6' ? 3 : 1;
    size_t plane = (size_t)v[0] * v[1], need = plane * c;
    if (n - i != need) {
        shard_err(err, errlen, "%s: offset %zu: %zu pixel bytes, expected %zu for %ux%ux%u", path,
                  i, n - i, need, v[1], v[0], c);
        return -1;
    }
    if (!pix) {
        *s = (shard_schema){.height = v[1], .width = v[0], .channels = c,
                            .dtype = SHARD_DTYPE_U8};
        return 0;
    }
    if (s->height != v[1] || s->width != v[0] || s->channels != c) {
        shard_err(err, errlen, "%s: %ux%ux%u, but the first image is %ux%ux%u (all must match)",
                  path, v[1], v[0], c, s->height, s->width, s->channels);
        return -1;
    }
    /* interleaved (H, W, C) to planar (C, H, W); maxval scaled to 255 */
    for (size_t p = 0; p < plane; p++)
        for (uint32_t ch = 0; ch < c; ch++) {
            unsigned x = b[i + p * c + ch];
            if (x > v[2]) x = v[2];
            pix[ch * plane + p] = (uint8_t)(v[2] == 255 ? x : (x * 255 + v[2] / 2) / v[2]);
        }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_labels_file(shard_images *out, char **names, const char *dir,
                            const char *labels_path, char *err, size_t errlen) {
    FILE *f = shard_fopen_regular(labels_path, NULL, err, errlen);
    if (!f) { /* a device or FIFO keeps the helper's line; else the file's role is said */
        if (errno != EINVAL)
            shard_err(err, errlen, "%s: cannot open the labels file: %s", labels_path, strerror(errno));
        return -1;
    }
    out->labels = shard_xmalloc((size_t)out->n);
    uint8_t *have = shard_xcalloc((size_t)out->n, 1);
    char line[4096];
    int rc = -1;
    errno = 0;
    for (long ln = 1; fgets(line, sizeof line, f); ln++) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char name[1024], extra[2];
        unsigned lab;
        int k = sscanf(line, "%1023s %u %1s", name, &lab, extra);
        if (k == EOF || k <= 0) continue; /* blank line */
        if (k != 2 || lab > 255) {
            shard_err(err, errlen, "%s:%ld: expected 'NAME LABEL' with LABEL in 0..255",
                      labels_path, ln);
            goto out;
        }
        char *key = name, **hit = bsearch(&key, names, (size_t)out->n, sizeof *names, cmp_str);
        if (!hit) {
            shard_err(err, errlen, "%s:%ld: no image '%s' in %s", labels_path, ln, name, dir);
            goto out;
        }
        size_t idx = (size_t)(hit - names);
        if (have[idx]) {
            shard_err(err, errlen, "%s:%ld: '%s' labelled twice", labels_path, ln, name);
            goto out;
        }
        have[idx] = 1;
        out->labels[idx] = (uint8_t)lab;
    }
    if (ferror(f)) {
        shard_err(err, errlen, "%s: read error: %s", labels_path,
                  errno ? strerror(errno) : "unknown cause");
        goto out;
    }
    for (uint64_t i = 0; i < out->n; i++)
        if (!have[i]) {
            shard_err(err, errlen, "%s/%s: no label in %s", dir, names[i], labels_path);
            goto out;
        }
    set_classes(out);
    rc = 0;
out:
    free(have);
    fclose(f);
    return rc;
}

int shard_pnm_dir_read(shard_images *out, const char *dir, const char *labels_path,
                       char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        shard_err(err, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || (strcasecmp(e->d_name + len - 4, ".pgm") &&
                        strcasecmp(e->d_name + len - 4, ".ppm")))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **nn = realloc(names, cap * sizeof *nn);
            SHARD_ASSERT(nn);
            names = nn;
        }
        names[n] = shard_xmalloc(len + 1);
        memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    int rc = -1;
    if (n == 0) {
        shard_err(err, errlen, "%s: no *.pgm or *.ppm files", dir);
        goto out;
    }
    qsort(names, n, sizeof *names, cmp_str);
    out->n = n;
    size_t rec = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint64_t size;
        uint8_t *buf = slurp(path, 0, &size, err, errlen);
        if (!buf) goto out;
        int bad = 0;
        if (i == 0) {
            bad = pnm_parse(buf, (size_t)size, path, &out->schema, NULL, err, errlen);
            if (!bad) {
                rec = shard_schema_record_bytes(&out->schema);
                if (n > SIZE_MAX / 2 / rec) {
                    shard_err(err, errlen, "%s: %zu images do not fit in memory", dir, n);
                    bad = 1;
                } else {
                    out->pixels = shard_xmalloc(n * rec);
                }
            }
        }
        if (!bad) bad = pnm_parse(buf, (size_t)size, path, &out->schema, out->pixels + i * rec,
                                  err, errlen);
        free(buf);
        if (bad) goto out;
    }
    if (labels_path && read_labels_file(out, names, dir, labels_path, err, errlen)) goto out;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) shard_images_free(out);
    return rc;
}
