/* objective.c - the registry of objectives and small helpers they share. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data_kind.h"
#include "infer.h"
#include "objective.h"

/* Adding an objective: one file defining its ops, one line here. */
static const objective_ops *const objective_registry[] = {
    &objective_ijepa,
    &objective_world,
    &objective_lejepa,
};

const objective_ops *objective_find(const char *name) {
    for (size_t i = 0; i < sizeof objective_registry / sizeof objective_registry[0]; i++)
        if (!strcmp(objective_registry[i]->name, name)) return objective_registry[i];
    return NULL;
}

void obj_eval_add(obj_eval *e, const char *name, double value) {
    JEPA_ASSERT(e->n < OBJ_MAX_EVAL && strlen(name) < sizeof e->name[0]);
    snprintf(e->name[e->n], sizeof e->name[0], "%s", name);
    e->value[e->n++] = value;
}

const char *obj_eval_fmt(char *buf, double v) {
    snprintf(buf, 32, v != 0.0 && fabs(v) < 1e-3 ? "%.4g" : "%.4f", v);
    return buf;
}

double obj_eval_get(const obj_eval *e, const char *name) {
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->name[i], name)) return e->value[i];
    return -1.0;
}

int objective_data_schema(const char *dir, shard_schema *out, char *err, size_t errlen) {
    shard_dataset *ds = NULL;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    *out = *shard_dataset_schema(ds);
    shard_dataset_close(ds);
    return 0;
}

/* "AxBxC" of a field's shape (a scalar: "1") */
static const char *shape_text(char *buf, size_t n, const shard_field *f) {
    size_t at = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < f->ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, d ? "x%u" : "%u", f->shape[d]);
    if (!f->ndim) snprintf(buf, n, "1");
    return buf;
}

