/* bench_comm.c - gradient all-reduce bandwidth (blocking vs bucketed) against
 * memcpy of the same size, and a simulated backward pass that burns a fixed
 * compute time between ready() calls to measure how much communication is
 * left exposed in finish(). Then a message-size sweep (ping-pong between
 * ranks 0 and 1, MPI_Allreduce over all ranks; medians of --reps) reduced to
 * the alpha-beta (Hockney) model t = alpha + beta*bytes, and gamma, the local
 * reduction cost per byte; these estimates are the last lines, for
 * docs/scaling.md's model. Run under mpirun -np W; rank 0 prints `key value`.
 *   bench-comm [--floats N] [--bucket-mb M] [--iters K] [--compute-ms C] [--blocks L]
 *              [--reps R] [--sweep 0|1] */
#include "bench_args.h"
#include "comm.h"
#include "stdout_close.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *xalloc(size_t n) {
    float *p = malloc(n * sizeof *p);
    if (!p) comm_fatal("bench-comm: out of memory for %zu floats", n);
    return p;
}

static void fill(float *g, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = (float)(i % 17) * 0.125f;
}

/* Busy-waits s seconds: stands in for backward compute of a known duration. */
static void burn(double s) {
    double t0 = comm_time();
    while (comm_time() - t0 < s) {
    }
}

