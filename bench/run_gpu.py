#!/usr/bin/env python3
"""Emily's CUDA backend against PyTorch on the GPU machine.

Runs engine/bench/bench_cuda (its CSV: case,ms,rate,unit), times the same
cases with PyTorch, eager mode (PyTorch runs gelu(x*a+b) as three kernels),
and writes a Markdown table naming the card (nvidia-smi).

PyTorch is timed two ways, median of the repetitions after warm-ups:
  - as bench_cuda times Emily: wall clock around BATCH back-to-back calls
    and one synchronize, divided by BATCH (BATCH = EMILY_BENCH_BATCH, 5);
    the ratios in the table use this, so both sides pay the same host and
    synchronisation costs and run their kernels back to back;
  - CUDA events around one call (the GPU idles between calls), shown for
    reference.

  python3 bench/run_gpu.py --bench build/bench_cuda --out bench/results/gpu.md
  python3 bench/run_gpu.py --emily-csv emily.csv --out gpu.md   # reuse a run
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import time

import torch


BATCH = int(os.environ.get("EMILY_BENCH_BATCH", "5"))


def timed_events(fn, warm=3, reps=20):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def timed_batch(fn, warm=3, reps=20):
    """bench_cuda's protocol: BATCH calls, one synchronize, wall clock."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        keep = []
        t0 = time.perf_counter()
        for _ in range(BATCH):
            keep.append(fn())  # results stay alive, as Emily's BATCH outputs do
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e3 / BATCH)
        del keep
    ts.sort()
    return ts[len(ts) // 2]


def timed(fn, warm=3, reps=20):
    """(ms by bench_cuda's protocol, ms by CUDA events around one call)"""
    return timed_batch(fn, warm, reps), timed_events(fn, warm, reps)


def torch_cases():
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {}
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*shape, dtype=torch.float32):
        return (torch.rand(*shape, device=dev, generator=g) * 2 - 1).to(dtype)

    x = rnd(1 << 28)
    ms = timed(lambda: x.clone())
    out["copy_1GiB_f32"] = (ms, 2 * 4 * x.numel(), "GB/s")
    del x
    x = rnd(1 << 26)
    ms = timed(lambda: torch.nn.functional.gelu(x * 1.25 + -0.5))
    out["gelu_affine_64M_f32"] = (ms, 2 * 4 * x.numel(), "GB/s")
    del x
    x = rnd(8192, 8192)
    ms = timed(lambda: torch.softmax(x, -1))
    out["softmax_8192x8192_f32"] = (ms, 2 * 4 * x.numel(), "GB/s")
    del x
    x = rnd(16384, 4096, dtype=torch.bfloat16)
    w, bb = rnd(4096, dtype=torch.bfloat16), rnd(4096, dtype=torch.bfloat16)
    nb = 2 * 2 * x.numel()
    ms = timed(lambda: torch.nn.functional.layer_norm(x, (4096,), w, bb, 1e-5))
    out["layer_norm_16384x4096_bf16"] = (ms, nb, "GB/s")
    if hasattr(torch.nn.functional, "rms_norm"):
        ms = timed(lambda: torch.nn.functional.rms_norm(x, (4096,), w, 1e-6))
        out["rms_norm_16384x4096_bf16"] = (ms, nb, "GB/s")
    del x
    x = rnd(1 << 28)
    ms = timed(lambda: x.sum())
    out["sum_256M_f32"] = (ms, 4 * x.numel(), "GB/s")
    del x
    a, b = rnd(8192, 8192, dtype=torch.bfloat16), rnd(8192, 8192, dtype=torch.bfloat16)
    ms = timed(lambda: a @ b, reps=10)
    out["matmul_bf16_8192"] = (ms, 2 * 8192**3 / 1e3, "TFLOP/s")
    a, b = rnd(4096, 4096), rnd(4096, 4096)
    ms = timed(lambda: a @ b, reps=10)
    out["matmul_f32_4096"] = (ms, 2 * 4096**3 / 1e3, "TFLOP/s")
    del a, b
    torch.backends.cudnn.benchmark = True  # PyTorch's best cuDNN algorithm
    x, k = rnd(32, 64, 56, 56), rnd(64, 64, 3, 3)
    ms = timed(lambda: torch.nn.functional.conv2d(x, k, padding=1))
    out["conv2d_3x3_32x64x56x56_f32"] = (ms, 2 * 32 * 64 * 56 * 56 * 64 * 9 / 1e3,
                                         "TFLOP/s")
    del x, k
    x = rnd(1 << 24)
    ms = timed(lambda: torch.sort(x))
    out["sort_16M_f32"] = (ms, 2 * 4 * x.numel(), "GB/s")
    del x
    torch.cuda.empty_cache()
    return out


