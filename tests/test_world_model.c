/* test_world_model.c - the world-model objective (obj_world.c): analytic
 * gradients of the WHOLE loss (teacher forcing + rollout with fed-back
 * predictions + per-time-step SIGReg) w.r.t. EVERY parameter against central
 * differences of an independent double-precision forward written here
 * (dref.c layers, loops over the same tensor table looked up by name), with
 * world.stopgrad_target false and true; that the rollout feeds its
 * predictions back; that window starts are a pure function of (seed, step,
 * global episode index); the BatchNorm's running statistics; create's
 * refusals of data and keys.
 *
 * The reference recomputes every rollout step from scratch (a fresh causal
 * pass over z_0, zhat_1, .., zhat_j for each j), so it shares neither the
 * implementation's pass bookkeeping nor its causal-reuse argument. Its
 * BatchNorm takes the batch statistics of all B*W frames of the step (biased
 * variance, eps WORLD_BN_EPS); its SIGReg is the full-grid Epps-Pulley
 * integral on the directions the step drew (read from the objective after
 * the step; dref_sigreg). The BatchNorm's running statistics (proj.bn.*) are parameters
 * the loss does not depend on: their gradients must be exactly zero. The
 * training BatchNorm also makes the loss invariant to a constant shift of
 * the projector's output, so proj.b and enc.norm.b (shifting every pooled
 * feature alike) have true gradient zero: for a tensor whose numeric
 * gradient is below 1e-5 of the largest tensor gradient (L2 norms) the
 * analytic one must be too (float round-off: measured ~1.4e-7 of it).
 *
 * Bounds (float analytic vs double numeric, h = 1e-6): per tensor
 * ||a - n||_2 <= 1e-4 ||n||_2; per entry |a - n| <= 1e-2 |n| + 1e-3 max|n|;
 * the forward (loss, loss_tf, loss_ro, sigreg, emb_std) within 1e-5
 * relative of the reference. */
#define GRAD_TENSOR_REL 1e-4
#define GRAD_EL_REL 1e-2
#define GRAD_EL_FLOOR 1e-3
#define FWD_REL 1e-5
#define INVARIANT_REL 1e-5
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dref.h"
#include "jepa.h"
#include "testutil.h"
#include "world_fixture.h"

enum { BG = 3, TG = 6 }; /* episodes and frames per episode of the gradient check */

/* ---- the reference forward ---- */
typedef struct {
    const world_obj *o;
    double *P;         /* (nparams) parameters, perturbed by the check */
    double *img;       /* (B*W, 1, img, img) normalised frames of the windows */
    double *act;       /* (B, H, A) scaled actions of the windows */
    float *pos;        /* (N, D) sin-cos positions of the encoder's grid */
    const float *dirs; /* (M, E) the step's SIGReg directions */
    const double *zfix; /* (B*W, E) targets held constant (stopgrad), or NULL: z */
    int B, nofb;        /* nofb: rollout inputs are the true z (a wrong model) */
    double tf, ro, sig, estd;
} wref;

#define PT(name) dref_tensor(m, c->P, name)

/* One sequence of T tokens u (T, E) with actions a (T, A): out (T, E). */
static void ref_pred(const wref *c, const double *u, const double *a, int T, double *out) {
    const world_obj *o = c->o;
    const jepa_model *m = &o->base.m;
    const int E = o->E, Dp = o->Dp, A = o->A;
    double *x = malloc(sizeof(double) * T * Dp), *y = malloc(sizeof(double) * T * Dp);
    double *v = malloc(sizeof(double) * T * Dp);
    dref_linear(x, u, PT("wpred.in.w"), PT("wpred.in.b"), T, E, Dp);
    dref_linear(y, a, PT("wpred.act.w"), PT("wpred.act.b"), T, A, Dp);
    const double *tm = PT("wpred.time");
    for (int t = 0; t < T; t++)
        for (int k = 0; k < Dp; k++) x[t * Dp + k] += y[t * Dp + k] + tm[t * Dp + k];
    for (int l = 0; l < o->d.pdepth; l++) dref_block(x, m, c->P, "wpred", l, 1, T, Dp, o->d.pheads, 1);
    dref_layernorm(x, PT("wpred.norm.w"), PT("wpred.norm.b"), T, Dp);
    dref_linear(v, x, PT("wpred.out.w"), PT("wpred.out.b"), T, Dp, E);
    for (int i = 0; i < T * E; i++) out[i] = u[i] + v[i];
    free(x); free(y); free(v);
}

/* Frame embeddings z (n, E) = BN(proj(encoder(img))) with the batch's
 * statistics; y (n, E) the projector output (for proj_std). */
static void ref_embed(const wref *c, int n, double *y, double *z) {
    const world_obj *o = c->o;
    const jepa_model *m = &o->base.m;
    const int E = o->E, D = o->d.D;
    double *pooled = malloc(sizeof(double) * n * D);
    dref_encode_pooled(pooled, m, c->P, c->img, n, c->pos);
    dref_linear(y, pooled, PT("proj.w"), PT("proj.b"), n, D, E);
    for (int k = 0; k < E; k++) {
        double mu = 0, var = 0;
        for (int r = 0; r < n; r++) mu += y[(size_t)r * E + k] / n;
        for (int r = 0; r < n; r++) var += (y[(size_t)r * E + k] - mu) * (y[(size_t)r * E + k] - mu) / n;
        for (int r = 0; r < n; r++) z[(size_t)r * E + k] = (y[(size_t)r * E + k] - mu) / sqrt(var + WORLD_BN_EPS);
    }
    free(pooled);
}

