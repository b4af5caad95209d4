/* plan_world.c - a trained world model (objective "world", obj_world.h) as a
 * plan_model: the run is loaded as jepa-eval loads it, frames are embedded
 * with the BatchNorm's running statistics, and a population of candidate
 * action sequences is rolled out together, one predictor forward (one GEMM
 * per layer over every candidate) per step.
 *
 * Rollouts continue the observed context: the last (up to) H observed
 * embeddings with the actions taken from them, the newest frame's action
 * being the candidate's first. As in world_eval.c the window grows to H
 * tokens, then slides (oldest token dropped, prediction appended), so every
 * window the predictor sees has the relative time positions of training.
 * H is world.history, or fewer (plan.window): the cost of a rollout step is
 * proportional to it, and the Two-Room dynamics are Markov in the frame. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "gen.h"
#include "obj_world.h"
#include "plan.h"

struct plan_wm {
    objective *obj;
    world_obj *o;
    int H, E, A, samples; /* H: the window, at most world.history tokens */
    wpass *pass;    /* [H]: pass t runs `samples` sequences of t + 1 tokens */
    float *frame;   /* (ch * side * side) one normalised frame */
    float *ctx_z;   /* (H, E) observed embeddings, oldest first */
    float *ctx_a;   /* (H, A) scaled actions taken from them */
    int nctx;       /* frames in the context */
    float *wz, *wa; /* (samples, H, E), (samples, H, A): each candidate's window */
};

/* The model is built for the records of the world it plans in, as jepa-world
 * gen writes them (world_gen_schema), not from data.train's manifest: the
 * checkpoint and the world are all planning reads (a run whose data moved
 * away plans). Episodes of world.history + 1 frames, the fewest the
 * objective takes: their length shapes no parameter. An action dimension
 * other than the training data's fails as the checkpoint's shape. */
static int wm_create(objective **obj, const char *run, const jepa_spec *s, const world *w, char *err,
                     size_t errlen) {
    const objective_ops *ops = objective_find(s->objective);
    if (ops != &objective_world) {
        snprintf(err, errlen, "%s: objective %s is not a world model (jepa-plan plans with runs of "
                 "objective: world)", run, s->objective);
        return -1;
    }
    shard_schema sc;
    world_gen_schema(w, (uint32_t)s->world.history + 1, &sc);
    if (ops->create(obj, s, &sc, comm_rank(), comm_world(), err, errlen)) return -1;
    char ck[2 * SPEC_STR_MAX + 64];
    int latest = ckpt_dir_run_checkpoint(run, ck, sizeof ck, err, errlen);
    if (latest < 0) return -1;
    if (latest && comm_rank() == 0) /* the finished run's, else the newest one RUN/latest names */
        fprintf(stderr, "jepa-plan: %s/checkpoint.bin absent (run not finished): using %s\n", run, ck);
    ckpt_meta want, meta;
    train_meta_init(&want, s, 0);
    want.train_hash = 0; /* any training settings: only the model must match */
    if (ckpt_load(ck, &(*obj)->m, &want, &meta, err, errlen)) return -1;
    (*obj)->mean = meta.norm_mean;
    (*obj)->std = meta.norm_std;
    return 0;
}

plan_wm *plan_wm_from_objective(objective *obj, int samples, int window) {
    JEPA_ASSERT(obj->ops == &objective_world && samples >= 1 && window >= 0);
    plan_wm *m = JEPA_MALLOC(sizeof *m);
    world_obj *o = (world_obj *)obj;
    m->obj = obj;
    m->o = o;
    m->H = window > 0 && window < o->H ? window : o->H;
    m->E = o->E;
    m->A = o->A;
    m->samples = samples;
    m->pass = JEPA_MALLOC(sizeof(wpass) * m->H);
    for (int t = 0; t < m->H; t++) wpass_init(&m->pass[t], o, samples, t + 1);
    m->frame = JEPA_MALLOC(sizeof(float) * o->frame_bytes);
    m->ctx_z = JEPA_MALLOC(sizeof(float) * m->H * m->E);
    m->ctx_a = JEPA_MALLOC(sizeof(float) * m->H * m->A);
    m->wz = JEPA_MALLOC(sizeof(float) * samples * m->H * m->E);
    m->wa = JEPA_MALLOC(sizeof(float) * samples * m->H * m->A);
    return m;
}

