/* plot.c - a run's or a sweep's curves as PNG, drawn by gnuplot. We write
 * plain data files and a gnuplot script into DIR/plots/ and run gnuplot
 * there (argv, cwd = plots/), so no path from a spec appears in the script;
 * titles are single-quoted gnuplot strings with control characters dropped. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "stdout_close.h"

/* 'text' for gnuplot: ' doubles, control characters become spaces */
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('\'', f);
}

/* One line of metrics.jsonl as a metrics.dat row: the step, then each of
 * o's panel keys (loss first), NaN where the line lacks one; has[k] (may
 * be NULL) counts the rows holding panel k's key. 1 when the line had a
 * step and a loss. */
static int metrics_row(FILE *f, const char *line, const launch_objective *o, int *has) {
    double step, v;
    if (launch_json_number(line, "step", &step) || launch_json_number(line, "loss", &v)) return 0;
    fprintf(f, "%.0f", step);
    for (int k = 0; k < launch_objective_npanels(o); k++) {
        int got = launch_json_number(line, o->panels[k].key, &v) == 0;
        if (has) has[k] += got;
        fprintf(f, " %.9g", got ? v : NAN);
    }
    fputc('\n', f);
    return 1;
}

/* metrics.jsonl -> metrics.dat rows in *dat (malloc'd text, caller frees),
 * one column per panel of o after the step. Nothing is written: the
 * caller decides once it knows there is something to plot. A long run's
 * log is large, so it is read a line at a time, to the size it had when
 * opened (a running trainer appends), and a line longer than
 * LAUNCH_METRICS_LINE is refused. Returns the rows; -1 + err (errno ENOENT:
 * there is no metrics.jsonl yet) when it cannot be read. *lines: its
 * non-blank lines; has (may be NULL; LAUNCH_MAX_PANELS zeroed here) the
 * rows holding each panel's key. */
static int metrics_dat(const char *run_dir, const launch_objective *o, char **dat, int *lines, int *has, char *err,
                       size_t errlen) {
    char path[LAUNCH_PATH_MAX + 64]; /* a sweep point's run_dir is up to LAUNCH_PATH_MAX + 31 */
    size_t len = 0;
    off_t size, done = 0;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int fd = spec_open_regular(path, &size, err, errlen), rows = 0, bad = 0;
    FILE *in = fd >= 0 ? fdopen(fd, "r") : NULL, *f = open_memstream(dat, &len);
    char *line = malloc(LAUNCH_METRICS_LINE + 2);
    if (!f || !line || (fd >= 0 && !in)) launch_oom();
    *lines = 0;
    if (has) memset(has, 0, sizeof(int) * LAUNCH_MAX_PANELS);
    fputs("# step", f);
    for (int k = 0; k < launch_objective_npanels(o); k++) fprintf(f, " %s", o->panels[k].key);
    fputc('\n', f);
    while (in && done < size && fgets(line, LAUNCH_METRICS_LINE + 2, in)) {
        size_t k = strlen(line);
        done += (off_t)k;
        if (k > LAUNCH_METRICS_LINE) {
            bad = launch_errf(err, errlen, "%s:%d: a line longer than %zu bytes; not a metrics log?", path,
                              *lines + 1, LAUNCH_METRICS_LINE);
            break;
        }
        if (line[strspn(line, " \t\r\n")]) ++*lines;
        rows += metrics_row(f, line, o, has);
    }
    if (in && !bad && ferror(in)) bad = launch_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    fclose(f);
    free(line);
    if (in) fclose(in);
    if (fd < 0) return -1; /* errno from spec_open_regular */
    return bad ? (errno = EIO, -1) : rows;
}

