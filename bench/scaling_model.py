#!/usr/bin/env python3
"""scaling_model.py - the alpha-beta-gamma model of docs/scaling.md, fed by
bench/scaling.sh's output (key value lines, repeated once per round; the
median over rounds is used, and the minimum where said).

Step time of data-parallel SGD on p nodes, per-node batch b, gradient of M
bytes in k buckets (Hockney's alpha-beta model with Thakur, Rabenseifner and
Gropp's collective costs, "Optimization of Collective Communication
Operations in MPICH", IJHPCA 19(1), 2005, sections 2 and 4.4):

  compute   T_c(b)  = o + c*b                         (bench-step, least squares)
  ring      T_ar    = 2(p-1) k alpha + 2(p-1)/p M beta + (p-1)/p M gamma
  tree      T_ar    = 2 ceil(log2 p) (k alpha + M beta) + ceil(log2 p) M gamma
                      (binomial reduce, then binomial broadcast)
  exposed   E       = T_ar - min(f T_ar, h T_c(b))    (f: measured overlap
                      fraction; h: the backward's share of the step, the only
                      time a bucket can leave behind compute)
  step      T(p)    = T_c(b) + E
  efficiency at fixed global batch G (b = G/p): T_c(G) / (p T(p));
  at fixed per-node batch b: T_c(b) / T(p).

A node is one rank with the compute measured here on one core; SPEEDUP > 1
models nodes that many times faster (compute divided by it, the network as
given), the usual case: communication then dominates sooner.

usage: bench/scaling_model.py SCALING_OUTPUT [SPEEDUP (1)]  (prints markdown)
       bench/scaling_model.py --selftest  (hand-computed cases; exit 1 on a miss)
"""
import math
import statistics
import sys

BUCKET_BYTES = 4 * 1048576  # parallel.bucket_mb default (4)
# backward's share of the step, from bench-step's phase timers (docs/scaling.md):
# the window in which buckets can leave behind compute
H_BACKWARD = {"tiny": 0.45, "vits": 0.32}
NODES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def load(path):
    """key value lines -> {key: [values]}; bench-comm's sweep lines
    (NAME_sweep_bytes_B pingpong_us X allreduce_us Y min X' Y') -> under
    key (NAME, B): [(X, Y, X', Y'), ...], one tuple per round."""
    vals = {}
    for line in open(path):
        w = line.split()
        if len(w) == 2:
            try:
                vals.setdefault(w[0], []).append(float(w[1]))
            except ValueError:
                pass
        elif len(w) == 8 and "_sweep_bytes_" in w[0]:
            name, b = w[0].split("_sweep_bytes_")
            vals.setdefault((name, int(b)), []).append(tuple(float(w[i]) for i in (2, 4, 6, 7)))
    return vals


def sweep_alpha_beta(v, t):
    """alpha, beta (seconds, seconds per byte) of transport t's ping-pong from
    the sweep: per size the median over rounds of the per-round medians (and
    the minimum of the minima); the line through the smallest and the
    largest size (bench-comm's estimator). None when there is no sweep."""
    sizes = sorted(b for (name, b) in (k for k in v if isinstance(k, tuple)) if name == t)
    if len(sizes) < 2:
        return None
    m0, m1 = sizes[0], sizes[-1]
    out = []
    for idx, agg in ((0, statistics.median), (2, min), (1, statistics.median), (3, min)):
        t0 = agg(r[idx] for r in v[(t, m0)]) * 1e-6
        t1 = agg(r[idx] for r in v[(t, m1)]) * 1e-6
        beta = (t1 - t0) / (m1 - m0)
        out += [t0 - beta * m0, beta]
    return out  # pingpong median a, b; min a, b; allreduce median a, b; min a, b


def med(v, k):
    return statistics.median(v[k]) if k in v else float("nan")


def lo(v, k):
    return min(v[k]) if k in v else float("nan")


