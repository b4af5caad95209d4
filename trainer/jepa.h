/* jepa.h - the I-JEPA trainer: ViT encoder, EMA target encoder, narrow ViT
 * predictor, multi-block masking, smooth-L1 loss in embedding space, AdamW,
 * schedules, linear probe and checkpoints, all on OpenBLAS sgemm.
 *
 * Layout habits (see STYLE.md): every learnable float lives in ONE buffer,
 * described by a table of named tensors; gradients, Adam m/v and the EMA
 * target share that layout, so optimizer, EMA, hashing and checkpoints are
 * single loops. Activations are sized once at init; the step never mallocs.
 * Shapes are written beside pointers: (B, T, C) = batch, tokens, channels. */
#ifndef JEPA_TRAINER_H
#define JEPA_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shard.h"
#include "spec.h"

/* ---------------------------------------------------------------- assert */
/* Stays on under NDEBUG: invariants, not user errors. */
#define JEPA_ASSERT(x)                                                          \
    do {                                                                        \
        if (!(x)) jepa_fatal(__FILE__, __LINE__, "assertion failed: %s", #x);   \
    } while (0)
void jepa_fatal(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* like jepa_fatal, exit status TRAIN_EXIT_NOMEM: out of memory */
void jepa_fatal_nomem(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void *jepa_malloc(size_t n, const char *file, int line); /* zeroed, 64-aligned */
#define JEPA_MALLOC(n) jepa_malloc((n), __FILE__, __LINE__)
void jepa_free(void *p);

/* ------------------------------------------------------------------- rng */
/* Counter-based: a stream is a pure function of (seed, a, b, ...) so masks,
 * init and shuffles are reproducible from (seed, step, rank) and resumable
 * from a 16-byte state. splitmix64 over a Weyl sequence. */
typedef struct {
    uint64_t state; /* advanced by a fixed odd constant per draw */
} jepa_rng;

uint64_t rng_mix(uint64_t x);                                 /* splitmix64 finaliser */
uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b);      /* derive a stream key */
void rng_init(jepa_rng *r, uint64_t key);
uint64_t rng_u64(jepa_rng *r);
uint32_t rng_below(jepa_rng *r, uint32_t n);                  /* uniform in [0, n) */
double rng_uniform(jepa_rng *r);                              /* uniform in [0, 1) */
double rng_normal(jepa_rng *r);                               /* standard normal */
double rng_trunc_normal(jepa_rng *r, double std);             /* truncated at 2 std */
void rng_shuffle_u32(jepa_rng *r, uint32_t *a, size_t n);     /* Fisher-Yates */

/* ---------------------------------------------------------------- images */
/* An image set held in memory as uint8, (N, C, H, W) row-major. */
typedef struct {
    int n, c, h, w;
    uint8_t *pixels; /* (n, c, h, w) */
    uint8_t *labels; /* (n), or NULL: the set has no class labels */
} jepa_images;

/* Reads a whole shard dataset (a directory written by `jepa-shard pack`:
 * u8 images, with or without u8 class labels) into memory, checksums
 * verified. 0, or -1 with a one-line message naming the file in err. */
int images_load_shards(jepa_images *d, const char *dir, char *err, size_t errlen);
void images_free(jepa_images *d);
/* Mean and std of all pixels (scaled to [0,1]) of an image set. */
void images_stats(const jepa_images *d, float *mean, float *std);

/* ------------------------------------------------------------------- ops */
/* Forward/backward kernels. Backward functions ACCUMULATE into dinp/dw/db
 * (callers zero them first), except where noted. Rows = tokens. */

/* Row-major C (M, N) = alpha op(A) op(B) + beta C through cblas_sgemm (op:
 * transpose when ta/tb is 1), counting 2MNK FLOPs and the time (prof.h).
 * The linear layers' products use their own kernels where the build has
 * AVX-512 (packed weights, linear_dw) or AVX2 with FMA (packed weights)
 * and count the same way: every matrix
 * product of a training step is in the sgemm kernel's FLOPs and time. */
void ops_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* Call first in main: where OpenBLAS fell back to AVX2 kernels on a CPU with
 * AVX-512 (0.3.21 on Zen 5), runs the program again (same argv, exec of
 * /proc/self/exe) with OPENBLAS_CORETYPE=SkylakeX, its AVX-512 kernels.
 * An OPENBLAS_CORETYPE naming an AVX2 core counts as that fallback (this
 * workplace sets Haswell machine-wide). The same re-run sets
 * OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set
 * (spinning OpenMP workers starve each other on a shared machine; see
 * blas_core.c). JEPA_BLAS_KEEP=1 keeps the libraries' choices. */
void blas_core_select(char **argv);

/* Reserves the buffer the products against weights pack them into (floats
 * >= infer_pack_floats(K, N) of the largest weight, both orientations);
 * grows only; 0 releases it. Without it (or for a larger weight) they run
 * on cblas_sgemm. One buffer per process: the products that use it must not
 * run inside an OpenMP parallel region (asserted) or from two threads. The
 * path, so the bits, of a weight outside the ViT blocks can depend on the
 * largest reservation so far (vit_scratch_init reserves its blocks'). */
void ops_pack_reserve(size_t floats);

/* The ViT block stacks (vit.c) run their forward chunk by chunk of whole
 * sequences, every block on weights packed once per forward (where
 * ops_packed(); the same bits as one pass), so that a chunk's activations stay in
 * cache from one kernel to the next; a team of OpenMP threads takes whole
 * chunks, one thread each (one parallel region per forward). rows > 0: about
 * that many rows a chunk (the chunk count rounded up to a multiple of the
 * team's size; at least one sequence); 0: one pass over all rows, each
 * kernel threaded on its own and each product packing its weight per call
 * (ops_pack_reserve decides that path; the chunks always run packed);
 * VIT_CHUNK_AUTO (the default): VIT_CHUNK_ROWS. One pass also where a stack
 * has fewer sequences than threads, or nested regions are active
 * (omp_get_max_active_levels() > 1; libgomp's default is 1). Where
 * ops_packed(), the backward (but for a listed-rows last block) runs block
 * by block in chunks of rows / T sequences (at least one; 0: one pass),
 * each kernel threaded on its own: d(input) is the one pass's bit for bit,
 * the weight gradients sum chunk after chunk (their rounding follows the
 * partition, which never depends on the thread count). Returns the
 * previous value. Process-wide: set it before training. */
#define VIT_CHUNK_AUTO (-1)
#define VIT_CHUNK_ROWS 768
int vit_set_chunk_rows(int rows);

/* 1 where linear_forward_packed runs (AVX-512 builds, and AVX2 builds with
 * FMA: INFER_PACKED, infer.h): the products against weights use
 * ops_infer.c's register tiles. */
int ops_packed(void);
/* out (M, N) = inp (M, K) @ W^T + b (+ res), then GELU when gelu is 1, on
 * weights W (N, K) packed beforehand by infer_pack (wp); pre (M, N), unless
 * NULL, keeps the values before the GELU. The packed_product of
 * linear_forward, linear_residual_forward and linear_gelu_forward without its
 * per-call packing (the same bits): a forward-only stack packs each weight
 * once and runs it over several row chunks. Aborts unless ops_packed(). */
void linear_forward_packed(float *out, float *pre, const float *inp, const float *wp,
                           const float *b, const float *res, int M, int K, int N, int gelu);

/* out (M, N) = inp (M, K) @ w^T (K, N) + b; w is (N, K) as in PyTorch. b may be NULL. */
void linear_forward(float *out, const float *inp, const float *w, const float *b,
                    int M, int K, int N);
/* dw (N, K) += dy (M, N)^T @ x (M, K) and, unless NULL, db (N) += dy's
 * column sums: a linear layer's parameter gradients (ops_dw.c: register
 * tiles over both operands in place, AVX-512 builds; cblas_sgemm otherwise). */
void linear_dw(float *dw, float *db, const float *dy, const float *x, int M, int N, int K);
/* out = res + inp @ w^T + b (a block's residual add; out may equal res). */
void linear_residual_forward(float *out, const float *res, const float *inp, const float *w,
                             const float *b, int M, int K, int N);
/* dinp (M, K) += dout (M, N) @ w (N, K); dw, db accumulate as linear_dw's.
 * dinp NULL: no input gradient; dw NULL: none for the layer (db must then
 * be NULL too). */
void linear_backward(float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int M, int K, int N);
/* The same, but dinp is written (its old contents are never read: no zero
 * pass needed); dw and db still accumulate. */
void linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int M, int K, int N);

/* linear_backward_set on W (N, K) packed beforehand by infer_pack_rows(wp,
 * w, N, K) (the same bits for dinp): a block's backward packs each weight
 * once and runs it over several row chunks. Aborts unless ops_packed(). */
void linear_backward_packed(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *wp, int M, int K, int N);

/* Per-row LayerNorm over C; w, b may be NULL (no affine). mean/rstd (M). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int M, int C);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int M, int C);

/* GELU, tanh form. */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* d = gelu'(inp) * d, in place (writes, no accumulation). */
/* The MLP's first half in one pass over its output: pre (M, N) = inp (M, K)
 * @ w^T + b, out = gelu(pre) (the bias added as the GELU reads the product,
 * not copied into every row first); backward: gelu_backward, linear_backward. */
void linear_gelu_forward(float *pre, float *out, const float *inp, const float *w,
                         const float *b, int M, int K, int N);
void gelu_backward_inplace(float *d, const float *inp, size_t n);

/* Multi-head self-attention core: qkv (B, T, 3C) -> out (B, T, C), caching
 * softmax probabilities att (B, H, T, T). Heads are interleaved as in
 * PyTorch's qkv.reshape(B, T, 3, H, C/H). Backward writes (not accumulates)
 * dqkv. att may be NULL where no backward follows (forward-only stacks).
 * scratch: attention_scratch_floats(T, C/H) floats per thread. */
size_t attention_scratch_floats(int T, int hd);
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                       int H, float *scratch);
/* The same with a causal mask: token i attends to tokens 0..i of its
 * sequence (frame-causal predictors); att holds exact zeros above the
 * diagonal, so attention_backward is its backward too. */
