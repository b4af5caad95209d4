/* data_kind.c - the kind of records a data set holds (data_kind.h): one
 * rule for jepa-train's objectives (obj_ijepa.c, obj_lejepa.c, obj_world.c)
 * and jepa-launch's checks before a start (prepare.c). */
#include <string.h>

#include "data_kind.h"

const data_field_need data_episode_fields[DATA_EPISODE_NFIELDS] = {
    {"frames", SHARD_DTYPE_U8, 4},  /* (T, C, H, W) */
    {"actions", SHARD_DTYPE_F32, 2}, /* (T-1, A) */
    {"state", SHARD_DTYPE_F32, 2},  /* (T, S) */
};

int data_field_find(const shard_schema *sc, const data_field_need *need) {
    int i = shard_schema_field_index(sc, need->name);
    if (i < 0 || sc->fields[i].dtype != need->dtype || sc->fields[i].ndim != need->ndim) return -1;
    return i;
}

data_kind data_kind_of(const shard_schema *sc) {
    if (sc->nfields == 0) return sc->dtype == SHARD_DTYPE_U8 ? DATA_KIND_IMAGES : DATA_KIND_OTHER;
    for (int i = 0; i < DATA_EPISODE_NFIELDS; i++)
        if (data_field_find(sc, &data_episode_fields[i]) < 0) return DATA_KIND_OTHER;
    return DATA_KIND_EPISODES;
}

const char *data_kind_name(data_kind k) {
    switch (k) {
    case DATA_KIND_IMAGES: return "u8 images";
    case DATA_KIND_EPISODES: return "world episodes";
    default: return "records of other fields";
    }
}
