#!/usr/bin/env bash
# verify_cuda.sh — the one prepared check of the CUDA path on a GPU machine (docs/cuda.md): build
# with CUDA=1, run the host harness and the GPU test (CUDA vs CPU vs golden, tensor by tensor),
# then time LUA x2/x4 at 64x64 and 128x128 and a VAE decode at 128x128 (build-cuda/bench_cuda),
# and PyTorch CUDA on the same weights where torch with CUDA is installed. Every figure and log
# goes to $OUT (default build-cuda/verify); the summary is $OUT/verify_cuda.txt. Expected: about
# 3-5 minutes on one H200 with 16 cores (most of it building and the GPU test's CPU references);
# each step has its own time limit so the whole stays under 10 minutes.
#
#   tools/bench/verify_cuda.sh            on the GPU machine
#   tools/bench/verify_cuda.sh --prepare  here, before: a portable build in build-cuda-carry/ (x86-64-v3)
#                                   plus the non-CUDA shared libraries it needs in its lib/, for a
#                                   GPU machine that cannot build (no OpenBLAS/cmocka headers); carry
#                                   build-cuda-carry (and tools/.venv/basicsr_swinir for PyTorch)
#
# Exit status: 0 only if the GPU test passed and the timings ran.
set -uo pipefail
cd "$(dirname "$0")/../.."
NPROC=$(nproc 2>/dev/null || echo 4)

CARRY=build-cuda-carry
if [ "${1:-}" = "--prepare" ]; then
    set -e
    rm -rf $CARRY
    # CFLAGS from the environment: the Makefile's `CFLAGS ?=` takes it and its `+=` still apply
    CFLAGS="-O2 -march=x86-64-v3" make -j"$NPROC" CUDA=1 BUILD=$CARRY all $CARRY/tests/test_cuda \
        $CARRY/tests/test_cuda_host $CARRY/bench_cuda
    mkdir -p $CARRY/lib
    # what the binaries load besides glibc, the C++ runtime and CUDA itself
    for lib in $(ldd $CARRY/tests/test_cuda $CARRY/bench_cuda | awk '/=> \//{print $3}' | sort -u); do
        case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*|libcuda*|libcublas*|libcudart*) ;;
        *) cp -L "$lib" $CARRY/lib/ ;;
        esac
    done
    rm -rf $CARRY/obj
    du -sh $CARRY
    echo "prepared: carry $CARRY (and tools/.venv/basicsr_swinir) to the GPU machine, run tools/bench/verify_cuda.sh there"
    exit 0
fi

OUT=${OUT:-build-cuda/verify}
mkdir -p "$OUT"
REPORT="$OUT/verify_cuda.txt"
: >"$REPORT"
T0=$(date +%s)
log() { echo "$*" | tee -a "$REPORT"; }
elapsed() { echo "$(($(date +%s) - T0)) s"; }
# a step's time limit: its own, or what is left of DEADLINE seconds (default 540: the run stays
# inside a 10-minute call even when every step is slow)
DEADLINE=${DEADLINE:-540}
limit() { local left=$((DEADLINE - $(date +%s) + T0)); echo $((left < $1 ? (left > 1 ? left : 1) : $1)); }
status=0

log "verify_cuda: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $NPROC cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if command -v nvidia-smi >/dev/null; then
    log "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n1)"
else
    log "gpu: nvidia-smi not found"
fi
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
log "nvcc: $("$NVCC" --version 2>/dev/null | tail -n1 || echo 'not found')"

# ---- 1. build (a fresh native build; else the build carried from --prepare) ---------------------------
B=build-cuda-dev
if timeout "$(limit 240)" make -j"$NPROC" CUDA=1 BUILD=$B all $B/tests/test_cuda $B/tests/test_cuda_host $B/bench_cuda \
    >"$OUT/build.log" 2>&1; then
    log "build: make CUDA=1 -j$NPROC: ok, $(grep -c 'warning:' "$OUT/build.log") warnings ($(elapsed))"
