/* test_shard.c - the shard format, packer, verifier and training reader.
 * Records of the synthetic sets carry their own index in their first 4
 * bytes and a formula in the rest, so every byte a reader returns is checked
 * against an independent value; Fashion-MNIST is compared against the IDX
 * bytes gunzipped here. Corruption tests flip every header/index byte, every
 * frame byte, truncate, and forge absurd counts with valid checksums; they
 * also run under ASan/UBSan (test_shard_asan). JEPA_FMNIST_DIR moves the data. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "shard.h"
#include "shard_internal.h"
#include "testutil.h"

/* An image schema (the record-schema members stay 0). */
#define IMG(h, w, c, dt, lab, nc)                                                            \
    ((shard_schema){.height = (h), .width = (w), .channels = (c), .dtype = (dt),             \
                    .label = (lab), .num_classes = (nc)})

static char tmpdir[] = "/tmp/test_shard_XXXXXX";
static char err[SHARD_ERR_MAX];

static void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Record i: bytes 0..3 = i (LE), byte j >= 4 = (i * 7 + j * 13) & 255; label i % 10. */
static uint8_t rec_byte(uint64_t i, size_t j) {
    return j < 4 ? (uint8_t)(i >> (8 * j)) : (uint8_t)((i * 7 + j * 13) & 255);
}

static shard_images make_images(uint64_t n, uint32_t h, uint32_t w, uint32_t c, int labels) {
    shard_images im = {IMG(h, w, c, SHARD_DTYPE_U8, labels ? SHARD_LABEL_U8 : SHARD_LABEL_NONE,
                           labels ? 10 : 0), n, NULL, NULL};
    size_t rec = (size_t)h * w * c;
    im.pixels = malloc(n * rec);
    for (uint64_t i = 0; i < n; i++)
        for (size_t j = 0; j < rec; j++) im.pixels[i * rec + j] = rec_byte(i, j);
    if (labels) {
        im.labels = malloc(n);
        for (uint64_t i = 0; i < n; i++) im.labels[i] = (uint8_t)(i % 10);
    }
    return im;
}

/* Packs n synthetic records into tmpdir/name; returns the path in out. */
static void pack_synth(char *out, size_t outlen, const char *name, uint64_t n, uint32_t rps,
                       uint32_t rpf, int labels) {
    path_of(out, outlen, name);
    shard_images im = make_images(n, 3, 5, 2, labels);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = rps;
    o.records_per_frame = rpf;
    o.level = 1;
    int rc = shard_pack(out, &im, &o, err, sizeof err);
    if (rc) fprintf(stderr, "pack: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    shard_images_free(&im);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    CU_ASSERT_FATAL(fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(b, 1, n, f) == n);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }


/* --------------------------------------------------------------- schema */
static void test_schema(void) {
    shard_schema s = IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10);
    CU_ASSERT(shard_schema_record_bytes(&s) == 784);
    CU_ASSERT(shard_schema_check(&s, err, sizeof err) == 0);
    shard_schema bad[] = {
        IMG(0, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 70000, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 28, 65, SHARD_DTYPE_U8, SHARD_LABEL_U8, 10),
        IMG(28, 28, 1, (shard_dtype)2, SHARD_LABEL_U8, 10),
        IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_U8, 0),
        IMG(28, 28, 1, SHARD_DTYPE_U8, SHARD_LABEL_NONE, 3),
        IMG(28, 28, 1, SHARD_DTYPE_U8, (shard_label_kind)7, 3),
        IMG(65535, 65535, 64, SHARD_DTYPE_U8, SHARD_LABEL_NONE, 0),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CU_ASSERT(shard_schema_check(&bad[i], err, sizeof err) == -1);
}

/* ------------------------------------------------------------ round trip */
static void check_roundtrip(const char *name, uint64_t n, uint32_t rps, uint32_t rpf,
                            int labels) {
    char dir[4096];
    pack_synth(dir, sizeof dir, name, n, rps, rpf, labels);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    size_t rec = shard_dataset_record_bytes(ds);
    CU_ASSERT(rec == 30);
    CU_ASSERT(shard_dataset_records(ds) == n);
    CU_ASSERT(!strcmp(shard_dataset_split(ds), "train"));
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    uint64_t shards = (n + rps - 1) / rps, frames = 0;
    for (uint64_t s = 0; s < shards; s++) {
        uint64_t k = s + 1 < shards ? rps : n - s * rps;
        frames += (k + rpf - 1) / rpf;
    }
    CU_ASSERT(in.shards == shards);
    CU_ASSERT(in.frames == frames);
    CU_ASSERT(in.raw_bytes == n * (rec + (labels ? 1 : 0)));
    CU_ASSERT(in.file_bytes == in.compressed_bytes + shards * 128 + frames * 32);
    uint8_t *pix = malloc(n * rec), *lab = malloc(n);
    memset(lab, 0xee, n);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, lab, err, sizeof err) == 0);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rec; j++) bad += pix[i * rec + j] != rec_byte(i, j);
        bad += lab[i] != (labels ? i % 10 : 0);
    }
    CU_ASSERT(bad == 0);
    for (uint64_t i = 0; i < n; i += n / 7 + 1) {
        uint8_t one[30], l = 99;
        char where[256];
        CU_ASSERT_FATAL(shard_dataset_read_record(ds, i, one, &l, where, sizeof where, err,
                                                  sizeof err) == 0);
        CU_ASSERT(memcmp(one, pix + i * rec, rec) == 0);
        CU_ASSERT(l == lab[i]);
        CU_ASSERT(contains(where, "shard-") && contains(where, "frame"));
    }
    uint8_t one[30];
    CU_ASSERT(shard_dataset_read_record(ds, n, one, NULL, NULL, 0, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "out of range"));
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(pix);
    free(lab);
    shard_dataset_close(ds);
}