static const char *gnuplot_bin(void) {
    const char *g = getenv("JEPA_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* Everything a plot writes (data, gnuplot script, gnuplot.log, pictures)
 * goes into plots/.new (STAGE), gnuplot runs there, and it all moves into
 * plots/ only when gnuplot succeeded: a failed plot leaves plots/ as it was
 * (no script or data without its picture, no partial picture), and takes
 * plots/ away again when it made it. */
#define STAGE ".new"

/* pdir/STAGE/name */
static void stage_path(char *out, size_t n, const char *pdir, const char *name) {
    snprintf(out, n, "%s/" STAGE "/%s", pdir, name);
}

/* gnuplot SCRIPT in the stage; 0 when it exits 0, else -1 + err with
 * gnuplot's last words */
static int run_gnuplot(const char *pdir, const char *script, char *err, size_t errlen) {
    char stage[2 * LAUNCH_PATH_MAX];
    stage_path(stage, sizeof stage, pdir, "");
    stdout_flush(); /* its errno kept for stdout_close */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(stage) != 0) _exit(126);
        if (!freopen("gnuplot.log", "w", stderr)) _exit(126); /* its words go in our one line */
        char *argv[] = {(char *)gnuplot_bin(), (char *)script, NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    int ws;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0) return snprintf(err, errlen, "fork: %s", strerror(errno)), -1;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127)
        return snprintf(err, errlen, "cannot run %s (install gnuplot-nox: scripts/setup.sh)", gnuplot_bin()), -1;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        char log[2 * LAUNCH_PATH_MAX], line[256] = "", last[256] = "";
        stage_path(log, sizeof log, pdir, "gnuplot.log");
        FILE *lf = spec_fopen_regular(log, NULL, 0);
        while (lf && fgets(line, sizeof line, lf)) /* gnuplot's last words: the error */
            if (line[strspn(line, " \t\r\n")]) snprintf(last, sizeof last, "%s", line + strspn(line, " \t"));
        if (lf) fclose(lf);
        last[strcspn(last, "\r\n")] = 0;
        return snprintf(err, errlen, "gnuplot failed on %s/%s%s%s (nothing of this plot kept)", pdir, script,
                        *last ? ": " : "", last), -1;
    }
    return 0;
}

/* plots/ (mkdir -p; *made: this call made it) and an empty stage in it;
 * 0 or -1 + err */
static int stage_make(const char *pdir, int *made, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    struct stat st;
    *made = stat(pdir, &st) != 0;
    if (launch_mkdirs(pdir, err, errlen)) return -1;
    stage_path(path, sizeof path, pdir, "");
    DIR *d = opendir(path); /* one a killed plot left */
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') {
            char f[3 * LAUNCH_PATH_MAX];
            snprintf(f, sizeof f, "%s/%s", path, e->d_name);
            unlink(f);
        }
    if (d) closedir(d);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno)), -1;
    return 0;
}

/* name in the stage holds text; 0 or -1 + err */
static int stage_write(const char *pdir, const char *name, const char *text, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    stage_path(path, sizeof path, pdir, name);
    return launch_write_file(path, text, strlen(text), err, errlen);
}

/* name in the stage opened for writing, or NULL + err */
static FILE *stage_open(const char *pdir, const char *name, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    stage_path(path, sizeof path, pdir, name);
    FILE *f = fopen(path, "w");
    if (!f) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

/* The end of a plot whose stage_make was called: when everything was
 * written (rc 0), gnuplot runs script; what it drew moves into plots/ with
 * the files it drew from when it succeeded, else the stage is dropped, and
 * plots/ with it when this call made it. 0, or -1 + err. */
static int stage_finish(const char *pdir, const char *script, int rc, int made, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    if (rc == 0) rc = run_gnuplot(pdir, script, err, errlen);
    stage_path(path, sizeof path, pdir, "");
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char from[3 * LAUNCH_PATH_MAX], to[3 * LAUNCH_PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", path, e->d_name);
        snprintf(to, sizeof to, "%s/%s", pdir, e->d_name);
        if (rc != 0 || rename(from, to) != 0) unlink(from);
    }
    if (d) closedir(d);
    rmdir(path);
    if (rc != 0 && made) rmdir(pdir);
    return rc ? -1 : 0;
}

static int check_png(const char *dir, const char *name, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &st) != 0 || st.st_size == 0) return snprintf(err, errlen, "gnuplot wrote no %s", path), -1;
    printf("%s\n", path);
    return 0;
}

