/* mpirun_log.c - Open MPI's words on the rank that ended a job, found in
 * the tail of the job's output (mpirun_log.h). Plain string matching on
 * the help text mpirun prints; nothing here trusts a number it did not
 * bound. */
#define _GNU_SOURCE /* memmem */
#include "mpirun_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the last place in text[0, len) where word starts, NULL when none */
static const char *last_of(const char *text, size_t len, const char *word) {
    const char *last = NULL, *end = text + len;
    size_t k = strlen(word);
    for (const char *p = text; (p = memmem(p, (size_t)(end - p), word, k)); p++) last = p;
    return last;
}

/* orterun:proc-aborted-signal: "mpirun noticed that process rank R with
 * PID P on node H exited on signal S." or "... signal S (NAME)." */
static int parse_signal(const char *text, size_t len, mpirun_end *r) {
    static const char said[] = "mpirun noticed that process rank ";
    const char *p = last_of(text, len, said);
    char host[MPIRUN_NODE_MAX];
    _Static_assert(MPIRUN_NODE_MAX == 64, "the %63s below");
    int rank, sig;
    if (!p || sscanf(p + sizeof said - 1, "%d with PID %*d on node %63s exited on signal %d", &rank, host,
                     &sig) != 3 || rank < 0 || sig <= 0)
        return -1;
    *r = (mpirun_end){.kind = MPIRUN_END_SIGNAL, .rank = rank, .sig = sig};
    snprintf(r->node, sizeof r->node, "%s", host);
    return 0;
}

/* orterun:non-zero-exit, its lines broken where Open MPI breaks them (any
 * whitespace in the format matches them): "mpirun detected that one or
 * more processes exited with non-zero status, thus causing\nthe job to be
 * terminated. The first process to do so was:\n\n  Process name:
 * [[J,1],R]\n  Exit code:    C"; R is the rank (the process's vpid) */
static int parse_exit(const char *text, size_t len, mpirun_end *r) {
    static const char said[] = "exited with non-zero status";
    const char *p = last_of(text, len, said);
    int rank, code;
    if (!p || sscanf(p + sizeof said - 1, ", thus causing the job to be terminated. The first process to do so "
                                          "was: Process name: [[%*u,%*u],%d] Exit code: %d", &rank, &code) != 2 ||
        rank < 0 || code < 1 || code > 255)
        return -1;
    *r = (mpirun_end){.kind = MPIRUN_END_EXIT, .rank = rank, .code = code};
    return 0;
}

mpirun_end_kind mpirun_log_parse(const char *text, size_t len, mpirun_end *r) {
    *r = (mpirun_end){.kind = MPIRUN_END_NONE};
    if (parse_signal(text, len, r) != 0) parse_exit(text, len, r);
    return r->kind;
}

mpirun_end_kind mpirun_log_read(const char *path, off_t from, mpirun_end *r) {
    char buf[MPIRUN_LOG_TAIL + 1];
    struct stat st;
    *r = (mpirun_end){.kind = MPIRUN_END_NONE};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO: never waited on */
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= from || from < 0) {
        if (fd >= 0) close(fd);
        return MPIRUN_END_NONE;
    }
    off_t at = st.st_size - from > MPIRUN_LOG_TAIL ? st.st_size - MPIRUN_LOG_TAIL : from;
    ssize_t k = pread(fd, buf, MPIRUN_LOG_TAIL, at);
    close(fd);
    if (k <= 0) return MPIRUN_END_NONE;
    buf[k] = 0; /* sscanf stops here */
    return mpirun_log_parse(buf, (size_t)k, r);
}
