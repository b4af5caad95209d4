/* test_lejepa.c - the LeJEPA objective (trainer/obj_lejepa.c): analytic
 * gradients of EVERY parameter of a tiny model against central differences
 * of an independent double-precision forward of the whole loss (views,
 * encoder passes, projector, prediction term, SIGReg) written here with the
 * dref.c layers; the loss and its parts against that forward; determinism
 * over thread counts; grad_ready order; spec refusals.
 *
 * The views are not differentiated: the test rebuilds them with aug_view
 * from the objective's keys (obj_lejepa.h), and the SIGReg directions with
 * sigreg_draw from its key. The reference SIGReg (dref_sigreg) integrates
 * on the full [-T, T] grid with cos/sin evaluated directly. Bounds as test_model:
 * per tensor ||a - n||_2 <= 1e-4 ||n||_2, per entry |a - n| <= 1e-2 |n| +
 * 1e-3 max|n| over the tensor (float analytic vs double numeric). */
#define GRAD_TENSOR_REL 1e-4
#define GRAD_EL_REL 1e-2
#define GRAD_EL_FLOOR 1e-3
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "dref.h"
#include "jepa.h"
#include "obj_lejepa.h"
#include "objective.h"
#include "sigreg.h"
#include "testutil.h"

static int g_proj_hidden = 16; /* tiny_spec's lejepa.proj_hidden */

static void tiny_spec(jepa_spec *s, int B, int Vg, int Vl, double lambda) {
    spec_defaults(s);
    snprintf(s->objective, sizeof s->objective, "lejepa");
    s->seed = 11;
    s->model.img_size = 8;
    s->model.patch = 2;
    s->model.width = 16;
    s->model.depth = 1;
    s->model.heads = 2;
    s->lejepa.global_views = Vg;
    s->lejepa.local_views = Vl;
    s->lejepa.local_size = 4;
    s->lejepa.proj_hidden = g_proj_hidden;
    s->lejepa.proj_dim = 8;
    s->sigreg.weight = lambda;
    s->sigreg.directions = 6;
    s->sigreg.knots = 9;
    s->aug.brightness = 0.4;
    s->aug.contrast = 0.4;
    s->train.batch_per_rank = B;
    s->parallel.threads_per_rank = 1;
}

static objective *make(const jepa_spec *s) {
    objective *o = NULL;
    char err[256];
    int rc = objective_lejepa.create(&o, s, NULL, 0, 1, err, sizeof err);
    if (rc) printf("\n    create: %s", err);
    CU_ASSERT_FATAL(rc == 0 && o);
    o->mean = 0.4f;
    o->std = 0.3f;
    /* away from init symmetry (unit LN gains, zero biases) */
    jepa_rng r;
    rng_init(&r, 99);
    for (size_t i = 0; i < o->m.nparams; i++) o->m.params[i] += (float)(0.1 * rng_normal(&r));
    return o;
}

static uint8_t *random_images(int n, int side, uint64_t key) {
    uint8_t *p = malloc((size_t)n * side * side);
    jepa_rng r;
    rng_init(&r, key);
    for (size_t i = 0; i < (size_t)n * side * side; i++) p[i] = (uint8_t)rng_below(&r, 256);
    return p;
}

/* ---- the reference: the whole loss in double ---- */
typedef struct {
    const jepa_model *m;
    double *P;          /* (nparams) parameters, perturbed by the check */
    double *vg, *vl;    /* the step's views, as the objective builds them */
    float *posg, *posl; /* sin-cos positions of the global and local grids */
    int B, Vg, Vl, Sl, Hp, Pd, ndir, nknots;
    double lambda, tmax;
    const float *dirs;  /* (ndir, Pd) SIGReg directions of the step */
    double inv, sig;    /* the parts of the last evaluation */
} ref_ctx;

