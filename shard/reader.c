/* reader.c - the training reader: per-epoch disjoint rank partitions, a
 * bounded shuffle buffer, resumable positions and a background decoding
 * thread (contract in shard.h).
 *
 * Determinism comes from separating WHICH record is emitted from its BYTES.
 * The shuffle is driven by stream positions only; bytes follow positions. So
 * resuming at (epoch, batch) replays the buffer's random choices over bare
 * positions (no decoding), then decodes just the records the buffer holds at
 * that point, and continues exactly as an uninterrupted reader would. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shard_internal.h"

/* checkpoints store the state verbatim: its layout is part of the format */
_Static_assert(sizeof(shard_reader_state) == 56, "shard_reader_state is 56 bytes");

/* distinct RNG stream tags */
enum { TAG_SHARDS = 0x5348, TAG_FRAMES = 0x4652, TAG_BUFFER = 0x4255 };

typedef struct {
    uint32_t shard, frame, records;
    uint64_t start; /* first position of this frame in the epoch's global stream */
} plan_frame;

/* One epoch of this rank: the global frame order and the shuffle buffer. */
typedef struct {
    int active;
    uint64_t epoch;
    plan_frame *plan;   /* (nplan) every frame of the dataset, in epoch order */
    uint32_t nplan, hint;
    uint64_t next_in;   /* next position of the rank's range to enter the buffer */
    uint64_t count;     /* records in the buffer */
    uint64_t *slot_pos; /* (K) position of each slot's record */
    uint8_t *slot_data; /* (K, slot_bytes) its pixels then its label */
    shard_rng rng;
} epoch_pass;

struct shard_reader {
    shard_dataset *ds;
    int rank, world, batch, shuffle, prefetch;
    uint64_t seed;
    uint64_t N, L, K, nb; /* records; per-rank range; buffer; batches per epoch */
    size_t rec, slot_bytes;
    /* producer side */
    epoch_pass pass;
    shard_cursor cur;
    uint64_t prod_epoch, prod_batch;
    /* queue of finished batches: item = pixels (batch, rec) then labels (batch) */
    uint8_t *q_data;
    size_t item_bytes;
    uint64_t *q_epoch, *q_batch;
    int qcap, qhead, qcount;
    pthread_t thread;
    int have_thread, stop, failed, dead;
    pthread_mutex_t mu;
    pthread_cond_t can_put, can_get;
    char error[SHARD_ERR_MAX];
    /* consumer position */
    uint64_t epoch, batch_in_epoch;
};

/* Global frame order of an epoch: shards permuted by (seed, epoch), frames
 * within each shard by (seed, epoch, shard). Same on every rank. */
static void plan_build(shard_reader *r, uint64_t epoch) {
    const shard_dataset *ds = r->ds;
    uint32_t S = ds->man.nshards;
    uint32_t *order = shard_xmalloc(S * sizeof *order);
    for (uint32_t i = 0; i < S; i++) order[i] = i;
    shard_rng rng = {shard_key(r->seed, epoch, TAG_SHARDS, 0)};
    shard_shuffle_u32(&rng, order, S);
    uint32_t n = 0;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < S; i++) {
        uint32_t s = order[i];
        const shard_file *sf = &ds->files[s];
        uint32_t *fo = shard_xmalloc(sf->nframes * sizeof *fo);
        for (uint32_t f = 0; f < sf->nframes; f++) fo[f] = f;
        shard_rng fr = {shard_key(r->seed, epoch, TAG_FRAMES, s)};
        shard_shuffle_u32(&fr, fo, sf->nframes);
        for (uint32_t f = 0; f < sf->nframes; f++) {
            plan_frame *p = &r->pass.plan[n++];
            p->shard = s;
            p->frame = fo[f];
            p->records = sf->frames[fo[f]].records;
            p->start = pos;
            pos += p->records;
        }
        free(fo);
    }
    free(order);
    SHARD_ASSERT(n == r->pass.nplan && pos == r->N);
}

/* Copies the record at position pos of this rank's range into dst
 * (record bytes then label, 0 without labels). */
