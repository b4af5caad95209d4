/* util.c - fail-fast helpers shared by the trainer: fatal errors that name the
 * source location, and aligned zeroed allocation (64 bytes: AVX-512 lines). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"

static void __attribute__((noreturn)) fatal_exit(int code, const char *file, int line,
                                                  const char *fmt, va_list ap) {
    fprintf(stderr, "jepa: fatal at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(code);
}

void jepa_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fatal_exit(70, file, line, fmt, ap);
}

/* out of memory: its own exit status, which the launcher does not restart */
void jepa_fatal_nomem(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fatal_exit(TRAIN_EXIT_NOMEM, file, line, fmt, ap);
}

/* calloc, then the first 64-byte boundary past room for the raw pointer,
 * which sits just below the block. calloc rather than memset: glibc maps
 * large blocks fresh from the kernel and skips the zeroing, so pages no one
 * touches (activations sized for the worst-case mask) stay out of the
 * resident set, and init does not write every byte once. */
void *jepa_malloc(size_t n, const char *file, int line) {
    if (n == 0) n = 64;
    n = (n + 63) & ~(size_t)63;
    char *raw = calloc(1, n + 64);
    if (!raw) /* in range one by one, the keys can still ask for more than the machine has */
        jepa_fatal_nomem(file, line, "out of memory allocating %zu bytes (%.1f GiB): the model "
                   "(model.width, model.depth, model.img_size / model.patch) or the batch "
                   "(train.batch_per_rank) is too large for this machine", n, n / 1073741824.0);
    char *p = (char *)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

/* Frees what jepa_malloc returned (never free() it directly). */
void jepa_free(void *p) {
    if (!p) return;
    void *raw;
    memcpy(&raw, (char *)p - sizeof(void *), sizeof raw);
    free(raw);
}
