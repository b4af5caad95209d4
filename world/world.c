/* world.c - what every world shares: the registry, the counter-based RNG,
 * the table-driven parameters, instance init/free, and exact coverage of a
 * disc over a pixel (the anti-aliasing the renderers use). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"

/* ---------------------------------------------------------------- registry */
const world_ops *const world_all[] = {&world_tworoom_ops, NULL};

const world_ops *world_find(const char *name) {
    for (int i = 0; world_all[i]; i++)
        if (name && !strcmp(world_all[i]->name, name)) return world_all[i];
    return NULL;
}

/* --------------------------------------------------------------------- rng */
#define WORLD_WEYL 0x9e3779b97f4a7c15ULL

uint64_t world_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void world_rng_init(world_rng *r, uint64_t seed, uint64_t a, uint64_t b) {
    /* chained hashing: (seed, a, b) and (seed, b, a) give unrelated keys */
    r->key = world_mix64(world_mix64(world_mix64(seed + WORLD_WEYL) ^ (a + 2 * WORLD_WEYL)) ^
                         (b + 3 * WORLD_WEYL));
    r->counter = 0;
}

uint64_t world_rng_u64(world_rng *r) {
    r->counter++;
    return world_mix64(r->key + r->counter * WORLD_WEYL);
}

double world_rng_uniform(world_rng *r) { return (double)(world_rng_u64(r) >> 11) * 0x1.0p-53; }

double world_rng_normal(world_rng *r) {
    double u1 = world_rng_uniform(r), u2 = world_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* -------------------------------------------------------------- parameters */
static double *param_ptr(void *params, const world_param *p) {
    return (double *)((char *)params + p->offset);
}

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void world_params_default(const world_ops *ops, void *params) {
    memset(params, 0, ops->params_size);
    for (int i = 0; i < ops->nparams; i++) *param_ptr(params, &ops->params[i]) = ops->params[i].def;
}

static int param_range(const world_ops *ops, const world_param *p, double v, const char *text,
                       char *err, size_t errlen) {
    if (!isfinite(v) || v < p->min || v > p->max)
        return errf(err, errlen, "%s %s: %s out of range [%g, %g]", ops->name, p->name, text,
                    p->min, p->max);
    if (p->kind == WORLD_PARAM_INT && v != floor(v))
        return errf(err, errlen, "%s %s: %s is not a whole number", ops->name, p->name, text);
    return 0;
}

int world_params_set(const world_ops *ops, void *params, const char *assignment, char *err,
                     size_t errlen) {
    const char *eq = strchr(assignment, '=');
    if (!eq) return errf(err, errlen, "%s: '%s': expected name=value", ops->name, assignment);
    size_t n = (size_t)(eq - assignment);
    const world_param *p = NULL;
    for (int i = 0; i < ops->nparams; i++)
        if (strlen(ops->params[i].name) == n && !strncmp(ops->params[i].name, assignment, n))
            p = &ops->params[i];
    if (!p)
        return errf(err, errlen, "%s: unknown parameter '%.*s'", ops->name,
                    (int)n, assignment);
    const char *text = eq + 1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno)
        return errf(err, errlen, "%s %s: '%s' is not a number", ops->name, p->name, text);
    if (param_range(ops, p, v, text, err, errlen)) return -1;
    *param_ptr(params, p) = v;
    return 0;
}

int world_params_check(const world_ops *ops, const void *params, char *err, size_t errlen) {
    for (int i = 0; i < ops->nparams; i++) {
        const world_param *p = &ops->params[i];
        double v = *param_ptr((void *)params, p);
        char text[64];
        snprintf(text, sizeof text, "%.17g", v);
        if (param_range(ops, p, v, text, err, errlen)) return -1;
    }
    return ops->check ? ops->check(params, err, errlen) : 0;
}

void world_params_print(const world_ops *ops, const void *params, FILE *f) {
    for (int i = 0; i < ops->nparams; i++) {
        const world_param *p = &ops->params[i];
        fprintf(f, "  %-12s = %-8.6g # %s [%g, %g]\n", p->name, *param_ptr((void *)params, p),
                p->help, p->min, p->max);
    }
}

/* --------------------------------------------------------------- instances */
int world_init(world *w, const world_ops *ops, const void *params, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    w->params = malloc(ops->params_size);
    if (!w->params) return errf(err, errlen, "%s: out of memory", ops->name);
    if (params) memcpy(w->params, params, ops->params_size);
    else world_params_default(ops, w->params);
    w->ops = ops;
    if (world_params_check(ops, w->params, err, errlen) || ops->init(w, err, errlen)) {
        free(w->params);
        memset(w, 0, sizeof *w);
        return -1;
    }
    if (w->state_dim > WORLD_MAX_DIM || w->action_dim > WORLD_MAX_DIM) { /* a plug-in's bug */
        ops->free(w);
        free(w->params);
        memset(w, 0, sizeof *w);
        return errf(err, errlen, "%s: state/action dims exceed WORLD_MAX_DIM", ops->name);
    }
    if (w->step_work < 1) w->step_work = 1; /* a world that does not say: one unit */
    return 0;
}

void world_free(world *w) {
    if (w->ops) w->ops->free(w);
    free(w->params);
    memset(w, 0, sizeof *w);
}

size_t world_frame_bytes(const world *w) {
    return (size_t)w->channels * w->height * w->width;
}

/* ---------------------------------------------------------------- coverage */
/* Area of {0 <= X <= x, 0 <= Y <= y, X^2 + Y^2 <= r^2} for x, y >= 0: the
 * integral over X of min(y, sqrt(r^2 - X^2)), split where sqrt(r^2 - X^2) = y;
 * G(u) = (u sqrt(r^2 - u^2) + r^2 asin(u / r)) / 2 is the primitive of the
 * circle's height. */
static double quadrant_area(double r, double x, double y) {
    if (x > r) x = r;
    if (y > r) y = r;
    if (x <= 0 || y <= 0) return 0;
    double xb = sqrt(r * r - y * y); /* where the arc is at height y */
    if (x <= xb) return x * y;
    double gx = 0.5 * (x * sqrt(fmax(r * r - x * x, 0)) + r * r * asin(fmin(x / r, 1)));
    double gb = 0.5 * (xb * y + r * r * asin(xb / r));
    return xb * y + gx - gb;
}

/* Signed version: the integral from 0 to x and 0 to y (the disc is symmetric). */
static double signed_area(double r, double x, double y) {
    double a = quadrant_area(r, fabs(x), fabs(y));
    return (x < 0) != (y < 0) ? -a : a;
}

double world_disc_rect_area(double r, double x0, double x1, double y0, double y1) {
    /* inclusion-exclusion over the rectangle's corners */
    double a = signed_area(r, x1, y1) - signed_area(r, x0, y1) - signed_area(r, x1, y0) +
               signed_area(r, x0, y0);
    return a < 0 ? 0 : a;
}
