#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine: a virtual environment with the
# pinned Python packages, and Azurite from npm. Quick when everything is already in place.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

stamp=.venv/.requirements-sha256
wanted="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "bootstrap: installing Python packages into .venv" >&2
  [[ -x .venv/bin/python ]] || "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" >"$stamp"
fi

stamp=node_modules/.package-lock-sha256
wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -x node_modules/.bin/azurite || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "bootstrap: installing Azurite (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" >"$stamp"
fi
