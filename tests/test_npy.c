/* test_npy.c - the .npy writer and reader: round trips, the header bytes
 * and NEP 1's 64-byte rule written out independently, truncation at every
 * length, corrupted headers, a mutation fuzz of the parser, atomic writes,
 * and, when a python3 with numpy is installed, numpy.load of our files and
 * our reader on numpy.save's files (skipped with a note otherwise). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evaluate.h"
#include "testutil.h"

static char dir[64]; /* a fresh temp directory for this run */

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Whole file into a malloc'ed buffer; *len its size. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n > 0 ? (size_t)n : 1);
    *len = 0;
    if (n > 0) *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Directory entries other than . and .. (a temp file left behind shows). */
static int dir_entries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_round_trip(void) {
    enum { R = 37, C = 129 };
    float *a = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++) a[i] = (float)(i * 0.37 - 1000) / 7.0f;
    a[5] = -0.0f;
    a[6] = INFINITY;
    a[7] = NAN; /* bits survive: the format stores them, the reader copies them */
    char p[128], err[256];
    path_in(p, sizeof p, "f.npy");
    CU_ASSERT_FATAL(npy_write_f32(p, a, R, C, err, sizeof err) == 0);
    npy_array m;
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.dtype == NPY_DTYPE_F32 && m.ndim == 2 && m.shape[0] == R && m.shape[1] == C);
    CU_ASSERT(m.count == (size_t)R * C && memcmp(m.data, a, sizeof(float) * R * C) == 0);
    npy_free(&m);
    uint8_t y[1001];
    for (int i = 0; i < 1001; i++) y[i] = (uint8_t)(i * 31);
    path_in(p, sizeof p, "y.npy");
    CU_ASSERT_FATAL(npy_write_u8(p, y, 1001, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.dtype == NPY_DTYPE_U8 && m.ndim == 1 && m.shape[0] == 1001);
    CU_ASSERT(memcmp(m.data, y, 1001) == 0);
    npy_free(&m);
    /* empty and 0-d and 3-d arrays */
    int64_t s0[2] = {0, 5}, s3[3] = {2, 3, 4};
    path_in(p, sizeof p, "e.npy");
    CU_ASSERT_FATAL(npy_write(p, NPY_DTYPE_F32, NULL, 2, s0, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.ndim == 2 && m.shape[0] == 0 && m.shape[1] == 5 && m.count == 0);
    npy_free(&m);
    float one = 3.5f;
    CU_ASSERT_FATAL(npy_write(p, NPY_DTYPE_F32, &one, 0, NULL, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.ndim == 0 && m.count == 1 && ((float *)m.data)[0] == 3.5f);
    npy_free(&m);
    CU_ASSERT_FATAL(npy_write(p, NPY_DTYPE_F32, a, 3, s3, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.ndim == 3 && m.count == 24 && memcmp(m.data, a, 24 * sizeof(float)) == 0);
    npy_free(&m);
    free(a);
}

/* The header as NEP 1 describes it, built here independently: magic,
 * 1.0, uint16 LE length, the dict, spaces, '\n', total % 64 == 0, and at
 * most 63 padding spaces. */
static void test_header_bytes(void) {
    struct {
        npy_dtype t;
        int nd;
        int64_t sh[4];
        const char *dict;
    } cases[] = {
        {NPY_DTYPE_F32, 2, {3, 4}, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"},
        {NPY_DTYPE_U8, 1, {60000}, "{'descr': '|u1', 'fortran_order': False, 'shape': (60000,), }"},
        {NPY_DTYPE_F32, 0, {0}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
        {NPY_DTYPE_F32, 2, {60000, 128},
         "{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 128), }"},
        {NPY_DTYPE_F32, 4, {1234567890123LL, 1, 0, 7},
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1234567890123, 1, 0, 7), }"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char want[256], got[256];
        memcpy(want, "\x93NUMPY\x01\x00", 8);
        size_t n = 10;
        n += (size_t)sprintf(want + 10, "%s", cases[c].dict);
        while ((n + 1) % 64 != 0) want[n++] = ' ';
        want[n++] = '\n';
        want[8] = (char)((n - 10) & 0xff);
        want[9] = (char)((n - 10) >> 8);
        int hl = npy_header(got, sizeof got, cases[c].t, cases[c].nd, cases[c].sh);
        CU_ASSERT(hl == (int)n && hl % 64 == 0);
        CU_ASSERT(hl > 0 && memcmp(got, want, n) == 0);
        int spaces = 0;
        for (int i = hl - 2; i >= 0 && got[i] == ' '; i--) spaces++;
        CU_ASSERT(spaces < 64);
    }
    /* random shapes of 0..4 dimensions with 1..18-digit sizes (a zero size
     * keeps the element count from overflowing): the rule holds, the length
     * field is right and the padding minimal, at every dict length mod 64 */
    int lengths = 0, seen[64] = {0};
    jepa_rng r;
    rng_init(&r, 77);
    for (int it = 0; it < 20000; it++) {
        char got[256];
        int nd = (int)rng_below(&r, 5);
        int64_t sh[4];
        for (int d = 0; d < nd; d++) {
            int digits = 1 + (int)rng_below(&r, 18);
            sh[d] = 1 + (int64_t)rng_below(&r, 9);
            for (int k = 1; k < digits; k++) sh[d] = sh[d] * 10 + rng_below(&r, 10);
        }
        if (nd >= 2) sh[rng_below(&r, (uint32_t)nd)] = 0;
        int hl = npy_header(got, sizeof got, it % 2 ? NPY_DTYPE_U8 : NPY_DTYPE_F32, nd, sh);
        if (hl < 0) continue; /* a 1-d size past SIZE_MAX / 2 bytes */
        CU_ASSERT(hl % 64 == 0 && got[hl - 1] == '\n');
        CU_ASSERT((got[8] & 0xff) + 256 * (got[9] & 0xff) == hl - 10);
        int dict_end = hl - 1; /* one past the '}' (the prefix holds NULs: no strrchr) */
        while (dict_end > 10 && got[dict_end - 1] != '}') dict_end--;
        CU_ASSERT(got[10] == '{' && got[dict_end - 1] == '}');
        CU_ASSERT(hl - dict_end - 1 < 64); /* spaces between '}' and '\n' */
        for (int i = dict_end; i < hl - 1; i++) CU_ASSERT(got[i] == ' ');
        seen[(dict_end + 1) % 64] = 1;
        lengths++;
    }
    int residues = 0;
    for (int i = 0; i < 64; i++) residues += seen[i];
    printf("\n    %d shapes, %d distinct unpadded lengths mod 64", lengths, residues);
    /* reachable: unpadded totals 66 ('()') .. 127 (four 18-digit-ish
     * sizes), so at most 62 residues; the draw hits most of them */
    CU_ASSERT(residues >= 55);
    char small[32];
    int64_t sh[2] = {3, 4};
    CU_ASSERT(npy_header(small, sizeof small, NPY_DTYPE_F32, 2, sh) == -1);
    CU_ASSERT(npy_header(small, sizeof small, NPY_DTYPE_F32, 5, sh) == -1);
    int64_t neg[2] = {-1, 4};
    char big[256];
    CU_ASSERT(npy_header(big, sizeof big, NPY_DTYPE_F32, 2, neg) == -1);
}

/* Every proper prefix of a valid file is refused as truncated (or as no
 * magic), and one extra byte as trailing. */
static void test_truncation(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    char p[128], err[256];
    path_in(p, sizeof p, "t.npy");
    CU_ASSERT_FATAL(npy_write_f32(p, a, 2, 3, err, sizeof err) == 0);
    size_t len = 0;
    char *b = slurp(p, &len);
    char hdr[256];
    int64_t sh[2] = {2, 3};
    size_t hl = (size_t)npy_header(hdr, sizeof hdr, NPY_DTYPE_F32, 2, sh);
    CU_ASSERT_FATAL(b && hl == 128 && len == hl + 24 && memcmp(b, hdr, hl) == 0);
    npy_array m;
    size_t off;
    CU_ASSERT(npy_parse(b, len, &m, &off, err, sizeof err) == 0 && off == hl);
    int refused = 0;
    for (size_t n = 0; n < len; n++) refused += npy_parse(b, n, &m, &off, err, sizeof err) == -1;
    CU_ASSERT(refused == (int)len);
    CU_ASSERT(npy_parse(b, len - 1, &m, &off, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "truncated: data is 23 bytes, shape and dtype need 24") != NULL);
    CU_ASSERT(npy_parse(b, 30, &m, &off, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "truncated: header") != NULL);
    char *c = malloc(len + 1);
    memcpy(c, b, len);
    c[len] = 0;
    CU_ASSERT(npy_parse(c, len + 1, &m, &off, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "trailing bytes") != NULL);
    /* through the file reader: the message names the file */
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, len - 5, f);
    fclose(f);
    CU_ASSERT(npy_read(p, &m, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, p) != NULL && strstr(err, "truncated") != NULL);
    CU_ASSERT(m.data == NULL);
    free(b);
    free(c);
}

/* A hand-made header with dict text d around 6 floats of data. */
static size_t make_file(char *buf, const char *d, int major) {
    size_t n = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (char)major;
    buf[7] = 0;
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(d), hl = dl + 1;
    memset(buf + 8, 0, 4);
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8);
    memcpy(buf + pre, d, dl);
    buf[pre + dl] = '\n';
    n = pre + hl;
    float v[6] = {1, 2, 3, 4, 5, 6};
    memcpy(buf + n, v, sizeof v);
    return n + sizeof v;
}

static void test_corruption(void) {
    static const struct {
        const char *dict;
        int major;
        const char *want; /* NULL: must parse */
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1, NULL},
        {"{'shape': (6,), 'fortran_order': False, 'descr': '<f4'}", 1, NULL},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 2)}   ", 2, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 3, NULL},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 1, "descr '>f4'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 1, "descr '<f8'"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 1, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 1, "shape is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", 1, "shape is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 6), }", 1, "at most 4"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", 1, "need 32"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 1, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
         1, "shape too large"},
        {"{'descr': '<f4', 'fortran_order': False}", 1, "exactly"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", 1, "'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 1, "repeated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", 1, "exactly"},
        {"['descr', '<f4']", 1, "exactly"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 4, "version 4.0"},
        {"{'descr': '<f4\\', 'fortran_order': False, 'shape': (6,), }", 1, "exactly"},
    };
    char buf[512], err[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = make_file(buf, cases[c].dict, cases[c].major);
        npy_array m;
        size_t off;
        int rc = npy_parse(buf, n, &m, &off, err, sizeof err);
        if (!cases[c].want) {
            float last = 0; /* these headers are not padded: data may be unaligned */
            if (rc == 0) memcpy(&last, (const char *)m.data + 20, 4);
            CU_ASSERT(rc == 0 && m.count == 6 && last == 6.0f);
        } else {
            CU_ASSERT(rc == -1);
            if (rc != -1 || !strstr(err, cases[c].want))
                printf("\n    case %zu: rc %d, '%s' lacks '%s'", c, rc, err, cases[c].want);
            CU_ASSERT(strstr(err, cases[c].want) != NULL);
        }
    }
    /* bad magic, a header that does not end in '\n', a control byte */
    size_t n = make_file(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1);
    npy_array m;
    buf[1] = 'M';
    CU_ASSERT(npy_parse(buf, n, &m, NULL, err, sizeof err) == -1 && strstr(err, "magic"));
    buf[1] = 'N';
    buf[10 + 5] = '\t' - 1;
    CU_ASSERT(npy_parse(buf, n, &m, NULL, err, sizeof err) == -1 && strstr(err, "printable"));
    n = make_file(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1);
    buf[8]--; /* header one byte shorter: its last byte is now '}' */
    CU_ASSERT(npy_parse(buf, n, &m, NULL, err, sizeof err) == -1 && strstr(err, "newline"));
}

