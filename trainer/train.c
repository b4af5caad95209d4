/* train.c - the one training loop: data order, the objective's step, the
 * gradient all-reduce, the NaN/Inf guard, schedules, AdamW, metrics,
 * progress, checkpoints, resume, signals and the closing evaluation. What is
 * trained is an objective (objective.h) the loop calls through its table.
 *
 * Reproducibility: the global batch of a step is a function of (seed,
 * dataset, global batch, step) whatever the world size (the shard reader's
 * elastic order; rank r trains its slice), everything an objective draws of
 * (seed, step) for the global batch; a time budget (train.minutes) is turned
 * into a step count up front by timing the step, and re-planned at 10% and
 * 50% of the budget from the measured step time (a load at start misleads
 * the first timing), so the schedules are functions of the step and of the
 * recorded plan (length, last re-plan step, progress there). A resume
 * restores parameters, EMA target, Adam moments, step, plan, the reader's
 * position and the open log interval, so it continues bit for bit at the
 * same world size; on another world size
 * W' that divides the checkpoint's global batch G, each rank trains G / W'
 * records and the run continues up to the summation order. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "objective.h"
#include "train_internal.h"

/* A time budget's plan is re-planned when 10% of the budget is trained
 * (early: the load at start is gone) and again at 50% (a load that came or
 * went since), and before the last point whenever the current plan is about
 * to end, from the mean step time over the later half (in time) of the
 * training so far (REPLAN_SAMPLES (steps, seconds) points kept, decimated);
 * every plan keeps REPLAN_MARGIN of the step time in hand. */
static const double replan_fracs[] = {0.1, 0.5};
#define REPLAN_POINTS 2
#define REPLAN_SAMPLES 512
#define REPLAN_MARGIN 1.03

/* Everything one run holds; the phases below read and advance it. */
typedef struct {
    const jepa_spec *s;
    jepa_spec *s_own;       /* s with another batch_per_rank after a resume on another world size */
    train_result *res;
    int rank, world, lead, tty, fresh, nstats;
    int no_labels;          /* the probe's data has no labels: every evaluation is skipped */
    objective *o;
    const objective_ops *ops;
    comm_buckets cb;
    shard_reader *rd;
    uint8_t *rec, *lab;     /* (B, record bytes), (B): this rank's batch */
    ckpt_meta want, got, cm;
    sched_cfg sc;
    FILE *mf, *trace;       /* metrics.jsonl (rank 0); JEPA_DEBUG_DATA_TRACE (each rank) */
    int64_t start, total, step, seen, seen_log, saved, loss_n;
    double t_start, t0, t_log, t_ckpt, loss_acc, comm_wait0, budget;
    double stat[OBJ_MAX_STATS]; /* the last step's objective metrics, rank means */
    collapse_watch cw;          /* rank 0 */
    int64_t stop_at, nan_at, hang_at, kill_at, exit_at;
    int nan_loss;
    /* a time budget's plan (budget_plan: t->total came from train.minutes):
     * the last re-plan's step and the schedules' progress there (0, 0: none;
     * schedule_at), the up-front plan, re-plans made, replan_fracs points
     * passed, and rank 0's (steps completed, training seconds) samples */
    int budget_plan, nreplans, replan_pt;
    int64_t replan_at, plan_first;
    float replan_p;
    int64_t smp_step[REPLAN_SAMPLES];
    double smp_el[REPLAN_SAMPLES];
    int nsmp, smp_stride, smp_seen;
    int capped;              /* train.minutes stopped the run before t->total */
    double slow_s, slow_ms;  /* test hook JEPA_DEBUG_SLOW_START=S:MS */
    int no_replan;           /* test hook JEPA_DEBUG_NO_REPLAN=1 */
    long long force[3];      /* test hook JEPA_DEBUG_PLAN=T0:R:T (T0 0: off) */
} trainer;

static int64_t env_step(const char *name) {
    const char *v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : -1;
}

static void grads_ready(void *ctx, size_t lo) { comm_buckets_ready((comm_buckets *)ctx, lo); }

/* Test hook: a load at start. Each step (timed ones included) of the first
 * slow_s seconds of the run sleeps slow_ms milliseconds more. */
