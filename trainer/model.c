/* model.c - the I-JEPA model: parameter table, ViT block stacks, and the
 * forward/backward of one training step.
 *
 * Step: the EMA target encoder sees every patch; its layer-normed output at
 * the target positions is what the predictor must reproduce. The online
 * encoder sees only the context tokens. The predictor runs once per target
 * block (context tokens + mask tokens at that block's positions); the
 * npred passes are stacked along the batch axis so every matrix product is
 * one large GEMM over all tokens. Loss: smooth-L1 (or L2) averaged over all
 * target blocks (equal sizes, so the mean of per-block means). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "jepa.h"

/* tensors of one transformer block, in table order */
enum { BLK_LN1W, BLK_LN1B, BLK_QKVW, BLK_QKVB, BLK_PROJW, BLK_PROJB, BLK_LN2W, BLK_LN2B,
       BLK_FC1W, BLK_FC1B, BLK_FC2W, BLK_FC2B, BLK_N };
static const char *blk_names[BLK_N] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                                       "ln2.w", "ln2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};

/* Activations of a stack of L blocks over S sequences of up to T tokens.
 * keep = 1 keeps every layer for backward; keep = 0 (target encoder,
 * feature extraction) reuses one layer slot and two residual buffers. */
typedef struct {
    int L, C, Hd, H, keep;
    size_t Mmax, Amax; /* rows, attention floats per layer slot */
    float *res;        /* (nres, Mmax, C) residual stream; res[l] = input of block l */
    float *ln1, *ln1m, *ln1r, *qkv, *att, *atty, *resmid, *ln2, *ln2m, *ln2r, *fch, *fcg;
} vit_acts;

struct jepa_acts {
    float *patches;    /* (B*N, pdim) */
    float *pctx;       /* (B*Nc, pdim) context patches */
    int *ctx_flat;     /* (B*Nc) b*N + token */
    int *tgt_flat;     /* (P*B*Nt) b*N + token */
    int *prow;         /* (P*B*Nt) row of each target token in the predictor stack */
    vit_acts enc, tgt, pred;
    float *z, *zm, *zr;       /* (B*Nc, D) online encoder output after final LN */
    float *tln, *tlm, *tlr;   /* (B*N, D) target encoder output after final LN */
    float *h, *hm, *hr;       /* (B*N, D) layer-normed again, no affine */
    float *y;                 /* (P*B*Nt, D) regression targets */
    float *zp;                /* (B*Nc, Dp) predictor input projection */
    float *xt, *xtn, *xtm, *xtr; /* (P*B*Nt, Dp) predictor outputs at targets */
    float *pout, *dpout;      /* (P*B*Nt, D) predictions and their grads */
    /* backward scratch, sized for the largest stack */
    float *dres, *dfcg, *dfch, *dln, *datty, *dqkv, *dzp, *dz, *dxt, *dxtn;
    float *attn_scratch;      /* per thread */
    size_t Mmax_all;
};