static double sqd(const double *p, const double *q, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (p[i] - q[i]) * (p[i] - q[i]);
    return s;
}

/* The total loss; fills c->tf, ro, sig, estd. */
static double ref_loss(wref *c) {
    const world_obj *o = c->o;
    const int B = c->B, Wn = o->W, H = o->H, R = o->R, E = o->E, A = o->A;
    double *y = malloc(sizeof(double) * B * Wn * E), *z = malloc(sizeof(double) * B * Wn * E);
    double *zg = malloc(sizeof(double) * B * Wn * E), *u = malloc(sizeof(double) * (R + 2) * E);
    double *out = malloc(sizeof(double) * (H > R + 1 ? H : R + 1) * E);
    ref_embed(c, B * Wn, y, z);
    const double *zt = c->zfix ? c->zfix : z;
    for (int i = 0; i < B; i++) /* (B, W, E) -> (W, B, E): one SIGReg group per time step */
        for (int t = 0; t < Wn; t++) memcpy(zg + ((size_t)t * B + i) * E, z + ((size_t)i * Wn + t) * E, sizeof(double) * E);
    c->sig = dref_sigreg(zg, Wn, B, E, c->dirs, o->sig_dirs, o->sig_knots, o->sig_tmax);
    c->tf = c->ro = 0;
    for (int i = 0; i < B; i++) {
        const double *zi = z + (size_t)i * Wn * E, *ti = zt + (size_t)i * Wn * E;
        const double *ai = c->act + (size_t)i * H * A;
        ref_pred(c, zi, ai, H, out);
        c->tf += sqd(out, ti + E, H * E);
        memcpy(u, zi, sizeof(double) * E);
        for (int j = 1; j <= R + 1; j++) { /* zhat_j from (z_0, zhat_1, .., zhat_{j-1}) */
            ref_pred(c, u, ai, j, out);
            const double *zh = out + (size_t)(j - 1) * E;
            if (j >= 2) c->ro += sqd(zh, ti + (size_t)j * E, E);
            memcpy(u + (size_t)j * E, c->nofb ? zi + (size_t)j * E : zh, sizeof(double) * E);
        }
    }
    c->tf /= (double)B * H * E;
    if (R) c->ro /= (double)B * E * R;
    c->estd = 0; /* proj_std: mean over dims of the std of y */
    for (int k = 0; k < E; k++) {
        double s = 0, s2 = 0;
        for (int r = 0; r < B * Wn; r++) s += y[(size_t)r * E + k];
        s /= B * Wn;
        for (int r = 0; r < B * Wn; r++) s2 += (y[(size_t)r * E + k] - s) * (y[(size_t)r * E + k] - s);
        c->estd += sqrt(s2 / (B * Wn)) / E;
    }
    free(y); free(z); free(zg); free(u); free(out);
    return c->tf + o->ro_weight * c->ro + o->lambda * c->sig;
}

/* Reference inputs for the windows the last step took (starts read from the
 * marker pixels), from the records, in double. */
static void wref_init(wref *c, const world_obj *o, const uint8_t *rec, int B) {
    memset(c, 0, sizeof *c);
    c->o = o;
    c->B = B;
    const jepa_model *m = &o->base.m;
    const int Wn = o->W, H = o->H, A = o->A, fb = (int)o->frame_bytes;
    c->P = malloc(sizeof(double) * m->nparams);
    for (size_t i = 0; i < m->nparams; i++) c->P[i] = m->params[i];
    c->img = malloc(sizeof(double) * B * Wn * fb);
    c->act = malloc(sizeof(double) * B * H * A);
    for (int i = 0; i < B; i++) {
        int s0 = wf_window_start(o, i);
        CU_ASSERT_FATAL(s0 >= 0 && s0 <= o->T - Wn);
        const uint8_t *r = rec + (size_t)i * o->rec_bytes;
        for (int k = 0; k < Wn * fb; k++)
            c->img[(size_t)i * Wn * fb + k] =
                (r[o->off_frames + (size_t)s0 * fb + k] / 255.0 - o->base.mean) / o->base.std;
        for (int k = 0; k < H * A; k++) {
            float v;
            memcpy(&v, r + o->off_actions + ((size_t)s0 * A + k) * 4, 4);
            c->act[(size_t)i * H * A + k] = v * (double)o->act_scale;
        }
    }
    const int G = o->d.img / o->d.patch;
    c->pos = malloc(sizeof(float) * G * G * o->d.D);
    pos_embed_sincos(c->pos, o->d.D, G);
    c->dirs = o->sg.dirs;
}

static void wref_free(wref *c) {
    free(c->P); free(c->img); free(c->act); free(c->pos);
}

