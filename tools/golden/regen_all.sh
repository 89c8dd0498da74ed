#!/usr/bin/env bash
# Regenerates every committed reference file from the PyTorch references, in dependency order.
# Deterministic: on the same software the files come out byte-identical (git diff shows none).
#   tools/ci/setup_env.sh && tools/golden/regen_all.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=tools/.venv/bin/python
[ -x "$PY" ] || { echo "regen_all: run tools/ci/setup_env.sh first" >&2; exit 1; }
$PY tools/reference/swinir_ref.py            # LUA cases (via make_golden.py), .pth twins, tiny, SwinIR
$PY tools/golden/make_vae_golden.py       # ref_data/vae/ (diffusers AutoencoderKL)
$PY tools/golden/make_run_golden.py       # ref_data/run/: LUA then VAE, composed
$PY tools/golden/make_sizes_golden.py     # ref_data/released/, ref_data/sizes/: released widths, sizes people run
$PY tools/golden/make_pth_fixtures.py     # tests/data/pth/, fuzz/corpus/fuzz_pth/
/usr/bin/python3 tools/golden/make_png_fixtures.py   # tests/data/png/ (Debian numpy + Pillow)
$PY tools/golden/check_ref_data.py        # re-derives every golden file and checks it
echo "regen_all: done; 'git status ref_data tests/data fuzz' shows what changed"
