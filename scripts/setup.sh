#!/usr/bin/env bash
# Set up d2lnets on a fresh Debian or Ubuntu machine with Python 3.11:
#   1. real Fashion-MNIST from Debian's package dataset-fashion-mnist, and
#      bubblewrap, the sandbox the grader runs students' code in (as root, or
#      with password-less sudo; elsewhere the loader downloads the data and
#      the grader says what to install);
#   2. a virtual environment in .venv with d2lnets, MXNet and the test tools.
# Usage: bash scripts/setup.sh [--gpu]   (--gpu: mxnet-cu112 in place of mxnet)
set -euo pipefail
cd "$(dirname "$0")/.."

extra=cpu
if [ "${1:-}" = "--gpu" ]; then extra=gpu; fi

debian_packages=""
[ -d /usr/share/datasets/fashion-mnist ] || debian_packages="dataset-fashion-mnist"
command -v bwrap >/dev/null || debian_packages="$debian_packages bubblewrap"
if [ -n "$debian_packages" ] && command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="-"; fi
    if [ "$sudo" = "-" ]; then
        echo "setup: not root: skipping Debian's$debian_packages (the loader will download the data)"
    else
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $debian_packages >/dev/null
    fi
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
    python=$(command -v python3.11 || command -v python3)
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv || {
        echo "setup: '$python -m venv' failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extra,test]"
echo "setup: done ($(.venv/bin/python --version), extra [$extra])"
