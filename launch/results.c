/* results.c - what a run is doing and how it ended, read from the files it
 * writes (state, metrics.jsonl, summary.json), and a sweep's table of
 * points, best first, as aligned text or CSV. */
#define _GNU_SOURCE /* memrchr */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

/* Marks st damaged: st->damaged "NAME: why" (the first damage found is
 * the one kept; launch_read_status then gives the state and drops the
 * figures). Returns 0. */
static int damage(run_status *st, const char *name, const char *why) {
    if (!st->damaged[0]) snprintf(st->damaged, sizeof st->damaged, "%s: %s", name, why);
    return 0;
}

/* Why spec_read_file or spec_open_regular refused a file, short (errno) */
static const char *read_why(char *buf, size_t n, size_t max) {
    if (errno == EINVAL) return "not a regular file";
    if (errno == EFBIG) return snprintf(buf, n, "larger than %zu bytes", max), buf;
    return strerror(errno);
}

/* run_dir/name's text in *text (NULL when there is none): 0, or -1 when
 * it is there but cannot be read (st is then damaged). */
static int run_file(const char *run_dir, const char *name, size_t max, char **text, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], msg[SPEC_ERR_MAX], why[64];
    snprintf(path, sizeof path, "%s/%s", run_dir, name);
    if (spec_read_file(path, max, name, text, NULL, msg, sizeof msg) == 0) return 0;
    if (errno == ENOENT) return 0;
    return damage(st, name, read_why(why, sizeof why, max)) - 1;
}

/* The last complete line of metrics.jsonl into line (n bytes): only the
 * file's last n - 1 bytes are read, as a long run's log is large and one
 * line is all status shows (a line not ended yet is being written). 1 when
 * there is one, 0 when not, -1 when the file cannot be read (st damaged). */
static int metrics_last(const char *run_dir, char *line, size_t n, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], msg[SPEC_ERR_MAX], why[64];
    off_t size;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int fd = spec_open_regular(path, &size, msg, sizeof msg);
    if (fd < 0) return errno == ENOENT ? 0 : damage(st, "metrics.jsonl", read_why(why, sizeof why, 0)) - 1;
    off_t from = size > (off_t)n - 1 ? size - (off_t)n + 1 : 0;
    ssize_t k = pread(fd, line, (size_t)(size - from), from);
    close(fd);
    if (k < 0) return damage(st, "metrics.jsonl", strerror(errno)) - 1;
    while (k > 0 && line[k - 1] != '\n') k--; /* the last line ended */
    if (k == 0) return 0;
    line[--k] = 0;
    char *start = memrchr(line, '\n', (size_t)k);
    if (!start && from > 0)
        return damage(st, "metrics.jsonl", "its last line is longer than the 65536 bytes read") - 1;
    memmove(line, start ? start + 1 : line, strlen(start ? start + 1 : line) + 1);
    return 1;
}

/* state: "pending" when there is none (a run the launcher has not started) */
static void read_state(const char *run_dir, run_status *st) {
    char *state = NULL;
    snprintf(st->state, sizeof st->state, "pending");
    if (run_file(run_dir, "state", LAUNCH_SMALL_MAX, &state, st) || !state) return;
    snprintf(st->state, sizeof st->state, "%s", state);
    st->state[strcspn(st->state, "\n")] = 0;
    free(state);
    /* a local launcher that died leaves "running pid=N" behind */
    int pid;
    if (sscanf(st->state, "running pid=%d", &pid) == 1 && kill(pid, 0) != 0 && errno == ESRCH)
        snprintf(st->state, sizeof st->state, "stale (launcher pid %d is gone)", pid);
}

