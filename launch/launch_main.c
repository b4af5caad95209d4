/* jepa-launch: start runs with mpirun or Slurm, sweep hyperparameters, and
 * read back what runs are doing. A thin CLI over launch.h. */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "run_lock.h"
#include "stdout_close.h"


static void usage(FILE *f) {
    fputs("usage: jepa-launch COMMAND ...\n"
          "  run SPEC [--np N] [--dry-run] [--set key=value ...]   make the run directory, start mpirun here and wait,\n"
          "                                                       restarting a failed job up to max_restarts times\n"
          "                                                       (--np N is --set parallel.ranks=N; both, differing: refused)\n"
          "  resume RUN_DIR [--np N] [--dry-run]                  run again with resume=auto (world size: the checkpoint's),\n"
          "                                                       in RUN_DIR even when it was moved since; a finished\n"
          "                                                       run (summary.json) is not started again\n"
          "  resume RUN_DIR [--slurm|--local] [--dry-run]         a run made by `slurm` (job.sbatch or slurm_job there)\n"
          "                                                       is submitted again (job.sbatch, state, slurm_job), not\n"
          "                                                       run here; --local runs it here (parallel.nodes 1 only),\n"
          "                                                       --slurm submits any run; --dry-run prints the script\n"
          "  slurm SPEC [--dry-run] [--set key=value ...]         write RUN_DIR/job.sbatch and sbatch it (stopped:\n"
          "                                                       resume RUN_DIR submits it again)\n"
          "  sweep SWEEP [--slurm] [--parallel N] [--dry-run] [--set key=value ...]\n"
          "                                                       expand and run a sweep (docs/launch.md), N points at\n"
          "                                                       once (default: the file's parallel:) or as one Slurm\n"
          "                                                       job array; --set goes to every point (after the\n"
          "                                                       file's set:, not a varied key); run again, it skips\n"
          "                                                       finished points and continues the others (refused\n"
          "                                                       while Slurm still has a point's job queued)\n"
          "  results DIR                                          a sweep's points, best first by the objective's\n"
          "                                                       headline (probe_acc; world: pos_r2), or a run's one\n"
          "                                                       row (+ DIR/results.csv)\n"
          "  status DIR...                                        step, last loss and state of each run or sweep (the\n"
          "                                                       final loss and headline figure when done; where a\n"
          "                                                       resume starts, its newest checkpoint, when stopped,\n"
          "                                                       failed or stale); a Slurm job's state as squeue\n"
          "                                                       says it (stale when it is gone); several DIRs: each\n"
          "                                                       as alone (a sweep's after 'sweep DIR:'), the exit\n"
          "                                                       the worst\n"
          "  plot DIR                                             curves to DIR/plots/*.png (gnuplot)\n"
          "Every command that takes a spec accepts --set key.path=value or --set=key.path=value (keys: jepa-train\n"
          "--help), at most 256.\n"
          "--dry-run makes every check and starts nothing: run and resume print the mpirun command (resume of a\n"
          "Slurm run: the script, nothing written); sweep prints\n"
          "the --set every point gets, then each point's values (and whether it is finished or continued), and\n"
          "writes nothing (--slurm: no script either); slurm writes RUN_DIR (spec files, job.sbatch), prints the\n"
          "script and submits nothing.\n"
          "-- ends the options: a path after it may begin with '-' (or write ./-name).\n"
          "--trainer PATH (or $JEPA_TRAIN_BIN) picks the trainer; $JEPA_MPIRUN and $JEPA_SBATCH the launchers,\n"
          "$JEPA_SQUEUE the squeue that says whether a run dir's Slurm job is queued or gone, $JEPA_GNUPLOT the\n"
          "gnuplot.\n"
          "Exit status: 0; 2 a bad command line, spec or sweep file, or a run dir another job holds (one line on\n"
          "stderr; nothing made); slurm, sweep --slurm and resume of a Slurm run: 1 when sbatch ran and failed\n"
          "(the directory is kept with its script: sbatch may have queued the job; check squeue); 75 stopped by\n"
          "SIGINT, SIGTERM, SIGHUP, SIGUSR1 or another signal that would kill it, such as SIGUSR2 (resume\n"
          "RUN_DIR continues it from its checkpoint, or the same sweep command); run and resume: the job's status\n"
          "when it failed (1 for its 75); sweep: 1 when a point failed; status and results: 1 when a run or point is\n"
          "damaged or inconsistent (the table says which), 2 when a sweep's points.csv or sweep.yaml does not\n"
          "read or a sweep's results.csv cannot be written (a run's: a warning line).\n",
          f);
}

