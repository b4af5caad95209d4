/* launch.h - jepa-launch as a library: load and check a run spec, make the
 * run directory, start ranks with mpirun (restarting failed jobs), write and
 * submit Slurm batch scripts, expand sweeps, read a run's progress and
 * results, and plot curves with gnuplot. launch_main.c is a thin CLI over it.
 *
 * Links no model code: the spec module (spec.h) and libyaml only; metrics
 * and summaries are read with a small reader of our own JSON lines.
 *
 * Quoting: values from a spec never pass through a shell. Processes start
 * from argv arrays (posix_spawnp/execvp); every value written into a batch
 * script is single-quoted for bash, or double-quoted with escapes on
 * #SBATCH lines, and values with control characters are refused there.
 *
 * Errors are one line in a caller-owned buffer, like spec.h's:
 *   FILE:LINE:COL: key.path: what is wrong   (or "--set key=value: ...") */
#ifndef JEPA_LAUNCH_H
#define JEPA_LAUNCH_H

#include <stddef.h>
#include <signal.h>
#include <stdio.h>

#include "data_kind.h"
#include "spec.h"

#define LAUNCH_PATH_MAX 4096
#define LAUNCH_MAX_SETS 256
/* run/resume stopped by SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1, resumable:
 * jepa-train's own exit for it (TRAIN_EXIT_INTERRUPTED, EX_TEMPFAIL) */
#define LAUNCH_EXIT_STOPPED 75
/* A signal's name into out and returned: "SIGUSR1", "SIGRTMIN+3" (glibc's
 * sigabbrev_np, kill -l's for real-time ones); async-signal-safe. */
#define LAUNCH_SIGNAME_MAX 24
const char *launch_signal_name(int sig, char *out, size_t n);

/* Signals (below LAUNCH_NSIG) handled by a run or sweep (run.c says why). */
#define LAUNCH_NSIG 65
/* ss: the ones that stop the job (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
 * and every other asynchronous signal whose default would end the launcher
 * alone: SIGUSR2, SIGALRM, SIGXCPU, SIGVTALRM, SIGPROF, SIGIO, SIGPWR,
 * SIGSTKFLT, the real-time ones) */
void launch_stop_set(sigset_t *ss);
/* ss: the ones run, resume and sweep ignore (SIGPIPE, SIGXFSZ: a write to
 * a closed stdout or stderr, or past a file size limit, fails instead of
 * killing the launcher alone); mpirun is started with them at their default */
void launch_quiet_set(sigset_t *ss);
/* handler (or SIG_IGN) for each signal of ss (its mask ss, no SA_RESTART),
 * the old actions into old[sig] (LAUNCH_NSIG of them; old may be NULL);
 * launch_uncatch puts them back */
void launch_catch(const sigset_t *ss, void (*handler)(int), struct sigaction *old);
void launch_uncatch(const sigset_t *ss, const struct sigaction *old);

/* ---- argv arrays ---- */

typedef struct {
    char **v; /* NULL-terminated; each string owned */
    int n, cap;
} launch_argv;

