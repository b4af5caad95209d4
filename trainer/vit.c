/* vit.c - transformer block stacks and the parameter table, shared by every
 * objective (vit.h). Pre-LN blocks: x + attn(LN(x)), then + MLP(LN(.)),
 * as in ViT / I-JEPA; the residual adds are folded into the sgemm (beta 1). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "vit.h"

static const char *blk_names[BLK_N] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                                       "ln2.w", "ln2.b", "fc1.w", "fc1.b", "fc2.w", "fc2.b"};

/* ------------------------------------------------------------ the table */

size_t table_add(table_builder *tb, const char *name, int rows, int cols, int decay) {
    JEPA_ASSERT(tb->n < tb->cap);
    jepa_tensor *t = &tb->t[tb->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->numel = (size_t)rows * cols;
    t->offset = tb->off;
    t->decay = decay;
    tb->off += t->numel;
    return t->offset;
}

void table_add_block(table_builder *tb, const char *prefix, int l, int C, int Hd, size_t *off) {
    int shape[BLK_N][2] = {{1, C}, {1, C},     {3 * C, C}, {1, 3 * C}, {C, C},  {1, C},
                           {1, C}, {1, C},     {Hd, C},    {1, Hd},    {C, Hd}, {1, C}};
    for (int k = 0; k < BLK_N; k++) {
        char name[40];
        snprintf(name, sizeof name, "%s.%d.%s", prefix, l, blk_names[k]);
        off[k] = table_add(tb, name, shape[k][0], shape[k][1], shape[k][0] > 1);
    }
}

const jepa_tensor *jepa_tensor_find(const jepa_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void jepa_params_alloc(jepa_model *m) {
    m->params = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->grads = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->adam_m = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->adam_v = JEPA_MALLOC(sizeof(float) * m->nparams);
    m->target = m->nenc ? JEPA_MALLOC(sizeof(float) * m->nenc) : NULL;
}

void jepa_params_free(jepa_model *m) {
    jepa_free(m->params); jepa_free(m->grads); jepa_free(m->adam_m); jepa_free(m->adam_v);
    jepa_free(m->target); jepa_free(m->pos_enc); jepa_free(m->pos_pred);
    jepa_free(m->tensors);
    m->params = m->grads = m->adam_m = m->adam_v = m->target = NULL;
    m->pos_enc = m->pos_pred = NULL;
    m->tensors = NULL;
}

/* Input layers whose init is PyTorch's default (fan-in uniform), weight and bias. */
static int fanin_init(const char *name) {
    static const char *const names[] = {"enc.patch", "pred.in", "pred.global", "proj", "wpred.in",
                                         "wpred.act"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (!strncmp(name, names[i], n) && (!strcmp(name + n, ".w") || !strcmp(name + n, ".b")))
            return 1;
    }
    return 0;
}

static int init_kind(const jepa_tensor *t) {
    const char *leaf = strrchr(t->name, '.');
    leaf = leaf ? leaf + 1 : t->name;
    if (fanin_init(t->name)) return VIT_INIT_FANIN;
    if (!strcmp(t->name, "pred.mask_token")) return VIT_INIT_TRUNC_NORMAL;
    if (t->rows > 1) return VIT_INIT_TRUNC_NORMAL;
    if (!strcmp(leaf, "w") && (strstr(t->name, "ln") || strstr(t->name, "norm"))) return VIT_INIT_ONE;
    return VIT_INIT_ZERO; /* biases */
}

/* Tensor i by `kind`, from its own stream (seed, i): any one tensor can be
 * re-drawn without touching the others. */
static void init_tensor(jepa_model *m, int i, uint64_t seed, int kind) {
    const jepa_tensor *t = &m->tensors[i];
    float *p = m->params + t->offset;
    jepa_rng r;
    rng_init(&r, rng_key(seed, 0x1417u, (uint64_t)i));
    const char *leaf = strrchr(t->name, '.');
    leaf = leaf ? leaf + 1 : t->name;
    if (kind == VIT_INIT_FANIN) {
        /* PyTorch's Conv2d/Linear default, U(+-1/sqrt(fan_in)): with 4x4
         * patches (fan_in 16) I-JEPA's trunc-normal(0.02) makes the content
         * ~10x weaker than the sin-cos position embedding, and the targets
         * become a function of position that is trivial to predict; at the
         * predictor's input (fan_in 128) it gives context content 0.2 RMS
         * against 0.71 for the position embedding, so "the average target
         * at this position" is an easy minimum; the world model's action and
         * input embeddings (fan_in 2 and E) would likewise drown in the time
         * embedding. A bias follows its weight. */
        const jepa_tensor *w = &m->tensors[i - (leaf[0] == 'b' ? 1 : 0)];
        double bound = 1.0 / sqrt((double)w->cols);
        for (size_t k = 0; k < t->numel; k++) p[k] = (float)((2 * rng_uniform(&r) - 1) * bound);
    } else if (kind == VIT_INIT_TRUNC_NORMAL) {
        /* I-JEPA: trunc-normal(0.02), output projections rescaled by depth */
        double std = 0.02;
        int layer = -1;
        if (strstr(t->name, "proj.w") || strstr(t->name, "fc2.w"))
            sscanf(strchr(t->name, '.') + 1, "%d", &layer);
        if (layer >= 0) std /= sqrt(2.0 * (layer + 1));
        for (size_t k = 0; k < t->numel; k++) p[k] = (float)rng_trunc_normal(&r, std);
    } else {
        float v = kind == VIT_INIT_ONE ? 1.0f : 0.0f;
        for (size_t k = 0; k < t->numel; k++) p[k] = v;
    }
}

void vit_init_params(jepa_model *m, uint64_t seed) {
    for (int i = 0; i < m->ntensors; i++) init_tensor(m, i, seed, init_kind(&m->tensors[i]));
}

void vit_init_named(jepa_model *m, const char *name, uint64_t seed, int kind) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) {
            init_tensor(m, i, seed, kind);
            if (m->target && (size_t)(m->tensors[i].offset) < m->nenc)
                memcpy(m->target + m->tensors[i].offset, m->params + m->tensors[i].offset,
                       sizeof(float) * m->tensors[i].numel);
            return;
        }
    jepa_fatal(__FILE__, __LINE__, "vit_init_named: no tensor %s", name);
}

