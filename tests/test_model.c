/* test_model.c - the whole I-JEPA loss: analytic gradients of EVERY
 * parameter of a small model against central differences of the float
 * forward (loss accumulated in double), masking invariants, determinism and
 * the parameter table.
 *
 * The numeric gradient comes from an independent double-precision forward
 * written here (naive loops), by central differences (h = 1e-6). Bounds, for
 * every entry of every tensor: per tensor ||a - n||_2 <= 1e-4 ||n||_2, and per
 * entry |a - n| <= 1e-2 |n| + 1e-3 max|n| (float analytic vs double). */
#define GRAD_TENSOR_REL 1e-4
#define GRAD_EL_REL 1e-2
#define GRAD_EL_FLOOR 1e-3
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dref.h"
#include "jepa.h"
#include "sigreg.h"
#include "testutil.h"
#include "vit.h"

/* ---- an independent double-precision forward of the whole model ----
 * Naive loops over the same parameter table (looked up by name; layers from
 * dref.c), so the numeric gradient comes from a second implementation in
 * double, where central differences (h = 1e-6) are accurate to ~1e-8. */
typedef struct {
    const jepa_model *m;
    double *P;          /* (nparams) online parameters, perturbed by the check */
    double *T;          /* (nenc) target parameters */
    const float *img;
    const jepa_masks *mk;
    loss_kind kind;
    double *y;          /* (npred*B*ntgt, D) targets, computed once */
    double *g;          /* (B, D) the global term's targets (dims.gw > 0), with y */
} ref_ctx;

static double ref_elem_loss(loss_kind kind, double e) {
    return kind == LOSS_L2 ? e * e : (fabs(e) < 1 ? 0.5 * e * e : fabs(e) - 0.5);
}

/* The global term (model.c): mean of z (B*Nc, D) over each image's
 * context, the head pred.global, the elementwise loss against c->g; or
 * (dims.gsig) SIGReg of the head's output. */
static double ref_global(const ref_ctx *c, const double *z, int Nc) {
    const jepa_model *m = c->m;
    int B = c->mk->B, D = m->dims.D;
    double *u = calloc((size_t)B * D, sizeof(double)), *q = malloc(sizeof(double) * B * D);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Nc; i++)
            for (int e = 0; e < D; e++) u[b * D + e] += z[((size_t)b * Nc + i) * D + e] / Nc;
    dref_linear(q, u, dref_tensor(m, c->P, "pred.global.w"), dref_tensor(m, c->P, "pred.global.b"),
                B, D, D);
    double L = 0;
    if (m->dims.gsig) { /* SIGReg of q on the step's directions, redrawn from the same key */
        sigreg g;
        sigreg_init(&g, D, m->dims.sg_dirs, m->dims.sg_knots, m->dims.sg_tmax, 1, B);
        jepa_rng r;
        rng_init(&r, m->sg_key);
        sigreg_draw(&g, &r);
        L = dref_sigreg(q, 1, B, D, g.dirs, g.ndir, g.nknots, g.t_max);
        sigreg_free(&g);
        free(u);
        free(q);
        return L;
    }
    for (int i = 0; i < B * D; i++) L += ref_elem_loss(c->kind, q[i] - c->g[i]);
    free(u);
    free(q);
    return L / (B * D);
}

/* encoder over the listed tokens of each image: out (B*n, D), final LN applied */
static void d_encode(double *out, const ref_ctx *c, const double *base, const int *tok, int n) {
    const jepa_model *m = c->m;
    const jepa_dims *d = &m->dims;
    int B = c->mk->B, p = d->patch, G = d->grid;
    const double *pw = dref_tensor(m, base, "enc.patch.w"), *pb = dref_tensor(m, base, "enc.patch.b");
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            int t = tok ? tok[b * n + i] : i, gy = t / G, gx = t % G;
            double *x = out + ((size_t)b * n + i) * d->D;
            for (int o = 0; o < d->D; o++) {
                double s = pb[o];
                for (int ch = 0; ch < d->ch; ch++)
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++)
                            s += c->img[((b * d->ch + ch) * d->img + gy * p + py) * d->img + gx * p + px] *
                                 pw[((o * d->ch + ch) * p + py) * p + px];
                x[o] = s + m->pos_enc[t * d->D + o];
            }
        }
    for (int l = 0; l < d->depth; l++) dref_block(out, m, base, "enc", l, B, n, d->D, d->heads, 0);
    dref_layernorm(out, dref_tensor(m, base, "enc.norm.w"), dref_tensor(m, base, "enc.norm.b"), B * n, d->D);
}

