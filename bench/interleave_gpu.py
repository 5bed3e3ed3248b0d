#!/usr/bin/env python3
"""Emily and PyTorch in one process on one GPU, alternating repetition by
repetition: the fairest comparison this project makes.

bench/run_gpu.py runs Emily (bench_cuda) and PyTorch in separate processes,
one after the other; the card's clocks then differ between the two sides
(matmul bf16 runs at the card's power limit, and a kernel's speed depends on
what ran just before it). Here each repetition times a batch of Emily ops and
then a batch of PyTorch ops on the same inputs (the same bytes: PyTorch's
random tensors copied into Emily), both as bench_cuda times them: wall
clock around BATCH back-to-back ops and one synchronize. Emily is reached
through its C API (libemily.so, ctypes); both use the card's default
context, each its own stream.

  python3 bench/interleave_gpu.py path/to/libemily.so [--out FILE.md]
"""
import argparse
import ctypes as C
import statistics
import time

import torch

from emily_ctypes import BF16, F32, Dev, checker, load, write_report

BATCH = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    lib = load(args.lib)
    P = C.c_void_p
    cuda0 = Dev(1, 0)

    check = checker(lib)

    def to_em(t, code):
        h = t.contiguous().cpu()
        raw = h.view(torch.int16 if h.element_size() == 2 else torch.int32).numpy().tobytes()
        out = P()
        check(lib.em_array_from_data(C.byref(out), code, t.dim(),
                                     (C.c_int64 * t.dim())(*t.shape), raw, len(raw), cuda0))
        return out

    def em_batch(build):
        outs = (P * BATCH)()
        for k in range(BATCH):
            check(build(C.cast(C.addressof(outs) + k * C.sizeof(P), C.POINTER(P))))
        t0 = time.perf_counter()
        check(lib.em_eval(outs, BATCH))
        ms = (time.perf_counter() - t0) * 1e3 / BATCH
        for k in range(BATCH):
            lib.em_array_release(outs[k])
        return ms

    def pt_batch(fn):
        t0 = time.perf_counter()
        keep = [fn() for _ in range(BATCH)]  # outputs stay alive, as Emily's do
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3 / BATCH
        del keep
        return ms

    rows = []

    def case(name, build, fn, reps=args.reps):
        for _ in range(3):
            em_batch(build)
            pt_batch(fn)
        e, p = [], []
        for _ in range(reps):
            e.append(em_batch(build))
            p.append(pt_batch(fn))
        me, mp = statistics.median(e), statistics.median(p)
        rows.append((name, me, mp, min(e), min(p)))
        print(f"{name}: Emily {me:.4f} ms, PyTorch {mp:.4f} ms, Emily / PyTorch {me / mp:.3f}",
              flush=True)

    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape, dtype=torch.float32):
        return (torch.rand(*shape, device="cuda", generator=g) * 2 - 1).to(dtype)

    x = rnd(1 << 28)
    ex = to_em(x, F32)
    case("copy_1GiB_f32", lambda o: lib.em_copy(o, ex), lambda: x.clone())
    case("sum_256M_f32", lambda o: lib.em_sum(o, ex, 0, None, False), lambda: x.sum())
    lib.em_array_release(ex)
    del x
    x = rnd(8192, 8192)
    ex = to_em(x, F32)
    case("softmax_8192x8192_f32", lambda o: lib.em_softmax(o, ex, -1),
         lambda: torch.softmax(x, -1))
    lib.em_array_release(ex)
    del x
    x = rnd(16384, 4096, dtype=torch.bfloat16)
    w, b = rnd(4096, dtype=torch.bfloat16), rnd(4096, dtype=torch.bfloat16)
    ex, ew, eb = to_em(x, BF16), to_em(w, BF16), to_em(b, BF16)
    case("layer_norm_16384x4096_bf16", lambda o: lib.em_layer_norm(o, ex, ew, eb, 1e-5),
         lambda: torch.nn.functional.layer_norm(x, (4096,), w, b, 1e-5))
    case("rms_norm_16384x4096_bf16", lambda o: lib.em_rms_norm(o, ex, ew, 1e-6),
         lambda: torch.nn.functional.rms_norm(x, (4096,), w, 1e-6))
    for a in (ex, ew, eb):
        lib.em_array_release(a)
    del x, w, b
    a, b = rnd(8192, 8192, dtype=torch.bfloat16), rnd(8192, 8192, dtype=torch.bfloat16)
    ea, eb = to_em(a, BF16), to_em(b, BF16)
    case("matmul_bf16_8192", lambda o: lib.em_matmul(o, ea, eb), lambda: a @ b)
    lib.em_array_release(ea)
    lib.em_array_release(eb)
    a, b = rnd(4096, 4096), rnd(4096, 4096)
    ea, eb = to_em(a, F32), to_em(b, F32)
    case("matmul_f32_4096", lambda o: lib.em_matmul(o, ea, eb), lambda: a @ b, reps=10)
    lib.em_array_release(ea)
    lib.em_array_release(eb)

    name = torch.cuda.get_device_name(0)
    md = [f"Interleaved in one process ({name}, PyTorch {torch.__version__}; "
          f"bench/interleave_gpu.py): {args.reps} repetitions, each a batch of {BATCH}",
          "Emily ops then a batch of PyTorch ops on the same inputs; medians (ms).",
          "matmul throughput ratio = PyTorch time / Emily time.", "",
          "| case | Emily ms | PyTorch ms | Emily / PyTorch time | best Emily / best PyTorch |",
          "| --- | ---: | ---: | ---: | ---: |"]
    for n, me, mp, be, bp in rows:
        md.append(f"| {n} | {me:.4f} | {mp:.4f} | {me / mp:.3f} | {be:.4f} / {bp:.4f} |")
    write_report(md, args.out)


if __name__ == "__main__":
    main()
