#!/usr/bin/env bash
# The measurements in docs/results.md, after tools/train/train_all.sh:
#   tools/train/results.sh
# 1. held-out PSNR/SSIM of the three paths in PyTorch (tools/train/evaluate.py -> build/eval/);
# 2. the same paths in C with build/latup_demo on every held-out image: PSNR/SSIM again (a cross-
#    check of the Python numbers) and CPU times, median of 3 runs, 2 threads (build/eval/c_*.txt);
# 3. the held-out table from C alone, `latup eval` on the ground truths (the photo's downscale, the
#    encode and every path in C; build/eval/c_eval.json, to compare with build/eval/results.json);
# 4. tiled vs exact decoding of a 2K and a 4K latent with the CLI (tools/train/tiling.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=tools/.venv/bin/python
mkdir -p build/eval build/tiling
make -j2 all build/latup_demo
nice -n 10 $PY tools/train/evaluate.py | tee build/eval/python.txt
for lat in build/eval/*_latent.npy; do
    name=$(basename "$lat" _latent.npy)
    mkdir -p "build/eval/c_$name"
    nice -n 10 build/latup_demo --latent "$lat" --gt "build/eval/${name}_gt.png" --out "build/eval/c_$name" \
        --runs 3 --threads 2 | tee "build/eval/c_$name.txt"
done
T=ref_data/trained
nice -n 10 build/latup eval --vae $T/vae.ldm.safetensors.gz -m $T/lua_x2x4.safetensors.gz \
    --pixel-model $T/swinir_x2.safetensors.gz --threads 2 --json build/eval/c_eval.json build/eval/*_gt.png |
    tee build/eval/c_eval.txt
nice -n 10 $PY tools/train/tiling.py | tee build/tiling/log.txt
lscpu | grep -E "Model name|^CPU\(s\)|Thread|MHz" > build/eval/cpu.txt || true
