/* obj_ijepa.c - the I-JEPA objective (Assran et al. 2023, "Self-Supervised
 * Learning from Images with a Joint-Embedding Predictive Architecture"):
 * multi-block masks drawn from (seed, step) for the global batch and sliced
 * per rank, the context encoder + predictor regress the EMA target encoder's
 * features at the target blocks (model.c), the EMA target follows the
 * schedule after each update. Evaluation: the image-encoder figures
 * (eval_images.c) of the context or target encoder (eval.features). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "comm.h"
#include "data_kind.h"
#include "encoder.h"
#include "infer.h"
#include "objective.h"

typedef struct {
    objective base;
    mask_cfg mc;
    jepa_masks mkg, mk; /* global batch's masks, this rank's slice */
    loss_kind lk;
    float beta;
    float *batch;       /* (B, ch, img, img) normalised pixels */
    size_t npix;        /* floats per batch */
    int which;          /* features: 0 context encoder, 1 EMA target */
    int crop;           /* ijepa.crop: masks on one augmented view per image */
    aug_cfg ag;         /* that view's augmentations (aug.global_scale_*, ...) */
} ijepa_obj;

static const char *const ijepa_stats[] = {"target_std", NULL};
static const char *const ijepa_keys[] = {
    "ema.start", "ema.end", "mask.num_targets", "mask.target_scale_min",
    "mask.target_scale_max", "mask.target_aspect_min", "mask.target_aspect_max",
    "mask.context_scale_min", "mask.context_scale_max", "mask.min_keep", "mask.context_cut",
    "mask.block_round", "mask.pred_pass", "init.pred_in", "loss.type", "loss.beta", "ijepa.crop",
    "aug.global_scale_min", "aug.global_scale_max", "aug.ratio_min", "aug.ratio_max", "aug.flip",
    "aug.brightness", "aug.contrast", NULL,
};
static const char *const ijepa_keys_added[] = {
    "ijepa.global_weight", "ijepa.global_loss", "sigreg.directions", "sigreg.knots",
    "sigreg.t_max", "ijepa.target_precision", NULL};

/* An image schema matching model.img_size and model.channels. */
int objective_check_images(const shard_schema *sc, const jepa_dims *d, const char *dir,
                           char *err, size_t errlen) {
    if (data_kind_of(sc) != DATA_KIND_IMAGES) { /* the launcher's rule too; labels never read here */
        snprintf(err, errlen, "%s: need u8 images (a dataset packed by jepa-shard pack)", dir);
        return -1;
    }
    if ((int)sc->channels != d->ch || (int)sc->height != d->img || (int)sc->width != d->img) {
        snprintf(err, errlen, "%s: images are %ux%ux%u but model.img_size/channels say %dx%dx%d",
                 dir, sc->channels, sc->height, sc->width, d->ch, d->img, d->img);
        return -1;
    }
    return 0;
}

static int ijepa_create(objective **out, const jepa_spec *s, const shard_schema *data, int rank,
                        int world, char *err, size_t errlen) {
    jepa_dims dims;
    if (jepa_dims_from_spec(&dims, s, err, errlen)) return -1;
    if (data && objective_check_images(data, &dims, s->data.train, err, errlen)) return -1;
    aug_cfg ag = {s->aug.global_scale_min, s->aug.global_scale_max, s->aug.ratio_min,
                  s->aug.ratio_max, s->aug.flip, s->aug.brightness, s->aug.contrast};
    if (s->ijepa.crop && aug_cfg_check(&ag, err, errlen)) return -1;
    ijepa_obj *o = JEPA_MALLOC(sizeof *o);
    objective *b = &o->base;
    objective_base_init(b, &objective_ijepa, s, rank, world);
    mask_cfg_from_spec(&o->mc, s);
    int G = dims.grid, max_ntgt = mask_max_tokens(&o->mc, G);
    jepa_model_init(&b->m, &dims, b->seed, b->B, o->mc.npred, max_ntgt,
                    s->parallel.threads_per_rank);
    if (!strcmp(s->init.pred_in, "trunc_normal")) { /* I-JEPA's init, for comparison */
        vit_init_named(&b->m, "pred.in.w", b->seed, VIT_INIT_TRUNC_NORMAL);
        vit_init_named(&b->m, "pred.in.b", b->seed, VIT_INIT_ZERO);
    }
    if (world > 1) { /* the global term's statistics */
        b->m.sum_doubles = comm_sum_doubles;
        b->m.world = world;
    }
    /* masks are drawn for the global batch on every rank and sliced, so a
     * world size sees the same masks as one process with the global batch */
    mask_alloc(&o->mkg, b->B * world, G, o->mc.npred, max_ntgt);
    mask_alloc(&o->mk, b->B, G, o->mc.npred, max_ntgt);
    o->npix = (size_t)b->B * dims.ch * dims.img * dims.img;
    o->batch = JEPA_MALLOC(sizeof(float) * o->npix);
    o->lk = strcmp(s->loss.type, "l2") ? LOSS_SMOOTH_L1 : LOSS_L2;
    o->beta = (float)s->loss.beta;
    o->which = strcmp(s->eval.features, "context") ? 1 : 0;
    o->crop = s->ijepa.crop;
    o->ag = ag;
    *out = b;
    return 0;
}

