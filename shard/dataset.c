/* dataset.c - a dataset directory opened for reading: the manifest plus every
 * shard's header and index, all cross-checked, held in memory; frames are
 * decoded on demand through a cursor (own fd, buffers, zstd context) so the
 * reader's thread and the caller can read one dataset at once. Also the
 * sequential and by-index reads, the size summary and the full verify. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard_internal.h"

static char *join_path(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = shard_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* The shard file must be the one the manifest lists: same schema, layout,
 * size, records and header CRC (which pins index and frames). */
static int matches_manifest(const shard_file *sf, const shard_manifest *m, uint32_t i,
                            char *err, size_t errlen) {
    const shard_manifest_entry *e = &m->shards[i];
    const shard_schema *a = &sf->schema, *b = &m->schema;
    if ((a->nfields || b->nfields) && !shard_schema_same(a, b)) {
        shard_err(err, errlen, "%s: offset %u: schema (%u fields) differs from the manifest's "
                  "(%u fields)", sf->path, a->nfields ? SHARD_HEADER_BYTES : 16, a->nfields,
                  b->nfields);
        return -1;
    }
    if (a->height != b->height || a->width != b->width || a->channels != b->channels ||
        a->dtype != b->dtype || a->label != b->label || a->num_classes != b->num_classes) {
        shard_err(err, errlen, "%s: offset 16: schema %ux%ux%u label %d/%u differs from the "
                  "manifest's %ux%ux%u label %d/%u", sf->path, a->height, a->width, a->channels,
                  (int)a->label, a->num_classes, b->height, b->width, b->channels, (int)b->label,
                  b->num_classes);
        return -1;
    }
    if (sf->records_per_frame != m->records_per_frame) {
        shard_err(err, errlen, "%s: offset 44: %u records per frame, manifest says %u", sf->path,
                  sf->records_per_frame, m->records_per_frame);
        return -1;
    }
    if (sf->records != e->records) {
        shard_err(err, errlen, "%s: offset 48: %llu records, manifest says %llu", sf->path,
                  (unsigned long long)sf->records, (unsigned long long)e->records);
        return -1;
    }
    if (sf->file_bytes != e->bytes) {
        shard_err(err, errlen, "%s: offset 72: file is %llu bytes, manifest says %llu", sf->path,
                  (unsigned long long)sf->file_bytes, (unsigned long long)e->bytes);
        return -1;
    }
    if (sf->header_crc != e->header_crc) {
        shard_err(err, errlen, "%s: offset %u: header checksum %08x differs from the manifest's "
                  "%08x (shard replaced, or manifest stale)", sf->path, SHARD_HEADER_CRC_AT,
                  sf->header_crc, e->header_crc);
        return -1;
    }
    return 0;
}

static char *manifest_path(const char *dir) { return join_path(dir, SHARD_MANIFEST); }

int shard_manifest_schema(const char *dir, shard_schema *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    shard_manifest m;
    char *mp = manifest_path(dir);
    int rc = shard_manifest_load(&m, mp, err, errlen);
    free(mp);
    if (rc) return -1;
    *out = m.schema;
    shard_manifest_free(&m);
    return 0;
}

