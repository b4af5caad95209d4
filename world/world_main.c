/* world_main.c - the jepa-world command: gen (episodes into shards), render
 * (one episode as a PGM or PNG film strip, to eyeball), info (a world's parameters
 * and shapes). Flags only; the work is in gen.c and the world library. Exit
 * codes: 2 bad usage, 1 failure (I/O, data); every error is one stderr line
 * naming the flag, parameter or file. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <png.h>

#include "gen.h"
#include "stdout_close.h"
#include "world.h"

#define PROG "jepa-world"
#define MAX_SETS 64

static const char *usage_text =
    "usage: " PROG " COMMAND ...\n"
    "  gen    --out DIR --episodes N [--steps T] [--seed S] [--size PX] [WORLD OPTIONS]\n"
    "         [--shard-records K] [--frame-records F] [--level L] [--split NAME] [--quiet]\n"
    "         writes N episodes of the world's exploration policy, one record each:\n"
    "         frames u8 (T,C,H,W), actions f32 (T-1,A), state f32 (T,S)\n"
    "         defaults: --steps 32 --seed 0 --shard-records 1024 --frame-records 16\n"
    "         --level 3 --split train. Refused before any work: an episode over 64 MiB, a data\n"
    "         set that cannot fit the free space (estimated from its first episodes). SIGINT,\n"
    "         SIGTERM or SIGHUP stops it leaving nothing behind. Every option is given once.\n"
    "  render --out FILE.pgm|FILE.png [--episode E] [--steps T] [--seed S] [--zoom Z] [WORLD OPTIONS]\n"
    "         one episode's frames side by side (PGM or 8-bit grey PNG by the extension, each\n"
    "         pixel Z x Z; default zoom 4);\n"
    "         SIGINT, SIGTERM or SIGHUP stops it leaving nothing behind\n"
    "  info   [WORLD OPTIONS]   the world's parameters, observation and action shapes\n"
    "WORLD OPTIONS:\n"
    "  --world NAME        environment (default tworoom)\n"
    "  --set NAME=VALUE    a world parameter (repeatable; `" PROG " info` lists them)\n"
    "  --size PX           shorthand for --set size=PX\n";

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

/* A whole decimal number in [lo, hi] (unsigned, so seeds span 64 bits). */
static int parse_u64(const char *flag, const char *val, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!*val || *end || errno || val[0] == '-' || val[0] == '+' || val[0] == ' ') {
        fprintf(stderr, PROG ": %s %s: not a whole number\n", flag, val);
        return 2;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, PROG ": %s %s: out of range [%llu, %llu]\n", flag, val,
                (unsigned long long)lo, (unsigned long long)hi);
        return 2;
    }
    *out = v;
    return 0;
}

/* Flags every command shares: which world and its parameters. */
typedef struct {
    const char *name;
    const char *sets[MAX_SETS];  /* "name=value" */
    char flags[MAX_SETS][96];    /* how the user wrote it, for errors */
    int nsets;
    shard_seen seen;             /* parameter name -> flags[k]: each one once */
} world_args;

/* Consumes argv[*i] (and its value) when it is a world option: 1 consumed,
 * 0 not a world option, 2 usage error (printed). */
static int world_arg(world_args *wa, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (strcmp(a, "--world") && strcmp(a, "--set") && strcmp(a, "--size")) return 0;
    if (*i + 1 >= argc) return usage_error("%s needs a value", a), 2;
    const char *val = argv[++*i];
    if (!strcmp(a, "--world")) {
        if (wa->name)
            return usage_error("--world %s: already given as --world %s (give it once)", val,
                               wa->name), 2;
        wa->name = val;
        return 1;
    }
    if (wa->nsets >= MAX_SETS) return usage_error("more than %d world parameters", MAX_SETS), 2;
    int k = wa->nsets++;
    snprintf(wa->flags[k], sizeof wa->flags[k], "%s %s", a, val);
    if (!strcmp(a, "--size")) {
        static char buf[MAX_SETS][96]; /* lives as long as the program */
        snprintf(buf[k], sizeof buf[k], "size=%s", val);
        wa->sets[k] = buf[k];
    } else {
        wa->sets[k] = val;
    }
    /* one setting, two spellings (--size 16 --set size=32): neither silently wins */
    size_t kn = strcspn(wa->sets[k], "=");
    const char *before = shard_seen_add(&wa->seen, wa->sets[k], kn, wa->flags[k]);
    if (before)
        return usage_error("%s: %.*s already given by %s (give each setting once)",
                           wa->flags[k], (int)kn, wa->sets[k], before), 2;
    return 1;
}

