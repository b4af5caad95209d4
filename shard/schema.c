/* schema.c - what a record is: image and record (field) schemas, their
 * checks and comparison, and how records sit inside a decoded frame. A frame
 * is stored column by column (v1: every record's pixels, then every label;
 * v2: field 0 of every record, then field 1, ...) because like bytes next to
 * like compress better; the API hands out whole records (fields
 * concatenated), so this file converts between the two. Also the finiteness
 * check of f32 values, shared by the writer and every reader. */
#include <string.h>

#include "shard_internal.h"

size_t shard_dtype_bytes(shard_dtype t) {
    return t == SHARD_DTYPE_U8 ? 1 : t == SHARD_DTYPE_F32 ? 4 : 0;
}

const char *shard_dtype_name(shard_dtype t) {
    return t == SHARD_DTYPE_U8 ? "u8" : t == SHARD_DTYPE_F32 ? "f32" : "?";
}

size_t shard_field_bytes(const shard_field *f) {
    size_t n = shard_dtype_bytes(f->dtype);
    for (uint32_t d = 0; d < f->ndim && d < SHARD_MAX_DIMS; d++) n *= f->shape[d];
    return n;
}

size_t shard_schema_field_offset(const shard_schema *s, int i) {
    SHARD_ASSERT(i >= 0 && (uint32_t)i < s->nfields && s->nfields <= SHARD_MAX_FIELDS);
    size_t off = 0;
    for (int k = 0; k < i; k++) off += shard_field_bytes(&s->fields[k]);
    return off;
}

int shard_schema_field_index(const shard_schema *s, const char *name) {
    for (uint32_t i = 0; i < s->nfields && i < SHARD_MAX_FIELDS; i++)
        if (!strncmp(s->fields[i].name, name, SHARD_FIELD_NAME_MAX)) return (int)i;
    return -1;
}

size_t shard_schema_record_bytes(const shard_schema *s) {
    if (s->nfields == 0) return (size_t)s->height * s->width * s->channels;
    size_t n = 0;
    for (uint32_t i = 0; i < s->nfields && i < SHARD_MAX_FIELDS; i++)
        n += shard_field_bytes(&s->fields[i]);
    return n;
}

size_t shard_label_bytes(const shard_schema *s) {
    return s->label == SHARD_LABEL_U8 ? 1 : 0;
}

static int image_schema_check(const shard_schema *s, char *err, size_t errlen) {
    if (s->height < 1 || s->height > SHARD_MAX_SIDE || s->width < 1 ||
        s->width > SHARD_MAX_SIDE) {
        shard_err(err, errlen, "image size %ux%u out of range [1, %u] per side", s->height,
                  s->width, SHARD_MAX_SIDE);
        return -1;
    }
    if (s->channels < 1 || s->channels > SHARD_MAX_CHANNELS) {
        shard_err(err, errlen, "channels %u out of range [1, %u]", s->channels,
                  SHARD_MAX_CHANNELS);
        return -1;
    }
    uint64_t rb = (uint64_t)s->height * s->width * s->channels;
    if (rb > SHARD_MAX_RECORD_BYTES) {
        shard_err(err, errlen, "record of %llu bytes exceeds the limit of %llu",
                  (unsigned long long)rb, (unsigned long long)SHARD_MAX_RECORD_BYTES);
        return -1;
    }
    if (s->dtype != SHARD_DTYPE_U8) {
        shard_err(err, errlen, "dtype %d unknown (only 1 = u8)", (int)s->dtype);
        return -1;
    }
    if (s->label == SHARD_LABEL_NONE) {
        if (s->num_classes != 0) {
            shard_err(err, errlen, "num_classes %u without labels (must be 0)", s->num_classes);
            return -1;
        }
    } else if (s->label == SHARD_LABEL_U8) {
        if (s->num_classes < 1 || s->num_classes > 256) {
            shard_err(err, errlen, "num_classes %u out of range [1, 256]", s->num_classes);
            return -1;
        }
    } else {
        shard_err(err, errlen, "label kind %d unknown (0 = none, 1 = u8 class)", (int)s->label);
        return -1;
    }
    return 0;
}

