"""Runs and their messages on the sync-requests queue, as the function tests make and read them:
a run's report (as the schedule records it), a queued run and its message (as Sync Now or the
timer leave them), the message a request put on the queue (as the queue trigger receives it),
the messages a tick left."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from sync_core.adapters.queue import RunMessage
from sync_core.adapters.storage_names import SYNC_QUEUE
from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus, new_run_id, utc_now
from sync_core.settings import load_settings

T = TypeVar("T")


def take_run_message(sync_queue: Any, run_id: str) -> str:
    raw = sync_queue.raw_texts()
    assert len(raw) == 1
    decoded = json.loads(base64.b64decode(raw[0]))  # base64, as the queue trigger expects
    assert decoded["runId"] == run_id
    (message,) = sync_queue.take_all()
    return message.content


def with_service(app_env: dict[str, str], work: Callable[[Any], Awaitable[T]]) -> T:
    async def run() -> T:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            return await work(service)

    return asyncio.run(run())


def queue_run(app_env: dict[str, str], tenant_id: str) -> str:
    """A queued run record and its message text, as Sync Now or the timer leave them."""
    now = utc_now()
    queued = RunReport.begun(
        new_run_id(now), tenant_id, RunStatus.QUEUED, dry_run=False, trigger="api", at=now
    )
    with_service(app_env, lambda service: service.runs.save(queued))
    return RunMessage(tenant_id, queued.run_id).to_text()


def report(tenant: str, at: datetime, status: str, *, dry: bool = False) -> RunReport:
    return RunReport(
        run_id=new_run_id(at), tenant_id=tenant, tenant_name=None, mode="full", dry_run=dry,
        status=status, started_at=at, finished_at=None if status == RunStatus.QUEUED else at,
        trigger="schedule",
    )  # fmt: skip


def visible_messages(environ: dict[str, str]) -> list[dict[str, Any]]:
    queue = QueueClient.from_connection_string(
        environ["TABLES_CONNECTION_STRING"],
        SYNC_QUEUE,
        message_decode_policy=TextBase64DecodePolicy(),
    )
    taken = []
    for message in queue.receive_messages(max_messages=32):
        taken.append(json.loads(message.content))
        queue.delete_message(message)
    return taken
