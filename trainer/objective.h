/* objective.h - the boundary between the one training loop (train.c) and
 * what it trains. The loop owns data order, schedules, the gradient
 * all-reduce, AdamW, metrics, checkpoints, signals and resume; it never asks
 * which objective it runs. An objective owns its networks (tensors in the one
 * parameter buffer of o->m), its batch construction (masks, views, windows),
 * its forward/backward into o->m.grads, its extra metrics and its evaluation.
 *
 * An objective is a `const objective_ops` table plus state that embeds
 * `objective` first; adding one is one new file and one line in
 * objective_registry (objective.c). */
#ifndef JEPA_OBJECTIVE_H
#define JEPA_OBJECTIVE_H

#include <stdint.h>
#include <stdio.h>

#include "jepa.h"
#include "shard.h"
#include "spec.h"

#define OBJ_MAX_STATS 8
#define OBJ_NAME_MAX 16

/* One step's figures from one rank; the loop averages them over ranks. */
typedef struct {
    double loss;                /* the objective's loss on this rank's share */
    double stat[OBJ_MAX_STATS]; /* in ops->stat_names order (e.g. target_std, sigreg) */
} obj_stats;

/* The collapse watch: the loop warns once (rank 0) and records the step in
 * summary.json when stat_names' `stat` falls below frac x its value at the
 * run's first logged step; it never stops the run. {NULL, 0}: stat_names[0]
 * at OBJ_COLLAPSE_FRAC. 0.1: healthy runs measured keep at least half their
 * start (I-JEPA target_std 0.72 -> 0.38..1.0), a collapse goes below 0.03x
 * (lr 10: 0.72 -> 0.012 by step 10) (docs/trainer.md, "Collapse watch"). */
#define OBJ_COLLAPSE_FRAC 0.1
typedef struct {
    const char *stat; /* a name in stat_names; NULL: the first */
    double frac;      /* in (0, 1); 0: OBJ_COLLAPSE_FRAC */
} obj_collapse;

/* Appends (name, value); asserts there is room. */
void obj_eval_add(obj_eval *e, const char *name, double value);
/* The value named name, or -1 when absent. */
double obj_eval_get(const obj_eval *e, const char *name);

typedef struct objective objective;

typedef struct {
    const char *name; /* the spec's `objective` value */
    /* extra per-step metrics, NULL-terminated, at most OBJ_MAX_STATS; the
     * first is also the summary's and the progress line's headline figure */
    const char *const *stat_names;
    /* which of them a collapse drives towards 0, and how far (train_collapse.c) */
    obj_collapse collapse;
    /* the spec keys besides the common ones (seed, batch, data order, optim.*)
     * that decide this objective's trajectory, NULL-terminated: a checkpoint
     * resumed under other values is refused */
    const char *const *hash_keys;
    /* keys added after checkpoints were written without them: in the hash
     * only when not at their default, so those checkpoints keep theirs and
     * resume (train_io.c). NULL: none */
    const char *const *hash_keys_added;
    /* 1: evaluate reads the class labels of data.train and data.test (the
     * probe); the loop checks them before training (objective_eval_data) */
    int eval_labels;
    /* how to make this objective's data set, for a data.train with no
     * manifest (e.g. "pack one with jepa-shard pack ...") */
    const char *data_hint;
    /* what one record is, plural, for the progress and end-of-training
     * lines ("images"; the world model's "windows"); NULL: "images" */
    const char *records_name;
    /* Builds the networks for the spec (parameters initialised from the
     * spec's seed) sized for train.batch_per_rank records per rank, after
     * checking that the training set's schema is what it trains on. 0, or
     * -1 + err naming the data or key. */
    int (*create)(objective **out, const jepa_spec *s, const shard_schema *data, int rank,
                  int world, char *err, size_t errlen);
    void (*destroy)(objective *o);
    /* What only training needs, after create, before any step (jepa-eval
     * never calls it: evaluating a run asks nothing of the CPU that only
     * its training did). 0, or -1 + err naming the key. NULL: nothing. */
    int (*train_init)(objective *o, const jepa_spec *s, char *err, size_t errlen);
    /* Normalisation statistics of the training set (fresh runs; a resume
     * takes the checkpoint's). Sets o->mean, o->std. 0 or -1 + err. */
    int (*data_stats)(objective *o, const char *dir, char *err, size_t errlen);
    /* Forward and backward of this rank's share of global step `step` (0-based):
     * records is (batch_per_rank, record bytes) as the shard reader gives
     * them. Zeroes and fills o->m.grads, calling o->m.grad_ready as ranges
     * become final. May call collectives, in the same order on every rank.
     * st may be NULL (the step timing). */
    void (*step)(objective *o, const uint8_t *records, int64_t step, obj_stats *st);
    /* After the optimizer update, with the step's schedule values (EMA). NULL: none. */
    void (*after_update)(objective *o, const sched_values *sv);
    /* Evaluation of the current parameters per the spec's eval keys.
     * Collective: every rank calls it; rank 0's *out is the result. 0 or -1 + err. */
    int (*evaluate)(objective *o, const jepa_spec *s, obj_eval *out, char *err, size_t errlen);
} objective_ops;

