/* bench_extract.c - feature extraction: the training forward (enc_features,
 * what jepa-eval ran before enc_infer) against the forward-only path
 * (enc_infer_features) on the same random images and weights, the
 * quickstart's encoder (28x28, 4x4 patches, width 128, depth 6, 4 heads),
 * in alternating rounds so a shared machine's load falls on both alike.
 * Times are CPU seconds of this process (run it at one thread: OMP_NUM_THREADS
 * =1): on a loaded machine they are the work, not the queueing. The last line
 * is machine-readable:
 *   bench_extract n N rounds R train_cpu_s X infer_cpu_s Y ratio Z max_abs_diff D
 *     bf16_cpu_s B bf16_speedup S bf16_max_rel_diff E
 * (the bf16 round, eval.precision: bf16, where the CPU has AVX512_BF16;
 * else nan and a line saying why; E: max |bf16 - fp32| / max |fp32|)
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
    "  bench_extract n N rounds R train_cpu_s X infer_cpu_s Y ratio Z max_abs_diff D\n"
    "    bf16_cpu_s B bf16_speedup S bf16_max_rel_diff E\n"
    "(the forward-only path in bfloat16 products, eval.precision: bf16, where the CPU has\n"
    "AVX512_BF16; nan otherwise).\n";

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
    float *c = malloc(sizeof(float) * n * d.D);
    float *sc = malloc(sizeof(float) * attention_scratch_floats(d.ntok, d.D / d.heads) *
                       omp_get_max_threads());
    if (!px || !a || !b || !c || !sc) return 1;
    jepa_rng r;
    rng_init(&r, 7);
    for (size_t i = 0; i < (size_t)n * 784; i++) px[i] = (uint8_t)rng_below(&r, 256);
    enc_pass p; /* the training batch, as jepa-eval used it */
    enc_pass_init(&p, &d, 128, d.img, 0);
    enc_infer q;
    enc_infer_init(&q, &d, &L, m.params, INFER_CHUNK_IMAGES, d.img, 1, 0); /* as jepa-eval */
    const char *why = NULL;
    const int bf16 = infer_bf16_supported(&why); /* eval.precision: bf16 */
    enc_infer qb;
    if (bf16) enc_infer_init(&qb, &d, &L, m.params, INFER_CHUNK_IMAGES, d.img, 1, 1);
    else printf("bench-extract: no bf16 round: %s\n", why);
    double ta = 0, tb = 0, tc = 0;
    for (int k = 0; k < rounds; k++) {
        double t0 = cpu_s();
        enc_features(&p, &d, &L, m.params, px, n, 0.286f, 0.353f, 1, a, sc);
        double t1 = cpu_s();
        enc_infer_features(&q, px, n, 0.286f, 0.353f, b);
        double t2 = cpu_s();
        if (bf16) enc_infer_features(&qb, px, n, 0.286f, 0.353f, c);
        double t3 = cpu_s();
        ta += t1 - t0;
        tb += t2 - t1;
        tc += t3 - t2;
        printf("round %d: training forward %.3f s (%.0f img/s), forward only %.3f s (%.0f img/s)",
               k, t1 - t0, n / (t1 - t0), t2 - t1, n / (t2 - t1));
        if (bf16) printf(", bf16 %.3f s (%.0f img/s)", t3 - t2, n / (t3 - t2));
        printf("\n");
    }
    double diff = 0, dc = 0, amax = 0;
    for (size_t i = 0; i < (size_t)n * d.D; i++) {
        diff = fabs(a[i] - b[i]) > diff ? fabs(a[i] - b[i]) : diff;
        dc = fabs(b[i] - c[i]) > dc ? fabs(b[i] - c[i]) : dc;
        amax = fabs(b[i]) > amax ? fabs(b[i]) : amax;
    }
    /* bf16 against the fp32 forward: max |difference| over max |feature| */
    printf("bench_extract n %d rounds %d train_cpu_s %.3f infer_cpu_s %.3f ratio %.2f "
           "max_abs_diff %.3g bf16_cpu_s %.3f bf16_speedup %.2f bf16_max_rel_diff %.3g\n", n,
           rounds, ta, tb, ta / tb, diff, bf16 ? tc : NAN, bf16 ? tb / tc : NAN,
           bf16 ? dc / amax : NAN);
    if (bf16) enc_infer_free(&qb);
    enc_pass_free(&p);
    enc_infer_free(&q);
    jepa_model_free(&m);
    free(px);
    free(a);
    free(b);
    free(c);
    free(sc);
    return stdout_close("bench-extract", 0);
}