static int load_record(shard_reader *r, uint64_t pos, uint8_t *dst, char *err, size_t errlen) {
    epoch_pass *p = &r->pass;
    uint64_t g = (uint64_t)r->rank * r->L + pos;
    uint32_t i = p->hint;
    if (!(p->plan[i].start <= g && g < p->plan[i].start + p->plan[i].records)) {
        uint32_t lo = 0, hi = p->nplan; /* last frame with start <= g */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (p->plan[mid].start <= g) lo = mid;
            else hi = mid;
        }
        i = p->hint = lo;
    }
    const plan_frame *pf = &p->plan[i];
    const uint8_t *raw = shard_cursor_frame(&r->cur, pf->shard, pf->frame, err, errlen);
    if (!raw) return -1;
    shard_frame_record(&r->ds->man.schema, raw, pf->records, (uint32_t)(g - pf->start), dst,
                       dst + r->rec);
    return 0;
}

/* Emits the next record of the epoch into out (pixels, label) or, when
 * sim, only advances the positions and the RNG exactly as a real emit. */
static int emit(shard_reader *r, int sim, uint8_t *pix, uint8_t *lab, char *err, size_t errlen) {
    epoch_pass *p = &r->pass;
    size_t sb = r->slot_bytes;
    while (p->count < r->K && p->next_in < r->L) {
        p->slot_pos[p->count] = p->next_in;
        if (!sim && load_record(r, p->next_in, p->slot_data + p->count * sb, err, errlen))
            return -1;
        p->count++;
        p->next_in++;
    }
    SHARD_ASSERT(p->count > 0);
    if (p->next_in < r->L) { /* full: emit a random slot, refill it from the stream */
        uint64_t j = shard_rng_below(&p->rng, r->K);
        if (!sim) {
            memcpy(pix, p->slot_data + j * sb, r->rec);
            *lab = p->slot_data[j * sb + r->rec];
        }
        p->slot_pos[j] = p->next_in;
        if (!sim && load_record(r, p->next_in, p->slot_data + j * sb, err, errlen)) return -1;
        p->next_in++;
    } else { /* stream done: drain in random order */
        uint64_t j = shard_rng_below(&p->rng, p->count);
        uint64_t last = p->count - 1;
        if (!sim) {
            memcpy(pix, p->slot_data + j * sb, r->rec);
            *lab = p->slot_data[j * sb + r->rec];
            if (j != last) memcpy(p->slot_data + j * sb, p->slot_data + last * sb, sb);
        }
        p->slot_pos[j] = p->slot_pos[last];
        p->count--;
    }
    return 0;
}

static int cmp_pos(const void *a, const void *b) {
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* Starts epoch e, positioned after `skip` emitted records. */
static int pass_start(shard_reader *r, uint64_t e, uint64_t skip, char *err, size_t errlen) {
    epoch_pass *p = &r->pass;
    plan_build(r, e);
    p->epoch = e;
    p->active = 1;
    p->hint = 0;
    p->next_in = 0;
    p->count = 0;
    p->rng.s = shard_key(r->seed, e, TAG_BUFFER, (uint64_t)r->rank);
    for (uint64_t i = 0; i < skip; i++) emit(r, 1, NULL, NULL, err, errlen);
    if (p->count == 0) return 0;
    /* decode what the buffer holds now, frame by frame in stream order */
    uint64_t *pairs = shard_xmalloc(2 * p->count * sizeof *pairs); /* (pos, slot) */
    for (uint64_t j = 0; j < p->count; j++) {
        pairs[2 * j] = p->slot_pos[j];
        pairs[2 * j + 1] = j;
    }
    qsort(pairs, p->count, 2 * sizeof *pairs, cmp_pos);
    int rc = 0;
    for (uint64_t j = 0; j < p->count && !rc; j++)
        rc = load_record(r, pairs[2 * j], p->slot_data + pairs[2 * j + 1] * r->slot_bytes, err,
                         errlen);
    free(pairs);
    return rc;
}

/* Produces the producer's next batch into item; advances its position. */
static int produce(shard_reader *r, uint8_t *item, char *err, size_t errlen) {
    if (!r->pass.active || r->pass.epoch != r->prod_epoch)
        if (pass_start(r, r->prod_epoch, r->prod_batch * (uint64_t)r->batch, err, errlen))
            return -1;
    uint8_t *labels = item + (size_t)r->batch * r->rec;
    for (int i = 0; i < r->batch; i++)
        if (emit(r, 0, item + (size_t)i * r->rec, labels + i, err, errlen)) return -1;
    if (++r->prod_batch == r->nb) {
        r->prod_epoch++;
        r->prod_batch = 0;
    }
    return 0;
}

static void *producer_main(void *arg) {
    shard_reader *r = arg;
    char err[SHARD_ERR_MAX];
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->qcount == r->qcap && !r->stop) pthread_cond_wait(&r->can_put, &r->mu);
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            return NULL;
        }
        /* this slot is outside [qhead, qhead + qcount): the consumer never reads it */
        int slot = (r->qhead + r->qcount) % r->qcap;
        pthread_mutex_unlock(&r->mu);
        uint64_t e = r->prod_epoch, b = r->prod_batch;
        int rc = produce(r, r->q_data + (size_t)slot * r->item_bytes, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        if (rc) {
            r->failed = 1;
            memcpy(r->error, err, sizeof err);
        } else {
            r->q_epoch[slot] = e;
            r->q_batch[slot] = b;
            r->qcount++;
        }
        pthread_cond_signal(&r->can_get);
        pthread_mutex_unlock(&r->mu);
        if (rc) return NULL;
    }
}

