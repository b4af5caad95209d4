/* test_extract.c - distributed feature extraction and the gather under it,
 * run as one process and under mpirun (-np 2, 3): every rank computes a
 * contiguous slice with a callback whose output is a known function of the
 * row index, and rank 0 must hold every row, exactly, in order. Also
 * comm_gather_floats with uneven and empty contributions (in place and
 * not), comm_send_bytes / comm_recv_bytes, scoring split over the ranks
 * (eval_features_ranks), and bad arguments on one rank failing every rank without a hang. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "evaluate.h"
#include "testutil.h"

static int R, W;

/* Feature j of row i: exact in float for the sizes used here. */
static float feat(int i, int j) { return (float)i * 4.0f + (float)j + 0.5f; }

typedef struct {
    int dim, chunk;
    int calls, rows, first, next; /* pieces seen, rows produced, first row, expected next */
    int order_ok, size_ok;
} probe_ctx;

static void features(void *vctx, int i0, int cnt, float *out) {
    probe_ctx *c = vctx;
    if (c->calls == 0) c->first = c->next = i0;
    c->order_ok &= i0 == c->next; /* consecutive, increasing */
    c->size_ok &= cnt >= 1 && cnt <= c->chunk;
    c->calls++;
    c->rows += cnt;
    c->next = i0 + cnt;
    for (int i = 0; i < cnt; i++)
        for (int j = 0; j < c->dim; j++) out[(size_t)i * c->dim + j] = feat(i0 + i, j);
}

/* One extraction of n rows; checks this rank's pieces and rank 0's result. */
static void extract_and_check(int n, int dim, int chunk) {
    probe_ctx c = {dim, chunk, 0, 0, -1, -1, 1, 1};
    float *all = R == 0 ? malloc(((size_t)n * dim + 1) * sizeof *all) : NULL;
    if (all) memset(all, 0xff, ((size_t)n * dim + 1) * sizeof *all); /* NaN: unwritten shows */
    char err[256];
    CU_ASSERT_FATAL(eval_extract(n, dim, chunk, features, &c, all, err, sizeof err) == 0);
    int lo = (int)((int64_t)n * R / W), hi = (int)((int64_t)n * (R + 1) / W);
    CU_ASSERT(c.rows == hi - lo);
    CU_ASSERT(c.order_ok && c.size_ok);
    CU_ASSERT(c.calls == (hi - lo + chunk - 1) / chunk);
    if (c.calls) CU_ASSERT(c.first == lo && c.next == hi);
    if (R == 0) {
        int bad = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++) bad += all[(size_t)i * dim + j] != feat(i, j);
        CU_ASSERT(bad == 0);
        uint32_t guard;
        memcpy(&guard, all + (size_t)n * dim, 4);
        CU_ASSERT(guard == 0xffffffffu); /* nothing written past (n, dim) */
        free(all);
    }
}

static void test_extract_known(void) {
    extract_and_check(1001, 3, 64); /* uneven slices, a short last piece */
    extract_and_check(1000, 5, 1);  /* one row per call */
    extract_and_check(257, 2, 10000);
}

static void test_extract_small(void) {
    extract_and_check(1, 4, 8); /* fewer rows than ranks: some slices empty */
    extract_and_check(0, 4, 8); /* nothing at all */
    extract_and_check(W, 1, 1);
}

/* Bad arguments: the same on every rank, or on rank 0 only (all_out NULL):
 * -1 everywhere, nothing called, nobody left in the gather. */
static void test_extract_args(void) {
    probe_ctx c = {2, 4, 0, 0, -1, -1, 1, 1};
    float out[20];
    char err[256];
    CU_ASSERT(eval_extract(10, 2, 0, features, &c, out, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "chunk >= 1") != NULL);
    CU_ASSERT(eval_extract(-1, 2, 4, features, &c, out, err, sizeof err) == -1);
    CU_ASSERT(eval_extract(10, 0, 4, features, &c, out, err, sizeof err) == -1);
    CU_ASSERT(eval_extract(10, 2, 4, NULL, &c, out, err, sizeof err) == -1);
    CU_ASSERT(eval_extract(10, 2, 4, features, &c, R == 0 ? NULL : out, err, sizeof err) == -1);
    if (R == 0) CU_ASSERT(strstr(err, "rank 0 needs an output") != NULL);
    if (R != 0) CU_ASSERT(strstr(err, "rank 0 refused") != NULL);
    CU_ASSERT(c.calls == 0);
}

/* comm_gather_floats directly: rank r sends r == 1 ? 0 : r + 3 floats of
 * value 100 r + i; root 0 gets them concatenated. Then the in-place form,
 * and root = W - 1. */
