/* manifest.c - the dataset's manifest.json: schema, split, shard list with
 * record counts, sizes and header CRCs. Written as JSON (readable by any
 * tool) and read with libyaml, whose parser accepts the JSON we write (JSON
 * is YAML's flow syntax); the reader is strict: every key known, present
 * once, of the right type and range; file names plain (no '/'), so a
 * manifest cannot point outside its directory. Each entry's records, byte
 * size and header CRC are checked against the shard file itself, and the
 * header CRC pins the whole file; since version 4 the manifest's own
 * numbers (pixel_stats, which nothing else pins) are covered by a CRC-32 of
 * its bytes, the last member, checked before the text is parsed. Version 5
 * adds the names of the labels ("classes", from class folders). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "shard_internal.h"

/* The writer's output: every byte goes through mput, which keeps the
 * running CRC-32 the trailer carries. */
typedef struct {
    FILE *f;
    uLong crc;
} mout;

static void mput(mout *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mput(mout *o, const char *fmt, ...) {
    char buf[1024]; /* a line, or one escaped class name (<= 2 * 255 bytes) */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    SHARD_ASSERT(n >= 0 && (size_t)n < sizeof buf);
    o->crc = crc32(o->crc, (const Bytef *)buf, (uInt)n);
    fwrite(buf, 1, (size_t)n, o->f);
}

/* {"fields": [{"name": "actions", "dtype": "f32", "shape": [15, 2]}, ...]} */
static void fields_write(const shard_schema *s, mout *o) {
    mput(o, "  \"schema\": {\"fields\": [\n");
    for (uint32_t i = 0; i < s->nfields; i++) {
        const shard_field *fd = &s->fields[i];
        mput(o, "    {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", fd->name,
             shard_dtype_name(fd->dtype));
        for (uint32_t d = 0; d < fd->ndim; d++) mput(o, "%s%u", d ? ", " : "", fd->shape[d]);
        mput(o, "]}%s\n", i + 1 < s->nfields ? "," : "");
    }
    mput(o, "  ]},\n");
}

/* "classes": ["airplane", "automobile", ...]: '"' and '\\' escaped, the
 * rest is printable UTF-8 (shard_class_name_check), valid in JSON as it is */
static void classes_write(const shard_manifest *m, mout *o) {
    mput(o, "  \"classes\": [");
    for (uint32_t i = 0; i < m->nclasses; i++) {
        char esc[2 * 255 + 1];
        size_t k = 0;
        for (const char *p = m->class_names[i]; *p && k + 2 < sizeof esc; p++) {
            if (*p == '"' || *p == '\\') esc[k++] = '\\';
            esc[k++] = *p;
        }
        esc[k] = 0;
        mput(o, "%s\"%s\"", i ? ", " : "", esc);
    }
    mput(o, "],\n");
}

int shard_manifest_write(const shard_manifest *m, FILE *f) {
    const shard_schema *s = &m->schema;
    SHARD_ASSERT(m->has_stats == !s->nfields); /* version 4: images always carry them */
    SHARD_ASSERT(!m->nclasses || (s->label == SHARD_LABEL_U8 && m->nclasses == s->num_classes));
    mout o = {f, crc32(0L, Z_NULL, 0)};
    /* without names version 4, so such datasets stay readable by the builds that read 4 */
    mput(&o, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"split\": \"%s\",\n",
         SHARD_MANIFEST_FORMAT,
         m->nclasses ? SHARD_MANIFEST_VERSION_CLASSES : SHARD_MANIFEST_VERSION_CRC, m->split);
    if (s->nfields)
        fields_write(s, &o);
    else
        mput(&o, "  \"schema\": {\"height\": %u, \"width\": %u, \"channels\": %u, "
             "\"dtype\": \"u8\", \"label\": \"%s\", \"num_classes\": %u},\n", s->height,
             s->width, s->channels, s->label == SHARD_LABEL_U8 ? "u8" : "none", s->num_classes);
    if (m->nclasses) classes_write(m, &o);
    if (m->has_stats)
        mput(&o, "  \"pixel_stats\": {\"count\": %llu, \"sum\": %llu, \"sum_sq\": %llu},\n",
             (unsigned long long)m->stats.count, (unsigned long long)m->stats.sum,
             (unsigned long long)m->stats.sum_sq);
    mput(&o, "  \"records\": %llu,\n  \"records_per_shard\": %u,\n  \"records_per_frame\": %u,\n"
         "  \"level\": %d,\n  \"shards\": [\n", (unsigned long long)m->records,
         m->records_per_shard, m->records_per_frame, m->level);
    for (uint32_t i = 0; i < m->nshards; i++) {
        const shard_manifest_entry *e = &m->shards[i];
        mput(&o, "    {\"file\": \"%s\", \"records\": %llu, \"bytes\": %llu, \"header_crc32\": %u}%s\n",
             e->file, (unsigned long long)e->records, (unsigned long long)e->bytes,
             e->header_crc, i + 1 < m->nshards ? "," : "");
    }
    mput(&o, "  ],\n  ");
    /* the trailer: SHARD_MANIFEST_CRC_TAIL bytes, not covered by the CRC */
    fprintf(f, "\"crc32\": \"%08lx\"\n}\n", (unsigned long)o.crc);
    return ferror(f) ? -1 : 0;
}

shard_manifest_crc_state shard_manifest_crc_check(const char *text, size_t len,
                                                  uint32_t *stored, uint32_t *computed) {
    static const char head[] = "\"crc32\": \"", tail[] = "\"\n}\n";
    enum { HEAD = sizeof head - 1, HEX = 8 };
    _Static_assert(HEAD + HEX + sizeof tail - 1 == SHARD_MANIFEST_CRC_TAIL, "trailer size");
    if (len < SHARD_MANIFEST_CRC_TAIL) return SHARD_MANIFEST_CRC_NONE;
    const char *t = text + len - SHARD_MANIFEST_CRC_TAIL;
    if (memcmp(t, head, HEAD) || memcmp(t + HEAD + HEX, tail, sizeof tail - 1))
        return SHARD_MANIFEST_CRC_NONE;
    uint32_t v = 0;
    for (int i = 0; i < HEX; i++) {
        char ch = t[HEAD + i];
        if (ch >= '0' && ch <= '9') v = v << 4 | (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v = v << 4 | (uint32_t)(ch - 'a' + 10);
        else return SHARD_MANIFEST_CRC_NONE; /* upper case too: one spelling per value */
    }
    uint32_t c = shard_crc32((const uint8_t *)text, len - SHARD_MANIFEST_CRC_TAIL);
    if (stored) *stored = v;
    if (computed) *computed = c;
    return c == v ? SHARD_MANIFEST_CRC_OK : SHARD_MANIFEST_CRC_BAD;
}

void shard_manifest_crc_error(char *err, size_t errlen, const char *name, uint32_t stored,
                              uint32_t computed, int hint) {
    /* NAME is DIR/manifest.json when it came from a dataset: name DIR for verify */
    size_t nl = strlen(name), ml = strlen(SHARD_MANIFEST);
    int in_dir = hint && nl > ml && name[nl - ml - 1] == '/' &&
                 !strcmp(name + nl - ml, SHARD_MANIFEST);
    shard_err(err, errlen, "%s: checksum mismatch (crc32 says %08x, its bytes give %08x): the "
              "manifest is damaged%s%.*s%s", name, stored, computed,
              in_dir ? " (jepa-shard verify " : "", in_dir ? (int)(nl - ml - 1) : 0, name,
              in_dir ? " says more)" : "");
}

void shard_manifest_free(shard_manifest *m) {
    if (!m) return;
    free(m->shards);
    for (uint32_t i = 0; m->class_names && i < m->nclasses; i++) free(m->class_names[i]);
    free(m->class_names);
    memset(m, 0, sizeof *m);
}

typedef struct {
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errlen;
    int crc_seen;     /* the text has a "crc32" key */
    uint32_t crc_key; /* its value */
} mctx;

static int bad_at(mctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad_at(mctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...) {
    char msg[SHARD_ERR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shard_err(c->err, c->errlen, "%s:%zu:%zu: %s: %s", c->name, n->start_mark.line + 1,
              n->start_mark.column + 1, key, msg);
    return -1;
}

static int get_u64(mctx *c, const yaml_node_t *n, const char *key, uint64_t lo, uint64_t hi,
                   uint64_t *out) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return bad_at(c, n, key, "expected a number");
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    uint64_t v = 0;
    if (len == 0) return bad_at(c, n, key, "expected a number");
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return bad_at(c, n, key, "'%.*s' is not a whole number",
                                                    (int)(len > 40 ? 40 : len), s);
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return bad_at(c, n, key, "number too large");
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return bad_at(c, n, key, "%llu out of range [%llu, %llu]", (unsigned long long)v,
                      (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return 0;
}

static int get_str(mctx *c, const yaml_node_t *n, const char *key, char *out, size_t outlen) {
    if (n->type != YAML_SCALAR_NODE) return bad_at(c, n, key, "expected a string");
    size_t len = n->data.scalar.length;
    if (len == 0 || len >= outlen) return bad_at(c, n, key, "must be 1 to %zu characters",
                                                 outlen - 1);
    const char *s = (const char *)n->data.scalar.value;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!okc) return bad_at(c, n, key, "only letters, digits, '.', '_' and '-' allowed");
    }
    memcpy(out, s, len);
    out[len] = 0;
    return 0;
}

/* Iterates a mapping's pairs against a list of keys: each known, once; then
 * all present but those whose bit is set in `optional`. Calls fn(c,
 * index_of_key, value, user) for each; returns the bits of the keys seen
 * in *seen_out (may be NULL). */
typedef int (*pair_fn)(mctx *c, int k, const yaml_node_t *v, const char *key, void *user);
static int walk_map_opt(mctx *c, const yaml_node_t *n, const char *where, const char *const *keys,
                        int nkeys, unsigned optional, unsigned *seen_out, pair_fn fn, void *user) {
    if (n->type != YAML_MAPPING_NODE) return bad_at(c, n, where, "expected a mapping");
    unsigned seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return bad_at(c, k ? k : n, where, "keys must be strings");
        int idx = -1;
        for (int i = 0; i < nkeys; i++)
            if (strlen(keys[i]) == k->data.scalar.length &&
                !memcmp(keys[i], k->data.scalar.value, k->data.scalar.length))
                idx = i;
        if (idx < 0)
            return bad_at(c, k, where, "unknown key '%.*s'",
                          (int)(k->data.scalar.length > 40 ? 40 : k->data.scalar.length),
                          (const char *)k->data.scalar.value);
        if (seen & (1u << idx)) return bad_at(c, k, keys[idx], "given twice");
        seen |= 1u << idx;
        if (fn(c, idx, v, keys[idx], user)) return -1;
    }
    for (int i = 0; i < nkeys; i++)
        if (!(seen & (1u << i)) && !(optional & (1u << i)))
            return bad_at(c, n, where, "missing key '%s'", keys[i]);
    if (seen_out) *seen_out = seen;
    return 0;
}

static int walk_map(mctx *c, const yaml_node_t *n, const char *where, const char *const *keys,
                    int nkeys, pair_fn fn, void *user) {
    return walk_map_opt(c, n, where, keys, nkeys, 0, NULL, fn, user);
}

static const char *const stats_keys[] = {"count", "sum", "sum_sq"};
static int stats_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    shard_pixel_stats *st = user;
    return get_u64(c, v, key, 0, UINT64_MAX, k == 0 ? &st->count : k == 1 ? &st->sum : &st->sum_sq);
}

static const char *const schema_keys[] = {"height", "width", "channels", "dtype", "label",
                                          "num_classes"};
static int schema_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    shard_schema *s = user;
    uint64_t x;
    char str[16];
    switch (k) {
    case 0: case 1: case 2:
        if (get_u64(c, v, key, 1, k == 2 ? SHARD_MAX_CHANNELS : SHARD_MAX_SIDE, &x)) return -1;
        *(k == 0 ? &s->height : k == 1 ? &s->width : &s->channels) = (uint32_t)x;
        return 0;
    case 3:
        if (get_str(c, v, key, str, sizeof str)) return -1;
        if (strcmp(str, "u8")) return bad_at(c, v, key, "'%s' unknown (only u8)", str);
        s->dtype = SHARD_DTYPE_U8;
        return 0;
    case 4:
        if (get_str(c, v, key, str, sizeof str)) return -1;
        if (!strcmp(str, "u8")) s->label = SHARD_LABEL_U8;
        else if (!strcmp(str, "none")) s->label = SHARD_LABEL_NONE;
        else return bad_at(c, v, key, "'%s' unknown (u8 or none)", str);
        return 0;
    default:
        if (get_u64(c, v, key, 0, 256, &x)) return -1;
        s->num_classes = (uint32_t)x;
        return 0;
    }
}