static const char *terminal = "set terminal pngcairo size 1200,800 noenhanced\n";

/* Why a run has nothing to plot (rows <= 0 from metrics_dat, whose err
 * says why a file that is there cannot be read), into err. */
static int no_metrics(const char *dir, int rows, int lines, char *err, size_t errlen) {
    char src[LAUNCH_PATH_MAX + 32];
    snprintf(src, sizeof src, "%s/metrics.jsonl", dir);
    if (rows < 0 && errno != ENOENT) return -1;
    if (rows < 0 || lines == 0)
        return launch_errf(err, errlen, "%s: no metrics yet (%s %s)", dir, src,
                           rows < 0 ? "does not exist" : "is empty");
    return launch_errf(err, errlen, "%s holds no parseable metrics: %d line%s, none with a \"step\" and a \"loss\"",
                       src, lines, lines == 1 ? "" : "s");
}

/* One panel of curves.gp: column c of metrics.dat (nrows rows hold it),
 * and the final figure v at step as a point (isnan(v): none). A headline
 * measured during training is in a few lines only: its points are marked.
 * unit: y in [0, 1] (for this panel only: 2 when another follows). */
static void panel_gp(FILE *f, const launch_panel *p, int c, int nrows, int headline, int unit, long long step,
                     double v) {
    const char *with = headline ? "linespoints pt 7" : "lines";
    fputs("set title ", f);
    gp_string(f, p->title);
    fputc('\n', f);
    if (unit) fputs("set yrange [0:1]\n", f);
    if (isnan(v))
        fprintf(f, "plot 'metrics.dat' using 1:%d with %s notitle\n", c, with);
    else if (nrows)
        fprintf(f, "plot 'metrics.dat' using 1:%d with %s notitle, '-' using 1:2 with points pt 7 ps 2 title "
                   "'final'\n%lld %.6f\ne\n", c, with, step, v);
    else
        fprintf(f, "plot '-' using 1:2 with points pt 7 ps 2 notitle\n%lld %.6f\ne\n", step, v);
    if (unit == 2) fputs("set autoscale y\n", f);
}

/* A run's panels as curves.gp in the stage, over metrics.dat: those of its
 * objective with something to draw (a metrics line holding the key; the
 * headline's also when summary.json has it), none drawn empty. has: the
 * rows holding each panel's key. 0 or -1 + err */
static int curves_gp(const char *dir, const char *pdir, const run_status *st, const int *has, char *err,
                     size_t errlen) {
    const launch_objective *o = st->obj;
    int np = launch_objective_npanels(o), draw[LAUNCH_MAX_PANELS], n = 0;
    int final = !isnan(st->fig[0]) && st->step >= 0;
    for (int k = 0; k < np; k++) {
        int headline = !strcmp(o->panels[k].key, o->figs[0]);
        draw[k] = has[k] > 0 || (headline && final);
        n += draw[k];
    }
    FILE *f = stage_open(pdir, "curves.gp", err, errlen);
    if (!f) return -1;
    fprintf(f, "%sset output 'curves.png'\nset multiplot layout %s title ", terminal,
            n <= 1 ? "1,1" : n == 2 ? "1,2" : n <= 4 ? "2,2" : n <= 6 ? "2,3" : "2,4");
    gp_string(f, dir);
    fputs("\nset xlabel 'step'\nset grid\n", f);
    for (int k = 0, left = n; k < np; k++) {
        if (!draw[k]) continue;
        int headline = !strcmp(o->panels[k].key, o->figs[0]), more = --left > 0;
        panel_gp(f, &o->panels[k], k + 2, has[k], headline, headline && o->unit_range ? 1 + more : 0, st->step,
                 headline && final ? st->fig[0] : NAN);
    }
    fputs("unset multiplot\n", f);
    return fclose(f) == 0 ? 0 : launch_errf(err, errlen, "cannot write %s/curves.gp: %s", pdir, strerror(errno));
}

