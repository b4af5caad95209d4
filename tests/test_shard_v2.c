/* test_shard_v2.c - record datasets (shard format version 2: several named,
 * typed, fixed-shape fields per record) and the promise that image datasets
 * still write version 1 unchanged. Records are the world-model schema of
 * shard_testlib.h, every byte a formula of the record's index, so every
 * byte a reader returns is checked against an independent value; a second,
 * independent encoder written from docs/shard-format.md must produce the
 * writer's files byte for byte. Corrupt files: test_shard_v2_corrupt.c.
 * Also run under ASan/UBSan (test_shard_v2_asan). */
#include <zlib.h>

#include "shard.h"

static char tmpdir[] = "/tmp/test_shard_v2_XXXXXX";
static char err[SHARD_ERR_MAX];

#include "shard_v2_helpers.h"

/* ------------------------------------------------------------- schema API */
static void test_schema_api(void) {
    shard_schema s;
    tl_world_schema(&s, 16, 32);
    CU_ASSERT(shard_schema_check(&s, err, sizeof err) == 0);
    CU_ASSERT(shard_field_bytes(&s.fields[0]) == 16 * 32 * 32);
    CU_ASSERT(shard_field_bytes(&s.fields[1]) == 15 * 2 * 4);
    CU_ASSERT(shard_field_bytes(&s.fields[2]) == 16 * 2 * 4);
    CU_ASSERT(shard_schema_field_offset(&s, 0) == 0);
    CU_ASSERT(shard_schema_field_offset(&s, 1) == 16384);
    CU_ASSERT(shard_schema_field_offset(&s, 2) == 16384 + 120);
    CU_ASSERT(shard_schema_record_bytes(&s) == 16384 + 120 + 128);
    CU_ASSERT(shard_schema_field_index(&s, "state") == 2);
    CU_ASSERT(shard_schema_field_index(&s, "frames") == 0);
    CU_ASSERT(shard_schema_field_index(&s, "reward") == -1);
    shard_field scalar = {"reward", SHARD_DTYPE_F32, 0, {0, 0, 0, 0}};
    CU_ASSERT(shard_field_bytes(&scalar) == 4);
    shard_schema img = {.height = 28, .width = 28, .channels = 1, .dtype = SHARD_DTYPE_U8};
    CU_ASSERT(shard_schema_field_index(&img, "frames") == -1);
    CU_ASSERT(shard_schema_record_bytes(&img) == 784);
    /* a name set with snprintf on an unzeroed field (junk after the NUL) is fine */
    shard_schema junk = s;
    memset(junk.fields[1].name, 'x', SHARD_FIELD_NAME_MAX);
    snprintf(junk.fields[1].name, 8, "actions");
    CU_ASSERT(shard_schema_check(&junk, err, sizeof err) == 0);
}