/* 1 if mapping n has the key `key` (what kind of schema it is). */
static int has_key(mctx *c, const yaml_node_t *n, const char *key) {
    if (n->type != YAML_MAPPING_NODE) return 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
            !memcmp(key, k->data.scalar.value, k->data.scalar.length))
            return 1;
    }
    return 0;
}

static const char *const field_keys[] = {"name", "dtype", "shape"};
static int field_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    shard_field *f = user;
    char str[16];
    switch (k) {
    case 0: return get_str(c, v, key, f->name, sizeof f->name);
    case 1:
        if (get_str(c, v, key, str, sizeof str)) return -1;
        if (!strcmp(str, "u8")) f->dtype = SHARD_DTYPE_U8;
        else if (!strcmp(str, "f32")) f->dtype = SHARD_DTYPE_F32;
        else return bad_at(c, v, key, "'%s' unknown (u8 or f32)", str);
        return 0;
    default: {
        if (v->type != YAML_SEQUENCE_NODE) return bad_at(c, v, key, "expected a list");
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n > SHARD_MAX_DIMS)
            return bad_at(c, v, key, "%zu dims, at most %d", n, SHARD_MAX_DIMS);
        for (size_t d = 0; d < n; d++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[d]);
            uint64_t x;
            if (!item) return bad_at(c, v, key, "bad item %zu", d);
            if (get_u64(c, item, key, 1, UINT32_MAX, &x)) return -1;
            f->shape[d] = (uint32_t)x;
        }
        f->ndim = (uint32_t)n;
        return 0;
    }
    }
}

