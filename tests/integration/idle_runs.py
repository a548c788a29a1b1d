"""An idle scheduled delta run driven end to end, as the timer and the queue trigger drive it
(test_idle_run_requests.py, test_idle_budget_scoped.py): a storage account of its own, a full
run and the tick that finds the tenant due, then the worker on the tick's message, counted."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devtools.azurite import Azurite, start_azurite
from devtools.table_requests import TableRequestCounter
from sync_core.adapters.storage_names import SYNC_QUEUE
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.app.worker import process_message
from sync_core.core.engine import RunRequest
from sync_core.settings import load_settings


@pytest.fixture
def own_storage(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
    """A storage account of its own: the tick sees this tenant alone, the queue holds its run."""
    instance = start_azurite()
    monkeypatch.setenv("TABLES_CONNECTION_STRING", instance.connection_string)
    yield instance
    instance.stop()


def synced_then_ticked(tenant_id: str, later: datetime) -> str:
    """A full run (not counted), then the tick that finds the tenant due: its run's message."""
    settings = load_settings(os.environ)

    async def go() -> None:
        async with SyncService(settings) as service:
            await sync_exclusively(service, RunRequest(tenant_id))
        await scheduled_tick(settings, later, spread=timedelta(0))

    asyncio.run(go())
    queue = QueueClient.from_connection_string(
        os.environ["TABLES_CONNECTION_STRING"], SYNC_QUEUE,
        message_decode_policy=TextBase64DecodePolicy(),
    )  # fmt: skip
    (message,) = list(queue.receive_messages(max_messages=32))
    queue.delete_message(message)
    return str(message.content)


def work(body: str, at: datetime, counter: TableRequestCounter) -> Any:
    return asyncio.run(
        process_message(os.environ, body, 1, now=lambda: at, table_request_hook=counter)
    )
