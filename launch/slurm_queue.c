/* slurm_queue.c - what Slurm says of the jobs run directories name: one
 * squeue call for any number of them (a sweep's thousand points cost one
 * call), read by the refusals (a directory Slurm still has queued or
 * running is not started again) and by status and results (a state file
 * that says "submitted" or "running job=J" after the job ended is stale). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

#define QUEUE_WAIT_MS 10000 /* a hung slurmctld: given up, nothing known */

/* squeue's stdout into a malloc'd *out, within QUEUE_WAIT_MS (a squeue that
 * takes longer is killed). 0; -1 timed out; -2 a read failed (errno). */
static int read_all(int fd, pid_t pid, char **out) {
    size_t k = 0, cap = 4096;
    char *buf = malloc(cap);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!buf) launch_oom();
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = QUEUE_WAIT_MS - (long)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int p = left > 0 ? poll(&pf, 1, (int)left) : 0;
        if (p < 0 && errno == EINTR) continue;
        if (p <= 0) break; /* timed out */
        if (k + 1 >= cap && !(buf = realloc(buf, cap *= 2))) launch_oom();
        ssize_t r = read(fd, buf + k, cap - 1 - k);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            buf[k] = 0;
            *out = buf;
            return 0;
        }
        if (r < 0) {
            free(buf);
            return -2;
        }
        k += (size_t)r;
    }
    kill(pid, SIGKILL);
    free(buf);
    return -1;
}

/* squeue's last stderr line (f, closed here) into last */
static void last_line(FILE *f, char *last, size_t n) {
    char line[256];
    *last = 0;
    if (!f) return;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[strspn(line, " \t")]) snprintf(last, n, "%s", line);
    }
    fclose(f);
}

/* `squeue -h -r -o '%i %A %T' -j ID,ID,...` ($JEPA_SQUEUE: another squeue):
 * one line per job or array task it lists ("29_3 31 RUNNING": the task,
 * its own job id, its state) into *out. 0; -1 + why (one clause) when
 * nothing is known: squeue cannot be run, fails, or hangs. Ended jobs are
 * not listed; squeue exits 1 ("Invalid job id specified") when it lists
 * none of them, which is an answer too. */
static int squeue_lines(const char *ids, char **out, char *why, size_t n) {
    const char *sq = getenv("JEPA_SQUEUE");
    char *argv[] = {(char *)(sq && *sq ? sq : "squeue"), "-h", "-r", "-o", "%i %A %T", "-j", (char *)ids, NULL};
    char last[256];
    int fds[2], ws = 0;
    *out = NULL;
    if (pipe(fds) != 0) return launch_errf(why, n, "pipe: %s", strerror(errno));
    FILE *errf = tmpfile();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (errf) posix_spawn_file_actions_adddup2(&fa, fileno(errf), 2);
    else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        if (errf) fclose(errf);
        return launch_errf(why, n, "cannot run %s: %s", argv[0], strerror(rc));
    }
    int read_rc = read_all(fds[0], pid, out), read_errno = errno;
    close(fds[0]);
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {} /* a killed one too */
    last_line(errf, last, sizeof last);
    if (read_rc == -2) return launch_errf(why, n, "cannot read %s's output: %s", argv[0], strerror(read_errno));
    if (read_rc) return launch_errf(why, n, "%s did not answer within %d s", argv[0], QUEUE_WAIT_MS / 1000);
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
    if (WIFEXITED(ws) && strstr(last, "Invalid job id")) return **out = 0, 0; /* none listed: all ended */
    free(*out);
    *out = NULL;
    return launch_errf(why, n, "%s failed%s%s", argv[0], *last ? ": " : "", last);
}

/* jobs by id, for the lookups below (a sweep's thousands of points) */
static const launch_slurm_job *g_sort_jobs;
static int by_id(const void *a, const void *b) {
    return strcmp(g_sort_jobs[*(const int *)a].id, g_sort_jobs[*(const int *)b].id);
}

/* Sets state on every job whose id is key (order: jobs' indices sorted by id) */
static void set_state(launch_slurm_job *jobs, const int *order, int n, const char *key, const char *state) {
    int lo = 0, hi = n; /* the first whose id is not below key */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(jobs[order[mid]].id, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < n && !strcmp(jobs[order[lo]].id, key); lo++)
        if (!jobs[order[lo]].state[0]) snprintf(jobs[order[lo]].state, sizeof jobs[order[lo]].state, "%s", state);
}

