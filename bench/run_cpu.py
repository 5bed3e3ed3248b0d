#!/usr/bin/python3
"""CPU benchmark: Emily's engine vs numpy vs PyTorch on the same machine,
the same inputs, in one run. Writes bench/results/cpu.md.

  /usr/bin/python3 bench/run_cpu.py [--rounds R] [--min-time S] [--build DIR]
                                    [--only CASE,...] [--out FILE] [--keep]

Builds engine/bench/bench_cpu.c (Release) into build/bench-cpu/ unless --bench-exe is
given, writes random inputs (numpy, seed 0) under bench/out/, and for each
case and round runs the engine (bench_cpu --only CASE, a fresh process),
then numpy (when it has the op), then torch with 1 and with 2 threads
(odd rounds: the peers first, then the engine).
Each peer's time is the median of >= 5 timed runs after two warm-ups
(more runs for short cases, about --min-time seconds each); over rounds,
the lowest median is kept (the machine may be shared, this damps bursts
of foreign load), and the per-round speed-up against the faster peer of
the same round is reported as a median over rounds. The engine's result is checked against a float64 numpy
reference and its time is not reported when the relative error is above
the case's tolerance. Partial runs (--only) should write their report
elsewhere (--out), bench/results/cpu.md is for full runs.
"""
import os

# OpenBLAS reads these when it loads: drop them for every library here and
# for the engine's process (they are recorded in the report).
DROPPED_ENV = {k: os.environ.pop(k) for k in ("OPENBLAS_CORETYPE",
                                               "OPENBLAS_L2_SIZE")
               if k in os.environ}

import argparse
import collections
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

# Case(name, description, {input name: generator}, tolerance, output
# dtypes): tolerance on the relative error max|engine - ref| / max|ref|
# (ref: numpy in float64, or the exact result where the op does no
# arithmetic), the worst over the outputs.
Case = collections.namedtuple("Case", "name desc gens tol outs")
Case.__new__.__defaults__ = (("f32",),)

EXT = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
       np.dtype(np.complex64): "c64", np.dtype(np.int32): "s32",
       np.dtype(np.int64): "s64"}
DTYPE = {v: k for k, v in EXT.items()}


def _normal(shape):
    return lambda rng: rng.standard_normal(shape, dtype=np.float32)


def _uniform(shape, lo, hi):
    return lambda rng: rng.uniform(lo, hi, shape).astype(np.float32)


def _normal64(shape):
    return lambda rng: rng.standard_normal(shape)


def _cnormal(n):
    return lambda rng: (rng.standard_normal(n, dtype=np.float32) +
                        1j * rng.standard_normal(n, dtype=np.float32)
                        ).astype(np.complex64)


def _spd(n):  # B B^T / n + I: eigenvalues in about [1, 5]
    def gen(rng):
        b = rng.standard_normal((n, n))
        a = b @ b.T / n + np.eye(n)
        return (a + a.T) / 2
    return gen


def _indices(n, hi, dtype):
    return lambda rng: rng.integers(0, hi, n, dtype=dtype)


