/* data.c - image sets in memory, read from shard directories. The training
 * loop streams batches through shard_reader; whole sets are loaded here for
 * the pixel statistics (labels not needed) and the linear probe (labels
 * needed: the evaluation checks for them up front, objective_eval_data). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"
#include "shard.h"

int images_load_shards(jepa_images *d, const char *dir, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    shard_dataset *ds = NULL;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    const shard_schema *sc = shard_dataset_schema(ds);
    uint64_t n = shard_dataset_records(ds);
    if (sc->nfields > 0 || sc->dtype != SHARD_DTYPE_U8 || n > (uint64_t)1 << 30) {
        snprintf(err, errlen, "%s: need u8 images (a dataset packed by jepa-shard pack) and at "
                 "most 2^30 records", dir);
        shard_dataset_close(ds);
        return -1;
    }
    d->n = (int)n;
    d->c = (int)sc->channels;
    d->h = (int)sc->height;
    d->w = (int)sc->width;
    d->pixels = JEPA_MALLOC(shard_dataset_record_bytes(ds) * n);
    d->labels = sc->label == SHARD_LABEL_U8 ? JEPA_MALLOC(n) : NULL;
    int rc = shard_dataset_read_all(ds, d->pixels, d->labels, err, errlen);
    shard_dataset_close(ds);
    if (rc) images_free(d);
    return rc;
}

void images_free(jepa_images *d) {
    jepa_free(d->pixels);
    jepa_free(d->labels);
    memset(d, 0, sizeof *d);
}

void images_stats(const jepa_images *d, float *mean, float *std) {
    size_t n = (size_t)d->n * d->c * d->h * d->w;
    double s = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = d->pixels[i] / 255.0;
        s += v;
        s2 += v * v;
    }
    double m = s / n;
    *mean = (float)m;
    *std = (float)sqrt(s2 / n - m * m);
}
