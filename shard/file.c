/* file.c - one shard file: encoding and (distrustful) parsing of its header
 * and frame index, and decoding of a frame. Layout, little-endian, see
 * docs/shard-format.md:
 *   header (128 bytes) | frame 0 | frame 1 | ... | index (32 bytes per frame)
 * The header's CRC covers the header (which holds the index CRC, which covers
 * each frame's CRC), so one stored header CRC (also kept in the manifest)
 * pins the whole file. Every failure is one line "PATH: offset N: what". */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "shard_internal.h"

/* Fuzzing builds accept bad checksums so the fuzzer reaches the checks that
 * follow them (libFuzzer's convention); never defined in real builds. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SHARD_CRC_BAD(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define SHARD_CRC_BAD(stored, computed) ((stored) != (computed))
#endif

/* header field offsets; H_NFIELDS and H_FIELDS_CRC are v2 only (reserved in v1) */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_BYTES = 12, H_HEIGHT = 16, H_WIDTH = 20,
    H_CHANNELS = 24, H_DTYPE = 28, H_LABEL = 32, H_CLASSES = 36, H_RECORD_BYTES = 40,
    H_PER_FRAME = 44, H_RECORDS = 48, H_FRAMES = 56, H_LEVEL = 60, H_INDEX_OFFSET = 64,
    H_FILE_BYTES = 72, H_INDEX_CRC = 80, H_RESERVED = 84, H_NFIELDS = 84, H_FIELDS_CRC = 88,
    H_RESERVED2 = 92
};
/* field table entry offsets */
enum { F_NAME = 0, F_DTYPE = 32, F_NDIM = 36, F_SHAPE = 40, F_RESERVED = 56 };
/* index entry field offsets */
enum { I_OFFSET = 0, I_COMP = 8, I_RAW = 12, I_FIRST = 16, I_RECORDS = 24, I_CRC = 28 };

uint64_t shard_head_bytes(const shard_schema *s) {
    return SHARD_HEADER_BYTES + (uint64_t)s->nfields * SHARD_FIELD_ENTRY_BYTES;
}

static void fields_encode(const shard_schema *s, uint8_t *tab) {
    memset(tab, 0, (size_t)s->nfields * SHARD_FIELD_ENTRY_BYTES);
    for (uint32_t i = 0; i < s->nfields; i++) {
        const shard_field *f = &s->fields[i];
        uint8_t *e = tab + (size_t)i * SHARD_FIELD_ENTRY_BYTES;
        memcpy(e + F_NAME, f->name, strnlen(f->name, SHARD_FIELD_NAME_MAX));
        shard_put32(e + F_DTYPE, (uint32_t)f->dtype);
        shard_put32(e + F_NDIM, f->ndim);
        for (uint32_t d = 0; d < f->ndim; d++) shard_put32(e + F_SHAPE + 4 * d, f->shape[d]);
    }
}

void shard_header_encode(shard_file *sf, uint8_t *h) {
    const shard_schema *s = &sf->schema;
    sf->version = s->nfields ? SHARD_VERSION_FIELDS : SHARD_VERSION_IMAGES;
    sf->data_offset = shard_head_bytes(s);
    memset(h, 0, SHARD_HEADER_BYTES);
    memcpy(h + H_MAGIC, SHARD_MAGIC, 8);
    shard_put32(h + H_VERSION, sf->version);
    shard_put32(h + H_HEADER_BYTES, SHARD_HEADER_BYTES);
    shard_put32(h + H_HEIGHT, s->height);
    shard_put32(h + H_WIDTH, s->width);
    shard_put32(h + H_CHANNELS, s->channels);
    shard_put32(h + H_DTYPE, (uint32_t)s->dtype);
    shard_put32(h + H_LABEL, (uint32_t)s->label);
    shard_put32(h + H_CLASSES, s->num_classes);
    shard_put32(h + H_RECORD_BYTES, (uint32_t)shard_schema_record_bytes(s));
    shard_put32(h + H_PER_FRAME, sf->records_per_frame);
    shard_put64(h + H_RECORDS, sf->records);
    shard_put32(h + H_FRAMES, sf->nframes);
    shard_put32(h + H_LEVEL, (uint32_t)sf->level);
    shard_put64(h + H_INDEX_OFFSET, sf->index_offset);
    shard_put64(h + H_FILE_BYTES, sf->file_bytes);
    shard_put32(h + H_INDEX_CRC, sf->index_crc);
    if (s->nfields) { /* v1 leaves these reserved bytes 0 */
        uint8_t *tab = h + SHARD_HEADER_BYTES;
        fields_encode(s, tab);
        sf->fields_crc = shard_crc32(tab, (size_t)s->nfields * SHARD_FIELD_ENTRY_BYTES);
        shard_put32(h + H_NFIELDS, s->nfields);
        shard_put32(h + H_FIELDS_CRC, sf->fields_crc);
    }
    shard_put32(h + SHARD_HEADER_CRC_AT, shard_crc32(h, SHARD_HEADER_CRC_AT));
}