/* summary.json's figures; its mtime against the resolved spec's (sb) */
static void read_summary(const char *run_dir, const struct stat *sb, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], *s = NULL;
    if (run_file(run_dir, "summary.json", LAUNCH_SMALL_MAX, &s, st) || !s) return;
    double v;
    if (launch_json_number(s, "final_loss", &v) != 0) { /* written whole, so damaged since */
        damage(st, "summary.json", "no final_loss");
        free(s);
        return;
    }
    st->final_loss = v;
    if (launch_json_number(s, "probe_acc", &v) == 0) st->probe_acc = v;
    if (launch_json_number(s, "steps", &v) == 0) st->step = (long long)v;
    char *h = strstr(s, "\"param_hash\": \"");
    if (h) sscanf(h + 15, "%31[0-9a-f]", st->param_hash);
    /* the trainer alone (no launcher) leaves no state file */
    if (!strcmp(st->state, "pending")) snprintf(st->state, sizeof st->state, "done");
    /* a train.minutes cap ended it before its planned steps: its figures
     * are not a finished schedule's, and the table says so */
    double planned;
    if (strstr(s, "\"stop_reason\": \"budget\"") && launch_json_number(s, "planned_steps", &planned) == 0)
        snprintf(st->state, sizeof st->state, "truncated: train.minutes cap, %lld of %.0f steps", st->step, planned);
    free(s);
    /* The trainer writes the resolved spec at its start and summary.json
     * at its end. A spec newer than the summary was rewritten after the
     * run finished (as sweeps re-run into their directory once did): the
     * figures are not that spec's, so none are reported. */
    struct stat ss;
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    const struct timespec *a = &sb->st_mtim, *b = &ss.st_mtim;
    if (stat(path, &ss) == 0 && (a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec))) {
        snprintf(st->state, sizeof st->state, "inconsistent: spec.resolved.yaml newer than summary.json");
        st->final_loss = st->probe_acc = NAN;
        st->param_hash[0] = 0;
    }
}

int launch_read_status(const char *run_dir, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], line[LAUNCH_METRICS_LINE + 1];
    struct stat sb;
    memset(st, 0, sizeof *st);
    st->step = -1;
    st->loss = st->final_loss = st->probe_acc = NAN;
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", run_dir);
    if (stat(path, &sb) != 0) return -1;
    read_state(run_dir, st);
    if (metrics_last(run_dir, line, sizeof line, st) == 1) {
        double v;
        if (launch_json_number(line, "step", &v) == 0) st->step = (long long)v;
        if (launch_json_number(line, "loss", &v) == 0) st->loss = v;
    }
    read_summary(run_dir, &sb, st);
    if (st->damaged[0]) { /* none of a damaged run's figures are reported */
        snprintf(st->state, sizeof st->state, "damaged: %s", st->damaged);
        st->final_loss = st->probe_acc = NAN;
        st->param_hash[0] = 0;
    }
    return 0;
}

static int finished(const result_row *r) { return !isnan(r->st.final_loss); }

static int any_probe;
static int cmp_rows(const void *pa, const void *pb) {
    const result_row *a = pa, *b = pb;
    if (finished(a) != finished(b)) return finished(b) - finished(a);
    if (finished(a)) {
        double x = any_probe ? -a->st.probe_acc : a->st.final_loss, y = any_probe ? -b->st.probe_acc : b->st.final_loss;
        if (x < y) return -1;
        if (x > y) return 1;
    }
    return a->point - b->point;
}

void launch_sort_results(result_row *rows, int n) {
    any_probe = 0;
    for (int i = 0; i < n; i++)
        if (finished(&rows[i]) && rows[i].st.probe_acc >= 0) any_probe = 1;
    qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
}

