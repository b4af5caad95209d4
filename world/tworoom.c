/* tworoom.c - the Two-Room world (after PLDM's Two-Rooms, Sobal et al. 2025):
 * a disc-shaped agent in a square arena split by a vertical wall with one
 * door. Dynamics are "collide and slide": the displacement is cut into
 * substeps short enough that no substep can cross the wall, and after each
 * substep the centre is projected back onto the free space, which removes
 * the component of the motion that points into a wall and keeps the rest
 * (sliding). Frames are rendered with exact area coverage, so sub-pixel
 * motion changes the pixels. docs/world.md describes all of it. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

#define TW_STREAM_RESET 1   /* rng stream of reset(seed, episode) */
#define TW_STREAM_EXPLORE 2 /* rng stream of explore(seed, episode) */
#define TW_WALL_VALUE 0.5   /* intensities in [0, 1]: background 0, wall, agent */
#define TW_AGENT_VALUE 1.0
#define TW_MAX_SUBSTEPS (1 << 20) /* per step: max_action / substep */
#define TW_MIN_FREE 1e-3          /* free fraction of the sampled square: rejection draws per state */

#define P(field) offsetof(world_tworoom_params, field)
static const world_param tw_params[] = {
    {"arena", WORLD_PARAM_REAL, P(arena), 0.01, 1e6, 1.0, "side of the square arena (arena units)"},
    {"wall", WORLD_PARAM_REAL, P(wall), 1e-6, 1e6, 0.0625, "middle wall thickness (arena units)"},
    {"door_center", WORLD_PARAM_REAL, P(door_center), 0, 1e6, 0.5, "y of the door centre (arena units)"},
    {"door_width", WORLD_PARAM_REAL, P(door_width), 0, 1e6, 0.25, "door gap (arena units)"},
    {"radius", WORLD_PARAM_REAL, P(radius), 1e-6, 1e6, 0.05, "agent radius (arena units)"},
    {"max_action", WORLD_PARAM_REAL, P(max_action), 1e-6, 1e6, 0.06,
     "max displacement per step (arena units)"},
    {"size", WORLD_PARAM_INT, P(size), 4, 1024, 32, "frame side (pixels)"},
    {"momentum", WORLD_PARAM_REAL, P(momentum), 0, 0.999, 0.8,
     "explore: AR(1) coefficient of the random action per step"},
    {"noise", WORLD_PARAM_REAL, P(noise), 0, 100, 1.0,
     "explore: stationary std of each random action component (x max_action)"},
    {"door_bias", WORLD_PARAM_REAL, P(door_bias), 0, 1, 0.5,
     "explore: fraction of episodes that steer through the door"},
    {"bias_gain", WORLD_PARAM_REAL, P(bias_gain), 0, 100, 0.8,
     "explore: steering strength (x max_action)"},
};
#undef P

/* The world's geometry in arena units, derived once at init. The wall is two
 * rectangles ("jambs"), one on each side of the door, extended far beyond the
 * arena so the projection never pushes the agent out through the outer walls. */
typedef struct {
    world_tworoom_params p;
    double L, r, amax;
    double xc, xw0, xw1;    /* wall centre and faces */
    double d0, d1;          /* door: y in [d0, d1] is open */
    double margin;          /* distance the projection leaves from a wall: r + a hair */
    double substep;         /* longest substep: cannot cross the wall or cut a corner deep */
    uint32_t n;             /* frame side in pixels */
    double scale;           /* pixels per arena unit */
    float *wall_cov;        /* (n, n) wall coverage in [0, 1] */
    uint8_t *bg;            /* (n, n) the rendered empty arena */
} tworoom;

static int tw_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tw_errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Longest substep of the collide-and-slide move (tw_init says why). */
static double tw_substep(const world_tworoom_params *p) { return fmin(0.5 * p->radius, 0.9 * p->wall); }

/* Free length in y of the agent's centre at horizontal distance u (0 inside
 * the wall's band) from the wall, near it: above the lower jamb grown by the
 * radius, below the upper one, within [r, arena - r]. */