void attention_forward_causal(float *out, float *att, const float *qkv, int B, int T, int C,
                              int H, float *scratch);
void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int H, float *scratch);
/* The same for the listed query rows only (rows: nrows strictly ascending
 * indices b*T + t into the B*T rows; every row's keys and values): out
 * (nrows, C) compact in list order; att (may be NULL) holds, per image b
 * with n_b listed rows from list index lo_b, the probabilities of head h at
 * att + (lo_b*H + h*n_b)*T, (n_b, T). The backward takes d(out) compact and
 * writes all of dqkv (zero dQ for the other rows). Each listed row's output
 * and every d(qkv) equal attention_forward / attention_backward's with zero
 * d(out) on the other rows (the same sums, less the exact zeros). Non-causal. */
void attention_forward_rows(float *out, float *att, const float *qkv, int B, int T, int C, int H,
                            const int *rows, int nrows, float *scratch);
void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *att,
                             int B, int T, int C, int H, const int *rows, int nrows,
                             float *scratch);

/* Image (B, Ch, S, S) -> patches (B, G*G, Ch*p*p), G = S/p, each patch
 * flattened as (ch, py, px) to match a Conv2d weight (D, Ch, p, p). */
void patchify(float *patches, const float *img, int B, int Ch, int S, int p);