/* offsets of named tensors, resolved once */
typedef struct {
    size_t patch_w, patch_b, norm_w, norm_b;
    size_t pin_w, pin_b, mask_tok, pnorm_w, pnorm_b, pout_w, pout_b;
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

typedef struct {
    jepa_tensor *t;
    int n, cap;
    size_t off;
} table_builder;

static size_t table_add(table_builder *tb, const char *name, int rows, int cols, int decay) {
    JEPA_ASSERT(tb->n < tb->cap);
    jepa_tensor *t = &tb->t[tb->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->numel = (size_t)rows * cols;
    t->offset = tb->off;
    t->decay = decay;
    tb->off += t->numel;
    return t->offset;
}

static void table_add_block(table_builder *tb, const char *prefix, int l, int C, int Hd,
                            size_t *off) {
    int shape[BLK_N][2] = {{1, C}, {1, C},     {3 * C, C}, {1, 3 * C}, {C, C},  {1, C},
                           {1, C}, {1, C},     {Hd, C},    {1, Hd},    {C, Hd}, {1, C}};
    for (int k = 0; k < BLK_N; k++) {
        char name[40];
        snprintf(name, sizeof name, "%s.%d.%s", prefix, l, blk_names[k]);
        off[k] = table_add(tb, name, shape[k][0], shape[k][1], shape[k][0] > 1);
    }
}

const jepa_tensor *jepa_tensor_find(const jepa_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------ activations */

static void vit_acts_init(vit_acts *a, int L, int S, int T, int C, int Hd, int H, int keep) {
    memset(a, 0, sizeof *a);
    a->L = L; a->C = C; a->Hd = Hd; a->H = H; a->keep = keep;
    a->Mmax = (size_t)S * T;
    a->Amax = (size_t)S * H * T * T;
    int nl = keep ? L : 1, nres = keep ? L + 1 : 2;
    size_t M = a->Mmax;
    a->res = JEPA_MALLOC(sizeof(float) * nres * M * C);
    a->ln1 = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln1m = JEPA_MALLOC(sizeof(float) * nl * M);
    a->ln1r = JEPA_MALLOC(sizeof(float) * nl * M);
    a->qkv = JEPA_MALLOC(sizeof(float) * nl * M * 3 * C);
    a->att = JEPA_MALLOC(sizeof(float) * nl * a->Amax);
    a->atty = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->resmid = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln2 = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln2m = JEPA_MALLOC(sizeof(float) * nl * M);
    a->ln2r = JEPA_MALLOC(sizeof(float) * nl * M);
    a->fch = JEPA_MALLOC(sizeof(float) * nl * M * Hd);
    a->fcg = JEPA_MALLOC(sizeof(float) * nl * M * Hd);
}

static void vit_acts_free(vit_acts *a) {
    float *p[] = {a->res, a->ln1, a->ln1m, a->ln1r, a->qkv, a->att, a->atty,
                  a->resmid, a->ln2, a->ln2m, a->ln2r, a->fch, a->fcg};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) jepa_free(p[i]);
}

static float *res_at(const vit_acts *a, int l) {
    int slot = a->keep ? l : (l & 1);
    return a->res + (size_t)slot * a->Mmax * a->C;
}

/* out = res + inp @ w^T + b: the residual add folded into the GEMM (beta = 1) */
static void linear_residual(float *out, const float *res, const float *inp, const float *w,
                            const float *b, int M, int K, int N) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *o = out + (size_t)i * N;
        const float *r = res + (size_t)i * N;
        for (int j = 0; j < N; j++) o[j] = r[j] + b[j];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, inp, K, w, K, 1.0f,
                out, N);
}

/* Forward through L blocks; input in res_at(a, 0), output in res_at(a, L). */
static void stack_forward(vit_acts *a, const float *base, const size_t *blk, int S, int T,
                          float *scratch) {
    int M = S * T, C = a->C, Hd = a->Hd;
    JEPA_ASSERT((size_t)M <= a->Mmax);
    for (int l = 0; l < a->L; l++) {
        const size_t *o = blk + (size_t)l * BLK_N;
        size_t s = a->keep ? l : 0;
        float *x = res_at(a, l), *xo = res_at(a, l + 1);
        float *ln1 = a->ln1 + s * a->Mmax * C, *qkv = a->qkv + s * a->Mmax * 3 * C;
        float *att = a->att + s * a->Amax, *atty = a->atty + s * a->Mmax * C;
        float *mid = a->resmid + s * a->Mmax * C, *ln2 = a->ln2 + s * a->Mmax * C;
        float *fch = a->fch + s * a->Mmax * Hd, *fcg = a->fcg + s * a->Mmax * Hd;
        layernorm_forward(ln1, a->ln1m + s * a->Mmax, a->ln1r + s * a->Mmax, x,
                          base + o[BLK_LN1W], base + o[BLK_LN1B], M, C);
        linear_forward(qkv, ln1, base + o[BLK_QKVW], base + o[BLK_QKVB], M, C, 3 * C);
        attention_forward(atty, att, qkv, S, T, C, a->H, scratch);
        linear_residual(mid, x, atty, base + o[BLK_PROJW], base + o[BLK_PROJB], M, C, C);
        layernorm_forward(ln2, a->ln2m + s * a->Mmax, a->ln2r + s * a->Mmax, mid,
                          base + o[BLK_LN2W], base + o[BLK_LN2B], M, C);
        linear_forward(fch, ln2, base + o[BLK_FC1W], base + o[BLK_FC1B], M, C, Hd);
        gelu_forward(fcg, fch, (size_t)M * Hd);
        linear_residual(xo, mid, fcg, base + o[BLK_FC2W], base + o[BLK_FC2B], M, Hd, C);
    }
}