static void csv_field(FILE *f, const char *v) {
    if (!strpbrk(v, ",\"\n\r")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"') fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

static void num(char *out, size_t n, double v, const char *fmt) {
    if (isnan(v) || v < 0) snprintf(out, n, "-");
    else snprintf(out, n, fmt, v);
}

void launch_print_results(FILE *f, const char *const *keys, int nkeys, const result_row *rows, int n, int csv) {
    int w[SWEEP_MAX_KEYS];
    for (int k = 0; k < nkeys; k++) {
        w[k] = (int)strlen(keys[k]);
        for (int i = 0; i < n; i++)
            if ((int)strlen(rows[i].values[k]) > w[k]) w[k] = (int)strlen(rows[i].values[k]);
    }
    if (csv) {
        fputs("point", f);
        for (int k = 0; k < nkeys; k++) fputc(',', f), csv_field(f, keys[k]);
        fputs(",final_loss,probe_acc,steps,status\n", f);
    } else {
        fprintf(f, "%-6s", "point");
        for (int k = 0; k < nkeys; k++) fprintf(f, "  %-*s", w[k], keys[k]);
        fprintf(f, "  %10s  %9s  %8s  %s\n", "final_loss", "probe_acc", "steps", "status");
    }
    for (int i = 0; i < n; i++) {
        const result_row *r = &rows[i];
        char fl[32], pa[32], steps[32];
        num(fl, sizeof fl, r->st.final_loss, "%.6f");
        num(pa, sizeof pa, r->st.probe_acc, "%.4f");
        if (r->st.step >= 0) snprintf(steps, sizeof steps, "%lld", r->st.step);
        else snprintf(steps, sizeof steps, "-");
        if (csv) {
            fprintf(f, "%d", r->point);
            for (int k = 0; k < nkeys; k++) fputc(',', f), csv_field(f, r->values[k]);
            fprintf(f, ",%s,%s,%s,", fl, pa, steps);
            csv_field(f, r->st.state);
            fputc('\n', f);
        } else {
            fprintf(f, "%-6d", r->point);
            for (int k = 0; k < nkeys; k++) fprintf(f, "  %-*s", w[k], r->values[k]);
            fprintf(f, "  %10s  %9s  %8s  %s\n", fl, pa, steps, r->st.state);
        }
    }
}

int launch_read_sweep(const char *dir, char ***keys_out, int *nkeys_out, result_row **rows_out, char *err,
                      size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/points.csv", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: not a sweep directory (no points.csv)", dir);
        return -1;
    }
    /* from here dir is a sweep: a points.csv we cannot use is said as such */
    char *csv;
    if (spec_read_file(path, LAUNCH_POINTS_MAX, "sweep's points.csv", &csv, NULL, err, errlen)) return -2;
    /* header: point,dir,KEY,...  (keys are spec keys: no commas or quotes) */
    char *save = NULL, *line = strtok_r(csv, "\n", &save);
    char **keys = calloc(SWEEP_MAX_KEYS, sizeof *keys);
    int nkeys = 0, n = 0, cap = 0;
    result_row *rows = NULL;
    if (!line || strncmp(line, "point,dir", 9) != 0) {
        snprintf(err, errlen, "%s: %s: the sweep's list of points is damaged (jepa-launch sweep SWEEP writes it "
                 "again)", path, line ? "no 'point,dir,...' header" : "empty");
        free(csv);
        free(keys);
        return -2;
    }
    for (char *p = line + 9; *p == ',' && nkeys < SWEEP_MAX_KEYS;) {
        char *e = strchr(p + 1, ',');
        size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);
        keys[nkeys++] = strndup(p + 1, len);
        p += len + 1;
    }
    while ((line = strtok_r(NULL, "\n", &save))) {
        int point;
        char name[32];
        if (sscanf(line, "%d,%31[a-z0-9-]", &point, name) != 2) continue; /* a quoted value's later line */
        if (n == cap) rows = realloc(rows, sizeof *rows * (size_t)(cap = cap ? cap * 2 : 16));
        result_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->point = point;
        r->values = calloc((size_t)(nkeys ? nkeys : 1), sizeof *r->values);
        char rd[LAUNCH_PATH_MAX + 40];
        if (strlen(dir) > LAUNCH_PATH_MAX - 64) break;
        snprintf(rd, sizeof rd, "%s/%s", dir, name);
        if (launch_read_status(rd, &r->st)) snprintf(r->st.state, sizeof r->st.state, "missing");
        /* the values as the point's resolved spec has them */
        jepa_spec s;
        char e2[SPEC_ERR_MAX], v[SPEC_STR_MAX];
        spec_defaults(&s);
        snprintf(path, sizeof path, "%.*s/spec.resolved.yaml", LAUNCH_PATH_MAX - 40, rd);
        int ok = spec_load_file(&s, path, e2, sizeof e2) == 0;
        for (int k = 0; k < nkeys; k++) r->values[k] = strdup(ok && spec_get(&s, keys[k], v, sizeof v) == 0 ? v : "?");
    }
    free(csv);
    if (n == 0) {
        launch_free_results(keys, nkeys, rows, 0);
        return snprintf(err, errlen, "%s: lists no point: the sweep's list of points is damaged (jepa-launch sweep "
                        "SWEEP writes it again)", path), -2;
    }
    *keys_out = keys;
    *nkeys_out = nkeys;
    *rows_out = rows;
    return n;
}

void launch_free_results(char **keys, int nkeys, result_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < nkeys; k++) free(rows[i].values[k]);
        free(rows[i].values);
    }
    free(rows);
    for (int k = 0; k < nkeys; k++) free(keys[k]);
    free(keys);
}
