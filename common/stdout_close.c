/* stdout_close.c - a failed write to stdout fails the program (stdout_close.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stdout_close.h"

static int first_errno; /* why stdout_flush first failed, 0: it did not */

int stdout_flush(void) {
    errno = 0;
    if (fflush(stdout) == 0) return 0;
    if (!first_errno) first_errno = errno;
    return EOF;
}

int stdout_close(const char *prog, int status) {
    /* an earlier write failed: its errno is gone unless stdout_flush kept it */
    int failed = ferror(stdout), reason = failed ? first_errno : 0;
    errno = 0;
    if (fflush(stdout) != 0) failed = 1, reason = reason ? reason : errno; /* the buffered figures did not go */
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