void shard_index_encode(const shard_frame *fr, uint32_t n, uint8_t *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = out + (size_t)i * SHARD_INDEX_ENTRY_BYTES;
        shard_put64(e + I_OFFSET, fr[i].offset);
        shard_put32(e + I_COMP, fr[i].comp_bytes);
        shard_put32(e + I_RAW, fr[i].raw_bytes);
        shard_put64(e + I_FIRST, fr[i].first_record);
        shard_put32(e + I_RECORDS, fr[i].records);
        shard_put32(e + I_CRC, fr[i].crc);
    }
}

#define FAIL_AT(off, ...)                                                                    \
    do {                                                                                     \
        char msg_[SHARD_ERR_MAX / 2];                                                        \
        shard_err(msg_, sizeof msg_, __VA_ARGS__);                                           \
        shard_err(err, errlen, "%s: offset %llu: %s", sf->path, (unsigned long long)(off),   \
                  msg_);                                                                     \
        return -1;                                                                           \
    } while (0)

/* Magic, size, version, header size, header CRC and reserved bytes: the
 * fixed part every version shares, checked before any number is used. */
static int header_prefix(shard_file *sf, const uint8_t *h, uint64_t file_size, char *err,
                         size_t errlen) {
    if (file_size >= 8 && memcmp(h + H_MAGIC, SHARD_MAGIC, 8) != 0)
        FAIL_AT(H_MAGIC, "bad magic (not a jepa shard file)");
    if (file_size < SHARD_HEADER_BYTES)
        FAIL_AT(file_size, "truncated: file is %llu bytes, a shard header is %u",
                (unsigned long long)file_size, SHARD_HEADER_BYTES);
    sf->version = shard_get32(h + H_VERSION);
    if (sf->version != SHARD_VERSION_IMAGES && sf->version != SHARD_VERSION_FIELDS)
        FAIL_AT(H_VERSION, "shard version %u not supported (this build reads %u and %u)",
                sf->version, SHARD_VERSION_IMAGES, SHARD_VERSION_FIELDS);
    if (shard_get32(h + H_HEADER_BYTES) != SHARD_HEADER_BYTES)
        FAIL_AT(H_HEADER_BYTES, "header size %u, expected %u", shard_get32(h + H_HEADER_BYTES),
                SHARD_HEADER_BYTES);
    uint32_t stored = shard_get32(h + SHARD_HEADER_CRC_AT);
    uint32_t computed = shard_crc32(h, SHARD_HEADER_CRC_AT);
    if (SHARD_CRC_BAD(stored, computed))
        FAIL_AT(SHARD_HEADER_CRC_AT,
                "header checksum mismatch (stored %08x, computed %08x): header corrupt", stored,
                computed);
    sf->header_crc = stored;
    uint32_t from = sf->version == SHARD_VERSION_FIELDS ? H_RESERVED2 : H_RESERVED;
    for (uint32_t i = from; i < SHARD_HEADER_CRC_AT; i++)
        if (h[i]) FAIL_AT(i, "reserved header byte is %u, must be 0", h[i]);
    return 0;
}

