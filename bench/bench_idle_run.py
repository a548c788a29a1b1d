"""Benchmark: what one scheduled idle delta run costs in table requests, from the tick that
queues it to the lease given back (issue 19, parts 2 and 3).

    .venv/bin/python -m bench.bench_idle_run [--users 50]

One simulator, one Azurite. The tenant is synced once (full, not measured), then a tick queues
its next run and the worker runs it (`process_message`, as the queue trigger does): nothing
changed, so it is an idle delta run. Every storage request is counted at the transport, by
table (or queue) and method, for the tick's share and the run's. Performance is measured here,
never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from bench.simulated import simulated_tenant

REQUESTS: Counter[str] = Counter()
STORAGE = {"Employees", "SyncRuns", "TenantConfigs", "SyncLeases", "sync-requests", "$batch"}


def _count_requests() -> None:
    from azure.core.pipeline.transport import AioHttpTransport  # after prepare_trust

    send = AioHttpTransport.send

    async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        path = urlsplit(request.url).path.split("/")
        where = path[2].split("(")[0] if len(path) > 2 else "?"  # /account/Table(...) or queue
        if where not in STORAGE:
            return await send(self, request, **kwargs)  # Key Vault, tokens: not storage
        write = request.method != "GET"
        REQUESTS[f"{where} {'write' if write else 'read'}"] += 1
        return await send(self, request, **kwargs)

    AioHttpTransport.send = counted  # type: ignore[method-assign]


async def _measure(tenant_id: str) -> tuple[Counter[str], Counter[str], Any]:
    from azure.storage.queue import TextBase64DecodePolicy
    from azure.storage.queue.aio import QueueClient

    from sync_core.adapters.storage_names import SYNC_QUEUE
    from sync_core.app.dispatch import scheduled_tick
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.app.service import SyncService
    from sync_core.app.worker import process_message
    from sync_core.core.engine import RunRequest
    from sync_core.core.report import utc_now
    from sync_core.settings import load_settings

    settings = load_settings(os.environ)
    async with SyncService(settings) as service:
        await sync_exclusively(service, RunRequest(tenant_id))  # full, not measured
    queue = QueueClient.from_connection_string(
        settings.tables_connection_string or "", SYNC_QUEUE,
        message_decode_policy=TextBase64DecodePolicy(),
    )  # fmt: skip
    async with queue:
        await queue.create_queue()
        _count_requests()
        from datetime import timedelta

        later = utc_now() + timedelta(minutes=16)  # the next tick: the tenant is due again
        await scheduled_tick(settings, later, spread=timedelta(0))
        tick = Counter(REQUESTS)
        (message,) = [m async for m in queue.receive_messages(max_messages=1)]
        REQUESTS.clear()
    outcome = await process_message(os.environ, message.content, 1, now=lambda: later)
    return tick, Counter(REQUESTS), outcome


def main() -> None:
    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()
    with simulated_tenant(users=args.users, seed=19) as (_, tenant):
        tick, run, outcome = asyncio.run(_measure(tenant["id"]))
    report = outcome.report
    print(
        f"run: {outcome.action}, {report.mode}, idle={report.idle}, {report.graph_requests} Graph"
    )
    for name, counts in (("tick (this tenant due)", tick), ("idle run (worker)", run)):
        writes = sum(n for k, n in counts.items() if k.endswith("write"))
        detail = dict(sorted(counts.items()))
        print(f"{name}: {sum(counts.values())} requests, {writes} writes: {detail}")


if __name__ == "__main__":
    main()
