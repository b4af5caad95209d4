/* spec.h - the run spec: one YAML file that describes a run.
 *
 * One table of keys (spec.c) drives YAML parsing (libyaml), `--set key=value`
 * overrides, validation (type, range, choices), defaults, the resolved spec
 * written to the run directory, `--help` text and the config hash stored in
 * checkpoints. The trainer and the launcher both use this module, so a spec
 * means the same thing to both. It knows nothing of the model.
 *
 * Errors are returned as one line in a caller-owned buffer, in the form
 *   FILE:LINE:COL: key.path: what is wrong (hint)
 * and the caller prints it and exits non-zero. */
#ifndef JEPA_SPEC_H
#define JEPA_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define SPEC_STR_MAX 512
#define SPEC_ERR_MAX 1024

typedef struct {
    int64_t seed;
    char run_dir[SPEC_STR_MAX];
    char objective[16]; /* "ijepa", "lejepa" or "world": what the loop trains */

    struct {
        int img_size, channels, patch;
        int width, depth, heads, mlp_ratio;
        int pred_width, pred_depth, pred_heads;
    } model;

    struct {
        char pred_in[16]; /* I-JEPA predictor input: "fanin" or "trunc_normal" */
    } init;

    struct {
        /* shard directories written by `jepa-shard pack` */
        char train[SPEC_STR_MAX]; /* training set (also the probe's training set) */
        char test[SPEC_STR_MAX];  /* the probe's test set */
        int shuffle_buffer;       /* records in each rank's shuffle buffer */
        int prefetch;             /* batches decoded ahead by the reader thread */
    } data;

    struct {
        int64_t steps;      /* 0: derive from `epochs`, else from `minutes` */
        double epochs;      /* passes over the training set (used when steps is 0) */
        double minutes;     /* wall-clock budget; 0: no limit (needs steps) */
        int batch_per_rank;
        int log_every;
    } train;

    struct {
        double lr, min_lr, warmup_frac;
        double wd_start, wd_end;
        double beta1, beta2, eps;
    } optim;

    struct {
        double start, end;
    } ema;

    struct {
        int num_targets;
        double target_scale_min, target_scale_max;
        double target_aspect_min, target_aspect_max;
        double context_scale_min, context_scale_max;
        int min_keep;
        char context_cut[16]; /* "resample" or "batch_min" */
        char block_round[16]; /* "area" or "nearest" */
        char pred_pass[16];   /* "per_block" or "joint": target blocks per predictor pass */
    } mask;

    struct {
        char type[16]; /* "smooth_l1" or "l2" */
        double beta;   /* smooth-L1 transition point */
    } loss;

    struct {
        int crop; /* one augmented view per image (aug.global_scale_*, aug.ratio_*, aug.flip,
                   * aug.brightness/contrast) before masking; 0: the image as stored */
        double global_weight; /* weight of the pooled-context -> whole-image target term */
        char global_loss[16]; /* that term: "regress" (the whole-image target) or "sigreg" */
        char target_precision[8]; /* "fp32" or "bf16": the EMA target forward's products */
    } ijepa;

    struct {
        int global_views, local_views; /* augmented views per image */
        int local_size;                /* side of a local view in pixels */
        int proj_hidden, proj_dim;     /* projector MLP widths */
    } lejepa;

    struct {
        double weight;   /* lambda: LeJEPA (1 - lambda) pred + lambda SIGReg; world: pred + lambda SIGReg */
        int directions;  /* random unit directions per step */
        int knots;       /* quadrature points on [0, t_max] */
        double t_max;
    } sigreg;

    struct {
        double global_scale_min, global_scale_max; /* crop area fractions */
        double local_scale_min, local_scale_max;
        double ratio_min, ratio_max;               /* crop aspect ratios */
        double flip;                               /* horizontal flip probability */
        double brightness, contrast;               /* jitter strengths; 0: off */
    } aug;

    struct {
        int history;          /* frames the predictor sees (teacher forcing) */
        int rollout;          /* autoregressive steps in the rollout loss; 0: none */
        double rollout_weight;
        int embed_dim;        /* frame embedding width (projector output) */
        double action_scale;  /* actions are multiplied by this before the predictor */
        int stopgrad_target;  /* 1: no gradient through the target embeddings */
    } world;

    struct {
        int probe;              /* run the linear probe at the end */
        char features[16];      /* "target" or "context": which encoder */
        double val_frac;        /* validation split of the training set */
        int max_iters;          /* optimiser iterations per weight decay */
        double wd_min;          /* the probe's smallest positive weight decay (a power of ten) */
        int wd_zero;            /* the probe's grid also fits without weight decay */
        int64_t every_steps;    /* steps between probes during training (0: end only) */
        int knn_k;              /* neighbours of the kNN classifier; 0: no kNN */
        double knn_temp;        /* temperature of its similarity-weighted votes */
        int fewlabel;           /* also probe with 1% and 10% of the training labels */
        int pool_blocks;        /* features: mean tokens of the last k blocks, concatenated */
        char precision[8];      /* "fp32" or "bf16": feature extraction's products */
    } eval;

    /* jepa-plan: CEM/MPC in a world from world/ with a world model (docs/world.md) */
    struct {
        int episodes;              /* tasks, each run by every method */
        int64_t seed;              /* seeds the tasks and the planners' randomness */
        char world[32];            /* the world's registry name */
        char world_params[SPEC_STR_MAX]; /* "name=value ..." over the world's defaults */
        int samples, topk, horizon, iterations; /* CEM: N, K, blocks, refits */
        int repeat;                /* steps each block's action is held (frame skip) */
        int execute;               /* blocks executed before replanning */
        int window;                /* frames the predictor sees while planning (1); 0: world.history */
        double init_std;           /* initial std per action component, x the action bound */
        char cost[16];             /* "final" or "all": which predicted embeddings are scored */
        double budget_factor;      /* step budget = ceil(this x shortest-path steps) */
        double success_radius;     /* success: position within this of the goal's (world units) */
        int pictures;              /* episodes drawn as PNG */
        int random_init;           /* also the random-init baseline (doubles the planning time) */
    } plan;

    struct {
        int ranks, threads_per_rank;
        double bucket_mb;       /* gradient all-reduce bucket size */
        int blocking_allreduce; /* one blocking MPI_Allreduce after backward */
        int check_every;        /* steps between replica hash checks (0: end only) */
        int nodes;              /* machines the ranks span (Slurm) */
        char transport[16];     /* "auto", "shm" or "tcp": Open MPI's btl */
    } parallel;

    struct {
        int64_t every_steps;
        double every_minutes; /* also every this many minutes (rank 0's clock); 0: off */
        int keep;
    } checkpoint;

    char resume[SPEC_STR_MAX]; /* "auto", "none" or a path */
    int max_restarts;

    /* read by `jepa-launch slurm` only; empty strings and 0 mean "not set" */
    struct {
        char partition[SPEC_STR_MAX], account[SPEC_STR_MAX], time[SPEC_STR_MAX];
        char job_name[SPEC_STR_MAX];
        int nodes, tasks_per_node, cpus_per_task; /* 0: derived from parallel.* */
        char signal[SPEC_STR_MAX]; /* --signal=..., e.g. USR1@90 (checkpoint before the limit) */
        int requeue;
        char mpi[SPEC_STR_MAX];    /* srun --mpi= plugin */
        char extra[SPEC_STR_MAX];  /* more #SBATCH options, one per line */
    } slurm;
} jepa_spec;

