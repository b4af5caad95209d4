/* test_launch.c - the launcher's logic in one process (sweep files:
 * test_sweep.c): the sbatch script with hostile values (each #SBATCH value
 * read back with sbatch's quoting rules, written out here independently),
 * the mpirun argv, key positions, and the results table's order and CSV;
 * paths that begin with '-', '%' in paths handed to Slurm, and the world
 * size read from a checkpoint's header (issue 16); what a start that came
 * to nothing takes back, the run.dir a moved run directory resumes in, and
 * the state of a run trained without the launcher (no state file). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_kind.h"
#include "launch.h"
#include "testutil.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/test_launch_XXXXXX";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* launch_spec_load takes LAUNCH_MAX_SETS overrides; one more is refused
 * naming the spec file, as its other errors do (it named nothing) */
static void test_spec_load_set_limit(void) {
    static const char *sets[LAUNCH_MAX_SETS + 1];
    char path[256], err[SPEC_ERR_MAX] = "", want[320];
    launch_spec ls;
    snprintf(path, sizeof path, "%s/limit.yaml", tmpdir);
    write_text(path, "train.steps: 10\n");
    for (int i = 0; i <= LAUNCH_MAX_SETS; i++) sets[i] = i == LAUNCH_MAX_SETS - 1 ? "train.steps=7" : "train.steps=3";
    int rc = launch_spec_load(&ls, path, sets, LAUNCH_MAX_SETS, err, sizeof err);
    if (rc) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(ls.spec.train.steps, 7); /* the last override */
    launch_spec_free(&ls);
    CU_ASSERT_EQUAL(launch_spec_load(&ls, path, sets, LAUNCH_MAX_SETS + 1, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: more than %d --set overrides (%d given)", path, LAUNCH_MAX_SETS,
             LAUNCH_MAX_SETS + 1);
    if (strcmp(err, want)) fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
    CU_ASSERT_STRING_EQUAL(err, want);
    launch_spec_free(&ls);
}

/* sbatch's reading of one #SBATCH argument: quotes group, backslash escapes
 * the next character, '#' outside quotes ends the line. */
static int sbatch_unquote(const char *in, char *out, size_t n) {
    size_t k = 0;
    char q = 0;
    for (; *in && k + 1 < n; in++) {
        if (*in == '\\' && in[1]) {
            out[k++] = *++in;
        } else if (q) {
            if (*in == q) q = 0;
            else out[k++] = *in;
        } else if (*in == '"' || *in == '\'') {
            q = *in;
        } else if (*in == '#' || *in == ' ') {
            break;
        } else {
            out[k++] = *in;
        }
    }
    out[k] = 0;
    return q ? -1 : 0;
}

static void test_sbatch_hostile(void) {
    static const char *const hostile[] = {
        "j \"q\" 'x' $(touch /tmp/pwned); `id` #c \\", "a;b|c&d>e", "plain", "tab\tinside",
    };
    for (size_t i = 0; i < COUNT(hostile); i++) {
        jepa_spec s;
        char err[SPEC_ERR_MAX] = "", *buf = NULL, want[512], line[1024];
        size_t len = 0;
        spec_defaults(&s);
        snprintf(s.slurm.job_name, sizeof s.slurm.job_name, "%s", hostile[i]);
        snprintf(s.slurm.account, sizeof s.slurm.account, "%s", hostile[i]);
        s.parallel.ranks = 4;
        s.parallel.threads_per_rank = 3;
        const char *dirs[] = {"runs/it's \"here\" $(x)"};
        FILE *f = open_memstream(&buf, &len);
        int rc = launch_sbatch_script(f, &s, "/opt/jepa train", dirs, 1, 0, err, sizeof err);
        fclose(f);
        if (strchr(hostile[i], '\t')) { /* control characters are refused */
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character"));
            free(buf);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        int found = 0;
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(l, "#SBATCH --job-name=", 19) || !strncmp(l, "#SBATCH --account=", 18)) {
                CU_ASSERT_EQUAL(sbatch_unquote(strchr(l, '=') + 1, line, sizeof line), 0);
                CU_ASSERT_STRING_EQUAL(line, hostile[i]);
                found++;
            }
            /* each of these lines must be there once, and be exactly this */
            static const char *const exact[] = {"#SBATCH --ntasks=4", "#SBATCH --cpus-per-task=3",
                                                "#SBATCH --signal=\"USR1@90\"", "trainer='/opt/jepa train'"};
            for (size_t k = 0; k < COUNT(exact); k++) {
                size_t key = (size_t)(strchr(exact[k], '=') - exact[k]) + 1;
                if (!strncmp(l, exact[k], key)) {
                    CU_ASSERT_STRING_EQUAL(l, exact[k]);
                    found++;
                }
            }
            if (!strncmp(l, "  'runs", 7)) {
                snprintf(want, sizeof want, "  'runs/it'\\''s \"here\" $(x)'");
                CU_ASSERT_STRING_EQUAL(l, want);
                found++;
            }
            CU_ASSERT(strncmp(l, "#SBATCH --array", 15) != 0); /* one run: no array */
        }
        CU_ASSERT_EQUAL(found, 3 + 4);
        free(buf);
    }
    /* a job array, and extra lines */
    jepa_spec s;
    char err[SPEC_ERR_MAX] = "", *buf = NULL;
    size_t len = 0;
    spec_defaults(&s);
    snprintf(s.slurm.extra, sizeof s.slurm.extra, "--exclusive\n  --mem=4G\n");
    const char *dirs[] = {"a", "b", "c"};
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(launch_sbatch_script(f, &s, "t", dirs, 3, 2, err, sizeof err), 0);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\n#SBATCH --array=0-2%2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\n#SBATCH --exclusive\n#SBATCH --mem=4G\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\ndirs=(\n  'a'\n  'b'\n  'c'\n)\n"));
    free(buf);
    buf = NULL;
    snprintf(s.slurm.extra, sizeof s.slurm.extra, "--exclusive\necho pwned");
    f = open_memstream(&buf, &len);
    CU_ASSERT_EQUAL(launch_sbatch_script(f, &s, "t", dirs, 1, 0, err, sizeof err), -1);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an sbatch option"));
    free(buf);
}

