/* rank_threads.c - setting a rank's thread count, and saying when its CPU
 * binding makes those threads share CPUs (measured: 2 threads bound to one
 * core extract features 5-7% slower than 1, ~9000 context switches a second). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "rank_threads.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#ifdef __linux__
#include <sched.h>
#endif

#include "comm.h"

#ifdef __linux__
/* With OMP_PROC_BIND set, libgomp binds the main thread to its first place
 * before main runs, so that thread's own mask says one place: the union of
 * the places (made from the process's mask at start) into set, 1; else 0. */
static int places_cpus(cpu_set_t *set) {
    CPU_ZERO(set);
    if (omp_get_proc_bind() == omp_proc_bind_false || omp_get_num_places() <= 0) return 0;
    for (int p = 0; p < omp_get_num_places(); p++) {
        int n = omp_get_place_num_procs(p), ids[CPU_SETSIZE];
        if (n <= 0 || n > CPU_SETSIZE) return 0;
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE) CPU_SET(ids[i], set);
    }
    return CPU_COUNT(set) > 0;
}
#endif

void rank_threads_restore(void) {
#ifdef __linux__
    cpu_set_t set;
    if (places_cpus(&set)) sched_setaffinity(0, sizeof set, &set); /* failing: as before */
#endif
}

/* The CPUs this rank's threads may run on; 0 when unknown (not Linux, or
 * more CPUs than a cpu_set_t holds: sched_getaffinity then fails with
 * EINVAL). */
static int rank_threads_cpus(void) {
#ifdef __linux__
    cpu_set_t set;
    if (places_cpus(&set)) return CPU_COUNT(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}

int rank_threads_apply(int n) {
    /* read once; warned once: jepa-train builds its objective twice when a
     * resume changes the batch (train.c) */
    static int cpus = -1, warned;
    if (cpus < 0) cpus = rank_threads_cpus();
    if (n <= 0) n = 1;
    if (cpus > 0 && n > cpus && !warned && comm_rank() == 0) {
        warned = 1;
        fprintf(stderr,
                "jepa: warning: parallel.threads_per_rank %d but rank 0 may run on %d CPU%s (its "
                "binding, e.g. mpirun's default --bind-to core for 2 ranks or fewer): its threads "
                "share %s; run mpirun with --bind-to none, or set parallel.threads_per_rank=%d\n",
                n, cpus, cpus == 1 ? "" : "s", cpus == 1 ? "that CPU" : "those CPUs", cpus);
    }
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}
