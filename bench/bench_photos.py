"""Benchmark: profile photos of one tenant (issue 16).

    .venv/bin/python -m bench.bench_photos [--users 20000] [--with-photo 0.8] [--latency-ms 80]
        [--changed 0.01]

One process, one simulator (with an added latency per Graph request, the JSON batch and each
photo download included) and one Azurite (tables and blobs). The tenant is first synced without
photos (not measured); then, each through `sync_exclusively` as the worker runs it:

- reference: a full run with photos off (every user read and found unchanged);
- first photo run: `photos.enabled` turned on (a full run: every employee's metadata read, every
  photo downloaded);
- daily refresh: `--changed` of the photos given a new ETag, then a full run (the aim:
  downloads = changed photos, metadata requests <= users / 20);
- idle delta tick: nothing changed (the aim: no photo request at all).

For each: Graph requests (outer, as sent: $batch POSTs, downloads, the rest), the metadata
requests inside the batches, photos downloaded, wall time.

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
    batch_posts: int
    inner_metadata: int
    downloads: int
    seconds: float
    employees: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--with-photo", type=float, default=0.8)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()

    with simulated_tenant(users=args.users, seed=16) as (simulator, tenant):
        results = asyncio.run(_measure(simulator, tenant, args))
    _print(results, args)


async def _measure(simulator, tenant: dict, args: argparse.Namespace) -> dict[str, Measured]:
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.config_parse import parse_config
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    tenant_id = tenant["id"]
    users = tenant["users"]
    with_photo = users[: int(len(users) * args.with_photo)]
    simulator.photos.seed(tenant_id, [u["id"] for u in with_photo])
    results: dict[str, Measured] = {}
    async with SyncService(load_settings(os.environ)) as service:

        async def run(name: str, *, full: bool) -> None:
            m = await measured_run(service, simulator, tenant_id, full=full)
            log = [r for r in simulator.requests if r.tenant == tenant_id]
            graph = [r for r in log if r.surface == "graph"]
            results[name] = Measured(
                m.report.mode,
                m.graph_requests,
                sum(1 for r in graph if r.path == "/v1.0/$batch"),
                sum(1 for r in log if r.surface == "batch"),
                sum(1 for r in graph if r.path.endswith("/$value")),
                m.seconds,
                m.report.counts.employees,
            )

        await sync_exclusively(service, RunRequest(tenant_id))  # without photos, not measured
        simulator.faults.latency(args.latency_ms)
        await run("full run, photos off (reference)", full=True)
        await service.configs.put(
            tenant_id, parse_config({"photos": {"enabled": True, "size": "240x240"}})
        )
        await run("first photo run", full=False)  # the changed configuration makes it full
        stored = (await service.employees.load_index(tenant_id)).hashes
        employed = [u for u in with_photo if u["id"] in stored]  # photos of employees only
        changed = employed[: max(1, int(len(employed) * args.changed))]
        for user in changed:
            simulator.photos.set_photo(tenant_id, user["id"])
        await run(f"daily refresh, {len(changed)} photos changed", full=True)
        await run("idle delta tick", full=False)
    return results


def _print(results: dict[str, Measured], args: argparse.Namespace) -> None:
    print(
        f"{args.users} users, {args.with_photo:.0%} with a photo, "
        f"{args.latency_ms} ms per Graph request\n"
    )
    print(
        "| run | mode | employees | Graph requests | $batch POSTs | metadata reads (in batches) "
        "| downloads | seconds |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in results.items():
        print(
            f"| {name} | {m.mode} | {m.employees} | {m.graph_requests} | {m.batch_posts} | "
            f"{m.inner_metadata} | {m.downloads} | {m.seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
