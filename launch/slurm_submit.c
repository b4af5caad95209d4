/* slurm_submit.c - from run directories to a queued job: job.sbatch (or a
 * sweep's sweep.sbatch) written, sbatch run, its id recorded; and a Slurm
 * run stopped (scancel, a time limit, preemption) sent back to Slurm by
 * `resume`, the way `sweep --slurm` resubmits its unfinished points: the
 * script sees the run's `latest` checkpoint and continues with resume=auto. */
#define _GNU_SOURCE /* open_memstream */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "run_lock.h"

/* The trainer as the batch job will find it: absolute when it is a path. */
static void abs_trainer(const launch_opts *o, char *out, size_t n) {
    char t[LAUNCH_PATH_MAX];
    launch_trainer_path(o, t, sizeof t);
    if (!strchr(t, '/') || !realpath(t, out)) snprintf(out, n, "%s", t);
}

/* The script's text into *buf (caller frees). 0, or -1 + err. */
static int script_text(const jepa_spec *s, const launch_opts *o, const char *const *dirs, int n, int parallel,
                       char **buf, char *err, size_t errlen) {
    char trainer[PATH_MAX];
    size_t len = 0;
    abs_trainer(o, trainer, sizeof trainer);
    *buf = NULL;
    FILE *f = open_memstream(buf, &len);
    if (!f) return launch_errf(err, errlen, "out of memory");
    int rc = launch_sbatch_script(f, s, trainer, dirs, n, parallel, err, errlen);
    fclose(f);
    return rc;
}

int launch_slurm_write_script(const char *path, const jepa_spec *s, const launch_opts *o, const char *const *dirs,
                              int n, int parallel, char *err, size_t errlen) {
    char *buf;
    int rc = script_text(s, o, dirs, n, parallel, &buf, err, errlen);
    if (rc == 0) rc = launch_write_file(path, buf, strlen(buf), err, errlen);
    if (rc == 0) chmod(path, 0755);
    free(buf);
    return rc;
}

int launch_slurm_output(char *out, size_t n, const char *dir, const char *pattern, char *err, size_t errlen) {
    size_t k;
    if (strchr(dir, '\\'))
        return launch_errf(err, errlen, "'%.200s' holds a backslash: Slurm would strip it from the job's output file "
                           "name; choose a directory without one", dir);
    if (launch_slurm_literal(dir, out, n - strlen(pattern) - 1))
        return launch_errf(err, errlen, "'%.80s...': path too long for sbatch --output", dir);
    k = strlen(out);
    snprintf(out + k, n - k, "/%s", pattern);
    return 0;
}

int launch_slurm_submit(const char *dir, const char *script, const char *output, const char *kept, char *id,
                        size_t idlen, char *err, size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32];
    int rc = launch_sbatch_submit(script, output, id, idlen, err, errlen);
    size_t k = strlen(err);
    if (rc == -2 && k + 1 < errlen)
        snprintf(err + k, errlen - k, "; %s kept (%s): sbatch may have queued it, check squeue before resubmitting",
                 dir, kept);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/slurm_job", dir);
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", id);
    launch_write_file(path, line, (size_t)n, err, errlen);
    printf("submitted job %s\n", id);
    return 0;
}

int launch_slurm_made(const char *dir) {
    char path[LAUNCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/job.sbatch", dir);
    if (access(path, F_OK) == 0) return 1;
    snprintf(path, sizeof path, "%s/slurm_job", dir);
    return access(path, F_OK) == 0;
}

/* What a Slurm resume must find before it writes: a Slurm-shaped spec
 * (launch_spec_check as `slurm` makes it, read from DIR's resolved spec),
 * a checkpoint the spec's parallel.ranks can continue, no job of its own
 * still queued, no local job holding DIR. 0, or -1 + err. */
static int resume_checks(const char *dir, launch_spec *ls, char *err, size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    if (launch_spec_load(ls, path, NULL, 0, err, errlen) || launch_spec_check(ls, LAUNCH_CHECK_SLURM, err, errlen) ||
        launch_check_world(dir, &ls->spec, NULL, 1, err, errlen))
        return -1;
    if (launch_slurm_busy(dir, err, errlen) || run_lock_probe(dir, err, errlen)) return -1;
    return 0;
}

/* file's bytes into *text (NULL when there is none) */
static void keep_file(const char *dir, const char *name, char **text) {
    char path[LAUNCH_PATH_MAX + 32], why[SPEC_ERR_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (spec_read_file(path, SPEC_FILE_MAX, name, text, NULL, why, sizeof why)) *text = NULL;
}

/* put back what keep_file kept (a file that was not there goes) */
static void restore_file(const char *dir, const char *name, const char *text) {
    char path[LAUNCH_PATH_MAX + 32], why[SPEC_ERR_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text) unlink(path);
    else launch_write_file(path, text, strlen(text), why, sizeof why);
}

int launch_slurm_resume(const char *dir, const launch_opts *o, int dry_run, char *err, size_t errlen) {
    launch_spec ls;
    char script[LAUNCH_PATH_MAX + 32], out[2 * LAUNCH_PATH_MAX + 32], id[64], *text = NULL;
    snprintf(script, sizeof script, "%s/job.sbatch", dir);
    int rc = resume_checks(dir, &ls, err, errlen);
    if (rc == 0) rc = launch_slurm_output(out, sizeof out, dir, "slurm-%j.out", err, errlen);
    if (rc == 0) rc = script_text(&ls.spec, o, &dir, 1, 0, &text, err, errlen);
    launch_spec_free(&ls);
    if (rc || dry_run) { /* a dry run prints the script it would submit and writes nothing */
        if (rc == 0) fputs(text, stdout);
        free(text);
        return rc ? -1 : 0;
    }
    char *old_state, *old_script;
    keep_file(dir, "state", &old_state);
    keep_file(dir, "job.sbatch", &old_script);
    rc = run_lock_take(dir, RUN_LOCK_LAUNCHER, err, errlen) ? -1 : 0; /* no local job starts meanwhile */
    if (rc == 0) rc = launch_write_file(script, text, strlen(text), err, errlen);
    if (rc == 0) {
        chmod(script, 0755);
        launch_set_state(dir, "submitted");
        rc = launch_slurm_submit(dir, script, out, "job.sbatch rewritten", id, sizeof id, err, errlen);
    }
    if (rc == 0) launch_log(dir, "resume: submitted job %s (it continues from the newest checkpoint)", id);
    if (rc == -2) launch_set_state(dir, "failed: sbatch (the job may be queued: check squeue)");
    if (rc == -1) { /* nothing queued: the directory as it was */
        restore_file(dir, "state", old_state);
        restore_file(dir, "job.sbatch", old_script);
    }
    free(old_state);
    free(old_script);
    free(text);
    return rc;
}