static int plot_run(const char *dir, const char *pdir, char *err, size_t errlen) {
    char *dat = NULL;
    int has[LAUNCH_MAX_PANELS], lines = 0, made = 0;
    run_status st;
    launch_read_status(dir, &st); /* the spec is there (launch_plot): its objective's panels */
    if (st.damaged[0]) /* as status and results say it; nothing is written */
        return launch_errf(err, errlen, "%s/%s (the run is damaged; nothing plotted)", dir, st.damaged);
    int rows = metrics_dat(dir, st.obj, &dat, &lines, has, err, errlen);
    if (rows <= 0) { /* nothing to plot: nothing written, plots/ not made */
        free(dat);
        return no_metrics(dir, rows, lines, err, errlen);
    }
    int rc = stage_make(pdir, &made, err, errlen);
    if (rc == 0) rc = stage_write(pdir, "metrics.dat", dat, err, errlen);
    free(dat);
    if (rc == 0) rc = curves_gp(dir, pdir, &st, has, err, errlen);
    if (stage_finish(pdir, "curves.gp", rc, made, err, errlen)) return -1;
    return check_png(pdir, "curves.png", err, errlen);
}

/* What a sweep's points are plotted by against each varied key: one
 * measure per family among them (launch_objective), its headline, or the
 * final loss when none of the family's points has it */
typedef struct {
    int family;       /* launch_family_index */
    int headline;     /* 1: the headline; 0: final loss */
    const char *what; /* in words, for titles and axes */
    char png[48];     /* PNG_vs_KEY.png */
} sweep_measure;

/* rows' measures (at most one per objective row); how many */
static int sweep_measures(const result_row *rows, int n, sweep_measure *m) {
    int nm = 0;
    const launch_objective *o;
    for (int i = 0; (o = launch_objective_at(i)); i++) {
        if (launch_family_index(o) != i) continue; /* the family's first row speaks for it */
        int any = 0, head = 0;
        for (int r = 0; r < n; r++)
            if (launch_family_index(rows[r].st.obj) == i) any = 1, head |= !isnan(rows[r].st.fig[0]);
        if (any) m[nm++] = (sweep_measure){.family = i, .headline = head, .what = head ? o->what : "final loss"};
    }
    for (int k = 0; k < nm; k++) { /* loss_vs_KEY alone; loss_FAMILY_vs_KEY beside another family's */
        const launch_objective *f = launch_objective_at(m[k].family);
        if (m[k].headline) snprintf(m[k].png, sizeof m[k].png, "%s", f->png);
        else snprintf(m[k].png, sizeof m[k].png, nm > 1 ? "loss_%s" : "loss", f->family);
    }
    return nm;
}

/* Point i's measure m, NAN when it is not drawn (unfinished, or of another family) */
static double by_key_y(const result_row *r, const sweep_measure *m) {
    if (launch_family_index(r->st.obj) != m->family) return NAN;
    return m->headline ? r->st.fig[0] : r->st.final_loss;
}

/* cat[i]: drawn row i's category for key k, one per distinct value in
 * first-seen order (-1: row i not drawn); how many. Once per plot: a
 * sweep may hold 10000 points. */
static int by_key_categories(const result_row *rows, int n, int k, const sweep_measure *m, int *cat) {
    int ncat = 0;
    for (int i = 0; i < n; i++) {
        cat[i] = isnan(by_key_y(&rows[i], m)) ? -1 : ncat;
        for (int p = 0; p < i && cat[i] == ncat; p++)
            if (cat[p] >= 0 && !strcmp(rows[p].values[k], rows[i].values[k])) cat[i] = cat[p];
        ncat += cat[i] == ncat;
    }
    return ncat;
}