static void test_mpirun_argv(void) {
    jepa_spec s;
    spec_defaults(&s);
    s.parallel.ranks = 4;
    s.parallel.threads_per_rank = 2;
    snprintf(s.parallel.transport, sizeof s.parallel.transport, "tcp");
    launch_opts o = {.mpirun = "/usr/bin/mpirun", .trainer = "/b/jepa-train", .ncpus = 2};
    launch_argv a = {0};
    launch_mpirun_argv(&a, &s, &o, "runs/x y", 1);
    static const char *const want[] = {"/usr/bin/mpirun", "-np", "4", "--oversubscribe", "--bind-to", "none",
                                       "--mca", "btl", "self,tcp", "/b/jepa-train", "runs/x y/spec.resolved.yaml",
                                       "--exact-spec", "runs/x y/spec.yaml", "--set", "resume=auto"};
    CU_ASSERT_EQUAL_FATAL(a.n, (int)COUNT(want));
    for (size_t i = 0; i < COUNT(want); i++) CU_ASSERT_STRING_EQUAL(a.v[i], want[i]);
    CU_ASSERT_PTR_NULL(a.v[a.n]);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    launch_argv_print(&a, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "/usr/bin/mpirun -np 4 --oversubscribe --bind-to none --mca btl self,tcp "
                                "/b/jepa-train 'runs/x y/spec.resolved.yaml' --exact-spec 'runs/x y/spec.yaml' "
                                "--set resume=auto\n");
    free(buf);
    launch_argv_free(&a);
    /* defaults: one rank, 2 threads, auto transport, no resume */
    spec_defaults(&s);
    o.ncpus = 64;
    launch_mpirun_argv(&a, &s, &o, "r", 0);
    CU_ASSERT_EQUAL(a.n, 9);
    CU_ASSERT_STRING_EQUAL(a.v[2], "1");
    CU_ASSERT_STRING_EQUAL(a.v[3], "--bind-to");
    CU_ASSERT_STRING_EQUAL(a.v[8], "r/spec.yaml");
    launch_argv_free(&a);
}

/* Slurm's filename patterns as the sbatch man page describes them, written
 * out independently: %% is '%', %j the job, %A/%a the array job and index,
 * %x the job name, %u the user; a number after % pads. */
