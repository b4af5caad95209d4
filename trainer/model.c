/* model.c - the I-JEPA model: parameter table, ViT block stacks, and the
 * forward/backward of one training step.
 *
 * Step: the EMA target encoder sees every patch; its layer-normed output at
 * the target positions is what the predictor must reproduce. The online
 * encoder sees only the context tokens. The predictor runs once per target
 * block (context tokens + mask tokens at that block's positions); the
 * npred passes are stacked along the batch axis so every matrix product
 * runs over all their tokens at once (the forward in chunks of sequences,
 * vit.c). Loss: smooth-L1 (or L2) averaged over all
 * target blocks (equal sizes, so the mean of per-block means).
 *
 * The global term (ijepa.global_weight w > 0): the context encoder's output
 * averaged over the context tokens, through a linear head pred.global,
 * regresses the EMA encoder's whole-image embedding: the mean over all N
 * tokens of its per-token targets, standardised per dimension over the
 * global batch (global_targets: a first run with a per-image LayerNorm
 * there instead drifted toward collapse, docs/trainer.md). The
 * step's loss is then L_tokens + w * L_global, the same elementwise loss on
 * (B, D). It is the image-level target of data2vec 2.0 (Baevski et al. 2023,
 * its CLS loss regressing the mean of the teacher's targets) and of C-JEPA
 * (Mo & Tong 2024, who name I-JEPA's "inadequacy ... in accurately learning
 * the mean of patch representations"); here the head reads the pooled
 * context, the quantity a linear probe reads, and no CLS token is added.
 * With ijepa.global_loss sigreg the term has no target: w * SIGReg (sigreg.h;
 * LeJEPA, Balestriero & LeCun 2025) of the head's outputs over the global
 * batch, which a constant or low-rank pooled context cannot satisfy. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "infer.h"
#include "prof.h"
#include "rank_threads.h"
#include "sigreg.h"
#include "vit.h"

struct jepa_acts {
    float *patches;    /* (B*N, pdim) */
    float *pctx;       /* (B*Nc, pdim) context patches */
    int *ctx_flat;     /* (B*Nc) b*N + token */
    int *tgt_flat;     /* (P*B*Nt) each target token's row in trows' list */
    int *prow;         /* (P*B*Nt) row of each target token in the predictor stack */
    int *trows, *tmap; /* (B*N) the target blocks' tokens b*N + t, ascending; and each
                          token's index in that list (-1: in no target block) */
    vit_acts enc, tgt, pred;
    float *z, *zm, *zr;       /* (B*Nc, D) online encoder output after final LN */
    float *tln, *tlm, *tlr;   /* (B*N, D) target encoder output after final LN (in a
                                 step: the trows rows only) */
    float *h, *hm, *hr;       /* (B*N, D) layer-normed again, no affine (trows rows) */
    float *y;                 /* (P*B*Nt, D) regression targets */
    float *zp;                /* (B*Nc, Dp) predictor input projection */
    float *xtn, *xtm, *xtr;   /* (P*B*Nt, Dp) predictor outputs at targets after its LN (the
                                 outputs themselves: vit_res(&pred, pdepth), compact) */
    float *pout, *dpout;      /* (P*B*Nt, D) predictions and their grads */
    float *u, *q, *dq, *du;   /* (B, D) the global term: pooled context, its prediction, and
                                 the grads of both */
    float *gt;                /* (B, D) its targets */
    double *gsum;             /* (2D + 1) per-dimension sums, sums of squares, count: the
                                 global targets' and target_std's (col_moments_sum) */
    sigreg sg;                /* the SIGReg global term's state (dims.gsig) */
    /* backward scratch, sized for the largest stack */
    vit_scratch sc;
    float *dres, *dzp, *dz, *dxtn;
    float *attn_scratch;      /* = sc.attn */
    size_t Mmax_all;
    /* jepa_model_target_infer: the EMA target's forward on enc_infer (tres
     * not NULL), its output stream (B*N, D) */
    enc_layout tlay;
    enc_infer tinf;
    float *tres;
};

/* offsets of named tensors, resolved once */
typedef struct {
    size_t patch_w, patch_b, norm_w, norm_b;
    size_t pin_w, pin_b, mask_tok, pnorm_w, pnorm_b, pout_w, pout_b;
    size_t glob_w, glob_b; /* the global term's head (dims.gw > 0) */
    size_t *enc_blk;  /* (depth, BLK_N) */
    size_t *pred_blk; /* (pdepth, BLK_N) */
} model_layout;

