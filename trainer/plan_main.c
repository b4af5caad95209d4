/* jepa-plan RUN_DIR [--episodes N] [--seed S] [--set key=value ...] [--replace]
 * Plans in the latent space of a trained world model (objective: world):
 * CEM/MPC toward goal frames in the world of plan.world, against random
 * actions, a straight line on the true state and a randomly initialised
 * model, on the same seeded tasks. Keys: the plan.* section of the run spec
 * (docs/run-spec.md), from the defaults, the run's spec.yaml and --set;
 * --episodes and --seed are short for --set plan.episodes / plan.seed. Runs
 * under mpirun (episodes split across ranks). Prints the table and `name value` last lines; writes RUN/plan/,
 * which must not hold an earlier plan's results unless --replace. Each setting is given once. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "jepa.h"
#include "plan.h"
#include "shard.h"
#include "stdout_close.h"

#define MAX_ARGS 256

static void usage(FILE *f) {
    fprintf(f, "usage: jepa-plan RUN_DIR [--episodes N] [--seed S] [--set plan.KEY=VALUE ...] [--replace]\n"
               "Plans with the world model of RUN_DIR (objective: world) by CEM/MPC toward goal frames:\n"
               "start and goal in different rooms, success within plan.success_radius of the goal before\n"
               "the budget (plan.budget_factor x the shortest path). Baselines on the same tasks: random\n"
               "actions, a straight line on the true state, the planner on a randomly initialised model.\n"
               "Prints a table and the last lines success_rate, random_success_rate, straight_success_rate,\n"
               "random_init_success_rate, plan_s_per_decision; writes RUN_DIR/plan/ (plan.json, plan.csv,\n"
               "episodes.csv, episode-NNN.png). --set takes plan.* keys and parallel.threads_per_rank\n"
               "(jepa-train --help lists every key; docs/run-spec.md); each setting once (--episodes N\n"
               "and --set plan.episodes=N are one setting). A RUN_DIR/plan/ that holds an earlier plan's\n"
               "results is refused; --replace replaces them (and removes its pictures beyond this plan's).\n"
               "Under mpirun the episodes are split across ranks.\n");
}

/* Records the setting key (its first kn bytes: "plan.episodes") in ps as
 * the user typed it ("--episodes 1"): one given twice, in one spelling or
 * two (--episodes 1 --set plan.episodes=2), is refused, never last-wins.
 * 2 after one line naming both spellings when it was given before, else 0. */
static int setting_once(shard_seen *ps, const char *key, size_t kn, const char *typed) {
    const char *before = shard_seen_add(ps, key, kn, typed);
    if (!before) return 0;
    if (comm_rank() == 0)
        fprintf(stderr, "jepa-plan: %s: %.*s already given by %s (give each setting once)\n",
                typed, (int)kn, key, before);
    return 2;
}

/* The value of --episodes / --seed checked by the spec table, the error
 * naming the option as typed ("--episodes 0: must be in ..."), not the
 * --set it becomes. 0 or 2. */
static int alias_check(const char *flag, const char *val, const char *assignment) {
    jepa_spec t;
    char err[SPEC_ERR_MAX], prefix[96];
    spec_defaults(&t);
    if (!spec_set(&t, assignment, err, sizeof err)) return 0;
    snprintf(prefix, sizeof prefix, "--set %s: ", assignment);
    const char *why = strncmp(err, prefix, strlen(prefix)) ? err : err + strlen(prefix);
    if (comm_rank() == 0) fprintf(stderr, "jepa-plan: %s %.40s: %s\n", flag, val, why);
    return 2;
}

/* argv with --episodes N / --seed S rewritten as --set plan.episodes=N /
 * --set plan.seed=S (so the spec table checks them) and --replace taken
 * out into *replace; every setting once. 0 or 2 (usage). */
