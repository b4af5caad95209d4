/* jepa-eval RUN_DIR | --random SPEC.yaml [--set k=v ...]
 * Linear probe of a trained run's encoder (its resolved spec + checkpoint),
 * or of a randomly initialised encoder (the baseline). Prints `probe_acc X`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jepa.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "jepa-eval: missing RUN_DIR (usage: jepa-eval RUN_DIR | --random "
                        "SPEC.yaml [--set key=value ...])\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: jepa-eval RUN_DIR [--set key=value ...]\n"
               "       jepa-eval --random SPEC.yaml [--set key=value ...]\n"
               "Linear probe of a run's encoder, or of a randomly initialised one.\n");
        return 0;
    }
    int random = !strcmp(argv[1], "--random");
    if (random && argc < 3) {
        fprintf(stderr, "jepa-eval: --random needs SPEC.yaml\n");
        return 2;
    }
    char spec_path[SPEC_STR_MAX + 32], err[SPEC_ERR_MAX];
    if (random)
        snprintf(spec_path, sizeof spec_path, "%s", argv[2]);
    else
        snprintf(spec_path, sizeof spec_path, "%s/spec.resolved.yaml", argv[1]);
    jepa_spec s;
    int unused[64], nu = 0;
    if (argc > 64) {
        fprintf(stderr, "jepa-eval: too many arguments\n");
        return 2;
    }
    int rc = cli_load_spec("jepa-eval", &s, spec_path, argc, argv, random ? 3 : 2, NULL, unused,
                           &nu);
    if (rc) return rc;
    if (nu) {
        fprintf(stderr, "jepa-eval: unknown argument '%s'\n", argv[unused[0]]);
        return 2;
    }
    jepa_dims d;
    if (jepa_dims_from_spec(&d, &s, err, sizeof err)) {
        fprintf(stderr, "jepa-eval: %s: %s\n", spec_path, err);
        return 2;
    }
    jepa_model m;
    /* the training run's batch: sgemm's blocking depends on the row count, so
     * features (and the probe) are bitwise those of the run only with it */
    jepa_model_init(&m, &d, (uint64_t)s.seed, s.train.batch_per_rank, 1, 1,
                    s.parallel.threads_per_rank);
    float mean, std;
    if (random) {
        jepa_images tr = {0};
        if (images_load_shards(&tr, s.data.train, err, sizeof err)) {
            fprintf(stderr, "jepa-eval: %s\n", err);
            return 1;
        }
        images_stats(&tr, &mean, &std);
        images_free(&tr);
    } else {
        /* the finished run's checkpoint; for a run stopped part-way (signal,
         * crash), the newest one RUN/latest names */
        char ck[2 * SPEC_STR_MAX + 64];
        snprintf(ck, sizeof ck, "%s/checkpoint.bin", argv[1]);
        if (access(ck, F_OK) != 0) {
            char lp[SPEC_STR_MAX + 32], name[SPEC_STR_MAX] = "";
            snprintf(lp, sizeof lp, "%s/latest", argv[1]);
            FILE *lf = fopen(lp, "r");
            if (lf && fgets(name, sizeof name, lf)) {
                name[strcspn(name, "\n")] = 0;
                snprintf(ck, sizeof ck, "%s/%s", argv[1], name);
                fprintf(stderr, "jepa-eval: %s/checkpoint.bin absent (run not finished): using %s\n",
                        argv[1], ck);
            }
            if (lf) fclose(lf);
        }
        ckpt_meta want, meta;
        train_meta_init(&want, &s, 0);
        want.train_hash = 0; /* any training settings: only the model must match */
        if (ckpt_load(ck, &m, &want, &meta, err, sizeof err)) {
            fprintf(stderr, "jepa-eval: %s\n", err);
            jepa_model_free(&m);
            return 1;
        }
        mean = meta.norm_mean;
        std = meta.norm_std;
    }
    probe_result pr;
    rc = train_probe(&m, &s, mean, std, &pr, err, sizeof err);
    jepa_model_free(&m);
    if (rc) {
        fprintf(stderr, "jepa-eval: %s\n", err);
        return 1;
    }
    printf("probe_acc %.4f\n", pr.test_acc);
    return 0;
}
