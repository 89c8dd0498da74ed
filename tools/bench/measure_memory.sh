#!/usr/bin/env bash
# Time and peak RSS of the CLI at the sizes people run (the figures the scratch-memory issue asks
# for): LUA upscales of 64x64 and 128x128 latents, x2 and x4, on 1 and 2 threads, and the VAE
# decode at 64x64 and 128x128, each one `build/latup` process under /usr/bin/time -v.
#   tools/bench/measure_memory.sh LUA_MODEL [VAE]     (e.g. the random-weight files bench_peers.sh makes
#                                                 in build/peers/, or lua_flux.pth and ae.safetensors)
# A measurement, not a test. Prints one line per run: wall seconds, peak RSS, the plan's peak (arena +
# weights + input and output) and its arena, as --verbose reports them.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 LUA_MODEL [VAE]" >&2; exit 1; }
model=$1 vae=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s build/latup
# a float32 .npy latent [C,H,W] of smooth values (stdlib only)
latent() {
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import struct, sys, math
path, C, H, W = sys.argv[1], *map(int, sys.argv[2:])
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (C, H, W)
hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % (C * H * W), *(math.sin(0.37 * i) for i in range(C * H * W))))
PY
}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
printf '%-34s %8s %12s %12s %12s\n' run wall_s rss_MiB plan_MiB arena_MiB
one() { # label, latup args...
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/t" build/latup "$@" --verbose -o "$work/out.npy" 2> "$work/err" >/dev/null ||
        { echo "$label: failed: $(tail -n 1 "$work/err")"; return; }
    read -r wall kb < "$work/t"
    arena=$(awk '$1 == "arena" { print $2; exit }' "$work/err")
    plan=$(awk '$1 == "peak" { print $2; exit }' "$work/err")
    printf '%-34s %8.2f %12.1f %12s %12s\n' "$label" "$wall" "$(awk "BEGIN{print $kb/1024}")" "${plan:--}" "${arena:--}"
}
for n in 64 128; do
    latent "$work/z$n.npy" 16 $n $n
    for s in 2 4; do
        for t in 1 2; do
            one "upscale ${n}x${n} x$s threads $t" upscale -m "$model" -s $s -i "$work/z$n.npy" --threads $t
        done
    done
    [ -n "$vae" ] && for t in 1 2; do
        one "decode ${n}x${n} threads $t" decode --vae "$vae" -i "$work/z$n.npy" --threads $t
    done
done
