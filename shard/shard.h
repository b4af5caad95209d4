/* shard.h - compressed data shards: the format every rank reads its data from.
 *
 * A dataset is a directory: shard files (`shard-NNNNN.jshard`) plus
 * `manifest.json` (schema, shard list with record counts and checksums,
 * total records, split name; since manifest version 4 a CRC-32 of its own, in version 5 the names of the classes). A shard file is a fixed header, zstd frames each
 * holding a group of records, and an index of the frames; every part carries a
 * CRC-32 and every zstd frame its own content checksum. A record is either a
 * uint8 image with an optional class label (format version 1) or several
 * named, typed, fixed-shape fields (version 2, which adds a field table after
 * the header); the schema decides which a writer writes, and readers read
 * both through the same calls. docs/shard-format.md has the byte layout. This module is bytes in, bytes out: it knows nothing of
 * the model or of MPI (a rank is a number passed in).
 *
 * Readers never trust a file: every count, size and offset is range-checked
 * before it sizes an allocation or addresses a read. Writers are atomic: a
 * dataset is built in a hidden staging directory beside its destination and
 * renamed into place whole, so a crash never leaves a dataset that looks whole.
 *
 * Errors are returned as ONE line in a caller-owned buffer (SHARD_ERR_MAX
 * bytes suffices), naming the file and, for shard files, the byte offset:
 *   data/train/shard-00003.jshard: offset 81920: frame 7: checksum mismatch ...
 * The caller prints it and exits non-zero. */
#ifndef JEPA_SHARD_H
#define JEPA_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SHARD_ERR_MAX 1024

/* Limits every writer and reader enforces (public so that programs building
 * records can name their own options when a request passes them). */
#define SHARD_MAX_RECORD_BYTES ((uint64_t)64 << 20) /* one record */
#define SHARD_MAX_FRAME_RAW ((uint64_t)256 << 20)   /* one zstd frame, uncompressed */
#define SHARD_MAX_FRAMES (1u << 24)                 /* frames in one shard file */
#define SHARD_MAX_SHARDS (1u << 20)                 /* shard files in one dataset */

/* ---------------------------------------------------------------- schema */
/* Element types. F32 is IEEE-754 binary32, little-endian in the file and in
 * record buffers (this module copies bytes; it never converts). */
typedef enum { SHARD_DTYPE_U8 = 1, SHARD_DTYPE_F32 = 2 } shard_dtype;
typedef enum { SHARD_LABEL_NONE = 0, SHARD_LABEL_U8 = 1 } shard_label_kind;

#define SHARD_MAX_FIELDS 16
#define SHARD_MAX_DIMS 4
#define SHARD_FIELD_NAME_MAX 32 /* incl. NUL; names match [A-Za-z0-9_.-]+ */

/* One named, typed, fixed-shape array of a record (format version 2), e.g.
 * {"actions", SHARD_DTYPE_F32, 2, {15, 2, 0, 0}}. Elements are row-major. */
typedef struct {
    char name[SHARD_FIELD_NAME_MAX];
    shard_dtype dtype;
    uint32_t ndim;                  /* 0..SHARD_MAX_DIMS (0 = scalar) */
    uint32_t shape[SHARD_MAX_DIMS]; /* each >= 1; unused dims 0 */
} shard_field;

/* What one record is. Two kinds:
 *  - an image schema (nfields == 0, format version 1): a (channels, height,
 *    width) uint8 image, row-major and channel-planar (as the trainer's
 *    (N, C, H, W) arrays), plus an optional uint8 class label in
 *    [0, num_classes);
 *  - a record schema (nfields >= 1, format version 2): the fields, each a
 *    fixed-shape array; a record's bytes are its fields concatenated in
 *    order, field i at shard_schema_field_offset(s, i), no padding. The
 *    image members (height .. num_classes) are then 0 and label is NONE.
 * Zero-initialise a schema before filling it (unused fields are ignored). */