static double ref_loss(void *vc) {
    ref_ctx *c = vc;
    const jepa_model *m = c->m;
    const jepa_dims *d = &m->dims;
    const jepa_masks *mk = c->mk;
    int B = mk->B, N = d->ntok, Nc = mk->nctx, Nt = mk->ntgt, P = mk->npred, D = d->D, Dp = d->Dp;
    /* predictor sequences: one per (block, image), or (joint) one per image
     * holding every block's mask tokens */
    int J = d->pjoint, S = J ? B : P * B, T = Nc + (J ? P : 1) * Nt;
    if (!c->y) { /* targets: EMA encoder on all tokens, LN without affine */
        double *h = malloc(sizeof(double) * B * N * D);
        d_encode(h, c, c->T, NULL, N);
        dref_layernorm(h, NULL, NULL, B * N, D);
        c->y = malloc(sizeof(double) * P * B * Nt * D);
        for (int j = 0; j < P; j++)
            for (int b = 0; b < B; b++)
                for (int i = 0; i < Nt; i++)
                    memcpy(c->y + (((size_t)j * B + b) * Nt + i) * D,
                           h + ((size_t)b * N + mk->tgt[((size_t)j * B + b) * Nt + i]) * D,
                           sizeof(double) * D);
        if (d->gw > 0) { /* each image's mean target, standardised per dimension over the batch */
            c->g = calloc((size_t)B * D, sizeof(double));
            for (int b = 0; b < B; b++)
                for (int t = 0; t < N; t++)
                    for (int e = 0; e < D; e++) c->g[b * D + e] += h[((size_t)b * N + t) * D + e] / N;
            for (int e = 0; e < D; e++) {
                double mu = 0, var = 0;
                for (int b = 0; b < B; b++) mu += c->g[b * D + e] / B;
                for (int b = 0; b < B; b++) var += (c->g[b * D + e] - mu) * (c->g[b * D + e] - mu) / B;
                for (int b = 0; b < B; b++) c->g[b * D + e] = (c->g[b * D + e] - mu) / sqrt(var + 1e-5);
            }
        }
        free(h);
    }
    double *z = malloc(sizeof(double) * B * Nc * D), *zp = malloc(sizeof(double) * B * Nc * Dp);
    d_encode(z, c, c->P, mk->ctx, Nc);
    dref_linear(zp, z, dref_tensor(m, c->P, "pred.in.w"), dref_tensor(m, c->P, "pred.in.b"), B * Nc, D, Dp);
    double *x = malloc(sizeof(double) * S * T * Dp);
    const double *mt = dref_tensor(m, c->P, "pred.mask_token");
    /* row of target token i of (block j, image b) in the stack of sequences */
#define PROW(j, b, i) (J ? (size_t)(b) * T + Nc + (size_t)(j) * Nt + (i) : ((size_t)(j) * B + (b)) * T + Nc + (i))
    for (int sq = 0; sq < S; sq++) {
        int b = sq % B;
        double *s = x + (size_t)sq * T * Dp;
        for (int i = 0; i < Nc; i++)
            for (int e = 0; e < Dp; e++)
                s[i * Dp + e] = zp[(b * Nc + i) * Dp + e] + m->pos_pred[mk->ctx[b * Nc + i] * Dp + e];
    }
    for (int j = 0; j < P; j++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Nt; i++)
                for (int e = 0; e < Dp; e++)
                    x[PROW(j, b, i) * Dp + e] = mt[e] + m->pos_pred[mk->tgt[((size_t)j * B + b) * Nt + i] * Dp + e];
    for (int l = 0; l < d->pdepth; l++) dref_block(x, m, c->P, "pred", l, S, T, Dp, d->pheads, 0);
    double *xt = malloc(sizeof(double) * P * B * Nt * Dp), *out = malloc(sizeof(double) * P * B * Nt * D);
    for (int j = 0; j < P; j++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Nt; i++)
                memcpy(xt + (((size_t)j * B + b) * Nt + i) * Dp, x + PROW(j, b, i) * Dp, sizeof(double) * Dp);
#undef PROW
    dref_layernorm(xt, dref_tensor(m, c->P, "pred.norm.w"), dref_tensor(m, c->P, "pred.norm.b"), P * B * Nt, Dp);
    dref_linear(out, xt, dref_tensor(m, c->P, "pred.out.w"), dref_tensor(m, c->P, "pred.out.b"), P * B * Nt, Dp, D);
    double L = 0;
    size_t n = (size_t)P * B * Nt * D;
    for (size_t i = 0; i < n; i++) L += ref_elem_loss(c->kind, out[i] - c->y[i]);
    L /= n;
    if (d->gw > 0) L += d->gw * ref_global(c, z, Nc);
    free(z); free(zp); free(x); free(xt); free(out);
    return L;
}

/* Finite differences of every parameter, or (wide) of every 7th: the wide
 * model has ~4x the parameters, each reference loss ~4x the work. */