/* Backward through L blocks: dres holds dL/d(output) on entry and
 * dL/d(input) on return. Parameter grads accumulate into gbase. */
static void notify(jepa_model *m, size_t lo) {
    if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, lo);
}

static void stack_backward(jepa_model *m, vit_acts *a, struct jepa_acts *A, const float *base,
                           float *gbase, const size_t *blk, int S, int T, float *dres) {
    int M = S * T, C = a->C, Hd = a->Hd;
    JEPA_ASSERT(a->keep);
    for (int l = a->L - 1; l >= 0; l--) {
        const size_t *o = blk + (size_t)l * BLK_N;
        size_t s = l;
        float *x = res_at(a, l);
        float *ln1 = a->ln1 + s * a->Mmax * C, *qkv = a->qkv + s * a->Mmax * 3 * C;
        float *att = a->att + s * a->Amax, *atty = a->atty + s * a->Mmax * C;
        float *mid = a->resmid + s * a->Mmax * C, *ln2 = a->ln2 + s * a->Mmax * C;
        float *fch = a->fch + s * a->Mmax * Hd, *fcg = a->fcg + s * a->Mmax * Hd;
        /* MLP branch: dres is d(out) = d(mid) from the residual, plus the branch */
        memset(A->dfcg, 0, sizeof(float) * M * Hd);
        linear_backward(A->dfcg, gbase + o[BLK_FC2W], gbase + o[BLK_FC2B], dres, fcg,
                        base + o[BLK_FC2W], M, Hd, C);
        memset(A->dfch, 0, sizeof(float) * M * Hd);
        gelu_backward(A->dfch, fch, A->dfcg, (size_t)M * Hd);
        memset(A->dln, 0, sizeof(float) * M * C);
        linear_backward(A->dln, gbase + o[BLK_FC1W], gbase + o[BLK_FC1B], A->dfch, ln2,
                        base + o[BLK_FC1W], M, C, Hd);
        layernorm_backward(dres, gbase + o[BLK_LN2W], gbase + o[BLK_LN2B], A->dln, mid,
                           base + o[BLK_LN2W], a->ln2m + s * a->Mmax, a->ln2r + s * a->Mmax,
                           M, C);
        /* attention branch: dres is now d(mid) */
        memset(A->datty, 0, sizeof(float) * M * C);
        linear_backward(A->datty, gbase + o[BLK_PROJW], gbase + o[BLK_PROJB], dres, atty,
                        base + o[BLK_PROJW], M, C, C);
        attention_backward(A->dqkv, A->datty, qkv, att, S, T, C, a->H, A->attn_scratch);
        memset(A->dln, 0, sizeof(float) * M * C);
        linear_backward(A->dln, gbase + o[BLK_QKVW], gbase + o[BLK_QKVB], A->dqkv, ln1,
                        base + o[BLK_QKVW], M, C, 3 * C);
        layernorm_backward(dres, gbase + o[BLK_LN1W], gbase + o[BLK_LN1B], A->dln, x,
                           base + o[BLK_LN1W], a->ln1m + s * a->Mmax, a->ln1r + s * a->Mmax,
                           M, C);
        if (gbase == m->grads) notify(m, o[0]); /* block l's tensors are final */
    }
}

/* ------------------------------------------------------------ init / free */

