"""Connect requests and the key that signs their consent state, in the TenantConfigs table.

They live in a partition of their own (`~connect`, not a tenant GUID), so the tenant queries
(`RowKey eq 'config'`) never see them and no new table is needed. The signing key is generated
on first use and never leaves storage: not in code, not in settings.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.names import CONFIGS_TABLE
from sync_core.adapters.tables.common import CHUNK_UNITS, storage_boundary, utf16_chunks
from sync_core.core.consent_state import StateError

PARTITION = "~connect"
_UNBOUND = "The link's state does not belong to a connect request of this app."
_REPLAYED = "This link was already used; a consent link works once. Start again."
KEY_ROW = "signing-key"


@dataclass(frozen=True)
class ConnectRequest:
    nonce: str
    state_digest: str
    expires_at: datetime
    return_url: str | None
    config_text: str | None  # the validated configuration's stored form, or None: the default


@storage_boundary
class ConnectRequests:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def signing_key(self) -> bytes:
        """The HMAC key; the first caller creates it, a racing second one reads the winner's."""
        try:
            entity = await self._table.get_entity(PARTITION, KEY_ROW)
        except ResourceNotFoundError:
            fresh = {"PartitionKey": PARTITION, "RowKey": KEY_ROW, "Key": _new_key()}
            try:
                await self._table.create_entity(fresh)
                return base64.b64decode(fresh["Key"])
            except ResourceExistsError:
                entity = await self._table.get_entity(PARTITION, KEY_ROW)
        return base64.b64decode(entity["Key"])

    async def add(self, request: ConnectRequest) -> None:
        chunks = utf16_chunks(request.config_text, CHUNK_UNITS) if request.config_text else []
        entity: dict[str, Any] = {
            "PartitionKey": PARTITION,
            "RowKey": f"request-{request.nonce}",
            "StateDigest": request.state_digest,
            "ExpiresAt": request.expires_at,
            "ReturnUrl": request.return_url or "",
            "ConfigChunks": len(chunks),
            "Consumed": False,
        }
        entity.update({f"Config{i}": chunk for i, chunk in enumerate(chunks)})
        await self._table.create_entity(entity)

    async def consume(self, nonce: str, digest: str) -> ConnectRequest:
        """Take the request once, or raise StateError: no such request, another request's
        state, taken before, or taken first by a concurrent callback (the ETag-conditional
        write decides). A state bound to another request leaves that request untouched."""
        try:
            entity = await self._table.get_entity(PARTITION, f"request-{nonce}")
        except ResourceNotFoundError:
            raise StateError("unbound", _UNBOUND) from None
        if entity["StateDigest"] != digest:
            raise StateError("unbound", _UNBOUND)
        if entity.get("Consumed"):
            raise StateError("replayed", _REPLAYED)
        try:
            await self._table.update_entity(
                {"PartitionKey": PARTITION, "RowKey": f"request-{nonce}", "Consumed": True},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StateError("replayed", _REPLAYED) from None
        chunks = int(entity.get("ConfigChunks") or 0)
        return ConnectRequest(
            nonce=nonce,
            state_digest=entity["StateDigest"],
            expires_at=entity["ExpiresAt"],
            return_url=entity.get("ReturnUrl") or None,
            config_text="".join(entity[f"Config{i}"] for i in range(chunks)) or None,
        )


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()
