/* obj_world.c - the world-model objective's networks and training step
 * (model and loss: obj_world.h). Data: trajectory records with fields
 * frames u8 (T, C, H, W), actions f32 (T-1, A), state f32 (T, S) (`jepa-world
 * gen`); state is never read here, only by the evaluation. Each step takes
 * one window of H+1 frames per episode, its start drawn from (seed, step,
 * global record index), so W ranks with B/W episodes each run the step of one
 * process with B. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "comm.h"
#include "data_kind.h"
#include "obj_world.h"
#include "prof.h"
#include "rank_threads.h"

/* sigreg first: the headline figure (proj_std: per-dim std of the projector
 * output before its BatchNorm, averaged over dims: the collapse watch) */
static const char *const world_stats[] = {"sigreg", "loss_tf", "loss_ro", "proj_std", NULL};
static const char *const world_keys[] = {
    "world.history", "world.rollout", "world.rollout_weight", "world.embed_dim",
    "world.action_scale", "world.stopgrad_target", "sigreg.weight", "sigreg.directions",
    "sigreg.knots", "sigreg.t_max", NULL,
};

/* ------------------------------------------------------------ the data */
/* the episode's fields (data_kind.h: the rule jepa-launch checks too) */
static int world_check_data(world_obj *o, const shard_schema *sc, const jepa_spec *s, char *err,
                            size_t errlen) {
    const char *dir = s->data.train;
    int idx[DATA_EPISODE_NFIELDS]; /* frames, actions, state */
    for (int k = 0; k < DATA_EPISODE_NFIELDS; k++) {
        const data_field_need *need = &data_episode_fields[k];
        if ((idx[k] = data_field_find(sc, need)) < 0) {
            snprintf(err, errlen, "%s: objective world needs a field '%s' (%s, %u dims): a data set "
                     "written by jepa-world gen", dir, need->name, shard_dtype_name(need->dtype), need->ndim);
            return -1;
        }
    }
    int fi = idx[0], ai = idx[1], si = idx[2];
    const shard_field *f = &sc->fields[fi], *a = &sc->fields[ai], *st = &sc->fields[si];
    if ((int)f->shape[1] != o->d.ch || (int)f->shape[2] != o->d.img || (int)f->shape[3] != o->d.img) {
        snprintf(err, errlen, "%s: frames are %ux%ux%u but model.img_size/channels say %dx%dx%d", dir,
                 f->shape[1], f->shape[2], f->shape[3], o->d.ch, o->d.img, o->d.img);
        return -1;
    }
    o->T = (int)f->shape[0];
    o->A = (int)a->shape[1];
    o->S = (int)st->shape[1];
    if (o->A < 1 || o->S < 1) {
        snprintf(err, errlen, "%s: actions have %d and states %d components (need >= 1)", dir, o->A,
                 o->S);
        return -1;
    }
    if ((int)a->shape[0] != o->T - 1 || (int)st->shape[0] != o->T) {
        snprintf(err, errlen, "%s: %d frames but %u actions and %u states per episode", dir, o->T,
                 a->shape[0], st->shape[0]);
        return -1;
    }
    if (o->W > o->T) {
        snprintf(err, errlen, "world.history: %d needs windows of %d frames, the episodes of %s "
                 "have %d", o->H, o->W, dir, o->T);
        return -1;
    }
    o->off_frames = shard_schema_field_offset(sc, fi);
    o->off_actions = shard_schema_field_offset(sc, ai);
    o->off_state = shard_schema_field_offset(sc, si);
    o->frame_bytes = (size_t)o->d.ch * o->d.img * o->d.img;
    o->rec_bytes = shard_schema_record_bytes(sc);
    return 0;
}