static void ref_init(ref_ctx *c, const objective *o, const jepa_spec *s, const uint8_t *img,
                     int64_t step, sigreg *sg) {
    memset(c, 0, sizeof *c);
    const jepa_dims *d = &o->m.dims;
    c->m = &o->m;
    c->B = o->B;
    c->Vg = s->lejepa.global_views;
    c->Vl = s->lejepa.local_views;
    c->Sl = s->lejepa.local_size;
    c->Hp = s->lejepa.proj_hidden;
    c->Pd = s->lejepa.proj_dim;
    c->ndir = s->sigreg.directions;
    c->nknots = s->sigreg.knots;
    c->lambda = s->sigreg.weight;
    c->tmax = s->sigreg.t_max;
    c->P = malloc(sizeof(double) * o->m.nparams);
    for (size_t i = 0; i < o->m.nparams; i++) c->P[i] = o->m.params[i];
    int V = c->Vg + c->Vl, B = c->B;
    size_t ng = (size_t)d->ch * d->img * d->img, nl = (size_t)d->ch * c->Sl * c->Sl;
    float *fg = malloc(sizeof(float) * ng * c->Vg * B), *fl = malloc(sizeof(float) * (nl * c->Vl * B + 1));
    aug_cfg ag = {s->aug.global_scale_min, s->aug.global_scale_max, s->aug.ratio_min,
                  s->aug.ratio_max, s->aug.flip, s->aug.brightness, s->aug.contrast};
    aug_cfg al = ag;
    al.scale_min = s->aug.local_scale_min;
    al.scale_max = s->aug.local_scale_max;
    for (int v = 0; v < V; v++)
        for (int i = 0; i < B; i++) {
            jepa_rng r;
            rng_init(&r, lejepa_view_key(o->seed, step, (uint64_t)i, V, v));
            if (v < c->Vg)
                aug_view(fg + ((size_t)v * B + i) * ng, d->img, img + (size_t)i * ng, d->ch,
                         d->img, d->img, &ag, o->mean, o->std, &r);
            else
                aug_view(fl + ((size_t)(v - c->Vg) * B + i) * nl, c->Sl, img + (size_t)i * ng,
                         d->ch, d->img, d->img, &al, o->mean, o->std, &r);
        }
    c->vg = malloc(sizeof(double) * ng * c->Vg * B);
    c->vl = malloc(sizeof(double) * (nl * c->Vl * B + 1));
    for (size_t k = 0; k < ng * c->Vg * B; k++) c->vg[k] = fg[k];
    for (size_t k = 0; k < nl * c->Vl * B; k++) c->vl[k] = fl[k];
    free(fg);
    free(fl);
    int Gg = d->img / d->patch, Gl = c->Sl / d->patch;
    c->posg = malloc(sizeof(float) * Gg * Gg * d->D);
    c->posl = malloc(sizeof(float) * Gl * Gl * d->D);
    pos_embed_sincos(c->posg, d->D, Gg);
    pos_embed_sincos(c->posl, d->D, Gl);
    sigreg_init(sg, c->Pd, c->ndir, c->nknots, c->tmax, V, B);
    jepa_rng r;
    rng_init(&r, lejepa_dirs_key(o->seed, step));
    sigreg_draw(sg, &r);
    c->dirs = sg->dirs;
}

static void ref_free(ref_ctx *c) {
    free(c->P);
    free(c->vg);
    free(c->vl);
    free(c->posg);
    free(c->posl);
}