/* ------------------------------------------------------------ activations */

/* a block's four weights (K, N) as forward products take them: qkv (C, 3C),
 * proj (C, C), fc1 (C, Hd), fc2 (Hd, C) */
static void blk_kn(int C, int Hd, int kn[4][2]) {
    const int v[4][2] = {{C, 3 * C}, {C, C}, {C, Hd}, {Hd, C}};
    memcpy(kn, v, sizeof v);
}

/* their offsets in the block's table, in blk_kn's order */
static const int blk_widx[4] = {BLK_QKVW, BLK_PROJW, BLK_FC1W, BLK_FC2W};

/* floats of a block's four weights packed for the forward (back 0: infer_pack
 * of W (N, K)) or for the backward's d(inp) = d(out) W (back 1:
 * infer_pack_rows of W as a (N, K) matrix) */
static size_t blk_pack_floats_dir(int C, int Hd, int back) {
    int kn[4][2];
    blk_kn(C, Hd, kn);
    size_t n = 0;
    for (int i = 0; i < 4; i++) n += infer_pack_floats(kn[i][back], kn[i][!back]);
    return n;
}

static size_t blk_pack_floats(int C, int Hd) { return blk_pack_floats_dir(C, Hd, 0); }

/* One buffer for every stack's packed weights: a stack needs it only while
 * its own forward or one block's backward runs, and the stacks of a process
 * run one at a time (vit.h). Held by every live vit_acts, sized for the
 * largest, freed with the last. */
static float *wpack;
static size_t wpack_cap;
static int wpack_users;

static void wpack_hold(size_t floats) {
    wpack_users++;
    if (floats <= wpack_cap) return;
    jepa_free(wpack);
    wpack = JEPA_MALLOC(sizeof(float) * floats);
    wpack_cap = floats;
}

