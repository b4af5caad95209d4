/* eval_images.c - how an image encoder is measured: its features of the
 * training and test sets (each rank a slice, gathered to rank 0), then the
 * linear probe on rank 0 and the kNN classifier and the 1%/10%-label probes
 * on rank 1 when there is one (evaluate.c, eval_features_ranks), all
 * fitted on training features only; the test split is only ever scored.
 * Every objective with an image encoder (I-JEPA, LeJEPA)
 * is measured by this one function, so their figures compare. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "evaluate.h"
#include "infer.h"
#include "objective.h"
#include "shard.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

/* Images read at a time: 64, so that a 256-record shard frame is decoded 4
 * times, not 16; enc_infer encodes them INFER_CHUNK_IMAGES at a time */
#define EXTRACT_CHUNK 64

typedef struct {
    shard_dataset *ds;
    int lo;       /* first row of this rank's slice (eval_extract's split) */
    uint8_t *px;  /* (EXTRACT_CHUNK, ch, img, img) the chunk read */
    uint8_t *lab; /* (rows of the slice) this rank's labels, gathered after */
    enc_infer net;
    float mean, std;
    int tty, done, slice; /* progress on a terminal: rank 0's rows encoded of its slice */
    double shown;         /* when the progress line was last written */
    const char *dir;
} feat_ctx;

/* eval_extract's callback: features of images [i0, i0 + cnt), read from
 * the dataset as they are encoded (no rank holds a whole set). */
static void feat_rows(void *vc, int i0, int cnt, float *out) {
    feat_ctx *c = vc;
    char err[SHARD_ERR_MAX];
    if (shard_dataset_read_range(c->ds, (uint64_t)i0, (uint64_t)cnt, c->px, c->lab + (i0 - c->lo),
                                 err, sizeof err))
        comm_fatal("%s", err);
    enc_infer_features(&c->net, c->px, cnt, c->mean, c->std, out);
    c->done += cnt;
    if (c->tty && (now_s() - c->shown > 1.0 || c->done == c->slice)) { /* as training's progress line */
        fprintf(stderr, "\reval: features of %s: %d of %d images (rank 0's slice)  ", c->dir, c->done, c->slice);
        c->shown = now_s();
    }
}

/* the labels feat_rows kept, as floats (exact below 2^24) for the gather */
static void label_rows(void *vc, int i0, int cnt, float *out) {
    feat_ctx *c = vc;
    for (int i = 0; i < cnt; i++) out[i] = c->lab[i0 - c->lo + i];
}

/* Opens dir on every rank: u8 images of the encoder's shape with labels,
 * at most 2^30 records (callers check up front, objective_eval_data; this
 * guard turns a missed check into an error, not a crash). Agreed: -1 on
 * every rank when any rank failed. */
static int open_set(const image_encoder *e, const char *dir, shard_dataset **ds, char *err,
                    size_t errlen) {
    int rc = shard_dataset_open(ds, dir, err, errlen);
    if (rc == 0) {
        const shard_schema *sc = shard_dataset_schema(*ds);
        if (sc->nfields || sc->label != SHARD_LABEL_U8 || shard_dataset_records(*ds) > (1u << 30) ||
            (int)sc->channels != e->d->ch || (int)sc->height != e->d->img ||
            (int)sc->width != e->d->img) {
            snprintf(err, errlen, "%s: the probe needs labelled u8 images of %dx%dx%d and at "
                     "most 2^30 records", dir, e->d->ch, e->d->img, e->d->img);
            rc = -1;
        }
    }
    int bad = comm_any_error(rc != 0); /* extraction is collective: all go, or none */
    if (bad >= 0 && rc == 0) snprintf(err, errlen, "rank %d could not open %s", bad, dir);
    if (bad >= 0) {
        shard_dataset_close(*ds);
        *ds = NULL;
        return -1;
    }
    return 0;
}

/* Features (n, dim) and labels (n) of the dataset at dir on rank 0 (NULL
 * elsewhere; set->n everywhere), computed forward only (enc_infer: the same
 * features whatever the thread count and chunk, so jepa-eval reproduces
 * the end of training) by all ranks, each streaming its slice of the
 * records through the shard reader: memory is the features, not the
 * pixels. */
