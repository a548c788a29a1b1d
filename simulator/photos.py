"""Users' profile photos: ``/users/{id}/photo``, ``/users/{id}/photos/{size}`` (metadata) and
``.../$value`` (the bytes), as learn.microsoft.com/graph/api/profilephoto-get describes them.

- Sizes: 48x48, 64x64, 96x96, 120x120, 240x240, 360x360, 432x432, 504x504, 648x648. A size
  larger than the photo the user uploaded is not served ("if the user uploads a photo that is
  504x504 pixels, all but the 648x648 size of photo is available for download"); ``/photo``
  gives the largest available.
- Metadata: ``@odata.mediaContentType``, ``@odata.mediaEtag`` (quoted, changes with each new
  photo), ``id`` ("240X240"), ``width``, ``height``.
- No photo: 404 ``ImageNotFound``. A user without an Exchange mailbox: 404
  ``ErrorNonExistentMailbox`` (PLATFORM-NOTES; the photo API is served by Exchange Online).
- Permissions (app-only, user photos): ProfilePhoto.Read.All least privileged; ProfilePhoto.
  ReadWrite.All, User.Read.All and User.ReadWrite.All also serve (the page's table). Directory.*
  roles are not listed there, so an app with only Directory.Read.All is refused (403).

Photos live here, beside the directory, not in the user objects: a new photo is no change of the
user (photo is a navigation property, so ``/users/delta`` never reports it).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .graph_query import GraphError

SIZES = ("48x48", "64x64", "96x96", "120x120", "240x240", "360x360", "432x432", "504x504",
         "648x648")  # fmt: skip
READ_PHOTOS = frozenset(
    {
        "ProfilePhoto.Read.All",
        "ProfilePhoto.ReadWrite.All",
        "User.Read.All",
        "User.ReadWrite.All",
    }
)


@dataclass(frozen=True)
class Photo:
    content: bytes
    content_type: str
    pixels: int  # the uploaded square's side: larger sizes are not served
    version: int

    @property
    def etag(self) -> str:
        return f'"{zlib.crc32(self.content + str(self.version).encode()):08X}"'


@dataclass
class _InnerFault:
    status: int
    retry_after: int | None
    remaining: int


class PhotoBook:
    """Every tenant's photos, who has no mailbox, and the faults of batched photo requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._photos: dict[tuple[str, str], Photo] = {}
        self._no_mailbox: set[tuple[str, str]] = set()
        self._versions = 0
        self._inner_faults: list[_InnerFault] = []
        self._encoded_bodies = 0

    def set_photo(
        self,
        tenant_id: str,
        user_id: str,
        content: bytes | None = None,
        *,
        content_type: str = "image/jpeg",
        pixels: int = 648,
    ) -> str:
        """A new photo for the user (a new ETag, even with the same bytes); returns the ETag."""
        with self._lock:
            self._versions += 1
            data = content if content is not None else _jpeg(user_id, self._versions)
            photo = Photo(data, content_type, pixels, self._versions)
            self._photos[_key(tenant_id, user_id)] = photo
            return photo.etag

    def seed(self, tenant_id: str, user_ids: Iterable[str], *, pixels: int = 648) -> None:
        for user_id in user_ids:
            self.set_photo(tenant_id, user_id, pixels=pixels)

    def remove_photo(self, tenant_id: str, user_id: str) -> None:
        with self._lock:
            self._photos.pop(_key(tenant_id, user_id), None)

    def set_mailbox(self, tenant_id: str, user_id: str, *, exists: bool) -> None:
        with self._lock:
            if exists:
                self._no_mailbox.discard(_key(tenant_id, user_id))
            else:
                self._no_mailbox.add(_key(tenant_id, user_id))

    def fail_batched(self, count: int, status: int = 429, retry_after: int | None = 1) -> None:
        """Answer the next ``count`` photo requests inside a batch with ``status`` (and
        ``Retry-After``), the batch itself still 200, as json-batching describes."""
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._inner_faults.append(_InnerFault(status, retry_after, count))

    def take_inner_fault(self) -> tuple[int, int | None] | None:
        with self._lock:
            if not self._inner_faults:
                return None
            fault = self._inner_faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                self._inner_faults.pop(0)
            return fault.status, fault.retry_after

    def encode_batched_bodies(self, count: int) -> None:
        """Answer the next ``count`` photo requests inside a batch with their JSON body
        base64-encoded, as Graph does by design for some workloads (a body that is not inlined
        as JSON is base64: json-batching "Response format")."""
        with self._lock:
            self._encoded_bodies += count

    def take_encoded_body(self) -> bool:
        with self._lock:
            if self._encoded_bodies == 0:
                return False
            self._encoded_bodies -= 1
            return True

    def clear_faults(self) -> None:
        with self._lock:
            self._inner_faults.clear()
            self._encoded_bodies = 0

    def lookup(self, tenant_id: str, user_id: str) -> tuple[Photo | None, bool]:
        """The user's photo and whether the user has a mailbox."""
        with self._lock:
            key = _key(tenant_id, user_id)
            return self._photos.get(key), key not in self._no_mailbox


