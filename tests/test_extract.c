/* test_extract.c - distributed feature extraction and the gather under it,
 * run as one process and under mpirun (-np 2, 3): every rank computes a
 * contiguous slice with a callback whose output is a known function of the
 * row index, and rank 0 must hold every row, exactly, in order. Also
 * comm_gather_floats with uneven and empty contributions (in place and
 * not), and bad arguments on one rank failing every rank without a hang. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    R = comm_rank();
    W = comm_world();
    static const test_case cases[] = {
        {"gather", test_gather},
        {"extract_known", test_extract_known},
        {"extract_small", test_extract_small},
        {"extract_args", test_extract_args},
    };
    int rc = test_main("extract", cases, (int)(sizeof cases / sizeof cases[0]));
    int bad = comm_any_error(rc != 0); /* any rank's failure fails the run */
    if (rc) fprintf(stderr, "test_extract: rank %d of %d failed\n", R, W);
    comm_finalize();
    return bad >= 0 ? 1 : 0;
}