/* by_key_K.dat: measure m of every point of its family against key k: the
 * value and the measure, or (text values: cat, by_key_categories) the
 * value's category and the measure, its label going in the script
 * (by_key_xtics); the points it holds */
static int by_key_dat(FILE *d, const result_row *rows, int n, int k, const sweep_measure *m, const int *cat) {
    int pts = 0;
    for (int i = 0; i < n; i++) {
        double y = by_key_y(&rows[i], m);
        if (isnan(y)) continue;
        if (!cat) fprintf(d, "%s %.9g\n", rows[i].values[k], y);
        else fprintf(d, "%d %.9g\n", cat[i], y);
        pts++;
    }
    return pts;
}

/* The x axis of the ncat categories cat of key k: a tick at each, labelled
 * by its value (gp_string), as set xtics (...) */
static void by_key_xtics(FILE *f, const result_row *rows, int n, int k, const int *cat, int ncat) {
    fprintf(f, "set xrange [-0.5:%d.5]\nset xtics (", ncat - 1);
    for (int i = 0, next = 0; i < n; i++) {
        if (cat[i] != next) continue; /* not drawn, or its value's tick is made */
        fputs(next ? ", " : "", f);
        gp_string(f, rows[i].values[k]);
        fprintf(f, " %d", next++);
    }
    fputs(")\n", f);
}

/* sweep.gp in the stage: every point's loss curve, then each measure
 * against each varied key (by_key_K.dat beside it); 0 or -1 + err */
static int sweep_gp(const char *pdir, char **keys, int nkeys, const result_row *rows, int n, const sweep_measure *m,
                    int nm, char *err, size_t errlen) {
    FILE *f = stage_open(pdir, "sweep.gp", err, errlen);
    int *cat = malloc(sizeof *cat * (size_t)(n ? n : 1)); /* by_key_categories */
    if (!cat) launch_oom();
    if (!f) return free(cat), -1;
    fprintf(f, "%sset grid\nset output 'loss.png'\nset title 'loss of every point'\nset xlabel 'step'\n"
               "set ylabel 'loss'\nset key outside right\nplot ",
            terminal);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s'point-%03d.dat' using 1:2 with lines title 'point-%03d'", i ? ", \\\n     " : "",
                rows[i].point, rows[i].point);
    fputc('\n', f);
    for (int j = 0; j < nm * nkeys; j++) {
        const sweep_measure *mj = &m[j / nkeys];
        int k = j % nkeys, numeric = 1;
        char dat[80];
        for (int i = 0; i < n; i++) {
            char *end;
            strtod(rows[i].values[k], &end);
            if (*end || end == rows[i].values[k]) numeric = 0;
        }
        snprintf(dat, sizeof dat, "by_key_%d.dat", j);
        FILE *d = stage_open(pdir, dat, err, errlen);
        if (!d) return free(cat), fclose(f), -1;
        int ncat = numeric ? 0 : by_key_categories(rows, n, k, mj, cat);
        int pts = by_key_dat(d, rows, n, k, mj, numeric ? NULL : cat);
        fclose(d);
        if (!pts) continue;
        fprintf(f, "set output '%s_vs_%s.png'\nunset key\nset title '%s against %s'\nset xlabel '%s'\n"
                   "set ylabel '%s'\n", mj->png, keys[k], mj->what, keys[k], keys[k], mj->what);
        if (numeric)
            fprintf(f, "plot '%s' using 1:2 with points pt 7 ps 2\n", dat);
        else {
            by_key_xtics(f, rows, n, k, cat, ncat);
            fprintf(f, "plot '%s' using 1:2 with points pt 7 ps 2\nset xrange [*:*]\nset xtics autofreq\n", dat);
        }
    }
    free(cat);
    return fclose(f) == 0 ? 0 : launch_errf(err, errlen, "cannot write %s/sweep.gp: %s", pdir, strerror(errno));
}

