/* evaluate.h - evaluation that measures representations. Everything here
 * works on feature matrices (one row per image, row-major float32), so the
 * same code scores any encoder, raw pixels or a saved .npy:
 *   - a weighted k-nearest-neighbour classifier (DINO's),
 *   - the linear probe (probe_run, jepa.h) on all, 1% and 10% of the
 *     training labels,
 *   - one report holding them all, printed as `key value` lines and as a
 *     JSON fragment for summary.json,
 *   - feature extraction split over MPI ranks, gathered on rank 0,
 *   - .npy export (NumPy format 1.0) and a bounds-checked reader.
 * Model selection (probe weight decay) only ever looks at a validation split
 * of the TRAINING rows; the test rows are used once, to score.
 *
 * Errors: functions returning int give 0, or -1 with one line in err
 * (err may be NULL; errlen bytes including the NUL) naming the argument,
 * row or file and the value that is wrong. Allocation failure is fatal
 * (JEPA_MALLOC). Sources are cited beside each formula. */
#ifndef JEPA_EVALUATE_H
#define JEPA_EVALUATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "jepa.h"

/* ------------------------------------------------------------------- kNN */
/* Weighted kNN, as DINO evaluates (Caron et al. 2021, "Emerging Properties
 * in Self-Supervised Vision Transformers", Sec. 4.1 and eval_knn.py):
 *   x <- x / max(||x||_2, 1e-12)              (train and test rows)
 *   s_j = <x_test, x_train_j>                  (cosine similarity)
 *   N   = the k training rows of largest s_j
 *   score_c = sum_{j in N, y_j = c} exp(s_j / T),   prediction = argmax_c
 * DINO uses k = 20, T = 0.07. Exact (no approximate search) and
 * deterministic: equal similarities rank the lower training index first,
 * equal scores pick the lower class. Similarities are float32 (cblas_sgemm),
 * votes double.
 *
 * Cost: 2 * ntr * nte * dim flops plus a scan of every similarity; memory:
 * one normalised copy of the training set (ntr * dim floats) plus about
 * 1 MiB of scratch per thread. Test rows are processed in fixed blocks of
 * KNN_TEST_BLOCK against training blocks of KNN_TRAIN_BLOCK, threaded with
 * OpenMP over test blocks (omp_get_max_threads() threads; each block's sgemm
 * runs single-threaded inside its worker, as the OpenMP build of OpenBLAS
 * that CMake picks does inside a parallel region). The blocks do not depend
 * on the thread count, so neither do the predictions (tested bitwise).
 * Measured (bench-eval, 60k x 10k x 128, k 20): 1.78 s at 1 thread, 0.91 s
 * at 2 on an otherwise idle 2-core machine. */
#define KNN_DEFAULT_K 20
#define KNN_DEFAULT_TEMP 0.07
#define KNN_MAX_K 1024 /* per-row neighbour lists live in per-thread scratch */

/* Predictions pred (nte) for test rows fte (nte, dim) from training rows
 * ftr (ntr, dim) with labels ytr (ntr) in [0, nclass). Needs 2 <= nclass
 * <= 256, 1 <= k <= min(ntr, KNN_MAX_K), temp > 0 and finite, every
 * feature finite. 0, or -1 + err (nothing written to pred). */
int knn_predict(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, int nte,
                int dim, int nclass, int k, double temp, uint8_t *pred, char *err,
                size_t errlen);

/* knn_predict, then *acc = fraction of test rows whose prediction equals yte
 * (nte), labels checked like ytr. */
int knn_run(const float *ftr, const uint8_t *ytr, int ntr, const float *fte, const uint8_t *yte,
            int nte, int dim, int nclass, int k, double temp, double *acc, char *err,
            size_t errlen);

