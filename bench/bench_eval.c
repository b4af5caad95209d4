/* bench_eval.c - how long DINO's kNN evaluation takes at Fashion-MNIST scale:
 * ntr x nte random features of dim columns (default 60000 x 10000 x 128,
 * k = 20, T = 0.07), timed at 1 and 2 OpenMP threads (or the list given),
 * best of `reps` runs each. Also checks that the predictions do not depend
 * on the thread count. The last line is machine-readable:
 *   bench_eval ntr N nte N dim N k N t1_s X t2_s X speedup X
 * usage: bench-eval [ntr nte dim reps] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_args.h"
#include "evaluate.h"
#include "stdout_close.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define USAGE "usage: bench-eval [ntr] [nte] [dim] [reps]"

static const char *help_text =
    USAGE "\n"
    "Times DINO's kNN evaluation (k 20, T 0.07) on ntr training and nte test features of dim\n"
    "random values (default 60000 10000 128), best of reps runs (default 2) at 1 and at 2\n"
    "OpenMP threads, and checks the predictions do not depend on the thread count (exit 1\n"
    "if they do). Progress on stderr; the last line is machine-readable:\n"
    "  bench_eval ntr N nte N dim N k N t1_s X t2_s X speedup X\n";

/* argv[i] as a whole integer in [lo, hi] (def when absent); -1 after one
 * line naming it */
static int arg(int argc, char **argv, int i, const char *name, int def, long lo, long hi) {
    if (i >= argc) return def;
    long x;
    if (bench_long(argv[i], lo, hi, &x)) {
        fprintf(stderr, "bench-eval: %s '%s': expected an integer from %ld to %ld (" USAGE ")\n",
                name, argv[i], lo, hi);
        return -1;
    }
    return (int)x;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return fputs(help_text, stdout), 0;
    if (argc > 5) {
        fprintf(stderr, "bench-eval: unexpected argument '%s' (" USAGE ")\n", argv[5]);
        return 2;
    }
    int ntr, nte, dim, reps; /* the first bad one is said, alone */
    if ((ntr = arg(argc, argv, 1, "ntr", 60000, KNN_DEFAULT_K, 10000000)) < 0 ||
        (nte = arg(argc, argv, 2, "nte", 10000, 1, 10000000)) < 0 ||
        (dim = arg(argc, argv, 3, "dim", 128, 1, 65536)) < 0 || (reps = arg(argc, argv, 4, "reps", 2, 1, 1000)) < 0)
        return 2;
    float *ftr = malloc((size_t)ntr * dim * sizeof *ftr), *fte = malloc((size_t)nte * dim * sizeof *fte);
    uint8_t *ytr = malloc((size_t)ntr), *yte = malloc((size_t)nte);
    uint8_t *p1 = malloc((size_t)nte), *p2 = malloc((size_t)nte);
    if (!ftr || !fte || !ytr || !yte || !p1 || !p2) {
        fprintf(stderr, "bench-eval: out of memory for %d + %d features of %d floats\n", ntr, nte, dim);
        return 1;
    }
    jepa_rng r;
    rng_init(&r, 1);
    for (size_t i = 0; i < (size_t)ntr * dim; i++) ftr[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)nte * dim; i++) fte[i] = (float)rng_normal(&r);
    for (int i = 0; i < ntr; i++) ytr[i] = (uint8_t)rng_below(&r, 10);
    for (int i = 0; i < nte; i++) yte[i] = (uint8_t)rng_below(&r, 10);

    double best[2] = {INFINITY, INFINITY};
    char err[256];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now_s();
            if (knn_predict(ftr, ytr, ntr, fte, nte, dim, 10, KNN_DEFAULT_K, KNN_DEFAULT_TEMP,
                            t ? p2 : p1, err, sizeof err)) {
                fprintf(stderr, "bench-eval: %s\n", err);
                return 1;
            }
            double s = now_s() - t0;
            if (s < best[t]) best[t] = s;
            fprintf(stderr, "threads %d rep %d: %.3f s (%.1f GFLOP/s effective)\n",
                    t + 1, rep, s, 2.0 * ntr * nte * dim / s * 1e-9);
        }
    }
    int same = memcmp(p1, p2, (size_t)nte) == 0;
    int correct = 0;
    for (int i = 0; i < nte; i++) correct += p1[i] == yte[i];
    fprintf(stderr, "predictions at 1 and 2 threads %s; acc on random labels %.4f\n",
            same ? "identical" : "DIFFER", (double)correct / nte);
    printf("bench_eval ntr %d nte %d dim %d k %d t1_s %.3f t2_s %.3f speedup %.2f\n", ntr, nte,
           dim, KNN_DEFAULT_K, best[0], best[1], best[0] / best[1]);
    free(ftr);
    free(fte);
    free(ytr);
    free(yte);
    free(p1);
    free(p2);
    return stdout_close("bench-eval", same ? 0 : 1);
}
