/* plan_eval.c - the evaluation behind `jepa-plan` (plan.h): every method on
 * the same seeded tasks, episodes split across ranks in contiguous blocks
 * and gathered to rank 0, which writes the results (JSON, CSV, per-episode
 * CSV; the pictures from every rank) into a stage moved into place as
 * RUN/plan/, then prints one table. The methods are rows of one table: the
 * CEM planner on the trained world model, random actions, a straight line
 * on the true state, and the CEM planner on a randomly initialised model
 * (last, since it overwrites the parameters). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm.h"
#include "jepa.h"
#include "plan.h"
#include "picture.h"
#include "shard.h"
#include "stdout_close.h"

#define PLAN_PICTURE_SIDE 256

typedef struct {
    const char *name;       /* table row */
    const char *line;       /* its machine-readable last line */
    const plan_ctl_ops *ops; /* NULL: the CEM planner on the world model */
    int randomize;          /* re-initialise the model first */
} plan_method;

static const plan_method methods[] = {
    {"world_model", "success_rate", NULL, 0},
    {"random", "random_success_rate", &plan_ctl_random, 0},
    {"straight", "straight_success_rate", &plan_ctl_straight, 0},
    {"random_init", "random_init_success_rate", NULL, 1},
};
#define NMETHODS ((int)(sizeof methods / sizeof methods[0]))
/* Methods run: all, or all but the last (random_init) when plan.random_init is off. */
static int nmethods(const jepa_spec *s) { return NMETHODS - (s->plan.random_init ? 0 : 1); }
_Static_assert(sizeof(plan_outcome) == PLAN_OUTCOME_FLOATS * sizeof(float), "outcomes travel as floats");

typedef struct {
    int n, succ;
    double rate, lo, hi;     /* success rate and its 95% Wilson interval */
    double steps_mean;       /* steps to the goal over the successes (NAN: none) */
    double dist_mean;        /* closest distance reached, all episodes */
    double decisions, plan_s, plan_cpu_s; /* totals */
} plan_summary;

/* ------------------------------------------------------------ the world */
/* The world of s->plan (its frame side set to the model's), the action
 * bound and the arena side read from its parameter table. */
static int world_setup(world *w, const jepa_spec *s, int side, double *bound, double *arena,
                       char *err, size_t errlen) {
    const world_ops *ops = world_find(s->plan.world);
    if (!ops) {
        snprintf(err, errlen, "plan.world: unknown world '%s' (jepa-world info lists them)", s->plan.world);
        return -1;
    }
    char *params = JEPA_MALLOC(ops->params_size), buf[SPEC_STR_MAX], a[64];
    world_params_default(ops, params);
    snprintf(a, sizeof a, "size=%d", side);
    int rc = world_params_set(ops, params, a, err, errlen);
    snprintf(buf, sizeof buf, "%s", s->plan.world_params);
    const char *seen[64];
    int nseen = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " ,\t\n", &save); rc == 0 && tok;
         tok = strtok_r(NULL, " ,\t\n", &save)) {
        char e[WORLD_ERR_MAX];
        size_t kn = strcspn(tok, "=");
        for (int i = 0; i < nseen && rc == 0; i++)
            if (!strncmp(seen[i], tok, kn) && (seen[i][kn] == '=' || seen[i][kn] == '\0'))
                snprintf(err, errlen, "plan.world_params: '%.*s' given twice (%s, then %s)", (int)kn,
                         tok, seen[i], tok), rc = -1;
        if (rc == 0 && nseen < 64) seen[nseen++] = tok;
        if (rc == 0 && world_params_set(ops, params, tok, e, sizeof e)) {
            snprintf(err, errlen, "plan.world_params: %s", e);
            rc = -1;
        }
        if (rc == 0 && kn == 4 && !strncmp(tok, "size", 4)) {
            snprintf(err, errlen, "plan.world_params: %s: the frame size is not a setting here "
                     "(the model's model.img_size, and the pictures' own)", tok);
            rc = -1;
        }
    }
    if (rc == 0) rc = world_init(w, ops, params, err, errlen);
    jepa_free(params);
    if (rc) return -1;
    if (plan_world_param(w, "max_action", bound) || plan_world_param(w, "arena", arena) ||
        w->action_dim != 2 || w->state_dim < 2) {
        snprintf(err, errlen, "plan.world: %s lacks what the planner reads (parameters max_action and "
                 "arena, 2-D actions, a position as the first two state components)", s->plan.world);
        world_free(w);
        return -1;
    }
    if (plan_search_check(w, *bound, *arena, err, errlen)) {
        world_free(w);
        return -1;
    }
    return 0;
}

/* err's leading "plan.world_params: " names the value too where it is
 * set: a task that cannot be made says which setting to change. */