typedef struct {
    uint32_t height, width, channels;
    shard_dtype dtype;
    shard_label_kind label;
    uint32_t num_classes; /* 1..256 with SHARD_LABEL_U8, 0 with SHARD_LABEL_NONE */
    uint32_t nfields;     /* 0: an image schema (v1); 1..SHARD_MAX_FIELDS: a record schema (v2) */
    shard_field fields[SHARD_MAX_FIELDS]; /* (nfields) in record order */
} shard_schema;

/* Bytes of one element of dtype (1 or 4; 0 for an unknown dtype). */
size_t shard_dtype_bytes(shard_dtype t);
/* "u8", "f32" or "?". */
const char *shard_dtype_name(shard_dtype t);
/* prod(shape[0..ndim)) * element bytes (a scalar: element bytes). Meaningful
 * for a field that passed shard_schema_check. */
size_t shard_field_bytes(const shard_field *f);
/* Byte offset of field i (0 <= i < nfields) inside a record: the sum of the
 * bytes of fields 0..i-1. */
size_t shard_schema_field_offset(const shard_schema *s, int i);
/* Index of the field called name, or -1 (also for an image schema). */
int shard_schema_field_index(const shard_schema *s, const char *name);
/* Bytes of one record: height * width * channels for an image schema (the
 * label is not part of it), the sum of the field bytes for a record schema. */
size_t shard_schema_record_bytes(const shard_schema *s);
/* Range checks. Image schema: sides 1..65535, channels 1..64, dtype u8,
 * known label kind, num_classes consistent with it. Record schema: image
 * members 0 and label NONE; 1..16 fields; names 1..31 characters of
 * [A-Za-z0-9_.-], NUL-padded, unique; known dtype; ndim 0..4; used dims
 * >= 1, unused dims 0. Both: record <= 64 MiB (products checked for
 * overflow). 0, or -1 and one line in err (e.g. "field 1 ('actions'):
 * shape[1] is 0, dims must be >= 1"). */
int shard_schema_check(const shard_schema *s, char *err, size_t errlen);

/* --------------------------------------------------------------- sources */
/* A labelled image set in memory, shard_pack's input: (n, C, H, W) uint8
 * (jepa-shard pack streams instead: shard_image_src below). */
typedef struct {
    shard_schema schema;
    uint64_t n;
    uint8_t *pixels; /* (n, channels, height, width), malloc'd */
    uint8_t *labels; /* (n), malloc'd; NULL when schema.label is NONE */
    uint32_t nclasses;  /* names of the labels (class folders), 0 without */
    char **class_names; /* (nclasses) label -> name, each malloc'd; NULL without */
} shard_images;

/* IDX files as MNIST/Fashion-MNIST ship them, gzip or plain: images magic
 * 0x00000803 (n, h, w), labels 0x00000801 (n), big-endian sizes. labels_path
 * may be NULL (then no labels). Trailing bytes are an error (the header and
 * the file disagree). num_classes = largest label + 1. 0 or -1 + err naming
 * the file; on -1 *out is zeroed. */
int shard_idx_read(shard_images *out, const char *images_path, const char *labels_path,
                   char *err, size_t errlen);
/* A directory of images: every *.png, *.pgm (P5) and *.ppm (P6) file (any
 * case), in byte order of their names; all must share one size and channel
 * count after the conversion to `channels` (nothing is resized). Pixels are
 * stored channel-planar. PNG: 8-bit grey and RGB as they are, palette to
 * RGB, 1/2/4-bit grey to 8 bits, 16-bit scaled to 8, alpha (and tRNS)
 * dropped; PGM/PPM: maxval < 255 scaled to 0..255. A JPEG, BMP, TIFF or
 * WebP file is refused (never skipped); other files are skipped.
 *  - flat (class_dirs 0): DIR/IMAGE. labels_path (may be NULL): lines "NAME
 *    LABEL" with LABEL in 0..255, one for every image; LABEL is the last word
 *    before an optional '# comment', NAME the rest (docs/shard-format.md).
 *  - ImageFolder (class_dirs 1; labels_path NULL): DIR/CLASS/IMAGE, as
 *    torchvision reads it. Every sub-directory of DIR is a class; label =
 *    index of its name among them in byte order (strcmp), at most 256; the
 *    names go to out->class_names. An empty class folder, a directory inside
 *    a class folder and an image beside the class folders are refused.
 * 0 or -1 + one line naming the file; on -1 *out is zeroed. */
