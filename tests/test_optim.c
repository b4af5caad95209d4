/* test_optim.c - schedules, AdamW and EMA against hand-computed values, and
 * the RNG's reproducibility and distribution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepa.h"
#include "testutil.h"

#define M_PI_4_VAL 0.78539816339744830962

static const sched_cfg SC = {1e-3, 1e-6, 0.1, 0.04, 0.4, 0.996, 1.0};

static void test_lr_schedule(void) {
    sched_values v;
    int64_t total = 1000; /* warm-up: 100 steps */
    sched_at(&SC, 0, total, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-3 * 1 / 100.0, 1e-15);
    sched_at(&SC, 49, total, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-3 * 50 / 100.0, 1e-15);
    sched_at(&SC, 99, total, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-3, 1e-15);
    sched_at(&SC, 100, total, &v); /* cosine starts at the peak */
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-3, 1e-15);
    sched_at(&SC, 550, total, &v); /* half way through the cosine */
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-6 + 0.5 * (1e-3 - 1e-6), 1e-12);
    sched_at(&SC, 1000, total, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.lr, 1e-6, 1e-15);
    /* monotone decay after warm-up */
    double prev = 1;
    for (int s = 100; s <= 1000; s += 10) {
        sched_at(&SC, s, total, &v);
        CU_ASSERT(v.lr <= prev);
        prev = v.lr;
    }
}

static void test_wd_ema_schedule(void) {
    sched_values v;
    sched_at(&SC, 0, 1000, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.wd, 0.04, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(v.ema, 0.996, 1e-15);
    sched_at(&SC, 500, 1000, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.wd, 0.22, 1e-12); /* cosine midpoint */
    CU_ASSERT_DOUBLE_EQUAL(v.ema, 0.998, 1e-12);
    sched_at(&SC, 250, 1000, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.wd, 0.04 + 0.5 * 0.36 * (1 - cos(M_PI_4_VAL)), 1e-12);
    sched_at(&SC, 1000, 1000, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.wd, 0.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(v.ema, 1.0, 1e-12);
}

/* Two AdamW steps on a 2-tensor model, checked against the update written out
 * by hand in double (PyTorch's AdamW formula). */
static void test_adamw(void) {
    jepa_tensor t[2] = {{"w", 0, 3, 3, 1, 1}, {"b", 3, 2, 1, 2, 0}};
    float p[5] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f}, g[5], mm[5] = {0}, vv[5] = {0};
    jepa_model m;
    memset(&m, 0, sizeof m);
    m.tensors = t;
    m.ntensors = 2;
    m.nparams = 5;
    m.params = p;
    m.grads = g;
    m.adam_m = mm;
    m.adam_v = vv;
    double P[5], M[5] = {0}, V[5] = {0};
    for (int i = 0; i < 5; i++) P[i] = p[i];
    const double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const float grads[2][5] = {{0.1f, -0.2f, 0.3f, 0.0f, 1.0f}, {-0.05f, 0.4f, 0.1f, 0.2f, -1.0f}};
    for (int step = 1; step <= 2; step++) {
        memcpy(g, grads[step - 1], sizeof g);
        adamw_update(&m, lr, wd, b1, b2, eps, step);
        for (int i = 0; i < 5; i++) {
            double gi = grads[step - 1][i];
            if (i < 3) P[i] -= lr * wd * P[i]; /* decay on the matrix only */
            M[i] = b1 * M[i] + (1 - b1) * gi;
            V[i] = b2 * V[i] + (1 - b2) * gi * gi;
            double mh = M[i] / (1 - pow(b1, step)), vh = V[i] / (1 - pow(b2, step));
            P[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    for (int i = 0; i < 5; i++) CU_ASSERT_DOUBLE_EQUAL(p[i], P[i], 1e-6);
    /* first step with g = 0 on a bias leaves it untouched */
    CU_ASSERT(fabs(p[3] - 0.25) > 1e-4); /* it moved at step 2 */
}

static void test_ema(void) {
    float tgt[4] = {1, 2, 3, 4}, on[4] = {0, 0, 10, 4};
    ema_update(tgt, on, 4, 0.75f);
    CU_ASSERT_DOUBLE_EQUAL(tgt[0], 0.75, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(tgt[1], 1.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(tgt[2], 4.75, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(tgt[3], 4.0, 1e-7);
    ema_update(tgt, on, 4, 1.0f); /* momentum 1: frozen */
    CU_ASSERT_DOUBLE_EQUAL(tgt[2], 4.75, 1e-6);
}

static void test_rng(void) {
    jepa_rng a, b;
    rng_init(&a, rng_key(1, 2, 3));
    rng_init(&b, rng_key(1, 2, 3));
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(rng_u64(&a), rng_u64(&b));
    rng_init(&b, rng_key(1, 2, 4)); /* neighbouring key: another stream */
    int same = 0;
    for (int i = 0; i < 100; i++) same += rng_u64(&a) == rng_u64(&b);
    CU_ASSERT_EQUAL(same, 0);
    /* uniform mean/variance, normal mean/variance, below() range and balance */
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    int counts[7] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&a), z = rng_normal(&a);
        s += u; s2 += u * u; n1 += z; n2 += z * z;
        uint32_t k = rng_below(&a, 7);
        CU_ASSERT_FATAL(k < 7);
        counts[k]++;
    }
    CU_ASSERT(fabs(s / n - 0.5) < 0.005);
    CU_ASSERT(fabs(s2 / n - 1.0 / 3) < 0.005);
    CU_ASSERT(fabs(n1 / n) < 0.01);
    CU_ASSERT(fabs(n2 / n - 1) < 0.02);
    for (int k = 0; k < 7; k++) CU_ASSERT(abs(counts[k] - n / 7) < n / 7 / 20);
    for (int i = 0; i < 1000; i++) CU_ASSERT(fabs(rng_trunc_normal(&a, 0.5)) <= 1.0);
    /* shuffle is a permutation */
    uint32_t p[100], seen[100] = {0};
    for (int i = 0; i < 100; i++) p[i] = (uint32_t)i;
    rng_shuffle_u32(&a, p, 100);
    int moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[p[i]]++;
        moved += p[i] != (uint32_t)i;
    }
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT(moved > 50);
}

int main(void) {
    static const test_case cases[] = {
        {"lr_schedule", test_lr_schedule}, {"wd_ema_schedule", test_wd_ema_schedule},
        {"adamw", test_adamw},             {"ema", test_ema},
        {"rng", test_rng},
    };
    return test_main("optim", cases, (int)(sizeof cases / sizeof cases[0]));
}
