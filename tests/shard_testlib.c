/* shard_testlib.c - see shard_testlib.h. The forger goes through the
 * library's internal layout functions (shard_internal.h) on purpose: it
 * must produce exactly what a writer would, checksums included, with one
 * value changed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "shard_internal.h"
#include "shard_testlib.h"

static void set_field(shard_field *f, const char *name, shard_dtype t, uint32_t ndim,
                      const uint32_t *shape) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->dtype = t;
    f->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) f->shape[d] = shape[d];
}

void tl_world_schema(shard_schema *s, uint32_t T, uint32_t side) {
    memset(s, 0, sizeof *s);
    s->nfields = 3;
    set_field(&s->fields[0], "frames", SHARD_DTYPE_U8, 4, (uint32_t[]){T, 1, side, side});
    set_field(&s->fields[1], "actions", SHARD_DTYPE_F32, 2, (uint32_t[]){T - 1, 2});
    set_field(&s->fields[2], "state", SHARD_DTYPE_F32, 2, (uint32_t[]){T, 2});
}

static void put_f32(uint8_t *p, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    shard_put32(p, u);
}

void tl_world_record(const shard_schema *s, uint64_t i, uint8_t *rec) {
    size_t nf = shard_field_bytes(&s->fields[0]);
    for (size_t j = 0; j < nf; j++)
        rec[j] = j < 4 ? (uint8_t)(i >> (8 * j)) : (uint8_t)((i * 7 + j * 13) & 255);
    uint8_t *a = rec + shard_schema_field_offset(s, 1);
    for (uint32_t t = 0; t < s->fields[1].shape[0]; t++)
        for (uint32_t k = 0; k < 2; k++)
            put_f32(a + 4 * (2 * t + k), (float)i + (float)t / 4 + (float)k / 8);
    uint8_t *st = rec + shard_schema_field_offset(s, 2);
    for (uint32_t t = 0; t < s->fields[2].shape[0]; t++)
        for (uint32_t k = 0; k < 2; k++)
            put_f32(st + 4 * (2 * t + k), -((float)i + (float)t / 2) - (float)k);
}

uint32_t tl_record_id(const uint8_t *rec) { return shard_get32(rec); }

int tl_world_write(const char *dir, uint64_t n, uint32_t T, uint32_t side, uint32_t rps,
                   uint32_t rpf, char *err, size_t errlen) {
    shard_schema s;
    tl_world_schema(&s, T, side);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = rps;
    o.records_per_frame = rpf;
    o.level = 1;
    size_t rec = shard_schema_record_bytes(&s);
    uint8_t *buf = malloc(n * rec + 1);
    for (uint64_t i = 0; i < n; i++) tl_world_record(&s, i, buf + i * rec);
    shard_writer *w;
    if (shard_writer_open(&w, dir, &s, &o, err, errlen)) {
        free(buf);
        return -1;
    }
    for (uint64_t i = 0, k = 1; i < n; i += k, k = k * 3 % 17 + 1) { /* uneven add() calls */
        if (k > n - i) k = n - i;
        if (shard_writer_add(w, buf + i * rec, NULL, k, err, errlen)) {
            shard_writer_abort(w);
            free(buf);
            return -1;
        }
    }
    free(buf);
    return shard_writer_close(w, err, errlen);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int spill(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(b, 1, n, f) != n;
    return fclose(f) != 0 || bad ? -1 : 0;
}

/* Re-encodes frame fi of the shard file bytes `file` with its raw bytes
 * replaced by raw; writes the re-sealed file to path. The new header CRC
 * and size come back for the manifest. */
static int reseal(const shard_file *sf, const uint8_t *file, uint32_t fi, const uint8_t *raw,
                  const char *path, uint32_t *hcrc, uint64_t *bytes) {
    size_t cap = ZSTD_compressBound(sf->frames[fi].raw_bytes);
    uint8_t *comp = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, sf->level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    size_t cn = ZSTD_compress2(cc, comp, cap, raw, sf->frames[fi].raw_bytes);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(cn)) {
        free(comp);
        return -1;
    }
    shard_file nf = *sf;
    nf.frames = malloc(sf->nframes * sizeof *nf.frames);
    uint8_t *out = malloc(sf->file_bytes + cn + SHARD_HEAD_MAX);
    uint64_t off = sf->data_offset;
    for (uint32_t i = 0; i < sf->nframes; i++) {
        shard_frame f = sf->frames[i];
        const uint8_t *src = file + f.offset;
        if (i == fi) {
            f.comp_bytes = (uint32_t)cn;
            f.crc = shard_crc32(comp, cn);
            src = comp;
        }
        memcpy(out + off, src, f.comp_bytes);
        f.offset = off;
        off += f.comp_bytes;
        nf.frames[i] = f;
    }
    nf.index_offset = off;
    shard_index_encode(nf.frames, nf.nframes, out + off);
    nf.index_crc = shard_crc32(out + off, (size_t)nf.nframes * SHARD_INDEX_ENTRY_BYTES);
    nf.file_bytes = off + (uint64_t)nf.nframes * SHARD_INDEX_ENTRY_BYTES;
    shard_header_encode(&nf, out);
    *hcrc = shard_get32(out + SHARD_HEADER_CRC_AT);
    *bytes = nf.file_bytes;
    int rc = spill(path, out, nf.file_bytes);
    free(out);
    free(nf.frames);
    free(comp);
    return rc;
}

