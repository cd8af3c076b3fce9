#!/usr/bin/env bash
# What the tests need that Python does not bring: a real redis-server and Chromium.
# Installed with apt-get when missing and we are root; otherwise one line saying what to install.
set -eu
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing: ${need[*]} — install them with: sudo apt-get install -y ${need[*]}"
  exit 1
fi
echo "installing ${need[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