static double tw_door_len(const world_tworoom_params *p, double u) {
    double r = p->radius, h = u <= 0 ? r : sqrt(fmax(r * r - u * u, 0));
    double d0 = p->door_center - 0.5 * p->door_width, d1 = p->door_center + 0.5 * p->door_width;
    return fmax(0, fmin(p->arena - r, d1 - h) - fmax(r, d0 + h));
}

/* The fraction of the square [r, arena - r]^2 that sample_state draws from
 * where the agent's centre is free: the two rooms' strips, the door's
 * passage through the wall's band and the rounded jamb ends beside it
 * (midpoint rule over 4096 columns of width r / 4096 each side). Needs a
 * room wider than the agent. */
static double tw_free_fraction(const world_tworoom_params *p) {
    enum { NCOL = 4096 };
    double r = p->radius, side = p->arena - 2 * r, room = 0.5 * (p->arena - p->wall);
    double ends = 0;
    for (int i = 0; i < NCOL; i++) ends += tw_door_len(p, (i + 0.5) * r / NCOL) * r / NCOL;
    double area = 2 * (room - 2 * r) * side + p->wall * tw_door_len(p, 0) + 2 * ends;
    return area / (side * side);
}

static int tw_check(const void *params, char *err, size_t errlen) {
    const world_tworoom_params *p = params;
    double room = 0.5 * (p->arena - p->wall); /* inner width of one room */
    if (room <= 2 * p->radius)
        return tw_errf(err, errlen,
                       "tworoom: arena %g, wall %g, radius %g: a room (%g wide) must be wider "
                       "than the agent (%g)", p->arena, p->wall, p->radius, room, 2 * p->radius);
    if (p->arena <= 2 * p->radius)
        return tw_errf(err, errlen, "tworoom: radius %g does not fit the arena %g", p->radius,
                       p->arena);
    double d0 = p->door_center - 0.5 * p->door_width, d1 = p->door_center + 0.5 * p->door_width;
    if (d0 < 0 || d1 > p->arena)
        return tw_errf(err, errlen,
                       "tworoom: door_center %g, door_width %g: the door [%g, %g] leaves the "
                       "arena [0, %g]", p->door_center, p->door_width, d0, d1, p->arena);
    if (p->max_action > p->arena)
        return tw_errf(err, errlen, "tworoom: max_action %g exceeds the arena %g", p->max_action,
                       p->arena);
    /* time bombs: a step's cost grows with its substeps (and their count
     * overflowed an int), the state sampler's with 1 / the free fraction */
    double sub = p->max_action / tw_substep(p);
    if (sub > TW_MAX_SUBSTEPS)
        return tw_errf(err, errlen, "tworoom: max_action %g, radius %g, wall %g: a step would take %.3g "
                       "substeps of at most min(radius / 2, 0.9 wall) = %g; at most %d (a larger radius "
                       "and wall, or a smaller max_action)", p->max_action, p->radius, p->wall, ceil(sub),
                       tw_substep(p), TW_MAX_SUBSTEPS);
    double fr = tw_free_fraction(p);
    if (fr < TW_MIN_FREE)
        return tw_errf(err, errlen, "tworoom: arena %g, wall %g, door_width %g, radius %g leave %.3g of the "
                       "square the agent's centre is drawn from free; at least %g (wider rooms or door, "
                       "or a smaller radius)", p->arena, p->wall, p->door_width, p->radius, fr, TW_MIN_FREE);
    return 0;
}

/* ---------------------------------------------------------------- geometry */
static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Squared distance from (x, y) to the rectangle [x0, x1] x [y0, y1]. */
static double rect_dist2(double x, double y, double x0, double x1, double y0, double y1) {
    double dx = x < x0 ? x0 - x : x > x1 ? x - x1 : 0;
    double dy = y < y0 ? y0 - y : y > y1 ? y - y1 : 0;
    return dx * dx + dy * dy;
}

/* The exact validity test: the agent's disc lies in the arena and touches no
 * jamb. Every state step() returns passes it. */
