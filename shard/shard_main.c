/* shard_main.c - the jepa-shard command: pack, verify, info, cat. A thin
 * layer over shard.h: parses flags, prints, maps errors to exit codes
 * (2: bad usage, 1: bad data or I/O). Every error is one line on stderr
 * naming the file, flag or value. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard.h"
#include "stdout_close.h"

#define PROG "jepa-shard"

static const char *usage_text =
    "usage: " PROG " COMMAND ...\n"
    "  pack   SOURCE --out DIR [--split NAME] [--records-per-shard N] [--records-per-frame N]\n"
    "         [--level L] [--quiet]   (--quiet: no progress line, no summary)\n"
    "         SOURCE is one of:\n"
    "           --idx-images FILE [--idx-labels FILE]      IDX (MNIST layout), gzip or plain\n"
    "           --image-dir DIR [--labels FILE | --class-dirs] [--channels 1|3]\n"
    "                    *.png/*.pgm/*.ppm in DIR (--pnm-dir DIR: the same), all one size;\n"
    "                    --labels: 'NAME LABEL' lines (LABEL the last word); --class-dirs: DIR/CLASS/*.png as\n"
    "                    torchvision's ImageFolder, label = index of CLASS in sorted order\n"
    "                    (names kept in the manifest); --channels: 1 grey, 3 RGB (else as\n"
    "                    the files are). PNG alpha is dropped, 16-bit scaled to 8; no resizing\n"
    "           --raw FILE --height H --width W [--channels C] [--raw-labels FILE]\n"
    "                                                      uint8 (N, C, H, W); labels: N bytes\n"
    "         defaults: --split train --records-per-shard 4096 --records-per-frame 256 --level 3\n"
    "  verify DIR                 check every checksum and count; exit 0 when sound\n"
    "  info   DIR                 schema (image, or fields: name dtype [shape]), counts,\n"
    "                             raw/compressed sizes and ratio\n"
    "  cat    DIR --index N [--format text|pgm|raw]   dump one record (pgm/raw to stdout;\n"
    "                             pgm is for images; a record of fields prints each field)\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see " PROG " --help)\n");
    va_end(ap);
    return 2;
}

/* Parses a whole decimal number in [lo, hi]; prints the error and returns 2. */
static int parse_num(const char *flag, const char *val, long long lo, long long hi,
                     long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno) {
        fprintf(stderr, PROG ": %s %s: not a whole number\n", flag, val);
        return 2;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, PROG ": %s %s: out of range [%lld, %lld]\n", flag, val, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------- pack */
/* What `pack` was asked to do. */
typedef struct {
    const char *idx_images, *idx_labels, *image_dir, *labels, *raw, *raw_labels, *out;
    long long height, width, channels; /* channels 0: not given */
    int quiet, class_dirs;
    shard_pack_opts o;
} pack_args;

/* Pack phase 1: the flags into *a. Returns -1 to go on, else the exit code
 * (0 after --help, 2 on a usage error, reported in one line). */
static int pack_parse(int argc, char **argv, pack_args *a) {
    memset(a, 0, sizeof *a);
    shard_pack_opts_defaults(&a->o);
    long long v;
    shard_seen seen = {0}; /* a flag given twice is a mistake, not an override */
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--quiet")) {
            a->quiet = 1;
            continue;
        }
        if (!strcmp(f, "--class-dirs")) {
            if (shard_seen_add(&seen, f, strlen(f), f)) return usage_error("pack: %s given twice", f);
            a->class_dirs = 1;
            continue;
        }
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        const char **str = !strcmp(f, "--idx-images")    ? &a->idx_images
                           : !strcmp(f, "--idx-labels")  ? &a->idx_labels
                           : !strcmp(f, "--image-dir")   ? &a->image_dir
                           : !strcmp(f, "--pnm-dir")     ? &a->image_dir
                           : !strcmp(f, "--labels")      ? &a->labels
                           : !strcmp(f, "--raw")         ? &a->raw
                           : !strcmp(f, "--raw-labels")  ? &a->raw_labels
                           : !strcmp(f, "--out")         ? &a->out
                                                         : NULL;
        int is_num = !strcmp(f, "--records-per-shard") || !strcmp(f, "--records-per-frame") ||
                     !strcmp(f, "--level") || !strcmp(f, "--height") || !strcmp(f, "--width") ||
                     !strcmp(f, "--channels") || !strcmp(f, "--split");
        if (!str && !is_num) return usage_error("pack: unknown argument '%s'", f);
        if (i + 1 >= argc) return usage_error("pack: %s needs a value", f);
        const char *val = argv[++i];
        /* --pnm-dir is --image-dir's older name: one setting */
        const char *key = !strcmp(f, "--pnm-dir") ? "--image-dir" : f, *prev;
        if ((prev = shard_seen_add(&seen, key, strlen(key), f)))
            return usage_error("pack: %s given twice%s", f, strcmp(prev, f) ? " (--pnm-dir is "
                               "--image-dir's other name)" : "");
        if (str) {
            *str = val;
        } else if (!strcmp(f, "--split")) {
            if (strlen(val) >= sizeof a->o.split)
                return usage_error("pack: --split %s: too long", val);
            snprintf(a->o.split, sizeof a->o.split, "%s", val);
        } else if (!strcmp(f, "--records-per-shard")) {
            if (parse_num(f, val, 1, 1LL << 31, &v)) return 2;
            a->o.records_per_shard = (uint32_t)v;
        } else if (!strcmp(f, "--records-per-frame")) {
            if (parse_num(f, val, 1, 1 << 20, &v)) return 2;
            a->o.records_per_frame = (uint32_t)v;
        } else if (!strcmp(f, "--level")) {
            if (parse_num(f, val, 1, 22, &v)) return 2;
            a->o.level = (int)v;
        } else {
            long long *dst = !strcmp(f, "--height") ? &a->height
                             : !strcmp(f, "--width") ? &a->width
                                                     : &a->channels;
            if (parse_num(f, val, 1, !strcmp(f, "--channels") ? 64 : 65535, dst)) return 2;
        }
    }
    return -1;
}