void launch_argv_push(launch_argv *a, const char *s);
void launch_argv_pushf(launch_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void launch_argv_free(launch_argv *a);
/* The argv as one line a POSIX shell reads back to the same words
 * (words with anything but [A-Za-z0-9_./=:,@%+-] are single-quoted). */
void launch_argv_print(const launch_argv *a, FILE *f);
/* Appends s single-quoted for bash ('...' with ' written as '\''). */
void launch_shell_quote(FILE *f, const char *s);
/* A path as a word another program reads as a path, never as an option:
 * "./" before a relative path that begins with '-' ("-dash run" ->
 * "./-dash run"); other paths as they are. Every path we put in an argv
 * or a script goes through this. Returns buf. */
const char *launch_path_arg(const char *path, char *buf, size_t n);
/* Pushes the formatted path through launch_path_arg. */
void launch_argv_push_path(launch_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* path as a literal file name in a Slurm filename pattern (--output and
 * the like expand %j, %a, %x, ... there): every '%' doubled. -1 when the
 * result does not fit, or when path holds a backslash (Slurm then strips every
 * backslash and expands nothing: no spelling reaches such a path). */
int launch_slurm_literal(const char *path, char *out, size_t n);

/* ---- the spec as the launcher holds it ---- */

typedef struct {
    char path[LAUNCH_PATH_MAX]; /* the spec file as given */
    char *text;                 /* its exact bytes (owned) */
    const char *sets[LAUNCH_MAX_SETS]; /* --set overrides in order (borrowed) */
    int nsets;
    jepa_spec spec; /* defaults, then the file, then the sets; validated */
} launch_spec;

/* Loads path, applies sets[0..nsets), runs spec_validate. 0, or -1 + err. */
int launch_spec_load(launch_spec *ls, const char *path, const char *const *sets, int nsets, char *err,
                     size_t errlen);
void launch_spec_free(launch_spec *ls);

enum { LAUNCH_CHECK_LOCAL = 1, LAUNCH_CHECK_SLURM = 2 };
/* What must hold before anything starts: data.train (and data.test when the
 * probe runs) are shard directories with a manifest.json; for a local run
 * parallel.nodes is 1; for Slurm no slurm.* value holds a control character
 * (slurm.extra: one option per line, each starting with '-'). Errors point at
 * the key in the file (FILE:LINE:COL), or at the --set that gave the value. */
int launch_spec_check(const launch_spec *ls, int what, char *err, size_t errlen);

/* Line and column (1-based) of key's value in YAML text, nested or dotted
 * form. 0, or -1 if the text does not set the key. */
int launch_locate(const char *text, const char *key, int *line, int *col);

/* mkdir -p run.dir, then run.dir/spec.yaml (the exact text) and
 * run.dir/spec.resolved.yaml, each written atomically. */
int launch_prepare_dir(const launch_spec *ls, char *err, size_t errlen);

/* First key (spec_keys order) whose value differs between a and b: 1 with
 * the key and both values as text, or 0 when every key agrees. */
int launch_spec_diff(const jepa_spec *a, const jepa_spec *b, char *key, size_t klen, char *va, char *vb,
                     size_t vlen);

/* Before launch_prepare_dir rewrites a run directory that already holds a
 * run's checkpoints (a refused start must leave it byte-identical): refused
 * in one line when the spec says resume: none (jepa-train would refuse
 * too), when its resolved spec differs from the one there (naming the first
 * differing key), or when the checkpoint's world size is not
 * parallel.ranks. A directory without checkpoints passes (a fresh start). */
int launch_check_existing(const launch_spec *ls, char *err, size_t errlen);

/* What a start is about to create in run_dir, taken before
 * launch_prepare_dir, so that a start that came to nothing (mpirun or
 * sbatch could not be run, or every attempt was refused at setup: exit 4)
 * can take it back: the launcher's own files there (spec.yaml,
 * spec.resolved.yaml, state, launch.log, job.sbatch, slurm_job, train.log,
 * lock: one there before stays, it is never rewritten) and the directories
 * mkdir -p makes. */
typedef struct {
    char top[LAUNCH_PATH_MAX]; /* the first directory mkdir -p makes; "" when run_dir exists */
    unsigned had;              /* bit i: own file i existed before */
    int others;                /* entries besides ours when run_dir existed (-1: unreadable) */
    char names[4096];          /* their names, NUL after each (as many as fit) */
    size_t nnames;
    int full;                  /* names could not hold them all */
} launch_undo;

void launch_undo_init(launch_undo *u, const char *run_dir);
/* Removes what this start created and nothing else, all or nothing: when
 * an own file existed before (this start rewrote it), or the entries of
 * run_dir besides ours are not exactly those it held before (one came, as
 * checkpoints or metrics when the job ran, or one went: any name, not only
 * the count), nothing is removed. Otherwise the own files go, then the
 * directories this start made (parents only while empty). 0 when run_dir
 * is as it was before the start (gone, when we made it); -1 with why it was
 * kept in why, one clause ("it existed before with its own spec.yaml"). */
int launch_undo_apply(const launch_undo *u, const char *run_dir, char *why, size_t n);

/* ---- local runs (run.c) ---- */

typedef struct {
    const char *mpirun;  /* NULL: $JEPA_MPIRUN or "mpirun" */
    const char *trainer; /* NULL: $JEPA_TRAIN_BIN or jepa-train beside this program */
    int ncpus;           /* cores here, for --oversubscribe; 0: ask the system */
    int log_output;      /* children's stdout/stderr to RUN/train.log instead of ours */
    int ranks;           /* mpirun -np; 0: the spec's parallel.ranks */
    const char *run_dir_set; /* non-NULL: jepa-train gets --set run.dir=THIS (launch_moved_dir) */
} launch_opts;

/* Whether the spec a run directory holds still names it. A run directory
 * that was moved or copied (mv runs/L r2) holds a spec whose run.dir is the
 * old path, which jepa-train would train in. 0 when s->run_dir is run_dir
 * (the same string, or the same directory from here); 1 when it is not,
 * with the run.dir that names run_dir in out: run_dir as given without
 * trailing slashes, made absolute when the recorded run.dir is absolute;
 * -1 + err (naming both paths) when that value is not a valid run.dir.
 * Checkpoints do not record run.dir and it is not in the config hash, so a
 * resume in the new place continues the same run. */
int launch_moved_dir(const jepa_spec *s, const char *run_dir, char *out, size_t n, char *err, size_t errlen);

/* The world size of the checkpoint a resume=auto would continue from: the
 * newest RUN/checkpoints/step-N.ckpt whose header reads, else
 * RUN/checkpoint.bin (header: docs/checkpoint-format.md; read here without
 * the trainer's code, so no MPI; the trainer checks the whole file). 0 with
 * *world and the file's path, 1 when RUN holds no checkpoint, -1 when it
 * holds some but no header reads. */
int launch_ckpt_world(const char *run_dir, int *world, char *path, size_t plen);

/* Before state or launch.log is written (and by resume --dry-run, which
 * refuses what the real resume refuses): a resume (resume, or the spec's
 * resume: auto) whose checkpoint was written by another world size than
 * o->ranks (or parallel.ranks), when that size cannot continue it, is
 * refused in one line naming what to pass. 0 or -1 + err. */
int launch_check_world(const char *run_dir, const jepa_spec *s, const launch_opts *o, int resume, char *err,
                       size_t errlen);

/* The trainer path opts name, resolved (absolute when found beside us). */
void launch_trainer_path(const launch_opts *o, char *out, size_t n);

/* The mpirun argv that runs the resolved spec in run_dir (R: o->ranks, or
 * the spec's parallel.ranks):
 *   mpirun -np R [--oversubscribe] [--bind-to none] [--mca btl self,vader|self,tcp]
 *          -x JEPA_RUN_LOCK_PID TRAINER RUN/spec.resolved.yaml --exact-spec RUN/spec.yaml
 *          [--set run.dir=o->run_dir_set] [--set resume=auto]
 * --bind-to none when threads_per_rank > 1 (Open MPI binds each rank to one
 * core by default); --oversubscribe when ranks exceed the cores. */
void launch_mpirun_argv(launch_argv *a, const jepa_spec *s, const launch_opts *o, const char *run_dir,
                        int resume);

/* Whether name is jepa-train's temp file for RUN/error ("error.PID.tmp",
 * train_main.c note_failure), which a rank killed while writing it leaves. */
int launch_error_tmp(const char *name);
/* Removes run_dir's error temp files (before each attempt, and with a start
 * taken back): 0, or -1 + why naming the one that would not go. */
int launch_error_tmps_remove(const char *run_dir, char *why, size_t n);

/* Runs the prepared run_dir's resolved spec under mpirun and waits.
 * mpirun's stdout and stderr are ours, or run_dir/train.log with
 * o->log_output. A run directory that was moved since its spec was
 * written needs o->run_dir_set (launch_moved_dir): only a resume meets one
 * (run and sweep run directories whose resolved spec names them). Before
 * anything is written, a resume (resume, or the spec's resume: auto) whose
 * checkpoint was written by another world size than o->ranks (or
 * parallel.ranks) is refused in one line (-1 + err) naming what to pass. A
 * non-zero exit is restarted with resume=auto up to max_restarts times, each
 * restart logged to run_dir/launch.log; run_dir/state says what is going on.
 * SIGINT/SIGTERM/SIGHUP/SIGUSR1 are passed to mpirun (in its own process
 * group, so once) as SIGUSR1, a second as the abort, and end the loop. Returns the job's
 * exit status (0: done; else err says it failed, or that a signal stopped
 * it and how to resume), LAUNCH_EXIT_STOPPED only for a signal of ours (a
 * job that failed for good with status 75 returns 1), or -1 + err when it
 * cannot start. *past_setup (may be NULL): 1 when an attempt ended with any
 * status but 4 (refused at setup), so the job may have trained and written
 * in run_dir; 0 when none did. */
int launch_run_dir(const char *run_dir, const launch_opts *o, int resume, int *past_setup, char *err,
                   size_t errlen);

/* ---- Slurm (slurm.c) ---- */

/* The batch script for one run (run_dirs has 1 entry) or a job array over
 * n run directories (at most `parallel` at a time, 0: no limit). Header from
 * s's slurm.* and parallel.* keys; the body runs srun --mpi=PLUGIN with the
 * restart loop of launch_run_dir. 0, or -1 + err (a value with a control
 * character, an extra line that is not an option). */
int launch_sbatch_script(FILE *f, const jepa_spec *s, const char *trainer, const char *const *run_dirs, int n,
                         int parallel, char *err, size_t errlen);

/* Submits script with sbatch --parsable --output=OUTPUT; job id into id.
 * OUTPUT is a Slurm filename pattern: its literal parts must have gone
 * through launch_slurm_literal. sbatch's stderr is passed on when it
 * succeeds. 0; -1 + err when sbatch could not be run at all (not found,
 * not executable: nothing was queued); -2 + err when it ran and failed
 * (with its last stderr line: one line, not five) or exited 0 without a
 * job id: the job may be queued all the same. */
int launch_sbatch_submit(const char *script, const char *output, char *id, size_t idlen, char *err, size_t errlen);

/* ---- what Slurm says of run directories (slurm_queue.c) ---- */

typedef struct {
    char id[64];    /* "J", or "A_T" (task T of array A) */
    char state[32]; /* squeue's (PENDING, RUNNING, ...); "" when it lists it not: ended */
} launch_slurm_job;

/* One squeue call ($JEPA_SQUEUE: another squeue; given up after 10 s)
 * about jobs[0..n): each one's state. 0; -1 + why (one clause: squeue not
 * found, failed with its last line, or did not answer) when nothing is
 * known, the states then unset. */
int launch_slurm_query(launch_slurm_job *jobs, int n, char *why, size_t whylen);
/* The Slurm job a run directory's state line names: "running job=J ..."
 * J; "submitted" the id in dir/slurm_job, else in array_dir/slurm_job (a
 * sweep's array, for points submitted before each had its own; may be
 * NULL). 1 with the id, 0 when the state names none. */
int launch_slurm_job_of(const char *dir, const char *state, const char *array_dir, char *id, size_t n);
/* Of run directories dirs[0..n) (array_dir: as above), the first whose
 * state names a Slurm job squeue still lists (pending, running, ...): its
 * index, with the job's id and state; -1 when none does, or squeue cannot
 * say (then nothing is known, and the job's trainer still takes RUN/lock).
 * One squeue call for all. */
int launch_slurm_busy_dirs(const char *const *dirs, int n, const char *array_dir, char *id, size_t idlen,
                           char *state, size_t slen);
/* launch_slurm_busy_dirs of one run directory: 1 + err, one line naming
 * dir, the job and its state; else 0. */
int launch_slurm_busy(const char *dir, char *err, size_t errlen);
/* launch_slurm_busy_dirs of a sweep's points sweep_dir/point-000 ..
 * point-(n-1), before a sweep (here or --slurm) runs them again: 1 + err,
 * one line naming the first point Slurm still has, its job and state;
 * else 0. */
int launch_sweep_busy(const char *sweep_dir, int n, char *err, size_t errlen);

/* ---- submitting (slurm_submit.c) ---- */

/* Writes the batch script (launch_sbatch_script, the trainer o names made
 * absolute) to path, atomically, mode 0755. 0, or -1 + err. */
int launch_slurm_write_script(const char *path, const jepa_spec *s, const launch_opts *o, const char *const *dirs,
                              int n, int parallel, char *err, size_t errlen);
/* sbatch's --output: dir as a literal name (launch_slurm_literal), then
 * "/" and our own pattern (slurm-%j.out). 0, or -1 + err. */
int launch_slurm_output(char *out, size_t n, const char *dir, const char *pattern, char *err, size_t errlen);
/* launch_sbatch_submit, then "submitted job ID" on stdout and the id in
 * dir/slurm_job. 0; -1 + err when sbatch could not be run (nothing queued);
 * -2 + err when it ran but failed or gave no id, err then saying dir is
 * kept (holding `kept`) and that the job may be queued. */
int launch_slurm_submit(const char *dir, const char *script, const char *output, const char *kept, char *id,
                        size_t idlen, char *err, size_t errlen);
/* 1 when dir was made for Slurm (job.sbatch or slurm_job there): `resume`
 * sends it back to Slurm. */
int launch_slurm_made(const char *dir);
/* Sends the run in dir back to Slurm: its resolved spec checked as `slurm`
 * checks one, its checkpoint's world size against parallel.ranks, refused
 * while squeue lists its job or a local job holds it; then job.sbatch
 * rewritten, state `submitted`, sbatch, slurm_job and a launch.log line
 * (the job resumes from the newest checkpoint). dry_run: the checks, then
 * the script on stdout, nothing written. 0, or -1/-2 + err as
 * launch_slurm_submit (-1: the directory is as it was). */
int launch_slurm_resume(const char *dir, const launch_opts *o, int dry_run, char *err, size_t errlen);

/* ---- sweeps (sweep.c) ---- */

#define SWEEP_MAX_KEYS 16
#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_POINTS 10000
/* set: plus --set; a point's overrides are these, its varied keys and its
 * run.dir, and launch_spec_load takes LAUNCH_MAX_SETS */
#define SWEEP_MAX_SETS (LAUNCH_MAX_SETS - 2 * SWEEP_MAX_KEYS - 1)

typedef enum { SWEEP_UNIFORM, SWEEP_LOG_UNIFORM, SWEEP_INT_UNIFORM, SWEEP_CHOICE } sweep_dist;

typedef struct {
    char key[128];
    int nvalues;                       /* grid values, or choice's options */
    char *values[SWEEP_MAX_VALUES];    /* owned text */
    sweep_dist dist;                   /* random keys */
    double lo, hi;
    int line, col;                     /* the key in the sweep file (1-based) */
} sweep_axis;

typedef struct {
    char path[LAUNCH_PATH_MAX]; /* the sweep file */
    char *text;                 /* its exact bytes */
    char base[LAUNCH_PATH_MAX]; /* base spec */
    char dir[LAUNCH_PATH_MAX];  /* sweep directory; points in dir/point-NNN */
    int dir_line, dir_col;      /* dir's value in the file */
    int parallel;               /* points run at once (local) or array limit (Slurm; 0: none) */
    int nsets, nfile_sets;       /* sets[0..nfile_sets): the file's set:, then the --set options */
    char *sets[LAUNCH_MAX_SETS]; /* "key=value" applied to every point, owned */
    int set_line[LAUNCH_MAX_SETS], set_col[LAUNCH_MAX_SETS]; /* the file's set: keys (1-based) */
    int ngrid, nrandom;
    sweep_axis grid[SWEEP_MAX_KEYS], random[SWEEP_MAX_KEYS];
    unsigned long long random_seed;
    int random_count;
} sweep_def;

/* Parses a sweep file (see docs/launch.md, "Sweeps"); sweep_read looks at
 * nothing but the file (to read back DIR/sweep.yaml from anywhere) and
 * takes what earlier builds ran (a key twice in a mapping: the last wins;
 * a grid value twice), sweep_load refuses those and a dir that is a run
 * directory. Call sweep_free after either. 0, or -1 + FILE:LINE:COL err. */
int sweep_read(sweep_def *d, const char *path, char *err, size_t errlen);
int sweep_load(sweep_def *d, const char *path, char *err, size_t errlen);
void sweep_free(sweep_def *d);
/* The command line's --set K=V (jepa-launch sweep SWEEP --set ...), after
 * the file's set: applied to every point after the base spec and the
 * file's set (so over a key set there), before the point's own values. A
 * key the sweep varies, run.dir, an unknown key or a value the key does not
 * take is refused: 0, or -1 + one line naming the --set. */
int sweep_add_sets(sweep_def *d, const char *const *sets, int n, char *err, size_t errlen);
/* Points: grid product (1 without a grid) x random.count (1 without). */
int sweep_npoints(const sweep_def *d);
/* Point i's assignments "key=value" (grid, then random), into out[] (owned
 * by the caller, free each); returns how many. Random draws depend only on
 * (random.seed, i, key), so a sweep expands the same way every time. */
int sweep_point(const sweep_def *d, int i, char **out);
/* The sweep's points.csv, as sweep_prepare writes it into DIR: the header
 * "point,dir,KEY..." (grid keys, then random keys), then for each point
 * "I,point-III,VALUE..." (values with a comma, quote or newline quoted as
 * CSV). A points.csv is read back by comparing it with this text. */
void sweep_points_csv(FILE *f, const sweep_def *d);
/* What a point's directory held before this sweep ran (sweep_prepare). */
typedef enum {
    SWEEP_POINT_NEW,        /* nothing: prepared and run */
    SWEEP_POINT_UNFINISHED, /* this point's run, not finished: continued (resume=auto) */
    SWEEP_POINT_FINISHED,   /* this point's run, finished (summary.json): skipped */
    SWEEP_POINT_PENDING,    /* prepared, never started (status: pending): started (resume=auto, as it was) */
} sweep_point_state;

/* Loads every point's spec (base + sets + point values + run.dir), checks
 * them all, and only then writes dir/{sweep.yaml, sweep.json, points.csv}
 * and each new point's run directory. A sweep directory that already holds
 * runs is never rewritten under them: a point whose resolved spec differs
 * from the one its directory holds, or a point-NNN beyond this sweep's
 * points, is refused in one line naming the point and the first differing
 * key, before anything is written; points with the same spec keep their
 * files. Points' specs come back in *specs and their states in *have
 * (caller frees with sweep_specs_free and free). dry_run: check and print
 * only (the --set options every point gets, then each point's values).
 * sweep.yaml is the file as given; sweep.json records the --set options. */
int sweep_prepare(const sweep_def *d, int check, int dry_run, launch_spec **specs, sweep_point_state **have,
                  char *err, size_t errlen);
void sweep_specs_free(launch_spec *specs, int n);
/* What sweep_run_local did with the points: done (now or before), failed,
 * stopped by a signal (resumable: launch_run_dir's LAUNCH_EXIT_STOPPED),
 * never started because a signal stopped the sweep first; signal: the
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1 that stopped the sweep, 0 when
 * none did. */
typedef struct {
    int done, failed, stopped, not_started, signal;
} sweep_outcome;

/* Runs the prepared points here that are not finished, d->parallel at a
 * time, each under its own restart loop (unfinished ones with resume=auto),
 * output in point/train.log; says which finished points it skips, and how
 * each point it ran ended. SIGINT/SIGTERM/SIGUSR1 while it runs go to every
 * running point (each stops its job: state `stopped signal=N`), no point
 * starts after them, and it returns once the running ones ended. Fills
 * *out; returns the number that failed. */
int sweep_run_local(const sweep_def *d, const launch_spec *specs, const sweep_point_state *have, int n,
                    const launch_opts *o, sweep_outcome *out);

/* ---- each objective's figures (figures.c) ---- */

/* What jepa-launch reports for a run depends on what it trains: one row
 * per objective (the spec's `objective` values) says which summary.json
 * figures `results` shows, which one is the headline (`results` ranks a
 * sweep by it, `status` shows it, the sweep plot draws it against each
 * varied key) and its direction, which figures a whole summary must hold,
 * and the panels of a run's curves. Objectives of one family report the
 * same figures, so their points rank together; a sweep mixing families
 * ranks each family's points among themselves. A new objective in the
 * trainer is one row in figures.c. */
#define LAUNCH_MAX_FIGS 4   /* summary.json figures of one objective */
#define LAUNCH_MAX_PANELS 8 /* panels of a run's curves.png */

typedef struct {
    const char *key;   /* metrics.jsonl key drawn against step; NULL ends the list */
    const char *title; /* the panel's title */
} launch_panel;

typedef struct {
    const char *objective; /* the spec's objective value */
    const char *family;    /* "image", "world": the points that rank together */
    /* summary.json figures shown after final_loss; figs[0] is the headline */
    const char *figs[LAUNCH_MAX_FIGS];
    int nfigs;
    /* figs[0..nrequired) are in every whole summary (else it is damaged);
     * required_with_probe: only when the spec's eval.probe is on (the
     * trainer evaluates then), else always */
    int nrequired, required_with_probe;
    int higher_better;   /* the headline's direction */
    int none_below_zero; /* a figure < 0 is the trainer's "not measured" (probe_acc -1) */
    int unit_range;      /* the headline lies in [0, 1] (its panel's y range) */
    const char *what;    /* the headline in words (sweep plot titles and axes) */
    const char *png;     /* the sweep plot of the headline: PNG_vs_KEY.png */
    const char *data_hint; /* how to make its data, said when data.* is missing */
    data_kind data;        /* the records it trains on (data_kind.h: jepa-train's rule) */
    /* a run's curves: each key of metrics.jsonl against step, drawn when a
     * line holds it (the headline's panel also when summary.json has it) */
    launch_panel panels[LAUNCH_MAX_PANELS];
} launch_objective;

/* What a number the reports read (summary.json, a metrics.jsonl line)
 * can hold: [lo, hi] (NaN, the trainer's "not measured", aside), whole
 * numbers only when whole. The same for every objective. */
typedef struct {
    const char *key;
    double lo, hi;
    int whole;
} launch_range;
/* key's range (any double for a key the table does not list). */
const launch_range *launch_figure_range(const char *key);

/* The row of objective name, or NULL when there is none. */
const launch_objective *launch_objective_find(const char *name);
/* Row i (0 = ijepa, the objective of runs from before objectives), or
 * NULL past the last: for loops over every row. */
const launch_objective *launch_objective_at(int i);
/* The index of the first row of o's family (families in table order). */
int launch_family_index(const launch_objective *o);
/* The panels o lists. */
int launch_objective_npanels(const launch_objective *o);

/* ---- progress and results (results.c) ---- */

#define LAUNCH_RESUME_UNSAID (-2LL) /* run_status.resume_step: not a run a resume continues */
#define LAUNCH_RESUME_BUSY (-3LL)   /* run_status.resume_step: its job still runs (holds RUN/lock) */

typedef struct {
    char state[512];       /* done, failed, running, submitted, pending, unfinished (...), damaged: ..., ... */
    char damaged[160];     /* "" or "FILE: what is wrong" (FILE in the run directory) */
    long long step;        /* last logged step; -1: none */
    /* where a resume of a stopped, failed or stale run starts: its newest
     * checkpoints/step-C.ckpt's C, -1 when it has none (it starts over);
     * LAUNCH_RESUME_UNSAID for other states (unfinished says it in state),
     * LAUNCH_RESUME_BUSY when a job still holds its lock (a stale run's) */
    long long resume_step;
    double loss;           /* last logged loss */
    double final_loss;     /* summary.json, or NAN */
    const launch_objective *obj; /* what the run trains: whose figures fig[] holds; never NULL */
    int obj_known;               /* 1: obj is the spec's or summary.json's; 0: ijepa for want of either */
    double fig[LAUNCH_MAX_FIGS]; /* obj->figs from summary.json; NAN: not measured, or no summary */
    char param_hash[32];
} run_status;

/* Reads run_dir/{spec.resolved.yaml, state, metrics.jsonl, summary.json}:
 * state and summary.json whole (LAUNCH_SMALL_MAX), metrics.jsonl's last
 * complete line within its last LAUNCH_METRICS_LINE bytes. The objective
 * is the resolved spec's (summary.json's "objective" when the spec does
 * not load; ijepa when neither says), and summary.json must hold
 * final_loss, steps and that objective's required figures; a number read
 * from either file that is given twice or out of range (launch_json_number,
 * launch_figure_range) damages the run. A file there
 * that cannot be read (not a regular file, too large) or that is damaged
 * leaves st->damaged saying which and why, the state "damaged: ..." and no
 * figures. 0, or -1 if the directory holds no run (no spec.resolved.yaml;
 * st->obj is then ijepa's, obj_known 0). */
int launch_read_status(const char *run_dir, run_status *st);

/* A status whose state is stopped, failed or stale: st->resume_step, where
 * a resume of run_dir starts (launch_read_status calls it; a state
 * changed after, as launch_slurm_states does, calls it again). */
void launch_status_resume(const char *run_dir, run_status *st);
/* For status and results: each sts[i] (run directory dirs[i]; array_dir
 * as for launch_slurm_job_of) whose state is "submitted" or "running
 * job=J ..." set by what Slurm says, one squeue call for all: "stale
 * (Slurm job J is gone)" when squeue lists it not (with where a resume
 * starts), "pending (Slurm job J queued)" for a running one queued again
 * (requeued), " (Slurm: STATE)" added for a state neither says; " (unverified:
 * WHY)" added to each when squeue cannot be run or fails. */
void launch_slurm_states(const char *const *dirs, run_status *const *sts, int n, const char *array_dir);

/* Whether text is one whole JSON object and nothing else (whitespace
 * aside); numbers may also be nan/inf, as printf writes them. A summary.json
 * cut short fails it. 0, or -1. */
int launch_json_object(const char *text);
/* A number from a flat JSON object in text ("key": N) into *v: 0;
 * LAUNCH_JSON_NONE when there is no such member or its value is no number
 * (null, a string); LAUNCH_JSON_TWICE when two members are named key
 * (nothing says which is meant); LAUNCH_JSON_RANGE when the number is
 * beyond a double's range (1e400; nan and inf, as printf writes them,
 * are numbers). No writer of ours makes the last two: the file was edited
 * or damaged, and a caller reports it, never a figure. */
#define LAUNCH_JSON_NONE (-1)
#define LAUNCH_JSON_TWICE (-2)
#define LAUNCH_JSON_RANGE (-3)
int launch_json_number(const char *text, const char *key, double *v);
/* A string member's text (its escapes as written, cut to n - 1 bytes)
 * into out: 0, LAUNCH_JSON_NONE or LAUNCH_JSON_TWICE, as above. */
int launch_json_string(const char *text, const char *key, char *out, size_t n);

typedef struct {
    int point;               /* index */
    const char *name;        /* a run's label (borrowed); NULL: a sweep's point, labelled point-NNN */
    char **values;           /* one per varied key (owned) */
    run_status st;
} result_row;
/* launch_slurm_states of result rows: a sweep's points (sweep: 1; their
 * directories dir/point-NNN, the array's id in dir/slurm_job) or one run
 * (dir). */
void launch_slurm_rows(const char *dir, int sweep, result_row *rows, int n);

/* Sorts rows best first: finished rows before others; finished rows by
 * family (table order), and within one by its headline (figs[0], in its
 * direction) when any of the family's rows has it, rows without it after,
 * else by final_loss ascending; ties by point. */
void launch_sort_results(result_row *rows, int n);
/* When rows that launch_sort_results ranks against each other by final
 * loss (no headline) differ in a key that changes what the loss measures
 * (loss.type, objective, ...: results.c's list), one line into out naming
 * those keys and the comparable ranking (eval.probe: true); returns 1,
 * else 0. The order is not changed: the caller warns. */
int launch_loss_caveat(const char *const *keys, int nkeys, const result_row *rows, int n, char *out, size_t outlen);
/* Table (aligned text) and CSV of rows with the varied keys as columns,
 * then final_loss, the figures of every objective among the rows (ijepa's
 * when none is set), steps and status; "-" where a row has no value. The
 * first column is "point" (the point's directory, point-NNN, as status
 * names it), or "run" (the name) when rows[0] has a name. */
void launch_print_results(FILE *f, const char *const *keys, int nkeys, const result_row *rows, int n, int csv);
/* Reads a sweep dir into rows, one per point in order, with the varied
 * keys (grid, then random). points.csv must be exactly what
 * sweep_points_csv writes for the sweep in dir/sweep.yaml (read with
 * sweep_read). Each row's status is launch_read_status's, and damaged too
 * (st.damaged) when the point holds no run or its resolved spec does not
 * load or differs from the sweep's values; its values are the resolved
 * spec's (the sweep's when it does not load). Returns the number of rows;
 * -1 + err when dir holds no points.csv (not a sweep); -2 + err naming
 * the file (and line) when points.csv cannot be read, is empty, lacks its
 * header, lists no point or is not the sweep's points, or sweep.yaml does
 * not read. Caller frees with launch_free_results. */
int launch_read_sweep(const char *dir, char ***keys, int *nkeys, result_row **rows, char *err, size_t errlen);
void launch_free_results(char **keys, int nkeys, result_row *rows, int n);

/* ---- plots (plot.c) ---- */

/* Renders DIR's curves to PNG with gnuplot: a run's panels (its
 * objective's, launch_objective: each with something to draw) against
 * step (DIR/plots/curves.png); a sweep's loss curves of every point
 * (loss.png) and each family's headline (final loss when none of its
 * points has it) against each varied key (PNG_vs_KEY.png). Prints the
 * files written. */
int launch_plot(const char *dir, char *err, size_t errlen);

/* ---- the reading commands (report.c) ---- */

/* A sweep's table best first, and the one warning line when its final
 * losses are ranked across values that make them incomparable. */
void launch_print_ranked(char **keys, int nkeys, result_row *rows, int n);
/* `results DIR`: a sweep's table (or a run's, a table of one) on stdout and
 * as DIR/results.csv. 0; 1 when a row is damaged or inconsistent (err says
 * the first); 2 when DIR holds neither or the sweep's CSV cannot be written. */
int launch_results_cmd(const char *dir, char *err, size_t errlen);
/* `status DIR...`: each directory as alone, in order; one that fails is
 * said on stderr in its turn and the rest still shown. The worst exit. */
int launch_status_cmd(const char *const *dirs, int n, char *err, size_t errlen);

/* ---- small shared helpers (util.c) ---- */

/* "jepa-launch: out of memory" on stderr, then exit(1): what an allocation
 * that fails does (argv arrays, file reads, plot data). */
void launch_oom(void) __attribute__((noreturn));
/* Formats a one-line message into err; returns -1 (for `return launch_errf(...)`). */
int launch_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int launch_mkdirs(const char *path, char *err, size_t errlen);
/* What launch_mkdirs(dir) would do, checked without creating anything (a
 * dry run refuses what the real one would): dir is a directory, or its
 * nearest existing ancestor is one we may write into. 0, or -1 + err
 * "WHAT DIR: P is not a directory" / "WHAT DIR: cannot create it in P: why". */
int launch_dir_creatable(const char *what, const char *dir, char *err, size_t errlen);
/* Writes text to path atomically (temp file, fsync, rename). */
int launch_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen);
/* Files are read with spec_read_file (spec.h): regular files only, each
 * kind up to a limit. Run specs, sweep files and batch scripts:
 * SPEC_FILE_MAX (1 MiB); and a run's and a sweep's own files: */
#define LAUNCH_SMALL_MAX ((size_t)64 << 10)    /* state, summary.json (the trainer writes < 4 KiB) */
#define LAUNCH_POINTS_MAX ((size_t)16 << 20)   /* points.csv: 10000 points, 1.6 KB each */
#define LAUNCH_METRICS_LINE ((size_t)64 << 10) /* a metrics.jsonl line (about 300 bytes) */
/* Writes one line to run_dir/state (what status reports). */
void launch_set_state(const char *run_dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a timestamped line to run_dir/launch.log. */
void launch_log(const char *run_dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* posix_spawnp + waitpid; stdout/stderr to out_path when not NULL. Returns
 * the exit status, 128+signal when killed, or -1 when it cannot start. */
int launch_spawn_wait(char *const *argv, const char *out_path);
/* Shortest "%.Ng" that reads back to the same double. */
void launch_fmt_double(double v, char *out, size_t n);

#endif