static void world_params_named(const jepa_spec *s, char *err, size_t errlen) {
    static const char key[] = "plan.world_params: ";
    char rest[SPEC_ERR_MAX];
    if (strncmp(err, key, sizeof key - 1) || !s->plan.world_params[0]) return;
    snprintf(rest, sizeof rest, "%s", err + sizeof key - 1);
    snprintf(err, errlen, "plan.world_params \"%s\": %s", s->plan.world_params, rest);
}

/* Task 0 is made here as the plan makes it (same seed, radius and world:
 * the frame size changes no step), so a setting under which it cannot be
 * made (a closed door: no path; a radius no goal lies beyond) is known
 * before the model loads; every plan makes task 0. */
int plan_world_check(const jepa_spec *s, char *err, size_t errlen) {
    world w;
    double bound, arena;
    plan_task t;
    if (world_setup(&w, s, 32, &bound, &arena, err, errlen)) return -1;
    int rc = plan_task_make(&w, (uint64_t)s->plan.seed, 0, s->plan.success_radius, s->plan.budget_factor, bound,
                            arena, &t, err, errlen);
    world_free(&w);
    if (rc) world_params_named(s, err, errlen);
    return rc;
}

static void cfg_from_spec(plan_cfg *c, const jepa_spec *s, double bound) {
    c->samples = s->plan.samples;
    c->topk = s->plan.topk;
    c->horizon = s->plan.horizon;
    c->iterations = s->plan.iterations;
    c->repeat = s->plan.repeat;
    c->init_std = s->plan.init_std;
    c->bound = bound;
    c->cost_all = !strcmp(s->plan.cost, "all");
}

/* ------------------------------------------------------------ pictures */
/* The arena at PLAN_PICTURE_SIDE pixels (the world rendered at that size,
 * agent at the start), every decision's plan as the true world would
 * execute it (orange), the executed path (blue), start (green), goal (red)
 * with the success radius. */
static int draw_episode(const jepa_spec *s, double arena, const plan_task *t, const plan_trace *tr,
                        const char *path, char *err, size_t errlen) {
    world pw;
    double b, ar;
    if (world_setup(&pw, s, PLAN_PICTURE_SIDE, &b, &ar, err, errlen)) return -1;
    const int P = PLAN_PICTURE_SIDE;
    const double k = P / arena;
    uint8_t *frame = JEPA_MALLOC(world_frame_bytes(&pw));
    pw.ops->render(&pw, t->start, frame);
    pic_canvas c;
    pic_canvas_init(&c, P, P);
    for (size_t i = 0; i < (size_t)P * P; i++) /* first channel as grey, dimmed */
        c.rgb[3 * i] = c.rgb[3 * i + 1] = c.rgb[3 * i + 2] = (uint8_t)(40 + frame[i] * 0.6);
    for (int p = 0; p < tr->nplans; p++) {
        const double(*q)[2] = tr->plans + (size_t)p * tr->plan_len;
        for (int j = 0; j + 1 < tr->plan_n[p]; j++)
            pic_canvas_line(&c, q[j][0] * k, q[j][1] * k, q[j + 1][0] * k, q[j + 1][1] * k, 1.0,
                            0xff9922, 0.55);
    }
    for (int j = 0; j + 1 < tr->npath; j++)
        pic_canvas_line(&c, tr->path[j][0] * k, tr->path[j][1] * k, tr->path[j + 1][0] * k,
                        tr->path[j + 1][1] * k, 2.5, 0x3399ff, 1.0);
    pic_canvas_disc(&c, t->start[0] * k, t->start[1] * k, 5, 0x33dd55, 1.0);
    pic_canvas_ring(&c, t->goal[0] * k, t->goal[1] * k, s->plan.success_radius * k, 2, 0xff3333, 1.0);
    pic_canvas_disc(&c, t->goal[0] * k, t->goal[1] * k, 3, 0xff3333, 1.0);
    int rc = pic_write_png(path, P, P, c.rgb, err, errlen);
    pic_canvas_free(&c);
    jepa_free(frame);
    world_free(&pw);
    return rc;
}

/* The frames the model saw: up to PLAN_STRIP_FRAMES of the executed states
 * (evenly spaced, first and last included), then the goal frame boxed in
 * red, each frame PLAN_STRIP_ZOOM times larger (nearest neighbour). */
