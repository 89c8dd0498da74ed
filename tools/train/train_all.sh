#!/usr/bin/env bash
# The one command that trains the small models behind `make demo` and docs/results.md, and writes
# everything committed under ref_data/trained/ (issue 12):
#   tools/train/train_all.sh
# 1. the Python environment (tools/ci/setup_env.sh + scikit-image for its bundled photos) and the
#    wallpapers (Debian's plasma-workspace-wallpapers);
# 2. the VAE and the pixel SwinIR, in parallel (one thread each; SwinIR needs no latents);
# 3. the LUA on latents from the trained encoder;
# 4. export (F16 safetensors.gz), the demo inputs, the golden data.
# Seeded: same software and thread counts -> the same weights. Logs in build/train/*.log. It runs
# under nice 10 (the machine is shared); the times it took are in docs/results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=tools/.venv/bin/python

tools/ci/setup_env.sh
# scikit-image's wheel carries astronaut, coffee, chelsea, rocket, ...; pinned to versions that use
# Debian's numpy 1.24 (the venv sees it) instead of pulling numpy 2
if ! $PY -c 'import skimage, sys; sys.exit(skimage.__version__ != "0.22.0")' 2>/dev/null; then
    tools/.venv/bin/pip install "numpy==1.24.2" scikit-image==0.22.0 scipy==1.11.4 \
        tifffile==2023.9.26 networkx==3.2.1 imageio==2.34.0 lazy_loader==0.4
fi
if [ ! -d /usr/share/wallpapers/Volna ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y plasma-workspace-wallpapers
fi

mkdir -p build/train
start=$(date +%s)
echo "train_all: VAE and pixel SwinIR in parallel (logs: build/train/vae.log, swinir.log)"
nice -n 10 $PY tools/train/train_vae.py > build/train/vae.log 2>&1 &
vae=$!
nice -n 10 $PY tools/train/train_swinir.py > build/train/swinir.log 2>&1 &
sw=$!
wait $vae || { echo "train_all: VAE training failed (build/train/vae.log)" >&2; exit 1; }
echo "train_all: VAE done after $(( $(date +%s) - start )) s; LUA (log: build/train/lua.log)"
nice -n 10 $PY tools/train/train_lua.py > build/train/lua.log 2>&1 &
lua=$!
wait $sw || { echo "train_all: SwinIR training failed (build/train/swinir.log)" >&2; exit 1; }
wait $lua || { echo "train_all: LUA training failed (build/train/lua.log)" >&2; exit 1; }
echo "train_all: training done after $(( $(date +%s) - start )) s"

$PY tools/train/export.py
$PY tools/train/make_demo.py
$PY tools/train/make_trained_golden.py
echo "train_all: done after $(( $(date +%s) - start )) s; next: tools/train/results.sh"