/* ------------------------------------------------------------ the table */
static void world_table(world_obj *o) {
    const jepa_dims *d = &o->d;
    jepa_model *m = &o->base.m;
    int pmlp = d->mlp / d->D * d->Dp;
    int cap = enc_tensor_count(d) + 13 + BLK_N * d->pdepth;
    m->tensors = JEPA_MALLOC(sizeof(jepa_tensor) * cap);
    table_builder tb = {m->tensors, 0, cap, 0};
    enc_table_add(&tb, d, &o->L);
    o->proj_w = table_add(&tb, "proj.w", o->E, d->D, 1);
    o->proj_b = table_add(&tb, "proj.b", 1, o->E, 0);
    o->bn_mean = table_add(&tb, "proj.bn.mean", 1, o->E, 0);
    o->bn_var = table_add(&tb, "proj.bn.var", 1, o->E, 0);
    o->in_w = table_add(&tb, "wpred.in.w", d->Dp, o->E, 1);
    o->in_b = table_add(&tb, "wpred.in.b", 1, d->Dp, 0);
    o->act_w = table_add(&tb, "wpred.act.w", d->Dp, o->A, 1);
    o->act_b = table_add(&tb, "wpred.act.b", 1, d->Dp, 0);
    o->time = table_add(&tb, "wpred.time", o->H, d->Dp, 0);
    for (int l = 0; l < d->pdepth; l++)
        table_add_block(&tb, "wpred", l, d->Dp, pmlp, o->blk + (size_t)l * BLK_N);
    o->norm_w = table_add(&tb, "wpred.norm.w", 1, d->Dp, 0);
    o->norm_b = table_add(&tb, "wpred.norm.b", 1, d->Dp, 0);
    o->out_w = table_add(&tb, "wpred.out.w", o->E, d->Dp, 1);
    o->out_b = table_add(&tb, "wpred.out.b", 1, o->E, 0);
    JEPA_ASSERT(tb.n == cap);
    m->ntensors = cap;
    m->nparams = tb.off;
    m->nenc = 0; /* no EMA target: SIGReg prevents collapse */
    jepa_params_alloc(m);
    world_init_params(o);
}

void world_init_params(world_obj *o) {
    jepa_model *m = &o->base.m;
    vit_init_params(m, o->base.seed);
    for (int c = 0; c < o->E; c++) m->params[o->bn_var + c] = 1.0f;
}

void wpass_init(wpass *p, const world_obj *o, int B, int T) {
    const jepa_dims *d = &o->d;
    memset(p, 0, sizeof *p);
    p->T = T;
    vit_acts_init(&p->acts, d->pdepth, B, T, d->Dp, d->mlp / d->D * d->Dp, d->pheads, 1);
    p->acts.causal = 1;
    size_t M = (size_t)B * T;
    p->u = JEPA_MALLOC(sizeof(float) * M * o->E);
    p->a = JEPA_MALLOC(sizeof(float) * M * o->A);
    p->hn = JEPA_MALLOC(sizeof(float) * M * d->Dp);
    p->hm = JEPA_MALLOC(sizeof(float) * M);
    p->hr = JEPA_MALLOC(sizeof(float) * M);
    p->out = JEPA_MALLOC(sizeof(float) * M * o->E);
    p->dout = JEPA_MALLOC(sizeof(float) * M * o->E);
    p->du = JEPA_MALLOC(sizeof(float) * M * o->E);
}

void wpass_free(wpass *p) {
    vit_acts_free(&p->acts);
    float *f[] = {p->u, p->a, p->hn, p->hm, p->hr, p->out, p->dout, p->du};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
}