#define PLAN_STRIP_FRAMES 12
#define PLAN_STRIP_ZOOM 3
static int draw_strip(const world *w, const plan_task *t, const plan_trace *tr, const char *path,
                      char *err, size_t errlen) {
    const int Z = PLAN_STRIP_ZOOM, F = (int)w->width * Z, G = 4;
    int n = tr->npath < PLAN_STRIP_FRAMES ? tr->npath : PLAN_STRIP_FRAMES;
    pic_canvas c;
    pic_canvas_init(&c, (n + 1) * (F + G) + 2 * G, F + 2 * G);
    memset(c.rgb, 90, (size_t)c.w * c.h * 3); /* grey gaps between the black frames */
    uint8_t *frame = JEPA_MALLOC(world_frame_bytes(w));
    for (int i = 0; i <= n; i++) {
        const double *st = i == n ? t->goal : tr->path[n > 1 ? (int64_t)i * (tr->npath - 1) / (n - 1) : 0];
        w->ops->render(w, st, frame);
        int x0 = G + i * (F + G) + (i == n ? G : 0);
        for (int y = 0; y < F; y++)
            for (int x = 0; x < F; x++) {
                uint8_t v = frame[(size_t)(y / Z) * w->width + x / Z], *p = c.rgb + ((size_t)(G + y) * c.w + x0 + x) * 3;
                p[0] = p[1] = p[2] = v;
            }
        if (i == n) {
            double a = x0 - 1.5, b = G - 1.5, e = F + 3;
            pic_canvas_line(&c, a, b, a + e, b, 2, 0xff3333, 1);
            pic_canvas_line(&c, a, b + e, a + e, b + e, 2, 0xff3333, 1);
            pic_canvas_line(&c, a, b, a, b + e, 2, 0xff3333, 1);
            pic_canvas_line(&c, a + e, b, a + e, b + e, 2, 0xff3333, 1);
        }
    }
    int rc = pic_write_png(path, c.w, c.h, c.rgb, err, errlen);
    jepa_free(frame);
    pic_canvas_free(&c);
    return rc;
}

static plan_trace trace_alloc(int budget, const plan_cfg *c) {
    plan_trace tr = {0};
    tr.cap_path = budget + 1;
    tr.cap_plans = budget;
    tr.plan_len = c->horizon * c->repeat + 1;
    tr.path = JEPA_MALLOC(sizeof(double) * WORLD_MAX_DIM * tr.cap_path);
    tr.plans = JEPA_MALLOC(sizeof(double) * 2 * (size_t)tr.cap_plans * tr.plan_len);
    tr.plan_n = JEPA_MALLOC(sizeof(int) * (tr.cap_plans > 0 ? tr.cap_plans : 1));
    return tr;
}

static void trace_free(plan_trace *tr) {
    jepa_free(tr->path);
    jepa_free(tr->plans);
    jepa_free(tr->plan_n);
}

/* ------------------------------------------------------------ output */
/* Nothing of RUN/plan exists until the plan is whole: the results go into
 * .plan.partial-PID (rank 0's PID) beside it and move into place at the end.
 * The place (out) is RUN/plan, or where it points when it is a symbolic
 * link (shard_out_place: the stage then goes beside the target, so the
 * rename stays on its filesystem, and the link is kept). */

/* The directory out is in ("/" for "/plan"); out always holds a '/'
 * (RUN/plan, or an absolute target). */
static void out_parent(const char *out, char *up, size_t n) {
    const char *slash = strrchr(out, '/');
    snprintf(up, n, "%.*s", slash && slash != out ? (int)(slash - out) : 1, slash ? out : ".");
}

/* Before the model loads, making nothing: RUN/plan absent or a directory
 * (or a link to one), the directory the stage goes in and RUN/plan
 * writable; its place into out (n bytes). 0 or -1 + err. */
