/* writer.c - packs records into a dataset directory. Records are grouped
 * into frames (records_per_frame), each compressed as one zstd frame with
 * zstd's content checksum on and our CRC-32 of its compressed bytes in the
 * index; frames roll into a new shard every records_per_shard records.
 *
 * Atomicity, outermost first: everything is written into a hidden sibling
 * `.NAME.partial-PID` that is renamed onto the destination at the end (beside
 * where a symbolic link destination points), so the destination never holds a half dataset; inside it each shard and the
 * manifest are themselves temp file + fsync + rename, and the manifest is
 * written last, so even a staging directory never shows a shard that looks
 * whole but is not. A crash leaves only the hidden `.partial-PID` directory. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_internal.h"

struct shard_writer {
    char *dir;      /* destination */
    char *parent;   /* its parent directory (for the final fsync) */
    char *stage;    /* parent/.NAME.partial-PID */
    shard_schema schema;
    shard_pack_opts o;
    size_t rec, lab, per;       /* record, label and both bytes */
    /* current shard */
    FILE *f;
    char tmp[4096];
    uint64_t off;               /* bytes written to f */
    uint64_t shard_records;
    shard_frame *frames;        /* (cap_frames) */
    uint32_t nframes, cap_frames;
    /* current frame */
    uint8_t *raw;               /* (records_per_frame, per): the frame's columns */
    uint8_t *rows;              /* (records_per_frame, rec) staged records; = raw for images */
    uint8_t *labels;            /* (records_per_frame) staged labels */
    uint32_t frame_records;
    uint8_t *comp;              /* (comp_cap) */
    size_t comp_cap;
    ZSTD_CCtx *cctx;
    shard_manifest man;         /* shards written so far */
    uint32_t cap_shards;
    uint64_t total;
};


/* Splits dir (trailing '/' removed) into parent and base name. -1 for "/" or "". */
static int split_dir(const char *dir, char **norm, char **parent, char **base) {
    char *d = shard_xstrdup(dir);
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    char *slash = strrchr(d, '/');
    if (n == 0 || !strcmp(d, "/") || !strcmp(d, ".") || !strcmp(d, "..") ||
        (slash && (!strcmp(slash + 1, ".") || !strcmp(slash + 1, "..")))) {
        free(d);
        return -1;
    }
    *norm = d;
    if (!slash) {
        *parent = shard_xstrdup(".");
        *base = shard_xstrdup(d);
    } else {
        *base = shard_xstrdup(slash + 1);
        size_t pn = slash == d ? 1 : (size_t)(slash - d);
        *parent = shard_xmalloc(pn + 1);
        memcpy(*parent, d, pn);
        (*parent)[pn] = 0;
    }
    return 0;
}

/* 1 if dir exists and holds anything but . and .., 0 if empty, -1 on error. */
static int dir_nonempty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int any = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            any = 1;
            break;
        }
    closedir(d);
    return any;
}

static void remove_tree_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void writer_free(shard_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->dir);
    free(w->parent);
    free(w->stage);
    free(w->frames);
    if (w->rows != w->raw) free(w->rows);
    free(w->raw);
    free(w->labels);
    free(w->comp);
    ZSTD_freeCCtx(w->cctx);
    shard_manifest_free(&w->man);
    free(w);
}

/* The compressor as every frame is made: level, zstd's content checksum
 * (zstd itself catches a bad decode; our CRC of the compressed bytes names a
 * corrupt frame before we decode it) and the content size. 0 or a zstd error. */
static size_t cctx_setup(ZSTD_CCtx *c, int level) {
    size_t zr = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(zr)) zr = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(zr)) zr = ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
    return zr;
}

/* 1 + "DIR: interrupted by SIG...: nothing written" in err when a caught
 * SIGINT/SIGTERM is pending (shard_interrupt_catch), else 0. */
static int writer_interrupted(const shard_writer *w, char *err, size_t errlen) {
    int sig = shard_interrupt_pending();
    if (!sig) return 0;
    shard_err(err, errlen, "%s: interrupted by %s: nothing written (the staging directory is "
              "removed)", w->dir, shard_interrupt_name(sig));
    return 1;
}

/* dir as the writer takes it, making nothing: its place (where a symbolic
 * link points: the stage goes beside that) into *norm, *parent and *base
 * (the caller frees them), neither a dataset nor a file there, its parent
 * makeable and writable. 0 or -1 + err. */
