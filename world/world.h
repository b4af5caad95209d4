/* world.h - built-in environments for training action-conditioned world models
 * (JEPA world models in the sense of PLDM, Sobal et al. 2025, "Learning from
 * Reward-Free Offline Data: A Case for Planning with Latent Dynamics Models",
 * and LeWorldModel 2026).
 *
 * An environment is a plug-in: a `const world_ops` table of functions plus a
 * parameter table, found by name with world_find(). Callers never switch on
 * the kind of world; they call through w->ops. This module is pure C11 + libm:
 * it knows nothing of models, shards or MPI.
 *
 * The contract every environment keeps:
 *   - a state is state_dim doubles, an action action_dim doubles; the frame of
 *     a state is (channels, height, width) uint8, row-major, channel-planar;
 *   - reset(seed, episode) and explore(seed, episode, ...) are pure functions
 *     of their arguments (counter-based RNG, no hidden state), so a data set is
 *     bitwise reproducible from its seed, episode by episode, in any order;
 *   - step(state, action) is pure and deterministic; it accepts any action
 *     (clipped to the world's bound, non-finite components read as 0) and
 *     always returns a valid state when given one;
 *   - render(state) is pure and deterministic;
 *   - the actions explore() emits are exactly representable as float, so
 *     actions stored as f32 replay through step() to the same states bitwise.
 *
 * "tworoom" (tworoom.c) is the first world: a point agent of radius r in a
 * square arena split by a wall with one door. docs/world.md has the geometry,
 * the dynamics, the renderer and the exploration policy. */
#ifndef JEPA_WORLD_H
#define JEPA_WORLD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WORLD_ERR_MAX 512
#define WORLD_MAX_DIM 8 /* state_dim and action_dim never exceed this (stack arrays) */

/* ------------------------------------------------------------------- rng */
/* Counter-based random numbers (splitmix64 finaliser over a Weyl sequence):
 * the stream of (seed, a, b) is a pure function of those three numbers, so
 * episode e of seed s draws the same numbers whoever generates it, in any
 * order, on any thread. */
typedef struct {
    uint64_t key;     /* hash of (seed, a, b) */
    uint64_t counter; /* draws so far */
} world_rng;

