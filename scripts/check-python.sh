#!/usr/bin/env bash
# Stop with one clear line when the Python given is missing or too old.
set -eu
py="${1:-python3}"
command -v "$py" >/dev/null || { echo "$py not found: install Python 3.11 or newer"; exit 1; }
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "$py is older than 3.11: install Python 3.11 or newer"; exit 1; }
"$py" -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "$py lacks venv/ensurepip: apt-get install python3-venv"; exit 1; }
