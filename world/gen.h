/* gen.h - writes episodes of a world's exploration policy as shards: the one
 * place where world/ meets shard/ (part of the jepa-world program, not of the
 * jepa_world library, which stays free of shard/). */
#ifndef JEPA_WORLD_GEN_H
#define JEPA_WORLD_GEN_H

#include <stdint.h>

#include "shard.h"
#include "world.h"

typedef struct {
    const char *out;      /* dataset directory (must not exist or be empty) */
    uint64_t episodes;    /* >= 1; one record per episode */
    uint32_t steps;       /* T >= 2 states per episode */
    uint64_t seed;        /* episode e is explore(seed, e) */
    shard_pack_opts pack; /* records per shard/frame, zstd level, split */
    int progress;         /* print a progress line on stderr */
} world_gen_opts;

typedef struct {
    uint64_t episodes;
    uint64_t crossed;  /* episodes whose states visit more than one region */
    double seconds;    /* wall time of the whole generation */
    uint32_t shards;
    uint64_t raw_bytes, file_bytes;
} world_gen_stats;

/* The record schema of an episode of T steps of w: fields
 *   frames  u8  (T, C, H, W)  render(states[t])
 *   actions f32 (T-1, A)      actions[t] moves states[t] to states[t+1]
 *   state   f32 (T, S)        the true states (for evaluation only)
 * f32 little-endian as shard/ stores them. */
void world_gen_schema(const world *w, uint32_t steps, shard_schema *s);

/* Fills one record (shard_schema_record_bytes of world_gen_schema bytes) with
 * episode `episode` of seed `seed`; states (T, S) and actions (T-1, A) are
 * caller scratch. Returns 1 if the episode visits more than one region. */
int world_gen_episode(const world *w, uint64_t seed, uint64_t episode, uint32_t steps,
                      double *states, double *actions, uint8_t *record);

/* Refuses, before anything is generated or written, a data set that cannot
 * fit the free space of the filesystem out goes to. When the episodes fit
 * uncompressed (plus zstd's worst-case growth of 1/256) they are let
 * through; else the first episodes (one frame of them, at most 64 MiB) are
 * generated and compressed as the writer would, and the data set is
 * refused when o->episodes of them at that measured size exceed the free
 * space: episodes are independent draws of one process, so the first frame
 * predicts the rest to within a few percent (a borderline case that passes
 * may still run out of space; the writer then removes what it staged).
 * A filesystem that reports no size (f_blocks 0: tmpfs size=0, many FUSE
 * and network filesystems) has unknown free space: no check, go on.
 * 0 (go on), 1 (refused: "--episodes N: about X of shards ..., more than
 * the Y free on PATH" in err) or -1 (a failure, in err). */
int world_gen_check_space(const world *w, const world_gen_opts *o, char *err, size_t errlen);

/* Generates and writes the whole data set atomically (a failure leaves no
 * directory behind; so does a SIGINT/SIGTERM once the caller has called
 * shard_interrupt_catch). 0 or -1 + one line in err. */
int world_gen(const world *w, const world_gen_opts *o, world_gen_stats *st, char *err,
              size_t errlen);

#endif
