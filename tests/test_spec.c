/* test_spec.c - the run spec: documented defaults, both YAML forms, --set,
 * exact error lines, cross-field checks, the resolved-spec round trip and the
 * model hash. Expected values are written out here by hand, not read back
 * from spec.c's table, so a wrong table row fails a test. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"
#include "testutil.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Every key with its documented default (docs/run-spec.md), as text. */
static const struct {
    const char *key, *def;
} documented[] = {
    {"seed", "0"},
    {"run.dir", "runs/fmnist-tiny"},
    {"model.img_size", "28"},
    {"model.channels", "1"},
    {"model.patch", "4"},
    {"model.width", "128"},
    {"model.depth", "6"},
    {"model.heads", "4"},
    {"model.mlp_ratio", "4"},
    {"model.pred_width", "64"},
    {"model.pred_depth", "4"},
    {"model.pred_heads", "4"},
    {"init.pred_in", "fanin"},
    {"data.train", "data/fmnist/train"},
    {"data.test", "data/fmnist/test"},
    {"data.shuffle_buffer", "8192"},
    {"data.prefetch", "4"},
    {"parallel.bucket_mb", "4"},
    {"parallel.blocking_allreduce", "false"},
    {"parallel.check_every", "100"},
    {"train.steps", "0"},
    {"train.epochs", "0"},
    {"train.minutes", "10"},
    {"train.batch_per_rank", "128"},
    {"train.log_every", "10"},
    {"optim.lr", "1e-3"},
    {"optim.min_lr", "1e-6"},
    {"optim.warmup_frac", "0.05"},
    {"optim.wd_start", "0.04"},
    {"optim.wd_end", "0.4"},
    {"optim.beta1", "0.9"},
    {"optim.beta2", "0.999"},
    {"optim.eps", "1e-8"},
    {"ema.start", "0.996"},
    {"ema.end", "1.0"},
    {"mask.num_targets", "4"},
    {"mask.target_scale_min", "0.15"},
    {"mask.target_scale_max", "0.2"},
    {"mask.target_aspect_min", "0.75"},
    {"mask.target_aspect_max", "1.5"},
    {"mask.context_scale_min", "0.85"},
    {"mask.context_scale_max", "1.0"},
    {"mask.min_keep", "4"},
    {"mask.context_cut", "resample"},
    {"mask.block_round", "area"},
    {"mask.pred_pass", "per_block"},
    {"loss.type", "smooth_l1"},
    {"loss.beta", "1.0"},
    {"objective", "ijepa"},
    {"lejepa.global_views", "2"},
    {"lejepa.local_views", "4"},
    {"lejepa.local_size", "16"},
    {"lejepa.proj_hidden", "512"},
    {"lejepa.proj_dim", "64"},
    {"sigreg.weight", "0.05"},
    {"sigreg.directions", "256"},
    {"sigreg.knots", "17"},
    {"sigreg.t_max", "3"},
    {"aug.global_scale_min", "0.3"},
    {"aug.global_scale_max", "1"},
    {"aug.local_scale_min", "0.05"},
    {"aug.local_scale_max", "0.3"},
    {"aug.ratio_min", "0.75"},
    {"aug.ratio_max", "1.3333333333333333"},
    {"aug.flip", "0.5"},
    {"aug.brightness", "0"},
    {"aug.contrast", "0"},
    {"world.history", "4"},
    {"world.rollout", "2"},
    {"world.rollout_weight", "1"},
    {"world.embed_dim", "64"},
    {"world.action_scale", "16.666666666666668"},
    {"world.stopgrad_target", "false"},
    {"eval.knn_k", "20"},
    {"eval.knn_temp", "0.07"},
    {"eval.fewlabel", "true"},
    {"eval.pool_blocks", "1"},
    {"eval.precision", "fp32"},
    {"eval.probe", "true"},
    {"eval.features", "target"},
    {"eval.val_frac", "0.1"},
    {"eval.max_iters", "200"},
    {"eval.wd_min", "1e-5"},
    {"eval.wd_zero", "true"},
    {"plan.episodes", "100"},
    {"plan.seed", "0"},
    {"plan.world", "tworoom"},
    {"plan.world_params", ""},
    {"plan.samples", "300"},
    {"plan.topk", "30"},
    {"plan.horizon", "5"},
    {"plan.iterations", "10"},
    {"plan.repeat", "5"},
    {"plan.execute", "1"},
    {"plan.window", "1"},
    {"plan.init_std", "1"},
    {"plan.cost", "all"},
    {"plan.budget_factor", "3"},
    {"plan.success_radius", "0.1"},
    {"plan.pictures", "4"},
    {"plan.random_init", "true"},
    {"parallel.ranks", "1"},
    {"parallel.threads_per_rank", "2"},
    {"checkpoint.every_steps", "0"},
    {"checkpoint.every_minutes", "0"},
    {"checkpoint.keep", "3"},
    {"resume", "none"},
    {"max_restarts", "0"},
    {"eval.every_steps", "0"},
    {"parallel.nodes", "1"},
    {"parallel.transport", "auto"},
    {"slurm.partition", ""},
    {"slurm.account", ""},
    {"slurm.time", ""},
    {"slurm.job_name", "jepa"},
    {"slurm.nodes", "0"},
    {"slurm.tasks_per_node", "0"},
    {"slurm.cpus_per_task", "0"},
    {"slurm.signal", "USR1@90"},
    {"slurm.requeue", "false"},
    {"slurm.mpi", "pmix"},
    {"slurm.extra", ""},
};

