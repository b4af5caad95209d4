/* evaluate.c - scores a representation from its feature matrices: DINO's
 * weighted kNN, the linear probe on all / 1% / 10% of the labels, one
 * report for all of them, and feature extraction split over MPI ranks.
 * Contracts and sources are in evaluate.h; the .npy code is in npy.c. */
#include "evaluate.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "comm.h"

#define KNN_TEST_BLOCK 64    /* test rows per sgemm: blocks are the unit of work */
#define KNN_TRAIN_BLOCK 4096 /* training rows per sgemm: 64 x 4096 floats = 1 MiB
                              * of similarities per thread, whatever ntr is */
#define KNN_NORM_EPS 1e-12   /* x / max(||x||, eps), torch's F.normalize default */
#define FEWLABEL_RNG_TAG 0x6665776c6162ULL /* "fewlab": the subset's stream */

static void eval_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void eval_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double eval_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Labels y (n) < nclass and features f (n, dim) finite; either may be NULL
 * (not checked). 0 or -1 + err. */
static int eval_check_set(const char *who, const char *set, const float *f, const uint8_t *y,
                          int n, int dim, int nclass, char *err, size_t errlen) {
    for (int i = 0; y && i < n; i++)
        if (y[i] >= nclass) {
            eval_err(err, errlen, "%s: %s label %d at row %d >= nclass %d", who, set, y[i], i,
                     nclass);
            return -1;
        }
    if (!f) return 0;
    for (size_t i = 0; i < (size_t)n * dim; i++)
        if (!isfinite(f[i])) { /* a diverged encoder: say so instead of voting on NaN */
            eval_err(err, errlen, "%s: %s feature at row %zu, column %zu is not finite", who,
                     set, i / (size_t)dim, i % (size_t)dim);
            return -1;
        }
    return 0;
}

/* ------------------------------------------------------------------- kNN */

static int knn_check(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, int nte,
                     int dim, int nclass, int k, double temp, const void *pred, char *err,
                     size_t errlen) {
    if (!ftr || !ytr || !fte || !pred) {
        eval_err(err, errlen, "knn: NULL features, labels or output");
        return -1;
    }
    if (ntr <= 0 || nte <= 0 || dim <= 0) {
        eval_err(err, errlen, "knn: need ntr > 0, nte > 0, dim > 0 (got %d, %d, %d)", ntr, nte,
                 dim);
        return -1;
    }
    if (nclass < 2 || nclass > 256) {
        eval_err(err, errlen, "knn: nclass=%d out of range [2, 256]", nclass);
        return -1;
    }
    if (k < 1 || k > ntr || k > KNN_MAX_K) {
        eval_err(err, errlen, "knn: k=%d out of range [1, %d] (ntr=%d, KNN_MAX_K=%d)", k,
                 ntr < KNN_MAX_K ? ntr : KNN_MAX_K, ntr, KNN_MAX_K);
        return -1;
    }
    if (!(temp > 0) || !isfinite(temp)) {
        eval_err(err, errlen, "knn: temperature=%g must be finite and > 0", temp);
        return -1;
    }
    if (eval_check_set("knn", "train", ftr, ytr, ntr, dim, nclass, err, errlen)) return -1;
    /* test labels are knn_run's business: knn_predict has none */
    if (eval_check_set("knn", "test", fte, NULL, nte, dim, nclass, err, errlen)) return -1;
    return 0;
}

/* o (dim) = x / max(||x||_2, eps), the norm in double. */
static void knn_normalize_row(float *o, const float *x, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += (double)x[j] * x[j];
    double inv = 1.0 / fmax(sqrt(s), KNN_NORM_EPS);
    for (int j = 0; j < dim; j++) o[j] = (float)(x[j] * inv);
}

/* Inserts (s, idx) into the list ts/ti (k slots, *cnt used), kept in
 * decreasing s; the caller guarantees *cnt < k or s > ts[k - 1]. Indices
 * arrive in increasing order and an equal s stops the shift, so equal
 * similarities stay in increasing index order and a full list never
 * trades an earlier index for a later one of the same similarity. */
static void knn_push(float *ts, int32_t *ti, int *cnt, int k, float s, int32_t idx) {
    int p = *cnt < k ? (*cnt)++ : k - 1;
    while (p > 0 && ts[p - 1] < s) {
        ts[p] = ts[p - 1];
        ti[p] = ti[p - 1];
        p--;
    }
    ts[p] = s;
    ti[p] = idx;
}