static int world_create(objective **out, const jepa_spec *s, const shard_schema *data, int rank,
                        int world, char *err, size_t errlen) {
    world_obj *o = JEPA_MALLOC(sizeof *o);
    o->random_done = 0;
    objective *b = &o->base;
    if (jepa_dims_from_spec(&o->d, s, err, errlen)) goto fail;
    o->H = s->world.history;
    o->R = s->world.rollout;
    o->W = o->H + 1;
    o->E = s->world.embed_dim;
    o->Dp = o->d.Dp;
    if (o->R > 0 && o->R > o->H - 1) { /* spec_validate refuses it first (spec_cross.c) */
        snprintf(err, errlen, "world.rollout: %d steps need world.history >= %d (got %d)", o->R,
                 o->R + 1, o->H);
        goto fail;
    }
    if (o->d.depth > 64 || o->d.pdepth > 64) {
        snprintf(err, errlen, "model.depth/pred_depth: at most 64 blocks");
        goto fail;
    }
    if (!data) {
        snprintf(err, errlen, "objective world needs its data set's schema");
        goto fail;
    }
    if (world_check_data(o, data, s, err, errlen)) goto fail;
    objective_base_init(b, &objective_world, s, rank, world);
    o->act_scale = (float)s->world.action_scale;
    o->lambda = (float)s->sigreg.weight;
    o->ro_weight = (float)s->world.rollout_weight;
    o->stopgrad = s->world.stopgrad_target;
    jepa_model *m = &b->m;
    m->dims = o->d;
    m->nthreads = rank_threads_apply(s->parallel.threads_per_rank);
    world_table(o);
    int B = b->B, nW = B * o->W, N = (o->d.img / o->d.patch) * (o->d.img / o->d.patch);
    o->maxB = B;
    enc_pass_init(&o->enc, &o->d, nW, o->d.img, 1);
    o->frames = JEPA_MALLOC(sizeof(float) * nW * o->frame_bytes);
    o->y = JEPA_MALLOC(sizeof(float) * nW * o->E);
    o->mu = JEPA_MALLOC(sizeof(float) * o->E);
    o->rstd = JEPA_MALLOC(sizeof(float) * o->E);
    o->var = JEPA_MALLOC(sizeof(float) * o->E);
    o->sums = JEPA_MALLOC(sizeof(double) * (4 * o->E + 1));
    o->z = JEPA_MALLOC(sizeof(float) * nW * o->E);
    o->dz = JEPA_MALLOC(sizeof(float) * nW * o->E);
    o->zt = JEPA_MALLOC(sizeof(float) * nW * o->E);
    o->dzt = JEPA_MALLOC(sizeof(float) * nW * o->E);
    o->dpooled = JEPA_MALLOC(sizeof(float) * nW * o->d.D);
    o->g = JEPA_MALLOC(sizeof(float) * B * o->W * o->E);
    o->pdx = JEPA_MALLOC(sizeof(float) * B * o->H * o->Dp);
    o->pp = JEPA_MALLOC(sizeof(wpass) * (o->R + 1));
    for (int r = 0; r <= o->R; r++) wpass_init(&o->pp[r], o, B, r == 0 ? o->H : r + 1);
    size_t Me = (size_t)nW * N, Mp = (size_t)B * o->H;
    int pmlp = o->d.mlp / o->d.D * o->d.Dp;
    int hd = o->d.D / o->d.heads > o->d.Dp / o->d.pheads ? o->d.D / o->d.heads : o->d.Dp / o->d.pheads;
    vit_scratch_init(&o->sc, Me > Mp ? Me : Mp, o->d.D > o->d.Dp ? o->d.D : o->d.Dp,
                     o->d.mlp > pmlp ? o->d.mlp : pmlp, N > o->H ? N : o->H, hd);
    o->sig_dirs = s->sigreg.directions;
    o->sig_knots = s->sigreg.knots;
    o->sig_tmax = s->sigreg.t_max;
    sigreg_init(&o->sg, o->E, o->sig_dirs, o->sig_knots, o->sig_tmax, o->W, B);
    *out = b;
    return 0;
fail:
    jepa_free(o);
    return -1;
}

static void world_destroy(objective *b) {
    if (!b) return;
    world_obj *o = (world_obj *)b;
    enc_pass_free(&o->enc);
    for (int r = 0; r <= o->R; r++) wpass_free(&o->pp[r]);
    float *f[] = {o->frames, o->y, o->mu, o->rstd, o->var, o->z, o->dz, o->zt, o->dzt,
                  o->dpooled, o->g, o->pdx};
    jepa_free(o->sums);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
    jepa_free(o->pp);
    vit_scratch_free(&o->sc);
    sigreg_free(&o->sg);
    jepa_params_free(&b->m);
    jepa_free(o);
}

