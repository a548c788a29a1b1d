"""Profile photos, the pure part: what Graph's photo metadata says, which photos to download,
which to link again or remove, given what is stored.

Photos are not in `/users/delta` (the photo is a navigation property, not a user property), so
a run compares Graph's `@odata.mediaEtag` with the ETag it stored and downloads only what
changed (learn.microsoft.com/graph/api/profilephoto-get; PLATFORM-NOTES "photos"). Full runs
check every employee, delta runs the employees their round wrote.

The ports the photo step needs (Graph's metadata and content, Blob Storage) are declared here,
beside the values that cross them, so core/ports.py stays as it is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sync_core.core.ports import EmployeeWriter
from sync_core.errors import PhotoUnavailable as PhotoUnavailable

MAX_PHOTO_BYTES = 4 * 1024 * 1024  # refused over this: a signature image is a few kB
BATCH_SIZE = 20  # "JSON batch requests are currently limited to 20 individual requests"
# Inner statuses worth retrying: throttled (429), and a service briefly unavailable (503, 504),
# as Graph's throttling guidance says for each request of a batch (concepts/throttling.md,
# concepts/json-batching.md: "individual requests can fail ... with 429 and a Retry-After").
RETRIABLE_STATUSES = frozenset({429, 503, 504})
MAX_INNER_RETRIES = 5
MAX_RETRY_SECONDS = 60.0
# Error codes that mean "this user has no photo to give", not "reading failed": no photo
# (ImageNotFound), or no Exchange mailbox behind the user (the photo API is served by Exchange
# for users with a mailbox; mailbox-less users answer one of these).
MISSING_CODES = frozenset(
    {
        "ImageNotFound",
        "ErrorItemNotFound",
        "ErrorNonExistentMailbox",
        "MailboxNotEnabledForRESTAPI",
        "MailboxNotSupportedForRESTAPI",
        "ResourceNotFound",
        "Request_ResourceNotFound",
    }
)


# App-only photo reads: ProfilePhoto.Read.All is the least privilege, User.Read.All also serves
# (learn.microsoft.com/graph/api/profilephoto-get, "Permissions", user photos).
PHOTO_PERMISSION_FIX = (
    "Grant the app the Microsoft Graph application permission ProfilePhoto.Read.All (or "
    "User.Read.All) with admin consent; users without an Exchange mailbox have no photo to read."
)


class Outcome(StrEnum):
    FOUND = "found"
    MISSING = "missing"  # no photo, or no mailbox
    FAILED = "failed"  # the read failed (after retries), or the answer made no sense
    RETRY = "retry"  # throttled or unavailable: ask again after `retry_after`


@dataclass(frozen=True)
class PhotoMeta:
    """What Graph said about one user's photo."""

    user_id: str
    outcome: Outcome
    etag: str | None = None
    content_type: str | None = None
    reason: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class StoredPhoto:
    """A photo the app stored: where (the blob's name) and which version (Graph's ETag)."""

    blob: str
    etag: str
    content_type: str


class PhotoSource(Protocol):
    """Graph's photos of one tenant (the adapter reads metadata through JSON $batch)."""

    async def photo_metadata(self, user_ids: Sequence[str], size: str) -> list[PhotoMeta]: ...

    async def photo_content(self, user_id: str, size: str) -> bytes:
        """The photo's bytes; PhotoUnavailable when they cannot be had."""
        ...


class PhotoStore(Protocol):
    """Where photos are kept (Blob Storage) and what the app remembers of them."""

    async def stored(
        self, tenant_id: str, user_ids: Collection[str] | None
    ) -> dict[str, StoredPhoto]:
        """The stored photos of these users (None: of the whole tenant, for full runs)."""
        ...

    async def save(
        self, tenant_id: str, user_id: str, content: bytes, meta: PhotoMeta
    ) -> StoredPhoto: ...

    async def link(
        self, writer: EmployeeWriter, tenant_id: str, user_id: str, photo: StoredPhoto
    ) -> None:
        """Queue on the run's fenced writer: remember the photo, and merge its properties into
        the employee's row."""
        ...

    async def unlink(
        self, writer: EmployeeWriter, tenant_id: str, user_id: str, *, row_exists: bool
    ) -> None:
        """Delete the blob and what the app remembers; clear the row's photo properties when the
        row is still there."""
        ...


def blob_name(tenant_id: str, user_id: str) -> str:
    """One blob per employee, under the tenant's prefix (unlinking removes the prefix)."""
    return f"{tenant_id}/{user_id}"


