/* test_shard_stats.c - the dataset's pixel statistics (manifest versions 3 and 4)
 * and range reads, the two things that let no rank hold a whole data set:
 * packing computes the sums (checked against a direct count), an older
 * version 1 manifest gets the same sums from a streaming pass, every
 * truncation and corruption of the field is refused in one line (a
 * plausible one by the manifest's checksum, a re-sealed one by verify), and read_range equals read_all
 * over ranges that cross frames and shards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard_internal.h"
#include "shard_testlib.h"
#include "testutil.h"

static char err[SHARD_ERR_MAX];

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    b[*n] = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* text with the first `from` replaced by `to` (malloc'd) */
static char *edit(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    if (!at) return NULL;
    size_t n = strlen(text) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* 203 images 3x5x2 with labels, 8 per frame, 64 per shard: 4 shards, a
 * short last frame and shard. Pixels skewed so the sums are not symmetric. */
#define N_REC 203
#define REC 30
static uint8_t px[N_REC * REC], lab[N_REC];
static char dir[256];

static void pack(void) {
    shard_images im;
    memset(&im, 0, sizeof im);
    im.schema.height = 3;
    im.schema.width = 5;
    im.schema.channels = 2;
    im.schema.dtype = SHARD_DTYPE_U8;
    im.schema.label = SHARD_LABEL_U8;
    im.schema.num_classes = 7;
    im.n = N_REC;
    for (int i = 0; i < N_REC * REC; i++) px[i] = (uint8_t)((i * 37 + i / 7) % 256 * (i % 3 ? 1 : 0));
    for (int i = 0; i < N_REC; i++) lab[i] = (uint8_t)(i % 7);
    im.pixels = px;
    im.labels = lab;
    snprintf(dir, sizeof dir, "/tmp/test_shard_stats.%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CU_ASSERT(system(cmd) == 0);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = 64;
    o.records_per_frame = 8;
    CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
}

static void cleanup(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CU_ASSERT(system(cmd) == 0);
}

static shard_pixel_stats direct(void) {
    shard_pixel_stats st = {N_REC * REC, 0, 0};
    for (int i = 0; i < N_REC * REC; i++) {
        st.sum += px[i];
        st.sum_sq += (uint64_t)px[i] * px[i];
    }
    return st;
}

static int same(const shard_pixel_stats *a, const shard_pixel_stats *b) {
    return a->count == b->count && a->sum == b->sum && a->sum_sq == b->sum_sq;
}

static void test_round_trip(void) {
    pack();
    shard_pixel_stats want = direct(), got;
    char mp[300];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *text = slurp(mp, &n);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT(contains(text, "\"version\": 4,") && contains(text, "\"pixel_stats\": {\"count\": 6090, "));
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    CU_ASSERT(shard_dataset_has_pixel_stats(ds, &got) == 1 && same(&got, &want));
    int fm = -1;
    memset(&got, 0, sizeof got);
    CU_ASSERT(shard_dataset_pixel_stats(ds, &got, &fm, err, sizeof err) == 0 && fm == 1);
    CU_ASSERT(same(&got, &want));
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    /* written again from the parse: the same bytes */
    CU_ASSERT(tl_manifest_rewrites_same(text, n));
    free(text);
    cleanup();
}

/* A dataset packed before version 3: the same sums by a streaming pass. */
static void test_old_manifest(void) {
    pack();
    char mp[300];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *v4 = slurp(mp, &n), *text = tl_manifest_unseal(v4, n, 1);
    CU_ASSERT_FATAL(text != NULL);
    char *at = strstr(text, "  \"pixel_stats\"");
    CU_ASSERT_FATAL(at != NULL);
    char *eol = strchr(at, '\n');
    memmove(at, eol + 1, strlen(eol + 1) + 1);
    char *v1 = strdup(text);
    spit(mp, v1);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_pixel_stats want = direct(), got;
    CU_ASSERT(shard_dataset_has_pixel_stats(ds, &got) == 0);
    int fm = -1;
    CU_ASSERT(shard_dataset_pixel_stats(ds, &got, &fm, err, sizeof err) == 0 && fm == 0);
    CU_ASSERT(same(&got, &want));
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(v4);
    free(text);
    free(v1);
    cleanup();
}

static void test_corrupt(void) {
    pack();
    char mp[300], line[200];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *good = slurp(mp, &n);
    shard_pixel_stats st = direct();
    snprintf(line, sizeof line, "\"sum\": %llu, \"sum_sq\": %llu}", (unsigned long long)st.sum,
             (unsigned long long)st.sum_sq);
    CU_ASSERT_FATAL(contains(good, line));
    char big[200], bigsq[200], cs[200], cnt[200];
    snprintf(big, sizeof big, "\"sum\": %llu, ", (unsigned long long)st.count * 255 + 1);
    snprintf(bigsq, sizeof bigsq, "\"sum_sq\": %llu}", (unsigned long long)st.sum * 255 + 1);
    /* sum_sq below sum^2 / count: no bytes have these moments */
    snprintf(cs, sizeof cs, "\"sum_sq\": %llu}", (unsigned long long)(st.sum * st.sum / st.count - 1));
    snprintf(cnt, sizeof cnt, "\"count\": %llu,", (unsigned long long)st.count + REC);
    char sumtxt[64], sqtxt[64];
    snprintf(sumtxt, sizeof sumtxt, "\"sum\": %llu, ", (unsigned long long)st.sum);
    snprintf(sqtxt, sizeof sqtxt, "\"sum_sq\": %llu}", (unsigned long long)st.sum_sq);
    struct {
        const char *from, *to, *want;
    } parse_edits[] = {
        {sumtxt, big, "impossible"},
        {sqtxt, bigsq, "impossible"},
        {sqtxt, cs, "impossible"},
        {"\"count\": 6090, ", "", "missing key 'count'"},
        {"\"count\"", "\"cnt\"", "unknown key 'cnt'"},
        {"\"count\": 6090", "\"count\": -1", "not a whole number"},
        {"\"count\": 6090", "\"count\": 6.5", "not a whole number"},
        {"\"version\": 4", "\"version\": 1", "only image manifests of version 3 or 4 have them"},
        {"\"version\": 4", "\"version\": 3", "crc32: only manifest version 4 has it"},
        {"\"pixel_stats\": {", "\"pixel_stats\": [{", "syntax error"},
        {"\"pixel_stats\": {\"count\": 6090, ", "\"pixel_stats\": 7, \"x\": {", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof parse_edits / sizeof *parse_edits; i++) {
        char *t = edit(good, parse_edits[i].from, parse_edits[i].to);
        CU_ASSERT_FATAL(t != NULL && tl_manifest_reseal(t, strlen(t)) == 0);
        shard_manifest m;
        int rc = shard_manifest_parse(&m, t, strlen(t), "m.json", err, sizeof err);
        if (rc == 0 || !contains(err, parse_edits[i].want))
            fprintf(stderr, "edit %zu: rc %d '%s' lacks '%s'\n", i, rc, err, parse_edits[i].want);
        CU_ASSERT(rc == -1 && contains(err, parse_edits[i].want) && contains(err, "m.json") &&
                  !strchr(err, '\n'));
        free(t);
    }
    /* version 4 (images) without the field */
    char *at = strstr(good, "  \"pixel_stats\""), *nost = malloc(n + 1);
    memcpy(nost, good, (size_t)(at - good));
    strcpy(nost + (at - good), strchr(at, '\n') + 1);
    CU_ASSERT_FATAL(tl_manifest_reseal(nost, strlen(nost)) == 0);
    shard_manifest m;
    CU_ASSERT(shard_manifest_parse(&m, nost, strlen(nost), "m.json", err, sizeof err) == -1 &&
              contains(err, "version 4 needs pixel_stats"));
    /* every truncation is refused, the last newline's too: the trailer is exact */
    int bad = 0;
    for (size_t k = 0; k < n; k++)
        if (shard_manifest_parse(&m, good, k, "m.json", err, sizeof err) == 0) {
            shard_manifest_free(&m);
            bad++;
        }
    CU_ASSERT(bad == 0);
    /* a count that parses but disagrees with the records: refused at open */
    char *t = edit(good, "\"count\": 6090,", cnt);
    CU_ASSERT_FATAL(tl_manifest_reseal(t, strlen(t)) == 0);
    spit(mp, t);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 &&
              contains(err, "pixel_stats count 6120") && contains(err, "manifest.json"));
    free(t);
    /* plausible sums that are not the data's: the manifest's checksum refuses
     * them at open, and verify says which numbers are wrong */
    char fake[64];
    snprintf(fake, sizeof fake, "\"sum\": %llu, ", (unsigned long long)st.sum + 1);
    t = edit(good, sumtxt, fake);
    spit(mp, t);
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 &&
              contains(err, "manifest.json: checksum mismatch") && !strchr(err, '\n'));
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 2); /* the checksum, the sums */
    /* re-sealed (a forger, or a build before version 4): only verify can tell */
    CU_ASSERT_FATAL(tl_manifest_reseal(t, strlen(t)) == 0);
    spit(mp, t);
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 1);
    free(t);
    spit(mp, good);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(good);
    free(nost);
    cleanup();
}