static int die(const char *msg) {
    fprintf(stderr, "jepa-launch: %s\n", msg);
    return 2;
}

typedef struct {
    const char **pos; /* the positionals (argc slots; parse allocates, dispatch frees) */
    int npos;
    const char *sets[LAUNCH_MAX_SETS];
    int nsets;
    int dry_run, slurm, local;
    const char *np, *parallel;
    launch_opts o;
} args;

/* The trainer as --trainer or $JEPA_TRAIN_BIN names it can run: a path (with
 * a '/') must be an executable regular file, checked here, not after mpirun
 * has started; a bare name is mpirun's to find on PATH. */
static int trainer_runs(const char *t) {
    struct stat ts;
    return !strchr(t, '/') || (stat(t, &ts) == 0 && S_ISREG(ts.st_mode) && access(t, X_OK) == 0);
}

/* allowed: the flags this command takes ("np", "slurm", "parallel", "set";
 * "dry" marks the commands that start the trainer; "many": any number of
 * positionals, else one) */
static int parse(int argc, char **argv, const char *cmd, const char *allowed, args *a, char *err, size_t errlen) {
    int npos = strstr(allowed, "many") ? argc : 1;
    memset(a, 0, sizeof *a);
    if (!(a->pos = calloc((size_t)argc, sizeof *a->pos))) launch_oom();
    int dashdash = 0; /* after "--" every word is a positional (a path may begin with '-') */
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        const char *val = NULL;
        if (!dashdash && !strcmp(s, "--")) {
            dashdash = 1;
            continue;
        }
        if (dashdash) {
            if (a->npos == npos)
                return snprintf(err, errlen, "%s: unexpected argument '%.80s' (try --help)", cmd, s), -1;
            a->pos[a->npos++] = s;
            continue;
        }
/* a flag's value: the next word, unless it is another option (--trainer --dry-run
 * must not swallow --dry-run and start a real run) */
#define TAKES(flag, name)                                                                          \
    (!strcmp(s, flag) && strstr(allowed, name)                                                     \
         ? (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0                                     \
                ? (val = argv[++i], 1)                                                             \
                : (snprintf(err, errlen, "%s %s: needs a value%s%.40s%s", cmd, flag,               \
                            i + 1 < argc ? " (got the option '" : "", i + 1 < argc ? argv[i + 1] : "", \
                            i + 1 < argc ? "')" : ""),                                             \
                   -1))                                                                            \
         : 0)
        int t;
        if ((t = TAKES("--set", "set"))) {
            if (t < 0) return -1;
            if (a->nsets == LAUNCH_MAX_SETS)
                return snprintf(err, errlen, "%s --set %.80s: more than %d --set options", cmd, val, LAUNCH_MAX_SETS), -1;
            a->sets[a->nsets++] = val;
        } else if (!strncmp(s, "--set=", 6) && strstr(allowed, "set")) {
            if (a->nsets == LAUNCH_MAX_SETS)
                return snprintf(err, errlen, "%s --set %.80s: more than %d --set options", cmd, s + 6, LAUNCH_MAX_SETS),
                       -1;
            a->sets[a->nsets++] = s + 6;
        } else if ((t = TAKES("--np", "np"))) {
            if (t < 0) return -1;
            if (a->np) return snprintf(err, errlen, "%s --np: given twice (%.40s, then %.40s)", cmd, a->np, val), -1;
            a->np = val;
        } else if ((t = TAKES("--parallel", "parallel"))) {
            if (t < 0) return -1;
            if (a->parallel)
                return snprintf(err, errlen, "%s --parallel: given twice (%.40s, then %.40s)", cmd, a->parallel, val), -1;
            a->parallel = val;
        } else if ((t = TAKES("--trainer", ""))) {
            if (t < 0) return -1;
            if (!*val) return snprintf(err, errlen, "%s --trainer '': an empty path (name the trainer)", cmd), -1;
            if (!trainer_runs(val))
                return snprintf(err, errlen, "%s --trainer %.200s: not an executable file", cmd, val), -1;
            if (a->o.trainer) return snprintf(err, errlen, "%s --trainer: given twice", cmd), -1;
            a->o.trainer = val;
        } else if (!strcmp(s, "--dry-run") && strstr(allowed, "dry")) {
            a->dry_run = 1;
        } else if (!strcmp(s, "--slurm") && strstr(allowed, "slurm")) {
            a->slurm = 1;
        } else if (!strcmp(s, "--local") && strstr(allowed, "local")) {
            a->local = 1;
        } else if (s[0] == '-' && s[1] == '-') {
            return snprintf(err, errlen, "%s: unknown option '%.80s' (try --help)", cmd, s), -1;
        } else if (s[0] == '-' && s[1]) { /* "-name" is more often a path than a mistyped option */
            return snprintf(err, errlen, "%s: unknown option '%.80s' (try --help; a path that begins with '-': "
                                         "write ./%.80s, or put -- before it)", cmd, s, s), -1;
        } else if (a->npos < npos) {
            a->pos[a->npos++] = s;
        } else {
            return snprintf(err, errlen, "%s: unexpected argument '%.80s' (try --help)", cmd, s), -1;
        }
#undef TAKES
    }
    /* $JEPA_TRAIN_BIN as --trainer (launch_trainer_path: empty is unset), for the
     * commands that start it: refused before a run directory or mpirun exists */
    const char *env = getenv("JEPA_TRAIN_BIN");
    if (!a->o.trainer && env && *env && strstr(allowed, "dry") && !trainer_runs(env))
        return snprintf(err, errlen, "%s: JEPA_TRAIN_BIN=%.200s: not an executable file (unset it, or point it at "
                                     "jepa-train)", cmd, env), -1;
    if (a->slurm && a->local) return snprintf(err, errlen, "%s: --slurm and --local: give one", cmd), -1;
    if (a->npos < 1)
        return snprintf(err, errlen, "%s: missing %s (try --help)", cmd,
                        !strcmp(cmd, "run") || !strcmp(cmd, "slurm") ? "SPEC"
                        : !strcmp(cmd, "sweep")                      ? "SWEEP"
                        : !strcmp(cmd, "resume")                     ? "RUN_DIR"
                                                                     : "DIR"),
               -1;
    return 0;
}