static void test_roundtrip(void) {
    check_roundtrip("rt1", 1000, 100, 16, 1);  /* shards split frames unevenly */
    check_roundtrip("rt2", 1001, 97, 10, 1);   /* last shard and last frame partial */
    check_roundtrip("rt3", 5, 4096, 256, 0);   /* one frame, no labels */
    check_roundtrip("rt4", 64, 8, 8, 1);       /* one frame per shard */
}

/* Gunzips an IDX file here (independently of shard_idx_read). */
static uint8_t *gunzip_all(const char *path, size_t *n) {
    gzFile f = gzopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    int k;
    while ((k = gzread(f, b + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)k;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    gzclose(f);
    *n = len;
    return b;
}

static void test_fmnist_roundtrip(void) {
    const char *d = getenv("JEPA_FMNIST_DIR");
    if (!d || !*d) d = "/usr/share/datasets/fashion-mnist";
    char img[4096], lab[4096], dir[4096];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", d);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", d);
    shard_images im;
    int rc = shard_idx_read(&im, img, lab, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 60000 && im.schema.height == 28 && im.schema.width == 28);
    CU_ASSERT(im.schema.channels == 1 && im.schema.num_classes == 10);
    size_t ni, nl;
    uint8_t *gi = gunzip_all(img, &ni), *gl = gunzip_all(lab, &nl);
    CU_ASSERT_FATAL(ni == 16 + 60000u * 784 && nl == 8 + 60000u);
    CU_ASSERT(memcmp(im.pixels, gi + 16, 60000u * 784) == 0);
    CU_ASSERT(memcmp(im.labels, gl + 8, 60000) == 0);
    path_of(dir, sizeof dir, "fmnist");
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.level = 1;
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
    shard_images_free(&im);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    CU_ASSERT(in.shards == 15 && in.records == 60000);
    uint8_t *pix = malloc(60000u * 784), *l = malloc(60000);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, pix, l, err, sizeof err) == 0);
    CU_ASSERT(memcmp(pix, gi + 16, 60000u * 784) == 0);
    CU_ASSERT(memcmp(l, gl + 8, 60000) == 0);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(pix);
    free(l);
    free(gi);
    free(gl);
}

/* ---------------------------------------------------------------- reader */
/* Reads nbatches from a reader into ids (batch indices of records). */
static void read_batches(shard_reader *r, int batch, uint64_t nbatches, uint32_t *ids,
                         uint8_t *labels_seen, int *content_bad) {
    size_t rec = 30;
    uint8_t *pix = malloc((size_t)batch * rec), lab[256];
    for (uint64_t b = 0; b < nbatches; b++) {
        int rc = shard_reader_next(r, pix, lab, err, sizeof err);
        if (rc) fprintf(stderr, "next: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        for (int i = 0; i < batch; i++) {
            const uint8_t *p = pix + (size_t)i * rec;
            uint32_t id = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24;
            ids[b * batch + i] = id;
            if (labels_seen) labels_seen[b * batch + i] = lab[i];
            for (size_t j = 0; j < rec; j++) *content_bad += p[j] != rec_byte(id, j);
            *content_bad += lab[i] != id % 10;
        }
    }
    free(pix);
}

