/* spec_internal.h - the key table's row type, shared by spec.c (which walks
 * the table) and spec_keys.c (which is the table), the one-line error
 * helper of spec.c and spec_read.c, and what spec_cross.c (the checks
 * between keys) uses of spec.c. Private to launch/. */
#ifndef JEPA_SPEC_INTERNAL_H
#define JEPA_SPEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"

typedef enum {
    SPEC_INT,    /* int field */
    SPEC_INT64,  /* int64_t field */
    SPEC_DOUBLE, /* double field */
    SPEC_BOOL,   /* int field, 0 or 1 */
    SPEC_STRING, /* char[size]; min is the minimum length */
    SPEC_ENUM,   /* char[size] holding one of `choices` */
} spec_type;

/* exclusive bounds: (min, ...] etc.; SPEC_DECADE: a double that must also be
 * exactly a power of ten (1e-12 ... 1e12) */
enum { SPEC_LO_OPEN = 1, SPEC_HI_OPEN = 2, SPEC_DECADE = 4 };

typedef struct {
    const char *key; /* dotted path; the part before the last '.' is its section */
    spec_type type;
    size_t off, size; /* field in jepa_spec */
    double min, max;  /* numeric range (all table bounds are exact in a double) */
    int flags;        /* SPEC_LO_OPEN | SPEC_HI_OPEN | SPEC_DECADE */
    const char *def;  /* default, parsed by the same code as user input */
    const char *const *choices; /* SPEC_ENUM: NULL-terminated */
    const char *help;
} spec_key;


extern const spec_key spec_keys[];
extern const size_t spec_nkeys;
#define SPEC_MAX_KEYS 256 /* bounds per-key scratch arrays; spec.c asserts it */
#define NOMAX ((double)INT64_MAX) /* "no upper bound" for int64 keys */

/* err := the formatted line (when err is not NULL); returns -1 */
int spec_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* spec.c's helpers for spec_cross.c: user text made safe for a one-line
 * error (controls as '?', cut to fit buf); the shortest text that reads
 * back to v; a numeric key's value by name (the key must exist) */
const char *spec_show(const char *text, char *buf, size_t n);
void spec_fmt_double(double v, char *buf, size_t n);
double spec_key_double(const char *key, const jepa_spec *s);

/* The checks between keys (spec_cross.c), in the order a user meets them;
 * spec_validate runs them after each key's own. 0, or -1 + err. */
int spec_validate_cross(const jepa_spec *s, char *err, size_t errlen);

#endif
