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

#endif