/* ----------------------------------------------------- few-label probe */
/* The labelled subset is class-balanced, as in the 1% / 10% ImageNet
 * subsets of the semi-supervised protocol SimCLR introduced (Chen et al.
 * 2020, "A Simple Framework for Contrastive Learning of Visual
 * Representations", Sec. 6; TFDS imagenet2012_subset: "subsampled in a label
 * balanced fashion"): from each class c with n_c rows, m_c =
 * max(1, round(frac * n_c)) rows, chosen by a seeded shuffle of that class.
 * Why not a plain random subset: at 1% of Fashion-MNIST (600 labels) a
 * random draw's per-class counts are binomial, 60 +- 7 (one std), which
 * moves the score for reasons unrelated to the representation. On a
 * balanced set m_c = frac * n / nclass exactly.
 *
 * The subset is a pure function of (ytr, frac, seed). Each class's shuffle
 * is keyed by (seed, class) only, so with one seed the 1% subset is
 * contained in the 10% one (a smaller frac takes a prefix of the same
 * order). */

/* Writes the chosen training row indices, ascending, into idx (capacity
 * ntr; NULL: only the count) and their count into *nsub. frac in (0, 1];
 * labels < nclass. 0, or -1 + err. */
int probe_fewlabel_subset(const uint8_t *ytr, int ntr, int nclass, double frac, uint64_t seed,
                          uint32_t *idx, int *nsub, char *err, size_t errlen);

/* probe_run_grid on the subset's rows only: its weight decay is chosen on a
 * val_frac split of the SUBSET (the labels a few-label user would have),
 * never on the test split, then it is refitted on the whole subset and
 * scored on all nte test rows. seed drives both the subset and the probe's
 * split. *nlabels (may be NULL) gets the subset size. Fails as probe_run
 * does, e.g. when val_frac of the subset rounds to no validation row. */
int probe_fewlabel(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
                   const uint8_t *yte, int nte, int dim, int nclass, double frac,
                   double val_frac, int max_iters, const probe_grid *grid, uint64_t seed,
                   probe_result *out, int *nlabels, char *err, size_t errlen);

/* ------------------------------------------------------------ the report */
/* Which metrics eval_features computes: a bit set. */
enum {
    EVAL_PROBE = 1u << 0,       /* linear probe on every training label */
    EVAL_KNN = 1u << 1,         /* weighted kNN */
    EVAL_PROBE_1PCT = 1u << 2,  /* linear probe on 1% of the labels */
    EVAL_PROBE_10PCT = 1u << 3, /* ... on 10% */
    EVAL_ALL = (1u << 4) - 1
};

typedef struct {
    unsigned metrics; /* EVAL_* bits */
    int knn_k;        /* neighbours (DINO: 20) */
    double knn_temp;  /* vote temperature T (DINO: 0.07) */
    double val_frac;  /* probe validation split of the (sub)set's training rows */
    int max_iters;    /* L-BFGS iterations per weight decay */
    probe_grid grid;  /* every probe's weight-decay grid */
    uint64_t seed;    /* probe splits and few-label subsets */
} eval_opts;

/* EVAL_ALL, k = 20, T = 0.07, val_frac = 0.1, max_iters = 200,
 * PROBE_GRID_DEFAULT, seed = 0 (the spec's eval defaults). */
void eval_opts_default(eval_opts *o);

typedef struct {
    unsigned metrics;          /* EVAL_* bits actually computed */
    double probe_acc;          /* test accuracy, all labels (NAN if not run) */
    double knn_acc;            /* test accuracy of kNN (NAN if not run) */
    double probe1pct_acc;      /* test accuracy, 1% of the labels (NAN if not run) */
    double probe10pct_acc;     /* test accuracy, 10% of the labels (NAN if not run) */
    probe_result probe, probe1pct, probe10pct; /* chosen wd and its val accuracy */
    int n1pct, n10pct;         /* labelled rows the few-label probes used */
    int knn_k;
    double knn_temp;
    double probe_s, knn_s, probe1pct_s, probe10pct_s; /* wall seconds of each */
    int helper_rank; /* the rank that scored kNN and the few-label probes: 0 unless
                      * eval_features_ranks split the work (then 1) */
} eval_report;

