#!/usr/bin/env python3
"""Emily's CUDA backend against PyTorch on the GPU machine.

Runs engine/bench/bench_cuda (its CSV: case,ms,rate,unit), times the same
cases with PyTorch (CUDA events, median of the repetitions after warm-ups,
eager mode: PyTorch runs gelu(x*a+b) as three kernels), and writes a
Markdown table naming the card (nvidia-smi).

  python3 bench/run_gpu.py --bench build/bench_cuda --out bench/results/gpu.md
  python3 bench/run_gpu.py --emily-csv emily.csv --out gpu.md   # reuse a run
"""
import argparse
import csv
import io
import subprocess
import sys

import torch


def timed(fn, warm=3, reps=20):
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
    out["copy_1GiB_f32"] = (ms, 2 * 4 * x.numel() / ms / 1e6, "GB/s")
    del x
    x = rnd(1 << 26)
    ms = timed(lambda: torch.nn.functional.gelu(x * 1.25 + -0.5))
    out["gelu_affine_64M_f32"] = (ms, 2 * 4 * x.numel() / ms / 1e6, "GB/s")
    del x
    x = rnd(8192, 8192)
    ms = timed(lambda: torch.softmax(x, -1))
    out["softmax_8192x8192_f32"] = (ms, 2 * 4 * x.numel() / ms / 1e6, "GB/s")
    del x
    x = rnd(1 << 28)
    ms = timed(lambda: x.sum())
    out["sum_256M_f32"] = (ms, 4 * x.numel() / ms / 1e6, "GB/s")
    del x
    a, b = rnd(8192, 8192, dtype=torch.bfloat16), rnd(8192, 8192, dtype=torch.bfloat16)
    ms = timed(lambda: a @ b, reps=10)
    out["matmul_bf16_8192"] = (ms, 2 * 8192**3 / ms / 1e9, "TFLOP/s")
    a, b = rnd(4096, 4096), rnd(4096, 4096)
    ms = timed(lambda: a @ b, reps=10)
    out["matmul_f32_4096"] = (ms, 2 * 4096**3 / ms / 1e9, "TFLOP/s")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="build/bench_cuda")
    ap.add_argument("--emily-csv")
    ap.add_argument("--out", default="bench/results/gpu.md")
    args = ap.parse_args()
    if args.emily_csv:
        text = open(args.emily_csv).read()
    else:
        text = subprocess.run([args.bench], check=True, capture_output=True, text=True).stdout
    emily = {}
    for row in csv.DictReader(io.StringIO(text)):
        emily[row["case"]] = (float(row["ms"]), float(row["rate"]), row["unit"])
    pt = torch_cases()
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
         "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# GPU benchmark: Emily (CUDA backend) vs PyTorch",
        "",
        f"Card: {smi} (nvidia-smi). PyTorch {torch.__version__}, CUDA {torch.version.cuda}.",
        "",
        "Emily: engine/bench/bench_cuda, wall clock around em_eval of 5 independent",
        "copies of the graph (one stream synchronize), median of the repetitions.",
        "PyTorch: CUDA events around one call, median; eager mode (gelu(x*a+b) is",
        "three kernels there, one fused kernel in Emily); f32 matmul without TF32",
        "in both. Rates count each input read and each output written once.",
        "",
        "| case | Emily ms | Emily rate | PyTorch ms | PyTorch rate | Emily / PyTorch time |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case, (pms, prate, unit) in pt.items():
        if case in emily:
            ems, erate, _ = emily[case]
            lines.append(f"| {case} | {ems:.3f} | {erate:.1f} {unit} | {pms:.3f} | "
                         f"{prate:.1f} {unit} | {ems / pms:.2f} |")
        else:
            lines.append(f"| {case} | (not run) | | {pms:.3f} | {prate:.1f} {unit} | |")
    md = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
