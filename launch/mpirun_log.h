/* mpirun_log.h - what Open MPI's mpirun said of the rank that ended a job,
 * read back from the job's output file (a sweep point's RUN/train.log):
 * the rank a signal killed, or the first rank that exited with a non-zero
 * status. run.c puts it in RUN/state when the trainer left no line of its
 * own (RUN/error). The words matched are Open MPI 4.1's (help-orterun.txt:
 * orterun:proc-aborted-signal, orterun:non-zero-exit); any other text
 * reads as nothing said. */
#ifndef JEPA_MPIRUN_LOG_H
#define JEPA_MPIRUN_LOG_H

#include <stddef.h>
#include <sys/types.h>

/* mpirun writes its words as it ends: only a file's last MPIRUN_LOG_TAIL
 * bytes are read */
#define MPIRUN_LOG_TAIL 16384
#define MPIRUN_NODE_MAX 64

typedef enum {
    MPIRUN_END_NONE,   /* no words of mpirun's about a rank */
    MPIRUN_END_SIGNAL, /* "mpirun noticed that process rank R with PID P on node H exited on signal S" */
    MPIRUN_END_EXIT,   /* "... exited with non-zero status ... Process name: [[J,1],R] Exit code: C" */
} mpirun_end_kind;

typedef struct {
    mpirun_end_kind kind;
    int rank;
    int sig;                    /* MPIRUN_END_SIGNAL: the signal */
    int code;                   /* MPIRUN_END_EXIT: the exit status, 1..255 */
    char node[MPIRUN_NODE_MAX]; /* MPIRUN_END_SIGNAL: the node ("" for an exit: Open MPI names none) */
} mpirun_end;

/* What text[0, len) says of the rank that ended the job, into *r (text
 * may hold NUL bytes; text[len] must be one: numbers are read as from a C
 * string): the last signal message if there is one (it names the
 * node), else the last non-zero exit message; cut or garbled words count
 * as none. r->kind, MPIRUN_END_NONE when nothing is said. */
mpirun_end_kind mpirun_log_parse(const char *text, size_t len, mpirun_end *r);

/* The same for the file at path from byte `from` on (the part one attempt
 * appended; earlier attempts' words before it are never read), of which
 * the last MPIRUN_LOG_TAIL bytes; a file missing, not regular, or no
 * longer than from says nothing. */
mpirun_end_kind mpirun_log_read(const char *path, off_t from, mpirun_end *r);

#endif
