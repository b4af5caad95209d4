/* bench_args.h - how the bench programs read a number argument: the whole
 * text, in range, or not at all (the CLI rule: atoi's "abc" -> 0 and "1x"
 * -> 1 ran benchmarks nobody asked for). Header-only, so bench-shard and
 * bench-comm keep linking only their own library. Each program words its
 * own one-line error. */
#ifndef JEPA_BENCH_ARGS_H
#define JEPA_BENCH_ARGS_H

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* s as a base-10 integer in [lo, hi] into *v; 0, or -1 (v untouched) */
static inline int bench_long(const char *s, long lo, long hi, long *v) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* s as a finite number in [lo, hi] into *v; 0, or -1 */
static inline int bench_double(const char *s, double lo, double hi, double *v) {
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x) || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

#endif