static int writer_place(const char *dir, char **norm, char **parent, char **base, char *err,
                        size_t errlen) {
    char place[4096], why[SHARD_ERR_MAX / 2] = "";
    struct stat st;
    if (shard_out_place(dir, SHARD_PLACE_DIR | SHARD_PLACE_RENAMED, place, sizeof place, err, errlen))
        return -1;
    if (split_dir(place, norm, parent, base)) {
        shard_err(err, errlen, "'%s': not usable as an output directory", dir);
        return -1;
    }
    int ne = stat(*norm, &st) != 0 ? 0 : S_ISDIR(st.st_mode) ? dir_nonempty(*norm) : -1;
    if (ne != 0)
        shard_err(err, errlen, "%s: exists and is %s (will not overwrite a dataset; remove it or choose "
                  "another output)", *norm, S_ISDIR(st.st_mode) ? "not empty" : "not a directory");
    else if (shard_dir_makeable(*parent, why, sizeof why))
        shard_err(err, errlen, "%s: %s", *norm, why);
    if (ne == 0 && !why[0]) return 0;
    free(*norm);
    free(*parent);
    free(*base);
    *norm = *parent = *base = NULL;
    return -1;
}

int shard_writer_check(const char *dir, char *err, size_t errlen) {
    char *norm, *parent, *base;
    if (writer_place(dir, &norm, &parent, &base, err, errlen)) return -1;
    free(norm);
    free(parent);
    free(base);
    return 0;
}

int shard_writer_open(shard_writer **wp, const char *dir, const shard_schema *schema,
                      const shard_pack_opts *o, char *err, size_t errlen) {
    *wp = NULL;
    char why[SHARD_ERR_MAX / 2];
    if (shard_schema_check(schema, why, sizeof why)) {
        shard_err(err, errlen, "%s: schema: %s", dir, why);
        return -1;
    }
    if (shard_pack_opts_check(o, why, sizeof why)) {
        shard_err(err, errlen, "%s: %s", dir, why);
        return -1;
    }
    size_t per = shard_schema_record_bytes(schema) + shard_label_bytes(schema);
    if ((uint64_t)o->records_per_frame * per > SHARD_MAX_FRAME_RAW) {
        shard_err(err, errlen, "%s: %u records per frame of %zu bytes exceed the %llu-byte frame "
                  "limit", dir, o->records_per_frame, per,
                  (unsigned long long)SHARD_MAX_FRAME_RAW);
        return -1;
    }
    shard_writer *w = shard_xcalloc(1, sizeof *w);
    char *base = NULL;
    if (writer_place(dir, &w->dir, &w->parent, &base, err, errlen)) {
        writer_free(w);
        return -1;
    }
    size_t sn = strlen(w->parent) + strlen(base) + 48;
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".partial-%ld", (long)getpid());
    w->stage = shard_xmalloc(sn);
    shard_sibling_path(w->stage, sn, w->parent, ".", base, suffix);
    free(base);
    if (shard_make_dirs(w->parent, why, sizeof why)) { /* as mkdir -p: parents are made */
        shard_err(err, errlen, "%s: %s", w->dir, why);
        writer_free(w);
        return -1;
    }
    if (mkdir(w->stage, 0755) != 0) {
        shard_err(err, errlen, "%s: cannot create staging directory %s: %s", w->dir, w->stage,
                  strerror(errno));
        writer_free(w);
        return -1;
    }
    w->schema = *schema; /* one spelling: names NUL-padded, unused fields zero */
    for (uint32_t i = 0; i < SHARD_MAX_FIELDS; i++) {
        shard_field *f = &w->schema.fields[i];
        if (i >= schema->nfields) memset(f, 0, sizeof *f);
        size_t nl = strnlen(f->name, SHARD_FIELD_NAME_MAX);
        memset(f->name + nl, 0, SHARD_FIELD_NAME_MAX - nl);
    }
    w->o = *o;
    w->rec = shard_schema_record_bytes(schema);
    w->lab = shard_label_bytes(schema);
    w->per = per;
    w->raw = shard_xmalloc((size_t)o->records_per_frame * per);
    /* an image frame's pixel column is its rows: staged in place, as v1 always was */
    w->rows = schema->nfields ? shard_xmalloc((size_t)o->records_per_frame * w->rec) : w->raw;
    w->labels = shard_xmalloc(o->records_per_frame);
    w->comp_cap = ZSTD_compressBound((size_t)o->records_per_frame * per);
    w->comp = shard_xmalloc(w->comp_cap);
    w->cctx = ZSTD_createCCtx();
    SHARD_ASSERT(w->cctx);
    size_t zr = cctx_setup(w->cctx, o->level);
    if (ZSTD_isError(zr)) {
        shard_err(err, errlen, "%s: zstd: %s", w->dir, ZSTD_getErrorName(zr));
        shard_writer_abort(w);
        return -1;
    }
    w->man.schema = w->schema;
    snprintf(w->man.split, sizeof w->man.split, "%s", o->split);
    w->man.records_per_shard = o->records_per_shard;
    w->man.records_per_frame = o->records_per_frame;
    w->man.level = o->level;
    w->man.has_stats = w->schema.nfields == 0; /* image datasets carry their sums (manifest v3/v4) */
    *wp = w;
    return 0;
}