static double ref_loss(ref_ctx *c) {
    const jepa_model *m = c->m;
    const int B = c->B, V = c->Vg + c->Vl, M = V * B, D = m->dims.D, Hp = c->Hp, Pd = c->Pd;
    double *f = malloc(sizeof(double) * M * D), *h = malloc(sizeof(double) * M * Hp);
    double *h2 = malloc(sizeof(double) * M * Hp), *e = malloc(sizeof(double) * M * Pd);
    dref_encode_pooled(f, m, c->P, c->vg, c->Vg * B, c->posg);
    if (c->Vl)
        dref_encode_pooled_side(f + (size_t)c->Vg * B * D, m, c->P, c->vl, c->Vl * B, c->Sl, c->posl);
#define T(name) dref_tensor(m, c->P, name)
    dref_linear(h, f, T("proj.0.w"), T("proj.0.b"), M, D, Hp);
    dref_layernorm(h, T("proj.0.ln.w"), T("proj.0.ln.b"), M, Hp);
    dref_gelu(h, (size_t)M * Hp);
    dref_linear(h2, h, T("proj.1.w"), T("proj.1.b"), M, Hp, Hp);
    dref_layernorm(h2, T("proj.1.ln.w"), T("proj.1.ln.b"), M, Hp);
    dref_gelu(h2, (size_t)M * Hp);
    dref_linear(e, h2, T("proj.2.w"), T("proj.2.b"), M, Hp, Pd);
#undef T
    double inv = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < Pd; j++) {
            double cen = 0;
            for (int v = 0; v < c->Vg; v++) cen += e[((size_t)v * B + i) * Pd + j];
            cen /= c->Vg;
            for (int v = 0; v < V; v++) {
                double dd = e[((size_t)v * B + i) * Pd + j] - cen;
                inv += dd * dd;
            }
        }
    c->inv = inv / ((double)V * B * Pd);
    c->sig = dref_sigreg(e, V, B, Pd, c->dirs, c->ndir, c->nknots, c->tmax); /* e is (V, B, P) */
    free(f); free(h); free(h2); free(e);
    return (1 - c->lambda) * c->inv + c->lambda * c->sig;
}

/* Every tensor's analytic gradient against central differences of ref_loss. */
static void check_grad(int Vg, int Vl, double lambda, int ch) {
    jepa_spec s;
    const int B = 3;
    const int64_t step = 3;
    tiny_spec(&s, B, Vg, Vl, lambda);
    s.model.channels = ch;
    objective *o = make(&s);
    uint8_t *img = random_images(B * ch, s.model.img_size, 5); /* (B, ch, img, img) */
    obj_stats st;
    objective_lejepa.step(o, img, step, &st);
    sigreg sg;
    ref_ctx c;
    ref_init(&c, o, &s, img, step, &sg);
    double L0 = ref_loss(&c);
    printf("\n    Vg %d Vl %d lambda %.2f channels %d: %zu parameters in %d tensors; loss float "
           "%.8f, double %.8f (inv %.6f vs %.6f, sigreg %.6f vs %.6f)", Vg, Vl, lambda, ch, o->m.nparams,
           o->m.ntensors, st.loss, L0, st.stat[2], c.inv, st.stat[1], c.sig);
    CU_ASSERT(fabs(st.loss - L0) < 1e-5 * fmax(1, fabs(L0)));
    CU_ASSERT(fabs(st.stat[2] - c.inv) < 1e-5 * fmax(1, c.inv));
    CU_ASSERT(fabs(st.stat[1] - c.sig) < 1e-5 * fmax(1, c.sig));
    CU_ASSERT(c.inv > 0 && c.sig > 0);

    double *gn = malloc(sizeof(double) * o->m.nparams);
    const double h = 1e-6;
    for (size_t i = 0; i < o->m.nparams; i++) {
        double p = c.P[i];
        c.P[i] = p + h;
        double lp = ref_loss(&c);
        c.P[i] = p - h;
        double lm = ref_loss(&c);
        c.P[i] = p;
        gn[i] = (lp - lm) / (2 * h);
    }
    double worst_rel = 0, worst_el = 0;
    int bad = 0;
    for (int t = 0; t < o->m.ntensors; t++) {
        const jepa_tensor *ts = &o->m.tensors[t];
        double dn = 0, nn = 0, maxn = 0, worst = 0;
        for (size_t k = 0; k < ts->numel; k++) maxn = fmax(maxn, fabs(gn[ts->offset + k]));
        for (size_t k = 0; k < ts->numel; k++) {
            double a = o->m.grads[ts->offset + k], n = gn[ts->offset + k];
            dn += (a - n) * (a - n);
            nn += n * n;
            worst = fmax(worst, fabs(a - n) / (GRAD_EL_REL * fabs(n) + GRAD_EL_FLOOR * maxn + 1e-12));
        }
        double rel = sqrt(dn) / (sqrt(nn) + 1e-30);
        worst_rel = fmax(worst_rel, rel);
        worst_el = fmax(worst_el, worst);
        if (rel > GRAD_TENSOR_REL || worst > 1 || nn == 0) {
            bad++;
            printf("\n    FAIL %-18s rel %.2e worst %.2f |g| %.2e", ts->name, rel, worst, sqrt(nn));
        }
    }
    printf("\n    worst per-tensor relative error %.2e, worst entry err/tol %.3g", worst_rel, worst_el);
    CU_ASSERT_EQUAL(bad, 0);
    free(gn);
    free(img);
    ref_free(&c);
    sigreg_free(&sg);
    objective_lejepa.destroy(o);
}