static int extract(const image_encoder *e, int bf16, const char *dir, int dim, jepa_images *set,
                   float **out, char *err, size_t errlen) {
    feat_ctx c = {0};
    memset(set, 0, sizeof *set);
    *out = NULL;
    if (open_set(e, dir, &c.ds, err, errlen)) return -1;
    const int n = (int)shard_dataset_records(c.ds), rank = comm_rank(), world = comm_world();
    const int lo = (int)((int64_t)n * rank / world), hi = (int)((int64_t)n * (rank + 1) / world);
    c.lo = lo;
    c.tty = rank == 0 && cli_progress();
    c.slice = hi - lo;
    c.dir = dir;
    c.px = JEPA_MALLOC(shard_dataset_record_bytes(c.ds) * EXTRACT_CHUNK);
    c.lab = JEPA_MALLOC((size_t)(hi - lo) + 1);
    c.mean = e->mean;
    c.std = e->std;
    enc_infer_init(&c.net, e->d, e->L, e->W, INFER_CHUNK_IMAGES, e->d->img, e->pool_blocks, bf16);
    float *labf = rank == 0 ? JEPA_MALLOC(sizeof(float) * n) : NULL;
    *out = rank == 0 ? JEPA_MALLOC(sizeof(float) * n * dim) : NULL;
    int rc = eval_extract(n, dim, EXTRACT_CHUNK, feat_rows, &c, *out, err, errlen);
    if (c.tty && c.done) fputc('\n', stderr);
    if (rc == 0) rc = eval_extract(n, 1, EXTRACT_CHUNK, label_rows, &c, labf, err, errlen);
    set->n = n;
    if (rc == 0 && rank == 0) {
        set->labels = JEPA_MALLOC((size_t)n);
        for (int i = 0; i < n; i++) set->labels[i] = (uint8_t)labf[i];
    }
    enc_infer_free(&c.net);
    shard_dataset_close(c.ds);
    jepa_free(c.px);
    jepa_free(c.lab);
    jepa_free(labf);
    return rc;
}

static const char *const export_names[4] = {"train_features.npy", "train_labels.npy",
                                            "test_features.npy", "test_labels.npy"};

int eval_export_check(const char *dir, char *err, size_t errlen) {
    char p[4096];
    /* a link that points nowhere, a name over NAME_MAX: refused here, where
     * export_dir_usable's walk up would pass them to fail after extraction */
    if (shard_out_place(dir, SHARD_PLACE_DIR, p, sizeof p, err, errlen) || shard_dir_makeable(dir, err, errlen))
        return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, export_names[i]);
        if (access(p, F_OK) == 0) {
            snprintf(err, errlen, "%s is already there (an export never replaces files: remove them "
                     "or choose another directory)", p);
            return -1;
        }
    }
    return 0;
}

/* The four files into stage; a caught signal stops it (npy_set_stop: within
 * a file too). 0 or -1 + err. */
static int export_files(const char *stage, const float *ftr, const jepa_images *tr, const float *fte,
                        const jepa_images *te, int dim, char *err, size_t errlen) {
    char p[4200];
    int rc = 0;
    npy_set_stop(shard_interrupt_pending);
    for (int i = 0; i < 4 && rc == 0 && !shard_interrupt_pending(); i++) {
        snprintf(p, sizeof p, "%s/%s", stage, export_names[i]);
        const jepa_images *set = i < 2 ? tr : te;
        rc = i % 2 ? npy_write_u8(p, set->labels, set->n, err, errlen)
                   : npy_write_f32(p, i < 2 ? ftr : fte, set->n, dim, err, errlen);
    }
    return rc || shard_interrupt_pending() ? -1 : 0; /* the last check before they move in */
}

/* DIR/{train,test}_{features,labels}.npy: rank 0's features and labels,
 * written into DIR/.export-PID (DIR made as mkdir -p) and moved in once all
 * four are whole. Failed or stopped by a caught signal, the stage and the
 * directories made here are removed: DIR is as it was. */
static int export_npy(const char *dir, const float *ftr, const jepa_images *tr, const float *fte,
                      const jepa_images *te, int dim, char *err, size_t errlen) {
    char stage[4096], p[4200], q[4200], why[512];
    size_t made = 0;
    if (eval_export_check(dir, err, errlen)) return -1;
    if (shard_make_dirs_noting(dir, &made, why, sizeof why)) {
        snprintf(err, errlen, "--export %s: %s", dir, why);
        return -1;
    }
    snprintf(stage, sizeof stage, "%s/.export-%d", dir, (int)getpid());
    int rc = mkdir(stage, 0755);
    if (rc) snprintf(err, errlen, "--export %s: cannot create %s: %s", dir, stage, strerror(errno));
    if (rc == 0) rc = export_files(stage, ftr, tr, fte, te, dim, err, errlen);
    for (int i = 0; i < 4 && rc == 0; i++) {
        snprintf(p, sizeof p, "%s/%s", stage, export_names[i]);
        snprintf(q, sizeof q, "%s/%s", dir, export_names[i]);
        if (rename(p, q) != 0) {
            snprintf(err, errlen, "--export: cannot move %s to %s: %s", p, q, strerror(errno));
            rc = -1;
        }
    }
    for (int i = 0; i < 4; i++) { /* what is left of the stage */
        snprintf(p, sizeof p, "%s/%s", stage, export_names[i]);
        unlink(p);
    }
    rmdir(stage);
    if (rc && shard_interrupt_pending())
        snprintf(err, errlen, "--export %s: interrupted by %s: nothing written", dir,
                 shard_interrupt_name(shard_interrupt_pending()));
    if (rc) shard_unmake_dirs(dir, made);
    else /* stderr, as the other eval: lines: stdout's figures stay last */
        fprintf(stderr, "eval: exported train/test features and labels (%d x %d, %d x %d) to "
                "%s%s{train,test}_{features,labels}.npy\n", tr->n, dim, te->n, dim, dir,
                dir[strlen(dir) - 1] == '/' ? "" : "/");
    return rc;
}