static void debug_slow(const trainer *t) {
    if (t->slow_ms <= 0 || train_now_s() - t->t_start >= t->slow_s) return;
    struct timespec ts = {(time_t)(t->slow_ms / 1000), (long)(fmod(t->slow_ms, 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

/* Setup errors can strike one rank only (a data path missing on one node):
 * every rank learns of it here, the failing rank keeps its own message. */
static int agree(int rc, train_result *res, char *err, size_t errlen) {
    int bad = comm_any_error(rc != 0);
    if (bad < 0) return 0;
    res->fail_rank = bad;
    if (rc == 0) {
        res->remote_failure = 1;
        snprintf(err, errlen, "rank %d failed during setup", bad);
    }
    return -1;
}

/* --------------------------------------------------------------- setup */
/* A data.train with no manifest at all (never made, or a typo) gets the
 * objective's way of making one appended to err; other errors (a damaged or
 * half-packed data set) are left as they are. */
static void data_hint(const char *dir, const char *hint, char *err, size_t errlen) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t n = strlen(err);
    if (hint && stat(path, &st) != 0 && errno == ENOENT && n + 1 < errlen)
        snprintf(err + n, errlen - n, "; data.train: %s", hint);
}

/* Inputs are checked on every rank before anything is written: a bad spec
 * or data path leaves no half-made run directory behind. Then the objective
 * is built and rank 0 reads the checkpoint `resume` asks for (refused
 * before the run directory is touched). */
static int setup_objective(trainer *t, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    shard_schema sc;
    t->ops = objective_find(s->objective);
    JEPA_ASSERT(t->ops); /* the spec's enum lists registered objectives only */
    int rc = objective_data_schema(s->data.train, &sc, err, errlen);
    if (rc) data_hint(s->data.train, t->ops->data_hint, err, errlen);
    if (rc == 0) rc = t->ops->create(&t->o, s, &sc, t->rank, t->world, err, errlen);
    if (rc == 0 && t->ops->train_init) rc = t->ops->train_init(t->o, s, err, errlen);
    if (rc == 0 && (s->eval.probe || s->eval.every_steps > 0) && t->ops->eval_labels) {
        /* the probe's data is checked now, never after minutes of training;
         * unlabelled images train, only the probe is skipped */
        rc = objective_eval_data(s, err, errlen);
        if (rc == 1 && t->lead) fprintf(stderr, "train: %s; the probe is skipped\n", err);
        if (rc == 1) t->no_labels = 1, rc = 0;
        else if (rc == 0 && t->lead) rc = objective_verify_eval_data(s, err, errlen);
    } else if (rc == 0 && t->lead && s->eval.probe) {
        rc = objective_same_records(s, err, errlen); /* the evaluation reads it as data.train */
    }
    if (agree(rc, t->res, err, errlen)) return -1;
    for (t->nstats = 0; t->ops->stat_names && t->ops->stat_names[t->nstats]; t->nstats++) {}
    JEPA_ASSERT(t->nstats <= OBJ_MAX_STATS);
    collapse_watch_init(&t->cw, t->ops, t->nstats);
    train_meta_init(&t->want, s, t->world);
    memset(&t->got, 0, sizeof t->got);
    t->fresh = 1;
    if (t->lead) {
        train_result *r = t->res;
        rc = train_resume_load(s, &t->o->m, &t->want, &t->got, r->ckpt_path, sizeof r->ckpt_path,
                               err, errlen);
        t->fresh = rc == 1;
        if (rc == 1) rc = t->ops->data_stats(t->o, s->data.train, err, errlen);
        if (rc == 0 && !t->fresh) {
            t->o->mean = t->got.norm_mean;
            t->o->std = t->got.norm_std;
        }
    }
    return agree(rc, t->res, err, errlen);
}

/* The run directory's spec files, once every input checked out (the data
 * reader's included, setup_sync): a refused run writes nothing there. */
static int setup_run_dir(trainer *t, const char *spec_text, char *err, size_t errlen) {
    int rc = 0;
    if (t->lead) {
        rc = train_write_run_dir(t->s, spec_text, err, errlen);
        if (rc == 0 && !t->fresh && !strcmp(t->s->resume, "auto")) ckpt_dir_tidy(t->s->run_dir, t->got.step);
    }
    return agree(rc, t->res, err, errlen);
}

/* A resume keeps the checkpoint's global batch G (the checkpoint refused a
 * world size that does not divide it): each of the W ranks trains G / W
 * records. When that is not train.batch_per_rank (the run's first world
 * size), the objective is rebuilt for it and rank 0's loaded state moved
 * into the new one; the spec's batch_per_rank stays the run's identity. */
static int setup_batch(trainer *t, char *err, size_t errlen) {
    uint32_t G = t->lead && !t->fresh ? t->got.reader.global_batch : 0;
    comm_bcast_bytes(&G, sizeof G, 0);
    if (G == 0 || G == (uint32_t)(t->o->B * t->world)) return 0;
    JEPA_ASSERT(G % (uint32_t)t->world == 0);
    t->s_own = JEPA_MALLOC(sizeof *t->s_own);
    *t->s_own = *t->s;
    t->s_own->train.batch_per_rank = (int)(G / (uint32_t)t->world);
    shard_schema sc;
    objective *o = NULL;
    int rc = objective_data_schema(t->s->data.train, &sc, err, errlen);
    if (rc == 0) rc = t->ops->create(&o, t->s_own, &sc, t->rank, t->world, err, errlen);
    if (rc == 0 && t->ops->train_init) rc = t->ops->train_init(o, t->s_own, err, errlen);
    if (agree(rc, t->res, err, errlen)) return -1;
    jepa_model *a = &t->o->m, *b = &o->m;
    JEPA_ASSERT(a->nparams == b->nparams && a->nenc == b->nenc);
    memcpy(b->params, a->params, sizeof(float) * a->nparams);
    if (a->nenc) memcpy(b->target, a->target, sizeof(float) * a->nenc);
    memcpy(b->adam_m, a->adam_m, sizeof(float) * a->nparams);
    memcpy(b->adam_v, a->adam_v, sizeof(float) * a->nparams);
    o->mean = t->o->mean;
    o->std = t->o->std;
    t->ops->destroy(t->o);
    t->o = o;
    t->s = t->s_own;
    if (t->lead)
        fprintf(stderr, "train: global batch %u: %d ranks of %d (the checkpoint's %u ranks of %u)\n",
                G, t->world, t->o->B, t->got.world, G / t->got.world);
    return 0;
}

/* One source of truth for the weights and statistics (rank 0's init or
 * checkpoint), proved bitwise equal on every rank; then the all-reduce
 * buckets and this rank's stream of batches (disjoint across ranks,
 * shuffled by (seed, epoch), decoded ahead; a resume picks it up at the
 * checkpoint's position). */
static int setup_sync(trainer *t, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    jepa_model *m = &t->o->m;
    comm_bcast_bytes(&t->fresh, sizeof t->fresh, 0);
    comm_bcast_bytes(&t->o->mean, sizeof t->o->mean, 0);
    comm_bcast_bytes(&t->o->std, sizeof t->o->std, 0);
    comm_bcast_floats(m->params, m->nparams, 0);
    if (t->fresh) {
        if (m->nenc) memcpy(m->target, m->params, sizeof(float) * m->nenc);
    } else {
        comm_bcast_bytes(&t->got, sizeof t->got, 0);
        if (m->nenc) comm_bcast_floats(m->target, m->nenc, 0);
        comm_bcast_floats(m->adam_m, m->nparams, 0);
        comm_bcast_floats(m->adam_v, m->nparams, 0);
        t->start = t->got.step;
        t->res->resumed_from = t->start;
        if (t->lead)
            fprintf(stderr, "train: resuming from %s (step %lld of %lld)\n", t->res->ckpt_path,
                    (long long)t->start, (long long)t->got.total_steps);
    }
    if (comm_check_replicas(m->params, m->nparams, err, errlen)) {
        if (t->lead) comm_fatal("%s", err);
        comm_wait_idle();
    }
    if (comm_buckets_init(&t->cb, m->grads, m->nparams, (size_t)(s->parallel.bucket_mb * 1048576.0),
                          s->parallel.blocking_allreduce))
        comm_fatal("parallel.bucket_mb %g is too small", s->parallel.bucket_mb);
    m->grad_ready = grads_ready;
    m->grad_ready_ctx = &t->cb;
    int B = s->train.batch_per_rank;
    int rc = shard_reader_init_at(&t->rd, s->data.train, t->rank, t->world, (uint64_t)s->seed, B,
                                  s->data.shuffle_buffer, s->data.prefetch,
                                  t->fresh ? NULL : &t->got.reader, err, errlen);
    if (rc == 0) {
        size_t rb = shard_schema_record_bytes(shard_reader_schema(t->rd));
        t->rec = JEPA_MALLOC(rb * B);
        t->lab = JEPA_MALLOC((size_t)B);
    }
    return agree(rc, t->res, err, errlen);
}

/* Seconds of one step, timed on the real step (all-reduce included) with
 * this rank's first records. The minimum of several: a transient load on
 * the machine (a package install at start) slows some repetitions, never
 * speeds one up. Parameters are untouched (lr 0) and the Adam moments reset. */
static double time_step(trainer *t, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    jepa_model *m = &t->o->m;
    shard_dataset *ds = NULL;
    uint64_t n = 0;
    int rc = shard_dataset_open(&ds, s->data.train, err, errlen);
    for (int i = 0; rc == 0 && i < t->o->B; i++) {
        size_t rb = shard_dataset_record_bytes(ds);
        n = shard_dataset_records(ds);
        rc = shard_dataset_read_record(ds, ((uint64_t)t->rank * t->o->B + i) % n, t->rec + rb * i,
                                       NULL, NULL, 0, err, errlen);
    }
    shard_dataset_close(ds);
    if (rc) comm_fatal("%s", err);
    double best = 1e30;
    for (int i = 0; i <= 5; i++) { /* the first one warms caches and pages */
        double t0 = train_now_s();
        debug_slow(t);
        t->ops->step(t->o, t->rec, 0, NULL);
        comm_buckets_finish(&t->cb);
        adamw_update(m, 0.0, 0.0, s->optim.beta1, s->optim.beta2, s->optim.eps, 1);
        double dt = train_now_s() - t0;
        if (i > 0 && dt < best) best = dt;
    }
    memset(m->adam_m, 0, sizeof(float) * m->nparams);
    memset(m->adam_v, 0, sizeof(float) * m->nparams);
    comm_bcast_bytes(&best, sizeof best, 0); /* rank 0's clock rules */
    return best;
}

/* The schedules' length: a resume keeps its checkpoint's (and plan); else
 * train.steps, train.epochs or the time budget, in that order. A budget's
 * plan is the first plan, re-planned later (step_replan). */
static void plan_steps(trainer *t, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    const char *slow = getenv("JEPA_DEBUG_SLOW_START"), *nr = getenv("JEPA_DEBUG_NO_REPLAN");
    const char *force = getenv("JEPA_DEBUG_PLAN");
    if (slow && sscanf(slow, "%lf:%lf", &t->slow_s, &t->slow_ms) != 2) t->slow_ms = 0;
    t->no_replan = nr && !strcmp(nr, "1");
    if (force && (sscanf(force, "%lld:%lld:%lld", &t->force[0], &t->force[1], &t->force[2]) != 3 ||
                  t->force[1] < 1 || t->force[1] >= t->force[0] || t->force[2] <= t->force[1]))
        t->force[0] = 0;
    t->total = t->fresh ? s->train.steps : t->got.total_steps;
    t->replan_at = t->fresh ? 0 : t->got.replan_step;
    t->replan_p = t->fresh ? 0.0f : t->got.replan_progress;
    t->budget = s->train.minutes * 60.0;
    t->budget_plan = s->train.steps <= 0 && s->train.epochs <= 0 && t->budget > 0;
    /* a run resumed past a re-plan point had its re-plan there */
    for (t->replan_pt = 0; !t->fresh && t->replan_pt < REPLAN_POINTS &&
                           t->got.train_s >= replan_fracs[t->replan_pt] * t->budget;
         t->replan_pt++) {}
    if (t->total <= 0 && s->train.epochs > 0) /* every rank has the same batches per epoch */
        t->total = (int64_t)ceil(s->train.epochs * (double)shard_reader_batches_per_epoch(t->rd));
    if (t->total > 0) return;
    double per = time_step(t, err, errlen);
    t->total = (int64_t)((t->budget - (train_now_s() - t->t_start)) / (per * REPLAN_MARGIN));
    if (t->force[0]) t->total = t->force[0];
    if (t->total < 1) t->total = 1;
    comm_bcast_bytes(&t->total, sizeof t->total, 0);
    t->plan_first = t->total;
    if (t->lead)
        fprintf(stderr, "train: %.1f min budget, %.3f s/step measured -> %lld steps\n",
                s->train.minutes, per, (long long)t->total);
}

/* Rank 0 opens metrics.jsonl (continued after a resume); the state a
 * checkpoint carries is restored: the open log interval, the seconds
 * trained so far (budget cap and elapsed_s continue). */
static void open_log(trainer *t, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    if (t->lead) {
        char path[SPEC_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", s->run_dir);
        t->mf = t->fresh ? fopen(path, "w") : train_metrics_open_at(path, t->start, err, errlen);
        if (!t->mf && t->fresh) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (!t->mf) comm_fatal("%s", err);
        if (!t->fresh) collapse_watch_replay(&t->cw, path);
    }
    t->sc = (sched_cfg){s->optim.lr, s->optim.min_lr, s->optim.warmup_frac, s->optim.wd_start,
                        s->optim.wd_end, s->ema.start, s->ema.end};
    t->tty = t->lead && cli_progress();
    t->t0 = train_now_s() - t->got.train_s;
    t->loss_acc = t->got.log_loss_sum;
    t->loss_n = t->got.log_count;
    t->stat[0] = t->got.last_target_std;
    if (t->lead && !t->fresh) {
        char path[SPEC_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", s->run_dir);
        train_metrics_stats_at(path, t->start, t->ops->stat_names, t->nstats, t->stat);
    }
    t->seen = t->seen_log = t->got.images_seen;
    t->saved = t->fresh ? -1 : t->start; /* step of the last checkpoint on disk */
    t->res->final_loss = t->got.last_loss;
    t->cm = t->want;
    t->cm.total_steps = t->total;
    t->cm.replan_step = t->replan_at;
    t->cm.replan_progress = t->replan_p;
    t->smp_stride = 1;
    t->cm.norm_mean = t->o->mean;
    t->cm.norm_std = t->o->std;
    t->stop_at = env_step("JEPA_DEBUG_STOP_STEP");
    t->nan_at = env_step("JEPA_DEBUG_NAN_STEP");
    t->hang_at = env_step("JEPA_DEBUG_HANG_STEP");
    t->kill_at = env_step("JEPA_DEBUG_KILL_STEP");
    t->exit_at = env_step("JEPA_DEBUG_EXIT_STEP");
    const char *nan_kind = getenv("JEPA_DEBUG_NAN_KIND");
    t->nan_loss = nan_kind && !strcmp(nan_kind, "loss");
    t->t_log = t->t_ckpt = train_now_s();
}

/* ------------------------------------------------------------ one step */
/* The objective's forward/backward on this rank's batch, the all-reduce,
 * then the guard: the global loss and the averaged gradients are equal on
 * every rank, so every rank decides alike. -1 + err on a non-finite value. */
static int step_compute(trainer *t, double *loss, double *gsq, char *err, size_t errlen) {
    jepa_model *m = &t->o->m;
    const int64_t step = t->step;
    while (step == t->hang_at && t->rank == t->world - 1) pause(); /* test hook: for a kill -9 */
    if (step == t->kill_at && t->rank == t->world - 1) raise(SIGKILL); /* test hook: the OOM killer's */
    if (step == t->exit_at && t->rank == t->world - 1) exit(7); /* test hook: a library's exit, no RUN/error */
    if (shard_reader_next(t->rd, t->rec, t->lab, err, errlen)) comm_fatal("%s", err);
    if (t->trace) train_trace_batch(t->trace, step, t->rank * t->o->B, t->o->B, t->rec,
                                   shard_schema_record_bytes(shard_reader_schema(t->rd)));
    debug_slow(t);
    obj_stats st;
    memset(&st, 0, sizeof st);
    t->ops->step(t->o, t->rec, step, &st);
    if (step + 1 == t->nan_at && t->nan_loss && t->rank == t->world - 1) st.loss = NAN; /* test hook */
    comm_buckets_finish(&t->cb);
    if (step + 1 == t->nan_at && !t->nan_loss) m->grads[m->nparams / 2] = NAN; /* test hook */
    double v[1 + OBJ_MAX_STATS]; /* the loss and the objective's metrics: one all-reduce */
    v[0] = st.loss;
    for (int k = 0; k < t->nstats; k++) v[1 + k] = st.stat[k];
    comm_sum_doubles(v, (size_t)1 + t->nstats);
    *loss = v[0] / t->world;
    if (t->trace && t->lead) fprintf(t->trace, "%lld loss %.9e\n", (long long)step, *loss);
    for (int k = 0; k < t->nstats; k++) t->stat[k] = v[1 + k] / t->world;
    size_t nbad = 0;
    *gsq = grads_sq_norm(m->grads, m->nparams, &nbad);
    if (isfinite(*loss) && isfinite(*gsq)) return 0;
    char what[96];
    if (!isfinite(*loss)) snprintf(what, sizeof what, "loss (%g)", *loss);
    else snprintf(what, sizeof what, "gradient (%zu of %zu values)", nbad, m->nparams);
    snprintf(err, errlen,
             "step %lld: non-finite %s: training stopped; no checkpoint of this state is "
             "written%s%s",
             (long long)step + 1, what, t->saved >= 0 ? ", the last good one is " : "",
             t->saved >= 0 ? t->res->ckpt_path : "");
    t->res->nonfinite = 1;
    return -1;
}

/* The schedules' progress at step s: s/T without a re-plan; after the last
 * re-plan, at step r with progress p_r there, linear from p_r to 1 at T. */
static double schedule_progress(const trainer *t, int64_t step) {
    if (!t->replan_at) return (double)step / (double)t->total;
    const int64_t r = t->replan_at;
    return t->replan_p + (double)(step - r) * (1.0 - t->replan_p) / (double)(t->total - r);
}

/* The schedules at step s: sched_at over t->total until a re-plan; after
 * one, sched_at at the progress (on a grid of 2^40 steps). A re-plan changes
 * how fast lr, wd and EMA move on, never their value: they stay continuous
 * functions of the step and the recorded plan (T, r, p_r). */
static void schedule_at(const trainer *t, int64_t step, sched_values *sv) {
    if (!t->replan_at) {
        sched_at(&t->sc, step, t->total, sv);
        return;
    }
    const int64_t grid = INT64_C(1) << 40;
    sched_at(&t->sc, (int64_t)llround(schedule_progress(t, step) * (double)grid), grid, sv);
}

static void step_update(trainer *t, double loss, sched_values *sv) {
    const jepa_spec *s = t->s;
    schedule_at(t, t->step, sv);
    adamw_update(&t->o->m, sv->lr, sv->wd, s->optim.beta1, s->optim.beta2, s->optim.eps,
                 t->step + 1);
    if (t->ops->after_update) t->ops->after_update(t->o, sv);
    t->seen += (int64_t)t->o->B * t->world;
    t->loss_acc += loss;
    t->loss_n++;
}

/* Rank 0, until the last re-plan point: (steps completed, seconds trained,
 * evaluations excluded) after each step; past REPLAN_SAMPLES every other
 * point is dropped and the stride doubles. Says whether a re-plan is due:
 * at the next point of replan_fracs, or before it when the plan is about to
 * end (a re-plan must come before the plan's last step). */
static int replan_sample(trainer *t) {
    if (!t->budget_plan || t->replan_pt >= REPLAN_POINTS || t->no_replan) return 0;
    double el = train_now_s() - t->t0;
    if (t->smp_seen++ % t->smp_stride == 0) {
        if (t->nsmp == REPLAN_SAMPLES) {
            for (int i = 0; i < REPLAN_SAMPLES / 2; i++) {
                t->smp_step[i] = t->smp_step[2 * i];
                t->smp_el[i] = t->smp_el[2 * i];
            }
            t->nsmp = REPLAN_SAMPLES / 2;
            t->smp_stride *= 2;
        }
        t->smp_step[t->nsmp] = t->step + 1;
        t->smp_el[t->nsmp++] = el;
    }
    if (t->force[0]) return t->step + 1 == t->force[1] && !t->nreplans;
    return t->nsmp >= 3 &&
           (el >= replan_fracs[t->replan_pt] * t->budget || t->step + 2 >= t->total);
}

/* Rank 0's clock rules the budget, the re-plan and timed checkpoints; a
 * signal on any rank stops every rank after the same step. Returns flags:
 * 1 the run ends (last planned step, or the budget spent: then t->capped),
 * 2 a timed checkpoint is due, 4 stop on a signal, 8 re-plan now. */
static int step_control(trainer *t) {
    const jepa_spec *s = t->s;
    unsigned char flags = 0;
    if (t->budget > 0 && train_now_s() - t->t0 > t->budget) flags |= 1;
    if (t->lead && replan_sample(t)) flags |= 8;
    if (s->checkpoint.every_minutes > 0 &&
        train_now_s() - t->t_ckpt >= s->checkpoint.every_minutes * 60)
        flags |= 2;
    if (t->budget > 0 || s->checkpoint.every_minutes > 0) comm_bcast_bytes(&flags, 1, 0);
    int sig = train_signal_caught() != 0 || (t->step + 1 == t->stop_at && t->rank == t->world - 1);
    int stop = comm_any_error(sig) >= 0;
    if ((flags & 1) && t->step + 1 < t->total) t->capped = 1;
    int last = t->step + 1 == t->total || (flags & 1);
    if (stop && !last) flags |= 4; /* a complete run has nothing left to resume */
    if (last) flags |= 1;
    return flags;
}

/* Collective: the budget's step count again after step r = t->step + 1,
 * from rank 0's mean step time over the later half (in time) of its
 * samples: a load at start that passed before that half (5% of the budget
 * at the 10% re-plan) misleads the first timing, not this one (and the 50%
 * re-plan times 25-50%). Steps from r
 * on follow the new length at the same progress (schedule_at). */
static void step_replan(trainer *t) {
    const int64_t r = t->step + 1;
    int64_t total = t->total;
    double per = 0.0, el = train_now_s() - t->t0;
    if (t->lead) {
        int last = t->nsmp - 1, h = 0;
        while (h < last - 1 && t->smp_el[h] < 0.5 * t->smp_el[last]) h++;
        per = (t->smp_el[last] - t->smp_el[h]) / (double)(t->smp_step[last] - t->smp_step[h]);
        double more = (t->budget - el) / (per * REPLAN_MARGIN); /* steps left */
        total = r + (more > 1.0 ? (int64_t)fmin(more, (double)(UINT32_MAX - r)) : 1);
        if (t->force[0]) total = t->force[2];
        while (t->replan_pt < REPLAN_POINTS && el >= replan_fracs[t->replan_pt] * t->budget)
            t->replan_pt++;
        if (t->force[0]) t->replan_pt = REPLAN_POINTS;
    }
    comm_bcast_bytes(&total, sizeof total, 0);
    float pr = (float)schedule_progress(t, r); /* stored as f32, in (0, 1) */
    t->replan_p = t->cm.replan_progress = pr < 1.0f ? pr : nextafterf(1.0f, 0.0f);
    t->replan_at = t->cm.replan_step = r;
    t->total = t->cm.total_steps = total;
    t->nreplans++;
    if (t->lead)
        fprintf(stderr, "train: re-planned after %lld steps (%.1f of %.1f s trained): %.4f s/step "
                "-> %lld steps (up-front plan %lld)\n", (long long)r, el, t->budget, per,
                (long long)total, (long long)t->plan_first);
}

/* JEPA_DEBUG_SLOW_EVAL=S (a test hook): every evaluation of the trainer's
 * (eval.every_steps, the closing one) sleeps S seconds first, so a test
 * can signal it there; a signal caught cuts the sleep short. */
static void debug_slow_eval(void) {
    const char *v = getenv("JEPA_DEBUG_SLOW_EVAL");
    double sec = v ? atof(v) : 0.0;
    if (sec <= 0) return;
    struct timespec ts = {(time_t)sec, (long)((sec - (double)(time_t)sec) * 1e9)};
    int caught = train_signal_caught();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && train_signal_caught() == caught) {
    }
}

/* An evaluation during training (eval.every_steps, a multiple of
 * log_every, so it lands on a logged line); its time counts neither as
 * training time nor against the budget. */
static void step_evaluate(trainer *t, obj_eval *ev) {
    const jepa_spec *s = t->s;
    char err[SPEC_ERR_MAX];
    double tp = train_now_s();
    debug_slow_eval();
    if (t->ops->evaluate(t->o, s, ev, err, sizeof err))
        comm_fatal("step %lld: evaluation: %s", (long long)(t->step + 1), err);
    comm_wait_idle();
    tp = train_now_s() - tp;
    t->t0 += tp;
    t->t_log += tp;
}

/* Rank 0 writes a metrics line every log_every steps, at step 1 and at the
 * last; a stop mid-interval logs nothing early: the checkpoint carries the
 * open interval and the resumed run logs it where a straight run would. */
static void step_log(trainer *t, const sched_values *sv, double gsq, const obj_eval *ev, int flags) {
    const jepa_spec *s = t->s;
    const int64_t n = t->step + 1;
    int due = n % s->train.log_every == 0 || (flags & 1) || t->step == 0;
    if (!t->lead || !(due || (flags & 4))) return;
    double now = train_now_s(), ips = (t->seen - t->seen_log) / (now - t->t_log > 0 ? now - t->t_log : 1e-9);
    comm_stats cs;
    comm_buckets_stats(&t->cb, &cs);
    if (due) {
        FILE *f = t->mf;
        fprintf(f, "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"wd\": %.6g", (long long)n,
                t->loss_acc / t->loss_n, sv->lr, sv->wd);
        if (t->o->m.nenc) fprintf(f, ", \"ema\": %.6f", sv->ema);
        for (int k = 0; k < t->nstats; k++) fprintf(f, ", \"%s\": %.5f", t->ops->stat_names[k], t->stat[k]);
        fprintf(f, ", \"grad_norm\": %.4g, \"img_per_s\": %.1f, \"comm_wait_s\": %.3f, \"elapsed_s\": %.2f",
                sqrt(gsq), ips, cs.wait_s - t->comm_wait0, now - t->t0);
        char fb[32];
        for (int i = 0; ev && i < ev->n; i++) fprintf(f, ", \"%s\": %s", ev->name[i], obj_eval_fmt(fb, ev->value[i]));
        fputs("}\n", f);
        /* a full disk: stop rather than lose lines (a restart resumes from
         * the last checkpoint, and the torn line is dropped then) */
        if (fflush(f) != 0 || ferror(f))
            comm_fatal("step %lld: cannot write %s/metrics.jsonl: %s", (long long)n, s->run_dir,
                       strerror(errno));
        t->comm_wait0 = cs.wait_s;
        t->res->final_loss = t->loss_acc / t->loss_n;
        t->loss_acc = 0.0;
        t->loss_n = 0;
        t->seen_log = t->seen;
        t->t_log = now;
        collapse_watch_check(&t->cw, n, t->stat, t->tty);
    }
    if (t->tty) {
        double eta = (now - t->t0) / n * (t->total - n);
        fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %s %.3f  %.0f %s/s  ETA %02d:%02d  ",
                (long long)n, (long long)t->total, t->res->final_loss,
                t->nstats ? t->ops->stat_names[0] : "", t->nstats ? t->stat[0] : 0.0, ips,
                t->ops->records_name ? t->ops->records_name : "img",
                (int)eta / 60, (int)eta % 60);
    }
}

/* Collective: a checkpoint of t->step completed steps. */
static void checkpoint_now(trainer *t) {
    ckpt_meta *cm = &t->cm;
    cm->step = t->step;
    cm->images_seen = t->seen;
    cm->log_loss_sum = t->loss_acc;
    cm->log_count = t->loss_n;
    cm->last_loss = t->res->final_loss;
    cm->last_target_std = t->nstats ? t->stat[0] : 0.0;
    cm->train_s = train_now_s() - t->t0;
    train_save_checkpoint(t->s, &t->o->m, cm, t->rd, t->res->ckpt_path, sizeof t->res->ckpt_path);
    t->saved = t->step;
    t->t_ckpt = train_now_s();
}

/* The loop: each step is compute, update, control, (evaluate), log,
 * (checkpoint). Returns 0, or -1 + err on a non-finite value; *stopped
 * says a signal ended it early. */
static int train_loop(trainer *t, int *stopped, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    *stopped = 0;
    for (t->step = t->start; t->step < t->total; t->step++) {
        double loss, gsq;
        if (step_compute(t, &loss, &gsq, err, errlen)) return -1;
        sched_values sv;
        step_update(t, loss, &sv);
        int flags = step_control(t);
        if ((flags & 8) && !(flags & 5)) step_replan(t);
        if (s->parallel.check_every > 0 && (t->step + 1) % s->parallel.check_every == 0 &&
            comm_check_replicas(t->o->m.params, t->o->m.nparams, err, errlen)) {
            if (t->lead) comm_fatal("step %lld: %s", (long long)(t->step + 1), err);
            comm_wait_idle();
        }
        obj_eval ev = {0};
        if (s->eval.every_steps > 0 && (t->step + 1) % s->eval.every_steps == 0 && !(flags & 5) &&
            !t->no_labels)
            step_evaluate(t, &ev);
        step_log(t, &sv, gsq, &ev, flags);
        if (flags & 5) {
            t->step++;
            *stopped = (flags & 4) != 0;
            return 0;
        }
        if ((s->checkpoint.every_steps > 0 && (t->step + 1) % s->checkpoint.every_steps == 0) ||
            (flags & 2)) {
            t->step++;
            checkpoint_now(t);
            t->step--;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- finish */
static int write_summary(trainer *t, double train_s, char *err, size_t errlen) {
    comm_stats cs;
    comm_buckets_stats(&t->cb, &cs);
    train_result *r = t->res;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "{\n  \"objective\": \"%s\",\n  \"final_loss\": %.6f,\n",
                     t->ops->name, r->final_loss);
    char fb[32];
    for (int i = 0; i < r->eval.n; i++)
        n += snprintf(buf + n, sizeof buf - n, "  \"%s\": %s,\n", r->eval.name[i],
                      obj_eval_fmt(fb, r->eval.value[i]));
    if (obj_eval_get(&r->eval, "probe_acc") < 0) /* the launcher's tables read it */
        n += snprintf(buf + n, sizeof buf - n, "  \"probe_acc\": -1,\n");
    for (int k = 0; k < t->nstats; k++)
        n += snprintf(buf + n, sizeof buf - n, "  \"%s\": %.5f,\n", t->ops->stat_names[k], t->stat[k]);
    if (t->cw.warned >= 0) /* null: the collapse watch never fired */
        n += snprintf(buf + n, sizeof buf - n, "  \"collapse_warning_step\": %lld,\n", (long long)t->cw.warned);
    else
        n += snprintf(buf + n, sizeof buf - n, "  \"collapse_warning_step\": null,\n");
    snprintf(buf + n, sizeof buf - n,
             "  \"images_seen\": %lld,\n  \"wall_s\": %.1f,\n  \"train_s\": %.1f,\n"
             "  \"steps\": %lld,\n  \"planned_steps\": %lld,\n  \"stop_reason\": \"%s\",\n"
             "  \"plan_first_steps\": %lld,\n  \"replans\": %d,\n  \"replan_step\": %lld,\n"
             "  \"ranks\": %d,\n  \"comm_wait_s\": %.3f,\n"
             "  \"resumed_from\": %lld,\n  \"param_hash\": \"%016llx\"\n}\n",
             (long long)t->seen, r->wall_s, train_s, (long long)t->step, (long long)t->total,
             t->capped ? "budget" : "completed", (long long)t->plan_first, t->nreplans, (long long)t->replan_at,
             t->world, cs.wait_s,
             (long long)r->resumed_from,
             (unsigned long long)jepa_hash_floats(t->o->m.params, t->o->m.nparams));
    return train_write_text(t->s->run_dir, "summary.json", buf, err, errlen);
}

/* The end of the run, or of this part of it: one checkpoint of it (none of
 * a state that went non-finite), then for a complete run the replica check,
 * RUN/checkpoint.bin, the evaluation and summary.json. */
static int train_finish(trainer *t, int rc, int stopped, char *err, size_t errlen) {
    const jepa_spec *s = t->s;
    train_result *r = t->res;
    if (t->tty) fputc('\n', stderr);
    if (t->mf && fclose(t->mf) != 0)
        comm_fatal("cannot write %s/metrics.jsonl: %s", s->run_dir, strerror(errno));
    t->mf = NULL;
    r->steps = t->step;
    r->planned_steps = t->total;
    r->capped = t->capped;
    r->images_seen = t->seen;
    r->target_std = t->nstats ? t->stat[0] : 0.0;
    double train_s = train_now_s() - t->t0;
    if (rc == 0 && t->step > t->saved) checkpoint_now(t);
    if (rc || stopped) train_signals_release_int(); /* exits 75 or fails: Ctrl-C kills */
    if (rc == 0 && stopped) {
        r->interrupted = train_signal_caught() ? train_signal_caught() : SIGUSR1;
        if (t->lead) { /* said before the requeue, which ends the job and its output with it */
            fprintf(stderr, "jepa-train: stopped by signal %d after step %lld of %lld: checkpoint %s written; "
                    "continue with --set resume=auto (exit %d)\n", r->interrupted, (long long)t->step,
                    (long long)t->total, r->ckpt_path, TRAIN_EXIT_INTERRUPTED);
            train_slurm_requeue();
        }
        return 0;
    }
    if (rc) return rc;
    if (comm_check_replicas(t->o->m.params, t->o->m.nparams, err, errlen)) {
        if (t->lead) comm_fatal("end of training: %s", err);
        comm_wait_idle();
    }
    if (t->lead) {
        comm_stats cs;
        comm_buckets_stats(&t->cb, &cs);
        const char *rn = t->ops->records_name ? t->ops->records_name : "images";
        fprintf(stderr,
                "train: %lld steps, %lld %s in %.1fs (%.1f %s/s, %d rank%s), loss %.4f, "
                "%s %.4f, all-reduce wait %.1fs\n",
                (long long)t->step, (long long)t->seen, rn, train_s,
                t->seen / (train_s > 0 ? train_s : 1), rn, t->world, t->world > 1 ? "s" : "",
                r->final_loss, t->nstats ? t->ops->stat_names[0] : "-", r->target_std, cs.wait_s);
        if (t->capped) /* the run counts as finished, its schedules did not */
            fprintf(stderr, "train: train.minutes cap (%g min) reached after %lld of %lld planned "
                    "steps: lr, wd and EMA schedules cut short (summary.json stop_reason "
                    "\"budget\")\n", s->train.minutes, (long long)t->step, (long long)t->total);
        t->cm.step = t->step;
        rc = ckpt_dir_publish(s->run_dir, r->ckpt_path, &t->o->m, &t->cm, err, errlen);
    }
    comm_wait_idle(); /* ranks idle without spinning while rank 0 writes */
    if (agree(rc, r, err, errlen)) return -1;
    char line[SPEC_STR_MAX + 256];
    snprintf(line, sizeof line, "jepa-train: stopped by signal %d in the closing evaluation, after step %lld of "
             "%lld: checkpoint %s written; continue with --set resume=auto, which evaluates again (exit %d)",
             SIGUSR1, (long long)t->step, (long long)t->total, r->ckpt_path, TRAIN_EXIT_INTERRUPTED);
    train_signals_eval(1, t->lead ? line : NULL, t->lead ? train_slurm_requeue_id() : NULL);
    if (s->eval.probe && !t->no_labels) {
        debug_slow_eval();
        rc = t->ops->evaluate(t->o, s, &r->eval, err, errlen);
        comm_wait_idle();
        if (agree(rc, r, err, errlen)) return -1;
        r->probe_acc = obj_eval_get(&r->eval, "probe_acc");
    }
    train_signals_eval(0, NULL, NULL);
    r->wall_s = train_now_s() - t->t_start;
    if (t->lead) rc = write_summary(t, train_s, err, errlen);
    return rc;
}

/* --------------------------------------------------------------- train */
int train_run(const jepa_spec *s, const char *spec_text, train_result *res, char *err,
              size_t errlen) {
    trainer t;
    memset(&t, 0, sizeof t);
    memset(res, 0, sizeof *res);
    t.t_start = train_now_s();
    t.s = s;
    t.res = res;
    res->probe_acc = -1.0;
    res->resumed_from = -1;
    t.rank = comm_rank();
    t.world = comm_world();
    t.lead = t.rank == 0;
    /* from here on a signal is honoured: during setup it stops the run
     * after its first step */
    train_signals_catch();
    int rc = setup_objective(&t, err, errlen), stopped = 0;
    if (rc == 0) rc = setup_batch(&t, err, errlen);
    if (rc == 0) rc = setup_sync(&t, err, errlen);
    if (rc == 0) rc = setup_run_dir(&t, spec_text, err, errlen);
    res->refused = rc != 0; /* nothing trained: the inputs were refused */
    if (rc == 0) t.trace = train_trace_open(t.rank);
    if (rc == 0) {
        plan_steps(&t, err, errlen);
        open_log(&t, err, errlen);
        rc = train_loop(&t, &stopped, err, errlen);
        rc = train_finish(&t, rc, stopped, err, errlen);
        comm_wait_idle(); /* rank 0 writes and fits the probe (rank 1 scores beside it); the rest wait without spinning */
    }
    if (t.mf) fclose(t.mf);
    if (t.trace) fclose(t.trace);
    shard_reader_free(t.rd);
    comm_buckets_free(&t.cb);
    jepa_free(t.rec);
    jepa_free(t.lab);
    if (t.o) t.ops->destroy(t.o);
    jepa_free(t.s_own);
    train_signals_restore();
    return rc;
}
