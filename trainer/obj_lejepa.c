/* obj_lejepa.c - the LeJEPA objective (Balestriero & LeCun 2025, "LeJEPA:
 * Provable and Scalable Self-Supervised Learning Without the Heuristics",
 * arXiv:2511.08544): one encoder, no EMA teacher, no stop-gradient, no
 * predictor; augmented views of an image must agree, and SIGReg (sigreg.h)
 * keeps their embeddings near an isotropic Gaussian so agreeing is not
 * collapsing.
 *
 * Per image i of the batch, V = Vg + Vl views (aug_view, keys in
 * obj_lejepa.h): Vg global views at model.img_size (aug.global_scale_*), Vl
 * local views at lejepa.local_size (aug.local_scale_*). Every view goes
 * through the one ViT encoder (encoder.h; the local views on their own,
 * smaller grid of sin-cos positions), mean-pooled (D), then the projector
 *
 *     e = W3 GELU(LN(W2 GELU(LN(W1 f + b1)) + b2)) + b3      (D -> Hp -> Hp -> P)
 *
 * giving embeddings e (V, B, P), view-major. The loss (the paper's
 * prediction term plus lambda-weighted SIGReg; its section and equation
 * numbers were not checkable here, as in sigreg.h) is
 *
 *     c_i  = (1/Vg) sum_{v < Vg} e_{v,i}                      (centre of the global views)
 *     inv  = (1/(V B P)) sum_{v, i} ||e_{v,i} - c_i||^2
 *     L    = (1 - lambda) inv + lambda SIGReg(e; one group per view, B rows each)
 *
 * The mean over (views, images, dims) is MINIMAL.md's
 * `(proj.mean(0) - proj).square().mean()` on proj (V, N, P) (all views
 * global there). With local views the centre is the mean of the GLOBAL
 * views only, every view (global ones included) regressing it: the
 * paper's global/local form as public code following it writes it
 * (`global_centroid = stack(global_views).mean(0)`, `(global_centroid -
 * all_views).square().mean()`); the paper's own listing was not read. The
 * centre is NOT detached: the gradient flows through c_i into the global
 * views, as in MINIMAL.md (no .detach() anywhere) and the paper's "no
 * stop-gradient". SIGReg per view with the statistic's N = the global batch
 * (MINIMAL.md: proj (V, N, P), means over N, mean over views and directions).
 *
 * Differences from the reference, on purpose: the projector normalises with
 * LayerNorm where MINIMAL.md's torchvision MLP uses BatchNorm1d, so there is
 * no batch statistic to synchronise across ranks and a rank's rows do not
 * depend on another's; GELU where torchvision's MLP defaults to ReLU. The
 * projector keeps the trainer's init (trunc-normal 0.02 matrices): each of
 * its first two layers feeds a LayerNorm, which undoes the scale of W.
 *
 * Data parallelism: views and directions are pure functions of (seed, step,
 * global image index), SIGReg's characteristic-function sums are all-reduced
 * (comm_sum_doubles, one call per step), inv is a per-image mean, so the
 * loop's gradient average over W ranks equals one process with W B images.
 * Evaluation: eval_images on the mean-pooled encoder output of the whole
 * image (the backbone, not the projector). Nothing is allocated in step. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "augment.h"
#include "comm.h"
#include "encoder.h"
#include "obj_lejepa.h"
#include "objective.h"
#include "prof.h"
#include "rank_threads.h"
#include "sigreg.h"

/* projector tensors, in table order */
enum { PJ_W0, PJ_B0, PJ_LW0, PJ_LB0, PJ_W1, PJ_B1, PJ_LW1, PJ_LB1, PJ_W2, PJ_B2, PJ_N };