/* Collective (every rank, where --export is given): rank 0 writes the
 * export (rc: its state so far; nonzero, nothing to write) while every rank
 * holds SIGINT/SIGTERM/SIGHUP (shard_interrupt_catch). Why all: mpirun
 * turns a SIGINT into SIGTERM to each rank, and kills the others at once
 * when one dies, so a rank that died of it would end rank 0 before it had
 * removed its stage. Written, the signals are released (a caught one then
 * ends the process: the export is whole). Not written, they stay caught so
 * the caller first says why in one line, then calls
 * shard_interrupt_release(0). rank 0's 0 or -1 + err; the others 0. */
static int export_all(const char *dir, int rc, const float *ftr, const jepa_images *tr,
                      const float *fte, const jepa_images *te, int dim, char *err, size_t errlen) {
    shard_interrupt_catch();
    comm_barrier(); /* every rank holds the signals before anything is made */
    if (comm_rank() == 0 && rc == 0) rc = export_npy(dir, ftr, tr, fte, te, dim, err, errlen);
    if (comm_any_error(rc != 0) < 0) shard_interrupt_release(0);
    return rc;
}

/* The class count the probes take: the largest label of either set + 1
 * (at least 2), decided on rank 0, which holds the labels (tr/te NULL
 * labels: none), and broadcast. Collective. A pack of up to 256 classes
 * (jepa-shard's u8 labels) is any data set's, not only Fashion-MNIST's 10. */
static int class_count(const jepa_images *tr, const jepa_images *te) {
    int top = 0;
    for (int i = 0; tr->labels && i < tr->n; i++) top = tr->labels[i] > top ? tr->labels[i] : top;
    for (int i = 0; te->labels && i < te->n; i++) top = te->labels[i] > top ? te->labels[i] : top;
    int nclass = top + 1 < 2 ? 2 : top + 1;
    comm_bcast_bytes(&nclass, sizeof nclass, 0);
    return nclass;
}

/* Collective: the figures of the spec's eval keys into rank 0's out,
 * probe_acc last, the work split over two ranks (eval_features_ranks).
 * failed (rank 0): no features; rank 0 returns -1 with err as it was. The
 * features and labels are read on rank 0 only; the other ranks return 0. */
static int score(const jepa_spec *s, int failed, const float *ftr, const jepa_images *tr,
                 const float *fte, const jepa_images *te, int dim, obj_eval *out, char *err,
                 size_t errlen) {
    eval_opts o;
    eval_opts_default(&o);
    o.metrics = EVAL_PROBE | (s->eval.knn_k > 0 ? EVAL_KNN : 0) |
                (s->eval.fewlabel ? EVAL_PROBE_1PCT | EVAL_PROBE_10PCT : 0);
    o.knn_k = s->eval.knn_k > 0 ? s->eval.knn_k : o.knn_k;
    o.knn_temp = s->eval.knn_temp;
    o.val_frac = s->eval.val_frac;
    o.max_iters = s->eval.max_iters;
    o.grid = (probe_grid){s->eval.wd_min, s->eval.wd_zero};
    o.seed = (uint64_t)s->seed;
    eval_report r;
    const int nclass = class_count(tr, te);
    if (eval_features_ranks(failed, ftr, tr->labels, tr->n, fte, te->labels, te->n, dim, nclass, &o,
                            &r, err, errlen))
        return -1;
    if (comm_rank() != 0) return 0;
    eval_report_log(stderr, &r);
    obj_eval_add(out, "probe_fit_s", r.probe_s); /* seconds: the full probe's fit and scoring */
    if (r.metrics & EVAL_KNN) obj_eval_add(out, "knn_acc", r.knn_acc);
    if (r.metrics & EVAL_PROBE_1PCT) {
        obj_eval_add(out, "probe1pct_acc", r.probe1pct_acc);
        obj_eval_add(out, "probe1pct_wd", r.probe1pct.best_wd); /* chosen on its validation rows */
    }
    if (r.metrics & EVAL_PROBE_10PCT) {
        obj_eval_add(out, "probe10pct_acc", r.probe10pct_acc);
        obj_eval_add(out, "probe10pct_wd", r.probe10pct.best_wd);
    }
    obj_eval_add(out, "probe_wd", r.probe.best_wd); /* the grid's value the refit used */
    /* 0: the chosen fit or its refit stopped at eval.max_iters (probe_result.capped) */
    obj_eval_add(out, "probe_converged", r.probe.capped ? 0.0 : 1.0);
    obj_eval_add(out, "probe_acc", r.probe_acc);
    return 0;
}