int shard_dataset_open(shard_dataset **dsp, const char *dir, char *err, size_t errlen) {
    *dsp = NULL;
    shard_dataset *ds = shard_xcalloc(1, sizeof *ds);
    size_t dl = strlen(dir);
    ds->dir = shard_xmalloc(dl + 1);
    memcpy(ds->dir, dir, dl + 1);
    while (dl > 1 && ds->dir[dl - 1] == '/') ds->dir[--dl] = 0;
    char *mp = manifest_path(ds->dir);
    int rc = shard_manifest_load(&ds->man, mp, err, errlen);
    free(mp);
    if (rc) {
        shard_dataset_close(ds);
        return -1;
    }
    uint32_t n = ds->man.nshards;
    ds->files = shard_xcalloc(n, sizeof *ds->files);
    ds->paths = shard_xcalloc(n, sizeof *ds->paths);
    ds->first = shard_xcalloc((size_t)n + 1, sizeof *ds->first);
    ds->record_bytes = shard_schema_record_bytes(&ds->man.schema);
    ds->label_bytes = shard_label_bytes(&ds->man.schema);
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
#define FNV(x) h = (h ^ (uint64_t)(x)) * 0x100000001b3ULL
    FNV(ds->man.schema.height); FNV(ds->man.schema.width); FNV(ds->man.schema.channels);
    FNV(ds->man.schema.label); FNV(ds->man.schema.num_classes);
    for (uint32_t i = 0; i < n; i++) {
        ds->paths[i] = join_path(ds->dir, ds->man.shards[i].file);
        if (shard_file_open(&ds->files[i], ds->paths[i], NULL, err, errlen) ||
            matches_manifest(&ds->files[i], &ds->man, i, err, errlen)) {
            shard_dataset_close(ds);
            return -1;
        }
        ds->first[i + 1] = ds->first[i] + ds->files[i].records;
        if (ds->files[i].max_comp > ds->max_comp) ds->max_comp = ds->files[i].max_comp;
        if (ds->files[i].max_raw > ds->max_raw) ds->max_raw = ds->files[i].max_raw;
        FNV(ds->files[i].records); FNV(ds->files[i].header_crc);
    }
#undef FNV
    if (ds->man.has_stats && ds->man.stats.count != ds->man.records * ds->record_bytes) {
        shard_err(err, errlen, "%s/%s: pixel_stats count %llu, but %llu records of %zu bytes "
                  "hold %llu", ds->dir, SHARD_MANIFEST, (unsigned long long)ds->man.stats.count,
                  (unsigned long long)ds->man.records, ds->record_bytes,
                  (unsigned long long)(ds->man.records * ds->record_bytes));
        shard_dataset_close(ds);
        return -1;
    }
    ds->fingerprint = h;
    *dsp = ds;
    return 0;
}

void shard_dataset_close(shard_dataset *ds) {
    if (!ds) return;
    for (uint32_t i = 0; ds->files && i < ds->man.nshards; i++) shard_file_free(&ds->files[i]);
    for (uint32_t i = 0; ds->paths && i < ds->man.nshards; i++) free(ds->paths[i]);
    free(ds->files);
    free(ds->paths);
    free(ds->first);
    free(ds->dir);
    shard_manifest_free(&ds->man);
    free(ds);
}

const shard_schema *shard_dataset_schema(const shard_dataset *ds) { return &ds->man.schema; }
size_t shard_dataset_record_bytes(const shard_dataset *ds) { return ds->record_bytes; }
uint64_t shard_dataset_records(const shard_dataset *ds) { return ds->man.records; }
const char *shard_dataset_split(const shard_dataset *ds) { return ds->man.split; }
const char *shard_dataset_class_name(const shard_dataset *ds, uint32_t label) {
    return label < ds->man.nclasses ? ds->man.class_names[label] : NULL;
}

void shard_dataset_get_info(const shard_dataset *ds, shard_dataset_info *in) {
    memset(in, 0, sizeof *in);
    in->shards = ds->man.nshards;
    in->records = ds->man.records;
    in->records_per_shard = ds->man.records_per_shard;
    in->records_per_frame = ds->man.records_per_frame;
    in->level = ds->man.level;
    in->manifest_version = ds->man.version;
    in->manifest_has_crc = ds->man.crc_state == SHARD_MANIFEST_CRC_OK; /* open refuses _BAD */
    in->manifest_crc = ds->man.crc;
    for (uint32_t i = 0; i < ds->man.nshards; i++) {
        const shard_file *f = &ds->files[i];
        in->frames += f->nframes;
        in->file_bytes += f->file_bytes;
        for (uint32_t k = 0; k < f->nframes; k++) in->compressed_bytes += f->frames[k].comp_bytes;
    }
    in->raw_bytes = in->records * (ds->record_bytes + ds->label_bytes);
}