typedef struct {
    objective base;
    jepa_dims d;
    enc_layout L;
    size_t pj[PJ_N];          /* projector offsets */
    int Vg, Vl, V, Sl, Hp, P; /* views, local side, projector widths */
    aug_cfg ag, al;           /* global / local view augmentations */
    float lambda;
    enc_pass eg, el;          /* B*Vg global views, B*Vl local views */
    float *vg, *vl;           /* (Vg*B, ch, img, img), (Vl*B, ch, Sl, Sl) views, view-major */
    float *feat, *dfeat;      /* (V*B, D) pooled encoder outputs (global rows first) */
    float *h1, *n1, *a1, *m1, *r1; /* (V*B, Hp) x3, (V*B) x2: Linear, LN, GELU, LN stats */
    float *h2, *n2, *a2, *m2, *r2;
    float *e, *de;            /* (V*B, P) = (V, B, P) embeddings and their gradients */
    float *cen;               /* (B, P) centres c_i */
    double *moments;          /* (2P + 1) emb_std's sums (col_std_mean_sum) */
    float *ga, *gn, *gh;      /* (V*B, Hp) projector backward scratch */
    vit_scratch sc;
    sigreg sg;
} lejepa_obj;

static const char *const lejepa_stats[] = {"emb_std", "sigreg", "inv", NULL};
static const char *const lejepa_keys[] = {
    "lejepa.global_views", "lejepa.local_views", "lejepa.local_size", "lejepa.proj_hidden",
    "lejepa.proj_dim", "sigreg.weight", "sigreg.directions", "sigreg.knots", "sigreg.t_max",
    "aug.global_scale_min", "aug.global_scale_max", "aug.local_scale_min",
    "aug.local_scale_max", "aug.ratio_min", "aug.ratio_max", "aug.flip", "aug.brightness",
    "aug.contrast", NULL,
};

/* ------------------------------------------------------------ create */

/* Cross-key checks the spec table cannot express, and the view
 * augmentations they describe; one line naming the key. */
static int lejepa_check_spec(const jepa_spec *s, const jepa_dims *d, aug_cfg *ag, aug_cfg *al,
                             char *err, size_t errlen) {
    if (d->depth > 64) {
        snprintf(err, errlen, "model.depth: %d blocks, the encoder takes at most 64", d->depth);
        return -1;
    }
    if (s->lejepa.local_views > 0 && s->lejepa.local_size % d->patch) {
        snprintf(err, errlen, "lejepa.local_size: %d is not a multiple of model.patch %d",
                 s->lejepa.local_size, d->patch);
        return -1;
    }
    if (s->lejepa.local_views > 0 && s->lejepa.local_size > d->img) { /* a smaller crop */
        snprintf(err, errlen, "lejepa.local_size: %d is larger than model.img_size %d",
                 s->lejepa.local_size, d->img);
        return -1;
    }
    if (s->sigreg.knots > SIGREG_MAX_KNOTS) {
        snprintf(err, errlen, "sigreg.knots: %d, at most %d", s->sigreg.knots, SIGREG_MAX_KNOTS);
        return -1;
    }
    const struct { const char *key; double lo, hi; } ranges[] = {
        {"aug.global_scale", s->aug.global_scale_min, s->aug.global_scale_max},
        {"aug.local_scale", s->aug.local_scale_min, s->aug.local_scale_max},
        {"aug.ratio", s->aug.ratio_min, s->aug.ratio_max},
    };
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++)
        if (ranges[k].lo > ranges[k].hi) {
            snprintf(err, errlen, "%s_min: %g exceeds %s_max %g", ranges[k].key, ranges[k].lo,
                     ranges[k].key, ranges[k].hi);
            return -1;
        }
    aug_cfg c = {0, 0, s->aug.ratio_min, s->aug.ratio_max, s->aug.flip, s->aug.brightness,
                 s->aug.contrast};
    *ag = *al = c;
    ag->scale_min = s->aug.global_scale_min;
    ag->scale_max = s->aug.global_scale_max;
    al->scale_min = s->aug.local_scale_min;
    al->scale_max = s->aug.local_scale_max;
    return aug_cfg_check(ag, err, errlen) || aug_cfg_check(al, err, errlen) ? -1 : 0;
}

