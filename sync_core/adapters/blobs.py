"""Blob Storage for profile photos: one private container, one blob per employee.

The container is created by the app (private: no anonymous access) and declared in infra/. A
signature service reads the blobs with its own Entra identity (Storage Blob Data Reader on the
container); the app never hands out a SAS or a public URL (docs/configuration.md).
Locally the blob endpoint comes from the Azurite connection string (its BlobEndpoint); in Azure
from BLOBS_ENDPOINT with the managed identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from sync_core.adapters.tables.boundary import storage_boundary

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

PHOTOS_CONTAINER = "employee-photos"  # infra/modules/storage.bicep declares the same name
_READY: set[str] = set()


def open_blobs(
    connection_string: str | None, endpoint: str | None, credential: AsyncTokenCredential | None
) -> BlobServiceClient | None:
    """The blob service, or None when none is configured (photos then warn, never fail)."""
    # Imported here: the blob SDK (and aiohttp) only load for runs that keep photos.
    from azure.storage.blob.aio import BlobServiceClient

    if connection_string:
        if not has_blob_endpoint(connection_string):
            return None
        return BlobServiceClient.from_connection_string(connection_string)
    if endpoint and credential is not None:
        return BlobServiceClient(account_url=endpoint, credential=credential)
    return None


def has_blob_endpoint(connection_string: str) -> bool:
    """Whether the connection string gives a blob endpoint: explicitly (Azurite's BlobEndpoint),
    or implied by an account and suffix (Azure's own form). One that names only its table (and
    queue) endpoints has none: the SDK would otherwise aim at <account>.blob.core.windows.net."""
    parts = {
        key.strip().lower(): value
        for key, _, value in (p.partition("=") for p in connection_string.split(";") if p)
    }
    if parts.get("usedevelopmentstorage", "").lower() == "true" or "blobendpoint" in parts:
        return True
    return "tableendpoint" not in parts and "accountname" in parts


@storage_boundary
class PhotoBlobs:
    """The photos container: upload with the content type, delete, delete a tenant's prefix."""

    def __init__(self, service: BlobServiceClient):
        self._container: ContainerClient = service.get_container_client(PHOTOS_CONTAINER)

    async def ensure_container(self) -> None:
        """Once per process and account: create the container, private."""
        url = self._container.url
        if url in _READY:
            return
        try:
            await self._container.create_container()  # no public_access: private
        except ResourceExistsError:
            pass
        _READY.add(url)

    async def upload(self, name: str, content: bytes, content_type: str, etag: str) -> None:
        from azure.storage.blob import ContentSettings

        await self.ensure_container()
        await self._container.upload_blob(
            name,
            content,
            overwrite=True,
            content_settings=ContentSettings(content_type=content_type),
            # Graph's ETag, for a reader that wants to compare without the table.
            metadata={"graphetag": etag.strip('"')},
        )

    async def delete(self, name: str) -> None:
        """Idempotent: a blob already gone is fine."""
        try:
            await self._container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            pass

    async def delete_prefix(self, prefix: str) -> int:
        """Every blob under `prefix` (a tenant's), for unlinking; how many were deleted."""
        deleted = 0
        try:
            names = [blob.name async for blob in self._container.list_blobs(prefix)]
        except ResourceNotFoundError:  # no container yet: nothing was ever stored
            return 0
        for name in names:
            await self.delete(name)
            deleted += 1
        return deleted

    async def names(self, prefix: str) -> set[str]:
        """The blobs under `prefix` (a tenant's): one listing call per 5,000 blobs."""
        try:
            return {blob.name async for blob in self._container.list_blobs(prefix)}
        except ResourceNotFoundError:  # no container yet: nothing was ever stored
            return set()

    async def exists(self, name: str) -> bool:
        return bool(await self._container.get_blob_client(name).exists())

    async def read(self, name: str) -> tuple[bytes, str | None]:
        """A blob's bytes and content type (what the signature service reads; the tests too)."""
        downloader = await self._container.download_blob(name)
        content = await downloader.readall()
        return content, downloader.properties.content_settings.content_type
