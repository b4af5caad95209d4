/* file.c - one shard file: encoding and (distrustful) parsing of its header
 * and frame index, and decoding of a frame. Layout, little-endian, see
 * docs/shard-format.md:
 *   header (128 bytes) | frame 0 | frame 1 | ... | index (32 bytes per frame)
 * The header's CRC covers the header (which holds the index CRC, which covers
 * each frame's CRC), so one stored header CRC (also kept in the manifest)
 * pins the whole file. Every failure is one line "PATH: offset N: what". */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_internal.h"

/* Fuzzing builds accept bad checksums so the fuzzer reaches the checks that
 * follow them (libFuzzer's convention); never defined in real builds. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SHARD_CRC_BAD(stored, computed) ((void)(stored), (void)(computed), 0)
#else
#define SHARD_CRC_BAD(stored, computed) ((stored) != (computed))
#endif

/* header field offsets */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_BYTES = 12, H_HEIGHT = 16, H_WIDTH = 20,
    H_CHANNELS = 24, H_DTYPE = 28, H_LABEL = 32, H_CLASSES = 36, H_RECORD_BYTES = 40,
    H_PER_FRAME = 44, H_RECORDS = 48, H_FRAMES = 56, H_LEVEL = 60, H_INDEX_OFFSET = 64,
    H_FILE_BYTES = 72, H_INDEX_CRC = 80, H_RESERVED = 84
};
/* index entry field offsets */
enum { I_OFFSET = 0, I_COMP = 8, I_RAW = 12, I_FIRST = 16, I_RECORDS = 24, I_CRC = 28 };