/* Fills every field with its documented default. */
void spec_defaults(jepa_spec *s);

/* Parses a YAML run spec over the current contents of *s (call spec_defaults
 * first). Unknown keys, wrong types and out-of-range values are errors.
 * Returns 0, or -1 with a one-line message in err; on -1 *s is unchanged.
 * Keys may nest (`optim:\n  lr: 1e-3`) or be dotted (`optim.lr: 1e-3`). */
int spec_load_file(jepa_spec *s, const char *path, char *err, size_t errlen);
#define SPEC_FILE_MAX ((size_t)1 << 20) /* a run spec is a page; more is a wrong file */
int spec_load_string(jepa_spec *s, const char *yaml, const char *name, char *err, size_t errlen);

/* The one bounded reader of the trainer's and the launcher's text files:
 * the whole of the regular file at path, NUL-terminated, in *text (malloc'd;
 * the caller frees), its length in *len (may be NULL). Refused in one line
 * naming the file, before anything is read into memory where possible: it
 * cannot be opened ("cannot open PATH: why"), it is a directory ("cannot
 * read PATH: Is a directory"), it is not a regular file (a device such as
 * /dev/zero, a FIFO, a socket: they may never end), it holds more than max
 * bytes, also when it grew while read ("PATH: larger than MAX bytes; not a
 * WHAT?"). 0, or -1 + err with errno set (ENOENT: no such file). */
int spec_read_file(const char *path, size_t max, const char *what, char **text, size_t *len, char *err,
                   size_t errlen);
/* The open (O_RDONLY) regular file at path and its size, for readers that
 * take only part of a file (the end of a long log); refused as
 * spec_read_file refuses. fd, or -1 + err with errno set. */
int spec_open_regular(const char *path, off_t *size, char *err, size_t errlen);
/* Every other input of the trainer and the launcher (a checkpoint, RUN/latest,
 * a .npy file, a log) opens here, never with fopen: a FIFO's blocking open
 * would wait for a writer that may never come, where no signal ends it. The
 * file opened "rb" (the caller fcloses it), or NULL + err with errno set, as
 * spec_open_regular: "cannot open PATH: why" (ENOENT: no such file), "cannot
 * read PATH: Is a directory" (EISDIR), "PATH: not a regular file (a device,
 * FIFO or socket may never end)" (EINVAL). */
FILE *spec_fopen_regular(const char *path, char *err, size_t errlen);

/* Applies one override "key.path=value" (as given to --set); splits at the
 * first '='. On -1 (err: "--set key.path=value: what") *s is unchanged. */
int spec_set(jepa_spec *s, const char *assignment, char *err, size_t errlen);

/* Cross-field checks (e.g. steps and minutes both zero). 0 or -1 + err. */
int spec_validate(const jepa_spec *s, char *err, size_t errlen);

/* Writes the fully resolved spec as YAML (every key, defaults included);
 * spec_load_string of the output reproduces *s exactly. 0, or -1 on a write
 * error or a string field that is not NUL-terminated UTF-8. */
int spec_write(const jepa_spec *s, FILE *f);

/* Looks up a key: writes its current value as text. 0, or -1 if unknown or
 * if the value does not fit in outlen. */
int spec_get(const jepa_spec *s, const char *key, char *out, size_t outlen);

/* FNV-1a hash of the fields that define the model's shape (model.*); a
 * checkpoint stores it so a mismatched config is refused. */
uint64_t spec_model_hash(const jepa_spec *s);

/* Prints every key with type, default and help (for --help). */
void spec_print_help(FILE *f);

#endif