static void test_coverage_disjoint(void) {
    char dir[4096];
    const uint64_t N = 1003;
    pack_synth(dir, sizeof dir, "cov", N, 150, 16, 1);
    const int batch = 7;
    int shuffles[] = {1, 50, 5000};
    for (int si = 0; si < 3; si++) {
        for (int W = 1; W <= 4; W++) {
            uint64_t nb = N / ((uint64_t)W * batch);
            uint32_t *ids = malloc(2 * W * nb * batch * sizeof *ids);
            int bad = 0;
            for (int rnk = 0; rnk < W; rnk++) {
                shard_reader *r;
                CU_ASSERT_FATAL(shard_reader_init(&r, dir, rnk, W, 42, batch, shuffles[si], 2, err,
                                                  sizeof err) == 0);
                CU_ASSERT_FATAL(shard_reader_batches_per_epoch(r) == nb);
                uint32_t *tmp = malloc(2 * nb * batch * sizeof *tmp);
                read_batches(r, batch, 2 * nb, tmp, NULL, &bad);
                for (int e = 0; e < 2; e++) /* layout ids (epoch, rank, nb*batch) */
                    memcpy(ids + ((size_t)e * W + rnk) * nb * batch, tmp + (size_t)e * nb * batch,
                           nb * batch * sizeof *tmp);
                free(tmp);
                shard_reader_free(r);
            }
            CU_ASSERT(bad == 0);
            for (int e = 0; e < 2; e++) {
                uint8_t *seen = calloc(N, 1);
                uint64_t dup = 0, used = (uint64_t)W * nb * batch;
                for (uint64_t k = 0; k < used; k++) {
                    uint32_t id = ids[(size_t)e * used + k];
                    CU_ASSERT_FATAL(id < N);
                    dup += seen[id]++;
                }
                CU_ASSERT(dup == 0);                           /* disjoint across ranks */
                CU_ASSERT(N - used <= (uint64_t)W * batch - 1); /* stated tolerance */
                free(seen);
            }
            /* epochs are reshuffled: rank 0's first batch differs between epochs */
            CU_ASSERT(memcmp(ids, ids + (size_t)W * nb * batch, batch * sizeof *ids) != 0);
            if (shuffles[si] == 1 && W == 1) { /* a window of one batch: G stream neighbours */
                uint64_t spread = 0; /* batches drawn from more than 2 frames of 16 */
                for (uint64_t b = 0; b < nb; b++) {
                    uint32_t fr[7];
                    int nf = 0;
                    for (int i = 0; i < batch; i++) {
                        uint32_t id = ids[b * batch + i], f = id / 150 * 16 + id % 150 / 16;
                        int k = 0;
                        while (k < nf && fr[k] != f) k++;
                        if (k == nf) fr[nf++] = f;
                    }
                    spread += nf > 2;
                }
                CU_ASSERT(spread == 0);
            }
            free(ids);
        }
    }
}

/* T batches of (rank, world, seed, shuffle, prefetch) from the start. */
static uint32_t *stream_of(const char *dir, int rank, int world, uint64_t seed, int batch,
                           int shuffle, int prefetch, uint64_t T) {
    shard_reader *r;
    CU_ASSERT_FATAL(shard_reader_init(&r, dir, rank, world, seed, batch, shuffle, prefetch, err,
                                      sizeof err) == 0);
    uint32_t *ids = malloc(T * batch * sizeof *ids);
    int bad = 0;
    read_batches(r, batch, T, ids, NULL, &bad);
    CU_ASSERT(bad == 0);
    shard_reader_free(r);
    return ids;
}

