/* fuzz_shard.c - libFuzzer target for everything that parses untrusted
 * dataset bytes: a shard file (header, v2 field table, index, then every
 * frame through zstd, its values checked and its records unpacked) and, for
 * inputs starting with '{', a manifest (image or field schema). Built with
 * -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so checksums do not stop the
 * fuzzer at the door; under ASan/UBSan any out-of-bounds read is a crash.
 * Seed corpus: the files of a tiny image dataset and of a tiny v2 dataset
 * (see shard/CMakeLists.txt). */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0 && data[0] == '{') {
        shard_manifest m;
        char err[SHARD_ERR_MAX];
        if (shard_manifest_parse(&m, (const char *)data, size, "fuzz", err, sizeof err) == 0)
            shard_manifest_free(&m);
        return 0;
    }
    fuzz_shard_file(data, size);
    return 0;
}