static void wpack_release(void) {
    if (--wpack_users > 0) return;
    jepa_free(wpack);
    wpack = NULL;
    wpack_cap = 0;
}

void vit_acts_init(vit_acts *a, int L, int S, int T, int C, int Hd, int H, int keep) {
    memset(a, 0, sizeof *a);
    a->L = L; a->C = C; a->Hd = Hd; a->H = H; a->keep = keep;
    a->Mmax = (size_t)S * T;
    a->Amax = (size_t)S * H * T * T;
    int nl = keep ? L : 1, nres = keep ? L + 1 : 2;
    size_t M = a->Mmax;
    a->res = JEPA_MALLOC(sizeof(float) * nres * M * C);
    a->ln1 = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln1m = JEPA_MALLOC(sizeof(float) * nl * M);
    a->ln1r = JEPA_MALLOC(sizeof(float) * nl * M);
    a->qkv = JEPA_MALLOC(sizeof(float) * nl * M * 3 * C);
    a->att = keep ? JEPA_MALLOC(sizeof(float) * nl * a->Amax) : NULL; /* only a backward reads it */
    a->atty = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->resmid = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln2 = JEPA_MALLOC(sizeof(float) * nl * M * C);
    a->ln2m = JEPA_MALLOC(sizeof(float) * nl * M);
    a->ln2r = JEPA_MALLOC(sizeof(float) * nl * M);
    a->fch = JEPA_MALLOC(sizeof(float) * nl * M * Hd);
    a->fcg = JEPA_MALLOC(sizeof(float) * nl * M * Hd);
    /* the last block's listed rows (vit_stack_forward_rows); calloc'd pages
     * stay out of the resident set until a stack lists rows */
    a->xsub = JEPA_MALLOC(sizeof(float) * M * C);
    a->asub = JEPA_MALLOC(sizeof(float) * M * C);
    a->srows = JEPA_MALLOC(sizeof(int) * M);
    a->lidx = JEPA_MALLOC(sizeof(int) * M);
    a->pos = JEPA_MALLOC(sizeof(int) * M);
    a->skeys = JEPA_MALLOC(sizeof(int64_t) * M);
    size_t fwd = (size_t)L * blk_pack_floats(C, Hd), back = blk_pack_floats_dir(C, Hd, 1);
    wpack_hold(!ops_packed() ? 0 : keep && back > fwd ? back : fwd);
    a->wpack_held = 1;
}

void vit_acts_free(vit_acts *a) {
    float *p[] = {a->res, a->ln1, a->ln1m, a->ln1r, a->qkv, a->att, a->atty, a->resmid,
                  a->ln2, a->ln2m, a->ln2r, a->fch, a->fcg, a->xsub, a->asub};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) jepa_free(p[i]);
    jepa_free(a->srows); jepa_free(a->lidx); jepa_free(a->pos); jepa_free(a->skeys);
    if (a->wpack_held) wpack_release();
    memset(a, 0, sizeof *a);
}

float *vit_res(const vit_acts *a, int l) {
    int slot = a->keep ? l : (l & 1);
    return a->res + (size_t)slot * a->Mmax * a->C;
}

void vit_scratch_init(vit_scratch *sc, size_t Mmax, int Cmax, int Hmax, int Tmax, int hdmax) {
    sc->Mmax = Mmax;
    sc->dfcg = JEPA_MALLOC(sizeof(float) * Mmax * Hmax);
    sc->dln = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    sc->datty = JEPA_MALLOC(sizeof(float) * Mmax * Cmax);
    sc->dqkv = JEPA_MALLOC(sizeof(float) * Mmax * 3 * Cmax);
    sc->attn = JEPA_MALLOC(sizeof(float) * attention_scratch_floats(Tmax, hdmax) *
                           omp_get_max_threads());
    /* the blocks' weights, packed per product as (K, N): qkv (C, 3C) and the
     * MLP's (C, Hd), each either way round (forward, backward's d(inp); fc1
     * and fc2 are each other's transpose, proj (C, C) is smaller); the
     * objectives' other weights are no larger or fall back to cblas_sgemm */
    const int kn[4][2] = {{Cmax, 3 * Cmax}, {3 * Cmax, Cmax}, {Cmax, Hmax}, {Hmax, Cmax}};
    size_t pack = 0;
    for (int i = 0; i < 4; i++) {
        size_t f = infer_pack_floats(kn[i][0], kn[i][1]);
        pack = f > pack ? f : pack;
    }
    ops_pack_reserve(pack);
}

