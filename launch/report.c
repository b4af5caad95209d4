/* report.c - the reading commands of jepa-launch: `results` (a sweep's
 * table, best first, and DIR/results.csv) and `status` (one line a run or
 * point), over results.c's readers. */
#define _GNU_SOURCE /* open_memstream, realpath */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.h"

/* A sweep's table, best first, and the one warning when its final losses
 * are ranked across values that make them incomparable (launch_loss_caveat) */
void launch_print_ranked(char **keys, int nkeys, result_row *rows, int n) {
    char caveat[SPEC_ERR_MAX];
    launch_sort_results(rows, n);
    launch_print_results(stdout, (const char *const *)keys, nkeys, rows, n, 0);
    if (launch_loss_caveat((const char *const *)keys, nkeys, rows, n, caveat, sizeof caveat))
        fprintf(stderr, "jepa-launch: warning: %s\n", caveat);
}

/* The points (or the run, n 1 and no name) a table showed as damaged, in
 * one line naming the first one's file: 1, or 0 when none is. */
static int damaged(const char *dir, int sweep, const result_row *rows, int n, char *err, size_t errlen) {
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (rows[i].st.damaged[0] && bad++ == 0) first = i;
    if (!bad) return 0;
    if (!sweep) return launch_errf(err, errlen, "%s/%s", dir, rows[first].st.damaged), 1;
    launch_errf(err, errlen, "%s/point-%03d/%s (%d of %d points damaged; the table lists every point)", dir,
                rows[first].point, rows[first].st.damaged, bad, n);
    return 1;
}

/* The points (or the run, n 1 and no name) a table showed as inconsistent,
 * in one line: 1, or 0 when none is. Said before damaged(), whose line
 * replaces this one. */
static int inconsistent(const char *dir, int sweep, const result_row *rows, int n, char *err, size_t errlen) {
    int bad = 0;
    for (int i = 0; i < n; i++) bad += !strncmp(rows[i].st.state, "inconsistent", 12);
    if (!bad) return 0;
    if (!sweep)
        return launch_errf(err, errlen, "%s: inconsistent (spec.resolved.yaml rewritten after the run finished): "
                           "no figures reported for it", dir), 1;
    launch_errf(err, errlen, "%s: %d point%s inconsistent (spec.resolved.yaml rewritten after the run finished): "
                "no figures reported for %s", dir, bad, bad == 1 ? " is" : "s are", bad == 1 ? "it" : "them");
    return 1;
}