static int positive(const char *flag, const char *v, int min, int *out, char *err, size_t errlen) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < min || x > 4096)
        return snprintf(err, errlen, "%s: expected an integer in [%d, 4096], got '%.40s'", flag, min, v), -1;
    *out = (int)x;
    return 0;
}

/* --np N is --set parallel.ranks=N; a --set parallel.ranks that says
 * otherwise is refused rather than silently overridden. 0 or -1 + err. */
static int np_agrees(const args *a, int ranks, char *err, size_t errlen) {
    static const char key[] = "parallel.ranks=";
    for (int i = 0; i < a->nsets; i++) {
        jepa_spec t;
        char why[SPEC_ERR_MAX];
        if (strncmp(a->sets[i], key, sizeof key - 1) != 0) continue;
        spec_defaults(&t);
        if (spec_set(&t, a->sets[i], why, sizeof why) == 0 && t.parallel.ranks != ranks)
            return launch_errf(err, errlen, "run: --np %s and --set %.80s disagree: give the number of ranks once",
                               a->np, a->sets[i]);
    }
    return 0;
}

/* After a start that came to nothing: takes back what it created; when
 * dir had to be kept, err (what went wrong) goes on with "; DIR kept: why". */
static void undo_start(const launch_undo *u, const char *dir, char *err, size_t errlen) {
    char why[LAUNCH_PATH_MAX + 128];
    size_t k = strlen(err);
    if (launch_undo_apply(u, dir, why, sizeof why) != 0 && k + 1 < errlen)
        snprintf(err + k, errlen - k, "; %s kept: %s", dir, why);
}

/* A dry run's command names a spec.resolved.yaml it does not write: the
 * values the --set options give it go to stderr, a line each (stdout stays
 * the command alone). The first nsets of ls->sets are the user's; --np's
 * parallel.ranks is already in the command. */
static void print_dry_sets(const launch_spec *ls, int nsets) {
    for (int i = 0; i < nsets; i++) {
        char key[128], val[LAUNCH_PATH_MAX + 64];
        const char *eq = strchr(ls->sets[i], '=');
        size_t k = eq ? (size_t)(eq - ls->sets[i]) : strlen(ls->sets[i]);
        if (k >= sizeof key) continue;
        memcpy(key, ls->sets[i], k);
        key[k] = 0;
        if (spec_get(&ls->spec, key, val, sizeof val)) continue;
        fprintf(stderr, "jepa-launch: dry run: %s/spec.resolved.yaml would have %s: %s (--set)\n", ls->spec.run_dir,
                key, val);
    }
}