/* A non-default value for every key (and a valid spec as a whole). */
static const char *const every_key_changed[] = {
    "seed=9007199254740993", /* > 2^53: an int64 that a double would round */
    "run.dir=runs/other",
    "model.img_size=32", "model.channels=3", "model.patch=8", "model.width=96", "model.depth=3",
    "model.heads=3", "model.mlp_ratio=2", "model.pred_width=48", "model.pred_depth=2", "model.pred_heads=6",
    "data.train=/d/a", "data.test=/d/c", "data.shuffle_buffer=77", "data.prefetch=0",
    "parallel.bucket_mb=0.5", "parallel.blocking_allreduce=true", "parallel.check_every=7",
    "train.steps=12345678901", "train.epochs=1.5", "train.minutes=2.5", "train.batch_per_rank=7", "train.log_every=3",
    "optim.lr=0.1234567890123", "optim.min_lr=1e-300", "optim.warmup_frac=0.3333333333333333",
    "optim.wd_start=0.05", "optim.wd_end=0.1", "optim.beta1=0.8", "optim.beta2=0.95", "optim.eps=1.5e-7",
    "ema.start=0.5", "ema.end=0.75",
    "mask.num_targets=2", "mask.target_scale_min=0.1", "mask.target_scale_max=0.3",
    "mask.target_aspect_min=0.5", "mask.target_aspect_max=2", "mask.context_scale_min=0.7",
    "mask.context_scale_max=0.9", "mask.min_keep=5", "mask.context_cut=batch_min", "mask.block_round=nearest",
    "mask.pred_pass=joint",
    "init.pred_in=trunc_normal",
    "objective=world", "lejepa.global_views=3", "lejepa.local_views=6", "lejepa.local_size=24",
    "lejepa.proj_hidden=256", "lejepa.proj_dim=32", "sigreg.weight=0.125", "sigreg.directions=64",
    "sigreg.knots=9", "sigreg.t_max=4", "aug.global_scale_min=0.4", "aug.global_scale_max=0.9",
    "aug.local_scale_min=0.1", "aug.local_scale_max=0.2", "aug.ratio_min=0.5", "aug.ratio_max=2",
    "aug.flip=0.25", "aug.brightness=0.2", "aug.contrast=0.3", "world.history=6", "world.rollout=3",
    "world.rollout_weight=0.5", "world.embed_dim=32", "world.action_scale=10",
    "world.stopgrad_target=true", "eval.knn_k=10", "eval.knn_temp=0.1", "eval.fewlabel=false",
    "eval.pool_blocks=2",
    "eval.precision=bf16",
    "plan.episodes=7", "plan.seed=5", "plan.world=other", "plan.world_params=door_width=0.3 radius=0.04",
    "plan.samples=200", "plan.topk=20", "plan.horizon=6", "plan.iterations=3", "plan.repeat=2",
    "plan.execute=2", "plan.window=2", "plan.init_std=0.5", "plan.cost=final", "plan.budget_factor=4",
    "plan.success_radius=0.05", "plan.pictures=0", "plan.random_init=false",
    "loss.type=l2", "loss.beta=0.25", "eval.probe=no", "eval.features=context", "eval.val_frac=0.2",
    "eval.max_iters=17", "eval.wd_min=1e-8", "eval.wd_zero=false", "parallel.ranks=4", "parallel.threads_per_rank=8",
    "checkpoint.every_steps=500", "checkpoint.every_minutes=2.5", "checkpoint.keep=1", "resume=auto", "max_restarts=2",
    "eval.every_steps=51", "parallel.nodes=2", "parallel.transport=tcp",
    "slurm.partition=debug", "slurm.account=proj 1", "slurm.time=01:30:00", "slurm.job_name=j \"x\"",
    "slurm.nodes=2", "slurm.tasks_per_node=3", "slurm.cpus_per_task=4", "slurm.signal=USR2@60",
    "slurm.requeue=true", "slurm.mpi=pmi2", "slurm.extra=--exclusive\n--mem=4G",
};

static void set_ok(jepa_spec *s, const char *assignment) {
    char err[SPEC_ERR_MAX] = "";
    int rc = spec_set(s, assignment, err, sizeof err);
    if (rc) fprintf(stderr, "\n  spec_set(%s): %s\n", assignment, err);
    CU_ASSERT_EQUAL(rc, 0);
}