struct objective {
    const objective_ops *ops;
    jepa_model m;        /* parameters, grads, Adam moments, EMA target (m.nenc floats; 0: none) */
    float mean, std;     /* pixel normalisation: (x/255 - mean) / std */
    int B;               /* records per rank per step */
    int rank, world;
    uint64_t seed;
    const char *export_dir; /* evaluate: also write the features there (jepa-eval --export) */
};

/* The common part of create: ops, batch per rank, rank, world, seed; identity
 * normalisation until data_stats or a checkpoint sets it. */
void objective_base_init(objective *b, const objective_ops *ops, const jepa_spec *s, int rank,
                         int world);
/* The objective named name, or NULL. */
const objective_ops *objective_find(const char *name);
/* Opens dir's manifest and returns its schema in *out. 0 or -1 + err. */
int objective_data_schema(const char *dir, shard_schema *out, char *err, size_t errlen);
/* The probe's data, checked before any training: data.train and data.test
 * (the probe's own sets) must be u8 images of one shape with u8 class labels,
 * and eval.val_frac of data.train at least one image and not all of them.
 * eval.precision bf16 needs this CPU's AVX512_BF16 (infer_bf16_supported).
 * 0: usable; 1: one of them has no labels (err names it: the caller skips
 * the probe or refuses); -1 + err: bf16 unsupported here, unreadable, not
 * images, shapes differ, or too few images. */
int objective_eval_data(const jepa_spec *s, char *err, size_t errlen);
/* For objectives without class labels (the world model): data.test's
 * records must be laid out as data.train's (the same image shape, or the
 * same fields with the same names, types and shapes), checked before
 * training. 0, or -1 + err naming data.test and the first difference. */
int objective_same_records(const jepa_spec *s, char *err, size_t errlen);
/* Every frame of the probe's two data sets checked (shard_verify: CRCs, zstd
 * checksums, sizes, labels), so that a corrupt frame the training never read
 * is refused before training rather than found by the probe after it. One
 * read of both sets, as the probe makes at the end. 0, or -1 with the first
 * problem (file and offset) in err. */
int objective_verify_eval_data(const jepa_spec *s, char *err, size_t errlen);
/* u8 pixels -> normalised floats: (x/255 - mean) / std. */
void objective_fill_pixels(float *dst, const uint8_t *src, size_t n, float mean, float std);

/* For image objectives: dir's schema must be u8 images (labels or none:
 * training never reads them) of the model's size and channels. 0 or -1 + err
 * naming dir. */
int objective_check_images(const shard_schema *sc, const jepa_dims *d, const char *dir,
                           char *err, size_t errlen);
/* data_stats for image objectives: mean and std of every pixel of dir. */
int objective_image_stats(objective *o, const char *dir, char *err, size_t errlen);

/* An image encoder to evaluate: the ViT of encoder.h under weights W. */
struct enc_layout;
typedef struct {
    const jepa_dims *d;
    const struct enc_layout *L;
    const float *W;          /* its weights (e.g. params, or the EMA target) */
    float mean, std;         /* pixel normalisation */
    int pool_blocks;         /* eval.pool_blocks */
    int batch;               /* images per forward (the training batch) */
    const char *export_dir;  /* non-NULL: write the features as .npy there */
} image_encoder;

/* The image-encoder evaluation (eval_images.c): features of the training and
 * test sets (data.train, data.test; every rank extracts a slice, gathered to
 * rank 0), then the linear probe on rank 0 and, per the eval keys, the kNN
 * classifier and the 1%/10%-label probes (on rank 1 when there are two
 * ranks or more: eval_features_ranks); figures probe_fit_s, knn_acc,
 * probe1pct_acc, probe1pct_wd, probe10pct_acc, probe10pct_wd, probe_wd
 * (each probe's chosen weight decay), probe_converged, probe_acc (last).
 * which names the encoder in the log.
 * Collective; rank 0's *out holds the figures. 0 or -1 + err. */
int eval_images(const jepa_spec *s, const image_encoder *e, const char *which, obj_eval *out,
                char *err, size_t errlen);

/* 0 when dir can be made as mkdir -p (or is a directory this process may
 * write into) and none of --export's four files (train/test features and
 * labels .npy) is in it yet; else -1 + err naming the path: an export never
 * replaces files; a symbolic link dir is written through, one pointing
 * nowhere or at a file is refused (shard_out_place). Makes nothing: the export makes dir only when it writes
 * (and removes what it made if it fails or a caught signal stops it). */
int eval_export_check(const char *dir, char *err, size_t errlen);
/* The same figures for raw pixels (x / 255) as features: the baseline every
 * encoder must beat. Collective: rank 0 loads both sets and fits the full
 * probe, rank 1 (with two ranks or more) scores the rest, the others return
 * 0. Rank 0's *out holds the figures; rank 0 alone returns -1 + err. */
int eval_pixels(const jepa_spec *s, const char *export_dir, obj_eval *out, char *err,
                size_t errlen);

extern const objective_ops objective_ijepa;
extern const objective_ops objective_lejepa;
extern const objective_ops objective_world;

#endif