/* Mean and std of the frames of the first (up to) 2000 episodes: a fixed,
 * documented subset, so the statistics do not depend on the data set size. */
static int world_data_stats(objective *b, const char *dir, char *err, size_t errlen) {
    world_obj *o = (world_obj *)b;
    shard_dataset *ds = NULL;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    uint64_t n = shard_dataset_records(ds);
    n = n < 2000 ? n : 2000;
    uint8_t *rec = JEPA_MALLOC(shard_dataset_record_bytes(ds));
    double s1 = 0.0, s2 = 0.0, cnt = 0.0;
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        rc = shard_dataset_read_record(ds, i, rec, NULL, NULL, 0, err, errlen);
        const uint8_t *f = rec + o->off_frames;
        for (size_t k = 0; rc == 0 && k < (size_t)o->T * o->frame_bytes; k++) {
            double v = f[k] / 255.0;
            s1 += v;
            s2 += v * v;
        }
        cnt += (double)o->T * o->frame_bytes;
    }
    jepa_free(rec);
    shard_dataset_close(ds);
    if (rc) return -1;
    double mu = s1 / cnt, var = s2 / cnt - mu * mu;
    b->mean = (float)mu;
    b->std = (float)sqrt(var > 1e-12 ? var : 1e-12);
    return 0;
}

/* ---------------------------------------------------------- predictor */
void world_pred_forward(world_obj *o, const float *W, wpass *p, int B) {
    const int T = p->T, M = B * T, Dp = o->Dp, E = o->E;
    float *x0 = vit_res(&p->acts, 0);
    linear_forward(x0, p->u, W + o->in_w, W + o->in_b, M, E, Dp);
    ops_sgemm(0, 1, M, Dp, o->A, 1.0f, p->a, o->A, W + o->act_w, o->A, 1.0f, x0, Dp);
    const float *ab = W + o->act_b, *tm = W + o->time;
    for (int i = 0; i < M; i++) {
        float *x = x0 + (size_t)i * Dp;
        const float *e = tm + (size_t)(i % T) * Dp;
        for (int c = 0; c < Dp; c++) x[c] += ab[c] + e[c];
    }
    vit_stack_forward(&p->acts, W, o->blk, B, T, o->sc.attn);
    layernorm_forward(p->hn, p->hm, p->hr, vit_res(&p->acts, o->d.pdepth), W + o->norm_w,
                      W + o->norm_b, M, Dp);
    memcpy(p->out, p->u, sizeof(float) * M * E); /* residual: zhat = u + head */
    const float *ob = W + o->out_b;
    for (int i = 0; i < M; i++)
        for (int c = 0; c < E; c++) p->out[(size_t)i * E + c] += ob[c];
    ops_sgemm(0, 1, M, E, Dp, 1.0f, p->hn, Dp, W + o->out_w, Dp, 1.0f, p->out, E);
}