static void test_determinism(void) {
    char dir[4096];
    pack_synth(dir, sizeof dir, "det", 800, 120, 16, 1);
    const int batch = 9;
    const uint64_t T = 200; /* several epochs */
    uint32_t *a = stream_of(dir, 1, 2, 7, batch, 64, 0, T);
    uint32_t *b = stream_of(dir, 1, 2, 7, batch, 64, 3, T); /* thread changes nothing */
    uint32_t *c = stream_of(dir, 1, 2, 8, batch, 64, 3, T); /* another seed */
    CU_ASSERT(memcmp(a, b, T * batch * sizeof *a) == 0);
    CU_ASSERT(memcmp(a, c, batch * sizeof *a) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_resume(void) {
    char dir[4096];
    pack_synth(dir, sizeof dir, "res", 700, 100, 16, 1);
    const int batch = 8, world = 3, rank = 2, shuffle = 40;
    const uint64_t nb = 700 / (3 * 8), T = 3 * nb + 2;
    uint32_t *ref = stream_of(dir, rank, world, 5, batch, shuffle, 2, T);
    uint64_t stops[] = {0, 1, nb / 2, nb - 1, nb, nb + 1, 2 * nb - 3, 2 * nb};
    for (size_t si = 0; si < sizeof stops / sizeof *stops; si++) {
        uint64_t k = stops[si];
        shard_reader *r;
        CU_ASSERT_FATAL(shard_reader_init(&r, dir, rank, world, 5, batch, shuffle, 2, err,
                                          sizeof err) == 0);
        uint32_t *ids = malloc((T + 1) * batch * sizeof *ids);
        int bad = 0;
        read_batches(r, batch, k, ids, NULL, &bad);
        shard_reader_state st;
        shard_reader_get_state(r, &st);
        CU_ASSERT(st.epoch == k / nb && st.batch_in_epoch == k % nb);
        shard_reader_free(r);
        uint8_t saved[sizeof st]; /* a checkpoint stores the bytes verbatim */
        memcpy(saved, &st, sizeof st);
        shard_reader_state back;
        memcpy(&back, saved, sizeof back);
        CU_ASSERT_FATAL(shard_reader_init_at(&r, dir, rank, world, 5, batch, shuffle,
                                             (int)(si % 3), &back, err, sizeof err) == 0);
        read_batches(r, batch, T - k, ids + k * batch, NULL, &bad);
        CU_ASSERT(bad == 0);
        CU_ASSERT(memcmp(ids + k * batch, ref + k * batch, (T - k) * batch * sizeof *ids) == 0);
        shard_reader_free(r);
        free(ids);
    }
    free(ref);
    /* refused: the state must match the reader it restores */
    shard_reader *r;
    CU_ASSERT_FATAL(shard_reader_init(&r, dir, 0, 3, 5, batch, shuffle, 0, err, sizeof err) == 0);
    shard_reader_state st;
    shard_reader_get_state(r, &st);
    shard_reader_free(r);
    struct {
        int world, batch, shuffle;
        uint64_t seed;
        const char *what;
    } bad[] = {{2, 8, 40, 5, "global batch"}, {3, 9, 40, 5, "global batch"},
               {3, 8, 41, 5, "shuffle"}, {3, 8, 40, 6, "seed"}};
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT(shard_reader_init_at(&r, dir, 0, bad[i].world, bad[i].seed, bad[i].batch,
                                       bad[i].shuffle, 0, &st, err, sizeof err) == -1);
        CU_ASSERT(r == NULL && contains(err, bad[i].what));
    }
    char other[4096];
    pack_synth(other, sizeof other, "res-other", 700, 100, 8, 1);
    CU_ASSERT(shard_reader_init_at(&r, other, 0, 3, 5, 8, 40, 0, &st, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "dataset"));
    st.batch_in_epoch = nb;
    CU_ASSERT(shard_reader_init_at(&r, dir, 0, 3, 5, 8, 40, 0, &st, err, sizeof err) == -1);
    /* another world size with the same global batch (24) continues from it */
    st.batch_in_epoch = 3;
    CU_ASSERT_FATAL(shard_reader_init_at(&r, dir, 1, 4, 5, 6, 40, 0, &st, err, sizeof err) == 0);
    shard_reader_free(r);
    st.version = 0x53485231u; /* "SHR1": the per-rank order of older builds */
    CU_ASSERT(shard_reader_init_at(&r, dir, 0, 3, 5, 8, 40, 0, &st, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "state version"));
    CU_ASSERT(shard_reader_init(&r, dir, 0, 100, 5, 8, 40, 0, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "fewer than one global batch of 800 (8 per rank x 100 ranks)"));
    CU_ASSERT(shard_reader_init(&r, dir, 3, 3, 5, 8, 40, 0, err, sizeof err) == -1);
}

/* T global batches of G records as W ranks see them (rank r's slice at
 * [r*G/W, (r+1)*G/W) of each), from the start or from *st. Ranks alternate
 * thread and inline decoding. */
static uint32_t *global_of(const char *dir, int W, int G, int shuffle, uint64_t T,
                           const shard_reader_state *st) {
    int B = G / W, bad = 0;
    uint32_t *ids = malloc(T * G * sizeof *ids), *tmp = malloc(T * B * sizeof *tmp);
    for (int rnk = 0; rnk < W; rnk++) {
        shard_reader *r;
        int rc = shard_reader_init_at(&r, dir, rnk, W, 9, B, shuffle, rnk % 2 ? 0 : 3, st, err,
                                      sizeof err);
        if (rc) fprintf(stderr, "init: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        read_batches(r, B, T, tmp, NULL, &bad);
        for (uint64_t b = 0; b < T; b++)
            memcpy(ids + b * G + (size_t)rnk * B, tmp + b * B, B * sizeof *tmp);
        shard_reader_free(r);
    }
    CU_ASSERT(bad == 0);
    free(tmp);
    return ids;
}

/* Elastic determinism: the global batches (records and order) are the same
 * for W = 1..4 with one global batch, over several epochs and windows; a
 * state taken at one world size continues at another bitwise; each epoch
 * uses every record at most once and leaves out fewer than G; a rank
 * decodes only its run of each window (plus the frames at its ends). */
static void test_elastic(void) {
    char dir[4096];
    const uint64_t N = 1003;
    pack_synth(dir, sizeof dir, "elastic", N, 150, 16, 1);
    const int G = 24, shuffles[] = {1, 50, 100, 5000};
    const uint64_t nb = N / G, T = 3 * nb + 5;
    for (int si = 0; si < 4; si++) {
        uint32_t *ref = global_of(dir, 1, G, shuffles[si], T, NULL);
        for (uint64_t e = 0; e < 3; e++) { /* coverage of each epoch */
            uint8_t *seen = calloc(N, 1);
            uint64_t dup = 0;
            for (uint64_t k = 0; k < nb * G; k++) dup += seen[ref[e * nb * G + k]]++;
            CU_ASSERT(dup == 0 && N - nb * G < (uint64_t)G);
            free(seen);
        }
        CU_ASSERT(memcmp(ref, ref + nb * G, G * sizeof *ref) != 0); /* reshuffled */
        for (int W = 2; W <= 4; W++) {
            uint32_t *ids = global_of(dir, W, G, shuffles[si], T, NULL);
            CU_ASSERT(memcmp(ids, ref, T * G * sizeof *ids) == 0);
            free(ids);
        }
        /* a state taken at 2 ranks resumes at 1, 3 and 4 */
        uint64_t stops[] = {1, 7, nb - 1, nb, 2 * nb + 3};
        for (size_t k = 0; k < sizeof stops / sizeof *stops; k++) {
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, 1, 2, 9, G / 2, shuffles[si], 2, err,
                                              sizeof err) == 0);
            uint32_t *tmp = malloc(stops[k] * (G / 2) * sizeof *tmp);
            int bad = 0;
            read_batches(r, G / 2, stops[k], tmp, NULL, &bad);
            shard_reader_state st;
            shard_reader_get_state(r, &st);
            shard_reader_free(r);
            free(tmp);
            CU_ASSERT(st.global_batch == (uint32_t)G && st.world == 2);
            for (int W = 1; W <= 4; W += (W == 1 ? 2 : 1)) {
                uint32_t *ids = global_of(dir, W, G, shuffles[si], T - stops[k], &st);
                CU_ASSERT(memcmp(ids, ref + stops[k] * G, (T - stops[k]) * G * sizeof *ids) == 0);
                free(ids);
            }
        }
        free(ref);
    }
    /* decoding cost: a rank decodes its run of each window plus at most the
     * two frames (16 records) at its ends; 4 ranks about the data set once */
    for (int si = 1; si < 4; si++) {
        uint64_t n = (uint64_t)shuffles[si] / G, total = 0;
        if (n < 1) n = 1;
        if (n > nb) n = nb;
        uint64_t windows = (nb + n - 1) / n;
        for (int rnk = 0; rnk < 4; rnk++) {
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, rnk, 4, 9, G / 4, shuffles[si], 0, err,
                                              sizeof err) == 0);
            uint32_t *tmp = malloc(nb * (G / 4) * sizeof *tmp);
            int bad = 0;
            read_batches(r, G / 4, nb, tmp, NULL, &bad); /* one epoch */
            uint64_t dec = shard_reader_records_decoded(r);
            CU_ASSERT(dec >= nb * (G / 4) && dec <= nb * (G / 4) + windows * 2 * 16);
            total += dec;
            shard_reader_free(r);
            free(tmp);
        }
        if (si == 3) fprintf(stderr, "\n    4 ranks decoded %llu records for an epoch of %llu used "
                             "(%llu windows) ", (unsigned long long)total,
                             (unsigned long long)(nb * G), (unsigned long long)windows);
    }
}

