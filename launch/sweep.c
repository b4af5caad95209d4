/* sweep.c - a sweep file names a base spec and the keys to vary: a grid of
 * listed values and/or random draws (uniform, log-uniform, integer, choice)
 * from a seeded generator. It expands to grid x count points, each a run
 * directory dir/point-NNN whose resolved spec is base + set + the point's
 * values; every point is checked before any directory is made. Points run
 * here a few at a time (sweep_run.c) or as a Slurm array.
 * Run again into the same directory, a sweep skips its finished points and
 * continues unfinished ones; a sweep that would give a point another spec
 * is refused (issue 16: a point's files must all come from one spec). */
#define _GNU_SOURCE /* open_memstream */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "launch.h"


typedef struct {
    const char *name;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    int unique; /* a new sweep: no mapping holds a key twice, no grid list a value */
} sweep_loader;

static int at(sweep_loader *L, const yaml_node_t *n, const char *what, const char *fmt, ...) {
    char msg[SPEC_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errlen, "%s:%zu:%zu: %s: %s", L->name, n->start_mark.line + 1, n->start_mark.column + 1,
             what, msg);
    return -1;
}

static yaml_node_t *node(sweep_loader *L, int id) { return yaml_document_get_node(L->doc, id); }
static const char *scalar(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* key must be a spec key and value must be valid for it; canon (may be
 * NULL) gets the value as the spec holds it (0.001 and 1e-3 alike) */
static int check_value(sweep_loader *L, const yaml_node_t *vn, const char *where, const char *key,
                       const char *value, char *canon, size_t n) {
    jepa_spec s;
    char a[SPEC_STR_MAX + 160], e[SPEC_ERR_MAX];
    spec_defaults(&s);
    snprintf(a, sizeof a, "%s=%s", key, value);
    if (spec_set(&s, a, e, sizeof e)) return at(L, vn, where, "%s", e);
    if (canon && spec_get(&s, key, canon, n)) snprintf(canon, n, "%s", value);
    return 0;
}

/* A new sweep's mapping may not hold a key twice, as a spec file may not:
 * the later value would win unseen (or two grid: sections merge). Pair p
 * against the pairs before it in map. An old sweep directory's sweep.yaml
 * (unique 0) reads back as that build made it: the last value won. */
static int dup_key(sweep_loader *L, const yaml_node_t *map, const yaml_node_pair_t *p, const char *where) {
    const yaml_node_t *kn = node(L, p->key);
    if (!L->unique || !scalar(kn)) return 0;
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *qn = node(L, q->key);
        if (scalar(qn) && !strcmp(scalar(qn), scalar(kn)))
            return at(L, kn, where, "duplicate key (first at line %zu)", qn->start_mark.line + 1);
    }
    return 0;
}

static int is_spec_key(const char *key) {
    jepa_spec s;
    char v[SPEC_STR_MAX];
    spec_defaults(&s);
    return spec_get(&s, key, v, sizeof v) == 0;
}

static int parse_num(const char *t, double *v) {
    char *end;
    errno = 0;
    *v = strtod(t, &end);
    return (end == t || *end || errno || !isfinite(*v)) ? -1 : 0;
}

/* A list of values (a grid key's, or choice's). A grid list may not hold a
 * value twice: its points would be the same run twice. */
static int load_axis_values(sweep_loader *L, sweep_axis *ax, const yaml_node_t *seq, const char *where, int unique) {
    static char canon[SWEEP_MAX_VALUES][SPEC_STR_MAX]; /* not reentrant; 32 KB off the stack */
    int line[SWEEP_MAX_VALUES], col[SWEEP_MAX_VALUES];
    if (seq->type != YAML_SEQUENCE_NODE) return at(L, seq, where, "expected a list of values");
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        const yaml_node_t *v = node(L, *it);
        int i = ax->nvalues;
        if (!scalar(v)) return at(L, v, where, "expected a scalar value");
        if (i == SWEEP_MAX_VALUES) return at(L, v, where, "more than %d values", SWEEP_MAX_VALUES);
        if (check_value(L, v, where, ax->key, scalar(v), canon[i], sizeof canon[i])) return -1;
        line[i] = (int)v->start_mark.line + 1;
        col[i] = (int)v->start_mark.column + 1;
        for (int j = 0; unique && j < i; j++)
            if (!strcmp(canon[i], canon[j]))
                return at(L, v, where, "%s is listed twice (also at %d:%d): those points would be the same run",
                          scalar(v), line[j], col[j]);
        if (!(ax->values[ax->nvalues++] = strdup(scalar(v)))) launch_oom();
    }
    if (ax->nvalues == 0) return at(L, seq, where, "the list is empty");
    return 0;
}

