/* test_launch.c - starting runs, in one process (sweep files:
 * test_sweep.c; reading runs back: test_launch_report.c): the sbatch
 * script with hostile values (each #SBATCH value read back with sbatch's
 * quoting rules, written out here independently), the mpirun argv, key
 * positions, paths that begin with '-', '%' in paths handed to Slurm, the
 * world size read from a checkpoint's header (issue 16), what a start that
 * came to nothing takes back, and the run.dir a moved run directory
 * resumes in; signal names; Open MPI's words on the rank that ended a job. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "mpirun_log.h"
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
                                       "--mca", "btl", "self,tcp", "-x", "JEPA_RUN_LOCK_PID", "/b/jepa-train",
                                       "runs/x y/spec.resolved.yaml", "--exact-spec", "runs/x y/spec.yaml", "--set",
                                       "resume=auto"};
    CU_ASSERT_EQUAL_FATAL(a.n, (int)COUNT(want));
    for (size_t i = 0; i < COUNT(want); i++) CU_ASSERT_STRING_EQUAL(a.v[i], want[i]);
    CU_ASSERT_PTR_NULL(a.v[a.n]);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    launch_argv_print(&a, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "/usr/bin/mpirun -np 4 --oversubscribe --bind-to none --mca btl self,tcp "
                                "-x JEPA_RUN_LOCK_PID /b/jepa-train 'runs/x y/spec.resolved.yaml' --exact-spec "
                                "'runs/x y/spec.yaml' --set resume=auto\n");
    free(buf);
    launch_argv_free(&a);
    /* defaults: one rank, 2 threads, auto transport, no resume */
    spec_defaults(&s);
    o.ncpus = 64;
    launch_mpirun_argv(&a, &s, &o, "r", 0);
    CU_ASSERT_EQUAL(a.n, 11);
    CU_ASSERT_STRING_EQUAL(a.v[2], "1");
    CU_ASSERT_STRING_EQUAL(a.v[3], "--bind-to");
    CU_ASSERT_STRING_EQUAL(a.v[5], "-x"); /* the launcher's pid reaches ranks on other nodes too */
    CU_ASSERT_STRING_EQUAL(a.v[6], "JEPA_RUN_LOCK_PID");
    CU_ASSERT_STRING_EQUAL(a.v[10], "r/spec.yaml");
    launch_argv_free(&a);
}

/* launch_signal_name: kill -l's names (bash's, written out here), the
 * real-time ones counted from SIGRTMIN; cut to the buffer, never past it */
static void test_signal_name(void) {
    static const struct { int sig; const char *name; } want[] = {
        {SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGKILL, "SIGKILL"}, {SIGSEGV, "SIGSEGV"}, {SIGTERM, "SIGTERM"},
        {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}, {SIGSTKFLT, "SIGSTKFLT"}, {SIGPWR, "SIGPWR"}};
    char b[LAUNCH_SIGNAME_MAX], rt[32];
    for (size_t i = 0; i < COUNT(want); i++)
        CU_ASSERT_STRING_EQUAL(launch_signal_name(want[i].sig, b, sizeof b), want[i].name);
    CU_ASSERT_STRING_EQUAL(launch_signal_name(SIGRTMIN, b, sizeof b), "SIGRTMIN");
    for (int k = 1; SIGRTMIN + k < SIGRTMAX; k++) {
        snprintf(rt, sizeof rt, "SIGRTMIN+%d", k);
        CU_ASSERT_STRING_EQUAL(launch_signal_name(SIGRTMIN + k, b, sizeof b), rt);
    }
    CU_ASSERT_STRING_EQUAL(launch_signal_name(SIGRTMAX, b, sizeof b), "SIGRTMAX");
    memset(b, 'x', sizeof b);
    CU_ASSERT_STRING_EQUAL(launch_signal_name(SIGKILL, b, 5), "SIGK");
    CU_ASSERT_EQUAL(b[5], 'x');
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
    CU_ASSERT_EQUAL_FATAL(a.n, 11);
    CU_ASSERT_STRING_EQUAL(a.v[7], "./-bin/jepa-train");
    CU_ASSERT_STRING_EQUAL(a.v[8], "./-dash run/spec.resolved.yaml");
    CU_ASSERT_STRING_EQUAL(a.v[10], "./-dash run/spec.yaml");
    for (int i = 3; i < a.n; i++) /* after -np N: nothing but the options we meant starts with '-' */
        if (a.v[i][0] == '-')
            CU_ASSERT(!strcmp(a.v[i], "--bind-to") || !strcmp(a.v[i], "-x") || !strcmp(a.v[i], "--exact-spec"));
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

/* RUN/error's temp files (jepa-train's "error.PID.tmp", left by a rank
 * killed while writing it) are the launcher's to remove: a start that came
 * to nothing takes them back with the rest; other names stay the user's. */
static void test_undo_error_tmp(void) {
    static const char *const yes[] = {"error.1.tmp", "error.4242.tmp"};
    static const char *const no[] = {"error.tmp", "error..tmp", "error.12.tmp.x", "error.1x.tmp", "error.-1.tmp",
                                     "xerror.1.tmp", "error.12"};
    for (size_t i = 0; i < COUNT(yes); i++) CU_ASSERT(launch_error_tmp(yes[i]));
    for (size_t i = 0; i < COUNT(no); i++) CU_ASSERT(!launch_error_tmp(no[i]));
    char run[256], f[300], why[512];
    launch_undo u;
    snprintf(run, sizeof run, "%s/et", tmpdir);
    launch_undo_init(&u, run);
    CU_ASSERT_EQUAL_FATAL(launch_mkdirs(run, why, sizeof why), 0);
    static const char *const ours[] = {"state", "error", "error.4242.tmp", "error.17.tmp"};
    for (size_t i = 0; i < COUNT(ours); i++) {
        snprintf(f, sizeof f, "%s/%s", run, ours[i]);
        write_text(f, "x");
    }
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), 0);
    CU_ASSERT(!exists("%s/et", tmpdir));
    launch_undo_init(&u, run);
    CU_ASSERT_EQUAL_FATAL(launch_mkdirs(run, why, sizeof why), 0);
    snprintf(f, sizeof f, "%s/error.1x.tmp", run);
    write_text(f, "x");
    CU_ASSERT_EQUAL(launch_undo_apply(&u, run, why, sizeof why), -1);
    CU_ASSERT_STRING_EQUAL(why, "it holds files this start did not write (error.1x.tmp)");
    CU_ASSERT_EQUAL(launch_error_tmps_remove(run, why, sizeof why), 0); /* before each attempt */
    CU_ASSERT(exists("%s/et/error.1x.tmp", tmpdir));
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
    CU_ASSERT_EQUAL_FATAL(a.n, 15);
    CU_ASSERT_STRING_EQUAL(a.v[11], "--set");
    CU_ASSERT_STRING_EQUAL(a.v[12], "run.dir=rel/new");
    CU_ASSERT_STRING_EQUAL(a.v[14], "resume=auto");
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