static void slurm_expand(const char *pat, char *out, size_t n) {
    size_t k = 0;
    for (const char *p = pat; *p && k + 16 < n; p++) {
        if (*p != '%') {
            out[k++] = *p;
            continue;
        }
        p++;
        while (*p >= '0' && *p <= '9') p++;
        switch (*p) {
        case '%': out[k++] = '%'; break;
        case 'j': k += (size_t)sprintf(out + k, "4711"); break;
        case 'A': k += (size_t)sprintf(out + k, "4700"); break;
        case 'a': k += (size_t)sprintf(out + k, "3"); break;
        case 'x': k += (size_t)sprintf(out + k, "NAME"); break;
        case 'u': k += (size_t)sprintf(out + k, "USER"); break;
        default: out[k++] = '%'; out[k++] = *p; break;
        }
        if (!*p) break;
    }
    out[k] = 0;
}

static void test_slurm_literal(void) {
    static const char *const dirs[] = {"runs/50%acc", "/a/%j%%%A_%a%x%u%5j", "plain", "%", "-dash run/%"};
    char lit[256], pat[300], got[400], want[300];
    for (size_t i = 0; i < COUNT(dirs); i++) {
        CU_ASSERT_EQUAL_FATAL(launch_slurm_literal(dirs[i], lit, sizeof lit), 0);
        snprintf(pat, sizeof pat, "%s/slurm-%%j.out", lit);
        slurm_expand(pat, got, sizeof got);
        snprintf(want, sizeof want, "%s/slurm-4711.out", dirs[i]);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    CU_ASSERT_EQUAL(launch_slurm_literal("runs/a\\b", lit, sizeof lit), -1); /* Slurm strips backslashes */
    CU_ASSERT_EQUAL(launch_slurm_literal("%%%%", lit, 8), -1);               /* 8 bytes + NUL do not fit */
    CU_ASSERT_EQUAL(launch_slurm_literal("%%%%", lit, 9), 0);
    CU_ASSERT_STRING_EQUAL(lit, "%%%%%%%%");
}

/* A path that begins with '-' reaches every program as a path: mpirun,
 * the trainer (./-x), and the batch script's srun line. */
static void test_dash_paths(void) {
    char buf[64];
    CU_ASSERT_STRING_EQUAL(launch_path_arg("-dash run", buf, sizeof buf), "./-dash run");
    CU_ASSERT_STRING_EQUAL(launch_path_arg("/abs/-x", buf, sizeof buf), "/abs/-x");
    CU_ASSERT_STRING_EQUAL(launch_path_arg("rel/-x", buf, sizeof buf), "rel/-x");
    jepa_spec s;
    spec_defaults(&s);
    launch_opts o = {.mpirun = "mpirun", .trainer = "-bin/jepa-train", .ncpus = 4};
    launch_argv a = {0};
    launch_mpirun_argv(&a, &s, &o, "-dash run", 0);
    CU_ASSERT_EQUAL_FATAL(a.n, 9);
    CU_ASSERT_STRING_EQUAL(a.v[5], "./-bin/jepa-train");
    CU_ASSERT_STRING_EQUAL(a.v[6], "./-dash run/spec.resolved.yaml");
    CU_ASSERT_STRING_EQUAL(a.v[8], "./-dash run/spec.yaml");
    for (int i = 3; i < a.n; i++) /* after -np N: nothing but the options we meant starts with '-' */
        if (a.v[i][0] == '-') CU_ASSERT(!strcmp(a.v[i], "--bind-to") || !strcmp(a.v[i], "--exact-spec"));
    launch_argv_free(&a);
    char err[SPEC_ERR_MAX] = "", *sb = NULL;
    size_t len = 0;
    const char *dirs[] = {"-a", "/b/-c"};
    FILE *f = open_memstream(&sb, &len);
    CU_ASSERT_EQUAL(launch_sbatch_script(f, &s, "/t", dirs, 2, 0, err, sizeof err), 0);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(sb, "\ndirs=(\n  './-a'\n  '/b/-c'\n)\n"));
    free(sb);
}

/* A checkpoint header as docs/checkpoint-format.md lays it out: magic,
 * version, header size, world size at 36 (little-endian); the rest zero. */
static void write_header(const char *path, const char *magic, unsigned version, unsigned hsize, unsigned world,
                         size_t len) {
    unsigned char h[256] = {0};
    memcpy(h, magic, 8);
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (unsigned char)(version >> 8 * i);
        h[12 + i] = (unsigned char)(hsize >> 8 * i);
        h[36 + i] = (unsigned char)(world >> 8 * i);
    }
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(h, 1, len, f);
    fclose(f);
}

