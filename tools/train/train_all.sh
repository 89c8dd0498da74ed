#!/usr/bin/env bash
# The one command that trains the small models behind `make demo` and docs/results.md, and writes
# everything committed under ref_data/trained/ (issues 12 and 20):
#   tools/train/train_all.sh
# 1. the Python environment (tools/ci/setup_env.sh + scikit-image for its bundled photos) and the
#    wallpapers (Debian's plasma-workspace-wallpapers);
# 2. one job at a time, each with all the cores (torch threads = nproc): the VAE, then the LUA on
#    latents from the trained encoder, then the pixel SwinIR;
# 3. export (F16 safetensors.gz), the demo inputs, the golden data.
# Seeded: same software and thread count -> the same weights. Logs in build/train/*.log; give it
# the machine (nothing else building). The times it took are in docs/results.md.
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
for job in vae lua swinir; do
    echo "train_all: $job (log: build/train/$job.log), $(( $(date +%s) - start )) s in"
    $PY tools/train/train_$job.py > build/train/$job.log 2>&1 ||
        { echo "train_all: $job training failed (build/train/$job.log)" >&2; exit 1; }
done
echo "train_all: training done after $(( $(date +%s) - start )) s"

$PY tools/train/export.py
$PY tools/train/make_demo.py
$PY tools/train/make_trained_golden.py
echo "train_all: done after $(( $(date +%s) - start )) s; next: tools/train/results.sh"