/* Class with the largest sum of exp(s / T) over the k neighbours (lowest
 * class on ties), each term scaled by exp(-s_max / T), which ranks the
 * classes alike: exp(s / T) alone overflows to inf once s / T > 709 (a
 * cosine of 0.8 at T 0.001), and every class at inf went to the lowest.
 * ts is in decreasing order, so s_max = ts[0]. votes: (nclass) scratch. */
static uint8_t knn_vote(const float *ts, const int32_t *ti, int k, const uint8_t *ytr,
                        int nclass, double temp, double *votes) {
    memset(votes, 0, (size_t)nclass * sizeof *votes);
    for (int t = 0; t < k; t++) votes[ytr[ti[t]]] += exp(((double)ts[t] - ts[0]) / temp);
    int best = 0;
    for (int c = 1; c < nclass; c++)
        if (votes[c] > votes[best]) best = c;
    return (uint8_t)best;
}

/* One block of m <= KNN_TEST_BLOCK normalised test rows q (m, dim) against
 * every normalised training row: S = q trn_blk^T per training block, each
 * row's top k kept in ts/ti (m, k), then the vote into pred (m). */
static void knn_block(const float *q, int m, const float *trn, const uint8_t *ytr, int ntr,
                      int dim, int nclass, int k, double temp, float *S, float *ts, int32_t *ti,
                      double *votes, uint8_t *pred) {
    int cnt[KNN_TEST_BLOCK] = {0};
    for (int c0 = 0; c0 < ntr; c0 += KNN_TRAIN_BLOCK) {
        int nb = ntr - c0 < KNN_TRAIN_BLOCK ? ntr - c0 : KNN_TRAIN_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nb, dim, 1.0f, q, dim,
                    trn + (size_t)c0 * dim, dim, 0.0f, S, nb);
        for (int i = 0; i < m; i++) {
            const float *row = S + (size_t)i * nb;
            float *tsi = ts + (size_t)i * k;
            int32_t *tii = ti + (size_t)i * k;
            float thr = cnt[i] < k ? -INFINITY : tsi[k - 1];
            for (int j = 0; j < nb; j++) {
                if (!(row[j] > thr)) continue; /* the common case: not among the top k */
                knn_push(tsi, tii, &cnt[i], k, row[j], c0 + j);
                thr = cnt[i] < k ? -INFINITY : tsi[k - 1];
            }
        }
    }
    for (int i = 0; i < m; i++)
        pred[i] = knn_vote(ts + (size_t)i * k, ti + (size_t)i * k, k, ytr, nclass, temp, votes);
}

int knn_predict(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, int nte,
                int dim, int nclass, int k, double temp, uint8_t *pred, char *err,
                size_t errlen) {
    if (knn_check(ftr, ytr, ntr, fte, nte, dim, nclass, k, temp, pred, err, errlen)) return -1;
    float *trn = JEPA_MALLOC((size_t)ntr * dim * sizeof *trn); /* (ntr, dim) unit rows */
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < ntr; i++)
        knn_normalize_row(trn + (size_t)i * dim, ftr + (size_t)i * dim, dim);
    const int nblocks = (nte + KNN_TEST_BLOCK - 1) / KNN_TEST_BLOCK;
    #pragma omp parallel
    {
        /* per-thread scratch, sized once; the blocks a thread takes vary
         * with scheduling, their results do not */
        float *q = JEPA_MALLOC((size_t)KNN_TEST_BLOCK * dim * sizeof *q);
        float *S = JEPA_MALLOC((size_t)KNN_TEST_BLOCK * KNN_TRAIN_BLOCK * sizeof *S);
        float *ts = JEPA_MALLOC((size_t)KNN_TEST_BLOCK * k * sizeof *ts);
        int32_t *ti = JEPA_MALLOC((size_t)KNN_TEST_BLOCK * k * sizeof *ti);
        double *votes = JEPA_MALLOC((size_t)nclass * sizeof *votes);
        #pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nblocks; b++) {
            int r0 = b * KNN_TEST_BLOCK, m = nte - r0 < KNN_TEST_BLOCK ? nte - r0 : KNN_TEST_BLOCK;
            for (int i = 0; i < m; i++)
                knn_normalize_row(q + (size_t)i * dim, fte + (size_t)(r0 + i) * dim, dim);
            knn_block(q, m, trn, ytr, ntr, dim, nclass, k, temp, S, ts, ti, votes, pred + r0);
        }
        jepa_free(q);
        jepa_free(S);
        jepa_free(ts);
        jepa_free(ti);
        jepa_free(votes);
    }
    jepa_free(trn);
    return 0;
}

