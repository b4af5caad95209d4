/* data_kind.h - what kind of records a shard data set holds, and the rule
 * jepa-train applies when an objective takes its data: the launcher checks
 * data.train / data.test with the same functions before anything starts
 * (a sweep over objectives refuses the points whose data does not fit
 * instead of starting them). Depends on shard/ only. */
#ifndef JEPA_DATA_KIND_H
#define JEPA_DATA_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "shard.h"

typedef enum {
    DATA_KIND_OTHER = 0, /* records of fields that are not world episodes */
    DATA_KIND_IMAGES,    /* u8 images (jepa-shard pack): ijepa, lejepa */
    DATA_KIND_EPISODES,  /* world episodes (jepa-world gen): world */
} data_kind;

/* A field a world episode holds: name, dtype and number of dims (the sizes
 * are the data's: frames (T, C, H, W), actions (T-1, A), state (T, S)). */
typedef struct {
    const char *name;
    shard_dtype dtype;
    uint32_t ndim;
} data_field_need;
enum { DATA_EPISODE_NFIELDS = 3 };
extern const data_field_need data_episode_fields[DATA_EPISODE_NFIELDS]; /* frames, actions, state */

/* Index of need's field in sc when it is there with need's dtype and dims,
 * else -1 (also for an image schema). */
int data_field_find(const shard_schema *sc, const data_field_need *need);
/* IMAGES: no fields and u8 pixels; EPISODES: every data_episode_fields
 * entry found (other fields may follow); else OTHER. */
data_kind data_kind_of(const shard_schema *sc);
/* "u8 images", "world episodes" or "records of other fields" */
const char *data_kind_name(data_kind k);

#endif
