/* train_internal.h - the training loop's file and process helpers
 * (train_io.c), private to train.c. */
#ifndef JEPA_TRAIN_INTERNAL_H
#define JEPA_TRAIN_INTERNAL_H

#include <stdio.h>

#include "jepa.h"
#include "objective.h"

double train_now_s(void); /* monotonic seconds */
/* dir/name := text, atomically (temp + rename). 0 or -1 + err. */
int train_write_text(const char *dir, const char *name, const char *text, char *err,
                     size_t errlen);
/* The run directory with the spec as given (may be NULL) and fully resolved. */
int train_write_run_dir(const jepa_spec *s, const char *spec_text, char *err, size_t errlen);
/* Rank 0: the checkpoint `resume` asks for, into m and *got. 1: nothing to
 * resume (a fresh start), 0: loaded (path names it), -1 + err. */
int train_resume_load(const jepa_spec *s, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                      char *path, size_t plen, char *err, size_t errlen);
/* metrics.jsonl continued after a resume: lines past step `upto` and a
 * line cut short are dropped. Returns the file open for appending, or NULL + err. */
FILE *train_metrics_open_at(const char *path, int64_t upto, char *err, size_t errlen);
/* The objective's statistics names[1..n) from path's line of step `step`
 * into stat[1..n), those the line has (a checkpoint keeps only the first:
 * a resume of a finished run, which trains no step, writes them to
 * summary.json as the straight run did, at the line's %.5f). */
void train_metrics_stats_at(const char *path, int64_t step, const char *const *names, int n, double *stat);
/* Under Slurm with JEPA_REQUEUE=1: `scontrol requeue $SLURM_JOB_ID`. */
void train_slurm_requeue(void);
/* The job id train_slurm_requeue would requeue, or NULL (not asked for; a
 * SLURM_JOB_ID that is not a number: a warning). */
const char *train_slurm_requeue_id(void);
/* Collective: rank 0 writes the checkpoint of cm->step steps into the run
 * directory (reader positions checked equal on every rank first). */
void train_save_checkpoint(const jepa_spec *s, const jepa_model *m, ckpt_meta *cm,
                           shard_reader *rd, char *path, size_t plen);
/* JEPA_DEBUG_DATA_TRACE=DIR (a test hook): DIR/rank-R.trace opened for
 * appending, else NULL (unset, or it cannot be opened: a warning). */
FILE *train_trace_open(int rank);
/* One line per record of this rank's batch of step (0-based): "STEP SLOT
 * HASH", SLOT its place in the global batch (first + i), HASH the FNV-1a 64
 * of its rb bytes. Ranks' files merged and sorted give the global batches. */
void train_trace_batch(FILE *f, int64_t step, int first, int n, const uint8_t *rec, size_t rb);

/* The collapse watch (train_collapse.c), rank 0: the objective's declared
 * statistic (objective_ops.collapse) at each logged step against its value
 * at the run's first logged step. */
typedef struct {
    int k;              /* index into stat_names; -1: the objective logs none */
    const char *name;   /* stat_names[k] */
    double frac;        /* warn below frac x start */
    double start;       /* the value at start_step */
    int64_t start_step; /* the first logged step; -1: none yet */
    int64_t warned;     /* the step of the warning; -1: none */
} collapse_watch;
void collapse_watch_init(collapse_watch *w, const objective_ops *ops, int nstats);
/* After a resume: the start and a warning from metrics.jsonl's kept lines,
 * silently (the earlier part said it). */
void collapse_watch_replay(collapse_watch *w, const char *metrics_path);
/* At logged step `step` with the logged figures stat (stat_names order):
 * the first time the statistic is below frac x start, one warning line on
 * stderr (after a newline when tty: the progress line) and 1; else 0. */
int collapse_watch_check(collapse_watch *w, int64_t step, const double *stat, int tty);

/* Signals (train_signal.c). catch: SIGTERM, SIGUSR1 and SIGINT (unless
 * ignored on entry; a second one kills, SA_RESETHAND) set a flag, which
 * caught() returns (the signal, or 0); release_int: SIGINT back to its
 * action on entry; eval(1, stop_line, requeue_id): the closing evaluation,
 * SIGINT and SIGTERM back to theirs and SIGUSR1 a stop at once (stop_line,
 * if not NULL, on stderr, `scontrol requeue requeue_id` if not NULL, exit
 * TRAIN_EXIT_INTERRUPTED), one caught since acted on now; eval(0): caught
 * again; restore: all three as on entry. */
void train_signals_catch(void);
int train_signal_caught(void);
void train_signals_release_int(void);
void train_signals_eval(int on, const char *stop_line, const char *requeue_id);
void train_signals_restore(void);

#endif
