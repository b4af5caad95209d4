/* cli.c - see cli.h. */
#include "cli.h"
#include "comm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cli_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1024 > cap) buf = realloc(buf, cap *= 2);
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f) ? errno : 0; /* EISDIR for a directory: not an empty file */
    fclose(f);
    if (bad) {
        free(buf);
        errno = bad;
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

int cli_load_spec(const char *prog, jepa_spec *s, const char *path, int argc, char **argv,
                  int first, char **spec_text, int *unused, int *nunused) {
    char err[SPEC_ERR_MAX];
    spec_defaults(s);
    if (spec_load_file(s, path, err, sizeof err)) {
        if (comm_rank() == 0) fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    int nu = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) {
                if (comm_rank() == 0) fprintf(stderr, "%s: --set needs key.path=value\n", prog);
                return 2;
            }
            a = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            a += 6;
        } else {
            if (unused) unused[nu++] = i;
            continue;
        }
        if (spec_set(s, a, err, sizeof err)) {
            if (comm_rank() == 0) fprintf(stderr, "%s: %s\n", prog, err);
            return 2;
        }
    }
    if (nunused) *nunused = nu;
    if (spec_validate(s, err, sizeof err)) {
        if (comm_rank() == 0) fprintf(stderr, "%s: %s: %s\n", prog, path, err);
        return 2;
    }
    if (spec_text) {
        *spec_text = cli_slurp(path);
        if (!*spec_text) {
            if (comm_rank() == 0) fprintf(stderr, "%s: cannot read %s: %s\n", prog, path, strerror(errno));
            return 2;
        }
    }
    return 0;
}