/* A record schema: {"fields": [field, ...]} with 1..SHARD_MAX_FIELDS fields. */
static const char *const fields_keys[] = {"fields"};
static int fields_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    (void)k;
    shard_schema *s = user;
    if (v->type != YAML_SEQUENCE_NODE) return bad_at(c, v, key, "expected a list");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < 1 || n > SHARD_MAX_FIELDS)
        return bad_at(c, v, key, "%zu fields, expected 1 to %d", n, SHARD_MAX_FIELDS);
    s->nfields = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (!item) return bad_at(c, v, key, "bad item %zu", i);
        char where[48];
        snprintf(where, sizeof where, "fields[%zu]", i);
        if (walk_map(c, item, where, field_keys, 3, field_pair, &s->fields[i])) return -1;
    }
    return 0;
}

static const char *const entry_keys[] = {"file", "records", "bytes", "header_crc32"};
static int entry_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    shard_manifest_entry *e = user;
    uint64_t x;
    switch (k) {
    case 0:
        if (get_str(c, v, key, e->file, sizeof e->file)) return -1;
        if (!strcmp(e->file, ".") || !strcmp(e->file, "..") ||
            !strcmp(e->file, SHARD_MANIFEST))
            return bad_at(c, v, key, "'%s' is not a shard file name", e->file);
        return 0;
    case 1: return get_u64(c, v, key, 1, (uint64_t)1 << 48, &e->records);
    case 2: return get_u64(c, v, key, SHARD_HEADER_BYTES, (uint64_t)1 << 56, &e->bytes);
    default:
        if (get_u64(c, v, key, 0, UINT32_MAX, &x)) return -1;
        e->header_crc = (uint32_t)x;
        return 0;
    }
}