int launch_slurm_query(launch_slurm_job *jobs, int n, char *why, size_t whylen) {
    size_t len = 1, k = 0;
    int *order = calloc((size_t)n + 1, sizeof *order);
    if (!order) launch_oom();
    for (int i = 0; i < n; i++) len += strlen(jobs[i].id) + 1, order[i] = i, jobs[i].state[0] = 0;
    g_sort_jobs = jobs;
    qsort(order, (size_t)n, sizeof *order, by_id);
    char *ids = malloc(len), *text;
    if (!ids) launch_oom();
    *ids = 0;
    for (int i = 0; i < n; i++) /* each id once: a sweep's points may share their array's */
        if (i == 0 || strcmp(jobs[order[i]].id, jobs[order[i - 1]].id))
            k += (size_t)snprintf(ids + k, len - k, "%s%s", k ? "," : "", jobs[order[i]].id);
    int rc = n == 0 ? 0 : squeue_lines(ids, &text, why, whylen);
    free(ids);
    /* a query matches the task ("29_3", a pending task's only name) or the
     * job id (a running task's SLURM_JOB_ID; the array's own, 29) */
    if (rc == 0 && n > 0) {
        for (char *line = text, *next; *line; line = next) {
            next = line + strcspn(line, "\n");
            if (*next) *next++ = 0;
            char task[64], job[64], state[32];
            if (sscanf(line, "%63s %63s %31s", task, job, state) != 3) continue;
            set_state(jobs, order, n, task, state);
            set_state(jobs, order, n, job, state);
        }
        free(text);
    }
    free(order);
    return rc;
}

int launch_slurm_job_of(const char *dir, const char *state, const char *array_dir, char *id, size_t n) {
    char path[LAUNCH_PATH_MAX + 32], why[SPEC_ERR_MAX], *job = NULL;
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%%zu[0-9_]", n - 1);
    *id = 0;
    if (!strncmp(state, "running job=", 12)) {
        sscanf(state + 12, fmt, id);
        return *id ? 1 : 0;
    }
    if (strcmp(state, "submitted") != 0) return 0;
    /* its id: slurm_job, written after sbatch answered (a sweep's point's:
     * ARRAY_TASK; from before that, only the sweep directory's ARRAY) */
    for (int k = 0; k < 2 && !*id; k++) {
        const char *d = k == 0 ? dir : array_dir;
        if (!d) continue;
        snprintf(path, sizeof path, "%s/slurm_job", d);
        if (spec_read_file(path, LAUNCH_SMALL_MAX, "slurm_job", &job, NULL, why, sizeof why) == 0)
            sscanf(job, fmt, id);
        free(job);
        job = NULL;
    }
    return *id ? 1 : 0;
}

/* The first line of dir/state into out ("" when there is none) */
static void first_state_line(const char *dir, char *out, size_t n) {
    char path[LAUNCH_PATH_MAX + 32], why[SPEC_ERR_MAX], *state = NULL;
    *out = 0;
    snprintf(path, sizeof path, "%s/state", dir);
    if (spec_read_file(path, LAUNCH_SMALL_MAX, "state", &state, NULL, why, sizeof why) == 0)
        snprintf(out, n, "%.*s", (int)strcspn(state, "\n"), state);
    free(state);
}

int launch_slurm_busy_dirs(const char *const *dirs, int n, const char *array_dir, char *id, size_t idlen,
                           char *state, size_t slen) {
    launch_slurm_job *jobs = calloc((size_t)n + 1, sizeof *jobs);
    int *of = calloc((size_t)n + 1, sizeof *of), m = 0, busy = -1;
    char line[192], why[SPEC_ERR_MAX];
    if (!jobs || !of) launch_oom();
    for (int i = 0; i < n; i++) {
        first_state_line(dirs[i], line, sizeof line);
        if (launch_slurm_job_of(dirs[i], line, array_dir, jobs[m].id, sizeof jobs[m].id)) of[m++] = i;
    }
    /* squeue that cannot be run or fails: nothing is known, and the job's
     * trainer still takes RUN/lock */
    if (m && launch_slurm_query(jobs, m, why, sizeof why) == 0)
        for (int j = 0; j < m && busy < 0; j++)
            if (jobs[j].state[0]) {
                busy = of[j];
                snprintf(id, idlen, "%s", jobs[j].id);
                snprintf(state, slen, "%s", jobs[j].state);
            }
    free(jobs);
    free(of);
    return busy;
}

int launch_slurm_busy(const char *dir, char *err, size_t errlen) {
    char id[64], st[32];
    if (launch_slurm_busy_dirs(&dir, 1, NULL, id, sizeof id, st, sizeof st) < 0) return 0;
    return launch_errf(err, errlen, "run.dir %s belongs to Slurm job %s, still %s (squeue): one job per run "
                       "directory; scancel %s, wait for it, or choose another run.dir", dir, id, st, id), 1;
}

