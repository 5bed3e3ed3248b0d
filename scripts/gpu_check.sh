#!/usr/bin/env bash
# Runs the CUDA backend's checks on a machine with an NVIDIA GPU, in one go:
#   1. the card (nvidia-smi) and the CUDA libraries the binaries load
#   2. engine/tests/test_cuda and test_cuda_<family>, the CPU-vs-CUDA
#      differential suites
#   3. a quick subset of each under compute-sanitizer (memcheck), if present
#   4. bench/run_gpu.py: engine/bench/bench_cuda and PyTorch, alternated
#      over BENCH_ROUNDS rounds -> gpu.md; bench/interleave_gpu.py (with
#      BIN/libemily.so): both in one process, alternating -> interleaved.md
# Usage: scripts/gpu_check.sh [BIN_DIR] [OUT_DIR]
#   BIN_DIR holds test_cuda and bench_cuda (default: build); a libs.tar.xz
#   there (libraries the binaries need that the machine lacks, e.g.
#   OpenBLAS) is unpacked first. OUT_DIR gets the logs (default: $OUT, else
#   gpu-out). Each step has a time limit (TEST_LIMIT, SANITIZER_LIMIT,
#   BENCH_LIMIT seconds); the summary is printed last.
#   Run-time compiled kernels are cached on disk in KCACHE_DIR (default
#   OUT_DIR/../emily-kcache, outside OUT_DIR so it does not travel back), so
#   a second call on a warm machine skips NVRTC for every program seen
#   before; KCACHE_DIR=off compiles everything afresh.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}
OUT_DIR=${2:-${OUT:-gpu-out}}
mkdir -p "$OUT_DIR"
SUM="$OUT_DIR/summary.txt"
: >"$SUM"
say() { echo "$*" | tee -a "$SUM"; }

KCACHE_DIR=${KCACHE_DIR:-$OUT_DIR/../emily-kcache}
if [[ "$KCACHE_DIR" != off ]] && mkdir -p "$KCACHE_DIR"; then
  export EMILY_CUDA_CACHE_DIR
  EMILY_CUDA_CACHE_DIR=$(cd "$KCACHE_DIR" && pwd)
else
  export EMILY_CUDA_CACHE=0
fi
kcache() {
  if [[ -n "${EMILY_CUDA_CACHE_DIR:-}" && -d "$EMILY_CUDA_CACHE_DIR" ]]; then
    echo "$EMILY_CUDA_CACHE_DIR: $(find "$EMILY_CUDA_CACHE_DIR" -maxdepth 1 -type f \
      -name '*.kc' | wc -l) kernels, $(du -sh "$EMILY_CUDA_CACHE_DIR" | cut -f1)"
  else
    echo "off"
  fi
}
say "== kernel cache at the start: $(kcache)"

LIBDIRS=/usr/local/cuda/lib64
if [[ -f "$BIN/libs.tar.xz" ]]; then
  mkdir -p /tmp/emily-libs && tar xJf "$BIN/libs.tar.xz" -C /tmp/emily-libs
  LIBDIRS="$LIBDIRS:/tmp/emily-libs"
fi
export LD_LIBRARY_PATH="$LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Any library still missing: look for it under /usr and /opt (PyTorch's
# nvidia wheels carry the CUDA 13 ones).
for lib in $(ldd "$BIN/test_cuda" 2>/dev/null | awk '/not found/ {print $1}'); do
  f=$(find /usr /opt -name "$lib" 2>/dev/null | head -1)
  [[ -n "$f" ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$f")"
done

say "== card"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$SUM"
nvidia-smi >"$OUT_DIR/nvidia-smi.txt" 2>&1
ldd "$BIN/test_cuda" | grep -E "cuda|cublas|nvrtc|blas|lapack|not found" | tee -a "$SUM"

# Every CUDA differential test: test_cuda (elementwise, reductions, dot,
# rows, movement, CUDA-only cases) and the per-family test_cuda_<family>.
for t in "$BIN"/test_cuda "$BIN"/test_cuda_*; do
  [[ -x "$t" ]] || continue
  name=$(basename "$t")
  say "== $name"
  start=$(date +%s)
  timeout "${TEST_LIMIT:-400}" "$t" >"$OUT_DIR/$name.log" 2>&1
  rc=$?
  say "$name: exit $rc in $(($(date +%s) - start)) s"
  grep -E "checks|SKIPPED|unsupported on CUDA|done" "$OUT_DIR/$name.log" | tail -5 | tee -a "$SUM"
  grep -m 30 "FAIL" "$OUT_DIR/$name.log" | tee -a "$SUM"
done

SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer /opt/nvidia/*/compute-sanitizer \
  2>/dev/null | head -1)
[[ -z "$SAN" ]] && SAN=$(find /usr/local /opt -name compute-sanitizer -type f 2>/dev/null | head -1)
if [[ "${SKIP_SANITIZER:-0}" != 1 && -n "$SAN" ]]; then
  say "== compute-sanitizer memcheck (quick subset): $SAN"
  start=$(date +%s)
  : >"$OUT_DIR/sanitizer.log"
  for t in "$BIN"/test_cuda "$BIN"/test_cuda_*; do
    [[ -x "$t" ]] || continue
    EMILY_TEST_QUICK=1 EMILY_TEST_THREADS=2 timeout "${SANITIZER_LIMIT:-150}" \
      "$SAN" --tool memcheck --error-exitcode 3 "$t" >>"$OUT_DIR/sanitizer.log" 2>&1
    rc=$?
    say "compute-sanitizer $(basename "$t"): exit $rc (124: time limit)"
  done
  say "compute-sanitizer: all in $(($(date +%s) - start)) s"
  grep -E "ERROR SUMMARY|checks," "$OUT_DIR/sanitizer.log" | tail -3 | tee -a "$SUM"
  grep -m 10 -A6 "Invalid\|Error" "$OUT_DIR/sanitizer.log" | head -40 | tee -a "$SUM"
else
  say "== compute-sanitizer: not installed, skipped"
fi

if [[ -x "$BIN/bench_cuda" && "${SKIP_BENCH:-0}" != 1 ]]; then
  # BENCH_ROUNDS rounds, each bench_cuda then PyTorch (bench/run_gpu.py).
  say "== benchmark (${BENCH_ROUNDS:-3} rounds)"
  timeout "${BENCH_LIMIT:-300}" python3 bench/run_gpu.py --bench "$BIN/bench_cuda" \
    --rounds "${BENCH_ROUNDS:-3}" --out "$OUT_DIR/gpu.md" >/dev/null 2>"$OUT_DIR/run_gpu.err"
  say "run_gpu.py: exit $?"
  cat "$OUT_DIR/gpu.md" 2>/dev/null | tee -a "$SUM"
  tail -5 "$OUT_DIR/run_gpu.err" | tee -a "$SUM"
  if [[ -f "$BIN/libemily.so" ]]; then
    say "== Emily and PyTorch interleaved in one process"
    timeout "${BENCH_LIMIT:-300}" python3 bench/interleave_gpu.py "$BIN/libemily.so" \
      --out "$OUT_DIR/interleaved.md" >/dev/null 2>"$OUT_DIR/interleave.err"
    say "interleave_gpu.py: exit $?"
    cat "$OUT_DIR/interleaved.md" 2>/dev/null | tee -a "$SUM"
    tail -5 "$OUT_DIR/interleave.err" | tee -a "$SUM"
  fi
fi

say "== kernel cache at the end: $(kcache)"