/* Computes the metrics o->metrics selects (o NULL: eval_opts_default) on
 * one feature set: ftr (ntr, dim) with labels ytr (ntr), fte (nte, dim) with
 * yte (nte), labels in [0, nclass). Each equals the standalone call
 * (knn_run, probe_run_grid, probe_fewlabel with frac 0.01 / 0.10) with the same
 * arguments, bitwise. Order: kNN, 1%, 10%, full probe. 0, or -1 + err from
 * the first metric that failed (*out then holds the ones before it). */
int eval_features(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
                  const uint8_t *yte, int nte, int dim, int nclass, const eval_opts *o,
                  eval_report *out, char *err, size_t errlen);

/* Collective: eval_features of rank 0's features over the ranks. With two
 * or more ranks and the full probe plus any other metric selected, rank 1
 * receives the features and labels (point to point; no other rank holds
 * them) and computes kNN and the few-label probes while rank 0 fits the
 * full probe, the longest of them (quickstart on a 2-core AVX2 machine:
 * 66 s against 42 s for the rest). Rank 1 then holds a copy of the
 * features, (ntr + nte) x dim floats, while it scores. Each figure comes from the same code on
 * the same inputs as on rank 0 alone, so with the same threads per rank
 * the report is bitwise eval_features' for any number of ranks
 * (test_extract). failed (rank 0): it has no features to score; every rank
 * then returns without scoring. ntr, nte, dim, features and labels are read
 * on rank 0 only; o must be the same on every rank. Rank 0's out gets the
 * report and rank 0 alone returns -1 + err (rank 1's failure is sent to it);
 * the other ranks return 0 with out zeroed. */
int eval_features_ranks(int failed, const float *ftr, const uint8_t *ytr, int ntr,
                        const float *fte, const uint8_t *yte, int nte, int dim, int nclass,
                        const eval_opts *o, eval_report *out, char *err, size_t errlen);

/* One `<prefix><key> <value>` line per computed metric, in the order
 * knn_acc, probe1pct_acc, probe10pct_acc, probe_acc (values %.4f), so
 * probe_acc stays the last line as jepa-eval has always printed it.
 * prefix may be NULL (""), e.g. "target_" to tell feature sets apart. */
void eval_report_print(FILE *f, const eval_report *r, const char *prefix);

/* One human-readable line per computed metric (k, T, labels used, chosen
 * weight decay, seconds), for stderr progress logs. */
void eval_report_log(FILE *f, const eval_report *r);

/* A JSON fragment for summary.json: `  "<prefix>key": value` members
 * joined by ",\n", no braces, no trailing comma or newline (empty when no
 * metric ran). Keys per computed metric: knn_acc, knn_k, knn_temp;
 * probe1pct_acc, probe1pct_labels, probe1pct_wd; the same for probe10pct;
 * probe_acc, probe_wd. Returns what snprintf would: the length it needed
 * (output truncated, NUL-terminated, when that is >= cap). */
int eval_report_json(char *buf, size_t cap, const eval_report *r, const char *prefix);

/* ------------------------------------------------- distributed extraction */
/* Fills out (cnt, dim) with the features of rows [i0, i0 + cnt). It cannot
 * fail: a callback that meets an error ends the job (comm_fatal), since the
 * other ranks are already on their way to the gather. */
typedef void (*eval_feature_fn)(void *ctx, int i0, int cnt, float *out);

/* Collective (every rank calls it with the same n, dim, chunk): rank r of W
 * computes the contiguous rows [floor(n r / W), floor(n (r+1) / W)),
 * calling fn on consecutive pieces of at most chunk rows in increasing
 * order (the last piece may be shorter; an encoder with a fixed batch pads
 * it), then every slice is gathered, in rank order, into all_out (n, dim)
 * on rank 0 (comm_gather_floats). Rank 0 computes straight into all_out;
 * the other ranks into a slice buffer of their own; all_out is ignored on
 * them (may be NULL). World 1 (or no comm_init): fn over [0, n), no MPI.
 * Bad arguments on any rank (n < 0, dim < 1, chunk < 1, fn NULL, all_out
 * NULL on rank 0 with n > 0) fail on EVERY rank, agreed with
 * comm_any_error, so no rank is left waiting in the gather. 0, or -1 + err. */
