/* prepare.c - from a spec file to a run directory: load with overrides,
 * check what must hold before anything starts (with the key's place in the
 * file), then write the exact and the resolved spec. Nothing is created
 * until every check has passed, and a start that came to nothing (mpirun
 * or sbatch not run at all, the trainer's inputs refused at setup) takes
 * back what it created (launch_undo). */
#define _GNU_SOURCE /* open_memstream */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "launch.h"
#include "spec_internal.h" /* the key table, for launch_spec_diff */

int launch_spec_load(launch_spec *ls, const char *path, const char *const *sets, int nsets, char *err,
                     size_t errlen) {
    memset(ls, 0, sizeof *ls);
    /* every error names the spec file, as the loader's and the checks' do */
    if (snprintf(ls->path, sizeof ls->path, "%s", path) >= (int)sizeof ls->path) {
        snprintf(err, errlen, "%.200s...: spec path too long (at most %d bytes)", path, LAUNCH_PATH_MAX - 1);
        return -1;
    }
    if (nsets > LAUNCH_MAX_SETS) {
        snprintf(err, errlen, "%s: more than %d --set overrides (%d given)", path, LAUNCH_MAX_SETS, nsets);
        return -1;
    }
    spec_defaults(&ls->spec);
    if (spec_load_file(&ls->spec, path, err, errlen)) return -1;
    for (int i = 0; i < nsets; i++) {
        ls->sets[i] = sets[i];
        if (spec_set(&ls->spec, sets[i], err, errlen)) return -1;
    }
    ls->nsets = nsets;
    char msg[SPEC_ERR_MAX];
    if (spec_validate(&ls->spec, msg, sizeof msg)) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    if (spec_read_file(path, SPEC_FILE_MAX, "run spec", &ls->text, NULL, err, errlen)) return -1;
    return 0;
}

void launch_spec_free(launch_spec *ls) {
    free(ls->text);
    ls->text = NULL;
}

/* Walks mappings as spec.c does: `a: {b: 1}` and `a.b: 1` both reach a.b. */
static int locate_in(yaml_document_t *doc, yaml_node_t *map, const char *prefix, const char *key, yaml_mark_t *m) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
        if (!kn || !vn || kn->type != YAML_SCALAR_NODE) continue;
        char path[256];
        int w = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", (const char *)kn->data.scalar.value);
        if (w < 0 || w >= (int)sizeof path) continue;
        if (strcmp(path, key) == 0) {
            *m = vn->start_mark;
            return 0;
        }
        size_t n = strlen(path);
        if (vn->type == YAML_MAPPING_NODE && strncmp(key, path, n) == 0 && key[n] == '.' &&
            locate_in(doc, vn, path, key, m) == 0)
            return 0;
    }
    return -1;
}