/* out[i] = inp[idx[i]] rows of width C; backward scatter-adds. */
void gather_rows(float *out, const float *inp, const int *idx, int n, int C);
void scatter_add_rows(float *dinp, const float *dout, const int *idx, int n, int C);

/* Regression losses, mean over n elements. Returns the loss (accumulated in
 * double); writes d loss / d pred into dpred if non-NULL. */
typedef enum { LOSS_SMOOTH_L1 = 0, LOSS_L2 = 1 } loss_kind;
double loss_forward_backward(float *dpred, const float *pred, const float *target,
                             size_t n, loss_kind kind, float beta);

/* Mean over the dim columns of x (n, dim) of each column's standard
 * deviation over the n rows (in double): the collapse watches (0 when every
 * row is equal). */
double col_std_mean(const float *x, int n, int dim);
/* Per-column sums of x (n, dim) into s[0, dim), sums of squares into
 * s[dim, 2 dim), the row count into s[2 dim]; sum (an all-reduce SUM, e.g.
 * comm_sum_doubles; NULL: this process's rows only) then adds the other
 * ranks': the moments of the global batch. */
void col_moments_sum(double *s, const float *x, int n, int dim, void (*sum)(double *p, size_t n));
/* col_std_mean over every rank's rows (col_moments_sum into the scratch s,
 * 2 dim + 1 doubles): each rank returns the global batch's figure. */
double col_std_mean_sum(const float *x, int n, int dim, void (*sum)(double *p, size_t n), double *s);

/* out (S, D) = the mean of each of S groups of T consecutive rows of x
 * (S*T, D): mean pooling over an image's tokens, summed in token order. */
void mean_rows(float *out, const float *x, int S, int T, int D);

/* 2-D sin-cos position embedding (G*G, C), as in MAE/I-JEPA. */
void pos_embed_sincos(float *out, int C, int G);