void world_pred_backward(world_obj *o, const float *W, float *G, wpass *p, int B) {
    const int T = p->T, M = B * T, Dp = o->Dp, E = o->E;
    float *dhn = o->sc.datty; /* free until the block stack runs */
    float *dx = o->pdx;       /* d(stack input): must outlive the stack's scratch */
    JEPA_ASSERT((size_t)M <= o->sc.Mmax && M <= o->maxB * o->H);
    memcpy(p->du, p->dout, sizeof(float) * M * E); /* through the residual */
    memset(dhn, 0, sizeof(float) * M * Dp);
    linear_backward(dhn, G + o->out_w, G + o->out_b, p->dout, p->hn, W + o->out_w, M, Dp, E);
    memset(dx, 0, sizeof(float) * M * Dp);
    layernorm_backward(dx, G + o->norm_w, G + o->norm_b, dhn, vit_res(&p->acts, o->d.pdepth),
                       W + o->norm_w, p->hm, p->hr, M, Dp);
    vit_stack_backward(NULL, &p->acts, &o->sc, W, G, o->blk, B, T, dx);
    linear_backward(p->du, G + o->in_w, G + o->in_b, dx, p->u, W + o->in_w, M, E, Dp);
    linear_backward(NULL, G + o->act_w, G + o->act_b, dx, p->a, W + o->act_w, M, o->A, Dp);
    float *gt = G + o->time;
    for (int i = 0; i < M; i++) {
        const float *g = dx + (size_t)i * Dp;
        float *e = gt + (size_t)(i % T) * Dp;
        for (int c = 0; c < Dp; c++) e[c] += g[c];
    }
}

/* ------------------------------------------------------------ the step */
void world_embed(world_obj *o, const float *W, const float *frames, int n, float *z) {
    const int E = o->E;
    enc_pass_forward(&o->enc, &o->d, &o->L, W, frames, n, o->sc.attn);
    linear_forward(z, o->enc.pooled, W + o->proj_w, W + o->proj_b, n, o->d.D, E);
    const float *rm = W + o->bn_mean, *rv = W + o->bn_var;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < E; c++)
            z[(size_t)i * E + c] = (z[(size_t)i * E + c] - rm[c]) / sqrtf(rv[c] + WORLD_BN_EPS);
}

/* Training embedding: the BatchNorm with the statistics of the global batch
 * (per-dim sums over this rank's n rows, one all-reduce of 2E doubles). */
static void world_embed_train(world_obj *o, const float *W, int n) {
    const int E = o->E;
    enc_pass_forward(&o->enc, &o->d, &o->L, W, o->frames, n, o->sc.attn);
    linear_forward(o->y, o->enc.pooled, W + o->proj_w, W + o->proj_b, n, o->d.D, E);
    double *s1 = o->sums, *s2 = o->sums + E, N;
    col_moments_sum(o->sums, o->y, n, E, comm_sum_doubles);
    N = o->sums[2 * E];
    for (int c = 0; c < E; c++) {
        double mu = s1[c] / N, var = s2[c] / N - mu * mu;
        var = var > 0 ? var : 0;
        o->mu[c] = (float)mu;
        o->var[c] = (float)var;
        o->rstd[c] = (float)(1.0 / sqrt(var + WORLD_BN_EPS));
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < E; c++)
            o->z[(size_t)i * E + c] = (o->y[(size_t)i * E + c] - o->mu[c]) * o->rstd[c];
}

/* BatchNorm backward over the global batch: dy = rstd (dz - mean(dz) -
 * z mean(dz z)), the means over every rank's rows (one all-reduce); dz is
 * each rank's share scaled as the trainer's average expects. In place. */
static void world_bn_backward(world_obj *o, float *dz, int n) {
    const int E = o->E;
    double *a = o->sums + 2 * E, *b = o->sums + 3 * E;
    memset(a, 0, sizeof(double) * 2 * E);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < E; c++) {
            double g = dz[(size_t)i * E + c];
            a[c] += g;
            b[c] += g * o->z[(size_t)i * E + c];
        }
    comm_sum_doubles(a, (size_t)2 * E);
    double N = (double)n * o->base.world;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < E; c++) {
            float *g = dz + (size_t)i * E + c;
            *g = (float)(o->rstd[c] * (*g - a[c] / N - o->z[(size_t)i * E + c] * b[c] / N));
        }
}

/* The running statistics follow the step's batch statistics (never trained:
 * their gradients are zero, so AdamW leaves them alone). Over the first
 * 1/momentum steps they are the plain average of the steps so far (step 0
 * replaces the init): the init (0, 1) is far from the projector's statistics
 * (variance ~1e-4), and 0.95^k forgets it only after hundreds of steps. */
