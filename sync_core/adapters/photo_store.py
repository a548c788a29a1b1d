"""The photo store of a run (core/photos.PhotoStore): blobs in Blob Storage, and what the app
remembers of each photo in the tenant's employees partition.

What is remembered lives in a row of its own per employee (RowKey `~photo-<id>`: after every
Graph object id, like the fence rows, so the employee queries never see it), because a changed
employee's row is replaced whole and would lose the ETag the next comparison needs. The employee
row itself gets `PhotoBlob` and `PhotoETag` by a merge, under the run's fence, which leaves its
fields and its SourceHash alone: a new photo never counts as a changed employee.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient, TableServiceClient

from sync_core.adapters.blobs import PhotoBlobs
from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.adapters.tables.boundary import storage_boundary
from sync_core.adapters.tables.employees import TableEmployeeWriter
from sync_core.core.config import PHOTO_COLUMNS
from sync_core.core.lazy_writer import LazyWriter
from sync_core.core.photos import PhotoMeta, StoredPhoto, blob_name
from sync_core.core.ports import EmployeeWriter as WriterPort

PHOTO_ROW_PREFIX = "~photo-"
_PHOTO_ROWS = "PartitionKey eq @tenant and RowKey ge '~photo-' and RowKey lt '~photo.'"
POINT_READS_IN_FLIGHT = 8


@storage_boundary
class BlobPhotoStore:
    def __init__(self, tables: TableServiceClient, blobs: PhotoBlobs):
        self._table: TableClient = tables.get_table_client(EMPLOYEES_TABLE)
        self.blobs = blobs

    async def stored(
        self, tenant_id: str, user_ids: Collection[str] | None
    ) -> dict[str, StoredPhoto]:
        if user_ids is None:
            found: dict[str, StoredPhoto] = {}
            async for entity in self._table.query_entities(
                _PHOTO_ROWS, parameters={"tenant": tenant_id}, results_per_page=1000
            ):
                found[entity["RowKey"][len(PHOTO_ROW_PREFIX) :]] = _stored(entity)
            present = await self.blobs.names(f"{tenant_id}/") if found else set()
            return {i: _blob_checked(p, p.blob in present) for i, p in found.items()}
        return await self._point_reads(tenant_id, user_ids)

    async def _point_reads(
        self, tenant_id: str, user_ids: Collection[str]
    ) -> dict[str, StoredPhoto]:
        gate = asyncio.Semaphore(POINT_READS_IN_FLIGHT)
        found: dict[str, StoredPhoto] = {}

        async def one(user_id: str) -> None:
            async with gate:
                try:
                    entity = await self._table.get_entity(tenant_id, PHOTO_ROW_PREFIX + user_id)
                except ResourceNotFoundError:
                    return
                photo = _stored(entity)
                found[user_id] = _blob_checked(photo, await self.blobs.exists(photo.blob))

        await asyncio.gather(*(one(user_id) for user_id in set(user_ids)))
        return found

    async def save(
        self, tenant_id: str, user_id: str, content: bytes, meta: PhotoMeta
    ) -> StoredPhoto:
        name = blob_name(tenant_id, user_id)
        content_type = meta.content_type or "image/jpeg"
        await self.blobs.upload(name, content, content_type, meta.etag or "")
        return StoredPhoto(name, meta.etag or "", content_type)

    async def link(
        self, run_writer: WriterPort, tenant_id: str, user_id: str, photo: StoredPhoto
    ) -> None:
        writer = await _writer(run_writer)
        # Together or not at all: a photo row alone says "linked" to every later run (the ETag
        # unchanged), and the employee row would stay without its photo.
        await writer.put_and_merge(
            {
                "PartitionKey": tenant_id,
                "RowKey": PHOTO_ROW_PREFIX + user_id,
                "Blob": photo.blob,
                "GraphETag": photo.etag,
                "ContentType": photo.content_type,
            },
            {
                "PartitionKey": tenant_id,
                "RowKey": user_id,
                "PhotoBlob": photo.blob,
                "PhotoETag": photo.etag,
            },
            "photo",
        )

    async def unlink(
        self, run_writer: WriterPort, tenant_id: str, user_id: str, *, row_exists: bool
    ) -> None:
        writer = await _writer(run_writer)
        await self.blobs.delete(blob_name(tenant_id, user_id))
        await writer.delete(PHOTO_ROW_PREFIX + user_id, "photo")  # no employee removed
        if not row_exists:
            return
        # A merge cannot remove a property: the row is read and put back without them (rare:
        # a photo removed in Entra ID).
        try:
            entity = await self._table.get_entity(tenant_id, user_id)
        except ResourceNotFoundError:
            return
        row = {k: v for k, v in entity.items() if k not in PHOTO_COLUMNS}
        await writer.put_entity(row, "photo")

    async def remove_tenant(self, tenant_id: str) -> int:
        """Unlinking with removeEmployees: every blob of the tenant, and the rows about them."""
        removed = await self.blobs.delete_prefix(f"{tenant_id}/")
        async for entity in self._table.query_entities(
            _PHOTO_ROWS, parameters={"tenant": tenant_id}, select=["PartitionKey", "RowKey"]
        ):
            try:
                await self._table.delete_entity(tenant_id, entity["RowKey"])
            except ResourceNotFoundError:
                pass
        return removed


def _stored(entity: Any) -> StoredPhoto:
    return StoredPhoto(
        str(entity.get("Blob") or ""),
        str(entity.get("GraphETag") or ""),
        str(entity.get("ContentType") or "image/jpeg"),
    )


def _blob_checked(photo: StoredPhoto, present: bool) -> StoredPhoto:
    """A remembered photo whose blob is gone (deleted by hand, a lifecycle rule, a restored
    account) remembers no version: its ETag never equals Graph's, so it is downloaded again
    instead of the row pointing at nothing for ever. The row stays, for Clean Up to find."""
    return photo if present else StoredPhoto(photo.blob, "", photo.content_type)


async def _writer(run_writer: WriterPort) -> TableEmployeeWriter:
    """The run's writer is the Table adapter's (a dry run never reaches the photo step), opened
    by the engine only before its first write (core/lazy_writer.py): a photo's row may be that
    first write, so it opens it (the fence goes up, the summary is marked)."""
    if isinstance(run_writer, LazyWriter):
        return cast(TableEmployeeWriter, await run_writer.open())
    return cast(TableEmployeeWriter, run_writer)