/* A command's own options are kept in a shard_seen too, flag -> value: a
 * second --episodes is a mistake to say, not an override to apply silently.
 * 2 after one line naming both when flag was given before, else 0. */
static int option_once(shard_seen *so, const char *cmd, const char *flag, const char *val) {
    const char *before = shard_seen_add(so, flag, strlen(flag), val);
    if (!before) return 0;
    return usage_error("%s: %s %s: already given as %s %s (give each option once)", cmd, flag,
                       val, flag, before);
}

/* "--steps 100" as given, or "--steps 32 (the default)" into buf. */
static const char *option_text(const shard_seen *so, const char *flag, unsigned long long def,
                               char *buf, size_t n) {
    const char *val = shard_seen_find(so, flag, strlen(flag));
    if (val) snprintf(buf, n, "%s %s", flag, val);
    else snprintf(buf, n, "%s %llu (the default)", flag, def);
    return buf;
}

/* Finds the world, applies the --set list, builds the instance. 0, or the
 * exit code after printing one line. */
static int world_open(const world_args *wa, world *w) {
    const char *name = wa->name ? wa->name : "tworoom";
    const world_ops *ops = world_find(name);
    if (!ops) {
        char names[256] = "";
        for (int i = 0; world_all[i]; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     world_all[i]->name);
        return usage_error("--world %s: unknown world (known: %s)", name, names);
    }
    void *params = malloc(ops->params_size);
    char err[WORLD_ERR_MAX];
    if (!params) return fprintf(stderr, PROG ": out of memory\n"), 1;
    world_params_default(ops, params);
    for (int i = 0; i < wa->nsets; i++)
        if (world_params_set(ops, params, wa->sets[i], err, sizeof err)) {
            free(params);
            return usage_error("%s: %s", wa->flags[i], err);
        }
    int rc = world_init(w, ops, params, err, sizeof err);
    free(params);
    if (rc) return usage_error("%s", err);
    return 0;
}

/* ------------------------------------------------------------------- gen */
/* Parses gen's flags into wa and o (o->pack starts from gen's defaults).
 * 0, -1 after --help, or the exit code after printing one line. */
static int gen_flags(int argc, char **argv, world_args *wa, world_gen_opts *o, int *quiet,
                     shard_seen *so) {
    uint64_t v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = world_arg(wa, argc, argv, &i);
        if (r == 2) return 2;
        if (r) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(usage_text, stdout), -1;
        if (!strcmp(a, "--quiet")) {
            *quiet = 1;
            continue;
        }
        if (strcmp(a, "--out") && strcmp(a, "--episodes") && strcmp(a, "--steps") &&
            strcmp(a, "--seed") && strcmp(a, "--shard-records") && strcmp(a, "--frame-records") &&
            strcmp(a, "--level") && strcmp(a, "--split"))
            return usage_error("gen: unknown argument '%s'", a);
        if (i + 1 >= argc) return usage_error("gen: %s needs a value", a);
        const char *val = argv[++i];
        if (option_once(so, "gen", a, val)) return 2;
        if (!strcmp(a, "--out")) {
            o->out = val;
        } else if (!strcmp(a, "--split")) {
            if (strlen(val) >= sizeof o->pack.split)
                return usage_error("gen: --split %s: too long", val);
            snprintf(o->pack.split, sizeof o->pack.split, "%s", val);
        } else if (!strcmp(a, "--episodes")) {
            if (parse_u64(a, val, 1, 1ULL << 40, &o->episodes)) return 2;
        } else if (!strcmp(a, "--steps")) {
            if (parse_u64(a, val, 2, 65535, &v)) return 2;
            o->steps = (uint32_t)v;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(a, val, 0, UINT64_MAX, &o->seed)) return 2;
        } else {
            int level = !strcmp(a, "--level"), frame = !strcmp(a, "--frame-records");
            if (parse_u64(a, val, 1, level ? 22 : frame ? 1 << 20 : 1ULL << 31, &v)) return 2;
            if (level) o->pack.level = (int)v;
            else if (frame) o->pack.records_per_frame = (uint32_t)v;
            else o->pack.records_per_shard = (uint32_t)v;
        }
    }
    if (!o->out) return usage_error("gen: missing --out DIR");
    if (!o->episodes) return usage_error("gen: missing --episodes N");
    char err[SHARD_ERR_MAX];
    if (shard_pack_opts_check(&o->pack, err, sizeof err)) return usage_error("gen: %s", err);
    return 0;
}

