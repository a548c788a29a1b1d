"""Check Connectivity's photo link: when a tenant keeps photos, can the app read them, and is
there a Blob Storage to put them in? Told as a problem, with the permission to grant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync_core.core.config import TenantConfig
from sync_core.core.photos import PHOTO_PERMISSION_FIX, Outcome
from sync_core.errors import ErrorCode, SyncError

if TYPE_CHECKING:
    from sync_core.adapters.graph import GraphDirectory
    from sync_core.app.check import _Findings
    from sync_core.settings import Settings


async def check_photos(
    settings: Settings, directory: GraphDirectory, config: TenantConfig, found: _Findings
) -> None:
    """One user's photo metadata, read exactly as a run reads it (a JSON batch)."""
    from sync_core.app.check import Problem
    from sync_core.app.service import SyncService

    if not config.photos.enabled:
        return
    async with SyncService(settings) as service:
        store = service.photo_store()
        if store is None:
            found.problems.append(
                Problem(
                    ErrorCode.PHOTOS_NO_STORAGE,
                    "Photos are enabled but no Blob Storage is configured.",
                    "Set BLOBS_ENDPOINT (Azure) or a connection string with a BlobEndpoint.",
                )
            )
        else:
            await store.blobs.ensure_container()
            found.passed.append("Blob Storage holds the photos container")
    first = None
    async for page in directory.users(["id"], page_size=1):
        first = next((u["id"] for u in page if u.get("id")), None)
        break
    if first is None:
        return
    try:
        (meta,) = await directory.photo_metadata([first], config.photos.size)
    except SyncError as failure:
        found.failed(failure)
        return
    if meta.outcome is Outcome.FAILED and "403" in (meta.reason or ""):
        found.problems.append(
            Problem(
                ErrorCode.PHOTOS_FORBIDDEN,
                "Photos are enabled but Graph refuses to show them (403): the app lacks a "
                "permission that reads profile photos.",
                PHOTO_PERMISSION_FIX,
            )
        )
    elif meta.outcome is Outcome.FAILED:
        found.warnings.append(f"A photo read failed ({meta.reason}); runs will retry it.")
    else:
        found.passed.append("the app may read profile photos")
