/* imagedir.c - the packer's directory of images (*.png, *.pgm, *.ppm) as a
 * stream (shard_image_src): flat (DIR/IMAGE, labels from a "NAME LABEL"
 * file or none) or torchvision's ImageFolder layout (DIR/CLASS/IMAGE, label
 * = index of CLASS among the class folders in byte order, the names kept for
 * the manifest). Files are read in byte order of their names, all must share
 * one size and channel count (nothing is resized). The names, the labels and
 * the first image are read at open; the other images one at a time as the
 * packer asks, so it holds one chunk of images, never the set. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "shard_internal.h"

/* ------------------------------------------------------------------- PNM */
/* A binary PGM/PPM in b (n bytes): header fields then pixels into *out (C,
 * H, W), maxval scaled to 255. 0 or -1 + err. */
static int pnm_decode(const uint8_t *b, size_t n, const char *path, shard_pic *out, char *err,
                      size_t errlen) {
    if (n < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) {
        shard_err(err, errlen, "%s: offset 0: not a binary PGM (P5) or PPM (P6) file", path);
        return -1;
    }
    uint32_t v[3];
    size_t i = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and # comments */
            while (i < n && isspace(b[i])) i++;
            if (i < n && b[i] == '#') {
                while (i < n && b[i] != '\n') i++;
            } else {
                break;
            }
        }
        uint64_t x = 0;
        size_t start = i;
        while (i < n && b[i] >= '0' && b[i] <= '9' && x <= 1u << 20) x = x * 10 + (b[i++] - '0');
        if (i == start || x == 0 || x > (k == 2 ? 65535 : SHARD_MAX_SIDE)) {
            shard_err(err, errlen, "%s: offset %zu: bad %s in the header", path, start,
                      k == 0 ? "width" : k == 1 ? "height" : "maxval");
            return -1;
        }
        v[k] = (uint32_t)x;
    }
    if (i >= n || !isspace(b[i])) {
        shard_err(err, errlen, "%s: offset %zu: header must end with one whitespace", path, i);
        return -1;
    }
    i++;
    if (v[2] > 255) {
        shard_err(err, errlen, "%s: maxval %u: 16-bit images are not supported", path, v[2]);
        return -1;
    }
    uint32_t c = b[1] == '6' ? 3 : 1;
    size_t plane = (size_t)v[0] * v[1], need = plane * c;
    if (n - i != need) {
        shard_err(err, errlen, "%s: offset %zu: %zu pixel bytes, expected %zu for %ux%ux%u", path,
                  i, n - i, need, v[1], v[0], c);
        return -1;
    }
    *out = (shard_pic){.height = v[1], .width = v[0], .channels = c};
    out->pixels = shard_xmalloc(need);
    /* interleaved (H, W, C) to planar (C, H, W); maxval scaled to 255 */
    for (size_t p = 0; p < plane; p++)
        for (uint32_t ch = 0; ch < c; ch++) {
            unsigned x = b[i + p * c + ch];
            if (x > v[2]) x = v[2];
            out->pixels[ch * plane + p] =
                (uint8_t)(v[2] == 255 ? x : (x * 255 + v[2] / 2) / v[2]);
        }
    return 0;
}

/* A PGM/PPM of size bytes from f (an image of at most the record limit plus
 * a header). */