/* The sweep's pictures published: loss.png and each *_vs_KEY.png there */
static int check_sweep_pngs(const char *pdir, char **keys, int nkeys, const sweep_measure *m, int nm, char *err,
                            size_t errlen) {
    int rc = check_png(pdir, "loss.png", err, errlen);
    for (int j = 0; j < nm * nkeys && !rc; j++) {
        char png[200], path[2 * LAUNCH_PATH_MAX];
        struct stat st;
        snprintf(png, sizeof png, "%s_vs_%s.png", m[j / nkeys].png, keys[j % nkeys]);
        snprintf(path, sizeof path, "%s/%s", pdir, png);
        if (stat(path, &st) == 0) rc = check_png(pdir, png, err, errlen);
    }
    return rc;
}

/* A sweep with a damaged point is not plotted (as a damaged run is not):
 * -1 + err naming the first one's file, or 0 when none is */
static int sweep_damaged(const char *dir, const result_row *rows, int n, char *err, size_t errlen) {
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++)
        if (rows[i].st.damaged[0] && bad++ == 0) first = i;
    if (!bad) return 0;
    return launch_errf(err, errlen, "%s/point-%03d/%s (%d of %d points damaged; nothing plotted)", dir,
                       rows[first].point, rows[first].st.damaged, bad, n);
}

static int plot_sweep(const char *dir, const char *pdir, char *err, size_t errlen) {
    char **keys;
    int nkeys;
    result_row *rows;
    int n = launch_read_sweep(dir, &keys, &nkeys, &rows, err, errlen);
    if (n < 0) return -1;
    if (sweep_damaged(dir, rows, n, err, errlen)) return launch_free_results(keys, nkeys, rows, n), -1;
    int rc, have = 0, made = 0;
    char **dats = calloc((size_t)n, sizeof *dats);
    if (!dats) launch_oom();
    int bad = 0; /* read first: nothing is written when no point has metrics, or one's cannot be read */
    for (int i = 0; i < n; i++) {
        char rd[LAUNCH_PATH_MAX + 32];
        int lines, r;
        snprintf(rd, sizeof rd, "%s/point-%03d", dir, rows[i].point);
        r = metrics_dat(rd, rows[i].st.obj, &dats[i], &lines, NULL, bad ? NULL : err, bad ? 0 : errlen);
        if (r > 0) have++;
        if (r < 0 && errno != ENOENT) bad = 1;
    }
    sweep_measure m[8];
    int nm = sweep_measures(rows, n, m);
    int staged = have > 0 && !bad; /* stage_finish ends what stage_make began */
    rc = staged ? stage_make(pdir, &made, err, errlen)
         : bad  ? -1
                : launch_errf(err, errlen, "%s: no point has metrics yet", dir);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "point-%03d.dat", rows[i].point);
        if (rc == 0) rc = stage_write(pdir, name, dats[i], err, errlen);
        free(dats[i]);
    }
    free(dats);
    if (rc == 0) rc = sweep_gp(pdir, keys, nkeys, rows, n, m, nm, err, errlen);
    if (staged) rc = stage_finish(pdir, "sweep.gp", rc, made, err, errlen);
    if (rc == 0) rc = check_sweep_pngs(pdir, keys, nkeys, m, nm, err, errlen);
    launch_free_results(keys, nkeys, rows, n);
    return rc ? -1 : 0;
}

int launch_plot(const char *dir, char *err, size_t errlen) {
    char pdir[LAUNCH_PATH_MAX + 16], path[LAUNCH_PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/points.csv", dir);
    int sweep = lstat(path, &st) == 0; /* a points.csv that is there, readable or not */
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    if (!sweep && stat(path, &st) != 0)
        return snprintf(err, errlen, "%s: neither a run directory nor a sweep directory", dir), -1;
    snprintf(pdir, sizeof pdir, "%s/plots", dir); /* made once there is something to plot */
    return sweep ? plot_sweep(dir, pdir, err, errlen) : plot_run(dir, pdir, err, errlen);
}