void vit_scratch_free(vit_scratch *sc) {
    float *p[] = {sc->dfcg, sc->dln, sc->datty, sc->dqkv, sc->attn};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) jepa_free(p[i]);
    memset(sc, 0, sizeof *sc);
}

/* ------------------------------------------------------------ the stacks */

/* One block's layer slot: pointers into the activations of layer l. */
typedef struct {
    float *ln1, *ln1m, *ln1r, *qkv, *att, *atty, *mid, *ln2, *ln2m, *ln2r, *fch, *fcg;
} blk_slot;

static blk_slot slot_of(const vit_acts *a, int l) {
    size_t s = a->keep ? l : 0, M = a->Mmax, C = a->C, Hd = a->Hd;
    blk_slot b = {a->ln1 + s * M * C, a->ln1m + s * M, a->ln1r + s * M, a->qkv + s * M * 3 * C,
                  a->att ? a->att + s * a->Amax : NULL, a->atty + s * M * C,
                  a->resmid + s * M * C, a->ln2 + s * M * C, a->ln2m + s * M, a->ln2r + s * M,
                  a->fch + s * M * Hd, a->fcg + s * M * Hd};
    return b;
}

/* The slot's rows from sequence s0 on (rows from s0 T) */
static blk_slot slot_rows(const vit_acts *a, int l, int s0, int T) {
    blk_slot b = slot_of(a, l);
    size_t C = a->C, Hd = a->Hd, r0 = (size_t)s0 * T;
    if (b.att) b.att += (size_t)s0 * a->H * T * T;
    b.ln1 += r0 * C; b.ln1m += r0; b.ln1r += r0; b.qkv += r0 * 3 * C;
    b.atty += r0 * C; b.mid += r0 * C; b.ln2 += r0 * C; b.ln2m += r0; b.ln2r += r0;
    b.fch += r0 * Hd; b.fcg += r0 * Hd;
    return b;
}

/* x + proj(atty), then + MLP(LN(.)), over M rows: into xo */
static void block_rest_forward(const vit_acts *a, const blk_slot *b, const float *base,
                               const size_t *o, const float *x, const float *atty, int M,
                               float *xo) {
    int C = a->C, Hd = a->Hd;
    linear_residual_forward(b->mid, x, atty, base + o[BLK_PROJW], base + o[BLK_PROJB], M, C, C);
    layernorm_forward(b->ln2, b->ln2m, b->ln2r, b->mid, base + o[BLK_LN2W], base + o[BLK_LN2B],
                      M, C);
    linear_gelu_forward(b->fch, b->fcg, b->ln2, base + o[BLK_FC1W], base + o[BLK_FC1B], M, C, Hd);
    linear_residual_forward(xo, b->mid, b->fcg, base + o[BLK_FC2W], base + o[BLK_FC2B], M, Hd, C);
}

void vit_stack_forward(vit_acts *a, const float *base, const size_t *blk, int S, int T,
                       float *scratch) {
    vit_stack_forward_rows(a, base, blk, S, T, scratch, NULL, 0);
}

