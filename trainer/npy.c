/* npy.c - NumPy .npy files: features and labels leave the trainer in a form
 * any Python session reads with numpy.load, and come back through a reader
 * that trusts no number in the file. Format: numpy/lib/format.py (NEP 1);
 * the contract is in evaluate.h. Little-endian hosts only (asserted): '<f4'
 * is then the in-memory layout. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evaluate.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64 /* format.py's ARRAY_ALIGN */
#define NPY_CHUNK (16u << 20) /* bytes per write(): npy_stop is asked between them */

static void npy_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void npy_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *npy_descr(npy_dtype t) { return t == NPY_DTYPE_F32 ? "<f4" : "|u1"; }
static size_t npy_itemsize(npy_dtype t) { return t == NPY_DTYPE_F32 ? 4 : 1; }

static int npy_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Product of shape into *count; -1 if a dimension is negative or the byte
 * size would pass SIZE_MAX / 2. */
static int npy_count(int ndim, const int64_t *shape, size_t itemsize, size_t *count) {
    size_t c = 1, lim = (SIZE_MAX / 2) / itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] > 0 && c > lim / (size_t)shape[i]) return -1;
        c *= (size_t)shape[i];
    }
    *count = c;
    return 0;
}

/* ------------------------------------------------------------------ write */

int npy_header(char *buf, size_t cap, npy_dtype t, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS || (t != NPY_DTYPE_F32 && t != NPY_DTYPE_U8))
        return -1;
    size_t count;
    if (ndim > 0 && (!shape || npy_count(ndim, shape, npy_itemsize(t), &count))) return -1;
    /* the dict as Python's repr writes it, keys sorted (as numpy does):
     * shape () / (n,) / (a, b, ...) */
    char dict[256], tup[160] = "(";
    for (int i = 0; i < ndim; i++)
        snprintf(tup + strlen(tup), sizeof tup - strlen(tup), "%s%lld", i ? ", " : "",
                 (long long)shape[i]);
    snprintf(tup + strlen(tup), sizeof tup - strlen(tup), "%s)", ndim == 1 ? "," : "");
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      npy_descr(t), tup);
    /* pad so magic (6) + version (2) + HEADER_LEN (2) + dict + pad + '\n'
     * is a multiple of 64: the fewest spaces that do it */
    size_t used = NPY_MAGIC_LEN + 2 + 2 + (size_t)dl + 1;
    size_t pad = (NPY_ALIGN - used % NPY_ALIGN) % NPY_ALIGN, total = used + pad;
    if (total > cap || total - 10 > 65535) return -1;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1; /* version 1.0 */
    buf[7] = 0;
    buf[8] = (char)((total - 10) & 0xff); /* HEADER_LEN, little-endian */
    buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)dl);
    memset(buf + 10 + dl, ' ', pad);
    buf[total - 1] = '\n';
    return (int)total;
}

/* The directory entry of a rename is durable only once the directory is
 * fsync'ed (as ckpt.c does; shard_fsync_dir_of's own copy: fuzz-npy
 * compiles this file without the shard library). */
static int npy_fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int (*npy_stop)(void); /* npy_set_stop */

void npy_set_stop(int (*stop)(void)) { npy_stop = stop; }

/* 1 (errno EINTR) when npy_stop says stop, else 0. */
static int npy_stopped(void) {
    if (!npy_stop || !npy_stop()) return 0;
    errno = EINTR;
    return 1;
}