static int tw_free(const tworoom *t, const double *p) {
    double r = t->r, r2 = r * r;
    if (!(p[0] >= r && p[0] <= t->L - r && p[1] >= r && p[1] <= t->L - r)) return 0;
    return rect_dist2(p[0], p[1], t->xw0, t->xw1, -t->L, t->d0) >= r2 &&
           rect_dist2(p[0], p[1], t->xw0, t->xw1, t->d1, 2 * t->L) >= r2;
}

/* Moves p to the nearest point at distance >= m from the rectangle: radially
 * away from the nearest point when outside it, through the nearest face when
 * inside (which, for a substep shorter than half the wall, is the face it came in by). */
static void push_out(double *p, double x0, double x1, double y0, double y1, double m) {
    double qx = clampd(p[0], x0, x1), qy = clampd(p[1], y0, y1);
    double dx = p[0] - qx, dy = p[1] - qy, d2 = dx * dx + dy * dy;
    if (d2 >= m * m) return;
    if (d2 > 0) {
        double s = m / sqrt(d2);
        p[0] = qx + dx * s;
        p[1] = qy + dy * s;
        return;
    }
    double left = p[0] - x0, right = x1 - p[0], top = p[1] - y0, bottom = y1 - p[1];
    double best = fmin(fmin(left, right), fmin(top, bottom));
    if (best == left) p[0] = x0 - m;
    else if (best == right) p[0] = x1 + m;
    else if (best == top) p[1] = y0 - m;
    else p[1] = y1 + m;
}

/* Projects q onto the free space (a few rounds: a push off one jamb can only
 * land on the other in a door about as narrow as the agent). 1 if q ends free. */
static int tw_project(const tworoom *t, double *q) {
    for (int it = 0; it < 4; it++) {
        q[0] = clampd(q[0], t->r, t->L - t->r);
        q[1] = clampd(q[1], t->r, t->L - t->r);
        push_out(q, t->xw0, t->xw1, -t->L, t->d0, t->margin);
        push_out(q, t->xw0, t->xw1, t->d1, 2 * t->L, t->margin);
        if (tw_free(t, q)) return 1;
    }
    return 0;
}

/* Collide and slide: substeps of at most t->substep, each projected onto the
 * free space; a substep whose projection fails (a pocket narrower than the
 * agent) is cancelled, so p stays valid whatever happens. */
static void tw_move(const tworoom *t, double *p, double dx, double dy) {
    double len = sqrt(dx * dx + dy * dy);
    int n = (int)ceil(len / t->substep);
    if (n < 1) n = 1;
    double sx = dx / n, sy = dy / n;
    for (int k = 0; k < n; k++) {
        double q[2] = {p[0] + sx, p[1] + sy};
        if (tw_project(t, q)) {
            p[0] = q[0];
            p[1] = q[1];
        }
    }
}

/* ------------------------------------------------------------------- ops */
static void tw_sample_state(const world *w, world_rng *rng, double *state) {
    const tworoom *t = w->ctx;
    for (;;) { /* rejection: the wall takes a small part of the square */
        state[0] = t->r + (t->L - 2 * t->r) * world_rng_uniform(rng);
        state[1] = t->r + (t->L - 2 * t->r) * world_rng_uniform(rng);
        if (tw_free(t, state)) return;
    }
}

static void tw_reset(const world *w, uint64_t seed, uint64_t episode, double *state) {
    world_rng rng;
    world_rng_init(&rng, seed, episode, TW_STREAM_RESET);
    tw_sample_state(w, &rng, state);
}

static void tw_step(const world *w, const double *state, const double *action, double *next) {
    const tworoom *t = w->ctx;
    double ax = isfinite(action[0]) ? action[0] : 0, ay = isfinite(action[1]) ? action[1] : 0;
    double norm = sqrt(ax * ax + ay * ay);
    if (norm > t->amax) {
        ax *= t->amax / norm;
        ay *= t->amax / norm;
    }
    double p[2] = {state[0], state[1]};
    tw_move(t, p, ax, ay);
    next[0] = p[0];
    next[1] = p[1];
}