/* The table: the encoder (I-JEPA's names and order), then the projector. */
static void lejepa_table(lejepa_obj *o) {
    jepa_model *m = &o->base.m;
    const int D = o->d.D, Hp = o->Hp, P = o->P, cap = enc_tensor_count(&o->d) + PJ_N;
    m->tensors = JEPA_MALLOC(sizeof(jepa_tensor) * cap);
    table_builder tb = {m->tensors, 0, cap, 0};
    enc_table_add(&tb, &o->d, &o->L);
    static const char *const names[PJ_N] = {"proj.0.w", "proj.0.b", "proj.0.ln.w", "proj.0.ln.b",
                                            "proj.1.w", "proj.1.b", "proj.1.ln.w", "proj.1.ln.b",
                                            "proj.2.w", "proj.2.b"};
    const int shape[PJ_N][2] = {{Hp, D}, {1, Hp}, {1, Hp}, {1, Hp}, {Hp, Hp},
                                {1, Hp}, {1, Hp}, {1, Hp}, {P, Hp}, {1, P}};
    for (int k = 0; k < PJ_N; k++)
        o->pj[k] = table_add(&tb, names[k], shape[k][0], shape[k][1], shape[k][0] > 1);
    JEPA_ASSERT(tb.n == cap);
    m->ntensors = cap;
    m->nparams = tb.off;
    m->nenc = 0; /* no EMA target: SIGReg prevents collapse */
    jepa_params_alloc(m);
    vit_init_params(m, o->base.seed);
}

/* Activations and scratch for B images per step. */
static void lejepa_alloc(lejepa_obj *o) {
    const jepa_dims *d = &o->d;
    const int B = o->base.B, M = o->V * B, Hp = o->Hp;
    const int Ng = d->ntok, Nl = (o->Sl / d->patch) * (o->Sl / d->patch);
    enc_pass_init(&o->eg, d, o->Vg * B, d->img, 1);
    if (o->Vl) enc_pass_init(&o->el, d, o->Vl * B, o->Sl, 1);
    o->vg = JEPA_MALLOC(sizeof(float) * o->Vg * B * d->ch * d->img * d->img);
    o->vl = JEPA_MALLOC(sizeof(float) * (o->Vl * B * d->ch * o->Sl * o->Sl + 1));
    float **hp[] = {&o->h1, &o->n1, &o->a1, &o->h2, &o->n2, &o->a2, &o->ga, &o->gn, &o->gh};
    for (size_t k = 0; k < sizeof hp / sizeof hp[0]; k++) *hp[k] = JEPA_MALLOC(sizeof(float) * M * Hp);
    float **rows[] = {&o->m1, &o->r1, &o->m2, &o->r2};
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) *rows[k] = JEPA_MALLOC(sizeof(float) * M);
    o->feat = JEPA_MALLOC(sizeof(float) * M * d->D);
    o->dfeat = JEPA_MALLOC(sizeof(float) * M * d->D);
    o->e = JEPA_MALLOC(sizeof(float) * M * o->P);
    o->de = JEPA_MALLOC(sizeof(float) * M * o->P);
    o->cen = JEPA_MALLOC(sizeof(float) * B * o->P);
    o->moments = JEPA_MALLOC(sizeof(double) * (2 * o->P + 1));
    size_t Mg = (size_t)o->Vg * B * Ng, Ml = (size_t)o->Vl * B * Nl;
    vit_scratch_init(&o->sc, Mg > Ml ? Mg : Ml, d->D, d->mlp, Ng > Nl ? Ng : Nl, d->D / d->heads);
}