static int load_random(sweep_loader *L, sweep_def *d, const yaml_node_t *map) {
    static const char *const dists[] = {"uniform", "log_uniform", "int_uniform", "choice"};
    int have_count = 0;
    if (map->type != YAML_MAPPING_NODE) return at(L, map, "random", "expected a mapping (seed, count, keys)");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = node(L, p->key), *vn = node(L, p->value);
        const char *k = scalar(kn);
        double x;
        char where[160];
        snprintf(where, sizeof where, "random.%s", k ? k : "?");
        if (k && (!strcmp(k, "seed") || !strcmp(k, "count") || !strcmp(k, "keys")) && dup_key(L, map, p, where))
            return -1;
        if (k && (!strcmp(k, "seed") || !strcmp(k, "count"))) {
            if (!scalar(vn) || parse_num(scalar(vn), &x) || x != floor(x) || x < (k[0] == 's' ? 0 : 1) ||
                x > (k[0] == 's' ? 9007199254740992.0 : SWEEP_MAX_POINTS))
                return at(L, vn, k[0] == 's' ? "random.seed" : "random.count", "expected an integer %s",
                          k[0] == 's' ? ">= 0" : "in [1, 10000]");
            if (k[0] == 's') d->random_seed = (unsigned long long)x;
            else d->random_count = (int)x, have_count = 1;
        } else if (k && !strcmp(k, "keys")) {
            if (vn->type != YAML_MAPPING_NODE) return at(L, vn, "random.keys", "expected a mapping of spec keys");
            for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
                const yaml_node_t *kk = node(L, q->key), *dv = node(L, q->value);
                if (!scalar(kk) || !is_spec_key(scalar(kk)))
                    return at(L, kk, "random.keys", "'%s' is not a spec key (see docs/run-spec.md)",
                              scalar(kk) ? scalar(kk) : "?");
                snprintf(where, sizeof where, "random.keys.%s", scalar(kk));
                if (dup_key(L, vn, q, where)) return -1;
                if (d->nrandom == SWEEP_MAX_KEYS) return at(L, kk, "random.keys", "too many keys");
                sweep_axis *ax = &d->random[d->nrandom++];
                snprintf(ax->key, sizeof ax->key, "%s", scalar(kk));
                ax->line = (int)kk->start_mark.line + 1;
                ax->col = (int)kk->start_mark.column + 1;
                if (dv->type != YAML_MAPPING_NODE || dv->data.mapping.pairs.top - dv->data.mapping.pairs.start != 1)
                    return at(L, dv, where, "expected one of {uniform: [a, b]}, {log_uniform: [a, b]}, "
                                            "{int_uniform: [a, b]}, {choice: [...]}");
                const yaml_node_t *dn = node(L, dv->data.mapping.pairs.start->key);
                const yaml_node_t *args = node(L, dv->data.mapping.pairs.start->value);
                int which = -1;
                for (int i = 0; i < 4; i++)
                    if (scalar(dn) && !strcmp(scalar(dn), dists[i])) which = i;
                if (which < 0)
                    return at(L, dn, where, "unknown distribution '%s' (uniform, log_uniform, int_uniform, choice)",
                              scalar(dn) ? scalar(dn) : "?");
                ax->dist = (sweep_dist)which;
                if (ax->dist == SWEEP_CHOICE) {
                    if (load_axis_values(L, ax, args, where, 0)) return -1;
                    continue;
                }
                if (args->type != YAML_SEQUENCE_NODE || args->data.sequence.items.top - args->data.sequence.items.start != 2)
                    return at(L, args, where, "expected [low, high]");
                const yaml_node_t *a = node(L, args->data.sequence.items.start[0]);
                const yaml_node_t *b = node(L, args->data.sequence.items.start[1]);
                if (!scalar(a) || parse_num(scalar(a), &ax->lo)) return at(L, a, where, "expected a number");
                if (!scalar(b) || parse_num(scalar(b), &ax->hi)) return at(L, b, where, "expected a number");
                if (ax->lo > ax->hi) return at(L, args, where, "low is greater than high");
                if (ax->dist == SWEEP_LOG_UNIFORM && ax->lo <= 0) return at(L, a, where, "log_uniform needs low > 0");
                if (ax->dist == SWEEP_INT_UNIFORM && (ax->lo != floor(ax->lo) || ax->hi != floor(ax->hi)))
                    return at(L, args, where, "int_uniform needs integer bounds");
                /* both ends must be valid values of the key */
                if (check_value(L, a, where, ax->key, scalar(a), NULL, 0) ||
                    check_value(L, b, where, ax->key, scalar(b), NULL, 0))
                    return -1;
            }
        } else {
            return at(L, kn, "random", "unknown key '%s' (expected seed, count, keys)", k ? k : "?");
        }
    }
    if (!have_count) return at(L, map, "random", "missing count");
    if (d->nrandom == 0) return at(L, map, "random", "missing keys");
    return 0;
}