/* global and local views, both loss terms weighted */
static void test_grad_local(void) { check_grad(2, 2, 0.3, 1); }
/* global views only (no local pass, the centre's gradient cancels) */
static void test_grad_global_only(void) { check_grad(3, 0, 0.05, 1); }
/* RGB: 3-channel patches, crops and the weighted grey mean of the jitter */
static void test_grad_rgb(void) { check_grad(2, 2, 0.3, 3); }
/* The paths training takes at its real sizes: the encoder's forward and
 * backward in chunks (one sequence each here; training's 768 rows are
 * several images, the other tests' batches one chunk), and a projector
 * wider than the packed-weight buffer vit_scratch_init reserves for the
 * blocks (64 x 64 > width 16's block weights), so its products go through
 * cblas_sgemm as configs/fmnist-lejepa.yaml's 512-wide projector does. */
static void test_grad_chunks_wide_proj(void) {
    int old = vit_set_chunk_rows(1);
    g_proj_hidden = 64;
    check_grad(2, 2, 0.3, 1);
    g_proj_hidden = 16;
    vit_set_chunk_rows(old);
}

/* ---- the rest ---- */
static size_t ready_last, ready_calls, ready_bad;
static void on_ready(void *ctx, size_t lo) {
    (void)ctx;
    if (ready_calls++ && lo > ready_last) ready_bad++; /* lo never increases */
    ready_last = lo;
}

/* Bitwise the same loss and gradients at 1 and 2 threads; grad_ready told
 * with non-increasing offsets down to 0 (the whole buffer final). */
static void test_determinism_and_ready(void) {
    jepa_spec s;
    tiny_spec(&s, 4, 2, 3, 0.05);
    uint8_t *img = random_images(4, 8, 8);
    float *g1 = NULL;
    obj_stats st1;
    for (int threads = 1; threads <= 2; threads++) {
        s.parallel.threads_per_rank = threads;
        objective *o = make(&s);
        o->m.grad_ready = on_ready;
        ready_calls = ready_bad = 0;
        obj_stats st;
        objective_lejepa.step(o, img, 17, &st);
        CU_ASSERT(ready_calls >= 3 && ready_bad == 0 && ready_last == 0);
        CU_ASSERT(st.stat[0] > 0); /* emb_std */
        CU_ASSERT_DOUBLE_EQUAL(st.loss, (1.0 - 0.05f) * st.stat[2] + 0.05f * st.stat[1], 1e-12);
        if (threads == 1) {
            g1 = malloc(sizeof(float) * o->m.nparams);
            memcpy(g1, o->m.grads, sizeof(float) * o->m.nparams);
            st1 = st;
        } else {
            CU_ASSERT_EQUAL(st.loss, st1.loss);
            CU_ASSERT(!memcmp(g1, o->m.grads, sizeof(float) * o->m.nparams));
        }
        objective_lejepa.destroy(o);
    }
    printf("\n    grad_ready: %zu calls, last lo %zu", ready_calls, ready_last);
    free(g1);
    free(img);
}

