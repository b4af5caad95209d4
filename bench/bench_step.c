/* bench-step - the training step of an objective, measured: images/s, the
 * FLOPs of every matrix product (counted from their shapes, forward and
 * backward, prof.h) and the GFLOP/s they reach beside cblas_sgemm's rate in
 * this process at the same thread count (a large square, and the step's own
 * product shapes), where the time goes (phases and kernels, our own timers),
 * and the peak RSS per rank. Synthetic records (random pixels; for the
 * world model random frames and actions), so no data set is needed.
 *
 * usage: bench-step [--objective NAME] [--spec FILE] [--threads T] [--steps N]
 *                   [--warmup W] [--batch B] [--no-peak] [--cpu-clock] [--shapes]
 *                   [--chunk-rows R] [--set key=value ...]
 * --cpu-clock: every time is the process's CPU seconds (prof_cpu_clock): on a
 * loaded machine a one-thread run then measures its work, not its waiting;
 * img_per_s is then images per CPU second. --shapes: one line per product
 * shape of the last step (`shape ta tb M N K calls gflop_per_s`).
 * --chunk-rows R: vit_set_chunk_rows (jepa.h): forward and backward chunks of about R
 * rows, 0 one pass, -1 (the default) VIT_CHUNK_ROWS.
 * Under mpirun every rank steps its own batch and the gradients are
 * all-reduced as in training (allreduce_wait is then the real wait).
 * Output: `key value` lines from rank 0; the last line is `img_per_s N`. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_args.h"
#include "cli.h"
#include "comm.h"
#include "jepa.h"
#include "objective.h"
#include "prof.h"
#include "stdout_close.h"

typedef struct {
    const char *objective, *spec;
    int threads, steps, warm, batch, peak, cpu, shapes, chunk;
} bench_opts;

/* v as a whole base-10 integer in [lo, hi]; else one line naming flag and
 * value, and 2 */
static int int_arg(const char *flag, const char *v, long lo, long hi, int *out) {
    long x;
    if (bench_long(v, lo, hi, &x)) {
        fprintf(stderr, "bench-step: %s %s: expected an integer from %ld to %ld\n", flag, v, lo, hi);
        return 2;
    }
    *out = (int)x;
    return 0;
}

#define USAGE                                                                                   \
    "usage: bench-step [--objective NAME] [--spec FILE] [--threads T] [--steps N] [--warmup W] "  \
    "[--batch B] [--no-peak] [--cpu-clock] [--shapes] [--chunk-rows R] [--set key=value ...]\n"

/* 0, 2 (bad arguments: said), or -1 (--help: usage printed) */
static int parse(bench_opts *b, jepa_spec *s, int argc, char **argv) {
    *b = (bench_opts){NULL, NULL, 1, 10, 2, 0, 1, 0, 0, VIT_CHUNK_AUTO};
    char err[SPEC_ERR_MAX];
    spec_defaults(s);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return -1; /* main: exit 0 */
        }
        if (!strcmp(a, "--no-peak")) { b->peak = 0; continue; }
        if (!strcmp(a, "--cpu-clock")) { b->cpu = 1; continue; }
        if (!strcmp(a, "--shapes")) { b->shapes = 1; continue; }
        if (!v) goto usage;
        i++;
        int rc = 0;
        if (!strcmp(a, "--threads")) rc = int_arg(a, v, 1, 1024, &b->threads);
        else if (!strcmp(a, "--steps")) rc = int_arg(a, v, 1, 1000000, &b->steps);
        else if (!strcmp(a, "--warmup")) rc = int_arg(a, v, 0, 1000000, &b->warm);
        else if (!strcmp(a, "--batch")) rc = int_arg(a, v, 1, 1 << 20, &b->batch);
        else if (!strcmp(a, "--chunk-rows")) rc = int_arg(a, v, -1, 1 << 30, &b->chunk); /* -1: VIT_CHUNK_AUTO */
        else if (!strcmp(a, "--objective")) b->objective = v;
        else if (!strcmp(a, "--spec")) b->spec = v;
        else if (!strcmp(a, "--set")) continue; /* applied after the spec file */
        else goto usage;
        if (rc) return rc;
    }
    if (b->spec && cli_load_spec("bench-step", s, b->spec, 1, argv, 1, NULL, NULL, NULL)) return 2;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--set") && spec_set(s, argv[++i], err, sizeof err)) {
            fprintf(stderr, "bench-step: %s\n", err);
            return 2;
        }
    if (b->objective) snprintf(s->objective, sizeof s->objective, "%s", b->objective);
    if (!objective_find(s->objective)) {
        fprintf(stderr, "bench-step: --objective %s: no such objective (ijepa, lejepa, world)\n",
                s->objective);
        return 2;
    }
    if (b->batch > 0) s->train.batch_per_rank = b->batch;
    s->parallel.threads_per_rank = b->threads;
    return 0;
