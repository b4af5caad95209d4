/* rank_threads.h - the threads one rank computes with: OpenMP's team and
 * OpenBLAS's, set together from parallel.threads_per_rank, and a warning
 * when the rank's CPU binding leaves it fewer CPUs than that. */
#ifndef JEPA_RANK_THREADS_H
#define JEPA_RANK_THREADS_H

/* Sets OpenMP's and OpenBLAS's thread count to n (1 when n <= 0) and returns
 * it. Where this process may run on fewer CPUs than that (Linux
 * sched_getaffinity: mpirun's default --bind-to core for 2 ranks or fewer,
 * taskset), rank 0 (comm_rank) prints one "jepa: warning:" line naming
 * parallel.threads_per_rank, the CPU count and the fix, once per process;
 * the threads are set all the same. Elsewhere, or when the affinity cannot
 * be read, it says nothing. */
int rank_threads_apply(int n);
/* With OMP_PROC_BIND set, gives the calling thread back the CPUs of all of
 * OpenMP's places (libgomp bound it to the first before main): for a
 * program about to execv itself (blas_core.c), which would otherwise start
 * again on that one place. Elsewhere nothing. */
void rank_threads_restore(void);

#endif