/* the layout hangs off the tensor table allocation to keep jepa_model flat */
static model_layout *layout_of(const jepa_model *m) {
    return (model_layout *)(m->tensors + m->ntensors);
}

/* --------------------------------------------------------------- the table */

int jepa_dims_from_spec(jepa_dims *d, const jepa_spec *s, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->img = s->model.img_size;
    d->ch = s->model.channels;
    d->patch = s->model.patch;
    d->D = s->model.width;
    d->depth = s->model.depth;
    d->heads = s->model.heads;
    d->mlp = s->model.mlp_ratio * s->model.width;
    d->Dp = s->model.pred_width;
    d->pdepth = s->model.pred_depth;
    d->pheads = s->model.pred_heads;
    d->pjoint = !strcmp(s->mask.pred_pass, "joint");
    d->gw = (float)s->ijepa.global_weight;
    d->gsig = !strcmp(s->ijepa.global_loss, "sigreg");
    d->sg_dirs = s->sigreg.directions;
    d->sg_knots = s->sigreg.knots;
    d->sg_tmax = s->sigreg.t_max;
    if (d->patch <= 0 || d->img % d->patch) {
        snprintf(err, errlen, "model.img_size %d is not a multiple of model.patch %d", d->img,
                 d->patch);
        return -1;
    }
    if (d->D % d->heads || d->D % 4 || d->Dp % d->pheads || d->Dp % 4) {
        snprintf(err, errlen,
                 "model.width %d / pred_width %d must be multiples of 4 and of their heads",
                 d->D, d->Dp);
        return -1;
    }
    d->grid = d->img / d->patch;
    d->ntok = d->grid * d->grid;
    d->pdim = d->ch * d->patch * d->patch;
    return 0;
}

/* ------------------------------------------------------------ init / free */