/* ------------------------------------------------------------------- model */
typedef struct {
    int img, ch, patch, grid, ntok, pdim;   /* image and patch geometry */
    int D, depth, heads, mlp;               /* encoder */
    int Dp, pdepth, pheads;                 /* predictor */
    int pjoint; /* mask.pred_pass joint: one predictor pass per image with every target
                 * block's mask tokens; 0: one pass per (block, image), I-JEPA's */
    float gw;   /* ijepa.global_weight: 0, none; > 0, the weight of the global term
                 * (model.c) and its head pred.global.{w,b} at the table's end */
    int gsig;   /* ijepa.global_loss sigreg: the global term is SIGReg of the head's
                 * output (sigreg.h) with these settings; 0: it regresses the
                 * whole-image target */
    int sg_dirs, sg_knots;
    double sg_tmax;
} jepa_dims;

typedef struct {
    char name[40];
    size_t offset, numel;
    int rows, cols;  /* a 1-D tensor has rows = 1 */
    int decay;       /* weight decay applies (weight matrices only) */
} jepa_tensor;

typedef struct {
    int B;         /* images */
    int npred;     /* target blocks */
    int nctx;      /* context tokens per image, same for the whole batch */
    int ntgt;      /* tokens per target block, same for every block and image */
    int *ctx;      /* (B, nctx) token indices, sorted */
    int *tgt;      /* (npred, B, ntgt) token indices, sorted */
    int *count;    /* (B) scratch: context tokens found per image before the cut */
    int *work;     /* (B + G G + npred max_ntgt) scratch of the resample cut */
} jepa_masks;

typedef struct jepa_acts jepa_acts; /* activations; private to model.c */

typedef struct {
    jepa_dims dims;
    jepa_tensor *tensors; int ntensors;
    size_t nparams;   /* encoder + predictor */
    size_t nenc;      /* encoder tensors come first: params[0, nenc) */
    float *params;    /* (nparams) */
    float *grads;     /* (nparams) */
    float *adam_m, *adam_v; /* (nparams) */
    float *target;    /* (nenc) EMA copy of the encoder */
    float *pos_enc;   /* (ntok, D) fixed */
    float *pos_pred;  /* (ntok, Dp) fixed */
    int maxB, max_nctx, max_ntgt, max_npred;
    jepa_acts *acts;
    int nthreads;
    /* Called during backward with lo: grads[lo, nparams) are final (lo only
     * decreases within a step), so a data-parallel caller can start reducing
     * them while the rest of backward runs. NULL: not called. */
    void (*grad_ready)(void *ctx, size_t lo);
    void *grad_ready_ctx;
    /* Adds the other ranks' values to p[0, n) (an all-reduce SUM): the
     * global term standardises its targets over the global batch. NULL:
     * one process. */
    void (*sum_doubles)(double *p, size_t n);
    /* The global batch is world x B images (the SIGReg global term's sample
     * count and gradient scale, sigreg.h); 1 unless a caller sets it with
     * sum_doubles. sg_key: the stream of this step's SIGReg directions, set by
     * the caller before each step from (seed, step) only, never the rank. */
    int world;
    uint64_t sg_key;
} jepa_model;

typedef struct {
    double loss;
    double target_std; /* mean over dims of the per-dim std of target embeddings */
} jepa_stats;

/* Builds the tensor table from the spec's model keys. 0 or -1 + err. */
int jepa_dims_from_spec(jepa_dims *d, const jepa_spec *s, char *err, size_t errlen);
/* Allocates params (initialised from seed), grads, Adam state, target (=copy)
 * and activations for up to maxB images, max_npred blocks of max_ntgt tokens. */
void jepa_model_init(jepa_model *m, const jepa_dims *d, uint64_t seed, int maxB,
                     int max_npred, int max_ntgt, int nthreads);
void jepa_model_free(jepa_model *m);
/* From now on each step's EMA target forward runs on infer.h's
 * enc_infer_tokens, every token through every block, then the final
 * LayerNorms of the target rows. bf16 1 (ijepa.target_precision: bf16):
 * bfloat16 products (inputs rounded, float sums; the bf16 softmax and
 * GELU), as I-JEPA's own code runs its target encoder under bfloat16
 * autocast (facebookresearch/ijepa, src/train.py, use_bfloat16); the
 * loss and every gradient stay fp32. Needs infer_bf16_supported
 * (asserted). bf16 0: fp32, the default path's bits where ops_packed()
 * (the tests' check of this path). Call once, after init. */