static int lejepa_create(objective **out, const jepa_spec *s, const shard_schema *data, int rank,
                         int world, char *err, size_t errlen) {
    jepa_dims d;
    aug_cfg ag, al;
    if (jepa_dims_from_spec(&d, s, err, errlen) || lejepa_check_spec(s, &d, &ag, &al, err, errlen))
        return -1;
    if (data && objective_check_images(data, &d, s->data.train, err, errlen)) return -1;
    lejepa_obj *o = JEPA_MALLOC(sizeof *o);
    objective *b = &o->base;
    objective_base_init(b, &objective_lejepa, s, rank, world);
    o->d = d;
    o->Vg = s->lejepa.global_views;
    o->Vl = s->lejepa.local_views;
    o->V = o->Vg + o->Vl;
    o->Sl = s->lejepa.local_size;
    o->Hp = s->lejepa.proj_hidden;
    o->P = s->lejepa.proj_dim;
    o->lambda = (float)s->sigreg.weight;
    o->ag = ag;
    o->al = al;
    b->m.dims = d;
    b->m.nthreads = rank_threads_apply(s->parallel.threads_per_rank);
    lejepa_table(o);
    lejepa_alloc(o);
    sigreg_init(&o->sg, o->P, s->sigreg.directions, s->sigreg.knots, s->sigreg.t_max, o->V, b->B);
    *out = b;
    return 0;
}

static void lejepa_destroy(objective *b) {
    if (!b) return;
    lejepa_obj *o = (lejepa_obj *)b;
    enc_pass_free(&o->eg);
    if (o->Vl) enc_pass_free(&o->el);
    float *f[] = {o->vg, o->vl, o->feat, o->dfeat, o->h1, o->n1, o->a1, o->m1, o->r1, o->h2,
                  o->n2, o->a2, o->m2, o->r2, o->e, o->de, o->cen, o->ga, o->gn, o->gh};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
    jepa_free(o->moments);
    vit_scratch_free(&o->sc);
    sigreg_free(&o->sg);
    jepa_params_free(&b->m);
    jepa_free(o);
}

/* ------------------------------------------------------------ the step */

/* Every view of this rank's images, view-major: global view v of image i at
 * vg[v*B + i], local view v at vl[(v - Vg)*B + i]. */
static void lejepa_views(lejepa_obj *o, const uint8_t *records, int64_t step) {
    const objective *b = &o->base;
    const jepa_dims *d = &o->d;
    const int B = b->B, V = o->V;
    const size_t rec = (size_t)d->ch * d->img * d->img, nl = (size_t)d->ch * o->Sl * o->Sl;
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < V * B; k++) {
        int v = k / B, i = k % B;
        jepa_rng r;
        rng_init(&r, lejepa_view_key(b->seed, step, (uint64_t)b->rank * B + i, V, v));
        const uint8_t *img = records + (size_t)i * rec;
        if (v < o->Vg)
            aug_view(o->vg + (size_t)k * rec, d->img, img, d->ch, d->img, d->img, &o->ag, b->mean,
                     b->std, &r);
        else
            aug_view(o->vl + (size_t)(k - o->Vg * B) * nl, o->Sl, img, d->ch, d->img, d->img,
                     &o->al, b->mean, b->std, &r);
    }
}

/* feat (M, D) -> e (M, P) through the projector, keeping what backward needs. */
static void proj_forward(lejepa_obj *o, const float *W, int M) {
    const size_t *p = o->pj;
    const int D = o->d.D, Hp = o->Hp;
    linear_forward(o->h1, o->feat, W + p[PJ_W0], W + p[PJ_B0], M, D, Hp);
    layernorm_forward(o->n1, o->m1, o->r1, o->h1, W + p[PJ_LW0], W + p[PJ_LB0], M, Hp);
    gelu_forward(o->a1, o->n1, (size_t)M * Hp);
    linear_forward(o->h2, o->a1, W + p[PJ_W1], W + p[PJ_B1], M, Hp, Hp);
    layernorm_forward(o->n2, o->m2, o->r2, o->h2, W + p[PJ_LW1], W + p[PJ_LB1], M, Hp);
    gelu_forward(o->a2, o->n2, (size_t)M * Hp);
    linear_forward(o->e, o->a2, W + p[PJ_W2], W + p[PJ_B2], M, Hp, o->P);
}