static void gen_summary(const world *w, const world_gen_opts *o, const world_gen_stats *st) {
    printf("generated %llu episodes of %s (T=%u, %ux%ux%u frames, seed %llu) into %s: "
           "%u shard%s, raw %llu bytes, files %llu bytes (ratio %.1f); "
           "%.1f%% of episodes cross between regions; %.2f s (%.0f episodes/s)\n",
           (unsigned long long)st->episodes, w->ops->name, o->steps, w->channels, w->height,
           w->width, (unsigned long long)o->seed, o->out, st->shards, st->shards == 1 ? "" : "s",
           (unsigned long long)st->raw_bytes, (unsigned long long)st->file_bytes,
           (double)st->raw_bytes / (double)st->file_bytes,
           100.0 * (double)st->crossed / (double)st->episodes, st->seconds,
           (double)st->episodes / st->seconds);
}

/* shard/'s limits said in gen's own options, before anything is made: an
 * episode is one record (<= SHARD_MAX_RECORD_BYTES), --frame-records of
 * them one zstd frame (<= SHARD_MAX_FRAME_RAW). 0, or 2 after one line. */
static int gen_check_record(const world *w, const world_gen_opts *o, const world_args *wa,
                            const shard_seen *so) {
    uint64_t fb = world_frame_bytes(w), T = o->steps, a4 = 4ull * w->action_dim;
    uint64_t rec = T * fb + (T - 1) * a4 + T * 4ull * w->state_dim;
    char steps[96], frames[160], fr[96];
    option_text(so, "--steps", o->steps, steps, sizeof steps);
    const char *size = shard_seen_find(&wa->seen, "size", 4); /* "--size 64" or "--set size=64" */
    snprintf(frames, sizeof frames, "%s%s%ux%ux%u frames", size ? size : "", size ? ", " : "",
             w->channels, w->height, w->width);
    if (rec > SHARD_MAX_RECORD_BYTES) {
        uint64_t tmax = (SHARD_MAX_RECORD_BYTES + a4) / (fb + a4 + 4ull * w->state_dim);
        char most[64] = "lower the frame size";
        if (tmax >= 2) snprintf(most, sizeof most, "at most --steps %llu at this frame size",
                                (unsigned long long)tmax);
        return usage_error("gen: %s with %s: an episode (its frames, actions and states) is %llu "
                           "bytes, more than the %llu one record may hold: %s", steps, frames,
                           (unsigned long long)rec, (unsigned long long)SHARD_MAX_RECORD_BYTES,
                           most);
    }
    if (o->pack.records_per_frame * rec > SHARD_MAX_FRAME_RAW)
        return usage_error("gen: %s: a zstd frame of that many episodes of %llu bytes (%s with "
                           "%s) is more than %llu bytes: at most --frame-records %llu here",
                           option_text(so, "--frame-records", o->pack.records_per_frame, fr, sizeof fr),
                           (unsigned long long)rec, steps, frames,
                           (unsigned long long)SHARD_MAX_FRAME_RAW,
                           (unsigned long long)(SHARD_MAX_FRAME_RAW / rec));
    return 0;
}

/* The data set's shape against the reader's limits: at most
 * SHARD_MAX_SHARDS shards, SHARD_MAX_FRAMES frames in one. 0 or 2. */
static int gen_check_shape(const world_gen_opts *o, const shard_seen *so) {
    uint64_t rps = o->pack.records_per_shard, rpf = o->pack.records_per_frame;
    uint64_t shards = (o->episodes + rps - 1) / rps;
    uint64_t in_one = o->episodes < rps ? o->episodes : rps;
    char sr[96], fr[96];
    option_text(so, "--shard-records", rps, sr, sizeof sr);
    if (shards > SHARD_MAX_SHARDS)
        return usage_error("gen: --episodes %llu with %s: %llu shards, more than the %u a data "
                           "set may hold: at least --shard-records %llu",
                           (unsigned long long)o->episodes, sr, (unsigned long long)shards,
                           SHARD_MAX_SHARDS,
                           (unsigned long long)((o->episodes + SHARD_MAX_SHARDS - 1) / SHARD_MAX_SHARDS));
    if ((in_one + rpf - 1) / rpf > SHARD_MAX_FRAMES)
        return usage_error("gen: %s with %s: more than the %u frames a shard may hold",
                           sr, option_text(so, "--frame-records", o->pack.records_per_frame, fr, sizeof fr),
                           SHARD_MAX_FRAMES);
    return 0;
}