int tl_forge_record(const char *dir, uint64_t index, size_t at, uint32_t v, char *err,
                    size_t errlen) {
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    uint32_t s = 0;
    while (s + 1 < ds->man.nshards && ds->first[s + 1] <= index) s++;
    const shard_file *sf = &ds->files[s];
    uint64_t in = index - ds->first[s];
    uint32_t fi = (uint32_t)(in / sf->records_per_frame), k = (uint32_t)(in % sf->records_per_frame);
    uint32_t n = sf->frames[fi].records;
    size_t rec = ds->record_bytes, len = 0;
    uint8_t *file = slurp(ds->paths[s], &len);
    uint8_t *raw = malloc(sf->frames[fi].raw_bytes), *rows = malloc((size_t)n * rec);
    uint8_t *labels = malloc(n);
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    int rc = -1;
    if (file && at + 4 <= rec &&
        !shard_frame_decode(sf, fi, file + sf->frames[fi].offset, raw, dc, err, errlen)) {
        shard_frame_unpack(&ds->man.schema, raw, n, rows, labels);
        shard_put32(rows + (size_t)k * rec + at, v);
        shard_frame_pack(&ds->man.schema, rows, labels, n, raw);
        uint32_t hcrc;
        uint64_t bytes;
        char mp[4096];
        snprintf(mp, sizeof mp, "%s/%s", ds->dir, SHARD_MANIFEST);
        FILE *mf = NULL;
        if (!reseal(sf, file, fi, raw, ds->paths[s], &hcrc, &bytes) &&
            (mf = fopen(mp, "wb")) != NULL) {
            ds->man.shards[s].header_crc = hcrc;
            ds->man.shards[s].bytes = bytes;
            rc = shard_manifest_write(&ds->man, mf);
        }
        if (mf && fclose(mf) != 0) rc = -1;
        if (rc) snprintf(err, errlen, "%s: cannot rewrite", ds->paths[s]);
    } else if (!file || at + 4 > rec) {
        snprintf(err, errlen, "%s: cannot read, or offset %zu outside the record", ds->paths[s],
                 at);
    }
    ZSTD_freeDCtx(dc);
    free(file);
    free(raw);
    free(rows);
    free(labels);
    shard_dataset_close(ds);
    return rc;
}

int tl_partial_dirs(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".partial-") != NULL;
    if (d) closedir(d);
    return n;
}

/* --------------------------------------------------------------- manifest */
#define TL_TAIL 22 /* "crc32": "XXXXXXXX"\n}\n */

uint32_t tl_manifest_crc(const char *text, size_t n) {
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)text, (uInt)(n - TL_TAIL));
}

int tl_manifest_reseal(char *text, size_t n) {
    if (n < TL_TAIL || memcmp(text + n - TL_TAIL, "\"crc32\": \"", 10)) return -1;
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", tl_manifest_crc(text, n));
    memcpy(text + n - TL_TAIL + 10, hex, 8);
    return 0;
}

char *tl_manifest_unseal(const char *text, size_t n, int version) {
    /* our writer's last lines: "  ],\n  \"crc32\": \"XXXXXXXX\"\n}\n" */
    static const char before[] = "  ],\n  ";
    size_t b = sizeof before - 1;
    const char *v = strstr(text, "\"version\": 4,");
    if (n < TL_TAIL + b || !v || memcmp(text + n - TL_TAIL - b, before, b)) return NULL;
    size_t keep = n - TL_TAIL - b;
    char *out = malloc(keep + 16);
    memcpy(out, text, keep);
    memcpy(out + keep, "  ]\n}\n", 7); /* 6 bytes and the NUL */
    out[v - text + 11] = (char)('0' + version);
    return out;
}

int tl_manifest_rewrites_same(const char *text, size_t n) {
    char err[SHARD_ERR_MAX], *buf = NULL;
    size_t blen = 0;
    shard_manifest m;
    if (shard_manifest_parse(&m, text, n, "m.json", err, sizeof err) != 0) return 0;
    FILE *f = open_memstream(&buf, &blen);
    int same = f && shard_manifest_write(&m, f) == 0;
    if (f) fclose(f);
    same = same && blen == n && memcmp(buf, text, n) == 0;
    free(buf);
    shard_manifest_free(&m);
    return same;
}