/* Each edit of a sound schema, and the words its one-line error must hold. */
static void test_bad_schemas(void) {
    shard_schema good;
    tl_world_schema(&good, 4, 3);
    struct {
        int field, what;
        uint32_t v;
        const char *want;
    } cases[] = {
        {-1, 0, 17, "17 fields, at most 16"},
        {-1, 1, 28, "image members 0"},
        {-1, 2, SHARD_LABEL_U8, "image members 0"},
        {1, 0, 0, "field 1: name must be 1 to 31"},
        {1, 1, '/', "field 1: name has byte 0x2f"},
        {1, 2, 0, "field 1: name must be 1 to 31 characters (no NUL"},
        {2, 3, 0, "fields 0 and 2 are both named 'frames'"},
        {1, 4, 3, "field 1 ('actions'): dtype 3 unknown"},
        {1, 5, 5, "field 1 ('actions'): ndim 5 out of range"},
        {1, 6, 0, "field 1 ('actions'): shape[1] is 0"},
        {1, 7, 9, "field 1 ('actions'): shape[2] is 9 beyond ndim 2"},
        {0, 8, 65536, "field 0 ('frames'): more than 67108864 bytes"},
        {0, 9, 0, "record of more than 67108864 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        shard_schema s = good;
        shard_field *f = cases[i].field >= 0 ? &s.fields[cases[i].field] : NULL;
        switch (cases[i].what) {
        case 0: if (f) memset(f->name, 0, sizeof f->name); else s.nfields = cases[i].v; break;
        case 1: if (f) f->name[2] = (char)cases[i].v; else s.height = cases[i].v; break;
        case 2: if (f) memset(f->name, 'a', sizeof f->name); else s.label = cases[i].v; break;
        case 3: snprintf(f->name, sizeof f->name, "frames"); break;
        case 4: f->dtype = (shard_dtype)cases[i].v; break;
        case 5: f->ndim = cases[i].v; break;
        case 6: f->shape[1] = cases[i].v; break;
        case 7: f->shape[2] = cases[i].v; break;
        case 8: for (int d = 0; d < 4; d++) f->shape[d] = cases[i].v; break; /* 2^64 bytes */
        default: /* two fields of 40 MiB each: each fits, the record does not */
            f->ndim = 1;
            memset(f->shape, 0, sizeof f->shape);
            f->shape[0] = 40u << 20;
            s.fields[1] = *f;
            snprintf(s.fields[1].name, sizeof s.fields[1].name, "more");
        }
        int rc = shard_schema_check(&s, err, sizeof err);
        if (rc == 0 || !contains(err, cases[i].want))
            fprintf(stderr, "case %zu: rc %d '%s' lacks '%s'\n", i, rc, err, cases[i].want);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want) && one_line(err));
        /* the writer refuses it with the same words, naming the output, writing nothing */
        char dir[4096];
        path_of(dir, sizeof dir, "badschema");
        shard_pack_opts o;
        shard_pack_opts_defaults(&o);
        shard_writer *w = NULL;
        CU_ASSERT(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == -1 && w == NULL);
        CU_ASSERT(contains(err, dir) && contains(err, "schema: ") &&
                  contains(err, cases[i].want) && one_line(err));
        struct stat st;
        CU_ASSERT(stat(dir, &st) == -1);
    }
}

/* ------------------------------------------------------- writer refusals */
static void test_writer_refusals(void) {
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    size_t rec = shard_schema_record_bytes(&s);
    const uint64_t n = 30;
    uint8_t *buf = malloc(n * rec), lab[30] = {0};
    for (uint64_t i = 0; i < n; i++) tl_world_record(&s, i, buf + i * rec);
    char dir[4096];
    path_of(dir, sizeof dir, "refuse");
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = 8;
    o.records_per_frame = 3;
    /* (record, byte offset in it, value, words) */
    size_t a0 = shard_schema_field_offset(&s, 1), s0 = shard_schema_field_offset(&s, 2);
    struct {
        uint64_t rec;
        size_t at;
        uint32_t v;
        const char *want;
    } cases[] = {
        {21, a0 + 4 * 5, 0x7fc00000u, "record 21: field 'actions' element [2,1] is NaN"},
        {3, s0, 0x7f800000u, "record 3: field 'state' element [0,0] is Inf"},
        {29, s0 + 4 * 7, 0xff800000u, "record 29: field 'state' element [3,1] is -Inf"},
        {0, a0 + 4, 0x7f800001u, "record 0: field 'actions' element [0,1] is NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t keep[4];
        uint8_t *p = buf + cases[i].rec * rec + cases[i].at;
        memcpy(keep, p, 4);
        shard_put32(p, cases[i].v);
        shard_writer *w;
        CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
        int rc = shard_writer_add(w, buf, NULL, 10, err, sizeof err);
        if (rc == 0) rc = shard_writer_add(w, buf + 10 * rec, NULL, n - 10, err, sizeof err);
        if (rc == 0 || !contains(err, cases[i].want))
            fprintf(stderr, "case %zu: rc %d '%s' lacks '%s'\n", i, rc, err, cases[i].want);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want) && contains(err, dir) &&
                  one_line(err));
        shard_writer_abort(w);
        memcpy(p, keep, 4);
        struct stat st;
        CU_ASSERT(stat(dir, &st) == -1 && partial_dirs_left() == 0);
    }
    /* labels do not go with a record schema */
    shard_writer *w;
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
    CU_ASSERT(shard_writer_add(w, buf, lab, 3, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "labels given"));
    shard_writer_abort(w);
    /* an f32 -0.0 and a subnormal are finite: accepted */
    shard_put32(buf + a0, 0x80000000u);
    shard_put32(buf + a0 + 4, 0x00000001u);
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
    CU_ASSERT(shard_writer_add(w, buf, NULL, n, err, sizeof err) == 0);
    CU_ASSERT(shard_writer_close(w, err, sizeof err) == 0);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(buf);
}

