#!/usr/bin/env bash
# Runs every test suite this machine can run:
#   1. the engine suite (ctest), Release build
#   2. the engine suite again under AddressSanitizer + UBSan
#   3. the NIF layer's suite on plain `elixir` (no Mix, no Nx needed)
#   4. the Nx suites (Emily.Backend vs Nx.BinaryBackend, Nx's doctests,
#      gradients) when EMILY_NX_PATH points at an Nx checkout and Elixir is
#      >= 1.17; otherwise says plainly that they were skipped.
# Set EMILY_SKIP_ASAN=1 to skip step 2 during development.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

echo "== engine tests (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

if [[ "${EMILY_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== engine tests (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEMILY_SANITIZE=ON \
    -DEMILY_EXAMPLES=OFF -DEMILY_NIF=OFF >/dev/null
  cmake --build build-asan -j"$JOBS"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
else
  echo "== engine tests (ASan + UBSan): SKIPPED (EMILY_SKIP_ASAN=1)"
fi

if command -v elixir >/dev/null && [[ -f build/emily_nif.so ]]; then
  echo "== NIF layer tests (plain elixir $(elixir -e 'IO.write System.version()' 2>/dev/null))"
  EMILY_NIF_PATH=build/emily_nif elixir test/native/native_test.exs
else
  echo "== NIF layer tests: SKIPPED (no elixir or no NIF build)"
fi

elixir_ok=$(elixir -e 'IO.write Version.match?(System.version(), ">= 1.17.0")' 2>/dev/null || echo false)
if [[ -n "${EMILY_NX_PATH:-}" && -f "${EMILY_NX_PATH}/mix.exs" && "$elixir_ok" == true ]]; then
  echo "== Nx suites (Nx at $EMILY_NX_PATH)"
  MIX_ENV=test mix test
else
  echo "== Nx suites: SKIPPED — they need Nx (set EMILY_NX_PATH to an Nx 0.13 checkout)"
  echo "   and Elixir >= 1.17 (found $(elixir -e 'IO.write System.version()' 2>/dev/null || echo none))."
fi
echo "== all available suites passed"
