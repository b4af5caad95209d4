/* shard_synth.h - synthetic image sets and file helpers for the shard
 * suites (shard_synth.c). tmpdir is made by the suite's main (mkdtemp). */
#ifndef JEPA_SHARD_SYNTH_H
#define JEPA_SHARD_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "shard.h"

/* An image schema (the record-schema members stay 0). */
#define IMG(h, w, c, dt, lab, nc)                                                            \
    ((shard_schema){.height = (h), .width = (w), .channels = (c), .dtype = (dt),             \
                    .label = (lab), .num_classes = (nc)})

extern char tmpdir[];           /* "/tmp/test_shard_XXXXXX" until mkdtemp */
extern char err[SHARD_ERR_MAX]; /* the last call's message */

void path_of(char *out, size_t n, const char *name); /* tmpdir/name */
void rm_tree(const char *dir);
/* Record i: bytes 0..3 = i (LE), byte j >= 4 = (i * 7 + j * 13) & 255; label i % 10. */
uint8_t rec_byte(uint64_t i, size_t j);
shard_images make_images(uint64_t n, uint32_t h, uint32_t w, uint32_t c, int labels);
/* Packs n synthetic 3x5x2 records into tmpdir/name; returns the path in out. */
void pack_synth(char *out, size_t outlen, const char *name, uint64_t n, uint32_t rps,
                uint32_t rpf, int labels);
uint8_t *read_file(const char *path, size_t *n); /* malloc'd; asserts on failure */
void write_file(const char *path, const void *b, size_t n);
int contains(const char *hay, const char *needle);

#endif