/* ------------------------------------------------- the documented layout */
static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v) {
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

/* One shard file as docs/shard-format.md describes it, written without the
 * library: header, field table (v2), column frames, index. rows (n, rec);
 * labels (n) or NULL. Returns malloc'd bytes, length in *len. */
static uint8_t *oracle_shard(const shard_schema *s, const uint8_t *rows, const uint8_t *labels,
                             uint32_t n, uint32_t rpf, int level, size_t *len) {
    uint32_t nf = s->nfields, frames = (n + rpf - 1) / rpf;
    size_t fb[SHARD_MAX_FIELDS], rec = 0, head = 128 + 64 * (size_t)nf;
    for (uint32_t i = 0; i < nf; i++) {
        fb[i] = s->fields[i].dtype == SHARD_DTYPE_F32 ? 4 : 1;
        for (uint32_t d = 0; d < s->fields[i].ndim; d++) fb[i] *= s->fields[i].shape[d];
        rec += fb[i];
    }
    if (!nf) rec = (size_t)s->height * s->width * s->channels;
    size_t lab = labels ? 1 : 0;
    uint8_t *out = calloc(1, head + frames * (ZSTD_compressBound((size_t)rpf * (rec + lab)) + 32));
    uint8_t *raw = malloc((size_t)rpf * (rec + lab)), *index = calloc(frames, 32);
    size_t off = head;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    for (uint32_t fr = 0; fr < frames; fr++) {
        uint32_t first = fr * rpf, k = n - first < rpf ? n - first : rpf;
        size_t at = 0; /* columns: images = pixels then labels; fields = field by field */
        if (!nf) {
            memcpy(raw, rows + (size_t)first * rec, (size_t)k * rec);
            at = (size_t)k * rec;
            if (lab) memcpy(raw + at, labels + first, k);
            at += (size_t)k * lab;
        }
        for (uint32_t i = 0, fo = 0; i < nf; fo += (uint32_t)fb[i], i++)
            for (uint32_t r = 0; r < k; r++, at += fb[i])
                memcpy(raw + at, rows + (size_t)(first + r) * rec + fo, fb[i]);
        size_t c = ZSTD_compress2(cc, out + off, ZSTD_compressBound(at), raw, at);
        uint8_t *e = index + 32 * (size_t)fr;
        le64(e, off);
        le32(e + 8, (uint32_t)c);
        le32(e + 12, (uint32_t)at);
        le64(e + 16, first);
        le32(e + 24, k);
        le32(e + 28, (uint32_t)crc32(0, out + off, (uInt)c));
        off += c;
    }
    memcpy(out + off, index, 32 * (size_t)frames);
    uint8_t *h = out;
    memcpy(h, "JEPASHRD", 8);
    le32(h + 8, nf ? 2 : 1);
    le32(h + 12, 128);
    le32(h + 16, s->height);
    le32(h + 20, s->width);
    le32(h + 24, s->channels);
    le32(h + 28, (uint32_t)s->dtype);
    le32(h + 32, (uint32_t)s->label);
    le32(h + 36, s->num_classes);
    le32(h + 40, (uint32_t)rec);
    le32(h + 44, rpf);
    le64(h + 48, n);
    le32(h + 56, frames);
    le32(h + 60, (uint32_t)level);
    le64(h + 64, off);
    le64(h + 72, off + 32 * (size_t)frames);
    le32(h + 80, (uint32_t)crc32(0, index, 32 * frames));
    for (uint32_t i = 0; i < nf; i++) { /* field table: name[32] dtype ndim shape[4] 8 x 0 */
        uint8_t *e = out + 128 + 64 * (size_t)i;
        memcpy(e, s->fields[i].name, strlen(s->fields[i].name));
        le32(e + 32, (uint32_t)s->fields[i].dtype);
        le32(e + 36, s->fields[i].ndim);
        for (uint32_t d = 0; d < s->fields[i].ndim; d++) le32(e + 40 + 4 * d, s->fields[i].shape[d]);
    }
    if (nf) {
        le32(h + 84, nf);
        le32(h + 88, (uint32_t)crc32(0, out + 128, 64 * nf));
    }
    le32(h + 124, (uint32_t)crc32(0, h, 124));
    *len = off + 32 * (size_t)frames;
    ZSTD_freeCCtx(cc);
    free(raw);
    free(index);
    return out;
}

static void compare_to_oracle(const char *dir, const shard_schema *s, const uint8_t *rows,
                              const uint8_t *labels, uint32_t n, uint32_t rpf, int level) {
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/shard-00000.jshard", dir);
    size_t got_n, want_n;
    uint8_t *got = read_file(sp, &got_n);
    uint8_t *want = oracle_shard(s, rows, labels, n, rpf, level, &want_n);
    CU_ASSERT(got_n == want_n);
    size_t first = 0;
    while (first < got_n && first < want_n && got[first] == want[first]) first++;
    if (got_n != want_n || first != got_n)
        fprintf(stderr, "%s: differs from the documented layout at byte %zu (%zu vs %zu bytes)\n",
                sp, first, got_n, want_n);
    CU_ASSERT(got_n == want_n && first == got_n);
    free(got);
    free(want);
}

static void test_documented_layout(void) {
    /* v2: the writer's file is the documented one, byte for byte */
    char dir[4096];
    const uint32_t n = 23, rpf = 4;
    world(dir, sizeof dir, "layout2", n, 5, 3, 1000, rpf);
    shard_schema s;
    tl_world_schema(&s, 5, 3);
    size_t rec = shard_schema_record_bytes(&s);
    uint8_t *rows = malloc(n * rec);
    for (uint32_t i = 0; i < n; i++) tl_world_record(&s, i, rows + i * rec);
    compare_to_oracle(dir, &s, rows, NULL, n, rpf, 1);
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t mn;
    char *text = (char *)read_file(mp, &mn);
    text = realloc(text, mn + 1);
    text[mn] = 0;
    CU_ASSERT(contains(text, "\"version\": 4,") && !contains(text, "pixel_stats"));
    CU_ASSERT(mn > 22 && !memcmp(text + mn - 22, "\"crc32\": \"", 10) &&
              tl_manifest_crc(text, mn) == (uint32_t)strtoul(text + mn - 12, NULL, 16));
    CU_ASSERT(contains(text, "  \"schema\": {\"fields\": [\n"
                             "    {\"name\": \"frames\", \"dtype\": \"u8\", \"shape\": [5, 1, 3, 3]},\n"
                             "    {\"name\": \"actions\", \"dtype\": \"f32\", \"shape\": [4, 2]},\n"
                             "    {\"name\": \"state\", \"dtype\": \"f32\", \"shape\": [5, 2]}\n"
                             "  ]},\n"));
    free(text);
    free(rows);
    /* v1: an image pack is still the version 1 file, labels or not */
    for (int labels = 0; labels < 2; labels++) {
        shard_images im = {{.height = 3, .width = 5, .channels = 2, .dtype = SHARD_DTYPE_U8,
                            .label = labels ? SHARD_LABEL_U8 : SHARD_LABEL_NONE,
                            .num_classes = labels ? 10 : 0}, 37, NULL, NULL, 0, NULL};
        im.pixels = malloc(37 * 30);
        for (size_t j = 0; j < 37 * 30; j++) im.pixels[j] = (uint8_t)(j * 29 + 3);
        if (labels) {
            im.labels = malloc(37);
            for (int i = 0; i < 37; i++) im.labels[i] = (uint8_t)(i % 10);
        }
        path_of(dir, sizeof dir, labels ? "layout1l" : "layout1");
        shard_pack_opts o;
        shard_pack_opts_defaults(&o);
        o.records_per_frame = 8;
        o.level = 2;
        CU_ASSERT_FATAL(shard_pack(dir, &im, &o, err, sizeof err) == 0);
        compare_to_oracle(dir, &im.schema, im.pixels, im.labels, 37, 8, 2);
        snprintf(mp, sizeof mp, "%s/manifest.json", dir);
        text = (char *)read_file(mp, &mn);
        text = realloc(text, mn + 1);
        text[mn] = 0;
        CU_ASSERT(contains(text, "\"version\": 4,") && !contains(text, "fields") &&
                  contains(text, "\"pixel_stats\": {"));
        CU_ASSERT(contains(text, "  \"schema\": {\"height\": 3, \"width\": 5, \"channels\": 2, "
                                 "\"dtype\": \"u8\", \"label\": "));
        free(text);
        shard_images_free(&im);
    }
}

/* ------------------------------------------------------------ round trip */

static void check_roundtrip(const char *name, uint64_t n, uint32_t T, uint32_t side,
                            uint32_t rps, uint32_t rpf) {
    char dir[4096];
    world(dir, sizeof dir, name, n, T, side, rps, rpf);
    shard_schema want;
    tl_world_schema(&want, T, side);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    const shard_schema *s = shard_dataset_schema(ds);
    CU_ASSERT(shard_schema_same(s, &want) && s->nfields == 3);
    CU_ASSERT(!strcmp(s->fields[1].name, "actions") && s->fields[1].dtype == SHARD_DTYPE_F32);
    CU_ASSERT(s->fields[0].shape[2] == side && s->fields[1].shape[0] == T - 1);
    size_t rec = shard_dataset_record_bytes(ds);
    CU_ASSERT(rec == (size_t)T * side * side + (T - 1) * 8 + T * 8);
    CU_ASSERT(shard_dataset_records(ds) == n);
    shard_dataset_info in;
    shard_dataset_get_info(ds, &in);
    uint64_t shards = (n + rps - 1) / rps, frames = 0;
    for (uint64_t k = 0; k < shards; k++) {
        uint64_t m = k + 1 < shards ? rps : n - k * rps;
        frames += (m + rpf - 1) / rpf;
    }
    CU_ASSERT(in.shards == shards && in.frames == frames && in.raw_bytes == n * rec);
    CU_ASSERT(in.file_bytes == in.compressed_bytes + shards * (128 + 3 * 64) + frames * 32);
    uint8_t *all = malloc(n * rec), *lab = malloc(n);
    memset(lab, 0xee, n);
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, all, lab, err, sizeof err) == 0);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) bad += record_diff(&want, i, all + i * rec) + (lab[i] != 0);
    CU_ASSERT(bad == 0);
    /* the values, read back as floats, are the formula's */
    const uint8_t *last = all + (n - 1) * rec;
    CU_ASSERT(T < 3 || f32_at(last + shard_schema_field_offset(s, 1) + 4 * 3) ==
                           (float)(n - 1) + 0.25f + 0.125f);              /* actions[1][1] */
    CU_ASSERT(f32_at(last + shard_schema_field_offset(s, 2) + 4 * 2) ==
              -((float)(n - 1) + 0.5f));                                  /* state[1][0] */
    uint8_t *one = malloc(rec);
    for (uint64_t i = 0; i < n; i += n / 9 + 1) {
        uint8_t l = 99;
        char where[256];
        CU_ASSERT_FATAL(shard_dataset_read_record(ds, i, one, &l, where, sizeof where, err,
                                                  sizeof err) == 0);
        CU_ASSERT(memcmp(one, all + i * rec, rec) == 0 && l == 0);
        CU_ASSERT(contains(where, "shard-") && contains(where, "frame"));
        CU_ASSERT(shard_dataset_read_record(ds, i, one, NULL, NULL, 0, err, sizeof err) == 0);
    }
    CU_ASSERT(shard_dataset_read_record(ds, n, one, NULL, NULL, 0, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "out of range"));
    CU_ASSERT(shard_dataset_read_all(ds, all, NULL, err, sizeof err) == 0);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    shard_dataset_close(ds);
    free(one);
    free(all);
    free(lab);
}