usage:
    fputs(USAGE, stderr);
    return 2;
}

/* The schema the objective trains on and B random records of it: u8 images
 * with labels, or (world) episodes of frames, actions and states. */
static uint8_t *synthetic_records(const jepa_spec *s, shard_schema *sc, int B) {
    memset(sc, 0, sizeof *sc);
    uint32_t img = (uint32_t)s->model.img_size, ch = (uint32_t)s->model.channels;
    int world = !strcmp(s->objective, "world");
    if (world) {
        uint32_t T = (uint32_t)(s->world.history + 4);
        shard_field f[3] = {{"frames", SHARD_DTYPE_U8, 4, {T, ch, img, img}},
                            {"actions", SHARD_DTYPE_F32, 2, {T - 1, 2, 0, 0}},
                            {"state", SHARD_DTYPE_F32, 2, {T, 2, 0, 0}}};
        sc->nfields = 3;
        memcpy(sc->fields, f, sizeof f);
    } else {
        *sc = (shard_schema){.height = img, .width = img, .channels = ch,
                             .dtype = SHARD_DTYPE_U8, .label = SHARD_LABEL_U8, .num_classes = 10};
    }
    size_t rb = shard_schema_record_bytes(sc);
    uint8_t *rec = JEPA_MALLOC(rb * B);
    jepa_rng r;
    rng_init(&r, rng_key(7, 0xbe4c, (uint64_t)comm_rank()));
    size_t nframe = world ? (size_t)sc->fields[0].shape[0] * ch * img * img : rb;
    for (int b = 0; b < B; b++) {
        uint8_t *p = rec + rb * b;
        for (size_t k = 0; k < nframe; k++) p[k] = (uint8_t)rng_below(&r, 256);
        for (size_t k = nframe; k + 4 <= rb; k += 4) { /* actions and states: small floats */
            float v = (float)(0.05 * (2 * rng_uniform(&r) - 1));
            memcpy(p + k, &v, 4);
        }
    }
    return rec;
}

