/* bench_comm.c - gradient all-reduce bandwidth (blocking vs bucketed) against
 * memcpy of the same size, and a simulated backward pass that burns a fixed
 * compute time between ready() calls to measure how much communication is
 * left exposed in finish(). Run under mpirun -np W; rank 0 prints `key value`.
 *   bench-comm [--floats N] [--bucket-mb M] [--iters K] [--compute-ms C] [--blocks L] */
#include "comm.h"

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

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    size_t n = 1408768; /* the tiny ViT's gradient: 5.6 MB */
    double bucket_mb = 1.0, compute_ms = 30.0;
    int iters = 20, blocks = 12;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) comm_fatal("bench-comm: %s needs a value", a);
        if (strcmp(a, "--floats") == 0) n = strtoull(v, NULL, 10);
        else if (strcmp(a, "--bucket-mb") == 0) bucket_mb = atof(v);
        else if (strcmp(a, "--iters") == 0) iters = atoi(v);
        else if (strcmp(a, "--compute-ms") == 0) compute_ms = atof(v);
        else if (strcmp(a, "--blocks") == 0) blocks = atoi(v);
        else comm_fatal("bench-comm: unknown option %s (--floats --bucket-mb --iters "
                        "--compute-ms --blocks)", a);
        i++;
    }
    if (n == 0 || iters < 1 || blocks < 1 || bucket_mb <= 0)
        comm_fatal("bench-comm: --floats, --iters, --blocks and --bucket-mb must be > 0");
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
    }
    free(g);
    free(h);
    comm_finalize();
    return 0;
}