/* ------------------------------------------------------------------ cursor */
void shard_cursor_init(shard_cursor *c, const shard_dataset *ds) {
    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->fd = -1;
    c->fd_shard = -1;
    c->cached_shard = -1;
    c->comp = shard_xmalloc(ds->max_comp);
    c->raw = shard_xmalloc(ds->max_raw);
    c->dctx = ZSTD_createDCtx();
    SHARD_ASSERT(c->dctx);
}

void shard_cursor_free(shard_cursor *c) {
    if (!c || !c->ds) return;
    if (c->fd >= 0) close(c->fd);
    free(c->comp);
    free(c->raw);
    ZSTD_freeDCtx(c->dctx);
    memset(c, 0, sizeof *c);
}

const uint8_t *shard_cursor_frame(shard_cursor *c, uint32_t shard, uint32_t frame, char *err,
                                  size_t errlen) {
    const shard_dataset *ds = c->ds;
    SHARD_ASSERT(shard < ds->man.nshards && frame < ds->files[shard].nframes);
    if (c->cached_shard == (int64_t)shard && c->cached_frame == frame) return c->raw;
    c->cached_shard = -1;
    const shard_file *sf = &ds->files[shard];
    if (c->fd_shard != (int64_t)shard) {
        if (c->fd >= 0) close(c->fd);
        c->fd_shard = -1;
        uint64_t size;
        c->fd = shard_open_regular(ds->paths[shard], &size, err, errlen);
        if (c->fd < 0) return NULL;
        if (size != sf->file_bytes) {
            shard_err(err, errlen, "%s: offset 0: file changed since the dataset was opened "
                      "(%llu bytes, was %llu)", ds->paths[shard], (unsigned long long)size,
                      (unsigned long long)sf->file_bytes);
            close(c->fd);
            c->fd = -1;
            return NULL;
        }
        c->fd_shard = shard;
    }
    if (shard_frame_load(sf, frame, c->fd, c->comp, c->raw, c->dctx, err, errlen) ||
        shard_frame_check_values(sf, frame, c->raw, ds->first[shard], err, errlen))
        return NULL;
    c->cached_shard = shard;
    c->cached_frame = frame;
    return c->raw;
}

/* ------------------------------------------------------------------- reads */
int shard_dataset_read_all(shard_dataset *ds, uint8_t *pixels, uint8_t *labels, char *err,
                           size_t errlen) {
    shard_cursor c;
    shard_cursor_init(&c, ds);
    int rc = 0;
    for (uint32_t s = 0; s < ds->man.nshards && !rc; s++) {
        const shard_file *sf = &ds->files[s];
        for (uint32_t f = 0; f < sf->nframes; f++) {
            const uint8_t *raw = shard_cursor_frame(&c, s, f, err, errlen);
            if (!raw) {
                rc = -1;
                break;
            }
            uint64_t at = ds->first[s] + sf->frames[f].first_record;
            shard_frame_unpack(&ds->man.schema, raw, sf->frames[f].records,
                               pixels + at * ds->record_bytes, labels ? labels + at : NULL);
        }
    }
    shard_cursor_free(&c);
    return rc;
}