static void world_after_update(objective *b, const sched_values *sv) {
    (void)sv;
    world_obj *o = (world_obj *)b;
    float *rm = b->m.params + o->bn_mean, *rv = b->m.params + o->bn_var;
    float k = fmaxf((float)WORLD_BN_MOMENTUM, 1.0f / (float)(o->step + 1));
    for (int c = 0; c < o->E; c++) {
        rm[c] = (1 - k) * rm[c] + k * o->mu[c];
        rv[c] = (1 - k) * rv[c] + k * o->var[c];
    }
}

/* This rank's windows: frames (B*W) normalised, actions of the window
 * scaled into pass 0, from (seed, step, global episode index). */
static void world_batch(world_obj *o, const uint8_t *records, int64_t step) {
    objective *b = &o->base;
    float sa = 1.0f / (255.0f * b->std), sb = -b->mean / b->std;
    for (int i = 0; i < b->B; i++) {
        const uint8_t *rec = records + (size_t)i * o->rec_bytes;
        jepa_rng r;
        rng_init(&r, rng_key(b->seed ^ 0x3d0a11ce5ULL, (uint64_t)step, (uint64_t)b->rank * b->B + i));
        int s0 = (int)rng_below(&r, (uint32_t)(o->T - o->W + 1));
        const uint8_t *f = rec + o->off_frames + (size_t)s0 * o->frame_bytes;
        float *dst = o->frames + (size_t)i * o->W * o->frame_bytes;
        for (size_t k = 0; k < (size_t)o->W * o->frame_bytes; k++) dst[k] = f[k] * sa + sb;
        const uint8_t *a = rec + o->off_actions + (size_t)s0 * o->A * 4;
        float *pa = o->pp[0].a + (size_t)i * o->H * o->A;
        for (int k = 0; k < o->H * o->A; k++) {
            float v;
            memcpy(&v, a + 4 * k, 4); /* f32 little-endian, as shard/ stores it */
            pa[k] = v * o->act_scale;
        }
    }
}

/* squared error sum over rows of (pred - target), E wide */
static double sq_err(const float *p, const float *t, int E) {
    double s = 0.0;
    for (int c = 0; c < E; c++) {
        double d = (double)p[c] - t[c];
        s += d * d;
    }
    return s;
}

/* Forward of the teacher-forcing pass and the R rollout passes. */
static void world_forward(world_obj *o, const float *Wt, double *tf, double *ro) {
    const int B = o->base.B, E = o->E, H = o->H, Wn = o->W;
    wpass *p0 = &o->pp[0];
    for (int i = 0; i < B; i++)
        memcpy(p0->u + (size_t)i * H * E, o->z + (size_t)i * Wn * E, sizeof(float) * H * E);
    world_pred_forward(o, Wt, p0, B);
    *tf = 0.0;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < H; t++)
            *tf += sq_err(p0->out + ((size_t)i * H + t) * E, o->z + ((size_t)i * Wn + t + 1) * E, E);
    *tf /= (double)B * H * E;
    *ro = 0.0;
    for (int r = 1; r <= o->R; r++) {
        wpass *p = &o->pp[r];
        const int T = r + 1;
        for (int i = 0; i < B; i++) {
            float *u = p->u + (size_t)i * T * E;
            memcpy(u, o->z + (size_t)i * Wn * E, sizeof(float) * E);
            for (int j = 1; j <= r; j++) { /* zhat_j: pass j-1's output at position j-1 */
                const wpass *q = &o->pp[j - 1];
                memcpy(u + (size_t)j * E, q->out + ((size_t)i * q->T + j - 1) * E, sizeof(float) * E);
            }
            memcpy(p->a + (size_t)i * T * o->A, p0->a + (size_t)i * H * o->A, sizeof(float) * T * o->A);
        }
        world_pred_forward(o, Wt, p, B);
        for (int i = 0; i < B; i++)
            *ro += sq_err(p->out + ((size_t)i * T + r) * E, o->z + ((size_t)i * Wn + r + 1) * E, E);
    }
    if (o->R) *ro /= (double)B * E * o->R;
}