int launch_locate(const char *text, const char *key, int *line, int *col) {
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = -1;
    if (!yaml_parser_initialize(&p)) return -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    if (yaml_parser_load(&p, &doc)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        yaml_mark_t m;
        if (root && root->type == YAML_MAPPING_NODE && locate_in(&doc, root, "", key, &m) == 0) {
            *line = (int)m.line + 1;
            *col = (int)m.column + 1;
            rc = 0;
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Text for an error line: control bytes become '?', long text is cut. */
static const char *shown(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 4 < n; i++) buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (s[i]) memcpy(buf + i, "...", 4);
    else buf[i] = 0;
    return buf;
}

/* An error about key's value, placed where the value came from: the last
 * --set that named it, else its line in the file, else its default. */
static int key_fail(const launch_spec *ls, const char *key, char *err, size_t errlen, const char *fmt, ...) {
    char msg[SPEC_ERR_MAX], buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t kl = strlen(key);
    for (int i = ls->nsets - 1; i >= 0; i--)
        if (strncmp(ls->sets[i], key, kl) == 0 && ls->sets[i][kl] == '=') {
            snprintf(err, errlen, "--set %s: %s", shown(ls->sets[i], buf, sizeof buf), msg);
            return -1;
        }
    int line, col;
    if (ls->text && launch_locate(ls->text, key, &line, &col) == 0)
        snprintf(err, errlen, "%s:%d:%d: %s: %s", ls->path, line, col, key, msg);
    else
        snprintf(err, errlen, "%s: %s: %s (the default)", ls->path, key, msg);
    return -1;
}

/* The hint names the objective's own data maker (figures.c's table). The
 * manifest's schema must be the kind of records the objective trains on
 * (data_kind.h, the rule jepa-train applies at setup): a sweep over
 * objectives would otherwise start points that fail there. */
static int check_shards(const launch_spec *ls, const char *key, const char *dir, char *err, size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32], buf[200], why[SPEC_ERR_MAX];
    struct stat st;
    const launch_objective *obj = launch_objective_find(ls->spec.objective);
    const char *hint = obj ? obj->data_hint : "pack one with jepa-shard pack";
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return key_fail(ls, key, err, errlen, "shard directory '%s' does not exist (%s)", shown(dir, buf, sizeof buf),
                        hint);
    if (stat(path, &st) != 0)
        return key_fail(ls, key, err, errlen, "'%s' has no manifest.json: not a shard directory (%s)",
                        shown(dir, buf, sizeof buf), hint);
    if (!S_ISREG(st.st_mode)) /* a FIFO or device may never end */
        return key_fail(ls, key, err, errlen, "'%s/manifest.json' is not a regular file (a device, FIFO or socket may "
                        "never end)", shown(dir, buf, sizeof buf));
    shard_schema sc;
    if (shard_manifest_schema(dir, &sc, why, sizeof why)) /* names the manifest */
        return key_fail(ls, key, err, errlen, "%s", why);
    data_kind got = data_kind_of(&sc);
    if (obj && got != obj->data)
        return key_fail(ls, key, err, errlen, "'%s' holds %s, objective %s needs %s (%s)", shown(dir, buf, sizeof buf),
                        data_kind_name(got), obj->objective, data_kind_name(obj->data), hint);
    return 0;
}

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* Digits at *p (at most 9) as a number, *p moved past them; -1 when none. */
static long long digits(const char **p) {
    long long v = 0;
    int n = 0;
    for (; **p >= '0' && **p <= '9' && n < 9; (*p)++, n++) v = v * 10 + (**p - '0');
    return n && !(**p >= '0' && **p <= '9') ? v : -1;
}

/* Slurm's --time in seconds: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or
 * D-HH:MM:SS; 0 for 0, INFINITE and UNLIMITED (no limit); -1 when t is
 * none of these. */
static long long slurm_seconds(const char *t) {
    static const long long plain[3][3] = {{60}, {60, 1}, {3600, 60, 1}}, dashed[3] = {3600, 60, 1};
    if (!strcmp(t, "INFINITE") || !strcmp(t, "UNLIMITED")) return 0;
    long long f[3], days = 0, sum = 0;
    int n = 0, dash = strchr(t, '-') != NULL;
    if (dash && ((days = digits(&t)) < 0 || *t++ != '-')) return -1;
    for (;;) {
        if (n == 3 || (f[n++] = digits(&t)) < 0) return -1;
        if (!*t) break;
        if (*t++ != ':') return -1;
    }
    for (int i = 0; i < n; i++) sum += f[i] * (dash ? dashed[i] : plain[n - 1][i]);
    return days * 86400 + sum;
}

/* slurm.time is a Slurm time, longer than slurm.signal's lead ([R:|B:]SIG
 * [@N], N seconds before the end; Slurm's default 60): a job signalled at
 * its start checkpoints and stops at once, and with slurm.requeue loops. */
static int check_slurm_time(const launch_spec *ls, char *err, size_t errlen) {
    const char *t = ls->spec.slurm.time, *sig = ls->spec.slurm.signal, *at = strchr(sig, '@');
    long long secs = *t ? slurm_seconds(t) : 0, lead = 60;
    if (secs < 0)
        return key_fail(ls, "slurm.time", err, errlen,
                        "'%s' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)", t);
    if (at && (lead = digits(&(const char *){at + 1})) < 0)
        return key_fail(ls, "slurm.signal", err, errlen, "'%s': the lead after '@' is not whole seconds "
                        "([R:|B:]SIG[@SECONDS])", sig);
    if (*sig && secs > 0 && secs <= lead)
        return key_fail(ls, "slurm.time", err, errlen,
                        "'%s' is %lld s, not longer than slurm.signal %s's lead of %lld s: the job would be "
                        "signalled as it starts and stop at once; raise slurm.time or lower the lead",
                        t, secs, sig, lead);
    return 0;
}

int launch_spec_check(const launch_spec *ls, int what, char *err, size_t errlen) {
    const jepa_spec *s = &ls->spec;
    if (check_shards(ls, "data.train", s->data.train, err, errlen)) return -1;
    if (s->eval.probe && check_shards(ls, "data.test", s->data.test, err, errlen)) return -1;
    if ((what & LAUNCH_CHECK_LOCAL) && s->parallel.nodes != 1)
        return key_fail(ls, "parallel.nodes", err, errlen,
                        "is %d, but jepa-launch run starts ranks on this machine only (use jepa-launch slurm)",
                        s->parallel.nodes);
    if (what & LAUNCH_CHECK_SLURM) {
        static const char *const one_line[] = {"slurm.partition", "slurm.account", "slurm.time",
                                               "slurm.job_name",  "slurm.signal",  "slurm.mpi"};
        char val[SPEC_STR_MAX];
        for (size_t i = 0; i < sizeof one_line / sizeof one_line[0]; i++) {
            if (spec_get(s, one_line[i], val, sizeof val)) continue;
            if (has_control(val))
                return key_fail(ls, one_line[i], err, errlen,
                                "contains a newline or control character; not allowed in an #SBATCH line");
        }
        /* sbatch --output names a file in run.dir: Slurm expands %j, %a, ...
         * there (we write a literal % as %%), but a backslash makes it strip
         * every backslash and expand nothing, and no spelling avoids that */
        if (strchr(s->run_dir, '\\'))
            return key_fail(ls, "run.dir", err, errlen,
                            "holds a backslash: Slurm would strip it from the job's output file name; choose a "
                            "run.dir without one");
        /* extra: one option per line; tabs and CRs are refused too */
        const char *p = s->slurm.extra;
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            char line[SPEC_STR_MAX];
            memcpy(line, p, n);
            line[n] = 0;
            char *t = line;
            while (*t == ' ') t++;
            if (*t && (*t != '-' || has_control(t)))
                return key_fail(ls, "slurm.extra", err, errlen,
                                "line '%s' is not an sbatch option (each line must start with '-', no control "
                                "characters)",
                                shown(t, val, 80));
            p += n + (e ? 1 : 0);
        }
        if (check_slurm_time(ls, err, errlen)) return -1;
        int nodes = s->slurm.nodes ? s->slurm.nodes : s->parallel.nodes;
        if (s->slurm.tasks_per_node && (long)s->slurm.tasks_per_node * nodes < s->parallel.ranks)
            return key_fail(ls, "slurm.tasks_per_node", err, errlen,
                            "%d per node x %d nodes is fewer than parallel.ranks (%d)", s->slurm.tasks_per_node,
                            nodes, s->parallel.ranks);
    }
    return 0;
}