/* One UTF-8 character at s (n > 0 bytes left): its code point, or -1 when
 * malformed (overlong, surrogate, past U+10FFFF, cut short); *len its bytes. */
static long utf8_next(const unsigned char *s, size_t n, size_t *len) {
    static const long min[4] = {0, 0x80, 0x800, 0x10000};
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
             : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!k || k > n) return -1;
    long cp = k == 1 ? s[0] : s[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min[k - 1] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *len = k;
    return cp;
}

const char *shard_class_name_check(const char *s, size_t len) {
    if (len == 0 || len > 255) return "must be 1 to 255 bytes";
    for (size_t i = 0, k; i < len; i += k) {
        long cp = utf8_next((const unsigned char *)s + i, len - i, &k);
        if (cp < 0) return "is not valid UTF-8 (the manifest is JSON)";
        /* YAML's printable set, less its line breaks (NEL, LS, PS) and BOM,
         * which libyaml would fold or drop: every name reads back as written */
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
            cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            return "holds a control or line-break character";
        if (cp == '/') return "holds '/'";
    }
    return NULL;
}

/* "classes": a list of 1..256 distinct names (shard_class_name_check);
 * that they are as many as the schema's classes is version_check's. */
static int classes_get(mctx *c, const yaml_node_t *v, const char *key, shard_manifest *m) {
    if (v->type != YAML_SEQUENCE_NODE) return bad_at(c, v, key, "expected a list");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < 1 || n > 256) return bad_at(c, v, key, "%zu names, expected 1 to 256", n);
    m->class_names = shard_xcalloc(n, sizeof *m->class_names);
    m->nclasses = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (!it || it->type != YAML_SCALAR_NODE)
            return bad_at(c, it ? it : v, key, "item %zu: expected a string", i);
        const char *s = (const char *)it->data.scalar.value, *why;
        size_t len = it->data.scalar.length;
        if ((why = shard_class_name_check(s, len)))
            return bad_at(c, it, key, "item %zu: a class name %s", i, why);
        m->class_names[i] = shard_xmalloc(len + 1);
        memcpy(m->class_names[i], s, len);
        m->class_names[i][len] = 0;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m->class_names[j], m->class_names[i]))
                return bad_at(c, it, key, "items %zu and %zu: the same name", j, i);
    }
    return 0;
}