int plan_wm_load(plan_wm **out, const char *run, const jepa_spec *s, const world *w, int samples,
                 int window, char *err, size_t errlen) {
    objective *obj = NULL;
    *out = NULL;
    if (wm_create(&obj, run, s, w, err, errlen)) {
        if (obj) obj->ops->destroy(obj);
        return -1;
    }
    *out = plan_wm_from_objective(obj, samples, window);
    return 0;
}

void plan_wm_free(plan_wm *m) {
    if (!m) return;
    for (int t = 0; t < m->H; t++) wpass_free(&m->pass[t]);
    jepa_free(m->pass);
    float *f[] = {m->frame, m->ctx_z, m->ctx_a, m->wz, m->wa};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) jepa_free(f[i]);
    m->obj->ops->destroy(m->obj);
    jepa_free(m);
}

void plan_wm_randomize(plan_wm *m) { world_init_params(m->o); }

int plan_wm_window(const plan_wm *m) { return m->H; }

void plan_wm_embed(plan_wm *m, const uint8_t *frame, float *z) {
    objective_fill_pixels(m->frame, frame, m->o->frame_bytes, m->obj->mean, m->obj->std);
    world_embed(m->o, m->obj->m.params, m->frame, 1, z);
}

void plan_wm_clear(plan_wm *m) { m->nctx = 0; }

void plan_wm_observe(plan_wm *m, const uint8_t *frame) {
    const int E = m->E, A = m->A;
    if (m->nctx == m->H) { /* drop the oldest frame */
        memmove(m->ctx_z, m->ctx_z + E, sizeof(float) * (m->H - 1) * E);
        memmove(m->ctx_a, m->ctx_a + A, sizeof(float) * (m->H - 1) * A);
        m->nctx--;
    }
    plan_wm_embed(m, frame, m->ctx_z + (size_t)m->nctx * E);
    memset(m->ctx_a + (size_t)m->nctx * A, 0, sizeof(float) * A);
    m->nctx++;
}

void plan_wm_acted(plan_wm *m, const double *action) {
    JEPA_ASSERT(m->nctx > 0);
    for (int k = 0; k < m->A; k++)
        m->ctx_a[(size_t)(m->nctx - 1) * m->A + k] = (float)action[k] * m->o->act_scale;
}

/* plan_model.rollout: n candidates (n <= samples) of `steps` actions. */
static void wm_rollout(void *ctx, const float *actions, int n, int steps, float *z) {
    plan_wm *m = ctx;
    const int H = m->H, E = m->E, A = m->A;
    const float s = m->o->act_scale, *W = m->obj->m.params;
    JEPA_ASSERT(n <= m->samples && m->nctx >= 1);
    for (int i = 0; i < n; i++) {
        memcpy(m->wz + (size_t)i * H * E, m->ctx_z, sizeof(float) * m->nctx * E);
        memcpy(m->wa + (size_t)i * H * A, m->ctx_a, sizeof(float) * m->nctx * A);
    }
    int L = m->nctx; /* tokens in every window; the last one's action is the candidate's */
    for (int j = 0; j < steps; j++) {
        wpass *p = &m->pass[L - 1];
        for (int i = 0; i < n; i++) {
            float *wa = m->wa + (size_t)i * H * A;
            for (int k = 0; k < A; k++) wa[(L - 1) * A + k] = actions[((size_t)i * steps + j) * A + k] * s;
            memcpy(p->u + (size_t)i * L * E, m->wz + (size_t)i * H * E, sizeof(float) * L * E);
            memcpy(p->a + (size_t)i * L * A, wa, sizeof(float) * L * A);
        }
        world_pred_forward(m->o, W, p, n);
        for (int i = 0; i < n; i++) {
            const float *zh = p->out + ((size_t)i * L + L - 1) * E;
            float *wz = m->wz + (size_t)i * H * E, *wa = m->wa + (size_t)i * H * A;
            memcpy(z + ((size_t)i * steps + j) * E, zh, sizeof(float) * E);
            if (L == H) { /* slide: the oldest token leaves */
                memmove(wz, wz + E, sizeof(float) * (H - 1) * E);
                memmove(wa, wa + A, sizeof(float) * (H - 1) * A);
                memcpy(wz + (size_t)(H - 1) * E, zh, sizeof(float) * E);
            } else {
                memcpy(wz + (size_t)L * E, zh, sizeof(float) * E);
            }
        }
        if (L < H) L++;
    }
}

plan_model plan_wm_model(plan_wm *m) {
    plan_model pm = {m->E, m->A, m, wm_rollout};
    return pm;
}

