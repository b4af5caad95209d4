/* test_comm.c - comm/ under a singleton and under mpirun -np 2/3: broadcast,
 * bucketed and blocking all-reduce against closed-form averages, replica
 * check, error agreement. Every rank runs every case (collectives must match),
 * so no CU_ASSERT_FATAL here; failures are summed over ranks before exit. */
#include "comm.h"
#include "testutil.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int R, W; /* rank, world */

static float *xalloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "test_comm: out of memory\n");
        exit(2);
    }
    return p;
}

static void test_world(void) {
    int size = 0, rank = -1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CU_ASSERT_EQUAL(comm_world(), size);
    CU_ASSERT_EQUAL(comm_rank(), rank);
    double t0 = comm_time();
    comm_barrier();
    CU_ASSERT(comm_time() >= t0);
}

static void test_bcast(void) {
    const size_t n = 1001;
    float *p = xalloc(n);
    for (int root = 0; root < W; root += (W > 1 ? W - 1 : 1)) {
        for (size_t i = 0; i < n; i++) p[i] = (float)(R * 10000 + (int)i);
        comm_bcast_floats(p, n, root);
        int bad = 0;
        for (size_t i = 0; i < n; i++) bad += p[i] != (float)(root * 10000 + (int)i);
        CU_ASSERT_EQUAL(bad, 0);
    }
    free(p);
}

/* FNV-1a 64 vectors computed outside (Python, and the published "a" vector). */
static void test_hash_vectors(void) {
    CU_ASSERT_EQUAL(comm_hash_floats(NULL, 0), 0xcbf29ce484222325ULL);
    float f;
    memcpy(&f, "abcd", 4);
    CU_ASSERT_EQUAL(comm_hash_floats(&f, 1), 0xfc179f83ee0724ddULL);
    float v[3] = {1.0f, -2.5f, 3.14159f};
    CU_ASSERT_EQUAL(comm_hash_floats(v, 3), 0xfd8ff1a3df71481cULL);
    uint32_t u;
    memcpy(&u, &v[1], 4);
    u ^= 1u; /* lowest mantissa bit */
    memcpy(&v[1], &u, 4);
    CU_ASSERT_NOT_EQUAL(comm_hash_floats(v, 3), 0xfd8ff1a3df71481cULL);
}

/* Rank r's gradient at i: a(i) + (r - (W-1)/2)*b(i). The (r - ...) terms
 * sum to zero over ranks, so the sum is W*a(i) and the average exactly a(i)
 * (correctly rounded division of an exact W*a by W); every partial sum
 * is a small multiple of 1/8, so float addition in any order is exact. */
static float exact_a(size_t i) { return (float)((int)(i % 13) - 6) + 0.25f * (float)(i % 4); }
static float exact_b(size_t i) { return (float)(i % 5) + 0.5f; }
static float exact_val(size_t i, int r) {
    return exact_a(i) + ((float)r - 0.5f * (float)(W - 1)) * exact_b(i);
}

/* Simulates one backward pass: gradients become final from the end in
 * irregular steps; the region not yet final holds garbage (huge, differing
 * per rank), so a bucket issued too early corrupts the result. */
static void backward_step(comm_buckets *b, float *g, size_t n, size_t bf, unsigned *seed) {
    for (size_t i = 0; i < n; i++) g[i] = 1e30f * (float)(R + 1);
    size_t lo = n;
    while (lo > 0) {
        *seed = *seed * 1103515245u + 12345u;
        size_t step = 1 + (*seed >> 8) % (n / 4 + 1);
        size_t nlo = step >= lo ? 0 : lo - step;
        for (size_t i = nlo; i < lo; i++) g[i] = exact_val(i, R);
        lo = nlo;
        comm_buckets_ready(b, lo);
        if (*seed & 0x100) comm_buckets_ready(b, lo); /* repeated watermark */
        if (W > 1 && !b->blocking) {
            /* buckets fully inside [lo, n): floor((n-lo)/bf), all when lo == 0 */
            size_t want = lo == 0 ? (n + bf - 1) / bf : (n - lo) / bf;
            CU_ASSERT_EQUAL((size_t)b->next, want);
        }
    }
    comm_buckets_finish(b);
}