static int npy_write_all(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n > 0) {
        if (npy_stopped()) return -1;
        ssize_t w = write(fd, b, n > NPY_CHUNK ? NPY_CHUNK : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* shard_tmp_commit's steps written out, not the call: fuzz-npy compiles
 * this file alone; and the stop check (npy_stopped) runs up to the fsync. */
int npy_write(const char *path, npy_dtype t, const void *data, int ndim, const int64_t *shape,
              char *err, size_t errlen) {
    JEPA_ASSERT(npy_little_endian());
    char hdr[512];
    int hl = path ? npy_header(hdr, sizeof hdr, t, ndim, shape) : -1;
    size_t count = 1;
    if (hl < 0 || (ndim > 0 && npy_count(ndim, shape, npy_itemsize(t), &count))) {
        npy_err(err, errlen, "npy: %s: invalid dtype, ndim=%d or shape", path ? path : "(null)",
                ndim);
        return -1;
    }
    if (count > 0 && !data) {
        npy_err(err, errlen, "npy: %s: NULL data for %zu elements", path, count);
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        npy_err(err, errlen, "npy: %s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        npy_err(err, errlen, "npy: cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = npy_write_all(fd, hdr, (size_t)hl) || npy_write_all(fd, data, count * npy_itemsize(t)) ||
              npy_stopped() || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        unlink(tmp);
        npy_err(err, errlen, "npy: cannot write %s: %s", path, strerror(saved));
        return -1;
    }
    if (npy_fsync_dir_of(path) != 0) {
        npy_err(err, errlen, "npy: cannot fsync the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int npy_write_f32(const char *path, const float *a, int rows, int cols, char *err,
                  size_t errlen) {
    int64_t shape[2] = {rows, cols};
    return npy_write(path, NPY_DTYPE_F32, a, 2, shape, err, errlen);
}

int npy_write_u8(const char *path, const uint8_t *a, int n, char *err, size_t errlen) {
    int64_t shape[1] = {n};
    return npy_write(path, NPY_DTYPE_U8, a, 1, shape, err, errlen);
}

/* ------------------------------------------------------------------- read */

/* A cursor over the header dict: p .. end, never read past end. */
typedef struct {
    const char *p, *end;
} npy_cur;

static void npy_skip_ws(npy_cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

/* Consumes the character ch (after blanks); 0 or -1. */
static int npy_eat(npy_cur *c, char ch) {
    npy_skip_ws(c);
    if (c->p >= c->end || *c->p != ch) return -1;
    c->p++;
    return 0;
}

/* A quoted string ('...' or "...", no escapes) into out (cap bytes). */
static int npy_string(npy_cur *c, char *out, size_t cap) {
    npy_skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

/* A tuple of non-negative integers: (), (n,), (a, b), (a, b,) ... ("(5)"
 * is an int in Python, not a tuple: refused). */
static int npy_tuple(npy_cur *c, int64_t *shape, int *ndim) {
    if (npy_eat(c, '(')) return -1;
    int n = 0, trailing = 0;
    for (;;) {
        npy_skip_ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == ')') break;
        if (n == NPY_MAX_DIMS || *c->p < '0' || *c->p > '9') return -1;
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return -1;
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs, as numpy accepts */
        shape[n++] = v;
        trailing = 0;
        npy_skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            trailing = 1;
            continue;
        }
        if (c->p < c->end && *c->p == ')') break;
        return -1;
    }
    if (n == 1 && !trailing) return -1;
    c->p++; /* ')' */
    *ndim = n;
    return 0;
}

/* Parses the dict text [p, end); fills dtype/ndim/shape. 0 or -1 + err. */
static int npy_parse_dict(const char *p, const char *end, npy_array *a, char *err,
                          size_t errlen) {
    npy_cur c = {p, end};
    int seen[3] = {0, 0, 0}; /* descr, fortran_order, shape */
    char key[32], val[32];
    if (npy_eat(&c, '{')) goto bad;
    for (;;) {
        npy_skip_ws(&c);
        if (c.p < c.end && *c.p == '}') break;
        if (npy_string(&c, key, sizeof key) || npy_eat(&c, ':')) goto bad;
        if (!strcmp(key, "descr") && !seen[0]) {
            if (npy_string(&c, val, sizeof val)) goto bad;
            if (!strcmp(val, "<f4")) a->dtype = NPY_DTYPE_F32;
            else if (!strcmp(val, "|u1")) a->dtype = NPY_DTYPE_U8;
            else {
                npy_err(err, errlen, "descr '%s' is not '<f4' or '|u1'", val);
                return -1;
            }
            seen[0] = 1;
        } else if (!strcmp(key, "fortran_order") && !seen[1]) {
            npy_skip_ws(&c);
            if (c.end - c.p >= 5 && !memcmp(c.p, "False", 5)) c.p += 5;
            else {
                npy_err(err, errlen, "fortran_order is not False (only C order is read)");
                return -1;
            }
            seen[1] = 1;
        } else if (!strcmp(key, "shape") && !seen[2]) {
            if (npy_tuple(&c, a->shape, &a->ndim)) {
                npy_err(err, errlen, "shape is not a tuple of at most %d non-negative integers",
                        NPY_MAX_DIMS);
                return -1;
            }
            seen[2] = 1;
        } else {
            npy_err(err, errlen, "unexpected or repeated key '%s' in the header", key);
            return -1;
        }
        npy_skip_ws(&c);
        if (c.p < c.end && *c.p == ',') c.p++;
        else if (c.p >= c.end || *c.p != '}') goto bad;
    }
    c.p++; /* '}' */
    npy_skip_ws(&c);
    if (c.p != c.end || !seen[0] || !seen[1] || !seen[2]) goto bad;
    return 0;
bad:
    npy_err(err, errlen, "header is not a dict with exactly 'descr', 'fortran_order', 'shape'");
    return -1;
}

int npy_parse(const void *buf, size_t len, npy_array *out, size_t *data_off, char *err,
              size_t errlen) {
    const uint8_t *b = buf;
    memset(out, 0, sizeof *out);
    if (!buf || len < 10 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN)) {
        npy_err(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
        return -1;
    }
    int major = b[6], minor = b[7];
    size_t lenbytes = major == 1 ? 2 : 4;
    if (major < 1 || major > 3 || minor != 0) {
        npy_err(err, errlen, "format version %d.%d not supported (1.0, 2.0, 3.0)", major, minor);
        return -1;
    }
    if (len < 8 + lenbytes) {
        npy_err(err, errlen, "truncated: %zu bytes, header length field incomplete", len);
        return -1;
    }
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    if (lenbytes == 4) hlen |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
    size_t start = 8 + lenbytes;
    if (hlen > len - start) {
        npy_err(err, errlen, "truncated: header of %zu bytes, file has %zu after the prefix",
                hlen, len - start);
        return -1;
    }
    if (hlen == 0 || b[start + hlen - 1] != '\n') {
        npy_err(err, errlen, "header does not end with a newline");
        return -1;
    }
    for (size_t i = start; i < start + hlen - 1; i++)
        if (b[i] < 0x20 || b[i] > 0x7e) {
            npy_err(err, errlen, "header byte %zu (0x%02x) is not printable ASCII", i, b[i]);
            return -1;
        }
    char perr[160] = "";
    if (npy_parse_dict((const char *)b + start, (const char *)b + start + hlen - 1, out, perr,
                       sizeof perr)) {
        npy_err(err, errlen, "%s", perr);
        return -1;
    }
    size_t isz = npy_itemsize(out->dtype), need;
    if (npy_count(out->ndim, out->shape, isz, &out->count)) {
        npy_err(err, errlen, "shape too large");
        return -1;
    }
    need = out->count * isz;
    size_t off = start + hlen;
    if (len - off != need) {
        npy_err(err, errlen, "%s: data is %zu bytes, shape and dtype need %zu",
                len - off < need ? "truncated" : "trailing bytes", len - off, need);
        return -1;
    }
    out->data = (void *)(b + off);
    if (data_off) *data_off = off;
    return 0;
}

int npy_read(const char *path, npy_array *out, char *err, size_t errlen) {
    JEPA_ASSERT(out && npy_little_endian());
    memset(out, 0, sizeof *out);
    char why[SPEC_ERR_MAX] = "cannot open (null): no path";
    off_t size;
    int fd = path ? spec_open_regular(path, &size, why, sizeof why) : -1; /* a FIFO: never waited on */
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (fd >= 0 && !f) {
        snprintf(why, sizeof why, "cannot open %s: %s", path, strerror(errno));
        close(fd);
    }
    if (!f) {
        npy_err(err, errlen, "npy: %s", why);
        return -1;
    }
    size_t len = (size_t)size;
    char *buf = JEPA_MALLOC(len ? len : 1);
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        npy_err(err, errlen, "npy: %s: read %zu of %zu bytes", path, got, len);
        jepa_free(buf);
        return -1;
    }
    size_t off = 0;
    char perr[256];
    if (npy_parse(buf, len, out, &off, perr, sizeof perr)) {
        npy_err(err, errlen, "npy: %s: %s", path, perr);
        jepa_free(buf);
        memset(out, 0, sizeof *out);
        return -1;
    }
    /* the data to the front of the buffer: the caller owns one block */
    memmove(buf, buf + off, len - off);
    out->data = buf;
    return 0;
}

void npy_free(npy_array *a) {
    if (!a) return;
    jepa_free(a->data);
    a->data = NULL;
}