static int write_bytes(shard_writer *w, const void *p, size_t n, char *err, size_t errlen) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        shard_err(err, errlen, "%s: write error: %s", w->tmp, strerror(errno));
        return -1;
    }
    w->off += n;
    return 0;
}

static int shard_begin(shard_writer *w, char *err, size_t errlen) {
    if (w->man.nshards >= SHARD_MAX_SHARDS) { /* a reader would refuse the manifest */
        shard_err(err, errlen, "%s: more than %u shards: raise the records per shard", w->dir,
                  SHARD_MAX_SHARDS);
        return -1;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s/shard-%05u.jshard.tmp", w->stage, w->man.nshards);
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        shard_err(err, errlen, "%s: cannot create: %s", w->tmp, strerror(errno));
        return -1;
    }
    uint8_t zero[SHARD_HEAD_MAX] = {0}; /* the real header goes here at the end */
    w->off = 0;
    w->shard_records = 0;
    w->nframes = 0;
    return write_bytes(w, zero, shard_head_bytes(&w->schema), err, errlen);
}

static int frame_flush(shard_writer *w, char *err, size_t errlen) {
    uint32_t n = w->frame_records;
    if (n == 0) return 0;
    if (w->rows != w->raw) shard_frame_pack(&w->schema, w->rows, NULL, n, w->raw);
    else if (w->lab) memcpy(w->raw + (size_t)n * w->rec, w->labels, n);
    size_t raw_bytes = (size_t)n * w->per;
    size_t c = ZSTD_compress2(w->cctx, w->comp, w->comp_cap, w->raw, raw_bytes);
    if (ZSTD_isError(c)) {
        shard_err(err, errlen, "%s: zstd: %s", w->tmp, ZSTD_getErrorName(c));
        return -1;
    }
    if (w->nframes >= SHARD_MAX_FRAMES) { /* a reader would refuse the index */
        shard_err(err, errlen, "%s: more than %u frames in one shard: raise the records "
                  "per frame", w->tmp, SHARD_MAX_FRAMES);
        return -1;
    }
    if (w->nframes == w->cap_frames) {
        w->cap_frames = w->cap_frames ? 2 * w->cap_frames : 16;
        shard_frame *nf = realloc(w->frames, w->cap_frames * sizeof *nf);
        SHARD_ASSERT(nf);
        w->frames = nf;
    }
    shard_frame *f = &w->frames[w->nframes++];
    f->offset = w->off;
    f->comp_bytes = (uint32_t)c;
    f->raw_bytes = (uint32_t)raw_bytes;
    f->first_record = w->shard_records;
    f->records = n;
    f->crc = shard_crc32(w->comp, c);
    w->shard_records += n;
    w->frame_records = 0;
    return write_bytes(w, w->comp, c, err, errlen);
}

static int shard_finish(shard_writer *w, char *err, size_t errlen) {
    if (frame_flush(w, err, errlen)) return -1;
    shard_file sf;
    memset(&sf, 0, sizeof sf);
    sf.schema = w->schema;
    sf.records_per_frame = w->o.records_per_frame;
    sf.level = w->o.level;
    sf.records = w->shard_records;
    sf.nframes = w->nframes;
    sf.index_offset = w->off;
    size_t ilen = (size_t)w->nframes * SHARD_INDEX_ENTRY_BYTES;
    uint8_t *idx = shard_xmalloc(ilen);
    shard_index_encode(w->frames, w->nframes, idx);
    sf.index_crc = shard_crc32(idx, ilen);
    sf.file_bytes = w->off + ilen;
    uint8_t h[SHARD_HEAD_MAX];
    shard_header_encode(&sf, h);
    int bad = write_bytes(w, idx, ilen, err, errlen);
    free(idx);
    if (bad) return -1;
    size_t hn = (size_t)sf.data_offset;
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, hn, w->f) != hn ||
        fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) {
        shard_err(err, errlen, "%s: write error: %s", w->tmp, strerror(errno));
        return -1;
    }
    int rc = fclose(w->f);
    w->f = NULL;
    if (w->man.nshards == w->cap_shards) {
        w->cap_shards = w->cap_shards ? 2 * w->cap_shards : 16;
        shard_manifest_entry *ne = realloc(w->man.shards, w->cap_shards * sizeof *ne);
        SHARD_ASSERT(ne);
        w->man.shards = ne;
    }
    shard_manifest_entry *e = &w->man.shards[w->man.nshards];
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "shard-%05u.jshard", w->man.nshards);
    e->records = w->shard_records;
    e->bytes = sf.file_bytes;
    e->header_crc = shard_get32(h + SHARD_HEADER_CRC_AT);
    char final[4096];
    snprintf(final, sizeof final, "%s/%s", w->stage, e->file);
    if (rc != 0 || rename(w->tmp, final) != 0) {
        shard_err(err, errlen, "%s: write error: %s", w->tmp, strerror(errno));
        return -1;
    }
    w->man.nshards++;
    w->man.records += w->shard_records;
    return 0;
}

