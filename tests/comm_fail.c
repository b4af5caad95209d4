/* comm_fail.c - helper for tests/e2e/comm_fail.sh: a few all-reduce "steps",
 * then one rank fails while the others sit in a collective.
 *   comm-fail fatal      rank 1 calls comm_fatal at step 2 (rank 0 waits in
 *                        MPI_Allreduce): the job must end promptly, non-zero
 *   comm-fail any-error  rank 1 reports a local failure; all ranks agree via
 *                        comm_any_error and exit 1 together
 *   comm-fail ok         no failure: exits 0 (the control case) */
#include "comm.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    const char *mode = argc > 1 ? argv[1] : "ok";
    int r = comm_rank(), w = comm_world();
    if (strcmp(mode, "any-error") == 0) {
        int bad = comm_any_error(r == 1); /* e.g. rank 1's data path is missing */
        if (bad >= 0) {
            if (r == 0) fprintf(stderr, "jepa: rank %d failed during setup; stopping\n", bad);
            comm_finalize();
            return 1;
        }
    }
    float buf[1024];
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 1024; i++) buf[i] = (float)(r + step);
        if (step == 2 && r == 1 && strcmp(mode, "fatal") == 0) {
            struct timespec ts = {0, 200 * 1000 * 1000}; /* let rank 0 block first */
            nanosleep(&ts, NULL);
            comm_fatal("bad data path %s", "/x");
        }
        if (w > 1) MPI_Allreduce(MPI_IN_PLACE, buf, 1024, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (r == 0) printf("step %d sum %g\n", step, (double)buf[0]);
    }
    comm_finalize();
    return 0;
}