static int rewrite_args(int argc, char **argv, char **out, int *nout, char (*buf)[64],
                        int *replace) {
    static shard_seen ps; /* keys point into argv or are literals */
    static char typed[MAX_ARGS][128];
    int n = 0, nb = 0;
    for (int i = 0; i < argc; i++) {
        const char *key = !strcmp(argv[i], "--episodes") ? "plan.episodes"
                          : !strcmp(argv[i], "--seed")   ? "plan.seed"
                                                         : NULL;
        if (n + 2 >= MAX_ARGS) {
            if (comm_rank() == 0) fprintf(stderr, "jepa-plan: too many arguments\n");
            return 2;
        }
        if (!strcmp(argv[i], "--replace")) {
            if ((*replace)++) {
                if (comm_rank() == 0) fprintf(stderr, "jepa-plan: --replace: given twice\n");
                return 2;
            }
            continue;
        }
        const char *set = cli_set_value(argc, argv, i);
        if (set) { /* a bad assignment is cli_load_spec's to report */
            snprintf(typed[i], sizeof typed[i], "--set %.100s", set);
            if (setting_once(&ps, set, strcspn(set, "="), typed[i])) return 2;
        }
        if (!key) {
            out[n++] = argv[i];
            continue;
        }
        if (i + 1 >= argc || !argv[i + 1][0] || !strncmp(argv[i + 1], "--", 2)) { /* not the next option */
            if (comm_rank() == 0)
                fprintf(stderr, "jepa-plan: %s needs a value%s%.40s%s\n", argv[i], i + 1 < argc ? " (got '" : "",
                        i + 1 < argc ? argv[i + 1] : "", i + 1 < argc ? "')" : "");
            return 2;
        }
        snprintf(typed[i], sizeof typed[i], "%s %.40s", argv[i], argv[i + 1]);
        if (setting_once(&ps, key, strlen(key), typed[i])) return 2;
        snprintf(buf[nb], 64, "%s=%.40s", key, argv[++i]);
        if (alias_check(argv[i - 1], argv[i], buf[nb])) return 2;
        out[n++] = "--set";
        out[n++] = buf[nb++];
    }
    *nout = n;
    return 0;
}

/* The episode of a picture plan_eval.c draws, "episode-%03d.png" or
 * "episode-%03d-frames.png", or -1 when name is not exactly one: digits
 * only, as %03d prints them (at least three, no extra leading zero), then
 * one of the two suffixes. "episode- 7.png", "episode-+07.png",
 * "episode-0007.png" or "episode-007.png.bak" are not the planner's. */
static long plan_picture_episode(const char *name) {
    static const char pre[] = "episode-";
    if (strncmp(name, pre, sizeof pre - 1)) return -1;
    const char *d = name + sizeof pre - 1;
    size_t nd = strspn(d, "0123456789");
    if (nd < 3 || nd > 10 || (strcmp(d + nd, ".png") && strcmp(d + nd, "-frames.png"))) return -1;
    char *end, again[24];
    errno = 0;
    long e = strtol(d, &end, 10);
    if (errno || end != d + nd || e > INT_MAX) return -1;
    snprintf(again, sizeof again, "%03ld", e);
    return strlen(again) == nd && !strncmp(again, d, nd) ? e : -1;
}

/* One of the files jepa-plan writes into RUN/plan (plan_eval.c): plan.json,
 * plan.csv, episodes.csv and the pictures. Not its temporary files, nor
 * anything else a user or a filesystem (NFS's .nfsXXXX) keeps there. */
static int plan_own_file(const char *name) {
    return !strcmp(name, "plan.json") || !strcmp(name, "plan.csv") ||
           !strcmp(name, "episodes.csv") || plan_picture_episode(name) >= 0;
}

/* RUN/plan already holding an earlier plan's results (its own files, see
 * plan_own_file: nothing else there counts): refused unless --replace, as
 * jepa-eval --export never replaces files. A file RUN/plan is
 * plan_evaluate's to refuse. 0, or 2 after one line. */
static int plan_out_check(const char *run, int replace) {
    char dir[SPEC_STR_MAX + 16], first[256] = "";
    snprintf(dir, sizeof dir, "%s/plan", run);
    DIR *d = replace ? NULL : opendir(dir);
    if (!d) return 0;
    for (struct dirent *e; !first[0] && (e = readdir(d));)
        if (plan_own_file(e->d_name)) snprintf(first, sizeof first, "%s", e->d_name);
    closedir(d);
    if (!first[0]) return 0;
    if (comm_rank() == 0)
        fprintf(stderr, "jepa-plan: %s already holds results (%s, ...): jepa-plan never replaces "
                "them unasked; move them away, or add --replace\n", dir, first);
    return 2;
}

