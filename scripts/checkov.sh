#!/usr/bin/env bash
# Runs checkov's Bicep policies over infra/, offline (no Prisma Cloud download).
#
# checkov gets its own virtual environment, .venv-checkov/, because it pins an older pycep-parser
# than the infra tests use. The environment is made on first use and remade whenever
# requirements-checkov.txt changes, so a fresh clone or CI needs nothing beforehand.
#
#   scripts/checkov.sh                 install if needed, then check infra/
#   scripts/checkov.sh --install-only  install if needed (CI, before pytest's tests/infra)
#   scripts/checkov.sh -o json         any other arguments go to checkov
#
# CHECKOV_VENV overrides the environment's location; PYTHON the interpreter that makes it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHECKOV_VENV:-$root/.venv-checkov}"
requirements="$root/requirements-checkov.txt"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
stamp="$venv/.requirements-sha256"
if [[ ! -x "$venv/bin/checkov" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  echo "checkov: installing $(grep -E '^checkov==' "$requirements") into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  log="$(mktemp)"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "$wanted" >"$stamp"
fi

if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi

cd "$root"
exec "$venv/bin/checkov" --framework bicep --skip-download --directory infra --quiet --compact "$@"