/* Whether another job has dir: a local one holding its lock, or a Slurm
 * job still queued or running there (1 + err naming it). Asked before any
 * other refusal, whose advice (resume it, another spec) that job would
 * make void. Takes nothing: the real start takes the lock after. */
static int dir_in_use(const char *dir, char *err, size_t errlen) {
    return run_lock_probe(dir, err, errlen) != 0 || launch_slurm_busy(dir, err, errlen);
}

static int cmd_run(const args *a, char *err, size_t errlen) {
    const char *sets[LAUNCH_MAX_SETS + 1];
    char np[64];
    int ns = 0, ranks;
    for (int i = 0; i < a->nsets; i++) sets[ns++] = a->sets[i];
    if (a->np) {
        if (positive("--np", a->np, 1, &ranks, err, errlen) || np_agrees(a, ranks, err, errlen)) return 2;
        snprintf(np, sizeof np, "parallel.ranks=%d", ranks);
        sets[ns++] = np;
    }
    launch_spec ls;
    if (launch_spec_load(&ls, a->pos[0], sets, ns, err, errlen) ||
        launch_spec_check(&ls, LAUNCH_CHECK_LOCAL, err, errlen)) {
        launch_spec_free(&ls);
        return 2;
    }
    /* what the real run would refuse, the dry run refuses too (both
     * read-only); a directory in use first */
    if (dir_in_use(ls.spec.run_dir, err, errlen) || launch_check_existing(&ls, err, errlen) ||
        launch_dir_creatable("run.dir", ls.spec.run_dir, err, errlen)) {
        launch_spec_free(&ls);
        return 2;
    }
    if (a->dry_run) { /* nothing is created */
        launch_argv av = {0};
        launch_mpirun_argv(&av, &ls.spec, &a->o, ls.spec.run_dir, 0);
        launch_argv_print(&av, stdout);
        launch_argv_free(&av);
        print_dry_sets(&ls, a->nsets);
        launch_spec_free(&ls);
        return 0;
    }
    /* "On any error nothing is created": a start that came to nothing
     * (mpirun could not start, or jepa-train refused its inputs at setup,
     * status 4, or its command line or spec, status 2, in every attempt)
     * takes back what it created */
    const char *dir = ls.spec.run_dir;
    launch_undo u;
    int past_setup = 0;
    launch_undo_init(&u, dir);
    /* the run directory's lock before a file is written in it (run_lock.h):
     * a directory another job holds is refused as it is */
    int rc = launch_mkdirs(dir, err, errlen) ? -1 : run_lock_take(dir, RUN_LOCK_LAUNCHER, err, errlen);
    if (rc == 1) { /* nothing done: nothing to take back */
        launch_spec_free(&ls);
        return 2;
    }
    if (rc == 0) rc = launch_prepare_dir(&ls, err, errlen);
    if (rc == 0) rc = launch_run_dir(dir, &a->o, 0, &past_setup, err, errlen);
    if (rc == 4 && !past_setup) /* not "see launch.log": it is about to go */
        snprintf(err, errlen, "%s: jepa-train refused its inputs at setup (status 4; its message above says why)",
                 dir);
    if (rc == 2 && !past_setup)
        snprintf(err, errlen, "%s: jepa-train rejected its command line or spec (status 2; its message above "
                 "says why)", dir);
    if ((rc == 2 || rc == 4 || rc < 0) && !past_setup) undo_start(&u, dir, err, errlen);
    launch_spec_free(&ls);
    return rc < 0 ? 2 : rc;
}

/* resume of a run made for Slurm: submitted again (launch_slurm_resume).
 * The job runs the spec's parallel.ranks in the spec's run.dir, so --np
 * and a moved directory (mv 1) are refused. */
