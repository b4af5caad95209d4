/* ckpt_diff.c - test-only tool: how far apart two checkpoints of one model
 * are, per buffer (parameters, EMA target, Adam m and v), for runs that
 * should differ only by summation order (e2e_elastic: another world size).
 *   ckpt-diff A B   prints, per buffer, "NAME max_abs X rel_l2 Y" with
 *   rel_l2 = ||a - b||_2 / ||a||_2 (in double); exit 0, or 1 + one line when a
 *   file does not read or the two have other shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "jepa.h"

/* The four float buffers of a checkpoint that passed ckpt_read_meta: (3 *
 * nparams + nenc) floats after the 256-byte header, or NULL. */
static float *load(const char *path, ckpt_meta *m) {
    char err[512];
    FILE *f = fopen(path, "rb");
    if (!f || ckpt_read_meta(f, path, m, err, sizeof err)) {
        fprintf(stderr, "ckpt-diff: %s\n", f ? err : path);
        if (f) fclose(f);
        return NULL;
    }
    size_t n = 3 * m->nparams + m->nenc;
    float *p = malloc(n * sizeof *p);
    if (!p || fseek(f, CKPT_HEADER_BYTES, SEEK_SET) || fread(p, sizeof *p, n, f) != n) {
        fprintf(stderr, "ckpt-diff: %s: short file\n", path);
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt-diff A.ckpt B.ckpt\n");
        return 2;
    }
    ckpt_meta ma, mb;
    float *a = load(argv[1], &ma), *b = a ? load(argv[2], &mb) : NULL;
    if (!a || !b) return 1;
    if (ma.nparams != mb.nparams || ma.nenc != mb.nenc) {
        fprintf(stderr, "ckpt-diff: %s and %s hold other shapes\n", argv[1], argv[2]);
        return 1;
    }
    const char *name[4] = {"params", "target", "adam_m", "adam_v"};
    size_t len[4] = {ma.nparams, ma.nenc, ma.nparams, ma.nparams}, at = 0;
    for (int k = 0; k < 4; k++) {
        double mx = 0.0, dd = 0.0, aa = 0.0;
        for (size_t i = at; i < at + len[k]; i++) {
            double d = fabs((double)a[i] - b[i]);
            if (d > mx || isnan(d)) mx = d;
            dd += d * d;
            aa += (double)a[i] * a[i];
        }
        if (len[k]) printf("%s max_abs %.3e rel_l2 %.3e\n", name[k], mx, sqrt(dd / (aa > 0 ? aa : 1)));
        at += len[k];
    }
    free(a);
    free(b);
    return 0;
}