void jepa_model_init(jepa_model *m, const jepa_dims *d, uint64_t seed, int maxB,
                     int max_npred, int max_ntgt, int nthreads) {
    memset(m, 0, sizeof *m);
    m->dims = *d;
    m->world = 1;
    m->nthreads = rank_threads_apply(nthreads);

    int cap = 4 + BLK_N * d->depth + 7 + BLK_N * d->pdepth + (d->gw > 0 ? 2 : 0);
    size_t layout_bytes = sizeof(model_layout) + sizeof(size_t) * BLK_N * (d->depth + d->pdepth);
    m->tensors = JEPA_MALLOC(sizeof(jepa_tensor) * cap + layout_bytes);
    m->ntensors = cap; /* provisional, so layout_of points past the table */
    model_layout *L = layout_of(m);
    L->enc_blk = (size_t *)(L + 1);
    L->pred_blk = L->enc_blk + (size_t)BLK_N * d->depth;

    table_builder tb = {m->tensors, 0, cap, 0};
    L->patch_w = table_add(&tb, "enc.patch.w", d->D, d->pdim, 1);
    L->patch_b = table_add(&tb, "enc.patch.b", 1, d->D, 0);
    for (int l = 0; l < d->depth; l++)
        table_add_block(&tb, "enc", l, d->D, d->mlp, L->enc_blk + (size_t)l * BLK_N);
    L->norm_w = table_add(&tb, "enc.norm.w", 1, d->D, 0);
    L->norm_b = table_add(&tb, "enc.norm.b", 1, d->D, 0);
    m->nenc = tb.off;
    L->pin_w = table_add(&tb, "pred.in.w", d->Dp, d->D, 1);
    L->pin_b = table_add(&tb, "pred.in.b", 1, d->Dp, 0);
    L->mask_tok = table_add(&tb, "pred.mask_token", 1, d->Dp, 0);
    int pmlp = d->mlp / d->D * d->Dp;
    for (int l = 0; l < d->pdepth; l++)
        table_add_block(&tb, "pred", l, d->Dp, pmlp, L->pred_blk + (size_t)l * BLK_N);
    L->pnorm_w = table_add(&tb, "pred.norm.w", 1, d->Dp, 0);
    L->pnorm_b = table_add(&tb, "pred.norm.b", 1, d->Dp, 0);
    L->pout_w = table_add(&tb, "pred.out.w", d->D, d->Dp, 1);
    L->pout_b = table_add(&tb, "pred.out.b", 1, d->D, 0);
    if (d->gw > 0) { /* last: every other tensor keeps its index, so its init */
        L->glob_w = table_add(&tb, "pred.global.w", d->D, d->D, 1);
        L->glob_b = table_add(&tb, "pred.global.b", 1, d->D, 0);
    }
    JEPA_ASSERT(tb.n == cap);
    m->nparams = tb.off;

    jepa_params_alloc(m);
    vit_init_params(m, seed);
    memcpy(m->target, m->params, sizeof(float) * m->nenc);
    m->pos_enc = JEPA_MALLOC(sizeof(float) * d->ntok * d->D);
    m->pos_pred = JEPA_MALLOC(sizeof(float) * d->ntok * d->Dp);
    pos_embed_sincos(m->pos_enc, d->D, d->grid);
    pos_embed_sincos(m->pos_pred, d->Dp, d->grid);

    /* activations for the worst case: every token in the context */
    int N = d->ntok, B = maxB, P = max_npred, Nt = max_ntgt;
    /* predictor sequences: P*B of N + Nt tokens, or (joint) B of N + P*Nt */
    int Sp = d->pjoint ? B : P * B, Tp = d->pjoint ? N + P * Nt : N + Nt;
    m->maxB = B; m->max_nctx = N; m->max_ntgt = Nt; m->max_npred = P;
    struct jepa_acts *A = JEPA_MALLOC(sizeof *A);
    m->acts = A;
    vit_acts_init(&A->enc, d->depth, B, N, d->D, d->mlp, d->heads, 1);
    vit_acts_init(&A->tgt, d->depth, B, N, d->D, d->mlp, d->heads, 0);
    vit_acts_init(&A->pred, d->pdepth, Sp, Tp, d->Dp, pmlp, d->pheads, 1);
    size_t BN = (size_t)B * N, PBT = (size_t)P * B * Nt;
    A->patches = JEPA_MALLOC(sizeof(float) * BN * d->pdim);
    A->pctx = JEPA_MALLOC(sizeof(float) * BN * d->pdim);
    A->ctx_flat = JEPA_MALLOC(sizeof(int) * BN);
    A->tgt_flat = JEPA_MALLOC(sizeof(int) * PBT);
    A->prow = JEPA_MALLOC(sizeof(int) * PBT);
    A->trows = JEPA_MALLOC(sizeof(int) * BN);
    A->tmap = JEPA_MALLOC(sizeof(int) * BN);
    A->z = JEPA_MALLOC(sizeof(float) * BN * d->D);
    A->zm = JEPA_MALLOC(sizeof(float) * BN);
    A->zr = JEPA_MALLOC(sizeof(float) * BN);
    A->tln = JEPA_MALLOC(sizeof(float) * BN * d->D);
    A->tlm = JEPA_MALLOC(sizeof(float) * BN);
    A->tlr = JEPA_MALLOC(sizeof(float) * BN);
    A->h = JEPA_MALLOC(sizeof(float) * BN * d->D);
    A->hm = JEPA_MALLOC(sizeof(float) * BN);
    A->hr = JEPA_MALLOC(sizeof(float) * BN);
    A->y = JEPA_MALLOC(sizeof(float) * PBT * d->D);
    A->zp = JEPA_MALLOC(sizeof(float) * BN * d->Dp);
    A->xtn = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    A->xtm = JEPA_MALLOC(sizeof(float) * PBT);
    A->xtr = JEPA_MALLOC(sizeof(float) * PBT);
    A->pout = JEPA_MALLOC(sizeof(float) * PBT * d->D);
    A->dpout = JEPA_MALLOC(sizeof(float) * PBT * d->D);
    float **g[] = {&A->u, &A->q, &A->dq, &A->du, &A->gt};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        *g[i] = JEPA_MALLOC(sizeof(float) * B * d->D);
    A->gsum = JEPA_MALLOC(sizeof(double) * (2 * d->D + 1));
    if (d->gw > 0 && d->gsig) sigreg_init(&A->sg, d->D, d->sg_dirs, d->sg_knots, d->sg_tmax, 1, B);
    size_t Me = BN, Mp = (size_t)Sp * Tp;
    size_t Mmax = Me > Mp ? Me : Mp;
    int Cmax = d->D > d->Dp ? d->D : d->Dp;
    int Hmax = d->mlp > pmlp ? d->mlp : pmlp;
    A->Mmax_all = Mmax;
    A->dres = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    A->dzp = JEPA_MALLOC(sizeof(float) * BN * d->Dp);
    A->dz = JEPA_MALLOC(sizeof(float) * BN * d->D);
    A->dxtn = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    int hdmax = d->D / d->heads > d->Dp / d->pheads ? d->D / d->heads : d->Dp / d->pheads;
    vit_scratch_init(&A->sc, Mmax, Cmax, Hmax, Tp, hdmax);
    A->attn_scratch = A->sc.attn;
}