int objective_same_records(const jepa_spec *s, char *err, size_t errlen) {
    shard_schema tr, te;
    if (objective_data_schema(s->data.train, &tr, err, errlen) ||
        objective_data_schema(s->data.test, &te, err, errlen))
        return -1;
    if (te.nfields != tr.nfields) {
        snprintf(err, errlen, "data.test %s: records of %u fields, data.train's (%s) have %u",
                 s->data.test, te.nfields, s->data.train, tr.nfields);
        return -1;
    }
    if (!tr.nfields && (te.channels != tr.channels || te.height != tr.height || te.width != tr.width)) {
        snprintf(err, errlen, "data.test %s: images are %ux%ux%u, data.train's %ux%ux%u", s->data.test,
                 te.channels, te.height, te.width, tr.channels, tr.height, tr.width);
        return -1;
    }
    for (uint32_t i = 0; i < tr.nfields; i++) {
        const shard_field *a = &te.fields[i], *b = &tr.fields[i];
        int same = !strcmp(a->name, b->name) && a->dtype == b->dtype && a->ndim == b->ndim;
        for (uint32_t d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
        if (!same) {
            char x[64], y[64];
            snprintf(err, errlen, "data.test %s: field %u is '%s' %s %s, data.train's (%s) '%s' %s %s",
                     s->data.test, i, a->name, shard_dtype_name(a->dtype), shape_text(x, sizeof x, a),
                     s->data.train, b->name, shard_dtype_name(b->dtype), shape_text(y, sizeof y, b));
            return -1;
        }
    }
    return 0;
}

/* Splits packed from class folders (manifest version 5) name their labels:
 * a label that names another class in data.test than in data.train (a
 * class folder missing from one split shifts every label after it, as in
 * torchvision's ImageFolder) would score every probe against the wrong
 * classes. 1 + err naming the first such label; 0 when the names agree on
 * every label both sets have, or when a set has no names. */
static int class_names_differ(const jepa_spec *s, const shard_dataset *tr, uint32_t ntr, const shard_dataset *te,
                              uint32_t nte, char *err, size_t errlen) {
    if (!shard_dataset_class_name(tr, 0) || !shard_dataset_class_name(te, 0)) return 0;
    for (uint32_t l = 0; l < ntr && l < nte; l++) {
        const char *a = shard_dataset_class_name(te, l), *b = shard_dataset_class_name(tr, l);
        if (a && b && strcmp(a, b) != 0) {
            snprintf(err, errlen, "data.test %s: label %u is class '%.60s', in data.train (%s) '%.60s': the "
                     "splits' class folders differ (pack both from the same class folders)", s->data.test, l, a,
                     s->data.train, b);
            return 1;
        }
    }
    return 0;
}

int objective_eval_data(const jepa_spec *s, char *err, size_t errlen) {
    const char *why = NULL;
    if (!strcmp(s->eval.precision, "bf16") && !infer_bf16_supported(&why)) {
        snprintf(err, errlen, "eval.precision: bf16: %s; use fp32", why);
        return -1;
    }
    shard_schema sc[2];
    const char *dir[2] = {s->data.train, s->data.test};
    for (int i = 0; i < 2; i++) {
        if (objective_data_schema(dir[i], &sc[i], err, errlen)) return -1;
        if (data_kind_of(&sc[i]) != DATA_KIND_IMAGES) {
            snprintf(err, errlen, "%s: the probe needs u8 images (a dataset packed by jepa-shard "
                     "pack)", dir[i]);
            return -1;
        }
    }
    if (sc[1].channels != sc[0].channels || sc[1].height != sc[0].height ||
        sc[1].width != sc[0].width) {
        snprintf(err, errlen, "data.test %s: images are %ux%ux%u, data.train's %ux%ux%u", dir[1],
                 sc[1].channels, sc[1].height, sc[1].width, sc[0].channels, sc[0].height,
                 sc[0].width);
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (sc[i].label != SHARD_LABEL_U8) {
            snprintf(err, errlen, "data.%s %s has no class labels: the probe needs them (pack "
                     "with --labels/--idx-labels/--raw-labels)", i ? "test" : "train", dir[i]);
            return 1;
        }
    shard_dataset *ds = NULL, *dt = NULL;
    if (shard_dataset_open(&ds, dir[0], err, errlen)) return -1;
    if (shard_dataset_open(&dt, dir[1], err, errlen)) {
        shard_dataset_close(ds);
        return -1;
    }
    int bad = class_names_differ(s, ds, sc[0].num_classes, dt, sc[1].num_classes, err, errlen);
    /* the probe holds out eval.val_frac of data.train: at least one row, not all */
    uint64_t n = shard_dataset_records(ds);
    shard_dataset_close(ds);
    shard_dataset_close(dt);
    if (bad) return -1;
    long long nval = llround(s->eval.val_frac * (double)n);
    if (nval < 1 || (uint64_t)nval >= n) {
        snprintf(err, errlen, "data.train %s: %llu images leave %lld validation rows for the probe "
                 "at eval.val_frac %g (need 1 to %llu)", dir[0], (unsigned long long)n, nval,
                 s->eval.val_frac, (unsigned long long)(n > 0 ? n - 1 : 0));
        return -1;
    }
    return 0;
}

typedef struct {
    char *err;
    size_t errlen;
    int seen;
} first_problem;

static void keep_first(void *ctx, const char *line) {
    first_problem *f = ctx;
    if (!f->seen++) snprintf(f->err, f->errlen, "%s", line);
}

int objective_verify_eval_data(const jepa_spec *s, char *err, size_t errlen) {
    const char *dir[2] = {s->data.train, s->data.test};
    for (int i = 0; i < 2; i++) {
        first_problem f = {err, errlen, 0};
        uint64_t bad = shard_verify(dir[i], keep_first, &f);
        if (bad) {
            size_t n = strlen(err);
            if (bad > 1 && n + 1 < errlen)
                snprintf(err + n, errlen - n, " (and %llu more problems: jepa-shard verify %s)",
                         (unsigned long long)(bad - 1), dir[i]);
            return -1;
        }
    }
    return 0;
}

void objective_fill_pixels(float *dst, const uint8_t *src, size_t n, float mean, float std) {
    float a = 1.0f / (255.0f * std), b = -mean / std;
    for (size_t k = 0; k < n; k++) dst[k] = src[k] * a + b;
}


void objective_base_init(objective *b, const objective_ops *ops, const jepa_spec *s, int rank,
                         int world) {
    b->ops = ops;
    b->B = s->train.batch_per_rank;
    b->rank = rank;
    b->world = world;
    b->seed = (uint64_t)s->seed;
    b->mean = 0.0f;
    b->std = 1.0f;
    b->export_dir = NULL;
}
