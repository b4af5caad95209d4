/* eval_images.c - how an image encoder is measured: its features of the
 * training and test sets, then the linear probe (probe.c) fitted on the
 * training features only; the test split is only ever scored. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "objective.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int eval_images(const jepa_spec *s, int dim, image_features_fn f, void *ctx, const char *which,
                obj_eval *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (comm_rank() != 0) return 0;
    jepa_images tr = {0}, te = {0};
    if (images_load_shards(&tr, s->data.train, err, errlen)) return -1;
    if (images_load_shards(&te, s->data.test, err, errlen)) {
        images_free(&tr);
        return -1;
    }
    float *ftr = JEPA_MALLOC(sizeof(float) * tr.n * dim), *fte = JEPA_MALLOC(sizeof(float) * te.n * dim);
    double t0 = now_s();
    f(ctx, &tr, ftr);
    f(ctx, &te, fte);
    double t1 = now_s();
    probe_result pr;
    int rc = probe_run(ftr, tr.labels, tr.n, fte, te.labels, te.n, dim, 10, s->eval.val_frac,
                       s->eval.max_iters, (uint64_t)s->seed, &pr, err, errlen);
    if (rc == 0) {
        fprintf(stderr, "probe: %s encoder features %.1fs, fit %.1fs, wd %g, val %.4f, test %.4f\n",
                which, t1 - t0, now_s() - t1, pr.best_wd, pr.val_acc, pr.test_acc);
        obj_eval_add(out, "probe_acc", pr.test_acc);
    }
    jepa_free(ftr);
    jepa_free(fte);
    images_free(&tr);
    images_free(&te);
    return rc;
}
