/* test_shard_v2_corrupt.c - record (format version 2) shards that lie:
 * truncated at every length, every header/field-table/index/frame byte
 * flipped, absurd field tables and headers forged with valid checksums, and
 * NaN/Inf planted behind sound checksums (the writer refuses them). Every
 * failure must be one line naming the file and byte offset (and for values
 * the dataset record, field and element). Also run under ASan/UBSan
 * (test_shard_v2_corrupt_asan), where it proves no read goes out of bounds. */
#include "shard.h"

static char tmpdir[] = "/tmp/test_shard_v2c_XXXXXX";
static char err[SHARD_ERR_MAX];

#include "shard_v2_helpers.h"

/* ------------------------------------------------------------ corruption */
/* One shard of 30 records in 4 frames; its path in sp. */
static void tiny(char *dir, size_t dn, char *sp, size_t sn) {
    world(dir, dn, "tiny", 30, 4, 3, 4096, 8);
    snprintf(sp, sn, "%s/shard-00000.jshard", dir);
}

static void test_truncated(void) {
    char dir[4096], sp[4200];
    tiny(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    uint64_t head = 128 + 3 * 64, io = shard_get64(orig + 64);
    CU_ASSERT(shard_get32(orig + 8) == 2 && shard_get32(orig + 84) == 3 && io > head);
    /* every length short of the whole file: header, field table, frames, index */
    int failed = 0, named = 0, said = 0, counted = 0, table = 0;
    for (size_t cut = 0; cut < n; cut++) {
        write_file(sp, orig, cut);
        shard_dataset *ds;
        if (shard_dataset_open(&ds, dir, err, sizeof err) == -1) failed++;
        else shard_dataset_close(ds);
        named += contains(err, sp) && contains(err, "offset ") && one_line(err);
        said += cut < 8 || contains(err, "truncated");
        table += cut < 128 || cut >= head || contains(err, "field table ends at 320");
        counted += shard_verify(dir, NULL, NULL) == 1;
    }
    CU_ASSERT(failed == (int)n && named == (int)n && said == (int)n && counted == (int)n);
    CU_ASSERT(table == (int)n);
    uint8_t *longer = calloc(1, n + 3);
    memcpy(longer, orig, n);
    write_file(sp, longer, n + 3);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1 && contains(err, "trailing"));
    free(longer);
    write_file(sp, orig, n);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(orig);
}

static void test_flipped_bytes(void) {
    char dir[4096], sp[4200];
    tiny(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n), *b = malloc(n);
    uint64_t head = 128 + 3 * 64, io = shard_get64(orig + 64);
    int total = 0, refused = 0, named = 0, table_crc = 0, table_total = 0;
    /* header, field table, index: refused at open, naming the file and offset */
    for (size_t off = 0; off < n; off++) {
        if (off >= head && off < io) continue;
        memcpy(b, orig, n);
        b[off] ^= 0x21;
        write_file(sp, b, n);
        shard_dataset *ds;
        total++;
        if (shard_dataset_open(&ds, dir, err, sizeof err) == -1) {
            refused++;
            named += contains(err, sp) && contains(err, "offset ") && one_line(err);
        } else {
            shard_dataset_close(ds);
        }
        if (off >= 128 && off < head) {
            table_total++;
            table_crc += contains(err, "offset 128: field table checksum mismatch");
        }
        CU_ASSERT(shard_verify(dir, NULL, NULL) >= 1);
    }
    CU_ASSERT(refused == total && named == total && table_crc == table_total);
    /* frames: verify names the frame; read_all and the reader fail cleanly */
    int frames_named = 0, ftotal = 0;
    for (size_t off = head; off < io; off++) {
        memcpy(b, orig, n);
        b[off] ^= 0x01;
        write_file(sp, b, n);
        ftotal++;
        char first[SHARD_ERR_MAX] = "";
        frames_named += shard_verify(dir, collect, first) == 1 && contains(first, sp) &&
                        contains(first, "offset ") && contains(first, "frame ");
        if (off % 23 == 0) {
            shard_dataset *ds;
            CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
            uint8_t *all = malloc(30 * shard_dataset_record_bytes(ds));
            CU_ASSERT(shard_dataset_read_all(ds, all, NULL, err, sizeof err) == -1);
            CU_ASSERT(contains(err, "frame") && one_line(err));
            free(all);
            shard_dataset_close(ds);
            shard_reader *r;
            CU_ASSERT_FATAL(shard_reader_init(&r, dir, 0, 1, 1, 6, 8, (int)(off % 2), err,
                                              sizeof err) == 0);
            uint8_t *buf = malloc(6 * 200);
            int rc = 0;
            for (int k = 0; k < 8 && rc == 0; k++) rc = shard_reader_next(r, buf, NULL, err,
                                                                          sizeof err);
            CU_ASSERT(rc == -1 && contains(err, sp) && contains(err, "frame"));
            free(buf);
            shard_reader_free(r);
        }
    }
    CU_ASSERT(frames_named == ftotal);
    write_file(sp, orig, n);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(b);
    free(orig);
}