int launch_prepare_dir(const launch_spec *ls, char *err, size_t errlen) {
    const char *dir = ls->spec.run_dir;
    char path[LAUNCH_PATH_MAX + 32];
    if (launch_mkdirs(dir, err, errlen)) return -1;
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    if (launch_write_file(path, ls->text, strlen(ls->text), err, errlen)) return -1;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || spec_write(&ls->spec, f) != 0 || fclose(f) != 0) {
        free(buf);
        snprintf(err, errlen, "cannot write the resolved spec of %s", ls->path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    int rc = launch_write_file(path, buf, len, err, errlen);
    free(buf);
    return rc;
}

int launch_spec_diff(const jepa_spec *a, const jepa_spec *b, char *key, size_t klen, char *va, char *vb,
                     size_t vlen) {
    for (size_t i = 0; i < spec_nkeys; i++) {
        if (spec_get(a, spec_keys[i].key, va, vlen) || spec_get(b, spec_keys[i].key, vb, vlen)) continue;
        if (strcmp(va, vb) != 0) {
            snprintf(key, klen, "%s", spec_keys[i].key);
            return 1;
        }
    }
    return 0;
}

int launch_check_existing(const launch_spec *ls, char *err, size_t errlen) {
    const char *dir = ls->spec.run_dir;
    char ckpt[LAUNCH_PATH_MAX + 64], path[LAUNCH_PATH_MAX + 32], msg[SPEC_ERR_MAX];
    char key[128], va[SPEC_STR_MAX], vb[SPEC_STR_MAX], sa[80], sb[80];
    int world, has = launch_ckpt_world(dir, &world, ckpt, sizeof ckpt);
    /* finished: a resume has nothing to continue (it says so), so the
     * advice is a new run.dir, never `resume` */
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (access(path, F_OK) == 0)
        return launch_errf(err, errlen,
                           "run.dir %s holds a finished run (%s; jepa-launch status %s shows it): to train "
                           "again, choose a new run.dir",
                           dir, path, dir);
    if (has == 1) return 0; /* nothing a fresh start would destroy */
    if (!strcmp(ls->spec.resume, "none"))
        return launch_errf(err, errlen,
                           "run.dir %s already holds checkpoints: jepa-launch resume %s continues that run "
                           "(or choose another run.dir)",
                           dir, dir);
    jepa_spec old;
    spec_defaults(&old);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
    if (spec_load_file(&old, path, msg, sizeof msg))
        return launch_errf(err, errlen, "run.dir %s holds checkpoints but its spec does not load (%s)", dir, msg);
    if (launch_spec_diff(&old, &ls->spec, key, sizeof key, va, vb, sizeof va))
        return launch_errf(err, errlen,
                           "run.dir %s already holds a run with %s %s (this spec: %s): jepa-launch resume %s "
                           "continues it as it was, or choose another run.dir",
                           dir, key, shown(va, sa, sizeof sa), shown(vb, sb, sizeof sb), dir);
    if (has == 0 && world != ls->spec.parallel.ranks)
        return launch_errf(err, errlen,
                           "%s was written by %d rank%s, not parallel.ranks %d: jepa-launch resume %s takes the "
                           "checkpoint's world size (or --np %d)",
                           ckpt, world, world == 1 ? "" : "s", ls->spec.parallel.ranks, dir, world);
    return 0;
}

/* ---- taking back a start that came to nothing ---- */

/* What jepa-launch itself writes into a run directory, and error, the
 * line jepa-train leaves for it when it fails, with the temp files of
 * that line a killed rank leaves (error.PID.tmp: launch_error_tmp, any
 * PID; the trainer's files, checkpoints above all, are never among them). */
static const char *const own_files[] = {"spec.yaml", "spec.resolved.yaml", "state", "launch.log", "job.sbatch",
                                        "slurm_job", "train.log", "lock", "error", "error.PID.tmp"};
enum { NOWN = sizeof own_files / sizeof own_files[0], OWN_ERROR_TMPS = NOWN - 1 /* a pattern, not a name */ };

/* drops trailing slashes in place ("/" stays) */
static void trim_slashes(char *p) {
    for (size_t k = strlen(p); k > 1 && p[k - 1] == '/'; k--) p[k - 1] = 0;
}

/* own_files' index of name, -1 when it is not one of ours */
static int own_index(const char *name) {
    for (int i = 0; i < NOWN; i++)
        if (!strcmp(name, own_files[i])) return i;
    return launch_error_tmp(name) ? OWN_ERROR_TMPS : -1;
}

/* name among the NUL-separated names of list[0, n) */
static int listed(const char *list, size_t n, const char *name) {
    for (size_t i = 0; i < n; i += strlen(list + i) + 1)
        if (!strcmp(list + i, name)) return 1;
    return 0;
}

/* One look at a run directory (scan_dir): which of our files are there, and
 * the other entries, listed (init) or checked against that list (apply). */
typedef struct {
    char *list;          /* in: NULL, or where the other names go, NUL after each */
    size_t cap, nlist;   /* list's size; out: the bytes used */
    int full;            /* out: a name did not fit in list */
    const char *known;   /* in: NULL, or the names an earlier scan listed */
    size_t nknown;
    char unknown[256];   /* out: the first entry known does not hold ("" when none) */
    unsigned own;        /* out: bit i when own_files[i] is there */
} dir_scan;

/* dir's entries that are not our files: how many, or -1 + errno when dir
 * does not read; the rest goes to sc. */
static int scan_dir(const char *dir, dir_scan *sc) {
    DIR *d = opendir(dir);
    int count = 0;
    sc->own = 0, sc->nlist = 0, sc->full = 0, sc->unknown[0] = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int i = own_index(e->d_name);
        size_t k = strlen(e->d_name) + 1;
        if (i >= 0) {
            sc->own |= 1u << i;
            continue;
        }
        if (sc->list && sc->nlist + k <= sc->cap) memcpy(sc->list + sc->nlist, e->d_name, k), sc->nlist += k;
        else if (sc->list) sc->full = 1;
        if (sc->known && !sc->unknown[0] && !listed(sc->known, sc->nknown, e->d_name))
            snprintf(sc->unknown, sizeof sc->unknown, "%s", e->d_name);
        count++;
    }
    closedir(d);
    return count;
}