static int pnm_read(FILE *f, uint64_t size, const char *path, shard_pic *out, char *err,
                    size_t errlen) {
    if (size > SHARD_MAX_RECORD_BYTES + 4096) {
        shard_err(err, errlen, "%s: %llu bytes: larger than any image pack takes", path,
                  (unsigned long long)size);
        return -1;
    }
    uint8_t *buf = shard_xmalloc(size ? (size_t)size : 1);
    int rc = -1;
    if (fread(buf, 1, (size_t)size, f) != size)
        shard_err(err, errlen, "%s: read error: %s", path, ferror(f) ? strerror(errno) : "short");
    else
        rc = pnm_decode(buf, (size_t)size, path, out, err, errlen);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ file names */
typedef enum { EXT_OTHER, EXT_PNG, EXT_PNM, EXT_UNREAD } ext_kind;

/* By the name's extension (any case): what pack reads, what torchvision's
 * ImageFolder would read that pack does not (refused, never skipped: a
 * data set silently short of its JPEGs is worse than a refusal), or other
 * files (skipped, as ImageFolder does). */
static ext_kind ext_of(const char *name) {
    static const char *const unread[] = {".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strchr(dot, '/')) return EXT_OTHER;
    if (!strcasecmp(dot, ".png")) return EXT_PNG;
    if (!strcasecmp(dot, ".pgm") || !strcasecmp(dot, ".ppm")) return EXT_PNM;
    for (size_t i = 0; i < sizeof unread / sizeof *unread; i++)
        if (!strcasecmp(dot, unread[i])) return EXT_UNREAD;
    return EXT_OTHER;
}

typedef struct {
    char **names; /* (n) "IMAGE" or "CLASS/IMAGE", malloc'd */
    size_t n, cap;
} name_list;

static void list_add(name_list *l, const char *sub, const char *name) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        char **nn = realloc(l->names, l->cap * sizeof *nn);
        SHARD_ASSERT(nn);
        l->names = nn;
    }
    size_t sl = sub ? strlen(sub) + 1 : 0, nl = strlen(name);
    char *s = shard_xmalloc(sl + nl + 1);
    if (sub) {
        memcpy(s, sub, sl - 1);
        s[sl - 1] = '/';
    }
    memcpy(s + sl, name, nl + 1);
    l->names[l->n++] = s;
}

static void list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode); /* follows links, as ImageFolder */
}

/* dir/sub (sub may be NULL): its PNG, PGM and PPM files into l, sorted; a JPEG
 * (etc.) refused. Sub-directories are counted in *subdirs, or refused when
 * subdirs is NULL (inside a class folder: not read). 0 or -1 + err. */
static int list_images(name_list *l, const char *dir, const char *sub, size_t *subdirs,
                       char *err, size_t errlen) {
    char path[4096];
    if (sub) snprintf(path, sizeof path, "%s/%s", dir, sub);
    else snprintf(path, sizeof path, "%s", dir);
    DIR *d = opendir(path);
    if (!d) {
        shard_err(err, errlen, "%s: cannot open directory: %s", path, strerror(errno));
        return -1;
    }
    size_t first = l->n;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *nm = e->d_name;
        ext_kind k = ext_of(nm);
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", path, nm);
        if (k == EXT_PNG || k == EXT_PNM) {
            list_add(l, sub, nm);
        } else if (k == EXT_UNREAD) {
            shard_err(err, errlen, "%s: pack reads PNG, PGM and PPM only: convert it, or move it "
                      "out of %s", full, path);
            rc = -1;
        } else if (strcmp(nm, ".") && strcmp(nm, "..") && is_dir(full)) {
            if (subdirs) {
                (*subdirs)++;
            } else {
                shard_err(err, errlen, "%s: a directory inside a class folder (pack reads "
                          "DIR/CLASS/IMAGE only): move its images up or out", full);
                rc = -1;
            }
        }
    }
    closedir(d);
    if (!rc && l->n > first) qsort(l->names + first, l->n - first, sizeof *l->names, cmp_str);
    return rc;
}

/* The class folders of dir (every sub-directory, hidden ones too, as
 * ImageFolder), sorted in byte order, into *out (caller frees). An image
 * beside them is refused (it would belong to no class). 0 or -1 + err. */
static int list_classes(const char *dir, name_list *out, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        shard_err(err, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *nm = e->d_name, *why;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        if (is_dir(full)) {
            if ((why = shard_class_name_check(nm, strlen(nm)))) {
                shard_err(err, errlen, "%s: class name %s", full, why);
                rc = -1;
            }
            list_add(out, NULL, nm);
        } else if (ext_of(nm) != EXT_OTHER) {
            shard_err(err, errlen, "%s: an image outside the class folders (--class-dirs reads "
                      "DIR/CLASS/IMAGE)", full);
            rc = -1;
        }
    }
    closedir(d);
    if (rc) return -1;
    if (out->n == 0) {
        shard_err(err, errlen, "%s: no class folders (--class-dirs reads DIR/CLASS/IMAGE)", dir);
        return -1;
    }
    if (out->n > 256) {
        shard_err(err, errlen, "%s: %zu class folders, at most 256 (labels are one byte)", dir,
                  out->n);
        return -1;
    }
    qsort(out->names, out->n, sizeof *out->names, cmp_str);
    return 0;
}

