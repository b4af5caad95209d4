/* util.c - the launcher's small shared pieces: argv arrays, shell quoting,
 * atomic file writes, the run's state and log files, spawning a child from
 * argv, and a reader for our flat JSON (summary.json, metrics.jsonl lines). */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch.h"
#include "shard.h" /* shard_dangling_link */

extern char **environ;

void launch_oom(void) {
    fprintf(stderr, "jepa-launch: out of memory\n");
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) launch_oom();
    return q;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) launch_oom();
    return d;
}

void launch_argv_push(launch_argv *a, const char *s) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, sizeof(char *) * (size_t)a->cap);
    }
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

/* vasprintf or die: the formatted string, malloc'd */
static char *vformat(const char *fmt, va_list ap) {
    char *s;
    if (vasprintf(&s, fmt, ap) < 0 || !s) launch_oom();
    return s;
}

void launch_argv_pushf(launch_argv *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    launch_argv_push(a, s);
    free(s);
}

void launch_argv_free(launch_argv *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

void launch_shell_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

const char *launch_path_arg(const char *path, char *buf, size_t n) {
    snprintf(buf, n, "%s%s", path[0] == '-' ? "./" : "", path);
    return buf;
}

void launch_argv_push_path(launch_argv *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    launch_argv_pushf(a, "%s%s", s[0] == '-' ? "./" : "", s); /* as launch_path_arg */
    free(s);
}

int launch_slurm_literal(const char *path, char *out, size_t n) {
    size_t k = 0;
    if (strchr(path, '\\')) return -1;
    for (const char *p = path; *p; p++) {
        if (k + 3 > n) return -1;
        if (*p == '%') out[k++] = '%';
        out[k++] = *p;
    }
    if (k + 1 > n) return -1;
    out[k] = 0;
    return 0;
}

static int shell_safe(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,@%+-", *s)) return 0;
    return 1;
}

void launch_argv_print(const launch_argv *a, FILE *f) {
    for (int i = 0; i < a->n; i++) {
        if (i) fputc(' ', f);
        if (shell_safe(a->v[i])) fputs(a->v[i], f);
        else launch_shell_quote(f, a->v[i]);
    }
    fputc('\n', f);
}

int launch_mkdirs(const char *path, char *err, size_t errlen) {
    char buf[LAUNCH_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "path too long: %.64s...", path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            char to[LAUNCH_PATH_MAX];
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            if (shard_dangling_link(buf, to, sizeof to)) { /* mkdir's EEXIST: it is there, pointing nowhere */
                snprintf(err, errlen, "%s is a symbolic link to %s, which does not exist", buf, to);
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    return 0;
}

int launch_dir_creatable(const char *what, const char *dir, char *err, size_t errlen) {
    char p[LAUNCH_PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return launch_errf(err, errlen, "%s %s: %s is not a directory", what, dir, p);
            if (strcmp(p, dir) && access(p, W_OK | X_OK) != 0)
                return launch_errf(err, errlen, "%s %s: cannot create it in %s: %s", what, dir, p, strerror(errno));
            return 0;
        }
        char to[LAUNCH_PATH_MAX];
        if (shard_dangling_link(p, to, sizeof to)) /* mkdir -p would meet it as there, and fail */
            return launch_errf(err, errlen, "%s %s: %s is a symbolic link to %s, which does not exist", what, dir, p, to);
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) return 0; /* relative: the current directory's; or under / */
        *slash = '\0';
    }
}

int launch_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen) {
    char tmp[LAUNCH_PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (fd < 0 || done < len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0) unlink(tmp);
        return -1;
    }
    return 0;
}

