/* test_shard_signals.c - what the writing programs (jepa-shard pack,
 * jepa-world gen) rely on beside the format: the size of one frame
 * estimated before writing (gen's free-space check), the interrupt flag
 * (SIGINT/SIGTERM mid-write: one line, the staging directory removed, the
 * signal re-raised; a signal after the output is in place dropped; a second
 * of either kind acts at once), shard_seen (a setting given twice) and the
 * out-of-memory hook (jepa-train's exit 5 instead of the library's abort).
 * Also run under ASan/UBSan (test_shard_signals_asan). */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "shard.h"
#include "shard_internal.h"

static char tmpdir[] = "/tmp/test_shard_signals_XXXXXX";
static char err[SHARD_ERR_MAX];

#include "shard_v2_helpers.h"

/* ------------------------------------------------- estimate, interrupt */
/* The estimate of one frame is the frame the writer writes, byte for byte
 * in size: one frame of n records, its compressed_bytes read back. */
static void test_frame_estimate(void) {
    shard_schema s;
    tl_world_schema(&s, 6, 5);
    size_t rec = shard_schema_record_bytes(&s);
    const uint32_t n = 13;
    uint8_t *buf = malloc(n * rec);
    for (uint32_t i = 0; i < n; i++) tl_world_record(&s, i, buf + i * rec);
    for (int level = 1; level <= 19; level += 9) {
        shard_pack_opts o;
        shard_pack_opts_defaults(&o);
        o.records_per_frame = n;
        o.level = level;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/estimate-%d", tmpdir, level);
        shard_writer *w;
        CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
        CU_ASSERT_FATAL(shard_writer_add(w, buf, NULL, n, err, sizeof err) == 0);
        CU_ASSERT_FATAL(shard_writer_close(w, err, sizeof err) == 0);
        shard_dataset *ds;
        CU_ASSERT_FATAL(shard_dataset_open(&ds, dir, err, sizeof err) == 0);
        shard_dataset_info in;
        shard_dataset_get_info(ds, &in);
        shard_dataset_close(ds);
        uint64_t est = 0;
        CU_ASSERT(shard_frame_estimate(&s, &o, buf, NULL, n, &est, err, sizeof err) == 0);
        CU_ASSERT(in.frames == 1 && est == in.compressed_bytes && est < n * rec);
    }
    free(buf);
}

static volatile sig_atomic_t test_sigterms; /* the test's own SIGTERM handler */
static void count_sigterm(int sig) {
    (void)sig;
    test_sigterms++;
}

/* SIGTERM after shard_interrupt_catch: add() (or close()) fails in one
 * line, abort leaves nothing, release restores the previous handler and
 * delivers the signal to it once; an ignored SIGINT stays ignored. */
static void test_writer_interrupt(void) {
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    size_t rec = shard_schema_record_bytes(&s);
    uint8_t *buf = malloc(20 * rec);
    for (uint32_t i = 0; i < 20; i++) tl_world_record(&s, i, buf + i * rec);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    o.records_per_frame = 4;
    struct sigaction mine = {0}, now;
    mine.sa_handler = count_sigterm;
    sigemptyset(&mine.sa_mask);
    CU_ASSERT_FATAL(sigaction(SIGTERM, &mine, NULL) == 0);
    for (int at_close = 0; at_close < 2; at_close++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/interrupted-%d", tmpdir, at_close);
        shard_writer *w;
        test_sigterms = 0;
        shard_interrupt_catch();
        CU_ASSERT_FATAL(shard_writer_open(&w, dir, &s, &o, err, sizeof err) == 0);
        CU_ASSERT(shard_writer_add(w, buf, NULL, 10, err, sizeof err) == 0);
        raise(SIGTERM);
        CU_ASSERT(shard_interrupt_pending() == SIGTERM && test_sigterms == 0);
        int rc = at_close ? shard_writer_close(w, err, sizeof err)
                          : shard_writer_add(w, buf + 10 * rec, NULL, 10, err, sizeof err);
        CU_ASSERT(rc == -1 && contains(err, dir) && contains(err, "interrupted by SIGTERM") &&
                  contains(err, "nothing written") && one_line(err));
        if (!at_close) shard_writer_abort(w);
        struct stat st;
        CU_ASSERT(stat(dir, &st) == -1 && partial_dirs_left() == 0);
        shard_interrupt_release(0);
        CU_ASSERT(test_sigterms == 1 && shard_interrupt_pending() == 0);
        CU_ASSERT(sigaction(SIGTERM, NULL, &now) == 0 && now.sa_handler == count_sigterm);
    }
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_IGN);
    shard_interrupt_catch();
    raise(SIGINT);
    CU_ASSERT(shard_interrupt_pending() == 0);
    shard_interrupt_release(0);
    signal(SIGINT, SIG_DFL);
    free(buf);
}