void launch_undo_init(launch_undo *u, const char *run_dir) {
    char p[LAUNCH_PATH_MAX];
    struct stat st;
    memset(u, 0, sizeof *u);
    snprintf(p, sizeof p, "%s", run_dir);
    trim_slashes(p);
    if (stat(p, &st) == 0) {
        dir_scan sc = {.list = u->names, .cap = sizeof u->names};
        u->others = scan_dir(p, &sc);
        u->had = sc.own, u->nnames = sc.nlist, u->full = sc.full;
        return;
    }
    /* the outermost missing ancestor: what mkdir -p makes first */
    for (;;) {
        snprintf(u->top, sizeof u->top, "%s", p);
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) return;
        *slash = 0;
        trim_slashes(p);
        if (stat(p, &st) == 0) return;
    }
}

/* The parents mkdir -p made, from p's up to top, each while empty
 * (another start may use one by now). */
static void remove_parents(char *p, const char *top) {
    while (strcmp(p, top) != 0) {
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) return;
        *slash = 0;
        trim_slashes(p);
        if (rmdir(p) != 0) return;
    }
}

/* Whether run_dir (p) still holds exactly the other entries it held at
 * init (none when this start made it): 0, or -1 + why; 1 when p is gone
 * and this start had made it (nothing to take back). *own: our files there. */
