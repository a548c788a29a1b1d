"""Every benchmark still runs, at a size that proves nothing but that it runs: a bench that
broke (bench_sync sent a trigger the report model no longer accepts) went unnoticed until
someone wanted its numbers. Each runs as an operator runs it, `python -m bench.<name>`, and
starts its own Azurite and simulator (bench/simulated.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMALL = {
    "bench_sync": ["--users", "120", "--latency-ms", "0", "--no-baseline"],
    "bench_delta": ["--users", "300", "--latency-ms", "0"],
    "bench_groups": ["--users", "300", "--latency-ms", "0"],
    "bench_idle_run": ["--users", "30"],
    "bench_manager": ["--users", "200", "--latency-ms", "0"],
    "bench_photos": ["--users", "100", "--latency-ms", "0"],
    "bench_tick": ["--tenants", "20", "--days", "2", "--due", "2"],
    "bench_large": ["--users", "300"],
    "bench_cold_start": ["--rounds", "1"],
}


def test_every_bench_is_listed() -> None:
    benches = {path.stem for path in (ROOT / "bench").glob("bench_*.py")}
    assert benches == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_bench_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *SMALL[name]],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.strip(), "a bench prints what it measured"
