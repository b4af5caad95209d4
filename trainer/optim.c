/* optim.c - AdamW, the EMA target update and the schedules (learning rate:
 * linear warm-up then cosine; weight decay: cosine ramp start->end; EMA
 * momentum: linear ramp start->end). Each is one loop over the flat buffer. */
#include <math.h>

#include "jepa.h"

#define JEPA_PI 3.14159265358979323846

void sched_at(const sched_cfg *c, int64_t step, int64_t total, sched_values *out) {
    if (total < 1) total = 1;
    if (step > total) step = total;
    int64_t warm = (int64_t)llround(c->warmup_frac * (double)total);
    if (step < warm) {
        out->lr = c->lr * (double)(step + 1) / (double)warm;
    } else {
        double span = (double)(total - warm), p = span > 0 ? (double)(step - warm) / span : 1.0;
        out->lr = c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(JEPA_PI * p));
    }
    double p = (double)step / (double)total;
    out->wd = c->wd_start + 0.5 * (c->wd_end - c->wd_start) * (1.0 - cos(JEPA_PI * p));
    out->ema = c->ema_start + (c->ema_end - c->ema_start) * p;
}

void adamw_update(jepa_model *m, double lr, double wd, double beta1, double beta2, double eps,
                  int64_t t) {
    /* PyTorch AdamW: decoupled decay p -= lr*wd*p, bias-corrected moments */
    float b1 = (float)beta1, b2 = (float)beta2;
    float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)t)));
    float c2 = (float)(1.0 / (1.0 - pow(beta2, (double)t)));
    float flr = (float)lr, feps = (float)eps;
    /* one parallel region for all tensors (most are under 65536 floats, and
     * a region per tensor cost more than its work); every element is its
     * own, so the split does not change a bit */
    #pragma omp parallel
    for (int i = 0; i < m->ntensors; i++) {
        const jepa_tensor *ts = &m->tensors[i];
        float *p = m->params + ts->offset, *mm = m->adam_m + ts->offset;
        float *vv = m->adam_v + ts->offset;
        const float *g = m->grads + ts->offset;
        float decay = ts->decay ? (float)(lr * wd) : 0.0f;
        long n = (long)ts->numel;
        #pragma omp for schedule(static) nowait
        for (long k = 0; k < n; k++) {
            float gk = g[k];
            float mk = b1 * mm[k] + (1.0f - b1) * gk;
            float vk = b2 * vv[k] + (1.0f - b2) * gk * gk;
            mm[k] = mk;
            vv[k] = vk;
            p[k] -= decay * p[k];
            p[k] -= flr * (mk * c1) / (sqrtf(vk * c2) + feps);
        }
    }
}

void ema_update(float *target, const float *online, size_t n, float ema) {
    float a = ema, b = 1.0f - ema;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < n; k++) target[k] = a * target[k] + b * online[k];
}

#define GRAD_NORM_PARTS 64
#define GRAD_NORM_LANES 8

/* one part, eight interleaved double lanes (they vectorise; order fixed) */
static double sq_sum_part(const float *g, size_t n) {
    double acc[GRAD_NORM_LANES] = {0};
    size_t i = 0;
    for (; i + GRAD_NORM_LANES <= n; i += GRAD_NORM_LANES)
        for (int k = 0; k < GRAD_NORM_LANES; k++) acc[k] += (double)g[i + k] * g[i + k];
    for (; i < n; i++) acc[0] += (double)g[i] * g[i];
    double s = 0.0;
    for (int k = 0; k < GRAD_NORM_LANES; k++) s += acc[k];
    return s;
}

double grads_sq_norm(const float *g, size_t n, size_t *bad) {
    double part[GRAD_NORM_PARTS];
    size_t per = (n + GRAD_NORM_PARTS - 1) / GRAD_NORM_PARTS;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int p = 0; p < GRAD_NORM_PARTS; p++) {
        size_t lo = (size_t)p * per < n ? (size_t)p * per : n;
        size_t hi = lo + per < n ? lo + per : n;
        part[p] = sq_sum_part(g + lo, hi - lo);
    }
    double s = 0.0;
    for (int p = 0; p < GRAD_NORM_PARTS; p++) s += part[p];
    if (isfinite(s) || !bad) return s;
    *bad = 0;
    for (size_t i = 0; i < n; i++) *bad += !isfinite(g[i]);
    return s;
}