static void test_gather(void) {
    size_t *counts = malloc(W * sizeof *counts), total = 0;
    for (int r = 0; r < W; r++) total += counts[r] = r == 1 ? 0 : (size_t)r + 3;
    size_t off = 0;
    for (int r = 0; r < R; r++) off += counts[r];
    for (int root = 0; root < W; root += W > 1 ? W - 1 : 1) {
        for (int inplace = 0; inplace < 2; inplace++) {
            float *all = malloc((total + 1) * sizeof *all);
            float *mine = malloc((counts[R] + 1) * sizeof *mine);
            for (size_t i = 0; i <= total; i++) all[i] = -1.0f;
            float *src = inplace && R == root ? all + off : mine;
            for (size_t i = 0; i < counts[R]; i++) src[i] = (float)(100 * R + (int)i);
            comm_gather_floats(src, counts[R], R == root ? all : NULL,
                               R == root ? counts : NULL, root);
            if (R == root) {
                int bad = 0;
                size_t k = 0;
                for (int r = 0; r < W; r++)
                    for (size_t i = 0; i < counts[r]; i++) bad += all[k++] != (float)(100 * r + (int)i);
                CU_ASSERT(bad == 0 && k == total);
                CU_ASSERT(all[total] == -1.0f);
            }
            free(all);
            free(mine);
        }
    }
    free(counts);
}

/* comm_send_bytes / comm_recv_bytes: rank 0 to the last rank and back,
 * two messages in order, every byte as sent. */