static void init_params(jepa_model *m, uint64_t seed) {
    const jepa_dims *d = &m->dims;
    for (int i = 0; i < m->ntensors; i++) {
        const jepa_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        jepa_rng r;
        rng_init(&r, rng_key(seed, 0x1417u, (uint64_t)i));
        const char *leaf = strrchr(t->name, '.');
        leaf = leaf ? leaf + 1 : t->name;
        if (!strcmp(t->name, "enc.patch.w") || !strcmp(t->name, "enc.patch.b")) {
            /* PyTorch's Conv2d default, U(+-1/sqrt(fan_in)): with 4x4 patches
             * (fan_in 16) I-JEPA's trunc-normal(0.02) makes the content ~10x
             * weaker than the sin-cos position embedding, and the targets
             * become a function of position that is trivial to predict */
            double bound = 1.0 / sqrt((double)d->pdim);
            for (size_t k = 0; k < t->numel; k++) p[k] = (float)((2 * rng_uniform(&r) - 1) * bound);
        } else if (!strcmp(t->name, "pred.mask_token")) {
            for (size_t k = 0; k < t->numel; k++) p[k] = (float)rng_trunc_normal(&r, 0.02);
        } else if (t->rows > 1) {
            /* I-JEPA: trunc-normal(0.02), output projections rescaled by depth */
            double std = 0.02;
            int layer = -1;
            if (strstr(t->name, "proj.w") || strstr(t->name, "fc2.w"))
                sscanf(strchr(t->name, '.') + 1, "%d", &layer);
            if (layer >= 0) std /= sqrt(2.0 * (layer + 1));
            for (size_t k = 0; k < t->numel; k++) p[k] = (float)rng_trunc_normal(&r, std);
        } else if (!strcmp(leaf, "w") && strstr(t->name, "ln")) {
            for (size_t k = 0; k < t->numel; k++) p[k] = 1.0f;
        } else if (!strcmp(t->name, "enc.norm.w") || !strcmp(t->name, "pred.norm.w")) {
            for (size_t k = 0; k < t->numel; k++) p[k] = 1.0f;
        } /* biases stay zero */
    }
}

void jepa_model_init(jepa_model *m, const jepa_dims *d, uint64_t seed, int maxB,
                     int max_npred, int max_ntgt, int nthreads) {
    memset(m, 0, sizeof *m);
    m->dims = *d;
    m->nthreads = nthreads > 0 ? nthreads : 1;
    omp_set_num_threads(m->nthreads);
    openblas_set_num_threads(m->nthreads);

    int cap = 4 + BLK_N * d->depth + 7 + BLK_N * d->pdepth;
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
    JEPA_ASSERT(tb.n == cap);
    m->nparams = tb.off;

    m->params = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->grads = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->adam_m = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->adam_v = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->target = JEPA_MALLOC(sizeof(float) * m->nenc);
    init_params(m, seed);
    memcpy(m->target, m->params, sizeof(float) * m->nenc);
    m->pos_enc = JEPA_MALLOC(sizeof(float) * d->ntok * d->D);
    m->pos_pred = JEPA_MALLOC(sizeof(float) * d->ntok * d->Dp);
    pos_embed_sincos(m->pos_enc, d->D, d->grid);
    pos_embed_sincos(m->pos_pred, d->Dp, d->grid);

    /* activations for the worst case: every token in the context */
    int N = d->ntok, B = maxB, P = max_npred, Nt = max_ntgt, Tp = N + Nt;
    m->maxB = B; m->max_nctx = N; m->max_ntgt = Nt; m->max_npred = P;
    struct jepa_acts *A = JEPA_MALLOC(sizeof *A);
    m->acts = A;
    vit_acts_init(&A->enc, d->depth, B, N, d->D, d->mlp, d->heads, 1);
    vit_acts_init(&A->tgt, d->depth, B, N, d->D, d->mlp, d->heads, 0);
    vit_acts_init(&A->pred, d->pdepth, P * B, Tp, d->Dp, pmlp, d->pheads, 1);
    size_t BN = (size_t)B * N, PBT = (size_t)P * B * Nt;
    A->patches = JEPA_MALLOC(sizeof(float) * BN * d->pdim);
    A->pctx = JEPA_MALLOC(sizeof(float) * BN * d->pdim);
    A->ctx_flat = JEPA_MALLOC(sizeof(int) * BN);
    A->tgt_flat = JEPA_MALLOC(sizeof(int) * PBT);
    A->prow = JEPA_MALLOC(sizeof(int) * PBT);
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
    A->xt = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    A->xtn = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    A->xtm = JEPA_MALLOC(sizeof(float) * PBT);
    A->xtr = JEPA_MALLOC(sizeof(float) * PBT);
    A->pout = JEPA_MALLOC(sizeof(float) * PBT * d->D);
    A->dpout = JEPA_MALLOC(sizeof(float) * PBT * d->D);
    size_t Me = BN, Mp = (size_t)P * B * Tp;
    size_t Mmax = Me > Mp ? Me : Mp;
    int Cmax = d->D > d->Dp ? d->D : d->Dp;
    int Hmax = d->mlp > pmlp ? d->mlp : pmlp;
    A->Mmax_all = Mmax;
    A->dres = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    A->dfcg = JEPA_MALLOC(sizeof(float) * Mmax * Hmax);
    A->dfch = JEPA_MALLOC(sizeof(float) * Mmax * Hmax);
    A->dln = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    A->datty = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    A->dqkv = JEPA_MALLOC(sizeof(float) * Mmax * 3 * Cmax);
    A->dzp = JEPA_MALLOC(sizeof(float) * BN * d->Dp);
    A->dz = JEPA_MALLOC(sizeof(float) * BN * d->D);
    A->dxt = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    A->dxtn = JEPA_MALLOC(sizeof(float) * PBT * d->Dp);
    int hdmax = d->D / d->heads > d->Dp / d->pheads ? d->D / d->heads : d->Dp / d->pheads;
    A->attn_scratch =
        JEPA_MALLOC(sizeof(float) * attention_scratch_floats(Tp, hdmax) * omp_get_max_threads());
}

