#!/usr/bin/python3
"""CPU benchmark: Emily's engine vs numpy vs PyTorch on the same machine,
the same inputs, in one run. Writes bench/results/cpu.md.

  /usr/bin/python3 bench/run_cpu.py [--rounds R] [--min-time S] [--build DIR]

Builds engine/bench/bench_cpu.c (Release) into build/bench-cpu/ unless --bench-exe is
given, writes random inputs (numpy, seed 0) under bench/out/, and for each
case and round runs the engine (bench_cpu --only CASE, a fresh process),
then numpy, then torch with 1 and with 2 threads. Each peer's time is the
median of >= 5 timed runs after two warm-ups (more runs for short cases,
about --min-time seconds each); over rounds, the lowest median is kept (the
machine may be shared, this damps bursts of foreign load). The engine's
result is checked against a float64 numpy reference and its time is not
reported when the relative error is above the case's tolerance.
"""
import os

# OpenBLAS reads these when it loads: drop them for every library here and
# for the engine's process (they are recorded in the report).
DROPPED_ENV = {k: os.environ.pop(k) for k in ("OPENBLAS_CORETYPE",
                                               "OPENBLAS_L2_SIZE")
               if k in os.environ}

import argparse
import contextlib
import datetime
import io
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import scipy
    import scipy.special
    HAVE_SCIPY = True
except ImportError:
    HAVE_SCIPY = False
try:
    import torch
    import torch.nn.functional as F
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

SQRT1_2 = 0.70710678118654752
EPS = 1e-5

# name: {input name: (shape, generator)}, tolerance on the relative error
# max|engine - ref| / max|ref| (ref: numpy in float64).
def _normal(shape):
    return lambda rng: rng.standard_normal(shape, dtype=np.float32)


def _uniform(shape, lo, hi):
    return lambda rng: rng.uniform(lo, hi, shape).astype(np.float32)


CASES = [
    ("matmul_1024", "matmul f32 1024x1024 @ 1024x1024",
     {"a": _normal((1024, 1024)), "b": _normal((1024, 1024))}, 1e-5),
    ("matmul_2048", "matmul f32 2048x2048 @ 2048x2048",
     {"a": _normal((2048, 2048)), "b": _normal((2048, 2048))}, 1e-5),
    ("gelu_16M", "gelu(x*a+b), x 4096x4096, a,b [4096] (erf form)",
     {"x": _normal((4096, 4096)), "a": _uniform((4096,), 0.5, 1.5),
      "b": _uniform((4096,), -0.5, 0.5)}, 1e-5),
    ("softmax_2048", "softmax 2048x2048 f32, last axis",
     {"x": _normal((2048, 2048))}, 1e-5),
    ("layer_norm_4096x1024", "layer_norm 4096x1024 f32, weight+bias",
     {"x": _normal((4096, 1024)), "w": _uniform((1024,), 0.5, 1.5),
      "b": _uniform((1024,), -0.5, 0.5)}, 1e-5),
    ("sum_64M", "sum of 64M f32 (uniform 0.1..1)",
     {"x": _uniform((1 << 26,), 0.1, 1.0)}, 1e-5),
]


# ---- references (float64) -------------------------------------------------

def _erf64(y):
    if HAVE_SCIPY:
        return scipy.special.erf(y)
    return np.vectorize(__import__("math").erf)(y)