int shard_reader_init(shard_reader **rp, const char *dir, int rank, int world, uint64_t seed,
                      int batch, int shuffle_buffer, int prefetch, char *err, size_t errlen) {
    return shard_reader_init_at(rp, dir, rank, world, seed, batch, shuffle_buffer, prefetch, NULL,
                                err, errlen);
}

int shard_reader_init_at(shard_reader **rp, const char *dir, int rank, int world, uint64_t seed,
                         int batch, int shuffle_buffer, int prefetch,
                         const shard_reader_state *st, char *err, size_t errlen) {
    *rp = NULL;
    if (world < 1 || rank < 0 || rank >= world || batch < 1 || shuffle_buffer < 1 ||
        prefetch < 0 || prefetch > 1024) {
        shard_err(err, errlen, "%s: reader arguments out of range: rank %d of world %d (need "
                  "0 <= rank < world), batch %d (>= 1), shuffle buffer %d (>= 1), prefetch %d "
                  "(0 to 1024)", dir, rank, world, batch, shuffle_buffer, prefetch);
        return -1;
    }
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    uint64_t N = shard_dataset_records(ds), L = N / (uint64_t)world;
    if (L / (uint64_t)batch == 0) {
        shard_err(err, errlen, "%s: %llu records give %llu per rank for %d ranks, fewer than one "
                  "batch of %d", dir, (unsigned long long)N, (unsigned long long)L, world, batch);
        shard_dataset_close(ds);
        return -1;
    }
    if (st) {
        const char *what = NULL;
        char msg[256];
        if (st->version != SHARD_STATE_VERSION) what = "state version";
        else if (st->world != (uint32_t)world) what = "world size (the partition would differ)";
        else if (st->seed != seed) what = "seed";
        else if (st->batch != (uint32_t)batch) what = "batch size";
        else if (st->shuffle_buffer != (uint32_t)shuffle_buffer) what = "shuffle buffer";
        else if (st->records != N || st->fingerprint != ds->fingerprint)
            what = "dataset (other shards or records)";
        else if (st->batch_in_epoch >= L / (uint64_t)batch) what = "batch position";
        if (what) {
            snprintf(msg, sizeof msg, "%s: resume state does not match this reader: %s differs",
                     dir, what);
            shard_err(err, errlen, "%s", msg);
            shard_dataset_close(ds);
            return -1;
        }
    }
    uint64_t nplan = 0;
    for (uint32_t i = 0; i < ds->man.nshards; i++) nplan += ds->files[i].nframes;
    if (nplan > (1u << 28)) { /* the epoch plan holds one entry per frame */
        shard_err(err, errlen, "%s: %llu frames exceed the reader's limit of %u (pack with more "
                  "records per frame)", dir, (unsigned long long)nplan, 1u << 28);
        shard_dataset_close(ds);
        return -1;
    }
    shard_reader *r = shard_xcalloc(1, sizeof *r);
    r->ds = ds;
    r->rank = rank;
    r->world = world;
    r->batch = batch;
    r->shuffle = shuffle_buffer;
    r->prefetch = prefetch;
    r->seed = seed;
    r->N = N;
    r->L = L;
    r->K = (uint64_t)shuffle_buffer < L ? (uint64_t)shuffle_buffer : L;
    r->nb = L / (uint64_t)batch;
    r->rec = ds->record_bytes;
    r->slot_bytes = r->rec + 1;
    r->pass.nplan = (uint32_t)nplan;
    r->pass.plan = shard_xcalloc(nplan, sizeof *r->pass.plan);
    r->pass.slot_pos = shard_xcalloc(r->K, sizeof *r->pass.slot_pos);
    r->pass.slot_data = shard_xmalloc(r->K * r->slot_bytes);
    shard_cursor_init(&r->cur, ds);
    if (st) {
        r->epoch = r->prod_epoch = st->epoch;
        r->batch_in_epoch = r->prod_batch = st->batch_in_epoch;
    }
    r->qcap = prefetch > 0 ? prefetch : 1;
    r->item_bytes = (size_t)batch * (r->rec + 1);
    r->q_data = shard_xmalloc((size_t)r->qcap * r->item_bytes);
    r->q_epoch = shard_xcalloc((size_t)r->qcap, sizeof *r->q_epoch);
    r->q_batch = shard_xcalloc((size_t)r->qcap, sizeof *r->q_batch);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->can_put, NULL);
    pthread_cond_init(&r->can_get, NULL);
    if (prefetch > 0) {
        if (pthread_create(&r->thread, NULL, producer_main, r) != 0) {
            shard_err(err, errlen, "%s: cannot start the reader thread", dir);
            shard_reader_free(r);
            return -1;
        }
        r->have_thread = 1;
    }
    *rp = r;
    return 0;
}