/* After a --replace: the pictures of an earlier plan beyond the ones this
 * plan drew (episode-NNN.png and -frames.png for NNN >= drawn, in the exact
 * form the planner writes) are its results no longer, so they go. Rank 0,
 * after success. */
static void plan_out_prune(const char *run, int drawn) {
    char dir[SPEC_STR_MAX + 16], path[SPEC_STR_MAX + 300];
    snprintf(dir, sizeof dir, "%s/plan", run);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (plan_picture_episode(e->d_name) < drawn) continue; /* -1: not a picture */
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* The plan.* assignment args[i] is (--set plan.K=V or --set=plan.K=V), or NULL. */
static const char *plan_assignment(int nargs, char **args, int i) {
    const char *a = cli_set_value(nargs, args, i);
    return a && !strncmp(a, "plan.", 5) ? a : NULL;
}

/* Whether err names key (its first kn bytes) as a whole key: plan.topk,
 * not plan.topk_x. */
static int err_names(const char *err, const char *key, size_t kn) {
    for (const char *p = err; (p = strstr(p, "plan.")) != NULL; p++)
        if (!strncmp(p, key, kn) && !(p[kn] == '_' || (p[kn] >= 'a' && p[kn] <= 'z'))) return 1;
    return 0;
}

/* The last --set whose key err names, or NULL: the setting a check across
 * keys failed on once the --set were applied. */
static const char *set_named(const char *err, int nargs, char **args) {
    const char *found = NULL;
    for (int i = 2; i < nargs; i++) {
        const char *a = plan_assignment(nargs, args, i);
        if (a && err_names(err, a, strcspn(a, "="))) found = a;
    }
    return found;
}

/* Whether err names a plan.* key whose value the file layer (file: the
 * defaults, then spec.yaml) changed from the defaults (def). */
static int file_named(const char *err, const jepa_spec *def, const jepa_spec *file) {
    char key[64], a[SPEC_STR_MAX], b[SPEC_STR_MAX];
    for (const char *p = err; (p = strstr(p, "plan.")) != NULL; p++) {
        size_t kn = 5 + strspn(p + 5, "abcdefghijklmnopqrstuvwxyz_");
        snprintf(key, sizeof key, "%.*s", (int)(kn < sizeof key ? kn : sizeof key - 1), p);
        if (!spec_get(def, key, a, sizeof a) && !spec_get(file, key, b, sizeof b) && strcmp(a, b)) return 1;
    }
    return 0;
}

/* The plan.* section as it applies: the defaults, then what the run's own
 * spec.yaml (the training spec as written) says, then --set; the effective
 * section is what is checked, so a --set replaces a spec.yaml value that
 * would fail (topk 500 in spec.yaml plans with --set plan.samples=600). An
 * error names its layer: the --set it names, else spec.yaml where it names
 * a key spec.yaml set. A key's own type or range is checked as each layer
 * loads (spec_load_file takes a file whole). Not the resolved spec's plan.*:
 * it froze the defaults of the version that trained the run (so
 * cli_load_spec is not given the plan.* --set). 0 or 2. */
static int plan_section(jepa_spec *s, const char *run, int nargs, char **args) {
    jepa_spec def, p;
    char path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    int rank0 = comm_rank() == 0;
    spec_defaults(&def);
    p = def;
    snprintf(path, sizeof path, "%s/spec.yaml", run);
    if (access(path, F_OK) == 0) { /* spec_load_file refuses a FIFO or a device */
        if (spec_load_file(&p, path, err, sizeof err)) {
            if (rank0) fprintf(stderr, "jepa-plan: %s\n", err);
            return 2;
        }
    }
    jepa_spec file = p; /* the defaults and spec.yaml: to tell the layers apart */
    for (int i = 2; i < nargs; i++) {
        const char *a = cli_set_value(nargs, args, i);
        i += a && !strcmp(args[i], "--set"); /* past its value */
        /* plan.* and the thread count are the planner's; every other key is the
         * run's own (a model key would not match its checkpoint; training keys
         * do nothing here): said, not silently ignored */
        if (a && strncmp(a, "plan.", 5) && strncmp(a, "parallel.threads_per_rank=", 26)) {
            if (rank0)
                fprintf(stderr, "jepa-plan: --set %.100s: only plan.* keys (and parallel.threads_per_rank) "
                        "apply to planning; the others are the run's own\n", a);
            return 2;
        }
        if (a && !strncmp(a, "plan.", 5) && spec_set(&p, a, err, sizeof err)) {
            if (rank0) fprintf(stderr, "jepa-plan: %s\n", err);
            return 2;
        }
    }
    s->plan = p.plan;
    if (spec_validate(s, err, sizeof err)) {
        const char *a = set_named(err, nargs, args);
        const char *layer = a ? "--set " : file_named(err, &def, &file) ? path : "";
        if (rank0)
            fprintf(stderr, "jepa-plan: %s%.100s%s%s\n", layer, a ? a : "", *layer ? ": " : "", err);
        return 2;
    }
    return 0;
}

static int plan_cli(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        if (argc >= 2) /* an option first: RUN_DIR may well be there, after it */
            fprintf(stderr, "jepa-plan: RUN_DIR must come first, got '%.100s' (usage: jepa-plan RUN_DIR "
                            "[--episodes N] [--seed S] [--set key=value ...] [--replace])\n", argv[1]);
        else
            fprintf(stderr, "jepa-plan: missing RUN_DIR (usage: jepa-plan RUN_DIR [--episodes N] [--seed S] "
                            "[--set key=value ...] [--replace])\n");
        return 2;
    }
    static char *args[MAX_ARGS];
    static char buf[MAX_ARGS][64];
    int nargs = 0, replace = 0, rc = rewrite_args(argc, argv, args, &nargs, buf, &replace);
    if (rc) return rc;
    char spec_path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    snprintf(spec_path, sizeof spec_path, "%s/spec.resolved.yaml", argv[1]);
    jepa_spec s;
    static char *run_args[MAX_ARGS]; /* args without the plan.* --set: plan_section's */
    int unused[MAX_ARGS], nu = 0, nrun = 0;
    for (int i = 0; i < nargs; i++) {
        if (i >= 2 && plan_assignment(nargs, args, i)) {
            i += !strcmp(args[i], "--set");
            continue;
        }
        run_args[nrun++] = args[i];
    }
    rc = cli_load_spec("jepa-plan", &s, spec_path, nrun, run_args, 2, NULL, unused, &nu);
    if (rc) return rc;
    if (nu > 0) {
        fprintf(stderr, "jepa-plan: unknown argument '%s'\n", run_args[unused[0]]);
        return 2;
    }
    if ((rc = plan_section(&s, argv[1], nargs, args))) return rc;
    if (strcmp(s.objective, "world") != 0) { /* a usage error too: said before anything loads */
        if (comm_rank() == 0)
            fprintf(stderr, "jepa-plan: %s: objective %s is not a world model (jepa-plan plans with runs of "
                    "objective: world)\n", argv[1], s.objective);
        return 2;
    }
    if ((rc = plan_out_check(argv[1], replace))) return rc;
    /* SIGINT/SIGTERM/SIGHUP held from here (plan_evaluate's contract): the
     * check below searches task 0's shortest path (seconds, for some
     * worlds); a signal that stopped it, the planning or the writing ends
     * the process after plan_evaluate's line saying so (nothing written);
     * one caught once the plan was in place is dropped */
    shard_interrupt_catch();
    if (plan_world_check(&s, err, sizeof err)) { /* a usage error, said before the model loads */
        if (comm_rank() == 0) fprintf(stderr, "jepa-plan: %s\n", err);
        shard_interrupt_release(0);
        return 2;
    }
    rc = plan_evaluate(argv[1], &s, err, sizeof err) ? 1 : 0;
    if (rc && comm_rank() == 0) fprintf(stderr, "jepa-plan: %s\n", err);
    if (!rc && replace && comm_rank() == 0)
        plan_out_prune(argv[1], s.plan.pictures < s.plan.episodes ? s.plan.pictures : s.plan.episodes);
    shard_interrupt_release(rc == 0);
    return rc;
}

int main(int argc, char **argv) {
    blas_core_select(argv);
    cli_catch_oom();
    comm_init(&argc, &argv);
    if (comm_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1; /* rank 0 speaks */
    int rc = plan_cli(argc, argv);
    comm_finalize();
    return stdout_close("jepa-plan", rc); /* after MPI: other ranks write /dev/null */
}
