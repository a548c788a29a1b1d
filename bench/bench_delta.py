"""Benchmark: full run vs delta runs of one tenant (issue 10).

    .venv/bin/python -m bench.bench_delta [--users 20000] [--latency-ms 80] [--changed 0.01]

One process, one simulator (with an added latency per Graph request) and one Azurite. The tenant
is first synced once (a full run into an empty partition, not measured); then, each through
`sync_exclusively` as the CLI and the worker run:

- full: `--full` on the populated table (every user read and found unchanged);
- idle delta: nothing changed since (the aim: at most 2 Graph requests, no employee write);
- delta, 1% changed: that share of users given a new job title first (the aim: exactly those
  rows written).

For each: Graph requests (the simulator's log, this tenant, Graph surface), wall time, rows
written, and the Python heap's peak during the run (tracemalloc; the in-process simulator's
allocations while it serves the run are included, so this is an upper bound of the app's).

Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass

from bench.simulated import measured_run, simulated_tenant


@dataclass(frozen=True)
class Measured:
    mode: str
    graph_requests: int
    seconds: float
    written: int
    peak_mib: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()

    with simulated_tenant(users=args.users, seed=10) as (simulator, tenant):
        results = asyncio.run(_measure(simulator, tenant, args))
    _print(results, args)


async def _measure(simulator, tenant: dict, args: argparse.Namespace) -> dict[str, Measured]:
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    tenant_id = tenant["id"]
    results: dict[str, Measured] = {}
    async with SyncService(load_settings(os.environ)) as service:

        async def run(name: str, *, full: bool) -> None:
            m = await measured_run(service, simulator, tenant_id, full=full, trace_memory=True)
            results[name] = Measured(
                m.report.mode, m.graph_requests, m.seconds, m.report.writes, m.peak_mib or 0.0
            )

        await sync_exclusively(service, RunRequest(tenant_id))  # the table filled, not measured
        simulator.faults.latency(args.latency_ms)
        await run("full", full=True)
        await run("idle delta", full=False)
        members = [u for u in tenant["users"] if u.get("accountEnabled") is not False
               and u.get("userType") != "Guest" and u.get("mail")]  # fmt: skip
        changed = members[: max(1, int(len(tenant["users"]) * args.changed))]
        for number, user in enumerate(changed):
            simulator.patch_user(tenant_id, user["id"], {"jobTitle": f"Changed {number}"})
        await run(f"delta, {args.changed:.0%} changed ({len(changed)} users)", full=False)
    return results


def _print(results: dict[str, Measured], args: argparse.Namespace) -> None:
    full = results["full"]
    print(f"{args.users} users, {args.latency_ms} ms per Graph request\n")
    print("| run | mode | Graph requests | seconds | rows written | peak heap MiB | vs full |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, m in results.items():
        ratio = m.seconds / full.seconds if full.seconds else 0.0
        print(
            f"| {name} | {m.mode} | {m.graph_requests} | {m.seconds:.2f} | {m.written} | "
            f"{m.peak_mib:.0f} | {ratio:.3f} |"
        )


if __name__ == "__main__":
    main()
