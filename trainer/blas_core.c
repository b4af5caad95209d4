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
 * library does not guess. JEPA_BLAS_KEEP=1 keeps whatever the library chose. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "jepa.h"

static int avx2_core(const char *core) {
    return core && (!strcasecmp(core, "haswell") || !strcasecmp(core, "zen"));
}

void blas_core_select(char **argv) {
    const char *keep = getenv("JEPA_BLAS_KEEP"), *set = getenv("OPENBLAS_CORETYPE");
    if ((keep && strcmp(keep, "0")) || getenv("JEPA_BLAS_SELECTED")) return;
    if ((set && !avx2_core(set)) || !avx2_core(openblas_get_corename())) return;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return;
    char *old = set ? strdup(set) : NULL;
    if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) || setenv("JEPA_BLAS_SELECTED", "1", 1)) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels we have, environment as it was */
    if (old) setenv("OPENBLAS_CORETYPE", old, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    unsetenv("JEPA_BLAS_SELECTED");
    free(old);
#else
    (void)argv;
#endif
}
