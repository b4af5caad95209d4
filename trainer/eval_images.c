/* eval_images.c - how an image encoder is measured: its features of the
 * training and test sets (each rank a slice, gathered to rank 0), then on
 * rank 0 the linear probe, the kNN classifier and the 1%/10%-label probes
 * (evaluate.c), all fitted on training features only; the test split is
 * only ever scored. Every objective with an image encoder (I-JEPA, LeJEPA)
 * is measured by this one function, so their figures compare. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "comm.h"
#include "evaluate.h"
#include "infer.h"
#include "objective.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const jepa_images *imgs;
    enc_infer net;
    float mean, std;
} feat_ctx;

/* eval_extract's callback: features of images [i0, i0 + cnt) */
static void feat_rows(void *vc, int i0, int cnt, float *out) {
    feat_ctx *c = vc;
    size_t npix = (size_t)c->imgs->c * c->imgs->h * c->imgs->w;
    enc_infer_features(&c->net, c->imgs->pixels + (size_t)i0 * npix, cnt, c->mean, c->std, out);
}

/* Images per forward: features do not depend on it (infer.h); this many
 * keep one layer's activations (~5 MB) in the L2/L3 caches. */
#define EXTRACT_CHUNK 64

/* Features (n, dim) of imgs on rank 0 (NULL elsewhere), computed by all
 * ranks, forward only (enc_infer: the same features whatever the thread
 * count and chunk, so jepa-eval reproduces the end of training). */
static int extract(const image_encoder *e, const jepa_images *imgs, int dim, float **out,
                   char *err, size_t errlen) {
    feat_ctx c = {imgs, {0}, e->mean, e->std};
    enc_infer_init(&c.net, e->d, e->L, e->W, EXTRACT_CHUNK, e->d->img, e->pool_blocks);
    *out = comm_rank() == 0 ? JEPA_MALLOC(sizeof(float) * imgs->n * dim) : NULL;
    int rc = eval_extract(imgs->n, dim, EXTRACT_CHUNK, feat_rows, &c, *out, err, errlen);
    enc_infer_free(&c.net);
    return rc;
}

/* DIR/{train,test}_{features,labels}.npy: rank 0's features and labels. */
static int export_npy(const char *dir, const float *ftr, const jepa_images *tr, const float *fte,
                      const jepa_images *te, int dim, char *err, size_t errlen) {
    char p[4096];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--export %s: cannot create the directory: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(p, sizeof p, "%s/train_features.npy", dir);
    if (npy_write_f32(p, ftr, tr->n, dim, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/train_labels.npy", dir);
    if (npy_write_u8(p, tr->labels, tr->n, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/test_features.npy", dir);
    if (npy_write_f32(p, fte, te->n, dim, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/test_labels.npy", dir);
    return npy_write_u8(p, te->labels, te->n, err, errlen);
}

/* Rank 0: the figures of the spec's eval keys, probe_acc last. */
static int score(const jepa_spec *s, const float *ftr, const jepa_images *tr, const float *fte,
                 const jepa_images *te, int dim, obj_eval *out, char *err, size_t errlen) {
    eval_opts o;
    eval_opts_default(&o);
    o.metrics = EVAL_PROBE | (s->eval.knn_k > 0 ? EVAL_KNN : 0) |
                (s->eval.fewlabel ? EVAL_PROBE_1PCT | EVAL_PROBE_10PCT : 0);
    o.knn_k = s->eval.knn_k > 0 ? s->eval.knn_k : o.knn_k;
    o.knn_temp = s->eval.knn_temp;
    o.val_frac = s->eval.val_frac;
    o.max_iters = s->eval.max_iters;
    o.seed = (uint64_t)s->seed;
    eval_report r;
    if (eval_features(ftr, tr->labels, tr->n, fte, te->labels, te->n, dim, 10, &o, &r, err, errlen))
        return -1;
    eval_report_log(stderr, &r);
    obj_eval_add(out, "probe_fit_s", r.probe_s); /* seconds: the full probe's fit and scoring */
    if (r.metrics & EVAL_KNN) obj_eval_add(out, "knn_acc", r.knn_acc);
    if (r.metrics & EVAL_PROBE_1PCT) obj_eval_add(out, "probe1pct_acc", r.probe1pct_acc);
    if (r.metrics & EVAL_PROBE_10PCT) obj_eval_add(out, "probe10pct_acc", r.probe10pct_acc);
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
    jepa_images tr = {0}, te = {0};
    int rc = load_labelled(s, &tr, &te, err, errlen);
    int bad = comm_any_error(rc != 0); /* extraction is collective: all go, or none */
    if (bad >= 0 && rc == 0) {
        snprintf(err, errlen, "rank %d could not load the evaluation data", bad);
        rc = -1;
    }
    const int dim = e->d->D * e->pool_blocks;
    float *ftr = NULL, *fte = NULL;
    double t0 = now_s();
    if (rc == 0) rc = extract(e, &tr, dim, &ftr, err, errlen);
    if (rc == 0) rc = extract(e, &te, dim, &fte, err, errlen);
    double t1 = now_s();
    if (rc == 0 && comm_rank() == 0) {
        fprintf(stderr, "eval: %s encoder features (%d x %d + %d x %d) %.1fs on %d rank%s\n", which,
                tr.n, dim, te.n, dim, t1 - t0, comm_world(), comm_world() > 1 ? "s" : "");
        obj_eval_add(out, "extract_s", t1 - t0); /* seconds: features of both sets, all ranks */
        if (e->export_dir) rc = export_npy(e->export_dir, ftr, &tr, fte, &te, dim, err, errlen);
        if (rc == 0) rc = score(s, ftr, &tr, fte, &te, dim, out, err, errlen);
    }
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}

int eval_pixels(const jepa_spec *s, const char *export_dir, obj_eval *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof *out);
    if (comm_rank() != 0) return 0;
    jepa_images tr = {0}, te = {0};
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
        if (export_dir) rc = export_npy(export_dir, ftr, &tr, fte, &te, dim, err, errlen);
    }
    if (rc == 0) rc = score(s, ftr, &tr, fte, &te, dim, out, err, errlen);
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}