/* ------------------------------------------------------------ corruption */
/* A one-shard dataset of 40 records in 5 frames. */
static void tiny_dataset(char *dir, size_t n, char *shard, size_t sn) {
    path_of(dir, n, "tiny");
    rm_tree(dir);
    pack_synth(dir, n, "tiny", 40, 4096, 8, 1);
    snprintf(shard, sn, "%s/shard-00000.jshard", dir);
}

static uint64_t count_problems(const char *dir) { return shard_verify(dir, NULL, NULL); }

static void collect(void *ctx, const char *line) {
    char *buf = ctx;
    if (!*buf) snprintf(buf, SHARD_ERR_MAX, "%s", line);
}

static void test_corrupt_header_index(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t index_offset = shard_get64(orig + 64);
    int failures = 0, named = 0, total = 0;
    /* every byte of the header and of the index */
    for (size_t off = 0; off < n; off++) {
        if (off >= 128 && off < index_offset) continue;
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        b[off] ^= 0x5a;
        write_file(sp, b, n);
        shard_dataset *ds;
        total++;
        if (shard_dataset_open(&ds, dir, err, sizeof err) == -1) {
            failures++;
            named += contains(err, sp) && contains(err, "offset ");
        } else {
            shard_dataset_close(ds);
        }
        char first[SHARD_ERR_MAX] = "";
        CU_ASSERT(shard_verify(dir, collect, first) >= 1);
        free(b);
    }
    CU_ASSERT(failures == total);
    CU_ASSERT(named == total);
    write_file(sp, orig, n);
    CU_ASSERT(count_problems(dir) == 0);
    free(orig);
}

static void test_corrupt_frames(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t index_offset = shard_get64(orig + 64);
    int ok_named = 0, total = 0;
    for (size_t off = 128; off < index_offset; off++) {
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        b[off] ^= 0x01;
        write_file(sp, b, n);
        free(b);
        total++;
        char first[SHARD_ERR_MAX] = "";
        uint64_t p = shard_verify(dir, collect, first);
        ok_named += p == 1 && contains(first, sp) && contains(first, "offset ") &&
                    contains(first, "frame");
        if (off % 17 == 0) { /* the reader surfaces it too, thread or not */
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, 0, 1, 1, 8, 16, (int)(off % 2), err,
                                              sizeof err) == 0);
            uint8_t pix[8 * 30], lab[8];
            int rc = 0;
            for (int k = 0; k < 10 && rc == 0; k++) rc = shard_reader_next(r, pix, lab, err,
                                                                            sizeof err);
            CU_ASSERT(rc == -1 && contains(err, "frame") && contains(err, sp));
            CU_ASSERT(shard_reader_next(r, pix, lab, err, sizeof err) == -1);
            shard_reader_free(r);
            shard_dataset *ds;
            CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
            uint8_t all[40 * 30];
            CU_ASSERT(shard_dataset_read_all(ds, all, NULL, err, sizeof err) == -1);
            shard_dataset_close(ds);
        }
    }
    CU_ASSERT(ok_named == total);
    write_file(sp, orig, n);
    free(orig);
}