/* de (M, P) -> dfeat (M, D) (written), projector grads into G; m told as
 * each layer's tensors become final (table order: later layers first). */
static void proj_backward(lejepa_obj *o, const float *W, float *G, int M, jepa_model *m) {
    const size_t *p = o->pj;
    const int D = o->d.D, Hp = o->Hp;
    const size_t n = (size_t)M * Hp;
    memset(o->ga, 0, sizeof(float) * n);
    linear_backward(o->ga, G + p[PJ_W2], G + p[PJ_B2], o->de, o->a2, W + p[PJ_W2], M, Hp, o->P);
    jepa_grads_ready(m, p[PJ_W2]);
    memset(o->gn, 0, sizeof(float) * n);
    gelu_backward(o->gn, o->n2, o->ga, n);
    memset(o->gh, 0, sizeof(float) * n);
    layernorm_backward(o->gh, G + p[PJ_LW1], G + p[PJ_LB1], o->gn, o->h2, W + p[PJ_LW1], o->m2,
                       o->r2, M, Hp);
    memset(o->ga, 0, sizeof(float) * n);
    linear_backward(o->ga, G + p[PJ_W1], G + p[PJ_B1], o->gh, o->a1, W + p[PJ_W1], M, Hp, Hp);
    jepa_grads_ready(m, p[PJ_W1]);
    memset(o->gn, 0, sizeof(float) * n);
    gelu_backward(o->gn, o->n1, o->ga, n);
    memset(o->gh, 0, sizeof(float) * n);
    layernorm_backward(o->gh, G + p[PJ_LW0], G + p[PJ_LB0], o->gn, o->h1, W + p[PJ_LW0], o->m1,
                       o->r1, M, Hp);
    memset(o->dfeat, 0, sizeof(float) * M * D);
    linear_backward(o->dfeat, G + p[PJ_W0], G + p[PJ_B0], o->gh, o->feat, W + p[PJ_W0], M, D, Hp);
    jepa_grads_ready(m, p[PJ_W0]);
}

/* The prediction term inv (header comment) of this rank's images; writes
 * de = scale * d inv / d e, the centre's share included (not detached). */
static double inv_loss(lejepa_obj *o, float scale) {
    const int B = o->base.B, V = o->V, Vg = o->Vg, P = o->P;
    const float *e = o->e;
    for (int i = 0; i < B; i++) {
        float *c = o->cen + (size_t)i * P;
        for (int j = 0; j < P; j++) {
            double s = 0.0;
            for (int v = 0; v < Vg; v++) s += e[((size_t)v * B + i) * P + j];
            c[j] = (float)(s / Vg);
        }
    }
    double loss = 0.0;
    const float g = 2.0f * scale / ((float)V * B * P);
    for (int i = 0; i < B; i++) {
        const float *c = o->cen + (size_t)i * P;
        for (int j = 0; j < P; j++) {
            float dc = 0.0f; /* d/dc_ij of the sum over views, times g */
            for (int v = 0; v < V; v++) {
                size_t r = ((size_t)v * B + i) * P + j;
                float diff = e[r] - c[j];
                loss += (double)diff * diff;
                o->de[r] = g * diff;
                dc -= g * diff;
            }
            for (int v = 0; v < Vg; v++) o->de[((size_t)v * B + i) * P + j] += dc / Vg;
        }
    }
    return loss / ((double)V * B * P);
}

