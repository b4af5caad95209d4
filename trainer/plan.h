/* plan.h - planning in latent space: the cross-entropy method (CEM) over
 * action sequences through a learned latent model, model-predictive control
 * (MPC) in a world from world/, and the evaluation behind `jepa-plan`.
 *
 * Layers, each usable alone:
 *   plan_cem     the optimiser. It knows a latent model only as a plan_model
 *                (a rollout function over a batch of candidate sequences),
 *                so tests drive it with a toy linear model whose optimum is
 *                known (tests/test_plan.c).
 *   plan_wm      a trained world model (obj_world.h) as a plan_model: frame
 *                embeddings, a context of observed frames and actions, and
 *                batched autoregressive rollouts (plan_world.c).
 *   plan_ctl     controllers (a table of functions each): the CEM planner on
 *                a plan_wm, random actions, a straight line on the true state.
 *   plan_task    start and goal in different regions, a step budget from a
 *                breadth-first search over the true dynamics (plan_task.c).
 *   plan_evaluate  every controller on the same tasks, split across ranks
 *                (plan_eval.c); docs/world.md "Planning" has the figures.
 *
 * CEM (Rubinstein 1999, "The cross-entropy method for combinatorial and
 * continuous optimization"; as DINO-WM, Zhou et al. 2024, and LeWorldModel
 * plan): a Gaussian per action block, N samples (sample 0: the mean) clipped
 * to the action bound, each rolled out from the current context; cost of a
 * candidate = mean over the block ends b (or the last only) of
 * ||zhat_b - z_goal||^2; the K cheapest refit the mean and std (maximum
 * likelihood, no smoothing); I iterations; the plan is the final mean. Randomness: iteration i of
 * a plan draws from rng_key(key, i, 0), key = plan_key(seed, episode, step). */
#ifndef JEPA_PLAN_H
#define JEPA_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "spec.h"
#include "world.h"

/* ------------------------------------------------------------ the model */
/* A latent model the optimiser searches through. rollout: for each of n
 * candidate sequences of `steps` actions (n, steps, A) in world units, the
 * predicted embedding after every action into z (n, steps, E), starting from
 * the model's current context. One call per CEM iteration: the batch is the
 * whole population, so a neural model runs one GEMM per layer over all. */
typedef struct {
    int E, A;
    void *ctx;
    void (*rollout)(void *ctx, const float *actions, int n, int steps, float *z);
} plan_model;

/* ------------------------------------------------------------- the CEM */
typedef struct {
    int samples;    /* N candidates per iteration */
    int topk;       /* K elites that refit the Gaussian (<= samples) */
    int horizon;    /* action blocks per candidate */
    int iterations; /* refits per plan */
    int repeat;     /* steps each block's action is held (frame skip) */
    double init_std; /* std of each action component at the start, x bound */
    double bound;   /* every action is projected onto the ball of this L2 norm */
    int cost_all;   /* 0: final embedding only; 1: mean over the block ends */
} plan_cfg;

typedef struct {
    plan_cfg c;
    int A, E, steps;     /* steps = horizon * repeat */
    float *mean, *std;   /* (horizon, A) the Gaussian; mean is the plan */
    float *cand;         /* (samples, horizon, A) block actions */
    float *seq;          /* (samples, steps, A) blocks held `repeat` steps */
    float *z;            /* (samples, steps, E) predictions */
    double *cost;        /* (samples) */
    int *order;          /* (samples) candidates by cost */
    double best_cost;    /* of the last iteration's best candidate */
    int64_t rollouts;    /* model calls so far (one per iteration) */
} plan_cem;

/* The key of the plan made at `step` of `episode` under seed. */
uint64_t plan_key(uint64_t seed, uint64_t episode, uint64_t step);
void plan_cem_init(plan_cem *p, const plan_cfg *c, int A, int E);
void plan_cem_free(plan_cem *p);
/* mean 0 (no prior), std init_std * bound. */
void plan_cem_reset(plan_cem *p);
/* Warm start after `blocks` blocks were executed: the mean moves forward by
 * that many blocks (zeros appended), the std is reset. */
void plan_cem_shift(plan_cem *p, int blocks);
/* Iterates from the current mean/std toward goal (E); p->mean is the plan.
 * Returns the cost of the final mean's rollout. */
double plan_cem_run(plan_cem *p, const plan_model *m, const float *goal, uint64_t key);
/* Projects each of n actions (n, A) onto the L2 ball of radius bound. */
void plan_clip(float *a, int n, int A, double bound);