/* Pack phase 2: the flags agree with each other. 0, or 2 after one line. */
static int pack_check(const pack_args *a) {
    int nsrc = !!a->idx_images + !!a->image_dir + !!a->raw;
    if (nsrc != 1)
        return usage_error("pack: give exactly one source: --idx-images, --image-dir or --raw");
    if (!a->out) return usage_error("pack: missing --out DIR");
    if (a->idx_labels && !a->idx_images)
        return usage_error("pack: %s needs %s", "--idx-labels", "--idx-images");
    if (a->labels && !a->image_dir) return usage_error("pack: %s needs %s", "--labels", "--image-dir");
    if (a->class_dirs && !a->image_dir)
        return usage_error("pack: %s needs %s", "--class-dirs", "--image-dir");
    if (a->class_dirs && a->labels)
        return usage_error("pack: --labels and --class-dirs both give labels: choose one");
    if (a->image_dir && a->channels && a->channels != 1 && a->channels != 3)
        return usage_error("pack: --channels %lld: --image-dir converts to 1 (grey) or 3 (RGB)",
                           a->channels);
    if (a->raw_labels && !a->raw) return usage_error("pack: %s needs %s", "--raw-labels", "--raw");
    if (a->raw && (!a->height || !a->width))
        return usage_error("pack: %s needs %s", "--raw", "--height and --width");
    if (!a->raw && (a->height || a->width))
        return usage_error("pack: %s only go with %s", "--height/--width", "--raw");
    if (!a->raw && !a->image_dir && a->channels)
        return usage_error("pack: %s only goes with %s", "--channels", "--raw or --image-dir");
    char err[SHARD_ERR_MAX];
    if (shard_pack_opts_check(&a->o, err, sizeof err)) {
        fprintf(stderr, PROG ": pack: %s\n", err);
        return 2;
    }
    return 0;
}

