/* cli.c - see cli.h. */
#include "cli.h"
#include "comm.h"
#include "jepa.h"
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_set_value(int argc, char **argv, int i) {
    if (!strcmp(argv[i], "--set")) return i + 1 < argc ? argv[i + 1] : NULL;
    return !strncmp(argv[i], "--set=", 6) ? argv[i] + 6 : NULL;
}

/* The checks of cli_load_spec on one rank: 0, or 2 with the message in msg. */
static int load_spec_local(jepa_spec *s, const char *path, int argc, char **argv, int first,
                           char **spec_text, int *unused, int *nunused, char *msg, size_t n) {
    char err[SPEC_ERR_MAX];
    spec_defaults(s);
    if (spec_load_file(s, path, err, sizeof err)) return snprintf(msg, n, "%s", err), 2;
    int nu = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) return snprintf(msg, n, "--set needs key.path=value"), 2;
            a = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            a += 6;
        } else {
            if (unused) unused[nu++] = i;
            continue;
        }
        if (spec_set(s, a, err, sizeof err)) return snprintf(msg, n, "%s", err), 2;
    }
    if (nunused) *nunused = nu;
    if (spec_validate(s, err, sizeof err)) return snprintf(msg, n, "%s: %s", path, err), 2;
    if (spec_text && spec_read_file(path, SPEC_FILE_MAX, "run spec", spec_text, NULL, err, sizeof err))
        return snprintf(msg, n, "%s", err), 2;
    return 0;
}

int cli_load_spec(const char *prog, jepa_spec *s, const char *path, int argc, char **argv,
                  int first, char **spec_text, int *unused, int *nunused) {
    char msg[SPEC_ERR_MAX + 64] = "";
    if (spec_text) *spec_text = NULL;
    int rc = load_spec_local(s, path, argc, argv, first, spec_text, unused, nunused, msg, sizeof msg);
    /* every rank stops if one does (a spec another node cannot read), and
     * the lowest failing rank alone says why */
    int who = comm_any_error(rc != 0);
    if (who < 0) return 0;
    if (comm_rank() == who) {
        if (who == 0) fprintf(stderr, "%s: %s\n", prog, msg);
        else fprintf(stderr, "%s: rank %d: %s\n", prog, who, msg);
    }
    if (spec_text) {
        free(*spec_text);
        *spec_text = NULL;
    }
    return 2;
}

static void __attribute__((noreturn)) data_oom(size_t bytes) {
    jepa_fatal_nomem(__FILE__, __LINE__, "out of memory allocating %zu bytes (%.1f GiB) for the "
                     "data reader: lower data.shuffle_buffer, data.prefetch or "
                     "train.batch_per_rank", bytes, bytes / 1073741824.0);
}

void cli_catch_oom(void) { shard_set_oom_handler(data_oom); }

int cli_progress(void) {
    const char *v = getenv("JEPA_PROGRESS");
    if (v && !strcmp(v, "1")) return 1;
    if (v && !strcmp(v, "0")) return 0;
    return isatty(STDERR_FILENO);
}
