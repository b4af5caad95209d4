/* results.c - what a run is doing and how it ended, read from the files it
 * writes (state, metrics.jsonl, checkpoints/, summary.json), and a sweep's
 * table of points, best first, as aligned text or CSV, with a caveat when
 * its final losses measure different things. */
#define _GNU_SOURCE /* memrchr */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "run_lock.h"

/* Marks st damaged: st->damaged "NAME: why" (the first damage found is
 * the one kept; launch_read_status then gives the state and drops the
 * figures). Returns 0. */
static int damage(run_status *st, const char *name, const char *why) {
    if (!st->damaged[0]) snprintf(st->damaged, sizeof st->damaged, "%s: %s", name, why);
    return 0;
}

/* r's range in words: "at most 1", "a whole number from 0 to 9.0072e+15" */
static const char *range_words(const launch_range *r, char *out, size_t n) {
    const char *whole = r->whole ? "a whole number " : "";
    if (isinf(r->lo)) snprintf(out, n, "%sat most %g", whole, r->hi);
    else if (isinf(r->hi)) snprintf(out, n, "%sat least %g", whole, r->lo);
    else snprintf(out, n, "%sfrom %g to %g", whole, r->lo, r->hi);
    return out;
}

/* key's number in text (the run's file name, or its line) as the reports
 * may use it: 0 with *v; 1 when there is none (or no number); -1 when it
 * cannot be trusted, st then damaged naming the file and key: given twice,
 * beyond a double's range, or outside the key's (launch_figure_range).
 * Every number status, results and plot take from a run passes here. */
static int checked_number(const char *text, const char *name, const char *key, double *v, run_status *st) {
    char why[128], words[64];
    double x = 0;
    int rc = launch_json_number(text, key, &x);
    const launch_range *r = launch_figure_range(key);
    if (rc == LAUNCH_JSON_NONE) return 1;
    if (rc == LAUNCH_JSON_TWICE) {
        snprintf(why, sizeof why, "%s given twice", key);
    } else if (rc == LAUNCH_JSON_RANGE) {
        snprintf(why, sizeof why, "%s: a number beyond a double's range", key);
    } else if (r->whole ? x != floor(x) || x < r->lo || x > r->hi : x < r->lo || x > r->hi) { /* NaN: not measured */
        snprintf(why, sizeof why, "%s %.6g out of range (%s)", key, x, range_words(r, words, sizeof words));
    } else {
        *v = x;
        return 0;
    }
    return damage(st, name, why) - 1;
}

/* None of st's figures are reported */
static void no_figures(run_status *st) {
    st->final_loss = NAN;
    for (int k = 0; k < LAUNCH_MAX_FIGS; k++) st->fig[k] = NAN;
    st->param_hash[0] = 0;
}

/* A damaged run's state says why, and none of its figures are reported
 * (nor where a resume would start) */
static void settle_damage(run_status *st) {
    if (!st->damaged[0]) return;
    snprintf(st->state, sizeof st->state, "damaged: %s", st->damaged);
    no_figures(st);
    st->resume_step = LAUNCH_RESUME_UNSAID;
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

/* state: "pending" when there is none (launch_unstated refines it once
 * the other files are read); 1 when there is a state file, else 0 */
static int read_state(const char *run_dir, run_status *st) {
    char *state = NULL;
    snprintf(st->state, sizeof st->state, "pending");
    if (run_file(run_dir, "state", LAUNCH_SMALL_MAX, &state, st) || !state) return 0;
    snprintf(st->state, sizeof st->state, "%s", state);
    st->state[strcspn(st->state, "\n")] = 0;
    free(state);
    /* a local launcher that died leaves "running pid=N mpirun=M" behind
     * (N the launcher; before mpirun= was written, N was mpirun's pid) */
    int pid;
    if (sscanf(st->state, "running pid=%d", &pid) == 1 && kill(pid, 0) != 0 && errno == ESRCH)
        snprintf(st->state, sizeof st->state, "stale (%s pid %d is gone)",
                 strstr(st->state, " mpirun=") ? "launcher" : "job", pid);
    return 1;
}

/* The newest step-N.ckpt in run_dir/checkpoints, -1 when none: the one a
 * resume starts from (the trainer falls back past damaged ones itself) */
static long long newest_checkpoint(const char *run_dir) {
    char path[LAUNCH_PATH_MAX + 32];
    long long best = -1;
    snprintf(path, sizeof path, "%s/checkpoints", run_dir);
    DIR *d = opendir(path);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name; /* step-<digits>.ckpt only: not temp files or *.corrupt */
        size_t digits = strncmp(n, "step-", 5) ? 0 : strspn(n + 5, "0123456789");
        if (digits && digits < 18 && !strcmp(n + 5 + digits, ".ckpt") && atoll(n + 5) > best) best = atoll(n + 5);
    }
    closedir(d);
    return best;
}