static void check_forward(const obj_stats *st, wref *c, double L) {
    const double got[5] = {st->loss, st->stat[1], st->stat[2], st->stat[0], st->stat[3]};
    const double want[5] = {L, c->tf, c->ro, c->sig, c->estd};
    static const char *const nm[5] = {"loss", "loss_tf", "loss_ro", "sigreg", "proj_std"};
    for (int k = 0; k < 5; k++) {
        double rel = fabs(got[k] - want[k]) / fmax(fabs(want[k]), 1e-12);
        if (rel > FWD_REL) printf("\n    FAIL forward %s: float %.9g, double %.9g", nm[k], got[k], want[k]);
        CU_ASSERT(rel <= FWD_REL);
    }
}

/* The whole-loss gradient check of one configuration; returns the worst
 * per-tensor relative error. Leaves the objective's grads in *grads_out
 * (caller frees) when non-NULL. */
static double check_world_grad(int stopgrad, float **grads_out) {
    jepa_spec s;
    wf_spec(&s, BG);
    s.world.stopgrad_target = stopgrad;
    world_obj *o = wf_create(&s, TG, 0, 1, 0.1);
    objective *b = &o->base;
    jepa_model *m = &b->m;
    uint8_t *rec = wf_records(BG, TG, 17);
    obj_stats st;
    b->ops->step(b, rec, 3, &st);
    wref c;
    wref_init(&c, o, rec, BG);
    double *zfix = NULL;
    if (stopgrad) { /* targets: the embeddings at the unperturbed parameters */
        const int n = BG * o->W;
        double *y = malloc(sizeof(double) * n * o->E);
        zfix = malloc(sizeof(double) * n * o->E);
        ref_embed(&c, n, y, zfix);
        free(y);
        c.zfix = zfix;
    }
    double L0 = ref_loss(&c);
    printf("\n    stopgrad_target %d: %zu parameters in %d tensors; loss float %.8f, double %.8f "
           "(tf %.6f ro %.6f sigreg %.6f)", stopgrad, m->nparams, m->ntensors, st.loss, L0, c.tf,
           c.ro, c.sig);
    check_forward(&st, &c, L0);
    CU_ASSERT(c.tf > 0 && c.ro > 0 && c.sig > 0);

    double *gn = malloc(sizeof(double) * m->nparams);
    const double h = 1e-6;
    for (size_t i = 0; i < m->nparams; i++) {
        double v = c.P[i];
        c.P[i] = v + h;
        double lp = ref_loss(&c);
        c.P[i] = v - h;
        double lm = ref_loss(&c);
        c.P[i] = v;
        gn[i] = (lp - lm) / (2 * h);
    }
    double worst_rel = 0, worst_el = 0, gmax = 0, inv_worst = 0;
    const char *worst_name = "";
    int bad = 0, nzero = 0, ninv = 0;
    for (int t = 0; t < m->ntensors; t++) {
        double nn = 0;
        for (size_t k = 0; k < m->tensors[t].numel; k++) nn += gn[m->tensors[t].offset + k] * gn[m->tensors[t].offset + k];
        gmax = fmax(gmax, sqrt(nn));
    }
    for (int t = 0; t < m->ntensors; t++) {
        const jepa_tensor *ts = &m->tensors[t];
        double dn = 0, nn = 0, maxn = 0, worst = 0;
        for (size_t k = 0; k < ts->numel; k++) maxn = fmax(maxn, fabs(gn[ts->offset + k]));
        for (size_t k = 0; k < ts->numel; k++) {
            double a = m->grads[ts->offset + k], n = gn[ts->offset + k];
            dn += (a - n) * (a - n);
            nn += n * n;
            worst = fmax(worst, fabs(a - n) / (GRAD_EL_REL * fabs(n) + GRAD_EL_FLOOR * maxn + 1e-12));
        }
        double rel = sqrt(dn) / (sqrt(nn) + 1e-30);
        if (nn == 0) { /* proj.bn.*: not in the loss, the gradient must be exactly zero */
            int nz = 0;
            for (size_t k = 0; k < ts->numel; k++) nz += m->grads[ts->offset + k] != 0.0f;
            if (nz) printf("\n    FAIL %-20s %d nonzero gradients, numeric all zero", ts->name, nz);
            bad += nz != 0;
            nzero++;
            continue;
        }
        if (sqrt(nn) <= INVARIANT_REL * gmax) { /* the loss is invariant to it (see the top) */
            double an = 0;
            for (size_t k = 0; k < ts->numel; k++) an += (double)m->grads[ts->offset + k] * m->grads[ts->offset + k];
            inv_worst = fmax(inv_worst, sqrt(an) / gmax);
            if (sqrt(an) > INVARIANT_REL * gmax) {
                printf("\n    FAIL %-20s |analytic| %.2e, numeric %.2e, largest tensor gradient %.2e",
                       ts->name, sqrt(an), sqrt(nn), gmax);
                bad++;
            }
            ninv++;
            continue;
        }
        worst_el = fmax(worst_el, worst);
        if (rel > worst_rel) {
            worst_rel = rel;
            worst_name = ts->name;
        }
        if (rel > GRAD_TENSOR_REL || worst > 1) {
            bad++;
            printf("\n    FAIL %-20s rel %.2e worst %.2f |g| %.2e", ts->name, rel, worst, sqrt(nn));
        }
    }
    printf("\n    worst per-tensor relative error %.2e (%s), worst entry err/tol %.3f; %d tensors "
           "outside the loss (zero gradient); %d the loss is invariant to (|analytic| <= %.1e of "
           "the largest tensor gradient %.2e)", worst_rel, worst_name, worst_el, nzero, ninv,
           inv_worst, gmax);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(nzero, 2); /* proj.bn.mean, proj.bn.var */
    CU_ASSERT_EQUAL(ninv, 2);  /* enc.norm.b, proj.b */
    if (grads_out) {
        *grads_out = malloc(sizeof(float) * m->nparams);
        memcpy(*grads_out, m->grads, sizeof(float) * m->nparams);
    }
    free(gn); free(zfix); free(rec);
    wref_free(&c);
    b->ops->destroy(b);
    return worst_rel;
}