/* ImageFolder: every class's images into l, their labels into *labels
 * (malloc'd, (l->n)); the class names moved into im. */
static int list_class_dirs(shard_images *im, name_list *l, uint8_t **labels, const char *dir,
                           char *err, size_t errlen) {
    name_list cls = {0};
    if (list_classes(dir, &cls, err, errlen)) {
        list_free(&cls);
        return -1;
    }
    size_t cap = 0;
    for (size_t c = 0; c < cls.n; c++) {
        size_t first = l->n;
        if (list_images(l, dir, cls.names[c], NULL, err, errlen)) break;
        if (l->n == first) {
            shard_err(err, errlen, "%s/%s: an empty class folder (no *.png, *.pgm or *.ppm): "
                      "label %zu would have no image", dir, cls.names[c], c);
            break;
        }
        if (l->n > cap) {
            cap = l->cap;
            uint8_t *nl = realloc(*labels, cap);
            SHARD_ASSERT(nl);
            *labels = nl;
        }
        memset(*labels + first, (int)c, l->n - first);
        if (c + 1 == cls.n) { /* all there: the names go to the data set */
            im->nclasses = (uint32_t)cls.n;
            im->class_names = cls.names;
            return 0;
        }
    }
    list_free(&cls);
    return -1;
}

/* ---------------------------------------------------------------- labels */
/* 1 when line[0, end) (right-trimmed) is NAME, whitespace, LABEL (digits
 * only): NAME (trimmed, inner spaces and '#' kept) into name, LABEL into
 * *lab (capped at 256: out of range). 0 otherwise. */
static int label_split(const char *line, size_t end, char *name, size_t nlen, unsigned *lab) {
    while (end > 0 && isspace((unsigned char)line[end - 1])) end--;
    size_t d = end;
    while (d > 0 && isdigit((unsigned char)line[d - 1])) d--;
    if (d == end || d == 0 || !isspace((unsigned char)line[d - 1])) return 0;
    size_t ne = d, ns = 0;
    while (ne > 0 && isspace((unsigned char)line[ne - 1])) ne--;
    while (ns < ne && isspace((unsigned char)line[ns])) ns++;
    if (ns == ne || ne - ns >= nlen) return 0;
    memcpy(name, line + ns, ne - ns);
    name[ne - ns] = 0;
    *lab = 0;
    for (size_t i = d; i < end && *lab <= 255; i++) *lab = *lab * 10 + (unsigned)(line[i] - '0');
    return 1;
}

/* One line of a labels file: 0 blank or a comment (first non-blank '#'),
 * 1 with name and *lab, -1 when it is neither. LABEL is the last word
 * before an optional comment (a '#' after whitespace), NAME the rest, so a
 * NAME may hold spaces and '#' (my cat.png, dog#2.png). Where a '#' could
 * start a comment or belong to NAME, the reading that names an image (in
 * names, sorted: n) wins: comment cuts first, left to right, then the
 * whole line; when none does, the first that parses (its NAME then reported). */
static int label_line(const char *line, char **names, uint64_t n, char *name, size_t nlen, unsigned *lab) {
    size_t len = strcspn(line, "\r\n"), i = 0;
    while (i < len && isspace((unsigned char)line[i])) i++;
    if (i == len || line[i] == '#') return 0;
    char cand[1024];
    unsigned cl;
    int found = 0;
    for (size_t c = i + 1; c <= len; c++) {
        if (c < len && !(line[c] == '#' && isspace((unsigned char)line[c - 1]))) continue;
        if (!label_split(line, c, cand, sizeof cand, &cl) || strlen(cand) >= nlen) continue;
        char *key = cand;
        int hit = bsearch(&key, names, (size_t)n, sizeof *names, cmp_str) != NULL;
        if (hit || !found) {
            memcpy(name, cand, strlen(cand) + 1);
            *lab = cl;
            found = 1;
        }
        if (hit) return 1;
    }
    return found ? 1 : -1;
}

