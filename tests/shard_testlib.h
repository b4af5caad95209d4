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
/* Manifests. A version 4 manifest ends with '"crc32": "XXXXXXXX"\n}\n'
 * (22 bytes), XXXXXXXX the zlib CRC-32 of the bytes before it, per
 * docs/shard-format.md; these helpers compute it with zlib, not the library.
 * tl_manifest_reseal rewrites the hex digits of text (n bytes) so an edited
 * manifest carries a sound checksum again: 0, or -1 when text has no such
 * ending. */
int tl_manifest_reseal(char *text, size_t n);
/* The CRC-32 the trailer of text (n bytes) should hold. */
uint32_t tl_manifest_crc(const char *text, size_t n);
/* 1 when text (n bytes) parses as a manifest and shard_manifest_write gives
 * back exactly those bytes, else 0 */
int tl_manifest_rewrites_same(const char *text, size_t n);
/* A version 4 manifest as an older build wrote it: without its crc32 member
 * and with "version": 4 changed to `version` (2 or 3; the caller removes
 * pixel_stats for 1). malloc'd, NUL-terminated; NULL when text is not a
 * version 4 manifest of our writer's layout. */
char *tl_manifest_unseal(const char *text, size_t n, int version);
/* Staging directories (".NAME.partial-PID") a writer left in dir. */
int tl_partial_dirs(const char *dir);

#endif
