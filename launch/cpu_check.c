/* cpu_check.c - a build tuned for its build machine's CPU (JEPA_NATIVE=ON,
 * -march=native: AVX-512, AVX2, FMA where that machine has them) refuses,
 * in one line and with exit status 2, to start on a CPU that lacks one of
 * those instruction sets (each extension the compiler was told of: SSE4.2
 * and AVX up to the AVX-512 families, GFNI, VAES, BMI). Without the check a binary copied to an older
 * node dies with SIGILL and no message, at whichever instruction comes
 * first. CMakeLists.txt links this file into every program; it runs before
 * main, as a constructor compiled for plain x86-64 (the rest of the program
 * may use the tuned instructions anywhere, main's first lines included).
 * JEPA_CPU_CHECK_MISSING=FEATURE (e.g. avx2) makes the check take FEATURE
 * as absent: the refusal's test on a CPU that has everything. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GENERIC __attribute__((target("arch=x86-64")))

static GENERIC __attribute__((unused)) void refuse_if_missing(int has, const char *feature) {
    const char *pretend = getenv("JEPA_CPU_CHECK_MISSING");
    if (has && !(pretend && !strcmp(pretend, feature))) return;
#ifdef JEPA_NATIVE_BUILD
    fprintf(stderr,
            "jepa: this build uses %s (built with -march=native, JEPA_NATIVE=ON) and this CPU "
            "has no %s: rebuild on this machine, or configure with -DJEPA_NATIVE=OFF\n",
            feature, feature);
#else /* the build's own C flags asked for it (CMAKE_C_FLAGS, e.g. -march=x86-64-v3) */
    fprintf(stderr,
            "jepa: this build uses %s (its C flags, CMAKE_C_FLAGS, ask for it) and this CPU has "
            "no %s: rebuild with flags this CPU supports\n",
            feature, feature);
#endif
    _exit(2);
}

#define CHECK(f) refuse_if_missing(__builtin_cpu_supports(f), f)

/* every instruction-set macro -march=native can define that
 * __builtin_cpu_supports can name (GCC 12) */
static GENERIC __attribute__((constructor)) void cpu_check(void) {
    __builtin_cpu_init();
#ifdef __SSE4_2__
    CHECK("sse4.2");
#endif
#ifdef __POPCNT__
    CHECK("popcnt");
#endif
#ifdef __AVX__
    CHECK("avx");
#endif
#ifdef __AVX2__
    CHECK("avx2");
#endif
#ifdef __FMA__
    CHECK("fma");
#endif
#ifdef __F16C__
    CHECK("f16c");
#endif
#ifdef __BMI__
    CHECK("bmi");
#endif
#ifdef __BMI2__
    CHECK("bmi2");
#endif
#ifdef __LZCNT__
    CHECK("lzcnt");
#endif
#ifdef __MOVBE__
    CHECK("movbe");
#endif
#ifdef __AES__
    CHECK("aes");
#endif
#ifdef __PCLMUL__
    CHECK("pclmul");
#endif
#ifdef __AVX512F__
    CHECK("avx512f");
#endif
#ifdef __AVX512CD__
    CHECK("avx512cd");
#endif
#ifdef __AVX512BW__
    CHECK("avx512bw");
#endif
#ifdef __AVX512DQ__
    CHECK("avx512dq");
#endif
#ifdef __AVX512VL__
    CHECK("avx512vl");
#endif
#ifdef __AVX512VBMI__
    CHECK("avx512vbmi");
#endif
#ifdef __AVX512VBMI2__
    CHECK("avx512vbmi2");
#endif
#ifdef __AVX512IFMA__
    CHECK("avx512ifma");
#endif
#ifdef __AVX512VNNI__
    CHECK("avx512vnni");
#endif
#ifdef __AVX512BITALG__
    CHECK("avx512bitalg");
#endif
#ifdef __AVX512VPOPCNTDQ__
    CHECK("avx512vpopcntdq");
#endif
#ifdef __AVX512BF16__
    CHECK("avx512bf16");
#endif
#ifdef __AVX512VP2INTERSECT__
    CHECK("avx512vp2intersect");
#endif
#ifdef __AVX512FP16__
    CHECK("avx512fp16");
#endif
#ifdef __GFNI__
    CHECK("gfni");
#endif
#ifdef __VAES__
    CHECK("vaes");
#endif
#ifdef __VPCLMULQDQ__
    CHECK("vpclmulqdq");
#endif
#ifdef __AVXVNNI__
    CHECK("avxvnni");
#endif
}
#else
typedef int cpu_check_unused; /* ISO C: a translation unit is not empty */
#endif