static int read_labels_file(shard_images *out, char **names, const char *dir,
                            const char *labels_path, char *err, size_t errlen) {
    FILE *f = shard_fopen_regular(labels_path, NULL, err, errlen);
    if (!f) { /* a device or FIFO keeps the helper's line; else the file's role is said */
        if (errno != EINVAL)
            shard_err(err, errlen, "%s: cannot open the labels file: %s", labels_path, strerror(errno));
        return -1;
    }
    out->labels = shard_xmalloc((size_t)out->n);
    uint8_t *have = shard_xcalloc((size_t)out->n, 1);
    char line[4096];
    int rc = -1;
    errno = 0;
    for (long ln = 1; fgets(line, sizeof line, f); ln++) {
        char name[1024];
        unsigned lab;
        int k = label_line(line, names, out->n, name, sizeof name, &lab);
        if (k == 0) continue; /* blank, or a comment */
        if (k < 0 || lab > 255) {
            shard_err(err, errlen, "%s:%ld: expected 'NAME LABEL' with LABEL in 0..255 (the "
                      "line's last word; NAME the rest)", labels_path, ln);
            goto out;
        }
        char *key = name, **hit = bsearch(&key, names, (size_t)out->n, sizeof *names, cmp_str);
        if (!hit) {
            shard_err(err, errlen, "%s:%ld: no image '%s' in %s", labels_path, ln, name, dir);
            goto out;
        }
        size_t idx = (size_t)(hit - names);
        if (have[idx]) {
            shard_err(err, errlen, "%s:%ld: '%s' labelled twice", labels_path, ln, name);
            goto out;
        }
        have[idx] = 1;
        out->labels[idx] = (uint8_t)lab;
    }
    if (ferror(f)) {
        shard_err(err, errlen, "%s: read error: %s", labels_path,
                  errno ? strerror(errno) : "unknown cause");
        goto out;
    }
    for (uint64_t i = 0; i < out->n; i++)
        if (!have[i]) {
            shard_err(err, errlen, "%s/%s: no label in %s", dir, names[i], labels_path);
            goto out;
        }
    shard_images_count_classes(out);
    rc = 0;
out:
    free(have);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- images */
/* One image file, decoded by its extension and converted to channels (0:
 * as it is). 0 or -1 + err. */
static int read_pic(const char *path, uint32_t channels, shard_pic *pic, char *err,
                    size_t errlen) {
    uint64_t size;
    FILE *f = shard_fopen_regular(path, &size, err, errlen);
    if (!f) return -1;
    int rc = ext_of(path) == EXT_PNG ? shard_png_decode(f, path, pic, err, errlen)
                                     : pnm_read(f, size, path, pic, err, errlen);
    fclose(f);
    if (!rc) shard_pic_convert(pic, channels);
    return rc;
}

/* dir/name into path (n bytes). 0 or -1 + "DIR/NAME: path too long". */
static int pic_path(char *path, size_t n, const char *dir, const char *name, char *err,
                    size_t errlen) {
    if ((size_t)snprintf(path, n, "%s/%s", dir, name) < n) return 0;
    shard_err(err, errlen, "%s/%s: path too long", dir, name);
    return -1;
}

/* A directory as a stream: the names listed at open, record 0 decoded then
 * (it sets the schema) and held until handed out, the others read one by
 * one as asked for. */
typedef struct {
    shard_image_src base;
    name_list l;
    char *dir;
    uint32_t channels;
    shard_pic first;   /* record 0 until next() hands it out */
    char first_path[4096];
} dir_src;

/* One image of the set: that it has record 0's size, in one line naming both. */
static int pic_matches(const dir_src *x, const char *path, const shard_pic *p, char *err,
                       size_t errlen) {
    const shard_schema *s = &x->base.info.schema;
    if (p->height == s->height && p->width == s->width && p->channels == s->channels) return 0;
    int only_c = p->height == s->height && p->width == s->width;
    shard_err(err, errlen, "%s: %ux%ux%u (height x width x channels), but %s is %ux%ux%u: all "
              "must match (pack does not resize%s)", path, p->height, p->width, p->channels,
              x->first_path, s->height, s->width, s->channels,
              only_c ? "; --channels 1 or 3 converts every image" : "");
    return -1;
}

static int dir_next(shard_image_src *s, uint8_t *pixels, uint64_t k, char *err, size_t errlen) {
    dir_src *x = (dir_src *)s;
    size_t rec = shard_schema_record_bytes(&s->info.schema);
    char path[4096];
    for (uint64_t i = 0; i < k; i++) {
        shard_pic p = {0};
        if (s->at + i == 0) {
            p = x->first;
            x->first.pixels = NULL;
        } else if (pic_path(path, sizeof path, x->dir, x->l.names[s->at + i], err, errlen) ||
                   read_pic(path, x->channels, &p, err, errlen)) {
            return -1;
        } else if (pic_matches(x, path, &p, err, errlen)) {
            free(p.pixels);
            return -1;
        }
        memcpy(pixels + i * rec, p.pixels, rec);
        free(p.pixels);
    }
    return 0;
}

static void dir_free(shard_image_src *s) {
    dir_src *x = (dir_src *)s;
    list_free(&x->l);
    free(x->dir);
    free(x->first.pixels);
    free(x);
}

static const shard_image_src_ops dir_ops = {dir_next, dir_free};

/* The source's names (and, ImageFolder, labels and class names) into x.
 * 0 or -1 + err. */
static int dir_list(dir_src *x, const char *dir, const shard_image_dir_opts *o, char *err,
                    size_t errlen) {
    uint8_t *labels = NULL;
    size_t subdirs = 0;
    if (o->class_dirs ? list_class_dirs(&x->base.info, &x->l, &labels, dir, err, errlen)
                      : list_images(&x->l, dir, NULL, &subdirs, err, errlen)) {
        free(labels);
        return -1;
    }
    x->base.info.labels = labels;
    if (x->l.n == 0) {
        shard_err(err, errlen, "%s: no *.png, *.pgm or *.ppm files%s", dir,
                  subdirs ? " (it has sub-directories: for DIR/CLASS/IMAGE add --class-dirs)"
                          : "");
        return -1;
    }
    x->base.info.n = x->l.n;
    return 0;
}

int shard_image_dir_open(shard_image_src **out, const char *dir, const shard_image_dir_opts *o,
                         char *err, size_t errlen) {
    *out = NULL;
    SHARD_ASSERT(!(o->labels_path && o->class_dirs) && (o->channels <= 1 || o->channels == 3));
    dir_src *x = shard_xcalloc(1, sizeof *x);
    x->base.ops = &dir_ops;
    x->dir = shard_xstrdup(dir);
    x->channels = o->channels;
    shard_images *im = &x->base.info;
    if (dir_list(x, dir, o, err, errlen) ||
        pic_path(x->first_path, sizeof x->first_path, dir, x->l.names[0], err, errlen) ||
        read_pic(x->first_path, o->channels, &x->first, err, errlen))
        goto fail;
    im->schema = (shard_schema){.height = x->first.height, .width = x->first.width,
                                .channels = x->first.channels, .dtype = SHARD_DTYPE_U8};
    if (o->labels_path && read_labels_file(im, x->l.names, dir, o->labels_path, err, errlen))
        goto fail;
    if (o->class_dirs) {
        im->schema.label = SHARD_LABEL_U8;
        im->schema.num_classes = im->nclasses;
    }
    *out = &x->base;
    return 0;
fail:
    shard_image_src_close(&x->base);
    return -1;
}

int shard_image_dir_read(shard_images *out, const char *dir, const shard_image_dir_opts *o,
                         char *err, size_t errlen) {
    shard_image_src *s;
    int rc = shard_image_dir_open(&s, dir, o, err, errlen);
    return shard_image_src_read_all(out, s, rc, err, errlen);
}

int shard_pnm_dir_read(shard_images *out, const char *dir, const char *labels_path,
                       char *err, size_t errlen) {
    shard_image_dir_opts o = {.labels_path = labels_path};
    return shard_image_dir_read(out, dir, &o, err, errlen);
}