static const char *const root_keys[] = {"format", "version", "split", "schema", "records",
                                        "records_per_shard", "records_per_frame", "level",
                                        "shards", "pixel_stats", "crc32", "classes"};
/* pixel_stats: image versions 3 to 5; crc32: 4 and 5; classes: 5 */
#define ROOT_OPTIONAL (1u << 9 | 1u << 10 | 1u << 11)
#define ROOT_KEYS 12
static int root_pair(mctx *c, int k, const yaml_node_t *v, const char *key, void *user) {
    shard_manifest *m = user;
    uint64_t x;
    char str[32];
    switch (k) {
    case 0:
        if (get_str(c, v, key, str, sizeof str)) return -1;
        if (strcmp(str, SHARD_MANIFEST_FORMAT))
            return bad_at(c, v, key, "'%s', expected '%s'", str, SHARD_MANIFEST_FORMAT);
        return 0;
    case 1:
        if (get_u64(c, v, key, 0, UINT32_MAX, &x)) return -1;
        if (x < SHARD_MANIFEST_VERSION_IMAGES || x > SHARD_MANIFEST_VERSION_CLASSES)
            return bad_at(c, v, key, "manifest version %llu not supported (this build reads "
                          "%d to %d)", (unsigned long long)x, SHARD_MANIFEST_VERSION_IMAGES,
                          SHARD_MANIFEST_VERSION_CLASSES);
        m->version = (uint32_t)x;
        return 0;
    case 2: return get_str(c, v, key, m->split, sizeof m->split);
    case 3:
        if (has_key(c, v, "fields"))
            return walk_map(c, v, key, fields_keys, 1, fields_pair, &m->schema);
        return walk_map(c, v, key, schema_keys, 6, schema_pair, &m->schema);
    case 4: return get_u64(c, v, key, 1, (uint64_t)1 << 62, &m->records);
    case 5: case 6:
        if (get_u64(c, v, key, 1, k == 5 ? (1u << 31) : (1u << 28), &x)) return -1;
        *(k == 5 ? &m->records_per_shard : &m->records_per_frame) = (uint32_t)x;
        return 0;
    case 7:
        if (get_u64(c, v, key, 1, 22, &x)) return -1;
        m->level = (int)x;
        return 0;
    case 9:
        m->has_stats = 1;
        return walk_map(c, v, key, stats_keys, 3, stats_pair, &m->stats);
    case 10: { /* its place and checksum are checked on the bytes: here only the spelling */
        int okv = v->type == YAML_SCALAR_NODE && v->data.scalar.style ==
                  YAML_DOUBLE_QUOTED_SCALAR_STYLE && v->data.scalar.length == 8;
        const char *s = okv ? (const char *)v->data.scalar.value : "";
        uint32_t h = 0;
        for (int i = 0; okv && i < 8; i++) {
            if (s[i] >= '0' && s[i] <= '9') h = h << 4 | (uint32_t)(s[i] - '0');
            else if (s[i] >= 'a' && s[i] <= 'f') h = h << 4 | (uint32_t)(s[i] - 'a' + 10);
            else okv = 0;
        }
        if (!okv) return bad_at(c, v, key, "expected 8 lower-case hex digits in double quotes");
        c->crc_seen = 1;
        c->crc_key = h;
        return 0;
    }
    case 11: return classes_get(c, v, key, m);
    default: {
        if (v->type != YAML_SEQUENCE_NODE) return bad_at(c, v, key, "expected a list");
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n < 1 || n > SHARD_MAX_SHARDS)
            return bad_at(c, v, key, "%zu shards, expected 1 to %u", n, SHARD_MAX_SHARDS);
        free(m->shards);
        m->shards = shard_xcalloc(n, sizeof *m->shards);
        m->nshards = (uint32_t)n;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
            if (!item) return bad_at(c, v, key, "bad item %zu", i);
            char where[48];
            snprintf(where, sizeof where, "shards[%zu]", i);
            if (walk_map(c, item, where, entry_keys, 4, entry_pair, &m->shards[i])) return -1;
        }
        return 0;
    }
    }
}

