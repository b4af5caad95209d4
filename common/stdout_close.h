/* stdout_close.h - every program's last word on its standard output: the
 * figures a program prints are its result, so a write to stdout that failed
 * (a full disk, /dev/full, a closed pipe) must fail the program instead of
 * exiting 0 with the figures lost. Like gnulib's close_stdout, but called
 * from main's return (not atexit), so it sees the exit status and never runs
 * in a forked child. Plain C11 + POSIX: shard/, world/, launch/, comm/'s
 * bench and the trainer all link it without depending on one another. */
#ifndef JEPA_STDOUT_CLOSE_H
#define JEPA_STDOUT_CLOSE_H

/* Flushes and closes stdout. If a write to it failed (now or earlier),
 * prints "PROG: write error on stdout: REASON" (REASON left off when no
 * longer known) as one line on stderr and returns 1, or status when status
 * is already non-zero; else returns status. stdout closed before the program
 * started (>&-) with nothing written is no error. Call once, as
 * `return stdout_close(PROG, rc);` at the end of main, after MPI_Finalize
 * (ranks other than 0 write to /dev/null, which never fails). */
int stdout_close(const char *prog, int status);

/* fflush(stdout) for a program that flushes mid-run (a line before a fork,
 * figures before stderr's last words): 0, or EOF after remembering the
 * first failure's errno, which stdout_close then names (a failed flush
 * empties the buffer, so at exit the reason would be gone). */
int stdout_flush(void);

#endif
