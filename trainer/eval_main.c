/* jepa-eval RUN_DIR | --random SPEC.yaml | --pixels SPEC.yaml [--export DIR] [--set k=v ...]
 * Evaluates a trained run (its resolved spec + checkpoint) with its
 * objective's evaluation, or a randomly initialised model of a spec (the
 * baseline). Prints `name value` lines (probe_acc, ...). Runs as one
 * process or under mpirun (ranks share the work where the evaluation can). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "objective.h"
#include "stdout_close.h"

/* The argument and spec checks: every rank makes the same ones, so rank 0
 * alone says what failed (as cli_load_spec does); one line. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void say(const char *fmt, ...) {
    if (comm_rank() != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int eval_run(const jepa_spec *sp, const char *run, int random, int pixels, const objective_ops *ops,
                    const char *export_dir);

/* --export DIR anywhere on the line: taken out (into av, ac words) before
 * the mode, the first word left, is read, so `jepa-eval --export DIR RUN`
 * is `jepa-eval RUN --export DIR`. 0, or 2 after one line. */
static int take_export(int argc, char **argv, char **av, int *ac, const char **dir) {
    *ac = 0;
    *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (i == 0 || strcmp(argv[i], "--export") != 0) {
            av[(*ac)++] = argv[i];
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || !v[0] || !strncmp(v, "--", 2)) {
            say("jepa-eval: --export needs a directory\n");
            return 2;
        }
        if (*dir) {
            say("jepa-eval: --export given twice (%s, then %s)\n", *dir, v);
            return 2;
        }
        *dir = v;
        i++;
    }
    av[*ac] = NULL;
    return 0;
}

/* SIGINT/SIGTERM from startup (MPI_Init, the spec, the data check) to the
 * end of the evaluation (minutes of feature extraction): rank 0 says so in
 * one line, then the signal ends the process as it
 * would have (128 + its number). The line is made beforehand: a handler
 * may only write(2). An export is written whole or not at all
 * (eval_images.c): it is named when given, and said written when its last
 * file is in place. Once eval has said how it ended, quiet. */
static volatile sig_atomic_t eval_quiet;
/* set once eval_export_check found no file the export writes: only then
 * can one there be ours (before, it may be an older export's) */
static volatile sig_atomic_t eval_export_checked;
static int eval_speaks;
static char eval_export_last[SPEC_STR_MAX + 32], eval_export_said[SPEC_STR_MAX + 64];

static void eval_say(const char *a) {
    ssize_t w = write(STDERR_FILENO, a, strlen(a)); /* the result does not matter */
    (void)w;
}

