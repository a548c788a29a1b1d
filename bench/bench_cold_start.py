"""The function app's cold import: what the Functions host pays on every cold start.

`import function_app` no longer loads msgraph, kiota, aiohttp or azure-identity (they load when
the worker or a route first needs Graph or a managed identity). The old layout cannot be
imported any more, so the "before" is measured as what it loaded: the app plus those SDKs.
Each variant runs in a fresh interpreter, alternating, several rounds; the ratio of the medians
is the number to read (the seconds move with the machine's load, the ratio much less).

    .venv/bin/python -m bench.bench_cold_start --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "import function_app, msgraph, msgraph_core, kiota_http, aiohttp, azure.identity.aio"
AFTER = "import function_app"


def cold_import_seconds(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    interpreter = [cold_import_seconds("pass") for _ in range(3)]
    before: list[float] = []
    after: list[float] = []
    for round_number in range(args.rounds):
        # A B, then B A: neither variant always runs with the warmer file cache.
        pair = [(before, BEFORE), (after, AFTER)]
        for samples, statement in pair if round_number % 2 == 0 else reversed(pair):
            samples.append(cold_import_seconds(statement))
    bare = statistics.median(interpreter)
    old, new = statistics.median(before), statistics.median(after)
    print(f"interpreter alone         {bare:6.3f} s")
    print(f"before (app + Graph SDKs) {old:6.3f} s")
    print(f"after (function_app only) {new:6.3f} s")
    print(f"ratio before / after      {old / new:6.2f}")
    print(f"ratio, interpreter start-up taken out: {(old - bare) / (new - bare):.2f}")


if __name__ == "__main__":
    main()
