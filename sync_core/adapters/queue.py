"""The `sync-requests` queue: one message per requested run, read by the `sync_worker` function.

The message is JSON {tenantId, runId, dryRun, allowDeletes, trigger, full, claimed?} (claimed:
the lease row as the run's claim left it, tables/claimed_row.py), base64-encoded as the
Functions queue trigger expects by default. Locally the queue lives in Azurite (the connection
string of TABLES_CONNECTION_STRING carries its QueueEndpoint); in Azure it is reached at
QUEUES_ENDPOINT with the app's managed identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient

from sync_core.adapters.storage_names import SYNC_QUEUE
from sync_core.adapters.tables.claimed_row import ClaimedRow, claimed_row_of
from sync_core.core.report import Trigger, is_run_id
from sync_core.errors import ErrorCode, FatalError
from sync_core.settings import Settings, is_tenant_id

TRIGGERS = frozenset(Trigger)
_FIELDS = {"tenantId", "runId", "dryRun", "allowDeletes", "trigger", "full", "claimed"}


class MalformedMessage(ValueError):
    """A message this app did not write (or a newer version wrote); retrying cannot help."""


@dataclass(frozen=True)
class RunMessage:
    tenant_id: str
    run_id: str
    dry_run: bool = False
    allow_deletes: bool = False
    trigger: Trigger = Trigger.API
    full: bool = False  # a full run even when a delta run could do
    # The lease row as the run's claim left it: the lease taken on its ETag, unread.
    claimed: ClaimedRow | None = None

    def to_text(self) -> str:
        data: dict[str, Any] = {
            "tenantId": self.tenant_id,
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "allowDeletes": self.allow_deletes,
            "trigger": self.trigger,
            "full": self.full,
        }
        claimed = self.claimed.to_json() if self.claimed is not None else None
        if claimed is not None:
            data["claimed"] = claimed
        return json.dumps(data, ensure_ascii=False)


def parse_message(body: str | bytes) -> RunMessage:
    """The message the trigger delivered (already base64-decoded); MalformedMessage if it is
    not one of ours."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data: Any = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedMessage(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    problems = [f"unknown key {key!r}" for key in sorted(set(data) - _FIELDS)]
    tenant, run_id = data.get("tenantId"), data.get("runId")
    if not isinstance(tenant, str) or not is_tenant_id(tenant):
        problems.append("tenantId is not a tenant id")
    if not is_run_id(run_id):
        problems.append("runId is not a run id")
    for key in ("dryRun", "allowDeletes", "full"):
        if not isinstance(data.get(key, False), bool):
            problems.append(f"{key} is not a boolean")
    if data.get("trigger", "api") not in TRIGGERS:
        problems.append("trigger is not one of " + ", ".join(sorted(TRIGGERS)))
    claimed = None
    if "claimed" in data:
        try:
            claimed = claimed_row_of(data["claimed"])
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise MalformedMessage("; ".join(problems))
    return RunMessage(
        tenant_id=str(tenant).lower(),
        run_id=str(run_id),
        dry_run=data.get("dryRun", False),
        allow_deletes=data.get("allowDeletes", False),
        trigger=Trigger(data.get("trigger", Trigger.API)),
        full=data.get("full", False),
        claimed=claimed,
    )


@dataclass(frozen=True)
class ShardMessage:
    """The timer's fan-out: enqueue the runs of these due tenants (app/fan_out.py)."""

    tenant_ids: tuple[str, ...]

    def to_text(self) -> str:
        return json.dumps({"shard": list(self.tenant_ids)})


def parse_shard(body: str | bytes) -> ShardMessage | None:
    """The shard a message carries; None when it is not a shard message (a run's, or not ours).
    MalformedMessage when it is one, but broken."""
    try:
        data: Any = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "shard" not in data:
        return None
    tenants = data["shard"]
    if set(data) != {"shard"} or not isinstance(tenants, list):
        raise MalformedMessage("a shard message holds exactly one key, shard: a list")
    if not all(isinstance(t, str) and is_tenant_id(t) for t in tenants):
        raise MalformedMessage("shard holds something that is not a tenant id")
    return ShardMessage(tuple(t.lower() for t in tenants))


class RunQueue:
    """`async with RunQueue(settings) as queue: await queue.send(message)`."""

    def __init__(self, settings: Settings, queue_name: str = SYNC_QUEUE):
        self._settings = settings
        self._queue_name = queue_name
        self._identity: AsyncTokenCredential | None = None
        self._client: QueueClient | None = None

    async def __aenter__(self) -> RunQueue:
        # Imported here: azure-storage-queue's async client loads aiohttp, which the function
        # app's cold start should not pay for (only Sync Now and the timer send messages).
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
        from azure.storage.queue.aio import QueueClient

        from sync_core.adapters.credentials import azure_identity

        settings = self._settings
        policies: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        if settings.tables_connection_string:
            self._client = QueueClient.from_connection_string(
                settings.tables_connection_string, self._queue_name, **policies
            )
        elif settings.queues_endpoint:
            self._identity = azure_identity(settings)
            self._client = QueueClient(
                settings.queues_endpoint, self._queue_name, credential=self._identity, **policies
            )
        else:
            raise FatalError(
                ErrorCode.QUEUE_NOT_CONFIGURED,
                "No queue to send the run to: QUEUES_ENDPOINT is not set.",
                "Set QUEUES_ENDPOINT to the storage account's queue endpoint (infra/ does).",
            )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()
        if self._identity is not None:
            await self._identity.close()

    async def send(
        self, message: RunMessage | ShardMessage, delay: timedelta = timedelta(0)
    ) -> None:
        """Enqueue; `delay` keeps the message invisible that long (spreading a tick's runs)."""
        if self._client is None:
            raise RuntimeError("use RunQueue in `async with`")
        visibility = int(delay.total_seconds()) or None
        try:
            await self._client.send_message(message.to_text(), visibility_timeout=visibility)
        except ResourceNotFoundError:
            # The deployment creates the queue; a fresh Azurite does not have it yet.
            try:
                await self._client.create_queue()
            except ResourceExistsError:
                pass
            await self._client.send_message(message.to_text(), visibility_timeout=visibility)