int shard_dataset_read_record(shard_dataset *ds, uint64_t index, uint8_t *pixels,
                              uint8_t *label, char *where, size_t wherelen, char *err,
                              size_t errlen) {
    if (index >= ds->man.records) {
        shard_err(err, errlen, "%s: record %llu out of range [0, %llu)", ds->dir,
                  (unsigned long long)index, (unsigned long long)ds->man.records);
        return -1;
    }
    uint32_t lo = 0, hi = ds->man.nshards; /* last shard with first <= index */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ds->first[mid] <= index) lo = mid;
        else hi = mid;
    }
    const shard_file *sf = &ds->files[lo];
    uint64_t in_shard = index - ds->first[lo];
    uint32_t f = (uint32_t)(in_shard / sf->records_per_frame);
    uint32_t k = (uint32_t)(in_shard % sf->records_per_frame);
    shard_cursor c;
    shard_cursor_init(&c, ds);
    const uint8_t *raw = shard_cursor_frame(&c, lo, f, err, errlen);
    if (raw) {
        shard_frame_record(&ds->man.schema, raw, sf->frames[f].records, k, pixels, label);
        if (where)
            snprintf(where, wherelen, "%s frame %u (offset %llu) record %u", ds->man.shards[lo].file,
                     f, (unsigned long long)sf->frames[f].offset, k);
    }
    shard_cursor_free(&c);
    return raw ? 0 : -1;
}

int shard_dataset_read_range(shard_dataset *ds, uint64_t first, uint64_t n, uint8_t *pixels,
                             uint8_t *labels, char *err, size_t errlen) {
    if (first > ds->man.records || n > ds->man.records - first) {
        shard_err(err, errlen, "%s: records [%llu, %llu + %llu) past the end (%llu records)",
                  ds->dir, (unsigned long long)first, (unsigned long long)first,
                  (unsigned long long)n, (unsigned long long)ds->man.records);
        return -1;
    }
    uint32_t s = 0; /* last shard with first <= the record */
    while (s + 1 < ds->man.nshards && ds->first[s + 1] <= first) s++;
    shard_cursor c;
    shard_cursor_init(&c, ds);
    int rc = 0;
    for (uint64_t at = first; at < first + n && rc == 0;) {
        while (ds->first[s + 1] <= at) s++;
        const shard_file *sf = &ds->files[s];
        uint64_t in = at - ds->first[s];
        uint32_t f = (uint32_t)(in / sf->records_per_frame), k = (uint32_t)(in % sf->records_per_frame);
        uint32_t fr = sf->frames[f].records;
        uint64_t take = fr - k < first + n - at ? fr - k : first + n - at;
        const uint8_t *raw = shard_cursor_frame(&c, s, f, err, errlen);
        if (!raw) {
            rc = -1;
            break;
        }
        uint8_t *dst = pixels + (at - first) * ds->record_bytes;
        uint8_t *ldst = labels ? labels + (at - first) : NULL;
        if (k == 0 && take == fr) {
            shard_frame_unpack(&ds->man.schema, raw, fr, dst, ldst);
        } else {
            for (uint64_t q = 0; q < take; q++)
                shard_frame_record(&ds->man.schema, raw, fr, k + (uint32_t)q,
                                   dst + q * ds->record_bytes, ldst ? ldst + q : NULL);
        }
        at += take;
    }
    shard_cursor_free(&c);
    return rc;
}

/* Adds the pixel bytes of a decoded image frame of n records to *st. */
static void stats_add_frame(shard_pixel_stats *st, const uint8_t *raw, uint64_t bytes) {
    uint64_t s1 = 0, s2 = 0;
    for (uint64_t k = 0; k < bytes; k++) { /* a frame is <= 256 MiB: no overflow */
        s1 += raw[k];
        s2 += (uint64_t)raw[k] * raw[k];
    }
    st->count += bytes;
    st->sum += s1;
    st->sum_sq += s2;
}

int shard_dataset_has_pixel_stats(const shard_dataset *ds, shard_pixel_stats *out) {
    if (!ds->man.has_stats) return 0;
    if (out) *out = ds->man.stats;
    return 1;
}