static void load_ok(jepa_spec *s, const char *yaml) {
    char err[SPEC_ERR_MAX] = "";
    int rc = spec_load_string(s, yaml, "t.yaml", err, sizeof err);
    if (rc) fprintf(stderr, "\n  load: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
}

/* err contains want; prints both when it does not, so a failure is readable. */
static void check_contains(const char *err, const char *want, size_t row) {
    int ok = strstr(err, want) != NULL;
    if (!ok) fprintf(stderr, "\n  row %zu want: %s\n         got:  %s\n", row, want, err);
    CU_ASSERT(ok);
}

enum { OUT_MAX = 1 << 16 }; /* the resolved spec is a few KiB even with escapes */

/* The resolved YAML of s, NUL-terminated in out[OUT_MAX]. */
static void write_string(const jepa_spec *s, char *out) {
    FILE *f = fmemopen(out, OUT_MAX, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(spec_write(s, f), 0);
    CU_ASSERT(ftell(f) < OUT_MAX - 1);
    fclose(f);
}

static void test_defaults_documented(void) {
    jepa_spec s;
    char err[SPEC_ERR_MAX], got[SPEC_STR_MAX];
    spec_defaults(&s);
    /* fields directly, against the documented numbers */
    CU_ASSERT_EQUAL(s.seed, 0);
    CU_ASSERT_STRING_EQUAL(s.run_dir, "runs/fmnist-tiny");
    CU_ASSERT(s.model.img_size == 28 && s.model.channels == 1 && s.model.patch == 4);
    CU_ASSERT(s.model.width == 128 && s.model.depth == 6 && s.model.heads == 4 && s.model.mlp_ratio == 4);
    CU_ASSERT(s.model.pred_width == 64 && s.model.pred_depth == 4 && s.model.pred_heads == 4);
    CU_ASSERT_STRING_EQUAL(s.data.train, "data/fmnist/train");
    CU_ASSERT_STRING_EQUAL(s.data.test, "data/fmnist/test");
    CU_ASSERT(s.data.shuffle_buffer == 8192 && s.data.prefetch == 4);
    CU_ASSERT(s.train.steps == 0 && s.train.minutes == 10.0 && s.train.batch_per_rank == 128 && s.train.log_every == 10);
    CU_ASSERT(s.optim.lr == 1e-3 && s.optim.min_lr == 1e-6 && s.optim.warmup_frac == 0.05);
    CU_ASSERT(s.optim.wd_start == 0.04 && s.optim.wd_end == 0.4);
    CU_ASSERT(s.optim.beta1 == 0.9 && s.optim.beta2 == 0.999 && s.optim.eps == 1e-8);
    CU_ASSERT(s.ema.start == 0.996 && s.ema.end == 1.0);
    CU_ASSERT(s.mask.num_targets == 4 && s.mask.target_scale_min == 0.15 && s.mask.target_scale_max == 0.2);
    CU_ASSERT(s.mask.target_aspect_min == 0.75 && s.mask.target_aspect_max == 1.5);
    CU_ASSERT(s.mask.context_scale_min == 0.85 && s.mask.context_scale_max == 1.0 && s.mask.min_keep == 4);
    CU_ASSERT_STRING_EQUAL(s.loss.type, "smooth_l1");
    CU_ASSERT_EQUAL(s.loss.beta, 1.0);
    CU_ASSERT(s.eval.probe == 1 && s.eval.val_frac == 0.1 && s.eval.max_iters == 200);
    CU_ASSERT_STRING_EQUAL(s.eval.features, "target");
    CU_ASSERT(s.parallel.ranks == 1 && s.parallel.threads_per_rank == 2);
    CU_ASSERT(s.checkpoint.every_steps == 0 && s.checkpoint.keep == 3);
    CU_ASSERT_STRING_EQUAL(s.resume, "none");
    CU_ASSERT_EQUAL(s.max_restarts, 0);
    CU_ASSERT(s.eval.every_steps == 0 && s.parallel.nodes == 1);
    CU_ASSERT_STRING_EQUAL(s.parallel.transport, "auto");
    CU_ASSERT(!*s.slurm.partition && !*s.slurm.account && !*s.slurm.time && !*s.slurm.extra);
    CU_ASSERT_STRING_EQUAL(s.slurm.job_name, "jepa");
    CU_ASSERT(s.slurm.nodes == 0 && s.slurm.tasks_per_node == 0 && s.slurm.cpus_per_task == 0 && !s.slurm.requeue);
    CU_ASSERT_STRING_EQUAL(s.slurm.signal, "USR1@90");
    CU_ASSERT_STRING_EQUAL(s.slurm.mpi, "pmix");
    /* every documented key exists and spec_get reports its default */
    for (size_t i = 0; i < COUNT(documented); i++) {
        int rc = spec_get(&s, documented[i].key, got, sizeof got);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc) continue;
        char *end;
        double want = strtod(documented[i].def, &end);
        if (end != documented[i].def && *end == '\0') { /* a number ("" is not one) */
            CU_ASSERT_EQUAL(strtod(got, NULL), want);
        } else if (strcmp(documented[i].def, "true") == 0) {
            CU_ASSERT_STRING_EQUAL(got, "true");
        } else {
            CU_ASSERT_STRING_EQUAL(got, documented[i].def);
        }
    }
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), 0);
}

static void test_nested_and_dotted_equal(void) {
    const char *nested = "optim:\n  lr: 0.002\n  beta2: 0.98\nmodel:\n  depth: 8\nloss:\n  type: l2\n"
                         "eval:\n  probe: off\nresume: auto\n";
    const char *dotted = "optim.lr: 0.002\noptim.beta2: 0.98\nmodel.depth: 8\nloss.type: l2\n"
                         "eval.probe: off\nresume: auto\n";
    const char *mixed = "optim: {lr: 2e-3, beta2: 0.98}\nmodel.depth: 8\nloss: {type: \"l2\"}\n"
                        "eval.probe: 'off'\n\"resume\": auto\n";
    jepa_spec a, b, c;
    spec_defaults(&a), spec_defaults(&b), spec_defaults(&c);
    load_ok(&a, nested);
    load_ok(&b, dotted);
    load_ok(&c, mixed);
    CU_ASSERT(a.optim.lr == 0.002 && a.optim.beta2 == 0.98 && a.model.depth == 8 && a.eval.probe == 0);
    CU_ASSERT_STRING_EQUAL(a.loss.type, "l2");
    CU_ASSERT_STRING_EQUAL(a.resume, "auto");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    CU_ASSERT_EQUAL(memcmp(&a, &c, sizeof a), 0);
}

static void test_set_each_type(void) {
    jepa_spec s;
    spec_defaults(&s);
    set_ok(&s, "model.depth=12");                   /* int */
    set_ok(&s, "train.steps=5000000000");           /* int64 past 2^32 */
    set_ok(&s, "optim.lr=2.5e-4");                  /* double, exponent */
    set_ok(&s, "train.minutes=1e3");                /* double written as 1e3 */
    set_ok(&s, "eval.probe=no");                    /* bool */
    set_ok(&s, "run.dir=runs/a=b");                 /* string; only the first '=' splits */
    set_ok(&s, "eval.features=context");            /* enum */
    CU_ASSERT_EQUAL(s.model.depth, 12);
    CU_ASSERT_EQUAL(s.train.steps, 5000000000LL);
    CU_ASSERT_EQUAL(s.optim.lr, 2.5e-4);
    CU_ASSERT_EQUAL(s.train.minutes, 1000.0);
    CU_ASSERT_EQUAL(s.eval.probe, 0);
    CU_ASSERT_STRING_EQUAL(s.run_dir, "runs/a=b");
    CU_ASSERT_STRING_EQUAL(s.eval.features, "context");

    static const struct {
        const char *text;
        int want;
    } bools[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1},
                 {"off", 0},  {"1", 1},     {"0", 0},   {"TRUE", 1}, {"Off", 0}};
    for (size_t i = 0; i < COUNT(bools); i++) {
        char a[64];
        snprintf(a, sizeof a, "eval.probe=%s", bools[i].text);
        s.eval.probe = !bools[i].want;
        set_ok(&s, a);
        CU_ASSERT_EQUAL(s.eval.probe, bools[i].want);
    }
    set_ok(&s, "seed=9223372036854775807");
    CU_ASSERT_EQUAL(s.seed, INT64_MAX);
}