/* A run with no state file and no summary.json was started by jepa-train
 * or mpirun alone (the launcher writes state before its job starts). The
 * trainer records no failure (its error goes to stderr only) and no pid, so
 * what it left is all there is to say: metrics.jsonl (opened, empty, once
 * setup passed: a corrupt shard met in the first step leaves just that) or
 * a checkpoint make it unfinished (stopped, died, or still running), none
 * of them pending. */
static void unstated(const char *run_dir, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32];
    struct stat sb;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    long long ck = newest_checkpoint(run_dir);
    if (stat(path, &sb) != 0 && ck < 0) return; /* pending */
    /* the command to paste names the run as given (./ before a '-', which
     * would read as an option); one too long for the state says RUN_DIR */
    char dir[80]; /* what the state (512 bytes) holds beside the rest */
    if (strlen(run_dir) + 2 >= sizeof dir) snprintf(dir, sizeof dir, "RUN_DIR");
    else snprintf(dir, sizeof dir, "%s%s", run_dir[0] == '-' ? "./" : "", run_dir);
    /* the step logged is on the line already; the checkpoint's is where a resume starts */
    if (ck >= 0)
        snprintf(st->state, sizeof st->state, "unfinished (checkpoint at step %lld; resume with jepa-launch resume "
                 "%s or --set resume=auto)", ck, dir);
    else
        snprintf(st->state, sizeof st->state, "unfinished (%sno checkpoint: jepa-launch resume %s starts it over)",
                 st->step < 0 ? "no step logged, " : "", dir);
}

/* A stopped, failed or stale run (its launcher gone) that did not finish
 * (no summary.json: a resume would refuse a finished one) resumes from
 * its newest checkpoint, which may be far behind the step it logged last:
 * st->resume_step says which (-1: none, it starts over). An unfinished
 * run's state says it already. */