/* Copies a finished item out and moves the consumer's position past it. */
static void deliver(shard_reader *r, const uint8_t *item, uint64_t e, uint64_t b,
                    uint8_t *pixels, uint8_t *labels) {
    memcpy(pixels, item, (size_t)r->batch * r->rec);
    if (labels) memcpy(labels, item + (size_t)r->batch * r->rec, (size_t)r->batch);
    r->epoch = e;
    r->batch_in_epoch = b + 1;
    if (r->batch_in_epoch == r->nb) {
        r->epoch++;
        r->batch_in_epoch = 0;
    }
}

int shard_reader_next(shard_reader *r, uint8_t *pixels, uint8_t *labels, char *err,
                      size_t errlen) {
    if (r->dead) {
        shard_err(err, errlen, "%s", r->error);
        return -1;
    }
    if (!r->have_thread) {
        uint64_t e = r->prod_epoch, b = r->prod_batch;
        if (produce(r, r->q_data, r->error, sizeof r->error)) {
            r->dead = 1;
            shard_err(err, errlen, "%s", r->error);
            return -1;
        }
        deliver(r, r->q_data, e, b, pixels, labels);
        return 0;
    }
    pthread_mutex_lock(&r->mu);
    while (r->qcount == 0 && !r->failed) pthread_cond_wait(&r->can_get, &r->mu);
    if (r->qcount == 0) { /* failed, and every good batch before it delivered */
        r->dead = 1;
        pthread_mutex_unlock(&r->mu);
        shard_err(err, errlen, "%s", r->error);
        return -1;
    }
    int slot = r->qhead;
    pthread_mutex_unlock(&r->mu);
    deliver(r, r->q_data + (size_t)slot * r->item_bytes, r->q_epoch[slot], r->q_batch[slot],
            pixels, labels);
    pthread_mutex_lock(&r->mu);
    r->qhead = (r->qhead + 1) % r->qcap;
    r->qcount--;
    pthread_cond_signal(&r->can_put);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void shard_reader_get_state(const shard_reader *r, shard_reader_state *st) {
    memset(st, 0, sizeof *st);
    st->version = SHARD_STATE_VERSION;
    st->world = (uint32_t)r->world;
    st->batch = (uint32_t)r->batch;
    st->shuffle_buffer = (uint32_t)r->shuffle;
    st->seed = r->seed;
    st->epoch = r->epoch;
    st->batch_in_epoch = r->batch_in_epoch;
    st->records = r->N;
    st->fingerprint = r->ds->fingerprint;
}

uint64_t shard_reader_batches_per_epoch(const shard_reader *r) { return r->nb; }
const shard_schema *shard_reader_schema(const shard_reader *r) { return &r->ds->man.schema; }
uint64_t shard_reader_records(const shard_reader *r) { return r->N; }

void shard_reader_free(shard_reader *r) {
    if (!r) return;
    if (r->have_thread) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->can_put);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->can_put);
    pthread_cond_destroy(&r->can_get);
    shard_cursor_free(&r->cur);
    free(r->pass.plan);
    free(r->pass.slot_pos);
    free(r->pass.slot_data);
    free(r->q_data);
    free(r->q_epoch);
    free(r->q_batch);
    shard_dataset_close(r->ds);
    free(r);
}
