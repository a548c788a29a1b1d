"""Benchmark: reading the manager on full runs, and what manager fields cost a run (issue 16).

    .venv/bin/python -m bench.bench_manager [--users 5000] [--latency-ms 80] [--span 8]

One process, one simulator (80 ms added per Graph request) and one Azurite; every user gets a
manager among users/span managers (seeded). First the ways Graph's docs allow a full run to
learn every user's manager, each read raw through the app's Graph adapter and dropped:

- expand: `/users?$expand=manager($select=...)`, which Graph caps at 100 users a page
  (known issues 13635; simulator/manager.py);
- listing + delta round: `/users` at 999 a page for the users' own values (and the managers',
  every user being listed in a full run), plus an initial `/users/delta?$select=id,manager`
  round for the ids (`manager@delta`), at the simulator's 100 users a delta page;
- listing + one `GET /users/{id}/manager` a user: counted, not run (one request per user).

Then runs through `sync_exclusively`, as the CLI and the worker run them: a full run without
and with manager fields (rows already stored, so reading dominates), an idle delta tick with
manager fields, and a delta run after one manager was renamed (its reports rewritten).
Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import tracemalloc
from typing import Any

from bench.simulated import measured_run, simulated_tenant

MANAGER_FIELDS = [
    {"name": "ManagerName", "source": "manager.displayName"},
    {"name": "ManagerEmail", "source": "manager.email"},
    {"name": "ManagerTitle", "source": "manager.jobTitle"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--span", type=int, default=8, help="users per manager")
    parser.add_argument(
        "--memory-only", type=int, metavar="USERS", help="only the index's memory at USERS users"
    )
    args = parser.parse_args()
    if args.memory_only:
        _print_memory(args.memory_only, args.span)
        return

    with simulated_tenant(users=args.users, seed=16, managers_span=args.span) as (
        simulator,
        tenant,
    ):
        managers = sorted({u["manager"] for u in tenant["users"] if u.get("manager")})
        reads, runs = asyncio.run(_measure(simulator, tenant, managers, args))
    _print(reads, runs, args)


async def _measure(simulator: Any, tenant: dict, managers: list[str], args: Any) -> Any:
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.config_parse import parse_config
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    tenant_id = tenant["id"]

    def requests() -> int:
        return sum(1 for r in simulator.requests if r.surface == "graph" and r.tenant == tenant_id)

    reads: dict[str, tuple[int, float]] = {}
    runs: dict[str, tuple[str, int, float, int, float]] = {}
    async with SyncService(load_settings(os.environ)) as service:
        await sync_exclusively(service, RunRequest(tenant_id))  # rows stored, not measured
        simulator.faults.latency(args.latency_ms)
        directory = await service.open_directory(tenant_id)
        try:
            for name, read in _read_strategies(directory, os.environ["GRAPH_BASE_URL"]).items():
                simulator.clear_requests()
                started = time.perf_counter()
                await read()
                reads[name] = (requests(), time.perf_counter() - started)
        finally:
            await directory.close()

        async def run(name: str, *, full: bool) -> None:
            m = await measured_run(service, simulator, tenant_id, full=full, trace_memory=True)
            mode, writes = m.report.mode, m.report.writes
            runs[name] = (mode, m.graph_requests, m.seconds, writes, m.peak_mib or 0.0)

        await run("full, no manager field", full=True)
        document = {"fields": [*parse_config({}).to_json()["fields"], *MANAGER_FIELDS]}
        await service.configs.put(tenant_id, parse_config(document))
        simulator.faults.clear()
        await sync_exclusively(service, RunRequest(tenant_id))  # every row gets the fields
        simulator.faults.latency(args.latency_ms)
        await run("full, manager fields", full=True)
        await run("idle delta, manager fields", full=False)
        busiest = max(managers, key=lambda m: sum(u.get("manager") == m for u in tenant["users"]))
        reports = sum(1 for u in tenant["users"] if u.get("manager") == busiest)
        simulator.patch_user(tenant_id, busiest, {"displayName": "Renamed Manager"})
        await run(f"delta, a manager of {reports} renamed", full=False)
    return reads, runs


def _read_strategies(directory: Any, graph: str) -> dict[str, Any]:
    from sync_core.adapters.graph_delta import delta_url

    own = ["id", "displayName", "jobTitle", "mail", "proxyAddresses", "userPrincipalName"]

    async def expand() -> None:
        async for _ in directory.users_with_manager(own, own, None):
            pass

    async def listing_and_round() -> None:
        async for _ in directory.users(own):
            pass
        async for _ in directory.delta_pages(delta_url(f"{graph}/v1.0", ["id", "manager"],
                                                       latest=False)):  # fmt: skip
            pass

    return {"expand (100 a page)": expand, "listing + delta round": listing_and_round}


def _print_memory(users: int, span: int) -> None:
    """What a full run keeps for manager fields, through the run's own code: every user of
    expanded pages of 100 annotated (user -> manager id, each manager's values), then the index
    changes against an empty stored index (the first run: every row to write)."""
    import uuid

    from sync_core.core.config_parse import parse_config
    from sync_core.core.manager import StoredIndexRows, full_run_changes
    from sync_core.core.manager_pass import ManagerSync
    from sync_core.core.ports import Unfenced

    rng = random.Random(16)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(users)]
    managers = ids[: max(1, users // span)]
    sync = ManagerSync("t", parse_config({"fields": MANAGER_FIELDS}), None, Unfenced("bench"))
    sync._expanded = True  # as after listing() without filter.odata: pages carry the manager
    tracemalloc.start()
    for start in range(0, users, 100):
        page = []
        for user_id in ids[start : start + 100]:
            boss = rng.choice(managers)
            page.append({"id": user_id, "displayName": "Someone", "manager": {
                "id": boss, "displayName": f"Manager {boss[:8]}", "jobTitle": "Head of Things",
                "mail": f"{boss[:8]}@contoso.com"}})  # fmt: skip
        asyncio.run(sync.annotate_listing(page, None))
    kept, _ = tracemalloc.get_traced_memory()
    changes = full_run_changes(StoredIndexRows({}, {}), sync._reports, sync._values)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{users} users, a manager per {span}: kept after the listing {kept / 2**20:.1f} MiB, "
          f"peak with the index changes {peak / 2**20:.1f} MiB "
          f"({len(changes.reports)} reports, {len(changes.managers)} managers)")  # fmt: skip


def _print(reads: dict, runs: dict, args: Any) -> None:
    print(f"{args.users} users, a manager per {args.span}, {args.latency_ms} ms per request\n")
    print("| full-run read of every manager | Graph requests | seconds |")
    print("| --- | ---: | ---: |")
    for name, (count, seconds) in reads.items():
        print(f"| {name} | {count} | {seconds:.2f} |")
    print(f"| listing + GET /users/{{id}}/manager each | {args.users // 999 + 1 + args.users} "
          f"(counted) | - |\n")  # fmt: skip
    print("| run | mode | Graph requests | seconds | rows written | peak heap MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, (mode, count, seconds, written, peak) in runs.items():
        print(f"| {name} | {mode} | {count} | {seconds:.2f} | {written} | {peak:.0f} |")
    names = list(reads)
    if len(names) == 2 and reads[names[0]][1]:
        ratio = reads[names[1]][1] / reads[names[0]][1]
        print(f"\n- {names[1]} / {names[0]} (seconds): {ratio:.2f}")
    full, with_managers = runs["full, no manager field"], runs["full, manager fields"]
    print(f"- full run with / without manager fields (seconds): {with_managers[2] / full[2]:.2f}")


if __name__ == "__main__":
    main()