/* launch_ckpt_world: the newest checkpoint whose header reads decides;
 * truncated, foreign, unknown-version and out-of-range headers are passed
 * over; versions 2 to 4 read; checkpoint.bin when no step file reads; 1
 * with no checkpoint. */
static void test_ckpt_world(void) {
    char run[256], dir[300], p[400], got[512];
    int world = 0;
    snprintf(run, sizeof run, "%s/ckrun", tmpdir);
    snprintf(dir, sizeof dir, "%s/checkpoints", run);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0755), 0);
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 1); /* nothing yet */
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 1);
    snprintf(p, sizeof p, "%s/step-00000004.ckpt", dir);
    write_header(p, "JEPACKPT", 3, 256, 3, 256);
    snprintf(p, sizeof p, "%s/step-00000008.ckpt", dir);
    write_header(p, "JEPACKPX", 3, 256, 5, 256); /* foreign magic */
    snprintf(p, sizeof p, "%s/step-00000012.ckpt", dir);
    write_header(p, "JEPACKPT", 3, 256, 5, 39); /* cut before the world field ends */
    snprintf(p, sizeof p, "%s/step-00000016.ckpt", dir);
    write_header(p, "JEPACKPT", 5, 256, 5, 256); /* a version we do not know */
    snprintf(p, sizeof p, "%s/step-00000020.ckpt", dir);
    write_header(p, "JEPACKPT", 3, 256, 0, 256); /* world 0 */
    snprintf(p, sizeof p, "%s/step-00000024.ckpt.tmp.77", dir);
    write_header(p, "JEPACKPT", 3, 256, 7, 256); /* a writer's temp file: not a checkpoint */
    snprintf(p, sizeof p, "%s/step-00000028.ckpt.corrupt", dir);
    write_header(p, "JEPACKPT", 3, 256, 7, 256);
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 0);
    CU_ASSERT_EQUAL(world, 3);
    snprintf(p, sizeof p, "%s/step-00000004.ckpt", dir);
    CU_ASSERT_STRING_EQUAL(got, p);
    snprintf(p, sizeof p, "%s/step-00000032.ckpt", dir);
    write_header(p, "JEPACKPT", 2, 256, 2, 256); /* version 2 is still read */
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 0);
    CU_ASSERT_EQUAL(world, 2);
    unlink(p);
    write_header(p, "JEPACKPT", 4, 256, 6, 256); /* and version 4 (issue 17) */
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 0);
    CU_ASSERT_EQUAL(world, 6);
    /* no step file reads: checkpoint.bin decides, else "some, none readable" */
    unlink(p);
    snprintf(p, sizeof p, "%s/step-00000004.ckpt", dir);
    unlink(p);
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), -1);
    snprintf(p, sizeof p, "%s/checkpoint.bin", run);
    write_header(p, "JEPACKPT", 3, 256, 4, 256);
    CU_ASSERT_EQUAL(launch_ckpt_world(run, &world, got, sizeof got), 0);
    CU_ASSERT_EQUAL(world, 4);
    CU_ASSERT_STRING_EQUAL(got, p);
}

static int exists(const char *fmt, const char *a) {
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, fmt, a);
    return stat(p, &st) == 0;
}

/* launch_undo keeps a directory whose other entries are not exactly those
 * it held: a name that changed at the same count, one that went, or more
 * than it could list at init. */
static void test_undo_others_changed(void) {
    char run[256], f[300], why[512];
    launch_undo u;
    snprintf(run, sizeof run, "%s/chg", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0755), 0);
    snprintf(f, sizeof f, "%s/notes", run);
    write_text(f, "x");
    launch_undo_init(&u, run);
    CU_ASSERT_EQUAL(u.others, 1);
    CU_ASSERT_EQUAL(unlink(f), 0); /* one went, another came: the count is the same */
    snprintf(f, sizeof f, "%s/other", run);
    write_text(f, "x");
    snprintf(f, sizeof f, "%s/state", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it holds files this start did not write (other)");
    CU_ASSERT(exists("%s/chg/state", tmpdir));
    CU_ASSERT_EQUAL(unlink(f), 0); /* state: ours, from that start */
    snprintf(f, sizeof f, "%s/other", run); /* one went, none came */
    launch_undo_init(&u, run);
    CU_ASSERT_EQUAL(unlink(f), 0);
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "its other files changed during this start");
    for (int i = 0; i < 200; i++) { /* 200 names of 32 bytes: more than names holds */
        snprintf(f, sizeof f, "%s/file-with-a-longish-name-%05d", run, i);
        write_text(f, "");
    }
    launch_undo_init(&u, run);
    CU_ASSERT(u.full);
    snprintf(f, sizeof f, "%s/state", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it held more entries than this start can check");
    CU_ASSERT(exists("%s/chg/state", tmpdir));
}