static void check_model_grad(loss_kind kind, int ch, int joint, int wide, float gw, int gsig) {
    const size_t stride = wide ? 7 : 1;
    jepa_dims d = dref_small_dims(ch, wide);
    d.pjoint = joint;
    d.gw = gw;
    d.gsig = gsig; /* SIGReg's settings: the spec's defaults but fewer directions */
    d.sg_dirs = 24;
    int B = 3, G = d.grid;
    mask_cfg mc = dref_masks();
    mc.npred = 2;
    int maxt = mask_max_tokens(&mc, G);
    jepa_model m;
    jepa_model_init(&m, &d, 7, B, mc.npred, maxt, 1);
    /* move away from init symmetry (zero biases, unit LN): perturb every
     * parameter, and let the EMA target differ from the online encoder */
    jepa_rng r;
    rng_init(&r, 99);
    for (size_t i = 0; i < m.nparams; i++) m.params[i] += (float)(0.1 * rng_normal(&r));
    for (size_t i = 0; i < m.nenc; i++) m.target[i] += (float)(0.1 * rng_normal(&r));
    jepa_masks mk;
    mask_alloc(&mk, B, G, mc.npred, maxt);
    mask_sample(&mk, &mc, G, B, &r);
    size_t npix = (size_t)B * d.ch * d.img * d.img;
    float *img = malloc(sizeof(float) * npix);
    for (size_t i = 0; i < npix; i++) img[i] = (float)rng_normal(&r);

    m.sg_key = 0x5eed;
    jepa_stats st;
    jepa_forward_backward(&m, img, &mk, kind, 1.0f, &st);
    CU_ASSERT_DOUBLE_EQUAL(st.loss, jepa_loss(&m, img, &mk, kind, 1.0f), 1e-7);

    ref_ctx c = {&m, malloc(sizeof(double) * m.nparams), malloc(sizeof(double) * m.nenc), img, &mk,
                 kind, NULL, NULL};
    for (size_t i = 0; i < m.nparams; i++) c.P[i] = m.params[i];
    for (size_t i = 0; i < m.nenc; i++) c.T[i] = m.target[i];
    double L0 = ref_loss(&c);
    printf("\n    %zu parameters in %d tensors; loss float %.8f, double reference %.8f (%s%s)",
           m.nparams, m.ntensors, st.loss, L0, kind == LOSS_L2 ? "l2" : "smooth_l1",
           joint ? ", joint predictor pass" : "");
    CU_ASSERT(fabs(st.loss - L0) < 1e-5 * fmax(1, fabs(L0))); /* forward agrees */
    if (joint) { /* and with this pass's reference, not the per-block one */
        jepa_model other = m;
        other.dims.pjoint = 0;
        ref_ctx co = c;
        co.m = &other;
        co.y = co.g = NULL;
        double Lo = ref_loss(&co);
        printf("\n    per-block reference %.8f: |float - joint| %.2e, |joint - per-block| %.2e", Lo,
               fabs(st.loss - L0), fabs(L0 - Lo));
        CU_ASSERT(fabs(st.loss - L0) < 0.05 * fabs(L0 - Lo));
        free(co.y);
        free(co.g);
    }

    double *gn = malloc(sizeof(double) * m.nparams);
    const double h = 1e-6;
    for (size_t i = 0; i < m.nparams; i += stride) {
        double s = c.P[i];
        c.P[i] = s + h;
        double lp = ref_loss(&c);
        c.P[i] = s - h;
        double lm = ref_loss(&c);
        c.P[i] = s;
        gn[i] = (lp - lm) / (2 * h);
    }
    double worst_rel = 0, worst_el = 0;
    int bad = 0;
    for (int t = 0; t < m.ntensors; t++) {
        const jepa_tensor *ts = &m.tensors[t];
        double dn = 0, nn = 0, maxn = 0, worst = 0;
        size_t k0 = (stride - ts->offset % stride) % stride; /* first checked entry */
        for (size_t k = k0; k < ts->numel; k += stride) maxn = fmax(maxn, fabs(gn[ts->offset + k]));
        for (size_t k = k0; k < ts->numel; k += stride) {
            double a = m.grads[ts->offset + k], n = gn[ts->offset + k];
            dn += (a - n) * (a - n);
            nn += n * n;
            worst = fmax(worst, fabs(a - n) / (GRAD_EL_REL * fabs(n) + GRAD_EL_FLOOR * maxn + 1e-12));
        }
        double rel = sqrt(dn) / (sqrt(nn) + 1e-30);
        worst_rel = fmax(worst_rel, rel);
        worst_el = fmax(worst_el, worst);
        if (k0 >= ts->numel) continue; /* a tensor smaller than the stride, not sampled */
        if (rel > GRAD_TENSOR_REL || worst > 1 || nn == 0) {
            bad++;
            printf("\n    FAIL %-18s rel %.2e worst %.2f |g| %.2e", ts->name, rel, worst, sqrt(nn));
        }
    }
    printf("\n    worst per-tensor relative error %.2e, worst entry err/tol %.3f", worst_rel, worst_el);
    CU_ASSERT_EQUAL(bad, 0);
    free(gn); free(img); free(c.P); free(c.T); free(c.y); free(c.g);
    mask_free(&mk);
    jepa_model_free(&m);
}

