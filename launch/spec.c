/* spec.c - the run spec: one table of keys and everything derived from it.
 *
 * Each row of spec_keys names a dotted key, its type, the jepa_spec field it
 * lands in, its range and its default as text. Defaults, YAML loading, --set,
 * validation, the resolved YAML, spec_get, --help and the model hash all walk
 * that table, so adding a key is one row (plus the struct field). The
 * checks between keys, which no row can state, are in spec_cross.c. */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Stays on under NDEBUG: a table that contradicts itself is a build bug. */
#define SPEC_ASSERT(c)                                                                  \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "%s:%d: spec assertion failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#include "spec_internal.h"

#define NKEYS spec_nkeys
#define PATH_MAX_LEN 128 /* longer than any key, so a longer path is simply unknown */

/* ---- small helpers ---- */


/* Copies user text for an error message: control bytes become '?' and long
 * text is cut, so a hostile value cannot break the one-line error contract. */
const char *spec_show(const char *text, char *buf, size_t n) {
    size_t i = 0, max = n - 4;
    for (; text[i] && i < max; i++) buf[i] = ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) ? '?' : text[i];
    if (text[i]) memcpy(buf + i, "...", 3), i += 3;
    buf[i] = '\0';
    return buf;
}

static const spec_key *key_find(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(spec_keys[i].key, path) == 0) return &spec_keys[i];
    return NULL;
}

/* True when `path` is a section: some key continues it with ".rest". */
static int is_section(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (n && strncmp(spec_keys[i].key, path, n) == 0 && spec_keys[i].key[n] == '.') return 1;
    return 0;
}

static size_t levenshtein(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b), row[PATH_MAX_LEN + 1];
    if (nb > PATH_MAX_LEN) return (size_t)-1;
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[nb];
}

/* " (did you mean 'x'?)" or "". A unique key ending in ".path" wins (a key
 * written outside its section, e.g. "lr"); else the nearest key or section
 * within edit distance 3, unless that distance rewrites the whole path. */
static void key_suggest(const char *path, char *out, size_t n) {
    const char *hit = NULL, *best = NULL;
    size_t np = strlen(path), hits = 0, best_d = 4, best_len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = spec_keys[i].key;
        size_t nk = strlen(k);
        if (np && nk > np && k[nk - np - 1] == '.' && strcmp(k + nk - np, path) == 0) hit = k, hits++;
        /* candidates: the key itself and each of its sections */
        for (size_t len = 1; len <= nk; len++) {
            if (k[len] != '.' && k[len] != '\0') continue;
            char cand[PATH_MAX_LEN];
            snprintf(cand, sizeof cand, "%.*s", (int)len, k);
            size_t d = levenshtein(path, cand);
            if (d < best_d && d < np) best_d = d, best = k, best_len = len; /* not a full rewrite */
        }
    }
    if (hits == 1) snprintf(out, n, " (did you mean '%s'?)", hit);
    else if (best && best_d == 0) /* a section given a value: name one of its keys */
        snprintf(out, n, " ('%s' is a section, not a key: e.g. '%s')", path, best);
    else if (best) snprintf(out, n, " (did you mean '%.*s'?)", (int)best_len, best);
}

/* "in [1, 64]", "in (0, 10]" or ">= 0": reads after "must be". */
static void range_text(const spec_key *k, char *buf, size_t n) {
    int ints = k->type == SPEC_INT || k->type == SPEC_INT64;
    char lo[32], hi[32];
    if (ints) snprintf(lo, sizeof lo, "%lld", (long long)k->min);
    else snprintf(lo, sizeof lo, "%g", k->min);
    if (k->max >= NOMAX) {
        snprintf(buf, n, "%s %s", (k->flags & SPEC_LO_OPEN) ? ">" : ">=", lo);
        return;
    }
    if (ints) snprintf(hi, sizeof hi, "%lld", (long long)k->max);
    else snprintf(hi, sizeof hi, "%g", k->max);
    snprintf(buf, n, "in %c%s, %s%c", (k->flags & SPEC_LO_OPEN) ? '(' : '[', lo, hi,
             (k->flags & SPEC_HI_OPEN) ? ')' : ']');
}