static void test_truncated(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    size_t cuts[] = {0, 7, 8, 100, 127, 128, 129, 200, n - 33, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_file(sp, orig, cuts[i]);
        shard_dataset *ds;
        CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
        CU_ASSERT(contains(err, sp) && contains(err, "offset "));
        CU_ASSERT(cuts[i] < 8 || contains(err, "truncated"));
        CU_ASSERT(count_problems(dir) == 1);
    }
    uint8_t *longer = malloc(n + 5);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 5);
    write_file(sp, longer, n + 5);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "trailing bytes"));
    memcpy(longer, "NOTASHRD", 8);
    write_file(sp, longer, n);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "bad magic") && contains(err, "offset 0"));
    unlink(sp);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, sp) && contains(err, "cannot open"));
    free(longer);
    write_file(sp, orig, n);
    free(orig);
}

/* Rewrites header field at off (4 or 8 bytes) and re-seals the header CRC,
 * so the range checks behind the checksum are what must catch it. */
static void forge(const char *sp, const uint8_t *orig, size_t n, size_t off, int width,
                  uint64_t v, int index_entry_field) {
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    if (width == 4) shard_put32(b + off, (uint32_t)v);
    else shard_put64(b + off, v);
    if (index_entry_field) { /* re-seal the index CRC, which lives in the header */
        uint64_t io = shard_get64(b + 64);
        shard_put32(b + 80, shard_crc32(b + io, n - io));
    }
    shard_put32(b + 124, shard_crc32(b, 124));
    write_file(sp, b, n);
    free(b);
}

static void test_absurd_counts(void) {
    char dir[4096], sp[4200];
    tiny_dataset(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t io = shard_get64(orig + 64);
    struct {
        size_t off;
        int width;
        uint64_t v;
        int idx;
        const char *want;
    } cases[] = {
        {8, 4, 3, 0, "version 3 not supported"},
        {8, 4, 2, 0, "version 2 shard"}, /* an image header read as v2 */
        {16, 4, 0, 0, "schema"},
        {20, 4, 1u << 30, 0, "schema"},
        {24, 4, 100000, 0, "schema"},
        {28, 4, 9, 0, "dtype"},
        {32, 4, 5, 0, "label kind"},
        {36, 4, 300, 0, "num_classes"},
        {40, 4, 31, 0, "record bytes"},
        {44, 4, 0, 0, "records per frame"},
        {44, 4, 0xffffffffu, 0, "records per frame"},
        {48, 8, UINT64_MAX, 0, "record count"},
        {48, 8, 0, 0, "record count"},
        {56, 4, 0xffffffffu, 0, "frame count"},
        {56, 4, 0, 0, "frame count"},
        {56, 4, 6, 0, "record count"},
        {64, 8, UINT64_MAX - 10, 0, "index offset"},
        {64, 8, 0, 0, "index offset"},
        {72, 8, 1ull << 62, 0, "header says"},
        {100, 4, 1, 0, "reserved"},
        {io + 0, 8, 1ull << 40, 1, "frame 0"},          /* frame offset */
        {io + 8, 4, 0xffffffffu, 1, "frame 0"},         /* compressed bytes */
        {io + 32 + 12, 4, 12345, 1, "raw size"},        /* raw bytes */
        {io + 32 + 16, 8, 3, 1, "records"},             /* first record */
        {io + 64 + 24, 4, 1u << 31, 1, "records"},      /* record count */
        {io + 64 + 8, 4, 1, 1, "frame 3"},              /* leaves a gap before frame 3 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge(sp, orig, n, cases[i].off, cases[i].width, cases[i].v, cases[i].idx);
        shard_file sf;
        int rc = shard_file_open(&sf, sp, NULL, err, sizeof err);
        CU_ASSERT(rc == -1);
        if (rc == -1 && !(contains(err, cases[i].want) && contains(err, "offset ")))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, cases[i].want);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want) && contains(err, sp));
        if (rc == 0) shard_file_free(&sf);
        CU_ASSERT(count_problems(dir) >= 1);
    }
    /* a valid shard that is not the one the manifest lists */
    forge(sp, orig, n, 60, 4, 9, 0); /* the informative zstd level */
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest"));
    write_file(sp, orig, n);
    free(orig);
}

static void test_manifest(void) {
    const char *good =
        "{\"format\": \"jepa-shard\", \"version\": 1, \"split\": \"test\", \"schema\": "
        "{\"height\": 2, \"width\": 3, \"channels\": 1, \"dtype\": \"u8\", \"label\": \"u8\", "
        "\"num_classes\": 10}, \"records\": 5, \"records_per_shard\": 4, \"records_per_frame\": 2, "
        "\"level\": 3, \"shards\": [{\"file\": \"a.jshard\", \"records\": 4, \"bytes\": 300, "
        "\"header_crc32\": 7}, {\"file\": \"b.jshard\", \"records\": 1, \"bytes\": 200, "
        "\"header_crc32\": 8}]}";
    shard_manifest m;
    CU_ASSERT_FATAL(shard_manifest_parse(&m, good, strlen(good), "m.json", err, sizeof err) == 0);
    CU_ASSERT(m.nshards == 2 && m.records == 5 && m.schema.width == 3 && m.shards[1].header_crc == 8);
    CU_ASSERT(!strcmp(m.split, "test") && !strcmp(m.shards[0].file, "a.jshard"));
    shard_manifest_free(&m);
    struct {
        const char *from, *to, *want;
    } edits[] = {
        {"\"version\": 1", "\"version\": 4", "version 4 not supported"},
        {"\"version\": 1", "\"version\": 2", "version 1 goes with images"},
        {"\"records\": 5", "\"records\": 6", "shards hold 5"},
        {"a.jshard", "../a.jshard", "only letters"},
        {"a.jshard", "b.jshard", "listed twice"},
        {"\"level\": 3", "\"levle\": 3", "unknown key 'levle'"},
        {"\"height\": 2", "\"height\": \"2\"", "expected a number"},
        {"\"height\": 2", "\"height\": -2", "not a whole number"},
        {"\"height\": 2", "\"height\": 0", "out of range"},
        {"\"records\": 1,", "\"records\": 99999999999999999999999,", "too large"},
        {"\"split\": \"test\", ", "", "missing key 'split'"},
        {"\"shards\": [", "\"shards\": [[], ", "expected a mapping"},
        {"\"format\": \"jepa-shard\"", "\"format\": \"zip\"", "expected 'jepa-shard'"},
        {"\"num_classes\": 10", "\"num_classes\": 0", "num_classes"},
        {"\"dtype\": \"u8\"", "\"dtype\": \"f32\"", "unknown"},
        {"{\"format\"", "{{\"format\"", "syntax error"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        char text[2048];
        const char *at = strstr(good, edits[i].from);
        CU_ASSERT_FATAL(at != NULL);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, edits[i].to,
                 at + strlen(edits[i].from));
        int rc = shard_manifest_parse(&m, text, strlen(text), "m.json", err, sizeof err);
        if (rc == 0 || !contains(err, edits[i].want))
            fprintf(stderr, "edit %zu: rc %d '%s' lacks '%s'\n", i, rc, err, edits[i].want);
        CU_ASSERT(rc == -1 && contains(err, edits[i].want) && contains(err, "m.json"));
    }
    CU_ASSERT(shard_manifest_parse(&m, "", 0, "m.json", err, sizeof err) == -1);
    CU_ASSERT(shard_manifest_parse(&m, "[1, 2]", 6, "m.json", err, sizeof err) == -1);
    /* a dataset whose manifest disagrees with its shard */
    char dir[4096], mp[4200];
    tiny_dataset(dir, sizeof dir, mp, sizeof mp);
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *text = (char *)read_file(mp, &n);
    char *p = strstr(text, "\"records\": 40, \"bytes\"");
    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, "\"records\": 41", 13);
    p = strstr(text, "\"records\": 40,");
    memcpy(p, "\"records\": 41", 13);
    write_file(mp, text, n);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest says 41") && contains(err, "offset 48"));
    unlink(mp);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "manifest.json") && contains(err, "not a dataset"));
    free(text);
}