int shard_field_check(const shard_field *f, uint32_t i, uint64_t *bytes, char *err,
                       size_t errlen) {
    size_t len = strnlen(f->name, SHARD_FIELD_NAME_MAX);
    if (len == 0 || len == SHARD_FIELD_NAME_MAX) {
        shard_err(err, errlen, "field %u: name must be 1 to %d characters%s", i,
                  SHARD_FIELD_NAME_MAX - 1, len ? " (no NUL within the name bytes)" : "");
        return -1;
    }
    for (size_t k = 0; k < len; k++) /* the name is not printed: it could hold a newline */
        if (!shard_name_char_ok(f->name[k])) {
            shard_err(err, errlen, "field %u: name has byte 0x%02x at position %zu: only "
                      "letters, digits, '.', '_' and '-'", i, (unsigned char)f->name[k], k);
            return -1;
        }
    uint64_t n = shard_dtype_bytes(f->dtype);
    if (n == 0) {
        shard_err(err, errlen, "field %u ('%s'): dtype %d unknown (1 = u8, 2 = f32)", i,
                  f->name, (int)f->dtype);
        return -1;
    }
    if (f->ndim > SHARD_MAX_DIMS) {
        shard_err(err, errlen, "field %u ('%s'): ndim %u out of range [0, %d]", i, f->name,
                  f->ndim, SHARD_MAX_DIMS);
        return -1;
    }
    for (uint32_t d = 0; d < SHARD_MAX_DIMS; d++) {
        uint32_t v = f->shape[d];
        if (d < f->ndim && v < 1) {
            shard_err(err, errlen, "field %u ('%s'): shape[%u] is 0, dims must be >= 1", i,
                      f->name, d);
            return -1;
        }
        if (d >= f->ndim && v != 0) {
            shard_err(err, errlen, "field %u ('%s'): shape[%u] is %u beyond ndim %u (must be 0)",
                      i, f->name, d, v, f->ndim);
            return -1;
        }
        /* n <= 64 MiB and v < 2^32 before each step: the product fits 64 bits */
        if (d < f->ndim) n *= v;
        if (n > SHARD_MAX_RECORD_BYTES) {
            shard_err(err, errlen, "field %u ('%s'): more than %llu bytes", i, f->name,
                      (unsigned long long)SHARD_MAX_RECORD_BYTES);
            return -1;
        }
    }
    *bytes = n;
    return 0;
}

static int record_schema_check(const shard_schema *s, char *err, size_t errlen) {
    if (s->height || s->width || s->channels || s->dtype || s->label || s->num_classes) {
        shard_err(err, errlen, "a schema with fields must leave the image members 0 (height %u, "
                  "width %u, channels %u, dtype %d, label %d, num_classes %u)", s->height,
                  s->width, s->channels, (int)s->dtype, (int)s->label, s->num_classes);
        return -1;
    }
    if (s->nfields > SHARD_MAX_FIELDS) {
        shard_err(err, errlen, "%u fields, at most %d", s->nfields, SHARD_MAX_FIELDS);
        return -1;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nfields; i++) {
        uint64_t b;
        if (shard_field_check(&s->fields[i], i, &b, err, errlen)) return -1;
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(s->fields[k].name, s->fields[i].name)) {
                shard_err(err, errlen, "fields %u and %u are both named '%s'", k, i,
                          s->fields[i].name);
                return -1;
            }
        total += b;
        if (total > SHARD_MAX_RECORD_BYTES) {
            shard_err(err, errlen, "record of more than %llu bytes (fields 0..%u)",
                      (unsigned long long)SHARD_MAX_RECORD_BYTES, i);
            return -1;
        }
    }
    return 0;
}

int shard_schema_check(const shard_schema *s, char *err, size_t errlen) {
    return s->nfields == 0 ? image_schema_check(s, err, errlen)
                           : record_schema_check(s, err, errlen);
}

