/* run.c - local runs: the mpirun argv for a run directory, and the loop
 * that starts it, waits, and restarts a failed job from its checkpoint
 * (resume=auto) up to max_restarts times. jepa-train's exit codes: 75 is a
 * rank stopped by a signal after writing a checkpoint (restarted, unless the
 * signal was ours), 2 a command line or spec it rejects, 3 a non-finite
 * loss, 4 inputs refused at setup and 5 out of memory (never restarted:
 * they would recur). */
#define _GNU_SOURCE /* realpath */
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
#include "mpirun_log.h"
#include "run_lock.h"

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
    /* ranks on mpirun's own node inherit its environment, those Open MPI
     * starts on other nodes only what -x names: every rank of ours writes
     * RUN/error when it fails (train_main.c, note_failure) */
    launch_argv_push(a, "-x");
    launch_argv_push(a, RUN_LOCK_ENV);
    /* jepa-train (like mpirun before the program) reads a word that begins
     * with '-' as an option: paths go through launch_path_arg (a run.dir
     * "-x" reaches jepa-train as "./-x") */
    if (strchr(trainer, '/')) launch_argv_push_path(a, "%s", trainer);
    else launch_argv_push(a, trainer); /* a name PATH finds */
    launch_argv_push_path(a, "%s/spec.resolved.yaml", run_dir);
    launch_argv_push(a, "--exact-spec");
    launch_argv_push_path(a, "%s/spec.yaml", run_dir);
    if (o && o->run_dir_set) { /* "--set run.dir=-x": the value is never read as an option */
        launch_argv_push(a, "--set");
        launch_argv_pushf(a, "run.dir=%s", o->run_dir_set);
    }
    if (resume) {
        launch_argv_push(a, "--set");
        launch_argv_push(a, "resume=auto");
    }
}