void jepa_model_free(jepa_model *m) {
    struct jepa_acts *A = m->acts;
    if (A) {
        vit_acts_free(&A->enc);
        vit_acts_free(&A->tgt);
        vit_acts_free(&A->pred);
        void *p[] = {A->patches, A->pctx, A->ctx_flat, A->tgt_flat, A->prow, A->trows,
                     A->tmap, A->z, A->zm, A->zr, A->tln, A->tlm, A->tlr, A->h, A->hm, A->hr,
                     A->y, A->zp, A->xtn, A->xtm, A->xtr, A->pout, A->dpout, A->dres,
                     A->dzp, A->dz, A->dxtn, A->u, A->q, A->dq, A->du, A->gt, A->gsum,
                     A};
        vit_scratch_free(&A->sc);
        if (A->tres) enc_infer_free(&A->tinf);
        jepa_free(A->tres);
        if (m->dims.gw > 0 && m->dims.gsig) sigreg_free(&A->sg);
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) jepa_free(p[i]);
    }
    jepa_params_free(m);
    memset(m, 0, sizeof *m);
}

void jepa_model_target_infer(jepa_model *m, int bf16) {
    struct jepa_acts *A = m->acts;
    JEPA_ASSERT(!A->tres && (!bf16 || infer_bf16_supported(NULL)));
    int rc = enc_layout_from_table(m, &A->tlay);
    JEPA_ASSERT(rc == 0);
    enc_infer_init(&A->tinf, &m->dims, &A->tlay, m->target, INFER_CHUNK_IMAGES, m->dims.img, 1,
                   bf16);
    A->tres = JEPA_MALLOC(sizeof(float) * m->maxB * m->dims.ntok * m->dims.D);
}

/* ------------------------------------------------------------ the step */

/* Encoder over all N tokens of B images with parameters `base`; leaves the
 * final-LayerNorm output in out (B*N, D), or with rows (vit_stack_forward_rows)
 * that of the nrows listed tokens only (nrows, D). Forward only (target /
 * features). */
static void encode_full(jepa_model *m, const float *base, int B, const int *rows, int nrows,
                        float *out, float *om, float *orr) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    int N = d->ntok, M = B * N;
    float *x0 = vit_res(&A->tgt, 0);
    linear_forward(x0, A->patches, base + L->patch_w, base + L->patch_b, M, d->pdim, d->D);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *pe = m->pos_enc + (size_t)(i % N) * d->D;
        float *x = x0 + (size_t)i * d->D;
        for (int c = 0; c < d->D; c++) x[c] += pe[c];
    }
    vit_stack_forward_rows(&A->tgt, base, L->enc_blk, B, N, A->attn_scratch, rows, nrows);
    layernorm_forward(out, om, orr, vit_res(&A->tgt, d->depth), base + L->norm_w,
                      base + L->norm_b, rows ? nrows : M, d->D);
}

/* The predictor's sequences: I-JEPA runs one per (block j, image b), the
 * context then block j's Nt mask tokens; joint runs one per image, the
 * context then every block's mask tokens in block order. S sequences of T
 * tokens; pred_row is the row of target token i of (j, b) in that stack. */
static void pred_shape(const jepa_model *m, const jepa_masks *mk, int *S, int *T) {
    int joint = m->dims.pjoint;
    *S = joint ? mk->B : mk->npred * mk->B;
    *T = mk->nctx + (joint ? mk->npred : 1) * mk->ntgt;
}