static int in_range(const spec_key *k, double v) {
    if ((k->flags & SPEC_LO_OPEN) ? !(v > k->min) : !(v >= k->min)) return 0;
    return (k->flags & SPEC_HI_OPEN) ? v < k->max : v <= k->max;
}

/* Shortest %g text that reads back to exactly v, so the resolved spec is
 * both readable and an exact round trip. */
void spec_fmt_double(double v, char *buf, size_t n) {
    /* "10.0", not "1e+01"; still reads as a double. No libm: the build links none. */
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
        snprintf(buf, n, "%.1f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Strict base-10 integer: no blanks, fraction, exponent or trailing junk. */
static int parse_int(const char *t, long long *v) {
    char *end;
    if (!*t || (*t != '-' && *t != '+' && (*t < '0' || *t > '9'))) return -1;
    errno = 0;
    *v = strtoll(t, &end, 10);
    return (errno || *end) ? -1 : 0;
}

/* strtod is locale dependent; no code here calls setlocale, so '.' holds. */
static int parse_double(const char *t, double *v) {
    char *end;
    if (!*t || *t == ' ' || *t == '\t') return -1;
    errno = 0;
    *v = strtod(t, &end);
    return (errno || *end || !isfinite(*v)) ? -1 : 0;
}

static int parse_bool(const char *t, int *v) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(t, yes[i]) == 0) return *v = 1, 0;
        if (strcasecmp(t, no[i]) == 0) return *v = 0, 0;
    }
    return -1;
}

/* Strings must be valid UTF-8 so the resolved YAML can carry them. */
static int utf8_valid(const unsigned char *p) {
    while (*p) {
        unsigned c = *p, need = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (need == 9 || (need == 1 && c < 0xc2)) return 0;
        unsigned cp = c & (0x3f >> need);
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        p += need + 1;
    }
    return 1;
}

static void *field(const spec_key *k, jepa_spec *s) { return (char *)s + k->off; }
static const void *cfield(const spec_key *k, const jepa_spec *s) { return (const char *)s + k->off; }

static int64_t key_int(const spec_key *k, const jepa_spec *s) {
    if (k->type == SPEC_INT64) return *(const int64_t *)cfield(k, s);
    return *(const int *)cfield(k, s);
}

/* Parses `text` (len bytes, from YAML or --set) as key k and stores it in *s.
 * On error *s is untouched and msg holds the reason, without location. */
/* v is exactly one of the doubles 1e-12 ... 1e12 (the values strtod gives
 * for "1e-5", "0.00001", ...): the probe's grid is decades, and the spec
 * must hold the value it uses */
static int is_decade(double v) {
    char t[8];
    for (int e = -12; e <= 12; e++) {
        snprintf(t, sizeof t, "1e%d", e);
        if (v == strtod(t, NULL)) return 1;
    }
    return 0;
}

static int key_apply(const spec_key *k, jepa_spec *s, const char *text, size_t len, char *msg, size_t n) {
    char shown[80];
    long long iv;
    double dv;
    int bv;
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT64:
        if (parse_int(text, &iv)) return spec_fail(msg, n, "expected an integer, got '%s'", spec_show(text, shown, sizeof shown));
        if (!in_range(k, (double)iv)) {
            range_text(k, shown, sizeof shown);
            return spec_fail(msg, n, "must be %s, got %lld", shown, iv);
        }
        if (k->type == SPEC_INT) *(int *)field(k, s) = (int)iv;
        else *(int64_t *)field(k, s) = iv;
        return 0;
    case SPEC_DOUBLE:
        if (parse_double(text, &dv))
            return spec_fail(msg, n, "expected a finite number, got '%s'", spec_show(text, shown, sizeof shown));
        if (!in_range(k, dv)) {
            char r[64];
            range_text(k, r, sizeof r);
            return spec_fail(msg, n, "must be %s, got %s", r, spec_show(text, shown, sizeof shown));
        }
        if ((k->flags & SPEC_DECADE) && !is_decade(dv))
            return spec_fail(msg, n, "must be a power of ten (0.1, 0.01, ..., 1e-12), got %s",
                        spec_show(text, shown, sizeof shown));
        *(double *)field(k, s) = dv;
        return 0;
    case SPEC_BOOL:
        if (parse_bool(text, &bv))
            return spec_fail(msg, n, "expected a boolean (true/false, yes/no, on/off, 1/0), got '%s'",
                        spec_show(text, shown, sizeof shown));
        *(int *)field(k, s) = bv;
        return 0;
    case SPEC_STRING:
        if (strlen(text) != len) return spec_fail(msg, n, "contains a NUL byte");
        if (len >= k->size) return spec_fail(msg, n, "is %zu bytes long; at most %zu allowed", len, k->size - 1);
        if (len < (size_t)k->min) return spec_fail(msg, n, "must not be empty");
        if (!utf8_valid((const unsigned char *)text)) return spec_fail(msg, n, "is not valid UTF-8");
        strncpy(field(k, s), text, k->size); /* zero-fills the tail: memcmp-comparable */
        return 0;
    case SPEC_ENUM:
        for (const char *const *c = k->choices; *c; c++)
            if (strcmp(*c, text) == 0) return strncpy(field(k, s), text, k->size), 0;
        {
            char list[128] = "";
            for (const char *const *c = k->choices; *c; c++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", c == k->choices ? "" : ", ", *c);
            return spec_fail(msg, n, "must be one of %s, got '%s'", list, spec_show(text, shown, sizeof shown));
        }
    }
    return spec_fail(msg, n, "unknown key type");
}

