/* gen.c - see gen.h. Episodes are generated in chunks and handed to the
 * shard writer, which compresses and writes them; every episode is a pure
 * function of (seed, episode), so the output is bitwise reproducible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"

#define GEN_CHUNK 64 /* episodes generated per shard_writer_add call */

static void set_field(shard_field *f, const char *name, shard_dtype t, uint32_t ndim,
                      uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->dtype = t;
    f->ndim = ndim;
    uint32_t d[4] = {d0, d1, d2, d3};
    for (uint32_t i = 0; i < ndim; i++) f->shape[i] = d[i];
}

void world_gen_schema(const world *w, uint32_t steps, shard_schema *s) {
    memset(s, 0, sizeof *s);
    s->label = SHARD_LABEL_NONE;
    s->nfields = 3;
    set_field(&s->fields[0], "frames", SHARD_DTYPE_U8, 4, steps, w->channels, w->height,
              w->width);
    set_field(&s->fields[1], "actions", SHARD_DTYPE_F32, 2, steps - 1, w->action_dim, 0, 0);
    set_field(&s->fields[2], "state", SHARD_DTYPE_F32, 2, steps, w->state_dim, 0, 0);
}

/* n doubles as little-endian binary32 (explicit bytes: the file's order
 * whatever this machine's). */
static void put_f32(uint8_t *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float f = (float)src[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int b = 0; b < 4; b++) dst[4 * i + b] = (uint8_t)(u >> (8 * b));
    }
}

int world_gen_episode(const world *w, uint64_t seed, uint64_t episode, uint32_t steps,
                      double *states, double *actions, uint8_t *record) {
    w->ops->explore(w, seed, episode, steps, states, actions);
    size_t frame = world_frame_bytes(w);
    uint8_t *p = record;
    for (uint32_t t = 0; t < steps; t++, p += frame)
        w->ops->render(w, states + (size_t)t * w->state_dim, p);
    put_f32(p, actions, (size_t)(steps - 1) * w->action_dim);
    p += (size_t)(steps - 1) * w->action_dim * 4;
    put_f32(p, states, (size_t)steps * w->state_dim);
    uint32_t r0 = w->ops->region(w, states);
    for (uint32_t t = 1; t < steps; t++)
        if (w->ops->region(w, states + (size_t)t * w->state_dim) != r0) return 1;
    return 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Generates all episodes into an open writer. 0 or -1 + err. */
static int gen_fill(const world *w, const world_gen_opts *o, shard_writer *sw, size_t rec,
                    world_gen_stats *st, char *err, size_t errlen) {
    double *states = malloc((size_t)o->steps * w->state_dim * sizeof *states);
    double *actions = malloc((size_t)o->steps * w->action_dim * sizeof *actions);
    uint8_t *buf = malloc(GEN_CHUNK * rec);
    int rc = 0;
    if (!states || !actions || !buf) {
        snprintf(err, errlen, "%s: out of memory for %d records of %zu bytes", o->out,
                 GEN_CHUNK, rec);
        rc = -1;
    }
    double last = now_seconds();
    for (uint64_t e = 0; !rc && e < o->episodes; e += GEN_CHUNK) {
        uint64_t k = o->episodes - e < GEN_CHUNK ? o->episodes - e : GEN_CHUNK;
        for (uint64_t i = 0; i < k; i++)
            st->crossed += (uint64_t)world_gen_episode(w, o->seed, e + i, o->steps, states,
                                                       actions, buf + i * rec);
        if (shard_writer_add(sw, buf, NULL, k, err, errlen)) rc = -1;
        st->episodes = e + k;
        if (o->progress && now_seconds() - last > 0.5) {
            last = now_seconds();
            fprintf(stderr, "\rgen: %llu/%llu episodes (%.0f%%)",
                    (unsigned long long)st->episodes, (unsigned long long)o->episodes,
                    100.0 * (double)st->episodes / (double)o->episodes);
        }
    }
    if (o->progress) fprintf(stderr, "\r%60s\r", "");
    free(states);
    free(actions);
    free(buf);
    return rc;
}

int world_gen(const world *w, const world_gen_opts *o, world_gen_stats *st, char *err,
              size_t errlen) {
    memset(st, 0, sizeof *st);
    double t0 = now_seconds();
    shard_schema s;
    world_gen_schema(w, o->steps, &s);
    if (shard_schema_check(&s, err, errlen)) return -1;
    shard_writer *sw;
    if (shard_writer_open(&sw, o->out, &s, &o->pack, err, errlen)) return -1;
    if (gen_fill(w, o, sw, shard_schema_record_bytes(&s), st, err, errlen)) {
        shard_writer_abort(sw);
        return -1;
    }
    if (shard_writer_close(sw, err, errlen)) return -1;
    st->seconds = now_seconds() - t0;
    shard_dataset *ds;
    if (shard_dataset_open(&ds, o->out, err, errlen)) return -1; /* read back what we wrote */
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    st->shards = in.shards;
    st->raw_bytes = in.raw_bytes;
    st->file_bytes = in.file_bytes;
    shard_dataset_close(ds);
    return 0;
}
