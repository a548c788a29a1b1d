"""Benchmark: a full sync of a generated tenant, against a naive script and against the floor.

    .venv/bin/python -m bench.bench_sync [--users 5000] [--latency-ms 80]

All variants run in one process, one after the other, against the same simulator (with an added
latency per Graph request, as a real tenant has) and the same Azurite, so the ratios hold on a
noisy machine even when the absolute seconds do not:

- ours, first run: `sync_exclusively` (lease held, writes fenced, as the CLI and the worker run)
  into an empty partition (every employee is a create);
- ours, no change: the same again (every employee unchanged: reads only);
- baseline: what a script would do: msgraph typed `User` models page by page, then one
  `upsert_entity` per user;
- floor, read: the Graph pages alone, read raw, nothing done with them;
- floor, write: the same number of entities written in batched transactions, nothing read;
- floor, write fenced: the same, each transaction carrying its slot's fence-row update (the
  writer a run holding the lease uses); its ratio to the unfenced floor is the fence's cost.
  Both are the mean of two rounds run A B B A into fresh partitions.
- floor, write raw: the optimal batched writer: the SDK's `submit_transaction` straight, 100
  rows a transaction, 4 in flight, no size check, no fence (what the first full run is held to).

Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from simulator.testing import prepare_trust


async def _timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--latency-ms", type=int, default=80)
    parser.add_argument("--no-baseline", action="store_true", help="skip the (slow) naive script")
    args = parser.parse_args()

    ca = prepare_trust(Path(tempfile.mkdtemp(prefix="bench-trust-")))
    from devtools.azurite import start_azurite
    from simulator import Simulator, World
    from simulator.generator import GeneratorOptions, generate_world

    world = generate_world(GeneratorOptions(users=args.users, seed=3))
    base = world["tenants"][0]
    tenants = {"ours": base["id"]}
    for prefix, variant in (("b", "baseline"), ("f", "floor")):
        # One tenant per variant: same users, separate partitions, no variant helps another.
        tenants[variant] = prefix * 8 + base["id"][8:]
        domains = [{**d, "name": f"{variant}.{d['name']}"} for d in base["verifiedDomains"]]
        world["tenants"].append({**base, "id": tenants[variant], "verifiedDomains": domains})
    azurite = start_azurite()
    simulator = Simulator(World.from_dict(world), ca=ca)
    simulator.start()
    simulator.faults.latency(args.latency_ms)
    try:
        os.environ.update(simulator.environment(tenants["ours"]))
        os.environ["TABLES_CONNECTION_STRING"] = azurite.connection_string
        results = asyncio.run(_measure(tenants, args.users, baseline=not args.no_baseline))
    finally:
        simulator.stop()
        azurite.stop()
    _print(results, args)


async def _measure(tenants: dict[str, str], users: int, *, baseline: bool) -> dict[str, float]:
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.core.engine import RunRequest
    from sync_core.settings import load_settings

    settings = load_settings(os.environ)
    results: dict[str, float] = {}
    async with SyncService(settings) as service:
        request = RunRequest(tenants["ours"], trigger="cli")
        results["ours, first run"] = await _timed(lambda: sync_exclusively(service, request))
        again = RunRequest(tenants["ours"], trigger="cli", full=True)  # a full run, not delta
        results["ours, no change"] = await _timed(lambda: sync_exclusively(service, again))
        if baseline:
            results["baseline script"] = await _timed(
                lambda: _baseline(service, tenants["baseline"])
            )
        results["floor, read"] = await _timed(lambda: _floor_read(service, tenants["floor"]))
        # Unfenced and fenced writes alternate (A B B A), each into a fresh partition: Azurite
        # slows down as the table grows, which would otherwise favour whichever ran first.
        seconds: dict[bool, float] = {False: 0.0, True: 0.0}
        for round_, fenced in enumerate((False, True, True, False)):
            partition = f"{round_}" * 8 + tenants["floor"][8:]
            seconds[fenced] += await _timed(
                lambda: _floor_write(service, partition, users, fenced=fenced)  # noqa: B023
            )
        results["floor, write"] = seconds[False] / 2
        results["floor, write fenced"] = seconds[True] / 2
        partition = "r" * 8 + tenants["floor"][8:]
        results["floor, write raw"] = await _timed(lambda: _floor_raw(service, partition, users))
    return results


async def _baseline(service, tenant_id: str) -> None:
    """A straightforward script: typed models from the SDK, one upsert per user."""
    from azure.data.tables import UpdateMode
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphServiceClient
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph.graph_request_adapter import GraphRequestAdapter

    from sync_core.adapters.credentials import entra_credential, load_app_credential
    from sync_core.adapters.storage_names import EMPLOYEES_TABLE

    settings = service.settings
    credential = entra_credential(settings, tenant_id, await load_app_credential(settings))
    host = settings.graph_base_url.split("//", 1)[1].split(":")[0]
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"{settings.graph_base_url}/.default"], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = settings.graph_api_url
    client = GraphServiceClient(request_adapter=adapter)
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "mail", "givenName", "surname", "displayName",
                "jobTitle", "department", "accountEnabled", "userType"],
        top=999,
    )  # fmt: skip
    config = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(query_parameters=query)
    table = service._tables.get_table_client(EMPLOYEES_TABLE)
    page = await client.users.get(request_configuration=config)
    while page is not None:
        for user in page.value or []:
            if user.account_enabled is False or user.user_type == "Guest" or not user.mail:
                continue
            entity = {
                "PartitionKey": tenant_id,
                "RowKey": user.id,
                "Email": user.mail.lower(),
                "FirstName": user.given_name or "",
                "LastName": user.surname or "",
                "DisplayName": user.display_name or "",
                "Title": user.job_title or "",
                "Department": user.department or "",
            }
            await table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        if not page.odata_next_link:
            break
        page = await client.users.with_url(page.odata_next_link).get()
    await credential.close()


async def _floor_read(service, tenant_id: str) -> None:
    from sync_core.core.config import TenantConfig
    from sync_core.core.mapping import Mapper
    from sync_core.core.scope import Scope

    config = TenantConfig()
    select = (
        Mapper.from_config(config).graph_properties
        | Scope.from_config(config.filter).graph_properties
    )
    directory = await service.open_directory(tenant_id)
    try:
        async for _page in directory.users(select):
            pass
    finally:
        await directory.close()


def _floor_row(tenant_id: str, index: int) -> dict:
    return {
        "PartitionKey": tenant_id,
        "RowKey": f"{index:08d}-0000-4000-8000-000000000000",
        "Email": f"user{index}@contoso.com",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "DisplayName": "Ada Lovelace",
        "Title": "Engineer",
        "Department": "Research",
        "City": "London",
        "SourceHash": "0" * 32,
    }


async def _floor_raw(service, tenant_id: str, users: int) -> None:
    """The optimal batched writer: transactions of 100 straight through the SDK, 4 in flight."""
    from azure.data.tables import UpdateMode

    from sync_core.adapters.storage_names import EMPLOYEES_TABLE

    table = service._tables.get_table_client(EMPLOYEES_TABLE)
    gate = asyncio.Semaphore(4)

    async def send(start: int) -> None:
        async with gate:
            operations = [("upsert", _floor_row(tenant_id, i), {"mode": UpdateMode.REPLACE})
                          for i in range(start, min(start + 100, users))]  # fmt: skip
            await table.submit_transaction(operations)

    await asyncio.gather(*(send(start) for start in range(0, users, 100)))


async def _floor_write(service, tenant_id: str, users: int, *, fenced: bool) -> None:
    from datetime import timedelta

    from sync_core.core.ports import Unfenced
    from sync_core.core.report import new_run_id, utc_now

    lease = Unfenced("the benchmark's write floor")
    if fenced:
        acquired = await service.leases.acquire(
            tenant_id, new_run_id(utc_now()), utc_now(), timedelta(minutes=5)
        )
        assert acquired is not None  # the bench's own tenant: no other run holds it
        lease = acquired
    writer = await service.employees.writer(tenant_id, lease)
    for index in range(users):
        await writer.put_entity(_floor_row(tenant_id, index), "created")
    await writer.flush()
    if not isinstance(lease, Unfenced):
        await service.leases.release(lease)


def _print(results: dict[str, float], args: argparse.Namespace) -> None:
    print(f"\nSync of {args.users:,} generated users, {args.latency_ms} ms added per Graph request")
    print("| variant | seconds | users/s |")
    print("| --- | ---: | ---: |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {args.users / seconds:,.0f} |")
    ours = results["ours, first run"]
    floor = max(results["floor, read"], results["floor, write"])
    print("\nRatios from this one run:")
    if "baseline script" in results:
        print(f"- baseline / ours (first run): {results['baseline script'] / ours:.1f}x faster")
    print(f"- ours (first run) / floor (slower of read and write alone): {ours / floor:.2f}")
    no_change = results["ours, no change"] / results["floor, read"]
    print(f"- ours (no change) / floor read: {no_change:.2f}")
    fence = results["floor, write fenced"] / results["floor, write"]
    print(f"- floor write fenced / unfenced (the fence's cost): {fence:.2f}")
    raw = max(results["floor, read"], results["floor, write raw"])
    print(
        f"- ours (first run) / optimal batched writer (slower of read and raw write): "
        f"{ours / raw:.2f}"
    )


if __name__ == "__main__":
    main()
