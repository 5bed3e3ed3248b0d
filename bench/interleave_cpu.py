#!/usr/bin/env python3
"""Emily and PyTorch in one process on the CPU, call by call: a second
view of the memory-bound rows of bench/run_cpu.py.

This VM's memory bandwidth switches between a fast and a slow mode for
seconds at a time (a 2-thread torch.sum of 64M f32 takes 4.7 or 8-9 ms).
run_cpu.py runs the engine and its peers in separate processes, seconds
apart; here each repetition calls Emily and torch back to back (in
alternating order) on the same input bytes, and the result is the median
over repetitions of the per-repetition ratio, so the bandwidth mode of
the moment cancels.

Two things would otherwise bias the result, both measured on this VM:
  - torch's OpenMP threads spin for milliseconds after each call and take
    a core from Emily's next call in the same process (Emily's sum then
    read 0.90x instead of 1.00x). The script sets OMP_WAIT_POLICY=PASSIVE
    (unless it is set) so they sleep; torch then pays a thread wake-up per
    call, tens of microseconds (Emily's pool spins 200 us, then sleeps).
  - pausing between calls (--gap-ms) lets the host deschedule the idle
    vCPUs, and every call after a pause ran up to 2x slower; the default
    is no pause.

Emily is reached through its C API (libemily.so, ctypes); its time covers
building the op, em_eval and releasing the result, as in bench_cpu.

  python3 bench/interleave_cpu.py path/to/libemily.so [--reps N]
          [--torch-threads T] [--out FILE.md]
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads

import argparse
import ctypes as C
import platform
import statistics
import time

import numpy as np
import torch

from emily_ctypes import F32, checker, load, write_report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--gap-ms", type=float, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    lib = load(args.lib)
    check = checker(lib)
    P = C.c_void_p
    cpu = lib.em_cpu()

    def to_em(x):
        out = P()
        check(lib.em_array_from_data(C.byref(out), F32, x.ndim,
                                     (C.c_int64 * x.ndim)(*x.shape),
                                     x.ctypes.data, x.nbytes, cpu))
        check(lib.em_eval(C.byref(out), 1))
        return out

    def em_call(build):
        out = P()
        t0 = time.perf_counter()
        check(build(C.byref(out)))
        check(lib.em_eval(C.byref(out), 1))
        lib.em_array_release(out)
        return (time.perf_counter() - t0) * 1e3

    def pt_call(fn):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def em_result(build, shape):
        out = P()
        check(build(C.byref(out)))
        check(lib.em_eval(C.byref(out), 1))
        n = int(np.prod(shape))
        got = np.ctypeslib.as_array((C.c_float * n).from_address(lib.em_array_data(out)))
        got = got.reshape(shape).copy()
        lib.em_array_release(out)
        return got

    rows = []

    def case(name, build, fn, shape):
        want = fn().numpy().astype(np.float64)
        got = em_result(build, shape).astype(np.float64)
        err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
        sides = [("emily", lambda: em_call(build)), ("torch", lambda: pt_call(fn))]
        for _ in range(3):
            for _, f in sides:
                f()
        t = {k: [] for k, _ in sides}
        for r in range(args.reps):
            order = sides[r % 2:] + sides[:r % 2]
            for k, f in order:
                if args.gap_ms:
                    time.sleep(args.gap_ms / 1e3)
                t[k].append(f())
        ratio = [p / e for p, e in zip(t["torch"], t["emily"])]
        q = statistics.quantiles(ratio, n=4)
        row = (name, statistics.median(t["emily"]), statistics.median(t["torch"]),
               statistics.median(ratio), q[0], q[2], sum(x >= 1 for x in ratio) / len(ratio), err)
        rows.append(row)
        print(f"{name}: Emily {row[1]:.3f} ms, torch {row[2]:.3f} ms; torch/Emily per "
              f"repetition: median {row[3]:.3f} (quartiles {row[4]:.3f}-{row[5]:.3f}), Emily "
              f"faster in {row[6]:.0%}; rel err {err:.1e}", flush=True)

    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, 1 << 26).astype(np.float32)
    ex, tx = to_em(x), torch.from_numpy(x)
    case("sum of 64M f32", lambda o: lib.em_sum(o, ex, 0, None, False), lambda: tx.sum(), ())
    lib.em_array_release(ex)
    x = rng.standard_normal((2048, 2048)).astype(np.float32)
    ex, tx = to_em(x), torch.from_numpy(x)
    case("softmax 2048x2048 f32", lambda o: lib.em_softmax(o, ex, -1),
         lambda: torch.softmax(tx, -1), x.shape)
    lib.em_array_release(ex)
    x = rng.standard_normal((4096, 1024)).astype(np.float32)
    w = rng.standard_normal(1024).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    ex, ew, eb = to_em(x), to_em(w), to_em(b)
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    case("layer_norm 4096x1024 f32", lambda o: lib.em_layer_norm(o, ex, ew, eb, 1e-5),
         lambda: torch.nn.functional.layer_norm(tx, (1024,), tw, tb, 1e-5), x.shape)
    for a in (ex, ew, eb):
        lib.em_array_release(a)

    md = [f"Interleaved in one process (bench/interleave_cpu.py; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; "
          f"torch {torch.__version__} at {args.torch_threads} thread(s), Emily at "
          f"{os.environ.get('EMILY_NUM_THREADS', 'all')}; OMP_WAIT_POLICY="
          f"{os.environ['OMP_WAIT_POLICY']}). {args.reps} repetitions, each an Emily call "
          f"and a torch call in alternating order, {args.gap_ms:g} ms apart; "
          "the ratio torch / Emily is taken per repetition (above 1: Emily faster).",
          "",
          "| case | Emily ms | torch ms | torch / Emily (median) | quartiles "
          "| Emily faster in | rel. err vs torch |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, me, mp, rm, q1, q3, win, err in rows:
        md.append(f"| {n} | {me:.3f} | {mp:.3f} | {rm:.3f} | {q1:.3f}-{q3:.3f} | "
                  f"{win:.0%} | {err:.1e} |")
    write_report(md, args.out)


if __name__ == "__main__":
    main()
