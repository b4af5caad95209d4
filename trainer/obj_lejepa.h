/* obj_lejepa.h - the random streams of the LeJEPA objective (obj_lejepa.c),
 * public so a test can rebuild a step's views and SIGReg directions from
 * the same keys. Private to trainer/ and its tests. */
#ifndef JEPA_OBJ_LEJEPA_H
#define JEPA_OBJ_LEJEPA_H

#include <stdint.h>

#include "jepa.h"

/* View `view` (0..V-1; global views first) of global image `image` (rank *
 * batch_per_rank + i) at `step`: aug_view draws from rng_init(key). A pure
 * function of the global image index, so W ranks with B/W images each see
 * the views of one process with B. */
static inline uint64_t lejepa_view_key(uint64_t seed, int64_t step, uint64_t image, int V,
                                       int view) {
    return rng_key(seed ^ 0x1e7e9a5eedULL, (uint64_t)step, image * (uint64_t)V + (uint64_t)view);
}

/* SIGReg's directions at `step` (sigreg_draw): (seed, step) only, never the
 * rank, so every rank tests the same projections. */
static inline uint64_t lejepa_dirs_key(uint64_t seed, int64_t step) {
    return rng_key(seed, 0x1e5e, (uint64_t)step);
}

#endif