/* set: a mapping of spec keys to values, applied to every point */
static int load_sets(sweep_loader *L, sweep_def *d, const yaml_node_t *vn) {
    if (vn->type != YAML_MAPPING_NODE) return at(L, vn, "set", "expected a mapping of spec keys to values");
    for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
        const yaml_node_t *kk = node(L, q->key), *vv = node(L, q->value);
        char where[160];
        snprintf(where, sizeof where, "set.%s", scalar(kk) ? scalar(kk) : "?");
        if (!scalar(kk) || !is_spec_key(scalar(kk))) return at(L, kk, where, "not a spec key");
        if (dup_key(L, vn, q, where)) return -1;
        if (!scalar(vv)) return at(L, vv, where, "expected a scalar value");
        if (d->nsets == SWEEP_MAX_SETS) return at(L, kk, where, "more than %d keys", SWEEP_MAX_SETS);
        if (check_value(L, vv, where, scalar(kk), scalar(vv), NULL, 0)) return -1;
        d->set_line[d->nsets] = (int)kk->start_mark.line + 1;
        d->set_col[d->nsets] = (int)kk->start_mark.column + 1;
        if (asprintf(&d->sets[d->nsets++], "%s=%s", scalar(kk), scalar(vv)) < 0) launch_oom();
        d->nfile_sets = d->nsets;
    }
    return 0;
}

/* grid: a mapping of spec keys to lists of values */
static int load_grid(sweep_loader *L, sweep_def *d, const yaml_node_t *vn) {
    if (vn->type != YAML_MAPPING_NODE) return at(L, vn, "grid", "expected a mapping of spec keys to lists of values");
    for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
        const yaml_node_t *kk = node(L, q->key);
        char where[160];
        snprintf(where, sizeof where, "grid.%s", scalar(kk) ? scalar(kk) : "?");
        if (!scalar(kk) || !is_spec_key(scalar(kk))) return at(L, kk, where, "not a spec key (see docs/run-spec.md)");
        if (dup_key(L, vn, q, where)) return -1;
        if (d->ngrid == SWEEP_MAX_KEYS) return at(L, kk, where, "too many keys");
        sweep_axis *ax = &d->grid[d->ngrid++];
        snprintf(ax->key, sizeof ax->key, "%s", scalar(kk));
        ax->line = (int)kk->start_mark.line + 1;
        ax->col = (int)kk->start_mark.column + 1;
        if (load_axis_values(L, ax, node(L, q->value), where, L->unique)) return -1;
    }
    return 0;
}

/* The top-level mapping's keys into d; have[0], have[1]: base, dir seen */
static int load_top(sweep_loader *L, sweep_def *d, const yaml_node_t *root, int have[2]) {
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
        const yaml_node_t *kn = node(L, pr->key), *vn = node(L, pr->value);
        const char *k = scalar(kn);
        double x;
        int rc = 0;
        if (dup_key(L, root, pr, k)) return -1;
        if (k && (!strcmp(k, "base") || !strcmp(k, "dir"))) {
            if (!scalar(vn) || !*scalar(vn)) return at(L, vn, k, "expected a path");
            snprintf(k[0] == 'b' ? d->base : d->dir, LAUNCH_PATH_MAX, "%s", scalar(vn));
            have[k[0] == 'd'] = 1;
            if (k[0] == 'd') d->dir_line = (int)vn->start_mark.line + 1, d->dir_col = (int)vn->start_mark.column + 1;
        } else if (k && !strcmp(k, "parallel")) {
            if (!scalar(vn) || parse_num(scalar(vn), &x) || x != floor(x) || x < 0 || x > 4096)
                return at(L, vn, k, "expected an integer in [0, 4096] (points at once; 0: Slurm array without limit)");
            d->parallel = (int)x;
        } else if (k && !strcmp(k, "set")) {
            rc = load_sets(L, d, vn);
        } else if (k && !strcmp(k, "grid")) {
            rc = load_grid(L, d, vn);
        } else if (k && !strcmp(k, "random")) {
            rc = load_random(L, d, vn);
        } else {
            rc = at(L, kn, k ? k : "?", "unknown key (a sweep has base, dir, parallel, set, grid, random)");
        }
        if (rc) return -1;
    }
    return 0;
}