def compiled_gelu():
    """gelu(x*a+b) on 64M f32 through torch.compile and jax.jit (one fused
    kernel each, like Emily's); {name: ms}, an entry per peer that ran."""
    res = {}
    n = 1 << 26
    try:
        x = torch.rand(n, device="cuda") * 2 - 1
        f = torch.compile(lambda x: torch.nn.functional.gelu(x * 1.25 + -0.5))
        res["torch.compile"] = timed(lambda: f(x))[0]
        del x
        torch.cuda.empty_cache()
    except Exception as e:  # noqa: BLE001 - report and go on
        res["torch.compile"] = f"failed: {type(e).__name__}: {str(e)[:120]}"
    try:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        import jax
        import jax.numpy as jnp
        g = jax.jit(lambda x: jax.nn.gelu(x * 1.25 + -0.5, approximate=False))
        x = jax.random.uniform(jax.random.PRNGKey(0), (n,), jnp.float32, -1, 1)
        for _ in range(3):
            g(x).block_until_ready()
        ts = []
        for _ in range(20):  # bench_cuda's protocol: BATCH calls, then wait
            t0 = time.perf_counter()
            ys = [g(x) for _ in range(BATCH)]
            for y in ys:
                y.block_until_ready()
            ts.append((time.perf_counter() - t0) * 1e3 / BATCH)
            del ys
        ts.sort()
        res["jax.jit"] = ts[len(ts) // 2]
        res["jax"] = jax.__version__
    except Exception as e:  # noqa: BLE001
        res["jax.jit"] = f"failed: {type(e).__name__}: {str(e)[:120]}"
    return res


def parse_emily(text):
    emily, unsupported = {}, []
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0] == "case":
            continue
        if row[1] == "unsupported":
            unsupported.append(row[0])
        else:
            emily[row[0]] = (float(row[1]), float(row[2]), row[3])
    return emily, unsupported


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench_cuda")
    ap.add_argument("--emily-csv", help="reuse one bench_cuda run (one round)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate bench_cuda and PyTorch this many times")
    ap.add_argument("--out", default="bench/results/gpu.md")
    args = ap.parse_args()
    # Rounds alternate the two sides, so a drift of the card's clocks
    # (matmul bf16 runs at its power limit) lands on both.
    rounds = []  # [(emily, torch)] per round
    unsupported = []
    for r in range(1 if args.emily_csv else args.rounds):
        if args.emily_csv:
            text = open(args.emily_csv).read()
        else:
            text = subprocess.run([args.bench], check=True, stdout=subprocess.PIPE,
                                  text=True).stdout
        emily, unsupported = parse_emily(text)
        rounds.append((emily, torch_cases()))
    work = {c: (w, u) for c, (_, w, u) in rounds[0][1].items()}
    pt, emily, ratios = {}, {}, {}
    for case, (w, unit) in work.items():
        pt[case] = ((median([t[case][0][0] for _, t in rounds]),
                     median([t[case][0][1] for _, t in rounds])), w, unit)
        if all(case in e for e, _ in rounds):
            ems = median([e[case][0] for e, _ in rounds])
            emily[case] = (ems, median([e[case][1] for e, _ in rounds]), unit)
            ratios[case] = [e[case][0] / t[case][0][0] for e, t in rounds]
    fused = compiled_gelu()
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
         "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# GPU benchmark: Emily (CUDA backend) vs PyTorch",
        "",
        f"Card: {smi} (nvidia-smi). PyTorch {torch.__version__}, CUDA {torch.version.cuda}.",
        "",
        f"{len(rounds)} round(s), each running all of Emily's cases and then all of",
        "PyTorch's; the table shows each side's median over the rounds, and",
        "\"per round\" the lowest and highest Emily / PyTorch time of one round.",
        "",
        f"Both sides timed alike: wall clock around {BATCH} back-to-back ops and one",
        "stream synchronize, divided by the batch, median of the repetitions",
        "(Emily: engine/bench/bench_cuda, em_eval of the batch; PyTorch: the",
        "calls, then torch.cuda.synchronize()). \"PyTorch events\" is PyTorch timed",
        "with CUDA events around one call instead, for reference. PyTorch runs",
        "eager (gelu(x*a+b) is three kernels there, one fused kernel in Emily);",
        "f32 matmul without TF32 in both; PyTorch's conv uses cudnn.benchmark.",
        "Rates count each input read and each output written once. \"x copy",
        "floor\" (memory-bound rows) is Emily's time over the time a device copy",
        "of the same bytes takes at Emily's measured copy rate.",
        "",
        "| case | Emily ms | Emily rate | PyTorch ms | PyTorch rate | Emily / PyTorch time | per round | x copy floor | PyTorch events ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    memory_bound = ("copy_", "gelu_", "softmax_", "layer_norm_", "rms_norm_", "sum_")
    copy_rate = emily.get("copy_1GiB_f32", (0, 0, ""))[1]
    for case, ((pms, pev), work, unit) in pt.items():
        prate = work / pms / 1e6
        if case in emily:
            ems, erate, _ = emily[case]
            floor = (f"{copy_rate / erate:.2f}" if copy_rate and case.startswith(memory_bound)
                     else "")
            rr = ratios[case]
            lines.append(f"| {case} | {ems:.3f} | {erate:.1f} {unit} | {pms:.3f} | "
                         f"{prate:.1f} {unit} | {ems / pms:.2f} | {min(rr):.2f}-{max(rr):.2f} | "
                         f"{floor} | {pev:.3f} |")
        else:
            why = "unsupported" if case in unsupported else "not run"
            lines.append(f"| {case} | ({why}) | | {pms:.3f} | {prate:.1f} {unit} | | | | "
                         f"{pev:.3f} |")
    if len(rounds) > 1:
        lines += ["", "Each round (ms, Emily / PyTorch):", ""]
        for case in ratios:
            lines.append(f"- {case}: " + ", ".join(
                f"{e[case][0]:.3f} / {t[case][0][0]:.3f}" for e, t in rounds))
    lines += ["", "gelu(x*a+b), 64M f32, fused by each framework (ms):", ""]
    if "gelu_affine_64M_f32" in emily:
        lines.append(f"- Emily (one NVRTC kernel): {emily['gelu_affine_64M_f32'][0]:.3f}")
    for name in ("torch.compile", "jax.jit"):
        v = fused.get(name)
        lines.append(f"- {name}: {v:.3f}" if isinstance(v, float) else f"- {name}: {v}")
    if "jax" in fused:
        lines.append(f"- (JAX {fused['jax']}; all three timed as the table is)")
    md = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
