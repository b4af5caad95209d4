/* run.c - local runs: the mpirun argv for a run directory, and the loop
 * that starts it, waits, and restarts a failed job from its checkpoint
 * (resume=auto) up to max_restarts times. jepa-train's exit codes: 75 is a
 * rank stopped by a signal after writing a checkpoint (restarted, unless the
 * signal was ours), 3 a non-finite loss and 4 inputs refused at setup (never
 * restarted: they would recur). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

void launch_trainer_path(const launch_opts *o, char *out, size_t n) {
    const char *t = o && o->trainer ? o->trainer : getenv("JEPA_TRAIN_BIN");
    if (t && *t) {
        snprintf(out, n, "%s", t);
        return;
    }
    /* beside this program: build/jepa-launch runs build/jepa-train */
    char self[LAUNCH_PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, n, "%s/jepa-train", self);
            if (access(out, X_OK) == 0) return;
        }
    }
    snprintf(out, n, "jepa-train");
}

static const char *mpirun_path(const launch_opts *o) {
    const char *m = o && o->mpirun ? o->mpirun : getenv("JEPA_MPIRUN");
    return m && *m ? m : "mpirun";
}

void launch_mpirun_argv(launch_argv *a, const jepa_spec *s, const launch_opts *o, const char *run_dir, int resume) {
    char trainer[LAUNCH_PATH_MAX];
    long ncpus = o && o->ncpus ? o->ncpus : sysconf(_SC_NPROCESSORS_ONLN);
    int ranks = o && o->ranks > 0 ? o->ranks : s->parallel.ranks;
    launch_trainer_path(o, trainer, sizeof trainer);
    launch_argv_push(a, mpirun_path(o));
    launch_argv_push(a, "-np");
    launch_argv_pushf(a, "%d", ranks);
    if (ncpus > 0 && ranks > ncpus) launch_argv_push(a, "--oversubscribe");
    if (s->parallel.threads_per_rank > 1) {
        launch_argv_push(a, "--bind-to");
        launch_argv_push(a, "none");
    }
    if (strcmp(s->parallel.transport, "auto") != 0) {
        launch_argv_push(a, "--mca");
        launch_argv_push(a, "btl");
        launch_argv_push(a, strcmp(s->parallel.transport, "tcp") == 0 ? "self,tcp" : "self,vader");
    }
    /* jepa-train (like mpirun before the program) reads a word that begins
     * with '-' as an option: paths go through launch_path_arg (a run.dir
     * "-x" reaches jepa-train as "./-x") */
    if (strchr(trainer, '/')) launch_argv_push_path(a, "%s", trainer);
    else launch_argv_push(a, trainer); /* a name PATH finds */
    launch_argv_push_path(a, "%s/spec.resolved.yaml", run_dir);
    launch_argv_push(a, "--exact-spec");
    launch_argv_push_path(a, "%s/spec.yaml", run_dir);
    if (resume) {
        launch_argv_push(a, "--set");
        launch_argv_push(a, "resume=auto");
    }
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* World size from a checkpoint's header: magic "JEPACKPT", version 2 to 4
 * (u32 at 8), header size 256 (u32 at 12), world (u32 at 36); *gbatch (may
 * be NULL) the global batch of a version-4 file (u32 at 144, in the reader
 * state), 0 for older ones (the trainer resumes those at their own world
 * size only). 0 or -1. */
static int peek_world_batch(const char *path, int *world, uint32_t *gbatch) {
    unsigned char h[148];
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t k = fread(h, 1, sizeof h, f);
    fclose(f);
    if (k != sizeof h || memcmp(h, "JEPACKPT", 8) != 0) return -1;
    uint32_t version = le32(h + 8), hsize = le32(h + 12), w = le32(h + 36);
    if (version < 2 || version > 4 || hsize != 256 || w < 1 || w > 1u << 20) return -1;
    *world = (int)w;
    if (gbatch) *gbatch = version >= 4 ? le32(h + 144) : 0;
    return 0;
}

static int peek_world(const char *path, int *world) { return peek_world_batch(path, world, NULL); }

/* "step-<digits>.ckpt" -> step, else -1 (the trainer's names; temp files and
 * *.corrupt are not checkpoints) */
static long long ckpt_step(const char *name) {
    long long v = 0;
    int nd = 0;
    if (strncmp(name, "step-", 5) != 0) return -1;
    for (name += 5; *name >= '0' && *name <= '9' && nd < 18; name++, nd++) v = v * 10 + (*name - '0');
    return nd > 0 && !strcmp(name, ".ckpt") ? v : -1;
}

int launch_ckpt_world(const char *run_dir, int *world, char *path, size_t plen) {
    char d[LAUNCH_PATH_MAX + 32];
    int any = 0;
    snprintf(d, sizeof d, "%s/checkpoints", run_dir);
    /* newest first, as resume=auto tries them: pick the best step that reads */
    for (long long below = -1;;) {
        long long best = -1;
        char name[256] = "";
        DIR *dir = opendir(d);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            long long st = ckpt_step(e->d_name);
            if (st >= 0 && (below < 0 || st < below) && st > best) {
                best = st;
                snprintf(name, sizeof name, "%s", e->d_name);
            }
        }
        if (dir) closedir(dir);
        if (best < 0) break;
        any = 1;
        snprintf(path, plen, "%s/%s", d, name);
        if (peek_world(path, world) == 0) return 0;
        below = best;
    }
    snprintf(path, plen, "%s/checkpoint.bin", run_dir);
    if (access(path, F_OK) != 0) return any ? -1 : 1;
    return peek_world(path, world) == 0 ? 0 : -1;
}

