/* jepa-train SPEC.yaml [--set key.path=value ...]: train one run, as one
 * process or as W data-parallel ranks under mpirun/srun (same binary). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "jepa.h"

static void usage(FILE *f) {
    fprintf(f, "usage: jepa-train SPEC.yaml [--set key.path=value ...] [--exact-spec FILE]\n"
               "Trains the run SPEC describes; prints the evaluation's `name value` lines last.\n"
               "--exact-spec FILE: keep FILE's text as RUN_DIR/spec.yaml instead of SPEC's (jepa-launch\n"
               "  runs the resolved spec and keeps the file the user wrote)\nKeys:\n");
    spec_print_help(f);
}

static int run(int argc, char **argv);

/* --exact-spec FILE's text, kept as RUN/spec.yaml: a spec itself (a
 * binary file would be cut at its first NUL), bounded like any spec. NULL
 * after one line on stderr. */
static char *exact_spec_read(const char *path) {
    size_t len = 0;
    char *text = cli_slurp(path, &len), err[SPEC_ERR_MAX];
    if (!text) {
        fprintf(stderr, "jepa-train: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    jepa_spec check;
    spec_defaults(&check);
    if (strlen(text) != len) snprintf(err, sizeof err, "%s: holds a NUL byte; not a run spec", path);
    if (strlen(text) != len || spec_load_string(&check, text, path, err, sizeof err)) {
        fprintf(stderr, "jepa-train: --exact-spec %s\n", err);
        free(text);
        return NULL;
    }
    return text;
}

int main(int argc, char **argv) {
    blas_core_select(argv);
    cli_catch_oom();
    comm_init(&argc, &argv);
    int rc = run(argc, argv);
    comm_finalize();
    return rc;
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
    const char *exact_seen = NULL;
    for (int j = 0; j < nu; j++) {
        const char *a = argv[unused[j]], *exact = NULL;
        if (!strcmp(a, "--exact-spec") && j + 1 < nu && unused[j + 1] == unused[j] + 1) exact = argv[unused[++j]];
        else if (!strncmp(a, "--exact-spec=", 13)) exact = a + 13;
        else if (!strcmp(a, "--exact-spec")) {
            fprintf(stderr, "jepa-train: --exact-spec needs a FILE\n");
            free(text);
            return 2;
        }
        if (!exact && (!strcmp(a, "--help") || !strcmp(a, "-h"))) { /* after SPEC too */
            usage(stdout);
            free(text);
            return 0;
        }
        if (!exact) {
            fprintf(stderr, "jepa-train: unknown argument '%s' (try --help)\n", a);
            free(text);
            return 2;
        }
        free(text);
        text = NULL;
        if (exact_seen) {
            fprintf(stderr, "jepa-train: --exact-spec given twice (%s, then %s)\n", exact_seen, exact);
            return 2;
        }
        exact_seen = exact;
        if (!(text = exact_spec_read(exact))) return 2;
    }
    train_result res;
    char err[SPEC_ERR_MAX];
    rc = train_run(&s, text, &res, err, sizeof err);
    free(text);
    if (rc && res.nonfinite) {
        /* every rank saw the same global loss and all-reduced gradients:
         * all stop together, cleanly, with one message */
        if (lead) fprintf(stderr, "jepa-train: %s\n", err);
        return TRAIN_EXIT_NONFINITE;
    }
    if (rc && res.refused) { /* every rank knows; the lowest failing one says why, once */
        if (comm_rank() == res.fail_rank) {
            if (comm_world() == 1) fprintf(stderr, "jepa-train: %s\n", err);
            else fprintf(stderr, "jepa-train: rank %d: %s\n", comm_rank(), err);
        }
        return TRAIN_EXIT_REFUSED;
    }
    if (rc) {
        if (comm_world() == 1) {
            fprintf(stderr, "jepa-train: %s\n", err);
            return 1;
        }
        /* the rank that failed names itself and ends the whole job */
        if (!res.remote_failure) comm_fatal("%s", err);
        return 1;
    }
    if (res.interrupted) {
        if (lead)
            fprintf(stderr,
                    "jepa-train: stopped by signal %d after step %lld of %lld: checkpoint %s "
                    "written; continue with --set resume=auto (exit %d)\n",
                    res.interrupted, (long long)res.steps, (long long)res.planned_steps,
                    res.ckpt_path, TRAIN_EXIT_INTERRUPTED);
        return TRAIN_EXIT_INTERRUPTED;
    }
    printf("run_dir %s\nsteps %lld\nfinal_loss %.4f\n", s.run_dir, (long long)res.steps,
           res.final_loss);
    char fb[32];
    for (int i = 0; i < res.eval.n; i++) printf("%s %s\n", res.eval.name[i], obj_eval_fmt(fb, res.eval.value[i]));
    return 0;
}