/* How a child that runs body(dir) with the default SIGINT/SIGTERM actions
 * ends: its exit status, or 128 + the signal that ended it. */
static int child_end(void (*body)(const char *), const char *dir) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        body(dir);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* A dataset written and closed, then a SIGTERM as if it came while the
 * finished dataset was moved into place (after close()'s last check):
 * release(1) drops it, the process goes on (exit 7) */
static void late_sigterm(const char *dir) {
    shard_schema s;
    tl_world_schema(&s, 4, 3);
    size_t rec = shard_schema_record_bytes(&s);
    uint8_t *buf = malloc(4 * rec);
    for (uint32_t i = 0; i < 4; i++) tl_world_record(&s, i, buf + i * rec);
    shard_pack_opts o;
    shard_pack_opts_defaults(&o);
    shard_writer *w;
    shard_interrupt_catch();
    if (shard_writer_open(&w, dir, &s, &o, err, sizeof err) ||
        shard_writer_add(w, buf, NULL, 4, err, sizeof err) ||
        shard_writer_close(w, err, sizeof err))
        _exit(3);
    raise(SIGTERM);
    shard_interrupt_release(1);
    _exit(7);
}
/* the same signal before the output was complete: release(0) ends the process by it */
static void early_sigterm(const char *dir) {
    (void)dir;
    shard_interrupt_catch();
    raise(SIGTERM);
    shard_interrupt_release(0);
    _exit(7);
}
/* SIGINT caught, then SIGTERM (another kind) while stopping: acts at once */
static void int_then_term(const char *dir) {
    (void)dir;
    shard_interrupt_catch();
    raise(SIGINT);
    if (shard_interrupt_pending() != SIGINT) _exit(3);
    raise(SIGTERM);
    _exit(7);
}
/* SIGTERM caught, then SIGINT: the same, the other way round */
static void term_then_int(const char *dir) {
    (void)dir;
    shard_interrupt_catch();
    raise(SIGTERM);
    raise(SIGINT);
    _exit(7);
}
/* the same signal twice: SA_RESETHAND's default action */
static void term_twice(const char *dir) {
    (void)dir;
    shard_interrupt_catch();
    raise(SIGTERM);
    raise(SIGTERM);
    _exit(7);
}

static void test_interrupt_end(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/late", tmpdir);
    CU_ASSERT(child_end(late_sigterm, dir) == 7);
    shard_dataset *ds = NULL;
    CU_ASSERT(shard_dataset_open(&ds, dir, err, sizeof err) == 0); /* complete, in place */
    shard_dataset_close(ds);
    CU_ASSERT(child_end(early_sigterm, NULL) == 128 + SIGTERM);
    CU_ASSERT(child_end(int_then_term, NULL) == 128 + SIGTERM);
    CU_ASSERT(child_end(term_then_int, NULL) == 128 + SIGINT);
    CU_ASSERT(child_end(term_twice, NULL) == 128 + SIGTERM);
    CU_ASSERT(partial_dirs_left() == 0);
}

/* shard_seen: a setting given twice, in one spelling or two, is found with
 * how it was first given; a longer name sharing a prefix is another. */
static void test_seen(void) {
    shard_seen s = {0};
    CU_ASSERT(shard_seen_add(&s, "--out", 5, "A") == NULL);
    CU_ASSERT(shard_seen_add(&s, "size=16", 4, "--size 16") == NULL);
    CU_ASSERT(shard_seen_add(&s, "sizes=2", 5, "--set sizes=2") == NULL);
    const char *b = shard_seen_add(&s, "--out", 5, "B");
    CU_ASSERT(b && !strcmp(b, "A"));
    b = shard_seen_add(&s, "size=32", 4, "--set size=32");
    CU_ASSERT(b && !strcmp(b, "--size 16"));
    CU_ASSERT(shard_seen_find(&s, "siz", 3) == NULL && shard_seen_find(&s, "--o", 3) == NULL);
    b = shard_seen_find(&s, "sizes", 5);
    CU_ASSERT(b && !strcmp(b, "--set sizes=2") && s.n == 3);
}

static int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* shard_make_dirs_noting / shard_unmake_dirs: what an interrupted program
 * made goes, what was there (or another put there since) stays; a failure
 * leaves nothing it made. */
static void test_unmake_dirs(void) {
    char old[512], path[4096], other[4096], file[4096];
    snprintf(old, sizeof old, "%s/mk", tmpdir);
    CU_ASSERT_FATAL(mkdir(old, 0755) == 0);
    snprintf(path, sizeof path, "%s/a//b/c/", old);
    size_t made = 99;
    CU_ASSERT(shard_make_dirs_noting(path, &made, err, sizeof err) == 0);
    CU_ASSERT(made == strlen(old) + 2 && dir_exists(path)); /* ".../mk/a" */
    shard_unmake_dirs(path, made);
    snprintf(other, sizeof other, "%s/a", old);
    CU_ASSERT(!dir_exists(other) && dir_exists(old));
    /* a file another process left in one of them keeps that one and its parents */
    CU_ASSERT(shard_make_dirs_noting(path, &made, err, sizeof err) == 0);
    snprintf(file, sizeof file, "%s/a/b/theirs", old);
    FILE *f = fopen(file, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    shard_unmake_dirs(path, made);
    snprintf(other, sizeof other, "%s/a/b/c", old);
    CU_ASSERT(!dir_exists(other) && access(file, F_OK) == 0);
    /* nothing made: nothing removed */
    CU_ASSERT(shard_make_dirs_noting(old, &made, err, sizeof err) == 0 && made == 0);
    shard_unmake_dirs(old, made);
    CU_ASSERT(dir_exists(old));
    /* a component too long for mkdir after one it made: that one is gone too */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    snprintf(path, sizeof path, "%s/x/%s", old, longname);
    snprintf(other, sizeof other, "%s/x", old);
    CU_ASSERT(shard_make_dirs_noting(path, &made, err, sizeof err) == -1 && made == 0);
    CU_ASSERT(!dir_exists(other) && strstr(err, "cannot create directory") != NULL);
    /* a prefix that is a file: named, nothing made */
    snprintf(path, sizeof path, "%s/a/b/theirs/z", old);
    CU_ASSERT(shard_make_dirs_noting(path, &made, err, sizeof err) == -1 && made == 0);
    CU_ASSERT(strstr(err, "theirs: Not a directory") != NULL && access(file, F_OK) == 0);
}

static jmp_buf oom_jump;
static size_t oom_bytes;

static void oom_catch(size_t bytes) {
    oom_bytes = bytes;
    longjmp(oom_jump, 1);
}

/* the default: one line naming the bytes on stderr, then SIGABRT */
static void oom_default(const char *dir) {
    (void)dir;
    shard_set_oom_handler(NULL);
    int fd = open(dir, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(3);
    shard_xmalloc(SIZE_MAX / 2);
    _exit(0);
}

/* A program's handler gets the bytes asked for (SIZE_MAX when calloc's count
 * overflows) and never returns to the library; without one the library
 * aborts with its line. */
static void test_oom_hook(void) {
    shard_set_oom_handler(oom_catch);
    oom_bytes = 0;
    if (!setjmp(oom_jump)) {
        shard_xmalloc(SIZE_MAX / 2);
        CU_FAIL("shard_xmalloc returned where the allocation cannot succeed");
    }
    CU_ASSERT(oom_bytes == SIZE_MAX / 2);
    oom_bytes = 0;
    if (!setjmp(oom_jump)) {
        shard_xcalloc(SIZE_MAX / 4, 8);
        CU_FAIL("shard_xcalloc returned where the allocation cannot succeed");
    }
    CU_ASSERT(oom_bytes == SIZE_MAX);
    oom_bytes = 0;
    void *p = shard_xmalloc(64); /* a small one does not call the handler */
    CU_ASSERT(p != NULL && oom_bytes == 0);
    free(p);
    shard_set_oom_handler(NULL);

    char log[sizeof tmpdir + 16];
    snprintf(log, sizeof log, "%s/oom.log", tmpdir);
    CU_ASSERT(child_end(oom_default, log) == 128 + SIGABRT);
    /* the library's line (under ASan after the sanitizer's own warning) */
    FILE *f = fopen(log, "r");
    char line[256], want[128];
    int found = 0;
    snprintf(want, sizeof want, "jepa-shard: out of memory allocating %zu bytes\n", SIZE_MAX / 2);
    while (f && fgets(line, sizeof line, f)) found += !strcmp(line, want);
    if (f) fclose(f);
    CU_ASSERT(found == 1);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 2;
    static const test_case cases[] = {
        {"frame estimate = the writer's frame", test_frame_estimate},
        {"SIGTERM mid-write: one line, nothing left, signal re-raised", test_writer_interrupt},
        {"late signal dropped; a second signal of either kind acts at once", test_interrupt_end},
        {"shard_seen: a setting given twice", test_seen},
        {"make_dirs_noting / unmake_dirs: only what was made goes", test_unmake_dirs},
        {"out of memory: the program's handler, or one line and abort", test_oom_hook},
    };
    int rc = test_main("shard_signals", cases, (int)(sizeof cases / sizeof *cases));
    rm_tree(tmpdir);
    return rc;
}