typedef struct {
    const char *labels_path; /* flat only; NULL: no labels */
    int class_dirs;          /* 1: DIR/CLASS/IMAGE */
    uint32_t channels;       /* 0: as the files are; 1: grey (0.299 R + 0.587 G + 0.114 B); 3: RGB */
} shard_image_dir_opts;
int shard_image_dir_read(shard_images *out, const char *dir, const shard_image_dir_opts *o,
                         char *err, size_t errlen);
/* shard_image_dir_read, flat, as the files are (the name of older builds,
 * which read *.pgm and *.ppm only). */
int shard_pnm_dir_read(shard_images *out, const char *dir, const char *labels_path,
                       char *err, size_t errlen);
/* A raw file of n records of height*width*channels uint8, (n, C, H, W); its
 * size must be a multiple of the record size. labels_path (may be NULL): a
 * raw file of exactly n uint8 labels. */
int shard_raw_read(shard_images *out, const char *path, const char *labels_path,
                   uint32_t height, uint32_t width, uint32_t channels, char *err,
                   size_t errlen);
void shard_images_free(shard_images *im); /* leaves *im zeroed */

/* The same sources as streams, for sets larger than memory: open reads
 * what needs the whole set (the file list, the labels: one byte a record,
 * the header or first image that sets the schema) and refuses what it
 * can see there as the readers above do; next() then hands out the
 * pixels a chunk at a time in record order, so a caller holds one chunk.
 * A bad record (a corrupt image, one of another size, a truncated IDX
 * body, trailing bytes: checked with the last record) fails next() in
 * the readers' words (so a bad labels file is said before a bad image
 * past the first). The readers above are open + next to the end.
 * info(): schema, n, nclasses and class_names (pixels and labels are the
 * source's: not to be used). The strings are copied. */
typedef struct shard_image_src shard_image_src;
int shard_idx_open(shard_image_src **s, const char *images_path, const char *labels_path,
                   char *err, size_t errlen);
int shard_image_dir_open(shard_image_src **s, const char *dir, const shard_image_dir_opts *o,
                         char *err, size_t errlen);
int shard_raw_open(shard_image_src **s, const char *path, const char *labels_path,
                   uint32_t height, uint32_t width, uint32_t channels, char *err,
                   size_t errlen);
const shard_images *shard_image_src_info(const shard_image_src *s);
/* The next k records (k <= n - those read): pixels (k, record bytes),
 * labels (k) or NULL (not copied). 0 or -1 + err naming the file. */
int shard_image_src_next(shard_image_src *s, uint8_t *pixels, uint8_t *labels, uint64_t k,
                         char *err, size_t errlen);
void shard_image_src_close(shard_image_src *s); /* NULL ok */

/* ---------------------------------------------------------------- writer */
typedef struct {
    uint32_t records_per_shard; /* default 4096 */
    uint32_t records_per_frame; /* records per zstd frame, default 256 */
    int level;                  /* zstd level 1..22, default 3 */
    char split[65];             /* [A-Za-z0-9._-]+, default "train" */
} shard_pack_opts;

void shard_pack_opts_defaults(shard_pack_opts *o);
int shard_pack_opts_check(const shard_pack_opts *o, char *err, size_t errlen);
/* mkdir -p path (mode 0755): the output paths of the writer and of the
 * programs built on this library (jepa-world, jepa-eval --export, run
 * directories). 0, or -1 + "cannot create directory PREFIX: reason" (a
 * prefix that exists but is not a directory: "Not a directory"). */
int shard_make_dirs(const char *path, char *err, size_t errlen);
/* As shard_make_dirs, and *made = the length of the shortest prefix of
 * path this call created (0: it created none), so that a program stopped
 * before its output is whole removes exactly the directories it made:
 * shard_unmake_dirs(path, made) removes each prefix of path at least that
 * long, deepest first, while empty (rmdir: what another process put there
 * stays). On failure the ones made are already removed. */