void shard_header_encode(const shard_file *sf, uint8_t *h) {
    memset(h, 0, SHARD_HEADER_BYTES);
    memcpy(h + H_MAGIC, SHARD_MAGIC, 8);
    shard_put32(h + H_VERSION, SHARD_VERSION);
    shard_put32(h + H_HEADER_BYTES, SHARD_HEADER_BYTES);
    shard_put32(h + H_HEIGHT, sf->schema.height);
    shard_put32(h + H_WIDTH, sf->schema.width);
    shard_put32(h + H_CHANNELS, sf->schema.channels);
    shard_put32(h + H_DTYPE, (uint32_t)sf->schema.dtype);
    shard_put32(h + H_LABEL, (uint32_t)sf->schema.label);
    shard_put32(h + H_CLASSES, sf->schema.num_classes);
    shard_put32(h + H_RECORD_BYTES, (uint32_t)shard_schema_record_bytes(&sf->schema));
    shard_put32(h + H_PER_FRAME, sf->records_per_frame);
    shard_put64(h + H_RECORDS, sf->records);
    shard_put32(h + H_FRAMES, sf->nframes);
    shard_put32(h + H_LEVEL, (uint32_t)sf->level);
    shard_put64(h + H_INDEX_OFFSET, sf->index_offset);
    shard_put64(h + H_FILE_BYTES, sf->file_bytes);
    shard_put32(h + H_INDEX_CRC, sf->index_crc);
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

int shard_header_parse(shard_file *sf, const uint8_t *h, uint64_t file_size, char *err,
                       size_t errlen) {
    if (file_size >= 8 && memcmp(h + H_MAGIC, SHARD_MAGIC, 8) != 0)
        FAIL_AT(H_MAGIC, "bad magic (not a jepa shard file)");
    if (file_size < SHARD_HEADER_BYTES)
        FAIL_AT(file_size, "truncated: file is %llu bytes, a shard header is %u",
                (unsigned long long)file_size, SHARD_HEADER_BYTES);
    uint32_t version = shard_get32(h + H_VERSION);
    if (version != SHARD_VERSION)
        FAIL_AT(H_VERSION, "shard version %u not supported (this build reads %u)", version,
                SHARD_VERSION);
    if (shard_get32(h + H_HEADER_BYTES) != SHARD_HEADER_BYTES)
        FAIL_AT(H_HEADER_BYTES, "header size %u, expected %u", shard_get32(h + H_HEADER_BYTES),
                SHARD_HEADER_BYTES);
    uint32_t stored = shard_get32(h + SHARD_HEADER_CRC_AT);
    uint32_t computed = shard_crc32(h, SHARD_HEADER_CRC_AT);
    if (SHARD_CRC_BAD(stored, computed))
        FAIL_AT(SHARD_HEADER_CRC_AT,
                "header checksum mismatch (stored %08x, computed %08x): header corrupt", stored,
                computed);
    for (uint32_t i = H_RESERVED; i < SHARD_HEADER_CRC_AT; i++)
        if (h[i]) FAIL_AT(i, "reserved header byte is %u, must be 0", h[i]);

    shard_schema *s = &sf->schema;
    s->height = shard_get32(h + H_HEIGHT);
    s->width = shard_get32(h + H_WIDTH);
    s->channels = shard_get32(h + H_CHANNELS);
    s->dtype = (shard_dtype)shard_get32(h + H_DTYPE);
    s->label = (shard_label_kind)shard_get32(h + H_LABEL);
    s->num_classes = shard_get32(h + H_CLASSES);
    char why[SHARD_ERR_MAX / 4];
    if (shard_schema_check(s, why, sizeof why)) FAIL_AT(H_HEIGHT, "schema: %s", why);
    uint64_t rb = shard_schema_record_bytes(s);
    if (shard_get32(h + H_RECORD_BYTES) != rb)
        FAIL_AT(H_RECORD_BYTES, "record bytes %u, but %ux%ux%u makes %llu",
                shard_get32(h + H_RECORD_BYTES), s->height, s->width, s->channels,
                (unsigned long long)rb);
    uint64_t per = rb + shard_label_bytes(s);

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
    if (sf->index_offset < SHARD_HEADER_BYTES + (uint64_t)sf->nframes ||
        sf->index_offset > file_size)
        FAIL_AT(H_INDEX_OFFSET, "index offset %llu outside the file's frame area [%llu, %llu]",
                (unsigned long long)sf->index_offset,
                (unsigned long long)(SHARD_HEADER_BYTES + sf->nframes),
                (unsigned long long)file_size);
    if (sf->file_bytes != sf->index_offset + index_bytes)
        FAIL_AT(H_FILE_BYTES, "file size field %llu disagrees with index end %llu",
                (unsigned long long)sf->file_bytes,
                (unsigned long long)(sf->index_offset + index_bytes));
    sf->index_crc = shard_get32(h + H_INDEX_CRC);
    sf->header_crc = stored;
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
    uint64_t expect_off = SHARD_HEADER_BYTES;
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
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        shard_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        shard_err(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t h[SHARD_HEADER_BYTES] = {0};
    size_t hn = size < SHARD_HEADER_BYTES ? (size_t)size : SHARD_HEADER_BYTES;
    uint8_t *idx = NULL;
    if (shard_pread_all(fd, h, hn, 0) != 0) {
        shard_err(err, errlen, "%s: offset 0: read error: %s", path,
                  errno ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    if (shard_header_parse(sf, h, size, err, errlen)) goto fail;
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

int shard_frame_check_labels(const shard_file *sf, uint32_t i, const uint8_t *raw, char *err,
                             size_t errlen) {
    if (sf->schema.label != SHARD_LABEL_U8) return 0;
    const shard_frame *f = &sf->frames[i];
    const uint8_t *lab = raw + (size_t)f->records * shard_schema_record_bytes(&sf->schema);
    for (uint32_t k = 0; k < f->records; k++)
        if (lab[k] >= sf->schema.num_classes)
            FAIL_AT(f->offset, "frame %u: record %llu has label %u, num_classes is %u", i,
                    (unsigned long long)(f->first_record + k), lab[k], sf->schema.num_classes);
    return 0;
}