static float *g_full, *g_stop; /* the two checks' gradients, for stopgrad_differs */

static void test_grad_full(void) { check_world_grad(0, &g_full); }
static void test_grad_stopgrad(void) { check_world_grad(1, &g_stop); }
/* The encoder's forward and backward in chunks (one frame sequence each),
 * as training's 768-row chunks split its batches; this batch fits one */
static void test_grad_chunks(void) {
    float *g = NULL;
    int old = vit_set_chunk_rows(1);
    check_world_grad(0, &g);
    vit_set_chunk_rows(old);
    free(g);
}

/* stopgrad_target changes the encoder's gradient (targets no longer pull
 * on it) but not the predictor's (the same loss as a function of it). */
static void test_stopgrad_differs(void) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_full);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g_stop);
    jepa_spec s;
    wf_spec(&s, BG);
    world_obj *o = wf_create(&s, TG, 0, 1, 0.0);
    const jepa_model *m = &o->base.m;
    double enc_diff = 0, enc_norm = 0, pred_diff = 0, pred_norm = 0;
    size_t in_w = o->in_w;
    for (size_t i = 0; i < m->nparams; i++) {
        double d = (double)g_full[i] - g_stop[i], n = (double)g_full[i] * g_full[i];
        if (i < in_w) { enc_diff += d * d; enc_norm += n; }
        else { pred_diff += d * d; pred_norm += n; }
    }
    printf("\n    ||g_full - g_stop|| / ||g_full||: encoder+projector %.3e, predictor %.3e",
           sqrt(enc_diff / enc_norm), sqrt(pred_diff / pred_norm));
    CU_ASSERT(sqrt(enc_diff / enc_norm) > 1e-2);
    CU_ASSERT(sqrt(pred_diff / pred_norm) < 1e-6);
    o->base.ops->destroy(&o->base);
    free(g_full); free(g_stop);
    g_full = g_stop = NULL;
}

/* The rollout feeds predictions back: the objective's loss_ro equals the
 * reference with feedback and is far from the same reference fed the true
 * embeddings; rollout 0 gives loss_ro 0 and other gradients; at init, on
 * drifting trajectories, the rollout error exceeds teacher forcing. */
static void test_rollout_feeds_back(void) {
    jepa_spec s;
    wf_spec(&s, BG);
    uint8_t *rec = wf_records(BG, TG, 17);
    world_obj *o2 = wf_create(&s, TG, 0, 1, 0.1);
    obj_stats st2, st0;
    o2->base.ops->step(&o2->base, rec, 3, &st2);
    wref c;
    wref_init(&c, o2, rec, BG);
    ref_loss(&c);
    double ro_fb = c.ro;
    c.nofb = 1;
    ref_loss(&c);
    double ro_true = c.ro;
    printf("\n    loss_ro: objective %.8f, reference fed back %.8f, fed true embeddings %.8f",
           st2.stat[2], ro_fb, ro_true);
    CU_ASSERT(fabs(st2.stat[2] - ro_fb) <= FWD_REL * ro_fb);
    CU_ASSERT(fabs(ro_true - ro_fb) > 1e3 * FWD_REL * ro_fb);
    wref_free(&c);

    s.world.rollout = 0;
    world_obj *o0 = wf_create(&s, TG, 0, 1, 0.1);
    CU_ASSERT_EQUAL_FATAL(o0->base.m.nparams, o2->base.m.nparams);
    o0->base.ops->step(&o0->base, rec, 3, &st0);
    CU_ASSERT_EQUAL(st0.stat[2], 0.0);
    CU_ASSERT_EQUAL(st0.stat[1], st2.stat[1]); /* same windows, same teacher forcing */
    CU_ASSERT_EQUAL(st0.stat[0], st2.stat[0]);
    CU_ASSERT(fabs(st0.loss - (st0.stat[1] + (float)s.sigreg.weight * st0.stat[0])) < 1e-12);
    double dd = 0, nn = 0;
    for (size_t i = 0; i < o0->base.m.nparams; i++) {
        double d = (double)o2->base.m.grads[i] - o0->base.m.grads[i];
        dd += d * d;
        nn += (double)o2->base.m.grads[i] * o2->base.m.grads[i];
    }
    printf("\n    ||g(rollout 2) - g(rollout 0)|| / ||g(rollout 2)|| = %.3e", sqrt(dd / nn));
    CU_ASSERT(sqrt(dd / nn) > 1e-2);
    o0->base.ops->destroy(&o0->base);
    o2->base.ops->destroy(&o2->base);

    /* at init (no perturbation): a 2- and 3-step drift costs more than 1 step */
    s.world.rollout = 2;
    world_obj *oi = wf_create(&s, TG, 0, 1, 0.0);
    double tf = 0, ro = 0;
    for (int step = 0; step < 4; step++) {
        obj_stats st;
        oi->base.ops->step(&oi->base, rec, step, &st);
        tf += st.stat[1];
        ro += st.stat[2];
    }
    printf("\n    at init, 4 steps: loss_tf %.5f, loss_ro %.5f (ratio %.2f)", tf / 4, ro / 4, ro / tf);
    CU_ASSERT(ro > 1.2 * tf);
    oi->base.ops->destroy(&oi->base);
    free(rec);
}