/* ------------------------------------------------------- world model */
typedef struct plan_wm plan_wm;
/* Loads RUN (spec.resolved.yaml, checkpoint.bin or RUN/latest) with the spec
 * s already read from it: the objective must be `world`. w: the world it
 * plans in, rendering at model.img_size with model.channels; its records
 * (world_gen_schema) stand for data.train's, which is not read. samples: the
 * population the rollouts are sized for; window: the tokens the predictor
 * sees (the newest observed or predicted frames), 1..world.history, 0 for
 * world.history. 0 or -1 + err (one line naming the run, file or key). */
int plan_wm_load(plan_wm **out, const char *run, const jepa_spec *s, const world *w, int samples,
                 int window, char *err, size_t errlen);
/* The same over an objective already built (tests): takes ownership. */
struct objective;
plan_wm *plan_wm_from_objective(struct objective *obj, int samples, int window);
void plan_wm_free(plan_wm *m);
/* Re-initialises every parameter from the run's seed (the random-init baseline). */
void plan_wm_randomize(plan_wm *m);
plan_model plan_wm_model(plan_wm *m);
/* The window the rollouts use: plan.window resolved (0 or more than
 * world.history: world.history), what plan.json records. */
int plan_wm_window(const plan_wm *m);
/* Embedding (E) of one u8 frame (channels, side, side). */
void plan_wm_embed(plan_wm *m, const uint8_t *frame, float *z);
/* The context: forget it; then observe frames in order, each with the
 * action taken from it (world units) once known. */
void plan_wm_clear(plan_wm *m);
void plan_wm_observe(plan_wm *m, const uint8_t *frame);
void plan_wm_acted(plan_wm *m, const double *action);

/* ------------------------------------------------------------ tasks */
typedef struct {
    double start[WORLD_MAX_DIM], goal[WORLD_MAX_DIM];
    int shortest; /* steps of the breadth-first search to within radius of goal; -1: none */
    int budget;   /* steps allowed: ceil(budget_factor * shortest) */
} plan_task;

/* Task `episode` of seed: start and goal drawn by w->ops->sample_state from
 * the streams (seed, episode, PLAN_STREAM_*), the goal redrawn until its
 * region differs from the start's and it lies farther than radius from the
 * start; shortest and budget as above. 0, or -1 + err (one line naming
 * plan.success_radius) when PLAN_TASK_MAX_DRAWS draws found no such goal,
 * or (naming plan.world_params) when the search found no path or gave up at
 * PLAN_BFS_MAX_DEPTH steps. */
#define PLAN_TASK_MAX_DRAWS (1L << 20)
int plan_task_make(const world *w, uint64_t seed, uint64_t episode, double radius,
                   double budget_factor, double bound, double arena, plan_task *t, char *err,
                   size_t errlen);
/* Fewest steps from start to within radius of goal by breadth-first search
 * over the true dynamics: 16 full-length action directions (bound), one
 * state kept per grid cell of side bound / 4 over [0, arena]^2 (so an
 * estimate, at most a step or two above the true minimum in the tests);
 * -1 if every reachable cell was searched without reaching the goal,
 * PLAN_SHORTEST_LIMIT if the path is longer than PLAN_BFS_MAX_DEPTH steps,
 * PLAN_SHORTEST_STOPPED if a signal was caught (shard_interrupt_pending):
 * plan_task_make then returns 0 with it in t->shortest. */
#define PLAN_BFS_MAX_DEPTH 4096
#define PLAN_SHORTEST_LIMIT (-2)
#define PLAN_SHORTEST_STOPPED (-3)
int plan_shortest(const world *w, const double *start, const double *goal, double radius,
                  double bound, double arena);
/* The search's grid has ceil(4 arena / bound) + 1 cells a side, (side^2 x
 * 73) bytes and as many world steps x 16: arena / bound (full-length steps
 * across the arena) at most PLAN_MAX_ACROSS keeps it within PLAN_GRID_MAX a
 * side (76 MB). 0, or -1 + err (one line naming plan.world_params). */
#define PLAN_MAX_ACROSS 255
#define PLAN_GRID_MAX 1024
int plan_grid_check(double bound, double arena, char *err, size_t errlen);
/* plan_grid_check, then the search's time: its cells x 16 directions x
 * w->step_work (tworoom's substeps a full-length step) inner iterations at
 * most PLAN_SEARCH_MAX_WORK a task, about 10 s on one core at ~10 ns each
 * (the grid check and the world's own limit of 2^20 substeps a step each
 * passed 1021^2 cells at 2^20 substeps: 1.7e13, days a task). 0, or -1 + err (one line naming plan.world_params,
 * the estimate and the cap). */
#define PLAN_SEARCH_MAX_WORK 1e9
int plan_search_check(const world *w, double bound, double arena, char *err, size_t errlen);
/* Distance between the positions (first two components) of two states. */
double plan_dist(const double *a, const double *b);
/* A world parameter by name, read through its table. 0, or -1 if absent. */
int plan_world_param(const world *w, const char *name, double *v);