void jepa_model_target_infer(jepa_model *m, int bf16);
const jepa_tensor *jepa_tensor_find(const jepa_model *m, const char *name);

/* Forward + backward of the I-JEPA loss on a batch of normalised images
 * (B, ch, img, img). Zeroes and fills m->grads. */
void jepa_forward_backward(jepa_model *m, const float *images, const jepa_masks *mk,
                           loss_kind kind, float beta, jepa_stats *st);
/* Forward only: the loss, no gradients (used by the gradient check). */
double jepa_loss(jepa_model *m, const float *images, const jepa_masks *mk,
                 loss_kind kind, float beta);

/* Mean-pooled final-LayerNorm features (n, D) of uint8 images, normalised
 * with (mean, std). which: 0 = online (context) encoder, 1 = EMA target. */
void jepa_features(jepa_model *m, int which, const jepa_images *imgs, float mean,
                   float std, float *feats);

/* ------------------------------------------------------------------ masks */
typedef struct {
    int npred;
    double tscale_min, tscale_max, aspect_min, aspect_max;
    double cscale_min, cscale_max;
    int min_keep;
    int context_cut; /* MASK_CUT_*: how the batch's equal context count is reached */
    int block_round; /* MASK_ROUND_*: target block (h, w) from scale and aspect */
} mask_cfg;
enum { MASK_CUT_RESAMPLE = 0, MASK_CUT_BATCH_MIN = 1 };
enum { MASK_ROUND_AREA = 0, MASK_ROUND_NEAREST = 1 };

void mask_cfg_from_spec(mask_cfg *c, const jepa_spec *s);
/* Largest ntgt the config can produce on a GxG grid (for sizing). */
int mask_max_tokens(const mask_cfg *c, int G);
/* Samples I-JEPA multi-block masks for B images: block sizes drawn once per
 * batch, positions per image, context = context block minus all targets,
 * cut to one count for the batch by c->context_cut (random subset; mask.c). mk's arrays must hold
 * ctx: B*G*G, tgt: npred*B*max_ntgt, count: B ints. */
void mask_alloc(jepa_masks *mk, int B, int G, int npred, int max_ntgt);
/* dst (allocated for >= B images) = images [b0, b0 + B) of src: a rank's
 * share of masks sampled for the global batch, so every world size sees the
 * same masks for the same global batch. */
void mask_slice(jepa_masks *dst, const jepa_masks *src, int b0, int B);
void mask_free(jepa_masks *mk);
void mask_sample(jepa_masks *mk, const mask_cfg *c, int G, int B, jepa_rng *r);

/* --------------------------------------------------------------- optimizer */
typedef struct {
    double lr, wd, ema;
} sched_values;

typedef struct {
    double lr, min_lr, warmup_frac, wd_start, wd_end, ema_start, ema_end;
} sched_cfg;

/* Linear warm-up then cosine lr; cosine wd ramp; linear EMA ramp. */
void sched_at(const sched_cfg *c, int64_t step, int64_t total, sched_values *out);

/* One AdamW step over every tensor (decay only where tensor->decay). t is the
 * 1-based step count for bias correction. */
void adamw_update(jepa_model *m, double lr, double wd, double beta1, double beta2,
                  double eps, int64_t t);
/* Squared L2 norm of g[0, n) in double (the all-reduced gradient: the NaN/Inf
 * guard and grad_norm). Float squares cannot overflow a double sum, so it is
 * non-finite exactly when some value is; then *bad counts those values.
 * Summed over a fixed split of [0, n) (GRAD_NORM_PARTS parts, eight lanes
 * each) combined in order: threaded, yet independent of the thread count. */
double grads_sq_norm(const float *g, size_t n, size_t *bad);

/* target = ema * target + (1 - ema) * online encoder params. */
void ema_update(float *target, const float *online, size_t n, float ema);

/* ------------------------------------------------------------------- probe */
typedef struct {
    double test_acc;   /* accuracy on the test set with the chosen wd */
    double val_acc;    /* best validation accuracy */
    double best_wd;    /* weight decay chosen on the validation split */
    int iters;         /* L-BFGS iterations of the final refit */
    int capped;        /* 1: the chosen fit or the refit stopped at max_iters before
                        * converging, so the accuracy depends on that cap */
} probe_result;

