"""Benchmark: one large tenant end to end (issue 19): first full run, full re-run, idle delta run,
delta run after a share of the users changed.

    .venv/bin/python -m bench.bench_large [--users 100000] [--changed 0.01] [--latency-ms 0]

One simulator and one Azurite (this process starts both); each run is a fresh Python process
(`--run`, below), as the CLI and a Functions worker are, holding the lease through
`sync_exclusively`. For each run: its wall time inside the process, Graph requests (the
simulator's log for this tenant), Table Storage requests counted as the SDK sends them (a
request hook: devtools/table_requests.py; by table, and how many write), and the process's peak
RSS (`VmHWM` of /proc/self/status at its end: the run's process alone, interpreter and imports
included, the simulator and Azurite not).

Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simulator.testing import prepare_trust


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--run", choices=("full", "delta"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(asyncio.run(_one_run(full=args.run == "full"))))
        return

    ca = prepare_trust(Path(tempfile.mkdtemp(prefix="bench-trust-")))
    from devtools.azurite import start_azurite
    from simulator import Simulator, World
    from simulator.generator import GeneratorOptions, generate_world

    world = generate_world(GeneratorOptions(users=args.users, seed=19))
    tenant = world["tenants"][0]
    azurite = start_azurite()
    simulator = Simulator(World.from_dict(world), ca=ca)
    simulator.start()
    simulator.faults.latency(args.latency_ms)
    try:
        env = {**os.environ, **simulator.environment(tenant["id"])}
        env["TABLES_CONNECTION_STRING"] = azurite.connection_string
        results = _measure(simulator, tenant, env, args)
    finally:
        simulator.stop()
        azurite.stop()
    _print(results, args)


def _measure(simulator: Any, tenant: dict[str, Any], env: dict[str, str],
             args: argparse.Namespace) -> dict[str, dict[str, Any]]:  # fmt: skip
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, *, full: bool) -> None:
        simulator.clear_requests()
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_large", "--run", "full" if full else "delta"],
            env=env,
            stdout=subprocess.PIPE,
        )
        output, _ = child.communicate()
        assert child.returncode == 0, f"the {name} run's process failed ({child.returncode})"
        measured = json.loads(output)
        measured["graph_requests"] = sum(
            1 for r in simulator.requests if r.surface == "graph" and r.tenant == tenant["id"]
        )
        results[name] = measured

    run("first full run", full=True)
    run("full re-run", full=True)
    run("idle delta", full=False)
    members = [u for u in tenant["users"] if u.get("accountEnabled") is not False
               and u.get("userType") != "Guest" and u.get("mail")]  # fmt: skip
    changed = members[: max(1, int(len(tenant["users"]) * args.changed))]
    for number, user in enumerate(changed):
        simulator.patch_user(tenant["id"], user["id"], {"jobTitle": f"Changed {number}"})
    run(f"delta, {args.changed:.0%} changed ({len(changed)} users)", full=False)
    return results


async def _one_run(*, full: bool) -> dict[str, Any]:
    from devtools.table_requests import TableRequestCounter
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    counter = TableRequestCounter()
    settings = load_settings(os.environ)
    async with SyncService(settings, table_request_hook=counter) as service:
        counter.clear()  # the tables' creation is the process's, not the run's
        started = time.perf_counter()
        report = await sync_exclusively(service, RunRequest(settings.tenant_id, full=full))
        seconds = time.perf_counter() - started
    assert report.status == "succeeded", report.errors
    # The process's peak resident set since exec (the parent's pages shared at fork excluded,
    # which getrusage's ru_maxrss would count).
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {
        "peak_rss_mib": peak_kib / 1024,
        "mode": str(report.mode),
        "seconds": seconds,
        "written": report.writes,
        "table_requests": counter.total,
        "table_writes": counter.writes,
        "by_table": dict(counter.by_table()),
    }


def _print(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.users:,} generated users, {args.latency_ms} ms added per Graph request\n")
    print("| run | mode | seconds | Graph requests | table requests (writes) | rows written "
          "| peak RSS MiB |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in results.items():
        print(
            f"| {name} | {m['mode']} | {m['seconds']:.2f} | {m['graph_requests']} | "
            f"{m['table_requests']} ({m['table_writes']}) | {m['written']} | "
            f"{m['peak_rss_mib']:.0f} |"
        )
    print("\nTable requests by table:")
    for name, m in results.items():
        print(f"- {name}: {m['by_table']}")


if __name__ == "__main__":
    main()
