#!/usr/bin/env bash
# Before and after: two latup CLIs (two builds, e.g. a commit before a change and main) timed on
# the same commands, interleaved (round 1: work 1 A, work 1 B, work 2 A, ...; the next round the
# same), so a drift of the machine falls on both alike. Each run is one process under
# /usr/bin/time: wall time includes loading the models and writing the output; peak RSS is the
# process's; the plan's peak is what --verbose prints. A measurement, not a test.
#
#   tools/bench/bench_ab.sh [--runs N] A_BIN B_BIN 'LABEL|ARGS' ['LABEL|ARGS' ...]
#
# ARGS are latup's arguments without -o (the output goes to a scratch file, removed after each
# run); '%RUNS=K' at the start of a work's label gives that work K rounds instead of N (for the
# long ones). Every run is printed as it ends, then one table of medians.
#   e.g. tools/bench/bench_ab.sh --runs 5 /tmp/before/build/latup build/latup \
#          'decode 4K exact|decode --vae V -i z.npy --threads 2'
set -euo pipefail
runs=5
[ "${1:-}" = --runs ] && { runs=$2; shift 2; }
[ $# -ge 3 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
A=$1 B=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
labels=() argsv=() nruns=()
for w in "$@"; do
    label=${w%%|*} args=${w#*|} k=$runs
    if [[ $label == %RUNS=* ]]; then
        k=${label#%RUNS=}
        k=${k%% *}
        label=${label#* }
    fi
    labels+=("$label") argsv+=("$args") nruns+=("$k")
done
maxr=$runs
for k in "${nruns[@]}"; do [ "$k" -gt "$maxr" ] && maxr=$k; done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores;" \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(date -u '+%Y-%m-%d %H:%M UTC')"
for side in A B; do
    bin=$A
    [ $side = B ] && bin=$B
    echo "$side: $bin ($("$bin" --version --verbose 2>&1 | sed -n 2p | sed 's/^OpenBLAS: *//'))"
done
printf '%-5s %-2s %-44s %8s %10s %10s\n' round AB work wall_s rss_MiB plan_MiB
one() { # side bin index round
    local side=$1 bin=$2 i=$3 r=$4 ext=npy
    [[ ${argsv[$i]} == run* || ${argsv[$i]} == decode* ]] && ext=png
    # shellcheck disable=SC2086
    if ! /usr/bin/time -f "%e %M" -o "$work/t" "$bin" ${argsv[$i]} --verbose -o "$work/out.$ext" \
        2> "$work/err" > /dev/null; then
        echo "$side ${labels[$i]}: failed: $(grep -v '^latup: ' "$work/err" | tail -n 1)" >&2
        exit 1
    fi
    rm -f "$work/out.$ext"
    local wall kb plan
    read -r wall kb < "$work/t"
    plan=$(awk '{ for (j = 1; j < NF; j++) if ($j == "peak" && $(j + 1) ~ /^[0-9.]+$/) { print $(j + 1); exit } }' \
        "$work/err")
    printf '%-5s %-2s %-44s %8.2f %10.1f %10s\n' "$r" "$side" "${labels[$i]}" "$wall" \
        "$(awk "BEGIN{print $kb/1024}")" "${plan:--}"
    echo "$i $side $wall $kb ${plan:--}" >> "$work/all"
}
for ((r = 1; r <= maxr; r++)); do
    for i in "${!labels[@]}"; do
        [ "$r" -le "${nruns[$i]}" ] || continue
        one A "$A" "$i" "$r"
        sleep 0.2
        one B "$B" "$i" "$r"
        sleep 0.2
    done
done
echo
echo "| work | runs | A wall (median) | B wall (median) | B / A | A peak RSS | B peak RSS | A plan | B plan |"
echo "|---|---|---|---|---|---|---|---|---|"
for i in "${!labels[@]}"; do
    python3 - "$work/all" "$i" "${labels[$i]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.split()[0] == sys.argv[2]]
def side(s):
    r = [x for x in rows if x[1] == s]
    return (statistics.median(float(x[2]) for x in r), max(int(x[3]) for x in r) / 1024, r[-1][4], len(r))
a, b = side("A"), side("B")
print(f"| {sys.argv[3]} | {a[3]} | {a[0]:.2f} s | {b[0]:.2f} s | {b[0] / a[0]:.2f} | {a[1]:.0f} MiB | "
      f"{b[1]:.0f} MiB | {a[2]} MiB | {b[2]} MiB |")
PY
done