static int resume_slurm(const args *a, const jepa_spec *s, int mv, char *err, size_t errlen) {
    const char *dir = a->pos[0];
    if (a->np)
        return snprintf(err, errlen, "resume %s --np: a Slurm job runs parallel.ranks tasks (its spec's, %d); "
                        "resume --local %s --np %s runs it here", dir, s->parallel.ranks, dir, a->np), 2;
    if (mv == 1)
        return snprintf(err, errlen, "resume %s: the run was made as run.dir %s, which its Slurm job would train "
                        "in; move it back, or resume it here with --local", dir, s->run_dir), 2;
    int rc = launch_slurm_resume(dir, &a->o, a->dry_run, err, errlen);
    return rc == -2 ? 1 : rc ? 2 : 0; /* -2: sbatch ran and failed, dir kept (as cmd_slurm) */
}

/* The world size a resume runs at: --np when given, else the checkpoint's
 * (a run started with plain `mpirun -np 2` has parallel.ranks 1 in its spec),
 * else parallel.ranks. launch_run_dir refuses a --np the checkpoint's world
 * size does not match. */
static int cmd_resume(const args *a, char *err, size_t errlen) {
    char path[LAUNCH_PATH_MAX + 64];
    const char *dir = a->pos[0];
    jepa_spec s;
    launch_opts o = a->o;
    int world;
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    spec_defaults(&s);
    if (access(path, R_OK) != 0)
        return snprintf(err, errlen, "resume: %s is not a run directory (no spec.resolved.yaml)", dir), 2;
    if (spec_load_file(&s, path, err, errlen)) return 2;
    /* a moved run directory is resumed where it is: checked here only, as
     * resume is the one caller of launch_run_dir that can meet one (run and
     * sweep pass directories whose resolved spec they just wrote or
     * compared); --dry-run prints the same argv */
    char moved[SPEC_STR_MAX];
    int mv = launch_moved_dir(&s, dir, moved, sizeof moved, err, errlen);
    if (mv < 0) return 2;
    if (mv == 1) o.run_dir_set = moved;
    /* finished (as sweeps count it): a resume would only rerun its
     * evaluation, minutes for the figures summary.json already holds; said
     * before any line about how it would resume, and by --dry-run too */
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (access(path, F_OK) == 0) {
        printf("%s: finished before (%s): nothing to resume; jepa-launch status %s shows it, jepa-eval %s "
               "evaluates it again\n", dir, path, dir, dir);
        return 0;
    }
    /* in use: said before how it would resume (world size, --np, Slurm) */
    if (dir_in_use(dir, err, errlen)) return 2;
    /* made for Slurm (or --slurm): back to Slurm, as `sweep --slurm` continues its points */
    if (a->slurm || (!a->local && launch_slurm_made(dir))) return resume_slurm(a, &s, mv, err, errlen);
    if (s.parallel.nodes != 1) /* as `run` refuses it */
        return snprintf(err, errlen, "resume %s: parallel.nodes is %d, but a local resume starts ranks on this "
                        "machine only (jepa-launch resume --slurm %s)", dir, s.parallel.nodes, dir), 2;
    if (mv == 1)
        fprintf(stderr, "jepa-launch: %s holds the run made as run.dir %s: resuming it here (run.dir=%s)\n", dir,
                s.run_dir, moved);
    if (a->np && positive("--np", a->np, 1, &o.ranks, err, errlen)) return 2;
    if (!a->np && launch_ckpt_world(dir, &world, path, sizeof path) == 0) {
        o.ranks = world;
        if (world != s.parallel.ranks)
            fprintf(stderr, "jepa-launch: %s was written by %d rank%s (the spec says parallel.ranks %d): resuming "
                    "with -np %d\n", path, world, world == 1 ? "" : "s", s.parallel.ranks, world);
    }
    if (a->dry_run) { /* refuses the world size the real resume refuses */
        if (launch_check_world(dir, &s, &o, 1, err, errlen)) return 2;
        launch_argv av = {0};
        launch_mpirun_argv(&av, &s, &o, dir, 1);
        launch_argv_print(&av, stdout);
        launch_argv_free(&av);
        return 0;
    }
    int rc = launch_run_dir(dir, &o, 1, NULL, err, errlen);
    return rc < 0 ? 2 : rc;
}

