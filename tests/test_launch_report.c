/* test_launch_report.c - what jepa-launch reads back from run directories,
 * in one process (starting runs: test_launch.c): the JSON of summary.json
 * and metrics.jsonl, the bounded reader, the results table's order and
 * CSV, each objective's figures, the caveat on final losses ranked across
 * loss formulas, the state of a run trained without the launcher (no
 * state file), where a resume of a stopped run starts, and numbers in a
 * run's files that no trainer writes (given twice, out of range). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data_kind.h"
#include "launch.h"
#include "testutil.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/test_launch_report_XXXXXX";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_json_number(void) {
    double v = 0;
    const char *j = "{\"step\": 12, \"loss\": 0.25, \"lr\":1e-3, \"note\": \"loss\"}";
    CU_ASSERT(launch_json_number(j, "step", &v) == 0 && v == 12);
    CU_ASSERT(launch_json_number(j, "loss", &v) == 0 && v == 0.25);
    CU_ASSERT(launch_json_number(j, "lr", &v) == 0 && v == 1e-3);
    CU_ASSERT_EQUAL(launch_json_number(j, "los", &v), -1);
    CU_ASSERT_EQUAL(launch_json_number(j, "note", &v), -1);
    /* a key twice, or a number no double holds, is no figure (it took
     * the first, and 1e400 as inf); nan and inf as printf writes them are */
    v = 7;
    CU_ASSERT_EQUAL(launch_json_number("{\"a\": 1, \"b\": 2, \"a\": 1}", "a", &v), LAUNCH_JSON_TWICE);
    CU_ASSERT_EQUAL(launch_json_number("{\"a\": 1e400}", "a", &v), LAUNCH_JSON_RANGE);
    CU_ASSERT_EQUAL(launch_json_number("{\"a\": -1e400}", "a", &v), LAUNCH_JSON_RANGE);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT(launch_json_number("{\"a\": -inf}", "a", &v) == 0 && isinf(v) && v < 0);
    CU_ASSERT(launch_json_number("{\"a\": nan}", "a", &v) == 0 && isnan(v));
    CU_ASSERT(launch_json_number("{\"a\": 1.7976931348623157e308}", "a", &v) == 0 && v == 1.7976931348623157e308);
    CU_ASSERT_EQUAL(launch_json_number("{\"a\": null}", "a", &v), LAUNCH_JSON_NONE);
    CU_ASSERT_EQUAL(launch_json_number("{\"a\": \"1\"}", "a", &v), LAUNCH_JSON_NONE);
    char s[16];
    CU_ASSERT(launch_json_string("{\"o\": \"world\", \"n\": 1}", "o", s, sizeof s) == 0 && !strcmp(s, "world"));
    CU_ASSERT_EQUAL(launch_json_string("{\"o\": \"a\", \"o\": \"b\"}", "o", s, sizeof s), LAUNCH_JSON_TWICE);
    CU_ASSERT_EQUAL(launch_json_string("{\"o\": 1}", "o", s, sizeof s), LAUNCH_JSON_NONE);
}

