/* shard_mkbig.c - test-only tool: writes a labelled image dataset of any
 * size through the streaming writer, one chunk in memory, so a data set
 * larger than the machine's memory can be made in seconds (jepa-shard pack
 * reads its whole input first). Class c = i % 10 of record i is a bright
 * band of rows (c .. c+1 tenths of the height) over a dim background, plus
 * hash noise: a linear probe separates the classes, so a probe that pairs
 * features with the wrong labels shows.
 *   shard-mkbig OUT N SIDE [CHANNELS [RECORDS_PER_FRAME [SPLIT]]]
 * Prints "raw_bytes B" (pixels + labels) on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

static uint8_t pixel(uint64_t i, uint32_t y, uint32_t x, uint32_t side) {
    uint64_t h = (i * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)y << 32 | x);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    uint32_t c = (uint32_t)(i % 10), band = y * 10 / side;
    return (uint8_t)((band == c ? 170 : 20) + (h & 63));
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 7) {
        fprintf(stderr, "usage: shard-mkbig OUT N SIDE [CHANNELS [RECORDS_PER_FRAME [SPLIT]]]\n");
        return 2;
    }
    uint64_t n = strtoull(argv[2], NULL, 10);
    uint32_t side = (uint32_t)strtoul(argv[3], NULL, 10);
    uint32_t ch = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 1;
    shard_schema s;
    memset(&s, 0, sizeof s);
    s.height = s.width = side;
    s.channels = ch;
    s.dtype = SHARD_DTYPE_U8;
    s.label = SHARD_LABEL_U8;
    s.num_classes = 10;
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.level = 1;
    if (argc > 5) o.records_per_frame = (uint32_t)strtoul(argv[5], NULL, 10);
    if (argc > 6) snprintf(o.split, sizeof o.split, "%s", argv[6]);
    char err[SHARD_ERR_MAX];
    shard_writer *w = NULL;
    if (n == 0 || shard_writer_open(&w, argv[1], &s, &o, err, sizeof err)) {
        fprintf(stderr, "shard-mkbig: %s\n", n ? err : "N must be >= 1");
        return 1;
    }
    const size_t rec = shard_schema_record_bytes(&s);
    const uint64_t chunk = 64;
    uint8_t *px = malloc(rec * chunk), lab[64];
    if (!px) return 1;
    for (uint64_t i0 = 0; i0 < n; i0 += chunk) {
        uint64_t m = n - i0 < chunk ? n - i0 : chunk;
        for (uint64_t k = 0; k < m; k++) {
            uint64_t i = i0 + k;
            lab[k] = (uint8_t)(i % 10);
            for (uint32_t c = 0; c < ch; c++)
                for (uint32_t y = 0; y < side; y++)
                    for (uint32_t x = 0; x < side; x++)
                        px[k * rec + ((size_t)c * side + y) * side + x] = pixel(i, y, x, side);
        }
        if (shard_writer_add(w, px, lab, m, err, sizeof err)) {
            fprintf(stderr, "shard-mkbig: %s\n", err);
            shard_writer_abort(w);
            return 1;
        }
    }
    free(px);
    if (shard_writer_close(w, err, sizeof err)) {
        fprintf(stderr, "shard-mkbig: %s\n", err);
        return 1;
    }
    printf("raw_bytes %llu\n", (unsigned long long)(n * (rec + 1)));
    return 0;
}