/* ------------------------------------------------------- controllers */
/* A controller is a table of functions (who acts) plus its state; the
 * episode loop calls through it and never asks which it is. */
typedef struct plan_ctl plan_ctl;
typedef struct {
    const char *name;
    /* a new episode: c->task and c->episode are set */
    void (*begin)(plan_ctl *c);
    /* the action (world units) at `step` from the true state and its frame;
     * returns 1 if it planned (a decision, timed by the loop), else 0 */
    int (*act)(plan_ctl *c, const double *state, const uint8_t *frame, int step, double *action);
} plan_ctl_ops;

struct plan_ctl {
    const plan_ctl_ops *ops;
    const world *w;
    uint64_t seed;   /* with (episode, step): the controller's random streams */
    double bound;    /* action norm bound, world units */
    const plan_task *task;
    uint64_t episode;
    void *impl;
    /* after a decision of a planning controller: the positions its plan
     * reaches when executed open-loop in the true world (for pictures) */
    double (*planned)[2];
    int nplanned;
};

extern const plan_ctl_ops plan_ctl_random, plan_ctl_straight;
/* The CEM controller over model m: replans every `execute` blocks
 * (execute * repeat steps), warm-started from the previous plan. */
void plan_ctl_cem_init(plan_ctl *c, const world *w, plan_wm *m, const plan_cfg *cfg, int execute,
                       uint64_t seed);
void plan_ctl_cem_free(plan_ctl *c);

/* ------------------------------------------------------- episodes */
typedef struct {
    float success;    /* 1 if within radius of the goal after some step <= budget */
    float steps;      /* steps taken until success, else the budget */
    float final_dist; /* closest distance to the goal reached */
    float decisions;  /* plans made */
    float plan_s;     /* wall seconds spent in those decisions */
    float plan_cpu_s; /* CPU seconds of the process in them (all its threads) */
    float shortest, budget;
} plan_outcome;
#define PLAN_OUTCOME_FLOATS 8

/* What an episode looked like, for pictures. The caller sizes it. */
typedef struct {
    int cap_path, cap_plans, plan_len;
    double (*path)[WORLD_MAX_DIM]; /* (cap_path) executed states, the start first */
    double (*plans)[2]; /* (cap_plans, plan_len) the plan of each decision */
    int *plan_n;        /* (cap_plans) points of each plan */
    int npath, nplans;
} plan_trace;

/* Runs controller c on task t until success or the budget; tr may be NULL.
 * A caught signal (shard_interrupt_pending) stops it between steps: the
 * outcome is then partial, for the caller to discard. */
void plan_episode(plan_ctl *c, const plan_task *t, uint64_t episode, double radius,
                  plan_outcome *out, plan_trace *tr);

/* ------------------------------------------------------- evaluation */
/* The 95% Wilson score interval (Wilson 1927, z = 1.96) of succ successes
 * in n trials into [*lo, *hi]: exactly 0 at 0 successes, exactly 1 at n
 * (the formula's rounding left 2.8e-17 and 1 - 1.1e-16 there); n <= 0: [0, 1]. */
void plan_wilson(int succ, int n, double *lo, double *hi);
/* `jepa-plan`: every method (plan_eval.c) on s->plan.episodes tasks, the
 * episodes split across ranks and gathered; rank 0 writes
 * RUN/plan/{plan.json,plan.csv,episodes.csv}, the rank that ran one of the
 * first s->plan.pictures episodes draws its pictures, all into a staging
 * directory that moves into place once whole; then rank 0 prints the table
 * and the last lines. Throughout, SIGINT/SIGTERM/SIGHUP are held (the
 * caller's shard_interrupt_catch, before plan_world_check): one caught while the episodes run stops them
 * between episodes ("RUN/plan: interrupted by SIGTERM after N of M episodes
 * (...): nothing written"), one caught before the plan is in place removes
 * the stage and fails it ("RUN/plan: interrupted by SIGINT: nothing written").
 * The caller says err in one line, then calls shard_interrupt_release(ok).
 * Collective. 0 or -1 + err (one line naming the run, key or file). */
int plan_evaluate(const char *run, const jepa_spec *s, char *err, size_t errlen);
/* The world of s->plan checked before anything is loaded: plan.world known,
 * plan.world_params valid, the shortest-path search bounded
 * (plan_search_check), and task 0 made (plan_task_make: a closed door, a
 * success radius no goal lies beyond). 0, or -1 + err (one line naming the
 * key, and plan.world_params's value when a task cannot be made). */
int plan_world_check(const jepa_spec *s, char *err, size_t errlen);

#endif
