#!/usr/bin/env bash
# What building sfu/_native.abi3.so needs: a C compiler and the headers of the Python that runs
# the virtualenv. Installed with apt-get when missing and we are root; otherwise the build stops
# with one line saying what to install (sfu/_native_build.py).
set -eu
python="$1"
need=()
command -v "${CC:-cc}" >/dev/null || need+=(gcc)
"$python" -c 'import pathlib, sys, sysconfig
sys.exit(not (pathlib.Path(sysconfig.get_paths()["include"]) / "Python.h").is_file())' \
  || need+=(python3-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  exit 0  # the build says what is missing
fi
echo "installing ${need[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