/* The table: encoder then projector, no EMA copy, shapes and init. */
static void test_table(void) {
    jepa_spec s;
    tiny_spec(&s, 2, 2, 4, 0.05);
    objective *o = NULL;
    char err[256];
    CU_ASSERT_FATAL(objective_lejepa.create(&o, &s, NULL, 0, 1, err, sizeof err) == 0);
    const jepa_model *m = &o->m;
    CU_ASSERT_EQUAL(m->nenc, 0);
    CU_ASSERT_PTR_NULL(m->target);
    size_t off = 0;
    for (int i = 0; i < m->ntensors; i++) {
        CU_ASSERT_EQUAL(m->tensors[i].offset, off);
        off += m->tensors[i].numel;
    }
    CU_ASSERT_EQUAL(off, m->nparams);
    const jepa_tensor *w0 = jepa_tensor_find(m, "proj.0.w"), *w2 = jepa_tensor_find(m, "proj.2.w");
    const jepa_tensor *g = jepa_tensor_find(m, "proj.1.ln.w");
    CU_ASSERT_FATAL(w0 && w2 && g);
    CU_ASSERT(w0->rows == 16 && w0->cols == 16 && w2->rows == 8 && w2->cols == 16 && w2->decay);
    CU_ASSERT(m->params[g->offset] == 1.0f && !g->decay);
    /* hand count: encoder (patch 4 -> 16, one block, norm) + projector */
    size_t blk = 2 * 16 + 48 * 16 + 48 + 16 * 16 + 16 + 2 * 16 + 64 * 16 + 64 + 16 * 64 + 16;
    size_t enc = 16 * 4 + 16 + blk + 2 * 16, proj = 16 * 16 + 16 + 32 + 16 * 16 + 16 + 32 + 8 * 16 + 8;
    CU_ASSERT_EQUAL(m->nparams, enc + proj);
    CU_ASSERT(strcmp(m->tensors[0].name, "enc.patch.w") == 0);
    objective_lejepa.destroy(o);
}

static void expect_refusal(const jepa_spec *s, const shard_schema *sc, const char *want) {
    objective *o = NULL;
    char err[256] = "";
    int rc = objective_lejepa.create(&o, s, sc, 0, 1, err, sizeof err);
    CU_ASSERT(rc == -1 && o == NULL);
    CU_ASSERT(strstr(err, want) != NULL && strchr(err, '\n') == NULL);
    printf("\n    refused: %s", err);
}

static void test_refusals(void) {
    jepa_spec s;
    tiny_spec(&s, 2, 2, 2, 0.05);
    s.lejepa.local_size = 5;
    expect_refusal(&s, NULL, "lejepa.local_size: 5");
    tiny_spec(&s, 2, 2, 2, 0.05); /* a local view larger than the image */
    s.lejepa.local_size = s.model.img_size + s.model.patch;
    expect_refusal(&s, NULL, "is larger than model.img_size");
    tiny_spec(&s, 2, 2, 2, 0.05);
    s.aug.global_scale_min = 0.9;
    s.aug.global_scale_max = 0.5;
    expect_refusal(&s, NULL, "aug.global_scale_min: 0.9 exceeds aug.global_scale_max 0.5");
    tiny_spec(&s, 2, 2, 2, 0.05);
    s.aug.ratio_min = 2;
    expect_refusal(&s, NULL, "aug.ratio_min: 2");
    tiny_spec(&s, 2, 2, 2, 0.05);
    s.sigreg.knots = 100;
    expect_refusal(&s, NULL, "sigreg.knots: 100");
    tiny_spec(&s, 2, 2, 2, 0.05);
    snprintf(s.data.train, sizeof s.data.train, "/data/x");
    shard_schema sc = {0};
    sc.dtype = SHARD_DTYPE_U8;
    sc.label = SHARD_LABEL_U8;
    sc.channels = 1;
    sc.height = sc.width = 28;
    expect_refusal(&s, &sc, "/data/x: images are 1x28x28");
    /* with local views off, local_size is not checked */
    tiny_spec(&s, 2, 2, 0, 0.05);
    s.lejepa.local_size = 5;
    objective *o = NULL;
    char err[256];
    CU_ASSERT(objective_lejepa.create(&o, &s, NULL, 0, 1, err, sizeof err) == 0);
    objective_lejepa.destroy(o);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    static const test_case cases[] = {
        {"table", test_table},
        {"refusals", test_refusals},
        {"determinism_and_ready", test_determinism_and_ready},
        {"grad_local", test_grad_local},
        {"grad_global_only", test_grad_global_only},
        {"grad_rgb", test_grad_rgb},
        {"grad_chunks_wide_proj", test_grad_chunks_wide_proj},
    };
    return test_main("lejepa", cases, (int)(sizeof cases / sizeof cases[0]));
}