static const char *axis_key(const sweep_def *d, int i) {
    return i < d->ngrid ? d->grid[i].key : d->random[i - d->ngrid].key;
}
static const sweep_axis *axis_at(const sweep_def *d, int i) {
    return i < d->ngrid ? &d->grid[i] : &d->random[i - d->ngrid];
}
static const char *axis_section(const sweep_def *d, int i) { return i < d->ngrid ? "grid" : "random.keys"; }

/* What holds between the keys once all are read */
static int check_keys(const sweep_def *d, const int have[2], char *err, size_t errlen) {
    const char *path = d->path;
    if (!have[0]) return launch_errf(err, errlen, "%s: missing base (the spec every point starts from)", path);
    if (!have[1]) return launch_errf(err, errlen, "%s: missing dir (where the points' run directories go)", path);
    /* a key varied twice would make points that are not what they say;
     * said at the second, naming the first */
    for (int i = 0; i < d->ngrid + d->nrandom; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(axis_key(d, i), axis_key(d, j)))
                return launch_errf(err, errlen, "%s:%d:%d: %s.%s: varied twice (first at line %d, %s)", path,
                                   axis_at(d, i)->line, axis_at(d, i)->col, axis_section(d, i), axis_key(d, i),
                                   axis_at(d, j)->line, axis_section(d, j));
    /* run.dir is the sweep's (DIR/point-NNN), and a varied key is not also fixed:
     * either would make points that are not what the file says */
    for (int i = 0; i < d->ngrid + d->nrandom; i++) {
        const char *a = axis_key(d, i);
        for (int j = 0; j < d->nsets; j++) {
            size_t n = strcspn(d->sets[j], "=");
            if (strlen(a) == n && !strncmp(a, d->sets[j], n))
                return launch_errf(err, errlen, "%s:%d:%d: set.%s: both in set and varied (%s, line %d): a "
                                   "point's value would not be set's; drop one", path, d->set_line[j],
                                   d->set_col[j], a, axis_section(d, i), axis_at(d, i)->line);
        }
        if (!strcmp(a, "run.dir"))
            return launch_errf(err, errlen, "%s: run.dir cannot be varied: each point runs in DIR/point-NNN (dir: %s)",
                               path, d->dir);
    }
    for (int j = 0; j < d->nsets; j++)
        if (!strncmp(d->sets[j], "run.dir=", 8))
            return launch_errf(err, errlen, "%s: set.run.dir: each point runs in DIR/point-NNN (dir: %s)", path,
                               d->dir);
    if (sweep_npoints(d) > SWEEP_MAX_POINTS)
        return launch_errf(err, errlen, "%s: %d points; at most %d", path, sweep_npoints(d), SWEEP_MAX_POINTS);
    return 0;
}

/* sweep_read, and with unique the checks only a new sweep gets (a sweep
 * directory written by an earlier build reads back as it was made) */
static int read_sweep(sweep_def *d, const char *path, int unique, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->parallel = 1;
    d->random_count = 1;
    snprintf(d->path, sizeof d->path, "%s", path);
    size_t len;
    if (spec_read_file(path, SPEC_FILE_MAX, "sweep file", &d->text, &len, err, errlen)) return -1;
    yaml_parser_t p;
    yaml_document_t doc;
    sweep_loader L = {path, &doc, err, errlen, unique};
    if (!yaml_parser_initialize(&p)) return snprintf(err, errlen, "%s: YAML parser", path), -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)d->text, len);
    if (!yaml_parser_load(&p, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s", path, p.problem_mark.line + 1,
                 p.problem_mark.column + 1, p.problem ? p.problem : "?");
        yaml_parser_delete(&p);
        return -1;
    }
    int rc, have[2] = {0, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        rc = launch_errf(err, errlen, "%s:1:1: a sweep is a mapping (base, dir, parallel, set, grid, random)", path);
    else
        rc = load_top(&L, d, root, have);
    if (!rc) rc = check_keys(d, have, err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc ? -1 : 0;
}

int sweep_add_sets(sweep_def *d, const char *const *sets, int n, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        jepa_spec s;
        char why[SPEC_ERR_MAX];
        size_t k = strcspn(sets[i], "=");
        spec_defaults(&s);
        if (spec_set(&s, sets[i], why, sizeof why)) return launch_errf(err, errlen, "sweep %s", why);
        if (!strncmp(sets[i], "run.dir=", 8))
            return launch_errf(err, errlen, "sweep --set %.200s: each point runs in DIR/point-NNN (%s's dir: %s)",
                               sets[i], d->path, d->dir);
        /* a point's value of a varied key is the sweep's, never overridden */
        for (int a = 0; a < d->ngrid + d->nrandom; a++) {
            const sweep_axis *ax = axis_at(d, a);
            if (strlen(ax->key) == k && !strncmp(ax->key, sets[i], k))
                return launch_errf(err, errlen, "sweep --set %.200s: %s is varied by %s:%d:%d (%s): drop the --set, "
                                   "or change the sweep file", sets[i], ax->key, d->path, ax->line, ax->col,
                                   axis_section(d, a));
        }
        if (d->nsets == SWEEP_MAX_SETS)
            return launch_errf(err, errlen, "sweep --set %.200s: more than %d set keys (%s's set: and --set)",
                               sets[i], SWEEP_MAX_SETS, d->path);
        if (!(d->sets[d->nsets++] = strdup(sets[i]))) launch_oom();
    }
    return 0;
}

