"""Benchmark: one timer tick over many registered tenants with a month of history (issue 19).

    .venv/bin/python -m bench.bench_tick [--tenants 1000] [--days 30] [--due 5]

One Azurite. Each tenant gets a configuration, `--days` finished run records (one a day: the
daily full run; idle delta checks leave no record) and its run index row as the runs left it;
`--due` tenants have their last run an interval ago, the others ran a minute ago. Then one
`scheduled_tick` is timed, and every storage request it makes is counted at the transport
(azure-core's aiohttp transport, tables and queues alike). The aim: requests O(due tenants) +
O(tenants / 1,000), and the tick under 10 s at 10,000 tenants.

Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport

from devtools.azurite import start_azurite
from sync_core.adapters.storage_names import CONFIGS_TABLE, LEASES_TABLE, RUNS_TABLE, SYNC_QUEUE
from sync_core.adapters.tables.run_index_rows import PARTITION, index_properties
from sync_core.adapters.tables.run_record_rows import run_entity  # the row layout, written in bulk
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus, new_run_id, utc_now
from sync_core.core.run_index import RunIndex, finished
from sync_core.settings import load_settings

HOME = "11111111-2222-4333-8444-555555555555"
REQUESTS: Counter[str] = Counter()


def _count_requests() -> None:
    """A transport hook: every request any async Azure client sends, by service and method."""
    send = AioHttpTransport.send

    async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        service = "queue" if "/sync-requests" in request.url else "table"
        REQUESTS[f"{service} {request.method}"] += 1
        return await send(self, request, **kwargs)

    AioHttpTransport.send = counted  # type: ignore[method-assign]


async def _seed(environ: dict[str, str], tenants: list[str], days: int, due: int) -> None:
    now = utc_now()
    async with SyncService(load_settings(environ, needs_graph=False)) as service:
        tables = service._tables
        assert tables is not None
        configs = tables.get_table_client(CONFIGS_TABLE)
        runs = tables.get_table_client(RUNS_TABLE)
        index_rows: list[tuple[str, dict[str, Any]]] = []
        slots = asyncio.Semaphore(16)

        async def one(position: int, tenant: str) -> None:
            last = now - (timedelta(hours=1) if position < due else timedelta(minutes=1))
            reports = []
            for day in range(days - 1, -1, -1):
                at = last - timedelta(days=day)
                begun = RunReport.begun(
                    new_run_id(at), tenant, RunStatus.RUNNING, dry_run=False,
                    trigger="schedule", at=at,
                )  # fmt: skip
                reports.append(replace(begun, status=RunStatus.SUCCEEDED, finished_at=at))
            index = RunIndex(adopted=True)  # as after the upgrade: nothing left in SyncRuns
            for report in reports:
                index, _ = finished(index, report)
            async with slots:
                await configs.upsert_entity(
                    {"PartitionKey": tenant, "RowKey": "config", "Enabled": True,
                     "Config0": "{}", "Chunks": 1}
                )  # fmt: skip
                entities = [("upsert", run_entity(r)) for r in reports]
                for start in range(0, len(entities), 100):
                    await runs.submit_transaction(entities[start : start + 100])
            row = index_properties(index) | {"PartitionKey": PARTITION, "RowKey": tenant}
            index_rows.append(("upsert", row))

        await asyncio.gather(*(one(i, t) for i, t in enumerate(tenants)))
        leases = tables.get_table_client(LEASES_TABLE)
        for start in range(0, len(index_rows), 100):  # one partition: batched
            await leases.submit_transaction(index_rows[start : start + 100])


def main() -> None:
    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--due", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print where the tick's time goes")
    args = parser.parse_args()
    azurite = start_azurite()
    try:
        environ = {
            "ENTRA_TENANT_ID": HOME,
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "SYNC_INTERVAL_MIN_HOURS": "0.25",
            "SYNC_INTERVAL_MAX_HOURS": "0.25",
        }
        tenants = [str(uuid.uuid4()) for _ in range(args.tenants)]
        started = time.perf_counter()
        asyncio.run(_seed(environ, tenants, args.days, args.due))
        seeded = time.perf_counter() - started
        settings = load_settings(environ, needs_graph=False)
        # As in a function app's warm worker: the queue exists, the queue client is imported.
        from azure.storage.queue import QueueClient

        QueueClient.from_connection_string(azurite.connection_string, SYNC_QUEUE).create_queue()
        import sync_core.adapters.credentials  # noqa: F401  (RunQueue imports it first)

        _count_requests()
        profile = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        result = asyncio.run(scheduled_tick(settings, utc_now()))
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        print(
            f"{args.tenants} tenants x {args.days} run records (seeded in {seeded:.0f} s): "
            f"tick {elapsed:.2f} s, {sum(REQUESTS.values())} storage requests "
            f"({dict(sorted(REQUESTS.items()))}), {len(result.due)} due, "
            f"{len(result.enqueued)} enqueued, {result.shards} shard(s)"
        )
    finally:
        azurite.stop()


if __name__ == "__main__":
    main()