int shard_make_dirs_noting(const char *path, size_t *made, char *err, size_t errlen);
void shard_unmake_dirs(const char *path, size_t made);
/* Whether mkdir -p dir can succeed, making nothing (for a check before the
 * work; the directories are made when it writes): its nearest existing
 * prefix P is a directory this process may write into (a read-only
 * filesystem refuses root too). 0, or -1 + "cannot write into P: why" or,
 * P a file, "cannot create directory P: Not a directory". */
int shard_dir_makeable(const char *dir, char *err, size_t errlen);
/* 1 when path is a symbolic link to nowhere, its target then in to (n
 * bytes, cut short if longer); 0 otherwise (absent, a link that resolves,
 * not a link). mkdir(2) meets such a link as EEXIST, stat(2) as ENOENT. */
int shard_dangling_link(const char *path, char *to, size_t n);
/* An output place, checked before the work that fills it (the writer, jepa-world
 * render, jepa-eval --export, jepa-train's run.dir, jepa-plan's RUN/plan).
 * A symbolic link is written through, as cp and mkdir -p do: the place is
 * where it points (*real: that path, resolved; else path as given), so a
 * writer's temporary sibling goes beside the target and its rename stays on
 * one filesystem, and the link is kept. Refused in one line naming path: a
 * link that points nowhere (cp will not write through it either) or to the
 * other kind (flags & SHARD_PLACE_DIR: a directory is wanted, else a file,
 * where a directory itself is refused too);
 * a name in path longer than NAME_MAX; with SHARD_PLACE_RENAMED (the place
 * is replaced by a rename from a sibling), a directory that is a mount
 * point, which no rename can replace. Makes nothing. 0 or -1 + err. */
enum { SHARD_PLACE_DIR = 1, SHARD_PLACE_RENAMED = 2 };
int shard_out_place(const char *path, int flags, char *real, size_t n, char *err, size_t errlen);
/* parent/PREFIX BASE SUFFIX in dst (n bytes): a writer's temporary sibling
 * of parent/base (".NAME.partial-PID", "NAME.tmp-PID"), base cut short
 * where the name would pass NAME_MAX, so a name near the limit gets one. */
void shard_sibling_path(char *dst, size_t n, const char *parent, const char *prefix, const char *base,
                        const char *suffix);
/* fsync(2) of the directory dir, or of the one holding path (_of): a
 * rename's new name is durable only then (the writer's temp + fsync +
 * rename, and the programs' own files written that way). 0, or -1 with
 * errno set. */
int shard_fsync_dir(const char *dir);
int shard_fsync_dir_of(const char *path);
/* The one way this library and the programs on it open an input file:
 * path opened read-only (O_CLOEXEC) and refused unless it is a regular
 * file, before anything waits on it. The open itself is O_NONBLOCK, as a
 * FIFO's blocking open waits for a writer that may never come (and no
 * signal ends it); the flag is cleared once the file is known regular. A
 * device (/dev/zero), FIFO or socket: "PATH: not a regular file (a device,
 * FIFO or socket may never end)", errno EINVAL; a directory: "PATH: cannot
 * read: Is a directory", errno EISDIR; an open that fails: "PATH: cannot
 * open: why", its errno (ENOENT: no such file). The fd and the file's size
 * in *size (may be NULL), or -1 + err with errno set. _fopen: the same as a
 * FILE opened "rb" (the caller fcloses it), or NULL. */
int shard_open_regular(const char *path, uint64_t *size, char *err, size_t errlen);
FILE *shard_fopen_regular(const char *path, uint64_t *size, char *err, size_t errlen);
/* The end of an atomic write: the caller wrote the file at path's temporary
 * name tmp (in path's directory, so the rename stays on one filesystem)
 * through f, ok saying whether every write went well. Then: fflush and
 * fsync of f, fclose, rename of tmp onto path, fsync of the directory (the
 * rename's entry; its failure is not an error: the file is whole). A crash
 * leaves the old file or the new, never an empty one under path. On any
 * failure, ok 0 and f NULL (fopen failed, errno set) included, tmp is
 * removed and err is "cannot write PATH: why". 0 or -1. */
int shard_tmp_commit(FILE *f, int ok, const char *tmp, const char *path, char *err, size_t errlen);