/* launch_undo: a start takes back exactly what it created. A run.dir it
 * made goes with the parents it made; a directory that was there keeps
 * everything but our files; one holding a file of ours from before, or
 * something we did not write (a checkpoint), stays whole. */
static void test_undo(void) {
    char run[256], f[300], why[512];
    launch_undo u;
    snprintf(run, sizeof run, "%s/un/a/b/", tmpdir); /* trailing slash: as mkdir -p takes it */
    launch_undo_init(&u, run);
    char top[300];
    snprintf(top, sizeof top, "%s/un", tmpdir);
    CU_ASSERT_STRING_EQUAL(u.top, top);
    CU_ASSERT_EQUAL_FATAL(launch_mkdirs(run, why, sizeof why), 0);
    snprintf(f, sizeof f, "%sstate", run);
    write_text(f, "failed\n");
    snprintf(f, sizeof f, "%sspec.yaml", run);
    write_text(f, "seed: 1\n");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), 0);
    CU_ASSERT(!exists("%s/un", tmpdir) && exists("%s", tmpdir));
    /* a directory of the user's: ours go, its own file stays */
    snprintf(run, sizeof run, "%s/mine", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0755), 0);
    snprintf(f, sizeof f, "%s/notes", run);
    write_text(f, "x");
    launch_undo_init(&u, run);
    CU_ASSERT_STRING_EQUAL(u.top, "");
    snprintf(f, sizeof f, "%s/launch.log", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), 0);
    CU_ASSERT(exists("%s/mine/notes", tmpdir) && !exists("%s/mine/launch.log", tmpdir));
    /* it had a spec.yaml of its own: nothing removed, and why */
    snprintf(f, sizeof f, "%s/spec.yaml", run);
    write_text(f, "seed: 2\n");
    launch_undo_init(&u, run);
    snprintf(f, sizeof f, "%s/state", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it existed before with its own spec.yaml");
    CU_ASSERT(exists("%s/mine/state", tmpdir));
    /* made by us, but the job wrote in it: kept whole, the file named */
    snprintf(run, sizeof run, "%s/ck", tmpdir);
    launch_undo_init(&u, run);
    snprintf(f, sizeof f, "%s/checkpoints", run);
    CU_ASSERT_EQUAL_FATAL(launch_mkdirs(f, why, sizeof why), 0);
    snprintf(f, sizeof f, "%s/state", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it holds files this start did not write (checkpoints)");
    CU_ASSERT(exists("%s/ck/checkpoints", tmpdir) && exists("%s/ck/state", tmpdir));
    /* the same in a directory of the user's: our files stay with the run's */
    snprintf(run, sizeof run, "%s/mine2", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0755), 0);
    snprintf(f, sizeof f, "%s/notes", run);
    write_text(f, "x");
    launch_undo_init(&u, run);
    snprintf(f, sizeof f, "%s/launch.log", run);
    write_text(f, "x");
    snprintf(f, sizeof f, "%s/metrics.jsonl", run);
    write_text(f, "{}\n");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it holds files this start did not write (metrics.jsonl)");
    CU_ASSERT(exists("%s/mine2/launch.log", tmpdir));
    test_undo_others_changed();
}

/* launch_moved_dir: a run directory whose spec names another run.dir gets
 * its own; the same directory spelt otherwise does not. */