/* Open MPI 4.1's words as mpirun printed them here (mpirun -np 2, rank 1
 * exit(3); a rank SIGKILLed), the lines broken where it breaks them */
#define DASHES "--------------------------------------------------------------------------\n"
static const char ompi_exit[] =
    DASHES "Primary job  terminated normally, but 1 process returned\na non-zero exit code. Per user-direction, "
    "the job has been aborted.\n" DASHES DASHES "mpirun detected that one or more processes exited with non-zero "
    "status, thus causing\nthe job to be terminated. The first process to do so was:\n\n  Process name: "
    "[[26220,1],1]\n  Exit code:    3\n" DASHES;
static const char ompi_signal[] =
    DASHES "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).\n" DASHES;

static mpirun_end_kind parse(const char *text, mpirun_end *r) { return mpirun_log_parse(text, strlen(text), r); }

/* what mpirun said of the rank that ended the job: each kind, and words
 * cut, garbled or out of range read as nothing said */
static void test_mpirun_log_parse(void) {
    mpirun_end r;
    CU_ASSERT_EQUAL(parse(ompi_exit, &r), MPIRUN_END_EXIT);
    CU_ASSERT(r.rank == 1 && r.code == 3 && r.node[0] == 0);
    CU_ASSERT_EQUAL(parse(ompi_signal, &r), MPIRUN_END_SIGNAL);
    CU_ASSERT(r.rank == 1 && r.sig == 9 && !strcmp(r.node, "vm"));
    /* the exit message as the last bytes, no newline after the code */
    const char *end = strstr(ompi_exit, "Exit code:    3") + 15;
    char at_end[sizeof ompi_exit];
    snprintf(at_end, sizeof at_end, "%.*s", (int)(end - ompi_exit), ompi_exit);
    CU_ASSERT(parse(at_end, &r) == MPIRUN_END_EXIT && r.rank == 1 && r.code == 3);
    /* a rank of several digits, the lines joined, the last of two messages */
    CU_ASSERT(parse("x exited with non-zero status, thus causing the job to be terminated. The first process to "
                    "do so was: Process name: [[1,1],0] Exit code: 9\nmpirun detected that one or more processes "
                    "exited with non-zero status, thus causing the job to be terminated. The first process to do "
                    "so was:\n  Process name: [[7,1],123]\n  Exit code:    255\n", &r) == MPIRUN_END_EXIT &&
              r.rank == 123 && r.code == 255);
    /* cut short, garbled, out of range: nothing */
    static const char *const none[] = {
        "",
        "\x01\xff garbage Process name: [[1,1],1] Exit code: 3",
        "mpirun detected that one or more processes exited with non-zero status, thus causing\nthe job",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],1]\n  Exit code:",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],x]\n  Exit code:    3\n",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],1]\n  Exit code:    0\n",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],1]\n  Exit code:    256\n",
        "...exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so "
        "was:\n\n  Process name: [[26220,1],-1]\n  Exit code:    3\n",
        "mpirun noticed that process rank 1 with PID 0 on node vm exited on",
        "mpirun noticed that process rank -1 with PID 0 on node vm exited on signal 9.",
    };
    for (size_t i = 0; i < COUNT(none); i++) {
        mpirun_end_kind k = parse(none[i], &r);
        if (k != MPIRUN_END_NONE) fprintf(stderr, "\n  case %zu read as kind %d\n", i, (int)k);
        CU_ASSERT_EQUAL(k, MPIRUN_END_NONE);
        CU_ASSERT_EQUAL(r.kind, MPIRUN_END_NONE);
    }
    /* NUL bytes before the words (a rank's binary output) do not hide them */
    char nul[sizeof ompi_exit + 8] = "ab\0\0cd\0";
    memcpy(nul + 7, ompi_exit, sizeof ompi_exit);
    CU_ASSERT(mpirun_log_parse(nul, 7 + sizeof ompi_exit - 1, &r) == MPIRUN_END_EXIT && r.rank == 1);
    /* both kinds: the signal's, which names the node */
    char both[sizeof ompi_exit + sizeof ompi_signal];
    snprintf(both, sizeof both, "%s%s", ompi_signal, ompi_exit);
    CU_ASSERT(parse(both, &r) == MPIRUN_END_SIGNAL && r.sig == 9);
}