/* ------------------------------------------------------ CEM controller */
typedef struct {
    plan_wm *m;
    plan_model pm;
    plan_cem cem;
    int execute;         /* blocks executed per decision */
    float *goal;         /* (E) the goal frame's embedding */
    uint8_t *goal_frame; /* one world frame */
    double *queue;       /* (execute * repeat, A) actions left of the current plan */
    int nqueue, qpos, planned_once;
    double (*path)[2];   /* (steps + 1) the plan executed open-loop in the true world */
} cem_ctl;

static void cem_begin(plan_ctl *c) {
    cem_ctl *k = c->impl;
    plan_wm_clear(k->m);
    c->w->ops->render(c->w, c->task->goal, k->goal_frame);
    plan_wm_embed(k->m, k->goal_frame, k->goal);
    plan_cem_reset(&k->cem);
    k->nqueue = k->qpos = 0;
    k->planned_once = 0;
}

/* One decision: CEM from the warm-started Gaussian; the first `execute`
 * blocks of the plan queue up; the whole plan is traced in the true world. */
static void cem_decide(plan_ctl *c, const double *state, int step) {
    cem_ctl *k = c->impl;
    const int A = k->m->A, R = k->cem.c.repeat;
    if (k->planned_once) plan_cem_shift(&k->cem, k->execute);
    k->planned_once = 1;
    plan_cem_run(&k->cem, &k->pm, k->goal, plan_key(c->seed, c->episode, (uint64_t)step));
    k->nqueue = k->execute * R;
    k->qpos = 0;
    for (int s = 0; s < k->nqueue; s++)
        for (int j = 0; j < A; j++) k->queue[(size_t)s * A + j] = k->cem.mean[(size_t)(s / R) * A + j];
    double p[WORLD_MAX_DIM], a[WORLD_MAX_DIM] = {0};
    memcpy(p, state, sizeof p);
    k->path[0][0] = p[0];
    k->path[0][1] = p[1];
    for (int s = 0; s < k->cem.steps; s++) {
        for (int j = 0; j < A; j++) a[j] = k->cem.mean[(size_t)(s / R) * A + j];
        c->w->ops->step(c->w, p, a, p);
        k->path[s + 1][0] = p[0];
        k->path[s + 1][1] = p[1];
    }
    c->planned = k->path;
    c->nplanned = k->cem.steps + 1;
}

static int cem_act(plan_ctl *c, const double *state, const uint8_t *frame, int step, double *action) {
    cem_ctl *k = c->impl;
    const int A = k->m->A;
    int decided = 0;
    plan_wm_observe(k->m, frame);
    if (k->qpos == k->nqueue) {
        cem_decide(c, state, step);
        decided = 1;
    }
    memcpy(action, k->queue + (size_t)k->qpos++ * A, sizeof(double) * A);
    plan_wm_acted(k->m, action);
    return decided;
}

static const plan_ctl_ops plan_ctl_cem = {"cem", cem_begin, cem_act};

void plan_ctl_cem_init(plan_ctl *c, const world *w, plan_wm *m, const plan_cfg *cfg, int execute,
                       uint64_t seed) {
    JEPA_ASSERT((int)w->action_dim == m->A && execute >= 1 && execute <= cfg->horizon);
    cem_ctl *k = JEPA_MALLOC(sizeof *k);
    k->m = m;
    k->pm = plan_wm_model(m);
    plan_cem_init(&k->cem, cfg, m->A, m->E);
    k->execute = execute;
    k->goal = JEPA_MALLOC(sizeof(float) * m->E);
    k->goal_frame = JEPA_MALLOC(world_frame_bytes(w));
    k->queue = JEPA_MALLOC(sizeof(double) * execute * cfg->repeat * m->A);
    k->path = JEPA_MALLOC(sizeof(double) * 2 * (k->cem.steps + 1));
    memset(c, 0, sizeof *c);
    c->ops = &plan_ctl_cem;
    c->w = w;
    c->seed = seed;
    c->bound = cfg->bound;
    c->impl = k;
}

void plan_ctl_cem_free(plan_ctl *c) {
    cem_ctl *k = c->impl;
    if (!k) return;
    plan_cem_free(&k->cem);
    jepa_free(k->goal);
    jepa_free(k->goal_frame);
    jepa_free(k->queue);
    jepa_free(k->path);
    jepa_free(k);
    c->impl = NULL;
}
