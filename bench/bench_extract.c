/* bench_extract.c - feature extraction: the training forward (enc_features,
 * what jepa-eval ran before enc_infer) against the forward-only path
 * (enc_infer_features) on the same random images and weights, the
 * quickstart's encoder (28x28, 4x4 patches, width 128, depth 6, 4 heads),
 * in alternating rounds so a shared machine's load falls on both alike.
 * Times are CPU seconds of this process (run it at one thread: OMP_NUM_THREADS
 * =1): on a loaded machine they are the work, not the queueing. The last line
 * is machine-readable:
 *   bench_extract n N rounds R train_cpu_s X infer_cpu_s Y ratio Z max_abs_diff D
 * usage: bench-extract [n [rounds]] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_args.h"
#include "infer.h"
#include "stdout_close.h"

#define USAGE "usage: bench-extract [n] [rounds]"

static const char *help_text =
    USAGE "\n"
    "Times feature extraction on n random 28x28 images (default 2048) with the quickstart's\n"
    "encoder: the training forward (enc_features) against the forward-only path\n"
    "(enc_infer_features), in `rounds` alternating pairs (default 3), CPU seconds of this\n"
    "process (run it with OMP_NUM_THREADS=1). The last line is machine-readable:\n"
    "  bench_extract n N rounds R train_cpu_s X infer_cpu_s Y ratio Z max_abs_diff D\n";

/* argv[i] as a whole integer in [lo, hi] (def when absent) into *v; 2
 * after one line naming the argument, else 0 */
static int arg_int(int argc, char **argv, int i, const char *name, long def, long lo, long hi,
                   int *v) {
    long x = def;
    if (i < argc && bench_long(argv[i], lo, hi, &x)) {
        fprintf(stderr, "bench-extract: %s '%s': expected an integer from %ld to %ld (" USAGE ")\n",
                name, argv[i], lo, hi);
        return 2;
    }
    *v = (int)x;
    return 0;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return fputs(help_text, stdout), 0;
    if (argc > 3) {
        fprintf(stderr, "bench-extract: unexpected argument '%s' (" USAGE ")\n", argv[3]);
        return 2;
    }
    int n, rounds; /* n images of 784 bytes and 2 x 128 floats: 1e6 is 1.8 GB */
    if (arg_int(argc, argv, 1, "n", 2048, 1, 1000000, &n) ||
        arg_int(argc, argv, 2, "rounds", 3, 1, 1000, &rounds))
        return 2;
    blas_core_select(argv); /* OpenBLAS's kernels as the programs run them */
    jepa_dims d = {28, 1, 4, 7, 49, 16, 128, 6, 4, 512, 64, 4, 4, 0, 0, 0, 0, 0, 0};
    jepa_model m;
    jepa_model_init(&m, &d, 0, 128, 4, 12, omp_get_max_threads());
    enc_layout L;
    if (enc_layout_from_table(&m, &L)) return 1;
    uint8_t *px = malloc((size_t)n * 784);
    float *a = malloc(sizeof(float) * n * d.D), *b = malloc(sizeof(float) * n * d.D);
    float *sc = malloc(sizeof(float) * attention_scratch_floats(d.ntok, d.D / d.heads) *
                       omp_get_max_threads());
    if (!px || !a || !b || !sc) return 1;
    jepa_rng r;
    rng_init(&r, 7);
    for (size_t i = 0; i < (size_t)n * 784; i++) px[i] = (uint8_t)rng_below(&r, 256);
    enc_pass p; /* the training batch, as jepa-eval used it */
    enc_pass_init(&p, &d, 128, d.img, 0);
    enc_infer q;
    enc_infer_init(&q, &d, &L, m.params, INFER_CHUNK_IMAGES, d.img, 1); /* as jepa-eval */
    double ta = 0, tb = 0;
    for (int k = 0; k < rounds; k++) {
        double t0 = cpu_s();
        enc_features(&p, &d, &L, m.params, px, n, 0.286f, 0.353f, 1, a, sc);
        double t1 = cpu_s();
        enc_infer_features(&q, px, n, 0.286f, 0.353f, b);
        double t2 = cpu_s();
        ta += t1 - t0;
        tb += t2 - t1;
        printf("round %d: training forward %.3f s (%.0f img/s), forward only %.3f s (%.0f img/s)\n",
               k, t1 - t0, n / (t1 - t0), t2 - t1, n / (t2 - t1));
    }
    double diff = 0;
    for (size_t i = 0; i < (size_t)n * d.D; i++)
        diff = fabs(a[i] - b[i]) > diff ? fabs(a[i] - b[i]) : diff;
    printf("bench_extract n %d rounds %d train_cpu_s %.3f infer_cpu_s %.3f ratio %.2f "
           "max_abs_diff %.3g\n", n, rounds, ta, tb, ta / tb, diff);
    enc_pass_free(&p);
    enc_infer_free(&q);
    jepa_model_free(&m);
    free(px);
    free(a);
    free(b);
    free(sc);
    return stdout_close("bench-extract", 0);
}
