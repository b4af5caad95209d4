/* train.c - the training loop: data order, masks, step, schedules, AdamW,
 * EMA, metrics, progress, checkpoint and the closing linear probe.
 *
 * Reproducibility: the batch order is a function of (seed, epoch) (the shard
 * reader's), the masks of (seed, step); a time budget (train.minutes) is turned into a step count
 * once, up front, by timing the step, so the schedules are step-based and the
 * run is replayable from its resolved spec and logged step count. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int train_run(const jepa_spec *s, const char *spec_text, train_result *res, char *err,
              size_t errlen) {
    double t_start = now_s();
    memset(res, 0, sizeof *res);
    res->probe_acc = -1.0;
    const int rank = comm_rank(), world = comm_world(), lead = rank == 0;
    jepa_dims dims;
    if (jepa_dims_from_spec(&dims, s, err, errlen)) return -1;

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
    rc = lead ? write_run_dir(s, spec_text, err, errlen) : 0;
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
    /* one source of truth for the initial weights, then prove it */
    comm_bcast_floats(m.params, m.nparams, 0);
    memcpy(m.target, m.params, sizeof(float) * m.nenc);
    if (comm_check_replicas(m.params, m.nparams, err, errlen)) {
        if (lead) comm_fatal("%s", err);
        comm_wait_idle();
    }
    comm_buckets cb;
    if (comm_buckets_init(&cb, m.grads, m.nparams, (size_t)(s->parallel.bucket_mb * 1048576.0),
                          s->parallel.blocking_allreduce))
        comm_fatal("parallel.bucket_mb %g is too small", s->parallel.bucket_mb);
    m.grad_ready = grads_ready;
    m.grad_ready_ctx = &cb;
    /* masks are drawn for the global batch on every rank and sliced, so a
     * world size sees the same masks as one process with the global batch */
    jepa_masks mkg, mk;
    mask_alloc(&mkg, Bg, G, mc.npred, max_ntgt);
    mask_alloc(&mk, B, G, mc.npred, max_ntgt);
    size_t npix = (size_t)B * dims.ch * dims.img * dims.img;
    float *batch = JEPA_MALLOC(sizeof(float) * npix);
    uint8_t *pix8 = JEPA_MALLOC(npix), *lab8 = JEPA_MALLOC((size_t)B);
    /* this rank's stream of batches: disjoint across ranks, shuffled by
     * (seed, epoch), decoded ahead in the reader's thread */
    shard_reader *rd = NULL;
    rc = shard_reader_init(&rd, s->data.train, rank, world, (uint64_t)s->seed, B,
                           s->data.shuffle_buffer, s->data.prefetch, err, errlen);
    if (agree(rc, res, err, errlen)) goto out_model;
    loss_kind lk = strcmp(s->loss.type, "l2") ? LOSS_SMOOTH_L1 : LOSS_L2;
    float beta = (float)s->loss.beta;

    /* a time budget becomes a fixed step count, measured on the real step
     * (all-reduce included); rank 0's count is everyone's */
    int64_t total = s->train.steps;
    double budget = s->train.minutes * 60.0;
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
        mf = fopen(path, "w");
        if (!mf) comm_fatal("cannot write %s: %s", path, strerror(errno));
    }
    sched_cfg sc = {s->optim.lr, s->optim.min_lr, s->optim.warmup_frac, s->optim.wd_start,
                    s->optim.wd_end, s->ema.start, s->ema.end};
    int tty = lead && isatty(2);
    double t0 = now_s(), loss_acc = 0.0, last_std = 0.0, comm_wait0 = 0.0;
    int loss_n = 0;
    int64_t step = 0, seen = 0, seen_log = 0;
    double t_log = t0;
    for (step = 0; step < total; step++) {
        if (shard_reader_next(rd, pix8, lab8, err, errlen)) comm_fatal("%s", err);
        fill_batch(batch, pix8, npix, mean, std);
        jepa_rng r;
        rng_init(&r, rng_key((uint64_t)s->seed, 0x3a5c, (uint64_t)step));
        mask_sample(world > 1 ? &mkg : &mk, &mc, G, Bg, &r);
        if (world > 1) mask_slice(&mk, &mkg, rank * B, B);
        jepa_stats st;
        jepa_forward_backward(&m, batch, &mk, lk, beta, &st);
        comm_buckets_finish(&cb);
        /* the global loss decides for everyone: no rank stops alone */
        double loss = comm_mean_double(st.loss), tstd = comm_mean_double(st.target_std);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "non-finite loss %g at step %lld: stopping, no checkpoint written",
                     loss, (long long)step);
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
        unsigned char last = step + 1 == total || (budget > 0 && now_s() - t0 > budget);
        if (budget > 0) comm_bcast_bytes(&last, 1, 0); /* rank 0's clock rules */
        if (s->parallel.check_every > 0 && (step + 1) % s->parallel.check_every == 0 &&
            comm_check_replicas(m.params, m.nparams, err, errlen)) {
            if (lead) comm_fatal("step %lld: %s", (long long)(step + 1), err);
            comm_wait_idle();
        }
        if (lead && ((step + 1) % s->train.log_every == 0 || last || step == 0)) {
            double t = now_s(), ips = (seen - seen_log) / (t - t_log > 0 ? t - t_log : 1e-9);
            comm_stats cs;
            comm_buckets_stats(&cb, &cs);
            fprintf(mf,
                    "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"wd\": %.6g, \"ema\": %.6f, "
                    "\"target_std\": %.5f, \"img_per_s\": %.1f, \"comm_wait_s\": %.3f, "
                    "\"elapsed_s\": %.2f}\n",
                    (long long)(step + 1), loss_acc / loss_n, sv.lr, sv.wd, sv.ema, tstd, ips,
                    cs.wait_s - comm_wait0, t - t0);
            comm_wait0 = cs.wait_s;
            fflush(mf);
            if (tty) {
                double eta = (t - t0) / (step + 1) * (total - step - 1);
                fprintf(stderr, "\rstep %lld/%lld  loss %.4f  std %.3f  %.0f img/s  ETA %02d:%02d  ",
                        (long long)(step + 1), (long long)total, loss_acc / loss_n, tstd, ips,
                        (int)eta / 60, (int)eta % 60);
            }
            res->final_loss = loss_acc / loss_n;
            loss_acc = 0.0;
            loss_n = 0;
            seen_log = seen;
            t_log = t;
        }
        if (last) {
            step++;
            break;
        }
    }
    if (tty) fputc('\n', stderr);
    if (mf) fclose(mf);
    res->steps = step;
    res->images_seen = seen;
    res->target_std = last_std;
    double train_s = now_s() - t0;
    if (rc == 0 && comm_check_replicas(m.params, m.nparams, err, errlen)) {
        if (lead) comm_fatal("end of training: %s", err);
        comm_wait_idle();
    }
    if (lead) {
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
        ckpt_meta meta = {step, total, spec_model_hash(s), (uint64_t)s->seed, seen, mean, std};
        snprintf(path, sizeof path, "%s/checkpoint.bin", s->run_dir);
        rc = ckpt_save(path, &m, &meta, err, errlen);
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
                 "  \"param_hash\": \"%016llx\"\n}\n",
                 res->final_loss, res->probe_acc, (long long)seen, res->wall_s, train_s,
                 (long long)step, world, cs.wait_s, last_std,
                 (unsigned long long)jepa_hash_floats(m.params, m.nparams));
        rc = write_text(s->run_dir, "summary.json", buf, err, errlen);
    }
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
    return rc;
}