NCHW = (32, 64, 56, 56)
M1 = 1 << 20
CASES = [
    Case("matmul_1024", "matmul f32 1024x1024 @ 1024x1024",
         {"a": _normal((1024, 1024)), "b": _normal((1024, 1024))}, 1e-5),
    Case("matmul_2048", "matmul f32 2048x2048 @ 2048x2048",
         {"a": _normal((2048, 2048)), "b": _normal((2048, 2048))}, 1e-5),
    Case("gelu_16M", "gelu(x*a+b), x 4096x4096, a,b [4096] (erf form)",
         {"x": _normal((4096, 4096)), "a": _uniform((4096,), 0.5, 1.5),
          "b": _uniform((4096,), -0.5, 0.5)}, 1e-5),
    Case("softmax_2048", "softmax 2048x2048 f32, last axis",
         {"x": _normal((2048, 2048))}, 1e-5),
    Case("layer_norm_4096x1024", "layer_norm 4096x1024 f32, weight+bias",
         {"x": _normal((4096, 1024)), "w": _uniform((1024,), 0.5, 1.5),
          "b": _uniform((1024,), -0.5, 0.5)}, 1e-5),
    Case("sum_64M", "sum of 64M f32 (uniform 0.1..1)",
         {"x": _uniform((1 << 26,), 0.1, 1.0)}, 1e-5),
    Case("conv2d_3x3_32x64x56x56", "conv2d f32 [32,64,56,56] * [64,64,3,3], "
         "stride 1, padding 1 (same)",
         {"x": _normal(NCHW), "w": _normal((64, 64, 3, 3))}, 1e-5),
    Case("maxpool_3x3_s1", "max-pool 3x3 f32 [32,64,56,56], stride 1, "
         "padding 1 (same)", {"x": _normal(NCHW)}, 0),
    Case("maxpool_3x3_s2", "max-pool 3x3 f32 [32,64,56,56], stride 2, "
         "padding 1", {"x": _normal(NCHW)}, 0),
    Case("sort_f32_1M", "sort 1M f32 (normal)", {"x": _normal((M1,))}, 0),
    Case("fft_c64_1M", "fft 1M c64", {"x": _cnormal(M1)}, 1e-5, ("c64",)),
    Case("cholesky_f64_512", "cholesky f64 512x512 (SPD)",
         {"a": _spd(512)}, 1e-9, ("f64",)),
    Case("qr_f64_512", "qr (reduced) f64 512x512",
         {"a": _normal64((512, 512))}, 1e-9, ("f64", "f64")),
    Case("svd_f64_512", "svd (u, s, vt; not full) f64 512x512",
         {"a": _normal64((512, 512))}, 1e-9, ("f64", "f64", "f64")),
    Case("take_rows_s32_1M", "take 1M rows of [100000,256] f32, s32 indices",
         {"table": _normal((100000, 256)),
          "idx": _indices(M1, 100000, np.int32)}, 0),
    Case("take_rows_s64_1M", "take 1M rows of [100000,256] f32, s64 indices",
         {"table": _normal((100000, 256)),
          "idx": _indices(M1, 100000, np.int64)}, 0),
]
NAMES = [c.name for c in CASES]


# ---- references (float64) -------------------------------------------------

def _erf64(y):
    if HAVE_SCIPY:
        return scipy.special.erf(y)
    return np.vectorize(__import__("math").erf)(y)


def _conv3x3_ref(x, w):
    """conv2d, stride 1, padding 1, NCHW / OIHW, in float64."""
    n, c, h, wd = x.shape
    xp = np.zeros((n, c, h + 2, wd + 2))
    xp[:, :, 1:-1, 1:-1] = x
    acc = np.zeros((w.shape[0], n, h, wd))
    for i in range(3):
        for j in range(3):
            acc += np.tensordot(w[:, :, i, j], xp[:, :, i:i + h, j:j + wd],
                                axes=([1], [1]))
    return acc.transpose(1, 0, 2, 3)


def _maxpool3x3(x, s):
    """3x3 max-pool over the last two axes, stride s, padding 1 (-inf):
    separable (rows, then columns), in x's dtype."""
    h, w = x.shape[-2:]
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    xp = np.full(x.shape[:-2] + (h + 2, w + 2), -np.inf, dtype=x.dtype)
    xp[..., 1:-1, 1:-1] = x
    r = xp[..., 0:s * (ho - 1) + 1:s, :].copy()
    for i in (1, 2):
        np.maximum(r, xp[..., i:i + s * (ho - 1) + 1:s, :], out=r)
    out = r[..., 0:s * (wo - 1) + 1:s].copy()
    for j in (1, 2):
        np.maximum(out, r[..., j:j + s * (wo - 1) + 1:s], out=out)
    return out


def _qr_canon(q, r):
    """Q, R with diag(R) >= 0 (the factorisation is then unique)."""
    sg = np.sign(np.diagonal(r)).copy()
    sg[sg == 0] = 1
    return [q * sg, r * sg[:, None]]


def canon(name, outs, ref):
    """Removes the sign freedom of qr/svd results (aligned to ref)."""
    if name.startswith("qr"):
        return _qr_canon(*outs)
    if name.startswith("svd"):
        u, s, vt = outs
        sg = np.sign(np.sum(np.asarray(u, np.float64) * ref[0], axis=0))
        sg[sg == 0] = 1
        return [u * sg, s, vt * sg[:, None]]
    return outs


