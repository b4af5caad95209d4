/* plan.c - the cross-entropy method over action sequences (plan.h). The
 * optimiser sees the model only through plan_model.rollout, one call per
 * iteration over the whole population. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"
#include "plan.h"

uint64_t plan_key(uint64_t seed, uint64_t episode, uint64_t step) {
    return rng_key(rng_key(seed, 0x91a7, episode), step, 0);
}

void plan_clip(float *a, int n, int A, double bound) {
    for (int i = 0; i < n; i++) {
        float *x = a + (size_t)i * A;
        double s = 0.0;
        for (int k = 0; k < A; k++) s += (double)x[k] * x[k];
        if (s > bound * bound) {
            float f = (float)(bound / sqrt(s));
            for (int k = 0; k < A; k++) x[k] *= f;
        }
    }
}

void plan_cem_init(plan_cem *p, const plan_cfg *c, int A, int E) {
    JEPA_ASSERT(c->samples >= 1 && c->topk >= 1 && c->topk <= c->samples && c->horizon >= 1 &&
                c->iterations >= 1 && c->repeat >= 1 && A >= 1 && E >= 1);
    memset(p, 0, sizeof *p);
    p->c = *c;
    p->A = A;
    p->E = E;
    p->steps = c->horizon * c->repeat;
    size_t N = (size_t)c->samples;
    p->mean = JEPA_MALLOC(sizeof(float) * c->horizon * A);
    p->std = JEPA_MALLOC(sizeof(float) * c->horizon * A);
    p->cand = JEPA_MALLOC(sizeof(float) * N * c->horizon * A);
    p->seq = JEPA_MALLOC(sizeof(float) * N * p->steps * A);
    p->z = JEPA_MALLOC(sizeof(float) * N * p->steps * E);
    p->cost = JEPA_MALLOC(sizeof(double) * N);
    p->order = JEPA_MALLOC(sizeof(int) * N);
    plan_cem_reset(p);
}

void plan_cem_free(plan_cem *p) {
    jepa_free(p->mean);
    jepa_free(p->std);
    jepa_free(p->cand);
    jepa_free(p->seq);
    jepa_free(p->z);
    jepa_free(p->cost);
    jepa_free(p->order);
    memset(p, 0, sizeof *p);
}

void plan_cem_reset(plan_cem *p) {
    int n = p->c.horizon * p->A;
    for (int i = 0; i < n; i++) {
        p->mean[i] = 0.0f;
        p->std[i] = (float)(p->c.init_std * p->c.bound);
    }
}

void plan_cem_shift(plan_cem *p, int blocks) {
    int H = p->c.horizon, A = p->A;
    if (blocks > H) blocks = H;
    memmove(p->mean, p->mean + (size_t)blocks * A, sizeof(float) * (H - blocks) * A);
    memset(p->mean + (size_t)(H - blocks) * A, 0, sizeof(float) * blocks * A);
    for (int i = 0; i < H * A; i++) p->std[i] = (float)(p->c.init_std * p->c.bound);
}

/* Squared distance of candidate i's prediction(s) to the goal: the final
 * step's, or the mean over the block ends. */
static double cem_cost(const plan_cem *p, int i, const float *goal) {
    const int E = p->E, R = p->c.repeat;
    double total = 0.0;
    int first = p->c.cost_all ? 0 : p->c.horizon - 1;
    for (int b = first; b < p->c.horizon; b++) {
        const float *z = p->z + ((size_t)i * p->steps + (size_t)(b + 1) * R - 1) * E;
        double s = 0.0;
        for (int c = 0; c < E; c++) s += ((double)z[c] - goal[c]) * ((double)z[c] - goal[c]);
        total += s;
    }
    return total / (p->c.horizon - first);
}

static const double *sort_costs; /* qsort has no context argument in C11 */
static int by_cost(const void *a, const void *b) {
    double x = sort_costs[*(const int *)a], y = sort_costs[*(const int *)b];
    if (x != y) return x < y ? -1 : 1;
    return *(const int *)a - *(const int *)b; /* ties: lower index first, so order is total */
}

/* Candidates of one iteration: sample 0 is the mean itself (the incumbent
 * always competes), the rest mean + std * N(0, 1), every block clipped. */
static void cem_sample(plan_cem *p, jepa_rng *r) {
    const int HA = p->c.horizon * p->A, N = p->c.samples;
    memcpy(p->cand, p->mean, sizeof(float) * HA);
    for (int i = 1; i < N; i++) {
        float *x = p->cand + (size_t)i * HA;
        for (int k = 0; k < HA; k++) x[k] = p->mean[k] + p->std[k] * (float)rng_normal(r);
    }
    plan_clip(p->cand, N * p->c.horizon, p->A, p->c.bound);
    for (int i = 0; i < N; i++)
        for (int s = 0; s < p->steps; s++)
            memcpy(p->seq + ((size_t)i * p->steps + s) * p->A,
                   p->cand + ((size_t)i * p->c.horizon + s / p->c.repeat) * p->A, sizeof(float) * p->A);
}

/* Mean and std of the topk cheapest candidates (maximum likelihood). */
static void cem_refit(plan_cem *p) {
    const int HA = p->c.horizon * p->A, K = p->c.topk;
    for (int k = 0; k < HA; k++) {
        double s = 0.0, s2 = 0.0;
        for (int j = 0; j < K; j++) {
            double v = p->cand[(size_t)p->order[j] * HA + k];
            s += v;
            s2 += v * v;
        }
        double mu = s / K, var = s2 / K - mu * mu;
        p->mean[k] = (float)mu;
        p->std[k] = (float)sqrt(var > 0 ? var : 0);
    }
}

double plan_cem_run(plan_cem *p, const plan_model *m, const float *goal, uint64_t key) {
    JEPA_ASSERT(m->A == p->A && m->E == p->E);
    const int N = p->c.samples;
    for (int it = 0; it < p->c.iterations; it++) {
        jepa_rng r;
        rng_init(&r, rng_key(key, (uint64_t)it, 0));
        cem_sample(p, &r);
        m->rollout(m->ctx, p->seq, N, p->steps, p->z);
        p->rollouts++;
        for (int i = 0; i < N; i++) {
            p->cost[i] = cem_cost(p, i, goal);
            p->order[i] = i;
        }
        sort_costs = p->cost;
        qsort(p->order, (size_t)N, sizeof(int), by_cost);
        p->best_cost = p->cost[p->order[0]];
        cem_refit(p);
    }
    /* the plan is the refitted mean: score it once more (one sequence) */
    plan_clip(p->mean, p->c.horizon, p->A, p->c.bound);
    for (int s = 0; s < p->steps; s++)
        memcpy(p->seq + (size_t)s * p->A, p->mean + (size_t)(s / p->c.repeat) * p->A,
               sizeof(float) * p->A);
    m->rollout(m->ctx, p->seq, 1, p->steps, p->z);
    return cem_cost(p, 0, goal);
}
