/* bench_shard.c - the data path's figures: for a few zstd levels, pack
 * Fashion-MNIST's training split, then time the training reader (one
 * background decoding thread, batch 128, shuffle buffer 4096) over whole
 * epochs. One machine-readable line per level:
 *   level L ratio R img_per_s N inline_img_per_s M pack_s S file_bytes B
 * (img_per_s: batches from the prefetch queue; inline: prefetch 0, decoding
 * on the calling thread: what one core sustains end to end)
 * With --trainer-img-per-s N (bench/run.sh passes bench-step's figure from
 * the same run) it also prints the trainer's rate and the headroom ratio. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_args.h"
#include "shard.h"
#include "stdout_close.h"


static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[8192];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

#define USAGE "usage: bench-shard [--levels 1,3,9,19] [--epochs N] [--trainer-img-per-s N]"

static const char *help_text =
    USAGE "\n"
    "Packs Fashion-MNIST's training split ($JEPA_FMNIST_DIR, default\n"
    "/usr/share/datasets/fashion-mnist) at each zstd level of --levels (default 1,3,9,19)\n"
    "into a temporary directory and times the training reader (batch 128, shuffle buffer\n"
    "4096) over --epochs whole epochs (default 3), with a decoding thread and inline.\n"
    "One machine-readable line per level:\n"
    "  level L ratio R img_per_s N inline_img_per_s M pack_s S file_bytes B\n"
    "--trainer-img-per-s N (bench-step's figure) adds the headroom over the trainer.\n";

static int fail(const char *msg) {
    fprintf(stderr, "bench-shard: %s\n", msg);
    return 1;
}

/* every --levels entry an integer zstd level (1 to 22), checked up front */
static int check_levels(const char *levels) {
    char buf[256], msg[320];
    snprintf(buf, sizeof buf, "%s", levels);
    int n = 0;
    long v;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), n++)
        if (bench_long(t, 1, 22, &v)) {
            snprintf(msg, sizeof msg, "--levels %s: '%s' is not a zstd level (1 to 22)", levels, t);
            return fail(msg);
        }
    if (!n) return fail("--levels: expected levels such as 1,3,9,19");
    return 0;
}

/* The flags into levels, *epochs and *trainer_rate. -1 to go on, else the
 * exit code (0 after --help, 2 after one line naming the argument). */
static int parse_args(int argc, char **argv, char *levels, size_t ln, int *epochs,
                      double *trainer_rate) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(help_text, stdout), 0;
        int known = !strcmp(a, "--levels") || !strcmp(a, "--epochs") ||
                    !strcmp(a, "--trainer-img-per-s");
        if (!known) {
            fprintf(stderr, "bench-shard: unknown argument '%s' (" USAGE ")\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench-shard: %s needs a value (" USAGE ")\n", a);
            return 2;
        }
        const char *v = argv[++i];
        long e;
        if (!strcmp(a, "--levels")) {
            snprintf(levels, ln, "%s", v);
            if (check_levels(levels)) return 2;
        } else if (!strcmp(a, "--epochs")) {
            if (bench_long(v, 1, 1000, &e)) {
                fprintf(stderr, "bench-shard: --epochs %s: expected an integer from 1 to 1000 ("
                        USAGE ")\n", v);
                return 2;
            }
            *epochs = (int)e;
        } else if (bench_double(v, 1e-9, 1e12, trainer_rate)) {
            fprintf(stderr, "bench-shard: --trainer-img-per-s %s: expected a positive number ("
                    USAGE ")\n", v);
            return 2;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    double trainer_rate = 0.0;
    const char *data = getenv("JEPA_FMNIST_DIR");
    if (!data || !*data) data = "/usr/share/datasets/fashion-mnist";
    char levels[256] = "1,3,9,19";
    int epochs = 3, batch = 128;
    int prc = parse_args(argc, argv, levels, sizeof levels, &epochs, &trainer_rate);
    if (prc >= 0) return prc;
    char err[SHARD_ERR_MAX], img[4096], lab[4096];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", data);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", data);
    shard_images im;
    if (shard_idx_read(&im, img, lab, err, sizeof err)) return fail(err);
    char tmp[] = "/tmp/bench-shard-XXXXXX";
    if (!mkdtemp(tmp)) return fail("cannot create a temp directory");
    size_t rec = shard_schema_record_bytes(&im.schema);
    uint8_t *pix = malloc((size_t)batch * rec), *labels = malloc((size_t)batch);
    printf("records %llu record_bytes %zu batch %d epochs %d reader_threads 1\n",
           (unsigned long long)im.n, rec, batch, epochs);
    int rc = 0;
    for (char *tok = strtok(levels, ","); tok && !rc; tok = strtok(NULL, ",")) {
        shard_pack_opts o;
        shard_pack_opts_defaults(&o);
        o.level = atoi(tok);
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/level%d", tmp, o.level);
        double t0 = now_s();
        if (shard_pack(dir, &im, &o, err, sizeof err)) {
            rc = fail(err);
            break;
        }
        double pack_s = now_s() - t0;
        shard_dataset *ds;
        if (shard_dataset_open(&ds, dir, err, sizeof err)) {
            rc = fail(err);
            break;
        }
        shard_dataset_info in;
        shard_dataset_get_info(ds, &in);
        shard_dataset_close(ds);
        /* prefetch 4: one decoding thread, the caller only copies batches out;
         * prefetch 0: decoding inline on the calling thread */
        double rate[2];
        for (int mode = 0; mode < 2 && !rc; mode++) {
            shard_reader *r;
            if (shard_reader_init(&r, dir, 0, 1, 1, batch, 4096, mode ? 0 : 4, err,
                                  sizeof err)) {
                rc = fail(err);
                break;
            }
            uint64_t nb = shard_reader_batches_per_epoch(r) * (uint64_t)epochs;
            t0 = now_s();
            for (uint64_t b = 0; b < nb && !rc; b++)
                if (shard_reader_next(r, pix, labels, err, sizeof err)) rc = fail(err);
            rate[mode] = (double)(nb * batch) / (now_s() - t0);
            shard_reader_free(r);
        }
        if (rc) break;
        printf("level %d ratio %.3f img_per_s %.0f inline_img_per_s %.0f pack_s %.2f "
               "file_bytes %llu", o.level, (double)in.raw_bytes / (double)in.file_bytes,
               rate[0], rate[1], pack_s, (unsigned long long)in.file_bytes);
        if (trainer_rate > 0) printf(" headroom_x %.0f", rate[1] / trainer_rate);
        printf("\n");
        fflush(stdout);
        remove_dir(dir);
    }
    if (trainer_rate > 0) printf("trainer_img_per_s %.1f\n", trainer_rate);
    free(pix);
    free(labels);
    shard_images_free(&im);
    rmdir(tmp);
    return stdout_close("bench-shard", rc);
}