def reference(name, d):
    """The float64 (or exact) result(s), as a list."""
    if name.startswith("take"):  # a copy: exact in f32
        return [d["table"][d["idx"]]]
    f = {k: v.astype(np.complex128 if np.iscomplexobj(v) else np.float64)
         for k, v in d.items()}
    if name.startswith("matmul"):
        return [f["a"] @ f["b"]]
    if name == "gelu_16M":
        y = f["x"] * f["a"] + f["b"]
        return [0.5 * y * (1 + _erf64(y * SQRT1_2))]
    if name == "softmax_2048":
        e = np.exp(f["x"] - f["x"].max(-1, keepdims=True))
        return [e / e.sum(-1, keepdims=True)]
    if name == "layer_norm_4096x1024":
        m = f["x"].mean(-1, keepdims=True)
        v = f["x"].var(-1, keepdims=True)
        return [(f["x"] - m) / np.sqrt(v + EPS) * f["w"] + f["b"]]
    if name == "sum_64M":
        return [np.array(f["x"].sum())]
    if name.startswith("conv2d_3x3"):
        return [_conv3x3_ref(f["x"], f["w"])]
    if name.startswith("maxpool_3x3_s"):
        return [_maxpool3x3(f["x"], int(name[-1]))]
    if name.startswith("sort"):
        return [np.sort(f["x"])]
    if name.startswith("fft"):
        return [np.fft.fft(f["x"])]
    if name.startswith("cholesky"):
        return [np.linalg.cholesky(f["a"])]
    if name.startswith("qr"):
        return _qr_canon(*np.linalg.qr(f["a"]))
    if name.startswith("svd"):
        return list(np.linalg.svd(f["a"], full_matrices=False))
    raise KeyError(name)


def rel_err(got, ref):
    """max |got - ref| / max |ref|, in float64 (complex128), by chunks."""
    g = np.asarray(got).reshape(-1)
    r = np.asarray(ref).reshape(-1)
    if g.size != r.size:
        return float("inf")
    num = den = 0.0
    step = 1 << 22
    for i in range(0, r.size, step):
        gi, ri = g[i:i + step], r[i:i + step]
        wide = (np.complex128 if np.iscomplexobj(gi) or np.iscomplexobj(ri)
                else np.float64)
        gi, ri = gi.astype(wide), ri.astype(wide)
        if not np.all(np.isfinite(gi)):
            return float("inf")
        num = max(num, float(np.max(np.abs(gi - ri))))
        den = max(den, float(np.max(np.abs(ri))))
    return num / max(den, 1e-30)


def rel_err_all(name, got, ref):
    """The worst rel_err over a case's outputs (signs of qr/svd removed)."""
    if got is None or len(got) != len(ref):
        return float("nan")
    got = canon(name, [np.asarray(g).reshape(r.shape)
                       for g, r in zip(got, ref)], ref)
    return max(rel_err(g, r) for g, r in zip(got, ref))


