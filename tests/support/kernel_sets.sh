#!/usr/bin/env bash
# kernel_sets.sh — the numeric tests again under every OpenBLAS kernel set this CPU can run.
# OpenBLAS picks its kernels once per process, from the CPU or from OPENBLAS_CORETYPE; a promise
# (the same bits on any thread count, the golden tolerances) that held for the kernels one machine
# picked broke under another machine's (docs/testing.md, "Kernel sets"). So `make test` runs the
# tests named here under each set of `blas_kernels --sets` (Haswell, and SkylakeX and Cooperlake
# where the CPU has AVX-512) that the main run did not already use, whatever OPENBLAS_CORETYPE the
# environment sets. Each pass prints the kernel set OpenBLAS reports, and fails if it is not the
# one asked for (the suite would otherwise claim a set it never ran).
#   tests/support/kernel_sets.sh PROBE TEST...
# LATUP_KERNEL_SETS="Haswell SkylakeX" names the sets instead; LATUP_KERNEL_SETS=none skips them
# (a quick local run; CI never sets it). Exits non-zero when any pass fails.
set -u
probe=$1
shift
lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }

default_core=$("$probe" --core) || { echo "kernel sets: $probe --core failed"; exit 1; }
sets=${LATUP_KERNEL_SETS:-$(echo $("$probe" --sets))}
echo "kernel sets: the main run used OpenBLAS's $default_core kernels (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset});" \
     "this CPU runs: $(echo $("$probe" --sets))"
if [ "$sets" = none ]; then
    echo "kernel sets: NOT RUN (LATUP_KERNEL_SETS=none): only the $default_core kernels were tested"
    exit 0
fi
if [ -z "${sets// /}" ]; then
    echo "kernel sets: this CPU runs none of Haswell, SkylakeX, Cooperlake: only the $default_core kernels were tested"
    exit 0
fi

pass=0
fail=0
for set in $sets; do
    if [ "$(lower "$set")" = "$(lower "$default_core")" ]; then
        echo "== kernel set $set: the main run's (not repeated)"
        continue
    fi
    core=$(OPENBLAS_CORETYPE=$set "$probe" --core)
    if [ "$(lower "$core")" != "$(lower "$set")" ]; then
        echo "== kernel set $set: FAILED: OPENBLAS_CORETYPE=$set gives OpenBLAS's $core kernels"
        fail=$((fail + 1))
        continue
    fi
    for t in "$@"; do
        echo "== kernel set $set (OpenBLAS reports $core): $t"
        if OPENBLAS_CORETYPE=$set OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "./$t"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAILED: $t under the $set kernels"
        fi
    done
done
echo "kernel sets: $pass runs passed, $fail failed (sets: $sets)"
test "$fail" -eq 0
