/* world_eval.c - what a world model knows, measured without planning:
 *   (a) latent prediction error at horizons 1, 2, 4, 8: autoregressive
 *       rollouts with the true actions from H true frames, against the
 *       "nothing moves" guess zhat_{t+h} = z_t (latent_err_hK, still_err_hK:
 *       mean over dims of the squared error);
 *   (b) a linear probe (ridge regression, penalty chosen on held-out training
 *       episodes) from the frame embedding to the agent's true position:
 *       R^2 and mean distance on the test episodes, for the trained and the
 *       randomly initialised encoder (pos_r2, pos_err, pos_r2_random, ...);
 *   (c) the same probe applied to the embedding predicted 4 steps ahead
 *       (pred4_pos_r2, pred4_pos_err).
 * The test episodes (data.test) are only ever scored. Rank 0 evaluates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "obj_world.h"

#define EVAL_TRAIN_EPISODES 600
#define EVAL_TEST_EPISODES 400

/* LAPACK's Cholesky solve (libopenblas exports it; no lapacke.h here) */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, int *info, size_t uplo_len);

typedef struct {
    int n, T;      /* episodes, frames each */
    float *z;      /* (n*T, E) frame embeddings */
    float *state;  /* (n*T, S) true states */
    float *act;    /* (n*(T-1), A) actions, scaled as the predictor sees them */
} episodes;

static void episodes_free(episodes *e) {
    jepa_free(e->z);
    jepa_free(e->state);
    jepa_free(e->act);
    memset(e, 0, sizeof *e);
}

/* Embeds the first (up to) max episodes of dir under weights W. */
static int episodes_load(world_obj *o, const float *W, const char *dir, int max, episodes *e,
                         char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    shard_dataset *ds = NULL;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    const shard_schema *sc = shard_dataset_schema(ds);
    if (shard_schema_record_bytes(sc) != o->rec_bytes) {
        snprintf(err, errlen, "%s: records of %zu bytes, the training set's are %zu", dir,
                 shard_schema_record_bytes(sc), o->rec_bytes);
        shard_dataset_close(ds);
        return -1;
    }
    uint64_t n = shard_dataset_records(ds);
    e->n = (int)(n < (uint64_t)max ? n : (uint64_t)max);
    e->T = o->T;
    const int T = o->T, E = o->E, per = o->enc.maxS / T > 0 ? o->enc.maxS / T : 1;
    const int chunk = o->enc.maxS; /* frames the encoder takes at once: may be < T */
    float *fr = JEPA_MALLOC(sizeof(float) * per * T * o->frame_bytes); /* per episodes' frames */
    e->z = JEPA_MALLOC(sizeof(float) * e->n * T * E);
    e->state = JEPA_MALLOC(sizeof(float) * e->n * T * o->S);
    e->act = JEPA_MALLOC(sizeof(float) * e->n * (T - 1) * o->A);
    uint8_t *rec = JEPA_MALLOC(o->rec_bytes);
    float sa = 1.0f / (255.0f * o->base.std), sb = -o->base.mean / o->base.std;
    int rc = 0;
    for (int i0 = 0; rc == 0 && i0 < e->n; i0 += per) {
        int k = e->n - i0 < per ? e->n - i0 : per;
        for (int j = 0; rc == 0 && j < k; j++) {
            int i = i0 + j;
            rc = shard_dataset_read_record(ds, (uint64_t)i, rec, NULL, NULL, 0, err, errlen);
            const uint8_t *f = rec + o->off_frames;
            float *dst = fr + (size_t)j * T * o->frame_bytes;
            for (size_t q = 0; q < (size_t)T * o->frame_bytes; q++) dst[q] = f[q] * sa + sb;
            memcpy(e->state + (size_t)i * T * o->S, rec + o->off_state, sizeof(float) * T * o->S);
            float *a = e->act + (size_t)i * (T - 1) * o->A;
            memcpy(a, rec + o->off_actions, sizeof(float) * (T - 1) * o->A);
            for (int q = 0; q < (T - 1) * o->A; q++) a[q] *= o->act_scale;
        }
        for (int q = 0; rc == 0 && q < k * T; q += chunk)
            world_embed(o, W, fr + (size_t)q * o->frame_bytes, k * T - q < chunk ? k * T - q : chunk,
                        e->z + ((size_t)i0 * T + q) * E);
    }
    jepa_free(fr);
    jepa_free(rec);
    shard_dataset_close(ds);
    if (rc) episodes_free(e);
    return rc;
}

/* ------------------------------------------------------------ ridge probe */
/* Solves (X'X + alpha n I') w = X'Y for X = [z, 1] (rows lo..hi of e), the
 * bias unpenalised; w (E+1, 2). 0, or -1 if the system is singular. */