/* SIGINT/SIGTERM: pass to the job, stop restarting. */
static volatile sig_atomic_t g_stop;
static volatile pid_t g_child;

static void on_signal(int sig) {
    g_stop = sig;
    if (g_child > 0) kill(g_child, sig);
}

static int spawn(char *const *argv, const char *out_path, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int launch_run_dir(const char *run_dir, const launch_opts *o, int resume, char *err, size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32], log_path[LAUNCH_PATH_MAX + 32];
    jepa_spec s;
    spec_defaults(&s);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", run_dir);
    if (spec_load_file(&s, path, err, errlen)) return -1;
    snprintf(log_path, sizeof log_path, "%s/train.log", run_dir);
    /* checked before state or launch.log is written: a refused resume
     * leaves the run directory as it was */
    int ranks = o && o->ranks > 0 ? o->ranks : s.parallel.ranks, world;
    char ckpt[LAUNCH_PATH_MAX + 64];
    if ((resume || !strcmp(s.resume, "auto")) && launch_ckpt_world(run_dir, &world, ckpt, sizeof ckpt) == 0 &&
        world != ranks) {
        /* another world size resumes when it divides the checkpoint's global
         * batch (version 4: docs/checkpoint-format.md, "World size") */
        uint32_t gb = 0;
        peek_world_batch(ckpt, &world, &gb);
        if (gb > 0 && gb % (uint32_t)ranks != 0)
            return launch_errf(err, errlen,
                               "%s: global batch %u (written by %d rank%s) does not divide by %d ranks: resume "
                               "on a number of ranks that divides %u",
                               ckpt, gb, world, world == 1 ? "" : "s", ranks, gb);
        if (gb == 0)
            return launch_errf(err, errlen,
                               "%s was written by %d rank%s, not %d: a resume keeps the world size (jepa-launch "
                               "resume %s takes it from the checkpoint, or pass --np %d)",
                               ckpt, world, world == 1 ? "" : "s", ranks, run_dir, world);
    }

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns to look at g_stop */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_stop = 0;

    int status = -1;
    for (int attempt = 0;; attempt++) {
        launch_argv a = {0};
        launch_mpirun_argv(&a, &s, o, run_dir, resume || attempt > 0);
        pid_t pid;
        int rc = spawn(a.v, o && o->log_output ? log_path : NULL, &pid);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start %s: %s", a.v[0], strerror(rc));
            launch_set_state(run_dir, "failed: cannot start %s", a.v[0]);
            launch_log(run_dir, "cannot start %s: %s", a.v[0], strerror(rc));
            launch_argv_free(&a);
            status = -1;
            break;
        }
        g_child = pid;
        if (g_stop) kill(pid, g_stop); /* a signal that came before g_child was set */
        launch_set_state(run_dir, "running pid=%d attempt=%d", (int)pid, attempt);
        launch_log(run_dir, "attempt %d: started %s (pid %d)%s", attempt, a.v[0], (int)pid,
                   resume || attempt > 0 ? " with resume=auto" : "");
        launch_argv_free(&a);
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        g_child = 0;
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (status == 0) {
            launch_set_state(run_dir, "done");
            launch_log(run_dir, "attempt %d: finished", attempt);
            break;
        }
        if (g_stop) {
            launch_set_state(run_dir, "stopped signal=%d", (int)g_stop);
            launch_log(run_dir, "attempt %d: stopped by signal %d (status %d); not restarting", attempt, (int)g_stop,
                       status);
            break;
        }
        if (status == 4) { /* TRAIN_EXIT_REFUSED: the inputs were refused before any step */
            launch_set_state(run_dir, "failed status=4 (inputs refused at setup; not restarted)");
            launch_log(run_dir, "attempt %d: jepa-train refused its inputs (status 4); a restart would repeat it",
                       attempt);
            break;
        }
        if (status == 3) { /* TRAIN_EXIT_NONFINITE: a NaN recurs at the same step on resume */
            launch_set_state(run_dir, "failed status=3 (non-finite loss; not restarted)");
            launch_log(run_dir, "attempt %d: non-finite loss or gradient (status 3); a restart would repeat it",
                       attempt);
            break;
        }
        if (attempt >= s.max_restarts) {
            launch_set_state(run_dir, "failed status=%d restarts=%d", status, attempt);
            launch_log(run_dir, "attempt %d: exited with status %d; no restarts left (max_restarts %d)", attempt,
                       status, s.max_restarts);
            break;
        }
        launch_log(run_dir, "attempt %d: exited with status %d; restart %d/%d with resume=auto", attempt, status,
                   attempt + 1, s.max_restarts);
        fprintf(stderr, "jepa-launch: %s: job exited with status %d; restart %d/%d with resume=auto\n", run_dir,
                status, attempt + 1, s.max_restarts);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (status < 0) return -1;
    if (status) snprintf(err, errlen, "%s: job failed with status %d (see %s/launch.log)", run_dir, status, run_dir);
    return status;
}