def reference(name, d):
    f = {k: v.astype(np.float64) for k, v in d.items()}
    if name.startswith("matmul"):
        return f["a"] @ f["b"]
    if name == "gelu_16M":
        y = f["x"] * f["a"] + f["b"]
        return 0.5 * y * (1 + _erf64(y * SQRT1_2))
    if name == "softmax_2048":
        e = np.exp(f["x"] - f["x"].max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if name == "layer_norm_4096x1024":
        m = f["x"].mean(-1, keepdims=True)
        v = f["x"].var(-1, keepdims=True)
        return (f["x"] - m) / np.sqrt(v + EPS) * f["w"] + f["b"]
    if name == "sum_64M":
        return np.array(f["x"].sum())
    raise KeyError(name)


def rel_err(got, ref):
    got = np.asarray(got, dtype=np.float64).reshape(ref.shape)
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


# ---- peers -----------------------------------------------------------------

def numpy_fn(name, d):
    """A careful numpy version (in-place where it helps)."""
    if name.startswith("matmul"):
        a, b = d["a"], d["b"]
        return lambda: a @ b
    if name == "gelu_16M":
        x, a, b = d["x"], d["a"], d["b"]
        c = np.float32(SQRT1_2)
        if HAVE_SCIPY:
            erf = scipy.special.erf

            def gelu():
                y = x * a
                y += b
                t = y * c
                erf(t, out=t)
                t += 1
                t *= y
                t *= np.float32(0.5)
                return t
        else:  # tanh approximation (numpy has no erf)
            k = np.float32(0.7978845608028654)

            def gelu():
                y = x * a
                y += b
                t = y * y
                t *= np.float32(0.044715)
                t += 1
                t *= y
                t *= k
                np.tanh(t, out=t)
                t += 1
                t *= y
                t *= np.float32(0.5)
                return t
        return gelu
    if name == "softmax_2048":
        x = d["x"]

        def softmax():
            e = x - x.max(-1, keepdims=True)
            np.exp(e, out=e)
            e /= e.sum(-1, keepdims=True)
            return e
        return softmax
    if name == "layer_norm_4096x1024":
        x, w, b = d["x"], d["w"], d["b"]

        def layer_norm():
            xc = x - x.mean(-1, keepdims=True)
            v = np.mean(np.square(xc), -1, keepdims=True)
            v += np.float32(EPS)
            xc *= 1 / np.sqrt(v)
            xc *= w
            xc += b
            return xc
        return layer_norm
    if name == "sum_64M":
        x = d["x"]
        return lambda: x.sum()
    raise KeyError(name)


def torch_fn(name, d):
    t = {k: torch.from_numpy(v) for k, v in d.items()}
    if name.startswith("matmul"):
        return lambda: t["a"] @ t["b"]
    if name == "gelu_16M":
        return lambda: F.gelu(t["x"] * t["a"] + t["b"])  # exact (erf) gelu
    if name == "softmax_2048":
        return lambda: torch.softmax(t["x"], -1)
    if name == "layer_norm_4096x1024":
        return lambda: F.layer_norm(t["x"], (1024,), t["w"], t["b"], EPS)
    if name == "sum_64M":
        return lambda: torch.sum(t["x"])
    raise KeyError(name)


def time_fn(fn, min_time):
    """Median ms of max(5, min_time / warm-up) runs after two warm-ups
    (capped at 500), as the engine's bench does."""
    fn()
    t0 = time.perf_counter()
    r = fn()
    w = time.perf_counter() - t0
    reps = int(max(5, min(500, min_time / max(w, 1e-6))))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - t0)
        del r
        r = None
    return 1e3 * statistics.median(ts), reps


# ---- machine -------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
        flags = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
        fl = set(flags.group(1).split()) if flags else set()
        simd = [s for s in ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16")
                if s in fl]
        return (model.group(1).strip() if model else "?"), simd
    except OSError:
        return "?", []


def os_name():
    try:
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
        name = m.group(1) if m else "?"
    except OSError:
        name = "?"
    try:
        with open("/etc/debian_version") as f:
            name += " (debian_version %s)" % f.read().strip()
    except OSError:
        pass
    return "%s, kernel %s" % (name, platform.release())


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except Exception:
        return ""


def blas_info():
    lines = []
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            lines.append("%s %s (%s, %s threads%s) %s" % (
                p.get("internal_api"), p.get("version") or "",
                p.get("threading_layer", p.get("user_api")),
                p.get("num_threads"),
                ", arch " + p["architecture"] if p.get("architecture") else "",
                p.get("filepath")))
    except ImportError:
        lines.append("threadpoolctl not available")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        np.show_config()
    return lines, buf.getvalue().strip()