static void test_roundtrip(void) {
    check_roundtrip("rt1", 203, 6, 5, 50, 7);   /* shards split frames unevenly */
    check_roundtrip("rt2", 5, 2, 1, 4096, 256); /* one frame; actions [1,2] */
    check_roundtrip("rt3", 64, 16, 8, 8, 8);    /* one frame per shard */
    check_roundtrip("rt4", 40, 3, 2, 13, 1);    /* one record per frame */
}

/* A scalar and a 1-d field, u8 and f32 mixed, odd sizes: layout offsets hold. */
static void test_odd_fields(void) {
    shard_schema s;
    memset(&s, 0, sizeof s);
    s.nfields = 4;
    s.fields[0] = (shard_field){"a.b-c_1", SHARD_DTYPE_U8, 0, {0, 0, 0, 0}};
    s.fields[1] = (shard_field){"v", SHARD_DTYPE_F32, 1, {3, 0, 0, 0}};
    s.fields[2] = (shard_field){"m", SHARD_DTYPE_U8, 3, {1, 1, 5, 0}};
    s.fields[3] = (shard_field){"r", SHARD_DTYPE_F32, 0, {0, 0, 0, 0}};
    CU_ASSERT_FATAL(shard_schema_check(&s, err, sizeof err) == 0);
    CU_ASSERT(shard_schema_record_bytes(&s) == 1 + 12 + 5 + 4);
    CU_ASSERT(shard_schema_field_offset(&s, 3) == 18);
    const uint32_t n = 50;
    uint8_t rows[50 * 22];
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *r = rows + 22 * i;
        r[0] = (uint8_t)i;
        for (int k = 0; k < 3; k++) {
            float x = (float)i * 0.5f - (float)k;
            memcpy(r + 1 + 4 * k, &x, 4);
        }
        for (int k = 0; k < 5; k++) r[13 + k] = (uint8_t)(i + k);
        float x = 1.0f / (float)(i + 1);
        memcpy(r + 18, &x, 4);
    }
    char dir[4096];
    path_of(dir, sizeof dir, "odd");
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_shard = 20;
    o.records_per_frame = 6;
    shard_writer *w;
    CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
    CU_ASSERT_FATAL(shard_writer_add(w, rows, NULL, n, err, sizeof err) == 0);
    CU_ASSERT_FATAL(shard_writer_close(w, err, sizeof err) == 0);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    uint8_t back[50 * 22];
    CU_ASSERT_FATAL(shard_dataset_read_all(ds, back, NULL, err, sizeof err) == 0);
    CU_ASSERT(memcmp(back, rows, sizeof rows) == 0);
    CU_ASSERT(shard_schema_field_index(shard_dataset_schema(ds), "a.b-c_1") == 0);
    shard_dataset_close(ds);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    /* one shard of 20 records: the documented layout byte for byte */
    compare_to_oracle(dir, &s, rows, NULL, 20, 6, o.level);
}

