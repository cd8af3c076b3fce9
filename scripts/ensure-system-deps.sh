#!/usr/bin/env bash
# What the tests need that Python does not bring: a real redis-server, Chromium, the
# GStreamer WebRTC stack (webrtcbin driven from Debian's own python3 through python3-gi) that
# publishes like a field encoder, and Apertium with its English-Spanish pair (the offline
# translator). Installed with apt-get when missing and we are root; otherwise one line saying
# what to install.
set -eu
packages=(
  redis-server chromium
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice
  apertium apertium-eng-spa
)
need=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || need+=("$package")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing: ${need[*]} — install them with: sudo apt-get install -y ${need[*]}"
  exit 1
fi
echo "installing ${need[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