# ---- main ------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "bench-cpu"),
                    help="private build dir (default build/bench-cpu)")
    ap.add_argument("--bench-exe", help="use this bench_cpu, do not build")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--only", help="run one case")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "cpu.md"))
    ap.add_argument("--keep", action="store_true", help="keep bench/out data")
    args = ap.parse_args()

    exe = args.bench_exe
    if not exe:
        subprocess.run(["cmake", "-S", ROOT, "-B", args.build,
                        "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", args.build, "--target", "bench_cpu",
                        "-j%d" % (os.cpu_count() or 2)], check=True)
        exe = os.path.join(args.build, "bench_cpu")

    work = os.path.join(ROOT, "bench", "out", "cpu")
    os.makedirs(work, exist_ok=True)
    # A frozen copy: a concurrent rebuild must not swap it mid-run.
    shutil.copy2(exe, os.path.join(work, "bench_cpu"))
    exe = os.path.join(work, "bench_cpu")
    rng = np.random.default_rng(0)
    cases = [c for c in CASES if not args.only or c[0] == args.only]
    data = {}
    for name, _, gens, _ in CASES:  # same stream whatever --only says
        d = {k: g(rng) for k, g in gens.items()}
        if name in {c[0] for c in cases}:
            data[name] = d
            for k, v in d.items():
                v.tofile(os.path.join(work, "%s.%s.f32" % (name, k)))

    blas_lines, np_config = blas_info()  # before torch.set_num_threads
    torch_threads = (1, 2) if HAVE_TORCH else ()
    best = {}  # (case, peer) -> (ms, reps)
    errors = {}
    engine_threads = "?"
    load = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        for name, _, _, tol in cases:
            d = data[name]
            p = subprocess.run([exe, "--in", work, "--out", work, "--only",
                                name, "--min-time", str(args.min_time)],
                               capture_output=True, text=True)
            sys.stderr.write(p.stderr)
            m = re.search(r"ENGINE threads=(\d+)", p.stdout)
            if m:
                engine_threads = m.group(1)
            m = re.search(r"RESULT case=%s median_ms=([\d.]+) \S+ reps=(\d+)"
                          % re.escape(name), p.stdout)
            if rnd == 0:  # check the engine against float64 numpy
                ref = reference(name, d)
                got = np.fromfile(os.path.join(work, name + ".f32"),
                                  dtype=np.float32) if m else None
                err = rel_err(got, ref) if m else float("nan")
                nerr = rel_err(numpy_fn(name, d)(), ref)
                terr = rel_err(torch_fn(name, d)().numpy(), ref) \
                    if HAVE_TORCH else float("nan")
                errors[name] = (err, nerr, terr, tol)
                print("%-22s rel err vs float64: engine %.2e  numpy %.2e  "
                      "torch %.2e  (tolerance %.0e)%s" % (
                          name, err, nerr, terr, tol,
                          "" if err <= tol else "  ** ENGINE WRONG **"),
                      flush=True)
            results = []
            if m:
                results.append(("engine", (float(m.group(1)), int(m.group(2)))))
            else:
                print("engine failed on %s:\n%s" % (name, p.stdout))
            results.append(("numpy", time_fn(numpy_fn(name, d), args.min_time)))
            for nt in torch_threads:
                torch.set_num_threads(nt)
                results.append(("torch%d" % nt,
                                time_fn(torch_fn(name, d), args.min_time)))
            for peer, r in results:
                if (name, peer) not in best or r[0] < best[(name, peer)][0]:
                    best[(name, peer)] = r
            print("round %d %-22s %s" % (rnd + 1, name, "  ".join(
                "%s %.2f ms" % (peer, r[0]) for peer, r in results)),
                flush=True)
            load.append(os.getloadavg()[0])

    # ---- report ----
    model, simd = cpu_model()
    gcc = sh("cc --version | head -1")
    openblas_pkg = sh("dpkg-query -W -f='${Version}' libopenblas0-pthread "
                      "2>/dev/null || dpkg-query -W -f='${Version}' "
                      "libopenblas0")
    commit = sh("git -C '%s' rev-parse --short HEAD" % ROOT)
    dirty = sh("git -C '%s' status --porcelain -- engine CMakeLists.txt"
               % ROOT)
    now = datetime.datetime.now(datetime.timezone.utc)

    def fmt(x):
        return "%.2f" % x if x >= 1 else "%.3f" % x

    rows = []
    for name, desc, _, tol in cases:
        err, nerr, terr, tol = errors[name]
        eng = best.get((name, "engine"))
        npy = best[(name, "numpy")]
        tch = None
        if HAVE_TORCH:
            tch_peer = min(("torch%d" % n for n in torch_threads),
                           key=lambda p: best[(name, p)][0])
            tch = best[(name, tch_peer)]
        faster = min([npy] + ([tch] if tch else []), key=lambda r: r[0])
        faster_name = "numpy" if faster is npy else "torch"
        ok = eng is not None and err <= tol
        e_ms = fmt(eng[0]) if ok else ("WRONG (err %.1e)" % err if eng
                                       else "FAILED")
        rows.append("| %s | %s | %s | %s | %s | %s | %.1e |" % (
            desc, e_ms, fmt(npy[0]),
            "%s (%s thr)" % (fmt(tch[0]), tch_peer[5:]) if tch else "n/a",
            "%.2f" % (npy[0] / eng[0]) if ok else "-",
            "%.2f (%s)" % (faster[0] / eng[0], faster_name) if ok else "-",
            err))

    gelu_numpy = ("scipy.special.erf %s (exact erf form)" % scipy.__version__
                  if HAVE_SCIPY else "tanh approximation (no scipy)")
    out = []
    out.append("# CPU benchmark: Emily engine vs numpy vs PyTorch\n")
    out.append("Generated by `bench/run_cpu.py` on %s.\n"
               % now.strftime("%Y-%m-%d %H:%M UTC"))
    out.append("Times are milliseconds, the median of >= 5 timed runs after "
               "two warm-ups (more runs for short cases, ~%gs per peer); "
               "best median over %d interleaved round(s). **Speed-up = peer "
               "time / engine time: above 1 the engine is faster.** The "
               "engine's time covers building a fresh graph from materialised "
               "inputs, `em_eval` and releasing the result. Relative error: "
               "max |engine - ref| / max |ref|, ref = numpy in float64; no "
               "time is reported for a result above tolerance (%s).\n"
               % (args.min_time, args.rounds,
                  ", ".join("%s %.0e" % (c[0], c[3]) for c in cases)))
    out.append("| case | engine ms | numpy ms | torch ms (best of 1/2 "
               "threads) | speed-up vs numpy | speed-up vs faster peer | "
               "engine rel. err |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    out += rows
    out.append("")
    out.append("Peers: numpy computes gelu with %s, softmax as exp(x - max) / "
               "sum and layer-norm by hand (in-place ops where possible); "
               "torch uses F.gelu (erf), torch.softmax, F.layer_norm, "
               "torch.sum. The engine builds gelu from ops, 0.5*y*(1 + "
               "erf(y*0.70710678)), fused by its evaluator, and uses "
               "em_softmax, em_layer_norm (eps 1e-5), em_sum, em_matmul.\n"
               % gelu_numpy)
    out.append("Per-thread-count torch times (ms): " + "; ".join(
        "%s %s" % (c[0], " / ".join("%d thr %s" % (n, fmt(best[(c[0], "torch%d"
                                                                   % n)][0]))
                                    for n in torch_threads))
        for c in cases) + "\n" if HAVE_TORCH else "")
    out.append("## Machine\n")
    out.append("- CPU: %s, %d logical cores (%s)" % (
        model, os.cpu_count() or 0, " ".join(simd)))
    out.append("- OS: %s" % os_name())
    ncpu = os.cpu_count() or 1
    out.append("- Load average (1 min) sampled during the run: %.1f to %.1f "
               "on %d cores%s" % (min(load), max(load), ncpu,
                                  " -- the machine was shared with other work,"
                                  " so absolute times are noisy; the peers ran"
                                  " interleaved, so the ratios are fairer"
                                  if max(load) > ncpu else ""))
    out.append("- Engine: git %s%s, %s, Release (-O3), %s CPU threads, "
               "OpenBLAS (Debian libopenblas0-pthread %s) for matmul"
               % (commit, " + uncommitted changes" if dirty else "", gcc,
                  engine_threads, openblas_pkg))
    out.append("- Python %s; numpy %s; scipy %s; torch %s%s"
               % (platform.python_version(), np.__version__,
                  scipy.__version__ if HAVE_SCIPY else "n/a",
                  torch.__version__ if HAVE_TORCH else "n/a",
                  " (torch.__config__: BLAS_INFO=%s)" % (
                      re.search(r"BLAS_INFO=(\w+)",
                                torch.__config__.show()) or [None, "?"])[1]
                  if HAVE_TORCH else ""))
    out.append("- Environment: %s" % (
        "unset for the run: " + ", ".join("%s=%s" % kv
                                          for kv in DROPPED_ENV.items())
        if DROPPED_ENV else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set"))
    out.append("- Thread pools loaded (threadpoolctl, before torch's thread "
               "count was set):")
    out += ["  - " + line for line in blas_lines]
    out.append("\n<details><summary>numpy.show_config()</summary>\n")
    out.append("```\n%s\n```\n</details>\n" % np_config)
    out.append("Reproduce: `/usr/bin/python3 bench/run_cpu.py` (see "
               "bench/README.md).")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out[:len(rows) + 6]))
    print("\nwrote", args.out)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    bad = [c[0] for c in cases if not (errors[c[0]][0] <= errors[c[0]][3])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