/* ---------------------------------------------------------------- reader */
/* nbatches from r; record ids into ids; every byte checked against its id. */
static void read_batches(shard_reader *r, const shard_schema *s, int batch, uint64_t nbatches,
                         uint32_t *ids, uint64_t *bad) {
    size_t rec = shard_schema_record_bytes(s);
    uint8_t *buf = malloc((size_t)batch * rec), lab[64];
    for (uint64_t b = 0; b < nbatches; b++) {
        memset(lab, 0xee, sizeof lab);
        int rc = shard_reader_next(r, buf, lab, err, sizeof err);
        if (rc) fprintf(stderr, "next: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        for (int i = 0; i < batch; i++) {
            uint32_t id = tl_record_id(buf + (size_t)i * rec);
            ids[b * batch + i] = id;
            *bad += record_diff(s, id, buf + (size_t)i * rec) + (lab[i] != 0);
        }
    }
    free(buf);
}

static void test_reader_coverage(void) {
    char dir[4096];
    const uint64_t N = 211;
    world(dir, sizeof dir, "cov", N, 4, 3, 40, 6);
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    const int batch = 5;
    for (int si = 0; si < 2; si++) {
        int shuffle = si ? 30 : 1;
        for (int W = 1; W <= 3; W++) {
            uint64_t nb = N / ((uint64_t)W * batch), used = (uint64_t)W * nb * batch;
            uint32_t *ids = malloc(2 * used * sizeof *ids); /* (epoch, rank, nb * batch) */
            uint64_t bad = 0;
            for (int rnk = 0; rnk < W; rnk++) {
                shard_reader *r;
                CU_ASSERT_FATAL(shard_reader_init(&r, dir, rnk, W, 11, batch, shuffle, rnk % 2 ? 0 : 2,
                                                  err, sizeof err) == 0);
                CU_ASSERT_FATAL(shard_reader_batches_per_epoch(r) == nb);
                CU_ASSERT(shard_reader_schema(r)->nfields == 3);
                uint32_t *tmp = malloc(2 * nb * batch * sizeof *tmp);
                read_batches(r, &s, batch, 2 * nb, tmp, &bad);
                for (int e = 0; e < 2; e++)
                    memcpy(ids + (size_t)e * used + (size_t)rnk * nb * batch,
                           tmp + (size_t)e * nb * batch, nb * batch * sizeof *tmp);
                free(tmp);
                shard_reader_free(r);
            }
            CU_ASSERT(bad == 0);
            for (int e = 0; e < 2; e++) {
                uint8_t *seen = calloc(N, 1);
                uint64_t dup = 0, out = 0;
                for (uint64_t k = 0; k < used; k++) {
                    uint32_t id = ids[(size_t)e * used + k];
                    if (id >= N) out++;
                    else dup += seen[id]++;
                }
                CU_ASSERT(out == 0 && dup == 0);                /* disjoint across ranks */
                CU_ASSERT(N - used <= (uint64_t)W * batch - 1); /* stated tolerance */
                free(seen);
            }
            CU_ASSERT(memcmp(ids, ids + used, batch * sizeof *ids) != 0); /* reshuffled */
            free(ids);
        }
    }
}