/* d/d(pred) of scale * ||pred - target||^2 into dp; minus that into dt (targets). */
static void sq_err_grad(float *dp, float *dt, const float *p, const float *t, int E, float scale) {
    for (int c = 0; c < E; c++) {
        float g = 2.0f * scale * (p[c] - t[c]);
        dp[c] += g;
        if (dt) dt[c] -= g;
    }
}

/* Backward through the rollout passes (last first: each fed-back
 * prediction collects the gradients of every later pass before its own
 * pass runs backward), then the teacher-forcing pass; into o->dz. */
static void world_backward_pred(world_obj *o, const float *Wt, float *G) {
    const int B = o->base.B, E = o->E, H = o->H, Wn = o->W;
    memset(o->g, 0, sizeof(float) * B * Wn * E);
    for (int r = o->R; r >= 1; r--) {
        wpass *p = &o->pp[r];
        const int T = r + 1;
        float sc = o->ro_weight / ((float)B * E * o->R);
        memset(p->dout, 0, sizeof(float) * B * T * E);
        for (int i = 0; i < B; i++) {
            float *dp = p->dout + ((size_t)i * T + r) * E;
            sq_err_grad(dp, o->stopgrad ? NULL : o->dz + ((size_t)i * Wn + r + 1) * E,
                        p->out + ((size_t)i * T + r) * E, o->z + ((size_t)i * Wn + r + 1) * E, E, sc);
            const float *g = o->g + ((size_t)i * Wn + r + 1) * E;
            for (int c = 0; c < E; c++) dp[c] += g[c];
        }
        world_pred_backward(o, Wt, G, p, B);
        for (int i = 0; i < B; i++) {
            const float *du = p->du + (size_t)i * T * E;
            float *dz0 = o->dz + (size_t)i * Wn * E;
            for (int c = 0; c < E; c++) dz0[c] += du[c];
            for (int j = 1; j <= r; j++) {
                float *g = o->g + ((size_t)i * Wn + j) * E;
                for (int c = 0; c < E; c++) g[c] += du[(size_t)j * E + c];
            }
        }
    }
    wpass *p0 = &o->pp[0];
    float sc = 1.0f / ((float)B * H * E);
    memset(p0->dout, 0, sizeof(float) * B * H * E);
    for (int i = 0; i < B; i++)
        for (int t = 0; t < H; t++) {
            float *dp = p0->dout + ((size_t)i * H + t) * E;
            sq_err_grad(dp, o->stopgrad ? NULL : o->dz + ((size_t)i * Wn + t + 1) * E,
                        p0->out + ((size_t)i * H + t) * E, o->z + ((size_t)i * Wn + t + 1) * E, E, sc);
            if (t == 0) { /* zhat_1 is pass 0's output at position 0 */
                const float *g = o->g + ((size_t)i * Wn + 1) * E;
                for (int c = 0; c < E; c++) dp[c] += g[c];
            }
        }
    world_pred_backward(o, Wt, G, p0, B);
    for (int i = 0; i < B; i++)
        for (int t = 0; t < H; t++) {
            const float *du = p0->du + ((size_t)i * H + t) * E;
            float *dz = o->dz + ((size_t)i * Wn + t) * E;
            for (int c = 0; c < E; c++) dz[c] += du[c];
        }
}

/* (B, W, E) <-> (W, B, E): SIGReg takes one group per time step */
static void transpose_bw(float *dst, const float *src, int B, int W, int E, int add) {
    for (int i = 0; i < B; i++)
        for (int t = 0; t < W; t++) {
            const float *s = src + ((size_t)i * W + t) * E;
            float *d = dst + ((size_t)t * B + i) * E;
            for (int c = 0; c < E; c++) d[c] = add ? d[c] + s[c] : s[c];
        }
}