static int pred_row(const jepa_model *m, const jepa_masks *mk, int j, int b, int i) {
    const int Nc = mk->nctx, Nt = mk->ntgt;
    if (m->dims.pjoint) return b * (Nc + mk->npred * Nt) + Nc + j * Nt + i;
    return (j * mk->B + b) * (Nc + Nt) + Nc + i;
}

/* The tokens of any target block, ascending (A->trows), each token's place
 * in that list (A->tmap), each target row's place in it (A->tgt_flat) and
 * in the predictor stack (A->prow). Returns the list's length. */
static int target_rows(const jepa_model *m, const jepa_masks *mk) {
    struct jepa_acts *A = m->acts;
    const int B = mk->B, N = m->dims.ntok, Nt = mk->ntgt, P = mk->npred;
    /* the global term's targets need every token (SIGReg's has none) */
    int all = m->dims.gw > 0 && !m->dims.gsig;
    for (int r = 0; r < B * N; r++) A->tmap[r] = all ? 0 : -1;
    for (size_t k = 0; k < (size_t)P * B * Nt; k++)
        A->tmap[(int)(k / Nt % B) * N + mk->tgt[k]] = 0;
    int n = 0;
    for (int r = 0; r < B * N; r++)
        if (A->tmap[r] == 0) {
            A->tmap[r] = n;
            A->trows[n++] = r;
        }
    for (int j = 0; j < P; j++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Nt; i++) {
                size_t k = ((size_t)j * B + b) * Nt + i;
                A->tgt_flat[k] = A->tmap[b * N + mk->tgt[k]];
                A->prow[k] = pred_row(m, mk, j, b, i);
            }
    return n;
}

/* The global term's targets (every token's target row is in A->h): each
 * image's mean row (B, D), standardised per dimension over the global batch
 * (m->sum_doubles adds the other ranks' sums). A target encoder drifting
 * toward one embedding for every image cannot satisfy it: what is left to
 * predict is how this image differs from the batch, at unit variance. */
static void global_targets(jepa_model *m, int B) {
    const int D = m->dims.D;
    struct jepa_acts *A = m->acts;
    double *s = A->gsum;
    mean_rows(A->u, A->h, B, m->dims.ntok, D);
    col_moments_sum(s, A->u, B, D, m->sum_doubles);
    for (int c = 0; c < D; c++) {
        double mu = s[c] / s[2 * D], var = s[D + c] / s[2 * D] - mu * mu;
        double inv = 1.0 / sqrt((var > 0 ? var : 0) + 1e-5);
        for (int b = 0; b < B; b++)
            A->gt[(size_t)b * D + c] = (float)((A->u[(size_t)b * D + c] - mu) * inv);
    }
}

/* Step phase 1, the targets: the EMA encoder on all patches (its last block
 * finishes only the target blocks' tokens, or with the global term all of
 * them; on enc_infer, jepa_model_target_infer, every token), its final LN,
 * then a LayerNorm without affine (I-JEPA); rows at the target positions
 * into A->y; the global term's (B, D) into A->gt. */
static void step_targets(jepa_model *m, const jepa_masks *mk, jepa_stats *st) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    int n = target_rows(m, mk);
    if (A->tres) { /* every token through every block, then the listed rows' final LN */
        const model_layout *L = layout_of(m);
        enc_infer_repack(&A->tinf); /* the EMA moved the weights */
        enc_infer_tokens(&A->tinf, A->patches, mk->B, A->tres);
        gather_rows(A->h, A->tres, A->trows, n, d->D); /* A->h: free until below */
        layernorm_forward(A->tln, A->tlm, A->tlr, A->h, m->target + L->norm_w,
                          m->target + L->norm_b, n, d->D);
    } else {
        encode_full(m, m->target, mk->B, A->trows, n, A->tln, A->tlm, A->tlr);
    }
    layernorm_forward(A->h, A->hm, A->hr, A->tln, NULL, NULL, n, d->D);
    gather_rows(A->y, A->h, A->tgt_flat, mk->npred * mk->B * mk->ntgt, d->D);
    if (d->gw > 0 && !d->gsig) global_targets(m, mk->B);
    /* collapse watch: per-dimension std over the global batch's target block
     * tokens (with the global term: every token), averaged */
    if (st) st->target_std = col_std_mean_sum(A->tln, n, d->D, m->sum_doubles, A->gsum);
}

