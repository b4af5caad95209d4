/* shard_internal.h - private to the shard/ sources (and the fuzz target): the shard
 * file layout, its parser, the manifest, the dataset struct the reader
 * shares, and small helpers. Not installed; users include shard.h only. */
#ifndef JEPA_SHARD_INTERNAL_H
#define JEPA_SHARD_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "shard.h"

/* Stays on under NDEBUG: invariants of this module, never user input. */
#define SHARD_ASSERT(x)                                                                      \
    do {                                                                                     \
        if (!(x)) shard_fatal(__FILE__, __LINE__, #x);                                       \
    } while (0)
void shard_fatal(const char *file, int line, const char *what) __attribute__((noreturn));
void *shard_xmalloc(size_t n); /* never NULL: out of memory goes to the handler (shard.h) */
void *shard_xcalloc(size_t n, size_t size);
char *shard_xstrdup(const char *s); /* shard_xmalloc's strdup */

void shard_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ file layout */
#define SHARD_MAGIC "JEPASHRD"
#define SHARD_VERSION_IMAGES 1u /* image schema: header | frames | index */
#define SHARD_VERSION_FIELDS 2u /* record schema: header | field table | frames | index */
#define SHARD_HEADER_BYTES 128u
#define SHARD_FIELD_ENTRY_BYTES 64u
/* the most a header and field table can span: what a parser is handed */
#define SHARD_HEAD_MAX (SHARD_HEADER_BYTES + SHARD_MAX_FIELDS * SHARD_FIELD_ENTRY_BYTES)
#define SHARD_INDEX_ENTRY_BYTES 32u
#define SHARD_HEADER_CRC_AT 124u /* crc32 of header bytes [0, 124) */

/* Limits a reader enforces before trusting a number (see docs). */
#define SHARD_MAX_SIDE 65535u
#define SHARD_MAX_CHANNELS 64u
/* SHARD_MAX_RECORD_BYTES, _FRAME_RAW, _FRAMES and _SHARDS: shard.h */
#define SHARD_MAX_MANIFEST_BYTES ((size_t)64 << 20)
#define SHARD_NAME_MAX 128

typedef struct {
    uint64_t offset;       /* of the compressed frame in the file */
    uint32_t comp_bytes;   /* compressed size */
    uint32_t raw_bytes;    /* records * (record bytes + label bytes) */
    uint64_t first_record; /* index within the shard */
    uint32_t records;
    uint32_t crc;          /* crc32 of the compressed bytes */
} shard_frame;

/* A parsed shard header + index. */
typedef struct {
    const char *path;   /* for messages; not owned */
    uint32_t version;   /* SHARD_VERSION_IMAGES or _FIELDS, from the schema */
    shard_schema schema;
    uint64_t data_offset; /* first frame: header + field table bytes */
    uint32_t fields_crc;  /* v2: crc32 of the field table (in the header) */
    uint32_t records_per_frame;
    int level;
    uint64_t records;
    uint32_t nframes;
    uint64_t index_offset, file_bytes;
    uint32_t index_crc, header_crc;
    shard_frame *frames; /* (nframes), malloc'd */
    uint32_t max_comp, max_raw; /* largest frame: buffer sizes */
} shard_file;

size_t shard_label_bytes(const shard_schema *s); /* 0 or 1 */
int shard_name_char_ok(char c);                  /* [A-Za-z0-9._-] */
/* One field's name, dtype and shape (i names it in messages); its bytes
 * (<= the record limit) into *bytes. 0 or -1 + err. */
int shard_field_check(const shard_field *f, uint32_t i, uint64_t *bytes, char *err,
                      size_t errlen);
/* 1 when a and b describe the same records (unused members ignored). */
int shard_schema_same(const shard_schema *a, const shard_schema *b);

/* Frame layout: a decoded frame of n records is columns. Image schema:
 * pixels (n, record bytes) then labels (n) when the schema has them. Record
 * schema: field 0 of every record (n, its bytes), then field 1, ... The API's
 * rows are whole records (n, record bytes), fields concatenated. */
void shard_frame_pack(const shard_schema *s, const uint8_t *rows, const uint8_t *labels,
                      uint32_t n, uint8_t *raw);
/* rows (n, record bytes); labels (n) may be NULL, zeros without labels */
void shard_frame_unpack(const shard_schema *s, const uint8_t *raw, uint32_t n, uint8_t *rows,
                        uint8_t *labels);
/* record k of the frame into rec (record bytes) and *label (may be NULL) */
void shard_frame_record(const shard_schema *s, const uint8_t *raw, uint32_t n, uint32_t k,
                        uint8_t *rec, uint8_t *label);
/* f32 values must be finite. For one record (row layout) / a decoded frame
 * of n records: 0, or -1 with msg "field 'NAME' element [i,j] is NaN ..."
 * (and *k the frame's record). */
int shard_record_check_finite(const shard_schema *s, const uint8_t *rec, char *msg,
                              size_t msglen);
int shard_frame_check_finite(const shard_schema *s, const uint8_t *raw, uint32_t n,
                             uint32_t *k, char *msg, size_t msglen);

/* Bytes before the first frame: the header, and for a record schema the
 * field table (SHARD_FIELD_ENTRY_BYTES per field). */
uint64_t shard_head_bytes(const shard_schema *s);
/* Encodes sf (its version follows the schema) into head: the 128-byte
 * header (its CRC included) and the field table, shard_head_bytes() in all;
 * sets sf->version, data_offset and fields_crc. The frame table goes into
 * n * 32 bytes of index. */
void shard_header_encode(shard_file *sf, uint8_t *head);
void shard_index_encode(const shard_frame *frames, uint32_t n, uint8_t *out);

/* Parses and checks the header and (v2) the field table against the real
 * file size: head holds the file's first head_len = min(file_size,
 * SHARD_HEAD_MAX) bytes. Fills sf (frames stays NULL). 0 or -1 + err
 * "PATH: offset N: what". */
int shard_header_parse(shard_file *sf, const uint8_t *head, size_t head_len, uint64_t file_size,
                       char *err, size_t errlen);
/* Parses and checks the index (len = nframes * 32 bytes at index_offset)
 * after shard_header_parse succeeded: CRC, contiguity, counts, sizes. */
int shard_index_parse(shard_file *sf, const uint8_t *idx, size_t len, char *err,
                      size_t errlen);
/* Opens path, reads and checks header and index. fd is left open in *fd
 * when fd != NULL (else closed). 0 or -1 + err. */
int shard_file_open(shard_file *sf, const char *path, int *fd, char *err, size_t errlen);
void shard_file_free(shard_file *sf);
/* Checks frame i's compressed bytes (our CRC, then zstd: one frame, declared
 * size, content checksum) and decompresses into raw (>= raw_bytes). */
int shard_frame_decode(const shard_file *sf, uint32_t i, const uint8_t *comp, uint8_t *raw,
                       ZSTD_DCtx *dctx, char *err, size_t errlen);
/* pread of frame i into comp (>= comp_bytes) then shard_frame_decode. */
int shard_frame_load(const shard_file *sf, uint32_t i, int fd, uint8_t *comp, uint8_t *raw,
                     ZSTD_DCtx *dctx, char *err, size_t errlen);
/* Values of decoded frame i: labels < num_classes, f32 values finite. base
 * is the dataset index of the shard's first record (messages name dataset
 * records). 0 or -1 + err "PATH: offset N: frame i: record R ...". */
int shard_frame_check_values(const shard_file *sf, uint32_t i, const uint8_t *raw,
                             uint64_t base, char *err, size_t errlen);

/* ---------------------------------------------------------------- images */
/* One decoded image: (channels, height, width) uint8, channels 1 or 3. */
typedef struct {
    uint32_t height, width, channels;
    uint8_t *pixels; /* (C, H, W), malloc'd */
} shard_pic;

/* A PNG from f (positioned at its start; path names it in messages) into
 * *out (png.c says what each colour type becomes). 0, or -1 + one line
 * "PATH: bad PNG: what" / "PATH: offset 0: not a PNG file ..."; f is left
 * open either way (the caller closes it). */
int shard_png_decode(FILE *f, const char *path, shard_pic *out, char *err, size_t errlen);
/* To channels (1 or 3; 0 or the same: unchanged): grey replicated, or RGB
 * to grey as 0.299 R + 0.587 G + 0.114 B rounded. */
void shard_pic_convert(shard_pic *p, uint32_t channels);
/* A streaming source (shard.h) is one of these tables plus its state: each
 * kind (IDX, raw, image directory) embeds shard_image_src first. next()
 * reads the pixels of the next k records (k <= those left) into pixels (k,
 * record bytes); free() releases the kind's state and s itself (info is
 * freed before it by shard_image_src_close). */
typedef struct {
    int (*next)(shard_image_src *s, uint8_t *pixels, uint64_t k, char *err, size_t errlen);
    void (*free)(shard_image_src *s);
} shard_image_src_ops;
struct shard_image_src {
    const shard_image_src_ops *ops;
    shard_images info; /* schema, n, labels (n, all read at open), class names; pixels NULL */
    uint64_t at;       /* records handed out so far */
};
/* The whole-set readers (shard_idx_read ...): s, opened (or rc -1 from its
 * open), read to its end into *out. Pixels grow with the records actually
 * read, so a header that claims more than its file holds costs one small
 * buffer. 0 or -1 + err; s is closed either way, *out zeroed on -1. */
int shard_image_src_read_all(shard_images *out, shard_image_src *s, int rc, char *err,
                             size_t errlen);
/* label u8, num_classes = largest label + 1 */
void shard_images_count_classes(shard_images *im);
/* NULL when s (len bytes) may name a class (1..255 bytes of printable UTF-8:
 * no control characters, nothing JSON or YAML would need escaped but '"'
 * and '\', no '/'), else why not ("is not valid UTF-8", ...). */
const char *shard_class_name_check(const char *s, size_t len);

/* --------------------------------------------------------------- manifest */
#define SHARD_MANIFEST "manifest.json"
#define SHARD_MANIFEST_FORMAT "jepa-shard"
#define SHARD_MANIFEST_VERSION_IMAGES 1 /* schema: height, width, channels, ... */
#define SHARD_MANIFEST_VERSION_FIELDS 2 /* schema: {"fields": [...]} */
#define SHARD_MANIFEST_VERSION_STATS 3  /* version 1 plus "pixel_stats" */
#define SHARD_MANIFEST_VERSION_CRC 4    /* 3 or 2 plus "crc32", the last member; written */
#define SHARD_MANIFEST_VERSION_CLASSES 5 /* 4 plus "classes" (labelled images); written with names */
/* A version 4 manifest ends with exactly these bytes, XXXXXXXX the CRC-32
 * of every byte before them: "crc32": "XXXXXXXX"\n}\n */
#define SHARD_MANIFEST_CRC_TAIL 22

typedef enum {
    SHARD_MANIFEST_CRC_NONE = 0, /* no trailer (versions 1 to 3) */
    SHARD_MANIFEST_CRC_OK,
    SHARD_MANIFEST_CRC_BAD, /* only from a lenient parse: verify reports it and goes on */
} shard_manifest_crc_state;

typedef struct {
    char file[SHARD_NAME_MAX];
    uint64_t records, bytes;
    uint32_t header_crc;
} shard_manifest_entry;

typedef struct {
    uint32_t version; /* as read (1 to 5); the writer writes _CRC, or _CLASSES with names */
    shard_schema schema;
    int has_stats;            /* images, version 3 or 4: pixel_stats holds the dataset's sums */
    shard_pixel_stats stats;
    char split[65];
    uint64_t records;
    uint32_t records_per_shard, records_per_frame;
    int level;
    uint32_t nshards;
    shard_manifest_entry *shards; /* (nshards), malloc'd */
    uint32_t nclasses;            /* version 5: = schema.num_classes; else 0 */
    char **class_names;           /* (nclasses) label -> name, malloc'd; NULL without */
    shard_manifest_crc_state crc_state; /* of the text parsed */
    uint32_t crc, crc_computed;         /* the trailer's value, the bytes' (not NONE) */
} shard_manifest;

/* Parses manifest text (name for messages "NAME:LINE:COL: key: what").
 * First the checksum, on the bytes (shard_manifest_crc_check): a mismatch is
 * refused before anything is parsed; then types, ranges, file names (plain
 * names, no '/'), the sum of records, and that the version has what it must
 * (version 4: the trailer; 1 to 3: no crc32). 0 or -1 + err; on -1 m holds
 * nothing to free. */
int shard_manifest_parse(shard_manifest *m, const char *text, size_t len, const char *name,
                         char *err, size_t errlen);
/* As parse; lenient != 0 lets a checksum mismatch through as crc_state
 * _BAD (verify: it reports it, then says which numbers the shards contradict). */
int shard_manifest_parse_ex(shard_manifest *m, const char *text, size_t len, const char *name,
                            int lenient, char *err, size_t errlen);
/* The whole file, malloc'd (at most SHARD_MAX_MANIFEST_BYTES), or NULL + err. */
char *shard_manifest_read(const char *path, size_t *len, char *err, size_t errlen);
/* read + parse (strict). */
int shard_manifest_load(shard_manifest *m, const char *path, char *err, size_t errlen);
/* Writes m as JSON, version 4, ending with its crc32 trailer. 0 or -1
 * (stream error). An image schema must have its pixel_stats. */
int shard_manifest_write(const shard_manifest *m, FILE *f);
/* _NONE when text does not end with the trailer (SHARD_MANIFEST_CRC_TAIL
 * bytes, lower-case hex), else _OK or _BAD with the trailer's value in
 * *stored and the CRC-32 of the bytes before it in *computed (may be NULL). */
shard_manifest_crc_state shard_manifest_crc_check(const char *text, size_t len,
                                                  uint32_t *stored, uint32_t *computed);
/* The one-line mismatch error for manifest NAME; with hint, a NAME of
 * "DIR/manifest.json" adds "(jepa-shard verify DIR says more)". */
void shard_manifest_crc_error(char *err, size_t errlen, const char *name, uint32_t stored,
                              uint32_t computed, int hint);
void shard_manifest_free(shard_manifest *m);

/* ---------------------------------------------------------------- dataset */
struct shard_dataset {
    char *dir;
    shard_manifest man;
    shard_file *files;    /* (nshards) headers + indexes */
    char **paths;         /* (nshards) dir/file */
    uint64_t *first;      /* (nshards + 1) first record of each shard in manifest order */
    size_t record_bytes, label_bytes;
    uint32_t max_comp, max_raw;
    uint64_t fingerprint; /* FNV-1a over schema and (records, header crc) of each shard */
};

/* One-frame decoding cursor (its own fd, buffers, zstd context) so several
 * threads can read one dataset at once. */
typedef struct {
    const shard_dataset *ds;
    int fd;
    int64_t fd_shard;               /* shard whose fd is open, -1 none */
    int64_t cached_shard;           /* frame held in raw, -1 none */
    uint32_t cached_frame;
    uint8_t *comp, *raw;            /* (max_comp), (max_raw) */
    ZSTD_DCtx *dctx;
} shard_cursor;

void shard_cursor_init(shard_cursor *c, const shard_dataset *ds);
void shard_cursor_free(shard_cursor *c);
/* Decodes (shard, frame) unless cached; returns its raw bytes or NULL + err. */
const uint8_t *shard_cursor_frame(shard_cursor *c, uint32_t shard, uint32_t frame, char *err,
                                  size_t errlen);

/* ----------------------------------------------------------------- little */
static inline void shard_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void shard_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t shard_get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t shard_get64(const uint8_t *p) {
    return (uint64_t)shard_get32(p) | (uint64_t)shard_get32(p + 4) << 32;
}

uint32_t shard_crc32(const uint8_t *p, size_t n); /* zlib crc32 for any n */

/* Counter-based RNG (splitmix64): a stream is a pure function of its key. */
uint64_t shard_mix64(uint64_t x);
uint64_t shard_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
typedef struct {
    uint64_t s;
} shard_rng;
uint64_t shard_rng_next(shard_rng *r);
uint64_t shard_rng_below(shard_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
void shard_shuffle_u32(shard_rng *r, uint32_t *a, uint32_t n);

/* Reads exactly n bytes at off; 0, or -1 with errno (0 = end of file). */
int shard_pread_all(int fd, void *buf, size_t n, uint64_t off);

#endif