static uint32_t *stream_of(const char *dir, const shard_schema *s, int rank, int world,
                           int batch, int shuffle, int prefetch, uint64_t T) {
    shard_reader *r;
    CU_ASSERT_FATAL(shard_reader_init(&r, dir, rank, world, 3, batch, shuffle, prefetch, err,
                                      sizeof err) == 0);
    uint32_t *ids = malloc(T * batch * sizeof *ids);
    uint64_t bad = 0;
    read_batches(r, s, batch, T, ids, &bad);
    CU_ASSERT(bad == 0);
    shard_reader_free(r);
    return ids;
}

static void test_reader_resume(void) {
    char dir[4096];
    world(dir, sizeof dir, "res", 150, 4, 3, 35, 4);
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    const int batch = 4, shuffle = 17;
    for (int W = 1; W <= 3; W++) {
        int rank = W - 1;
        const uint64_t nb = 150 / ((uint64_t)W * batch), T = 2 * nb + 3;
        uint32_t *ref = stream_of(dir, &s, rank, W, batch, shuffle, 2, T);
        uint32_t *inl = stream_of(dir, &s, rank, W, batch, shuffle, 0, T);
        CU_ASSERT(memcmp(ref, inl, T * batch * sizeof *ref) == 0); /* thread changes nothing */
        free(inl);
        uint64_t stops[] = {1, nb / 2, nb - 1, nb, nb + 1, 2 * nb};
        for (size_t si = 0; si < sizeof stops / sizeof *stops; si++) {
            uint64_t k = stops[si];
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, rank, W, 3, batch, shuffle, 1, err,
                                              sizeof err) == 0);
            uint32_t *ids = malloc(T * batch * sizeof *ids);
            uint64_t bad = 0;
            read_batches(r, &s, batch, k, ids, &bad);
            shard_reader_state st;
            shard_reader_get_state(r, &st);
            shard_reader_free(r);
            CU_ASSERT_FATAL(shard_reader_init_at(&r, dir, rank, W, 3, batch, shuffle,
                                                 (int)(si % 2) * 3, &st, err, sizeof err) == 0);
            read_batches(r, &s, batch, T - k, ids + k * batch, &bad);
            CU_ASSERT(bad == 0);
            CU_ASSERT(memcmp(ids + k * batch, ref + k * batch, (T - k) * batch * sizeof *ids) == 0);
            shard_reader_free(r);
            free(ids);
        }
        free(ref);
    }
}