static void test_set_errors(void) {
    static const struct {
        const char *assignment, *want;
    } rows[] = {
        {"optim.lr", "--set optim.lr: missing '=' (expected key.path=value)"},
        {"optim.lrr=1", "--set optim.lrr=1: unknown key (did you mean 'optim.lr'?)"},
        {"warmup_frac=0.1", "--set warmup_frac=0.1: unknown key (did you mean 'optim.warmup_frac'?)"},
        {"nonsense.entirely=1", "--set nonsense.entirely=1: unknown key"},
        {"optim=1", "--set optim=1: unknown key ('optim' is a section, not a key: e.g. 'optim."},
        {"model.depth=abc", "--set model.depth=abc: expected an integer, got 'abc'"},
        {"model.depth=1.5", "--set model.depth=1.5: expected an integer, got '1.5'"},
        {"model.depth=1e3", "--set model.depth=1e3: expected an integer, got '1e3'"},
        {"model.depth=0x10", "--set model.depth=0x10: expected an integer, got '0x10'"},
        {"model.depth= 5", "--set model.depth= 5: expected an integer, got ' 5'"},
        {"model.depth=", "--set model.depth=: expected an integer, got ''"},
        {"model.depth=65", "--set model.depth=65: must be in [1, 64], got 65"},
        {"eval.wd_min=3e-6", "--set eval.wd_min=3e-6: must be a power of ten (0.1, 0.01, ..., 1e-12), got 3e-6"},
        {"seed=9223372036854775808", "--set seed=9223372036854775808: expected an integer"},
        {"seed=-1", "--set seed=-1: must be >= 0, got -1"},
        {"optim.lr=0", "--set optim.lr=0: must be in (0, 10], got 0"},
        {"optim.beta1=1", "--set optim.beta1=1: must be in [0, 1), got 1"},
        {"optim.lr=inf", "--set optim.lr=inf: expected a finite number, got 'inf'"},
        {"optim.lr=nan", "--set optim.lr=nan: expected a finite number, got 'nan'"},
        {"optim.lr=1e-3x", "--set optim.lr=1e-3x: expected a finite number, got '1e-3x'"},
        {"eval.probe=maybe", "--set eval.probe=maybe: expected a boolean (true/false, yes/no, on/off, 1/0), got 'maybe'"},
        {"loss.type=huber", "--set loss.type=huber: must be one of smooth_l1, l2, got 'huber'"},
        {"eval.features=both", "--set eval.features=both: must be one of target, context, got 'both'"},
        {"resume=", "--set resume=: must not be empty"},
        {"run.dir=\xff\xfe", "--set run.dir=\xff\xfe: is not valid UTF-8"},
    };
    for (size_t i = 0; i < COUNT(rows); i++) {
        jepa_spec s, before;
        char err[SPEC_ERR_MAX] = "";
        spec_defaults(&s);
        before = s;
        CU_ASSERT_EQUAL(spec_set(&s, rows[i].assignment, err, sizeof err), -1);
        check_contains(err, rows[i].want, i);
        CU_ASSERT_PTR_NULL(strchr(err, '\n'));
        CU_ASSERT_EQUAL(memcmp(&s, &before, sizeof s), 0); /* a failed set changes nothing */
    }
}