/* v2: the field table after the header; its count and CRC are in the header. */
static int fields_parse(shard_file *sf, const uint8_t *head, size_t head_len, char *err,
                        size_t errlen) {
    shard_schema *s = &sf->schema;
    s->nfields = shard_get32(head + H_NFIELDS);
    if (s->nfields < 1 || s->nfields > SHARD_MAX_FIELDS)
        FAIL_AT(H_NFIELDS, "field count %u out of range [1, %d]", s->nfields, SHARD_MAX_FIELDS);
    size_t len = (size_t)s->nfields * SHARD_FIELD_ENTRY_BYTES;
    if (head_len < SHARD_HEADER_BYTES + len)
        FAIL_AT(head_len, "truncated: file is %zu bytes, its field table ends at %zu", head_len,
                SHARD_HEADER_BYTES + len);
    const uint8_t *tab = head + SHARD_HEADER_BYTES;
    sf->fields_crc = shard_get32(head + H_FIELDS_CRC);
    uint32_t computed = shard_crc32(tab, len);
    if (SHARD_CRC_BAD(sf->fields_crc, computed))
        FAIL_AT(SHARD_HEADER_BYTES, "field table checksum mismatch (header %08x, computed "
                "%08x): field table corrupt", sf->fields_crc, computed);
    for (uint32_t i = 0; i < s->nfields; i++) {
        const uint8_t *e = tab + (size_t)i * SHARD_FIELD_ENTRY_BYTES;
        uint64_t at = SHARD_HEADER_BYTES + (uint64_t)i * SHARD_FIELD_ENTRY_BYTES;
        shard_field *f = &s->fields[i];
        memcpy(f->name, e + F_NAME, SHARD_FIELD_NAME_MAX);
        f->dtype = (shard_dtype)shard_get32(e + F_DTYPE);
        f->ndim = shard_get32(e + F_NDIM);
        for (int d = 0; d < SHARD_MAX_DIMS; d++) f->shape[d] = shard_get32(e + F_SHAPE + 4 * d);
        size_t nl = strnlen(f->name, SHARD_FIELD_NAME_MAX); /* NUL padding: one spelling */
        for (size_t k = nl + 1; k < SHARD_FIELD_NAME_MAX; k++)
            if (e[F_NAME + k]) FAIL_AT(at + k, "field table: name of field %u has byte %u after "
                                       "its NUL, must be 0", i, e[F_NAME + k]);
        for (uint32_t k = F_RESERVED; k < SHARD_FIELD_ENTRY_BYTES; k++)
            if (e[k]) FAIL_AT(at + k, "field table: reserved byte of field %u is %u, must be 0",
                              i, e[k]);
        char why[SHARD_ERR_MAX / 4];
        uint64_t bytes;
        if (shard_field_check(f, i, &bytes, why, sizeof why))
            FAIL_AT(at, "field table: %s", why);
    }
    return 0;
}

/* The schema (image members; v2: the field table first) and record bytes. */
static int schema_parse(shard_file *sf, const uint8_t *head, size_t head_len, char *err,
                        size_t errlen) {
    shard_schema *s = &sf->schema;
    memset(s, 0, sizeof *s);
    s->height = shard_get32(head + H_HEIGHT);
    s->width = shard_get32(head + H_WIDTH);
    s->channels = shard_get32(head + H_CHANNELS);
    s->dtype = (shard_dtype)shard_get32(head + H_DTYPE);
    s->label = (shard_label_kind)shard_get32(head + H_LABEL);
    s->num_classes = shard_get32(head + H_CLASSES);
    uint64_t at = H_HEIGHT;
    if (sf->version == SHARD_VERSION_FIELDS) {
        for (uint32_t i = H_HEIGHT; i < H_RECORD_BYTES; i++)
            if (head[i]) FAIL_AT(i, "image schema byte is %u in a version 2 shard, must be 0",
                                 head[i]);
        if (fields_parse(sf, head, head_len, err, errlen)) return -1;
        at = SHARD_HEADER_BYTES; /* what is left to find: a duplicate name, the total size */
    }
    char why[SHARD_ERR_MAX / 4];
    if (shard_schema_check(s, why, sizeof why)) FAIL_AT(at, "schema: %s", why);
    uint64_t rb = shard_schema_record_bytes(s);
    if (shard_get32(head + H_RECORD_BYTES) != rb) {
        if (s->nfields)
            FAIL_AT(H_RECORD_BYTES, "record bytes %u, but the %u fields make %llu",
                    shard_get32(head + H_RECORD_BYTES), s->nfields, (unsigned long long)rb);
        FAIL_AT(H_RECORD_BYTES, "record bytes %u, but %ux%ux%u makes %llu",
                shard_get32(head + H_RECORD_BYTES), s->height, s->width, s->channels,
                (unsigned long long)rb);
    }
    sf->data_offset = shard_head_bytes(s);
    return 0;
}