/* Current value as plain text (strings raw, not quoted). */
static int key_format(const spec_key *k, const jepa_spec *s, char *out, size_t n) {
    int w = 0;
    switch (k->type) {
    case SPEC_INT:
    case SPEC_INT64: w = snprintf(out, n, "%lld", (long long)key_int(k, s)); break;
    case SPEC_DOUBLE: {
        char buf[40];
        spec_fmt_double(*(const double *)cfield(k, s), buf, sizeof buf);
        w = snprintf(out, n, "%s", buf);
        break;
    }
    case SPEC_BOOL: w = snprintf(out, n, "%s", *(const int *)cfield(k, s) ? "true" : "false"); break;
    case SPEC_STRING:
    case SPEC_ENUM: w = snprintf(out, n, "%.*s", (int)k->size, (const char *)cfield(k, s)); break;
    }
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

/* ---- public API ---- */

void spec_defaults(jepa_spec *s) {
    char msg[SPEC_ERR_MAX];
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < NKEYS; i++) {
        const spec_key *k = &spec_keys[i];
        /* key_apply narrows to int after the range check, so the range must fit */
        SPEC_ASSERT(k->type != SPEC_INT || (k->min >= INT_MIN && k->max <= INT_MAX));
        if (key_apply(k, s, k->def, strlen(k->def), msg, sizeof msg)) {
            fprintf(stderr, "spec table: default of %s: %s\n", k->key, msg);
            SPEC_ASSERT(0);
        }
    }
}

typedef struct {
    const char *name; /* file name for messages */
    const char *text; /* the raw input, to place reader errors */
    size_t len;
    yaml_document_t *doc;
    jepa_spec *s;
    int seen_line[SPEC_MAX_KEYS]; /* 1-based line where each key was set; 0: not yet */
    char *err;
    size_t errlen;
} loader;

static int load_fail(loader *L, yaml_mark_t m, const char *path, const char *fmt, ...) {
    char msg[SPEC_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (path && *path)
        return spec_fail(L->err, L->errlen, "%s:%zu:%zu: %s: %s", L->name, m.line + 1, m.column + 1, path, msg);
    return spec_fail(L->err, L->errlen, "%s:%zu:%zu: %s", L->name, m.line + 1, m.column + 1, msg);
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE ? "scalar" : n->type == YAML_SEQUENCE_NODE ? "sequence" : "mapping";
}

/* YAML's null: an empty, '~' or 'null' plain scalar (quoted "" is a string). */
static int is_null(const yaml_node_t *n) {
    const char *v = (const char *)n->data.scalar.value;
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*v || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0);
}