/* Bad YAML and the exact error each must produce (file:line:col: key: what). */
static const struct {
    const char *yaml, *want;
} bad_specs[] = {
    {"optim:\n  lrr: 0.1\n", "bad.yaml:2:3: optim.lrr: unknown key (did you mean 'optim.lr'?)"},
    {"optim.lrr: 0.1\n", "bad.yaml:1:1: optim.lrr: unknown key (did you mean 'optim.lr'?)"},
    {"lr: 0.1\n", "bad.yaml:1:1: lr: unknown key (did you mean 'optim.lr'?)"},
    {"optm:\n  lr: 1\n", "bad.yaml:1:1: optm: unknown key (did you mean 'optim'?)"},
    {"seed: 1\nkeep: 3\n", "bad.yaml:2:1: keep: unknown key (did you mean 'checkpoint.keep'?)"},
    {"model:\n  depth: abc\n", "bad.yaml:2:10: model.depth: expected an integer, got 'abc'"},
    {"model.depth: 2.5\n", "bad.yaml:1:14: model.depth: expected an integer, got '2.5'"},
    {"model.depth: 12abc\n", "bad.yaml:1:14: model.depth: expected an integer, got '12abc'"},
    {"train.steps: 99999999999999999999\n", "bad.yaml:1:14: train.steps: expected an integer, got '99999999999999999999'"},
    {"model.patch: 0\n", "bad.yaml:1:14: model.patch: must be in [1, 64], got 0"},
    {"eval:\n  wd_min: 2e-5\n", "bad.yaml:2:11: eval.wd_min: must be a power of ten (0.1, 0.01, ..., 1e-12), got 2e-5"},
    {"model:\n  width: 3000000000\n", "bad.yaml:2:10: model.width: must be in [8, 4096], got 3000000000"},
    {"optim:\n  lr: 0\n", "bad.yaml:2:7: optim.lr: must be in (0, 10], got 0"},
    {"optim.lr: x1\n", "bad.yaml:1:11: optim.lr: expected a finite number, got 'x1'"},
    {"eval:\n  val_frac: 0.6\n", "bad.yaml:2:13: eval.val_frac: must be in (0, 0.5], got 0.6"},
    {"eval.probe: maybe\n", "bad.yaml:1:13: eval.probe: expected a boolean"},
    {"loss:\n  type: huber\n", "bad.yaml:2:9: loss.type: must be one of smooth_l1, l2, got 'huber'"},
    {"optim:\n  lr: 0.1\noptim.lr: 0.2\n", "bad.yaml:3:1: optim.lr: duplicate key (first at line 2)"},
    {"optim:\n  lr: 0.1\n  lr: 0.2\n", "bad.yaml:3:3: optim.lr: duplicate key (first at line 2)"},
    {"optim:\n  lr: 0.1\noptim:\n  beta1: 0.8\n", "bad.yaml:3:1: optim: duplicate key (first at line 1)"},
    {"model:\n  depth: [1, 2]\n", "bad.yaml:2:10: model.depth: expected a scalar value, got a sequence"},
    {"resume: {a: 1}\n", "bad.yaml:1:9: resume: expected a scalar value, got a mapping"},
    {"optim: 5\n", "bad.yaml:1:8: optim: expected a mapping of optim.* keys, got a scalar"},
    {"optim.lr:\n", "bad.yaml:1:10: optim.lr: missing value"},
    {"optim:\n  lr: [1, 2\n", "bad.yaml:3:1: YAML syntax error: did not find expected ',' or ']'"},
    {"optim:\n  lr: 0.1\n   beta1: 2\n", "bad.yaml:3:9: YAML syntax error: mapping values are not allowed"},
    {"run.dir: \"open\n", "bad.yaml:2:1: YAML syntax error: found unexpected end of stream"},
    {"seed: 1\nrun.dir: \xff\n", "bad.yaml:2:10: YAML syntax error: invalid leading UTF-8 octet"},
    {"- a\n- b\n", "bad.yaml:1:1: expected a mapping of keys at top level, got a sequence"},
    {"", "bad.yaml:1:1: empty spec"},
    {"# nothing but a comment\n", "bad.yaml:1:1: empty spec"},
    {"seed: 1\n---\nseed: 2\n", "bad.yaml:3:1: more than one YAML document"},
    {"&a {optim: *a}\n", "bad.yaml:1:5: optim.optim: unknown key"}, /* a self-referencing alias ends */
    {"run.dir: \"a\\0b\"\n", "bad.yaml:1:10: run.dir: contains a NUL byte"},
    {"[1]: 2\n", "bad.yaml:1:1: expected a scalar key, got a sequence"},
    {"parallel.transport: ib\n", "bad.yaml:1:21: parallel.transport: must be one of auto, shm, tcp, got 'ib'"},
    {"parallel:\n  nodes: 0\n", "bad.yaml:2:10: parallel.nodes: must be in [1, 4096], got 0"},
    {"slurm:\n  nodes: -1\n", "bad.yaml:2:10: slurm.nodes: must be in [0, 4096], got -1"},
    {"slurm.job_name: \"\"\n", "bad.yaml:1:17: slurm.job_name: must not be empty"},
    {"slurm:\n  partitoin: x\n", "bad.yaml:2:3: slurm.partitoin: unknown key (did you mean 'slurm.partition'?)"},
    {"slurm.requeue: sometimes\n", "bad.yaml:1:16: slurm.requeue: expected a boolean"},
    {"eval:\n  every_steps: 1.5\n", "bad.yaml:2:16: eval.every_steps: expected an integer, got '1.5'"},
    {"slurm: [a]\n", "bad.yaml:1:8: slurm: expected a mapping of slurm.* keys, got a sequence"},
};

static void test_bad_specs(void) {
    for (size_t i = 0; i < COUNT(bad_specs); i++) {
        jepa_spec s, before;
        char err[SPEC_ERR_MAX] = "";
        spec_defaults(&s);
        before = s;
        CU_ASSERT_EQUAL(spec_load_string(&s, bad_specs[i].yaml, "bad.yaml", err, sizeof err), -1);
        check_contains(err, bad_specs[i].want, i);
        CU_ASSERT_PTR_NULL(strchr(err, '\n'));             /* one line */
        CU_ASSERT_EQUAL(memcmp(&s, &before, sizeof s), 0); /* a failed load changes nothing */
    }
}

/* flow nesting deeper than 64 is refused before libyaml (whose time grows
 * with the square of the depth) reads it; 64 levels go through to the
 * normal checks; brackets in quoted scalars and comments do not count */