/* The probe's weight-decay grid: the decades 1e-1, 1e-2, ... down to wd_min
 * (a power of ten in [1e-12, 0.1]), then 0 (no penalty) if wd_zero. A fit
 * with wd > 0 has a minimum; the wd-0 fit of features whose classes
 * separate has none and stops at max_iters, so with wd_zero the figure can
 * depend on that cap (docs/trainer.md, "Linear probe"). NULL where a grid
 * is taken: PROBE_GRID_DEFAULT. */
typedef struct {
    double wd_min;
    int wd_zero;
} probe_grid;
#define PROBE_GRID_DEFAULT ((probe_grid){1e-5, 1}) /* 1e-1 ... 1e-5, 0 */

/* The grid's values, largest first, into wd (at most 13); returns their
 * count, or -1 when wd_min is not a power of ten in [1e-12, 0.1]. */
int probe_grid_values(const probe_grid *g, double *wd);

/* Linear probe: standardise features with training statistics, fit a
 * multinomial logistic regression for each weight decay of PROBE_GRID_DEFAULT on
 * (1 - val_frac) of the training set, pick the wd with the best accuracy on
 * the held-out val_frac (split by a seeded permutation), refit on the whole
 * training set with it and report test accuracy. Deterministic. */
int probe_run(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
              const uint8_t *yte, int nte, int dim, int nclass, double val_frac,
              int max_iters, uint64_t seed, probe_result *out, char *err, size_t errlen);
/* The same over a given grid (NULL: PROBE_GRID_DEFAULT, what probe_run
 * uses); fails, naming wd_min, when probe_grid_values refuses it. */
int probe_run_grid(const float *ftr, const uint8_t *ytr, int ntr, const float *fte,
                   const uint8_t *yte, int nte, int dim, int nclass, double val_frac,
                   int max_iters, const probe_grid *grid, uint64_t seed, probe_result *out,
                   char *err, size_t errlen);

/* ------------------------------------------------------------- checkpoint */
/* A versioned, checksummed file of the whole training state (see
 * docs/checkpoint-format.md, version 2). Written atomically: temp file in the
 * same directory, fsync, rename, fsync the directory. Readers never trust it:
 * sizes are checked against the file's length before any read, the CRC over
 * every byte before any field is compared with the job's. */
#define CKPT_VERSION 4u /* reads 2 (I-JEPA only, always an EMA target), 3 (per-rank reader state: evaluation only) and 4 */
#define CKPT_OBJECTIVE_MAX 16
#define CKPT_HEADER_BYTES 256
#define CKPT_MODEL_KEYS 10 /* model.* values stored, in ckpt_model_keys order */
extern const char *const ckpt_model_keys[CKPT_MODEL_KEYS];

typedef struct {
    /* identity: a resume refuses a file whose values differ from the job's */
    uint64_t model_hash;               /* spec_model_hash */
    int32_t model[CKPT_MODEL_KEYS];    /* the model.* values behind the hash */
    uint64_t train_hash;               /* trajectory keys (seed, optim, ...): train.c */
    uint32_t world;                    /* ranks of the job that wrote it */
    uint64_t seed;
    char objective[CKPT_OBJECTIVE_MAX]; /* the objective's name, NUL-padded */
    /* shape: ckpt_save takes them from the model, ckpt_load checks them */
    uint64_t nparams, nenc; /* nenc: floats of the EMA target (0: none, version 3) */
    uint32_t ntensors;
    /* progress and schedules: the lr/wd/EMA schedules are pure functions of
     * (step, total_steps) and the spec; the masks of (seed, step) */
    int64_t step;        /* steps completed */
    int64_t total_steps; /* the schedules' length */
    /* a time budget's re-plan (train.c step_replan): the step of the last
     * one and the schedules' progress there; from it the progress runs
     * linearly to 1 at total_steps. 0, 0: none (progress step/total_steps).
     * Stored as u32 and f32 at header bytes 248 and 252 (zero in older files). */
    int64_t replan_step;
    float replan_progress;
    int64_t images_seen; /* over all ranks */
    float norm_mean, norm_std; /* pixel normalisation used in training */
    shard_reader_state reader; /* data position; equal on every rank */
    /* the open log interval, so a resumed run logs what a straight one would */
    double log_loss_sum;
    int64_t log_count;
    double last_loss;       /* the last logged mean loss (summary final_loss) */
    double last_target_std; /* of the last step */
    double train_s;         /* training seconds so far (budget and elapsed_s) */
} ckpt_meta;

/* Why a load failed: a damaged file (the caller may fall back to an older
 * one) or a sound file that belongs to another job (no fallback helps). */
