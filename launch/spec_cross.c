/* spec_cross.c - the run spec's checks between keys, after each key passed
 * its own (spec.c): pairs in order, multiples, what the model's shape, an
 * objective, the world model, the planner and the masks need of each other,
 * and a resume path that exists. The first that fails is the one line reported, so the
 * order below is the order a user meets them. */
#include <string.h>
#include <sys/stat.h>

#include "spec_internal.h"

/* Pairs that must satisfy lo <= hi. */
static const char *const ordered_keys[][2] = {
    {"optim.min_lr", "optim.lr"},
    {"mask.target_scale_min", "mask.target_scale_max"},
    {"mask.target_aspect_min", "mask.target_aspect_max"},
    {"mask.context_scale_min", "mask.context_scale_max"},
    {"ema.start", "ema.end"},
    {"aug.global_scale_min", "aug.global_scale_max"},
    {"aug.local_scale_min", "aug.local_scale_max"},
    {"aug.ratio_min", "aug.ratio_max"},
};
/* Pairs where the first must be a multiple of the second. */
static const char *const divisible_keys[][2] = {
    {"model.img_size", "model.patch"},
    {"model.width", "model.heads"},
    {"model.pred_width", "model.pred_heads"},
    {"eval.every_steps", "train.log_every"}, /* a probe lands on a logged line */
};

static int check_budget(const jepa_spec *s, char *err, size_t errlen) {
    if (s->train.steps == 0 && s->train.epochs == 0 && s->train.minutes == 0)
        return spec_fail(err, errlen, "train.steps, train.epochs, train.minutes: all are 0; set a step count, "
                                 "an epoch count or a time budget");
    return 0;
}

static int check_multiples(const jepa_spec *s, char *err, size_t errlen) {
    for (size_t i = 0; i < sizeof divisible_keys / sizeof divisible_keys[0]; i++) {
        long long x = (long long)spec_key_double(divisible_keys[i][0], s);
        long long y = (long long)spec_key_double(divisible_keys[i][1], s);
        if (x % y)
            return spec_fail(err, errlen, "%s: %lld is not a multiple of %s (%lld)", divisible_keys[i][0], x,
                        divisible_keys[i][1], y);
    }
    return 0;
}

/* what the encoder's shape asks of LeJEPA's local views, the probe and
 * the position embedding */
static int check_shape(const jepa_spec *s, char *err, size_t errlen) {
    /* only LeJEPA's local views read the key (obj_lejepa.c checks the same) */
    if (!strcmp(s->objective, "lejepa") && s->lejepa.local_views > 0) {
        if (s->lejepa.local_size % s->model.patch)
            return spec_fail(err, errlen, "lejepa.local_size: %d is not a multiple of model.patch (%d)",
                        s->lejepa.local_size, s->model.patch);
        if (s->lejepa.local_size > s->model.img_size) /* a local view is a smaller crop */
            return spec_fail(err, errlen, "lejepa.local_size: %d is larger than model.img_size (%d)",
                        s->lejepa.local_size, s->model.img_size);
    }
    if (s->eval.pool_blocks > s->model.depth)
        return spec_fail(err, errlen, "eval.pool_blocks: %d exceeds model.depth %d (the encoder's blocks)",
                    s->eval.pool_blocks, s->model.depth);
    /* the 2-D sin-cos position embedding gives width/4 channels to each of
     * sin(row), cos(row), sin(col), cos(col) */
    if (s->model.width % 4)
        return spec_fail(err, errlen, "model.width: %d is not a multiple of 4 (2-D sin-cos position embedding)",
                    s->model.width);
    if (s->model.pred_width % 4)
        return spec_fail(err, errlen, "model.pred_width: %d is not a multiple of 4 (2-D sin-cos position embedding)",
                    s->model.pred_width);
    return 0;
}

static int check_ordered(const jepa_spec *s, char *err, size_t errlen) {
    char a[40], b[40];
    for (size_t i = 0; i < sizeof ordered_keys / sizeof ordered_keys[0]; i++) {
        double lo = spec_key_double(ordered_keys[i][0], s), hi = spec_key_double(ordered_keys[i][1], s);
        if (lo > hi) {
            spec_fmt_double(lo, a, sizeof a);
            spec_fmt_double(hi, b, sizeof b);
            return spec_fail(err, errlen, "%s: %s is greater than %s (%s)", ordered_keys[i][0], a, ordered_keys[i][1], b);
        }
    }
    return 0;
}

/* counts bounded by another key: the world model's rollout, the planner's,
 * and the patches a mask keeps */
static int check_counts(const jepa_spec *s, char *err, size_t errlen) {
    /* a rollout step predicts from the frames before it: R steps need R + 1
     * frames of history (obj_world.c checks the same; only world reads the keys) */
    if (!strcmp(s->objective, "world") && s->world.rollout > s->world.history - 1)
        return spec_fail(err, errlen, "world.rollout: %d steps need world.history >= %d (world.history is %d)",
                    s->world.rollout, s->world.rollout + 1, s->world.history);
    if (s->plan.topk > s->plan.samples)
        return spec_fail(err, errlen, "plan.topk: %d is more than plan.samples (%d)", s->plan.topk, s->plan.samples);
    if (s->plan.execute > s->plan.horizon)
        return spec_fail(err, errlen, "plan.execute: %d blocks is more than plan.horizon (%d)", s->plan.execute,
                    s->plan.horizon);
    long long side = s->model.img_size / s->model.patch, patches = side * side;
    if (s->mask.min_keep > patches)
        return spec_fail(err, errlen, "mask.min_keep: %d is more than the %lld patches of an image (img_size/patch)^2",
                    s->mask.min_keep, patches);
    return 0;
}

static int check_resume(const jepa_spec *s, char *err, size_t errlen) {
    struct stat st;
    if (strcmp(s->resume, "auto") != 0 && strcmp(s->resume, "none") != 0 && stat(s->resume, &st) != 0) {
        char shown[160];
        return spec_fail(err, errlen, "resume: '%s' does not exist (use \"auto\", \"none\" or an existing checkpoint path)",
                    spec_show(s->resume, shown, sizeof shown));
    }
    return 0;
}

int spec_validate_cross(const jepa_spec *s, char *err, size_t errlen) {
    if (check_budget(s, err, errlen) || check_multiples(s, err, errlen) || check_shape(s, err, errlen) ||
        check_ordered(s, err, errlen) || check_counts(s, err, errlen) || check_resume(s, err, errlen))
        return -1;
    return 0;
}