/* the file: only the attempt's part (from log_from on) and its last
 * MPIRUN_LOG_TAIL bytes are read; a missing or non-regular file says nothing */
static void test_mpirun_log_read(void) {
    char path[256], body[MPIRUN_LOG_TAIL + 512];
    mpirun_end r;
    snprintf(path, sizeof path, "%s/train.log", tmpdir);
    /* attempt 0 ended with the message, attempt 1 (from its size on) said nothing of a rank */
    snprintf(body, sizeof body, "step 1\n%sjepa-train: resuming from step 2\nstep 3\n", ompi_exit);
    write_text(path, body);
    off_t from = (off_t)(strstr(body, "jepa-train: resuming") - body);
    CU_ASSERT_EQUAL(mpirun_log_read(path, 0, &r), MPIRUN_END_EXIT);
    CU_ASSERT_EQUAL(mpirun_log_read(path, from, &r), MPIRUN_END_NONE);
    CU_ASSERT_EQUAL(mpirun_log_read(path, (off_t)strlen(body), &r), MPIRUN_END_NONE); /* nothing appended */
    CU_ASSERT_EQUAL(mpirun_log_read(path, (off_t)strlen(body) + 10, &r), MPIRUN_END_NONE);
    /* the message starts before from: its tail alone is not read as one */
    CU_ASSERT_EQUAL(mpirun_log_read(path, (off_t)(strstr(body, "Exit code") - body), &r), MPIRUN_END_NONE);
    /* attempt 1's own message at the file's very end, no newline after it */
    snprintf(body + strlen(body), sizeof body - strlen(body), "%.*s", (int)(strstr(ompi_exit, "Exit code:") -
             ompi_exit), ompi_exit);
    char *name = strstr(body + from, "[[26220,1],1]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    name[11] = '0';
    strcat(body, "Exit code:    42");
    write_text(path, body);
    CU_ASSERT(mpirun_log_read(path, from, &r) == MPIRUN_END_EXIT && r.rank == 0 && r.code == 42);
    /* more than MPIRUN_LOG_TAIL bytes after the message: not looked for */
    FILE *f = fopen(path, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t k = 0; k < MPIRUN_LOG_TAIL; k += strlen("step 9\n")) fputs("step 9\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(mpirun_log_read(path, from, &r), MPIRUN_END_NONE);
    snprintf(path, sizeof path, "%s/no-such.log", tmpdir);
    CU_ASSERT_EQUAL(mpirun_log_read(path, 0, &r), MPIRUN_END_NONE);
    CU_ASSERT_EQUAL(mpirun_log_read(tmpdir, 0, &r), MPIRUN_END_NONE);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"spec_load_set_limit", test_spec_load_set_limit},
        {"sbatch_hostile", test_sbatch_hostile},
        {"mpirun_argv", test_mpirun_argv},
        {"signal_name", test_signal_name},
        {"slurm_literal", test_slurm_literal},
        {"dash_paths", test_dash_paths},
        {"ckpt_world", test_ckpt_world},
        {"undo", test_undo},
        {"undo_error_tmp", test_undo_error_tmp},
        {"moved_dir", test_moved_dir},
        {"locate", test_locate},
        {"mpirun_log_parse", test_mpirun_log_parse},
        {"mpirun_log_read", test_mpirun_log_read},
    };
    int rc = test_main("launch", cases, (int)COUNT(cases));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