/* gen after its checks: the writer, stopped cleanly by SIGINT/SIGTERM/SIGHUP
 * (shard_interrupt_*: the staging directory removed, one line, then the
 * signal ends the process). A signal caught once the data set is complete
 * (while it was moved into place) is dropped: the summary, exit 0. 0 or 1
 * after one line. */
static int gen_run(const world *w, const world_gen_opts *o, int quiet) {
    world_gen_stats st;
    char err[SHARD_ERR_MAX];
    int rc = 0;
    shard_interrupt_catch();
    if (world_gen(w, o, &st, err, sizeof err)) {
        fprintf(stderr, PROG ": gen: %s\n", err);
        rc = 1;
    } else if (!quiet) {
        gen_summary(w, o, &st);
    }
    stdout_flush();
    shard_interrupt_release(rc == 0);
    return rc;
}

static int cmd_gen(int argc, char **argv) {
    world_args wa = {0};
    world_gen_opts o = {.steps = 32, .seed = 0};
    shard_seen so = {0};
    int quiet = 0;
    shard_pack_opts_defaults(&o.pack);
    o.pack.records_per_shard = 1024; /* ~1.4 MB of file at T = 32, 32x32 */
    o.pack.records_per_frame = 16;   /* a fine-grained shuffle for the training reader */
    int rc = gen_flags(argc, argv, &wa, &o, &quiet, &so);
    if (rc) return rc < 0 ? 0 : rc;
    world w;
    if ((rc = world_open(&wa, &w))) return rc;
    char err[SHARD_ERR_MAX];
    /* the cheap checks first: the space check may generate and compress a frame */
    if (!(rc = gen_check_record(&w, &o, &wa, &so)) && !(rc = gen_check_shape(&o, &so))) {
        int sp = world_gen_check_space(&w, &o, err, sizeof err);
        if (sp) fprintf(stderr, PROG ": gen: %s\n", err);
        rc = sp > 0 ? 2 : sp < 0 ? 1 : 0;
    }
    if (!rc) {
        o.progress = !quiet && isatty(STDERR_FILENO);
        rc = gen_run(&w, &o, quiet);
    }
    world_free(&w);
    return rc;
}

/* ---------------------------------------------------------------- render */
/* The strip's file format, from --out's extension (any case). */
typedef enum { STRIP_BAD = 0, STRIP_PGM, STRIP_PNG } strip_format;

static strip_format strip_format_of(const char *path) {
    const char *base = strrchr(path, '/'), *dot = strrchr(base ? base + 1 : path, '.');
    if (!dot) return STRIP_BAD;
    return !strcasecmp(dot, ".pgm") ? STRIP_PGM : !strcasecmp(dot, ".png") ? STRIP_PNG : STRIP_BAD;
}

/* Frames (steps, H, W) (channel 0) side by side, each pixel zoom x zoom:
 * one picture row at a time, never the zoomed image (1024 steps x 1024
 * pixels x zoom 16 is 16.8 M pixels a row, 2.7e11 in all). */
typedef struct {
    const uint8_t *frames;
    uint32_t steps, h, w, zoom;
    size_t frame_bytes;
} strip;

static uint32_t strip_width(const strip *s) { return s->steps * s->w * s->zoom; }
static uint32_t strip_height(const strip *s) { return s->h * s->zoom; }

static void strip_row(const strip *s, uint32_t y, uint8_t *row) {
    for (uint32_t t = 0; t < s->steps; t++) {
        const uint8_t *src = s->frames + t * s->frame_bytes + (size_t)(y / s->zoom) * s->w;
        for (uint32_t x = 0; x < s->w * s->zoom; x++) *row++ = src[x / s->zoom];
    }
}

/* The PGM (P5) into f row by row; a caught signal stops it between rows
 * (returned), else 0 (a write error is f's to say). */
static int strip_pgm(FILE *f, const strip *s, uint8_t *row) {
    fprintf(f, "P5\n%u %u\n255\n", strip_width(s), strip_height(s));
    for (uint32_t y = 0; y < strip_height(s) && !ferror(f); y++) {
        if (shard_interrupt_pending()) return shard_interrupt_pending();
        strip_row(s, y, row);
        fwrite(row, 1, strip_width(s), f);
    }
    return shard_interrupt_pending(); /* the last moment before the rename */
}