/* The slowest rank's value: a collective finishes when the last rank does. */
static double max_over_ranks(double v) {
    double m = v;
    if (comm_world() > 1) MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

/* Seconds per all-reduce of g[0..n), averaged over iters (slowest rank). */
static double time_allreduce(float *g, size_t n, size_t bucket_bytes, int blocking,
                             int iters) {
    comm_buckets b;
    if (comm_buckets_init(&b, g, n, bucket_bytes, blocking) != 0)
        comm_fatal("bench-comm: bucket size too small");
    double total = 0;
    for (int it = -2; it < iters; it++) { /* two warm-up rounds */
        fill(g, n);
        comm_barrier();
        double t0 = comm_time();
        comm_buckets_ready(&b, 0);
        comm_buckets_finish(&b);
        if (it >= 0) total += comm_time() - t0;
    }
    comm_buckets_free(&b);
    return max_over_ranks(total / iters);
}

/* Simulated step: L equal blocks of backward, last block first; each block
 * burns compute_s/L, then reports its gradients final. Returns step seconds
 * and the seconds blocked in finish() (per step, slowest rank). */
static void time_overlap(float *g, size_t n, size_t bucket_bytes, int blocking, int iters,
                         double compute_s, int blocks, double *step_s, double *wait_s) {
    comm_buckets b;
    if (comm_buckets_init(&b, g, n, bucket_bytes, blocking) != 0)
        comm_fatal("bench-comm: bucket size too small");
    double total = 0, wait = 0;
    for (int it = -1; it < iters; it++) {
        fill(g, n);
        comm_barrier();
        comm_stats s0;
        comm_buckets_stats(&b, &s0);
        double t0 = comm_time();
        for (int l = blocks - 1; l >= 0; l--) {
            burn(compute_s / blocks);
            comm_buckets_ready(&b, n / (size_t)blocks * (size_t)l);
        }
        comm_buckets_finish(&b);
        double dt = comm_time() - t0;
        comm_stats s1;
        comm_buckets_stats(&b, &s1);
        if (it >= 0) {
            total += dt;
            wait += s1.wait_s - s0.wait_s;
        }
    }
    comm_buckets_free(&b);
    *step_s = max_over_ranks(total / iters);
    *wait_s = max_over_ranks(wait / iters);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v; returns its median and stores its minimum in *lo. */
static double median(double *v, int n, double *lo) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (lo) *lo = v[0];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Operations per timed repetition: enough that one repetition of a small
 * message lasts well above the clock's resolution, one for large ones. */
static int sweep_inner(size_t bytes) {
    size_t k = ((size_t)1 << 18) / (bytes > 1024 ? bytes : 1024);
    return k < 1 ? 1 : (int)k;
}

/* Median over reps of the one-way time (half a round trip, seconds) of a
 * `bytes` message between ranks 0 and 1, the fastest repetition in *lo;
 * every rank returns rank 0's values. Ranks above 1 only join the barriers. */
static double time_pingpong(char *buf, size_t bytes, int reps, double *lo) {
    int r = comm_rank(), inner = sweep_inner(bytes);
    double *t = malloc(sizeof *t * (size_t)reps), med[2] = {0, 0};
    if (!t) comm_fatal("bench-comm: out of memory");
    for (int k = -1; k < reps; k++) { /* one warm-up repetition */
        comm_barrier();
        double t0 = comm_time();
        for (int i = 0; i < inner; i++) {
            if (r == 0) {
                MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 7, MPI_COMM_WORLD);
                MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (r == 1) {
                MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 7, MPI_COMM_WORLD);
            }
        }
        if (k >= 0) t[k] = (comm_time() - t0) / inner / 2;
    }
    if (r == 0) med[0] = median(t, reps, &med[1]);
    free(t);
    MPI_Bcast(med, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    *lo = med[1];
    return med[0];
}

/* Median over reps of one blocking MPI_Allreduce(SUM) of bytes/4 floats
 * (seconds; each repetition's time is the slowest rank's), fastest in *lo. */
static double time_allreduce_sweep(float *g, size_t bytes, int reps, double *lo) {
    int inner = sweep_inner(bytes), n = (int)(bytes / sizeof(float));
    double *t = malloc(sizeof *t * (size_t)reps), med;
    if (!t) comm_fatal("bench-comm: out of memory");
    for (int k = -1; k < reps; k++) {
        comm_barrier();
        double t0 = comm_time();
        for (int i = 0; i < inner; i++)
            MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double dt = max_over_ranks((comm_time() - t0) / inner);
        if (k >= 0) t[k] = dt;
    }
    med = median(t, reps, lo);
    free(t);
    return med;
}

/* alpha-beta (Hockney) estimates from a sweep over increasing sizes m[0..n):
 * the line through the smallest message (alpha: the per-message cost) and
 * the largest (beta: the per-byte cost, where it dominates). A slope between
 * two large sizes subtracts two noisy times, and a least-squares fit lets
 * the many small messages set beta; on a loaded machine both went wrong
 * (negative beta; a tbf-shaped 1 Gbit/s read as 1 GB/s). Returns the
 * model's largest relative error over the points. */
static double fit_alpha_beta(const double *m, const double *t, int n, double *alpha, double *beta) {
    *beta = (t[n - 1] - t[0]) / (m[n - 1] - m[0]);
    *alpha = t[0] - *beta * m[0];
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(*alpha + *beta * m[i] - t[i]) / t[i];
        if (e > worst) worst = e;
    }
    return worst;
}

/* gamma: seconds per byte of the local reduction a[i] += b[i] on buffers of
 * `n` floats (median of reps), the third term of the alpha-beta-gamma model. */
static double time_gamma(float *a, const float *b, size_t n, int reps) {
    double *t = malloc(sizeof *t * (size_t)reps), med;
    if (!t) comm_fatal("bench-comm: out of memory");
    for (int k = -1; k < reps; k++) {
        double t0 = comm_time();
        for (size_t i = 0; i < n; i++) a[i] += b[i];
        if (k >= 0) t[k] = (comm_time() - t0) / ((double)n * sizeof(float));
    }
    volatile float sink = a[n / 2];
    (void)sink;
    med = median(t, reps, NULL);
    free(t);
    return med;
}

#define SWEEP_MAX 16

static void print_fit(const char *name, const double *m, const double *t, int n) {
    double a, b, e = fit_alpha_beta(m, t, n, &a, &b);
    printf("%s_alpha_us %.3f\n%s_beta_ns_per_byte %.5f\n%s_fit_max_rel_err %.3f\n", name, a * 1e6,
           name, b * 1e9, name, e);
}

/* Ping-pong and all-reduce over sizes 8 B .. 8 MiB (x4), alpha-beta fits of
 * the medians and of the fastest repetitions (min_: the machine without the
 * other tenants' load) and gamma, printed by rank 0 as the last lines. */
static void sweep(int reps) {
    size_t maxb = (size_t)8 << 20;
    char *buf = calloc(maxb, 1);
    float *g = xalloc(maxb / sizeof(float)), *h = xalloc(maxb / sizeof(float));
    if (!buf) comm_fatal("bench-comm: out of memory");
    fill(g, maxb / sizeof(float));
    fill(h, maxb / sizeof(float));
    double m[SWEEP_MAX], pp[SWEEP_MAX], ar[SWEEP_MAX], ppl[SWEEP_MAX], arl[SWEEP_MAX];
    int n = 0, w = comm_world();
    for (size_t b = 8; b <= maxb && n < SWEEP_MAX; b *= 4, n++) {
        m[n] = (double)b;
        pp[n] = w > 1 ? time_pingpong(buf, b, reps, &ppl[n]) : 0;
        ar[n] = w > 1 ? time_allreduce_sweep(g, b, reps, &arl[n]) : 0;
    }
    double gamma = time_gamma(g, h, maxb / sizeof(float), reps > 5 ? 5 : reps);
    if (comm_rank() == 0) {
        printf("sweep_reps %d\n", reps);
        for (int i = 0; i < n && w > 1; i++)
            printf("sweep_bytes_%.0f pingpong_us %.3f allreduce_us %.3f min %.3f %.3f\n", m[i],
                   pp[i] * 1e6, ar[i] * 1e6, ppl[i] * 1e6, arl[i] * 1e6);
        printf("gamma_ns_per_byte %.5f\n", gamma * 1e9);
        if (w > 1) {
            print_fit("min_pingpong", m, ppl, n);
            print_fit("min_allreduce", m, arl, n);
            print_fit("pingpong", m, pp, n);
            print_fit("allreduce", m, ar, n);
        }
    }
    free(buf);
    free(g);
    free(h);
}

/* v read whole as a finite number in [lo, hi], or one fatal line naming it */
static double num_arg(const char *flag, const char *v, double lo, double hi) {
    double x;
    if (bench_double(v, lo, hi, &x)) comm_fatal("bench-comm: %s %s: expected a number from %g to %g", flag, v, lo, hi);
    return x;
}

/* the same for a whole integer */
static long int_arg(const char *flag, const char *v, long lo, long hi) {
    long x;
    if (bench_long(v, lo, hi, &x)) comm_fatal("bench-comm: %s %s: expected an integer from %ld to %ld", flag, v, lo, hi);
    return x;
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    size_t n = 1408768; /* the tiny ViT's gradient: 5.6 MB */
    double bucket_mb = 1.0, compute_ms = 30.0;
    int iters = 20, blocks = 12, reps = 11, do_sweep = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (comm_rank() == 0)
                printf("usage: bench-comm [--floats N] [--bucket-mb MB] [--iters N] [--compute-ms MS] "
                       "[--blocks N] [--reps N] [--sweep 0|1]\n");
            comm_finalize();
            return 0;
        }
        if (!v) comm_fatal("bench-comm: %s needs a value", a);
        if (strcmp(a, "--floats") == 0) n = (size_t)int_arg(a, v, 1, 10000000000L);
        else if (strcmp(a, "--bucket-mb") == 0) bucket_mb = num_arg(a, v, 1e-3, 4096);
        else if (strcmp(a, "--iters") == 0) iters = (int)int_arg(a, v, 1, 1000000);
        else if (strcmp(a, "--compute-ms") == 0) compute_ms = num_arg(a, v, 0, 1e6);
        else if (strcmp(a, "--blocks") == 0) blocks = (int)int_arg(a, v, 1, 10000);
        else if (strcmp(a, "--reps") == 0) reps = (int)int_arg(a, v, 1, 10000);
        else if (strcmp(a, "--sweep") == 0) do_sweep = (int)int_arg(a, v, 0, 1);
        else comm_fatal("bench-comm: unknown option %s (--floats --bucket-mb --iters "
                        "--compute-ms --blocks --reps --sweep)", a);
        i++;
    }
    if (n == 0 || iters < 1 || blocks < 1 || bucket_mb <= 0 || reps < 1)
        comm_fatal("bench-comm: --floats, --iters, --blocks, --bucket-mb and --reps must be > 0");
    size_t bucket_bytes = (size_t)(bucket_mb * 1048576.0);
    int w = comm_world(), r = comm_rank();
    double bytes = (double)n * sizeof(float);
    float *g = xalloc(n), *h = xalloc(n);

    fill(g, n);
    memcpy(h, g, n * sizeof *g); /* fault the pages in */
    double t0 = comm_time();
    for (int it = 0; it < iters; it++) {
        g[it % n] += 1.0f;
        memcpy(h, g, n * sizeof *g);
    }
    double memcpy_s = (comm_time() - t0) / iters;
    volatile float sink = h[iters % n];
    (void)sink;

    /* Replica check cost: the hash alone, then the collective (slowest rank). */
    t0 = comm_time();
    volatile uint64_t hsink = comm_hash_floats(g, n);
    (void)hsink;
    double hash_s = comm_time() - t0;
    comm_barrier();
    t0 = comm_time();
    if (comm_check_replicas(g, n, NULL, 0) != 0)
        comm_fatal("bench-comm: replicas differ before the benchmark");
    double check_s = max_over_ranks(comm_time() - t0);

    double tb = time_allreduce(g, n, bucket_bytes, 1, iters);
    double tk = time_allreduce(g, n, bucket_bytes, 0, iters);
    double ob_step, ob_wait, ok_step, ok_wait;
    time_overlap(g, n, bucket_bytes, 1, iters, compute_ms * 1e-3, blocks, &ob_step, &ob_wait);
    time_overlap(g, n, bucket_bytes, 0, iters, compute_ms * 1e-3, blocks, &ok_step, &ok_wait);

    if (r == 0) {
        if (w == 1) printf("note single_process_no_communication_bandwidths_meaningless\n");
        double bus = w > 1 ? 2.0 * (w - 1) / w : 0.0;
        printf("world %d\nfloats %zu\nbytes %.0f\nbucket_bytes %zu\nbuckets %zu\niters %d\n", w,
               n, bytes, bucket_bytes, (n * sizeof(float) + bucket_bytes - 1) / bucket_bytes,
               iters);
        printf("memcpy_ms %.4f\nmemcpy_gbps %.3f\n", memcpy_s * 1e3, bytes / memcpy_s / 1e9);
        printf("hash_ms %.4f\ncheck_replicas_ms %.4f\n", hash_s * 1e3, check_s * 1e3);
        const char *name[2] = {"blocking", "bucketed"};
        double t[2] = {tb, tk};
        for (int k = 0; k < 2; k++) {
            printf("%s_ms %.4f\n", name[k], t[k] * 1e3);
            printf("%s_algbw_gbps %.3f\n", name[k], bytes / t[k] / 1e9);
            printf("%s_busbw_gbps %.3f\n", name[k], bus * bytes / t[k] / 1e9);
            printf("%s_algbw_over_memcpy %.4f\n", name[k], memcpy_s / t[k]);
        }
        printf("overlap_compute_ms %.3f\noverlap_blocks %d\n", compute_ms, blocks);
        printf("overlap_blocking_step_ms %.4f\noverlap_blocking_wait_ms %.4f\n"
               "overlap_blocking_wait_frac %.4f\n",
               ob_step * 1e3, ob_wait * 1e3, ob_wait / ob_step);
        printf("overlap_bucketed_step_ms %.4f\noverlap_bucketed_wait_ms %.4f\n"
               "overlap_bucketed_wait_frac %.4f\n",
               ok_step * 1e3, ok_wait * 1e3, ok_wait / ok_step);
        /* the share of a bucketed all-reduce hidden behind the simulated
         * backward: 1 - exposed wait / the same all-reduce with nothing to hide behind */
        double hid = 1.0 - ok_wait / tk;
        if (w > 1) printf("overlap_fraction %.4f\n", hid < 0 ? 0.0 : hid);
    }
    fflush(stdout);
    if (do_sweep) sweep(reps);
    free(g);
    free(h);
    comm_finalize();
    return stdout_close("bench-comm", 0);
}
