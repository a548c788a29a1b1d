"""Benchmark: a tenant scoped by groups, nested 3 deep (issue 15).

    .venv/bin/python -m bench.bench_groups [--users 20000] [--latency-ms 80] [--changed 0.01]

One process, one simulator (with an added latency per Graph request) and one Azurite. Ten scope
groups each hold a third of their users directly and a nested group, which holds another third
and a nested group of its own (3 levels, 30 groups); 90 % of the users belong to one of them.
The configuration includes the ten (Clean Up on, a guard wide enough for the change). After a
first run (not measured), each through `sync_exclusively` as the CLI and the worker run:

- full: `--full` on the populated table (transitive members, the group delta rounds, users);
- idle delta: nothing changed (the aim: at most 3 Graph requests, no employee write);
- delta, 1% of memberships changed: half of that share removed from their (nested) group, the
  other half of users in no group added to one (the aim: exactly those rows created / deleted).

Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

from bench.simulated import measured_run, simulated_tenant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()

    def with_group_permission(tenant: dict) -> None:
        consents = tenant["consents"]
        for client in consents:
            consents[client] = [*consents[client], "GroupMember.Read.All"]

    with simulated_tenant(users=args.users, seed=15, adjust=with_group_permission) as (
        simulator,
        tenant,
    ):
        results = asyncio.run(_measure(simulator, tenant, args))
    _print(results, args)


def _build_groups(simulator, tenant_id: str, users: list[str]) -> tuple[list[str], dict[str, str]]:
    """Ten listed groups nested 3 deep; returns the listed ids and user -> its group."""
    listed: list[str] = []
    home: dict[str, str] = {}
    grouped = users[: int(len(users) * 0.9)]
    per_group = max(1, len(grouped) // 30)
    chunks = [grouped[i * per_group : (i + 1) * per_group] for i in range(30)]
    for number in range(10):
        ids = [str(uuid.uuid4()) for _ in range(3)]
        # Built from the innermost out, so each nests the one below it.
        for level in (2, 1, 0):
            members = chunks[number * 3 + level]
            nested = [ids[level + 1]] if level < 2 else []
            simulator.groups.put_group(tenant_id, ids[level], f"Team {number}.{level}",
                                       [*members, *nested])  # fmt: skip
            home.update(dict.fromkeys(members, ids[level]))
        listed.append(ids[0])
    return listed, home


async def _measure(simulator, tenant: dict, args: argparse.Namespace) -> dict[str, tuple]:
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.config_parse import parse_config
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    tenant_id = tenant["id"]
    users = [u["id"] for u in tenant["users"]]
    listed, home = _build_groups(simulator, tenant_id, users)
    config = parse_config({
        "filter": {"groups": {"include": listed}},
        "cleanUp": {"enabled": True, "maxDeletes": 100000, "maxDeletePercent": 100},
    })  # fmt: skip
    results: dict[str, tuple] = {}
    async with SyncService(load_settings(os.environ)) as service:
        await service.configs.put(tenant_id, config)

        async def run(name: str, *, full: bool) -> None:
            m = await measured_run(service, simulator, tenant_id, full=full)
            c = m.report.counts
            results[name] = (m.report.mode, m.graph_requests, m.seconds, c.created, c.updated,
                             c.deleted)  # fmt: skip

        await sync_exclusively(service, RunRequest(tenant_id))  # the table filled, not measured
        simulator.faults.latency(args.latency_ms)
        await run("full", full=True)
        await run("idle delta", full=False)
        moved = max(2, int(len(home) * args.changed))
        leaving = list(home)[: moved // 2]
        joining = [u for u in users if u not in home][: moved - len(leaving)]
        for user in leaving:
            simulator.groups.remove_member(tenant_id, home[user], user)
        for number, user in enumerate(joining):
            simulator.groups.add_member(tenant_id, listed[number % 10], user)
        await run(f"delta, {args.changed:.0%} of memberships changed ({moved})", full=False)
    return results


def _print(results: dict[str, tuple], args: argparse.Namespace) -> None:
    full_seconds = results["full"][2]
    print(f"{args.users} users, 10 scope groups nested 3 deep, {args.latency_ms} ms per request\n")
    print("| run | mode | Graph requests | seconds | created | updated | deleted | vs full |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (mode, requests, seconds, created, updated, deleted) in results.items():
        ratio = seconds / full_seconds if full_seconds else 0.0
        print(f"| {name} | {mode} | {requests} | {seconds:.2f} | {created} | {updated} | "
              f"{deleted} | {ratio:.3f} |")  # fmt: skip
    print(json.dumps({k: list(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