void jepa_model_free(jepa_model *m) {
    struct jepa_acts *A = m->acts;
    if (A) {
        vit_acts_free(&A->enc);
        vit_acts_free(&A->tgt);
        vit_acts_free(&A->pred);
        void *p[] = {A->patches, A->pctx, A->ctx_flat, A->tgt_flat, A->prow, A->z, A->zm,
                     A->zr, A->tln, A->tlm, A->tlr, A->h, A->hm, A->hr, A->y, A->zp, A->xt,
                     A->xtn, A->xtm, A->xtr, A->pout, A->dpout, A->dres, A->dfcg, A->dfch,
                     A->dln, A->datty, A->dqkv, A->dzp, A->dz, A->dxt, A->dxtn,
                     A->attn_scratch, A};
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) jepa_free(p[i]);
    }
    jepa_free(m->params); jepa_free(m->grads); jepa_free(m->adam_m); jepa_free(m->adam_v);
    jepa_free(m->target); jepa_free(m->pos_enc); jepa_free(m->pos_pred);
    jepa_free(m->tensors);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------ the step */

/* Encoder over all N tokens of B images with parameters `base`; leaves the
 * final-LayerNorm output in out (B*N, D). Forward only (target / features). */
static void encode_full(jepa_model *m, const float *base, int B, float *out, float *om,
                        float *orr) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    int N = d->ntok, M = B * N;
    float *x0 = res_at(&A->tgt, 0);
    linear_forward(x0, A->patches, base + L->patch_w, base + L->patch_b, M, d->pdim, d->D);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *pe = m->pos_enc + (size_t)(i % N) * d->D;
        float *x = x0 + (size_t)i * d->D;
        for (int c = 0; c < d->D; c++) x[c] += pe[c];
    }
    stack_forward(&A->tgt, base, L->enc_blk, B, N, A->attn_scratch);
    layernorm_forward(out, om, orr, res_at(&A->tgt, d->depth), base + L->norm_w,
                      base + L->norm_b, M, d->D);
}

