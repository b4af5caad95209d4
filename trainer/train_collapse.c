/* train_collapse.c - the collapse watch of the training loop: the
 * objective's declared statistic (objective_ops.collapse) at each logged
 * step against its value at the run's first logged step. It only reads the
 * logged figures, so the trajectory, checkpoints and resume are untouched;
 * a resume replays the kept metrics.jsonl lines, so a resumed run warns and
 * records as a straight one would. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objective.h"
#include "train_internal.h"

void collapse_watch_init(collapse_watch *w, const objective_ops *ops, int nstats) {
    const char *name = ops->collapse.stat;
    w->k = -1;
    for (int k = 0; k < nstats; k++)
        if (!name || !strcmp(ops->stat_names[k], name)) {
            w->k = k;
            break;
        }
    /* a name the objective does not log is a bug in its table */
    JEPA_ASSERT(w->k >= 0 || !name);
    w->name = w->k >= 0 ? ops->stat_names[w->k] : "";
    w->frac = ops->collapse.frac > 0 ? ops->collapse.frac : OBJ_COLLAPSE_FRAC;
    w->start = NAN;
    w->start_step = -1;
    w->warned = -1;
}

/* The first logged value is the start; a later one below frac x start
 * (a start <= 0 has nothing to fall from) is the warning. 1: warn now. */
static int watch_step(collapse_watch *w, int64_t step, double v) {
    if (w->k < 0 || w->warned >= 0) return 0;
    if (w->start_step < 0) {
        w->start = v;
        w->start_step = step;
        return 0;
    }
    if (!(w->start > 0) || !(v < w->frac * w->start)) return 0;
    w->warned = step;
    return 1;
}

int collapse_watch_check(collapse_watch *w, int64_t step, const double *stat, int tty) {
    if (w->k < 0 || !watch_step(w, step, stat[w->k])) return 0;
    fprintf(stderr,
            "%strain: warning: step %lld: %s %.4f is below %gx its value at step %lld (%.4f): "
            "the representation is collapsing (optim.lr too high?); training continues "
            "(summary.json collapse_warning_step)\n",
            tty ? "\n" : "", (long long)step, w->name, stat[w->k], w->frac,
            (long long)w->start_step, w->start);
    return 1;
}

void collapse_watch_replay(collapse_watch *w, const char *metrics_path) {
    if (w->k < 0) return;
    FILE *f = spec_fopen_regular(metrics_path, NULL, 0);
    if (!f) return; /* nothing logged yet: the watch starts with this part */
    char line[4096], key[80];
    snprintf(key, sizeof key, "\"%s\": ", w->name);
    while (fgets(line, sizeof line, f)) {
        long long st;
        const char *p = strstr(line, key);
        if (sscanf(line, "{\"step\": %lld,", &st) == 1 && p)
            watch_step(w, st, strtod(p + strlen(key), NULL));
    }
    fclose(f);
}