/* What squeue's state of job id (state: "" when it lists it not) makes of
 * st->state, a "submitted" or "running job=..." one: unchanged while Slurm
 * agrees; stale when the job is gone; pending when a running job is queued
 * again (requeued, BeginTime); other states said beside it. */
static void settle_state(run_status *st, const char *id, const char *state, const char *run_dir) {
    static const char *const running[] = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING",
                                          "RESIZING"};
    int is_running = 0, was_running = !strncmp(st->state, "running", 7);
    for (size_t k = 0; k < sizeof running / sizeof *running; k++) is_running |= !strcmp(state, running[k]);
    if (!*state) {
        snprintf(st->state, sizeof st->state, "stale (Slurm job %s is gone)", id);
        launch_status_resume(run_dir, st);
    } else if (!strcmp(state, "PENDING") || !strncmp(state, "REQUEUE", 7)) {
        if (was_running) snprintf(st->state, sizeof st->state, "pending (Slurm job %s queued)", id);
    } else if (!is_running || !was_running) { /* SUSPENDED, ...; or submitted and running: about to say so */
        size_t k = strlen(st->state);
        snprintf(st->state + k, sizeof st->state - k, " (Slurm: %s)", state);
    }
}

void launch_slurm_states(const char *const *dirs, run_status *const *sts, int n, const char *array_dir) {
    launch_slurm_job *jobs = calloc((size_t)n + 1, sizeof *jobs);
    int *of = calloc((size_t)n + 1, sizeof *of), m = 0;
    char why[SPEC_ERR_MAX];
    if (!jobs || !of) launch_oom();
    for (int i = 0; i < n; i++)
        if (!sts[i]->damaged[0] &&
            launch_slurm_job_of(dirs[i], sts[i]->state, array_dir, jobs[m].id, sizeof jobs[m].id))
            of[m++] = i;
    int rc = m ? launch_slurm_query(jobs, m, why, sizeof why) : 0;
    for (int j = 0; j < m; j++) {
        run_status *st = sts[of[j]];
        size_t k = strlen(st->state);
        int room = (int)(sizeof st->state - k) - (int)sizeof " (unverified: )";
        if (rc && room > 0) /* nothing known: not guessed either way; cut to keep the ')' */
            snprintf(st->state + k, sizeof st->state - k, " (unverified: %.*s)", room, why);
        else if (!rc)
            settle_state(st, jobs[j].id, jobs[j].state, dirs[of[j]]);
    }
    free(jobs);
    free(of);
}

/* What Slurm says of the rows whose state names a Slurm job (one squeue
 * call for all): a sweep's points (sweep: dir/point-NNN, the array's id
 * in dir/slurm_job) or one run (dir). */
void launch_slurm_rows(const char *dir, int sweep, result_row *rows, int n) {
    char (*paths)[LAUNCH_PATH_MAX + 16] = calloc((size_t)n + 1, sizeof *paths);
    const char **dirs = calloc((size_t)n + 1, sizeof *dirs);
    run_status **sts = calloc((size_t)n + 1, sizeof *sts);
    if (!paths || !dirs || !sts) launch_oom();
    for (int i = 0; i < n; i++) {
        if (sweep) snprintf(paths[i], sizeof paths[i], "%s/point-%03d", dir, rows[i].point);
        else snprintf(paths[i], sizeof paths[i], "%s", dir);
        dirs[i] = paths[i];
        sts[i] = &rows[i].st;
    }
    launch_slurm_states(dirs, sts, n, sweep ? dir : NULL);
    free(paths);
    free(dirs);
    free(sts);
}

int launch_sweep_busy(const char *sweep_dir, int n, char *err, size_t errlen) {
    char (*paths)[LAUNCH_PATH_MAX + 16] = calloc((size_t)n + 1, sizeof *paths);
    const char **dirs = calloc((size_t)n + 1, sizeof *dirs);
    char id[64], st[32];
    if (!paths || !dirs) launch_oom();
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/point-%03d", sweep_dir, i);
        dirs[i] = paths[i];
    }
    int i = launch_slurm_busy_dirs(dirs, n, sweep_dir, id, sizeof id, st, sizeof st);
    free(paths);
    free(dirs);
    if (i < 0) return 0;
    /* scancel of the array (A of A_T) takes every point it still holds */
    return launch_errf(err, errlen, "%s: point-%03d belongs to Slurm job %s, still %s (squeue): a sweep runs "
                       "each point once; scancel %.*s, wait for it, or choose another dir", sweep_dir, i, id, st,
                       (int)strcspn(id, "_"), id), 1;
}