int launch_moved_dir(const jepa_spec *s, const char *run_dir, char *out, size_t n, char *err, size_t errlen) {
    struct stat a, b;
    if (!strcmp(s->run_dir, run_dir)) return 0;
    /* the same directory spelt another way (runs/L/, an absolute path, a
     * symlink): the trainer, started from here, resolves it as we do */
    if (stat(s->run_dir, &a) == 0 && stat(run_dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return 0;
    char abs[LAUNCH_PATH_MAX];
    const char *v = run_dir;
    if (s->run_dir[0] == '/' && run_dir[0] != '/') { /* recorded absolute: keep it so */
        if (!realpath(run_dir, abs))
            return launch_errf(err, errlen, "%s: cannot resolve it (%s) to resume it in place of its run.dir %s",
                               run_dir, strerror(errno), s->run_dir);
        v = abs;
    }
    size_t k = strlen(v);
    while (k > 1 && v[k - 1] == '/') k--;
    jepa_spec t = *s; /* the value as jepa-train will check it */
    char set[LAUNCH_PATH_MAX + 16], why[SPEC_ERR_MAX];
    snprintf(set, sizeof set, "run.dir=%.*s", (int)k, v);
    if (k >= n || spec_set(&t, set, why, sizeof why) != 0)
        return launch_errf(err, errlen, "%s holds a run whose run.dir is %s: it cannot run here under its own "
                           "name (%s)", run_dir, s->run_dir, k >= n ? "path too long" : why);
    snprintf(out, n, "%.*s", (int)k, v);
    return 1;
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
    FILE *f = spec_fopen_regular(path, NULL, 0); /* a FIFO or device: no world, never waited on */
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

/* SIGINT/SIGTERM/SIGHUP/SIGUSR1 stop restarting and stop the job: the
 * first as SIGUSR1, which Open MPI's mpirun forwards to the ranks and
 * jepa-train takes as "checkpoint at the end of this step, exit 75"; a
 * second one as itself (SIGINT) or SIGTERM, mpirun's abort. SIGUSR1 is
 * what a batch script's `#SBATCH --signal=B:USR1@90` sends us before a
 * time limit. mpirun aborts on its own SIGINT/SIGTERM: SIGTERM to the
 * ranks, SIGKILL 1 s later (odls_base_sigkill_timeout), before a slow step
 * can checkpoint. It runs in its own process group (spawn), so a
 * terminal's Ctrl-C or hangup, sent to our whole group, reaches it only
 * through here. SIGQUIT (Ctrl-\) is the abort at once (SIGTERM). SIGTSTP/
 * SIGCONT (Ctrl-Z, fg) go to mpirun, which passes both to the ranks
 * (ess_base_forward_signals' defaults). Every other signal whose default
 * would kill us alone, leaving the job to train on orphaned with the run's
 * lock (SIGUSR2, SIGALRM, SIGXCPU a batch system's warning, ...), stops it
 * as SIGTERM does; SIGPIPE and SIGXFSZ are ignored by run, resume and
 * sweep (launch_main.c: a closed stdout or stderr, or a file at its size
 * limit, fails the write, not the run; mpirun gets them at their
 * default). Faults (SIGSEGV, SIGABRT, ...) keep theirs: bugs of ours. */
static volatile sig_atomic_t g_stop, g_nstop, g_say;
static volatile pid_t g_child;

void launch_stop_set(sigset_t *ss) {
    static const int named[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU,
                                SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT};
    sigemptyset(ss);
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) sigaddset(ss, named[i]);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX && sig < LAUNCH_NSIG; sig++) sigaddset(ss, sig);
}

void launch_catch(const sigset_t *ss, void (*handler)(int), struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler; /* no SA_RESTART: a wait returns to look at what came */
    sa.sa_mask = *ss;        /* one handler at a time */
    for (int sig = 1; sig < LAUNCH_NSIG; sig++)
        if (sigismember(ss, sig) == 1) sigaction(sig, &sa, old ? &old[sig] : NULL);
}

void launch_uncatch(const sigset_t *ss, const struct sigaction *old) {
    for (int sig = 1; sig < LAUNCH_NSIG; sig++)
        if (sigismember(ss, sig) == 1) sigaction(sig, &old[sig], NULL);
}

void launch_quiet_set(sigset_t *ss) {
    sigemptyset(ss);
    sigaddset(ss, SIGPIPE);
    sigaddset(ss, SIGXFSZ);
}

static int forwarded(int sig, int nth) {
    return sig == SIGQUIT ? SIGTERM : nth <= 1 ? SIGUSR1 : sig == SIGINT ? SIGINT : SIGTERM;
}

/* out[k] onward: s, cut to fit n (k < n); the new length. Plain copies:
 * launch_signal_name runs in on_signal (say_stop). */
static size_t put_str(char *out, size_t n, size_t k, const char *s) {
    while (*s && k + 1 < n) out[k++] = *s++;
    out[k] = 0;
    return k;
}

const char *launch_signal_name(int sig, char *out, size_t n) {
    /* sigabbrev_np reads a constant table (no lock, no allocation): a
     * handler may call it. It names no real-time signal: those are kill
     * -l's SIGRTMIN, SIGRTMIN+K, SIGRTMAX. */
    const char *ab = sigabbrev_np(sig);
    if (ab) return put_str(out, n, put_str(out, n, 0, "SIG"), ab), out;
    if (sig == SIGRTMIN || sig == SIGRTMAX)
        return put_str(out, n, 0, sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMAX"), out;
    if (sig < SIGRTMIN || sig > SIGRTMAX) return put_str(out, n, 0, "an unnamed signal"), out;
    char d[4]; /* K < 100: Linux has 32 real-time signals */
    int v = sig - SIGRTMIN, j = sizeof d - 1;
    d[j] = 0;
    do d[--j] = (char)('0' + v % 10); while ((v /= 10) > 0 && j > 0);
    return put_str(out, n, put_str(out, n, 0, "SIGRTMIN+"), d + j), out;
}

/* what the first signal does, said on stderr: SIGUSR1 reaches the ranks
 * unannounced, where the trainer would have said a SIGINT's. Built with
 * async-signal-safe calls only. */
static void say_stop(int sig) {
    char name[LAUNCH_SIGNAME_MAX];
    launch_signal_name(sig, name, sizeof name);
    const char *what = sig == SIGQUIT ? ": aborting the job\n"
                     : ": the job checkpoints at the end of its step and stops; a second ";
    char m[256] = "jepa-launch: ";
    size_t n = strlen(m);
    const char *parts[] = {name, what, sig == SIGQUIT ? "" : name, sig == SIGQUIT ? "" : " aborts it\n"};
    for (size_t i = 0; i < 4; i++) {
        size_t k = strlen(parts[i]);
        if (n + k < sizeof m) memcpy(m + n, parts[i], k), n += k;
    }
    ssize_t r = write(STDERR_FILENO, m, n); /* a hung-up terminal: nothing to tell */
    (void)r;
}

static void on_signal(int sig) {
    int e = errno;
    if (!g_stop) g_stop = sig; /* the one reported */
    g_nstop++;
    if (g_child > 0) kill(g_child, forwarded(sig, g_nstop));
    if (g_say && (g_nstop == 1 || sig == SIGQUIT)) say_stop(sig);
    errno = e;
}

/* Ctrl-Z stops mpirun (its ranks with it), then us; fg's SIGCONT to our
 * group goes on to mpirun's */
static void on_job_control(int sig) {
    int e = errno;
    if (g_child > 0) kill(g_child, sig);
    if (sig == SIGTSTP) kill(getpid(), SIGSTOP);
    errno = e;
}

/* mpirun's stdout and stderr are ours (or train.log): never a pipe through
 * us, so a launcher that dies (kill -9) leaves the job writing where it did.
 * Its own process group (on_signal says why); stdin /dev/null, as a
 * background group that read the terminal would be stopped (SIGTTIN). */
static int spawn(char *const *argv, const char *out_path, const sigset_t *mask, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, mask); /* not ours, blocked across the spawn */
    sigset_t dfl; /* what we ignore, mpirun and its ranks take as their own */
    launch_quiet_set(&dfl);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    /* mpirun gives the ranks a pipe for stderr: the trainer draws its
     * progress line when told that the stderr it ends in is a terminal */
    if (!out_path && isatty(STDERR_FILENO)) setenv("JEPA_PROGRESS", "1", 0);
    int rc = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Waits for pid (the child in g_child) and returns its wait status. The
 * exit is awaited without reaping (WNOWAIT) and g_child cleared before the
 * reaping waitpid: until then the pid is a zombie no other process can
 * take, so on_signal never kills a stale pid. */
static int wait_child(pid_t pid) {
    siginfo_t si;
    int ws = 0;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
    g_child = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    return ws;
}

int launch_check_world(const char *run_dir, const jepa_spec *s, const launch_opts *o, int resume, char *err,
                       size_t errlen) {
    int ranks = o && o->ranks > 0 ? o->ranks : s->parallel.ranks, world;
    char ckpt[LAUNCH_PATH_MAX + 64];
    if (!(resume || !strcmp(s->resume, "auto")) || launch_ckpt_world(run_dir, &world, ckpt, sizeof ckpt) != 0 ||
        world == ranks)
        return 0;
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
    return 0;
}

int launch_error_tmp(const char *name) {
    if (strncmp(name, "error.", 6) != 0) return 0;
    size_t k = strspn(name + 6, "0123456789");
    return k > 0 && !strcmp(name + 6 + k, ".tmp");
}

int launch_error_tmps_remove(const char *run_dir, char *why, size_t n) {
    char path[LAUNCH_PATH_MAX + 300];
    int rc = 0;
    DIR *d = opendir(run_dir);
    for (struct dirent *e; d && rc == 0 && (e = readdir(d));) {
        if (!launch_error_tmp(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT) /* gone already: its rank renamed it */
            rc = launch_errf(why, n, "cannot remove %s: %s", path, strerror(errno));
    }
    if (d) closedir(d);
    return rc;
}

/* k, or less: where s[0, k) ends after its last whole UTF-8 character
 * (bytes that are not UTF-8 are kept as they are) */
static size_t utf8_whole(const char *s, size_t k) {
    if (k == 0) return 0;
    size_t j = k - 1; /* the last character's lead byte: at most 3 continuation bytes after it */
    while (j > 0 && k - j < 4 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    unsigned char lead = (unsigned char)s[j];
    size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return lead >= 0xC0 && k - j < len ? j : k;
}

/* f's first line, without its newline, into line (n > 4); one that does
 * not fit is cut after a whole UTF-8 character (paths may hold any) and
 * ends "..." to say so */
static void first_line(FILE *f, char *line, size_t n) {
    *line = 0;
    if (!fgets(line, (int)n - 3, f)) return;
    size_t k = strcspn(line, "\n");
    int c = line[k] ? '\n' : fgetc(f); /* what follows what was read */
    line[k] = 0;
    if (c != EOF && c != '\n') memcpy(line + utf8_whole(line, k), "...", 4);
}

/* How an attempt ended beyond its exit status: what the trainer cannot
 * say when a signal killed it or a rank exited before it could. */
typedef struct {
    int mpirun_sig; /* the signal that killed mpirun itself, 0 when it exited */
    int logged;     /* mpirun's output went to RUN/train.log (o->log_output) */
    off_t log_from; /* train.log's size when the attempt started */
} attempt_end;

/* Why an attempt that left no line of the trainer's failed, when a signal
 * ended it, into why as ": WORDS" ("" when none did): the rank and node
 * from mpirun's words in train.log (said), or "a rank" from mpirun's
 * status 128 + S alone (its words went to the terminal), or mpirun itself. */
static void job_killed(int status, const attempt_end *e, const mpirun_end *said, char *why, size_t n) {
    char name[LAUNCH_SIGNAME_MAX], who[160] = "a rank";
    int sig = e->mpirun_sig ? e->mpirun_sig : status - 128;
    *why = 0;
    if (e->mpirun_sig) snprintf(who, sizeof who, "mpirun");
    else if (said->kind == MPIRUN_END_SIGNAL)
        snprintf(who, sizeof who, "rank %d on node %s", said->rank, said->node), sig = said->sig;
    else if (status <= 128 || status >= 128 + LAUNCH_NSIG)
        return;
    /* the kernel's OOM killer sends SIGKILL, and so do kill -9 and a batch system's hard limit */
    snprintf(why, n, ": %s killed by signal %d (%s%s)", who, sig, launch_signal_name(sig, name, sizeof name),
             sig == SIGKILL ? "; out of memory?" : "");
}

/* Why an attempt that left no line of the trainer's failed, into why as
 * ": WORDS" ("" when unknown): what killed it (job_killed), else the rank
 * Open MPI says exited with a non-zero status first (a library's exit(),
 * a rank that failed before the trainer could write RUN/error). mpirun's
 * words are read from the attempt's part of train.log (mpirun_log.h),
 * unless mpirun itself was killed. */
static void job_unexplained(const char *run_dir, int status, const attempt_end *e, char *why, size_t n) {
    char path[LAUNCH_PATH_MAX + 16];
    mpirun_end said = {.kind = MPIRUN_END_NONE};
    snprintf(path, sizeof path, "%s/train.log", run_dir);
    if (e->logged && !e->mpirun_sig) mpirun_log_read(path, e->log_from, &said);
    if (said.kind == MPIRUN_END_EXIT) snprintf(why, n, ": rank %d exited with status %d", said.rank, said.code);
    else job_killed(status, e, &said, why, n);
}

/* The failed attempt's one line (jepa-train's note_failure: RUN/error,
 * removed before each attempt) into why as ": LINE"; without one, what
 * killed it or which rank exited (job_unexplained); "" when neither is
 * known (mpirun's own failure, its words on the terminal or in
 * train.log). Said in launch.log too. */
static void job_error(const char *run_dir, int attempt, int status, const attempt_end *e, char *why, size_t n) {
    char path[LAUNCH_PATH_MAX + 16], line[320] = "";
    snprintf(path, sizeof path, "%s/error", run_dir);
    FILE *f = spec_fopen_regular(path, NULL, 0);
    if (f) first_line(f, line, sizeof line);
    if (f) fclose(f);
    if (line[0]) snprintf(why, n, ": %s", line);
    else job_unexplained(run_dir, status, e, why, n);
    if (*why) launch_log(run_dir, "attempt %d: %s", attempt, why + 2);
}

/* After attempt's exit with status: state and launch.log say what
 * happened, a failure's state with the trainer's line or what ended it
 * (job_error); 1 when the loop ends here, 0 for a restart. */
static int attempt_ended(const char *run_dir, const jepa_spec *s, int attempt, int status, const attempt_end *e) {
    char w[400] = "";
    if (status != 0 && !g_stop) job_error(run_dir, attempt, status, e, w, sizeof w);
    if (status == 0) {
        launch_set_state(run_dir, "done");
        launch_log(run_dir, "attempt %d: finished", attempt);
    } else if (g_stop) {
        launch_set_state(run_dir, "stopped signal=%d", (int)g_stop);
        launch_log(run_dir, "attempt %d: stopped by signal %d (status %d); not restarting", attempt, (int)g_stop,
                   status);
    } else if (status == 4) { /* TRAIN_EXIT_REFUSED: the inputs were refused before any step */
        launch_set_state(run_dir, "failed status=4 (inputs refused at setup; not restarted)%s", w);
        launch_log(run_dir, "attempt %d: jepa-train refused its inputs (status 4); a restart would repeat it",
                   attempt);
    } else if (status == 2) { /* its command line or spec: the same every attempt */
        launch_set_state(run_dir, "failed status=2 (command line or spec rejected; not restarted)%s", w);
        launch_log(run_dir, "attempt %d: jepa-train rejected its command line or spec (status 2); a restart "
                   "would repeat it", attempt);
    } else if (status == 3) { /* TRAIN_EXIT_NONFINITE: a NaN recurs at the same step on resume */
        launch_set_state(run_dir, "failed status=3 (non-finite loss; not restarted)%s", w);
        launch_log(run_dir, "attempt %d: non-finite loss or gradient (status 3); a restart would repeat it",
                   attempt);
    } else if (status == 5) { /* TRAIN_EXIT_NOMEM: the same keys ask for the same memory. The
                                * directory stays: it may hold checkpoints (evaluations
                                * allocate too) */
        launch_set_state(run_dir, "failed status=5 (out of memory; not restarted)%s", w);
        launch_log(run_dir, "attempt %d: jepa-train ran out of memory (status 5); a restart would repeat it",
                   attempt);
    } else if (attempt >= s->max_restarts) {
        launch_set_state(run_dir, "failed status=%d restarts=%d%s", status, attempt, w);
        launch_log(run_dir, "attempt %d: exited with status %d; no restarts left (max_restarts %d)", attempt,
                   status, s->max_restarts);
    } else {
        launch_log(run_dir, "attempt %d: exited with status %d; restart %d/%d with resume=auto", attempt, status,
                   attempt + 1, s->max_restarts);
        fprintf(stderr, "jepa-launch: %s: job exited with status %d; restart %d/%d with resume=auto\n", run_dir,
                status, attempt + 1, s->max_restarts);
        return 0;
    }
    return 1;
}

/* How long a restart waits for the last attempt's ranks to let go of
 * RUN/lock: mpirun killed (kill -9, the OOM killer) leaves its ranks
 * running on for a moment, and rank 0 holds the job's byte until it dies. */
#define RESTART_LOCK_WAIT_S 60

/* Before `attempt` (a restart when > 0): 0 once no process holds the job's byte of
 * RUN/lock (at once, as a rule), or when a stop signal came (the attempt
 * passes it on); -1 + err, state and launch.log saying so, when the last
 * attempt's rank 0 still holds it after RESTART_LOCK_WAIT_S (a restart
 * would be refused as a second job in the directory, exit 4). */
static int restart_wait(const char *run_dir, int attempt, char *err, size_t errlen) {
    int pid = run_lock_holder(RUN_LOCK_JOB);
    if (pid == 0) return 0;
    const char *hook = getenv("JEPA_DEBUG_RESTART_WAIT_S"); /* test hook: a shorter wait */
    const int wait_s = hook && atoi(hook) > 0 ? atoi(hook) : RESTART_LOCK_WAIT_S;
    launch_log(run_dir, "attempt %d: waiting for pid %d of the last attempt, which still holds %s/lock", attempt,
               pid, run_dir);
    for (int i = 0; i < wait_s * 10 && pid != 0 && !g_stop; i++) {
        usleep(100000);
        pid = run_lock_holder(RUN_LOCK_JOB);
    }
    if (pid == 0 || g_stop) return 0;
    snprintf(err, errlen, "%s: pid %d of attempt %d still holds %s/lock %d s after its mpirun ended: not "
             "restarted (stop it, then jepa-launch resume %s)", run_dir, pid, attempt - 1, run_dir, wait_s, run_dir);
    launch_set_state(run_dir, "failed: pid %d of attempt %d still holds the lock; not restarted", pid, attempt - 1);
    launch_log(run_dir, "attempt %d: pid %d still holds %s/lock after %d s; not restarted", attempt, pid, run_dir,
               wait_s);
    return -1;
}

/* One attempt: start, wait, the exit status and *e; -1 + err when it
 * cannot start. */
static int attempt_run(const char *run_dir, const jepa_spec *s, const launch_opts *o, int resume, int attempt,
                       attempt_end *e, char *err, size_t errlen) {
    char log_path[LAUNCH_PATH_MAX + 32];
    launch_argv a = {0};
    pid_t pid;
    snprintf(log_path, sizeof log_path, "%s/error", run_dir);
    unlink(log_path); /* the last attempt's: job_error reads this one's */
    char why[LAUNCH_PATH_MAX + 340]; /* and its temp files, of ranks killed while writing it */
    if (launch_error_tmps_remove(run_dir, why, sizeof why)) launch_log(run_dir, "attempt %d: %s", attempt, why);
    snprintf(log_path, sizeof log_path, "%s/train.log", run_dir);
    struct stat st;
    *e = (attempt_end){.logged = o && o->log_output};
    if (e->logged && stat(log_path, &st) == 0) e->log_from = st.st_size; /* the last attempts' words before it */
    launch_mpirun_argv(&a, s, o, run_dir, resume || attempt > 0);
    /* our signals wait until g_child is set: each is forwarded once, by on_signal */
    sigset_t ss, old;
    launch_stop_set(&ss);
    sigprocmask(SIG_BLOCK, &ss, &old);
    int rc = spawn(a.v, o && o->log_output ? log_path : NULL, &old, &pid);
    if (rc == 0) g_child = pid;
    /* one that came with no child to pass it to (between attempts) */
    if (rc == 0 && g_stop) kill(pid, forwarded(g_stop, g_nstop));
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", a.v[0], strerror(rc));
        launch_set_state(run_dir, "failed: cannot start %s", a.v[0]);
        launch_log(run_dir, "cannot start %s: %s", a.v[0], strerror(rc));
        launch_argv_free(&a);
        return -1;
    }
    /* pid: ours, whose death status reports as stale; mpirun's beside it */
    launch_set_state(run_dir, "running pid=%d mpirun=%d attempt=%d", (int)getpid(), (int)pid, attempt);
    launch_log(run_dir, "attempt %d: started %s (pid %d)%s", attempt, a.v[0], (int)pid,
               resume || attempt > 0 ? " with resume=auto" : "");
    launch_argv_free(&a);
    int ws = wait_child(pid);
    if (WIFSIGNALED(ws)) e->mpirun_sig = WTERMSIG(ws);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* The line a run our signal stopped ends with: resume advice only when a
 * checkpoint is there to resume from (one killed before its first has
 * nothing: a resume starts it again from step 0). */
static void stopped_said(const char *run_dir, int status, char *err, size_t errlen) {
    char ckpt[LAUNCH_PATH_MAX + 64], name[LAUNCH_SIGNAME_MAX];
    int world;
    if (launch_ckpt_world(run_dir, &world, ckpt, sizeof ckpt) == 1)
        snprintf(err, errlen, "%s: stopped by signal %d (%s; the job exited with status %d) before its first "
                 "checkpoint: nothing was kept to resume from; jepa-launch resume %s starts it again from step 0",
                 run_dir, (int)g_stop, launch_signal_name(g_stop, name, sizeof name), status, run_dir);
    else
        snprintf(err, errlen, "%s: stopped by signal %d (%s; the job exited with status %d); continue it with "
                 "jepa-launch resume %s", run_dir, (int)g_stop, launch_signal_name(g_stop, name, sizeof name), status, run_dir);
}

int launch_run_dir(const char *run_dir, const launch_opts *o, int resume, int *past_setup, char *err,
                   size_t errlen) {
    char path[LAUNCH_PATH_MAX + 32];
    jepa_spec s;
    if (past_setup) *past_setup = 0;
    spec_defaults(&s);
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", run_dir);
    if (spec_load_file(&s, path, err, errlen)) return -1;
    if (launch_check_world(run_dir, &s, o, resume, err, errlen)) return -1;
    /* one job per run directory (run_lock.h): ours (cmd_run took it
     * already), then the job's through JEPA_RUN_LOCK_PID */
    if (run_lock_take(run_dir, RUN_LOCK_LAUNCHER, err, errlen)) return -1;
    char me[24];
    snprintf(me, sizeof me, "%d", (int)getpid());
    setenv(RUN_LOCK_ENV, me, 1);

    struct sigaction old[LAUNCH_NSIG];
    g_stop = g_nstop = 0;
    g_say = !(o && o->log_output); /* a sweep's point: the sweep says what happened */
    /* a sweep forks its points with these blocked (sweep_run.c): one that
     * came before the handlers were in place is delivered now */
    sigset_t ss, jc;
    launch_stop_set(&ss);
    launch_catch(&ss, on_signal, old); /* its mask: g_nstop counts each signal once */
    sigemptyset(&jc);
    sigaddset(&jc, SIGTSTP);
    sigaddset(&jc, SIGCONT);
    launch_catch(&jc, on_job_control, old);
    sigprocmask(SIG_UNBLOCK, &ss, NULL);
    int status = 0, held = 0;
    for (int attempt = 0;; attempt++) {
        if ((held = restart_wait(run_dir, attempt, err, errlen) != 0)) break;
        attempt_end end;
        status = attempt_run(run_dir, &s, o, resume, attempt, &end, err, errlen);
        /* every exit but 2 and 4 (refused before any step) may have trained */
        if (status >= 0 && status != 2 && status != 4 && past_setup) *past_setup = 1;
        if (status < 0 || attempt_ended(run_dir, &s, attempt, status, &end)) break;
    }
    launch_uncatch(&ss, old);
    launch_uncatch(&jc, old);
    if (held) return 1; /* a failed run, not a refused command line: err says why */
    if (status < 0) return -1;
    if (status && g_stop) { /* ours to stop, not a failure: say how to continue */
        stopped_said(run_dir, status, err, errlen);
        /* the trainer's own "stopped, resumable" exit: mpirun, signalled
         * itself, exits 1 where its ranks exit 75, which reads as a failure */
        return LAUNCH_EXIT_STOPPED;
    }
    if (status)
        snprintf(err, errlen, "%s: job failed with status %d (see %s/launch.log)", run_dir, status, run_dir);
    /* a job's own 75 (its ranks stopped by signals not ours) that ran out of
     * restarts failed, as state says: 75 from us means stopped by our signal,
     * resumable, and a sweep reads its points' exits so (sweep_run.c) */
    return status == LAUNCH_EXIT_STOPPED ? 1 : status;
}
