/* spec_read.c - the one bounded reader of the trainer's and the launcher's
 * text files (specs, sweep files, a run's state and summary, a sweep's
 * points.csv): regular files only, each up to a limit its caller states,
 * so a link to /dev/zero, a FIFO or a huge file is refused in one line
 * naming it instead of growing without end or waiting for a writer. Their
 * other inputs (checkpoints, `latest`, .npy files, logs) open through
 * spec_open_regular / spec_fopen_regular and are refused the same way. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "open_regular.h"
#include "spec.h"
#include "spec_internal.h"

int spec_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* spec_fail(), then errno = e: the callers tell a missing file (ENOENT) from a bad one */
static int fail_errno(int e, char *err, size_t errlen, const char *fmt, const char *path, const char *why) {
    spec_fail(err, errlen, fmt, path, why);
    errno = e;
    return -1;
}

int spec_open_regular(const char *path, off_t *size, char *err, size_t errlen) {
    int fd = open_regular(path, size), e = errno;
    if (fd == -1) return fail_errno(e, err, errlen, "cannot open %s: %s", path, strerror(e));
    if (fd < 0 && e != EINVAL) return fail_errno(e, err, errlen, "cannot read %s: %s", path, strerror(e));
    if (fd < 0) return fail_errno(e, err, errlen, "%s: %s", path, "not a regular file (a device, FIFO or socket may never end)");
    return fd;
}

FILE *spec_fopen_regular(const char *path, char *err, size_t errlen) {
    off_t size;
    int fd = spec_open_regular(path, &size, err, errlen);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (fd >= 0 && !f) {
        int e = errno;
        close(fd);
        fail_errno(e, err, errlen, "cannot open %s: %s", path, strerror(e));
    }
    return f;
}

int spec_read_file(const char *path, size_t max, const char *what, char **text, size_t *len, char *err,
                   size_t errlen) {
    char big[64];
    off_t size;
    int fd = spec_open_regular(path, &size, err, errlen);
    *text = NULL;
    if (fd < 0) return -1;
    snprintf(big, sizeof big, "%zu", max);
    if ((uintmax_t)size > max) {
        close(fd);
        spec_fail(err, errlen, "%s: larger than %s bytes; not a %s?", path, big, what);
        return errno = EFBIG, -1;
    }
    size_t cap = (size_t)size + 1, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t k = 1;
    /* a file that grows while read is read to max + 1 bytes at most */
    while (buf && k > 0 && n <= max) {
        if (n == cap) {
            cap = cap > max / 2 ? max + 1 : cap * 2;
            char *b = realloc(buf, cap + 1);
            if (!b) break;
            buf = b;
        }
        k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) k = 1;
        else if (k > 0) n += (size_t)k;
    }
    int e = k < 0 ? errno : 0;
    close(fd);
    if (buf && !e && n <= max && k == 0) {
        buf[n] = 0;
        *text = buf;
        if (len) *len = n;
        return 0;
    }
    free(buf);
    if (e) return fail_errno(e, err, errlen, "cannot read %s: %s", path, strerror(e));
    if (n <= max) return fail_errno(ENOMEM, err, errlen, "%s: %s", path, "out of memory");
    spec_fail(err, errlen, "%s: larger than %s bytes; not a %s?", path, big, what);
    return errno = EFBIG, -1;
}