typedef enum { CKPT_OK = 0, CKPT_ERR_CORRUPT = -1, CKPT_ERR_MISMATCH = -2 } ckpt_status;

/* meta's shape fields are ignored (taken from m). 0 or -1 + err naming the file;
 * on failure no file (not even the temp file) is left at path. */
int ckpt_save(const char *path, const jepa_model *m, const ckpt_meta *meta, char *err,
              size_t errlen);
/* Loads path into m (which must have the file's shape) and *got. want (may be
 * NULL) is the job: its non-zero model_hash (and then model[]) and train_hash
 * must match the file's; a non-zero world marks a resume, which needs a
 * version-4 reader state whose global batch that world divides. Returns a ckpt_status; err names the file and
 * what is wrong. m's buffers are written only once the whole file checks out. */
int ckpt_load(const char *path, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
              char *err, size_t errlen);
/* The same on an open stream (fmemopen in the fuzzer); name is for messages. */
int ckpt_load_stream(FILE *f, const char *name, jepa_model *m, const ckpt_meta *want,
                     ckpt_meta *got, char *err, size_t errlen);
/* Header only: structure, ranges and the file length it implies. */
int ckpt_read_meta(FILE *f, const char *name, ckpt_meta *got, char *err, size_t errlen);
/* FNV-1a 64 over the bytes of a float buffer: replicas and runs compare by it. */
uint64_t jepa_hash_floats(const float *p, size_t n);

/* A run directory's checkpoints (ckpt_dir.c): RUN/checkpoints/step-NNNNNNNN.ckpt,
 * RUN/latest naming the newest one completely written, the newest `keep`
 * kept. Rank 0 calls these; they print warnings to stderr. */
/* Path of step's checkpoint. */
void ckpt_dir_path(char *out, size_t n, const char *run_dir, int64_t step);
/* Saves, then points latest at it (after the file is durable), then deletes
 * all but the newest keep with step <= meta->step (checkpoints of a later
 * step belong to a discarded future: a resume from an older one). path_out
 * (may be NULL) gets the file written. 0 or -1 + err. */
int ckpt_dir_save(const char *run_dir, int keep, const jepa_model *m, const ckpt_meta *meta,
                  char *path_out, size_t path_len, char *err, size_t errlen);
/* 1 if run_dir holds checkpoints (or a version-1 checkpoint.bin), else 0. */
int ckpt_dir_any(const char *run_dir);
/* Loads the newest good checkpoint of run_dir: tries them newest first; a
 * damaged one is reported as a warning and the next older one is tried; once
 * a good one loads, nothing in run_dir is changed yet (ckpt_dir_tidy, once
 * the resume is accepted). Returns 1 when run_dir holds none, 0 when one
 * was loaded (path_out names it), or a ckpt_status < 0: a mismatch (no
 * fallback: every checkpoint of the run has the same config) or none good. */
int ckpt_dir_load(const char *run_dir, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                  char *path_out, size_t path_len, char *err, size_t errlen);
/* After an accepted resume=auto from step `loaded`: moves the newer,
 * damaged checkpoints aside (NAME.corrupt) and removes dead writers' temp
 * files. */
void ckpt_dir_tidy(const char *run_dir, int64_t loaded);
/* The checkpoint jepa-eval and jepa-plan read: RUN/checkpoint.bin, the
 * finished run's; when it is absent (a run stopped part-way), the newest one
 * RUN/latest names, and 1 is returned (the caller says which it took). 0 or
 * 1 with the path in ck (which may not exist: the load says so), or -1 + err
 * when RUN/latest is there but cannot be read (a FIFO, a device). */
int ckpt_dir_run_checkpoint(const char *run_dir, char *ck, size_t n, char *err, size_t errlen);
/* RUN/checkpoint.bin becomes (a hard link to, else a copy of) path: the
 * finished run's checkpoint, where jepa-eval looks. 0 or -1 + err. */
int ckpt_dir_publish(const char *run_dir, const char *path, const jepa_model *m,
                     const ckpt_meta *meta, char *err, size_t errlen);

/* ------------------------------------------------------------------ train */
/* Named evaluation figures (objective.h fills them), printed as `name value`
 * lines and written into summary.json in this order. */