/* ijepa.target_precision: bf16, the EMA target's forward on the bfloat16
 * kernels (jepa_model_target_infer), where the CPU has them */
static int ijepa_train_init(objective *b, const jepa_spec *s, char *err, size_t errlen) {
    const char *why = NULL;
    if (strcmp(s->ijepa.target_precision, "bf16")) return 0;
    if (!infer_bf16_supported(&why)) {
        snprintf(err, errlen, "ijepa.target_precision: bf16: %s; use fp32", why);
        return -1;
    }
    jepa_model_target_infer(&b->m, 1);
    return 0;
}

static void ijepa_destroy(objective *b) {
    if (!b) return;
    ijepa_obj *o = (ijepa_obj *)b;
    mask_free(&o->mkg);
    mask_free(&o->mk);
    jepa_free(o->batch);
    jepa_model_free(&b->m);
    jepa_free(o);
}

/* From the dataset's manifest (packing computed the sums), or one
 * streaming pass for a dataset packed before manifests held them: no rank
 * loads the data set (issue 17). */
int objective_image_stats(objective *b, const char *dir, char *err, size_t errlen) {
    shard_dataset *ds = NULL;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    shard_pixel_stats st;
    int rc = shard_dataset_pixel_stats(ds, &st, NULL, err, errlen);
    shard_dataset_close(ds);
    if (rc) return -1;
    double n = (double)st.count, mean = (double)st.sum / n / 255.0;
    double var = (double)st.sum_sq / n / (255.0 * 255.0) - mean * mean;
    b->mean = (float)mean;
    b->std = (float)sqrt(var > 0 ? var : 0);
    return 0;
}

/* ijepa.crop: image i of this rank becomes one augmented view (augment.h),
 * keyed by (seed, step, global image index): the same view for any world
 * size with the same global batch, and on replay. I-JEPA crops once per image
 * (RandomResizedCrop, scale (0.3, 1)); context and targets share the crop. */
static void ijepa_views(ijepa_obj *o, const uint8_t *records, int64_t step) {
    const objective *b = &o->base;
    const jepa_dims *d = &b->m.dims;
    const size_t rec = (size_t)d->ch * d->img * d->img;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < b->B; i++) {
        jepa_rng r;
        rng_init(&r, rng_key(b->seed ^ 0x1c40bULL, (uint64_t)step, (uint64_t)b->rank * b->B + i));
        aug_view(o->batch + (size_t)i * rec, d->img, records + (size_t)i * rec, d->ch, d->img,
                 d->img, &o->ag, b->mean, b->std, &r);
    }
}

static void ijepa_step(objective *b, const uint8_t *records, int64_t step, obj_stats *st) {
    ijepa_obj *o = (ijepa_obj *)b;
    const int G = b->m.dims.grid, Bg = b->B * b->world;
    if (o->crop)
        ijepa_views(o, records, step);
    else
        objective_fill_pixels(o->batch, records, o->npix, b->mean, b->std);
    jepa_rng r;
    rng_init(&r, rng_key(b->seed, 0x3a5c, (uint64_t)step));
    mask_sample(b->world > 1 ? &o->mkg : &o->mk, &o->mc, G, Bg, &r);
    if (b->world > 1) mask_slice(&o->mk, &o->mkg, b->rank * b->B, b->B);
    jepa_stats js;
    b->m.sg_key = rng_key(b->seed ^ 0x5167ULL, 0x77, (uint64_t)step); /* SIGReg's directions */
    jepa_forward_backward(&b->m, o->batch, &o->mk, o->lk, o->beta, &js);
    if (st) {
        st->loss = js.loss;
        st->stat[0] = js.target_std;
    }
}

static void ijepa_after_update(objective *b, const sched_values *sv) {
    ema_update(b->m.target, b->m.params, b->m.nenc, (float)sv->ema);
}

/* The context encoder (or the EMA target, eval.features) through the
 * image evaluation: the I-JEPA encoder's tensors are encoder.h's, by name. */
static int ijepa_evaluate(objective *b, const jepa_spec *s, obj_eval *out, char *err,
                          size_t errlen) {
    ijepa_obj *o = (ijepa_obj *)b;
    enc_layout L;
    JEPA_ASSERT(enc_layout_from_table(&b->m, &L) == 0);
    image_encoder e = {&b->m.dims, &L, o->which ? b->m.target : b->m.params, b->mean, b->std,
                       s->eval.pool_blocks, b->B, b->export_dir};
    return eval_images(s, &e, o->which ? "target" : "context", out, err, errlen);
}

const objective_ops objective_ijepa = {
    .name = "ijepa",
    .stat_names = ijepa_stats,
    .data_hint = "pack one with jepa-shard pack; scripts/pack-fmnist.sh packs Fashion-MNIST",
    .hash_keys = ijepa_keys,
    .hash_keys_added = ijepa_keys_added,
    .collapse = {"target_std", OBJ_COLLAPSE_FRAC},
    .eval_labels = 1,
    .create = ijepa_create,
    .destroy = ijepa_destroy,
    .train_init = ijepa_train_init,
    .data_stats = objective_image_stats,
    .step = ijepa_step,
    .after_update = ijepa_after_update,
    .evaluate = ijepa_evaluate,
};