def fit_line(xs, ys):
    """Least squares y = o + c x; returns (o, c, largest relative error)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    c = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    o = my - c * mx
    err = max(abs(o + c * x - y) / y for x, y in zip(xs, ys))
    return o, c, err


def allreduce(alg, p, m, k, a, b, g):
    """Seconds for an all-reduce of m bytes in k buckets over p nodes."""
    if p == 1:
        return 0.0
    if alg == "ring":
        return 2 * (p - 1) * k * a + 2 * (p - 1) / p * m * b + (p - 1) / p * m * g
    lg = math.ceil(math.log2(p))
    if alg == "rabenseifner":  # reduce-scatter by recursive halving, allgather by doubling
        return 2 * lg * k * a + 2 * (p - 1) / p * m * b + (p - 1) / p * m * g
    return 2 * lg * (k * a + m * b) + lg * m * g


def step(tc, tar, f, h):
    return tc + tar - min(f * tar, h * tc)


def pct(x):
    return f"{100 * x:+.0f}%"


def main():
    v = load(sys.argv[1])
    out = []
    p = out.append
    # ---- compute
    comp = {}
    for name, batches in (("tiny", [8, 32, 64, 128]), ("vits", [8, 32])):
        xs = [b for b in batches if f"{name}_b{b}_ms_per_step" in v]
        ys = [med(v, f"{name}_b{b}_ms_per_step") * 1e-3 for b in xs]
        o, c, e = fit_line(xs, ys)
        params = med(v, f"{name}_b{xs[0]}_params")
        comp[name] = (o, c, 4 * params)
        p(f"compute_{name}: params {params:.0f} grad_bytes {4 * params:.0f} "
          f"o_ms {o * 1e3:.2f} c_ms_per_image {c * 1e3:.3f} fit_max_rel_err {e:.3f} "
          f"(batches {xs}, ms/step {[round(y * 1e3, 1) for y in ys]})")
    # ---- transports measured at 2 ranks
    nets = {}
    names = [k[: -len("_pingpong_alpha_us")] for k in v if isinstance(k, str) and k.endswith("_pingpong_alpha_us")
             and not k.startswith("min_") and not k[: -len("_pingpong_alpha_us")].endswith("_min")]
    for t in sorted(set(names), key=lambda x: ("shm", "tcp", "netns").index(x) if x in ("shm", "tcp", "netns") else 9):
        if f"{t}_pingpong_alpha_us" not in v:
            continue
        nets[t] = dict(
            a=med(v, f"{t}_pingpong_alpha_us") * 1e-6,
            b=med(v, f"{t}_pingpong_beta_ns_per_byte") * 1e-9,
            amin=lo(v, f"{t}_min_pingpong_alpha_us") * 1e-6,
            bmin=lo(v, f"{t}_min_pingpong_beta_ns_per_byte") * 1e-9,
            g=med(v, f"{t}_gamma_ns_per_byte") * 1e-9,
            blocking=med(v, f"{t}_blocking_ms") * 1e-3,
            f=med(v, f"{t}_overlap_fraction"),
            fit=med(v, f"{t}_pingpong_fit_max_rel_err"),
        )
        n = nets[t]
        ab = sweep_alpha_beta(v, t)
        if ab:  # re-derived from the sweep's times: medians over rounds, not of per-round fits
            n["a"], n["b"], n["amin"], n["bmin"] = ab[0], ab[1], ab[2], ab[3]
            n["ar_a"], n["ar_b"], n["ar_amin"], n["ar_bmin"] = ab[4], ab[5], ab[6], ab[7]
        p(f"net_{t}: alpha_us {n['a'] * 1e6:.2f} beta_ns_per_byte {n['b'] * 1e9:.4f} "
          f"(GB/s {1e-9 / n['b']:.2f}) min: alpha_us {n['amin'] * 1e6:.2f} beta_ns {n['bmin'] * 1e9:.4f} "
          f"gamma_ns {n['g'] * 1e9:.4f} fit_max_rel_err {n['fit']:.2f} overlap_f {n['f']:.2f}")
    # ---- check against this machine (2 ranks, tiny, global batch 128)
    o, c, mt = comp["tiny"]
    w1 = med(v, "w1_step_ms") * 1e-3
    scale = w1 / (o + c * 128)  # the trainer's step against bench-step's at batch 128
    tc64 = scale * (o + c * 64)
    p("")
    p("| 2 ranks over | all-reduce of the gradient: model (ring, ping-pong alpha/beta/gamma) | measured (bench-comm, blocking) | error "
      "| trainer step: model | measured | error | exposed wait: model | measured | speed-up over 1 rank: model | measured |")
    p("|---|---|---|---|---|---|---|---|---|---|---|")
    for t, n in nets.items():
        tar = allreduce("ring", 2, mt, 1, n["a"], n["b"], n["g"])
        tar_k = allreduce("ring", 2, mt, math.ceil(mt / BUCKET_BYTES), n["a"], n["b"], n["g"])
        for key, f, ta in ((f"w2_{t}", n["f"], tar_k), (f"w2_{t}_blocking", 0.0, tar)):
            if f"{key}_step_ms" not in v:
                continue
            ts = step(tc64, ta, f, H_BACKWARD["tiny"])
            ms, mw = med(v, f"{key}_step_ms") * 1e-3, med(v, f"{key}_wait_ms") * 1e-3
            label = t + (" (blocking)" if key.endswith("_blocking") else "")
            p(f"| {label} | {tar * 1e3:.2f} ms | {n['blocking'] * 1e3:.2f} ms | {pct(tar / n['blocking'] - 1)} "
              f"| {ts * 1e3:.0f} ms | {ms * 1e3:.0f} ms | {pct(ts / ms - 1)} | {(ts - tc64) * 1e3:.1f} ms | {mw * 1e3:.1f} ms "
              f"| {w1 / ts:.2f}x | {w1 / ms:.2f}x |")
    p("\n| 2 ranks over | all-reduce of the gradient, model from the ping-pong minima (ring) "
      "| the sweep's all-reduce minima, fitted, at M | error |")
    p("|---|---|---|---|")
    for t, n in nets.items():
        if f"{t}_min_allreduce_alpha_us" not in v:
            continue
        model = allreduce("ring", 2, mt, 1, n["amin"], n["bmin"], n["g"])
        if "ar_amin" in n:
            meas = n["ar_amin"] + n["ar_bmin"] * mt
        else:
            meas = lo(v, f"{t}_min_allreduce_alpha_us") * 1e-6 + lo(v, f"{t}_min_allreduce_beta_ns_per_byte") * 1e-9 * mt
        p(f"| {t} | {model * 1e3:.2f} ms | {meas * 1e3:.2f} ms | {pct(model / meas - 1)} |")
    algs = [t for t in nets if f"{t}_ring_blocking_ms" in v]
    if algs:
        p("\n| 2 ranks between the namespaces: gradient all-reduce, Open MPI algorithm forced | model | measured | error |")
        p("|---|---|---|---|")
    for t in algs:
        n = nets[t]
        a, b, g = n["amin"], n["bmin"], n["g"]
        for name, key, model in (("ring", "ring", 2 * a + mt * b + mt * g / 2),
                                 ("tree (reduce + broadcast)", "tree", 2 * a + 2 * mt * b + mt * g),
                                 ("recursive doubling", "recdbl", a + mt * b + mt * g)):
            ms = med(v, f"{t}_{key}_blocking_ms") * 1e-3
            p(f"| {t}: {name} | {model * 1e3:.2f} ms | {ms * 1e3:.2f} ms | {pct(model / ms - 1)} |")
    p(f"\n(1 rank: trainer step {w1 * 1e3:.0f} ms at batch 128; compute at batch 64 taken as {tc64 * 1e3:.0f} ms "
      f"= bench-step's o + 64c scaled by the trainer/bench-step ratio {scale:.2f}; "
      f"2-rank speed-up measured: shm {w1 / (med(v, 'w2_shm_step_ms') * 1e-3):.2f}x)")
    # ---- projections
    speed = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    comp = {k: (o / speed, c / speed, m) for k, (o, c, m) in comp.items()}
    p(f"\nProjections: node compute = measured / {speed:g}")
    # the overlap fraction over TCP: pooled median of every round's figure
    # over loopback, between the namespaces and shaped (one figure is noisy)
    fs = [x for t in nets if t != "shm" for x in v.get(f"{t}_overlap_fraction", [])]
    f_meas = statistics.median(fs) if fs else 0.0
    p(f"overlap_fraction over TCP: median {f_meas:.2f} of {len(fs)} figures {sorted(round(x, 2) for x in fs)}")
    g = statistics.median([x for t in nets for x in v.get(f"{t}_gamma_ns_per_byte", [])]) * 1e-9
    # nominal networks (the links measured here are memory copies, and
    # loaded): Ethernet with TCP, and a modern cluster fabric
    projected = {"10 Gbit/s, 50 us": (50e-6, 0.8e-9, g), "100 Gbit/s, 5 us": (5e-6, 0.08e-9, g)}
    cross = []
    for model, (o, c, m) in comp.items():
        k = math.ceil(m / BUCKET_BYTES)
        h = H_BACKWARD[model]
        for netname, (a, b, g) in projected.items():
            p(f"\n{model}, {netname} (alpha {a * 1e6:.1f} us, beta {b * 1e9:.3f} ns/B): M = {m / 1e6:.1f} MB "
              f"in k = {k} buckets of 4 MiB, f = {f_meas:.2f}, h = {h}\n")
            p("| nodes | global 2048: batch/node | compute ms | ring ms | tree ms | efficiency ring / tree "
              "| 64 per node: step ms (best) | comm share | efficiency ring / tree |")
            p("|---|---|---|---|---|---|---|---|---|")
            first = {}
            for q in NODES:
                r_ar = allreduce("ring", q, m, k, a, b, g)
                t_ar = allreduce("tree", q, m, k, a, b, g)
                tg = o + c * 2048 / q
                eg = [(o + c * 2048) / (q * step(tg, x, f_meas, h)) for x in (r_ar, t_ar)]
                tw = o + c * 64
                sw = [step(tw, x, f_meas, h) for x in (r_ar, t_ar)]
                ew = [tw / x for x in sw]
                best = min(sw)
                p(f"| {q} | {2048 / q:g} | {tg * 1e3:.1f} | {r_ar * 1e3:.1f} | {t_ar * 1e3:.1f} "
                  f"| {eg[0]:.2f} / {eg[1]:.2f} | {best * 1e3:.1f} | {(best - tw) / best:.2f} "
                  f"| {ew[0]:.2f} / {ew[1]:.2f} |")
                for mode, tc in (("global 2048", tg), ("64 per node", tw)):
                    for alg, x in (("ring", r_ar), ("tree", t_ar)):
                        exp = step(tc, x, f_meas, h) - tc
                        if exp >= tc and (mode, alg) not in first:
                            first[(mode, alg)] = q
            for (mode, alg) in (("global 2048", "ring"), ("global 2048", "tree"),
                                ("64 per node", "ring"), ("64 per node", "tree")):
                cross.append((model, netname, mode, alg, first.get((mode, alg), "> 1024")))
    p("\nExposed communication >= compute from (nodes):\n")
    p("| model | network | batch | ring | tree |")
    p("|---|---|---|---|---|")
    for i in range(0, len(cross), 2):
        a, b = cross[i], cross[i + 1]
        p(f"| {a[0]} | {a[1]} | {a[2]} | {a[4]} | {b[4]} |")
    # ---- the remedies at 1024 nodes, 10 Gbit/s, 64 per node
    a, b, g = projected["10 Gbit/s, 50 us"]
    p("\nRemedies at 1024 nodes, 10 Gbit/s, 64 images per node per micro-batch:\n")
    p("| model | buckets | algorithm | accumulation | all-reduce ms | step ms | efficiency |")
    p("|---|---|---|---|---|---|---|")
    for model, (o, c, m) in comp.items():
        h = H_BACKWARD[model]
        for mib, alg, acc in ((4, "best of ring/tree", 1), (1, "best of ring/tree", 1), (64, "best of ring/tree", 1),
                              (4, "rabenseifner", 1), (64, "rabenseifner", 1), (4, "best of ring/tree", 4),
                              (64, "rabenseifner", 4), (64, "rabenseifner", 16)):
            kk = math.ceil(m / (mib * 1048576))
            algs = ["ring", "tree"] if alg.startswith("best") else [alg]
            tar = min(allreduce(x, 1024, m, kk, a, b, g) for x in algs)
            # accumulation: acc micro-batches, one all-reduce; only the last
            # micro-batch's backward can hide it
            tc = o + acc * c * 64
            st = step(tc, tar, f_meas, h * (o + c * 64) / tc)
            p(f"| {model} | {mib} MiB (k = {kk}) | {alg} | {acc} | {tar * 1e3:.1f} | {st * 1e3:.1f} | {tc / st:.2f} |")
    print("\n".join(out))


def selftest():
    """Hand-computed cases of every formula; exit 1 naming the first that fails."""
    a, b, g, m = 10e-6, 1e-9, 0.1e-9, 1e6
    cases = [
        ("ring p=1 is free", allreduce("ring", 1, m, 3, a, b, g), 0.0),
        ("ring p=2 k=1: 2a + Mb + Mg/2", allreduce("ring", 2, m, 1, a, b, g), 2 * a + m * b + m * g / 2),
        ("ring p=4 k=2: 12a + 1.5Mb + 0.75Mg", allreduce("ring", 4, m, 2, a, b, g), 12 * a + 1.5 * m * b + 0.75 * m * g),
        ("tree p=4 k=1: 4(a + Mb) + 2Mg", allreduce("tree", 4, m, 1, a, b, g), 4 * (a + m * b) + 2 * m * g),
        ("tree p=5 rounds log2 up to 3", allreduce("tree", 5, m, 1, a, b, g), 6 * (a + m * b) + 3 * m * g),
        ("rabenseifner p=8 k=2: 12a + 1.75Mb + 0.875Mg", allreduce("rabenseifner", 8, m, 2, a, b, g),
         12 * a + 1.75 * m * b + 0.875 * m * g),
        ("step hides f*T_ar when backward is long", step(1.0, 0.1, 0.5, 0.45), 1.05),
        ("step hides at most h*T_c", step(0.1, 1.0, 0.9, 0.5), 1.05),
        ("fit_line recovers o", fit_line([8, 32, 64], [0.1 + 0.01 * x for x in (8, 32, 64)])[0], 0.1),
        ("fit_line recovers c", fit_line([8, 32, 64], [0.1 + 0.01 * x for x in (8, 32, 64)])[1], 0.01),
    ]
    v = {("x", 8): [(10.0, 0, 5.0, 0), (30.0, 0, 6.0, 0), (20.0, 0, 7.0, 0)],
         ("x", 8 + 1000): [(1020.0, 0, 1005.0, 0)] * 3}
    ab = sweep_alpha_beta(v, "x")
    cases += [("sweep alpha: median of the 8-byte times", ab[0] + ab[1] * 8, 20e-6),
              ("sweep beta: (t_max - t_min) / (m_max - m_min)", ab[1], 1e-6),
              ("sweep min beta from the minima", ab[3], 1e-6)]
    for name, got, want in cases:
        if abs(got - want) > 1e-12 + 1e-9 * abs(want):
            print(f"scaling_model selftest: {name}: got {got!r}, want {want!r}")
            return 1
    print(f"scaling_model selftest: {len(cases)} cases passed")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        sys.exit(selftest())
    main()
