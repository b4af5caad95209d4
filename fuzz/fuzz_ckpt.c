/* fuzz_ckpt.c - libFuzzer target for the checkpoint reader (trainer/ckpt.c):
 * the header parser, then, for headers small enough, the whole load into a
 * model of the shape the header claims. Built with
 * -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so the CRC does not stop the
 * fuzzer at the door; under ASan/UBSan any out-of-bounds access is a crash,
 * and so is a broken promise of the reader (abort()).
 * Seed corpus: JEPA_FUZZ_CKPT_SEED=FILE fuzz-ckpt writes a valid tiny
 * checkpoint to FILE and exits (see fuzz/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"

/* Bigger models are valid but only slow the fuzzer down. */
#define FUZZ_MAX_PARAMS 4096

static void model_alloc(jepa_model *m, uint64_t nparams, uint64_t nenc, uint32_t ntensors) {
    memset(m, 0, sizeof *m);
    m->nparams = nparams;
    m->nenc = nenc;
    m->ntensors = (int)ntensors;
    m->params = calloc(nparams, sizeof(float));
    m->target = calloc(nenc, sizeof(float));
    m->adam_m = calloc(nparams, sizeof(float));
    m->adam_v = calloc(nparams, sizeof(float));
    if (!m->params || !m->target || !m->adam_m || !m->adam_v) abort();
}

static void model_release(jepa_model *m) {
    free(m->params);
    free(m->target);
    free(m->adam_m);
    free(m->adam_v);
}

static void seed_meta(ckpt_meta *meta) {
    memset(meta, 0, sizeof *meta);
    for (int i = 0; i < CKPT_MODEL_KEYS; i++) meta->model[i] = 4 + i;
    meta->model_hash = 0x1234;
    meta->train_hash = 0x5678;
    meta->world = 2;
    meta->seed = 3;
    meta->step = 5;
    meta->total_steps = 10;
    meta->images_seen = 640;
    meta->norm_mean = 0.25f;
    meta->norm_std = 0.5f;
    meta->reader.version = SHARD_STATE_VERSION;
    meta->reader.world = 2;
    meta->reader.global_batch = 64;
    meta->reader.shuffle_buffer = 16;
    meta->log_count = 1;
    meta->log_loss_sum = 0.5;
    meta->last_loss = 0.5;
    meta->train_s = 1.0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *out = getenv("JEPA_FUZZ_CKPT_SEED");
    if (!out) return 0;
    jepa_model m;
    model_alloc(&m, 24, 8, 3);
    for (int i = 0; i < 24; i++) m.params[i] = m.adam_m[i] = m.adam_v[i] = (float)i;
    ckpt_meta meta;
    seed_meta(&meta);
    char err[SPEC_ERR_MAX];
    int rc = ckpt_save(out, &m, &meta, err, sizeof err);
    if (rc) fprintf(stderr, "fuzz-ckpt: %s\n", err);
    model_release(&m);
    exit(rc ? 1 : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0; /* fmemopen refuses an empty buffer */
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f) return 0;
    ckpt_meta meta, got;
    char err[SPEC_ERR_MAX];
    if (ckpt_read_meta(f, "fuzz", &meta, err, sizeof err) != 0) {
        if (!strstr(err, "fuzz")) abort(); /* every message names the file */
        fclose(f);
        return 0;
    }
    /* the reader promised: the buffer is exactly as long as the header says */
    if (256 + 4 * (3 * meta.nparams + meta.nenc) + 4 != size) abort();
    if (meta.nparams <= FUZZ_MAX_PARAMS) {
        jepa_model m;
        model_alloc(&m, meta.nparams, meta.nenc, meta.ntensors);
        ckpt_meta want = meta;
        /* now and then another job's: other training settings (a resume on
         * another world size is allowed since checkpoint version 4) */
        if (data[size - 1] & 1) want.train_hash = meta.train_hash + 1 ? meta.train_hash + 1 : 2;
        rewind(f);
        int rc = ckpt_load_stream(f, "fuzz", &m, &want, &got, err, sizeof err);
        if (rc != CKPT_OK && !strstr(err, "fuzz")) abort();
        if ((data[size - 1] & 1) && rc == CKPT_OK) abort(); /* a mismatch let through */
        if (rc == CKPT_OK && (got.step != meta.step || got.nparams != meta.nparams)) abort();
        model_release(&m);
    }
    fclose(f);
    return 0;
}
