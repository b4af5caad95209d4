/* bench-step [--threads T] [--steps N] [--batch B] [--set key=value ...]
 * Images/s of the full training step (forward + backward + AdamW + EMA) for
 * the tiny config (or the spec given with --spec) on synthetic images, after
 * warm-up steps. Last line: `img_per_s N` (machine-readable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "jepa.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = 1, steps = 10, warm = 2, batch = 0;
    jepa_spec s;
    char err[SPEC_ERR_MAX];
    spec_defaults(&s);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (spec_set(&s, argv[++i], err, sizeof err)) {
                fprintf(stderr, "bench-step: %s\n", err);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench-step [--threads T] [--steps N] [--batch B] "
                            "[--set key=value ...]\n");
            return 2;
        }
    }
    if (threads < 1 || steps < 1) {
        fprintf(stderr, "bench-step: --threads and --steps must be >= 1\n");
        return 2;
    }
    if (batch > 0) s.train.batch_per_rank = batch;
    jepa_dims d;
    if (jepa_dims_from_spec(&d, &s, err, sizeof err)) {
        fprintf(stderr, "bench-step: %s\n", err);
        return 2;
    }
    mask_cfg mc;
    mask_cfg_from_spec(&mc, &s);
    int B = s.train.batch_per_rank, G = d.grid, maxt = mask_max_tokens(&mc, G);
    jepa_model m;
    jepa_model_init(&m, &d, 1, B, mc.npred, maxt, threads);
    jepa_masks mk;
    mask_alloc(&mk, B, G, mc.npred, maxt);
    size_t npix = (size_t)B * d.ch * d.img * d.img;
    float *img = JEPA_MALLOC(sizeof(float) * npix);
    jepa_rng r;
    rng_init(&r, 42);
    for (size_t i = 0; i < npix; i++) img[i] = (float)rng_normal(&r);
    double t0 = 0, ctx = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) t0 = now_s();
        mask_sample(&mk, &mc, G, B, &r);
        if (it >= warm) ctx += mk.nctx;
        jepa_stats st;
        jepa_forward_backward(&m, img, &mk, LOSS_SMOOTH_L1, 1.0f, &st);
        adamw_update(&m, 1e-4, 0.04, 0.9, 0.999, 1e-8, it + 1);
        ema_update(m.target, m.params, m.nenc, 0.996f);
    }
    double dt = now_s() - t0;
    printf("threads %d\nbatch %d\nsteps %d\nmean_context_tokens %.1f\nms_per_step %.1f\n"
           "params %zu\nimg_per_s %.1f\n",
           threads, B, steps, ctx / steps, 1e3 * dt / steps, m.nparams, B * steps / dt);
    jepa_free(img);
    mask_free(&mk);
    jepa_model_free(&m);
    return 0;
}