static uint32_t tw_region(const world *w, const double *state) {
    const tworoom *t = w->ctx;
    return state[0] < t->xc ? 0 : 1;
}

/* Writes the frame of agent centre (x, y): the wall layer, then the agent
 * disc composited over it ("over" with its exact pixel coverage). */
static void tw_render(const world *w, const double *state, uint8_t *frame) {
    const tworoom *t = w->ctx;
    uint32_t n = t->n;
    memcpy(frame, t->bg, (size_t)n * n);
    double cx = state[0] * t->scale, cy = state[1] * t->scale, rp = t->r * t->scale;
    int j0 = (int)floor(cx - rp), j1 = (int)ceil(cx + rp), i0 = (int)floor(cy - rp),
        i1 = (int)ceil(cy + rp);
    if (j0 < 0) j0 = 0;
    if (i0 < 0) i0 = 0;
    if (j1 > (int)n) j1 = (int)n;
    if (i1 > (int)n) i1 = (int)n;
    for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) {
            double a = world_disc_rect_area(rp, j - cx, j + 1 - cx, i - cy, i + 1 - cy);
            if (a <= 0) continue;
            if (a > 1) a = 1; /* rounding of the exact area */
            double v = TW_WALL_VALUE * t->wall_cov[(size_t)i * n + j] * (1 - a) +
                       TW_AGENT_VALUE * a;
            frame[(size_t)i * n + j] = (uint8_t)floor(v * 255 + 0.5);
        }
}

/* x rounded to the nearest float. Through a volatile because GCC 12.2 at -O2
 * (Debian 12.2.0-14) drops the round trip when it SLP-vectorises a pair of
 * them: `o[0] = (float)x; o[1] = (float)y;` compiles to one 16-byte store of
 * the unrounded doubles. */
static double round_f32(double x) {
    volatile float f = (float)x;
    return f;
}

/* One episode of the exploration policy. The random part of the action is a
 * 2-D AR(1) (discrete Ornstein-Uhlenbeck) process with per-step coefficient
 * `momentum` and stationary std noise * max_action per component, so
 * directions persist for about 1 / (1 - momentum) steps. With probability
 * door_bias an episode also steers (bias_gain * max_action towards a target):
 * to the door centre while in its starting room, then to a goal drawn in the
 * other room. Actions are clipped to max_action and rounded to float. */
static void tw_explore(const world *w, uint64_t seed, uint64_t episode, uint32_t steps,
                       double *states, double *actions) {
    const tworoom *t = w->ctx;
    const world_tworoom_params *p = &t->p;
    world_rng rng;
    world_rng_init(&rng, seed, episode, TW_STREAM_EXPLORE);
    tw_reset(w, seed, episode, states);
    double sigma = p->noise * t->amax, innov = sigma * sqrt(1 - p->momentum * p->momentum);
    double v[2] = {sigma * world_rng_normal(&rng), sigma * world_rng_normal(&rng)};
    int steer = world_rng_uniform(&rng) < p->door_bias;
    uint32_t room0 = tw_region(w, states);
    double goal[2];
    do tw_sample_state(w, &rng, goal);
    while (tw_region(w, goal) == room0);
    double door[2] = {t->xc, p->door_center};
    for (uint32_t k = 0; k + 1 < steps; k++) {
        const double *s = states + 2 * k;
        double a[2] = {v[0], v[1]};
        if (steer) {
            const double *target = tw_region(w, s) == room0 ? door : goal;
            double dx = target[0] - s[0], dy = target[1] - s[1], d = sqrt(dx * dx + dy * dy);
            if (d > 1e-12) {
                a[0] += p->bias_gain * t->amax * dx / d;
                a[1] += p->bias_gain * t->amax * dy / d;
            }
        }
        double norm = sqrt(a[0] * a[0] + a[1] * a[1]);
        if (norm > t->amax) {
            a[0] *= t->amax / norm;
            a[1] *= t->amax / norm;
        }
        actions[2 * k] = round_f32(a[0]);
        actions[2 * k + 1] = round_f32(a[1]);
        tw_step(w, s, actions + 2 * k, states + 2 * (k + 1));
        v[0] = p->momentum * v[0] + innov * world_rng_normal(&rng);
        v[1] = p->momentum * v[1] + innov * world_rng_normal(&rng);
    }
}