static void test_grad_smooth_l1(void) { check_model_grad(LOSS_SMOOTH_L1, 1, 0, 0, 0, 0); }
static void test_grad_l2(void) { check_model_grad(LOSS_L2, 1, 0, 0, 0, 0); }
/* head widths 16: attention in place (ops_attn.c), every 7th parameter */
static void test_grad_wide(void) { check_model_grad(LOSS_SMOOTH_L1, 1, 0, 1, 0, 0); }
/* model.pred_pass joint: one predictor sequence per image, every block's mask tokens */
static void test_grad_joint(void) { check_model_grad(LOSS_SMOOTH_L1, 1, 1, 0, 0, 0); }
/* RGB input: the patch embedding's 3-channel layout (patchify, enc.patch.w) */
static void test_grad_rgb(void) { check_model_grad(LOSS_SMOOTH_L1, 3, 0, 0, 0, 0); }
/* ijepa.global_weight: the pooled context's head against the whole-image
 * target (every token of the EMA encoder), with both losses */
static void test_grad_global(void) {
    check_model_grad(LOSS_SMOOTH_L1, 1, 0, 0, 0.7f, 0);
    check_model_grad(LOSS_L2, 1, 1, 0, 1.5f, 0);
}
/* ijepa.global_loss sigreg: SIGReg of the pooled context's head output
 * (the double reference: dref_sigreg on the same directions) */
static void test_grad_global_sigreg(void) { check_model_grad(LOSS_SMOOTH_L1, 1, 0, 0, 0.3f, 1); }
/* The forward and backward in chunks, as training runs them (768 rows are
 * several images there; these batches fit one chunk): one sequence each */
static void test_grad_chunks(void) {
    int old = vit_set_chunk_rows(1);
    check_model_grad(LOSS_SMOOTH_L1, 1, 0, 0, 0, 0);
    check_model_grad(LOSS_SMOOTH_L1, 1, 1, 0, 0, 0);
    vit_set_chunk_rows(old);
}

/* The table: contiguous, covers the buffer, decay only on matrices,
 * encoder first, and the tiny config's parameter count. */
