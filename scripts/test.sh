#!/usr/bin/env bash
# The test command: unit, integration (simulator + Azurite, started by the fixtures), functions
# and infrastructure tests. A skipped test fails the run (see tests/conftest.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
bash scripts/install-browser.sh
bash scripts/checkov.sh --install-only
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m mypy  # settings in mypy.ini: strict on sync_core/core
# One worker per core (PYTEST_WORKERS=0 runs in one process); each worker starts its own
# Azurite and simulator on free ports.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-auto}" "$@"