/* summary.json must be one whole JSON object: every cut of a good one fails */
static void test_json_object(void) {
    const char *good = "{\n  \"final_loss\": 0.25,\n  \"probe_acc\": -1,\n  \"x\": [1, 2.5e-3, -0.0, true, null],\n"
                       "  \"s\": \"a\\\"b\\u00e9\",\n  \"nested\": {\"k\": nan, \"l\": -inf}\n}\n";
    CU_ASSERT_EQUAL(launch_json_object(good), 0);
    char cut[256];
    size_t n = strlen(good), fails = 0;
    for (size_t k = 0; k + 1 < n; k++) { /* all but the trailing newline */
        snprintf(cut, sizeof cut, "%.*s", (int)k, good);
        fails += launch_json_object(cut) != 0;
    }
    CU_ASSERT_EQUAL(fails, n - 1);
    static const char *const bad[] = {"[1]", "{} {}", "{\"a\" 1}", "{\"a\": 01}", "{\"a\": 1,}", "{\"a\": .5}",
                                      "{\"a\": \"\\x\"}", "{\"a\": tru}", "{'a': 1}", "{\"a\": 1e}"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        int rc = launch_json_object(bad[i]);
        if (rc == 0) fprintf(stderr, "\n  accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
    }
}

/* the one bounded reader: regular files up to max bytes, else one line */
static void test_read_bounded(void) {
    char path[512], err[SPEC_ERR_MAX] = "", *text = NULL, want[600];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/ten", tmpdir);
    write_text(path, "0123456789");
    CU_ASSERT(spec_read_file(path, 10, "thing", &text, &len, err, sizeof err) == 0 && len == 10 &&
              !strcmp(text, "0123456789"));
    free(text);
    CU_ASSERT_EQUAL(spec_read_file(path, 9, "thing", &text, &len, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: larger than 9 bytes; not a thing?", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT_EQUAL(spec_read_file("/dev/zero", 1 << 20, "thing", &text, &len, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "/dev/zero: not a regular file (a device, FIFO or socket may never end)");
    snprintf(path, sizeof path, "%s/fifo", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    CU_ASSERT_EQUAL(spec_read_file(path, 1 << 20, "thing", &text, &len, err, sizeof err), -1); /* no hang */
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* the trainer's and the launcher's other inputs (checkpoints, latest): the same refusals */
    CU_ASSERT(spec_fopen_regular(path, err, sizeof err) == NULL && errno == EINVAL); /* no hang */
    snprintf(want, sizeof want, "%s: not a regular file (a device, FIFO or socket may never end)", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    unlink(path);
    CU_ASSERT(spec_fopen_regular("/dev/zero", err, sizeof err) == NULL && errno == EINVAL);
    CU_ASSERT(spec_fopen_regular(tmpdir, err, sizeof err) == NULL && errno == EISDIR);
    snprintf(path, sizeof path, "%s/ten", tmpdir);
    FILE *f = spec_fopen_regular(path, err, sizeof err);
    char got[16] = "";
    CU_ASSERT(f && !(fcntl(fileno(f), F_GETFL) & O_NONBLOCK) && fgets(got, sizeof got, f) && !strcmp(got, "0123456789"));
    if (f) fclose(f);
    CU_ASSERT_EQUAL(spec_read_file(tmpdir, 1 << 20, "thing", &text, &len, err, sizeof err), -1);
    snprintf(want, sizeof want, "cannot read %s: Is a directory", tmpdir);
    CU_ASSERT_STRING_EQUAL(err, want);
    snprintf(path, sizeof path, "%s/none", tmpdir);
    CU_ASSERT(spec_read_file(path, 1 << 20, "thing", &text, &len, err, sizeof err) == -1 && errno == ENOENT);
}

/* a row of objective obj: final loss, headline figure fig (NAN: none) */
static result_row row_of(const char *obj, int point, const char *v, double loss, double fig, const char *state) {
    result_row r = {.point = point};
    r.values = malloc(sizeof *r.values);
    r.values[0] = strdup(v);
    r.st.obj = launch_objective_find(obj);
    r.st.obj_known = 1;
    r.st.final_loss = loss;
    for (int k = 0; k < LAUNCH_MAX_FIGS; k++) r.st.fig[k] = NAN;
    r.st.fig[0] = fig;
    r.st.step = isnan(loss) ? -1 : 100;
    snprintf(r.st.state, sizeof r.st.state, "%s", state);
    return r;
}

static result_row row(int point, const char *v, double loss, double acc, const char *state) {
    return row_of("ijepa", point, v, loss, acc, state);
}

static void test_results_order_and_csv(void) {
    result_row rows[] = {row(0, "1e-3", 0.30, 0.70, "done"), row(1, "5e-4", NAN, NAN, "running pid=1"),
                         row(2, "2e-3", 0.50, 0.80, "done"), row(3, "a,\"b\"", 0.10, 0.70, "done")};
    const char *keys[] = {"optim.lr"};
    launch_sort_results(rows, 4);
    /* probe accuracy decides (0.80 first); its ties by point; unfinished last */
    CU_ASSERT(rows[0].point == 2 && rows[1].point == 0 && rows[2].point == 3 && rows[3].point == 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    launch_print_results(f, keys, 1, rows, 4, 1);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "point,optim.lr,final_loss,probe_acc,steps,status\n"
                                "point-002,2e-3,0.500000,0.8000,100,done\n"
                                "point-000,1e-3,0.300000,0.7000,100,done\n"
                                "point-003,\"a,\"\"b\"\"\",0.100000,0.7000,100,done\n"
                                "point-001,5e-4,-,-,-,running pid=1\n");
    free(buf);
    /* without any probe: final loss, lowest first */
    for (int i = 0; i < 4; i++) rows[i].st.fig[0] = NAN;
    launch_sort_results(rows, 4);
    CU_ASSERT(rows[0].point == 3 && rows[1].point == 0 && rows[2].point == 2 && rows[3].point == 1);
    for (int i = 0; i < 4; i++) {
        free(rows[i].values[0]);
        free(rows[i].values);
    }
}

/* a run given to results alone is labelled by its name, never "point 0";
 * a sweep's rows by their directory, point-NNN, as status names them (it
 * said 0, 1, ...), in the table and the CSV */
static void test_results_run_label(void) {
    result_row r = row(0, "x", 0.25, NAN, "done");
    r.name = "lr-sweep,b";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    launch_print_results(f, NULL, 0, &r, 1, 1);
    launch_print_results(f, NULL, 0, &r, 1, 0);
    r.name = NULL;
    launch_print_results(f, NULL, 0, &r, 1, 1);
    r.point = 1234; /* a sweep holds up to 10000 points: the column widens */
    launch_print_results(f, NULL, 0, &r, 1, 0);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "run,final_loss,probe_acc,steps,status\n"
                                "\"lr-sweep,b\",0.250000,-,100,done\n"
                                "run          final_loss  probe_acc     steps  status\n"
                                "lr-sweep,b     0.250000          -       100  done\n"
                                "point,final_loss,probe_acc,steps,status\n"
                                "point-000,0.250000,-,100,done\n"
                                "point        final_loss  probe_acc     steps  status\n"
                                "point-1234     0.250000          -       100  done\n");
    free(buf);
    free(r.values[0]);
    free(r.values);
}

/* every objective the spec takes has a row; its panels start with the
 * loss (metrics.dat rows are lines with a step and a loss), and its
 * headline has a panel */
static void test_objective_table(void) {
    static const char *const names[] = {"ijepa", "lejepa", "world"};
    char err[SPEC_ERR_MAX], set[64];
    for (size_t i = 0; i < COUNT(names); i++) {
        jepa_spec s;
        spec_defaults(&s);
        snprintf(set, sizeof set, "objective=%s", names[i]);
        CU_ASSERT_EQUAL(spec_set(&s, set, err, sizeof err), 0);
        const launch_objective *o = launch_objective_find(s.objective);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_STRING_EQUAL(o->panels[0].key, "loss");
        int head = 0;
        for (int k = 0; k < launch_objective_npanels(o); k++) head |= !strcmp(o->panels[k].key, o->figs[0]);
        CU_ASSERT(head && o->nfigs >= 1 && o->nfigs <= LAUNCH_MAX_FIGS && o->nrequired <= o->nfigs);
    }
    CU_ASSERT_PTR_NULL(launch_objective_find("bogus"));
    /* an unknown objective in the spec would be refused before this */
    jepa_spec s;
    spec_defaults(&s);
    CU_ASSERT_EQUAL(spec_set(&s, "objective=bogus", err, sizeof err), -1);
}

/* the kind of records a schema holds (data_kind.c: jepa-train's rule,
 * which the launcher checks data.train / data.test against) and the kind
 * each objective's row asks for */
static void test_data_kind(void) {
    shard_schema im = {.height = 8, .width = 8, .channels = 1, .dtype = SHARD_DTYPE_U8};
    CU_ASSERT_EQUAL(data_kind_of(&im), DATA_KIND_IMAGES);
    im.label = SHARD_LABEL_U8, im.num_classes = 10; /* labels or none: images all the same */
    CU_ASSERT_EQUAL(data_kind_of(&im), DATA_KIND_IMAGES);
    shard_schema ep = {.nfields = 3,
                       .fields = {{"frames", SHARD_DTYPE_U8, 4, {16, 1, 32, 32}},
                                  {"actions", SHARD_DTYPE_F32, 2, {15, 2}},
                                  {"state", SHARD_DTYPE_F32, 2, {16, 2}}}};
    CU_ASSERT_EQUAL(data_kind_of(&ep), DATA_KIND_EPISODES);
    shard_schema x = ep; /* the fields in another order, one more field: still episodes */
    x.fields[0] = ep.fields[2], x.fields[2] = ep.fields[0];
    x.fields[3] = (shard_field){"reward", SHARD_DTYPE_F32, 1, {15}};
    x.nfields = 4;
    CU_ASSERT_EQUAL(data_kind_of(&x), DATA_KIND_EPISODES);
    x = ep, x.nfields = 2; /* no state */
    CU_ASSERT_EQUAL(data_kind_of(&x), DATA_KIND_OTHER);
    x = ep, x.fields[1].dtype = SHARD_DTYPE_U8; /* u8 actions */
    CU_ASSERT_EQUAL(data_kind_of(&x), DATA_KIND_OTHER);
    x = ep, x.fields[0].ndim = 3, x.fields[0].shape[3] = 0; /* frames without a channel dim */
    CU_ASSERT_EQUAL(data_kind_of(&x), DATA_KIND_OTHER);
    CU_ASSERT_STRING_EQUAL(data_kind_name(DATA_KIND_IMAGES), "u8 images");
    CU_ASSERT_STRING_EQUAL(data_kind_name(DATA_KIND_EPISODES), "world episodes");
    CU_ASSERT_EQUAL(launch_objective_find("ijepa")->data, DATA_KIND_IMAGES);
    CU_ASSERT_EQUAL(launch_objective_find("lejepa")->data, DATA_KIND_IMAGES);
    CU_ASSERT_EQUAL(launch_objective_find("world")->data, DATA_KIND_EPISODES);
}

/* a world sweep ranks by pos_r2 (a negative R^2 is a figure); a sweep
 * mixing families ranks each among its own, image first (table order) */
static void test_results_world(void) {
    result_row rows[] = {row_of("world", 0, "a", 0.10, -0.5, "done"), row_of("world", 1, "b", 0.30, 0.90, "done"),
                         row_of("ijepa", 2, "c", 0.20, 0.60, "done"), row_of("world", 3, "d", 0.05, NAN, "done"),
                         row_of("lejepa", 4, "e", 0.40, 0.70, "done"), row_of("world", 5, "f", NAN, NAN, "pending")};
    const char *keys[] = {"k"};
    launch_sort_results(rows, 6);
    int want[] = {4, 2, 1, 0, 3, 5};
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(rows[i].point, want[i]);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    launch_print_results(f, keys, 1, rows + 2, 2, 1); /* world rows only */
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "point,k,final_loss,pos_r2,pos_err,pred4_pos_r2,latent_err_h8,steps,status\n"
                                "point-001,b,0.300000,0.9000,-,-,-,100,done\n"
                                "point-000,a,0.100000,-0.5000,-,-,-,100,done\n");
    free(buf);
    for (int i = 0; i < 6; i++) {
        free(rows[i].values[0]);
        free(rows[i].values);
    }
}

/* final losses ranked across values of a key that changes the loss's
 * formula get one caveat naming the keys; none across families (ranked
 * apart), when the headline ranks them, or for a key such as optim.lr */
static void test_results_loss_caveat(void) {
    result_row rows[] = {row_of("ijepa", 0, "ijepa", 0.30, NAN, "done"),
                         row_of("lejepa", 1, "lejepa", 0.10, NAN, "done"),
                         row_of("world", 2, "world", 0.05, NAN, "done")};
    const char *keys[] = {"objective"}, *lr[] = {"optim.lr"};
    char out[SPEC_ERR_MAX];
    CU_ASSERT_EQUAL(launch_loss_caveat(keys, 1, rows, 3, out, sizeof out), 1);
    CU_ASSERT_STRING_EQUAL(out, "points ranked by final_loss differ in objective, which changes what the loss "
                                "measures: their losses are not comparable (eval.probe: true ranks them by probe_acc)");
    CU_ASSERT_EQUAL(launch_loss_caveat(lr, 1, rows, 3, out, sizeof out), 0);
    CU_ASSERT_EQUAL(launch_loss_caveat(keys, 1, rows + 1, 2, out, sizeof out), 0); /* lejepa and world */
    rows[0].st.fig[0] = 0.7;
    rows[1].st.fig[0] = 0.8;
    CU_ASSERT_EQUAL(launch_loss_caveat(keys, 1, rows, 3, out, sizeof out), 0);
    for (int i = 0; i < 3; i++) {
        free(rows[i].values[0]);
        free(rows[i].values);
    }
    /* final_loss is the mean over the last train.log_every steps: points
     * that differ in it average over other windows */
    result_row le[] = {row_of("ijepa", 0, "10", 0.30, NAN, "done"), row_of("ijepa", 1, "20", 0.20, NAN, "done")};
    const char *lek[] = {"train.log_every"};
    CU_ASSERT_EQUAL(launch_loss_caveat(lek, 1, le, 2, out, sizeof out), 1);
    CU_ASSERT_STRING_EQUAL(out, "points ranked by final_loss differ in train.log_every, which changes what the loss "
                                "measures: their losses are not comparable (eval.probe: true ranks them by probe_acc)");
    for (int i = 0; i < 2; i++) {
        free(le[i].values[0]);
        free(le[i].values);
    }
}

/* a run trained without the launcher (no state file) says what its files
 * show: metrics.jsonl (even empty) or a checkpoint without summary.json
 * are unfinished (it said pending), neither is pending, summary.json is
 * done, and a state file is shown as it is */
static void test_status_unstated(void) {
    char rd[256], path[320];
    run_status st;
    snprintf(rd, sizeof rd, "%s/unstated", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(rd, 0700), 0);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", rd);
    write_text(path, "seed: 0\n");
    CU_ASSERT(launch_read_status(rd, &st) == 0 && !strcmp(st.state, "pending") && st.step == -1);
    snprintf(path, sizeof path, "%s/metrics.jsonl", rd);
    write_text(path, ""); /* what a jepa-train that met a corrupt shard in its first step leaves */
    CU_ASSERT_EQUAL(launch_read_status(rd, &st), 0);
    char want[400]; /* the advice names the run's directory (it said DIR) */
    snprintf(want, sizeof want, "unfinished (no step logged, no checkpoint: jepa-launch resume %s starts it over)", rd);
    CU_ASSERT_STRING_EQUAL(st.state, want);
    write_text(path, "{\"step\": 10, \"loss\": 0.3}\n{\"step\": 80, \"loss\": 0.2178}\n");
    CU_ASSERT_EQUAL(launch_read_status(rd, &st), 0);
    snprintf(want, sizeof want, "unfinished (no checkpoint: jepa-launch resume %s starts it over)", rd);
    CU_ASSERT_STRING_EQUAL(st.state, want);
    CU_ASSERT_EQUAL(st.step, 80);
    snprintf(path, sizeof path, "%s/checkpoints", rd);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    /* the newest checkpoint by its name's step; temp and corrupt files are none */
    const char *files[] = {"step-00000040.ckpt", "step-00000050.ckpt", "step-00000060.ckpt.tmp",
                           "step-00000070.ckpt.corrupt", "step-x.ckpt"};
    for (size_t i = 0; i < COUNT(files); i++) {
        snprintf(path, sizeof path, "%s/checkpoints/%s", rd, files[i]);
        write_text(path, "");
    }
    CU_ASSERT_EQUAL(launch_read_status(rd, &st), 0);
    snprintf(want, sizeof want, "unfinished (checkpoint at step 50; resume with jepa-launch resume %s or "
             "--set resume=auto)", rd);
    CU_ASSERT_STRING_EQUAL(st.state, want);
    snprintf(path, sizeof path, "%s/metrics.jsonl", rd);
    unlink(path); /* a checkpoint alone is progress too */
    CU_ASSERT(launch_read_status(rd, &st) == 0 && !strncmp(st.state, "unfinished (checkpoint at step 50;", 34));
    snprintf(path, sizeof path, "%s/state", rd);
    write_text(path, "stopped signal=15\n");
    CU_ASSERT(launch_read_status(rd, &st) == 0 && !strcmp(st.state, "stopped signal=15"));
    unlink(path);
    snprintf(path, sizeof path, "%s/summary.json", rd);
    write_text(path, "{\"objective\": \"ijepa\", \"final_loss\": 0.2, \"probe_acc\": -1, \"steps\": 100}\n");
    CU_ASSERT(launch_read_status(rd, &st) == 0 && !strcmp(st.state, "done") && st.step == 100);
}

/* a stopped, failed or stale run resumes from its newest checkpoint, not
 * from the step it logged last (status showed only that one, step 900,
 * where a resume goes back to 500); one with none starts over; a finished,
 * running, unfinished (its state says it) or damaged run says nothing */
static void test_status_resume_from(void) {
    char rd[256], path[320];
    run_status st;
    snprintf(rd, sizeof rd, "%s/stopped", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(rd, 0700), 0);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", rd);
    write_text(path, "seed: 0\n");
    snprintf(path, sizeof path, "%s/metrics.jsonl", rd);
    write_text(path, "{\"step\": 800, \"loss\": 0.3}\n{\"step\": 900, \"loss\": 0.2}\n");
    snprintf(path, sizeof path, "%s/checkpoints", rd);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/state", rd);
    write_text(path, "stopped signal=15\n");
    CU_ASSERT(launch_read_status(rd, &st) == 0 && st.step == 900 && st.resume_step == -1); /* none: starts over */
    const char *files[] = {"step-00000400.ckpt", "step-00000500.ckpt", "step-00000600.ckpt.tmp"};
    for (size_t i = 0; i < COUNT(files); i++) {
        snprintf(path, sizeof path, "%s/checkpoints/%s", rd, files[i]);
        write_text(path, "");
    }
    pid_t gone = fork(); /* a launcher pid that no longer runs: the run is stale */
    if (gone == 0) _exit(0);
    CU_ASSERT_FATAL(gone > 0 && waitpid(gone, NULL, 0) == gone);
    char stale[64], running[64];
    snprintf(stale, sizeof stale, "running pid=%d mpirun=%d attempt=1\n", (int)gone, (int)gone);
    snprintf(running, sizeof running, "running pid=%d mpirun=%d attempt=1\n", (int)getpid(), (int)getpid());
    struct {
        const char *state;
        long long from;
    } cases[] = {{"stopped signal=15\n", 500}, {"stopped status=75\n", 500}, {"failed status=1 restarts=3\n", 500},
                 {"failed status=3 (non-finite loss; not restarted)\n", 500}, {stale, 500},
                 {running, LAUNCH_RESUME_UNSAID}, {"submitted\n", LAUNCH_RESUME_UNSAID}};
    snprintf(path, sizeof path, "%s/state", rd);
    for (size_t i = 0; i < COUNT(cases); i++) {
        write_text(path, cases[i].state);
        CU_ASSERT_EQUAL(launch_read_status(rd, &st), 0);
        if (st.step != 900 || st.resume_step != cases[i].from)
            fprintf(stderr, "\n  %s: step %lld, resume_step %lld\n", cases[i].state, st.step, st.resume_step);
        CU_ASSERT(st.step == 900 && st.resume_step == cases[i].from);
    }
    unlink(path); /* no state: unfinished, and the state names the checkpoint */
    CU_ASSERT(launch_read_status(rd, &st) == 0 && st.resume_step == LAUNCH_RESUME_UNSAID &&
              !strncmp(st.state, "unfinished (checkpoint at step 500;", 34));
    write_text(path, "stopped signal=15\n");
    snprintf(path, sizeof path, "%s/summary.json", rd); /* cut short: damaged, nothing to resume said */
    write_text(path, "{\"final_loss\": 0.2,");
    CU_ASSERT(launch_read_status(rd, &st) == 0 && st.damaged[0] && st.resume_step == LAUNCH_RESUME_UNSAID);
    write_text(path, "{\"final_loss\": 0.2, \"probe_acc\": -1, \"steps\": 1000}\n"); /* finished: resume refuses it */
    CU_ASSERT(launch_read_status(rd, &st) == 0 && !st.damaged[0] && st.resume_step == LAUNCH_RESUME_UNSAID);
}

/* a summary.json or metrics.jsonl line holding a number given twice or
 * out of range is damaged, naming the file and key, and gives no figures
 * (probe_acc 1e400 was inf and headed the sweep; a key twice was taken) */
static void test_status_bad_numbers(void) {
    static const struct {
        const char *file, *text, *damaged; /* damaged "": whole, figures read */
    } cases[] = {
        {"summary.json", "\"probe_acc\": 1e400, \"steps\": 100",
         "summary.json: probe_acc: a number beyond a double's range"},
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 100, \"probe_acc\": 0.9",
         "summary.json: probe_acc given twice"},
        {"summary.json", "\"probe_acc\": 1.7, \"steps\": 100",
         "summary.json: probe_acc 1.7 out of range (from -1 to 1)"},
        {"summary.json", "\"probe_acc\": -inf, \"steps\": 100",
         "summary.json: probe_acc -inf out of range (from -1 to 1)"},
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 100.5",
         "summary.json: steps 100.5 out of range (a whole number from 0 to 9.0072e+15)"},
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 1e300",
         "summary.json: steps 1e+300 out of range (a whole number from 0 to 9.0072e+15)"},
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 100, \"stop_reason\": \"budget\", \"planned_steps\": 1e400",
         "summary.json: planned_steps: a number beyond a double's range"},
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 100, \"objective\": \"world\"",
         "summary.json: objective given twice"},
        {"metrics.jsonl", "{\"step\": 1e400, \"loss\": 0.2}\n",
         "metrics.jsonl: step: a number beyond a double's range"},
        {"metrics.jsonl", "{\"step\": 90, \"loss\": 0.2, \"loss\": 0.1}\n", "metrics.jsonl: loss given twice"},
        {"summary.json", "\"probe_acc\": -1, \"steps\": 100", ""}, /* no probe: whole, no figure */
        {"summary.json", "\"probe_acc\": 0.5, \"steps\": 100, \"wall_s\": 1e400", ""}, /* not read: not judged */
    };
    char rd[256], path[320], text[512];
    run_status st;
    snprintf(rd, sizeof rd, "%s/numbers", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(rd, 0700), 0);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", rd);
    write_text(path, "seed: 0\n");
    for (size_t i = 0; i < COUNT(cases); i++) {
        int summary = !strcmp(cases[i].file, "summary.json");
        snprintf(path, sizeof path, "%s/metrics.jsonl", rd);
        write_text(path, summary ? "{\"step\": 100, \"loss\": 0.2}\n" : cases[i].text);
        snprintf(text, sizeof text, "{\"objective\": \"ijepa\", \"final_loss\": 0.2, %s}\n",
                 summary ? cases[i].text : "\"probe_acc\": 0.5, \"steps\": 100");
        snprintf(path, sizeof path, "%s/summary.json", rd);
        write_text(path, text);
        CU_ASSERT_EQUAL(launch_read_status(rd, &st), 0);
        if (strcmp(st.damaged, cases[i].damaged)) fprintf(stderr, "\n  %s: [%s]\n", cases[i].text, st.damaged);
        CU_ASSERT_STRING_EQUAL(st.damaged, cases[i].damaged);
        int figures = st.final_loss == 0.2 && st.step == 100 && !strcmp(st.state, "done");
        int none = isnan(st.final_loss) && isnan(st.fig[0]) && !strncmp(st.state, "damaged: ", 9);
        CU_ASSERT(cases[i].damaged[0] ? none : figures);
    }
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"json_number", test_json_number},
        {"read_bounded", test_read_bounded},
        {"json_object", test_json_object},
        {"results_order_and_csv", test_results_order_and_csv},
        {"objective_table", test_objective_table},
        {"data_kind", test_data_kind},
        {"results_run_label", test_results_run_label},
        {"results_world", test_results_world},
        {"status_unstated", test_status_unstated},
        {"status_resume_from", test_status_resume_from},
        {"status_bad_numbers", test_status_bad_numbers},
        {"results_loss_caveat", test_results_loss_caveat},
    };
    int rc = test_main("launch_report", cases, (int)COUNT(cases));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