void launch_status_resume(const char *run_dir, run_status *st) {
    static const char *const resumable[] = {"stopped", "failed", "stale ("};
    char path[LAUNCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    for (size_t i = 0; i < sizeof resumable / sizeof *resumable; i++)
        if (!strncmp(st->state, resumable[i], strlen(resumable[i])) && access(path, F_OK) != 0)
            st->resume_step = newest_checkpoint(run_dir);
    char held[LAUNCH_PATH_MAX + 160]; /* a launcher killed alone leaves its job training: no resume yet */
    if (st->resume_step != LAUNCH_RESUME_UNSAID && run_lock_probe(run_dir, held, sizeof held))
        st->resume_step = LAUNCH_RESUME_BUSY;
}

/* The figures summary text s must hold for st->obj, in the order they
 * are checked (final_loss, the objective's required ones, steps), into
 * need; how many. probe: the spec's eval.probe. */
static int summary_needs(const run_status *st, int probe, const char **need) {
    const launch_objective *o = st->obj;
    int n = 0;
    need[n++] = "final_loss";
    for (int k = 0; k < o->nrequired && (probe || !o->required_with_probe); k++) need[n++] = o->figs[k];
    need[n++] = "steps";
    return n;
}

/* The objective summary.json names, for a run whose spec does not say
 * (st->obj NULL); ijepa's when neither does */
static void summary_objective(const char *s, run_status *st) {
    char name[16] = "";
    int on = launch_json_string(s, "objective", name, sizeof name);
    if (on == LAUNCH_JSON_TWICE) damage(st, "summary.json", "objective given twice");
    if (!st->obj && on == 0) st->obj = launch_objective_find(name);
    st->obj_known = st->obj != NULL;
    if (!st->obj) st->obj = launch_objective_at(0);
}

/* summary.json's text s, checked, into st: final_loss, steps, the
 * objective's figures (NAN: not measured), param_hash, and *planned, the
 * planned steps of a run a train.minutes cap ended (else NAN). 0, or -1
 * with st damaged: cut short, a required figure missing, a number given
 * twice or out of range. probe: the spec's eval.probe. */
static int summary_figures(const char *s, int probe, run_status *st, double *planned) {
    char reason[16] = "", hash[32] = "", why[64];
    const char *need[LAUNCH_MAX_FIGS + 2];
    double v, steps = 0;
    int nneed = summary_needs(st, probe, need);
    *planned = NAN;
    /* written whole (temp file, rename), so damaged since; a summary cut
     * before its figures would rank the sweep wrongly */
    if (launch_json_object(s)) return damage(st, "summary.json", "not a whole JSON object (cut short?)") - 1;
    for (int k = 0; k < nneed; k++) {
        int rc = checked_number(s, "summary.json", need[k], &v, st);
        if (rc == 1) snprintf(why, sizeof why, "no %s", need[k]);
        if (rc) return rc < 0 ? -1 : damage(st, "summary.json", why) - 1;
    }
    for (int k = 0; k < st->obj->nfigs; k++) /* each is shown (the first ranks), required or not */
        if (checked_number(s, "summary.json", st->obj->figs[k], &st->fig[k], st) < 0) return -1;
    int stop = launch_json_string(s, "stop_reason", reason, sizeof reason);
    if (stop == LAUNCH_JSON_TWICE) return damage(st, "summary.json", "stop_reason given twice") - 1;
    if (stop == 0 && !strcmp(reason, "budget") && checked_number(s, "summary.json", "planned_steps", planned, st) < 0)
        return -1;
    checked_number(s, "summary.json", "final_loss", &st->final_loss, st);
    checked_number(s, "summary.json", "steps", &steps, st);
    st->step = (long long)steps;
    for (int k = 0; k < st->obj->nfigs; k++)
        if (st->obj->none_below_zero && st->fig[k] < 0) st->fig[k] = NAN; /* probe_acc -1: no probe */
    if (launch_json_string(s, "param_hash", hash, sizeof hash) == 0) sscanf(hash, "%31[0-9a-f]", st->param_hash);
    return 0;
}

/* summary.json's figures; its mtime against the resolved spec's (sb). The
 * objective (st->obj) is the spec's, else summary.json's, else ijepa's;
 * probe: the spec's eval.probe. */
static void read_summary(const char *run_dir, const struct stat *sb, int probe, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], *s = NULL;
    double planned;
    if (run_file(run_dir, "summary.json", LAUNCH_SMALL_MAX, &s, st) || !s) return;
    summary_objective(s, st);
    if (summary_figures(s, probe, st, &planned) || st->damaged[0]) {
        free(s);
        return;
    }
    /* finished: the trainer alone (no launcher) leaves no state file, and
     * a job whose launcher died (kill -9) finishes with "running" or
     * "stale" there */
    if (!strcmp(st->state, "pending") || !strncmp(st->state, "running ", 8) || !strncmp(st->state, "stale (", 7))
        snprintf(st->state, sizeof st->state, "done");
    /* a train.minutes cap ended it before its planned steps: its figures
     * are not a finished schedule's, and the table says so */
    if (!isnan(planned))
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
        no_figures(st);
    }
}

/* launch_read_status with run_dir's resolved spec already loaded (NULL:
 * it does not load) */
static int read_status(const char *run_dir, const jepa_spec *spec, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], line[LAUNCH_METRICS_LINE + 1];
    struct stat sb;
    memset(st, 0, sizeof *st);
    st->step = -1;
    st->resume_step = LAUNCH_RESUME_UNSAID;
    st->loss = NAN;
    no_figures(st);
    st->obj = launch_objective_at(0); /* never NULL, even for no run (obj_known 0) */
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", run_dir);
    if (stat(path, &sb) != 0) return -1;
    st->obj = spec ? launch_objective_find(spec->objective) : NULL;
    st->obj_known = st->obj != NULL;
    int stated = read_state(run_dir, st);
    if (metrics_last(run_dir, line, sizeof line, st) == 1) {
        double v;
        if (checked_number(line, "metrics.jsonl", "step", &v, st) == 0) st->step = (long long)v;
        if (checked_number(line, "metrics.jsonl", "loss", &v, st) == 0) st->loss = v;
    }
    read_summary(run_dir, &sb, spec ? spec->eval.probe : 1, st);
    if (!stated && !strcmp(st->state, "pending")) unstated(run_dir, st);
    launch_status_resume(run_dir, st);
    if (!st->obj) st->obj = launch_objective_at(0);
    settle_damage(st);
    return 0;
}

