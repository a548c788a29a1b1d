"""The photo step (core/photo_run.py) against list-backed fakes of its ports: what is read,
downloaded, linked and removed, and that no photo problem fails the run."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from sync_core.core.config_parse import parse_config
from sync_core.core.pages import RunTotals
from sync_core.core.passes import PassContext
from sync_core.core.photo_run import refresh_photos
from sync_core.core.photos import (
    MAX_PHOTO_BYTES,
    Outcome,
    PhotoMeta,
    PhotoUnavailable,
    StoredPhoto,
)
from sync_core.core.ports import StoredIndex
from sync_core.errors import RetriableError

CONFIG = parse_config({"photos": {"enabled": True, "size": "96x96"}})


class Source:
    def __init__(self, photos: dict[str, tuple[str, bytes] | None]):
        self.photos = photos  # id -> (etag, bytes), None: no photo
        self.asked: list[str] = []
        self.downloaded: list[str] = []

    async def photo_metadata(self, user_ids, size):
        assert size == "96x96"
        self.asked += user_ids
        return [
            PhotoMeta(i, Outcome.FOUND, self.photos[i][0], "image/jpeg")  # type: ignore[index]
            if self.photos.get(i)
            else PhotoMeta(i, Outcome.MISSING, reason="ImageNotFound")
            for i in user_ids
        ]

    async def photo_content(self, user_id, size):
        self.downloaded.append(user_id)
        photo = self.photos.get(user_id)
        if photo is None:
            raise PhotoUnavailable("gone", missing=True)
        return photo[1]


class Store:
    def __init__(self, stored: dict[str, StoredPhoto], *, failing: bool = False):
        self.kept = dict(stored)
        self.linked: list[str] = []
        self.unlinked: list[tuple[str, bool]] = []
        self.failing = failing

    async def stored(self, tenant_id, user_ids):
        if self.failing:
            raise RetriableError("storage_unreachable", "Blob Storage is down.", "Wait.")
        return (
            dict(self.kept)
            if user_ids is None
            else {i: p for i, p in self.kept.items() if i in set(user_ids)}
        )

    async def save(self, tenant_id, user_id, content, meta):
        return StoredPhoto(f"{tenant_id}/{user_id}", meta.etag, meta.content_type)

    async def link(self, sink, tenant_id, user_id, photo):
        self.kept[user_id] = photo
        self.linked.append(user_id)

    async def unlink(self, sink, tenant_id, user_id, *, row_exists):
        self.kept.pop(user_id, None)
        self.unlinked.append((user_id, row_exists))


class Sink:
    def __init__(self) -> None:
        self.committed: Counter[str] = Counter()

    async def flush(self) -> None:
        pass


def context(placed, rewritten=(), deleted=()) -> PassContext:
    tally = RunTotals()
    tally.placed_ids, tally.rewritten_ids = set(placed), set(rewritten)
    tally.deleted_ids = tuple(deleted)
    return PassContext("run", CONFIG, StoredIndex({}, {}), Sink(), tally, lambda: datetime.now(UTC))  # type: ignore[arg-type]


def run(ctx, source, store, *, full=True, dry_run=False) -> None:
    asyncio.run(refresh_photos(ctx, "t", source, store, full=full, dry_run=dry_run))


def test_only_changed_photos_are_downloaded_and_gone_ones_removed():
    old = StoredPhoto("t/a", '"1"', "image/jpeg")
    source = Source({"a": ('"1"', b"a"), "b": ('"2"', b"b"), "c": None})
    store = Store({"a": old, "c": StoredPhoto("t/c", '"1"', "image/jpeg")})
    ctx = context(["a", "b", "c"])
    run(ctx, source, store)
    assert source.downloaded == ["b"]
    assert store.linked == ["b"] and store.unlinked == [("c", True)]
    counts = ctx.tally.counts
    assert (counts.photosChecked, counts.photosDownloaded, counts.photosMissing) == (3, 1, 1)
    assert counts.photosRemoved == 1


def test_employees_removed_by_clean_up_lose_their_photo_and_are_not_read():
    store = Store({"gone": StoredPhoto("t/gone", '"1"', "image/jpeg")})
    source = Source({"gone": ('"1"', b"x"), "kept": ('"1"', b"y")})
    ctx = context(["gone", "kept"], deleted=["gone"])
    run(ctx, source, store, full=False)
    assert source.asked == ["kept"]
    assert store.unlinked == [("gone", False)]


def test_an_oversized_photo_fails_alone_and_keeps_the_one_stored_before():
    old = StoredPhoto("t/a", '"1"', "image/jpeg")
    source = Source({"a": ('"2"', b"x" * (MAX_PHOTO_BYTES + 1)), "b": ('"1"', b"b")})
    store = Store({"a": old})
    ctx = context(["a", "b"], rewritten=["a"])
    run(ctx, source, store)
    assert ctx.tally.counts.photosFailed == 1 and ctx.tally.counts.photosDownloaded == 1
    assert store.kept["a"] == old and "a" in store.linked  # linked again to the rewritten row
    assert any("over the" in w for w in ctx.tally.warnings)


def test_storage_down_is_a_warning_not_a_failed_run_and_dry_runs_read_nothing():
    source = Source({"a": ('"1"', b"a")})
    ctx = context(["a"])
    run(ctx, source, Store({}, failing=True))
    assert any("Photos were not refreshed" in w for w in ctx.tally.warnings)
    dry = context(["a"])
    run(dry, source, Store({}), dry_run=True)
    assert source.asked == [] and dry.tally.counts.photosChecked == 0


class BrokenSource(Source):
    async def photo_content(self, user_id, size):
        self.downloaded.append(user_id)
        raise RetriableError("graph_unavailable", "Graph answered 503 after retries.", "Wait.")


def test_a_failing_download_fails_its_photo_and_an_outage_stops_the_step():
    few = BrokenSource({"a": ('"1"', b"a"), "b": ('"1"', b"b")})
    ctx = context(["a", "b"])
    run(ctx, few, Store({}))
    assert ctx.tally.counts.photosFailed == 2 and ctx.tally.counts.photosDownloaded == 0
    assert any("503" in w for w in ctx.tally.warnings)

    many = {f"u{n:03}": ('"1"', b"x") for n in range(200)}
    outage = BrokenSource(many)
    ctx = context(many)
    run(ctx, outage, Store({}))
    assert len(outage.downloaded) < 60  # stopped after about 20 failures, not 200 attempts
    assert any("Photos were not refreshed" in w for w in ctx.tally.warnings)