int sweep_read(sweep_def *d, const char *path, char *err, size_t errlen) {
    return read_sweep(d, path, 0, err, errlen);
}

int sweep_load(sweep_def *d, const char *path, char *err, size_t errlen) {
    if (read_sweep(d, path, 1, err, errlen)) return -1;
    /* the points' parent is a sweep's directory, never a run's */
    char rs[LAUNCH_PATH_MAX + 32];
    snprintf(rs, sizeof rs, "%s/spec.resolved.yaml", d->dir);
    if (access(rs, F_OK) == 0)
        return launch_errf(err, errlen, "%s: dir %s is a run directory (it holds spec.resolved.yaml); a sweep needs "
                           "its own", path, d->dir);
    return 0;
}

void sweep_free(sweep_def *d) {
    free(d->text);
    for (int i = 0; i < d->nsets; i++) free(d->sets[i]);
    for (int i = 0; i < d->ngrid; i++)
        for (int j = 0; j < d->grid[i].nvalues; j++) free(d->grid[i].values[j]);
    for (int i = 0; i < d->nrandom; i++)
        for (int j = 0; j < d->random[i].nvalues; j++) free(d->random[i].values[j]);
    memset(d, 0, sizeof *d);
}

int sweep_npoints(const sweep_def *d) {
    long long n = 1;
    for (int i = 0; i < d->ngrid; i++) n *= d->grid[i].nvalues;
    if (d->nrandom) n *= d->random_count;
    return n > SWEEP_MAX_POINTS ? SWEEP_MAX_POINTS + 1 : (int)n;
}

