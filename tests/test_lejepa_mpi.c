/* test_lejepa_mpi.c - the LeJEPA objective is data parallel exactly up to
 * float reassociation (run as a singleton and under mpirun -np 2): W ranks
 * with BG/W images each, SIGReg's sums all-reduced inside the step and the
 * gradients averaged by the bucketed all-reduce driven by the objective's
 * grad_ready calls, against one process with all BG images (an objective of
 * world 1, which never communicates, computed on every rank). Same images,
 * same views (keyed by the global image index), same directions.
 * Over STEPS steps with AdamW updates in between: per-step loss and SIGReg
 * relative difference <= 1e-6 (inv, a small mean of squared differences
 * that cancel: 1e-5), first-step gradients max |dp - ref| <= 1e-5
 * max |ref|, parameters after the last update max |dp - ref| <= 1e-5;
 * replicas bitwise identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "objective.h"
#include "testutil.h"

enum { BG = 4, STEPS = 3, SIDE = 8 };
static int R, W;

static void tiny_spec(jepa_spec *s, int B) {
    spec_defaults(s);
    snprintf(s->objective, sizeof s->objective, "lejepa");
    s->seed = 4;
    s->model.img_size = SIDE;
    s->model.patch = 2;
    s->model.width = 16;
    s->model.depth = 2;
    s->model.heads = 2;
    s->lejepa.global_views = 2;
    s->lejepa.local_views = 2;
    s->lejepa.local_size = 4;
    s->lejepa.proj_hidden = 16;
    s->lejepa.proj_dim = 8;
    s->sigreg.weight = 0.3;
    s->sigreg.directions = 16;
    s->aug.brightness = 0.4;
    s->train.batch_per_rank = B;
    s->parallel.threads_per_rank = 1;
}

static objective *make(int B, int rank, int world) {
    jepa_spec s;
    tiny_spec(&s, B);
    objective *o = NULL;
    char err[256];
    if (objective_lejepa.create(&o, &s, NULL, rank, world, err, sizeof err))
        comm_fatal("test_lejepa_mpi: %s", err);
    o->mean = 0.3f;
    o->std = 0.35f;
    return o;
}

static void grads_ready(void *ctx, size_t lo) { comm_buckets_ready((comm_buckets *)ctx, lo); }

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

static void test_dp_equals_one_process(void) {
    const int B = BG / W;
    uint8_t *img = malloc((size_t)BG * SIDE * SIDE);
    jepa_rng r;
    rng_init(&r, 77);
    for (int i = 0; i < BG * SIDE * SIDE; i++) img[i] = (uint8_t)rng_below(&r, 256);
    objective *dp = make(B, R, W), *ref = make(BG, 0, 1);
    jepa_model *m = &dp->m;
    comm_buckets cb;
    CU_ASSERT_FATAL(comm_buckets_init(&cb, m->grads, m->nparams, 2048, 0) == 0);
    m->grad_ready = grads_ready;
    m->grad_ready_ctx = &cb;
    double worst_loss = 0, worst_sig = 0, worst_inv = 0, gerr = 0, gmax = 0;
    for (int step = 0; step < STEPS; step++) {
        obj_stats sd, sr;
        objective_lejepa.step(dp, img + (size_t)R * B * SIDE * SIDE, step, &sd);
        comm_buckets_finish(&cb); /* the average over ranks */
        objective_lejepa.step(ref, img, step, &sr);
        worst_loss = fmax(worst_loss, rel(comm_mean_double(sd.loss), sr.loss));
        worst_sig = fmax(worst_sig, rel(sd.stat[1], sr.stat[1])); /* sigreg: global */
        worst_inv = fmax(worst_inv, rel(comm_mean_double(sd.stat[2]), sr.stat[2]));
        if (step == 0)
            for (size_t i = 0; i < m->nparams; i++) {
                gmax = fmax(gmax, fabs(ref->m.grads[i]));
                gerr = fmax(gerr, fabs(m->grads[i] - ref->m.grads[i]));
            }
        adamw_update(m, 1e-3, 0.05, 0.9, 0.999, 1e-8, step + 1);
        adamw_update(&ref->m, 1e-3, 0.05, 0.9, 0.999, 1e-8, step + 1);
    }
    double perr = 0;
    for (size_t i = 0; i < m->nparams; i++) perr = fmax(perr, fabs(m->params[i] - ref->m.params[i]));
    int diverged = comm_check_replicas(m->params, m->nparams, NULL, 0) != 0;
    if (R == 0)
        printf("\n  W=%d, %d images per rank: loss rel diff %.1e, sigreg %.1e, inv %.1e, "
               "step-0 grads %.1e of max %.2e, params after %d updates %.1e",
               W, B, worst_loss, worst_sig, worst_inv, gerr, gmax, STEPS, perr);
    CU_ASSERT_EQUAL(diverged, 0);
    CU_ASSERT(worst_loss <= 1e-6);
    CU_ASSERT(worst_sig <= 1e-6);
    CU_ASSERT(worst_inv <= 1e-5);
    CU_ASSERT(gmax > 0 && gerr <= 1e-5 * gmax);
    CU_ASSERT(perr <= 1e-5);
    comm_buckets_free(&cb);
    objective_lejepa.destroy(dp);
    objective_lejepa.destroy(ref);
    free(img);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    R = comm_rank();
    W = comm_world();
    if (BG % W) comm_fatal("test_lejepa_mpi: %d ranks do not divide the batch of %d", W, BG);
    static const test_case cases[] = {{"dp_equals_one_process", test_dp_equals_one_process}};
    int rc = test_main("lejepa_mpi", cases, 1);
    int failed = comm_any_error(rc != 0); /* every rank's failure fails the run */
    if (rc) fprintf(stderr, "test_lejepa_mpi: rank %d of %d failed\n", R, W);
    comm_finalize();
    return failed >= 0 ? 1 : 0;
}