/* The settings one command line gave so far, for the flag parsers of the
 * programs built on this library (jepa-shard, jepa-world, jepa-plan): a
 * setting given twice, in one spelling or two (--size 16 --set size=32),
 * is a mistake to say, never an override applied silently. The strings are
 * the caller's (argv, literals or buffers that outlive the struct): not
 * copied. Zero-initialise it; the caller bounds its settings by
 * SHARD_SEEN_MAX (more is an assertion). */
#define SHARD_SEEN_MAX 256
typedef struct {
    const char *key[SHARD_SEEN_MAX];   /* the setting: "--episodes", "plan.episodes", "size=.." */
    size_t keylen[SHARD_SEEN_MAX];     /* its bytes in key ("size" of "size=32") */
    const char *typed[SHARD_SEEN_MAX]; /* how the user gave it: "4", "--set size=32" */
    int n;
} shard_seen;
/* Records setting key (its first kn bytes) as typed. NULL when it is new;
 * else how it was given before (nothing is recorded). */
const char *shard_seen_add(shard_seen *s, const char *key, size_t kn, const char *typed);
/* How setting key (kn bytes) was given, or NULL when it was not. */
const char *shard_seen_find(const shard_seen *s, const char *key, size_t kn);

/* Writes a dataset into dir. dir must not exist or be an empty directory;
 * everything is written to a hidden sibling `.NAME.partial-PID` and renamed
 * onto dir by shard_writer_close, so dir never holds a partial dataset. A
 * symbolic link dir is written through (shard_out_place: the dataset and
 * its sibling go where it points, the link stays); one pointing nowhere or
 * at a file, a name over NAME_MAX or a mount point is refused at open.
 * add() may be called any number of times; records roll over into new
 * shards every records_per_shard. close() commits and frees; abort() removes
 * the staging directory and frees. After a failed add() call abort().
 * An image schema writes format version 1 (byte for byte as before record
 * schemas existed), a record schema format version 2. */
typedef struct shard_writer shard_writer;
/* The checks of dir shard_writer_open makes, making nothing: for a caller
 * with work to do before it opens (jepa-shard pack lists and opens its
 * source first) to refuse a bad output before that. 0 or -1 + err, open's
 * wording. */
int shard_writer_check(const char *dir, char *err, size_t errlen);
int shard_writer_open(shard_writer **w, const char *dir, const shard_schema *schema,
                      const shard_pack_opts *o, char *err, size_t errlen);
/* n records: pixels (n, record_bytes) (for a record schema: the records,
 * each its fields concatenated); labels (n), NULL iff the schema has none
 * (always NULL for a record schema). Labels must be < num_classes and f32
 * values finite (NaN/Inf are refused, naming the record and field); nothing
 * of this call is written then. 0 or -1 + err. */
int shard_writer_add(shard_writer *w, const uint8_t *pixels, const uint8_t *labels, uint64_t n,
                     char *err, size_t errlen);
/* Names of the labels (label i -> names[i]), for a labelled image schema:
 * n = num_classes, each passing the class-name rule (shard_images above).
 * Written to the manifest (version 5, "classes"). Call before close. 0 or
 * -1 + err. */
int shard_writer_set_classes(shard_writer *w, const char *const *names, uint32_t n, char *err,
                             size_t errlen);
int shard_writer_close(shard_writer *w, char *err, size_t errlen);
void shard_writer_abort(shard_writer *w);
/* The bytes n records (rows (n, record_bytes); labels (n) or NULL as in
 * add()) take as one zstd frame, laid out and compressed as the writer does
 * it at o->level: a measured sample for estimating a dataset's size before
 * writing it. n * (record + label bytes) must not exceed SHARD_MAX_FRAME_RAW.
 * 0 or -1 + err. */
int shard_frame_estimate(const shard_schema *s, const shard_pack_opts *o, const uint8_t *rows,
                         const uint8_t *labels, uint32_t n, uint64_t *bytes, char *err,
                         size_t errlen);

