/* vit.h - the pieces every objective builds its networks from (private to
 * trainer/): the parameter-table builder, pre-LN transformer block stacks
 * (activations, forward, backward) and the name-keyed initialisation.
 *
 * A network is a run of named tensors in the model's one parameter buffer;
 * an objective adds its tensors with table_add / table_add_block and keeps
 * the returned offsets. A block stack runs S sequences of T tokens each as
 * one (S*T, C) matrix, forward and backward in chunks of whole sequences
 * (jepa.h, vit_set_chunk_rows).
 * Stack forwards and backwards share one packed-weight buffer: they run one
 * at a time, never from two threads or inside a parallel region. */
#ifndef JEPA_VIT_H
#define JEPA_VIT_H

#include "jepa.h"

/* tensors of one transformer block, in table order */
enum { BLK_LN1W, BLK_LN1B, BLK_QKVW, BLK_QKVB, BLK_PROJW, BLK_PROJB, BLK_LN2W, BLK_LN2B,
       BLK_FC1W, BLK_FC1B, BLK_FC2W, BLK_FC2B, BLK_N };

typedef struct {
    jepa_tensor *t;
    int n, cap;
    size_t off;
} table_builder;

/* Appends a (rows, cols) tensor; returns its offset in the buffer. */
size_t table_add(table_builder *tb, const char *name, int rows, int cols, int decay);
/* Appends the BLK_N tensors of block l named PREFIX.l.*; offsets into off[BLK_N]. */
void table_add_block(table_builder *tb, const char *prefix, int l, int C, int Hd, size_t *off);

/* Activations of a stack of L blocks over S sequences of up to T tokens.
 * keep = 1 keeps every layer for backward; keep = 0 (target encoder,
 * feature extraction) reuses one layer slot and two residual buffers.
 * causal = 1 masks attention to earlier-or-equal tokens of each sequence. */
typedef struct {
    int L, C, Hd, H, keep, causal;
    size_t Mmax, Amax; /* rows, attention floats per layer slot */
    float *res;        /* (nres, Mmax, C) residual stream; res[l] = input of block l */
    float *ln1, *ln1m, *ln1r, *qkv, *att, *atty, *resmid, *ln2, *ln2m, *ln2r, *fch, *fcg;
    float *xsub, *asub; /* (Mmax, C) the last block's input and attention rows, listed rows */
    const int *rows;    /* set by the last forward: the rows it finished, or NULL (all) */
    int nrows;
    const int *qrows;   /* the same rows ascending: rows itself, or srows */
    int permuted;       /* rows is not ascending: lidx and pos below hold */
    int *srows, *lidx;  /* (Mmax) rows sorted; list index of each sorted row */
    int *pos;           /* (Mmax) sorted place of each list entry */
    int64_t *skeys;     /* (Mmax) sort keys */
    int wpack_held;     /* holds vit.c's packed-weight buffer (until vit_acts_free) */
} vit_acts;

/* Backward scratch shared by the stacks of one objective, sized for the
 * largest (rows, width, hidden) among them. */
typedef struct {
    size_t Mmax;
    float *dfcg;        /* (Mmax, Hmax) d(MLP hidden), before and after the GELU */
    float *dln, *datty; /* (Mmax, Cmax) */
    float *dqkv;        /* (Mmax, 3 Cmax) */
    float *attn;        /* attention scratch, per thread */
} vit_scratch;

void vit_acts_init(vit_acts *a, int L, int S, int T, int C, int Hd, int H, int keep);
void vit_acts_free(vit_acts *a);
/* Input of block l (l = L: the stack's output). */
float *vit_res(const vit_acts *a, int l);

/* Also grows the process's weight-pack buffer to the blocks' weights
 * (ops_pack_reserve, jepa.h). */
void vit_scratch_init(vit_scratch *sc, size_t Mmax, int Cmax, int Hmax, int Tmax, int hdmax);
void vit_scratch_free(vit_scratch *sc);

/* Forward through L blocks over S sequences of T tokens; input in
 * vit_res(a, 0), output in vit_res(a, L). blk: (L, BLK_N) offsets into base. */
void vit_stack_forward(vit_acts *a, const float *base, const size_t *blk, int S, int T,
                       float *attn_scratch);
/* The same, where only rows[0..nrows) of the output are wanted (rows of the
 * (S*T, C) stack, any order, no repeats, not copied: they must live until
 * the backward; non-causal stacks): the last block computes every row's
 * keys and values, and attention queries, projection, MLP and residuals for
 * the listed rows only; vit_res(a, L) then holds nrows rows, compact, in
 * list order. Each listed row's output equals that of the full forward,
 * bitwise where the products are ours (ops_packed(): every kernel
 * row-wise), to rounding where cblas_sgemm runs them. The predictor reads
 * only its target rows and the EMA target only the target blocks' tokens,
 * so the last block skips the rest. */
void vit_stack_forward_rows(vit_acts *a, const float *base, const size_t *blk, int S, int T,
                            float *scratch, const int *rows, int nrows);
/* Backward through L blocks: dres (S*T, C) holds dL/d(output) on entry and
 * dL/d(input) on return. Parameter grads accumulate into gbase; when gbase
 * is m->grads, m->grad_ready is told as each block's gradients are final
 * (m NULL: never told, for a pass over weights another pass still adds to).
 * After vit_stack_forward_rows, dres holds on entry only the nrows listed
 * rows' d(output), compact in list order (dres must still have S*T rows). */
void vit_stack_backward(jepa_model *m, vit_acts *a, vit_scratch *sc, const float *base,
                        float *gbase, const size_t *blk, int S, int T, float *dres);

/* Tells m->grad_ready (if set) that grads[lo, nparams) are final. */
void jepa_grads_ready(jepa_model *m, size_t lo);

/* Initialises every tensor of m->tensors by its name (I-JEPA's recipe:
 * trunc-normal(0.02) matrices, output projections rescaled by depth, unit
 * LayerNorm gains, zero biases, fan-in uniform patch embedding); tensor i
 * draws from rng_key(seed, 0x1417, i), so a table's init is reproducible. */
void vit_init_params(jepa_model *m, uint64_t seed);
/* Re-draws one named tensor (and its EMA copy, if an encoder tensor) by
 * kind, from the same per-tensor stream vit_init_params uses. Dies if no
 * tensor has that name. */
enum { VIT_INIT_ZERO, VIT_INIT_ONE, VIT_INIT_FANIN, VIT_INIT_TRUNC_NORMAL };
void vit_init_named(jepa_model *m, const char *name, uint64_t seed, int kind);
/* Allocates params, grads, Adam m/v (nparams each) and the EMA target
 * (nenc floats, none when nenc is 0) for the table m->tensors already holds;
 * leaves them zeroed. */
void jepa_params_alloc(jepa_model *m);
/* Frees what jepa_params_alloc allocated, the table and the position tables. */
void jepa_params_free(jepa_model *m);

#endif