static int load_leaf(loader *L, const spec_key *k, const yaml_node_t *kn, const yaml_node_t *vn) {
    size_t i = (size_t)(k - spec_keys);
    char msg[SPEC_ERR_MAX];
    if (L->seen_line[i])
        return load_fail(L, kn->start_mark, k->key, "duplicate key (first at line %d)", L->seen_line[i]);
    L->seen_line[i] = (int)kn->start_mark.line + 1;
    if (vn->type != YAML_SCALAR_NODE)
        return load_fail(L, vn->start_mark, k->key, "expected a scalar value, got a %s", node_kind(vn));
    if (is_null(vn)) return load_fail(L, vn->start_mark, k->key, "missing value");
    if (key_apply(k, L->s, (const char *)vn->data.scalar.value, vn->data.scalar.length, msg, sizeof msg))
        return load_fail(L, vn->start_mark, k->key, "%s", msg);
    return 0;
}

/* Walks one mapping whose keys continue `prefix` ("" at top level). A key may
 * itself be dotted, so `optim.lr: 1` and `optim: {lr: 1}` meet at the same
 * table row; paths stay shorter than PATH_MAX_LEN, which also bounds the
 * recursion a self-referencing alias could cause. */
static int load_mapping(loader *L, const yaml_node_t *map, const char *prefix) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        char path[PATH_MAX_LEN], shown[PATH_MAX_LEN + 8], hint[PATH_MAX_LEN + 32];
        if (kn->type != YAML_SCALAR_NODE)
            return load_fail(L, kn->start_mark, prefix, "expected a scalar key, got a %s", node_kind(kn));
        const char *kt = (const char *)kn->data.scalar.value;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *qn = yaml_document_get_node(L->doc, q->key);
            if (qn->type == YAML_SCALAR_NODE && qn->data.scalar.length == kn->data.scalar.length &&
                memcmp(qn->data.scalar.value, kt, kn->data.scalar.length) == 0) {
                snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", kt);
                return load_fail(L, kn->start_mark, spec_show(path, shown, sizeof shown),
                                 "duplicate key (first at line %zu)", qn->start_mark.line + 1);
            }
        }
        int w = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", kt);
        int fits = w > 0 && (size_t)w < sizeof path && strlen(kt) == kn->data.scalar.length;
        const spec_key *k = fits ? key_find(path) : NULL;
        if (k) {
            if (load_leaf(L, k, kn, vn)) return -1;
        } else if (fits && is_section(path)) {
            if (is_null(vn)) continue; /* a section whose keys are all commented out */
            if (vn->type != YAML_MAPPING_NODE)
                return load_fail(L, vn->start_mark, path, "expected a mapping of %s.* keys, got a %s", path,
                                 node_kind(vn));
            if (load_mapping(L, vn, path)) return -1;
        } else {
            key_suggest(path, hint, sizeof hint);
            return load_fail(L, kn->start_mark, spec_show(path, shown, sizeof shown), "unknown key%s", hint);
        }
    }
    return 0;
}

/* libyaml's reader errors carry a byte offset, not a mark: derive one. */
static yaml_mark_t mark_at(const loader *L, size_t off) {
    yaml_mark_t m = {off, 0, 0};
    for (size_t i = 0; i < off && i < L->len; i++) {
        if (L->text[i] == '\n') m.line++, m.column = 0;
        else if (((unsigned char)L->text[i] & 0xc0) != 0x80) m.column++;
    }
    return m;
}

static int syntax_fail(loader *L, const yaml_parser_t *p) {
    if (p->error == YAML_MEMORY_ERROR) return spec_fail(L->err, L->errlen, "%s: out of memory parsing YAML", L->name);
    yaml_mark_t m = p->error == YAML_READER_ERROR ? mark_at(L, p->problem_offset) : p->problem_mark;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->context)
        return load_fail(L, m, NULL, "YAML syntax error: %s (%s started at line %zu)", problem, p->context,
                         p->context_mark.line + 1);
    return load_fail(L, m, NULL, "YAML syntax error: %s", problem);
}

/* Flow collections ([...], {...}) nested deeper than this are refused before
 * libyaml reads them: its time grows with the square of the depth (a 200 KB
 * file of 100,000 brackets took minutes). Block nesting is bounded by the
 * file size through its indentation. */
#define SPEC_MAX_FLOW_DEPTH 64