int launch_read_status(const char *run_dir, run_status *st) {
    char path[LAUNCH_PATH_MAX + 32], e[SPEC_ERR_MAX];
    jepa_spec s;
    spec_defaults(&s);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", run_dir);
    int ok = spec_load_file(&s, path, e, sizeof e) == 0;
    if (read_status(run_dir, ok ? &s : NULL, st)) return -1;
    if (!ok) { /* there, but it does not load: damaged, as a sweep's point is (read_point) */
        size_t pl = strlen(path); /* the loader's message, without the path it starts with */
        const char *m = !strncmp(e, path, pl) && !strncmp(e + pl, ": ", 2) ? e + pl + 2 : e;
        if (!st->damaged[0]) snprintf(st->damaged, sizeof st->damaged, "spec.resolved.yaml: %.130s", m);
        settle_damage(st);
    }
    return 0;
}

static int finished(const result_row *r) { return !isnan(r->st.final_loss); }

/* A finished row's place within its family: rows with the headline
 * first, by it (best first), then the others by final loss */
static int tier(const result_row *r) { return isnan(r->st.fig[0]); }
static double rank_value(const result_row *r) {
    if (tier(r)) return r->st.final_loss;
    return r->st.obj->higher_better ? -r->st.fig[0] : r->st.fig[0];
}

static int cmp_rows(const void *pa, const void *pb) {
    const result_row *a = pa, *b = pb;
    if (finished(a) != finished(b)) return finished(b) - finished(a);
    if (finished(a)) {
        int fa = launch_family_index(a->st.obj), fb = launch_family_index(b->st.obj);
        if (fa != fb) return fa - fb;
        if (tier(a) != tier(b)) return tier(a) - tier(b);
        double x = rank_value(a), y = rank_value(b);
        if (x < y) return -1;
        if (x > y) return 1;
    }
    return a->point - b->point;
}

void launch_sort_results(result_row *rows, int n) { qsort(rows, (size_t)n, sizeof *rows, cmp_rows); }

/* Keys (launch/spec_keys.c) whose values change the formula of the loss a
 * run logs as final_loss, not only how well it trains: objective (another
 * loss altogether), loss.type and loss.beta (l2 against smooth_l1 and its
 * quadratic-to-linear switch), ijepa.global_weight and ijepa.global_loss
 * (add a weighted term, and which),
 * lejepa.global_views and lejepa.local_views (the views the invariance
 * term averages, and the centre they are pulled to), sigreg.weight and
 * world.rollout_weight (the mix of the terms), sigreg.t_max (the range the
 * SIGReg statistic integrates), world.rollout (the rollout steps its term
 * sums), train.log_every (final_loss is the mean over the last log
 * interval: how many steps it averages, and which). Left out: keys that change the data or the task but not the
 * formula (masks, crops, augmentation, lr), and sigreg.directions and
 * sigreg.knots, which change the precision of the same statistic. */
static const char *const loss_keys[] = {"objective", "loss.type", "loss.beta", "ijepa.global_weight",
                                        "ijepa.global_loss", "lejepa.global_views",
                                        "lejepa.local_views", "sigreg.weight", "sigreg.t_max",
                                        "world.rollout", "world.rollout_weight", "train.log_every"};

/* Whether key is one of loss_keys */
static int loss_key(const char *key) {
    for (size_t i = 0; i < sizeof loss_keys / sizeof *loss_keys; i++)
        if (!strcmp(key, loss_keys[i])) return 1;
    return 0;
}

/* Whether rows ranked by final loss (launch_sort_results: finished, no
 * headline, each family apart) hold more than one value of key k; each is
 * compared with its family's first such row. The headline it would rank
 * by into *head. */
static int loss_ranked_differ(const result_row *rows, int n, int k, const char **head) {
    int nobj = 0;
    while (launch_objective_at(nobj)) nobj++;
    int first[nobj]; /* by family (launch_family_index: a row of the objective table) */
    for (int f = 0; f < nobj; f++) first[f] = -1;
    for (int i = 0; i < n; i++) {
        if (!finished(&rows[i]) || !tier(&rows[i])) continue;
        int f = launch_family_index(rows[i].st.obj);
        if (first[f] < 0) first[f] = i;
        else if (strcmp(rows[first[f]].values[k], rows[i].values[k])) return *head = rows[i].st.obj->figs[0], 1;
    }
    return 0;
}

