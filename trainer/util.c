/* util.c - fail-fast helpers shared by the trainer: fatal errors that name the
 * source location, and aligned zeroed allocation (64 bytes: AVX-512 lines). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"

void jepa_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "jepa: fatal at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(70);
}

void *jepa_malloc(size_t n, const char *file, int line) {
    void *p = NULL;
    if (n == 0) n = 64;
    n = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, n) != 0 || !p)
        jepa_fatal(file, line, "out of memory allocating %zu bytes", n);
    memset(p, 0, n);
    return p;
}

void jepa_free(void *p) { free(p); }
