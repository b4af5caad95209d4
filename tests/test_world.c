/* test_world.c - the world library: counter-based RNG, parameter table,
 * registry, and the Two-Room world's contract. Validity is judged by an
 * oracle written here from the geometry (distance from the centre to the
 * wall rectangles clipped to the arena), not by the library's own test; the
 * pixel coverage is checked against numerical integration; sliding and
 * clipping against hand-computed positions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "world.h"

#define PI 3.14159265358979323846

/* For checks inside long loops: keeps `ok` and reports the first failure only
 * (a CU_ASSERT per iteration would flood the log). */
#define CHECK(c)                                                                 \
    do {                                                                         \
        if (!(c) && ok) {                                                        \
            fprintf(stderr, "\n  %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            ok = 0;                                                              \
        }                                                                        \
    } while (0)

static char err[WORLD_ERR_MAX];

static world_tworoom_params defaults(void) {
    world_tworoom_params p;
    world_params_default(&world_tworoom_ops, &p);
    return p;
}

static void open_world(world *w, const world_tworoom_params *p) {
    int rc = world_init(w, &world_tworoom_ops, p, err, sizeof err);
    if (rc) fprintf(stderr, "world_init: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
}

/* ------------------------------------------------------------------ oracle */
typedef struct {
    double L, r, xw0, xw1, d0, d1, xc;
} geom;

static geom geom_of(const world_tworoom_params *p) {
    geom g = {p->arena, p->radius, 0.5 * (p->arena - p->wall), 0.5 * (p->arena + p->wall),
              p->door_center - 0.5 * p->door_width, p->door_center + 0.5 * p->door_width,
              0.5 * p->arena};
    return g;
}

static double dist_rect(double x, double y, double x0, double x1, double y0, double y1) {
    double cx = fmin(fmax(x, x0), x1), cy = fmin(fmax(y, y0), y1);
    return hypot(x - cx, y - cy);
}

/* 1 iff the disc of radius r at (x, y) is inside the arena and touches no
 * part of the wall inside the arena: [xw0, xw1] x ([0, d0] u [d1, L]). */
static int oracle_valid(const geom *g, const double *s) {
    if (!(s[0] >= g->r && s[0] <= g->L - g->r && s[1] >= g->r && s[1] <= g->L - g->r)) return 0;
    if (g->d0 > 0 && dist_rect(s[0], s[1], g->xw0, g->xw1, 0, g->d0) < g->r) return 0;
    if (g->d1 < g->L && dist_rect(s[0], s[1], g->xw0, g->xw1, g->d1, g->L) < g->r) return 0;
    return 1;
}

/* ---------------------------------------------------------------------- rng */
static void test_rng(void) {
    world_rng a, b, c;
    world_rng_init(&a, 7, 1, 2);
    world_rng_init(&b, 7, 1, 2);
    world_rng_init(&c, 7, 2, 1);
    int same = 1, diff = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = world_rng_u64(&a), y = world_rng_u64(&b), z = world_rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    CU_ASSERT(same);
    CU_ASSERT(diff == 1000); /* (seed, a, b) and (seed, b, a) are different streams */
    /* counter-based: draw k is a function of (key, k) alone */
    world_rng d;
    world_rng_init(&d, 7, 1, 2);
    d.counter = 999;
    world_rng_init(&a, 7, 1, 2);
    for (int i = 0; i < 999; i++) world_rng_u64(&a);
    CU_ASSERT(world_rng_u64(&a) == world_rng_u64(&d));
    /* moments: uniform mean 1/2 var 1/12; normal mean 0 var 1 (n = 2e5, 5 sigma) */
    double su = 0, suu = 0, sn = 0, snn = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = world_rng_uniform(&a), z = world_rng_normal(&a);
        CU_ASSERT(u >= 0 && u < 1);
        su += u, suu += u * u, sn += z, snn += z * z;
    }
    CU_ASSERT(fabs(su / n - 0.5) < 5 * sqrt(1.0 / 12 / n));
    CU_ASSERT(fabs(suu / n - su * su / n / n - 1.0 / 12) < 0.002);
    CU_ASSERT(fabs(sn / n) < 5 / sqrt(n));
    CU_ASSERT(fabs(snn / n - 1) < 0.02);
}

/* --------------------------------------------------------------- parameters */
static void test_params(void) {
    const world_ops *ops = world_find("tworoom");
    CU_ASSERT_FATAL(ops == &world_tworoom_ops);
    CU_ASSERT(world_find("threeroom") == NULL);
    CU_ASSERT(world_find(NULL) == NULL);
    world_tworoom_params p = defaults();
    CU_ASSERT(p.arena == 1 && p.size == 32 && p.radius == 0.05 && p.door_width == 0.25);
    CU_ASSERT(world_params_set(ops, &p, "door_width=0.3", err, sizeof err) == 0);
    CU_ASSERT(p.door_width == 0.3);
    CU_ASSERT(world_params_set(ops, &p, "doorwidth=0.3", err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "unknown parameter 'doorwidth'") != NULL);
    CU_ASSERT(world_params_set(ops, &p, "radius=abc", err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "radius") && strstr(err, "'abc' is not a number"));
    CU_ASSERT(world_params_set(ops, &p, "size=32.5", err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "size") && strstr(err, "not a whole number"));
    CU_ASSERT(world_params_set(ops, &p, "size=2", err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "size") && strstr(err, "out of range"));
    CU_ASSERT(world_params_set(ops, &p, "radius=nan", err, sizeof err) == -1);
    CU_ASSERT(world_params_set(ops, &p, "radius", err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "expected name=value") != NULL);
    CU_ASSERT(p.size == 32 && p.radius == 0.05); /* failures change nothing */
    /* rules between parameters */
    world w;
    p = defaults();
    p.door_center = 0.9;
    CU_ASSERT(world_init(&w, ops, &p, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "door_center 0.9") && strstr(err, "leaves the arena"));
    CU_ASSERT(w.ops == NULL && w.ctx == NULL);
    p = defaults();
    p.radius = 0.3;
    CU_ASSERT(world_init(&w, ops, &p, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "radius 0.3") != NULL);
    p = defaults();
    p.wall = -1;
    CU_ASSERT(world_init(&w, ops, &p, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "wall") && strstr(err, "out of range"));
    CU_ASSERT(world_init(&w, ops, NULL, err, sizeof err) == 0); /* NULL: defaults */
    CU_ASSERT(w.channels == 1 && w.height == 32 && w.width == 32);
    CU_ASSERT(w.action_dim == 2 && w.state_dim == 2 && w.nregions == 2);
    CU_ASSERT(world_frame_bytes(&w) == 1024);
    world_free(&w);
    CU_ASSERT(w.ops == NULL);
    world_free(&w); /* a zeroed world frees fine */
}

/* The free fraction of [r, L - r]^2 for the agent's centre by Monte Carlo,
 * from the geometry alone: both jambs, grown by the radius, left out. */
static double mc_free(double L, double wall, double door_center, double door_width, double r) {
    double x0 = 0.5 * (L - wall), x1 = 0.5 * (L + wall), d0 = door_center - 0.5 * door_width,
           d1 = door_center + 0.5 * door_width;
    world_rng g;
    world_rng_init(&g, 9, 9, 9);
    int hit = 0, n = 1 << 23;
    for (int i = 0; i < n; i++) {
        double x = r + (L - 2 * r) * world_rng_uniform(&g), y = r + (L - 2 * r) * world_rng_uniform(&g);
        double dx = x < x0 ? x0 - x : x > x1 ? x - x1 : 0, dyl = y > d0 ? y - d0 : 0, dyu = y < d1 ? d1 - y : 0;
        hit += dx * dx + dyl * dyl >= r * r && dx * dx + dyu * dyu >= r * r;
    }
    return (double)hit / n;
}

/* Parameters that used to be time bombs are refused in one line: a step of
 * more than 2^20 substeps (max_action / min(radius/2, 0.9 wall); at 2e12 the
 * count overflowed an int and one substep crossed the wall), and rooms and
 * door leaving less than 1/1000 of the sampled square free (its figure held
 * to a Monte Carlo estimate). Exactly 2^20 substeps, and 1.8e-3 free (once
 * through the rounded jamb ends alone, the door narrower than the agent:
 * counting the rooms' strips and the straight passage only would refuse
 * it), are accepted and run. */
static void test_param_limits(void) {
    const world_ops *ops = &world_tworoom_ops;
    world w;
    world_tworoom_params p;
    static const char *const bomb[][5] = { /* set, then what the line names */
        {"max_action=0.9", "radius=1e-6", "wall=1e-6", "arena=1", "1.8e+06 substeps"},
        {"arena=1e6", "max_action=1e6", "radius=1e-6", "wall=1e-6", "2e+12 substeps"},
        {"arena=1e4", "radius=0.015625", "wall=0.0625", "max_action=8192.5", "1.05e+06 substeps"},
    };
    for (int k = 0; k < 3; k++) {
        p = defaults();
        for (int j = 0; j < 4; j++) CU_ASSERT_FATAL(world_params_set(ops, &p, bomb[k][j], err, sizeof err) == 0);
        err[0] = 0;
        CU_ASSERT(world_init(&w, ops, &p, err, sizeof err) == -1);
        printf("\n    %s", err);
        CU_ASSERT(strstr(err, bomb[k][4]) && strstr(err, "at most 1048576") && strstr(err, "max_action") &&
                  !strchr(err, '\n'));
    }
    p = defaults(); /* 8192 / (0.015625 / 2) = 2^20 substeps: allowed, and a full step runs */
    p.arena = 1e4, p.radius = 0.015625, p.max_action = 8192;
    CU_ASSERT_FATAL(world_init(&w, ops, &p, err, sizeof err) == 0);
    double s0[2] = {100, 100}, a[2] = {8192, 0}, s1[2];
    w.ops->step(&w, s0, a, s1);
    CU_ASSERT(s1[0] < 0.5 * (1e4 - 0.0625) && s1[1] == 100); /* slid to the wall, not through it */
    world_free(&w);

    static const double room[][3] = { /* wall, door_width, radius: refused (0) or not (1) */
        {0.8, 0.05, 0.0499999}, {0.8, 0.05, 0.0499}, {0.8, 0.05, 0.0496625}, {0.8, 0.09, 0.0499999}};
    for (int k = 0; k < 4; k++) {
        p = defaults();
        p.wall = room[k][0], p.door_width = room[k][1], p.radius = room[k][2];
        double mc = mc_free(1, p.wall, 0.5, p.door_width, p.radius), said = NAN;
        err[0] = 0;
        int rc = world_init(&w, ops, &p, err, sizeof err);
        printf("\n    wall %g door %g radius %g: Monte Carlo free %.3e: %s", p.wall, p.door_width, p.radius,
               mc, rc ? err : "accepted");
        if (mc < 1e-3) {
            const char *at = strstr(err, " leave ");
            CU_ASSERT(rc == -1 && at && sscanf(at, " leave %lf", &said) == 1 && strstr(err, "at least 0.001") &&
                      strstr(err, "door_width") && !strchr(err, '\n'));
            CU_ASSERT(fabs(said - mc) < 0.1 * mc);
        } else {
            CU_ASSERT_FATAL(rc == 0);
            world_rng g;
            world_rng_init(&g, 1, 2, 3);
            double st[2];
            for (int i = 0; i < 200; i++) w.ops->sample_state(&w, &g, st);
            world_free(&w);
        }
    }
}

/* ------------------------------------------------------------------- reset */
static void test_reset(void) {
    world w;
    world_tworoom_params p = defaults();
    open_world(&w, &p);
    geom g = geom_of(&p);
    double s[2], t[2];
    int n = 20000, room1 = 0, same = 1, differ = 0, valid = 1;
    double sx = 0, sy = 0;
    for (int e = 0; e < n; e++) {
        w.ops->reset(&w, 42, (uint64_t)e, s);
        w.ops->reset(&w, 42, (uint64_t)e, t);
        same &= !memcmp(s, t, sizeof s);
        w.ops->reset(&w, 43, (uint64_t)e, t);
        differ += memcmp(s, t, sizeof s) != 0;
        valid &= oracle_valid(&g, s);
        room1 += w.ops->region(&w, s) == 1;
        CU_ASSERT(w.ops->region(&w, s) == (s[0] < g.xc ? 0u : 1u));
        sx += s[0], sy += s[1];
    }
    CU_ASSERT(same);
    CU_ASSERT(differ == n);
    CU_ASSERT(valid);
    /* uniform over free space: both rooms equally likely, centred (5 sigma) */
    CU_ASSERT(fabs(room1 / (double)n - 0.5) < 5 * 0.5 / sqrt(n));
    CU_ASSERT(fabs(sx / n - 0.5) < 0.01 && fabs(sy / n - 0.5) < 0.01);
    /* sample_state: valid and a function of the rng alone */
    world_rng r1, r2;
    world_rng_init(&r1, 5, 6, 7);
    world_rng_init(&r2, 5, 6, 7);
    for (int i = 0; i < 1000; i++) {
        w.ops->sample_state(&w, &r1, s);
        w.ops->sample_state(&w, &r2, t);
        CU_ASSERT_FATAL(!memcmp(s, t, sizeof s) && oracle_valid(&g, s));
    }
    world_free(&w);
}

/* -------------------------------------------------------------- dynamics */
/* n random steps from random starts (a new start every 500 steps), actions
 * uniform in scale * [-amax, amax]^2 (beyond the bound when scale > 1). Every
 * state must be valid; a change of room by a move shorter than the wall is
 * thick must cross the centre line inside the door, at least r from both
 * jambs (less the move). Returns the number of room changes. */
static long random_walk(const world_tworoom_params *p, long n, uint64_t seed, double scale) {
    world w;
    open_world(&w, p);
    geom g = geom_of(p);
    world_rng rng;
    world_rng_init(&rng, seed, 0, 0);
    double s[2], a[2], t[2];
    long changes = 0, invalid = 0, bad_cross = 0;
    for (long i = 0; i < n; i++) {
        if (i % 500 == 0) w.ops->reset(&w, seed, (uint64_t)i, s);
        a[0] = scale * p->max_action * (2 * world_rng_uniform(&rng) - 1);
        a[1] = scale * p->max_action * (2 * world_rng_uniform(&rng) - 1);
        w.ops->step(&w, s, a, t);
        invalid += !oracle_valid(&g, t);
        if (w.ops->region(&w, t) != w.ops->region(&w, s)) {
            changes++;
            double len = hypot(t[0] - s[0], t[1] - s[1]);
            double y = s[1] + (t[1] - s[1]) * (g.xc - s[0]) / (t[0] - s[0]);
            if (len < p->wall && (y < g.d0 + g.r - len || y > g.d1 - g.r + len))
                bad_cross++;
        }
        s[0] = t[0], s[1] = t[1];
    }
    CU_ASSERT(invalid == 0);
    CU_ASSERT(bad_cross == 0);
    if (invalid || bad_cross) fprintf(stderr, "invalid %ld bad crossings %ld\n", invalid, bad_cross);
    world_free(&w);
    return changes;
}

static void test_never_inside_walls(void) {
    world_tworoom_params p = defaults();
    long c = random_walk(&p, 1000000, 1, 2.0);
    CU_ASSERT(c > 100); /* the door is used */
    /* small actions: every crossing is checked against the gap */
    c = random_walk(&p, 300000, 2, 0.3);
    CU_ASSERT(c > 50);
    /* a thin wall, a small agent and huge actions: substeps must not tunnel */
    p.wall = 0.001;
    p.radius = 0.01;
    p.max_action = 0.2;
    p.door_center = 0.2;
    p.door_width = 0.1;
    c = random_walk(&p, 100000, 3, 2.0);
    CU_ASSERT(c > 10);
    /* a closed door (narrower than the agent): no crossing at all, even with
     * actions longer than the wall is thick */
    p = defaults();
    p.door_width = 2 * p.radius - 1e-4;
    p.max_action = 0.3;
    CU_ASSERT(random_walk(&p, 300000, 4, 2.0) == 0);
    p.wall = 0.001;
    p.radius = 0.01;
    p.door_width = 0.0199;
    p.max_action = 0.2;
    CU_ASSERT(random_walk(&p, 100000, 5, 2.0) == 0);
}

/* Starts next to every feature (jamb ends and their corners, the door's
 * middle, wall/arena junctions, room corners) and pushes with the largest
 * action in 64 directions for 30 steps each. */
static void test_adversarial_pushes(void) {
    for (int variant = 0; variant < 3; variant++) {
        world_tworoom_params p = defaults();
        if (variant == 1) p.door_width = 2 * p.radius + 1e-6; /* just passable */
        if (variant == 2) p.max_action = 0.4, p.door_center = p.door_width / 2; /* door at the edge */
        world w;
        open_world(&w, &p);
        geom g = geom_of(&p);
        double m = g.r + 1e-6;
        double starts[][2] = {
            {g.xw0 - m, g.d0 - 0.01}, {g.xw0 - m, g.d1 + 0.01}, {g.xw1 + m, g.d0 - 0.01},
            {g.xw1 + m, g.d1 + 0.01}, {g.xw0 - m * 0.8, g.d0 - m * 0.6}, {g.xc, 0.5 * (g.d0 + g.d1)},
            {g.xw0 - m, m}, {g.xw1 + m, g.L - m}, {m, m}, {g.L - m, m}, {m, g.L - m},
            {g.L - m, g.L - m}, {g.xw1 + m * 0.8, g.d1 + m * 0.6}, {g.xc - 0.1, g.d0 + m},
        };
        int n = (int)(sizeof starts / sizeof starts[0]), invalid = 0, tried = 0;
        for (int k = 0; k < n; k++) {
            if (!oracle_valid(&g, starts[k])) continue; /* e.g. the door's middle when closed */
            tried++;
            for (int d = 0; d < 64; d++) {
                double ang = 6.283185307179586 * d / 64, s[2] = {starts[k][0], starts[k][1]};
                double a[2] = {cos(ang) * p.max_action * 1.5, sin(ang) * p.max_action * 1.5};
                for (int i = 0; i < 30; i++) {
                    w.ops->step(&w, s, a, s); /* in place */
                    invalid += !oracle_valid(&g, s);
                }
            }
        }
        CU_ASSERT(tried >= 10);
        CU_ASSERT(invalid == 0);
        world_free(&w);
    }
}

static void step_to(const world *w, double x, double y, double ax, double ay, double *out) {
    double s[2] = {x, y}, a[2] = {ax, ay};
    w->ops->step(w, s, a, out);
}

/* Pushing diagonally into a wall keeps the tangential part of the motion. */
static void test_sliding(void) {
    world w;
    world_tworoom_params p = defaults();
    open_world(&w, &p);
    geom g = geom_of(&p);
    double t[2];
    /* into the middle wall's left face (jamb above the door), moving down */
    step_to(&w, 0.40, 0.20, 0.04, 0.03, t);
    CU_ASSERT(fabs(t[0] - (g.xw0 - g.r)) < 1e-8 && t[0] <= g.xw0 - g.r);
    CU_ASSERT(fabs(t[1] - 0.23) < 1e-12);
    /* the right face of the jamb below the door, moving up */
    step_to(&w, 0.62, 0.80, -0.05, -0.02, t);
    CU_ASSERT(fabs(t[0] - (g.xw1 + g.r)) < 1e-8 && t[0] >= g.xw1 + g.r);
    CU_ASSERT(fabs(t[1] - 0.78) < 1e-12);
    /* the outer walls */
    step_to(&w, 0.10, 0.06, 0.03, -0.04, t);
    CU_ASSERT(t[1] == g.r && fabs(t[0] - 0.13) < 1e-12);
    step_to(&w, 0.93, 0.50, 0.04, 0.03, t);
    CU_ASSERT(t[0] == g.L - g.r && fabs(t[1] - 0.53) < 1e-12);
    /* a room corner stops both components */
    step_to(&w, 0.06, 0.94, -0.04, 0.04, t);
    CU_ASSERT(t[0] == g.r && t[1] == g.L - g.r);
    /* inside the door, pushed against the upper jamb's end, moving right */
    step_to(&w, g.xc - 0.01, g.d0 + g.r + 0.01, 0.02, -0.03, t);
    CU_ASSERT(fabs(t[1] - (g.d0 + g.r)) < 1e-8 && t[1] >= g.d0 + g.r);
    CU_ASSERT(fabs(t[0] - (g.xc + 0.01)) < 1e-12);
    /* repeated pushes along a face keep moving at the tangential speed */
    double s[2] = {g.xw0 - g.r - 0.001, 0.06}, a[2] = {0.03, 0.05};
    for (int i = 0; i < 5; i++) w.ops->step(&w, s, a, s);
    CU_ASSERT(fabs(s[1] - 0.31) < 1e-9);
    CU_ASSERT(fabs(s[0] - (g.xw0 - g.r)) < 1e-8);
    world_free(&w);
}

/* Drives along the door's centre line from the left room; 1 if it gets through. */
static int drive_through(double door_width) {
    world w;
    world_tworoom_params p = defaults();
    p.door_width = door_width;
    open_world(&w, &p);
    double s[2] = {0.25, p.door_center}, a[2] = {p.max_action, 0};
    for (int i = 0; i < 40; i++) w.ops->step(&w, s, a, s);
    int through = w.ops->region(&w, s) == 1;
    a[0] = -p.max_action; /* and back */
    for (int i = 0; i < 40; i++) w.ops->step(&w, s, a, s);
    through += through && w.ops->region(&w, s) == 0;
    world_free(&w);
    return through;
}

static void test_door_gap(void) {
    double r = defaults().radius;
    CU_ASSERT(drive_through(2 * r + 1e-3) == 2); /* both ways */
    CU_ASSERT(drive_through(2 * r + 1e-7) == 2);
    CU_ASSERT(drive_through(2 * r - 1e-3) == 0);
    CU_ASSERT(drive_through(2 * r - 1e-7) == 0);
    CU_ASSERT(drive_through(0) == 0);
}

static void test_clipping(void) {
    world w;
    world_tworoom_params p = defaults();
    open_world(&w, &p);
    double t[2];
    step_to(&w, 0.2, 0.5, 1.0, 1.0, t); /* free space: the full bound along the diagonal */
    CU_ASSERT(fabs(hypot(t[0] - 0.2, t[1] - 0.5) - p.max_action) < 1e-12);
    CU_ASSERT(fabs((t[0] - 0.2) - (t[1] - 0.5)) < 1e-15);
    step_to(&w, 0.2, 0.5, -0.03, 0.02, t); /* within the bound: exactly the action */
    CU_ASSERT(fabs(t[0] - 0.17) < 1e-15 && fabs(t[1] - 0.52) < 1e-15);
    step_to(&w, 0.2, 0.5, NAN, 0.02, t); /* non-finite components are 0 */
    CU_ASSERT(t[0] == 0.2 && fabs(t[1] - 0.52) < 1e-15);
    step_to(&w, 0.2, 0.5, INFINITY, -INFINITY, t);
    CU_ASSERT(t[0] == 0.2 && t[1] == 0.5);
    step_to(&w, 0.2, 0.5, 0, 0, t);
    CU_ASSERT(t[0] == 0.2 && t[1] == 0.5);
    /* purity: the input is untouched, equal inputs give equal outputs */
    double s[2] = {0.45, 0.3}, a[2] = {0.05, 0.01}, u[2], v[2];
    w.ops->step(&w, s, a, u);
    w.ops->step(&w, s, a, v);
    CU_ASSERT(s[0] == 0.45 && s[1] == 0.3 && !memcmp(u, v, sizeof u));
    world_free(&w);
}

/* ---------------------------------------------------------------- explore */
static void test_explore(void) {
    world w;
    world_tworoom_params p = defaults();
    open_world(&w, &p);
    geom g = geom_of(&p);
    enum { T = 32 };
    double s[T * 2], s2[T * 2], a[(T - 1) * 2], a2[(T - 1) * 2];
    int n = 4000, crossed = 0, ok = 1;
    for (int e = 0; e < n; e++) {
        w.ops->explore(&w, 9, (uint64_t)e, T, s, a);
        w.ops->explore(&w, 9, (uint64_t)e, T, s2, a2);
        CHECK(!memcmp(s, s2, sizeof s) && !memcmp(a, a2, sizeof a));
        double r0[2];
        w.ops->reset(&w, 9, (uint64_t)e, r0);
        CHECK(!memcmp(r0, s, sizeof r0));
        int c = 0;
        for (int t = 0; t < T; t++) {
            CHECK(oracle_valid(&g, s + 2 * t));
            c |= w.ops->region(&w, s + 2 * t) != w.ops->region(&w, s);
        }
        crossed += c;
        /* the actions as stored (f32) replay to the same states, bitwise */
        double x[2] = {s[0], s[1]};
        for (int t = 0; t + 1 < T; t++) {
            volatile float fa[2] = {(float)a[2 * t], (float)a[2 * t + 1]}; /* see round_f32 */
            double da[2] = {fa[0], fa[1]};
            CHECK(da[0] == a[2 * t] && da[1] == a[2 * t + 1]);
            CHECK(hypot(da[0], da[1]) <= p.max_action * (1 + 1e-6));
            w.ops->step(&w, x, da, x);
            CHECK(!memcmp(x, s + 2 * (t + 1), sizeof x));
        }
    }
    CU_ASSERT(ok);
    double frac = crossed / (double)n;
    fprintf(stderr, "\n  door crossing fraction (T=%d, defaults): %.3f\n", T, frac);
    CU_ASSERT(frac >= 0.3);
    /* another seed gives other episodes; without steering fewer cross */
    w.ops->explore(&w, 10, 0, T, s2, a2);
    w.ops->explore(&w, 9, 0, T, s, a);
    CU_ASSERT(memcmp(s, s2, sizeof s) != 0);
    world_free(&w);
    p.door_bias = 0;
    open_world(&w, &p);
    int crossed0 = 0;
    for (int e = 0; e < n; e++) {
        w.ops->explore(&w, 9, (uint64_t)e, T, s, a);
        int c = 0;
        for (int t = 0; t < T; t++) c |= w.ops->region(&w, s + 2 * t) != w.ops->region(&w, s);
        crossed0 += c;
    }
    CU_ASSERT(crossed0 > 0 && crossed0 < crossed);
    /* steps = 1: just the start */
    w.ops->explore(&w, 9, 0, 1, s, a);
    w.ops->reset(&w, 9, 0, s2);
    CU_ASSERT(s[0] == s2[0] && s[1] == s2[1]);
    world_free(&w);
}

/* The random part of exploration is the AR(1) docs/world.md states: without
 * steering, and with noise 0.1 (no action comes near max_action, so none is
 * clipped), each action component is v_t with stationary std noise
 * max_action and lag-1 autocorrelation momentum, the two components
 * uncorrelated. 4000 episodes give ~250k samples: the std is known to
 * ~0.3%, the correlations to ~0.005. */
static void test_explore_ar1(void) {
    for (int k = 0; k < 2; k++) {
        world w;
        world_tworoom_params p = defaults();
        p.door_bias = 0;
        p.noise = 0.1;
        p.momentum = k ? 0.5 : 0.8;
        open_world(&w, &p);
        enum { T = 32 };
        double s[T * 2], a[(T - 1) * 2], sum = 0, s2 = 0, s11 = 0, sxy = 0, amax = 0;
        long cnt = 0, pairs = 0;
        for (int e = 0; e < 4000; e++) {
            w.ops->explore(&w, 5, (uint64_t)e, T, s, a);
            for (int t = 0; t + 1 < T; t++) {
                sxy += a[2 * t] * a[2 * t + 1];
                for (int c = 0; c < 2; c++) {
                    double x = a[2 * t + c];
                    sum += x, s2 += x * x, cnt++;
                    amax = fmax(amax, hypot(a[2 * t], a[2 * t + 1]));
                    if (t + 2 < T) s11 += x * a[2 * (t + 1) + c], pairs++;
                }
            }
        }
        double sigma = p.noise * p.max_action, sd = sqrt(s2 / cnt), rho = (s11 / pairs) / (s2 / cnt);
        double cxy = sxy / (cnt / 2) / (s2 / cnt); /* x against y: independent components */
        printf("\n  momentum %.1f: action std %.5f (want %.5f), lag-1 correlation %.4f, x-y %.4f, "
               "mean %.1e, largest |a| %.3f of max_action", p.momentum, sd, sigma, rho, cxy, sum / cnt,
               amax / p.max_action);
        CU_ASSERT(amax < 0.9 * p.max_action); /* nothing clipped */
        CU_ASSERT(fabs(sd / sigma - 1) < 0.02);
        CU_ASSERT(fabs(rho - p.momentum) < 0.02);
        CU_ASSERT(fabs(cxy) < 0.02);
        CU_ASSERT(fabs(sum / cnt) < 0.02 * sigma);
        world_free(&w);
    }
}

/* --------------------------------------------------------------- renderer */
/* Area of the disc of radius r at the origin inside [x0,x1]x[y0,y1] by the
 * midpoint rule over x of the chord's overlap with [y0, y1]. */
static double area_oracle(double r, double x0, double x1, double y0, double y1) {
    int n = 200000;
    double h = (x1 - x0) / n, sum = 0;
    for (int i = 0; i < n; i++) {
        double x = x0 + (i + 0.5) * h, c = r * r - x * x;
        if (c <= 0) continue;
        double top = fmin(y1, sqrt(c)), bot = fmax(y0, -sqrt(c));
        if (top > bot) sum += top - bot;
    }
    return sum * h;
}

static void test_disc_coverage(void) {
    CU_ASSERT(fabs(world_disc_rect_area(1.3, -2, 2, -2, 2) - PI * 1.69) < 1e-12);
    CU_ASSERT(fabs(world_disc_rect_area(1, 0, 5, 0, 5) - PI / 4) < 1e-12);
    CU_ASSERT(world_disc_rect_area(1, 2, 3, -1, 1) == 0);
    CU_ASSERT(fabs(world_disc_rect_area(2, -0.5, 0.5, -0.5, 0.5) - 1) < 1e-12);
    world_rng rng;
    world_rng_init(&rng, 1, 2, 3);
    double worst = 0;
    for (int i = 0; i < 200; i++) { /* pixels at random offsets around a disc */
        double r = 0.3 + 2 * world_rng_uniform(&rng);
        double x0 = (2 * world_rng_uniform(&rng) - 1) * (r + 1), y0 = (2 * world_rng_uniform(&rng) - 1) * (r + 1);
        double a = world_disc_rect_area(r, x0, x0 + 1, y0, y0 + 1);
        worst = fmax(worst, fabs(a - area_oracle(r, x0, x0 + 1, y0, y0 + 1)));
        CU_ASSERT(a >= 0 && a <= 1 + 1e-12);
    }
    CU_ASSERT(worst < 1e-6);
}

static int frame_sum(const uint8_t *f, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += f[i];
    return s;
}

static void test_render(void) {
    world w;
    world_tworoom_params p = defaults();
    open_world(&w, &p);
    int n = 32, N = n * n;
    uint8_t empty[1024], f[1024], f2[1024];
    /* the wall layer: full wall pixels 128 (0.5 of 255), door and rooms 0 */
    double far[2] = {-10, -10}; /* off-frame agent: the empty arena */
    w.ops->render(&w, far, empty);
    CU_ASSERT(empty[5 * n + 15] == 128 && empty[5 * n + 16] == 128 && empty[5 * n + 14] == 0);
    CU_ASSERT(empty[16 * n + 15] == 0 && empty[30 * n + 16] == 128 && empty[5 * n + 17] == 0);
    /* the agent: its centre pixel is the brightest, the background stays 0 */
    double s[2] = {0.3, 0.3};
    w.ops->render(&w, s, f);
    CU_ASSERT(f[9 * n + 9] == 255 && empty[9 * n + 9] == 0);
    CU_ASSERT(f[0] == 0 && f[20 * n + 3] == 0);
    /* total brightness = disc area in pixels (radius 1.6 px), up to rounding */
    double rp = p.radius * n, want = PI * rp * rp * 255;
    int nz = 0, partial = 0;
    for (int i = 0; i < N; i++) {
        nz += f[i] != empty[i];
        partial += f[i] > 0 && f[i] < 255 && f[i] != empty[i];
    }
    CU_ASSERT(fabs(frame_sum(f, N) - frame_sum(empty, N) - want) <= 0.5 * nz);
    CU_ASSERT(partial >= 8); /* anti-aliased rim */
    /* deterministic, and independent of earlier calls */
    w.ops->render(&w, s, f2);
    CU_ASSERT(!memcmp(f, f2, N));
    /* every 0.1-pixel move changes the frame, in x and in y */
    world_rng rng;
    world_rng_init(&rng, 3, 0, 0);
    int unchanged = 0;
    for (int i = 0; i < 2000; i++) {
        double a[2], b[2];
        w.ops->sample_state(&w, &rng, a);
        w.ops->render(&w, a, f);
        b[0] = a[0] + (i % 2 ? 0.1 : 0) / n;
        b[1] = a[1] + (i % 2 ? 0 : 0.1) / n;
        w.ops->render(&w, b, f2);
        unchanged += !memcmp(f, f2, N);
    }
    CU_ASSERT(unchanged == 0);
    world_free(&w);
    /* walls off the pixel grid are anti-aliased: column 14 is 12% wall */
    p.wall = 0.07;
    p.size = 32;
    open_world(&w, &p);
    w.ops->render(&w, far, empty);
    double cover = 0.5 * (1 - p.wall) * 32 - 14; /* 1 - 0.88 of pixel 14 outside the face */
    CU_ASSERT(empty[2 * n + 14] == (uint8_t)floor(127.5 * (1 - cover) + 0.5));
    CU_ASSERT(empty[2 * n + 14] > 0 && empty[2 * n + 14] < 128);
    /* the agent touching that face (a valid state) is composited over the
     * wall layer in the pixel they share: 0.5 c (1 - a) + a, c the wall's
     * 0.12 of it, a the disc's area in it (the numerical oracle) */
    geom g = geom_of(&p);
    double t[2] = {g.xw0 - p.radius - 1e-12, 2.5 / n};
    CU_ASSERT(oracle_valid(&g, t));
    w.ops->render(&w, t, f);
    double cx = t[0] * n, cy = t[1] * n, ra = p.radius * n;
    double a = area_oracle(ra, 14 - cx, 15 - cx, 2 - cy, 3 - cy), c = 1 - cover;
    double v = (0.5 * c * (1 - a) + a) * 255;
    printf("\n  agent over a 12%% wall pixel: area %.4f, %d (want %.2f; wall alone %d)", a,
           f[2 * n + 14], v, empty[2 * n + 14]);
    CU_ASSERT(a > 0.2 && a < 0.95); /* both layers in the pixel */
    CU_ASSERT(fabs(f[2 * n + 14] - v) <= 0.5 + 1e-3);
    world_free(&w);
    /* 64 x 64: same world, twice the pixels per unit */
    p = defaults();
    p.size = 64;
    open_world(&w, &p);
    uint8_t *big = malloc(64 * 64);
    w.ops->render(&w, s, big);
    CU_ASSERT(big[19 * 64 + 19] == 255 && big[0] == 0);
    double rp64 = p.radius * 64;
    int sum = 0, sum0 = 0;
    w.ops->render(&w, s, big);
    sum = frame_sum(big, 64 * 64);
    w.ops->render(&w, far, big);
    sum0 = frame_sum(big, 64 * 64);
    CU_ASSERT(fabs(sum - sum0 - PI * rp64 * rp64 * 255) < 0.5 * 64);
    free(big);
    world_free(&w);
}

int main(void) {
    const test_case cases[] = {
        {"rng", test_rng},
        {"params", test_params},
        {"param_limits", test_param_limits},
        {"reset", test_reset},
        {"never_inside_walls", test_never_inside_walls},
        {"adversarial_pushes", test_adversarial_pushes},
        {"sliding", test_sliding},
        {"door_gap", test_door_gap},
        {"clipping", test_clipping},
        {"explore", test_explore},
        {"explore_ar1", test_explore_ar1},
        {"disc_coverage", test_disc_coverage},
        {"render", test_render},
    };
    return test_main("world", cases, (int)(sizeof cases / sizeof cases[0]));
}
