/* run_lock.c - the run directory's lock (run_lock.h says who holds what). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_lock.h"

/* the pid holding byte b of fd's file against us, 0 when free (or F_GETLK
 * fails), -1 when it is held but the holder cannot be named */
static int holder_of(int fd, int b) {
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = b, .l_len = 1};
    if (fcntl(fd, F_GETLK, &q) != 0 || q.l_type == F_UNLCK) return 0;
    return q.l_pid > 0 ? (int)q.l_pid : -1;
}

static int refused(const char *run_dir, int pid, char *err, size_t errlen) {
    char who[48] = "another process";
    if (pid > 0) snprintf(who, sizeof who, "pid %d", pid);
    snprintf(err, errlen, "run.dir %s is in use by %s (it holds %s/lock): one job per run directory; wait for "
             "it, stop it, or choose another run.dir", run_dir, who, run_dir);
    return 1;
}

static int g_fd = -1; /* the lock file as run_lock_take holds it (never closed) */

int run_lock_take(const char *run_dir, run_lock_role role, char *err, size_t errlen) {
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    /* never closed once locked: closing any descriptor of the file drops the locks */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno)), -1;
    int mine = role == RUN_LOCK_JOB, other = !mine;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = mine, .l_len = 1};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno, pid = holder_of(fd, mine);
        close(fd); /* we hold nothing in this file */
        if (e != EACCES && e != EAGAIN) { /* a file system without locks (NFS without lockd): train anyway */
            fprintf(stderr, "jepa: warning: cannot lock %s (%s): one job per run directory is not enforced "
                    "there\n", path, strerror(e));
            return 0;
        }
        return refused(run_dir, pid, err, errlen);
    }
    int pid = holder_of(fd, other);
    const char *env = getenv(RUN_LOCK_ENV);
    if (pid == 0 || (mine && pid > 0 && env && atoi(env) == pid)) { /* free, or a job under its launcher */
        g_fd = fd;
        return 0;
    }
    return refused(run_dir, pid, err, errlen); /* the process ends: our byte goes with it */
}

int run_lock_probe(const char *run_dir, char *err, size_t errlen) {
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    /* read-only, never created: a dry run writes nothing (F_GETLK needs no
     * write access); a caller that holds a lock in this file must not call it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO's open would wait for a writer */
    if (fd < 0) return 0;
    int pid = holder_of(fd, RUN_LOCK_LAUNCHER);
    if (pid == 0) pid = holder_of(fd, RUN_LOCK_JOB);
    close(fd);
    return pid == 0 ? 0 : refused(run_dir, pid, err, errlen);
}

int run_lock_holder(run_lock_role role) {
    return g_fd < 0 ? 0 : holder_of(g_fd, role);
}