static int cmd_slurm(const args *a, char *err, size_t errlen) {
    launch_spec ls;
    if (launch_spec_load(&ls, a->pos[0], a->sets, a->nsets, err, errlen) ||
        launch_spec_check(&ls, LAUNCH_CHECK_SLURM, err, errlen)) {
        launch_spec_free(&ls);
        return 2;
    }
    const char *dir = ls.spec.run_dir;
    char script[LAUNCH_PATH_MAX + 32], out[2 * LAUNCH_PATH_MAX + 32], id[64];
    snprintf(script, sizeof script, "%s/job.sbatch", dir);
    if (launch_slurm_output(out, sizeof out, dir, "slurm-%j.out", err, errlen)) {
        launch_spec_free(&ls);
        return 2;
    }
    /* check the script can be written before making the directory */
    FILE *devnull = fopen("/dev/null", "w");
    int rc = devnull ? launch_sbatch_script(devnull, &ls.spec, "jepa-train", &dir, 1, 0, err, errlen) : -1;
    if (devnull) fclose(devnull);
    /* one job per run directory: not one a local job or Slurm still has,
     * said before what else is wrong with the directory */
    if (rc == 0 && access(dir, F_OK) == 0) rc = dir_in_use(dir, err, errlen) ? -1 : 0;
    if (rc == 0) rc = launch_check_existing(&ls, err, errlen);
    /* taken back when nothing can have been queued: the files could not be
     * written, or sbatch could not be run (-1); one that ran and failed may
     * have queued the job all the same (-2): then the directory stays. The
     * snapshot comes before the lock, whose file is ours to take back */
    launch_undo u;
    launch_undo_init(&u, dir);
    /* nor one a local job holds (its lock, held here while we submit) */
    if (rc == 0 && access(dir, F_OK) == 0) rc = run_lock_take(dir, RUN_LOCK_LAUNCHER, err, errlen) ? -1 : 0;
    if (rc) {
        launch_spec_free(&ls);
        return 2;
    }
    rc = launch_prepare_dir(&ls, err, errlen);
    if (rc == 0) rc = launch_slurm_write_script(script, &ls.spec, &a->o, &dir, 1, 0, err, errlen);
    if (rc == 0 && a->dry_run) {
        char *text;
        rc = spec_read_file(script, SPEC_FILE_MAX, "batch script", &text, NULL, err, errlen);
        if (rc == 0) fputs(text, stdout);
        free(text);
    } else if (rc == 0) {
        launch_set_state(dir, "submitted");
        rc = launch_slurm_submit(dir, script, out, "job.sbatch, spec files", id, sizeof id, err, errlen);
        if (rc) launch_set_state(dir, "failed: sbatch%s", rc == -2 ? " (the job may be queued: check squeue)" : "");
    }
    if (rc == -1) undo_start(&u, dir, err, errlen);
    launch_spec_free(&ls);
    /* 2 is "nothing made"; sbatch that ran and failed (-2) may have queued
     * the job, so run.dir stays, and the exit says it is not nothing: 1 */
    return rc == -2 ? 1 : rc ? 2 : 0;
}

/* A Slurm array is one allocation shape: points must agree on it. */
static int same_shape(const jepa_spec *a, const jepa_spec *b) {
    return a->parallel.ranks == b->parallel.ranks && a->parallel.threads_per_rank == b->parallel.threads_per_rank &&
           a->parallel.nodes == b->parallel.nodes && !strcmp(a->parallel.transport, b->parallel.transport) &&
           a->max_restarts == b->max_restarts && memcmp(&a->slurm, &b->slurm, sizeof a->slurm) == 0;
}

/* Appends word to buf (of n, k used) for a POSIX shell: as it is when every
 * character is one a shell leaves alone, else in single quotes (a quote in it
 * as '\''). Returns the new length (>= n when it did not fit). */
static size_t shell_word(char *buf, size_t n, size_t k, const char *word) {
    int plain = word[0] != 0;
    for (const char *c = word; *c && plain; c++)
        plain = isalnum((unsigned char)*c) || strchr("_./:=,+@%-", *c);
    if (plain) return k + (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s", word);
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "'");
    for (const char *c = word; *c; c++)
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, *c == '\'' ? "'\\''" : "%c", *c);
    return k + (size_t)snprintf(buf + k, k < n ? n - k : 0, "'");
}

/* The command that continues the sweep, pasteable into a shell: the sweep
 * file (./ before one that begins with '-', which would read as an option),
 * --trainer (else the paste runs the default trainer), --parallel and every
 * --set as given; one too long for a line says where the options are
 * instead. --slurm never gets here and --dry-run stops nothing. */