/* Window starts: the same (seed, step, global index) gives the same start
 * whatever the rank layout, the record's content and the order of steps;
 * over many steps every start in [0, T - W] occurs; another seed differs. */
static void test_window_starts(void) {
    enum { T = 10, NB = 4, STEPS = 40 };
    jepa_spec s1, s2, s4;
    wf_spec(&s1, NB);
    wf_spec(&s2, NB / 2);
    wf_spec(&s4, 1);
    uint8_t *rec = wf_records(NB, T, 3), *other = wf_records(NB, T, 4);
    world_obj *ref = wf_create(&s1, T, 0, 1, 0), *half[2], *quarter = wf_create(&s4, T, 3, 4, 0);
    for (int r = 0; r < 2; r++) half[r] = wf_create(&s2, T, r, 2, 0);
    const int nstart = T - ref->W + 1;
    int seen[16] = {0}, starts[STEPS][NB], mismatch = 0;
    size_t rb = ref->rec_bytes;
    for (int step = 0; step < STEPS; step++) {
        ref->base.ops->step(&ref->base, rec, step, NULL);
        for (int i = 0; i < NB; i++) {
            starts[step][i] = wf_window_start(ref, i);
            CU_ASSERT_FATAL(starts[step][i] >= 0 && starts[step][i] < nstart);
            seen[starts[step][i]]++;
        }
        for (int r = 0; r < 2; r++) {
            half[r]->base.ops->step(&half[r]->base, rec + (size_t)r * 2 * rb, step, NULL);
            for (int i = 0; i < 2; i++) mismatch += wf_window_start(half[r], i) != starts[step][2 * r + i];
        }
        /* global index 3 holding another episode's bytes: the start stays index 3's */
        quarter->base.ops->step(&quarter->base, other + rb, step, NULL);
        mismatch += wf_window_start(quarter, 0) != starts[step][3];
    }
    CU_ASSERT_EQUAL(mismatch, 0);
    for (int step = STEPS - 1; step >= 0; step -= 7) { /* no hidden state: any order */
        ref->base.ops->step(&ref->base, other, step, NULL);
        for (int i = 0; i < NB; i++) mismatch += wf_window_start(ref, i) != starts[step][i];
    }
    CU_ASSERT_EQUAL(mismatch, 0);
    int all = 1;
    printf("\n    starts over %d draws:", STEPS * NB);
    for (int k = 0; k < nstart; k++) {
        printf(" %d", seen[k]);
        all &= seen[k] > 0;
    }
    CU_ASSERT(all);
    s1.seed = 6;
    world_obj *oseed = wf_create(&s1, T, 0, 1, 0);
    int differ = 0;
    for (int step = 0; step < 8; step++) {
        oseed->base.ops->step(&oseed->base, rec, step, NULL);
        for (int i = 0; i < NB; i++) differ += wf_window_start(oseed, i) != starts[step][i];
    }
    printf("; seed 6 vs 5: %d of %d starts differ", differ, 8 * NB);
    CU_ASSERT(differ > 8);
    oseed->base.ops->destroy(&oseed->base);
    ref->base.ops->destroy(&ref->base);
    quarter->base.ops->destroy(&quarter->base);
    for (int r = 0; r < 2; r++) half[r]->base.ops->destroy(&half[r]->base);
    free(rec);
    free(other);
}

/* The BatchNorm's running statistics: step 0 replaces the init, then the
 * plain average of the steps so far (momentum 1/(step+1) until it reaches
 * WORLD_BN_MOMENTUM); with them equal to a step's batch statistics, the
 * evaluation's embedding (world_embed) of that step's frames is the
 * training embedding. */