/* Stopping a write on SIGINT, SIGTERM or SIGHUP (its terminal or ssh
 * session closed) without leaving the staging
 * directory behind. shard_interrupt_catch() (call it just before
 * shard_writer_open) makes those signals only set a flag (the handler does
 * nothing else: async-signal-safe); from then on add() and close() fail
 * with "interrupted by SIGTERM: nothing written", the caller aborts the
 * writer (removing the staging directory), says so, and calls
 * shard_interrupt_release(0): the previous handlers come back and a caught
 * signal is raised again, so the process ends as that signal says (a shell
 * sees 128 + its number). After a close() that succeeded the caller calls
 * shard_interrupt_release(1): a signal caught after close()'s last check
 * (while the finished output was moved into place) cannot undo the output,
 * so it is dropped and the command finishes as usual (its summary, exit 0).
 * A second signal, of either kind, while stopping acts at once (its default
 * action); a signal ignored on entry (nohup, a script's background job)
 * stays ignored. pending() is the caught signal or 0. */
void shard_interrupt_catch(void);
int shard_interrupt_pending(void);
void shard_interrupt_release(int completed);
/* "SIGINT", "SIGTERM", "SIGHUP" or "a signal": for the caller's one line. */
const char *shard_interrupt_name(int sig);

/* Out of memory inside the library. By default one line on stderr
 * ("jepa-shard: out of memory allocating N bytes"), then abort(). A program
 * that gives out of memory its own exit status (jepa-train's 5, which its
 * launcher does not restart) installs a handler; it gets the bytes asked for
 * (SIZE_MAX when the count itself overflowed) and must not return. NULL
 * restores the default. Process-wide, like the allocator. */
typedef void (*shard_oom_fn)(size_t bytes);
void shard_set_oom_handler(shard_oom_fn fn);

/* Convenience: open, add everything (and the class names), close (abort on error). */
int shard_pack(const char *dir, const shard_images *src, const shard_pack_opts *o, char *err,
               size_t errlen);

/* Convenience for a source larger than memory: open, then the source's
 * records a frame's worth at a time (next, add: memory is one chunk and the
 * writer's frame, whatever the set's size), the class names, close; on any
 * error the writer is aborted (nothing at dir). The output is byte for byte
 * shard_pack's of the same records. progress (may be NULL) is called after
 * each chunk with the records written so far and the total. src is read to
 * its end (the caller closes it). 0 or -1 + err. */
typedef void (*shard_pack_progress_fn)(void *ctx, uint64_t done, uint64_t n);
int shard_pack_stream(const char *dir, shard_image_src *src, const shard_pack_opts *o,
                      shard_pack_progress_fn progress, void *ctx, char *err, size_t errlen);

/* --------------------------------------------------------------- dataset */
typedef struct shard_dataset shard_dataset;

/* Reads and validates the manifest (its own checksum first, when it has
 * one: version 4) and every shard's header and index (checksums, counts,
 * offsets, agreement with the manifest); frames are checked when read. 0 or
 * -1 + err; on -1 *ds is NULL. */
int shard_dataset_open(shard_dataset **ds, const char *dir, char *err, size_t errlen);
void shard_dataset_close(shard_dataset *ds);
/* The schema dir's manifest.json declares, reading and validating that file
 * only (no shard is opened): what a launcher checks before it starts a job.
 * 0, or -1 + err (the manifest's own line) with *out zeroed. */
int shard_manifest_schema(const char *dir, shard_schema *out, char *err, size_t errlen);

const shard_schema *shard_dataset_schema(const shard_dataset *ds);
size_t shard_dataset_record_bytes(const shard_dataset *ds);
uint64_t shard_dataset_records(const shard_dataset *ds);
const char *shard_dataset_split(const shard_dataset *ds);
/* The name of class label (manifest version 5, packed from class folders),
 * or NULL when the dataset has no names or label >= num_classes. */
const char *shard_dataset_class_name(const shard_dataset *ds, uint32_t label);

typedef struct {
    uint32_t shards;
    uint64_t frames, records;
    uint32_t records_per_shard, records_per_frame;
    int level;
    uint64_t raw_bytes;        /* records * (record bytes + label bytes) */
    uint64_t compressed_bytes; /* sum of the zstd frames */
    uint64_t file_bytes;       /* sum of the shard files (frames + headers + indexes) */
    uint32_t manifest_version; /* 1 to 5 */
    int manifest_has_crc;      /* version 4: its crc32 (verified at open) in manifest_crc */
    uint32_t manifest_crc;
} shard_dataset_info;
void shard_dataset_get_info(const shard_dataset *ds, shard_dataset_info *info);