/* ------------------------------------------------------------ atomicity */
static int partial_dirs_left(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += strstr(e->d_name, ".partial-") != NULL;
    closedir(d);
    return n;
}

static void test_writer_atomic(void) {
    char dir[4096], f[4200];
    path_of(dir, sizeof dir, "atomic");
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
    snprintf(f, sizeof f, "%s/keep.txt", dir);
    write_file(f, "x", 1);
    shard_images im = make_images(50, 3, 5, 2, 1);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "not empty") && contains(err, dir));
    unlink(f); /* now an empty directory: allowed, replaced whole */
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
    CU_ASSERT(count_problems(dir) == 0);
    /* a failure mid-pack (label out of range at record 30) leaves nothing */
    path_of(dir, sizeof dir, "atomic2");
    im.labels[30] = 10;
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "record 30"));
    struct stat st;
    CU_ASSERT(stat(dir, &st) == -1);
    CU_ASSERT(partial_dirs_left() == 0);
    /* a writer abandoned after shards were written also leaves nothing */
    im.labels[30] = 3;
    o.records_per_shard = 10;
    shard_writer *w;
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &im.schema, &o, err, sizeof err) == 0);
    CU_ASSERT_FATAL(shard_writer_add(w, im.pixels, im.labels, 35, err, sizeof err) == 0);
    CU_ASSERT(partial_dirs_left() == 1 && stat(dir, &st) == -1);
    shard_writer_abort(w);
    CU_ASSERT(partial_dirs_left() == 0 && stat(dir, &st) == -1);
    o.level = 0;
    CU_ASSERT(shard_pack(dir, &im, &o, err, sizeof err) == -1 && contains(err, "level"));
    shard_images_free(&im);
}

