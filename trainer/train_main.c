/* jepa-train SPEC.yaml [--set key.path=value ...]: train one run, as one
 * process or as W data-parallel ranks under mpirun/srun (same binary). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "jepa.h"
#include "run_lock.h"
#include "stdout_close.h"

static void usage(FILE *f) {
    fprintf(f, "usage: jepa-train SPEC.yaml [--set key.path=value ...] [--exact-spec FILE]\n"
               "Trains the run SPEC describes; prints the evaluation's `name value` lines last.\n"
               "--exact-spec FILE: keep FILE's text as RUN_DIR/spec.yaml instead of SPEC's (jepa-launch\n"
               "  runs the resolved spec and keeps the file the user wrote)\nKeys:\n");
    spec_print_help(f);
}

static int run(int argc, char **argv);

/* A failed run's one line, also into RUN/error when jepa-launch started us
 * (RUN_LOCK_ENV set): its restart loop puts the line in RUN/state and
 * launch.log, so the run directory keeps why it failed, not the terminal
 * alone. Temp file and rename: whole or not at all; a directory that
 * cannot take it loses nothing else. */
static void note_failure(const jepa_spec *s, const char *line) {
    char path[SPEC_STR_MAX + 16], tmp[SPEC_STR_MAX + 48];
    if (!getenv(RUN_LOCK_ENV) || !s->run_dir[0]) return;
    snprintf(path, sizeof path, "%s/error", s->run_dir);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()); /* ranks may fail at once */
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int ok = fprintf(f, "%s\n", line) > 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) unlink(tmp);
}

/* "jepa-train: ..." on stderr, and noted (note_failure) */
static void say_failed(const jepa_spec *s, const char *fmt, ...) {
    char line[SPEC_ERR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
    note_failure(s, line);
}

/* --exact-spec FILE's text, kept as RUN/spec.yaml: a spec itself (a
 * binary file would be cut at its first NUL), read as any spec is (a
 * regular file, 1 MiB at most). NULL + msg. */
static char *exact_spec_read(const char *path, char *msg, size_t n) {
    size_t len = 0;
    char *text, err[SPEC_ERR_MAX];
    jepa_spec check;
    spec_defaults(&check);
    int rc = spec_read_file(path, SPEC_FILE_MAX, "run spec", &text, &len, err, sizeof err);
    if (rc == 0 && strlen(text) != len)
        snprintf(err, sizeof err, "%s: holds a NUL byte; not a run spec", path), rc = -1;
    if (rc == 0) rc = spec_load_string(&check, text, path, err, sizeof err);
    if (rc == 0) return text;
    snprintf(msg, n, "--exact-spec %s", err);
    free(text);
    return NULL;
}

/* The arguments left after SPEC and its --set: --exact-spec FILE (once;
 * its text into *text), --help. 0, 1 (help), or 2 + msg. */
static int rest_args(char **argv, const int *unused, int nu, char **text, char *msg, size_t n) {
    const char *seen = NULL;
    for (int j = 0; j < nu; j++) {
        const char *a = argv[unused[j]], *exact = NULL;
        if (!strcmp(a, "--exact-spec") && j + 1 < nu && unused[j + 1] == unused[j] + 1) exact = argv[unused[++j]];
        else if (!strncmp(a, "--exact-spec=", 13)) exact = a + 13;
        else if (!strcmp(a, "--exact-spec")) return snprintf(msg, n, "--exact-spec needs a FILE"), 2;
        if (!exact && (!strcmp(a, "--help") || !strcmp(a, "-h"))) return 1; /* after SPEC too */
        if (!exact) return snprintf(msg, n, "unknown argument '%s' (try --help)", a), 2;
        if (seen) return snprintf(msg, n, "--exact-spec given twice (%s, then %s)", seen, exact), 2;
        seen = exact;
        free(*text);
        if (!(*text = exact_spec_read(exact, msg, n))) return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    blas_core_select(argv);
    cli_catch_oom();
    comm_init(&argc, &argv);
    int rc = run(argc, argv);
    comm_finalize();
    return stdout_close("jepa-train", rc); /* after MPI: other ranks write /dev/null */
}

static int run(int argc, char **argv) {
    const int lead = comm_rank() == 0;
    if (!lead) freopen("/dev/null", "w", stdout); /* rank 0 speaks */
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--")) { /* POSIX: the end of options, SPEC follows */
        argv[1] = argv[0];
        argv++, argc--;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "jepa-train: missing SPEC.yaml (try --help)\n");
        return 2;
    }
    jepa_spec s;
    char *text = NULL;
    int unused[256], nu = 0;
    if (argc > 256) {
        fprintf(stderr, "jepa-train: too many arguments\n");
        return 2;
    }
    int rc = cli_load_spec("jepa-train", &s, argv[1], argc, argv, 2, &text, unused, &nu);
    if (rc) return rc;
    /* every rank reads the same arguments and files; the lowest failing
     * rank alone says why (a file missing on one node fails that rank) */
    char msg[SPEC_ERR_MAX + 64] = "";
    rc = rest_args(argv, unused, nu, &text, msg, sizeof msg);
    int who = comm_any_error(rc == 2);
    if (who >= 0 || rc == 1) {
        if (who == 0 && comm_rank() == 0) say_failed(&s, "jepa-train: %s", msg);
        if (who > 0 && comm_rank() == who) say_failed(&s, "jepa-train: rank %d: %s", who, msg);
        if (who < 0) usage(stdout);
        free(text);
        return who >= 0 ? 2 : 0;
    }
    train_result res;
    char err[SPEC_ERR_MAX];
    rc = train_run(&s, text, &res, err, sizeof err);
    free(text);
    if (rc && res.nonfinite) {
        /* every rank saw the same global loss and all-reduced gradients:
         * all stop together, cleanly, with one message */
        if (lead) say_failed(&s, "jepa-train: %s", err);
        return TRAIN_EXIT_NONFINITE;
    }
    if (rc && res.refused) { /* every rank knows; the lowest failing one says why, once */
        if (comm_rank() == res.fail_rank) {
            if (comm_world() == 1) say_failed(&s, "jepa-train: %s", err);
            else say_failed(&s, "jepa-train: rank %d: %s", comm_rank(), err);
        }
        return TRAIN_EXIT_REFUSED;
    }
    if (rc) {
        if (comm_world() == 1) {
            say_failed(&s, "jepa-train: %s", err);
            return 1;
        }
        /* the rank that failed names itself and ends the whole job */
        if (!res.remote_failure) {
            char line[SPEC_ERR_MAX + 64];
            snprintf(line, sizeof line, "jepa: rank %d: %s", comm_rank(), err); /* as comm_fatal says it */
            note_failure(&s, line);
            comm_fatal("%s", err);
        }
        return 1;
    }
    if (res.interrupted) return TRAIN_EXIT_INTERRUPTED; /* rank 0 said so (train_run) */
    printf("run_dir %s\nsteps %lld\nfinal_loss %.4f\n", s.run_dir, (long long)res.steps,
           res.final_loss);
    char fb[32];
    for (int i = 0; i < res.eval.n; i++) printf("%s %s\n", res.eval.name[i], obj_eval_fmt(fb, res.eval.value[i]));
    return 0;
}