/* A linear scan for flow depth, outside quoted scalars and comments; 0 or -1 */
static int flow_depth_check(loader *L) {
    const char *t = L->text;
    int depth = 0;
    char q = 0; /* the quote of the quoted scalar we are in */
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < L->len; i++, m.column++) {
        char c = t[i], prev = i ? t[i - 1] : '\n';
        if (c == '\n') {
            m.line++;
            m.column = (size_t)-1;
        }
        if (q) {
            if (q == '"' && c == '\\') i++, m.column++; /* an escape: skip what it escapes */
            else if (c == q && q == '\'' && i + 1 < L->len && t[i + 1] == '\'') i++, m.column++;
            else if (c == q) q = 0;
        } else if (c == '#' && strchr(" \t\n", prev)) {
            while (i + 1 < L->len && t[i + 1] != '\n') i++, m.column++;
        } else if ((c == '"' || c == '\'') && strchr(" \t\n[{,:", prev)) {
            q = c;
        } else if (c == '[' || c == '{') {
            if (++depth > SPEC_MAX_FLOW_DEPTH)
                return load_fail(L, m, NULL, "flow collections nested more than %d deep", SPEC_MAX_FLOW_DEPTH);
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

static int load_buffer(jepa_spec *s, const char *text, size_t len, const char *name, char *err, size_t errlen) {
    /* Work on a copy so a failed load leaves *s as it was. */
    jepa_spec tmp;
    memcpy(&tmp, s, sizeof tmp);
    loader L = {.name = name ? name : "<string>", .text = text, .len = len, .s = &tmp, .err = err, .errlen = errlen};
    yaml_parser_t p;
    yaml_document_t doc, extra;
    int rc = -1;
    if (flow_depth_check(&L)) return -1;
    if (!yaml_parser_initialize(&p)) return spec_fail(err, errlen, "%s: cannot initialise the YAML parser", L.name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = syntax_fail(&L, &p);
        yaml_parser_delete(&p);
        return rc;
    }
    L.doc = &doc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || is_null(root)) {
        yaml_mark_t m = {0, 0, 0};
        rc = load_fail(&L, m, NULL, "empty spec: expected a mapping of keys");
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = load_fail(&L, root->start_mark, NULL, "expected a mapping of keys at top level, got a %s",
                       node_kind(root));
    } else if (load_mapping(&L, root, "") == 0) {
        /* a second document would be silently ignored: refuse it */
        if (!yaml_parser_load(&p, &extra)) {
            rc = syntax_fail(&L, &p);
        } else {
            const yaml_node_t *r2 = yaml_document_get_root_node(&extra);
            rc = r2 ? load_fail(&L, r2->start_mark, NULL, "more than one YAML document; a spec is one") : 0;
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (rc == 0) memcpy(s, &tmp, sizeof tmp);
    return rc;
}

/* FNV-1a 64 of n bytes, continuing h */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
#define FNV_BASIS 14695981039346656037ull
/* the resolved spec's first line, and its last before the checksum (the
 * header of the files written before the checksum ends after "included") */
#define RESOLVED_HEADER "# resolved run spec (jepa-mpi): every key, defaults included; checksum last"
#define RESOLVED_END "# end of the resolved spec, FNV-1a 64 of the lines above: "

/* A resolved spec (its first line RESOLVED_HEADER) must end with its
 * checksum line: one cut short at a line boundary would parse, its missing
 * keys taking defaults the run never had. Resolved specs written before
 * the checksum (the header without it) load as any spec. */
static int resolved_check(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    size_t hl = strlen(RESOLVED_HEADER), el = strlen(RESOLVED_END);
    if (len <= hl || memcmp(text, RESOLVED_HEADER, hl) != 0 || text[hl] != '\n') return 0;
    /* the last line: RESOLVED_END, 16 hex digits, a newline */
    size_t last = len >= el + 17 ? len - el - 17 : 0;
    int ok = len >= el + 17 && last > 0 && text[last - 1] == '\n' && text[len - 1] == '\n' &&
             !memcmp(text + last, RESOLVED_END, el);
    for (size_t i = last + el; ok && i < len - 1; i++) ok = isxdigit((unsigned char)text[i]) != 0;
    if (!ok)
        return spec_fail(err, errlen, "%s: a resolved spec without its last line (the checksum): cut "
                    "short or damaged", name);
    if (fnv1a(FNV_BASIS, text, last) != strtoull(text + last + el, NULL, 16))
        return spec_fail(err, errlen, "%s: a resolved spec whose checksum does not match: damaged or "
                    "edited (a run's settings change with --set, not in this file)", name);
    return 0;
}

int spec_load_string(jepa_spec *s, const char *yaml, const char *name, char *err, size_t errlen) {
    size_t len = strlen(yaml);
    if (resolved_check(yaml, len, name ? name : "<string>", err, errlen)) return -1;
    return load_buffer(s, yaml, len, name, err, errlen);
}

int spec_load_file(jepa_spec *s, const char *path, char *err, size_t errlen) {
    char *buf;
    size_t n;
    if (spec_read_file(path, SPEC_FILE_MAX, "run spec", &buf, &n, err, errlen)) return -1;
    int rc = resolved_check(buf, n, path, err, errlen);
    if (rc == 0) rc = load_buffer(s, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

int spec_set(jepa_spec *s, const char *assignment, char *err, size_t errlen) {
    char shown[160], msg[SPEC_ERR_MAX], key[PATH_MAX_LEN], hint[PATH_MAX_LEN + 32];
    const char *eq = strchr(assignment, '=');
    spec_show(assignment, shown, sizeof shown);
    if (!eq) return spec_fail(err, errlen, "--set %s: missing '=' (expected key.path=value)", shown);
    size_t n = (size_t)(eq - assignment);
    const spec_key *k = NULL;
    if (n < sizeof key) {
        memcpy(key, assignment, n);
        key[n] = '\0';
        k = key_find(key);
    }
    if (!k) {
        if (n < sizeof key) key_suggest(key, hint, sizeof hint);
        else hint[0] = '\0';
        return spec_fail(err, errlen, "--set %s: unknown key%s", shown, hint);
    }
    if (key_apply(k, s, eq + 1, strlen(eq + 1), msg, sizeof msg))
        return spec_fail(err, errlen, "--set %s: %s", shown, msg);
    return 0;
}

/* A key's number (int, int64 or double) by name; the key must exist. */
double spec_key_double(const char *key, const jepa_spec *s) {
    const spec_key *k = key_find(key);
    SPEC_ASSERT(k);
    return k->type == SPEC_DOUBLE ? *(const double *)cfield(k, s) : (double)key_int(k, s);
}

/* Each key's own checks again: a caller may have filled the struct by hand. */
static int validate_keys(const jepa_spec *s, char *err, size_t errlen) {
    char r[64], a[40];
    for (size_t i = 0; i < NKEYS; i++) {
        const spec_key *k = &spec_keys[i];
        const char *str = cfield(k, s);
        switch (k->type) {
        case SPEC_INT:
        case SPEC_INT64:
            if (!in_range(k, (double)key_int(k, s))) {
                range_text(k, r, sizeof r);
                return spec_fail(err, errlen, "%s: must be %s, got %lld", k->key, r, (long long)key_int(k, s));
            }
            break;
        case SPEC_DOUBLE: {
            double v = *(const double *)cfield(k, s);
            if (!isfinite(v) || !in_range(k, v)) {
                range_text(k, r, sizeof r);
                spec_fmt_double(v, a, sizeof a);
                return spec_fail(err, errlen, "%s: must be %s, got %s", k->key, r, a);
            }
            if ((k->flags & SPEC_DECADE) && !is_decade(v)) {
                spec_fmt_double(v, a, sizeof a);
                return spec_fail(err, errlen, "%s: must be a power of ten (0.1, 0.01, ..., 1e-12), got %s",
                            k->key, a);
            }
            break;
        }
        case SPEC_BOOL:
            if (key_int(k, s) != 0 && key_int(k, s) != 1)
                return spec_fail(err, errlen, "%s: must be 0 or 1, got %lld", k->key, (long long)key_int(k, s));
            break;
        case SPEC_STRING:
        case SPEC_ENUM: {
            jepa_spec probe; /* re-apply the text: same checks as a user's value */
            char msg[SPEC_ERR_MAX];
            if (!memchr(str, '\0', k->size)) return spec_fail(err, errlen, "%s: not NUL-terminated", k->key);
            if (key_apply(k, &probe, str, strlen(str), msg, sizeof msg))
                return spec_fail(err, errlen, "%s: %s", k->key, msg);
            break;
        }
        }
    }
    return 0;
}

int spec_validate(const jepa_spec *s, char *err, size_t errlen) {
    if (validate_keys(s, err, errlen)) return -1;
    return spec_validate_cross(s, err, errlen);
}

/* Double-quoted YAML scalar. Escapes what libyaml would reject or fold in a
 * quoted scalar (controls, C1, line/paragraph separators, BOM, U+FFFE/F) so
 * any valid UTF-8 value reads back byte for byte. */
static void write_quoted(FILE *f, const char *str) {
    const unsigned char *p = (const unsigned char *)str;
    fputc('"', f);
    while (*p) {
        unsigned c = *p, len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4, cp = c;
        if (len > 1) {
            cp = c & (0x3f >> (len - 1));
            for (unsigned i = 1; i < len; i++) cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (int)cp);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) fprintf(f, "\\x%02X", cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            fprintf(f, "\\u%04X", cp);
        else fwrite(p, 1, len, f);
        p += len;
    }
    fputc('"', f);
}

/* The keys as YAML, after the header line. */
static int write_keys(const jepa_spec *s, FILE *f) {
    char val[SPEC_STR_MAX + 64];
    const char *section = "";
    size_t section_len = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const spec_key *k = &spec_keys[i];
        const char *dot = strrchr(k->key, '.'), *leaf = dot ? dot + 1 : k->key;
        size_t len = dot ? (size_t)(dot - k->key) : 0;
        if (len != section_len || strncmp(section, k->key, len) != 0) {
            if (len) fprintf(f, "%.*s:\n", (int)len, k->key);
            section = k->key, section_len = len;
        }
        fprintf(f, "%s%s: ", len ? "  " : "", leaf);
        if (k->type == SPEC_STRING) {
            /* write_quoted trusts its UTF-8; a hand-filled field may not be */
            if (!memchr(cfield(k, s), '\0', k->size) || !utf8_valid(cfield(k, s))) return -1;
            write_quoted(f, cfield(k, s));
        } else {
            if (key_format(k, s, val, sizeof val)) return -1;
            fputs(val, f);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

int spec_write(const jepa_spec *s, FILE *f) {
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    if (!m) return -1;
    fputs(RESOLVED_HEADER "\n", m);
    int rc = write_keys(s, m);
    if (fclose(m) != 0) rc = -1;
    if (rc == 0 && (fwrite(buf, 1, n, f) != n ||
                    fprintf(f, RESOLVED_END "%016llx\n", (unsigned long long)fnv1a(FNV_BASIS, buf, n)) < 0))
        rc = -1;
    free(buf);
    return rc == 0 && !ferror(f) ? 0 : -1;
}

int spec_get(const jepa_spec *s, const char *key, char *out, size_t outlen) {
    const spec_key *k = key_find(key);
    if (!k || !out || !outlen) return -1;
    return key_format(k, s, out, outlen);
}

uint64_t spec_model_hash(const jepa_spec *s) {
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < NKEYS; i++) {
        const spec_key *k = &spec_keys[i];
        if (strncmp(k->key, "model.", 6) != 0) continue;
        SPEC_ASSERT(k->type == SPEC_INT || k->type == SPEC_INT64);
        uint64_t v = (uint64_t)key_int(k, s);
        unsigned char le[8]; /* little-endian bytes, whatever the host */
        for (int b = 0; b < 8; b++) le[b] = (unsigned char)(v >> (8 * b));
        h = fnv1a(h, le, sizeof le);
    }
    return h;
}

void spec_print_help(FILE *f) {
    static const char *const type_names[] = {"int", "int64", "double", "bool", "string", "enum"};
    char r[64];
    fprintf(f, "Run spec keys (YAML, nested or dotted; override with --set key=value):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const spec_key *k = &spec_keys[i];
        if (k->type == SPEC_ENUM) {
            strcpy(r, "one of ");
            for (const char *const *c = k->choices; *c; c++)
                snprintf(r + strlen(r), sizeof r - strlen(r), "%s%s", c == k->choices ? "" : "|", *c);
        } else if (k->type == SPEC_BOOL || k->type == SPEC_STRING) {
            r[0] = '\0';
        } else {
            range_text(k, r, sizeof r);
        }
        fprintf(f, "  %-27s %-7s default %s%s%s\n      %s\n", k->key, type_names[k->type], k->def, *r ? ", " : "", r,
                k->help);
    }
}