int shard_writer_add(shard_writer *w, const uint8_t *pixels, const uint8_t *labels, uint64_t n,
                     char *err, size_t errlen) {
    SHARD_ASSERT(w && (pixels || n == 0));
    if ((labels != NULL) != (w->lab != 0)) {
        shard_err(err, errlen, "%s: labels %s but the schema has %s", w->dir,
                  labels ? "given" : "missing", w->lab ? "labels" : "none");
        return -1;
    }
    if (writer_interrupted(w, err, errlen)) return -1;
    char msg[SHARD_ERR_MAX / 2];
    for (uint64_t i = 0; i < n; i++) { /* all checks first: nothing of a bad call is written */
        if (labels && labels[i] >= w->schema.num_classes) {
            shard_err(err, errlen, "%s: record %llu: label %u not below num_classes %u", w->dir,
                      (unsigned long long)(w->total + i), labels[i], w->schema.num_classes);
            return -1;
        }
        if (shard_record_check_finite(&w->schema, pixels + i * w->rec, msg, sizeof msg)) {
            shard_err(err, errlen, "%s: record %llu: %s", w->dir,
                      (unsigned long long)(w->total + i), msg);
            return -1;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        if (writer_interrupted(w, err, errlen)) return -1; /* a frame may take seconds */
        if (!w->f && shard_begin(w, err, errlen)) return -1;
        if (w->man.has_stats) {
            const uint8_t *p = pixels + i * w->rec;
            uint64_t s1 = 0, s2 = 0; /* a record is <= 64 MiB: no overflow */
            for (size_t k = 0; k < w->rec; k++) {
                s1 += p[k];
                s2 += (uint64_t)p[k] * p[k];
            }
            w->man.stats.count += w->rec;
            w->man.stats.sum += s1;
            w->man.stats.sum_sq += s2;
        }
        memcpy(w->rows + (size_t)w->frame_records * w->rec, pixels + i * w->rec, w->rec);
        if (labels) w->labels[w->frame_records] = labels[i];
        w->frame_records++;
        w->total++;
        if (w->frame_records == w->o.records_per_frame && frame_flush(w, err, errlen)) return -1;
        if (w->shard_records + w->frame_records == w->o.records_per_shard &&
            shard_finish(w, err, errlen))
            return -1;
    }
    return 0;
}

int shard_writer_set_classes(shard_writer *w, const char *const *names, uint32_t n, char *err,
                             size_t errlen) {
    SHARD_ASSERT(w && !w->man.nclasses);
    const shard_schema *s = &w->man.schema;
    if (s->nfields || s->label != SHARD_LABEL_U8 || n != s->num_classes) {
        shard_err(err, errlen, "%s: %u class names, but the schema has %u labelled classes",
                  w->dir, n, s->label == SHARD_LABEL_U8 ? s->num_classes : 0);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *why = shard_class_name_check(names[i], strlen(names[i]));
        if (why) {
            shard_err(err, errlen, "%s: class %u: the name %s", w->dir, i, why);
            return -1;
        }
    }
    w->man.class_names = shard_xcalloc(n, sizeof *w->man.class_names);
    w->man.nclasses = n;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) + 1;
        w->man.class_names[i] = shard_xmalloc(len);
        memcpy(w->man.class_names[i], names[i], len);
    }
    return 0;
}

/* Writes stage/manifest.json atomically. */
static int manifest_commit(shard_writer *w, char *err, size_t errlen) {
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", w->stage, SHARD_MANIFEST);
    snprintf(final, sizeof final, "%s/%s", w->stage, SHARD_MANIFEST);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        shard_err(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = shard_manifest_write(&w->man, f) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, final) != 0) {
        shard_err(err, errlen, "%s: write error: %s", tmp, strerror(errno));
        return -1;
    }
    return 0;
}