int knn_run(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, const uint8_t *yte,
            int nte, int dim, int nclass, int k, double temp, double *acc, char *err,
            size_t errlen) {
    JEPA_ASSERT(acc);
    if (!yte) {
        eval_err(err, errlen, "knn: NULL test labels");
        return -1;
    }
    if (nte > 0 && nclass >= 2 && nclass <= 256 &&
        eval_check_set("knn", "test", NULL, yte, nte, dim, nclass, err, errlen))
        return -1;
    uint8_t *pred = JEPA_MALLOC(nte > 0 ? (size_t)nte : 1);
    int rc = knn_predict(ftr, ytr, ntr, fte, nte, dim, nclass, k, temp, pred, err, errlen);
    if (rc == 0) {
        int correct = 0;
        for (int i = 0; i < nte; i++) correct += pred[i] == yte[i];
        *acc = (double)correct / nte;
    }
    jepa_free(pred);
    return rc;
}

/* ------------------------------------------------------ few-label probe */

int probe_fewlabel_subset(const uint8_t *ytr, int ntr, int nclass, double frac, uint64_t seed,
                          uint32_t *idx, int *nsub, char *err, size_t errlen) {
    if (!ytr || !nsub || ntr <= 0) {
        eval_err(err, errlen, "fewlabel: need labels, an output and ntr > 0 (got ntr=%d)", ntr);
        return -1;
    }
    if (nclass < 2 || nclass > 256) {
        eval_err(err, errlen, "fewlabel: nclass=%d out of range [2, 256]", nclass);
        return -1;
    }
    if (!(frac > 0 && frac <= 1)) { /* also refuses NaN */
        eval_err(err, errlen, "fewlabel: frac=%g must be in (0, 1]", frac);
        return -1;
    }
    if (eval_check_set("fewlabel", "train", NULL, ytr, ntr, 0, nclass, err, errlen)) return -1;
    /* rows grouped by class (counting sort: ascending index within a class),
     * each class shuffled by its own stream, the first m_c of it taken */
    int start[257] = {0};
    for (int i = 0; i < ntr; i++) start[ytr[i] + 1]++;
    for (int c = 0; c < nclass; c++) start[c + 1] += start[c];
    uint32_t *byc = JEPA_MALLOC((size_t)ntr * sizeof *byc); /* (ntr) rows, class-major */
    uint8_t *take = JEPA_MALLOC((size_t)ntr);               /* (ntr) 1 = chosen */
    int fill[256];
    memcpy(fill, start, sizeof fill);
    for (int i = 0; i < ntr; i++) byc[fill[ytr[i]]++] = (uint32_t)i;
    for (int c = 0; c < nclass; c++) {
        int nc = start[c + 1] - start[c];
        if (nc == 0) continue;
        long long mc = llround(frac * nc);
        mc = mc < 1 ? 1 : mc > nc ? nc : mc;
        jepa_rng r;
        rng_init(&r, rng_key(seed, FEWLABEL_RNG_TAG, (uint64_t)c));
        rng_shuffle_u32(&r, byc + start[c], (size_t)nc);
        for (long long t = 0; t < mc; t++) take[byc[start[c] + t]] = 1;
    }
    int n = 0;
    for (int i = 0; i < ntr; i++)
        if (take[i]) {
            if (idx) idx[n] = (uint32_t)i;
            n++;
        }
    *nsub = n;
    jepa_free(byc);
    jepa_free(take);
    return 0;
}