/* --------------------------------------------------------------- sources */
static void test_sources(void) {
    char d[4096], p[4200], lp[4200];
    path_of(d, sizeof d, "pnm");
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    /* b.pgm 3x2 maxval 255, a.pgm maxval 15 (scaled), both with a comment */
    snprintf(p, sizeof p, "%s/b.pgm", d);
    write_file(p, "P5\n# c\n3 2\n255\n\x01\x02\x03\x04\x05\x06", 21);
    snprintf(p, sizeof p, "%s/a.pgm", d);
    write_file(p, "P5 3 2 15\n\x00\x0f\x05\x01\x02\x03", 16);
    snprintf(lp, sizeof lp, "%s/labels.txt", tmpdir);
    write_file(lp, "# name label\nb.pgm 4\na.pgm 1\n", 29);
    shard_images im;
    int rc = shard_pnm_dir_read(&im, d, lp, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(im.n == 2 && im.schema.height == 2 && im.schema.width == 3);
    CU_ASSERT(im.schema.num_classes == 5 && im.labels[0] == 1 && im.labels[1] == 4);
    const uint8_t want[12] = {0, 255, 85, 17, 34, 51, 1, 2, 3, 4, 5, 6};
    CU_ASSERT(memcmp(im.pixels, want, 12) == 0);
    shard_images_free(&im);
    write_file(lp, "b.pgm 4\nc.pgm 1\n", 16);
    CU_ASSERT(shard_pnm_dir_read(&im, d, lp, err, sizeof err) == -1);
    CU_ASSERT(contains(err, ":2:") && contains(err, "c.pgm"));
    write_file(lp, "b.pgm 4\n", 8);
    CU_ASSERT(shard_pnm_dir_read(&im, d, lp, err, sizeof err) == -1 && contains(err, "a.pgm"));
    snprintf(p, sizeof p, "%s/c.ppm", d); /* RGB 1x2, interleaved -> planar */
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05\x06", 17);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "c.ppm"));
    rm_tree(d);
    CU_ASSERT_FATAL(mkdir(d, 0755) == 0);
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05\x06", 17);
    CU_ASSERT_FATAL(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == 0);
    const uint8_t rgb[6] = {1, 4, 2, 5, 3, 6};
    CU_ASSERT(im.schema.channels == 3 && memcmp(im.pixels, rgb, 6) == 0 && !im.labels);
    shard_images_free(&im);
    write_file(p, "P6 2 1 255\n\x01\x02\x03\x04\x05", 16);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "offset"));
    write_file(p, "P3 2 1 255\n1 2 3 4 5 6", 22);
    CU_ASSERT(shard_pnm_dir_read(&im, d, NULL, err, sizeof err) == -1 && contains(err, "P5"));
    /* raw arrays */
    snprintf(p, sizeof p, "%s/raw.bin", tmpdir);
    uint8_t raw[24];
    for (int i = 0; i < 24; i++) raw[i] = (uint8_t)i;
    write_file(p, raw, 24);
    CU_ASSERT_FATAL(shard_raw_read(&im, p, NULL, 2, 2, 1, err, sizeof err) == 0);
    CU_ASSERT(im.n == 6 && memcmp(im.pixels, raw, 24) == 0);
    shard_images_free(&im);
    CU_ASSERT(shard_raw_read(&im, p, NULL, 5, 1, 1, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "not a whole number"));
    CU_ASSERT(shard_raw_read(&im, p, p, 2, 2, 1, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "expected 6"));
    /* IDX edge cases (small plain files) */
    uint8_t idx[16 + 8] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    snprintf(p, sizeof p, "%s/i.idx", tmpdir);
    write_file(p, idx, 24);
    snprintf(lp, sizeof lp, "%s/l.idx", tmpdir);
    uint8_t lab[10] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    write_file(lp, lab, 10);
    CU_ASSERT_FATAL(shard_idx_read(&im, p, lp, err, sizeof err) == 0);
    CU_ASSERT(im.n == 2 && im.schema.num_classes == 8);
    shard_images_free(&im);
    write_file(p, idx, 23);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "truncated"));
    uint8_t longer[25] = {0};
    memcpy(longer, idx, 24);
    write_file(p, longer, 25);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "trailing"));
    idx[3] = 1;
    write_file(p, idx, 24);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, "bad magic"));
    idx[3] = 3;
    idx[4] = 0x7f; /* 2^31 images in a 24-byte file: refused cheaply */
    write_file(p, idx, 24);
    CU_ASSERT(shard_idx_read(&im, p, lp, err, sizeof err) == -1 && contains(err, p));
    CU_ASSERT(im.pixels == NULL && im.n == 0);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"schema checks", test_schema},
        {"round trip: bytes, labels, counts, sizes", test_roundtrip},
        {"Fashion-MNIST train: IDX -> shards -> bytes", test_fmnist_roundtrip},
        {"reader: coverage and disjointness, W = 1..4", test_coverage_disjoint},
        {"reader: deterministic, thread-independent", test_determinism},
        {"reader: resume equals uninterrupted", test_resume},
        {"reader: elastic determinism (W = 1..4, resume across W)", test_elastic},
        {"corrupt: every header and index byte", test_corrupt_header_index},
        {"corrupt: every frame byte", test_corrupt_frames},
        {"corrupt: truncated, extended, wrong magic, missing", test_truncated},
        {"corrupt: absurd counts with valid checksums", test_absurd_counts},
        {"manifest: strict parse, cross-checks", test_manifest},
        {"writer: atomic, no partial output", test_writer_atomic},
        {"sources: PGM/PPM, raw, IDX edge cases", test_sources},
    };
    int rc = test_main("shard", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