static int ridge_fit(const float *z, const float *y, int rows, int E, int S, double alpha,
                     double *w) {
    const int P = E + 1;
    double *A = JEPA_MALLOC(sizeof(double) * P * P);
    memset(w, 0, sizeof(double) * P * S);
    for (int r = 0; r < rows; r++) {
        const float *x = z + (size_t)r * E;
        for (int i = 0; i < P; i++) {
            double xi = i < E ? x[i] : 1.0;
            for (int j = 0; j <= i; j++) A[(size_t)i * P + j] += xi * (j < E ? x[j] : 1.0);
            for (int s = 0; s < S; s++) w[(size_t)s * P + i] += xi * y[(size_t)r * S + s];
        }
    }
    for (int i = 0; i < E; i++) A[(size_t)i * P + i] += alpha * rows;
    int info = 0, n = P, nrhs = S;
    /* row-major lower triangle = column-major upper: LAPACK reads it as "U" */
    dposv_("U", &n, &nrhs, A, &n, w, &n, &info, 1);
    jepa_free(A);
    return info == 0 ? 0 : -1;
}

/* R^2 (1 - SS_res / SS_tot over all S coordinates) and mean distance. */
static void ridge_score(const float *z, const float *y, int rows, int E, int S, const double *w,
                        double *r2, double *dist) {
    double mu[WORLD_MAX_S] = {0}, ss_res = 0.0, ss_tot = 0.0, dsum = 0.0;
    for (int r = 0; r < rows; r++)
        for (int s = 0; s < S; s++) mu[s] += y[(size_t)r * S + s] / (double)rows;
    for (int r = 0; r < rows; r++) {
        double d2 = 0.0;
        for (int s = 0; s < S; s++) {
            const double *ws = w + (size_t)s * (E + 1);
            double p = ws[E];
            for (int c = 0; c < E; c++) p += ws[c] * z[(size_t)r * E + c];
            double t = y[(size_t)r * S + s];
            ss_res += (p - t) * (p - t);
            ss_tot += (t - mu[s]) * (t - mu[s]);
            d2 += (p - t) * (p - t);
        }
        dsum += sqrt(d2);
    }
    *r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
    *dist = dsum / rows;
}

/* Test hook (no header): ridge_fit then ridge_score on the same rows, so a
 * test can hold the position probe's solve and figures to its own. */
int world_eval_ridge(const float *z, const float *y, int rows, int E, int S, double alpha, double *w,
                     double *r2, double *dist);
int world_eval_ridge(const float *z, const float *y, int rows, int E, int S, double alpha, double *w,
                     double *r2, double *dist) {
    if (ridge_fit(z, y, rows, E, S, alpha, w)) return -1;
    ridge_score(z, y, rows, E, S, w, r2, dist);
    return 0;
}

/* Fits the position probe on tr (penalty chosen on its last 20% of
 * episodes, then refit on all), scores te. w: (E+1, S). */
static void position_probe(const world_obj *o, const episodes *tr, const episodes *te, double *w,
                           double *r2, double *dist) {
    static const double alphas[] = {1e-6, 1e-4, 1e-3, 1e-2, 1e-1};
    const int E = o->E, S = o->S, T = o->T;
    int nfit = (tr->n * 4 / 5) * T, nval = tr->n * T - nfit;
    double best = -1e30, best_a = alphas[0];
    for (size_t i = 0; i < sizeof alphas / sizeof alphas[0] && nfit > 0 && nval > 0; i++) {
        double vr2, vd;
        if (ridge_fit(tr->z, tr->state, nfit, E, S, alphas[i], w)) continue;
        ridge_score(tr->z + (size_t)nfit * E, tr->state + (size_t)nfit * S, nval, E, S, w, &vr2, &vd);
        if (vr2 > best) {
            best = vr2;
            best_a = alphas[i];
        }
    }
    if (ridge_fit(tr->z, tr->state, tr->n * T, E, S, best_a, w)) memset(w, 0, sizeof(double) * (E + 1) * S);
    ridge_score(te->z, te->state, te->n * T, E, S, w, r2, dist);
}

/* ------------------------------------------------------------ rollouts */
static const int horizons[] = {1, 2, 4, 8};
#define NH 4
#define HMAX 8

/* Autoregressive rollouts on the test episodes: from each start t0 (every
 * 8 frames from H-1 on, while t0 + 8 < T) the last H true embeddings and
 * actions, then 8 steps each feeding its prediction back (window sliding,
 * true actions). Accumulates the squared errors per horizon and keeps the
 * 4-step predictions with their true states for the probe. */
