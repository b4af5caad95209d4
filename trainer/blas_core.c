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
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "jepa.h"
#include "rank_threads.h"

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
    /* OMP_PROC_BIND: the one-place mask libgomp gave this thread would
     * become the whole process's mask after execv (2 threads, 1 CPU) */
    rank_threads_restore();
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
