/* stdout_close.c - a failed write to stdout fails the program (stdout_close.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stdout_close.h"

int stdout_close(const char *prog, int status) {
    int failed = ferror(stdout), reason = 0; /* an earlier write failed: its errno is gone */
    errno = 0;
    if (fflush(stdout) != 0) failed = 1, reason = errno; /* the buffered figures did not go */
    errno = 0;
    /* EBADF with nothing left to write: stdout was closed from the start (>&-) */
    if (fclose(stdout) != 0 && (failed || errno != EBADF)) {
        failed = 1;
        if (!reason) reason = errno;
    }
    if (!failed) return status;
    if (reason)
        fprintf(stderr, "%s: write error on stdout: %s\n", prog, strerror(reason));
    else
        fprintf(stderr, "%s: write error on stdout\n", prog);
    return status ? status : 1;
}