static void lejepa_step(objective *b, const uint8_t *records, int64_t step, obj_stats *st) {
    lejepa_obj *o = (lejepa_obj *)b;
    jepa_model *m = &b->m;
    const float *W = m->params;
    float *G = m->grads;
    const int B = b->B, D = o->d.D, Mg = o->Vg * B, Ml = o->Vl * B, M = Mg + Ml;
    const int64_t Ntot = (int64_t)B * b->world;
    double t = prof_now();
    lejepa_views(o, records, step);
    enc_pass_forward(&o->eg, &o->d, &o->L, W, o->vg, Mg, o->sc.attn);
    memcpy(o->feat, o->eg.pooled, sizeof(float) * Mg * D);
    if (Ml) {
        enc_pass_forward(&o->el, &o->d, &o->L, W, o->vl, Ml, o->sc.attn);
        memcpy(o->feat + (size_t)Mg * D, o->el.pooled, sizeof(float) * Ml * D);
    }
    t = prof_lap(PROF_ENCODER, t);
    proj_forward(o, W, M);
    t = prof_lap(PROF_PREDICTOR, t);
    /* SIGReg of the global batch, one group per view: local sums, one all-reduce */
    jepa_rng r;
    rng_init(&r, lejepa_dirs_key(b->seed, step));
    sigreg_draw(&o->sg, &r);
    sigreg_accumulate(&o->sg, o->e, B);
    if (b->world > 1) /* world 1 stays local even under mpirun (a test's reference) */
        comm_sum_doubles(o->sg.ecf, (size_t)o->V * 2 * o->sg.ndir * o->sg.nknots);
    double sig = sigreg_loss(&o->sg, Ntot);
    double inv = inv_loss(o, 1.0f - o->lambda);
    if (st) {
        st->loss = (1.0 - o->lambda) * inv + o->lambda * sig;
        st->stat[0] = col_std_mean_sum(o->e, M, o->P, b->world > 1 ? comm_sum_doubles : NULL, o->moments);
        st->stat[1] = sig;
        st->stat[2] = inv;
    }
    /* backward: SIGReg (the loop averages over ranks, each rank's rows hold
     * their exact share of the global gradient: lambda * W, sigreg.h), the
     * projector, the local pass, then the global pass, which tells m */
    memset(G, 0, sizeof(float) * m->nparams);
    sigreg_backward(&o->sg, o->de, o->e, B, Ntot, o->lambda * (float)b->world);
    t = prof_lap(PROF_LOSS, t);
    proj_backward(o, W, G, M, m);
    t = prof_lap(PROF_BACK_PRED, t);
    if (Ml)
        enc_pass_backward(&o->el, &o->d, &o->L, W, G, &o->sc, o->dfeat + (size_t)Mg * D, Ml, NULL);
    enc_pass_backward(&o->eg, &o->d, &o->L, W, G, &o->sc, o->dfeat, Mg, m);
    prof_lap(PROF_BACK_ENC, t);
}

/* ------------------------------------------------------------ evaluation */

/* The backbone (encoder, not projector) through the image evaluation; the
 * evaluation runs its own forward passes (eval_images.c). */
static int lejepa_evaluate(objective *b, const jepa_spec *s, obj_eval *out, char *err,
                           size_t errlen) {
    lejepa_obj *o = (lejepa_obj *)b;
    image_encoder e = {&o->d, &o->L, b->m.params, b->mean, b->std, s->eval.pool_blocks, b->B,
                       b->export_dir};
    return eval_images(s, &e, "lejepa", out, err, errlen);
}

const objective_ops objective_lejepa = {
    .name = "lejepa",
    .stat_names = lejepa_stats,
    .collapse = {"emb_std", OBJ_COLLAPSE_FRAC},
    .data_hint = "pack one with jepa-shard pack; scripts/pack-fmnist.sh packs Fashion-MNIST",
    .hash_keys = lejepa_keys,
    .eval_labels = 1,
    .create = lejepa_create,
    .destroy = lejepa_destroy,
    .data_stats = objective_image_stats,
    .step = lejepa_step,
    .after_update = NULL,
    .evaluate = lejepa_evaluate,
};