int shard_header_parse(shard_file *sf, const uint8_t *head, size_t head_len, uint64_t file_size,
                       char *err, size_t errlen) {
    SHARD_ASSERT(head_len == (file_size < SHARD_HEAD_MAX ? file_size : SHARD_HEAD_MAX));
    uint8_t h[SHARD_HEADER_BYTES] = {0}; /* a short file's missing bytes read as 0 */
    memcpy(h, head, head_len < sizeof h ? head_len : sizeof h);
    if (header_prefix(sf, h, file_size, err, errlen)) return -1;
    if (schema_parse(sf, head, head_len, err, errlen)) return -1;
    const shard_schema *s = &sf->schema;
    uint64_t per = shard_schema_record_bytes(s) + shard_label_bytes(s);

    sf->records_per_frame = shard_get32(h + H_PER_FRAME);
    if (sf->records_per_frame < 1 || (uint64_t)sf->records_per_frame * per > SHARD_MAX_FRAME_RAW)
        FAIL_AT(H_PER_FRAME, "records per frame %u out of range (1 to %llu records of %llu bytes)",
                sf->records_per_frame, (unsigned long long)(SHARD_MAX_FRAME_RAW / per),
                (unsigned long long)per);
    sf->records = shard_get64(h + H_RECORDS);
    sf->nframes = shard_get32(h + H_FRAMES);
    if (sf->nframes < 1 || sf->nframes > SHARD_MAX_FRAMES)
        FAIL_AT(H_FRAMES, "frame count %u out of range [1, %u]", sf->nframes, SHARD_MAX_FRAMES);
    /* both are bounded (2^24 frames of at most 2^28 records): no overflow */
    uint64_t max_records = (uint64_t)sf->nframes * sf->records_per_frame;
    if (sf->records <= max_records - sf->records_per_frame || sf->records > max_records)
        FAIL_AT(H_RECORDS, "record count %llu does not fit %u frames of %u records",
                (unsigned long long)sf->records, sf->nframes, sf->records_per_frame);
    sf->level = (int)shard_get32(h + H_LEVEL);
    sf->index_offset = shard_get64(h + H_INDEX_OFFSET);
    sf->file_bytes = shard_get64(h + H_FILE_BYTES);
    uint64_t index_bytes = (uint64_t)sf->nframes * SHARD_INDEX_ENTRY_BYTES;
    if (sf->file_bytes != file_size)
        FAIL_AT(file_size < sf->file_bytes ? file_size : sf->file_bytes,
                "file is %llu bytes, header says %llu (%s)", (unsigned long long)file_size,
                (unsigned long long)sf->file_bytes,
                file_size < sf->file_bytes ? "truncated" : "trailing bytes");
    if (sf->index_offset < sf->data_offset + sf->nframes || sf->index_offset > file_size)
        FAIL_AT(H_INDEX_OFFSET, "index offset %llu outside the file's frame area [%llu, %llu]",
                (unsigned long long)sf->index_offset,
                (unsigned long long)(sf->data_offset + sf->nframes),
                (unsigned long long)file_size);
    if (sf->file_bytes != sf->index_offset + index_bytes)
        FAIL_AT(H_FILE_BYTES, "file size field %llu disagrees with index end %llu",
                (unsigned long long)sf->file_bytes,
                (unsigned long long)(sf->index_offset + index_bytes));
    sf->index_crc = shard_get32(h + H_INDEX_CRC);
    sf->frames = NULL;
    return 0;
}

