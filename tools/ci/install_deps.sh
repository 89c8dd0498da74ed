#!/usr/bin/env bash
# Installs the Debian packages latup's build and tests need, only those missing (idempotent);
# python3-numpy runs the Python package's tests (make test-python).
# Used by .ci/run and `make demo`. Needs root (or sudo) only when something is missing.
#   tools/ci/install_deps.sh          build + tests
#   tools/ci/install_deps.sh fuzz     also clang and libFuzzer (make fuzz)
set -euo pipefail
PKGS="build-essential pkg-config libopenblas-openmp-dev libcmocka-dev zlib1g-dev python3-numpy"
[ "${1:-}" = "fuzz" ] && PKGS="$PKGS clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