static int key_cmp(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* a->qrows: the listed rows ascending, as attention groups its queries by
 * sequence; rows itself when it is (the I-JEPA per-block predictor and the
 * target), else a sorted copy with the maps between the two orders (the
 * joint pass lists its rows block by block) */
static void sort_rows(vit_acts *a) {
    int n = a->nrows, asc = 1;
    for (int i = 0; i < n; i++) JEPA_ASSERT(a->rows[i] >= 0 && (size_t)a->rows[i] < a->Mmax);
    for (int i = 1; i < n && asc; i++) asc = a->rows[i - 1] < a->rows[i];
    a->qrows = a->rows;
    a->permuted = !asc;
    if (asc) return;
    for (int i = 0; i < n; i++) a->skeys[i] = (int64_t)a->rows[i] << 32 | (uint32_t)i;
    qsort(a->skeys, (size_t)n, sizeof(int64_t), key_cmp);
    for (int i = 0; i < n; i++) {
        a->srows[i] = (int)(a->skeys[i] >> 32);
        a->lidx[i] = (int)(uint32_t)a->skeys[i];
        a->pos[a->lidx[i]] = i;
        JEPA_ASSERT(i == 0 || a->srows[i - 1] < a->srows[i]); /* no repeats */
    }
    a->qrows = a->srows;
}

/* jepa.h: VIT_CHUNK_ROWS rows are about 8 KB of activations each at width
 * 128, 6 MB a chunk: in the L2 and L3 caches from one kernel to the next */
static int chunk_rows = VIT_CHUNK_AUTO;

int vit_set_chunk_rows(int rows) {
    int old = chunk_rows;
    chunk_rows = rows;
    return old;
}

/* rows a chunk holds, or 0: one pass. A team needs its kernels' own
 * regions to nest inactive (one thread each). */
static int rows_per_chunk(void) {
    if (omp_get_max_threads() > 1 && omp_get_max_active_levels() > 1) return 0;
    if (chunk_rows != VIT_CHUNK_AUTO) return chunk_rows > 0 ? chunk_rows : 0;
    return VIT_CHUNK_ROWS;
}

/* Packs blocks [0, nl)'s forward weights into wpack, block after block */
static void pack_blocks(vit_acts *a, const float *base, const size_t *blk, int nl) {
    int kn[4][2];
    blk_kn(a->C, a->Hd, kn);
    float *wp = wpack;
    JEPA_ASSERT((size_t)nl * blk_pack_floats(a->C, a->Hd) <= wpack_cap);
    JEPA_ASSERT(!omp_in_parallel()); /* one wpack per process (vit.h) */
    for (int l = 0; l < nl; l++)
        for (int i = 0; i < 4; i++) {
            infer_pack(wp, base + blk[(size_t)l * BLK_N + blk_widx[i]], kn[i][0], kn[i][1]);
            wp += infer_pack_floats(kn[i][0], kn[i][1]);
        }
}

/* Blocks [0, nl) over sequences [s0, s0 + ns), on the packed weights */
static void chunk_forward(vit_acts *a, const float *base, const size_t *blk, int nl, int s0,
                          int ns, int T, float *scratch) {
    int C = a->C, Hd = a->Hd, m = ns * T;
    size_t r0 = (size_t)s0 * T, per = blk_pack_floats(C, Hd);
    size_t oproj = infer_pack_floats(C, 3 * C), ofc1 = oproj + infer_pack_floats(C, C);
    size_t ofc2 = ofc1 + infer_pack_floats(C, Hd);
    for (int l = 0; l < nl; l++) {
        const size_t *o = blk + (size_t)l * BLK_N;
        const float *wp = wpack + (size_t)l * per;
        blk_slot b = slot_rows(a, l, s0, T);
        float *x = vit_res(a, l) + r0 * C, *xo = vit_res(a, l + 1) + r0 * C;
        layernorm_forward(b.ln1, b.ln1m, b.ln1r, x, base + o[BLK_LN1W], base + o[BLK_LN1B], m,
                          C);
        linear_forward_packed(b.qkv, NULL, b.ln1, wp, base + o[BLK_QKVB], NULL, m, C, 3 * C, 0);
        if (a->causal) attention_forward_causal(b.atty, b.att, b.qkv, ns, T, C, a->H, scratch);
        else attention_forward(b.atty, b.att, b.qkv, ns, T, C, a->H, scratch);
        linear_forward_packed(b.mid, NULL, b.atty, wp + oproj, base + o[BLK_PROJB], x, m, C, C,
                              0);
        layernorm_forward(b.ln2, b.ln2m, b.ln2r, b.mid, base + o[BLK_LN2W], base + o[BLK_LN2B],
                          m, C);
        float *pre = a->keep ? b.fch : NULL; /* the GELU's input, for the backward */
        linear_forward_packed(b.fcg, pre, b.ln2, wp + ofc1, base + o[BLK_FC1B], NULL, m, C, Hd,
                              1);
        linear_forward_packed(xo, NULL, b.fcg, wp + ofc2, base + o[BLK_FC2B], b.mid, m, Hd, C, 0);
    }
}

/* Blocks [0, nl), chunk by chunk of sequences, on weights packed once per
 * call: before the listed-rows block no row meets another image's, and
 * every kernel is row-wise or per (image, head), so this is the one-pass
 * result bit for bit (where that pass also packs: vit_scratch_init reserves
 * its buffer), with a chunk's activations still in cache from one kernel to
 * the next. Stacks that keep their activations write them as before. A
 * team takes whole chunks, one thread each (a multiple of the team's size
 * of them, for balance): one parallel region per forward instead of one per
 * kernel; the kernels' own regions nest inactive, on one thread, and the
 * attention's scratch is the chunk thread's. */
static void forward_chunks(vit_acts *a, const float *base, const size_t *blk, int nl, int S,
                           int T, float *scratch) {
    int nt = omp_get_max_threads(), rows = rows_per_chunk();
    int n = (S * T + rows - 1) / rows;
    n = (n + nt - 1) / nt * nt;
    int cs = (S + n - 1) / n;
    n = (S + cs - 1) / cs;
    pack_blocks(a, base, blk, nl);
    if (nt == 1) {
        for (int s0 = 0; s0 < S; s0 += cs)
            chunk_forward(a, base, blk, nl, s0, S - s0 < cs ? S - s0 : cs, T, scratch);
        return;
    }
    size_t per = attention_scratch_floats(T, a->C / a->H);
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < n; c++) {
        int s0 = c * cs;
        chunk_forward(a, base, blk, nl, s0, S - s0 < cs ? S - s0 : cs, T,
                      scratch + per * omp_get_thread_num());
    }
}