int launch_loss_caveat(const char *const *keys, int nkeys, const result_row *rows, int n, char *out, size_t outlen) {
    char list[256] = "";
    const char *head = NULL; /* the headline the family would rank by */
    for (int k = 0; k < nkeys; k++) {
        size_t len = strlen(list);
        if (loss_key(keys[k]) && loss_ranked_differ(rows, n, k, &head))
            snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", keys[k]);
    }
    if (!head) return 0;
    snprintf(out, outlen, "points ranked by final_loss differ in %s, which changes what the loss measures: their "
             "losses are not comparable (eval.probe: true ranks them by %s)", list, head);
    return 1;
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

/* The figure columns of rows: every figure of each objective known among
 * them (a point whose run is gone has none: its ijepa is no column), in
 * table order, once (ijepa's when no row's is known); how many */
static int figure_columns(const result_row *rows, int n, const char **col) {
    int nc = 0, known = 0;
    const launch_objective *o;
    for (int r = 0; r < n; r++) known |= rows[r].st.obj_known;
    for (int i = 0; (o = launch_objective_at(i)); i++) {
        int used = i == 0 && !known;
        for (int r = 0; r < n && !used; r++) used = rows[r].st.obj_known && rows[r].st.obj == o;
        for (int k = 0; used && k < o->nfigs; k++) {
            int have = 0;
            for (int c = 0; c < nc; c++) have |= !strcmp(col[c], o->figs[k]);
            if (!have) col[nc++] = o->figs[k];
        }
    }
    return nc;
}

/* row r's value of figure key, NAN when its objective has no such figure */
static double figure(const result_row *r, const char *key) {
    for (int k = 0; k < r->st.obj->nfigs; k++)
        if (!strcmp(r->st.obj->figs[k], key)) return r->st.fig[k];
    return NAN;
}

static int col_width(const char *key) { return strlen(key) > 9 ? (int)strlen(key) : 9; }

/* Row r's label: a run's name, or a sweep point's directory (point-NNN,
 * as status, plot and the sweep's own lines name it: one the user can cd
 * into and join with their output) */
static const char *row_label(const result_row *r, char *out, size_t n) {
    if (r->name) return r->name;
    snprintf(out, n, "point-%03d", r->point);
    return out;
}

void launch_print_results(FILE *f, const char *const *keys, int nkeys, const result_row *rows, int n, int csv) {
    int w[2 * SWEEP_MAX_KEYS]; /* grid and random keys */
    const char *col[LAUNCH_MAX_FIGS * 8];
    char lb[32];
    int ncol = figure_columns(rows, n, col), named = n > 0 && rows[0].name, w0 = 6;
    const char *label = named ? "run" : "point";
    for (int i = 0; i < n; i++) {
        int len = (int)strlen(row_label(&rows[i], lb, sizeof lb));
        if (len + 1 > w0) w0 = len + 1;
    }
    for (int k = 0; k < nkeys; k++) {
        w[k] = (int)strlen(keys[k]);
        for (int i = 0; i < n; i++)
            if ((int)strlen(rows[i].values[k]) > w[k]) w[k] = (int)strlen(rows[i].values[k]);
    }
    if (csv) {
        fputs(label, f);
        for (int k = 0; k < nkeys; k++) fputc(',', f), csv_field(f, keys[k]);
        fputs(",final_loss", f);
        for (int c = 0; c < ncol; c++) fprintf(f, ",%s", col[c]);
        fputs(",steps,status\n", f);
    } else {
        fprintf(f, "%-*s", w0, label);
        for (int k = 0; k < nkeys; k++) fprintf(f, "  %-*s", w[k], keys[k]);
        fprintf(f, "  %10s", "final_loss");
        for (int c = 0; c < ncol; c++) fprintf(f, "  %*s", col_width(col[c]), col[c]);
        fprintf(f, "  %8s  %s\n", "steps", "status");
    }
    for (int i = 0; i < n; i++) {
        const result_row *r = &rows[i];
        char fl[32], fig[32], steps[32];
        num(fl, sizeof fl, r->st.final_loss, "%.6f");
        if (r->st.step >= 0) snprintf(steps, sizeof steps, "%lld", r->st.step);
        else snprintf(steps, sizeof steps, "-");
        if (csv) {
            csv_field(f, row_label(r, lb, sizeof lb));
            for (int k = 0; k < nkeys; k++) fputc(',', f), csv_field(f, r->values[k]);
            fprintf(f, ",%s", fl);
        } else {
            fprintf(f, "%-*s", w0, row_label(r, lb, sizeof lb));
            for (int k = 0; k < nkeys; k++) fprintf(f, "  %-*s", w[k], r->values[k]);
            fprintf(f, "  %10s", fl);
        }
        for (int c = 0; c < ncol; c++) {
            double v = figure(r, col[c]);
            if (isnan(v)) snprintf(fig, sizeof fig, "-");
            else snprintf(fig, sizeof fig, "%.4f", v);
            if (csv) fprintf(f, ",%s", fig);
            else fprintf(f, "  %*s", col_width(col[c]), fig);
        }
        if (csv) {
            fprintf(f, ",%s,", steps);
            csv_field(f, r->st.state);
            fputc('\n', f);
        } else {
            fprintf(f, "  %8s  %s\n", steps, r->st.state);
        }
    }
}

/* One line of text for an error, quoted: up to its newline, control bytes
 * as '?', cut at 60 characters; "the end of the file" when there is none. */
static const char *excerpt(const char *p, char *out, size_t n) {
    size_t k = 1;
    if (!*p) return "the end of the file";
    out[0] = '\'';
    for (; *p && *p != '\n' && k + 5 < n && k < 61; p++) out[k++] = (unsigned char)*p < 0x20 ? '?' : *p;
    snprintf(out + k, n - k, "%s'", *p && *p != '\n' ? "..." : "");
    return out;
}

/* points.csv (text) is exactly what the sweep in DIR/sweep.yaml writes:
 * its keys, its points 0..n-1 once each and in order, each in DIR/point-NNN,
 * its values. 0, or -2 + err naming points.csv's first line that is not. */
static int points_match(const char *path, const char *csv, const char *record, const sweep_def *d, char *err,
                        size_t errlen) {
    char *want = NULL, a[80], b[80];
    size_t wlen = 0, i = 0;
    int line = 1;
    FILE *f = open_memstream(&want, &wlen);
    if (!f) launch_oom();
    sweep_points_csv(f, d);
    fclose(f);
    for (; csv[i] && csv[i] == want[i]; i++) line += csv[i] == '\n';
    int same = !csv[i] && !want[i];
    while (i > 0 && csv[i - 1] != '\n') i--; /* the line's start */
    if (!same) {
        const char *cut = csv[i] && !strchr(csv + i, '\n') ? " (cut short: no newline)" : "";
        launch_errf(err, errlen, "%s:%d: found %s%s where %s (%d points) gives %s: not the sweep's points "
                    "(jepa-launch sweep SWEEP writes them again)", path, line, excerpt(csv + i, a, sizeof a), cut,
                    record, sweep_npoints(d), excerpt(want + i, b, sizeof b));
    }
    free(want);
    return same ? 0 : -2;
}

/* points.csv's first lines, before the sweep is read back: -2 + err when
 * it is empty, lacks its header or lists no point */
static int points_header(const char *path, const char *csv, char *err, size_t errlen) {
    const char *nl = strchr(csv, '\n');
    if (!*csv || strncmp(csv, "point,dir", 9) != 0)
        return launch_errf(err, errlen, "%s: %s: the sweep's list of points is damaged (jepa-launch sweep SWEEP writes "
                           "it again)", path, *csv ? "no 'point,dir,...' header" : "empty"), -2;
    if (!nl || !nl[1 + strspn(nl + 1, "\n")])
        return launch_errf(err, errlen, "%s: lists no point: the sweep's list of points is damaged (jepa-launch sweep "
                           "SWEEP writes it again)", path), -2;
    return 0;
}

/* Point i's row: its status, and its values as its resolved spec has them
 * (the sweep's when it has none), which must be the sweep's (the same
 * value, 0.001 or 1e-3); a point whose run is missing, whose spec does not
 * load or holds other values is damaged.
 * def: spec_defaults' spec (made once for every point). */
static void read_point(const char *dir, const sweep_def *d, const jepa_spec *def, int i, result_row *r) {
    char rd[LAUNCH_PATH_MAX + 40], path[LAUNCH_PATH_MAX + 64], e[SPEC_ERR_MAX], why[160] = "";
    char got[SPEC_STR_MAX], want[SPEC_STR_MAX], *vals[2 * SWEEP_MAX_KEYS];
    int nk = d->ngrid + d->nrandom;
    jepa_spec s = *def, t;
    memset(r, 0, sizeof *r);
    r->point = i;
    if (!(r->values = calloc((size_t)(nk ? nk : 1), sizeof *r->values))) launch_oom();
    snprintf(rd, sizeof rd, "%s/point-%03d", dir, i);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", rd);
    int ok = spec_load_file(&s, path, e, sizeof e) == 0;
    int missing = read_status(rd, ok ? &s : NULL, &r->st) != 0;
    ok = ok && !missing;
    size_t pl = strlen(path); /* the loader's message, without the path it starts with */
    const char *m = !strncmp(e, path, pl) && !strncmp(e + pl, ": ", 2) ? e + pl + 2 : e;
    if (!ok) snprintf(why, sizeof why, "spec.resolved.yaml: %.130s", missing ? "missing" : m);
    sweep_point(d, i, vals);
    for (int k = 0; k < nk; k++) {
        const char *key = k < d->ngrid ? d->grid[k].key : d->random[k - d->ngrid].key;
        int have = ok && spec_get(&s, key, got, sizeof got) == 0; /* else the sweep's value is shown */
        int sweeps = vals[k] && (t = *def, spec_set(&t, vals[k], e, sizeof e) == 0) &&
                     spec_get(&t, key, want, sizeof want) == 0;
        if (!(r->values[k] = strdup(have ? got : sweeps ? want : "?"))) launch_oom();
        if (have && sweeps && !why[0] && strcmp(got, want) != 0)
            snprintf(why, sizeof why, "spec.resolved.yaml: %.40s is %.24s, the sweep's point has %.24s", key, got,
                     want);
        free(vals[k]);
    }
    if (why[0] && !r->st.damaged[0]) snprintf(r->st.damaged, sizeof r->st.damaged, "%s", why);
    settle_damage(&r->st);
}

int launch_read_sweep(const char *dir, char ***keys_out, int *nkeys_out, result_row **rows_out, char *err,
                      size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32], record[LAUNCH_PATH_MAX + 32], *csv;
    struct stat sb;
    snprintf(path, sizeof path, "%s/points.csv", dir);
    if (lstat(path, &sb) != 0)
        return snprintf(err, errlen, "%s: not a sweep directory (no points.csv)", dir), -1;
    /* from here dir is a sweep: a points.csv we cannot use is said as such */
    if (spec_read_file(path, LAUNCH_POINTS_MAX, "sweep's points.csv", &csv, NULL, err, errlen)) return -2;
    sweep_def d;
    memset(&d, 0, sizeof d); /* sweep_free-able whether or not it is read */
    int rc = points_header(path, csv, err, errlen);
    snprintf(record, sizeof record, "%s/sweep.yaml", dir);
    if (rc == 0 && sweep_read(&d, record, err, errlen) != 0) {
        size_t k = strlen(err); /* the points cannot be checked against the sweep */
        snprintf(err + k, errlen - k, " (the record of the sweep in %s)", dir);
        rc = -2;
    } else if (rc == 0) {
        rc = points_match(path, csv, record, &d, err, errlen);
    }
    free(csv);
    if (rc) {
        sweep_free(&d);
        return rc;
    }
    int n = sweep_npoints(&d), nk = d.ngrid + d.nrandom;
    char **keys = calloc(SWEEP_MAX_KEYS * 2, sizeof *keys);
    result_row *rows = calloc((size_t)n, sizeof *rows);
    if (!keys || !rows) launch_oom();
    for (int k = 0; k < nk; k++)
        if (!(keys[k] = strdup(k < d.ngrid ? d.grid[k].key : d.random[k - d.ngrid].key))) launch_oom();
    jepa_spec def;
    spec_defaults(&def);
    for (int i = 0; i < n; i++) read_point(dir, &d, &def, i, &rows[i]);
    sweep_free(&d);
    *keys_out = keys;
    *nkeys_out = nk;
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
