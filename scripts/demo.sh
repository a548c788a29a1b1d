#!/usr/bin/env bash
# The demo: a simulated tenant of a few thousand users synced into Azurite, with the report.
# No Azure account needed. Extra arguments go to devtools.demo (--users N, --seed S).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec .venv/bin/python -m devtools.demo "$@"
