/* reader.c - the training reader: one world-independent order of global
 * batches per epoch, each rank decoding only its slice of it, resumable
 * positions and a background decoding thread (contract in shard.h).
 *
 * Elastic determinism: what global batch s holds is a function of (seed,
 * dataset, global batch G, shuffle buffer, s), never of the world size. A
 * window of consecutive stream positions is cut into G strata; batch j of the
 * window takes one record of every stratum (its j-th in a per-stratum random
 * permutation). Global slot i of every batch therefore comes from stratum i,
 * so rank r's slots [r*B, (r+1)*B) come from one contiguous run of the window
 * whatever W is: a rank decodes just that run (plus at most the two frames it
 * shares with its neighbours), and a position (epoch, batch) is the whole
 * state: a resume decodes its window and continues, with no replay. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shard_internal.h"

/* checkpoints store the state verbatim: its layout is part of the format */
_Static_assert(sizeof(shard_reader_state) == 56, "shard_reader_state is 56 bytes");

/* distinct RNG stream tags */
enum { TAG_SHARDS = 0x5348, TAG_FRAMES = 0x4652, TAG_INFRAME = 0x4946, TAG_STRATA = 0x5354 };

typedef struct {
    uint32_t shard, frame, records;
    uint64_t start; /* first position of this frame in the epoch's global stream */
} plan_frame;

struct shard_reader {
    shard_dataset *ds;
    int rank, world, batch, shuffle, prefetch;
    uint64_t seed;
    uint64_t N, G, nb, nbw; /* records; global batch; batches per epoch; per full window */
    size_t rec, slot_bytes;
    /* producer side: the epoch's frame order, this rank's part of one window */
    plan_frame *plan; /* (nplan) every frame of the dataset, in epoch order */
    uint32_t nplan, hint;
    int64_t plan_epoch;      /* epoch the plan is for, -1 none */
    int64_t win_epoch;       /* (epoch, window) held in region, -1 none */
    uint64_t win, win_n;     /* window index and its batches */
    uint8_t *region;         /* (B * nbw, slot_bytes) this rank's strata, stream order */
    uint32_t *perm;          /* (B, win_n) each of this rank's strata's permutation */
    uint32_t *inframe;       /* (records per frame) the record order inside a frame */
    shard_cursor cur;
    uint64_t prod_epoch, prod_batch, decoded;
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
    uint64_t decoded_pub; /* decoded as of the last finished item (under mu) */
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
            plan_frame *p = &r->plan[n++];
            p->shard = s;
            p->frame = fo[f];
            p->records = sf->frames[fo[f]].records;
            p->start = pos;
            pos += p->records;
        }
        free(fo);
    }
    free(order);
    SHARD_ASSERT(n == r->nplan && pos == r->N);
    r->plan_epoch = (int64_t)epoch;
    r->hint = 0;
}

/* Index of the plan frame holding stream position g. */
static uint32_t plan_find(shard_reader *r, uint64_t g) {
    uint32_t i = r->hint;
    if (r->plan[i].start <= g && g < r->plan[i].start + r->plan[i].records) return i;
    if (i + 1 < r->nplan && r->plan[i + 1].start <= g &&
        g < r->plan[i + 1].start + r->plan[i + 1].records)
        return r->hint = i + 1;
    uint32_t lo = 0, hi = r->nplan; /* last frame with start <= g */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->plan[mid].start <= g) lo = mid;
        else hi = mid;
    }
    return r->hint = lo;
}

/* Decodes stream positions [from, from + n) of epoch e into dst
 * ((n, slot_bytes): record bytes then label, 0 without labels), each frame
 * once; inside a frame the records are taken in an order permuted by
 * (seed, epoch, shard, frame), so which records share a stratum changes
 * every epoch at no decoding cost. */
