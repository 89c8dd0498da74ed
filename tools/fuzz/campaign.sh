#!/usr/bin/env bash
# Runs one libFuzzer target of fuzz/ until it has used a CPU-time budget (not wall time: on a
# shared machine a worker at nice 19 may get a fraction of a core), then stops it with SIGINT and
# prints one line: target, CPU seconds, wall seconds, executions, edges (cov), features (ft),
# corpus units, findings (crash, timeout, out-of-memory and leak files), slow units (over
# libFuzzer's 10 s of wall time: kept, not findings).
#
#   tools/fuzz/campaign.sh [--cpu S] [--out DIR] [--merge] TARGET
#
#   --cpu S     CPU-seconds budget (default 60)
#   --out DIR   where the log, the new corpus (DIR/work/TARGET) and any crash files
#               (DIR/TARGET-crash-*, -timeout-*, -oom-*, -leak-*) go; default build-fuzz
#   --merge     afterwards merge the new corpus into the committed one, fuzz/corpus/TARGET
#               (-merge=1: only units that add coverage are kept)
#
# The target runs from its committed seed corpus fuzz/corpus/TARGET, with fuzz/TARGET.dict when
# there is one; OMP_NUM_THREADS=1; -rss_limit_mb=2048 -timeout=20. Environment passes through
# (LATUP_FUZZ_PLAN=1 for fuzz_models' planners). The line is also appended to DIR/campaigns.tsv.
#
# Exit status: 0 when the target ran to its budget without a finding; 1 when it stopped by itself
# (a crash, a leak, a timeout, an out-of-memory, or its own harness failing: the log says which);
# 2 on bad usage.
set -uo pipefail

cpu=60 out=build-fuzz merge=0 target=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) cpu="${2:?--cpu needs seconds}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --merge) merge=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "campaign.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) [ -n "$target" ] && { echo "campaign.sh: one target only (got '$target' and '$1')" >&2; exit 2; }
           target="$1"; shift ;;
    esac
done
[ -n "$target" ] || { echo "campaign.sh: no target (one of: $(cd fuzz && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' '))" >&2; exit 2; }
case "$cpu" in ''|*[!0-9]*) echo "campaign.sh: --cpu expects whole seconds, got '$cpu'" >&2; exit 2 ;; esac
bin="build-fuzz/$target"
[ -x "$bin" ] || { echo "campaign.sh: $bin not built (make $bin)" >&2; exit 2; }
[ -d "fuzz/corpus/$target" ] || { echo "campaign.sh: no seed corpus fuzz/corpus/$target" >&2; exit 2; }

mkdir -p "$out/work/$target"
log="$out/$target.log"
dict=()
[ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
tck=$(getconf CLK_TCK)

start=$(date +%s)
OMP_NUM_THREADS=1 "$bin" -print_final_stats=1 -rss_limit_mb=2048 -timeout=20 \
    -artifact_prefix="$out/$target-" "${dict[@]}" "$out/work/$target" "fuzz/corpus/$target" >"$log" 2>&1 &
pid=$!

cpu_of() {  # utime + stime of $1 in whole seconds; empty once it has gone
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    s=${s##*) }   # fields after the command name
    set -- $s     # $1 is field 3 (state): utime and stime are fields 14 and 15
    echo $(( (${12} + ${13}) / tck ))
}

used=0 interrupted=0
while kill -0 "$pid" 2>/dev/null; do
    c=$(cpu_of "$pid")
    [ -n "$c" ] && used=$c
    if [ "$used" -ge "$cpu" ]; then
        kill -INT "$pid" 2>/dev/null
        interrupted=1
        break
    fi
    sleep 2
done
wait "$pid"
rc=$?
wall=$(( $(date +%s) - start ))

execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
findings=$(ls "$out/$target"-crash-* "$out/$target"-timeout-* "$out/$target"-oom-* \
           "$out/$target"-leak-* 2>/dev/null | wc -l)
# units over libFuzzer's 10 s (wall time: on a shared machine, often a worker that was not
# scheduled); kept as $out/TARGET-slow-unit-*, not findings: time them alone
slow=$(ls "$out/$target"-slow-unit-* 2>/dev/null | wc -l)
line=$(printf '%s\tcpu_s=%s\twall_s=%s\texecs=%s\tedges=%s\tfeatures=%s\tcorpus=%s\tfindings=%s\tslow_units=%s\trc=%s' \
       "$target" "$used" "$wall" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$findings" "$slow" "$rc")
echo "$line"
echo "$line" >>"$out/campaigns.tsv"

if [ "$interrupted" -ne 1 ]; then
    echo "campaign.sh: $target stopped by itself after ${used} CPU-s (exit $rc): see $log" >&2
    grep -E 'ERROR|SUMMARY|runtime error|ALARM' "$log" | head -5 >&2
    exit 1
fi
if [ "$merge" -eq 1 ]; then
    OMP_NUM_THREADS=1 "$bin" -merge=1 -rss_limit_mb=2048 -timeout=20 "fuzz/corpus/$target" \
        "$out/work/$target" >"$out/$target.merge.log" 2>&1 \
        || { echo "campaign.sh: merging $target's corpus failed: see $out/$target.merge.log" >&2; exit 1; }
    grep -E 'MERGE-OUTER: [0-9]+ new files' "$out/$target.merge.log" | tail -1
fi
exit 0