/* The progress line on a terminal: "pack: D/N records (P%)"; *ctx notes it shown. */
static void pack_progress(void *ctx, uint64_t done, uint64_t n) {
    *(int *)ctx = 1;
    fprintf(stderr, "\rpack: %llu/%llu records (%.0f%%)", (unsigned long long)done,
            (unsigned long long)n, 100.0 * (double)done / (double)n);
}

/* Pack phase 3: the source streamed through the (atomic) writer, a frame's
 * records at a time (memory: one chunk, whatever the set's size).
 * SIGINT/SIGTERM/SIGHUP stop it: the staging directory is removed, one
 * line says so, and the signal then ends the process; one caught after
 * close() succeeded (while the dataset was moved into place) is dropped and
 * pack goes on to its summary. 0, or 1 after one line (nothing left at out). */
static int pack_write(const pack_args *a, shard_image_src *src) {
    char err[SHARD_ERR_MAX];
    int tty = !a->quiet && isatty(STDERR_FILENO), shown = 0;
    shard_interrupt_catch();
    int rc = shard_pack_stream(a->out, src, &a->o, tty ? pack_progress : NULL, &shown, err,
                               sizeof err) ? 1 : 0;
    if (shown) fputc('\n', stderr);
    if (rc) fprintf(stderr, PROG ": %s\n", err);
    shard_interrupt_release(rc == 0);
    return rc;
}

/* Pack phase 4: read back what was written and summarise it. */
static int pack_report(const pack_args *a, uint64_t n) {
    char err[SHARD_ERR_MAX];
    shard_dataset *ds;
    if (shard_dataset_open(&ds, a->out, err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    if (!a->quiet)
        printf("packed %llu records into %u shard%s in %s (raw %llu bytes, files %llu bytes, "
               "ratio %.2f, zstd level %d)\n", (unsigned long long)n, in.shards,
               in.shards == 1 ? "" : "s", a->out,
               (unsigned long long)in.raw_bytes, (unsigned long long)in.file_bytes,
               (double)in.raw_bytes / (double)in.file_bytes, in.level);
    shard_dataset_close(ds);
    return 0;
}

/* pack: parse, check, open the source, stream it into the writer, report. */
static int cmd_pack(int argc, char **argv) {
    pack_args a;
    int rc = pack_parse(argc, argv, &a);
    if (rc >= 0) return rc;
    if ((rc = pack_check(&a))) return rc;
    char err[SHARD_ERR_MAX];
    if (shard_writer_check(a.out, err, sizeof err)) /* before the source is listed or read */
        return fprintf(stderr, PROG ": %s\n", err), 1;
    shard_image_src *src;
    shard_image_dir_opts io = {a.labels, a.class_dirs, (uint32_t)a.channels};
    rc = a.idx_images  ? shard_idx_open(&src, a.idx_images, a.idx_labels, err, sizeof err)
         : a.image_dir ? shard_image_dir_open(&src, a.image_dir, &io, err, sizeof err)
                       : shard_raw_open(&src, a.raw, a.raw_labels, (uint32_t)a.height,
                                        (uint32_t)a.width, a.channels ? (uint32_t)a.channels : 1,
                                        err, sizeof err);
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    uint64_t n = shard_image_src_info(src)->n;
    rc = pack_write(&a, src);
    shard_image_src_close(src);
    return rc ? rc : pack_report(&a, n);
}

/* ----------------------------------------------------------- verify/info */
static void print_problem(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, PROG ": %s\n", line);
}

static int one_dir_arg(int argc, char **argv, const char *cmd, const char **dir) {
    if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        fputs(usage_text, stdout);
        return -1;
    }
    if (argc < 3) return usage_error("%s: missing DIR", cmd);
    if (argc > 3) return usage_error("%s: unexpected argument '%s'", cmd, argv[3]);
    /* '' would be read as "/manifest.json" (DIR "" + "/manifest.json") */
    if (!argv[2][0]) return usage_error("%s: DIR is empty ('')", cmd);
    *dir = argv[2];
    return 0;
}

/* "version 4, crc32 1a2b3c4d" (checked at open) or, for a manifest packed
 * before version 4, that it has none */