int shard_writer_close(shard_writer *w, char *err, size_t errlen) {
    SHARD_ASSERT(w);
    if (w->f && shard_finish(w, err, errlen)) {
        shard_writer_abort(w);
        return -1;
    }
    if (w->man.nshards == 0) {
        shard_err(err, errlen, "%s: no records to write", w->dir);
        shard_writer_abort(w);
        return -1;
    }
    if (writer_interrupted(w, err, errlen) || manifest_commit(w, err, errlen) != 0) {
        shard_writer_abort(w);
        return -1;
    }
    shard_fsync_dir(w->stage);
    if (writer_interrupted(w, err, errlen)) { /* the last moment before it is all there */
        shard_writer_abort(w);
        return -1;
    }
    /* rename replaces dir when it is an empty directory (checked at open) */
    if (rename(w->stage, w->dir) != 0) {
        shard_err(err, errlen, "%s: cannot move the finished dataset from %s into place: %s",
                  w->dir, w->stage, strerror(errno));
        shard_writer_abort(w);
        return -1;
    }
    shard_fsync_dir(w->parent);
    writer_free(w);
    return 0;
}

void shard_writer_abort(shard_writer *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    remove_tree_flat(w->stage);
    writer_free(w);
}

int shard_frame_estimate(const shard_schema *s, const shard_pack_opts *o, const uint8_t *rows,
                         const uint8_t *labels, uint32_t n, uint64_t *bytes, char *err,
                         size_t errlen) {
    size_t per = shard_schema_record_bytes(s) + shard_label_bytes(s);
    SHARD_ASSERT(n >= 1 && (uint64_t)n * per <= SHARD_MAX_FRAME_RAW);
    SHARD_ASSERT((labels != NULL) == (shard_label_bytes(s) != 0));
    size_t raw_bytes = (size_t)n * per, cap = ZSTD_compressBound(raw_bytes);
    uint8_t *raw = shard_xmalloc(raw_bytes), *comp = shard_xmalloc(cap);
    shard_frame_pack(s, rows, labels, n, raw);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    SHARD_ASSERT(c);
    size_t zr = cctx_setup(c, o->level);
    if (!ZSTD_isError(zr)) zr = ZSTD_compress2(c, comp, cap, raw, raw_bytes);
    ZSTD_freeCCtx(c);
    free(raw);
    free(comp);
    if (ZSTD_isError(zr)) {
        shard_err(err, errlen, "zstd: %s", ZSTD_getErrorName(zr));
        return -1;
    }
    *bytes = zr;
    return 0;
}

int shard_pack(const char *dir, const shard_images *src, const shard_pack_opts *o, char *err,
               size_t errlen) {
    shard_writer *w;
    if (shard_writer_open(&w, dir, &src->schema, o, err, errlen)) return -1;
    if ((src->nclasses && shard_writer_set_classes(w, (const char *const *)src->class_names,
                                                   src->nclasses, err, errlen)) ||
        shard_writer_add(w, src->pixels, src->labels, src->n, err, errlen)) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w, err, errlen);
}

int shard_pack_stream(const char *dir, shard_image_src *src, const shard_pack_opts *o,
                      shard_pack_progress_fn progress, void *ctx, char *err, size_t errlen) {
    const shard_images *in = shard_image_src_info(src);
    shard_writer *w;
    if (shard_writer_open(&w, dir, &in->schema, o, err, errlen)) return -1;
    if (in->nclasses && shard_writer_set_classes(w, (const char *const *)in->class_names,
                                                 in->nclasses, err, errlen)) {
        shard_writer_abort(w);
        return -1;
    }
    /* one frame's records a chunk: open checked that a frame fits its limit */
    size_t rec = shard_schema_record_bytes(&in->schema), chunk = o->records_per_frame;
    uint8_t *pix = shard_xmalloc(chunk * rec); /* (chunk, rec) */
    uint8_t *lab = in->schema.label == SHARD_LABEL_U8 ? shard_xmalloc(chunk) : NULL;
    int rc = 0;
    for (uint64_t i = 0; i < in->n && !rc; i += chunk) {
        uint64_t k = in->n - i < chunk ? in->n - i : chunk;
        rc = shard_image_src_next(src, pix, lab, k, err, errlen) ||
             shard_writer_add(w, pix, lab, k, err, errlen);
        if (!rc && progress) progress(ctx, i + k, in->n);
    }
    free(pix);
    free(lab);
    if (rc) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w, err, errlen);
}