def classify(user_id: str, status: int, headers: Mapping[str, Any], body: Any) -> PhotoMeta:
    """One inner response of a metadata batch (or a plain GET of `/photos/{size}`)."""
    if status == 200 and isinstance(body, dict):
        etag = body.get("@odata.mediaEtag")
        if not isinstance(etag, str) or not etag:
            return PhotoMeta(user_id, Outcome.FAILED, reason="the metadata carries no ETag")
        content_type = body.get("@odata.mediaContentType")
        if not isinstance(content_type, str) or not content_type:
            content_type = "image/jpeg"  # what Exchange serves
        elif not content_type.lower().startswith("image/"):
            # Never stored (the signature service puts the blob into email), nor relabelled.
            shown = content_type[:60]
            return PhotoMeta(user_id, Outcome.FAILED, reason=f"the photo is {shown}, not an image")
        return PhotoMeta(user_id, Outcome.FOUND, etag, content_type)
    code = _error_code(body)
    if status in RETRIABLE_STATUSES:
        return PhotoMeta(
            user_id, Outcome.RETRY, reason=f"HTTP {status}", retry_after=retry_after(headers)
        )
    if status == 404 or code in MISSING_CODES:
        return PhotoMeta(user_id, Outcome.MISSING, reason=code or f"HTTP {status}")
    return PhotoMeta(user_id, Outcome.FAILED, reason=f"HTTP {status} {code or ''}".strip())


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def retry_after(headers: Mapping[str, Any]) -> float | None:
    """Retry-After in seconds (Graph sends seconds), read without regard to case."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def retry_delay(waits: Sequence[float | None], attempt: int) -> float:
    """How long to wait before asking again: the longest Retry-After of the throttled requests,
    else an exponential backoff; bounded."""
    asked = [w for w in waits if w is not None]
    delay = max(asked) if asked else 0.5 * 2.0**attempt
    return min(delay, MAX_RETRY_SECONDS)


def batches(user_ids: Sequence[str], size: int = BATCH_SIZE) -> list[list[str]]:
    return [list(user_ids[i : i + size]) for i in range(0, len(user_ids), size)]


def batch_body(user_ids: Sequence[str], size: str) -> dict[str, Any]:
    """A JSON batch of metadata GETs, one per user; the id of each request is its position."""
    return {
        "requests": [
            {"id": str(n), "method": "GET", "url": f"/users/{user_id}/photos/{size}"}
            for n, user_id in enumerate(user_ids)
        ]
    }


@dataclass(frozen=True)
class PhotoPlan:
    downloads: tuple[PhotoMeta, ...]  # a new or changed photo
    relink: tuple[tuple[str, StoredPhoto], ...]  # unchanged, but the row lost its properties
    unlink: tuple[str, ...]  # stored, but Graph has no photo any more
    unchanged: int
    missing: int
    failed: tuple[PhotoMeta, ...]


def plan_photos(
    metas: Sequence[PhotoMeta], stored: Mapping[str, StoredPhoto], rewritten: Set[str]
) -> PhotoPlan:
    """What to do for each user whose metadata was read. An equal ETag costs nothing, unless
    the run replaced the user's row (a replace drops the photo properties): then they are
    merged in again, still without a download. A failed read keeps the stored photo."""
    downloads: list[PhotoMeta] = []
    relink: list[tuple[str, StoredPhoto]] = []
    unlink: list[str] = []
    failed: list[PhotoMeta] = []
    unchanged = missing = 0
    for meta in metas:
        kept = stored.get(meta.user_id)
        if meta.outcome is Outcome.FOUND:
            if kept is None or kept.etag != meta.etag:
                downloads.append(meta)
                continue
            unchanged += 1
        elif meta.outcome is Outcome.MISSING:
            missing += 1
            if kept is not None:
                unlink.append(meta.user_id)
            continue
        else:
            failed.append(meta)
        # A kept photo without an ETag has lost its blob (adapters/photo_store.py): nothing
        # to link again.
        if kept is not None and kept.etag and meta.user_id in rewritten:
            relink.append((meta.user_id, kept))
    return PhotoPlan(
        tuple(downloads), tuple(relink), tuple(unlink), unchanged, missing, tuple(failed)
    )


def removed_with_employees(
    deleted: Sequence[str],
    stored: Mapping[str, StoredPhoto],
    employees: Collection[str] | None = None,
) -> list[str]:
    """Employees Clean Up removed that had a photo: their blobs go with them. With `employees`
    (a full run: every employee row there was, and every one placed now), also the photos of
    employees gone without the photo step seeing it (a run that failed after its deletions,
    or deletions while photos were off)."""
    gone = [user_id for user_id in deleted if user_id in stored]
    if employees is not None:
        taken = set(gone)
        gone += sorted(i for i in stored if i not in employees and i not in taken)
    return gone