void vit_stack_forward_rows(vit_acts *a, const float *base, const size_t *blk, int S, int T,
                            float *scratch, const int *rows, int nrows) {
    int M = S * T, C = a->C;
    JEPA_ASSERT((size_t)M <= a->Mmax && (size_t)S * a->H * T * T <= a->Amax);
    /* rows_expand's temp needs Hd >= C */
    JEPA_ASSERT(!rows || (nrows > 0 && nrows <= M && a->Hd >= C && !a->causal));
    a->rows = rows;
    a->nrows = nrows;
    if (rows) sort_rows(a);
    int l0 = 0, nc = rows ? a->L - 1 : a->L; /* blocks before l0 ran in chunks */
    int nt = omp_get_max_threads(); /* a team needs a chunk per thread */
    if (ops_packed() && rows_per_chunk() > 0 && S >= nt && nc > 0)
        forward_chunks(a, base, blk, l0 = nc, S, T, scratch);
    for (int l = l0; l < a->L; l++) {
        const size_t *o = blk + (size_t)l * BLK_N;
        blk_slot b = slot_of(a, l);
        float *x = vit_res(a, l), *xo = vit_res(a, l + 1);
        layernorm_forward(b.ln1, b.ln1m, b.ln1r, x, base + o[BLK_LN1W], base + o[BLK_LN1B], M, C);
        linear_forward(b.qkv, b.ln1, base + o[BLK_QKVW], base + o[BLK_QKVB], M, C, 3 * C);
        if (rows && l == a->L - 1) { /* every row's keys and values, the listed rows' queries */
            float *ao = a->permuted ? a->xsub : a->asub; /* ascending order, then list order */
            attention_forward_rows(ao, b.att, b.qkv, S, T, C, a->H, a->qrows, nrows, scratch);
            if (a->permuted) gather_rows(a->asub, ao, a->pos, nrows, C);
            gather_rows(a->xsub, x, rows, nrows, C);
            block_rest_forward(a, &b, base, o, a->xsub, a->asub, nrows, xo);
            continue;
        }
        if (a->causal) attention_forward_causal(b.atty, b.att, b.qkv, S, T, C, a->H, scratch);
        else attention_forward(b.atty, b.att, b.qkv, S, T, C, a->H, scratch);
        block_rest_forward(a, &b, base, o, x, b.atty, M, xo);
    }
}