/* DIR/results.csv: the table's rows as CSV, written atomically. 0 or -1 + err. */
static int write_results_csv(const char *dir, char *const *keys, int nkeys, const result_row *rows, int n, char *err,
                             size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return launch_errf(err, errlen, "out of memory");
    launch_print_results(f, (const char *const *)keys, nkeys, rows, n, 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/results.csv", dir);
    int rc = launch_write_file(path, buf, len, err, errlen);
    free(buf);
    return rc;
}

/* A run's label in results and status: its directory's name, as the
 * directory resolves (so "." and "runs/a/" say which run) */
static const char *run_label(const char *dir, char *out, size_t n) {
    char *real = realpath(dir, NULL);
    const char *p = real ? real : dir, *slash = strrchr(p, '/');
    snprintf(out, n, "%s", slash && slash[1] ? slash + 1 : p);
    free(real);
    return out;
}

/* A sweep's table (or a run's: a table of one), best first, and the same
 * as DIR/results.csv; exit 1 when a row is damaged or inconsistent (the
 * table says which), 2 when the sweep does not read or its CSV cannot be
 * written (a run's CSV: a warning). */
int launch_results_cmd(const char *dir, char *err, size_t errlen) {
    char **keys;
    int nkeys;
    result_row *rows;
    int n = launch_read_sweep(dir, &keys, &nkeys, &rows, err, errlen);
    if (n == -2) return 2; /* a sweep whose points.csv is damaged: err names it */
    if (n < 0) { /* one run: a table of one */
        char name[LAUNCH_PATH_MAX];
        result_row r = {.name = run_label(dir, name, sizeof name)};
        if (launch_read_status(dir, &r.st))
            return snprintf(err, errlen, "results: %s is neither a run nor a sweep directory", dir), 2;
        launch_slurm_rows(dir, 0, &r, 1);
        launch_print_results(stdout, NULL, 0, &r, 1, 0);
        int bad = inconsistent(dir, 0, &r, 1, err, errlen) | damaged(dir, 0, &r, 1, err, errlen);
        /* the CSV is the row just printed: a run that cannot be written to
         * (read-only, archived, another user's) is still a query that works */
        char werr[SPEC_ERR_MAX];
        if (write_results_csv(dir, NULL, 0, &r, 1, werr, sizeof werr))
            fprintf(stderr, "jepa-launch: warning: %s (the table above is the result)\n", werr);
        return bad;
    }
    launch_slurm_rows(dir, 1, rows, n);
    launch_print_ranked(keys, nkeys, rows, n);
    /* the table says so too; the exit status tells scripts */
    int rc = inconsistent(dir, 1, rows, n, err, errlen) ? -1 : 0;
    if (damaged(dir, 1, rows, n, err, errlen)) rc = -1; /* said before an inconsistent one */
    if (write_results_csv(dir, keys, nkeys, rows, n, err, errlen)) rc = -2;
    launch_free_results(keys, nkeys, rows, n);
    return rc == -2 ? 2 : rc ? 1 : 0;
}

static void print_status(const char *name, const run_status *st) {
    printf("%s: %s", name, st->state);
    if (st->step >= 0) printf(", step %lld", st->step);
    if (!isnan(st->loss)) printf(", loss %.4f", st->loss);
    /* not the step logged last: a resume goes back to the newest checkpoint */
    if (st->resume_step >= 0) printf(", resume from step %lld", st->resume_step);
    else if (st->resume_step == -1) printf(", resume starts over (no checkpoint)");
    else if (st->resume_step == LAUNCH_RESUME_BUSY) printf(", its job still runs (it holds the run's lock)");
    if (!isnan(st->final_loss)) printf(", final_loss %.4f", st->final_loss);
    if (!isnan(st->fig[0])) printf(", %s %.4f", st->obj->figs[0], st->fig[0]); /* the headline */
    printf("\n");
}

/* status of one run or sweep directory; many: one of several, a sweep's
 * lines then after a line naming it */
static int status_one(const char *dir, int many, char *err, size_t errlen) {
    char **keys;
    int nkeys;
    result_row *rows;
    int n = launch_read_sweep(dir, &keys, &nkeys, &rows, err, errlen);
    if (n == -2) return 2; /* a sweep whose points.csv is damaged: err names it */
    if (n < 0) {
        run_status st;
        char name[LAUNCH_PATH_MAX];
        if (launch_read_status(dir, &st))
            return snprintf(err, errlen, "status: %s is neither a run nor a sweep directory", dir), 2;
        result_row r = {.st = st};
        launch_slurm_rows(dir, 0, &r, 1);
        print_status(run_label(dir, name, sizeof name), &r.st);
        return inconsistent(dir, 0, &r, 1, err, errlen) | damaged(dir, 0, &r, 1, err, errlen);
    }
    /* finished as sweep says it (summary.json: skipped when run again),
     * a train.minutes cap's too */
    int done = 0, cut = 0;
    launch_slurm_rows(dir, 1, rows, n);
    if (many) printf("sweep %s:\n", dir);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "point-%03d", rows[i].point);
        print_status(name, &rows[i].st);
        cut += !strncmp(rows[i].st.state, "truncated:", 10);
        done += !strcmp(rows[i].st.state, "done");
    }
    printf("%d of %d points finished", done + cut, n);
    if (cut) printf(" (%d cut short by train.minutes)", cut);
    printf("\n");
    int rc = inconsistent(dir, 1, rows, n, err, errlen) | damaged(dir, 1, rows, n, err, errlen);
    launch_free_results(keys, nkeys, rows, n);
    return rc;
}

/* status DIR...: each as alone, in order; a directory that fails is said
 * on stderr in its turn and the rest still shown; the exit the worst */
int launch_status_cmd(const char *const *dirs, int n, char *err, size_t errlen) {
    int worst = 0;
    for (int i = 0; i < n; i++) {
        int rc = status_one(dirs[i], n > 1, err, errlen);
        if (rc && *err) {
            fflush(stdout); /* the line after the ones before it */
            fprintf(stderr, "jepa-launch: %s\n", err);
        }
        *err = 0; /* a run's: "not a sweep directory" was a question asked on the way */
        if (rc > worst) worst = rc;
    }
    return worst;
}