uint64_t world_mix64(uint64_t z); /* the splitmix64 finaliser (Steele et al. 2014) */
void world_rng_init(world_rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t world_rng_u64(world_rng *r);
double world_rng_uniform(world_rng *r); /* [0, 1), 53 random bits */
double world_rng_normal(world_rng *r);  /* N(0, 1), Box-Muller (one value per two uniforms) */

/* ------------------------------------------------------------ parameters */
/* Parameters are a struct of doubles described by a table, so defaults,
 * `name=value` parsing, range checks and printing all come from one place.
 * WORLD_PARAM_INT values must be whole numbers (stored as double). */
typedef enum { WORLD_PARAM_REAL = 0, WORLD_PARAM_INT = 1 } world_param_kind;
typedef struct {
    const char *name;
    world_param_kind kind;
    size_t offset; /* of the double in the ops' parameter struct */
    double min, max, def;
    const char *help; /* one line, with the unit */
} world_param;

/* ------------------------------------------------------------- instances */
typedef struct world_ops world_ops;

/* One environment with its parameters. Filled by world_init; the dims are
 * fixed for the instance's lifetime. */
typedef struct {
    const world_ops *ops;
    void *params; /* ops->params_size bytes, a copy owned by the instance */
    void *ctx;    /* the environment's precomputed state (geometry, wall layer) */
    uint32_t channels, height, width; /* one observation: (C, H, W) uint8 */
    uint32_t action_dim, state_dim;   /* each <= WORLD_MAX_DIM */
    uint32_t nregions;                /* region() is in [0, nregions) */
    /* What one step of the full action bound costs step() in its inner
     * iterations (tworoom: collide-and-slide substeps), >= 1: the unit a
     * caller that takes very many steps (a planner's search) budgets in */
    uint32_t step_work;
} world;

struct world_ops {
    const char *name;    /* registry key, e.g. "tworoom" */
    const char *summary; /* one line for --help */
    const world_param *params;
    int nparams;
    size_t params_size;
    /* Rules between parameters (each is already within its table range).
     * 0 or -1 + one line in err naming the parameters and values. */
    int (*check)(const void *params, char *err, size_t errlen);
    /* Sets w->ctx and the dims from w->params (already checked). 0 or -1 + err. */
    int (*init)(world *w, char *err, size_t errlen);
    void (*free)(world *w); /* frees w->ctx */
    /* The first state of episode `episode` of data set `seed`: a valid state
     * drawn by the world's start distribution. state: (state_dim). */
    void (*reset)(const world *w, uint64_t seed, uint64_t episode, double *state);
    /* A valid state drawn from the world's state distribution using rng, e.g.
     * a planning goal. state: (state_dim). */
    void (*sample_state)(const world *w, world_rng *rng, double *state);
    /* next = f(state, action); pure; next may equal state. state, next:
     * (state_dim); action: (action_dim). */
    void (*step)(const world *w, const double *state, const double *action, double *next);
    /* frame: (channels, height, width) uint8. */
    void (*render)(const world *w, const double *state, uint8_t *frame);
    /* A coarse label of a state (tworoom: which room), for coverage statistics. */
    uint32_t (*region)(const world *w, const double *state);
    /* One episode of the world's data-collection policy: states[0] =
     * reset(seed, episode), states[t+1] = step(states[t], actions[t]).
     * states: (steps, state_dim); actions: (steps - 1, action_dim); steps >= 1. */
    void (*explore)(const world *w, uint64_t seed, uint64_t episode, uint32_t steps,
                    double *states, double *actions);
};

/* The registry: the world named `name`, or NULL. world_all lists them
 * (NULL-terminated) for help texts. */
const world_ops *world_find(const char *name);
extern const world_ops *const world_all[];

/* Writes every parameter's default into params (ops->params_size bytes). */
void world_params_default(const world_ops *ops, void *params);
/* Applies one "name=value" assignment: unknown names, malformed numbers,
 * values out of range or not whole where they must be are -1 + one line
 * naming the name and value. */
int world_params_set(const world_ops *ops, void *params, const char *assignment, char *err,
                     size_t errlen);
/* Table ranges, then ops->check. 0 or -1 + err. */
int world_params_check(const world_ops *ops, const void *params, char *err, size_t errlen);
/* One "name = value  # help" line per parameter. */
void world_params_print(const world_ops *ops, const void *params, FILE *f);

/* Checks params (NULL: the defaults), copies them and calls ops->init.
 * 0 or -1 + err; on -1 *w is zeroed. */
int world_init(world *w, const world_ops *ops, const void *params, char *err, size_t errlen);
void world_free(world *w); /* leaves *w zeroed; a zeroed world is fine */
size_t world_frame_bytes(const world *w); /* channels * height * width */

/* -------------------------------------------------------------- tworoom */
/* Lengths are in arena units: the arena is [0, arena]^2, x to the right, y
 * down (the image's row direction). The wall is the band
 * x in [arena/2 - wall/2, arena/2 + wall/2], open for y in the door
 * [door_center - door_width/2, door_center + door_width/2]. */
typedef struct {
    double arena;        /* side of the square arena */
    double wall;         /* thickness of the middle wall */
    double door_center;  /* y of the door's centre */
    double door_width;   /* the gap; the agent passes iff door_width > 2 * radius */
    double radius;       /* agent radius */
    double max_action;   /* bound on the norm of one step's displacement */
    double size;         /* frame side in pixels (integer) */
    double momentum;     /* explore: AR(1) coefficient of the random action, per step */
    double noise;        /* explore: stationary std of each random action component,
                            in units of max_action */
    double door_bias;    /* explore: fraction of episodes that steer to the other room */
    double bias_gain;    /* explore: steering strength in units of max_action */
} world_tworoom_params;

extern const world_ops world_tworoom_ops;

/* Coverage helpers the renderer uses, public so tests can check them against
 * an independent oracle. Exact area of the disc of radius r centred at the
 * origin intersected with the rectangle [x0, x1] x [y0, y1] (x0 <= x1, y0 <= y1). */
double world_disc_rect_area(double r, double x0, double x1, double y0, double y1);

#endif