static void test_send_recv(void) {
    if (W < 2) return; /* fatal by contract at world 1 */
    enum { N = 100003 };
    unsigned char *a = malloc(N), *b = malloc(N);
    for (int i = 0; i < N; i++) a[i] = (unsigned char)(i * 31 + 7);
    int last = W - 1, small = 0;
    if (R == 0) {
        comm_send_bytes(a, N, last);
        comm_send_bytes(&(int){42}, sizeof(int), last);
        comm_recv_bytes(b, N, last);
        CU_ASSERT(memcmp(a, b, N) == 0);
    } else if (R == last) {
        memset(b, 0, N);
        comm_recv_bytes(b, N, 0);
        comm_recv_bytes(&small, sizeof small, 0);
        CU_ASSERT(memcmp(a, b, N) == 0 && small == 42);
        comm_send_bytes(b, N, 0);
    }
    free(a);
    free(b);
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A rank waiting in comm_recv_bytes or comm_send_bytes while the other one
 * works (here: sleeps 1 s) must not spin on a core: with plain MPI_Recv /
 * MPI_Send the waiting rank took 0.53-0.64 CPU s of that second on a
 * machine shared with a training run (~1 idle). 1 MiB is past the eager
 * limit, so a plain send would wait for the receive. */
static void test_wait_idle_cpu(void) {
    if (W < 2) return;
    enum { N = 1 << 20 };
    unsigned char *buf = calloc(N, 1);
    int last = W - 1;
    struct timespec one_s = {1, 0};
    for (int dir = 0; dir < 2; dir++) { /* 0: rank 0 receives; 1: rank 0 sends */
        if (R == 0) {
            double c0 = cpu_s(), t0 = comm_time();
            if (dir == 0) comm_recv_bytes(buf, N, last);
            else comm_send_bytes(buf, N, last);
            double cpu = cpu_s() - c0, wall = comm_time() - t0;
            CU_ASSERT(wall > 0.8);
            CU_ASSERT(cpu < 0.3 * wall);
            if (cpu >= 0.3 * wall) fprintf(stderr, "wait_idle_cpu: %s used %.2f CPU s in %.2f s\n",
                                          dir ? "send" : "recv", cpu, wall);
        } else if (R == last) {
            nanosleep(&one_s, NULL);
            if (dir == 0) comm_send_bytes(buf, N, 0);
            else comm_recv_bytes(buf, N, 0);
        }
    }
    free(buf);
}

/* Rank 0's features of C noisy classes (an LCG: the same on any rank). */
static void score_data(float *f, uint8_t *y, int n, int dim, int nclass, uint32_t seed) {
    uint32_t st = seed;
    for (int i = 0; i < n; i++) {
        y[i] = (uint8_t)(i % nclass);
        for (int j = 0; j < dim; j++) {
            st = st * 1664525u + 1013904223u;
            float noise = (float)(st >> 8) / 16777216.0f - 0.5f;
            f[(size_t)i * dim + j] = (j % nclass == y[i] ? 0.6f : 0.0f) + 1.5f * noise;
        }
    }
}

/* eval_features_ranks against eval_features on rank 0 alone: every figure
 * bitwise the same at any world size (rank 1 scores kNN and the few-label
 * probes when there are two ranks); rank 1's failure reported by rank 0
 * alone; rank 0's own failure (no features) ends every rank. */
static void test_score_ranks(void) {
    enum { NTR = 1200, NTE = 300, D = 8, C = 4 };
    float *ftr = NULL, *fte = NULL;
    uint8_t ytr[NTR], yte[NTE];
    if (R == 0) { /* the other ranks hold nothing */
        ftr = malloc(sizeof(float) * NTR * D);
        fte = malloc(sizeof(float) * NTE * D);
        score_data(ftr, ytr, NTR, D, C, 11);
        score_data(fte, yte, NTE, D, C, 12);
    }
    eval_opts o;
    eval_opts_default(&o);
    o.max_iters = 60;
    o.seed = 5;
    eval_report ref, got;
    char err[256];
    if (R == 0)
        CU_ASSERT_FATAL(eval_features(ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &ref, err, sizeof err) == 0);
    int rc = eval_features_ranks(0, ftr, R == 0 ? ytr : NULL, R == 0 ? NTR : 0, fte,
                                 R == 0 ? yte : NULL, R == 0 ? NTE : 0, D, C, &o, &got, err, sizeof err);
    CU_ASSERT(rc == 0);
    if (R == 0) {
        CU_ASSERT(got.metrics == EVAL_ALL && ref.metrics == EVAL_ALL);
        CU_ASSERT(got.probe_acc == ref.probe_acc && got.knn_acc == ref.knn_acc);
        CU_ASSERT(got.probe1pct_acc == ref.probe1pct_acc && got.probe10pct_acc == ref.probe10pct_acc);
        CU_ASSERT(got.probe.best_wd == ref.probe.best_wd && got.probe.val_acc == ref.probe.val_acc);
        CU_ASSERT(got.probe1pct.best_wd == ref.probe1pct.best_wd &&
                  got.probe10pct.val_acc == ref.probe10pct.val_acc);
        CU_ASSERT(got.n1pct == ref.n1pct && got.n10pct == ref.n10pct && got.n10pct == 120);
        CU_ASSERT(got.knn_s > 0 && got.probe10pct_s > 0 && got.probe_s > 0);
        CU_ASSERT(ref.helper_rank == 0 && got.helper_rank == (W > 1 ? 1 : 0));
        printf("\n    rank 0 of %d: probe %.4f knn %.4f 1%% %.4f 10%% %.4f", W, got.probe_acc,
               got.knn_acc, got.probe1pct_acc, got.probe10pct_acc);
    } else {
        CU_ASSERT(got.metrics == 0);
    }
    /* kNN refuses k (more neighbours than KNN_MAX_K) while the full probe fits */
    o.knn_k = KNN_MAX_K + 1;
    strcpy(err, "untouched");
    rc = eval_features_ranks(0, ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &got, err, sizeof err);
    CU_ASSERT(rc == (R == 0 ? -1 : 0));
    if (R == 0) CU_ASSERT(strstr(err, "knn: k=") != NULL);
    if (R != 0) CU_ASSERT(strcmp(err, "untouched") == 0); /* one rank speaks */
    /* both sides fail (a label past nclass): kNN's error, as eval_features
     * gives it (kNN runs first there) */
    if (R == 0) ytr[7] = C;
    rc = eval_features_ranks(0, ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &got, err, sizeof err);
    CU_ASSERT(rc == (R == 0 ? -1 : 0));
    if (R == 0) CU_ASSERT(strncmp(err, "knn:", 4) == 0);
    if (R == 0) ytr[7] = 7 % C;
    /* metric bits eval_features refuses: refused here too, on rank 0 */
    o.metrics = EVAL_ALL | 0x100;
    rc = eval_features_ranks(0, ftr, ytr, NTR, fte, yte, NTE, D, C, &o, &got, err, sizeof err);
    CU_ASSERT(rc == (R == 0 ? -1 : 0));
    if (R == 0) CU_ASSERT(strstr(err, "unknown metric bits") != NULL);
    o.metrics = EVAL_ALL;
    /* rank 0 has nothing to score: every rank returns, rank 0's err as it was */
    o.knn_k = 20;
    strcpy(err, "rank 0's reason");
    rc = eval_features_ranks(R == 0, NULL, NULL, 0, NULL, NULL, 0, D, C, &o, &got, err, sizeof err);
    CU_ASSERT(rc == (R == 0 ? -1 : 0));
    CU_ASSERT(strcmp(err, "rank 0's reason") == 0);
    free(ftr);
    free(fte);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    R = comm_rank();
    W = comm_world();
    static const test_case cases[] = {
        {"gather", test_gather},
        {"extract_known", test_extract_known},
        {"extract_small", test_extract_small},
        {"extract_args", test_extract_args},
        {"send_recv", test_send_recv},
        {"wait_idle_cpu", test_wait_idle_cpu},
        {"score_ranks", test_score_ranks},
    };
    int rc = test_main("extract", cases, (int)(sizeof cases / sizeof cases[0]));
    int bad = comm_any_error(rc != 0); /* any rank's failure fails the run */
    if (rc) fprintf(stderr, "test_extract: rank %d of %d failed\n", R, W);
    comm_finalize();
    return bad >= 0 ? 1 : 0;
}
