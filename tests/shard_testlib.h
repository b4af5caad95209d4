/* shard_testlib.h - test-only helpers for record (version 2) datasets,
 * shared by test_shard_v2 and the shard-mkv2 tool the e2e and fuzz tests
 * use: the world-model schema (frames u8 [T,1,S,S], actions f32 [T-1,2],
 * state f32 [T,2]), records whose every byte is a formula of their index,
 * and a forger that rewrites one stored record and re-seals every checksum
 * (so only the value checks behind them can catch what it plants). */
#ifndef JEPA_SHARD_TESTLIB_H
#define JEPA_SHARD_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "shard.h"

/* frames u8 [T,1,side,side], actions f32 [T-1,2], state f32 [T,2]; T >= 2. */
void tl_world_schema(shard_schema *s, uint32_t T, uint32_t side);
/* Record i of that schema into rec (record bytes): frames byte j is
 * (i * 7 + j * 13) & 255 except bytes 0..3 = i (LE); actions[t][k] =
 * i + t / 4 + k / 8, state[t][k] = -(i + t / 2) - k (all exact in f32). */
void tl_world_record(const shard_schema *s, uint64_t i, uint8_t *rec);
/* The record index stored in rec's first 4 bytes. */
uint32_t tl_record_id(const uint8_t *rec);
/* Writes n such records into dir in chunks of uneven size. 0 or -1 + err. */
int tl_world_write(const char *dir, uint64_t n, uint32_t T, uint32_t side, uint32_t rps,
                   uint32_t rpf, char *err, size_t errlen);
/* Overwrites 4 bytes at byte offset `at` of stored record `index` (dataset
 * order) with v, re-compresses its frame and re-seals the frame CRC, index,
 * header and manifest: a file every checksum calls sound. 0 or -1 + err. */
int tl_forge_record(const char *dir, uint64_t index, size_t at, uint32_t v, char *err,
                    size_t errlen);
/* Staging directories (".NAME.partial-PID") a writer left in dir. */
int tl_partial_dirs(const char *dir);

#endif
