"""The photo step of a run: after the employees are written and Clean Up is done, bring their
photos up to date. Full runs check every employee in scope; delta runs the employees their round
wrote or found unchanged (Graph's delta never mentions a photo). Only photos whose ETag changed
are downloaded; the metadata comes in JSON batches (the adapter).

A photo problem never fails the run and never removes an employee: it is counted
(`photosMissing`, `photosFailed`) and the row stays, without photo properties. Only a lost lease
stops the step, as it stops every write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

from sync_core.core.limits import clean_text
from sync_core.core.passes import PassContext
from sync_core.core.photos import (
    MAX_PHOTO_BYTES,
    PHOTO_PERMISSION_FIX,
    PhotoMeta,
    PhotoSource,
    PhotoStore,
    PhotoUnavailable,
    StoredPhoto,
    plan_photos,
    removed_with_employees,
)
from sync_core.core.ports import LeaseLost, UserDirectory
from sync_core.errors import SyncError

log = logging.getLogger("sync_core.run")

# Exchange's photo limits are per app and mailbox (4 concurrent requests to one mailbox); each
# download here is another user's mailbox, so more may be in flight (bench/README.md).
DOWNLOADS_IN_FLIGHT = 16
MAX_LISTED_FAILURES = 5  # in the warning; the count is exact
# A download or upload that failed after the SDKs' retries fails its photo; this many in one run
# mean Graph or Blob Storage is down, and the step stops instead of trying every photo.
MAX_DOWNLOAD_ERRORS = 20
NO_PHOTO_STORAGE = (
    "Photos are enabled but no Blob Storage is configured: set BLOBS_ENDPOINT (Azure) or use a "
    "connection string with a BlobEndpoint; the employees were synced without photos."
)


async def refresh_photos(
    ctx: PassContext,
    tenant_id: str,
    directory: UserDirectory,
    store: PhotoStore | None,
    *,
    full: bool,
    dry_run: bool,
) -> None:
    """The step itself; a no-op unless the tenant has `photos.enabled` (and never in a dry
    run: it writes blobs)."""
    photos = ctx.config.photos
    if not photos.enabled or dry_run:
        return
    tally = ctx.tally
    if store is None:
        tally.warnings.append(NO_PHOTO_STORAGE)
        return
    try:
        await _refresh(ctx, tenant_id, cast(PhotoSource, directory), store, full=full)
    except LeaseLost:
        raise
    except SyncError as error:
        # Blob Storage or Graph failed for the step as a whole: the employees are written
        # already, so the run still succeeds; the next run tries the photos again.
        log.warning("photos were not refreshed: %s", error.message)
        tally.warnings.append(f"Photos were not refreshed: {error.message} {error.fix or ''}")
        try:
            await ctx.writer.flush()  # what was linked before the failure is kept
        except SyncError:
            pass


async def _refresh(
    ctx: PassContext, tenant_id: str, source: PhotoSource, store: PhotoStore, *, full: bool
) -> None:
    tally, counts, size = ctx.tally, ctx.tally.counts, ctx.config.photos.size
    deleted = list(tally.deleted_ids)
    # In scope but removed (no address past the grace period): no row to put a photo on.
    placed = sorted(tally.placed_ids.difference(deleted))
    # Full runs read the tenant's stored photos in one query; delta runs only those they need.
    stored = await store.stored(tenant_id, None if full else [*placed, *deleted])
    known = {*ctx.index.hashes, *tally.placed_ids} if full else None
    for user_id in removed_with_employees(deleted, stored, known):
        await store.unlink(ctx.writer, tenant_id, user_id, row_exists=False)
        counts.photosRemoved += 1
    metas = await source.photo_metadata(placed, size) if placed else []
    plan = plan_photos(metas, stored, tally.rewritten_ids)
    counts.photosChecked += len(metas)
    counts.photosMissing += plan.missing
    failures = [_failure(meta.user_id, meta.reason) for meta in plan.failed]
    for user_id, kept in plan.relink:
        await store.link(ctx.writer, tenant_id, user_id, kept)
    for user_id in plan.unlink:
        await store.unlink(ctx.writer, tenant_id, user_id, row_exists=True)
        counts.photosRemoved += 1
    failures += await _download_all(ctx, tenant_id, source, store, plan.downloads, stored)
    counts.photosFailed += len(failures)
    await ctx.writer.flush()
    if failures:
        tally.warnings.append(_failure_warning(failures))


async def _download_all(
    ctx: PassContext,
    tenant_id: str,
    source: PhotoSource,
    store: PhotoStore,
    wanted: Sequence[PhotoMeta],
    stored: dict[str, StoredPhoto],
) -> list[str]:
    """Download, store and link each changed photo, a few at a time; the failures, described."""
    gate = asyncio.Semaphore(DOWNLOADS_IN_FLIGHT)
    failures: list[str] = []
    counts = ctx.tally.counts
    size = ctx.config.photos.size

    errors: list[SyncError] = []

    async def one(meta: PhotoMeta) -> None:
        async with gate:
            if len(errors) >= MAX_DOWNLOAD_ERRORS:
                return  # Graph or Blob Storage is down: the step stops (see below)
            try:
                content = await source.photo_content(meta.user_id, size)
                if len(content) > MAX_PHOTO_BYTES:
                    raise PhotoUnavailable(
                        f"the photo is {len(content):,} bytes, over the {MAX_PHOTO_BYTES:,} cap"
                    )
                photo = await store.save(tenant_id, meta.user_id, content, meta)
            except SyncError as error:  # this photo's download or upload failed after retries
                errors.append(error)
                unavailable = PhotoUnavailable(error.message)
                await _not_downloaded(ctx, tenant_id, store, meta, unavailable, stored, failures)
                return
            except PhotoUnavailable as unavailable:
                await _not_downloaded(ctx, tenant_id, store, meta, unavailable, stored, failures)
                return
            await store.link(ctx.writer, tenant_id, meta.user_id, photo)
            counts.photosDownloaded += 1

    await asyncio.gather(*(one(meta) for meta in wanted))
    if len(errors) >= MAX_DOWNLOAD_ERRORS:
        raise errors[0]
    return failures


async def _not_downloaded(
    ctx: PassContext,
    tenant_id: str,
    store: PhotoStore,
    meta: PhotoMeta,
    unavailable: PhotoUnavailable,
    stored: dict[str, StoredPhoto],
    failures: list[str],
) -> None:
    """Gone between the metadata and the download: missing. Otherwise failed, and the photo
    stored before (if any) stays linked."""
    kept = stored.get(meta.user_id)
    if unavailable.missing:
        ctx.tally.counts.photosMissing += 1
        if kept is not None:
            await store.unlink(ctx.writer, tenant_id, meta.user_id, row_exists=True)
            ctx.tally.counts.photosRemoved += 1
        return
    failures.append(_failure(meta.user_id, unavailable.reason))
    if kept is not None and meta.user_id in ctx.tally.rewritten_ids:
        await store.link(ctx.writer, tenant_id, meta.user_id, kept)


def _failure(user_id: str, reason: str | None) -> str:
    return clean_text(f"{user_id}: {reason or 'unknown'}")


def _failure_warning(failures: list[str]) -> str:
    shown = "; ".join(failures[:MAX_LISTED_FAILURES])
    more = f" and {len(failures) - MAX_LISTED_FAILURES} more" if len(failures) > 5 else ""
    refused = any(": HTTP 403" in failure for failure in failures)
    return (
        f"{len(failures)} photo(s) could not be read or stored ({shown}{more}); the employees "
        "are kept without a new photo and the next run tries again."
        + (f" {PHOTO_PERMISSION_FIX}" if refused else "")
    )
