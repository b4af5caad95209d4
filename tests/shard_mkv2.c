/* shard_mkv2.c - test-only tool: writes a small record (version 2) dataset
 * of the world-model schema for the e2e and fuzz tests, which have no other
 * way to make one (jepa-shard pack packs images only).
 *   shard-mkv2 OUT N T SIDE RECORDS_PER_SHARD RECORDS_PER_FRAME [NAN_AT]
 * NAN_AT: afterwards plant a NaN in actions[1][1] of record NAN_AT with every
 * checksum re-sealed (what only `verify`'s value check can find). */
#include <stdio.h>
#include <stdlib.h>

#include "shard_testlib.h"

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: shard-mkv2 OUT N T SIDE RECORDS_PER_SHARD RECORDS_PER_FRAME "
                        "[NAN_AT]\n");
        return 2;
    }
    unsigned long long v[6];
    for (int i = 2; i < argc; i++) v[i - 2] = strtoull(argv[i], NULL, 10);
    char err[SHARD_ERR_MAX];
    if (tl_world_write(argv[1], v[0], (uint32_t)v[1], (uint32_t)v[2], (uint32_t)v[3],
                       (uint32_t)v[4], err, sizeof err)) {
        fprintf(stderr, "shard-mkv2: %s\n", err);
        return 1;
    }
    if (argc == 8) {
        shard_schema s;
        tl_world_schema(&s, (uint32_t)v[1], (uint32_t)v[2]);
        size_t at = shard_schema_field_offset(&s, 1) + 4 * 3; /* actions[1][1] */
        if (tl_forge_record(argv[1], v[5], at, 0x7fc00000u, err, sizeof err)) {
            fprintf(stderr, "shard-mkv2: %s\n", err);
            return 1;
        }
    }
    return 0;
}