/* Sets len bytes at off (bytes, or v as 4 LE bytes when bytes is NULL), then
 * re-seals the field table CRC and the header CRC: only the range checks
 * behind them can refuse the result. */
static void forge(const char *sp, const uint8_t *orig, size_t n, size_t off, uint32_t v,
                  const char *bytes, size_t len) {
    uint8_t *b = malloc(n);
    memcpy(b, orig, n);
    if (bytes) memcpy(b + off, bytes, len);
    else shard_put32(b + off, v);
    uint32_t nf = shard_get32(b + 84);
    if (nf >= 1 && nf <= 16) shard_put32(b + 88, shard_crc32(b + 128, 64 * (size_t)nf));
    shard_put32(b + 124, shard_crc32(b, 124));
    write_file(sp, b, n);
    free(b);
}

static void test_forged_field_table(void) {
    char dir[4096], sp[4200];
    tiny(dir, sizeof dir, sp, sizeof sp);
    size_t n;
    uint8_t *orig = read_file(sp, &n);
    const size_t F0 = 128, F1 = 128 + 64, F2 = 128 + 128; /* frames, actions, state */
    const char a32[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct {
        size_t off;
        uint32_t v;
        const char *bytes;
        size_t len;
        const char *want;
    } cases[] = {
        {84, 0, NULL, 0, "offset 84: field count 0 out of range [1, 16]"},
        {84, 17, NULL, 0, "offset 84: field count 17"},
        {84, 2, NULL, 0, "offset 40: record bytes 92, but the 2 fields make 60"},
        {84, 4, NULL, 0, "field 3"},                   /* frame 0's bytes read as a field */
        {16, 28, NULL, 0, "offset 16: image schema byte is 28 in a version 2 shard"},
        {36, 10, NULL, 0, "offset 36: image schema byte"},
        {F1 + 32, 3, NULL, 0, "offset 192: field table: field 1 ('actions'): dtype 3 unknown"},
        {F1 + 36, 5, NULL, 0, "field 1 ('actions'): ndim 5 out of range"},
        {F1 + 36, 3, NULL, 0, "shape[2] is 0"},
        {F1 + 36, 1, NULL, 0, "shape[1] is 2 beyond ndim 1"},
        {F1 + 44, 0, NULL, 0, "field 1 ('actions'): shape[1] is 0"},
        {F1 + 48, 7, NULL, 0, "shape[2] is 7 beyond ndim 2"},
        {F0 + 40, 65536, NULL, 0, "offset 40: record bytes"}, /* a sound field, a new sum */
        {F0 + 44, 0xffffffffu, NULL, 0, "field 0 ('frames'): more than 67108864 bytes"},
        {F0 + 40, 1u << 28, NULL, 0, "field 0 ('frames'): more than"},
        {F1 + 56, 1, NULL, 0, "offset 248: field table: reserved byte of field 1"},
        {F1 + 60, 1u << 24, NULL, 0, "offset 255: field table: reserved byte"},
        {F1, 0x2f2f2f2fu, NULL, 0, "name has byte 0x2f at position 0"},
        {F1 + 8, 0x61, NULL, 0, "offset 200: field table: name of field 1 has byte 97 after"},
        {F1, 0, a32, 32, "field 1: name must be 1 to 31 characters (no NUL"},
        {F1, 0, "\0\0\0\0\0\0\0\0", 8, "field 1: name must be 1 to 31"},
        {F1, 0, "a\nb\0\0\0\0\0", 8, "field 1: name has byte 0x0a at position 1"},
        {F2, 0, "frames", 6, "offset 128: schema: fields 0 and 2 are both named 'frames'"},
        {40, 91, NULL, 0, "offset 40: record bytes 91, but the 3 fields make 92"},
        {92, 1, NULL, 0, "offset 92: reserved header byte"},
        {88, 0, NULL, 0, "offset 128: field table checksum"}, /* re-sealed, then zeroed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        forge(sp, orig, n, cases[i].off, cases[i].v, cases[i].bytes, cases[i].len);
        if (cases[i].off == 88) { /* undo the re-seal of the table CRC, keep the header's */
            uint8_t *b = read_file(sp, &n);
            shard_put32(b + 88, 0);
            shard_put32(b + 124, shard_crc32(b, 124));
            write_file(sp, b, n);
            free(b);
        }
        shard_file sf;
        int rc = shard_file_open(&sf, sp, NULL, err, sizeof err);
        if (rc == 0 || !contains(err, cases[i].want))
            fprintf(stderr, "case %zu: rc %d '%s' lacks '%s'\n", i, rc, err, cases[i].want);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want) && contains(err, sp) &&
                  one_line(err));
        if (rc == 0) shard_file_free(&sf);
        CU_ASSERT(shard_verify(dir, NULL, NULL) >= 1);
    }
    /* a sound shard whose fields are not the manifest's */
    forge(sp, orig, n, F2, 0, "pose\0", 5);
    shard_file sf;
    CU_ASSERT_FATAL(shard_file_open(&sf, sp, NULL, err, sizeof err) == 0);
    CU_ASSERT(!strcmp(sf.schema.fields[2].name, "pose"));
    shard_file_free(&sf);
    shard_dataset *ds;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == -1);
    CU_ASSERT(contains(err, "offset 128") && contains(err, "differs from the manifest"));
    write_file(sp, orig, n);
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    free(orig);
}

