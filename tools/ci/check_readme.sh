#!/usr/bin/env bash
# check_readme.sh — runs every command README.md shows from "## Using it" up to "## Building and
# testing" (the sections that use the committed files; the real-model examples above them need
# downloads), one logical line at a time from the ```sh blocks: those starting with build/latup,
# examples/ or PYTHONPATH=python (a line ending in \ or inside a '...' string goes on). `make`
# lines and compiler lines are left to `make check-install`.
# Exits non-zero naming each command that failed. Run from the repository root after `make`.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/bin:$PATH" # Debian's python3 (numpy) before any other
n=0
bad=0
while IFS= read -r -d "" cmd; do
    case "$cmd" in
    build/latup* | examples/* | PYTHONPATH=python*) ;;
    *) continue ;;
    esac
    n=$((n + 1))
    if out=$(bash -c "$cmd" 2>&1 > /dev/null); then
        first=${cmd%%$'\n'*}
        echo "README ok:     ${first:0:110}"
    else
        echo "README FAILED: $cmd"
        echo "$out" | tail -n 3
        bad=$((bad + 1))
    fi
done < <(awk '/^## Using it/ {on = 1} /^## Building and testing/ {on = 0}
              on && /^```sh/ {code = 1; next} /^```/ {code = 0; next}
              on && code { if (!open) sub(/[ \t]+#.*$/, ""); line = line $0;
                           if (line ~ /\\$/) { sub(/\\$/, "", line); next }
                           open = gsub(/\047/, "\047", line) % 2; if (open) { line = line "\n"; next }
                           printf "%s%c", line, 0; line = "" }' README.md)
echo "check_readme: $n commands from README.md, $bad failed"
[ "$n" -gt 10 ] && [ "$bad" -eq 0 ]
