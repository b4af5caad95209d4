/* world_fixture.h - a tiny world-model setup for the objective's unit tests
 * (test_world_model, test_world_dp): a spec, the record schema jepa-world gen
 * writes (frames u8 (T, 1, 8, 8), actions f32 (T-1, 2), state f32 (T, 2)),
 * synthetic trajectories held in memory (a Gaussian blob moved by the
 * actions, so embeddings drift with time), and objective creation. */
#ifndef JEPA_TEST_WORLD_FIXTURE_H
#define JEPA_TEST_WORLD_FIXTURE_H

#include "obj_world.h"

#define WF_IMG 8
#define WF_A 2
#define WF_S 2
#define WF_MARK 200 /* pixel 0 of frame t is WF_MARK + t: a window's start is readable */

/* The tiny model: img 8, patch 4, width 16, depth 1, heads 2, pred_width 8,
 * pred_depth 2, pred_heads 2, embed 8, history 3, rollout 2 (rollout_weight
 * 0.7), action_scale 1.5, SIGReg weight 0.3 with 4 directions and 9 knots,
 * batch B, seed 5, one thread. */
void wf_spec(jepa_spec *s, int B);

/* The record schema of episodes of T frames. */
void wf_schema(shard_schema *sc, int T);

/* n records (n, record bytes) of episodes of T frames, episode e from
 * rng_key(seed, e): positions start uniform in the image, actions uniform in
 * [-0.8, 0.8]^2 (clamped at the walls). Caller frees. */
uint8_t *wf_records(int n, int T, uint64_t seed);

/* Creates the objective for s (rank, world), exits 2 on error; sets
 * the pixel normalisation to mean 0.3, std 0.25 (what data_stats would do
 * from a directory) and, when noise > 0, adds noise * N(0,1) from
 * rng_key(99, 0x7e57, 0) to every parameter (away from init symmetry: zero
 * biases, unit LayerNorm gains). */
world_obj *wf_create(const jepa_spec *s, int T, int rank, int world, double noise);

/* Window start of episode i of the last step, read from the marker pixel of
 * its first normalised frame. */
int wf_window_start(const world_obj *o, int i);

#endif