static int decode_run(shard_reader *r, uint64_t e, uint64_t from, uint64_t n, uint8_t *dst,
                      char *err, size_t errlen) {
    const uint8_t *raw = NULL;
    uint32_t cur = UINT32_MAX;
    for (uint64_t p = from; p < from + n; p++) {
        uint32_t i = plan_find(r, p);
        const plan_frame *pf = &r->plan[i];
        if (i != cur) {
            if (r->cur.cached_shard != (int64_t)pf->shard || r->cur.cached_frame != pf->frame)
                r->decoded += pf->records;
            raw = shard_cursor_frame(&r->cur, pf->shard, pf->frame, err, errlen);
            if (!raw) return -1;
            for (uint32_t k = 0; k < pf->records; k++) r->inframe[k] = k;
            shard_rng rng = {shard_key(r->seed, e, TAG_INFRAME, (uint64_t)pf->shard << 32 | pf->frame)};
            shard_shuffle_u32(&rng, r->inframe, pf->records);
            cur = i;
        }
        uint8_t *d = dst + (p - from) * r->slot_bytes;
        shard_frame_record(&r->ds->man.schema, raw, pf->records, r->inframe[p - pf->start], d,
                           d + r->rec);
    }
    return 0;
}

/* Loads window w of epoch e: this rank's strata permutations and records.
 * The window holds batches [w*nbw, w*nbw + n) = stream positions
 * [w*nbw*G, +n*G); stratum i is its positions [i*n, (i+1)*n), and rank r's
 * strata [r*B, (r+1)*B) are the contiguous run [r*B*n, (r+1)*B*n). */
static int window_load(shard_reader *r, uint64_t e, uint64_t w, char *err, size_t errlen) {
    if (r->plan_epoch != (int64_t)e) plan_build(r, e);
    uint64_t b0 = w * r->nbw, n = r->nb - b0 < r->nbw ? r->nb - b0 : r->nbw;
    uint64_t B = (uint64_t)r->batch, i0 = (uint64_t)r->rank * B;
    for (uint64_t k = 0; k < B; k++) {
        uint32_t *pm = r->perm + k * n;
        for (uint64_t j = 0; j < n; j++) pm[j] = (uint32_t)j;
        shard_rng rng = {shard_key(r->seed, e, TAG_STRATA, w * r->G + i0 + k)};
        shard_shuffle_u32(&rng, pm, (uint32_t)n);
    }
    r->win_epoch = -1;
    if (decode_run(r, e, b0 * r->G + i0 * n, B * n, r->region, err, errlen)) return -1;
    r->win_epoch = (int64_t)e;
    r->win = w;
    r->win_n = n;
    return 0;
}

/* Produces the producer's next batch into item; advances its position. */
static int produce(shard_reader *r, uint8_t *item, char *err, size_t errlen) {
    uint64_t w = r->prod_batch / r->nbw, j = r->prod_batch % r->nbw;
    if (r->win_epoch != (int64_t)r->prod_epoch || r->win != w)
        if (window_load(r, r->prod_epoch, w, err, errlen)) return -1;
    uint8_t *labels = item + (size_t)r->batch * r->rec;
    for (uint64_t k = 0; k < (uint64_t)r->batch; k++) {
        const uint8_t *s = r->region + (k * r->win_n + r->perm[k * r->win_n + j]) * r->slot_bytes;
        memcpy(item + k * r->rec, s, r->rec);
        labels[k] = s[r->rec];
    }
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
        r->decoded_pub = r->decoded;
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

/* NULL, or what of st does not match this reader (G = its global batch). */
static const char *state_mismatch(const shard_reader_state *st, const shard_dataset *ds,
                                  uint64_t seed, uint64_t G, int shuffle, uint64_t nb) {
    if (st->version != SHARD_STATE_VERSION) return "state version (not this reader's order)";
    if (st->seed != seed) return "seed";
    if (st->global_batch != G) return "global batch (batch per rank x ranks)";
    if (st->shuffle_buffer != (uint32_t)shuffle) return "shuffle buffer";
    if (st->records != shard_dataset_records(ds) || st->fingerprint != ds->fingerprint)
        return "dataset (other shards or records)";
    if (st->batch_in_epoch >= nb) return "batch position";
    return NULL;
}

/* The reader once its arguments and dataset checked out. */
static shard_reader *reader_new(shard_dataset *ds, int rank, int world, uint64_t seed, int batch,
                                int shuffle_buffer, int prefetch, uint32_t nplan) {
    shard_reader *r = shard_xcalloc(1, sizeof *r);
    r->ds = ds;
    r->rank = rank;
    r->world = world;
    r->batch = batch;
    r->shuffle = shuffle_buffer;
    r->prefetch = prefetch;
    r->seed = seed;
    r->N = shard_dataset_records(ds);
    r->G = (uint64_t)batch * (uint64_t)world;
    r->nb = r->N / r->G;
    r->nbw = (uint64_t)shuffle_buffer / r->G;
    if (r->nbw < 1) r->nbw = 1;
    if (r->nbw > r->nb) r->nbw = r->nb;
    r->rec = ds->record_bytes;
    r->slot_bytes = r->rec + 1;
    r->nplan = nplan;
    r->plan = shard_xcalloc(nplan, sizeof *r->plan);
    r->plan_epoch = r->win_epoch = -1;
    r->region = shard_xmalloc((size_t)(batch * r->nbw) * r->slot_bytes);
    r->perm = shard_xmalloc((size_t)(batch * r->nbw) * sizeof *r->perm);
    r->inframe = shard_xmalloc((size_t)ds->man.records_per_frame * sizeof *r->inframe);
    shard_cursor_init(&r->cur, ds);
    r->qcap = prefetch > 0 ? prefetch : 1;
    r->item_bytes = (size_t)batch * (r->rec + 1);
    r->q_data = shard_xmalloc((size_t)r->qcap * r->item_bytes);
    r->q_epoch = shard_xcalloc((size_t)r->qcap, sizeof *r->q_epoch);
    r->q_batch = shard_xcalloc((size_t)r->qcap, sizeof *r->q_batch);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->can_put, NULL);
    pthread_cond_init(&r->can_get, NULL);
    return r;
}