/* NaN/Inf behind sound checksums (the writer refuses them, so they are
 * planted): verify names the dataset record and the field; every read fails. */
static void test_nonfinite(void) {
    char dir[4096];
    world(dir, sizeof dir, "nan", 60, 4, 3, 25, 6);
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    size_t a0 = shard_schema_field_offset(&s, 1), s0 = shard_schema_field_offset(&s, 2);
    struct {
        uint64_t rec;
        size_t at;
        uint32_t v;
        const char *want;
    } cases[] = {
        {37, a0 + 4 * 3, 0x7fc00000u, "record 37: field 'actions' element [1,1] is NaN"},
        {0, s0, 0xff800000u, "record 0: field 'state' element [0,0] is -Inf"},
        {59, s0 + 4 * 7, 0x7f800000u, "record 59: field 'state' element [3,1] is Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        world(dir, sizeof dir, "nan", 60, 4, 3, 25, 6);
        CU_ASSERT_FATAL(tl_forge_record(dir, cases[i].rec, cases[i].at, cases[i].v, err,
                                        sizeof err) == 0);
        char first[SHARD_ERR_MAX] = "";
        uint64_t p = shard_verify(dir, collect, first);
        if (p != 1 || !contains(first, cases[i].want))
            fprintf(stderr, "case %zu: %llu problems, '%s' lacks '%s'\n", i,
                    (unsigned long long)p, first, cases[i].want);
        CU_ASSERT(p == 1 && contains(first, cases[i].want) && contains(first, "shard-0000") &&
                  contains(first, "offset ") && one_line(first));
        shard_dataset *ds;
        CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0); /* sound headers */
        uint8_t *buf = malloc(60 * shard_dataset_record_bytes(ds));
        CU_ASSERT(shard_dataset_read_record(ds, cases[i].rec, buf, NULL, NULL, 0, err,
                                            sizeof err) == -1 && contains(err, cases[i].want));
        CU_ASSERT(shard_dataset_read_all(ds, buf, NULL, err, sizeof err) == -1);
        shard_dataset_close(ds);
        shard_reader *r;
        CU_ASSERT_FATAL(shard_reader_init(&r, dir, 0, 1, 9, 6, 4, 1, err, sizeof err) == 0);
        int rc = 0;
        for (int k = 0; k < 10 && rc == 0; k++) rc = shard_reader_next(r, buf, NULL, err,
                                                                       sizeof err);
        CU_ASSERT(rc == -1 && contains(err, cases[i].want));
        shard_reader_free(r);
        free(buf);
    }
    /* the same forger with a finite value: every check passes, the value reads back */
    world(dir, sizeof dir, "nan", 60, 4, 3, 25, 6);
    CU_ASSERT_FATAL(tl_forge_record(dir, 44, a0, 0x40490fdbu, err, sizeof err) == 0); /* pi */
    CU_ASSERT(shard_verify(dir, NULL, NULL) == 0);
    shard_dataset *ds;
    CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
    uint8_t *one = malloc(shard_dataset_record_bytes(ds));
    CU_ASSERT(shard_dataset_read_record(ds, 44, one, NULL, NULL, 0, err, sizeof err) == 0);
    CU_ASSERT(f32_at(one + a0) == 3.14159274f && record_diff(&s, 44, one) == 4);
    free(one);
    shard_dataset_close(ds);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"truncated at every length", test_truncated},
        {"every header/table/index/frame byte flipped", test_flipped_bytes},
        {"absurd field tables with valid checksums", test_forged_field_table},
        {"NaN/Inf behind sound checksums", test_nonfinite},
    };
    int rc = test_main("shard_v2_corrupt", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
