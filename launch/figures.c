/* figures.c - what the launcher reports for each objective, in one table:
 * the summary.json figures `results` shows and ranks by, the one `status`
 * shows, the panels `plot` draws. results.c, plot.c and launch_main.c read
 * the row of a run's objective and never ask which objective it is. */
#include <math.h>
#include <string.h>

#include "launch.h"

static const launch_objective objectives[] = {
    {.objective = "ijepa", .family = "image", .figs = {"probe_acc"}, .nfigs = 1, .nrequired = 1,
     .higher_better = 1, .none_below_zero = 1, .unit_range = 1, .what = "probe accuracy", .png = "probe",
     .data_hint = "pack one with jepa-shard pack; scripts/pack-fmnist.sh packs Fashion-MNIST",
     .data = DATA_KIND_IMAGES,
     .panels = {{"loss", "loss"}, {"lr", "learning rate"}, {"target_std", "target embedding std (collapse watch)"},
                {"probe_acc", "linear probe accuracy"}}},
    {.objective = "lejepa", .family = "image", .figs = {"probe_acc"}, .nfigs = 1, .nrequired = 1,
     .higher_better = 1, .none_below_zero = 1, .unit_range = 1, .what = "probe accuracy", .png = "probe",
     .data_hint = "pack one with jepa-shard pack; scripts/pack-fmnist.sh packs Fashion-MNIST",
     .data = DATA_KIND_IMAGES,
     .panels = {{"loss", "loss"}, {"lr", "learning rate"}, {"emb_std", "embedding std (collapse watch)"},
                {"probe_acc", "linear probe accuracy"}}},
    /* world_eval.c: pos_r2 and pos_err whenever it evaluates; pred4_* and
     * latent_err_* only when the episodes are long enough for rollouts */
    {.objective = "world", .family = "world", .figs = {"pos_r2", "pos_err", "pred4_pos_r2", "latent_err_h8"},
     .nfigs = 4, .nrequired = 2, .required_with_probe = 1, .higher_better = 1,
     .what = "pos_r2 (position probe R^2)", .png = "pos_r2",
     .data_hint = "generate one with jepa-world gen; scripts/world.sh makes data/tworoom",
     .data = DATA_KIND_EPISODES,
     /* the collapse watch is the trainer's (obj_world.c: proj_std), not SIGReg */
     .panels = {{"loss", "loss"}, {"lr", "learning rate"}, {"proj_std", "projector output std (collapse watch)"},
                {"sigreg", "SIGReg statistic"}, {"loss_tf", "teacher-forcing loss (loss_tf)"},
                {"loss_ro", "rollout loss (loss_ro)"}, {"pos_r2", "position probe R^2 (pos_r2)"}}},
};
enum { NOBJ = sizeof objectives / sizeof objectives[0] };

/* The values a number the reports read can take, whichever objective
 * writes it; keys not listed (final_loss, loss) take any. One outside is
 * no trainer's: the run is damaged, never ranked by it (a probe_acc of 1.7
 * would head the sweep). Steps are whole and held exactly by a double. */
static const launch_range ranges[] = {
    {"probe_acc", -1, 1, 0},                                             /* a fraction; -1: no probe */
    {"pos_r2", -INFINITY, 1, 0},       {"pred4_pos_r2", -INFINITY, 1, 0}, /* an R^2 is at most 1 */
    {"pos_err", 0, INFINITY, 0},       {"latent_err_h8", 0, INFINITY, 0}, /* distances */
    {"steps", 0, 0x1p53, 1},           {"planned_steps", 0, 0x1p53, 1},   /* summary.json */
    {"step", 0, 0x1p53, 1},                                               /* a metrics.jsonl line */
};

const launch_range *launch_figure_range(const char *key) {
    static const launch_range any = {NULL, -INFINITY, INFINITY, 0};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (!strcmp(ranges[i].key, key)) return &ranges[i];
    return &any;
}

const launch_objective *launch_objective_find(const char *name) {
    for (int i = 0; name && i < NOBJ; i++)
        if (!strcmp(objectives[i].objective, name)) return &objectives[i];
    return NULL;
}

const launch_objective *launch_objective_at(int i) { return i >= 0 && i < NOBJ ? &objectives[i] : NULL; }

int launch_family_index(const launch_objective *o) {
    for (int i = 0; i < NOBJ; i++)
        if (!strcmp(objectives[i].family, o->family)) return i;
    return 0;
}

int launch_objective_npanels(const launch_objective *o) {
    int n = 0;
    while (n < LAUNCH_MAX_PANELS && o->panels[n].key) n++;
    return n;
}
