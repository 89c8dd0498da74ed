#!/usr/bin/env bash
# The whole peer comparison in one run (issue: faster than ONNX Runtime): makes a virtual
# environment with PyTorch, ONNX Runtime and ONNX from PyPI (PyPI's torch wheel pulls about 5.5 GB
# of CUDA runtime packages even for the CPU), builds latup's benchmarks, then runs
# tools/bench/bench_peers.py: latup, ONNX Runtime and PyTorch on the same random-weight models, the sgemm
# ceiling, the CPU model and ISA, the ratios. A benchmark, not a test: CI does not run it.
#   tools/bench/bench_peers.sh [--threads 2] [--runs 5] [--quick] [--kernels default,Haswell]   (make bench-peers)
#                              [--works lua,vae] [--no-torch]   (a shorter sitting: some works, no PyTorch)
# PEERS_VENV (default build/peers-venv) holds the environment; it is reused when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${PEERS_VENV:-build/peers-venv}"
PY=python3
command -v "$PY" >/dev/null || { echo "bench_peers: python3 not found" >&2; exit 1; }
tools/ci/setup_env.sh >/dev/null   # BasicSR's SwinIR trunk (tools/.venv/basicsr_swinir) for the reference
if ! "$VENV/bin/python" -c 'import torch, onnxruntime, onnx, diffusers' >/dev/null 2>&1; then
    echo "bench_peers: making $VENV (torch, onnxruntime, onnx, diffusers from PyPI; several GB)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q torch onnxruntime onnx numpy "diffusers==0.31.0" safetensors
fi
make -s bench build/tests/blas_kernels build/latup
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec "$VENV/bin/python" tools/bench/bench_peers.py "$@"
