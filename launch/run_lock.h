/* run_lock.h - one job per run directory. RUN/lock is an empty file (made
 * once, never written, never removed) holding two fcntl write locks, each
 * held for its holder's whole life and dropped by the kernel when it dies
 * (kill -9 included: no stale lock is ever left):
 *   byte 0, the launcher's: jepa-launch run, resume and a sweep's point take
 *     it before they write in RUN, and export JEPA_RUN_LOCK_PID=<their pid>;
 *   byte 1, the job's: jepa-train's rank 0 takes it before it writes its
 *     spec files.
 * A launcher is refused when either byte is held by another process (a
 * job its killed launcher left running still holds byte 1); a job when
 * byte 1 is held, or byte 0 by any pid but the one JEPA_RUN_LOCK_PID names.
 * Two bytes, not one: fcntl locks belong to a process, so a launcher and
 * the trainer it starts cannot share one. fcntl, not flock: F_GETLK names
 * the holder, and the locks are never inherited by mpirun or the ranks.
 * The trap: a process that closes any descriptor of RUN/lock drops its
 * locks, so nothing but run_lock_take opens that file. */
#ifndef JEPA_RUN_LOCK_H
#define JEPA_RUN_LOCK_H

#include <stddef.h>

#define RUN_LOCK_ENV "JEPA_RUN_LOCK_PID"

typedef enum { RUN_LOCK_LAUNCHER = 0, RUN_LOCK_JOB = 1 } run_lock_role;

/* Takes role's byte of run_dir/lock (the file made when missing; run_dir
 * must exist) for the rest of the process's life (again: a no-op) and
 * checks the other byte as above. 0: ours; 1 + err (one line naming
 * run_dir and the holder's pid) when another process holds it; -1 + err
 * when the file cannot be opened. A file system that takes no locks
 * (ENOLCK: NFS without lockd) is a warning line on stderr and 0. */
int run_lock_take(const char *run_dir, run_lock_role role, char *err, size_t errlen);

/* What run_lock_take would find, taking nothing and creating nothing (for
 * --dry-run): 0 when neither byte is held (or there is no lock file), 1 +
 * err (the line run_lock_take gives) when one is. Never call it from a
 * process that holds a lock in run_dir: closing the file drops its locks. */
int run_lock_probe(const char *run_dir, char *err, size_t errlen);

/* Who holds role's byte against this process, through the lock file it
 * took with run_lock_take (the only safe way to ask: see run_lock_probe):
 * a pid, -1 when held by one that cannot be named, 0 when free or when
 * this process took no lock. */
int run_lock_holder(run_lock_role role);

#endif
