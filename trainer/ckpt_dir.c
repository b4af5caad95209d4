/* ckpt_dir.c - a run directory's set of checkpoints: where they go, the
 * `latest` pointer, keep-K rotation, and loading the newest good one with
 * fallback past damaged files. The file format itself is ckpt.c's.
 *
 *   RUN/checkpoints/step-00000120.ckpt   one file per saved step
 *   RUN/latest                           "checkpoints/step-00000120.ckpt\n",
 *                                        written only after that file is durable
 *   RUN/checkpoint.bin                   the finished run's (for jepa-eval) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jepa.h"
#include "shard.h"

#define CKPT_SUBDIR "checkpoints"

void ckpt_dir_path(char *out, size_t n, const char *run_dir, int64_t step) {
    snprintf(out, n, "%s/" CKPT_SUBDIR "/step-%08lld.ckpt", run_dir, (long long)step);
}

/* "step-<digits>.ckpt" -> step, else -1: temp files, *.corrupt and strays
 * are not checkpoints. */
static int64_t parse_name(const char *name) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    const char *p = name + 5;
    int64_t v = 0;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (nd >= 18) return -1;
        v = v * 10 + (*p - '0');
    }
    return nd > 0 && !strcmp(p, ".ckpt") ? v : -1;
}

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The steps of run_dir's checkpoints, newest first (malloc'd, caller frees),
 * count in *n. With tidy, removes stale temp files of dead writers on the
 * way (never while a resume may still be refused: issue 16). */
static int64_t *list_steps(const char *run_dir, int *n, int tidy) {
    char d[SPEC_STR_MAX + 32];
    snprintf(d, sizeof d, "%s/" CKPT_SUBDIR, run_dir);
    *n = 0;
    DIR *dir = opendir(d);
    if (!dir) return NULL;
    int cap = 16;
    int64_t *steps = JEPA_MALLOC(sizeof(int64_t) * cap);
    char mine[32];
    snprintf(mine, sizeof mine, ".tmp.%d", (int)getpid());
    for (struct dirent *e; (e = readdir(dir));) {
        int64_t s = parse_name(e->d_name);
        if (s < 0) {
            const char *t = strstr(e->d_name, ".ckpt.tmp.");
            if (tidy && t && !strncmp(e->d_name, "step-", 5) && !strstr(e->d_name, mine)) {
                char p[SPEC_STR_MAX + 300];
                snprintf(p, sizeof p, "%s/%s", d, e->d_name);
                unlink(p); /* a writer killed mid-save: never renamed, never good */
            }
            continue;
        }
        if (*n == cap) {
            int64_t *bigger = JEPA_MALLOC(sizeof(int64_t) * cap * 2);
            memcpy(bigger, steps, sizeof(int64_t) * cap);
            jepa_free(steps);
            steps = bigger;
            cap *= 2;
        }
        steps[(*n)++] = s;
    }
    closedir(dir);
    qsort(steps, (size_t)*n, sizeof *steps, cmp_desc);
    return steps;
}

int ckpt_dir_any(const char *run_dir) {
    int n;
    int64_t *steps = list_steps(run_dir, &n, 0);
    jepa_free(steps);
    char p[SPEC_STR_MAX + 32];
    snprintf(p, sizeof p, "%s/checkpoint.bin", run_dir);
    return n > 0 || access(p, F_OK) == 0;
}

/* Writes text to path atomically and durably (shard_tmp_commit). */
static int write_durable(const char *path, const char *text, char *err, size_t errlen) {
    char tmp[SPEC_STR_MAX + 80];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    errno = 0;
    FILE *f = fopen(tmp, "w");
    return shard_tmp_commit(f, f && fputs(text, f) >= 0, tmp, path, err, errlen);
}