static void test_flow_depth(void) {
    static char text[600000];
    char err[SPEC_ERR_MAX] = "";
    jepa_spec s;
    static const int depths[] = {64, 65, 100000};
    for (size_t d = 0; d < COUNT(depths); d++) {
        int depth = depths[d];
        int n = snprintf(text, sizeof text, "optim: ");
        for (int i = 0; i < depth; i++) text[n++] = '[';
        for (int i = 0; i < depth; i++) text[n++] = ']';
        text[n] = 0;
        spec_defaults(&s);
        CU_ASSERT_EQUAL(spec_load_string(&s, text, "deep.yaml", err, sizeof err), -1);
        if (depth == 64) check_contains(err, "deep.yaml:1:8: optim: expected a mapping", 0);
        else check_contains(err, "deep.yaml:1:72: flow collections nested more than 64 deep", (size_t)depth);
    }
    char quiet[400];
    int n = snprintf(quiet, sizeof quiet, "run.dir: \"");
    for (int i = 0; i < 100; i++) quiet[n++] = '[';
    n += snprintf(quiet + n, sizeof quiet - n, "\"\n# %s\ntrain.steps: 5\n", "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{");
    spec_defaults(&s);
    CU_ASSERT_EQUAL(spec_load_string(&s, quiet, "q.yaml", err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.run_dir[0], '[');
}

static void test_load_file(void) {
    char path[] = "/tmp/test_spec_XXXXXX", err[SPEC_ERR_MAX] = "";
    jepa_spec s;
    spec_defaults(&s);
    CU_ASSERT_EQUAL(spec_load_file(&s, "/nonexistent/dir/run.yaml", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "cannot open /nonexistent/dir/run.yaml: No such file or directory");

    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "# a spec\nmodel:\n  depth: 2\ntrain.steps: 40\n";
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    CU_ASSERT_EQUAL(spec_load_file(&s, path, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.model.depth, 2);
    CU_ASSERT_EQUAL(s.train.steps, 40);

    FILE *f = fopen(path, "w"); /* now empty */
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_EQUAL(spec_load_file(&s, path, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:1:1: empty spec", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    unlink(path);
}

static void test_validate_cross_field(void) {
    static const struct {
        const char *set[3], *want; /* NULL: the spec must be valid */
    } rows[] = {
        {{"train.steps=0", "train.minutes=0"}, "train.steps, train.epochs, train.minutes: all are 0"},
        {{"train.steps=100", "train.minutes=0"}, NULL},
        {{"model.img_size=30", NULL}, "model.img_size: 30 is not a multiple of model.patch (4)"},
        {{"model.heads=3", NULL}, "model.width: 128 is not a multiple of model.heads (3)"},
        {{"model.width=90", "model.heads=3"}, "model.width: 90 is not a multiple of 4"},
        {{"model.pred_heads=5", NULL}, "model.pred_width: 64 is not a multiple of model.pred_heads (5)"},
        {{"model.pred_width=66", "model.pred_heads=3"}, "model.pred_width: 66 is not a multiple of 4"},
        {{"eval.every_steps=25", NULL}, "eval.every_steps: 25 is not a multiple of train.log_every (10)"},
        {{"eval.every_steps=30", "train.log_every=20"}, "eval.every_steps: 30 is not a multiple of train.log_every (20)"},
        {{"mask.target_scale_min=0.3", NULL}, "mask.target_scale_min: 0.3 is greater than mask.target_scale_max (0.2)"},
        {{"mask.target_aspect_min=2", NULL}, "mask.target_aspect_min: 2.0 is greater than mask.target_aspect_max (1.5)"},
        {{"mask.context_scale_max=0.8", NULL}, "mask.context_scale_min: 0.85 is greater than mask.context_scale_max (0.8)"},
        {{"ema.start=0.999", "ema.end=0.99"}, "ema.start: 0.999 is greater than ema.end (0.99)"},
        {{"optim.min_lr=0.01", NULL}, "optim.min_lr: 0.01 is greater than optim.lr (0.001)"},
        {{"mask.min_keep=50", NULL}, "mask.min_keep: 50 is more than the 49 patches"},
        {{"mask.min_keep=49", NULL}, NULL},
        {{"resume=/nonexistent/ckpt.bin", NULL}, "resume: '/nonexistent/ckpt.bin' does not exist"},
        {{"resume=auto", NULL}, NULL},
        {{"resume=/tmp", NULL}, NULL},
        {{"ema.start=1", "ema.end=1"}, NULL},
        {{"plan.topk=301", NULL}, "plan.topk: 301 is more than plan.samples (300)"},
        {{"plan.topk=300", NULL}, NULL},
        {{"plan.execute=3", "plan.horizon=2"}, "plan.execute: 3 blocks is more than plan.horizon (2)"},
        {{"plan.execute=5", NULL}, NULL},
        /* world.rollout <= world.history - 1, for objective world only
         * (before, only jepa-train's world_create refused it, after mpirun) */
        {{"objective=world", "world.history=1"}, "world.rollout: 2 steps need world.history >= 3 (world.history is 1)"},
        {{"objective=world", "world.history=2"}, "world.rollout: 2 steps need world.history >= 3 (world.history is 2)"},
        {{"objective=world", "world.history=3"}, NULL},
        {{"objective=world", "world.history=1", "world.rollout=0"}, NULL},
        {{"world.history=1", NULL}, NULL},
        /* lejepa.local_size matters to LeJEPA's local views only */
        {{"model.patch=7", NULL}, NULL},
        {{"objective=lejepa", "model.patch=7"}, "lejepa.local_size: 16 is not a multiple of model.patch (7)"},
        {{"objective=lejepa", "model.patch=7", "lejepa.local_size=14"}, NULL},
        {{"objective=lejepa", "model.patch=7", "lejepa.local_views=0"}, NULL},
        {{"objective=lejepa", "lejepa.local_size=32"}, "lejepa.local_size: 32 is larger than model.img_size (28)"},
        {{"objective=lejepa", "lejepa.local_size=28"}, NULL},
    };
    for (size_t i = 0; i < COUNT(rows); i++) {
        jepa_spec s;
        char err[SPEC_ERR_MAX] = "";
        spec_defaults(&s);
        for (int j = 0; j < 3; j++)
            if (rows[i].set[j]) set_ok(&s, rows[i].set[j]);
        int rc = spec_validate(&s, err, sizeof err);
        if (!rows[i].want) {
            if (rc) fprintf(stderr, "\n  row %zu: unexpected: %s\n", i, err);
            CU_ASSERT_EQUAL(rc, 0);
            continue;
        }
        CU_ASSERT_EQUAL(rc, -1);
        check_contains(err, rows[i].want, i);
    }
}

/* A struct filled by hand gets the same per-key checks as parsed input. */
static void test_validate_hand_filled(void) {
    jepa_spec s;
    char err[SPEC_ERR_MAX] = "";
    spec_defaults(&s);
    s.model.depth = 0;
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "model.depth: must be in [1, 64], got 0");
    spec_defaults(&s);
    strcpy(s.loss.type, "huber");
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "loss.type: must be one of smooth_l1, l2, got 'huber'");
    spec_defaults(&s);
    s.optim.beta2 = 1.0;
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "optim.beta2: must be in [0, 1), got 1.0");
    spec_defaults(&s);
    s.eval.wd_min = 3e-6;
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "eval.wd_min: must be a power of ten (0.1, 0.01, ..., 1e-12), got 3e-06");
    s.eval.wd_min = 1e-12;
    CU_ASSERT_EQUAL(spec_validate(&s, err, sizeof err), 0);
}

static void test_roundtrip(void) {
    jepa_spec src, dst;
    char err[SPEC_ERR_MAX] = "";
    spec_defaults(&src);
    CU_ASSERT_EQUAL(COUNT(every_key_changed), COUNT(documented));
    for (size_t i = 0; i < COUNT(every_key_changed); i++) set_ok(&src, every_key_changed[i]);
    CU_ASSERT_EQUAL(spec_validate(&src, err, sizeof err), 0);
    /* every key now differs from its default, so a key missing from the
     * output would leave dst at the default and fail the memcmp */
    spec_defaults(&dst);
    for (size_t i = 0; i < COUNT(documented); i++) {
        char a[SPEC_STR_MAX], b[SPEC_STR_MAX];
        CU_ASSERT_EQUAL(spec_get(&src, documented[i].key, a, sizeof a), 0);
        CU_ASSERT_EQUAL(spec_get(&dst, documented[i].key, b, sizeof b), 0);
        CU_ASSERT_STRING_NOT_EQUAL(a, b);
    }
    static char text[OUT_MAX], again[OUT_MAX];
    write_string(&src, text);
    load_ok(&dst, text);
    CU_ASSERT_EQUAL(memcmp(&src, &dst, sizeof src), 0);
    CU_ASSERT_EQUAL(dst.seed, 9007199254740993LL);
    CU_ASSERT_EQUAL(dst.optim.min_lr, 1e-300);
    CU_ASSERT_EQUAL(dst.optim.warmup_frac, 0.3333333333333333);
    /* nested form, grouped by section: one header per section */
    const char *optim = strstr(text, "\noptim:\n  lr: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(optim);
    CU_ASSERT_PTR_NULL(strstr(optim + 1, "\noptim:\n"));
    /* the defaults round-trip too, and writing is deterministic */
    spec_defaults(&src);
    write_string(&src, text);
    memset(&dst, 0, sizeof dst);
    spec_defaults(&dst);
    set_ok(&dst, "model.depth=1");
    load_ok(&dst, text);
    CU_ASSERT_EQUAL(memcmp(&src, &dst, sizeof src), 0);
    write_string(&dst, again);
    CU_ASSERT_STRING_EQUAL(text, again);
}

/* A resolved spec ends with the FNV-1a 64 of the lines above it (computed
 * here independently): cut short at any line boundary, one byte changed or
 * a line dropped, it is refused in one line and *s stays as it was; the
 * files written before the checksum (the old header, no last line) load. */
static void test_resolved_checksum(void) {
    static char text[OUT_MAX], cut[OUT_MAX];
    jepa_spec src, dst;
    char err[SPEC_ERR_MAX];
    spec_defaults(&src);
    set_ok(&src, "optim.lr=0.0005");
    write_string(&src, text);
    size_t n = strlen(text);
    const char *last = strstr(text, "\n# end of the resolved spec, FNV-1a 64 of the lines above: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    CU_ASSERT_EQUAL(strchr(last + 1, '\n'), text + n - 1); /* the last line */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = text; c <= last; c++) h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    CU_ASSERT(strncmp(text + n - 17, hex, 16) == 0);
    int cuts = 0;
    for (size_t k = 1; k < n; k++) { /* every shorter prefix ending a line */
        if (text[k - 1] != '\n') continue;
        memcpy(cut, text, k);
        cut[k] = '\0';
        spec_defaults(&dst);
        err[0] = '\0';
        cuts += spec_load_string(&dst, cut, "r.yaml", err, sizeof err) == -1 &&
                strstr(err, "r.yaml: a resolved spec without its last line") == err && dst.optim.lr == 1e-3;
    }
    int lines = 0;
    for (const char *c = text; *c; c++) lines += *c == '\n';
    CU_ASSERT_EQUAL(cuts, lines - 1);
    /* one value changed, then a line dropped in the middle */
    memcpy(cut, text, n + 1);
    char *lr = strstr(cut, "  lr: 0.0005\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lr);
    lr[11] = '6';
    spec_defaults(&dst);
    CU_ASSERT_EQUAL(spec_load_string(&dst, cut, "r.yaml", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "r.yaml: a resolved spec whose checksum does not match") == err);
    CU_ASSERT_EQUAL(dst.optim.lr, 1e-3);
    memcpy(cut, text, n + 1);
    lr = strstr(cut, "  lr: 0.0005\n");
    memmove(lr, lr + 13, strlen(lr + 13) + 1);
    CU_ASSERT_EQUAL(spec_load_string(&dst, cut, "r.yaml", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "checksum does not match") != NULL);
    /* intact: loads; the old header without a checksum loads as any spec */
    load_ok(&dst, text);
    CU_ASSERT_EQUAL(dst.optim.lr, 0.0005);
    spec_defaults(&dst);
    load_ok(&dst, "# resolved run spec (jepa-mpi): every key, defaults included\noptim:\n  lr: 0.002\n");
    CU_ASSERT_EQUAL(dst.optim.lr, 0.002);
}

static void test_hostile_strings(void) {
    static const char *const values[] = {
        "a\"b\"c",         "back\\slash\\",      "line1\nline2\n", "$(rm -rf /)",   "a; b && c | d",
        "tab\there",       "'single' quotes",    "#not a comment", ": colon: x",    "- dash",
        "  lead and trail ", "cr\r\nlf",          "*alias &anchor !tag %dir @at `tick`",
        "null",            "~",                  "true",           "0x1F",          "{a: [1]}",
        "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80", /* é ✓ 🚀 */
        "del\x7f bell\x07 esc\x1b",
        "nel\xc2\x85 c1\xc2\x9f ls\xe2\x80\xa8 ps\xe2\x80\xa9 bom\xef\xbb\xbf ffff\xef\xbf\xbf",
    };
    for (size_t i = 0; i < COUNT(values); i++) {
        jepa_spec src, dst;
        char a[SPEC_STR_MAX + 16];
        spec_defaults(&src);
        snprintf(a, sizeof a, "run.dir=%s", values[i]);
        set_ok(&src, a);
        snprintf(a, sizeof a, "resume=%s", values[i]);
        set_ok(&src, a);
        CU_ASSERT_STRING_EQUAL(src.run_dir, values[i]);
        static char text[OUT_MAX];
        write_string(&src, text);
        spec_defaults(&dst);
        load_ok(&dst, text);
        if (strcmp(dst.run_dir, values[i]) != 0) fprintf(stderr, "\n  row %zu did not round-trip:\n%s", i, text);
        CU_ASSERT_STRING_EQUAL(dst.run_dir, values[i]);
        CU_ASSERT_STRING_EQUAL(dst.resume, values[i]);
        CU_ASSERT_EQUAL(memcmp(&src, &dst, sizeof src), 0);
    }
}

static void test_string_length_limit(void) {
    char a[SPEC_STR_MAX + 64], yaml[SPEC_STR_MAX + 64], err[SPEC_ERR_MAX] = "";
    jepa_spec s;
    spec_defaults(&s);
    /* SPEC_STR_MAX-1 bytes fit */
    snprintf(a, sizeof a, "run.dir=%0*d", SPEC_STR_MAX - 1, 0);
    set_ok(&s, a);
    CU_ASSERT_EQUAL(strlen(s.run_dir), SPEC_STR_MAX - 1);
    /* one more is an error, never a truncation */
    snprintf(a, sizeof a, "run.dir=%0*d", SPEC_STR_MAX, 0);
    CU_ASSERT_EQUAL(spec_set(&s, a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ": is 512 bytes long; at most 511 allowed"));
    CU_ASSERT_EQUAL(strlen(s.run_dir), SPEC_STR_MAX - 1);
    snprintf(yaml, sizeof yaml, "run:\n  dir: %0*d\n", SPEC_STR_MAX, 0);
    CU_ASSERT_EQUAL(spec_load_string(&s, yaml, "long.yaml", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "long.yaml:2:8: run.dir: is 512 bytes long; at most 511 allowed");
}

/* FNV-1a 64 over int64 little-endian values, written independently here. */
static uint64_t fnv_model(const int64_t *v, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) h = (h ^ (uint8_t)((uint64_t)v[i] >> (8 * b))) * 0x100000001b3ull;
    return h;
}

static void test_model_hash(void) {
    static const char *const model_changes[] = {"model.img_size=32", "model.channels=3", "model.patch=2",
                                                "model.width=96",    "model.depth=5",    "model.heads=2",
                                                "model.mlp_ratio=2", "model.pred_width=32", "model.pred_depth=3",
                                                "model.pred_heads=2"};
    jepa_spec s;
    spec_defaults(&s);
    uint64_t h0 = spec_model_hash(&s);
    const int64_t defaults[] = {28, 1, 4, 128, 6, 4, 4, 64, 4, 4};
    CU_ASSERT_EQUAL(h0, fnv_model(defaults, 10));
    set_ok(&s, "optim.lr=0.5");
    set_ok(&s, "seed=7");
    set_ok(&s, "run.dir=elsewhere");
    CU_ASSERT_EQUAL(spec_model_hash(&s), h0);
    for (size_t i = 0; i < COUNT(model_changes); i++) {
        spec_defaults(&s);
        set_ok(&s, model_changes[i]);
        CU_ASSERT_NOT_EQUAL(spec_model_hash(&s), h0);
    }
    /* the hash covers the values in table order: the same numbers in other
     * keys (depth <-> pred_depth swapped: 6,4 -> 4,6) must hash differently */
    spec_defaults(&s);
    set_ok(&s, "model.depth=4");
    set_ok(&s, "model.pred_depth=6");
    CU_ASSERT_NOT_EQUAL(spec_model_hash(&s), h0);
    const int64_t swapped[] = {28, 1, 4, 128, 4, 4, 4, 64, 6, 4};
    CU_ASSERT_EQUAL(spec_model_hash(&s), fnv_model(swapped, 10));
    spec_defaults(&s);
    set_ok(&s, "model.depth=7");
    set_ok(&s, "model.depth=6");
    CU_ASSERT_EQUAL(spec_model_hash(&s), h0);
}

static void test_get_and_help(void) {
    jepa_spec s;
    char out[SPEC_STR_MAX], tiny[4];
    spec_defaults(&s);
    CU_ASSERT_EQUAL(spec_get(&s, "optim.lr", out, sizeof out), 0);
    CU_ASSERT_EQUAL(strtod(out, NULL), 1e-3);
    CU_ASSERT_EQUAL(spec_get(&s, "loss.type", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "smooth_l1");
    CU_ASSERT_EQUAL(spec_get(&s, "eval.probe", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "true");
    CU_ASSERT_EQUAL(spec_get(&s, "optim.lrr", out, sizeof out), -1);
    CU_ASSERT_EQUAL(spec_get(&s, "optim", out, sizeof out), -1);
    CU_ASSERT_EQUAL(spec_get(&s, "run.dir", tiny, sizeof tiny), -1); /* would truncate */

    static char buf[OUT_MAX];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    spec_print_help(f);
    fclose(f);
    for (size_t i = 0; i < COUNT(documented); i++) {
        char line[128];
        snprintf(line, sizeof line, "  %s ", documented[i].key);
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, line));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "one of smooth_l1|l2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "in (0, 10]"));
}

int main(void) {
    static const test_case cases[] = {
        {"defaults_documented", test_defaults_documented},
        {"nested_and_dotted_equal", test_nested_and_dotted_equal},
        {"set_each_type", test_set_each_type},
        {"set_errors", test_set_errors},
        {"bad_specs", test_bad_specs},
        {"load_file", test_load_file},
        {"flow_depth", test_flow_depth},
        {"validate_cross_field", test_validate_cross_field},
        {"validate_hand_filled", test_validate_hand_filled},
        {"roundtrip", test_roundtrip},
        {"resolved_checksum", test_resolved_checksum},
        {"hostile_strings", test_hostile_strings},
        {"string_length_limit", test_string_length_limit},
        {"model_hash", test_model_hash},
        {"get_and_help", test_get_and_help},
    };
    return test_main("spec", cases, (int)COUNT(cases));
}
