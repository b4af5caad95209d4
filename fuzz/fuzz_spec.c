/* fuzz_spec.c - libFuzzer target for the run-spec reader (launch/spec.c):
 * YAML -> spec over the defaults, then --set assignments, then the
 * cross-field checks. Input: YAML text, then optionally a NUL byte and
 * NUL-separated --set assignments. Under ASan/UBSan an out-of-bounds access
 * is a crash, and so is a broken promise of the reader (abort()):
 *   - a refusal is one line (no '\n') and leaves the spec byte-identical;
 *   - a --set refusal names "--set";
 *   - an accepted spec written out (spec_write) and read back writes out
 *     the same text (spec.h: "spec_load_string of the output reproduces *s").
 * Seeds: the configs/ files, plus those JEPA_FUZZ_SPEC_SEED=DIR fuzz-spec
 * writes (YAML followed by --set assignments) and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

#define FUZZ_MAX_INPUT 65536

static void one_line(const char *err) {
    if (!err[0] || strchr(err, '\n')) abort();
}

/* spec_write to a malloc'd string (NULL: the writer refused). */
static char *written(const jepa_spec *s) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) abort();
    int rc = spec_write(s, f);
    if (fclose(f) != 0) abort();
    if (rc == 0) return buf;
    free(buf);
    return NULL;
}

/* The round trip spec.h promises, for a spec the reader accepted. */
static void check_round_trip(const jepa_spec *s) {
    char *a = written(s);
    if (!a) return; /* a string the writer refuses (not UTF-8): refused, not mangled */
    static jepa_spec t;
    char err[SPEC_ERR_MAX];
    spec_defaults(&t);
    if (spec_load_string(&t, a, "written", err, sizeof err) != 0) abort();
    char *b = written(&t);
    if (!b || strcmp(a, b) != 0) abort();
    free(a);
    free(b);
}

static int write_seed(const char *dir, const char *name, const char *text, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "fuzz-spec: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("JEPA_FUZZ_SPEC_SEED");
    if (!dir) return 0;
    static const char nested[] = "seed: 3\nmodel:\n  width: 64\n  heads: 4\noptim: {lr: 2.0e-3}\n"
                                 "run: {dir: \"runs/a b\"}\n\0optim.lr=1e-4\0train.steps=10\0"
                                 "eval.probe=false\0model.width=abc";
    static const char dotted[] = "objective: lejepa\ntrain.minutes: 0\ntrain.steps: 5\n"
                                 "lejepa.local_size: 8\nsigreg.knots: 17\n\0sigreg.knots=100";
    static const char anchors[] = "base: &b {lr: 1.0e-3}\noptim:\n  <<: *b\n  warmup_frac: 0.1\n";
    int rc = write_seed(dir, "nested", nested, sizeof nested - 1) |
             write_seed(dir, "dotted", dotted, sizeof dotted - 1) |
             write_seed(dir, "anchors", anchors, sizeof anchors - 1);
    exit(rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    char *in = malloc(size + 1);
    if (!in) abort();
    memcpy(in, data, size);
    in[size] = 0; /* the YAML is the text up to the first NUL */
    static jepa_spec s, before;
    char err[SPEC_ERR_MAX];
    spec_defaults(&s);
    before = s;
    if (spec_load_string(&s, in, "fuzz", err, sizeof err) != 0) {
        one_line(err);
        if (memcmp(&s, &before, sizeof s)) abort(); /* on -1 *s is unchanged */
    }
    /* --set assignments: the NUL-separated pieces after the YAML */
    for (size_t at = strlen(in) + 1; at <= size; at += strlen(in + at) + 1) {
        before = s;
        err[0] = 0;
        if (spec_set(&s, in + at, err, sizeof err) != 0) {
            one_line(err);
            if (!strstr(err, "--set")) abort();
            if (memcmp(&s, &before, sizeof s)) abort();
        }
    }
    if (spec_validate(&s, err, sizeof err) != 0) one_line(err);
    (void)spec_model_hash(&s);
    check_round_trip(&s);
    free(in);
    return 0;
}