#define OBJ_MAX_EVAL 32
typedef struct {
    int n;
    char name[OBJ_MAX_EVAL][32];
    double value[OBJ_MAX_EVAL];
} obj_eval;
/* A figure as printed and as summary.json holds it: "%.4f", or "%.4g"
 * below 1e-3 in magnitude, where "%.4f" would show at most one digit (a
 * weight decay of 1e-05 would read 0.0000). buf: at least 32 bytes;
 * returns buf. */
const char *obj_eval_fmt(char *buf, double v);

typedef struct {
    int64_t steps, images_seen; /* images over all ranks */
    int64_t planned_steps;      /* the schedules' length (steps < planned_steps: cut short) */
    int capped;                 /* train.minutes ended the run before planned_steps */
    double final_loss, target_std, probe_acc, wall_s; /* target_std: the objective's first metric */
    obj_eval eval;      /* the closing evaluation's figures (probe_acc is one of them, or -1) */
    int remote_failure; /* the error happened on another rank (err says which) */
    int refused;        /* setup refused the inputs: nothing trained (TRAIN_EXIT_REFUSED) */
    int fail_rank;      /* the lowest rank whose setup failed (it alone says why) */
    int nonfinite;      /* -1 because the loss or a gradient was NaN/Inf */
    int interrupted;    /* 0 returned after SIGTERM/SIGUSR1 (the signal): checkpoint
                           written, run not finished; probe and summary skipped */
    int64_t resumed_from; /* step of the checkpoint resumed from; -1: fresh start */
    char ckpt_path[SPEC_STR_MAX + 64]; /* the last checkpoint written or loaded */
} train_result;

/* Exit codes of jepa-train (docs/checkpoint-format.md): the launcher restarts
 * on TRAIN_EXIT_INTERRUPTED and never on TRAIN_EXIT_NONFINITE (it would
 * recur at the same step), TRAIN_EXIT_REFUSED or TRAIN_EXIT_NOMEM. 1 is any
 * other error, 2 a usage or spec error, 70 a broken invariant
 * (JEPA_ASSERT). */
#define TRAIN_EXIT_NONFINITE 3
/* setup refused the inputs (data, checkpoint, run directory) before any
 * step: a restart would repeat it, so the launcher does not restart */
#define TRAIN_EXIT_REFUSED 4
/* an allocation by jepa_malloc failed: the model, batch or evaluation asks
 * for more than this machine has; the large buffers are allocated at setup
 * and for evaluations, not per step, so a restart would fail the same way.
 * (Every program on jepa_malloc, or on the shard library after
 * cli_catch_oom, exits 5 there, and 70 on JEPA_ASSERT.) */
#define TRAIN_EXIT_NOMEM 5
#define TRAIN_EXIT_INTERRUPTED 75 /* EX_TEMPFAIL: stopped by a signal, resumable */

/* Test hooks, read from the environment by train_run (documented in
 * docs/checkpoint-format.md; not for production use):
 *   JEPA_DEBUG_STOP_STEP=k   the last rank acts as if SIGUSR1 arrived during step k
 *   JEPA_DEBUG_NAN_STEP=k    step k's gradient (or, with JEPA_DEBUG_NAN_KIND=loss,
 *                            the last rank's loss) becomes NaN
 *   JEPA_DEBUG_SLOW_START=S:MS  steps of the first S seconds sleep MS ms more
 *   JEPA_DEBUG_SLOW_EVAL=S   every evaluation sleeps S seconds first (a signal cuts it short; jepa-eval's too)
 *   JEPA_DEBUG_NO_REPLAN=1   a time budget is never re-planned
 *   JEPA_DEBUG_PLAN=T0:R:T   a time budget's plan: T0 steps, after step R T
 *   JEPA_DEBUG_KILL_STEP=k   the last rank sends itself SIGKILL before step k+1
 *   JEPA_DEBUG_EXIT_STEP=k   the last rank calls exit(7) before step k+1 (no RUN/error line) */

/* The job's identity as a checkpoint records it: model config and hash,
 * the hash of the trajectory keys (seed, batch, data.shuffle_buffer, optim,
 * ema, mask, loss), world size, seed. */
void train_meta_init(ckpt_meta *m, const jepa_spec *s, int world);

/* Trains the run the spec describes (run dir, metrics.jsonl, summary.json,
 * checkpoints, evaluation), resuming per the spec's `resume`. spec_text: the spec
 * file as given, kept verbatim in the run directory (may be NULL). 0 (see
 * res->interrupted) or -1 + err (see res->nonfinite). */
int train_run(const jepa_spec *s, const char *spec_text, train_result *res, char *err,
              size_t errlen);
#endif
