/* fuzz_shard.c - libFuzzer target for everything that parses untrusted
 * dataset bytes: a shard file (header, v2 field table, index, then every
 * frame through zstd, its values checked and its records unpacked) and, for
 * inputs starting with '{', a manifest (image or field schema; its checksum,
 * and a write-back round trip). Built with
 * -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so checksums do not stop the
 * fuzzer at the door; under ASan/UBSan any out-of-bounds read is a crash.
 * Seed corpus: the files of a tiny image dataset and of a tiny v2 dataset,
 * and a manifest with class names (version 5; see shard/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard_internal.h"

/* Bigger frames are valid but only slow the fuzzer down. */
#define FUZZ_MAX_RAW (1u << 20)

static void fuzz_shard_file(const uint8_t *data, size_t size) {
    shard_file sf;
    memset(&sf, 0, sizeof sf);
    sf.path = "fuzz";
    char err[SHARD_ERR_MAX];
    size_t head_len = size < SHARD_HEAD_MAX ? size : SHARD_HEAD_MAX;
    if (shard_header_parse(&sf, data, head_len, size, err, sizeof err)) return;
    /* a v2 header promised a sound field table: the record layout it implies must hold */
    if (sf.data_offset != shard_head_bytes(&sf.schema) || sf.data_offset > head_len) abort();
    if (sf.schema.nfields &&
        shard_schema_field_offset(&sf.schema, (int)sf.schema.nfields - 1) +
                shard_field_bytes(&sf.schema.fields[sf.schema.nfields - 1]) !=
            shard_schema_record_bytes(&sf.schema))
        abort();
    /* the parser promised: index_offset + nframes * 32 == size */
    size_t ilen = (size_t)sf.nframes * SHARD_INDEX_ENTRY_BYTES;
    if (sf.index_offset + ilen != size) abort();
    if (shard_index_parse(&sf, data + sf.index_offset, ilen, err, sizeof err)) return;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    for (uint32_t i = 0; i < sf.nframes; i++) {
        const shard_frame *f = &sf.frames[i];
        if (f->offset + f->comp_bytes > sf.index_offset) abort(); /* promised in bounds */
        if (f->raw_bytes > FUZZ_MAX_RAW) continue;
        uint8_t *raw = malloc(f->raw_bytes ? f->raw_bytes : 1);
        if (shard_frame_decode(&sf, i, data + f->offset, raw, dctx, err, sizeof err) == 0 &&
            shard_frame_check_values(&sf, i, raw, 0, err, sizeof err) == 0) {
            /* every record back out of the columns, as the readers take them */
            size_t rec = shard_schema_record_bytes(&sf.schema);
            uint8_t *one = malloc(rec ? rec : 1), label;
            for (uint32_t k = 0; k < f->records; k++)
                shard_frame_record(&sf.schema, raw, f->records, k, one, &label);
            free(one);
        }
        free(raw);
    }
    ZSTD_freeDCtx(dctx);
    shard_file_free(&sf);
}

/* A manifest: the strict parse (a bad checksum stops it at the door), then
 * the lenient one verify uses (past a bad checksum, so the fuzzer reaches
 * the parser behind it). What parses must write back as a version 4
 * manifest the strict parser accepts with a sound checksum, the same
 * content, and the same bytes when written again. */
static void fuzz_manifest(const uint8_t *data, size_t size) {
    shard_manifest m, back;
    char err[SHARD_ERR_MAX];
    if (shard_manifest_parse(&m, (const char *)data, size, "fuzz", err, sizeof err) == 0) {
        if (m.version == SHARD_MANIFEST_VERSION_CRC && m.crc_state != SHARD_MANIFEST_CRC_OK)
            abort(); /* version 4 is only ever accepted with a sound checksum */
        shard_manifest_free(&m);
    }
    if (shard_manifest_parse_ex(&m, (const char *)data, size, "fuzz", 1, err, sizeof err))
        return;
    if (m.has_stats != !m.schema.nfields) { /* version 1: images without sums, not writable */
        shard_manifest_free(&m);
        return;
    }
    char *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || shard_manifest_write(&m, f) != 0) abort();
    fclose(f);
    if (shard_manifest_parse(&back, buf, len, "fuzz-back", err, sizeof err) != 0 ||
        back.crc_state != SHARD_MANIFEST_CRC_OK || back.records != m.records ||
        back.nshards != m.nshards || back.has_stats != m.has_stats ||
        memcmp(&back.stats, &m.stats, sizeof m.stats) ||
        memcmp(back.shards, m.shards, m.nshards * sizeof *m.shards))
        abort();
    f = open_memstream(&buf2, &len2);
    if (!f || shard_manifest_write(&back, f) != 0) abort();
    fclose(f);
    if (len2 != len || memcmp(buf, buf2, len)) abort();
    free(buf);
    free(buf2);
    shard_manifest_free(&back);
    shard_manifest_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0 && data[0] == '{') {
        fuzz_manifest(data, size);
        return 0;
    }
    fuzz_shard_file(data, size);
    return 0;
}
