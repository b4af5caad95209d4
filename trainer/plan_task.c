/* plan_task.c - what a planner is asked and how it is scored (plan.h):
 * tasks (start and goal in different regions), the shortest number of steps
 * by breadth-first search over the true dynamics (the step budget is a
 * multiple of it), the two controllers that need no model (random actions,
 * a straight line on the true state) and the episode loop every controller
 * runs in. Positions are the first two state components, in world units. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "jepa.h"
#include "plan.h"
#include "shard.h"

#define PLAN_STREAM_START 0x51a27 /* world_rng streams of a task: (seed, episode, stream) */
#define PLAN_STREAM_GOAL 0x60a1
#define PLAN_BFS_DIRS 16
#define PLAN_PI 3.14159265358979323846

double plan_dist(const double *a, const double *b) {
    return hypot(a[0] - b[0], a[1] - b[1]);
}

int plan_world_param(const world *w, const char *name, double *v) {
    for (int i = 0; i < w->ops->nparams; i++)
        if (!strcmp(w->ops->params[i].name, name)) {
            memcpy(v, (const char *)w->params + w->ops->params[i].offset, sizeof *v);
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- tasks */
typedef struct {
    double s[WORLD_MAX_DIM];
    int depth;
} bfs_node;

/* The grid cell of a position, clamped into the G x G grid of side h. */
static size_t bfs_cell(const double *p, double h, int G) {
    double i = fmin(fmax(floor(p[1] / h), 0), G - 1), j = fmin(fmax(floor(p[0] / h), 0), G - 1);
    return (size_t)i * G + (size_t)j;
}

int plan_grid_check(double bound, double arena, char *err, size_t errlen) {
    double across = arena / bound, side = ceil(4 * across) + 1;
    if (across <= PLAN_MAX_ACROSS && side <= PLAN_GRID_MAX) return 0;
    snprintf(err, errlen, "plan.world_params: arena %g / max_action %g = %g steps across: at most %d (the "
             "shortest-path search's grid would be %.0f x %.0f cells, %.3g GB; at most %d x %d)", arena,
             bound, across, PLAN_MAX_ACROSS, side, side, side * side * (sizeof(bfs_node) + 1) / 1e9,
             PLAN_GRID_MAX, PLAN_GRID_MAX);
    return -1;
}

int plan_search_check(const world *w, double bound, double arena, char *err, size_t errlen) {
    if (plan_grid_check(bound, arena, err, errlen)) return -1;
    double side = ceil(4 * arena / bound) + 1, work = side * side * PLAN_BFS_DIRS * w->step_work;
    if (work <= PLAN_SEARCH_MAX_WORK) return 0;
    snprintf(err, errlen, "plan.world_params: arena %g, max_action %g: a task's shortest-path search could take "
             "%.0f x %.0f cells x %d directions x %u substeps a step (%s) = %.3g substeps, more than the %.0e "
             "allowed (fewer substeps a step: see jepa-world info; or a larger max_action)", arena, bound,
             side, side, PLAN_BFS_DIRS, w->step_work, w->ops->name, work, PLAN_SEARCH_MAX_WORK);
    return -1;
}

int plan_shortest(const world *w, const double *start, const double *goal, double radius,
                  double bound, double arena) {
    if (plan_dist(start, goal) <= radius) return 0;
    const double h = bound / 4;
    JEPA_ASSERT(arena / bound <= PLAN_MAX_ACROSS && ceil(arena / h) + 1 <= PLAN_GRID_MAX); /* plan_grid_check */
    const int G = (int)ceil(arena / h) + 1, S = (int)w->state_dim;
    uint8_t *seen = JEPA_MALLOC((size_t)G * G);
    bfs_node *q = JEPA_MALLOC(sizeof(bfs_node) * ((size_t)G * G + 1));
    size_t head = 0, tail = 0;
    int found = -1;
    memcpy(q[tail].s, start, sizeof(double) * S);
    q[tail++].depth = 0;
    seen[bfs_cell(start, h, G)] = 1;
    while (head < tail && found < 0) {
        const bfs_node *n = &q[head++];
        if (shard_interrupt_pending()) { /* seconds of search left: the caller stops (plan_evaluate) */
            found = PLAN_SHORTEST_STOPPED;
            break;
        }
        if (n->depth >= PLAN_BFS_MAX_DEPTH) { /* not "no path": the search gave up */
            found = PLAN_SHORTEST_LIMIT;
            break;
        }
        for (int d = 0; d < PLAN_BFS_DIRS && found < 0; d++) {
            double th = 2 * PLAN_PI * d / PLAN_BFS_DIRS, a[2] = {bound * cos(th), bound * sin(th)}, nx[WORLD_MAX_DIM];
            w->ops->step(w, n->s, a, nx);
            if (plan_dist(nx, goal) <= radius) found = n->depth + 1;
            size_t c = bfs_cell(nx, h, G);
            if (seen[c]) continue;
            seen[c] = 1;
            memcpy(q[tail].s, nx, sizeof(double) * S);
            q[tail++].depth = n->depth + 1;
        }
    }
    jepa_free(seen);
    jepa_free(q);
    return found;
}

int plan_task_make(const world *w, uint64_t seed, uint64_t episode, double radius,
                   double budget_factor, double bound, double arena, plan_task *t, char *err,
                   size_t errlen) {
    memset(t, 0, sizeof *t);
    world_rng rs, rg;
    world_rng_init(&rs, seed, episode, PLAN_STREAM_START);
    world_rng_init(&rg, seed, episode, PLAN_STREAM_GOAL);
    w->ops->sample_state(w, &rs, t->start);
    uint32_t room = w->ops->region(w, t->start);
    /* a radius about the arena's size leaves no goal far enough: bounded,
     * where an unbounded redraw hung jepa-plan */
    long draws = 0;
    do w->ops->sample_state(w, &rg, t->goal);
    while ((w->ops->region(w, t->goal) == room || plan_dist(t->start, t->goal) <= radius) &&
           ++draws < PLAN_TASK_MAX_DRAWS);
    if (draws >= PLAN_TASK_MAX_DRAWS) {
        snprintf(err, errlen, "plan.success_radius: %g: task %llu of seed %llu has no goal in another "
                 "region farther than it from the start in %ld draws (the arena is %g)", radius,
                 (unsigned long long)episode, (unsigned long long)seed, draws, arena);
        return -1;
    }
    t->shortest = plan_shortest(w, t->start, t->goal, radius, bound, arena);
    t->budget = t->shortest < 0 ? 0 : (int)ceil(budget_factor * t->shortest);
    if (t->shortest == PLAN_SHORTEST_STOPPED) return 0; /* the signal is the caller's to see */
    if (t->shortest == PLAN_SHORTEST_LIMIT) {
        snprintf(err, errlen, "plan.world_params: task %llu of seed %llu: the shortest path is longer than "
                 "the search's limit of %d steps (arena %g / max_action %g = %g steps across)",
                 (unsigned long long)episode, (unsigned long long)seed, PLAN_BFS_MAX_DEPTH, arena, bound,
                 arena / bound);
        return -1;
    }
    if (t->shortest < 0) {
        snprintf(err, errlen, "plan.world_params: task %llu of seed %llu has no path from start to goal "
                 "(a closed door?)", (unsigned long long)episode, (unsigned long long)seed);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------- model-free agents */
/* Uniform in the disc of radius bound, from the stream (seed, episode, step). */
static int random_act(plan_ctl *c, const double *state, const uint8_t *frame, int step,
                      double *action) {
    (void)state;
    (void)frame;
    jepa_rng r;
    rng_init(&r, rng_key(plan_key(c->seed, c->episode, (uint64_t)step), 0xa11d, 0));
    double rad = c->bound * sqrt(rng_uniform(&r)), th = 2 * PLAN_PI * rng_uniform(&r);
    action[0] = rad * cos(th);
    action[1] = rad * sin(th);
    return 0;
}

/* Privileged: heads straight for the goal's true position at full speed. */
static int straight_act(plan_ctl *c, const double *state, const uint8_t *frame, int step,
                        double *action) {
    (void)frame;
    (void)step;
    double dx = c->task->goal[0] - state[0], dy = c->task->goal[1] - state[1], d = hypot(dx, dy);
    double f = d > c->bound ? c->bound / d : 1.0;
    action[0] = dx * f;
    action[1] = dy * f;
    return 0;
}

static void no_begin(plan_ctl *c) { (void)c; }

const plan_ctl_ops plan_ctl_random = {"random", no_begin, random_act};
const plan_ctl_ops plan_ctl_straight = {"straight", no_begin, straight_act};

/* ------------------------------------------------------------ episodes */
static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void plan_episode(plan_ctl *c, const plan_task *t, uint64_t episode, double radius,
                  plan_outcome *out, plan_trace *tr) {
    const world *w = c->w;
    double s[WORLD_MAX_DIM], a[WORLD_MAX_DIM] = {0};
    uint8_t *frame = JEPA_MALLOC(world_frame_bytes(w));
    memcpy(s, t->start, sizeof s);
    c->task = t;
    c->episode = episode;
    c->nplanned = 0;
    c->ops->begin(c);
    memset(out, 0, sizeof *out);
    out->shortest = (float)t->shortest;
    out->budget = (float)t->budget;
    double best = plan_dist(s, t->goal);
    int steps = t->budget;
    if (tr) {
        tr->npath = tr->nplans = 0;
        memcpy(tr->path[tr->npath++], s, sizeof tr->path[0]);
    }
    for (int k = 0; k < t->budget; k++) {
        if (shard_interrupt_pending()) break; /* the episode is discarded: under mpirun SIGKILL follows soon */
        w->ops->render(w, s, frame);
        double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        int decided = c->ops->act(c, s, frame, k, a);
        if (decided) {
            out->plan_s += (float)(clock_s(CLOCK_MONOTONIC) - t0);
            out->plan_cpu_s += (float)(clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
            out->decisions += 1;
            if (tr && tr->nplans < tr->cap_plans && c->nplanned > 0) {
                int n = c->nplanned < tr->plan_len ? c->nplanned : tr->plan_len;
                memcpy(tr->plans[(size_t)tr->nplans * tr->plan_len], c->planned, sizeof(double) * 2 * n);
                tr->plan_n[tr->nplans++] = n;
            }
        }
        w->ops->step(w, s, a, s);
        if (tr && tr->npath < tr->cap_path) memcpy(tr->path[tr->npath++], s, sizeof tr->path[0]);
        double d = plan_dist(s, t->goal);
        best = d < best ? d : best;
        if (d <= radius) {
            out->success = 1;
            steps = k + 1;
            break;
        }
    }
    out->steps = (float)steps;
    out->final_dist = (float)best;
    jepa_free(frame);
}