static void transpose_wb_add(float *dst, const float *src, int B, int W, int E) {
    for (int t = 0; t < W; t++)
        for (int i = 0; i < B; i++) {
            const float *s = src + ((size_t)t * B + i) * E;
            float *d = dst + ((size_t)i * W + t) * E;
            for (int c = 0; c < E; c++) d[c] += s[c];
        }
}

static void world_step(objective *b, const uint8_t *records, int64_t step, obj_stats *st) {
    world_obj *o = (world_obj *)b;
    jepa_model *m = &b->m;
    const float *Wt = m->params;
    float *G = m->grads;
    const int B = b->B, nW = B * o->W, E = o->E;
    const int64_t Ntot = (int64_t)B * b->world;
    o->step = step;
    double t = prof_now();
    world_batch(o, records, step);
    world_embed_train(o, Wt, nW);
    t = prof_lap(PROF_ENCODER, t);
    /* SIGReg of the global batch: local cos/sin sums, one all-reduce */
    jepa_rng r;
    rng_init(&r, rng_key(b->seed, 0x516e, (uint64_t)step));
    sigreg_draw(&o->sg, &r);
    transpose_bw(o->zt, o->z, B, o->W, E, 0);
    sigreg_accumulate(&o->sg, o->zt, B);
    comm_sum_doubles(o->sg.ecf, (size_t)o->W * 2 * o->sg.ndir * o->sg.nknots);
    double sig = sigreg_loss(&o->sg, Ntot), tf, ro;
    t = prof_lap(PROF_LOSS, t);
    world_forward(o, Wt, &tf, &ro);
    t = prof_lap(PROF_PREDICTOR, t);
    if (st) {
        st->loss = tf + o->ro_weight * ro + o->lambda * sig;
        st->stat[0] = sig;
        st->stat[1] = tf;
        st->stat[2] = ro;
        st->stat[3] = col_std_mean_sum(o->y, nW, E, comm_sum_doubles, o->sums); /* the global batch's */
    }
    /* backward: predictor passes, then SIGReg, projector, encoder */
    memset(G, 0, sizeof(float) * m->nparams);
    memset(o->dz, 0, sizeof(float) * nW * E);
    world_backward_pred(o, Wt, G);
    jepa_grads_ready(m, o->in_w);
    t = prof_lap(PROF_BACK_PRED, t);
    memset(o->dzt, 0, sizeof(float) * nW * E);
    /* the trainer averages over ranks; each rank's rows get their exact
     * share of the global SIGReg gradient, hence lambda * W (sigreg.h) */
    sigreg_backward(&o->sg, o->dzt, o->zt, B, Ntot, o->lambda * b->world);
    transpose_wb_add(o->dz, o->dzt, B, o->W, E);
    world_bn_backward(o, o->dz, nW);
    memset(o->dpooled, 0, sizeof(float) * nW * o->d.D);
    linear_backward(o->dpooled, G + o->proj_w, G + o->proj_b, o->dz, o->enc.pooled,
                    Wt + o->proj_w, nW, o->d.D, E);
    jepa_grads_ready(m, o->proj_w);
    enc_pass_backward(&o->enc, &o->d, &o->L, Wt, G, &o->sc, o->dpooled, nW, m);
    prof_lap(PROF_BACK_ENC, t);
}

const objective_ops objective_world = {
    .name = "world",
    .stat_names = world_stats,
    /* the spread before the BatchNorm: the BatchNorm rescales whatever is
     * left of it, so an encoder collapsing shows here, not after it */
    .collapse = {"proj_std", OBJ_COLLAPSE_FRAC},
    .data_hint = "generate one with jepa-world gen; scripts/world.sh makes data/tworoom",
    .records_name = "windows", /* one window of world.history + 1 frames per episode and step */
    .hash_keys = world_keys,
    .create = world_create,
    .destroy = world_destroy,
    .data_stats = world_data_stats,
    .step = world_step,
    .after_update = world_after_update,
    .evaluate = world_evaluate,
};
