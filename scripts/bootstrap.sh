#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine: a virtual environment with the
# pinned Python packages, and Azurite from npm. Quick when everything is already in place.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

# Refuse a Python the app cannot run on, before a long install that would end in an
# AttributeError: azure-functions 1.x (requirements.txt pins it; 2.x needs 3.13) and Flex
# Consumption's Python 3.11 runtime (infra/) fix the version to 3.11 or 3.12.
if ! command -v "$python" >/dev/null; then
  echo "bootstrap: no Python found; install Python 3.11 (or 3.12) and run again," \
    "or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$version" in
  3.11 | 3.12) ;;
  *)
    echo "bootstrap: $python is Python $version; this project needs Python 3.11 (or 3.12):" \
      "azure-functions 1.x runs on 3.10-3.12 only and the app uses 3.11 features." >&2
    echo "bootstrap: install python3.11 (e.g. apt-get install python3.11 python3.11-venv," \
      "or pyenv install 3.11) and run again, or set PYTHON=/path/to/python3.11." >&2
    exit 2
    ;;
esac
if [[ -x .venv/bin/python ]]; then
  venv_version="$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  case "$venv_version" in
    3.11 | 3.12) ;;
    *)
      echo "bootstrap: .venv was made with Python $venv_version; remove it (rm -rf .venv)" \
        "and run again with Python 3.11." >&2
      exit 2
      ;;
  esac
fi

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