/* Step phase 2, the context: the online encoder on the context patches only. */
static void step_context(jepa_model *m, const jepa_masks *mk) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const float *W = m->params;
    const int B = mk->B, N = d->ntok, Nc = mk->nctx, D = d->D;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Nc; i++) A->ctx_flat[b * Nc + i] = b * N + mk->ctx[b * Nc + i];
    gather_rows(A->pctx, A->patches, A->ctx_flat, B * Nc, d->pdim);
    float *x0 = vit_res(&A->enc, 0);
    linear_forward(x0, A->pctx, W + L->patch_w, W + L->patch_b, B * Nc, d->pdim, D);
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < B * Nc; r++) {
        const float *pe = m->pos_enc + (size_t)mk->ctx[r] * D;
        float *x = x0 + (size_t)r * D;
        for (int c = 0; c < D; c++) x[c] += pe[c];
    }
    vit_stack_forward(&A->enc, W, L->enc_blk, B, Nc, A->attn_scratch);
    layernorm_forward(A->z, A->zm, A->zr, vit_res(&A->enc, d->depth), W + L->norm_w,
                      W + L->norm_b, B * Nc, D);
}

/* ijepa.global_loss sigreg: SIGReg of the head's outputs q (B, D) over
 * the global batch (sigreg.h: directions from m->sg_key, this rank's cos/sin
 * sums all-reduced by m->sum_doubles); backward: w * d(SIGReg)/dq in A->dq,
 * times the world size, since the loop averages gradients over ranks while
 * each rank's rows hold their exact share (sigreg.h). */
static double global_sigreg(jepa_model *m, int B, int backward) {
    struct jepa_acts *A = m->acts;
    jepa_rng r;
    rng_init(&r, m->sg_key);
    sigreg_draw(&A->sg, &r);
    sigreg_accumulate(&A->sg, A->q, B);
    if (m->sum_doubles) m->sum_doubles(A->sg.ecf, (size_t)2 * A->sg.ndir * A->sg.nknots);
    int64_t Ntot = (int64_t)B * m->world;
    double loss = sigreg_loss(&A->sg, Ntot);
    if (backward) {
        memset(A->dq, 0, sizeof(float) * (size_t)B * m->dims.D);
        sigreg_backward(&A->sg, A->dq, A->q, B, Ntot, m->dims.gw * (float)m->world);
    }
    return loss;
}

/* The global term's forward (dims.gw > 0): pooled context (B, D) through
 * the head; its loss, and (backward) w * d(loss)/d(prediction) in A->dq. */
static double step_global(jepa_model *m, const jepa_masks *mk, loss_kind kind, float beta,
                          int backward) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const float *W = m->params;
    const size_t n = (size_t)mk->B * d->D;
    mean_rows(A->u, A->z, mk->B, mk->nctx, d->D);
    linear_forward(A->q, A->u, W + L->glob_w, W + L->glob_b, mk->B, d->D, d->D);
    if (d->gsig) return global_sigreg(m, mk->B, backward);
    double loss = loss_forward_backward(backward ? A->dq : NULL, A->q, A->gt, n, kind, beta);
    if (backward)
        for (size_t i = 0; i < n; i++) A->dq[i] *= d->gw;
    return loss;
}

/* Its backward, before the predictor's (its head is the table's last
 * tensor, so its gradient must be final before the first grads_ready):
 * the head's gradients, and d(pooled context) in A->du. */
static void back_global(jepa_model *m, const jepa_masks *mk) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    linear_backward_set(A->du, m->grads + L->glob_w, m->grads + L->glob_b, A->dq, A->u,
                        m->params + L->glob_w, mk->B, d->D, d->D);
}

/* Step phase 3, the predictor: S sequences stacked along the batch axis
 * (pred_shape: context rows, then mask tokens at the target positions);
 * predictions at the target rows into A->pout. */
