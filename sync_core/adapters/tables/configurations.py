"""The TenantConfigs table: one row per tenant, the configuration split into properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.long_text import CHUNK_UNITS, utf16_chunks
from sync_core.adapters.tables.sync_state import SUMMARY_ROW, SYNC_STATE_ROW
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config, stored_form
from sync_core.core.limits import clean_text
from sync_core.errors import ErrorCode, RetriableError

CONFIG_ROW = "config"
IF_UNCHANGED = MatchConditions.IfNotModified


@storage_boundary
class ConfigStore:
    """Tenant configurations; storing one registers the tenant with the app."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def get(self, tenant_id: str) -> TenantConfig | None:
        """The stored configuration, validated again (it may predate a stricter version)."""
        try:
            entity = await self._table.get_entity(tenant_id, "config")
        except ResourceNotFoundError:
            return None
        try:
            return parse_config(json.loads(_config_text(entity)))
        except (ConfigError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError([("$", "the stored configuration is not valid JSON", None)]) from None

    async def put(self, tenant_id: str, config: TenantConfig) -> None:
        """Store a validated configuration. Its text is split over properties (Config0..N), as
        run reports are: one string property holds 32,767 UTF-16 code units, and config.py's
        MAX_CONFIG_BYTES keeps the whole far below the entity's 1 MiB."""
        entity = _config_entity(tenant_id, config)
        # MERGE keeps the tenant's name (set when it was linked); ConfigChunks says which of
        # the Config<i> properties are current.
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    async def set_tenant_name(self, tenant_id: str, name: str | None) -> None:
        """The organisation's display name from Graph, shown beside the GUID."""
        entity = {"PartitionKey": tenant_id, "RowKey": "config", "TenantName": name or ""}
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    async def create_linked(self, tenant_id: str, config: TenantConfig, account: str) -> bool:
        """Register a tenant with its configuration and the account (the dashboard's customer)
        that linked it, in one write; False when the tenant has a row already (app/linking.py)."""
        entity = {**_config_entity(tenant_id, config), "Account": account}
        try:
            await self._table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    async def claim(self, tenant_id: str, account: str) -> bool:
        """Link the registered tenant to `account` unless another account holds it. The write
        is conditional on the ETag read, so of two accounts racing for a tenant one wins."""
        for _ in range(3):
            try:
                entity = await self._table.get_entity(tenant_id, "config", select=["Account"])
            except ResourceNotFoundError:
                return False  # unlinked meanwhile
            holder = entity.get("Account") or ""
            if holder:
                return holder == account
            try:
                await self._table.update_entity(
                    {"PartitionKey": tenant_id, "RowKey": "config", "Account": account},
                    mode=UpdateMode.MERGE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # changed under us: look again
            return True
        return False

    async def account(self, tenant_id: str) -> str | None:
        """The account the tenant is linked to; None when not linked or linked by no account."""
        try:
            entity = await self._table.get_entity(tenant_id, "config", select=["Account"])
        except ResourceNotFoundError:
            return None
        return entity.get("Account") or None

    async def remove(self, tenant_id: str) -> bool:
        """Forget the tenant (unlink): without its row no tick or Sync Now serves it. False when
        it had none. Its delta link goes too (linked again, perhaps after its employees were
        removed, its first run must read everything) and its summary (unlinking may remove its
        employees without a run to say so): the three in one transaction, each on the ETag
        read (a stale run's delta link landing meanwhile is read again and removed), so that an
        unlink that fails before it leaves the tenant registered, to be unlinked again
        (learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions)."""
        rows = (CONFIG_ROW, SYNC_STATE_ROW, SUMMARY_ROW)
        for _ in range(4):
            found = [
                entity
                async for entity in self._table.query_entities(
                    # Spaced: the SDK finds each @parameter between spaces.
                    "PartitionKey eq @t and ( RowKey eq @c or RowKey eq @s or RowKey eq @m )",
                    parameters=dict(zip(("t", "c", "s", "m"), (tenant_id, *rows), strict=True)),
                    select=["RowKey"],
                )
            ]
            if not any(entity["RowKey"] == CONFIG_ROW for entity in found):
                return False
            operations: list[Any] = [
                (
                    "delete",
                    {"PartitionKey": tenant_id, "RowKey": entity["RowKey"]},
                    {"etag": entity.metadata["etag"], "match_condition": IF_UNCHANGED},
                )
                for entity in found
            ]
            try:
                await self._table.submit_transaction(operations)
            except TableTransactionError as error:
                if error.status_code not in (404, 412):
                    raise
                continue  # one of them changed or went meanwhile: read them again
            return True
        raise RetriableError(
            ErrorCode.CONFIG_CONTENDED,
            f"The configuration rows of tenant {tenant_id} kept changing while being removed.",
            "Unlink again.",
        )

    async def tenant_ids(self) -> list[str]:
        ids: list[str] = []
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", "Enabled"]
        ):
            ids.append(entity["PartitionKey"])
        return ids


def _config_entity(tenant_id: str, config: TenantConfig) -> dict[str, Any]:
    chunks = utf16_chunks(stored_form(config), CHUNK_UNITS)
    entity: dict[str, Any] = {
        "PartitionKey": tenant_id,
        "RowKey": "config",
        "ConfigChunks": len(chunks),
        "Enabled": config.enabled,
        "UpdatedAt": datetime.now(UTC),
    }
    entity.update({f"Config{i}": chunk for i, chunk in enumerate(chunks)})
    return entity


def _config_text(entity: dict[str, Any]) -> str:
    if "ConfigChunks" not in entity:
        return entity["Config"]  # stored before configurations were split
    return "".join(entity[f"Config{i}"] for i in range(int(entity["ConfigChunks"])))


@storage_boundary
class TenantRegistry:
    """The tenants with a stored configuration and whether each is enabled, without parsing the
    configurations (a tick of the timer reads this for every tenant)."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def enabled_by_tenant(self) -> dict[str, bool]:
        tenants: dict[str, bool] = {}
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", "Enabled"]
        ):
            tenants[entity["PartitionKey"]] = entity.get("Enabled") is not False
        return tenants

    async def enabled(self, tenant_id: str) -> bool | None:
        """Whether the tenant's stored configuration is enabled; None when none is stored."""
        try:
            entity = await self._table.get_entity(tenant_id, "config", select=["Enabled"])
        except ResourceNotFoundError:
            return None
        return entity.get("Enabled") is not False

    async def names(self) -> dict[str, str]:
        """Each registered tenant's name where one is known."""
        return await self._by_tenant("TenantName")

    async def accounts(self) -> dict[str, str]:
        """Each linked tenant's account where one is known."""
        return await self._by_tenant("Account")

    async def _by_tenant(self, name: str) -> dict[str, str]:
        values: dict[str, str] = {}
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", name]
        ):
            if entity.get(name):
                # Cleaned on the way out too: a name stored before cleaning must not break a
                # surface (lone surrogates cannot be encoded, NUL breaks text output).
                values[entity["PartitionKey"]] = clean_text(entity[name])
        return values

    async def name(self, tenant_id: str) -> str | None:
        try:
            entity = await self._table.get_entity(tenant_id, "config", select=["TenantName"])
        except ResourceNotFoundError:
            return None
        return clean_text(entity.get("TenantName") or "") or None