/* libpng's errors: the message kept (png_get_error_ptr: 256 bytes), then
 * back to strip_png's setjmp; its warnings are not ours to print. */
static void png_fail(png_structp png, png_const_charp msg) {
    snprintf(png_get_error_ptr(png), 256, "%s", msg);
    png_longjmp(png, 1);
}
static void png_quiet(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* The 8-bit grey PNG into f row by row, as strip_pgm; -1 after libpng
 * failed, its message in why (256 bytes). */
static int strip_png(FILE *f, const strip *s, uint8_t *row, char *why) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, why, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int sig = 0;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return snprintf(why, 256, "out of memory (libpng)"), -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    /* libpng refuses rows past 1,000,000 pixels by default: a long strip has 16.8 M */
    png_set_user_limits(png, strip_width(s), strip_height(s));
    png_set_IHDR(png, info, strip_width(s), strip_height(s), 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < strip_height(s) && !sig; y++) {
        if ((sig = shard_interrupt_pending())) break;
        strip_row(s, y, row);
        png_write_row(png, row);
    }
    if (!sig) png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return sig ? sig : shard_interrupt_pending(); /* the last moment before the rename */
}

/* The strip at path (its format by the extension, checked before) via
 * path.tmp-PID renamed into place, its directory made as mkdir -p. Stopped
 * (a caught signal, shard_interrupt_catch) or failed, the temporary file
 * and the directories this call made are removed and one line says so. 0
 * or 1. Not shard_tmp_commit: nothing slow (an fsync) comes between the
 * signal check that ends the writing and the rename, and a strip is a
 * picture to look at, drawn again at will. */
static int write_strip(const char *path, const strip *s) {
    char tmp[4096], dir[4096], err[512], why[256] = "", suffix[32];
    size_t made = 0;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = 0;
    else dir[0] = 0;
    if (dir[0] && shard_make_dirs_noting(dir, &made, err, sizeof err))
        return fprintf(stderr, PROG ": render: %s: %s\n", path, err), 1;
    snprintf(suffix, sizeof suffix, ".tmp-%ld", (long)getpid());
    shard_sibling_path(tmp, sizeof tmp, dir[0] ? dir : slash ? "" : ".", "", slash ? slash + 1 : path, suffix);
    FILE *f = fopen(tmp, "wb");
    uint8_t *row = f ? malloc(strip_width(s)) : NULL;
    int sig = 0, saved = errno;
    if (row) {
        errno = 0;
        sig = strip_format_of(path) == STRIP_PNG ? strip_png(f, s, row, why) : strip_pgm(f, s, row);
        saved = errno;
    }
    int bad = !row || sig < 0 || ferror(f);
    if (f && fclose(f) && !bad) bad = 1, saved = errno;
    if (!bad && !sig && rename(tmp, path)) bad = 1, saved = errno;
    free(row);
    if (!bad && !sig) return 0;
    if (sig > 0) fprintf(stderr, PROG ": render: %s: interrupted by %s: nothing written\n", path,
                         shard_interrupt_name(sig));
    else if (!f) fprintf(stderr, PROG ": render: %s: %s\n", tmp, strerror(saved));
    else if (!row) fprintf(stderr, PROG ": render: %s: out of memory for a row of %u pixels\n", path,
                           strip_width(s));
    else fprintf(stderr, PROG ": render: %s: %s%s%s\n", path, why, why[0] && saved ? ": " : "",
                 saved || !why[0] ? strerror(saved ? saved : EIO) : "");
    unlink(tmp);
    shard_unmake_dirs(dir, made);
    return 1;
}

/* render after its flags: the episode's frames, then the strip, with
 * SIGINT/SIGTERM/SIGHUP caught throughout (shard_interrupt_*): a signal
 * leaves nothing (see write_strip), then ends the process as it says; one
 * caught after the rename is dropped. 0 or 1. */
