#!/usr/bin/env bash
# run_shards.sh — docs/scale-out.md on one machine: split the latents into shards, size a task's
# memory with `latup run --dry-run --json`, then run one batch `latup run` per shard, JOBS at a
# time (GNU parallel when it is installed, else xargs -P), each shard's images in OUT/shard_K/.
#
#   examples/scale-out/run_shards.sh [LATENT_DIR [OUT_DIR [N_SHARDS [JOBS]]]]
#
# Without arguments it makes 6 copies of the committed demo latent and uses the committed small
# models (random weights: the images are noise), so it runs as-is from the repository root after
# `make`. Set LATUP, MODEL, VAE, SCALE to use your own. Needs bash, python3 (to read the plan's
# JSON) and GNU parallel or xargs.
set -euo pipefail
LATUP=${LATUP:-build/latup}
MODEL=${MODEL:-ref_data/small/model.safetensors.gz}
VAE=${VAE:-ref_data/vae/flux_small.ldm.safetensors.gz}
SCALE=${SCALE:-2}
LATENTS=${1:-}
OUT=${2:-build/scale-out/images}
SHARDS=${3:-3}
JOBS=${4:-2}

work=$(dirname "$OUT")/shards
mkdir -p "$work" "$OUT"
if [ -z "$LATENTS" ]; then # demo input: six latents
    LATENTS=$(dirname "$OUT")/latents
    mkdir -p "$LATENTS"
    for i in 1 2 3 4 5 6; do cp ref_data/demo/latent.npy "$LATENTS/demo_$i.npy"; done
fi

# 1. shards: lists of files, round robin
rm -f "$work"/shard_*
find "$LATENTS" -maxdepth 1 \( -name '*.npy' -o -name '*.latent' \) | sort > "$work/all.txt"
[ -s "$work/all.txt" ] || { echo "run_shards: no .npy or .latent files in $LATENTS" >&2; exit 1; }
split -n "r/$SHARDS" -d -a 3 "$work/all.txt" "$work/shard_"
echo "run_shards: $(wc -l < "$work/all.txt") latents in $(ls "$work"/shard_* | wc -l) shards, $JOBS at a time"

# 2. memory per task: the dry run of one latent plans the largest stage (the latents of a shard
# share a size); the top-level "peak" is what the process holds at most, in bytes
one=$(head -n 1 "$work/all.txt")
peak=$("$LATUP" run -m "$MODEL" -s "$SCALE" --vae "$VAE" -i "$one" --out-dir "$OUT" --dry-run --json |
       python3 -c 'import json, sys; print(json.load(sys.stdin)["peak"])')
threads=$(( $(nproc) / JOBS )); [ "$threads" -ge 1 ] || threads=1
echo "run_shards: each task needs about $(( peak / 1048576 + 1 )) MiB (a scheduler's --mem), $threads threads"

# 3. one batch `latup run` per shard: the models are loaded once per task
task() { # shard file -> OUT/<shard name>/
    local shard=$1 name f
    local inputs=() # -i before each latent: -i takes one file
    name=$(basename "$shard")
    while IFS= read -r f; do inputs+=(-i "$f"); done < "$shard"
    "$LATUP" run -m "$MODEL" -s "$SCALE" --vae "$VAE" "${inputs[@]}" --out-dir "$OUT/$name" \
        --threads "$threads" --quiet
    echo "run_shards: $name done: $(ls "$OUT/$name" | wc -l) images"
}
export -f task
export LATUP MODEL VAE SCALE OUT threads
if command -v parallel > /dev/null; then
    parallel --jobs "$JOBS" --memfree "$peak" --halt now,fail=1 task ::: "$work"/shard_*
else
    printf '%s\n' "$work"/shard_* | xargs -P "$JOBS" -I{} bash -c 'task "$1"' _ {}
fi
echo "run_shards: images in $OUT"
