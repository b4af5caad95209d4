/* train.c - the training loop: data order, masks, step, schedules, AdamW,
 * EMA, metrics, progress, checkpoints, resume, the NaN/Inf guard, signals and
 * the closing linear probe.
 *
 * Reproducibility: the batch order is a function of (seed, epoch) (the shard
 * reader's), the masks of (seed, step); a time budget (train.minutes) is turned into a step count
 * once, up front, by timing the step, so the schedules are step-based and the
 * run is replayable from its resolved spec and logged step count. A resume
 * restores parameters, EMA target, Adam moments, step, schedule length, the
 * reader's position and the open log interval, so it continues bit for bit. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "jepa.h"
#include "shard.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* mkdir -p */
static int make_dirs(const char *path, char *err, size_t errlen) {
    char buf[SPEC_STR_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

/* Writes text to dir/name atomically (temp + rename). */
static int write_text(const char *dir, const char *name, const char *text, char *err,
                      size_t errlen) {
    char path[SPEC_STR_MAX + 64], tmp[SPEC_STR_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* u8 pixels -> normalised floats: (x/255 - mean) / std */
static void fill_batch(float *dst, const uint8_t *src, size_t n, float mean, float std) {
    float a = 1.0f / (255.0f * std), b = -mean / std;
    for (size_t k = 0; k < n; k++) dst[k] = src[k] * a + b;
}

int train_probe(jepa_model *m, const jepa_spec *s, float mean, float std, probe_result *pr,
                char *err, size_t errlen) {
    jepa_images tr = {0}, te = {0};
    if (images_load_shards(&tr, s->data.train, err, errlen)) return -1;
    if (images_load_shards(&te, s->data.test, err, errlen)) {
        images_free(&tr);
        return -1;
    }
    int which = strcmp(s->eval.features, "context") ? 1 : 0, D = m->dims.D;
    float *ftr = JEPA_MALLOC(sizeof(float) * tr.n * D), *fte = JEPA_MALLOC(sizeof(float) * te.n * D);
    double t0 = now_s();
    jepa_features(m, which, &tr, mean, std, ftr);
    jepa_features(m, which, &te, mean, std, fte);
    double t1 = now_s();
    int rc = probe_run(ftr, tr.labels, tr.n, fte, te.labels, te.n, D, 10, s->eval.val_frac,
                       s->eval.max_iters, (uint64_t)s->seed, pr, err, errlen);
    fprintf(stderr, "probe: %s encoder features %.1fs, fit %.1fs, wd %g, val %.4f, test %.4f\n",
            which ? "target" : "context", t1 - t0, now_s() - t1, pr->best_wd, pr->val_acc,
            pr->test_acc);
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}

/* The run directory with the spec as given and fully resolved. */
static int write_run_dir(const jepa_spec *s, const char *spec_text, char *err, size_t errlen) {
    if (make_dirs(s->run_dir, err, errlen)) return -1;
    if (spec_text && write_text(s->run_dir, "spec.yaml", spec_text, err, errlen)) return -1;
    char path[SPEC_STR_MAX + 32], tmp[SPEC_STR_MAX + 40];
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", s->run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || spec_write(s, f) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void grads_ready(void *ctx, size_t lo) { comm_buckets_ready((comm_buckets *)ctx, lo); }

/* Setup errors can strike one rank only (a data path missing on one node):
 * every rank learns of it here, the failing rank keeps its own message. */
static int agree(int rc, train_result *res, char *err, size_t errlen) {
    int bad = comm_any_error(rc != 0);
    if (bad < 0) return 0;
    if (rc == 0) {
        res->remote_failure = 1;
        snprintf(err, errlen, "rank %d failed during setup", bad);
    }
    return -1;
}

/* ------------------------------------------------------------ identity */
/* The keys besides model.* that decide a run's trajectory: a checkpoint
 * resumed under other values would not continue the same run. */
static const char *const train_keys[] = {
    "seed", "train.batch_per_rank", "data.shuffle_buffer", "optim.lr", "optim.min_lr",
    "optim.warmup_frac", "optim.wd_start", "optim.wd_end", "optim.beta1", "optim.beta2",
    "optim.eps", "ema.start", "ema.end", "mask.num_targets", "mask.target_scale_min",
    "mask.target_scale_max", "mask.target_aspect_min", "mask.target_aspect_max",
    "mask.context_scale_min", "mask.context_scale_max", "mask.min_keep", "loss.type",
    "loss.beta",
};

void train_meta_init(ckpt_meta *m, const jepa_spec *s, int world) {
    memset(m, 0, sizeof *m);
    m->model_hash = spec_model_hash(s);
    char v[SPEC_STR_MAX];
    for (int i = 0; i < CKPT_MODEL_KEYS; i++) {
        JEPA_ASSERT(spec_get(s, ckpt_model_keys[i], v, sizeof v) == 0);
        m->model[i] = (int32_t)strtol(v, NULL, 10);
    }
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over "key=value\n" in the resolved text */
    for (size_t k = 0; k < sizeof train_keys / sizeof train_keys[0]; k++) {
        JEPA_ASSERT(spec_get(s, train_keys[k], v, sizeof v) == 0);
        char line[SPEC_STR_MAX + 64];
        int n = snprintf(line, sizeof line, "%s=%s\n", train_keys[k], v);
        for (int i = 0; i < n; i++) h = (h ^ (unsigned char)line[i]) * 0x100000001b3ULL;
    }
    m->train_hash = h;
    m->world = (uint32_t)world;
    m->seed = (uint64_t)s->seed;
}

/* Rank 0: the checkpoint `resume` asks for, into m and *got. 1: nothing to
 * resume (a fresh start), 0: loaded (path names it), -1 + err. */
static int resume_load(const jepa_spec *s, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                       char *path, size_t plen, char *err, size_t errlen) {
    int rc;
    if (!strcmp(s->resume, "none")) {
        if (!ckpt_dir_any(s->run_dir)) return 1;
        /* resume: none never overwrites a run that can be continued */
        snprintf(err, errlen,
                 "run.dir %s already holds checkpoints: set resume: auto (--set resume=auto) to "
                 "continue that run, or choose another run.dir",
                 s->run_dir);
        return -1;
    }
    if (!strcmp(s->resume, "auto")) {
        rc = ckpt_dir_load(s->run_dir, m, want, got, path, plen, err, errlen);
        if (rc == 1) {
            snprintf(path, plen, "%s/checkpoint.bin", s->run_dir);
            if (access(path, F_OK) != 0) return 1; /* a new run, or one killed before its first */
            rc = ckpt_load(path, m, want, got, err, errlen);
        }
    } else {
        snprintf(path, plen, "%s", s->resume);
        rc = ckpt_load(s->resume, m, want, got, err, errlen);
    }
    if (rc != CKPT_OK) return -1;
    if (s->train.steps > 0 && s->train.steps != got->total_steps) {
        snprintf(err, errlen,
                 "%s: written for a schedule of %lld steps, but train.steps is %lld: the lr, "
                 "wd and EMA schedules would change; resume with train.steps=%lld",
                 path, (long long)got->total_steps, (long long)s->train.steps,
                 (long long)got->total_steps);
        return -1;
    }
    return 0;
}

/* A resumed run continues metrics.jsonl: lines past the checkpoint's step
 * (logged before a crash) and a line cut short are dropped, so the file ends
 * as an uninterrupted run's would. Returns the file open for appending. */
static FILE *metrics_open_at(const char *path, int64_t upto, char *err, size_t errlen) {
    FILE *in = fopen(path, "r");
    if (in) {
        char tmp[SPEC_STR_MAX + 48], line[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *out = fopen(tmp, "w");
        if (!out) {
            fclose(in);
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            return NULL;
        }
        while (fgets(line, sizeof line, in)) {
            size_t n = strlen(line);
            long long st;
            if (n == 0 || line[n - 1] != '\n') continue; /* cut short by a crash */
            if (sscanf(line, "{\"step\": %lld,", &st) != 1 || st > upto) continue;
            fputs(line, out);
        }
        fclose(in);
        if (fclose(out) != 0 || rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return NULL;
        }
    }
    FILE *f = fopen(path, "a");
    if (!f) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

/* ------------------------------------------------------------- signals */
/* SIGTERM and SIGUSR1 (Slurm's warning before a time limit or preemption,
 * `#SBATCH --signal`) only set a flag; the loop turns it into an agreed
 * stop, a checkpoint and a clean exit. */
static volatile sig_atomic_t train_signal;
static void on_signal(int sig) { train_signal = sig; }

static int64_t env_step(const char *name) {
    const char *v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : -1;
}

/* Under Slurm, with JEPA_REQUEUE=1 (jepa-launch slurm sets it for
 * slurm.requeue): puts the job back in the queue; it resumes with resume:
 * auto. posix_spawnp, never a shell: the job id is never read as shell text. */
static void slurm_requeue(void) {
    const char *id = getenv("SLURM_JOB_ID"), *opt = getenv("JEPA_REQUEUE");
    if (!id || !*id || !opt || strcmp(opt, "1")) return;
    if (strspn(id, "0123456789") != strlen(id)) {
        fprintf(stderr, "jepa: warning: SLURM_JOB_ID '%s' is not a job number: not requeued\n", id);
        return;
    }
    char *argv[] = {"scontrol", "requeue", (char *)id, NULL};
    extern char **environ;
    pid_t pid;
    int rc = posix_spawnp(&pid, "scontrol", NULL, NULL, argv, environ), st = 0;
    if (rc == 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        fprintf(stderr, "train: requeued Slurm job %s (scontrol requeue)\n", id);
        return;
    }
    fprintf(stderr, "jepa: warning: scontrol requeue %s failed (%s)\n", id,
            rc ? strerror(rc) : "non-zero exit");
}

/* Squared L2 norm of the (all-reduced, so rank-independent) gradient, in
 * double: float squares cannot overflow it, so it is non-finite exactly when
 * some value is; then *bad counts those values. */
static double grads_sq_norm(const float *g, size_t n, size_t *bad) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    if (isfinite(s)) return s;
    *bad = 0;
    for (size_t i = 0; i < n; i++) *bad += !isfinite(g[i]);
    return s;
}

/* Collective: rank 0 writes the checkpoint of cm->step completed steps into
 * the run directory. Reader positions are equal on every rank by
 * construction and the file stores one: checked here. */
static void save_checkpoint(const jepa_spec *s, const jepa_model *m, ckpt_meta *cm,
                            shard_reader *rd, char *path, size_t plen) {
    shard_reader_get_state(rd, &cm->reader);
    shard_reader_state r0 = cm->reader;
    comm_bcast_bytes(&r0, sizeof r0, 0);
    int who = comm_any_error(memcmp(&r0, &cm->reader, sizeof r0) != 0);
    if (who >= 0) {
        if (comm_rank() == 0)
            comm_fatal("step %lld: rank %d's data reader position differs from rank 0's",
                       (long long)cm->step, who);
        comm_wait_idle();
    }
    if (comm_rank() != 0) return;
    char err[SPEC_ERR_MAX];
    if (ckpt_dir_save(s->run_dir, s->checkpoint.keep, m, cm, path, plen, err, sizeof err))
        comm_fatal("step %lld: %s", (long long)cm->step, err);
}

/* --------------------------------------------------------------- train */
int train_run(const jepa_spec *s, const char *spec_text, train_result *res, char *err,
              size_t errlen) {
    double t_start = now_s();
    memset(res, 0, sizeof *res);
    res->probe_acc = -1.0;
    res->resumed_from = -1;
    const int rank = comm_rank(), world = comm_world(), lead = rank == 0;
    jepa_dims dims;
    if (jepa_dims_from_spec(&dims, s, err, errlen)) return -1;
    /* from here on a signal is honoured: during setup it stops the run
     * after its first step */
    struct sigaction sa, old_term, old_usr1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    train_signal = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGUSR1, &sa, &old_usr1);

    /* inputs are checked on every rank before anything is written: a bad spec
     * or data path leaves no half-made run directory behind */
    jepa_images data = {0};
    int rc = images_load_shards(&data, s->data.train, err, errlen);
    if (rc == 0 && (data.c != dims.ch || data.h != dims.img || data.w != dims.img)) {
        snprintf(err, errlen, "%s: images are %dx%dx%d but model.img_size/channels say %dx%dx%d",
                 s->data.train, data.c, data.h, data.w, dims.ch, dims.img, dims.img);
        rc = -1;
    }
    if (rc == 0 && lead && s->eval.probe) {
        jepa_images te = {0};
        rc = images_load_shards(&te, s->data.test, err, errlen);
        images_free(&te);
    }
    if (agree(rc, res, err, errlen)) goto out_data;

    float mean, std;
    images_stats(&data, &mean, &std);
    mask_cfg mc;
    mask_cfg_from_spec(&mc, s);
    const int B = s->train.batch_per_rank, G = dims.grid, Bg = B * world;
    const int max_ntgt = mask_max_tokens(&mc, G);
    jepa_model m;
    jepa_model_init(&m, &dims, (uint64_t)s->seed, B, mc.npred, max_ntgt,
                    s->parallel.threads_per_rank);
    /* the checkpoint is read (and refused) before the run directory is
     * touched: a resume under the wrong config leaves the run as it was */
    ckpt_meta want, got;
    train_meta_init(&want, s, world);
    memset(&got, 0, sizeof got);
    int fresh = 1;
    if (lead) {
        rc = resume_load(s, &m, &want, &got, res->ckpt_path, sizeof res->ckpt_path, err, errlen);
        fresh = rc == 1;
        if (rc == 1) rc = 0;
        if (rc == 0) rc = write_run_dir(s, spec_text, err, errlen);
    }
    int64_t start = 0;
    comm_buckets cb = {0};
    shard_reader *rd = NULL;
    jepa_masks mkg = {0}, mk = {0};
    float *batch = NULL;
    uint8_t *pix8 = NULL, *lab8 = NULL;
    if (agree(rc, res, err, errlen)) goto out_model;
    /* one source of truth for the weights (rank 0's init or checkpoint),
     * then prove it */
    comm_bcast_bytes(&fresh, sizeof fresh, 0);
    if (fresh) {
        comm_bcast_floats(m.params, m.nparams, 0);
        memcpy(m.target, m.params, sizeof(float) * m.nenc);
    } else {
        comm_bcast_bytes(&got, sizeof got, 0);
        comm_bcast_floats(m.params, m.nparams, 0);
        comm_bcast_floats(m.target, m.nenc, 0);
        comm_bcast_floats(m.adam_m, m.nparams, 0);
        comm_bcast_floats(m.adam_v, m.nparams, 0);
        start = got.step;
        res->resumed_from = start;
        mean = got.norm_mean;
        std = got.norm_std;
        if (lead)
            fprintf(stderr, "train: resuming from %s (step %lld of %lld)\n", res->ckpt_path,
                    (long long)start, (long long)got.total_steps);
    }
    if (comm_check_replicas(m.params, m.nparams, err, errlen)) {
        if (lead) comm_fatal("%s", err);
        comm_wait_idle();
    }
    if (comm_buckets_init(&cb, m.grads, m.nparams, (size_t)(s->parallel.bucket_mb * 1048576.0),
                          s->parallel.blocking_allreduce))
        comm_fatal("parallel.bucket_mb %g is too small", s->parallel.bucket_mb);
    m.grad_ready = grads_ready;
    m.grad_ready_ctx = &cb;
    /* masks are drawn for the global batch on every rank and sliced, so a
     * world size sees the same masks as one process with the global batch */
    mask_alloc(&mkg, Bg, G, mc.npred, max_ntgt);
    mask_alloc(&mk, B, G, mc.npred, max_ntgt);
    size_t npix = (size_t)B * dims.ch * dims.img * dims.img;
    batch = JEPA_MALLOC(sizeof(float) * npix);
    pix8 = JEPA_MALLOC(npix);
    lab8 = JEPA_MALLOC((size_t)B);
    /* this rank's stream of batches: disjoint across ranks, shuffled by
     * (seed, epoch), decoded ahead in the reader's thread; a resume picks it
     * up at the checkpoint's position */
    rc = shard_reader_init_at(&rd, s->data.train, rank, world, (uint64_t)s->seed, B,
                              s->data.shuffle_buffer, s->data.prefetch, fresh ? NULL : &got.reader,
                              err, errlen);
    if (agree(rc, res, err, errlen)) goto out_model;
    loss_kind lk = strcmp(s->loss.type, "l2") ? LOSS_SMOOTH_L1 : LOSS_L2;
    float beta = (float)s->loss.beta;

    /* a time budget becomes a fixed step count, measured on the real step
     * (all-reduce included); rank 0's count is everyone's. A resume keeps
     * the count its checkpoint was written under. */
    int64_t total = fresh ? s->train.steps : got.total_steps;
    double budget = s->train.minutes * 60.0;
    if (total <= 0 && s->train.epochs > 0) /* every rank has the same batches per epoch */
        total = (int64_t)ceil(s->train.epochs * (double)shard_reader_batches_per_epoch(rd));
    if (total <= 0) {
        jepa_rng r;
        fill_batch(batch, data.pixels + (size_t)rank * npix, npix, mean, std);
        rng_init(&r, rng_key((uint64_t)s->seed, 0xca1b, 0));
        double t0 = 0;
        int reps = 3;
        for (int i = 0; i <= reps; i++) { /* the first one warms caches and pages */
            if (i == 1) t0 = now_s();
            mask_sample(&mkg, &mc, G, Bg, &r);
            mask_slice(&mk, &mkg, rank * B, B);
            jepa_forward_backward(&m, batch, &mk, lk, beta, NULL);
            comm_buckets_finish(&cb);
            adamw_update(&m, 0.0, 0.0, s->optim.beta1, s->optim.beta2, s->optim.eps, 1);
        }
        double per = (now_s() - t0) / reps;
        memset(m.adam_m, 0, sizeof(float) * m.nparams); /* lr 0 above: undo the moments */
        memset(m.adam_v, 0, sizeof(float) * m.nparams);
        total = (int64_t)((budget - (now_s() - t_start)) / (per * 1.03));
        if (total < 1) total = 1;
        comm_bcast_bytes(&total, sizeof total, 0);
        if (lead)
            fprintf(stderr, "train: %.1f min budget, %.3f s/step measured -> %lld steps\n",
                    s->train.minutes, per, (long long)total);
    }

    char path[SPEC_STR_MAX + 32];
    FILE *mf = NULL;
    if (lead) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", s->run_dir);
        mf = fresh ? fopen(path, "w") : metrics_open_at(path, start, err, errlen);
        if (!mf && fresh) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (!mf) comm_fatal("%s", err);
    }
    sched_cfg sc = {s->optim.lr, s->optim.min_lr, s->optim.warmup_frac, s->optim.wd_start,
                    s->optim.wd_end, s->ema.start, s->ema.end};
    int tty = lead && isatty(2);
    /* the state a checkpoint carries, restored: the open log interval, the
     * seconds trained so far (budget cap and elapsed_s continue) */
    double t0 = now_s() - got.train_s, loss_acc = got.log_loss_sum;
    double last_std = got.last_target_std, comm_wait0 = 0.0;
    int64_t loss_n = got.log_count, step = start, seen = got.images_seen, seen_log = seen;
    int64_t saved = fresh ? -1 : start; /* step of the last checkpoint on disk */
    res->final_loss = got.last_loss;
    ckpt_meta cm = want;
    cm.total_steps = total;
    cm.norm_mean = mean;
    cm.norm_std = std;
    const int64_t stop_at = env_step("JEPA_DEBUG_STOP_STEP"), nan_at = env_step("JEPA_DEBUG_NAN_STEP");
    const char *nan_kind = getenv("JEPA_DEBUG_NAN_KIND");
    const int nan_loss = nan_kind && !strcmp(nan_kind, "loss");
    int stop = 0;
    double t_log = now_s(), t_ckpt = t_log;
    for (step = start; step < total; step++) {
        if (shard_reader_next(rd, pix8, lab8, err, errlen)) comm_fatal("%s", err);
        fill_batch(batch, pix8, npix, mean, std);
        jepa_rng r;
        rng_init(&r, rng_key((uint64_t)s->seed, 0x3a5c, (uint64_t)step));
        mask_sample(world > 1 ? &mkg : &mk, &mc, G, Bg, &r);
        if (world > 1) mask_slice(&mk, &mkg, rank * B, B);
        jepa_stats st;
        jepa_forward_backward(&m, batch, &mk, lk, beta, &st);
        if (step + 1 == nan_at && nan_loss && rank == world - 1) st.loss = NAN; /* test hook */
        comm_buckets_finish(&cb);
        if (step + 1 == nan_at && !nan_loss) m.grads[m.nparams / 2] = NAN;   /* test hook */
        /* the global loss decides for everyone: no rank stops alone; the
         * gradients are the all-reduced ones, equal on every rank */
        double loss = comm_mean_double(st.loss), tstd = comm_mean_double(st.target_std);
        size_t nbad = 0;
        double gsq = grads_sq_norm(m.grads, m.nparams, &nbad);
        if (!isfinite(loss) || !isfinite(gsq)) {
            char what[96];
            if (!isfinite(loss)) snprintf(what, sizeof what, "loss (%g)", loss);
            else snprintf(what, sizeof what, "gradient (%zu of %zu values)", nbad, m.nparams);
            snprintf(err, errlen,
                     "step %lld: non-finite %s: training stopped; no checkpoint of this state "
                     "is written%s%s",
                     (long long)step + 1, what, saved >= 0 ? ", the last good one is " : "",
                     saved >= 0 ? res->ckpt_path : "");
            res->nonfinite = 1;
            rc = -1;
            break;
        }
        sched_values sv;
        sched_at(&sc, step, total, &sv);
        adamw_update(&m, sv.lr, sv.wd, s->optim.beta1, s->optim.beta2, s->optim.eps, step + 1);
        ema_update(m.target, m.params, m.nenc, (float)sv.ema);
        seen += Bg;
        loss_acc += loss;
        loss_n++;
        last_std = tstd;
        /* rank 0's clock rules the budget and timed checkpoints; a signal
         * on any rank stops every rank after the same step */
        unsigned char flags = 0; /* 1: budget spent, 2: a timed checkpoint is due */
        if (budget > 0 && now_s() - t0 > budget) flags |= 1;
        if (s->checkpoint.every_minutes > 0 && now_s() - t_ckpt >= s->checkpoint.every_minutes * 60)
            flags |= 2;
        if (budget > 0 || s->checkpoint.every_minutes > 0) comm_bcast_bytes(&flags, 1, 0);
        int sig = train_signal != 0 || (step + 1 == stop_at && rank == world - 1);
        stop = comm_any_error(sig) >= 0;
        int last = step + 1 == total || (flags & 1);
        if (last) stop = 0; /* the run is complete: nothing left to resume */
        if (s->parallel.check_every > 0 && (step + 1) % s->parallel.check_every == 0 &&
            comm_check_replicas(m.params, m.nparams, err, errlen)) {
            if (lead) comm_fatal("step %lld: %s", (long long)(step + 1), err);
            comm_wait_idle();
        }
        /* a probe during training (eval.every_steps, a multiple of log_every,
         * so it lands on a logged line); rank 0 probes while the others
         * wait, and its time counts neither as training time nor budget */
        double pacc = -1.0;
        if (s->eval.every_steps > 0 && (step + 1) % s->eval.every_steps == 0 && !last && !stop) {
            double tp = now_s();
            if (lead) {
                probe_result pr;
                if (train_probe(&m, s, mean, std, &pr, err, errlen))
                    comm_fatal("step %lld: probe: %s", (long long)(step + 1), err);
                pacc = pr.test_acc;
            }
            comm_wait_idle();
            tp = now_s() - tp;
            t0 += tp;
            t_log += tp;
        }
        if (lead && ((step + 1) % s->train.log_every == 0 || last || stop || step == 0)) {
            double t = now_s(), ips = (seen - seen_log) / (t - t_log > 0 ? t - t_log : 1e-9);
            comm_stats cs;
            comm_buckets_stats(&cb, &cs);
            /* a stop mid-interval logs nothing early: the checkpoint carries
             * the open interval and the resumed run logs it where a straight
             * run would */
            if ((step + 1) % s->train.log_every == 0 || last || step == 0) {
                fprintf(mf,
                        "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"wd\": %.6g, \"ema\": %.6f, "
                        "\"target_std\": %.5f, \"grad_norm\": %.4g, \"img_per_s\": %.1f, "
                        "\"comm_wait_s\": %.3f, \"elapsed_s\": %.2f",
                        (long long)(step + 1), loss_acc / loss_n, sv.lr, sv.wd, sv.ema, tstd,
                        sqrt(gsq), ips,
                        cs.wait_s - comm_wait0, t - t0);
                if (pacc >= 0) fprintf(mf, ", \"probe_acc\": %.4f", pacc);
                fputs("}\n", mf);
                comm_wait0 = cs.wait_s;
                fflush(mf);
                res->final_loss = loss_acc / loss_n;
                loss_acc = 0.0;
                loss_n = 0;
                seen_log = seen;
                t_log = t;
            }
            if (tty) {
                double eta = (t - t0) / (step + 1) * (total - step - 1);
                fprintf(stderr, "\rstep %lld/%lld  loss %.4f  std %.3f  %.0f img/s  ETA %02d:%02d  ",
                        (long long)(step + 1), (long long)total, res->final_loss, tstd, ips,
                        (int)eta / 60, (int)eta % 60);
            }
        }
        if (last || stop) {
            step++;
            break;
        }
        if ((s->checkpoint.every_steps > 0 && (step + 1) % s->checkpoint.every_steps == 0) ||
            (flags & 2)) {
            cm.step = step + 1;
            cm.images_seen = seen;
            cm.log_loss_sum = loss_acc;
            cm.log_count = loss_n;
            cm.last_loss = res->final_loss;
            cm.last_target_std = last_std;
            cm.train_s = now_s() - t0;
            save_checkpoint(s, &m, &cm, rd, res->ckpt_path, sizeof res->ckpt_path);
            saved = step + 1;
            t_ckpt = now_s();
        }
    }
    if (tty) fputc('\n', stderr);
    if (mf) fclose(mf);
    res->steps = step;
    res->images_seen = seen;
    res->target_std = last_std;
    double train_s = now_s() - t0;
    /* the end of the run, or of this part of it: one checkpoint of it (none
     * of a state that went non-finite) */
    if (rc == 0 && step > saved) {
        cm.step = step;
        cm.images_seen = seen;
        cm.log_loss_sum = loss_acc;
        cm.log_count = loss_n;
        cm.last_loss = res->final_loss;
        cm.last_target_std = last_std;
        cm.train_s = train_s;
        save_checkpoint(s, &m, &cm, rd, res->ckpt_path, sizeof res->ckpt_path);
        saved = step;
    }
    if (rc == 0 && stop) {
        res->interrupted = train_signal ? (int)train_signal : SIGUSR1;
        if (lead) slurm_requeue();
        goto out_wait;
    }
    if (rc == 0 && comm_check_replicas(m.params, m.nparams, err, errlen)) {
        if (lead) comm_fatal("end of training: %s", err);
        comm_wait_idle();
    }
    if (lead && rc == 0) {
        comm_stats cs;
        comm_buckets_stats(&cb, &cs);
        fprintf(stderr,
                "train: %lld steps, %lld images in %.1fs (%.1f img/s, %d rank%s), loss %.4f, "
                "std %.4f, all-reduce wait %.1fs\n",
                (long long)step, (long long)seen, train_s, seen / (train_s > 0 ? train_s : 1),
                world, world > 1 ? "s" : "", res->final_loss, last_std, cs.wait_s);
    }
    /* rank 0 writes and probes alone; the others wait without spinning */
    if (lead && rc == 0) {
        cm.step = step;
        rc = ckpt_dir_publish(s->run_dir, res->ckpt_path, &m, &cm, err, errlen);
    }
    if (lead && rc == 0 && s->eval.probe) {
        probe_result pr;
        rc = train_probe(&m, s, mean, std, &pr, err, errlen);
        if (rc == 0) res->probe_acc = pr.test_acc;
    }
    res->wall_s = now_s() - t_start;
    if (lead && rc == 0) {
        comm_stats cs;
        comm_buckets_stats(&cb, &cs);
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "{\n  \"final_loss\": %.6f,\n  \"probe_acc\": %.4f,\n  \"images_seen\": %lld,\n"
                 "  \"wall_s\": %.1f,\n  \"train_s\": %.1f,\n  \"steps\": %lld,\n"
                 "  \"ranks\": %d,\n  \"comm_wait_s\": %.3f,\n  \"target_std\": %.5f,\n"
                 "  \"resumed_from\": %lld,\n  \"param_hash\": \"%016llx\"\n}\n",
                 res->final_loss, res->probe_acc, (long long)seen, res->wall_s, train_s,
                 (long long)step, world, cs.wait_s, last_std, (long long)res->resumed_from,
                 (unsigned long long)jepa_hash_floats(m.params, m.nparams));
        rc = write_text(s->run_dir, "summary.json", buf, err, errlen);
    }
out_wait:
    comm_wait_idle();
out_model:
    shard_reader_free(rd);
    comm_buckets_free(&cb);
    jepa_free(batch);
    jepa_free(pix8);
    jepa_free(lab8);
    mask_free(&mkg);
    mask_free(&mk);
    jepa_model_free(&m);
out_data:
    images_free(&data);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    return rc;
}