void jepa_grads_ready(jepa_model *m, size_t lo) {
    if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, lo);
}

/* linear_backward_set, on W packed once (wp) where the caller packed it */
static void lin_back(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const float *wp, int M, int K, int N) {
    if (wp) linear_backward_packed(dinp, dw, db, dout, inp, wp, M, K, N);
    else linear_backward_set(dinp, dw, db, dout, inp, w, M, K, N);
}

/* Backward of block_rest_forward over M rows: dres is d(out) on entry and
 * d(mid) on return; d(atty) is written into datty. The branch gradients are
 * written, not accumulated (no zero passes). wq: the block's weights packed
 * by pack_block_back (blk_widx order), or NULL (each packed per call). */
static void block_rest_backward(const vit_acts *a, vit_scratch *sc, const blk_slot *b,
                                const float *base, float *gbase, const size_t *o,
                                const float *atty, int M, float *dres, float *datty,
                                const float *const *wq) {
    int C = a->C, Hd = a->Hd;
    lin_back(sc->dfcg, gbase + o[BLK_FC2W], gbase + o[BLK_FC2B], dres, b->fcg,
             base + o[BLK_FC2W], wq ? wq[3] : NULL, M, Hd, C);
    gelu_backward_inplace(sc->dfcg, b->fch, (size_t)M * Hd);
    lin_back(sc->dln, gbase + o[BLK_FC1W], gbase + o[BLK_FC1B], sc->dfcg, b->ln2,
             base + o[BLK_FC1W], wq ? wq[2] : NULL, M, C, Hd);
    layernorm_backward(dres, gbase + o[BLK_LN2W], gbase + o[BLK_LN2B], sc->dln, b->mid,
                       base + o[BLK_LN2W], b->ln2m, b->ln2r, M, C);
    lin_back(datty, gbase + o[BLK_PROJW], gbase + o[BLK_PROJB], dres, atty,
             base + o[BLK_PROJW], wq ? wq[1] : NULL, M, C, C);
}

/* Backward of the block's input LayerNorm and qkv product over M rows (x:
 * the block's input), from d(qkv) in sc->dqkv: dres += d(x) */
static void qkv_backward(const vit_acts *a, vit_scratch *sc, const blk_slot *b,
                         const float *base, float *gbase, const size_t *o, const float *x,
                         int M, float *dres, const float *const *wq) {
    int C = a->C;
    lin_back(sc->dln, gbase + o[BLK_QKVW], gbase + o[BLK_QKVB], sc->dqkv, b->ln1,
             base + o[BLK_QKVW], wq ? wq[0] : NULL, M, C, 3 * C);
    layernorm_backward(dres, gbase + o[BLK_LN1W], gbase + o[BLK_LN1B], sc->dln, x,
                       base + o[BLK_LN1W], b->ln1m, b->ln1r, M, C);
}

/* Packs block o's four weights for the backward's d(inp) = d(out) W into
 * wpack (infer_pack_rows of each W (N, K)); wq[i] the i-th of blk_widx */
static void pack_block_back(const vit_acts *a, const float *base, const size_t *o,
                            const float *wq[4]) {
    int kn[4][2];
    blk_kn(a->C, a->Hd, kn);
    JEPA_ASSERT(blk_pack_floats_dir(a->C, a->Hd, 1) <= wpack_cap);
    JEPA_ASSERT(!omp_in_parallel()); /* one wpack per process (vit.h) */
    float *wp = wpack;
    for (int i = 0; i < 4; i++) {
        infer_pack_rows(wp, base + o[blk_widx[i]], kn[i][1], kn[i][0]);
        wq[i] = wp;
        wp += infer_pack_floats(kn[i][1], kn[i][0]);
    }
}

