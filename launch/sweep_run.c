/* sweep_run.c - a sweep's points run here, d->parallel at a time, each in a
 * child of ours under launch_run_dir's restart loop. SIGINT/SIGTERM/SIGHUP/
 * SIGUSR1 (Slurm's warning before a time limit; SIGQUIT, the abort; any
 * other of launch_stop_set's) to the sweep go to every running point (each stops its job, which
 * checkpoints: resumable, exit 75) and no new point starts; the caller then
 * says what was done, stopped and not started. Each point is its own
 * process group, so a terminal's Ctrl-C reaches it only through us: one
 * signal, not two (a point takes a second as the abort). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "stdout_close.h"

/* The running points' pids (0: none), which on_signal passes the signal
 * to: changed only with g_sigs blocked, so it never sees a pid
 * half-written or one already reaped (and maybe reused). */
static volatile sig_atomic_t g_stop;
static pid_t *g_pids;
static volatile int g_npids;

/* The terminal's keys reach only us (the points are groups of their own):
 * each goes on to every running point as it would have reached it alone.
 * Ctrl-\ (SIGQUIT) is each point's abort and stops the sweep too; Ctrl-Z
 * (SIGTSTP) stops the points, then us, and fg's SIGCONT continues them.
 * g_sigs: launch_stop_set's (every signal that would end us alone and
 * orphan the points' jobs, SIGUSR2 and SIGALRM among them), TSTP, CONT. */
static sigset_t g_sigs;

static void on_signal(int sig) {
    if (sig != SIGTSTP && sig != SIGCONT) g_stop = sig;
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] > 0) kill(g_pids[i], sig);
    if (sig == SIGTSTP) kill(getpid(), SIGSTOP);
}

static void block_signals(sigset_t *old) { sigprocmask(SIG_BLOCK, &g_sigs, old); }

/* Point i in a child. It starts with g_sigs blocked (forked so):
 * launch_run_dir installs its own handlers, then unblocks the stop signals,
 * so one that came meanwhile reaches its job instead of being lost; it
 * never unblocks SIGTSTP/SIGCONT, so the child does that itself. */
static pid_t start_point(const launch_spec *sp, const launch_opts *lo, int resume) {
    pid_t pid = fork();
    if (pid > 0) setpgid(pid, 0); /* both sides: no window in our group */
    if (pid != 0) return pid;
    char err[SPEC_ERR_MAX];
    setpgid(0, 0); /* the group's Ctrl-C reaches us only from on_signal, once */
    g_npids = 0; /* our copy of the parent's list: never signal a sibling */
    sigset_t tc;
    sigemptyset(&tc);
    sigaddset(&tc, SIGTSTP);
    sigaddset(&tc, SIGCONT);
    sigprocmask(SIG_UNBLOCK, &tc, NULL);
    int rc = launch_run_dir(sp->spec.run_dir, lo, resume, NULL, err, sizeof err);
    if (rc < 0) fprintf(stderr, "jepa-launch: %s\n", err);
    _exit(rc < 0 ? 1 : rc > 255 ? 255 : rc);
}

/* The "failed ..." line the point's restart loop left in run_dir/state
 * (as `status` shows it) into out, 0; -1 when state says something else.
 * The point's own exit cannot carry it: launch_run_dir returns 1 for a job
 * that exited 75 until its restarts ran out (75 from a point is "stopped"). */