static void rollouts(world_obj *o, const float *W, const episodes *te, double *lat, double *still,
                     float *z4, float *s4, int *n4) {
    const int H = o->H, E = o->E, A = o->A, T = o->T, S = o->S;
    wpass *p = &o->pp[0]; /* T = H tokens, up to maxB sequences */
    int starts[64], ns = 0;
    for (int t0 = H - 1; t0 + HMAX < T && ns < 64; t0 += HMAX) starts[ns++] = t0;
    int total = te->n * ns, cnt = 0;
    float *cur = JEPA_MALLOC(sizeof(float) * o->maxB * E);
    *n4 = 0;
    for (int q0 = 0; q0 < total; q0 += o->maxB) {
        int B = total - q0 < o->maxB ? total - q0 : o->maxB;
        for (int j = 0; j < B; j++) { /* fill the window ending at t0 */
            int e = (q0 + j) / ns, t0 = starts[(q0 + j) % ns];
            for (int k = 0; k < H; k++) {
                int t = t0 - H + 1 + k;
                memcpy(p->u + ((size_t)j * H + k) * E, te->z + ((size_t)e * T + t) * E, sizeof(float) * E);
                memcpy(p->a + ((size_t)j * H + k) * A, te->act + ((size_t)e * (T - 1) + t) * A,
                       sizeof(float) * A);
            }
        }
        for (int h = 1; h <= HMAX; h++) {
            world_pred_forward(o, W, p, B);
            for (int j = 0; j < B; j++) {
                int e = (q0 + j) / ns, t0 = starts[(q0 + j) % ns], t = t0 + h;
                const float *zh = p->out + ((size_t)j * H + H - 1) * E;
                memcpy(cur + (size_t)j * E, zh, sizeof(float) * E);
                for (int k = 0; k < NH; k++) {
                    if (horizons[k] != h) continue;
                    const float *zt = te->z + ((size_t)e * T + t) * E, *z0 = te->z + ((size_t)e * T + t0) * E;
                    for (int c = 0; c < E; c++) {
                        lat[k] += ((double)zh[c] - zt[c]) * ((double)zh[c] - zt[c]) / E;
                        still[k] += ((double)z0[c] - zt[c]) * ((double)z0[c] - zt[c]) / E;
                    }
                }
                if (h == 4) {
                    memcpy(z4 + (size_t)*n4 * E, zh, sizeof(float) * E);
                    memcpy(s4 + (size_t)*n4 * S, te->state + ((size_t)e * T + t) * S, sizeof(float) * S);
                    (*n4)++;
                }
            }
            if (h == HMAX) break;
            for (int j = 0; j < B; j++) { /* slide: drop the oldest, append the prediction */
                int e = (q0 + j) / ns, t = starts[(q0 + j) % ns] + h;
                float *u = p->u + (size_t)j * H * E, *a = p->a + (size_t)j * H * A;
                memmove(u, u + E, sizeof(float) * (H - 1) * E);
                memcpy(u + (size_t)(H - 1) * E, cur + (size_t)j * E, sizeof(float) * E);
                memmove(a, a + A, sizeof(float) * (H - 1) * A);
                memcpy(a + (size_t)(H - 1) * A, te->act + ((size_t)e * (T - 1) + t) * A, sizeof(float) * A);
            }
        }
        cnt += B;
    }
    for (int k = 0; k < NH; k++) {
        lat[k] /= cnt > 0 ? cnt : 1;
        still[k] /= cnt > 0 ? cnt : 1;
    }
    jepa_free(cur);
}

/* Test hook (no header): rollouts over n in-memory test episodes of o->T
 * frames (z (n*T, E), state (n*T, S), act (n*(T-1), A) as the predictor
 * sees them), so a test can hold latent_err_hK / still_err_hK and the
 * 4-step predictions to its own. z4 (n*64, E), s4 (n*64, S); returns n4. */
int world_eval_rollouts(world_obj *o, const float *W, int n, const float *z, const float *state,
                        const float *act, double *lat, double *still, float *z4, float *s4);