static int out_check(const char *run, char *out, size_t n, char *err, size_t errlen) {
    char dir[SPEC_STR_MAX + 16], up[PATH_MAX];
    struct stat ds;
    snprintf(dir, sizeof dir, "%s/plan", run);
    if (shard_out_place(dir, SHARD_PLACE_DIR | SHARD_PLACE_RENAMED, out, n, err, errlen)) return -1;
    int there = stat(out, &ds) == 0;
    if (there && !S_ISDIR(ds.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory (plan writes its results there)", dir);
        return -1;
    }
    out_parent(out, up, sizeof up);
    const char *no = access(up, W_OK | X_OK) ? up : there && access(out, W_OK | X_OK) ? out : NULL;
    if (!no) return 0;
    snprintf(err, errlen, "cannot write into %s: %s", no, strerror(errno));
    return -1;
}

/* Rank 0 makes the stage beside out; its path to every rank ("" where it
 * failed). Collective: 0 on every rank, or -1 on every rank (err on rank 0). */
static int stage_open(const char *out, char *stage, size_t n, char *err, size_t errlen) {
    int rc = 0;
    if (comm_rank() == 0) {
        char up[PATH_MAX];
        out_parent(out, up, sizeof up);
        snprintf(stage, n, "%s/.plan.partial-%ld", up, (long)getpid());
        if ((rc = mkdir(stage, 0777)) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", stage, strerror(errno));
            stage[0] = 0;
        }
    }
    comm_bcast_bytes(stage, n, 0);
    return comm_any_error(rc != 0) >= 0 ? -1 : 0;
}

/* The stage and its files (the planner writes no subdirectory). */
static void stage_remove(const char *stage) {
    char p[SPEC_STR_MAX + 340];
    DIR *d = opendir(stage);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", stage, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(stage);
}

/* Rank 0, after the last check: the stage becomes the place dir (RUN/plan
 * or its link's target) in one rename where it is absent (or empty), else
 * its files move in one by one (an earlier plan's of the same names
 * replaced: --replace; others' files stay), and the stage goes. 0 or -1 + err. */
static int stage_commit(const char *dir, const char *stage, char *err, size_t errlen) {
    char from[PATH_MAX + 340], to[PATH_MAX + 300];
    if (rename(stage, dir) == 0) return 0;
    int rc = errno == EEXIST || errno == ENOTEMPTY ? 0 : -1;
    DIR *d = rc ? NULL : opendir(stage);
    for (struct dirent *e; d && rc == 0 && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(from, sizeof from, "%s/%s", stage, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        rc = rename(from, to);
    }
    if (rc || !d) snprintf(err, errlen, "cannot move the plan into %s: %s", dir, strerror(errno));
    if (d) closedir(d);
    stage_remove(stage);
    return rc || !d ? -1 : 0;
}

/* This rank's pictures (its episodes among the first plan.pictures, traces
 * in keep) into stage; a caught signal stops it between pictures. 0 or -1
 * + err. */
static int draw_pictures(const jepa_spec *s, const world *w, double arena, const plan_task *tasks,
                         const plan_trace *keep, int lo, int hi, const char *stage, char *err,
                         size_t errlen) {
    char path[SPEC_STR_MAX + 96];
    int rc = 0;
    for (int e = lo; e < hi && e < s->plan.pictures && rc == 0 && !shard_interrupt_pending(); e++) {
        snprintf(path, sizeof path, "%s/episode-%03d.png", stage, e);
        rc = draw_episode(s, arena, &tasks[e - lo], &keep[e - lo], path, err, errlen);
        snprintf(path, sizeof path, "%s/episode-%03d-frames.png", stage, e);
        if (rc == 0) rc = draw_strip(w, &tasks[e - lo], &keep[e - lo], path, err, errlen);
    }
    return rc;
}

/* ------------------------------------------------------------ episodes */
/* This rank's episodes [lo, hi) of method m into out ((hi - lo) outcomes);
 * the traces of the episodes to draw (the first plan.pictures, the world
 * model's) into keep[e - lo]: drawn once the plan is whole (plan_write). A
 * caught signal stops it between steps (plan_episode). The episodes run
 * whole. */
static int run_method(const plan_method *m, const jepa_spec *s, const world *w, plan_wm *wm,
                       const plan_cfg *cfg, const plan_task *tasks, int lo, int hi, plan_outcome *out,
                       plan_trace *keep) {
    plan_ctl c;
    if (m->ops) {
        memset(&c, 0, sizeof c);
        c.ops = m->ops;
        c.w = w;
        c.seed = (uint64_t)s->plan.seed;
        c.bound = cfg->bound;
    } else {
        if (m->randomize) plan_wm_randomize(wm);
        plan_ctl_cem_init(&c, w, wm, cfg, s->plan.execute, (uint64_t)s->plan.seed);
    }
    int e = lo;
    for (; e < hi && !shard_interrupt_pending(); e++) {
        const plan_task *t = &tasks[e - lo];
        int draw = e < s->plan.pictures && !m->ops && !m->randomize;
        if (draw) keep[e - lo] = trace_alloc(t->budget, cfg);
        plan_episode(&c, t, (uint64_t)e, s->plan.success_radius, &out[e - lo], draw ? &keep[e - lo] : NULL);
        if (shard_interrupt_pending()) break; /* stopped part-way: not counted as run */
    }
    if (!m->ops) plan_ctl_cem_free(&c);
    return e - lo;
}

/* ------------------------------------------------------------ summaries */
void plan_wilson(int succ, int n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double p = (double)succ / n, z = 1.959963984540054, z2n = z * z / n;
    double centre = (p + z2n / 2) / (1 + z2n), half = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    /* at the ends centre and half are equal in exact arithmetic, not in
     * doubles (2.8e-17 for 0 of 6): set there, not computed */
    *lo = succ <= 0 ? 0 : fmax(centre - half, 0);
    *hi = succ >= n ? 1 : fmin(centre + half, 1);
}

static void summarize(const plan_outcome *o, int n, plan_summary *r) {
    memset(r, 0, sizeof *r);
    r->n = n;
    double steps = 0;
    for (int i = 0; i < n; i++) {
        r->succ += o[i].success > 0.5f;
        if (o[i].success > 0.5f) steps += o[i].steps;
        r->dist_mean += o[i].final_dist / (double)n;
        r->decisions += o[i].decisions;
        r->plan_s += o[i].plan_s;
        r->plan_cpu_s += o[i].plan_cpu_s;
    }
    r->steps_mean = r->succ ? steps / r->succ : NAN;
    r->rate = (double)r->succ / n;
    plan_wilson(r->succ, n, &r->lo, &r->hi);
}

/* NaN for a method that makes no decisions: no time per decision (plan.json
 * null, an empty CSV field, "-"), where a 0 read as "instant" */
static double per_decision(const plan_summary *r) {
    return r->decisions > 0 ? r->plan_s / r->decisions : NAN;
}

static double cpu_per_decision(const plan_summary *r) {
    return r->decisions > 0 ? r->plan_cpu_s / r->decisions : NAN;
}

/* A JSON string: quotes, backslashes and controls escaped. */
static void json_str(FILE *f, const char *v) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* "null" for NaN (JSON has no NaN) */
static void json_num(FILE *f, const char *key, double v, const char *tail) {
    if (isfinite(v)) fprintf(f, "\"%s\": %.6g%s", key, v, tail);
    else fprintf(f, "\"%s\": null%s", key, tail);
}

/* plan.json and the CSV files: path.tmp written, then shard_tmp_commit */
static FILE *open_tmp(const char *path, char *tmp, size_t n) {
    snprintf(tmp, n, "%s.tmp", path);
    return fopen(tmp, "w");
}

static int write_json(const char *dir, const char *run, const jepa_spec *s, int window, const plan_summary *r,
                      double shortest, double budget, char *err, size_t errlen) {
    char path[SPEC_STR_MAX + 64], tmp[SPEC_STR_MAX + 80];
    const int nm = nmethods(s);
    snprintf(path, sizeof path, "%s/plan.json", dir);
    FILE *f = open_tmp(path, tmp, sizeof tmp);
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fputs("{\n  \"run\": ", f);
    json_str(f, run);
    fputs(", \"world\": ", f);
    json_str(f, s->plan.world);
    fputs(", \"world_params\": ", f);
    json_str(f, s->plan.world_params);
    fputs(",\n", f);
    fprintf(f, "  \"episodes\": %d, \"seed\": %lld, \"ranks\": %d, \"success_radius\": %.6g, "
            "\"budget_factor\": %.6g, \"mean_shortest_steps\": %.4g, \"mean_budget_steps\": %.4g,\n",
            s->plan.episodes, (long long)s->plan.seed, comm_world(), s->plan.success_radius,
            s->plan.budget_factor, shortest, budget);
    fprintf(f, "  \"cem\": {\"samples\": %d, \"topk\": %d, \"horizon\": %d, \"iterations\": %d, "
            "\"repeat\": %d, \"execute\": %d, \"init_std\": %.6g, \"cost\": \"%s\", \"window\": %d},\n"
            "  \"methods\": [\n", s->plan.samples, s->plan.topk, s->plan.horizon, s->plan.iterations,
            s->plan.repeat, s->plan.execute, s->plan.init_std, s->plan.cost, window);
    for (int m = 0; m < nm; m++) {
        fprintf(f, "    {\"name\": \"%s\", \"episodes\": %d, \"successes\": %d, ", methods[m].name, r[m].n,
                r[m].succ);
        json_num(f, "success_rate", r[m].rate, ", ");
        json_num(f, "ci95_low", r[m].lo, ", ");
        json_num(f, "ci95_high", r[m].hi, ", ");
        json_num(f, "mean_steps_to_goal", r[m].steps_mean, ", ");
        json_num(f, "mean_closest_dist", r[m].dist_mean, ", ");
        json_num(f, "decisions", r[m].decisions, ", ");
        json_num(f, "s_per_decision", per_decision(&r[m]), ", ");
        json_num(f, "cpu_s_per_decision", cpu_per_decision(&r[m]), m + 1 < nm ? "},\n" : "}\n");
    }
    fprintf(f, "  ],\n  "); /* each last-line figure on its own line, indented as its siblings */
    for (int m = 0; m < nm; m++) json_num(f, methods[m].line, r[m].rate, ",\n  ");
    json_num(f, "plan_s_per_decision", per_decision(&r[0]), "\n}\n");
    return shard_tmp_commit(f, !ferror(f), tmp, path, err, errlen);
}

/* v in fmt, or `none` where it has no value (NaN: no success to average;
 * a method that makes no decisions has no time per decision) */
static const char *cell(char *buf, size_t n, const char *fmt, double v, const char *none) {
    if (isnan(v)) snprintf(buf, n, "%s", none);
    else snprintf(buf, n, fmt, v);
    return buf;
}

static int write_csv(const char *dir, int nm, const plan_summary *r, const plan_outcome *const *all, int n,
                     char *err, size_t errlen) {
    char path[SPEC_STR_MAX + 64], tmp[SPEC_STR_MAX + 80];
    snprintf(path, sizeof path, "%s/plan.csv", dir);
    FILE *f = open_tmp(path, tmp, sizeof tmp);
    if (!f) goto fail;
    fprintf(f, "method,episodes,successes,success_rate,ci95_low,ci95_high,mean_steps_to_goal,"
            "mean_closest_dist,decisions,s_per_decision,cpu_s_per_decision\n");
    for (int m = 0; m < nm; m++) { /* empty fields where there is no value (plan.json: null) */
        char a[32], b[32], c[32];
        fprintf(f, "%s,%d,%d,%.6g,%.6g,%.6g,%s,%.6g,%.0f,%s,%s\n", methods[m].name, r[m].n, r[m].succ,
                r[m].rate, r[m].lo, r[m].hi, cell(a, sizeof a, "%.6g", r[m].steps_mean, ""), r[m].dist_mean,
                r[m].decisions, cell(b, sizeof b, "%.6g", per_decision(&r[m]), ""),
                cell(c, sizeof c, "%.6g", cpu_per_decision(&r[m]), ""));
    }
    if (shard_tmp_commit(f, !ferror(f), tmp, path, err, errlen)) return -1;
    snprintf(path, sizeof path, "%s/episodes.csv", dir);
    f = open_tmp(path, tmp, sizeof tmp);
    if (!f) goto fail;
    fprintf(f, "method,episode,success,steps,closest_dist,decisions,plan_s,plan_cpu_s,shortest,budget\n");
    for (int m = 0; m < nm; m++)
        for (int e = 0; e < n; e++) {
            const plan_outcome *o = &all[m][e];
            fprintf(f, "%s,%d,%.0f,%.0f,%.6g,%.0f,%.6g,%.6g,%.0f,%.0f\n", methods[m].name, e, o->success,
                    o->steps, o->final_dist, o->decisions, o->plan_s, o->plan_cpu_s, o->shortest, o->budget);
        }
    return shard_tmp_commit(f, !ferror(f), tmp, path, err, errlen);
fail:
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
}

static void print_table(const char *run, const jepa_spec *s, const plan_summary *r, double shortest,
                        double budget) {
    printf("jepa-plan: %s: %d tasks of %s (seed %lld), start and goal in different rooms; success "
           "within %g of the goal; budget %gx the shortest path (mean %.1f -> %.1f steps); %d rank%s\n",
           run, s->plan.episodes, s->plan.world, (long long)s->plan.seed, s->plan.success_radius,
           s->plan.budget_factor, shortest, budget, comm_world(), comm_world() > 1 ? "s" : "");
    printf("%-12s %8s  %-17s %13s %8s %10s %11s %11s\n", "method", "success", "95% interval",
           "steps to goal", "closest", "decisions", "s/decision", "cpu s/dec.");
    for (int m = 0; m < nmethods(s); m++) { /* "-" where there is no value */
        char a[32], b[32], c[32], d[32];
        int dec = r[m].decisions > 0;
        printf("%-12s %7.1f%%  [%5.1f%%, %5.1f%%]  %13s %8.3f %10s %11s %11s\n", methods[m].name, 100 * r[m].rate,
               100 * r[m].lo, 100 * r[m].hi, cell(a, sizeof a, "%.1f", r[m].steps_mean, "-"), r[m].dist_mean,
               cell(b, sizeof b, "%.0f", dec ? r[m].decisions : NAN, "-"),
               cell(c, sizeof c, "%.3g", per_decision(&r[m]), "-"), /* %.4f read 0.0000 below 50 us */
               cell(d, sizeof d, "%.3g", cpu_per_decision(&r[m]), "-"));
    }
}

/* ------------------------------------------------------------ the whole */
/* Every method's outcomes of every episode on rank 0 (all[m], n each). */
static void gather(plan_outcome *const *local, int lo, int hi, int n, plan_outcome **all) {
    const int W = comm_world();
    size_t *counts = JEPA_MALLOC(sizeof(size_t) * W);
    for (int r = 0; r < W; r++)
        counts[r] = (size_t)(((int64_t)n * (r + 1)) / W - ((int64_t)n * r) / W) * PLAN_OUTCOME_FLOATS;
    for (int m = 0; m < NMETHODS; m++)
        comm_gather_floats((const float *)local[m], (size_t)(hi - lo) * PLAN_OUTCOME_FLOATS,
                           (float *)all[m], counts, 0);
    jepa_free(counts);
}

/* Rank 0: the results into stage, then (after the last check for a caught
 * signal) the stage into place as RUN/plan (stage_commit), then the table
 * and the last lines. 0 or -1 (+ err, or a caught signal: the caller says). */
static int report(const char *run, const char *out, const jepa_spec *s, int window, plan_outcome *const *all,
                  const char *stage, char *err, size_t errlen) {
    const int n = s->plan.episodes;
    plan_summary r[NMETHODS];
    double shortest = 0, budget = 0;
    for (int e = 0; e < n; e++) {
        shortest += all[0][e].shortest / (double)n;
        budget += all[0][e].budget / (double)n;
    }
    for (int m = 0; m < nmethods(s); m++) summarize(all[m], n, &r[m]);
    JEPA_ASSERT(r[0].decisions > 0); /* the planner always decides: see plan_s_per_decision below */
    if (write_json(stage, run, s, window, r, shortest, budget, err, errlen) ||
        write_csv(stage, nmethods(s), r, (const plan_outcome *const *)all, n, err, errlen) ||
        shard_interrupt_pending() || stage_commit(out, stage, err, errlen))
        return -1;
    print_table(run, s, r, shortest, budget);
    for (int m = 0; m < nmethods(s); m++) printf("%s %.4f\n", methods[m].line, r[m].rate);
    /* the planner's alone, and it always decides: at its first step (cem_act's
     * queue starts empty), of every task (budget >= 1: plan.budget_factor >= 1,
     * a goal farther than the radius), of plan.episodes >= 1. The 0 printed
     * here for no decisions contradicted plan.json's null; none can happen.
     * Significant digits, not decimals: a fast model's decision is well under 1e-4 s */
    printf("plan_s_per_decision %.6g\n", per_decision(&r[0]));
    stdout_flush(); /* a failure: stdout_close names it at exit */
    return 0;
}

/* The write phase, collective, once every episode is planned: rank 0 makes
 * the stage, every rank draws its pictures into it, rank 0 writes the
 * results and moves them into place. SIGINT/SIGTERM/SIGHUP are held by every
 * rank since plan_evaluate began (shard_interrupt_catch; the caller
 * releases them after its line): mpirun turns a signal into SIGTERM to each
 * rank and kills the rest when one dies, so none may die before rank 0 has
 * removed the stage. A caught signal, or a failure, before rank 0's last
 * check: the stage removed, nothing written. The lowest failing rank (its
 * error in err; an interruption is rank 0's to say), or -1. */
static int plan_write(const char *run, const char *out, const jepa_spec *s, int window, const world *w,
                      double arena, const plan_task *tasks, const plan_trace *keep, int lo, int hi,
                      plan_outcome *const *all, char *err, size_t errlen) {
    char stage[PATH_MAX + 48] = "";
    int rc = stage_open(out, stage, sizeof stage, err, errlen);
    if (rc == 0) rc = draw_pictures(s, w, arena, tasks, keep, lo, hi, stage, err, errlen);
    int intr = comm_any_error(shard_interrupt_pending() != 0); /* the same on every rank */
    int bad = intr >= 0 ? 0 : comm_any_error(rc != 0);
    if (comm_rank() == 0) {
        rc = bad < 0 ? report(run, out, s, window, all, stage, err, errlen) : -1;
        if (rc && stage[0]) stage_remove(stage);
        int sig = shard_interrupt_pending();
        if (intr >= 0 || (rc && sig)) {
            char by[48];
            snprintf(by, sizeof by, "a signal to rank %d", intr);
            snprintf(err, errlen, "%s/plan: interrupted by %s: nothing written", run,
                     sig ? shard_interrupt_name(sig) : by);
        }
    }
    int fin = comm_any_error(comm_rank() == 0 && rc != 0); /* after rank 0 has cleaned up */
    return bad >= 0 ? bad : fin;
}

/* Tasks [lo, hi) on this rank; -1 + err if one has no path to its goal
 * (or none the search can find: plan_task_make). A caught signal stops it,
 * mid-search too (the episodes then run none of the tasks left unmade: it
 * stays pending). */
static int make_tasks(const world *w, const jepa_spec *s, double bound, double arena, int lo, int hi,
                      plan_task *tasks, char *err, size_t errlen) {
    for (int e = lo; e < hi && !shard_interrupt_pending(); e++)
        if (plan_task_make(w, (uint64_t)s->plan.seed, (uint64_t)e, s->plan.success_radius,
                           s->plan.budget_factor, bound, arena, &tasks[e - lo], err, errlen))
            return -1;
    return 0;
}

/* Everything planning needs, checked before any of it: where the results
 * go (its place into out: before the model loads), the world, the model,
 * this rank's tasks [lo, hi). 0 or -1 + err. */
static int plan_setup(const char *run, char *out, size_t n, const jepa_spec *s, int lo, int hi, plan_wm **wm,
                      world *w, double *bound, double *arena, plan_task *tasks, char *err, size_t errlen) {
    int rc = out_check(run, out, n, err, errlen);
    if (rc == 0) rc = world_setup(w, s, s->model.img_size, bound, arena, err, errlen);
    if (rc == 0 && (int)w->channels != s->model.channels) {
        snprintf(err, errlen, "plan.world: %s renders %u channel(s), the model of %s reads %d", s->plan.world,
                 w->channels, run, s->model.channels);
        rc = -1;
    }
    if (rc == 0 && !shard_interrupt_pending()) /* a signal in plan_world_check's search: no model */
        rc = plan_wm_load(wm, run, s, w, s->plan.samples, s->plan.window, err, errlen);
    if (rc == 0) rc = make_tasks(w, s, *bound, *arena, lo, hi, tasks, err, errlen);
    return rc;
}

/* After the episodes, collective: a signal caught on any rank while they ran
 * (each rank stops between episodes) ends the plan before anything is
 * written, rank 0 saying in err how far it got. The lowest rank that caught
 * one, or -1. */
static int plan_interrupted(const char *run, const jepa_spec *s, double done, char *err, size_t errlen) {
    int sig = shard_interrupt_pending(), intr = comm_any_error(sig != 0);
    if (intr < 0) return -1;
    comm_sum_doubles(&done, 1);
    if (comm_rank() == 0) {
        char by[48];
        snprintf(by, sizeof by, "a signal to rank %d", intr);
        snprintf(err, errlen, "%s/plan: interrupted by %s after %.0f of %d episodes (%d tasks x %d methods): "
                 "nothing written", run, sig ? shard_interrupt_name(sig) : by, done,
                 s->plan.episodes * nmethods(s), s->plan.episodes, nmethods(s));
    }
    return intr;
}

int plan_evaluate(const char *run, const jepa_spec *s, char *err, size_t errlen) {
    const int n = s->plan.episodes, W = comm_world(), rank = comm_rank();
    const int lo = (int)(((int64_t)n * rank) / W), hi = (int)(((int64_t)n * (rank + 1)) / W);
    plan_wm *wm = NULL;
    world w = {0};
    double bound = 0, arena = 0;
    plan_task *tasks = JEPA_MALLOC(sizeof(plan_task) * (hi - lo + 1));
    plan_trace *keep = JEPA_MALLOC(sizeof(plan_trace) * (hi - lo + 1)); /* zeroed: none kept */
    char out[PATH_MAX]; /* RUN/plan, or where it points */
    int rc = plan_setup(run, out, sizeof out, s, lo, hi, &wm, &w, &bound, &arena, tasks, err, errlen);
    plan_outcome *local[NMETHODS], *all[NMETHODS];
    plan_cfg cfg;
    cfg_from_spec(&cfg, s, bound);
    for (int m = 0; m < NMETHODS; m++) {
        local[m] = JEPA_MALLOC(sizeof(plan_outcome) * (hi - lo + 1));
        all[m] = rank == 0 ? JEPA_MALLOC(sizeof(plan_outcome) * n) : NULL;
    }
    int bad = comm_any_error(rc != 0); /* every rank goes on, or none */
    double done = 0; /* episodes run here, all methods */
    for (int m = 0; m < nmethods(s) && bad < 0 && !shard_interrupt_pending(); m++)
        done += run_method(&methods[m], s, &w, wm, &cfg, tasks, lo, hi, local[m], keep);
    int intr = bad < 0 ? plan_interrupted(run, s, done, err, errlen) : -1;
    if (bad < 0 && intr < 0) gather(local, lo, hi, n, all);
    if (bad < 0 && intr < 0)
        bad = plan_write(run, out, s, plan_wm_window(wm), &w, arena, tasks, keep, lo, hi, all, err, errlen);
    if (bad > 0 && rank == bad) fprintf(stderr, "jepa-plan: rank %d: %s\n", rank, err);
    if (bad > 0 && rank == 0) snprintf(err, errlen, "rank %d failed (its error is above)", bad);
    for (int m = 0; m < NMETHODS; m++) {
        jepa_free(local[m]);
        jepa_free(all[m]);
    }
    for (int e = 0; e < hi - lo; e++) trace_free(&keep[e]);
    jepa_free(keep);
    jepa_free(tasks);
    world_free(&w);
    plan_wm_free(wm);
    return bad >= 0 || intr >= 0 ? -1 : 0;
}
