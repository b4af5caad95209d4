/* util.c - small pieces every shard file uses: fail-fast allocation, the
 * one-line error buffer, CRC-32, the counter-based RNG behind every shuffle,
 * opening an input (regular files only) and positioned reads, name
 * characters, the pack-option checks, mkdir -p and output places (symbolic
 * links written through), the SIGINT/SIGTERM/SIGHUP
 * flag a writer stops on and the programs' "given twice" list. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "open_regular.h"
#include "shard_internal.h"

void shard_fatal(const char *file, int line, const char *what) {
    fprintf(stderr, "jepa-shard: %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}

static shard_oom_fn oom_handler; /* NULL: message and abort() */

void shard_set_oom_handler(shard_oom_fn fn) { oom_handler = fn; }

static void __attribute__((noreturn)) out_of_memory(size_t bytes) {
    if (oom_handler) oom_handler(bytes);
    fprintf(stderr, "jepa-shard: out of memory allocating %zu bytes\n", bytes);
    abort();
}

void *shard_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *shard_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(size && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    return p;
}

char *shard_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(shard_xmalloc(n), s, n);
}

void shard_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint32_t shard_crc32(const uint8_t *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) { /* crc32 takes uInt lengths */
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        c = crc32(c, p, (uInt)k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

uint64_t shard_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t shard_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    /* chained so (a, b, c) and (b, a, c) give unrelated streams */
    return shard_mix64(shard_mix64(shard_mix64(shard_mix64(seed) ^ a) ^ b) ^ c);
}

uint64_t shard_rng_next(shard_rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t shard_rng_below(shard_rng *r, uint64_t n) {
    SHARD_ASSERT(n > 0);
    /* reject the low 2^64 mod n values so every residue is equally likely */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = shard_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

void shard_shuffle_u32(shard_rng *r, uint32_t *a, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)shard_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

int shard_pread_all(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *b = buf;
    while (n) {
        ssize_t k = pread(fd, b, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = 0;
            return -1;
        }
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int shard_open_regular(const char *path, uint64_t *size, char *err, size_t errlen) {
    off_t n = 0;
    int fd = open_regular(path, &n), e = errno;
    if (fd == -1) shard_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
    else if (fd < 0 && e == EINVAL)
        shard_err(err, errlen, "%s: not a regular file (a device, FIFO or socket may never end)", path);
    else if (fd < 0) shard_err(err, errlen, "%s: cannot read: %s", path, strerror(e));
    if (fd < 0) return errno = e, -1;
    if (size) *size = (uint64_t)n;
    return fd;
}

FILE *shard_fopen_regular(const char *path, uint64_t *size, char *err, size_t errlen) {
    int fd = shard_open_regular(path, size, err, errlen);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (fd >= 0 && !f) {
        int e = errno;
        close(fd);
        shard_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
        errno = e;
    }
    return f;
}

int shard_make_dirs(const char *path, char *err, size_t errlen) {
    size_t made;
    return shard_make_dirs_noting(path, &made, err, errlen);
}

int shard_make_dirs_noting(const char *path, size_t *made, char *err, size_t errlen) {
    char *p = shard_xmalloc(strlen(path) + 1);
    strcpy(p, path);
    int rc = 0;
    *made = 0;
    for (char *c = p + 1; rc == 0; c++) { /* each prefix ending at a '/' or the end */
        if (*c != '/' && *c != 0) continue;
        char end = *c;
        *c = 0;
        struct stat st;
        int mk = c[-1] != '/' ? mkdir(p, 0755) : -1;
        if (mk == 0 && !*made) *made = (size_t)(c - p);
        if (c[-1] != '/' && mk != 0 && errno != EEXIST) rc = -1;
        else if (c[-1] != '/' && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) errno = ENOTDIR, rc = -1;
        if (rc) shard_err(err, errlen, "cannot create directory %s: %s", p, strerror(errno));
        *c = end;
        if (!end) break;
    }
    free(p);
    if (rc) {
        shard_unmake_dirs(path, *made);
        *made = 0;
    }
    return rc;
}

void shard_unmake_dirs(const char *path, size_t made) {
    if (!made) return;
    char *p = shard_xmalloc(strlen(path) + 1);
    strcpy(p, path);
    for (size_t n = strlen(p); n >= made; n--) { /* at each '/' (and the end): one prefix */
        if (p[n] != '/' && p[n] != 0) continue;
        p[n] = 0;
        if (n > 0 && p[n - 1] != '/') rmdir(p);
    }
    free(p);
}

int shard_dangling_link(const char *path, char *to, size_t n) {
    struct stat ls, st;
    if (lstat(path, &ls) != 0 || !S_ISLNK(ls.st_mode) || stat(path, &st) == 0) return 0;
    ssize_t k = readlink(path, to, n - 1);
    to[k > 0 ? k : 0] = 0;
    return 1;
}

int shard_dir_makeable(const char *dir, char *err, size_t errlen) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s", dir);
    while (stat(p, &st) != 0) { /* absent, or under a file (ENOTDIR): one level up */
        char to[4096];
        if (shard_dangling_link(p, to, sizeof to)) { /* mkdir -p would fail on it: said as the link it is */
            shard_err(err, errlen, "cannot create directory %s: %s is a symbolic link to %s, which does not exist",
                      dir, p, to);
            return -1;
        }
        char *slash = strrchr(p, '/');
        if (!strcmp(p, ".")) { /* the working directory itself is gone */
            shard_err(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
            return -1;
        }
        if (!slash) snprintf(p, sizeof p, ".");
        else if (slash == p) slash[1] = 0;
        else *slash = 0;
    }
    int isdir = S_ISDIR(st.st_mode);
    if (!isdir) errno = ENOTDIR;
    if (isdir && access(p, W_OK | X_OK) == 0) return 0; /* EROFS even for root */
    shard_err(err, errlen, "cannot %s %s: %s", isdir ? "write into" : "create directory", p, strerror(errno));
    return -1;
}

/* The first name in path longer than NAME_MAX: its length, *at its start; 0 if none. */
static size_t long_name(const char *path, const char **at) {
    for (const char *p = path; *p; p += strspn(p, "/")) {
        size_t k = strcspn(p, "/");
        if (k > NAME_MAX) return *at = p, k;
        p += k;
    }
    return 0;
}

/* A directory whose parent is on another device: a mount point. */
static int mount_point(const char *dir) {
    char up[4096 + 4];
    struct stat a, b;
    snprintf(up, sizeof up, "%s/..", dir);
    return stat(dir, &a) == 0 && S_ISDIR(a.st_mode) && stat(up, &b) == 0 && a.st_dev != b.st_dev;
}

int shard_out_place(const char *path, int flags, char *real, size_t n, char *err, size_t errlen) {
    const char *at = NULL, *kind = flags & SHARD_PLACE_DIR ? "directory" : "file";
    size_t k = long_name(path, &at);
    if (k) {
        shard_err(err, errlen, "%s: the name '%.24s...' is %zu bytes, more than a file name may have "
                  "(NAME_MAX %d)", path, at, k, NAME_MAX);
        return -1;
    }
    struct stat ls, st;
    if (!(flags & SHARD_PLACE_DIR) && lstat(path, &ls) == 0 && S_ISDIR(ls.st_mode)) {
        shard_err(err, errlen, "%s: a directory (a file is written there)", path);
        return -1;
    }
    char bare[4096], to[4096] = "", full[PATH_MAX], why[128] = "";
    size_t bn = (size_t)snprintf(bare, sizeof bare, "%s", path);
    while (bn > 1 && bn < sizeof bare && bare[bn - 1] == '/') bare[--bn] = 0; /* "link/" is the link */
    int link = lstat(bare, &ls) == 0 && S_ISLNK(ls.st_mode);
    ssize_t tn = link ? readlink(bare, to, sizeof to - 1) : 0;
    to[tn > 0 ? tn : 0] = 0;
    int gone = link && stat(bare, &st) != 0 ? errno : 0;
    if (gone)
        snprintf(why, sizeof why, "which %s%s", gone == ENOENT ? "does not exist" : "cannot be reached: ",
                 gone == ENOENT ? "" : strerror(gone));
    else if (link && (flags & SHARD_PLACE_DIR) != 0 && !S_ISDIR(st.st_mode))
        snprintf(why, sizeof why, "which is not a directory");
    else if (link && (flags & SHARD_PLACE_DIR) == 0 && S_ISDIR(st.st_mode))
        snprintf(why, sizeof why, "which is a directory");
    else if (link && !realpath(bare, full))
        snprintf(why, sizeof why, "which cannot be resolved: %s", strerror(errno));
    if (why[0]) {
        shard_err(err, errlen, "%s: a symbolic link to %s, %s (the %s is written where the link points: "
                  "make that %s, or remove the link)", path, to, why, kind, kind);
        return -1;
    }
    if (snprintf(real, n, "%s", link ? full : path) >= (int)n) {
        shard_err(err, errlen, "%s: path too long", path);
        return -1;
    }
    if ((flags & SHARD_PLACE_RENAMED) && mount_point(real)) {
        shard_err(err, errlen, "%s: a mount point: the finished %s is moved into place by a rename, which "
                  "cannot replace one (write into a directory inside it)", path, kind);
        return -1;
    }
    return 0;
}

void shard_sibling_path(char *dst, size_t n, const char *parent, const char *prefix, const char *base,
                        const char *suffix) {
    size_t room = NAME_MAX - strlen(prefix) - strlen(suffix), bn = strlen(base);
    snprintf(dst, n, "%s/%s%.*s%s", parent, prefix, (int)(bn < room ? bn : room), base, suffix);
}

int shard_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int shard_fsync_dir_of(const char *path) {
    char d[4096]; /* PATH_MAX */
    if (snprintf(d, sizeof d, "%s", path) >= (int)sizeof d) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return shard_fsync_dir(dirname(d));
}

int shard_tmp_commit(FILE *f, int ok, const char *tmp, const char *path, char *err, size_t errlen) {
    int e = ok ? 0 : errno ? errno : EIO;
    if (f && !e && (fflush(f) != 0 || fsync(fileno(f)) != 0)) e = errno ? errno : EIO;
    if (f && fclose(f) != 0 && !e) e = errno;
    if (!f && !e) e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (!e) {
        (void)shard_fsync_dir_of(path);
        return 0;
    }
    unlink(tmp);
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
    return -1;
}

int shard_name_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* ----------------------------------------------------------- pack options */
void shard_pack_opts_defaults(shard_pack_opts *o) {
    memset(o, 0, sizeof *o);
    o->records_per_shard = 4096;
    o->records_per_frame = 256;
    o->level = 3;
    snprintf(o->split, sizeof o->split, "train");
}

int shard_pack_opts_check(const shard_pack_opts *o, char *err, size_t errlen) {
    if (o->records_per_shard < 1 || o->records_per_shard > (1u << 31)) {
        shard_err(err, errlen, "records per shard %u out of range [1, %u]", o->records_per_shard,
                  1u << 31);
        return -1;
    }
    if (o->records_per_frame < 1 || o->records_per_frame > (1u << 20)) {
        shard_err(err, errlen, "records per frame %u out of range [1, %u]", o->records_per_frame,
                  1u << 20);
        return -1;
    }
    if (o->level < 1 || o->level > ZSTD_maxCLevel()) {
        shard_err(err, errlen, "zstd level %d out of range [1, %d]", o->level, ZSTD_maxCLevel());
        return -1;
    }
    size_t n = strnlen(o->split, sizeof o->split);
    if (n == 0 || n >= sizeof o->split) {
        shard_err(err, errlen, "split name must be 1 to %zu characters", sizeof o->split - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!shard_name_char_ok(o->split[i])) {
            shard_err(err, errlen, "split name '%s': only letters, digits, '.', '_' and '-'",
                      o->split);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ interrupts */
static volatile sig_atomic_t interrupt_sig; /* the signal caught, 0 if none */
/* SIGHUP: the terminal or ssh session the command ran in has closed */
#define INTERRUPT_NSIGS 3
static const int interrupt_sigs[INTERRUPT_NSIGS] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction interrupt_old[INTERRUPT_NSIGS]; /* the handlers catch() replaced */
static int interrupt_replaced[INTERRUPT_NSIGS];

/* Sets the flag: the one thing a handler may safely do here. A second
 * signal takes its default action at once: SA_RESETHAND did that for the
 * signal already caught, this does it for the other one (SIGTERM after a
 * SIGINT); signal() and raise() are async-signal-safe. */
static void interrupt_handler(int sig) {
    if (interrupt_sig) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupt_sig = sig;
}

void shard_interrupt_catch(void) {
    interrupt_sig = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupt_handler;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a write in progress finishes instead of failing with
     * EINTR; SA_RESETHAND: the same signal again takes the default action
     * (the handler does that for the other one) */
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    for (int i = 0; i < INTERRUPT_NSIGS; i++) {
        interrupt_replaced[i] = 0;
        if (sigaction(interrupt_sigs[i], NULL, &interrupt_old[i]) != 0 ||
            interrupt_old[i].sa_handler == SIG_IGN) /* ignored on entry: stays so */
            continue;
        interrupt_replaced[i] = sigaction(interrupt_sigs[i], &sa, NULL) == 0;
    }
}

int shard_interrupt_pending(void) {
    return (int)interrupt_sig;
}

const char *shard_interrupt_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

void shard_interrupt_release(int completed) {
    for (int i = 0; i < INTERRUPT_NSIGS; i++) {
        if (interrupt_replaced[i]) sigaction(interrupt_sigs[i], &interrupt_old[i], NULL);
        interrupt_replaced[i] = 0;
    }
    int sig = (int)interrupt_sig;
    interrupt_sig = 0;
    /* Not completed: the signal's own action, now that nothing is
     * half-written. Completed: the signal came after the writer's last
     * check, while the finished output was moved into place; ending the
     * process now would not undo the output, only hide it (no summary, a
     * failing exit status over a complete dataset), so it is dropped. */
    if (sig && !completed) raise(sig);
}

/* ----------------------------------------------------------- command line */
const char *shard_seen_find(const shard_seen *s, const char *key, size_t kn) {
    for (int i = 0; i < s->n; i++)
        if (s->keylen[i] == kn && !memcmp(s->key[i], key, kn)) return s->typed[i];
    return NULL;
}

const char *shard_seen_add(shard_seen *s, const char *key, size_t kn, const char *typed) {
    SHARD_ASSERT(typed); /* NULL means "not given" to find() */
    const char *before = shard_seen_find(s, key, kn);
    if (before) return before;
    SHARD_ASSERT(s->n < SHARD_SEEN_MAX);
    s->key[s->n] = key;
    s->keylen[s->n] = kn;
    s->typed[s->n++] = typed;
    return NULL;
}
