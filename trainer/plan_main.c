/* jepa-plan RUN_DIR [--episodes N] [--seed S] [--set key=value ...]
 * Plans in the latent space of a trained world model (objective: world):
 * CEM/MPC toward goal frames in the world of plan.world, against random
 * actions, a straight line on the true state and a randomly initialised
 * model, on the same seeded tasks. Keys: the plan.* section of the run spec
 * (docs/run-spec.md), from the defaults, the run's spec.yaml and --set;
 * --episodes and --seed are short for --set plan.episodes / plan.seed. Runs
 * under mpirun (episodes split across ranks). Prints the table and `name value` last lines; writes RUN/plan/. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "jepa.h"
#include "plan.h"

#define MAX_ARGS 256

static void usage(FILE *f) {
    fprintf(f, "usage: jepa-plan RUN_DIR [--episodes N] [--seed S] [--set plan.KEY=VALUE ...]\n"
               "Plans with the world model of RUN_DIR (objective: world) by CEM/MPC toward goal frames:\n"
               "start and goal in different rooms, success within plan.success_radius of the goal before\n"
               "the budget (plan.budget_factor x the shortest path). Baselines on the same tasks: random\n"
               "actions, a straight line on the true state, the planner on a randomly initialised model.\n"
               "Prints a table and the last lines success_rate, random_success_rate, straight_success_rate,\n"
               "random_init_success_rate, plan_s_per_decision; writes RUN_DIR/plan/ (plan.json, plan.csv,\n"
               "episodes.csv, episode-NNN.png). --set takes plan.* keys and parallel.threads_per_rank\n"
               "(jepa-train --help lists every key; docs/run-spec.md).\n"
               "Under mpirun the episodes are split across ranks.\n");
}

/* argv with --episodes N / --seed S rewritten as --set plan.episodes=N /
 * --set plan.seed=S (so the spec table checks them); 0 or 2 (usage). */
static int rewrite_args(int argc, char **argv, char **out, int *nout, char (*buf)[64]) {
    int n = 0, nb = 0, seen_ep = 0, seen_seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *key = !strcmp(argv[i], "--episodes") ? "plan.episodes"
                          : !strcmp(argv[i], "--seed")   ? "plan.seed"
                                                         : NULL;
        if (n + 2 >= MAX_ARGS) {
            fprintf(stderr, "jepa-plan: too many arguments\n");
            return 2;
        }
        if (!key) {
            out[n++] = argv[i];
            continue;
        }
        int *seen = key[5] == 'e' ? &seen_ep : &seen_seed; /* plan.episodes / plan.seed */
        if ((*seen)++) {
            fprintf(stderr, "jepa-plan: %s: given twice\n", argv[i]);
            return 2;
        }
        if (i + 1 >= argc || !argv[i + 1][0] || !strncmp(argv[i + 1], "--", 2)) { /* not the next option */
            fprintf(stderr, "jepa-plan: %s needs a value%s%.40s%s\n", argv[i], i + 1 < argc ? " (got '" : "",
                    i + 1 < argc ? argv[i + 1] : "", i + 1 < argc ? "')" : "");
            return 2;
        }
        snprintf(buf[nb], 64, "%s=%.40s", key, argv[++i]);
        out[n++] = "--set";
        out[n++] = buf[nb++];
    }
    *nout = n;
    return 0;
}

/* The plan.* section: the defaults, then what the run's own spec.yaml (the
 * training spec as written) says, then --set. Not the resolved spec's: it
 * froze the defaults of the version that trained the run. 0 or 2. */
static int plan_section(jepa_spec *s, const char *run, int nargs, char **args) {
    jepa_spec p;
    char path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    spec_defaults(&p);
    snprintf(path, sizeof path, "%s/spec.yaml", run);
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        if (spec_load_file(&p, path, err, sizeof err)) {
            if (comm_rank() == 0) fprintf(stderr, "jepa-plan: %s\n", err);
            return 2;
        }
    }
    for (int i = 2; i < nargs; i++) { /* already checked by cli_load_spec */
        const char *a = !strcmp(args[i], "--set") && i + 1 < nargs ? args[++i]
                        : !strncmp(args[i], "--set=", 6)          ? args[i] + 6
                                                                   : NULL;
        /* plan.* and the thread count are the planner's; every other key is the
         * run's own (a model key would not match its checkpoint; training keys
         * do nothing here): said, not silently ignored */
        if (a && strncmp(a, "plan.", 5) && strncmp(a, "parallel.threads_per_rank=", 26)) {
            if (comm_rank() == 0)
                fprintf(stderr, "jepa-plan: --set %.100s: only plan.* keys (and parallel.threads_per_rank) "
                        "apply to planning; the others are the run's own\n", a);
            return 2;
        }
        if (a && spec_set(&p, a, err, sizeof err)) return 2;
    }
    s->plan = p.plan;
    if (spec_validate(s, err, sizeof err)) {
        if (comm_rank() == 0) fprintf(stderr, "jepa-plan: %s\n", err);
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
        fprintf(stderr, "jepa-plan: missing RUN_DIR (usage: jepa-plan RUN_DIR [--episodes N] [--seed S] "
                        "[--set key=value ...])\n");
        return 2;
    }
    static char *args[MAX_ARGS];
    static char buf[MAX_ARGS][64];
    int nargs = 0, rc = rewrite_args(argc, argv, args, &nargs, buf);
    if (rc) return rc;
    char spec_path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    snprintf(spec_path, sizeof spec_path, "%s/spec.resolved.yaml", argv[1]);
    jepa_spec s;
    int unused[MAX_ARGS], nu = 0;
    rc = cli_load_spec("jepa-plan", &s, spec_path, nargs, args, 2, NULL, unused, &nu);
    if (rc) return rc;
    if (nu > 0) {
        fprintf(stderr, "jepa-plan: unknown argument '%s'\n", args[unused[0]]);
        return 2;
    }
    if ((rc = plan_section(&s, argv[1], nargs, args))) return rc;
    if (plan_evaluate(argv[1], &s, err, sizeof err)) {
        if (comm_rank() == 0) fprintf(stderr, "jepa-plan: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    blas_core_select(argv);
    comm_init(&argc, &argv);
    if (comm_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1; /* rank 0 speaks */
    int rc = plan_cli(argc, argv);
    comm_finalize();
    return rc;
}