static void test_running_stats(void) {
    jepa_spec s;
    wf_spec(&s, BG);
    world_obj *o = wf_create(&s, TG, 0, 1, 0.1);
    objective *b = &o->base;
    const int E = o->E, n = BG * o->W;
    uint8_t *rec = wf_records(BG, TG, 17);
    const float *rm = b->m.params + o->bn_mean, *rv = b->m.params + o->bn_var;
    double amu[16] = {0}, avar[16] = {0}, worst = 0;
    sched_values sv = {1e-3, 0.04, 0};
    JEPA_ASSERT(E <= 16);
    for (int step = 0; step < 5; step++) {
        b->ops->step(b, rec, step, NULL);
        for (int c = 0; c < E; c++) {
            amu[c] += o->mu[c] / 5.0;
            avar[c] += o->var[c] / 5.0;
        }
        b->ops->after_update(b, &sv); /* no optimizer step: the same model each time */
        if (step == 0) {
            CU_ASSERT(memcmp(rm, o->mu, sizeof(float) * E) == 0);
            CU_ASSERT(memcmp(rv, o->var, sizeof(float) * E) == 0);
            float *z = malloc(sizeof(float) * n * E);
            world_embed(o, b->m.params, o->frames, n, z);
            for (int i = 0; i < n * E; i++) worst = fmax(worst, fabs(z[i] - o->z[i]));
            free(z);
        }
    }
    double dm = 0, dv = 0;
    for (int c = 0; c < E; c++) {
        dm = fmax(dm, fabs(rm[c] - amu[c]) / sqrt(avar[c]));
        dv = fmax(dv, fabs(rv[c] - avar[c]) / avar[c]);
    }
    printf("\n    eval vs training embedding after step 0: max |diff| %.2e; running stats after 5 "
           "steps vs their average: mean %.2e (in stds), var %.2e (relative)", worst, dm, dv);
    CU_ASSERT(worst < 1e-4);
    CU_ASSERT(dm < 1e-5 && dv < 1e-5);
    b->ops->destroy(b);
    free(rec);
}

/* create refuses data sets that are not trajectories of the model's frames,
 * and a rollout longer than the history allows, in one line naming them. */
static void expect_refusal(const jepa_spec *s, const shard_schema *sc, const char *w1, const char *w2) {
    objective *b = NULL;
    char err[512] = "";
    int rc = objective_world.create(&b, s, sc, 0, 1, err, sizeof err);
    CU_ASSERT(rc == -1);
    CU_ASSERT(strstr(err, w1) != NULL);
    CU_ASSERT(strstr(err, w2) != NULL);
    CU_ASSERT(strchr(err, '\n') == NULL);
    if (rc == -1 && (!strstr(err, w1) || !strstr(err, w2))) printf("\n    unexpected error: %s", err);
    if (rc == 0) b->ops->destroy(b);
}

static void test_create_refusals(void) {
    jepa_spec s;
    wf_spec(&s, 2);
    snprintf(s.data.train, sizeof s.data.train, "/some/world-data");
    shard_schema sc;
    wf_schema(&sc, TG);
    sc.fields[1].name[0] = 'b'; /* "bctions" */
    expect_refusal(&s, &sc, "/some/world-data", "'actions'");
    wf_schema(&sc, TG);
    sc.fields[0].dtype = SHARD_DTYPE_F32;
    expect_refusal(&s, &sc, "/some/world-data", "'frames'");
    wf_schema(&sc, TG);
    sc.fields[0].shape[2] = sc.fields[0].shape[3] = 16;
    expect_refusal(&s, &sc, "/some/world-data", "1x16x16");
    wf_schema(&sc, TG);
    sc.fields[1].shape[0] = TG;
    expect_refusal(&s, &sc, "/some/world-data", "actions");
    shard_schema img;
    memset(&img, 0, sizeof img);
    img.height = img.width = WF_IMG;
    img.channels = 1;
    img.dtype = SHARD_DTYPE_U8;
    img.label = SHARD_LABEL_U8;
    img.num_classes = 10;
    expect_refusal(&s, &img, "/some/world-data", "jepa-world gen");
    wf_schema(&sc, 3); /* 3 frames, windows of history + 1 = 4 */
    expect_refusal(&s, &sc, "world.history", "/some/world-data");
    wf_schema(&sc, TG);
    s.world.rollout = 3;
    expect_refusal(&s, &sc, "world.rollout", "3");
}

/* world_eval.c's test hook: the position probe's ridge fit and its figures. */
int world_eval_ridge(const float *z, const float *y, int rows, int E, int S, double alpha, double *w,
                     double *r2, double *dist);

/* The evaluation's position probe (pos_r2, pos_err and their pred4 and
 * random-init forms, the figures a world sweep is ranked by) against the
 * rule written out here in double: w (E+1, S) solving (X'X + alpha n I') w
 * = X'Y for X = [z, 1], the bias not penalised (Gauss-Jordan on the normal
 * equations), R^2 = 1 - SS_res / SS_tot over all coordinates, and the mean
 * Euclidean distance of prediction to truth. Positions are a noisy linear
 * map of the features; a strong penalty leaves the bias at the mean. */
