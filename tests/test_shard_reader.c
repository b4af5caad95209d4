/* test_shard_reader.c - the training reader over synthetic shard sets
 * (shard_synth.c): every record once per epoch and disjoint across ranks,
 * deterministic and thread-independent, exact resume, and elastic
 * determinism (the same global batches for W = 1..4, resume across W). Also
 * under ASan/UBSan (test_shard_reader_asan). */
#include <stdlib.h>
#include <string.h>

#include "shard.h"
#include "shard_internal.h"
#include "shard_synth.h"
#include "testutil.h"

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

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"reader: coverage and disjointness, W = 1..4", test_coverage_disjoint},
        {"reader: deterministic, thread-independent", test_determinism},
        {"reader: resume equals uninterrupted", test_resume},
        {"reader: elastic determinism (W = 1..4, resume across W)", test_elastic},
    };
    int rc = test_main("shard reader", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