int shard_index_parse(shard_file *sf, const uint8_t *idx, size_t len, char *err,
                      size_t errlen) {
    SHARD_ASSERT(len == (size_t)sf->nframes * SHARD_INDEX_ENTRY_BYTES);
    uint32_t computed = shard_crc32(idx, len);
    if (SHARD_CRC_BAD(sf->index_crc, computed))
        FAIL_AT(sf->index_offset, "index checksum mismatch (header %08x, computed %08x): index "
                "corrupt", sf->index_crc, computed);
    size_t per = shard_schema_record_bytes(&sf->schema) + shard_label_bytes(&sf->schema);
    shard_frame *fr = shard_xcalloc(sf->nframes, sizeof *fr);
    uint64_t expect_off = sf->data_offset;
    sf->max_comp = sf->max_raw = 0;
    for (uint32_t i = 0; i < sf->nframes; i++) {
        const uint8_t *e = idx + (size_t)i * SHARD_INDEX_ENTRY_BYTES;
        uint64_t at = sf->index_offset + (uint64_t)i * SHARD_INDEX_ENTRY_BYTES;
        shard_frame *f = &fr[i];
        f->offset = shard_get64(e + I_OFFSET);
        f->comp_bytes = shard_get32(e + I_COMP);
        f->raw_bytes = shard_get32(e + I_RAW);
        f->first_record = shard_get64(e + I_FIRST);
        f->records = shard_get32(e + I_RECORDS);
        f->crc = shard_get32(e + I_CRC);
        uint64_t want_first = (uint64_t)i * sf->records_per_frame;
        uint64_t want_records = i + 1 < sf->nframes ? sf->records_per_frame
                                                    : sf->records - want_first;
        const char *bad = NULL;
        char msg[256];
        if (f->offset != expect_off) {
            snprintf(msg, sizeof msg, "starts at %llu, expected %llu (frames are contiguous)",
                     (unsigned long long)f->offset, (unsigned long long)expect_off);
            bad = msg;
        } else if (f->comp_bytes < 1 || f->comp_bytes > sf->index_offset - f->offset) {
            snprintf(msg, sizeof msg, "%u compressed bytes overrun the index at %llu",
                     f->comp_bytes, (unsigned long long)sf->index_offset);
            bad = msg;
        } else if (f->first_record != want_first || f->records != want_records) {
            snprintf(msg, sizeof msg, "records [%llu, +%u), expected [%llu, +%llu)",
                     (unsigned long long)f->first_record, f->records,
                     (unsigned long long)want_first, (unsigned long long)want_records);
            bad = msg;
        } else if ((uint64_t)f->raw_bytes != (uint64_t)f->records * per) {
            snprintf(msg, sizeof msg, "raw size %u, expected %llu", f->raw_bytes,
                     (unsigned long long)((uint64_t)f->records * per));
            bad = msg;
        } else if (f->comp_bytes > ZSTD_compressBound(f->raw_bytes)) {
            snprintf(msg, sizeof msg, "%u compressed bytes exceed zstd's bound %zu for %u",
                     f->comp_bytes, ZSTD_compressBound(f->raw_bytes), f->raw_bytes);
            bad = msg;
        }
        if (bad) {
            free(fr);
            FAIL_AT(at, "index entry of frame %u: %s", i, bad);
        }
        expect_off = f->offset + f->comp_bytes;
        if (f->comp_bytes > sf->max_comp) sf->max_comp = f->comp_bytes;
        if (f->raw_bytes > sf->max_raw) sf->max_raw = f->raw_bytes;
    }
    if (expect_off != sf->index_offset) {
        free(fr);
        FAIL_AT(expect_off, "%llu bytes between the last frame and the index",
                (unsigned long long)(sf->index_offset - expect_off));
    }
    sf->frames = fr;
    return 0;
}

