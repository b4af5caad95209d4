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

/* 'text' for gnuplot: ' doubles, control characters become spaces */
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('\'', f);
}

/* Each objective's collapse watch, its first per-step metric (objective.h):
 * I-JEPA's, LeJEPA's, the world model's; the panel's title */
static const char *const watch_keys[][2] = {
    {"target_std", "target embedding std (collapse watch)"},
    {"emb_std", "embedding std (collapse watch)"},
    {"sigreg", "SIGReg statistic (collapse watch)"},
};
enum { NWATCH = sizeof watch_keys / sizeof watch_keys[0] };

/* metrics.jsonl -> "step loss lr watch probe_acc" rows (NaN where a line
 * lacks the key); watch is the first of watch_keys a line has, *watch its
 * index (-1: none). Returns rows written, *nprobe the rows with a probe. */
static int metrics_dat(const char *run_dir, const char *out_path, int *nprobe, int *watch) {
    char path[LAUNCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    char *m = launch_read_file(path, NULL);
    FILE *f = fopen(out_path, "w");
    int rows = 0;
    if (!f) {
        free(m);
        return -1;
    }
    fputs("# step loss lr watch probe_acc\n", f);
    if (nprobe) *nprobe = 0;
    int w = -1;
    for (char *save = NULL, *line = m ? strtok_r(m, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        double step, loss, lr = NAN, std = NAN, acc = NAN;
        if (launch_json_number(line, "step", &step) || launch_json_number(line, "loss", &loss)) continue;
        launch_json_number(line, "lr", &lr);
        for (int k = 0; w < 0 && k < NWATCH; k++)
            if (launch_json_number(line, watch_keys[k][0], &std) == 0) w = k;
        if (w >= 0) launch_json_number(line, watch_keys[w][0], &std);
        if (launch_json_number(line, "probe_acc", &acc) == 0 && nprobe) ++*nprobe;
        fprintf(f, "%.0f %.9g %.9g %.9g %.9g\n", step, loss, lr, std, acc);
        rows++;
    }
    fclose(f);
    free(m);
    if (watch) *watch = w;
    return rows;
}

static const char *gnuplot_bin(void) {
    const char *g = getenv("JEPA_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

/* gnuplot SCRIPT in dir; 0 when it exits 0 */
static int run_gnuplot(const char *dir, const char *script, char *err, size_t errlen) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(126);
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
        snprintf(log, sizeof log, "%s/gnuplot.log", dir);
        FILE *lf = fopen(log, "r");
        while (lf && fgets(line, sizeof line, lf)) /* gnuplot's last words: the error */
            if (line[strspn(line, " \t\r\n")]) snprintf(last, sizeof last, "%s", line + strspn(line, " \t"));
        if (lf) fclose(lf);
        last[strcspn(last, "\r\n")] = 0;
        return snprintf(err, errlen, "gnuplot failed on %s/%s%s%s", dir, script, *last ? ": " : "", last), -1;
    }
    return 0;
}

/* gnuplot draws into plots/.new/ (STAGE); the pictures move into plots/
 * only when it succeeded, so a failed plot never replaces a good one with
 * a partial file. Stage made empty; 0 or -1 + err. */
#define STAGE ".new"
static int stage_make(const char *pdir, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    snprintf(path, sizeof path, "%s/" STAGE, pdir);
    DIR *d = opendir(path);
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

/* Moves (ok) or drops (!ok) what gnuplot drew, then removes the stage. */
static void stage_publish(const char *pdir, int ok) {
    char path[2 * LAUNCH_PATH_MAX];
    snprintf(path, sizeof path, "%s/" STAGE, pdir);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char from[3 * LAUNCH_PATH_MAX], to[3 * LAUNCH_PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", path, e->d_name);
        snprintf(to, sizeof to, "%s/%s", pdir, e->d_name);
        if (!ok || rename(from, to) != 0) unlink(from);
    }
    if (d) closedir(d);
    rmdir(path);
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

static int plot_run(const char *dir, const char *pdir, char *err, size_t errlen) {
    char path[2 * LAUNCH_PATH_MAX];
    snprintf(path, sizeof path, "%s/metrics.dat", pdir);
    int nprobe = 0, watch = -1, rows = metrics_dat(dir, path, &nprobe, &watch);
    if (rows <= 0) return snprintf(err, errlen, "%s: no metrics yet (metrics.jsonl)", dir), -1;
    run_status st;
    launch_read_status(dir, &st);
    snprintf(path, sizeof path, "%s/curves.gp", pdir);
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno)), -1;
    fprintf(f, "%sset output '" STAGE "/curves.png'\nset multiplot layout 2,2 title ", terminal);
    gp_string(f, dir);
    fputs("\nset xlabel 'step'\nset grid\n"
          "set title 'loss'\nplot 'metrics.dat' using 1:2 with lines notitle\n"
          "set title 'learning rate'\nplot 'metrics.dat' using 1:3 with lines notitle\n",
          f);
    if (watch >= 0)
        fprintf(f, "set title '%s'\nplot 'metrics.dat' using 1:4 with lines notitle\n", watch_keys[watch][1]);
    else
        fputs("set title 'collapse watch'\nset label 1 'no collapse metric recorded' at graph 0.5,0.5 center\n"
              "unset xtics\nunset ytics\nplot [0:1] [0:1] 2 notitle\nunset label 1\nset xtics\nset ytics\n",
              f);
    fputs("set title 'linear probe accuracy'\n", f);
    /* probes during training (metrics lines with probe_acc), then the final one */
    int final = !isnan(st.probe_acc) && st.probe_acc >= 0 && st.step >= 0;
    if (nprobe && final)
        fprintf(f, "set yrange [0:1]\nplot 'metrics.dat' using 1:5 with linespoints pt 7 notitle, "
                   "'-' using 1:2 with points pt 7 ps 2 title 'final'\n%lld %.6f\ne\n",
                st.step, st.probe_acc);
    else if (nprobe)
        fputs("set yrange [0:1]\nplot 'metrics.dat' using 1:5 with linespoints pt 7 notitle\n", f);
    else if (final)
        fprintf(f, "set yrange [0:1]\nplot '-' using 1:2 with points pt 7 ps 2 notitle\n%lld %.6f\ne\n", st.step,
                st.probe_acc);
    else
        fputs("set label 1 'no probe accuracy recorded' at graph 0.5,0.5 center\n"
              "unset xtics\nunset ytics\nplot [0:1] [0:1] 2 notitle\n",
              f);
    fputs("unset multiplot\n", f);
    fclose(f);
    if (stage_make(pdir, err, errlen)) return -1;
    int g = run_gnuplot(pdir, "curves.gp", err, errlen);
    stage_publish(pdir, g == 0);
    if (g) return -1;
    return check_png(pdir, "curves.png", err, errlen);
}

static int plot_sweep(const char *dir, const char *pdir, char *err, size_t errlen) {
    char **keys;
    int nkeys;
    result_row *rows;
    int n = launch_read_sweep(dir, &keys, &nkeys, &rows, err, errlen);
    if (n < 0) return -1;
    char path[2 * LAUNCH_PATH_MAX];
    int rc = 0, have = 0, any_probe = 0;
    for (int i = 0; i < n; i++) {
        char rd[LAUNCH_PATH_MAX + 32];
        snprintf(rd, sizeof rd, "%s/point-%03d", dir, rows[i].point);
        snprintf(path, sizeof path, "%s/point-%03d.dat", pdir, rows[i].point);
        if (metrics_dat(rd, path, NULL, NULL) > 0) have++;
        if (!isnan(rows[i].st.probe_acc) && rows[i].st.probe_acc >= 0) any_probe = 1;
    }
    if (!have) {
        launch_free_results(keys, nkeys, rows, n);
        return snprintf(err, errlen, "%s: no point has metrics yet", dir), -1;
    }
    snprintf(path, sizeof path, "%s/sweep.gp", pdir);
    FILE *f = fopen(path, "w");
    if (!f) {
        launch_free_results(keys, nkeys, rows, n);
        return snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno)), -1;
    }
    fprintf(f, "%sset grid\nset output '" STAGE "/loss.png'\nset title 'loss of every point'\nset xlabel 'step'\n"
               "set ylabel 'loss'\nset key outside right\nplot ",
            terminal);
    for (int i = 0, first = 1; i < n; i++) {
        char t[64];
        snprintf(t, sizeof t, "point-%03d", rows[i].point);
        fprintf(f, "%s'%s.dat' using 1:2 with lines title '%s'", first ? "" : ", \\\n     ", t, t);
        first = 0;
    }
    fputc('\n', f);
    /* the final measure against each varied key, one file per key */
    for (int k = 0; k < nkeys; k++) {
        char dat[80], png[200];
        snprintf(dat, sizeof dat, "by_key_%d.dat", k);
        snprintf(path, sizeof path, "%s/%s", pdir, dat);
        FILE *d = fopen(path, "w");
        int numeric = 1, pts = 0;
        for (int i = 0; i < n; i++) {
            char *end;
            strtod(rows[i].values[k], &end);
            if (*end || end == rows[i].values[k]) numeric = 0;
        }
        for (int i = 0; d && i < n; i++) {
            double y = any_probe ? rows[i].st.probe_acc : rows[i].st.final_loss;
            if (isnan(y) || (any_probe && y < 0)) continue;
            if (numeric) {
                fprintf(d, "%s %.9g\n", rows[i].values[k], y);
            } else { /* a label: quotes and control characters dropped */
                fputc('"', d);
                for (const char *c = rows[i].values[k]; *c; c++)
                    if (*c != '"' && (unsigned char)*c >= 0x20) fputc(*c, d);
                fprintf(d, "\" %.9g\n", y);
            }
            pts++;
        }
        if (d) fclose(d);
        if (!pts) continue;
        snprintf(png, sizeof png, "%s_vs_%s.png", any_probe ? "probe" : "loss", keys[k]);
        fprintf(f, "set output '" STAGE "/%s'\nunset key\nset title '%s against %s'\nset xlabel '%s'\nset ylabel '%s'\n", png,
                any_probe ? "probe accuracy" : "final loss", keys[k], keys[k], any_probe ? "probe accuracy" : "final loss");
        if (numeric)
            fprintf(f, "plot '%s' using 1:2 with points pt 7 ps 2\n", dat);
        else
            fprintf(f, "set xrange [-0.5:*]\nplot '%s' using 0:2:xtic(1) with points pt 7 ps 2\nset xrange [*:*]\n", dat);
    }
    fclose(f);
    rc = stage_make(pdir, err, errlen);
    if (!rc) {
        rc = run_gnuplot(pdir, "sweep.gp", err, errlen);
        stage_publish(pdir, rc == 0);
    }
    if (!rc) rc = check_png(pdir, "loss.png", err, errlen);
    for (int k = 0; k < nkeys && !rc; k++) {
        char png[200];
        snprintf(png, sizeof png, "%s_vs_%s.png", any_probe ? "probe" : "loss", keys[k]);
        snprintf(path, sizeof path, "%s/%s", pdir, png);
        struct stat st;
        if (stat(path, &st) == 0) rc = check_png(pdir, png, err, errlen);
    }
    launch_free_results(keys, nkeys, rows, n);
    return rc;
}

int launch_plot(const char *dir, char *err, size_t errlen) {
    char pdir[LAUNCH_PATH_MAX + 16], path[LAUNCH_PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "%s/points.csv", dir);
    int sweep = stat(path, &st) == 0;
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    if (!sweep && stat(path, &st) != 0)
        return snprintf(err, errlen, "%s: neither a run directory nor a sweep directory", dir), -1;
    snprintf(pdir, sizeof pdir, "%s/plots", dir);
    if (launch_mkdirs(pdir, err, errlen)) return -1;
    return sweep ? plot_sweep(dir, pdir, err, errlen) : plot_run(dir, pdir, err, errlen);
}
