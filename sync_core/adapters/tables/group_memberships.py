"""The direct-member graph of each tenant's scope groups (core/group_sync.py), table
GroupMemberships: PartitionKey the tenant, RowKey `<generation>~<group id>~<chunk>`.

A generation is written whole by a run before it commits its delta links (engine `_commit`), and
the sync state names the generation its group links belong to: a run that fails or is held
after writing one leaves the old generation in force (its rows are untouched), so the next run
replays the same group round on the same graph. Older generations are pruned after the commit.
A group's user ids are split over rows of USERS_PER_ROW, so a property stays under Table
Storage's 32K UTF-16 units (an id is 36 characters, 39 in JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import GROUPS_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.core.groups import GroupNode

USERS_PER_ROW = 700
ROWS_PER_TRANSACTION = 50  # 50 rows of ~28 KB stay under a transaction's 4 MiB


@storage_boundary
class GroupMembershipStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(GROUPS_TABLE)

    async def load(self, tenant_id: str, generation: str) -> dict[str, GroupNode] | None:
        query = "PartitionKey eq @t and RowKey ge @low and RowKey lt @high"
        bounds = {"t": tenant_id, "low": f"{generation}~", "high": f"{generation}~~"}
        parts: dict[str, dict[str, Any]] = {}
        async for row in self._table.query_entities(query, parameters=bounds):
            group_id = str(row["RowKey"]).split("~")[1]
            part = parts.setdefault(group_id, {"name": "", "users": set(), "groups": set()})
            part["name"] = row.get("DisplayName") or part["name"]
            part["users"] |= set(json.loads(row.get("Users") or "[]"))
            part["groups"] |= set(json.loads(row.get("Groups") or "[]"))
        if not parts:
            return None
        return {
            g: GroupNode(p["name"], frozenset(p["users"]), frozenset(p["groups"]))
            for g, p in parts.items()
        }

    async def save(self, tenant_id: str, generation: str, graph: Mapping[str, GroupNode]) -> None:
        rows: list[dict[str, Any]] = []
        for group_id, node in sorted(graph.items()):
            users = sorted(node.users)
            chunks = [users[i : i + USERS_PER_ROW] for i in range(0, len(users), USERS_PER_ROW)]
            for number, chunk in enumerate(chunks or [[]]):
                rows.append(
                    {
                        "PartitionKey": tenant_id,
                        "RowKey": f"{generation}~{group_id}~{number:05d}",
                        "DisplayName": node.display_name,
                        "Users": json.dumps(chunk, separators=(",", ":")),
                        "Groups": json.dumps(sorted(node.groups) if number == 0 else []),
                    }
                )
        for start in range(0, len(rows), ROWS_PER_TRANSACTION):
            batch = rows[start : start + ROWS_PER_TRANSACTION]
            await self._table.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in batch]
            )

    async def prune(self, tenant_id: str, keep: str | None) -> None:
        """Delete every generation but `keep` (None: every one), after the commit; a failure
        only leaves rows behind."""
        stale: list[str] = []
        async for row in self._table.query_entities(
            "PartitionKey eq @t", parameters={"t": tenant_id}, select=["RowKey"]
        ):
            if keep is None or not str(row["RowKey"]).startswith(f"{keep}~"):
                stale.append(str(row["RowKey"]))
        for start in range(0, len(stale), 100):
            await self._table.submit_transaction(
                [
                    ("delete", {"PartitionKey": tenant_id, "RowKey": key})
                    for key in stale[start : start + 100]
                ]
            )
