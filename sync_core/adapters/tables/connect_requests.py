"""Connect requests and the key that signs their consent state, in the TenantConfigs table.

They live in a partition of their own (`~connect`, not a tenant GUID), so the tenant queries
(`RowKey eq 'config'`) never see them and no new table is needed. The signing key is generated
on first use and never leaves storage: not in code, not in settings.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.core.consent_state import StateError

PARTITION = "~connect"
_UNBOUND = "The link's state does not belong to a connect request of this app."
_REPLAYED = "This link was already used; a consent link works once. Start again."
KEY_ROW = "signing-key"


# A request's stages: the admin signs in, then consents, then the app checks and links.
SIGN_IN, CONSENT, CHECKING, DONE = "sign-in", "consent", "checking", "done"
RETENTION = timedelta(days=1)  # the outcome stays readable (GET /api/connect/{id}) this long


@dataclass(frozen=True)
class ConnectRequest:
    nonce: str
    state_digest: str
    expires_at: datetime
    return_url: str | None
    config_text: str | None  # the validated configuration's stored form, or None: the default
    account: str = ""
    replace: bool = False  # re-linking replaces the stored configuration and `enabled`
    # The organization the link was made for (POST /api/connect `tenantId`): whoever signs in
    # from another one links nothing (app/onboarding.py). None: any organization.
    expected_tenant: str | None = None
    flow: str = ""  # msal's auth-code flow (JSON): PKCE verifier, nonce, redirect URI
    stage: str = SIGN_IN
    signed_in_tenant: str | None = None
    signed_in_user: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)


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
            "Account": request.account,
            "Replace": request.replace,
            "ExpectedTenant": request.expected_tenant or "",
            "Flow": request.flow,
            "Stage": SIGN_IN,
        }
        entity.update({f"Config{i}": chunk for i, chunk in enumerate(chunks)})
        await self._table.create_entity(entity)

    async def take(self, nonce: str, digest: str, stage: str, after: str) -> ConnectRequest:
        """Take the request once at `stage` (moving it to `after`), or raise StateError: no
        such request, another request's state, another stage, or taken first by a concurrent
        callback (the ETag-conditional write decides). A state bound to another request leaves
        that request untouched."""
        try:
            entity = await self._table.get_entity(PARTITION, f"request-{nonce}")
        except ResourceNotFoundError:
            raise StateError("unbound", _UNBOUND) from None
        expected = entity.get("ConsentDigest") if stage == CONSENT else entity["StateDigest"]
        if expected != digest:
            raise StateError("unbound", _UNBOUND)
        if (entity.get("Stage") or DONE) != stage:
            raise StateError("replayed", _REPLAYED)
        try:
            await self._table.update_entity(
                {"PartitionKey": PARTITION, "RowKey": f"request-{nonce}", "Stage": after},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StateError("replayed", _REPLAYED) from None
        return _request(nonce, {**entity, "Stage": after})

    async def await_consent(
        self, nonce: str, consent_digest: str, tenant_id: str, user: str
    ) -> None:
        """Signed in: the admin-consent step comes next, with a state of its own."""
        await self._merge(
            nonce,
            {
                "Stage": CONSENT,
                "ConsentDigest": consent_digest,
                "SignedInTenant": tenant_id,
                "SignedInUser": user,
            },
        )

    async def finish(self, nonce: str, outcome: dict[str, Any]) -> None:
        """The outcome as the server saw it (GET /api/connect/{id})."""
        await self._merge(nonce, {"Stage": DONE, "Outcome": json.dumps(outcome)})

    async def get(self, nonce: str) -> ConnectRequest | None:
        try:
            entity = await self._table.get_entity(PARTITION, f"request-{nonce}")
        except ResourceNotFoundError:
            return None
        return _request(nonce, entity)

    async def sweep(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` requests past their retention (one page: bounded per tick)."""
        cutoff = (now - RETENTION).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        query = f"PartitionKey eq '{PARTITION}' and ExpiresAt lt datetime'{cutoff}'"
        pages = self._table.query_entities(
            query, select=["PartitionKey", "RowKey"], results_per_page=limit
        ).by_page()
        removed = 0
        async for page in pages:
            async for entity in page:
                with contextlib.suppress(ResourceNotFoundError):
                    await self._table.delete_entity(PARTITION, entity["RowKey"])
                removed += 1
            break  # the rest waits for the next tick
        return removed

    async def _merge(self, nonce: str, fields: dict[str, Any]) -> None:
        entity = {"PartitionKey": PARTITION, "RowKey": f"request-{nonce}", **fields}
        await self._table.update_entity(entity, mode=UpdateMode.MERGE)


def _request(nonce: str, entity: dict[str, Any]) -> ConnectRequest:
    chunks = int(entity.get("ConfigChunks") or 0)
    return ConnectRequest(
        nonce=nonce,
        state_digest=entity["StateDigest"],
        expires_at=entity["ExpiresAt"],
        return_url=entity.get("ReturnUrl") or None,
        config_text="".join(entity[f"Config{i}"] for i in range(chunks)) or None,
        account=entity.get("Account") or "",
        replace=bool(entity.get("Replace")),
        expected_tenant=entity.get("ExpectedTenant") or None,
        flow=entity.get("Flow") or "",
        stage=entity.get("Stage") or DONE,
        signed_in_tenant=entity.get("SignedInTenant") or None,
        signed_in_user=entity.get("SignedInUser") or None,
        outcome=json.loads(entity["Outcome"]) if entity.get("Outcome") else {},
    )


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()