int shard_reader_init_at(shard_reader **rp, const char *dir, int rank, int world, uint64_t seed,
                         int batch, int shuffle_buffer, int prefetch,
                         const shard_reader_state *st, char *err, size_t errlen) {
    *rp = NULL;
    if (world < 1 || rank < 0 || rank >= world || batch < 1 || shuffle_buffer < 1 ||
        prefetch < 0 || prefetch > 1024 || (uint64_t)batch * (uint64_t)world > UINT32_MAX) {
        shard_err(err, errlen, "%s: reader arguments out of range: rank %d of world %d (need "
                  "0 <= rank < world), batch %d (>= 1, batch x world < 2^32), shuffle buffer %d "
                  "(>= 1), prefetch %d (0 to 1024)", dir, rank, world, batch, shuffle_buffer,
                  prefetch);
        return -1;
    }
    shard_dataset *ds;
    if (shard_dataset_open(&ds, dir, err, errlen)) return -1;
    uint64_t N = shard_dataset_records(ds), G = (uint64_t)batch * (uint64_t)world;
    if (N / G == 0) {
        shard_err(err, errlen, "%s: %llu records are fewer than one global batch of %llu (%d per "
                  "rank x %d ranks)", dir, (unsigned long long)N, (unsigned long long)G, batch,
                  world);
        shard_dataset_close(ds);
        return -1;
    }
    const char *what = st ? state_mismatch(st, ds, seed, G, shuffle_buffer, N / G) : NULL;
    if (what) {
        shard_err(err, errlen, "%s: resume state does not match this reader: %s differs", dir,
                  what);
        shard_dataset_close(ds);
        return -1;
    }
    uint64_t nplan = 0;
    for (uint32_t i = 0; i < ds->man.nshards; i++) nplan += ds->files[i].nframes;
    if (nplan > (1u << 28)) { /* the epoch plan holds one entry per frame */
        shard_err(err, errlen, "%s: %llu frames exceed the reader's limit of %u (pack with more "
                  "records per frame)", dir, (unsigned long long)nplan, 1u << 28);
        shard_dataset_close(ds);
        return -1;
    }
    shard_reader *r = reader_new(ds, rank, world, seed, batch, shuffle_buffer, prefetch,
                                 (uint32_t)nplan);
    if (st) {
        r->epoch = r->prod_epoch = st->epoch;
        r->batch_in_epoch = r->prod_batch = st->batch_in_epoch;
    }
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
        r->decoded_pub = r->decoded;
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
    st->global_batch = (uint32_t)r->G;
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

uint64_t shard_reader_records_decoded(shard_reader *r) {
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->decoded_pub;
    pthread_mutex_unlock(&r->mu);
    return n;
}

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
    free(r->plan);
    free(r->region);
    free(r->perm);
    free(r->inframe);
    free(r->q_data);
    free(r->q_epoch);
    free(r->q_batch);
    shard_dataset_close(r->ds);
    free(r);
}