/* All records in manifest order (the order they were packed in):
 * pixels (records, record_bytes) (record schema: each record its fields
 * concatenated); labels (records) or NULL (zeros are written when the schema
 * has no labels). Checks every frame. 0 or -1 + err. */
int shard_dataset_read_all(shard_dataset *ds, uint8_t *pixels, uint8_t *labels, char *err,
                           size_t errlen);
/* One record by its index in manifest order; label may be NULL. Where it
 * came from is written to where (may be NULL), e.g. "shard-00002.jshard
 * frame 5 (offset 1234) record 17". 0 or -1 + err. */
int shard_dataset_read_record(shard_dataset *ds, uint64_t index, uint8_t *pixels,
                              uint8_t *label, char *where, size_t wherelen, char *err,
                              size_t errlen);

/* Records [first, first + n) in manifest order, decoding only the frames
 * that hold them (memory: one frame): pixels (n, record_bytes), labels (n)
 * or NULL as in read_all. A rank streams its slice of a dataset that does
 * not fit in memory this way. 0 or -1 + err (a range past the end names it). */
int shard_dataset_read_range(shard_dataset *ds, uint64_t first, uint64_t n, uint8_t *pixels,
                             uint8_t *labels, char *err, size_t errlen);

/* Pixel statistics of an image dataset: exact integer sums over every byte
 * of every record (count = records * record bytes). Packing computes them
 * and manifest versions 3 and 4 store them, so a trainer normalises without
 * reading the data: mean = sum / (255 count), var = sum_sq / (255^2
 * count) - mean^2 for pixels scaled to [0, 1]. */
typedef struct {
    uint64_t count, sum, sum_sq;
} shard_pixel_stats;

/* The manifest's statistics: 1 and *out when it has them (version 3 or 4), 0
 * when it predates them (version 1) or holds records of fields. */
int shard_dataset_has_pixel_stats(const shard_dataset *ds, shard_pixel_stats *out);
/* The statistics of an image dataset: the manifest's, or else one streaming
 * pass over every frame (older datasets; memory: one frame). *from_manifest
 * (may be NULL) says which. 0 or -1 + err (a record schema, a bad frame). */
int shard_dataset_pixel_stats(shard_dataset *ds, shard_pixel_stats *out, int *from_manifest,
                              char *err, size_t errlen);

/* Checks everything: manifest (a checksum mismatch is one problem, and
 * verify goes on with what the manifest says, so the lines that follow name
 * the numbers the shards contradict), every shard's header, index and every frame
 * (our CRC, zstd's checksum, sizes, labels < num_classes, f32 values finite
 * (a NaN/Inf is reported with its record index and field name)), totals. Calls
 * report(ctx, line) (if not NULL) once per problem, each line naming the file
 * and offset, and carries on past problems where it can. Returns the number of problems
 * (0 = sound). */
uint64_t shard_verify(const char *dir, void (*report)(void *ctx, const char *line), void *ctx);