/* ----------------------------------------------------------- init / free */
static double overlap(double a0, double a1, double b0, double b1) {
    double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* The static wall layer: exact coverage of each pixel by the two jambs
 * (axis-aligned rectangles, so coverage is a product of 1-D overlaps). */
static void tw_draw_walls(tworoom *t) {
    double s = t->scale, X0 = t->xw0 * s, X1 = t->xw1 * s;
    for (uint32_t i = 0; i < t->n; i++)
        for (uint32_t j = 0; j < t->n; j++) {
            double ox = overlap(j, j + 1.0, X0, X1);
            double oy = overlap(i, i + 1.0, -1, t->d0 * s) + overlap(i, i + 1.0, t->d1 * s, t->n + 1.0);
            double c = ox * oy;
            if (c > 1) c = 1;
            t->wall_cov[(size_t)i * t->n + j] = (float)c;
            t->bg[(size_t)i * t->n + j] = (uint8_t)floor(TW_WALL_VALUE * c * 255 + 0.5);
        }
}

static int tw_init(world *w, char *err, size_t errlen) {
    tworoom *t = calloc(1, sizeof *t);
    if (!t) return tw_errf(err, errlen, "tworoom: out of memory");
    t->p = *(const world_tworoom_params *)w->params;
    t->L = t->p.arena;
    t->r = t->p.radius;
    t->amax = t->p.max_action;
    t->xc = 0.5 * t->L;
    t->xw0 = t->xc - 0.5 * t->p.wall;
    t->xw1 = t->xc + 0.5 * t->p.wall;
    t->d0 = t->p.door_center - 0.5 * t->p.door_width;
    t->d1 = t->p.door_center + 0.5 * t->p.door_width;
    t->margin = t->r + 1e-9 * t->L;
    /* Free points are >= r from a jamb, so a substep shorter than r never
     * lands inside one, and the projection then moves x away from the wall
     * (or only in y inside the wall's band). A substep shorter than the
     * wall cannot jump the band, so the room changes only through the
     * door's free part, however narrow the barrier at a closed door's jamb
     * ends. r/2 also bounds how deep a substep's chord cuts a rounded jamb
     * corner: r - sqrt(r^2 - r^2/16) < 0.04 r. */
    t->substep = tw_substep(&t->p);
    t->n = (uint32_t)t->p.size;
    t->scale = t->n / t->L;
    t->wall_cov = malloc((size_t)t->n * t->n * sizeof *t->wall_cov);
    t->bg = malloc((size_t)t->n * t->n);
    if (!t->wall_cov || !t->bg) {
        uint32_t n = t->n;
        free(t->wall_cov);
        free(t->bg);
        free(t);
        return tw_errf(err, errlen, "tworoom: out of memory for a %ux%u frame", n, n);
    }
    tw_draw_walls(t);
    w->ctx = t;
    w->channels = 1;
    w->height = w->width = t->n;
    w->action_dim = w->state_dim = 2;
    w->nregions = 2;
    w->step_work = (uint32_t)fmax(1, ceil(t->amax / t->substep)); /* tw_move's n at full length */
    return 0;
}

static void tw_free_ctx(world *w) {
    tworoom *t = w->ctx;
    if (!t) return;
    free(t->wall_cov);
    free(t->bg);
    free(t);
    w->ctx = NULL;
}

const world_ops world_tworoom_ops = {
    .name = "tworoom",
    .summary = "a disc agent in a square arena split by a wall with one door (PLDM Two-Rooms)",
    .params = tw_params,
    .nparams = (int)(sizeof tw_params / sizeof tw_params[0]),
    .params_size = sizeof(world_tworoom_params),
    .check = tw_check,
    .init = tw_init,
    .free = tw_free_ctx,
    .reset = tw_reset,
    .sample_state = tw_sample_state,
    .step = tw_step,
    .render = tw_render,
    .region = tw_region,
    .explore = tw_explore,
};