int shard_schema_same(const shard_schema *a, const shard_schema *b) {
    if (a->height != b->height || a->width != b->width || a->channels != b->channels ||
        a->dtype != b->dtype || a->label != b->label || a->num_classes != b->num_classes ||
        a->nfields != b->nfields || a->nfields > SHARD_MAX_FIELDS)
        return 0;
    for (uint32_t i = 0; i < a->nfields; i++) {
        const shard_field *x = &a->fields[i], *y = &b->fields[i];
        if (strncmp(x->name, y->name, SHARD_FIELD_NAME_MAX) || x->dtype != y->dtype ||
            x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof x->shape))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------- frame layout */
void shard_frame_pack(const shard_schema *s, const uint8_t *rows, const uint8_t *labels,
                      uint32_t n, uint8_t *raw) {
    size_t rec = shard_schema_record_bytes(s);
    if (s->nfields == 0) {
        memcpy(raw, rows, (size_t)n * rec);
        if (shard_label_bytes(s)) memcpy(raw + (size_t)n * rec, labels, n);
        return;
    }
    size_t off = 0; /* of the field inside a record */
    for (uint32_t f = 0; f < s->nfields; f++) {
        size_t fb = shard_field_bytes(&s->fields[f]);
        uint8_t *col = raw + (size_t)n * off;
        for (uint32_t k = 0; k < n; k++) memcpy(col + k * fb, rows + k * rec + off, fb);
        off += fb;
    }
}

void shard_frame_record(const shard_schema *s, const uint8_t *raw, uint32_t n, uint32_t k,
                        uint8_t *rec_out, uint8_t *label) {
    size_t rec = shard_schema_record_bytes(s);
    SHARD_ASSERT(k < n);
    if (s->nfields == 0) {
        memcpy(rec_out, raw + (size_t)k * rec, rec);
        if (label) *label = shard_label_bytes(s) ? raw[(size_t)n * rec + k] : 0;
        return;
    }
    size_t off = 0;
    for (uint32_t f = 0; f < s->nfields; f++) {
        size_t fb = shard_field_bytes(&s->fields[f]);
        memcpy(rec_out + off, raw + (size_t)n * off + k * fb, fb);
        off += fb;
    }
    if (label) *label = 0;
}

void shard_frame_unpack(const shard_schema *s, const uint8_t *raw, uint32_t n, uint8_t *rows,
                        uint8_t *labels) {
    size_t rec = shard_schema_record_bytes(s);
    if (s->nfields == 0) {
        memcpy(rows, raw, (size_t)n * rec);
        if (labels) {
            if (shard_label_bytes(s)) memcpy(labels, raw + (size_t)n * rec, n);
            else memset(labels, 0, n);
        }
        return;
    }
    for (uint32_t k = 0; k < n; k++) shard_frame_record(s, raw, n, k, rows + k * rec, NULL);
    if (labels) memset(labels, 0, n);
}

/* ------------------------------------------------------------ finite f32 */
/* An IEEE-754 binary32 is non-finite iff its 8 exponent bits are all ones. */
static int f32_bad(const uint8_t *p) { return (shard_get32(p) & 0x7f800000u) == 0x7f800000u; }

static const char *f32_kind(const uint8_t *p) {
    uint32_t u = shard_get32(p);
    if (u & 0x007fffffu) return "NaN";
    return u >> 31 ? "-Inf" : "Inf";
}

/* "element [3,1]" of field f for its flat index e (a scalar: "value"). */
static void elem_str(const shard_field *f, uint64_t e, char *buf, size_t n) {
    if (f->ndim == 0) {
        snprintf(buf, n, "value");
        return;
    }
    uint64_t idx[SHARD_MAX_DIMS];
    for (int d = (int)f->ndim - 1; d >= 0; d--) {
        idx[d] = e % f->shape[d];
        e /= f->shape[d];
    }
    size_t at = (size_t)snprintf(buf, n, "element [");
    for (uint32_t d = 0; d < f->ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%llu", d ? "," : "",
                               (unsigned long long)idx[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

/* Scans nrec consecutive values of f32 field f (nrec * its bytes at p). 0,
 * or -1 with *k the record and msg "field 'NAME' element [i,j] is NaN". */
static int field_scan(const shard_field *f, const uint8_t *p, uint32_t nrec, uint32_t *k,
                      char *msg, size_t msglen) {
    size_t per = shard_field_bytes(f) / 4;
    for (size_t i = 0; i < (size_t)nrec * per; i++)
        if (f32_bad(p + 4 * i)) {
            char where[96];
            elem_str(f, i % per, where, sizeof where);
            *k = (uint32_t)(i / per);
            shard_err(msg, msglen, "field '%s' %s is %s (f32 values must be finite)", f->name,
                      where, f32_kind(p + 4 * i));
            return -1;
        }
    return 0;
}

int shard_record_check_finite(const shard_schema *s, const uint8_t *rec, char *msg,
                              size_t msglen) {
    size_t off = 0;
    uint32_t k;
    for (uint32_t f = 0; f < s->nfields; f++) {
        const shard_field *fd = &s->fields[f];
        if (fd->dtype == SHARD_DTYPE_F32 && field_scan(fd, rec + off, 1, &k, msg, msglen))
            return -1;
        off += shard_field_bytes(fd);
    }
    return 0;
}

int shard_frame_check_finite(const shard_schema *s, const uint8_t *raw, uint32_t n,
                             uint32_t *k, char *msg, size_t msglen) {
    size_t off = 0;
    for (uint32_t f = 0; f < s->nfields; f++) {
        const shard_field *fd = &s->fields[f];
        if (fd->dtype == SHARD_DTYPE_F32 &&
            field_scan(fd, raw + (size_t)n * off, n, k, msg, msglen))
            return -1;
        off += shard_field_bytes(fd);
    }
    return 0;
}