int world_eval_rollouts(world_obj *o, const float *W, int n, const float *z, const float *state,
                        const float *act, double *lat, double *still, float *z4, float *s4) {
    episodes te = {.n = n, .T = o->T, .z = (float *)z, .state = (float *)state, .act = (float *)act};
    int n4 = 0;
    for (int k = 0; k < NH; k++) lat[k] = still[k] = 0;
    rollouts(o, W, &te, lat, still, z4, s4, &n4);
    return n4;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The position probe on a randomly initialised model of the same seed
 * (pos_r2_random, pos_err_random) into *r2, *dist: the initialisation, the
 * data and the code are those of every evaluation of the process, so the
 * first one's figures are every later one's (eval.every_steps, then the
 * closing evaluation; re-encoding both sets took as long as the rest of an
 * evaluation), kept in o->random_*. w: (E+1, S) scratch. 0, or -1 + err. */
static int random_probe(world_obj *o, const jepa_spec *s, double *w, double *r2, double *dist, char *err,
                        size_t errlen) {
    jepa_model *m = &o->base.m;
    episodes tr, te;
    float *keep = JEPA_MALLOC(sizeof(float) * m->nparams);
    memcpy(keep, m->params, sizeof(float) * m->nparams);
    world_init_params(o);
    int rc = episodes_load(o, m->params, s->data.train, EVAL_TRAIN_EPISODES, &tr, err, errlen);
    if (rc == 0) {
        rc = episodes_load(o, m->params, s->data.test, EVAL_TEST_EPISODES, &te, err, errlen);
        if (rc == 0) {
            position_probe(o, &tr, &te, w, r2, dist);
            episodes_free(&te);
        }
        episodes_free(&tr);
    }
    memcpy(m->params, keep, sizeof(float) * m->nparams);
    jepa_free(keep);
    return rc;
}

int world_evaluate(objective *b, const jepa_spec *s, obj_eval *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (comm_rank() != 0) return 0;
    world_obj *o = (world_obj *)b;
    jepa_model *m = &b->m;
    const int E = o->E, S = o->S;
    JEPA_ASSERT(S <= WORLD_MAX_S);
    double t0 = now_s();
    episodes tr, te;
    if (episodes_load(o, m->params, s->data.train, EVAL_TRAIN_EPISODES, &tr, err, errlen)) return -1;
    if (episodes_load(o, m->params, s->data.test, EVAL_TEST_EPISODES, &te, err, errlen)) {
        episodes_free(&tr);
        return -1;
    }
    double *w = JEPA_MALLOC(sizeof(double) * (E + 1) * S);
    double r2, dist, lat[NH] = {0}, still[NH] = {0}, p4r2 = 0, p4d = 0;
    position_probe(o, &tr, &te, w, &r2, &dist);
    float *z4 = JEPA_MALLOC(sizeof(float) * te.n * 64 * E), *s4 = JEPA_MALLOC(sizeof(float) * te.n * 64 * S);
    int n4 = 0;
    if (o->T > o->H - 1 + HMAX) {
        rollouts(o, m->params, &te, lat, still, z4, s4, &n4);
        if (n4 > 0) ridge_score(z4, s4, n4, E, S, w, &p4r2, &p4d);
    }
    episodes_free(&tr);
    episodes_free(&te);
    int rc = 0;
    if (!o->random_done) {
        rc = random_probe(o, s, w, &o->random_r2, &o->random_dist, err, errlen);
        o->random_done = rc == 0;
    } else if (getenv("JEPA_DEBUG_WORLD_RANDOM_CHECK")) { /* test hook: the kept figures, bit for bit */
        double r2c, dc;
        rc = random_probe(o, s, w, &r2c, &dc, err, errlen);
        if (rc == 0 && (memcmp(&r2c, &o->random_r2, sizeof r2c) || memcmp(&dc, &o->random_dist, sizeof dc))) {
            snprintf(err, errlen, "the random-init baseline kept from the first evaluation (pos_r2_random %.17g, "
                     "pos_err_random %.17g) is not this one's (%.17g, %.17g)", o->random_r2, o->random_dist, r2c, dc);
            rc = -1;
        }
    }
    double rr2 = o->random_r2, rdist = o->random_dist;
    jepa_free(w);
    jepa_free(z4);
    jepa_free(s4);
    if (rc) return -1;
    char name[32];
    for (int k = 0; k < NH && n4 > 0; k++) {
        snprintf(name, sizeof name, "latent_err_h%d", horizons[k]);
        obj_eval_add(out, name, lat[k]);
        snprintf(name, sizeof name, "still_err_h%d", horizons[k]);
        obj_eval_add(out, name, still[k]);
    }
    obj_eval_add(out, "pos_err_random", rdist);
    obj_eval_add(out, "pos_r2_random", rr2);
    if (n4 > 0) {
        obj_eval_add(out, "pred4_pos_err", p4d);
        obj_eval_add(out, "pred4_pos_r2", p4r2);
    }
    obj_eval_add(out, "pos_err", dist);
    obj_eval_add(out, "pos_r2", r2);
    /* only the figures computed: rollouts need HMAX frames after a full window */
    if (n4 > 0)
        fprintf(stderr, "world eval: %.1fs: pos_r2 %.4f (random %.4f), pred4_pos_r2 %.4f, latent/still "
                "h1 %.4f/%.4f h8 %.4f/%.4f\n", now_s() - t0, r2, rr2, p4r2, lat[0], still[0], lat[NH - 1],
                still[NH - 1]);
    else
        fprintf(stderr, "world eval: %.1fs: pos_r2 %.4f (random %.4f); no latent_err_hK, still_err_hK or "
                "pred4_pos_*: episodes of %d frames, rollouts need more than world.history - 1 + %d = %d\n",
                now_s() - t0, r2, rr2, o->T, HMAX, o->H - 1 + HMAX);
    return 0;
}