int eval_extract(int n, int dim, int chunk, eval_feature_fn fn, void *ctx, float *all_out,
                 char *err, size_t errlen);

/* -------------------------------------------------------------------- npy */
/* NumPy's .npy format, version 1.0 (numpy/lib/format.py, NEP 1): the magic
 * "\x93NUMPY", bytes 1 and 0 (version), a little-endian uint16 HEADER_LEN,
 * then HEADER_LEN bytes of a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), }
 * padded with spaces and ended by '\n' so that 10 + HEADER_LEN is a
 * multiple of 64, then the data, C order. We pad with the fewest spaces
 * (0..63); NumPy's own writer adds more (room for the shape to grow), and
 * the reader accepts any padding. Writes are atomic: a temp file beside
 * path, fsync, rename, fsync of the directory; on failure nothing is left
 * at path (an existing file there is untouched) and no temp file remains. */
typedef enum { NPY_DTYPE_F32, NPY_DTYPE_U8 } npy_dtype; /* '<f4', '|u1' */
#define NPY_MAX_DIMS 4

typedef struct {
    npy_dtype dtype;
    int ndim;                     /* 0..NPY_MAX_DIMS */
    int64_t shape[NPY_MAX_DIMS];
    size_t count;                 /* product of shape (1 when ndim = 0) */
    void *data;                   /* (count) elements, C order; owned */
} npy_array;

/* Writes data (product of shape elements) as an ndim-dimensional array.
 * 0, or -1 + err naming path and the reason. */
int npy_write(const char *path, npy_dtype t, const void *data, int ndim, const int64_t *shape,
              char *err, size_t errlen);
/* a (rows, cols) float32 matrix: features */
int npy_write_f32(const char *path, const float *a, int rows, int cols, char *err,
                  size_t errlen);
/* a (n,) uint8 vector: labels */
int npy_write_u8(const char *path, const uint8_t *a, int n, char *err, size_t errlen);
/* A write asks stop() before each 16 MiB of data and before its fsync;
 * nonzero ends it as a failed write (-1, "Interrupted system call", nothing
 * left at path). jepa-eval --export passes shard_interrupt_pending: a
 * feature matrix takes seconds to write, and under mpirun a rank has about
 * one second from SIGTERM to SIGKILL. Process-wide; NULL (the default):
 * never stopped. */
void npy_set_stop(int (*stop)(void));

/* The full 1.0 header (magic through '\n') the writer puts before the data,
 * into buf; returns its length (a multiple of 64), or -1 if it does not fit
 * cap or the arguments are invalid. Exposed so tests check the bytes. */
int npy_header(char *buf, size_t cap, npy_dtype t, int ndim, const int64_t *shape);

/* Parses a whole .npy image buf (len bytes): versions 1.0, 2.0 and 3.0,
 * descr '<f4' or '|u1', fortran_order False, ndim <= NPY_MAX_DIMS. Every
 * length is checked before use; the data must be exactly count * itemsize
 * bytes (a truncated file or trailing bytes are errors). On success *out
 * describes the array with data pointing INTO buf (not owned; do not
 * npy_free it; unaligned when the header length is not a multiple of 4, as
 * in hand-made files: memcpy from it); *data_off (may be NULL) gets the
 * data's offset. 0, or -1 + err. */
int npy_parse(const void *buf, size_t len, npy_array *out, size_t *data_off, char *err,
              size_t errlen);

/* Reads path into *out (data owned: npy_free). 0, or -1 + err naming path. */
int npy_read(const char *path, npy_array *out, char *err, size_t errlen);
void npy_free(npy_array *a);

#endif
