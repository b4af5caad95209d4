/* gen.c - see gen.h. Episodes are generated in chunks and handed to the
 * shard writer, which compresses and writes them; every episode is a pure
 * function of (seed, episode), so the output is bitwise reproducible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"

/* Episodes generated per shard_writer_add call: at most GEN_CHUNK, and at
 * most GEN_CHUNK_BYTES of them (one when an episode is larger), so an
 * episode of 64 MiB does not ask for a 4 GiB buffer. */
#define GEN_CHUNK 64
#define GEN_CHUNK_BYTES ((size_t)64 << 20)
/* Bytes besides the compressed episodes, upper bounds: a frame's index entry
 * (32) and zstd's own frame header and checksum (under 32); a shard's header
 * and field table (1152) and its line in manifest.json (under 256). */
#define GEN_FRAME_OVERHEAD 64.0
#define GEN_SHARD_OVERHEAD 2048.0

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

static uint64_t gen_chunk(size_t rec) {
    size_t k = GEN_CHUNK_BYTES / rec;
    return k < 1 ? 1 : k > GEN_CHUNK ? GEN_CHUNK : k;
}

/* Generates all episodes into an open writer; a caught SIGINT/SIGTERM
 * stops it between episodes (add() then reports it). 0 or -1 + err. */
static int gen_fill(const world *w, const world_gen_opts *o, shard_writer *sw, size_t rec,
                    world_gen_stats *st, char *err, size_t errlen) {
    uint64_t chunk = gen_chunk(rec);
    double *states = malloc((size_t)o->steps * w->state_dim * sizeof *states);
    double *actions = malloc((size_t)o->steps * w->action_dim * sizeof *actions);
    uint8_t *buf = malloc(chunk * rec);
    int rc = 0;
    if (!states || !actions || !buf) {
        snprintf(err, errlen, "%s: out of memory for %llu records of %zu bytes", o->out,
                 (unsigned long long)chunk, rec);
        rc = -1;
    }
    double last = now_seconds();
    for (uint64_t e = 0; !rc && e < o->episodes; e += chunk) {
        uint64_t k = o->episodes - e < chunk ? o->episodes - e : chunk, i;
        for (i = 0; i < k && !shard_interrupt_pending(); i++)
            st->crossed += (uint64_t)world_gen_episode(w, o->seed, e + i, o->steps, states,
                                                       actions, buf + i * rec);
        if (shard_writer_add(sw, buf, NULL, i, err, errlen)) rc = -1;
        st->episodes = e + i;
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

/* --------------------------------------------------------- output size */
/* Bytes free to this user on the filesystem that will hold out: statvfs of
 * its nearest existing ancestor (missing parents are made, as mkdir -p),
 * whose path goes to where. 0, or -1 when unknown: no ancestor answers, or
 * its filesystem reports no size at all (f_blocks 0: tmpfs size=0, many
 * FUSE and network filesystems), whose 0 free is no measurement. */
static int gen_free_bytes(const char *out, double *avail, char *where, size_t wn) {
    snprintf(where, wn, "%s", out);
    for (;;) {
        struct statvfs v;
        if (statvfs(where, &v) == 0) {
            if (v.f_blocks == 0) return -1;
            *avail = (double)v.f_bavail * (double)v.f_frsize;
            char cwd[4096], abs[8200]; /* "free on /work/data", not "free on ." */
            if (where[0] != '/' && getcwd(cwd, sizeof cwd)) {
                int dot = !strcmp(where, ".");
                snprintf(abs, sizeof abs, "%s%s%s", cwd, dot ? "" : "/", dot ? "" : where);
                if (strlen(abs) < wn) memcpy(where, abs, strlen(abs) + 1);
            }
            return 0;
        }
        char *slash = strrchr(where, '/');
        while (slash && slash > where && slash[-1] == '/') slash--;
        if (!slash && !strcmp(where, ".")) return -1;
        if (!slash) snprintf(where, wn, ".");
        else if (slash == where && !where[1]) return -1;
        else slash[slash == where] = 0; /* "/a" -> "/", "a/b" -> "a" */
    }
}

/* The first k episodes compressed as the writer compresses a frame: a
 * measured size of this world's episodes at this level. 0 or -1 + err. */
static int gen_sample(const world *w, const world_gen_opts *o, const shard_schema *s, uint32_t k,
                      uint64_t *comp, char *err, size_t errlen) {
    size_t rec = shard_schema_record_bytes(s);
    double *states = malloc((size_t)o->steps * w->state_dim * sizeof *states);
    double *actions = malloc((size_t)o->steps * w->action_dim * sizeof *actions);
    uint8_t *buf = malloc((size_t)k * rec);
    int rc = -1;
    if (!states || !actions || !buf) {
        snprintf(err, errlen, "%s: out of memory for %u records of %zu bytes", o->out, k, rec);
    } else {
        for (uint32_t i = 0; i < k; i++)
            world_gen_episode(w, o->seed, i, o->steps, states, actions, buf + (size_t)i * rec);
        rc = shard_frame_estimate(s, &o->pack, buf, NULL, k, comp, err, errlen);
    }
    free(states);
    free(actions);
    free(buf);
    return rc;
}

static void fmt_bytes(double b, char *buf, size_t n) {
    const char *unit[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (b >= 1000 && u < 6) b /= 1000, u++;
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

int world_gen_check_space(const world *w, const world_gen_opts *o, char *err, size_t errlen) {
    char where[4096], need[32], rawtxt[32], have[32];
    double avail;
    if (gen_free_bytes(o->out, &avail, where, sizeof where))
        return 0; /* unknown: the writer will say if it runs out */
    shard_schema s;
    world_gen_schema(w, o->steps, &s);
    size_t rec = shard_schema_record_bytes(&s);
    double n = (double)o->episodes, raw = n * (double)rec;
    double frames = ceil(n / o->pack.records_per_frame) + ceil(n / o->pack.records_per_shard);
    double fixed = frames * GEN_FRAME_OVERHEAD + ceil(n / o->pack.records_per_shard) * GEN_SHARD_OVERHEAD;
    if (raw + raw / 256 + fixed <= avail) return 0; /* fits whatever zstd makes of it */
    uint64_t k = gen_chunk(rec);
    if (k > o->pack.records_per_frame) k = o->pack.records_per_frame;
    if (k > o->episodes) k = o->episodes;
    uint64_t comp;
    if (gen_sample(w, o, &s, (uint32_t)k, &comp, err, errlen)) return -1;
    double est = n / (double)k * (double)comp + fixed;
    if (est <= avail) return 0;
    fmt_bytes(est, need, sizeof need);
    fmt_bytes(raw, rawtxt, sizeof rawtxt);
    fmt_bytes(avail, have, sizeof have);
    snprintf(err, errlen, "--episodes %llu: about %s of shards (%s of episodes, %.1fx smaller at zstd "
             "level %d as measured on the first %llu), more than the %s free on %s",
             (unsigned long long)o->episodes, need, rawtxt, (double)k * (double)rec / (double)comp,
             o->pack.level, (unsigned long long)k, have, where);
    return 1;
}