/* Best GFLOP/s of `calls` products of one shape, timed `reps` times. */
static double sgemm_rate(const prof_shape *sh, int calls, int reps, float *A, float *B, float *C) {
    double best = 1e30;
    int lda = sh->ta ? sh->M : sh->K, ldb = sh->tb ? sh->K : sh->N;
    for (int r = 0; r < reps; r++) {
        double t0 = prof_now();
        for (int c = 0; c < calls; c++)
            cblas_sgemm(CblasRowMajor, sh->ta ? CblasTrans : CblasNoTrans,
                        sh->tb ? CblasTrans : CblasNoTrans, sh->M, sh->N, sh->K, 1.0f, A, lda, B,
                        ldb, 1.0f, C, sh->N);
        double dt = prof_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* cblas_sgemm alone: a 1024 square, and the recorded shapes of one step
 * (each as often as the step calls it). GFLOP/s into sq and model. */
static void sgemm_peaks(double *sq, double *model, int list) {
    const prof_shape *sh;
    int n = prof_shapes_get(&sh);
    size_t ma = 1024 * 1024, mb = ma, mc = ma;
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)sh[i].M * sh[i].K, b = (size_t)sh[i].K * sh[i].N, c = (size_t)sh[i].M * sh[i].N;
        ma = a > ma ? a : ma; mb = b > mb ? b : mb; mc = c > mc ? c : mc;
    }
    float *A = JEPA_MALLOC(sizeof(float) * ma), *B = JEPA_MALLOC(sizeof(float) * mb);
    float *C = JEPA_MALLOC(sizeof(float) * mc);
    for (size_t k = 0; k < ma; k++) A[k] = (float)(k % 7) * 0.01f;
    for (size_t k = 0; k < mb; k++) B[k] = (float)(k % 5) * 0.01f;
    prof_shape big = {0, 0, 1024, 1024, 1024, 1};
    *sq = 2e-9 * 1024 * 1024 * 1024 * 3 / sgemm_rate(&big, 3, 5, A, B, C);
    double fl = 0, t = 0;
    for (int i = 0; i < n; i++) {
        double f = 2.0 * sh[i].M * sh[i].N * sh[i].K * sh[i].calls;
        double dt = sgemm_rate(&sh[i], sh[i].calls, 3, A, B, C);
        if (list && comm_rank() == 0)
            printf("shape %d %d %d %d %d %d %.1f\n", sh[i].ta, sh[i].tb, sh[i].M, sh[i].N, sh[i].K,
                   sh[i].calls, 1e-9 * f / dt);
        fl += f;
        t += dt;
    }
    *model = t > 0 ? 1e-9 * fl / t : 0;
    jepa_free(A); jepa_free(B); jepa_free(C);
}

static void grads_ready(void *ctx, size_t lo) { comm_buckets_ready((comm_buckets *)ctx, lo); }

/* One training step as train.c runs it: the objective's forward/backward,
 * the all-reduce, the gradient norm, AdamW, the EMA; each phase timed. */
static void bench_one(objective *o, comm_buckets *cb, const uint8_t *rec, int64_t it) {
    jepa_model *m = &o->m;
    obj_stats st;
    o->ops->step(o, rec, it, &st);
    double t = prof_now();
    comm_buckets_finish(cb);
    t = prof_lap(PROF_ALLREDUCE, t);
    size_t bad = 0;
    grads_sq_norm(m->grads, m->nparams, &bad);
    t = prof_lap(PROF_GRADNORM, t);
    adamw_update(m, 1e-4, 0.04, 0.9, 0.999, 1e-8, it + 1);
    t = prof_lap(PROF_OPTIMIZER, t);
    sched_values sv = {1e-4, 0.04, 0.996};
    if (o->ops->after_update) o->ops->after_update(o, &sv);
    prof_lap(PROF_EMA, t);
}

/* Peak resident set of the largest rank, MiB. */
static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double v[1] = {(double)ru.ru_maxrss / 1024.0}, all[64] = {0};
    int w = comm_world(), r = comm_rank();
    if (w > 64) return v[0];
    all[r] = v[0];
    comm_sum_doubles(all, (size_t)w);
    for (int i = 0; i < w; i++) v[0] = all[i] > v[0] ? all[i] : v[0];
    return v[0];
}