static int same_others(const launch_undo *u, const char *p, unsigned *own, char *why, size_t n) {
    dir_scan sc = {.known = u->names, .nknown = u->nnames};
    int expected = *u->top ? 0 : u->others;
    if (u->full) /* names could not list them all: they cannot be compared */
        return snprintf(why, n, "it held more entries than this start can check"), -1;
    int others = scan_dir(p, &sc);
    *own = sc.own;
    if (others < 0 && errno == ENOENT && *u->top) return 1; /* never made */
    if (others < 0) return snprintf(why, n, "cannot read it: %s", strerror(errno)), -1;
    if (*sc.unknown) return snprintf(why, n, "it holds files this start did not write (%s)", sc.unknown), -1;
    if (others != expected) /* an entry went (or it did not read at init) */
        return snprintf(why, n, "its other files changed during this start"), -1;
    return 0;
}

int launch_undo_apply(const launch_undo *u, const char *run_dir, char *why, size_t n) {
    char p[LAUNCH_PATH_MAX], f[LAUNCH_PATH_MAX + 32];
    unsigned own = 0;
    snprintf(p, sizeof p, "%s", run_dir);
    trim_slashes(p);
    for (int i = 0; i < NOWN; i++) /* ours were rewritten: not ours to remove */
        if ((u->had & 1u << i) && strcmp(own_files[i], "lock") != 0) /* lock: never rewritten */
            return snprintf(why, n, "it existed before with its own %s", own_files[i]), -1;
    /* checked before anything goes: all or nothing */
    int same = same_others(u, p, &own, why, n);
    if (same != 0) return same < 0 ? -1 : 0;
    for (int i = 0; i < NOWN; i++) {
        if (!(own & ~u->had & 1u << i)) continue; /* a lock there before stays */
        if (i == OWN_ERROR_TMPS) {
            if (launch_error_tmps_remove(p, why, n)) return -1;
            continue;
        }
        snprintf(f, sizeof f, "%s/%s", p, own_files[i]);
        if (unlink(f) != 0) return snprintf(why, n, "cannot remove %s: %s", f, strerror(errno)), -1;
    }
    if (!*u->top) return 0; /* it was there before, without our files: as it was */
    if (rmdir(p) != 0) return snprintf(why, n, "cannot remove it: %s", strerror(errno)), -1;
    remove_parents(p, u->top);
    return 0;
}