int launch_errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void launch_set_state(const char *run_dir, const char *fmt, ...) {
    char path[LAUNCH_PATH_MAX + 16], line[512], err[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    snprintf(path, sizeof path, "%s/state", run_dir);
    if (launch_write_file(path, line, (size_t)n, err, sizeof err)) fprintf(stderr, "jepa-launch: %s\n", err);
}

void launch_log(const char *run_dir, const char *fmt, ...) {
    char path[LAUNCH_PATH_MAX + 16], stamp[32];
    snprintf(path, sizeof path, "%s/launch.log", run_dir);
    FILE *f = fopen(path, "a");
    if (!f) return;
    time_t t = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
    fprintf(f, "%s ", stamp);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

int launch_spawn_wait(char *const *argv, const char *out_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void launch_fmt_double(double v, char *out, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* ---- a JSON syntax check: summary.json must be whole ---- */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_str(const char *p) {
    if (*p++ != '"') return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL; /* NUL (the end) included */
        if (*p != '\\') continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i])) return NULL;
            p += 4;
        } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
            return NULL;
        }
    }
    return p + 1;
}

/* a JSON number, or nan/inf as printf writes a non-finite double */
static const char *json_num(const char *p) {
    if (*p == '-') p++;
    if (!strncmp(p, "nan", 3) || !strncmp(p, "inf", 3)) return p + 3;
    if (*p < '0' || *p > '9') return NULL;
    if (*p == '0') p++;
    else while (*p >= '0' && *p <= '9') p++;
    if (*p == '.') {
        if (*++p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        if (*++p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

/* an object or array after its opening bracket, through its closing one */
static const char *json_items(const char *p, char close, int depth) {
    p = json_ws(p);
    if (*p == close) return p + 1;
    for (;;) {
        if (close == '}') {
            if (!(p = json_str(p))) return NULL;
            p = json_ws(p);
            if (*p++ != ':') return NULL;
        }
        if (!(p = json_value(json_ws(p), depth + 1))) return NULL;
        p = json_ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
        p = json_ws(p);
    }
}

static const char *json_value(const char *p, int depth) {
    if (depth > 64) return NULL;
    if (*p == '{' || *p == '[') return json_items(p + 1, *p == '{' ? '}' : ']', depth);
    if (*p == '"') return json_str(p);
    for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1)
        if (!strncmp(p, w, strlen(w))) return p + strlen(w);
    return json_num(p);
}

int launch_json_object(const char *text) {
    const char *p = json_ws(text);
    if (*p != '{' || !(p = json_value(p, 0))) return -1;
    return *json_ws(p) ? -1 : 0;
}

/* ---- members of a flat JSON object (summary.json, a metrics.jsonl line) ---- */

/* Where the value of text's member key starts (past the colon and
 * blanks), NULL when there is none; *count: how many members are named
 * key. Our files are flat objects, and in valid JSON a quote followed by
 * key, a quote and a colon opens a member name (a closing quote is
 * followed by a comma, colon, brace or bracket). */
static const char *json_member(const char *text, const char *key, int *count) {
    size_t kl = strlen(key);
    const char *first = NULL;
    *count = 0;
    for (const char *p = text; (p = strchr(p, '"')); p++) {
        if (strncmp(p + 1, key, kl) != 0 || p[1 + kl] != '"') continue;
        const char *q = json_ws(p + 2 + kl);
        if (*q != ':') continue;
        if ((*count)++ == 0) first = json_ws(q + 1);
    }
    return first;
}

int launch_json_number(const char *text, const char *key, double *v) {
    int count;
    const char *q = json_member(text, key, &count);
    if (!q) return LAUNCH_JSON_NONE;
    if (count > 1) return LAUNCH_JSON_TWICE; /* which one would be the figure? */
    if (!json_num(q)) return LAUNCH_JSON_NONE; /* null, a string */
    double x = strtod(q, NULL);
    const char *digits = q + (*q == '-');
    if (isinf(x) && strncmp(digits, "inf", 3)) return LAUNCH_JSON_RANGE; /* 1e400: no writer's number */
    *v = x;
    return 0;
}

int launch_json_string(const char *text, const char *key, char *out, size_t n) {
    int count;
    const char *q = json_member(text, key, &count);
    if (!q) return LAUNCH_JSON_NONE;
    if (count > 1) return LAUNCH_JSON_TWICE;
    const char *end = json_str(q);
    if (!end) return LAUNCH_JSON_NONE;
    snprintf(out, n, "%.*s", (int)(end - q - 2), q + 1); /* escapes as they are: our values hold none */
    return 0;
}