static void step_predictor(jepa_model *m, const jepa_masks *mk) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const float *W = m->params;
    const int B = mk->B, Nc = mk->nctx, Nt = mk->ntgt, P = mk->npred, Dp = d->Dp;
    const int PBT = P * B * Nt;
    int S, T;
    pred_shape(m, mk, &S, &T);
    linear_forward(A->zp, A->z, W + L->pin_w, W + L->pin_b, B * Nc, d->D, Dp);
    float *xp = vit_res(&A->pred, 0);
    const float *mtok = W + L->mask_tok;
    #pragma omp parallel for schedule(static)
    for (int s = 0; s < S; s++) { /* each sequence opens with its image's context */
        int b = s % B;
        float *x = xp + (size_t)s * T * Dp;
        for (int i = 0; i < Nc; i++) {
            const float *z = A->zp + ((size_t)b * Nc + i) * Dp;
            const float *pe = m->pos_pred + (size_t)mk->ctx[b * Nc + i] * Dp;
            for (int c = 0; c < Dp; c++) x[(size_t)i * Dp + c] = z[c] + pe[c];
        }
    }
    /* then mask tokens at the target rows step_targets placed (A->prow) */
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < PBT; k++) {
        const float *pe = m->pos_pred + (size_t)mk->tgt[k] * Dp;
        float *x = xp + (size_t)A->prow[k] * Dp;
        for (int c = 0; c < Dp; c++) x[c] = mtok[c] + pe[c];
    }
    /* only the target rows leave the last block, in A->prow's order */
    vit_stack_forward_rows(&A->pred, W, L->pred_blk, S, T, A->attn_scratch, A->prow, PBT);
    layernorm_forward(A->xtn, A->xtm, A->xtr, vit_res(&A->pred, d->pdepth), W + L->pnorm_w,
                      W + L->pnorm_b, PBT, Dp);
    linear_forward(A->pout, A->xtn, W + L->pout_w, W + L->pout_b, PBT, Dp, d->D);
}

/* Backward phase 1: from d(predictions) through the predictor to d(z) in
 * A->dz; the predictor's gradients are final after it. */
static void back_predictor(jepa_model *m, const jepa_masks *mk) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const float *W = m->params;
    float *G = m->grads;
    const int B = mk->B, Nc = mk->nctx, Nt = mk->ntgt, P = mk->npred, D = d->D, Dp = d->Dp;
    const int PBT = P * B * Nt;
    int S, T;
    pred_shape(m, mk, &S, &T);
    linear_backward_set(A->dxtn, G + L->pout_w, G + L->pout_b, A->dpout, A->xtn, W + L->pout_w,
                        PBT, Dp, D);
    /* d(target rows), compact, as vit_stack_backward takes them after the rows forward */
    memset(A->dres, 0, sizeof(float) * PBT * Dp);
    layernorm_backward(A->dres, G + L->pnorm_w, G + L->pnorm_b, A->dxtn,
                       vit_res(&A->pred, d->pdepth), W + L->pnorm_w, A->xtm, A->xtr, PBT, Dp);
    jepa_grads_ready(m, L->pnorm_w);
    vit_stack_backward(m, &A->pred, &A->sc, W, G, L->pred_blk, S, T, A->dres);
    /* split d(xp): mask-token rows feed the mask token, context rows feed zp */
    memset(A->dzp, 0, sizeof(float) * (size_t)B * Nc * Dp);
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) /* image b's sequences s = b, b + B, ... in order */
        for (int s = b; s < S; s += B) {
            const float *dx = A->dres + (size_t)s * T * Dp;
            for (int i = 0; i < Nc; i++) {
                float *dz = A->dzp + ((size_t)b * Nc + i) * Dp;
                for (int c = 0; c < Dp; c++) dz[c] += dx[(size_t)i * Dp + c];
            }
        }
    float *gm = G + L->mask_tok;
    for (int s = 0; s < S; s++)
        for (int i = Nc; i < T; i++)
            for (int c = 0; c < Dp; c++) gm[c] += A->dres[((size_t)s * T + i) * Dp + c];
    memset(A->dz, 0, sizeof(float) * (size_t)B * Nc * D);
    linear_backward(A->dz, G + L->pin_w, G + L->pin_b, A->dzp, A->z, W + L->pin_w, B * Nc, D, Dp);
    if (d->gw > 0) /* the mean over the context: each row gets d(pooled) / Nc */
        #pragma omp parallel for schedule(static)
        for (int r = 0; r < B * Nc; r++)
            for (int c = 0; c < D; c++) A->dz[(size_t)r * D + c] += A->du[(size_t)(r / Nc) * D + c] / Nc;
    jepa_grads_ready(m, L->pin_w); /* pin and the mask token */
}