int shard_file_open(shard_file *sf, const char *path, int *fdp, char *err, size_t errlen) {
    memset(sf, 0, sizeof *sf);
    sf->path = path;
    if (fdp) *fdp = -1;
    uint64_t size;
    int fd = shard_open_regular(path, &size, err, errlen);
    if (fd < 0) return -1;
    uint8_t h[SHARD_HEAD_MAX];
    size_t hn = size < SHARD_HEAD_MAX ? (size_t)size : SHARD_HEAD_MAX;
    uint8_t *idx = NULL;
    if (shard_pread_all(fd, h, hn, 0) != 0) {
        shard_err(err, errlen, "%s: offset 0: read error: %s", path,
                  errno ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    if (shard_header_parse(sf, h, hn, size, err, errlen)) goto fail;
    size_t ilen = (size_t)sf->nframes * SHARD_INDEX_ENTRY_BYTES; /* <= 512 MiB, in the file */
    idx = shard_xmalloc(ilen);
    if (shard_pread_all(fd, idx, ilen, sf->index_offset) != 0) {
        shard_err(err, errlen, "%s: offset %llu: read error in the index: %s", path,
                  (unsigned long long)sf->index_offset,
                  errno ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    if (shard_index_parse(sf, idx, ilen, err, errlen)) goto fail;
    free(idx);
    if (fdp) *fdp = fd;
    else close(fd);
    return 0;
fail:
    free(idx);
    close(fd);
    shard_file_free(sf);
    sf->path = path;
    return -1;
}

void shard_file_free(shard_file *sf) {
    if (!sf) return;
    free(sf->frames);
    memset(sf, 0, sizeof *sf);
}

int shard_frame_decode(const shard_file *sf, uint32_t i, const uint8_t *comp, uint8_t *raw,
                       ZSTD_DCtx *dctx, char *err, size_t errlen) {
    SHARD_ASSERT(i < sf->nframes);
    const shard_frame *f = &sf->frames[i];
    uint32_t crc = shard_crc32(comp, f->comp_bytes);
    if (SHARD_CRC_BAD(f->crc, crc))
        FAIL_AT(f->offset, "frame %u: checksum mismatch (index %08x, computed %08x): frame "
                "corrupt", i, f->crc, crc);
    /* exactly one zstd frame, declaring exactly our size, before decoding */
    size_t fsize = ZSTD_findFrameCompressedSize(comp, f->comp_bytes);
    if (ZSTD_isError(fsize) || fsize != f->comp_bytes)
        FAIL_AT(f->offset, "frame %u: not one zstd frame of %u bytes (%s)", i, f->comp_bytes,
                ZSTD_isError(fsize) ? ZSTD_getErrorName(fsize) : "size differs");
    unsigned long long csize = ZSTD_getFrameContentSize(comp, f->comp_bytes);
    if (csize != f->raw_bytes)
        FAIL_AT(f->offset, "frame %u: zstd frame declares %lld bytes, index says %u", i,
                csize == ZSTD_CONTENTSIZE_UNKNOWN || csize == ZSTD_CONTENTSIZE_ERROR
                    ? -1LL : (long long)csize, f->raw_bytes);
    size_t got = ZSTD_decompressDCtx(dctx, raw, f->raw_bytes, comp, f->comp_bytes);
    if (ZSTD_isError(got))
        FAIL_AT(f->offset, "frame %u: zstd: %s", i, ZSTD_getErrorName(got));
    if (got != f->raw_bytes)
        FAIL_AT(f->offset, "frame %u: decoded %zu bytes, expected %u", i, got, f->raw_bytes);
    return 0;
}

int shard_frame_load(const shard_file *sf, uint32_t i, int fd, uint8_t *comp, uint8_t *raw,
                     ZSTD_DCtx *dctx, char *err, size_t errlen) {
    SHARD_ASSERT(i < sf->nframes);
    const shard_frame *f = &sf->frames[i];
    if (shard_pread_all(fd, comp, f->comp_bytes, f->offset) != 0)
        FAIL_AT(f->offset, "frame %u: read error: %s", i,
                errno ? strerror(errno) : "file shrank since it was opened");
    return shard_frame_decode(sf, i, comp, raw, dctx, err, errlen);
}

int shard_frame_check_values(const shard_file *sf, uint32_t i, const uint8_t *raw,
                             uint64_t base, char *err, size_t errlen) {
    const shard_schema *s = &sf->schema;
    const shard_frame *f = &sf->frames[i];
    if (s->label == SHARD_LABEL_U8) {
        const uint8_t *lab = raw + (size_t)f->records * shard_schema_record_bytes(s);
        for (uint32_t k = 0; k < f->records; k++)
            if (lab[k] >= s->num_classes)
                FAIL_AT(f->offset, "frame %u: record %llu has label %u, num_classes is %u", i,
                        (unsigned long long)(base + f->first_record + k), lab[k],
                        s->num_classes);
    }
    char msg[SHARD_ERR_MAX / 4];
    uint32_t k;
    if (shard_frame_check_finite(s, raw, f->records, &k, msg, sizeof msg))
        FAIL_AT(f->offset, "frame %u: record %llu: %s", i,
                (unsigned long long)(base + f->first_record + k), msg);
    return 0;
}