/* ------------------------------------------------------------- manifest */
static void test_manifest(void) {
    const char *good =
        "{\"format\": \"jepa-shard\", \"version\": 2, \"split\": \"train\", \"schema\": "
        "{\"fields\": [{\"name\": \"frames\", \"dtype\": \"u8\", \"shape\": [4, 1, 3, 3]}, "
        "{\"name\": \"actions\", \"dtype\": \"f32\", \"shape\": [3, 2]}, "
        "{\"name\": \"reward\", \"dtype\": \"f32\", \"shape\": []}]}, \"records\": 5, "
        "\"records_per_shard\": 5, \"records_per_frame\": 2, \"level\": 3, \"shards\": "
        "[{\"file\": \"a.jshard\", \"records\": 5, \"bytes\": 400, \"header_crc32\": 7}]}";
    shard_manifest m;
    int rc = shard_manifest_parse(&m, good, strlen(good), "m.json", err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(m.version == 2 && m.schema.nfields == 3 && m.schema.height == 0);
    CU_ASSERT(!strcmp(m.schema.fields[1].name, "actions") && m.schema.fields[1].ndim == 2);
    CU_ASSERT(m.schema.fields[0].shape[3] == 3 && m.schema.fields[2].ndim == 0);
    CU_ASSERT(shard_schema_record_bytes(&m.schema) == 36 + 24 + 4);
    shard_manifest_free(&m);
    struct {
        const char *from, *to, *want;
    } edits[] = {
        {"\"version\": 2", "\"version\": 1", "version 2 goes with fields"},
        {"\"version\": 2", "\"version\": 6", "version 6 not supported"},
        {"\"version\": 2", "\"version\": 4", "crc32: missing"},
        {"\"version\": 2", "\"version\": 3", "3, but the schema has fields"},
        {"\"dtype\": \"f32\"", "\"dtype\": \"f64\"", "'f64' unknown (u8 or f32)"},
        {"[3, 2]", "[3, 0]", "out of range"},
        {"[3, 2]", "[3, 2, 1, 1, 1]", "5 dims, at most 4"},
        {"[3, 2]", "3", "shape: expected a list"},
        {"\"actions\"", "\"act/ions\"", "only letters"},
        {"\"actions\"", "\"reward\"", "both named 'reward'"},
        {"\"actions\"", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "name: must be 1 to 31"},
        {", \"shape\": [3, 2]", "", "missing key 'shape'"},
        {"\"name\": \"frames\", ", "\"name\": \"frames\", \"units\": \"px\", ", "unknown key 'units'"},
        {"{\"fields\": [", "{\"height\": 2, \"fields\": [", "unknown key 'height'"},
        {"{\"fields\": [{", "{\"fields\": [], \"x\": [{", "0 fields, expected 1 to 16"},
        {"\"fields\": [{", "\"fields\": [[], {", "fields[0]: expected a mapping"},
        {"[4, 1, 3, 3]", "[65536, 65536, 3, 3]", "more than 67108864 bytes"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        char text[2048];
        const char *at = strstr(good, edits[i].from);
        CU_ASSERT_FATAL(at != NULL);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, edits[i].to,
                 at + strlen(edits[i].from));
        rc = shard_manifest_parse(&m, text, strlen(text), "m.json", err, sizeof err);
        if (rc == 0 || !contains(err, edits[i].want))
            fprintf(stderr, "edit %zu: rc %d '%s' lacks '%s'\n", i, rc, err, edits[i].want);
        CU_ASSERT(rc == -1 && contains(err, edits[i].want) && contains(err, "m.json") &&
                  one_line(err));
    }
    /* 17 fields */
    char many[4096] = "";
    size_t k = 0;
    for (int i = 0; i < 17; i++)
        k += (size_t)snprintf(many + k, sizeof many - k, "%s{\"name\": \"f%d\", \"dtype\": \"u8\", "
                              "\"shape\": [1]}", i ? ", " : "", i);
    char text[8192];
    const char *at = strstr(good, "{\"name\": \"frames\"");
    const char *end = strstr(good, "]}, \"records\"");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, many, end);
    CU_ASSERT(shard_manifest_parse(&m, text, strlen(text), "m.json", err, sizeof err) == -1);
    CU_ASSERT(contains(err, "17 fields, expected 1 to 16"));
    /* a dataset whose manifest disagrees with its shards' field table */
    char dir[4096], mp[4200];
    world(dir, sizeof dir, "man", 12, 4, 3, 100, 4);
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    size_t n;
    char *t = (char *)read_file(mp, &n);
    char *p = strstr(t, "[4, 2]");
    CU_ASSERT_FATAL(p != NULL);
    p[4] = '3'; /* state [4, 3] */
    CU_ASSERT_FATAL(tl_manifest_reseal(t, n) == 0); /* past the manifest's own checksum */
    write_file(mp, t, n);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "shard-00000.jshard: offset 128: schema") &&
              contains(err, "differs from the manifest"));
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 1);
    free(t);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"schema API: field bytes, offsets, index", test_schema_api},
        {"bad schemas: one line each, writer refuses", test_bad_schemas},
        {"writer: NaN/Inf and labels refused, nothing left", test_writer_refusals},
        {"files are the documented layout (v2; images still v1)", test_documented_layout},
        {"round trip: read_all, read_record, info, verify", test_roundtrip},
        {"round trip: scalar, 1-d and mixed fields", test_odd_fields},
        {"reader: coverage and disjointness, W = 1..3", test_reader_coverage},
        {"reader: resume equals uninterrupted, W = 1..3", test_reader_resume},
        {"manifest: fields parsed strictly, cross-checked", test_manifest},
    };
    int rc = test_main("shard_v2", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