static void test_position_probe(void) {
    enum { N = 300, E = 5, S = 2, P = E + 1 };
    static float z[N * E], y[N * S];
    jepa_rng r;
    rng_init(&r, 21);
    for (int i = 0; i < N * E; i++) z[i] = (float)(0.5 + rng_normal(&r));
    for (int i = 0; i < N; i++)
        for (int s = 0; s < S; s++) {
            double v = 0.3 + 0.2 * s + 0.05 * rng_normal(&r);
            for (int c = 0; c < E; c++) v += (0.1 * (c + 1) * (s ? -1 : 1)) * z[i * E + c];
            y[i * S + s] = (float)v;
        }
    const double alphas[] = {1e-4, 0.3, 1e3};
    for (int k = 0; k < 3; k++) {
        double A[P][P + S], w[P * S], r2 = NAN, dist = NAN;
        memset(A, 0, sizeof A);
        for (int i = 0; i < N; i++)
            for (int a = 0; a < P; a++) {
                double xa = a < E ? z[i * E + a] : 1.0;
                for (int b = 0; b < P; b++) A[a][b] += xa * (b < E ? z[i * E + b] : 1.0);
                for (int s = 0; s < S; s++) A[a][P + s] += xa * y[i * S + s];
            }
        for (int a = 0; a < E; a++) A[a][a] += alphas[k] * N;
        for (int c = 0; c < P; c++) { /* Gauss-Jordan, partial pivoting */
            int best = c;
            for (int q = c + 1; q < P; q++) best = fabs(A[q][c]) > fabs(A[best][c]) ? q : best;
            for (int j = 0; j < P + S; j++) {
                double t = A[c][j];
                A[c][j] = A[best][j];
                A[best][j] = t;
            }
            for (int q = 0; q < P; q++) {
                double f = q == c ? 0.0 : A[q][c] / A[c][c];
                for (int j = 0; j < P + S; j++) A[q][j] -= f * A[c][j];
            }
        }
        double ss_res = 0, ss_tot = 0, dsum = 0, mu[S] = {0};
        for (int i = 0; i < N; i++)
            for (int s = 0; s < S; s++) mu[s] += y[i * S + s] / (double)N;
        for (int i = 0; i < N; i++) {
            double d2 = 0;
            for (int s = 0; s < S; s++) {
                double pr = A[E][P + s] / A[E][E];
                for (int c = 0; c < E; c++) pr += A[c][P + s] / A[c][c] * z[i * E + c];
                double e = pr - y[i * S + s];
                d2 += e * e;
                ss_tot += (y[i * S + s] - mu[s]) * (y[i * S + s] - mu[s]);
            }
            ss_res += d2;
            dsum += sqrt(d2);
        }
        double want_r2 = 1 - ss_res / ss_tot, want_dist = dsum / N, werr = 0;
        CU_ASSERT_FATAL(world_eval_ridge(z, y, N, E, S, alphas[k], w, &r2, &dist) == 0);
        for (int s = 0; s < S; s++)
            for (int c = 0; c < P; c++) werr = fmax(werr, fabs(w[s * P + c] - A[c][P + s] / A[c][c]));
        printf("\n    alpha %g: R^2 %.6f (want %.6f), distance %.6f (want %.6f), max |w - w_ref| %.1e, "
               "bias %.4f %.4f (means %.4f %.4f)", alphas[k], r2, want_r2, dist, want_dist, werr,
               w[E], w[P + E], mu[0], mu[1]);
        CU_ASSERT(werr < 1e-8);
        CU_ASSERT(fabs(r2 - want_r2) < 1e-9);
        CU_ASSERT(fabs(dist - want_dist) < 1e-9);
        if (k == 0) CU_ASSERT(r2 > 0.95 && dist < 0.1); /* the rule holds: a near fit */
        if (k == 2) /* every weight penalised to ~0: the bias is the mean, R^2 ~ 0 */
            CU_ASSERT(fabs(w[E] - mu[0]) < 0.01 && fabs(w[P + E] - mu[1]) < 0.01 && fabs(r2) < 0.05);
    }
}

/* world_eval.c's test hook: the rollouts behind latent_err_hK / still_err_hK. */
int world_eval_rollouts(world_obj *o, const float *W, int n, const float *z, const float *state,
                        const float *act, double *lat, double *still, float *z4, float *s4);

/* The evaluation's rollout errors against docs/world.md's rule written out
 * here in double: from each start t0 = H-1, H-1+8, ... (while t0 + 8 < T) of
 * each episode, a window of the H true embeddings and actions ending at t0;
 * 8 predictions (ref_pred, the reference predictor), each appended to the
 * window with the next true action as the oldest token leaves;
 * latent_err_hK = mean over (episode, start) of (1/E) ||zhat_{t0+K} -
 * z_{t0+K}||^2, still_err_hK the same for zhat = z_{t0}; the 4-step
 * predictions kept with the true states at t0 + 4. More rollouts (5 x 3)
 * than the passes hold (maxB 4): the batches are chunked. */