int shard_dataset_pixel_stats(shard_dataset *ds, shard_pixel_stats *out, int *from_manifest,
                              char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (from_manifest) *from_manifest = 0;
    if (ds->man.schema.nfields > 0) {
        shard_err(err, errlen, "%s: pixel statistics are for image datasets (this one has %u "
                  "fields)", ds->dir, ds->man.schema.nfields);
        return -1;
    }
    if (shard_dataset_has_pixel_stats(ds, out)) {
        if (from_manifest) *from_manifest = 1;
        return 0;
    }
    shard_cursor c; /* manifest version 1: one pass, one frame in memory */
    shard_cursor_init(&c, ds);
    int rc = 0;
    for (uint32_t s = 0; s < ds->man.nshards && rc == 0; s++)
        for (uint32_t f = 0; f < ds->files[s].nframes; f++) {
            const uint8_t *raw = shard_cursor_frame(&c, s, f, err, errlen);
            if (!raw) {
                rc = -1;
                break;
            }
            stats_add_frame(out, raw, (uint64_t)ds->files[s].frames[f].records * ds->record_bytes);
        }
    shard_cursor_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ verify */
uint64_t shard_verify(const char *dir, void (*report)(void *ctx, const char *line), void *ctx) {
    char err[SHARD_ERR_MAX];
    shard_manifest m;
    char *mp = manifest_path(dir);
    size_t len;
    char *text = shard_manifest_read(mp, &len, err, sizeof err);
    uint64_t problems = 0, base = 0; /* dataset index of the shard's first record */
    /* a damaged manifest is one problem; what its numbers get wrong, the rest */
    uint32_t stored, computed;
    if (text && shard_manifest_crc_check(text, len, &stored, &computed) == SHARD_MANIFEST_CRC_BAD) {
        shard_manifest_crc_error(err, sizeof err, mp, stored, computed, 0);
        if (report) report(ctx, err);
        problems++;
    }
    if (!text || shard_manifest_parse_ex(&m, text, len, mp, 1, err, sizeof err)) {
        if (report) report(ctx, err);
        free(text);
        free(mp);
        return problems + 1;
    }
    free(text);
    free(mp);
    shard_pixel_stats st = {0, 0, 0};
    int stats_whole = 1; /* every frame decoded: the recomputed sums are comparable */
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    SHARD_ASSERT(dctx);
    for (uint32_t i = 0; i < m.nshards; i++) {
        char *path = join_path(dir, m.shards[i].file);
        shard_file sf;
        int fd = -1;
        if (shard_file_open(&sf, path, &fd, err, sizeof err) ||
            matches_manifest(&sf, &m, i, err, sizeof err)) {
            if (report) report(ctx, err);
            problems++;
            stats_whole = 0;
        } else {
            /* every frame, even after a bad one: one line per problem */
            uint8_t *comp = shard_xmalloc(sf.max_comp), *raw = shard_xmalloc(sf.max_raw);
            for (uint32_t f = 0; f < sf.nframes; f++) {
                if (shard_frame_load(&sf, f, fd, comp, raw, dctx, err, sizeof err) ||
                    shard_frame_check_values(&sf, f, raw, base, err, sizeof err)) {
                    if (report) report(ctx, err);
                    problems++;
                    stats_whole = 0;
                } else if (m.has_stats) {
                    stats_add_frame(&st, raw, (uint64_t)sf.frames[f].records *
                                                  shard_schema_record_bytes(&m.schema));
                }
            }
            free(comp);
            free(raw);
        }
        if (fd >= 0) close(fd);
        shard_file_free(&sf);
        free(path);
        base += m.shards[i].records;
    }
    ZSTD_freeDCtx(dctx);
    if (m.has_stats && stats_whole &&
        (st.count != m.stats.count || st.sum != m.stats.sum || st.sum_sq != m.stats.sum_sq)) {
        shard_err(err, sizeof err, "%s/%s: pixel_stats (count %llu, sum %llu, sum_sq %llu) differ "
                  "from the data's (%llu, %llu, %llu)", dir, SHARD_MANIFEST,
                  (unsigned long long)m.stats.count, (unsigned long long)m.stats.sum,
                  (unsigned long long)m.stats.sum_sq, (unsigned long long)st.count,
                  (unsigned long long)st.sum, (unsigned long long)st.sum_sq);
        if (report) report(ctx, err);
        problems++;
    }
    shard_manifest_free(&m);
    return problems;
}