/* splitmix64: a stateless mix of (seed, point, key) */
static unsigned long long mix(unsigned long long x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int sweep_point(const sweep_def *d, int i, char **out) {
    int n = 0, R = d->nrandom ? d->random_count : 1, g = i / R;
    for (int k = d->ngrid - 1; k >= 0; k--) { /* the last grid key varies fastest */
        const sweep_axis *ax = &d->grid[k];
        if (asprintf(&out[k], "%s=%s", ax->key, ax->values[g % ax->nvalues]) < 0) out[k] = NULL;
        g /= ax->nvalues;
    }
    n = d->ngrid;
    for (int k = 0; k < d->nrandom; k++) {
        const sweep_axis *ax = &d->random[k];
        unsigned long long r = mix(mix(mix(d->random_seed) ^ (unsigned long long)i) ^ (unsigned long long)k);
        double u = (double)(r >> 11) * 0x1.0p-53; /* [0, 1) */
        char v[64];
        switch (ax->dist) {
        case SWEEP_UNIFORM: snprintf(v, sizeof v, "%.6g", ax->lo + u * (ax->hi - ax->lo)); break;
        case SWEEP_LOG_UNIFORM: snprintf(v, sizeof v, "%.6g", exp(log(ax->lo) + u * (log(ax->hi) - log(ax->lo)))); break;
        case SWEEP_INT_UNIFORM: snprintf(v, sizeof v, "%.0f", ax->lo + floor(u * (ax->hi - ax->lo + 1))); break;
        case SWEEP_CHOICE: snprintf(v, sizeof v, "%s", ""); break;
        }
        const char *val = ax->dist == SWEEP_CHOICE ? ax->values[(int)(u * ax->nvalues)] : v;
        if (asprintf(&out[n], "%s=%s", ax->key, val) < 0) out[n] = NULL;
        n++;
    }
    return n;
}

void sweep_points_csv(FILE *f, const sweep_def *d) {
    int nk = d->ngrid + d->nrandom, n = sweep_npoints(d);
    char *vals[2 * SWEEP_MAX_KEYS];
    fputs("point,dir", f);
    for (int k = 0; k < nk; k++) fprintf(f, ",%s", axis_key(d, k));
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        sweep_point(d, i, vals);
        fprintf(f, "%d,point-%03d", i, i);
        for (int k = 0; k < nk; k++) {
            const char *v = vals[k] ? strchr(vals[k], '=') + 1 : "";
            fputc(',', f);
            if (strpbrk(v, ",\"\n")) {
                fputc('"', f);
                for (; *v; v++) fprintf(f, *v == '"' ? "\"\"" : "%c", *v);
                fputc('"', f);
            } else {
                fputs(v, f);
            }
            free(vals[k]);
        }
        fputc('\n', f);
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void sweep_specs_free(launch_spec *specs, int n) {
    for (int i = 0; specs && i < n; i++) launch_spec_free(&specs[i]);
    free(specs);
}

/* What dir/point-NNN held before: each of this sweep's points is new, or
 * holds a run of exactly its resolved spec (finished or not); anything else
 * (another spec there, a point-NNN past this sweep's last) is refused. */
static int existing_points(const sweep_def *d, const launch_spec *specs, int n, sweep_point_state *have, char *err,
                           size_t errlen) {
    char path[LAUNCH_PATH_MAX + 64], msg[SPEC_ERR_MAX], key[128], va[SPEC_STR_MAX], vb[SPEC_STR_MAX];
    struct stat st;
    for (int i = 0; i < n; i++) {
        const char *rd = specs[i].spec.run_dir;
        jepa_spec old;
        have[i] = SWEEP_POINT_NEW;
        snprintf(path, sizeof path, "%s/spec.resolved.yaml", rd);
        if (stat(path, &st) != 0) continue;
        spec_defaults(&old);
        if (spec_load_file(&old, path, msg, sizeof msg))
            return launch_errf(err, errlen, "%s: point %d: %s holds a run whose spec does not load (%s)", d->path,
                               i, rd, msg);
        if (launch_spec_diff(&old, &specs[i].spec, key, sizeof key, va, vb, sizeof va))
            return launch_errf(err, errlen,
                               "%s: point %d: %s already holds a run with %s=%.60s, this sweep gives it %.60s: a "
                               "sweep never rewrites its points (use another dir)",
                               d->path, i, rd, key, va, vb);
        snprintf(path, sizeof path, "%s/summary.json", rd);
        have[i] = stat(path, &st) == 0 ? SWEEP_POINT_FINISHED : SWEEP_POINT_UNFINISHED;
        run_status rs; /* a point a stopped sweep never started: pending, as status says */
        if (have[i] == SWEEP_POINT_UNFINISHED && launch_read_status(rd, &rs) == 0 && !strcmp(rs.state, "pending"))
            have[i] = SWEEP_POINT_PENDING;
    }
    DIR *dir = opendir(d->dir);
    int rc = 0;
    for (struct dirent *e; dir && !rc && (e = readdir(dir));) {
        int k, len = 0;
        char other[LAUNCH_PATH_MAX + 300];
        if (sscanf(e->d_name, "point-%d%n", &k, &len) != 1 || e->d_name[len] || k < n) continue;
        snprintf(other, sizeof other, "%s/%s/spec.resolved.yaml", d->dir, e->d_name);
        if (stat(other, &st) == 0)
            rc = launch_errf(err, errlen,
                             "%s: %s/%s holds a run of an earlier sweep with more points (this one has %d): a "
                             "sweep never rewrites its points (use another dir)",
                             d->path, d->dir, e->d_name, n);
    }
    if (dir) closedir(dir);
    return rc;
}

/* A point whose spec does not load: when one of its varied values is
 * refused on its own (a uniform draw 2.38702 for an integer key), the error
 * points at that key's line in the sweep file. */
static void point_error(const sweep_def *d, int i, char *const *vals, const char *msg, char *err, size_t errlen) {
    for (int k = 0; k < d->ngrid + d->nrandom; k++) {
        const sweep_axis *ax = k < d->ngrid ? &d->grid[k] : &d->random[k - d->ngrid];
        char why[SPEC_ERR_MAX];
        jepa_spec s;
        spec_defaults(&s);
        if (!vals[k] || spec_set(&s, vals[k], why, sizeof why) == 0) continue;
        int frac = k >= d->ngrid && (ax->dist == SWEEP_UNIFORM || ax->dist == SWEEP_LOG_UNIFORM);
        snprintf(err, errlen, "%s:%d:%d: %s.%s: point %d: %s%s", d->path, ax->line, ax->col,
                 k < d->ngrid ? "grid" : "random.keys", ax->key, i, why,
                 frac ? " (uniform and log_uniform draw fractions; int_uniform draws integers)" : "");
        return;
    }
    snprintf(err, errlen, "%s: point %d: %s", d->path, i, msg);
}

typedef struct {
    char **vals; /* n rows of nk values */
    int nk;
} sweep_rows;

/* Points i and j's values compared, key by key. */
static int rows_cmp(const sweep_rows *r, int i, int j) {
    for (int k = 0; k < r->nk; k++) {
        int c = strcmp(r->vals[(size_t)i * r->nk + k], r->vals[(size_t)j * r->nk + k]);
        if (c) return c;
    }
    return 0;
}

/* qsort_r's order: by values, then the earlier point first */
static int order_cmp(const void *a, const void *b, void *ctx) {
    int i = *(const int *)a, j = *(const int *)b, c = rows_cmp(ctx, i, j);
    return c ? c : (i > j) - (i < j);
}

/* Random draws can repeat (an int_uniform or choice key most often): a
 * point whose varied keys all hold an earlier point's values (as its
 * resolved spec holds them: choice's 0.001 and 1e-3 alike) trains the same
 * config again. Said in one warning line on stderr naming the pairs; the
 * points stay as drawn, so a sweep directory keeps its points. */
static void warn_repeats(const sweep_def *d, const launch_spec *specs, int n) {
    sweep_rows rows = {calloc((size_t)n * (size_t)(d->ngrid + d->nrandom), sizeof(char *)), d->ngrid + d->nrandom};
    int *order = malloc((size_t)n * sizeof *order), *first = malloc((size_t)n * sizeof *first), reps = 0;
    if (!rows.vals || !order || !first) launch_oom();
    for (int i = 0; i < n; i++) {
        order[i] = i, first[i] = -1;
        for (int k = 0; k < rows.nk; k++) {
            char v[SPEC_STR_MAX] = "";
            spec_get(&specs[i].spec, axis_key(d, k), v, sizeof v);
            if (!(rows.vals[(size_t)i * rows.nk + k] = strdup(v))) launch_oom();
        }
    }
    qsort_r(order, (size_t)n, sizeof *order, order_cmp, &rows);
    for (int a = 0, b = 1; b < n; b++) { /* order[a]: the earliest point with order[b]'s values so far */
        if (rows_cmp(&rows, order[a], order[b]) == 0) first[order[b]] = order[a], reps++;
        else a = b;
    }
    if (reps) {
        int said = 0;
        fprintf(stderr, "jepa-launch: warning: %s:", d->path);
        for (int j = 0; j < n && said < 4; j++)
            if (first[j] >= 0)
                fprintf(stderr, "%s point-%03d repeats point-%03d's values", said++ ? "," : "", j, first[j]);
        if (reps > said) fprintf(stderr, " and %d more", reps - said);
        fprintf(stderr, " (%d of %d points train a config again; another random.seed draws others)\n", reps, n);
    }
    for (size_t k = 0; k < (size_t)n * rows.nk; k++) free(rows.vals[k]);
    free(rows.vals);
    free(order);
    free(first);
}

/* A dry run's lines: the --set options every point gets (the file's set:
 * is in the file), then each point's values and what a run would do */
static void print_points(const sweep_def *d, char *const *vals, const sweep_point_state *have, int n) {
    int nk = d->ngrid + d->nrandom;
    if (d->nsets > d->nfile_sets) {
        printf("every point:");
        for (int j = d->nfile_sets; j < d->nsets; j++) printf(" --set %s", d->sets[j]);
        printf("\n");
    }
    for (int i = 0; i < n; i++) {
        printf("point-%03d", i);
        for (int k = 0; k < nk; k++) printf(" %s", vals[(size_t)i * nk + k]);
        printf("%s\n", have[i] == SWEEP_POINT_FINISHED     ? " (finished: skipped)"
                       : have[i] == SWEEP_POINT_UNFINISHED ? " (unfinished: continued)"
                       : have[i] == SWEEP_POINT_PENDING    ? " (pending: started)"
                                                           : "");
    }
}

/* DIR/sweep.json: the sweep, the --set options it ran with (sweep.yaml is
 * the file as given, without them), the points and their values, for
 * people and tools. 0 or -1 + err. */
static int write_sweep_json(const sweep_def *d, char *const *vals, int n, char *err, size_t errlen) {
    int nk = d->ngrid + d->nrandom;
    char path[LAUNCH_PATH_MAX + 32], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return launch_errf(err, errlen, "out of memory");
    fputs("{\n  \"sweep\": ", f);
    json_string(f, d->path);
    fputs(",\n  \"base\": ", f);
    json_string(f, d->base);
    fputs(",\n  \"set_options\": [", f);
    for (int j = d->nfile_sets; j < d->nsets; j++) {
        fputs(j > d->nfile_sets ? ", " : "", f);
        json_string(f, d->sets[j]);
    }
    fputs("],\n  \"keys\": [", f);
    for (int k = 0; k < nk; k++) {
        fputs(k ? ", " : "", f);
        json_string(f, axis_key(d, k));
    }
    fputs("],\n  \"points\": [\n", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "    {\"point\": %d, \"dir\": \"point-%03d\", \"values\": {", i, i);
        for (int k = 0; k < nk; k++) {
            const char *kv = vals[(size_t)i * nk + k], *eq = strchr(kv, '=');
            fprintf(f, "%s\"%.*s\": ", k ? ", " : "", (int)(eq - kv), kv);
            json_string(f, eq + 1);
        }
        fprintf(f, "}}%s\n", i + 1 < n ? "," : "");
    }
    fputs("  ]\n}\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sweep.json", d->dir);
    int rc = launch_write_file(path, buf, len, err, errlen);
    free(buf);
    return rc;
}

/* dir, and each new point's directory, can be made: checked before
 * anything is written, and by a dry run, which refuses what the run would */
static int dirs_creatable(const sweep_def *d, const launch_spec *specs, const sweep_point_state *have, int n,
                          char *err, size_t errlen) {
    char msg[SPEC_ERR_MAX];
    if (launch_dir_creatable("dir", d->dir, msg, sizeof msg))
        return launch_errf(err, errlen, "%s:%d:%d: %s", d->path, d->dir_line, d->dir_col, msg);
    for (int i = 0; i < n; i++)
        if (have[i] == SWEEP_POINT_NEW && launch_dir_creatable("run.dir", specs[i].spec.run_dir, msg, sizeof msg))
            return launch_errf(err, errlen, "%s: point %d: %s", d->path, i, msg);
    return 0;
}

int sweep_prepare(const sweep_def *d, int check, int dry_run, launch_spec **specs_out, sweep_point_state **have_out,
                  char *err, size_t errlen) {
    int n = sweep_npoints(d), nk = d->ngrid + d->nrandom;
    launch_spec *specs = calloc((size_t)n, sizeof *specs);
    sweep_point_state *have = calloc((size_t)n, sizeof *have);
    char **vals = calloc((size_t)n * (nk ? nk : 1), sizeof *vals);
    char msg[SPEC_ERR_MAX];
    int rc = 0;
    if (!specs || !vals || !have) return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < n && !rc; i++) {
        const char *sets[LAUNCH_MAX_SETS];
        char rundir[LAUNCH_PATH_MAX + 32];
        int ns = 0;
        for (int k = 0; k < d->nsets; k++) sets[ns++] = d->sets[k]; /* nsets <= SWEEP_MAX_SETS: all fit */
        sweep_point(d, i, vals + (size_t)i * nk);
        for (int k = 0; k < nk; k++) sets[ns++] = vals[(size_t)i * nk + k];
        snprintf(rundir, sizeof rundir, "run.dir=%s/point-%03d", d->dir, i);
        sets[ns++] = rundir;
        rc = launch_spec_load(&specs[i], d->base, sets, ns, msg, sizeof msg);
        if (!rc && check) rc = launch_spec_check(&specs[i], check, msg, sizeof msg);
        specs[i].nsets = 0; /* the sets' storage does not outlive this loop */
        if (rc) point_error(d, i, vals + (size_t)i * nk, msg, err, errlen);
    }
    if (!rc && d->nrandom && n > 1) warn_repeats(d, specs, n);
    if (!rc) rc = existing_points(d, specs, n, have, err, errlen);
    if (!rc) rc = dirs_creatable(d, specs, have, n, err, errlen);
    if (!rc && dry_run) print_points(d, vals, have, n);
    if (!rc && !dry_run) {
        char path[LAUNCH_PATH_MAX + 32];
        char *buf = NULL;
        size_t len = 0;
        rc = launch_mkdirs(d->dir, err, errlen);
        snprintf(path, sizeof path, "%s/sweep.yaml", d->dir);
        if (!rc) rc = launch_write_file(path, d->text, strlen(d->text), err, errlen);
        if (!rc) rc = write_sweep_json(d, vals, n, err, errlen);
        /* points.csv: point,dir,KEY... (what `results` reads back) */
        FILE *f = rc ? NULL : open_memstream(&buf, &len);
        if (f) {
            sweep_points_csv(f, d);
            fclose(f);
            snprintf(path, sizeof path, "%s/points.csv", d->dir);
            rc = launch_write_file(path, buf, len, err, errlen);
            free(buf);
        }
        for (int i = 0; i < n && !rc; i++) /* a point's run keeps the files it started with */
            if (have[i] == SWEEP_POINT_NEW) rc = launch_prepare_dir(&specs[i], err, errlen);
    }
    for (size_t j = 0; j < (size_t)n * nk; j++) free(vals[j]);
    free(vals);
    if (rc) {
        sweep_specs_free(specs, n);
        free(have);
        return -1;
    }
    if (specs_out) *specs_out = specs;
    else sweep_specs_free(specs, n);
    if (have_out) *have_out = have;
    else free(have);
    return 0;
}
