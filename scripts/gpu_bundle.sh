#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh runs on a GPU machine, here (a machine
# with the CUDA toolkit, GPU or not), into one archive that can travel
# (the device tool takes 64 MiB): .gpu/gpu-bins.tar.xz holding
#   test_cuda, test_cuda_<family>, bench_cuda
#   libemily.so   for bench/interleave_gpu.py (Emily and PyTorch in one
#                 process)
#   libs.tar.xz   the Debian libraries they load that a GPU machine
#                 (Ubuntu, CUDA installed) may lack: OpenBLAS, LAPACK(E)
# Then, on the GPU machine, from the repository root:
#   mkdir -p /tmp/g && tar xJf .gpu/gpu-bins.tar.xz -C /tmp/g &&
#   scripts/gpu_check.sh /tmp/g "$OUT"
# Usage: scripts/gpu_bundle.sh [BUILD_DIR] (default build-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEMILY_CUDA=ON \
  -DEMILY_NIF=OFF >/dev/null
targets=(bench_cuda)
for src in engine/tests/test_cuda*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" emily
rm -rf .gpu && mkdir -p .gpu
for t in "${targets[@]}"; do cp "$BUILD/$t" .gpu/; done
cp "$BUILD/libemily.so" .gpu/
targets+=(libemily.so)
# Non-CUDA shared libraries the binaries load, as resolved here.
# (CUDA's own libraries, cuBLAS included, are the GPU machine's.)
libs=$(ldd "$BUILD/test_cuda" | awk '/=> \// {print $3}' | grep -v cuda |
  grep -E "/lib(openblas|lapack|lapacke|blas|gfortran|quadmath|tmglib)\.so" || true)
mkdir -p .gpu/libs
for l in $libs; do cp -L "$l" .gpu/libs/; done
tar cJf .gpu/libs.tar.xz -C .gpu/libs .
rm -rf .gpu/libs
(cd .gpu && XZ_OPT=-T0 tar cJf gpu-bins.tar.xz "${targets[@]}" libs.tar.xz &&
  rm -f "${targets[@]}" libs.tar.xz)
du -sh .gpu