static double step(jepa_model *m, const float *images, const jepa_masks *mk, loss_kind kind,
                   float beta, int backward, jepa_stats *st) {
    const jepa_dims *d = &m->dims;
    struct jepa_acts *A = m->acts;
    const model_layout *L = layout_of(m);
    const int B = mk->B, N = d->ntok, Nc = mk->nctx, Nt = mk->ntgt, P = mk->npred;
    const int D = d->D, Dp = d->Dp, T = Nc + Nt;
    JEPA_ASSERT(B <= m->maxB && P <= m->max_npred && Nt <= m->max_ntgt && Nc <= N && Nc > 0);
    const float *W = m->params;
    float *G = m->grads;
    const size_t PBT = (size_t)P * B * Nt;

    patchify(A->patches, images, B, d->ch, d->img, d->patch);

    /* target: EMA encoder on all patches, final LN, then LN without affine */
    encode_full(m, m->target, B, A->tln, A->tlm, A->tlr);
    layernorm_forward(A->h, A->hm, A->hr, A->tln, NULL, NULL, B * N, D);
    for (int j = 0; j < P; j++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Nt; i++) {
                size_t k = ((size_t)j * B + b) * Nt + i;
                A->tgt_flat[k] = b * N + mk->tgt[k];
                A->prow[k] = (int)(((size_t)j * B + b) * T + Nc + i);
            }
    gather_rows(A->y, A->h, A->tgt_flat, (int)PBT, D);
    if (st) {
        /* collapse watch: per-dimension std over all target tokens, averaged */
        double acc = 0.0;
        int M = B * N;
        for (int c = 0; c < D; c++) {
            double s = 0.0, s2 = 0.0;
            for (int i = 0; i < M; i++) {
                double v = A->tln[(size_t)i * D + c];
                s += v;
                s2 += v * v;
            }
            double mean = s / M, var = s2 / M - mean * mean;
            acc += sqrt(var > 0 ? var : 0);
        }
        st->target_std = acc / D;
    }

    /* context: online encoder on the context patches only */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Nc; i++) A->ctx_flat[b * Nc + i] = b * N + mk->ctx[b * Nc + i];
    gather_rows(A->pctx, A->patches, A->ctx_flat, B * Nc, d->pdim);
    float *x0 = res_at(&A->enc, 0);
    linear_forward(x0, A->pctx, W + L->patch_w, W + L->patch_b, B * Nc, d->pdim, D);
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < B * Nc; r++) {
        const float *pe = m->pos_enc + (size_t)mk->ctx[r] * D;
        float *x = x0 + (size_t)r * D;
        for (int c = 0; c < D; c++) x[c] += pe[c];
    }
    stack_forward(&A->enc, W, L->enc_blk, B, Nc, A->attn_scratch);
    layernorm_forward(A->z, A->zm, A->zr, res_at(&A->enc, d->depth), W + L->norm_w,
                      W + L->norm_b, B * Nc, D);

    /* predictor: P passes stacked along the batch axis, T = Nc + Nt tokens each */
    linear_forward(A->zp, A->z, W + L->pin_w, W + L->pin_b, B * Nc, D, Dp);
    float *xp = res_at(&A->pred, 0);
    const float *mtok = W + L->mask_tok;
    #pragma omp parallel for schedule(static)
    for (int jb = 0; jb < P * B; jb++) {
        int b = jb % B;
        float *x = xp + (size_t)jb * T * Dp;
        for (int i = 0; i < Nc; i++) {
            const float *z = A->zp + ((size_t)b * Nc + i) * Dp;
            const float *pe = m->pos_pred + (size_t)mk->ctx[b * Nc + i] * Dp;
            for (int c = 0; c < Dp; c++) x[(size_t)i * Dp + c] = z[c] + pe[c];
        }
        for (int i = 0; i < Nt; i++) {
            const float *pe = m->pos_pred + (size_t)mk->tgt[(size_t)jb * Nt + i] * Dp;
            for (int c = 0; c < Dp; c++) x[(size_t)(Nc + i) * Dp + c] = mtok[c] + pe[c];
        }
    }
    stack_forward(&A->pred, W, L->pred_blk, P * B, T, A->attn_scratch);
    gather_rows(A->xt, res_at(&A->pred, d->pdepth), A->prow, (int)PBT, Dp);
    layernorm_forward(A->xtn, A->xtm, A->xtr, A->xt, W + L->pnorm_w, W + L->pnorm_b, (int)PBT,
                      Dp);
    linear_forward(A->pout, A->xtn, W + L->pout_w, W + L->pout_b, (int)PBT, Dp, D);
    double loss = loss_forward_backward(backward ? A->dpout : NULL, A->pout, A->y,
                                        PBT * D, kind, beta);
    if (st) st->loss = loss;
    if (!backward) return loss;

    /* ---- backward, in reverse; parameter grads accumulate after one zero */
    memset(G, 0, sizeof(float) * m->nparams);
    memset(A->dxtn, 0, sizeof(float) * PBT * Dp);
    linear_backward(A->dxtn, G + L->pout_w, G + L->pout_b, A->dpout, A->xtn, W + L->pout_w,
                    (int)PBT, Dp, D);
    memset(A->dxt, 0, sizeof(float) * PBT * Dp);
    layernorm_backward(A->dxt, G + L->pnorm_w, G + L->pnorm_b, A->dxtn, A->xt, W + L->pnorm_w,
                       A->xtm, A->xtr, (int)PBT, Dp);
    size_t Mp = (size_t)P * B * T;
    memset(A->dres, 0, sizeof(float) * Mp * Dp);
    scatter_add_rows(A->dres, A->dxt, A->prow, (int)PBT, Dp);
    notify(m, L->pnorm_w);
    stack_backward(m, &A->pred, A, W, G, L->pred_blk, P * B, T, A->dres);
    /* split d(xp): mask-token rows feed the mask token, context rows feed zp */
    memset(A->dzp, 0, sizeof(float) * (size_t)B * Nc * Dp);
    float *gm = G + L->mask_tok;
    for (int jb = 0; jb < P * B; jb++) {
        int b = jb % B;
        const float *dx = A->dres + (size_t)jb * T * Dp;
        for (int i = 0; i < Nc; i++) {
            float *dz = A->dzp + ((size_t)b * Nc + i) * Dp;
            for (int c = 0; c < Dp; c++) dz[c] += dx[(size_t)i * Dp + c];
        }
        for (int i = 0; i < Nt; i++)
            for (int c = 0; c < Dp; c++) gm[c] += dx[(size_t)(Nc + i) * Dp + c];
    }
    memset(A->dz, 0, sizeof(float) * (size_t)B * Nc * D);
    linear_backward(A->dz, G + L->pin_w, G + L->pin_b, A->dzp, A->z, W + L->pin_w, B * Nc, D,
                    Dp);
    notify(m, L->pin_w); /* pin and the mask token */
    memset(A->dres, 0, sizeof(float) * (size_t)B * Nc * D);
    layernorm_backward(A->dres, G + L->norm_w, G + L->norm_b, A->dz, res_at(&A->enc, d->depth),
                       W + L->norm_w, A->zm, A->zr, B * Nc, D);
    notify(m, L->norm_w);
    stack_backward(m, &A->enc, A, W, G, L->enc_blk, B, Nc, A->dres);
    linear_backward(NULL, G + L->patch_w, G + L->patch_b, A->dres, A->pctx, W + L->patch_w,
                    B * Nc, d->pdim, D);
    notify(m, 0);
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
        encode_full(m, base, B, A->tln, A->tlm, A->tlr);
        for (int b = 0; b < B; b++) {
            float *f = feats + (size_t)(i0 + b) * D;
            for (int c = 0; c < D; c++) f[c] = 0.0f;
            for (int t = 0; t < N; t++) {
                const float *x = A->tln + ((size_t)b * N + t) * D;
                for (int c = 0; c < D; c++) f[c] += x[c];
            }
            for (int c = 0; c < D; c++) f[c] /= N;
        }
    }
}