static void sweep_again(const sweep_def *d, const args *a, char *again, size_t n) {
    char file[LAUNCH_PATH_MAX + 2];
    snprintf(file, sizeof file, "%s%s", d->path[0] == '-' ? "./" : "", d->path);
    size_t k = (size_t)snprintf(again, n, "jepa-launch sweep ");
    k = shell_word(again, n, k, file);
    if (a->o.trainer && k < n) {
        k += (size_t)snprintf(again + k, n - k, " --trainer ");
        k = shell_word(again, n, k, a->o.trainer);
    }
    if (a->parallel && k < n) k += (size_t)snprintf(again + k, n - k, " --parallel %s", a->parallel);
    for (int i = 0; i < a->nsets && k < n; i++) {
        k += (size_t)snprintf(again + k, n - k, " --set ");
        k = shell_word(again, n, k, a->sets[i]);
    }
    if (k >= n)
        snprintf(again, n, "jepa-launch sweep, the same file and options (--trainer too; the --set options are "
                 "the sweep directory's sweep.json set_options)");
}

/* How a sweep run here ended, in one line: stopped by a signal (or a
 * point stopped by one) is resumable, exit 75 as for `run`; else a failed
 * point makes it 1. The same command continues it: finished points are
 * skipped, the others continued or started. */
static int sweep_said(const sweep_def *d, const args *a, const sweep_outcome *so, int n, char *err, size_t errlen) {
    char again[2048]; /* the error line holds it: SPEC_ERR_MAX + LAUNCH_PATH_MAX */
    char name[LAUNCH_SIGNAME_MAX];
    sweep_again(d, a, again, sizeof again);
    if (so->signal && (so->stopped || so->not_started)) /* one after the last point ended stopped nothing */
        return launch_errf(err, errlen, "%s: stopped by signal %d (%s): %d done, %d failed, %d stopped, %d not "
                           "started; continue it with %s", d->path, so->signal,
                           launch_signal_name(so->signal, name, sizeof name), so->done, so->failed, so->stopped,
                           so->not_started, again), LAUNCH_EXIT_STOPPED;
    if (so->failed && so->stopped)
        return launch_errf(err, errlen, "%s: %d of %d points failed, %d stopped by a signal", d->path, so->failed,
                           n, so->stopped), 1;
    if (so->failed) return launch_errf(err, errlen, "%s: %d of %d points failed", d->path, so->failed, n), 1;
    if (so->stopped)
        return launch_errf(err, errlen, "%s: %d of %d points stopped by a signal; continue them with %s",
                           d->path, so->stopped, n, again), LAUNCH_EXIT_STOPPED;
    return 0;
}