static void test_param_table(void) {
    jepa_spec s;
    spec_defaults(&s);
    jepa_dims d;
    char err[256];
    CU_ASSERT_FATAL(jepa_dims_from_spec(&d, &s, err, sizeof err) == 0);
    jepa_model m;
    jepa_model_init(&m, &d, 0, 2, 4, 16, 1);
    size_t off = 0;
    for (int i = 0; i < m.ntensors; i++) {
        CU_ASSERT_EQUAL(m.tensors[i].offset, off);
        CU_ASSERT_EQUAL(m.tensors[i].decay, m.tensors[i].rows > 1);
        off += m.tensors[i].numel;
    }
    CU_ASSERT_EQUAL(off, m.nparams);
    /* hand count, D=128, 6 blocks, mlp 512, patch 16; Dp=64, 4 blocks, mlp 256 */
    size_t blk = 2 * 128 + 384 * 128 + 384 + 128 * 128 + 128 + 2 * 128 + 512 * 128 + 512 +
                 128 * 512 + 128;
    size_t enc = 16 * 128 + 128 + 6 * blk + 2 * 128;
    size_t pblk = 2 * 64 + 192 * 64 + 192 + 64 * 64 + 64 + 2 * 64 + 256 * 64 + 256 + 64 * 256 + 64;
    size_t pred = 64 * 128 + 64 + 64 + 4 * pblk + 2 * 64 + 128 * 64 + 128;
    CU_ASSERT_EQUAL(m.nenc, enc);
    CU_ASSERT_EQUAL(m.nparams, enc + pred);
    CU_ASSERT_EQUAL(memcmp(m.params, m.target, sizeof(float) * m.nenc), 0);
    const jepa_tensor *t = jepa_tensor_find(&m, "enc.5.fc2.w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->rows, 128);
    CU_ASSERT_EQUAL(t->cols, 512);
    /* init: LN weights one, biases zero, fc2 of block 5 std 0.02/sqrt(12) */
    CU_ASSERT_EQUAL(m.params[jepa_tensor_find(&m, "enc.0.ln1.w")->offset], 1.0f);
    CU_ASSERT_EQUAL(m.params[jepa_tensor_find(&m, "enc.0.qkv.b")->offset + 3], 0.0f);
    double s2 = 0;
    for (size_t k = 0; k < t->numel; k++) s2 += (double)m.params[t->offset + k] * m.params[t->offset + k];
    double sd = sqrt(s2 / t->numel), expect = 0.02 / sqrt(12.0) * 0.8796; /* trunc at 2 sd */
    CU_ASSERT(fabs(sd - expect) < 0.05 * expect);
    jepa_model_free(&m);
}

static void check_masks(mask_cfg mc) {
    int G = 7, B = 64, N = G * G;
    int maxt = mask_max_tokens(&mc, G);
    jepa_masks mk;
    mask_alloc(&mk, B, G, mc.npred, maxt);
    jepa_rng r;
    rng_init(&r, 5);
    int ntgt_min = 1 << 30, ntgt_max = 0;
    for (int trial = 0; trial < 200; trial++) {
        mask_sample(&mk, &mc, G, B, &r);
        CU_ASSERT(mk.ntgt >= 1 && mk.ntgt <= maxt);
        CU_ASSERT(mk.nctx >= 1 && mk.nctx <= N);
        CU_ASSERT(mk.nctx >= mc.min_keep);
        ntgt_min = mk.ntgt < ntgt_min ? mk.ntgt : ntgt_min;
        ntgt_max = mk.ntgt > ntgt_max ? mk.ntgt : ntgt_max;
        for (int b = 0; b < B; b++) {
            unsigned char in_tgt[64] = {0};
            for (int j = 0; j < mc.npred; j++) {
                const int *t = mk.tgt + ((size_t)j * B + b) * mk.ntgt;
                int y0 = t[0] / G, x0 = t[0] % G, y1 = t[mk.ntgt - 1] / G, x1 = t[mk.ntgt - 1] % G;
                /* a rectangle inside the grid: (y1-y0+1)(x1-x0+1) == ntgt, rows sorted */
                CU_ASSERT((y1 - y0 + 1) * (x1 - x0 + 1) == mk.ntgt);
                for (int i = 0; i < mk.ntgt; i++) {
                    CU_ASSERT(t[i] >= 0 && t[i] < N);
                    CU_ASSERT(t[i] / G >= y0 && t[i] / G <= y1 && t[i] % G >= x0 && t[i] % G <= x1);
                    in_tgt[t[i]] = 1;
                }
            }
            const int *c = mk.ctx + (size_t)b * mk.nctx;
            for (int i = 0; i < mk.nctx; i++) {
                CU_ASSERT(c[i] >= 0 && c[i] < N);
                CU_ASSERT(!in_tgt[c[i]]); /* context disjoint from every target */
                if (i) CU_ASSERT(c[i] > c[i - 1]); /* sorted, no repeats */
            }
        }
    }
    printf("\n    target block sizes seen: %d..%d tokens (bound %d)", ntgt_min, ntgt_max, maxt);
    CU_ASSERT(ntgt_min < ntgt_max); /* sizes vary from batch to batch */
    /* same key, same masks */
    jepa_masks a;
    mask_alloc(&a, B, G, mc.npred, maxt);
    jepa_rng r1, r2;
    rng_init(&r1, 77);
    rng_init(&r2, 77);
    mask_sample(&mk, &mc, G, B, &r1);
    mask_sample(&a, &mc, G, B, &r2);
    CU_ASSERT_EQUAL(a.nctx, mk.nctx);
    CU_ASSERT_EQUAL(a.ntgt, mk.ntgt);
    CU_ASSERT(!memcmp(a.ctx, mk.ctx, sizeof(int) * B * a.nctx));
    CU_ASSERT(!memcmp(a.tgt, mk.tgt, sizeof(int) * mc.npred * B * a.ntgt));
    mask_free(&a);
    mask_free(&mk);
}

/* Every invariant under each context cut and block rounding rule. */
static void test_masks(void) {
    for (int cut = 0; cut < 2; cut++)
        for (int rnd = 0; rnd < 2; rnd++) {
            mask_cfg mc = dref_masks();
            mc.context_cut = cut ? MASK_CUT_BATCH_MIN : MASK_CUT_RESAMPLE;
            mc.block_round = rnd ? MASK_ROUND_NEAREST : MASK_ROUND_AREA;
            check_masks(mc);
        }
}

/* The defaults on the 7x7 grid, global batch 128, 500 batches: the context
 * count each rule gives the batch, and the target block sizes. Issue 13
 * measured ~24 visible tokens per image and ~15 after the batch-minimum cut;
 * resample must keep the batch near the median of the visible counts, and area must keep a 0.15-0.2 scale block within 6..9 tokens. */
static void test_mask_counts(void) {
    int G = 7, B = 128, T = 500;
    /* resample, batch_min, and batch_min with nearest rounding (the old rules) */
    double mean[3] = {0, 0, 0};
    int lo[3] = {1 << 30, 1 << 30, 1 << 30};
    for (int v = 0; v < 3; v++) {
        mask_cfg mc = dref_masks();
        mc.context_cut = v ? MASK_CUT_BATCH_MIN : MASK_CUT_RESAMPLE;
        mc.block_round = v == 2 ? MASK_ROUND_NEAREST : MASK_ROUND_AREA;
        jepa_masks mk;
        mask_alloc(&mk, B, G, mc.npred, mask_max_tokens(&mc, G));
        jepa_rng r;
        rng_init(&r, 11);
        for (int t = 0; t < T; t++) {
            mask_sample(&mk, &mc, G, B, &r);
            mean[v] += (double)mk.nctx / T;
            lo[v] = mk.nctx < lo[v] ? mk.nctx : lo[v];
        }
        mask_free(&mk);
    }
    printf("\n    context tokens per image: resample mean %.1f min %d, batch_min mean %.1f min %d,"
           " batch_min+nearest mean %.1f min %d", mean[0], lo[0], mean[1], lo[1], mean[2], lo[2]);
    CU_ASSERT(mean[0] > mean[1] + 4.0);
    CU_ASSERT(lo[0] > lo[1]);
    int sz[2][2] = {{1 << 30, 0}, {1 << 30, 0}};
    for (int rnd = 0; rnd < 2; rnd++) {
        mask_cfg mc = dref_masks();
        mc.block_round = rnd ? MASK_ROUND_NEAREST : MASK_ROUND_AREA;
        jepa_masks mk;
        mask_alloc(&mk, 4, G, mc.npred, mask_max_tokens(&mc, G));
        jepa_rng r;
        rng_init(&r, 12);
        for (int t = 0; t < 2000; t++) {
            mask_sample(&mk, &mc, G, 4, &r);
            sz[rnd][0] = mk.ntgt < sz[rnd][0] ? mk.ntgt : sz[rnd][0];
            sz[rnd][1] = mk.ntgt > sz[rnd][1] ? mk.ntgt : sz[rnd][1];
        }
        mask_free(&mk);
    }
    printf("\n    target block tokens: area %d..%d, nearest %d..%d", sz[0][0], sz[0][1], sz[1][0],
           sz[1][1]);
    CU_ASSERT(sz[0][0] >= 6 && sz[0][1] <= 9); /* floor(49 x 0.2) = 9 */
    CU_ASSERT(sz[1][1] > 9);                   /* the rule it replaces overshoots */
}

/* Same seed and inputs: bitwise-identical loss and gradients, 1 vs 2 threads
 * included (every reduction has a fixed order), with the stacks in chunks
 * of about 20 rows (a sequence or two: the backward's partition must not
 * follow the thread count). */
static void check_determinism(int wide) {
    jepa_dims d = dref_small_dims(1, wide);
    mask_cfg mc = dref_masks();
    int B = 4, maxt = mask_max_tokens(&mc, d.grid);
    float *g1 = NULL;
    double l1 = 0;
    int old = vit_set_chunk_rows(20);
    for (int threads = 1; threads <= 2; threads++) {
        jepa_model m;
        jepa_model_init(&m, &d, 3, B, mc.npred, maxt, threads);
        jepa_masks mk;
        mask_alloc(&mk, B, d.grid, mc.npred, maxt);
        jepa_rng r;
        rng_init(&r, 1);
        mask_sample(&mk, &mc, d.grid, B, &r);
        size_t npix = (size_t)B * d.img * d.img;
        float *img = malloc(sizeof(float) * npix);
        for (size_t i = 0; i < npix; i++) img[i] = (float)rng_normal(&r);
        jepa_stats st;
        jepa_forward_backward(&m, img, &mk, LOSS_SMOOTH_L1, 1.0f, &st);
        if (threads == 1) {
            g1 = malloc(sizeof(float) * m.nparams);
            memcpy(g1, m.grads, sizeof(float) * m.nparams);
            l1 = st.loss;
        } else {
            CU_ASSERT_EQUAL(st.loss, l1);
            CU_ASSERT(!memcmp(g1, m.grads, sizeof(float) * m.nparams));
        }
        CU_ASSERT(st.target_std > 0);
        free(img);
        mask_free(&mk);
        jepa_model_free(&m);
    }
    vit_set_chunk_rows(old);
    free(g1);
}

/* vit_stack_forward_rows: the listed rows' outputs are bitwise those of the
 * full stack (where ops_packed(); with cblas_sgemm to its rounding), and its
 * backward (d(output) at the listed rows only) gives the full backward's
 * d(input) (bitwise where ops_packed()) and weight gradients, the latter to
 * the rounding of their sums (they add fewer zero rows, in other chunks).
 * Head width 16 (in place) and 8 (packed copies); rows in any order or
 * ascending. */
static void check_stack_rows(int C, int H, const int *rows, int nr) {
    const int L = 2, S = 3, T = 9, M = S * T, Hd = 2 * C;
    jepa_tensor tensors[2 * BLK_N];
    size_t blk[2 * BLK_N];
    table_builder tb = {tensors, 0, 2 * BLK_N, 0};
    for (int l = 0; l < L; l++) table_add_block(&tb, "b", l, C, Hd, blk + (size_t)l * BLK_N);
    size_t np = tb.off;
    float *W = malloc(sizeof(float) * np), *G1 = calloc(np, sizeof(float));
    float *G2 = calloc(np, sizeof(float)), *x0 = malloc(sizeof(float) * M * C);
    float *d1 = calloc((size_t)M * C, sizeof(float)), *d2 = calloc((size_t)M * C, sizeof(float));
    float *out = malloc(sizeof(float) * M * C);
    jepa_rng r;
    rng_init(&r, 5);
    for (size_t i = 0; i < np; i++) W[i] = (float)(0.2 * rng_normal(&r));
    for (int i = 0; i < M * C; i++) x0[i] = (float)rng_normal(&r);
    vit_acts a;
    vit_scratch sc;
    vit_acts_init(&a, L, S, T, C, Hd, H, 1);
    vit_scratch_init(&sc, (size_t)M, C, Hd, T, C / H);
    /* full: output and backward from d(output) at the listed rows */
    memcpy(vit_res(&a, 0), x0, sizeof(float) * M * C);
    vit_stack_forward(&a, W, blk, S, T, sc.attn);
    memcpy(out, vit_res(&a, L), sizeof(float) * M * C);
    for (int k = 0; k < nr; k++)
        for (int c = 0; c < C; c++) d1[(size_t)rows[k] * C + c] = (float)rng_normal(&r);
    for (int k = 0; k < nr; k++)
        memcpy(d2 + (size_t)k * C, d1 + (size_t)rows[k] * C, sizeof(float) * C);
    vit_stack_backward(NULL, &a, &sc, W, G1, blk, S, T, d1);
    /* listed rows only */
    memcpy(vit_res(&a, 0), x0, sizeof(float) * M * C);
    vit_stack_forward_rows(&a, W, blk, S, T, sc.attn, rows, nr);
    int same = 1;
    double eo = 0, no = 0;
    for (int k = 0; k < nr; k++) {
        const float *o1 = out + (size_t)rows[k] * C, *o2 = vit_res(&a, L) + (size_t)k * C;
        same &= !memcmp(o1, o2, sizeof(float) * C);
        for (int c = 0; c < C; c++) {
            eo = fmax(eo, fabs(o1[c] - o2[c]));
            no = fmax(no, fabs(o1[c]));
        }
    }
    if (ops_packed()) { /* every product row-wise in our register tiles */
        CU_ASSERT(same);
    } else { /* cblas_sgemm's sums may depend on M */
        CU_ASSERT(no > 0 && eo <= 1e-5 * no);
    }
    vit_stack_backward(NULL, &a, &sc, W, G2, blk, S, T, d2);
    double eg = 0, ng = 0, ed = 0, nd = 0;
    for (size_t i = 0; i < np; i++) {
        eg = fmax(eg, fabs(G1[i] - G2[i]));
        ng = fmax(ng, fabs(G1[i]));
    }
    for (int i = 0; i < M * C; i++) {
        ed = fmax(ed, fabs(d1[i] - d2[i]));
        nd = fmax(nd, fabs(d1[i]));
    }
    printf("\n    C %d H %d: outputs bitwise %s (max diff %.2e); max |grad diff| %.2e of %.2e, "
           "|d(input) diff| %.2e of %.2e", C, H, same ? "equal" : "different", eo, eg, ng, ed, nd);
    CU_ASSERT(ng > 0 && nd > 0 && eg <= 1e-5 * ng && ed <= 1e-5 * nd);
    if (ops_packed()) {
        CU_ASSERT(ed == 0);
    }
    vit_acts_free(&a);
    vit_scratch_free(&sc);
    free(W); free(G1); free(G2); free(x0); free(d1); free(d2); free(out);
}

static void test_stack_rows(void) {
    /* any order (sorted for attention, then back); ascending, sequence 1
     * listing no row */
    const int any[7] = {20, 2, 9, 26, 15, 0, 11}, asc[6] = {0, 2, 5, 8, 23, 26};
    check_stack_rows(32, 2, any, 7); /* head width 16: in place */
    check_stack_rows(32, 4, any, 7); /* 8: packed copies */
    check_stack_rows(32, 2, asc, 6);
    check_stack_rows(32, 4, asc, 6);
}

/* The chunked forward and backward (vit_set_chunk_rows) against one pass
 * with each kernel threaded on its own and each product packing its weight
 * per call: outputs bitwise equal (where ops_packed(): both run our
 * register tiles), and for a stack that keeps its activations the
 * backward's d(input) too; the weight gradients, summed chunk after chunk,
 * to rounding (1e-5 of the largest). Chunks of 2 sequences over 5 (a short
 * last chunk; at 2 threads a team takes them); non-causal with listed rows
 * (ascending, or in any order), causal, forward-only; `big` allocates the
 * stack for more and longer sequences than the forward runs. L <= 3 blocks
 * of width C (1 block of width 48: the backward's packs outgrow the
 * forward's, so vit_acts_init sizes the shared buffer by them). */
static void check_stack_chunks(int L, int C, int H, int keep, int causal, const int *rows,
                               int big) {
    const int S = 5, T = 9, M = S * T, Hd = 2 * C, nr = rows ? 6 : 0;
    JEPA_ASSERT(L <= 3);
    jepa_tensor tensors[3 * BLK_N];
    size_t blk[3 * BLK_N];
    table_builder tb = {tensors, 0, 3 * BLK_N, 0};
    for (int l = 0; l < L; l++) table_add_block(&tb, "b", l, C, Hd, blk + (size_t)l * BLK_N);
    size_t np = tb.off;
    int nout = rows ? nr : M;
    float *W = malloc(sizeof(float) * np), *x0 = malloc(sizeof(float) * M * C);
    float *out[2], *G[2], *d[2];
    jepa_rng r;
    rng_init(&r, 9);
    for (size_t i = 0; i < np; i++) W[i] = (float)(0.2 * rng_normal(&r));
    for (int i = 0; i < M * C; i++) x0[i] = (float)rng_normal(&r);
    vit_acts a;
    vit_scratch sc;
    vit_acts_init(&a, L, big ? S + 2 : S, big ? T + 3 : T, C, Hd, H, keep);
    a.causal = causal;
    vit_scratch_init(&sc, a.Mmax, C, Hd, big ? T + 3 : T, C / H);
    float *dy = malloc(sizeof(float) * nout * C);
    for (int i = 0; i < nout * C; i++) dy[i] = (float)rng_normal(&r);
    int old = vit_set_chunk_rows(0);
    for (int v = 0; v < 2; v++) {
        vit_set_chunk_rows(v ? 18 : 0); /* 2 sequences a chunk */
        out[v] = malloc(sizeof(float) * nout * C);
        G[v] = calloc(np, sizeof(float));
        d[v] = malloc(sizeof(float) * a.Mmax * C);
        memcpy(vit_res(&a, 0), x0, sizeof(float) * M * C);
        vit_stack_forward_rows(&a, W, blk, S, T, sc.attn, rows, nr);
        memcpy(out[v], vit_res(&a, L), sizeof(float) * nout * C);
        if (!keep) continue;
        memcpy(d[v], dy, sizeof(float) * nout * C);
        vit_stack_backward(NULL, &a, &sc, W, G[v], blk, S, T, d[v]);
    }
    vit_set_chunk_rows(old);
    double e = 0, n = 0;
    for (int i = 0; i < nout * C; i++) {
        e = fmax(e, fabs(out[0][i] - out[1][i]));
        n = fmax(n, fabs(out[0][i]));
    }
    double ge = 0, gn = 0, de = 0, dn = 0;
    for (size_t i = 0; keep && i < np; i++) {
        ge = fmax(ge, fabs(G[0][i] - G[1][i]));
        gn = fmax(gn, fabs(G[0][i]));
    }
    for (int i = 0; keep && i < M * C; i++) {
        de = fmax(de, fabs(d[0][i] - d[1][i]));
        dn = fmax(dn, fabs(d[0][i]));
    }
    int same = !memcmp(out[0], out[1], sizeof(float) * nout * C);
    if (keep) same &= !memcmp(d[0], d[1], sizeof(float) * M * C);
    printf("\n    L %d C %d keep %d causal %d rows %s big %d: outputs%s %s (max output diff "
           "%.2e of %.2e; weight gradients %.2e of %.2e)", L, C, keep, causal,
           rows ? "listed" : "all", big, keep ? ", d(input)" : "",
           same ? "bitwise equal" : "different", e, n, ge, gn);
    CU_ASSERT(n > 0 && e <= 1e-5 * n);
    CU_ASSERT(!keep || (gn > 0 && ge <= 1e-5 * gn && dn > 0 && de <= 1e-5 * dn));
    if (ops_packed()) {
        CU_ASSERT(same);
    }
    vit_acts_free(&a);
    vit_scratch_free(&sc);
    for (int v = 0; v < 2; v++) free(out[v]), free(G[v]), free(d[v]);
    free(W); free(x0); free(dy);
}

static void test_stack_chunks(void) {
    const int asc[6] = {3, 10, 11, 25, 30, 44}, any[6] = {30, 3, 44, 11, 25, 10};
    for (int big = 0; big < 2; big++) {
        check_stack_chunks(3, 32, 2, 1, 0, asc, big); /* the predictor's form */
        check_stack_chunks(3, 32, 2, 1, 0, any, big); /* the joint pass lists rows block by block */
        check_stack_chunks(3, 32, 2, 1, 0, NULL, big); /* the context encoder's */
        check_stack_chunks(3, 32, 2, 1, 1, NULL, big); /* the world model's causal predictor */
        check_stack_chunks(3, 32, 2, 0, 0, asc, big); /* the EMA target */
        check_stack_chunks(3, 32, 2, 0, 0, NULL, big); /* feature extraction */
        check_stack_chunks(1, 48, 3, 1, 0, NULL, big); /* backward packs > forward packs */
    }
}

/* loss and gradients bitwise equal at 1 and 2 threads, for head widths
 * 8/4 (packed-copy attention) and 16 (in place) */
static void test_determinism(void) {
    check_determinism(0);
    check_determinism(1);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    static const test_case cases[] = {
        {"param_table", test_param_table}, {"masks", test_masks},
        {"mask_counts", test_mask_counts},
        {"determinism", test_determinism}, {"grad_smooth_l1", test_grad_smooth_l1},
        {"grad_l2", test_grad_l2}, {"grad_rgb", test_grad_rgb}, {"grad_joint", test_grad_joint},
        {"grad_global", test_grad_global}, {"grad_global_sigreg", test_grad_global_sigreg},
        {"grad_wide", test_grad_wide},
        {"grad_chunks", test_grad_chunks}, {"stack_rows", test_stack_rows},
        {"stack_chunks", test_stack_chunks},
    };
    return test_main("model", cases, (int)(sizeof cases / sizeof cases[0]));
}