@dataclass(frozen=True)
class PhotoAnswer:
    status: int
    headers: Mapping[str, str]
    json: dict[str, Any] | None = None
    content: bytes | None = None


def answer(
    book: PhotoBook, tenant_id: str, user: Mapping[str, Any] | None, tail: list[str], root: str
) -> PhotoAnswer:
    """``tail`` is what follows ``/users/{id}/``: ``photo``, ``photo/$value``,
    ``photos/{size}`` or ``photos/{size}/$value``. Raises GraphError for the error answers."""
    if user is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found.")
    user_id = user["id"]
    size, value = _parse(tail)
    photo, mailbox = book.lookup(tenant_id, user_id)
    if not mailbox:
        raise GraphError(404, "ErrorNonExistentMailbox", "The SMTP address has no mailbox.")
    side = int(size.split("x")[0]) if size else (photo.pixels if photo else 0)
    if photo is None or side > photo.pixels:
        raise GraphError(
            404,
            "ImageNotFound",
            "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' "
            "was thrown.",
        )
    if value:
        headers = {"Content-Type": photo.content_type, "ETag": photo.etag}
        return PhotoAnswer(200, headers, content=photo.content)
    where = f"photos('{side}X{side}')" if size else "photo"
    body = {
        "@odata.context": f"{root}/$metadata#users('{user_id}')/{where}/$entity",
        "@odata.mediaContentType": photo.content_type,
        "@odata.mediaEtag": photo.etag,
        "id": f"{side}X{side}",
        "height": side,
        "width": side,
    }
    return PhotoAnswer(200, {"Content-Type": "application/json"}, json=body)


def is_photo_path(segments: list[str]) -> bool:
    return len(segments) >= 3 and segments[0] == "users" and segments[2] in ("photo", "photos")


def _parse(tail: list[str]) -> tuple[str | None, bool]:
    if tail in (["photo"], ["photo", "$value"]):
        return None, tail[-1] == "$value"
    if len(tail) in (2, 3) and tail[0] == "photos" and (len(tail) == 2 or tail[2] == "$value"):
        size = tail[1].lower()
        if size not in SIZES:
            raise GraphError(
                400, "ErrorInvalidImageSize", f"The image size '{tail[1]}' is not supported."
            )
        return size, len(tail) == 3
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[-1]}'.")


def _key(tenant_id: str, user_id: str) -> tuple[str, str]:
    return tenant_id.lower(), user_id.lower()


def _jpeg(user_id: str, version: int) -> bytes:
    """A few bytes that start like a JPEG: enough for a signature test to tell photos apart."""
    return b"\xff\xd8\xff\xe0" + f"photo of {user_id}, version {version}".encode() + b"\xff\xd9"