static void test_read_range(void) {
    pack();
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    uint8_t *all = malloc(N_REC * REC), all_l[N_REC], *got = malloc(N_REC * REC), got_l[N_REC];
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, all, all_l, err, sizeof err) == 0);
    CU_ASSERT(memcmp(all, px, N_REC * REC) == 0 && memcmp(all_l, lab, N_REC) == 0);
    /* within a frame, across frames, across shards, whole, the short tail */
    static const int ranges[][2] = {{0, 1}, {3, 4}, {5, 19}, {60, 10}, {63, 66}, {0, N_REC},
                                    {200, 3}, {202, 1}, {128, 0}, {17, 170}};
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        int a = ranges[r][0], c = ranges[r][1];
        memset(got, 0xee, N_REC * REC);
        CU_ASSERT(shard_dataset_read_range(ds, a, c, got, got_l, err, sizeof err) == 0);
        CU_ASSERT(memcmp(got, all + (size_t)a * REC, (size_t)c * REC) == 0);
        CU_ASSERT(memcmp(got_l, all_l + a, c) == 0);
        CU_ASSERT(c == N_REC || got[(size_t)c * REC] == 0xee); /* nothing past the range */
    }
    CU_ASSERT(shard_dataset_read_range(ds, 100, 104, got, NULL, err, sizeof err) == -1 &&
              contains(err, "past the end"));
    CU_ASSERT(shard_dataset_read_range(ds, 204, 0, got, NULL, err, sizeof err) == -1);
    CU_ASSERT(shard_dataset_read_range(ds, UINT64_MAX, 2, got, NULL, err, sizeof err) == -1);
    shard_dataset_close(ds);
    free(all);
    free(got);
    cleanup();
}

int main(void) {
    const test_case cases[] = {
        {"pixel stats: packed, read back, rewritten the same", test_round_trip},
        {"pixel stats: version 1 manifest, streaming pass", test_old_manifest},
        {"pixel stats: corruption and truncation", test_corrupt},
        {"read_range equals read_all", test_read_range},
    };
    return test_main("shard_stats", cases, sizeof cases / sizeof cases[0]);
}