static int render_run(const world *w, const char *out, uint64_t episode, uint64_t steps,
                      uint64_t seed, uint64_t zoom) {
    size_t fb = world_frame_bytes(w);
    double *states = malloc(steps * w->state_dim * sizeof *states);
    double *actions = malloc(steps * w->action_dim * sizeof *actions);
    uint8_t *frames = malloc(steps * fb);
    int rc = 1;
    shard_interrupt_catch();
    if (!states || !actions || !frames) {
        fprintf(stderr, PROG ": render: out of memory\n");
    } else {
        w->ops->explore(w, seed, episode, (uint32_t)steps, states, actions);
        for (uint64_t t = 0; t < steps && !shard_interrupt_pending(); t++)
            w->ops->render(w, states + t * w->state_dim, frames + t * fb);
        strip st = {frames, (uint32_t)steps, w->height, w->width, (uint32_t)zoom, fb};
        rc = write_strip(out, &st);
    }
    free(states);
    free(actions);
    free(frames);
    shard_interrupt_release(rc == 0);
    return rc;
}

static int cmd_render(int argc, char **argv) {
    world_args wa = {0};
    const char *out = NULL;
    uint64_t episode = 0, steps = 32, seed = 0, zoom = 4;
    shard_seen so = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = world_arg(&wa, argc, argv, &i);
        if (r == 2) return 2;
        if (r) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(usage_text, stdout), 0;
        if (strcmp(a, "--out") && strcmp(a, "--episode") && strcmp(a, "--steps") &&
            strcmp(a, "--seed") && strcmp(a, "--zoom"))
            return usage_error("render: unknown argument '%s'", a);
        if (i + 1 >= argc) return usage_error("render: %s needs a value", a);
        const char *val = argv[++i];
        if (option_once(&so, "render", a, val)) return 2;
        if (!strcmp(a, "--out")) {
            out = val;
            continue;
        }
        uint64_t *dst = !strcmp(a, "--episode") ? &episode : !strcmp(a, "--steps") ? &steps
                        : !strcmp(a, "--seed")  ? &seed : &zoom;
        uint64_t lo = dst == &steps || dst == &zoom ? 1 : 0;
        uint64_t hi = dst == &steps ? 1024 : dst == &zoom ? 16 : UINT64_MAX;
        if (parse_u64(a, val, lo, hi, dst)) return 2;
    }
    if (!out) return usage_error("render: missing --out FILE.pgm or FILE.png");
    if (!strip_format_of(out)) /* before the world is made or anything written */
        return usage_error("render: --out %s: not a .pgm or .png file name (the format follows the extension)",
                           out);
    char place[4096], err[SHARD_ERR_MAX]; /* where a symbolic link --out points: written there */
    if (shard_out_place(out, 0, place, sizeof place, err, sizeof err))
        return fprintf(stderr, PROG ": render: %s\n", err), 1;
    char parent[4096]; /* its directory is made as mkdir -p: checked before drawing */
    snprintf(parent, sizeof parent, "%s", place);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = 0;
    else if (slash) *slash = 0;
    if (slash && shard_dir_makeable(parent, err, sizeof err))
        return fprintf(stderr, PROG ": render: %s: %s\n", out, err), 1;
    world w;
    int rc = world_open(&wa, &w);
    if (rc) return rc;
    rc = render_run(&w, place, episode, steps, seed, zoom);
    world_free(&w);
    return rc;
}

/* ------------------------------------------------------------------ info */
static int cmd_info(int argc, char **argv) {
    world_args wa = {0};
    for (int i = 2; i < argc; i++) {
        int r = world_arg(&wa, argc, argv, &i);
        if (r == 2) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(usage_text, stdout), 0;
        return usage_error("info: unknown argument '%s'", argv[i]);
    }
    world w;
    int rc = world_open(&wa, &w);
    if (rc) return rc;
    printf("world        %s: %s\n", w.ops->name, w.ops->summary);
    printf("observation  (%u, %u, %u) u8 (channels, height, width)\n", w.channels, w.height,
           w.width);
    printf("action       %u f32    state  %u f32    regions  %u\n", w.action_dim, w.state_dim,
           w.nregions);
    printf("step work    %u substeps a full-length step (what a planner's search costs)\n", w.step_work);
    printf("parameters   (--set NAME=VALUE)\n");
    world_params_print(w.ops, w.params, stdout);
    world_free(&w);
    return 0;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) return usage_error("missing COMMAND (gen, render or info)");
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help"))
        return fputs(usage_text, stdout), 0;
    if (!strcmp(c, "gen")) return cmd_gen(argc, argv);
    if (!strcmp(c, "render")) return cmd_render(argc, argv);
    if (!strcmp(c, "info")) return cmd_info(argc, argv);
    return usage_error("unknown command '%s' (gen, render or info)", c);
}

int main(int argc, char **argv) { return stdout_close(PROG, dispatch(argc, argv)); }