int probe_fewlabel(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
                   const uint8_t *yte, int nte, int dim, int nclass, double frac,
                   double val_frac, int max_iters, const probe_grid *grid, uint64_t seed,
                   probe_result *out, int *nlabels, char *err, size_t errlen) {
    JEPA_ASSERT(out);
    if (!ftr || dim <= 0) {
        eval_err(err, errlen, "fewlabel: NULL training features or dim=%d < 1", dim);
        return -1;
    }
    uint32_t *idx = JEPA_MALLOC((ntr > 0 ? (size_t)ntr : 1) * sizeof *idx);
    int n = 0, rc = probe_fewlabel_subset(ytr, ntr, nclass, frac, seed, idx, &n, err, errlen);
    if (rc == 0) {
        float *fs = JEPA_MALLOC((size_t)n * dim * sizeof *fs); /* (n, dim) the subset's rows */
        uint8_t *ys = JEPA_MALLOC((size_t)n);                  /* (n) */
        for (int i = 0; i < n; i++) {
            memcpy(fs + (size_t)i * dim, ftr + (size_t)idx[i] * dim, (size_t)dim * sizeof *fs);
            ys[i] = ytr[idx[i]];
        }
        char perr[256];
        rc = probe_run_grid(fs, ys, n, fte, yte, nte, dim, nclass, val_frac, max_iters, grid,
                            seed, out, perr, sizeof perr);
        if (rc) eval_err(err, errlen, "fewlabel %g (%d labels): %s", frac, n, perr);
        if (rc == 0 && nlabels) *nlabels = n;
        jepa_free(fs);
        jepa_free(ys);
    }
    jepa_free(idx);
    return rc;
}

/* ------------------------------------------------------------ the report */

void eval_opts_default(eval_opts *o) {
    o->metrics = EVAL_ALL;
    o->knn_k = KNN_DEFAULT_K;
    o->knn_temp = KNN_DEFAULT_TEMP;
    o->val_frac = 0.1;
    o->max_iters = 200;
    o->grid = PROBE_GRID_DEFAULT;
    o->seed = 0;
}