/* Backward phase 2: from A->dz through the context encoder. */
static void back_context(jepa_model *m, const jepa_masks *mk) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const float *W = m->params;
    float *G = m->grads;
    const int B = mk->B, Nc = mk->nctx, D = d->D;
    memset(A->dres, 0, sizeof(float) * (size_t)B * Nc * D);
    layernorm_backward(A->dres, G + L->norm_w, G + L->norm_b, A->dz, vit_res(&A->enc, d->depth),
                       W + L->norm_w, A->zm, A->zr, B * Nc, D);
    jepa_grads_ready(m, L->norm_w);
    vit_stack_backward(m, &A->enc, &A->sc, W, G, L->enc_blk, B, Nc, A->dres);
    linear_backward(NULL, G + L->patch_w, G + L->patch_b, A->dres, A->pctx, W + L->patch_w,
                    B * Nc, d->pdim, D);
    jepa_grads_ready(m, 0);
}

/* One I-JEPA step: targets, context, predictor, loss; then (backward) the
 * gradients in reverse after one zero of the buffer. */
static double step(jepa_model *m, const float *images, const jepa_masks *mk, loss_kind kind,
                   float beta, int backward, jepa_stats *st) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    JEPA_ASSERT(mk->B <= m->maxB && mk->npred <= m->max_npred && mk->ntgt <= m->max_ntgt &&
                mk->nctx <= d->ntok && mk->nctx > 0);
    double t = prof_now();
    patchify(A->patches, images, mk->B, d->ch, d->img, d->patch);
    step_targets(m, mk, st);
    t = prof_lap(PROF_TARGET, t);
    step_context(m, mk);
    t = prof_lap(PROF_ENCODER, t);
    step_predictor(m, mk);
    t = prof_lap(PROF_PREDICTOR, t);
    size_t n = (size_t)mk->npred * mk->B * mk->ntgt * d->D;
    double loss = loss_forward_backward(backward ? A->dpout : NULL, A->pout, A->y, n, kind, beta);
    if (d->gw > 0) loss += d->gw * step_global(m, mk, kind, beta, backward);
    if (st) st->loss = loss;
    t = prof_lap(PROF_LOSS, t);
    if (!backward) return loss;
    memset(m->grads, 0, sizeof(float) * m->nparams);
    if (d->gw > 0) back_global(m, mk);
    back_predictor(m, mk);
    t = prof_lap(PROF_BACK_PRED, t);
    back_context(m, mk);
    prof_lap(PROF_BACK_ENC, t);
    return loss;
}

void jepa_forward_backward(jepa_model *m, const float *images, const jepa_masks *mk,
                           loss_kind kind, float beta, jepa_stats *st) {
    step(m, images, mk, kind, beta, 1, st);
}

double jepa_loss(jepa_model *m, const float *images, const jepa_masks *mk, loss_kind kind,
                 float beta) {
    return step(m, images, mk, kind, beta, 0, NULL);
}

void jepa_features(jepa_model *m, int which, const jepa_images *imgs, float mean, float std,
                   float *feats) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const float *base = which ? m->target : m->params;
    int N = d->ntok, D = d->D;
    size_t npix = (size_t)d->ch * d->img * d->img;
    JEPA_ASSERT(imgs->c == d->ch && imgs->h == d->img && imgs->w == d->img);
    /* the predictor's input buffer is free outside a step: borrow it for pixels */
    float *pix = A->dres;
    JEPA_ASSERT(A->Mmax_all * (size_t)(D > d->Dp ? D : d->Dp) >= (size_t)m->maxB * npix);
    for (int i0 = 0; i0 < imgs->n; i0 += m->maxB) {
        int B = imgs->n - i0 < m->maxB ? imgs->n - i0 : m->maxB;
        const uint8_t *src = imgs->pixels + (size_t)i0 * npix;
        for (size_t k = 0; k < (size_t)B * npix; k++)
            pix[k] = ((float)src[k] * (1.0f / 255.0f) - mean) / std;
        patchify(A->patches, pix, B, d->ch, d->img, d->patch);
        encode_full(m, base, B, NULL, 0, A->tln, A->tlm, A->tlr);
        mean_rows(feats + (size_t)i0 * D, A->tln, B, N, D);
    }
}