static void test_moved_dir(void) {
    jepa_spec s;
    char out[SPEC_STR_MAX], err[SPEC_ERR_MAX], d[300], e[300];
    spec_defaults(&s);
    snprintf(d, sizeof d, "%s/mv", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(d, 0755), 0);
    snprintf(s.run_dir, sizeof s.run_dir, "%s", d);
    CU_ASSERT_EQUAL(launch_moved_dir(&s, d, out, sizeof out, err, sizeof err), 0);
    snprintf(e, sizeof e, "%s/mv//", tmpdir);
    CU_ASSERT_EQUAL(launch_moved_dir(&s, e, out, sizeof out, err, sizeof err), 0); /* same directory */
    snprintf(s.run_dir, sizeof s.run_dir, "%s/gone", tmpdir);
    CU_ASSERT_EQUAL(launch_moved_dir(&s, e, out, sizeof out, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(out, d); /* trailing slashes dropped */
    snprintf(s.run_dir, sizeof s.run_dir, "runs/old");
    CU_ASSERT_EQUAL(launch_moved_dir(&s, "rel/new/", out, sizeof out, err, sizeof err), 1);
    CU_ASSERT_STRING_EQUAL(out, "rel/new"); /* relative stays relative */
    launch_opts o = {.mpirun = "mpirun", .trainer = "t", .ncpus = 4, .run_dir_set = out};
    launch_argv a = {0};
    launch_mpirun_argv(&a, &s, &o, "rel/new/", 1);
    CU_ASSERT_EQUAL_FATAL(a.n, 13);
    CU_ASSERT_STRING_EQUAL(a.v[9], "--set");
    CU_ASSERT_STRING_EQUAL(a.v[10], "run.dir=rel/new");
    CU_ASSERT_STRING_EQUAL(a.v[12], "resume=auto");
    launch_argv_free(&a);
}

static void test_locate(void) {
    const char *y = "seed: 1\ndata:\n  train: a\noptim.lr: 2\nmask: {min_keep: 3}\n";
    int line = 0, col = 0;
    CU_ASSERT_EQUAL(launch_locate(y, "data.train", &line, &col), 0);
    CU_ASSERT(line == 3 && col == 10);
    CU_ASSERT_EQUAL(launch_locate(y, "optim.lr", &line, &col), 0);
    CU_ASSERT(line == 4 && col == 11);
    CU_ASSERT_EQUAL(launch_locate(y, "mask.min_keep", &line, &col), 0);
    CU_ASSERT(line == 5 && col == 18);
    CU_ASSERT_EQUAL(launch_locate(y, "data.test", &line, &col), -1);
    CU_ASSERT_EQUAL(launch_locate("{", "seed", &line, &col), -1);
}

static void test_json_number(void) {
    double v = 0;
    const char *j = "{\"step\": 12, \"loss\": 0.25, \"lr\":1e-3, \"note\": \"loss\"}";
    CU_ASSERT(launch_json_number(j, "step", &v) == 0 && v == 12);
    CU_ASSERT(launch_json_number(j, "loss", &v) == 0 && v == 0.25);
    CU_ASSERT(launch_json_number(j, "lr", &v) == 0 && v == 1e-3);
    CU_ASSERT_EQUAL(launch_json_number(j, "los", &v), -1);
    CU_ASSERT_EQUAL(launch_json_number(j, "note", &v), -1);
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
                                "2,2e-3,0.500000,0.8000,100,done\n"
                                "0,1e-3,0.300000,0.7000,100,done\n"
                                "3,\"a,\"\"b\"\"\",0.100000,0.7000,100,done\n"
                                "1,5e-4,-,-,-,running pid=1\n");
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
 * a sweep's rows keep their index */
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
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "run,final_loss,probe_acc,steps,status\n"
                                "\"lr-sweep,b\",0.250000,-,100,done\n"
                                "run          final_loss  probe_acc     steps  status\n"
                                "lr-sweep,b     0.250000          -       100  done\n"
                                "point,final_loss,probe_acc,steps,status\n"
                                "0,0.250000,-,100,done\n");
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
                                "1,b,0.300000,0.9000,-,-,-,100,done\n"
                                "0,a,0.100000,-0.5000,-,-,-,100,done\n");
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

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"spec_load_set_limit", test_spec_load_set_limit},
        {"sbatch_hostile", test_sbatch_hostile},
        {"mpirun_argv", test_mpirun_argv},
        {"slurm_literal", test_slurm_literal},
        {"dash_paths", test_dash_paths},
        {"ckpt_world", test_ckpt_world},
        {"undo", test_undo},
        {"moved_dir", test_moved_dir},
        {"locate", test_locate},
        {"json_number", test_json_number},
        {"read_bounded", test_read_bounded},
        {"json_object", test_json_object},
        {"results_order_and_csv", test_results_order_and_csv},
        {"objective_table", test_objective_table},
        {"data_kind", test_data_kind},
        {"results_run_label", test_results_run_label},
        {"results_world", test_results_world},
        {"status_unstated", test_status_unstated},
        {"results_loss_caveat", test_results_loss_caveat},
    };
    int rc = test_main("launch", cases, (int)COUNT(cases));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