/* ---------------------------------------------------------------- reader */
/* The training reader. Rank r of W (passed explicitly, so one process can
 * simulate many) with a per-rank batch B reads its slice of one sequence of
 * global batches of G = B * W records. Which records global batch s holds,
 * and in which order, is a pure function of (seed, dataset, G,
 * shuffle_buffer, s): the same for any W that divides G (elastic
 * determinism). Each epoch:
 *   1. the shard order is permuted by (seed, epoch), and the frame order
 *      within each shard by (seed, epoch, shard): one global stream of the
 *      N records; inside a frame the records come in an order permuted by
 *      (seed, epoch, shard, frame);
 *   2. the epoch is nb = floor(N / G) global batches over the stream's first
 *      nb * G positions; the last N - nb*G < G positions (records of the
 *      epoch's last frames, other ones each epoch) are left out;
 *   3. consecutive batches form windows of n = max(1, floor(shuffle_buffer /
 *      G)) batches (the epoch's last window may be shorter): window positions
 *      [0, n*G) are cut into G strata of n consecutive positions, and batch j
 *      of the window takes, in slot i, the j-th record of stratum i under a
 *      permutation keyed by (seed, epoch, window, i);
 *   4. rank r takes slots [r*B, (r+1)*B) of every global batch: strata
 *      r*B .. (r+1)*B-1, one contiguous run of B*n positions of each window,
 *      so it decodes only the frames of its run (its neighbours share at most
 *      one frame at each end).
 * Every record is used at most once an epoch; every rank yields nb batches
 * an epoch (MPI steps stay in lock-step). Batches never straddle epochs;
 * next() moves on to the next epoch by itself. Memory: B * n records (at most
 * max(shuffle_buffer, G) / W) plus the epoch's frame plan.
 *
 * A background thread decompresses up to `prefetch` batches ahead into a
 * bounded queue (prefetch 0: no thread, next() decodes inline; the batches
 * are the same either way). Errors in the thread come back from next(). */
typedef struct shard_reader shard_reader;

/* Position of a reader: a small POD a checkpoint stores verbatim. It holds
 * no rank and no world size that matter: a reader of another world size with
 * the same global batch continues from it (rank 0's copy restores every
 * rank of any world). The RNG state is not stored: every permutation is a
 * pure function of (seed, epoch, window). Version "SHR1" (the per-rank order
 * of older builds) is refused. */
#define SHARD_STATE_VERSION 0x53485232u /* "SHR2" */
typedef struct {
    uint32_t version;        /* SHARD_STATE_VERSION */
    uint32_t world;          /* ranks of the reader that took it (informative) */
    uint32_t global_batch;   /* G = batch per rank x ranks */
    uint32_t shuffle_buffer;
    uint64_t seed;
    uint64_t epoch;          /* epoch of the next batch */
    uint64_t batch_in_epoch; /* global batches of that epoch already consumed */
    uint64_t records;        /* dataset size ... */
    uint64_t fingerprint;    /* ... and identity: a resume on other data is refused */
} shard_reader_state;

/* rank in [0, world); batch >= 1 records per rank, batch * world < 2^32;
 * shuffle_buffer >= 1 records (it sets the window, see above); prefetch
 * 0..1024 batches. Fails when an epoch would hold no global batch
 * (N < batch * world). 0 or -1 + err. */
int shard_reader_init(shard_reader **r, const char *dir, int rank, int world, uint64_t seed,
                      int batch, int shuffle_buffer, int prefetch, char *err, size_t errlen);
/* As init, then positioned at *st, which must have been taken with the same
 * seed, global batch (batch * world: the world may differ), shuffle_buffer
 * and dataset (else -1 + err saying which differs). The global batches that
 * follow are bitwise those an uninterrupted reader would have produced. */
int shard_reader_init_at(shard_reader **r, const char *dir, int rank, int world, uint64_t seed,
                         int batch, int shuffle_buffer, int prefetch,
                         const shard_reader_state *st, char *err, size_t errlen);
/* The next batch: pixels (batch, record_bytes) (record schema: each record
 * its fields concatenated), labels (batch) or NULL (zeros when the schema
 * has no labels). 0 or -1 + err (the reader is then
 * dead: later calls fail with the same error). */
int shard_reader_next(shard_reader *r, uint8_t *pixels, uint8_t *labels, char *err,
                      size_t errlen);
/* Position after the last batch next() returned (not the prefetcher's). */
void shard_reader_get_state(const shard_reader *r, shard_reader_state *st);
uint64_t shard_reader_batches_per_epoch(const shard_reader *r);
const shard_schema *shard_reader_schema(const shard_reader *r);
uint64_t shard_reader_records(const shard_reader *r); /* the dataset's N */
/* Records of the frames this reader has decoded so far (the prefetcher's
 * work included): its decoding cost, for tests and benchmarks. */
uint64_t shard_reader_records_decoded(shard_reader *r);
void shard_reader_free(shard_reader *r); /* stops and joins the thread; NULL ok */

#endif