static void manifest_status(const shard_dataset_info *in, char *buf, size_t n) {
    if (in->manifest_has_crc)
        snprintf(buf, n, "version %u, crc32 %08x", in->manifest_version, in->manifest_crc);
    else
        snprintf(buf, n, "version %u, no checksum of its own (packed by an older build)",
                 in->manifest_version);
}

static int cmd_verify(int argc, char **argv) {
    const char *dir;
    int rc = one_dir_arg(argc, argv, "verify", &dir);
    if (rc) return rc < 0 ? 0 : rc;
    uint64_t problems = shard_verify(dir, print_problem, NULL);
    if (problems) {
        printf("%s: %llu problem%s\n", dir, (unsigned long long)problems, problems > 1 ? "s" : "");
        return 1;
    }
    char err[SHARD_ERR_MAX];
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, sizeof err)) { /* changed under us */
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    char man[96];
    manifest_status(&in, man, sizeof man);
    printf("%s: ok: %u shards, %llu frames, %llu records; every checksum and count verified; "
           "manifest %s\n", dir, in.shards, (unsigned long long)in.frames,
           (unsigned long long)in.records, man);
    shard_dataset_close(ds);
    return 0;
}

/* "[15,2]" ("[]" for a scalar) */
static void print_shape(const shard_field *f, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < f->ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%u", d ? "," : "", f->shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

/* "classes      0 airplane, 1 automobile, ..." (manifest version 5) */
static void print_classes(const shard_dataset *ds, const shard_schema *s) {
    if (s->label != SHARD_LABEL_U8 || !shard_dataset_class_name(ds, 0)) return;
    printf("classes     ");
    for (uint32_t i = 0; i < s->num_classes; i++)
        printf(" %u %s%s", i, shard_dataset_class_name(ds, i), i + 1 < s->num_classes ? "," : "\n");
}

static int cmd_info(int argc, char **argv) {
    const char *dir;
    int rc = one_dir_arg(argc, argv, "info", &dir);
    if (rc) return rc < 0 ? 0 : rc;
    char err[SHARD_ERR_MAX];
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    const shard_schema *s = shard_dataset_schema(ds);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    char man[96];
    manifest_status(&in, man, sizeof man);
    printf("dataset      %s\nsplit        %s\n", dir, shard_dataset_split(ds));
    printf("manifest     %s\n", man);
    if (s->nfields) {
        printf("schema       %u fields, %zu bytes per record (format version 2)\n", s->nfields,
               shard_schema_record_bytes(s));
        for (uint32_t i = 0; i < s->nfields; i++) {
            char shape[64];
            print_shape(&s->fields[i], shape, sizeof shape);
            printf("field        %s %s %s (%zu bytes at offset %zu)\n", s->fields[i].name,
                   shard_dtype_name(s->fields[i].dtype), shape,
                   shard_field_bytes(&s->fields[i]), shard_schema_field_offset(s, (int)i));
        }
    } else {
        printf("schema       %ux%ux%u u8 (height x width x channels), ", s->height, s->width,
               s->channels);
        if (s->label == SHARD_LABEL_U8) printf("label u8 class, %u classes\n", s->num_classes);
        else printf("no labels\n");
        print_classes(ds, s);
    }
    printf("records      %llu in %u shards, %llu frames (%u records per shard, %u per frame)\n",
           (unsigned long long)in.records, in.shards, (unsigned long long)in.frames,
           in.records_per_shard, in.records_per_frame);
    printf("zstd level   %d\n", in.level);
    printf("raw          %llu bytes\n", (unsigned long long)in.raw_bytes);
    printf("compressed   %llu bytes in frames, %llu bytes in files\n",
           (unsigned long long)in.compressed_bytes, (unsigned long long)in.file_bytes);
    printf("ratio        %.3f (raw / file bytes)\n", (double)in.raw_bytes / (double)in.file_bytes);
    shard_pixel_stats ps;
    if (shard_dataset_has_pixel_stats(ds, &ps) && ps.count) {
        /* the trainer's normalisation (shard.h): pixels scaled to [0, 1] */
        double n = (double)ps.count, mean = (double)ps.sum / (255.0 * n);
        double var = (double)ps.sum_sq / (255.0 * 255.0 * n) - mean * mean;
        printf("pixels       mean %.6f std %.6f (0..1 scale, from the manifest)\n", mean,
               sqrt(var > 0 ? var : 0));
    } else if (!s->nfields) {
        printf("pixels       statistics not in the manifest (format before version 3)\n");
    }
    shard_dataset_close(ds);
    return 0;
}

/* -------------------------------------------------------------------- cat */
/* Shortest %g form (6 to 9 digits) that reads back as the same float. */
static void fmt_f32(float x, char *buf, size_t n) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, n, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

static double elem_at(const shard_field *f, const uint8_t *p, size_t e) {
    if (f->dtype == SHARD_DTYPE_U8) return p[e];
    const uint8_t *q = p + 4 * e; /* little-endian binary32 */
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                 (uint32_t)q[3] << 24;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void print_elem(const shard_field *f, double v) {
    char b[32];
    if (f->dtype == SHARD_DTYPE_U8) snprintf(b, sizeof b, "%d", (int)v);
    else fmt_f32((float)v, b, sizeof b);
    fputs(b, stdout);
}

/* "min A max B mean C" over elements [a, b) */
static void print_stats(const shard_field *f, const uint8_t *p, size_t a, size_t b) {
    double lo = elem_at(f, p, a), hi = lo, sum = 0;
    for (size_t e = a; e < b; e++) {
        double v = elem_at(f, p, e);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    printf("min ");
    print_elem(f, lo);
    printf(" max ");
    print_elem(f, hi);
    printf(" mean %.6g\n", sum / (double)(b - a));
}

/* Every element: one line per run along the last dim, led by the indices
 * of the dims before it, e.g. "  [3] 0.25 -1" for a [T,2] array. */
static void print_rows(const shard_field *f, const uint8_t *p, size_t n) {
    size_t row = f->ndim ? f->shape[f->ndim - 1] : 1;
    for (size_t r = 0; r < n / row; r++) {
        if (f->ndim >= 2) {
            uint64_t idx[SHARD_MAX_DIMS], q = r;
            for (int d = (int)f->ndim - 2; d >= 0; d--) {
                idx[d] = q % f->shape[d];
                q /= f->shape[d];
            }
            printf("  [");
            for (uint32_t d = 0; d + 1 < f->ndim; d++)
                printf("%s%llu", d ? "," : "", (unsigned long long)idx[d]);
            printf("]");
        }
        for (size_t e = r * row; e < (r + 1) * row; e++) {
            printf(" ");
            print_elem(f, elem_at(f, p, e));
        }
        printf("\n");
    }
}

/* One field of a record: small arrays in full (f32 up to 4096 values, u8 up
 * to 64), larger ones as min/max/mean overall and per leading index. */
static void print_field(const shard_field *f, const uint8_t *p) {
    char shape[64];
    print_shape(f, shape, sizeof shape);
    size_t n = shard_field_bytes(f) / (f->dtype == SHARD_DTYPE_F32 ? 4 : 1);
    printf("%s %s %s", f->name, shard_dtype_name(f->dtype), shape);
    if (n <= (f->dtype == SHARD_DTYPE_F32 ? 4096u : 64u)) {
        printf(f->ndim >= 2 ? ":\n" : ":");
        print_rows(f, p, n);
        return;
    }
    printf(": ");
    print_stats(f, p, 0, n);
    if (f->ndim < 2 || f->shape[0] > 256) return;
    size_t inner = n / f->shape[0];
    for (uint32_t t = 0; t < f->shape[0]; t++) {
        printf("  [%u] ", t);
        print_stats(f, p, t * inner, (t + 1) * inner);
    }
}

/* A record as text: each field (record schema), or each image plane in hex. */
static void print_record(const shard_schema *s, const uint8_t *pix) {
    size_t plane = (size_t)s->height * s->width;
    for (uint32_t i = 0; i < s->nfields; i++)
        print_field(&s->fields[i], pix + shard_schema_field_offset(s, (int)i));
    for (uint32_t c = 0; c < s->channels; c++) {
        if (s->channels > 1) printf("channel %u\n", c);
        for (uint32_t y = 0; y < s->height; y++) {
            for (uint32_t x = 0; x < s->width; x++)
                printf("%s%02x", x ? " " : "", pix[c * plane + (size_t)y * s->width + x]);
            printf("\n");
        }
    }
}


static int cmd_cat(int argc, char **argv) {
    const char *dir = NULL, *format = "text";
    long long index = -1;
    shard_seen seen = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--index") || !strcmp(a, "--format")) {
            if (i + 1 >= argc) return usage_error("cat: %s needs a value", a);
            const char *val = argv[++i];
            if (shard_seen_add(&seen, a, strlen(a), val))
                return usage_error("cat: %s given twice", a);
            if (!strcmp(a, "--format")) {
                if (strcmp(val, "text") && strcmp(val, "pgm") && strcmp(val, "raw"))
                    return usage_error("cat: --format %s: expected text, pgm or raw", val);
                format = val;
            } else if (parse_num(a, val, 0, (1LL << 62), &index)) {
                return 2;
            }
        } else if (a[0] == '-' || dir) {
            return usage_error("cat: unexpected argument '%s'", a);
        } else {
            dir = a;
        }
    }
    if (!dir) return usage_error("cat: missing DIR");
    if (!dir[0]) return usage_error("cat: DIR is empty ('')");
    if (index < 0) return usage_error("cat: missing --index N");
    char err[SHARD_ERR_MAX], where[512];
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    const shard_schema *s = shard_dataset_schema(ds);
    size_t rec = shard_dataset_record_bytes(ds), plane = (size_t)s->height * s->width;
    if (s->nfields && !strcmp(format, "pgm")) {
        uint32_t nf = s->nfields;
        shard_dataset_close(ds);
        return usage_error("cat: --format pgm: %s holds records of %u fields, not images (use "
                           "text or raw)", dir, nf);
    }
    uint8_t *pix = malloc(rec), label = 0;
    int rc = 0;
    if (!pix || shard_dataset_read_record(ds, (uint64_t)index, pix, &label, where, sizeof where,
                                          err, sizeof err)) {
        fprintf(stderr, PROG ": %s\n", pix ? err : "out of memory");
        rc = 1;
    } else if (!strcmp(format, "raw")) {
        fwrite(pix, 1, rec, stdout);
    } else if (!strcmp(format, "pgm")) {
        /* PGM per plane for 1 channel, PPM (interleaved) for 3; others: planes stacked as PGM */
        int rgb = s->channels == 3;
        printf("P%c\n%u %u\n255\n", rgb ? '6' : '5', s->width,
               rgb ? s->height : s->height * s->channels);
        if (rgb)
            for (size_t p = 0; p < plane; p++)
                for (int c = 0; c < 3; c++) putchar(pix[c * plane + p]);
        else
            fwrite(pix, 1, rec, stdout);
    } else {
        printf("record %lld of %llu: %s", index, (unsigned long long)shard_dataset_records(ds),
               where);
        if (s->label == SHARD_LABEL_U8) printf(", label %u", label);
        if (shard_dataset_class_name(ds, label)) printf(" (%s)", shard_dataset_class_name(ds, label));
        printf("\n");
        print_record(s, pix);
    }
    free(pix);
    shard_dataset_close(ds);
    return rc; /* a failed write to stdout: main's stdout_close says so */
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) return usage_error("missing COMMAND (pack, verify, info or cat)");
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(c, "pack")) return cmd_pack(argc, argv);
    if (!strcmp(c, "verify")) return cmd_verify(argc, argv);
    if (!strcmp(c, "info")) return cmd_info(argc, argv);
    if (!strcmp(c, "cat")) return cmd_cat(argc, argv);
    return usage_error("unknown command '%s' (pack, verify, info or cat)", c);
}

int main(int argc, char **argv) { return stdout_close(PROG, dispatch(argc, argv)); }