static void check_exact(size_t n, size_t bucket_bytes, int blocking) {
    float *g = xalloc(n);
    comm_buckets b;
    CU_ASSERT_EQUAL(comm_buckets_init(&b, g, n, bucket_bytes, blocking), 0);
    unsigned seed = 12345u + (unsigned)n; /* same on every rank: same lo sequence */
    for (int step = 0; step < 2; step++) {
        backward_step(&b, g, n, bucket_bytes / sizeof(float), &seed);
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = exact_a(i);
            if (g[i] != want && bad++ < 3)
                fprintf(stderr, "rank %d n %zu bucket %zu blocking %d: g[%zu] = %g, want %g\n",
                        R, n, bucket_bytes, blocking, i, g[i], want);
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
    comm_stats st;
    comm_buckets_stats(&b, &st);
    CU_ASSERT_EQUAL(st.steps, W > 1 ? 2u : 0u);
    CU_ASSERT_EQUAL(st.bytes, W > 1 ? 2u * n * sizeof(float) : 0u);
    size_t bf = bucket_bytes / sizeof(float);
    CU_ASSERT_EQUAL(st.nbuckets, blocking ? 1 : (int)((n + bf - 1) / bf));
    CU_ASSERT(st.wait_s >= 0.0 && st.last_wait_s <= st.wait_s);
    comm_buckets_free(&b);
    free(g);
}

static void test_buckets_exact(void) {
    static const size_t cases[][2] = {
        {1000, 64 * 4},   /* 64 does not divide 1000: short first bucket */
        {1000, 1000 * 4}, /* one bucket, exactly n */
        {1000, 5000 * 4}, /* bucket larger than n */
        {1, 4},           /* one element, one float per bucket */
        {1, 4096},
        {257, 4},         /* 257 one-float buckets */
        {4097, 100 * 4 + 3}, /* bytes not a multiple of 4: rounds down */
        {300000, 1 << 18}, /* big enough for Open MPI's large-message paths */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int blocking = 0; blocking < 2; blocking++)
            check_exact(cases[c][0], cases[c][1], blocking);
}

/* Random (inexact) data: the bucketed result matches a serial double-precision
 * reference within float tolerance and is bitwise identical on every rank;
 * on exact data blocking and bucketed agree bitwise. */
static float rnd(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f + 1e-3f * (float)(*s >> 24);
}

static void test_buckets_random(void) {
    const size_t n = 50021;
    float *g = xalloc(n);
    unsigned s0 = 777u + 31u * (unsigned)R; /* rank r's data, reproducible anywhere */
    for (size_t i = 0; i < n; i++) g[i] = rnd(&s0);
    double *ref = calloc(n, sizeof *ref);
    if (!ref) exit(2);
    for (int r = 0; r < W; r++) {
        unsigned s = 777u + 31u * (unsigned)r;
        for (size_t i = 0; i < n; i++) ref[i] += rnd(&s);
    }
    comm_buckets b;
    comm_buckets_init(&b, g, n, 4096 * 4 + 4, 0);
    for (size_t lo = n; lo > 0;) {
        lo = lo > 7777 ? lo - 7777 : 0;
        comm_buckets_ready(&b, lo);
    }
    comm_buckets_finish(&b);
    double maxerr = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(g[i] - ref[i] / W);
        if (e > maxerr) maxerr = e;
    }
    CU_ASSERT(maxerr < 1e-6);
    char err[256] = "";
    CU_ASSERT_EQUAL(comm_check_replicas(g, n, err, sizeof err), 0);
    /* Independent of comm_check_replicas: gather rank 0's buffer directly. */
    float *g0 = xalloc(n);
    memcpy(g0, g, n * sizeof *g);
    MPI_Bcast(g0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(memcmp(g0, g, n * sizeof *g), 0);
    comm_buckets_free(&b);
    free(g0);
    free(ref);
    free(g);
}

static void test_blocking_equals_bucketed(void) {
    const size_t n = 123457;
    float *g1 = xalloc(n), *g2 = xalloc(n);
    for (size_t i = 0; i < n; i++) g1[i] = g2[i] = exact_val(i, R);
    comm_buckets b1, b2;
    comm_buckets_init(&b1, g1, n, 1 << 20, 1);
    comm_buckets_init(&b2, g2, n, 10000 * 4, 0);
    comm_buckets_ready(&b1, 0);
    comm_buckets_finish(&b1);
    comm_buckets_ready(&b2, n / 2);
    comm_buckets_finish(&b2);
    CU_ASSERT_EQUAL(memcmp(g1, g2, n * sizeof *g1), 0);
    CU_ASSERT_EQUAL(comm_hash_floats(g1, n), comm_hash_floats(g2, n));
    comm_buckets_free(&b1);
    comm_buckets_free(&b2);
    free(g1);
    free(g2);
}

static void test_buckets_args(void) {
    float g[4] = {1, 2, 3, 4};
    comm_buckets b;
    CU_ASSERT_EQUAL(comm_buckets_init(&b, g, 4, 0, 0), -1);
    CU_ASSERT_EQUAL(comm_buckets_init(&b, g, 4, 3, 0), -1);
    CU_ASSERT_EQUAL(comm_buckets_init(&b, g, 0, 64, 0), 0); /* empty: no-op */
    comm_buckets_ready(&b, 0);
    comm_buckets_finish(&b);
    comm_buckets_free(&b);
    CU_ASSERT_EQUAL(g[0], 1.0f);
    CU_ASSERT_EQUAL(g[3], 4.0f);
}

static void test_replicas(void) {
    const size_t n = 10007;
    float *p = xalloc(n);
    for (size_t i = 0; i < n; i++) p[i] = 0.001f * (float)i - 3.0f;
    char err[256] = "untouched";
    CU_ASSERT_EQUAL(comm_check_replicas(p, n, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(err, "untouched");
    if (W > 1) {
        int odd = W - 1; /* this rank flips one bit */
        if (R == odd) {
            uint32_t u;
            memcpy(&u, &p[n / 2], 4);
            u ^= 1u << 3;
            memcpy(&p[n / 2], &u, 4);
        }
        CU_ASSERT_EQUAL(comm_check_replicas(p, n, err, sizeof err), -1);
        char want[64];
        snprintf(want, sizeof want, "rank %d 0x", odd);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
        CU_ASSERT_PTR_NULL(strstr(err, "rank 0 0x"));
        if (R == odd) { /* the message carries this rank's actual hash */
            char hex[32];
            snprintf(hex, sizeof hex, "0x%016llx", (unsigned long long)comm_hash_floats(p, n));
            CU_ASSERT_PTR_NOT_NULL(strstr(err, hex));
        }
        /* Every rank but 0 diverges: all of them are named. */
        if (R > 0) p[0] += (float)R;
        CU_ASSERT_EQUAL(comm_check_replicas(p, n, err, sizeof err), -1);
        for (int r = 1; r < W; r++) {
            snprintf(want, sizeof want, "rank %d 0x", r);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
        }
        /* A tiny buffer truncates the message without overflowing it. */
        char small[8];
        CU_ASSERT_EQUAL(comm_check_replicas(p, n, small, sizeof small), -1);
        CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    }
    free(p);
}

static void test_any_error(void) {
    CU_ASSERT_EQUAL(comm_any_error(0), -1);
    CU_ASSERT_EQUAL(comm_any_error(1), 0);
    CU_ASSERT_EQUAL(comm_any_error(R == W - 1), W - 1);
    CU_ASSERT_EQUAL(comm_any_error(R >= 1), W > 1 ? 1 : -1);
    CU_ASSERT_EQUAL(comm_any_error(R % 2 == 1 ? 7 : 0), W > 1 ? 1 : -1);
}

/* Rank r contributes r + i/4 + 1e9*(r odd ? 1 : -1)*(i%3): the large terms
 * cancel pairwise only with an even world, so the expected sum is computed
 * here in integers-times-quarters, all exactly representable; any order of
 * addition is exact. Also n = 0 and a one-element call. */
static void test_sum_doubles(void) {
    const size_t n = 1003;
    double *p = malloc(n * sizeof *p);
    if (!p) exit(2);
    for (size_t i = 0; i < n; i++)
        p[i] = (double)R + 0.25 * (double)i + 1e9 * (R % 2 ? 1.0 : -1.0) * (double)(i % 3);
    comm_sum_doubles(p, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double big = 0.0;
        for (int r = 0; r < W; r++) big += 1e9 * (r % 2 ? 1.0 : -1.0) * (double)(i % 3);
        double want = 0.5 * (double)W * (double)(W - 1) + (double)W * 0.25 * (double)i + big;
        bad += p[i] != want;
    }
    CU_ASSERT_EQUAL(bad, 0);
    double one = 1.5;
    comm_sum_doubles(&one, 1);
    CU_ASSERT_EQUAL(one, 1.5 * W);
    comm_sum_doubles(NULL, 0); /* nothing to do, must not touch p */
    free(p);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    R = comm_rank();
    W = comm_world();
    static const test_case cases[] = {
        {"world", test_world},
        {"bcast", test_bcast},
        {"hash_vectors", test_hash_vectors},
        {"buckets_exact", test_buckets_exact},
        {"buckets_random", test_buckets_random},
        {"blocking_equals_bucketed", test_blocking_equals_bucketed},
        {"buckets_args", test_buckets_args},
        {"replicas", test_replicas},
        {"any_error", test_any_error},
        {"sum_doubles", test_sum_doubles},
    };
    int rc = test_main("comm", cases, (int)(sizeof cases / sizeof cases[0]));
    /* Plain MPI, not comm_any_error (which is under test): any rank's failure
     * fails the whole run. */
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst != rc && R == 0) fprintf(stderr, "test_comm: another rank failed\n");
    if (rc) fprintf(stderr, "test_comm: rank %d of %d failed\n", R, W);
    comm_finalize();
    return worst ? 1 : 0;
}
