"""Who holds an address among a tenant's stored employees (core/shared_addresses.py).

A filter on `Email`, which is not a key, scans the tenant's partition on the service side, so
the addresses are asked in groups: Table Storage allows at most 15 comparisons in one filter
("Querying tables and entities"), the partition key is one of them. A delta run asks only for
the addresses it wrote: O(what changed) requests, none in an idle run.
"""

from __future__ import annotations

from collections.abc import Sequence

from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.adapters.tables.boundary import storage_boundary

ADDRESSES_PER_QUERY = 14


@storage_boundary
class StoredAddresses:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(EMPLOYEES_TABLE)

    async def holders(self, tenant_id: str, addresses: Sequence[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for start in range(0, len(addresses), ADDRESSES_PER_QUERY):
            group = addresses[start : start + ADDRESSES_PER_QUERY]
            parameters = {"t": tenant_id, **{f"e{i}": a for i, a in enumerate(group)}}
            wanted = " or ".join(f"Email eq @e{i}" for i in range(len(group)))
            rows = self._table.query_entities(
                # Spaces around the parentheses: the SDK finds each @name as a word of its own.
                f"PartitionKey eq @t and ( {wanted} )",
                parameters=parameters,
                select=["RowKey", "Email"],
            )
            async for row in rows:
                found.setdefault(row["Email"], set()).add(row["RowKey"])
        return found
