/* blas_core.c - which OpenBLAS kernels the programs run (blas_core_select).
 *
 * Debian's OpenBLAS 0.3.21 picks its kernels once, when the library loads,
 * from the CPU it recognises. It does not know AMD's Zen 5 and falls back to
 * its Haswell (AVX2) kernels there, while its own AVX-512 (SkylakeX) kernels
 * run the training step's products 2-4x faster on the same core (measured
 * at 1 thread: 6272x384x128 NT 80 -> 250 GFLOP/s, 1024 square 48-61 -> 101-127).
 * The library reads OPENBLAS_CORETYPE only at load, so the choice is made by
 * running the program again with it set, before anything else happens.
 *
 * An OPENBLAS_CORETYPE naming an AVX2 core (Haswell, Zen) is taken for such a
 * fallback and replaced too: this workplace sets Haswell machine-wide so the
 * library does not guess.
 *
 * The same re-run sets OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT is set. Our kernels and OpenBLAS share one libgomp pool
 * whose workers spin between regions by default: on a machine shared with
 * other jobs a spinning worker holds the core its partner needs, and the
 * two-thread step ran 4.8x slower than with passive waits (measured at load
 * 22-24 on 2 cores: 13.3 -> 63.4 img/s); when the cores are free a passive
 * wait costs a futex wake per parallel region (~400 per step).
 * JEPA_BLAS_KEEP=1 keeps whatever the libraries chose, both settings. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#endif

#include "jepa.h"

static int avx2_core(const char *core) {
    return core && (!strcasecmp(core, "haswell") || !strcasecmp(core, "zen"));
}

/* OpenBLAS's AVX-512 kernels are wanted: it fell back to AVX2 ones on a CPU
 * that has AVX-512 */
static int want_avx512(void) {
    const char *set = getenv("OPENBLAS_CORETYPE");
    if ((set && !avx2_core(set)) || !avx2_core(openblas_get_corename())) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* With OMP_PROC_BIND set, libgomp has bound this (the main) thread to its
 * first place before main, and a program run again by execv would start
 * with that one place as its whole CPU mask: every thread of the rank on
 * one CPU (seen: 2 threads, OMP_PROC_BIND=true, a rank on 1 CPU of 2).
 * The places, made from the mask the process started with, give it back. */
static void restore_affinity(void) {
#ifdef __linux__
    if (omp_get_proc_bind() == omp_proc_bind_false || omp_get_num_places() <= 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int p = 0; p < omp_get_num_places(); p++) {
        int n = omp_get_place_num_procs(p), ids[CPU_SETSIZE];
        if (n <= 0 || n > CPU_SETSIZE) return;
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE) CPU_SET(ids[i], &set);
    }
    if (CPU_COUNT(&set) > 0) sched_setaffinity(0, sizeof set, &set); /* failing: as before */
#endif
}

void blas_core_select(char **argv) {
    const char *keep = getenv("JEPA_BLAS_KEEP");
    if ((keep && strcmp(keep, "0")) || getenv("JEPA_BLAS_SELECTED")) return;
    int core = want_avx512();
    int wait = !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
    if (!core && !wait) return;
    if ((core && setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)) ||
        (wait && setenv("OMP_WAIT_POLICY", "passive", 1)) || setenv("JEPA_BLAS_SELECTED", "1", 1))
        return;
    /* by its real path, not /proc/self/exe: the process keeps its name
     * (comm "jepa-train", not "exe") for ps, pkill and the tests that find ranks */
    restore_affinity();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed: carry on as we are (the environment now says what the
     * libraries would have wanted, but they read it only at load) */
}
