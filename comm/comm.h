/* comm.h - the MPI layer of jepa-mpi: start/stop, broadcast, fail-fast errors,
 * a bucketed gradient all-reduce that overlaps with backward, and a replica
 * check. Float buffers in, float buffers out: nothing here knows the model.
 *
 * Threading: MPI is initialised with MPI_THREAD_FUNNELED, so every function
 * here must be called from the thread that called comm_init (the trainer's
 * main thread; OpenMP workers and the reader thread never call comm_).
 *
 * Without comm_init (or with world size 1) every collective is a no-op, so
 * single-process code and tests can call these functions unconditionally. */
#ifndef JEPA_COMM_H
#define JEPA_COMM_H

#include <stddef.h>
#include <stdint.h>

/* ---- process group ---------------------------------------------------- */

/* Initialises MPI (MPI_Init_thread, FUNNELED) and caches rank and world size.
 * Works as a singleton (no mpirun: world 1) and under mpirun/srun. Fails fast
 * (comm_fatal) if the library cannot give FUNNELED. Calling it twice is a
 * no-op. argc/argv may be NULL. */
void comm_init(int *argc, char ***argv);

/* Finalizes MPI if comm_init initialised it. Call once, from main, after the
 * last collective; every rank must call it. */
void comm_finalize(void);

/* This process's rank in MPI_COMM_WORLD (0 before comm_init). */
int comm_rank(void);

/* Number of ranks in MPI_COMM_WORLD (1 before comm_init). */
int comm_world(void);

/* Wall-clock seconds (MPI_Wtime after init, CLOCK_MONOTONIC before). */
double comm_time(void);

/* Blocks until every rank has reached it. */
void comm_barrier(void);
/* A barrier that sleeps between polls (20 ms): for ranks that wait while
 * rank 0 works alone (the probe), so they do not spin on its cores. */
void comm_wait_idle(void);
/* Broadcast n bytes (n <= INT_MAX) from root. */
void comm_bcast_bytes(void *p, size_t n, int root);
/* Point to point, in order: rank dest's comm_recv_bytes(q, n, src) gets
 * p[0..n) of the matching comm_send_bytes(p, n, dest) (tag 0, any n:
 * chunked). Both sides must agree on n; a short message is fatal on the
 * receiver. Fatal at world size 1. Used to hand rank 0's evaluation
 * features to the rank that scores part of them. Neither side spins while
 * the other is busy: the receiver tells the sender it is there (tag 1),
 * each waits for the other with sleeps (up to 1 ms) between MPI tests,
 * and the data then moves in blocking MPI_Send/MPI_Recv at full speed. */
void comm_send_bytes(const void *p, size_t n, int dest);
void comm_recv_bytes(void *p, size_t n, int src);
/* The mean over ranks of one double (the logged loss, stop decisions). */
double comm_mean_double(double v);
/* In place: p[0..n) becomes the element-wise SUM over ranks of p[0..n)
 * (MPI_Allreduce SUM, MPI_COMM_WORLD), identical on every rank. For small
 * double statistics that are sums over samples, e.g. SIGReg's characteristic
 * function sums (trainer/sigreg.h). Chunked so any n works. No-op with world
 * size 1 or before comm_init. Collective: every rank calls it with the same n. */
void comm_sum_doubles(double *p, size_t n);

/* ---- broadcast ---------------------------------------------------------- */

/* Overwrites p[0..n) on every rank with root's p[0..n). Chunked so that any
 * n (also > INT_MAX) works. Used once at start so parameters (and any state
 * derived from a seed) begin identical on every rank. */
void comm_bcast_floats(float *p, size_t n, int root);

/* ---- errors ------------------------------------------------------------- */

/* Prints "jepa: rank R: <message>" as ONE line (one write(2)) to stderr, then
 * ends the whole job: MPI_Abort(MPI_COMM_WORLD, 1) when world > 1, so ranks
 * blocked in a collective are killed too and nothing hangs; exit(1)
 * otherwise. Never returns. Open MPI adds its own multi-line MPI_ABORT note. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
void comm_fatal(const char *fmt, ...);

/* Collective: every rank passes whether it failed locally (non-zero = failed)
 * and every rank gets back the lowest failing rank, or -1 if none failed. For
 * errors found before the step loop (a bad data path on one rank only): each
 * rank checks, then all agree at this sync point and exit together. */
int comm_any_error(int local_failed);

/* ---- bucketed gradient all-reduce ---------------------------------------- */

