/* test_sweep.c - sweep files in one process: expansion (grid x random,
 * reproducible draws, the distributions' shapes), the file's errors with
 * their positions, the limit on set: and --set keys, and old sweep
 * directories read back as the build that ran them did. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "testutil.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/test_sweep_XXXXXX";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* a sweep file over a base spec in tmpdir; returns its path */
static const char *sweep_file(const char *body) {
    static char path[256];
    char base[256], text[4096];
    snprintf(base, sizeof base, "%s/base.yaml", tmpdir);
    write_text(base, "train.steps: 10\n");
    snprintf(path, sizeof path, "%s/sweep.yaml", tmpdir);
    snprintf(text, sizeof text, "base: %s\ndir: %s/sw\n%s", base, tmpdir, body);
    write_text(path, text);
    return path;
}

static void free_point(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
}

static void test_sweep_grid_x_random(void) {
    const char *p = sweep_file("grid:\n  optim.lr: [1e-3, 5e-4]\n  ema.start: [0.99, 0.995, 0.996]\n"
                               "random:\n  seed: 7\n  count: 4\n  keys:\n"
                               "    optim.warmup_frac: {uniform: [0.0, 0.1]}\n"
                               "    optim.wd_end: {log_uniform: [0.01, 1]}\n"
                               "    model.depth: {int_uniform: [2, 4]}\n"
                               "    loss.type: {choice: [smooth_l1, l2]}\n");
    sweep_def d, d2;
    char err[SPEC_ERR_MAX] = "";
    int rc = sweep_load(&d, p, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(sweep_npoints(&d), 2 * 3 * 4);
    CU_ASSERT_EQUAL(d.ngrid, 2);
    CU_ASSERT_EQUAL(d.nrandom, 4);
    /* point i = grid index * count + draw; the last grid key varies fastest */
    static const char *const want_grid[6][2] = {
        {"optim.lr=1e-3", "ema.start=0.99"}, {"optim.lr=1e-3", "ema.start=0.995"}, {"optim.lr=1e-3", "ema.start=0.996"},
        {"optim.lr=5e-4", "ema.start=0.99"}, {"optim.lr=5e-4", "ema.start=0.995"}, {"optim.lr=5e-4", "ema.start=0.996"}};
    CU_ASSERT_EQUAL_FATAL(sweep_load(&d2, p, err, sizeof err), 0);
    int seen_l2 = 0, seen_sl1 = 0, depth_seen[5] = {0};
    for (int i = 0; i < sweep_npoints(&d); i++) {
        char *a[8], *b[8];
        int n = sweep_point(&d, i, a), n2 = sweep_point(&d2, i, b);
        CU_ASSERT_EQUAL_FATAL(n, 6);
        CU_ASSERT_EQUAL(n2, 6);
        CU_ASSERT_STRING_EQUAL(a[0], want_grid[i / 4][0]);
        CU_ASSERT_STRING_EQUAL(a[1], want_grid[i / 4][1]);
        for (int k = 0; k < n; k++) CU_ASSERT_STRING_EQUAL(a[k], b[k]); /* reproducible */
        double w = strtod(strchr(a[2], '=') + 1, NULL), wd = strtod(strchr(a[3], '=') + 1, NULL);
        CU_ASSERT(strncmp(a[2], "optim.warmup_frac=", 18) == 0 && w >= 0 && w <= 0.1);
        CU_ASSERT(strncmp(a[3], "optim.wd_end=", 13) == 0 && wd >= 0.01 && wd <= 1);
        int depth = atoi(strchr(a[4], '=') + 1);
        CU_ASSERT(depth >= 2 && depth <= 4);
        if (depth >= 2 && depth <= 4) depth_seen[depth] = 1;
        seen_l2 += !strcmp(a[5], "loss.type=l2");
        seen_sl1 += !strcmp(a[5], "loss.type=smooth_l1");
        free_point(a, n);
        free_point(b, n2);
    }
    CU_ASSERT_EQUAL(seen_l2 + seen_sl1, 24);
    CU_ASSERT(seen_l2 > 0 && seen_sl1 > 0);
    CU_ASSERT(depth_seen[2] && depth_seen[3] && depth_seen[4]);
    sweep_free(&d2);
    /* another seed, other draws */
    p = sweep_file("random:\n  seed: 8\n  count: 4\n  keys:\n    optim.warmup_frac: {uniform: [0.0, 0.1]}\n");
    CU_ASSERT_EQUAL_FATAL(sweep_load(&d2, p, err, sizeof err), 0);
    CU_ASSERT_EQUAL(sweep_npoints(&d2), 4);
    char *a[8], *b[8];
    sweep_point(&d, 0, a);
    sweep_point(&d2, 0, b);
    CU_ASSERT_STRING_NOT_EQUAL(a[2], b[0]);
    free_point(a, 6);
    free_point(b, 1);
    sweep_free(&d);
    sweep_free(&d2);
}

/* log_uniform over [1e-4, 1e-2]: half the draws fall below 1e-3; uniform
 * over [0, 1]: the mean is 1/2. 2000 draws: 4 standard errors of slack. */
static void test_sweep_distributions(void) {
    const char *p = sweep_file("random:\n  seed: 1\n  count: 2000\n  keys:\n"
                               "    optim.lr: {log_uniform: [1e-4, 1e-2]}\n    optim.warmup_frac: {uniform: [0, 1]}\n");
    sweep_def d;
    char err[SPEC_ERR_MAX] = "";
    CU_ASSERT_EQUAL_FATAL(sweep_load(&d, p, err, sizeof err), 0);
    int below = 0;
    double sum = 0;
    for (int i = 0; i < 2000; i++) {
        char *v[2];
        sweep_point(&d, i, v);
        below += strtod(strchr(v[0], '=') + 1, NULL) < 1e-3;
        sum += strtod(strchr(v[1], '=') + 1, NULL);
        free_point(v, 2);
    }
    CU_ASSERT(fabs(below / 2000.0 - 0.5) < 4 * 0.5 / sqrt(2000));
    CU_ASSERT(fabs(sum / 2000 - 0.5) < 4 * sqrt(1.0 / 12) / sqrt(2000));
    sweep_free(&d);
}

static void test_sweep_errors(void) {
    static const struct {
        const char *body, *want; /* the body starts at line 3 */
    } rows[] = {
        {"grid:\n  optim.lrr: [1]\n", "sweep.yaml:4:3: grid.optim.lrr: not a spec key"},
        {"grid:\n  optim.lr: [1, abc]\n", "sweep.yaml:4:17: grid.optim.lr: --set optim.lr=abc: expected a finite number"},
        {"grid:\n  model.depth: [2, 99]\n", "sweep.yaml:4:20: grid.model.depth: --set model.depth=99: must be in [1, 64]"},
        {"grid:\n  optim.lr: []\n", "sweep.yaml:4:13: grid.optim.lr: the list is empty"},
        {"grid:\n  optim.lr: 0.1\n", "sweep.yaml:4:13: grid.optim.lr: expected a list of values"},
        {"random:\n  count: 2\n  keys:\n    optim.lr: {normal: [0, 1]}\n",
         "sweep.yaml:6:16: random.keys.optim.lr: unknown distribution 'normal'"},
        {"random:\n  count: 2\n  keys:\n    optim.lr: {log_uniform: [0, 1]}\n",
         "sweep.yaml:6:30: random.keys.optim.lr: log_uniform needs low > 0"},
        {"random:\n  count: 0\n  keys:\n    optim.lr: {uniform: [0.1, 1]}\n",
         "sweep.yaml:4:10: random.count: expected an integer in [1, 10000]"},
        {"random:\n  keys:\n    optim.lr: {uniform: [0.1, 1]}\n", "sweep.yaml:4:3: random: missing count"},
        {"paralel: 2\n", "sweep.yaml:3:1: paralel: unknown key"},
        {"set: {optim.lr: 0}\n", "sweep.yaml:3:17: set.optim.lr: --set optim.lr=0: must be in (0, 10]"},
        {"grid: {optim.lr: [1e-3]}\nrandom: {count: 2, keys: {optim.lr: {uniform: [1e-4, 1e-3]}}}\n",
         "sweep.yaml:4:27: random.keys.optim.lr: varied twice (first at line 3, grid)"},
        {"set: {optim.lr: 0.1}\ngrid: {optim.lr: [0.1, 0.2]}\n",
         "sweep.yaml:3:7: set.optim.lr: both in set and varied (grid, line 4)"},
        {"grid:\n  optim.lr: [0.1, 0.2]\nset:\n  optim.lr: 0.1\n",
         "sweep.yaml:6:3: set.optim.lr: both in set and varied (grid, line 4)"},
        /* a key twice in one mapping: refused as a spec file refuses it (the
         * last one won unseen, or two sections merged) */
        {"set:\n  optim.lr: 0.1\n  ema.start: 0.99\n  optim.lr: 0.2\n",
         "sweep.yaml:6:3: set.optim.lr: duplicate key (first at line 4)"},
        {"grid:\n  optim.lr: [0.1]\n  optim.lr: [0.2]\n", "sweep.yaml:5:3: grid.optim.lr: duplicate key (first at line 4)"},
        {"random:\n  count: 2\n  keys:\n    optim.lr: {uniform: [0.1, 1]}\n    optim.lr: {uniform: [0.2, 1]}\n",
         "sweep.yaml:7:5: random.keys.optim.lr: duplicate key (first at line 6)"},
        {"random:\n  count: 2\n  count: 3\n  keys: {optim.lr: {uniform: [0.1, 1]}}\n",
         "sweep.yaml:5:3: random.count: duplicate key (first at line 4)"},
        {"grid: {optim.lr: [0.1]}\ngrid: {ema.start: [0.99]}\n", "sweep.yaml:4:1: grid: duplicate key (first at line 3)"},
        {"set: {optim.lr: 0.1}\nset: {optim.lr: 0.2}\n", "sweep.yaml:4:1: set: duplicate key (first at line 3)"},
        {"parallel: 1\nparallel: 2\n", "sweep.yaml:4:1: parallel: duplicate key (first at line 3)"},
        {"dir: elsewhere\n", "sweep.yaml:3:1: dir: duplicate key (first at line 2)"},
        {"grid: {run.dir: [/tmp/a, /tmp/b]}\n", "run.dir cannot be varied: each point runs in DIR/point-NNN"},
        {"set: {run.dir: /tmp/a}\n", "set.run.dir: each point runs in DIR/point-NNN"},
        {"grid:\n  optim.lr: [0.001, 2e-3, 1e-3]\n",
         "sweep.yaml:4:27: grid.optim.lr: 1e-3 is listed twice (also at 4:14): those points would be the same run"},
        {"grid:\n  loss.type: [l2, smooth_l1, l2]\n", "sweep.yaml:4:30: grid.loss.type: l2 is listed twice (also at 4:15)"},
    };
    for (size_t i = 0; i < COUNT(rows); i++) {
        sweep_def d;
        char err[SPEC_ERR_MAX] = "";
        const char *p = sweep_file(rows[i].body);
        CU_ASSERT_EQUAL(sweep_load(&d, p, err, sizeof err), -1);
        int ok = strstr(err, rows[i].want) != NULL;
        if (!ok) fprintf(stderr, "\n  row %zu want: %s\n         got:  %s\n", i, rows[i].want, err);
        CU_ASSERT(ok);
        CU_ASSERT_PTR_NULL(strchr(err, '\n'));
        sweep_free(&d);
    }
    /* dir may not be a run directory: its points would land inside that run */
    char rs[512], err[SPEC_ERR_MAX] = "";
    snprintf(rs, sizeof rs, "%s/sw", tmpdir);
    mkdir(rs, 0755);
    snprintf(rs, sizeof rs, "%s/sw/spec.resolved.yaml", tmpdir);
    write_text(rs, "train.steps: 10\n");
    sweep_def d;
    CU_ASSERT_EQUAL(sweep_load(&d, sweep_file("grid: {optim.lr: [0.1]}\n"), err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sw is a run directory"));
    sweep_free(&d);
    unlink(rs);
}

/* set: with n keys (train.steps: 1, 2, ..., n), base and dir first */
static const char *sweep_sets_file(int n) {
    static char path[256];
    char base[256];
    snprintf(base, sizeof base, "%s/base.yaml", tmpdir);
    write_text(base, "train.steps: 10\n");
    snprintf(path, sizeof path, "%s/sweep.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "base: %s\ndir: %s/sw\ngrid: {optim.lr: [0.1]}\nset:\n", base, tmpdir);
    for (int i = 1; i <= n; i++) fprintf(f, "  train.steps: %d\n", i);
    fclose(f);
    return path;
}

/* every key a sweep accepts in set: reaches its points (the last of 256
 * was once key 223); one past the limit is refused at its line. A new
 * sweep holds each key once (122 spec keys), so these are read as an old
 * sweep directory's sweep.yaml is, where a key set again won. */
static void test_sweep_set_limit(void) {
    sweep_def d;
    launch_spec *specs = NULL;
    sweep_point_state *have = NULL;
    char err[SPEC_ERR_MAX] = "";
    CU_ASSERT_EQUAL_FATAL(sweep_read(&d, sweep_sets_file(SWEEP_MAX_SETS), err, sizeof err), 0);
    CU_ASSERT_EQUAL(d.nsets, SWEEP_MAX_SETS);
    int rc = sweep_prepare(&d, 0, 1, &specs, &have, err, sizeof err); /* dry run: prints, writes nothing */
    if (rc) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(specs[0].spec.train.steps, SWEEP_MAX_SETS); /* the last set: line */
    sweep_specs_free(specs, sweep_npoints(&d));
    free(have);
    const char *more[] = {"train.epochs=2"};
    CU_ASSERT_EQUAL(sweep_add_sets(&d, more, 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sweep --set train.epochs=2: more than"));
    sweep_free(&d);
    CU_ASSERT_EQUAL(sweep_read(&d, sweep_sets_file(LAUNCH_MAX_SETS), err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "sweep.yaml:%d:3: set.train.steps: more than %d keys", 4 + SWEEP_MAX_SETS + 1,
             SWEEP_MAX_SETS);
    if (!strstr(err, want)) fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    sweep_free(&d);
}

/* A sweep directory made by an earlier build may hold a sweep.yaml with a
 * key twice: status and results read it back (sweep_read) as that build
 * ran it, the last value winning; running it as a new sweep is refused */
static void test_sweep_old_duplicates(void) {
    const char *p = sweep_file("parallel: 1\nset:\n  optim.lr: 0.1\n  optim.lr: 0.2\ngrid: {ema.start: [0.99]}\n"
                               "grid: {model.depth: [2, 3]}\nparallel: 3\n");
    sweep_def d;
    launch_spec *specs = NULL;
    char err[SPEC_ERR_MAX] = "";
    CU_ASSERT_EQUAL(sweep_load(&d, p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "sweep.yaml:6:3: set.optim.lr: duplicate key (first at line 5)"));
    sweep_free(&d);
    int rc = sweep_read(&d, p, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(d.parallel, 3);
    CU_ASSERT_EQUAL(d.ngrid, 2); /* the two grid: sections, merged */
    CU_ASSERT_EQUAL(sweep_npoints(&d), 2);
    CU_ASSERT_EQUAL_FATAL(sweep_prepare(&d, 0, 1, &specs, NULL, err, sizeof err), 0);
    CU_ASSERT_DOUBLE_EQUAL(specs[1].spec.optim.lr, 0.2, 1e-12);
    CU_ASSERT_EQUAL(specs[1].spec.model.depth, 3);
    sweep_specs_free(specs, sweep_npoints(&d));
    sweep_free(&d);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"sweep_grid_x_random", test_sweep_grid_x_random},
        {"sweep_distributions", test_sweep_distributions},
        {"sweep_errors", test_sweep_errors},
        {"sweep_set_limit", test_sweep_set_limit},
        {"sweep_old_duplicates", test_sweep_old_duplicates},
    };
    int rc = test_main("sweep", cases, (int)COUNT(cases));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