elif [ -x $CARRY/tests/test_cuda ]; then
    B=$CARRY
    log "build: make CUDA=1 failed here ($(grep -m1 -E 'error|missing' "$OUT/build.log" || tail -n1 "$OUT/build.log")); using the carried $CARRY/"
    if ldd $B/tests/test_cuda | grep -q 'not found'; then
        export LD_LIBRARY_PATH="$PWD/$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        log "build: libraries from $CARRY/lib"
    fi
else
    log "build: FAILED and no carried build (see $OUT/build.log):"
    tail -n 20 "$OUT/build.log" | tee -a "$REPORT"
    exit 1
fi
missing=$(ldd $B/tests/test_cuda 2>&1 | grep 'not found' || true)
if [ -n "$missing" ]; then
    log "build: the binaries cannot load: $missing"
    exit 1
fi

# ---- 2. the host harness (no GPU needed) ---------------------------------------------------------------
if timeout "$(limit 90)" $B/tests/test_cuda_host >"$OUT/test_cuda_host.log" 2>&1; then
    log "host harness: $(tail -n1 "$OUT/test_cuda_host.log") ($(elapsed))"
else
    log "host harness: FAILED: $(grep -c 'NOT OK' "$OUT/test_cuda_host.log") NOT OK lines (see test_cuda_host.log)"
    status=1
fi

# ---- 3. the GPU test: CUDA vs CPU vs golden, tensor by tensor ------------------------------------------
GT=$(limit 300)
timeout "$GT" $B/tests/test_cuda >"$OUT/test_cuda.log" 2>&1
rc=$?
case $rc in
0) log "GPU test: PASSED: $(grep 'GPU test:' "$OUT/test_cuda.log") ($(elapsed))" ;;
77) log "GPU test: NOT RUN: $(head -n1 "$OUT/test_cuda.log")"; status=1 ;;
124) log "GPU test: TIMED OUT after $GT s (see test_cuda.log)"; status=1 ;;
*)
    log "GPU test: FAILED (exit $rc): $(grep 'GPU test:' "$OUT/test_cuda.log")"
    grep -E 'NOT OK|on the GPU:|Error|error' "$OUT/test_cuda.log" | head -n 30 | tee -a "$REPORT"
    status=1
    ;;
esac
grep -E 'NOT OK' "$OUT/test_cuda.log" >"$OUT/test_cuda_not_ok.txt" || true

# ---- 4. timings -------------------------------------------------------------------------------------------
if [ $rc -eq 0 ] || [ $rc -eq 1 ]; then
    mkdir -p "$OUT/weights"
    rm -f "$OUT/bench_cuda.txt"
    if timeout "$(limit 180)" $B/bench_cuda --runs 5 --out "$OUT/bench_cuda.txt" --keep-weights "$OUT/weights" >"$OUT/bench_cuda.log" 2>&1; then
        log "timings (latup CUDA path; whole library call incl. copies, median of 5 after a warm-up):"
        tee -a "$REPORT" <"$OUT/bench_cuda.txt"
    else
        log "timings: bench_cuda FAILED: $(tail -n 2 "$OUT/bench_cuda.log")"
        status=1
    fi
    PY=${PYTHON:-python3}
    if [ -s "$OUT/weights/lua_released.safetensors" ] && "$PY" -c 'import torch, numpy; assert torch.cuda.is_available()' 2>/dev/null; then
        if timeout "$(limit 150)" "$PY" tools/bench/bench_torch_cuda.py --weights "$OUT/weights" --runs 5 --out "$OUT/bench_torch.txt" \
            >"$OUT/bench_torch.log" 2>&1; then
            log "timings (PyTorch CUDA, same weights, fp32 TF32 off; same call: copy in, forward, copy out):"
            tee -a "$REPORT" <"$OUT/bench_torch.txt"
        else
            log "pytorch: FAILED or partial: $(tail -n 3 "$OUT/bench_torch.log" | tr '\n' ' ')"
            [ -s "$OUT/bench_torch.txt" ] && tee -a "$REPORT" <"$OUT/bench_torch.txt"
        fi
    else
        log "pytorch: no torch with CUDA on this machine ($("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -n1)): PyTorch timings skipped"
    fi
    rm -rf "$OUT/weights"
fi

log "verify_cuda: done in $(elapsed), status $status"
exit $status