/* Random mutations of valid files (byte flips, truncations, spliced
 * bytes): the parser must answer, never read out of bounds (ASan build),
 * and whatever it accepts must be self-consistent. */
static void test_fuzz(void) {
    char seeds[3][512];
    size_t slen[3];
    slen[0] = make_file(seeds[0], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 1);
    slen[1] = make_file(seeds[1], "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 2);
    int64_t sh[1] = {24};
    int hl = npy_header(seeds[2], sizeof seeds[2], NPY_DTYPE_U8, 1, sh);
    memset(seeds[2] + hl, 7, 24);
    slen[2] = (size_t)hl + 24;
    jepa_rng r;
    rng_init(&r, 1234);
    int accepted = 0, iters = 200000;
    char err[256];
    for (int it = 0; it < iters; it++) {
        int s = (int)rng_below(&r, 3);
        size_t n = slen[s];
        char *b = malloc(n + 8); /* exactly what the parser is told it has... */
        memcpy(b, seeds[s], n);
        int muts = 1 + (int)rng_below(&r, 4);
        for (int k = 0; k < muts; k++) {
            uint32_t op = rng_below(&r, 4), at = rng_below(&r, (uint32_t)n);
            if (op == 0) b[at] ^= (char)(1u << rng_below(&r, 8));
            else if (op == 1) b[at] = (char)rng_below(&r, 256);
            else if (op == 2) b[at] = "(),: '\"0123456789{}FalseTrue<|fu"[rng_below(&r, 31)];
            else n = at; /* truncate */
        }
        char *exact = malloc(n ? n : 1); /* ...and no byte more, for ASan */
        memcpy(exact, b, n);
        npy_array m;
        size_t off = 0;
        if (npy_parse(exact, n, &m, &off, err, sizeof err) == 0) {
            accepted++;
            size_t isz = m.dtype == NPY_DTYPE_F32 ? 4 : 1;
            CU_ASSERT(off + m.count * isz == n && m.ndim <= NPY_MAX_DIMS);
        } else {
            CU_ASSERT(err[0] != '\0');
        }
        free(b);
        free(exact);
    }
    printf("\n    %d mutated files, %d accepted (self-consistent)", iters, accepted);
}

static int stop_at, stop_asked; /* stop_after: nonzero at the stop_at-th question */
static int stop_after(void) { return ++stop_asked == stop_at; }

/* Atomic writes: a failed write leaves no temp file and does not touch
 * what is at the path; a good one replaces the file whole. */
static void test_atomic(void) {
    char p[128], err[256];
    float a[4] = {1, 2, 3, 4};
    int before = dir_entries();
    path_in(p, sizeof p, "isdir.npy");
    CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
    CU_ASSERT(npy_write_f32(p, a, 2, 2, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, p) != NULL);
    struct stat st;
    CU_ASSERT(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    CU_ASSERT(dir_entries() == before + 1); /* the directory only: no temp file */
    rmdir(p);
    CU_ASSERT(npy_write_f32("/nonexistent-dir/x.npy", a, 2, 2, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "/nonexistent-dir/x.npy") != NULL);
    CU_ASSERT(npy_write_f32(p, NULL, 2, 2, err, sizeof err) == -1);
    CU_ASSERT(npy_write_f32(p, a, -2, 2, err, sizeof err) == -1);
    CU_ASSERT(access(p, F_OK) != 0);
    /* replace: the new contents whole */
    path_in(p, sizeof p, "r.npy");
    CU_ASSERT_FATAL(npy_write_f32(p, a, 2, 2, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_write_f32(p, a, 1, 3, err, sizeof err) == 0);
    npy_array m;
    CU_ASSERT_FATAL(npy_read(p, &m, err, sizeof err) == 0);
    CU_ASSERT(m.shape[0] == 1 && m.shape[1] == 3 && ((float *)m.data)[2] == 3.0f);
    npy_free(&m);
    CU_ASSERT(npy_read("/nonexistent-dir/x.npy", &m, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "cannot open /nonexistent-dir/x.npy") != NULL);
    unlink(p);
    path_in(p, sizeof p, "fifo.npy"); /* refused, never waited on for a writer */
    CU_ASSERT_FATAL(mkfifo(p, 0600) == 0);
    CU_ASSERT(npy_read(p, &m, err, sizeof err) == -1 && strstr(err, "fifo.npy: not a regular file") != NULL);
    unlink(p);
    /* stopped (npy_set_stop: jepa-eval's caught SIGINT), at its first or its
     * last question: a failed write, nothing at the path, no temp file */
    for (int at = 1; at <= 3; at++) {
        stop_at = at, stop_asked = 0;
        npy_set_stop(stop_after);
        path_in(p, sizeof p, "stopped.npy");
        CU_ASSERT(npy_write_f32(p, a, 2, 2, err, sizeof err) == -1);
        CU_ASSERT(stop_asked == at && strstr(err, "Interrupted") && access(p, F_OK) != 0);
        CU_ASSERT(dir_entries() == before);
    }
    npy_set_stop(NULL);
}

/* A python3 that imports numpy (JEPA_PYTHON, python3 on PATH, or Debian's
 * /usr/bin/python3), or NULL. */
static const char *numpy_python(void) {
    static const char *cands[] = {NULL, "python3", "/usr/bin/python3"};
    cands[0] = getenv("JEPA_PYTHON");
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!cands[i]) continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

static void test_numpy(void) {
    const char *py = numpy_python();
    if (!py) { /* scripts/setup.sh installs python3-numpy: its absence is a failure */
        const char *skip = getenv("JEPA_NO_NUMPY");
        if (skip && !strcmp(skip, "1")) {
            printf("\n    SKIPPED: JEPA_NO_NUMPY=1");
            return;
        }
        CU_FAIL("no python3 imports numpy: install python3-numpy (scripts/setup.sh), set JEPA_PYTHON, "
                "or JEPA_NO_NUMPY=1 to skip");
        return;
    }
    enum { R = 5, C = 7, N = 300 };
    float a[R * C];
    uint8_t y[N];
    for (int i = 0; i < R * C; i++) a[i] = (float)i / 8.0f - 1.25f; /* exact in float */
    for (int i = 0; i < N; i++) y[i] = (uint8_t)((i * 7) % 256);
    char pf[128], py8[128], pin[128], pin8[128], pin1[128], script[128], err[256];
    path_in(pf, sizeof pf, "np_f.npy");
    path_in(py8, sizeof py8, "np_y.npy");
    path_in(pin, sizeof pin, "from_numpy_f.npy");
    path_in(pin8, sizeof pin8, "from_numpy_y.npy");
    path_in(pin1, sizeof pin1, "from_numpy_1d.npy");
    path_in(script, sizeof script, "check.py");
    CU_ASSERT_FATAL(npy_write_f32(pf, a, R, C, err, sizeof err) == 0);
    CU_ASSERT_FATAL(npy_write_u8(py8, y, N, err, sizeof err) == 0);
    FILE *f = fopen(script, "w");
    fprintf(f,
            "import sys, numpy as np\n"
            "a = np.load(sys.argv[1]); y = np.load(sys.argv[2])\n"
            "want = (np.arange(%d, dtype=np.float32) / 8 - 1.25).reshape(%d, %d)\n"
            "assert a.dtype == np.float32 and a.shape == (%d, %d), (a.dtype, a.shape)\n"
            "assert np.array_equal(a, want)\n"
            "assert y.dtype == np.uint8 and y.shape == (%d,), (y.dtype, y.shape)\n"
            "assert np.array_equal(y, (np.arange(%d) * 7 %% 256).astype(np.uint8))\n"
            "np.save(sys.argv[3], (np.arange(24, dtype=np.float32) * 0.5).reshape(4, 6))\n"
            "np.save(sys.argv[4], np.arange(9, dtype=np.uint8) * 3)\n"
            "np.save(sys.argv[5], np.float32([2.5, -1]))\n",
            R * C, R, C, R, C, N, N);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s' '%s' '%s'", py, script, pf, py8, pin,
             pin8, pin1);
    int rc = system(cmd);
    printf("\n    %s: numpy.load of our files %s", py, rc == 0 ? "ok" : "FAILED");
    CU_ASSERT_FATAL(rc == 0);
    npy_array m;
    CU_ASSERT_FATAL(npy_read(pin, &m, err, sizeof err) == 0);
    CU_ASSERT(m.dtype == NPY_DTYPE_F32 && m.ndim == 2 && m.shape[0] == 4 && m.shape[1] == 6);
    for (int i = 0; i < 24; i++) CU_ASSERT(((float *)m.data)[i] == i * 0.5f);
    npy_free(&m);
    CU_ASSERT_FATAL(npy_read(pin8, &m, err, sizeof err) == 0);
    CU_ASSERT(m.dtype == NPY_DTYPE_U8 && m.ndim == 1 && m.shape[0] == 9);
    for (int i = 0; i < 9; i++) CU_ASSERT(((uint8_t *)m.data)[i] == i * 3);
    npy_free(&m);
    CU_ASSERT_FATAL(npy_read(pin1, &m, err, sizeof err) == 0);
    CU_ASSERT(m.ndim == 1 && m.shape[0] == 2 && ((float *)m.data)[1] == -1.0f);
    npy_free(&m);
    const char *files[] = {pf, py8, pin, pin8, pin1, script};
    for (size_t i = 0; i < 6; i++) unlink(files[i]);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/jepa-npy.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    static const test_case cases[] = {
        {"round_trip", test_round_trip}, {"header_bytes", test_header_bytes},
        {"truncation", test_truncation}, {"corruption", test_corruption},
        {"fuzz", test_fuzz},             {"atomic", test_atomic},
        {"numpy", test_numpy},
    };
    int rc = test_main("npy", cases, (int)(sizeof cases / sizeof cases[0]));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "test_npy: could not remove %s\n", dir);
    return rc;
}
