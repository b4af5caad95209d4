/* world_fixture.c - the tiny world-model setup (world_fixture.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world_fixture.h"

void wf_spec(jepa_spec *s, int B) {
    spec_defaults(s);
    strcpy(s->objective, "world");
    s->seed = 5;
    s->model.img_size = WF_IMG;
    s->model.channels = 1;
    s->model.patch = 4;
    s->model.width = 16;
    s->model.depth = 1;
    s->model.heads = 2;
    s->model.mlp_ratio = 4;
    s->model.pred_width = 8;
    s->model.pred_depth = 2;
    s->model.pred_heads = 2;
    s->train.batch_per_rank = B;
    s->parallel.threads_per_rank = 1;
    s->world.history = 3;
    s->world.rollout = 2;
    s->world.rollout_weight = 0.7;
    s->world.embed_dim = 8;
    s->world.action_scale = 1.5;
    s->world.stopgrad_target = 0;
    s->sigreg.weight = 0.3;
    s->sigreg.directions = 4;
    s->sigreg.knots = 9;
    s->sigreg.t_max = 3.0;
}

void wf_schema(shard_schema *sc, int T) {
    memset(sc, 0, sizeof *sc);
    sc->nfields = 3;
    shard_field f[3] = {
        {"frames", SHARD_DTYPE_U8, 4, {(uint32_t)T, 1, WF_IMG, WF_IMG}},
        {"actions", SHARD_DTYPE_F32, 2, {(uint32_t)T - 1, WF_A, 0, 0}},
        {"state", SHARD_DTYPE_F32, 2, {(uint32_t)T, WF_S, 0, 0}},
    };
    memcpy(sc->fields, f, sizeof f);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

uint8_t *wf_records(int n, int T, uint64_t seed) {
    shard_schema sc;
    wf_schema(&sc, T);
    size_t rb = shard_schema_record_bytes(&sc), fb = WF_IMG * WF_IMG;
    size_t oa = shard_schema_field_offset(&sc, 1), os = shard_schema_field_offset(&sc, 2);
    uint8_t *rec = calloc((size_t)n, rb);
    JEPA_ASSERT(rec);
    for (int e = 0; e < n; e++) {
        uint8_t *r = rec + (size_t)e * rb;
        jepa_rng g;
        rng_init(&g, rng_key(seed, (uint64_t)e, 0x3f));
        double p[2] = {1 + 6 * rng_uniform(&g), 1 + 6 * rng_uniform(&g)};
        for (int t = 0; t < T; t++) {
            uint8_t *f = r + (size_t)t * fb;
            for (int y = 0; y < WF_IMG; y++)
                for (int x = 0; x < WF_IMG; x++) {
                    double dx = x + 0.5 - p[0], dy = y + 0.5 - p[1];
                    double v = 20 + 200 * exp(-(dx * dx + dy * dy) / 3.0) + 10 * rng_uniform(&g);
                    f[y * WF_IMG + x] = (uint8_t)lround(v);
                }
            f[0] = (uint8_t)(WF_MARK + t);
            float st[2] = {(float)p[0], (float)p[1]};
            memcpy(r + os + (size_t)t * sizeof st, st, sizeof st);
            if (t == T - 1) break;
            float a[2] = {(float)(1.6 * rng_uniform(&g) - 0.8), (float)(1.6 * rng_uniform(&g) - 0.8)};
            memcpy(r + oa + (size_t)t * sizeof a, a, sizeof a);
            p[0] = clampd(p[0] + a[0], 0.5, WF_IMG - 0.5);
            p[1] = clampd(p[1] + a[1], 0.5, WF_IMG - 0.5);
        }
    }
    return rec;
}

world_obj *wf_create(const jepa_spec *s, int T, int rank, int world, double noise) {
    shard_schema sc;
    wf_schema(&sc, T);
    objective *b = NULL;
    char err[512] = "";
    int rc = objective_world.create(&b, s, &sc, rank, world, err, sizeof err);
    if (rc || !b) { /* setup, also outside a CUnit test (test_world_dp's reference) */
        fprintf(stderr, "world fixture: create failed: %s\n", err);
        exit(2);
    }
    b->mean = 0.3f;
    b->std = 0.25f;
    if (noise > 0) {
        jepa_rng g;
        rng_init(&g, rng_key(99, 0x7e57, 0));
        for (size_t i = 0; i < b->m.nparams; i++) b->m.params[i] += (float)(noise * rng_normal(&g));
    }
    return (world_obj *)b;
}

int wf_window_start(const world_obj *o, int i) {
    float v = o->frames[(size_t)i * o->W * o->frame_bytes];
    double px = ((double)v * o->base.std + o->base.mean) * 255.0;
    return (int)lround(px) - WF_MARK;
}
