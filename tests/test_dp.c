/* test_dp.c - data parallelism is exact up to float reassociation: under
 * mpirun -np W, K training steps with per-rank batch B/W (bucketed
 * all-reduce driven by the backward hook) against the same K steps of one
 * process with batch B, computed on every rank as the reference. Same
 * images, same global masks (sampled for B, sliced per rank).
 * Bounds: per-step loss |dp - ref| <= 1e-6 (measured ~1e-8); parameters after
 * K steps max |dp - ref| <= 1e-5 (measured below, printed); replicas bitwise
 * identical; blocking and bucketed all-reduce bitwise identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "jepa.h"
#include "testutil.h"

#define STEPS 4
#define BG 4 /* global batch */

static jepa_dims dims;
static mask_cfg mc = {2, 0.15, 0.2, 0.75, 1.5, 0.85, 1.0, 2, MASK_CUT_RESAMPLE, MASK_ROUND_AREA};
static float *images; /* (BG, 1, 8, 8) */

static void setup_dims(void) {
    jepa_spec s;
    spec_defaults(&s);
    s.model.img_size = 8;
    s.model.patch = 2;
    s.model.width = 16;
    s.model.depth = 2;
    s.model.heads = 2;
    s.model.pred_width = 8;
    s.model.pred_depth = 1;
    s.model.pred_heads = 2;
    char err[256];
    JEPA_ASSERT(jepa_dims_from_spec(&dims, &s, err, sizeof err) == 0);
}

static void grads_ready(void *ctx, size_t lo) { comm_buckets_ready((comm_buckets *)ctx, lo); }

/* K steps of training; dp = 1: this rank's slice + all-reduce. Returns the
 * model (caller frees) and the per-step (global) losses. */
static void train(jepa_model *m, int dp, int blocking, double *losses) {
    int W = dp ? comm_world() : 1, r = dp ? comm_rank() : 0, B = BG / W, G = dims.grid;
    int maxt = mask_max_tokens(&mc, G);
    jepa_model_init(m, &dims, 5, B, mc.npred, maxt, 1);
    comm_buckets cb;
    CU_ASSERT_FATAL(comm_buckets_init(&cb, m->grads, m->nparams, 4096, blocking) == 0);
    if (dp) {
        m->grad_ready = grads_ready;
        m->grad_ready_ctx = &cb;
        m->sum_doubles = comm_sum_doubles;
        m->world = W;
    }
    jepa_masks mkg, mk;
    mask_alloc(&mkg, BG, G, mc.npred, maxt);
    mask_alloc(&mk, B, G, mc.npred, maxt);
    size_t npix = (size_t)dims.img * dims.img;
    for (int step = 0; step < STEPS; step++) {
        jepa_rng rr;
        rng_init(&rr, rng_key(5, 0x3a5c, (uint64_t)step));
        mask_sample(&mkg, &mc, G, BG, &rr);
        mask_slice(&mk, &mkg, r * B, B);
        m->sg_key = rng_key(5, 0x77, (uint64_t)step); /* SIGReg's directions (gsig) */
        jepa_stats st;
        jepa_forward_backward(m, images + (size_t)r * B * npix, &mk, LOSS_SMOOTH_L1, 1.0f, &st);
        if (dp) comm_buckets_finish(&cb);
        losses[step] = dp ? comm_mean_double(st.loss) : st.loss;
        adamw_update(m, 1e-3, 0.05, 0.9, 0.999, 1e-8, step + 1);
        ema_update(m->target, m->params, m->nenc, 0.99f);
    }
    m->grad_ready = NULL;
    comm_buckets_free(&cb);
    mask_free(&mkg);
    mask_free(&mk);
}

static void test_equivalence(void) {
    jepa_model ref, dp;
    double lref[STEPS], ldp[STEPS];
    train(&ref, 0, 0, lref);
    train(&dp, 1, 0, ldp);
    double worst_loss = 0, worst_p = 0, worst_t = 0;
    for (int k = 0; k < STEPS; k++) worst_loss = fmax(worst_loss, fabs(ldp[k] - lref[k]));
    for (size_t i = 0; i < ref.nparams; i++) worst_p = fmax(worst_p, fabs(dp.params[i] - ref.params[i]));
    for (size_t i = 0; i < ref.nenc; i++) worst_t = fmax(worst_t, fabs(dp.target[i] - ref.target[i]));
    if (comm_rank() == 0)
        printf("\n    W=%d: %d steps, losses %.6f..%.6f, max |loss diff| %.2e, max |param diff| %.2e, "
               "max |target diff| %.2e", comm_world(), STEPS, lref[0], lref[STEPS - 1], worst_loss,
               worst_p, worst_t);
    CU_ASSERT(worst_loss <= 1e-6);
    CU_ASSERT(worst_p <= 1e-5);
    CU_ASSERT(worst_t <= 1e-5);
    CU_ASSERT(lref[STEPS - 1] != lref[0]); /* the steps did move the model */
    char err[512];
    CU_ASSERT(comm_check_replicas(dp.params, dp.nparams, err, sizeof err) == 0);
    CU_ASSERT(comm_check_replicas(dp.target, dp.nenc, err, sizeof err) == 0);
    jepa_model_free(&ref);
    jepa_model_free(&dp);
}

/* ijepa.global_weight: its head is the table's last tensor, so its
 * gradient must be final before the first bucket is handed over */
static void test_equivalence_global(void) {
    dims.gw = 0.8f;
    test_equivalence();
    dims.gw = 0;
}

/* ijepa.global_loss sigreg: the statistic of the global batch (its cos/sin
 * sums all-reduced), each rank's rows their share of the gradient */
static void test_equivalence_global_sigreg(void) {
    dims.gw = 0.8f;
    dims.gsig = 1;
    dims.sg_dirs = 16;
    test_equivalence();
    dims.gw = 0;
    dims.gsig = 0;
}

static void test_blocking_equals_bucketed(void) {
    jepa_model a, b;
    double la[STEPS], lb[STEPS];
    train(&a, 1, 1, la);
    train(&b, 1, 0, lb);
    CU_ASSERT(memcmp(la, lb, sizeof la) == 0);
    CU_ASSERT(memcmp(a.params, b.params, sizeof(float) * a.nparams) == 0);
    jepa_model_free(&a);
    jepa_model_free(&b);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    setup_dims();
    size_t n = (size_t)BG * dims.img * dims.img;
    images = malloc(sizeof(float) * n);
    jepa_rng r;
    rng_init(&r, 11); /* the same images on every rank */
    for (size_t i = 0; i < n; i++) images[i] = (float)rng_normal(&r);
    static const test_case cases[] = {
        {"equivalence", test_equivalence},
        {"equivalence_global", test_equivalence_global},
        {"equivalence_global_sigreg", test_equivalence_global_sigreg},
        {"blocking_equals_bucketed", test_blocking_equals_bucketed},
    };
    int rc = test_main("dp", cases, (int)(sizeof cases / sizeof cases[0]));
    int bad = comm_any_error(rc != 0); /* any rank's failure fails the run */
    free(images);
    comm_finalize();
    return bad >= 0 ? 1 : 0;
}