/* The sums must be those of some bytes: sum <= 255 count, sum_sq <= 255
 * sum (each x^2 <= 255 x), and sum^2 <= count sum_sq (Cauchy-Schwarz). A
 * hand edit that breaks one is caught here, count against the shards' records
 * by shard_dataset_open, and jepa-shard verify recomputes them all. */
static int stats_check(mctx *c, const yaml_node_t *root, const shard_manifest *m) {
    const shard_pixel_stats *st = &m->stats;
    if ((unsigned __int128)st->sum > (unsigned __int128)255 * st->count ||
        (unsigned __int128)st->sum_sq > (unsigned __int128)255 * st->sum ||
        (unsigned __int128)st->sum * st->sum > (unsigned __int128)st->count * st->sum_sq)
        return bad_at(c, root, "pixel_stats", "sum %llu and sum_sq %llu are impossible for %llu "
                      "bytes", (unsigned long long)st->sum, (unsigned long long)st->sum_sq,
                      (unsigned long long)st->count);
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What each version holds besides its schema kind: version 4 is 3 (images)
 * or 2 (fields) plus the crc32 member. The checksum itself was checked on
 * the bytes; here its presence must match the version. */
static int version_check(mctx *c, const yaml_node_t *root, const shard_manifest *m) {
    int images = m->schema.nfields == 0;
    int v4 = m->version >= SHARD_MANIFEST_VERSION_CRC; /* 4, or 5 with names: checksummed */
    if (m->version == SHARD_MANIFEST_VERSION_CLASSES &&
        (!m->nclasses || !images || m->schema.label != SHARD_LABEL_U8 ||
         m->nclasses != m->schema.num_classes))
        return bad_at(c, root, "classes", "%u names, but the schema has %u labelled classes%s",
                      m->nclasses, m->schema.label == SHARD_LABEL_U8 ? m->schema.num_classes : 0,
                      m->nclasses ? "" : " (version 5 names its classes)");
    if (m->version != SHARD_MANIFEST_VERSION_CLASSES && m->nclasses)
        return bad_at(c, root, "classes", "only manifest version 5 has them (this one is %u)",
                      m->version);
    if (!v4 &&
        (m->version == SHARD_MANIFEST_VERSION_FIELDS) != !images)
        return bad_at(c, root, "version", "%u, but the schema %s (version %d goes with %s)",
                      m->version, images ? "is an image schema" : "has fields",
                      images ? SHARD_MANIFEST_VERSION_IMAGES : SHARD_MANIFEST_VERSION_FIELDS,
                      images ? "images" : "fields");
    int want_stats = m->version == SHARD_MANIFEST_VERSION_STATS || (v4 && images);
    if (want_stats != m->has_stats)
        return bad_at(c, root, m->has_stats ? "pixel_stats" : "version",
                      m->has_stats ? "only image manifests of version 3 or 4 have them, or 5 (this "
                                     "one is version %u%s)"
                                   : "version %u needs pixel_stats%s",
                      m->version, images ? "" : " with fields");
    if (v4 && m->crc_state == SHARD_MANIFEST_CRC_NONE)
        return bad_at(c, root, "crc32", c->crc_seen
                      ? "must end the manifest, exactly '\"crc32\": \"<8 lower-case hex "
                        "digits>\"', a newline, '}' and a newline"
                      : "missing: version %u ends with its checksum, so the manifest is cut "
                        "short or damaged", m->version);
    if (!v4 && c->crc_seen)
        return bad_at(c, root, "crc32", "only manifest version 4 has it, or 5 (this one is %u)",
                      m->version);
    /* a trailer whose key is not the root's would not parse; be sure anyway */
    if (m->crc_state != SHARD_MANIFEST_CRC_NONE && (!c->crc_seen || c->crc_key != m->crc))
        return bad_at(c, root, "crc32", "not the manifest's last member");
    return 0;
}

int shard_manifest_parse_ex(shard_manifest *m, const char *text, size_t len, const char *name,
                            int lenient, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    /* the checksum first, on the bytes: nothing in them is used unchecked */
    m->crc_state = shard_manifest_crc_check(text, len, &m->crc, &m->crc_computed);
    if (m->crc_state == SHARD_MANIFEST_CRC_BAD && !lenient) {
        shard_manifest_crc_error(err, errlen, name, m->crc, m->crc_computed, 1);
        memset(m, 0, sizeof *m);
        return -1;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) {
        shard_err(err, errlen, "%s: out of memory in libyaml", name);
        memset(m, 0, sizeof *m);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        shard_err(err, errlen, "%s:%zu:%zu: syntax error: %s", name, p.problem_mark.line + 1,
                  p.problem_mark.column + 1, p.problem ? p.problem : "unknown");
        yaml_parser_delete(&p);
        memset(m, 0, sizeof *m);
        return -1;
    }
    mctx c = {&doc, name, err, errlen, 0, 0};
    int rc = -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        shard_err(err, errlen, "%s: empty manifest", name);
        goto out;
    }
    if (walk_map_opt(&c, root, "manifest", root_keys, ROOT_KEYS, ROOT_OPTIONAL, NULL, root_pair, m))
        goto out;
    if (version_check(&c, root, m)) goto out;
    char why[SHARD_ERR_MAX / 2];
    if (shard_schema_check(&m->schema, why, sizeof why)) {
        bad_at(&c, root, "schema", "%s", why);
        goto out;
    }
    if (m->has_stats && stats_check(&c, root, m)) goto out;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m->nshards; i++) sum += m->shards[i].records; /* each < 2^48 */
    if (sum != m->records) {
        bad_at(&c, root, "records", "%llu, but the shards hold %llu", (unsigned long long)m->records,
               (unsigned long long)sum);
        goto out;
    }
    /* two entries naming one file would read its records twice */
    const char **names = shard_xcalloc(m->nshards, sizeof *names);
    for (uint32_t i = 0; i < m->nshards; i++) names[i] = m->shards[i].file;
    qsort(names, m->nshards, sizeof *names, cmp_names);
    for (uint32_t i = 1; i < m->nshards; i++)
        if (!strcmp(names[i - 1], names[i])) {
            bad_at(&c, root, "shards", "file '%s' listed twice", names[i]);
            free(names);
            goto out;
        }
    free(names);
    rc = 0;
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (rc) shard_manifest_free(m);
    return rc;
}

int shard_manifest_parse(shard_manifest *m, const char *text, size_t len, const char *name,
                         char *err, size_t errlen) {
    return shard_manifest_parse_ex(m, text, len, name, 0, err, errlen);
}

char *shard_manifest_read(const char *path, size_t *len, char *err, size_t errlen) {
    *len = 0;
    FILE *f = shard_fopen_regular(path, NULL, err, errlen);
    if (!f) {
        if (errno == ENOENT)
            shard_err(err, errlen, "%s: cannot open: %s (not a dataset directory, or its packing did "
                      "not finish)", path, strerror(ENOENT));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = shard_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= SHARD_MAX_MANIFEST_BYTES) {
                shard_err(err, errlen, "%s: larger than %zu bytes: not a manifest", path,
                          SHARD_MAX_MANIFEST_BYTES);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            SHARD_ASSERT(nb);
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        shard_err(err, errlen, "%s: read error", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int shard_manifest_load(shard_manifest *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    size_t n;
    char *buf = shard_manifest_read(path, &n, err, errlen);
    if (!buf) return -1;
    int rc = shard_manifest_parse(m, buf, n, path, err, errlen);
    free(buf);
    return rc;
}