int ckpt_dir_save(const char *run_dir, int keep, const jepa_model *m, const ckpt_meta *meta,
                  char *path_out, size_t path_len, char *err, size_t errlen) {
    char d[SPEC_STR_MAX + 32], path[SPEC_STR_MAX + 64];
    snprintf(d, sizeof d, "%s/" CKPT_SUBDIR, run_dir);
    if (mkdir(d, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create directory %s: %s", d, strerror(errno));
        return -1;
    }
    ckpt_dir_path(path, sizeof path, run_dir, meta->step);
    if (ckpt_save(path, m, meta, err, errlen)) return -1;
    /* the pointer moves only once the file it names is whole and durable */
    char latest[SPEC_STR_MAX + 32], text[64];
    snprintf(latest, sizeof latest, "%s/latest", run_dir);
    snprintf(text, sizeof text, CKPT_SUBDIR "/step-%08lld.ckpt\n", (long long)meta->step);
    if (write_durable(latest, text, err, errlen)) return -1;
    if (path_out) snprintf(path_out, path_len, "%s", path);
    /* rotation last: a crash before it leaves one checkpoint too many, never
     * one too few */
    int n;
    int64_t *steps = list_steps(run_dir, &n, 1);
    for (int i = 0, kept = 0; i < n; i++) {
        if (steps[i] <= meta->step && kept < keep) {
            kept++;
            continue;
        }
        char old[SPEC_STR_MAX + 64];
        ckpt_dir_path(old, sizeof old, run_dir, steps[i]);
        if (unlink(old) != 0 && errno != ENOENT)
            fprintf(stderr, "jepa: warning: cannot remove old checkpoint %s: %s\n", old,
                    strerror(errno));
    }
    jepa_free(steps);
    return 0;
}

int ckpt_dir_load(const char *run_dir, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                  char *path_out, size_t path_len, char *err, size_t errlen) {
    int n;
    int64_t *steps = list_steps(run_dir, &n, 0);
    if (n == 0) {
        jepa_free(steps);
        return 1;
    }
    int rc = CKPT_ERR_CORRUPT, i;
    char path[SPEC_STR_MAX + 64];
    for (i = 0; i < n; i++) {
        ckpt_dir_path(path, sizeof path, run_dir, steps[i]);
        rc = ckpt_load(path, m, want, got, err, errlen);
        if (rc != CKPT_ERR_CORRUPT) break; /* loaded, or another job's: no fallback */
        fprintf(stderr, "jepa: warning: %s\n", err);
    }
    if (rc == CKPT_OK) {
        if (path_out) snprintf(path_out, path_len, "%s", path);
        if (i > 0) fprintf(stderr, "jepa: warning: resuming from the previous good checkpoint %s\n", path);
    }
    if (rc == CKPT_ERR_CORRUPT) {
        char first[SPEC_STR_MAX + 64];
        ckpt_dir_path(first, sizeof first, run_dir, steps[0]);
        snprintf(err, errlen,
                 "%s/" CKPT_SUBDIR ": none of its %d checkpoint%s is readable (newest %s): "
                 "refusing to start over (move them away, or set resume: none and another run.dir)",
                 run_dir, n, n == 1 ? "" : "s", first);
    }
    jepa_free(steps);
    return rc;
}

void ckpt_dir_tidy(const char *run_dir, int64_t loaded) {
    int n;
    int64_t *steps = list_steps(run_dir, &n, 1);
    /* the damaged newer ones are moved aside, not deleted: the evidence
     * stays, and rotation and later resumes no longer see them (only once a
     * good one is found and the resume accepted, so neither a retry nor a
     * refused resume finds the directory changed) */
    for (int j = 0; j < n && steps[j] > loaded; j++) {
        char bad[SPEC_STR_MAX + 64], aside[SPEC_STR_MAX + 80];
        ckpt_dir_path(bad, sizeof bad, run_dir, steps[j]);
        snprintf(aside, sizeof aside, "%s.corrupt", bad);
        if (rename(bad, aside) == 0)
            fprintf(stderr, "jepa: warning: moved %s aside to %s\n", bad, aside);
    }
    jepa_free(steps);
}

int ckpt_dir_run_checkpoint(const char *run_dir, char *ck, size_t n, char *err, size_t errlen) {
    snprintf(ck, n, "%s/checkpoint.bin", run_dir);
    if (access(ck, F_OK) == 0) return 0;
    char lp[SPEC_STR_MAX + 32], name[SPEC_STR_MAX] = "";
    snprintf(lp, sizeof lp, "%s/latest", run_dir);
    FILE *lf = spec_fopen_regular(lp, err, errlen);
    if (!lf) return errno == ENOENT ? 0 : -1; /* none: the load names checkpoint.bin */
    int got = fgets(name, sizeof name, lf) != NULL;
    fclose(lf);
    if (!got) return 0;
    name[strcspn(name, "\n")] = 0;
    snprintf(ck, n, "%s/%s", run_dir, name);
    return 1;
}

int ckpt_dir_publish(const char *run_dir, const char *path, const jepa_model *m,
                     const ckpt_meta *meta, char *err, size_t errlen) {
    char dst[SPEC_STR_MAX + 32], tmp[SPEC_STR_MAX + 48];
    snprintf(dst, sizeof dst, "%s/checkpoint.bin", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dst, (int)getpid());
    unlink(tmp);
    /* a hard link costs no space and survives the rotation of its other name */
    if (link(path, tmp) == 0 && rename(tmp, dst) == 0) {
        /* dst already a link of path (a finished run resumed): rename
         * succeeds and does nothing, so tmp would stay */
        unlink(tmp);
        (void)shard_fsync_dir(run_dir);
        return 0;
    }
    unlink(tmp);
    return ckpt_save(dst, m, meta, err, errlen);
}
