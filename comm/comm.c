/* comm.c - MPI process group, broadcast, fail-fast errors, bucketed gradient
 * all-reduce and replica hashing. See comm.h for contracts and docs/comm.md
 * for the design (why buckets run from the end, why ready() tests requests). */
#include "comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Largest element count handed to one MPI call (counts are int). */
#define COMM_CHUNK ((size_t)INT_MAX)

static int g_rank = 0;
static int g_world = 1;
static int g_inited = 0;    /* comm_init ran */
static int g_we_init = 0;   /* ... and it was the one that called MPI_Init */

static int mpi_active(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

void comm_init(int *argc, char ***argv) {
    if (g_inited) return;
    if (!mpi_active()) {
        int provided = MPI_THREAD_SINGLE;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            fprintf(stderr, "jepa: MPI_Init_thread failed\n");
            exit(1);
        }
        g_we_init = 1;
        if (provided < MPI_THREAD_FUNNELED) {
            MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
            MPI_Comm_size(MPI_COMM_WORLD, &g_world);
            comm_fatal("MPI gives thread level %d, need MPI_THREAD_FUNNELED", provided);
        }
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    g_inited = 1;
}

void comm_finalize(void) {
    if (g_we_init && mpi_active()) MPI_Finalize();
    g_inited = 0;
    g_we_init = 0;
    g_rank = 0;
    g_world = 1;
}

int comm_rank(void) { return g_rank; }
int comm_world(void) { return g_world; }

double comm_time(void) {
    if (g_inited) return MPI_Wtime();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void comm_barrier(void) {
    if (g_world > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void comm_bcast_floats(float *p, size_t n, int root) {
    if (g_world <= 1) return;
    for (size_t off = 0; off < n; off += COMM_CHUNK) {
        size_t c = n - off < COMM_CHUNK ? n - off : COMM_CHUNK;
        MPI_Bcast(p + off, (int)c, MPI_FLOAT, root, MPI_COMM_WORLD);
    }
}

void comm_bcast_bytes(void *p, size_t n, int root) {
    if (g_world <= 1) return;
    if (n > (size_t)INT_MAX) comm_fatal("comm_bcast_bytes: %zu bytes is more than one call carries", n);
    MPI_Bcast(p, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
}

static void nap(long *ns, long max_ns) { /* sleeps *ns (<= max_ns), then doubles it */
    struct timespec ts = {0, *ns < max_ns ? *ns : max_ns};
    nanosleep(&ts, NULL);
    if (*ns < max_ns) *ns *= 2;
}

/* MPI_Wait/Recv/Barrier busy-poll, and the ranks that wait here wait while
 * another one works alone (rank 0's probe, rank 1's scoring): test the
 * request and sleep between tests (10 us, doubling up to max_ns) so the
 * waiter leaves the cores free. Only for waits on an event, never while
 * data moves: a transfer in fragments (no single-copy mechanism, TCP)
 * progresses only inside MPI calls, so sleeps would stall it. */
static void wait_gently(MPI_Request *req, MPI_Status *st, long max_ns) {
    int done = 0;
    for (long ns = 10 * 1000;; nap(&ns, max_ns)) {
        MPI_Test(req, &done, st);
        if (done) return;
    }
}

#define TAG_DATA 0
#define TAG_READY 1 /* comm_recv_bytes to its sender: posted, send at full speed */

/* The transfer itself runs in blocking MPI_Send/MPI_Recv once both sides
 * are there: the receiver says so first (a 1-byte eager message), the
 * sender waits for that gently, the receiver waits gently for the data's
 * first fragment (MPI_Iprobe), then both move it at the library's speed. */
void comm_send_bytes(const void *p, size_t n, int dest) {
    if (g_world <= 1) comm_fatal("comm_send_bytes: no other rank to send %zu bytes to", n);
    char tok;
    MPI_Request req;
    MPI_Irecv(&tok, 1, MPI_BYTE, dest, TAG_READY, MPI_COMM_WORLD, &req);
    wait_gently(&req, MPI_STATUS_IGNORE, 1000 * 1000);
    for (size_t off = 0; off < n; off += COMM_CHUNK) {
        size_t c = n - off < COMM_CHUNK ? n - off : COMM_CHUNK;
        MPI_Send((const char *)p + off, (int)c, MPI_BYTE, dest, TAG_DATA, MPI_COMM_WORLD);
    }
}

void comm_recv_bytes(void *p, size_t n, int src) {
    if (g_world <= 1) comm_fatal("comm_recv_bytes: no other rank to receive %zu bytes from", n);
    char tok = 1;
    MPI_Send(&tok, 1, MPI_BYTE, src, TAG_READY, MPI_COMM_WORLD); /* eager: returns at once */
    int there = 0;
    for (long ns = 10 * 1000;; nap(&ns, 1000 * 1000)) {
        MPI_Iprobe(src, TAG_DATA, MPI_COMM_WORLD, &there, MPI_STATUS_IGNORE);
        if (there) break;
    }
    for (size_t off = 0; off < n; off += COMM_CHUNK) {
        size_t c = n - off < COMM_CHUNK ? n - off : COMM_CHUNK;
        MPI_Status st;
        MPI_Recv((char *)p + off, (int)c, MPI_BYTE, src, TAG_DATA, MPI_COMM_WORLD, &st);
        int got = 0;
        MPI_Get_count(&st, MPI_BYTE, &got);
        if ((size_t)got != c) /* the sender's sizes differ from ours: a bug, never data */
            comm_fatal("comm_recv_bytes: %d bytes from rank %d where %zu were expected", got, src, c);
    }
}

double comm_mean_double(double v) {
    if (g_world <= 1) return v;
    double sum = 0.0;
    MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sum / g_world;
}

void comm_sum_doubles(double *p, size_t n) {
    if (g_world <= 1) return;
    for (size_t off = 0; off < n; off += COMM_CHUNK) {
        size_t c = n - off < COMM_CHUNK ? n - off : COMM_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, p + off, (int)c, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

void comm_wait_idle(void) {
    if (g_world <= 1) return;
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait_gently(&req, MPI_STATUS_IGNORE, 20 * 1000 * 1000);
}

/* ---- errors ------------------------------------------------------------- */

void comm_fatal(const char *fmt, ...) {
    char line[1024];
    int k = snprintf(line, sizeof line, "jepa: rank %d: ", g_rank);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    /* Keep it one line even if the message carried newlines, then add ours. */
    size_t len = strlen(line);
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n') line[i] = ' ';
    line[len++] = '\n';
    /* One write(2) so ranks' lines never interleave mid-line. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
    if (g_world > 1 && mpi_active()) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

int comm_any_error(int local_failed) {
    int mine = local_failed ? g_rank : INT_MAX;
    int lowest = mine;
    if (g_world > 1) MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return lowest == INT_MAX ? -1 : lowest;
}

/* ---- bucketed all-reduce ------------------------------------------------ */

/* Bucket i covers [bucket_lo(i), bucket_hi(i)), counted from the end. */
static size_t bucket_hi(const comm_buckets *b, int i) {
    return b->n - (size_t)i * b->bucket_floats;
}
static size_t bucket_lo(const comm_buckets *b, int i) {
    size_t hi = bucket_hi(b, i);
    return hi > b->bucket_floats ? hi - b->bucket_floats : 0;
}

int comm_buckets_init(comm_buckets *b, float *grads, size_t n, size_t bucket_bytes,
                      int blocking) {
    memset(b, 0, sizeof *b);
    if (bucket_bytes < sizeof(float)) return -1;
    size_t bf = bucket_bytes / sizeof(float);
    if (bf > COMM_CHUNK) bf = COMM_CHUNK;
    b->grads = grads;
    b->n = n;
    b->bucket_floats = bf;
    b->blocking = blocking ? 1 : 0;
    b->world = g_world;
    size_t nb = n == 0 ? 0 : (n + bf - 1) / bf;
    if (nb > (size_t)INT_MAX) comm_fatal("comm: %zu buckets is too many", nb);
    b->nbuckets = (int)nb;
    b->stats.nbuckets = b->blocking ? (n > 0) : b->nbuckets;
    if (b->world > 1 && !b->blocking && nb > 0) {
        MPI_Request *r = malloc(nb * sizeof *r);
        if (!r) comm_fatal("comm: out of memory for %zu MPI requests", nb);
        for (size_t i = 0; i < nb; i++) r[i] = MPI_REQUEST_NULL;
        b->reqs = r;
    }
    return 0;
}

void comm_buckets_ready(comm_buckets *b, size_t lo) {
    if (b->world <= 1 || b->blocking || b->nbuckets == 0) return;
    double t0 = MPI_Wtime();
    MPI_Request *r = b->reqs;
    while (b->next < b->nbuckets && bucket_lo(b, b->next) >= lo) {
        int i = b->next++;
        size_t l = bucket_lo(b, i);
        MPI_Iallreduce(MPI_IN_PLACE, b->grads + l, (int)(bucket_hi(b, i) - l), MPI_FLOAT,
                       MPI_SUM, MPI_COMM_WORLD, &r[i]);
    }
    /* Progress: Open MPI moves non-blocking collectives forward only inside
     * MPI calls; completed requests become MPI_REQUEST_NULL and cost little. */
    if (b->next > 0) {
        int flag = 0;
        MPI_Testall(b->next, r, &flag, MPI_STATUSES_IGNORE);
    }
    b->stats.ready_s += MPI_Wtime() - t0;
}

/* Same operation, same operands, same order on every rank: the summed buffer
 * is identical everywhere, so the average is too. Division (not multiply by
 * 1/world) keeps exactly divisible sums exact, e.g. 3 ranks. */
static void scale_average(float *g, size_t n, int world) {
    const float w = (float)world;
    for (size_t i = 0; i < n; i++) g[i] /= w;
}

void comm_buckets_finish(comm_buckets *b) {
    if (b->world <= 1 || b->n == 0) return;
    double t0 = MPI_Wtime();
    if (b->blocking) {
        for (size_t off = 0; off < b->n; off += COMM_CHUNK) {
            size_t c = b->n - off < COMM_CHUNK ? b->n - off : COMM_CHUNK;
            MPI_Allreduce(MPI_IN_PLACE, b->grads + off, (int)c, MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD);
        }
    } else {
        comm_buckets_ready(b, 0);
        t0 = MPI_Wtime(); /* issuing the tail is ready()'s cost, not waiting */
        MPI_Waitall(b->nbuckets, b->reqs, MPI_STATUSES_IGNORE);
        b->next = 0;
    }
    double dt = MPI_Wtime() - t0;
    scale_average(b->grads, b->n, b->world);
    b->stats.wait_s += dt;
    b->stats.last_wait_s = dt;
    b->stats.bytes += (uint64_t)b->n * sizeof(float);
    b->stats.steps++;
}

void comm_buckets_stats(const comm_buckets *b, comm_stats *out) { *out = b->stats; }

void comm_buckets_free(comm_buckets *b) {
    free(b->reqs);
    memset(b, 0, sizeof *b);
}

/* ---- replica check ------------------------------------------------------ */

uint64_t comm_hash_floats(const float *p, size_t n) {
    const unsigned char *c = (const unsigned char *)p;
    size_t len = n * sizeof(float);
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL; /* FNV 64 prime */
    }
    return h;
}

int comm_check_replicas(const float *p, size_t n, char *err, size_t errlen) {
    if (g_world <= 1) return 0;
    uint64_t mine = comm_hash_floats(p, n);
    uint64_t *all = malloc((size_t)g_world * sizeof *all);
    if (!all) comm_fatal("comm: out of memory for %d hashes", g_world);
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int bad = 0;
    size_t k = 0;
    for (int r = 1; r < g_world; r++) {
        if (all[r] == all[0]) continue;
        if (err && errlen > 0) {
            if (bad == 0)
                k += (size_t)snprintf(err + k, errlen - k,
                                      "replicas diverge from rank 0 (0x%016llx):",
                                      (unsigned long long)all[0]);
            if (k < errlen)
                k += (size_t)snprintf(err + k, errlen - k, " rank %d 0x%016llx", r,
                                      (unsigned long long)all[r]);
        }
        bad++;
    }
    free(all);
    return bad ? -1 : 0;
}

/* ---- gather ------------------------------------------------------------- */

void comm_gather_floats(const float *mine, size_t n_mine, float *all, const size_t *counts,
                        int root) {
    if (g_world <= 1) {
        if (n_mine && mine != all) memmove(all, mine, n_mine * sizeof *all);
        return;
    }
    if (n_mine > COMM_CHUNK) comm_fatal("comm_gather_floats: %zu floats from one rank", n_mine);
    int *rc = NULL, *displ = NULL;
    const void *send = mine;
    if (g_rank == root) {
        if (!counts || counts[root] != n_mine)
            comm_fatal("comm_gather_floats: root's count %zu does not match counts[%d]", n_mine,
                       root);
        rc = malloc(2 * (size_t)g_world * sizeof *rc);
        if (!rc) comm_fatal("comm: out of memory for %d gather counts", g_world);
        displ = rc + g_world;
        size_t off = 0;
        for (int r = 0; r < g_world; r++) {
            if (counts[r] > COMM_CHUNK || off > COMM_CHUNK)
                comm_fatal("comm_gather_floats: rank %d's %zu floats at offset %zu pass INT_MAX",
                           r, counts[r], off);
            rc[r] = (int)counts[r];
            displ[r] = (int)off;
            off += counts[r];
        }
        if (n_mine && mine == all + displ[root]) send = MPI_IN_PLACE;
    }
    MPI_Gatherv(send, (int)n_mine, MPI_FLOAT, all, rc, displ, MPI_FLOAT, root, MPI_COMM_WORLD);
    free(rc);
}
