"""Each tenant's delta link, beside its configuration: row `syncState` of the TenantConfigs
table (the tenant's partition). Written only by a run that finished every write and delete
(the engine commits it last), so a failed run leaves the previous link in place."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.names import CONFIGS_TABLE
from sync_core.adapters.tables.common import storage_boundary
from sync_core.core.delta import SyncState

SYNC_STATE_ROW = "syncState"


@storage_boundary
class SyncStateStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def get(self, tenant_id: str) -> SyncState | None:
        try:
            entity = await self._table.get_entity(tenant_id, SYNC_STATE_ROW)
        except ResourceNotFoundError:
            return None
        return SyncState(
            delta_link=entity.get("DeltaLink") or None,
            config_hash=str(entity.get("ConfigHash", "")),
            taken_at=_moment(entity["TakenAt"]),
            last_full_at=_moment(entity["LastFullAt"]),
            group_links=tuple(json.loads(entity.get("GroupDeltaLinks") or "[]")),
            groups_generation=entity.get("GroupsGeneration") or None,
        )

    async def put(self, tenant_id: str, state: SyncState) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": tenant_id,
            "RowKey": SYNC_STATE_ROW,
            # A delta link is a URL of a few hundred characters, far under a property's 64 KiB.
            "DeltaLink": state.delta_link or "",
            "ConfigHash": state.config_hash,
            "TakenAt": state.taken_at,
            "LastFullAt": state.last_full_at,
            # At most a few links of a few hundred characters each (50 groups per link).
            "GroupDeltaLinks": json.dumps(list(state.group_links)),
            "GroupsGeneration": state.groups_generation or "",
        }
        await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)


def _moment(value: Any) -> datetime:
    # The SDK returns a TablesEntityDatetime (a datetime subclass); keep a plain datetime.
    return datetime.fromisoformat(value.isoformat()) if isinstance(value, datetime) else value