static void test_rollout_errors(void) {
    enum { N = 5, T = 27, NB = 4, HM = 8, NHZ = 4 };
    static const int hz[NHZ] = {1, 2, 4, 8};
    jepa_spec s;
    wf_spec(&s, NB);
    world_obj *o = wf_create(&s, T, 0, 1, 0.1);
    const int E = o->E, A = o->A, S = o->S, H = o->H;
    CU_ASSERT_FATAL(o->maxB < N * 3 && H >= 2 && H - 1 + 2 * HM < T);
    float *z = malloc(sizeof(float) * N * T * E), *st = malloc(sizeof(float) * N * T * S);
    float *act = malloc(sizeof(float) * N * (T - 1) * A);
    float *z4 = malloc(sizeof(float) * N * 64 * E), *s4 = malloc(sizeof(float) * N * 64 * S);
    jepa_rng r;
    rng_init(&r, 33);
    for (int e = 0; e < N; e++) /* embeddings that drift with time, as a moving agent's */
        for (int t = 0; t < T; t++)
            for (int c = 0; c < E; c++)
                z[((size_t)e * T + t) * E + c] = (float)(0.15 * t * (c % 3 - 1) + 0.3 * rng_normal(&r));
    for (int i = 0; i < N * T * S; i++) st[i] = (float)rng_uniform(&r);
    for (int i = 0; i < N * (T - 1) * A; i++) act[i] = (float)(1.2 * rng_uniform(&r) - 0.6);
    double lat[NHZ], still[NHZ], wlat[NHZ] = {0}, wstill[NHZ] = {0}, z4err = 0;
    int n4 = world_eval_rollouts(o, o->base.m.params, N, z, st, act, lat, still, z4, s4);

    wref c = {.o = o, .B = 1};
    c.P = malloc(sizeof(double) * o->base.m.nparams);
    for (size_t i = 0; i < o->base.m.nparams; i++) c.P[i] = o->base.m.params[i];
    double *u = malloc(sizeof(double) * H * E), *a = malloc(sizeof(double) * H * A);
    double *out = malloc(sizeof(double) * H * E);
    int cnt = 0, s4bad = 0;
    for (int e = 0; e < N; e++)
        for (int t0 = H - 1; t0 + HM < T; t0 += HM, cnt++) {
            for (int k = 0; k < H; k++) {
                int t = t0 - H + 1 + k;
                for (int i = 0; i < E; i++) u[k * E + i] = z[((size_t)e * T + t) * E + i];
                for (int i = 0; i < A; i++) a[k * A + i] = act[((size_t)e * (T - 1) + t) * A + i];
            }
            const float *zt0 = z + ((size_t)e * T + t0) * E;
            for (int h = 1; h <= HM; h++) {
                ref_pred(&c, u, a, H, out);
                const double *zh = out + (size_t)(H - 1) * E;
                const float *zt = z + ((size_t)e * T + t0 + h) * E;
                for (int k = 0; k < NHZ; k++)
                    if (hz[k] == h) {
                        double dl = 0, ds = 0;
                        for (int i = 0; i < E; i++) {
                            dl += (zh[i] - zt[i]) * (zh[i] - zt[i]);
                            ds += ((double)zt0[i] - zt[i]) * ((double)zt0[i] - zt[i]);
                        }
                        wlat[k] += dl / E;
                        wstill[k] += ds / E;
                    }
                if (h == 4 && cnt < n4) {
                    for (int i = 0; i < E; i++) z4err = fmax(z4err, fabs(z4[(size_t)cnt * E + i] - zh[i]));
                    for (int i = 0; i < S; i++) s4bad += s4[(size_t)cnt * S + i] != st[((size_t)e * T + t0 + 4) * S + i];
                }
                memmove(u, u + E, sizeof(double) * (H - 1) * E); /* slide: prediction in */
                memcpy(u + (size_t)(H - 1) * E, zh, sizeof(double) * E);
                memmove(a, a + A, sizeof(double) * (H - 1) * A);
                if (h < HM)
                    for (int i = 0; i < A; i++) a[(H - 1) * A + i] = act[((size_t)e * (T - 1) + t0 + h) * A + i];
            }
        }
    CU_ASSERT_EQUAL(n4, cnt);
    CU_ASSERT(cnt == N * 3 && z4err < 1e-4 && s4bad == 0);
    printf("\n    %d rollouts, 4-step predictions max |float - double| %.1e", cnt, z4err);
    for (int k = 0; k < NHZ; k++) {
        wlat[k] /= cnt;
        wstill[k] /= cnt;
        double rl = fabs(lat[k] - wlat[k]) / wlat[k], rs = fabs(still[k] - wstill[k]) / wstill[k];
        printf("\n    h%d: latent_err %.6f (double %.6f), still_err %.6f (double %.6f)", hz[k], lat[k],
               wlat[k], still[k], wstill[k]);
        CU_ASSERT(rl < 1e-4 && rs < 1e-6);
    }
    CU_ASSERT(wstill[3] > 2 * wstill[0]); /* the drift: the still guess worsens with the horizon */
    free(c.P); free(u); free(a); free(out);
    free(z); free(st); free(act); free(z4); free(s4);
    o->base.ops->destroy(&o->base);
}

int main(int argc, char **argv) {
    (void)argc;
    blas_core_select(argv); /* the BLAS kernels training runs (blas_core.c) */
    static const test_case cases[] = {
        {"grad_full", test_grad_full},
        {"grad_stopgrad", test_grad_stopgrad},
        {"grad_chunks", test_grad_chunks},
        {"stopgrad_differs", test_stopgrad_differs},
        {"rollout_feeds_back", test_rollout_feeds_back},
        {"window_starts", test_window_starts},
        {"running_stats", test_running_stats},
        {"create_refusals", test_create_refusals},
        {"position_probe", test_position_probe},
        {"rollout_errors", test_rollout_errors},
    };
    return test_main("world_model", cases, (int)(sizeof cases / sizeof cases[0]));
}