def as_list(r):
    """A peer's result as a list of numpy arrays."""
    if isinstance(r, (tuple, list)):
        return [as_list(x)[0] for x in r]
    if HAVE_TORCH and isinstance(r, torch.Tensor):
        return [r.numpy()]
    return [np.asarray(r)]


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
    if name.startswith("conv2d"):
        return None  # numpy has no convolution
    if name.startswith("maxpool_3x3_s"):
        x, st = d["x"], int(name[-1])
        return lambda: _maxpool3x3(x, st)
    if name.startswith("sort"):
        x = d["x"]
        return lambda: np.sort(x)
    if name.startswith("fft"):
        x = d["x"]
        return lambda: np.fft.fft(x)
    if name.startswith("cholesky"):
        a = d["a"]
        return lambda: np.linalg.cholesky(a)
    if name.startswith("qr"):
        a = d["a"]
        return lambda: np.linalg.qr(a)  # mode="reduced"
    if name.startswith("svd"):
        a = d["a"]
        return lambda: np.linalg.svd(a, full_matrices=False)
    if name.startswith("take"):
        table, idx = d["table"], d["idx"]
        return lambda: np.take(table, idx, axis=0)
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
    if name.startswith("conv2d_3x3"):
        return lambda: F.conv2d(t["x"], t["w"], padding=1)
    if name.startswith("maxpool_3x3_s"):
        st = int(name[-1])
        return lambda: F.max_pool2d(t["x"], 3, st, 1)
    if name.startswith("sort"):
        return lambda: torch.sort(t["x"]).values
    if name.startswith("fft"):
        return lambda: torch.fft.fft(t["x"])
    if name.startswith("cholesky"):
        return lambda: torch.linalg.cholesky(t["a"])
    if name.startswith("qr"):
        return lambda: torch.linalg.qr(t["a"])  # mode="reduced"
    if name.startswith("svd"):
        return lambda: torch.linalg.svd(t["a"], full_matrices=False)
    if name.startswith("take"):
        return lambda: torch.index_select(t["table"], 0, t["idx"])
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
    ap.add_argument("--only", help="run these cases only (comma-separated "
                    "names: %s)" % ", ".join(NAMES))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "cpu.md"),
                    help="the report (default bench/results/cpu.md; give "
                    "another path for partial runs)")
    ap.add_argument("--keep", action="store_true", help="keep bench/out data")
    args = ap.parse_args()

    exe = args.bench_exe
    if not exe:
        subprocess.run(["cmake", "-S", ROOT, "-B", args.build,
                        "-DCMAKE_BUILD_TYPE=Release", "-DEMILY_CUDA=OFF"],
                       check=True,
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
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(NAMES):
        ap.error("unknown case(s) %s; cases: %s" % (
            ", ".join(sorted(only - set(NAMES))), ", ".join(NAMES)))
    cases = [c for c in CASES if not only or c.name in only]
    data = {}
    for c in CASES:  # same stream whatever --only says
        d = {k: g(rng) for k, g in c.gens.items()}
        if c.name in {x.name for x in cases}:
            data[c.name] = d
            for k, v in d.items():
                v.tofile(os.path.join(work, "%s.%s.%s" % (c.name, k,
                                                          EXT[v.dtype])))
        del d

    blas_lines, np_config = blas_info()  # before torch.set_num_threads
    torch_threads = (1, 2) if HAVE_TORCH else ()
    best = {}  # (case, peer) -> (ms, reps)
    paired = collections.defaultdict(list)  # case -> per-round speed-ups
    errors = {}
    engine_threads = "?"
    load = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        for name, _, _, tol, outs in cases:
            d = data[name]

            def time_peers():
                r = []
                nf = numpy_fn(name, d)
                if nf:
                    r.append(("numpy", time_fn(nf, args.min_time)))
                for nt in torch_threads:
                    torch.set_num_threads(nt)
                    r.append(("torch%d" % nt,
                              time_fn(torch_fn(name, d), args.min_time)))
                return r
            # odd rounds time the peers first: drift in the machine's speed
            # then favours neither side
            peer_times = time_peers() if rnd % 2 else None
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
                got = [np.fromfile(os.path.join(work, (
                    "%s.%s" % (name, dt) if len(outs) == 1 else
                    "%s.%d.%s" % (name, k, dt))), dtype=DTYPE[dt])
                    for k, dt in enumerate(outs)] if m else None
                err = rel_err_all(name, got, ref)
                del got
                nf = numpy_fn(name, d)
                nerr = rel_err_all(name, as_list(nf()), ref) if nf \
                    else float("nan")
                terr = rel_err_all(name, as_list(torch_fn(name, d)()), ref) \
                    if HAVE_TORCH else float("nan")
                del ref
                errors[name] = (err, nerr, terr, tol)
                print("%-22s rel err vs float64: engine %.2e  numpy %.2e  "
                      "torch %.2e  (tolerance %.0e)%s" % (
                          name, err, nerr, terr, tol,
                          "" if err <= tol else "  ** ENGINE WRONG **"),
                      flush=True)
            if peer_times is None:
                peer_times = time_peers()
            results = []
            if m:
                results.append(("engine", (float(m.group(1)), int(m.group(2)))))
            else:
                print("engine failed on %s:\n%s" % (name, p.stdout))
            results += peer_times
            for peer, r in results:
                if (name, peer) not in best or r[0] < best[(name, peer)][0]:
                    best[(name, peer)] = r
            # this round's speed-up against its faster peer (paired)
            rd = dict(results)
            pt = [r[0] for peer, r in results if peer != "engine"]
            if "engine" in rd and pt:
                paired[name].append(min(pt) / rd["engine"][0])
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
    for name, desc, _, tol, _ in cases:
        err, nerr, terr, tol = errors[name]
        eng = best.get((name, "engine"))
        npy = best.get((name, "numpy"))
        tch = None
        if HAVE_TORCH:
            tch_peer = min(("torch%d" % n for n in torch_threads),
                           key=lambda p: best[(name, p)][0])
            tch = best[(name, tch_peer)]
        peers = [r for r in (npy, tch) if r]
        faster = min(peers, key=lambda r: r[0]) if peers else None
        faster_name = "numpy" if faster is npy else "torch"
        ok = eng is not None and err <= tol
        e_ms = fmt(eng[0]) if ok else ("WRONG (err %.1e)" % err if eng
                                       else "FAILED")
        pr = paired.get(name, [])
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %.1e |" % (
            desc, e_ms, fmt(npy[0]) if npy else "n/a",
            "%s (%s thr)" % (fmt(tch[0]), tch_peer[5:]) if tch else "n/a",
            "%.2f" % (npy[0] / eng[0]) if ok and npy else "-",
            "%.2f (%s)" % (faster[0] / eng[0], faster_name)
            if ok and faster else "-",
            "%.2f (%.2f-%.2f)" % (statistics.median(pr), min(pr), max(pr))
            if ok and pr else "-",
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
               "max |engine - ref| / max |ref|, ref = numpy in float64 (for "
               "the f64 linalg cases, numpy's own float64 result; sort, "
               "max-pool and take are exact, tolerance 0), the worst over a "
               "case's outputs, qr/svd signs normalised; no "
               "time is reported for a result above tolerance (%s). The "
               "acceptance bar is speed-up vs faster peer >= 0.67 (engine "
               "at most 1.5x slower).\n"
               % (args.min_time, args.rounds,
                  ", ".join("%s %.0e" % (c[0], c[3]) for c in cases)))
    out.append("The per-round column pairs the engine with its faster peer "
               "in the same round (seconds apart) and gives the median over "
               "rounds, with the range: this VM's memory bandwidth switches "
               "between a fast and a slow mode for seconds at a time, and "
               "best-of-rounds then favours whichever side met a fast spell; "
               "for memory-bound rows the per-round median is the fairer "
               "figure (bench/interleave_cpu.py pairs calls, not rounds).\n")
    out.append("| case | engine ms | numpy ms | torch ms (best of 1/2 "
               "threads) | speed-up vs numpy | speed-up vs faster peer | "
               "per-round speed-up vs faster peer, median (range) | "
               "engine rel. err |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    out += rows
    out.append("")
    out.append("Peers: numpy computes gelu with %s, softmax as exp(x - max) / "
               "sum and layer-norm by hand (in-place ops where possible); "
               "torch uses F.gelu (erf), torch.softmax, F.layer_norm, "
               "torch.sum. The engine builds gelu from ops, 0.5*y*(1 + "
               "erf(y*0.70710678)), fused by its evaluator, and uses "
               "em_softmax, em_layer_norm (eps 1e-5), em_sum, em_matmul. "
               "conv2d: torch F.conv2d(x, w, padding=1) (numpy has none), "
               "engine em_conv (NCHW/OIHW, padding 1/1). max-pool: torch "
               "F.max_pool2d(x, 3, stride, 1), numpy a separable max over "
               "strided views of a -inf-padded copy, engine em_window_max "
               "(window 1x1x3x3, padding 1/1). sort: np.sort (default "
               "kind), torch.sort(x).values (it also computes indices), "
               "engine em_sort (stable). fft: np.fft.fft (numpy %s computes "
               "in complex128 and returns c128), torch.fft.fft, engine "
               "em_fft. cholesky/qr/svd: numpy.linalg and torch.linalg "
               "(qr reduced; svd full_matrices=False, gesdd), engine "
               "em_cholesky, em_qr (complete=false), em_svd (u, s and vt "
               "evaluated). take: np.take(table, idx, axis=0), "
               "torch.index_select(table, 0, idx), engine em_take (what "
               "Nx.take maps to); every run allocates its 1 GiB result "
               "(the engine's caching allocator reuses the previous "
               "run's block, numpy's and torch's allocations are fresh "
               "pages).\n"
               % (gelu_numpy, np.__version__))
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
