"""The tenant's lease row as the claim of a queued run left it, carried in the run's message.

The worker takes the lease on the claim's ETag without reading the row first (an idle delta run
then costs 4 table requests: the lease taken, the configuration, the sync state, the lease given
back). The condition keeps the lease's guarantee: Table Storage applies a conditional update only
while the row's ETag is still the one given (learn.microsoft.com/rest/api/storageservices/
update-entity2, If-Match), so if anyone wrote the row since (a rival worker, a Sync Now, the
sweep), the write is refused and the lease store reads the row and decides as before. Only a row
whose lease was free at the claim is carried; too large a row is not carried (a queue message
holds 64 KiB: learn.microsoft.com/rest/api/storageservices/put-message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.data.tables import TableEntity

from sync_core.adapters.tables.run_index_rows import PARTITION, index_of, index_properties
from sync_core.core.run_index import RunIndex

MAX_TEXT = 24_000  # characters of the row's JSON: far under the message's 64 KiB once base64'd
_DATETIMES = frozenset({"IdleFirst", "IdleLast", "SweepAfter"})


@dataclass(frozen=True)
class ClaimedRow:
    etag: str
    properties: dict[str, Any]  # the index's properties as the claim wrote them

    @classmethod
    def of(cls, etag: str, index: RunIndex) -> ClaimedRow:
        return cls(etag, index_properties(index))

    def entity(self, tenant_id: str) -> TableEntity:
        """The row as the lease store would have read it: the lease free, the claimed index."""
        entity = TableEntity(
            {"PartitionKey": PARTITION, "RowKey": tenant_id, "Holder": ""} | self.properties
        )
        entity._metadata = {"etag": self.etag, "timestamp": None}
        return entity

    def to_json(self) -> dict[str, Any] | None:
        """For the message; None when the row is too large to carry."""
        props = {k: v.isoformat() if k in _DATETIMES else v for k, v in self.properties.items()}
        data = {"etag": self.etag, "row": props}
        return data if len(json.dumps(data, ensure_ascii=False)) <= MAX_TEXT else None


def claimed_row_of(data: Any) -> ClaimedRow:
    """The row a message carries; ValueError naming what is wrong."""
    if not isinstance(data, dict) or set(data) != {"etag", "row"}:
        raise ValueError("claimed is not an object of etag and row")
    etag, row = data["etag"], data["row"]
    if not isinstance(etag, str) or not etag or not isinstance(row, dict):
        raise ValueError("claimed.etag is not a string or claimed.row not an object")
    properties: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(value, str | int | bool):
            raise ValueError(f"claimed.row.{key} is not a string, number or boolean")
        if key in _DATETIMES:
            try:
                value = datetime.fromisoformat(str(value))
            except ValueError:
                raise ValueError(f"claimed.row.{key} is not an ISO 8601 time") from None
        properties[key] = value
    try:
        index_of(properties)  # what the worker will read from it
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"claimed.row is not a run index: {type(error).__name__}") from None
    return ClaimedRow(etag, properties)
