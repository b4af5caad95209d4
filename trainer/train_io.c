/* train_io.c - what the training loop writes and reads besides the step:
 * the run directory, the job's identity as checkpoints record it, resume,
 * metrics.jsonl continued after a resume, Slurm requeue and the collective
 * checkpoint save. Private to train.c (train_internal.h). */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "objective.h"
#include "run_lock.h"
#include "train_internal.h"
#include "shard.h"

double train_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Writes text to dir/name atomically (temp + rename); nothing is left
 * behind on failure. Durably (shard_tmp_commit fsyncs before the rename,
 * as ckpt.c): after a power loss the name must not point at an empty file
 * (an empty summary.json would read as a finished run whose results are
 * lost). */
int train_write_text(const char *dir, const char *name, const char *text, char *err,
                      size_t errlen) {
    char path[SPEC_STR_MAX + 64], tmp[SPEC_STR_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    errno = 0;
    FILE *f = fopen(tmp, "w");
    return shard_tmp_commit(f, f && fputs(text, f) >= 0, tmp, path, err, errlen);
}

/* The run directory with the spec as given and fully resolved. The
 * directories this call made are removed again when a file in them cannot
 * be written. */
int train_write_run_dir(const jepa_spec *s, const char *spec_text, char *err, size_t errlen) {
    struct stat st;
    size_t made = 0; /* the directories made: run_dir's prefixes at least this long */
    char place[4096], why[SHARD_ERR_MAX]; /* place unused: the files go in through a link */
    if (shard_out_place(s->run_dir, SHARD_PLACE_DIR, place, sizeof place, why, sizeof why)) {
        snprintf(err, errlen, "run.dir %s", why);
        return -1;
    }
    if (stat(s->run_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "run.dir %s exists and is not a directory", s->run_dir);
        return -1;
    }
    if (shard_make_dirs_noting(s->run_dir, &made, err, errlen)) return -1; /* as mkdir -p */
    /* one job per run directory (run_lock.h); held until we exit. Held by
     * another, the file was there: nothing was made */
    if (run_lock_take(s->run_dir, RUN_LOCK_JOB, err, errlen)) return -1;
    char path[SPEC_STR_MAX + 32], tmp[SPEC_STR_MAX + 40];
    snprintf(path, sizeof path, "%s/spec.resolved.yaml", s->run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = spec_text ? train_write_text(s->run_dir, "spec.yaml", spec_text, err, errlen) : 0;
    if (rc == 0) {
        errno = 0;
        FILE *f = fopen(tmp, "w");
        rc = shard_tmp_commit(f, f && spec_write(s, f) == 0, tmp, path, err, errlen);
    }
    if (rc && made) { /* only what this call wrote: spec.yaml, then the directories */
        snprintf(path, sizeof path, "%s/spec.yaml", s->run_dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/lock", s->run_dir); /* ours: we made the directory */
        unlink(path);
        shard_unmake_dirs(s->run_dir, made);
    }
    return rc;
}

/* ------------------------------------------------------------ identity */
/* The keys besides model.* that decide every run's trajectory; the
 * objective adds its own (ops->hash_keys). A checkpoint resumed under other
 * values would not continue the same run. (For I-JEPA the two lists are the
 * version-2 list in its order, ijepa.crop and aug.* after it; keys added
 * since hash only when set, so every I-JEPA checkpoint since those resumes.) */
static const char *const common_keys[] = {
    "seed", "train.batch_per_rank", "data.shuffle_buffer", "optim.lr", "optim.min_lr",
    "optim.warmup_frac", "optim.wd_start", "optim.wd_end", "optim.beta1", "optim.beta2",
    "optim.eps", NULL,
};

/* FNV-1a over "key=value\n" of each key; added: only those not at their
 * default (objective_ops.hash_keys_added) */
static uint64_t hash_keys(uint64_t h, const jepa_spec *s, const char *const *keys, int added) {
    static jepa_spec def; /* setup only; large for a stack */
    char v[SPEC_STR_MAX], d[SPEC_STR_MAX], line[SPEC_STR_MAX + 64];
    if (added) spec_defaults(&def);
    for (size_t k = 0; keys && keys[k]; k++) {
        JEPA_ASSERT(spec_get(s, keys[k], v, sizeof v) == 0);
        if (added && spec_get(&def, keys[k], d, sizeof d) == 0 && !strcmp(v, d)) continue;
        int n = snprintf(line, sizeof line, "%s=%s\n", keys[k], v);
        for (int i = 0; i < n; i++) h = (h ^ (unsigned char)line[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* FNV-1a of the common keys, then the objective's */
static uint64_t train_hash_of(const jepa_spec *s) {
    const objective_ops *ops = objective_find(s->objective);
    JEPA_ASSERT(ops);
    uint64_t h = hash_keys(0xcbf29ce484222325ULL, s, common_keys, 0);
    return hash_keys(hash_keys(h, s, ops->hash_keys, 0), s, ops->hash_keys_added, 1);
}

/* After a refused resume of checkpoint ckpt: where the spec.resolved.yaml
 * of its run (beside it, or beside its checkpoints/ directory; not yet
 * rewritten) hashes to other training settings than this spec, the first
 * key that differs goes on err as "(KEY is A here, B in FILE)". Nothing
 * where that file is missing or unreadable, or its objective or settings
 * are this spec's. */
static void name_changed_key(const jepa_spec *s, const char *ckpt, char *err, size_t errlen) {
    char path[4096], why[SPEC_ERR_MAX], a[SPEC_STR_MAX], b[SPEC_STR_MAX];
    const char *slash = strrchr(ckpt, '/');
    int n = slash ? (int)(slash - ckpt) : 0; /* the checkpoint's directory: ckpt[0, n) */
    if (n >= 12 && !strncmp(ckpt + n - 12, "/checkpoints", 12)) n -= 12;
    snprintf(path, sizeof path, "%.*s%sspec.resolved.yaml", n, ckpt, slash ? "/" : "");
    static jepa_spec old; /* rank 0, setup only; large for a stack */
    spec_defaults(&old);
    if (access(path, R_OK) != 0 || spec_load_file(&old, path, why, sizeof why) != 0 ||
        strcmp(old.objective, s->objective) != 0 || train_hash_of(&old) == train_hash_of(s))
        return;
    const objective_ops *ops = objective_find(s->objective);
    const char *const *lists[3] = {common_keys, ops->hash_keys, ops->hash_keys_added};
    for (int l = 0; l < 3; l++)
        for (size_t k = 0; lists[l] && lists[l][k]; k++) {
            const char *key = lists[l][k];
            if (spec_get(s, key, a, sizeof a) || spec_get(&old, key, b, sizeof b) || !strcmp(a, b))
                continue;
            size_t e = strlen(err);
            /* set to keep the global batch on fewer ranks: the trainer does that itself */
            const char *why = strcmp(key, "train.batch_per_rank") ? "" :
                "; a resume on another number of ranks keeps the checkpoint's global batch by itself, the "
                "trainer re-splitting it over the ranks: do not set train.batch_per_rank";
            snprintf(err + e, errlen - e, " (%s is %s here, %s in %s%s)", key, a, b, path, why);
            return;
        }
}

void train_meta_init(ckpt_meta *m, const jepa_spec *s, int world) {
    memset(m, 0, sizeof *m);
    m->model_hash = spec_model_hash(s);
    char v[SPEC_STR_MAX];
    for (int i = 0; i < CKPT_MODEL_KEYS; i++) {
        JEPA_ASSERT(spec_get(s, ckpt_model_keys[i], v, sizeof v) == 0);
        m->model[i] = (int32_t)strtol(v, NULL, 10);
    }
    m->train_hash = train_hash_of(s);
    m->world = (uint32_t)world;
    m->seed = (uint64_t)s->seed;
    snprintf(m->objective, sizeof m->objective, "%s", s->objective);
}

/* Whether dir holds a finished run: its summary.json (the checkpoints of
 * a finished run may have been deleted to save space; its results stay). */
static int finished_run(const char *dir, char *err, size_t errlen) {
    char p[SPEC_STR_MAX + 32];
    snprintf(p, sizeof p, "%s/summary.json", dir);
    if (access(p, F_OK) != 0) return 0;
    snprintf(err, errlen,
             "run.dir %s holds a finished run (%s) and no checkpoint to continue: choose "
             "another run.dir, or remove that one",
             dir, p);
    return 1;
}

static int same_dir(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Whether checkpoint file ckpt belongs to run directory dir: it lies in
 * dir or in dir/checkpoints (the same directories, however spelled). */
static int own_checkpoint(const char *ckpt, const char *dir) {
    char d[SPEC_STR_MAX], sub[SPEC_STR_MAX + 16];
    snprintf(d, sizeof d, "%s", ckpt);
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    const char *parent = dirname(d);
    return same_dir(parent, dir) || same_dir(parent, sub);
}

/* resume=PATH from another run: never into a run.dir holding a run of its
 * own, whose checkpoints would sit beside PATH's continuation or whose
 * finished results (summary.json) it would overwrite. */
static int foreign_resume(const jepa_spec *s, char *err, size_t errlen) {
    if (own_checkpoint(s->resume, s->run_dir)) return 0;
    if (!ckpt_dir_any(s->run_dir)) return finished_run(s->run_dir, err, errlen);
    snprintf(err, errlen,
             "run.dir %s already holds checkpoints of its own run: resume=%s (another run's "
             "checkpoint) would mix the two; choose a new run.dir",
             s->run_dir, s->resume);
    return 1;
}

static int resume_load(const jepa_spec *s, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                       char *path, size_t plen, char *err, size_t errlen) {
    int rc;
    if (!strcmp(s->resume, "none")) {
        if (!ckpt_dir_any(s->run_dir)) return 1;
        /* resume: none never overwrites a run that can be continued */
        snprintf(err, errlen,
                 "run.dir %s already holds checkpoints: set resume: auto (--set resume=auto) to "
                 "continue that run, or choose another run.dir",
                 s->run_dir);
        return -1;
    }
    if (!strcmp(s->resume, "auto")) {
        rc = ckpt_dir_load(s->run_dir, m, want, got, path, plen, err, errlen);
        if (rc == 1) {
            snprintf(path, plen, "%s/checkpoint.bin", s->run_dir);
            if (access(path, F_OK) != 0) return 1; /* a new run, or one killed before its first */
            rc = ckpt_load(path, m, want, got, err, errlen);
        }
    } else {
        snprintf(path, plen, "%s", s->resume);
        rc = ckpt_load(s->resume, m, want, got, err, errlen);
    }
    if (rc == CKPT_ERR_MISMATCH) { /* auto: the run's own files, path may be unset */
        char at[SPEC_STR_MAX + 32];
        snprintf(at, sizeof at, "%s/checkpoint.bin", s->run_dir);
        name_changed_key(s, strcmp(s->resume, "auto") ? s->resume : at, err, errlen);
    }
    if (rc != CKPT_OK) return -1;
    if (s->train.steps > 0 && s->train.steps != got->total_steps) {
        snprintf(err, errlen,
                 "%s: written for a schedule of %lld steps, but train.steps is %lld: the lr, "
                 "wd and EMA schedules would change; resume with train.steps=%lld",
                 path, (long long)got->total_steps, (long long)s->train.steps,
                 (long long)got->total_steps);
        return -1;
    }
    /* The data the ranks' readers would continue on, checked by the same
     * code now: a resume on another data set is refused before
     * train_write_run_dir touches the run directory (issue 16). */
    shard_reader *rd = NULL;
    char why[SPEC_ERR_MAX];
    int B = (int)(got->reader.global_batch / want->world); /* ckpt_load checked it divides */
    if (shard_reader_init_at(&rd, s->data.train, 0, (int)want->world, (uint64_t)s->seed, B,
                             s->data.shuffle_buffer, 0, &got->reader, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", path, why); /* why names data.train */
        return -1;
    }
    shard_reader_free(rd);
    return 0;
}

/* Rank 0: the checkpoint `resume` asks for, into m and *got. 1: nothing to
 * resume (a fresh start), 0: loaded (path names it), -1 + err. */
int train_resume_load(const jepa_spec *s, jepa_model *m, const ckpt_meta *want, ckpt_meta *got,
                       char *path, size_t plen, char *err, size_t errlen) {
    int rc = resume_load(s, m, want, got, path, plen, err, errlen);
    if (rc == 1 && finished_run(s->run_dir, err, errlen)) return -1;
    if (rc == 0 && strcmp(s->resume, "auto") && foreign_resume(s, err, errlen)) return -1;
    return rc;
}

/* A resumed run continues metrics.jsonl: lines past the checkpoint's step
 * (logged before a crash) and a line cut short are dropped, so the file ends
 * as an uninterrupted run's would. Returns the file open for appending. */
FILE *train_metrics_open_at(const char *path, int64_t upto, char *err, size_t errlen) {
    FILE *in = spec_fopen_regular(path, err, errlen); /* a FIFO: refused, never waited on */
    if (!in && errno != ENOENT) return NULL;
    if (in) {
        char tmp[SPEC_STR_MAX + 48], line[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *out = fopen(tmp, "w");
        if (!out) {
            fclose(in);
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            return NULL;
        }
        while (fgets(line, sizeof line, in)) {
            size_t n = strlen(line);
            long long st;
            if (n == 0 || line[n - 1] != '\n') continue; /* cut short by a crash */
            if (sscanf(line, "{\"step\": %lld,", &st) != 1 || st > upto) continue;
            fputs(line, out);
        }
        fclose(in);
        errno = 0;
        if (shard_tmp_commit(out, !ferror(out), tmp, path, err, errlen)) return NULL;
    }
    FILE *f = fopen(path, "a");
    if (!f) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

void train_metrics_stats_at(const char *path, int64_t step, const char *const *names, int n, double *stat) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096], key[80];
    while (fgets(line, sizeof line, f)) {
        long long st;
        if (sscanf(line, "{\"step\": %lld,", &st) != 1 || st != step) continue;
        for (int k = 1; k < n; k++) {
            snprintf(key, sizeof key, "\"%s\": ", names[k]);
            const char *p = strstr(line, key);
            if (p) stat[k] = strtod(p + strlen(key), NULL);
        }
    }
    fclose(f);
}

/* Under Slurm, with JEPA_REQUEUE=1 (jepa-launch slurm sets it for
 * slurm.requeue): puts the job back in the queue; it resumes with resume:
 * auto. posix_spawnp, never a shell: the job id is never read as shell text. */
const char *train_slurm_requeue_id(void) {
    const char *id = getenv("SLURM_JOB_ID"), *opt = getenv("JEPA_REQUEUE");
    if (!id || !*id || !opt || strcmp(opt, "1")) return NULL;
    if (strspn(id, "0123456789") != strlen(id)) {
        fprintf(stderr, "jepa: warning: SLURM_JOB_ID '%s' is not a job number: not requeued\n", id);
        return NULL;
    }
    return id;
}

void train_slurm_requeue(void) {
    const char *id = train_slurm_requeue_id();
    if (!id) return;
    char *argv[] = {"scontrol", "requeue", (char *)id, NULL};
    extern char **environ;
    pid_t pid;
    int rc = posix_spawnp(&pid, "scontrol", NULL, NULL, argv, environ), st = 0;
    if (rc == 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        fprintf(stderr, "train: requeued Slurm job %s (scontrol requeue)\n", id);
        return;
    }
    fprintf(stderr, "jepa: warning: scontrol requeue %s failed (%s)\n", id,
            rc ? strerror(rc) : "non-zero exit");
}

FILE *train_trace_open(int rank) {
    const char *dir = getenv("JEPA_DEBUG_DATA_TRACE");
    if (!dir || !*dir) return NULL;
    char path[SPEC_STR_MAX + 32];
    snprintf(path, sizeof path, "%s/rank-%d.trace", dir, rank);
    FILE *f = fopen(path, "a");
    if (!f) fprintf(stderr, "jepa: warning: JEPA_DEBUG_DATA_TRACE: cannot write %s: %s\n", path,
                    strerror(errno));
    return f;
}

void train_trace_batch(FILE *f, int64_t step, int first, int n, const uint8_t *rec, size_t rb) {
    for (int i = 0; i < n; i++) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t k = 0; k < rb; k++) h = (h ^ rec[(size_t)i * rb + k]) * 0x100000001b3ULL;
        fprintf(f, "%lld %d %016llx\n", (long long)step, first + i, (unsigned long long)h);
    }
    fflush(f);
}

/* Collective: rank 0 writes the checkpoint of cm->step completed steps into
 * the run directory. Reader positions are equal on every rank by
 * construction and the file stores one: checked here. */
void train_save_checkpoint(const jepa_spec *s, const jepa_model *m, ckpt_meta *cm,
                            shard_reader *rd, char *path, size_t plen) {
    shard_reader_get_state(rd, &cm->reader);
    shard_reader_state r0 = cm->reader;
    comm_bcast_bytes(&r0, sizeof r0, 0);
    int who = comm_any_error(memcmp(&r0, &cm->reader, sizeof r0) != 0);
    if (who >= 0) {
        if (comm_rank() == 0)
            comm_fatal("step %lld: rank %d's data reader position differs from rank 0's",
                       (long long)cm->step, who);
        comm_wait_idle();
    }
    if (comm_rank() != 0) return;
    char err[SPEC_ERR_MAX];
    if (ckpt_dir_save(s->run_dir, s->checkpoint.keep, m, cm, path, plen, err, sizeof err))
        comm_fatal("step %lld: %s", (long long)cm->step, err);
}