/* Both sets loaded, labelled (callers check up front, objective_eval_data:
 * this guard only turns a missed check into an error, not a crash). */
static int load_labelled(const jepa_spec *s, jepa_images *tr, jepa_images *te, char *err,
                         size_t errlen) {
    int rc = images_load_shards(tr, s->data.train, err, errlen);
    if (rc == 0) rc = images_load_shards(te, s->data.test, err, errlen);
    if (rc == 0 && (!tr->labels || !te->labels)) {
        snprintf(err, errlen, "%s has no class labels: the probe needs them",
                 tr->labels ? s->data.test : s->data.train);
        rc = -1;
    }
    return rc;
}

int eval_images(const jepa_spec *s, const image_encoder *e, const char *which, obj_eval *out,
                char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    jepa_images tr = {0}, te = {0}; /* labels only (rank 0): the pixels stream */
    const int dim = e->d->D * e->pool_blocks;
    float *ftr = NULL, *fte = NULL;
    double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    /* objective_eval_data refused bf16 where infer_bf16_supported says no */
    const int bf16 = !strcmp(s->eval.precision, "bf16");
    int rc = extract(e, bf16, s->data.train, dim, &tr, &ftr, err, errlen);
    if (rc == 0) rc = extract(e, bf16, s->data.test, dim, &te, &fte, err, errlen);
    double t1 = now_s(), c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    const int extracted = rc == 0; /* alike on every rank: eval_extract fails them together */
    if (extracted && comm_rank() == 0) {
        /* CPU seconds too: on a shared machine the wall clock also counts the queue */
        fprintf(stderr, "eval: %s encoder features (%d x %d + %d x %d%s) %.1fs on %d rank%s "
                "(rank 0: %.1f CPU s)\n", which, tr.n, dim, te.n, dim, bf16 ? ", bf16 products" : "",
                t1 - t0, comm_world(), comm_world() > 1 ? "s" : "", c1 - c0);
        obj_eval_add(out, "extract_s", t1 - t0); /* seconds: features of both sets, all ranks */
    }
    if (extracted && e->export_dir) rc = export_all(e->export_dir, rc, ftr, &tr, fte, &te, dim, err, errlen);
    if (extracted) rc = score(s, rc != 0, ftr, &tr, fte, &te, dim, out, err, errlen);
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}

int eval_pixels(const jepa_spec *s, const char *export_dir, obj_eval *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof *out);
    jepa_images tr = {0}, te = {0};
    if (comm_rank() != 0) { /* rank 1 scores part of rank 0's pixels; the others nothing */
        if (export_dir) export_all(export_dir, 0, NULL, &tr, NULL, &te, 0, err, errlen);
        return score(s, 0, NULL, &tr, NULL, &te, 0, out, err, errlen);
    }
    int rc = load_labelled(s, &tr, &te, err, errlen);
    const int dim = tr.c * tr.h * tr.w;
    if (rc == 0 && (te.c != tr.c || te.h != tr.h || te.w != tr.w)) {
        snprintf(err, errlen, "%s: images are %dx%dx%d, the training set's %dx%dx%d",
                 s->data.test, te.c, te.h, te.w, tr.c, tr.h, tr.w);
        rc = -1;
    }
    float *ftr = NULL, *fte = NULL;
    if (rc == 0) { /* raw pixels in [0, 1]: the probe standardises them itself */
        ftr = JEPA_MALLOC(sizeof(float) * tr.n * dim);
        fte = JEPA_MALLOC(sizeof(float) * te.n * dim);
        for (size_t k = 0; k < (size_t)tr.n * dim; k++) ftr[k] = tr.pixels[k] / 255.0f;
        for (size_t k = 0; k < (size_t)te.n * dim; k++) fte[k] = te.pixels[k] / 255.0f;
    }
    if (export_dir) rc = export_all(export_dir, rc, ftr, &tr, fte, &te, dim, err, errlen);
    rc = score(s, rc != 0, ftr, &tr, fte, &te, dim, out, err, errlen);
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}