/* Sequences per chunk of the backward: about chunk_rows rows (at least
 * one sequence), S for one pass. Never the thread count's: the weight
 * gradients sum chunk after chunk, so their bits follow the partition. */
static int backward_seqs(int S, int T) {
    int rows = chunk_rows == VIT_CHUNK_AUTO ? VIT_CHUNK_ROWS : chunk_rows;
    if (rows <= 0) return S;
    int cs = rows / T > 0 ? rows / T : 1;
    return cs < S ? cs : S;
}

/* Block l's whole backward over sequences [s0, s0 + ns): dres (all rows) is
 * d(out) on entry and d(in) on return for those rows; the chunk's gradient
 * scratch (sc) stays in cache from one kernel to the next. */
static void block_backward_seqs(const vit_acts *a, vit_scratch *sc, const float *base,
                                float *gbase, const size_t *o, int l, int s0, int ns, int T,
                                float *dres, const float *const *wq) {
    int C = a->C, m = ns * T;
    size_t r0 = (size_t)s0 * T;
    blk_slot b = slot_rows(a, l, s0, T);
    float *dr = dres + r0 * C;
    block_rest_backward(a, sc, &b, base, gbase, o, b.atty, m, dr, sc->datty, wq);
    attention_backward(sc->dqkv, sc->datty, b.qkv, b.att, ns, T, C, a->H, sc->attn);
    qkv_backward(a, sc, &b, base, gbase, o, vit_res(a, l) + r0 * C, m, dr, wq);
}

/* The listed rows' d(mid) (dres, compact) to every row of the block: zeros
 * where no row was listed. */
static void rows_expand(const vit_acts *a, vit_scratch *sc, int M, float *dres) {
    size_t C = a->C, n = (size_t)a->nrows;
    memcpy(sc->dfcg, dres, sizeof(float) * n * C); /* dfcg: (Mmax, Hmax), Hmax >= C */
    memset(dres, 0, sizeof(float) * M * C);
    scatter_add_rows(dres, sc->dfcg, a->rows, a->nrows, (int)C);
}

void vit_stack_backward(jepa_model *m, vit_acts *a, vit_scratch *sc, const float *base,
                        float *gbase, const size_t *blk, int S, int T, float *dres) {
    int M = S * T, C = a->C, cs = ops_packed() ? backward_seqs(S, T) : S; /* as the forward */
    JEPA_ASSERT(a->keep && (size_t)M <= sc->Mmax);
    for (int l = a->L - 1; l >= 0; l--) {
        const size_t *o = blk + (size_t)l * BLK_N;
        if (a->rows && l == a->L - 1) { /* d(atty) compact in sc->dln */
            blk_slot b = slot_of(a, l);
            block_rest_backward(a, sc, &b, base, gbase, o, a->asub, a->nrows, dres, sc->dln,
                                NULL);
            rows_expand(a, sc, M, dres);
            const float *dao = sc->dln;
            if (a->permuted) { /* d(atty) to ascending order */
                gather_rows(sc->datty, sc->dln, a->lidx, a->nrows, C);
                dao = sc->datty;
            }
            attention_backward_rows(sc->dqkv, dao, b.qkv, b.att, S, T, C, a->H, a->qrows,
                                    a->nrows, sc->attn);
            qkv_backward(a, sc, &b, base, gbase, o, vit_res(a, l), M, dres, NULL);
        } else { /* chunks of sequences, each block's weights packed once */
            const float *wq[4], *const *pw = NULL;
            if (cs < S) {
                pack_block_back(a, base, o, wq);
                pw = wq;
            }
            for (int s0 = 0; s0 < S; s0 += cs)
                block_backward_seqs(a, sc, base, gbase, o, l, s0, S - s0 < cs ? S - s0 : cs, T,
                                    dres, pw);
        }
        if (m && gbase == m->grads) jepa_grads_ready(m, o[0]); /* block l's tensors are final */
    }
}