static void report(const bench_opts *b, const jepa_spec *s, objective *o, double dt,
                   const comm_buckets *cb) {
    prof_totals pt;
    prof_get(&pt);
    int B = o->B, W = comm_world();
    double per = 1e3 / b->steps, fl = 0, inphase = 0, inkern = 0;
    for (int k = 0; k < PROF_K_N; k++) fl += (double)pt.flops[k];
    double sq = 0, model = 0;
    if (b->peak) sgemm_peaks(&sq, &model, b->shapes);
    double rss = peak_rss_mb();
    comm_stats cs;
    comm_buckets_stats(cb, &cs);
    if (comm_rank() != 0) return;
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("blas_core %s\nomp_wait_policy %s\nclock %s\n", openblas_get_corename(),
           wp ? wp : "default", b->cpu ? "cpu" : "wall");
    printf("objective %s\nranks %d\nthreads %d\nbatch_per_rank %d\nsteps %d\nparams %zu\n",
           s->objective, W, b->threads, B, b->steps, o->m.nparams);
    printf("chunk_rows %d\n", b->chunk);
    printf("ms_per_step %.2f\n", dt * per);
    for (int p = 0; p < PROF_N; p++) {
        printf("phase_%s_ms %.2f\n", prof_phase_names[p], pt.phase_s[p] * per);
        inphase += pt.phase_s[p];
    }
    printf("phase_other_ms %.2f\n", (dt - inphase) * per);
    for (int k = 0; k < PROF_K_N; k++) {
        printf("kernel_%s_ms %.2f\n", prof_kernel_names[k], pt.kernel_s[k] * per);
        inkern += pt.kernel_s[k];
    }
    printf("kernel_other_ms %.2f\n", (dt - inkern) * per);
    printf("mflop_per_image %.2f\nmflop_per_image_sgemm %.2f\nmflop_per_image_attention %.2f\n",
           1e-6 * fl / b->steps / B, 1e-6 * pt.flops[PROF_K_SGEMM] / b->steps / B,
           1e-6 * pt.flops[PROF_K_ATTENTION] / b->steps / B);
    double gf = 1e-9 * fl / dt;
    printf("gflop_per_s %.2f\n", gf);
    printf("sgemm_in_step_gflop_per_s %.2f\n", 1e-9 * pt.flops[PROF_K_SGEMM] /
           (pt.kernel_s[PROF_K_SGEMM] > 0 ? pt.kernel_s[PROF_K_SGEMM] : 1));
    if (b->peak) {
        printf("sgemm_square1024_gflop_per_s %.2f\nsgemm_model_shapes_gflop_per_s %.2f\n", sq, model);
        printf("fraction_of_square_peak %.3f\nfraction_of_model_shapes_peak %.3f\n", gf / sq,
               gf / model);
    }
    printf("allreduce_mb_per_step %.2f\n", cs.steps ? cs.bytes / 1048576.0 / cs.steps : 0.0);
    printf("peak_rss_mb %.1f\n", rss);
    printf("img_per_s %.1f\n", (double)B * W * b->steps / dt);
}

int main(int argc, char **argv) {
    blas_core_select(argv);
    comm_init(&argc, &argv);
    bench_opts b;
    jepa_spec s;
    char err[512];
    int rc = parse(&b, &s, argc, argv);
    if (rc) {
        comm_finalize();
        return rc < 0 ? 0 : rc;
    }
    prof_cpu_clock(b.cpu);
    vit_set_chunk_rows(b.chunk);
    shard_schema sc;
    uint8_t *rec = synthetic_records(&s, &sc, s.train.batch_per_rank);
    objective *o = NULL;
    const objective_ops *ops = objective_find(s.objective);
    if (ops->create(&o, &s, &sc, comm_rank(), comm_world(), err, sizeof err) ||
        (ops->train_init && ops->train_init(o, &s, err, sizeof err)))
        comm_fatal("bench-step: %s", err);
    o->mean = 0.3f;
    o->std = 0.3f;
    comm_buckets cb;
    if (comm_buckets_init(&cb, o->m.grads, o->m.nparams, (size_t)(s.parallel.bucket_mb * 1048576.0),
                          s.parallel.blocking_allreduce))
        comm_fatal("bench-step: parallel.bucket_mb %g is too small", s.parallel.bucket_mb);
    o->m.grad_ready = grads_ready;
    o->m.grad_ready_ctx = &cb;
    double t0 = 0;
    for (int it = 0; it < b.warm + b.steps; it++) {
        if (it == b.warm) {
            comm_barrier();
            prof_reset();
            t0 = prof_now();
        }
        prof_shapes_record(it == b.warm + b.steps - 1);
        bench_one(o, &cb, rec, it);
    }
    prof_shapes_record(0);
    report(&b, &s, o, prof_now() - t0, &cb);
    comm_buckets_free(&cb);
    o->ops->destroy(o);
    jepa_free(rec);
    comm_finalize();
    return stdout_close("bench-step", 0);
}