static void on_interrupt(int sig) {
    if (!eval_quiet && eval_speaks) {
        eval_say(sig == SIGINT ? "jepa-eval: interrupted by SIGINT" : "jepa-eval: interrupted by SIGTERM");
        int written = eval_export_said[0] && eval_export_checked && access(eval_export_last, F_OK) == 0;
        if (!eval_export_said[0]) {
            eval_say(": no figures\n");
        } else {
            eval_say(written ? ": no figures; --export " : ": no figures, nothing written for --export ");
            eval_say(eval_export_said);
            eval_say(written ? " was written\n" : "\n");
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Our rank before MPI_Init can say it: the launcher's (Open MPI, PMIx, PMI)
 * environment, else 0 (one process). */
static int eval_env_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

/* The --export DIR the line names, the first one (a second is refused
 * later): known from the start, so a signal during startup says nothing
 * was written for it. */
static void eval_interrupt_export(char **argv) {
    for (int i = 1; argv[i] && argv[i + 1]; i++)
        if (!strcmp(argv[i], "--export") && argv[i + 1][0] && strncmp(argv[i + 1], "--", 2) != 0) {
            snprintf(eval_export_last, sizeof eval_export_last, "%s/test_labels.npy", argv[i + 1]); /* moved in last */
            snprintf(eval_export_said, sizeof eval_export_said, "%s", argv[i + 1]);
            return;
        }
}

/* SIGINT/SIGTERM to on_interrupt, unless ignored on entry (nohup, a
 * script's background job): those stay ignored. Called first thing in
 * main, so a signal during startup (MPI_Init, the spec, the data check)
 * says its line too; rank 0 speaks, as the environment says until MPI
 * does. Then they are unblocked: main blocks them across blas_core_select,
 * whose re-exec resets the handler, so one that came meanwhile arrives
 * here, in the new image. */
static void eval_interrupt_catch(char **argv) {
    eval_speaks = eval_env_rank() == 0;
    eval_interrupt_export(argv);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    static const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
    sigprocmask(SIG_UNBLOCK, &ss, NULL);
}

/* After a step every rank took: 0 if none failed; else the lowest failing
 * rank says why, once (the others' errors follow from it: a rank's data
 * path may be another node's), and 1. Ranks that arrive early wait
 * without spinning (comm_wait_idle) while the others still work. */
static int eval_failed(int rc, const char *err) {
    comm_wait_idle();
    int who = comm_any_error(rc != 0);
    if (who < 0) return 0;
    if (comm_rank() == who) {
        if (who == 0) fprintf(stderr, "jepa-eval: %s\n", err);
        else fprintf(stderr, "jepa-eval: rank %d: %s\n", who, err);
    }
    return 1;
}

static int eval(int argc0, char **argv0) {
    char *argv[65];
    const char *export_dir = NULL;
    int argc, rc;
    if (argc0 > 64) {
        say("jepa-eval: too many arguments\n");
        return 2;
    }
    if ((rc = take_export(argc0, argv0, argv, &argc, &export_dir))) return rc;
    if (argc < 2) {
        say("jepa-eval: missing RUN_DIR (usage: jepa-eval RUN_DIR | --random SPEC.yaml | "
            "--pixels SPEC.yaml [--export DIR] [--set key=value ...])\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: jepa-eval RUN_DIR [--export DIR] [--set key=value ...]\n"
               "       jepa-eval --random SPEC.yaml [--export DIR] [--set key=value ...]\n"
               "       jepa-eval --pixels SPEC.yaml [--export DIR] [--set key=value ...]\n"
               "Evaluates a run's model (image objectives: linear probe, kNN, few-label probes;\n"
               "world: prediction errors and position probes), a randomly initialised one of\n"
               "SPEC (--random), or raw pixels with the same evaluation (--pixels). Prints\n"
               "`name value` lines. --export DIR writes the image features and labels as .npy\n"
               "(train_features, train_labels, test_features, test_labels; refused where one of them\n"
               "is already there: an export never replaces files). Runs under mpirun too:\n"
               "every rank extracts a slice of the features. --export DIR may stand anywhere on\n"
               "the line, --set after the mode. Exit 0; 2 a bad command line, spec or --export\n"
               "DIR (said before any work); 1 the evaluation failed (data, checkpoint);\n"
               "SIGINT/SIGTERM: one line, nothing written for --export, then the signal's own\n"
               "status (130, 143).\n");
        return 0;
    }
    int random = !strcmp(argv[1], "--random"), pixels = !strcmp(argv[1], "--pixels");
    if ((random || pixels) && argc < 3) {
        say("jepa-eval: %s needs SPEC.yaml\n", argv[1]);
        return 2;
    }
    random |= pixels; /* both read a spec, not a run */
    char spec_path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    if (random) snprintf(spec_path, sizeof spec_path, "%s", argv[2]);
    else snprintf(spec_path, sizeof spec_path, "%s/spec.resolved.yaml", argv[1]);
    jepa_spec s;
    int unused[64], nu = 0;
    rc = cli_load_spec("jepa-eval", &s, spec_path, argc, argv, random ? 3 : 2, NULL, unused, &nu);
    if (rc) return rc;
    for (int j = 0; j < nu; j++) {
        const char *a = argv[unused[j]];
        if (!strcmp(a, "--random") || !strcmp(a, "--pixels")) {
            say("jepa-eval: %s: one mode per call, as the first argument (jepa-eval "
                "RUN_DIR | --random SPEC.yaml | --pixels SPEC.yaml)\n", a);
            return 2;
        } else {
            say("jepa-eval: unknown argument '%s'\n", a);
            return 2;
        }
    }
    /* eval.probe is whether jepa-train evaluates at its end; jepa-eval
     * always does, so turning it off here is a mistake, said at once; and
     * it writes no run directory, so run.dir would be silently ignored */
    for (int i = 2; i < argc; i++) {
        const char *v = cli_set_value(argc, argv, i);
        if (!v) continue;
        if (!strncmp(v, "eval.probe=", 11) && !s.eval.probe) {
            say("jepa-eval: --set %s: jepa-eval always evaluates (eval.probe says "
                "whether jepa-train does at its end)\n", v);
            return 2;
        }
        if (!strncmp(v, "run.dir=", 8)) {
            say("jepa-eval: --set %s: jepa-eval writes no run directory (it reads RUN_DIR, "
                "its first argument; --export DIR writes features)\n", v);
            return 2;
        }
    }
    /* the probe's data before anything is written or computed */
    const objective_ops *ops = objective_find(s.objective);
    if (pixels && !ops->eval_labels) { /* said before its data is looked at: no data fits */
        say("jepa-eval: --pixels %s: objective %s: raw-pixel probing needs labelled images, which its data "
            "has not (jepa-eval RUN_DIR evaluates a world run)\n", spec_path, s.objective);
        return 2;
    }
    if (eval_failed((pixels || ops->eval_labels) && objective_eval_data(&s, err, sizeof err), err))
        return 1;
    if (export_dir && !pixels && !ops->eval_labels) {
        say("jepa-eval: --export %s: objective %s has no image features to export\n", export_dir,
            s.objective);
        return 2;
    }
    /* the export directory first: a path that cannot be made, or files there
     * that the export would replace, fail before minutes of work, as a bad
     * argument (2). Rank 0's view (it alone writes), and nothing made yet:
     * the export makes DIR when it writes, so a run stopped or failed before
     * that leaves no directory */
    if (export_dir) {
        char msg[SPEC_ERR_MAX + SPEC_STR_MAX + 16] = "";
        int bad = comm_rank() == 0 && eval_export_check(export_dir, err, sizeof err);
        if (bad) snprintf(msg, sizeof msg, "--export %s: %s", export_dir, err);
        if (eval_failed(bad, msg)) return 2;
        eval_export_checked = 1;
    }
    rc = eval_run(&s, argv[1], random, pixels, ops, export_dir);
    /* a signal the export caught (it then wrote nothing) ends the process
     * now, after eval_failed's one line said so (eval_images.c, export_all) */
    eval_quiet = 1;
    shard_interrupt_release(0);
    return rc;
}

/* The evaluation itself, once every argument has checked out; 0 or 1. */
/* JEPA_DEBUG_SLOW_EVAL=S (a test hook, as jepa-train's): the evaluation
 * sleeps S seconds first, so a test can signal it before any export
 * however fast the machine extracts; a signal ends the process in it. */
static void eval_debug_slow(void) {
    const char *v = getenv("JEPA_DEBUG_SLOW_EVAL");
    double sec = v ? atof(v) : 0.0;
    if (sec <= 0) return;
    struct timespec ts = {(time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int eval_run(const jepa_spec *sp, const char *run, int random, int pixels, const objective_ops *ops,
                    const char *export_dir) {
    jepa_spec s = *sp;
    char err[SPEC_ERR_MAX] = "";
    int rc = 0;
    obj_eval ev;
    char fb[32]; /* obj_eval_fmt */
    eval_debug_slow();
    if (pixels) {
        if (eval_failed(eval_pixels(&s, export_dir, &ev, err, sizeof err), err)) return 1;
        for (int i = 0; i < ev.n; i++) printf("%s %s\n", ev.name[i], obj_eval_fmt(fb, ev.value[i]));
        return 0;
    }
    shard_schema sc;
    objective *o = NULL;
    /* the training run's batch: sgemm's blocking depends on the row count, so
     * features (and the probe) are bitwise those of the run only with it */
    rc = objective_data_schema(s.data.train, &sc, err, sizeof err) ||
         ops->create(&o, &s, &sc, comm_rank(), comm_world(), err, sizeof err);
    if (rc == 0 && random) {
        rc = ops->data_stats(o, s.data.train, err, sizeof err);
    } else if (rc == 0) {
        char ck[2 * SPEC_STR_MAX + 64];
        ckpt_meta want, meta;
        train_meta_init(&want, &s, 0);
        want.train_hash = 0; /* any training settings: only the model must match */
        rc = ckpt_dir_run_checkpoint(run, ck, sizeof ck, err, sizeof err);
        if (rc == 1) say("jepa-eval: %s/checkpoint.bin absent (run not finished): using %s\n", run, ck);
        if (rc >= 0) rc = ckpt_load(ck, &o->m, &want, &meta, err, sizeof err);
        o->mean = meta.norm_mean;
        o->std = meta.norm_std;
    }
    /* every rank has its model, or none evaluates: no rank waits in a
     * collective for one that gave up */
    if (eval_failed(rc, err)) {
        if (o) ops->destroy(o);
        return 1;
    }
    o->export_dir = export_dir;
    rc = ops->evaluate(o, &s, &ev, err, sizeof err);
    ops->destroy(o);
    if (eval_failed(rc, err)) return 1;
    for (int i = 0; i < ev.n; i++) printf("%s %s\n", ev.name[i], obj_eval_fmt(fb, ev.value[i]));
    return 0;
}

int main(int argc, char **argv) {
    eval_interrupt_catch(argv);
    /* blas_core_select may exec us again, which resets the handler: blocked
     * across it, a signal waits for the new image's eval_interrupt_catch */
    sigset_t ss, old;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigprocmask(SIG_BLOCK, &ss, &old);
    blas_core_select(argv);
    sigprocmask(SIG_SETMASK, &old, NULL);
    cli_catch_oom();
    comm_init(&argc, &argv);
    eval_speaks = comm_rank() == 0;
    if (comm_rank() != 0) freopen("/dev/null", "w", stdout); /* rank 0 speaks */
    int rc = eval(argc, argv);
    eval_quiet = 1; /* said how it ended: a signal in MPI_Finalize changes nothing */
    comm_finalize();
    return stdout_close("jepa-eval", rc); /* after MPI: other ranks write /dev/null */
}