static int failed_state(const char *run_dir, char *out, size_t n) {
    char path[LAUNCH_PATH_MAX + 16], err[SPEC_ERR_MAX], *text = NULL;
    snprintf(path, sizeof path, "%s/state", run_dir);
    int ok = spec_read_file(path, LAUNCH_SMALL_MAX, "state", &text, NULL, err, sizeof err) == 0 &&
             !strncmp(text, "failed", 6);
    if (ok) snprintf(out, n, "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
    return ok ? 0 : -1;
}

/* Point i's exit status st, said on stdout and counted. A point stopped by
 * a signal (its launcher's exit 75; or killed by the sweep's signal before
 * it could say so) is resumable, not failed. A failed one is said as its
 * state says it (the job's status), else by its exit status. */
static void point_ended(const launch_spec *specs, int i, int st, sweep_outcome *out) {
    char state[512];
    int stopped = st == LAUNCH_EXIT_STOPPED || (g_stop && st == 128 + g_stop);
    if (st == 0) {
        printf("point-%03d: done\n", i);
        out->done++;
    } else if (stopped) {
        printf("point-%03d: stopped by a signal (resumable: the sweep run again continues it)\n", i);
        out->stopped++;
    } else {
        if (failed_state(specs[i].spec.run_dir, state, sizeof state) == 0)
            printf("point-%03d: %s, see %s/train.log\n", i, state, specs[i].spec.run_dir);
        else
            printf("point-%03d: failed (status %d, see %s/train.log)\n", i, st, specs[i].spec.run_dir);
        out->failed++;
    }
    stdout_flush();
}

/* Waits for one point to end: its exit is awaited without reaping
 * (WNOWAIT) and its pid taken off the list (signals blocked) before the
 * reaping waitpid. -1 when no child is left; 0 when a signal came first. */
static int reap_one(pid_t *pids, int n, int *point, int *status) {
    siginfo_t si;
    sigset_t old;
    int ws = 0;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0) return errno == EINTR ? 0 : -1;
    block_signals(&old);
    *point = -1;
    for (int i = 0; i < n; i++)
        if (pids[i] == si.si_pid) pids[i] = 0, *point = i;
    while (waitpid(si.si_pid, &ws, 0) < 0 && errno == EINTR) {}
    sigprocmask(SIG_SETMASK, &old, NULL);
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 1;
}

int sweep_run_local(const sweep_def *d, const launch_spec *specs, const sweep_point_state *have, int n,
                    const launch_opts *o, sweep_outcome *out) {
    int parallel = d->parallel > 0 ? d->parallel : 1, running = 0, next = 0;
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    launch_opts lo = o ? *o : (launch_opts){0};
    struct sigaction old_sa[LAUNCH_NSIG];
    sigset_t old;
    memset(out, 0, sizeof *out);
    if (!pids) launch_oom();
    lo.log_output = 1;
    stdout_flush(); /* its errno kept for stdout_close */
    fflush(NULL);
    launch_stop_set(&g_sigs);
    sigaddset(&g_sigs, SIGTSTP);
    sigaddset(&g_sigs, SIGCONT);
    block_signals(&old);
    g_stop = 0;
    g_pids = pids;
    g_npids = n;
    launch_catch(&g_sigs, on_signal, old_sa); /* SIGHUP (ssh gone): as SIGTERM */
    for (;;) {
        /* no point starts once a signal came (checked with it blocked) */
        while (!g_stop && running < parallel && next < n) {
            if (have && have[next] == SWEEP_POINT_FINISHED) {
                printf("point-%03d: finished before (%s/summary.json): skipped\n", next, specs[next].spec.run_dir);
                out->done++;
                next++;
                continue;
            }
            /* a pending point as before: resume=auto starts over where there is no checkpoint */
            int resume = have && (have[next] == SWEEP_POINT_UNFINISHED || have[next] == SWEEP_POINT_PENDING);
            if (!resume) launch_set_state(specs[next].spec.run_dir, "pending");
            pid_t pid = start_point(&specs[next], &lo, resume);
            if (pid < 0) {
                fprintf(stderr, "jepa-launch: fork: %s\n", strerror(errno));
                out->failed++;
                next++;
                continue;
            }
            printf("point-%03d: started (%s/train.log)\n", next, specs[next].spec.run_dir);
            stdout_flush();
            pids[next++] = pid;
            running++;
        }
        sigprocmask(SIG_SETMASK, &old, NULL); /* a signal that came meanwhile is passed on here */
        if (running == 0) break;
        int i, st, r = reap_one(pids, n, &i, &st);
        if (r < 0) break;
        if (r > 0 && i >= 0) {
            point_ended(specs, i, st, out);
            running--;
        }
        block_signals(&old);
    }
    launch_uncatch(&g_sigs, old_sa);
    g_npids = 0;
    g_pids = NULL;
    for (; next < n; next++) /* what a signal left unstarted (finished ones stay done) */
        if (have && have[next] == SWEEP_POINT_FINISHED) out->done++;
        else out->not_started++;
    out->signal = (int)g_stop;
    free(pids);
    return out->failed;
}