static int cmd_sweep(const args *a, char *err, size_t errlen) {
    sweep_def d;
    if (sweep_load(&d, a->pos[0], err, errlen) || sweep_add_sets(&d, a->sets, a->nsets, err, errlen)) {
        sweep_free(&d);
        return 2;
    }
    if (a->parallel && positive("--parallel", a->parallel, 0, &d.parallel, err, errlen)) {
        sweep_free(&d);
        return 2;
    }
    launch_spec *specs = NULL;
    sweep_point_state *have = NULL;
    int n = sweep_npoints(&d), rc;
    /* one job per point: none Slurm still has queued or running (an
     * earlier --slurm array), here or as a second array; before anything
     * is written */
    if (launch_sweep_busy(d.dir, n, err, errlen)) {
        sweep_free(&d);
        return 2;
    }
    rc = sweep_prepare(&d, a->slurm ? LAUNCH_CHECK_SLURM : LAUNCH_CHECK_LOCAL, a->dry_run, &specs, &have, err,
                       errlen);
    if (rc == 0 && a->slurm) {
        for (int i = 1; i < n && rc == 0; i++)
            if (!same_shape(&specs[0].spec, &specs[i].spec))
                rc = launch_errf(err, errlen,
                          "%s: point %d needs a different allocation (parallel.*, slurm.*, max_restarts) than "
                          "point 0; a Slurm job array has one",
                          d.path, i);
        /* the array runs the points not finished yet (a dry run's point
         * lines have said which are) */
        const char **dirs = calloc((size_t)n, sizeof *dirs);
        int nrun = 0;
        for (int i = 0; rc == 0 && i < n; i++) {
            if (have[i] != SWEEP_POINT_FINISHED) dirs[nrun++] = specs[i].spec.run_dir;
            else if (!a->dry_run)
                printf("point-%03d: finished before (%s/summary.json): skipped\n", i, specs[i].spec.run_dir);
        }
        char script[LAUNCH_PATH_MAX + 32], out[2 * LAUNCH_PATH_MAX + 32], id[64];
        snprintf(script, sizeof script, "%s/sweep.sbatch", d.dir);
        if (rc == 0) rc = launch_slurm_output(out, sizeof out, d.dir, "slurm-%A_%a.out", err, errlen);
        if (rc == 0 && nrun == 0) {
            printf("every point is finished: nothing to submit\n");
        } else if (rc == 0 && !a->dry_run) {
            rc = launch_slurm_write_script(script, &specs[0].spec, &a->o, dirs, nrun, d.parallel, err, errlen);
            for (int i = 0; rc == 0 && i < nrun; i++) launch_set_state(dirs[i], "submitted");
            if (rc == 0)
                rc = launch_slurm_submit(d.dir, script, out, "sweep.sbatch, the points' spec files", id, sizeof id,
                                         err, errlen);
            /* each point's own task, A_T (T its index in the array), as status
             * and the next sweep ask squeue about it */
            for (int i = 0; rc == 0 && i < nrun; i++) {
                char path[LAUNCH_PATH_MAX + 32], line[80], werr[SPEC_ERR_MAX];
                int k = snprintf(line, sizeof line, "%s_%d\n", id, i);
                snprintf(path, sizeof path, "%s/slurm_job", dirs[i]);
                launch_write_file(path, line, (size_t)k, werr, sizeof werr);
            }
            if (rc == -2) rc = 1; /* kept, maybe queued: not "nothing made" (as cmd_slurm) */
        }
        free(dirs);
    } else if (rc == 0 && !a->dry_run) {
        sweep_outcome so;
        sweep_run_local(&d, specs, have, n, &a->o, &so);
        char **keys;
        int nkeys;
        result_row *rows;
        int nr = launch_read_sweep(d.dir, &keys, &nkeys, &rows, err, errlen);
        if (nr >= 0) {
            launch_print_ranked(keys, nkeys, rows, nr);
            launch_free_results(keys, nkeys, rows, nr);
        }
        rc = sweep_said(&d, a, &so, n, err, errlen);
    }
    sweep_specs_free(specs, specs ? n : 0);
    free(have);
    sweep_free(&d);
    return rc < 0 ? 2 : rc;
}

static int cmd_results(const args *a, char *err, size_t errlen) { return launch_results_cmd(a->pos[0], err, errlen); }

static int cmd_status(const args *a, char *err, size_t errlen) { return launch_status_cmd(a->pos, a->npos, err, errlen); }

static int dispatch(int argc, char **argv) {
    char err[SPEC_ERR_MAX + LAUNCH_PATH_MAX] = "";
    if (argc < 2) return die("missing command (try --help)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    /* mpirun refuses root without these; a launcher run as root means it */
    if (geteuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    }
    static const struct {
        const char *name, *allowed;
        int (*fn)(const args *, char *, size_t);
    } cmds[] = {
        {"run", "set np dry", cmd_run},         {"resume", "np dry slurm local", cmd_resume},
        {"slurm", "set dry", cmd_slurm},        {"sweep", "set slurm parallel dry", cmd_sweep},
        {"results", "", cmd_results},           {"status", "many", cmd_status},
        {"plot", "", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name) != 0) continue;
        args a;
        int rc = parse(argc, argv, cmd, cmds[i].allowed, &a, err, sizeof err);
        sigset_t quiet; /* a job's launcher outlives a closed stdout or stderr (run.c); a
                         * --dry-run's output into `| head` ends it as any filter's does */
        launch_quiet_set(&quiet);
        if (rc == 0 && !a.dry_run && (cmds[i].fn == cmd_run || cmds[i].fn == cmd_resume || cmds[i].fn == cmd_sweep))
            launch_catch(&quiet, SIG_IGN, NULL);
        if (rc == 0)
            rc = cmds[i].fn ? cmds[i].fn(&a, err, sizeof err) : (launch_plot(a.pos[0], err, sizeof err) ? 2 : 0);
        else
            rc = die(err), *err = 0;
        free(a.pos);
        if (rc && *err) fprintf(stderr, "jepa-launch: %s\n", err);
        return rc;
    }
    snprintf(err, sizeof err, "unknown command '%.80s' (try --help)", cmd);
    return die(err);
}

int main(int argc, char **argv) { return stdout_close("jepa-launch", dispatch(argc, argv)); }