/* Timing and volume, cumulative since comm_buckets_init. */
typedef struct {
    double wait_s;      /* seconds blocked in comm_buckets_finish: communication
                           not hidden behind compute */
    double last_wait_s; /* the same, for the last finish() only */
    double ready_s;     /* seconds spent inside comm_buckets_ready (issue + test) */
    uint64_t bytes;     /* gradient bytes all-reduced (n * 4 per finish) */
    uint64_t steps;     /* finish() calls that communicated */
    int nbuckets;       /* buckets per step (1 for the blocking path) */
} comm_stats;

/* One gradient buffer grads[0..n) cut into buckets of bucket_floats floats,
 * counted from the END of the buffer: bucket 0 is [n - bf, n), bucket 1 the
 * range before it, ..., the last bucket starts at 0 and may be shorter.
 * Backward produces final gradients in decreasing offset order, so buckets
 * become ready, and are issued, in index order. Fields are private. */
typedef struct {
    float *grads;         /* (n) not owned; the caller's one gradient buffer */
    size_t n;
    size_t bucket_floats; /* <= INT_MAX, so one MPI call per bucket */
    int nbuckets;
    int blocking;         /* 1: one MPI_Allreduce in finish(), ready() no-op */
    int world;
    int next;             /* first bucket not yet issued this step */
    void *reqs;           /* MPI_Request[nbuckets]; void * keeps mpi.h private */
    comm_stats stats;
} comm_buckets;

/* Prepares b for grads[0..n) with buckets of bucket_bytes (rounded down to
 * whole floats, at least 1, at most INT_MAX floats). blocking=1 selects the
 * simple path: finish() does one blocking all-reduce of the whole buffer.
 * grads must stay valid (and not move) until comm_buckets_free. Allocation
 * failure is fatal. With world == 1 nothing is allocated and nothing is
 * communicated. Returns 0, or -1 if bucket_bytes < sizeof(float). */
int comm_buckets_init(comm_buckets *b, float *grads, size_t n, size_t bucket_bytes,
                      int blocking);

/* Backward hook: grads[lo, n) are final. Issues MPI_Iallreduce (in place,
 * SUM) for every not-yet-issued bucket lying entirely inside [lo, n), then
 * MPI_Testall on the in-flight requests to drive progress (Open MPI has no
 * progress thread by default). lo must not increase within a step; calling
 * it again with the same lo only tests. Do not touch grads[lo, n) until
 * finish() returns. No-op on the blocking path and with world 1. */
void comm_buckets_ready(comm_buckets *b, size_t lo);

/* Ends the step: issues any bucket not yet issued, waits for all of them, and
 * divides every gradient by world, so grads holds the average over ranks,
 * bitwise identical on every rank. Blocking path: one MPI_Allreduce (chunked
 * past INT_MAX elements), then the same division. Records wait time/bytes.
 * No-op with world 1. Resets the step so the next backward can begin. */
void comm_buckets_finish(comm_buckets *b);

/* Copies the cumulative statistics into *out. */
void comm_buckets_stats(const comm_buckets *b, comm_stats *out);

/* Releases what comm_buckets_init allocated (not grads). Must not be called
 * between ready() and finish() (requests would be left in flight). */
void comm_buckets_free(comm_buckets *b);

/* ---- replica check ------------------------------------------------------ */

/* FNV-1a 64-bit hash of the n*4 bytes of p (byte order as in memory). */
uint64_t comm_hash_floats(const float *p, size_t n);

/* Collective: hashes p[0..n) on every rank, gathers all hashes, and compares
 * them with rank 0's. Returns 0 if all are identical; otherwise -1 (on every
 * rank) with err naming the diverging ranks and their hashes, e.g.
 * "replicas diverge from rank 0 (0x...): rank 2 0x...". err may be NULL. */
int comm_check_replicas(const float *p, size_t n, char *err, size_t errlen);

/* ---- gather ------------------------------------------------------------- */

/* Collective: rank r sends mine[0..n_mine) and root receives every rank's
 * floats, concatenated in rank order, into all (sum of counts): rank r's
 * land at all + counts[0] + ... + counts[r-1]. counts (world) is read on
 * root only (may be NULL elsewhere; root checks counts[root] == n_mine);
 * all is ignored elsewhere (may be NULL). When root's mine already points
 * at its place in all, nothing of root's own is copied (MPI_IN_PLACE). A
 * count or offset past INT_MAX floats is fatal (MPI counts are int). World
 * 1: copies mine to all unless they are the same memory. Used to gather
 * evaluation features computed in slices (eval_extract). */
void comm_gather_floats(const float *mine, size_t n_mine, float *all, const size_t *counts,
                        int root);

#endif