int eval_features(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
                  const uint8_t *yte, int nte, int dim, int nclass, const eval_opts *o,
                  eval_report *out, char *err, size_t errlen) {
    JEPA_ASSERT(out);
    eval_opts def;
    if (!o) {
        eval_opts_default(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out); /* helper_rank 0: every figure scored here */
    out->probe_acc = out->knn_acc = out->probe1pct_acc = out->probe10pct_acc = NAN;
    out->knn_k = o->knn_k;
    out->knn_temp = o->knn_temp;
    if (o->metrics & ~(unsigned)EVAL_ALL) {
        eval_err(err, errlen, "eval: unknown metric bits 0x%x", o->metrics & ~(unsigned)EVAL_ALL);
        return -1;
    }
    double t0 = eval_now();
    if (o->metrics & EVAL_KNN) {
        if (knn_run(ftr, ytr, ntr, fte, yte, nte, dim, nclass, o->knn_k, o->knn_temp,
                    &out->knn_acc, err, errlen))
            return -1;
        out->knn_s = eval_now() - t0;
        out->metrics |= EVAL_KNN;
    }
    static const struct {
        unsigned bit;
        double frac;
    } few[] = {{EVAL_PROBE_1PCT, 0.01}, {EVAL_PROBE_10PCT, 0.10}};
    for (int i = 0; i < 2; i++) {
        if (!(o->metrics & few[i].bit)) continue;
        probe_result *pr = i ? &out->probe10pct : &out->probe1pct;
        int *n = i ? &out->n10pct : &out->n1pct, nsub = 0;
        if (probe_fewlabel_subset(ytr, ntr, nclass, few[i].frac, o->seed, NULL, &nsub, err, errlen))
            return -1;
        long long nval = llround(o->val_frac * nsub);
        if (nval < 1 || nval > nsub - 1) { /* a small set: this figure cannot be had, the others can */
            fprintf(stderr, "eval: %s skipped: its %d labels leave %lld validation rows at val_frac "
                    "%g\n", i ? "probe10pct" : "probe1pct", nsub, nval, o->val_frac);
            continue;
        }
        t0 = eval_now();
        if (probe_fewlabel(ftr, ytr, ntr, fte, yte, nte, dim, nclass, few[i].frac, o->val_frac,
                           o->max_iters, &o->grid, o->seed, pr, n, err, errlen))
            return -1;
        *(i ? &out->probe10pct_s : &out->probe1pct_s) = eval_now() - t0;
        *(i ? &out->probe10pct_acc : &out->probe1pct_acc) = pr->test_acc;
        out->metrics |= few[i].bit;
    }
    if (o->metrics & EVAL_PROBE) {
        t0 = eval_now();
        if (probe_run_grid(ftr, ytr, ntr, fte, yte, nte, dim, nclass, o->val_frac, o->max_iters,
                           &o->grid, o->seed, &out->probe, err, errlen))
            return -1;
        out->probe_s = eval_now() - t0;
        out->probe_acc = out->probe.test_acc;
        out->metrics |= EVAL_PROBE;
    }
    return 0;
}

/* ------------------------------------------------- scoring over the ranks */

/* Rank 1's part, sent to rank 0 as bytes: plain data, no pointers. */
typedef struct {
    int rc;
    char err[512];
    eval_report r;
} eval_part;

/* Rank 1: receive rank 0's features and labels, score its metrics, send
 * the report back (also when scoring failed: rank 0 then reports why). */
static void eval_helper(int ntr, int nte, int dim, int nclass, const eval_opts *o, unsigned bits) {
    float *ftr = JEPA_MALLOC(sizeof(float) * (size_t)ntr * dim);
    float *fte = JEPA_MALLOC(sizeof(float) * (size_t)nte * dim);
    uint8_t *ytr = JEPA_MALLOC((size_t)ntr), *yte = JEPA_MALLOC((size_t)nte);
    comm_recv_bytes(ytr, (size_t)ntr, 0);
    comm_recv_bytes(yte, (size_t)nte, 0);
    comm_recv_bytes(ftr, sizeof(float) * (size_t)ntr * dim, 0);
    comm_recv_bytes(fte, sizeof(float) * (size_t)nte * dim, 0);
    eval_part part;
    memset(&part, 0, sizeof part);
    eval_opts mine = *o;
    mine.metrics = bits;
    part.rc = eval_features(ftr, ytr, ntr, fte, yte, nte, dim, nclass, &mine, &part.r, part.err,
                            sizeof part.err);
    jepa_free(ftr);
    jepa_free(fte);
    jepa_free(ytr);
    jepa_free(yte);
    comm_send_bytes(&part, sizeof part, 0);
}

int eval_features_ranks(int failed, const float *ftr, const uint8_t *ytr, int ntr,
                        const float *fte, const uint8_t *yte, int nte, int dim, int nclass,
                        const eval_opts *o, eval_report *out, char *err, size_t errlen) {
    JEPA_ASSERT(o && out);
    const int rank = comm_rank();
    const unsigned bits = o->metrics & (EVAL_KNN | EVAL_PROBE_1PCT | EVAL_PROBE_10PCT);
    memset(out, 0, sizeof *out);
    if (comm_world() == 1 || !bits || !(o->metrics & EVAL_PROBE) || (o->metrics & ~(unsigned)EVAL_ALL)) {
        /* nothing to split (or bits eval_features refuses) */
        if (rank != 0) return 0;
        if (failed) return -1;
        return eval_features(ftr, ytr, ntr, fte, yte, nte, dim, nclass, o, out, err, errlen);
    }
    /* rank 0's sizes (the others' arguments are not read), and whether it can score */
    int hdr[4] = {failed != 0, ntr, nte, dim};
    comm_bcast_bytes(hdr, sizeof hdr, 0);
    if (hdr[0] || hdr[1] < 1 || hdr[2] < 1 || hdr[3] < 1) { /* rank 0 says why, or eval_features does */
        if (rank != 0) return 0;
        return failed ? -1 : eval_features(ftr, ytr, ntr, fte, yte, nte, dim, nclass, o, out, err, errlen);
    }
    if (rank == 1) eval_helper(hdr[1], hdr[2], hdr[3], nclass, o, bits);
    if (rank != 0) return 0;
    comm_send_bytes(ytr, (size_t)ntr, 1);
    comm_send_bytes(yte, (size_t)nte, 1);
    comm_send_bytes(ftr, sizeof(float) * (size_t)ntr * dim, 1);
    comm_send_bytes(fte, sizeof(float) * (size_t)nte * dim, 1);
    eval_opts mine = *o;
    mine.metrics = EVAL_PROBE;
    int rc = eval_features(ftr, ytr, ntr, fte, yte, nte, dim, nclass, &mine, out, err, errlen);
    eval_part part;
    comm_recv_bytes(&part, sizeof part, 1);
    if (part.rc) { /* its metrics come first in eval_features' order: its error, as there */
        eval_err(err, errlen, "%s", part.err);
        return -1;
    }
    if (rc) return -1;
    const eval_report *h = &part.r; /* rank 1's figures into rank 0's report */
    out->metrics |= h->metrics;
    out->knn_acc = h->knn_acc;
    out->probe1pct_acc = h->probe1pct_acc;
    out->probe10pct_acc = h->probe10pct_acc;
    out->probe1pct = h->probe1pct;
    out->probe10pct = h->probe10pct;
    out->n1pct = h->n1pct;
    out->n10pct = h->n10pct;
    out->knn_s = h->knn_s;
    out->probe1pct_s = h->probe1pct_s;
    out->probe10pct_s = h->probe10pct_s;
    out->helper_rank = 1;
    return 0;
}

void eval_report_print(FILE *f, const eval_report *r, const char *prefix) {
    const char *p = prefix ? prefix : "";
    if (r->metrics & EVAL_KNN) fprintf(f, "%sknn_acc %.4f\n", p, r->knn_acc);
    if (r->metrics & EVAL_PROBE_1PCT) fprintf(f, "%sprobe1pct_acc %.4f\n", p, r->probe1pct_acc);
    if (r->metrics & EVAL_PROBE_10PCT) fprintf(f, "%sprobe10pct_acc %.4f\n", p, r->probe10pct_acc);
    if (r->metrics & EVAL_PROBE) fprintf(f, "%sprobe_acc %.4f\n", p, r->probe_acc);
}

void eval_report_log(FILE *f, const eval_report *r) {
    char on[24] = ""; /* where kNN and the few-label probes ran, when not here */
    if (r->helper_rank > 0) snprintf(on, sizeof on, " on rank %d", r->helper_rank);
    if (r->metrics & EVAL_KNN)
        fprintf(f, "eval: knn k=%d T=%g: test acc %.4f (%.1f s%s)\n", r->knn_k, r->knn_temp,
                r->knn_acc, r->knn_s, on);
    if (r->metrics & EVAL_PROBE_1PCT)
        fprintf(f, "eval: probe 1%% (%d labels): wd %g, val acc %.4f, test acc %.4f (%.1f s%s)\n",
                r->n1pct, r->probe1pct.best_wd, r->probe1pct.val_acc, r->probe1pct_acc,
                r->probe1pct_s, on);
    if (r->metrics & EVAL_PROBE_10PCT)
        fprintf(f, "eval: probe 10%% (%d labels): wd %g, val acc %.4f, test acc %.4f (%.1f s%s)\n",
                r->n10pct, r->probe10pct.best_wd, r->probe10pct.val_acc, r->probe10pct_acc,
                r->probe10pct_s, on);
    if (r->metrics & EVAL_PROBE)
        fprintf(f, "eval: probe (all labels): wd %g, val acc %.4f, test acc %.4f (%.1f s, "
                "refit %d iterations%s)\n", r->probe.best_wd, r->probe.val_acc, r->probe_acc,
                r->probe_s, r->probe.iters,
                r->probe.capped ? ", chosen fit or refit not converged" : "");
    /* a capped fit's accuracy is the cap's: for the same features more
     * iterations can move it by points (docs/trainer.md, "Linear probe") */
    const probe_result *pr[3] = {&r->probe, &r->probe1pct, &r->probe10pct};
    const unsigned bit[3] = {EVAL_PROBE, EVAL_PROBE_1PCT, EVAL_PROBE_10PCT};
    const char *name[3] = {"probe", "probe 1%", "probe 10%"};
    for (int i = 0; i < 3; i++)
        if ((r->metrics & bit[i]) && pr[i]->capped)
            fprintf(stderr, "jepa: warning: eval: the %s's fit (wd %g) stopped at eval.max_iters "
                    "before converging: its accuracy depends on that cap\n", name[i],
                    pr[i]->best_wd);
}

/* Appends to buf like snprintf at offset *len (which counts what would have
 * been written, so the total comes out even when buf is too small). */
static void eval_json_add(char *buf, size_t cap, int *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void eval_json_add(char *buf, size_t cap, int *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t at = (size_t)*len < cap ? (size_t)*len : cap;
    int n = vsnprintf(buf ? buf + at : NULL, buf ? cap - at : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *len += n;
}

int eval_report_json(char *buf, size_t cap, const eval_report *r, const char *prefix) {
    const char *p = prefix ? prefix : "";
    int len = 0;
    if (buf && cap) buf[0] = '\0';
    if (cap == 0) buf = NULL;
    const char *sep = "";
    if (r->metrics & EVAL_KNN) {
        eval_json_add(buf, cap, &len, "  \"%sknn_acc\": %.4f,\n  \"%sknn_k\": %d,\n"
                      "  \"%sknn_temp\": %g", p, r->knn_acc, p, r->knn_k, p, r->knn_temp);
        sep = ",\n";
    }
    for (int i = 0; i < 2; i++) {
        unsigned bit = i ? EVAL_PROBE_10PCT : EVAL_PROBE_1PCT;
        if (!(r->metrics & bit)) continue;
        const char *name = i ? "probe10pct" : "probe1pct";
        const probe_result *pr = i ? &r->probe10pct : &r->probe1pct;
        eval_json_add(buf, cap, &len, "%s  \"%s%s_acc\": %.4f,\n  \"%s%s_labels\": %d,\n"
                      "  \"%s%s_wd\": %g", sep, p, name, pr->test_acc, p, name,
                      i ? r->n10pct : r->n1pct, p, name, pr->best_wd);
        sep = ",\n";
    }
    if (r->metrics & EVAL_PROBE)
        eval_json_add(buf, cap, &len, "%s  \"%sprobe_acc\": %.4f,\n  \"%sprobe_wd\": %g,\n"
                      "  \"%sprobe_converged\": %d", sep, p, r->probe_acc, p, r->probe.best_wd,
                      p, !r->probe.capped); /* 0 / 1, as summary.json's figure */
    return len;
}

/* ------------------------------------------------- distributed extraction */

/* First row of rank r's slice of [0, n) over w ranks. */
static int eval_slice_lo(int n, int r, int w) { return (int)((int64_t)n * r / w); }

int eval_extract(int n, int dim, int chunk, eval_feature_fn fn, void *ctx, float *all_out,
                 char *err, size_t errlen) {
    const int rank = comm_rank(), world = comm_world();
    char mine_err[256] = "";
    if (n < 0 || dim < 1 || chunk < 1 || !fn)
        snprintf(mine_err, sizeof mine_err,
                 "extract: need n >= 0, dim >= 1, chunk >= 1 and a callback (got %d, %d, %d%s)",
                 n, dim, chunk, fn ? "" : ", NULL");
    else if (rank == 0 && n > 0 && !all_out)
        snprintf(mine_err, sizeof mine_err, "extract: rank 0 needs an output for %d x %d", n,
                 dim);
    int bad = comm_any_error(mine_err[0] != '\0'); /* every rank fails together */
    if (bad >= 0) {
        if (mine_err[0]) eval_err(err, errlen, "%s", mine_err);
        else eval_err(err, errlen, "extract: rank %d refused its arguments", bad);
        return -1;
    }
    const int lo = eval_slice_lo(n, rank, world), hi = eval_slice_lo(n, rank + 1, world);
    const size_t nmine = (size_t)(hi - lo) * dim;
    /* rank 0's slice starts at row 0: it writes in place, the gather then
     * moves nothing of its own (comm_gather_floats' in-place path) */
    float *mine = rank == 0 ? all_out : JEPA_MALLOC((nmine ? nmine : 1) * sizeof *mine);
    for (int i0 = lo; i0 < hi; i0 += chunk) {
        int cnt = hi - i0 < chunk ? hi - i0 : chunk;
        fn(ctx, i0, cnt, mine + (size_t)(i0 - lo) * dim);
    }
    size_t *counts = JEPA_MALLOC((size_t)world * sizeof *counts); /* (world) floats per rank */
    for (int r = 0; r < world; r++)
        counts[r] = (size_t)(eval_slice_lo(n, r + 1, world) - eval_slice_lo(n, r, world)) * dim;
    comm_gather_floats(mine, nmine, all_out, counts, 0);
    jepa_free(counts);
    if (rank != 0) jepa_free(mine);
    return 0;
}
